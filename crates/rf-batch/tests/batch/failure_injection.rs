//! Failure injection against the emulator over loopback: a transport that
//! refuses every Nth connection and drops the connection after every Kth
//! shard upload reached the server. The run must complete in one go, losing
//! nothing and duplicating nothing: the emulator counts a resent shard twice,
//! so the exact final count proves it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::common::*;
use rf_batch::ingest::ModeChoice;
use rf_batch::{Client, Pipeline};
use rf_transport::{
    ErrorKind, Method, Request, ReqwestTransport, Response, RetryPolicy, Retrying, Transport,
    TransportError,
};

#[derive(Debug)]
struct Flaky {
    inner: ReqwestTransport,
    calls: AtomicUsize,
    puts: AtomicUsize,
    refuse_every: usize,
    drop_put_every: usize,
    dropped: Arc<AtomicUsize>,
}

#[async_trait::async_trait]
impl Transport for Flaky {
    async fn send(&self, request: Request) -> Result<Response, TransportError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if n.is_multiple_of(self.refuse_every) {
            return Err(request.error(ErrorKind::Connect, "injected: connection refused"));
        }
        let is_put = request.method == Method::PUT;
        let error = request.error(ErrorKind::Interrupted, "injected: connection reset");
        let response = self.inner.send(request).await?;
        if is_put
            && (self.puts.fetch_add(1, Ordering::SeqCst) + 1).is_multiple_of(self.drop_put_every)
        {
            // The server got the whole body and answered; the answer is lost.
            self.dropped.fetch_add(1, Ordering::SeqCst);
            return Err(error);
        }
        Ok(response)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flaky_network_loses_nothing_and_duplicates_nothing() {
    let emu = start_emulator().await;
    let (input, out) = scratch_dirs();
    make_images(input.path(), 90);
    let dropped = Arc::new(AtomicUsize::new(0));
    let flaky = Flaky {
        inner: ReqwestTransport::new().unwrap(),
        calls: AtomicUsize::new(0),
        puts: AtomicUsize::new(0),
        refuse_every: 7,
        drop_put_every: 3,
        dropped: dropped.clone(),
    };
    let retrying = Retrying::new(
        flaky,
        RetryPolicy {
            base_delay: Duration::from_millis(2),
            max_delay: Duration::from_millis(20),
            ..RetryPolicy::default()
        },
    );
    let stats = retrying.stats();
    let client = Client::builder()
        .transport(retrying)
        .retry_stats(stats.clone())
        .base_url(emu.base_url().as_str())
        .api_key(emu.api_key())
        .build()
        .unwrap();
    let mut cfg = config(input.path(), out.path(), "image-properties");
    cfg.plan.mode = ModeChoice::Bulk;
    cfg.plan.max_images_per_shard = 10;
    cfg.upload.concurrency = rf_batch::limit::Concurrency::Fixed(3);

    let report = Pipeline::new(client.clone(), cfg.clone())
        .run()
        .await
        .unwrap_or_else(|e| panic!("the run failed: {e}"));
    assert!(dropped.load(Ordering::SeqCst) >= 3);
    assert!(stats.retries() > 0, "refused connections were retried");
    assert!(report.transport_retries > 0);
    assert_eq!(report.confirmed_count, 90);
    assert_eq!(report.expected_count, 90);
    assert_eq!(service_count(&client, &report.batch_id).await, 90);
    assert!(report.extracted_files > 0);
}
