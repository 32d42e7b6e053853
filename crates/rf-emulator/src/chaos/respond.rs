//! The answers of injected faults: a connection dropped before the head or
//! mid-body, a throttled (`429` with `Retry-After`) or failed (`5xx`)
//! answer, and draining the request body of a request that gets one.

use std::time::Duration;

use axum::body::{Body, HttpBody};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::StreamExt;
use http::{HeaderValue, StatusCode, header};

use crate::error::ApiError;

/// Error that aborts a response body: hyper then closes the connection
/// without finishing (or, before the first flush, without sending) the answer.
fn aborted() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::ConnectionAborted,
        "chaos: connection dropped",
    )
}

/// An answer that is never sent: the connection closes before its head.
pub(crate) fn drop_before_head() -> Response {
    let body = Body::from_stream(futures::stream::once(async { Err::<Bytes, _>(aborted()) }));
    (StatusCode::INTERNAL_SERVER_ERROR, body).into_response()
}

/// Reads and discards a request body, so the client (still sending an
/// upload) surely gets to read the error answer instead of a reset
/// connection. Memory stays flat; a broken body just ends the drain.
pub(crate) async fn drain(body: Body) {
    let mut stream = body.into_data_stream();
    while let Some(Ok(_)) = stream.next().await {}
}

/// The answer of a throttled request.
pub(crate) fn throttled(retry_after_secs: u64) -> Response {
    let mut resp = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too many requests (injected by the emulator's chaos mode); retry after the Retry-After delay",
    )
    .into_response();
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
    resp
}

/// The answer of a request failed with a server error.
pub(crate) fn server_error(status: StatusCode) -> Response {
    ApiError::new(
        status,
        format!(
            "server error {} (injected by the emulator's chaos mode); retry later",
            status.as_u16()
        ),
    )
    .into_response()
}

/// Cuts `resp` off: its head and about half its body are sent, then the
/// connection drops. An answer without body is dropped before its head.
pub(crate) fn cut_response(resp: Response) -> Response {
    let (mut parts, body) = resp.into_parts();
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let known = declared.or_else(|| body.size_hint().exact());
    if known == Some(0) || body.is_end_stream() {
        return drop_before_head();
    }
    if let Some(len) = known {
        // Keep the full length announced: the client must notice the cut.
        parts
            .headers
            .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    // Without a known length, the first chunk goes through.
    let keep = known.map(|len| len / 2);
    #[derive(PartialEq)]
    enum Phase {
        Sending,
        Cut,
        Ended,
    }
    struct Cut {
        inner: axum::body::BodyDataStream,
        sent: u64,
        keep: Option<u64>,
        phase: Phase,
    }
    let state = Cut {
        inner: body.into_data_stream(),
        sent: 0,
        keep,
        phase: Phase::Sending,
    };
    let stream = futures::stream::unfold(state, |mut s| async move {
        match s.phase {
            Phase::Ended => return None,
            Phase::Cut => {
                // Let the bytes sent so far reach the socket before the drop.
                tokio::time::sleep(Duration::from_millis(20)).await;
                s.phase = Phase::Ended;
                return Some((Err(aborted()), s));
            }
            Phase::Sending => {}
        }
        let budget = s.keep.map(|k| k.saturating_sub(s.sent));
        let chunk = match (budget, s.inner.next().await) {
            (Some(0), _) | (_, Some(Err(_)) | None) => Bytes::new(),
            (Some(b), Some(Ok(mut chunk))) => {
                if chunk.len() as u64 >= b {
                    chunk.truncate(usize::try_from(b).unwrap_or(chunk.len()));
                    s.phase = Phase::Cut;
                }
                chunk
            }
            (None, Some(Ok(chunk))) => {
                s.phase = Phase::Cut;
                chunk
            }
        };
        if chunk.is_empty() {
            s.phase = Phase::Cut;
        }
        s.sent += chunk.len() as u64;
        Some((Ok(chunk), s))
    });
    Response::from_parts(parts, Body::from_stream(stream))
}
