//! Reference ingest from a local JSONL file against the emulator over
//! loopback: the file is read line by line and sent in chunks, each with its
//! own ingest ID; the images are served by a loopback HTTP server.

use crate::common::*;
use rf_batch::ingest::{MediaKind, ingest_references_file};
use rf_batch::wait::wait_for_count;
use rf_types::BatchId;
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn references_file_is_ingested_in_chunks() {
    let emu = start_emulator().await;
    let client = http_client(&emu);
    let images = MockServer::start().await;
    let (_, jpeg) = sample_images()
        .into_iter()
        .find(|(rel, _)| rel.ends_with(".jpg"))
        .unwrap();
    Mock::given(method("GET"))
        .and(path_regex("^/img/[0-9]+\\.jpg$"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(jpeg))
        .mount(&images)
        .await;

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("refs.jsonl");
    let mut lines = String::new();
    for i in 0..5 {
        lines.push_str(&format!(
            "{{\"name\": \"ref_{i}.jpg\", \"url\": \"{}/img/{i}.jpg\", \"extra\": 1}}\n",
            images.uri()
        ));
        if i == 2 {
            lines.push('\n'); // blank lines are skipped
        }
    }
    std::fs::write(&file, lines).unwrap();
    let batch = BatchId::new("refs").unwrap();
    let summary = ingest_references_file(
        &client,
        &batch,
        MediaKind::Image,
        &file,
        "nightly",
        2,
        Some("References"),
    )
    .await
    .unwrap();
    assert_eq!(summary.references, 5);
    assert_eq!(summary.requests, 3);
    assert_eq!(summary.ingest_ids, ["nightly-0", "nightly-1", "nightly-2"]);
    assert_eq!(summary.duplicated, 0);
    let count = wait_for_count(
        &client,
        "refs",
        5,
        &fast_poll(30),
        &rf_batch::CancellationToken::new(),
        |_| {},
    )
    .await
    .unwrap();
    assert_eq!(count, 5);

    // The same chunks again are recognised as repeats, not ingested twice.
    let again =
        ingest_references_file(&client, &batch, MediaKind::Image, &file, "nightly", 2, None)
            .await
            .unwrap();
    assert_eq!(again.duplicated, 3);
    assert_eq!(client.staging().count("refs", None).await.unwrap(), 5);

    // A malformed line stops before its chunk is sent, naming the line.
    std::fs::write(&file, "{\"name\": \"a.jpg\", \"url\": \"x\"}\nnot json\n").unwrap();
    let err = ingest_references_file(&client, &batch, MediaKind::Image, &file, "bad", 10, None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("line 2"), "{err}");
}
