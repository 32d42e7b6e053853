//! `cargo xtask compat`: the official Python clients (inference-cli 1.8.3,
//! then roboflow 1.7.3 in `compat_rfpy`) against our emulator, unchanged.
//!
//! Installs `inference-cli` into a virtualenv under `target/compat/venv`
//! (or uses `RF_COMPAT_VENV`), builds `rf`, starts `rf emulator serve` on a
//! free loopback port and drives every `inference rf-cloud` command that
//! does not need the public internet: single and bulk image ingest, batch
//! details and listings, a workflow job through its processing and export
//! stages, job details, logs, abort and restart, and the export of the
//! output batch. Every step must exit 0 and print no Python traceback.
//!
//! Kept out of `cargo test`: the install takes minutes and ~800 MB.

pub(crate) mod cloud;
mod parity;

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{ServerGuard, http_get, project_root, run, target_dir};

/// With its `cloud-storage` extra (s3fs, gcsfs, adlfs), for
/// `--data-source cloud-storage` (the `compat::cloud` step, `bench-cloud --peer`).
const INFERENCE_CLI: &str = "inference-cli[cloud-storage]==1.8.3";
const KEY: &str = "compat-key";
const WORKSPACE: &str = "compat-ws";

pub(crate) fn venv_dir() -> PathBuf {
    std::env::var_os("RF_COMPAT_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| project_root().join("target/compat/venv"))
}

pub(crate) fn ensure_inference_cli() -> Result<PathBuf, String> {
    let venv = venv_dir();
    let inference = venv.join("bin/inference");
    if inference.exists() {
        return Ok(inference);
    }
    let venv_s = venv.to_string_lossy().into_owned();
    run("python3", &["-m", "venv", &venv_s])?;
    let pip = venv.join("bin/pip");
    run(&pip.to_string_lossy(), &["install", "-q", INFERENCE_CLI])?;
    Ok(inference)
}

fn free_port() -> Result<u16, String> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|e| format!("cannot bind a port: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("cannot read the bound port: {e}"))
}

fn wait_ready(port: u16) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let host = format!("127.0.0.1:{port}");
        let answer = http_get(&host, &format!("/?api_key={KEY}"), Duration::from_secs(2));
        if answer.is_ok_and(|(status, _)| status == 200) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err("the emulator did not answer on its port within 30 s".into())
}

pub(crate) struct Ctx {
    inference: PathBuf,
    rf: PathBuf,
    base_url: String,
    work: PathBuf,
}

impl Ctx {
    /// Runs `inference rf-cloud <args>`; fails on a non-zero exit or a traceback.
    pub(crate) fn inference(&self, args: &[&str]) -> Result<String, String> {
        self.inference_with(args, &[])
    }

    /// [`Ctx::inference`] with more environment variables.
    pub(crate) fn inference_with(
        &self,
        args: &[&str],
        env: &[(&str, String)],
    ) -> Result<String, String> {
        eprintln!("compat: inference rf-cloud {}", args.join(" "));
        let out = Command::new(&self.inference)
            .arg("rf-cloud")
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env("API_BASE_URL", &self.base_url)
            .env("ROBOFLOW_API_KEY", KEY)
            .env("COLUMNS", "200")
            .current_dir(&self.work)
            .output()
            .map_err(|e| format!("cannot start inference: {e}"))?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if !out.status.success() || text.contains("Traceback") || text.contains("Error:") {
            return Err(format!(
                "inference rf-cloud {} failed ({}):\n{text}",
                args.join(" "),
                out.status
            ));
        }
        Ok(text)
    }

    /// Runs `rf --json <args>` against the same emulator and returns stdout.
    pub(crate) fn rf(&self, args: &[&str]) -> Result<String, String> {
        self.rf_with(args, &[])
    }

    /// [`Ctx::rf`] with more environment variables.
    pub(crate) fn rf_with(&self, args: &[&str], env: &[(&str, String)]) -> Result<String, String> {
        let out = Command::new(&self.rf)
            .arg("--json")
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env("API_BASE_URL", &self.base_url)
            .env("ROBOFLOW_API_KEY", KEY)
            .output()
            .map_err(|e| format!("cannot start rf: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "rf {} failed ({}): {}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Waits until job `job` ends (deadline 120 s): whether it failed or
    /// was aborted.
    pub(crate) fn job_failed(&self, job: &str) -> Result<bool, String> {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let shown: serde_json::Value = serde_json::from_str(&self.rf(&["job", "show", job])?)
                .map_err(|e| format!("rf job show {job}: {e}"))?;
            let j = shown.get("job").unwrap_or(&shown);
            if j.get("isTerminal").and_then(serde_json::Value::as_bool) == Some(true) {
                return Ok(j.get("error").and_then(serde_json::Value::as_bool) == Some(true));
            }
            if Instant::now() > deadline {
                return Err(format!("job {job} did not end within 120 s"));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Polls `rf batch count` until it reaches `expected` (deadline 60 s).
    pub(crate) fn wait_count(&self, batch: &str, expected: u64) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let out = self.rf(&["batch", "count", batch])?;
            let count = json_u64(&out, "count");
            if count == Some(expected) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "batch {batch} holds {count:?} items, expected {expected}"
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Reads `"key": <number>` at the top level of a JSON document.
pub(crate) fn json_u64(doc: &str, key: &str) -> Option<u64> {
    let value: serde_json::Value = serde_json::from_str(doc).ok()?;
    value.get(key)?.as_u64()
}

fn make_bulk_dataset(dir: &Path, n: usize) -> Result<(), String> {
    let samples = project_root().join("samples/images");
    let mut sources = Vec::new();
    for entry in fs::read_dir(samples.join("street")).map_err(|e| e.to_string())? {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.extension().is_some_and(|e| e == "jpg") {
            sources.push(path);
        }
    }
    sources.sort();
    if sources.is_empty() {
        return Err("samples/images/street holds no jpg".into());
    }
    fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    for i in 0..n {
        let src = &sources[i % sources.len()];
        fs::copy(src, dir.join(format!("img_{i:05}.jpg"))).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// `cargo xtask compat`: every step of the official client against the
/// emulator.
/// `--only inference` or `--only roboflow` runs one client's half.
pub(crate) fn compat(args: &[String]) -> Result<(), String> {
    let only = match args {
        [] => None,
        [flag, which] if flag == "--only" && (which == "inference" || which == "roboflow") => {
            Some(which.as_str())
        }
        _ => return Err("usage: cargo xtask compat [--only inference|roboflow]".into()),
    };
    run("cargo", &["build", "-p", "rf-cli"])?;
    let rf = target_dir().join("debug/rf");
    let work = project_root().join("target/compat/work");
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work).map_err(|e| e.to_string())?;
    if only != Some("roboflow") {
        inference_half(rf.clone(), &work)?;
    }
    if only != Some("inference") {
        roboflow_half(&rf, &work)?;
        eprintln!("compat: roboflow 1.7.3 passed every step");
    }
    Ok(())
}

/// inference-cli's every step against a fresh emulator.
fn inference_half(rf: PathBuf, work: &Path) -> Result<(), String> {
    let inference = ensure_inference_cli()?;
    let library = parity::make_library(work)?;
    let (_guard, ctx) = start(inference, rf, work, &library)?;
    let samples = copy_samples(work)?;
    staging_steps(&ctx, &samples, work)?;
    let exported = job_and_export(&ctx, work)?;
    abort_and_restart(&ctx)?;
    parity::steps(&ctx, work, 6)?;
    cloud::steps(&ctx)?;
    eprintln!("compat: inference-cli 1.8.3 passed every step ({exported} files exported)");
    Ok(())
}

/// The `roboflow` CLI against an emulator with the sample images as its
/// asset library (see `compat_rfpy`).
fn roboflow_half(rf: &Path, work: &Path) -> Result<(), String> {
    let roboflow = crate::compat_rfpy::ensure_roboflow()?;
    let library = project_root().join("samples/images");
    // Slow enough that the abort lands before the job ends.
    let library = library.to_string_lossy();
    let flags = ["--library", &library, "--item-delay-ms", "400"];
    let (_guard, base_url) = serve(rf, &work.join("emulator-rfpy"), &flags)?;
    let home = work.join("rfpy-home");
    fs::create_dir_all(&home).map_err(|e| e.to_string())?;
    let ctx = Ctx {
        inference: PathBuf::new(),
        rf: rf.to_path_buf(),
        base_url: base_url.clone(),
        work: work.to_path_buf(),
    };
    let r = crate::compat_rfpy::Rfpy {
        roboflow: &roboflow,
        base_url: &base_url,
        key: KEY,
        home: &home,
    };
    crate::compat_rfpy::steps(&r, &|job| ctx.job_failed(job))
}

/// Starts `rf emulator serve` on a free port, with `library` as its asset
/// library: the guard that stops it and the context the steps use.
fn start(
    inference: PathBuf,
    rf: PathBuf,
    work: &Path,
    library: &Path,
) -> Result<(ServerGuard, Ctx), String> {
    let library = library.to_string_lossy();
    let flags = ["--library", library.as_ref()];
    let (guard, base_url) = serve(&rf, &work.join("emulator-data"), &flags)?;
    let ctx = Ctx {
        inference,
        rf,
        base_url,
        work: work.to_path_buf(),
    };
    Ok((guard, ctx))
}

/// `rf emulator serve` on a free port with `data_dir` and `extra` flags:
/// the guard that stops it and its base URL.
fn serve(rf: &Path, data_dir: &Path, extra: &[&str]) -> Result<(ServerGuard, String), String> {
    let port = free_port()?;
    let server = Command::new(rf)
        .args(["emulator", "serve", "--addr", &format!("127.0.0.1:{port}")])
        .args(["--key", &format!("{KEY}={WORKSPACE}")])
        .arg("--data-dir")
        .arg(data_dir)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start rf emulator serve: {e}"))?;
    let guard = ServerGuard(server);
    wait_ready(port)?;
    Ok((guard, format!("http://127.0.0.1:{port}")))
}

/// A copy of the street samples (the official client writes
/// `.import_log-<batch>` into the directory it uploads).
fn copy_samples(work: &Path) -> Result<String, String> {
    let samples = work.join("street");
    fs::create_dir_all(&samples).map_err(|e| e.to_string())?;
    for entry in
        fs::read_dir(project_root().join("samples/images/street")).map_err(|e| e.to_string())?
    {
        let path = entry.map_err(|e| e.to_string())?.path();
        if let Some(name) = path.file_name() {
            fs::copy(&path, samples.join(name)).map_err(|e| e.to_string())?;
        }
    }
    Ok(samples.to_string_lossy().into_owned())
}

/// A simple and a sharded batch, then the staging read commands.
fn staging_steps(ctx: &Ctx, samples_s: &str, work: &Path) -> Result<(), String> {
    // Simple batch: one multipart POST per image. The official client does
    // not recurse into subdirectories, so point it at one: 6 images.
    ctx.inference(&[
        "data-staging",
        "create-batch-of-images",
        "--images-dir",
        samples_s,
        "--batch-id",
        "compat-simple",
    ])?;
    ctx.wait_count("compat-simple", 6)?;

    // Sharded batch: > 32 images, tar shards through signed URLs.
    let bulk = work.join("bulk");
    make_bulk_dataset(&bulk, 300)?;
    ctx.inference(&[
        "data-staging",
        "create-batch-of-images",
        "--images-dir",
        &bulk.to_string_lossy(),
        "--batch-id",
        "compat-bulk",
    ])?;
    ctx.wait_count("compat-bulk", 300)?;

    ctx.inference(&[
        "data-staging",
        "show-batch-details",
        "--batch-id",
        "compat-bulk",
    ])?;
    ctx.inference(&["data-staging", "list-batches"])?;
    ctx.inference(&[
        "data-staging",
        "list-batch-content",
        "--batch-id",
        "compat-simple",
    ])?;
    ctx.inference(&[
        "data-staging",
        "list-ingest-details",
        "--batch-id",
        "compat-bulk",
    ])?;

    Ok(())
}

/// A job through processing and export, its output exported with the
/// official client: the number of files it wrote.
fn job_and_export(ctx: &Ctx, work: &Path) -> Result<usize, String> {
    // A job through processing and export.
    ctx.inference(&[
        "batch-processing",
        "process-images-with-workflow",
        "--batch-id",
        "compat-bulk",
        "--workflow-id",
        "image-properties",
        "--job-id",
        "compat-job",
        "--aggregation-format",
        "jsonl",
    ])?;
    ctx.rf(&["job", "wait", "compat-job"])?;
    ctx.inference(&[
        "batch-processing",
        "show-job-details",
        "--job-id",
        "compat-job",
    ])?;
    ctx.inference(&["batch-processing", "list-jobs"])?;
    ctx.inference(&["batch-processing", "fetch-logs", "--job-id", "compat-job"])?;

    // Export the export stage's output batch with the official client.
    let stages = ctx.rf(&["job", "stages", "compat-job"])?;
    let output =
        export_batch_of(&stages).ok_or_else(|| format!("no export output batch in: {stages}"))?;
    let target = work.join("export");
    ctx.inference(&[
        "data-staging",
        "export-batch",
        "--batch-id",
        &output,
        "--target-dir",
        &target.to_string_lossy(),
    ])?;
    let exported = count_files(&target);
    if exported == 0 {
        return Err(format!(
            "export-batch wrote no file into {}",
            target.display()
        ));
    }

    Ok(exported)
}

/// A job aborted and, when the abort landed, restarted.
fn abort_and_restart(ctx: &Ctx) -> Result<(), String> {
    // Abort and restart.
    ctx.inference(&[
        "batch-processing",
        "process-images-with-workflow",
        "--batch-id",
        "compat-simple",
        "--workflow-id",
        "mock-detector",
        "--job-id",
        "compat-abort",
    ])?;
    ctx.inference(&["batch-processing", "abort-job", "--job-id", "compat-abort"])?;
    // The emulator runs small jobs fast: the abort may land after the job
    // succeeded (then it is a no-op and there is nothing to restart).
    let shown = ctx.rf(&["job", "show", "compat-abort"])?;
    let aborted = serde_json::from_str::<serde_json::Value>(&shown)
        .ok()
        .and_then(|v| {
            let job = v.get("job").unwrap_or(&v);
            job.get("error").and_then(serde_json::Value::as_bool)
        })
        .unwrap_or(false);
    if aborted {
        ctx.inference(&[
            "batch-processing",
            "restart-job",
            "--job-id",
            "compat-abort",
            "--max-parallel-tasks",
            "2",
        ])?;
        ctx.rf(&["job", "wait", "compat-abort"])?;
    } else {
        eprintln!("compat: compat-abort finished before the abort; restart skipped");
    }

    Ok(())
}

/// The last `outputBatches` entry of the stage named `export`, from
/// `rf --json job stages` (either `{"stages": [...]}` or a bare array).
pub(crate) fn export_batch_of(stages_json: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(stages_json).ok()?;
    let stages = value.get("stages").unwrap_or(&value).as_array()?;
    stages
        .iter()
        .find(|s| s.get("processingStageName").and_then(|n| n.as_str()) == Some("export"))?
        .get("outputBatches")?
        .as_array()?
        .iter()
        .rev()
        .find_map(|b| b.as_str().map(str::to_string))
}

fn count_files(dir: &Path) -> usize {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| {
            let p = e.path();
            if p.is_dir() { count_files(&p) } else { 1 }
        })
        .sum()
}
