//! The run manifest: what a run has done, so that re-running resumes it.
//!
//! One JSON file per run, kept in the output (or a chosen state) directory and
//! never in the input directory, which may be read-only. It is rewritten
//! atomically after every step (write a temporary file beside it, `fsync` it,
//! rename it over the old one, `fsync` the directory), so a crash or Ctrl-C at
//! any moment leaves either the old or the new manifest, never a torn one.
//!
//! It records: the plan (which file went into which shard, with its size and
//! modification time; the shards' items themselves live in the items file
//! beside it, see [`items`]), which uploads completed, the expected and confirmed
//! count, the job ID (saved *before* the job is created, so a re-run finds the
//! job instead of starting a second one), the export batch and which downloads
//! completed. [`Manifest::reconcile`] compares it against a fresh scan to find
//! inputs that changed, appeared or vanished since.
//!
//! Completed downloads are not added to the manifest while an export runs:
//! rewriting a manifest with one record per file after each file would be
//! quadratic, and holding every record in memory would make memory grow with
//! the batch. They are appended, one JSON line each, to a journal beside it
//! ([`DownloadJournal`], `<manifest>.downloads`), and [`Manifest::load`]
//! merges the journal back into [`ExportState::downloads`]. Each line names
//! the manifest it belongs to (its creation time), so a journal left behind
//! by an older manifest is ignored; a line torn by a crash is skipped (that
//! file is downloaded again).

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::files::extract::ExtractReport;
use crate::files::plan::{PlanOptions, PlannedItem, UploadMode, cut_shards};
use crate::files::scan::{MediaKind, ScannedFile, SkippedFile};

mod file;
pub mod items;
mod lock;
mod resume;

pub use crate::error::StateError;
pub use file::ManifestFile;
pub use items::{FreshRun, ItemRange, Prepared, ScanSummary, items_path_for};
pub(crate) use lock::state_dir_of;
pub use lock::{LOCK_FILE, StateLock};
pub use rf_util::LockHolder;

/// Manifest format version written by this crate. Version 1 (shard items
/// held in the manifest itself) is still read; its items move to the items
/// file at the next save.
pub const MANIFEST_VERSION: u32 = 2;

/// File name of the manifest inside the state directory.
pub const MANIFEST_FILE: &str = "rf-run.json";

/// The durable record of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Format version ([`MANIFEST_VERSION`]).
    pub version: u32,
    /// What the run is about; a re-run with different answers is refused.
    pub run: RunIdentity,
    /// When the run was first started.
    pub created_at: DateTime<Utc>,
    /// When the manifest was last written.
    pub updated_at: DateTime<Utc>,
    /// Upload progress.
    pub ingest: IngestState,
    /// The count the service confirmed, once the count check passed.
    pub count_confirmed: Option<u64>,
    /// The job, once its ID was chosen.
    pub job: Option<JobRecord>,
    /// Export progress.
    pub export: ExportState,
    /// The items file the stored shards point into (set by
    /// [`Manifest::load`], [`Manifest::save`] and
    /// [`Manifest::scan_and_plan`]).
    #[serde(skip)]
    items_file: Option<PathBuf>,
}

/// What identifies a run: the same input, batch and workflow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunIdentity {
    /// The input directory (absolute).
    pub input_dir: PathBuf,
    /// The staging batch the inputs go to.
    pub batch_id: String,
    /// The workflow run over them.
    pub workflow_id: String,
    /// Images or videos.
    pub kind: MediaKind,
}

/// Upload progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestState {
    /// Single or bulk (fixed by the first run so the batch never mixes modes).
    pub mode: UploadMode,
    /// Items uploaded one by one.
    pub singles: Vec<SingleRecord>,
    /// Tar shards.
    pub shards: Vec<ShardRecord>,
    /// Files the scans reported and skipped.
    pub skipped: Vec<SkippedFile>,
}

/// One item uploaded alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SingleRecord {
    /// The item.
    #[serde(flatten)]
    pub item: PlannedItem,
    /// Whether its upload completed.
    pub uploaded: bool,
}

/// One tar shard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardRecord {
    /// Position of the shard in the run (0-based, stable across resumes).
    pub index: usize,
    /// Its images, in tar order: where they are in the items file, or (a
    /// plan made in memory, not saved yet) the items themselves. Read them
    /// with [`ShardRecord::load`].
    pub items: ShardItems,
    /// Exact length of the shard's tar stream in bytes.
    pub tar_bytes: u64,
    /// Whether its upload completed.
    pub uploaded: bool,
    /// Whether a `PUT` of it was started. A shard attempted but not
    /// uploaded may have reached the service (a connection dropped after the
    /// body was sent); before sending it again the run checks the batch
    /// listing for its items, so it is never indexed twice.
    #[serde(default)]
    pub attempted: bool,
}

/// Where the items of a shard are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ShardItems {
    /// Lines of the run's items file ([`items_path_for`]).
    Stored(ItemRange),
    /// Held in memory; [`Manifest::save`] moves them to the items file.
    Inline(Vec<PlannedItem>),
}

impl ShardItems {
    /// Number of items.
    pub fn count(&self) -> usize {
        match self {
            ShardItems::Stored(range) => range.count,
            ShardItems::Inline(items) => items.len(),
        }
    }
}

/// The job of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRecord {
    /// The job ID (chosen by the client, saved before creation).
    pub job_id: String,
    /// Whether the create call succeeded.
    pub created: bool,
    /// Whether the job reached a terminal state.
    pub terminal: bool,
    /// Whether it ended in error.
    pub error: bool,
}

/// Export progress.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportState {
    /// The export stage's output batch, once found.
    pub output_batch: Option<String>,
    /// Completed downloads, by [`download_key`].
    pub downloads: BTreeMap<String, DownloadRecord>,
    /// Whether every file of the output batch was downloaded.
    pub complete: bool,
}

/// One completed download.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DownloadRecord {
    /// Part of the output batch, if any.
    pub part: Option<String>,
    /// File name in the batch.
    pub file_name: String,
    /// Where it went: the file, or the directory an archive was unpacked into.
    pub local_path: PathBuf,
    /// Bytes downloaded.
    pub bytes: u64,
    /// The extraction report, for archives.
    pub extracted: Option<ExtractReport>,
}

impl DownloadRecord {
    /// Whether the download is still there: an unpacked archive's directory
    /// exists, a plain file exists with the recorded length. Downloads are
    /// not synced one by one (that cost more than the transfer for small
    /// files), so after an operating-system crash a recorded file may come
    /// back empty or short: the length check finds it and it is downloaded
    /// again.
    pub fn is_on_disk(&self) -> bool {
        match &self.extracted {
            Some(_) => self.local_path.exists(),
            None => std::fs::metadata(&self.local_path)
                .is_ok_and(|m| m.is_file() && m.len() == self.bytes),
        }
    }
}

/// One line of the downloads journal.
#[derive(Serialize, Deserialize)]
struct JournalEntry {
    /// The creation time of the manifest the record belongs to.
    manifest: DateTime<Utc>,
    /// Its [`download_key`].
    key: String,
    /// The record.
    record: DownloadRecord,
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

/// `path` with `suffix` added to its file name (`rf-run.json` →
/// `rf-run.json.items`): the files that belong to a manifest sit beside it.
pub(crate) fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| MANIFEST_FILE.into());
    name.push(suffix);
    path.with_file_name(name)
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

/// What changed in the input since the manifest was written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reconciliation {
    /// Already uploaded, but the file changed since (not re-uploaded: the
    /// service cannot replace an item of a sharded batch).
    pub changed_after_upload: Vec<String>,
    /// Not yet uploaded and changed: re-planned with the new size.
    pub changed_pending: Vec<String>,
    /// Not yet uploaded and gone: dropped from the plan.
    pub vanished_pending: Vec<String>,
    /// Uploaded and gone locally (harmless: the batch has it).
    pub vanished_after_upload: Vec<String>,
    /// New files, added to the plan.
    pub added: Vec<String>,
}

impl Reconciliation {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.changed_after_upload.is_empty()
            && self.changed_pending.is_empty()
            && self.vanished_pending.is_empty()
            && self.vanished_after_upload.is_empty()
            && self.added.is_empty()
    }
}

impl Manifest {
    /// A fresh manifest for `run`.
    pub fn new(run: RunIdentity, mode: UploadMode) -> Self {
        let now = Utc::now();
        Manifest {
            version: MANIFEST_VERSION,
            run,
            created_at: now,
            updated_at: now,
            ingest: IngestState {
                mode,
                singles: Vec::new(),
                shards: Vec::new(),
                skipped: Vec::new(),
            },
            count_confirmed: None,
            job: None,
            export: ExportState::default(),
            items_file: None,
        }
    }

    /// The items file the manifest's stored shards point into, once it was
    /// saved or loaded.
    pub fn items_file(&self) -> Option<&Path> {
        self.items_file.as_deref()
    }

    /// The `position`-th shard of the plan, with its items (read from the
    /// items file when they are stored there).
    pub fn shard_plan(&self, position: usize) -> Result<crate::files::plan::ShardPlan, StateError> {
        match self.ingest.shards.get(position) {
            Some(shard) => shard.load(self.items_file()),
            None => Err(StateError::Corrupt {
                path: self
                    .items_file()
                    .map_or_else(|| MANIFEST_FILE.into(), Path::to_path_buf),
                detail: format!("no shard at position {position}"),
            }),
        }
    }

    /// A fresh manifest holding `plan` (nothing uploaded yet).
    pub fn from_plan(run: RunIdentity, plan: crate::files::plan::Plan) -> Self {
        let mut m = Manifest::new(run, plan.mode);
        m.ingest.singles = plan
            .singles
            .into_iter()
            .map(|item| SingleRecord {
                item,
                uploaded: false,
            })
            .collect();
        m.ingest.shards = plan
            .shards
            .into_iter()
            .map(|plan| ShardRecord {
                index: plan.index,
                tar_bytes: plan.tar_bytes,
                items: ShardItems::Inline(plan.items),
                uploaded: false,
                attempted: false,
            })
            .collect();
        m
    }

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

    /// Number of items the batch holds once every planned upload completed.
    pub fn expected_count(&self) -> u64 {
        (self.ingest.singles.len() + self.ingest.shard_items()) as u64
    }

    /// Number of items whose upload completed.
    pub fn uploaded_count(&self) -> u64 {
        (self.ingest.singles.iter().filter(|s| s.uploaded).count()
            + self
                .ingest
                .shards
                .iter()
                .filter(|s| s.uploaded)
                .map(|s| s.items.count())
                .sum::<usize>()) as u64
    }

    /// Whether every planned upload completed.
    pub fn ingest_complete(&self) -> bool {
        self.ingest.singles.iter().all(|s| s.uploaded)
            && self.ingest.shards.iter().all(|s| s.uploaded)
    }

    /// Brings the plan in line with a fresh scan (`files`, of this run's kind):
    /// pending items that changed are re-planned, vanished pending ones are
    /// dropped, new files are added (shards re-cut from the pending images);
    /// uploaded items are never touched. Returns what changed.
    ///
    /// Reads the shards' items from the items file one shard at a time; the
    /// re-cut shards are held in memory until the next [`Manifest::save`]
    /// appends them to it.
    pub fn reconcile(
        &mut self,
        files: &[ScannedFile],
        options: &PlanOptions,
    ) -> Result<Reconciliation, StateError> {
        let mut rec = Reconciliation::default();
        let mut current: HashMap<&str, &ScannedFile> =
            files.iter().map(|f| (f.relative.as_str(), f)).collect();
        let mut check = |item: &PlannedItem,
                         uploaded: bool,
                         rec: &mut Reconciliation|
         -> Option<PlannedItem> {
            match current.remove(item.relative.as_str()) {
                None if uploaded => {
                    rec.vanished_after_upload.push(item.relative.clone());
                    None
                }
                None => {
                    rec.vanished_pending.push(item.relative.clone());
                    None
                }
                Some(f) if f.size == item.size && f.mtime_ns == item.mtime_ns => Some(item.clone()),
                Some(f) => {
                    if uploaded {
                        rec.changed_after_upload.push(item.relative.clone());
                        Some(item.clone())
                    } else {
                        rec.changed_pending.push(item.relative.clone());
                        Some(PlannedItem::from_scanned(f))
                    }
                }
            }
        };
        // Singles: keep uploaded ones, refresh pending ones.
        let singles = std::mem::take(&mut self.ingest.singles);
        for s in singles {
            match check(&s.item, s.uploaded, &mut rec) {
                Some(item) => self.ingest.singles.push(SingleRecord {
                    item,
                    uploaded: s.uploaded,
                }),
                // The batch still holds it: it stays counted.
                None if s.uploaded => self.ingest.singles.push(s),
                None => {}
            }
        }
        // Shards: uploaded ones stay as they are; pending images are pooled.
        let shards = std::mem::take(&mut self.ingest.shards);
        let mut pending_shards = Vec::new();
        let mut pending_images = Vec::new();
        let mut shards = shards.into_iter();
        while let Some(s) = shards.next() {
            let items = match s.load(self.items_file.as_deref()) {
                Ok(plan) => plan.items,
                Err(e) => {
                    // Keep every shard record as it was.
                    self.ingest.shards.extend(pending_shards);
                    self.ingest.shards.push(s);
                    self.ingest.shards.extend(shards);
                    self.ingest.shards.sort_by_key(|s| s.index);
                    return Err(e);
                }
            };
            // A shard that may have reached the service is kept as it is.
            if s.uploaded || s.attempted {
                for item in &items {
                    check(item, true, &mut rec);
                }
                self.ingest.shards.push(s);
            } else {
                pending_images.extend(items.iter().filter_map(|i| check(i, false, &mut rec)));
                pending_shards.push(s);
            }
        }
        // New files, in scan order.
        for f in files {
            if current.remove(f.relative.as_str()).is_some() {
                rec.added.push(f.relative.clone());
                let item = PlannedItem::from_scanned(f);
                match (self.ingest.mode, f.kind) {
                    (UploadMode::Bulk, MediaKind::Image) => pending_images.push(item),
                    _ => self.ingest.singles.push(SingleRecord {
                        item,
                        uploaded: false,
                    }),
                }
            }
        }
        let pending_unchanged = rec.changed_pending.is_empty()
            && rec.vanished_pending.is_empty()
            && rec.added.is_empty();
        if pending_unchanged {
            // Keep the original cut and indexes.
            self.ingest.shards.extend(pending_shards);
        } else {
            let next_index = self
                .ingest
                .shards
                .iter()
                .chain(pending_shards.iter())
                .map(|s| s.index + 1)
                .max()
                .unwrap_or(0);
            let recut = cut_shards(pending_images, options, next_index);
            self.ingest
                .shards
                .extend(recut.into_iter().map(|plan| ShardRecord {
                    index: plan.index,
                    tar_bytes: plan.tar_bytes,
                    items: ShardItems::Inline(plan.items),
                    uploaded: false,
                    attempted: false,
                }));
        }
        self.ingest.shards.sort_by_key(|s| s.index);
        Ok(rec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::plan::plan;

    fn file(rel: &str, size: u64, kind: MediaKind) -> ScannedFile {
        ScannedFile {
            relative: rel.into(),
            kind,
            size,
            mtime_ns: 7,
        }
    }

    fn manifest_for(files: &[ScannedFile], options: &PlanOptions) -> Manifest {
        Manifest::from_plan(
            RunIdentity {
                input_dir: "/in".into(),
                batch_id: "b".into(),
                workflow_id: "wf".into(),
                kind: MediaKind::Image,
            },
            plan(files, options),
        )
    }

    fn images(n: usize) -> Vec<ScannedFile> {
        (0..n)
            .map(|i| file(&format!("{i:03}.jpg"), 100, MediaKind::Image))
            .collect()
    }

    #[test]
    fn the_downloads_journal_is_merged_on_load_and_only_its_own_lines_count() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(MANIFEST_FILE);
        let mut m = manifest_for(&images(3), &PlanOptions::default());
        m.save(&path).unwrap();
        let record = |name: &str| DownloadRecord {
            part: None,
            file_name: name.into(),
            local_path: dir.path().join(name),
            bytes: 1,
            extracted: None,
        };
        let mut journal = DownloadJournal::open(&path, &m).unwrap();
        journal.append("-/-/a.json", &record("a.json")).unwrap();
        journal.append("-/-/b.json", &record("b.json")).unwrap();
        journal.finish().unwrap();
        // A line of an older manifest and a line torn by a crash.
        let mut older = m.clone();
        older.created_at = m.created_at - chrono::Duration::seconds(60);
        let mut stale = DownloadJournal::open(&path, &older).unwrap();
        stale.append("-/-/old.json", &record("old.json")).unwrap();
        stale.finish().unwrap();
        let journal_path = DownloadJournal::path_for(&path);
        assert_eq!(journal_path, dir.path().join("rf-run.json.downloads"));
        let mut text = std::fs::read_to_string(&journal_path).unwrap();
        text.push_str("{\"manifest\": \"2026-");
        std::fs::write(&journal_path, text).unwrap();

        let loaded = Manifest::load(&path).unwrap().unwrap();
        let keys: Vec<&str> = loaded.export.downloads.keys().map(String::as_str).collect();
        assert_eq!(keys, ["-/-/a.json", "-/-/b.json"]);
        assert_eq!(loaded.export.downloads["-/-/a.json"], record("a.json"));
        // The in-memory manifest that wrote the journal holds no record.
        assert!(m.export.downloads.is_empty());
    }

    #[test]
    fn download_records_check_what_is_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.jpg");
        std::fs::write(&file, b"12345").unwrap();
        let mut rec = DownloadRecord {
            part: None,
            file_name: "a.jpg".into(),
            local_path: file.clone(),
            bytes: 5,
            extracted: None,
        };
        assert!(rec.is_on_disk());
        // Short after a crash, or gone: downloaded again.
        std::fs::write(&file, b"").unwrap();
        assert!(!rec.is_on_disk());
        std::fs::remove_file(&file).unwrap();
        assert!(!rec.is_on_disk());
        // An unpacked archive: its directory is enough.
        rec.local_path = dir.path().to_path_buf();
        rec.extracted = Some(ExtractReport::default());
        assert!(rec.is_on_disk());
        rec.local_path = dir.path().join("missing");
        assert!(!rec.is_on_disk());
    }

    #[test]
    fn save_is_atomic_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state").join(MANIFEST_FILE);
        assert!(Manifest::load(&path).unwrap().is_none());
        let mut m = manifest_for(&images(40), &PlanOptions::default());
        m.job = Some(JobRecord {
            job_id: "job-1".into(),
            created: false,
            terminal: false,
            error: false,
        });
        m.export.downloads.insert(
            download_key(Some("p"), "a.tar", None),
            DownloadRecord {
                part: Some("p".into()),
                file_name: "a.tar".into(),
                local_path: "/out/p".into(),
                bytes: 3,
                extracted: Some(ExtractReport::default()),
            },
        );
        m.save(&path).unwrap();
        m.save(&path).unwrap();
        let back = Manifest::load(&path).unwrap().unwrap();
        assert_eq!(back, m);
        // no temporary files left beside it: the manifest and its items
        let mut names: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(names, [MANIFEST_FILE, "rf-run.json.items"]);
        // The manifest holds ranges, not the items.
        let text = fs::read_to_string(&path).unwrap();
        assert!(!text.contains("000.jpg"), "{text}");
        assert_eq!(back.shard_plan(0).unwrap().items.len(), 40);
    }

    #[test]
    fn shard_items_move_to_the_items_file_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(MANIFEST_FILE);
        let files = images(1200);
        let options = PlanOptions::default();
        let in_memory = plan(&files, &options);
        let mut m = manifest_for(&files, &options);
        assert!(matches!(m.ingest.shards[0].items, ShardItems::Inline(_)));
        m.save(&path).unwrap();
        assert!(
            m.ingest
                .shards
                .iter()
                .all(|s| matches!(s.items, ShardItems::Stored(_)))
        );
        let back = Manifest::load(&path).unwrap().unwrap();
        for (i, shard) in in_memory.shards.iter().enumerate() {
            assert_eq!(&m.shard_plan(i).unwrap(), shard);
            assert_eq!(&back.shard_plan(i).unwrap(), shard);
        }
        assert_eq!(back.expected_count(), 1200);
        // Saved elsewhere, the items come along.
        let moved = dir.path().join("elsewhere").join(MANIFEST_FILE);
        let mut copy = back.clone();
        copy.save(&moved).unwrap();
        fs::remove_file(items_path_for(&path)).unwrap();
        let again = Manifest::load(&moved).unwrap().unwrap();
        assert_eq!(&again.shard_plan(2).unwrap(), &in_memory.shards[2]);
        // The original manifest without its items file is refused clearly.
        let err = Manifest::load(&path).unwrap_err().to_string();
        assert!(err.contains("items file is missing"), "{err}");
    }

    #[test]
    fn an_items_file_of_another_run_or_cut_short_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(MANIFEST_FILE);
        let mut m = manifest_for(&images(600), &PlanOptions::default());
        m.save(&path).unwrap();
        let items = items_path_for(&path);
        let original = fs::read(&items).unwrap();
        // Another run's items file beside this manifest.
        let mut other = manifest_for(&images(600), &PlanOptions::default());
        other.created_at = m.created_at - chrono::Duration::seconds(5);
        let other_path = dir.path().join("other").join(MANIFEST_FILE);
        other.save(&other_path).unwrap();
        fs::copy(items_path_for(&other_path), &items).unwrap();
        let err = Manifest::load(&path).unwrap_err().to_string();
        assert!(err.contains("belongs to another run"), "{err}");
        assert!(err.contains("move it away"), "{err}");
        // Cut short (a disk that filled up): the shard past the end is refused.
        fs::write(&items, &original[..original.len() - 10]).unwrap();
        let loaded = Manifest::load(&path).unwrap().unwrap();
        assert!(loaded.shard_plan(0).is_ok());
        let err = loaded.shard_plan(1).unwrap_err().to_string();
        assert!(err.contains("ends before byte"), "{err}");
    }

    #[test]
    fn version_1_manifests_with_inline_items_still_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(MANIFEST_FILE);
        let files = images(700);
        let m = manifest_for(&files, &PlanOptions::default());
        // What rf wrote before the items file: every item inline, version 1.
        let mut v1 = serde_json::to_value(&m).unwrap();
        v1["version"] = 1.into();
        v1["ingest"]["shards"][0]["uploaded"] = true.into();
        fs::write(&path, serde_json::to_vec(&v1).unwrap()).unwrap();
        let mut loaded = Manifest::load(&path).unwrap().unwrap();
        assert_eq!(loaded.version, MANIFEST_VERSION);
        assert_eq!(loaded.uploaded_count(), 350);
        let expected = plan(&files, &PlanOptions::default());
        assert_eq!(loaded.shard_plan(1).unwrap(), expected.shards[1]);
        // The next save moves the items out.
        loaded.save(&path).unwrap();
        let again = Manifest::load(&path).unwrap().unwrap();
        assert!(matches!(
            again.ingest.shards[1].items,
            ShardItems::Stored(_)
        ));
        assert_eq!(again.shard_plan(1).unwrap(), expected.shards[1]);
        assert_eq!(again.uploaded_count(), 350);
    }

    #[test]
    fn a_replan_appends_to_the_items_file_and_keeps_uploaded_ranges() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(MANIFEST_FILE);
        let mut files = images(1200);
        let options = PlanOptions::default();
        let mut m = manifest_for(&files, &options);
        m.ingest.shards[0].uploaded = true;
        m.save(&path).unwrap();
        let uploaded = m.ingest.shards[0].clone();
        let before = fs::metadata(items_path_for(&path)).unwrap().len();
        files.push(file("zz_new.jpg", 5, MediaKind::Image));
        let mut m = Manifest::load(&path).unwrap().unwrap();
        let rec = m.reconcile(&files, &options).unwrap();
        assert_eq!(rec.added, ["zz_new.jpg"]);
        m.save(&path).unwrap();
        assert!(fs::metadata(items_path_for(&path)).unwrap().len() > before);
        let m = Manifest::load(&path).unwrap().unwrap();
        assert_eq!(m.ingest.shards[0], uploaded);
        assert_eq!(m.expected_count(), 1201);
        let last = m.shard_plan(m.ingest.shards.len() - 1).unwrap();
        assert_eq!(last.items.last().unwrap().relative, "zz_new.jpg");
    }

    #[test]
    fn scan_and_plan_writes_the_same_plan_as_planning_in_memory() {
        let input = tempfile::tempdir().unwrap();
        for i in 0..1234 {
            let sub = if i % 3 == 0 { "a" } else { "b/c" };
            let dir = input.path().join(sub);
            fs::create_dir_all(&dir).unwrap();
            fs::write(dir.join(format!("{i:05}.jpg")), vec![1u8; i % 700]).unwrap();
        }
        fs::write(input.path().join("clip.mp4"), b"v").unwrap();
        fs::write(input.path().join("notes.txt"), b"n").unwrap();
        let state = tempfile::tempdir().unwrap();
        let path = state.path().join(MANIFEST_FILE);
        let options = PlanOptions {
            max_shard_bytes: 200 * 1024,
            ..PlanOptions::default()
        };
        let scan_options = crate::files::scan::ScanOptions::default();
        let (mut m, summary) = items::plan_for_test(&path, input.path(), None, &options);
        let report = crate::files::scan::scan(input.path(), &scan_options).unwrap();
        let images: Vec<ScannedFile> = report
            .files
            .iter()
            .filter(|f| f.kind == MediaKind::Image)
            .cloned()
            .collect();
        let expected = plan(&images, &options);
        assert_eq!(m.ingest.mode, UploadMode::Bulk);
        assert_eq!(m.ingest.shards.len(), expected.shards.len());
        assert!(expected.shards.len() > 3, "bounded by bytes and count");
        for (i, shard) in expected.shards.iter().enumerate() {
            assert_eq!(&m.shard_plan(i).unwrap(), shard);
        }
        assert_eq!(
            (summary.images, summary.videos, summary.other_kind),
            (1234, 1, 1)
        );
        let reasons: Vec<_> = summary.skipped.iter().map(|s| &s.relative).collect();
        assert_eq!(reasons, ["notes.txt", "clip.mp4"]);
        assert_eq!(
            summary.skipped[1].reason,
            crate::files::scan::SkipReason::OtherKind(MediaKind::Video)
        );
        // Saved and loaded, the stored plan is the same; no temporary files.
        m.save(&path).unwrap();
        let back = Manifest::load(&path).unwrap().unwrap();
        assert_eq!(back.shard_plan(3).unwrap(), expected.shards[3]);
        let mut names: Vec<_> = fs::read_dir(state.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(names, [MANIFEST_FILE, "rf-run.json.items"]);

        // A video run of the same directory: one single, images reported.
        let path = state.path().join("v").join(MANIFEST_FILE);
        let (m, summary) =
            items::plan_for_test(&path, input.path(), Some(MediaKind::Video), &options);
        assert_eq!(m.ingest.singles.len(), 1);
        assert_eq!(m.ingest.singles[0].item.name, "clip.mp4");
        assert!(m.ingest.shards.is_empty());
        assert_eq!(summary.other_kind, 1234);
    }

    #[test]
    fn corrupt_and_foreign_versions_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(MANIFEST_FILE);
        fs::write(&path, b"{not json").unwrap();
        let err = Manifest::load(&path).unwrap_err();
        assert!(err.to_string().contains("move it away"), "{err}");
        let mut m = manifest_for(&images(1), &PlanOptions::default());
        m.version = 99;
        fs::write(&path, serde_json::to_vec(&m).unwrap()).unwrap();
        assert!(
            Manifest::load(&path)
                .unwrap_err()
                .to_string()
                .contains("version 99")
        );
    }

    #[test]
    fn counts_track_uploads() {
        let mut m = manifest_for(&images(40), &PlanOptions::default());
        assert_eq!((m.expected_count(), m.uploaded_count()), (40, 0));
        m.ingest.shards[0].uploaded = true;
        assert_eq!(m.uploaded_count(), 40);
        assert!(m.ingest_complete());
    }

    #[test]
    fn reconcile_without_changes_keeps_the_plan() {
        let files = images(1200);
        let mut m = manifest_for(&files, &PlanOptions::default());
        m.ingest.shards[1].uploaded = true;
        let before = m.clone();
        let rec = m.reconcile(&files, &PlanOptions::default()).unwrap();
        assert!(rec.is_empty(), "{rec:?}");
        assert_eq!(m.ingest, before.ingest);
    }

    #[test]
    fn reconcile_detects_changes_and_replans_pending_only() {
        let mut files = images(1200);
        let mut m = manifest_for(&files, &PlanOptions::default());
        assert_eq!(m.ingest.shards.len(), 3);
        m.ingest.shards[0].uploaded = true;
        let uploaded = m.ingest.shards[0].clone();
        // change one uploaded and one pending file, remove a pending one, add two
        files[0].size = 1;
        files[500].mtime_ns = 99;
        files.remove(900);
        files.push(file("zz_new.jpg", 5, MediaKind::Image));
        files.push(file("zz_new2.jpg", 5, MediaKind::Image));
        let rec = m.reconcile(&files, &PlanOptions::default()).unwrap();
        assert_eq!(rec.changed_after_upload, ["000.jpg"]);
        assert_eq!(rec.changed_pending, ["500.jpg"]);
        assert_eq!(rec.vanished_pending, ["900.jpg"]);
        assert_eq!(rec.added, ["zz_new.jpg", "zz_new2.jpg"]);
        assert_eq!(m.ingest.shards[0], uploaded);
        assert_eq!(m.expected_count(), 1201);
        // pending shards were re-cut with fresh indexes after the old ones
        assert!(
            m.ingest.shards[1..]
                .iter()
                .all(|s| s.index >= 3 && !s.uploaded)
        );
        let replanned = m.ingest.shards[1..]
            .iter()
            .flat_map(|s| s.load(None).unwrap().items)
            .find(|i| i.relative == "500.jpg")
            .unwrap();
        assert_eq!(replanned.mtime_ns, 99);
    }

    #[test]
    fn reconcile_in_single_mode_adds_singles() {
        let files = images(3);
        let mut m = manifest_for(&files, &PlanOptions::default());
        m.ingest.singles[0].uploaded = true;
        let mut more = files.clone();
        more.push(file("new.jpg", 1, MediaKind::Image));
        more.remove(1);
        let rec = m.reconcile(&more, &PlanOptions::default()).unwrap();
        assert_eq!(rec.vanished_pending, ["001.jpg"]);
        assert_eq!(rec.added, ["new.jpg"]);
        let names: Vec<_> = m
            .ingest
            .singles
            .iter()
            .map(|s| s.item.relative.as_str())
            .collect();
        assert_eq!(names, ["000.jpg", "002.jpg", "new.jpg"]);
        assert_eq!(m.ingest.mode, UploadMode::Single);
    }
}
