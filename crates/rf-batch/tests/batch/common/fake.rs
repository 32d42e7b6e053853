//! A stateful fake of the service, written as a user would write their own
//! `Transport`: it answers every endpoint the pipeline uses from memory, counts
//! resent shards twice (as the real service does), and can inject failures.
//! One of the scenario suite's backends (`scenarios.rs`). `FakeService::handle`
//! routes each request to one small function per endpoint.
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
    /// batch -> content type, for batches that are not archives of images
    /// (a batch that received a video is a video batch).
    pub content_types: BTreeMap<String, &'static str>,
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

    /// Records the request, then routes it: signed URLs and downloads need
    /// no key; everything else is a staging or a jobs endpoint.
    fn handle(&self, req: &Request, body: &[u8]) -> Result<Response, TransportError> {
        let path = req.url.path().to_string();
        let mut st = self.state.lock().unwrap();
        st.requests.push((req.method.to_string(), path.clone()));
        let seg: Vec<&str> = path.trim_matches('/').split('/').collect();
        match &seg[..] {
            [""] if req.method == Method::GET => Ok(workspace(&mut st, req)),
            ["signed", rest @ ..] => signed_put(&mut st, req, first(rest), body),
            ["download", rest @ ..] => Ok(download(&st, first(rest))),
            _ if !authorised(req) => Ok(bad_key()),
            ["data-staging", "v1", "external", "ws", "batches", rest @ ..] => {
                Ok(staging(&mut st, req, rest, body))
            }
            [
                "batch-processing",
                "v1",
                "external",
                "ws",
                "jobs",
                rest @ ..,
            ] => Ok(jobs(&mut st, req, rest, body)),
            _ => Ok(no_route(req)),
        }
    }
}

/// The first segment of `rest`, or empty.
fn first<'a>(rest: &[&'a str]) -> &'a str {
    rest.first().copied().unwrap_or_default()
}

fn authorised(req: &Request) -> bool {
    query(req, "api_key").as_deref() == Some("fake-key")
}

fn bad_key() -> Response {
    json_response(401, json!({"error": "bad key"}))
}

fn no_route(req: &Request) -> Response {
    let (method, path) = (&req.method, req.url.path());
    json_response(404, json!({"error": format!("no route {method} {path}")}))
}

/// `GET /`: the workspace of the key.
fn workspace(st: &mut FakeState, req: &Request) -> Response {
    st.workspace_lookups += 1;
    if !authorised(req) {
        return bad_key();
    }
    json_response(200, json!({"workspace": "ws"}))
}

/// `PUT /signed/{token}`: a video, or a shard (subject to the next fault).
fn signed_put(
    st: &mut FakeState,
    req: &Request,
    token: &str,
    body: &[u8],
) -> Result<Response, TransportError> {
    let Some((batch, video)) = st.signed.remove(token) else {
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
    store_shard(st, batch, body);
    if fault == PutFault::DropAfterStore {
        return Err(TransportError::new(
            ErrorKind::Interrupted,
            "connection reset after the body was sent",
        ));
    }
    Ok(json_response(200, json!({})))
}

/// Ingests every image of a tar shard into `batch` and records its status.
fn store_shard(st: &mut FakeState, batch: String, body: &[u8]) {
    let mut names = tar_member_names(body);
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
    st.shards.entry(batch).or_default().push(json!({
        "shardId": format!("shard-{shard_no}"), "statusName": "shard-ingested",
        "statusType": "info", "eventTimestamp": "2025-06-01T02:03:40Z",
        "shardObjectsCount": names.len(), "statusMetadata": {"failedFiles": 0}
    }));
    st.shard_members.push(names);
}

/// The member names of a tar archive, in order (each member read through).
fn tar_member_names(tar: &[u8]) -> Vec<String> {
    let mut archive = tar::Archive::new(tar);
    let mut names = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        names.push(entry.path().unwrap().to_string_lossy().into_owned());
        let mut sink = Vec::new();
        entry.read_to_end(&mut sink).unwrap();
    }
    names
}

/// `GET /download/{job}`: the job's results archive (or the injected one),
/// with a wrong length if asked.
fn download(st: &FakeState, job: &str) -> Response {
    let batch = st
        .jobs
        .get(job)
        .and_then(|(d, _)| d["jobInput"]["batchId"].as_str().map(str::to_string))
        .unwrap_or_default();
    let bytes = st
        .export_archive
        .clone()
        .unwrap_or_else(|| results_archive(&item_names(st, &batch)));
    let announced = if st.truncate_downloads {
        bytes.len() + 100
    } else {
        bytes.len()
    };
    let mut headers = rf_transport::HeaderMap::new();
    headers.insert("content-length", announced.to_string().parse().unwrap());
    Response::from_bytes(StatusCode::OK, headers, Bytes::from(bytes))
}

/// The item names of `batch`, sorted.
fn item_names(st: &FakeState, batch: &str) -> Vec<String> {
    st.items
        .get(batch)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

/// `/data-staging/v1/external/ws/batches/{rest}`.
fn staging(st: &mut FakeState, req: &Request, rest: &[&str], body: &[u8]) -> Response {
    match (req.method.as_str(), rest) {
        ("POST", [batch, "upload", "image"]) => upload_image(st, req, batch, body),
        ("POST", [batch, what @ ("upload" | "bulk-upload"), kind]) => {
            let video = *what == "upload" && *kind == "video";
            sign_upload(st, req, batch, video)
        }
        ("GET", [batch, "count"]) => {
            let c = st.count(batch).saturating_sub(st.hide_from_count);
            json_response(200, json!({"count": c}))
        }
        ("GET", [batch, "shards"]) => {
            let shards = st.shards.get(*batch).cloned().unwrap_or_default();
            json_response(200, json!({"shards": shards, "nextPageToken": null}))
        }
        ("GET", [batch, "list"]) => list_files(st, req, batch),
        ("GET", [batch, "parts"]) => {
            assert!(batch.ends_with("-export"));
            json_response(
                200,
                json!({"batchParts": [{"partName": "results",
                "partType": "sharded-batch", "contentType": "archives"}]}),
            )
        }
        ("GET", [batch]) => batch_info(st, batch),
        _ => no_route(req),
    }
}

/// A simple image upload: multipart, overwriting by name.
fn upload_image(st: &mut FakeState, req: &Request, batch: &str, body: &[u8]) -> Response {
    let name = query(req, "fileName").unwrap_or_default();
    let text = String::from_utf8_lossy(body);
    assert!(
        text.contains(&format!("filename=\"{name}\"")),
        "multipart names the file"
    );
    st.items
        .entry(batch.to_string())
        .or_default()
        .insert(name, 1);
    json_response(200, json!({}))
}

/// A signed URL for one video or one shard of `batch`.
fn sign_upload(st: &mut FakeState, req: &Request, batch: &str, video: bool) -> Response {
    let token = format!("t{}", st.next_token);
    st.next_token += 1;
    let video = video.then(|| query(req, "fileName").unwrap_or_default());
    if video.is_some() {
        st.content_types.insert(batch.to_string(), "videos");
    }
    st.signed.insert(token.clone(), (batch.to_string(), video));
    json_response(
        200,
        json!({"signedURLDetails": {
        "uploadURL": format!("{BASE}/signed/{token}?sig=s"),
        "extensionHeaders": {"x-fake-range": "0,100"}}}),
    )
}

/// The files of a batch: the results archive of an export batch, else the
/// items in pages of seven (to exercise pagination).
fn list_files(st: &FakeState, req: &Request, batch: &str) -> Response {
    if let Some(job) = batch.strip_suffix("-export") {
        return json_response(
            200,
            json!({"filesMetadata": [{
            "downloadURL": format!("{BASE}/download/{job}"), "fileName": "results_0.tar.gz",
            "partName": "results", "contentType": "archives"}], "nextPageToken": null}),
        );
    }
    let names = item_names(st, batch);
    let start: usize = query(req, "nextPageToken")
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    let end = (start + 7).min(names.len());
    let files: Vec<Value> = names[start..end]
        .iter()
        .map(|n| json!({"downloadURL": format!("{BASE}/x/{n}"), "fileName": n, "contentType": "images"}))
        .collect();
    let next = (end < names.len()).then(|| end.to_string());
    json_response(200, json!({"filesMetadata": files, "nextPageToken": next}))
}

/// A batch's metadata: export batches are multipart, the rest sharded.
fn batch_info(st: &FakeState, batch: &str) -> Response {
    let kind = if batch.ends_with("-export") {
        "multipart-batch"
    } else {
        "sharded-batch"
    };
    let content = st.content_types.get(batch).copied().unwrap_or("archives");
    json_response(
        200,
        json!({"batch": {"displayName": batch, "batchId": batch,
        "batchType": kind, "batchContentType": content,
        "createdDate": "2025-06-01T02:00:00Z", "expiryDate": "2025-06-08T02:00:00Z"}}),
    )
}

/// `/batch-processing/v1/external/ws/jobs/{rest}`.
fn jobs(st: &mut FakeState, req: &Request, rest: &[&str], body: &[u8]) -> Response {
    match (req.method.as_str(), rest) {
        ("POST", [job]) => {
            let def: Value = serde_json::from_slice(body).unwrap();
            st.jobs.insert(job.to_string(), (def, 0));
            json_response(200, json!({"status": "ok"}))
        }
        ("GET", [job]) => job_status(st, job),
        ("GET", [job, "stages"]) => job_stages(job),
        ("GET", [_job, "stages", _stage, "tasks"]) => json_response(
            200,
            json!({"tasks": [
                {"taskId": "t0", "notification": "", "statusType": "success", "progress": 1.0,
                 "eventTimestamp": "2025-06-01T03:00:05Z"},
                {"taskId": "t1", "notification": "", "statusType": "info", "progress": 0.5,
                 "eventTimestamp": "2025-06-01T03:00:05Z"}], "nextPageToken": null}),
        ),
        _ => no_route(req),
    }
}

/// A job's status: processing at the first poll, exporting at the second,
/// finished from the third.
fn job_status(st: &mut FakeState, job: &str) -> Response {
    let Some((def, polls)) = st.jobs.get_mut(job) else {
        return json_response(404, json!({"error": format!("job {job} not found")}));
    };
    *polls += 1;
    let terminal = *polls >= 3;
    let stage = if *polls >= 2 { "export" } else { "processing" };
    json_response(
        200,
        json!({"job": {"jobId": job, "name": job,
        "jobDefinition": def, "currentStage": stage,
        "plannedStages": ["processing", "export"], "error": false,
        "isTerminal": terminal, "lastNotification": "working",
        "createdAt": "2025-06-01T03:00:00Z", "lastUpdate": "2025-06-01T03:00:00Z"}}),
    )
}

/// A job's two stages, each with its output batch.
fn job_stages(job: &str) -> Response {
    let stage = |name: &str| {
        json!({"processingStageId": name, "processingStageName": name,
        "tasksNumber": 2, "outputBatches": [format!("{job}-{name}")],
        "startTimestamp": "2025-06-01T03:00:05Z", "notification": "",
        "statusType": "info", "lastEventTimestamp": "2025-06-01T03:00:05Z"})
    };
    json_response(
        200,
        json!({"stages": [stage("processing"), stage("export")]}),
    )
}

#[async_trait::async_trait]
impl Transport for FakeService {
    async fn send(&self, request: Request) -> Result<Response, TransportError> {
        let body = request
            .body
            .to_bytes()
            .await
            .map_err(|e| TransportError::new(ErrorKind::Body, e.to_string()))?;
        self.handle(&request, &body)
    }
}
