//! The S3 server: moto's server mode, from the venv `cargo xtask
//! testservers` makes.

use std::process::Command;

use crate::process::{ServerProcess, installed};
use crate::{BUCKET, Error, agent, check_answer};

const SERVER: &str = "the S3 server (moto)";

/// A running S3 server with the bucket [`BUCKET`]. moto accepts any
/// credentials; these are the ones [`S3Server::env`] gives.
#[derive(Debug)]
pub struct S3Server {
    process: ServerProcess,
}

impl S3Server {
    /// The access key id clients use.
    pub const ACCESS_KEY_ID: &'static str = "rf-test-access-key";
    /// The secret access key clients use.
    pub const SECRET_ACCESS_KEY: &'static str = "rf-test-secret-key";
    /// The region.
    pub const REGION: &'static str = "us-east-1";

    /// Starts moto on a free loopback port and creates [`BUCKET`].
    pub fn start() -> Result<S3Server, Error> {
        let moto = installed(SERVER, "venv/bin/moto_server")?;
        let process = ServerProcess::start(SERVER, "/moto-api/", |port, _| {
            let mut command = Command::new(&moto);
            command.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
            command
        })?;
        let server = S3Server { process };
        server.create_bucket(BUCKET)?;
        Ok(server)
    }

    /// The endpoint, `http://127.0.0.1:{port}` (`AWS_ENDPOINT_URL`).
    pub fn endpoint(&self) -> String {
        self.process.base_url()
    }

    /// `s3://{BUCKET}/{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("s3://{BUCKET}/{path}")
    }

    /// Creates another bucket (path-style `PUT /{name}`).
    pub fn create_bucket(&self, name: &str) -> Result<(), Error> {
        let url = format!("{}/{name}", self.endpoint());
        let answer = agent().put(&url).send_empty();
        check_answer(SERVER, &format!("PUT {url}"), answer, &[]).map(drop)
    }

    /// The environment an AWS client needs: `AWS_ENDPOINT_URL`, the keys,
    /// the region, and `AWS_ALLOW_HTTP=true` (object_store refuses plain
    /// http otherwise).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_ACCESS_KEY_ID", Self::ACCESS_KEY_ID.to_owned()),
            ("AWS_SECRET_ACCESS_KEY", Self::SECRET_ACCESS_KEY.to_owned()),
            ("AWS_REGION", Self::REGION.to_owned()),
            ("AWS_DEFAULT_REGION", Self::REGION.to_owned()),
            ("AWS_ALLOW_HTTP", "true".to_owned()),
        ]
    }

    /// The object `key` of [`BUCKET`]: its status and bytes. moto checks
    /// that a request names a key but not its signature, so this one is
    /// not signed.
    pub fn get(&self, key: &str) -> Result<(u16, Vec<u8>), Error> {
        let url = format!("{}/{BUCKET}/{key}", self.endpoint());
        let request = agent()
            .get(&url)
            .header("authorization", &Self::unsigned_authorization());
        crate::read_answer(SERVER, &url, request.call())
    }

    /// Stores `bytes` as object `key` of [`BUCKET`] (unsigned, as
    /// [`S3Server::get`]).
    pub fn put(&self, key: &str, bytes: &[u8]) -> Result<(), Error> {
        let url = format!("{}/{BUCKET}/{key}", self.endpoint());
        let answer = agent()
            .put(&url)
            .header("authorization", &Self::unsigned_authorization())
            .send(bytes);
        check_answer(SERVER, &format!("PUT {url}"), answer, &[]).map(drop)
    }

    /// An `Authorization` header naming the test credentials with a dummy
    /// signature: moto reads the access key from it and checks nothing else.
    fn unsigned_authorization() -> String {
        format!(
            "AWS4-HMAC-SHA256 Credential={}/20260101/{}/s3/aws4_request, SignedHeaders=host, Signature=0",
            Self::ACCESS_KEY_ID,
            Self::REGION
        )
    }
}
