//! The emulator in-process: a `Transport` that hands each request to the
//! emulator's axum router directly (no socket), streaming bodies both ways.
#![allow(dead_code, unreachable_pub)]

use futures::{StreamExt, TryStreamExt};
use rf_emulator::{EmulatorConfig, EmulatorState, router};
use rf_transport::{ErrorKind, Request, Response, Transport, TransportError};
use tower::ServiceExt;

/// Origin the in-process emulator believes it is served from (signed URLs
/// point here; every request is routed in-process whatever its host).
pub const IN_PROCESS_BASE: &str = "http://emulator.in-process/";

#[derive(Clone)]
pub struct InProcess {
    app: axum::Router,
    pub state: EmulatorState,
}

impl std::fmt::Debug for InProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InProcess")
    }
}

impl InProcess {
    pub fn start() -> InProcess {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let state = EmulatorState::open(
            EmulatorConfig::for_tests(),
            IN_PROCESS_BASE.parse().unwrap(),
        )
        .unwrap();
        InProcess {
            app: router(state.clone()),
            state,
        }
    }
}

#[async_trait::async_trait]
impl Transport for InProcess {
    async fn send(&self, request: Request) -> Result<Response, TransportError> {
        let url = request.full_url();
        let target = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        };
        let mut builder = http::Request::builder()
            .method(request.method.clone())
            .uri(target)
            .header("host", "emulator.in-process");
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        if let Some(ct) = request.body.content_type() {
            builder = builder.header("content-type", ct);
        }
        if let Some(len) = request.body.content_length() {
            builder = builder.header("content-length", len);
        }
        let body = axum::body::Body::from_stream(request.body.stream());
        let req = builder
            .body(body)
            .map_err(|e| request.error(ErrorKind::Request, e.to_string()))?;
        let answer = self
            .app
            .clone()
            .oneshot(req)
            .await
            .map_err(|e| request.error(ErrorKind::Other, e.to_string()))?;
        let (parts, body) = answer.into_parts();
        let stream = body
            .into_data_stream()
            .map_err(|e| TransportError::new(ErrorKind::Body, e.to_string()))
            .boxed();
        Ok(Response::from_stream(parts.status, parts.headers, stream))
    }
}
