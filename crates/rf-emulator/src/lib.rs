//! `rf-emulator`: a faithful local server of the Roboflow Data Staging and
//! Batch Processing APIs, for developing and testing without a cloud
//! account (see `docs/emulator.md`).
//!
//! It serves every endpoint of the wire contract from one origin: the
//! workspace lookup, uploads (multipart, and signed PUT URLs for tar shards
//! and videos), reference ingest from loopback URLs, listings with signed
//! download URLs, background shard indexing, jobs with a processing and an
//! export stage that run [built-in workflows](workflows), logs, abort,
//! restart and webhooks. State persists in a data directory.
//!
//! ```no_run
//! # async fn demo() -> Result<(), rf_emulator::EmulatorError> {
//! use rf_emulator::{Emulator, EmulatorConfig};
//!
//! let config = EmulatorConfig::for_tests(); // key "test-key" -> workspace "test-ws"
//! let emu = Emulator::start(config, "127.0.0.1:0".parse().unwrap()).await?;
//! println!("API_BASE_URL={} key={}", emu.base_url(), emu.api_key());
//! emu.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! In-process (no socket), with the same handlers:
//!
//! ```no_run
//! # async fn demo() -> Result<(), rf_emulator::EmulatorError> {
//! use rf_emulator::{EmulatorConfig, EmulatorState, router};
//! let state = EmulatorState::open(EmulatorConfig::for_tests(), "http://127.0.0.1:1/".parse().unwrap())?;
//! let app: axum::Router = router(state);
//! # let _ = app; Ok(()) }
//! ```
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
mod lock;
mod media;
mod model;
mod params;
mod pixels;
mod routes;
mod server;
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
pub use stats::{BatchStats, EmulatorStats, JobStats, WorkspaceStats};
