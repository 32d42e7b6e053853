//! Orchestration logic over rf-transport's `MockTransport`: count-check
//! polling and its timeout report, job progress derived from stages and tasks
//! (as the official client computes it), job failure, retries through `Retrying`.

use std::time::Duration;

use rf_batch::wait::{PollOptions, wait_for_count, wait_for_job};
use rf_batch::{CancellationToken, Client, Error};
use rf_transport::{Method, MockTransport, RecordingSleeper, RetryPolicy, Retrying};
use serde_json::json;

const DS: &str = "/data-staging/v1/external/ws";
const BP: &str = "/batch-processing/v1/external/ws";

fn mock() -> MockTransport {
    let m = MockTransport::new();
    m.on(Method::GET, "/")
        .query("api_key", "k")
        .respond_json(200, &json!({"workspace": "ws"}));
    m
}

fn client(m: &MockTransport) -> Client {
    Client::new(m.clone(), "http://api.test", "k").unwrap()
}

fn quick(timeout_ms: u64) -> PollOptions {
    PollOptions {
        initial_interval: Duration::from_millis(1),
        max_interval: Duration::from_millis(5),
        multiplier: 2.0,
        timeout: Some(Duration::from_millis(timeout_ms)),
    }
}

#[tokio::test]
async fn count_check_polls_until_the_batch_is_complete() {
    let m = mock();
    for c in [0, 3] {
        m.on(Method::GET, format!("{DS}/batches/b1/count"))
            .times(1)
            .respond_json(200, &json!({"count": c}));
    }
    m.on(Method::GET, format!("{DS}/batches/b1/count"))
        .respond_json(200, &json!({"count": 5}));
    let mut seen = Vec::new();
    let count = wait_for_count(
        &client(&m),
        "b1",
        5,
        &quick(5_000),
        &CancellationToken::new(),
        |c| seen.push(c),
    )
    .await
    .unwrap();
    assert_eq!(count, 5);
    assert_eq!(seen, [0, 3, 5]);
    let counts = m.requests_to(&Method::GET, &format!("{DS}/batches/b1/count"));
    assert_eq!(counts.len(), 3);
    assert!(counts.iter().all(|r| r.query_value("api_key") == Some("k")));
    m.assert_no_unexpected();
}

#[tokio::test]
async fn count_timeout_reports_every_shard_and_the_failed_files() {
    let m = mock();
    m.on(Method::GET, format!("{DS}/batches/b1/count"))
        .respond_json(200, &json!({"count": 498}));
    m.on(Method::GET, format!("{DS}/batches/b1/shards"))
        .respond_json(
            200,
            &json!({"shards": [
            {"shardId": "s-1", "statusName": "shard-ingested", "statusType": "info",
             "eventTimestamp": "2025-06-01T02:03:40Z", "shardObjectsCount": 250},
            {"shardId": "s-2", "statusName": "ingest-failed-partially", "statusType": "error",
             "eventTimestamp": "2025-06-01T02:03:41Z", "shardObjectsCount": 250,
             "statusMetadata": {"failedFiles": [
                {"fileName": "cam__0007.jpg", "reason": "file-size-limit-exceeded"},
                {"fileName": "cam__0101.jpg", "reason": "decode error"}]}}],
            "nextPageToken": null}),
        );
    let err = wait_for_count(
        &client(&m),
        "b1",
        500,
        &quick(30),
        &CancellationToken::new(),
        |_| {},
    )
    .await
    .unwrap_err();
    let Error::CountTimeout(t) = &err else {
        panic!("unexpected {err}");
    };
    assert_eq!((t.expected, t.counted), (500, 498));
    assert_eq!(t.shards.len(), 2);
    assert_eq!(
        t.failed_files,
        [
            "cam__0007.jpg (file-size-limit-exceeded)",
            "cam__0101.jpg (decode error)"
        ]
    );
    let text = err.to_string();
    assert!(text.contains("498 of 500"), "{text}");
    assert!(text.contains("2 shards (1 failed)"), "{text}");
    assert!(text.contains("s-2 error/ingest-failed-partially"), "{text}");
}

fn job(stage: &str, terminal: bool, error: bool) -> serde_json::Value {
    json!({"job": {"jobId": "j1", "name": "j1", "jobDefinition": {}, "currentStage": stage,
        "plannedStages": ["processing", "export"], "error": error, "isTerminal": terminal,
        "lastNotification": if error {"workflow crashed"} else {"ok"},
        "createdAt": "2025-06-01T03:00:00Z", "lastUpdate": "2025-06-01T03:00:00Z"}})
}

#[tokio::test]
async fn job_progress_follows_stages_and_tasks() {
    let m = mock();
    m.on(Method::GET, format!("{BP}/jobs/j1"))
        .times(1)
        .respond_json(200, &job("processing", false, false));
    m.on(Method::GET, format!("{BP}/jobs/j1"))
        .respond_json(200, &job("export", true, false));
    m.on(Method::GET, format!("{BP}/jobs/j1/stages"))
        .respond_json(
            200,
            &json!({"stages": [{
            "processingStageId": "st-1", "processingStageName": "processing", "tasksNumber": 4,
            "outputBatches": [], "startTimestamp": "2025-06-01T03:00:05Z", "notification": {},
            "statusType": "info", "lastEventTimestamp": "2025-06-01T03:00:05Z"}]}),
        );
    m.on(Method::GET, format!("{BP}/jobs/j1/stages/st-1/tasks"))
        .respond_json(200, &json!({"tasks": [
            {"taskId": "a", "notification": "", "statusType": "SUCCESS", "progress": 1.0, "eventTimestamp": "2025-06-01T03:00:05Z"},
            {"taskId": "b", "notification": "", "statusType": "processing-error", "progress": 0.3, "eventTimestamp": "2025-06-01T03:00:05Z"},
            {"taskId": "c", "notification": "", "statusType": "info", "progress": 0.5, "eventTimestamp": "2025-06-01T03:00:05Z"}],
            "nextPageToken": null}));
    let mut snapshots = Vec::new();
    let last = wait_for_job(
        &client(&m),
        "j1",
        &quick(5_000),
        &CancellationToken::new(),
        |p| snapshots.push(p.clone()),
    )
    .await
    .unwrap();
    let first = &snapshots[0];
    assert_eq!(first.stage.as_deref(), Some("processing"));
    assert_eq!(
        (
            first.tasks_total,
            first.tasks_waiting,
            first.tasks_running,
            first.tasks_succeeded,
            first.tasks_failed
        ),
        (4, 1, 1, 1, 1)
    );
    // (1 + 1 + 0.5) / 4 tasks; processing is the first of two stages
    assert!((first.stage_progress - 0.625).abs() < 1e-9, "{first:?}");
    assert!((first.overall - 0.3125).abs() < 1e-9, "{first:?}");
    assert!(last.is_terminal && !last.error);
    assert_eq!(last.overall, 1.0);
    assert_eq!(snapshots.len(), 2);
}

#[tokio::test]
async fn failed_job_is_an_error_with_its_message() {
    let m = mock();
    m.on(Method::GET, format!("{BP}/jobs/j1"))
        .respond_json(200, &job("processing", true, true));
    let err = wait_for_job(
        &client(&m),
        "j1",
        &quick(1_000),
        &CancellationToken::new(),
        |_| {},
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::JobFailed { .. }), "{err}");
    assert!(err.to_string().contains("workflow crashed"), "{err}");
}

#[tokio::test]
async fn busy_answers_are_retried_by_the_retry_layer() {
    let m = mock();
    m.on(Method::GET, format!("{DS}/batches/b1/count"))
        .times(2)
        .respond(503, "busy");
    m.on(Method::GET, format!("{DS}/batches/b1/count"))
        .respond_json(200, &json!({"count": 1}));
    let retrying =
        Retrying::new(m.clone(), RetryPolicy::default()).with_sleeper(RecordingSleeper::new());
    let stats = retrying.stats();
    let c = Client::builder()
        .transport(retrying)
        .retry_stats(stats.clone())
        .base_url("http://api.test")
        .api_key("k")
        .build()
        .unwrap();
    assert_eq!(c.staging().count("b1", None).await.unwrap(), 1);
    assert_eq!(stats.retries(), 2);
    assert_eq!(c.retry_stats().unwrap().retries(), 2);
}

#[tokio::test]
async fn cancellation_stops_a_wait_at_once() {
    let m = mock();
    m.on(Method::GET, format!("{DS}/batches/b1/count"))
        .respond_json(200, &json!({"count": 0}));
    let cancel = CancellationToken::new();
    cancel.cancel();
    let err = wait_for_count(
        &client(&m),
        "b1",
        1,
        &PollOptions::default(),
        &cancel,
        |_| {},
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::Cancelled));
}

/// A failed job as `GET .../jobs/j1` answers it, after `restarts` restarts.
fn failed_job(restarts: usize) -> serde_json::Value {
    let mut j = job("processing", true, true);
    j["job"]["restartParametersOverride"] = json!(vec![json!({}); restarts]);
    j
}

/// Restarts job `j1` (no overrides) over `m`.
async fn restart_j1(m: &MockTransport) -> Result<rf_batch::job::JobRestart, Error> {
    rf_batch::job::restart_job(&client(m), "j1", &rf_types::ParametersOverride::default()).await
}

#[tokio::test]
async fn restart_whose_answer_is_lost_is_confirmed_by_reading_the_job_not_resent() {
    let m = mock();
    m.on(Method::GET, format!("{BP}/jobs/j1"))
        .times(1)
        .respond_json(200, &failed_job(0));
    m.on(Method::POST, format!("{BP}/jobs/j1/restart"))
        .fail(rf_transport::ErrorKind::Interrupted);
    m.on(Method::GET, format!("{BP}/jobs/j1"))
        .respond_json(200, &failed_job(1));
    let outcome = restart_j1(&m).await.unwrap();
    assert_eq!(outcome, rf_batch::job::JobRestart::RestartedAnswerLost);
    let posts = m.requests_to(&Method::POST, &format!("{BP}/jobs/j1/restart"));
    assert_eq!(
        posts.len(),
        1,
        "a restart that took effect is not sent again"
    );
    m.assert_no_unexpected();
}

#[tokio::test]
async fn restart_that_did_not_take_effect_is_sent_again() {
    let m = mock();
    m.on(Method::POST, format!("{BP}/jobs/j1/restart"))
        .times(1)
        .fail(rf_transport::ErrorKind::Timeout);
    m.on(Method::POST, format!("{BP}/jobs/j1/restart"))
        .respond_json(200, &json!({"status": "restarted"}));
    m.on(Method::GET, format!("{BP}/jobs/j1"))
        .respond_json(200, &failed_job(0));
    let outcome = restart_j1(&m).await.unwrap();
    assert_eq!(
        outcome,
        rf_batch::job::JobRestart::Restarted(json!({"status": "restarted"}))
    );
    let posts = m.requests_to(&Method::POST, &format!("{BP}/jobs/j1/restart"));
    assert_eq!(posts.len(), 2);
    // Before, and after the failed attempt.
    assert_eq!(
        m.requests_to(&Method::GET, &format!("{BP}/jobs/j1")).len(),
        2
    );
}

#[tokio::test]
async fn restart_refused_by_the_service_is_reported_once() {
    let m = mock();
    m.on(Method::GET, format!("{BP}/jobs/j1"))
        .respond_json(200, &failed_job(2));
    m.on(Method::POST, format!("{BP}/jobs/j1/restart"))
        .respond_json(
            409,
            &json!({"error": "job \"j1\" is still running; abort it before restarting"}),
        );
    let err = restart_j1(&m).await.unwrap_err();
    assert!(err.is_api(rf_batch::ApiErrorKind::Conflict), "{err}");
    assert!(err.to_string().contains("still running"), "{err}");
    let posts = m.requests_to(&Method::POST, &format!("{BP}/jobs/j1/restart"));
    assert_eq!(posts.len(), 1, "a refusal is not retried");
}

#[tokio::test]
async fn restart_that_keeps_failing_stops_after_three_attempts() {
    let m = mock();
    m.on(Method::GET, format!("{BP}/jobs/j1"))
        .respond_json(200, &failed_job(0));
    m.on(Method::POST, format!("{BP}/jobs/j1/restart"))
        .fail(rf_transport::ErrorKind::Interrupted);
    let err = restart_j1(&m).await.unwrap_err();
    assert!(err.to_string().contains("restart job"), "{err}");
    let posts = m.requests_to(&Method::POST, &format!("{BP}/jobs/j1/restart"));
    assert_eq!(posts.len(), 3);
}

/// [`mock`], also describing `out` as a simple batch.
fn out_batch_mock() -> MockTransport {
    let m = mock();
    m.on(Method::GET, format!("{DS}/batches/out")).respond_json(
        200,
        &json!({"batch": {"displayName": "out", "batchId": "out", "batchType": "simple-batch",
            "batchContentType": "images", "createdDate": "2025-06-01T02:00:11Z",
            "expiryDate": "2025-06-08T02:00:11Z"}}),
    );
    m
}

/// A simple output batch `out` listed in three pages (`a`, `b`; `c`; `d`),
/// each file served at `http://files.test/d/<name>`; with
/// `second_page_fails`, the second page is refused.
fn export_mock(second_page_fails: bool) -> MockTransport {
    let m = out_batch_mock();
    let entry = |name: &str| {
        json!({"downloadURL": format!("http://files.test/d/{name}"), "fileName": name,
            "contentType": "application/json"})
    };
    m.on(Method::GET, format!("{DS}/batches/out/list"))
        .query("nextPageToken", "p2")
        .respond_json(
            if second_page_fails { 404 } else { 200 },
            &if second_page_fails {
                json!({"error": "page token expired"})
            } else {
                json!({"filesMetadata": [entry("c.json")], "nextPageToken": "p3"})
            },
        );
    m.on(Method::GET, format!("{DS}/batches/out/list"))
        .query("nextPageToken", "p3")
        .respond_json(
            200,
            &json!({"filesMetadata": [entry("d.json")], "nextPageToken": null}),
        );
    m.on(Method::GET, format!("{DS}/batches/out/list"))
        .respond_json(
            200,
            &json!({"filesMetadata": [entry("a.json"), entry("b.json")], "nextPageToken": "p2"}),
        );
    for name in ["a.json", "b.json", "c.json", "d.json"] {
        m.on(Method::GET, format!("/d/{name}"))
            .respond(200, format!("{{\"file\": \"{name}\"}}"));
    }
    m
}

fn export_manifest() -> rf_batch::state::Manifest {
    rf_batch::state::Manifest::new(
        rf_batch::state::RunIdentity {
            input_dir: std::path::PathBuf::new(),
            batch_id: "out".into(),
            workflow_id: String::new(),
            kind: rf_batch::ingest::MediaKind::Image,
        },
        rf_batch::ingest::UploadMode::Single,
    )
}

/// Streams batch `out` into `dir` (manifest saved as `dir/state.json`).
async fn export_out(
    client: &Client,
    dir: &std::path::Path,
    manifest: &mut rf_batch::state::Manifest,
    settings: &rf_batch::export::DownloadSettings,
) -> Result<rf_batch::export::DownloadSummary, Error> {
    let mut state = rf_batch::state::ManifestFile::new(manifest.clone(), dir.join("state.json"));
    let target = rf_batch::export::DownloadTarget {
        out_dir: dir.to_path_buf(),
        settings: settings.clone(),
    };
    let summary = rf_batch::export::download_stream(
        &rf_batch::Context::new(client.clone()),
        rf_batch::export::export_files(client, "out", &[]),
        &target,
        &mut state,
    )
    .await;
    *manifest = state.into_inner();
    summary
}

#[tokio::test]
async fn export_streams_the_listing_into_the_downloads() {
    let m = export_mock(false);
    let client = client(&m);
    let out = tempfile::tempdir().unwrap();
    let mut manifest = export_manifest();
    let settings = rf_batch::export::DownloadSettings {
        concurrency: rf_batch::limit::Concurrency::Fixed(1),
        ..Default::default()
    };
    let summary = export_out(&client, out.path(), &mut manifest, &settings)
        .await
        .unwrap();
    assert_eq!((summary.listed, summary.files, summary.already), (4, 4, 0));
    for name in ["a.json", "b.json", "c.json", "d.json"] {
        assert!(out.path().join(name).is_file(), "{name}");
    }
    // The listing is read at most one page ahead of the downloads: the
    // second page is fetched while the first one is used, the third only
    // once the downloads reached the second (one at a time here: after the
    // first file was downloaded). It is never held whole.
    let order: Vec<String> = m
        .requests()
        .iter()
        .map(|r| {
            let token = r.query_value("nextPageToken").unwrap_or("p1");
            let path = r.url.path();
            if path.ends_with("/list") {
                format!("list {token}")
            } else {
                path.to_string()
            }
        })
        .filter(|p| p.starts_with("list") || p.starts_with("/d/"))
        .collect();
    let third_page = order.iter().position(|p| p == "list p3").unwrap();
    let first_download = order.iter().position(|p| p == "/d/a.json").unwrap();
    assert!(first_download < third_page, "{order:?}");

    // Nothing per file was kept in memory: the records are in the journal,
    // and a re-run (which loads the manifest) downloads nothing.
    assert!(manifest.export.downloads.is_empty());
    let state = out.path().join("state.json");
    let mut manifest = rf_batch::state::Manifest::load(&state).unwrap().unwrap();
    assert_eq!(manifest.export.downloads.len(), 4);
    let summary = export_out(&client, out.path(), &mut manifest, &settings)
        .await
        .unwrap();
    assert_eq!((summary.listed, summary.files, summary.already), (4, 0, 4));
}

#[tokio::test]
async fn a_listing_error_mid_export_keeps_what_was_downloaded() {
    let m = export_mock(true);
    let client = client(&m);
    let out = tempfile::tempdir().unwrap();
    let state = out.path().join("state.json");
    let mut manifest = export_manifest();
    let err = export_out(&client, out.path(), &mut manifest, &Default::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("page token expired"), "{err}");
    // The first page's files are on disk and saved in the manifest, so a
    // re-run fetches only the rest.
    let saved = rf_batch::state::Manifest::load(&state).unwrap().unwrap();
    let mut keys: Vec<_> = saved.export.downloads.keys().cloned().collect();
    keys.sort();
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(out.path().join("a.json").is_file() && out.path().join("b.json").is_file());
}

/// A simple output batch `out` of one page: each file served at
/// `http://files.test/d/<name>` with its body and an announced
/// `Content-Length` (a length above the body's is a transfer cut short).
fn export_mock_of(files: &[(&str, Vec<u8>, usize)]) -> MockTransport {
    let m = out_batch_mock();
    let entries: Vec<_> = files
        .iter()
        .map(|(name, _, _)| {
            json!({"downloadURL": format!("http://files.test/d/{name}"), "fileName": name,
                "contentType": "application/octet-stream"})
        })
        .collect();
    m.on(Method::GET, format!("{DS}/batches/out/list"))
        .respond_json(
            200,
            &json!({"filesMetadata": entries, "nextPageToken": null}),
        );
    for (name, body, announced) in files {
        m.on(Method::GET, format!("/d/{name}"))
            .response_header("content-length", &announced.to_string())
            .respond(200, body.clone());
    }
    m
}

/// The names directly in `dir`, sorted.
fn names_in(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn small_and_large_files_land_whole_and_a_short_one_never_gets_its_name() {
    // Small files are written where they are received, larger ones stream
    // to a blocking writer: both keep the same guarantees.
    let small = b"{\"small\": true}".to_vec();
    let large: Vec<u8> = (0..700 * 1024).map(|i| (i % 251) as u8).collect();
    let good = [
        ("small.json", small.clone(), small.len()),
        ("large.bin", large.clone(), large.len()),
    ];
    let mut all = good.to_vec();
    all.push(("short-small.json", small.clone(), small.len() + 10));
    all.push(("short-large.bin", large.clone(), large.len() + 1));
    let m = export_mock_of(&all);
    let client = client(&m);
    let out = tempfile::tempdir().unwrap();
    let settings = rf_batch::export::DownloadSettings {
        attempts: 2,
        retry_delay: Duration::ZERO,
        ..Default::default()
    };
    let mut manifest = export_manifest();
    let summary = export_out(&client, out.path(), &mut manifest, &settings)
        .await
        .unwrap();
    assert_eq!((summary.listed, summary.files), (4, 2));
    let mut failed: Vec<_> = summary.failures.iter().map(|(f, _)| f.clone()).collect();
    failed.sort();
    assert_eq!(failed, ["short-large.bin", "short-small.json"]);
    assert_eq!(summary.retried, 2, "each short file was fetched twice");
    assert_eq!(std::fs::read(out.path().join("small.json")).unwrap(), small);
    assert_eq!(std::fs::read(out.path().join("large.bin")).unwrap(), large);
    // No temporary left, and the short files have no name at all.
    assert_eq!(
        names_in(out.path()),
        [
            "large.bin",
            "small.json",
            "state.json",
            "state.json.downloads"
        ]
    );

    // Served whole now: the re-run fetches only the two that failed.
    let m = export_mock_of(&[
        good[0].clone(),
        good[1].clone(),
        ("short-small.json", small.clone(), small.len()),
        ("short-large.bin", large.clone(), large.len()),
    ]);
    let client = rf_batch::Client::new(m.clone(), "http://api.test", "k").unwrap();
    let mut manifest = rf_batch::state::Manifest::load(&out.path().join("state.json"))
        .unwrap()
        .unwrap();
    let summary = export_out(&client, out.path(), &mut manifest, &settings)
        .await
        .unwrap();
    assert_eq!((summary.listed, summary.files, summary.already), (4, 2, 2));
    assert!(summary.failures.is_empty(), "{:?}", summary.failures);
    let fetched: Vec<String> = m
        .requests()
        .iter()
        .map(|r| r.url.path().to_string())
        .filter(|p| p.starts_with("/d/"))
        .collect();
    assert_eq!(fetched.len(), 2, "{fetched:?}");
    assert!(fetched.iter().all(|p| p.contains("short-")), "{fetched:?}");
    assert_eq!(
        std::fs::read(out.path().join("short-large.bin")).unwrap(),
        large
    );
    assert_eq!(
        std::fs::read(out.path().join("short-small.json")).unwrap(),
        small
    );
}

#[tokio::test]
async fn a_run_over_a_state_directory_in_use_is_refused_before_any_request() {
    let input = tempfile::tempdir().unwrap();
    std::fs::write(input.path().join("a.jpg"), b"x").unwrap();
    let out = tempfile::tempdir().unwrap();
    let state = out.path().join(".rf-state");
    let held = rf_batch::state::StateLock::acquire(&state, "another tool").unwrap();
    let m = MockTransport::new();
    let config = rf_batch::RunConfig::new(input.path(), out.path(), "wf");
    let err = rf_batch::Pipeline::new(client(&m), config.clone())
        .run()
        .await
        .unwrap_err();
    let Error::State(rf_batch::state::StateError::InUse { holder, .. }) = &err else {
        panic!("{err:?}");
    };
    assert_eq!(holder.owner.as_deref(), Some("another tool"));
    assert_eq!(holder.pid, Some(std::process::id()));
    assert!(m.requests().is_empty(), "{:?}", m.requests());
    // Nothing of the run was written beside the lock.
    let names: Vec<_> = std::fs::read_dir(&state)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["lock"]);
    drop(held);
    // Released, the directory is free: this run now gets past the lock (and
    // fails on the first request, which this mock does not answer).
    let err = rf_batch::Pipeline::new(client(&m), config)
        .run()
        .await
        .unwrap_err();
    assert!(!matches!(err, Error::State(_)), "{err:?}");
    assert!(!m.requests().is_empty());
}
