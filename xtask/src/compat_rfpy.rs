//! The `roboflow` package's CLI (roboflow 1.7.3, `roboflow batch ...` and
//! `roboflow asynctasks ...`) against `rf emulator serve --library`, as the
//! second half of `cargo xtask compat`.
//!
//! Installs `roboflow` into its own virtualenv under
//! `target/compat/venv-roboflow` (or `RF_COMPAT_ROBOFLOW_VENV`), points it at
//! the emulator with its own variable (`API_URL`; the workspace is looked
//! up by `POST /`, as the client does) and drives every batch command it
//! has: create (by query, by IDs, the same request again), async task get
//! and wait, list (with search), status, abort and restart. Every step must
//! exit 0 and print no Python traceback.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{project_root, run};

const ROBOFLOW: &str = "roboflow==1.7.3";

fn venv_dir() -> PathBuf {
    std::env::var_os("RF_COMPAT_ROBOFLOW_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| project_root().join("target/compat/venv-roboflow"))
}

/// The `roboflow` executable, installed when missing.
pub(crate) fn ensure_roboflow() -> Result<PathBuf, String> {
    let venv = venv_dir();
    let roboflow = venv.join("bin/roboflow");
    if roboflow.exists() {
        return Ok(roboflow);
    }
    run("python3", &["-m", "venv", &venv.to_string_lossy()])?;
    run(
        &venv.join("bin/pip").to_string_lossy(),
        &["install", "-q", ROBOFLOW],
    )?;
    Ok(roboflow)
}

/// How to reach the emulator.
pub(crate) struct Rfpy<'a> {
    pub(crate) roboflow: &'a Path,
    pub(crate) base_url: &'a str,
    pub(crate) key: &'a str,
    /// An empty home: no `roboflow login` config is read.
    pub(crate) home: &'a Path,
}

impl Rfpy<'_> {
    /// Runs `roboflow <args>`; fails on a non-zero exit or a traceback.
    fn run(&self, args: &[&str]) -> Result<String, String> {
        eprintln!("compat: roboflow {}", args.join(" "));
        let out = Command::new(self.roboflow)
            .args(args)
            .env("API_URL", self.base_url)
            .env("ROBOFLOW_API_KEY", self.key)
            .env("HOME", self.home)
            .env_remove("RF_WORKSPACE")
            .env("COLUMNS", "200")
            .output()
            .map_err(|e| format!("cannot start roboflow: {e}"))?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if !out.status.success() || text.contains("Traceback") {
            return Err(format!(
                "roboflow {} failed ({}):\n{text}",
                args.join(" "),
                out.status
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `roboflow --json <args>`, parsed.
    fn json(&self, args: &[&str]) -> Result<serde_json::Value, String> {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let text = self.run(&all)?;
        serde_json::from_str(&text)
            .map_err(|e| format!("roboflow {} printed no JSON ({e}): {text}", args.join(" ")))
    }
}

/// Every `roboflow batch` and `asynctasks` command against the emulator;
/// `job_failed` waits (with rf) until a job ends and says whether it failed
/// or was aborted.
pub(crate) fn steps(
    r: &Rfpy<'_>,
    job_failed: &dyn Fn(&str) -> Result<bool, String>,
) -> Result<(), String> {
    let create = [
        "batch",
        "create",
        "--workflow",
        "image-properties",
        "--query",
        "tag:park",
        "--request-id",
        "compat-request-1",
    ];
    let created = r.json(&create)?;
    let job = field(&created, "jobId")?;
    let task = field(&created, "taskId")?;
    // The same launch again: the same job (the idempotency key).
    let again = r.json(&create)?;
    if field(&again, "jobId")? != job {
        return Err(format!("a repeated create started another job: {again}"));
    }
    r.run(&["asynctasks", "get", &task])?;
    r.run(&["asynctasks", "wait", &task])?;
    if job_failed(&job)? {
        return Err(format!("library job {job} failed"));
    }
    r.run(&["batch", "list"])?;
    let found = r.run(&["batch", "list", "--search", "image-properties"])?;
    if !found.contains(&job) {
        return Err(format!("batch list --search did not find {job}:\n{found}"));
    }
    r.run(&["batch", "status", &job])?;
    r.json(&["batch", "status", &job])?;
    abort_and_restart(r, job_failed)
}

/// A job by image IDs, aborted and, when the abort landed, restarted.
fn abort_and_restart(
    r: &Rfpy<'_>,
    job_failed: &dyn Fn(&str) -> Result<bool, String>,
) -> Result<(), String> {
    let by_ids = [
        "batch",
        "create",
        "--workflow",
        "mock-detector",
        "--image-ids",
        "park/park_000.png,street/street_001.jpg",
        "--machine",
        "gpu",
        "--name",
        "compat ids",
    ];
    let job = field(&r.json(&by_ids)?, "jobId")?;
    r.run(&["batch", "abort", &job, "--yes"])?;
    if job_failed(&job)? {
        r.run(&["batch", "restart", &job, "--yes"])?;
        if job_failed(&job)? {
            return Err(format!("restarted job {job} failed"));
        }
    } else {
        eprintln!("compat: {job} finished before the abort; restart skipped");
    }
    Ok(())
}

fn field(v: &serde_json::Value, key: &str) -> Result<String, String> {
    v.get(key)
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| format!("no {key} in {v}"))
}
