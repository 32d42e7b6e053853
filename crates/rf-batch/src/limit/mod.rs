//! How many uploads or downloads run at once: a fixed number, or an
//! adaptive limit that finds what the link and the service take.
//!
//! The adaptive limit ([`Concurrency::Adaptive`]) is throughput-probing
//! AIMD (additive increase, multiplicative decrease, as TCP's congestion
//! control and Netflix's `concurrency-limits` AIMD limiter):
//!
//! - it measures in windows of `limit` completions the work done per second
//!   (bytes, plus 64 KiB per request for its round trip);
//! - it starts at `initial` ([`DEFAULT_INITIAL`] = 32 by default: a quarter
//!   of what memory allows, so a short transfer over a long round trip does
//!   not spend most of its time ramping up) and doubles after every window
//!   while each doubling raises throughput by at least 10% (slow start: from
//!   32 to 128 in two windows, about two round trips); when a step does not
//!   pay, it returns to the last limit that did and holds;
//! - holding, it probes a quarter more every third window and keeps it only
//!   if throughput rises by 10% again;
//! - on signs of overload (`429`, `503` or a timeout, counted by
//!   rf-transport's [`rf_transport::RetryStats::congestion`], or a request
//!   that failed with one) in a tenth of a window's worth of completions
//!   (at least one), it multiplies the limit by 0.7, at most once per
//!   window, and holds new starts for the `Retry-After` the service asked
//!   for; fewer signs are noise the limit cannot cure (each request is
//!   still retried after its own `Retry-After` by rf-transport): with 20%
//!   random chaos faults, cutting on every sign drove the limit to 3 and a
//!   2,000-file export from 3.5 s to 105 s;
//! - it never goes below 1 nor above `max` (and [`MEMORY_CAP`]).
//!
//! [`Limiter`] applies it: a task calls [`Limiter::acquire`] before it
//! starts a request and [`Permit::finish`] when it ends.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::Notify;
use tokio::time::Instant;

mod aimd;
#[cfg(test)]
mod sim;

use aimd::{Controller, Outcome};

/// The most transfers in flight at once, whatever is asked: each may hold
/// up to 256 KiB in memory (a small download received whole, an upload's
/// read-ahead), so 128 of them stay within 32 MiB.
pub const MEMORY_CAP: usize = 128;

/// Where an adaptive limit starts by default: a quarter of [`MEMORY_CAP`]
/// (8 MiB of transfers at most), high enough that a short transfer over a
/// long round trip is not spent ramping up, low enough that a busy service
/// sees at most this many requests before the first sign of overload.
pub const DEFAULT_INITIAL: usize = 32;

/// The longest pause a `Retry-After` imposes on new starts.
const MAX_PAUSE: Duration = Duration::from_secs(30);

/// How many transfers run at once.
///
/// ```
/// use rf_batch::limit::Concurrency;
/// assert_eq!(Concurrency::default(), Concurrency::Adaptive { initial: 32, max: 128 });
/// assert_eq!(Concurrency::Fixed(4).initial(), 4);
/// assert_eq!(Concurrency::Adaptive { initial: 8, max: 1000 }.max(), 128);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Concurrency {
    /// Exactly this many (`rf --concurrency N`).
    Fixed(usize),
    /// Starts at `initial` and adapts between 1 and `max` (`rf
    /// --max-concurrency N` sets `max`); the default.
    Adaptive {
        /// The limit at the start.
        initial: usize,
        /// The highest limit it may reach.
        max: usize,
    },
}

impl Default for Concurrency {
    fn default() -> Self {
        Concurrency::adaptive_up_to(MEMORY_CAP)
    }
}

impl Concurrency {
    /// An adaptive limit up to `max` (starting at [`DEFAULT_INITIAL`], or
    /// `max` if lower).
    pub fn adaptive_up_to(max: usize) -> Self {
        let max = max.clamp(1, MEMORY_CAP);
        Concurrency::Adaptive {
            initial: DEFAULT_INITIAL.min(max),
            max,
        }
    }

    /// The limit at the start (at least 1, at most [`MEMORY_CAP`]).
    pub fn initial(self) -> usize {
        match self {
            Concurrency::Fixed(n) => n,
            Concurrency::Adaptive { initial, max } => initial.min(max),
        }
        .clamp(1, MEMORY_CAP)
    }

    /// The highest limit (at least 1, at most [`MEMORY_CAP`]).
    pub fn max(self) -> usize {
        match self {
            Concurrency::Fixed(n) => n,
            Concurrency::Adaptive { max, .. } => max,
        }
        .clamp(1, MEMORY_CAP)
    }
}

/// What a limiter did, for run reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LimitReport {
    /// The setting it ran with.
    pub concurrency: Concurrency,
    /// The limit at the end (where an adaptive one settled).
    pub settled: usize,
    /// The highest limit reached.
    pub peak: usize,
    /// Cuts made on signs of overload.
    pub decreases: u64,
    /// Pauses of new starts for a `Retry-After`.
    pub pauses: u64,
}

#[derive(Debug)]
struct State {
    controller: Option<Controller>,
    limit: usize,
    in_flight: usize,
    paused_until: Option<Instant>,
    pauses: u64,
    /// The transport's congestion counter when last read.
    congestion_seen: u64,
}

/// Admits transfers up to the current limit (see the module docs).
#[derive(Debug)]
pub struct Limiter {
    concurrency: Concurrency,
    signals: Option<rf_transport::RetryStats>,
    state: Mutex<State>,
    changed: Notify,
}

/// One admitted transfer; dropping it without [`Permit::finish`] frees its
/// place without telling the limit anything.
#[derive(Debug)]
pub struct Permit {
    limiter: Arc<Limiter>,
    finished: bool,
}

impl Limiter {
    /// A limiter for `concurrency`, reading overload signs from `signals`
    /// (the client's [`crate::Client::retry_stats`]) when given.
    pub fn new(concurrency: Concurrency, signals: Option<rf_transport::RetryStats>) -> Arc<Self> {
        let now = Instant::now();
        let controller = match concurrency {
            Concurrency::Fixed(_) => None,
            Concurrency::Adaptive { .. } => Some(Controller::new(
                concurrency.initial(),
                concurrency.max(),
                now,
            )),
        };
        let congestion_seen = signals.as_ref().map_or(0, |s| s.congestion());
        Arc::new(Limiter {
            concurrency,
            signals,
            state: Mutex::new(State {
                controller,
                limit: concurrency.initial(),
                in_flight: 0,
                paused_until: None,
                pauses: 0,
                congestion_seen,
            }),
            changed: Notify::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The current limit.
    pub fn limit(&self) -> usize {
        self.lock().limit
    }

    /// Waits until one more transfer may start.
    pub async fn acquire(self: &Arc<Self>) -> Permit {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let pause = {
                let mut state = self.lock();
                let now = Instant::now();
                match state.paused_until {
                    Some(until) if until > now => Some(until),
                    _ if state.in_flight < state.limit => {
                        state.in_flight += 1;
                        return Permit {
                            limiter: self.clone(),
                            finished: false,
                        };
                    }
                    _ => None,
                }
            };
            match pause {
                Some(until) => tokio::time::sleep_until(until).await,
                None => notified.await,
            }
        }
    }

    /// Ends a transfer of `bytes` (`congested`: it failed with a sign of
    /// overload); returns the new limit when it changed.
    fn finish(&self, bytes: u64, congested: bool) -> Option<usize> {
        let now = Instant::now();
        let mut state = self.lock();
        state.in_flight = state.in_flight.saturating_sub(1);
        let seen = self.signals.as_ref().map_or(0, |s| s.congestion());
        let signalled = seen > state.congestion_seen;
        state.congestion_seen = seen;
        let outcome = if congested || signalled {
            Outcome::Congested
        } else {
            Outcome::Done
        };
        let cuts = |state: &State| state.controller.as_ref().map_or(0, |c| c.decreases);
        let cuts_before = cuts(&state);
        let changed = state
            .controller
            .as_mut()
            .and_then(|c| c.complete(now, bytes, outcome));
        // New starts wait for the Retry-After only when the signs were
        // many enough to cut the limit: a few are retried one by one.
        if cuts(&state) > cuts_before {
            self.pause_for_retry_after(&mut state, now);
        }
        if let Some(limit) = changed {
            state.limit = limit;
        }
        drop(state);
        self.changed.notify_waiters();
        changed
    }

    /// Holds new starts for the latest `Retry-After` (capped), once per
    /// sign: an adaptive limiter only, a fixed one leaves waits to retries.
    fn pause_for_retry_after(&self, state: &mut State, now: Instant) {
        if state.controller.is_none() {
            return;
        }
        let Some(wait) = self.signals.as_ref().and_then(|s| s.last_retry_after()) else {
            return;
        };
        if wait.is_zero() || state.paused_until.is_some_and(|u| u > now) {
            return;
        }
        state.paused_until = Some(now + wait.min(MAX_PAUSE));
        state.pauses += 1;
    }

    /// What it did so far.
    pub fn report(&self) -> LimitReport {
        let state = self.lock();
        let (peak, decreases) = state
            .controller
            .as_ref()
            .map_or((state.limit, 0), |c| (c.peak, c.decreases));
        LimitReport {
            concurrency: self.concurrency,
            settled: state.limit,
            peak,
            decreases,
            pauses: state.pauses,
        }
    }
}

impl Permit {
    /// Ends the transfer: `bytes` moved, `congested` when it failed with a
    /// sign of overload. Returns the new limit when it changed.
    pub fn finish(mut self, bytes: u64, congested: bool) -> Option<usize> {
        self.finished = true;
        self.limiter.finish(bytes, congested)
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if !self.finished {
            let mut state = self.limiter.lock();
            state.in_flight = state.in_flight.saturating_sub(1);
            drop(state);
            self.limiter.changed.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_serialize_for_json_output() {
        let fixed = serde_json::to_value(Concurrency::Fixed(8)).unwrap();
        assert_eq!(fixed, serde_json::json!({"fixed": 8}));
        let adaptive = serde_json::to_value(Concurrency::default()).unwrap();
        assert_eq!(
            adaptive,
            serde_json::json!({"adaptive": {"initial": 32, "max": 128}})
        );
        let l = Limiter::new(Concurrency::Fixed(3), None);
        let report = serde_json::to_value(l.report()).unwrap();
        assert_eq!(report["settled"], 3);
        assert_eq!(report["concurrency"]["fixed"], 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_fixed_limit_admits_exactly_n() {
        let l = Limiter::new(Concurrency::Fixed(2), None);
        let a = l.acquire().await;
        let _b = l.acquire().await;
        let third = tokio::spawn({
            let l = l.clone();
            async move { l.acquire().await }
        });
        tokio::task::yield_now().await;
        assert!(!third.is_finished(), "a third waits");
        assert_eq!(a.finish(10, true), None, "a fixed limit never moves");
        let _c = tokio::time::timeout(Duration::from_secs(1), third)
            .await
            .expect("admitted once one finished")
            .unwrap();
        assert_eq!(l.report().settled, 2);
        assert_eq!(l.report().decreases, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn an_adaptive_limit_is_cut_by_a_failed_overloaded_transfer() {
        let l = Limiter::new(
            Concurrency::Adaptive {
                initial: 10,
                max: 64,
            },
            None,
        );
        let p = l.acquire().await;
        assert_eq!(p.finish(0, true), Some(7));
        let r = l.report();
        assert_eq!((r.settled, r.peak, r.decreases), (7, 10, 1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_retry_after_holds_new_starts_and_cuts_the_limit() {
        use rf_transport::{
            Method, MockTransport, RecordingSleeper, Request, RetryPolicy, Retrying, Transport,
        };
        let mock = MockTransport::new();
        mock.on(Method::GET, "/x")
            .times(1)
            .response_header("retry-after", "2")
            .respond(429, "slow down");
        mock.on(Method::GET, "/x").respond(200, "ok");
        let retrying =
            Retrying::new(mock, RetryPolicy::default()).with_sleeper(RecordingSleeper::new());
        let l = Limiter::new(
            Concurrency::Adaptive {
                initial: 8,
                max: 64,
            },
            Some(retrying.stats()),
        );
        let p = l.acquire().await;
        let url = url::Url::parse("http://api.test/x").unwrap();
        let answer = retrying.send(Request::get(url)).await.unwrap();
        assert_eq!(answer.status(), 200, "the transport retried the 429");
        assert_eq!(
            p.finish(100, false),
            Some(5),
            "the 429 seen on the way cuts 8 to 5"
        );
        let before = Instant::now();
        let _q = l.acquire().await;
        assert!(
            Instant::now() - before >= Duration::from_secs(2),
            "the next start waited for the Retry-After"
        );
        let r = l.report();
        assert_eq!((r.decreases, r.pauses, r.settled), (1, 1, 5));
    }
}
