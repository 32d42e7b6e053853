//! What `rf` says when something is wrong: one line naming the right ID and
//! the `rf` command that helps, the documented exit code, and nothing
//! half-done left behind (found walking through README.md and docs/cli.md).

use crate::emu::{TestEmulator, samples};
use crate::util::{Sandbox, run, run_args};

#[test]
fn a_missing_references_file_is_a_usage_error_before_anything_starts() {
    let sb = Sandbox::new();
    let done = run(sb.rf().args([
        "batch",
        "ingest",
        "--references",
        "no-such-refs.jsonl",
        "--batch-id",
        "refs",
    ]));
    done.expect_code(2);
    assert_eq!(
        done.error_line(),
        "rf: --references no-such-refs.jsonl: no such file or directory; pass an existing file"
    );
    assert!(
        !done.stderr.contains("embedded emulator"),
        "{}",
        done.stderr
    );
    let dir = run(sb.rf().args([
        "batch",
        "ingest",
        "--images",
        "no-such-dir",
        "--batch-id",
        "imgs",
    ]));
    dir.expect_code(2);
    assert!(!dir.stderr.contains("embedded emulator"), "{}", dir.stderr);
}

#[test]
fn rf_run_without_media_of_its_kind_lists_the_extensions() {
    let emu = TestEmulator::start();
    let sb = Sandbox::new();
    let done = run(emu.rf(&sb).args([
        "run",
        "--videos",
        samples().to_str().unwrap(),
        "--workflow",
        "image-properties",
        "--out",
        sb.path().join("out").to_str().unwrap(),
    ]));
    done.expect_code(2);
    let line = done.error_line();
    assert!(line.contains("no videos found in"), "{line}");
    assert!(line.contains("videos are files named *.mp4"), "{line}");
}

#[test]
fn images_given_to_a_video_ingest_are_named_as_images_and_the_extensions_listed() {
    let emu = TestEmulator::start();
    let sb = Sandbox::new();
    let done = run(emu.rf(&sb).args([
        "batch",
        "ingest",
        "--videos",
        samples().to_str().unwrap(),
        "--batch-id",
        "vids",
    ]));
    done.expect_code(2);
    assert!(
        done.stderr
            .contains("skipped frame_000.jpg: an image, and this run processes videos"),
        "{}",
        done.stderr
    );
    assert!(
        !done.stderr.contains("not an image or video extension"),
        "{}",
        done.stderr
    );
    let line = done.error_line();
    assert!(line.contains("no videos found in"), "{line}");
    assert!(line.contains("videos are files named *.mp4"), "{line}");
}

#[test]
fn unknown_ids_name_the_listing_that_shows_the_right_ones() {
    let emu = TestEmulator::start();
    let sb = Sandbox::new();
    let job = run(emu.rf(&sb).args(["job", "show", "no-such-job"]));
    job.expect_code(4);
    let line = job.error_line();
    assert!(
        line.ends_with("check the job ID (`rf job list`) and the workspace"),
        "{line}"
    );
    assert!(!line.contains("staged data"), "{line}");

    let batch = run(emu.rf(&sb).args(["batch", "count", "no-such-batch"]));
    batch.expect_code(4);
    assert!(
        batch
            .error_line()
            .contains("check the batch ID (`rf batch list`)"),
        "{}",
        batch.stderr
    );

    // An export of a batch that does not exist stops before creating the
    // directory or claiming anything was downloaded.
    let out = sb.path().join("results");
    let export = run(emu.rf(&sb).args([
        "batch",
        "export",
        "no-such-batch",
        "--out",
        out.to_str().unwrap(),
    ]));
    export.expect_code(4);
    assert!(
        export
            .error_line()
            .contains("check the batch ID (`rf batch list`)"),
        "{}",
        export.stderr
    );
    assert!(
        !export.stderr.contains("already downloaded"),
        "{}",
        export.stderr
    );
    assert!(!out.exists(), "no output directory for a failed export");
}

#[test]
fn a_failed_job_and_a_refused_restart_are_told_in_words() {
    let emu = TestEmulator::start();
    let sb = Sandbox::new();
    let out = sb.path().join("out");
    let failed = run(emu
        .rf(&sb)
        .args(run_args(&samples(), "no-such-workflow", &out))
        .args(["--job-id", "msg-job"]));
    failed.expect_code(5);
    let line = failed.error_line();
    assert!(
        line.starts_with(
            "rf: job \"msg-job\" failed: workflow \"no-such-workflow\" is not available"
        ),
        "{line}"
    );
    assert!(!line.contains("{\""), "no raw JSON: {line}");
    assert!(
        line.ends_with(
            "see why with `rf job logs msg-job`, and run it again with `rf job restart msg-job` once the cause is fixed"
        ),
        "{line}"
    );

    // A job that succeeded cannot be restarted; the advice says so.
    emu.stage_samples(&sb, "msg-batch");
    run(emu.rf(&sb).args([
        "job",
        "start",
        "--batch-id",
        "msg-batch",
        "--workflow",
        "image-properties",
        "--job-id",
        "msg-ok",
    ]))
    .expect_code(0);
    run(emu.rf(&sb).args(["job", "wait", "msg-ok"])).expect_code(0);
    let restart = run(emu.rf(&sb).args(["job", "restart", "msg-ok"]));
    restart.expect_code(2);
    assert!(
        restart
            .error_line()
            .contains("only a failed or aborted job can be restarted"),
        "{}",
        restart.stderr
    );
    // The tasks table tells a notification's message in words.
    let stages = run(emu.rf(&sb).args(["--json", "job", "stages", "msg-ok"]));
    let stage = stages.expect_code(0).json()[0]["processingStageId"]
        .as_str()
        .unwrap()
        .to_owned();
    let tasks = run(emu.rf(&sb).args(["job", "tasks", "msg-ok", &stage]));
    assert!(
        !tasks.expect_code(0).stdout.contains("{\""),
        "{}",
        tasks.stdout
    );
}

#[test]
fn another_run_into_the_same_out_directory_names_the_flag_to_change() {
    let emu = TestEmulator::start();
    let sb = Sandbox::new();
    let out = sb.path().join("out");
    let run_with = |workflow: &str| run(emu.rf(&sb).args(run_args(&samples(), workflow, &out)));
    run_with("image-properties").expect_code(0);
    let other = run_with("color-blobs");
    other.expect_code(2);
    let line = other.error_line();
    assert!(
        line.contains("records another run (input") && line.contains("\"color-blobs\""),
        "{line}"
    );
    assert!(
        line.ends_with(&format!(
            "use another --out directory, or remove {} to start this run there",
            out.canonicalize().unwrap().join(".rf-state").display()
        )),
        "{line}"
    );
}

#[test]
fn an_output_directory_inside_the_input_is_refused_with_the_way_out() {
    let emu = TestEmulator::start();
    let sb = Sandbox::new();
    let input = sb.path().join("input");
    std::fs::create_dir_all(&input).unwrap();
    std::fs::copy(samples().join("frame_000.jpg"), input.join("frame_000.jpg")).unwrap();
    let done = run(emu
        .rf(&sb)
        .args(run_args(&input, "image-properties", &input.join("out"))));
    done.expect_code(2);
    let line = done.error_line();
    assert!(line.contains("is inside the input directory"), "{line}");
    assert!(
        line.ends_with("; choose an --out outside the input directory"),
        "{line}"
    );
}

#[test]
fn the_first_ctrl_c_stops_a_references_ingest_waiting_for_its_count() {
    // Indexing that takes a minute: the count stays short meanwhile.
    let emu = TestEmulator::with(|mut c| {
        c.index_delay = std::time::Duration::from_secs(60);
        c
    });
    let sb = Sandbox::new();
    let refs = sb.path().join("refs.jsonl");
    std::fs::write(
        &refs,
        "{\"name\": \"a.jpg\", \"url\": \"http://127.0.0.1:9/a.jpg\"}\n",
    )
    .unwrap();
    let mut ingest = crate::util::Running::spawn(emu.rf(&sb).args([
        "batch",
        "ingest",
        "--references",
        refs.to_str().unwrap(),
        "--batch-id",
        "refs-wait",
        "--wait",
    ]));
    ingest.wait_for_stderr("waiting for the count to settle");
    ingest.interrupt();
    let done = ingest.finish();
    done.expect_code(130);
    assert_eq!(
        done.error_line(),
        "rf: interrupted; re-run the same command to resume"
    );
}
