//! Opens a bucket from each cloud's standard environment.
//!
//! - S3: `AmazonS3Builder::from_env()`: `AWS_ACCESS_KEY_ID`,
//!   `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION` /
//!   `AWS_DEFAULT_REGION`, `AWS_ENDPOINT_URL` (S3-compatible stores; an
//!   `http://` endpoint is allowed as given), web identity and container
//!   credentials, else the instance metadata service.
//! - GCS: `GoogleCloudStorageBuilder::from_env()`:
//!   `GOOGLE_APPLICATION_CREDENTIALS` or `GOOGLE_SERVICE_ACCOUNT` (a service
//!   account file, which may carry `gcs_base_url` and `disable_oauth` for an
//!   emulator), else application default credentials.
//! - Azure: `MicrosoftAzureBuilder::from_env()`: `AZURE_STORAGE_ACCOUNT_NAME`
//!   with `AZURE_STORAGE_ACCOUNT_KEY` or `AZURE_STORAGE_SAS_KEY`,
//!   `AZURE_STORAGE_ENDPOINT`, `AZURE_STORAGE_USE_EMULATOR=true` for Azurite
//!   (`AZURITE_BLOB_STORAGE_URL` moves it off `127.0.0.1:10000`). With a
//!   SAS token and no key, presigned URLs are the blob's URL with the token
//!   (`cloud/sas.rs`).
//!
//! HTTPS uses rustls with the ring provider, as rf-transport does.

use std::collections::HashMap;
use std::sync::Arc;

use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::list::PaginatedListStore;
use object_store::signer::Signer;

use super::error::CloudError;
use super::sas::SasStore;
use super::url::{CloudUrl, Provider};

/// An object store that can also presign URLs and list page by page (S3,
/// GCS and Azure all can): the page-level listing lets [`super::Listing`]
/// find the first-level folders with one bounded request.
pub trait SigningStore: ObjectStore + Signer + PaginatedListStore {}

impl<T: ObjectStore + Signer + PaginatedListStore> SigningStore for T {}

/// An opened bucket.
pub type Store = Arc<dyn SigningStore>;

/// Opens the bucket of `url` with credentials and endpoints from the
/// process environment (see the module docs). Nothing is sent yet: a
/// missing bucket or refused key shows at the first listing.
pub fn open(url: &CloudUrl) -> Result<Store, CloudError> {
    open_with_env(url, std::env::vars())
}

/// [`open`] with the environment given as `(name, value)` pairs instead of
/// read from the process (what tests and embedding applications use).
pub fn open_with_env(
    url: &CloudUrl,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<Store, CloudError> {
    // object_store builds its own reqwest client; reqwest is built without
    // a default crypto provider (rf-transport passes its own), so the
    // process default is set to the same ring provider. An earlier install
    // (by this call or the application) is kept.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let env: Env = vars.into_iter().filter(|(_, v)| !v.is_empty()).collect();
    check_credentials(url, &env)?;
    let config = |source: object_store::Error| CloudError::Config {
        provider: url.provider(),
        url: url.as_str().to_owned(),
        source: Box::new(source),
    };
    let http_endpoint = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| env.get(*n))
            .is_some_and(|e| e.starts_with("http://"))
    };
    Ok(match url.provider() {
        Provider::S3 => {
            let mut builder = AmazonS3Builder::new();
            for (key, value) in configs(&env, "AWS_") {
                builder = builder.with_config(key, value);
            }
            builder = builder.with_bucket_name(url.bucket());
            if http_endpoint(&["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_ENDPOINT"]) {
                builder = builder.with_allow_http(true);
            }
            Arc::new(builder.build().map_err(config)?)
        }
        Provider::Gcs => {
            let mut builder = GoogleCloudStorageBuilder::new();
            if let Some(path) = env.get("SERVICE_ACCOUNT") {
                builder = builder.with_service_account_path(path);
            }
            for (key, value) in configs(&env, "GOOGLE_") {
                builder = builder.with_config(key, value);
            }
            Arc::new(
                builder
                    .with_bucket_name(url.bucket())
                    .build()
                    .map_err(config)?,
            )
        }
        Provider::Azure => {
            let mut builder = MicrosoftAzureBuilder::new();
            for (key, value) in configs(&env, "AZURE_") {
                builder = builder.with_config(key, value);
            }
            builder = builder.with_container_name(url.bucket());
            if http_endpoint(&["AZURE_STORAGE_ENDPOINT", "AZURE_ENDPOINT"]) {
                builder = builder.with_allow_http(true);
            }
            let store = builder.build().map_err(config)?;
            match sas_container(url, &env) {
                Some((container_url, sas)) => Arc::new(SasStore::new(store, container_url, &sas)),
                None => Arc::new(store),
            }
        }
    })
}

/// The container's URL and the SAS token, when Azure is reached with a
/// token only (no account key, no emulator): object_store cannot presign
/// with a token, [`SasStore`] appends it.
fn sas_container(url: &CloudUrl, env: &Env) -> Option<(url::Url, String)> {
    let first = |names: &[&str]| names.iter().find_map(|n| env.get(*n)).cloned();
    let sas = first(&["AZURE_STORAGE_SAS_KEY", "AZURE_STORAGE_SAS_TOKEN"])?;
    let has_key = first(&[
        "AZURE_STORAGE_ACCOUNT_KEY",
        "AZURE_STORAGE_ACCESS_KEY",
        "AZURE_STORAGE_MASTER_KEY",
    ])
    .is_some();
    let emulator = env
        .get("AZURE_STORAGE_USE_EMULATOR")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    if has_key || emulator {
        return None;
    }
    let endpoint = match first(&["AZURE_STORAGE_ENDPOINT", "AZURE_ENDPOINT"]) {
        Some(e) => e,
        None => {
            let account = first(&["AZURE_STORAGE_ACCOUNT_NAME", "AZURE_STORAGE_ACCOUNT"])?;
            format!("https://{account}.blob.core.windows.net")
        }
    };
    let mut container_url = url::Url::parse(&endpoint).ok()?;
    container_url
        .path_segments_mut()
        .ok()?
        .pop_if_empty()
        .push(url.bucket());
    Some((container_url, sas))
}

type Env = HashMap<String, String>;

/// The variables starting with `prefix` that the builder knows, as its
/// config keys: what each builder's `from_env` does with the process
/// environment.
fn configs<'a, K: std::str::FromStr>(
    env: &'a Env,
    prefix: &'a str,
) -> impl Iterator<Item = (K, &'a String)> + 'a {
    env.iter()
        .filter(move |(name, _)| name.starts_with(prefix))
        .filter_map(|(name, value)| Some((name.to_ascii_lowercase().parse().ok()?, value)))
}

/// Refuses at once when the environment offers no credential at all and
/// the platform's metadata service is switched off (`AWS_EC2_METADATA_DISABLED`,
/// `NO_GCE_CHECK`), rather than waiting for a listing to time out.
fn check_credentials(url: &CloudUrl, env: &Env) -> Result<(), CloudError> {
    let any = |names: &[&str]| names.iter().any(|n| env.contains_key(*n));
    let flag = |name: &str| {
        env.get(name)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    };
    let (missing, hint) = match url.provider() {
        Provider::S3 => (
            !any(&[
                "AWS_ACCESS_KEY_ID",
                "AWS_WEB_IDENTITY_TOKEN_FILE",
                "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            ]) && !flag("AWS_SKIP_SIGNATURE")
                && flag("AWS_EC2_METADATA_DISABLED"),
            "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_ENDPOINT_URL for an S3-compatible store)",
        ),
        Provider::Gcs => (
            !any(&[
                "GOOGLE_APPLICATION_CREDENTIALS",
                "GOOGLE_SERVICE_ACCOUNT",
                "GOOGLE_SERVICE_ACCOUNT_PATH",
                "GOOGLE_SERVICE_ACCOUNT_KEY",
                "SERVICE_ACCOUNT",
            ]) && flag("NO_GCE_CHECK"),
            "set GOOGLE_APPLICATION_CREDENTIALS to a service account key file",
        ),
        Provider::Azure => (
            !flag("AZURE_STORAGE_USE_EMULATOR")
                && (!any(&["AZURE_STORAGE_ACCOUNT_NAME", "AZURE_STORAGE_ACCOUNT"])
                    || !any(&[
                        "AZURE_STORAGE_ACCOUNT_KEY",
                        "AZURE_STORAGE_ACCESS_KEY",
                        "AZURE_STORAGE_SAS_KEY",
                        "AZURE_STORAGE_SAS_TOKEN",
                        "AZURE_CLIENT_ID",
                        "AZURE_FEDERATED_TOKEN_FILE",
                    ]) && flag("AZURE_NO_MANAGED_IDENTITY")),
            "set AZURE_STORAGE_ACCOUNT_NAME with AZURE_STORAGE_ACCOUNT_KEY or AZURE_STORAGE_SAS_KEY (or AZURE_STORAGE_USE_EMULATOR=true for Azurite)",
        ),
    };
    if missing {
        return Err(CloudError::NoCredentials {
            provider: url.provider(),
            url: url.as_str().to_owned(),
            hint,
        });
    }
    Ok(())
}
