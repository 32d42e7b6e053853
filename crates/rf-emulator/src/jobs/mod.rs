//! Batch jobs: how a created job runs to its end.
//!
//! - [`runner`]: the stages of a job (plan, run the tasks on the worker
//!   pool, close), from `pending` to a terminal phase and its webhook;
//! - [`task`]: one task: running a built-in workflow over its input files,
//!   or compiling;
//! - [`export`]: an export task packing result files into a `.tar.gz`;
//! - [`results`]: the job output batches and the CSV/JSONL result files;
//! - [`log`]: the job log.
//!
//! This module holds what they share: a runner's [`JobKey`] and the guarded
//! access to the job record ([`with_job`], [`TaskCtx`]). A runner belongs to
//! one job *generation*: abort and restart bump the generation, and a stale
//! runner's writes are dropped, so it stops at its next step.

mod export;
pub(crate) mod log;
mod results;
mod runner;
mod task;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::ctx::Ctx;
use crate::model::{Job, JobPhase, TaskRec};
use crate::webhook::{job_notifications_url, redact_url};

pub(crate) use runner::spawn;

/// Most distinct devices one TRT compilation job may name (three exist
/// today; the bound leaves room for new ones and keeps a hostile list from
/// making a task each).
pub(crate) const MAX_COMPILATION_DEVICES: usize = 16;

/// The distinct devices of a TRT compilation job, in the order first
/// named: one compilation task each.
pub(crate) fn compilation_devices(trt: &rf_types::TrtCompilationJob) -> Vec<String> {
    let mut seen = std::collections::BTreeSet::new();
    trt.compilation_devices
        .iter()
        .map(|d| d.as_str().to_string())
        .filter(|d| seen.insert(d.clone()))
        .collect()
}

/// The job a runner works on, in the generation it was started for.
#[derive(Debug, Clone)]
pub(crate) struct JobKey {
    ws: String,
    job: String,
    generation: u64,
}

/// Applies `f` to the job if this runner is still current.
fn with_job<R>(ctx: &Ctx, key: &JobKey, f: impl FnOnce(&mut Job, DateTime<Utc>) -> R) -> Option<R> {
    let now = Utc::now();
    ctx.store.write(|db| {
        let job = db.job_mut(&key.ws, &key.job)?;
        (job.generation == key.generation && !job.phase.is_terminal()).then(|| {
            job.last_update = now;
            f(job, now)
        })
    })
}

/// Reads the job (whatever its generation).
fn read_job<R>(ctx: &Ctx, key: &JobKey, f: impl FnOnce(&Job) -> Option<R>) -> Option<R> {
    ctx.store.read(|db| db.job(&key.ws, &key.job).and_then(f))
}

/// Whether this runner is still current and the emulator is not closing.
fn alive(ctx: &Ctx, key: &JobKey) -> bool {
    !ctx.closing.is_cancelled()
        && ctx.store.read(|db| {
            db.job(&key.ws, &key.job)
                .is_some_and(|j| j.generation == key.generation && !j.phase.is_terminal())
        })
}

/// Marks the job terminal and sends its webhook.
fn finish(ctx: &Ctx, key: &JobKey, success: bool, message: &str) {
    let url = with_job(ctx, key, |job, _| {
        job.phase = if success {
            JobPhase::Succeeded
        } else {
            JobPhase::Failed
        };
        job.last_notification = json!({"message": message});
        let (severity, log_type) = if success {
            ("info", "job-succeeded")
        } else {
            ("error", "job-failed")
        };
        let stage = job.current_stage.clone();
        log::push_log(
            job,
            stage.as_deref(),
            None,
            log::Entry::new(severity, log_type, json!({"message": message})),
        );
        let url = job_notifications_url(&job.definition)?;
        match ctx.webhooks.refusal(&url) {
            Some(reason) => {
                log::push_log(job, stage.as_deref(), None, webhook_refused(&url, &reason));
                None
            }
            None => Some(url),
        }
    });
    if let Some(Some(url)) = url {
        ctx.webhooks.send_job(&url, &key.ws, &key.job, success);
    }
}

/// The job log entry of a notification not sent, and why.
fn webhook_refused(url: &str, reason: &str) -> log::Entry {
    log::Entry::new(
        "warning",
        "webhook-refused",
        json!({
            "message": format!("job notification not sent to {}: {reason}", redact_url(url)),
            "url": redact_url(url),
            "reason": reason,
        }),
    )
}

/// Logs why the job cannot run (`log_type`, in `stage`) and fails it.
fn fail_job(ctx: &Ctx, key: &JobKey, stage: &str, entry: log::Entry, message: &str) {
    with_job(ctx, key, |job, _| {
        log::push_log(job, Some(stage), None, entry)
    });
    finish(ctx, key, false, message);
}

/// One task of a running job: where its record is, for the task workers.
#[derive(Debug, Clone, Copy)]
struct TaskCtx<'a> {
    ctx: &'a Ctx,
    key: &'a JobKey,
    stage: usize,
    task: usize,
}

impl TaskCtx<'_> {
    /// Whether the job still runs in this generation.
    fn alive(&self) -> bool {
        alive(self.ctx, self.key)
    }

    /// Updates the task record (and its stage's last event time); false
    /// when the runner is stale.
    fn set(&self, f: impl FnOnce(&mut TaskRec)) -> bool {
        with_job(self.ctx, self.key, |job, now| {
            if let Some(stage) = job.stages.get_mut(self.stage) {
                stage.last_event = now;
                if let Some(task) = stage.tasks.get_mut(self.task) {
                    task.event_ts = now;
                    f(task);
                }
            }
        })
        .is_some()
    }

    /// Sets the task's progress (`done` of `total`, below 1 until it ends)
    /// and its message.
    fn progress(&self, done: usize, total: usize, message: String) {
        self.set(|t| {
            t.progress = Some(done as f64 / total.max(1) as f64 * 0.999);
            t.notification = json!({ "message": message });
        });
    }

    /// Marks the task succeeded with `notification`.
    fn succeed(&self, notification: Value) {
        self.set(|t| {
            t.progress = Some(1.0);
            t.status_type = "success".into();
            t.notification = notification;
        });
    }

    /// The task's ID.
    fn id(&self) -> Option<String> {
        read_job(self.ctx, self.key, |j| {
            j.stages
                .get(self.stage)
                .and_then(|s| s.tasks.get(self.task))
                .map(|t| t.id.clone())
        })
    }

    /// Adds a log entry about this task.
    fn log(&self, entry: log::Entry) {
        with_job(self.ctx, self.key, |job, _| {
            let stage = job.stages.get(self.stage);
            let s = stage.map(|s| s.id.clone());
            let t = stage
                .and_then(|st| st.tasks.get(self.task))
                .map(|t| t.id.clone());
            log::push_log(job, s.as_deref(), t.as_deref(), entry);
        });
    }

    /// Logs `message` as an error of type `log_type` and fails the task.
    fn fail(&self, log_type: &'static str, message: String) {
        self.log(log::Entry::new(
            "error",
            log_type,
            json!({ "message": message }),
        ));
        self.set(|t| {
            t.status_type = "error".into();
            t.notification = json!({ "message": message });
        });
    }
}
