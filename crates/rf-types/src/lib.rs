//! `rf-types`: the wire models of the Roboflow Data Staging and Batch
//! Processing APIs, validated client-chosen IDs, and webhook payloads.
//!
//! No I/O, no async, no HTTP: depend on this crate alone to talk to the API
//! with your own HTTP stack or to receive its webhooks. Every model is a
//! plain serde struct or enum with the exact wire names (including the
//! irregular `downloadURL`, `uploadURL`, `notificationsURL`, `maxVideoFPS`
//! and the snake_case webhook fields); `None` is left out when serializing
//! (except `nextPageToken` of the jobs and tasks lists, which the official
//! client requires); unknown fields are ignored; enums the server may extend
//! keep unknown values in an `Other(String)` variant; timestamps accept the
//! formats the API sends.
//!
//! Everything is re-exported at the crate root and also reachable by module:
//! [`ids`], [`common`], [`timestamp`], [`staging`], [`jobs`], [`webhook`].
//!
//! # Building a job definition
//!
//! ```
//! use rf_types::{AggregationFormat, BatchId, JobId, MachineType, WorkflowJob};
//!
//! let job_id = JobId::generate(); // "job-" + 12 random characters
//! let definition = WorkflowJob::image(BatchId::new("nightly-cam-0601")?, "acme-vision", "defect-detector")
//!     .machine_type(MachineType::Gpu)
//!     .max_parallel_tasks(8)
//!     .aggregation_format(AggregationFormat::Jsonl)
//!     .notifications_url("https://hooks.example/jobs")
//!     .build()?;
//!
//! // POST this to {base}/batch-processing/v1/external/{workspace}/jobs/{job_id}
//! let body = serde_json::to_value(&definition)?;
//! assert_eq!(body["type"], "simple-image-processing-v1");
//! assert_eq!(body["jobInput"]["batchId"], "nightly-cam-0601");
//! assert_eq!(body["notificationsURL"], "https://hooks.example/jobs");
//! assert!(body.get("maxImageFailureRate").is_none());
//! # let _ = job_id;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Parsing a webhook payload
//!
//! ```
//! use rf_types::{StagingNotificationBody, WebhookPayload};
//!
//! let body = br#"{
//!   "type": "roboflow-data-staging-notification-v1",
//!   "event_id": "b8a4c3d0-5e2f-4a61-9c7e-0f1d2e3a4b5c",
//!   "ingest_id": "nightly-2025-06-01",
//!   "batch_id": "nightly-cam-0601",
//!   "shard_id": "0d40fa12-349e-439f-83f8-42b9b7987b33",
//!   "notification": {
//!     "type": "ingest-files-status-notification-v1",
//!     "success": true,
//!     "ingested_files": ["cam1_0001.jpg"],
//!     "failed_files": [{"type": "file-size-limit-exceeded",
//!                       "file_name": "cam1_0003.png",
//!                       "reason": "Max size of single image is 20971520B."}],
//!     "content_truncated": false
//!   },
//!   "delivery_attempt": 1
//! }"#;
//!
//! let WebhookPayload::Staging(event) = WebhookPayload::from_slice(body)? else {
//!     panic!("expected a staging notification");
//! };
//! assert_eq!(event.batch_id, "nightly-cam-0601");
//! let StagingNotificationBody::FilesStatus(files) = &event.notification else {
//!     panic!("expected a files-status notification");
//! };
//! assert_eq!(files.ingested_files, ["cam1_0001.jpg"]);
//! assert_eq!(files.failed_files[0].kind, "file-size-limit-exceeded");
//! # Ok::<(), serde_json::Error>(())
//! ```
#![deny(missing_docs)]
#![warn(clippy::unwrap_used)]
#![warn(clippy::too_many_lines)]

#[macro_use]
mod macros;
mod tagged;

pub mod common;
pub mod ids;
pub mod jobs;
pub mod staging;
pub mod timestamp;
pub mod webhook;

pub use common::{ApiError, Notification, StatusOk, WorkspaceInfo};
pub use ids::{
    BatchId, EventId, IdError, IngestId, JobId, PartName, ShardId, StageId, TaskId, Workspace,
};
pub use jobs::{
    AggregationFormat, CompilationDevice, ComputeConfiguration, GetJobResponse, InferenceBackend,
    JobDefinition, JobDefinitionError, JobLog, JobLogsResponse, JobMetadata, JobStage, JobStatus,
    ListJobsResponse, ListStagesResponse, ListTasksResponse, LogSeverity, MachineType,
    ParametersOverride, ParseLogSeverityError, STAGE_EXPORT, STAGE_PROCESSING, StagingBatchInput,
    StatusKind, TaskStatus, TrtCompilationJob, WorkflowJob, WorkflowJobBuilder,
    WorkflowsProcessingSpecification, status_kind,
};
pub use staging::{
    BatchMetadata, BatchPart, BatchType, ContentType, CountResponse, FileMetadata,
    GetBatchResponse, IMAGE_EXTENSIONS, ImageReferencesIngestRequest,
    ImageReferencesIngestResponse, ListBatchesResponse, ListFilesResponse, ListPartsResponse,
    ListShardsResponse, MAX_IMAGE_BYTES, MAX_IMAGES_PER_SHARD, NOTIFICATION_CONFIG_MEMBER,
    NotificationCategory, Reference, ReferencesSource, ShardNotificationConfig, ShardStatus,
    SignedUrlDetails, SignedUrlResponse, VIDEO_EXTENSIONS, VideoReferencesIngestRequest,
    VideoReferencesIngestResponse, is_image_file_name, is_video_file_name,
};
pub use timestamp::{Timestamp, TimestampError};
pub use webhook::{
    ErrorDetails, FailedFile, FilesStatusNotification, IngestStatusNotification, JobNotification,
    JobState, StagingNotification, StagingNotificationBody, WebhookPayload,
};
