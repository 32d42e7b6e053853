//! The types of an export into a bucket: where it goes ([`BucketTarget`]),
//! how ([`BucketSettings`]), what it did ([`BucketSummary`]) and why it
//! failed ([`BucketError`]). The upload itself is
//! [`crate::export::bucket::upload_dir`]; these live apart so that the
//! crate's error and report types can name them without importing the
//! export stage.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use object_store::ObjectStore;
use object_store::path::{Path as StorePath, PathPart};

use crate::cloud::error::{StoreFault, refine_listing_error};

/// Where an export goes in a bucket: the store, the prefix inside it, and
/// the URL it was given as (for messages and the journal).
#[derive(Debug, Clone)]
pub struct BucketTarget {
    /// The bucket URL as given (`s3://bucket/prefix/`).
    pub url: String,
    /// The bucket (or container).
    pub store: Arc<dyn ObjectStore>,
    /// Where files go inside it (empty: the bucket's root).
    pub prefix: StorePath,
    /// How the upload runs.
    pub settings: BucketSettings,
}

impl PartialEq for BucketTarget {
    /// Two targets are the same when their URL and prefix are (the store
    /// is a connection to them).
    fn eq(&self, other: &Self) -> bool {
        self.url == other.url && self.prefix == other.prefix && self.settings == other.settings
    }
}

impl BucketTarget {
    /// A target with the default settings.
    pub fn new(
        url: impl Into<String>,
        store: Arc<dyn ObjectStore>,
        prefix: StorePath,
    ) -> BucketTarget {
        BucketTarget {
            url: url.into(),
            store,
            prefix,
            settings: BucketSettings::default(),
        }
    }

    /// The bucket of `url` (`s3://`, `gs://`, `az://`), opened from the
    /// cloud's environment (see [`crate::cloud::open`]), with the URL's
    /// prefix. A glob in the URL is refused: an export names a place, not
    /// a pattern.
    pub fn open(url: &crate::cloud::CloudUrl) -> Result<BucketTarget, BucketError> {
        if url.pattern().is_some() {
            return Err(BucketError::Glob {
                url: url.as_str().to_owned(),
            });
        }
        let store: Arc<dyn ObjectStore> = crate::cloud::open(url).map_err(Box::new)?;
        Ok(BucketTarget::new(url.as_str(), store, url.prefix().clone()))
    }

    /// Asks the store for one listing page under the prefix, so that a
    /// missing bucket or refused credentials show before anything is
    /// downloaded.
    pub async fn check(&self) -> Result<(), BucketError> {
        match self.store.list_with_delimiter(Some(&self.prefix)).await {
            Ok(_) => Ok(()),
            Err(e) => {
                let e = refine_listing_error(self.store.as_ref(), &self.prefix, e).await;
                Err(self.listing_failure(e))
            }
        }
    }

    /// A failed listing of the target as a [`BucketError`]: typed when the
    /// store said why, [`BucketError::Unreachable`] otherwise.
    fn listing_failure(&self, e: object_store::Error) -> BucketError {
        match BucketError::from_store(self, &self.prefix, e) {
            BucketError::Transfer { url, source, .. } => BucketError::Unreachable { url, source },
            other => other,
        }
    }

    /// The object key of the file at `relative` (a path inside the staging
    /// directory), or `None` when a component is not UTF-8 text.
    pub(crate) fn key_of(&self, relative: &Path) -> Option<StorePath> {
        let mut parts: Vec<PathPart<'static>> = self
            .prefix
            .parts()
            .map(|p| p.as_ref().to_owned().into())
            .collect();
        for component in relative.components() {
            let text = component.as_os_str().to_str()?;
            parts.push(PathPart::from(text.to_owned()));
        }
        Some(StorePath::from_iter(parts))
    }

    /// `scheme://bucket/key` of `key` (the journal's name for an object).
    pub(crate) fn object_url(&self, key: &StorePath) -> String {
        let root = self
            .url
            .split_once("://")
            .map(|(scheme, rest)| {
                let bucket = rest.split('/').next().unwrap_or_default();
                format!("{scheme}://{bucket}")
            })
            .unwrap_or_else(|| self.url.clone());
        format!("{root}/{key}")
    }
}

/// How [`crate::export::bucket::upload_dir`] runs.
#[derive(Debug, Clone, PartialEq)]
pub struct BucketSettings {
    /// Files uploaded at once (default 4).
    pub files_in_flight: usize,
    /// The size of a multipart upload's parts, and the largest file sent in
    /// one `PUT` (default 8 MiB; S3 wants at least 5 MiB).
    pub part_size: usize,
    /// Parts of one file in flight at once (default 2).
    pub parts_in_flight: usize,
}

impl Default for BucketSettings {
    fn default() -> Self {
        BucketSettings {
            files_in_flight: 4,
            part_size: 8 * 1024 * 1024,
            parts_in_flight: 2,
        }
    }
}

/// What [`crate::export::bucket::upload_dir`] did.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BucketSummary {
    /// The bucket URL.
    pub url: String,
    /// Files in the staging directory.
    pub files: usize,
    /// Files uploaded now.
    pub uploaded_now: usize,
    /// Files already complete in the bucket (not sent again).
    pub uploaded_before: usize,
    /// Bytes uploaded now.
    pub bytes: u64,
    /// Files that went up as multipart uploads.
    pub multipart: usize,
    /// Failed uploads (`path: error`).
    pub failures: Vec<String>,
}

/// Why an upload into a bucket failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BucketError {
    /// The bucket could not be opened (credentials, configuration).
    #[error(transparent)]
    Open(#[from] Box<crate::cloud::CloudError>),
    /// The URL has a glob: an export needs a place, not a pattern.
    #[error(
        "{url} has a glob pattern; an export goes to a bucket and prefix (s3://bucket/prefix/)"
    )]
    Glob {
        /// The bucket URL.
        url: String,
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
    /// The credentials were refused or do not allow writing.
    #[error("access denied to {url}: {source}")]
    AccessDenied {
        /// The bucket URL.
        url: String,
        /// What the store answered.
        #[source]
        source: Box<object_store::Error>,
    },
    /// The bucket could not be listed before the export (most often: it
    /// does not exist; object_store does not tell that apart for S3).
    #[error(
        "cannot list {url} (does the bucket exist, and may these credentials list it?): {source}"
    )]
    Unreachable {
        /// The bucket URL.
        url: String,
        /// What the store answered.
        #[source]
        source: Box<object_store::Error>,
    },
    /// One object could not be written (network, server error).
    #[error("cannot upload {key} to {url}: {source}")]
    Transfer {
        /// The bucket URL.
        url: String,
        /// The object key.
        key: String,
        /// What the store answered.
        #[source]
        source: Box<object_store::Error>,
    },
    /// A local file could not be read (or the staging directory walked).
    #[error("cannot read {path} to upload it: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file's name is not text, so it has no object key.
    #[error("{path} has a name that is not UTF-8 text; it cannot be an object key")]
    BadName {
        /// The file.
        path: PathBuf,
    },
    /// The journal of completed uploads could not be read or written.
    #[error("cannot record uploads in {path}: {source}")]
    Journal {
        /// The journal file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Some files failed; the others are in the bucket and a re-run sends
    /// only the failed ones.
    #[error("{failed} of {total} uploads to {url} failed (first: {first}); re-run to send them")]
    UploadsFailed {
        /// The bucket URL.
        url: String,
        /// Files that failed.
        failed: usize,
        /// Files in all.
        total: usize,
        /// The first failure.
        first: String,
    },
    /// The upload was cancelled.
    #[error("cancelled; re-run the same command to resume")]
    Cancelled,
}

impl BucketError {
    /// Whether this error ends the whole upload (a missing bucket, refused
    /// credentials), as opposed to one file's failure.
    pub(crate) fn is_fatal(&self) -> bool {
        matches!(
            self,
            BucketError::BucketNotFound { .. } | BucketError::AccessDenied { .. }
        )
    }

    /// Sorts a store error by its kind (never its text).
    pub(crate) fn from_store(
        target: &BucketTarget,
        key: &StorePath,
        source: object_store::Error,
    ) -> Self {
        let url = target.url.clone();
        let fault = StoreFault::of(&source);
        let source = Box::new(source);
        match fault {
            StoreFault::Denied => BucketError::AccessDenied { url, source },
            // A write answered "not found": the bucket is missing.
            StoreFault::NotFound => BucketError::BucketNotFound { url, source },
            StoreFault::Other => BucketError::Transfer {
                url,
                key: key.to_string(),
                source,
            },
        }
    }
}
