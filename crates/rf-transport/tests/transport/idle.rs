//! The reqwest transport's no-progress (idle) timeout: a stalled upload or
//! download fails with `Timeout`; a slow upload that keeps moving does not;
//! a download that drips (progress, but far too little) fails on the speed
//! floor.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use rf_transport::{Body, ErrorKind, MinSpeed, Request, ReqwestTransport, Transport};

use super::support::{self, url};

fn with_idle(idle: Duration) -> ReqwestTransport {
    ReqwestTransport::builder()
        .no_proxy()
        .idle_timeout(Some(idle))
        .build()
        .unwrap()
}

#[tokio::test]
async fn upload_the_server_stops_reading_times_out() {
    let addr = support::stalled_reader().await;
    const CHUNK: usize = 256 * 1024;
    let body = Body::from_stream_factory(Some(256 * CHUNK as u64), || {
        let chunk = Bytes::from(vec![1u8; CHUNK]);
        futures::stream::iter((0..256).map(move |_| Ok(chunk.clone()))).boxed()
    });
    let started = Instant::now();
    let err = with_idle(Duration::from_millis(300))
        .send(Request::put(url(&format!("http://{addr}/stuck"))).body(body))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(err.to_string().contains("no progress"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn slow_upload_that_keeps_moving_succeeds() {
    let consumed = Arc::new(AtomicU64::new(0));
    let (addr, server) = support::counting_sink(consumed).await;
    // 10 chunks, 70 ms apart: 700 ms in all, never 350 ms without progress.
    let body = Body::from_stream_factory(Some(10 * 1000), || {
        futures::stream::iter(0..10)
            .then(|_| async {
                tokio::time::sleep(Duration::from_millis(70)).await;
                Ok(Bytes::from(vec![2u8; 1000]))
            })
            .boxed()
    });
    let started = Instant::now();
    let answer = with_idle(Duration::from_millis(350))
        .send(Request::put(url(&format!("http://{addr}/slow"))).body(body))
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert!(started.elapsed() > Duration::from_millis(350));
    assert_eq!(server.await.unwrap().unwrap().body_bytes, 10_000);
}

#[tokio::test]
async fn download_that_stalls_times_out() {
    let addr = support::stalled_answer(1_000_000, 1000).await;
    let mut answer = with_idle(Duration::from_millis(300))
        .send(Request::get(url(&format!("http://{addr}/big"))))
        .await
        .unwrap();
    let mut got = 0;
    let err = loop {
        match answer.chunk().await {
            Ok(Some(c)) => got += c.len(),
            Ok(None) => panic!("a stalled body must not end"),
            Err(e) => break e,
        }
    };
    assert_eq!(got, 1000);
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(
        err.to_string().contains(&format!("GET http://{addr}/big")),
        "{err}"
    );
}

#[tokio::test]
async fn download_that_drips_fails_on_the_speed_floor() {
    // A byte every 20 ms: progress all the time, 50 bytes/s.
    let addr = support::dripping_answer(100_000, Duration::from_millis(20)).await;
    let transport = ReqwestTransport::builder()
        .no_proxy()
        .min_speed(Some(MinSpeed {
            bytes_per_sec: 1000,
            window: Duration::from_millis(300),
        }))
        .build()
        .unwrap();
    let mut answer = transport
        .send(Request::get(url(&format!("http://{addr}/drip"))))
        .await
        .unwrap();
    let err = loop {
        match answer.chunk().await {
            Ok(Some(_)) => {}
            Ok(None) => panic!("a dripping body must not be read to its end"),
            Err(e) => break e,
        }
    };
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(
        err.to_string().contains("under the floor of 1000 bytes/s"),
        "{err}"
    );
}
