//! `rf-emulator`: a faithful local server of the Roboflow Data Staging and
//! Batch Processing APIs (see docs/emulator.md).
#![deny(missing_docs)]
#![warn(clippy::unwrap_used)]

mod config;
mod error;
mod media;
mod model;
mod params;
mod shard;
mod signed;
mod store;

pub use config::{EmulatorConfig, JobSpeed, WebhookConfig};
pub use error::EmulatorError;
