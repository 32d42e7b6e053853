//! Project automation, run as `cargo xtask <task>`.
//!
//! Tasks:
//! - `ci`: fmt check, import cycles, dependency checks, clippy with warnings
//!   denied, tests, docs, packages (what CI runs);
//! - `cycles`: import cycles between the modules of each crate (`cycles.rs`);
//! - `deps`: the dependency rules of `deny.toml` (cargo-deny) and unused
//!   dependencies (cargo-machete), in `deps.rs`;
//! - `package`: crates.io metadata and `cargo package` of every published
//!   crate (`package.rs`);
//! - `wheel [--check]`: the `rf` binary as a Python wheel (maturin) in
//!   target/wheels; `--check` installs it in a fresh venv and runs it
//!   (`wheel.rs`);
//! - `compat`: the official Python client (inference-cli 1.8.3) against our
//!   emulator (installs it in a virtualenv; minutes, ~800 MB);
//! - `bench`: rf against the raw loopback limit and the official client,
//!   release mode; results into docs/benchmarks.md (`bench --help`);
//! - `testservers`: install the pinned local S3, GCS and Azure servers the
//!   cloud-storage tests start (`testservers.rs`);
//! - `soak`: `kill -9` the CLI at random points of a run and re-run it, many
//!   seeds (see docs/reliability.md; `soak.rs` lists the options).
#![allow(clippy::print_stdout, clippy::print_stderr)]
#![warn(clippy::too_many_lines)]

mod bench;
mod bench_cloud;
mod bench_data;
mod bench_measure;
mod bench_report;
mod compat;
mod compat_rfpy;
mod cycles;
mod cycles_parse;
mod cycles_resolve;
mod deps;
mod package;
mod report_check;
mod soak;
mod soak_emulator;
mod testservers;
mod tidy;
mod wheel;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode};
use std::time::Duration;

pub(crate) fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Cargo's target directory: `CARGO_TARGET_DIR` (relative to the project
/// root, where [`run`] starts cargo) or `<root>/target`.
pub(crate) fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|p| {
            if p.is_absolute() {
                p
            } else {
                project_root().join(p)
            }
        })
        .unwrap_or_else(|| project_root().join("target"))
}

/// Kills a child process (the emulator a task started) when the task ends,
/// however it ends.
pub(crate) struct ServerGuard(pub(crate) Child);

impl Drop for ServerGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Spawns `command` (an `rf --json emulator serve ...`): the guard that
/// stops it, and the base URL its first stdout line gives.
pub(crate) fn serve_json(mut command: Command) -> Result<(ServerGuard, String), String> {
    let mut server = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start rf emulator serve: {e}"))?;
    let stdout = server.stdout.take();
    let guard = ServerGuard(server);
    let mut first = String::new();
    if let Some(pipe) = stdout {
        std::io::BufRead::read_line(&mut std::io::BufReader::new(pipe), &mut first)
            .map_err(|e| format!("reading the emulator's start line: {e}"))?;
    }
    let start: serde_json::Value = serde_json::from_str(first.trim())
        .map_err(|e| format!("the emulator's start line is not json ({e}): {first}"))?;
    let base = start["baseUrl"]
        .as_str()
        .ok_or_else(|| format!("no baseUrl in {start}"))?
        .to_owned();
    Ok((guard, base))
}

/// One GET of `http://{host}{path}` (`host` is `127.0.0.1:PORT`): the
/// status, whatever it is, and the body as text.
pub(crate) fn http_get(host: &str, path: &str, timeout: Duration) -> Result<(u16, String), String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .proxy(None)
        .build()
        .into();
    let mut response = agent
        .get(&format!("http://{host}{path}"))
        .call()
        .map_err(|e| format!("GET {path}: {e}"))?;
    let body = response
        .body_mut()
        .read_to_string()
        .map_err(|e| format!("GET {path}: {e}"))?;
    Ok((response.status().as_u16(), body))
}

/// Runs `program` with `args` in the project root; an error unless it exits 0.
pub(crate) fn run(program: &str, args: &[&str]) -> Result<(), String> {
    run_command(Command::new(program).args(args))
}

/// Runs `command` in the project root, or in the directory it was given;
/// an error unless it exits 0.
pub(crate) fn run_command(command: &mut Command) -> Result<(), String> {
    let program = command.get_program().to_string_lossy().into_owned();
    let args: Vec<String> = command
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let line = format!("{program} {}", args.join(" "));
    eprintln!("xtask: running {line}");
    if command.get_current_dir().is_none() {
        command.current_dir(project_root());
    }
    let status = command
        .status()
        .map_err(|e| format!("could not start {program}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{line} failed ({status})"))
    }
}

/// The same steps as `.ci/run`.
fn ci() -> Result<(), String> {
    run("cargo", &["fmt", "--all", "--", "--check"])?;
    cycles::cycles()?;
    deps::deps()?;
    testservers::testservers()?;
    run(
        "cargo",
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    run("cargo", &["test", "--workspace"])?;
    // Skipped with a note when chromium is missing (fails with CI=true).
    report_check::report_check(&[])?;
    // RUSTDOCFLAGS is inherited: CI sets `-D warnings` for docs too.
    run("cargo", &["doc", "--workspace", "--no-deps"])?;
    package::package()
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let task = args.first().map(String::as_str).unwrap_or("help");
    let result = match task {
        "ci" => ci(),
        "cycles" => cycles::cycles(),
        "deps" => deps::deps(),
        "package" => package::package(),
        "wheel" => wheel::wheel(&args[1..]),
        "compat" => compat::compat(&args[1..]),
        "bench" if args.iter().any(|a| a == "--help" || a == "-h") => {
            eprintln!("{}", bench::USAGE);
            return ExitCode::SUCCESS;
        }
        "bench" => bench::bench(&args[1..]),
        "bench-cloud" if args.iter().any(|a| a == "--help" || a == "-h") => {
            eprintln!("{}", bench_cloud::USAGE);
            return ExitCode::SUCCESS;
        }
        "bench-cloud" => bench_cloud::bench_cloud(&args[1..]),
        "soak" => soak::soak(&args[1..]),
        "report-check" => report_check::report_check(&args[1..]),
        "testservers" => testservers::testservers(),
        _ => {
            eprintln!(
                "usage: cargo xtask <task>\n\ntasks:\n  ci      fmt check, import cycles, dependency checks, clippy -D warnings, tests, report-check, docs, packages\n  cycles  import cycles between the modules of each crate\n  deps    dependency rules (deny.toml, cargo-deny) and unused dependencies (cargo-machete)\n  package crates.io metadata and cargo package of the published crates\n  wheel   the rf wheel (maturin) into target/wheels [--check: install and run it in a fresh venv]\n  compat  the official inference-cli and roboflow CLIs against the emulator [--only inference|roboflow]\n  bench   rf vs the raw limit and inference-cli, release mode (bench --help)\n  bench-cloud  ingest from a local S3 server: rf vs inference-cli (bench-cloud --help)\n  soak    kill -9 the CLI at random points and re-run it [--seeds N] [--files N] [--chaos-rate R];\n          kill -9 the emulator during uploads and check what it acknowledged [--emulator-kills N]\n  testservers  install the local S3, GCS and Azure servers the tests start (target/testservers)\n  report-check  rf run --report's page in headless Chromium: boxes, filter, no fetch [--screenshot FILE]"
            );
            return if task == "help" || task == "--help" {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            };
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_get_reads_status_and_body_from_loopback() {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let server = std::thread::spawn(move || {
            for answer in [
                "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n{\"a\":1}",
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"a\r\n4\r\n\":2}\r\n0\r\n\r\n",
                "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
            ] {
                let (mut conn, _) = listener.accept().unwrap();
                let mut head = [0u8; 1024];
                let n = conn.read(&mut head).unwrap();
                assert!(String::from_utf8_lossy(&head[..n]).starts_with("GET /x?k=v HTTP/1.1"));
                conn.write_all(answer.as_bytes()).unwrap();
            }
        });
        let timeout = Duration::from_secs(10);
        assert_eq!(
            http_get(&host, "/x?k=v", timeout).unwrap(),
            (200, "{\"a\":1}".to_string())
        );
        assert_eq!(
            http_get(&host, "/x?k=v", timeout).unwrap(),
            (200, "{\"a\":2}".to_string())
        );
        assert_eq!(
            http_get(&host, "/x?k=v", timeout).unwrap(),
            (404, String::new())
        );
        server.join().unwrap();
    }
}
