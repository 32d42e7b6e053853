//! A token bucket shared by every transfer of one direction: each chunk
//! reserves its bytes and learns how long to wait before it may go, so
//! concurrent streams split the rate between them like flows on one link.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Bytes a link may send at once after an idle spell: enough for a few
/// TCP segments, small against a second of any useful rate.
const MIN_BURST: f64 = 64.0 * 1024.0;

/// Tokens (bytes) refilled at `rate` bytes per second, up to `burst`.
///
/// A reservation may drive the level below zero (a debt); the reserver then
/// waits until the debt is repaid, and later reservations queue behind it.
/// Reservations never fail, so a chunk larger than the burst still passes.
#[derive(Debug)]
pub(crate) struct TokenBucket {
    rate: f64,
    burst: f64,
    state: Mutex<Level>,
}

#[derive(Debug)]
struct Level {
    tokens: f64,
    at: Instant,
}

impl TokenBucket {
    /// A full bucket refilled at `bytes_per_sec`; its burst is 10 ms of the
    /// rate, and at least 64 KiB.
    pub(crate) fn new(bytes_per_sec: f64) -> Self {
        let burst = (bytes_per_sec / 100.0).max(MIN_BURST);
        Self {
            rate: bytes_per_sec,
            burst,
            state: Mutex::new(Level {
                tokens: burst,
                at: Instant::now(),
            }),
        }
    }

    /// Takes `bytes` and returns how long the caller must wait before
    /// sending them (zero while the bucket holds enough).
    pub(crate) fn reserve(&self, bytes: u64) -> Duration {
        let now = Instant::now();
        let mut level = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let elapsed = now.saturating_duration_since(level.at).as_secs_f64();
        level.tokens = (level.tokens + elapsed * self.rate).min(self.burst);
        level.at = now;
        level.tokens -= bytes as f64;
        if level.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-level.tokens / self.rate)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_full_bucket_passes_its_burst_then_paces_at_the_rate() {
        // 1 MB/s: the burst is 64 KiB (10 ms of the rate is less).
        let bucket = TokenBucket::new(1_000_000.0);
        assert_eq!(bucket.reserve(64 * 1024), Duration::ZERO);
        // The next 100 kB are owed in full: 0.1 s.
        let wait = bucket.reserve(100_000);
        assert!((wait.as_secs_f64() - 0.1).abs() < 1e-6, "{wait:?}");
        // A second reserver queues behind the first one's debt.
        let wait2 = bucket.reserve(100_000);
        assert!((wait2.as_secs_f64() - 0.2).abs() < 1e-6, "{wait2:?}");
        // Time repays the debt: after 0.2 s the level is back to zero.
        tokio::time::advance(Duration::from_millis(200)).await;
        let wait3 = bucket.reserve(1_000);
        assert!((wait3.as_secs_f64() - 0.001).abs() < 1e-6, "{wait3:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_bucket_refills_only_up_to_its_burst() {
        let bucket = TokenBucket::new(1_000_000.0);
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(bucket.reserve(64 * 1024), Duration::ZERO);
        assert!(
            bucket.reserve(1_000) > Duration::ZERO,
            "no minute of credit"
        );
    }
}
