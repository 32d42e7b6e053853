//! Request body limits, each sized to what its endpoint can legitimately
//! carry, and reading a body within one (a longer body is a `413` naming
//! the limit).

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use futures::StreamExt as _;
use http::StatusCode;
use rf_types::MAX_IMAGE_BYTES;

use crate::error::{ApiError, ApiResult};

/// Bodies of the endpoints that take none (bulk-upload slots, video upload
/// URLs, abort) and of anything not listed below.
pub(super) const DEFAULT_BODY: usize = 64 * 1024;

/// A job definition: a workflow's parameters, a batch ID and a webhook URL
/// come to a few KiB; 1 MiB leaves room for big workflow parameter sets.
pub(super) const JOB_DEFINITION_BODY: usize = 1024 * 1024;

/// A restart's `parameters-override-v1` body: four numbers.
pub(super) const RESTART_BODY: usize = 64 * 1024;

/// A references ingest: the client sends at most 20,000 references per
/// request (API contract §2.2.5), each a file name (≤ 255 bytes) and a
/// signed URL (a few KiB at most): 20,000 × 3 KiB fits in 64 MiB.
pub(super) const REFERENCES_BODY: usize = 64 * 1024 * 1024;

/// A single image upload: one image of at most [`MAX_IMAGE_BYTES`] plus
/// the multipart framing and small text fields.
pub(super) const IMAGE_UPLOAD_BODY: usize = MAX_IMAGE_BYTES as usize + 1024 * 1024;

/// The `413` answer for a body longer than `limit` bytes.
pub(super) fn too_large(what: &str, limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("{what} body is larger than the limit of {limit} bytes"),
    )
}

/// Reads `body` whole, refusing (`413`) one longer than `limit` bytes as
/// soon as it is.
pub(super) async fn read_body(body: Body, limit: usize, what: &str) -> ApiResult<Bytes> {
    let mut stream = body.into_data_stream();
    let mut buf = BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk
            .map_err(|e| ApiError::bad_request(format!("cannot read the {what} body: {e}")))?;
        if buf.len() + chunk.len() > limit {
            return Err(too_large(what, limit));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}
