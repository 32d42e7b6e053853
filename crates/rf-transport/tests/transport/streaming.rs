//! Large bodies move through the reqwest transport without being held in
//! memory: an upload's producer never gets far ahead of what the server has
//! read, a download is read chunk by chunk as the server writes it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use futures::StreamExt;
use rf_transport::{Body, Request, Transport};
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::support::{self, http, url};

const MIB: u64 = 1024 * 1024;
/// Bound on bytes between producer and server: kernel socket buffers and
/// hyper's buffers, far below the body size.
const MAX_IN_FLIGHT: u64 = 32 * MIB;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_streamed_upload_keeps_bytes_in_flight_bounded() {
    const TOTAL: u64 = 200 * MIB;
    const CHUNK: usize = 64 * 1024;
    let consumed = Arc::new(AtomicU64::new(0));
    let produced = Arc::new(AtomicU64::new(0));
    let max_in_flight = Arc::new(AtomicU64::new(0));
    let (addr, server) = support::counting_sink(consumed.clone()).await;

    let (p, c, m) = (produced.clone(), consumed.clone(), max_in_flight.clone());
    let body = Body::from_stream_factory(Some(TOTAL), move || {
        let (p, c, m) = (p.clone(), c.clone(), m.clone());
        p.store(0, Ordering::SeqCst);
        let chunk = Bytes::from(vec![0x5a; CHUNK]);
        futures::stream::iter(0..TOTAL / CHUNK as u64)
            .map(move |_| {
                let ahead = p
                    .load(Ordering::SeqCst)
                    .saturating_sub(c.load(Ordering::SeqCst));
                m.fetch_max(ahead, Ordering::SeqCst);
                p.fetch_add(CHUNK as u64, Ordering::SeqCst);
                Ok(chunk.clone())
            })
            .boxed()
    });
    let answer = http()
        .send(Request::put(url(&format!("http://{addr}/big"))).body(body))
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let received = server.await.unwrap().unwrap();
    assert_eq!(received.body_bytes, TOTAL);
    assert_eq!(received.header("content-length"), Some(TOTAL.to_string()));
    assert_eq!(received.header("transfer-encoding"), None);
    assert_eq!(produced.load(Ordering::SeqCst), TOTAL);
    let peak = max_in_flight.load(Ordering::SeqCst);
    assert!(
        peak < MAX_IN_FLIGHT,
        "the producer ran {} MiB ahead of the server: the body was buffered",
        peak / MIB
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_sparse_file_is_streamed_with_its_length() {
    const TOTAL: u64 = 200 * MIB;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.bin");
    let f = std::fs::File::create(&path).unwrap();
    f.set_len(TOTAL).unwrap(); // sparse: no disk space, reads as zeros
    drop(f);
    let consumed = Arc::new(AtomicU64::new(0));
    let (addr, server) = support::counting_sink(consumed.clone()).await;
    let body = Body::multipart("file", "big.bin", None, Body::file(&path).await.unwrap());
    let expected_len = body.content_length().unwrap();
    assert!(expected_len > TOTAL);
    let answer = http()
        .send(Request::post(url(&format!("http://{addr}/upload"))).body(body))
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    #[derive(serde::Deserialize)]
    struct Got {
        received: u64,
    }
    assert_eq!(answer.json::<Got>().await.unwrap().received, expected_len);
    let received = server.await.unwrap().unwrap();
    assert_eq!(received.body_bytes, expected_len);
    assert_eq!(
        received.header("content-length"),
        Some(expected_len.to_string())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_download_is_read_chunk_by_chunk() {
    const TOTAL: u64 = 100 * MIB;
    let written = Arc::new(AtomicU64::new(0));
    let (addr, server) = support::generated_download(TOTAL, written.clone()).await;
    let mut answer = http()
        .send(Request::get(url(&format!("http://{addr}/export.tar"))))
        .await
        .unwrap();
    assert_eq!(answer.content_length(), Some(TOTAL));
    let mut read = 0u64;
    let mut chunks = 0u64;
    let mut largest = 0usize;
    let mut peak_ahead = 0u64;
    while let Some(chunk) = answer.chunk().await.unwrap() {
        // Check the content as it arrives (byte i is i % 251).
        for (i, b) in chunk.iter().enumerate() {
            assert_eq!(*b as u64, (read + i as u64) % 251);
        }
        read += chunk.len() as u64;
        chunks += 1;
        largest = largest.max(chunk.len());
        peak_ahead = peak_ahead.max(written.load(Ordering::SeqCst).saturating_sub(read));
    }
    server.await.unwrap().unwrap();
    assert_eq!(read, TOTAL);
    assert!(chunks > 100, "only {chunks} chunks");
    assert!(largest <= 4 * MIB as usize, "a chunk of {largest} bytes");
    assert!(
        peak_ahead < MAX_IN_FLIGHT,
        "the server got {} MiB ahead: the download was buffered",
        peak_ahead / MIB
    );
}

#[tokio::test]
async fn wiremock_download_via_stream() {
    let server = MockServer::start().await;
    let content: Vec<u8> = (0..3_000_000u32).map(|i| (i % 199) as u8).collect();
    Mock::given(path("/file.jpg"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(content.clone()))
        .mount(&server)
        .await;
    let answer = http()
        .send(Request::get(url(&format!("{}/file.jpg", server.uri()))))
        .await
        .unwrap();
    assert_eq!(answer.content_length(), Some(content.len() as u64));
    let mut stream = answer.into_stream();
    let mut got = Vec::new();
    let mut n = 0;
    while let Some(chunk) = stream.next().await {
        got.extend_from_slice(&chunk.unwrap());
        n += 1;
    }
    assert!(n > 1, "the body arrived in one piece");
    assert!(got == content);
}

#[tokio::test]
async fn producer_body_is_rerun_per_attempt_and_bounded() {
    // A producer (like a tar shard writer) can run at most PRODUCER_QUEUE
    // chunks ahead of the consumer.
    let produced = Arc::new(AtomicU64::new(0));
    let p = produced.clone();
    let body = Body::from_producer(None, move |tx| {
        let p = p.clone();
        async move {
            for _ in 0..100 {
                if tx.send(Bytes::from_static(b"0123456789")).await.is_err() {
                    break;
                }
                p.fetch_add(1, Ordering::SeqCst);
            }
            Ok(())
        }
    });
    let mut s = body.stream();
    let first = s.next().await.unwrap().unwrap();
    assert_eq!(first, "0123456789");
    // Let the producer fill the queue, then check it stopped there.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while produced.load(Ordering::SeqCst) < rf_transport::PRODUCER_QUEUE as u64
        && std::time::Instant::now() < deadline
    {
        tokio::task::yield_now().await;
    }
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
    assert!(produced.load(Ordering::SeqCst) <= rf_transport::PRODUCER_QUEUE as u64 + 1);
    drop(s);
    assert_eq!(body.to_bytes().await.unwrap().len(), 1000);
}
