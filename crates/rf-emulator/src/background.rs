//! Background work of a running emulator: the snapshot writer, the expiry
//! sweeper, and resuming jobs left unfinished by a previous run.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use crate::ctx::Ctx;
use crate::jobs;

/// Blob files nothing points at are deleted once they are this old (younger
/// ones may belong to an upload that is being registered).
const ORPHAN_AGE: Duration = Duration::from_secs(600);

/// Pause between a burst of writes and the snapshot that records it.
const PERSIST_DEBOUNCE: Duration = Duration::from_millis(200);

/// Starts the background tasks on the current runtime.
pub(crate) fn start(ctx: &Arc<Ctx>) {
    let c = ctx.clone();
    tokio::spawn(async move {
        let mut last = Duration::ZERO;
        loop {
            tokio::select! {
                () = c.closing.cancelled() => break,
                () = c.store.changed() => {}
            }
            // Big states take long to serialise (under the lock): keep the
            // writer's share of the time at about a tenth.
            tokio::time::sleep(PERSIST_DEBOUNCE.max(last.saturating_mul(10))).await;
            let c2 = c.clone();
            let started = std::time::Instant::now();
            let result = tokio::task::spawn_blocking(move || c2.store.persist()).await;
            last = started.elapsed().min(Duration::from_secs(30));
            match result {
                Ok(Err(e)) => tracing::error!("cannot write state snapshot: {e}"),
                Err(e) => tracing::error!("snapshot writer failed: {e}"),
                Ok(Ok(())) => {}
            }
        }
    });
    let c = ctx.clone();
    tokio::spawn(async move {
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
    });
    let jobs: Vec<(String, String)> = ctx.store.read(|db| {
        db.workspaces
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

/// Drops expired batches and deletes their blobs.
pub(crate) fn sweep_expired(ctx: &Ctx) {
    let now = ctx.now();
    let blobs: BTreeSet<String> = ctx.store.write(|db| {
        let mut gone = BTreeSet::new();
        for w in db.workspaces.values_mut() {
            let expired: Vec<String> = w
                .batches
                .iter()
                .filter(|(_, b)| b.expiry <= now)
                .map(|(id, _)| id.clone())
                .collect();
            for id in expired {
                if let Some(b) = w.batches.remove(&id) {
                    gone.extend(b.files.into_iter().map(|f| f.data.blob));
                    for s in b.shards {
                        gone.insert(format!("{}.tar", s.id));
                        gone.insert(format!("{}.refs", s.id));
                    }
                }
            }
            w.ingests.retain(|k, _| {
                let batch = k.split('\n').next().unwrap_or("");
                w.batches.contains_key(batch)
            });
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
        for w in db.workspaces.values() {
            for b in w.batches.values() {
                set.extend(b.files.iter().map(|f| f.data.blob.clone()));
                for s in &b.shards {
                    set.insert(format!("{}.tar", s.id));
                    set.insert(format!("{}.refs", s.id));
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
