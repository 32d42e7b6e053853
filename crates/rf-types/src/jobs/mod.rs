//! Batch Processing API models: job definitions (with a validating builder),
//! the restart body, job, stage, task and log listings, and the helpers that
//! interpret status strings.

mod builder;
mod definition;
mod library;
mod status;

pub use builder::WorkflowJobBuilder;
pub use definition::{
    AggregationFormat, CompilationDevice, ComputeConfiguration, InferenceBackend, JobDefinition,
    JobDefinitionError, MachineType, ParametersOverride, StagingBatchInput, TrtCompilationJob,
    WorkflowJob, WorkflowsProcessingSpecification,
};
pub use library::{
    AssetLibraryJobCreated, AssetLibraryJobRequest, AsyncTask, LibraryJobError, LibrarySelection,
    MAX_LIBRARY_IMAGE_IDS, RoboqlIngestRequest, is_idempotency_key,
};
pub use status::{
    GetJobResponse, JobLog, JobLogsResponse, JobMetadata, JobStage, JobStatus, ListJobsResponse,
    ListStagesResponse, ListTasksResponse, LogSeverity, ParseLogSeverityError, STAGE_EXPORT,
    STAGE_PROCESSING, StatusKind, TaskStatus, status_kind,
};
