//! The signed-URL endpoints: `PUT /_signed/{token}` (shard or video upload)
//! and `GET /_signed/{token}` (file download). No API key: the token is the
//! authorisation.

use std::io::SeekFrom;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use crate::ctx::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::ingest;
use crate::media::sniff_video;
use crate::model::Content;
use crate::signed::{self, Claims, Grant};
use crate::stats::Counters;

fn authorize(ctx: &Ctx, token: &str, method: &Method, headers: &HeaderMap) -> ApiResult<Claims> {
    let claims = signed::verify(ctx.store.secret(), token, ctx.now())
        .map_err(|e| ApiError::forbidden(e.to_string()))?;
    signed::check_request(&claims, method.as_str(), headers)
        .map_err(|e| ApiError::forbidden(e.to_string()))?;
    let now = ctx.now();
    let exists = ctx
        .store
        .read(|db| db.batch(&claims.ws, &claims.batch, now).is_some());
    if !exists {
        return Err(ApiError::not_found(format!(
            "batch {:?} of this signed url no longer exists",
            claims.batch
        )));
    }
    Ok(claims)
}

/// `PUT /_signed/{token}`.
pub(crate) async fn put(
    State(ctx): State<Arc<Ctx>>,
    Path(token): Path<String>,
    method: Method,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<StatusCode> {
    let claims = authorize(&ctx, &token, &method, &headers)?;
    let max = claims.max_bytes.unwrap_or(u64::MAX);
    let tmp = ctx.store.tmp_path();
    let written = stream_to_file(body, &tmp, max).await;
    let len = match written {
        Ok(n) => n,
        Err(e) => {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(e);
        }
    };
    match claims.grant {
        Grant::UploadShard { shard_id, .. } => {
            // A new blob for every upload: bytes an earlier download URL
            // names never change.
            let blob = format!("{}.tar", uuid::Uuid::new_v4().simple());
            ctx.store
                .commit_blob(&tmp, &blob)
                .map_err(|e| ApiError::internal(format!("cannot store shard: {e}")))?;
            ingest::shard_uploaded(&ctx, &claims.ws, &claims.batch, &shard_id, &blob);
            ctx.counters.shard_uploaded(&claims.batch);
        }
        Grant::UploadVideo { file_name, .. } => {
            let mut head = [0u8; 16];
            let n = match tokio::fs::File::open(&tmp).await {
                Ok(mut f) => f.read(&mut head).await.unwrap_or(0),
                Err(_) => 0,
            };
            if sniff_video(&head[..n]).is_none() {
                let _ = tokio::fs::remove_file(&tmp).await;
                return Err(ApiError::bad_request(format!(
                    "{file_name:?} is not a video: its content is no known container (mp4, mov, avi, mkv/webm, flv, wmv, mpeg, ogg)"
                )));
            }
            let blob = format!("{}.vid", uuid::Uuid::new_v4().simple());
            ctx.store
                .commit_blob(&tmp, &blob)
                .map_err(|e| ApiError::internal(format!("cannot store video: {e}")))?;
            if let Err(e) =
                ingest::video_uploaded(&ctx, &claims.ws, &claims.batch, &file_name, &blob, len)
            {
                ctx.store.remove_blob(&blob);
                return Err(e);
            }
            Counters::bump(&ctx.counters.video_uploads);
        }
        Grant::Download { .. } => {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(ApiError::forbidden("signed url allows GET, not PUT"));
        }
    }
    Ok(StatusCode::OK)
}

async fn stream_to_file(body: Body, path: &std::path::Path, max: u64) -> ApiResult<u64> {
    let mut file = tokio::fs::File::create(path)
        .await
        .map_err(|e| ApiError::internal(format!("cannot store upload: {e}")))?;
    let mut stream = body.into_data_stream();
    let mut total = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::bad_request(format!("upload body interrupted: {e}")))?;
        total += chunk.len() as u64;
        if total > max {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("upload is larger than the {max} bytes allowed by this signed url"),
            ));
        }
        file.write_all(&chunk)
            .await
            .map_err(|e| ApiError::internal(format!("cannot store upload: {e}")))?;
    }
    file.sync_all()
        .await
        .map_err(|e| ApiError::internal(format!("cannot store upload: {e}")))?;
    Ok(total)
}

fn mime(name: &str, content: Content) -> &'static str {
    let lower = name.to_ascii_lowercase();
    let ext = lower.rsplit('.').next().unwrap_or("");
    match (content, ext) {
        (_, "gz") => "application/gzip",
        (_, "tar") => "application/x-tar",
        (_, "jsonl") => "application/x-ndjson",
        (_, "json") => "application/json",
        (_, "csv") => "text/csv",
        (_, "png") => "image/png",
        (_, "jpg" | "jpeg" | "jpe") => "image/jpeg",
        (_, "webp") => "image/webp",
        (_, "bmp" | "dib") => "image/bmp",
        (_, "jp2") => "image/jp2",
        (_, "mp4" | "m4v") => "video/mp4",
        (_, "mov") => "video/quicktime",
        (_, "webm") => "video/webm",
        _ => "application/octet-stream",
    }
}

/// `GET /_signed/{token}`.
pub(crate) async fn get(
    State(ctx): State<Arc<Ctx>>,
    Path(token): Path<String>,
    method: Method,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let claims = authorize(&ctx, &token, &method, &headers)?;
    let Grant::Download {
        file_name,
        data,
        content,
    } = claims.grant
    else {
        return Err(ApiError::forbidden("signed url allows PUT, not GET"));
    };
    let path = ctx
        .store
        .blob_path_checked(&data.blob)
        .ok_or_else(|| ApiError::not_found(format!("file {file_name:?} no longer exists")))?;
    let mut file = tokio::fs::File::open(&path)
        .await
        .map_err(|_| ApiError::not_found(format!("file {file_name:?} no longer exists")))?;
    file.seek(SeekFrom::Start(data.offset))
        .await
        .map_err(|e| ApiError::internal(format!("cannot read {file_name:?}: {e}")))?;
    let stream = tokio_util::io::ReaderStream::with_capacity(file.take(data.len), 64 * 1024);
    let mut resp = Body::from_stream(stream).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(mime(&file_name, content)),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(data.len));
    Ok(resp)
}
