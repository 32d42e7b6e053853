//! Export: find a job's output, download it and unpack it safely.

#[cfg(feature = "cloud")]
pub mod bucket;
pub mod download;

pub use crate::files::extract;

pub use download::{
    DownloadSettings, DownloadSummary, DownloadTarget, ExportFile, download_one, download_pending,
    download_stream, export_count, export_files, find_export_batch, is_archive, list_export,
    within_count,
};
pub use extract::{
    ExtractError, ExtractLimits, ExtractReport, RefusalReason, RefusedEntry, extract_archive,
};
