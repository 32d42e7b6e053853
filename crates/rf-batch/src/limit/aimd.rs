//! The limit algorithm, with no clock or I/O of its own: fed completions
//! with their time, size and outcome, it says what the limit is. See
//! [`super`] for the rules and `docs/architecture.md` for why these.

use tokio::time::Instant;

/// Work a completed request stands for besides its bytes: the cost of one
/// round trip, so that many small files count as work too.
const REQUEST_WORK: u64 = 64 * 1024;
/// The throughput gain (10%) that makes a larger limit worth keeping.
const GAIN: f64 = 1.10;
/// The factor applied to the limit on a sign of overload.
const BACKOFF: f64 = 0.7;
/// Windows held at a limit before probing a larger one again.
const PROBE_AFTER: u32 = 3;
/// The share of a window's completions (one in ten) that must carry a sign
/// of overload before the limit is cut: fewer are noise that the limit
/// cannot cure (a service that throttles or fails a few requests whatever
/// the load; each is still retried after its `Retry-After`).
const TOLERATED: usize = 10;

/// How a request ended, for the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// It completed (or failed in a way that says nothing about load).
    Done,
    /// A sign of overload: `429`, `503` or a timeout, seen on it or on a
    /// retry of it.
    Congested,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Doubling while each step pays.
    SlowStart,
    /// Holding, probing a quarter more from time to time.
    Steady,
}

/// One measuring window: it ends once `limit` requests completed in it.
#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    completions: usize,
    work: u64,
    /// A decrease was made in this window (one per window at most).
    reacted: bool,
    /// Completions in it that carried a sign of overload.
    congested: usize,
}

impl Window {
    fn new(now: Instant, reacted: bool) -> Self {
        Window {
            started: now,
            completions: 0,
            work: 0,
            reacted,
            congested: 0,
        }
    }
}

/// Throughput-probing AIMD (see [`super`]).
#[derive(Debug, Clone)]
pub(crate) struct Controller {
    limit: usize,
    max: usize,
    phase: Phase,
    window: Window,
    /// The limit of the last finished window and the throughput it gave.
    previous: Option<(usize, f64)>,
    holds: u32,
    pub(crate) peak: usize,
    pub(crate) decreases: u64,
}

impl Controller {
    pub(crate) fn new(initial: usize, max: usize, now: Instant) -> Self {
        let max = max.max(1);
        let limit = initial.clamp(1, max);
        Controller {
            limit,
            max,
            phase: Phase::SlowStart,
            window: Window::new(now, false),
            previous: None,
            holds: 0,
            peak: limit,
            decreases: 0,
        }
    }

    #[cfg(test)]
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// Takes one completion; returns the new limit when it changed. A cut
    /// comes once a tenth of the limit's worth of completions in this
    /// window carried a sign of overload (at least one).
    pub(crate) fn complete(&mut self, now: Instant, bytes: u64, outcome: Outcome) -> Option<usize> {
        let before = self.limit;
        self.window.completions += 1;
        self.window.work += bytes + REQUEST_WORK;
        if outcome == Outcome::Congested {
            self.window.congested += 1;
        }
        let overloaded = self.window.congested * TOLERATED >= self.limit;
        if outcome == Outcome::Congested && overloaded && !self.window.reacted {
            self.back_off(now);
        } else if self.window.completions >= self.limit {
            self.end_window(now);
        }
        self.peak = self.peak.max(self.limit);
        (self.limit != before).then_some(self.limit)
    }

    /// Multiplicative decrease; the next window does not react again, so
    /// the requests sent under the old limit cannot cut it twice.
    fn back_off(&mut self, now: Instant) {
        let cut = ((self.limit as f64) * BACKOFF).floor() as usize;
        self.limit = cut.max(1);
        self.decreases += 1;
        self.phase = Phase::Steady;
        self.previous = Some((self.limit, 0.0));
        self.holds = 0;
        self.window = Window::new(now, true);
    }

    fn end_window(&mut self, now: Instant) {
        let secs = now
            .saturating_duration_since(self.window.started)
            .as_secs_f64()
            .max(1e-6);
        let throughput = self.window.work as f64 / secs;
        match self.previous {
            Some((limit, before)) if self.limit > limit && throughput < before * GAIN => {
                // The larger limit did not pay: back to the last one, hold.
                self.limit = limit;
                self.phase = Phase::Steady;
                self.previous = Some((limit, before.max(throughput)));
                self.holds = 0;
            }
            Some((limit, _)) if self.limit <= limit => {
                self.previous = Some((self.limit, throughput));
                self.holds += 1;
                if self.phase == Phase::SlowStart || self.holds >= PROBE_AFTER {
                    self.grow();
                }
            }
            _ => {
                self.previous = Some((self.limit, throughput));
                self.grow();
            }
        }
        self.window = Window::new(now, false);
    }

    fn grow(&mut self) {
        self.holds = 0;
        let next = match self.phase {
            Phase::SlowStart => self.limit * 2,
            Phase::Steady => self.limit + (self.limit / 4).max(1),
        };
        self.limit = next.min(self.max);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// Feeds one window of `limit` completions of `bytes` each, spread over
    /// `latency` at the current limit.
    fn window(c: &mut Controller, now: &mut Instant, latency: Duration, bytes: u64) {
        let n = c.limit();
        for _ in 0..n {
            *now += latency / n as u32;
            c.complete(*now, bytes, Outcome::Done);
        }
    }

    /// A link where `limit` requests in flight each take `rtt` until the
    /// link (of `capacity` requests per round trip) is full, then longer.
    fn latency_of(limit: usize, rtt: Duration, capacity: usize) -> Duration {
        if limit <= capacity {
            rtt
        } else {
            rtt.mul_f64(limit as f64 / capacity as f64)
        }
    }

    #[test]
    fn grows_while_throughput_grows_and_settles_where_it_stops() {
        let start = Instant::now();
        let mut now = start;
        let mut c = Controller::new(8, 256, now);
        let rtt = Duration::from_millis(40);
        for _ in 0..40 {
            let latency = latency_of(c.limit(), rtt, 40);
            window(&mut c, &mut now, latency, 10_000);
        }
        // Doubling 8 -> 16 -> 32 -> 64 pays up to 40; beyond, the same
        // throughput: it settles between the knee and a probe above it.
        assert!((32..=80).contains(&c.limit()), "limit {}", c.limit());
        assert!(c.peak >= 64, "it did probe beyond the knee: {}", c.peak);
        assert_eq!(c.decreases, 0);
    }

    #[test]
    fn never_exceeds_its_maximum() {
        let mut now = Instant::now();
        let mut c = Controller::new(4, 20, now);
        for _ in 0..30 {
            // Every step pays: latency constant, so throughput ~ limit.
            window(&mut c, &mut now, Duration::from_millis(10), 0);
            assert!(c.limit() <= 20);
        }
        assert_eq!(c.limit(), 20);
        assert_eq!(Controller::new(500, 20, now).limit(), 20);
        assert_eq!(Controller::new(0, 20, now).limit(), 1);
    }

    #[test]
    fn overload_cuts_once_per_window() {
        let mut now = Instant::now();
        let mut c = Controller::new(32, 64, now);
        now += Duration::from_millis(1);
        // Fewer than a tenth of 32 (3 signs) are tolerated; the 4th cuts.
        for _ in 0..3 {
            assert_eq!(c.complete(now, 0, Outcome::Congested), None);
        }
        assert_eq!(c.complete(now, 0, Outcome::Congested), Some(22));
        // More 429s from requests sent under the old limit: no second cut.
        for _ in 0..5 {
            assert_eq!(c.complete(now, 0, Outcome::Congested), None);
        }
        // Once a window of 22 completed, 3 new signs cut again.
        for _ in 0..17 {
            c.complete(now, 0, Outcome::Done);
        }
        assert_eq!(c.complete(now, 0, Outcome::Congested), None);
        assert_eq!(c.complete(now, 0, Outcome::Congested), None);
        assert_eq!(c.complete(now, 0, Outcome::Congested), Some(15));
        assert_eq!(c.decreases, 2);
        // Repeated overload drives it to 1, never 0.
        for _ in 0..40 {
            let n = c.limit();
            for _ in 0..n {
                c.complete(now, 0, Outcome::Done);
            }
            for _ in 0..n.div_ceil(TOLERATED) {
                c.complete(now, 0, Outcome::Congested);
            }
        }
        assert_eq!(c.limit(), 1);
    }

    #[test]
    fn a_few_signs_in_a_large_window_are_tolerated() {
        let mut now = Instant::now();
        let mut c = Controller::new(128, 128, now);
        // 5% of every window overloaded (a service failing a few requests
        // whatever the load): the limit stays.
        for _ in 0..10 {
            for i in 0..128 {
                now += Duration::from_millis(1);
                let outcome = if i % 20 == 0 {
                    Outcome::Congested
                } else {
                    Outcome::Done
                };
                c.complete(now, 4096, outcome);
            }
        }
        assert_eq!((c.limit(), c.decreases), (128, 0));
    }

    #[test]
    fn after_a_cut_it_probes_upwards_again() {
        let mut now = Instant::now();
        let mut c = Controller::new(16, 64, now);
        c.complete(now, 0, Outcome::Congested);
        c.complete(now, 0, Outcome::Congested);
        let cut = c.limit();
        assert_eq!(cut, 11);
        for _ in 0..(PROBE_AFTER + 1) {
            window(&mut c, &mut now, Duration::from_millis(40), 0);
        }
        assert!(c.limit() > cut, "probed above {cut}: {}", c.limit());
    }
}
