#![doc = include_str!("../README.md")]
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
    AggregationFormat, AssetLibraryJobCreated, AssetLibraryJobRequest, AsyncTask,
    CompilationDevice, ComputeConfiguration, GetJobResponse, InferenceBackend, JobDefinition,
    JobDefinitionError, JobLog, JobLogsResponse, JobMetadata, JobStage, JobStatus, LibraryJobError,
    LibrarySelection, ListJobsResponse, ListStagesResponse, ListTasksResponse, LogSeverity,
    MAX_LIBRARY_IMAGE_IDS, MachineType, ParametersOverride, ParseLogSeverityError,
    RoboqlIngestRequest, STAGE_EXPORT, STAGE_PROCESSING, StagingBatchInput, StatusKind, TaskStatus,
    TrtCompilationJob, WorkflowJob, WorkflowJobBuilder, WorkflowsProcessingSpecification,
    is_idempotency_key, status_kind,
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
