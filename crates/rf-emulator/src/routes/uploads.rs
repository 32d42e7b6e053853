//! Data Staging handlers that put files into batches: single image
//! uploads (multipart, streamed to disk), the signed upload URLs for videos
//! and tar shards, and reference ingest requests (handed to
//! [`crate::ingest`]).

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::multipart::MultipartError;
use axum::extract::{Multipart, Path, State};
use rf_types::{
    ImageReferencesIngestRequest, ImageReferencesIngestResponse, IngestId, MAX_IMAGE_BYTES,
    NotificationCategory, ReferencesSource, ShardId, SignedUrlDetails, SignedUrlResponse, StatusOk,
    VideoReferencesIngestRequest, VideoReferencesIngestResponse,
};
use tokio::io::AsyncWriteExt;

use super::auth::Authed;
use super::limits::{IMAGE_UPLOAD_BODY, REFERENCES_BODY, read_body, too_large};
use crate::batches::{Intake, check_batch_id, ensure_batch, precheck_intake, put_file};
use crate::ctx::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::ingest::{self, ReferencesRequest};
use crate::media::{check_image_head, check_name, check_video_name};
use crate::model::{BlobRef, Content};
use crate::signed::{Claims, Grant, upload_headers};
use crate::stats::Counters;

/// How much of an uploaded image is kept in memory for the content check.
const IMAGE_HEAD_BYTES: usize = 1024 * 1024;

/// Largest shard accepted through a signed URL.
pub(crate) const MAX_SHARD_BYTES: u64 = 10 * 1024 * 1024 * 1024;
/// Largest video accepted through a signed URL.
pub(crate) const MAX_VIDEO_BYTES: u64 = 10 * 1024 * 1024 * 1024;

/// `POST .../batches/{batchId}/upload/image` (multipart, one file part).
pub(crate) async fn upload_image(
    State(ctx): State<Arc<Ctx>>,
    auth: Authed,
    Path((_, batch_id)): Path<(String, String)>,
    multipart: Multipart,
) -> ApiResult<Json<StatusOk>> {
    check_batch_id(&batch_id)?;
    let file_name = auth.params.required("fileName")?.to_string();
    check_name(&file_name).map_err(|f| ApiError::bad_request(f.reason))?;
    precheck_intake(&ctx, &auth.ws, &batch_id, Intake::SINGLE_IMAGES)?;
    let mut chosen = None;
    let received = receive_image(&ctx, &file_name, multipart, &mut chosen).await;
    let (tmp, len) = match received {
        Ok(v) => v,
        Err(e) => {
            if let Some(part) = chosen {
                let _ = tokio::fs::remove_file(part.tmp).await;
            }
            return Err(e);
        }
    };
    let blob = format!("{}.img", uuid::Uuid::new_v4().simple());
    ctx.store
        .commit_blob(&tmp, &blob)
        .map_err(|e| ApiError::internal(format!("cannot store image: {e}")))?;
    let display = auth.params.get("displayName").map(str::to_string);
    let result = ctx.store.write(|db| {
        let intake = Intake::SINGLE_IMAGES;
        let batch = ensure_batch(&ctx, db, &auth.ws, &batch_id, intake, display.as_deref())?;
        let data = BlobRef {
            blob: blob.clone(),
            offset: 0,
            len,
        };
        Ok::<_, ApiError>(put_file(batch, file_name.clone(), data, Content::Images))
    });
    match result {
        Ok(old) => {
            if let Some(old) = old {
                ctx.store.remove_blob(&old);
            }
            Counters::bump(&ctx.counters.image_uploads);
            Ok(Json(StatusOk::ok()))
        }
        Err(e) => {
            ctx.store.remove_blob(&blob);
            Err(e)
        }
    }
}

/// The file part of an image upload, received so far into a temporary file.
#[derive(Debug)]
struct ImagePart {
    tmp: std::path::PathBuf,
    /// The first bytes, for the content check.
    head: Vec<u8>,
    len: u64,
    /// The part is named `file` (preferred over other file parts).
    named_file: bool,
}

/// Receives the image of a multipart body into a temporary file (the part
/// named `file`, else the first part with a file name) and checks its
/// content; returns the file and its length. `chosen` holds the part being
/// received, for the caller to remove on error.
async fn receive_image(
    ctx: &Ctx,
    file_name: &str,
    mut multipart: Multipart,
    chosen: &mut Option<ImagePart>,
) -> ApiResult<(std::path::PathBuf, u64)> {
    let malformed = multipart_error;
    while let Some(field) = multipart.next_field().await.map_err(malformed)? {
        let named_file = field.name() == Some("file");
        let is_file_part = field.file_name().is_some() || named_file;
        let better = match chosen {
            None => true,
            Some(c) => !c.named_file && named_file,
        };
        if !is_file_part || !better {
            continue; // drained by the next next_field call
        }
        if let Some(old) = chosen.take() {
            let _ = tokio::fs::remove_file(old.tmp).await;
        }
        let part = chosen.insert(ImagePart {
            tmp: ctx.store.tmp_path(),
            head: Vec::new(),
            len: 0,
            named_file,
        });
        receive_part(field, part, file_name).await?;
    }
    let part = chosen.take().ok_or_else(|| {
        ApiError::bad_request("multipart body has no file part: send the image as a part named `file` or named after the file")
    })?;
    if let Err(f) = check_image_head(file_name, &part.head, part.len) {
        let _ = tokio::fs::remove_file(&part.tmp).await;
        return Err(ApiError::bad_request(f.reason));
    }
    Ok((part.tmp, part.len))
}

/// Streams one multipart field into `part`'s temporary file (fsynced),
/// keeping its head and refusing more than [`MAX_IMAGE_BYTES`].
async fn receive_part(
    mut field: axum::extract::multipart::Field<'_>,
    part: &mut ImagePart,
    file_name: &str,
) -> ApiResult<()> {
    let store_error = |e: std::io::Error| ApiError::internal(format!("cannot store image: {e}"));
    let mut file = tokio::fs::File::create(&part.tmp)
        .await
        .map_err(store_error)?;
    while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
        part.len += chunk.len() as u64;
        if part.len > MAX_IMAGE_BYTES {
            return Err(ApiError::bad_request(format!(
                "image {file_name:?} is larger than the limit: Max size of single image is {MAX_IMAGE_BYTES}B."
            )));
        }
        if part.head.len() < IMAGE_HEAD_BYTES {
            let take = (IMAGE_HEAD_BYTES - part.head.len()).min(chunk.len());
            part.head.extend_from_slice(&chunk[..take]);
        }
        file.write_all(&chunk).await.map_err(store_error)?;
    }
    file.sync_all().await.map_err(store_error)
}

/// A multipart body that cannot be read: `413` past the image upload
/// limit, `400` when malformed.
fn multipart_error(e: MultipartError) -> ApiError {
    if e.status() == http::StatusCode::PAYLOAD_TOO_LARGE {
        too_large("image upload", IMAGE_UPLOAD_BODY)
    } else {
        ApiError::bad_request(format!("malformed multipart body: {e}"))
    }
}

fn signed_response(
    ctx: &Ctx,
    ws: &str,
    batch: &str,
    grant: Grant,
    max: u64,
) -> Json<SignedUrlResponse> {
    let headers = upload_headers(max);
    let claims = Claims {
        ws: ws.to_string(),
        batch: batch.to_string(),
        grant,
        exp: ctx.url_expiry(),
        headers: headers.clone(),
        max_bytes: Some(max),
    };
    Json(SignedUrlResponse {
        signed_url_details: SignedUrlDetails {
            upload_url: ctx.signed_url(&claims),
            extension_headers: headers,
        },
    })
}

/// `POST .../batches/{batchId}/upload/video` — hands out a signed PUT URL.
pub(crate) async fn upload_video(
    State(ctx): State<Arc<Ctx>>,
    auth: Authed,
    Path((_, batch_id)): Path<(String, String)>,
) -> ApiResult<Json<SignedUrlResponse>> {
    check_batch_id(&batch_id)?;
    let file_name = auth.params.required("fileName")?.to_string();
    check_video_name(&file_name).map_err(|f| ApiError::bad_request(f.reason))?;
    let display = auth.params.get("displayName").map(str::to_string);
    ctx.store.write(|db| {
        let intake = Intake::VIDEO_UPLOADS;
        ensure_batch(&ctx, db, &auth.ws, &batch_id, intake, display.as_deref()).map(|_| ())
    })?;
    Ok(signed_response(
        &ctx,
        &auth.ws,
        &batch_id,
        Grant::UploadVideo {
            file_name,
            display_name: display,
        },
        MAX_VIDEO_BYTES,
    ))
}

/// `POST .../batches/{batchId}/bulk-upload/image-files` — one shard upload slot.
pub(crate) async fn bulk_image_files(
    State(ctx): State<Arc<Ctx>>,
    auth: Authed,
    Path((_, batch_id)): Path<(String, String)>,
) -> ApiResult<Json<SignedUrlResponse>> {
    check_batch_id(&batch_id)?;
    let display = auth.params.get("displayName").map(str::to_string);
    ctx.store.write(|db| {
        let intake = Intake::SHARDS;
        ensure_batch(&ctx, db, &auth.ws, &batch_id, intake, display.as_deref()).map(|_| ())
    })?;
    let shard_id = uuid::Uuid::new_v4().to_string();
    Ok(signed_response(
        &ctx,
        &auth.ws,
        &batch_id,
        Grant::UploadShard {
            shard_id,
            display_name: display,
        },
        MAX_SHARD_BYTES,
    ))
}

fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." || path.is_empty() {
            ApiError::bad_request(format!("invalid JSON body: {inner}"))
        } else {
            ApiError::bad_request(format!("invalid JSON body at {path}: {inner}"))
        }
    })
}

/// What both references endpoints share: the `displayName` query parameter
/// and the hand-off to the ingest module (the batch ID is checked by the
/// handler, before the body is parsed).
#[derive(Debug)]
struct References {
    kind: ingest::RefKind,
    source: ReferencesSource,
    ingest_id: Option<IngestId>,
    notifications_url: Option<String>,
    categories: Option<Vec<NotificationCategory>>,
}

async fn accept_references(
    ctx: &Arc<Ctx>,
    auth: &Authed,
    batch_id: &str,
    refs: References,
) -> ApiResult<ingest::Accepted> {
    let req = ReferencesRequest {
        ws: auth.ws.clone(),
        batch_id: batch_id.to_string(),
        kind: refs.kind,
        ingest_id: refs.ingest_id.map(|i| i.as_str().to_string()),
        notifications_url: refs.notifications_url,
        categories: refs
            .categories
            .map(|c| c.iter().map(|c| c.as_str().to_string()).collect()),
        display_name: auth.params.get("displayName").map(str::to_string),
    };
    ingest::accept_references(ctx, req, refs.source).await
}

/// `POST .../batches/{batchId}/bulk-upload/image-references`.
pub(crate) async fn image_references(
    State(ctx): State<Arc<Ctx>>,
    auth: Authed,
    Path((_, batch_id)): Path<(String, String)>,
    body: Body,
) -> ApiResult<Json<ImageReferencesIngestResponse>> {
    check_batch_id(&batch_id)?;
    let body = read_body(body, REFERENCES_BODY, "references ingest").await?;
    let req: ImageReferencesIngestRequest = parse_json(&body)?;
    let refs = References {
        kind: ingest::RefKind::Images,
        source: req.source,
        ingest_id: req.ingest_id,
        notifications_url: req.notifications_url,
        categories: req.notification_categories,
    };
    let accepted = accept_references(&ctx, &auth, &batch_id, refs).await?;
    Ok(Json(ImageReferencesIngestResponse {
        ingest_id: accepted.ingest_id.into(),
        shard_ids: Some(accepted.shard_ids.into_iter().map(ShardId::from).collect()),
        duplicated: Some(accepted.duplicated),
    }))
}

/// `POST .../batches/{batchId}/bulk-upload/video-references`.
pub(crate) async fn video_references(
    State(ctx): State<Arc<Ctx>>,
    auth: Authed,
    Path((_, batch_id)): Path<(String, String)>,
    body: Body,
) -> ApiResult<Json<VideoReferencesIngestResponse>> {
    check_batch_id(&batch_id)?;
    let body = read_body(body, REFERENCES_BODY, "references ingest").await?;
    let req: VideoReferencesIngestRequest = parse_json(&body)?;
    let refs = References {
        kind: ingest::RefKind::Videos,
        source: req.source,
        ingest_id: req.ingest_id,
        notifications_url: req.notifications_url,
        categories: req.notification_categories,
    };
    let accepted = accept_references(&ctx, &auth, &batch_id, refs).await?;
    Ok(Json(VideoReferencesIngestResponse {
        ingest_id: accepted.ingest_id.into(),
        duplicated: Some(accepted.duplicated),
    }))
}
