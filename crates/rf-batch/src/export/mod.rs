//! Export: find a job's output, download it and unpack it safely.

#[cfg(feature = "cloud")]
pub mod bucket;
pub mod download;
pub mod listing;

pub use crate::files::extract;

pub use download::{
    DownloadSettings, DownloadSummary, DownloadTarget, download_one, download_pending,
    download_stream, is_archive,
};
pub use extract::{
    ExtractError, ExtractLimits, ExtractReport, RefusalReason, RefusedEntry, extract_archive,
};
pub use listing::{
    ExportFile, ExportPlan, export_count, export_files, find_export_batch, list_export,
    within_count,
};
