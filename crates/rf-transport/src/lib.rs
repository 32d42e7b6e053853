#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![warn(clippy::unwrap_used)]
#![warn(clippy::too_many_lines)]

mod body;
mod error;
mod faults;
mod mock;
mod pace;
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
pub use pace::MinSpeed;
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
