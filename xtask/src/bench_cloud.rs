//! `cargo xtask bench-cloud`: ingest straight from a bucket. A local S3
//! server (moto, from `cargo xtask testservers`) holds N small JPEGs under
//! `bench/`; `rf emulator serve` receives the references and fetches them
//! from it. Measured for each client: the command's wall time, CPU time
//! and peak RSS (listing, signing and sending), then the time until the
//! batch holds all N (the emulator fetching); then rf once more on the same
//! batch, which must send nothing new.
//!
//! Contenders: `rf batch ingest --images s3://…` and, with `--peer`,
//! inference-cli 1.8.3's `create-batch-of-images --data-source
//! cloud-storage --bucket-path s3://…` (its `cloud-storage` extra).
//!
//! `--bucket NAME` uses another S3-compatible server instead of moto
//! (moto reads every key of a bucket for each listing page, so at 100,000
//! objects its listing, not the client, sets the pace): its endpoint and
//! credentials come from the standard `AWS_*` variables, and the bench
//! fills `bench/` in that bucket with signed `PUT`s unless it already
//! holds the objects.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rf_testservers::S3Server;

use crate::bench_measure::{Job, Measured, gnu_time_available, run_measured};
use crate::bench_report::replace_section;
use crate::{ServerGuard, project_root, run, serve_json, target_dir};

const KEY: &str = "bench-key";
const WORKSPACE: &str = "bench";
/// The objects' folder in the bucket.
const PREFIX: &str = "bench";
/// Bytes of each JPEG.
const IMAGE_BYTES: usize = 600;
/// Threads that fill the bucket.
const FILLERS: usize = 8;

/// The usage text.
pub(crate) const USAGE: &str =
    "usage: cargo xtask bench-cloud [--size N] [--peer] [--bucket NAME] [--no-write]

  --size N     objects in the bucket (default 10000)
  --no-count   skip waiting for the emulator to fetch every object (the figures of the
               clients' commands only: for sizes whose fetching takes too long)
  --bucket B   an S3-compatible server's bucket instead of moto's: endpoint, keys and region
               from AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION
  --peer       also inference-cli 1.8.3 with its cloud-storage extra
  --no-write   print only; leave docs/benchmarks.md alone";

/// What `bench-cloud` runs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Options {
    size: usize,
    peer: bool,
    write: bool,
    /// `--bucket`: an external S3-compatible server's bucket.
    bucket: Option<String>,
    /// `--no-count`: skip waiting until the batch is counted.
    count: bool,
}

fn parse_options(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        size: 10_000,
        peer: false,
        write: true,
        bucket: None,
        count: true,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--peer" => o.peer = true,
            "--no-write" => o.write = false,
            "--no-count" => o.count = false,
            "--bucket" => {
                let v = it.next().ok_or("--bucket needs a bucket name")?;
                if v.is_empty() || v.contains('/') {
                    return Err(format!("--bucket: {v:?} is not a bucket name"));
                }
                o.bucket = Some(v.clone());
            }
            "--size" => {
                let v = it.next().ok_or("--size needs a number, e.g. 100000")?;
                o.size = match v.parse::<usize>() {
                    Ok(n) if n > 0 => n,
                    _ => return Err(format!("--size: {v:?} is not a positive number")),
                };
            }
            other => return Err(format!("unknown option {other:?}\n{USAGE}")),
        }
    }
    Ok(o)
}

/// One contender's figures.
#[derive(Debug, Clone)]
struct Row {
    who: String,
    command: Measured,
    /// Seconds from the command's start until the batch held every object
    /// (`None` with `--no-count`).
    until_count: Option<f64>,
}

/// The S3 server of a run.
enum Store {
    /// moto, started by the bench.
    Moto(S3Server),
    /// Another S3-compatible server, from the `AWS_*` environment.
    External(ExternalS3),
}

impl Store {
    /// `s3://BUCKET/path`.
    fn url(&self, path: &str) -> String {
        match self {
            Store::Moto(s3) => s3.url(path),
            Store::External(s3) => format!("s3://{}/{path}", s3.bucket),
        }
    }

    /// The variables that point a client at the server.
    fn env(&self) -> Vec<(&'static str, String)> {
        match self {
            Store::Moto(s3) => s3.env(),
            Store::External(s3) => s3.env.clone(),
        }
    }

    /// What the run's figures were measured against.
    fn describe(&self) -> &'static str {
        match self {
            Store::Moto(_) => "moto",
            Store::External(_) => "an S3-compatible server given by `--bucket`",
        }
    }
}

/// An S3-compatible server named by the standard `AWS_*` variables.
struct ExternalS3 {
    bucket: String,
    env: Vec<(&'static str, String)>,
    store: rf_batch::cloud::Store,
}

impl ExternalS3 {
    /// The variables every client is given (they are the caller's own).
    const VARS: [&'static str; 4] = [
        "AWS_ENDPOINT_URL",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_REGION",
    ];

    fn from_env(bucket: &str) -> Result<ExternalS3, String> {
        let mut env = Vec::new();
        for var in Self::VARS {
            let value = std::env::var(var)
                .map_err(|_| format!("--bucket needs {var} set (the server's {var})"))?;
            env.push((var, value));
        }
        env.push(("AWS_DEFAULT_REGION", env[3].1.clone()));
        let url = rf_batch::cloud::CloudUrl::parse(&format!("s3://{bucket}/"))
            .map_err(|e| format!("--bucket {bucket}: {e}"))?;
        let vars = env.iter().map(|(k, v)| ((*k).to_owned(), v.clone()));
        let store = rf_batch::cloud::open_with_env(&url, vars)
            .map_err(|e| format!("S3 store of bucket {bucket}: {e}"))?;
        Ok(ExternalS3 {
            bucket: bucket.to_owned(),
            env,
            store,
        })
    }

    /// Objects under [`PREFIX`] now.
    fn count(&self, runtime: &tokio::runtime::Runtime) -> Result<usize, String> {
        use futures::TryStreamExt;
        use object_store::ObjectStore;
        let prefix = object_store::path::Path::from(PREFIX);
        runtime.block_on(async {
            self.store
                .list(Some(&prefix))
                .try_fold(0, |n, _| async move { Ok(n + 1) })
                .await
                .map_err(|e| format!("listing s3://{}/{PREFIX}/: {e}", self.bucket))
        })
    }

    /// Puts the objects [`object_key`] names, [`FILLERS`] × 4 at once.
    fn fill(&self, n: usize) -> Result<(), String> {
        use futures::{StreamExt, TryStreamExt};
        use object_store::ObjectStoreExt;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("tokio runtime: {e}"))?;
        let have = self.count(&runtime)?;
        if have == n {
            eprintln!("bench-cloud: the bucket already holds {n} objects under {PREFIX}/");
            return Ok(());
        }
        if have != 0 {
            return Err(format!(
                "s3://{}/{PREFIX}/ holds {have} objects, not 0 or {n}: empty it first",
                self.bucket
            ));
        }
        runtime.block_on(
            futures::stream::iter(0..n)
                .map(|i| async move {
                    let key = object_store::path::Path::from(object_key(i));
                    let body = crate::bench_data::jpeg(IMAGE_BYTES, i as u64);
                    self.store
                        .as_ref()
                        .put(&key, body.into())
                        .await
                        .map(drop)
                        .map_err(|e| format!("PUT {key}: {e}"))
                })
                .buffer_unordered(FILLERS * 4)
                .try_collect::<()>(),
        )
    }
}

/// The key of object `i`: 100 folders under [`PREFIX`].
fn object_key(i: usize) -> String {
    format!("{PREFIX}/{:03}/img_{i:07}.jpg", i % 100)
}

/// The servers and programs of a run.
struct Bench {
    s3: Store,
    _emulator: ServerGuard,
    base_url: String,
    rf: PathBuf,
    scratch: PathBuf,
    with_time: bool,
    /// Wait until each batch is counted (not with `--no-count`).
    count: bool,
}

/// Runs `cargo xtask bench-cloud`.
pub(crate) fn bench_cloud(args: &[String]) -> Result<(), String> {
    let options = parse_options(args)?;
    let inference = if options.peer {
        Some(crate::compat::ensure_inference_cli()?)
    } else {
        None
    };
    let bench = start(&options)?;
    let mut rows = Vec::new();
    if let Some(inference) = &inference {
        rows.push(bench.inference_ingest(inference, options.size)?);
    }
    rows.push(bench.rf_ingest("rf", "cloud-rf", options.size)?);
    let shards_before = bench.shards("cloud-rf")?;
    let again = bench.rf_ingest("rf, run again", "cloud-rf", options.size)?;
    let new_shards = bench.shards("cloud-rf")? - shards_before;
    if new_shards != 0 {
        return Err(format!(
            "rf's re-run made {new_shards} new shards in cloud-rf: it sent references again"
        ));
    }
    rows.push(again);
    let text = render(&options, bench.s3.describe(), &rows);
    println!("{text}");
    if options.write {
        write_doc(&text)?;
    }
    Ok(())
}

/// Builds rf, starts moto and the emulator, fills the bucket.
fn start(options: &Options) -> Result<Bench, String> {
    run("cargo", &["build", "--release", "-p", "rf-cli"])?;
    let rf = target_dir().join("release/rf");
    let scratch = target_dir().join("bench/cloud");
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;
    let filled = Instant::now();
    let s3 = match &options.bucket {
        None => {
            let s3 = S3Server::start().map_err(|e| e.to_string())?;
            fill_bucket(&s3, options.size)?;
            Store::Moto(s3)
        }
        Some(bucket) => {
            let s3 = ExternalS3::from_env(bucket)?;
            s3.fill(options.size)?;
            Store::External(s3)
        }
    };
    eprintln!(
        "bench-cloud: {} objects put into {} in {:.1} s",
        options.size,
        s3.url(PREFIX),
        filled.elapsed().as_secs_f64()
    );
    let mut serve = Command::new(&rf);
    serve
        .args(["--json", "emulator", "serve", "--addr", "127.0.0.1:0"])
        .args(["--key", &format!("{KEY}={WORKSPACE}")])
        .arg("--data-dir")
        .arg(scratch.join("emulator-data"));
    let (emulator, base_url) = serve_json(serve)?;
    Ok(Bench {
        s3,
        _emulator: emulator,
        base_url,
        rf,
        scratch,
        with_time: gnu_time_available(),
        count: options.count,
    })
}

/// Puts `n` distinct small JPEGs under [`PREFIX`], from [`FILLERS`]
/// threads.
fn fill_bucket(s3: &S3Server, n: usize) -> Result<(), String> {
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..FILLERS)
            .map(|_| {
                scope.spawn(|| -> Result<(), String> {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= n {
                            return Ok(());
                        }
                        let body = crate::bench_data::jpeg(IMAGE_BYTES, i as u64);
                        s3.put(&object_key(i), &body).map_err(|e| e.to_string())?;
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .try_for_each(|w| w.join().unwrap_or_else(|_| Err("a filler panicked".into())))
    })
}

impl Bench {
    /// The environment every client gets: the S3 server's and the API's.
    fn env(&self, job: Job) -> Job {
        let job = job
            .env("API_BASE_URL", &self.base_url)
            .env("ROBOFLOW_API_KEY", KEY);
        self.s3
            .env()
            .into_iter()
            .fold(job, |job, (k, v)| job.env(k, v))
    }

    /// `rf batch ingest --images s3://…/bench/` into `batch`.
    fn rf_ingest(&self, who: &str, batch: &str, n: usize) -> Result<Row, String> {
        let url = format!("{}/", self.s3.url(PREFIX));
        let args = ["batch", "ingest", "--images", &url, "--batch-id", batch];
        let job = self.env(Job::new(&self.rf, args));
        self.measure(who, &job, batch, n)
    }

    /// inference-cli's cloud-storage ingest of the same objects.
    fn inference_ingest(&self, inference: &Path, n: usize) -> Result<Row, String> {
        let url = format!("{}/", self.s3.url(PREFIX));
        let mut args = vec!["rf-cloud"];
        args.extend(crate::compat::cloud::inference_args(
            &url,
            "cloud-inference",
        ));
        let job = self.env(Job::new(inference, args)).cwd(&self.scratch);
        self.measure("inference-cli 1.8.3", &job, "cloud-inference", n)
    }

    /// Runs `job`, then waits until `batch` holds `n` items.
    fn measure(&self, who: &str, job: &Job, batch: &str, n: usize) -> Result<Row, String> {
        eprintln!("bench-cloud: {who}: {}", job.display());
        let started = Instant::now();
        let (command, _) = run_measured(job, &self.scratch, self.with_time)?;
        eprintln!(
            "bench-cloud: {who}: command {:.2} s wall, {} s CPU, {} MiB peak",
            command.wall,
            command.cpu.map_or("-".into(), |c| format!("{c:.2}")),
            command.rss_mib().map_or("-".into(), |m| format!("{m:.1}"))
        );
        let until_count = if self.count {
            self.wait_count(batch, n)?;
            let until = started.elapsed().as_secs_f64();
            eprintln!("bench-cloud: {who}: counted exactly after {until:.1} s");
            Some(until)
        } else {
            None
        };
        Ok(Row {
            who: who.to_owned(),
            command,
            until_count,
        })
    }

    /// The shards the emulator made for `batch` (each accepted reference
    /// request adds some; a request it recognises as a repeat adds none).
    fn shards(&self, batch: &str) -> Result<i64, String> {
        let host = self
            .base_url
            .trim_start_matches("http://")
            .trim_end_matches('/');
        let (_, body) = crate::http_get(host, "/_emulator/stats", Duration::from_secs(10))?;
        let stats: serde_json::Value =
            serde_json::from_str(&body).map_err(|e| format!("emulator stats: {e}"))?;
        stats["workspaces"][WORKSPACE]["batches"][batch]["shards"]
            .as_i64()
            .ok_or_else(|| format!("no shard count of {batch} in the emulator's stats"))
    }

    /// Polls `rf batch count` until `batch` holds `n`; gives up when the
    /// count has not moved for [`STALL`] (the emulator fetches the objects
    /// shard by shard, after any other batch's: a fixed deadline cut a
    /// 100,000-object run short at 99,000).
    fn wait_count(&self, batch: &str, n: usize) -> Result<(), String> {
        let mut last = None;
        let mut moved = Instant::now();
        loop {
            let out = Command::new(&self.rf)
                .args(["--json", "batch", "count", batch])
                .env("API_BASE_URL", &self.base_url)
                .env("ROBOFLOW_API_KEY", KEY)
                .output()
                .map_err(|e| format!("rf batch count: {e}"))?;
            let count = serde_json::from_slice::<serde_json::Value>(&out.stdout)
                .ok()
                .and_then(|v| v["count"].as_u64());
            if count == Some(n as u64) {
                return Ok(());
            }
            if count != last {
                (last, moved) = (count, Instant::now());
            }
            if moved.elapsed() > STALL {
                return Err(format!(
                    "batch {batch} holds {count:?} of {n}, unchanged for {} s",
                    STALL.as_secs()
                ));
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

/// How long the batch count may stay unchanged before the bench gives up.
const STALL: Duration = Duration::from_secs(120);

/// The figures as a markdown section.
fn render(options: &Options, server: &str, rows: &[Row]) -> String {
    let bucket = options
        .bucket
        .as_ref()
        .map_or(String::new(), |b| format!(" --bucket {b}"));
    let mut s = format!(
        "Ingest of {} small JPEGs ({IMAGE_BYTES} B each, in 100 folders) from a local S3 server ({server}) into `rf emulator serve`, which fetches every presigned URL from it (`cargo xtask bench-cloud --size {}{}{bucket}{}`). \"command\" is the client's own run (listing, signing, sending); \"until counted\" adds the emulator's fetching, until the batch count is exact. The run again sends nothing: the emulator made no new shard for it (checked).\n\n",
        options.size,
        options.size,
        if options.peer { " --peer" } else { "" },
        if options.count { "" } else { " --no-count" }
    );
    s.push_str("| client | command wall (s) | CPU (s) | peak RSS (MiB) | until counted (s) |\n|---|---|---|---|---|\n");
    for r in rows {
        let cpu = r.command.cpu.map_or("-".into(), |c| format!("{c:.2}"));
        let rss = r
            .command
            .rss_mib()
            .map_or("-".into(), |m| format!("{m:.1}"));
        s.push_str(&format!(
            "| {} | {:.2} | {cpu} | {rss} | {} |\n",
            r.who,
            r.command.wall,
            r.until_count.map_or("-".into(), |u| format!("{u:.1}"))
        ));
    }
    let rf = rows.iter().find(|r| r.who == "rf");
    let peer = rows.iter().find(|r| r.who.starts_with("inference"));
    if let (Some(rf), Some(peer)) = (rf, peer) {
        s.push_str(&format!(
            "\nrf's command is {:.1}× faster than inference-cli's.\n",
            peer.command.wall / rf.command.wall
        ));
    }
    s
}

/// Writes the section into docs/benchmarks.md.
fn write_doc(text: &str) -> Result<(), String> {
    let path = project_root().join("docs/benchmarks.md");
    let doc = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let doc = replace_section(&doc, "bench-cloud", text);
    std::fs::write(&path, doc).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_parse_and_refuse_what_they_should() {
        let o = parse_options(&["--size".into(), "100000".into(), "--peer".into()]).unwrap();
        assert_eq!((o.size, o.peer, o.write), (100_000, true, true));
        assert!(parse_options(&["--size".into(), "0".into()]).is_err());
        assert!(parse_options(&["--wan".into()]).is_err());
        let o = parse_options(&["--bucket".into(), "bench".into()]).unwrap();
        assert_eq!(o.bucket.as_deref(), Some("bench"));
        assert!(parse_options(&["--bucket".into(), "a/b".into()]).is_err());
        assert!(!parse_options(&["--no-count".into()]).unwrap().count);
    }
}
