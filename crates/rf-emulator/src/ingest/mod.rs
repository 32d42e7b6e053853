//! Ingest: getting files into batches behind the upload handlers.
//!
//! - uploaded tar shards are indexed in the background ([`shard_uploaded`],
//!   [`index_shard`]: each file becomes a byte range of the shard's blob);
//! - uploaded videos are registered ([`video_uploaded`]);
//! - reference ingests are accepted and fetched ([`references`], from
//!   loopback URLs only, see [`fetch`]).
//!
//! All report through shard statuses and data-staging webhooks.

mod fetch;
mod references;

use std::sync::Arc;

use rf_types::{
    FailedFile, FilesStatusNotification, IngestId, ShardId, StagingNotification,
    StagingNotificationBody,
};
use serde_json::{Value, json};

use crate::batches::{owns_blob, put_file, set_shard};
use crate::ctx::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::media::FileFailure;
use crate::model::{BlobRef, Content, FileRec, ShardRec};
use crate::shard::{ShardIndex, index_tar};
use crate::webhook::new_event_id;

pub(crate) use references::{
    Accepted, RefKind, ReferencesRequest, accept_references, resume_fetch,
};

/// Most failed files listed in one files-status webhook.
const MAX_WEBHOOK_FILES: usize = 1000;

/// Where webhooks of an ingest go.
#[derive(Debug, Clone)]
struct Hook {
    url: String,
    ingest_id: String,
    ingest_status: bool,
    files_status: bool,
}

fn send_staging(
    ctx: &Ctx,
    ws: &str,
    batch_id: &str,
    hook: &Hook,
    shard: Option<&str>,
    body: StagingNotificationBody,
) {
    let n = StagingNotification {
        event_id: new_event_id(),
        ingest_id: IngestId::from(hook.ingest_id.as_str()),
        batch_id: batch_id.to_string(),
        shard_id: shard.map(ShardId::from),
        notification: body,
        delivery_attempt: 1,
    };
    ctx.webhooks.send_staging(&hook.url, ws, &n);
}

/// The files-status notification of an indexed shard.
fn index_files_status(index: &ShardIndex) -> StagingNotificationBody {
    let names: Vec<String> = index.files.iter().map(|f| f.name.clone()).collect();
    files_status(
        &names,
        &index.failed,
        index.failed_count,
        index.error.is_none(),
    )
}

fn files_status(
    ingested: &[String],
    failed: &[(String, FileFailure)],
    failed_count: u64,
    archive_ok: bool,
) -> StagingNotificationBody {
    let truncated = ingested.len() > MAX_WEBHOOK_FILES
        || failed.len() > MAX_WEBHOOK_FILES
        || failed_count as usize > failed.len();
    StagingNotificationBody::FilesStatus(FilesStatusNotification {
        success: archive_ok,
        ingested_files: ingested.iter().take(MAX_WEBHOOK_FILES).cloned().collect(),
        failed_files: failed
            .iter()
            .take(MAX_WEBHOOK_FILES)
            .map(|(name, f)| FailedFile {
                kind: f.kind.to_string(),
                file_name: name.clone(),
                reason: f.reason.clone(),
            })
            .collect(),
        content_truncated: truncated,
    })
}

fn failure_details(failed: &[(String, FileFailure)]) -> Value {
    Value::Array(
        failed
            .iter()
            .take(20)
            .map(|(n, f)| json!({"fileName": n, "type": f.kind, "reason": f.reason}))
            .collect(),
    )
}

/// Writes an index result into the batch: files and shard status.
fn record_index(
    ctx: &Ctx,
    ws: &str,
    batch_id: &str,
    shard_id: &str,
    blob: &str,
    index: &ShardIndex,
) {
    let now = ctx.now();
    ctx.store.write(|db| {
        let current = db
            .batch(ws, batch_id, now)
            .and_then(|b| b.shards.iter().find(|s| s.id == shard_id))
            .and_then(|s| s.blob.as_deref());
        if current.is_some_and(|c| c != blob) {
            // A later upload of this shard replaced this one; its index wins.
            return;
        }
        let Some(batch) = db.batch_mut(ws, batch_id, now) else {
            return;
        };
        // A re-uploaded shard replaces its earlier content.
        batch.files.retain(|f| f.shard.as_deref() != Some(shard_id));
        for f in &index.files {
            batch.files.push(FileRec {
                name: f.name.clone(),
                data: BlobRef {
                    blob: blob.to_string(),
                    offset: f.offset,
                    len: f.len,
                },
                content: Content::Images,
                part: None,
                shard: Some(shard_id.to_string()),
                nested: None,
            });
        }
        let (name, kind, metadata) = match &index.error {
            Some(reason) => ("shard-ingest-failed", "error", json!({"reason": reason})),
            None => (
                "shard-ingested",
                "info",
                json!({
                    "ingestedFiles": index.files.len(),
                    "failedFiles": index.failed_count,
                    "failures": failure_details(&index.failed),
                }),
            ),
        };
        let objects = if index.error.is_some() {
            0
        } else {
            index.objects()
        };
        let rec = ShardRec {
            id: shard_id.to_string(),
            status_name: name.into(),
            status_type: kind.into(),
            event_ts: now,
            objects,
            metadata,
            blob: Some(blob.to_string()),
        };
        set_shard(batch, rec);
    });
}

/// Registers an uploaded shard (its tar already stored as `blob`) and
/// schedules its indexing.
pub(crate) fn shard_uploaded(ctx: &Arc<Ctx>, ws: &str, batch_id: &str, shard_id: &str, blob: &str) {
    let now = ctx.now();
    ctx.store.write(|db| {
        if let Some(batch) = db.batch_mut(ws, batch_id, now) {
            let rec = ShardRec {
                id: shard_id.to_string(),
                status_name: "shard-uploaded".into(),
                status_type: "info".into(),
                event_ts: now,
                objects: 0,
                metadata: json!({}),
                blob: Some(blob.to_string()),
            };
            set_shard(batch, rec);
        }
    });
    let ctx = ctx.clone();
    let (ws, batch_id, shard_id, blob) = (
        ws.to_string(),
        batch_id.to_string(),
        shard_id.to_string(),
        blob.to_string(),
    );
    tokio::spawn(async move {
        tokio::time::sleep(ctx.config.index_delay).await;
        index_shard(&ctx, &ws, &batch_id, &shard_id, &blob).await;
    });
}

/// Indexes a stored shard now.
pub(crate) async fn index_shard(
    ctx: &Arc<Ctx>,
    ws: &str,
    batch_id: &str,
    shard_id: &str,
    blob: &str,
) {
    let Ok(_slot) = ctx.index_slots.clone().acquire_owned().await else {
        return;
    };
    let path = ctx.store.blob_path(blob);
    let index = tokio::task::spawn_blocking(move || match std::fs::File::open(&path) {
        Ok(f) => index_tar(std::io::BufReader::with_capacity(256 * 1024, f)),
        Err(e) => ShardIndex {
            error: Some(format!("stored shard is unreadable: {e}")),
            ..ShardIndex::default()
        },
    })
    .await
    .unwrap_or_else(|e| ShardIndex {
        error: Some(format!("indexing failed: {e}")),
        ..ShardIndex::default()
    });
    record_index(ctx, ws, batch_id, shard_id, blob, &index);
    if let Some(cfg) = &index.notification {
        let hook = Hook {
            url: cfg.notifications_url.clone(),
            ingest_id: cfg.ingest_id.as_str().to_string(),
            ingest_status: false,
            files_status: true,
        };
        if url::Url::parse(&hook.url).is_ok() {
            let body = index_files_status(&index);
            send_staging(ctx, ws, batch_id, &hook, Some(shard_id), body);
        }
    }
}

/// Registers an uploaded video (already stored as `blob`).
pub(crate) fn video_uploaded(
    ctx: &Ctx,
    ws: &str,
    batch_id: &str,
    file_name: &str,
    blob: &str,
    len: u64,
) -> ApiResult<()> {
    let now = ctx.now();
    let old = ctx.store.write(|db| {
        let batch = db
            .batch_mut(ws, batch_id, now)
            .ok_or_else(|| ApiError::not_found(format!("batch {batch_id:?} no longer exists")))?;
        Ok::<_, ApiError>(put_file(
            batch,
            file_name.to_string(),
            BlobRef {
                blob: blob.to_string(),
                offset: 0,
                len,
            },
            Content::Videos,
        ))
    })?;
    if let Some(old) = old.filter(|o| owns_blob(o)) {
        ctx.store.remove_blob(&old);
    }
    Ok(())
}
