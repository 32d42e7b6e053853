//! Hostile input against the in-process router (property tests; the
//! fuzzing of this project: `RF_FUZZ_CASES=5000 cargo test -p rf-emulator
//! --test emulator fuzz` runs each property that many times).
//!
//! Arbitrary bytes as tar shards, arbitrary multipart bodies and
//! boundaries, arbitrary and mutated JSON bodies on every POST, arbitrary
//! IDs in every path segment, arbitrary query parameters: never a panic,
//! never a 5xx, every error is a JSON object with an `error` string, every
//! shard ends indexed or failed (a panicking indexer would leave it
//! pending), and the server keeps serving normal requests afterwards.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use http::{HeaderName, HeaderValue, Method, Request, Uri};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use rf_emulator::{EmulatorConfig, EmulatorState, router};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::support::outcome::{DEADLINE, image_job, png, shard_of, signed_url_details};

/// Cases per property: `RF_FUZZ_CASES`, else `default`.
fn cases(default: u32) -> u32 {
    std::env::var("RF_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    })
}

/// The router served in process, on its own runtime.
struct InProc {
    rt: tokio::runtime::Runtime,
    app: Router,
    state: EmulatorState,
    ids: AtomicUsize,
    /// Requests really sent (the others were not expressible in HTTP).
    sent: AtomicUsize,
}

/// An answer: status and body.
struct Answer {
    status: u16,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The emulator's promise for any input: below 500, and every error
    /// is `{"error": "<message>"}`.
    fn check(&self, what: &str) -> Result<(), TestCaseError> {
        prop_assert!(
            self.status < 500,
            "{what} -> {} {}",
            self.status,
            String::from_utf8_lossy(&self.body)
        );
        if self.status >= 400 {
            let v = self.json();
            prop_assert!(
                v["error"].as_str().is_some_and(|e| !e.is_empty()),
                "{what} -> {} without a JSON error: {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            );
        }
        Ok(())
    }
}

impl InProc {
    fn new() -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let state = rt.block_on(async {
            EmulatorState::open(
                EmulatorConfig::for_tests().with_key("other-key", "other-ws"),
                "http://127.0.0.1:1/".parse().unwrap(),
            )
            .unwrap()
        });
        let app = router(state.clone());
        Self {
            rt,
            app,
            state,
            ids: AtomicUsize::new(0),
            sent: AtomicUsize::new(0),
        }
    }

    fn next_id(&self) -> usize {
        self.ids.fetch_add(1, Ordering::Relaxed)
    }

    /// Sends one request; `None` when it cannot be expressed in HTTP (an
    /// invalid URI or header value).
    fn call(
        &self,
        method: &str,
        uri: &str,
        headers: &[(&str, &[u8])],
        body: Vec<u8>,
    ) -> Option<Answer> {
        let uri: Uri = uri.parse().ok()?;
        let method = Method::from_bytes(method.as_bytes()).ok()?;
        let mut req = Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            let name = HeaderName::from_bytes(name.as_bytes()).ok()?;
            let value = HeaderValue::from_bytes(value).ok()?;
            req = req.header(name, value);
        }
        let req = req.body(Body::from(body)).ok()?;
        self.sent.fetch_add(1, Ordering::Relaxed);
        let app = self.app.clone();
        Some(self.rt.block_on(async move {
            let resp = app.oneshot(req).await.unwrap();
            let status = resp.status().as_u16();
            let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
                .await
                .unwrap()
                .to_vec();
            Answer { status, body }
        }))
    }

    fn ds(path: &str) -> String {
        format!("/data-staging/v1/external/test-ws/batches{path}?api_key=test-key")
    }

    fn bp(path: &str) -> String {
        format!("/batch-processing/v1/external/test-ws/jobs{path}?api_key=test-key")
    }

    /// A signed upload path and its headers for a new shard of `batch`.
    fn shard_url(&self, batch: &str) -> (String, BTreeMap<String, String>) {
        let a = self
            .call(
                "POST",
                &Self::ds(&format!("/{batch}/bulk-upload/image-files")),
                &[],
                vec![],
            )
            .unwrap();
        assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
        let (url, headers) = signed_url_details(&a.json());
        let path = url.strip_prefix("http://127.0.0.1:1").unwrap().to_string();
        (path, headers)
    }

    fn put_signed(&self, path: &str, headers: &BTreeMap<String, String>, body: Vec<u8>) -> Answer {
        let h: Vec<(&str, &[u8])> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_bytes()))
            .collect();
        self.call("PUT", path, &h, body).unwrap()
    }

    /// Polls the stats until no shard of `batch` is pending (each one was
    /// indexed or failed: the indexer finished, it did not die).
    fn wait_indexed(&self, batch: &str) -> rf_emulator::BatchStats {
        self.rt.block_on(async {
            let deadline = tokio::time::Instant::now() + DEADLINE;
            loop {
                let stats = self.state.stats();
                let b = stats.workspaces["test-ws"].batches[batch].clone();
                if b.shards_pending == 0 {
                    return b;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "shards of {batch} still pending: {b:?}"
                );
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    }

    /// Polls until `job` is terminal.
    fn wait_job(&self, job: &str) {
        self.rt.block_on(async {
            let deadline = tokio::time::Instant::now() + DEADLINE;
            loop {
                let stats = self.state.stats();
                let phase = stats.workspaces["test-ws"].jobs[job].phase.clone();
                if ["succeeded", "failed", "aborted"].contains(&phase.as_str()) {
                    return;
                }
                assert!(tokio::time::Instant::now() < deadline, "job {job}: {phase}");
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    }

    /// A batch `batch` with `n` indexed images.
    fn batch_with_images(&self, batch: &str, n: u8) {
        let (path, headers) = self.shard_url(batch);
        assert_eq!(self.put_signed(&path, &headers, shard_of(n)).status, 200);
        assert_eq!(self.wait_indexed(batch).files, u64::from(n));
    }

    /// A job `job` over `batch` (image-properties), run to its end.
    fn finished_job(&self, job: &str, batch: &str) {
        let a = self
            .call(
                "POST",
                &Self::bp(&format!("/{job}")),
                &[("content-type", b"application/json")],
                image_job(batch, "image-properties")
                    .to_string()
                    .into_bytes(),
            )
            .unwrap();
        assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
        self.wait_job(job);
    }

    /// Normal requests still work: the workspace, a fresh upload, a count.
    /// And most generated requests were really sent.
    fn still_serving(&self, runs: u32) {
        let sent = self.sent.load(Ordering::Relaxed);
        assert!(
            sent >= runs as usize / 2,
            "only {sent} requests sent for {runs} cases"
        );
        let a = self.call("GET", "/?api_key=test-key", &[], vec![]).unwrap();
        assert_eq!(a.status, 200);
        assert_eq!(a.json()["workspace"], json!("test-ws"));
        let batch = format!("after-{}", self.next_id());
        self.batch_with_images(&batch, 2);
        let a = self
            .call("GET", &Self::ds(&format!("/{batch}/count")), &[], vec![])
            .unwrap();
        assert_eq!(a.status, 200);
        assert_eq!(a.json()["count"], json!(2));
    }
}

/// Strings that have broken parsers before.
const NASTY: &[&str] = &[
    "",
    ".",
    "..",
    "../../etc/passwd",
    "..\\..\\boot.ini",
    "%2e%2e",
    "a%2Fb",
    "%00",
    "%",
    "%zz",
    "\u{0}",
    "\u{202e}gnp.exe",
    "名前.png",
    "🙂.jpg",
    " ",
    "+",
    "a b",
    "CON",
    "-1",
    "0",
    "18446744073709551616",
    "1e308",
    "NaN",
    "null",
    "{}",
    "[]",
    "pg-",
    "pg-ffffffffffffffff",
    "pg--1",
    "http://127.0.0.1:1/x.png",
    // URLs stay on loopback: webhooks go wherever a body says, and no test
    // may reach (or even resolve a name) beyond this machine.
    "https://127.0.0.1:1/x.png",
    "http://[::1]:1/x.png",
    "file:///etc/passwd",
    "simple-image-processing-v1",
    "simple-video-processing-v1",
    "staging-batch-input-v1",
    "workflows-processing-specification-v1",
    "compute-configuration-v2",
    "parameters-override-v1",
    "ingest-status",
    "files-status",
];

fn nasty() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(NASTY).prop_map(str::to_string),
        "\\PC{0,40}",
        ".{0,20}",
        (1usize..12_000).prop_map(|n| "a".repeat(n)),
    ]
}

/// Field names of the real bodies, so mutations reach deep validation.
const KEYS: &[&str] = &[
    "type",
    "jobInput",
    "batchId",
    "partName",
    "computeConfiguration",
    "machineType",
    "workersPerMachine",
    "processingSpecification",
    "workspace",
    "workflowId",
    "workflowParameters",
    "aggregationFormat",
    "maxParallelTasks",
    "processingTimeoutSeconds",
    "maxImageFailureRate",
    "notificationsURL",
    "notificationCategories",
    "imageReferences",
    "imageReferencesURL",
    "videoReferences",
    "videoReferencesURL",
    "ingestId",
    "name",
    "url",
    "framesPerSecond",
];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        nasty().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        prop::sample::select(KEYS).prop_map(str::to_string),
                        ".{0,10}"
                    ],
                    inner
                ),
                0..6
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// Replaces, removes or adds something at a path chosen by `path`.
fn mutate(v: &mut Value, path: &[usize], op: u8, replacement: Value) {
    let Some((i, rest)) = path.split_first() else {
        *v = replacement;
        return;
    };
    match v {
        Value::Object(m) if !m.is_empty() => {
            let key = m.keys().nth(i % m.len()).cloned().unwrap_or_default();
            if rest.is_empty() || !m[&key].is_object() && !m[&key].is_array() {
                match op % 3 {
                    0 => {
                        m.insert(key, replacement);
                    }
                    1 => {
                        m.remove(&key);
                    }
                    _ => {
                        m.insert(format!("{key}{i}"), replacement);
                    }
                }
            } else if let Some(child) = m.get_mut(&key) {
                mutate(child, rest, op, replacement);
            }
        }
        Value::Array(a) if !a.is_empty() => {
            let n = i % a.len();
            if rest.is_empty() {
                match op % 3 {
                    0 => a[n] = replacement,
                    1 => {
                        a.remove(n);
                    }
                    _ => a.push(replacement),
                }
            } else {
                mutate(&mut a[n], rest, op, replacement);
            }
        }
        _ => *v = replacement,
    }
}

/// A tar member with raw, possibly hostile, header fields.
#[derive(Debug, Clone)]
struct Member {
    name: Vec<u8>,
    kind: u8,
    link: Vec<u8>,
    /// Declared size when it differs from the data (lies about the length).
    declared: Option<u64>,
    data: Vec<u8>,
}

fn member() -> impl Strategy<Value = Member> {
    let name = prop_oneof![
        4 => "[a-z]{1,8}\\.(png|jpg|jpeg)".prop_map(String::into_bytes),
        1 => prop::sample::select(NASTY).prop_map(|s| s.as_bytes().to_vec()),
        1 => "\\PC{1,40}".prop_map(String::into_bytes),
        1 => prop::collection::vec(any::<u8>(), 1..100),
        1 => Just(b"dir/../../escape.png".to_vec()),
        1 => Just(b"/abs/path.png".to_vec()),
    ];
    let kind = prop_oneof![
        6 => Just(b'0'),
        1 => prop::sample::select(vec![b'1', b'2', b'3', b'4', b'5', b'6', b'7', b'x', b'g', b'L', b'K', b'\0', b'S']),
        1 => any::<u8>(),
    ];
    let data = prop_oneof![
        3 => (1u32..5, 1u32..5, any::<u8>()).prop_map(|(w, h, s)| png(w, h, s)),
        1 => prop::collection::vec(any::<u8>(), 0..700),
        1 => Just(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\xff\xff\xff\xff\xff\xff\xff\xff".to_vec()),
        1 => Just(b"\xff\xd8\xff\xe0 not really a jpeg".to_vec()),
    ];
    (
        name,
        kind,
        prop::collection::vec(any::<u8>(), 0..40),
        prop_oneof![4 => Just(None), 1 => any::<u64>().prop_map(Some), 1 => (0u64..2000).prop_map(Some)],
        data,
    )
        .prop_map(|(name, kind, link, declared, data)| Member {
            name,
            kind,
            link,
            declared,
            data,
        })
}

/// Writes members as tar blocks, headers filled in by hand.
fn raw_tar(members: &[Member], end_blocks: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for m in members {
        let mut h = tar::Header::new_ustar();
        h.set_mode(0o644);
        h.set_size(m.declared.unwrap_or(m.data.len() as u64));
        {
            let raw = h.as_mut_bytes();
            let n = m.name.len().min(100);
            raw[..100].fill(0);
            raw[..n].copy_from_slice(&m.name[..n]);
            raw[156] = m.kind;
            let l = m.link.len().min(100);
            raw[157..157 + l].copy_from_slice(&m.link[..l]);
        }
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(&m.data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 512 * end_blocks, 0);
    out
}

fn hostile_shard() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        // raw noise
        prop::collection::vec(any::<u8>(), 0..3000),
        // tars with hostile headers, then truncated and/or with flipped bytes
        (
            prop::collection::vec(member(), 0..6),
            0usize..3,
            prop::option::of(any::<prop::sample::Index>()),
            prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        )
            .prop_map(|(members, end, cut, flips)| {
                let mut t = raw_tar(&members, end);
                if !t.is_empty() {
                    for (at, byte) in flips {
                        let i = at.index(t.len());
                        t[i] = byte;
                    }
                    if let Some(cut) = cut {
                        t.truncate(cut.index(t.len()));
                    }
                }
                t
            }),
        // a gzip stream where a tar is expected
        prop::collection::vec(any::<u8>(), 0..200).prop_map(|tail| {
            let mut g = vec![0x1f, 0x8b, 8, 0];
            g.extend(tail);
            g
        }),
    ]
}

#[test]
fn arbitrary_bytes_as_tar_shards_are_indexed_or_refused() {
    let emu = InProc::new();
    let runs = cases(48);
    runner(runs)
        .run(&hostile_shard(), |bytes| {
            let batch = "fz-tar";
            let (path, headers) = emu.shard_url(batch);
            let a = emu.put_signed(&path, &headers, bytes);
            a.check("PUT shard")?;
            let b = emu.wait_indexed(batch);
            prop_assert_eq!(b.shards_indexed + b.shards_failed, b.shards);
            // what is indexed is listed and counted, all of it
            let count = emu
                .call("GET", &InProc::ds(&format!("/{batch}/count")), &[], vec![])
                .unwrap();
            count.check("count")?;
            prop_assert_eq!(count.json()["count"].as_u64(), Some(b.files));
            let list = emu
                .call(
                    "GET",
                    &format!("{}&pageSize=10000", InProc::ds(&format!("/{batch}/list"))),
                    &[],
                    vec![],
                )
                .unwrap();
            list.check("list")?;
            Ok(())
        })
        .unwrap();
    emu.still_serving(runs);
}

fn multipart_body() -> impl Strategy<Value = (String, Vec<u8>)> {
    let boundary = prop_oneof![
        "[a-zA-Z0-9'()+_,./:=? -]{1,70}",
        ".{0,90}",
        Just(String::new()),
    ];
    let part = (
        prop_oneof![Just("file".to_string()), ".{0,20}"],
        prop::option::of(nasty()),
        prop::option::of(prop_oneof![Just("image/png".to_string()), ".{0,30}"]),
        prop_oneof![
            (1u32..4, 1u32..4, any::<u8>()).prop_map(|(w, h, s)| png(w, h, s)),
            prop::collection::vec(any::<u8>(), 0..300),
        ],
    );
    let structured = (
        prop::collection::vec(part, 0..4),
        prop::option::of(".{1,20}"),
        any::<bool>(),
        prop::option::of(any::<prop::sample::Index>()),
    );
    (
        boundary,
        prop_oneof![
            prop::collection::vec(any::<u8>(), 0..600).prop_map(|b| (None, b)),
            structured.prop_map(|s| (Some(s), vec![])),
        ],
        0usize..5,
    )
        .prop_map(|(boundary, body, ct)| {
            let content_type = match ct {
                0 => format!("multipart/form-data; boundary=\"{boundary}\""),
                1 => format!("multipart/form-data; boundary={boundary}"),
                2 => "multipart/form-data".to_string(),
                3 => format!("multipart/mixed; boundary={boundary}"),
                _ => boundary.clone(),
            };
            let bytes = match body {
                (None, raw) => raw,
                (Some((parts, other_boundary, lf_only, cut)), _) => {
                    let b = other_boundary.unwrap_or_else(|| boundary.clone());
                    let nl: &[u8] = if lf_only { b"\n" } else { b"\r\n" };
                    let mut out = Vec::new();
                    for (name, file_name, ctype, data) in parts {
                        out.extend_from_slice(format!("--{b}").as_bytes());
                        out.extend_from_slice(nl);
                        let mut disp = format!("Content-Disposition: form-data; name=\"{name}\"");
                        if let Some(f) = file_name {
                            disp.push_str(&format!("; filename=\"{f}\""));
                        }
                        out.extend_from_slice(disp.as_bytes());
                        out.extend_from_slice(nl);
                        if let Some(c) = ctype {
                            out.extend_from_slice(format!("Content-Type: {c}").as_bytes());
                            out.extend_from_slice(nl);
                        }
                        out.extend_from_slice(nl);
                        out.extend_from_slice(&data);
                        out.extend_from_slice(nl);
                    }
                    out.extend_from_slice(format!("--{b}--").as_bytes());
                    out.extend_from_slice(nl);
                    if let Some(cut) = cut {
                        out.truncate(cut.index(out.len() + 1));
                    }
                    out
                }
            };
            (content_type, bytes)
        })
}

#[test]
fn arbitrary_multipart_bodies_and_boundaries_never_get_a_5xx() {
    let emu = InProc::new();
    let file_name = prop_oneof![3 => Just("a.png".to_string()), 1 => nasty()];
    let runs = cases(128);
    runner(runs)
        .run(
            &(multipart_body(), file_name, 0usize..4),
            |((content_type, body), file_name, batch)| {
                let uri = format!(
                    "{}&fileName={}",
                    InProc::ds(&format!("/fz-mp-{batch}/upload/image")),
                    utf8_percent_encode(&file_name, NON_ALPHANUMERIC)
                );
                let Some(a) = emu.call(
                    "POST",
                    &uri,
                    &[("content-type", content_type.as_bytes())],
                    body,
                ) else {
                    return Ok(()); // not expressible as an HTTP request
                };
                a.check("POST upload/image")
            },
        )
        .unwrap();
    emu.still_serving(runs);
}

#[test]
fn arbitrary_and_mutated_json_bodies_on_every_post_never_get_a_5xx() {
    let emu = InProc::new();
    emu.batch_with_images("fz-json", 3);
    emu.finished_job("fz-existing", "fz-json");

    let valid: Vec<Value> = vec![
        image_job("fz-json", "image-properties"),
        image_job("fz-json", "color-blobs"),
        json!({
            "type": "simple-video-processing-v1",
            "jobInput": {"type": "staging-batch-input-v1", "batchId": "fz-json"},
            "computeConfiguration": {"type": "compute-configuration-v2", "machineType": "cpu"},
            "processingSpecification": {
                "type": "workflows-processing-specification-v1",
                "workspace": "test-ws", "workflowId": "video-properties"
            },
            "processingTimeoutSeconds": 60, "maxParallelTasks": 2
        }),
        json!({"imageReferences": [{"name": "a.png", "url": "http://127.0.0.1:1/a.png"}],
               "ingestId": "i1", "notificationCategories": ["files-status"]}),
        json!({"videoReferencesURL": "http://127.0.0.1:1/refs.jsonl"}),
        json!({"type": "parameters-override-v1", "processingTimeoutSeconds": 30,
               "maxParallelTasks": 1, "computeConfiguration": {"type": "compute-configuration-v2"}}),
    ];
    let endpoints: Vec<(&str, &str)> = vec![
        (
            "job",
            "/batch-processing/v1/external/test-ws/jobs/fz-new-{n}",
        ),
        (
            "job",
            "/batch-processing/v1/external/test-ws/jobs/fz-existing",
        ),
        (
            "job",
            "/batch-processing/v1/external/test-ws/jobs/fz-existing/restart",
        ),
        (
            "job",
            "/batch-processing/v1/external/test-ws/jobs/fz-existing/abort",
        ),
        (
            "ds",
            "/data-staging/v1/external/test-ws/batches/fz-refs-{n}/bulk-upload/image-references",
        ),
        (
            "ds",
            "/data-staging/v1/external/test-ws/batches/fz-vrefs-{n}/bulk-upload/video-references",
        ),
        (
            "ds",
            "/data-staging/v1/external/test-ws/batches/fz-json/roboql-ingest",
        ),
        (
            "ds",
            "/data-staging/v1/external/test-ws/batches/fz-v-{n}/upload/video?fileName=v.mp4",
        ),
        (
            "ds",
            "/data-staging/v1/external/test-ws/batches/fz-json/bulk-upload/image-files",
        ),
        (
            "ds",
            "/data-staging/v1/external/test-ws/batches/fz-json/upload/image?fileName=x.png",
        ),
    ];
    let body = prop_oneof![
        // a valid body with one thing changed
        (
            0..valid.len(),
            prop::collection::vec(any::<usize>(), 0..5),
            any::<u8>(),
            json_value()
        )
            .prop_map(move |(i, path, op, repl)| {
                let mut v = valid[i].clone();
                mutate(&mut v, &path, op, repl);
                v.to_string().into_bytes()
            }),
        json_value().prop_map(|v| v.to_string().into_bytes()),
        prop::collection::vec(any::<u8>(), 0..300),
        "\\{.{0,80}".prop_map(String::into_bytes),
        // deep nesting
        (1usize..3000).prop_map(|d| format!("{}{}", "[".repeat(d), "]".repeat(d)).into_bytes()),
    ];
    let content_type = prop_oneof![
        4 => Just("application/json".to_string()),
        1 => ".{0,30}",
    ];
    let runs = cases(192);
    runner(runs)
        .run(
            &(0..endpoints.len(), body, content_type),
            |(e, body, content_type)| {
                let (_, template) = endpoints[e];
                let path = template.replace("{n}", &emu.next_id().to_string());
                let sep = if path.contains('?') { '&' } else { '?' };
                let uri = format!("{path}{sep}api_key=test-key");
                let Some(a) = emu.call(
                    "POST",
                    &uri,
                    &[("content-type", content_type.as_bytes())],
                    body,
                ) else {
                    return Ok(());
                };
                a.check(&format!("POST {path}"))
            },
        )
        .unwrap();
    emu.still_serving(runs);
}

/// Every route, with `{ws}`, `{b}`, `{j}`, `{s}` and `{t}` placeholders.
const ROUTES: &[(&str, &str)] = &[
    ("GET", "/data-staging/v1/external/{ws}/batches"),
    ("GET", "/data-staging/v1/external/{ws}/batches/{b}"),
    ("GET", "/data-staging/v1/external/{ws}/batches/{b}/count"),
    ("GET", "/data-staging/v1/external/{ws}/batches/{b}/list"),
    ("GET", "/data-staging/v1/external/{ws}/batches/{b}/parts"),
    ("GET", "/data-staging/v1/external/{ws}/batches/{b}/shards"),
    (
        "POST",
        "/data-staging/v1/external/{ws}/batches/{b}/upload/image",
    ),
    (
        "POST",
        "/data-staging/v1/external/{ws}/batches/{b}/upload/video",
    ),
    (
        "POST",
        "/data-staging/v1/external/{ws}/batches/{b}/bulk-upload/image-files",
    ),
    (
        "POST",
        "/data-staging/v1/external/{ws}/batches/{b}/bulk-upload/image-references",
    ),
    (
        "POST",
        "/data-staging/v1/external/{ws}/batches/{b}/bulk-upload/video-references",
    ),
    (
        "POST",
        "/data-staging/v1/external/{ws}/batches/{b}/roboql-ingest",
    ),
    ("GET", "/batch-processing/v1/external/{ws}/jobs"),
    ("GET", "/batch-processing/v1/external/{ws}/jobs/{j}"),
    ("POST", "/batch-processing/v1/external/{ws}/jobs/{j}"),
    ("GET", "/batch-processing/v1/external/{ws}/jobs/{j}/stages"),
    (
        "GET",
        "/batch-processing/v1/external/{ws}/jobs/{j}/stages/{s}/tasks",
    ),
    ("GET", "/batch-processing/v1/external/{ws}/jobs/{j}/logs"),
    ("POST", "/batch-processing/v1/external/{ws}/jobs/{j}/abort"),
    (
        "POST",
        "/batch-processing/v1/external/{ws}/jobs/{j}/restart",
    ),
    ("GET", "/_signed/{t}"),
    ("PUT", "/_signed/{t}"),
    ("DELETE", "/data-staging/v1/external/{ws}/batches/{b}"),
    ("GET", "/{t}"),
];

/// An arbitrary path segment, percent-encoded or raw.
fn segment() -> impl Strategy<Value = String> {
    let text = prop_oneof![
        3 => "[a-z0-9_-]{1,64}",
        1 => "[a-z0-9_-]{65,300}",
        2 => nasty(),
        1 => prop::collection::vec(any::<u8>(), 0..60)
            .prop_map(|b| b.iter().map(|x| format!("%{x:02X}")).collect::<String>()),
        1 => "[0-9a-f]{0,200}\\.[0-9a-f]{0,64}",
    ];
    (text, any::<bool>()).prop_map(|(s, raw)| {
        if raw || s.starts_with('%') {
            s
        } else {
            utf8_percent_encode(&s, NON_ALPHANUMERIC).to_string()
        }
    })
}

#[test]
fn arbitrary_ids_in_path_segments_never_get_a_5xx() {
    let emu = InProc::new();
    emu.batch_with_images("fz-ids", 2);
    let ws = prop_oneof![
        4 => Just("test-ws".to_string()),
        1 => Just("other-ws".to_string()),
        1 => segment(),
    ];
    let ids = (segment(), segment(), segment(), segment());
    let body = prop_oneof![
        Just(Vec::new()),
        Just(b"{}".to_vec()),
        Just(
            image_job("fz-ids", "image-properties")
                .to_string()
                .into_bytes()
        ),
    ];
    let runs = cases(256);
    runner(runs)
        .run(
            &(0..ROUTES.len(), ws, ids, body, any::<bool>()),
            |(r, ws, (b, j, s, t), body, with_key)| {
                let (method, template) = ROUTES[r];
                let path = template
                    .replace("{ws}", &ws)
                    .replace("{b}", &b)
                    .replace("{j}", &j)
                    .replace("{s}", &s)
                    .replace("{t}", &t);
                let uri = if with_key {
                    format!("{path}?api_key=test-key&fileName=a.png")
                } else {
                    path.clone()
                };
                let Some(a) =
                    emu.call(method, &uri, &[("content-type", b"application/json")], body)
                else {
                    return Ok(());
                };
                a.check(&format!("{method} {path}"))?;
                // a key never opens another workspace
                if with_key && ws != "test-ws" && template.contains("{ws}") {
                    prop_assert!(a.status >= 400, "{method} {path} -> {}", a.status);
                }
                Ok(())
            },
        )
        .unwrap();
    emu.still_serving(runs);
}

#[test]
fn arbitrary_query_parameters_never_get_a_5xx() {
    let emu = InProc::new();
    emu.batch_with_images("fz-q", 4);
    emu.finished_job("fz-qjob", "fz-q");
    let stats = emu.state.stats();
    let stage_paths: Vec<String> = {
        let a = emu
            .call("GET", &InProc::bp("/fz-qjob/stages"), &[], vec![])
            .unwrap();
        a.json()["stages"]
            .as_array()
            .map(|s| {
                s.iter()
                    .filter_map(|st| st["processingStageId"].as_str())
                    .map(|id| format!("/fz-qjob/stages/{id}/tasks"))
                    .collect()
            })
            .unwrap_or_default()
    };
    assert!(!stage_paths.is_empty(), "{stats:?}");
    let mut paths: Vec<String> = vec![
        "/data-staging/v1/external/test-ws/batches".into(),
        "/data-staging/v1/external/test-ws/batches/fz-q".into(),
        "/data-staging/v1/external/test-ws/batches/fz-q/count".into(),
        "/data-staging/v1/external/test-ws/batches/fz-q/list".into(),
        "/data-staging/v1/external/test-ws/batches/fz-q/parts".into(),
        "/data-staging/v1/external/test-ws/batches/fz-q/shards".into(),
        "/batch-processing/v1/external/test-ws/jobs".into(),
        "/batch-processing/v1/external/test-ws/jobs/fz-qjob".into(),
        "/batch-processing/v1/external/test-ws/jobs/fz-qjob/stages".into(),
        "/batch-processing/v1/external/test-ws/jobs/fz-qjob/logs".into(),
        "/data-staging/v1/external/test-ws/batches/fz-q2/bulk-upload/image-files".into(),
        "/data-staging/v1/external/test-ws/batches/fz-q3/upload/video".into(),
    ];
    paths.extend(
        stage_paths
            .iter()
            .map(|p| format!("/batch-processing/v1/external/test-ws/jobs{p}")),
    );
    let names = prop_oneof![
        4 => prop::sample::select(vec![
            "pageSize", "nextPageToken", "partName", "partNames", "fileName", "severity",
            "displayName", "name", "api_key", "limit", "offset",
        ])
        .prop_map(str::to_string),
        1 => ".{0,12}",
    ];
    let value = prop_oneof![
        "-?[0-9]{1,25}",
        "pg-[0-9a-f]{0,20}",
        nasty(),
        Just("1".to_string()),
    ];
    let query = prop_oneof![
        3 => prop::collection::vec((names, value), 0..6).prop_map(|kv| {
            kv.iter()
                .map(|(k, v)| {
                    format!(
                        "{}={}",
                        url::form_urlencoded::byte_serialize(k.as_bytes()).collect::<String>(),
                        url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>()
                    )
                })
                .collect::<Vec<_>>()
                .join("&")
        }),
        1 => "[ -~]{0,80}",
        1 => prop::collection::vec(any::<u8>(), 0..60)
            .prop_map(|b| b.iter().map(|x| format!("%{x:02X}")).collect::<String>()),
    ];
    let runs = cases(256);
    runner(runs)
        .run(&(0..paths.len(), query), |(p, query)| {
            let path = &paths[p];
            let method = if path.ends_with("image-files") || path.ends_with("upload/video") {
                "POST"
            } else {
                "GET"
            };
            let uri = format!("{path}?api_key=test-key&{query}");
            let Some(a) = emu.call(method, &uri, &[], vec![]) else {
                return Ok(());
            };
            a.check(&format!("{method} {path}?{query}"))
        })
        .unwrap();
    emu.still_serving(runs);
}
