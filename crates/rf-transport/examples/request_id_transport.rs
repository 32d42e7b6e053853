//! A custom transport built on rf-transport's public API: a decorator that
//! stamps every request with an `x-request-id` header and counts requests,
//! wrapped around any other transport (here a `MockTransport` acting as a
//! tiny fake server), with `Retrying` on top.
//!
//! Run with `cargo run -p rf-transport --example request_id_transport`.
#![allow(clippy::print_stdout)]

use std::sync::atomic::{AtomicU64, Ordering};

use rf_transport::{
    HeaderName, HeaderValue, Method, MockTransport, Request, Response, RetryPolicy, Retrying,
    Transport, TransportError, async_trait,
};

/// Adds `x-request-id: rf-<n>` to every request, then hands it on.
#[derive(Debug)]
struct RequestIds<T> {
    inner: T,
    next: AtomicU64,
}

#[async_trait]
impl<T: Transport> Transport for RequestIds<T> {
    async fn send(&self, request: Request) -> Result<Response, TransportError> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let id = HeaderValue::try_from(format!("rf-{n}"))
            .map_err(|e| request.error(rf_transport::ErrorKind::Request, e.to_string()))?;
        self.inner
            .send(request.header(HeaderName::from_static("x-request-id"), id))
            .await
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), TransportError> {
    let server = MockTransport::new();
    server
        .on(Method::GET, "/ws/batches/b1/count")
        .times(1)
        .respond(503, "warming up");
    server
        .on(Method::GET, "/ws/batches/b1/count")
        .respond_json(200, &serde_json::json!({"count": 42}));

    let transport = Retrying::new(
        RequestIds {
            inner: server.clone(),
            next: AtomicU64::new(1),
        },
        RetryPolicy::default(),
    );
    let url = url::Url::parse("https://api.example/ws/batches/b1/count").expect("static URL");
    let request = Request::get(url).query("api_key", "my-secret-key");
    println!("sending {request}");
    let answer = transport.send(request).await?;
    println!(
        "status {} after {} attempts",
        answer.status(),
        answer.attempts()
    );
    println!("body {}", answer.text().await?);
    for seen in server.requests() {
        println!(
            "server saw {} {} with x-request-id {:?}",
            seen.method,
            seen.path,
            seen.header("x-request-id")
        );
    }
    Ok(())
}
