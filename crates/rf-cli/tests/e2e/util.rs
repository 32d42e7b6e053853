//! Helpers: run the built `rf` binary (found by `assert_cmd`) with a clean
//! environment, check its exit code and output with `assert_cmd`'s
//! assertions, and follow a long-running child line by line with a
//! deadline (never sleeps).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use assert_cmd::assert::OutputAssertExt;

/// How long a test waits for a child process to say something.
pub(crate) const DEADLINE: Duration = Duration::from_secs(30);

/// The built `rf` binary, as Cargo built it for these tests.
pub(crate) fn rf_binary() -> &'static Path {
    assert_cmd::cargo::cargo_bin!("rf")
}

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

    /// Gives `cmd` this sandbox as its home and cache, with no API, webhook
    /// token or log filter inherited from the caller's environment.
    pub(crate) fn isolate<'c>(&self, cmd: &'c mut Command) -> &'c mut Command {
        cmd.env_remove("ROBOFLOW_API_KEY")
            .env_remove("API_BASE_URL")
            .env_remove("API_URL")
            .env_remove("ROBOFLOW_REGION")
            .env_remove("RF_WORKSPACE")
            .env_remove("ROBOFLOW_CONFIG_DIR")
            .env_remove("ROBOFLOW_API_REQUEST_TIMEOUT")
            .env_remove("RF_WEBHOOK_TOKEN")
            .env_remove("RF_LOG")
            .env("HOME", self.path())
            .env("XDG_CACHE_HOME", self.cache())
    }

    /// `rf` with no API configured, the cache inside the sandbox, no colour
    /// and no standard input.
    pub(crate) fn rf(&self) -> Command {
        let mut cmd = Command::new(rf_binary());
        self.isolate(&mut cmd)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        cmd
    }
}

/// The arguments of `rf run --images IMAGES --workflow WORKFLOW --out OUT`.
pub(crate) fn run_args(images: &Path, workflow: &str, out: &Path) -> Vec<String> {
    vec![
        "run".to_owned(),
        "--images".to_owned(),
        path_arg(images),
        "--workflow".to_owned(),
        workflow.to_owned(),
        "--out".to_owned(),
        path_arg(out),
    ]
}

/// A path as a command-line argument (test paths are UTF-8).
pub(crate) fn path_arg(path: &Path) -> String {
    path.to_str().expect("test paths are UTF-8").to_owned()
}

/// The finished process, with its output as text.
#[derive(Debug)]
pub(crate) struct Done {
    pub(crate) code: Option<i32>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
    output: Output,
    /// The command line that ran, shown when an assertion fails.
    command: Option<String>,
}

impl Done {
    pub(crate) fn from_output(output: Output) -> Self {
        Done {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            output,
            command: None,
        }
    }

    /// The same, naming the command line that ran in assertion failures.
    fn ran(output: Output, command: String) -> Self {
        Done {
            command: Some(command),
            ..Done::from_output(output)
        }
    }

    /// Panics with the exit code and the whole stdout and stderr unless the
    /// exit code is `code` (`assert_cmd`'s `Assert::code`).
    #[track_caller]
    pub(crate) fn expect_code(&self, code: i32) -> &Self {
        let mut assert = self.output.clone().assert();
        if let Some(command) = &self.command {
            assert = assert.append_context("command", command.clone());
        }
        assert.code(code);
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
    Done::ran(cmd.assert().get_output().clone(), command_line(cmd))
}

/// `cmd`'s program and arguments, as one line.
fn command_line(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A running child whose stdout and stderr are read line by line in threads.
pub(crate) struct Running {
    pub(crate) child: Child,
    out_lines: mpsc::Receiver<String>,
    err_lines: mpsc::Receiver<String>,
    pub(crate) out_seen: Vec<String>,
    pub(crate) err_seen: Vec<String>,
    /// The command line, for failure messages.
    command: String,
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
            command: command_line(cmd),
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
                "the child ({}) did not exit within {DEADLINE:?}; stderr:\n{}",
                self.command,
                self.err_seen.join("\n")
            );
        }
        let status = self.child.wait().unwrap();
        Done::ran(
            Output {
                status,
                stdout: self.out_seen.join("\n").into_bytes(),
                stderr: self.err_seen.join("\n").into_bytes(),
            },
            self.command.clone(),
        )
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

/// A GET on loopback answered `200` with JSON: the JSON.
pub(crate) fn get_json(url: &str) -> serde_json::Value {
    let body = http_get(url);
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("not json ({e}): {body}"))
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
