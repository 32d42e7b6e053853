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
    tx: mpsc::Sender<Delivery>,
}

/// One delivery, told by the printing loop.
#[derive(Debug)]
enum Delivery {
    /// Acknowledged: printed on stdout, its kind noted on stderr.
    Accepted {
        body: serde_json::Value,
        kind: Result<String, String>,
    },
    /// Refused: a warning on stderr says what and why.
    Refused {
        path: String,
        status: StatusCode,
        why: String,
    },
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
                let Some(delivery) = received else { break Ok(()) };
                if let Err(e) = tell(output, delivery) {
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

/// Prints one delivery: an accepted one on stdout (its kind on stderr), a
/// refused one as a warning.
fn tell(output: &Output, delivery: Delivery) -> Result<()> {
    match delivery {
        Delivery::Accepted { body, kind } => {
            match &kind {
                Ok(kind) => output.note(&format!("received {kind}")),
                Err(why) => output.warn(&format!(
                    "received a notification of an unknown shape: {why}"
                )),
            }
            output.json_line(&body)
        }
        Delivery::Refused { path, status, why } => {
            output.warn(&format!(
                "refused a delivery to {path}: HTTP {}: {why}",
                status.as_u16()
            ));
            Ok(())
        }
    }
}

async fn receive(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let refusal = check(&shared, &method, &headers, &body);
    let delivery = match refusal {
        Err((status, why)) => Delivery::Refused {
            path: uri.path().to_owned(),
            status,
            why,
        },
        Ok(value) => Delivery::Accepted {
            body: value,
            kind: classify(&body),
        },
    };
    let answer = match &delivery {
        Delivery::Refused { status, why, .. } => Some(reply(*status, why)),
        Delivery::Accepted { .. } => None,
    };
    if shared.tx.send(delivery).await.is_err() {
        return reply(StatusCode::SERVICE_UNAVAILABLE, "the receiver is stopping");
    }
    if let Some(refused) = answer {
        return refused;
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"status":"ok"}"#,
    )
        .into_response()
}

/// The delivery's JSON body, or why it is refused: not a POST, a missing or
/// wrong token (the expected one named in redacted form), not JSON.
fn check(
    shared: &Shared,
    method: &Method,
    headers: &HeaderMap,
    body: &[u8],
) -> std::result::Result<serde_json::Value, (StatusCode, String)> {
    if method != Method::POST {
        return Err((
            StatusCode::METHOD_NOT_ALLOWED,
            format!("webhooks are delivered with POST, not {method}"),
        ));
    }
    if let Some(token) = &shared.token
        && !authorized(headers, token)
    {
        let got = if headers.contains_key(header::AUTHORIZATION) {
            "another token"
        } else {
            "no Authorization header"
        };
        return Err((
            StatusCode::UNAUTHORIZED,
            format!(
                "missing or wrong bearer token in the Authorization header (expected Bearer {}, got {got})",
                redacted(token)
            ),
        ));
    }
    serde_json::from_slice(body).map_err(|e| {
        (
            StatusCode::BAD_REQUEST,
            format!("the body is not json: {e}"),
        )
    })
}

/// A token as it may be printed: its first three characters at most (none
/// of a short one) and its length.
fn redacted(token: &str) -> String {
    let n = token.chars().count();
    let shown: String = if n >= 8 {
        token.chars().take(3).collect()
    } else {
        String::new()
    };
    format!("{shown}\u{2026} ({n} characters)")
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
    fn a_token_is_named_only_by_its_start_and_length() {
        assert_eq!(redacted("rf_local-secret"), "rf_\u{2026} (15 characters)");
        assert_eq!(redacted("short"), "\u{2026} (5 characters)");
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
