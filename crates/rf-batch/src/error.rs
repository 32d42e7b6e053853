//! Errors: the one place where HTTP status codes become domain errors.
//!
//! [`ApiError`] is what the service said (status, endpoint, the ID involved and
//! the server's message); [`Error`] is everything a client call or a pipeline
//! step can fail with. Messages are lower case, name what failed and say what
//! to do; none of them contains the API key (URLs are redacted by the
//! transport, and only the endpoint's name and IDs are quoted here).

use std::path::PathBuf;
use std::time::Duration;

use rf_transport::{StatusCode, TransportError};

use crate::endpoint::Endpoint;
use crate::files::extract::ExtractError;
use crate::files::scan::{MediaKind, ScanError};

mod class;
mod count;
mod state;

pub use class::{FailureClass, FailureCounts};
pub use count::{CountTimeout, ShardSummary};
pub use state::StateError;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The class of an API error, from its HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ApiErrorKind {
    /// 400 (and other 4xx not listed): the request was malformed or refused.
    BadRequest,
    /// 401: the API key is missing or invalid.
    Unauthenticated,
    /// 403: the key may not do this.
    Forbidden,
    /// 404: the batch, job, stage or part does not exist (or expired).
    NotFound,
    /// 409: the request conflicts with existing state (e.g. a job ID reused
    /// with a different definition).
    Conflict,
    /// 413: the body was too large.
    PayloadTooLarge,
    /// 408 or 429: slow down and retry.
    RateLimited,
    /// 5xx: the service failed.
    Server,
    /// Any other status (e.g. an unexpected 3xx).
    Unexpected,
}

impl ApiErrorKind {
    /// Classifies an HTTP status.
    pub fn from_status(status: StatusCode) -> ApiErrorKind {
        match status.as_u16() {
            401 => ApiErrorKind::Unauthenticated,
            403 => ApiErrorKind::Forbidden,
            404 | 410 => ApiErrorKind::NotFound,
            409 => ApiErrorKind::Conflict,
            413 => ApiErrorKind::PayloadTooLarge,
            408 | 429 => ApiErrorKind::RateLimited,
            500..=599 => ApiErrorKind::Server,
            400..=499 => ApiErrorKind::BadRequest,
            _ => ApiErrorKind::Unexpected,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            ApiErrorKind::BadRequest => "bad request",
            ApiErrorKind::Unauthenticated => "unauthenticated",
            ApiErrorKind::Forbidden => "forbidden",
            ApiErrorKind::NotFound => "not found",
            ApiErrorKind::Conflict => "conflict",
            ApiErrorKind::PayloadTooLarge => "payload too large",
            ApiErrorKind::RateLimited => "rate limited",
            ApiErrorKind::Server => "server error",
            ApiErrorKind::Unexpected => "unexpected status",
        }
    }

    fn hint(self) -> &'static str {
        match self {
            ApiErrorKind::BadRequest => "check the request's arguments",
            ApiErrorKind::Unauthenticated => {
                "check the API key (ROBOFLOW_API_KEY) and the API base URL"
            }
            ApiErrorKind::Forbidden => "check that the key belongs to this workspace and plan",
            ApiErrorKind::NotFound => {
                "check the ID and the workspace; staged data expires after about 7 days"
            }
            ApiErrorKind::Conflict => "use a new ID, or repeat the original request unchanged",
            ApiErrorKind::PayloadTooLarge => "send smaller files or shards",
            ApiErrorKind::RateLimited => "wait and retry, or lower the concurrency",
            ApiErrorKind::Server => "retry later; the service failed",
            ApiErrorKind::Unexpected => "retry later or report it",
        }
    }
}

/// The service answered with an error status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{endpoint}{} failed: {} (HTTP {status}): {message}; {}", id.as_ref().map(|i| format!(" {i:?}")).unwrap_or_default(), kind.describe(), kind.hint())]
pub struct ApiError {
    /// What class of error.
    pub kind: ApiErrorKind,
    /// The HTTP status code.
    pub status: u16,
    /// Which endpoint (its `Display` is the label messages quote, e.g.
    /// `get job`).
    pub endpoint: Endpoint,
    /// The batch, job or file the call was about.
    pub id: Option<String>,
    /// What the server said (its `error` field, or the start of the body).
    pub message: String,
    /// The `Retry-After` the server asked for, if any.
    pub retry_after: Option<Duration>,
}

/// Which of a run's directories an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DirRole {
    /// Where results go.
    Output,
    /// Where the run's manifest goes.
    State,
}

impl DirRole {
    fn describe(self) -> &'static str {
        match self {
            DirRole::Output => "the output directory",
            DirRole::State => "the state directory",
        }
    }
}

/// Anything a client call or pipeline step can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The service answered with an error status.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The request did not complete (connection, timeout, body stream).
    #[error("{endpoint}{} failed: {source}", id.as_ref().map(|i| format!(" {i:?}")).unwrap_or_default())]
    Transport {
        /// Which endpoint.
        endpoint: Endpoint,
        /// The batch, job or file the call was about.
        id: Option<String>,
        /// The transport error (its URL is redacted).
        #[source]
        source: Box<TransportError>,
    },
    /// The answer could not be decoded.
    #[error("{endpoint}{}: could not decode the response: {source}", id.as_ref().map(|i| format!(" {i:?}")).unwrap_or_default())]
    Decode {
        /// Which endpoint.
        endpoint: Endpoint,
        /// The batch, job or file the call was about.
        id: Option<String>,
        /// The decode error (names the field and quotes the body).
        #[source]
        source: Box<TransportError>,
    },
    /// An argument was rejected before anything was sent.
    #[error("invalid {what}: {detail}")]
    InvalidInput {
        /// What was invalid.
        what: &'static str,
        /// Why.
        detail: String,
    },
    /// The input directory could not be scanned.
    #[error(transparent)]
    Scan(#[from] ScanError),
    /// The run manifest could not be read or written.
    #[error(transparent)]
    State(#[from] StateError),
    /// An archive could not be extracted.
    #[error(transparent)]
    Extract(#[from] ExtractError),
    /// A local file operation failed.
    #[error("{context} {}: {source}", path.display())]
    Io {
        /// What was being done.
        context: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The batch did not reach the expected count in time.
    #[error(transparent)]
    CountTimeout(Box<CountTimeout>),
    /// Some uploads failed (after retries); the manifest records which, and
    /// re-running retries only those.
    #[error(
        "{failed} of {total} uploads failed (first: {first}); re-run the same command to retry only the failed ones"
    )]
    UploadsFailed {
        /// Failed uploads.
        failed: usize,
        /// Uploads attempted.
        total: usize,
        /// The first failure, as text.
        first: String,
    },
    /// The service refused files as invalid (a corrupt or unsupported
    /// file, HTTP 400/413/415/422): sending them again unchanged cannot
    /// help. Once they are fixed or removed, a re-run sends only what is
    /// missing.
    #[error(
        "the service refused {refused} of {total} files as invalid (first: {first}); fix or remove them, then re-run the same command: only what is missing is sent"
    )]
    FilesRefused {
        /// Files refused.
        refused: usize,
        /// Files attempted.
        total: usize,
        /// The first refusal, as text.
        first: String,
    },
    /// Some downloads failed; the advice depends on their classes (see
    /// [`Error::failure_class`]): re-running retries only the failed ones.
    #[error("{failed} of {total} downloads failed (first: {first}); {}", counts.advice())]
    DownloadsFailed {
        /// Failed downloads.
        failed: usize,
        /// Downloads attempted.
        total: usize,
        /// The first failure, as text.
        first: String,
        /// The failures by class.
        counts: FailureCounts,
    },
    /// A listing the service returned would never end: a page token that
    /// came back (a cycle), endless empty pages, far more items than the
    /// service said there are. Nothing rf can change: the service
    /// misbehaves.
    #[error(
        "{}the listing is broken: {detail}; the service misbehaves: try again later, and report it if it persists",
        endpoint.map(|e| format!("{e}: ")).unwrap_or_default()
    )]
    BrokenListing {
        /// The listing's endpoint, when known.
        endpoint: Option<Endpoint>,
        /// What went wrong.
        detail: String,
    },
    /// A download's length did not match what the server announced.
    #[error(
        "download of {file} is truncated or padded: got {got} bytes, expected {expected}; re-run to download it again"
    )]
    LengthMismatch {
        /// The file name in the batch.
        file: String,
        /// Bytes received.
        got: u64,
        /// Bytes announced.
        expected: u64,
    },
    /// The job ended in error.
    #[error("job {job_id:?} failed: {message}; see `logs` for details, or restart it")]
    JobFailed {
        /// The job.
        job_id: String,
        /// The job's last notification.
        message: String,
    },
    /// An async task (an Asset Library job's start) ended in failure.
    #[error(
        "task {task_id:?} failed: {message}; start the job again with a new request if the cause is fixed"
    )]
    TaskFailed {
        /// The task.
        task_id: String,
        /// Why, as the service said.
        message: String,
    },
    /// An async task was still running when the wait ran out.
    #[error("task {task_id:?} is still running after {waited:?}; wait again later")]
    TaskTimeout {
        /// The task.
        task_id: String,
        /// How long it was waited for.
        waited: Duration,
    },
    /// The job did not finish in time.
    #[error("job {job_id:?} is still running after {waited:?}; wait again later or abort it")]
    JobTimeout {
        /// The job.
        job_id: String,
        /// How long we waited.
        waited: Duration,
    },
    /// The job has no export stage output to download.
    #[error("job {job_id:?} finished without an export output batch; nothing to download")]
    NoExportOutput {
        /// The job.
        job_id: String,
    },
    /// The manifest in the state directory belongs to a different run.
    #[error("the state directory {} holds a run of {existing}, not {requested}; use another output directory or remove the manifest", path.display())]
    ForeignRun {
        /// The manifest.
        path: PathBuf,
        /// What the manifest is about.
        existing: String,
        /// The input directory the manifest's run reads.
        existing_input: PathBuf,
        /// What was asked for.
        requested: String,
    },
    /// The output directory already holds the export of another batch.
    #[error("{} already holds an export of batch {existing_batch}; use another output directory for batch {requested_batch}", out_dir.display())]
    ForeignExport {
        /// The output directory.
        out_dir: PathBuf,
        /// The batch exported there.
        existing_batch: String,
        /// The batch asked for.
        requested_batch: String,
    },
    /// A directory to write into is a file (or something else).
    #[error("{} {} is not a directory; choose a directory (it is created if missing)", role.describe(), path.display())]
    NotADirectory {
        /// Which directory.
        role: DirRole,
        /// The path.
        path: PathBuf,
    },
    /// The output directory is inside the input directory, so the next run
    /// would upload the results.
    #[error("invalid output directory: {} is inside the input directory {}; results would be uploaded by the next run", output.display(), input.display())]
    OutputInsideInput {
        /// The output directory.
        output: PathBuf,
        /// The input directory.
        input: PathBuf,
    },
    /// The state directory is inside the input directory, so the next run
    /// would upload the manifest.
    #[error("invalid state directory: the run manifest must not be written into the input directory ({} is inside {})", state.display(), input.display())]
    StateInsideInput {
        /// The state directory (or manifest).
        state: PathBuf,
        /// The input directory.
        input: PathBuf,
    },
    /// The input directory holds no media of the kind to process.
    #[error("invalid input directory: no {} found in {}", kind.plural(), dir.display())]
    NoMedia {
        /// What was looked for.
        kind: MediaKind,
        /// The directory.
        dir: PathBuf,
    },
    /// The batch has no part of this name.
    #[error("batch {batch} has no files in part {part:?}")]
    UnknownPart {
        /// The batch.
        batch: String,
        /// The part asked for.
        part: String,
    },
    /// A job with this ID already exists and runs something else.
    #[error(
        "job {job_id:?} already exists and runs {existing}, not {requested}; choose another job id (or a new output directory for a new run)"
    )]
    JobConflict {
        /// The job.
        job_id: String,
        /// What the existing job runs.
        existing: String,
        /// What was asked for.
        requested: String,
    },
    /// The run was cancelled; the manifest is consistent and a re-run resumes.
    #[error("cancelled; re-run the same command to resume")]
    Cancelled,
    /// A bucket could not be listed or signed (see [`crate::cloud`]).
    #[cfg(feature = "cloud")]
    #[error(transparent)]
    Cloud(#[from] crate::cloud::CloudError),
    /// An export could not be uploaded into its bucket (see
    /// [`crate::export::bucket`]).
    #[cfg(feature = "cloud")]
    #[error(transparent)]
    Bucket(#[from] crate::bucket_types::BucketError),
}

impl ApiError {
    /// Whether the service was busy or failing (408, 429, 5xx): the same
    /// request may succeed later, as opposed to a refusal that will not
    /// change.
    pub fn is_transient(&self) -> bool {
        self.status == 408 || self.status == 429 || self.status >= 500
    }
}

impl Error {
    /// Whether a failed request may succeed if tried again: the service was
    /// busy or failing ([`ApiError::is_transient`]), or the transfer broke
    /// (whether the service acted on it is unknown until checked). A refusal
    /// (4xx) or a local problem will not change.
    pub(crate) fn may_succeed_later(&self) -> bool {
        match self {
            Error::Api(api) => api.is_transient(),
            // Connect errors, timeouts and broken connections: what the
            // transport resends for an idempotent request.
            Error::Transport { source, .. } => source.is_retryable(true),
            _ => false,
        }
    }

    /// Whether it is a sign of overload (429, 503, or a timeout): what
    /// makes an adaptive concurrency limit back off ([`crate::limit`]).
    pub fn is_overload(&self) -> bool {
        match self {
            Error::Api(api) => matches!(api.status, 429 | 503),
            Error::Transport { source, .. } => source.kind() == rf_transport::ErrorKind::Timeout,
            _ => false,
        }
    }

    /// Whether the service refused the request as invalid (HTTP 400, 413,
    /// 415, 422): the same request will be refused again.
    pub fn is_refusal(&self) -> bool {
        self.api()
            .is_some_and(|e| matches!(e.status, 400 | 413 | 415 | 422))
    }

    /// The API error inside, if this is one.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Error::Api(e) => Some(e),
            _ => None,
        }
    }

    /// Whether this is an API error of `kind`.
    pub fn is_api(&self, kind: ApiErrorKind) -> bool {
        self.api().is_some_and(|e| e.kind == kind)
    }
}
