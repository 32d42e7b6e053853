//! Limits on how slowly an answer's body may arrive: no chunk for the idle
//! timeout, or less than a minimum speed over a window ([`MinSpeed`], like
//! curl's `--speed-limit`/`--speed-time`). A body that drips a byte a
//! second keeps making progress, so only the second catches it.

use std::time::Duration;

use bytes::Bytes;
use futures::stream::{BoxStream, Stream, StreamExt};
use tokio::time::Instant;

use crate::error::{ErrorKind, TransportError};

/// The least an answer's body must deliver: `bytes_per_sec` on average over
/// every `window` while it streams, or it fails with
/// [`ErrorKind::Timeout`]. A body that ends within the window is never
/// judged.
///
/// ```
/// use std::time::Duration;
/// let floor = rf_transport::MinSpeed::DEFAULT;
/// assert_eq!(floor.bytes_per_sec, 1024);
/// assert_eq!(floor.window, Duration::from_secs(10));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MinSpeed {
    /// Average bytes a second, at least.
    pub bytes_per_sec: u64,
    /// Over each window of this length.
    pub window: Duration,
}

impl MinSpeed {
    /// 1 KiB/s over 10 s: far below any working link, far above a body
    /// that drips.
    pub const DEFAULT: MinSpeed = MinSpeed {
        bytes_per_sec: 1024,
        window: Duration::from_secs(10),
    };

    /// The bytes a window must deliver.
    fn floor(&self) -> u64 {
        (self.bytes_per_sec as f64 * self.window.as_secs_f64()) as u64
    }
}

/// A body stream with its pace checked. Only the time spent waiting for
/// the next chunk counts: a consumer that is slow to ask (a busy disk) is
/// not the server's fault.
struct Paced {
    inner: BoxStream<'static, Result<Bytes, TransportError>>,
    idle: Option<Duration>,
    speed: Option<MinSpeed>,
    /// Waited since the last chunk.
    idle_waited: Duration,
    /// Waited in the current speed window, and what it delivered.
    window_waited: Duration,
    window_bytes: u64,
}

impl Paced {
    /// The next chunk, or the pace's error.
    async fn next(&mut self) -> Option<Result<Bytes, TransportError>> {
        loop {
            let budget = self.budget();
            let started = Instant::now();
            let item = match budget {
                None => self.inner.next().await,
                Some(b) => match tokio::time::timeout(b, self.inner.next()).await {
                    Ok(item) => item,
                    Err(_) => {
                        self.waited(started.elapsed());
                        match self.expired() {
                            Ok(()) => continue,
                            Err(e) => return Some(Err(e)),
                        }
                    }
                },
            };
            self.waited(started.elapsed());
            if let Some(Ok(chunk)) = &item {
                self.idle_waited = Duration::ZERO;
                self.window_bytes += chunk.len() as u64;
                if let Err(e) = self.close_window_if_over() {
                    return Some(Err(e));
                }
            }
            return item;
        }
    }

    fn waited(&mut self, d: Duration) {
        self.idle_waited += d;
        self.window_waited += d;
    }

    /// How long the next wait may take: until the idle timeout or the end
    /// of the speed window, whichever comes first.
    fn budget(&self) -> Option<Duration> {
        let idle = self.idle.map(|d| d.saturating_sub(self.idle_waited));
        let window = self
            .speed
            .map(|s| s.window.saturating_sub(self.window_waited));
        match (idle, window) {
            (Some(i), Some(w)) => Some(i.min(w)),
            (i, w) => i.or(w),
        }
    }

    /// A wait ran out: the idle timeout, or the speed window to judge.
    fn expired(&mut self) -> Result<(), TransportError> {
        match self.idle {
            Some(idle) if self.idle_waited >= idle => Err(no_progress(idle)),
            _ => self.close_window_if_over(),
        }
    }

    /// Judges the window once it is over: too slow is an error, else a new
    /// window starts.
    fn close_window_if_over(&mut self) -> Result<(), TransportError> {
        let Some(speed) = self.speed else {
            return Ok(());
        };
        if self.window_waited < speed.window {
            return Ok(());
        }
        if self.window_bytes < speed.floor() {
            return Err(TransportError::new(
                ErrorKind::Timeout,
                format!(
                    "reading the answer got {} bytes in {:.0}s, under the floor of {} bytes/s",
                    self.window_bytes,
                    self.window_waited.as_secs_f64(),
                    speed.bytes_per_sec
                ),
            ));
        }
        self.window_waited = Duration::ZERO;
        self.window_bytes = 0;
        Ok(())
    }
}

fn no_progress(idle: Duration) -> TransportError {
    TransportError::new(
        ErrorKind::Timeout,
        format!(
            "reading the answer made no progress for {}s",
            idle.as_secs_f64()
        ),
    )
}

/// `inner`, failing with [`ErrorKind::Timeout`] once no chunk arrived for
/// `idle` or a window of `speed` delivered too little; the stream ends
/// after its first error.
pub(crate) fn paced(
    inner: impl Stream<Item = Result<Bytes, TransportError>> + Send + 'static,
    idle: Option<Duration>,
    speed: Option<MinSpeed>,
) -> impl Stream<Item = Result<Bytes, TransportError>> + Send + 'static {
    let state = Paced {
        inner: inner.boxed(),
        idle,
        speed,
        idle_waited: Duration::ZERO,
        window_waited: Duration::ZERO,
        window_bytes: 0,
    };
    futures::stream::unfold(Some(state), |state| async move {
        let mut state = state?;
        let item = state.next().await?;
        let go_on = item.is_ok().then_some(state);
        Some((item, go_on))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::TryStreamExt;

    /// `chunks` chunks of `size` bytes, one every `every` (tokio time).
    fn steady(
        chunks: usize,
        size: usize,
        every: Duration,
    ) -> impl Stream<Item = Result<Bytes, TransportError>> + Send + 'static {
        futures::stream::iter(0..chunks).then(move |_| async move {
            tokio::time::sleep(every).await;
            Ok(Bytes::from(vec![b'x'; size]))
        })
    }

    const FLOOR: MinSpeed = MinSpeed {
        bytes_per_sec: 1024,
        window: Duration::from_secs(10),
    };

    #[tokio::test(start_paused = true)]
    async fn a_body_that_drips_fails_at_the_end_of_its_first_window() {
        let started = Instant::now();
        let err = paced(
            steady(1000, 1, Duration::from_secs(1)),
            Some(Duration::from_secs(120)),
            Some(FLOOR),
        )
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout);
        assert!(
            err.to_string().contains("under the floor of 1024 bytes/s"),
            "{err}"
        );
        assert_eq!(started.elapsed().as_secs(), 10);
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_stops_fails_at_the_window_before_the_idle_timeout() {
        let started = Instant::now();
        let err = paced(
            futures::stream::pending(),
            Some(Duration::from_secs(120)),
            Some(FLOOR),
        )
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
        assert!(err.to_string().contains("got 0 bytes in 10s"), "{err}");
        assert_eq!(started.elapsed().as_secs(), 10);
        // Without a floor, the idle timeout.
        let err = paced(
            futures::stream::pending(),
            Some(Duration::from_secs(120)),
            None,
        )
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
        assert!(err.to_string().contains("no progress for 120s"), "{err}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_consumer_slow_to_ask_is_not_counted() {
        // 1 KiB a second from the server, but the consumer takes 30 s per
        // chunk: only the server's second counts.
        let mut body = Box::pin(paced(
            steady(5, 1024, Duration::from_secs(1)),
            Some(Duration::from_secs(5)),
            Some(FLOOR),
        ));
        let mut chunks = 0;
        while let Some(chunk) = body.next().await {
            chunk.unwrap();
            chunks += 1;
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
        assert_eq!(chunks, 5);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_but_steady_body_and_a_short_one_pass() {
        // 2 KiB/s for 60 s.
        let body = paced(steady(60, 2048, Duration::from_secs(1)), None, Some(FLOOR))
            .try_collect::<Vec<_>>()
            .await
            .unwrap();
        assert_eq!(body.len(), 60);
        // A few bytes, ended within the window: never judged.
        let body = paced(steady(3, 1, Duration::from_secs(2)), None, Some(FLOOR))
            .try_collect::<Vec<_>>()
            .await
            .unwrap();
        assert_eq!(body.len(), 3);
    }
}
