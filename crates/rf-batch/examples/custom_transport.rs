//! A transport of your own handed to the client: this one counts requests
//! per method and delegates to reqwest. Anything implementing
//! `rf_transport::Transport` works: a proxy, a recorder, a fake server.
//!
//! Run: `cargo run -p rf-batch --example custom_transport`
#![allow(clippy::print_stdout)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rf_batch::{Client, Pipeline, RunConfig};
use rf_emulator::{Emulator, EmulatorConfig};
use rf_transport::{Method, Request, Response, Transport, TransportError};

#[derive(Debug, Default)]
struct Counts {
    get: AtomicUsize,
    post: AtomicUsize,
    put: AtomicUsize,
}

#[derive(Debug)]
struct Counting<T> {
    inner: T,
    counts: Arc<Counts>,
}

#[async_trait::async_trait]
impl<T: Transport> Transport for Counting<T> {
    async fn send(&self, request: Request) -> Result<Response, TransportError> {
        let counter = match request.method {
            Method::GET => &self.counts.get,
            Method::POST => &self.counts.post,
            _ => &self.counts.put,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        self.inner.send(request).await
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The emulator's own HTTP client needs a rustls crypto provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let emu = Emulator::start(EmulatorConfig::for_tests(), "127.0.0.1:0".parse()?).await?;
    let counts = Arc::new(Counts::default());
    let transport = Counting {
        inner: rf_transport::ReqwestTransport::new()?,
        counts: counts.clone(),
    };
    let client = Client::new(transport, emu.base_url().as_str(), emu.api_key())?;
    let samples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../samples/images");
    let out = std::env::temp_dir().join(format!("rf-custom-transport-{}", std::process::id()));
    let report = Pipeline::new(client, RunConfig::new(&samples, &out, "image-properties"))
        .run()
        .await?;
    println!(
        "{} items processed with {} GET, {} POST, {} PUT requests",
        report.confirmed_count,
        counts.get.load(Ordering::Relaxed),
        counts.post.load(Ordering::Relaxed),
        counts.put.load(Ordering::Relaxed)
    );
    emu.shutdown().await;
    Ok(())
}
