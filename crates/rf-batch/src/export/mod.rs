//! Export: download a job's results and unpack them safely.

pub mod extract;

pub use extract::{
    ExtractError, ExtractLimits, ExtractReport, RefusalReason, RefusedEntry, extract_archive,
};
