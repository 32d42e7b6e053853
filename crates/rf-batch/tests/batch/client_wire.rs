//! Exact request shapes of the typed client, checked with wiremock over
//! loopback HTTP: method, path, query (including `api_key`), headers, body.

use futures::TryStreamExt;
use pretty_assertions::assert_eq;
use rf_batch::{ApiErrorKind, Client, Endpoint, Error};
use rf_transport::{Body, ReqwestTransport};
use rf_types::{BatchId, JobId, LogSeverity, MachineType, ParametersOverride, WorkflowJob};
use serde_json::json;
use wiremock::matchers::{body_json, header, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const KEY: &str = "test-key-123";

async fn setup() -> (MockServer, Client) {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/"))
        .and(query_param("api_key", KEY))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"workspace": "acme"})))
        .expect(1)
        .mount(&server)
        .await;
    let client = Client::new(ReqwestTransport::new().unwrap(), server.uri(), KEY).unwrap();
    (server, client)
}

const DS: &str = "/data-staging/v1/external/acme";
const BP: &str = "/batch-processing/v1/external/acme";

#[tokio::test]
async fn workspace_is_looked_up_once_and_count_sends_part_name() {
    let (server, client) = setup().await;
    Mock::given(method("GET"))
        .and(path(format!("{DS}/batches/b1/count")))
        .and(query_param("api_key", KEY))
        .and(query_param("partName", "results"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"count": 7, "status": "ok"})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{DS}/batches/b1/count")))
        .and(query_param_is_missing("partName"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"count": 9})))
        .expect(1)
        .mount(&server)
        .await;
    assert_eq!(
        client.staging().count("b1", Some("results")).await.unwrap(),
        7
    );
    assert_eq!(client.staging().count("b1", None).await.unwrap(), 9);
    assert_eq!(client.workspace().await.unwrap(), "acme");
}

#[tokio::test]
async fn given_workspace_skips_the_lookup() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("{DS}/batches/b1")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"batch": {
            "displayName": "B", "batchId": "b1", "batchType": "sharded-batch",
            "batchContentType": "images", "createdDate": "2025-06-01T02:00:11.512Z",
            "expiryDate": "2025-06-08T02:00:11Z"}})))
        .expect(1)
        .mount(&server)
        .await;
    let client = Client::builder()
        .transport(ReqwestTransport::new().unwrap())
        .base_url(server.uri())
        .api_key(KEY)
        .workspace("acme")
        .build()
        .unwrap();
    let b = client.staging().batch("b1").await.unwrap();
    assert_eq!(b.display_name, "B");
    assert_eq!(b.batch_type, rf_types::BatchType::ShardedBatch);
}

#[tokio::test]
async fn single_image_upload_is_multipart_named_after_the_file() {
    let (server, client) = setup().await;
    Mock::given(method("POST"))
        .and(path(format!("{DS}/batches/b1/upload/image")))
        .and(query_param("api_key", KEY))
        .and(query_param("fileName", "a__x.jpg"))
        .and(query_param("displayName", "My Batch"))
        .and(|req: &Request| {
            let ct = req
                .headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let body = String::from_utf8_lossy(&req.body);
            ct.starts_with("multipart/form-data; boundary=")
                && body.contains("name=\"a__x.jpg\"; filename=\"a__x.jpg\"")
                && body.contains("IMAGEBYTES")
        })
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .expect(1)
        .mount(&server)
        .await;
    let batch = BatchId::new("b1").unwrap();
    client
        .staging()
        .upload_image(
            &batch,
            "a__x.jpg",
            Body::from_bytes("IMAGEBYTES"),
            Some("My Batch"),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn shard_url_then_signed_put_with_extension_headers_and_no_key() {
    let (server, client) = setup().await;
    let upload_url = format!("{}/signed/put/tok123?sig=abc", server.uri());
    Mock::given(method("POST"))
        .and(path(format!("{DS}/batches/b1/bulk-upload/image-files")))
        .and(query_param("api_key", KEY))
        .and(query_param("displayName", "nightly"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "signedURLDetails": {"uploadURL": upload_url,
                                 "extensionHeaders": {"X-Goog-Content-Length-Range": "0,10737418240"}}})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path("/signed/put/tok123"))
        .and(query_param("sig", "abc"))
        .and(query_param_is_missing("api_key"))
        // (wiremock's `header` matcher splits values at commas)
        .and(|req: &Request| {
            req.headers
                .get("x-goog-content-length-range")
                .is_some_and(|v| v.as_bytes() == b"0,10737418240")
        })
        .and(header("content-length", "5"))
        .and(|req: &Request| req.body == b"hello")
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    let batch = BatchId::new("b1").unwrap();
    let details = client
        .staging()
        .shard_upload_url(&batch, Some("nightly"))
        .await
        .unwrap();
    client
        .staging()
        .put_signed(&details, Body::from_bytes("hello"), "shard 0", false)
        .await
        .unwrap();
}

#[tokio::test]
async fn create_job_sends_the_definition_and_name() {
    let (server, client) = setup().await;
    Mock::given(method("POST"))
        .and(path(format!("{BP}/jobs/job-1")))
        .and(query_param("api_key", KEY))
        .and(query_param("name", "nightly run"))
        .and(body_json(json!({
            "type": "simple-image-processing-v1",
            "jobInput": {"type": "staging-batch-input-v1", "batchId": "b1"},
            "computeConfiguration": {"type": "compute-configuration-v2", "machineType": "gpu"},
            "processingSpecification": {
                "type": "workflows-processing-specification-v1",
                "workspace": "acme", "workflowId": "wf", "persistImagesOutputs": false
            }
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"status": "ok"})))
        .expect(1)
        .mount(&server)
        .await;
    let def = WorkflowJob::image(BatchId::new("b1").unwrap(), "acme", "wf")
        .machine_type(MachineType::Gpu)
        .build()
        .unwrap();
    client
        .jobs()
        .create(&JobId::new("job-1").unwrap(), &def, Some("nightly run"))
        .await
        .unwrap();
}

#[tokio::test]
async fn abort_and_restart_bodies() {
    let (server, client) = setup().await;
    Mock::given(method("POST"))
        .and(path(format!("{BP}/jobs/job-1/abort")))
        .and(query_param("api_key", KEY))
        .and(|req: &Request| req.body.is_empty())
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"status": "ok"})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("{BP}/jobs/job-1/restart")))
        .and(|req: &Request| req.body.is_empty())
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"status": "ok"})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("{BP}/jobs/job-2/restart")))
        .and(body_json(
            json!({"type": "parameters-override-v1", "maxParallelTasks": 4}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"status": "ok"})))
        .expect(1)
        .mount(&server)
        .await;
    assert_eq!(client.jobs().abort("job-1").await.unwrap()["status"], "ok");
    client
        .jobs()
        .restart("job-1", &ParametersOverride::default())
        .await
        .unwrap();
    let o = ParametersOverride {
        max_parallel_tasks: Some(4),
        ..Default::default()
    };
    client.jobs().restart("job-2", &o).await.unwrap();
}

fn job_json(id: &str) -> serde_json::Value {
    json!({"jobId": id, "name": id, "jobDefinition": {}, "createdAt": "2025-06-01T03:00:00Z",
           "lastUpdate": "2025-06-01T03:00:00Z"})
}

#[tokio::test]
async fn listings_follow_page_tokens() {
    let (server, client) = setup().await;
    Mock::given(method("GET"))
        .and(path(format!("{BP}/jobs")))
        .and(query_param("pageSize", "2"))
        .and(query_param_is_missing("nextPageToken"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"jobs": [job_json("j1"), job_json("j2")], "nextPageToken": "t2"}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{BP}/jobs")))
        .and(query_param("pageSize", "2"))
        .and(query_param("nextPageToken", "t2"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"jobs": [job_json("j3")], "nextPageToken": null})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let jobs: Vec<_> = client.jobs().list(Some(2)).try_collect().await.unwrap();
    let ids: Vec<_> = jobs.iter().map(|j| j.job_id.as_str()).collect();
    assert_eq!(ids, ["j1", "j2", "j3"]);

    Mock::given(method("GET"))
        .and(path(format!("{DS}/batches/out-1/list")))
        .and(query_param("partName", "results"))
        .and(query_param("pageSize", "1000"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"filesMetadata": [
            {"downloadURL": "http://x/d/1", "fileName": "r_1.tar.gz", "partName": "results",
             "contentType": "archives"}]})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let files: Vec<_> = client
        .staging()
        .list_files("out-1", Some("results"))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(files[0].file_name, "r_1.tar.gz");

    Mock::given(method("GET"))
        .and(path(format!("{BP}/jobs/job-1/logs")))
        .and(query_param("severity", "error"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"logs": [
            {"createdAt": "2025-06-01T03:05:12Z", "severity": "error", "reportingModule": "m",
             "logType": "t", "payload": {"fileName": "x.jpg"}}], "nextPageToken": null})))
        .expect(1)
        .mount(&server)
        .await;
    let logs: Vec<_> = client
        .jobs()
        .logs("job-1", Some(LogSeverity::Error))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(logs[0].payload["fileName"], "x.jpg");
}

#[tokio::test]
async fn error_statuses_become_domain_errors_without_the_key() {
    let (server, client) = setup().await;
    Mock::given(method("GET"))
        .and(path(format!("{BP}/jobs/nope")))
        .respond_with(
            ResponseTemplate::new(404).set_body_json(json!({"error": "job nope not found"})),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{BP}/jobs/job-1/stages")))
        .respond_with(ResponseTemplate::new(409).set_body_string("plain conflict"))
        .mount(&server)
        .await;
    let err = client.jobs().get("nope").await.unwrap_err();
    assert!(err.is_api(ApiErrorKind::NotFound), "{err:?}");
    let api = err.api().unwrap();
    assert_eq!(
        (api.endpoint, api.id.as_deref(), api.status),
        (Endpoint::GetJob, Some("nope"), 404)
    );
    assert_eq!(api.message, "job nope not found");
    let text = err.to_string();
    assert!(
        text.contains("get job \"nope\" failed: not found (HTTP 404): job nope not found"),
        "{text}"
    );
    assert!(!text.contains(KEY) && !format!("{err:?}").contains(KEY));
    let err = client.jobs().stages("job-1").await.unwrap_err();
    assert!(err.is_api(ApiErrorKind::Conflict));
    assert_eq!(err.api().unwrap().message, "plain conflict");
}

#[tokio::test]
async fn bad_key_is_unauthenticated() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({"error": "bad key"})))
        .mount(&server)
        .await;
    let client = Client::new(ReqwestTransport::new().unwrap(), server.uri(), "wrong").unwrap();
    let err = client.staging().count("b", None).await.unwrap_err();
    assert!(err.is_api(ApiErrorKind::Unauthenticated), "{err}");
    assert!(err.to_string().contains("ROBOFLOW_API_KEY"));
    assert!(matches!(err, Error::Api(_)));
}

#[tokio::test]
async fn remaining_endpoints_have_the_contract_shapes() {
    let (server, client) = setup().await;
    let batch = BatchId::new("b1").unwrap();
    Mock::given(method("GET"))
        .and(path(format!("{DS}/batches")))
        .and(query_param("api_key", KEY))
        .and(query_param("pageSize", "50"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"batches": [{
            "displayName": "B", "batchId": "b1", "batchType": "simple-batch",
            "batchContentType": "images", "createdDate": "2025-06-01T02:00:11Z",
            "expiryDate": "2025-06-08T02:00:11Z"}]})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let batches: Vec<_> = client
        .staging()
        .list_batches(Some(50))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(batches[0].batch_id, "b1");

    Mock::given(method("GET"))
        .and(path(format!("{DS}/batches/out-1/parts")))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"batchParts": [
            {"partName": "results", "partType": "sharded-batch", "contentType": "archives"}]})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let parts = client.staging().parts("out-1").await.unwrap();
    assert_eq!(parts[0].part_name.as_str(), "results");

    Mock::given(method("GET"))
        .and(path(format!("{DS}/batches/b1/shards")))
        .and(query_param_is_missing("nextPageToken"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"shards": [
            {"shardId": "s1", "statusName": "ok", "statusType": "info",
             "eventTimestamp": "2025-06-01T02:03:40Z", "shardObjectsCount": 3}],
             "nextPageToken": "p2"})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{DS}/batches/b1/shards")))
        .and(query_param("nextPageToken", "p2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"shards": []})))
        .expect(1)
        .mount(&server)
        .await;
    let shards: Vec<_> = client.staging().shards("b1").try_collect().await.unwrap();
    assert_eq!(shards.len(), 1);

    Mock::given(method("POST"))
        .and(path(format!("{DS}/batches/b1/upload/video")))
        .and(query_param("fileName", "cam__v.mp4"))
        .and(query_param("displayName", "Videos"))
        .and(|req: &Request| req.body.is_empty())
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"signedURLDetails": {
            "uploadURL": "http://127.0.0.1:9/put", "extensionHeaders": {}}})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let d = client
        .staging()
        .video_upload_url(&batch, "cam__v.mp4", Some("Videos"))
        .await
        .unwrap();
    assert!(d.extension_headers.is_empty());

    Mock::given(method("POST"))
        .and(path(format!(
            "{DS}/batches/b1/bulk-upload/image-references"
        )))
        .and(query_param("displayName", "Refs"))
        .and(body_json(json!({
            "imageReferences": [{"name": "a.jpg", "url": "https://x.example/a.jpg"}],
            "ingestId": "ing-1"})))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"ingestId": "ing-1", "shardIds": ["s1"]})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let mut req = rf_types::ImageReferencesIngestRequest::inline(vec![rf_types::Reference::new(
        "a.jpg",
        "https://x.example/a.jpg",
    )]);
    req.ingest_id = Some("ing-1".into());
    let r = client
        .staging()
        .ingest_image_references(&batch, &req, Some("Refs"))
        .await
        .unwrap();
    assert_eq!(r.ingest_id.as_str(), "ing-1");

    Mock::given(method("POST"))
        .and(path(format!(
            "{DS}/batches/b1/bulk-upload/video-references"
        )))
        .and(body_json(
            json!({"videoReferencesURL": "https://x.example/refs.jsonl"}),
        ))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"ingestId": "auto", "duplicated": true})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let req = rf_types::VideoReferencesIngestRequest::from_url("https://x.example/refs.jsonl");
    let r = client
        .staging()
        .ingest_video_references(&batch, &req, None)
        .await
        .unwrap();
    assert_eq!(r.duplicated, Some(true));

    Mock::given(method("GET"))
        // server-issued ids are percent-encoded in the path
        .and(path(format!("{BP}/jobs/job-1/stages/st%201/tasks")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"tasks": [
            {"taskId": "t", "notification": {"m": 1}, "statusType": "info", "progress": null,
             "eventTimestamp": "2025-06-01T03:10:00Z"}], "nextPageToken": null})))
        .expect(1)
        .mount(&server)
        .await;
    let tasks: Vec<_> = client
        .jobs()
        .tasks("job-1", "st 1")
        .try_collect()
        .await
        .unwrap();
    assert_eq!(tasks[0].progress, None);

    Mock::given(method("GET"))
        .and(path("/files/r.tar.gz"))
        .and(query_param("sig", "x"))
        .and(query_param_is_missing("api_key"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(b"ARCHIVE".to_vec()))
        .expect(1)
        .mount(&server)
        .await;
    let file: rf_types::FileMetadata = serde_json::from_value(json!({
        "downloadURL": format!("{}/files/r.tar.gz?sig=x", server.uri()),
        "fileName": "r.tar.gz", "contentType": "archives"}))
    .unwrap();
    let body = client
        .staging()
        .download(&file)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(&body[..], b"ARCHIVE");
}

#[tokio::test]
async fn retry_after_is_read_as_seconds_or_as_an_http_date() {
    let (server, client) = setup().await;
    Mock::given(method("GET"))
        .and(path(format!("{BP}/jobs/busy")))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "7"))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{BP}/jobs/dated")))
        .respond_with(
            ResponseTemplate::new(503)
                .insert_header("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT"),
        )
        .mount(&server)
        .await;
    let busy = client.jobs().get("busy").await.unwrap_err();
    assert_eq!(
        busy.api().unwrap().retry_after,
        Some(std::time::Duration::from_secs(7))
    );
    // A date in the past: no wait, but the server did ask.
    let dated = client.jobs().get("dated").await.unwrap_err();
    assert_eq!(
        dated.api().unwrap().retry_after,
        Some(std::time::Duration::ZERO)
    );
}

#[tokio::test]
async fn an_asset_library_job_is_created_with_bearer_auth_and_followed_by_its_task() {
    use rf_types::{AssetLibraryJobRequest, LibrarySelection};
    let (server, client) = setup().await;
    let mut request = AssetLibraryJobRequest::new(
        "defect-detector",
        LibrarySelection::ImageIds(vec!["img-1".into(), " img-2 ".into(), "img-1".into()]),
        MachineType::Gpu,
        "placeholder",
    )
    .unwrap();
    request.display_name = Some("Night defects".into());
    request.idempotency_key = rf_batch::library::derived_idempotency_key(&request);
    // The key in a Bearer header, as the roboflow client sends it; none in
    // the query.
    Mock::given(method("POST"))
        .and(path(format!("{BP}/asset-library/jobs")))
        .and(header("authorization", format!("Bearer {KEY}").as_str()))
        .and(query_param_is_missing("api_key"))
        .and(body_json(json!({
            "workflowId": "defect-detector",
            "idempotencyKey": request.idempotency_key,
            "machineType": "gpu",
            "imageIds": ["img-1", "img-2"],
            "displayName": "Night defects"
        })))
        .respond_with(ResponseTemplate::new(202).set_body_json(json!({
            "status": "queued", "taskId": "task-1", "jobId": "al-123",
            "batchId": "asset-library-123", "displayName": "Night defects"
        })))
        .expect(1)
        .mount(&server)
        .await;
    let created = rf_batch::library::start_library_job(&client, &request)
        .await
        .unwrap();
    assert_eq!(
        (created.job_id.as_str(), created.task_id.as_str()),
        ("al-123", "task-1")
    );
    // The task: workspace-level, `api_key` in the query; running, then done.
    Mock::given(method("GET"))
        .and(path("/acme/asynctasks/task-1"))
        .and(query_param("api_key", KEY))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "taskId": "task-1", "status": "running", "progress": {"current": 1, "total": 3}
        })))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/acme/asynctasks/task-1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "taskId": "task-1", "status": "completed", "result": {"jobId": "al-123"}
        })))
        .mount(&server)
        .await;
    let options = rf_batch::wait::PollOptions {
        initial_interval: std::time::Duration::from_millis(1),
        ..Default::default()
    };
    let mut seen = Vec::new();
    let task =
        rf_batch::library::wait_for_task(&client, "task-1", &options, &Default::default(), |t| {
            seen.push(t.status.clone().unwrap_or_default())
        })
        .await
        .unwrap();
    assert_eq!(seen, ["running", "completed"]);
    assert_eq!(task.result.unwrap()["jobId"], "al-123");
}

#[tokio::test]
async fn a_failed_task_is_an_error_with_its_reason() {
    let (server, client) = setup().await;
    Mock::given(method("GET"))
        .and(path("/acme/asynctasks/task-9"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "taskId": "task-9", "status": "failed", "error": "query matched no images"
        })))
        .mount(&server)
        .await;
    let err = rf_batch::library::wait_for_task(
        &client,
        "task-9",
        &Default::default(),
        &Default::default(),
        |_| {},
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, Error::TaskFailed { message, .. } if message == "query matched no images"),
        "{err}"
    );
}
