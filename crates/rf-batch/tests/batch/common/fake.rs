//! A stateful fake of the service, written as a user would write their own
//! `Transport`: it answers every endpoint the pipeline uses from memory, counts
//! resent shards twice (as the real service does), and can inject failures.
#![allow(dead_code, unreachable_pub)]

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use rf_transport::{ErrorKind, Method, Request, Response, StatusCode, Transport, TransportError};
use serde_json::{Value, json};

/// What to do with a signed shard `PUT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutFault {
    /// Accept it.
    None,
    /// Answer 503 without storing it.
    Unavailable,
    /// Store it, then fail as if the connection dropped before the answer.
    DropAfterStore,
}

#[derive(Debug, Default)]
pub struct FakeState {
    pub workspace_lookups: usize,
    /// (method, path) of every request.
    pub requests: Vec<(String, String)>,
    /// batch -> item name -> times ingested (a resent shard counts twice).
    pub items: BTreeMap<String, BTreeMap<String, u32>>,
    /// batch -> shard statuses.
    pub shards: BTreeMap<String, Vec<Value>>,
    /// signed token -> (batch, Some(video name) | None for a shard).
    pub signed: HashMap<String, (String, Option<String>)>,
    pub next_token: u64,
    /// Members of every shard received, in order.
    pub shard_members: Vec<Vec<String>>,
    /// (announced length, bytes received) of every PUT.
    pub put_lengths: Vec<(Option<u64>, u64)>,
    /// Faults for the next shard PUTs (front first); then `default_fault`.
    pub faults: std::collections::VecDeque<PutFault>,
    pub default_fault: Option<PutFault>,
    /// Items the count endpoint hides (to force a count timeout).
    pub hide_from_count: u64,
    /// Jobs: id -> (definition, polls so far).
    pub jobs: BTreeMap<String, (Value, u32)>,
    /// Serve downloads with a wrong Content-Length.
    pub truncate_downloads: bool,
    /// Serve these bytes as the job's results archive instead of the real one.
    pub export_archive: Option<Vec<u8>>,
    /// Shards that carried a `notification_config.json`.
    pub notification_configs: usize,
}

impl FakeState {
    /// Items counted in `batch` (duplicates included).
    pub fn count(&self, batch: &str) -> u64 {
        self.items
            .get(batch)
            .map(|m| m.values().map(|&n| u64::from(n)).sum())
            .unwrap_or(0)
    }
    pub fn puts(&self) -> usize {
        self.requests.iter().filter(|(m, _)| m == "PUT").count()
    }
}

#[derive(Debug, Clone, Default)]
pub struct FakeService {
    pub state: Arc<Mutex<FakeState>>,
}

const BASE: &str = "http://fake.test";

fn json_response(status: u16, value: Value) -> Response {
    let mut headers = rf_transport::HeaderMap::new();
    headers.insert("content-type", "application/json".parse().unwrap());
    Response::from_bytes(
        StatusCode::from_u16(status).unwrap(),
        headers,
        Bytes::from(value.to_string()),
    )
}

fn query(req: &Request, key: &str) -> Option<String> {
    req.query
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
        .or_else(|| {
            req.url
                .query_pairs()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.into_owned())
        })
}

/// The results archive of a job: one JSON file per input item.
fn results_archive(items: &[String]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for name in items {
        let data = format!("{{\"file\":\"{name}\"}}\n");
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        builder
            .append_data(&mut h, format!("results/{name}.json"), data.as_bytes())
            .unwrap();
    }
    let tar = builder.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &tar).unwrap();
    gz.finish().unwrap()
}

impl FakeService {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn base_url(&self) -> &'static str {
        BASE
    }

    fn handle(&self, req: &Request, body: Vec<u8>) -> Result<Response, TransportError> {
        let path = req.url.path().to_string();
        let method = req.method.clone();
        let mut st = self.state.lock().unwrap();
        st.requests.push((method.to_string(), path.clone()));
        let seg: Vec<&str> = path.trim_matches('/').split('/').collect();
        if method == Method::GET && path == "/" {
            st.workspace_lookups += 1;
            if query(req, "api_key").as_deref() != Some("fake-key") {
                return Ok(json_response(401, json!({"error": "bad key"})));
            }
            return Ok(json_response(200, json!({"workspace": "ws"})));
        }
        if seg.first() == Some(&"signed") {
            let token = seg.get(1).copied().unwrap_or_default().to_string();
            let Some((batch, video)) = st.signed.remove(&token) else {
                return Ok(json_response(
                    403,
                    json!({"error": "unknown or used token"}),
                ));
            };
            st.put_lengths
                .push((req.body.content_length(), body.len() as u64));
            if let Some(name) = video {
                *st.items.entry(batch).or_default().entry(name).or_default() += 1;
                return Ok(json_response(200, json!({})));
            }
            let fault = st
                .faults
                .pop_front()
                .or(st.default_fault)
                .unwrap_or(PutFault::None);
            if fault == PutFault::Unavailable {
                return Ok(json_response(503, json!({"error": "try later"})));
            }
            let mut archive = tar::Archive::new(&body[..]);
            let mut names = Vec::new();
            for entry in archive.entries().unwrap() {
                let mut entry = entry.unwrap();
                let name = entry.path().unwrap().to_string_lossy().into_owned();
                let mut sink = Vec::new();
                entry.read_to_end(&mut sink).unwrap();
                names.push(name);
            }
            // The notification config is a shard member but not an image.
            if let Some(pos) = names
                .iter()
                .position(|n| n == rf_types::NOTIFICATION_CONFIG_MEMBER)
            {
                names.remove(pos);
                st.notification_configs += 1;
            }
            for n in &names {
                *st.items
                    .entry(batch.clone())
                    .or_default()
                    .entry(n.clone())
                    .or_default() += 1;
            }
            let shard_no = st.shards.get(&batch).map_or(0, Vec::len);
            st.shards.entry(batch.clone()).or_default().push(json!({
                "shardId": format!("shard-{shard_no}"), "statusName": "shard-ingested",
                "statusType": "info", "eventTimestamp": "2025-06-01T02:03:40Z",
                "shardObjectsCount": names.len(), "statusMetadata": {"failedFiles": 0}
            }));
            st.shard_members.push(names);
            if fault == PutFault::DropAfterStore {
                return Err(TransportError::new(
                    ErrorKind::Interrupted,
                    "connection reset after the body was sent",
                ));
            }
            return Ok(json_response(200, json!({})));
        }
        if seg.first() == Some(&"download") {
            let job = seg.get(1).copied().unwrap_or_default();
            let batch = st
                .jobs
                .get(job)
                .and_then(|(d, _)| d["jobInput"]["batchId"].as_str().map(str::to_string))
                .unwrap_or_default();
            let names: Vec<String> = st
                .items
                .get(&batch)
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default();
            let bytes = st
                .export_archive
                .clone()
                .unwrap_or_else(|| results_archive(&names));
            let mut headers = rf_transport::HeaderMap::new();
            let announced = if st.truncate_downloads {
                bytes.len() + 100
            } else {
                bytes.len()
            };
            headers.insert("content-length", announced.to_string().parse().unwrap());
            return Ok(Response::from_bytes(
                StatusCode::OK,
                headers,
                Bytes::from(bytes),
            ));
        }
        if query(req, "api_key").as_deref() != Some("fake-key") {
            return Ok(json_response(401, json!({"error": "bad key"})));
        }
        // /data-staging/v1/external/ws/batches/{batch}/...
        match (method.as_str(), &seg[..]) {
            (
                "POST",
                [
                    "data-staging",
                    "v1",
                    "external",
                    "ws",
                    "batches",
                    batch,
                    "upload",
                    "image",
                ],
            ) => {
                let name = query(req, "fileName").unwrap_or_default();
                let text = String::from_utf8_lossy(&body);
                assert!(
                    text.contains(&format!("filename=\"{name}\"")),
                    "multipart names the file"
                );
                // Simple batches overwrite by name.
                st.items
                    .entry(batch.to_string())
                    .or_default()
                    .insert(name, 1);
                Ok(json_response(200, json!({})))
            }
            (
                "POST",
                [
                    "data-staging",
                    "v1",
                    "external",
                    "ws",
                    "batches",
                    batch,
                    what @ ("upload" | "bulk-upload"),
                    kind,
                ],
            ) => {
                let token = format!("t{}", st.next_token);
                st.next_token += 1;
                let video = (*what == "upload" && *kind == "video")
                    .then(|| query(req, "fileName").unwrap_or_default());
                st.signed.insert(token.clone(), (batch.to_string(), video));
                Ok(json_response(
                    200,
                    json!({"signedURLDetails": {
                    "uploadURL": format!("{BASE}/signed/{token}?sig=s"),
                    "extensionHeaders": {"x-fake-range": "0,100"}}}),
                ))
            }
            (
                "GET",
                [
                    "data-staging",
                    "v1",
                    "external",
                    "ws",
                    "batches",
                    batch,
                    "count",
                ],
            ) => {
                let c = st.count(batch).saturating_sub(st.hide_from_count);
                Ok(json_response(200, json!({"count": c})))
            }
            (
                "GET",
                [
                    "data-staging",
                    "v1",
                    "external",
                    "ws",
                    "batches",
                    batch,
                    "shards",
                ],
            ) => {
                let shards = st.shards.get(*batch).cloned().unwrap_or_default();
                Ok(json_response(
                    200,
                    json!({"shards": shards, "nextPageToken": null}),
                ))
            }
            (
                "GET",
                [
                    "data-staging",
                    "v1",
                    "external",
                    "ws",
                    "batches",
                    batch,
                    "list",
                ],
            ) => {
                if let Some(job) = batch.strip_suffix("-export") {
                    return Ok(json_response(
                        200,
                        json!({"filesMetadata": [{
                        "downloadURL": format!("{BASE}/download/{job}"), "fileName": "results_0.tar.gz",
                        "partName": "results", "contentType": "archives"}], "nextPageToken": null}),
                    ));
                }
                // Two pages, to exercise pagination.
                let names: Vec<String> = st
                    .items
                    .get(*batch)
                    .map(|m| m.keys().cloned().collect())
                    .unwrap_or_default();
                let start: usize = query(req, "nextPageToken")
                    .and_then(|t| t.parse().ok())
                    .unwrap_or(0);
                let end = (start + 7).min(names.len());
                let files: Vec<Value> = names[start..end]
                    .iter()
                    .map(|n| json!({"downloadURL": format!("{BASE}/x/{n}"), "fileName": n, "contentType": "images"}))
                    .collect();
                let next = (end < names.len()).then(|| end.to_string());
                Ok(json_response(
                    200,
                    json!({"filesMetadata": files, "nextPageToken": next}),
                ))
            }
            (
                "GET",
                [
                    "data-staging",
                    "v1",
                    "external",
                    "ws",
                    "batches",
                    batch,
                    "parts",
                ],
            ) => {
                assert!(batch.ends_with("-export"));
                Ok(json_response(
                    200,
                    json!({"batchParts": [{"partName": "results",
                    "partType": "sharded-batch", "contentType": "archives"}]}),
                ))
            }
            ("GET", ["data-staging", "v1", "external", "ws", "batches", batch]) => {
                let kind = if batch.ends_with("-export") {
                    "multipart-batch"
                } else {
                    "sharded-batch"
                };
                Ok(json_response(
                    200,
                    json!({"batch": {"displayName": batch, "batchId": batch,
                    "batchType": kind, "batchContentType": "archives",
                    "createdDate": "2025-06-01T02:00:00Z", "expiryDate": "2025-06-08T02:00:00Z"}}),
                ))
            }
            ("POST", ["batch-processing", "v1", "external", "ws", "jobs", job]) => {
                let def: Value = serde_json::from_slice(&body).unwrap();
                st.jobs.insert(job.to_string(), (def, 0));
                Ok(json_response(200, json!({"status": "ok"})))
            }
            ("GET", ["batch-processing", "v1", "external", "ws", "jobs", job]) => {
                let Some((def, polls)) = st.jobs.get_mut(*job) else {
                    return Ok(json_response(
                        404,
                        json!({"error": format!("job {job} not found")}),
                    ));
                };
                *polls += 1;
                let terminal = *polls >= 3;
                let stage = if *polls >= 2 { "export" } else { "processing" };
                Ok(json_response(
                    200,
                    json!({"job": {"jobId": job, "name": job,
                    "jobDefinition": def, "currentStage": stage,
                    "plannedStages": ["processing", "export"], "error": false,
                    "isTerminal": terminal, "lastNotification": "working",
                    "createdAt": "2025-06-01T03:00:00Z", "lastUpdate": "2025-06-01T03:00:00Z"}}),
                ))
            }
            (
                "GET",
                [
                    "batch-processing",
                    "v1",
                    "external",
                    "ws",
                    "jobs",
                    job,
                    "stages",
                ],
            ) => {
                let stage = |name: &str| {
                    json!({"processingStageId": name, "processingStageName": name,
                    "tasksNumber": 2, "outputBatches": [format!("{job}-{name}")],
                    "startTimestamp": "2025-06-01T03:00:05Z", "notification": "",
                    "statusType": "info", "lastEventTimestamp": "2025-06-01T03:00:05Z"})
                };
                Ok(json_response(
                    200,
                    json!({"stages": [stage("processing"), stage("export")]}),
                ))
            }
            (
                "GET",
                [
                    "batch-processing",
                    "v1",
                    "external",
                    "ws",
                    "jobs",
                    _job,
                    "stages",
                    _stage,
                    "tasks",
                ],
            ) => Ok(json_response(
                200,
                json!({"tasks": [
                    {"taskId": "t0", "notification": "", "statusType": "success", "progress": 1.0,
                     "eventTimestamp": "2025-06-01T03:00:05Z"},
                    {"taskId": "t1", "notification": "", "statusType": "info", "progress": 0.5,
                     "eventTimestamp": "2025-06-01T03:00:05Z"}], "nextPageToken": null}),
            )),
            _ => Ok(json_response(
                404,
                json!({"error": format!("no route {method} {path}")}),
            )),
        }
    }
}

#[async_trait::async_trait]
impl Transport for FakeService {
    async fn send(&self, request: Request) -> Result<Response, TransportError> {
        let body = request
            .body
            .to_bytes()
            .await
            .map_err(|e| TransportError::new(ErrorKind::Body, e.to_string()))?;
        self.handle(&request, body.to_vec())
    }
}
