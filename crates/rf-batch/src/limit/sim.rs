//! The adaptive limit driving simulated transfers on tokio's paused clock:
//! how fast it reaches its level, where it settles, how it backs off. The
//! link is a model (round trip, a pipe that holds `capacity` requests, an
//! overload threshold), so these are behaviours, not timings.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt;
use tokio::time::Instant;

use super::{Concurrency, Limiter};

/// A simulated link and service.
struct Link {
    /// A request's round trip while the pipe is not full.
    rtt: Duration,
    /// Requests the pipe carries at full speed; beyond, each takes longer
    /// in proportion (the throughput stays at `capacity` per round trip).
    capacity: usize,
    /// More than this many in flight: the request is answered `429`.
    overload_at: usize,
    in_flight: AtomicUsize,
    /// The most requests seen in flight at once.
    peak: AtomicUsize,
    /// Requests answered `429`.
    throttled: AtomicUsize,
}

impl Link {
    fn new(rtt_ms: u64, capacity: usize, overload_at: usize) -> Arc<Link> {
        Arc::new(Link {
            rtt: Duration::from_millis(rtt_ms),
            capacity,
            overload_at,
            in_flight: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            throttled: AtomicUsize::new(0),
        })
    }

    /// One request under `limiter`: admitted, carried, finished.
    async fn request(self: Arc<Self>, limiter: Arc<Limiter>) {
        let permit = limiter.acquire().await;
        let n = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(n, Ordering::SeqCst);
        let latency = self.rtt.mul_f64((n as f64 / self.capacity as f64).max(1.0));
        tokio::time::sleep(latency).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        let congested = n > self.overload_at;
        if congested {
            self.throttled.fetch_add(1, Ordering::SeqCst);
        }
        permit.finish(if congested { 0 } else { 4096 }, congested);
    }
}

/// Runs `items` requests over `link`; returns when the limit first
/// reached `watch`, if it did.
async fn run(
    limiter: &Arc<Limiter>,
    link: &Arc<Link>,
    items: usize,
    watch: usize,
) -> Option<Duration> {
    let start = Instant::now();
    let reached = Arc::new(std::sync::Mutex::new(None));
    let stream = futures::stream::iter(0..items).map(|_| {
        let (limiter, link, reached) = (limiter.clone(), link.clone(), reached.clone());
        async move {
            link.request(limiter.clone()).await;
            let mut r = reached.lock().unwrap();
            if r.is_none() && limiter.limit() >= watch {
                *r = Some(Instant::now() - start);
            }
        }
    });
    stream
        .buffer_unordered(limiter.concurrency.max())
        .collect::<()>()
        .await;
    *reached.lock().unwrap()
}

#[tokio::test(start_paused = true)]
async fn reaches_its_maximum_within_three_round_trips_while_throughput_rises() {
    let limiter = Limiter::new(Concurrency::default(), None);
    let link = Link::new(40, 10_000, usize::MAX);
    let reached = run(&limiter, &link, 2_000, 128).await;
    let reached = reached.expect("it reached 128");
    assert!(
        reached <= 3 * link.rtt,
        "from 32 to 128 by doubling per window: {reached:?}"
    );
    let r = limiter.report();
    assert_eq!((r.settled, r.peak, r.decreases), (128, 128, 0));
    assert_eq!(link.peak.load(Ordering::SeqCst), 128, "and never above");
}

#[tokio::test(start_paused = true)]
async fn never_exceeds_its_maximum() {
    let concurrency = Concurrency::Adaptive {
        initial: 32,
        max: 50,
    };
    let limiter = Limiter::new(concurrency, None);
    let link = Link::new(40, 10_000, usize::MAX);
    assert!(run(&limiter, &link, 1_000, 50).await.is_some());
    assert_eq!(link.peak.load(Ordering::SeqCst), 50);
    assert_eq!(limiter.report().peak, 50);
}

#[tokio::test(start_paused = true)]
async fn settles_where_throughput_stops_rising() {
    let limiter = Limiter::new(Concurrency::default(), None);
    // The pipe is full at 48: 32 -> 64 pays (+50%), 64 -> 128 does not.
    let link = Link::new(40, 48, usize::MAX);
    run(&limiter, &link, 3_000, 128).await;
    let r = limiter.report();
    assert_eq!(r.peak, 128, "it tried 128");
    assert!(
        (48..=80).contains(&r.settled),
        "back to the last paying level (64), or a probe above it: {r:?}"
    );
    assert_eq!(r.decreases, 0);
}

#[tokio::test(start_paused = true)]
async fn backs_off_on_429_and_stays_below_the_threshold() {
    let limiter = Limiter::new(Concurrency::default(), None);
    // The service answers 429 to what arrives beyond 40 in flight.
    let link = Link::new(40, 10_000, 40);
    let items = 5_000;
    run(&limiter, &link, items, usize::MAX).await;
    let r = limiter.report();
    assert!(r.decreases >= 1, "{r:?}");
    assert!(r.peak < 128, "429s end slow start: {r:?}");
    assert!(r.settled <= 50, "cut back near the threshold: {r:?}");
    let throttled = link.throttled.load(Ordering::SeqCst);
    assert!(
        throttled * 10 < items,
        "most requests were not throttled: {throttled} of {items}"
    );
}
