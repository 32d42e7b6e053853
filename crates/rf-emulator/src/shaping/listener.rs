//! `--max-connections`: the accept loop takes a connection only while
//! fewer than the maximum are open. Connections beyond it wait in the
//! kernel's backlog, as they would at a server with a connection cap.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::Shaper;

/// The door of the accept loop: counts connections and caps how many are
/// open (`--max-connections`).
#[derive(Debug)]
pub(crate) struct Gate {
    slots: Option<Arc<Semaphore>>,
    shaper: Arc<Shaper>,
}

/// The right to accept one connection (a slot under the cap, if any).
#[derive(Debug)]
pub(crate) struct Pass(Option<OwnedSemaphorePermit>);

impl Gate {
    /// The gate of `shaper`'s `max_connections` (none: connections are
    /// only counted).
    pub(crate) fn new(shaper: Arc<Shaper>) -> Self {
        let slots = shaper
            .config()
            .max_connections
            .map(|n| Arc::new(Semaphore::new(n.max(1))));
        Self { slots, shaper }
    }

    /// Waits until one more connection may be open; call it before
    /// accepting, so connections beyond the cap stay in the backlog.
    pub(crate) async fn pass(&self) -> Pass {
        let Some(slots) = &self.slots else {
            return Pass(None);
        };
        if let Ok(p) = slots.clone().try_acquire_owned() {
            return Pass(Some(p));
        }
        Shaper::bump(&self.shaper.connections_waited);
        // The semaphore is never closed: an error cannot happen.
        Pass(slots.clone().acquire_owned().await.ok())
    }

    /// Counts the connection `io` accepted with `pass`, which it holds until
    /// it closes.
    pub(crate) fn admit<Io>(&self, io: Io, pass: Pass) -> Counted<Io> {
        Shaper::bump(&self.shaper.connections_accepted);
        self.shaper.connections_open.fetch_add(1, Ordering::Relaxed);
        Counted {
            io,
            _permit: pass.0,
            shaper: self.shaper.clone(),
        }
    }
}

/// An accepted connection holding its slot until it closes.
#[derive(Debug)]
pub(crate) struct Counted<Io> {
    io: Io,
    _permit: Option<OwnedSemaphorePermit>,
    shaper: Arc<Shaper>,
}

impl<Io> Drop for Counted<Io> {
    fn drop(&mut self) {
        self.shaper.connections_open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl<Io: AsyncRead + Unpin> AsyncRead for Counted<Io> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<Io: AsyncWrite + Unpin> AsyncWrite for Counted<Io> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}
