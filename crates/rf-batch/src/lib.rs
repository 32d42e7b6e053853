//! `rf-batch`: a typed client for the Roboflow Data Staging and Batch
//! Processing APIs, and the orchestration on top of it — ingest, count check,
//! job, wait, export — resumable, with flat memory. See `docs/library.md`.
//!
//! - [`Client`]: one async method per endpoint, grouped as
//!   [`Client::staging`] and [`Client::jobs`]; paginated listings are streams.
//! - [`Pipeline`] + [`RunConfig`]: the whole run in one call, with progress
//!   [`Event`]s on a channel and a [`RunReport`] at the end.
//! - The building blocks, usable alone: [`ingest`] (scan, plan, tar streams,
//!   uploads, references), [`wait`] (count check, job progress), [`job`]
//!   (definitions from settings), [`export`] (downloads, safe extraction),
//!   [`state`] (the run manifest).
//!
//! The library never prints and never reads the environment; the `rf` CLI does.
#![deny(missing_docs)]
#![warn(clippy::unwrap_used)]
#![warn(clippy::too_many_lines)]

pub mod client;
pub mod context;
pub mod endpoint;
pub mod error;
pub mod events;
pub mod export;
pub mod files;
pub mod ingest;
pub mod job;
pub mod pipeline;
pub mod state;
pub mod wait;

pub use client::{Client, ClientBuilder};
pub use context::Context;
pub use endpoint::Endpoint;
pub use error::{ApiError, ApiErrorKind, DirRole, Error, FailureClass, FailureCounts, Result};
pub use events::{Event, EventSink, RunReport, Timings};
pub use job::JobSettings;
pub use pipeline::{Pipeline, RunConfig};
pub use tokio_util::sync::CancellationToken;
