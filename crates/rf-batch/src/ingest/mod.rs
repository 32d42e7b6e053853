//! Ingest: scan a directory, plan single uploads or tar shards, stream and
//! upload them, or ingest references by URL.
//!
//! The pieces are usable alone: [`scan()`] lists media files, [`plan()`] decides
//! how they travel, [`tar_stream::tar_stream`] builds a shard while it uploads,
//! [`upload_pending`] sends what a manifest still lacks, and [`upload_all`]
//! does so in rounds that settle broken transfers without duplicating them.

#[cfg(feature = "cloud")]
pub mod cloud;
pub mod references;
pub mod upload;

pub use crate::files::{names, plan, scan, tar_stream};

#[cfg(feature = "cloud")]
pub use cloud::{
    CloudIngestOptions, CloudIngestReport, DEFAULT_PRESIGN_EXPIRY, ingest_cloud, journal_file_name,
    list_cloud,
};
pub use names::flat_name;
pub use plan::{
    ModeChoice, Plan, PlanOptions, PlannedItem, ShardCutter, ShardPlan, UploadMode, plan,
};
pub use references::{
    ChunkAccepted, ChunkPolicy, ReferencesSummary, ReferencesTarget, ingest_references_file,
    send_references,
};
pub use scan::{
    MediaKind, ScanError, ScanOptions, ScanReport, ScanTally, ScannedFile, SkipReason, SkippedFile,
    scan, scan_each,
};
pub use upload::{
    UPLOAD_ROUNDS, UploadSettings, UploadSummary, UploadTarget, resolve_uncertain_shards,
    upload_all, upload_pending,
};
