//! The typed API client: one async method per endpoint, grouped by area.
//!
//! ```no_run
//! # async fn demo() -> Result<(), rf_batch::Error> {
//! use futures::TryStreamExt;
//! let client = rf_batch::Client::builder()
//!     .base_url("https://api.roboflow.com")
//!     .api_key("my-key")
//!     .build()?;
//! let count = client.staging().count("my-batch", None).await?;
//! let jobs: Vec<_> = client.jobs().list(None).try_collect().await?;
//! # let _ = (count, jobs); Ok(()) }
//! ```
//!
//! The client speaks through any [`Transport`]: the default is
//! `Retrying<ReqwestTransport>`; tests hand it a `MockTransport` or their own
//! implementation. The workspace is looked up once (`GET /?api_key=`) and
//! cached, unless it was given to the builder. Paginated listings are
//! `futures::Stream`s that fetch the next page when the previous one is used
//! up. Every error names the endpoint and the ID involved, and carries what the
//! server said ([`crate::ApiError`]); the API key appears in none of them.

mod jobs;
mod page;
mod staging;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rf_transport::{HeaderValue, Request, Response, Transport};
use serde::de::DeserializeOwned;
use url::Url;

pub use jobs::Jobs;
pub(crate) use page::paginate_endpoint;
pub use page::{MAX_EMPTY_PAGES, MAX_PAGES, paginate, paginate_ahead};
pub(crate) use staging::LIST_FILES_PAGE_SIZE;
pub use staging::Staging;

use crate::endpoint::Endpoint;
use crate::error::{ApiError, ApiErrorKind, Error, Result};

/// Default API origin.
pub const DEFAULT_BASE_URL: &str = "https://api.roboflow.com";

/// Path prefix of the Data Staging API.
pub const STAGING_PREFIX: [&str; 3] = ["data-staging", "v1", "external"];

/// Path prefix of the Batch Processing API.
pub const BATCH_PREFIX: [&str; 3] = ["batch-processing", "v1", "external"];

/// A typed client for both APIs. Cheap to clone (an `Arc` inside).
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    transport: Arc<dyn Transport>,
    base: Url,
    api_key: String,
    workspace: tokio::sync::OnceCell<String>,
    timeout: Option<Duration>,
    retry_stats: Option<rf_transport::RetryStats>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.inner.base.as_str())
            .field("api_key", &"<redacted>")
            .field("workspace", &self.inner.workspace.get())
            .field("transport", &self.inner.transport)
            .finish()
    }
}

/// Builds a [`Client`].
#[derive(Default)]
pub struct ClientBuilder {
    transport: Option<Arc<dyn Transport>>,
    base_url: Option<String>,
    api_key: Option<String>,
    workspace: Option<String>,
    timeout: Option<Duration>,
    retry_stats: Option<rf_transport::RetryStats>,
    http2_prior_knowledge: bool,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("workspace", &self.workspace)
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// The transport to send requests through (default: `Retrying<ReqwestTransport>`).
    pub fn transport(mut self, transport: impl Transport) -> Self {
        self.transport = Some(Arc::new(transport));
        self
    }

    /// A shared transport.
    pub fn shared_transport(mut self, transport: Arc<dyn Transport>) -> Self {
        self.transport = Some(transport);
        self
    }

    /// The retry counters of the transport given (`Retrying::stats()`), so
    /// [`Client::retry_stats`] and the run report can tell how many retries
    /// were made. Set automatically for the default transport.
    pub fn retry_stats(mut self, stats: rf_transport::RetryStats) -> Self {
        self.retry_stats = Some(stats);
        self
    }

    /// API origin, possibly with a path prefix (default [`DEFAULT_BASE_URL`];
    /// the same value as the official client's `API_BASE_URL`).
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }

    /// The API key (sent as the `api_key` query parameter, never logged).
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// The workspace, to skip the lookup.
    pub fn workspace(mut self, workspace: impl Into<String>) -> Self {
        self.workspace = Some(workspace.into());
        self
    }

    /// Per-request timeout applied to API calls (not to uploads and downloads).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Makes the default transport speak HTTP/2 from a connection's first
    /// byte (see [`rf_transport::ReqwestTransportBuilder::http2_prior_knowledge`]):
    /// for cleartext servers known to speak it, such as the emulator. Over
    /// `https://` HTTP/2 is negotiated without it. No effect with
    /// [`ClientBuilder::transport`].
    pub fn http2_prior_knowledge(mut self, on: bool) -> Self {
        self.http2_prior_knowledge = on;
        self
    }

    /// Builds the client.
    pub fn build(self) -> Result<Client> {
        let api_key = self.api_key.ok_or(Error::InvalidInput {
            what: "client configuration",
            detail: "no API key given; set ROBOFLOW_API_KEY or pass one".into(),
        })?;
        if api_key.is_empty() {
            return Err(Error::InvalidInput {
                what: "client configuration",
                detail: "the API key is empty".into(),
            });
        }
        let raw = self
            .base_url
            .unwrap_or_else(|| DEFAULT_BASE_URL.to_string());
        let base = Url::parse(&raw).map_err(|e| Error::InvalidInput {
            what: "base URL",
            detail: format!("{raw:?}: {e}"),
        })?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(Error::InvalidInput {
                what: "base URL",
                detail: format!("{raw:?} is not an http(s) URL"),
            });
        }
        let (transport, retry_stats) = match self.transport {
            Some(t) => (t, self.retry_stats),
            None => {
                let (t, stats) = default_transport(self.http2_prior_knowledge)?;
                (t, Some(stats))
            }
        };
        let workspace = tokio::sync::OnceCell::new();
        if let Some(ws) = self.workspace {
            let _ = workspace.set(ws);
        }
        Ok(Client {
            inner: Arc::new(Inner {
                transport,
                base,
                api_key,
                workspace,
                timeout: self.timeout,
                retry_stats,
            }),
        })
    }
}

fn default_transport(
    http2_prior_knowledge: bool,
) -> Result<(Arc<dyn Transport>, rf_transport::RetryStats)> {
    let reqwest = rf_transport::ReqwestTransport::builder()
        .http2_prior_knowledge(http2_prior_knowledge)
        .build()
        .map_err(|source| Error::Transport {
            endpoint: Endpoint::CreateHttpClient,
            id: None,
            source: Box::new(source),
        })?;
    let retrying = rf_transport::Retrying::new(reqwest, rf_transport::RetryPolicy::default());
    let stats = retrying.stats();
    Ok((Arc::new(retrying), stats))
}

impl Client {
    /// Starts building a client.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// A client over `transport` for `base_url` with `api_key`.
    pub fn new(
        transport: impl Transport,
        base_url: impl Into<String>,
        api_key: impl Into<String>,
    ) -> Result<Client> {
        Client::builder()
            .transport(transport)
            .base_url(base_url)
            .api_key(api_key)
            .build()
    }

    /// Data Staging endpoints.
    pub fn staging(&self) -> Staging<'_> {
        Staging::new(self)
    }

    /// Batch Processing endpoints.
    pub fn jobs(&self) -> Jobs<'_> {
        Jobs::new(self)
    }

    /// The transport requests go through.
    pub fn transport(&self) -> &Arc<dyn Transport> {
        &self.inner.transport
    }

    /// Retry counters of the transport, when known.
    pub fn retry_stats(&self) -> Option<&rf_transport::RetryStats> {
        self.inner.retry_stats.as_ref()
    }

    /// The API origin.
    pub fn base_url(&self) -> &Url {
        &self.inner.base
    }

    /// The workspace: looked up once with `GET {base}/?api_key=` and cached
    /// (or the one given to the builder).
    pub async fn workspace(&self) -> Result<String> {
        self.inner
            .workspace
            .get_or_try_init(|| self.lookup_workspace())
            .await
            .cloned()
    }

    /// The workspace when it is known without a request: given to the
    /// builder, or looked up already by [`Client::workspace`].
    ///
    /// ```
    /// let client = rf_batch::Client::builder().api_key("k").workspace("ws").build().unwrap();
    /// assert_eq!(client.known_workspace(), Some("ws"));
    /// ```
    pub fn known_workspace(&self) -> Option<&str> {
        self.inner.workspace.get().map(String::as_str)
    }

    /// Asks the server which workspace the API key belongs to
    /// (`GET {base}/?api_key=`), whatever the client holds: to check a
    /// workspace remembered from an earlier process, say. The client keeps
    /// using the workspace it has.
    pub async fn lookup_workspace(&self) -> Result<String> {
        let req = Request::get(self.inner.base.clone()).idempotent(true);
        let info: rf_types::WorkspaceInfo =
            self.call_json(Endpoint::WorkspaceLookup, None, req).await?;
        if info.workspace.is_empty() {
            return Err(Error::InvalidInput {
                what: "workspace lookup answer",
                detail: "the server returned an empty workspace".into(),
            });
        }
        Ok(info.workspace)
    }

    /// `{base}/{prefix...}/{workspace}/{segments...}`, each segment percent-encoded.
    pub(crate) async fn api_url(&self, prefix: [&str; 3], segments: &[&str]) -> Result<Url> {
        self.url_under(&prefix, segments).await
    }

    /// `{base}/{workspace}/{segments...}` (the workspace-level routes, such
    /// as async tasks), each segment percent-encoded.
    pub(crate) async fn workspace_url(&self, segments: &[&str]) -> Result<Url> {
        self.url_under(&[], segments).await
    }

    async fn url_under(&self, prefix: &[&str], segments: &[&str]) -> Result<Url> {
        let ws = self.workspace().await?;
        let mut url = self.inner.base.clone();
        {
            let mut path = url.path_segments_mut().map_err(|()| Error::InvalidInput {
                what: "base URL",
                detail: "cannot hold a path".into(),
            })?;
            path.pop_if_empty();
            path.extend(prefix);
            path.push(&ws);
            path.extend(segments);
        }
        Ok(url)
    }

    /// Sends an API request (adds `api_key` and the timeout) and maps error statuses.
    pub(crate) async fn call(
        &self,
        endpoint: Endpoint,
        id: Option<&str>,
        mut req: Request,
    ) -> Result<Response> {
        req = req.query("api_key", self.inner.api_key.clone());
        if let Some(t) = self.inner.timeout
            && req.timeout.is_none()
        {
            req = req.timeout(t);
        }
        self.send_raw(endpoint, id, req).await
    }

    /// [`Client::call`] with the key in an `Authorization: Bearer` header
    /// instead of the query (how the official `roboflow` client calls the
    /// Asset Library routes), and decodes the JSON answer.
    pub(crate) async fn call_json_bearer<T: DeserializeOwned>(
        &self,
        endpoint: Endpoint,
        id: Option<&str>,
        mut req: Request,
    ) -> Result<T> {
        let bearer =
            HeaderValue::from_str(&format!("Bearer {}", self.inner.api_key)).map_err(|_| {
                Error::InvalidInput {
                    what: "api key",
                    detail: "holds characters an HTTP header cannot carry".into(),
                }
            })?;
        req = req.header(
            rf_transport::HeaderName::from_static("authorization"),
            bearer,
        );
        if let Some(t) = self.inner.timeout
            && req.timeout.is_none()
        {
            req = req.timeout(t);
        }
        let response = self.send_raw(endpoint, id, req).await?;
        decode(endpoint, id, response).await
    }

    /// Sends a request as is (no API key: signed URLs) and maps error statuses.
    pub(crate) async fn send_raw(
        &self,
        endpoint: Endpoint,
        id: Option<&str>,
        req: Request,
    ) -> Result<Response> {
        let response = self
            .inner
            .transport
            .send(req)
            .await
            .map_err(|source| Error::Transport {
                endpoint,
                id: id.map(str::to_string),
                source: Box::new(source),
            })?;
        check_status(endpoint, id, response)
            .await
            .map_err(|e| self.scrub(e))
    }

    /// Masks the API key wherever a server quoted it back in an error body
    /// (in any form, not only as a URL parameter).
    fn scrub(&self, error: Error) -> Error {
        let key = self.inner.api_key.as_str();
        match error {
            Error::Api(mut api) if key.len() >= 4 && api.message.contains(key) => {
                api.message = api.message.replace(key, rf_transport::REDACTED);
                Error::Api(api)
            }
            other => other,
        }
    }

    /// [`Client::call`] and decode the JSON answer.
    pub(crate) async fn call_json<T: DeserializeOwned>(
        &self,
        endpoint: Endpoint,
        id: Option<&str>,
        req: Request,
    ) -> Result<T> {
        let response = self.call(endpoint, id, req).await?;
        decode(endpoint, id, response).await
    }
}

/// Most bytes of an error body quoted in an error message.
const ERROR_BODY_QUOTE: usize = 500;

/// Turns a non-success response into an [`ApiError`]; passes success through.
///
/// This is the one function that maps status codes to domain errors.
pub async fn check_status(
    endpoint: Endpoint,
    id: Option<&str>,
    response: Response,
) -> Result<Response> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let retry_after = rf_transport::parse_retry_after(response.headers(), SystemTime::now());
    let body = response.text().await.unwrap_or_default();
    Err(Error::Api(ApiError {
        kind: ApiErrorKind::from_status(status),
        status: status.as_u16(),
        endpoint,
        id: id.map(str::to_string),
        message: server_message(&body),
        retry_after,
    }))
}

/// The `error` field of a JSON error body, or the start of the raw body,
/// with secrets in quoted URLs masked (servers echo request URLs).
fn server_message(body: &str) -> String {
    rf_transport::redact_url(&quoted_message(body))
}

fn quoted_message(body: &str) -> String {
    #[derive(serde::Deserialize)]
    struct ErrorBody {
        error: serde_json::Value,
    }
    let text = match serde_json::from_str::<ErrorBody>(body) {
        Ok(ErrorBody {
            error: serde_json::Value::String(s),
        }) => s,
        Ok(ErrorBody { error }) => error.to_string(),
        Err(_) if body.trim().is_empty() => "no error message".to_string(),
        Err(_) => body.trim().to_string(),
    };
    if text.len() > ERROR_BODY_QUOTE {
        let mut cut = ERROR_BODY_QUOTE;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        format!("{}...", &text[..cut])
    } else {
        text
    }
}

/// The JSON answer of `endpoint` decoded, or [`Error::Decode`].
async fn decode<T: DeserializeOwned>(
    endpoint: Endpoint,
    id: Option<&str>,
    response: Response,
) -> Result<T> {
    response.json::<T>().await.map_err(|source| Error::Decode {
        endpoint,
        id: id.map(str::to_string),
        source: Box::new(source),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rf_transport::StatusCode;

    #[test]
    fn server_messages() {
        assert_eq!(
            server_message(r#"{"error":"no such batch"}"#),
            "no such batch"
        );
        assert_eq!(server_message(r#"{"error":{"a":1}}"#), r#"{"a":1}"#);
        assert_eq!(server_message("  "), "no error message");
        assert_eq!(server_message("<html>oops</html>"), "<html>oops</html>");
        assert!(server_message(&"x".repeat(2000)).len() < 600);
        assert_eq!(
            server_message(r#"{"error":"bad GET /b?api_key=k3y&x=1"}"#),
            "bad GET /b?api_key=REDACTED&x=1"
        );
    }

    #[test]
    fn kinds() {
        let k = |c| ApiErrorKind::from_status(StatusCode::from_u16(c).unwrap());
        assert_eq!(k(401), ApiErrorKind::Unauthenticated);
        assert_eq!(k(404), ApiErrorKind::NotFound);
        assert_eq!(k(409), ApiErrorKind::Conflict);
        assert_eq!(k(429), ApiErrorKind::RateLimited);
        assert_eq!(k(503), ApiErrorKind::Server);
        assert_eq!(k(422), ApiErrorKind::BadRequest);
    }

    #[test]
    fn debug_redacts_key() {
        let c = Client::builder()
            .transport(rf_transport::MockTransport::new())
            .api_key("super-secret-key")
            .build()
            .unwrap();
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("super-secret-key"), "{dbg}");
        assert!(Client::builder().build().is_err());
    }
}
