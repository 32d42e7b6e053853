//! [`Retrying`]: a transport wrapper that resends failed requests with
//! exponential backoff and full jitter, honouring `Retry-After`.
//!
//! What is retried:
//!
//! * statuses 408, 429, 500, 502, 503 and 504 (the last response is
//!   returned if the retries run out — a status is never turned into an error);
//! * [`ErrorKind::Connect`] errors (the request never reached the server);
//! * [`ErrorKind::Timeout`] and [`ErrorKind::Interrupted`] only for requests
//!   marked [`Request::idempotent`];
//! * never any other 4xx, decode, body or request error, and never a request
//!   whose body is a one-shot stream.
//!
//! A successful answer to an idempotent request whose body is small (at most
//! [`BUFFER_LIMIT`] announced, or JSON) is read whole inside the retry loop,
//! so an answer cut mid-body (a connection closed after the headers) is
//! retried like a failed request instead of surfacing as a decode error.
//! Larger bodies (downloads) stream untouched; their readers check lengths.
//!
//! The delay before retry `n` (1-based) is `Retry-After` when the server sent
//! one (seconds or an HTTP date, capped at [`RetryPolicy::retry_after_cap`]),
//! otherwise a uniformly random duration in
//! `[0, min(max_delay, base_delay * 2^(n-1))]` ("full jitter"). Retrying stops
//! after [`RetryPolicy::max_attempts`] attempts, or when the next wait would
//! end beyond [`RetryPolicy::max_elapsed`] after the first attempt started.
//!
//! Time is read and waited through a [`Sleeper`], and jitter comes from a
//! seedable generator, so tests never sleep for real ([`RecordingSleeper`]).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use futures::future::BoxFuture;
use http::{HeaderMap, StatusCode};

use crate::error::{ErrorKind, TransportError};
use crate::request::Request;
use crate::response::Response;
use crate::transport::Transport;
use crate::util::random_u64;
use rf_util::SplitMix64;

/// Limits and delays of [`Retrying`].
///
/// ```
/// use rf_transport::RetryPolicy;
/// use std::time::Duration;
///
/// let p = RetryPolicy::default();
/// assert_eq!(p.max_attempts, 5);
/// assert_eq!(p.base_delay, Duration::from_millis(200));
/// assert_eq!(p.max_delay, Duration::from_secs(10));
/// assert_eq!(p.max_elapsed, Duration::from_secs(120));
/// assert_eq!(p.retry_after_cap, Duration::from_secs(60));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, the first included (default 5; 1 disables retries).
    pub max_attempts: u32,
    /// Backoff ceiling of the first retry (default 200 ms); it doubles per retry.
    pub base_delay: Duration,
    /// Largest backoff ceiling (default 10 s).
    pub max_delay: Duration,
    /// No retry is started if its wait would end later than this after the
    /// first attempt began (default 120 s).
    pub max_elapsed: Duration,
    /// Longest `Retry-After` honoured; longer requests are shortened to it
    /// (default 60 s).
    pub retry_after_cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
            max_elapsed: Duration::from_secs(120),
            retry_after_cap: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    pub fn no_retries() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// The upper bound of the jittered wait before retry `retry` (1-based):
    /// `min(max_delay, base_delay * 2^(retry-1))`.
    pub fn backoff_ceiling(&self, retry: u32) -> Duration {
        let factor = 1u32 << retry.saturating_sub(1).min(30);
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }
}

/// Largest announced body [`Retrying`] reads whole inside its retry loop
/// (JSON answers are read whole up to [`crate::MAX_BUFFERED_BODY`]).
pub const BUFFER_LIMIT: u64 = 1024 * 1024;

/// Whether an answer is small enough to read inside the retry loop.
fn should_buffer(r: &Response) -> bool {
    if !r.status().is_success() {
        return false;
    }
    if let Some(len) = r.content_length() {
        return len <= BUFFER_LIMIT;
    }
    r.headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.contains("json"))
}

/// Reads a response's body whole and rebuilds the response around it.
async fn buffered(r: Response) -> Result<Response, TransportError> {
    let status = r.status();
    let headers = r.headers().clone();
    let attempts = r.attempts();
    let origin = r.origin();
    let body = r.bytes().await?;
    let rebuilt = Response::from_bytes(status, headers, body).with_attempts(attempts);
    Ok(match origin {
        Some((method, url)) => rebuilt.with_redacted_request(method, url),
        None => rebuilt,
    })
}

/// Whether a status is worth retrying: 408, 429, 500, 502, 503, 504.
pub fn is_retryable_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504)
}

/// The wait a `Retry-After` header asks for: delta-seconds or an HTTP date
/// (a date in the past means no wait). `None` if absent or unparsable.
///
/// ```
/// use rf_transport::{parse_retry_after, HeaderMap, HeaderValue};
/// use std::time::{Duration, SystemTime};
///
/// let mut h = HeaderMap::new();
/// h.insert("retry-after", HeaderValue::from_static("7"));
/// assert_eq!(parse_retry_after(&h, SystemTime::now()), Some(Duration::from_secs(7)));
/// h.insert("retry-after", HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"));
/// assert_eq!(parse_retry_after(&h, SystemTime::now()), Some(Duration::ZERO));
/// ```
pub fn parse_retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Waits and tells the time for [`Retrying`]; replace it in tests.
pub trait Sleeper: Send + Sync + fmt::Debug + 'static {
    /// Waits for `duration`.
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()>;
    /// The current instant (on the sleeper's clock).
    fn now(&self) -> Instant;
    /// The current wall-clock time (to read `Retry-After` dates).
    fn wall_clock(&self) -> SystemTime;
}

/// The real clock: `tokio::time::sleep`.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioSleeper;

impl Sleeper for TokioSleeper {
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(duration))
    }
    fn now(&self) -> Instant {
        Instant::now()
    }
    fn wall_clock(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A virtual clock for tests: `sleep` returns at once, records the duration
/// and moves the clock forward by it. Clones share the clock.
#[derive(Debug, Clone)]
pub struct RecordingSleeper {
    start: Instant,
    wall_start: SystemTime,
    state: Arc<Mutex<Vec<Duration>>>,
}

impl Default for RecordingSleeper {
    fn default() -> Self {
        RecordingSleeper::new()
    }
}

impl RecordingSleeper {
    /// A virtual clock starting now.
    pub fn new() -> RecordingSleeper {
        RecordingSleeper {
            start: Instant::now(),
            wall_start: SystemTime::now(),
            state: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// Every wait asked for, in order.
    pub fn sleeps(&self) -> Vec<Duration> {
        self.lock().clone()
    }

    /// The sum of all waits (how far the virtual clock moved).
    pub fn total(&self) -> Duration {
        self.lock().iter().sum()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Duration>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Sleeper for RecordingSleeper {
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        self.lock().push(duration);
        Box::pin(std::future::ready(()))
    }
    fn now(&self) -> Instant {
        self.start + self.total()
    }
    fn wall_clock(&self) -> SystemTime {
        self.wall_start + self.total()
    }
}

/// Counters shared by a [`Retrying`] transport and its clones, so a CLI can
/// report "took N retries".
#[derive(Debug, Clone, Default)]
pub struct RetryStats {
    retries: Arc<AtomicU64>,
    gave_up: Arc<AtomicU64>,
    congestion: Arc<AtomicU64>,
    retry_after_millis: Arc<AtomicU64>,
}

impl RetryStats {
    /// Retries made so far (attempts beyond the first of each request).
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    /// Requests that still failed (error or retryable status) when retrying stopped.
    pub fn gave_up(&self) -> u64 {
        self.gave_up.load(Ordering::Relaxed)
    }

    /// Attempts that failed with a sign of overload: `429`, `503` or a
    /// timeout (retried or not). An adaptive concurrency limit reads it to
    /// back off.
    pub fn congestion(&self) -> u64 {
        self.congestion.load(Ordering::Relaxed)
    }

    /// The `Retry-After` of the latest congested answer that had one, as
    /// honoured (capped by [`RetryPolicy::retry_after_cap`]; `None`: none
    /// seen yet).
    pub fn last_retry_after(&self) -> Option<Duration> {
        match self.retry_after_millis.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(Duration::from_millis(ms.saturating_sub(1))),
        }
    }

    /// Counts one congested attempt and its `Retry-After`.
    fn congested(&self, retry_after: Option<Duration>) {
        self.congestion.fetch_add(1, Ordering::Relaxed);
        if let Some(wait) = retry_after {
            let ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX - 1);
            self.retry_after_millis
                .store(ms.saturating_add(1), Ordering::Relaxed);
        }
    }
}

/// Wraps a transport with retries; see the module docs for the rules.
///
/// ```
/// use rf_transport::{
///     ErrorKind, Method, MockTransport, RecordingSleeper, Request, Retrying, RetryPolicy,
///     Transport,
/// };
///
/// # async fn demo() -> Result<(), rf_transport::TransportError> {
/// let mock = MockTransport::new();
/// mock.on(Method::GET, "/x").times(1).fail(ErrorKind::Connect);
/// mock.on(Method::GET, "/x").times(1).response_header("retry-after", "3").respond(503, "");
/// mock.on(Method::GET, "/x").respond(200, "ok");
///
/// let sleeper = RecordingSleeper::new();
/// let retrying = Retrying::new(mock, RetryPolicy::default())
///     .with_sleeper(sleeper.clone())
///     .with_rng_seed(1);
/// let url = url::Url::parse("http://api.test/x").unwrap();
/// let response = retrying.send(Request::get(url)).await?;
/// assert_eq!(response.status(), 200);
/// assert_eq!(response.attempts(), 3);
/// assert_eq!(retrying.stats().retries(), 2);
/// assert_eq!(sleeper.sleeps()[1], std::time::Duration::from_secs(3)); // Retry-After
/// # Ok(()) }
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(demo()).unwrap();
/// ```
pub struct Retrying<T> {
    inner: T,
    policy: RetryPolicy,
    sleeper: Arc<dyn Sleeper>,
    rng: Mutex<SplitMix64>,
    stats: RetryStats,
}

impl<T: fmt::Debug> fmt::Debug for Retrying<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Retrying")
            .field("inner", &self.inner)
            .field("policy", &self.policy)
            .field("sleeper", &self.sleeper)
            .finish_non_exhaustive()
    }
}

impl<T: Transport> Retrying<T> {
    /// Wraps `inner` with `policy`, the real clock and random jitter.
    pub fn new(inner: T, policy: RetryPolicy) -> Retrying<T> {
        Retrying {
            inner,
            policy,
            sleeper: Arc::new(TokioSleeper),
            rng: Mutex::new(SplitMix64::new(random_u64())),
            stats: RetryStats::default(),
        }
    }

    /// Uses `sleeper` for waiting and telling time.
    pub fn with_sleeper(mut self, sleeper: impl Sleeper) -> Retrying<T> {
        self.sleeper = Arc::new(sleeper);
        self
    }

    /// Makes the jitter deterministic.
    pub fn with_rng_seed(self, seed: u64) -> Retrying<T> {
        Retrying {
            rng: Mutex::new(SplitMix64::new(seed)),
            ..self
        }
    }

    /// The retry counters (shared: keep a clone and read it later).
    pub fn stats(&self) -> RetryStats {
        self.stats.clone()
    }

    /// The policy in force.
    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// The wrapped transport.
    pub fn inner(&self) -> &T {
        &self.inner
    }

    /// Why `result` may be retried and the `Retry-After` it asked for
    /// (`None`: it is final); counts a sign of overload.
    fn retry_reason(
        &self,
        result: &Result<Response, TransportError>,
        idempotent: bool,
    ) -> Option<(String, Option<Duration>)> {
        let reason = match result {
            Ok(r) if is_retryable_status(r.status()) => (
                format!("status {}", r.status().as_u16()),
                parse_retry_after(r.headers(), self.sleeper.wall_clock()),
            ),
            Err(e) if e.is_retryable(idempotent) => (e.kind().to_string(), None),
            _ => return None,
        };
        if is_congestion(result) {
            let honoured = reason.1.map(|w| w.min(self.policy.retry_after_cap));
            self.stats.congested(honoured);
        }
        Some(reason)
    }

    fn jittered_backoff(&self, retry: u32) -> Duration {
        let ceiling = self.policy.backoff_ceiling(retry);
        let unit = self
            .rng
            .lock()
            .map(|mut r| r.next_f64())
            .unwrap_or_else(|p| p.into_inner().next_f64());
        ceiling.mul_f64(unit)
    }
}

#[async_trait::async_trait]
impl<T: Transport> Transport for Retrying<T> {
    async fn send(&self, request: Request) -> Result<Response, TransportError> {
        let start = self.sleeper.now();
        let max_attempts = self.policy.max_attempts.max(1);
        let method = request.method.clone();
        let idempotent = request.idempotent;
        let redacted = request.redacted_url();
        let mut next = Some(request);
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let Some(current) = next.take() else {
                // Unreachable: the loop only continues with a next request.
                return Err(
                    TransportError::new(ErrorKind::Other, "retry loop lost its request")
                        .with_redacted_request(method, redacted),
                );
            };
            if attempt < max_attempts {
                next = current.try_clone();
            }
            let result = match self.inner.send(current).await {
                Ok(r) if idempotent && should_buffer(&r) => buffered(r).await,
                other => other,
            };
            let Some((reason, retry_after)) = self.retry_reason(&result, idempotent) else {
                return finish(
                    result,
                    attempt,
                    self.sleeper.now().saturating_duration_since(start),
                );
            };
            let delay = match retry_after {
                Some(wait) => wait.min(self.policy.retry_after_cap),
                None => self.jittered_backoff(attempt),
            };
            let elapsed = self.sleeper.now().saturating_duration_since(start);
            let why_stop = if next.is_none() && attempt >= max_attempts {
                Some(format!("{max_attempts} attempts used"))
            } else if next.is_none() {
                Some("the body cannot be re-sent".to_string())
            } else if elapsed + delay > self.policy.max_elapsed {
                Some(format!(
                    "waiting {delay:?} more would exceed the {:?} limit",
                    self.policy.max_elapsed
                ))
            } else {
                None
            };
            if let Some(why) = why_stop {
                self.stats.gave_up.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(
                    method = %method,
                    url = %redacted,
                    attempts = attempt,
                    reason = %reason,
                    "giving up: {why}"
                );
                return finish(
                    result,
                    attempt,
                    self.sleeper.now().saturating_duration_since(start),
                );
            }
            drop(result);
            self.stats.retries.fetch_add(1, Ordering::Relaxed);
            tracing::info!(
                method = %method,
                url = %redacted,
                attempt,
                delay_ms = delay.as_millis() as u64,
                reason = %reason,
                "retrying request"
            );
            self.sleeper.sleep(delay).await;
        }
    }
}

/// A `429`, a `503` or a timeout: the server (or the path to it) is
/// overloaded, not broken.
fn is_congestion(result: &Result<Response, TransportError>) -> bool {
    match result {
        Ok(r) => matches!(r.status().as_u16(), 429 | 503),
        Err(e) => e.kind() == ErrorKind::Timeout,
    }
}

fn finish(
    result: Result<Response, TransportError>,
    attempts: u32,
    elapsed: Duration,
) -> Result<Response, TransportError> {
    match result {
        Ok(r) => Ok(r.with_attempts(attempts)),
        Err(e) if attempts > 1 => Err(e.with_attempts(attempts).with_elapsed(elapsed)),
        Err(e) => Err(e.with_attempts(attempts)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_ceiling_doubles_and_caps() {
        let p = RetryPolicy::default();
        assert_eq!(p.backoff_ceiling(1), Duration::from_millis(200));
        assert_eq!(p.backoff_ceiling(2), Duration::from_millis(400));
        assert_eq!(p.backoff_ceiling(6), Duration::from_millis(6400));
        assert_eq!(p.backoff_ceiling(7), Duration::from_secs(10));
        assert_eq!(p.backoff_ceiling(1000), Duration::from_secs(10));
    }

    #[test]
    fn retry_after_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut h = HeaderMap::new();
        assert_eq!(parse_retry_after(&h, now), None);
        h.insert("retry-after", " 12 ".parse().unwrap());
        assert_eq!(parse_retry_after(&h, now), Some(Duration::from_secs(12)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        h.insert("retry-after", later.parse().unwrap());
        assert_eq!(parse_retry_after(&h, now), Some(Duration::from_secs(30)));
        h.insert("retry-after", "soon".parse().unwrap());
        assert_eq!(parse_retry_after(&h, now), None);
        h.insert("retry-after", "-3".parse().unwrap());
        assert_eq!(parse_retry_after(&h, now), None);
    }

    #[test]
    fn retryable_statuses() {
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(is_retryable_status(StatusCode::from_u16(s).unwrap()), "{s}");
        }
        for s in [200, 201, 301, 400, 401, 403, 404, 409, 413, 422, 501, 505] {
            assert!(
                !is_retryable_status(StatusCode::from_u16(s).unwrap()),
                "{s}"
            );
        }
    }

    /// Answers with a JSON body cut after the headers, then a whole one.
    #[derive(Debug, Default)]
    struct CutOnce(std::sync::atomic::AtomicU32);

    #[async_trait::async_trait]
    impl Transport for CutOnce {
        async fn send(&self, request: Request) -> Result<Response, TransportError> {
            let mut h = HeaderMap::new();
            h.insert("content-type", "application/json".parse().unwrap());
            if self.0.fetch_add(1, Ordering::SeqCst) == 0 {
                let cut = request.error(ErrorKind::Interrupted, "cut");
                let body =
                    futures::stream::iter([Ok(bytes::Bytes::from_static(b"{\"a\"")), Err(cut)]);
                return Ok(Response::from_stream(StatusCode::OK, h, body));
            }
            Ok(Response::from_bytes(StatusCode::OK, h, r#"{"a":1}"#))
        }
    }

    #[test]
    fn an_answer_cut_mid_body_is_retried_for_idempotent_requests() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let url = url::Url::parse("http://api.test/x").unwrap();
        let r = Retrying::new(CutOnce::default(), RetryPolicy::default())
            .with_sleeper(RecordingSleeper::new());
        let answer = rt.block_on(r.send(Request::get(url.clone()))).unwrap();
        assert_eq!(answer.attempts(), 2);
        let v: serde_json::Value = rt.block_on(answer.json()).unwrap();
        assert_eq!(v["a"], 1);
        assert_eq!(r.stats().retries(), 1);
        // Not idempotent: the answer is handed over as it is.
        let r = Retrying::new(CutOnce::default(), RetryPolicy::default())
            .with_sleeper(RecordingSleeper::new());
        let answer = rt.block_on(r.send(Request::post(url))).unwrap();
        assert_eq!(answer.attempts(), 1);
        assert!(rt.block_on(answer.bytes()).is_err());
    }

    #[test]
    fn recording_sleeper_moves_its_clock() {
        let s = RecordingSleeper::new();
        let t0 = s.now();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(s.sleep(Duration::from_secs(5)));
        rt.block_on(s.clone().sleep(Duration::from_secs(2)));
        assert_eq!(s.now() - t0, Duration::from_secs(7));
        assert_eq!(
            s.sleeps(),
            vec![Duration::from_secs(5), Duration::from_secs(2)]
        );
    }
}
