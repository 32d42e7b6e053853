//! `--out s3://bucket/prefix/` (also `gs://`, `az://`, `azure://`) for
//! `rf run`, `rf batch export` and `rf job export`: the bucket opened from
//! the cloud's environment, and the local staging directory the export
//! downloads into before rf-batch uploads it (`rf_batch::export::bucket`).

use std::path::{Path, PathBuf};

use rf_batch::cloud::CloudUrl;
use rf_batch::export::bucket::BucketTarget;

use super::session::map_error;
use crate::config::Config;
use crate::error::{CliError, Result};

/// Where an export writes: a local directory, and the bucket it is then
/// uploaded into when `--out` is a bucket URL.
#[derive(Debug)]
pub(crate) struct OutTarget {
    /// The directory files are downloaded into (the staging directory for
    /// a bucket).
    pub(crate) dir: PathBuf,
    /// The bucket, for a bucket `--out`.
    pub(crate) bucket: Option<BucketTarget>,
}

/// `--out` (and `--staging-dir`) as an [`OutTarget`]: a bucket URL opens
/// the bucket (nothing sent yet) and picks the staging directory; anything
/// else is a local directory (`--staging-dir` is then refused).
pub(crate) fn out_target(
    out: &Path,
    staging_dir: Option<&Path>,
    config: &Config,
) -> Result<OutTarget> {
    let text = out.to_string_lossy();
    if !CloudUrl::looks_like(&text) {
        if staging_dir.is_some() {
            return Err(CliError::usage(
                "--staging-dir is for a bucket --out (s3://, gs://, az://) only",
            ));
        }
        return Ok(OutTarget {
            dir: out.to_path_buf(),
            bucket: None,
        });
    }
    let url = CloudUrl::parse(&text).map_err(|e| map_error(&rf_batch::Error::Cloud(e.into())))?;
    let bucket = BucketTarget::open(&url).map_err(|e| map_error(&e.into()))?;
    let dir = match staging_dir {
        Some(dir) => dir.to_path_buf(),
        None => default_staging(&url, config)?,
    };
    Ok(OutTarget {
        dir,
        bucket: Some(bucket),
    })
}

/// `$XDG_CACHE_HOME/rf/bucket-exports/<URL>`: the bucket and prefix
/// percent-encoded into one directory name (so one export's directory
/// never holds another's).
fn default_staging(url: &CloudUrl, config: &Config) -> Result<PathBuf> {
    let cache = config.cache_dir.as_ref().ok_or_else(|| {
        CliError::local(
            "no cache directory for the staging of a bucket export: set XDG_CACHE_HOME or HOME, or pass --staging-dir",
        )
    })?;
    let name = format!(
        "{}://{}/{}",
        url.as_str().split("://").next().unwrap_or_default(),
        url.bucket(),
        url.prefix()
    );
    let encoded: String = url::form_urlencoded::byte_serialize(name.as_bytes()).collect();
    Ok(cache.join("bucket-exports").join(encoded))
}

/// The table row of an upload into a bucket.
pub(crate) fn bucket_row(summary: &rf_batch::export::bucket::BucketSummary) -> [String; 2] {
    [
        "bucket".to_owned(),
        format!(
            "{} ({}: {} uploaded now, {} already there)",
            summary.url,
            crate::events::plural(summary.files as u64, "file"),
            summary.uploaded_now,
            summary.uploaded_before
        ),
    ]
}
