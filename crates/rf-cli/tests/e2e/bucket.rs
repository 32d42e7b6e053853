//! `rf batch ingest --images s3://...` against a real local S3 server (moto,
//! from rf-testservers) and the emulator, which fetches the presigned
//! loopback URLs. Without the server installed the test is skipped with a
//! line saying so, except under `CI=true`, where it fails.

use std::process::Command;

use rf_testservers::{BUCKET, S3Server};

use crate::emu::{TestEmulator, samples, walk_files};
use crate::util::{Sandbox, run};

/// Puts every sample image under `prefix/`, keeping its relative path (two
/// share the basename `frame_000.jpg`); returns how many.
fn put_samples(s3: &S3Server, prefix: &str) -> usize {
    let root = samples();
    let files = walk_files(&root, |_| false);
    for file in &files {
        let rel = file
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        put(
            s3,
            &format!("{prefix}/{rel}"),
            &std::fs::read(file).unwrap(),
        );
    }
    files.len()
}

/// An unsigned PUT: moto checks that a request names a key, not its
/// signature (as rf-testservers' `S3Server::get`).
fn put(s3: &S3Server, key: &str, bytes: &[u8]) {
    let url = format!("{}/{BUCKET}/{key}", s3.endpoint());
    let authorization = format!(
        "AWS4-HMAC-SHA256 Credential={}/20260101/{}/s3/aws4_request, SignedHeaders=host, Signature=0",
        S3Server::ACCESS_KEY_ID,
        S3Server::REGION
    );
    let answer = ureq::put(&url)
        .header("authorization", &authorization)
        .send(bytes)
        .unwrap();
    assert_eq!(answer.status().as_u16(), 200, "PUT {url}");
}

fn with_s3<'c>(cmd: &'c mut Command, s3: &S3Server) -> &'c mut Command {
    cmd.envs(s3.env())
}

fn ingest(emu: &TestEmulator, sb: &Sandbox, s3: &S3Server, url: &str, batch: &str) -> Command {
    let mut cmd = emu.rf(sb);
    with_s3(&mut cmd, s3).args([
        "--json",
        "batch",
        "ingest",
        "--images",
        url,
        "--batch-id",
        batch,
        "--wait",
    ]);
    cmd
}

#[test]
fn images_from_an_s3_bucket_exact_count_and_a_rerun_sends_nothing() {
    let Some(s3) = rf_testservers::s3() else {
        return;
    };
    let n = put_samples(&s3, "in");
    let emu = TestEmulator::start();
    let sb = Sandbox::new();
    let url = s3.url("in/");
    let done = run(&mut ingest(&emu, &sb, &s3, &url, "e2e-s3"));
    let first = done.expect_code(0).json();
    assert_eq!(first["references"], n, "{first}");
    assert_eq!(first["count"], n, "{first}");
    assert_eq!(first["requests"], 1, "{first}");
    // The progress track ends with what went (stderr is not a terminal:
    // plain lines).
    let line = format!(
        "rf: upload: {n} media objects of {n} objects sent by reference (0 accepted before)"
    );
    assert!(done.stderr.contains(&line), "{}", done.stderr);
    let again = run(&mut ingest(&emu, &sb, &s3, &url, "e2e-s3"));
    let line = format!("({n} accepted before)");
    assert!(again.stderr.contains(&line), "{}", again.stderr);
    let again = again.expect_code(0).json();
    assert_eq!(
        (again["requests"].as_u64(), again["skippedChunks"].as_u64()),
        (Some(0), Some(1)),
        "{again}"
    );
    assert_eq!(again["count"], n, "{again}");
    let files = run(emu.rf(&sb).args(["--json", "batch", "files", "e2e-s3"]));
    let mut names: Vec<String> = files
        .expect_code(0)
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["fileName"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    assert!(
        names.contains(&"frame_000.jpg".to_owned())
            && names.contains(&"street__frame_000.jpg".to_owned()),
        "{names:?}"
    );
    assert_eq!(names.len(), n);

    // --dry-run lists and sends nothing.
    let mut dry = ingest(&emu, &sb, &s3, &s3.url("in/park/*.png"), "e2e-s3-dry");
    dry.arg("--dry-run");
    let dry = run(&mut dry);
    assert_eq!(dry.expect_code(0).json()["wouldSend"], 4);
    let count = run(emu.rf(&sb).args(["batch", "count", "e2e-s3-dry"]));
    count.expect_code(4);

    // A glob: only the PNGs of one folder.
    let png = run(&mut ingest(
        &emu,
        &sb,
        &s3,
        &s3.url("in/park/*.png"),
        "e2e-s3-png",
    ));
    assert_eq!(png.expect_code(0).json()["count"], 4);
}

#[test]
fn bucket_errors_have_their_exit_codes() {
    let Some(s3) = rf_testservers::s3() else {
        return;
    };
    put(&s3, "some/notes.txt", b"not an image");
    let emu = TestEmulator::start();
    let sb = Sandbox::new();
    let code = |url: &str, strip_keys: bool| {
        let mut cmd = ingest(&emu, &sb, &s3, url, "e2e-s3-errors");
        if strip_keys {
            cmd.env_remove("AWS_ACCESS_KEY_ID")
                .env("AWS_EC2_METADATA_DISABLED", "true");
        }
        let done = run(&mut cmd);
        (done.code, done.error_line().to_owned())
    };
    let (c, line) = code("ftp://b/p/", false);
    assert_eq!(c, Some(2), "{line}");
    assert!(line.contains("unknown storage scheme"), "{line}");
    let (c, line) = code("s3://no-such-bucket/p/", false);
    assert_eq!(c, Some(4), "{line}");
    let (c, line) = code(&s3.url("nothing-here/"), false);
    assert_eq!(c, Some(2), "{line}");
    assert!(line.contains("empty"), "{line}");
    let (c, line) = code(&s3.url("some/"), false);
    assert_eq!(c, Some(2), "{line}");
    assert!(line.contains("1 objects listed"), "{line}");
    let (c, line) = code(&s3.url("some/"), true);
    assert_eq!(c, Some(3), "{line}");
    assert!(line.contains("AWS_ACCESS_KEY_ID"), "{line}");
}

#[test]
fn rf_run_over_an_s3_bucket_counts_exactly_and_resumes_without_resending() {
    let Some(s3) = rf_testservers::s3() else {
        return;
    };
    let n = put_samples(&s3, "run");
    let emu = TestEmulator::start();
    let sb = Sandbox::new();
    let out = sb.path().join("out");
    let url = s3.url("run/");
    let rf_run = |extra: &[&str]| {
        let mut cmd = emu.rf(&sb);
        with_s3(&mut cmd, &s3).args([
            "--json",
            "run",
            "--images",
            &url,
            "--workflow",
            "image-properties",
            "--out",
            out.to_str().unwrap(),
            "--batch-id",
            "e2e-run-s3",
        ]);
        cmd.args(extra);
        run(&mut cmd)
    };
    let first = rf_run(&["--report"]);
    let report = first.expect_code(0).json();
    assert!(
        out.join("report.html").is_file(),
        "the page of a bucket run"
    );
    assert_eq!(report["confirmedCount"], n, "{report}");
    assert_eq!(report["uploadedNow"], n, "{report}");
    assert!(report["outputBatch"].is_string(), "{report}");
    let again = rf_run(&[]);
    let report = again.expect_code(0).json();
    assert_eq!(report["confirmedCount"], n, "{report}");
    assert_eq!(report["uploadedNow"], 0, "{report}");
    // Without --json: the same resumed run, told as a table.
    let mut cmd = emu.rf(&sb);
    with_s3(&mut cmd, &s3).args([
        "run",
        "--images",
        &url,
        "--workflow",
        "image-properties",
        "--out",
        out.to_str().unwrap(),
        "--batch-id",
        "e2e-run-s3",
    ]);
    let table = run(&mut cmd);
    table.expect_code(0);
    assert!(table.stdout.contains("e2e-run-s3"), "{}", table.stdout);
    let shards = run(emu
        .rf(&sb)
        .args(["--json", "batch", "shards", "e2e-run-s3"]));
    assert_eq!(
        shards.expect_code(0).json().as_array().unwrap().len(),
        1,
        "one chunk, sent once"
    );
}
