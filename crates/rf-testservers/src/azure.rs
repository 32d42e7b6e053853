//! The Azure Blob server: Azurite, from the `node_modules` `cargo xtask
//! testservers` makes. It runs in memory, with telemetry off, and knows
//! the well-known development account ([`AzureServer::ACCOUNT`]).

use std::process::Command;

use base64::Engine as _;
use hmac::{KeyInit, Mac};

use crate::process::{ServerProcess, installed};
use crate::{BUCKET, Error, agent, check_answer};

const SERVER: &str = "the Azure Blob server (Azurite)";
/// The storage API version of the setup requests.
const API_VERSION: &str = "2021-08-06";

/// A running Azurite with the container [`BUCKET`].
#[derive(Debug)]
pub struct AzureServer {
    process: ServerProcess,
}

impl AzureServer {
    /// The development account every Azurite knows.
    pub const ACCOUNT: &'static str = "devstoreaccount1";
    /// Its well-known key (base64), public in Azurite's documentation.
    pub const KEY: &'static str =
        "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

    /// Starts Azurite's blob service on a free loopback port and creates
    /// the container [`BUCKET`].
    pub fn start() -> Result<AzureServer, Error> {
        let azurite = installed(SERVER, "node_modules/.bin/azurite-blob")?;
        let probe = format!("/{}?comp=list", Self::ACCOUNT);
        let process = ServerProcess::start(SERVER, &probe, |port, dir| {
            let mut command = Command::new(&azurite);
            command.args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()]);
            command.args(["--inMemoryPersistence", "--disableTelemetry"]);
            command.args(["--skipApiVersionCheck", "--loose", "--silent"]);
            // In memory: nothing is written, but keep the cwd scratch.
            command.current_dir(dir);
            command
        })?;
        let server = AzureServer { process };
        server.create_container(BUCKET)?;
        Ok(server)
    }

    /// The account's blob endpoint, `http://127.0.0.1:{port}/devstoreaccount1`.
    pub fn endpoint(&self) -> String {
        format!("{}/{}", self.process.base_url(), Self::ACCOUNT)
    }

    /// `az://{BUCKET}/{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("az://{BUCKET}/{path}")
    }

    /// The environment an Azure client needs: the account and key
    /// (`AZURE_STORAGE_ACCOUNT_NAME`, `AZURE_STORAGE_ACCOUNT_KEY`, also as
    /// `AZURE_STORAGE_ACCOUNT` and `AZURE_STORAGE_KEY`), the endpoint
    /// (`AZURE_STORAGE_ENDPOINT`) and `AZURE_ALLOW_HTTP=true`; and, for
    /// object_store's emulator mode, `AZURITE_BLOB_STORAGE_URL`.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        self.env_with_key(Self::KEY)
    }

    /// A well-formed account key that is not the account's: Azurite checks
    /// every request's signature, so a client with it is refused (403).
    pub const WRONG_KEY: &'static str =
        "d3JvbmcgYWNjb3VudCBrZXkgZm9yIHRoZSB0ZXN0IG9mIGFjY2VzcyBkZW5pZWQ=";

    /// [`AzureServer::env`] with `key` as the account key (say
    /// [`AzureServer::WRONG_KEY`], to be refused).
    pub fn env_with_key(&self, key: &str) -> Vec<(&'static str, String)> {
        vec![
            ("AZURE_STORAGE_ACCOUNT_NAME", Self::ACCOUNT.to_owned()),
            ("AZURE_STORAGE_ACCOUNT_KEY", key.to_owned()),
            ("AZURE_STORAGE_ACCOUNT", Self::ACCOUNT.to_owned()),
            ("AZURE_STORAGE_KEY", key.to_owned()),
            ("AZURE_STORAGE_ENDPOINT", self.endpoint()),
            ("AZURE_ALLOW_HTTP", "true".to_owned()),
            ("AZURITE_BLOB_STORAGE_URL", self.process.base_url()),
        ]
    }

    /// Creates another container (a `PUT ?restype=container` signed with
    /// the account key).
    pub fn create_container(&self, name: &str) -> Result<(), Error> {
        let url = format!("{}/{name}?restype=container", self.endpoint());
        let date = httpdate::fmt_http_date(std::time::SystemTime::now());
        let resource = format!("/{0}/{0}/{name}\nrestype:container", Self::ACCOUNT);
        let authorization = self.shared_key("PUT", &date, &resource);
        let answer = agent()
            .put(&url)
            .header("x-ms-date", &date)
            .header("x-ms-version", API_VERSION)
            .header("authorization", &authorization)
            .send_empty();
        check_answer(SERVER, &format!("PUT {url}"), answer, &[]).map(drop)
    }

    /// The blob `name` of [`BUCKET`]: its status and bytes (a signed GET).
    pub fn get(&self, name: &str) -> Result<(u16, Vec<u8>), Error> {
        let url = format!("{}/{BUCKET}/{name}", self.endpoint());
        let date = httpdate::fmt_http_date(std::time::SystemTime::now());
        let resource = format!("/{0}/{0}/{BUCKET}/{name}", Self::ACCOUNT);
        let authorization = self.shared_key("GET", &date, &resource);
        let answer = agent()
            .get(&url)
            .header("x-ms-date", &date)
            .header("x-ms-version", API_VERSION)
            .header("authorization", &authorization)
            .call();
        crate::read_answer(SERVER, &url, answer)
    }

    /// The `Authorization` header of a request with no body and no
    /// standard headers (Shared Key: the verb, eleven empty fields, the
    /// `x-ms-` headers, the resource).
    fn shared_key(&self, verb: &str, date: &str, resource: &str) -> String {
        let to_sign = format!(
            "{verb}\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{API_VERSION}\n{resource}"
        );
        let engine = base64::engine::general_purpose::STANDARD;
        // The key is a constant of this file: it decodes.
        let key = engine.decode(Self::KEY).unwrap_or_default();
        let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(&key)
            .expect("hmac accepts keys of any length");
        mac.update(to_sign.as_bytes());
        let signature = engine.encode(mac.finalize().into_bytes());
        format!("SharedKey {}:{signature}", Self::ACCOUNT)
    }
}
