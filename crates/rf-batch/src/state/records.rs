//! The manifest's records: what a run is ([`RunIdentity`]) and what it has
//! done ([`IngestState`], [`JobRecord`], [`ExportState`]), with the
//! [`Manifest`] that holds them and its plain accessors.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::files::extract::ExtractReport;
use crate::files::plan::{PlannedItem, UploadMode};
use crate::files::scan::{MediaKind, SkippedFile};

use super::*;

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
    pub(super) items_file: Option<PathBuf>,
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
    /// Files of uploaded shards the service refused while indexing them
    /// (bulk mode), recorded so that a re-run tells a refused file the user
    /// fixed or removed apart from an uploaded file that changed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<RefusedFile>,
}

/// A file of an uploaded shard that the service refused while indexing it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusedFile {
    /// Its path relative to the input directory.
    pub relative: String,
    /// Whether a later attempt settled it: sent again once fixed, or no
    /// longer expected once removed.
    #[serde(default)]
    pub settled: bool,
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
                refused: Vec::new(),
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
}
