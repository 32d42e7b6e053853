//! [`CountTimeout`]: the count check ran out of time, with every shard's
//! status. It lives beside [`crate::Error`] (which carries it) rather than in
//! [`crate::wait`] (which produces it), so that the error types depend on no
//! module that uses them.

use std::fmt;
use std::time::Duration;

use rf_types::{StatusKind, status_kind};
use serde::Serialize;

/// One shard's status, as reported on a count timeout.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ShardSummary {
    /// Server-issued shard ID.
    pub shard_id: String,
    /// Status label.
    pub status_name: String,
    /// Status class (`info`, something with `error`, ...).
    pub status_type: String,
    /// Objects in the shard.
    pub objects: u64,
}

/// The count check ran out of time.
#[derive(Debug, Clone, PartialEq, Serialize, thiserror::Error)]
#[serde(rename_all = "camelCase")]
pub struct CountTimeout {
    /// The batch.
    pub batch_id: String,
    /// Items expected.
    pub expected: u64,
    /// Items counted at the last poll.
    pub counted: u64,
    /// How long we waited.
    pub waited: Duration,
    /// Files the service reported as rejected. When these account for every
    /// missing item the check stops early (waiting longer cannot help) and
    /// this is non-zero; on a plain timeout it is 0.
    pub rejected: u64,
    /// Every shard's status (empty for simple batches).
    pub shards: Vec<ShardSummary>,
    /// Files the service reported as failed (from shard status metadata),
    /// as `name (reason)`.
    pub failed_files: Vec<String>,
    /// The item names of those files alone.
    pub failed_names: Vec<String>,
}

impl fmt::Display for CountTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.rejected > 0 {
            write!(
                f,
                "batch {:?} holds {} of {} expected items: the service rejected {} files",
                self.batch_id, self.counted, self.expected, self.rejected
            )?;
        } else {
            write!(
                f,
                "batch {:?} holds {} of {} expected items after {}s",
                self.batch_id,
                self.counted,
                self.expected,
                self.waited.as_secs()
            )?;
        }
        if !self.shards.is_empty() {
            let failed = self
                .shards
                .iter()
                .filter(|s| status_kind(&s.status_type) == StatusKind::Failed)
                .count();
            write!(f, "; {} shards ({failed} failed):", self.shards.len())?;
            for s in self.shards.iter().take(20) {
                write!(
                    f,
                    " {} {}/{} ({} objects);",
                    s.shard_id, s.status_type, s.status_name, s.objects
                )?;
            }
            if self.shards.len() > 20 {
                write!(f, " ... {} more;", self.shards.len() - 20)?;
            }
        }
        if !self.failed_files.is_empty() {
            write!(
                f,
                " failed files: {}",
                self.failed_files
                    .iter()
                    .take(20)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            )?;
            if self.failed_files.len() > 20 {
                write!(f, " ... {} more", self.failed_files.len() - 20)?;
            }
            f.write_str(";")?;
        }
        if self.rejected > 0 {
            f.write_str(" fix or remove the rejected files; the rest of the batch is ready")
        } else {
            f.write_str(" wait longer (raise the count timeout) or re-run to resume")
        }
    }
}
