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
use std::path::Path;

use serde_json::Value;

use super::{Ctx, io, start_emulator, tree_stats};
use crate::bench_data::{self, Spec};
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

/// One measured contender.
struct Line {
    op: &'static str,
    who: String,
    m: Measured,
    bytes: u64,
    settled: Option<String>,
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

/// Measures an rf command; checks the batch or directory afterwards.
fn rf_line(ctx: &Ctx, op: &'static str, who: &str, args: Vec<OsString>) -> Result<Line, String> {
    let job = ctx.rf_job(args, &format!("cache-{op}-{who}"));
    let (m, _, stdout) = ctx.measure(&job)?;
    Ok(Line {
        op,
        who: who.to_string(),
        m,
        bytes: 0,
        settled: settled_of(&stdout),
    })
}

fn rf_ingest(ctx: &Ctx, spec: &Spec, dir: &Path, fixed: Option<u32>) -> Result<Line, String> {
    let batch = match fixed {
        Some(n) => format!("wan-c{n}"),
        None => "wan-rf".to_string(),
    };
    let mut args: Vec<OsString> = vec!["--json".into()];
    if let Some(n) = fixed {
        args.extend(["--concurrency".into(), n.to_string().into()]);
    }
    args.extend([
        "batch".into(),
        "ingest".into(),
        "--images".into(),
        dir.as_os_str().to_owned(),
        "--batch-id".into(),
        batch.clone().into(),
    ]);
    let who = fixed.map_or("rf default".to_string(), |n| {
        format!("rf --concurrency {n}")
    });
    let mut line = rf_line(ctx, "ingest", &who, args)?;
    ctx.verify_count(&batch, spec.count as u64)?;
    line.bytes = spec.total_bytes();
    Ok(line)
}

fn rf_export(ctx: &Ctx, n: u64, fixed: Option<u32>) -> Result<Line, String> {
    let tag = fixed.map_or("default".to_string(), |c| format!("c{c}"));
    let out = ctx.run_dir.join(format!("wan-export-{tag}"));
    let mut args: Vec<OsString> = vec!["--json".into()];
    if let Some(c) = fixed {
        args.extend(["--concurrency".into(), c.to_string().into()]);
    }
    args.extend([
        "batch".into(),
        "export".into(),
        "wan-rf".into(),
        "--out".into(),
        out.clone().into_os_string(),
    ]);
    let who = fixed.map_or("rf default".to_string(), |c| {
        format!("rf --concurrency {c}")
    });
    let mut line = rf_line(ctx, "export", &who, args)?;
    let (files, bytes) = tree_stats(&out);
    if files != n {
        return Err(format!("{who} exported {files} files, expected {n}"));
    }
    line.bytes = bytes;
    Ok(line)
}

/// curl of every listed file at `parallel`, into a fresh directory.
fn curl_export(ctx: &Ctx, n: u64, parallel: u32) -> Result<Line, String> {
    let listing = super::RawListing::fetch(ctx, "wan-rf", &super::Expect::Files(n))?;
    let dir = ctx.run_dir.join(format!("wan-curl-{parallel}"));
    fs::create_dir_all(&dir).map_err(io("create", &dir))?;
    let cfg = fs::read_to_string(&listing.cfg).map_err(io("read", &listing.cfg))?;
    let raw = listing.raw_dir.to_string_lossy().into_owned();
    let cfg = cfg.replace(&raw, &dir.to_string_lossy());
    let path = ctx.run_dir.join(format!("wan-curl-{parallel}.cfg"));
    fs::write(&path, cfg).map_err(io("write", &path))?;
    let job = Job::new(
        "curl",
        [
            "-sS",
            "--fail",
            "--parallel",
            "--parallel-max",
            &parallel.to_string(),
            "-K",
            &path.to_string_lossy(),
        ],
    );
    let (m, _, _) = ctx.measure(&job)?;
    let (files, bytes) = tree_stats(&dir);
    if files != n {
        return Err(format!(
            "curl --parallel-max {parallel} wrote {files} files, expected {n}"
        ));
    }
    Ok(Line {
        op: "export",
        who: format!("curl --parallel-max {parallel}"),
        m,
        bytes,
        settled: None,
    })
}

/// inference-cli's ingest or export (`None` without `--peer`).
fn peer_line(ctx: &Ctx, spec: &Spec, dir: &Path, export: bool) -> Result<Option<Line>, String> {
    let out = ctx.run_dir.join("wan-export-peer");
    let args: Vec<OsString> = if export {
        let out = out.clone().into_os_string();
        vec![
            "data-staging".into(),
            "export-batch".into(),
            "--batch-id".into(),
            "wan-rf".into(),
            "--target-dir".into(),
            out,
        ]
    } else {
        let d = dir.as_os_str().to_owned();
        vec![
            "data-staging".into(),
            "create-batch-of-images".into(),
            "--images-dir".into(),
            d,
            "--batch-id".into(),
            "wan-peer".into(),
        ]
    };
    let Some(job) = ctx.peer_job(args) else {
        return Ok(None);
    };
    let measured = ctx.measure(&job);
    bench_data::clean_client_files(dir);
    let (m, _, _) = measured?;
    let bytes = if export {
        let (files, bytes) = tree_stats(&out);
        if files != spec.count as u64 {
            return Err(format!(
                "inference-cli exported {files} files, expected {}",
                spec.count
            ));
        }
        bytes
    } else {
        ctx.verify_count("wan-peer", spec.count as u64)?;
        spec.total_bytes()
    };
    let op = if export { "export" } else { "ingest" };
    Ok(Some(Line {
        op,
        who: "inference-cli 1.8.3".into(),
        m,
        bytes,
        settled: None,
    }))
}

/// Every contender in one profile.
fn measure_profile(ctx: &Ctx, spec: &Spec, dir: &Path) -> Result<Vec<Line>, String> {
    let n = spec.count as u64;
    let mut lines = vec![
        rf_ingest(ctx, spec, dir, None)?,
        rf_ingest(ctx, spec, dir, Some(8))?,
    ];
    lines.extend(peer_line(ctx, spec, dir, false)?);
    lines.push(rf_export(ctx, n, None)?);
    for c in [1, 8, 32, 128] {
        lines.push(rf_export(ctx, n, Some(c))?);
    }
    for p in [8, 32, 128] {
        lines.push(curl_export(ctx, n, p)?);
    }
    lines.extend(peer_line(ctx, spec, dir, true)?);
    Ok(lines)
}

fn render(profile: &Profile, spec: &Spec, lines: &[Line]) -> String {
    let cap = profile.mbps.map(|m| m / 8.0);
    let mut s = format!(
        "#### {} ({} small JPEGs, {:.1} MB)\n\n| op | contender | wall s | CPU s | peak RSS MiB | MB/s | of cap | rf settled at |\n|---|---|---:|---:|---:|---:|---:|---|\n",
        profile.describe(),
        spec.count,
        spec.total_bytes() as f64 / 1e6
    );
    for l in lines {
        let mbs = l.bytes as f64 / l.m.wall.max(1e-9) / 1e6;
        s.push_str(&format!(
            "| {} | {} | {:.2} | {} | {} | {:.2} | {} | {} |\n",
            l.op,
            l.who,
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

/// Runs every profile; returns the section for docs/benchmarks.md.
pub(super) fn run_profiles(
    base: &super::WanBase,
    profiles: &[Profile],
    size: usize,
) -> Result<String, String> {
    let spec = Spec::small_images(size);
    let dir = bench_data::ensure(&base.cache, &spec)?;
    bench_data::clean_client_files(&dir);
    bench_data::warm(&dir, &spec)?;
    let mut section = String::new();
    for profile in profiles {
        let run_dir = base.run_dir.join(format!("wan-{}", profile.name));
        fs::create_dir_all(&run_dir).map_err(io("create", &run_dir))?;
        let server = start_emulator(&base.rf, &run_dir, &profile.shaping_args())?;
        let ctx = Ctx {
            rf: base.rf.clone(),
            inference: base.inference.clone(),
            server,
            run_dir,
            with_time: base.with_time,
            ticks: crate::bench_measure::clock_ticks(),
        };
        let lines = measure_profile(&ctx, &spec, &dir)?;
        let table = render(profile, &spec, &lines);
        eprintln!("{table}");
        section.push_str(&table);
        section.push('\n');
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
