//! Data Staging handlers that read batches: the workspace lookup, batch
//! metadata and listings (files with signed download URLs), counts, parts
//! and shard statuses, and their wire forms.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use rf_types::{
    BatchMetadata, BatchPart, BatchType, ContentType, CountResponse, FileMetadata,
    GetBatchResponse, ListBatchesResponse, ListFilesResponse, ListPartsResponse,
    ListShardsResponse, PartName, ShardId, ShardStatus, WorkspaceInfo,
};
use serde_json::Value;

use super::auth::{Authed, authenticate};
use crate::batches::check_batch_id;
use crate::ctx::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::model::{Batch, BatchKind, Content, FileRec, ShardRec};
use crate::params::Params;
use crate::signed::{Claims, Grant};

/// `GET /?api_key=` — the workspace lookup.
pub(crate) async fn workspace(
    State(ctx): State<Arc<Ctx>>,
    parts: http::request::Parts,
) -> ApiResult<Json<Value>> {
    let params = Params::parse(parts.uri.query());
    let ws = authenticate(&ctx, &parts, &params)?;
    let info = WorkspaceInfo { workspace: ws };
    let mut v = serde_json::to_value(info).map_err(|e| ApiError::internal(e.to_string()))?;
    if let Value::Object(m) = &mut v {
        m.insert(
            "welcome".into(),
            "Welcome to the rf emulator of the Roboflow API".into(),
        );
        m.insert("status".into(), "ok".into());
    }
    Ok(Json(v))
}

pub(crate) fn batch_metadata(b: &Batch) -> BatchMetadata {
    BatchMetadata {
        display_name: b.display_name.clone(),
        batch_id: b.id.clone(),
        batch_type: batch_type(b.kind),
        batch_content_type: content_type(b.content),
        created_date: b.created,
        expiry_date: b.expiry,
    }
}

fn batch_type(k: BatchKind) -> BatchType {
    match k {
        BatchKind::SimpleBatch => BatchType::SimpleBatch,
        BatchKind::ShardedBatch => BatchType::ShardedBatch,
        BatchKind::MultipartBatch => BatchType::MultipartBatch,
    }
}

fn content_type(c: Content) -> ContentType {
    match c {
        Content::Images => ContentType::Images,
        Content::Videos => ContentType::Videos,
        Content::Mixed => ContentType::Mixed,
        Content::Metadata => ContentType::Metadata,
        Content::Archives => ContentType::Archives,
    }
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(format!(
        "batch {id:?} not found (never created, or expired)"
    ))
}

fn with_batch<R>(
    ctx: &Ctx,
    ws: &str,
    id: &str,
    f: impl FnOnce(&Batch) -> ApiResult<R>,
) -> ApiResult<R> {
    check_batch_id(id)?;
    let now = ctx.now();
    ctx.store.read(|db| match db.batch(ws, id, now) {
        Some(b) => f(b),
        None => Err(not_found(id)),
    })
}

fn check_part(b: &Batch, part: Option<&str>) -> ApiResult<()> {
    match part {
        Some(p) if !b.parts.iter().any(|x| x.name == p) => Err(ApiError::not_found(format!(
            "batch {:?} has no part {p:?}; list its parts with GET .../parts",
            b.id
        ))),
        _ => Ok(()),
    }
}

/// `GET .../batches/{batchId}`.
pub(crate) async fn get_batch(
    State(ctx): State<Arc<Ctx>>,
    auth: Authed,
    Path((_, batch_id)): Path<(String, String)>,
) -> ApiResult<Json<GetBatchResponse>> {
    with_batch(&ctx, &auth.ws, &batch_id, |b| {
        Ok(Json(GetBatchResponse {
            batch: batch_metadata(b),
        }))
    })
}

/// `GET .../batches` (paginated, creation order).
pub(crate) async fn list_batches(
    State(ctx): State<Arc<Ctx>>,
    auth: Authed,
) -> ApiResult<Json<ListBatchesResponse>> {
    let page = auth.params.page()?;
    let now = ctx.now();
    let (batches, next_page_token) = ctx.store.read(|db| {
        let mut all: Vec<&Batch> = db
            .ws(&auth.ws)
            .map(|w| w.batches.values().filter(|b| b.expiry > now).collect())
            .unwrap_or_default();
        all.sort_by_key(|b| b.seq);
        let total = all.len();
        page.take(total, all.into_iter().map(batch_metadata))
    });
    Ok(Json(ListBatchesResponse {
        batches,
        next_page_token,
    }))
}

/// `GET .../batches/{batchId}/count[?partName=]`.
pub(crate) async fn count(
    State(ctx): State<Arc<Ctx>>,
    auth: Authed,
    Path((_, batch_id)): Path<(String, String)>,
) -> ApiResult<Json<CountResponse>> {
    let part = auth.params.get("partName");
    with_batch(&ctx, &auth.ws, &batch_id, |b| {
        check_part(b, part)?;
        Ok(Json(CountResponse {
            count: b.files_in(part).count() as u64,
        }))
    })
}

/// `GET .../batches/{batchId}/parts`.
pub(crate) async fn parts(
    State(ctx): State<Arc<Ctx>>,
    auth: Authed,
    Path((_, batch_id)): Path<(String, String)>,
) -> ApiResult<Json<ListPartsResponse>> {
    with_batch(&ctx, &auth.ws, &batch_id, |b| {
        if b.kind != BatchKind::MultipartBatch {
            return Err(ApiError::bad_request(format!(
                "batch {batch_id:?} is a {}, only multipart batches have parts",
                b.kind.as_str()
            )));
        }
        Ok(Json(ListPartsResponse {
            batch_parts: b
                .parts
                .iter()
                .map(|p| BatchPart {
                    part_name: PartName::from(p.name.as_str()),
                    part_type: batch_type(p.part_type),
                    content_type: content_type(p.content),
                    part_description: p.description.clone(),
                    nested_content_type: p.nested.map(content_type),
                })
                .collect(),
        }))
    })
}

/// The signed download URL of a stored file.
pub(crate) fn download_url(ctx: &Ctx, ws: &str, batch: &str, f: &FileRec) -> String {
    ctx.signed_url(&Claims {
        ws: ws.to_string(),
        batch: batch.to_string(),
        grant: Grant::Download {
            file_name: f.name.clone(),
            data: f.data.clone(),
            content: f.content,
        },
        exp: ctx.url_expiry(),
        headers: Default::default(),
        max_bytes: None,
    })
}

/// `GET .../batches/{batchId}/list[?partName=]` (paginated, sorted by file
/// name).
pub(crate) async fn list_files(
    State(ctx): State<Arc<Ctx>>,
    auth: Authed,
    Path((_, batch_id)): Path<(String, String)>,
) -> ApiResult<Json<ListFilesResponse>> {
    let page = auth.params.page()?;
    let part = auth.params.get("partName");
    with_batch(&ctx, &auth.ws, &batch_id, |b| {
        check_part(b, part)?;
        // Files in a stable order (by name, then part and shard), so that
        // pages never repeat or skip a file whose shard was indexed late.
        let mut sorted: Vec<_> = b.files_in(part).collect();
        sorted.sort_unstable_by(|x, y| {
            (&x.name, &x.part, &x.shard).cmp(&(&y.name, &y.part, &y.shard))
        });
        let total = sorted.len();
        // Cut the page first, then sign: signing every skipped file made
        // each page cost as much as all the pages before it.
        let (files, next_page_token) = page.take(total, sorted.into_iter());
        let files_metadata = files
            .into_iter()
            .map(|f| FileMetadata {
                download_url: download_url(&ctx, &auth.ws, &b.id, f),
                file_name: f.name.clone(),
                part_name: f.part.as_deref().map(PartName::from),
                shard_id: f.shard.as_deref().map(ShardId::from),
                content_type: content_type(f.content),
                nested_content_type: f.nested.map(content_type),
            })
            .collect();
        Ok(Json(ListFilesResponse {
            files_metadata,
            next_page_token,
        }))
    })
}

fn shard_status(s: &ShardRec) -> ShardStatus {
    ShardStatus {
        shard_id: ShardId::from(s.id.as_str()),
        status_name: s.status_name.clone(),
        status_type: s.status_type.clone(),
        event_timestamp: s.event_ts,
        shard_objects_count: s.objects,
        status_metadata: Some(s.metadata.clone()),
    }
}

/// `GET .../batches/{batchId}/shards` (paginated).
pub(crate) async fn shards(
    State(ctx): State<Arc<Ctx>>,
    auth: Authed,
    Path((_, batch_id)): Path<(String, String)>,
) -> ApiResult<Json<ListShardsResponse>> {
    let page = auth.params.page()?;
    with_batch(&ctx, &auth.ws, &batch_id, |b| {
        let (shards, next_page_token) =
            page.take(b.shards.len(), b.shards.iter().map(shard_status));
        Ok(Json(ListShardsResponse {
            shards,
            next_page_token,
        }))
    })
}
