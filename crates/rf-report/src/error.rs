//! What can stop a report: only what makes a page impossible. Broken result
//! lines, unreadable images and a missing manifest are counted and shown on
//! the page instead.

use std::path::PathBuf;

/// Why no report was written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The output directory does not exist or is not a directory.
    #[error("{path} is not a directory of downloaded results")]
    NotADirectory {
        /// The directory given.
        path: PathBuf,
    },
    /// Neither `results/` nor any result file (`.jsonl`, `.csv`) was found.
    #[error("no results in {path} (no .jsonl or .csv file under results/)")]
    NoResults {
        /// The directory searched.
        path: PathBuf,
    },
    /// `--sample` out of range.
    #[error("--sample must be between 1 and {max}, not {given}")]
    SampleSize {
        /// The value given.
        given: usize,
        /// The largest allowed.
        max: usize,
    },
    /// A result file or directory could not be read (a broken line inside a
    /// readable file is not an error: it is counted).
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The run manifest exists but cannot be read.
    #[error("cannot read the run manifest: {0}")]
    Manifest(#[from] rf_batch::state::StateError),
    /// The page could not be rendered (a template bug, not bad input).
    #[error("cannot render the report: {0}")]
    Render(#[from] minijinja::Error),
    /// The page could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The report file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}
