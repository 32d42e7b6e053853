//! The emulator's persisted state: workspaces, batches, files, shards, jobs.
//!
//! These are internal records, not wire models: the HTTP layer turns them
//! into `rf-types` responses. Everything here is serialised into the JSON
//! snapshot of the data dir, so field changes must stay backward readable
//! (`#[serde(default)]` on additions).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The whole state.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Db {
    /// Monotonic counter for creation order.
    #[serde(default)]
    pub(crate) seq: u64,
    #[serde(default)]
    pub(crate) workspaces: BTreeMap<String, WorkspaceData>,
}

impl Db {
    pub(crate) fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    pub(crate) fn ws(&self, ws: &str) -> Option<&WorkspaceData> {
        self.workspaces.get(ws)
    }

    pub(crate) fn ws_mut(&mut self, ws: &str) -> &mut WorkspaceData {
        self.workspaces.entry(ws.to_string()).or_default()
    }

    /// A live (not expired) batch.
    pub(crate) fn batch(&self, ws: &str, id: &str, now: DateTime<Utc>) -> Option<&Batch> {
        self.ws(ws)?.batches.get(id).filter(|b| b.expiry > now)
    }

    /// A live (not expired) batch, mutable.
    pub(crate) fn batch_mut(
        &mut self,
        ws: &str,
        id: &str,
        now: DateTime<Utc>,
    ) -> Option<&mut Batch> {
        self.workspaces
            .get_mut(ws)?
            .batches
            .get_mut(id)
            .filter(|b| b.expiry > now)
    }

    pub(crate) fn job(&self, ws: &str, id: &str) -> Option<&Job> {
        self.ws(ws)?.jobs.get(id)
    }

    pub(crate) fn job_mut(&mut self, ws: &str, id: &str) -> Option<&mut Job> {
        self.workspaces.get_mut(ws)?.jobs.get_mut(id)
    }
}

/// One workspace's data.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct WorkspaceData {
    #[serde(default)]
    pub(crate) batches: BTreeMap<String, Batch>,
    #[serde(default)]
    pub(crate) jobs: BTreeMap<String, Job>,
    /// Reference ingests already accepted, keyed by `batch \n ingestId \n payload hash`.
    #[serde(default)]
    pub(crate) ingests: BTreeMap<String, IngestRecord>,
}

/// A remembered reference ingest (for `duplicated: true`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct IngestRecord {
    pub(crate) ingest_id: String,
    pub(crate) shard_ids: Vec<String>,
}

/// Batch type.
#[allow(clippy::enum_variant_names)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum BatchKind {
    SimpleBatch,
    ShardedBatch,
    MultipartBatch,
}

impl BatchKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::SimpleBatch => "simple-batch",
            Self::ShardedBatch => "sharded-batch",
            Self::MultipartBatch => "multipart-batch",
        }
    }
}

/// Content type of a batch, part or file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Content {
    Images,
    Videos,
    Mixed,
    Metadata,
    Archives,
}

impl Content {
    /// The batch content after adding an item of `other`.
    pub(crate) fn merge(self, other: Content) -> Content {
        if self == other { self } else { Content::Mixed }
    }
}

/// A staging batch (user batch or job output batch).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Batch {
    pub(crate) id: String,
    pub(crate) display_name: String,
    pub(crate) kind: BatchKind,
    pub(crate) content: Content,
    pub(crate) created: DateTime<Utc>,
    pub(crate) expiry: DateTime<Utc>,
    pub(crate) seq: u64,
    #[serde(default)]
    pub(crate) files: Vec<FileRec>,
    #[serde(default)]
    pub(crate) shards: Vec<ShardRec>,
    #[serde(default)]
    pub(crate) parts: Vec<PartRec>,
    /// Set for job output batches.
    #[serde(default)]
    pub(crate) owner_job: Option<String>,
}

impl Batch {
    pub(crate) fn new(
        id: &str,
        display_name: Option<&str>,
        kind: BatchKind,
        content: Content,
        now: DateTime<Utc>,
        ttl: chrono::Duration,
        seq: u64,
    ) -> Self {
        Self {
            id: id.to_string(),
            display_name: display_name
                .filter(|d| !d.is_empty())
                .unwrap_or(id)
                .to_string(),
            kind,
            content,
            created: now,
            expiry: now + ttl,
            seq,
            files: Vec::new(),
            shards: Vec::new(),
            parts: Vec::new(),
            owner_job: None,
        }
    }

    /// Files of one part (all files when `part` is `None`).
    pub(crate) fn files_in<'a>(
        &'a self,
        part: Option<&'a str>,
    ) -> impl Iterator<Item = &'a FileRec> + 'a {
        self.files
            .iter()
            .filter(move |f| part.is_none() || f.part.as_deref() == part)
    }
}

/// Where a file's bytes are: a byte range of a blob file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct BlobRef {
    /// Blob file name under `blobs/` (a UUID, optionally with an extension).
    pub(crate) blob: String,
    pub(crate) offset: u64,
    pub(crate) len: u64,
}

/// One stored file of a batch.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct FileRec {
    pub(crate) name: String,
    pub(crate) data: BlobRef,
    pub(crate) content: Content,
    #[serde(default)]
    pub(crate) part: Option<String>,
    #[serde(default)]
    pub(crate) shard: Option<String>,
    #[serde(default)]
    pub(crate) nested: Option<Content>,
}

/// A part of a multipart batch.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PartRec {
    pub(crate) name: String,
    pub(crate) part_type: BatchKind,
    pub(crate) content: Content,
    pub(crate) description: Option<String>,
    pub(crate) nested: Option<Content>,
}

/// Status of one shard of a sharded batch.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ShardRec {
    pub(crate) id: String,
    pub(crate) status_name: String,
    pub(crate) status_type: String,
    pub(crate) event_ts: DateTime<Utc>,
    pub(crate) objects: u64,
    pub(crate) metadata: Value,
}

/// Life cycle state of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum JobPhase {
    Pending,
    Running,
    Succeeded,
    Failed,
    Aborted,
}

impl JobPhase {
    pub(crate) fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Aborted)
    }
}

/// Parameters in force for a job (creation values with restart overrides applied).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct JobParams {
    pub(crate) timeout_seconds: f64,
    pub(crate) max_parallel_tasks: u32,
    pub(crate) max_image_failure_rate: Option<f64>,
}

/// A batch job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Job {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) definition: Value,
    pub(crate) created: DateTime<Utc>,
    pub(crate) last_update: DateTime<Utc>,
    pub(crate) seq: u64,
    pub(crate) phase: JobPhase,
    pub(crate) current_stage: Option<String>,
    pub(crate) last_notification: Value,
    pub(crate) restart_overrides: Vec<Value>,
    pub(crate) params: JobParams,
    /// Bumped by abort and restart so that a stale runner stops.
    pub(crate) generation: u64,
    #[serde(default)]
    pub(crate) stages: Vec<StageRec>,
    #[serde(default)]
    pub(crate) logs: Vec<LogRec>,
}

/// A stage of a job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StageRec {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) output_batches: Vec<String>,
    pub(crate) start: DateTime<Utc>,
    pub(crate) notification: Value,
    pub(crate) status_type: String,
    pub(crate) last_event: DateTime<Utc>,
    pub(crate) tasks: Vec<TaskRec>,
}

/// A task of a stage: one chunk of work.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct TaskRec {
    pub(crate) id: String,
    pub(crate) notification: Value,
    pub(crate) status_type: String,
    pub(crate) progress: Option<f64>,
    pub(crate) event_ts: DateTime<Utc>,
    /// Input items (a copy of the input files' names and data locations).
    pub(crate) inputs: Vec<TaskInput>,
}

/// One input item of a task.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct TaskInput {
    pub(crate) name: String,
    pub(crate) data: BlobRef,
    pub(crate) content: Content,
}

/// One job log entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct LogRec {
    pub(crate) created: DateTime<Utc>,
    pub(crate) stage: Option<String>,
    pub(crate) task: Option<String>,
    pub(crate) severity: String,
    pub(crate) module: String,
    pub(crate) log_type: String,
    pub(crate) payload: serde_json::Map<String, Value>,
}
