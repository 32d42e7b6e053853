#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![warn(clippy::unwrap_used)]
#![warn(clippy::too_many_lines)]

#[cfg(feature = "cloud")]
pub mod bucket_types;
pub mod client;
#[cfg(feature = "cloud")]
pub mod cloud;
pub mod context;
pub mod endpoint;
pub mod error;
pub mod events;
pub mod export;
pub mod files;
pub mod ingest;
pub mod job;
pub mod library;
pub mod limit;
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
