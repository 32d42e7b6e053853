//! Network shaping over real loopback HTTP: what `/_emulator/stats` says
//! was applied (answers delayed, bytes paced each way, waits accounted,
//! connections capped). Counters only: timings belong to benchmarks.

use std::time::Duration;

use reqwest::StatusCode;
use rf_emulator::{ChaosConfig, ChaosKind, EmulatorConfig, ShapingConfig, ShapingStats};

use crate::support::{DEADLINE, start_with};

/// A video of `len` bytes (an MP4 `ftyp` box, then filler).
fn mp4(len: usize) -> Vec<u8> {
    let mut v = vec![0, 0, 0, 0x18];
    v.extend_from_slice(b"ftypisom\0\0\0\0isomiso2");
    v.resize(len, 7);
    v
}

fn shaping_of(env: &crate::support::Env) -> ShapingStats {
    env.emu.state().stats().shaping.expect("shaping is on")
}

#[tokio::test]
async fn signed_transfers_pass_the_buckets_and_every_answer_is_delayed() {
    // 8 Mbit/s = 1 MB/s a direction: the 300 kB video outgrows the
    // 64 KiB burst both ways, so both buckets must impose waits.
    let shaping = ShapingConfig {
        latency: Duration::from_millis(2),
        latency_jitter: Duration::from_millis(3),
        bandwidth_mbps: Some(8.0),
        seed: 5,
        ..ShapingConfig::default()
    };
    let env = start_with(EmulatorConfig::for_tests().with_shaping(shaping)).await;
    let video = mp4(300_000);
    let (url, headers) = env.signed_url("sh", "upload/video", Some("v.mp4")).await;
    let (s, b) = env.put(&url, &headers, video.clone()).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (_, list) = env.get(&env.ds("batches/sh/list"), &[]).await;
    let download = list["filesMetadata"][0]["downloadURL"].as_str().unwrap();
    let (s, got) = env.download(download).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(got, video, "the shaped download is the file, whole");

    let stats = env.emu.state().stats();
    let sh = stats.shaping.clone().expect("shaping is on");
    assert_eq!((sh.bandwidth_mbps, sh.latency_ms), (Some(8.0), 2.0));
    assert_eq!(sh.answers_delayed, stats.requests, "one delay per answer");
    assert_eq!(stats.requests, 4);
    assert!(
        sh.latency_added_ms >= 8.0 && sh.latency_added_ms <= 20.0,
        "{sh:?}"
    );
    assert!(sh.bytes_in >= video.len() as u64, "{sh:?}");
    assert!(sh.bytes_out >= video.len() as u64, "{sh:?}");
    assert!(sh.wait_in_ms > 0.0 && sh.wait_out_ms > 0.0, "{sh:?}");
    assert!(sh.connections_accepted >= 1);
    env.emu.shutdown().await;
}

#[tokio::test]
async fn shaping_combines_with_chaos_and_skips_the_stats_endpoint() {
    let shaping = ShapingConfig {
        latency: Duration::from_millis(1),
        ..ShapingConfig::default()
    };
    let chaos = ChaosConfig {
        kinds: vec![ChaosKind::Throttle],
        ..ChaosConfig::new(3, 1.0)
    };
    let config = EmulatorConfig::for_tests()
        .with_shaping(shaping)
        .with_chaos(chaos);
    let env = start_with(config).await;
    for _ in 0..5 {
        let (s, _) = env.get(&env.ds("batches"), &[]).await;
        assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    }
    let (s, _) = env
        .get(&format!("{}_emulator/stats", env.base()), &[])
        .await;
    assert_eq!(s, StatusCode::OK);
    let stats = env.emu.state().stats();
    assert_eq!(stats.faults[&ChaosKind::Throttle], 5);
    let sh = stats.shaping.expect("on");
    assert_eq!(sh.answers_delayed, 5, "throttled answers are late too");
    assert_eq!(
        (sh.bytes_in, sh.bytes_out),
        (0, 0),
        "no bandwidth cap: nothing paced"
    );
    env.emu.shutdown().await;
}

#[tokio::test]
async fn a_connection_beyond_the_cap_waits_for_one_to_close() {
    let shaping = ShapingConfig {
        max_connections: Some(1),
        ..ShapingConfig::default()
    };
    let env = start_with(EmulatorConfig::for_tests().with_shaping(shaping)).await;
    let held = tokio::net::TcpStream::connect(env.emu.local_addr())
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while shaping_of(&env).connections_waited == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{:?}",
            shaping_of(&env)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(shaping_of(&env).connections_open, 1);
    let url = env.ds("batches");
    let http = env.http.clone();
    let second = tokio::spawn(async move { http.get(url).send().await.map(|r| r.status()) });
    drop(held);
    let status = tokio::time::timeout(DEADLINE, second)
        .await
        .expect("served once the first connection closed")
        .unwrap()
        .unwrap();
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "no key given: but answered"
    );
    let sh = shaping_of(&env);
    assert_eq!(sh.connections_accepted, 2, "{sh:?}");
    assert_eq!(sh.max_connections, Some(1));
    env.emu.shutdown().await;
}

#[tokio::test]
async fn a_request_beyond_the_capacity_gets_429_while_one_is_in_the_works() {
    let shaping = ShapingConfig {
        max_in_flight: Some(1),
        ..ShapingConfig::default()
    };
    let env = start_with(EmulatorConfig::for_tests().with_shaping(shaping)).await;
    let (url, headers) = env.signed_url("cap", "upload/video", Some("v.mp4")).await;
    // An upload whose body is held open: the request stays in the works.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(1);
    let body = reqwest::Body::wrap_stream(tokio_stream_of(rx));
    let mut held = env.http.put(&url).body(body);
    for (k, v) in &headers {
        held = held.header(k, v);
    }
    let held = tokio::spawn(held.send());
    tx.send(Ok(mp4(1_000))).await.unwrap();
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while shaping_of(&env).in_flight == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{:?}",
            shaping_of(&env)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (status, body) = env.get(&env.ds("batches"), &[]).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(shaping_of(&env).over_capacity, 1);
    drop(tx);
    let done = tokio::time::timeout(DEADLINE, held)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(done.status(), StatusCode::OK);
    let (status, _) = env.get(&env.ds("batches"), &[]).await;
    assert_eq!(status, StatusCode::OK, "room again once the upload ended");
    let sh = shaping_of(&env);
    assert_eq!(
        (sh.over_capacity, sh.in_flight_peak, sh.max_in_flight),
        (1, 2, Some(1))
    );
    env.emu.shutdown().await;
}

/// The chunks received on `rx`, as a stream.
fn tokio_stream_of<T: Send + 'static>(
    rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> + Send + 'static {
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) })
}
