//! Chaos mode over real loopback HTTP: each kind behaves as documented
//! (whether the handler ran, what the client sees), the stats count every
//! fault, the stats endpoint is never faulted, and the faults follow the seed.

use reqwest::StatusCode;
use rf_emulator::{ChaosConfig, ChaosKind, EmulatorConfig};
use serde_json::json;

use crate::support::outcome::{
    Outcome, always, image_job, png, shard_of, signed_url_details, start, start_with,
};

#[tokio::test]
async fn throttle_answers_429_with_retry_after_and_runs_no_handler() {
    let env = start().await;
    env.chaos(always(ChaosKind::Throttle, 1));
    for i in 0..6 {
        let o = env
            .post(
                &env.ds(&format!("batches/thr-{i}/bulk-upload/image-files")),
                None,
            )
            .await;
        let Outcome::Answer(status, retry_after, _) = &o else {
            panic!("{o:?}")
        };
        assert_eq!(*status, StatusCode::TOO_MANY_REQUESTS);
        let secs: u64 = retry_after
            .as_deref()
            .expect("Retry-After")
            .parse()
            .unwrap();
        assert!(secs <= 1, "Retry-After {secs}");
        assert!(
            o.json()["error"]
                .as_str()
                .unwrap()
                .contains("too many requests")
        );
    }
    // A big upload is read to its end first: the client gets the 429, not a reset.
    env.chaos(None);
    let (url, headers) = env.shard_url("thr-big").await;
    env.chaos(always(ChaosKind::Throttle, 1));
    for _ in 0..3 {
        let o = env.put(&url, &headers, vec![0u8; 16 << 20]).await;
        assert_eq!(o.status(), Some(StatusCode::TOO_MANY_REQUESTS), "{o:?}");
    }
    let stats = env.stats().await;
    assert_eq!(stats.chaos, always(ChaosKind::Throttle, 1));
    assert_eq!(stats.faults[&ChaosKind::Throttle], 9);
    assert_eq!(stats.requests, 10);
    assert_eq!(stats.shard_uploads, 0);
    assert_eq!(stats.workspaces["test-ws"].batches["thr-big"].shards, 0);
    // The throttled requests created no batch: no handler ran.
    assert_eq!(stats.workspaces["test-ws"].batches.len(), 1, "{stats:?}");
    env.0.emu.shutdown().await;
}

#[tokio::test]
async fn server_errors_are_500_502_503_504_and_run_no_handler() {
    let env = start().await;
    env.chaos(always(ChaosKind::ServerError, 2));
    let mut seen = std::collections::BTreeSet::new();
    for i in 0..16 {
        let o = env
            .post(
                &env.ds(&format!("batches/err-{i}/bulk-upload/image-files")),
                None,
            )
            .await;
        let status = o.status().unwrap();
        assert!([500, 502, 503, 504].contains(&status.as_u16()), "{o:?}");
        assert!(o.json()["error"].is_string(), "{o:?}");
        seen.insert(status);
    }
    assert!(seen.len() >= 2, "the status is drawn, not fixed: {seen:?}");
    let stats = env.stats().await;
    assert_eq!(stats.faults[&ChaosKind::ServerError], 16);
    assert!(
        stats
            .workspaces
            .get("test-ws")
            .is_none_or(|w| w.batches.is_empty()),
        "{stats:?}"
    );
    env.0.emu.shutdown().await;
}

#[tokio::test]
async fn drop_request_closes_the_connection_and_applies_nothing() {
    let env = start().await;
    let (url, headers) = env.shard_url("dropreq").await;
    env.chaos(always(ChaosKind::DropRequest, 3));
    assert_eq!(
        env.put(&url, &headers, shard_of(3)).await,
        Outcome::NoAnswer
    );
    let job = image_job("dropreq", "image-properties");
    assert_eq!(
        env.post(&env.bp("jobs/dropreq-job"), Some(job)).await,
        Outcome::NoAnswer
    );
    assert_eq!(env.get(&env.ds("batches"), &[]).await, Outcome::NoAnswer);
    env.chaos(None);
    let stats = env.stats().await;
    assert_eq!(stats.faults[&ChaosKind::DropRequest], 3);
    assert_eq!(stats.shard_uploads, 0);
    assert_eq!(stats.jobs_created, 0);
    let ws = &stats.workspaces["test-ws"];
    let batch = &ws.batches["dropreq"];
    assert_eq!(
        (batch.files, batch.shards),
        (0, 0),
        "a dropped PUT leaves no shard"
    );
    assert!(ws.jobs.is_empty());
    let o = env.get(&env.bp("jobs/dropreq-job"), &[]).await;
    assert_eq!(o.status(), Some(StatusCode::NOT_FOUND));
    // The same URL still works once the faults stop.
    assert_eq!(
        env.put(&url, &headers, shard_of(3)).await.status(),
        Some(StatusCode::OK)
    );
    env.wait_stats("the shard indexed", |s| {
        s.workspaces["test-ws"].batches["dropreq"].files == 3
    })
    .await;
    env.0.emu.shutdown().await;
}

#[tokio::test]
async fn drop_response_applies_the_effect_then_loses_the_answer() {
    let env = start().await;
    let (url, headers) = env.shard_url("droprsp").await;
    env.chaos(always(ChaosKind::DropResponse, 4));
    // A PUT answers with an empty body: the connection drops before the head.
    assert_eq!(
        env.put(&url, &headers, shard_of(3)).await,
        Outcome::NoAnswer
    );
    env.chaos(None);
    let stats = env
        .wait_stats("the shard indexed", |s| {
            s.workspaces["test-ws"].batches["droprsp"].shards_indexed == 1
        })
        .await;
    assert_eq!(stats.shard_uploads, 1);
    assert_eq!(stats.shard_uploads_by_batch["droprsp"], 1);
    assert_eq!(stats.workspaces["test-ws"].batches["droprsp"].files, 3);

    // Retrying the lost PUT replaces the shard: still 3 files, 1 shard.
    assert_eq!(
        env.put(&url, &headers, shard_of(3)).await.status(),
        Some(StatusCode::OK)
    );
    let stats = env
        .wait_stats("the re-sent shard indexed", |s| {
            s.shard_uploads == 2 && s.workspaces["test-ws"].batches["droprsp"].shards_indexed == 1
        })
        .await;
    let b = &stats.workspaces["test-ws"].batches["droprsp"];
    assert_eq!((b.files, b.distinct_names, b.shards), (3, 3, 1), "{b:?}");

    // A JSON answer is cut mid-body: the head arrives, the body does not.
    env.chaos(always(ChaosKind::DropResponse, 4));
    let o = env.get(&env.ds("batches/droprsp/count"), &[]).await;
    assert_eq!(o, Outcome::CutBody(StatusCode::OK));

    // A job start whose answer is lost still created the job ...
    let job = image_job("droprsp", "image-properties");
    let o = env
        .post(&env.bp("jobs/lost-answer"), Some(job.clone()))
        .await;
    assert!(
        matches!(o, Outcome::CutBody(_) | Outcome::NoAnswer),
        "{o:?}"
    );
    env.chaos(None);
    assert_eq!(env.stats().await.jobs_created, 1);
    env.get_ok(&env.bp("jobs/lost-answer"), &[]).await;
    // ... and the retried start is answered as success, without a second job.
    let o = env
        .post(&env.bp("jobs/lost-answer"), Some(job.clone()))
        .await;
    assert_eq!(o.status(), Some(StatusCode::OK), "{o:?}");
    assert_eq!(o.json()["status"], json!("ok"));
    let stats = env.stats().await;
    assert_eq!((stats.jobs_created, stats.job_starts_repeated), (1, 1));
    assert_eq!(stats.workspaces["test-ws"].jobs.len(), 1);
    // A different definition under the same ID is a conflict.
    let other = image_job("droprsp", "mock-detector");
    let o = env.post(&env.bp("jobs/lost-answer"), Some(other)).await;
    assert_eq!(o.status(), Some(StatusCode::CONFLICT), "{o:?}");
    assert_eq!(env.stats().await.jobs_created, 1);

    // A download is cut mid-body; without faults it is whole.
    let list = env.get_ok(&env.ds("batches/droprsp/list"), &[]).await;
    let file = list["filesMetadata"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["fileName"] == json!("img-1.png"))
        .unwrap_or_else(|| panic!("{list}"));
    let dl = file["downloadURL"].as_str().unwrap().to_string();
    env.chaos(always(ChaosKind::DropResponse, 4));
    let o = env.send(env.http.get(&dl)).await;
    assert_eq!(o, Outcome::CutBody(StatusCode::OK));
    env.chaos(None);
    let o = env.send(env.http.get(&dl)).await;
    assert_eq!(o, Outcome::Answer(StatusCode::OK, None, png(2, 2, 1)));
    env.0.emu.shutdown().await;
}

#[tokio::test]
async fn delay_answers_late_but_correctly() {
    let env = start().await;
    env.chaos(always(ChaosKind::Delay, 5));
    let (url, headers) = env.shard_url("late").await;
    assert_eq!(
        env.put(&url, &headers, shard_of(2)).await.status(),
        Some(StatusCode::OK)
    );
    env.chaos(None);
    let stats = env
        .wait_stats("the shard indexed", |s| {
            s.workspaces["test-ws"].batches["late"].files == 2
        })
        .await;
    assert_eq!(stats.faults[&ChaosKind::Delay], 2);
    assert_eq!(stats.shard_uploads, 1);
    env.0.emu.shutdown().await;
}

#[tokio::test]
async fn stats_are_never_faulted_and_need_no_key() {
    let env = start().await;
    env.chaos(Some(ChaosConfig::new(6, 1.0)));
    for _ in 0..25 {
        // `stats()` asserts a 200 with a parsable body.
        let s = env.stats().await;
        assert_eq!(s.requests, 0, "stats requests are not counted");
    }
    assert!(env.stats().await.faults.values().all(|n| *n == 0));
    env.0.emu.shutdown().await;
}

/// Sends the same 40 requests in order and labels each outcome.
async fn run_sequence(seed: u64) -> (Vec<String>, rf_emulator::EmulatorStats) {
    let env = start_with(EmulatorConfig::for_tests().with_chaos(ChaosConfig::new(seed, 0.5))).await;
    let mut labels = Vec::new();
    for _ in 0..40 {
        labels.push(env.get(&env.ds("batches"), &[]).await.label());
    }
    let stats = env.stats().await;
    env.0.emu.shutdown().await;
    (labels, stats)
}

#[tokio::test]
async fn the_same_seed_gives_the_same_faults() {
    let (a, stats) = run_sequence(42).await;
    let (b, _) = run_sequence(42).await;
    assert_eq!(a, b, "same seed, same requests, same faults");
    let (c, _) = run_sequence(43).await;
    assert_ne!(a, c, "another seed, other faults");

    // Every kind occurs, and each outcome matches its kind's count.
    let count = |pred: &dyn Fn(&str) -> bool| a.iter().filter(|l| pred(l)).count() as u64;
    assert_eq!(stats.requests, 40);
    assert_eq!(count(&|l| l == "429"), stats.faults[&ChaosKind::Throttle]);
    assert_eq!(
        count(&|l| l.starts_with('5')),
        stats.faults[&ChaosKind::ServerError]
    );
    assert_eq!(
        count(&|l| l == "no-answer"),
        stats.faults[&ChaosKind::DropRequest]
    );
    assert_eq!(
        count(&|l| l == "cut-200"),
        stats.faults[&ChaosKind::DropResponse]
    );
    for kind in ChaosKind::ALL {
        assert!(stats.faults[&kind] > 0, "{kind} never injected: {a:?}");
    }
    let faults: u64 = stats.faults.values().sum();
    assert_eq!(
        count(&|l| l == "200"),
        40 - faults + stats.faults[&ChaosKind::Delay]
    );
}

#[tokio::test]
async fn an_invalid_chaos_config_is_refused() {
    let env = start().await;
    assert!(
        env.emu
            .state()
            .set_chaos(Some(ChaosConfig::new(1, 2.0)))
            .is_err()
    );
    let none = ChaosConfig {
        kinds: vec![],
        ..ChaosConfig::new(1, 0.5)
    };
    assert!(env.emu.state().set_chaos(Some(none)).is_err());
    let started = rf_emulator::Emulator::start(
        EmulatorConfig::for_tests().with_chaos(ChaosConfig::new(1, -0.1)),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await;
    assert!(started.is_err());
    env.0.emu.shutdown().await;
}

/// Retries `attempt` until it gets a complete answer that is not a 429 or
/// a 5xx (ambiguous outcomes, lost answers included, are simply retried:
/// every call below is idempotent on the emulator).
async fn until_answered<F, Fut>(what: &str, mut attempt: F) -> Outcome
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Outcome>,
{
    for _ in 0..60 {
        let o = attempt().await;
        match o.status() {
            Some(s) if s == StatusCode::TOO_MANY_REQUESTS || s.is_server_error() => {}
            Some(_) if matches!(o, Outcome::Answer(..)) => return o,
            _ => {}
        }
    }
    panic!("{what}: no answer in 60 attempts");
}

#[tokio::test]
async fn a_retrying_client_ends_with_exact_counts_under_30_percent_faults() {
    let env = start().await;
    env.chaos(Some(ChaosConfig {
        seed: 2024,
        rate: 0.3,
        kinds: vec![
            ChaosKind::Throttle,
            ChaosKind::ServerError,
            ChaosKind::DropRequest,
            ChaosKind::DropResponse,
        ],
    }));
    let (shards, per_shard) = (20u8, 3u8);
    for i in 0..shards {
        let slot_url = env.ds("batches/exact/bulk-upload/image-files");
        let slot = until_answered("upload url", || env.post(&slot_url, None)).await;
        let (url, headers) = signed_url_details(&slot.json());
        let members: Vec<(String, Vec<u8>)> = (0..per_shard)
            .map(|j| {
                (
                    format!("s{i}-img{j}.png"),
                    png(2, 2, i.wrapping_mul(7).wrapping_add(j)),
                )
            })
            .collect();
        let tar = crate::support::outcome::tar_of(&members);
        let put = until_answered("shard put", || env.put(&url, &headers, tar.clone())).await;
        assert_eq!(put.status(), Some(StatusCode::OK), "{put:?}");
    }
    let want = u64::from(shards) * u64::from(per_shard);
    env.wait_stats("every image indexed", |s| {
        let b = &s.workspaces["test-ws"].batches["exact"];
        b.files == want && b.shards_pending == 0
    })
    .await;
    let count_url = env.ds("batches/exact/count");
    let count = until_answered("count", || env.get(&count_url, &[])).await;
    assert_eq!(count.json()["count"], json!(want));

    let job = image_job("exact", "image-properties");
    let job_url = env.bp("jobs/exact-job");
    let start = until_answered("job start", || env.post(&job_url, Some(job.clone()))).await;
    assert_eq!(start.status(), Some(StatusCode::OK), "{start:?}");
    let stats = env
        .wait_stats("the job done", |s| {
            s.workspaces["test-ws"].jobs["exact-job"].phase == "succeeded"
        })
        .await;

    let b = &stats.workspaces["test-ws"].batches["exact"];
    assert_eq!(
        (b.files, b.distinct_names),
        (want, want),
        "no loss, no duplicate"
    );
    assert_eq!(b.shards, u64::from(shards), "one shard per uploaded slot");
    assert!(stats.shard_uploads >= u64::from(shards));
    assert_eq!(
        stats.jobs_created, 1,
        "one job, however often the start was sent"
    );
    assert_eq!(stats.workspaces["test-ws"].jobs.len(), 1);
    // Every result downloads whole in the end.
    let output = stats.workspaces["test-ws"]
        .batches
        .iter()
        .filter(|(_, b)| b.output_of_job.is_some() && b.files > 0)
        .map(|(id, _)| id.clone())
        .collect::<Vec<_>>();
    assert!(!output.is_empty(), "{stats:?}");
    for batch in output {
        let list_url = env.ds(&format!("batches/{batch}/list"));
        let list = until_answered("list", || env.get(&list_url, &[])).await;
        for f in list.json()["filesMetadata"].as_array().unwrap() {
            let url = f["downloadURL"].as_str().unwrap().to_string();
            let o = until_answered("download", || env.send(env.http.get(&url))).await;
            let Outcome::Answer(status, _, body) = o else {
                unreachable!()
            };
            assert_eq!(status, StatusCode::OK);
            assert!(!body.is_empty());
        }
    }
    let stats = env.stats().await;
    for kind in [
        ChaosKind::Throttle,
        ChaosKind::ServerError,
        ChaosKind::DropRequest,
        ChaosKind::DropResponse,
    ] {
        assert!(stats.faults[&kind] > 0, "{kind} never injected: {stats:?}");
    }
    env.0.emu.shutdown().await;
}
