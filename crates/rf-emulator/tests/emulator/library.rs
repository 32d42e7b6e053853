//! The asset library (`--library DIR`): Asset Library jobs as `roboflow
//! batch create` sends them (Bearer auth, idempotency key), the async task
//! that reports their start, RoboQL ingests, and the workspace lookup by
//! POST.

use reqwest::StatusCode;
use rf_emulator::EmulatorConfig;
use serde_json::{Value, json};

use crate::support::answers::image_job;
use crate::support::{Env, png, start_with};

/// An emulator whose library holds `night/cam1/a.png`, `night/cam2/b.png`
/// and `day/c.png`.
async fn with_library() -> (tempfile::TempDir, Env) {
    with_library_and(&[]).await
}

/// [`with_library`] with more files (sidecars) in the library.
async fn with_library_and(extra: &[(&str, &str)]) -> (tempfile::TempDir, Env) {
    let dir = tempfile::tempdir().unwrap();
    for (rel, text) in extra {
        let path = dir.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
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

/// A library whose night images carry metadata: `a` has a camera and a
/// site, `b` only a camera.
async fn with_metadata() -> (tempfile::TempDir, Env) {
    with_library_and(&[
        (
            "night/cam1/a.png.json",
            r#"{"metadata": {"camera": "c1", "site": "north"}}"#,
        ),
        ("night/cam2/b.png.json", r#"{"metadata": {"camera": "c2"}}"#),
    ])
    .await
}

/// An image job over part `images` of `batch`, mapping workflow inputs to
/// metadata keys from part `metadata`.
fn metadata_job(batch: &str, mapping: Value) -> Value {
    let mut job = image_job(batch, "image-properties", "jsonl");
    job["jobInput"]["partName"] = json!("images");
    job["jobInput"]["imagesMetadataPart"] = json!("metadata");
    job["processingSpecification"]["imagesMetadataInputsMapping"] = mapping;
    job
}

#[tokio::test]
async fn a_roboql_ingest_of_images_with_metadata_is_a_multipart_batch() {
    let (_dir, env) = with_metadata().await;
    let (s, b) = env
        .post(
            &env.ds("batches/rq-meta/roboql-ingest"),
            &[],
            Some(json!({"query": "tag:night"})),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{b}");
    let (_, parts) = env.get(&env.ds("batches/rq-meta/parts"), &[]).await;
    let names: Vec<&str> = parts["batchParts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["partName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["images", "metadata"], "{parts}");
    let (_, list) = env
        .get(&env.ds("batches/rq-meta/list"), &[("partName", "metadata")])
        .await;
    let files: Vec<&str> = list["filesMetadata"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["fileName"].as_str().unwrap())
        .collect();
    assert_eq!(
        files,
        ["night__cam1__a.png.json", "night__cam2__b.png.json"]
    );
    // Images without metadata still make a simple batch.
    let (s, _) = env
        .post(
            &env.ds("batches/rq-day/roboql-ingest"),
            &[],
            Some(json!({"query": "tag:day"})),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let (s, _) = env.get(&env.ds("batches/rq-day/parts"), &[]).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn workflows_receive_mapped_metadata_and_fail_images_missing_a_key() {
    let (_dir, env) = with_metadata().await;
    let query = Some(json!({"query": "tag:night"}));
    let (s, _) = env
        .post(&env.ds("batches/rq-map/roboql-ingest"), &[], query)
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let mapping = json!({"camera_id": "camera", "site": "site", "zone": "zone"});
    let mut job = metadata_job("rq-map", mapping);
    // workflowParameters win over metadata, and stand in for a missing key.
    job["processingSpecification"]["workflowParameters"] = json!({"zone": "z9"});
    let done = env.run_job("map", job).await;
    assert_eq!(done["job"]["error"], false, "{done}");
    let bytes = env.first_output("map", 0).await;
    let lines: Vec<Value> = String::from_utf8(bytes)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["file_name"], "night__cam1__a.png");
    assert_eq!(
        lines[0]["workflow_inputs"],
        json!({"camera_id": "c1", "site": "north", "zone": "z9"})
    );
    let (_, logs) = env
        .get(&env.bp("jobs/map/logs"), &[("severity", "error")])
        .await;
    let failed = &logs["logs"][0];
    assert_eq!(failed["logType"], "image-processing-failed", "{logs}");
    assert_eq!(failed["payload"]["fileName"], "night__cam2__b.png");
    let reason = failed["payload"]["reason"].as_str().unwrap();
    assert!(reason.starts_with("Missing keys"), "{reason}");
    assert!(reason.ends_with(": site"), "{reason}");
}

#[tokio::test]
async fn a_metadata_part_must_exist_and_a_mapping_needs_one() {
    let (_dir, env) = with_metadata().await;
    let query = Some(json!({"query": "tag:night"}));
    let (s, _) = env
        .post(&env.ds("batches/rq-bad/roboql-ingest"), &[], query)
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let mut no_part = metadata_job("rq-bad", json!({"camera_id": "camera"}));
    no_part["jobInput"]["imagesMetadataPart"] = json!("sidecars");
    let (s, b) = env.post(&env.bp("jobs/bad1"), &[], Some(no_part)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    assert!(
        b["error"]
            .as_str()
            .unwrap()
            .contains("no part \"sidecars\""),
        "{b}"
    );
    let mut unmapped = metadata_job("rq-bad", json!({"camera_id": "camera"}));
    unmapped["jobInput"]
        .as_object_mut()
        .unwrap()
        .remove("imagesMetadataPart");
    let (s, b) = env.post(&env.bp("jobs/bad2"), &[], Some(unmapped)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    assert!(
        b["error"].as_str().unwrap().contains("imagesMetadataPart"),
        "{b}"
    );
}
