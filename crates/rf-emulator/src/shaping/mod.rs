//! Network shaping: the conditions of a user's link, applied to every API
//! route and signed URL alike (not to `/_emulator/stats`).
//!
//! - **latency** ([`ShapingConfig::latency`], `--latency-ms`): each answer
//!   starts that much later, like a round trip, plus a seeded uniform draw
//!   in `0..=latency_jitter` (`--latency-jitter-ms`);
//! - **bandwidth** ([`ShapingConfig::bandwidth_mbps`], `--bandwidth-mbps`):
//!   one token bucket per direction shared by all connections, request
//!   bodies through the inbound one and response bodies through the
//!   outbound one, chunk by chunk as they stream;
//! - **connections** ([`ShapingConfig::max_connections`],
//!   `--max-connections`): at most that many open at once; more wait to be
//!   accepted;
//! - **capacity** ([`ShapingConfig::max_in_flight`], `--max-in-flight`): a
//!   service that answers that many requests at once, and `429` with
//!   `Retry-After: 1` to any that arrives while it is full, as a loaded
//!   service does: unlike chaos mode's random throttling, these `429`s
//!   depend on the client's load, so a client that backs off gets fewer.
//!
//! These are test conditions, not faults: they are independent of chaos
//! mode ([`crate::ChaosConfig`]) and combine with it (shaping is the outer
//! layer: a throttled answer is late too). What was applied is counted in
//! [`ShapingStats`] (`GET /_emulator/stats`, field `shaping`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use rf_util::rng::{mix, unit};

use crate::error::EmulatorError;

mod body;
mod bucket;
pub(crate) mod listener;

use bucket::TokenBucket;

/// Link conditions ([`crate::EmulatorConfig::shaping`]); the default shapes
/// nothing.
///
/// ```
/// use std::time::Duration;
/// use rf_emulator::ShapingConfig;
/// let wan = ShapingConfig {
///     latency: Duration::from_millis(40),
///     bandwidth_mbps: Some(200.0),
///     ..ShapingConfig::default()
/// };
/// assert!(wan.is_active() && wan.validate().is_ok());
/// assert!(!ShapingConfig::default().is_active());
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ShapingConfig {
    /// Added before each answer.
    pub latency: Duration,
    /// Most extra latency drawn per answer (uniformly, from
    /// [`Self::seed`] and the answer's sequence number).
    pub latency_jitter: Duration,
    /// Megabits per second per direction (`None`: no cap).
    pub bandwidth_mbps: Option<f64>,
    /// Connections open at once (`None`: no cap).
    pub max_connections: Option<usize>,
    /// Requests answered at once; one arriving while this many are in the
    /// works gets `429` (`None`: no cap).
    pub max_in_flight: Option<usize>,
    /// Seed of the jitter draws: the same seed gives the same delays to the
    /// same sequence of answers.
    pub seed: u64,
}

impl ShapingConfig {
    /// True when any condition is set.
    pub fn is_active(&self) -> bool {
        !self.latency.is_zero()
            || !self.latency_jitter.is_zero()
            || self.bandwidth_mbps.is_some()
            || self.max_connections.is_some()
            || self.max_in_flight.is_some()
    }

    /// Checks the bandwidth is a positive number and the connection cap at
    /// least 1.
    pub fn validate(&self) -> Result<(), EmulatorError> {
        if let Some(mbps) = self.bandwidth_mbps
            && (!mbps.is_finite() || mbps <= 0.0)
        {
            return Err(EmulatorError::Config(format!(
                "bandwidth {mbps} Mbit/s is not a positive number"
            )));
        }
        if self.max_connections == Some(0) {
            return Err(EmulatorError::Config(
                "max connections must be at least 1".to_string(),
            ));
        }
        if self.max_in_flight == Some(0) {
            return Err(EmulatorError::Config(
                "max requests in flight must be at least 1".to_string(),
            ));
        }
        Ok(())
    }

    /// The latency of the `n`-th shaped answer (0-based).
    fn latency_of(&self, n: u64) -> Duration {
        if self.latency_jitter.is_zero() {
            return self.latency;
        }
        let share = unit(mix(self.seed ^ mix(n)));
        self.latency + self.latency_jitter.mul_f64(share)
    }
}

/// What shaping applied since the emulator started (the `shaping` field of
/// `GET /_emulator/stats`; `null` when no condition is set).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ShapingStats {
    /// The configured latency, in milliseconds.
    pub latency_ms: f64,
    /// The configured jitter bound, in milliseconds.
    pub latency_jitter_ms: f64,
    /// The configured cap per direction (`null`: none).
    pub bandwidth_mbps: Option<f64>,
    /// The configured connection cap (`null`: none).
    pub max_connections: Option<usize>,
    /// Answers that got latency added (one per shaped request).
    pub answers_delayed: u64,
    /// Latency added over all answers, in milliseconds.
    pub latency_added_ms: f64,
    /// Request body bytes that went through the inbound bucket.
    pub bytes_in: u64,
    /// Response body bytes that went through the outbound bucket.
    pub bytes_out: u64,
    /// Waits the inbound bucket imposed, summed, in milliseconds.
    pub wait_in_ms: f64,
    /// Waits the outbound bucket imposed, summed, in milliseconds.
    pub wait_out_ms: f64,
    /// Connections accepted.
    pub connections_accepted: u64,
    /// Connections open now.
    pub connections_open: u64,
    /// Accepts that had to wait for a connection to close (`--max-connections`).
    pub connections_waited: u64,
    /// The configured capacity (`null`: none).
    pub max_in_flight: Option<usize>,
    /// Requests in the works now (counted with a capacity set).
    pub in_flight: u64,
    /// Most requests in the works at once (counted with a capacity set).
    pub in_flight_peak: u64,
    /// Requests answered `429` because the capacity was full.
    pub over_capacity: u64,
}

/// One direction of the link: its bucket and what went through it.
#[derive(Debug)]
pub(crate) struct Link {
    bucket: TokenBucket,
    bytes: AtomicU64,
    wait_micros: AtomicU64,
}

impl Link {
    fn new(mbps: f64) -> Self {
        Self {
            bucket: TokenBucket::new(mbps * 1_000_000.0 / 8.0),
            bytes: AtomicU64::new(0),
            wait_micros: AtomicU64::new(0),
        }
    }

    /// Reserves `bytes` and counts them and the wait imposed.
    pub(crate) fn reserve(&self, bytes: u64) -> Duration {
        let wait = self.bucket.reserve(bytes);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.wait_micros.fetch_add(micros(wait), Ordering::Relaxed);
        wait
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

fn millis(micros: &AtomicU64) -> f64 {
    micros.load(Ordering::Relaxed) as f64 / 1000.0
}

/// The running shaper: the settings, both links and the counters.
#[derive(Debug)]
pub(crate) struct Shaper {
    config: ShapingConfig,
    inbound: Option<Arc<Link>>,
    outbound: Option<Arc<Link>>,
    answers: AtomicU64,
    latency_micros: AtomicU64,
    pub(crate) connections_accepted: AtomicU64,
    pub(crate) connections_open: AtomicU64,
    pub(crate) connections_waited: AtomicU64,
    in_flight: Arc<AtomicU64>,
    in_flight_peak: AtomicU64,
    over_capacity: AtomicU64,
}

/// The `429` of a request that found the capacity full.
fn over_capacity_answer() -> Response {
    let mut resp = crate::error::ApiError::new(
        axum::http::StatusCode::TOO_MANY_REQUESTS,
        "too many requests in flight (the emulator's --max-in-flight capacity); retry after the Retry-After delay",
    )
    .into_response();
    resp.headers_mut().insert(
        axum::http::header::RETRY_AFTER,
        axum::http::HeaderValue::from(1u64),
    );
    resp
}

/// Whether a request may be answered now ([`Shaper::admit`]).
enum Admission {
    /// No capacity is set.
    Unlimited,
    /// Counted in; counted out when the guard drops.
    Admitted(InFlight),
    /// The capacity is full: the answer is `429`.
    Full,
}

/// One request in the works: counted out when its answer is ready.
struct InFlight(Arc<AtomicU64>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Shaper {
    pub(crate) fn new(config: ShapingConfig) -> Self {
        let link = || config.bandwidth_mbps.map(|m| Arc::new(Link::new(m)));
        Self {
            inbound: link(),
            outbound: link(),
            config,
            answers: AtomicU64::new(0),
            latency_micros: AtomicU64::new(0),
            connections_accepted: AtomicU64::new(0),
            connections_open: AtomicU64::new(0),
            connections_waited: AtomicU64::new(0),
            in_flight: Arc::new(AtomicU64::new(0)),
            in_flight_peak: AtomicU64::new(0),
            over_capacity: AtomicU64::new(0),
        }
    }

    /// Counts a request in against the capacity: the guard that counts it
    /// out, or [`Admission::Full`].
    fn admit(&self) -> Admission {
        let Some(cap) = self.config.max_in_flight else {
            return Admission::Unlimited;
        };
        let now = self.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        let guard = InFlight(self.in_flight.clone());
        self.in_flight_peak.fetch_max(now, Ordering::Relaxed);
        if now > cap as u64 {
            Self::bump(&self.over_capacity);
            return Admission::Full;
        }
        Admission::Admitted(guard)
    }

    pub(crate) fn config(&self) -> &ShapingConfig {
        &self.config
    }

    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Delays `req`'s answer, paces its body in and its answer's body out.
    pub(crate) async fn shape(&self, req: Request, next: Next) -> Response {
        if !self.config.is_active() {
            return next.run(req).await;
        }
        let n = self.answers.fetch_add(1, Ordering::Relaxed);
        let delay = self.config.latency_of(n);
        if !delay.is_zero() {
            self.latency_micros
                .fetch_add(micros(delay), Ordering::Relaxed);
            tokio::time::sleep(delay).await;
        }
        let _in_flight = match self.admit() {
            Admission::Unlimited => None,
            Admission::Admitted(guard) => Some(guard),
            Admission::Full => {
                // Read the upload so the client gets to read the answer.
                crate::chaos::respond::drain(req.into_body()).await;
                return over_capacity_answer();
            }
        };
        let req = match &self.inbound {
            Some(link) => req.map(|b| Body::new(body::ShapedBody::new(b, link.clone()))),
            None => req,
        };
        let resp = next.run(req).await;
        match &self.outbound {
            Some(link) => resp.map(|b| Body::new(body::ShapedBody::new(b, link.clone()))),
            None => resp,
        }
    }

    /// The counters (`None` when nothing is shaped).
    pub(crate) fn stats(&self) -> Option<ShapingStats> {
        if !self.config.is_active() {
            return None;
        }
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let link = |l: &Option<Arc<Link>>| {
            l.as_ref()
                .map_or((0, 0.0), |l| (load(&l.bytes), millis(&l.wait_micros)))
        };
        let (bytes_in, wait_in_ms) = link(&self.inbound);
        let (bytes_out, wait_out_ms) = link(&self.outbound);
        Some(ShapingStats {
            latency_ms: self.config.latency.as_secs_f64() * 1000.0,
            latency_jitter_ms: self.config.latency_jitter.as_secs_f64() * 1000.0,
            bandwidth_mbps: self.config.bandwidth_mbps,
            max_connections: self.config.max_connections,
            answers_delayed: load(&self.answers),
            latency_added_ms: millis(&self.latency_micros),
            bytes_in,
            bytes_out,
            wait_in_ms,
            wait_out_ms,
            connections_accepted: load(&self.connections_accepted),
            connections_open: load(&self.connections_open),
            connections_waited: load(&self.connections_waited),
            max_in_flight: self.config.max_in_flight,
            in_flight: load(&self.in_flight),
            in_flight_peak: load(&self.in_flight_peak),
            over_capacity: load(&self.over_capacity),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_is_seeded_and_bounded() {
        let config = ShapingConfig {
            latency: Duration::from_millis(40),
            latency_jitter: Duration::from_millis(10),
            seed: 7,
            ..ShapingConfig::default()
        };
        let a: Vec<_> = (0..500).map(|n| config.latency_of(n)).collect();
        let b: Vec<_> = (0..500).map(|n| config.latency_of(n)).collect();
        assert_eq!(a, b, "same seed, same delays");
        assert!(
            a.iter()
                .all(|d| *d >= Duration::from_millis(40) && *d <= Duration::from_millis(50))
        );
        assert!(a.iter().any(|d| *d > Duration::from_millis(45)));
        let other = ShapingConfig { seed: 8, ..config };
        assert_ne!(a, (0..500).map(|n| other.latency_of(n)).collect::<Vec<_>>());
    }

    #[test]
    fn settings_are_checked() {
        let bad = |c: ShapingConfig| c.validate().is_err();
        assert!(bad(ShapingConfig {
            bandwidth_mbps: Some(0.0),
            ..ShapingConfig::default()
        }));
        assert!(bad(ShapingConfig {
            bandwidth_mbps: Some(f64::NAN),
            ..ShapingConfig::default()
        }));
        assert!(bad(ShapingConfig {
            max_connections: Some(0),
            ..ShapingConfig::default()
        }));
        assert!(bad(ShapingConfig {
            max_in_flight: Some(0),
            ..ShapingConfig::default()
        }));
        assert!(ShapingConfig::default().validate().is_ok());
    }
}
