//! Ingest: scan a directory, plan single uploads or tar shards, stream shards.
//!
//! The pieces are usable alone: [`scan()`] lists media files, [`plan()`] decides
//! how they travel, [`tar_stream::tar_stream`] builds a shard while it uploads.

pub mod names;
pub mod plan;
pub mod scan;
pub mod tar_stream;

pub use names::flat_name;
pub use plan::{ModeChoice, Plan, PlanOptions, PlannedItem, ShardPlan, UploadMode, plan};
pub use scan::{
    MediaKind, ScanError, ScanOptions, ScanReport, ScannedFile, SkipReason, SkippedFile, scan,
};
