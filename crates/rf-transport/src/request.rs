//! [`Request`]: what a [`crate::Transport`] sends — method, URL, query pairs,
//! headers, body, per-request timeout and whether resending is harmless.

use std::fmt;
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue, Method};
use serde::Serialize;
use url::Url;

use crate::body::Body;
use crate::error::{ErrorKind, TransportError};
use crate::redact::{RedactedHeaders, is_secret_header, redact_url};

/// An HTTP request as rf sends it.
///
/// Built with chained calls; `Debug` and `Display` show the URL with secrets
/// masked ([`Request::redacted_url`]), headers through
/// [`crate::redact_header`] and only a description of the body.
///
/// ```
/// use rf_transport::{Body, Request};
/// use std::time::Duration;
///
/// let url = url::Url::parse("https://api.roboflow.com/my-ws/batches").unwrap();
/// let req = Request::get(url)
///     .query("api_key", "s3cr3t")
///     .query("pageSize", "100")
///     .timeout(Duration::from_secs(30));
/// assert!(req.idempotent); // GET is idempotent by default
/// assert_eq!(
///     req.full_url().as_str(),
///     "https://api.roboflow.com/my-ws/batches?api_key=s3cr3t&pageSize=100"
/// );
/// assert_eq!(
///     req.to_string(),
///     "GET https://api.roboflow.com/my-ws/batches?api_key=REDACTED&pageSize=100"
/// );
/// assert!(!format!("{req:?}").contains("s3cr3t"));
/// ```
#[derive(Clone)]
pub struct Request {
    /// The HTTP method.
    pub method: Method,
    /// The URL; it may already carry query pairs, to which [`Request::query`]
    /// appends.
    pub url: Url,
    /// Query pairs appended to the URL when sent (the API key goes here).
    pub query: Vec<(String, String)>,
    /// Request headers. A body's implied `Content-Type` and `Content-Length`
    /// are added when sent unless set here.
    pub headers: HeaderMap,
    /// The body.
    pub body: Body,
    /// Time limit for the whole exchange, from connecting until the response
    /// body has been read; `None` uses the transport's default.
    pub timeout: Option<Duration>,
    /// Whether sending this request twice is harmless; decides whether
    /// timeouts and interrupted connections are retried.
    pub idempotent: bool,
}

impl Request {
    /// A request with no body; `idempotent` defaults to the method's HTTP
    /// semantics (GET, HEAD, PUT, DELETE, OPTIONS, TRACE: yes; POST, PATCH: no).
    pub fn new(method: Method, url: Url) -> Request {
        let idempotent = method.is_idempotent();
        Request {
            method,
            url,
            query: Vec::new(),
            headers: HeaderMap::new(),
            body: Body::Empty,
            timeout: None,
            idempotent,
        }
    }

    /// A `GET` request.
    pub fn get(url: Url) -> Request {
        Request::new(Method::GET, url)
    }

    /// A `POST` request (not idempotent unless marked).
    pub fn post(url: Url) -> Request {
        Request::new(Method::POST, url)
    }

    /// A `PUT` request.
    pub fn put(url: Url) -> Request {
        Request::new(Method::PUT, url)
    }

    /// A `DELETE` request.
    pub fn delete(url: Url) -> Request {
        Request::new(Method::DELETE, url)
    }

    /// Appends a query pair.
    pub fn query(mut self, key: impl Into<String>, value: impl Into<String>) -> Request {
        self.query.push((key.into(), value.into()));
        self
    }

    /// Sets a header (replacing earlier values). Secret headers
    /// (`Authorization`, ...) are marked sensitive.
    pub fn header(mut self, name: HeaderName, mut value: HeaderValue) -> Request {
        if is_secret_header(&name) {
            value.set_sensitive(true);
        }
        self.headers.insert(name, value);
        self
    }

    /// Sets a header from strings that may be invalid (for example extension
    /// headers handed out by a server).
    pub fn try_header(self, name: &str, value: &str) -> Result<Request, TransportError> {
        let header_name = HeaderName::try_from(name).map_err(|e| {
            TransportError::new(
                ErrorKind::Request,
                format!("invalid header name {name:?}: {e}"),
            )
        })?;
        let header_value = HeaderValue::try_from(value).map_err(|e| {
            TransportError::new(
                ErrorKind::Request,
                format!("invalid value for header {name:?}: {e}"),
            )
        })?;
        Ok(self.header(header_name, header_value))
    }

    /// Sets the body.
    pub fn body(mut self, body: Body) -> Request {
        self.body = body;
        self
    }

    /// Serializes `value` as the JSON body.
    pub fn json<T: Serialize + ?Sized>(mut self, value: &T) -> Result<Request, TransportError> {
        let bytes = serde_json::to_vec(value).map_err(|e| {
            TransportError::new(
                ErrorKind::Request,
                format!("cannot serialize the JSON body: {e}"),
            )
            .with_request(&self.method, &self.url)
        })?;
        self.body = Body::Json(bytes.into());
        Ok(self)
    }

    /// Sets the time limit for this request.
    pub fn timeout(mut self, timeout: Duration) -> Request {
        self.timeout = Some(timeout);
        self
    }

    /// Marks whether resending this request is harmless.
    pub fn idempotent(mut self, yes: bool) -> Request {
        self.idempotent = yes;
        self
    }

    /// The URL with [`Request::query`] pairs appended (unredacted: for
    /// sending only, never for printing).
    pub fn full_url(&self) -> Url {
        let mut url = self.url.clone();
        if !self.query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in &self.query {
                pairs.append_pair(k, v);
            }
        }
        url
    }

    /// The full URL with secrets masked — what errors and logs show.
    pub fn redacted_url(&self) -> String {
        redact_url(self.full_url().as_str())
    }

    /// A copy for another attempt, with the body re-created; `None` if the
    /// body is a one-shot stream ([`Body::from_stream_once`]).
    pub fn try_clone(&self) -> Option<Request> {
        self.body.is_reusable().then(|| self.clone())
    }

    /// The value of query pair `key`, from [`Request::query`] or the URL.
    pub fn query_value(&self, key: &str) -> Option<String> {
        self.query
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .or_else(|| {
                self.url
                    .query_pairs()
                    .find(|(k, _)| k == key)
                    .map(|(_, v)| v.into_owned())
            })
    }

    /// An error about this request (URL redacted).
    pub fn error(&self, kind: ErrorKind, message: impl Into<String>) -> TransportError {
        TransportError::new(kind, message)
            .with_redacted_request(self.method.clone(), self.redacted_url())
    }
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("url", &self.redacted_url())
            .field("headers", &RedactedHeaders(&self.headers))
            .field("body", &self.body)
            .field("timeout", &self.timeout)
            .field("idempotent", &self.idempotent)
            .finish()
    }
}

impl fmt::Display for Request {
    /// `METHOD redacted-url`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.redacted_url())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn query_is_appended_to_existing_pairs() {
        let req = Request::get(url("http://h/p?a=1")).query("b", "x y&z");
        assert_eq!(req.full_url().as_str(), "http://h/p?a=1&b=x+y%26z");
        assert_eq!(req.query_value("a").as_deref(), Some("1"));
        assert_eq!(req.query_value("b").as_deref(), Some("x y&z"));
        assert_eq!(req.query_value("c"), None);
    }

    #[test]
    fn idempotency_defaults_follow_the_method() {
        assert!(Request::get(url("http://h/")).idempotent);
        assert!(Request::put(url("http://h/")).idempotent);
        assert!(!Request::post(url("http://h/")).idempotent);
        assert!(Request::post(url("http://h/")).idempotent(true).idempotent);
    }

    #[test]
    fn debug_and_errors_redact() {
        let req = Request::post(url("http://h/_signed/tok.mac?sig=abc"))
            .query("api_key", "canary")
            .header(
                HeaderName::from_static("authorization"),
                HeaderValue::from_static("Bearer canary"),
            );
        let dbg = format!("{req:?}");
        for secret in ["canary", "tok.mac", "abc"] {
            assert!(!dbg.contains(secret), "{secret} in {dbg}");
        }
        let err = req.error(ErrorKind::Timeout, "slow");
        assert!(!err.to_string().contains("canary"));
        assert!(
            err.to_string()
                .contains("POST http://h/_signed/REDACTED?sig=REDACTED&api_key=REDACTED")
        );
    }

    #[test]
    fn try_header_rejects_bad_input() {
        let req = Request::get(url("http://h/"));
        assert!(req.clone().try_header("x-ok", "v").is_ok());
        let err = req.clone().try_header("bad name", "v").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Request);
        assert!(req.try_header("x", "a\nb").is_err());
    }

    #[test]
    fn json_body() {
        let req = Request::post(url("http://h/"))
            .json(&serde_json::json!({"a": 1}))
            .unwrap();
        assert_eq!(req.body.as_bytes().unwrap(), r#"{"a":1}"#);
        assert_eq!(req.body.content_type().as_deref(), Some("application/json"));
    }

    #[test]
    fn one_shot_bodies_cannot_be_cloned() {
        let req = Request::put(url("http://h/")).body(Body::from_stream_once(
            None,
            futures::stream::empty().boxed(),
        ));
        assert!(req.try_clone().is_none());
        assert!(Request::put(url("http://h/")).try_clone().is_some());
    }
    use futures::StreamExt;
}
