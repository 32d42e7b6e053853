//! `cargo xtask bench --wan`: rf's defaults against its own fixed
//! concurrencies, raw curl and (with `--peer`) inference-cli 1.8.3, through
//! the emulator's network shaping (`rf emulator serve --latency-ms
//! --bandwidth-mbps`, see docs/emulator.md) in named link profiles.
//!
//! Per profile: one emulator with that link; the dataset (`--wan-size N`
//! small JPEGs) ingested by rf with defaults, by rf `--concurrency 8` and by
//! the peer, each batch count checked; then the rf batch exported by every
//! contender, each export's file count checked. The table gives wall, CPU,
//! peak RSS, MB/s against the cap and the concurrency rf settled on (its
//! `--json` report).

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{Ctx, Expect, io, start_emulator, tree_stats};
use crate::bench_data::{self, Kind, Spec};
use crate::bench_measure::{Job, Measured};

/// One named link.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Profile {
    pub(super) name: &'static str,
    latency_ms: u64,
    mbps: Option<f64>,
}

/// The profiles, in order.
pub(super) const PROFILES: [Profile; 3] = [
    Profile {
        name: "lan",
        latency_ms: 1,
        mbps: None,
    },
    Profile {
        name: "wan",
        latency_ms: 40,
        mbps: Some(200.0),
    },
    Profile {
        name: "far",
        latency_ms: 150,
        mbps: Some(50.0),
    },
];

/// The profiles named in a comma-separated list.
pub(super) fn parse_profiles(list: &str) -> Result<Vec<Profile>, String> {
    list.split(',')
        .map(|n| {
            PROFILES
                .iter()
                .find(|p| p.name == n.trim())
                .copied()
                .ok_or_else(|| format!("--profiles: unknown profile {n:?} (lan, wan, far)"))
        })
        .collect()
}

impl Profile {
    fn shaping_args(&self) -> Vec<String> {
        let mut args = vec!["--latency-ms".to_string(), self.latency_ms.to_string()];
        if let Some(m) = self.mbps {
            args.extend(["--bandwidth-mbps".to_string(), m.to_string()]);
        }
        args
    }

    fn describe(&self) -> String {
        match self.mbps {
            Some(m) => format!("`{}`: {} ms, {m} Mbit/s", self.name, self.latency_ms),
            None => format!("`{}`: {} ms, no cap", self.name, self.latency_ms),
        }
    }
}

/// What `--wan` runs in every profile besides its fixed contenders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WanOptions {
    /// Small JPEGs in the dataset (`--wan-size`).
    pub(crate) size: usize,
    /// inference-cli's dataset size instead (`--wan-peer-size`); rf default
    /// runs that dataset too, so the two compare at one size.
    pub(crate) peer_size: Option<usize>,
    /// rf `--concurrency` values; curl `--parallel-max` takes those above 1
    /// (`--wan-sweep`).
    pub(crate) sweep: Vec<u32>,
    /// Also 3 videos of 48 MiB, ingested and exported by rf default
    /// (`--wan-videos`): how much of the cap a large file gets.
    pub(crate) videos: bool,
    /// Chaos faults added to every profile, percent of requests
    /// (`--wan-chaos RATE`); curl, which does not retry, is left out then.
    pub(crate) chaos_percent: Option<u32>,
    /// Also rf default over cleartext HTTP/2 (`--wan-http2`): ingest and
    /// export, and the videos' with `--wan-videos`.
    pub(crate) http2: bool,
    /// Also a job's output (`--wan-job`): a job over the rf batch, its
    /// export stage's archives downloaded by rf default, curl and
    /// inference-cli.
    pub(crate) job: bool,
}

impl Default for WanOptions {
    fn default() -> Self {
        WanOptions {
            size: 1000,
            peer_size: None,
            sweep: vec![1, 8, 32, 128],
            videos: false,
            chaos_percent: None,
            http2: false,
            job: false,
        }
    }
}

fn positive(flag: &str, v: Option<&String>) -> Result<usize, String> {
    match v.map(|v| v.trim().parse::<usize>()) {
        Some(Ok(n)) if n > 0 => Ok(n),
        _ => Err(format!("{flag} needs a positive number, got {v:?}")),
    }
}

impl WanOptions {
    /// Takes one `--wan-*` option, and its value from `rest` if it has one.
    pub(crate) fn parse_arg(
        &mut self,
        flag: &str,
        rest: &mut std::slice::Iter<'_, String>,
    ) -> Result<(), String> {
        match flag {
            "--wan-videos" => self.videos = true,
            "--wan-http2" => self.http2 = true,
            "--wan-job" => self.job = true,
            "--wan-size" => self.size = positive(flag, rest.next())?,
            "--wan-peer-size" => self.peer_size = Some(positive(flag, rest.next())?),
            "--wan-sweep" => {
                let list = rest.next().ok_or("--wan-sweep needs a list, e.g. 32,128")?;
                self.sweep = list
                    .split(',')
                    .map(|v| positive(flag, Some(&v.to_string())).map(|n| n as u32))
                    .collect::<Result<_, _>>()?;
            }
            "--wan-chaos" => {
                let value = rest.next();
                let rate = value.and_then(|v| v.parse::<f64>().ok());
                self.chaos_percent = match rate {
                    Some(r) if r > 0.0 && r <= 1.0 => Some((r * 100.0).round() as u32),
                    _ => return Err(format!("--wan-chaos needs a rate in (0, 1], got {value:?}")),
                };
            }
            other => return Err(format!("unknown option {other:?}")),
        }
        Ok(())
    }
}

/// One measured contender.
struct Line {
    op: &'static str,
    who: String,
    files: u64,
    m: Measured,
    bytes: u64,
    settled: Option<String>,
    /// Why it failed (the row shows no figures then).
    failed: Option<String>,
}

impl Line {
    fn failed(op: &'static str, who: &str, files: u64, why: String) -> Line {
        eprintln!("bench: {who} {op} failed: {why}");
        Line {
            op,
            who: who.to_string(),
            files,
            m: Measured::default(),
            bytes: 0,
            settled: None,
            failed: Some(why),
        }
    }
}

/// The concurrency an rf `--json` report says it ran with: the last JSON
/// value of its output (pretty-printed over many lines, maybe after
/// others), read as a stream of values, never line by line.
fn settled_of(stdout: &str) -> Option<String> {
    let v: Value = serde_json::Deserializer::from_str(stdout)
        .into_iter::<Value>()
        .map_while(Result::ok)
        .last()?;
    let c = v.get("concurrency")?;
    let settled = c.get("settled")?.as_u64()?;
    let peak = c.get("peak")?.as_u64()?;
    Some(if c["concurrency"].get("fixed").is_some() {
        format!("{settled} (fixed)")
    } else {
        format!("{settled} (peak {peak})")
    })
}

/// Measures an rf command.
fn rf_line(ctx: &Ctx, op: &'static str, who: &str, args: Vec<OsString>) -> Result<Line, String> {
    let cache = format!("cache-{op}-{}", who.replace(' ', "_"));
    warm_up(ctx, &cache)?;
    let job = ctx.rf_job(args, &cache);
    let (m, _, stdout) = ctx.measure(&job)?;
    Ok(Line {
        op,
        who: who.to_string(),
        files: 0,
        m,
        bytes: 0,
        settled: settled_of(&stdout),
        failed: None,
    })
}

/// One unmeasured command in `cache`, so that the measured one starts as
/// rf does for anyone who has used it with this key before: with the
/// key's workspace remembered (a first command ever adds one round trip,
/// the lookup).
fn warm_up(ctx: &Ctx, cache: &str) -> Result<(), String> {
    let job = ctx.rf_job(["batch", "list", "--limit", "1"], cache);
    crate::bench_measure::run_measured(&job, &ctx.run_dir, false).map(drop)
}

/// A contender's line, or a line saying how it failed (the run goes on).
fn or_failed(op: &'static str, who: &str, files: u64, r: Result<Line, String>) -> Line {
    r.unwrap_or_else(|e| Line::failed(op, who, files, e))
}

/// How rf is set up for one contender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Setup {
    /// rf's defaults: the adaptive limit.
    Default,
    /// `--concurrency N`.
    Fixed(u32),
    /// The defaults over cleartext HTTP/2 (`--http2-prior-knowledge`).
    Http2,
}

impl Setup {
    fn who(self) -> String {
        match self {
            Setup::Default => "rf default".to_string(),
            Setup::Fixed(c) => format!("rf --concurrency {c}"),
            Setup::Http2 => "rf default, HTTP/2".to_string(),
        }
    }

    /// Names this setup's batch or directory apart from the others'.
    fn tag(self) -> String {
        match self {
            Setup::Default => "default".to_string(),
            Setup::Fixed(c) => format!("c{c}"),
            Setup::Http2 => "h2".to_string(),
        }
    }

    /// The global options after `--json`.
    fn flags(self) -> Vec<OsString> {
        match self {
            Setup::Default => Vec::new(),
            Setup::Fixed(c) => vec!["--concurrency".into(), c.to_string().into()],
            Setup::Http2 => vec!["--http2-prior-knowledge".into()],
        }
    }
}

/// rf's ingest of `spec` into `batch`, its count checked.
fn rf_ingest(ctx: &Ctx, spec: &Spec, dir: &Path, batch: &str, setup: Setup) -> Line {
    let n = spec.count as u64;
    let who = setup.who();
    let flag = match spec.kind {
        Kind::Images => "--images",
        Kind::Videos => "--videos",
    };
    let mut args: Vec<OsString> = vec!["--json".into()];
    args.extend(setup.flags());
    args.extend(["batch".into(), "ingest".into(), flag.into(), dir.into()]);
    args.extend(["--batch-id".into(), batch.into()]);
    let r = rf_line(ctx, "ingest", &who, args).and_then(|mut line| {
        ctx.verify_count(batch, n)?;
        line.files = n;
        line.bytes = spec.total_bytes();
        Ok(line)
    });
    or_failed("ingest", &who, n, r)
}

/// The row's operation: a batch's files, or a job's output (archives).
fn export_op(expect: Expect) -> &'static str {
    match expect {
        Expect::Files(_) => "export",
        Expect::Archives => "job output",
    }
}

/// The files a failed row names (a job's output: not known).
fn expected_files(expect: Expect) -> u64 {
    match expect {
        Expect::Files(n) => n,
        Expect::Archives => 0,
    }
}

/// What `who`'s export left in `dir` (files, bytes): exactly `n` files, or
/// for archives at least one.
fn check_export(who: &str, dir: &Path, expect: Expect) -> Result<(u64, u64), String> {
    let (files, bytes) = tree_stats(dir);
    match expect {
        Expect::Files(n) if files != n => {
            Err(format!("{who} exported {files} files, expected {n}"))
        }
        Expect::Archives if files == 0 => Err(format!("{who} exported nothing")),
        _ => Ok((files, bytes)),
    }
}

/// rf's export of `batch` into a fresh directory, its files counted.
fn rf_export(ctx: &Ctx, batch: &str, expect: Expect, setup: Setup) -> Line {
    let out = ctx.run_dir.join(format!("export-{batch}-{}", setup.tag()));
    let (who, op) = (setup.who(), export_op(expect));
    let mut args: Vec<OsString> = vec!["--json".into()];
    args.extend(setup.flags());
    args.extend(["batch".into(), "export".into(), batch.into()]);
    args.extend(["--out".into(), out.clone().into_os_string()]);
    let r = rf_line(ctx, op, &who, args).and_then(|mut line| {
        (line.files, line.bytes) = check_export(&who, &out, expect)?;
        Ok(line)
    });
    let _ = fs::remove_dir_all(&out);
    or_failed(op, &who, expected_files(expect), r)
}

/// curl of every listed file of `batch` at `parallel`, into a fresh
/// directory (archives are downloaded, not unpacked).
fn curl_export(ctx: &Ctx, batch: &str, expect: Expect, parallel: u32) -> Line {
    let who = format!("curl --parallel-max {parallel}");
    let op = export_op(expect);
    let dir = ctx.run_dir.join(format!("curl-{batch}-{parallel}"));
    let r = curl_run(ctx, batch, expect, parallel, &dir).map(|(m, files, bytes)| Line {
        op,
        who: who.clone(),
        files,
        m,
        bytes,
        settled: None,
        failed: None,
    });
    let _ = fs::remove_dir_all(&dir);
    or_failed(op, &who, expected_files(expect), r)
}

/// Runs curl over the listing of `batch`; its measurement, files and bytes.
fn curl_run(
    ctx: &Ctx,
    batch: &str,
    expect: Expect,
    parallel: u32,
    dir: &Path,
) -> Result<(Measured, u64, u64), String> {
    let listing = super::RawListing::fetch(ctx, batch, &expect)?;
    fs::create_dir_all(dir).map_err(io("create", dir))?;
    let cfg = fs::read_to_string(&listing.cfg).map_err(io("read", &listing.cfg))?;
    let raw = listing.raw_dir.to_string_lossy().into_owned();
    let cfg = cfg.replace(&raw, &dir.to_string_lossy());
    let path = ctx.run_dir.join(format!("curl-{batch}-{parallel}.cfg"));
    fs::write(&path, cfg).map_err(io("write", &path))?;
    let parallel_text = parallel.to_string();
    let path_text = path.to_string_lossy();
    let args = [
        "-sS",
        "--fail",
        "--parallel",
        "--parallel-max",
        &parallel_text,
        "-K",
        &path_text,
    ];
    let (m, _, _) = ctx.measure(&Job::new("curl", args))?;
    let listed = Expect::Files(listing.files.len() as u64);
    let (files, bytes) = check_export(&format!("curl --parallel-max {parallel}"), dir, listed)?;
    Ok((m, files, bytes))
}

const PEER: &str = "inference-cli 1.8.3";

/// inference-cli's ingest of `spec` into `batch` (`None` without `--peer`).
fn peer_ingest(ctx: &Ctx, spec: &Spec, dir: &Path, batch: &str) -> Option<Line> {
    let n = spec.count as u64;
    let args: Vec<OsString> = vec![
        "data-staging".into(),
        "create-batch-of-images".into(),
        "--images-dir".into(),
        dir.into(),
        "--batch-id".into(),
        batch.into(),
    ];
    let job = ctx.peer_job(args)?;
    let measured = ctx.measure(&job);
    bench_data::clean_client_files(dir);
    let r = measured.and_then(|(m, _, _)| {
        ctx.verify_count(batch, n)?;
        Ok(peer_row("ingest", n, m, spec.total_bytes()))
    });
    Some(or_failed("ingest", PEER, n, r))
}

/// inference-cli's export of `batch` (`None` without `--peer`).
fn peer_export(ctx: &Ctx, batch: &str, expect: Expect) -> Option<Line> {
    let out = ctx.run_dir.join(format!("export-{batch}-peer"));
    let op = export_op(expect);
    let args: Vec<OsString> = vec![
        "data-staging".into(),
        "export-batch".into(),
        "--batch-id".into(),
        batch.into(),
        "--target-dir".into(),
        out.clone().into_os_string(),
    ];
    let job = ctx.peer_job(args)?;
    let r = ctx.measure(&job).and_then(|(m, _, _)| {
        let (files, bytes) = check_export("inference-cli", &out, expect)?;
        Ok(peer_row(op, files, m, bytes))
    });
    let _ = fs::remove_dir_all(&out);
    Some(or_failed(op, PEER, expected_files(expect), r))
}

fn peer_row(op: &'static str, files: u64, m: Measured, bytes: u64) -> Line {
    Line {
        op,
        who: PEER.into(),
        files,
        m,
        bytes,
        settled: None,
        failed: None,
    }
}

/// The datasets of a run, generated once into the cache.
struct Data {
    spec: Spec,
    dir: PathBuf,
    /// inference-cli's own dataset (`--wan-peer-size`).
    peer: Option<(Spec, PathBuf)>,
    /// The videos (`--wan-videos`).
    videos: Option<(Spec, PathBuf)>,
}

impl Data {
    fn ensure(cache: &Path, opts: &WanOptions) -> Result<Data, String> {
        let prepare = |spec: Spec| -> Result<(Spec, PathBuf), String> {
            let dir = bench_data::ensure(cache, &spec)?;
            bench_data::clean_client_files(&dir);
            bench_data::warm(&dir, &spec)?;
            Ok((spec, dir))
        };
        let (spec, dir) = prepare(Spec::small_images(opts.size))?;
        let peer = match opts.peer_size {
            Some(n) if n != opts.size => Some(prepare(Spec::small_images(n))?),
            _ => None,
        };
        let videos = if opts.videos {
            Some(prepare(Spec::videos())?)
        } else {
            None
        };
        Ok(Data {
            spec,
            dir,
            peer,
            videos,
        })
    }
}

/// The rf and curl contenders on the main dataset.
fn measure_main(ctx: &Ctx, opts: &WanOptions, data: &Data) -> Vec<Line> {
    let n = data.spec.count as u64;
    let mut lines = vec![rf_ingest(
        ctx,
        &data.spec,
        &data.dir,
        "wan-rf",
        Setup::Default,
    )];
    if opts.sweep.contains(&8) {
        lines.push(rf_ingest(
            ctx,
            &data.spec,
            &data.dir,
            "wan-c8",
            Setup::Fixed(8),
        ));
    }
    if opts.http2 {
        lines.push(rf_ingest(
            ctx,
            &data.spec,
            &data.dir,
            "wan-h2",
            Setup::Http2,
        ));
    }
    for setup in default_and_http2(opts) {
        lines.push(rf_export(ctx, "wan-rf", Expect::Files(n), setup));
    }
    for &c in &opts.sweep {
        lines.push(rf_export(ctx, "wan-rf", Expect::Files(n), Setup::Fixed(c)));
    }
    if opts.chaos_percent.is_none() {
        for &p in opts.sweep.iter().filter(|&&p| p > 1) {
            lines.push(curl_export(ctx, "wan-rf", Expect::Files(n), p));
        }
    }
    lines
}

/// inference-cli, and rf default on its dataset when that is its own.
fn measure_peer(ctx: &Ctx, data: &Data) -> Vec<Line> {
    let mut lines = Vec::new();
    let (spec, dir, export_batch) = match &data.peer {
        Some((spec, dir)) => {
            lines.push(rf_ingest(
                ctx,
                spec,
                dir,
                "wan-rf-peer-size",
                Setup::Default,
            ));
            lines.push(rf_export(
                ctx,
                "wan-rf-peer-size",
                Expect::Files(spec.count as u64),
                Setup::Default,
            ));
            (spec, dir, "wan-rf-peer-size")
        }
        None => (&data.spec, &data.dir, "wan-rf"),
    };
    lines.extend(peer_ingest(ctx, spec, dir, "wan-peer"));
    lines.extend(peer_export(
        ctx,
        export_batch,
        Expect::Files(spec.count as u64),
    ));
    lines
}

/// A job over the rf batch (not measured), then its export stage's
/// output (archives) downloaded by rf default, curl at the sweep's largest
/// level and inference-cli (`--wan-job`).
fn measure_job_output(ctx: &Ctx, opts: &WanOptions) -> Vec<Line> {
    let output = match super::run_job_over(ctx, "wan-rf", "job-wan") {
        Ok(output) => output,
        Err(e) => return vec![Line::failed("job output", "rf default", 0, e)],
    };
    let mut lines = vec![rf_export(ctx, &output, Expect::Archives, Setup::Default)];
    if opts.chaos_percent.is_none()
        && let Some(&parallel) = opts.sweep.iter().max()
    {
        lines.push(curl_export(ctx, &output, Expect::Archives, parallel));
    }
    lines.extend(peer_export(ctx, &output, Expect::Archives));
    lines
}

/// rf's defaults, and over HTTP/2 too with `--wan-http2`.
fn default_and_http2(opts: &WanOptions) -> Vec<Setup> {
    let mut setups = vec![Setup::Default];
    if opts.http2 {
        setups.push(Setup::Http2);
    }
    setups
}

/// Every contender in one profile.
fn measure_profile(ctx: &Ctx, opts: &WanOptions, data: &Data) -> Vec<Line> {
    let mut lines = measure_main(ctx, opts, data);
    if ctx.inference.is_some() {
        lines.extend(measure_peer(ctx, data));
    }
    if opts.job {
        lines.extend(measure_job_output(ctx, opts));
    }
    if let Some((spec, dir)) = &data.videos {
        for setup in default_and_http2(opts) {
            let batch = format!("wan-videos-{}", setup.tag());
            lines.push(rf_ingest(ctx, spec, dir, &batch, setup));
            let files = Expect::Files(spec.count as u64);
            lines.push(rf_export(ctx, &batch, files, setup));
        }
    }
    lines
}

fn render(profile: &Profile, opts: &WanOptions, data: &Data, lines: &[Line]) -> String {
    let cap = profile.mbps.map(|m| m / 8.0);
    let chaos = opts
        .chaos_percent
        .map_or(String::new(), |p| format!(", {p}% chaos faults"));
    let mut s = format!(
        "#### {}{chaos} ({} small JPEGs, {:.1} MB{})\n\n| op | contender | files | wall s | CPU s | peak RSS MiB | MB/s | of cap | rf settled at |\n|---|---|---:|---:|---:|---:|---:|---:|---|\n",
        profile.describe(),
        data.spec.count,
        data.spec.total_bytes() as f64 / 1e6,
        if data.videos.is_some() {
            "; 3 videos of 48 MiB"
        } else {
            ""
        }
    );
    for l in lines {
        if let Some(why) = &l.failed {
            let why = why.replace('|', "/").replace('\n', " ");
            s.push_str(&format!(
                "| {} | {} | {} | failed: {why} | | | | | |\n",
                l.op, l.who, l.files
            ));
            continue;
        }
        let mbs = l.bytes as f64 / l.m.wall.max(1e-9) / 1e6;
        s.push_str(&format!(
            "| {} | {} | {} | {:.2} | {} | {} | {:.2} | {} | {} |\n",
            l.op,
            l.who,
            l.files,
            l.m.wall,
            l.m.cpu.map_or("n/a".into(), |c| format!("{c:.2}")),
            l.m.rss_mib().map_or("n/a".into(), |r| format!("{r:.1}")),
            mbs,
            cap.map_or("—".into(), |c| format!("{:.0}%", mbs / c * 100.0)),
            l.settled.as_deref().unwrap_or("")
        ));
    }
    s
}

/// The emulator arguments of `profile` (and `--wan-chaos`).
fn emulator_args(profile: &Profile, opts: &WanOptions) -> Vec<String> {
    let mut args = profile.shaping_args();
    if let Some(p) = opts.chaos_percent {
        let rate = f64::from(p) / 100.0;
        args.extend([
            "--chaos-rate".into(),
            rate.to_string(),
            "--chaos-seed".into(),
            "16".into(),
        ]);
    }
    args
}

/// Runs every profile; returns the section for docs/benchmarks.md.
pub(super) fn run_profiles(
    base: &super::WanBase,
    profiles: &[Profile],
    opts: &WanOptions,
) -> Result<String, String> {
    let data = Data::ensure(&base.cache, opts)?;
    let mut section = String::new();
    for profile in profiles {
        let run_dir = base.run_dir.join(format!("wan-{}", profile.name));
        fs::create_dir_all(&run_dir).map_err(io("create", &run_dir))?;
        let server = start_emulator(&base.rf, &run_dir, &emulator_args(profile, opts))?;
        let ctx = Ctx {
            rf: base.rf.clone(),
            inference: base.inference.clone(),
            server,
            run_dir: run_dir.clone(),
            with_time: base.with_time,
            ticks: crate::bench_measure::clock_ticks(),
        };
        let lines = measure_profile(&ctx, opts, &data);
        let table = render(profile, opts, &data, &lines);
        eprintln!("{table}");
        section.push_str(&table);
        section.push('\n');
        drop(ctx);
        // The emulator's data of a large run takes gigabytes: gone once
        // the profile is measured.
        let _ = fs::remove_dir_all(&run_dir);
    }
    Ok(section)
}

#[cfg(test)]
mod tests {
    use super::settled_of;

    #[test]
    fn settled_is_read_from_pretty_printed_json() {
        let pretty = serde_json::to_string_pretty(&serde_json::json!({
            "batch": "b",
            "concurrency": {
                "concurrency": {"adaptive": {"initial": 32, "max": 128}},
                "settled": 96, "peak": 128, "decreases": 0, "pauses": 0
            }
        }))
        .unwrap();
        assert_eq!(settled_of(&pretty).as_deref(), Some("96 (peak 128)"));
        let fixed = r#"{"note": 1}
{"concurrency": {"concurrency": {"fixed": 8}, "settled": 8, "peak": 8}}"#;
        assert_eq!(settled_of(fixed).as_deref(), Some("8 (fixed)"));
        assert_eq!(settled_of("not json"), None);
    }
}
