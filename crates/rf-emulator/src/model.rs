//! The emulator's persisted state: workspaces, batches, files, shards, jobs.
//!
//! These are internal records, not wire models: the HTTP layer turns them
//! into `rf-types` responses. Batches, jobs and ingest records are stored
//! as JSON values in the data dir's database (and older data dirs hold a
//! JSON snapshot of the whole [`Db`]), so field changes must stay backward
//! readable (`#[serde(default)]` on additions).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The whole state, in memory; [`crate::store`] keeps it in the database
/// record by record. Every change goes through a method here that names
/// the record it touches ([`Record`]), so the store commits exactly those.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Db {
    /// Monotonic counter for creation order.
    #[serde(default)]
    pub(crate) seq: u64,
    #[serde(default)]
    workspaces: BTreeMap<String, WorkspaceData>,
    /// Webhook notifications not delivered (nor given up) yet, by ID.
    #[serde(default)]
    outbox: BTreeMap<String, OutboxRec>,
    /// Records changed since the store last took them.
    #[serde(skip)]
    changed: BTreeSet<Record>,
}

/// One record of the state as the database keeps it: a batch, a job or a
/// reference ingest's dedup entry, each under its workspace.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Record {
    Batch { ws: String, id: String },
    Job { ws: String, id: String },
    Ingest { ws: String, key: String },
    Outbox { id: String },
    Task { ws: String, id: String },
}

/// A webhook notification waiting for delivery: resent after a restart.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct OutboxRec {
    pub(crate) url: String,
    pub(crate) workspace: String,
    pub(crate) body: Value,
}

impl Db {
    pub(crate) fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// Every workspace (read only: changes go through the methods below).
    pub(crate) fn workspaces(&self) -> &BTreeMap<String, WorkspaceData> {
        &self.workspaces
    }

    pub(crate) fn ws(&self, ws: &str) -> Option<&WorkspaceData> {
        self.workspaces.get(ws)
    }

    fn ws_mut(&mut self, ws: &str) -> &mut WorkspaceData {
        self.workspaces.entry(ws.to_string()).or_default()
    }

    fn touch(&mut self, record: Record) {
        self.changed.insert(record);
    }

    /// The records changed since the last call, for the store to commit.
    pub(crate) fn take_changes(&mut self) -> BTreeSet<Record> {
        std::mem::take(&mut self.changed)
    }

    /// Marks records changed again (their commit failed).
    pub(crate) fn restore_changes(&mut self, records: BTreeSet<Record>) {
        self.changed.extend(records);
    }

    /// True when changes wait for the store.
    pub(crate) fn has_changes(&self) -> bool {
        !self.changed.is_empty()
    }

    /// Adds (or replaces) a batch.
    pub(crate) fn insert_batch(&mut self, ws: &str, batch: Batch) {
        let id = batch.id.clone();
        self.ws_mut(ws).batches.insert(id.clone(), batch);
        self.touch(Record::Batch { ws: ws.into(), id });
    }

    /// Removes a batch (expired or not).
    pub(crate) fn remove_batch(&mut self, ws: &str, id: &str) -> Option<Batch> {
        let gone = self.workspaces.get_mut(ws)?.batches.remove(id)?;
        self.touch(Record::Batch {
            ws: ws.into(),
            id: id.into(),
        });
        Some(gone)
    }

    /// Adds (or replaces) a job.
    pub(crate) fn insert_job(&mut self, ws: &str, job: Job) {
        let id = job.id.clone();
        self.ws_mut(ws).jobs.insert(id.clone(), job);
        self.touch(Record::Job { ws: ws.into(), id });
    }

    /// Adds (or replaces) an async task.
    pub(crate) fn insert_task(&mut self, ws: &str, task: AsyncTaskRecord) {
        let id = task.task_id.clone();
        self.ws_mut(ws).tasks.insert(id.clone(), task);
        self.touch(Record::Task { ws: ws.into(), id });
    }

    /// An async task.
    pub(crate) fn task(&self, ws: &str, id: &str) -> Option<&AsyncTaskRecord> {
        self.ws(ws)?.tasks.get(id)
    }

    /// The Asset Library job task started with idempotency key `key`.
    pub(crate) fn task_by_key(&self, ws: &str, key: &str) -> Option<&AsyncTaskRecord> {
        self.ws(ws)?
            .tasks
            .values()
            .find(|t| t.idempotency_key.as_deref() == Some(key))
    }

    /// Remembers an accepted reference ingest under its dedup key.
    pub(crate) fn insert_ingest(&mut self, ws: &str, key: String, record: IngestRecord) {
        self.ws_mut(ws).ingests.insert(key.clone(), record);
        self.touch(Record::Ingest { ws: ws.into(), key });
    }

    /// Marks a reference ingest's fetch done (nothing to resume).
    pub(crate) fn finish_ingest(&mut self, ws: &str, key: &str) {
        if let Some(w) = self.workspaces.get_mut(ws)
            && let Some(rec) = w.ingests.get_mut(key)
            && rec.pending.take().is_some()
        {
            self.touch(Record::Ingest {
                ws: ws.into(),
                key: key.into(),
            });
        }
    }

    /// Forgets a reference ingest's dedup entry.
    pub(crate) fn remove_ingest(&mut self, ws: &str, key: &str) {
        if let Some(w) = self.workspaces.get_mut(ws)
            && w.ingests.remove(key).is_some()
        {
            self.touch(Record::Ingest {
                ws: ws.into(),
                key: key.into(),
            });
        }
    }

    /// The webhook notifications waiting for delivery.
    pub(crate) fn outbox(&self) -> &BTreeMap<String, OutboxRec> {
        &self.outbox
    }

    /// Adds a notification to deliver.
    pub(crate) fn insert_outbox(&mut self, id: String, rec: OutboxRec) {
        self.outbox.insert(id.clone(), rec);
        self.touch(Record::Outbox { id });
    }

    /// Removes a notification delivered or given up.
    pub(crate) fn remove_outbox(&mut self, id: &str) {
        if self.outbox.remove(id).is_some() {
            self.touch(Record::Outbox { id: id.into() });
        }
    }

    /// A live (not expired) batch.
    pub(crate) fn batch(&self, ws: &str, id: &str, now: DateTime<Utc>) -> Option<&Batch> {
        self.ws(ws)?.batches.get(id).filter(|b| b.expiry > now)
    }

    /// A live (not expired) batch, to change.
    pub(crate) fn batch_mut(
        &mut self,
        ws: &str,
        id: &str,
        now: DateTime<Utc>,
    ) -> Option<&mut Batch> {
        self.batch(ws, id, now)?;
        self.touch(Record::Batch {
            ws: ws.into(),
            id: id.into(),
        });
        self.workspaces.get_mut(ws)?.batches.get_mut(id)
    }

    pub(crate) fn job(&self, ws: &str, id: &str) -> Option<&Job> {
        self.ws(ws)?.jobs.get(id)
    }

    /// A job, to change.
    pub(crate) fn job_mut(&mut self, ws: &str, id: &str) -> Option<&mut Job> {
        self.job(ws, id)?;
        self.touch(Record::Job {
            ws: ws.into(),
            id: id.into(),
        });
        self.workspaces.get_mut(ws)?.jobs.get_mut(id)
    }

    /// The stored form of a record (JSON), `None` when it no longer exists.
    pub(crate) fn encode(&self, record: &Record) -> Result<Option<Vec<u8>>, serde_json::Error> {
        let w = |ws: &str| self.workspaces.get(ws);
        match record {
            Record::Batch { ws, id } => w(ws)
                .and_then(|w| w.batches.get(id))
                .map(serde_json::to_vec),
            Record::Job { ws, id } => w(ws).and_then(|w| w.jobs.get(id)).map(serde_json::to_vec),
            Record::Ingest { ws, key } => w(ws)
                .and_then(|w| w.ingests.get(key))
                .map(serde_json::to_vec),
            Record::Outbox { id } => self.outbox.get(id).map(serde_json::to_vec),
            Record::Task { ws, id } => w(ws).and_then(|w| w.tasks.get(id)).map(serde_json::to_vec),
        }
        .transpose()
    }

    /// Puts a record read back from the database (no change is recorded).
    pub(crate) fn load(&mut self, record: Record, bytes: &[u8]) -> Result<(), serde_json::Error> {
        match record {
            Record::Batch { ws, id } => {
                let b = serde_json::from_slice(bytes)?;
                self.ws_mut(&ws).batches.insert(id, b);
            }
            Record::Job { ws, id } => {
                let j = serde_json::from_slice(bytes)?;
                self.ws_mut(&ws).jobs.insert(id, j);
            }
            Record::Ingest { ws, key } => {
                let i = serde_json::from_slice(bytes)?;
                self.ws_mut(&ws).ingests.insert(key, i);
            }
            Record::Outbox { id } => {
                let o = serde_json::from_slice(bytes)?;
                self.outbox.insert(id, o);
            }
            Record::Task { ws, id } => {
                let t = serde_json::from_slice(bytes)?;
                self.ws_mut(&ws).tasks.insert(id, t);
            }
        }
        Ok(())
    }

    /// Marks every record changed (a state migrated from a JSON snapshot is
    /// written whole).
    pub(crate) fn touch_all(&mut self) {
        let mut all = BTreeSet::new();
        for (ws, w) in &self.workspaces {
            let ws = ws.clone();
            all.extend(w.batches.keys().map(|id| Record::Batch {
                ws: ws.clone(),
                id: id.clone(),
            }));
            all.extend(w.jobs.keys().map(|id| Record::Job {
                ws: ws.clone(),
                id: id.clone(),
            }));
            all.extend(w.ingests.keys().map(|key| Record::Ingest {
                ws: ws.clone(),
                key: key.clone(),
            }));
            all.extend(w.tasks.keys().map(|id| Record::Task {
                ws: ws.clone(),
                id: id.clone(),
            }));
        }
        all.extend(
            self.outbox
                .keys()
                .map(|id| Record::Outbox { id: id.clone() }),
        );
        self.changed.extend(all);
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
    /// Async tasks (an Asset Library job's start), by task ID.
    #[serde(default)]
    pub(crate) tasks: BTreeMap<String, AsyncTaskRecord>,
}

/// An async task of the workspace: the start of an Asset Library job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AsyncTaskRecord {
    pub(crate) task_id: String,
    /// `completed` or `failed` (the emulator starts the job before it
    /// answers).
    pub(crate) status: String,
    /// What the task produced (`jobId`, `batchId`, `images`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) result: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
    /// The create's idempotency key and body, to answer a repeat the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) idempotency_key: Option<String>,
    #[serde(default)]
    pub(crate) request: serde_json::Value,
    /// The answer the create got.
    #[serde(default)]
    pub(crate) created: serde_json::Value,
}

/// A remembered reference ingest (for `duplicated: true`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct IngestRecord {
    pub(crate) ingest_id: String,
    pub(crate) shard_ids: Vec<String>,
    /// What is still to fetch, kept until the fetch ends so that a restart
    /// resumes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) pending: Option<PendingFetch>,
}

/// A reference ingest's fetch, as a restart needs it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PendingFetch {
    pub(crate) batch_id: String,
    pub(crate) videos: bool,
    #[serde(default)]
    pub(crate) notifications_url: Option<String>,
    #[serde(default)]
    pub(crate) categories: Option<Vec<String>>,
    /// Why the references file could not be fetched, if it could not.
    #[serde(default)]
    pub(crate) failure: Option<String>,
    /// The chunks: a shard ID (images) and its references.
    pub(crate) work: Vec<(String, Vec<rf_types::Reference>)>,
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
    /// The blob holding the shard's content: a new one for every upload,
    /// so a re-upload never changes bytes an earlier download URL names.
    /// `None` in states of older emulators and for reference shards not
    /// fetched yet ([`ShardRec::blobs`] then names the fixed ones).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) blob: Option<String>,
}

impl ShardRec {
    /// Every blob the shard may use: its own, and the fixed names older
    /// emulators gave (`<id>.tar` uploads, `<id>.refs` fetched references).
    pub(crate) fn blobs(&self) -> impl Iterator<Item = String> + '_ {
        self.blob
            .iter()
            .cloned()
            .chain([format!("{}.tar", self.id), format!("{}.refs", self.id)])
    }
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

    /// The phase in words (what a job search matches).
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Aborted => "aborted",
        }
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
    /// The image's metadata file (`<name>.json` in the job's
    /// `imagesMetadataPart`), when the job names such a part and the file
    /// exists.
    #[serde(default)]
    pub(crate) metadata: Option<BlobRef>,
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
