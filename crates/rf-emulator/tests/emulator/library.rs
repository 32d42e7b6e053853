//! The asset library (`--library DIR`): Asset Library jobs as `roboflow
//! batch create` sends them (Bearer auth, idempotency key), the async task
//! that reports their start, RoboQL ingests, and the workspace lookup by
//! POST.

use reqwest::StatusCode;
use rf_emulator::EmulatorConfig;
use serde_json::{Value, json};

use crate::support::{Env, png, start_with};

/// An emulator whose library holds `night/cam1/a.png`, `night/cam2/b.png`
/// and `day/c.png`.
async fn with_library() -> (tempfile::TempDir, Env) {
    let dir = tempfile::tempdir().unwrap();
    for (i, rel) in ["night/cam1/a.png", "night/cam2/b.png", "day/c.png"]
        .iter()
        .enumerate()
    {
        let path = dir.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, png(4, 4, i as u8)).unwrap();
    }
    let mut config = EmulatorConfig::for_tests();
    config.library = Some(dir.path().to_path_buf());
    (dir, start_with(config).await)
}

impl Env {
    /// `POST BP/test-ws/asset-library/jobs` with `Authorization: Bearer`
    /// and no `api_key`, as the roboflow client sends it.
    async fn library_job(&self, body: Value) -> (StatusCode, Value) {
        let r = self
            .http
            .post(
                self.bp("asset-library/jobs")
                    .replace("/jobs/asset-library", "/asset-library"),
            )
            .bearer_auth("test-key")
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }
}

#[tokio::test]
async fn a_library_job_gathers_its_images_runs_and_is_idempotent() {
    let (_dir, env) = with_library().await;
    let body = json!({
        "workflowId": "image-properties", "idempotencyKey": "launch-0001",
        "machineType": "cpu", "query": "tag:night", "displayName": "Night"
    });
    let (s, created) = env.library_job(body.clone()).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{created}");
    let job = created["jobId"].as_str().unwrap().to_owned();
    let task = created["taskId"].as_str().unwrap().to_owned();
    assert_eq!(created["displayName"], "Night");
    // The same create again: the same job and task, nothing new.
    let (s, again) = env.library_job(body.clone()).await;
    assert_eq!((s, &again), (StatusCode::ACCEPTED, &created));
    // The same key for another request: a conflict.
    let mut other = body.clone();
    other["query"] = json!("tag:day");
    assert_eq!(env.library_job(other).await.0, StatusCode::CONFLICT);
    // The task (workspace level, api_key in the query) says what it did.
    let (s, t) = env
        .get(&format!("{}test-ws/asynctasks/{task}", env.base()), &[])
        .await;
    assert_eq!(s, StatusCode::OK, "{t}");
    assert_eq!(t["status"], "completed");
    assert_eq!(t["result"]["jobId"], job.as_str());
    assert_eq!(t["result"]["images"], 2);
    let batch = t["result"]["batchId"].as_str().unwrap().to_owned();
    assert_eq!(env.count(&batch).await, 2);
    let finished = env.wait_job(&job).await;
    assert_eq!(finished["job"]["error"], false, "{finished}");
}

#[tokio::test]
async fn selections_the_library_cannot_serve_are_400_naming_why() {
    let (_dir, env) = with_library().await;
    let job = |selection: Value| {
        let mut body = json!({"workflowId": "image-properties", "idempotencyKey": "launch-0002", "machineType": "cpu"});
        body.as_object_mut()
            .unwrap()
            .extend(selection.as_object().unwrap().clone());
        body
    };
    for (selection, why) in [
        (
            json!({"imageIds": ["day/c.png", "nope.png"]}),
            "not in the asset library (first: \"nope.png\")",
        ),
        (
            json!({"query": "split:valid"}),
            "the field \"split\" is not supported",
        ),
        (json!({"query": "tag:snow"}), "matched no image"),
        (
            json!({"imageIds": ["day/c.png"], "query": "tag:day"}),
            "exactly one of imageIds and query",
        ),
    ] {
        let (s, b) = env.library_job(job(selection)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
        assert!(b["error"].as_str().unwrap().contains(why), "{why}: {b}");
    }
    // By ID: exactly those.
    let (s, created) = env
        .library_job(job(json!({"imageIds": ["day/c.png"]})))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{created}");
    assert_eq!(env.count(created["batchId"].as_str().unwrap()).await, 1);
    // An unknown task is 404.
    let (s, _) = env
        .get(&format!("{}test-ws/asynctasks/task-none", env.base()), &[])
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_roboql_ingest_fills_the_batch_and_the_workspace_is_found_by_post() {
    let (_dir, env) = with_library().await;
    let (s, b) = env
        .post(
            &env.ds("batches/rq-night/roboql-ingest"),
            &[],
            Some(json!({"query": "tag:night OR filename:c.png", "displayName": "All"})),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{b}");
    assert_eq!(env.count("rq-night").await, 3);
    let (s, b) = env.post(&env.base(), &[], None).await;
    assert_eq!(
        (s, b["workspace"].as_str()),
        (StatusCode::OK, Some("test-ws"))
    );
}

#[tokio::test]
async fn tasks_and_idempotency_keys_survive_a_restart() {
    let (lib, _) = with_library().await;
    let data = tempfile::tempdir().unwrap();
    let config = || {
        let mut c = EmulatorConfig::for_tests().with_data_dir(data.path());
        c.library = Some(lib.path().to_path_buf());
        c
    };
    let body = json!({
        "workflowId": "image-properties", "idempotencyKey": "launch-0003",
        "machineType": "cpu", "imageIds": ["day/c.png"]
    });
    let env = start_with(config()).await;
    let (s, created) = env.library_job(body.clone()).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{created}");
    env.emu.shutdown().await;
    let env = start_with(config()).await;
    let task = created["taskId"].as_str().unwrap();
    let (s, t) = env
        .get(&format!("{}test-ws/asynctasks/{task}", env.base()), &[])
        .await;
    assert_eq!(
        (s, &t["status"]),
        (StatusCode::OK, &json!("completed")),
        "{t}"
    );
    assert_eq!(env.library_job(body).await.1, created);
    env.emu.shutdown().await;
}
