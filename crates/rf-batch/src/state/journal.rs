//! The downloads journal beside a manifest: one JSON line per completed
//! download (see the module docs of [`crate::state`]), and the key a download
//! is recorded under.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::*;

/// One line of the downloads journal.
#[derive(Serialize, Deserialize)]
pub(super) struct JournalEntry {
    /// The creation time of the manifest the record belongs to.
    pub(super) manifest: DateTime<Utc>,
    /// Its [`download_key`].
    pub(super) key: String,
    /// The record.
    pub(super) record: DownloadRecord,
}

/// The append-only journal of completed downloads beside a manifest (see the
/// module docs): one JSON line per download, written through to the page
/// cache as each completes and synced to disk by [`DownloadJournal::finish`].
#[derive(Debug)]
pub struct DownloadJournal {
    path: PathBuf,
    manifest: DateTime<Utc>,
    out: io::BufWriter<fs::File>,
}

impl DownloadJournal {
    /// Where the journal of the manifest at `manifest_path` lives.
    pub fn path_for(manifest_path: &Path) -> PathBuf {
        beside(manifest_path, ".downloads")
    }

    /// Opens (creating if needed) the journal of `manifest`, saved at
    /// `manifest_path`, for appending.
    pub fn open(manifest_path: &Path, manifest: &Manifest) -> Result<Self, StateError> {
        let path = Self::path_for(manifest_path);
        let file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|source| StateError::Io {
                action: "open",
                path: path.clone(),
                source,
            })?;
        Ok(DownloadJournal {
            path,
            manifest: manifest.created_at,
            out: io::BufWriter::new(file),
        })
    }

    /// Appends one completed download (written through to the file, so a
    /// `kill -9` right after loses nothing).
    pub fn append(&mut self, key: &str, record: &DownloadRecord) -> Result<(), StateError> {
        #[derive(Serialize)]
        struct Entry<'a> {
            manifest: &'a DateTime<Utc>,
            key: &'a str,
            record: &'a DownloadRecord,
        }
        let entry = Entry {
            manifest: &self.manifest,
            key,
            record,
        };
        let write = |out: &mut io::BufWriter<fs::File>| -> io::Result<()> {
            serde_json::to_writer(&mut *out, &entry).map_err(io::Error::other)?;
            out.write_all(b"\n")?;
            out.flush()
        };
        write(&mut self.out).map_err(|source| StateError::Io {
            action: "append to",
            path: self.path.clone(),
            source,
        })
    }

    /// Flushes and syncs the journal to disk.
    pub fn finish(mut self) -> Result<(), StateError> {
        let err = |source| StateError::Io {
            action: "write",
            path: self.path.clone(),
            source,
        };
        self.out.flush().map_err(err)?;
        self.out.get_ref().sync_all().map_err(err)
    }
}

/// The key of a download in [`ExportState::downloads`].
pub fn download_key(part: Option<&str>, file_name: &str, shard_id: Option<&str>) -> String {
    format!(
        "{}/{}/{}",
        part.unwrap_or("-"),
        shard_id.unwrap_or("-"),
        file_name
    )
}
