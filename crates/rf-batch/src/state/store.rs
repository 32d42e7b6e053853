//! Loading and saving a manifest: [`Manifest::load`] (with the downloads
//! journal merged back) and [`Manifest::save`] (atomic, after moving held
//! shard items to the items file).

use std::fs;
use std::io::{self, Write};
use std::path::Path;

use chrono::Utc;
use serde::Deserialize;

use super::journal::JournalEntry;
use super::*;

impl Manifest {
    /// Reads the manifest at `path`; `Ok(None)` when there is none.
    pub fn load(path: &Path) -> Result<Option<Manifest>, StateError> {
        let bytes = match fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(StateError::Io {
                    action: "read",
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        let corrupt = |e: serde_json::Error| StateError::Corrupt {
            path: path.to_path_buf(),
            detail: e.to_string(),
        };
        #[derive(Deserialize)]
        struct Probe {
            version: u32,
        }
        let probe: Probe = serde_json::from_slice(&bytes).map_err(corrupt)?;
        if !(1..=MANIFEST_VERSION).contains(&probe.version) {
            return Err(StateError::Corrupt {
                path: path.to_path_buf(),
                detail: format!(
                    "format version {} but this build reads {MANIFEST_VERSION}",
                    probe.version
                ),
            });
        }
        let mut manifest: Manifest = serde_json::from_slice(&bytes).map_err(corrupt)?;
        manifest.version = MANIFEST_VERSION;
        let items_file = items_path_for(path);
        if manifest
            .ingest
            .shards
            .iter()
            .any(|s| matches!(s.items, ShardItems::Stored(_)))
        {
            items::check_header(&items_file, manifest.created_at)?;
        }
        manifest.items_file = Some(items_file);
        manifest.merge_journal(&DownloadJournal::path_for(path))?;
        Ok(Some(manifest))
    }

    /// Adds the records of the downloads journal at `journal` that belong to
    /// this manifest to [`ExportState::downloads`].
    fn merge_journal(&mut self, journal: &Path) -> Result<(), StateError> {
        let file = match fs::File::open(journal) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(source) => {
                return Err(StateError::Io {
                    action: "read",
                    path: journal.to_path_buf(),
                    source,
                });
            }
        };
        for line in io::BufRead::lines(io::BufReader::new(file)) {
            let line = line.map_err(|source| StateError::Io {
                action: "read",
                path: journal.to_path_buf(),
                source,
            })?;
            // A line torn by a crash (or not ours) is skipped: that file is
            // simply downloaded again.
            let Ok(entry) = serde_json::from_str::<JournalEntry>(&line) else {
                continue;
            };
            if entry.manifest == self.created_at {
                self.export.downloads.insert(entry.key, entry.record);
            }
        }
        Ok(())
    }

    /// Writes the manifest to `path` atomically (temp file, fsync, rename,
    /// fsync dir), after moving the items of shards held in memory to the
    /// items file beside it (appended and synced first).
    pub fn save(&mut self, path: &Path) -> Result<(), StateError> {
        self.store_inline_items(path)?;
        self.updated_at = Utc::now();
        let err = |source| StateError::Io {
            action: "write",
            path: path.to_path_buf(),
            source,
        };
        let dir = path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir).map_err(err)?;
        rf_util::write_atomic(path, |w| {
            serde_json::to_writer(&mut *w, self).map_err(io::Error::other)?;
            w.write_all(b"\n")
        })
        .map_err(err)
    }
}
