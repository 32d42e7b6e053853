//! Faults and idempotency at the mock level (fast, many seeds): the whole
//! pipeline over the in-memory fake service (`common/fake.rs`, which counts a
//! resent shard twice) behind `rf_transport::FaultInjecting` (429, 5xx,
//! dropped requests, lost answers, delays) and `Retrying`; and job starts
//! whose answer is lost, answered `409`, or conflicting, through the fake and
//! through wiremock (exact request shapes).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::common::fake::FakeService;
use crate::common::{config, make_images, scratch_dirs};
use rf_batch::ingest::{MediaKind, ModeChoice};
use rf_batch::job::{JobSettings, JobStart, build_definition, start_job};
use rf_batch::{Client, Error, Pipeline, RunConfig};
use rf_transport::{
    ErrorKind, Fault, FaultInjecting, FaultPlan, Method, Request, Response, RetryPolicy, Retrying,
    StatusCode, Transport, TransportError,
};
use rf_types::{BatchId, JobId};
use serde_json::json;
use wiremock::matchers::{body_json, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Fast retries, so that a test never waits long.
fn fast_policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 8,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(10),
        ..RetryPolicy::default()
    }
}

/// A client over `retrying`, counting its retries in the run report.
fn client_over<T: Transport + 'static>(retrying: Retrying<T>, base_url: &str, key: &str) -> Client {
    let stats = retrying.stats();
    Client::builder()
        .transport(retrying)
        .retry_stats(stats)
        .base_url(base_url)
        .api_key(key)
        .build()
        .unwrap()
}

fn chaos_client(fake: &FakeService, seed: u64, rate: f64) -> (Client, rf_transport::FaultCounts) {
    let mut plan = FaultPlan::new(seed, rate, Fault::ALL.into());
    plan.delay = Duration::from_millis(1);
    let chaos = FaultInjecting::new(fake.clone(), plan);
    let counts = chaos.counts();
    let retrying = Retrying::new(chaos, fast_policy()).with_rng_seed(seed);
    let client = client_over(retrying, fake.base_url(), "fake-key");
    (client, counts)
}

fn chaos_config(input: &std::path::Path, out: &std::path::Path, mode: ModeChoice) -> RunConfig {
    let mut c = config(input, out, "wf");
    c.plan.mode = mode;
    c.plan.max_images_per_shard = 6;
    c.upload.concurrency = rf_batch::limit::Concurrency::Fixed(3);
    c.upload.attempts = 4;
    c.download.attempts = 5;
    c.count_poll = crate::common::fast_poll(20);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipeline_under_twenty_percent_faults_loses_and_duplicates_nothing() {
    for (seed, mode, n) in [
        (1, ModeChoice::Bulk, 60),
        (2, ModeChoice::Bulk, 60),
        (3, ModeChoice::Bulk, 45),
        (4, ModeChoice::Single, 12),
        (5, ModeChoice::Bulk, 60),
        (6, ModeChoice::Bulk, 30),
        (7, ModeChoice::Single, 8),
        (8, ModeChoice::Bulk, 60),
        (9, ModeChoice::Bulk, 24),
        (10, ModeChoice::Bulk, 60),
        (11, ModeChoice::Single, 10),
        (12, ModeChoice::Bulk, 42),
    ] {
        let fake = FakeService::new();
        let (input, out) = scratch_dirs();
        make_images(input.path(), n);
        let (client, faults) = chaos_client(&fake, seed, 0.2);
        let cfg = chaos_config(input.path(), out.path(), mode);
        let report = Pipeline::new(client, cfg)
            .run()
            .await
            .unwrap_or_else(|e| panic!("seed {seed}: the run failed: {e}"));
        let st = fake.state.lock().unwrap();
        // Exact count, no duplicates: every item was ingested exactly once.
        assert_eq!(report.confirmed_count, n as u64, "seed {seed}");
        assert_eq!(st.count(&report.batch_id), n as u64, "seed {seed}");
        let items = &st.items[&report.batch_id];
        assert_eq!(items.len(), n, "seed {seed}");
        assert!(items.values().all(|&c| c == 1), "seed {seed}: {items:?}");
        // One job, and every result on disk.
        assert_eq!(st.jobs.len(), 1, "seed {seed}");
        let results = std::fs::read_dir(out.path().join("results/results"))
            .unwrap()
            .count();
        assert_eq!(results, n, "seed {seed}");
        // The faults happened and the report counts what they cost.
        assert!(faults.total() > 0, "seed {seed}");
        assert!(report.retries > 0, "seed {seed}");
        assert_eq!(
            report.retries,
            report.transport_retries + report.upload_retries + report.download_retries
        );
        assert!(report.failures.is_empty(), "{:?}", report.failures);
    }
}

/// Forwards to the fake service, answers `409` to the create of a job that
/// already exists (as a stricter service may), and loses the answer of the
/// first `n` job creates after the fake acted on them.
#[derive(Debug, Clone)]
struct StrictJobs {
    fake: FakeService,
    lose_creates: Arc<AtomicUsize>,
    creates: Arc<AtomicUsize>,
}

#[async_trait::async_trait]
impl Transport for StrictJobs {
    async fn send(&self, request: Request) -> Result<Response, TransportError> {
        if !is_job_create(&request) {
            return self.fake.send(request).await;
        }
        self.creates.fetch_add(1, Ordering::SeqCst);
        let job = request
            .url
            .path()
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string();
        if self.fake.state.lock().unwrap().jobs.contains_key(&job) {
            let mut h = rf_transport::HeaderMap::new();
            h.insert("content-type", "application/json".parse().unwrap());
            return Ok(Response::from_bytes(
                StatusCode::CONFLICT,
                h,
                r#"{"error":"job exists"}"#,
            ));
        }
        let lost = request.error(ErrorKind::Interrupted, "answer lost");
        let answer = self.fake.send(request).await?;
        if self
            .lose_creates
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(lost);
        }
        Ok(answer)
    }
}

#[tokio::test]
async fn job_start_after_a_lost_answer_follows_the_one_job() {
    let fake = FakeService::new();
    let strict = StrictJobs {
        fake: fake.clone(),
        lose_creates: Arc::new(AtomicUsize::new(1)),
        creates: Arc::new(AtomicUsize::new(0)),
    };
    let retrying = Retrying::new(strict.clone(), fast_policy());
    let client = client_over(retrying, fake.base_url(), "fake-key");
    let (input, out) = scratch_dirs();
    make_images(input.path(), 8);
    let mut cfg = chaos_config(input.path(), out.path(), ModeChoice::Bulk);
    cfg.job_id = Some(JobId::new("job-lost-answer").unwrap());
    let report = Pipeline::new(client, cfg).run().await.unwrap();
    assert_eq!(report.job_id, "job-lost-answer");
    // The create was sent twice (the first answer was lost), the second got
    // a 409, the job was read and found to be this run's: one job only.
    assert_eq!(strict.creates.load(Ordering::SeqCst), 2);
    let st = fake.state.lock().unwrap();
    assert_eq!(st.jobs.len(), 1);
    assert_eq!(
        st.jobs["job-lost-answer"].0["jobInput"]["batchId"],
        report.batch_id.as_str()
    );
    assert_eq!(report.confirmed_count, 8);
    assert!(report.transport_retries >= 1);
}

#[tokio::test]
async fn job_id_taken_by_another_definition_is_a_clear_error() {
    let fake = FakeService::new();
    fake.state.lock().unwrap().jobs.insert(
        "job-taken".into(),
        (
            json!({"type": "simple-image-processing-v1",
                   "jobInput": {"type": "staging-batch-input-v1", "batchId": "someone-elses"},
                   "processingSpecification": {"workspace": "ws", "workflowId": "other-wf"}}),
            0,
        ),
    );
    let client = Client::new(fake.clone(), fake.base_url(), "fake-key").unwrap();
    let (input, out) = scratch_dirs();
    make_images(input.path(), 3);
    let mut cfg = chaos_config(input.path(), out.path(), ModeChoice::Single);
    cfg.job_id = Some(JobId::new("job-taken").unwrap());
    let err = Pipeline::new(client, cfg).run().await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::JobConflict { .. }), "{text}");
    assert!(
        text.contains("job-taken") && text.contains("someone-elses"),
        "{text}"
    );
    assert!(text.contains("choose another job id"), "{text}");
    let st = fake.state.lock().unwrap();
    assert_eq!(st.jobs.len(), 1, "no second job");
    assert_eq!(
        st.jobs["job-taken"].0["jobInput"]["batchId"], "someone-elses",
        "the existing job was left alone"
    );
}

const BP: &str = "/batch-processing/v1/external/acme";

fn wire_client(server: &MockServer) -> Client {
    Client::builder()
        .transport(Retrying::new(
            rf_transport::ReqwestTransport::new().unwrap(),
            fast_policy(),
        ))
        .base_url(server.uri())
        .api_key("wire-key")
        .workspace("acme")
        .build()
        .unwrap()
}

fn definition(batch: &str) -> rf_types::JobDefinition {
    build_definition(
        MediaKind::Image,
        &BatchId::new(batch).unwrap(),
        "acme",
        "wf",
        &JobSettings::default(),
    )
    .unwrap()
}

fn job_answer(def: serde_json::Value) -> serde_json::Value {
    json!({"job": {"jobId": "job-1", "name": "job-1", "jobDefinition": def,
        "createdAt": "2025-06-01T03:00:00Z", "lastUpdate": "2025-06-01T03:00:00Z",
        "error": false, "isTerminal": false}})
}

#[tokio::test]
async fn wire_conflict_with_the_same_definition_is_success() {
    let server = MockServer::start().await;
    let def = definition("b1");
    let mut served = serde_json::to_value(&def).unwrap();
    // The service may fill in defaults; the job is still the same.
    served["processingTimeoutSeconds"] = json!(3600);
    Mock::given(method("POST"))
        .and(path(format!("{BP}/jobs/job-1")))
        .and(query_param("api_key", "wire-key"))
        .and(body_json(&def))
        .respond_with(ResponseTemplate::new(409).set_body_json(json!({"error": "exists"})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{BP}/jobs/job-1")))
        .and(query_param("api_key", "wire-key"))
        .respond_with(ResponseTemplate::new(200).set_body_json(job_answer(served)))
        .expect(1)
        .mount(&server)
        .await;
    let client = wire_client(&server);
    let started = start_job(&client, &JobId::new("job-1").unwrap(), &def, None)
        .await
        .unwrap();
    assert_eq!(started, JobStart::Existing);
}

#[tokio::test]
async fn wire_conflict_with_another_definition_names_both() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("{BP}/jobs/job-1")))
        .respond_with(ResponseTemplate::new(409).set_body_json(json!({"error": "exists"})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{BP}/jobs/job-1")))
        .respond_with(ResponseTemplate::new(200).set_body_json(job_answer(
            serde_json::to_value(definition("other-batch")).unwrap(),
        )))
        .expect(1)
        .mount(&server)
        .await;
    let client = wire_client(&server);
    let err = start_job(
        &client,
        &JobId::new("job-1").unwrap(),
        &definition("b1"),
        None,
    )
    .await
    .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::JobConflict { .. }), "{text}");
    assert!(
        text.contains("other-batch") && text.contains("\"b1\""),
        "{text}"
    );
}

#[tokio::test]
async fn wire_create_is_resent_unchanged_after_a_server_error() {
    let server = MockServer::start().await;
    let def = definition("b1");
    Mock::given(method("POST"))
        .and(path(format!("{BP}/jobs/job-1")))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("{BP}/jobs/job-1")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"status": "ok"})))
        .expect(1)
        .mount(&server)
        .await;
    let client = wire_client(&server);
    let started = start_job(&client, &JobId::new("job-1").unwrap(), &def, Some("n"))
        .await
        .unwrap();
    assert_eq!(started, JobStart::Created);
    let posts: Vec<_> = server
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.method.as_str() == "POST")
        .collect();
    assert_eq!(posts.len(), 2);
    assert_eq!(posts[0].url, posts[1].url, "same job id, same query");
    assert_eq!(posts[0].body, posts[1].body, "same definition");
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&posts[1].body).unwrap(),
        serde_json::to_value(&def).unwrap()
    );
}

/// Turns the emulator's `drop-response` chaos on for exactly the first
/// request that `matches`, so the emulator itself applies it and cuts the
/// answer.
#[derive(Debug)]
struct LoseFirst {
    inner: rf_transport::ReqwestTransport,
    state: rf_emulator::EmulatorState,
    matches: fn(&Request) -> bool,
    done: std::sync::atomic::AtomicBool,
}

impl LoseFirst {
    fn new(state: &rf_emulator::EmulatorState, matches: fn(&Request) -> bool) -> LoseFirst {
        LoseFirst {
            inner: rf_transport::ReqwestTransport::new().unwrap(),
            state: state.clone(),
            matches,
            done: std::sync::atomic::AtomicBool::new(false),
        }
    }
}

/// `POST BP/{ws}/jobs/{id}` (the job create).
fn is_job_create(request: &Request) -> bool {
    request.method == Method::POST
        && request.url.path().contains("/batch-processing/")
        && request.url.path().split('/').count() == 7
}

/// `POST BP/{ws}/jobs/{id}/restart`.
fn is_job_restart(request: &Request) -> bool {
    request.method == Method::POST && request.url.path().ends_with("/restart")
}

#[async_trait::async_trait]
impl Transport for LoseFirst {
    async fn send(&self, request: Request) -> Result<Response, TransportError> {
        if !(self.matches)(&request) || self.done.swap(true, Ordering::SeqCst) {
            return self.inner.send(request).await;
        }
        let mut lose = rf_emulator::ChaosConfig::new(1, 1.0);
        lose.kinds = vec![rf_emulator::ChaosKind::DropResponse];
        self.state.set_chaos(Some(lose)).unwrap();
        let result = self.inner.send(request).await;
        // The answer (or its loss) has been seen: turn the faults off.
        let result = match result {
            Ok(r) => {
                let (status, headers) = (r.status(), r.headers().clone());
                r.bytes()
                    .await
                    .map(|b| Response::from_bytes(status, headers, b))
            }
            Err(e) => Err(e),
        };
        self.state.set_chaos(None).unwrap();
        result
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emulator_drop_response_on_job_start_creates_one_job() {
    let emu = crate::common::start_emulator().await;
    let retrying = Retrying::new(LoseFirst::new(emu.state(), is_job_create), fast_policy());
    let client = client_over(retrying, emu.base_url().as_str(), emu.api_key());
    let (input, out) = scratch_dirs();
    make_images(input.path(), 6);
    let mut cfg = config(input.path(), out.path(), "image-properties");
    cfg.job_id = Some(JobId::new("job-dropped").unwrap());
    let report = Pipeline::new(client, cfg).run().await.unwrap();
    let s = emu.state().stats();
    assert_eq!(s.faults[&rf_emulator::ChaosKind::DropResponse], 1, "{s:?}");
    assert_eq!(s.jobs_created, 1, "one job: {s:?}");
    assert_eq!(
        s.job_starts_repeated, 1,
        "the resend was answered as a repeat"
    );
    assert_eq!(report.job_id, "job-dropped");
    assert!(report.transport_retries >= 1);
    assert_eq!(report.confirmed_count, 6);
    assert!(report.extracted_files > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emulator_drop_response_on_restart_restarts_once_and_says_so() {
    let mut config = rf_emulator::EmulatorConfig::for_tests();
    // Slow enough that the job is still running when it is aborted.
    config.job_speed.item_delay = Duration::from_secs(5);
    let emu = crate::common::start_emulator_with(config).await;
    let retrying = Retrying::new(LoseFirst::new(emu.state(), is_job_restart), fast_policy());
    let client = client_over(retrying, emu.base_url().as_str(), emu.api_key());
    let batch = BatchId::new("restart-in").unwrap();
    let input = tempfile::tempdir().unwrap();
    make_images(input.path(), 1);
    let image = walk_one(input.path());
    client
        .staging()
        .upload_image_file(
            &batch,
            &image.file_name().unwrap().to_string_lossy(),
            &image,
            None,
        )
        .await
        .unwrap();
    let job_id = JobId::new("job-restarted").unwrap();
    let def = build_definition(
        MediaKind::Image,
        &batch,
        "test-ws",
        "image-properties",
        &JobSettings::default(),
    )
    .unwrap();
    start_job(&client, &job_id, &def, None).await.unwrap();
    client.jobs().abort(job_id.as_str()).await.unwrap();
    let aborted = wait_for_phase(&emu, job_id.as_str(), "aborted").await;

    let outcome = rf_batch::job::restart_job(
        &client,
        job_id.as_str(),
        &rf_types::ParametersOverride::default(),
    )
    .await
    .unwrap();
    assert_eq!(outcome, rf_batch::job::JobRestart::RestartedAnswerLost);
    let s = emu.state().stats();
    assert_eq!(s.faults[&rf_emulator::ChaosKind::DropResponse], 1, "{s:?}");
    let job = &s.workspaces["test-ws"].jobs[job_id.as_str()];
    assert_eq!(job.generation, aborted + 1, "restarted exactly once: {s:?}");
    let served = client.jobs().get(job_id.as_str()).await.unwrap();
    assert_eq!(served.job.restart_parameters_override.len(), 1);
}

/// The one file under `dir` (what `make_images(dir, 1)` wrote).
fn walk_one(dir: &std::path::Path) -> std::path::PathBuf {
    let sub = std::fs::read_dir(dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::read_dir(sub)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path()
}

/// Polls the emulator's stats until job `id` is in `phase`; returns its
/// generation then.
async fn wait_for_phase(emu: &rf_emulator::RunningEmulator, id: &str, phase: &str) -> u64 {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let s = emu.state().stats();
        if let Some(j) = s.workspaces.get("test-ws").and_then(|w| w.jobs.get(id))
            && j.phase == phase
        {
            return j.generation;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "job {id} never reached {phase}: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
