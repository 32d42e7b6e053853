//! Reference ingest (`bulk-upload/image-references` and
//! `video-references`): the request is checked, deduplicated and its shards
//! registered at once; the files are fetched in the background (loopback
//! URLs only, see [`super::fetch`]), image references into one blob per
//! chunk of up to [`MAX_IMAGES_PER_SHARD`], videos one by one, and reported
//! through shard statuses and data-staging webhooks.

use std::io::Write;
use std::sync::Arc;

use futures::StreamExt;

use rf_types::{
    ErrorDetails, IngestStatusNotification, MAX_IMAGE_BYTES, MAX_IMAGES_PER_SHARD, Reference,
    ReferencesSource, StagingNotificationBody,
};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::batches::{Intake, ensure_batch, put_file};
use crate::ctx::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::media::{FileFailure, check_image, check_video_name};
use crate::model::{BlobRef, Content, IngestRecord, PendingFetch, ShardRec};
use crate::shard::{IndexedFile, ShardIndex};

use super::fetch::{fetch, fetch_video};
use super::{Hook, files_status, index_files_status, record_index, send_staging};

/// Largest references JSONL file fetched.
const MAX_REFERENCES_FILE: u64 = 64 * 1024 * 1024;

/// Which reference endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RefKind {
    Images,
    Videos,
}

impl RefKind {
    fn intake(self) -> Intake {
        match self {
            RefKind::Images => Intake::IMAGE_REFERENCES,
            RefKind::Videos => Intake::VIDEO_REFERENCES,
        }
    }
}

/// A references ingest request, as the handler read it.
#[derive(Debug)]
pub(crate) struct ReferencesRequest {
    pub(crate) ws: String,
    pub(crate) batch_id: String,
    pub(crate) kind: RefKind,
    pub(crate) ingest_id: Option<String>,
    pub(crate) notifications_url: Option<String>,
    pub(crate) categories: Option<Vec<String>>,
    pub(crate) display_name: Option<String>,
}

/// Answer of an accepted references ingest.
#[derive(Debug)]
pub(crate) struct Accepted {
    pub(crate) ingest_id: String,
    pub(crate) shard_ids: Vec<String>,
    pub(crate) duplicated: bool,
}

/// The references of a request, resolved.
#[derive(Debug)]
struct Resolved {
    refs: Vec<Reference>,
    /// Why the references file could not be fetched (the ingest then fails
    /// in its ingest-status webhook, not in the answer).
    failure: Option<FileFailure>,
    /// Identifies the request's content, for deduplication.
    digest: String,
}

/// One chunk of references to fetch (into shard `shard_id` for images).
type Work = Vec<(String, Vec<Reference>)>;

/// Accepts a references ingest: resolves the references, deduplicates
/// repeats, registers shards and starts the background fetch.
pub(crate) async fn accept_references(
    ctx: &Arc<Ctx>,
    req: ReferencesRequest,
    source: ReferencesSource,
) -> ApiResult<Accepted> {
    check_notifications(&req)?;
    let resolved = resolve(ctx, source).await?;
    let ingest_id = req
        .ingest_id
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let failure = resolved.failure.map(|f| f.reason);
    let registration = Registration {
        req: &req,
        ingest_id: &ingest_id,
        digest: &resolved.digest,
        failure: failure.clone(),
    };
    let (accepted, work, key) = register(ctx, registration, resolved.refs)?;
    if accepted.duplicated {
        return Ok(accepted);
    }
    let hook = hook_of(&req, &ingest_id);
    let ctx = ctx.clone();
    tokio::spawn(async move {
        tokio::time::sleep(ctx.config.index_delay).await;
        fetch_all(&ctx, &req, work, hook.as_ref(), failure).await;
        let ws = req.ws.clone();
        ctx.store.write(|db| db.finish_ingest(&ws, &key));
    });
    Ok(accepted)
}

/// Where the ingest's webhooks go (none without a notifications URL).
fn hook_of(req: &ReferencesRequest, ingest_id: &str) -> Option<Hook> {
    req.notifications_url.clone().map(|url| {
        let cats = req
            .categories
            .clone()
            .unwrap_or_else(|| vec!["ingest-status".to_string()]);
        Hook {
            url,
            ingest_id: ingest_id.to_owned(),
            ingest_status: cats.iter().any(|c| c == "ingest-status"),
            files_status: cats.iter().any(|c| c == "files-status"),
        }
    })
}

/// Resumes the fetch of ingest `key` of workspace `ws` that a previous run
/// left unfinished: the chunks whose shard is still pending (images) or
/// every video again (stored by name, so a repeat replaces itself).
pub(crate) fn resume_fetch(ctx: &Arc<Ctx>, ws: &str, key: &str, rec: &IngestRecord) {
    let Some(p) = rec.pending.clone() else {
        return;
    };
    let req = ReferencesRequest {
        ws: ws.to_owned(),
        batch_id: p.batch_id.clone(),
        kind: if p.videos {
            RefKind::Videos
        } else {
            RefKind::Images
        },
        ingest_id: Some(rec.ingest_id.clone()),
        notifications_url: p.notifications_url.clone(),
        categories: p.categories.clone(),
        display_name: None,
    };
    let now = ctx.now();
    let still_pending: std::collections::BTreeSet<String> = ctx.store.read(|db| {
        db.batch(ws, &p.batch_id, now)
            .map_or_else(Default::default, |b| {
                b.shards
                    .iter()
                    .filter(|s| s.status_name == "shard-ingest-pending")
                    .map(|s| s.id.clone())
                    .collect()
            })
    });
    let work: Work = p
        .work
        .into_iter()
        .filter(|(shard, _)| p.videos || still_pending.contains(shard))
        .collect();
    let hook = hook_of(&req, &rec.ingest_id);
    let (ctx, key) = (ctx.clone(), key.to_owned());
    tokio::spawn(async move {
        fetch_all(&ctx, &req, work, hook.as_ref(), p.failure).await;
        let ws = req.ws.clone();
        ctx.store.write(|db| db.finish_ingest(&ws, &key));
    });
}

/// What [`register`] records besides the references.
struct Registration<'a> {
    req: &'a ReferencesRequest,
    ingest_id: &'a str,
    digest: &'a str,
    failure: Option<String>,
}

fn check_notifications(req: &ReferencesRequest) -> ApiResult<()> {
    if let Some(u) = &req.notifications_url {
        url::Url::parse(u).map_err(|e| {
            ApiError::bad_request(format!("notificationsURL {u:?} is not a URL: {e}"))
        })?;
    }
    if let Some(cats) = &req.categories
        && let Some(bad) = cats
            .iter()
            .find(|c| *c != "ingest-status" && *c != "files-status")
    {
        return Err(ApiError::bad_request(format!(
            "unknown notification category {bad:?}: use ingest-status or files-status"
        )));
    }
    Ok(())
}

/// Resolves the references (a loopback references file is fetched now).
async fn resolve(ctx: &Ctx, source: ReferencesSource) -> ApiResult<Resolved> {
    let mut failure = None;
    let mut hasher = Sha256::new();
    let refs = match source {
        ReferencesSource::Inline(refs) => refs,
        ReferencesSource::Url(u) => {
            hasher.update(u.as_bytes());
            match fetch(ctx, &u, MAX_REFERENCES_FILE).await {
                Ok(bytes) => parse_jsonl(&bytes)?,
                Err(f) => {
                    failure = Some(f);
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
    Ok(Resolved {
        refs,
        failure,
        digest: hex::encode(hasher.finalize()),
    })
}

/// Registers the ingest (its batch, its pending shards, its dedup record),
/// or finds the same request accepted before.
fn register(
    ctx: &Ctx,
    r: Registration<'_>,
    refs: Vec<Reference>,
) -> ApiResult<(Accepted, Work, String)> {
    let (req, ingest_id, digest) = (r.req, r.ingest_id, r.digest);
    let (ws, batch_id) = (req.ws.as_str(), req.batch_id.as_str());
    let dedup_key = format!(
        "{batch_id}\n{}\n{digest}",
        req.ingest_id.as_deref().unwrap_or("")
    );
    let chunks: Vec<Vec<Reference>> = match req.kind {
        RefKind::Images => refs
            .chunks(MAX_IMAGES_PER_SHARD)
            .map(<[Reference]>::to_vec)
            .collect(),
        RefKind::Videos => vec![refs],
    };
    let now = ctx.now();
    ctx.store.write(|db| {
        if let Some(rec) = db.ws(ws).and_then(|w| w.ingests.get(&dedup_key))
            && db.batch(ws, batch_id, now).is_some()
        {
            let accepted = Accepted {
                ingest_id: rec.ingest_id.clone(),
                shard_ids: rec.shard_ids.clone(),
                duplicated: true,
            };
            return Ok((accepted, Vec::new(), dedup_key.clone()));
        }
        let intake = req.kind.intake();
        let batch = ensure_batch(ctx, db, ws, batch_id, intake, req.display_name.as_deref())?;
        let mut shard_ids = Vec::new();
        let mut work = Vec::new();
        for chunk in chunks {
            let shard_id = uuid::Uuid::new_v4().to_string();
            if req.kind == RefKind::Images {
                batch.shards.push(ShardRec {
                    id: shard_id.clone(),
                    status_name: "shard-ingest-pending".into(),
                    status_type: "info".into(),
                    event_ts: now,
                    objects: chunk.len() as u64,
                    metadata: json!({"ingestId": ingest_id}),
                    blob: None,
                });
                shard_ids.push(shard_id.clone());
            }
            work.push((shard_id, chunk));
        }
        let record = IngestRecord {
            ingest_id: ingest_id.to_string(),
            shard_ids: shard_ids.clone(),
            pending: Some(PendingFetch {
                batch_id: batch_id.to_owned(),
                videos: req.kind == RefKind::Videos,
                notifications_url: req.notifications_url.clone(),
                categories: req.categories.clone(),
                failure: r.failure.clone(),
                work: work.clone(),
            }),
        };
        db.insert_ingest(ws, dedup_key.clone(), record);
        let accepted = Accepted {
            ingest_id: ingest_id.to_string(),
            shard_ids,
            duplicated: false,
        };
        Ok((accepted, work, dedup_key.clone()))
    })
}

/// Fetches every chunk, then sends the ingest-status webhook.
async fn fetch_all(
    ctx: &Arc<Ctx>,
    req: &ReferencesRequest,
    work: Work,
    hook: Option<&Hook>,
    failure: Option<String>,
) {
    let target = Target {
        ws: &req.ws,
        batch_id: &req.batch_id,
        hook,
    };
    let mut first_unsafe = failure;
    for (shard_id, chunk) in work {
        let unsafe_reason = match req.kind {
            RefKind::Images => fetch_image_chunk(ctx, &target, &shard_id, chunk).await,
            RefKind::Videos => fetch_videos(ctx, &target, chunk).await,
        };
        if first_unsafe.is_none() {
            first_unsafe = unsafe_reason;
        }
    }
    if let Some(h) = hook.filter(|h| h.ingest_status) {
        let body = IngestStatusNotification {
            success: first_unsafe.is_none(),
            error_details: first_unsafe.map(|reason| ErrorDetails {
                kind: "unsafe-url-detected".into(),
                reason,
            }),
        };
        let body = StagingNotificationBody::IngestStatus(body);
        send_staging(ctx, target.ws, target.batch_id, h, None, body);
    }
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

/// Where the fetched files of one ingest go.
#[derive(Debug, Clone, Copy)]
struct Target<'a> {
    ws: &'a str,
    batch_id: &'a str,
    hook: Option<&'a Hook>,
}

fn storage_error() -> FileFailure {
    FileFailure::new("storage-error", "emulator could not store the file")
}

/// What fetching a chunk of image references gave.
#[derive(Debug, Default)]
struct ChunkFetch {
    files: Vec<IndexedFile>,
    failed: Vec<(String, FileFailure)>,
    first_unsafe: Option<String>,
}

impl ChunkFetch {
    fn fail(&mut self, name: String, f: FileFailure) {
        if f.kind == "unsafe-url-detected" && self.first_unsafe.is_none() {
            self.first_unsafe = Some(f.reason.clone());
        }
        self.failed.push((name, f));
    }
}

/// Fetches one chunk of image references into one blob; returns the first
/// unsafe-url reason.
async fn fetch_image_chunk(
    ctx: &Arc<Ctx>,
    target: &Target<'_>,
    shard_id: &str,
    chunk: Vec<Reference>,
) -> Option<String> {
    let Ok(_slot) = ctx.index_slots.clone().acquire_owned().await else {
        return None;
    };
    let blob = format!("{shard_id}.refs");
    // Streamed: each image is appended as it arrives (an async download), so
    // rf_util::write_atomic's synchronous closure does not fit; the blob is
    // still fsynced before it is renamed into place.
    let tmp = ctx.store.tmp_path();
    let mut out = match std::fs::File::create(&tmp) {
        Ok(f) => std::io::BufWriter::new(f),
        Err(e) => {
            tracing::warn!("cannot create blob for shard {shard_id}: {e}");
            return None;
        }
    };
    let mut got = fetch_images(ctx, chunk, &mut out).await;
    let stored = out
        .into_inner()
        .map_err(|e| e.into_error())
        .and_then(|f| f.sync_all())
        .is_ok()
        && ctx.store.commit_blob(&tmp, &blob).is_ok();
    if !stored {
        let _ = std::fs::remove_file(&tmp);
        got.files.clear();
    }
    let index = ShardIndex {
        failed_count: got.failed.len() as u64,
        files: got.files,
        failed: got.failed,
        notification: None,
        error: (!stored).then(|| "emulator could not store the shard".to_string()),
    };
    record_index(ctx, target.ws, target.batch_id, shard_id, &blob, &index);
    if let Some(h) = target.hook.filter(|h| h.files_status) {
        let body = index_files_status(&index);
        send_staging(ctx, target.ws, target.batch_id, h, Some(shard_id), body);
    }
    got.first_unsafe
}

/// Image references of one chunk fetched at once. Results are written in
/// the chunk's order, so at most this many images are held in memory.
const FETCHES_AT_ONCE: usize = 8;

/// Fetches and checks each image ([`FETCHES_AT_ONCE`] at a time), appending
/// the good ones to `out` in the chunk's order.
async fn fetch_images(ctx: &Ctx, chunk: Vec<Reference>, out: &mut impl Write) -> ChunkFetch {
    let mut got = ChunkFetch::default();
    let mut offset = 0u64;
    let mut fetched = futures::stream::iter(chunk)
        .map(|r| async move {
            let result = match fetch(ctx, &r.url, MAX_IMAGE_BYTES).await {
                Ok(bytes) => check_image(&r.name, &bytes).map(|_| bytes),
                Err(f) => Err(f),
            };
            (r.name, result)
        })
        .buffered(FETCHES_AT_ONCE);
    while let Some((name, result)) = fetched.next().await {
        match result {
            Ok(bytes) => {
                if out.write_all(&bytes).is_err() {
                    got.failed.push((name, storage_error()));
                    continue;
                }
                got.files.push(IndexedFile {
                    name,
                    offset,
                    len: bytes.len() as u64,
                });
                offset += bytes.len() as u64;
            }
            Err(f) => got.fail(name, f),
        }
    }
    got
}

/// Fetches video references into the (simple) batch.
async fn fetch_videos(ctx: &Arc<Ctx>, target: &Target<'_>, refs: Vec<Reference>) -> Option<String> {
    let mut got = ChunkFetch::default();
    let mut ingested = Vec::new();
    for r in refs {
        match fetch_one_video(ctx, target, &r).await {
            Ok(()) => ingested.push(r.name),
            Err(f) => got.fail(r.name, f),
        }
    }
    if let Some(h) = target.hook.filter(|h| h.files_status) {
        let body = files_status(&ingested, &got.failed, got.failed.len() as u64, true);
        send_staging(ctx, target.ws, target.batch_id, h, None, body);
    }
    got.first_unsafe
}

/// Fetches one video reference into its own blob and adds it to the batch.
async fn fetch_one_video(ctx: &Ctx, target: &Target<'_>, r: &Reference) -> Result<(), FileFailure> {
    check_video_name(&r.name)?;
    let tmp = ctx.store.tmp_path();
    let len = fetch_video(ctx, &r.url, &r.name, &tmp).await?;
    let blob = format!("{}.vid", uuid::Uuid::new_v4().simple());
    if ctx.store.commit_blob(&tmp, &blob).is_err() {
        let _ = std::fs::remove_file(&tmp);
        return Err(storage_error());
    }
    let now = ctx.now();
    let data = BlobRef {
        blob,
        offset: 0,
        len,
    };
    let old = ctx.store.write(|db| {
        db.batch_mut(target.ws, target.batch_id, now)
            .map(|b| put_file(b, r.name.clone(), data, Content::Videos))
    });
    if let Some(Some(old)) = old {
        ctx.store.remove_blob(&old);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonl_parsing() {
        let r = parse_jsonl(b"{\"name\":\"a.png\",\"url\":\"http://x\",\"extra\":1}\n\n{\"name\":\"b.png\",\"url\":\"u\"}\n").unwrap();
        assert_eq!(r.len(), 2);
        let e = parse_jsonl(b"{\"name\":1}").unwrap_err();
        assert!(e.message.contains("line 1"));
    }
}
