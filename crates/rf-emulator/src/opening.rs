//! A deadline on a connection's opening bytes. The server tells HTTP/1.1
//! from HTTP/2 by the first bytes a client sends (HTTP/2's 24-byte
//! preface), and nothing bounds that wait: a client that connects and
//! sends nothing, or half a preface, would hold its connection forever.
//! [`Opening`] fails reads once `timeout` has passed before the first 24
//! bytes arrived; past them, HTTP/1.1's header-read timeout (and HTTP/2's
//! own framing) take over.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// The length of HTTP/2's connection preface (`PRI * HTTP/2.0...`), the
/// most the server reads to tell the protocols apart.
const PREFACE_LEN: usize = 24;

/// `io` whose reads fail with [`io::ErrorKind::TimedOut`] once its deadline
/// passes before [`PREFACE_LEN`] bytes have been read.
#[derive(Debug)]
pub(crate) struct Opening<Io> {
    io: Io,
    read: usize,
    deadline: Option<Pin<Box<Sleep>>>,
}

impl<Io> Opening<Io> {
    /// `io`, which must send its opening bytes within `timeout`.
    pub(crate) fn new(io: Io, timeout: Duration) -> Self {
        Opening {
            io,
            read: 0,
            deadline: Some(Box::pin(tokio::time::sleep(timeout))),
        }
    }
}

impl<Io: AsyncRead + Unpin> AsyncRead for Opening<Io> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                this.read += buf.filled().len() - before;
                if this.read >= PREFACE_LEN {
                    this.deadline = None;
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                let expired = this
                    .deadline
                    .as_mut()
                    .is_some_and(|deadline| deadline.as_mut().poll(cx).is_ready());
                if expired {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the connection's opening bytes did not arrive in time",
                    )));
                }
                Poll::Pending
            }
        }
    }
}

impl<Io: AsyncWrite + Unpin> AsyncWrite for Opening<Io> {
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

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn silence_and_half_a_preface_time_out_a_whole_opening_does_not() {
        let (client, server) = tokio::io::duplex(64);
        let mut opening = Opening::new(server, Duration::from_millis(300));
        let mut buf = [0u8; 64];
        let err = opening.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        drop(client);

        let (mut client, server) = tokio::io::duplex(64);
        let mut opening = Opening::new(server, Duration::from_millis(300));
        client.write_all(b"PRI * HTTP/2").await.unwrap();
        assert_eq!(opening.read(&mut buf).await.unwrap(), 12);
        let err = opening.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);

        let (mut client, server) = tokio::io::duplex(64);
        let mut opening = Opening::new(server, Duration::from_millis(300));
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        assert_eq!(opening.read(&mut buf).await.unwrap(), 27);
        tokio::time::sleep(Duration::from_secs(5)).await;
        client.write_all(b"GET").await.unwrap();
        assert_eq!(
            opening.read(&mut buf).await.unwrap(),
            3,
            "past the opening bytes, no deadline"
        );
    }
}
