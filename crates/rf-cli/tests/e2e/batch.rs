//! `rf batch ...` against a separately started emulator.

use crate::emu::{
    TestEmulator, assert_results_name, files_under, ingest_args, sample_names, samples,
};
use crate::util::{Sandbox, run};

#[test]
fn ingest_then_inspect_every_listing() {
    let emu = TestEmulator::start();
    let sb = Sandbox::new();
    let ingest = run(emu
        .rf(&sb)
        .args(ingest_args(&samples(), "e2e-batch"))
        .arg("--wait"));
    ingest.expect_code(0);

    let count = run(emu.rf(&sb).args(["batch", "count", "e2e-batch"]));
    count.expect_code(0);
    assert_eq!(count.stdout.trim(), "12");
    let count = run(emu.rf(&sb).args(["--json", "batch", "count", "e2e-batch"]));
    assert_eq!(count.expect_code(0).json()["count"], 12);

    let list = run(emu.rf(&sb).args(["--json", "batch", "list"]));
    let batches = list.expect_code(0).json();
    assert!(
        batches
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["batchId"] == "e2e-batch"),
        "{batches}"
    );
    let table = run(emu.rf(&sb).args(["batch", "list"]));
    assert!(
        table.expect_code(0).stdout.starts_with("BATCH ID"),
        "{}",
        table.stdout
    );

    let show = run(emu.rf(&sb).args(["--json", "batch", "show", "e2e-batch"]));
    let batch = show.expect_code(0).json();
    assert_eq!(batch["batchId"], "e2e-batch");
    assert_eq!(batch["batchContentType"], "images");

    let files = run(emu.rf(&sb).args(["--json", "batch", "files", "e2e-batch"]));
    let files = files.expect_code(0).json();
    let files = files.as_array().unwrap();
    assert_eq!(files.len(), 12);
    assert!(files.iter().all(|f| f["downloadURL"].is_string()));
    let limited = run(emu
        .rf(&sb)
        .args(["batch", "files", "e2e-batch", "--limit", "3"]));
    // Header plus three rows; no download URLs in the table.
    assert_eq!(
        limited.expect_code(0).stdout.lines().count(),
        4,
        "{}",
        limited.stdout
    );
    assert!(!limited.stdout.contains("http"), "{}", limited.stdout);

    let shards = run(emu.rf(&sb).args(["--json", "batch", "shards", "e2e-batch"]));
    assert!(shards.expect_code(0).json().is_array());

    let out = sb.path().join("export");
    let export = run(emu.rf(&sb).args([
        "batch",
        "export",
        "e2e-batch",
        "--out",
        out.to_str().unwrap(),
    ]));
    export.expect_code(0);
    assert_results_name(&out, &sample_names());
}

#[test]
fn http2_prior_knowledge_ingests_and_exports_over_http2_only() {
    let emu = TestEmulator::start();
    let sb = Sandbox::new();
    run(emu
        .rf(&sb)
        .arg("--http2-prior-knowledge")
        .args(ingest_args(&samples(), "e2e-h2"))
        .arg("--wait"))
    .expect_code(0);
    let out = sb.path().join("out");
    run(emu.rf(&sb).args([
        "--http2-prior-knowledge",
        "batch",
        "export",
        "e2e-h2",
        "--out",
        out.to_str().unwrap(),
    ]))
    .expect_code(0);
    assert_eq!(files_under(&out).len(), 12);
    assert_results_name(&out, &sample_names());
    let stats = emu.stats();
    assert!(stats.requests > 12, "{stats:?}");
    assert_eq!(
        stats.http2_requests, stats.requests,
        "every request of both commands, API and signed URLs, over HTTP/2"
    );
}

#[test]
fn bulk_mode_makes_shards() {
    let emu = TestEmulator::start();
    let sb = Sandbox::new();
    run(emu
        .rf(&sb)
        .args(ingest_args(&samples(), "e2e-bulk"))
        .args(["--mode", "bulk", "--wait"]))
    .expect_code(0);
    let shards = run(emu.rf(&sb).args(["--json", "batch", "shards", "e2e-bulk"]));
    let shards = shards.expect_code(0).json();
    let total: u64 = shards
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["shardObjectsCount"].as_u64().unwrap())
        .sum();
    assert_eq!(total, 12, "{shards}");
    let show = run(emu.rf(&sb).args(["batch", "show", "e2e-bulk"]));
    assert!(
        show.expect_code(0).stdout.contains("sharded-batch"),
        "{}",
        show.stdout
    );
}

#[test]
fn unknown_batch_is_not_found() {
    let emu = TestEmulator::start();
    let sb = Sandbox::new();
    for cmd in [
        ["batch", "show", "no-such-batch"],
        ["batch", "count", "no-such-batch"],
    ] {
        let done = run(emu.rf(&sb).args(cmd));
        done.expect_code(4);
        assert_eq!(done.stderr.lines().count(), 1, "{}", done.stderr);
        assert!(
            done.error_line().contains("no-such-batch"),
            "{}",
            done.stderr
        );
    }
}

#[test]
fn references_file_ingest_from_loopback_urls() {
    let emu = TestEmulator::start();
    let sb = Sandbox::new();
    // Stage the samples, then ingest them again by reference to the
    // emulator's own (loopback) download URLs.
    emu.stage_samples(&sb, "e2e-source");
    let files = run(emu.rf(&sb).args(["--json", "batch", "files", "e2e-source"]));
    let files = files.expect_code(0).json();
    let mut lines = String::new();
    for f in files.as_array().unwrap() {
        let line = serde_json::json!({"name": f["fileName"], "url": f["downloadURL"]});
        lines.push_str(&line.to_string());
        lines.push('\n');
    }
    let refs = sb.path().join("refs.jsonl");
    std::fs::write(&refs, lines).unwrap();
    let done = run(emu.rf(&sb).args([
        "--json",
        "batch",
        "ingest",
        "--references",
        refs.to_str().unwrap(),
        "--batch-id",
        "e2e-refs",
        "--wait",
    ]));
    let summary = done.expect_code(0).json();
    assert_eq!(summary["references"], 12, "{summary}");
    assert_eq!(summary["count"], 12, "{summary}");
    // A broken references file names the line.
    std::fs::write(&refs, "{\"name\": \"a.jpg\"}\n").unwrap();
    let bad = run(emu.rf(&sb).args([
        "batch",
        "ingest",
        "--references",
        refs.to_str().unwrap(),
        "--batch-id",
        "e2e-refs-bad",
    ]));
    bad.expect_code(2);
    assert!(bad.error_line().contains("line 1"), "{}", bad.stderr);
}

#[test]
fn videos_ingest_and_a_video_job() {
    let emu = TestEmulator::start();
    let sb = Sandbox::new();
    let videos = sb.path().join("videos");
    let names = crate::emu::make_videos(&videos, 2);
    run(emu.rf(&sb).args([
        "batch",
        "ingest",
        "--videos",
        videos.to_str().unwrap(),
        "--batch-id",
        "e2e-videos",
        "--wait",
    ]))
    .expect_code(0);
    let show = run(emu.rf(&sb).args(["--json", "batch", "show", "e2e-videos"]));
    assert_eq!(show.expect_code(0).json()["batchContentType"], "videos");
    let start = run(emu.rf(&sb).args([
        "--json",
        "job",
        "start",
        "--videos",
        "--batch-id",
        "e2e-videos",
        "--workflow",
        "video-properties",
        "--max-video-fps",
        "1",
    ]));
    let started = start.expect_code(0).json();
    assert_eq!(
        started["jobDefinition"]["type"],
        "simple-video-processing-v1"
    );
    let job_id = started["jobId"].as_str().unwrap().to_owned();
    run(emu.rf(&sb).args(["job", "wait", &job_id])).expect_code(0);
    let out = sb.path().join("video-results");
    run(emu
        .rf(&sb)
        .args(["job", "export", &job_id, "--out", out.to_str().unwrap()]))
    .expect_code(0);
    assert_results_name(&out, &names);
}

#[test]
fn quiet_leaves_stderr_empty() {
    let emu = TestEmulator::start();
    let sb = Sandbox::new();
    let done = run(emu
        .rf(&sb)
        .arg("-q")
        .args(ingest_args(&samples(), "e2e-quiet"))
        .arg("--wait"));
    done.expect_code(0);
    assert!(done.stderr.is_empty(), "{}", done.stderr);
    // Re-running resumes: nothing left to upload.
    let again = run(emu
        .rf(&sb)
        .arg("--json")
        .args(ingest_args(&samples(), "e2e-quiet")));
    let summary = again.expect_code(0).json();
    assert_eq!(summary["uploadedNow"], 0, "{summary}");
    assert_eq!(summary["uploadedBefore"], 12, "{summary}");
}
