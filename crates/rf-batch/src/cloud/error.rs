//! Errors of bucket access: told apart by variant, each with the URL it is about.

use object_store::path::{Path as StorePath, PathPart};
use object_store::{ObjectStore, ObjectStoreExt};

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

/// What a store's failure says, by the error's kind (never its text):
/// shared by ingest ([`CloudError`]) and export into buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StoreFault {
    /// The bucket (or the object) does not exist.
    NotFound,
    /// The credentials were refused or do not allow the operation.
    Denied,
    /// Anything else.
    Other,
}

/// A failed listing's error, made precise where it can be. Stores report a
/// missing bucket or a refused key on a listing as a generic error (only
/// single-object calls are typed), so when a listing fails that way one
/// object under `prefix` is asked for: an existing bucket lists even when
/// empty, so a typed "not found" there means no bucket, and a typed refusal
/// means no access. Any other answer leaves `error` as it was. Shared by
/// ingest's first listing page and the export's check of its target.
pub(crate) async fn refine_listing_error(
    store: &dyn ObjectStore,
    prefix: &StorePath,
    error: object_store::Error,
) -> object_store::Error {
    if !matches!(error, object_store::Error::Generic { .. }) {
        return error;
    }
    let probe = StorePath::from_iter(prefix.parts().chain([PathPart::from(".rf-probe")]));
    match store.head(&probe).await {
        Err(typed) if StoreFault::of(&typed) != StoreFault::Other => typed,
        _ => error,
    }
}

impl StoreFault {
    /// The kind of `error`.
    pub(crate) fn of(error: &object_store::Error) -> StoreFault {
        match error {
            object_store::Error::NotFound { .. } => StoreFault::NotFound,
            object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. } => StoreFault::Denied,
            _ => StoreFault::Other,
        }
    }
}

impl CloudError {
    /// Sorts a listing error by its kind.
    pub(crate) fn from_listing(url: &str, source: object_store::Error) -> CloudError {
        let url = url.to_owned();
        let fault = StoreFault::of(&source);
        let source = Box::new(source);
        match fault {
            StoreFault::NotFound => CloudError::BucketNotFound { url, source },
            StoreFault::Denied => CloudError::AccessDenied { url, source },
            StoreFault::Other => CloudError::List { url, source },
        }
    }
}
