//! Integration tests of the emulator over real HTTP on loopback, one module
//! per area. Every wait polls with a deadline.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use rf_emulator::{Emulator, EmulatorConfig};
use serde_json::{Value, json};

mod support;
use support::{DEADLINE, Env, png, signed_url_details, start, start_with, tar_of};

/// The request shortcuts of these tests: every request gets an answer, read
/// as (status, JSON body or `null`).
impl Env {
    async fn get(&self, url: &str, query: &[(&str, &str)]) -> (StatusCode, Value) {
        let mut q: Vec<(&str, &str)> = vec![("api_key", "test-key")];
        q.extend_from_slice(query);
        let r = self.http.get(url).query(&q).send().await.unwrap();
        let status = r.status();
        let body = r.json::<Value>().await.unwrap_or(Value::Null);
        (status, body)
    }
    async fn post(
        &self,
        url: &str,
        query: &[(&str, &str)],
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut q: Vec<(&str, &str)> = vec![("api_key", "test-key")];
        q.extend_from_slice(query);
        let mut req = self.http.post(url).query(&q);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status();
        let body = r.json::<Value>().await.unwrap_or(Value::Null);
        (status, body)
    }
    async fn upload_image(
        &self,
        batch: &str,
        name: &str,
        bytes: Vec<u8>,
        part: &str,
    ) -> (StatusCode, Value) {
        let form = reqwest::multipart::Form::new().part(
            part.to_string(),
            reqwest::multipart::Part::bytes(bytes).file_name(name.to_string()),
        );
        let r = self
            .http
            .post(self.ds(&format!("batches/{batch}/upload/image")))
            .query(&[
                ("api_key", "test-key"),
                ("fileName", name),
                ("displayName", "My Batch"),
            ])
            .multipart(form)
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }
    /// Asks for a signed URL (`upload/video` or `bulk-upload/image-files`).
    async fn signed_url(
        &self,
        batch: &str,
        endpoint: &str,
        file: Option<&str>,
    ) -> (String, BTreeMap<String, String>) {
        let mut q = vec![];
        if let Some(f) = file {
            q.push(("fileName", f));
        }
        let (s, b) = self
            .post(&self.ds(&format!("batches/{batch}/{endpoint}")), &q, None)
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        signed_url_details(&b)
    }
    async fn put(
        &self,
        url: &str,
        headers: &BTreeMap<String, String>,
        body: Vec<u8>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.put(url).body(body);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let r = req.send().await.unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }
    async fn put_shard(&self, batch: &str, tar: Vec<u8>) {
        let (url, headers) = self
            .signed_url(batch, "bulk-upload/image-files", None)
            .await;
        let (s, b) = self.put(&url, &headers, tar).await;
        assert_eq!(s, StatusCode::OK, "{b}");
    }
    async fn count(&self, batch: &str) -> u64 {
        let (s, b) = self
            .get(&self.ds(&format!("batches/{batch}/count")), &[])
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        b["count"].as_u64().unwrap()
    }
    async fn wait_count(&self, batch: &str, want: u64) {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let n = self.count(batch).await;
            if n == want {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "count of {batch} stuck at {n}, want {want}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    async fn wait_job(&self, job: &str) -> Value {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let (s, b) = self.get(&self.bp(&format!("jobs/{job}")), &[]).await;
            assert_eq!(s, StatusCode::OK, "{b}");
            if b["job"]["isTerminal"] == json!(true) {
                return b;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "job {job} not terminal: {b}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    async fn download(&self, url: &str) -> (StatusCode, Vec<u8>) {
        let r = self.http.get(url).send().await.unwrap();
        (r.status(), r.bytes().await.unwrap().to_vec())
    }
}

fn image_job(batch: &str, workflow: &str, format: &str) -> Value {
    json!({
        "type": "simple-image-processing-v1",
        "jobInput": {"type": "staging-batch-input-v1", "batchId": batch},
        "computeConfiguration": {"type": "compute-configuration-v2"},
        "processingSpecification": {
            "type": "workflows-processing-specification-v1",
            "workspace": "test-ws",
            "workflowId": workflow,
            "persistImagesOutputs": false,
            "aggregationFormat": format
        }
    })
}

/// One received webhook: the Authorization header and the JSON body.
type Call = (Option<String>, Value);

/// A webhook receiver on loopback that refuses the first `fail_first` calls.
#[derive(Clone, Default)]
struct Receiver {
    calls: Arc<Mutex<Vec<Call>>>,
    fail_first: Arc<Mutex<usize>>,
}

impl Receiver {
    async fn start(fail_first: usize) -> (Self, String) {
        let rx = Receiver::default();
        *rx.fail_first.lock().unwrap() = fail_first;
        let state = rx.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(
                |axum::extract::State(st): axum::extract::State<Receiver>,
                 headers: axum::http::HeaderMap,
                 body: axum::body::Bytes| async move {
                    let auth = headers
                        .get("authorization")
                        .map(|v| v.to_str().unwrap().to_string());
                    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    st.calls.lock().unwrap().push((auth, v));
                    let mut f = st.fail_first.lock().unwrap();
                    if *f > 0 {
                        *f -= 1;
                        axum::http::StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        axum::http::StatusCode::OK
                    }
                },
            ),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app.with_state(state)).await.unwrap() });
        (rx, format!("http://{addr}/hook"))
    }

    async fn wait_for(&self, pred: impl Fn(&[Call]) -> bool) -> Vec<Call> {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let calls = self.calls.lock().unwrap().clone();
            if pred(&calls) {
                return calls;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "webhook calls so far: {calls:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Serves fixed files on loopback (for reference ingest).
async fn file_server(files: Vec<(&'static str, Vec<u8>)>) -> String {
    let files: Arc<BTreeMap<String, Vec<u8>>> =
        Arc::new(files.into_iter().map(|(k, v)| (k.to_string(), v)).collect());
    let app = axum::Router::new().route(
        "/files/{name}",
        axum::routing::get(
            move |axum::extract::Path(name): axum::extract::Path<String>| {
                let files = files.clone();
                async move {
                    match files.get(&name) {
                        Some(b) => (axum::http::StatusCode::OK, b.clone()),
                        None => (axum::http::StatusCode::NOT_FOUND, Vec::new()),
                    }
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/files")
}

mod auth {
    use super::*;

    #[tokio::test]
    async fn workspace_lookup_and_keys() {
        let env = start_with(EmulatorConfig::for_tests().with_key("other-key", "other-ws")).await;
        let (s, b) = env.get(&env.base(), &[]).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(b["workspace"], "test-ws");
        // Bearer header instead of the query parameter
        let r = env
            .http
            .get(env.base())
            .bearer_auth("other-key")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.json::<Value>().await.unwrap()["workspace"], "other-ws");
        // missing and wrong keys
        let r = env.http.get(env.base()).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert!(r.json::<Value>().await.unwrap()["error"].is_string());
        let r = env
            .http
            .get(env.ds("batches"))
            .query(&[("api_key", "nope")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        env.emu.shutdown().await;
    }

    #[tokio::test]
    async fn a_key_never_sees_another_workspace() {
        let env = start_with(EmulatorConfig::for_tests().with_key("other-key", "other-ws")).await;
        let (s, _) = env
            .upload_image("mine", "a.png", png(2, 2, 1), "file")
            .await;
        assert_eq!(s, StatusCode::OK);
        // other key on test-ws paths: forbidden
        let r = env
            .http
            .get(env.ds("batches/mine"))
            .query(&[("api_key", "other-key")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        // other key on its own workspace: the batch does not exist there
        let url = format!(
            "{}data-staging/v1/external/other-ws/batches/mine",
            env.base()
        );
        let r = env
            .http
            .get(&url)
            .query(&[("api_key", "other-key")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        let url = format!("{}data-staging/v1/external/other-ws/batches", env.base());
        let r = env
            .http
            .get(&url)
            .query(&[("api_key", "other-key")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.json::<Value>().await.unwrap()["batches"], json!([]));
        let url = format!("{}batch-processing/v1/external/other-ws/jobs", env.base());
        let r = env
            .http
            .get(&url)
            .bearer_auth("test-key")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        env.emu.shutdown().await;
    }
}

mod staging {
    use super::*;

    #[tokio::test]
    async fn single_upload_both_part_styles_and_download() {
        let env = start().await;
        let a = png(4, 3, 1);
        assert_eq!(
            env.upload_image("b1", "a.png", a.clone(), "file").await.0,
            StatusCode::OK
        );
        // the official client names the part after the file
        assert_eq!(
            env.upload_image("b1", "b c.png", png(5, 5, 2), "b c.png")
                .await
                .0,
            StatusCode::OK
        );
        assert_eq!(env.count("b1").await, 2);
        // same name again overwrites
        assert_eq!(
            env.upload_image("b1", "a.png", a.clone(), "file").await.0,
            StatusCode::OK
        );
        assert_eq!(env.count("b1").await, 2);
        let (s, meta) = env.get(&env.ds("batches/b1"), &[]).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(meta["batch"]["batchType"], "simple-batch");
        assert_eq!(meta["batch"]["batchContentType"], "images");
        assert_eq!(meta["batch"]["displayName"], "My Batch");
        assert!(meta["batch"]["expiryDate"].as_str().unwrap().ends_with('Z'));
        let (_, list) = env.get(&env.ds("batches/b1/list"), &[]).await;
        let files = list["filesMetadata"].as_array().unwrap();
        assert_eq!(files.len(), 2);
        let fa = files.iter().find(|f| f["fileName"] == "a.png").unwrap();
        assert!(files.iter().any(|f| f["fileName"] == "b c.png"));
        let (s, bytes) = env.download(fa["downloadURL"].as_str().unwrap()).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(bytes, a);
        // simple batches have no shards
        let (_, sh) = env.get(&env.ds("batches/b1/shards"), &[]).await;
        assert_eq!(sh["shards"], json!([]));
        env.emu.shutdown().await;
    }

    #[tokio::test]
    async fn bad_uploads_are_clear_4xx() {
        let dir = tempfile::tempdir().unwrap();
        let env = start_with(EmulatorConfig::for_tests().with_data_dir(dir.path())).await;
        let (s, b) = env
            .upload_image("b1", "a.png", b"not an image".to_vec(), "file")
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert!(
            b["error"]
                .as_str()
                .unwrap()
                .contains("not a decodable image"),
            "{b}"
        );
        let (s, _) = env
            .upload_image("Bad_ID", "a.png", png(1, 1, 1), "file")
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        let (s, _) = env.upload_image("b1", "a.txt", png(1, 1, 1), "file").await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        let big = vec![0u8; 20 * 1024 * 1024 + 1];
        let (s, b) = env.upload_image("b1", "big.png", big, "file").await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert!(b["error"].as_str().unwrap().contains("20971520"), "{b}");
        // not multipart at all
        let r = env
            .http
            .post(env.ds("batches/b1/upload/image"))
            .query(&[("api_key", "test-key"), ("fileName", "a.png")])
            .body("x")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert!(r.json::<Value>().await.unwrap()["error"].is_string());
        // missing fileName
        let (s, _) = env
            .post(&env.ds("batches/b1/upload/video"), &[], None)
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        // nothing was created
        let (s, _) = env.get(&env.ds("batches/b1"), &[]).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        // and nothing was left behind
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0
        );
        assert_eq!(
            std::fs::read_dir(dir.path().join("blobs")).unwrap().count(),
            0
        );
        env.emu.shutdown().await;
    }

    #[tokio::test]
    async fn parts_and_roboql_on_the_wrong_batches_are_4xx() {
        let env = start().await;
        env.upload_image("plain", "a.png", png(1, 1, 1), "file")
            .await;
        let (s, b) = env.get(&env.ds("batches/plain/parts"), &[]).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert!(b["error"].as_str().unwrap().contains("multipart"), "{b}");
        let (s, _) = env
            .get(&env.ds("batches/plain/count"), &[("partName", "results")])
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, b) = env
            .post(
                &env.ds("batches/plain/roboql-ingest"),
                &[],
                Some(json!({"query": "x"})),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert!(b["error"].as_str().unwrap().contains("roboql"));
        let (s, _) = env.get(&env.ds("batches/missing/shards"), &[]).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, _) = env.get(&env.bp("jobs/none/stages"), &[]).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let r = env
            .http
            .delete(env.ds("batches/plain"))
            .query(&[("api_key", "test-key")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert!(r.json::<Value>().await.unwrap()["error"].is_string());
        // an API_BASE_URL with a trailing slash gets a hint
        let url = format!("{}/data-staging/v1/external/test-ws/batches", env.base());
        let (s, b) = env.get(&url, &[]).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        assert!(
            b["error"].as_str().unwrap().contains("trailing slash"),
            "{b}"
        );
        env.emu.shutdown().await;
    }

    #[tokio::test]
    async fn mixing_single_and_bulk_is_rejected() {
        let env = start().await;
        assert_eq!(
            env.upload_image("simple", "a.png", png(1, 1, 1), "file")
                .await
                .0,
            StatusCode::OK
        );
        let (s, b) = env
            .post(&env.ds("batches/simple/bulk-upload/image-files"), &[], None)
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert!(
            b["error"].as_str().unwrap().contains("cannot be mixed"),
            "{b}"
        );
        env.put_shard("bulk", tar_of(&[("a.png", png(1, 1, 1))]))
            .await;
        let (s, _) = env
            .upload_image("bulk", "b.png", png(1, 1, 2), "file")
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        let (s, _) = env
            .post(
                &env.ds("batches/bulk/bulk-upload/image-references"),
                &[],
                Some(json!({"imageReferences": []})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "references are bulk too");
        env.emu.shutdown().await;
    }

    #[tokio::test]
    async fn shards_are_indexed_and_counted_every_time() {
        let env = start().await;
        let members: Vec<(String, Vec<u8>)> = (0..20)
            .map(|i| (format!("img{i:03}.png"), png(8, 8, i as u8)))
            .collect();
        let mut all: Vec<(&str, Vec<u8>)> = members
            .iter()
            .map(|(n, d)| (n.as_str(), d.clone()))
            .collect();
        all.push(("bad.png", b"junk".to_vec()));
        all.push(("notes.txt", b"hello".to_vec()));
        let tar = tar_of(&all);
        env.put_shard("sharded", tar.clone()).await;
        env.wait_count("sharded", 20).await;
        let (_, meta) = env.get(&env.ds("batches/sharded"), &[]).await;
        assert_eq!(meta["batch"]["batchType"], "sharded-batch");
        let (_, sh) = env.get(&env.ds("batches/sharded/shards"), &[]).await;
        let shard = &sh["shards"][0];
        assert_eq!(shard["statusName"], "shard-ingested");
        assert_eq!(shard["shardObjectsCount"], 22);
        assert_eq!(shard["statusMetadata"]["failedFiles"], 2);
        // the same shard sent again is ingested again
        env.put_shard("sharded", tar).await;
        env.wait_count("sharded", 40).await;
        let (_, list) = env
            .get(&env.ds("batches/sharded/list"), &[("pageSize", "100")])
            .await;
        let files = list["filesMetadata"].as_array().unwrap();
        assert_eq!(files.len(), 40);
        assert!(files[0]["shardId"].is_string());
        let (_, bytes) = env
            .download(files[5]["downloadURL"].as_str().unwrap())
            .await;
        assert_eq!(bytes, members[5].1);
        // a broken archive is a shard-level error, not a 5xx
        env.put_shard("sharded", vec![7u8; 2000]).await;
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let (_, sh) = env.get(&env.ds("batches/sharded/shards"), &[]).await;
            if sh["shards"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s["statusType"] == "error")
            {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "{sh}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(env.count("sharded").await, 40);
        env.emu.shutdown().await;
    }

    #[tokio::test]
    async fn shard_notification_config_sends_files_status() {
        let env = start().await;
        let (rx, hook) = Receiver::start(0).await;
        let cfg =
            serde_json::to_vec(&json!({"ingestId": "run-1", "notificationsURL": hook})).unwrap();
        let big = vec![0u8; 21 * 1024 * 1024];
        let tar = tar_of(&[
            ("a.png", png(2, 2, 1)),
            ("notification_config.json", cfg),
            ("huge.png", big),
        ]);
        env.put_shard("withhook", tar).await;
        env.wait_count("withhook", 1).await;
        let calls = rx.wait_for(|c| !c.is_empty()).await;
        let (auth, body) = &calls[0];
        assert_eq!(auth.as_deref(), Some("Bearer rf_test-ws"));
        assert_eq!(body["type"], "roboflow-data-staging-notification-v1");
        assert_eq!(body["ingest_id"], "run-1");
        assert!(body["shard_id"].is_string());
        assert_eq!(
            body["notification"]["type"],
            "ingest-files-status-notification-v1"
        );
        assert_eq!(body["notification"]["ingested_files"], json!(["a.png"]));
        assert_eq!(
            body["notification"]["failed_files"][0]["type"],
            "file-size-limit-exceeded"
        );
        assert_eq!(
            body["notification"]["failed_files"][0]["reason"],
            "Max size of single image is 20971520B."
        );
        env.emu.shutdown().await;
    }

    #[tokio::test]
    async fn video_upload_through_signed_url() {
        let env = start().await;
        let mut mp4 = vec![0, 0, 0, 0x18];
        mp4.extend_from_slice(b"ftypisom\0\0\0\0isomiso2");
        let (url, headers) = env
            .signed_url("vids", "upload/video", Some("clip one.mp4"))
            .await;
        assert!(headers.contains_key("X-Goog-Content-Length-Range"));
        assert_eq!(env.count("vids").await, 0);
        let (s, b) = env.put(&url, &headers, mp4.clone()).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        assert_eq!(env.count("vids").await, 1);
        let (_, meta) = env.get(&env.ds("batches/vids"), &[]).await;
        assert_eq!(meta["batch"]["batchContentType"], "videos");
        let (_, list) = env.get(&env.ds("batches/vids/list"), &[]).await;
        assert_eq!(list["filesMetadata"][0]["fileName"], "clip one.mp4");
        assert_eq!(list["filesMetadata"][0]["contentType"], "videos");
        // not a video
        let (url, headers) = env
            .signed_url("vids", "upload/video", Some("fake.mp4"))
            .await;
        let (s, _) = env
            .put(&url, &headers, b"hello world, not a video".to_vec())
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert_eq!(env.count("vids").await, 1);
        let (s, _) = env
            .post(
                &env.ds("batches/vids/upload/video"),
                &[("fileName", "x.png")],
                None,
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        env.emu.shutdown().await;
    }

    #[tokio::test]
    async fn references_fetch_loopback_and_refuse_others() {
        let env = start().await;
        let (rx, hook) = Receiver::start(0).await;
        let files = file_server(vec![("a.png", png(3, 3, 1)), ("b.png", png(4, 4, 2))]).await;
        let body = json!({
            "imageReferences": [
                {"name": "a.png", "url": format!("{files}/a.png")},
                {"name": "b.png", "url": format!("{files}/b.png"), "extra": 1},
                {"name": "c.png", "url": "https://files.example.net/c.png"},
                {"name": "d.png", "url": format!("{files}/missing.png")}
            ],
            "ingestId": "ing-1",
            "notificationsURL": hook,
            "notificationCategories": ["ingest-status", "files-status"]
        });
        let (s, r) = env
            .post(
                &env.ds("batches/refs/bulk-upload/image-references"),
                &[],
                Some(body.clone()),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{r}");
        assert_eq!(r["ingestId"], "ing-1");
        assert_eq!(r["shardIds"].as_array().unwrap().len(), 1);
        assert_eq!(r["duplicated"], false);
        env.wait_count("refs", 2).await;
        let calls = rx.wait_for(|c| c.len() >= 2).await;
        let status = calls
            .iter()
            .find(|(_, b)| b["notification"]["type"] == "ingest-status-notification-v1")
            .unwrap();
        assert_eq!(status.1["notification"]["success"], false);
        assert_eq!(
            status.1["notification"]["error_details"]["type"],
            "unsafe-url-detected"
        );
        assert_eq!(
            status.1["notification"]["error_details"]["reason"],
            "Untrusted domain found: https://files.example.net/c.png"
        );
        assert_eq!(status.1["shard_id"], Value::Null);
        let fs = calls
            .iter()
            .find(|(_, b)| b["notification"]["type"] == "ingest-files-status-notification-v1")
            .unwrap();
        let failed = fs.1["notification"]["failed_files"].as_array().unwrap();
        assert_eq!(failed.len(), 2);
        assert!(
            failed
                .iter()
                .any(|f| f["type"] == "unsafe-url-detected" && f["file_name"] == "c.png")
        );
        // the same request again is a duplicate
        let (_, r2) = env
            .post(
                &env.ds("batches/refs/bulk-upload/image-references"),
                &[],
                Some(body),
            )
            .await;
        assert_eq!(r2["duplicated"], true);
        assert_eq!(r2["shardIds"], r["shardIds"]);
        // a references file on a non-loopback host fails the ingest, not the request
        let (s, r3) = env
            .post(
                &env.ds("batches/refs/bulk-upload/image-references"),
                &[],
                Some(json!({"imageReferencesURL": "https://bucket.example/refs.jsonl"})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{r3}");
        assert!(r3["ingestId"].is_string());
        // malformed bodies are 400
        let (s, e) = env
            .post(
                &env.ds("batches/refs/bulk-upload/image-references"),
                &[],
                Some(json!({"nothing": 1})),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
        env.emu.shutdown().await;
    }

    #[tokio::test]
    async fn video_references_from_a_loopback_jsonl_file() {
        let env = start().await;
        let mut mp4 = vec![0, 0, 0, 0x18];
        mp4.extend_from_slice(b"ftypisom\0\0\0\0isomiso2");
        let files0 = file_server(vec![("v.mp4", mp4)]).await;
        let jsonl = format!("{{\"name\": \"v.mp4\", \"url\": \"{files0}/v.mp4\"}}\n");
        let files = file_server(vec![("refs.jsonl", jsonl.into_bytes())]).await;
        let (s, r) = env
            .post(
                &env.ds("batches/vrefs/bulk-upload/video-references"),
                &[],
                Some(json!({"videoReferencesURL": format!("{files}/refs.jsonl")})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{r}");
        assert!(r.get("shardIds").is_none());
        env.wait_count("vrefs", 1).await;
        env.emu.shutdown().await;
    }
}

mod signed_urls {
    use super::*;

    #[tokio::test]
    async fn tampering_missing_headers_and_wrong_method_are_403() {
        let env = start().await;
        let (url, headers) = env.signed_url("s1", "bulk-upload/image-files", None).await;
        let tar = tar_of(&[("a.png", png(1, 1, 1))]);
        let (s, b) = env.put(&url, &BTreeMap::new(), tar.clone()).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        assert!(
            b["error"]
                .as_str()
                .unwrap()
                .contains("X-Goog-Content-Length-Range"),
            "{b}"
        );
        let mut wrong = headers.clone();
        wrong.insert("X-Goog-Content-Length-Range".into(), "0,1".into());
        assert_eq!(
            env.put(&url, &wrong, tar.clone()).await.0,
            StatusCode::FORBIDDEN
        );
        // flip a character of the payload
        let idx = url.find("/_signed/").unwrap() + 12;
        let mut t = url.clone().into_bytes();
        t[idx] = if t[idx] == b'0' { b'1' } else { b'0' };
        let (s, b) = env
            .put(&String::from_utf8(t).unwrap(), &headers, tar.clone())
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        assert!(b["error"].as_str().unwrap().contains("signature"), "{b}");
        assert_eq!(
            env.put(&format!("{url}x"), &headers, tar.clone()).await.0,
            StatusCode::FORBIDDEN
        );
        // an upload URL is not a download URL
        let (s, _) = env.download(&url).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        // and it works with the handed-out headers
        assert_eq!(env.put(&url, &headers, tar).await.0, StatusCode::OK);
        env.wait_count("s1", 1).await;
        // download URLs do not accept PUT
        let (_, list) = env.get(&env.ds("batches/s1/list"), &[]).await;
        let dl = list["filesMetadata"][0]["downloadURL"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(
            env.put(&dl, &headers, vec![1]).await.0,
            StatusCode::FORBIDDEN
        );
        env.emu.shutdown().await;
    }

    #[tokio::test]
    async fn expired_urls_are_403() {
        let mut config = EmulatorConfig::for_tests();
        config.signed_url_ttl = Duration::ZERO;
        let env = start_with(config).await;
        let (url, headers) = env.signed_url("s2", "bulk-upload/image-files", None).await;
        let tar = tar_of(&[("a.png", png(1, 1, 1))]);
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let (s, b) = env.put(&url, &headers, tar.clone()).await;
            if s == StatusCode::FORBIDDEN {
                assert!(b["error"].as_str().unwrap().contains("expired"), "{b}");
                break;
            }
            assert!(tokio::time::Instant::now() < deadline);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        env.emu.shutdown().await;
    }
}

mod pagination {
    use super::*;

    #[tokio::test]
    async fn page_size_is_honoured_and_tokens_are_never_empty() {
        let env = start().await;
        for i in 0..5u8 {
            env.upload_image("pg", &format!("{i}.png"), png(1, 1, i), "file")
                .await;
            env.upload_image(&format!("pg{i}"), "x.png", png(1, 1, i), "file")
                .await;
        }
        let mut names = Vec::new();
        let mut token: Option<String> = None;
        let mut pages = 0;
        loop {
            let mut q = vec![("pageSize", "2")];
            if let Some(t) = &token {
                q.push(("nextPageToken", t.as_str()));
            }
            let (s, b) = env.get(&env.ds("batches/pg/list"), &q).await;
            assert_eq!(s, StatusCode::OK);
            let files = b["filesMetadata"].as_array().unwrap();
            assert!(files.len() <= 2);
            names.extend(
                files
                    .iter()
                    .map(|f| f["fileName"].as_str().unwrap().to_string()),
            );
            pages += 1;
            match b.get("nextPageToken") {
                Some(Value::String(t)) => {
                    assert!(!t.is_empty());
                    token = Some(t.clone());
                }
                _ => break,
            }
        }
        assert_eq!(pages, 3);
        assert_eq!(names, vec!["0.png", "1.png", "2.png", "3.png", "4.png"]);
        let (_, b) = env.get(&env.ds("batches"), &[("pageSize", "4")]).await;
        assert_eq!(b["batches"].as_array().unwrap().len(), 4);
        assert!(b["nextPageToken"].is_string());
        let (s, _) = env
            .get(&env.ds("batches"), &[("nextPageToken", "bogus")])
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        let (s, _) = env.get(&env.ds("batches"), &[("pageSize", "-3")]).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        // jobs list always carries the key
        let (_, jobs) = env.get(&env.bp("jobs"), &[("pageSize", "10")]).await;
        assert_eq!(jobs, json!({"jobs": [], "nextPageToken": null}));
        env.emu.shutdown().await;
    }
}

mod jobs {
    use super::*;
    use std::io::Read;

    fn untar_gz(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
        let mut a = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
        a.entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let name = e.path().unwrap().to_string_lossy().into_owned();
                let mut data = Vec::new();
                e.read_to_end(&mut data).unwrap();
                (name, data)
            })
            .collect()
    }

    #[tokio::test]
    async fn life_cycle_through_export_and_download() {
        let env = start().await;
        let (rx, hook) = Receiver::start(1).await;
        for i in 0..3u8 {
            env.upload_image(
                "in1",
                &format!("img{i}.png"),
                png(10 + u32::from(i), 20, i),
                "file",
            )
            .await;
        }
        let mut body = image_job("in1", "image-properties", "jsonl");
        body["notificationsURL"] = json!(hook);
        let (s, b) = env
            .post(
                &env.bp("jobs/job-1"),
                &[("name", "my job")],
                Some(body.clone()),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        // idempotent create, conflicting create
        assert_eq!(
            env.post(&env.bp("jobs/job-1"), &[], Some(body.clone()))
                .await
                .0,
            StatusCode::OK
        );
        let mut other = body.clone();
        other["processingSpecification"]["workflowId"] = json!("mock-detector");
        assert_eq!(
            env.post(&env.bp("jobs/job-1"), &[], Some(other)).await.0,
            StatusCode::CONFLICT
        );
        let done = env.wait_job("job-1").await;
        let job = &done["job"];
        assert_eq!(job["error"], false, "{done}");
        assert_eq!(job["name"], "my job");
        assert_eq!(job["plannedStages"], json!(["processing", "export"]));
        assert_eq!(job["jobDefinition"], body);
        assert_eq!(done["jobStatus"], "completed");
        assert_eq!(done["progress"], 1.0);
        let (_, stages) = env.get(&env.bp("jobs/job-1/stages"), &[]).await;
        let stages = stages["stages"].as_array().unwrap().clone();
        assert_eq!(stages.len(), 2);
        assert_eq!(stages[0]["processingStageName"], "processing");
        assert_eq!(stages[1]["processingStageName"], "export");
        assert_eq!(stages[1]["statusType"], "success");
        let sid = stages[0]["processingStageId"].as_str().unwrap();
        let (_, tasks) = env
            .get(&env.bp(&format!("jobs/job-1/stages/{sid}/tasks")), &[])
            .await;
        assert!(tasks.as_object().unwrap().contains_key("nextPageToken"));
        assert_eq!(tasks["tasks"][0]["statusType"], "success");
        assert_eq!(tasks["tasks"][0]["progress"], 1.0);
        // export output: multipart batch, part "results", tar.gz archives
        let out = stages[1]["outputBatches"][0].as_str().unwrap();
        let (_, meta) = env.get(&env.ds(&format!("batches/{out}")), &[]).await;
        assert_eq!(meta["batch"]["batchType"], "multipart-batch");
        let (_, parts) = env.get(&env.ds(&format!("batches/{out}/parts")), &[]).await;
        assert_eq!(parts["batchParts"][0]["partName"], "results");
        assert_eq!(parts["batchParts"][0]["contentType"], "archives");
        let (_, c) = env
            .get(
                &env.ds(&format!("batches/{out}/count")),
                &[("partName", "results")],
            )
            .await;
        assert_eq!(c["count"], 1);
        let (s, _) = env
            .get(
                &env.ds(&format!("batches/{out}/count")),
                &[("partName", "nope")],
            )
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (_, list) = env
            .get(
                &env.ds(&format!("batches/{out}/list")),
                &[("partName", "results")],
            )
            .await;
        let f = &list["filesMetadata"][0];
        assert!(f["fileName"].as_str().unwrap().ends_with(".tar.gz"));
        assert_eq!(f["partName"], "results");
        let (s, bytes) = env.download(f["downloadURL"].as_str().unwrap()).await;
        assert_eq!(s, StatusCode::OK);
        let members = untar_gz(&bytes);
        assert_eq!(members.len(), 1);
        assert!(!members[0].0.contains('/'));
        let lines: Vec<Value> = String::from_utf8(members[0].1.clone())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3);
        let rec = lines.iter().find(|l| l["file_name"] == "img2.png").unwrap();
        assert_eq!(rec["width"], 12);
        assert_eq!(rec["height"], 20);
        assert_eq!(rec["format"], "png");
        assert_eq!(rec["channels"], 3);
        assert_eq!(rec["mean_colour"][0], 2.0, "{rec}");
        // job webhook: first attempt refused, second accepted, same event
        let calls = rx.wait_for(|c| c.len() >= 2).await;
        assert_eq!(calls[0].1["delivery_attempt"], 1);
        assert_eq!(calls[1].1["delivery_attempt"], 2);
        assert_eq!(calls[0].1["event_id"], calls[1].1["event_id"]);
        assert_eq!(calls[1].1["job_state"], "success");
        assert_eq!(calls[1].1["job_id"], "job-1");
        assert_eq!(calls[1].0.as_deref(), Some("Bearer rf_test-ws"));
        // jobs list
        let (_, jobs) = env.get(&env.bp("jobs"), &[("pageSize", "10")]).await;
        assert_eq!(jobs["jobs"][0]["jobId"], "job-1");
        assert!(jobs.as_object().unwrap().contains_key("nextPageToken"));
        env.emu.shutdown().await;
    }

    #[tokio::test]
    async fn detector_csv_over_shards() {
        let mut config = EmulatorConfig::for_tests();
        config.job_speed.results_per_archive = 1;
        let env = start_with(config).await;
        env.put_shard(
            "sh",
            tar_of(&[("a.png", png(100, 80, 1)), ("b.png", png(100, 80, 2))]),
        )
        .await;
        env.put_shard("sh", tar_of(&[("c.png", png(100, 80, 3))]))
            .await;
        env.wait_count("sh", 3).await;
        let (s, _) = env
            .post(
                &env.bp("jobs/det"),
                &[],
                Some(image_job("sh", "color-blobs", "csv")),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        let done = env.wait_job("det").await;
        assert_eq!(done["job"]["error"], false, "{done}");
        let (_, stages) = env.get(&env.bp("jobs/det/stages"), &[]).await;
        assert_eq!(stages["stages"][0]["tasksNumber"], 2, "one task per shard");
        assert_eq!(
            stages["stages"][1]["tasksNumber"], 2,
            "one archive per result file"
        );
        let proc_out = stages["stages"][0]["outputBatches"][0].as_str().unwrap();
        let (_, list) = env
            .get(
                &env.ds(&format!("batches/{proc_out}/list")),
                &[("partName", "results")],
            )
            .await;
        let mut rows = 0;
        for f in list["filesMetadata"].as_array().unwrap() {
            assert!(f["fileName"].as_str().unwrap().ends_with(".csv"));
            let (_, bytes) = env.download(f["downloadURL"].as_str().unwrap()).await;
            let text = String::from_utf8(bytes).unwrap();
            assert!(
                text.starts_with("file_name,predictions,workflow_id\n"),
                "{text}"
            );
            rows += text.lines().count() - 1;
        }
        assert_eq!(rows, 3);
        env.emu.shutdown().await;
    }

    #[tokio::test]
    async fn color_blobs_on_samples_and_undecodable_images_are_logged() {
        let env = start().await;
        let samples = concat!(env!("CARGO_MANIFEST_DIR"), "/../../samples/images/park");
        let sample = std::fs::read(format!("{samples}/park_001.png")).unwrap();
        assert_eq!(
            env.upload_image("blobs", "park_001.png", sample, "file")
                .await
                .0,
            StatusCode::OK
        );
        // a PNG signature and header without pixel data: accepted at upload, fails to decode
        let mut broken = png(4, 4, 1);
        broken.truncate(33);
        assert_eq!(
            env.upload_image("blobs", "broken.png", broken, "file")
                .await
                .0,
            StatusCode::OK
        );
        let (s, _) = env
            .post(
                &env.bp("jobs/blobs"),
                &[],
                Some(image_job("blobs", "color-blobs", "jsonl")),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        let done = env.wait_job("blobs").await;
        assert_eq!(done["job"]["error"], false, "{done}");
        let (_, logs) = env
            .get(&env.bp("jobs/blobs/logs"), &[("severity", "error")])
            .await;
        let failed = &logs["logs"][0];
        assert_eq!(failed["logType"], "image-processing-failed", "{logs}");
        assert_eq!(failed["payload"]["fileName"], "broken.png");
        assert_eq!(failed["taskId"], "processing-0001");
        let (_, stages) = env.get(&env.bp("jobs/blobs/stages"), &[]).await;
        let out = stages["stages"][0]["outputBatches"][0]
            .as_str()
            .unwrap()
            .to_string();
        let (_, list) = env.get(&env.ds(&format!("batches/{out}/list")), &[]).await;
        let (_, bytes) = env
            .download(list["filesMetadata"][0]["downloadURL"].as_str().unwrap())
            .await;
        let lines: Vec<Value> = String::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0]["file_name"], "park_001.png");
        let preds = lines[0]["predictions"]["predictions"].as_array().unwrap();
        assert_eq!(preds.len(), 6);
        assert_eq!(
            lines[0]["predictions"]["image"],
            json!({"width": 640, "height": 480})
        );
        for p in preds {
            for k in [
                "x",
                "y",
                "width",
                "height",
                "confidence",
                "class",
                "class_id",
                "detection_id",
            ] {
                assert!(p.get(k).is_some(), "{k} missing in {p}");
            }
        }
        env.emu.shutdown().await;
    }

    /// A tiny MP4: ftyp + moov(mvhd, trak(tkhd, mdia(hdlr vide, minf(stbl(stsz))))).
    fn tiny_mp4(frames: u32, seconds: u32) -> Vec<u8> {
        fn bx(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
            let mut v = ((body.len() + 8) as u32).to_be_bytes().to_vec();
            v.extend_from_slice(kind);
            v.extend_from_slice(body);
            v
        }
        let mut mvhd = vec![0u8; 100];
        mvhd[12..16].copy_from_slice(&1000u32.to_be_bytes());
        mvhd[16..20].copy_from_slice(&(seconds * 1000).to_be_bytes());
        let mut tkhd = vec![0u8; 84];
        tkhd[76..80].copy_from_slice(&(640u32 << 16).to_be_bytes());
        tkhd[80..84].copy_from_slice(&(360u32 << 16).to_be_bytes());
        let mut hdlr = vec![0u8; 24];
        hdlr[8..12].copy_from_slice(b"vide");
        let mut stsz = vec![0u8; 12];
        stsz[8..12].copy_from_slice(&frames.to_be_bytes());
        let minf = bx(b"minf", &bx(b"stbl", &bx(b"stsz", &stsz)));
        let mdia = bx(b"mdia", &[bx(b"hdlr", &hdlr), minf].concat());
        let trak = bx(b"trak", &[bx(b"tkhd", &tkhd), mdia].concat());
        let moov = bx(b"moov", &[bx(b"mvhd", &mvhd), trak].concat());
        [
            bx(b"ftyp", b"isom\0\0\0\0isom"),
            bx(b"mdat", &[7u8; 64]),
            moov,
        ]
        .concat()
    }

    #[tokio::test]
    async fn video_job_samples_frames_at_max_fps() {
        let env = start().await;
        let (url, headers) = env
            .signed_url("clips", "upload/video", Some("clip.mp4"))
            .await;
        assert_eq!(
            env.put(&url, &headers, tiny_mp4(90, 3)).await.0,
            StatusCode::OK
        );
        let body = json!({
            "type": "simple-video-processing-v1",
            "jobInput": {"type": "staging-batch-input-v1", "batchId": "clips"},
            "computeConfiguration": {"type": "compute-configuration-v2", "machineType": "gpu"},
            "processingSpecification": {
                "type": "workflows-processing-specification-v1",
                "workspace": "test-ws",
                "workflowId": "video-properties",
                "persistImagesOutputs": false,
                "maxVideoFPS": 5
            }
        });
        assert_eq!(
            env.post(&env.bp("jobs/vid"), &[], Some(body)).await.0,
            StatusCode::OK
        );
        let done = env.wait_job("vid").await;
        assert_eq!(done["job"]["error"], false, "{done}");
        let (_, stages) = env.get(&env.bp("jobs/vid/stages"), &[]).await;
        assert_eq!(stages["stages"][0]["tasksNumber"], 1, "one task per video");
        let out = stages["stages"][0]["outputBatches"][0]
            .as_str()
            .unwrap()
            .to_string();
        let (_, list) = env.get(&env.ds(&format!("batches/{out}/list")), &[]).await;
        let (_, bytes) = env
            .download(list["filesMetadata"][0]["downloadURL"].as_str().unwrap())
            .await;
        let rec: Value = serde_json::from_slice(
            String::from_utf8(bytes)
                .unwrap()
                .lines()
                .next()
                .unwrap()
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(rec["file_name"], "clip.mp4");
        assert_eq!(rec["container"], "mp4");
        assert_eq!(rec["width"], 640);
        assert_eq!(rec["frame_count"], 90);
        assert_eq!(rec["fps"], 30.0);
        assert_eq!(rec["frames"].as_array().unwrap().len(), 15, "3 s at 5 fps");
        // an image workflow on a video batch fails clearly
        let mut img = image_job("clips", "image-properties", "jsonl");
        img["type"] = json!("simple-video-processing-v1");
        env.post(&env.bp("jobs/vid2"), &[], Some(img)).await;
        let failed = env.wait_job("vid2").await;
        assert_eq!(failed["job"]["error"], true);
        assert!(
            failed["job"]["lastNotification"]["message"]
                .as_str()
                .unwrap()
                .contains("runs on images"),
            "{failed}"
        );
        env.emu.shutdown().await;
    }

    #[tokio::test]
    async fn unknown_workflow_fails_with_log_and_webhook() {
        let mut config = EmulatorConfig::for_tests();
        config.webhooks.authorization = Some("Bearer custom-secret".into());
        let env = start_with(config).await;
        let (rx, hook) = Receiver::start(0).await;
        env.upload_image("in2", "a.png", png(2, 2, 1), "file").await;
        let mut body = image_job("in2", "no-such-flow", "jsonl");
        body["notificationsURL"] = json!(hook);
        assert_eq!(
            env.post(&env.bp("jobs/bad-wf"), &[], Some(body)).await.0,
            StatusCode::OK
        );
        let done = env.wait_job("bad-wf").await;
        assert_eq!(done["job"]["error"], true);
        assert_eq!(done["jobStatus"], "failed");
        assert!(
            done["job"]["lastNotification"]["message"]
                .as_str()
                .unwrap()
                .contains("no-such-flow")
        );
        let (_, logs) = env
            .get(&env.bp("jobs/bad-wf/logs"), &[("severity", "error")])
            .await;
        let logs = logs["logs"].as_array().unwrap();
        assert!(!logs.is_empty());
        assert!(logs.iter().all(|l| l["severity"] == "error"));
        assert!(logs.iter().any(|l| l["logType"] == "workflow-not-found"));
        let (s, _) = env
            .get(&env.bp("jobs/bad-wf/logs"), &[("severity", "fatal")])
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        let calls = rx.wait_for(|c| !c.is_empty()).await;
        assert_eq!(calls[0].1["job_state"], "fail");
        assert_eq!(calls[0].0.as_deref(), Some("Bearer custom-secret"));
        assert!(
            !format!(
                "{:?}",
                EmulatorConfig {
                    webhooks: rf_emulator::WebhookConfig {
                        authorization: Some("Bearer custom-secret".into()),
                        ..Default::default()
                    },
                    ..EmulatorConfig::for_tests()
                }
            )
            .contains("custom-secret")
        );
        env.emu.shutdown().await;
    }

    #[tokio::test]
    async fn create_job_validation() {
        let env = start().await;
        env.upload_image("in3", "a.png", png(2, 2, 1), "file").await;
        let (s, _) = env
            .post(
                &env.bp("jobs/Bad_Job"),
                &[],
                Some(image_job("in3", "image-properties", "jsonl")),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        let (s, _) = env
            .post(
                &env.bp("jobs/j1"),
                &[],
                Some(image_job("nope", "image-properties", "jsonl")),
            )
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let mut b = image_job("in3", "image-properties", "jsonl");
        b["maxImageFailureRate"] = json!(1.5);
        let (s, e) = env.post(&env.bp("jobs/j2"), &[], Some(b)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
        let (s, e) = env
            .post(&env.bp("jobs/j3"), &[], Some(json!({"type": "mystery"})))
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert!(e["error"].is_string());
        let (s, _) = env.get(&env.bp("jobs/unknown"), &[]).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        // TRT compilation runs as a single stage
        let trt = json!({"type": "trt-compilation-v1", "modelId": "p/3", "compilationDevices": ["nvidia-t4", "nvidia-l40s"]});
        assert_eq!(
            env.post(&env.bp("jobs/trt-1"), &[], Some(trt)).await.0,
            StatusCode::OK
        );
        let done = env.wait_job("trt-1").await;
        assert_eq!(done["job"]["error"], false);
        assert_eq!(done["job"]["plannedStages"], json!(["compilation"]));
        env.emu.shutdown().await;
    }

    #[tokio::test]
    async fn timeout_then_restart_with_overrides() {
        let mut config = EmulatorConfig::for_tests();
        config.job_speed.simulated_seconds_per_item = 1.0;
        let env = start_with(config).await;
        for i in 0..4u8 {
            env.upload_image("in4", &format!("{i}.png"), png(2, 2, i), "file")
                .await;
        }
        let mut body = image_job("in4", "image-properties", "jsonl");
        body["processingTimeoutSeconds"] = json!(2);
        assert_eq!(
            env.post(&env.bp("jobs/slow"), &[], Some(body)).await.0,
            StatusCode::OK
        );
        let done = env.wait_job("slow").await;
        assert_eq!(done["job"]["error"], true, "{done}");
        let (_, logs) = env
            .get(&env.bp("jobs/slow/logs"), &[("severity", "error")])
            .await;
        assert!(
            logs["logs"]
                .as_array()
                .unwrap()
                .iter()
                .any(|l| l["logType"] == "processing-timeout"),
            "{logs}"
        );
        let (_, tasks) = env
            .get(&env.bp("jobs/slow/stages/processing/tasks"), &[])
            .await;
        assert!(
            tasks["tasks"][0]["statusType"]
                .as_str()
                .unwrap()
                .contains("error")
        );
        // restart without body is accepted and fails again; with a larger budget it succeeds
        let r = env
            .http
            .post(env.bp("jobs/slow/restart"))
            .query(&[("api_key", "test-key")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let again = env.wait_job("slow").await;
        assert_eq!(again["job"]["error"], true);
        let over = json!({"type": "parameters-override-v1", "processingTimeoutSeconds": 100.0, "maxParallelTasks": 2});
        assert_eq!(
            env.post(&env.bp("jobs/slow/restart"), &[], Some(over.clone()))
                .await
                .0,
            StatusCode::OK
        );
        let ok = env.wait_job("slow").await;
        assert_eq!(ok["job"]["error"], false, "{ok}");
        assert_eq!(ok["job"]["restartParametersOverride"], json!([{}, over]));
        // restarting a succeeded job is refused
        assert_eq!(
            env.post(&env.bp("jobs/slow/restart"), &[], None).await.0,
            StatusCode::CONFLICT
        );
        env.emu.shutdown().await;
    }

    #[tokio::test]
    async fn max_parallel_tasks_is_honoured() {
        let mut config = EmulatorConfig::for_tests();
        config.job_speed.images_per_task = 1;
        config.job_speed.item_delay = Duration::from_millis(60);
        let env = start_with(config).await;
        for i in 0..6u8 {
            env.upload_image("par", &format!("{i}.png"), png(2, 2, i), "file")
                .await;
        }
        let mut body = image_job("par", "image-properties", "jsonl");
        body["maxParallelTasks"] = json!(1);
        env.post(&env.bp("jobs/par"), &[], Some(body)).await;
        let deadline = tokio::time::Instant::now() + DEADLINE;
        let (mut most, mut seen_running) = (0, false);
        loop {
            let (_, tasks) = env
                .get(&env.bp("jobs/par/stages/processing/tasks"), &[])
                .await;
            if let Some(list) = tasks["tasks"].as_array() {
                let running = list
                    .iter()
                    .filter(|t| t["statusType"] == "info" && !t["progress"].is_null())
                    .count();
                most = most.max(running);
                seen_running |= running > 0;
                if list.len() == 6 && list.iter().all(|t| t["statusType"] == "success") {
                    break;
                }
            }
            assert!(tokio::time::Instant::now() < deadline, "{tasks}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(seen_running, "never saw a running task");
        assert_eq!(most, 1, "more than maxParallelTasks tasks ran at once");
        env.emu.shutdown().await;
    }

    #[tokio::test]
    async fn abort_stops_a_running_job() {
        let mut config = EmulatorConfig::for_tests();
        config.job_speed.item_delay = Duration::from_millis(100);
        let env = start_with(config).await;
        let (rx, hook) = Receiver::start(0).await;
        for i in 0..30u8 {
            env.upload_image("in5", &format!("{i}.png"), png(2, 2, i), "file")
                .await;
        }
        let mut body = image_job("in5", "image-properties", "jsonl");
        body["notificationsURL"] = json!(hook);
        assert_eq!(
            env.post(&env.bp("jobs/long"), &[], Some(body)).await.0,
            StatusCode::OK
        );
        // wait until it is visibly running
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let (_, j) = env.get(&env.bp("jobs/long"), &[]).await;
            if j["job"]["currentStage"] == "processing" {
                assert_eq!(j["job"]["isTerminal"], false);
                assert_eq!(j["jobStatus"], "processing");
                break;
            }
            assert!(tokio::time::Instant::now() < deadline);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let (s, b) = env.post(&env.bp("jobs/long/abort"), &[], None).await;
        assert_eq!(s, StatusCode::OK);
        assert!(b.is_object());
        let done = env.wait_job("long").await;
        assert_eq!(done["job"]["error"], true);
        assert!(
            done["job"]["lastNotification"]["message"]
                .as_str()
                .unwrap()
                .contains("abort")
        );
        // aborting again changes nothing
        assert_eq!(
            env.post(&env.bp("jobs/long/abort"), &[], None).await.0,
            StatusCode::OK
        );
        let calls = rx.wait_for(|c| !c.is_empty()).await;
        assert_eq!(calls[0].1["job_state"], "fail");
        let (_, logs) = env
            .get(&env.bp("jobs/long/logs"), &[("severity", "warning")])
            .await;
        assert_eq!(logs["logs"][0]["logType"], "job-aborted");
        env.emu.shutdown().await;
    }
}

mod persistence {
    use super::*;

    #[tokio::test]
    async fn state_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let config = EmulatorConfig::for_tests().with_data_dir(dir.path());
        let env = start_with(config.clone()).await;
        env.upload_image("keep", "a.png", png(3, 3, 1), "file")
            .await;
        env.put_shard("keep-sh", tar_of(&[("b.png", png(3, 3, 2))]))
            .await;
        env.wait_count("keep-sh", 1).await;
        env.post(
            &env.bp("jobs/pj"),
            &[],
            Some(image_job("keep", "image-properties", "jsonl")),
        )
        .await;
        env.wait_job("pj").await;
        let (_, list) = env.get(&env.ds("batches/keep/list"), &[]).await;
        let url = list["filesMetadata"][0]["downloadURL"]
            .as_str()
            .unwrap()
            .to_string();
        env.emu.shutdown().await;

        let env = start_with(config).await;
        assert_eq!(env.count("keep").await, 1);
        assert_eq!(env.count("keep-sh").await, 1);
        let (_, j) = env.get(&env.bp("jobs/pj"), &[]).await;
        assert_eq!(j["job"]["isTerminal"], true);
        assert_eq!(j["job"]["error"], false);
        // signed URLs stay valid across restarts (the key is in the data dir); the port changed
        let path = &url[url.find("/_signed/").unwrap()..];
        let (s, bytes) = env
            .download(&format!("{}{}", env.base().trim_end_matches('/'), path))
            .await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(bytes, png(3, 3, 1));
        env.emu.shutdown().await;
    }

    #[tokio::test]
    async fn a_job_cut_off_by_a_restart_resumes() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = EmulatorConfig::for_tests().with_data_dir(dir.path());
        config.job_speed.item_delay = Duration::from_millis(50);
        let env = start_with(config.clone()).await;
        for i in 0..20u8 {
            env.upload_image("resume", &format!("{i}.png"), png(2, 2, i), "file")
                .await;
        }
        env.post(
            &env.bp("jobs/rj"),
            &[],
            Some(image_job("resume", "image-properties", "jsonl")),
        )
        .await;
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let (_, j) = env.get(&env.bp("jobs/rj"), &[]).await;
            if j["progress"].as_f64().unwrap() > 0.0 {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        env.emu.shutdown().await;

        config.job_speed.item_delay = Duration::ZERO;
        let env = start_with(config).await;
        let done = env.wait_job("rj").await;
        assert_eq!(done["job"]["error"], false, "{done}");
        let (_, stages) = env.get(&env.bp("jobs/rj/stages"), &[]).await;
        let out = stages["stages"][0]["outputBatches"][0]
            .as_str()
            .unwrap()
            .to_string();
        let (_, list) = env.get(&env.ds(&format!("batches/{out}/list")), &[]).await;
        let (_, bytes) = env
            .download(list["filesMetadata"][0]["downloadURL"].as_str().unwrap())
            .await;
        assert_eq!(String::from_utf8(bytes).unwrap().lines().count(), 20);
        env.emu.shutdown().await;
    }

    /// No graceful shutdown: the runtime is dropped as a crash would end the
    /// process. What was acknowledged before the snapshot landed survives.
    #[test]
    fn state_survives_a_crash_without_shutdown() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = EmulatorConfig::for_tests().with_data_dir(dir.path());
        // A real crash ends the process and with it the data dir's lock; the
        // emulator leaked below would keep it.
        config.lock_data_dir = false;
        {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let env = start_with(config.clone()).await;
                assert_eq!(
                    env.upload_image("crash", "a.png", png(2, 2, 1), "file")
                        .await
                        .0,
                    StatusCode::OK
                );
                let state = dir.path().join("state.json");
                let deadline = tokio::time::Instant::now() + DEADLINE;
                while !std::fs::read_to_string(&state)
                    .unwrap_or_default()
                    .contains("\"crash\"")
                {
                    assert!(
                        tokio::time::Instant::now() < deadline,
                        "snapshot never written"
                    );
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                std::mem::forget(env); // no shutdown, no final snapshot
            });
            rt.shutdown_background();
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let env = start_with(config).await;
            assert_eq!(env.count("crash").await, 1);
            let (_, list) = env.get(&env.ds("batches/crash/list"), &[]).await;
            let (s, bytes) = env
                .download(list["filesMetadata"][0]["downloadURL"].as_str().unwrap())
                .await;
            assert_eq!(s, StatusCode::OK);
            assert_eq!(bytes, png(2, 2, 1));
            env.emu.shutdown().await;
        });
    }

    #[tokio::test]
    async fn dropping_the_emulator_removes_its_temporary_data_dir() {
        let env = start().await;
        env.upload_image("tmp", "a.png", png(2, 2, 1), "file").await;
        let dir = env.emu.state().data_dir().to_path_buf();
        assert!(dir.join("blobs").exists());
        drop(env);
        let deadline = tokio::time::Instant::now() + DEADLINE;
        while dir.exists() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} still exists",
                dir.display()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn expired_batches_disappear() {
        let mut config = EmulatorConfig::for_tests();
        config.batch_ttl = Duration::from_millis(300);
        let env = start_with(config).await;
        assert_eq!(
            env.upload_image("short", "a.png", png(1, 1, 1), "file")
                .await
                .0,
            StatusCode::OK
        );
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let (s, _) = env.get(&env.ds("batches/short"), &[]).await;
            if s == StatusCode::NOT_FOUND {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let (_, all) = env.get(&env.ds("batches"), &[]).await;
        assert_eq!(all["batches"], json!([]));
        env.emu.shutdown().await;
    }
}

mod hostile {
    use super::*;

    /// A small deterministic generator (no extra dependency).
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            self.0 >> 33
        }
        fn bytes(&mut self, n: usize) -> Vec<u8> {
            (0..n).map(|_| self.next() as u8).collect()
        }
    }

    #[tokio::test]
    async fn garbage_never_gets_a_5xx() {
        let env = start().await;
        env.upload_image("h", "a.png", png(1, 1, 1), "file").await;
        let mut rng = Lcg(42);
        let endpoints = [
            ("POST", "batches/h/bulk-upload/image-references"),
            ("POST", "batches/h2/bulk-upload/video-references"),
            ("POST", "batches/h/upload/image"),
        ];
        for i in 0..60 {
            let (method, path) = endpoints[i % endpoints.len()];
            let n = (rng.next() % 300) as usize;
            let body = rng.bytes(n);
            let r = env
                .http
                .request(method.parse().unwrap(), env.ds(path))
                .query(&[("api_key", "test-key"), ("fileName", "x.png")])
                .header(
                    "content-type",
                    if i % 2 == 0 {
                        "application/json"
                    } else {
                        "multipart/form-data; boundary=zz"
                    },
                )
                .body(body)
                .send()
                .await
                .unwrap();
            assert!(
                r.status().is_client_error() || r.status().is_success(),
                "{path}: {}",
                r.status()
            );
            let v: Value = r.json().await.unwrap();
            assert!(v.is_object());
        }
        for i in 0..40 {
            let n = (rng.next() % 200) as usize;
            let body = rng.bytes(n);
            let body = if i % 3 == 0 {
                serde_json::to_vec(&json!({"type": "simple-image-processing-v1", "jobInput": String::from_utf8_lossy(&body)})).unwrap()
            } else {
                body
            };
            let r = env
                .http
                .post(env.bp(&format!("jobs/fz-{i}")))
                .query(&[("api_key", "test-key")])
                .body(body)
                .send()
                .await
                .unwrap();
            assert!(r.status().is_client_error(), "{}", r.status());
            let r = env
                .http
                .post(env.bp("jobs/fz-x/restart"))
                .query(&[("api_key", "test-key")])
                .body(rng.bytes(20))
                .send()
                .await
                .unwrap();
            assert!(r.status().is_client_error());
        }
        let odd = [
            "batches/%2e%2e/count",
            "batches/h/list?pageSize=99999999999999999999",
            "batches/h/list?nextPageToken=%00%ff",
            "batches/h/count?partName=%E2%82%AC",
            "batches/h/nothing",
            "batches/",
        ];
        for p in odd {
            let url = format!(
                "{}{}{}api_key=test-key",
                env.ds(p),
                "",
                if p.contains('?') { "&" } else { "?" }
            );
            let r = env.http.get(url).send().await.unwrap();
            assert!(
                r.status().is_client_error() || r.status().is_success(),
                "{p}: {}",
                r.status()
            );
            assert!(r.json::<Value>().await.unwrap().is_object(), "{p}");
        }
        env.emu.shutdown().await;
    }
}

mod properties {
    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    const ENDPOINTS: &[(&str, &str)] = &[
        ("GET", "data-staging/v1/external/test-ws/batches/{s}"),
        ("GET", "data-staging/v1/external/test-ws/batches/{s}/count"),
        ("GET", "data-staging/v1/external/test-ws/batches/{s}/list"),
        ("GET", "data-staging/v1/external/test-ws/batches/{s}/shards"),
        ("GET", "data-staging/v1/external/test-ws/batches/{s}/parts"),
        ("GET", "data-staging/v1/external/test-ws/batches"),
        (
            "POST",
            "data-staging/v1/external/test-ws/batches/{s}/upload/image",
        ),
        (
            "POST",
            "data-staging/v1/external/test-ws/batches/{s}/upload/video",
        ),
        (
            "POST",
            "data-staging/v1/external/test-ws/batches/{s}/bulk-upload/image-references",
        ),
        ("POST", "batch-processing/v1/external/test-ws/jobs/{s}"),
        ("GET", "batch-processing/v1/external/test-ws/jobs/{s}/logs"),
        (
            "GET",
            "batch-processing/v1/external/test-ws/jobs/{s}/stages/{s}/tasks",
        ),
        (
            "POST",
            "batch-processing/v1/external/test-ws/jobs/{s}/restart",
        ),
        ("PUT", "_signed/{s}"),
        ("GET", "_signed/{s}"),
    ];
    const PARAMS: &[&str] = &[
        "pageSize",
        "nextPageToken",
        "partName",
        "fileName",
        "severity",
        "displayName",
        "name",
    ];

    fn enc(s: &str) -> String {
        url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
    }

    /// Arbitrary IDs, query values and bodies on every endpoint: the answer
    /// is always a JSON object with a status below 500 (upload endpoints may
    /// answer 200 with a signed URL).
    #[test]
    fn arbitrary_requests_never_get_a_5xx() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let env = rt.block_on(start());
        let mut runner = TestRunner::new(Config {
            cases: 96,
            failure_persistence: None,
            ..Config::default()
        });
        let strategy = (
            0..ENDPOINTS.len(),
            "[a-z0-9_./%-]{0,70}|.{0,20}",
            proptest::collection::vec((0..PARAMS.len(), ".{0,24}"), 0..4),
            prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..200),
                "\\{.{0,80}\\}".prop_map(String::into_bytes),
                Just(br#"{"type":"simple-image-processing-v1","jobInput":{"type":"staging-batch-input-v1","batchId":"x"}}"#.to_vec()),
            ],
        );
        runner
            .run(&strategy, |(endpoint, segment, params, body)| {
                let (method, template) = ENDPOINTS[endpoint];
                let path =
                    template.replace("{s}", &segment.replace('?', "%3F").replace('#', "%23"));
                let mut query = String::from("api_key=test-key");
                for (p, v) in &params {
                    query.push_str(&format!("&{}={}", PARAMS[*p], enc(v)));
                }
                let url = format!("{}{path}?{query}", env.base());
                let (status, json_ok) = rt.block_on(async {
                    let Ok(req) = env
                        .http
                        .request(method.parse().unwrap(), &url)
                        .body(body.clone())
                        .build()
                    else {
                        return (200, true); // not expressible as an HTTP request
                    };
                    let r = env.http.execute(req).await.unwrap();
                    let status = r.status().as_u16();
                    let ok = r
                        .json::<Value>()
                        .await
                        .map(|v| v.is_object())
                        .unwrap_or(false);
                    (status, ok)
                });
                prop_assert!(status < 500, "{method} {url} -> {status}");
                prop_assert!(
                    json_ok || status == 200,
                    "{method} {url} -> {status} without a JSON object body"
                );
                Ok(())
            })
            .unwrap();
        rt.block_on(env.emu.shutdown());
    }
}

mod prefix {
    use super::*;

    #[tokio::test]
    async fn a_base_url_with_a_path_prefix_is_served() {
        let mut config = EmulatorConfig::for_tests();
        // the host part is only written into signed URLs; find a free port first
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = probe.local_addr().unwrap();
        drop(probe);
        config.public_base_url = Some(format!("http://{addr}/api/").parse().unwrap());
        let emu = Emulator::start(config, addr).await.unwrap();
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        for root in [
            format!("http://{addr}/api"),
            format!("http://{addr}/api/"),
            format!("http://{addr}/"),
        ] {
            let r = http
                .get(&root)
                .query(&[("api_key", "test-key")])
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK, "{root}");
            assert_eq!(r.json::<Value>().await.unwrap()["workspace"], "test-ws");
        }
        let url = format!(
            "http://{addr}/api/data-staging/v1/external/test-ws/batches/p1/bulk-upload/image-files"
        );
        let r: Value = http
            .post(&url)
            .query(&[("api_key", "test-key")])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let upload = r["signedURLDetails"]["uploadURL"].as_str().unwrap();
        assert!(
            upload.starts_with(&format!("http://{addr}/api/_signed/")),
            "{upload}"
        );
        let r = http
            .put(upload)
            .header(
                "X-Goog-Content-Length-Range",
                r["signedURLDetails"]["extensionHeaders"]["X-Goog-Content-Length-Range"]
                    .as_str()
                    .unwrap(),
            )
            .body(tar_of(&[("a.png", png(1, 1, 1))]))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        emu.shutdown().await;
    }
}

mod secrets {
    use super::*;

    #[tokio::test]
    async fn debug_output_never_shows_keys() {
        let env =
            start_with(EmulatorConfig::for_tests().with_key("very-secret-key-123", "ws2")).await;
        let shown = format!(
            "{:?} {:?}",
            env.emu,
            EmulatorConfig::for_tests().with_key("very-secret-key-123", "ws2")
        );
        assert!(!shown.contains("very-secret-key-123"), "{shown}");
        assert!(!shown.contains("test-key"), "{shown}");
        env.emu.shutdown().await;
    }
}

/// Responses checked against the official OpenAPI schemas (copied into
/// `tests/fixtures/` from the published specs).
mod conformance {
    use super::*;

    fn spec(name: &str) -> Value {
        let path = format!(
            "{}/tests/fixtures/{name}.openapi.json",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    }

    /// A small OpenAPI 3.0 schema checker: `$ref`, `nullable`, `oneOf`,
    /// `allOf`, `type`, `required`, `properties`, `items`, `enum`, and
    /// `date-time` strings with an explicit offset.
    fn check(schema: &Value, v: &Value, root: &Value, at: &str, errs: &mut Vec<String>) {
        if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
            let name = r.trim_start_matches("#/components/schemas/");
            return check(&root["components"]["schemas"][name], v, root, at, errs);
        }
        if v.is_null() && schema.get("nullable") == Some(&json!(true)) {
            return;
        }
        if let Some(any) = schema
            .get("oneOf")
            .or_else(|| schema.get("anyOf"))
            .and_then(Value::as_array)
        {
            let ok = any.iter().any(|s| {
                let mut e = Vec::new();
                check(s, v, root, at, &mut e);
                e.is_empty()
            });
            if !ok {
                errs.push(format!("{at}: matches none of oneOf: {v}"));
            }
            return;
        }
        if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
            for s in all {
                check(s, v, root, at, errs);
            }
        }
        if let Some(values) = schema.get("enum").and_then(Value::as_array)
            && !values.contains(v)
        {
            errs.push(format!("{at}: {v} not in {values:?}"));
        }
        let ty = schema.get("type").and_then(Value::as_str);
        let ok = match ty {
            None => true,
            Some("object") => v.is_object(),
            Some("array") => v.is_array(),
            Some("string") => v.is_string(),
            Some("integer") => v.is_i64() || v.is_u64(),
            Some("number") => v.is_number(),
            Some("boolean") => v.is_boolean(),
            Some(_) => true,
        };
        if !ok {
            errs.push(format!("{at}: expected {}, got {v}", ty.unwrap_or("?")));
            return;
        }
        if schema.get("format") == Some(&json!("date-time")) {
            let s = v.as_str().unwrap_or("");
            if chrono::DateTime::parse_from_rfc3339(s).is_err() {
                errs.push(format!(
                    "{at}: {s:?} is not an RFC 3339 timestamp with an offset"
                ));
            }
        }
        if let Some(req) = schema.get("required").and_then(Value::as_array) {
            for k in req {
                let k = k.as_str().unwrap();
                if v.get(k).is_none() {
                    errs.push(format!("{at}: required {k} missing"));
                }
            }
        }
        if let (Some(props), Some(obj)) = (
            schema.get("properties").and_then(Value::as_object),
            v.as_object(),
        ) {
            for (k, s) in props {
                if let Some(x) = obj.get(k) {
                    check(s, x, root, &format!("{at}.{k}"), errs);
                }
            }
        }
        if let (Some(items), Some(arr)) = (schema.get("items"), v.as_array()) {
            for (i, x) in arr.iter().enumerate() {
                check(items, x, root, &format!("{at}[{i}]"), errs);
            }
        }
    }

    fn conforms(root: &Value, method: &str, path: &str, body: &Value) {
        let schema = &root["paths"][path][method]["responses"]["200"]["content"]["application/json"]
            ["schema"];
        assert!(!schema.is_null(), "no schema for {method} {path}");
        let mut errs = Vec::new();
        check(schema, body, root, "$", &mut errs);
        assert!(errs.is_empty(), "{method} {path}: {errs:#?}\n{body:#}");
    }

    #[tokio::test]
    async fn every_response_matches_the_published_schemas() {
        let ds = spec("data-staging");
        let bp = spec("batch-processing");
        let env = start().await;
        let (_, b) = env
            .upload_image("simple", "a.png", png(3, 3, 1), "file")
            .await;
        conforms(
            &ds,
            "post",
            "/{workspace}/batches/{batchId}/upload/image",
            &b,
        );
        let (_, b) = env
            .post(
                &env.ds("batches/vids/upload/video"),
                &[("fileName", "v.mp4")],
                None,
            )
            .await;
        conforms(
            &ds,
            "post",
            "/{workspace}/batches/{batchId}/upload/video",
            &b,
        );
        let (_, b) = env
            .post(
                &env.ds("batches/sharded/bulk-upload/image-files"),
                &[],
                None,
            )
            .await;
        conforms(
            &ds,
            "post",
            "/{workspace}/batches/{batchId}/bulk-upload/image-files",
            &b,
        );
        env.put_shard(
            "sharded",
            tar_of(&[("a.png", png(3, 3, 1)), ("bad.png", b"x".to_vec())]),
        )
        .await;
        env.wait_count("sharded", 1).await;
        let files = file_server(vec![("a.png", png(2, 2, 2))]).await;
        let body = json!({"imageReferences": [{"name": "r.png", "url": format!("{files}/a.png")}]});
        let (_, b) = env
            .post(
                &env.ds("batches/refs/bulk-upload/image-references"),
                &[],
                Some(body),
            )
            .await;
        conforms(
            &ds,
            "post",
            "/{workspace}/batches/{batchId}/bulk-upload/image-references",
            &b,
        );
        let body =
            json!({"videoReferences": [{"name": "v.mp4", "url": format!("{files}/none.mp4")}]});
        let (_, b) = env
            .post(
                &env.ds("batches/vrefs/bulk-upload/video-references"),
                &[],
                Some(body),
            )
            .await;
        conforms(
            &ds,
            "post",
            "/{workspace}/batches/{batchId}/bulk-upload/video-references",
            &b,
        );
        for batch in ["simple", "sharded"] {
            let (_, b) = env
                .get(&env.ds(&format!("batches/{batch}/count")), &[])
                .await;
            conforms(&ds, "get", "/{workspace}/batches/{batchId}/count", &b);
            let (_, b) = env.get(&env.ds(&format!("batches/{batch}")), &[]).await;
            conforms(&ds, "get", "/{workspace}/batches/{batchId}", &b);
            let (_, b) = env
                .get(&env.ds(&format!("batches/{batch}/list")), &[])
                .await;
            conforms(&ds, "get", "/{workspace}/batches/{batchId}/list", &b);
            let (_, b) = env
                .get(&env.ds(&format!("batches/{batch}/shards")), &[])
                .await;
            conforms(&ds, "get", "/{workspace}/batches/{batchId}/shards", &b);
        }
        let (_, b) = env.get(&env.ds("batches"), &[("pageSize", "2")]).await;
        conforms(&ds, "get", "/{workspace}/batches", &b);

        let mut job = image_job("simple", "image-properties", "jsonl");
        job["processingTimeoutSeconds"] = json!(600);
        env.post(&env.bp("jobs/conf"), &[], Some(job)).await;
        let done = env.wait_job("conf").await;
        conforms(&bp, "get", "/{workspace}/jobs/{jobId}", &done);
        let (_, b) = env.get(&env.bp("jobs"), &[("pageSize", "10")]).await;
        conforms(&bp, "get", "/{workspace}/jobs", &b);
        let (_, b) = env.get(&env.bp("jobs/conf/stages"), &[]).await;
        conforms(&bp, "get", "/{workspace}/jobs/{jobId}/stages", &b);
        let out = b["stages"][1]["outputBatches"][0]
            .as_str()
            .unwrap()
            .to_string();
        for stage in ["processing", "export"] {
            let (_, b) = env
                .get(&env.bp(&format!("jobs/conf/stages/{stage}/tasks")), &[])
                .await;
            conforms(
                &bp,
                "get",
                "/{workspace}/jobs/{jobId}/stages/{stageId}/tasks",
                &b,
            );
        }
        let (_, b) = env.get(&env.bp("jobs/conf/logs"), &[]).await;
        conforms(&bp, "get", "/{workspace}/jobs/{jobId}/logs", &b);
        let (_, b) = env.get(&env.ds(&format!("batches/{out}/parts")), &[]).await;
        conforms(&ds, "get", "/{workspace}/batches/{batchId}/parts", &b);
        let (_, b) = env
            .get(
                &env.ds(&format!("batches/{out}/list")),
                &[("partName", "results")],
            )
            .await;
        conforms(&ds, "get", "/{workspace}/batches/{batchId}/list", &b);
        let (_, b) = env.post(&env.bp("jobs/conf/abort"), &[], None).await;
        conforms(&bp, "post", "/{workspace}/jobs/{jobId}/abort", &b);
        env.upload_image("fail-in", "a.png", png(2, 2, 1), "file")
            .await;
        env.post(
            &env.bp("jobs/conf2"),
            &[],
            Some(image_job("fail-in", "nope", "jsonl")),
        )
        .await;
        env.wait_job("conf2").await;
        let (_, b) = env.post(&env.bp("jobs/conf2/restart"), &[], None).await;
        conforms(&bp, "post", "/{workspace}/jobs/{jobId}/restart", &b);
        env.emu.shutdown().await;
    }

    #[test]
    fn the_checker_catches_violations() {
        let ds = spec("data-staging");
        let schema = &ds["paths"]["/{workspace}/batches/{batchId}"]["get"]["responses"]["200"]["content"]
            ["application/json"]["schema"];
        let mut errs = Vec::new();
        let bad = json!({"batch": {"batchId": "b", "displayName": "b", "batchType": "simple-batch", "batchContentType": "images", "createdDate": "2025-01-01T00:00:00", "expiryDate": 5}});
        check(schema, &bad, &ds, "$", &mut errs);
        assert_eq!(errs.len(), 2, "{errs:?}");
    }
}
