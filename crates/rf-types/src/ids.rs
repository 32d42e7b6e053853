//! Identifiers: the client-chosen, validated [`BatchId`] and [`JobId`], and
//! plain newtypes for the opaque IDs the server issues (stages, tasks,
//! shards, parts, ingests, webhook events, workspaces).
//!
//! Client-chosen IDs end up in URL paths unescaped, so they are checked
//! everywhere they enter the program: in [`BatchId::new`], in `FromStr` and
//! when deserializing.

use std::fmt;
use std::str::FromStr;

use rand::RngExt;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Characters allowed in client-chosen IDs, as the error messages state them.
const ID_CHARSET_TEXT: &str = "a-z, 0-9, '_' and '-'";

/// Characters used by the generators: lower-case letters and digits.
const GENERATED_CHARSET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// Number of random characters after the prefix of generated IDs.
const GENERATED_RANDOM_LEN: usize = 12;

/// A client-chosen ID broke its rule.
///
/// The message states the rule and the offending value, for example
/// `invalid batch id "Foo": use 1-64 characters of a-z, 0-9, '_' and '-'`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} {value:?}: use 1-{max_len} characters of {ID_CHARSET_TEXT}")]
pub struct IdError {
    kind: &'static str,
    value: String,
    max_len: usize,
}

impl IdError {
    /// What kind of ID was rejected (`"batch id"` or `"job id"`).
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// The rejected value, verbatim.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// The maximum length of this kind of ID.
    pub fn max_len(&self) -> usize {
        self.max_len
    }
}

/// Whether `value` has 1..=`max_len` characters, all of `[a-z0-9_-]`.
fn is_valid_id(value: &str, max_len: usize) -> bool {
    !value.is_empty()
        && value.len() <= max_len
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// `prefix` followed by [`GENERATED_RANDOM_LEN`] random `[a-z0-9]` characters.
fn generate_with_prefix(prefix: &str) -> String {
    let mut rng = rand::rng();
    let mut out = String::with_capacity(prefix.len() + GENERATED_RANDOM_LEN);
    out.push_str(prefix);
    for _ in 0..GENERATED_RANDOM_LEN {
        let index = rng.random_range(0..GENERATED_CHARSET.len());
        out.push(char::from(GENERATED_CHARSET[index]));
    }
    out
}

macro_rules! validated_id {
    (
        $(#[$meta:meta])*
        $name:ident, kind = $kind:literal, max = $max:expr, prefix = $prefix:literal
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// Maximum length in characters.
            pub const MAX_LEN: usize = $max;

            /// Validates and wraps `value`: 1 to [`Self::MAX_LEN`] characters of
            /// `a-z`, `0-9`, `_` and `-`.
            pub fn new(value: impl Into<String>) -> Result<Self, IdError> {
                let value = value.into();
                if is_valid_id(&value, $max) {
                    Ok(Self(value))
                } else {
                    Err(IdError { kind: $kind, value, max_len: $max })
                }
            }

            #[doc = concat!("A fresh random ID: `\"", $prefix, "\"` followed by 12 random `[a-z0-9]` characters.")]
            pub fn generate() -> Self {
                Self(generate_with_prefix($prefix))
            }

            /// The ID as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The ID as an owned `String`.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::new(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::new(value)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = IdError;
            fn try_from(value: &str) -> Result<Self, Self::Error> {
                Self::new(value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> Self {
                value.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let value = String::deserialize(deserializer)?;
                Self::new(value).map_err(serde::de::Error::custom)
            }
        }
    };
}

validated_id!(
    /// A staging batch ID chosen by the client: 1-64 characters of
    /// `[a-z0-9_-]`.
    ///
    /// ```
    /// use rf_types::BatchId;
    ///
    /// let id: BatchId = "nightly-cam-0601".parse()?;
    /// assert_eq!(id.as_str(), "nightly-cam-0601");
    ///
    /// let err = BatchId::new("Nightly").unwrap_err();
    /// assert_eq!(
    ///     err.to_string(),
    ///     r#"invalid batch id "Nightly": use 1-64 characters of a-z, 0-9, '_' and '-'"#
    /// );
    /// assert!(BatchId::generate().as_str().starts_with("batch-"));
    /// # Ok::<(), rf_types::IdError>(())
    /// ```
    BatchId, kind = "batch id", max = 64, prefix = "batch-"
);

validated_id!(
    /// A batch job ID chosen by the client: 1-20 characters of `[a-z0-9_-]`.
    ///
    /// ```
    /// use rf_types::JobId;
    ///
    /// let id = JobId::generate();
    /// assert!(id.as_str().starts_with("job-"));
    /// assert_eq!(id.as_str().len(), 16);
    /// assert!(JobId::new("a-job-id-that-is-far-too-long").is_err());
    /// ```
    JobId, kind = "job id", max = 20, prefix = "job-"
);

impl JobId {
    /// A fresh random ID for a TensorRT compilation job: `"trt-"` followed by
    /// 12 random `[a-z0-9]` characters (what the official CLI generates).
    pub fn generate_trt() -> Self {
        Self(generate_with_prefix("trt-"))
    }
}

plain_id!(
    /// A processing stage ID (`processingStageId`), issued by the server.
    StageId
);
plain_id!(
    /// A processing task ID (`taskId`), issued by the server.
    TaskId
);
plain_id!(
    /// A staging shard ID (`shardId`), issued by the server.
    ShardId
);
plain_id!(
    /// The name of a part of a multipart batch (`partName`), issued by the
    /// server.
    PartName
);
plain_id!(
    /// An ingest ID (`ingestId`): chosen by the client or assigned by the
    /// server.
    IngestId
);
plain_id!(
    /// A webhook event ID (`event_id`): the deduplication key of a
    /// notification.
    EventId
);
plain_id!(
    /// A workspace slug, as returned by the workspace lookup.
    Workspace
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries() {
        assert!(BatchId::new("a".repeat(64)).is_ok());
        assert!(BatchId::new("a".repeat(65)).is_err());
        assert!(JobId::new("a".repeat(20)).is_ok());
        assert!(JobId::new("a".repeat(21)).is_err());
        assert!(JobId::new("").is_err());
        assert!(JobId::new("a_b-9").is_ok());
        assert!(JobId::new("a.b").is_err());
        assert!(JobId::new("é").is_err());
    }

    #[test]
    fn trt_generator() {
        let id = JobId::generate_trt();
        assert!(id.as_str().starts_with("trt-"));
        assert_eq!(id.as_str().len(), 16);
        assert!(JobId::new(id.as_str()).is_ok());
    }

    #[test]
    fn deserialize_validates() {
        let err = serde_json::from_str::<BatchId>("\"Bad Id\"")
            .expect_err("upper case and space must be rejected");
        assert!(
            err.to_string().contains("invalid batch id \"Bad Id\""),
            "{err}"
        );
        let ok: JobId = serde_json::from_str("\"job-1\"").expect("valid id");
        assert_eq!(ok, "job-1");
    }
}
