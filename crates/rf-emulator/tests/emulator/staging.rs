//! Data Staging: single uploads, videos, shards, reference ingest, batch
//! metadata, listings, counts, parts and the data-staging webhooks.

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
    // No --library: said so, with what to do.
    assert!(
        b["error"].as_str().unwrap().contains("no asset library"),
        "{b}"
    );
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
    // the listing is sorted by name: find the file rather than its index
    let fifth = files
        .iter()
        .find(|f| f["fileName"] == members[5].0.as_str())
        .unwrap();
    let (_, bytes) = env.download(fifth["downloadURL"].as_str().unwrap()).await;
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
    let cfg = serde_json::to_vec(&json!({"ingestId": "run-1", "notificationsURL": hook})).unwrap();
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
