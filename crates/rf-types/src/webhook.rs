//! Webhook payloads the services POST to a `notificationsURL`: data staging
//! notifications (`ingest-status`, `files-status`) and the batch job
//! notification, plus [`WebhookPayload`] to parse either. Field names are
//! snake_case on the wire, unlike the REST API.
//!
//! Receivers should deduplicate on `event_id` (redeliveries keep it and
//! increment `delivery_attempt`).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::ids::{EventId, IngestId, ShardId};

open_enum! {
    /// Outcome of a job in its webhook (`job_state`).
    pub enum JobState {
        /// `success`.
        Success = "success",
        /// `fail`.
        Fail = "fail",
    }
}

/// Why an ingest failed (`error_details`), e.g. type `unsafe-url-detected`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetails {
    /// Machine-readable kind.
    #[serde(rename = "type")]
    pub kind: String,
    /// Human-readable reason.
    pub reason: String,
}

/// One file that failed to ingest, e.g. type `file-size-limit-exceeded`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedFile {
    /// Machine-readable kind.
    #[serde(rename = "type")]
    pub kind: String,
    /// The file.
    pub file_name: String,
    /// Human-readable reason.
    pub reason: String,
}

/// Overall ingest result (`ingest-status-notification-v1`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestStatusNotification {
    /// Whether the ingest succeeded.
    pub success: bool,
    /// Present on failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_details: Option<ErrorDetails>,
}

/// Per-file results of one shard or chunk
/// (`ingest-files-status-notification-v1`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilesStatusNotification {
    /// Whether the shard as a whole succeeded.
    pub success: bool,
    /// Names of files ingested.
    #[serde(default)]
    pub ingested_files: Vec<String>,
    /// Files that failed.
    #[serde(default)]
    pub failed_files: Vec<FailedFile>,
    /// Whether the lists were cut short.
    #[serde(default)]
    pub content_truncated: bool,
}

/// The category-specific body of a staging notification, tagged by `type`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum StagingNotificationBody {
    /// `ingest-status-notification-v1`.
    #[serde(rename = "ingest-status-notification-v1")]
    IngestStatus(IngestStatusNotification),
    /// `ingest-files-status-notification-v1`.
    #[serde(rename = "ingest-files-status-notification-v1")]
    FilesStatus(FilesStatusNotification),
}

tagged_struct! {
/// A data staging notification (`roboflow-data-staging-notification-v1`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[serde(tag = "roboflow-data-staging-notification-v1", remote = "StagingNotification")]
pub struct StagingNotification {
    /// Unique per event: the deduplication key.
    pub event_id: EventId,
    /// The ingest this event belongs to.
    pub ingest_id: IngestId,
    /// The batch (a plain string: it is the server's word).
    pub batch_id: String,
    /// The shard, for per-shard file events; `null` for ingest-level events
    /// (always written).
    #[serde(default)]
    pub shard_id: Option<ShardId>,
    /// Category-specific body.
    pub notification: StagingNotificationBody,
    /// Delivery attempt, from 1.
    pub delivery_attempt: u32,
}
}

tagged_struct! {
/// The batch job notification (`roboflow-batch-job-notification-v1`), sent
/// when a job reaches a terminal state.
#[derive(Debug, Clone, PartialEq, Eq)]
#[serde(tag = "roboflow-batch-job-notification-v1", remote = "JobNotification")]
pub struct JobNotification {
    /// Unique per event: the deduplication key.
    pub event_id: EventId,
    /// The job.
    pub job_id: String,
    /// `success` or `fail`.
    pub job_state: JobState,
    /// Delivery attempt, from 1.
    pub delivery_attempt: u32,
}
}

/// Any webhook payload, told apart by its outer `type`. Use this in a
/// receiver that gets both kinds on one URL.
///
/// ```
/// use rf_types::{JobState, WebhookPayload};
///
/// let body = br#"{"type": "roboflow-batch-job-notification-v1",
///     "event_id": "c2d4e6f8", "job_id": "job-k3v9x0a1b2c3",
///     "job_state": "success", "delivery_attempt": 1}"#;
/// match WebhookPayload::from_slice(body)? {
///     WebhookPayload::Job(job) => assert_eq!(job.job_state, JobState::Success),
///     WebhookPayload::Staging(_) => unreachable!(),
/// }
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookPayload {
    /// `roboflow-data-staging-notification-v1`.
    Staging(StagingNotification),
    /// `roboflow-batch-job-notification-v1`.
    Job(JobNotification),
}

impl WebhookPayload {
    /// Parses a webhook request body.
    pub fn from_slice(body: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(body)
    }

    /// The deduplication key.
    pub fn event_id(&self) -> &EventId {
        match self {
            Self::Staging(n) => &n.event_id,
            Self::Job(n) => &n.event_id,
        }
    }

    /// Delivery attempt, from 1.
    pub fn delivery_attempt(&self) -> u32 {
        match self {
            Self::Staging(n) => n.delivery_attempt,
            Self::Job(n) => n.delivery_attempt,
        }
    }

    /// The outer `type` on the wire.
    pub fn kind_str(&self) -> &'static str {
        match self {
            Self::Staging(_) => StagingNotification::TYPE,
            Self::Job(_) => JobNotification::TYPE,
        }
    }
}

impl From<StagingNotification> for WebhookPayload {
    fn from(n: StagingNotification) -> Self {
        Self::Staging(n)
    }
}

impl From<JobNotification> for WebhookPayload {
    fn from(n: JobNotification) -> Self {
        Self::Job(n)
    }
}

impl Serialize for WebhookPayload {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Staging(n) => Serialize::serialize(n, serializer),
            Self::Job(n) => Serialize::serialize(n, serializer),
        }
    }
}

impl<'de> Deserialize<'de> for WebhookPayload {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let value = Value::deserialize(deserializer)?;
        let kind = value
            .get("type")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| D::Error::custom("webhook payload has no string `type` field"))?;
        match kind.as_str() {
            StagingNotification::TYPE => <StagingNotification as Deserialize>::deserialize(value)
                .map(Self::Staging)
                .map_err(D::Error::custom),
            JobNotification::TYPE => <JobNotification as Deserialize>::deserialize(value)
                .map(Self::Job)
                .map_err(D::Error::custom),
            other => Err(D::Error::custom(format!(
                "unknown webhook payload type {other:?}: expected \"{}\" or \"{}\"",
                StagingNotification::TYPE,
                JobNotification::TYPE
            ))),
        }
    }
}
