//! Helpers: run the built `rf` binary with a clean environment, read its
//! output, wait for lines with a deadline (never sleeps).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a test waits for a child process to say something.
pub(crate) const DEADLINE: Duration = Duration::from_secs(30);

/// A temporary home and cache so tests never touch the user's files.
pub(crate) struct Sandbox {
    pub(crate) dir: tempfile::TempDir,
}

impl Sandbox {
    pub(crate) fn new() -> Self {
        Sandbox {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    pub(crate) fn cache(&self) -> PathBuf {
        self.path().join("cache")
    }

    /// `rf` with no API configured and the cache inside the sandbox.
    pub(crate) fn rf(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rf"));
        cmd.env_remove("ROBOFLOW_API_KEY")
            .env_remove("API_BASE_URL")
            .env_remove("RF_WEBHOOK_TOKEN")
            .env_remove("RF_LOG")
            .env("HOME", self.path())
            .env("XDG_CACHE_HOME", self.cache())
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        cmd
    }
}

/// The finished process, with its output as text.
#[derive(Debug)]
pub(crate) struct Done {
    pub(crate) code: Option<i32>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Done {
    pub(crate) fn from_output(out: Output) -> Self {
        Done {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Panics with the whole output unless the exit code is `code`.
    #[track_caller]
    pub(crate) fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code,
            Some(code),
            "unexpected exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// The stdout as one JSON document.
    #[track_caller]
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one json document: {e}\n{}", self.stdout))
    }

    /// The stderr lines that start with `rf: ` and are not progress.
    pub(crate) fn error_line(&self) -> &str {
        self.stderr
            .lines()
            .rev()
            .find(|l| l.starts_with("rf: "))
            .unwrap_or("")
    }
}

/// Runs a command to completion.
pub(crate) fn run(cmd: &mut Command) -> Done {
    Done::from_output(cmd.output().unwrap())
}

/// A running child whose stdout and stderr are read line by line in threads.
pub(crate) struct Running {
    pub(crate) child: Child,
    out_lines: mpsc::Receiver<String>,
    err_lines: mpsc::Receiver<String>,
    pub(crate) out_seen: Vec<String>,
    pub(crate) err_seen: Vec<String>,
}

fn reader(pipe: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits for a line containing `needle` on `rx`, remembering every line seen.
fn wait_line(
    rx: &mpsc::Receiver<String>,
    seen: &mut Vec<String>,
    needle: &str,
    what: &str,
) -> String {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                seen.push(line.clone());
                if line.contains(needle) {
                    return line;
                }
            }
            Err(_) => panic!(
                "no {what} line containing {needle:?} within {DEADLINE:?}; saw:\n{}",
                seen.join("\n")
            ),
        }
    }
}

impl Running {
    pub(crate) fn spawn(cmd: &mut Command) -> Self {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out_lines = reader(child.stdout.take().unwrap());
        let err_lines = reader(child.stderr.take().unwrap());
        Running {
            child,
            out_lines,
            err_lines,
            out_seen: Vec::new(),
            err_seen: Vec::new(),
        }
    }

    /// Waits (up to the deadline) for a stderr line containing `needle`.
    pub(crate) fn wait_for_stderr(&mut self, needle: &str) -> String {
        wait_line(&self.err_lines, &mut self.err_seen, needle, "stderr")
    }

    /// Waits (up to the deadline) for a stdout line containing `needle`.
    pub(crate) fn wait_for_stdout(&mut self, needle: &str) -> String {
        wait_line(&self.out_lines, &mut self.out_seen, needle, "stdout")
    }

    /// Sends SIGINT (what Ctrl-C sends) to the child.
    pub(crate) fn interrupt(&self) {
        // The shell's builtin `kill`: no dependency on a `kill` binary.
        let status = Command::new("sh")
            .args(["-c", &format!("kill -INT {}", self.child.id())])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the child to exit (up to the deadline) and collects the rest
    /// of its output (the reader threads end when the pipes close).
    pub(crate) fn finish(mut self) -> Done {
        let deadline = Instant::now() + DEADLINE;
        let closed = drain(&self.out_lines, &mut self.out_seen, deadline)
            && drain(&self.err_lines, &mut self.err_seen, deadline);
        if !closed {
            let _ = self.child.kill();
            panic!(
                "the child did not exit within {DEADLINE:?}; stderr:\n{}",
                self.err_seen.join("\n")
            );
        }
        let status = self.child.wait().unwrap();
        Done {
            code: status.code(),
            stdout: self.out_seen.join("\n"),
            stderr: self.err_seen.join("\n"),
        }
    }
}

/// Reads lines until the pipe closes (true) or the deadline passes (false).
fn drain(rx: &mpsc::Receiver<String>, seen: &mut Vec<String>, deadline: Instant) -> bool {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => seen.push(line),
            Err(mpsc::RecvTimeoutError::Disconnected) => return true,
            Err(mpsc::RecvTimeoutError::Timeout) => return false,
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A blocking HTTP POST on loopback: returns (status, body), whatever the
/// status.
pub(crate) fn http_post(url: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
    let mut request = agent().post(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let mut response = request
        .send(body)
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    let text = response
        .body_mut()
        .read_to_string()
        .unwrap_or_else(|e| panic!("POST {url}: reading the body: {e}"));
    (response.status().as_u16(), text)
}

/// A blocking HTTP GET on loopback that must be answered `200`: returns the
/// body.
pub(crate) fn http_get(url: &str) -> String {
    let mut response = agent()
        .get(url)
        .call()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .read_to_string()
        .unwrap_or_else(|e| panic!("GET {url}: reading the body: {e}"));
    assert_eq!(status, 200, "GET {url}: {body}");
    body
}

/// An HTTP client for loopback: any status is an answer, no proxy, the
/// test deadline as its timeout.
fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(DEADLINE))
        .proxy(None)
        .build()
        .into()
}
