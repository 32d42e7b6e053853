//! `rf run`: the embedded default, a separately started emulator, videos,
//! resume, interrupt, and bad input.

use std::time::Duration;

use crate::emu::{TestEmulator, assert_results_name, make_videos, sample_names, samples};
use crate::util::{Running, Sandbox, run, run_args};

#[test]
fn embedded_default_runs_the_readme_command_and_resumes() {
    let sb = Sandbox::new();
    let out = sb.path().join("out");
    let images = samples();
    let args = run_args(&images, "image-properties", &out);
    let first = run(sb.rf().args(&args));
    first.expect_code(0);
    let said = first
        .stderr
        .lines()
        .filter(|l| l.contains("embedded emulator"))
        .count();
    assert_eq!(
        said, 1,
        "one line about the embedded emulator:\n{}",
        first.stderr
    );
    assert!(
        sb.cache().join("rf/emulator").is_dir(),
        "emulator data under the cache dir"
    );
    assert!(first.stdout.contains("results"), "{}", first.stdout);
    // stderr is not a terminal here: progress comes as plain lines, one
    // summary per phase.
    for phase in [
        "rf: scan:",
        "rf: upload:",
        "rf: indexing:",
        "rf: job:",
        "rf: download:",
    ] {
        assert!(
            first.stderr.contains(phase),
            "no {phase:?} line:\n{}",
            first.stderr
        );
    }
    assert!(
        !first.stderr.contains('\u{1b}'),
        "no escape codes off a terminal"
    );
    assert_results_name(&out, &sample_names());

    // The same command again: resumes, nothing uploaded or downloaded twice.
    let again = run(sb.rf().arg("--json").args(&args));
    again.expect_code(0);
    let report = again.json();
    assert_eq!(report["resumed"], true, "{report}");
    assert_eq!(report["uploadedNow"], 0, "{report}");
    assert_eq!(report["downloadedNow"], 0, "{report}");
    assert_eq!(report["confirmedCount"], 12, "{report}");
    // The job finished in the first attempt: the report still says how.
    assert_eq!(report["job"]["isTerminal"], true, "{report}");
    assert_eq!(report["job"]["error"], false, "{report}");
    assert_results_name(&out, &sample_names());
    let table = run(sb.rf().args(&args));
    table.expect_code(0);
    assert!(table.stdout.contains("(succeeded)"), "{}", table.stdout);
    assert!(
        table
            .stdout
            .contains("the rest was done by earlier attempts"),
        "{}",
        table.stdout
    );
}

#[test]
fn separately_started_emulator_with_json_report() {
    let emu = TestEmulator::start();
    let sb = Sandbox::new();
    let out = sb.path().join("out");
    let done = run(emu
        .rf(&sb)
        .arg("--json")
        .args(run_args(&samples(), "image-properties", &out))
        .args([
            "--batch-id",
            "e2e-images",
            "--job-id",
            "e2e-job",
            "--aggregation-format",
            "jsonl",
        ]));
    done.expect_code(0);
    assert!(!done.stderr.contains("embedded"), "{}", done.stderr);
    let report = done.json();
    assert_eq!(report["batchId"], "e2e-images");
    assert_eq!(report["jobId"], "e2e-job");
    assert_eq!(report["confirmedCount"], 12);
    assert!(report["outputBatch"].is_string(), "{report}");
    assert_results_name(&out, &sample_names());
    // Nothing was written into the input directory.
    assert!(!samples().join(".rf-state").exists());
}

#[test]
fn a_run_over_videos_names_every_video() {
    let emu = TestEmulator::start();
    let sb = Sandbox::new();
    let videos = sb.path().join("videos");
    let names = make_videos(&videos, 3);
    let out = sb.path().join("out");
    let done = run(emu.rf(&sb).args([
        "run",
        "--videos",
        videos.to_str().unwrap(),
        "--workflow",
        "video-properties",
        "--out",
        out.to_str().unwrap(),
        "--max-video-fps",
        "2",
    ]));
    done.expect_code(0);
    assert_results_name(&out, &names);
}

#[test]
fn missing_directory_is_a_usage_error_on_one_line() {
    let sb = Sandbox::new();
    let done = run(sb.rf().args([
        "run",
        "--images",
        "/definitely/not/here",
        "--workflow",
        "image-properties",
        "--out",
        sb.path().join("out").to_str().unwrap(),
    ]));
    done.expect_code(2);
    assert_eq!(done.stderr.lines().count(), 1, "{}", done.stderr);
    assert!(
        done.stderr.starts_with("rf: --images /definitely/not/here"),
        "{}",
        done.stderr
    );
    assert!(done.stdout.is_empty());
}

#[test]
fn invalid_ids_are_usage_errors() {
    let sb = Sandbox::new();
    for (flag, value) in [
        ("--batch-id", "Not_Valid!"),
        ("--job-id", "much-too-long-for-a-job-id"),
    ] {
        let done = run(sb
            .rf()
            .args(run_args(
                &samples(),
                "image-properties",
                &sb.path().join("out"),
            ))
            .args([flag, value]));
        done.expect_code(2);
        assert!(done.error_line().contains(value), "{}", done.stderr);
    }
}

#[test]
fn unknown_workflow_fails_with_a_clear_line() {
    let emu = TestEmulator::start();
    let sb = Sandbox::new();
    let done = run(emu.rf(&sb).args(run_args(
        &samples(),
        "no-such-workflow",
        &sb.path().join("out"),
    )));
    assert!(
        matches!(done.code, Some(4 | 5 | 2)),
        "exit {:?}\n{}",
        done.code,
        done.stderr
    );
    assert!(
        done.error_line().contains("no-such-workflow"),
        "{}",
        done.stderr
    );
}

#[test]
fn ctrl_c_stops_cleanly_and_a_rerun_resumes() {
    let emu = TestEmulator::slow(Duration::from_millis(150));
    let sb = Sandbox::new();
    let out = sb.path().join("out");
    let images = samples();
    let mut args = run_args(&images, "image-properties", &out);
    args.extend(["--batch-id", "e2e-interrupt"].map(String::from));
    let mut child = Running::spawn(emu.rf(&sb).args(&args));
    child.wait_for_stderr("started job");
    child.interrupt();
    let done = child.finish();
    done.expect_code(130);
    assert!(
        done.error_line().contains("re-run the same command"),
        "{}",
        done.stderr
    );
    let again = run(emu.rf(&sb).arg("--json").args(&args));
    again.expect_code(0);
    let report = again.json();
    assert_eq!(report["resumed"], true);
    assert_eq!(report["uploadedNow"], 0, "{report}");
    assert_results_name(&out, &sample_names());
}

#[test]
fn job_options_are_checked_before_anything_is_uploaded() {
    let emu = TestEmulator::start();
    let sb = Sandbox::new();
    let done = run(emu
        .rf(&sb)
        .args(run_args(
            &samples(),
            "image-properties",
            &sb.path().join("out"),
        ))
        .args(["--batch-id", "e2e-never", "--max-video-fps", "3"]));
    done.expect_code(2);
    assert_eq!(done.stderr.lines().count(), 1, "{}", done.stderr);
    assert!(done.error_line().contains("video"), "{}", done.stderr);
    // Nothing reached the service.
    run(emu.rf(&sb).args(["batch", "show", "e2e-never"])).expect_code(4);
}
