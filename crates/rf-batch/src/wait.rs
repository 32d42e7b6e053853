//! Waiting: the batch count check and job progress, polled with backoff.
//!
//! Polls start at [`PollOptions::initial_interval`] and grow by
//! [`PollOptions::multiplier`] up to [`PollOptions::max_interval`]; a deadline
//! ([`PollOptions::timeout`]) bounds the whole wait and a cancellation token
//! stops it at once. A count check that runs out of time fails with a
//! [`CountTimeout`] that lists every shard's status and the files the service
//! reported as failed, so the user knows what is missing.

use std::time::{Duration, Instant};

use futures::TryStreamExt;
use rf_types::{GetJobResponse, JobStage, ShardStatus, StatusKind, TaskStatus, status_kind};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::client::Client;
pub use crate::error::{CountTimeout, ShardSummary};
use crate::error::{Error, Result};

/// How to poll.
#[derive(Debug, Clone, PartialEq)]
pub struct PollOptions {
    /// First pause between polls (default 500 ms).
    pub initial_interval: Duration,
    /// Longest pause between polls (default 10 s).
    pub max_interval: Duration,
    /// Growth of the pause after each poll (default 1.5).
    pub multiplier: f64,
    /// Give up after this long (default: 10 minutes for counts; `None` waits forever).
    pub timeout: Option<Duration>,
}

impl Default for PollOptions {
    fn default() -> Self {
        PollOptions {
            initial_interval: Duration::from_millis(500),
            max_interval: Duration::from_secs(10),
            multiplier: 1.5,
            timeout: Some(Duration::from_secs(600)),
        }
    }
}

impl PollOptions {
    /// The pause after one of `current`.
    pub(crate) fn next(&self, current: Duration) -> Duration {
        current
            .mul_f64(self.multiplier.max(1.0))
            .min(self.max_interval)
    }
}

/// Sleeps `d`, or returns `Err(Cancelled)` as soon as `cancel` fires.
pub(crate) async fn pause(d: Duration, cancel: &CancellationToken) -> Result<()> {
    tokio::select! {
        _ = tokio::time::sleep(d) => Ok(()),
        _ = cancel.cancelled() => Err(Error::Cancelled),
    }
}

/// Polls `GET count` until `batch` holds at least `expected` items.
///
/// `on_poll(count)` is called after every poll. Returns the final count.
pub async fn wait_for_count(
    client: &Client,
    batch: &str,
    expected: u64,
    options: &PollOptions,
    cancel: &CancellationToken,
    on_poll: impl FnMut(u64),
) -> Result<u64> {
    wait_past_rejections(client, batch, expected, options, cancel, on_poll, 0).await
}

/// [`wait_for_count`] for a batch whose shards already reported
/// `known_rejected` failed files, accounted for in `expected`: only
/// rejections past those stop the wait early (files sent again for them are
/// still being indexed while the old reports stand).
pub(crate) async fn wait_past_rejections(
    client: &Client,
    batch: &str,
    expected: u64,
    options: &PollOptions,
    cancel: &CancellationToken,
    mut on_poll: impl FnMut(u64),
    known_rejected: u64,
) -> Result<u64> {
    let started = Instant::now();
    let mut interval = options.initial_interval;
    let mut last = None;
    loop {
        let count = client.staging().count(batch, None).await?;
        on_poll(count);
        if count >= expected {
            return Ok(count);
        }
        let waited = started.elapsed();
        if let Some(limit) = options.timeout {
            if waited >= limit {
                let (shards, failed_files, _) = shard_report(client, batch).await;
                return Err(count_error(
                    batch,
                    expected,
                    count,
                    waited,
                    shards,
                    failed_files,
                    0,
                ));
            }
            interval = interval.min(limit.saturating_sub(waited).max(Duration::from_millis(1)));
        }
        // The count stopped moving: if the shards' reported failures account
        // for every missing item, waiting longer cannot help.
        if last == Some(count) {
            let (shards, failed_files, rejected) = shard_report(client, batch).await;
            let new_rejections = rejected.saturating_sub(known_rejected);
            if new_rejections > 0 && count + new_rejections >= expected {
                return Err(count_error(
                    batch,
                    expected,
                    count,
                    waited,
                    shards,
                    failed_files,
                    rejected,
                ));
            }
        }
        last = Some(count);
        pause(interval, cancel).await?;
        interval = options.next(interval);
    }
}

/// Shard summaries, failed file names, and the number of files the shards
/// report as failed (numeric `failedFiles` in their status metadata).
async fn shard_report(client: &Client, batch: &str) -> (Vec<ShardStatus>, Vec<Failed>, u64) {
    // Best effort: a failure to list shards must not hide the count problem.
    let shards: Vec<ShardStatus> = client
        .staging()
        .shards(batch)
        .try_collect()
        .await
        .unwrap_or_default();
    let mut failed_files = Vec::new();
    let mut rejected = 0;
    for s in &shards {
        if let Some(meta) = &s.status_metadata {
            collect_failed_files(meta, false, &mut failed_files);
            rejected += meta
                .get("failedFiles")
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(0);
        }
    }
    (shards, failed_files, rejected)
}

fn count_error(
    batch: &str,
    expected: u64,
    counted: u64,
    waited: Duration,
    shards: Vec<ShardStatus>,
    failed: Vec<Failed>,
    rejected: u64,
) -> Error {
    Error::CountTimeout(Box::new(CountTimeout {
        batch_id: batch.to_string(),
        expected,
        counted,
        waited,
        rejected,
        shards: shards
            .into_iter()
            .map(|s| ShardSummary {
                shard_id: s.shard_id.to_string(),
                status_name: s.status_name,
                status_type: s.status_type,
                objects: s.shard_objects_count,
            })
            .collect(),
        failed_files: failed.iter().map(Failed::describe).collect(),
        failed_names: failed.into_iter().map(|f| f.name).collect(),
    }))
}

/// A file a shard's status reports as failed.
struct Failed {
    name: String,
    reason: Option<String>,
}

impl Failed {
    /// `name (reason)`.
    fn describe(&self) -> String {
        match &self.reason {
            Some(reason) => format!("{} ({reason})", self.name),
            None => self.name.clone(),
        }
    }
}

/// Finds file names under keys that mention failure (`failedFiles`,
/// `failed_files`, ...): strings, or objects' `fileName`/`file_name`/`name`.
fn collect_failed_files(value: &serde_json::Value, in_failed: bool, out: &mut Vec<Failed>) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            if in_failed {
                for key in ["fileName", "file_name", "name"] {
                    if let Some(Value::String(name)) = map.get(key) {
                        out.push(Failed {
                            name: name.clone(),
                            reason: map.get("reason").and_then(Value::as_str).map(str::to_owned),
                        });
                        return;
                    }
                }
            }
            for (k, v) in map {
                let failed = in_failed || k.to_ascii_lowercase().contains("fail");
                collect_failed_files(v, failed, out);
            }
        }
        Value::Array(items) => {
            for item in items {
                collect_failed_files(item, in_failed, out);
            }
        }
        Value::String(s) if in_failed => out.push(Failed {
            name: s.clone(),
            reason: None,
        }),
        _ => {}
    }
}

/// A snapshot of a job's progress, derived from its stages and tasks the
/// way the official client does (see [`stage_progress`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobProgress {
    /// The job.
    pub job_id: String,
    /// The running stage's name.
    pub stage: Option<String>,
    /// Stages the job will go through.
    pub planned_stages: Vec<String>,
    /// Progress of the current stage, 0..=1.
    pub stage_progress: f64,
    /// Progress of the whole job, 0..=1 (stages weigh equally).
    pub overall: f64,
    /// Tasks the current stage expects.
    pub tasks_total: u64,
    /// Tasks not yet started.
    pub tasks_waiting: u64,
    /// Tasks running.
    pub tasks_running: u64,
    /// Tasks that succeeded.
    pub tasks_succeeded: u64,
    /// Tasks that failed.
    pub tasks_failed: u64,
    /// The job's last notification, as text.
    pub notification: Option<String>,
    /// Whether the job is finished.
    pub is_terminal: bool,
    /// Whether it failed (or was aborted).
    pub error: bool,
}

/// Stage progress and task counts, computed as the official client does: a
/// task with a non-null `progress` is registered; `statusType == "info"` is
/// running, anything else is terminated (succeeded if it contains `success`,
/// failed if it contains `error`); a terminated task counts 1/`tasksNumber`
/// towards the stage's progress, a running one `progress`/`tasksNumber`.
pub fn stage_progress(stage: &JobStage, tasks: &[TaskStatus]) -> (f64, [u64; 4]) {
    let total = stage.tasks_number.max(1) as f64;
    let mut progress = 0.0;
    let (mut running, mut succeeded, mut failed, mut registered) = (0u64, 0u64, 0u64, 0u64);
    for t in tasks {
        if t.progress.is_some() {
            registered += 1;
        }
        match status_kind(&t.status_type) {
            StatusKind::Running => {
                if let Some(p) = t.progress {
                    running += 1;
                    progress += p.clamp(0.0, 1.0) / total;
                }
            }
            kind => {
                progress += 1.0 / total;
                match kind {
                    StatusKind::Succeeded => succeeded += 1,
                    StatusKind::Failed => failed += 1,
                    _ => {}
                }
            }
        }
    }
    let waiting = stage.tasks_number.saturating_sub(registered);
    (progress.min(1.0), [waiting, running, succeeded, failed])
}

/// Reads a job, its stages and the current stage's tasks once.
pub async fn job_progress(client: &Client, job_id: &str) -> Result<JobProgress> {
    let GetJobResponse { job, .. } = client.jobs().get(job_id).await?;
    let planned = job.planned_stages.clone().unwrap_or_default();
    let mut snapshot = JobProgress {
        job_id: job_id.to_string(),
        stage: job.current_stage.clone(),
        planned_stages: planned.clone(),
        stage_progress: 0.0,
        overall: 0.0,
        tasks_total: 0,
        tasks_waiting: 0,
        tasks_running: 0,
        tasks_succeeded: 0,
        tasks_failed: 0,
        notification: job.last_notification.as_ref().map(|n| n.to_string()),
        is_terminal: job.is_terminal,
        error: job.error,
    };
    if job.is_terminal {
        snapshot.stage_progress = 1.0;
        snapshot.overall = 1.0;
        return Ok(snapshot);
    }
    let Some(current) = job.current_stage.as_deref() else {
        return Ok(snapshot);
    };
    let stages = client.jobs().stages(job_id).await?;
    if let Some(stage) = stages.iter().find(|s| s.processing_stage_name == current) {
        let tasks: Vec<TaskStatus> = client
            .jobs()
            .tasks(job_id, stage.processing_stage_id.as_str())
            .try_collect()
            .await?;
        let (p, [waiting, running, succeeded, failed]) = stage_progress(stage, &tasks);
        snapshot.stage_progress = p;
        snapshot.tasks_total = stage.tasks_number;
        snapshot.tasks_waiting = waiting;
        snapshot.tasks_running = running;
        snapshot.tasks_succeeded = succeeded;
        snapshot.tasks_failed = failed;
    }
    let n = planned.len().max(1) as f64;
    let done_before = planned.iter().position(|s| s == current).unwrap_or(0) as f64;
    snapshot.overall = ((done_before + snapshot.stage_progress) / n).min(1.0);
    Ok(snapshot)
}

/// Polls a job until it is terminal; `on_progress` sees every snapshot.
///
/// Returns the final snapshot; a job that ended in error gives
/// [`Error::JobFailed`], one still running at the deadline [`Error::JobTimeout`].
pub async fn wait_for_job(
    client: &Client,
    job_id: &str,
    options: &PollOptions,
    cancel: &CancellationToken,
    mut on_progress: impl FnMut(&JobProgress),
) -> Result<JobProgress> {
    let started = Instant::now();
    let mut interval = options.initial_interval;
    loop {
        let snapshot = job_progress(client, job_id).await?;
        on_progress(&snapshot);
        if snapshot.is_terminal {
            if snapshot.error {
                return Err(Error::JobFailed {
                    job_id: job_id.to_string(),
                    message: snapshot
                        .notification
                        .clone()
                        .unwrap_or_else(|| "no message".into()),
                });
            }
            return Ok(snapshot);
        }
        if let Some(limit) = options.timeout
            && started.elapsed() >= limit
        {
            return Err(Error::JobTimeout {
                job_id: job_id.to_string(),
                waited: started.elapsed(),
            });
        }
        pause(interval, cancel).await?;
        interval = options.next(interval);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn failed_files_are_found_in_metadata() {
        let mut out = Vec::new();
        collect_failed_files(
            &json!({"failedFiles": 2, "failures": [{"fileName": "a.jpg", "reason": "too big"}, "b.png"], "ok": ["c.jpg"]}),
            false,
            &mut out,
        );
        let described: Vec<String> = out.iter().map(Failed::describe).collect();
        assert_eq!(described, ["a.jpg (too big)", "b.png"]);
        let names: Vec<&str> = out.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["a.jpg", "b.png"]);
    }

    #[test]
    fn count_timeout_message_lists_shards_and_files() {
        let t = CountTimeout {
            batch_id: "b1".into(),
            expected: 10,
            counted: 7,
            waited: Duration::from_secs(30),
            rejected: 0,
            shards: vec![ShardSummary {
                shard_id: "s1".into(),
                status_name: "shard-failed".into(),
                status_type: "error".into(),
                objects: 3,
            }],
            failed_files: vec!["x.jpg (bad)".into()],
            failed_names: vec!["x.jpg".into()],
        };
        let msg = t.to_string();
        assert!(msg.contains("7 of 10"), "{msg}");
        assert!(msg.contains("1 failed"), "{msg}");
        assert!(msg.contains("s1 error/shard-failed"), "{msg}");
        assert!(msg.contains("x.jpg (bad)"), "{msg}");
    }
}
