//! `rf job library` and `rf job task`: jobs over images of the workspace's
//! Asset Library (what `roboflow batch create` starts) and the async tasks
//! that report their start (`roboflow asynctasks get|wait`).

use std::time::Duration;

use rf_batch::library::{derived_idempotency_key, start_library_job, wait_for_task};
use rf_batch::wait::PollOptions;
use rf_types::{AssetLibraryJobRequest, AsyncTask, LibrarySelection, MachineType};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::options;
use super::session::{Session, map_error};
use crate::args::{LibraryJobArgs, TaskArgs};
use crate::config::Config;
use crate::error::{CliError, Result};
use crate::output::Output;

/// A valid key held until the derived one replaces it.
const PENDING_KEY: &str = "rf-pending";

/// `rf job library`.
pub(crate) async fn start(
    args: &LibraryJobArgs,
    session: &Session,
    config: &Config,
    cancel: CancellationToken,
) -> Result<()> {
    let request = request(args)?;
    let created = start_library_job(session.client(), &request)
        .await
        .map_err(|e| map_error(&e))?;
    let out = &config.output;
    let mut doc = serde_json::to_value(&created)
        .map_err(|e| CliError::local(format!("could not encode json: {e}")))?;
    doc["idempotencyKey"] = json!(request.idempotency_key);
    if !args.wait {
        if out.is_json() {
            return out.document(&doc);
        }
        out.note(&format!(
            "started job {} (task {}); follow its start with: rf job task {} --wait",
            created.job_id, created.task_id, created.task_id
        ));
        return out.stdout_line(&created.job_id);
    }
    out.note(&format!(
        "started job {} (task {})",
        created.job_id, created.task_id
    ));
    let task = follow(session, out, &created.task_id, cancel).await?;
    if out.is_json() {
        doc["task"] = json!(task);
        return out.document(&doc);
    }
    out.note(&state_line(&task));
    out.stdout_line(&created.job_id)
}

/// The request the flags ask for, with its idempotency key (given, or
/// derived from the request).
fn request(args: &LibraryJobArgs) -> Result<AssetLibraryJobRequest> {
    let selection = match (&args.query, args.all) {
        (Some(q), _) => LibrarySelection::Query(q.clone()),
        (None, true) => LibrarySelection::All,
        (None, false) => LibrarySelection::ImageIds(args.image_ids.clone()),
    };
    let machine = args
        .machine_type
        .map_or(MachineType::Cpu, options::machine_type);
    let key = args.idempotency_key.as_deref().unwrap_or(PENDING_KEY);
    let mut request = AssetLibraryJobRequest::new(&args.workflow, selection, machine, key)
        .map_err(|e| CliError::usage(e.to_string()))?;
    request.display_name = args.job_name.clone().filter(|n| !n.trim().is_empty());
    if args.idempotency_key.is_none() {
        request.idempotency_key = derived_idempotency_key(&request);
    }
    Ok(request)
}

/// `rf job task`.
pub(crate) async fn task(
    args: &TaskArgs,
    session: &Session,
    config: &Config,
    cancel: CancellationToken,
) -> Result<()> {
    let task = if args.wait {
        follow(session, &config.output, &args.task_id, cancel).await?
    } else {
        session
            .client()
            .jobs()
            .async_task(&args.task_id)
            .await
            .map_err(|e| map_error(&e))?
    };
    tell(&config.output, &task)
}

/// Polls task `task_id` to its end, telling each change of state before
/// it on stderr; returns the ended task.
async fn follow(
    session: &Session,
    out: &Output,
    task_id: &str,
    cancel: CancellationToken,
) -> Result<AsyncTask> {
    let options = PollOptions {
        initial_interval: Duration::from_millis(250),
        max_interval: Duration::from_secs(4),
        timeout: None,
        ..PollOptions::default()
    };
    let mut last = String::new();
    let result = wait_for_task(session.client(), task_id, &options, &cancel, |task| {
        let line = state_line(task);
        if line != last && !task.is_terminal() {
            out.note(&line);
        }
        last = line;
    })
    .await;
    result.map_err(|e| map_error(&e))
}

/// The task as the command's result: the whole answer with `--json`, else
/// one line.
fn tell(out: &Output, task: &AsyncTask) -> Result<()> {
    if out.is_json() {
        return out.document(task);
    }
    out.stdout_line(&state_line(task))
}

/// `task T: running (1/3)`.
fn state_line(task: &AsyncTask) -> String {
    let status = task.status.as_deref().unwrap_or("unknown");
    let progress = task
        .progress_counts()
        .map(|(done, total)| format!(" ({done}/{total})"))
        .unwrap_or_default();
    format!("task {}: {status}{progress}", task.task_id)
}
