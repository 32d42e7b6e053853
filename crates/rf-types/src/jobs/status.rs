//! What the Batch Processing API reports about jobs: job metadata, stages,
//! tasks, logs, their pagination envelopes, and the helpers that interpret
//! status strings the way the official client does.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::common::Notification;
use crate::ids::{StageId, TaskId};
use crate::timestamp::{self, Timestamp};

/// Name of the first stage of a workflow job.
pub const STAGE_PROCESSING: &str = "processing";
/// Name of the second stage of a workflow job (packs results into archives).
pub const STAGE_EXPORT: &str = "export";

open_enum! {
    /// Job status of the newer get-job answer (`jobStatus`).
    pub enum JobStatus {
        /// `pending`.
        Pending = "pending",
        /// `processing`.
        Processing = "processing",
        /// `completed`.
        Completed = "completed",
        /// `failed`.
        Failed = "failed",
    }
}

/// Reads `null` as the type's default (for non-nullable fields some servers
/// send as `null`).
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// Everything the server reports about one job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobMetadata {
    /// The job ID (a plain string: the server may list jobs made by others).
    pub job_id: String,
    /// Human-readable name (the job ID when none was given).
    pub name: String,
    /// The submitted definition, verbatim. Parse it with
    /// `serde_json::from_value::<JobDefinition>` when needed.
    pub job_definition: Value,
    /// Name of the running stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_stage: Option<String>,
    /// Stage names in order, e.g. `["processing", "export"]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planned_stages: Option<Vec<String>>,
    /// Whether the job hit an error.
    #[serde(default, deserialize_with = "null_as_default")]
    pub error: bool,
    /// Whether the job finished, failed or was aborted.
    #[serde(default, deserialize_with = "null_as_default")]
    pub is_terminal: bool,
    /// Latest status message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_notification: Option<Notification>,
    /// Creation time.
    #[serde(with = "timestamp")]
    pub created_at: Timestamp,
    /// Time of the latest change.
    #[serde(with = "timestamp")]
    pub last_update: Timestamp,
    /// The restart bodies applied so far, oldest first.
    #[serde(default, deserialize_with = "null_as_default")]
    pub restart_parameters_override: Vec<Value>,
}

/// Answer of `GET .../jobs/{jobId}`. `job` is what the official client reads;
/// the newer docs add `status`, `jobStatus` and `progress`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetJobResponse {
    /// The job.
    pub job: JobMetadata,
    /// `"ok"` in the newer docs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Coarse job status (newer docs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_status: Option<JobStatus>,
    /// Fraction done, 0..=1 (newer docs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<f64>,
}

/// Answer of `GET .../jobs` (one page). `nextPageToken` is always written
/// (`null` on the last page): the official client requires the key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListJobsResponse {
    /// Jobs on this page.
    pub jobs: Vec<JobMetadata>,
    /// Token of the next page; `None` (written as `null`) on the last page.
    #[serde(default)]
    pub next_page_token: Option<String>,
}

/// One stage of a job (`processing`, `export`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobStage {
    /// The `{stageId}` of the tasks endpoint.
    pub processing_stage_id: StageId,
    /// Stage name.
    pub processing_stage_name: String,
    /// Expected number of tasks (> 0).
    pub tasks_number: u64,
    /// Multipart output batches the stage created (may be empty while running).
    pub output_batches: Vec<String>,
    /// When the stage started.
    #[serde(with = "timestamp")]
    pub start_timestamp: Timestamp,
    /// Latest stage message.
    pub notification: Notification,
    /// `info` while running; see [`status_kind`].
    pub status_type: String,
    /// Time of the latest event.
    #[serde(with = "timestamp")]
    pub last_event_timestamp: Timestamp,
}

/// Answer of `GET .../jobs/{jobId}/stages` (not paginated).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListStagesResponse {
    /// Every stage of the job.
    pub stages: Vec<JobStage>,
}

/// Status of one task (one processing chunk) of a stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskStatus {
    /// The task.
    pub task_id: TaskId,
    /// Latest task message.
    pub notification: Notification,
    /// `info` while running; see [`status_kind`].
    pub status_type: String,
    /// Fraction done, 0..=1; `None` (written as `null`) before it starts.
    #[serde(default)]
    pub progress: Option<f64>,
    /// Time of the latest event.
    #[serde(with = "timestamp")]
    pub event_timestamp: Timestamp,
}

/// Answer of `GET .../stages/{stageId}/tasks` (one page). `nextPageToken` is
/// always written (`null` on the last page): the official client requires
/// the key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListTasksResponse {
    /// Tasks on this page.
    pub tasks: Vec<TaskStatus>,
    /// Token of the next page; `None` (written as `null`) on the last page.
    #[serde(default)]
    pub next_page_token: Option<String>,
}

/// Severity of a job log entry, and the `severity` filter of the logs
/// endpoint. Closed: the official client rejects other values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogSeverity {
    /// `info`.
    Info,
    /// `warning`.
    Warning,
    /// `error`.
    Error,
}

impl LogSeverity {
    /// Every severity.
    pub const ALL: [LogSeverity; 3] = [Self::Info, Self::Warning, Self::Error];

    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Error => "error",
        }
    }
}

impl fmt::Display for LogSeverity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string is not a log severity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid log severity {value:?}: use info, warning or error")]
pub struct ParseLogSeverityError {
    value: String,
}

impl FromStr for LogSeverity {
    type Err = ParseLogSeverityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|severity| severity.as_str() == s)
            .ok_or_else(|| ParseLogSeverityError {
                value: s.to_owned(),
            })
    }
}

/// One job log entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobLog {
    /// When the entry was written.
    #[serde(with = "timestamp")]
    pub created_at: Timestamp,
    /// The stage it concerns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processing_stage_id: Option<StageId>,
    /// The task it concerns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<TaskId>,
    /// Severity.
    pub severity: LogSeverity,
    /// Free-form source.
    pub reporting_module: String,
    /// Free-form kind.
    pub log_type: String,
    /// Free-form details (always an object).
    pub payload: Map<String, Value>,
}

/// Answer of `GET .../jobs/{jobId}/logs` (one page).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobLogsResponse {
    /// Entries on this page.
    pub logs: Vec<JobLog>,
    /// Token of the next page; `None` on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

/// What a stage or task `statusType` means, as the official client reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusKind {
    /// `info`: still running (or not started).
    Running,
    /// Terminal, containing `success`.
    Succeeded,
    /// Terminal, containing `error`.
    Failed,
    /// Terminal, neither success nor error.
    OtherTerminal,
}

impl StatusKind {
    /// Whether the stage or task is over.
    pub fn is_terminal(self) -> bool {
        !matches!(self, Self::Running)
    }
}

/// Classifies a stage or task `statusType`: `info` is running; anything else
/// is terminal: succeeded if it contains `success`, failed if it contains
/// `error` (both case-insensitive), otherwise another terminal state.
///
/// ```
/// use rf_types::{StatusKind, status_kind};
///
/// assert_eq!(status_kind("info"), StatusKind::Running);
/// assert_eq!(status_kind("SUCCESS"), StatusKind::Succeeded);
/// assert_eq!(status_kind("processing-error"), StatusKind::Failed);
/// assert_eq!(status_kind("aborted"), StatusKind::OtherTerminal);
/// ```
pub fn status_kind(status_type: &str) -> StatusKind {
    if status_type == "info" {
        return StatusKind::Running;
    }
    let lower = status_type.to_ascii_lowercase();
    if lower.contains("success") {
        StatusKind::Succeeded
    } else if lower.contains("error") {
        StatusKind::Failed
    } else {
        StatusKind::OtherTerminal
    }
}
