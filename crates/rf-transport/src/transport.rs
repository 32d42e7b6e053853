//! The [`Transport`] seam: one async method from [`Request`] to [`Response`].

use std::fmt::Debug;
use std::sync::Arc;

use crate::error::TransportError;
use crate::request::Request;
use crate::response::Response;

/// Sends HTTP requests. Implement it to put rf on any HTTP stack, a fake
/// server or a recorder.
///
/// Contract:
///
/// * every answer the server gave, whatever its status, is `Ok(Response)`;
///   `Err` means no usable answer (see [`crate::ErrorKind`]);
/// * the body may be streamed: use [`crate::Body::stream`] and do not
///   buffer it if you can avoid it;
/// * errors name the request through [`Request::error`] or
///   [`TransportError::with_request`], which redact the URL.
///
/// A custom transport needs only this crate's public API:
///
/// ```
/// use rf_transport::{
///     async_trait, Body, ErrorKind, HeaderMap, Request, Response, StatusCode, Transport,
///     TransportError,
/// };
///
/// /// Answers every request with the size of its body, as JSON.
/// #[derive(Debug)]
/// struct Echo;
///
/// #[async_trait]
/// impl Transport for Echo {
///     async fn send(&self, request: Request) -> Result<Response, TransportError> {
///         if request.url.scheme() != "echo" {
///             return Err(request.error(ErrorKind::Connect, "only echo: URLs are served"));
///         }
///         let body = request
///             .body
///             .to_bytes()
///             .await
///             .map_err(|e| request.error(ErrorKind::Body, e.to_string()))?;
///         let answer = format!(r#"{{"received": {}}}"#, body.len());
///         Ok(Response::from_bytes(StatusCode::OK, HeaderMap::new(), answer)
///             .with_request(&request.method, &request.url))
///     }
/// }
///
/// # async fn demo() -> Result<(), TransportError> {
/// #[derive(serde::Deserialize)]
/// struct Received { received: usize }
///
/// let url = url::Url::parse("echo://local/upload").unwrap();
/// let answer = Echo.send(Request::post(url).body(Body::from_bytes("12345"))).await?;
/// assert_eq!(answer.json::<Received>().await?.received, 5);
/// # Ok(()) }
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(demo()).unwrap();
/// ```
#[async_trait::async_trait]
pub trait Transport: Send + Sync + Debug + 'static {
    /// Sends `request` and returns the server's answer, whatever its status.
    async fn send(&self, request: Request) -> Result<Response, TransportError>;
}

/// A shared, type-erased transport.
pub type DynTransport = Arc<dyn Transport>;

#[async_trait::async_trait]
impl<T: Transport + ?Sized> Transport for Arc<T> {
    async fn send(&self, request: Request) -> Result<Response, TransportError> {
        (**self).send(request).await
    }
}

#[async_trait::async_trait]
impl<T: Transport + ?Sized> Transport for Box<T> {
    async fn send(&self, request: Request) -> Result<Response, TransportError> {
        (**self).send(request).await
    }
}
