//! [`Endpoint`]: which API call an error is about, as a type.
//!
//! Errors of a client call ([`crate::ApiError`], [`crate::Error::Transport`],
//! [`crate::Error::Decode`]) carry the endpoint they came from, so callers
//! tell them apart by variant (a 404 from [`Endpoint::ListTasks`] means a
//! wrong job or stage ID, one from [`Endpoint::GetBatch`] a wrong batch ID)
//! rather than by text. Its `Display` is the short label the messages quote
//! (`get job "job-1" failed: ...`). This module depends on nothing else in
//! the crate, so both the client and the error types can use it.

use std::fmt;

/// An endpoint the client calls (or a step of a call, such as building the
/// HTTP client or reading a download's body).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Endpoint {
    /// Building the default HTTP client (before any request).
    CreateHttpClient,
    /// `GET {base}/`: which workspace the API key belongs to.
    WorkspaceLookup,
    /// Data Staging: upload one image directly.
    UploadImage,
    /// Data Staging: ask for a signed URL to upload a video.
    RequestVideoUploadUrl,
    /// Data Staging: ask for a signed URL to upload a shard.
    RequestShardUploadUrl,
    /// A `PUT` to a signed upload URL.
    SignedUpload,
    /// Data Staging: stage images by reference (URLs).
    IngestImageReferences,
    /// Data Staging: stage videos by reference (URLs).
    IngestVideoReferences,
    /// Data Staging: stage the Asset Library images a RoboQL query selects.
    RoboqlIngest,
    /// Data Staging: one batch's metadata.
    GetBatch,
    /// Data Staging: the workspace's batches.
    ListBatches,
    /// Data Staging: items indexed in a batch (or one of its parts).
    Count,
    /// Data Staging: the parts of a multipart batch.
    ListParts,
    /// Data Staging: a batch's files and their download URLs.
    ListFiles,
    /// Data Staging: a batch's shards and their status.
    ListShards,
    /// A `GET` of a file's signed download URL.
    Download,
    /// Batch Processing: create (start) a job.
    CreateJob,
    /// Batch Processing: one job.
    GetJob,
    /// Batch Processing: the workspace's jobs.
    ListJobs,
    /// Batch Processing: a job's stages.
    ListStages,
    /// Batch Processing: a stage's tasks.
    ListTasks,
    /// Batch Processing: a job's log.
    JobLogs,
    /// Batch Processing: abort a job.
    AbortJob,
    /// Batch Processing: restart a failed or aborted job.
    RestartJob,
    /// Batch Processing: start a job over images of the Asset Library.
    CreateLibraryJob,
    /// `GET {base}/{workspace}/asynctasks/{task}`: a task of the workspace.
    GetAsyncTask,
}

impl Endpoint {
    /// The short label messages quote, e.g. `"get job"`.
    pub fn label(self) -> &'static str {
        match self {
            Endpoint::CreateHttpClient => "create http client",
            Endpoint::WorkspaceLookup => "workspace lookup",
            Endpoint::UploadImage => "upload image",
            Endpoint::RequestVideoUploadUrl => "request video upload url",
            Endpoint::RequestShardUploadUrl => "request shard upload url",
            Endpoint::SignedUpload => "signed upload",
            Endpoint::IngestImageReferences => "ingest image references",
            Endpoint::IngestVideoReferences => "ingest video references",
            Endpoint::RoboqlIngest => "roboql ingest",
            Endpoint::GetBatch => "get batch",
            Endpoint::ListBatches => "list batches",
            Endpoint::Count => "count",
            Endpoint::ListParts => "list parts",
            Endpoint::ListFiles => "list files",
            Endpoint::ListShards => "list shards",
            Endpoint::Download => "download",
            Endpoint::CreateJob => "create job",
            Endpoint::GetJob => "get job",
            Endpoint::ListJobs => "list jobs",
            Endpoint::ListStages => "list stages",
            Endpoint::ListTasks => "list tasks",
            Endpoint::JobLogs => "job logs",
            Endpoint::AbortJob => "abort job",
            Endpoint::RestartJob => "restart job",
            Endpoint::CreateLibraryJob => "create asset library job",
            Endpoint::GetAsyncTask => "get async task",
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

#[cfg(test)]
mod tests {
    use super::Endpoint;

    #[test]
    fn displays_its_label() {
        assert_eq!(Endpoint::GetJob.to_string(), "get job");
        assert_eq!(Endpoint::ListTasks.to_string(), "list tasks");
    }
}
