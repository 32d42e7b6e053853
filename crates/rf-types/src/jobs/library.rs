//! Asset Library jobs (`POST BP/{ws}/asset-library/jobs`, what `roboflow
//! batch create` sends) and the workspace's async tasks that report their
//! start (`GET /{ws}/asynctasks/{taskId}`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::MachineType;

/// Most image IDs one Asset Library job may name (the official client's
/// limit).
pub const MAX_LIBRARY_IMAGE_IDS: usize = 2048;

/// Which images of the Asset Library a job runs over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LibrarySelection {
    /// These image IDs (at most [`MAX_LIBRARY_IMAGE_IDS`]).
    ImageIds(Vec<String>),
    /// The images a RoboQL query selects.
    Query(String),
    /// The whole library (sent as an empty query).
    All,
}

/// The body of `POST BP/{ws}/asset-library/jobs`.
///
/// ```
/// use rf_types::{AssetLibraryJobRequest, LibrarySelection, MachineType};
/// let request = AssetLibraryJobRequest::new(
///     "defect-detector",
///     LibrarySelection::ImageIds(vec!["img-1".into(), "img-2".into(), "img-1".into()]),
///     MachineType::Gpu,
///     "launch-0601-night",
/// )
/// .unwrap();
/// let body = serde_json::to_value(&request).unwrap();
/// assert_eq!(body["imageIds"], serde_json::json!(["img-1", "img-2"]));
/// assert!(body.get("query").is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssetLibraryJobRequest {
    /// The workflow to run.
    pub workflow_id: String,
    /// Makes a repeated create start no second job: the same key with the
    /// same body answers with the job already started.
    pub idempotency_key: String,
    /// `cpu` or `gpu`.
    pub machine_type: MachineType,
    /// The image IDs, when the selection is by ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_ids: Option<Vec<String>>,
    /// The query, when the selection is by query (`""`: the whole library).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// A name to show for the job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

/// An Asset Library job request breaks a rule of the API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LibraryJobError {
    /// No image ID left after trimming and removing duplicates.
    #[error("no image ID given: name at least one, or select by --query or --all")]
    NoImageIds,
    /// Too many image IDs.
    #[error(
        "{count} image IDs given, at most {MAX_LIBRARY_IMAGE_IDS} are allowed: split the job or select by query"
    )]
    TooManyImageIds {
        /// How many were given (after removing duplicates).
        count: usize,
    },
    /// A blank query.
    #[error("the query is blank: give a RoboQL query, or select the whole library with --all")]
    BlankQuery,
    /// A blank workflow ID.
    #[error("the workflow ID is blank")]
    BlankWorkflow,
    /// An idempotency key of the wrong shape.
    #[error("idempotency key {key:?} must be 8 to 128 of A-Z a-z 0-9 _ -")]
    BadIdempotencyKey {
        /// The key given.
        key: String,
    },
}

impl AssetLibraryJobRequest {
    /// A request running `workflow_id` over `selection`: image IDs trimmed,
    /// empty ones dropped and duplicates removed (first kept), every rule
    /// checked.
    pub fn new(
        workflow_id: impl Into<String>,
        selection: LibrarySelection,
        machine_type: MachineType,
        idempotency_key: impl Into<String>,
    ) -> Result<Self, LibraryJobError> {
        let (image_ids, query) = match selection {
            LibrarySelection::ImageIds(ids) => (Some(unique_ids(ids)?), None),
            LibrarySelection::Query(q) if q.trim().is_empty() => {
                return Err(LibraryJobError::BlankQuery);
            }
            LibrarySelection::Query(q) => (None, Some(q)),
            LibrarySelection::All => (None, Some(String::new())),
        };
        let request = AssetLibraryJobRequest {
            workflow_id: workflow_id.into().trim().to_owned(),
            idempotency_key: idempotency_key.into(),
            machine_type,
            image_ids,
            query,
            display_name: None,
        };
        request.validate()?;
        Ok(request)
    }

    /// Checks the rules of the API (see [`LibraryJobError`]).
    pub fn validate(&self) -> Result<(), LibraryJobError> {
        if self.workflow_id.trim().is_empty() {
            return Err(LibraryJobError::BlankWorkflow);
        }
        if !is_idempotency_key(&self.idempotency_key) {
            return Err(LibraryJobError::BadIdempotencyKey {
                key: self.idempotency_key.clone(),
            });
        }
        match &self.image_ids {
            Some(ids) if ids.is_empty() => Err(LibraryJobError::NoImageIds),
            Some(ids) if ids.len() > MAX_LIBRARY_IMAGE_IDS => {
                Err(LibraryJobError::TooManyImageIds { count: ids.len() })
            }
            _ => Ok(()),
        }
    }
}

/// Whether `key` is 8 to 128 of `A-Z a-z 0-9 _ -`.
pub fn is_idempotency_key(key: &str) -> bool {
    (8..=128).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn unique_ids(ids: Vec<String>) -> Result<Vec<String>, LibraryJobError> {
    let mut unique: Vec<String> = Vec::with_capacity(ids.len());
    let mut seen = std::collections::HashSet::new();
    for id in ids {
        let id = id.trim();
        if !id.is_empty() && seen.insert(id.to_owned()) {
            unique.push(id.to_owned());
        }
    }
    match unique.len() {
        0 => Err(LibraryJobError::NoImageIds),
        n if n > MAX_LIBRARY_IMAGE_IDS => Err(LibraryJobError::TooManyImageIds { count: n }),
        _ => Ok(unique),
    }
}

/// The body of `POST DS/{ws}/batches/{batch}/roboql-ingest`: stages the
/// images of the workspace's Asset Library that a RoboQL query selects.
///
/// ```
/// let body = rf_types::RoboqlIngestRequest::new("tag:night AND tag:cam1");
/// let v = serde_json::to_value(&body).unwrap();
/// assert_eq!(v, serde_json::json!({"query": "tag:night AND tag:cam1"}));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoboqlIngestRequest {
    /// The query, sent as it is.
    pub query: String,
    /// Display name of the batch (no fallback to its ID, as the official
    /// client sends it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Names the ingest in its webhook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingest_id: Option<String>,
    /// Where the end-of-ingest webhook goes (wire name `notificationsURL`).
    #[serde(
        rename = "notificationsURL",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub notifications_url: Option<String>,
}

impl RoboqlIngestRequest {
    /// An ingest of what `query` selects.
    pub fn new(query: impl Into<String>) -> Self {
        RoboqlIngestRequest {
            query: query.into(),
            display_name: None,
            ingest_id: None,
            notifications_url: None,
        }
    }
}

/// The `202` answer to an Asset Library job create.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssetLibraryJobCreated {
    /// The job.
    pub job_id: String,
    /// The async task that reports the job's start.
    pub task_id: String,
    /// The job's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// The task's state when answered (e.g. `queued`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// The staging batch the library images were gathered into.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_id: Option<String>,
}

/// `GET /{ws}/asynctasks/{taskId}`: a task of the workspace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AsyncTask {
    /// The task.
    pub task_id: String,
    /// Its state: `created`, `pending`, `queued`, `running` and
    /// `in_progress` are not terminal; anything else (a missing one
    /// included) is, `failed` being a failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Progress, as the service gives it (`{"current": 1, "total": 3}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<Value>,
    /// What the task produced, once done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
}

impl AsyncTask {
    /// Whether the task has ended (see [`AsyncTask::status`]).
    pub fn is_terminal(&self) -> bool {
        !matches!(
            self.status.as_deref(),
            Some("created" | "pending" | "queued" | "running" | "in_progress")
        )
    }

    /// Whether it ended in failure.
    pub fn failed(&self) -> bool {
        self.status.as_deref() == Some("failed")
    }

    /// `(done, total)` when the progress says so (`current` or `completed`,
    /// and `total`).
    pub fn progress_counts(&self) -> Option<(u64, u64)> {
        let p = self.progress.as_ref()?;
        let done = p.get("current").or_else(|| p.get("completed"))?.as_u64()?;
        Some((done, p.get("total")?.as_u64()?))
    }

    /// The failure's message: `error` as text, or its `message`.
    pub fn error_message(&self) -> Option<String> {
        match self.error.as_ref()? {
            Value::String(s) => Some(s.clone()),
            Value::Object(o) => o.get("message").and_then(Value::as_str).map(str::to_owned),
            other => Some(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selections_become_the_fields_the_official_client_sends() {
        let all =
            AssetLibraryJobRequest::new("wf", LibrarySelection::All, MachineType::Cpu, "key-12345")
                .unwrap();
        let v = serde_json::to_value(&all).unwrap();
        assert_eq!(v["query"], "");
        assert!(v.get("imageIds").is_none() && v.get("displayName").is_none());
        assert_eq!(v["machineType"], "cpu");
        assert_eq!(v["idempotencyKey"], "key-12345");
        let q = LibrarySelection::Query("tag:night".into());
        let v = serde_json::to_value(
            AssetLibraryJobRequest::new("wf", q, MachineType::Gpu, "key-12345").unwrap(),
        )
        .unwrap();
        assert_eq!(v["query"], "tag:night");
    }

    #[test]
    fn the_rules_are_checked_before_anything_is_sent() {
        let new = |s, key: &str| AssetLibraryJobRequest::new("wf", s, MachineType::Cpu, key);
        let ids = |n: usize| LibrarySelection::ImageIds((0..n).map(|i| format!("i{i}")).collect());
        assert_eq!(
            new(LibrarySelection::ImageIds(vec![" ".into()]), "key-12345"),
            Err(LibraryJobError::NoImageIds)
        );
        assert!(new(ids(MAX_LIBRARY_IMAGE_IDS), "key-12345").is_ok());
        assert_eq!(
            new(ids(MAX_LIBRARY_IMAGE_IDS + 1), "key-12345"),
            Err(LibraryJobError::TooManyImageIds { count: 2049 })
        );
        assert_eq!(
            new(LibrarySelection::Query("  ".into()), "key-12345"),
            Err(LibraryJobError::BlankQuery)
        );
        for bad in ["short", "has space!", &"k".repeat(129)] {
            assert!(matches!(
                new(LibrarySelection::All, bad),
                Err(LibraryJobError::BadIdempotencyKey { .. })
            ));
        }
    }

    #[test]
    fn task_states_and_progress_read_as_the_official_client_reads_them() {
        let task = |v: serde_json::Value| serde_json::from_value::<AsyncTask>(v).unwrap();
        let running = task(
            serde_json::json!({"taskId": "t", "status": "running", "progress": {"current": 1, "total": 3}}),
        );
        assert!(!running.is_terminal());
        assert_eq!(running.progress_counts(), Some((1, 3)));
        let done = task(
            serde_json::json!({"taskId": "t", "status": "completed", "result": {"jobId": "j"}}),
        );
        assert!(done.is_terminal() && !done.failed());
        let failed =
            task(serde_json::json!({"taskId": "t", "status": "failed", "error": "no images"}));
        assert!(failed.failed());
        assert_eq!(failed.error_message().as_deref(), Some("no images"));
        // No status at all: terminal.
        assert!(task(serde_json::json!({"taskId": "t"})).is_terminal());
    }
}
