//! Project automation, run as `cargo xtask <task>`.
//!
//! Tasks:
//! - `ci`: fmt check, import cycles, clippy with warnings denied, tests,
//!   docs (what CI runs);
//! - `cycles`: import cycles between the modules of each crate (`cycles.rs`);
//! - `compat`: the official Python client (inference-cli 1.8.3) against our
//!   emulator (installs it in a virtualenv; minutes, ~800 MB);
//! - `bench`: rf against the raw loopback limit and the official client,
//!   release mode; results into docs/benchmarks.md (`bench --help`);
//! - `soak`: `kill -9` the CLI at random points of a run and re-run it, many
//!   seeds (see docs/reliability.md; `soak.rs` lists the options).
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod bench;
mod bench_data;
mod bench_measure;
mod bench_report;
mod compat;
mod cycles;
mod cycles_parse;
mod cycles_resolve;
mod soak;
mod tidy;

use std::io::{Read, Write};
use std::net::TcpStream;
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

/// One raw HTTP/1.1 GET of `path` from `host` (`127.0.0.1:PORT`): the
/// status and the body, read until the server closes the connection.
pub(crate) fn http_get(
    host: &str,
    path: &str,
    read_timeout: Duration,
) -> Result<(u16, String), String> {
    let mut stream = TcpStream::connect(host).map_err(|e| format!("connect {host}: {e}"))?;
    stream
        .set_read_timeout(Some(read_timeout))
        .map_err(|e| e.to_string())?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(req.as_bytes())
        .map_err(|e| format!("GET {path}: {e}"))?;
    let mut buf = Vec::new();
    stream
        .read_to_end(&mut buf)
        .map_err(|e| format!("GET {path}: {e}"))?;
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("GET {path}: not an http answer: {text}"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("GET {path}: no status in {head:?}"))?;
    Ok((status, body.to_string()))
}

pub(crate) fn run(program: &str, args: &[&str]) -> Result<(), String> {
    eprintln!("xtask: running {program} {}", args.join(" "));
    let status = Command::new(program)
        .args(args)
        .current_dir(project_root())
        .status()
        .map_err(|e| format!("could not start {program}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{program} {} failed ({status})", args.join(" ")))
    }
}

/// The same steps as `.ci/run`, plus the documentation build.
fn ci() -> Result<(), String> {
    run("cargo", &["fmt", "--all", "--", "--check"])?;
    cycles::cycles()?;
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
    // RUSTDOCFLAGS is inherited: CI sets `-D warnings` for docs too.
    run("cargo", &["doc", "--workspace", "--no-deps"])
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let task = args.first().map(String::as_str).unwrap_or("help");
    let result = match task {
        "ci" => ci(),
        "cycles" => cycles::cycles(),
        "compat" => compat::compat(),
        "bench" if args.iter().any(|a| a == "--help" || a == "-h") => {
            eprintln!("{}", bench::USAGE);
            return ExitCode::SUCCESS;
        }
        "bench" => bench::bench(&args[1..]),
        "soak" => soak::soak(&args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask <task>\n\ntasks:\n  ci      fmt check, import cycles, clippy -D warnings, tests, docs\n  cycles  import cycles between the modules of each crate\n  compat  the official inference-cli against the emulator\n  bench   rf vs the raw limit and inference-cli, release mode (bench --help)\n  soak    kill -9 the CLI at random points and re-run it [--seeds N] [--files N] [--chaos-rate R]"
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
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let server = std::thread::spawn(move || {
            for answer in [
                "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n{\"a\":1}",
                "HTTP/1.1 404 Not Found\r\n\r\n",
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
            (404, String::new())
        );
        server.join().unwrap();
    }
}
