//! [`FaultInjecting`]: a transport wrapper that makes a seeded share of
//! requests fail the way real networks and services do, for tests of the
//! code above it (retries, resumable uploads, idempotent job starts).
//!
//! Each request draws from a seeded generator; with probability
//! [`FaultPlan::rate`] one of [`FaultPlan::kinds`] (chosen uniformly) hits it:
//!
//! * [`Fault::Throttle`]: answered `429` with `Retry-After: 0`; the inner
//!   transport never sees it;
//! * [`Fault::ServerError`]: answered `500`, `502`, `503` or `504`; never sent on;
//! * [`Fault::DropRequest`]: fails with [`ErrorKind::Connect`] before it is
//!   sent on (the server never saw it);
//! * [`Fault::DropResponse`]: sent on (the server acts on it), then the answer
//!   is lost: an [`ErrorKind::Interrupted`] error, or, for a successful `GET`
//!   with a body, the body is cut half-way with an `Interrupted` error;
//! * [`Fault::Delay`]: sent on after [`FaultPlan::delay`].
//!
//! [`FaultInjecting::counts`] tells how many of each were injected.
//!
//! ```
//! use rf_transport::{Fault, FaultInjecting, FaultPlan, Method, MockTransport, Request, Transport};
//!
//! # async fn demo() {
//! let mock = MockTransport::new();
//! mock.on(Method::GET, "/x").respond(200, "ok");
//! let chaos = FaultInjecting::new(mock, FaultPlan::new(7, 1.0, vec![Fault::ServerError]));
//! let url = url::Url::parse("http://api.test/x").unwrap();
//! let answer = chaos.send(Request::get(url)).await.unwrap();
//! assert!(answer.status().is_server_error());
//! assert_eq!(chaos.counts().total(), 1);
//! # }
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(demo());
//! ```

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http::{HeaderMap, HeaderValue, Method, StatusCode};

use crate::error::{ErrorKind, TransportError};
use crate::request::Request;
use crate::response::Response;
use crate::transport::Transport;
use rf_util::SplitMix64;

/// A kind of injected failure; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// `429` with `Retry-After: 0`.
    Throttle,
    /// `500`/`502`/`503`/`504`.
    ServerError,
    /// Connection refused before sending.
    DropRequest,
    /// The request takes effect, the answer is lost.
    DropResponse,
    /// The answer comes late.
    Delay,
}

impl Fault {
    /// Every kind.
    pub const ALL: [Fault; 5] = [
        Fault::Throttle,
        Fault::ServerError,
        Fault::DropRequest,
        Fault::DropResponse,
        Fault::Delay,
    ];

    /// Its slot in [`FaultCounts`]: the order of declaration.
    fn index(self) -> usize {
        self as usize
    }
}

/// What [`FaultInjecting`] injects.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultPlan {
    /// Seed of the generator that picks the victims and the kinds.
    pub seed: u64,
    /// Share of requests hit, `0.0..=1.0`.
    pub rate: f64,
    /// Kinds to pick from (empty: none).
    pub kinds: Vec<Fault>,
    /// How long [`Fault::Delay`] holds a request (default 5 ms).
    pub delay: Duration,
}

impl FaultPlan {
    /// `rate` of requests hit by one of `kinds`, seeded by `seed`.
    pub fn new(seed: u64, rate: f64, kinds: Vec<Fault>) -> FaultPlan {
        FaultPlan {
            seed,
            rate: rate.clamp(0.0, 1.0),
            kinds,
            delay: Duration::from_millis(5),
        }
    }
}

/// How many faults of each kind were injected (shared by clones).
#[derive(Debug, Clone, Default)]
pub struct FaultCounts {
    counts: Arc<[AtomicU64; Fault::ALL.len()]>,
}

impl FaultCounts {
    /// Faults of `kind` injected so far.
    pub fn of(&self, kind: Fault) -> u64 {
        self.counts[kind.index()].load(Ordering::Relaxed)
    }

    /// Faults injected so far, all kinds.
    pub fn total(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    fn add(&self, kind: Fault) {
        self.counts[kind.index()].fetch_add(1, Ordering::Relaxed);
    }
}

/// Wraps a transport and injects faults; see the module docs.
pub struct FaultInjecting<T> {
    inner: T,
    plan: FaultPlan,
    rng: Mutex<SplitMix64>,
    counts: FaultCounts,
}

impl<T: fmt::Debug> fmt::Debug for FaultInjecting<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultInjecting")
            .field("inner", &self.inner)
            .field("plan", &self.plan)
            .finish_non_exhaustive()
    }
}

impl<T: Transport> FaultInjecting<T> {
    /// Wraps `inner` with `plan`.
    pub fn new(inner: T, plan: FaultPlan) -> FaultInjecting<T> {
        FaultInjecting {
            inner,
            rng: Mutex::new(SplitMix64::new(plan.seed)),
            plan,
            counts: FaultCounts::default(),
        }
    }

    /// The counters of injected faults (shared: keep a clone).
    pub fn counts(&self) -> FaultCounts {
        self.counts.clone()
    }

    /// The wrapped transport.
    pub fn inner(&self) -> &T {
        &self.inner
    }

    /// Draws the fate of one request: `None`, or a fault and a spare number.
    fn draw(&self) -> Option<(Fault, u64)> {
        if self.plan.kinds.is_empty() {
            return None;
        }
        let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
        if rng.next_f64() >= self.plan.rate {
            return None;
        }
        let len = self.plan.kinds.len() as u64;
        let kind = self.plan.kinds[(rng.next_u64() % len) as usize];
        Some((kind, rng.next_u64()))
    }
}

fn status_response(status: StatusCode, retry_after: bool) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if retry_after {
        headers.insert(http::header::RETRY_AFTER, HeaderValue::from_static("0"));
    }
    Response::from_bytes(
        status,
        headers,
        Bytes::from_static(br#"{"error":"injected fault"}"#),
    )
}

/// A response whose body stops half-way with an `Interrupted` error, or
/// `None` when the body is empty. Half of `Content-Length` is kept when it is
/// announced, else half of the first chunk.
async fn cut_body(mut response: Response, method: &Method, url: &url::Url) -> Option<Response> {
    let status = response.status();
    let headers = response.headers().clone();
    let mut kept = Vec::new();
    match response.content_length() {
        Some(len) => {
            let keep = len / 2;
            while (kept.len() as u64) < keep {
                match response.chunk().await {
                    Ok(Some(chunk)) => kept.extend_from_slice(&chunk),
                    _ => break,
                }
            }
            kept.truncate(usize::try_from(keep).unwrap_or(usize::MAX));
        }
        None => {
            let first = response.chunk().await.ok().flatten()?;
            kept.extend_from_slice(&first[..first.len() / 2]);
        }
    }
    if kept.is_empty() && response.content_length().unwrap_or(0) == 0 {
        return None;
    }
    let error = TransportError::new(ErrorKind::Interrupted, "injected: response body cut")
        .with_request(method, url);
    let body = futures::stream::iter([Ok(Bytes::from(kept)), Err(error)]);
    Some(Response::from_stream(status, headers, body.boxed()).with_request(method, url))
}

#[async_trait::async_trait]
impl<T: Transport> Transport for FaultInjecting<T> {
    async fn send(&self, request: Request) -> Result<Response, TransportError> {
        let Some((fault, spare)) = self.draw() else {
            return self.inner.send(request).await;
        };
        self.counts.add(fault);
        tracing::debug!(url = %request.redacted_url(), ?fault, "injecting a fault");
        match fault {
            Fault::Throttle => Ok(status_response(StatusCode::TOO_MANY_REQUESTS, true)),
            Fault::ServerError => {
                let code = [500, 502, 503, 504][(spare % 4) as usize];
                let status = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_GATEWAY);
                Ok(status_response(status, false))
            }
            Fault::DropRequest => Err(request.error(
                ErrorKind::Connect,
                "injected: connection refused before sending",
            )),
            Fault::DropResponse => {
                let method = request.method.clone();
                let url = request.full_url();
                let lost = request.error(
                    ErrorKind::Interrupted,
                    "injected: connection closed before the answer",
                );
                let response = self.inner.send(request).await?;
                if method == Method::GET && response.status().is_success() {
                    cut_body(response, &method, &url).await.ok_or(lost)
                } else {
                    Err(lost)
                }
            }
            Fault::Delay => {
                tokio::time::sleep(self.plan.delay).await;
                self.inner.send(request).await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MockTransport;

    fn url() -> url::Url {
        url::Url::parse("http://api.test/x").unwrap()
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
    }

    #[test]
    fn rate_zero_passes_everything_and_rate_one_hits_everything() {
        rt().block_on(async {
            let mock = MockTransport::new();
            mock.on(Method::GET, "/x").respond(200, "ok");
            let calm = FaultInjecting::new(mock.clone(), FaultPlan::new(1, 0.0, Fault::ALL.into()));
            for _ in 0..20 {
                assert_eq!(calm.send(Request::get(url())).await.unwrap().status(), 200);
            }
            assert_eq!(calm.counts().total(), 0);
            let wild = FaultInjecting::new(
                mock,
                FaultPlan::new(1, 1.0, vec![Fault::Throttle, Fault::DropRequest]),
            );
            for _ in 0..20 {
                match wild.send(Request::get(url())).await {
                    Ok(r) => {
                        assert_eq!(r.status(), 429);
                        assert_eq!(r.headers()["retry-after"], "0");
                    }
                    Err(e) => assert_eq!(e.kind(), ErrorKind::Connect),
                }
            }
            let c = wild.counts();
            assert_eq!(c.total(), 20);
            assert!(c.of(Fault::Throttle) > 0 && c.of(Fault::DropRequest) > 0);
        });
    }

    #[test]
    fn the_same_seed_injects_the_same_faults() {
        rt().block_on(async {
            let run = |seed| async move {
                let mock = MockTransport::new();
                mock.on(Method::GET, "/x").respond(200, "ok");
                let t =
                    FaultInjecting::new(mock, FaultPlan::new(seed, 0.3, vec![Fault::ServerError]));
                let mut statuses = Vec::new();
                for _ in 0..50 {
                    statuses.push(t.send(Request::get(url())).await.unwrap().status().as_u16());
                }
                statuses
            };
            let a = run(42).await;
            assert_eq!(a, run(42).await);
            let hit = a.iter().filter(|&&s| s >= 500).count();
            assert!((5..=25).contains(&hit), "{hit} of 50 hit at rate 0.3");
        });
    }

    #[test]
    fn dropped_responses_take_effect_and_cut_bodies() {
        rt().block_on(async {
            let mock = MockTransport::new();
            mock.on(Method::POST, "/x").respond(200, "{}");
            mock.on(Method::GET, "/x").respond(200, "0123456789");
            let t = FaultInjecting::new(
                mock.clone(),
                FaultPlan::new(3, 1.0, vec![Fault::DropResponse]),
            );
            let err = t.send(Request::post(url())).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Interrupted);
            assert_eq!(mock.requests().len(), 1, "the server saw the request");
            let mut r = t.send(Request::get(url())).await.unwrap();
            let first = r.chunk().await.unwrap().unwrap();
            assert_eq!(&first[..], b"01234");
            assert_eq!(r.chunk().await.unwrap_err().kind(), ErrorKind::Interrupted);
        });
    }
}
