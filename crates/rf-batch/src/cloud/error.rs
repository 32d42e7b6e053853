//! Errors of bucket access: told apart by variant, each with the URL it is about.

use super::url::{CloudUrlError, Provider};

/// Why listing or signing a bucket failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CloudError {
    /// The URL itself is wrong (scheme, bucket, glob).
    #[error(transparent)]
    Url(#[from] CloudUrlError),
    /// The environment names no credentials for this cloud.
    #[error("no {} credentials for {url}: {hint}", provider.name())]
    NoCredentials {
        /// The cloud.
        provider: Provider,
        /// The bucket URL.
        url: String,
        /// Which variables or files provide them.
        hint: &'static str,
    },
    /// The client for the store could not be set up from the environment
    /// (a malformed variable, a missing account name).
    #[error("cannot set up {} access for {url}: {source}", provider.name())]
    Config {
        /// The cloud.
        provider: Provider,
        /// The bucket URL.
        url: String,
        /// What object_store said.
        #[source]
        source: Box<object_store::Error>,
    },
    /// The bucket (or container) does not exist.
    #[error("bucket not found: {url} ({source})")]
    BucketNotFound {
        /// The bucket URL.
        url: String,
        /// What the store answered.
        #[source]
        source: Box<object_store::Error>,
    },
    /// The credentials were refused or do not allow listing or signing.
    #[error("access denied to {url}: {source}")]
    AccessDenied {
        /// The bucket URL.
        url: String,
        /// What the store answered.
        #[source]
        source: Box<object_store::Error>,
    },
    /// Nothing at all under the prefix.
    #[error("{url} is empty: no object under this prefix")]
    EmptyPrefix {
        /// The bucket URL.
        url: String,
    },
    /// Objects were listed, but none passed the glob and the extension filter.
    #[error("no {kind} in {url}: {listed} objects listed, none matched{}", if *.has_glob { " the pattern and the extension list" } else { " the extension list" })]
    NoMatch {
        /// The bucket URL.
        url: String,
        /// `"images"` or `"videos"`.
        kind: &'static str,
        /// Objects listed.
        listed: u64,
        /// Whether the URL had a glob.
        has_glob: bool,
    },
    /// Listing failed for another reason (network, server error).
    #[error("cannot list {url}: {source}")]
    List {
        /// The bucket URL.
        url: String,
        /// What object_store said.
        #[source]
        source: Box<object_store::Error>,
    },
    /// Signing an object's URL failed.
    #[error("cannot presign {key} in {url}: {source}")]
    Sign {
        /// The bucket URL.
        url: String,
        /// The object key.
        key: String,
        /// What object_store said.
        #[source]
        source: Box<object_store::Error>,
    },
}

impl CloudError {
    /// Sorts a listing error by its kind (never its text).
    pub(crate) fn from_listing(url: &str, source: object_store::Error) -> CloudError {
        let url = url.to_owned();
        let source = Box::new(source);
        match *source {
            object_store::Error::NotFound { .. } => CloudError::BucketNotFound { url, source },
            object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. } => {
                CloudError::AccessDenied { url, source }
            }
            _ => CloudError::List { url, source },
        }
    }
}
