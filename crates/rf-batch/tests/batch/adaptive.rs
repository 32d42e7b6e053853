//! The adaptive concurrency limit against the emulator over loopback: under
//! throttling (`429` to a share of requests) it cuts the number in flight
//! instead of raising it, and the run still ends exact. Counts only, no
//! timings.

use std::time::Duration;

use crate::common::{config, make_images, scratch_dirs, start_emulator_with};
use rf_batch::ingest::ModeChoice;
use rf_batch::limit::Concurrency;
use rf_batch::{Client, Pipeline};
use rf_emulator::{ChaosConfig, ChaosKind, EmulatorConfig, RunningEmulator, ShapingConfig};
use rf_transport::{ReqwestTransport, RetryPolicy, Retrying};

/// A client of `emu` whose transport retries up to `max_attempts` times,
/// backs off 1-5 ms and honours at most `retry_after_cap` of a
/// `Retry-After` (so the tests stay fast; the limiter pauses for what the
/// transport honoured), with its retry counters.
fn quick_retry_client(
    emu: &RunningEmulator,
    max_attempts: u32,
    retry_after_cap: Duration,
    seed: u64,
) -> (Client, rf_transport::RetryStats) {
    let policy = RetryPolicy {
        max_attempts,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        retry_after_cap,
        ..RetryPolicy::default()
    };
    let retrying = Retrying::new(ReqwestTransport::new().unwrap(), policy).with_rng_seed(seed);
    let stats = retrying.stats();
    let client = Client::builder()
        .transport(retrying)
        .retry_stats(stats.clone())
        .base_url(emu.base_url().as_str())
        .api_key(emu.api_key())
        .build()
        .unwrap();
    (client, stats)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_cuts_the_limit_and_the_run_stays_exact() {
    let n = 48;
    let chaos = ChaosConfig {
        kinds: vec![ChaosKind::Throttle],
        ..ChaosConfig::new(16, 0.25)
    };
    let emu = start_emulator_with(EmulatorConfig::for_tests().with_chaos(chaos)).await;
    // The emulator asks for up to 1 s; honour at most 20 ms of it, so the
    // test stays fast (the limiter pauses for what the transport honoured).
    let (client, stats) = quick_retry_client(&emu, 20, Duration::from_millis(20), 3);
    let (input, out) = scratch_dirs();
    make_images(input.path(), n);
    let mut cfg = config(input.path(), out.path(), "image-properties");
    cfg.plan.mode = ModeChoice::Single;
    cfg.upload.concurrency = Concurrency::Adaptive {
        initial: 16,
        max: 64,
    };
    let report = Pipeline::new(client, cfg).run().await.unwrap();

    // Exact: every image once, every result on disk, nothing failed.
    let s = emu.state().stats();
    let batch = &s.workspaces[emu.workspace()].batches[&report.batch_id];
    assert_eq!((batch.files, batch.distinct_names), (n as u64, n as u64));
    assert_eq!(report.confirmed_count, n as u64);
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    // Every 429 was a congestion sign, and was sent again (no give-up).
    let throttled = s.faults[&ChaosKind::Throttle];
    assert!(throttled > 0, "{s:?}");
    assert_eq!(stats.congestion(), throttled);
    assert_eq!(stats.gave_up(), 0);
    assert_eq!(report.transport_retries, throttled);
    // The uploads' limit was cut and ended below its peak instead of rising.
    let up = report.upload_concurrency.expect("uploads ran");
    assert!(up.decreases >= 1, "{up:?}");
    assert!(up.settled < up.peak, "{up:?}");
    assert!(up.pauses >= 1, "a Retry-After held new starts: {up:?}");
    let down = report.download_concurrency.expect("downloads ran");
    assert_eq!(down.concurrency, Concurrency::default());
    emu.shutdown().await;
}

/// One single-mode ingest of `n` images at `concurrency` into an emulator
/// that answers 8 requests at once and `429` beyond (`max_in_flight`),
/// every answer 10 ms late so that requests overlap: what the emulator
/// counted, and the upload limit's report.
async fn ingest_against_capacity(
    n: usize,
    concurrency: Concurrency,
) -> (rf_emulator::ShapingStats, rf_batch::limit::LimitReport) {
    let shaping = ShapingConfig {
        latency: Duration::from_millis(10),
        max_in_flight: Some(8),
        ..ShapingConfig::default()
    };
    let emu = start_emulator_with(EmulatorConfig::for_tests().with_shaping(shaping)).await;
    // Retry-After asks for 1 s; honour 10 ms of it. Many attempts: a
    // pinned 64 against a capacity of 8 loses most of them.
    let (client, _) = quick_retry_client(&emu, 1_000, Duration::from_millis(10), 5);
    let (input, out) = scratch_dirs();
    make_images(input.path(), n);
    let mut cfg = config(input.path(), out.path(), "image-properties");
    cfg.plan.mode = ModeChoice::Single;
    cfg.upload.concurrency = concurrency;
    let report = Pipeline::new(client, cfg).run().await.unwrap();
    let s = emu.state().stats();
    let batch = &s.workspaces[emu.workspace()].batches[&report.batch_id];
    assert_eq!((batch.files, batch.distinct_names), (n as u64, n as u64));
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    emu.shutdown().await;
    let up = report.upload_concurrency.expect("uploads ran");
    (s.shaping.expect("shaping is on"), up)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn against_a_full_service_the_adaptive_limit_sends_far_fewer_requests_than_a_pinned_one() {
    let n = 240;
    let (adaptive, up) = ingest_against_capacity(n, Concurrency::default()).await;
    let (pinned, _) = ingest_against_capacity(n, Concurrency::Fixed(64)).await;
    // Both exact (checked inside). The adaptive limit came down towards
    // the capacity, so the service refused far fewer of its requests, and
    // it asked fewer times in all.
    assert!(up.decreases >= 1 && up.settled < 32, "{up:?}");
    assert!(
        adaptive.over_capacity * 2 < pinned.over_capacity,
        "adaptive {adaptive:?}\npinned {pinned:?}"
    );
    assert!(
        adaptive.answers_delayed < pinned.answers_delayed,
        "adaptive {adaptive:?}\npinned {pinned:?}"
    );
}
