//! A body whose data frames pass one direction's token bucket one by one: the bytes
//! stream through as the bucket allows, never gathered in memory. The
//! inner body's size hint is kept, so a `Content-Length` stays announced.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use http_body::{Frame, SizeHint};

use super::Link;

/// A body paced by one direction's link.
pub(crate) struct ShapedBody {
    inner: Body,
    link: Arc<Link>,
    /// A frame that reserved its bytes and waits for its turn.
    held: Option<(Frame<Bytes>, Pin<Box<tokio::time::Sleep>>)>,
}

impl std::fmt::Debug for ShapedBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShapedBody")
            .field("held", &self.held.is_some())
            .finish_non_exhaustive()
    }
}

impl ShapedBody {
    pub(crate) fn new(inner: Body, link: Arc<Link>) -> Self {
        Self {
            inner,
            link,
            held: None,
        }
    }

    /// Reserves the frame's bytes: `Some(wait)` when it must wait first.
    fn admit(&self, frame: &Frame<Bytes>) -> Option<Duration> {
        let len = frame.data_ref().map_or(0, Bytes::len) as u64;
        if len == 0 {
            return None;
        }
        let wait = self.link.reserve(len);
        (!wait.is_zero()).then_some(wait)
    }
}

impl HttpBody for ShapedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        if let Some((_, sleep)) = self.held.as_mut() {
            ready!(sleep.as_mut().poll(cx));
            return Poll::Ready(self.held.take().map(|(frame, _)| Ok(frame)));
        }
        let frame = match ready!(Pin::new(&mut self.inner).poll_frame(cx)) {
            Some(Ok(frame)) => frame,
            other => return Poll::Ready(other),
        };
        match self.admit(&frame) {
            None => Poll::Ready(Some(Ok(frame))),
            Some(wait) => {
                let mut sleep = Box::pin(tokio::time::sleep(wait));
                if sleep.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Some(Ok(frame)));
                }
                self.held = Some((frame, sleep));
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.held.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let held = self
            .held
            .as_ref()
            .and_then(|(f, _)| f.data_ref())
            .map_or(0, |d| d.len() as u64);
        let inner = self.inner.size_hint();
        let mut hint = SizeHint::new();
        hint.set_lower(inner.lower() + held);
        if let Some(upper) = inner.upper() {
            hint.set_upper(upper + held);
        }
        hint
    }
}
