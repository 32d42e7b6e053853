//! [`ReqwestTransport`]: real HTTP over reqwest and hyper.
//!
//! * TLS: rustls with the `ring` crypto provider, installed in the client's
//!   own TLS configuration (nothing process-wide), certificates checked by
//!   the platform verifier (the OS trust store, read on the first `https://`
//!   connection, not when the transport is built: plain `http://` never
//!   pays for it); no OpenSSL. HTTP/2 is negotiated by ALPN, HTTP/1.1
//!   otherwise.
//! * Connections are pooled (idle ones kept [`DEFAULT_POOL_IDLE_TIMEOUT`],
//!   at most [`DEFAULT_POOL_MAX_IDLE_PER_HOST`] per host).
//! * Timeouts (defaults): connect [`DEFAULT_CONNECT_TIMEOUT`]; an exchange
//!   that makes no progress for [`DEFAULT_IDLE_TIMEOUT`] fails with
//!   [`ErrorKind::Timeout`] — progress being hyper taking the next chunk of
//!   the request body, the response headers arriving, or a chunk of the
//!   response body arriving; an answer's body that streams slower than
//!   [`MinSpeed::DEFAULT`] (1 KiB/s averaged over 10 s) fails the same way,
//!   so a body that drips never holds a run; no limit on a whole request by default,
//!   because an upload of a 10 GB file may take hours — set one with
//!   [`ReqwestTransportBuilder::request_timeout`] or per request with
//!   [`Request::timeout`](crate::Request::timeout) (it covers the whole
//!   exchange, response body included). reqwest's own `read_timeout` is not
//!   used: it also limits the time until the response headers, counted from
//!   the start of the upload.
//! * Proxies: taken from the environment — `HTTPS_PROXY`, `HTTP_PROXY`,
//!   `ALL_PROXY` and `NO_PROXY` (upper or lower case), as reqwest does —
//!   unless [`ReqwestTransportBuilder::no_proxy`] or an explicit
//!   [`ReqwestTransportBuilder::proxy`] is used. Loopback destinations
//!   (`localhost`, `127.0.0.0/8`, `::1` — the local emulator) are always
//!   reached directly, since a proxy cannot reach this machine's loopback;
//!   an explicit proxy is used for everything.
//! * User agent `rf/<version>`.
//! * Streamed bodies are handed to hyper chunk by chunk; with a known length
//!   they are sent with `Content-Length`, otherwise chunked.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::stream::StreamExt;
use http::{HeaderMap, HeaderValue, Method, header};

use crate::body::Body;
use crate::error::{ErrorKind, TransportError, error_chain};
use crate::pace::{MinSpeed, paced};
use crate::redact::redact_url;
use crate::request::Request;
use crate::response::Response;
use crate::tls::LazyVerifier;
use crate::transport::Transport;

/// Default connect timeout (10 s).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default limit on an exchange making no progress (120 s).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// Default time an idle pooled connection is kept (90 s).
pub const DEFAULT_POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Default number of idle pooled connections per host (32).
pub const DEFAULT_POOL_MAX_IDLE_PER_HOST: usize = 32;

/// The user agent: `rf/<version>`.
pub const USER_AGENT: &str = concat!("rf/", env!("CARGO_PKG_VERSION"));

/// Real HTTP; see the module docs for TLS, pooling, timeouts and proxies.
/// Cloning shares the connection pool.
///
/// ```no_run
/// use rf_transport::{ReqwestTransport, Request, Transport};
/// use std::time::Duration;
///
/// # async fn demo() -> Result<(), rf_transport::TransportError> {
/// let http = ReqwestTransport::builder()
///     .connect_timeout(Duration::from_secs(5))
///     .build()?;
/// let url = url::Url::parse("https://api.roboflow.com/").unwrap();
/// let answer = http.send(Request::get(url).query("api_key", "...")).await?;
/// println!("{}", answer.status());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ReqwestTransport {
    client: reqwest::Client,
    /// For loopback destinations when proxies come from the environment.
    direct_loopback: Option<reqwest::Client>,
    request_timeout: Option<Duration>,
    idle_timeout: Option<Duration>,
    min_speed: Option<MinSpeed>,
}

/// Configures a [`ReqwestTransport`].
#[derive(Debug, Clone)]
pub struct ReqwestTransportBuilder {
    connect_timeout: Duration,
    idle_timeout: Option<Duration>,
    min_speed: Option<MinSpeed>,
    request_timeout: Option<Duration>,
    user_agent: String,
    pool_max_idle_per_host: usize,
    pool_idle_timeout: Option<Duration>,
    proxy: ProxyChoice,
    http2_prior_knowledge: bool,
}

#[derive(Clone)]
enum ProxyChoice {
    Environment,
    None,
    All(String),
}

impl std::fmt::Debug for ProxyChoice {
    /// A proxy URL may carry a password: shown redacted.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProxyChoice::Environment => f.write_str("Environment"),
            ProxyChoice::None => f.write_str("None"),
            ProxyChoice::All(url) => write!(f, "All({:?})", redact_url(url)),
        }
    }
}

impl std::fmt::Debug for ReqwestTransport {
    /// Only rf's own settings (the client's Debug may show proxy URLs).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReqwestTransport")
            .field("request_timeout", &self.request_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("min_speed", &self.min_speed)
            .finish_non_exhaustive()
    }
}

impl Default for ReqwestTransportBuilder {
    fn default() -> Self {
        ReqwestTransportBuilder {
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            idle_timeout: Some(DEFAULT_IDLE_TIMEOUT),
            min_speed: Some(MinSpeed::DEFAULT),
            request_timeout: None,
            user_agent: USER_AGENT.to_string(),
            pool_max_idle_per_host: DEFAULT_POOL_MAX_IDLE_PER_HOST,
            pool_idle_timeout: Some(DEFAULT_POOL_IDLE_TIMEOUT),
            proxy: ProxyChoice::Environment,
            http2_prior_knowledge: false,
        }
    }
}

impl ReqwestTransportBuilder {
    /// Limit on establishing a connection (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Limit on an exchange making no progress (default 120 s; `None`: no
    /// limit); see the module docs for what counts as progress.
    pub fn idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// The least an answer's body must deliver while it streams (default
    /// [`MinSpeed::DEFAULT`], 1 KiB/s over 10 s; `None`: no floor): a body
    /// that drips a byte a second keeps making progress, so the idle
    /// timeout alone would wait for it forever.
    pub fn min_speed(mut self, floor: Option<MinSpeed>) -> Self {
        self.min_speed = floor;
        self
    }

    /// Limit on every whole request unless it sets its own (default none).
    pub fn request_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// The `User-Agent` header (default `rf/<version>`).
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    /// Idle connections kept per host (default 32).
    pub fn pool_max_idle_per_host(mut self, n: usize) -> Self {
        self.pool_max_idle_per_host = n;
        self
    }

    /// How long an idle connection is kept (default 90 s; `None`: forever).
    pub fn pool_idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.pool_idle_timeout = timeout;
        self
    }

    /// Ignores proxy settings from the environment.
    pub fn no_proxy(mut self) -> Self {
        self.proxy = ProxyChoice::None;
        self
    }

    /// Sends every request through the proxy at `url` (instead of the
    /// environment's settings).
    pub fn proxy(mut self, url: impl Into<String>) -> Self {
        self.proxy = ProxyChoice::All(url.into());
        self
    }

    /// Speaks HTTP/2 on every connection from its first byte, without
    /// negotiating (default off). For cleartext servers known to speak it
    /// (`rf emulator serve`, an h2c proxy): over `https://`, HTTP/2 is
    /// already negotiated (ALPN) wherever the server offers it, and a
    /// server that does not would fail every request with this on.
    pub fn http2_prior_knowledge(mut self, on: bool) -> Self {
        self.http2_prior_knowledge = on;
        self
    }

    /// Builds the transport.
    pub fn build(self) -> Result<ReqwestTransport, TransportError> {
        // One verifier for both clients: the trust store is read once, on
        // the first `https://` connection (see `tls`).
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = Arc::new(LazyVerifier::new(provider.clone()));
        let client = self.client(&self.proxy, &provider, &verifier)?;
        // A proxy cannot reach this machine's loopback: with proxies from the
        // environment, loopback destinations use a direct client.
        let direct = match self.proxy {
            ProxyChoice::Environment => {
                Some(self.client(&ProxyChoice::None, &provider, &verifier)?)
            }
            _ => None,
        };
        Ok(ReqwestTransport {
            client,
            direct_loopback: direct,
            request_timeout: self.request_timeout,
            idle_timeout: self.idle_timeout,
            min_speed: self.min_speed,
        })
    }

    fn client(
        &self,
        proxy: &ProxyChoice,
        provider: &Arc<rustls::crypto::CryptoProvider>,
        verifier: &Arc<LazyVerifier>,
    ) -> Result<reqwest::Client, TransportError> {
        let build_err = |what: &str, e: &dyn std::fmt::Display| {
            TransportError::new(
                ErrorKind::Other,
                format!("cannot set up the HTTP client: {what}: {e}"),
            )
        };
        let mut tls = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| build_err("TLS versions", &e))?
            .dangerous()
            .with_custom_certificate_verifier(verifier.clone())
            .with_no_client_auth();
        tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let mut builder = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .connect_timeout(self.connect_timeout)
            .user_agent(self.user_agent.clone())
            .pool_max_idle_per_host(self.pool_max_idle_per_host)
            .pool_idle_timeout(self.pool_idle_timeout);
        if self.http2_prior_knowledge {
            builder = builder.http2_prior_knowledge();
        }
        builder = match proxy {
            ProxyChoice::Environment => builder,
            ProxyChoice::None => builder.no_proxy(),
            ProxyChoice::All(url) => builder.proxy(
                reqwest::Proxy::all(url.as_str())
                    .map_err(|e| build_err("invalid proxy URL", &e.without_url()))?,
            ),
        };
        builder
            .build()
            .map_err(|e| build_err("reqwest", &error_chain(&e.without_url())))
    }
}

impl ReqwestTransport {
    /// A transport with the documented defaults.
    pub fn new() -> Result<ReqwestTransport, TransportError> {
        ReqwestTransport::builder().build()
    }

    /// Starts configuring a transport.
    pub fn builder() -> ReqwestTransportBuilder {
        ReqwestTransportBuilder::default()
    }

    /// Wraps a `reqwest::Client` configured elsewhere (its TLS, proxy and
    /// timeout settings apply as they are; the idle timeout is the default).
    pub fn from_client(client: reqwest::Client) -> ReqwestTransport {
        ReqwestTransport {
            client,
            direct_loopback: None,
            request_timeout: None,
            idle_timeout: Some(DEFAULT_IDLE_TIMEOUT),
            min_speed: Some(MinSpeed::DEFAULT),
        }
    }
}

/// The request's headers plus its body's content type, if it sets none.
fn request_headers(request: &Request) -> Result<HeaderMap, TransportError> {
    let mut headers = request.headers.clone();
    if let Some(ct) = request.body.content_type()
        && !headers.contains_key(header::CONTENT_TYPE)
    {
        let value = HeaderValue::try_from(ct)
            .map_err(|e| request.error(ErrorKind::Request, e.to_string()))?;
        headers.insert(header::CONTENT_TYPE, value);
    }
    Ok(headers)
}

/// The body reqwest sends (and its length header). A streamed body touches
/// `progress` on every chunk and records its first error in `failure`, so
/// that a failed send is reported as the body's failure.
fn request_body(
    request: &Request,
    headers: &mut HeaderMap,
    progress: &Progress,
    failure: &Arc<Mutex<Option<String>>>,
) -> Option<reqwest::Body> {
    match &request.body {
        Body::Empty => {
            if !matches!(request.method, Method::GET | Method::HEAD | Method::OPTIONS)
                && !headers.contains_key(header::CONTENT_LENGTH)
            {
                headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
            }
            None
        }
        Body::Bytes(b) | Body::Json(b) => Some(reqwest::Body::from(b.clone())),
        streamed => {
            if let Some(len) = streamed.content_length() {
                headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
            }
            let failure = failure.clone();
            let pulled = progress.clone();
            let stream = streamed.stream().map(move |item| {
                pulled.touch();
                if let Err(e) = &item
                    && let Ok(mut slot) = failure.lock()
                {
                    slot.get_or_insert_with(|| e.to_string());
                }
                item
            });
            Some(reqwest::Body::wrap_stream(stream))
        }
    }
}

/// What a request is, for logs and errors.
struct Exchange {
    method: Method,
    redacted: String,
    started: Instant,
}

impl ReqwestTransport {
    /// An answer (any status) as a streamed [`Response`] whose body reads
    /// fail as interruptions and, with an idle timeout, stall out.
    fn response(&self, answer: reqwest::Response, exchange: Exchange) -> Response {
        let status = answer.status();
        tracing::debug!(
            method = %exchange.method,
            url = %exchange.redacted,
            status = status.as_u16(),
            elapsed_ms = exchange.started.elapsed().as_millis() as u64,
            "http response"
        );
        let headers = answer.headers().clone();
        let stream = answer.bytes_stream().map(|item| {
            item.map_err(|e| {
                // reqwest reports a broken body as a "decode" error;
                // we do no content decoding, so it is an interruption.
                let kind = if e.is_timeout() {
                    ErrorKind::Timeout
                } else {
                    ErrorKind::Interrupted
                };
                TransportError::new(
                    kind,
                    format!(
                        "reading the answer failed: {}",
                        error_chain(&e.without_url())
                    ),
                )
            })
        });
        let response = match (self.idle_timeout, self.min_speed) {
            (None, None) => Response::from_stream(status, headers, stream),
            (idle, speed) => Response::from_stream(status, headers, paced(stream, idle, speed)),
        };
        response.with_redacted_request(exchange.method, exchange.redacted)
    }
}

/// A failed send: the body's own failure if it had one, else reqwest's
/// error classified.
fn send_error(
    e: reqwest::Error,
    failure: &Mutex<Option<String>>,
    exchange: Exchange,
) -> TransportError {
    let body_error = failure.lock().ok().and_then(|mut s| s.take());
    let e = e.without_url();
    let (kind, message) = match body_error {
        Some(body_error) => (ErrorKind::Body, body_error),
        None => (classify(&e), error_chain(&e)),
    };
    tracing::debug!(
        method = %exchange.method,
        url = %exchange.redacted,
        kind = ?kind,
        elapsed_ms = exchange.started.elapsed().as_millis() as u64,
        "http request failed"
    );
    TransportError::new(kind, message).with_redacted_request(exchange.method, exchange.redacted)
}

#[async_trait::async_trait]
impl Transport for ReqwestTransport {
    async fn send(&self, request: Request) -> Result<Response, TransportError> {
        let url = request.full_url();
        let mut headers = request_headers(&request)?;
        let body_failure: Arc<Mutex<Option<String>>> = Arc::default();
        let progress = Progress::new();
        let body = request_body(&request, &mut headers, &progress, &body_failure);
        let client = match &self.direct_loopback {
            Some(direct) if is_loopback(&url) => direct,
            _ => &self.client,
        };
        let mut builder = client.request(request.method.clone(), url).headers(headers);
        if let Some(body) = body {
            builder = builder.body(body);
        }
        if let Some(t) = request.timeout.or(self.request_timeout) {
            builder = builder.timeout(t);
        }
        let exchange = Exchange {
            method: request.method.clone(),
            redacted: request.redacted_url(),
            started: Instant::now(),
        };
        let sent = match self.idle_timeout {
            Some(idle) => progress.watch(idle, builder.send()).await,
            None => Some(builder.send().await),
        };
        match sent {
            Some(Ok(answer)) => Ok(self.response(answer, exchange)),
            Some(Err(e)) => Err(send_error(e, &body_failure, exchange)),
            None => {
                let idle = self.idle_timeout.unwrap_or_default();
                tracing::debug!(method = %exchange.method, url = %exchange.redacted, "http request stalled");
                Err(TransportError::new(
                    ErrorKind::Timeout,
                    format!("no progress for {}s", idle.as_secs_f64()),
                )
                .with_redacted_request(exchange.method, exchange.redacted))
            }
        }
    }
}

/// When the exchange last made progress.
#[derive(Clone)]
struct Progress(Arc<Mutex<tokio::time::Instant>>);

impl Progress {
    fn new() -> Progress {
        Progress(Arc::new(Mutex::new(tokio::time::Instant::now())))
    }

    fn touch(&self) {
        if let Ok(mut last) = self.0.lock() {
            *last = tokio::time::Instant::now();
        }
    }

    fn last(&self) -> tokio::time::Instant {
        self.0
            .lock()
            .map(|l| *l)
            .unwrap_or_else(|_| tokio::time::Instant::now())
    }

    /// Runs `fut`, or gives up (`None`) once nothing progressed for `idle`.
    async fn watch<F: std::future::Future>(&self, idle: Duration, fut: F) -> Option<F::Output> {
        let mut fut = std::pin::pin!(fut);
        loop {
            let deadline = self.last() + idle;
            let timer = std::pin::pin!(tokio::time::sleep_until(deadline));
            match futures::future::select(fut.as_mut(), timer).await {
                futures::future::Either::Left((out, _)) => return Some(out),
                futures::future::Either::Right(((), _)) => {
                    if self.last() + idle <= tokio::time::Instant::now() {
                        return None;
                    }
                }
            }
        }
    }
}

/// Whether `url` points at this machine (`localhost`, 127.0.0.0/8, `::1`).
fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost")
        }
        None => false,
    }
}

fn classify(e: &reqwest::Error) -> ErrorKind {
    if e.is_connect() {
        ErrorKind::Connect
    } else if e.is_timeout() {
        ErrorKind::Timeout
    } else if e.is_builder() {
        ErrorKind::Request
    } else if e.is_decode() {
        ErrorKind::Decode
    } else if e.is_body() || e.is_request() {
        ErrorKind::Interrupted
    } else {
        ErrorKind::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        let is = |s: &str| is_loopback(&url::Url::parse(s).unwrap());
        assert!(is("http://127.0.0.1:8080/x"));
        assert!(is("http://127.1.2.3/"));
        assert!(is("http://[::1]:9/"));
        assert!(is("http://localhost/"));
        assert!(is("http://LOCALHOST./"));
        assert!(is("http://emu.localhost/"));
        assert!(!is("https://api.roboflow.com/"));
        assert!(!is("http://10.0.0.1/"));
        assert!(!is("http://localhost.example.com/"));
    }

    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);
    impl std::fmt::Display for Layer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }
    impl std::error::Error for Layer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|l| l as _)
        }
    }

    #[test]
    fn error_chains_join_causes_and_drop_repeats() {
        let e = Layer(
            "error sending request",
            Some(Box::new(Layer(
                "tcp connect error: refused",
                Some(Box::new(Layer("refused", None))),
            ))),
        );
        assert_eq!(
            error_chain(&e),
            "error sending request: tcp connect error: refused"
        );
    }
}
