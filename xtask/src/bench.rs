//! `cargo xtask bench`: rf against the raw loopback limit and the official
//! client (inference-cli 1.8.3), on one machine and one emulator.
//!
//! Builds `rf` in release mode, generates deterministic datasets under
//! `<target>/bench/data` (see [`crate::bench_data`]), starts
//! `rf emulator serve --item-delay-ms 0 --index-delay-ms 0` on a free
//! loopback port with its own data
//! directory, and measures, for each dataset:
//!
//! - ingest: `rf batch ingest`, the raw limit (the files as one tar, or the
//!   videos as they are, streamed by `tar | curl` into signed upload URLs
//!   handed out beforehand) and, with `--peer`, `inference rf-cloud
//!   data-staging create-batch-of-images|videos`;
//! - export: every staged batch rf made, and the output batch of a job's
//!   export stage (run over the rf batch): `rf batch export`, the raw limit
//!   (`curl` of the same URLs, listed beforehand, 8 at a time, no
//!   extraction) and `inference rf-cloud data-staging export-batch`.
//!
//! After every ingest the batch count must equal the file count, and every
//! export must hold the expected files, so a fast but wrong run fails.
//! Results go to stdout and, unless `--no-write`, into the marked section
//! of docs/benchmarks.md. `--components` runs the older component
//! benchmarks instead.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::bench_data::{self, Kind, Spec};
use crate::bench_measure::{self, Job, Measured};
use crate::bench_report::{self, Op, Row, ScalePoint, Startup, Tool};
use crate::{ServerGuard, compat, project_root, run, target_dir};

#[path = "bench_wan.rs"]
mod wan;

const KEY: &str = "bench-key";
const WORKSPACE: &str = "bench";
/// Concurrency of the raw export download (rf's default too).
const RAW_PARALLEL: &str = "8";

/// Options of `cargo xtask bench`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Options {
    /// Small-image dataset sizes.
    pub(crate) sizes: Vec<usize>,
    /// Also run the official client.
    pub(crate) peer: bool,
    /// Also run the scaling series (2k, 20k, 200k files; rf and raw ingest).
    pub(crate) scaling: bool,
    /// Write the results into docs/benchmarks.md.
    pub(crate) write: bool,
    /// Large images and videos too.
    pub(crate) media: bool,
    /// Export runs too.
    pub(crate) export: bool,
    /// The component benchmarks instead.
    pub(crate) components: bool,
    /// Runs of each measurement; the table shows the median.
    pub(crate) repeat: usize,
    /// The WAN benchmark instead (`--wan`), its profiles and what it runs.
    pub(crate) wan: bool,
    pub(crate) profiles: Vec<&'static str>,
    pub(crate) wan_options: wan::WanOptions,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            sizes: vec![2000, 20_000],
            peer: false,
            scaling: false,
            write: true,
            media: true,
            export: true,
            components: false,
            repeat: 1,
            wan: false,
            profiles: wan::PROFILES.iter().map(|p| p.name).collect(),
            wan_options: wan::WanOptions::default(),
        }
    }
}

/// The usage text of `cargo xtask bench`.
pub(crate) const USAGE: &str = "usage: cargo xtask bench [--sizes N,N] [--peer] [--scaling] [--repeat N] [--no-media] [--no-export] [--no-write] | --components
       cargo xtask bench --wan [--profiles lan,wan,far] [--wan-size N] [--wan-peer-size N]
                               [--wan-sweep N,N] [--wan-videos] [--wan-chaos RATE] [--wan-http2] [--wan-job]
                               [--peer] [--no-write]

  --sizes N,N    small-JPEG dataset sizes (default 2000,20000)
  --peer         also run inference-cli 1.8.3 (RF_COMPAT_VENV or target/compat/venv)
  --scaling      rf and raw ingest and export at 2,000, 20,000 and 200,000 files
  --repeat N     run every measurement N times and report the median run (default 1)
  --no-media     skip the large images and videos
  --no-export    skip the job and the export runs
  --no-write     print only; leave docs/benchmarks.md alone
  --components   the component benchmarks (ingest memory, emulator indexing)
  --wan          through the emulator's network shaping: profiles lan (1 ms), wan (40 ms,
                 200 Mbit/s), far (150 ms, 50 Mbit/s); rf default vs --concurrency 1/8/32/128,
                 curl --parallel-max 8/32/128 and (--peer) inference-cli
  --profiles L   the --wan profiles to run (default lan,wan,far)
  --wan-size N   small JPEGs in the --wan dataset (default 1000)
  --wan-peer-size N  inference-cli's --wan dataset instead (rf default runs it too)
  --wan-sweep L  the fixed rf --concurrency / curl --parallel-max values (default 1,8,32,128)
  --wan-videos   also ingest and export 3 videos of 48 MiB (rf default)
  --wan-chaos R  add chaos faults to a share R of requests in every profile
  --wan-http2    also rf default over cleartext HTTP/2 (--http2-prior-knowledge)
  --wan-job      also a job's output (its archives) exported by rf default, curl and inference-cli";

/// Parses the arguments after `bench`.
pub(crate) fn parse_options(args: &[String]) -> Result<Options, String> {
    let mut o = Options::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--peer" => o.peer = true,
            "--scaling" => o.scaling = true,
            "--no-write" => o.write = false,
            "--no-media" => o.media = false,
            "--no-export" => o.export = false,
            "--components" => o.components = true,
            "--wan" => o.wan = true,
            "--profiles" => {
                let v = it.next().ok_or("--profiles needs a list, e.g. lan,wan")?;
                o.profiles = wan::parse_profiles(v)?.iter().map(|p| p.name).collect();
            }
            a if a.starts_with("--wan-") => o.wan_options.parse_arg(a, &mut it)?,
            "--repeat" => {
                let v = it.next().ok_or("--repeat needs a number, e.g. 3")?;
                o.repeat = match v.parse::<usize>() {
                    Ok(n) if n > 0 => n,
                    _ => return Err(format!("--repeat: {v:?} is not a positive number")),
                };
            }
            "--sizes" => {
                let v = it.next().ok_or("--sizes needs a value, e.g. 2000,20000")?;
                o.sizes = v
                    .split(',')
                    .map(|s| match s.trim().parse::<usize>() {
                        Ok(n) if n > 0 => Ok(n),
                        _ => Err(format!("--sizes: {s:?} is not a positive number")),
                    })
                    .collect::<Result<_, _>>()?;
            }
            other => return Err(format!("unknown option {other:?}\n\n{USAGE}")),
        }
    }
    Ok(o)
}

/// The emulator (killed when the benchmark ends, however it ends) and its URL.
struct Server {
    child: ServerGuard,
    base_url: String,
}

/// Everything a run needs.
struct Ctx {
    rf: PathBuf,
    inference: Option<PathBuf>,
    server: Server,
    run_dir: PathBuf,
    with_time: bool,
    ticks: f64,
}

fn io(what: &str, path: &Path) -> impl FnOnce(std::io::Error) -> String {
    let text = format!("cannot {what} {}", path.display());
    move |e| format!("{text}: {e}")
}

/// The datasets to measure (generated once into `cache`) and their
/// directories.
fn datasets(options: &Options, cache: &Path) -> Result<(Vec<Spec>, Vec<PathBuf>), String> {
    let mut specs: Vec<Spec> = options
        .sizes
        .iter()
        .map(|&n| Spec::small_images(n))
        .collect();
    if options.media {
        specs.push(Spec::large_images());
        specs.push(Spec::videos());
    }
    let mut dirs = Vec::new();
    for spec in &specs {
        let dir = bench_data::ensure(cache, spec)?;
        bench_data::clean_client_files(&dir);
        dirs.push(dir);
    }

    Ok((specs, dirs))
}

/// Every ingest and export measurement, `options.repeat` times.
fn measure_all(
    ctx: &Ctx,
    options: &Options,
    specs: &[Spec],
    dirs: &[PathBuf],
) -> Result<Vec<Row>, String> {
    let mut rows = Vec::new();
    for dir_spec in specs.iter().zip(dirs) {
        bench_data::warm(dir_spec.1, dir_spec.0)?;
    }
    for rep in 0..options.repeat {
        // Every repetition has its own batches (same files).
        let named: Vec<Spec> = specs
            .iter()
            .map(|spec| {
                let mut s = spec.clone();
                if rep > 0 {
                    s.name = format!("{}-r{rep}", spec.name);
                }
                s
            })
            .collect();
        for (spec, dir) in named.iter().zip(dirs) {
            rows.extend(ingest_all(ctx, spec, dir)?);
        }
        if options.export {
            rows.extend(export_rows(ctx, &named)?);
        }
    }
    Ok(rows)
}

/// Downloads of the staged batches and of a job's output.
fn export_rows(ctx: &Ctx, named: &[Spec]) -> Result<Vec<Row>, String> {
    let mut rows = Vec::new();
    // Downloads of the staged batches (every file as it was uploaded) ...
    for spec in named {
        let batch = format!("rf-{}", spec.name);
        let label = format!("{} batch", dataset_label(spec));
        rows.extend(export_all(
            ctx,
            &batch,
            label,
            Expect::Files(spec.count as u64),
            true,
        )?);
    }
    // ... and of a job's export stage output (archives of results).
    if let Some(spec) = named
        .iter()
        .filter(|s| s.kind == Kind::Images)
        .max_by_key(|s| s.count)
    {
        let out = run_job(ctx, spec)?;
        let label = format!("job output of {} images", thousands(spec.count as u64));
        rows.extend(export_all(ctx, &out, label, Expect::Archives, true)?);
    }
    Ok(rows)
}

/// Prints the tables and, with `--write`, puts them into docs/benchmarks.md.
fn report(
    options: &Options,
    args: &[String],
    ctx: &Ctx,
    rows: &[Row],
    startup: &Startup,
    scaling: Option<Vec<ScalePoint>>,
) -> Result<(), String> {
    let machine = machine_description(ctx.inference.is_some());
    let command = command_line(args);
    let section = render_section(&machine, &command, rows, startup);
    println!("{section}");
    let scaling_section = scaling.map(|points| render_scaling_section(&machine, &points));
    if let Some(s) = &scaling_section {
        println!("{s}");
    }
    if options.write {
        let path = project_root().join("docs/benchmarks.md");
        let doc = fs::read_to_string(&path).map_err(io("read", &path))?;
        let mut doc = bench_report::replace_section(&doc, "bench", &section);
        if let Some(s) = &scaling_section {
            doc = bench_report::replace_section(&doc, "bench-scaling", s);
        }
        fs::write(&path, doc).map_err(io("write", &path))?;
        eprintln!("bench: results written into {}", path.display());
    }
    Ok(())
}

/// Runs `cargo xtask bench`.
pub(crate) fn bench(args: &[String]) -> Result<(), String> {
    let options = parse_options(args)?;
    if options.components {
        return components();
    }
    let target = target_dir();
    // `RF_BENCH_RF=path` measures that rf binary (an older build, for a
    // paired before/after) instead of building this tree's.
    let rf = match std::env::var_os("RF_BENCH_RF") {
        Some(path) => PathBuf::from(path),
        None => {
            run("cargo", &["build", "--release", "-p", "rf-cli"])?;
            target.join("release/rf")
        }
    };
    let inference = if options.peer {
        Some(compat::ensure_inference_cli()?)
    } else {
        None
    };
    let cache = target.join("bench/data");
    let run_dir = target.join("bench/run");
    if run_dir.exists() {
        fs::remove_dir_all(&run_dir).map_err(io("clear", &run_dir))?;
    }
    fs::create_dir_all(&run_dir).map_err(io("create", &run_dir))?;
    let with_time = bench_measure::gnu_time_available();
    if !with_time {
        eprintln!(
            "bench: /usr/bin/time (GNU time) not found: CPU time and peak RSS are not measured"
        );
    }

    let (specs, dirs) = datasets(&options, &cache)?;

    if options.wan {
        let base = WanBase {
            rf,
            inference,
            cache,
            run_dir,
            with_time,
        };
        return bench_wan(&options, args, &base);
    }
    let server = start_emulator(&rf, &run_dir, &[])?;
    let ctx = Ctx {
        rf,
        inference,
        server,
        run_dir,
        with_time,
        ticks: bench_measure::clock_ticks(),
    };
    let rows = measure_all(&ctx, &options, &specs, &dirs)?;
    let rows = bench_report::median_rows(&rows);
    let startup = startup(&ctx)?;
    let scaling = if options.scaling {
        Some(scaling(&ctx, &cache)?)
    } else {
        None
    };

    report(&options, args, &ctx, &rows, &startup, scaling)?;
    // The run's batches and exports take gigabytes after --scaling: remove
    // them once the emulator is stopped (a failed run keeps them to look at).
    let run_dir = ctx.run_dir.clone();
    drop(ctx);
    if let Err(e) = fs::remove_dir_all(&run_dir) {
        eprintln!("bench: cannot remove {}: {e}", run_dir.display());
    }
    Ok(())
}

/// What every `--wan` profile shares.
struct WanBase {
    rf: PathBuf,
    inference: Option<PathBuf>,
    cache: PathBuf,
    run_dir: PathBuf,
    with_time: bool,
}

/// `cargo xtask bench --wan`: every profile, then the section
/// `bench-wan` of docs/benchmarks.md.
fn bench_wan(options: &Options, args: &[String], base: &WanBase) -> Result<(), String> {
    let profiles = wan::parse_profiles(&options.profiles.join(","))?;
    let tables = wan::run_profiles(base, &profiles, &options.wan_options)?;
    let machine = machine_description(base.inference.is_some());
    let section = format!(
        "Command: `{}`

Machine: {machine}

{tables}",
        command_line(args)
    );
    println!("{section}");
    if options.write {
        let path = project_root().join("docs/benchmarks.md");
        let doc = fs::read_to_string(&path).map_err(io("read", &path))?;
        let doc = bench_report::replace_section(&doc, "bench-wan", &section);
        fs::write(&path, doc).map_err(io("write", &path))?;
        eprintln!("bench: results written into {}", path.display());
    }
    let _ = fs::remove_dir_all(&base.run_dir);
    Ok(())
}

fn command_line(args: &[String]) -> String {
    let mut s = "cargo xtask bench".to_string();
    for a in args {
        s.push(' ');
        s.push_str(a);
    }
    s
}

/// Starts the emulator without simulated delays on a free port; waits for its URL.
fn start_emulator(rf: &Path, run_dir: &Path, extra: &[String]) -> Result<Server, String> {
    let log = run_dir.join("emulator.log");
    let log_file = fs::File::create(&log).map_err(io("create", &log))?;
    let mut child = Command::new(rf)
        .args(["emulator", "serve", "--addr", "127.0.0.1:0"])
        .args(["--item-delay-ms", "0", "--index-delay-ms", "0"])
        .args(extra)
        .args(["--key", &format!("{KEY}={WORKSPACE}")])
        .arg("--data-dir")
        .arg(run_dir.join("emulator-data"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log_file)
        .spawn()
        .map_err(|e| format!("cannot start rf emulator serve: {e}"))?;
    let stdout = child.stdout.take().ok_or("no stdout of the emulator")?;
    let mut server = Server {
        child: ServerGuard(child),
        base_url: String::new(),
    };
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the emulator's address: {e}"))?;
    let url = line
        .trim()
        .strip_prefix("API_BASE_URL=")
        .ok_or_else(|| format!("the emulator printed {line:?}, see {}", log.display()))?;
    server.base_url = url.to_string();
    eprintln!("bench: emulator at {url} (log in {})", log.display());
    Ok(server)
}

impl Ctx {
    fn pid(&self) -> u32 {
        self.server.child.0.id()
    }

    /// Measures `job`, with the emulator's CPU time meanwhile.
    fn measure(&self, job: &Job) -> Result<(Measured, Option<f64>, String), String> {
        eprintln!("bench: {}", job.display());
        let before = bench_measure::process_cpu(self.pid(), self.ticks);
        let (m, out) = bench_measure::run_measured(job, &self.run_dir, self.with_time)?;
        let after = bench_measure::process_cpu(self.pid(), self.ticks);
        let server = before.zip(after).map(|(b, a)| a - b);
        eprintln!(
            "bench:   {:.3} s wall, {} s CPU, {} MiB peak",
            m.wall,
            m.cpu.map_or("n/a".into(), |c| format!("{c:.3}")),
            m.rss_mib().map_or("n/a".into(), |r| format!("{r:.1}"))
        );
        Ok((m, server, out.stdout))
    }

    /// An `rf` command against the emulator (manifests in their own cache dir).
    fn rf_job<I, S>(&self, args: I, cache_name: &str) -> Job
    where
        I: IntoIterator<Item = S>,
        S: Into<std::ffi::OsString>,
    {
        Job::new(&self.rf, args)
            .env("API_BASE_URL", &self.server.base_url)
            .env("ROBOFLOW_API_KEY", KEY)
            .env("XDG_CACHE_HOME", self.run_dir.join(cache_name))
            .cwd(&self.run_dir)
    }

    fn peer_job<I, S>(&self, args: I) -> Option<Job>
    where
        I: IntoIterator<Item = S>,
        S: Into<std::ffi::OsString>,
    {
        let inference = self.inference.as_ref()?;
        let mut all: Vec<std::ffi::OsString> = vec!["rf-cloud".into()];
        all.extend(args.into_iter().map(Into::into));
        Some(
            Job::new(inference, all)
                .env("API_BASE_URL", &self.server.base_url)
                .env("ROBOFLOW_API_KEY", KEY)
                .env("COLUMNS", "200")
                .cwd(&self.run_dir),
        )
    }

    /// A JSON API call through curl (not measured).
    fn api(&self, method: &str, path: &str, query: &str) -> Result<Value, String> {
        let url = format!(
            "{}{path}?api_key={KEY}{}{query}",
            self.server.base_url,
            if query.is_empty() { "" } else { "&" }
        );
        let out = Command::new("curl")
            .args(["-sS", "--fail-with-body", "-X", method, &url])
            // `--wan-chaos` faults these too: retried (all are safe to).
            .args(["--retry", "10", "--retry-all-errors", "--retry-delay", "1"])
            .output()
            .map_err(|e| format!("cannot run curl: {e}"))?;
        let body = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            return Err(format!("{method} {path} failed: {body}"));
        }
        // A retried call's output holds the failed attempts' bodies first.
        serde_json::Deserializer::from_str(&body)
            .into_iter::<Value>()
            .map_while(Result::ok)
            .last()
            .ok_or_else(|| format!("{method} {path}: not JSON: {body}"))
    }

    fn batch_path(&self, batch: &str, rest: &str) -> String {
        format!("/data-staging/v1/external/{WORKSPACE}/batches/{batch}{rest}")
    }

    /// Polls the batch count until it equals `expected` (deadline 5 minutes).
    fn verify_count(&self, batch: &str, expected: u64) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(300);
        let mut last = None;
        loop {
            let v = self.api("GET", &self.batch_path(batch, "/count"), "")?;
            let count = v.get("count").and_then(Value::as_u64);
            if count == Some(expected) {
                return Ok(());
            }
            if count.is_some_and(|c| c > expected) {
                return Err(format!(
                    "batch {batch} holds {count:?} items, more than the {expected} files sent"
                ));
            }
            if count != last {
                last = count;
            } else if Instant::now() > deadline {
                return Err(format!(
                    "batch {batch} holds {count:?} items after 5 minutes, expected {expected}"
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Signed upload URL and the curl header flags it needs.
    fn signed_upload(&self, path: &str, query: &str) -> Result<(String, Vec<String>), String> {
        let v = self.api("POST", path, query)?;
        let details = v
            .get("signedURLDetails")
            .ok_or_else(|| format!("no signedURLDetails in {v}"))?;
        let url = details
            .get("uploadURL")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("no uploadURL in {v}"))?
            .to_string();
        let mut headers = Vec::new();
        if let Some(map) = details.get("extensionHeaders").and_then(Value::as_object) {
            for (k, val) in map {
                headers.push("-H".to_string());
                headers.push(format!("{k}: {}", val.as_str().unwrap_or_default()));
            }
        }
        Ok((url, headers))
    }
}

fn dataset_label(spec: &Spec) -> String {
    let size = if spec.file_bytes >= 1 << 20 {
        format!("{} MiB", spec.file_bytes >> 20)
    } else {
        format!("{} KB", spec.file_bytes / 1000)
    };
    let what = match spec.kind {
        Kind::Images => "JPEG",
        Kind::Videos => "AVI",
    };
    format!("{} × {size} {what}", thousands(spec.count as u64))
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Shell-quotes one word for bash.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Most files in one raw tar (the emulator indexes at most 100,000 members a shard).
const RAW_TAR_FILES: usize = 50_000;

/// The raw ingest: a bash script of `tar | curl` pipelines (images) or one
/// curl PUT per video, into signed URLs obtained now (not measured).
fn raw_ingest_job(ctx: &Ctx, spec: &Spec, dir: &Path, batch: &str) -> Result<Job, String> {
    let mut script = String::from("set -euo pipefail\n");
    match spec.kind {
        Kind::Images => {
            for (chunk_no, start) in (0..spec.count).step_by(RAW_TAR_FILES).enumerate() {
                let end = (start + RAW_TAR_FILES).min(spec.count);
                let list = ctx.run_dir.join(format!("{batch}-{chunk_no}.list"));
                let names: String = (start..end).map(|i| spec.file_name(i) + "\n").collect();
                fs::write(&list, names).map_err(io("write", &list))?;
                let (url, headers) =
                    ctx.signed_upload(&ctx.batch_path(batch, "/bulk-upload/image-files"), "")?;
                let headers: Vec<String> = headers.iter().map(|h| sh_quote(h)).collect();
                script.push_str(&format!(
                    "tar -c -f - -C {} -T {} | curl -sS --fail -X PUT -T - {} {} -o /dev/null\n",
                    sh_quote(&dir.to_string_lossy()),
                    sh_quote(&list.to_string_lossy()),
                    headers.join(" "),
                    sh_quote(&url)
                ));
            }
        }
        Kind::Videos => {
            let mut args = vec!["curl -sS --fail -Z".to_string()];
            for i in 0..spec.count {
                let name = spec.file_name(i);
                let (url, headers) = ctx.signed_upload(
                    &ctx.batch_path(batch, "/upload/video"),
                    &format!("fileName={name}"),
                )?;
                args.extend(headers.iter().map(|h| sh_quote(h)));
                args.push(format!(
                    "-T {} {} -o /dev/null",
                    sh_quote(&dir.join(&name).to_string_lossy()),
                    sh_quote(&url)
                ));
            }
            script.push_str(&args.join(" "));
            script.push('\n');
        }
    }
    let path = ctx.run_dir.join(format!("{batch}.sh"));
    fs::write(&path, script).map_err(io("write", &path))?;
    Ok(Job::new("bash", [path.into_os_string()]))
}

/// Raw, rf and peer ingest of one dataset, each into its own batch.
fn ingest_all(ctx: &Ctx, spec: &Spec, dir: &Path) -> Result<Vec<Row>, String> {
    let mut rows = Vec::new();
    let expected = spec.count as u64;
    let row = |tool, m, server_cpu| Row {
        op: Op::Ingest,
        dataset: dataset_label(spec),
        files: expected,
        bytes: spec.total_bytes(),
        tool,
        m,
        server_cpu,
    };
    let (flag, peer_cmd, peer_flag) = match spec.kind {
        Kind::Images => ("--images", "create-batch-of-images", "--images-dir"),
        Kind::Videos => ("--videos", "create-batch-of-videos", "--videos-dir"),
    };

    let raw_batch = format!("raw-{}", spec.name);
    let job = raw_ingest_job(ctx, spec, dir, &raw_batch)?;
    let (m, server, _) = ctx.measure(&job)?;
    ctx.verify_count(&raw_batch, expected)?;
    rows.push(row(Tool::Raw, m, server));

    let rf_batch = format!("rf-{}", spec.name);
    let job = ctx.rf_job(
        [
            "batch".into(),
            "ingest".into(),
            flag.into(),
            dir.as_os_str().to_owned(),
            "--batch-id".into(),
            std::ffi::OsString::from(&rf_batch),
        ],
        &format!("cache-{rf_batch}"),
    );
    let (m, server, _) = ctx.measure(&job)?;
    ctx.verify_count(&rf_batch, expected)?;
    rows.push(row(Tool::Rf, m, server));

    let peer_batch = format!("peer-{}", spec.name);
    if let Some(job) = ctx.peer_job([
        "data-staging".into(),
        peer_cmd.into(),
        peer_flag.into(),
        dir.as_os_str().to_owned(),
        "--batch-id".into(),
        std::ffi::OsString::from(&peer_batch),
    ]) {
        let measured = ctx.measure(&job);
        bench_data::clean_client_files(dir);
        let (m, server, _) = measured?;
        ctx.verify_count(&peer_batch, expected)?;
        rows.push(row(Tool::Peer, m, server));
    }
    Ok(rows)
}

/// The output batch of a job's export stage, from `rf --json job stages`.
fn export_output_batch(ctx: &Ctx, job_id: &str) -> Result<String, String> {
    let (_, out) = bench_measure::run_measured(
        &ctx.rf_job(["--json", "job", "stages", job_id], "cache-jobs"),
        &ctx.run_dir,
        false,
    )?;
    let out = out.stdout;
    compat::export_batch_of(&out).ok_or_else(|| format!("no export output batch in: {out}"))
}

/// Files under `dir` and their bytes, recursively, leaving out hidden entries
/// (rf's `.rf-state`, the official client's logs).
fn tree_stats(dir: &Path) -> (u64, u64) {
    let Ok(entries) = fs::read_dir(dir) else {
        return (0, 0);
    };
    let mut files = 0;
    let mut bytes = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        match entry.file_type() {
            Ok(t) if t.is_dir() => {
                let (f, b) = tree_stats(&path);
                files += f;
                bytes += b;
            }
            Ok(_) => {
                files += 1;
                bytes += entry.metadata().map(|m| m.len()).unwrap_or(0);
            }
            Err(_) => {}
        }
    }
    (files, bytes)
}

/// Runs a job with an export stage over the rf batch of `spec`; returns
/// the export stage's output batch.
fn run_job(ctx: &Ctx, spec: &Spec) -> Result<String, String> {
    let batch = format!("rf-{}", spec.name);
    // At most 20 characters: "job-200000-r10".
    let job_id = format!("job-{}", spec.name.trim_start_matches("small-"));
    run_job_over(ctx, &batch, &job_id)
}

/// Runs job `job_id` with an export stage over `batch` and waits for it
/// (not measured); returns the export stage's output batch.
fn run_job_over(ctx: &Ctx, batch: &str, job_id: &str) -> Result<String, String> {
    let start = ctx.rf_job(
        [
            "job",
            "start",
            "--batch-id",
            batch,
            "--workflow",
            "image-properties",
            "--job-id",
            job_id,
            "--aggregation-format",
            "jsonl",
            // The emulator charges simulated compute against this budget.
            "--max-runtime-seconds",
            "10000000",
        ],
        "cache-jobs",
    );
    eprintln!("bench: running job {job_id} over {batch} (not measured)");
    bench_measure::run_measured(&start, &ctx.run_dir, false)?;
    bench_measure::run_measured(
        &ctx.rf_job(["job", "wait", job_id], "cache-jobs"),
        &ctx.run_dir,
        false,
    )?;
    export_output_batch(ctx, job_id)
}

/// What an export run must leave on disk.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// Exactly this many files (a batch of plain files).
    Files(u64),
    /// Archives: at least one extracted file per archive.
    Archives,
}

/// Raw, rf and peer downloads of every file of `batch`.
/// A batch's file listing and the curl configuration downloading it into
/// `raw_dir` (the raw limit's side of an export).
struct RawListing {
    files: Vec<Value>,
    raw_dir: PathBuf,
    cfg: PathBuf,
}

impl RawListing {
    fn fetch(ctx: &Ctx, batch: &str, expect: &Expect) -> Result<RawListing, String> {
        let (_, listing) = bench_measure::run_measured(
            &ctx.rf_job(["--json", "batch", "files", batch], "cache-jobs"),
            &ctx.run_dir,
            false,
        )?;
        let files: Vec<Value> =
            serde_json::from_str(&listing.stdout).map_err(|e| format!("batch files: {e}"))?;
        let mut config = String::new();
        let raw_dir = ctx.run_dir.join(format!("export-raw-{batch}"));
        fs::create_dir_all(&raw_dir).map_err(io("create", &raw_dir))?;
        for f in &files {
            let name = f
                .get("fileName")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let url = f
                .get("downloadURL")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if name.is_empty() || url.is_empty() || name.contains(['/', '"', '\\']) {
                return Err(format!("unexpected file entry {f}"));
            }
            config.push_str(&format!(
                "url = \"{url}\"\noutput = \"{}\"\n",
                raw_dir.join(name).display()
            ));
        }
        let listed = files.len() as u64;
        if let Expect::Files(n) = *expect {
            if listed != n {
                return Err(format!("batch {batch} lists {listed} files, expected {n}"));
            }
        }
        let cfg = ctx.run_dir.join(format!("export-{batch}.curl"));
        fs::write(&cfg, config).map_err(io("write", &cfg))?;
        Ok(RawListing {
            files,
            raw_dir,
            cfg,
        })
    }
}

/// The raw limit's export of a listed batch: curl in parallel for plain
/// files, fetch-and-unpack for archives. Its measurement and bytes delivered.
fn raw_export(
    ctx: &Ctx,
    batch: &str,
    expect: &Expect,
    listing: &RawListing,
) -> Result<(Measured, Option<f64>, u64), String> {
    let RawListing {
        files,
        raw_dir,
        cfg,
    } = listing;
    let listed = files.len() as u64;
    let measured = match expect {
        Expect::Files(_) => {
            let job = Job::new(
                "curl",
                [
                    "-sS",
                    "--fail",
                    "--parallel",
                    "--parallel-max",
                    RAW_PARALLEL,
                    "-K",
                    &cfg.to_string_lossy(),
                ],
            );
            let (m, server, _) = ctx.measure(&job)?;
            let (n, bytes) = tree_stats(raw_dir);
            if n != listed {
                return Err(format!("raw export wrote {n} files, expected {listed}"));
            }
            (m, server, bytes)
        }
        Expect::Archives => {
            // What the clients deliver: the archives unpacked.
            let job = raw_unpack_job(ctx, files, raw_dir, batch)?;
            let (m, server, out) = ctx.measure(&job)?;
            let sizes: Vec<u64> = out.lines().filter_map(|l| l.trim().parse().ok()).collect();
            let (n, _) = tree_stats(raw_dir);
            if sizes.len() as u64 != listed || n < listed {
                return Err(format!(
                    "raw export fetched {} of {listed} archives and unpacked {n} files",
                    sizes.len()
                ));
            }
            (m, server, sizes.iter().sum())
        }
    };
    Ok(measured)
}

fn export_all(
    ctx: &Ctx,
    batch: &str,
    label: String,
    expect: Expect,
    with_peer: bool,
) -> Result<Vec<Row>, String> {
    let listing = RawListing::fetch(ctx, batch, &expect)?;
    let listed = listing.files.len() as u64;
    let (m, server, bytes) = raw_export(ctx, batch, &expect, &listing)?;
    let mut rows = Vec::new();
    let row = |tool, m, server_cpu| Row {
        op: Op::Export,
        dataset: label.clone(),
        files: listed,
        bytes,
        tool,
        m,
        server_cpu,
    };
    rows.push(row(Tool::Raw, m, server));

    let rf_dir = ctx.run_dir.join(format!("export-rf-{batch}"));
    let job = ctx.rf_job(
        [
            "batch".into(),
            "export".into(),
            std::ffi::OsString::from(batch),
            "--out".into(),
            rf_dir.clone().into_os_string(),
        ],
        "cache-jobs",
    );
    let (m, server, _) = ctx.measure(&job)?;
    let (rf_files, _) = tree_stats(&rf_dir);
    let ok = match expect {
        Expect::Files(n) => rf_files == n,
        Expect::Archives => rf_files >= listed && rf_files > 0,
    };
    if !ok {
        return Err(format!(
            "rf export of {batch} left {rf_files} files ({listed} listed)"
        ));
    }
    rows.push(row(Tool::Rf, m, server));

    let peer_dir = ctx.run_dir.join(format!("export-peer-{batch}"));
    if let Some(job) = with_peer
        .then(|| {
            ctx.peer_job([
                "data-staging".into(),
                "export-batch".into(),
                "--batch-id".into(),
                std::ffi::OsString::from(batch),
                "--target-dir".into(),
                peer_dir.clone().into_os_string(),
            ])
        })
        .flatten()
    {
        let (m, server, _) = ctx.measure(&job)?;
        let (peer_files, _) = tree_stats(&peer_dir);
        if peer_files != rf_files {
            return Err(format!(
                "inference-cli export of {batch} holds {peer_files} files, rf's {rf_files}"
            ));
        }
        rows.push(row(Tool::Peer, m, server));
    }
    Ok(rows)
}

/// The raw export of archives: `curl` each one and unpack it with `tar`,
/// eight at a time; prints each archive's size.
fn raw_unpack_job(ctx: &Ctx, files: &[Value], dir: &Path, batch: &str) -> Result<Job, String> {
    let mut script = String::from("set -uo pipefail\n");
    let dir_s = dir.to_string_lossy();
    for (i, f) in files.iter().enumerate() {
        let url = f
            .get("downloadURL")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let archive = format!("{dir_s}/.archive-{i}");
        script.push_str(&format!(
            "{{ curl -sS --fail -w '%{{size_download}}\\n' -o {a} {u} && tar -xzf {a} -C {d} && rm {a}; }} &\n",
            a = sh_quote(&archive),
            u = sh_quote(url),
            d = sh_quote(&dir_s),
        ));
        if (i + 1) % 8 == 0 {
            script.push_str("wait\n");
        }
    }
    script.push_str("wait\n");
    let path = ctx.run_dir.join(format!("export-{batch}.sh"));
    fs::write(&path, script).map_err(io("write", &path))?;
    Ok(Job::new("bash", [path.into_os_string()]))
}

/// `rf --help`: median wall of 21 runs, peak RSS of 3.
fn startup(ctx: &Ctx) -> Result<Startup, String> {
    let mut walls = Vec::new();
    for _ in 0..21 {
        let start = Instant::now();
        let status = Command::new(&ctx.rf)
            .arg("--help")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|e| format!("cannot run rf --help: {e}"))?;
        walls.push(start.elapsed().as_secs_f64() * 1000.0);
        if !status.success() {
            return Err(format!("rf --help failed ({status})"));
        }
    }
    walls.sort_by(f64::total_cmp);
    let mut rss: Option<f64> = None;
    if ctx.with_time {
        for _ in 0..3 {
            let (m, _) =
                bench_measure::run_measured(&Job::new(&ctx.rf, ["--help"]), &ctx.run_dir, true)?;
            if let Some(r) = m.rss_mib() {
                rss = Some(rss.map_or(r, |old: f64| old.max(r)));
            }
        }
    }
    Ok(Startup {
        median_ms: walls[walls.len() / 2],
        rss_mib: rss,
        runs: walls.len(),
    })
}

/// rf and raw ingest, then export, at 2,000, 20,000 and 200,000 files.
fn scaling(ctx: &Ctx, cache: &Path) -> Result<Vec<ScalePoint>, String> {
    let mut points = Vec::new();
    for n in [2000, 20_000, 200_000] {
        let spec = Spec::small_images(n);
        let dir = bench_data::ensure(cache, &spec)?;
        bench_data::warm(&dir, &spec)?;
        let mut spec_s = spec.clone();
        spec_s.name = format!("scale-{n}");
        // Same files, own batch names.
        let raw_batch = format!("raw-{}", spec_s.name);
        let job = raw_ingest_job(ctx, &spec, &dir, &raw_batch)?;
        let (raw, _, _) = ctx.measure(&job)?;
        ctx.verify_count(&raw_batch, n as u64)?;
        let rf_batch = format!("rf-{}", spec_s.name);
        let job = ctx.rf_job(
            [
                "batch".into(),
                "ingest".into(),
                "--images".into(),
                dir.as_os_str().to_owned(),
                "--batch-id".into(),
                std::ffi::OsString::from(&rf_batch),
            ],
            &format!("cache-{rf_batch}"),
        );
        let (rf, _, _) = ctx.measure(&job)?;
        ctx.verify_count(&rf_batch, n as u64)?;
        let rows = export_all(
            ctx,
            &rf_batch,
            String::new(),
            Expect::Files(n as u64),
            false,
        )?;
        let pick = |tool| rows.iter().find(|r| r.tool == tool).map(|r| r.m);
        points.push(ScalePoint {
            files: n as u64,
            bytes: spec.total_bytes(),
            rf,
            raw: Some(raw),
            export_rf: pick(Tool::Rf),
            export_raw: pick(Tool::Raw),
        });
    }
    Ok(points)
}

fn first_line(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().next().map(str::to_string))
        .unwrap_or_else(|| "unknown".into())
}

/// Cores, CPU, RAM, kernel, rustc, curl (and the peer's version).
fn machine_description(peer: bool) -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let ram = fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|k| k.parse::<f64>().ok())
        })
        .map_or("unknown RAM".into(), |kib| {
            format!("{:.0} GiB RAM", kib / 1024.0 / 1024.0)
        });
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    let mut s = format!(
        "{cores} cores ({cpu}), {ram}, Linux {kernel}, {}, {}",
        first_line("rustc", &["--version"]),
        first_line("curl", &["--version"])
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" "),
    );
    if peer {
        s.push_str(", inference-cli 1.8.3 (");
        s.push_str(&first_line(
            &compat::venv_dir().join("bin/python").to_string_lossy(),
            &["--version"],
        ));
        s.push(')');
    }
    s
}

fn today() -> String {
    first_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"])
}

fn render_section(machine: &str, command: &str, rows: &[Row], startup: &Startup) -> String {
    format!(
        "### Latest run: {}\n\n\
         Machine: {machine}.\n\n\
         Command: `{command}` (release build; `rf emulator serve --item-delay-ms 0 --index-delay-ms 0` on a loopback port; \
         datasets under `target/bench/data`, read once before the runs so all of them start \
         from the page cache).\n\n\
         {}\n\
         Goals (issue 7):\n\n\
         {}{}\n\
         How to read it: with `--repeat N` each line is the median of N runs. *Wall ×raw* is the run's wall time over the raw limit's; *Peer/rf* \
         compares the official client with rf. CPU is user+system of the client and its \
         children (GNU time); *Server CPU* is what the emulator spent meanwhile. Ingest times \
         end when the client exits (no count wait; the count is verified afterwards and must \
         equal the file count). Every export delivers the same files: raw, rf and inference-cli \
         all unpack the job's archives (raw with `curl | tar`).\n",
        today(),
        bench_report::render_table(rows),
        bench_report::render_goals(rows),
        bench_report::render_startup(startup),
    )
}

fn render_scaling_section(machine: &str, points: &[ScalePoint]) -> String {
    format!(
        "#### Latest scaling run: {}\n\n\
         Machine: {machine}. Command: `cargo xtask bench --scaling`; rf and raw ingest of \
         4 KB JPEGs into the same emulator, then rf and raw export of the batch rf made.\n\n{}",
        today(),
        bench_report::render_scaling(points)
    )
}

/// The component benchmarks, in release mode: ingest memory at 100k files
/// and for a 1 GiB video (rf-batch), and emulator indexing throughput.
fn components() -> Result<(), String> {
    let ingest = [
        "run",
        "--release",
        "-p",
        "rf-batch",
        "--example",
        "bench_ingest",
        "--",
    ];
    run("cargo", &[&ingest[..], &["files", "100000"]].concat())?;
    run("cargo", &[&ingest[..], &["video", "1024"]].concat())?;
    run(
        "cargo",
        &[
            "run",
            "--release",
            "-p",
            "rf-emulator",
            "--example",
            "bench_index",
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn options() {
        assert_eq!(parse_options(&[]).unwrap(), Options::default());
        let o = parse_options(&args(&["--peer", "--sizes", "10,200", "--no-write"])).unwrap();
        assert!(o.peer && !o.write && o.media && o.export);
        assert_eq!(o.sizes, vec![10, 200]);
        assert!(parse_options(&args(&["--sizes"])).is_err());
        assert!(parse_options(&args(&["--sizes", "0"])).is_err());
        assert!(parse_options(&args(&["--sizes", "1,x"])).is_err());
        assert!(
            parse_options(&args(&["--fast"]))
                .unwrap_err()
                .contains("usage")
        );
        let o = parse_options(&args(&[
            "--no-media",
            "--no-export",
            "--scaling",
            "--components",
        ]))
        .unwrap();
        assert!(!o.media && !o.export && o.scaling && o.components);
        assert_eq!(parse_options(&args(&["--repeat", "3"])).unwrap().repeat, 3);
        assert!(parse_options(&args(&["--repeat", "0"])).is_err());
        assert!(parse_options(&args(&["--repeat"])).is_err());
    }

    #[test]
    fn wan_options() {
        let o = parse_options(&args(&[
            "--wan",
            "--profiles",
            "wan,far",
            "--wan-size",
            "300",
            "--wan-peer-size",
            "100",
            "--wan-sweep",
            "32,128",
            "--wan-videos",
            "--wan-chaos",
            "0.2",
            "--wan-http2",
            "--wan-job",
        ]))
        .unwrap();
        assert!(o.wan);
        assert_eq!(o.profiles, vec!["wan", "far"]);
        let w = &o.wan_options;
        assert_eq!(
            (w.size, w.peer_size, w.videos, w.http2, w.job),
            (300, Some(100), true, true, true)
        );
        assert_eq!(
            (w.sweep.clone(), w.chaos_percent),
            (vec![32, 128], Some(20))
        );
        assert_eq!(Options::default().profiles, vec!["lan", "wan", "far"]);
        assert!(parse_options(&args(&["--profiles", "moon"])).is_err());
        assert!(parse_options(&args(&["--wan-size", "0"])).is_err());
        assert!(parse_options(&args(&["--wan-chaos", "1.5"])).is_err());
        assert!(parse_options(&args(&["--wan-sweep", "0"])).is_err());
        assert!(parse_options(&args(&["--wan-other"])).is_err());
    }

    #[test]
    fn labels() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(20_000), "20,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(
            dataset_label(&Spec::small_images(20_000)),
            "20,000 × 4 KB JPEG"
        );
        assert_eq!(dataset_label(&Spec::videos()), "3 × 48 MiB AVI");
        assert_eq!(command_line(&args(&["--peer"])), "cargo xtask bench --peer");
    }

    #[test]
    fn quoting() {
        assert_eq!(sh_quote("a b"), "'a b'");
        assert_eq!(sh_quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn tree_stats_skip_hidden_entries() {
        let dir = std::env::temp_dir().join(format!("rf-bench-tree-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("a/.rf-state")).unwrap();
        fs::create_dir_all(dir.join(".rf-state")).unwrap();
        fs::write(dir.join("a/x"), b"12").unwrap();
        fs::write(dir.join("y"), b"345").unwrap();
        fs::write(dir.join(".rf-state/m.json"), b"{}").unwrap();
        assert_eq!(tree_stats(&dir), (2, 5));
        fs::remove_dir_all(&dir).unwrap();
    }
}
