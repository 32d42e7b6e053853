//! `rf webhook listen`: a small local receiver for Roboflow webhooks.
//!
//! Every `POST` (any path) must carry `Authorization: Bearer <token>` when a
//! token is configured (401 otherwise). A JSON body is acknowledged with 200
//! and printed on stdout as one compact JSON line; bodies that are not JSON get
//! 400. Bodies that match the documented notification shapes (rf-types'
//! webhook models) are noted on stderr with their kind; others are still
//! printed, with a warning saying what did not match.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::sync::mpsc;

use crate::args::WebhookListenArgs;
use crate::error::{CliError, Result};
use crate::output::Output;

/// Notifications waiting to be printed; senders wait when it is full.
const QUEUE: usize = 64;

#[derive(Debug)]
struct Shared {
    token: Option<String>,
    tx: mpsc::Sender<Received>,
}

/// One accepted notification.
#[derive(Debug)]
struct Received {
    body: serde_json::Value,
    kind: Result<String, String>,
}

/// Runs the receiver until Ctrl-C (exit 0) or until stdout is closed.
pub(crate) async fn listen(
    args: &WebhookListenArgs,
    env_token: Option<String>,
    output: &Output,
) -> Result<()> {
    let token = args
        .token
        .clone()
        .or(env_token)
        .filter(|t| !t.trim().is_empty());
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .map_err(|e| {
            CliError::local(format!(
                "cannot listen on {}: {e}; choose another --addr",
                args.addr
            ))
        })?;
    let addr: SocketAddr = listener
        .local_addr()
        .map_err(|e| CliError::local(format!("could not read the listening address: {e}")))?;
    let (tx, mut rx) = mpsc::channel(QUEUE);
    let shared = Arc::new(Shared { token, tx });
    if shared.token.is_none() {
        output.warn("no --token given: accepting notifications without checking Authorization");
    }
    let app = Router::new()
        .fallback(receive)
        .with_state(Arc::clone(&shared));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stop_rx.await;
            })
            .await
    });
    // One Ctrl-C listener for the whole loop (a fresh one per iteration
    // would miss a signal that arrives while a notification is printed),
    // registered before the listening line is printed.
    let ctrl_c = super::stop_signal(false)
        .map_err(|e| CliError::local(format!("could not wait for ctrl-c: {e}")))?;
    tokio::pin!(ctrl_c);
    output.note(&format!(
        "listening for webhooks on http://{addr}/ (Ctrl-C to stop)"
    ));
    let result = loop {
        tokio::select! {
            received = rx.recv() => {
                let Some(received) = received else { break Ok(()) };
                match &received.kind {
                    Ok(kind) => output.note(&format!("received {kind}")),
                    Err(why) => output.warn(&format!("received a notification of an unknown shape: {why}")),
                }
                if let Err(e) = output.json_line(&received.body) {
                    break Err(e);
                }
            }
            signal = &mut ctrl_c => {
                break match signal {
                    Ok(()) => {
                        output.note("stopped");
                        Ok(())
                    }
                    Err(e) => Err(CliError::local(format!("could not wait for ctrl-c: {e}"))),
                };
            }
        }
    };
    let _ = stop_tx.send(());
    drop(shared);
    match server.await {
        Ok(Ok(())) | Err(_) => {}
        Ok(Err(e)) => output.warn(&format!("webhook server stopped with an error: {e}")),
    }
    result
}

async fn receive(
    State(shared): State<Arc<Shared>>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if method != Method::POST {
        return reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "webhooks are delivered with POST",
        );
    }
    if let Some(token) = &shared.token
        && !authorized(&headers, token)
    {
        return reply(
            StatusCode::UNAUTHORIZED,
            "missing or wrong bearer token in the Authorization header",
        );
    }
    let value: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return reply(
                StatusCode::BAD_REQUEST,
                &format!("the body is not json: {e}"),
            );
        }
    };
    let kind = classify(&body);
    if shared
        .tx
        .send(Received { body: value, kind })
        .await
        .is_err()
    {
        return reply(StatusCode::SERVICE_UNAVAILABLE, "the receiver is stopping");
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"status":"ok"}"#,
    )
        .into_response()
}

fn reply(status: StatusCode, message: &str) -> Response {
    let body = serde_json::json!({ "error": message }).to_string();
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Whether `Authorization` is `Bearer <token>` (scheme case-insensitive,
/// token compared in constant time).
fn authorized(headers: &HeaderMap, token: &str) -> bool {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some((scheme, presented)) = value.trim().split_once(' ') else {
        return false;
    };
    scheme.eq_ignore_ascii_case("bearer") && constant_time_eq(presented.trim(), token)
}

fn constant_time_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Names the notification if it has a documented shape, or says why not.
fn classify(body: &[u8]) -> Result<String, String> {
    use rf_types::{StagingNotificationBody, WebhookPayload};
    match WebhookPayload::from_slice(body) {
        Ok(WebhookPayload::Job(job)) => Ok(format!(
            "job notification: job {} {} (event {}, attempt {})",
            job.job_id, job.job_state, job.event_id, job.delivery_attempt
        )),
        Ok(WebhookPayload::Staging(staging)) => {
            let what = match &staging.notification {
                StagingNotificationBody::IngestStatus(s) => {
                    format!("ingest {}", if s.success { "succeeded" } else { "failed" })
                }
                StagingNotificationBody::FilesStatus(f) => format!(
                    "{} files ingested, {} failed",
                    f.ingested_files.len(),
                    f.failed_files.len()
                ),
            };
            Ok(format!(
                "staging notification: batch {} ingest {}: {what} (event {}, attempt {})",
                staging.batch_id, staging.ingest_id, staging.event_id, staging.delivery_attempt
            ))
        }
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with_auth(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn bearer_token_must_match_exactly() {
        assert!(authorized(&with_auth("Bearer s3cret"), "s3cret"));
        assert!(authorized(&with_auth("bearer s3cret"), "s3cret"));
        assert!(!authorized(&with_auth("Bearer s3cre"), "s3cret"));
        assert!(!authorized(&with_auth("Basic s3cret"), "s3cret"));
        assert!(!authorized(&with_auth("s3cret"), "s3cret"));
        assert!(!authorized(&HeaderMap::new(), "s3cret"));
    }

    #[test]
    fn documented_job_notification_is_recognised() {
        let body = br#"{"type":"roboflow-batch-job-notification-v1","event_id":"e1","job_id":"job-1","job_state":"success","delivery_attempt":1}"#;
        let kind = classify(body).unwrap();
        assert!(kind.contains("job-1"), "{kind}");
        assert!(classify(br#"{"hello":1}"#).is_err());
        let staging = br#"{"type":"roboflow-data-staging-notification-v1","event_id":"e2","ingest_id":"i1","batch_id":"b1","shard_id":null,"notification":{"type":"ingest-status-notification-v1","success":true},"delivery_attempt":2}"#;
        let kind = classify(staging).unwrap();
        assert!(
            kind.contains("batch b1") && kind.contains("succeeded"),
            "{kind}"
        );
    }
}
