//! Background work of a running emulator: the committer (group commits
//! of the state, see [`crate::store`]), the expiry sweeper, and resuming
//! what a previous run left unfinished: jobs, shards acknowledged but not
//! indexed yet, reference ingests still being fetched, webhook deliveries.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use crate::ctx::Ctx;
use crate::ingest;
use crate::jobs;

/// Blob files nothing points at are deleted once they are this old (younger
/// ones may belong to an upload that is being registered).
const ORPHAN_AGE: Duration = Duration::from_secs(600);

/// Pause after a failed commit before the next try.
const COMMIT_RETRY: Duration = Duration::from_millis(200);

/// Longest a change nobody waits for (job progress, indexing results) waits
/// for its commit: such changes are gathered for this long, so a running
/// job does not rewrite its record for every item. A request waiting for
/// its write ends the pause at once.
const BACKGROUND_COMMIT_PAUSE: Duration = Duration::from_millis(100);

/// Starts the background tasks on the current runtime.
pub(crate) fn start(ctx: &Arc<Ctx>) {
    tokio::spawn(commit_loop(ctx.clone()));
    tokio::spawn(sweep_loop(ctx.clone()));
    resume_jobs(ctx);
    resume_indexing(ctx);
    let resumed = resume_reference_ingests(ctx);
    fail_interrupted_reference_ingests(ctx, &resumed);
    resume_webhooks(ctx);
}

/// Sends again the webhook notifications a previous run had not delivered
/// (nor given up).
fn resume_webhooks(ctx: &Ctx) {
    let waiting: Vec<_> = ctx.store.read(|db| {
        db.outbox()
            .iter()
            .map(|(id, rec)| (id.clone(), rec.clone()))
            .collect()
    });
    for (id, rec) in waiting {
        tracing::info!("sending a webhook notification again after the restart");
        ctx.webhooks.resend(id, rec);
    }
}

/// Commits the state whenever writes wait for it: one commit at a time,
/// each taking every change made since the previous one (group commit);
/// at once when a request waits, else after [`BACKGROUND_COMMIT_PAUSE`].
async fn commit_loop(c: Arc<Ctx>) {
    // Closing: the store's release makes the last commit.
    while !c.closing.is_cancelled() {
        if !c.store.needs_commit() {
            tokio::select! {
                () = c.closing.cancelled() => break,
                () = c.store.commit_wanted() => continue,
            }
        }
        if !c.store.has_waiters() {
            tokio::select! {
                () = c.closing.cancelled() => {}
                () = tokio::time::sleep(BACKGROUND_COMMIT_PAUSE) => {}
                () = c.store.commit_awaited() => {}
            }
        }
        let c2 = c.clone();
        match tokio::task::spawn_blocking(move || c2.store.commit()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::error!("{e}");
                tokio::time::sleep(COMMIT_RETRY).await;
            }
            Err(e) => tracing::error!("state committer failed: {e}"),
        }
    }
}

/// Drops expired batches now and then, and deletes orphaned blobs.
async fn sweep_loop(c: Arc<Ctx>) {
    let period = c
        .config
        .batch_ttl
        .clamp(Duration::from_millis(100), Duration::from_secs(60));
    let mut last_gc = std::time::Instant::now();
    loop {
        tokio::select! {
            () = c.closing.cancelled() => break,
            () = tokio::time::sleep(period) => {}
        }
        sweep_expired(&c);
        if last_gc.elapsed() >= ORPHAN_AGE {
            last_gc = std::time::Instant::now();
            let c2 = c.clone();
            let _ = tokio::task::spawn_blocking(move || remove_orphans(&c2, ORPHAN_AGE)).await;
        }
    }
}

/// Restarts the runners of jobs a previous run left unfinished.
fn resume_jobs(ctx: &Arc<Ctx>) {
    let jobs: Vec<(String, String)> = ctx.store.read(|db| {
        db.workspaces()
            .iter()
            .flat_map(|(ws, w)| {
                w.jobs
                    .values()
                    .filter(|j| !j.phase.is_terminal())
                    .map(move |j| (ws.clone(), j.id.clone()))
            })
            .collect()
    });
    for (ws, job) in jobs {
        tracing::info!(workspace = %ws, job = %job, "resuming unfinished job");
        jobs::spawn(ctx, &ws, &job);
    }
}

/// Indexes the shards a previous run acknowledged but did not index
/// (`shard-uploaded`, their blob stored).
fn resume_indexing(ctx: &Arc<Ctx>) {
    let now = ctx.now();
    let shards: Vec<(String, String, String, String)> = ctx.store.read(|db| {
        let mut out = Vec::new();
        for (ws, w) in db.workspaces() {
            for b in w.batches.values().filter(|b| b.expiry > now) {
                for s in &b.shards {
                    if let (true, Some(blob)) = (s.status_name == "shard-uploaded", &s.blob) {
                        out.push((ws.clone(), b.id.clone(), s.id.clone(), blob.clone()));
                    }
                }
            }
        }
        out
    });
    for (ws, batch, shard, blob) in shards {
        tracing::info!(workspace = %ws, batch = %batch, shard = %shard, "indexing a shard uploaded before the restart");
        let ctx = ctx.clone();
        tokio::spawn(async move {
            ingest::index_shard(&ctx, &ws, &batch, &shard, &blob).await;
        });
    }
}

/// Resumes the fetch of every reference ingest a previous run left
/// unfinished (its references are kept with it until the fetch ends);
/// returns the shards being fetched again.
fn resume_reference_ingests(ctx: &Arc<Ctx>) -> BTreeSet<String> {
    let pending: Vec<_> = ctx.store.read(|db| {
        db.workspaces()
            .iter()
            .flat_map(|(ws, w)| {
                w.ingests
                    .iter()
                    .filter(|(_, r)| r.pending.is_some())
                    .map(move |(key, r)| (ws.clone(), key.clone(), r.clone()))
            })
            .collect()
    });
    let mut shards = BTreeSet::new();
    for (ws, key, rec) in pending {
        tracing::info!(workspace = %ws, ingest = %rec.ingest_id, "resuming a reference ingest cut off by the restart");
        shards.extend(rec.shard_ids.iter().cloned());
        ingest::resume_fetch(ctx, &ws, &key, &rec);
    }
    shards
}

/// Marks the shards of reference ingests a previous run was still
/// fetching (`shard-ingest-pending`) and that cannot be resumed (their
/// references were not kept: state of an older version) failed, saying to
/// ingest them again, and forgets those ingests, so that the same request
/// is taken anew rather than answered `duplicated`.
fn fail_interrupted_reference_ingests(ctx: &Ctx, resumed: &BTreeSet<String>) {
    let now = ctx.now();
    let failed = ctx.store.write(|db| {
        let mut pending: Vec<(String, String, BTreeSet<String>)> = Vec::new();
        for (ws, w) in db.workspaces() {
            for b in w.batches.values().filter(|b| b.expiry > now) {
                let ids: BTreeSet<String> = b
                    .shards
                    .iter()
                    .filter(|s| s.status_name == "shard-ingest-pending")
                    .filter(|s| !resumed.contains(&s.id))
                    .map(|s| s.id.clone())
                    .collect();
                if !ids.is_empty() {
                    pending.push((ws.clone(), b.id.clone(), ids));
                }
            }
        }
        let mut count = 0;
        for (ws, batch, ids) in pending {
            let stale: Vec<String> = db.ws(&ws).map_or_else(Vec::new, |w| {
                w.ingests
                    .iter()
                    .filter(|(_, r)| r.shard_ids.iter().any(|s| ids.contains(s)))
                    .map(|(k, _)| k.clone())
                    .collect()
            });
            for key in stale {
                db.remove_ingest(&ws, &key);
            }
            if let Some(b) = db.batch_mut(&ws, &batch, now) {
                for s in b.shards.iter_mut().filter(|s| ids.contains(&s.id)) {
                    s.status_name = "shard-ingest-failed".into();
                    s.status_type = "error".into();
                    s.event_ts = now;
                    s.objects = 0;
                    s.metadata = serde_json::json!({"reason": "the emulator restarted before these references were fetched; ingest them again"});
                    count += 1;
                }
            }
        }
        count
    });
    if failed > 0 {
        tracing::warn!(
            "{failed} reference shard(s) cut off by a restart marked failed; ingest them again"
        );
    }
}

/// Drops expired batches and deletes their blobs.
pub(crate) fn sweep_expired(ctx: &Ctx) {
    let now = ctx.now();
    let blobs: BTreeSet<String> = ctx.store.write(|db| {
        let mut expired = Vec::new();
        let mut stale_ingests = Vec::new();
        for (ws, w) in db.workspaces() {
            expired.extend(
                w.batches
                    .values()
                    .filter(|b| b.expiry <= now)
                    .map(|b| (ws.clone(), b.id.clone())),
            );
            stale_ingests.extend(
                w.ingests
                    .keys()
                    .filter(|k| {
                        let batch = k.split('\n').next().unwrap_or("");
                        w.batches.get(batch).is_none_or(|b| b.expiry <= now)
                    })
                    .map(|k| (ws.clone(), k.clone())),
            );
        }
        let mut gone = BTreeSet::new();
        for (ws, id) in expired {
            if let Some(b) = db.remove_batch(&ws, &id) {
                gone.extend(b.shards.iter().flat_map(|s| s.blobs()));
                gone.extend(b.files.into_iter().map(|f| f.data.blob));
            }
        }
        for (ws, key) in stale_ingests {
            db.remove_ingest(&ws, &key);
        }
        gone
    });
    for b in blobs {
        ctx.store.remove_blob(&b);
    }
}

/// Deletes blob files that no batch, shard or job task refers to and that
/// are older than `min_age` (e.g. files of a batch that expired and was
/// replaced by a new one of the same ID). Returns how many were deleted.
pub(crate) fn remove_orphans(ctx: &Ctx, min_age: Duration) -> usize {
    let referenced: BTreeSet<String> = ctx.store.read(|db| {
        let mut set = BTreeSet::new();
        for w in db.workspaces().values() {
            for b in w.batches.values() {
                set.extend(b.files.iter().map(|f| f.data.blob.clone()));
                for s in &b.shards {
                    set.extend(s.blobs());
                }
            }
            for j in w.jobs.values() {
                for st in &j.stages {
                    for t in &st.tasks {
                        set.extend(t.inputs.iter().map(|i| i.data.blob.clone()));
                    }
                }
            }
        }
        set
    });
    let Ok(dir) = std::fs::read_dir(ctx.store.blob_path("")) else {
        return 0;
    };
    let mut removed = 0;
    for entry in dir.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if referenced.contains(&name) {
            continue;
        }
        let old_enough = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age >= min_age);
        if old_enough && std::fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}
