//! [`TransportError`]: a request that produced no usable answer, with the
//! kind of failure that decides whether it may be retried.
//!
//! A non-2xx status is *not* an error here: it is a [`crate::Response`].

use std::error::Error as StdError;
use std::fmt;

use http::Method;

use crate::redact::redact_url;

/// A boxed error source.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// What went wrong; decides retries (see [`TransportError::is_retryable`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// No connection could be made (DNS, refused, TLS handshake, proxy).
    /// The request never reached the server, so it is always safe to retry.
    Connect,
    /// The request, a read or the connection timed out.
    Timeout,
    /// The connection broke after the request started (reset, closed early,
    /// truncated answer). The server may have acted on it.
    Interrupted,
    /// The answer could not be decoded (JSON of the wrong shape, invalid
    /// UTF-8, larger than the buffering limit).
    Decode,
    /// The request body could not be produced (file unreadable or changed
    /// while it was sent, producer failed).
    Body,
    /// The request itself is invalid (bad header, URL or JSON) — a caller bug.
    Request,
    /// Anything else (including an unexpected request to a mock).
    Other,
}

impl ErrorKind {
    fn describe(self) -> &'static str {
        match self {
            ErrorKind::Connect => "cannot connect",
            ErrorKind::Timeout => "timed out",
            ErrorKind::Interrupted => "connection interrupted",
            ErrorKind::Decode => "cannot decode the answer",
            ErrorKind::Body => "cannot produce the request body",
            ErrorKind::Request => "invalid request",
            ErrorKind::Other => "request failed",
        }
    }

    fn hint(self) -> &'static str {
        match self {
            ErrorKind::Connect => {
                "check the network, the server address and the proxy settings \
                 (HTTPS_PROXY, HTTP_PROXY, NO_PROXY), then retry"
            }
            ErrorKind::Timeout => "retry later, or raise the timeout",
            ErrorKind::Interrupted => "retry; the server may or may not have received it",
            ErrorKind::Decode => {
                "the server answered something unexpected; check the base URL, \
                 or report it if it persists"
            }
            ErrorKind::Body => "check that the file exists, is readable and is not being changed",
            ErrorKind::Request => "fix the request's arguments",
            ErrorKind::Other => "retry, or report it if it persists",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// A request that produced no usable answer.
///
/// `Display` says what failed, on which method and (redacted) URL, after how
/// many attempts, and what to do; the API key and URL signatures never appear
/// in it, nor in `Debug`.
///
/// ```
/// use rf_transport::{ErrorKind, Method, TransportError};
///
/// let url = url::Url::parse("https://api.example/x?api_key=secret").unwrap();
/// let err = TransportError::new(ErrorKind::Timeout, "no answer within 30s")
///     .with_request(&Method::GET, &url);
/// assert_eq!(err.kind(), ErrorKind::Timeout);
/// assert!(err.is_retryable(true) && !err.is_retryable(false));
/// let shown = err.to_string();
/// assert!(shown.starts_with("timed out: GET https://api.example/x?api_key=REDACTED: no answer"));
/// assert!(!format!("{err:?}").contains("secret"));
/// ```
#[derive(Debug, thiserror::Error)]
pub struct TransportError {
    kind: ErrorKind,
    method: Option<Method>,
    url: Option<String>,
    message: String,
    attempts: u32,
    elapsed: Option<std::time::Duration>,
    #[source]
    source: Option<BoxError>,
}

impl TransportError {
    /// A new error; `message` (redacted) says what happened.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        TransportError {
            kind,
            method: None,
            url: None,
            message: redact_url(&message.into()),
            attempts: 1,
            elapsed: None,
            source: None,
        }
    }

    /// Attaches the underlying cause. Its text (and that of its own causes)
    /// is redacted and kept; the original value is not, so secrets inside it
    /// cannot leak through `source()` either.
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        let source: BoxError = source.into();
        self.source = Some(Box::new(RedactedCause::of(source.as_ref())));
        self
    }

    /// Names the request that failed (the URL is redacted here).
    pub fn with_request(mut self, method: &Method, url: &url::Url) -> Self {
        self.method = Some(method.clone());
        self.url = Some(redact_url(url.as_str()));
        self
    }

    /// Names the request that failed with an already redacted URL.
    pub(crate) fn with_redacted_request(mut self, method: Method, redacted_url: String) -> Self {
        self.method = Some(method);
        self.url = Some(redacted_url);
        self
    }

    /// Records how many attempts were made (set by [`crate::Retrying`]).
    pub fn with_attempts(mut self, attempts: u32) -> Self {
        self.attempts = attempts.max(1);
        self
    }

    /// Records how long the attempts took in all (set by [`crate::Retrying`]).
    pub fn with_elapsed(mut self, elapsed: std::time::Duration) -> Self {
        self.elapsed = Some(elapsed);
        self
    }

    /// How long the attempts took in all, if recorded.
    pub fn elapsed(&self) -> Option<std::time::Duration> {
        self.elapsed
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The method of the failed request, if known.
    pub fn method(&self) -> Option<&Method> {
        self.method.as_ref()
    }

    /// The redacted URL of the failed request, if known.
    pub fn url(&self) -> Option<&str> {
        self.url.as_deref()
    }

    /// What happened (redacted), without method, URL or hint.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// How many attempts were made before giving up (1 without retries).
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Whether sending the same request again may succeed and is safe.
    ///
    /// Connect errors: always (nothing reached the server). Timeouts and
    /// interrupted connections: only for an `idempotent` request, because the
    /// server may have acted on the first one. Everything else: never.
    pub fn is_retryable(&self, idempotent: bool) -> bool {
        match self.kind {
            ErrorKind::Connect => true,
            ErrorKind::Timeout | ErrorKind::Interrupted => idempotent,
            _ => false,
        }
    }
}

/// The redacted text of an error and its causes (see [`TransportError::with_source`]).
#[derive(Debug)]
struct RedactedCause {
    text: String,
}

impl RedactedCause {
    fn of(e: &(dyn StdError + 'static)) -> RedactedCause {
        RedactedCause {
            text: redact_url(&error_chain(e)),
        }
    }
}

/// An error and its causes, joined by ": ", repeated texts dropped.
pub(crate) fn error_chain(e: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current = Some(e);
    while let Some(err) = current {
        let text = err.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        current = err.source();
    }
    parts.join(": ")
}

impl fmt::Display for RedactedCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl StdError for RedactedCause {}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind.describe())?;
        match (&self.method, &self.url) {
            (Some(m), Some(u)) => write!(f, ": {m} {u}")?,
            (None, Some(u)) => write!(f, ": {u}")?,
            (Some(m), None) => write!(f, ": {m}")?,
            (None, None) => {}
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        if self.attempts > 1 {
            write!(f, " (gave up after {} attempts", self.attempts)?;
            if let Some(elapsed) = self.elapsed {
                write!(f, " in {:.1}s", elapsed.as_secs_f64())?;
            }
            f.write_str(")")?;
        }
        write!(f, "; {}", self.kind.hint())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_request_attempts_and_hint() {
        let url = url::Url::parse("http://h/p?api_key=canary").unwrap();
        let err = TransportError::new(ErrorKind::Connect, "connection refused")
            .with_request(&Method::POST, &url)
            .with_attempts(3)
            .with_elapsed(std::time::Duration::from_millis(1250));
        assert_eq!(
            err.to_string(),
            "cannot connect: POST http://h/p?api_key=REDACTED: connection refused \
             (gave up after 3 attempts in 1.2s); check the network, the server address and the \
             proxy settings (HTTPS_PROXY, HTTP_PROXY, NO_PROXY), then retry"
        );
        assert_eq!(err.attempts(), 3);
    }

    #[test]
    fn message_is_redacted() {
        let err = TransportError::new(ErrorKind::Other, "see http://h/?api_key=canary");
        assert!(!err.to_string().contains("canary"));
        assert!(!format!("{err:?}").contains("canary"));
    }

    #[test]
    fn sources_are_redacted() {
        let cause = std::io::Error::other("GET http://h/?api_key=canary failed");
        let err = TransportError::new(ErrorKind::Other, "x").with_source(cause);
        let source = std::error::Error::source(&err).unwrap();
        assert_eq!(source.to_string(), "GET http://h/?api_key=REDACTED failed");
        assert!(!format!("{err:?}").contains("canary"));
    }

    #[test]
    fn retry_rules() {
        let e = |k| TransportError::new(k, "");
        assert!(e(ErrorKind::Connect).is_retryable(false));
        assert!(!e(ErrorKind::Timeout).is_retryable(false));
        assert!(e(ErrorKind::Timeout).is_retryable(true));
        assert!(e(ErrorKind::Interrupted).is_retryable(true));
        assert!(!e(ErrorKind::Interrupted).is_retryable(false));
        for k in [
            ErrorKind::Decode,
            ErrorKind::Body,
            ErrorKind::Request,
            ErrorKind::Other,
        ] {
            assert!(!e(k).is_retryable(true), "{k:?}");
        }
    }
}
