//! Local object-store servers for rf's tests: an S3 server (moto's server
//! mode), a GCS server (fake-gcs-server) and an Azure Blob server (Azurite),
//! each started on a free loopback port, polled until it answers (with a
//! deadline), given a bucket or container, and killed when its handle is
//! dropped. Each handle tells what a client needs: the standard environment
//! variables of its cloud ([`S3Server::env`], [`GcsServer::env`],
//! [`AzureServer::env`]) and the pieces one by one.
//!
//! `cargo xtask testservers` installs the pinned servers into
//! `target/testservers/` (a Python venv and a `node_modules`); `.ci/run`
//! runs it first. A test asks for a server with [`s3`], [`gcs`] or
//! [`azure`]: when the server is not installed, the test is skipped with a
//! line saying so, except under `CI=true`, where it fails with the command
//! to run.
//!
//! ```no_run
//! let Some(s3) = rf_testservers::s3() else { return };
//! for (key, value) in s3.env() {
//!     println!("{key}={value}");
//! }
//! ```

mod azure;
mod gcs;
mod process;
mod s3;

use std::path::PathBuf;
use std::time::Duration;

pub use azure::AzureServer;
pub use gcs::GcsServer;
pub use s3::S3Server;

/// Why a test server could not be started.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server is not installed: run `cargo xtask testservers`.
    #[error("{server} is not installed (no {path}): run `cargo xtask testservers`")]
    NotInstalled {
        /// Which server.
        server: &'static str,
        /// The file that is missing.
        path: PathBuf,
    },
    /// The server's process could not be started.
    #[error("cannot start {server}: {source}")]
    Spawn {
        /// Which server.
        server: &'static str,
        /// Why.
        source: std::io::Error,
    },
    /// The server exited before it answered.
    #[error("{server} exited before it answered ({status}); its log ends with:\n{log}")]
    Exited {
        /// Which server.
        server: &'static str,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// The end of its output.
        log: String,
    },
    /// The server did not answer within the deadline.
    #[error("{server} did not answer within {waited:?}; its log ends with:\n{log}")]
    NotReady {
        /// Which server.
        server: &'static str,
        /// How long it was given.
        waited: Duration,
        /// The end of its output.
        log: String,
    },
    /// A request to set the server up failed.
    #[error("{server}: {what} failed: {detail}")]
    Setup {
        /// Which server.
        server: &'static str,
        /// The request.
        what: String,
        /// The status and body, or the transport error.
        detail: String,
    },
    /// A file of the server's setup could not be written.
    #[error("{server}: cannot write {path}: {source}")]
    Io {
        /// Which server.
        server: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// The bucket (S3, GCS) or container (Azure) each server starts with.
pub const BUCKET: &str = "rf-test";

/// How long a server gets to answer its first request.
const READY_DEADLINE: Duration = Duration::from_secs(60);

/// Where `cargo xtask testservers` installs the servers:
/// `RF_TESTSERVERS_DIR`, else `$CARGO_TARGET_DIR/testservers` (when
/// absolute), else `target/testservers` in the workspace.
pub fn install_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("RF_TESTSERVERS_DIR") {
        return PathBuf::from(dir);
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    match std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from) {
        Some(dir) if dir.is_absolute() => dir.join("testservers"),
        Some(dir) => root.join(dir).join("testservers"),
        None => root.join("target/testservers"),
    }
}

/// Whether this is a CI run (`CI=true` or `CI=1`), where a missing server
/// fails the test instead of skipping it.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// A started S3 server ([`S3Server::start`]), or `None` after printing
/// that the test is skipped because the server is not installed.
///
/// # Panics
/// When the server is installed but does not start, and when it is not
/// installed under `CI=true`.
pub fn s3() -> Option<S3Server> {
    require(S3Server::start())
}

/// A started GCS server ([`GcsServer::start`]); see [`s3`].
///
/// # Panics
/// As [`s3`].
pub fn gcs() -> Option<GcsServer> {
    require(GcsServer::start())
}

/// A started Azure Blob server ([`AzureServer::start`]); see [`s3`].
///
/// # Panics
/// As [`s3`].
pub fn azure() -> Option<AzureServer> {
    require(AzureServer::start())
}

/// The server, `None` (skip) when it is not installed outside CI; panics
/// otherwise.
#[allow(clippy::print_stderr)]
fn require<T>(started: Result<T, Error>) -> Option<T> {
    match started {
        Ok(server) => Some(server),
        Err(e @ Error::NotInstalled { .. }) if !in_ci() => {
            eprintln!("skipped: {e}");
            None
        }
        Err(e) => panic!("test server: {e}"),
    }
}

/// A blocking HTTP client for setup requests on loopback: no proxy, any
/// status returned as is.
fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .proxy(None)
        .build()
        .into()
}

/// Checks a setup request's answer: `Ok` for a 2xx status (or one of
/// `also_ok`), else [`Error::Setup`] with the status and body.
fn check_answer(
    server: &'static str,
    what: &str,
    answer: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    also_ok: &[u16],
) -> Result<String, Error> {
    let setup = |detail: String| Error::Setup {
        server,
        what: what.to_owned(),
        detail,
    };
    let mut response = answer.map_err(|e| setup(e.to_string()))?;
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .read_to_string()
        .map_err(|e| setup(e.to_string()))?;
    if response.status().is_success() || also_ok.contains(&status) {
        Ok(body)
    } else {
        Err(setup(format!("{status}: {body}")))
    }
}

/// `GET url`: the status and body, whatever the status.
fn get_bytes(server: &'static str, url: &str) -> Result<(u16, Vec<u8>), Error> {
    read_answer(server, url, agent().get(url).call())
}

/// The status and body (up to 64 MiB) of the answer to `GET url`.
fn read_answer(
    server: &'static str,
    url: &str,
    answer: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> Result<(u16, Vec<u8>), Error> {
    let setup = |detail: String| Error::Setup {
        server,
        what: format!("GET {url}"),
        detail,
    };
    let mut response = answer.map_err(|e| setup(e.to_string()))?;
    let body = response
        .body_mut()
        .with_config()
        .limit(64 * 1024 * 1024)
        .read_to_vec()
        .map_err(|e| setup(e.to_string()))?;
    Ok((response.status().as_u16(), body))
}
