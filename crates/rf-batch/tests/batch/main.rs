//! rf-batch's integration tests, one binary: a module per area, sharing
//! [`common`] (input trees, the stateful fake service, the in-process
//! emulator transport, hand-made tar archives).
//!
//! - `client_wire`: exact request shapes of every endpoint (wiremock);
//! - `mock_transport`: runs over scripted `MockTransport` answers;
//! - `custom_transport`: a user-written `Transport` (the fake service);
//! - `export_plan`: what an export asks before listing, asked at once;
//! - `scenarios`: whole runs against three backends: the emulator over
//!   loopback, the emulator in process, and the stateful fake service;
//! - `chaos`, `failure_injection`: faults, lost answers and retries;
//! - `hostile_export`: hostile archives through the whole pipeline;
//! - `references`: ingest by reference;
//! - `cloud`: ingest from buckets on local S3, GCS and Azure servers;
//! - `gcs_export`: export into a GCS bucket, request by request (wiremock).

mod common;

mod adaptive;
mod chaos;
mod client_wire;
#[cfg(feature = "cloud")]
mod cloud;
mod custom_transport;
mod export_plan;
mod failure_injection;
#[cfg(feature = "cloud")]
mod gcs_export;
mod hostile_export;
mod mock_transport;
mod references;
mod scenarios;
