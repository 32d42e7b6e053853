//! `rf-batch`: a typed client for the Roboflow Data Staging and Batch Processing
//! APIs, and the orchestration on top of it (ingest, count check, job, wait,
//! export), resumable and with flat memory. See `docs/library.md`.
#![deny(missing_docs)]
#![warn(clippy::unwrap_used)]

pub mod export;
pub mod ingest;
pub mod state;
