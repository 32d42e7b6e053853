//! `rf run` against `rf emulator serve` in chaos mode (20% of requests
//! throttled, failed, dropped before the handler, answered and then cut, or
//! delayed; signed uploads and downloads included): the run completes with
//! the exact count and every result, says how many retries it took, creates
//! one job, and the emulator's stats show no duplicated item and no shard
//! sent again beyond those whose answer was lost. And `kill -9` at each
//! phase of `rf run` and in the middle of `rf batch export`: the re-run
//! completes, fetching only what is missing.

use std::path::Path;

use crate::emu::{assert_results_name, ingest_args, sample_names, samples, serve_args};
use crate::util::{Running, Sandbox, get_json, run, run_args};

const KEY: &str = "chaos-run-key";

/// Starts `rf emulator serve` with `extra` flags; returns it and its base URL.
pub(crate) fn serve(sb: &Sandbox, data: &Path, extra: &[&str]) -> (Running, String) {
    let mut server = Running::spawn(
        sb.rf()
            .arg("--json")
            .args(serve_args(&format!("{KEY}=chaos-ws"), data))
            .args(extra),
    );
    let line = server.wait_for_stdout("baseUrl");
    let start: serde_json::Value = serde_json::from_str(&line).unwrap();
    let base = start["baseUrl"].as_str().unwrap().to_owned();
    (server, base)
}

#[test]
fn run_under_twenty_percent_faults_loses_and_duplicates_nothing() {
    let sb = Sandbox::new();
    let (server, base) = serve(
        &sb,
        &sb.path().join("emulator-data"),
        &["--chaos-rate", "0.2", "--chaos-seed", "42"],
    );
    let names = sample_names();
    let n = names.len() as u64;
    let shards = n.div_ceil(2);
    for (i, json) in [(0, false), (1, true)] {
        let out = sb.path().join(format!("out-{i}"));
        let mut cmd = sb.rf();
        cmd.args(["--api-url", &base, "--api-key", KEY]);
        if json {
            cmd.arg("--json");
        }
        let done = run(cmd
            .args(run_args(&samples(), "image-properties", &out))
            .args(["--mode", "bulk", "--shard-size", "2"]));
        done.expect_code(0);
        assert_results_name(&out, &names);
        let batch = if json {
            let report = done.json();
            assert_eq!(report["expectedCount"], n, "{report}");
            assert_eq!(report["confirmedCount"], n, "{report}");
            let retries = report["retries"].as_u64().unwrap();
            assert!(retries > 0, "{report}");
            assert_eq!(
                retries,
                report["transportRetries"].as_u64().unwrap()
                    + report["uploadRetries"].as_u64().unwrap()
                    + report["downloadRetries"].as_u64().unwrap()
            );
            assert_eq!(report["failures"], serde_json::json!([]));
            report["batchId"].as_str().unwrap().to_owned()
        } else {
            let retries = done
                .stdout
                .lines()
                .find(|l| l.starts_with("retries"))
                .unwrap_or_else(|| panic!("no retries line:\n{}", done.stdout));
            let count: u64 = retries
                .split_whitespace()
                .nth(1)
                .and_then(|c| c.parse().ok())
                .unwrap_or_else(|| panic!("{retries}"));
            assert!(count > 0, "{retries}");
            let batch_line = done
                .stdout
                .lines()
                .find(|l| l.starts_with("batch"))
                .unwrap();
            assert!(batch_line.contains(&format!("({n} items")), "{batch_line}");
            batch_line.split_whitespace().nth(1).unwrap().to_owned()
        };
        let stats = get_json(&format!("{base}/_emulator/stats"));
        let content = &stats["workspaces"]["chaos-ws"]["batches"][&batch];
        assert_eq!(content["files"], n, "{stats}");
        assert_eq!(content["distinctNames"], n, "no duplicates: {stats}");
        assert_eq!(content["shards"], shards, "{stats}");
        let uploads = stats["shardUploadsByBatch"][&batch].as_u64().unwrap();
        let lost = stats["faults"]["drop-response"].as_u64().unwrap();
        assert!(
            (shards..=shards + lost).contains(&uploads),
            "{uploads} shard uploads for {shards} shards with {lost} lost answers: {stats}"
        );
        assert_eq!(stats["jobsCreated"], i + 1, "one job per run: {stats}");
    }
    let stats = get_json(&format!("{base}/_emulator/stats"));
    let faults = &stats["faults"];
    for kind in [
        "throttle",
        "error",
        "drop-request",
        "drop-response",
        "delay",
    ] {
        assert!(
            faults[kind].as_u64().unwrap() > 0,
            "no {kind} fault: {stats}"
        );
    }
    server.interrupt();
    server.finish().expect_code(0);
}

/// `kill -9` the CLI when `marker` shows on its stderr (`-vv` progress),
/// re-run the same command, and check the batch, the job and the results.
fn kill_at_and_rerun(marker: &str) {
    let sb = Sandbox::new();
    let (server, base) = serve(
        &sb,
        &sb.path().join("emulator-data"),
        &["--item-delay-ms", "150", "--index-delay-ms", "20"],
    );
    let names = sample_names();
    let n = names.len() as u64;
    let out = sb.path().join("out");
    let command = |sb: &Sandbox| {
        let mut cmd = sb.rf();
        cmd.args([
            "--api-url",
            &base,
            "--api-key",
            KEY,
            "-vv",
            "--concurrency",
            "2",
        ])
        .args(run_args(&samples(), "image-properties", &out))
        .args([
            "--mode",
            "bulk",
            "--shard-size",
            "2",
            "--batch-id",
            "killed",
        ]);
        cmd
    };
    let mut first = Running::spawn(&mut command(&sb));
    first.wait_for_stderr(marker);
    first.child.kill().unwrap(); // SIGKILL: no cleanup at all
    first.child.wait().unwrap();

    let done = run(command(&sb).arg("--json"));
    done.expect_code(0);
    let report = done.json();
    assert_eq!(report["confirmedCount"], n, "{report}");
    assert_eq!(report["resumed"], true, "{report}");
    assert_results_name(&out, &names);
    let stats = get_json(&format!("{base}/_emulator/stats"));
    let content = &stats["workspaces"]["chaos-ws"]["batches"]["killed"];
    assert_eq!(content["files"], n, "{stats}");
    assert_eq!(content["distinctNames"], n, "{stats}");
    let shards = n.div_ceil(2);
    let uploads = stats["shardUploadsByBatch"]["killed"].as_u64().unwrap();
    // At most the two shards in flight at the kill were sent again.
    assert!(
        (shards..=shards + 2).contains(&uploads),
        "{uploads}: {stats}"
    );
    assert_eq!(stats["jobsCreated"], 1, "{stats}");
    drop(server);
}

#[test]
fn kill_9_during_ingest_then_rerun_completes_exactly() {
    kill_at_and_rerun("uploading shard 1");
}

#[test]
fn kill_9_during_job_wait_then_rerun_follows_the_same_job() {
    kill_at_and_rerun("started job");
}

#[test]
fn kill_9_during_export_then_rerun_downloads_what_is_missing() {
    kill_at_and_rerun("downloading");
}

#[test]
fn batch_ingest_under_twenty_percent_faults_is_exact() {
    let sb = Sandbox::new();
    let (server, base) = serve(
        &sb,
        &sb.path().join("emulator-data"),
        &["--chaos-rate", "0.2", "--chaos-seed", "7"],
    );
    let n = sample_names().len() as u64;
    for (batch, mode) in [("chaos-bulk", "bulk"), ("chaos-single", "single")] {
        let done = run(sb
            .rf()
            .args(["--api-url", &base, "--api-key", KEY, "--json"])
            .args(ingest_args(&samples(), batch))
            .args(["--mode", mode, "--wait"]));
        done.expect_code(0);
        let stats = get_json(&format!("{base}/_emulator/stats"));
        let content = &stats["workspaces"]["chaos-ws"]["batches"][batch];
        assert_eq!(content["files"], n, "{batch}: {stats}");
        assert_eq!(content["distinctNames"], n, "{batch}: {stats}");
    }
    drop(server);
}

/// How the first `rf batch export` is stopped.
#[derive(Clone, Copy)]
enum Stop {
    /// SIGKILL: no cleanup at all.
    Kill,
    /// SIGINT (Ctrl-C): the downloads in flight finish, exit 130.
    CtrlC,
}

/// Stops `rf batch export --concurrency 1` (which runs on a single-threaded
/// runtime and writes small files where it receives them) when its third
/// download starts, re-runs it, and checks that the re-run fetched only what
/// was missing and left every image whole under its name.
fn stop_batch_export_and_rerun(stop: Stop) {
    let sb = Sandbox::new();
    // Half of the requests delayed by 50-500 ms: the export is slow enough
    // to be stopped in the middle.
    let (server, base) = serve(
        &sb,
        &sb.path().join("emulator-data"),
        &[
            "--chaos-rate",
            "0.5",
            "--chaos-seed",
            "11",
            "--chaos-kinds",
            "delay",
            "--index-delay-ms",
            "0",
        ],
    );
    let names = sample_names();
    let n = names.len() as u64;
    let rf = |sb: &Sandbox| {
        let mut cmd = sb.rf();
        cmd.args(["--api-url", &base, "--api-key", KEY]);
        cmd
    };
    run(rf(&sb)
        .args(ingest_args(&samples(), "exported"))
        .arg("--wait"))
    .expect_code(0);
    let out = sb.path().join("out");
    let export = [
        "batch",
        "export",
        "exported",
        "--out",
        out.to_str().unwrap(),
    ];
    let mut first = Running::spawn(rf(&sb).args(["-vv", "--concurrency", "1"]).args(export));
    // One download at a time: the third starts only once the first two are
    // on disk and recorded.
    for _ in 0..3 {
        first.wait_for_stderr("downloading ");
    }
    match stop {
        Stop::Kill => {
            first.child.kill().unwrap();
            first.child.wait().unwrap();
        }
        Stop::CtrlC => {
            first.interrupt();
            let stopped = first.finish();
            stopped.expect_code(130);
            assert!(
                stopped.error_line().contains("re-run the same command"),
                "{}",
                stopped.stderr
            );
        }
    }

    let done = run(rf(&sb).arg("--json").args(export));
    done.expect_code(0);
    let report = done.json();
    assert_eq!(report["files"], n, "{report}");
    let before = report["downloadedBefore"].as_u64().unwrap();
    let now = report["downloadedNow"].as_u64().unwrap();
    assert!(before >= 2, "the first two downloads were kept: {report}");
    assert_eq!(before + now, n, "nothing fetched twice: {report}");
    // Every image whole under its name (`park__park_000.png` is
    // `park/park_000.png`), and nothing else: no temporary left.
    let mut exported: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name != ".rf-state")
        .collect();
    exported.sort();
    assert_eq!(exported.len(), names.len(), "{exported:?}");
    for name in &exported {
        let source = samples().join(name.replace("__", "/"));
        assert_eq!(
            std::fs::read(out.join(name)).unwrap(),
            std::fs::read(&source).unwrap(),
            "{name}"
        );
    }
    drop(server);
}

#[test]
fn kill_9_during_batch_export_then_rerun_fetches_only_what_is_missing() {
    stop_batch_export_and_rerun(Stop::Kill);
}

#[test]
fn ctrl_c_during_batch_export_then_rerun_fetches_only_what_is_missing() {
    stop_batch_export_and_rerun(Stop::CtrlC);
}
