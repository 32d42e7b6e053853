//! `rf batch ...` against a separately started emulator.

use crate::emu::{TestEmulator, assert_results_name, sample_names, samples};
use crate::util::{Sandbox, run};

#[test]
fn ingest_then_inspect_every_listing() {
    let emu = TestEmulator::start();
    let sb = Sandbox::new();
    let ingest = run(emu.rf(&sb).args([
        "batch",
        "ingest",
        "--images",
        samples().to_str().unwrap(),
        "--batch-id",
        "e2e-batch",
        "--wait",
    ]));
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
fn bulk_mode_makes_shards() {
    let emu = TestEmulator::start();
    let sb = Sandbox::new();
    run(emu.rf(&sb).args([
        "batch",
        "ingest",
        "--images",
        samples().to_str().unwrap(),
        "--batch-id",
        "e2e-bulk",
        "--mode",
        "bulk",
        "--wait",
    ]))
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
