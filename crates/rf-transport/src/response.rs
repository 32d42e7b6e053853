//! [`Response`]: status, headers and a body read chunk by chunk, with helpers
//! that read it whole or decode JSON (naming the failing field).
//!
//! Any status is a response; deciding what a 404 means is the caller's job.

use std::fmt;

use bytes::{Bytes, BytesMut};
use futures::stream::{self, BoxStream, Stream, StreamExt};
use http::{HeaderMap, Method, StatusCode};
use serde::de::DeserializeOwned;

use crate::error::{ErrorKind, TransportError};
use crate::redact::{RedactedHeaders, redact_url};

/// The most [`Response::bytes`], [`Response::text`] and [`Response::json`]
/// read into memory (64 MiB). Larger answers (downloads) are read with
/// [`Response::chunk`] or [`Response::into_stream`].
pub const MAX_BUFFERED_BODY: usize = 64 * 1024 * 1024;

/// How much of a body a decode error quotes.
const SNIPPET_CHARS: usize = 200;

/// A body stream of a response.
pub type ResponseStream = BoxStream<'static, Result<Bytes, TransportError>>;

/// An HTTP response.
///
/// ```
/// use rf_transport::{HeaderMap, Response, StatusCode};
///
/// # async fn demo() -> Result<(), rf_transport::TransportError> {
/// #[derive(Debug, serde::Deserialize)]
/// struct Count { count: u64 }
///
/// let r = Response::from_bytes(StatusCode::OK, HeaderMap::new(), r#"{"count": 3}"#);
/// assert_eq!(r.json::<Count>().await?.count, 3);
///
/// let r = Response::from_bytes(StatusCode::OK, HeaderMap::new(), r#"{"count": "x"}"#);
/// let err = r.json::<Count>().await.unwrap_err();
/// assert!(err.to_string().contains("at `count`"), "{err}");
/// # Ok(()) }
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(demo()).unwrap();
/// ```
pub struct Response {
    /// The status code.
    pub status: StatusCode,
    /// The response headers.
    pub headers: HeaderMap,
    method: Option<Method>,
    url: Option<String>,
    attempts: u32,
    body: Option<ResponseStream>,
}

impl Response {
    /// A response whose body is in memory (for custom transports and mocks).
    pub fn from_bytes(status: StatusCode, headers: HeaderMap, body: impl Into<Bytes>) -> Response {
        let body: Bytes = body.into();
        let stream = if body.is_empty() {
            stream::empty().boxed()
        } else {
            stream::once(async move { Ok(body) }).boxed()
        };
        Response::from_stream(status, headers, stream)
    }

    /// A response whose body is streamed.
    pub fn from_stream<S>(status: StatusCode, headers: HeaderMap, body: S) -> Response
    where
        S: Stream<Item = Result<Bytes, TransportError>> + Send + 'static,
    {
        Response {
            status,
            headers,
            method: None,
            url: None,
            attempts: 1,
            body: Some(body.boxed()),
        }
    }

    /// Names the request this answers (the URL is redacted here); used in
    /// errors while reading the body.
    pub fn with_request(mut self, method: &Method, url: &url::Url) -> Response {
        self.method = Some(method.clone());
        self.url = Some(redact_url(url.as_str()));
        self
    }

    pub(crate) fn with_redacted_request(
        mut self,
        method: Method,
        redacted_url: String,
    ) -> Response {
        self.method = Some(method);
        self.url = Some(redacted_url);
        self
    }

    /// The (redacted) request this answers, if known.
    pub(crate) fn origin(&self) -> Option<(Method, String)> {
        Some((self.method.clone()?, self.url.clone()?))
    }

    /// Records how many attempts produced this response (set by [`crate::Retrying`]).
    pub fn with_attempts(mut self, attempts: u32) -> Response {
        self.attempts = attempts.max(1);
        self
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The response headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The redacted URL of the request, if the transport recorded it.
    pub fn url(&self) -> Option<&str> {
        self.url.as_deref()
    }

    /// How many attempts it took to get this response (1 without retries).
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The `Content-Length` header, if present and valid.
    pub fn content_length(&self) -> Option<u64> {
        self.headers
            .get(http::header::CONTENT_LENGTH)?
            .to_str()
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// The next chunk of the body; `None` at its end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, TransportError> {
        let Some(body) = self.body.as_mut() else {
            return Ok(None);
        };
        match body.next().await {
            Some(Ok(chunk)) => Ok(Some(chunk)),
            Some(Err(e)) => {
                self.body = None;
                Err(self.contextualize(e))
            }
            None => {
                self.body = None;
                Ok(None)
            }
        }
    }

    /// The body as a stream of chunks.
    pub fn into_stream(mut self) -> ResponseStream {
        let method = self.method.take();
        let url = self.url.take();
        let body = self.body.take().unwrap_or_else(|| stream::empty().boxed());
        body.map(move |r| {
            r.map_err(|e| match (&method, &url) {
                (Some(m), Some(u)) if e.url().is_none() => {
                    e.with_redacted_request(m.clone(), u.clone())
                }
                _ => e,
            })
        })
        .boxed()
    }

    /// Reads the whole body, failing with [`ErrorKind::Decode`] beyond
    /// [`MAX_BUFFERED_BODY`].
    pub async fn bytes(self) -> Result<Bytes, TransportError> {
        self.bytes_limited(MAX_BUFFERED_BODY).await
    }

    /// Reads the whole body, failing with [`ErrorKind::Decode`] beyond `limit` bytes.
    pub async fn bytes_limited(mut self, limit: usize) -> Result<Bytes, TransportError> {
        let too_big = |this: &Response| {
            this.contextualize(TransportError::new(
                ErrorKind::Decode,
                format!("the answer is larger than {limit} bytes; read it chunk by chunk instead"),
            ))
        };
        if self.content_length().is_some_and(|n| n > limit as u64) {
            return Err(too_big(&self));
        }
        let mut out = BytesMut::new();
        while let Some(chunk) = self.chunk().await? {
            if out.len() + chunk.len() > limit {
                return Err(too_big(&self));
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out.freeze())
    }

    /// Reads the whole body as UTF-8 text.
    pub async fn text(self) -> Result<String, TransportError> {
        let (method, url) = (self.method.clone(), self.url.clone());
        let bytes = self.bytes().await?;
        String::from_utf8(bytes.to_vec()).map_err(|e| {
            with_context(
                TransportError::new(ErrorKind::Decode, format!("the answer is not UTF-8: {e}")),
                &method,
                &url,
            )
        })
    }

    /// Reads the whole body and decodes it as JSON. A decode error names the
    /// path of the failing field and quotes the start of the body (redacted).
    pub async fn json<T: DeserializeOwned>(self) -> Result<T, TransportError> {
        let (method, url, status) = (self.method.clone(), self.url.clone(), self.status);
        let bytes = self.bytes().await?;
        decode_json(&bytes).map_err(|message| {
            with_context(
                TransportError::new(
                    ErrorKind::Decode,
                    format!("status {}: {message}", status.as_u16()),
                ),
                &method,
                &url,
            )
        })
    }

    fn contextualize(&self, e: TransportError) -> TransportError {
        with_context(e, &self.method, &self.url)
    }
}

fn with_context(
    e: TransportError,
    method: &Option<Method>,
    url: &Option<String>,
) -> TransportError {
    match (method, url) {
        (Some(m), Some(u)) if e.url().is_none() => e.with_redacted_request(m.clone(), u.clone()),
        _ => e,
    }
}

/// Decodes JSON, describing a failure with the field path and a body snippet.
pub(crate) fn decode_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| describe(e, bytes))?;
    de.end().map_err(|e| {
        format!(
            "trailing data after the JSON value: {e}; the answer starts with {}",
            snippet(bytes)
        )
    })?;
    Ok(value)
}

fn describe(e: serde_path_to_error::Error<serde_json::Error>, bytes: &[u8]) -> String {
    let path = e.path().to_string();
    let inner = e.into_inner();
    let at = if path == "." || path.is_empty() {
        String::new()
    } else {
        format!("at `{path}`: ")
    };
    format!(
        "invalid JSON {at}{inner}; the answer starts with {}",
        snippet(bytes)
    )
}

/// The start of a body, quoted and redacted.
fn snippet(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut cut: String = text.chars().take(SNIPPET_CHARS).collect();
    if cut.len() < text.len() {
        cut.push_str("...");
    }
    if cut.trim().is_empty() {
        return "nothing (empty body)".to_string();
    }
    format!("{:?}", redact_url(&cut))
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("url", &self.url)
            .field("headers", &RedactedHeaders(&self.headers))
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Outer {
        items: Vec<Item>,
    }
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Item {
        name: String,
        size: u64,
    }

    #[test]
    fn decode_error_names_field_and_quotes_redacted_snippet() {
        let body =
            r#"{"items":[{"name":"a","size":1},{"name":"https://b/o?sig=canary","size":"big"}]}"#;
        let url = url::Url::parse("http://h/list?api_key=canary").unwrap();
        let r = Response::from_bytes(StatusCode::OK, HeaderMap::new(), body)
            .with_request(&Method::GET, &url);
        let err = rt().block_on(r.json::<Outer>()).unwrap_err();
        let msg = err.to_string();
        assert_eq!(err.kind(), ErrorKind::Decode);
        assert!(msg.contains("at `items[1].size`"), "{msg}");
        assert!(msg.contains("GET http://h/list?api_key=REDACTED"), "{msg}");
        assert!(msg.contains("sig=REDACTED"), "{msg}");
        assert!(!msg.contains("canary"), "{msg}");
    }

    #[test]
    fn empty_and_trailing_bodies() {
        let r = Response::from_bytes(StatusCode::OK, HeaderMap::new(), "");
        let err = rt().block_on(r.json::<Outer>()).unwrap_err();
        assert!(err.to_string().contains("nothing (empty body)"), "{err}");
        let r = Response::from_bytes(StatusCode::OK, HeaderMap::new(), "{\"items\":[]} x");
        assert!(rt().block_on(r.json::<Outer>()).is_err());
    }

    #[test]
    fn bytes_respects_the_limit() {
        let r = Response::from_bytes(StatusCode::OK, HeaderMap::new(), vec![0u8; 100]);
        let err = rt().block_on(r.bytes_limited(99)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Decode);
        let r = Response::from_bytes(StatusCode::OK, HeaderMap::new(), vec![0u8; 100]);
        assert_eq!(rt().block_on(r.bytes_limited(100)).unwrap().len(), 100);
    }

    #[test]
    fn chunks_then_end() {
        let chunks = vec![Ok(Bytes::from("ab")), Ok(Bytes::from("cd"))];
        let mut r = Response::from_stream(StatusCode::OK, HeaderMap::new(), stream::iter(chunks));
        let rt = rt();
        assert_eq!(rt.block_on(r.chunk()).unwrap().unwrap(), "ab");
        assert_eq!(rt.block_on(r.chunk()).unwrap().unwrap(), "cd");
        assert!(rt.block_on(r.chunk()).unwrap().is_none());
        assert!(rt.block_on(r.chunk()).unwrap().is_none());
    }

    #[test]
    fn text_rejects_invalid_utf8() {
        let r = Response::from_bytes(StatusCode::OK, HeaderMap::new(), vec![0xff, 0xfe]);
        assert_eq!(
            rt().block_on(r.text()).unwrap_err().kind(),
            ErrorKind::Decode
        );
    }
}
