//! Counters for tests and soak runs, served at `GET /_emulator/stats`
//! ([`EmulatorStats`]): requests seen, faults injected, uploads accepted,
//! jobs created, and a per-batch view of what is indexed, so a test can
//! prove "no duplicates, no losses" from outside the process.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::chaos::{Chaos, ChaosConfig, ChaosKind};
use crate::model::Db;
use crate::shaping::ShapingStats;

/// What the emulator has seen since it started (counters are not persisted;
/// the `workspaces` view is read from the current state).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct EmulatorStats {
    /// Requests received on every route except `/_emulator/stats` (faulted
    /// ones included).
    pub requests: u64,
    /// Of [`Self::requests`], those that came over HTTP/2 (h2c, when a
    /// client such as `rf --http2-prior-knowledge` opens with its preface).
    pub http2_requests: u64,
    /// The chaos settings in force (`null` when chaos mode is off).
    pub chaos: Option<ChaosConfig>,
    /// Faults injected by chaos mode, per kind (`throttle`, `error`,
    /// `drop-request`, `drop-response`, `delay`; every kind is listed).
    pub faults: BTreeMap<ChaosKind, u64>,
    /// What network shaping applied (`null` when none is configured).
    pub shaping: Option<ShapingStats>,
    /// Signed `PUT`s of tar shards accepted (a re-`PUT` of the same URL
    /// counts again: it replaces the shard).
    pub shard_uploads: u64,
    /// [`Self::shard_uploads`] per batch ID (summed over workspaces).
    pub shard_uploads_by_batch: BTreeMap<String, u64>,
    /// Signed `PUT`s of videos accepted.
    pub video_uploads: u64,
    /// Multipart image uploads accepted.
    pub image_uploads: u64,
    /// Jobs created (a repeated start with the same definition, answered
    /// as success, does not count here).
    pub jobs_created: u64,
    /// Repeated job starts answered as success because the definition matched.
    pub job_starts_repeated: u64,
    /// Current content per workspace.
    pub workspaces: BTreeMap<String, WorkspaceStats>,
}

/// The current content of one workspace.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct WorkspaceStats {
    /// Live batches by ID (job output batches included).
    pub batches: BTreeMap<String, BatchStats>,
    /// Jobs by ID.
    pub jobs: BTreeMap<String, JobStats>,
}

/// The indexed content of one batch.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct BatchStats {
    /// Files stored (indexed shard members, uploaded images and videos,
    /// job outputs).
    pub files: u64,
    /// Distinct file names among them (less than `files` means duplicates).
    pub distinct_names: u64,
    /// Shards known (one per shard ID, however often it was uploaded).
    pub shards: u64,
    /// Shards indexed successfully.
    pub shards_indexed: u64,
    /// Shards whose indexing failed.
    pub shards_failed: u64,
    /// Shards uploaded but not indexed yet.
    pub shards_pending: u64,
    /// The job that produced this batch, for output batches.
    pub output_of_job: Option<String>,
}

/// The state of one job.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct JobStats {
    /// `pending`, `running`, `succeeded`, `failed` or `aborted`.
    pub phase: String,
    /// Bumped by every abort and restart.
    pub generation: u64,
}

/// The live counters.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) requests: AtomicU64,
    pub(crate) http2_requests: AtomicU64,
    shard_uploads: AtomicU64,
    shard_uploads_by_batch: Mutex<BTreeMap<String, u64>>,
    pub(crate) video_uploads: AtomicU64,
    pub(crate) image_uploads: AtomicU64,
    pub(crate) jobs_created: AtomicU64,
    pub(crate) job_starts_repeated: AtomicU64,
}

impl Counters {
    /// Adds one to a counter.
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an accepted shard upload of `batch`.
    pub(crate) fn shard_uploaded(&self, batch: &str) {
        Self::bump(&self.shard_uploads);
        let mut by_batch = self
            .shard_uploads_by_batch
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        *by_batch.entry(batch.to_string()).or_default() += 1;
    }

    /// The whole picture: counters plus the current content of `db`.
    pub(crate) fn snapshot(
        &self,
        chaos: &Chaos,
        db: &Db,
        now: chrono::DateTime<chrono::Utc>,
    ) -> EmulatorStats {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let workspaces = db
            .workspaces()
            .iter()
            .map(|(ws, data)| {
                let batches = data
                    .batches
                    .values()
                    .filter(|b| b.expiry > now)
                    .map(|b| {
                        let names: std::collections::HashSet<&str> =
                            b.files.iter().map(|f| f.name.as_str()).collect();
                        let count = |name: &str| {
                            b.shards.iter().filter(|s| s.status_name == name).count() as u64
                        };
                        let stats = BatchStats {
                            files: b.files.len() as u64,
                            distinct_names: names.len() as u64,
                            shards: b.shards.len() as u64,
                            shards_indexed: count("shard-ingested"),
                            shards_failed: count("shard-ingest-failed"),
                            shards_pending: count("shard-uploaded"),
                            output_of_job: b.owner_job.clone(),
                        };
                        (b.id.clone(), stats)
                    })
                    .collect();
                let jobs = data
                    .jobs
                    .values()
                    .map(|j| {
                        let phase = serde_json::to_value(j.phase)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_string))
                            .unwrap_or_default();
                        (
                            j.id.clone(),
                            JobStats {
                                phase,
                                generation: j.generation,
                            },
                        )
                    })
                    .collect();
                (ws.clone(), WorkspaceStats { batches, jobs })
            })
            .collect();
        EmulatorStats {
            requests: load(&self.requests),
            http2_requests: load(&self.http2_requests),
            chaos: chaos.config(),
            faults: ChaosKind::ALL
                .into_iter()
                .map(|k| (k, chaos.injected(k)))
                .collect(),
            shaping: None,
            shard_uploads: load(&self.shard_uploads),
            shard_uploads_by_batch: self
                .shard_uploads_by_batch
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            video_uploads: load(&self.video_uploads),
            image_uploads: load(&self.image_uploads),
            jobs_created: load(&self.jobs_created),
            job_starts_repeated: load(&self.job_starts_repeated),
            workspaces,
        }
    }
}
