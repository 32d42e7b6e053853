//! `cargo xtask soak`: crash the `rf` CLI with `kill -9` at random points of
//! ingest, job wait and export (one seed per run), re-run the same command,
//! and check that it finishes with the exact count and every result, sending
//! again at most the shards that were in flight when it died.
//!
//! One `rf emulator serve` (slowed with `--item-delay-ms` so the job-wait
//! phase is long enough to hit, and optionally in chaos mode) serves every
//! seed. For seed `s`: phase `s % 3` is targeted (0 ingest, 1 job wait,
//! 2 export); `rf -vv --json run ... --batch-id soak-<s> --job-id soak-<s>`
//! is started, the task waits for the phase's first progress line, then for a
//! delay drawn from a generator seeded with `s`, and kills the process (with
//! `--kills K`, K times, each aimed at the same or a later phase). The same
//! command then runs to completion. Checked per seed, from the run
//! report, the files on disk and `GET /_emulator/stats`:
//!
//! * exit 0, `confirmed_count` = `expected_count` = the number of inputs;
//! * every input's name appears in the results under `--out`;
//! * the batch holds exactly the inputs: `files` = `distinctNames` = N;
//! * shard `PUT`s accepted for the batch ≤ shards + `--concurrency` (the
//!   most that can be in flight at the kill) + answers the chaos mode cut;
//! * exactly one job was created for the seed.
//!
//! Options: `--seeds N` (default 12), `--first-seed S` (1), `--files N` (120),
//! `--shard-size N` (10), `--concurrency N` (4), `--chaos-rate R` (0.05),
//! `--item-delay-ms MS` (50), `--kills K` (1: kills per seed, each aimed at
//! the same or a later phase; the shard bound grows by `--concurrency` per
//! kill). A failing seed is named with the command that replays it.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::bench_data::Rng;
use crate::{ServerGuard, http_get, project_root, run, target_dir};

const KEY: &str = "soak-key";
const WORKSPACE: &str = "soak-ws";
/// Longest a single `rf run` may take before the soak calls it hung.
const RUN_DEADLINE: Duration = Duration::from_secs(300);

/// Settings of one soak.
#[derive(Debug, Clone)]
struct Options {
    seeds: u64,
    first_seed: u64,
    files: usize,
    shard_size: usize,
    concurrency: usize,
    chaos_rate: f64,
    item_delay_ms: u64,
    kills: u64,
    /// Kills of `rf emulator serve` during uploads ([`crate::soak_emulator`]).
    emulator_kills: u64,
}

impl Options {
    fn parse(args: &[String]) -> Result<Options, String> {
        let mut o = Options {
            seeds: 12,
            first_seed: 1,
            files: 120,
            shard_size: 10,
            concurrency: 4,
            chaos_rate: 0.05,
            item_delay_ms: 50,
            kills: 1,
            emulator_kills: 20,
        };
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
            let num = |what: &str| {
                value
                    .parse::<u64>()
                    .map_err(|e| format!("{what} {value:?}: {e}"))
            };
            match flag.as_str() {
                "--seeds" => o.seeds = num("--seeds")?,
                "--first-seed" => o.first_seed = num("--first-seed")?,
                "--files" => o.files = num("--files")? as usize,
                "--shard-size" => o.shard_size = num("--shard-size")?.clamp(1, 500) as usize,
                "--concurrency" => o.concurrency = num("--concurrency")?.clamp(1, 256) as usize,
                "--item-delay-ms" => o.item_delay_ms = num("--item-delay-ms")?,
                "--kills" => o.kills = num("--kills")?.clamp(1, 10),
                "--emulator-kills" => o.emulator_kills = num("--emulator-kills")?,
                "--chaos-rate" => {
                    o.chaos_rate = value
                        .parse::<f64>()
                        .map_err(|e| format!("--chaos-rate {value:?}: {e}"))?
                }
                other => return Err(format!("unknown soak option {other}")),
            }
        }
        if o.files == 0 {
            return Err("--files must be at least 1".into());
        }
        Ok(o)
    }

    fn shards(&self) -> u64 {
        self.files.div_ceil(self.shard_size) as u64
    }
}

/// The JSON body of a `200` to a GET on the emulator at `base`.
fn get_json(base: &str, path: &str) -> Result<serde_json::Value, String> {
    let host = base.trim_start_matches("http://").trim_end_matches('/');
    let (status, body) = http_get(host, path, Duration::from_secs(10))?;
    if status != 200 {
        return Err(format!("GET {path}: status {status}: {body}"));
    }
    serde_json::from_str(&body).map_err(|e| format!("GET {path}: not json ({e})"))
}

/// `n` images (the sample images, cycled) named `img_00000.<ext>`.
fn make_inputs(dir: &Path, n: usize) -> Result<Vec<String>, String> {
    let mut samples = Vec::new();
    let mut stack = vec![project_root().join("samples/images")];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).map_err(|e| format!("{}: {e}", d.display()))? {
            let path = entry.map_err(|e| e.to_string())?.path();
            if path.is_dir() {
                stack.push(path);
            } else if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("jpg" | "png")
            ) {
                samples.push(path);
            }
        }
    }
    samples.sort();
    if samples.is_empty() {
        return Err("no sample images under samples/images".into());
    }
    fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let mut names = Vec::new();
    for i in 0..n {
        let src = &samples[i % samples.len()];
        let ext = src.extension().and_then(|e| e.to_str()).unwrap_or("jpg");
        let name = format!("img_{i:05}.{ext}");
        fs::copy(src, dir.join(&name)).map_err(|e| e.to_string())?;
        names.push(name);
    }
    Ok(names)
}

/// Every regular file under `dir` (skipping rf's state), read into one text.
fn results_text(dir: &Path) -> String {
    let mut all = String::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.file_name().is_some_and(|n| n == ".rf-state") {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else {
                all.push_str(&path.to_string_lossy());
                all.push('\n');
                all.push_str(&String::from_utf8_lossy(
                    &fs::read(&path).unwrap_or_default(),
                ));
                all.push('\n');
            }
        }
    }
    all
}

/// Lines of a child's stderr, read in a thread.
fn stderr_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    if let Some(pipe) = child.stderr.take() {
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
    }
    rx
}

/// Waits for `child` up to the deadline; kills it past the deadline.
fn wait_with_deadline(child: &mut Child) -> Result<std::process::ExitStatus, String> {
    let deadline = Instant::now() + RUN_DEADLINE;
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            return Ok(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("rf run did not finish within {RUN_DEADLINE:?}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

struct Soak {
    rf: PathBuf,
    base: String,
    input: PathBuf,
    names: Vec<String>,
    work: PathBuf,
    options: Options,
}

/// What one seed did.
struct SeedOutcome {
    /// The phase the kill aimed at.
    targeted: &'static str,
    /// Where each kill landed ("ingest", "job", "export", or "none" when the
    /// run finished first).
    killed_in: Vec<&'static str>,
    /// Shard uploads beyond the number of shards.
    extra_uploads: u64,
    /// Retries the completing run reported.
    retries: u64,
    seconds: f64,
}

impl Soak {
    fn command(&self, seed: u64, out: &Path) -> Command {
        let mut cmd = Command::new(&self.rf);
        cmd.env("ROBOFLOW_API_KEY", KEY)
            .env("API_BASE_URL", &self.base)
            .env_remove("RF_LOG")
            .env("NO_COLOR", "1")
            .args(["-vv", "--json", "--concurrency"])
            .arg(self.options.concurrency.to_string())
            .args(["run", "--workflow", "image-properties", "--mode", "bulk"])
            .arg("--shard-size")
            .arg(self.options.shard_size.to_string())
            .arg("--images")
            .arg(&self.input)
            .arg("--out")
            .arg(out)
            .args(["--batch-id", &format!("soak-{seed}")])
            .args(["--job-id", &format!("soak-{seed}")])
            .stdin(Stdio::null());
        cmd
    }

    /// Starts the run, waits for the first progress line of `phase` (0
    /// ingest, 1 job wait, 2 export), then a seeded delay, and kills it with
    /// SIGKILL. Returns where the kill landed, or "none" when the run ended
    /// first.
    fn kill_once(
        &self,
        seed: u64,
        out: &Path,
        phase: u64,
        rng: &mut Rng,
    ) -> Result<&'static str, String> {
        let (marker, max_delay_ms) = match phase {
            0 => ("uploading shard", 400),
            1 => ("job soak-", 2000),
            _ => ("downloading", 8),
        };
        let delay = Duration::from_millis(rng.below(max_delay_ms));
        let mut child = self
            .command(seed, out)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start rf: {e}"))?;
        let lines = stderr_lines(&mut child);
        let deadline = Instant::now() + RUN_DEADLINE;
        let mut seen = Vec::new();
        let mut reached = false;
        while Instant::now() < deadline {
            match lines.recv_timeout(Duration::from_millis(200)) {
                Ok(line) => {
                    let hit = line.contains(marker);
                    seen.push(line);
                    if hit {
                        reached = true;
                        break;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if child.try_wait().map_err(|e| e.to_string())?.is_some() {
                        break;
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        let mut killed_in = "none";
        if reached {
            std::thread::sleep(delay);
            if child.try_wait().map_err(|e| e.to_string())?.is_none() {
                child.kill().map_err(|e| format!("kill -9 failed: {e}"))?;
                killed_in = phase_of(&seen, &lines);
            }
        } else {
            // The phase never began (the run ended, or did not get there).
            let _ = child.kill();
        }
        let _ = child.wait();
        Ok(killed_in)
    }

    /// Runs the seed's command to completion: its report, or an error with
    /// its stderr when it fails (`delay` says what killed it before).
    fn rerun(&self, seed: u64, out: &Path, delay: &str) -> Result<serde_json::Value, String> {
        let mut child = self
            .command(seed, out)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start rf: {e}"))?;
        let mut stdout = child.stdout.take();
        let reader = std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(pipe) = stdout.as_mut() {
                let _ = pipe.read_to_string(&mut text);
            }
            text
        });
        let err_lines = stderr_lines(&mut child);
        let status = wait_with_deadline(&mut child)?;
        let report_text = reader.join().unwrap_or_default();
        if !status.success() {
            let stderr: Vec<String> = err_lines.try_iter().collect();
            return Err(format!(
                "the re-run exited with {status} ({delay}); stderr:\n{}",
                stderr.join("\n")
            ));
        }
        serde_json::from_str(&report_text)
            .map_err(|e| format!("the run report is not json ({e}): {report_text}"))
    }

    fn seed(&self, seed: u64) -> Result<SeedOutcome, String> {
        let started = Instant::now();
        let out = self.work.join(format!("out-{seed}"));
        let _ = fs::remove_dir_all(&out);
        let before = get_json(&self.base, "/_emulator/stats")?;
        let mut rng = Rng::new(seed);
        let first = seed % 3;
        let target = ["ingest", "job", "export"][first as usize];
        // Killed attempts, each aimed at the same or a later phase.
        let mut killed_in = Vec::new();
        for k in 0..self.options.kills {
            let landed = self.kill_once(seed, &out, (first + k).min(2), &mut rng)?;
            killed_in.push(landed);
            if landed == "none" {
                break;
            }
        }
        let kills = killed_in.iter().filter(|k| **k != "none").count() as u64;
        let delay = format!("kills {killed_in:?}");

        // Second attempt: the same command, to completion.
        let report = self.rerun(seed, &out, &delay)?;
        let n = self.names.len() as u64;
        let check = |ok: bool, what: String| if ok { Ok(()) } else { Err(what) };
        check(
            report["confirmedCount"] == n && report["expectedCount"] == n,
            format!("counts in the report: {report}"),
        )?;
        let results = results_text(&out);
        if let Some(missing) = self
            .names
            .iter()
            .find(|name| !results.contains(name.as_str()))
        {
            return Err(format!("no result for {missing} under {}", out.display()));
        }
        let after = get_json(&self.base, "/_emulator/stats")?;
        let batch = format!("soak-{seed}");
        let content = &after["workspaces"][WORKSPACE]["batches"][&batch];
        check(
            content["files"] == n && content["distinctNames"] == n,
            format!("batch {batch} holds {content} (expected {n} distinct files)"),
        )?;
        let uploads = after["shardUploadsByBatch"][&batch].as_u64().unwrap_or(0);
        let lost = after["faults"]["drop-response"].as_u64().unwrap_or(0)
            - before["faults"]["drop-response"].as_u64().unwrap_or(0);
        let shards = self.options.shards();
        let bound = shards + kills * self.options.concurrency as u64 + lost;
        check(
            uploads >= shards && uploads <= bound,
            format!(
                "{uploads} shard uploads for {shards} shards (bound {bound}: {kills} kills x {} in flight + {lost} lost answers)",
                self.options.concurrency
            ),
        )?;
        let jobs = after["jobsCreated"].as_u64().unwrap_or(0)
            - before["jobsCreated"].as_u64().unwrap_or(0);
        check(jobs == 1, format!("{jobs} jobs created for seed {seed}"))?;
        Ok(SeedOutcome {
            targeted: target,
            killed_in,
            extra_uploads: uploads - shards,
            retries: report["retries"].as_u64().unwrap_or(0),
            seconds: started.elapsed().as_secs_f64(),
        })
    }
}

/// The phase the CLI was in when it died, from its last progress lines.
fn phase_of(seen: &[String], rest: &mpsc::Receiver<String>) -> &'static str {
    let mut all: Vec<String> = seen.to_vec();
    all.extend(rest.try_iter());
    for line in all.iter().rev() {
        if line.contains("downloading") {
            return "export";
        }
        if line.contains("job soak-") {
            return "job";
        }
        if line.contains("uploading") {
            return "ingest";
        }
    }
    "ingest"
}

/// Starts `rf emulator serve` for the soak: the guard that stops it, and its
/// base URL (read from its first stdout line).
fn start_emulator(
    rf: &Path,
    work: &Path,
    options: &Options,
) -> Result<(ServerGuard, String), String> {
    let mut command = Command::new(rf);
    command
        .args(["--json", "emulator", "serve", "--addr", "127.0.0.1:0"])
        .args(["--key", &format!("{KEY}={WORKSPACE}")])
        .arg("--data-dir")
        .arg(work.join("emulator-data"))
        .args(["--item-delay-ms", &options.item_delay_ms.to_string()])
        .args(["--index-delay-ms", "20"])
        .args(["--chaos-rate", &options.chaos_rate.to_string()])
        .args(["--chaos-seed", &options.first_seed.to_string()]);
    crate::serve_json(command)
}

/// The emulator half ([`crate::soak_emulator`]), with the first input
/// images as upload content.
fn emulator_soak(soak: &Soak) -> Result<String, String> {
    if soak.options.emulator_kills == 0 {
        return Ok("soak: emulator: skipped (--emulator-kills 0)".into());
    }
    let samples = soak
        .names
        .iter()
        .take(8)
        .map(|n| fs::read(soak.input.join(n)).map_err(|e| format!("{n}: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    crate::soak_emulator::emulator_kills(
        &soak.rf,
        &soak.work,
        samples,
        soak.options.emulator_kills,
        soak.options.first_seed,
    )
}

/// The soak; see the module docs.
pub(crate) fn soak(args: &[String]) -> Result<(), String> {
    let options = Options::parse(args)?;
    run("cargo", &["build", "-p", "rf-cli"])?;
    let target_dir = target_dir();
    let rf = target_dir.join("debug/rf");
    let work = target_dir.join("soak");
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work).map_err(|e| e.to_string())?;
    let input = work.join("input");
    let names = make_inputs(&input, options.files)?;

    let (guard, base) = start_emulator(&rf, &work, &options)?;

    let soak = Soak {
        rf,
        base,
        input,
        names,
        work,
        options: options.clone(),
    };
    eprintln!(
        "soak: {} seeds from {}, {} kill(s) each, {} files in {} shards, concurrency {}, chaos rate {}, item delay {} ms",
        options.seeds,
        options.first_seed,
        options.kills,
        options.files,
        options.shards(),
        options.concurrency,
        options.chaos_rate,
        options.item_delay_ms
    );
    let mut failures = Vec::new();
    let mut phases: BTreeMap<&str, u64> = BTreeMap::new();
    let (mut extra, mut retries) = (0, 0);
    for seed in options.first_seed..options.first_seed + options.seeds {
        match soak.seed(seed) {
            Ok(o) => {
                eprintln!(
                    "soak: seed {seed}: aimed at {}, killed in {}, {} extra shard uploads, {} retries, {:.1} s",
                    o.targeted,
                    o.killed_in.join(", "),
                    o.extra_uploads,
                    o.retries,
                    o.seconds
                );
                for k in &o.killed_in {
                    *phases.entry(k).or_default() += 1;
                }
                extra += o.extra_uploads;
                retries += o.retries;
            }
            Err(e) => {
                eprintln!("soak: seed {seed}: FAILED: {e}");
                failures.push(seed);
            }
        }
    }
    drop(guard);
    eprintln!(
        "soak: {} of {} seeds passed; kills by phase {phases:?}; {extra} extra shard uploads; {retries} retries",
        options.seeds - failures.len() as u64,
        options.seeds
    );
    let emulator = emulator_soak(&soak);
    match &emulator {
        Ok(line) => eprintln!("{line}"),
        Err(e) => eprintln!("soak: emulator: FAILED: {e}"),
    }
    if failures.is_empty() {
        emulator.map(drop)
    } else {
        Err(format!(
            "seeds {failures:?} failed; replay one with `cargo xtask soak --first-seed S --seeds 1` (plus the same options)"
        ))
    }
}
