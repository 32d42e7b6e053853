//! Property tests: arbitrary requests to every endpoint never get a 5xx.

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
            let path = template.replace("{s}", &segment.replace('?', "%3F").replace('#', "%23"));
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
