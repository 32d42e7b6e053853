//! Background ingest: indexing uploaded tar shards, and fetching reference
//! ingests (loopback URLs only; anything else is recorded as a failed file
//! of type `unsafe-url-detected`). Both report through shard statuses and
//! data-staging webhooks.

use std::io::Write;
use std::sync::Arc;

use rf_types::{
    ErrorDetails, EventId, FailedFile, FilesStatusNotification, IngestId, IngestStatusNotification,
    MAX_IMAGE_BYTES, MAX_IMAGES_PER_SHARD, Reference, ReferencesSource, ShardId,
    StagingNotification, StagingNotificationBody,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::app::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::media::{FileFailure, check_image, check_video_name, sniff_video};
use crate::model::{BatchKind, BlobRef, Content, FileRec, IngestRecord, ShardRec};
use crate::routes::staging::{ensure_batch, owns_blob, put_file};
use crate::shard::{IndexedFile, ShardIndex, index_tar};

/// Most failed files listed in one files-status webhook.
const MAX_WEBHOOK_FILES: usize = 1000;
/// Largest references JSONL file fetched.
const MAX_REFERENCES_FILE: u64 = 64 * 1024 * 1024;
/// Largest video fetched by reference.
const MAX_VIDEO_FETCH: u64 = 2 * 1024 * 1024 * 1024;

/// Which reference endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RefKind {
    Images,
    Videos,
}

/// Answer of an accepted references ingest.
#[derive(Debug)]
pub(crate) struct Accepted {
    pub(crate) ingest_id: String,
    pub(crate) shard_ids: Vec<String>,
    pub(crate) duplicated: bool,
}

/// Where webhooks of an ingest go.
#[derive(Debug, Clone)]
struct Hook {
    url: String,
    ingest_id: String,
    ingest_status: bool,
    files_status: bool,
}

/// True when `url` points at this machine (the only place the emulator fetches from).
pub(crate) fn is_loopback_url(url: &str) -> bool {
    let Ok(u) = url::Url::parse(url) else {
        return false;
    };
    if !matches!(u.scheme(), "http" | "https") {
        return false;
    }
    match u.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

fn unsafe_url(url: &str) -> FileFailure {
    FileFailure::new(
        "unsafe-url-detected",
        format!("Untrusted domain found: {url}"),
    )
}

/// Fetches a loopback URL with a size limit.
async fn fetch(ctx: &Ctx, url: &str, limit: u64) -> Result<Vec<u8>, FileFailure> {
    let mut out = Vec::new();
    fetch_into(ctx, url, limit, &mut out).await?;
    Ok(out)
}

/// Streams a loopback URL into `out` with a size limit; returns the length.
async fn fetch_into<W: Write>(
    ctx: &Ctx,
    url: &str,
    limit: u64,
    out: &mut W,
) -> Result<u64, FileFailure> {
    if !is_loopback_url(url) {
        return Err(unsafe_url(url));
    }
    let mut resp = ctx.http.get(url).send().await.map_err(|e| {
        FileFailure::new(
            "download-failed",
            format!("cannot download: {}", e.without_url()),
        )
    })?;
    if !resp.status().is_success() {
        return Err(FileFailure::new(
            "download-failed",
            format!("download answered HTTP {}", resp.status().as_u16()),
        ));
    }
    let mut total = 0u64;
    while let Some(chunk) = resp.chunk().await.map_err(|e| {
        FileFailure::new(
            "download-failed",
            format!("download interrupted: {}", e.without_url()),
        )
    })? {
        total += chunk.len() as u64;
        if total > limit {
            return Err(if limit == MAX_IMAGE_BYTES {
                FileFailure::too_large()
            } else {
                FileFailure::new(
                    "file-size-limit-exceeded",
                    format!("file is larger than {limit}B"),
                )
            });
        }
        out.write_all(&chunk)
            .map_err(|_| FileFailure::new("storage-error", "emulator could not store the file"))?;
    }
    Ok(total)
}

fn parse_jsonl(bytes: &[u8]) -> ApiResult<Vec<Reference>> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| ApiError::bad_request("references file is not utf-8 text"))?;
    let mut refs = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let r: Reference = serde_json::from_str(line).map_err(|e| {
            ApiError::bad_request(format!(
                "references file line {}: expected {{\"name\": ..., \"url\": ...}}: {e}",
                i + 1
            ))
        })?;
        refs.push(r);
    }
    Ok(refs)
}

/// Accepts a references ingest: resolves the references, deduplicates
/// repeats, registers shards and starts the background fetch.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn accept_references(
    ctx: &Arc<Ctx>,
    ws: &str,
    batch_id: &str,
    kind: RefKind,
    source: ReferencesSource,
    ingest_id: Option<String>,
    notifications_url: Option<String>,
    categories: Option<Vec<String>>,
    display_name: Option<String>,
) -> ApiResult<Accepted> {
    if let Some(u) = &notifications_url {
        url::Url::parse(u).map_err(|e| {
            ApiError::bad_request(format!("notificationsURL {u:?} is not a URL: {e}"))
        })?;
    }
    if let Some(cats) = &categories
        && let Some(bad) = cats
            .iter()
            .find(|c| *c != "ingest-status" && *c != "files-status")
    {
        return Err(ApiError::bad_request(format!(
            "unknown notification category {bad:?}: use ingest-status or files-status"
        )));
    }
    let (batch_kind, content, wanted) = match kind {
        RefKind::Images => (BatchKind::ShardedBatch, Content::Images, "image references"),
        RefKind::Videos => (BatchKind::SimpleBatch, Content::Videos, "video references"),
    };
    // Resolve the references (a loopback references file is fetched now).
    let mut ingest_failure: Option<FileFailure> = None;
    let mut hasher = Sha256::new();
    let refs = match source {
        ReferencesSource::Inline(refs) => refs,
        ReferencesSource::Url(u) => {
            hasher.update(u.as_bytes());
            match fetch(ctx, &u, MAX_REFERENCES_FILE).await {
                Ok(bytes) => parse_jsonl(&bytes)?,
                Err(f) => {
                    ingest_failure = Some(f);
                    Vec::new()
                }
            }
        }
    };
    for r in &refs {
        hasher.update(r.name.as_bytes());
        hasher.update([0]);
        hasher.update(r.url.as_bytes());
        hasher.update([0]);
    }
    let digest = hex::encode(hasher.finalize());
    let dedup_key = format!(
        "{batch_id}\n{}\n{digest}",
        ingest_id.as_deref().unwrap_or("")
    );
    let ingest_id = ingest_id.unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let chunks: Vec<Vec<Reference>> = match kind {
        RefKind::Images => refs
            .chunks(MAX_IMAGES_PER_SHARD)
            .map(<[Reference]>::to_vec)
            .collect(),
        RefKind::Videos => vec![refs],
    };
    let now = ctx.now();
    let accepted = ctx.store.write(|db| {
        if let Some(rec) = db.ws(ws).and_then(|w| w.ingests.get(&dedup_key))
            && db.batch(ws, batch_id, now).is_some()
        {
            return Ok((
                Accepted {
                    ingest_id: rec.ingest_id.clone(),
                    shard_ids: rec.shard_ids.clone(),
                    duplicated: true,
                },
                Vec::new(),
            ));
        }
        let batch = ensure_batch(
            ctx,
            db,
            ws,
            batch_id,
            batch_kind,
            content,
            display_name.as_deref(),
            wanted,
        )?;
        let mut shard_ids = Vec::new();
        let mut work = Vec::new();
        for chunk in chunks {
            let shard_id = uuid::Uuid::new_v4().to_string();
            if kind == RefKind::Images {
                batch.shards.push(ShardRec {
                    id: shard_id.clone(),
                    status_name: "shard-ingest-pending".into(),
                    status_type: "info".into(),
                    event_ts: now,
                    objects: chunk.len() as u64,
                    metadata: json!({"ingestId": ingest_id}),
                });
                shard_ids.push(shard_id.clone());
            }
            work.push((shard_id, chunk));
        }
        db.ws_mut(ws).ingests.insert(
            dedup_key.clone(),
            IngestRecord {
                ingest_id: ingest_id.clone(),
                shard_ids: shard_ids.clone(),
            },
        );
        Ok::<_, ApiError>((
            Accepted {
                ingest_id: ingest_id.clone(),
                shard_ids,
                duplicated: false,
            },
            work,
        ))
    })?;
    let (accepted, work) = accepted;
    if accepted.duplicated {
        return Ok(accepted);
    }
    let hook = notifications_url.map(|url| {
        let cats = categories.unwrap_or_else(|| vec!["ingest-status".to_string()]);
        Hook {
            url,
            ingest_id: ingest_id.clone(),
            ingest_status: cats.iter().any(|c| c == "ingest-status"),
            files_status: cats.iter().any(|c| c == "files-status"),
        }
    });
    let ctx2 = ctx.clone();
    let (ws, batch_id) = (ws.to_string(), batch_id.to_string());
    tokio::spawn(async move {
        tokio::time::sleep(ctx2.config.index_delay).await;
        let mut first_unsafe = ingest_failure.map(|f| f.reason);
        for (shard_id, chunk) in work {
            let unsafe_reason = match kind {
                RefKind::Images => {
                    fetch_image_chunk(&ctx2, &ws, &batch_id, &shard_id, chunk, hook.as_ref()).await
                }
                RefKind::Videos => fetch_videos(&ctx2, &ws, &batch_id, chunk, hook.as_ref()).await,
            };
            if first_unsafe.is_none() {
                first_unsafe = unsafe_reason;
            }
        }
        if let Some(h) = hook.as_ref().filter(|h| h.ingest_status) {
            let body = IngestStatusNotification {
                success: first_unsafe.is_none(),
                error_details: first_unsafe.map(|reason| ErrorDetails {
                    kind: "unsafe-url-detected".into(),
                    reason,
                }),
            };
            send_staging(
                &ctx2,
                &ws,
                &batch_id,
                h,
                None,
                StagingNotificationBody::IngestStatus(body),
            );
        }
    });
    Ok(accepted)
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
        event_id: EventId::from(uuid::Uuid::new_v4().to_string()),
        ingest_id: IngestId::from(hook.ingest_id.as_str()),
        batch_id: batch_id.to_string(),
        shard_id: shard.map(ShardId::from),
        notification: body,
        delivery_attempt: 1,
    };
    match serde_json::to_value(&n) {
        Ok(v) => ctx.webhooks.send(&hook.url, ws, v),
        Err(e) => tracing::warn!("cannot encode staging notification: {e}"),
    }
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

/// Fetches one chunk of image references into one blob; returns the first
/// unsafe-url reason.
async fn fetch_image_chunk(
    ctx: &Arc<Ctx>,
    ws: &str,
    batch_id: &str,
    shard_id: &str,
    chunk: Vec<Reference>,
    hook: Option<&Hook>,
) -> Option<String> {
    let Ok(_slot) = ctx.index_slots.clone().acquire_owned().await else {
        return None;
    };
    let blob = format!("{shard_id}.refs");
    let tmp = ctx.store.tmp_path();
    let mut out = match std::fs::File::create(&tmp) {
        Ok(f) => std::io::BufWriter::new(f),
        Err(e) => {
            tracing::warn!("cannot create blob for shard {shard_id}: {e}");
            return None;
        }
    };
    let mut offset = 0u64;
    let mut files = Vec::new();
    let mut failed: Vec<(String, FileFailure)> = Vec::new();
    let mut first_unsafe = None;
    for r in chunk {
        let result = match fetch(ctx, &r.url, MAX_IMAGE_BYTES).await {
            Ok(bytes) => check_image(&r.name, &bytes).map(|_| bytes),
            Err(f) => Err(f),
        };
        match result {
            Ok(bytes) => {
                if out.write_all(&bytes).is_err() {
                    failed.push((
                        r.name,
                        FileFailure::new("storage-error", "emulator could not store the file"),
                    ));
                    continue;
                }
                files.push(IndexedFile {
                    name: r.name,
                    offset,
                    len: bytes.len() as u64,
                });
                offset += bytes.len() as u64;
            }
            Err(f) => {
                if f.kind == "unsafe-url-detected" && first_unsafe.is_none() {
                    first_unsafe = Some(f.reason.clone());
                }
                failed.push((r.name, f));
            }
        }
    }
    let stored = out
        .into_inner()
        .map_err(|e| e.into_error())
        .and_then(|f| f.sync_all())
        .is_ok()
        && ctx.store.commit_blob(&tmp, &blob).is_ok();
    if !stored {
        let _ = std::fs::remove_file(&tmp);
        files.clear();
    }
    let index = ShardIndex {
        failed_count: failed.len() as u64,
        files,
        failed,
        notification: None,
        error: (!stored).then(|| "emulator could not store the shard".to_string()),
    };
    record_index(ctx, ws, batch_id, shard_id, &blob, &index);
    if let Some(h) = hook.filter(|h| h.files_status) {
        let names: Vec<String> = index.files.iter().map(|f| f.name.clone()).collect();
        let body = files_status(
            &names,
            &index.failed,
            index.failed_count,
            index.error.is_none(),
        );
        send_staging(ctx, ws, batch_id, h, Some(shard_id), body);
    }
    first_unsafe
}

/// Downloads one video reference into `tmp` and checks its container.
async fn fetch_video(
    ctx: &Ctx,
    url: &str,
    name: &str,
    tmp: &std::path::Path,
) -> Result<u64, FileFailure> {
    let storage = |_| FileFailure::new("storage-error", "emulator could not store the file");
    let mut file = std::io::BufWriter::new(std::fs::File::create(tmp).map_err(storage)?);
    let result = fetch_into(ctx, url, MAX_VIDEO_FETCH, &mut file).await;
    let file = file.into_inner().map_err(|e| storage(e.into_error()));
    let len = match (result, file) {
        (Ok(len), Ok(_)) => len,
        (Err(f), _) | (_, Err(f)) => {
            let _ = std::fs::remove_file(tmp);
            return Err(f);
        }
    };
    let mut head = [0u8; 16];
    let n = std::fs::File::open(tmp)
        .and_then(|mut f| std::io::Read::read(&mut f, &mut head))
        .unwrap_or(0);
    if sniff_video(&head[..n]).is_none() {
        let _ = std::fs::remove_file(tmp);
        return Err(FileFailure::new(
            "invalid-video",
            format!("{name:?} is not a video container"),
        ));
    }
    Ok(len)
}

/// Fetches video references into the (simple) batch.
async fn fetch_videos(
    ctx: &Arc<Ctx>,
    ws: &str,
    batch_id: &str,
    refs: Vec<Reference>,
    hook: Option<&Hook>,
) -> Option<String> {
    let mut first_unsafe = None;
    let mut ingested = Vec::new();
    let mut failed = Vec::new();
    for r in refs {
        let tmp = ctx.store.tmp_path();
        let result = match check_video_name(&r.name) {
            Err(f) => Err(f),
            Ok(()) => fetch_video(ctx, &r.url, &r.name, &tmp).await,
        };
        match result {
            Ok(len) => {
                let blob = format!("{}.vid", uuid::Uuid::new_v4().simple());
                if ctx.store.commit_blob(&tmp, &blob).is_err() {
                    let _ = std::fs::remove_file(&tmp);
                    failed.push((
                        r.name,
                        FileFailure::new("storage-error", "emulator could not store the file"),
                    ));
                    continue;
                }
                let now = ctx.now();
                let data = BlobRef {
                    blob,
                    offset: 0,
                    len,
                };
                let old = ctx.store.write(|db| {
                    db.batch_mut(ws, batch_id, now)
                        .map(|b| put_file(b, r.name.clone(), data, Content::Videos))
                });
                if let Some(Some(old)) = old {
                    ctx.store.remove_blob(&old);
                }
                ingested.push(r.name);
            }
            Err(f) => {
                if f.kind == "unsafe-url-detected" && first_unsafe.is_none() {
                    first_unsafe = Some(f.reason.clone());
                }
                failed.push((r.name, f));
            }
        }
    }
    if let Some(h) = hook.filter(|h| h.files_status) {
        let body = files_status(&ingested, &failed, failed.len() as u64, true);
        send_staging(ctx, ws, batch_id, h, None, body);
    }
    first_unsafe
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
        };
        match batch.shards.iter_mut().find(|s| s.id == shard_id) {
            Some(s) => *s = rec,
            None => batch.shards.push(rec),
        }
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
            };
            match batch.shards.iter_mut().find(|s| s.id == shard_id) {
                Some(s) => *s = rec,
                None => batch.shards.push(rec),
            }
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
            let names: Vec<String> = index.files.iter().map(|f| f.name.clone()).collect();
            let body = files_status(
                &names,
                &index.failed,
                index.failed_count,
                index.error.is_none(),
            );
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_detection() {
        assert!(is_loopback_url("http://127.0.0.1:8080/a.png"));
        assert!(is_loopback_url("http://localhost/a.png"));
        assert!(is_loopback_url("http://[::1]:9/a"));
        assert!(!is_loopback_url("https://files.example.net/a.png"));
        assert!(!is_loopback_url("http://10.0.0.1/a.png"));
        assert!(!is_loopback_url("file:///etc/passwd"));
        assert!(!is_loopback_url("not a url"));
    }

    #[test]
    fn jsonl_parsing() {
        let r = parse_jsonl(b"{\"name\":\"a.png\",\"url\":\"http://x\",\"extra\":1}\n\n{\"name\":\"b.png\",\"url\":\"u\"}\n").unwrap();
        assert_eq!(r.len(), 2);
        let e = parse_jsonl(b"{\"name\":1}").unwrap_err();
        assert!(e.message.contains("line 1"));
    }
}
