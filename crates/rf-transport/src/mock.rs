//! [`MockTransport`]: an in-process transport for tests — responses scripted
//! by method + path (+ query), or a handler closure acting as a fake server
//! with state; every request is recorded for assertions, and an unexpected
//! request fails loudly.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use url::Url;

use crate::body::Body;
use crate::error::{ErrorKind, TransportError};
use crate::redact::{RedactedHeaders, redact_url};
use crate::request::Request;
use crate::response::{Response, decode_json};
use crate::transport::Transport;

type Handler = Arc<dyn Fn(&RecordedRequest) -> Response + Send + Sync>;

/// A scripted, recording transport for tests. Clones share their script and
/// record.
///
/// Rules are tried in the order they were added; a rule limited with
/// [`MockRule::times`] stops matching once used up, so a sequence (503, then
/// 200) is two rules. A request no rule matches goes to the handler (see
/// [`MockTransport::with_handler`]); without one it is recorded as
/// unexpected and answered with an [`ErrorKind::Other`] error naming it.
///
/// ```
/// use rf_transport::{MockTransport, Method, Request, Transport};
///
/// # async fn demo() -> Result<(), rf_transport::TransportError> {
/// let mock = MockTransport::new();
/// mock.on(Method::GET, "/ws/batches").times(1).respond(503, "busy");
/// mock.on(Method::GET, "/ws/batches")
///     .respond_json(200, &serde_json::json!({"batches": []}));
///
/// let url = url::Url::parse("http://api.test/ws/batches").unwrap();
/// let first = mock.send(Request::get(url.clone()).query("api_key", "k")).await?;
/// assert_eq!(first.status(), 503);
/// let second = mock.send(Request::get(url)).await?;
/// assert_eq!(second.text().await?, r#"{"batches":[]}"#);
///
/// let seen = mock.requests();
/// assert_eq!(seen.len(), 2);
/// assert_eq!(seen[0].query_value("api_key"), Some("k"));
/// mock.assert_no_unexpected();
/// # Ok(()) }
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(demo()).unwrap();
/// ```
#[derive(Clone, Default)]
pub struct MockTransport {
    state: Arc<MockState>,
}

#[derive(Default)]
struct MockState {
    rules: Mutex<Vec<Rule>>,
    handler: Option<Handler>,
    requests: Mutex<Vec<RecordedRequest>>,
    unexpected: Mutex<Vec<String>>,
}

struct Rule {
    method: Method,
    path: String,
    query: Vec<(String, String)>,
    remaining: Option<usize>,
    action: Action,
}

#[derive(Clone)]
enum Action {
    Respond {
        status: StatusCode,
        headers: HeaderMap,
        body: Bytes,
    },
    With(Handler),
    Fail(ErrorKind, String),
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking test thread must not hide the record from the others.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl MockTransport {
    /// A mock with no rules: every request is unexpected until scripted.
    pub fn new() -> MockTransport {
        MockTransport::default()
    }

    /// A mock whose unmatched requests are answered by `handler` — an
    /// in-process fake server; keep its state in the closure (behind a
    /// `Mutex`). Rules added with [`MockTransport::on`] still take precedence.
    ///
    /// ```
    /// use std::sync::Mutex;
    /// use rf_transport::{HeaderMap, MockTransport, Request, Response, StatusCode, Transport};
    ///
    /// # async fn demo() -> Result<(), rf_transport::TransportError> {
    /// let uploaded = Mutex::new(Vec::<String>::new());
    /// let mock = MockTransport::with_handler(move |req| {
    ///     let mut files = uploaded.lock().unwrap();
    ///     match (req.method.as_str(), req.path.as_str()) {
    ///         ("POST", "/upload") => {
    ///             files.push(req.query_value("name").unwrap_or_default().to_string());
    ///             Response::from_bytes(StatusCode::OK, HeaderMap::new(), "")
    ///         }
    ///         ("GET", "/count") => Response::from_bytes(
    ///             StatusCode::OK,
    ///             HeaderMap::new(),
    ///             format!(r#"{{"count":{}}}"#, files.len()),
    ///         ),
    ///         _ => Response::from_bytes(StatusCode::NOT_FOUND, HeaderMap::new(), ""),
    ///     }
    /// });
    /// let base = url::Url::parse("http://fake/").unwrap();
    /// mock.send(Request::post(base.join("upload").unwrap()).query("name", "a.jpg")).await?;
    /// let count = mock.send(Request::get(base.join("count").unwrap())).await?;
    /// assert_eq!(count.text().await?, r#"{"count":1}"#);
    /// # Ok(()) }
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(demo()).unwrap();
    /// ```
    pub fn with_handler<F>(handler: F) -> MockTransport
    where
        F: Fn(&RecordedRequest) -> Response + Send + Sync + 'static,
    {
        MockTransport {
            state: Arc::new(MockState {
                handler: Some(Arc::new(handler)),
                ..MockState::default()
            }),
        }
    }

    /// Starts a rule for requests with `method` to URL path `path` (exact,
    /// for example `"/ws/batches"`); finish it with one of the `respond*`
    /// methods or [`MockRule::fail`].
    pub fn on(&self, method: Method, path: impl Into<String>) -> MockRule {
        MockRule {
            mock: self.clone(),
            method,
            path: path.into(),
            query: Vec::new(),
            times: None,
            headers: HeaderMap::new(),
        }
    }

    /// Every request received so far, in order (including unexpected ones).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.state.requests).clone()
    }

    /// The requests received with `method` to `path`.
    pub fn requests_to(&self, method: &Method, path: &str) -> Vec<RecordedRequest> {
        lock(&self.state.requests)
            .iter()
            .filter(|r| r.method == *method && r.path == path)
            .cloned()
            .collect()
    }

    /// Descriptions (redacted) of requests no rule or handler answered.
    pub fn unexpected(&self) -> Vec<String> {
        lock(&self.state.unexpected).clone()
    }

    /// Panics, listing them, if any request was unexpected.
    #[track_caller]
    pub fn assert_no_unexpected(&self) {
        let unexpected = self.unexpected();
        assert!(
            unexpected.is_empty(),
            "mock transport received {} unexpected request(s):\n  {}",
            unexpected.len(),
            unexpected.join("\n  ")
        );
    }

    /// Panics if a rule limited with [`MockRule::times`] was not used up.
    #[track_caller]
    pub fn assert_all_used(&self) {
        let pending: Vec<String> = lock(&self.state.rules)
            .iter()
            .filter(|r| r.remaining.is_some_and(|n| n > 0))
            .map(|r| {
                format!(
                    "{} {} ({} left)",
                    r.method,
                    r.path,
                    r.remaining.unwrap_or(0)
                )
            })
            .collect();
        assert!(
            pending.is_empty(),
            "mock transport rules not used up:\n  {}",
            pending.join("\n  ")
        );
    }

    fn add_rule(&self, rule: Rule) {
        lock(&self.state.rules).push(rule);
    }

    fn find_action(&self, req: &RecordedRequest) -> Option<Action> {
        let mut rules = lock(&self.state.rules);
        let rule = rules.iter_mut().find(|r| {
            r.method == req.method
                && r.path == req.path
                && r.remaining != Some(0)
                && r.query
                    .iter()
                    .all(|(k, v)| req.query.iter().any(|(qk, qv)| qk == k && qv == v))
        })?;
        if let Some(n) = rule.remaining.as_mut() {
            *n -= 1;
        }
        Some(rule.action.clone())
    }
}

impl fmt::Debug for MockTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockTransport")
            .field("rules", &lock(&self.state.rules).len())
            .field("handler", &self.state.handler.is_some())
            .field("requests", &lock(&self.state.requests).len())
            .finish()
    }
}

#[async_trait::async_trait]
impl Transport for MockTransport {
    async fn send(&self, request: Request) -> Result<Response, TransportError> {
        let recorded = RecordedRequest::capture(&request).await?;
        let redacted = request.redacted_url();
        lock(&self.state.requests).push(recorded.clone());
        let response = match self.find_action(&recorded) {
            Some(Action::Respond {
                status,
                headers,
                body,
            }) => Response::from_bytes(status, headers, body),
            Some(Action::With(f)) => f(&recorded),
            Some(Action::Fail(kind, message)) => return Err(request.error(kind, message)),
            None => match &self.state.handler {
                Some(handler) => handler(&recorded),
                None => {
                    let what = format!("{} {redacted}", request.method);
                    tracing::error!(request = %what, "mock transport: unexpected request");
                    lock(&self.state.unexpected).push(what.clone());
                    return Err(request.error(
                        ErrorKind::Other,
                        format!(
                            "mock transport: unexpected request {what}; script it with \
                             MockTransport::on(Method::{}, {:?})",
                            request.method, recorded.path
                        ),
                    ));
                }
            },
        };
        Ok(response.with_redacted_request(request.method.clone(), redacted))
    }
}

/// A rule being built by [`MockTransport::on`]; it takes effect when a
/// `respond*` method or [`MockRule::fail`] is called.
#[must_use = "a rule does nothing until respond(), respond_json(), respond_with() or fail() is called"]
pub struct MockRule {
    mock: MockTransport,
    method: Method,
    path: String,
    query: Vec<(String, String)>,
    times: Option<usize>,
    headers: HeaderMap,
}

impl fmt::Debug for MockRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockRule")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("times", &self.times)
            .finish_non_exhaustive()
    }
}

impl MockRule {
    /// Matches only requests carrying this query pair.
    pub fn query(mut self, key: impl Into<String>, value: impl Into<String>) -> MockRule {
        self.query.push((key.into(), value.into()));
        self
    }

    /// Matches at most `n` requests, then lets later rules answer.
    pub fn times(mut self, n: usize) -> MockRule {
        self.times = Some(n);
        self
    }

    /// Adds a header to the scripted response (for example `Retry-After`).
    ///
    /// Panics on an invalid name or value (a mistake in the test).
    #[track_caller]
    pub fn response_header(mut self, name: &str, value: &str) -> MockRule {
        let (Ok(n), Ok(v)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) else {
            panic!("invalid mock response header {name:?}: {value:?}")
        };
        self.headers.append(n, v);
        self
    }

    /// Answers with `status` (panics if it is not 100..=999) and `body`.
    #[track_caller]
    pub fn respond(self, status: u16, body: impl Into<Bytes>) {
        let status = mock_status(status);
        let (mock, rule) = self.finish_with(|headers| Action::Respond {
            status,
            headers,
            body: body.into(),
        });
        mock.add_rule(rule);
    }

    /// Answers with `status` and `value` as JSON.
    #[track_caller]
    pub fn respond_json<T: Serialize + ?Sized>(self, status: u16, value: &T) {
        let status = mock_status(status);
        let body = match serde_json::to_vec(value) {
            Ok(b) => b,
            Err(e) => panic!("mock response does not serialize: {e}"),
        };
        let (mock, rule) = self.finish_with(|mut headers| {
            headers
                .entry(http::header::CONTENT_TYPE)
                .or_insert(HeaderValue::from_static("application/json"));
            Action::Respond {
                status,
                headers,
                body: body.into(),
            }
        });
        mock.add_rule(rule);
    }

    /// Answers with whatever `f` makes of the request.
    pub fn respond_with<F>(self, f: F)
    where
        F: Fn(&RecordedRequest) -> Response + Send + Sync + 'static,
    {
        let (mock, rule) = self.finish_with(|_| Action::With(Arc::new(f)));
        mock.add_rule(rule);
    }

    /// Fails with a transport error of `kind` (to script timeouts, refused
    /// connections, broken connections).
    pub fn fail(self, kind: ErrorKind) {
        let message = format!("mock transport: scripted {kind}");
        let (mock, rule) = self.finish_with(|_| Action::Fail(kind, message));
        mock.add_rule(rule);
    }

    fn finish_with(self, action: impl FnOnce(HeaderMap) -> Action) -> (MockTransport, Rule) {
        let rule = Rule {
            method: self.method,
            path: self.path,
            query: self.query,
            remaining: self.times,
            action: action(self.headers),
        };
        (self.mock, rule)
    }
}

#[track_caller]
fn mock_status(status: u16) -> StatusCode {
    match StatusCode::from_u16(status) {
        Ok(s) => s,
        Err(_) => panic!("invalid mock status code {status}"),
    }
}

/// A request as a [`MockTransport`] received it.
///
/// Fields hold the real values for assertions (including the API key);
/// `Debug` redacts them.
#[derive(Clone)]
pub struct RecordedRequest {
    /// The method.
    pub method: Method,
    /// The full URL, query included (unredacted).
    pub url: Url,
    /// The URL path.
    pub path: String,
    /// All query pairs (from the URL and [`Request::query`]), decoded.
    pub query: Vec<(String, String)>,
    /// The headers, plus the body's implied `Content-Type` if none was set.
    pub headers: HeaderMap,
    /// The body bytes as they would be sent (multipart encoded).
    pub body: Bytes,
    /// The file part of a multipart body.
    pub multipart: Option<RecordedPart>,
    /// The request's own timeout.
    pub timeout: Option<Duration>,
    /// Whether the request was marked idempotent.
    pub idempotent: bool,
}

/// The file part of a recorded multipart request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedPart {
    /// The form field name.
    pub field_name: String,
    /// The `filename` parameter.
    pub file_name: String,
    /// The part's `Content-Type`, if one was given.
    pub content_type: Option<String>,
    /// The part's bytes.
    pub bytes: Bytes,
}

impl RecordedRequest {
    /// Records `request`, reading its body into memory.
    pub async fn capture(request: &Request) -> Result<RecordedRequest, TransportError> {
        let read_err = |e: std::io::Error| request.error(ErrorKind::Body, e.to_string());
        let body = request.body.to_bytes().await.map_err(read_err)?;
        let multipart = match &request.body {
            Body::Multipart(m) => Some(RecordedPart {
                field_name: m.field_name.clone(),
                file_name: m.file_name.clone(),
                content_type: m.content_type.clone(),
                bytes: m.source.to_bytes().await.map_err(read_err)?,
            }),
            _ => None,
        };
        let mut headers = request.headers.clone();
        if let Some(ct) = request.body.content_type()
            && !headers.contains_key(http::header::CONTENT_TYPE)
            && let Ok(v) = HeaderValue::try_from(ct)
        {
            headers.insert(http::header::CONTENT_TYPE, v);
        }
        let url = request.full_url();
        Ok(RecordedRequest {
            method: request.method.clone(),
            path: url.path().to_string(),
            query: url.query_pairs().into_owned().collect(),
            url,
            headers,
            body,
            multipart,
            timeout: request.timeout,
            idempotent: request.idempotent,
        })
    }

    /// The first value of query pair `key`.
    pub fn query_value(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The value of header `name` as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)?.to_str().ok()
    }

    /// The body as (lossy) text.
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body decoded as JSON (the error names the failing field).
    pub fn body_json<T: DeserializeOwned>(&self) -> Result<T, String> {
        decode_json(&self.body)
    }
}

impl fmt::Debug for RecordedRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordedRequest")
            .field("method", &self.method)
            .field("url", &redact_url(self.url.as_str()))
            .field("headers", &RedactedHeaders(&self.headers))
            .field("body_len", &self.body.len())
            .field("multipart", &self.multipart.as_ref().map(|p| &p.file_name))
            .field("timeout", &self.timeout)
            .field("idempotent", &self.idempotent)
            .finish()
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

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn rules_match_method_path_and_query_in_order() {
        let mock = MockTransport::new();
        mock.on(Method::GET, "/a")
            .query("page", "2")
            .respond(200, "two");
        mock.on(Method::GET, "/a").respond(200, "any");
        let rt = rt();
        let send = |u: &str| {
            let r = rt.block_on(mock.send(Request::get(url(u)))).unwrap();
            rt.block_on(r.text()).unwrap()
        };
        assert_eq!(send("http://x/a?page=2&k=v"), "two");
        assert_eq!(send("http://x/a?page=1"), "any");
        let err = rt
            .block_on(mock.send(Request::post(url("http://x/a?api_key=canary"))))
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Other);
        assert!(err.to_string().contains("unexpected request POST"), "{err}");
        assert!(!err.to_string().contains("canary"));
        assert_eq!(mock.unexpected().len(), 1);
        assert_eq!(mock.requests().len(), 3);
        let caught =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| mock.assert_no_unexpected()));
        assert!(caught.is_err());
    }

    #[test]
    fn times_limits_then_falls_through_and_fail_scripts_errors() {
        let mock = MockTransport::new();
        mock.on(Method::PUT, "/u").times(2).fail(ErrorKind::Timeout);
        mock.on(Method::PUT, "/u").respond(201, "");
        let rt = rt();
        let put = || rt.block_on(mock.send(Request::put(url("http://x/u"))));
        assert_eq!(put().unwrap_err().kind(), ErrorKind::Timeout);
        assert_eq!(put().unwrap_err().kind(), ErrorKind::Timeout);
        assert_eq!(put().unwrap().status(), 201);
        mock.assert_all_used();
        mock.assert_no_unexpected();
    }

    #[test]
    fn records_multipart_parts_and_implied_content_type() {
        let mock = MockTransport::new();
        mock.on(Method::POST, "/up").respond(200, "");
        let body = Body::multipart(
            "file",
            "a.jpg",
            Some("image/jpeg"),
            Body::from_bytes("JPEG"),
        );
        let rt = rt();
        rt.block_on(mock.send(Request::post(url("http://x/up")).body(body)))
            .unwrap();
        let rec = &mock.requests()[0];
        let part = rec.multipart.as_ref().unwrap();
        assert_eq!(part.file_name, "a.jpg");
        assert_eq!(part.bytes, "JPEG");
        assert!(
            rec.header("content-type")
                .unwrap()
                .starts_with("multipart/form-data; boundary=")
        );
        assert!(rec.body_text().contains("JPEG"));
    }

    #[test]
    fn recorded_debug_redacts() {
        let mock = MockTransport::new();
        mock.on(Method::GET, "/").respond(200, "");
        let rt = rt();
        rt.block_on(mock.send(Request::get(url("http://x/")).query("api_key", "canary")))
            .unwrap();
        let rec = &mock.requests()[0];
        assert_eq!(rec.query_value("api_key"), Some("canary"));
        assert!(!format!("{rec:?}").contains("canary"));
    }
}
