//! A server process on a free loopback port: started, polled until it
//! answers, killed on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{Error, READY_DEADLINE};

/// Attempts at starting a server: another process may take the free port
/// between the moment it is chosen and the server's bind.
const START_ATTEMPTS: u32 = 3;
/// Pause between two readiness probes.
const POLL_EVERY: Duration = Duration::from_millis(25);

/// A running server: its port, its scratch directory (logs, data) and its
/// process, killed when this is dropped.
#[derive(Debug)]
pub(crate) struct ServerProcess {
    child: Child,
    pub(crate) port: u16,
    dir: tempfile::TempDir,
}

impl ServerProcess {
    /// Starts `server` with the command `command` builds for a port and a
    /// scratch directory, and waits until `GET {probe}` on that port gets
    /// any HTTP answer.
    pub(crate) fn start(
        server: &'static str,
        probe: &str,
        command: impl Fn(u16, &Path) -> Command,
    ) -> Result<ServerProcess, Error> {
        let mut last = None;
        for _ in 0..START_ATTEMPTS {
            let dir = tempfile::tempdir().map_err(|source| Error::Spawn { server, source })?;
            let port = free_port().map_err(|source| Error::Spawn { server, source })?;
            let log = std::fs::File::create(dir.path().join("server.log"))
                .map_err(|source| Error::Spawn { server, source })?;
            let log_err = log
                .try_clone()
                .map_err(|source| Error::Spawn { server, source })?;
            let child = command(port, dir.path())
                .stdin(Stdio::null())
                .stdout(log)
                .stderr(log_err)
                .spawn()
                .map_err(|source| Error::Spawn { server, source })?;
            let mut process = ServerProcess { child, port, dir };
            match process.wait_ready(server, probe) {
                Ok(()) => return Ok(process),
                // Most likely the port was taken: try another one.
                Err(e @ Error::Exited { .. }) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or(Error::NotReady {
            server,
            waited: READY_DEADLINE,
            log: String::new(),
        }))
    }

    /// Polls `http://127.0.0.1:{port}{probe}` until it answers, the process
    /// exits, or the deadline passes.
    fn wait_ready(&mut self, server: &'static str, probe: &str) -> Result<(), Error> {
        let url = format!("http://127.0.0.1:{}{probe}", self.port);
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(2)))
            .proxy(None)
            .build()
            .into();
        let started = Instant::now();
        loop {
            if agent.get(&url).call().is_ok() {
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(Error::Exited {
                    server,
                    status,
                    log: self.log_tail(),
                });
            }
            if started.elapsed() > READY_DEADLINE {
                return Err(Error::NotReady {
                    server,
                    waited: READY_DEADLINE,
                    log: self.log_tail(),
                });
            }
            std::thread::sleep(POLL_EVERY);
        }
    }

    /// The server's scratch directory (deleted with it).
    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server's base URL, `http://127.0.0.1:{port}`.
    pub(crate) fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The last 2 KB of the server's output.
    pub(crate) fn log_tail(&self) -> String {
        let log = std::fs::read(self.dir.path().join("server.log")).unwrap_or_default();
        let start = log.len().saturating_sub(2048);
        String::from_utf8_lossy(&log[start..]).into_owned()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port no one listens on now, on 127.0.0.1.
fn free_port() -> std::io::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// `path` in the install directory, or [`Error::NotInstalled`] when it is
/// missing.
pub(crate) fn installed(server: &'static str, relative: &str) -> Result<PathBuf, Error> {
    let path = crate::install_dir().join(relative);
    if path.exists() {
        Ok(path)
    } else {
        Err(Error::NotInstalled { server, path })
    }
}
