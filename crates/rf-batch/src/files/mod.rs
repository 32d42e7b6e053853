//! Local file work, with no network and no run state: the bottom layer that
//! [`crate::ingest`], [`crate::export`], [`crate::state`] and
//! [`crate::events`] all build on.
//!
//! - [`scan`]: list the media files of an input directory (and what was
//!   skipped, and why);
//! - [`names`]: the flat, unique names files travel under;
//! - [`plan`]: decide how files travel (single uploads or tar shards);
//! - [`tar_stream`]: build a shard's tar stream while it uploads;
//! - [`extract`]: unpack a downloaded archive safely.
//!
//! The modules are re-exported from their users' paths
//! (`rf_batch::ingest::scan`, `rf_batch::export::extract`, ...), which is
//! where the public API names them.

pub mod extract;
pub mod names;
pub mod plan;
pub mod scan;
pub mod tar_stream;
