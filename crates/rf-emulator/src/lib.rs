#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![warn(clippy::unwrap_used)]
#![warn(clippy::too_many_lines)]

mod app;
mod background;
mod batches;
mod chaos;
mod config;
mod ctx;
mod error;
mod http_client;
mod ingest;
mod jobs;
mod library;
mod lock;
mod media;
mod model;
mod opening;
mod params;
mod pixels;
mod routes;
mod server;
mod shaping;
mod shard;
mod signed;
mod stats;
mod store;
mod webhook;
pub mod workflows;

pub use app::{EmulatorState, router};
pub use chaos::{ChaosConfig, ChaosKind};
pub use config::{EmulatorConfig, JobSpeed, WebhookConfig};
pub use error::EmulatorError;
pub use lock::LockHolder;
pub use server::{Emulator, RunningEmulator};
pub use shaping::{ShapingConfig, ShapingStats};
pub use stats::{BatchStats, EmulatorStats, JobStats, WorkspaceStats};
