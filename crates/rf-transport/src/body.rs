//! Request bodies: empty, bytes, JSON, multipart (one file part) and streamed
//! (a file on disk, a producer such as a tar shard written while it is sent).
//!
//! A [`Body`] is a *recipe*, not a consumed stream: cloning it is cheap and
//! [`Body::stream`] makes a fresh stream each time, so a retry re-sends the
//! same bytes (a file is re-opened, a producer re-run). The only exception is
//! [`Body::from_stream_once`], which wraps a stream that exists once; a request
//! carrying it is never retried.
//!
//! Nothing here buffers a whole streamed body: a file is read in
//! [`FILE_CHUNK`] chunks (on a blocking thread, at most two ahead of the
//! network), a producer writes into a channel of [`PRODUCER_QUEUE`] chunks.

use std::fmt;
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use futures::stream::{self, BoxStream, StreamExt};

/// Size of the chunks a file body is read in.
pub const FILE_CHUNK: usize = 256 * 1024;

/// How many chunks a producer may write ahead of the network.
pub const PRODUCER_QUEUE: usize = 4;

/// A function making a fresh stream of the body's bytes.
pub type StreamFactory = Arc<dyn Fn() -> BoxStream<'static, io::Result<Bytes>> + Send + Sync>;

/// The body of a [`crate::Request`]. Cheap to clone; see the module docs.
///
/// ```
/// use rf_transport::Body;
///
/// # async fn demo() -> std::io::Result<()> {
/// let small = Body::from_bytes("hello");
/// assert_eq!(small.content_length(), Some(5));
///
/// // A generated body, re-created for every attempt.
/// let big = Body::from_stream_factory(Some(3), || {
///     futures::stream::iter([Ok(bytes::Bytes::from_static(b"abc"))]).boxed()
/// });
/// assert_eq!(big.to_bytes().await?, "abc");
/// assert_eq!(big.to_bytes().await?, "abc");
/// # Ok(()) }
/// # use futures::StreamExt;
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(demo()).unwrap();
/// ```
#[derive(Clone, Default)]
pub enum Body {
    /// No body.
    #[default]
    Empty,
    /// Bytes in memory.
    Bytes(Bytes),
    /// Serialized JSON (sent with `Content-Type: application/json`).
    Json(Bytes),
    /// `multipart/form-data` with one file part.
    Multipart(MultipartFile),
    /// A streamed body.
    Stream(StreamBody),
}

impl Body {
    /// Bytes in memory.
    pub fn from_bytes(bytes: impl Into<Bytes>) -> Body {
        Body::Bytes(bytes.into())
    }

    /// Streams the file at `path` (opened again for every attempt), with its
    /// current size as the length. Fails if it cannot be inspected or is not
    /// a regular file. If the file's size changes while it is sent, the send
    /// fails with [`crate::ErrorKind::Body`] instead of sending a corrupt body.
    pub async fn file(path: impl AsRef<Path>) -> io::Result<Body> {
        let path = path.as_ref().to_path_buf();
        let meta = tokio::fs::metadata(&path).await?;
        if !meta.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a regular file", path.display()),
            ));
        }
        let len = meta.len();
        let shared: Arc<PathBuf> = Arc::new(path);
        Ok(Body::Stream(StreamBody {
            len: Some(len),
            source: StreamSource::Factory(Arc::new(move || file_stream(shared.clone()))),
            description: "file",
        }))
    }

    /// A streamed body made by `factory`, called once per attempt. `len` is
    /// the exact number of bytes the stream yields, if known (sent as
    /// `Content-Length`; otherwise the body is sent chunked). A stream that
    /// yields a different number of bytes fails the request.
    pub fn from_stream_factory<F>(len: Option<u64>, factory: F) -> Body
    where
        F: Fn() -> BoxStream<'static, io::Result<Bytes>> + Send + Sync + 'static,
    {
        Body::Stream(StreamBody {
            len,
            source: StreamSource::Factory(Arc::new(factory)),
            description: "stream",
        })
    }

    /// A body written by a producer while it is sent: for every attempt,
    /// `produce` is spawned (on the current tokio runtime) with the sending
    /// half of a channel holding at most [`PRODUCER_QUEUE`] chunks, so it
    /// cannot run ahead of the network. An error it returns fails the
    /// request; if the request is dropped, its sends fail and it should stop.
    ///
    /// ```
    /// use rf_transport::Body;
    ///
    /// # async fn demo() -> std::io::Result<()> {
    /// let body = Body::from_producer(Some(6), |tx| async move {
    ///     for part in ["abc", "def"] {
    ///         if tx.send(bytes::Bytes::from(part)).await.is_err() {
    ///             break; // the request is gone
    ///         }
    ///     }
    ///     Ok(())
    /// });
    /// assert_eq!(body.to_bytes().await?, "abcdef");
    /// # Ok(()) }
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(demo()).unwrap();
    /// ```
    pub fn from_producer<F, Fut>(len: Option<u64>, produce: F) -> Body
    where
        F: Fn(tokio::sync::mpsc::Sender<Bytes>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = io::Result<()>> + Send + 'static,
    {
        let produce = Arc::new(produce);
        Body::Stream(StreamBody {
            len,
            source: StreamSource::Factory(Arc::new(move || {
                let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(PRODUCER_QUEUE);
                let task = tokio::spawn(produce(tx));
                producer_stream(rx, task)
            })),
            description: "producer",
        })
    }

    /// A stream that exists only once (for example standard input). A
    /// request with this body cannot be re-created, so it is never retried
    /// ([`crate::Request::try_clone`] returns `None`).
    pub fn from_stream_once(
        len: Option<u64>,
        stream: BoxStream<'static, io::Result<Bytes>>,
    ) -> Body {
        Body::Stream(StreamBody {
            len,
            source: StreamSource::Once(Arc::new(Mutex::new(Some(stream)))),
            description: "one-shot stream",
        })
    }

    /// `multipart/form-data` with one file part named `field_name`, with
    /// `filename="file_name"` and, if given, its own `Content-Type`; the
    /// part's bytes come from `source` (streamed if it is streamed).
    pub fn multipart(
        field_name: impl Into<String>,
        file_name: impl Into<String>,
        content_type: Option<&str>,
        source: Body,
    ) -> Body {
        Body::Multipart(MultipartFile::new(
            field_name,
            file_name,
            content_type.map(str::to_string),
            source,
        ))
    }

    /// The exact number of bytes that will be sent, if known.
    pub fn content_length(&self) -> Option<u64> {
        match self {
            Body::Empty => Some(0),
            Body::Bytes(b) | Body::Json(b) => Some(b.len() as u64),
            Body::Multipart(m) => m.content_length(),
            Body::Stream(s) => s.len,
        }
    }

    /// The `Content-Type` this body implies (JSON and multipart), if any.
    pub fn content_type(&self) -> Option<String> {
        match self {
            Body::Json(_) => Some("application/json".to_string()),
            Body::Multipart(m) => Some(m.content_type_header()),
            _ => None,
        }
    }

    /// Whether [`Body::stream`] can be called again for a retry.
    pub fn is_reusable(&self) -> bool {
        match self {
            Body::Stream(s) => matches!(s.source, StreamSource::Factory(_)),
            Body::Multipart(m) => m.source.is_reusable(),
            _ => true,
        }
    }

    /// Whether this body is [`Body::Empty`].
    pub fn is_empty_body(&self) -> bool {
        matches!(self, Body::Empty)
    }

    /// In-memory bytes, if this body is held in memory (empty, bytes, JSON).
    pub fn as_bytes(&self) -> Option<Bytes> {
        match self {
            Body::Empty => Some(Bytes::new()),
            Body::Bytes(b) | Body::Json(b) => Some(b.clone()),
            _ => None,
        }
    }

    /// A fresh stream of the bytes to send. If the length is known, the
    /// stream fails (with [`io::ErrorKind::InvalidData`]) when the source
    /// yields more or fewer bytes.
    pub fn stream(&self) -> BoxStream<'static, io::Result<Bytes>> {
        match self {
            Body::Empty => stream::empty().boxed(),
            Body::Bytes(b) | Body::Json(b) => {
                let b = b.clone();
                if b.is_empty() {
                    stream::empty().boxed()
                } else {
                    stream::once(async move { Ok(b) }).boxed()
                }
            }
            Body::Multipart(m) => m.stream(),
            Body::Stream(s) => {
                let raw = match &s.source {
                    StreamSource::Factory(f) => f(),
                    StreamSource::Once(cell) => {
                        let taken = cell.lock().map(|mut g| g.take()).unwrap_or(None);
                        match taken {
                            Some(stream) => stream,
                            None => stream::once(async {
                                Err(io::Error::other(
                                    "a one-shot body was already sent and cannot be re-sent",
                                ))
                            })
                            .boxed(),
                        }
                    }
                };
                match s.len {
                    Some(len) => check_length(raw, len),
                    None => raw,
                }
            }
        }
    }

    /// Reads the whole body into memory (for mocks and tests; do not use on
    /// large bodies).
    pub async fn to_bytes(&self) -> io::Result<Bytes> {
        if let Some(b) = self.as_bytes() {
            return Ok(b);
        }
        let mut out = BytesMut::new();
        let mut s = self.stream();
        while let Some(chunk) = s.next().await {
            out.extend_from_slice(&chunk?);
        }
        Ok(out.freeze())
    }

    /// A short description for `Debug` and logs.
    fn describe(&self) -> String {
        let len = match self.content_length() {
            Some(n) => format!("{n} bytes"),
            None => "unknown length".to_string(),
        };
        match self {
            Body::Empty => "empty".to_string(),
            Body::Bytes(_) => format!("bytes ({len})"),
            Body::Json(_) => format!("json ({len})"),
            Body::Multipart(m) => format!(
                "multipart (field {:?}, file {:?}, {len})",
                m.field_name, m.file_name
            ),
            Body::Stream(s) => format!("{} ({len})", s.description),
        }
    }
}

impl fmt::Debug for Body {
    /// Describes the body without its contents (which may hold secrets).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Body({})", self.describe())
    }
}

impl From<Bytes> for Body {
    fn from(b: Bytes) -> Body {
        Body::Bytes(b)
    }
}

impl From<Vec<u8>> for Body {
    fn from(b: Vec<u8>) -> Body {
        Body::Bytes(b.into())
    }
}

impl From<&'static str> for Body {
    fn from(s: &'static str) -> Body {
        Body::Bytes(Bytes::from_static(s.as_bytes()))
    }
}

impl From<String> for Body {
    fn from(s: String) -> Body {
        Body::Bytes(s.into())
    }
}

/// A streamed body: a factory making the stream for each attempt (or a
/// stream usable once), and its length if known.
#[derive(Clone)]
pub struct StreamBody {
    len: Option<u64>,
    source: StreamSource,
    description: &'static str,
}

impl StreamBody {
    /// The number of bytes the stream yields, if known.
    pub fn len(&self) -> Option<u64> {
        self.len
    }

    /// Whether the stream is known to be empty.
    pub fn is_empty(&self) -> bool {
        self.len == Some(0)
    }
}

impl fmt::Debug for StreamBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamBody")
            .field("kind", &self.description)
            .field("len", &self.len)
            .finish()
    }
}

#[derive(Clone)]
enum StreamSource {
    Factory(StreamFactory),
    Once(Arc<Mutex<Option<BoxStream<'static, io::Result<Bytes>>>>>),
}

/// One file part of a `multipart/form-data` body.
///
/// Encoded as
///
/// ```text
/// --<boundary>\r\n
/// Content-Disposition: form-data; name="<field_name>"; filename="<file_name>"\r\n
/// [Content-Type: <content_type>\r\n]
/// \r\n
/// <bytes of source>\r\n
/// --<boundary>--\r\n
/// ```
///
/// with `"`, CR and LF in names escaped as `%22`, `%0D`, `%0A` (as browsers do).
#[derive(Clone, Debug)]
pub struct MultipartFile {
    /// The form field name.
    pub field_name: String,
    /// The `filename` parameter of the part.
    pub file_name: String,
    /// The part's own `Content-Type`, if any (none is sent otherwise).
    pub content_type: Option<String>,
    /// Where the part's bytes come from.
    pub source: Box<Body>,
    boundary: String,
}

impl MultipartFile {
    /// A file part with a fresh random boundary.
    pub fn new(
        field_name: impl Into<String>,
        file_name: impl Into<String>,
        content_type: Option<String>,
        source: Body,
    ) -> MultipartFile {
        MultipartFile {
            field_name: field_name.into(),
            file_name: file_name.into(),
            content_type,
            source: Box::new(source),
            boundary: format!("rf-boundary-{:016x}", crate::util::random_u64()),
        }
    }

    /// The boundary string between parts.
    pub fn boundary(&self) -> &str {
        &self.boundary
    }

    /// The request's `Content-Type` header value.
    pub fn content_type_header(&self) -> String {
        format!("multipart/form-data; boundary={}", self.boundary)
    }

    fn head(&self) -> Bytes {
        let mut head = format!(
            "--{}\r\nContent-Disposition: form-data; name=\"{}\"; filename=\"{}\"\r\n",
            self.boundary,
            escape_quoted(&self.field_name),
            escape_quoted(&self.file_name)
        );
        if let Some(ct) = &self.content_type {
            head.push_str("Content-Type: ");
            head.push_str(&ct.replace(['\r', '\n'], " "));
            head.push_str("\r\n");
        }
        head.push_str("\r\n");
        Bytes::from(head)
    }

    fn tail(&self) -> Bytes {
        Bytes::from(format!("\r\n--{}--\r\n", self.boundary))
    }

    fn content_length(&self) -> Option<u64> {
        let inner = self.source.content_length()?;
        Some(self.head().len() as u64 + inner + self.tail().len() as u64)
    }

    fn stream(&self) -> BoxStream<'static, io::Result<Bytes>> {
        let head = self.head();
        let tail = self.tail();
        stream::once(async move { Ok(head) })
            .chain(self.source.stream())
            .chain(stream::once(async move { Ok(tail) }))
            .boxed()
    }
}

fn escape_quoted(s: &str) -> String {
    s.replace('"', "%22")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Chunks of a file read ahead of the network.
const FILE_QUEUE: usize = 2;

/// A file read on one blocking thread in [`FILE_CHUNK`] chunks, handed over
/// through a queue of [`FILE_QUEUE`] chunks (one hand-off to the blocking
/// pool per file, not one per read). The reader stops when the stream is
/// dropped.
fn file_stream(path: Arc<PathBuf>) -> BoxStream<'static, io::Result<Bytes>> {
    stream::once(async move {
        let (tx, rx) = tokio::sync::mpsc::channel(FILE_QUEUE);
        tokio::task::spawn_blocking(move || read_file_into(&path, &tx));
        stream::unfold(rx, |mut rx| async move {
            let item = rx.recv().await?;
            Some((item, rx))
        })
    })
    .flatten()
    .boxed()
}

fn read_file_into(path: &Path, tx: &tokio::sync::mpsc::Sender<io::Result<Bytes>>) {
    use std::io::Read;
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) => {
            let e = io::Error::new(e.kind(), format!("cannot open {}: {e}", path.display()));
            let _ = tx.blocking_send(Err(e));
            return;
        }
    };
    loop {
        let mut buf = BytesMut::zeroed(FILE_CHUNK);
        let mut filled = 0;
        while filled < FILE_CHUNK {
            match file.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let e =
                        io::Error::new(e.kind(), format!("cannot read {}: {e}", path.display()));
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            }
        }
        if filled == 0 {
            return;
        }
        buf.truncate(filled);
        if tx.blocking_send(Ok(buf.freeze())).is_err() || filled < FILE_CHUNK {
            return;
        }
    }
}

fn producer_stream(
    rx: tokio::sync::mpsc::Receiver<Bytes>,
    task: tokio::task::JoinHandle<io::Result<()>>,
) -> BoxStream<'static, io::Result<Bytes>> {
    struct State {
        rx: tokio::sync::mpsc::Receiver<Bytes>,
        task: Option<tokio::task::JoinHandle<io::Result<()>>>,
    }
    impl Drop for State {
        fn drop(&mut self) {
            // The request is gone: stop the producer.
            if let Some(task) = self.task.take() {
                task.abort();
            }
        }
    }
    stream::unfold(
        State {
            rx,
            task: Some(task),
        },
        |mut st| async move {
            if let Some(chunk) = st.rx.recv().await {
                return Some((Ok(chunk), st));
            }
            let task = st.task.take()?;
            match task.await {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some((Err(e), st)),
                Err(join) => Some((
                    Err(io::Error::other(format!(
                        "the body producer failed: {join}"
                    ))),
                    st,
                )),
            }
        },
    )
    .boxed()
}

/// Fails the stream if it yields more or fewer than `expected` bytes.
fn check_length(
    inner: BoxStream<'static, io::Result<Bytes>>,
    expected: u64,
) -> BoxStream<'static, io::Result<Bytes>> {
    stream::unfold(
        (inner, 0u64, false),
        move |(mut inner, seen, done)| async move {
            if done {
                return None;
            }
            match inner.next().await {
                Some(Ok(chunk)) => {
                    let seen = seen + chunk.len() as u64;
                    if seen > expected {
                        Some((
                            Err(length_error(seen, expected, "more")),
                            (inner, seen, true),
                        ))
                    } else {
                        Some((Ok(chunk), (inner, seen, false)))
                    }
                }
                Some(Err(e)) => Some((Err(e), (inner, seen, true))),
                None if seen < expected => Some((
                    Err(length_error(seen, expected, "fewer")),
                    (inner, seen, true),
                )),
                None => None,
            }
        },
    )
    .boxed()
}

fn length_error(seen: u64, expected: u64, what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "the body yielded {what} bytes than its declared length ({seen}{} of {expected}); \
             was the file changed while it was sent?",
            if what == "more" { "+" } else { "" }
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn multipart_encoding_is_exact_and_length_matches() {
        let body = Body::multipart("file", "a\"b.jpg", None, Body::from_bytes("DATA"));
        let Body::Multipart(m) = &body else {
            panic!("not multipart")
        };
        let b = m.boundary().to_string();
        let bytes = rt().block_on(body.to_bytes()).unwrap();
        let expected = format!(
            "--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a%22b.jpg\"\r\n\r\nDATA\r\n--{b}--\r\n"
        );
        assert_eq!(bytes, expected.as_bytes());
        assert_eq!(body.content_length(), Some(expected.len() as u64));
        assert_eq!(
            body.content_type().unwrap(),
            format!("multipart/form-data; boundary={b}")
        );
    }

    #[test]
    fn multipart_with_part_content_type() {
        let body = Body::multipart("f", "x.png", Some("image/png"), Body::from_bytes("P"));
        let s = String::from_utf8(rt().block_on(body.to_bytes()).unwrap().to_vec()).unwrap();
        assert!(s.contains("filename=\"x.png\"\r\nContent-Type: image/png\r\n\r\nP\r\n"));
    }

    #[test]
    fn length_mismatch_fails_the_stream() {
        let short = Body::from_stream_factory(Some(10), || {
            stream::iter([Ok(Bytes::from_static(b"abc"))]).boxed()
        });
        let err = rt().block_on(short.to_bytes()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("fewer bytes"), "{err}");
        let long = Body::from_stream_factory(Some(1), || {
            stream::iter([Ok(Bytes::from_static(b"abc"))]).boxed()
        });
        let err = rt().block_on(long.to_bytes()).unwrap_err();
        assert!(err.to_string().contains("more bytes"), "{err}");
    }

    #[test]
    fn one_shot_stream_is_not_reusable() {
        let body = Body::from_stream_once(None, stream::iter([Ok(Bytes::from("x"))]).boxed());
        assert!(!body.is_reusable());
        let rt = rt();
        assert_eq!(rt.block_on(body.to_bytes()).unwrap(), "x");
        assert!(rt.block_on(body.to_bytes()).is_err());
    }

    #[test]
    fn file_body_streams_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.bin");
        std::fs::write(&path, vec![7u8; FILE_CHUNK * 2 + 5]).unwrap();
        let rt = rt();
        let body = rt.block_on(Body::file(&path)).unwrap();
        assert_eq!(body.content_length(), Some((FILE_CHUNK * 2 + 5) as u64));
        let chunks: Vec<_> = rt.block_on(body.stream().collect::<Vec<_>>());
        assert_eq!(chunks.len(), 3);
        assert!(
            chunks
                .iter()
                .all(|c| c.as_ref().unwrap().len() <= FILE_CHUNK)
        );
        assert_eq!(
            rt.block_on(body.to_bytes()).unwrap().len(),
            FILE_CHUNK * 2 + 5
        );
        assert!(rt.block_on(Body::file(dir.path())).is_err());
        std::fs::remove_file(&path).unwrap();
        let err = rt.block_on(body.to_bytes()).unwrap_err();
        assert!(err.to_string().contains("cannot open"), "{err}");
    }

    #[test]
    fn producer_errors_reach_the_stream() {
        let rt = rt();
        let body = Body::from_producer(None, |tx| async move {
            let _ = tx.send(Bytes::from("a")).await;
            Err(io::Error::other("disk on fire"))
        });
        let err = rt.block_on(body.to_bytes()).unwrap_err();
        assert!(err.to_string().contains("disk on fire"));
    }

    #[test]
    fn debug_hides_contents() {
        let b = Body::from_bytes("api_key=canary");
        assert_eq!(format!("{b:?}"), "Body(bytes (14 bytes))");
    }
}
