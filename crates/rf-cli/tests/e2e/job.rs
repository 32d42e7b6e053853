//! `rf job ...` against a separately started emulator.

use crate::emu::{TestEmulator, assert_results_name, sample_names};
use crate::util::{Sandbox, run};

#[test]
fn start_wait_inspect_and_export_a_job() {
    let emu = TestEmulator::start();
    let sb = Sandbox::new();
    emu.stage_samples(&sb, "e2e-job-batch");

    let start = run(emu.rf(&sb).args([
        "job",
        "start",
        "--batch-id",
        "e2e-job-batch",
        "--workflow",
        "mock-detector",
        "--job-id",
        "e2e-job-1",
        "--job-name",
        "nightly",
        "--max-parallel-tasks",
        "2",
    ]));
    assert_eq!(start.expect_code(0).stdout.trim(), "e2e-job-1");

    let wait = run(emu.rf(&sb).args(["--json", "job", "wait", "e2e-job-1"]));
    let snapshot = wait.expect_code(0).json();
    assert_eq!(snapshot["isTerminal"], true, "{snapshot}");
    assert_eq!(snapshot["error"], false, "{snapshot}");

    let show = run(emu.rf(&sb).args(["--json", "job", "show", "e2e-job-1"]));
    let job = show.expect_code(0).json();
    assert_eq!(job["jobId"], "e2e-job-1");
    assert_eq!(job["name"], "nightly");
    assert_eq!(job["jobDefinition"]["maxParallelTasks"], 2);
    let text = run(emu.rf(&sb).args(["job", "show", "e2e-job-1"]));
    assert!(
        text.expect_code(0).stdout.contains("succeeded"),
        "{}",
        text.stdout
    );

    let list = run(emu.rf(&sb).args(["--json", "job", "list"]));
    let jobs = list.expect_code(0).json();
    assert!(
        jobs.as_array()
            .unwrap()
            .iter()
            .any(|j| j["jobId"] == "e2e-job-1")
    );

    let stages = run(emu.rf(&sb).args(["--json", "job", "stages", "e2e-job-1"]));
    let stages = stages.expect_code(0).json();
    let stages = stages.as_array().unwrap();
    assert!(stages.len() >= 2, "{stages:?}");
    let stage_id = stages[0]["processingStageId"].as_str().unwrap().to_owned();
    let tasks = run(emu
        .rf(&sb)
        .args(["--json", "job", "tasks", "e2e-job-1", &stage_id]));
    assert!(!tasks.expect_code(0).json().as_array().unwrap().is_empty());
    let table = run(emu.rf(&sb).args(["job", "tasks", "e2e-job-1", &stage_id]));
    assert!(
        table.expect_code(0).stdout.starts_with("TASK"),
        "{}",
        table.stdout
    );

    let logs = run(emu.rf(&sb).args(["--json", "job", "logs", "e2e-job-1"]));
    logs.expect_code(0);
    for line in logs.stdout.lines() {
        let entry: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(entry["severity"].is_string(), "{line}");
    }
    let follow = run(emu.rf(&sb).args([
        "job",
        "logs",
        "e2e-job-1",
        "--follow",
        "--severity",
        "error",
    ]));
    follow.expect_code(0);

    // The export output batch has parts.
    let export_batch = stages
        .iter()
        .find(|s| s["processingStageName"] == "export")
        .and_then(|s| s["outputBatches"][0].as_str())
        .unwrap()
        .to_owned();
    let parts = run(emu
        .rf(&sb)
        .args(["--json", "batch", "parts", &export_batch]));
    assert!(!parts.expect_code(0).json().as_array().unwrap().is_empty());

    let out = sb.path().join("results");
    run(emu
        .rf(&sb)
        .args(["job", "export", "e2e-job-1", "--out", out.to_str().unwrap()]))
    .expect_code(0);
    assert_results_name(&out, &sample_names());
}

#[test]
fn abort_and_restart_with_overrides() {
    let emu = TestEmulator::slow(std::time::Duration::from_millis(100));
    let sb = Sandbox::new();
    emu.stage_samples(&sb, "e2e-abort-batch");
    run(emu.rf(&sb).args([
        "job",
        "start",
        "--batch-id",
        "e2e-abort-batch",
        "--workflow",
        "image-properties",
        "--job-id",
        "e2e-abort",
    ]))
    .expect_code(0);
    let abort = run(emu.rf(&sb).args(["--json", "job", "abort", "e2e-abort"]));
    assert!(abort.expect_code(0).json().is_object());
    // Waiting on an aborted job reports a remote failure.
    let wait = run(emu.rf(&sb).args(["job", "wait", "e2e-abort"]));
    wait.expect_code(5);
    assert!(wait.error_line().contains("e2e-abort"), "{}", wait.stderr);

    let restart = run(emu.rf(&sb).args([
        "job",
        "restart",
        "e2e-abort",
        "--max-parallel-tasks",
        "2",
        "--machine-type",
        "gpu",
    ]));
    restart.expect_code(0);
    run(emu.rf(&sb).args(["job", "wait", "e2e-abort"])).expect_code(0);
    let show = run(emu.rf(&sb).args(["--json", "job", "show", "e2e-abort"]));
    let job = show.expect_code(0).json();
    let overrides = job["restartParametersOverride"].as_array().unwrap();
    assert_eq!(overrides.len(), 1, "{job}");
    assert_eq!(overrides[0]["maxParallelTasks"], 2, "{job}");
    assert_eq!(
        overrides[0]["computeConfiguration"]["machineType"], "gpu",
        "{job}"
    );
}

#[test]
fn unknown_job_is_not_found() {
    let emu = TestEmulator::start();
    let sb = Sandbox::new();
    let done = run(emu.rf(&sb).args(["job", "show", "no-such-job"]));
    done.expect_code(4);
    assert!(done.error_line().contains("no-such-job"), "{}", done.stderr);
}

#[test]
fn save_image_outputs_without_names_keeps_every_output() {
    let emu = TestEmulator::start();
    let sb = Sandbox::new();
    emu.stage_samples(&sb, "e2e-persist");
    let start = run(emu.rf(&sb).args([
        "--json",
        "job",
        "start",
        "--batch-id",
        "e2e-persist",
        "--workflow",
        "mock-detector",
        "--save-image-outputs",
    ]));
    let started = start.expect_code(0).json();
    let spec = &started["jobDefinition"]["processingSpecification"];
    assert_eq!(spec["persistImagesOutputs"], true, "{started}");
    assert!(
        spec.get("imagesOutputsToBePersisted").is_none(),
        "{started}"
    );
}

#[test]
fn a_download_failed_on_this_machine_says_so_and_a_rerun_retries_it() {
    let emu = TestEmulator::start();
    let sb = Sandbox::new();
    emu.stage_samples(&sb, "e2e-partial");
    run(emu.rf(&sb).args([
        "job",
        "start",
        "--batch-id",
        "e2e-partial",
        "--workflow",
        "image-properties",
        "--job-id",
        "e2e-partial",
    ]))
    .expect_code(0);
    run(emu.rf(&sb).args(["job", "wait", "e2e-partial"])).expect_code(0);
    // A file where the archive's part directory must go makes the download fail.
    let out = sb.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("results"), b"in the way").unwrap();
    let done = run(emu.rf(&sb).args([
        "job",
        "export",
        "e2e-partial",
        "--out",
        out.to_str().unwrap(),
    ]));
    // A local cause: exit 1 and the advice to fix it first, not a bare
    // "re-run".
    done.expect_code(1);
    let line = done.error_line();
    assert!(line.contains("1 failed on this machine"), "{line}");
    assert!(line.contains("fix that, then re-run"), "{line}");
    std::fs::remove_file(out.join("results")).unwrap();
    let again = run(emu.rf(&sb).args([
        "--json",
        "job",
        "export",
        "e2e-partial",
        "--out",
        out.to_str().unwrap(),
    ]));
    let summary = again.expect_code(0).json();
    assert_eq!(summary["downloadedNow"], 1, "{summary}");
    assert_results_name(&out, &sample_names());
}

#[test]
fn starting_an_existing_job_id_is_idempotent_or_a_clear_conflict() {
    let emu = TestEmulator::start();
    let sb = Sandbox::new();
    emu.stage_samples(&sb, "e2e-idem-batch");
    emu.stage_samples(&sb, "e2e-other-batch");
    let start = |batch: &str| {
        run(emu.rf(&sb).args([
            "job",
            "start",
            "--batch-id",
            batch,
            "--workflow",
            "image-properties",
            "--job-id",
            "e2e-idem",
        ]))
    };
    let first = start("e2e-idem-batch");
    assert_eq!(first.expect_code(0).stdout.trim(), "e2e-idem");
    assert!(
        !first.stderr.contains("already existed"),
        "{}",
        first.stderr
    );
    // The same command again: the same job, nothing new started.
    let again = start("e2e-idem-batch");
    assert_eq!(again.expect_code(0).stdout.trim(), "e2e-idem");
    assert!(
        again
            .stderr
            .contains("job e2e-idem already existed with this definition"),
        "{}",
        again.stderr
    );
    // The same ID for another batch: refused, naming both.
    let other = start("e2e-other-batch");
    other.expect_code(2);
    let line = other.error_line();
    assert!(
        line.contains("e2e-idem-batch") && line.contains("e2e-other-batch"),
        "{line}"
    );
    assert!(line.contains("choose another --job-id"), "{line}");
    let jobs = run(emu.rf(&sb).args(["--json", "job", "list"]))
        .expect_code(0)
        .json();
    let ids: Vec<&str> = jobs
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|j| j["jobId"].as_str())
        .filter(|id| *id == "e2e-idem")
        .collect();
    assert_eq!(ids.len(), 1, "{jobs}");
}

#[test]
fn trt_compile_sends_each_device_once_and_is_followed_like_any_job() {
    let emu = TestEmulator::start();
    let sb = Sandbox::new();
    let started = run(emu.rf(&sb).args([
        "--json",
        "job",
        "trt-compile",
        "--model-id",
        "my-project/3",
        "--device",
        "nvidia-t4",
        "--device",
        "nvidia-l40s",
        "--device",
        "nvidia-t4",
        "--job-name",
        "compile v3",
    ]));
    started.expect_code(0);
    let doc = started.json();
    let job_id = doc["jobId"].as_str().unwrap().to_owned();
    assert!(job_id.starts_with("trt-"), "{job_id}");
    let definition = &doc["jobDefinition"];
    assert_eq!(definition["type"], "trt-compilation-v1");
    assert_eq!(definition["modelId"], "my-project/3");
    assert_eq!(
        definition["compilationDevices"],
        serde_json::json!(["nvidia-t4", "nvidia-l40s"])
    );
    // One task per device, followed to the end like any job.
    run(emu.rf(&sb).args(["job", "wait", &job_id])).expect_code(0);
    // A given job ID: --wait follows it; the same command again starts
    // nothing new.
    let args = [
        "job",
        "trt-compile",
        "--model-id",
        "my-project/3",
        "--device",
        "nvidia-l4",
        "--job-id",
        "trt-fixed-id",
        "--wait",
    ];
    run(emu.rf(&sb).args(args)).expect_code(0);
    let again = run(emu.rf(&sb).args(&args[..args.len() - 1]));
    again.expect_code(0);
    assert!(
        again
            .stderr
            .contains("already existed with this definition"),
        "{}",
        again.stderr
    );
    // A device the official client does not know is a usage error.
    let bad = run(emu.rf(&sb).args([
        "job",
        "trt-compile",
        "--model-id",
        "p/1",
        "--device",
        "nvidia-a100",
    ]));
    bad.expect_code(2);
}

/// A library of two sample images in folder `cams`, with sidecars giving
/// each a metadata object (`frame_001` lacks the `loc=eu` key).
fn metadata_library() -> tempfile::TempDir {
    let lib = tempfile::tempdir().unwrap();
    let cams = lib.path().join("cams");
    std::fs::create_dir_all(&cams).unwrap();
    for (name, metadata) in [
        ("frame_000.jpg", r#"{"cam": "c1", "loc=eu": "north"}"#),
        ("frame_001.jpg", r#"{"cam": "c2"}"#),
    ] {
        let sample = crate::emu::samples().join(name);
        std::fs::copy(sample, cams.join(name)).unwrap();
        let sidecar = format!(r#"{{"metadata": {metadata}}}"#);
        std::fs::write(cams.join(format!("{name}.json")), sidecar).unwrap();
    }
    lib
}

/// Every JSON line of the `.jsonl` files under `dir`.
fn jsonl_records(dir: &std::path::Path) -> Vec<serde_json::Value> {
    let mut records = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            records.extend(jsonl_records(&path));
        } else if path.extension().is_some_and(|e| e == "jsonl") {
            let text = std::fs::read_to_string(&path).unwrap();
            records.extend(text.lines().map(|l| serde_json::from_str(l).unwrap()));
        }
    }
    records
}

#[test]
fn metadata_inputs_are_sent_and_reach_the_workflow() {
    let lib = metadata_library();
    let emu = TestEmulator::with(|mut c| {
        c.library = Some(lib.path().to_path_buf());
        c
    });
    let sb = Sandbox::new();
    let ingest = [
        "batch",
        "ingest",
        "--query",
        "tag:cams",
        "--batch-id",
        "e2e-meta",
    ];
    run(emu.rf(&sb).args(ingest)).expect_code(0);
    let start = |extra: &[&str]| {
        let mut cmd = emu.rf(&sb);
        cmd.args([
            "--json",
            "job",
            "start",
            "--batch-id",
            "e2e-meta",
            "--part-name",
            "images",
            "--workflow",
            "image-properties",
        ])
        .args(extra);
        run(&mut cmd)
    };
    let done = start(&[
        "--job-id",
        "e2e-meta-1",
        "--images-metadata-part-name",
        "metadata",
        "--metadata-mapping",
        "camera_id=camera",
        "--metadata-mapping",
        "site=loc=eu",
        "--metadata-mapping",
        "camera_id=cam",
    ]);
    done.expect_code(0);
    let definition = &done.json()["jobDefinition"];
    assert_eq!(definition["jobInput"]["imagesMetadataPart"], "metadata");
    // Split at the first '='; a repeated input keeps its last key.
    assert_eq!(
        definition["processingSpecification"]["imagesMetadataInputsMapping"],
        serde_json::json!({"camera_id": "cam", "site": "loc=eu"})
    );
    // The workflow received the mapped values; the image lacking a key
    // failed.
    run(emu.rf(&sb).args(["job", "wait", "e2e-meta-1"])).expect_code(0);
    let out = sb.path().join("results");
    let export = [
        "job",
        "export",
        "e2e-meta-1",
        "--out",
        out.to_str().unwrap(),
    ];
    run(emu.rf(&sb).args(export)).expect_code(0);
    let records = jsonl_records(&out);
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["file_name"], "cams__frame_000.jpg");
    assert_eq!(
        records[0]["workflow_inputs"],
        serde_json::json!({"camera_id": "c1", "site": "north"})
    );
    let logs =
        run(emu
            .rf(&sb)
            .args(["--json", "job", "logs", "e2e-meta-1", "--severity", "error"]));
    let logs = logs.expect_code(0).stdout.clone();
    assert!(logs.contains("Missing keys"), "{logs}");
    assert!(logs.contains("cams__frame_001.jpg"), "{logs}");
    // Not INPUT=KEY, or on a video job: usage errors, nothing started;
    // a metadata part the batch lacks: refused by the service.
    for bad in [
        &["--metadata-mapping", "camera_id"][..],
        &["--metadata-mapping", "=camera"][..],
        &["--videos", "--metadata-mapping", "a=b"][..],
    ] {
        start(bad).expect_code(2);
    }
    let absent = start(&["--images-metadata-part-name", "sidecars"]);
    assert_ne!(absent.code, Some(0));
    assert!(
        absent.stderr.contains("no part \"sidecars\""),
        "{}",
        absent.stderr
    );
}

#[test]
fn job_list_search_keeps_the_jobs_whose_name_or_workflow_matches() {
    let emu = TestEmulator::start();
    let sb = Sandbox::new();
    emu.stage_samples(&sb, "e2e-search");
    for (id, workflow, name) in [
        ("e2e-s-props", "image-properties", "Night props"),
        ("e2e-s-blobs", "color-blobs", "Day blobs"),
    ] {
        run(emu.rf(&sb).args([
            "job",
            "start",
            "--batch-id",
            "e2e-search",
            "--workflow",
            workflow,
            "--job-id",
            id,
            "--job-name",
            name,
        ]))
        .expect_code(0);
    }
    let ids = |search: &str| {
        let done = run(emu
            .rf(&sb)
            .args(["--json", "job", "list", "--search", search]));
        done.expect_code(0);
        let mut ids: Vec<String> = done
            .json()
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["jobId"].as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(ids("NIGHT"), ["e2e-s-props"]);
    assert_eq!(ids("color-blobs"), ["e2e-s-blobs"]);
    assert_eq!(ids("e2e-s-"), ["e2e-s-blobs", "e2e-s-props"]);
    assert!(ids("nothing-like-it").is_empty());
    run(emu
        .rf(&sb)
        .args(["job", "list", "--search", &"x".repeat(161)]))
    .expect_code(2);
}
