//! Measuring one benchmark run: wall time (monotonic clock around the
//! child), CPU time and peak RSS of the child and everything it waited
//! for (GNU `/usr/bin/time`, which reads the children's rusage), and the
//! CPU time a long-running server spent meanwhile (`/proc/<pid>/stat`).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// GNU time's output format: elapsed, user, system seconds, max RSS in KiB.
pub(crate) const TIME_FORMAT: &str = "rf-bench-time %e %U %S %M";
/// Where GNU time lives.
const GNU_TIME: &str = "/usr/bin/time";

/// What one run cost.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct Measured {
    /// Wall time in seconds.
    pub(crate) wall: f64,
    /// User plus system CPU seconds (None without GNU time).
    pub(crate) cpu: Option<f64>,
    /// Peak resident set size in KiB (None without GNU time).
    pub(crate) max_rss_kib: Option<u64>,
}

impl Measured {
    /// Peak RSS in MiB.
    pub(crate) fn rss_mib(&self) -> Option<f64> {
        self.max_rss_kib.map(|k| k as f64 / 1024.0)
    }
}

/// CPU and RSS as GNU time reported them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct TimeReport {
    /// Elapsed seconds (10 ms resolution).
    pub(crate) elapsed: f64,
    /// User CPU seconds.
    pub(crate) user: f64,
    /// System CPU seconds.
    pub(crate) sys: f64,
    /// Peak RSS in KiB.
    pub(crate) max_rss_kib: u64,
}

/// Parses the `-o` file GNU time wrote with [`TIME_FORMAT`]. The file may
/// hold other lines first ("Command exited with non-zero status 1").
pub(crate) fn parse_time_output(text: &str) -> Option<TimeReport> {
    let line = text
        .lines()
        .rev()
        .find(|l| l.starts_with("rf-bench-time "))?;
    let mut fields = line.split_whitespace().skip(1);
    let elapsed = fields.next()?.parse().ok()?;
    let user = fields.next()?.parse().ok()?;
    let sys = fields.next()?.parse().ok()?;
    let max_rss_kib = fields.next()?.parse().ok()?;
    Some(TimeReport {
        elapsed,
        user,
        sys,
        max_rss_kib,
    })
}

/// A command to measure.
#[derive(Debug, Clone)]
pub(crate) struct Job {
    /// Program to run.
    pub(crate) program: PathBuf,
    /// Its arguments.
    pub(crate) args: Vec<OsString>,
    /// Extra environment variables.
    pub(crate) env: Vec<(String, OsString)>,
    /// Working directory.
    pub(crate) cwd: Option<PathBuf>,
}

impl Job {
    /// A job running `program` with `args`.
    pub(crate) fn new<I, S>(program: impl Into<PathBuf>, args: I) -> Job
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        Job {
            program: program.into(),
            args: args.into_iter().map(Into::into).collect(),
            env: Vec::new(),
            cwd: None,
        }
    }

    /// Adds an environment variable.
    pub(crate) fn env(mut self, key: &str, value: impl Into<OsString>) -> Job {
        self.env.push((key.to_string(), value.into()));
        self
    }

    /// Sets the working directory.
    pub(crate) fn cwd(mut self, dir: impl Into<PathBuf>) -> Job {
        self.cwd = Some(dir.into());
        self
    }

    /// The command line as text (for error messages and docs).
    pub(crate) fn display(&self) -> String {
        let mut s = self.program.display().to_string();
        for a in &self.args {
            s.push(' ');
            s.push_str(&a.to_string_lossy());
        }
        s
    }

    fn command(&self, under_time: Option<&Path>) -> Command {
        let mut cmd = match under_time {
            Some(out) => {
                let mut c = Command::new(GNU_TIME);
                c.arg("-o").arg(out).arg("-f").arg(TIME_FORMAT);
                c.arg(&self.program);
                c
            }
            None => Command::new(&self.program),
        };
        cmd.args(&self.args);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        if let Some(dir) = &self.cwd {
            cmd.current_dir(dir);
        }
        cmd
    }
}

/// Whether GNU time is there to measure CPU and RSS.
pub(crate) fn gnu_time_available() -> bool {
    Command::new(GNU_TIME)
        .args(["-f", "%M", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// What a measured run printed.
#[derive(Debug)]
pub(crate) struct Output {
    /// Its stdout.
    pub(crate) stdout: String,
}

/// Runs `job` to completion and measures it; fails when it exits non-zero
/// (with its stderr in the message).
pub(crate) fn run_measured(
    job: &Job,
    scratch: &Path,
    with_time: bool,
) -> Result<(Measured, Output), String> {
    let time_file = scratch.join(format!("time-{}.txt", std::process::id()));
    let _ = std::fs::remove_file(&time_file);
    let mut cmd = job.command(with_time.then_some(time_file.as_path()));
    cmd.stdin(Stdio::null());
    let start = Instant::now();
    let out = cmd
        .output()
        .map_err(|e| format!("cannot start {}: {e}", job.display()))?;
    let wall = start.elapsed().as_secs_f64();
    if !out.status.success() {
        return Err(format!(
            "{} failed ({}):\n{}{}",
            job.display(),
            out.status,
            tail(&String::from_utf8_lossy(&out.stdout)),
            tail(&String::from_utf8_lossy(&out.stderr))
        ));
    }
    let report = if with_time {
        let text = std::fs::read_to_string(&time_file)
            .map_err(|e| format!("cannot read {}: {e}", time_file.display()))?;
        let _ = std::fs::remove_file(&time_file);
        Some(parse_time_output(&text).ok_or_else(|| format!("unexpected time output: {text}"))?)
    } else {
        None
    };
    Ok((
        Measured {
            wall,
            cpu: report.map(|r| r.user + r.sys),
            max_rss_kib: report.map(|r| r.max_rss_kib),
        },
        Output {
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        },
    ))
}

/// The last lines of a child's output, for error messages.
fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(20);
    let mut s = lines[start..].join("\n");
    if !s.is_empty() {
        s.push('\n');
    }
    s
}

/// Clock ticks per second for `/proc/<pid>/stat` (`getconf CLK_TCK`, 100 if unknown).
pub(crate) fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// User plus system clock ticks from the text of `/proc/<pid>/stat`.
pub(crate) fn parse_proc_stat_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3, so utime (14) and stime (15) are at 11 and 12.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// CPU seconds process `pid` has used so far (None where /proc is missing).
pub(crate) fn process_cpu(pid: u32, ticks: f64) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_proc_stat_ticks(&stat).map(|t| t as f64 / ticks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_gnu_time_output() {
        let r = parse_time_output("rf-bench-time 1.23 0.50 0.25 20480\n").unwrap();
        assert_eq!(
            r,
            TimeReport {
                elapsed: 1.23,
                user: 0.5,
                sys: 0.25,
                max_rss_kib: 20480
            }
        );
        let r = parse_time_output(
            "Command exited with non-zero status 1\nrf-bench-time 0.00 0.00 0.00 1234\n",
        )
        .unwrap();
        assert_eq!(r.max_rss_kib, 1234);
        assert_eq!(parse_time_output(""), None);
        assert_eq!(parse_time_output("rf-bench-time 1.0 x 0 1"), None);
        assert_eq!(parse_time_output("rf-bench-time 1.0 0.1"), None);
    }

    #[test]
    fn parses_proc_stat() {
        // pid (comm with spaces) state ppid ... utime=14 stime=15
        let stat = "4242 (rf emu) S 1 4242 4242 0 -1 4194304 500 0 0 0 170 30 0 0 20 0 8 0 100 0 0";
        assert_eq!(parse_proc_stat_ticks(stat), Some(200));
        assert_eq!(parse_proc_stat_ticks("garbage"), None);
        assert_eq!(parse_proc_stat_ticks("1 (x) S 1 2"), None);
    }

    #[test]
    fn measures_own_stat() {
        let cpu = process_cpu(std::process::id(), clock_ticks());
        if std::path::Path::new("/proc/self/stat").exists() {
            assert!(cpu.is_some());
        }
    }

    #[test]
    fn rss_in_mib() {
        let m = Measured {
            wall: 1.0,
            cpu: Some(1.0),
            max_rss_kib: Some(2048),
        };
        assert_eq!(m.rss_mib(), Some(2.0));
        assert_eq!(Measured::default().rss_mib(), None);
    }
}
