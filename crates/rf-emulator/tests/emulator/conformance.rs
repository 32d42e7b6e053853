//! Responses checked against the official OpenAPI schemas (the published
//! specs, copied byte for byte into `crates/rf-types/tests/fixtures/openapi/`).

use super::*;

/// The official spec `name`. The one copy of the specs lives with rf-types,
/// whose wire types are checked against them first; the emulator's answers
/// are checked against the same files.
fn spec(name: &str) -> Value {
    let path = format!(
        "{}/../rf-types/tests/fixtures/openapi/{name}.openapi.json",
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
    let schema =
        &root["paths"][path][method]["responses"]["200"]["content"]["application/json"]["schema"];
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
    let references = [
        (
            "refs",
            "image-references",
            json!({"imageReferences": [{"name": "r.png", "url": format!("{files}/a.png")}]}),
        ),
        (
            "vrefs",
            "video-references",
            json!({"videoReferences": [{"name": "v.mp4", "url": format!("{files}/none.mp4")}]}),
        ),
    ];
    for (batch, endpoint, body) in references {
        let url = env.ds(&format!("batches/{batch}/bulk-upload/{endpoint}"));
        let (_, b) = env.post(&url, &[], Some(body)).await;
        let path = format!("/{{workspace}}/batches/{{batchId}}/bulk-upload/{endpoint}");
        conforms(&ds, "post", &path, &b);
    }
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
