//! Background work of a running emulator: the snapshot writer, the expiry
//! sweeper, and resuming jobs left unfinished by a previous run.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use crate::app::Ctx;
use crate::runner;

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
        loop {
            tokio::select! {
                () = c.closing.cancelled() => break,
                () = tokio::time::sleep(period) => {}
            }
            sweep_expired(&c);
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
        runner::spawn(ctx, &ws, &job);
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
