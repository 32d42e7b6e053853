//! One JSON style: every document and JSON line `rf --json` prints names its
//! fields in camelCase, whether it is an API model passed through, rf's own
//! summary, the run report or the job snapshot.

use serde_json::Value;

use crate::emu::{TestEmulator, samples};
use crate::util::{Running, Sandbox, run, run_args};

/// Whether `key` is camelCase: starts with a lower-case letter, no `_`, `-`
/// or space (`downloadURL` is fine).
fn is_camel(key: &str) -> bool {
    key.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && key.chars().all(|c| c.is_ascii_alphanumeric())
}

/// Every key of `value`, at any depth, that is not camelCase, with its path.
fn non_camel_keys(value: &Value, path: &str, found: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let here = format!("{path}.{k}");
                if !is_camel(k) {
                    found.push(here.clone());
                }
                non_camel_keys(v, &here, found);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                non_camel_keys(v, &format!("{path}[{i}]"), found);
            }
        }
        _ => {}
    }
}

/// Panics naming every non-camelCase key of the JSON on stdout (one
/// document, or JSON lines when `lines`).
#[track_caller]
fn assert_camel(what: &str, stdout: &str, lines: bool) {
    let docs: Vec<Value> = if lines {
        stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{what}: {e}: {l}")))
            .collect()
    } else {
        vec![serde_json::from_str(stdout).unwrap_or_else(|e| panic!("{what}: {e}: {stdout}"))]
    };
    assert!(!docs.is_empty(), "{what}: no JSON printed");
    let mut found = Vec::new();
    for doc in &docs {
        non_camel_keys(doc, "", &mut found);
    }
    assert!(
        found.is_empty(),
        "{what}: keys not in camelCase: {found:?}\n{stdout}"
    );
}

#[test]
fn key_check_tells_camel_from_snake() {
    assert!(is_camel("batchId") && is_camel("downloadURL") && is_camel("count"));
    assert!(!is_camel("batch_id") && !is_camel("BatchId") && !is_camel("max-fps"));
    let mut found = Vec::new();
    non_camel_keys(
        &serde_json::json!({"ok": [{"inner_key": 1}], "isTerminal": true}),
        "",
        &mut found,
    );
    assert_eq!(found, [".ok[0].inner_key"]);
}

#[test]
fn every_json_output_is_camel_case() {
    let emu = TestEmulator::start();
    let sb = Sandbox::new();
    let images = samples();
    let images = images.to_str().unwrap();
    let out = sb.path().join("out");
    let out = out.to_str().unwrap();

    // The run report (with the final job snapshot inside).
    let report = run(emu
        .rf(&sb)
        .arg("--json")
        .args(run_args(
            &samples(),
            "image-properties",
            &sb.path().join("out"),
        ))
        .args(["--batch-id", "style-run", "--job-id", "style-job"]));
    report.expect_code(0);
    assert_camel("rf run", &report.stdout, false);
    assert!(
        report.json()["job"]["tasksSucceeded"].is_u64(),
        "{}",
        report.stdout
    );

    let ingest = run(emu.rf(&sb).args([
        "--json",
        "batch",
        "ingest",
        "--images",
        images,
        "--batch-id",
        "style-batch",
        "--wait",
    ]));
    assert_camel("rf batch ingest", &ingest.expect_code(0).stdout, false);
    let refs = sb.path().join("refs.jsonl");
    std::fs::write(
        &refs,
        "{\"name\": \"a.jpg\", \"url\": \"http://127.0.0.1:9/a.jpg\"}\n",
    )
    .unwrap();
    let references = run(emu.rf(&sb).args([
        "--json",
        "batch",
        "ingest",
        "--references",
        refs.to_str().unwrap(),
        "--batch-id",
        "style-refs",
    ]));
    assert_camel(
        "rf batch ingest --references",
        &references.expect_code(0).stdout,
        false,
    );

    let start = run(emu.rf(&sb).args([
        "--json",
        "job",
        "start",
        "--batch-id",
        "style-batch",
        "--workflow",
        "mock-detector",
        "--job-id",
        "style-job-2",
    ]));
    assert_camel("rf job start", &start.expect_code(0).stdout, false);
    let wait = run(emu.rf(&sb).args(["--json", "job", "wait", "style-job-2"]));
    assert_camel("rf job wait", &wait.expect_code(0).stdout, false);
    let stages = run(emu.rf(&sb).args(["--json", "job", "stages", "style-job-2"]));
    assert_camel("rf job stages", &stages.expect_code(0).stdout, false);
    let stage_id = stages.json()[0]["processingStageId"]
        .as_str()
        .unwrap()
        .to_owned();

    let documents: Vec<(&str, Vec<&str>)> = vec![
        ("rf batch list", vec!["batch", "list"]),
        ("rf batch show", vec!["batch", "show", "style-batch"]),
        ("rf batch count", vec!["batch", "count", "style-batch"]),
        ("rf batch files", vec!["batch", "files", "style-batch"]),
        ("rf batch shards", vec!["batch", "shards", "style-batch"]),
        ("rf job list", vec!["job", "list"]),
        ("rf job show", vec!["job", "show", "style-job-2"]),
        (
            "rf job tasks",
            vec!["job", "tasks", "style-job-2", &stage_id],
        ),
        (
            "rf job export",
            vec!["job", "export", "style-job-2", "--out", out],
        ),
    ];
    for (what, args) in documents {
        let done = run(emu.rf(&sb).arg("--json").args(&args));
        assert_camel(what, &done.expect_code(0).stdout, false);
    }
    let logs = run(emu.rf(&sb).args(["--json", "job", "logs", "style-job"]));
    assert_camel("rf job logs", &logs.expect_code(0).stdout, true);
    let export_batch = report.json()["outputBatch"].as_str().unwrap().to_owned();
    let parts = run(emu
        .rf(&sb)
        .args(["--json", "batch", "parts", &export_batch]));
    assert_camel("rf batch parts", &parts.expect_code(0).stdout, false);
    let export = run(emu.rf(&sb).args([
        "--json",
        "batch",
        "export",
        &export_batch,
        "--out",
        sb.path().join("again").to_str().unwrap(),
    ]));
    assert_camel("rf batch export", &export.expect_code(0).stdout, false);

    // The emulator's start line.
    let mut serve = Running::spawn(sb.rf().args([
        "--json",
        "emulator",
        "serve",
        "--addr",
        "127.0.0.1:0",
        "--data-dir",
        sb.path().join("emu").to_str().unwrap(),
        "--chaos-rate",
        "0.1",
    ]));
    let line = serve.wait_for_stdout("baseUrl");
    assert_camel("rf emulator serve", &line, true);
}
