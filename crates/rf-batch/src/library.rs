//! Asset Library jobs: a job over images of the workspace's library (by
//! ID, by RoboQL query, or all of them), started safely under retries and
//! re-runs, and followed through the async task that reports its start.
//!
//! A create carries an idempotency key: the service starts one job per
//! key. [`derived_idempotency_key`] makes one from the request itself, so
//! running the same command twice (after a lost answer, a Ctrl-C, a crash)
//! starts the job once; a new intent (another workflow, selection, machine
//! type or name) gets another key.

use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use rf_types::{AssetLibraryJobCreated, AssetLibraryJobRequest, AsyncTask};

use crate::client::Client;
use crate::error::{Error, Result};
use crate::wait::{PollOptions, pause};

/// An idempotency key derived from what the request asks for (workflow,
/// selection, machine type, name; the key field itself is ignored):
/// `rf-` and 40 hex digits of its SHA-256.
///
/// ```
/// use rf_types::{AssetLibraryJobRequest, LibrarySelection, MachineType};
/// let request = |query: &str| {
///     let q = LibrarySelection::Query(query.into());
///     AssetLibraryJobRequest::new("wf", q, MachineType::Cpu, "placeholder").unwrap()
/// };
/// let key = rf_batch::library::derived_idempotency_key(&request("tag:a"));
/// assert!(key.starts_with("rf-") && key.len() == 43);
/// assert_eq!(key, rf_batch::library::derived_idempotency_key(&request("tag:a")));
/// assert_ne!(key, rf_batch::library::derived_idempotency_key(&request("tag:b")));
/// ```
pub fn derived_idempotency_key(request: &AssetLibraryJobRequest) -> String {
    let mut intent = request.clone();
    intent.idempotency_key = String::new();
    // Field order is fixed by the struct: the same request hashes the same.
    let bytes = serde_json::to_vec(&intent).unwrap_or_default();
    let digest = Sha256::digest(&bytes);
    format!("rf-{}", &hex::encode(digest)[..40])
}

/// Starts the job `request` asks for (see
/// [`crate::client::Jobs::create_library_job`]).
pub async fn start_library_job(
    client: &Client,
    request: &AssetLibraryJobRequest,
) -> Result<AssetLibraryJobCreated> {
    request.validate().map_err(|e| Error::InvalidInput {
        what: "asset library job",
        detail: e.to_string(),
    })?;
    client.jobs().create_library_job(request).await
}

/// Polls task `task_id` until it ends; `on_poll` sees every answer. A
/// task that failed is [`Error::TaskFailed`]; one still running when
/// `options.timeout` runs out is [`Error::TaskTimeout`].
pub async fn wait_for_task(
    client: &Client,
    task_id: &str,
    options: &PollOptions,
    cancel: &CancellationToken,
    mut on_poll: impl FnMut(&AsyncTask),
) -> Result<AsyncTask> {
    let started = std::time::Instant::now();
    let mut interval = options.initial_interval;
    loop {
        let task = client.jobs().async_task(task_id).await?;
        on_poll(&task);
        if task.failed() {
            return Err(Error::TaskFailed {
                task_id: task_id.to_owned(),
                message: task
                    .error_message()
                    .unwrap_or_else(|| "no reason given".into()),
            });
        }
        if task.is_terminal() {
            return Ok(task);
        }
        if options.timeout.is_some_and(|t| started.elapsed() >= t) {
            return Err(Error::TaskTimeout {
                task_id: task_id.to_owned(),
                waited: started.elapsed(),
            });
        }
        pause(interval, cancel).await?;
        interval = options.next(interval);
    }
}
