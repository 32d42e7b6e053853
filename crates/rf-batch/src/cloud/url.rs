//! Bucket URLs: `s3://bucket/prefix/`, `gs://`, `az://` / `azure://`, with an
//! optional glob such as `s3://b/p/**/*.jpg`.
//!
//! The path is split at the first segment holding a glob character (`*`, `?`,
//! `[`, `{`): the segments before it are the listing prefix, the rest is the
//! pattern, matched (with `globset`, `/` never crossed by `*`, `**/` matching
//! zero or more directories, case-sensitive) against each object's key
//! relative to the prefix. So `s3://b/2024-*/images/*.jpg` lists the whole
//! bucket and keeps `2024-01/images/x.jpg`, where the official client would
//! look for a folder literally named `2024-*`.

use std::fmt;

use globset::{GlobBuilder, GlobMatcher};
use object_store::path::Path as StorePath;

/// Which cloud a [`CloudUrl`] points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Provider {
    /// Amazon S3 or an S3-compatible store (`s3://`).
    S3,
    /// Google Cloud Storage (`gs://`, also `gcs://`).
    Gcs,
    /// Azure Blob Storage (`az://` or `azure://`; the bucket is the container).
    Azure,
}

impl Provider {
    /// The cloud's name, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Provider::S3 => "S3",
            Provider::Gcs => "Google Cloud Storage",
            Provider::Azure => "Azure Blob Storage",
        }
    }
}

/// Why a string is not a usable bucket URL.
#[derive(Debug, thiserror::Error)]
pub enum CloudUrlError {
    /// No `scheme://` at all.
    #[error("{url:?} is not a bucket URL (expected s3://, gs://, az:// or azure://)")]
    NotAUrl {
        /// The text given.
        url: String,
    },
    /// A scheme rf does not list buckets of.
    #[error("unknown storage scheme {scheme:?} in {url:?} (use s3://, gs://, az:// or azure://)")]
    UnknownScheme {
        /// The text given.
        url: String,
        /// The scheme found.
        scheme: String,
    },
    /// `s3://` with nothing (or a glob) where the bucket goes.
    #[error("{url:?} names no bucket (expected {scheme}://BUCKET/PREFIX/)")]
    NoBucket {
        /// The text given.
        url: String,
        /// The scheme found.
        scheme: String,
    },
    /// The pattern part does not compile.
    #[error("bad glob {pattern:?} in {url:?}: {source}")]
    BadGlob {
        /// The text given.
        url: String,
        /// The pattern part.
        pattern: String,
        /// What globset said.
        #[source]
        source: globset::Error,
    },
    /// The prefix is not a valid object path (empty segment, `.` or `..`).
    #[error("bad prefix {prefix:?} in {url:?}: {source}")]
    BadPrefix {
        /// The text given.
        url: String,
        /// The prefix part.
        prefix: String,
        /// What object_store said.
        #[source]
        source: object_store::path::Error,
    },
}

/// A parsed bucket URL: cloud, bucket, listing prefix and optional glob.
#[derive(Debug, Clone)]
pub struct CloudUrl {
    original: String,
    provider: Provider,
    bucket: String,
    prefix: StorePath,
    glob: Option<(String, GlobMatcher)>,
}

impl CloudUrl {
    /// Parses `scheme://bucket[/prefix][/glob]`.
    ///
    /// ```
    /// use rf_batch::cloud::{CloudUrl, Provider};
    /// let url = CloudUrl::parse("s3://photos/2024/**/*.jpg").unwrap();
    /// assert_eq!(url.provider(), Provider::S3);
    /// assert_eq!(url.bucket(), "photos");
    /// assert_eq!(url.prefix().as_ref(), "2024");
    /// assert!(url.matches("a/b/x.jpg"));
    /// assert!(!url.matches("x.png"));
    /// ```
    pub fn parse(text: &str) -> Result<CloudUrl, CloudUrlError> {
        let (scheme, rest) = text
            .split_once("://")
            .ok_or_else(|| CloudUrlError::NotAUrl {
                url: text.to_owned(),
            })?;
        let provider = provider_of(text, scheme)?;
        let mut segments = rest.split('/');
        let bucket = segments.next().unwrap_or_default();
        if bucket.is_empty() || has_glob(bucket) {
            return Err(CloudUrlError::NoBucket {
                url: text.to_owned(),
                scheme: scheme.to_owned(),
            });
        }
        let segments: Vec<&str> = segments.collect();
        let split = segments
            .iter()
            .position(|s| has_glob(s))
            .unwrap_or(segments.len());
        let prefix_text = segments[..split].join("/");
        let prefix = StorePath::parse(prefix_text.trim_end_matches('/')).map_err(|source| {
            CloudUrlError::BadPrefix {
                url: text.to_owned(),
                prefix: prefix_text.clone(),
                source,
            }
        })?;
        let glob = match segments[split..].join("/") {
            pattern if pattern.is_empty() => None,
            pattern => Some(compile(text, pattern)?),
        };
        Ok(CloudUrl {
            original: text.to_owned(),
            provider,
            bucket: bucket.to_owned(),
            prefix,
            glob,
        })
    }

    /// True when `text` starts with a scheme this module reads (a quick test
    /// to tell a bucket URL from a local path before parsing).
    pub fn looks_like(text: &str) -> bool {
        text.split_once("://").is_some_and(|(scheme, _)| {
            !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphanumeric())
        })
    }

    /// The URL as given.
    pub fn as_str(&self) -> &str {
        &self.original
    }

    /// The cloud.
    pub fn provider(&self) -> Provider {
        self.provider
    }

    /// The bucket (the container for Azure).
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The listing prefix inside the bucket (a whole-segment prefix: `p`
    /// lists `p/x.jpg`, never `px.jpg`); empty for the whole bucket.
    pub fn prefix(&self) -> &StorePath {
        &self.prefix
    }

    /// The glob pattern, if the URL has one.
    pub fn pattern(&self) -> Option<&str> {
        self.glob.as_ref().map(|(p, _)| p.as_str())
    }

    /// The key of `location` relative to the prefix, or `None` when it is
    /// not under the prefix.
    pub fn relative(&self, location: &StorePath) -> Option<String> {
        location.prefix_match(&self.prefix).map(|parts| {
            parts
                .map(|p| p.as_ref().to_owned())
                .collect::<Vec<_>>()
                .join("/")
        })
    }

    /// Whether a key relative to the prefix passes the glob (always true
    /// without one).
    pub fn matches(&self, relative: &str) -> bool {
        self.glob.as_ref().is_none_or(|(_, m)| m.is_match(relative))
    }
}

/// Two URLs are equal when their text is.
impl PartialEq for CloudUrl {
    fn eq(&self, other: &CloudUrl) -> bool {
        self.original == other.original
    }
}

impl Eq for CloudUrl {}

impl fmt::Display for CloudUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.original)
    }
}

fn provider_of(text: &str, scheme: &str) -> Result<Provider, CloudUrlError> {
    match scheme.to_ascii_lowercase().as_str() {
        "s3" | "s3a" => Ok(Provider::S3),
        "gs" | "gcs" => Ok(Provider::Gcs),
        "az" | "azure" => Ok(Provider::Azure),
        _ => Err(CloudUrlError::UnknownScheme {
            url: text.to_owned(),
            scheme: scheme.to_owned(),
        }),
    }
}

fn has_glob(segment: &str) -> bool {
    segment.contains(['*', '?', '[', ']', '{', '}'])
}

fn compile(url: &str, pattern: String) -> Result<(String, GlobMatcher), CloudUrlError> {
    let glob = GlobBuilder::new(&pattern)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .map_err(|source| CloudUrlError::BadGlob {
            url: url.to_owned(),
            pattern: pattern.clone(),
            source,
        })?;
    Ok((pattern, glob.compile_matcher()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> CloudUrl {
        CloudUrl::parse(s).unwrap()
    }

    #[test]
    fn schemes_buckets_and_prefixes() {
        let u = parse("s3://b/p/q/");
        assert_eq!(
            (u.provider(), u.bucket(), u.prefix().as_ref()),
            (Provider::S3, "b", "p/q")
        );
        assert_eq!(u.pattern(), None);
        assert_eq!(parse("gs://b").prefix().as_ref(), "");
        assert_eq!(parse("gcs://b/x").provider(), Provider::Gcs);
        assert_eq!(parse("az://c/x").provider(), Provider::Azure);
        assert_eq!(parse("azure://c/").provider(), Provider::Azure);
        assert_eq!(parse("S3://b/p").provider(), Provider::S3);
    }

    #[test]
    fn glob_starts_at_first_glob_segment() {
        let u = parse("s3://b/2024-*/images/*.jpg");
        assert_eq!(u.prefix().as_ref(), "");
        assert_eq!(u.pattern(), Some("2024-*/images/*.jpg"));
        assert!(u.matches("2024-01/images/x.jpg"));
        assert!(!u.matches("2024-01/images/a/x.jpg"));
        let u = parse("s3://b/p/**/*.jpg");
        assert_eq!(u.prefix().as_ref(), "p");
        assert!(u.matches("x.jpg") && u.matches("a/b/x.jpg"));
        assert!(
            !u.matches("x.JPG"),
            "case-sensitive like the official client"
        );
        let u = parse("s3://b/img?.jpg");
        assert!(u.matches("img1.jpg") && !u.matches("img10.jpg"));
        assert!(parse("s3://b/[ab]*.jpg").matches("a1.jpg"));
        assert!(!parse("s3://b/*.jpg").matches("a/x.jpg"));
    }

    #[test]
    fn relative_keys_strip_the_prefix_by_segment() {
        let u = parse("s3://b/p/");
        let rel = |k: &str| u.relative(&StorePath::from(k));
        assert_eq!(rel("p/a/x.jpg").as_deref(), Some("a/x.jpg"));
        assert_eq!(rel("px/x.jpg"), None);
        assert_eq!(
            parse("s3://b")
                .relative(&StorePath::from("a/x.jpg"))
                .as_deref(),
            Some("a/x.jpg")
        );
    }

    #[test]
    fn typed_errors() {
        let e = |s: &str| CloudUrl::parse(s).unwrap_err();
        assert!(matches!(
            e("ftp://b/p"),
            CloudUrlError::UnknownScheme { .. }
        ));
        assert!(matches!(e("/data/images"), CloudUrlError::NotAUrl { .. }));
        assert!(matches!(e("s3://"), CloudUrlError::NoBucket { .. }));
        assert!(matches!(e("s3:///p"), CloudUrlError::NoBucket { .. }));
        assert!(matches!(e("s3://b*/p"), CloudUrlError::NoBucket { .. }));
        assert!(matches!(e("s3://b/p/[a"), CloudUrlError::BadGlob { .. }));
        assert!(matches!(
            e("s3://b/a//b/x"),
            CloudUrlError::BadPrefix { .. }
        ));
        assert!(CloudUrl::looks_like("s3://b") && !CloudUrl::looks_like("./dir"));
    }
}
