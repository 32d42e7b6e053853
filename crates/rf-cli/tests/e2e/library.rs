//! `rf job library` and `rf job task` against a loopback service that
//! answers as the Asset Library routes do: the job starts once per intent
//! (the idempotency key is derived from the request), its task is followed
//! to the end, a failed task is a remote failure.

use crate::secrets::{http_answer, serve};
use crate::util::{Sandbox, run};

/// Workspace `ws`: creates answer 202 with job `al-123` and task `task-1`
/// (running once per connection's first poll is not modelled: completed);
/// task `task-bad` failed.
fn asset_library(head: &str) -> Option<String> {
    let path = head.split_whitespace().nth(1).unwrap_or("/");
    let route = path.split('?').next().unwrap_or(path);
    let json = |status: &str, body: &str| Some(http_answer(status, "application/json", body));
    match route {
        "/batch-processing/v1/external/ws/asset-library/jobs"
            if head.starts_with("POST") && head.contains("authorization: Bearer k-lib") =>
        {
            json(
                "202 Accepted",
                r#"{"status": "queued", "taskId": "task-1", "jobId": "al-123", "displayName": "Night"}"#,
            )
        }
        "/ws/asynctasks/task-1" => json(
            "200 OK",
            r#"{"taskId": "task-1", "status": "completed", "result": {"jobId": "al-123"}}"#,
        ),
        "/ws/asynctasks/task-bad" => json(
            "200 OK",
            r#"{"taskId": "task-bad", "status": "failed", "error": "query matched no images"}"#,
        ),
        _ => json("404 Not Found", r#"{"error": "not found"}"#),
    }
}

fn rf_at(sb: &Sandbox, base: &str, args: &[&str]) -> crate::util::Done {
    run(sb
        .rf()
        .args(["--api-url", base, "--api-key", "k-lib", "--workspace", "ws"])
        .args(args))
}

#[test]
fn a_library_job_starts_once_per_intent_and_its_task_is_followed() {
    let base = serve(asset_library);
    let sb = Sandbox::new();
    let key_of = |args: &[&str]| {
        let done = rf_at(&sb, &base, args);
        done.expect_code(0);
        done.json()["idempotencyKey"].as_str().unwrap().to_owned()
    };
    let night = [
        "--json",
        "job",
        "library",
        "--workflow",
        "wf",
        "--query",
        "tag:night",
    ];
    let first = key_of(&night);
    assert!(first.starts_with("rf-"), "{first}");
    // The same command again: the same key, so the service starts no
    // second job; another selection is another intent.
    assert_eq!(key_of(&night), first);
    let day = [
        "--json",
        "job",
        "library",
        "--workflow",
        "wf",
        "--query",
        "tag:day",
    ];
    assert_ne!(key_of(&day), first);
    // --wait follows the task; the job ID on stdout.
    let done = rf_at(
        &sb,
        &base,
        &["job", "library", "--workflow", "wf", "--all", "--wait"],
    );
    done.expect_code(0);
    assert_eq!(done.stdout.trim(), "al-123");
    let done = rf_at(&sb, &base, &["job", "task", "task-1"]);
    done.expect_code(0);
    assert_eq!(done.stdout.trim(), "task task-1: completed");
}

#[test]
fn a_failed_task_and_a_bad_selection_are_told_apart() {
    let base = serve(asset_library);
    let sb = Sandbox::new();
    let done = rf_at(&sb, &base, &["job", "task", "task-bad", "--wait"]);
    done.expect_code(5);
    assert!(
        done.error_line().contains("query matched no images"),
        "{}",
        done.stderr
    );
    // No selection, two selections, a blank query, a bad key: usage errors.
    for bad in [
        &["job", "library", "--workflow", "wf"][..],
        &[
            "job",
            "library",
            "--workflow",
            "wf",
            "--all",
            "--query",
            "q",
        ][..],
        &["job", "library", "--workflow", "wf", "--query", " "][..],
        &[
            "job",
            "library",
            "--workflow",
            "wf",
            "--all",
            "--idempotency-key",
            "no!",
        ][..],
    ] {
        rf_at(&sb, &base, bad).expect_code(2);
    }
}

#[test]
fn a_library_job_on_the_emulator_runs_over_the_images_its_query_selects() {
    let emu = crate::emu::TestEmulator::with(|mut c| {
        c.library = Some(crate::emu::samples());
        c
    });
    let sb = Sandbox::new();
    let args = [
        "job",
        "library",
        "--workflow",
        "image-properties",
        "--query",
        "tag:park",
        "--wait",
    ];
    let done = run(emu.rf(&sb).args(args));
    done.expect_code(0);
    let job = done.stdout.trim().to_owned();
    assert!(job.starts_with("al-"), "{}", done.stdout);
    assert!(done.stderr.contains("completed"), "{}", done.stderr);
    // The same command again starts nothing new: the same job.
    let again = run(emu.rf(&sb).args(args));
    again.expect_code(0);
    assert_eq!(again.stdout.trim(), job);
    run(emu.rf(&sb).args(["job", "wait", &job])).expect_code(0);
    // A query outside the emulator's subset: a usage error naming it.
    let bad = run(emu.rf(&sb).args([
        "job",
        "library",
        "--workflow",
        "image-properties",
        "--query",
        "split:valid",
    ]));
    bad.expect_code(2);
    assert!(
        bad.error_line().contains("\"split\" is not supported"),
        "{}",
        bad.stderr
    );
}

#[test]
fn a_roboql_ingest_stages_what_the_query_selects() {
    let emu = crate::emu::TestEmulator::with(|mut c| {
        c.library = Some(crate::emu::samples());
        c
    });
    let sb = Sandbox::new();
    let done = run(emu.rf(&sb).args([
        "batch",
        "ingest",
        "--query",
        "tag:street",
        "--batch-id",
        "street-rq",
    ]));
    done.expect_code(0);
    assert_eq!(done.stdout.trim(), "street-rq");
    let count = run(emu.rf(&sb).args(["--json", "batch", "count", "street-rq"]));
    count.expect_code(0);
    let streets = std::fs::read_dir(crate::emu::samples().join("street"))
        .unwrap()
        .count();
    assert_eq!(count.json()["count"], streets as u64, "{}", count.stdout);
    // Videos have no RoboQL form, and --wait has nothing to wait on: both
    // refused before any request.
    for bad in [
        &[
            "batch",
            "ingest",
            "--query",
            "tag:x",
            "--videos",
            "d",
            "--batch-id",
            "b",
        ][..],
        &[
            "batch",
            "ingest",
            "--query",
            "tag:x",
            "--batch-id",
            "b",
            "--wait",
        ][..],
        &["batch", "ingest", "--query", " ", "--batch-id", "b"][..],
    ] {
        run(emu.rf(&sb).args(bad)).expect_code(2);
    }
}
