//! The request shortcuts of the API tests: every request gets an answer,
//! read as (status, JSON body or `null`); plus a webhook receiver and a file
//! server on loopback, and a job definition.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{DEADLINE, Env, signed_url_details};

/// The request shortcuts of these tests: every request gets an answer, read
/// as (status, JSON body or `null`).
impl Env {
    pub(crate) async fn get(&self, url: &str, query: &[(&str, &str)]) -> (StatusCode, Value) {
        let mut q: Vec<(&str, &str)> = vec![("api_key", "test-key")];
        q.extend_from_slice(query);
        let r = self.http.get(url).query(&q).send().await.unwrap();
        let status = r.status();
        let body = r.json::<Value>().await.unwrap_or(Value::Null);
        (status, body)
    }
    pub(crate) async fn post(
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
    pub(crate) async fn upload_image(
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
    pub(crate) async fn signed_url(
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
    pub(crate) async fn put(
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
    pub(crate) async fn put_shard(&self, batch: &str, tar: Vec<u8>) {
        let (url, headers) = self
            .signed_url(batch, "bulk-upload/image-files", None)
            .await;
        let (s, b) = self.put(&url, &headers, tar).await;
        assert_eq!(s, StatusCode::OK, "{b}");
    }
    pub(crate) async fn count(&self, batch: &str) -> u64 {
        let (s, b) = self
            .get(&self.ds(&format!("batches/{batch}/count")), &[])
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        b["count"].as_u64().unwrap()
    }
    pub(crate) async fn wait_count(&self, batch: &str, want: u64) {
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
    pub(crate) async fn wait_job(&self, job: &str) -> Value {
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
    pub(crate) async fn download(&self, url: &str) -> (StatusCode, Vec<u8>) {
        let r = self.http.get(url).send().await.unwrap();
        (r.status(), r.bytes().await.unwrap().to_vec())
    }
}

pub(crate) fn image_job(batch: &str, workflow: &str, format: &str) -> Value {
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
pub(crate) type Call = (Option<String>, Value);

/// A webhook receiver on loopback that refuses the first `fail_first` calls.
#[derive(Clone, Default)]
pub(crate) struct Receiver {
    pub(crate) calls: Arc<Mutex<Vec<Call>>>,
    fail_first: Arc<Mutex<usize>>,
}

impl Receiver {
    pub(crate) async fn start(fail_first: usize) -> (Self, String) {
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

    pub(crate) async fn wait_for(&self, pred: impl Fn(&[Call]) -> bool) -> Vec<Call> {
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
pub(crate) async fn file_server(files: Vec<(&'static str, Vec<u8>)>) -> String {
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

impl Env {
    /// A GET of `url` with `key` as the `api_key` query parameter.
    pub(crate) async fn get_as(&self, url: impl reqwest::IntoUrl, key: &str) -> reqwest::Response {
        self.http
            .get(url)
            .query(&[("api_key", key)])
            .send()
            .await
            .unwrap()
    }

    /// Starts job `job` with `definition` (which must be accepted) and
    /// waits until it is terminal; returns the job.
    pub(crate) async fn run_job(&self, job: &str, definition: Value) -> Value {
        let (s, b) = self
            .post(&self.bp(&format!("jobs/{job}")), &[], Some(definition))
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        self.wait_job(job).await
    }

    /// The bytes of the first file of the output batch of stage `stage` of
    /// `job`.
    pub(crate) async fn first_output(&self, job: &str, stage: usize) -> Vec<u8> {
        let (_, stages) = self.get(&self.bp(&format!("jobs/{job}/stages")), &[]).await;
        let out = stages["stages"][stage]["outputBatches"][0]
            .as_str()
            .unwrap()
            .to_string();
        let (_, list) = self
            .get(&self.ds(&format!("batches/{out}/list")), &[])
            .await;
        let (_, bytes) = self
            .download(list["filesMetadata"][0]["downloadURL"].as_str().unwrap())
            .await;
        bytes
    }
}
