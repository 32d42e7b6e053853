//! `--out s3://…`, `az://…`: exports into buckets on local servers (moto,
//! Azurite; crates/rf-testservers), against the embedded emulator. The
//! bucket gets exactly the files a local export writes, and a re-run sends
//! nothing again.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::emu::samples;
use crate::util::{Sandbox, path_arg, run};

/// The files under `dir` (but `.rf-state`), as paths relative to it.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(rel) = pending.pop() {
        for entry in std::fs::read_dir(dir.join(&rel)).unwrap() {
            let entry = entry.unwrap();
            let name = rel.join(entry.file_name());
            if name == Path::new(".rf-state") {
                continue;
            }
            if entry.file_type().unwrap().is_dir() {
                pending.push(name);
            } else {
                found.push(name);
            }
        }
    }
    found.sort();
    found
}

fn with_env(mut cmd: Command, env: &[(&'static str, String)]) -> Command {
    cmd.envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    cmd
}

/// Every file of the staging directory is in the bucket under `prefix`,
/// byte for byte (`get` reads one object); returns how many.
fn assert_bucket_mirrors(
    staging: &Path,
    prefix: &str,
    get: impl Fn(&str) -> (u16, Vec<u8>),
) -> usize {
    let files = files_under(staging);
    assert!(
        !files.is_empty(),
        "nothing exported into {}",
        staging.display()
    );
    for rel in &files {
        let key = format!("{prefix}{}", rel.to_str().unwrap());
        let (status, body) = get(&key);
        assert_eq!(status, 200, "{key} is not in the bucket");
        assert_eq!(body, std::fs::read(staging.join(rel)).unwrap(), "{key}");
    }
    files.len()
}

#[test]
fn rf_run_exports_into_s3_and_a_rerun_uploads_nothing() {
    let Some(s3) = rf_testservers::s3() else {
        return;
    };
    let sb = Sandbox::new();
    let staging = sb.path().join("staging");
    let args = [
        "--json".to_owned(),
        "run".to_owned(),
        "--images".to_owned(),
        path_arg(&samples()),
        "--workflow".to_owned(),
        "image-properties".to_owned(),
        "--out".to_owned(),
        s3.url("runs/first/"),
        "--staging-dir".to_owned(),
        path_arg(&staging),
    ];
    let first = run(with_env(sb.rf(), &s3.env()).args(&args));
    let stderr = first.stderr.clone();
    let report = first.expect_code(0).json();
    let files = assert_bucket_mirrors(&staging, "runs/first/", |k| s3.get(k).unwrap());
    let line = format!("in the bucket ({files} now,");
    assert!(
        stderr.contains("rf: to bucket: ") && stderr.contains(&line),
        "{stderr}"
    );
    assert_eq!(report["outBucket"]["uploadedNow"], files, "{report}");
    assert_eq!(report["outBucket"]["url"], "s3://rf-test/runs/first/");

    let again = run(with_env(sb.rf(), &s3.env()).args(&args));
    let report = again.expect_code(0).json();
    assert_eq!(report["outBucket"]["uploadedNow"], 0, "{report}");
    assert_eq!(report["outBucket"]["uploadedBefore"], files, "{report}");
}

#[test]
fn batch_and_job_export_into_s3_and_azure() {
    let Some(s3) = rf_testservers::s3() else {
        return;
    };
    let Some(azure) = rf_testservers::azure() else {
        return;
    };
    let sb = Sandbox::new();
    let local = sb.path().join("local");
    let done = run(sb.rf().args([
        "--json",
        "run",
        "--images",
        &path_arg(&samples()),
        "--workflow",
        "image-properties",
        "--out",
        &path_arg(&local),
    ]));
    let report = done.expect_code(0).json();
    let output_batch = report["outputBatch"].as_str().unwrap().to_owned();
    let job_id = report["jobId"].as_str().unwrap().to_owned();

    // rf batch export into S3, with the staging directory in the cache.
    let export = run(with_env(sb.rf(), &s3.env()).args([
        "batch",
        "export",
        &output_batch,
        "--out",
        &s3.url("exports/batch"),
    ]));
    export.expect_code(0);
    assert!(
        export.stdout.contains("s3://rf-test/exports/batch"),
        "{}",
        export.stdout
    );
    // The bucket holds what the local export of the same batch holds.
    let files = files_under(&local);
    for rel in &files {
        let key = format!("exports/batch/{}", rel.to_str().unwrap());
        assert_eq!(
            s3.get(&key).unwrap().1,
            std::fs::read(local.join(rel)).unwrap(),
            "{key}"
        );
    }

    // rf job export into Azure Blob, twice: the second sends nothing.
    let staging = sb.path().join("az-staging");
    let args = [
        "--json".to_owned(),
        "job".to_owned(),
        "export".to_owned(),
        job_id,
        "--out".to_owned(),
        azure.url("exports/job/"),
        "--staging-dir".to_owned(),
        path_arg(&staging),
    ];
    let first = run(with_env(sb.rf(), &azure.env()).args(&args));
    first.expect_code(0);
    let n = assert_bucket_mirrors(&staging, "exports/job/", |k| azure.get(k).unwrap());
    assert_eq!(n, files.len());
    let again = run(with_env(sb.rf(), &azure.env()).args(&args))
        .expect_code(0)
        .json();
    assert_eq!(again["outBucket"]["uploadedNow"], 0, "{again}");
    assert_eq!(again["outBucket"]["uploadedBefore"], n, "{again}");
}

/// `rf run` of the samples with `--out OUT --staging-dir STAGING`, the
/// store's variables `env` set.
fn run_samples_into(
    sb: &Sandbox,
    env: &[(&'static str, String)],
    out: &str,
    staging: &Path,
) -> crate::util::Done {
    run(with_env(sb.rf(), env).args([
        "run",
        "--images",
        &path_arg(&samples()),
        "--workflow",
        "image-properties",
        "--out",
        out,
        "--staging-dir",
        &path_arg(staging),
    ]))
}

#[test]
fn a_missing_bucket_is_told_before_anything_is_uploaded() {
    let Some(s3) = rf_testservers::s3() else {
        return;
    };
    let sb = Sandbox::new();
    let staging = sb.path().join("staging");
    let done = run_samples_into(&sb, &s3.env(), "s3://no-such-bucket/x/", &staging);
    done.expect_code(4);
    assert!(
        done.stderr
            .contains("bucket not found: s3://no-such-bucket/x/"),
        "{}",
        done.stderr
    );
    assert!(!staging.join(".rf-state/rf-run.json").exists());
}

#[test]
fn a_refused_key_exits_3_before_anything_is_uploaded() {
    let Some(azure) = rf_testservers::azure() else {
        return;
    };
    let wrong = rf_testservers::AzureServer::WRONG_KEY;
    let env = azure.env_with_key(wrong);
    let sb = Sandbox::new();
    let staging = sb.path().join("staging");
    let target = azure.url("refused/");
    let done = run_samples_into(&sb, &env, &target, &staging);
    done.expect_code(3);
    let line = done.error_line();
    assert!(line.contains("access denied"), "{line}");
    assert!(line.contains(&target), "{line}");
    assert!(!line.contains(wrong), "the key is never printed: {line}");
    assert!(!staging.join(".rf-state/rf-run.json").exists());
}
