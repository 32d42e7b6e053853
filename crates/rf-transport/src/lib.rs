//! `rf-transport`: the pluggable HTTP layer of rf.
//!
//! It moves bytes and knows nothing about batches or jobs. The seam is the
//! [`Transport`] trait — one async method from a [`Request`] to a
//! [`Response`] — with these implementations:
//!
//! * [`ReqwestTransport`]: real HTTP (rustls with the `ring` provider, no
//!   OpenSSL; pooled connections; timeouts; proxies from the environment;
//!   user agent `rf/<version>`);
//! * [`MockTransport`]: scripted answers, a handler-closure fake server, a
//!   record of every request, loud failure on an unexpected one;
//! * [`Retrying`]: wraps any transport with exponential backoff, full jitter
//!   and `Retry-After`;
//! * [`FaultInjecting`]: wraps any transport and fails a seeded share of
//!   requests (429, 5xx, dropped requests, lost answers, delays), for tests.
//!
//! Bodies ([`Body`]) are recipes that can be re-created for a retry and are
//! streamed, so a 10 GB file is never held in memory. Non-2xx answers are
//! [`Response`]s; a [`TransportError`] means no usable answer and carries an
//! [`ErrorKind`] that decides retries.
//!
//! Secrets — the `api_key` query parameter, `Authorization` headers, URL
//! signatures — are masked by one function, [`redact_url`] (and
//! [`redact_header`] on top of it), in every `Debug`/`Display`, error and
//! tracing event this crate produces.
//!
//! # The usual stack
//!
//! ```no_run
//! use rf_transport::{DynTransport, ReqwestTransport, Request, RetryPolicy, Retrying, Transport};
//! use std::sync::Arc;
//!
//! # async fn demo() -> Result<(), rf_transport::TransportError> {
//! let transport: DynTransport =
//!     Arc::new(Retrying::new(ReqwestTransport::new()?, RetryPolicy::default()));
//! let url = url::Url::parse("https://api.roboflow.com/").expect("static URL");
//! let answer = transport
//!     .send(Request::get(url).query("api_key", "..."))
//!     .await?;
//! if answer.status().is_success() {
//!     let info: serde_json::Value = answer.json().await?;
//! #   let _ = info;
//! }
//! # Ok(()) }
//! ```
//!
//! # Observability
//!
//! Tracing events (target `rf_transport::...`), all with the redacted URL:
//! `DEBUG "http response"` (method, url, status, elapsed_ms) and
//! `DEBUG "http request failed"` (kind) from [`ReqwestTransport`];
//! `INFO "retrying request"` (attempt, delay_ms, reason) and
//! `DEBUG "giving up: ..."` from [`Retrying`]; `ERROR` for a request a
//! [`MockTransport`] did not expect.
#![deny(missing_docs)]
#![warn(clippy::unwrap_used)]
#![warn(clippy::too_many_lines)]

mod body;
mod error;
mod faults;
mod mock;
mod redact;
mod request;
mod reqwest_transport;
mod response;
mod retry;
mod tls;
mod transport;
mod util;

pub use async_trait::async_trait;
pub use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};

pub use body::{Body, FILE_CHUNK, MultipartFile, PRODUCER_QUEUE, StreamBody, StreamFactory};
pub use error::{BoxError, ErrorKind, TransportError};
pub use faults::{Fault, FaultCounts, FaultInjecting, FaultPlan};
pub use mock::{MockRule, MockTransport, RecordedPart, RecordedRequest};
pub use redact::{REDACTED, is_secret_header, is_secret_param, redact_header, redact_url};
pub use request::Request;
pub use reqwest_transport::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_IDLE_TIMEOUT, DEFAULT_POOL_IDLE_TIMEOUT,
    DEFAULT_POOL_MAX_IDLE_PER_HOST, ReqwestTransport, ReqwestTransportBuilder, USER_AGENT,
};
pub use response::{MAX_BUFFERED_BODY, Response, ResponseStream};
pub use retry::{
    BUFFER_LIMIT, RecordingSleeper, RetryPolicy, RetryStats, Retrying, Sleeper, TokioSleeper,
    is_retryable_status, parse_retry_after,
};
pub use transport::{DynTransport, Transport};
