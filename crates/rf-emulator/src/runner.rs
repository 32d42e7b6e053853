//! Job execution: a processing stage (one task per image chunk, shard or
//! video, running a built-in workflow and writing JSONL or CSV into a
//! multipart output batch) then an export stage (packing the results into
//! `.tar.gz` archives in a second output batch). Tasks run on the bounded
//! worker pool, at most `maxParallelTasks` at a time per job; each task gets
//! an equal share of `processingTimeoutSeconds` of simulated compute.
//!
//! A runner belongs to one job *generation*: abort and restart bump the
//! generation, and a stale runner stops at its next step.

use std::io::{Read, Seek, SeekFrom, Write};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use rf_types::{
    AggregationFormat, EventId, JobDefinition, JobNotification, JobState, STAGE_EXPORT,
    STAGE_PROCESSING,
};
use serde_json::{Map, Value, json};
use tokio::sync::Semaphore;

use crate::app::Ctx;
use crate::model::{
    Batch, BatchKind, BlobRef, Content, FileRec, Job, JobPhase, LogRec, PartRec, StageRec,
    TaskInput, TaskRec,
};
use crate::workflows::Workflow;

/// Most log entries kept per job.
const MAX_LOGS: usize = 20_000;
/// Part name of both output batches.
pub(crate) const RESULTS_PART: &str = "results";
/// Stage name of TRT compilation jobs.
const STAGE_COMPILATION: &str = "compilation";

#[derive(Debug, Clone)]
struct Key {
    ws: String,
    job: String,
    generation: u64,
}

#[derive(Debug, Clone)]
enum Work {
    Processing {
        workflow: Workflow,
        csv: bool,
        parameters: Map<String, Value>,
        max_fps: Option<f64>,
        budget_seconds: f64,
        max_failure_rate: Option<f64>,
        out_batch: String,
    },
    Export {
        out_batch: String,
    },
    Compile,
}

/// Starts (or resumes) the runner of a job.
pub(crate) fn spawn(ctx: &Arc<Ctx>, ws: &str, job_id: &str) {
    let ctx = ctx.clone();
    let (ws, job) = (ws.to_string(), job_id.to_string());
    tokio::spawn(async move { run(ctx, ws, job).await });
}

fn stage_out_name(job: &str, stage: &str) -> String {
    format!("{job}-{stage}-output")
}

/// Appends a log entry to a job.
pub(crate) fn push_log(
    job: &mut Job,
    stage: Option<&str>,
    task: Option<&str>,
    severity: &str,
    log_type: &str,
    payload: Value,
) {
    if job.logs.len() >= MAX_LOGS {
        return;
    }
    let payload = match payload {
        Value::Object(m) => m,
        other => {
            let mut m = Map::new();
            m.insert("message".into(), other);
            m
        }
    };
    job.logs.push(LogRec {
        created: Utc::now(),
        stage: stage.map(str::to_string),
        task: task.map(str::to_string),
        severity: severity.to_string(),
        module: "emulator-runner".into(),
        log_type: log_type.to_string(),
        payload,
    });
}

/// Applies `f` to the job if this runner is still current.
fn with_job<R>(ctx: &Ctx, key: &Key, f: impl FnOnce(&mut Job, DateTime<Utc>) -> R) -> Option<R> {
    let now = Utc::now();
    ctx.store.write(|db| {
        let job = db.job_mut(&key.ws, &key.job)?;
        (job.generation == key.generation && !job.phase.is_terminal()).then(|| {
            job.last_update = now;
            f(job, now)
        })
    })
}

fn alive(ctx: &Ctx, key: &Key) -> bool {
    !ctx.closing.is_cancelled()
        && ctx.store.read(|db| {
            db.job(&key.ws, &key.job)
                .is_some_and(|j| j.generation == key.generation && !j.phase.is_terminal())
        })
}

/// Marks the job terminal and sends its webhook.
fn finish(ctx: &Ctx, key: &Key, success: bool, message: &str) {
    let url = with_job(ctx, key, |job, _| {
        job.phase = if success {
            JobPhase::Succeeded
        } else {
            JobPhase::Failed
        };
        job.last_notification = json!({"message": message});
        let severity = if success { "info" } else { "error" };
        let stage = job.current_stage.clone();
        push_log(
            job,
            stage.as_deref(),
            None,
            severity,
            if success {
                "job-succeeded"
            } else {
                "job-failed"
            },
            json!({"message": message}),
        );
        notifications_url(&job.definition)
    });
    if let Some(Some(url)) = url {
        send_job_webhook(ctx, &key.ws, &key.job, &url, success);
    }
}

pub(crate) fn notifications_url(definition: &Value) -> Option<String> {
    definition
        .get("notificationsURL")
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// Sends the job webhook (`roboflow-batch-job-notification-v1`).
pub(crate) fn send_job_webhook(ctx: &Ctx, ws: &str, job_id: &str, url: &str, success: bool) {
    let n = JobNotification {
        event_id: EventId::from(uuid::Uuid::new_v4().to_string()),
        job_id: job_id.to_string(),
        job_state: if success {
            JobState::Success
        } else {
            JobState::Fail
        },
        delivery_attempt: 1,
    };
    match serde_json::to_value(&n) {
        Ok(v) => ctx.webhooks.send(url, ws, v),
        Err(e) => tracing::warn!("cannot encode job notification: {e}"),
    }
}

async fn run(ctx: Arc<Ctx>, ws: String, job_id: String) {
    let Some((generation, definition)) = ctx.store.read(|db| {
        db.job(&ws, &job_id)
            .filter(|j| !j.phase.is_terminal())
            .map(|j| (j.generation, j.definition.clone()))
    }) else {
        return;
    };
    let key = Key {
        ws,
        job: job_id,
        generation,
    };
    let def: JobDefinition = match serde_json::from_value(definition) {
        Ok(d) => d,
        Err(e) => {
            finish(
                &ctx,
                &key,
                false,
                &format!("job definition is not readable: {e}"),
            );
            return;
        }
    };
    with_job(&ctx, &key, |job, _| {
        if job.phase == JobPhase::Pending {
            job.phase = JobPhase::Running;
            push_log(
                job,
                None,
                None,
                "info",
                "job-started",
                json!({"message": "job started"}),
            );
        }
        // Tasks cut off by a shutdown start over.
        for stage in &mut job.stages {
            for t in &mut stage.tasks {
                if t.status_type == "info" {
                    t.progress = None;
                }
            }
        }
    });
    let is_video = def.is_video();
    match def {
        JobDefinition::TrtCompilationV1(trt) => {
            let devices: Vec<String> = trt
                .compilation_devices
                .iter()
                .map(|d| d.as_str().to_string())
                .collect();
            let planned = with_job(&ctx, &key, |job, now| {
                if job.stages.is_empty() {
                    let tasks = devices
                        .iter()
                        .map(|d| new_task(&format!("compile-{d}"), Vec::new(), now))
                        .collect();
                    job.stages
                        .push(new_stage(STAGE_COMPILATION, Vec::new(), tasks, now));
                }
            });
            if planned.is_none() {
                return;
            }
            if run_stage(&ctx, &key, 0, Work::Compile, u32::MAX).await {
                finish(
                    &ctx,
                    &key,
                    true,
                    &format!("compiled {} for {}", trt.model_id, devices.join(", ")),
                );
            }
        }
        JobDefinition::SimpleImageProcessingV1(wf) | JobDefinition::SimpleVideoProcessingV1(wf) => {
            run_workflow_job(&ctx, &key, wf, is_video).await;
        }
    }
}

fn new_task(id: &str, inputs: Vec<TaskInput>, now: DateTime<Utc>) -> TaskRec {
    TaskRec {
        id: id.to_string(),
        notification: json!({"message": "waiting"}),
        status_type: "info".into(),
        progress: None,
        event_ts: now,
        inputs,
    }
}

fn new_stage(
    name: &str,
    output_batches: Vec<String>,
    tasks: Vec<TaskRec>,
    now: DateTime<Utc>,
) -> StageRec {
    StageRec {
        id: name.to_string(),
        name: name.to_string(),
        output_batches,
        start: now,
        notification: json!({"message": format!("{} tasks planned", tasks.len())}),
        status_type: "info".into(),
        last_event: now,
        tasks,
    }
}

/// Creates (or reuses) a job output batch.
#[allow(clippy::too_many_arguments)]
fn output_batch(
    ctx: &Ctx,
    db: &mut crate::model::Db,
    ws: &str,
    job: &str,
    stage: &str,
    content: Content,
    nested: Option<Content>,
    description: &str,
) -> String {
    let now = ctx.now();
    let mut name = stage_out_name(job, stage);
    let taken = db
        .ws(ws)
        .and_then(|w| w.batches.get(&name))
        .is_some_and(|b| b.owner_job.as_deref() != Some(job));
    if taken {
        name = format!("{name}-{}", &uuid::Uuid::new_v4().simple().to_string()[..6]);
    }
    let seq = db.next_seq();
    let ttl = ctx.batch_ttl();
    let batches = &mut db.ws_mut(ws).batches;
    if !batches.contains_key(&name) {
        let mut b = Batch::new(
            &name,
            Some(&format!("{job} {stage} output")),
            BatchKind::MultipartBatch,
            content,
            now,
            ttl,
            seq,
        );
        b.owner_job = Some(job.to_string());
        b.parts.push(PartRec {
            name: RESULTS_PART.into(),
            part_type: BatchKind::SimpleBatch,
            content,
            description: Some(description.to_string()),
            nested,
        });
        batches.insert(name.clone(), b);
    }
    name
}

async fn run_workflow_job(ctx: &Arc<Ctx>, key: &Key, wf: rf_types::WorkflowJob, is_video: bool) {
    let spec = &wf.processing_specification;
    let Some(workflow) = Workflow::lookup(&spec.workflow_id) else {
        let msg = format!(
            "workflow {:?} is not available in the emulator; built-in workflows: {}",
            spec.workflow_id,
            crate::workflows::BUILT_IN.join(", ")
        );
        with_job(ctx, key, |job, _| {
            push_log(
                job,
                Some(STAGE_PROCESSING),
                None,
                "error",
                "workflow-not-found",
                json!({"workflowId": spec.workflow_id, "message": msg}),
            );
        });
        finish(ctx, key, false, &msg);
        return;
    };
    if is_video != workflow.accepts_videos() {
        let msg = format!(
            "workflow {:?} runs on {}, but this is a {} job",
            spec.workflow_id,
            if workflow.accepts_videos() {
                "videos"
            } else {
                "images"
            },
            if is_video { "video" } else { "image" }
        );
        with_job(ctx, key, |job, _| {
            push_log(
                job,
                Some(STAGE_PROCESSING),
                None,
                "error",
                "workflow-input-mismatch",
                json!({"message": msg}),
            );
        });
        finish(ctx, key, false, &msg);
        return;
    }
    let csv = matches!(spec.aggregation_format, Some(AggregationFormat::Csv));
    let parameters = spec.workflow_parameters.clone().unwrap_or_default();
    let max_fps = spec
        .max_video_fps
        .as_ref()
        .and_then(serde_json::Number::as_f64);
    let input_batch = wf.job_input.batch_id.as_str().to_string();
    let part = wf
        .job_input
        .part_name
        .as_ref()
        .map(|p| p.as_str().to_string());
    let per_task = ctx.config.job_speed.images_per_task.max(1);

    // Plan the processing stage once.
    let plan_error = ctx.store.write(|db| {
        let now = ctx.now();
        let Some(job) = db.job(&key.ws, &key.job) else {
            return Some(None);
        };
        if job.generation != key.generation || job.phase.is_terminal() {
            return Some(None);
        }
        if !job.stages.is_empty() {
            return None;
        }
        let Some(batch) = db.batch(&key.ws, &input_batch, now) else {
            return Some(Some(format!(
                "input batch {input_batch:?} does not exist (or expired)"
            )));
        };
        let want = if is_video {
            Content::Videos
        } else {
            Content::Images
        };
        let files: Vec<&FileRec> = batch
            .files_in(part.as_deref())
            .filter(|f| f.content == want)
            .collect();
        if files.is_empty() {
            return Some(Some(format!(
                "input batch {input_batch:?}{} has no {} to process",
                part.as_deref()
                    .map(|p| format!(" part {p:?}"))
                    .unwrap_or_default(),
                if is_video { "videos" } else { "images" }
            )));
        }
        let input = |f: &FileRec| TaskInput {
            name: f.name.clone(),
            data: f.data.clone(),
            content: f.content,
        };
        let mut groups: Vec<Vec<TaskInput>> = Vec::new();
        if is_video {
            groups = files.iter().map(|f| vec![input(f)]).collect();
        } else if batch.kind == BatchKind::ShardedBatch {
            let mut order: Vec<String> = Vec::new();
            let mut by_shard: std::collections::HashMap<String, Vec<TaskInput>> =
                Default::default();
            for f in &files {
                let s = f.shard.clone().unwrap_or_default();
                if !by_shard.contains_key(&s) {
                    order.push(s.clone());
                }
                by_shard.entry(s).or_default().push(input(f));
            }
            for s in order {
                if let Some(g) = by_shard.remove(&s) {
                    groups.push(g);
                }
            }
        } else {
            groups = files
                .chunks(per_task)
                .map(|c| c.iter().map(|f| input(f)).collect())
                .collect();
        }
        let out = output_batch(
            ctx,
            db,
            &key.ws,
            &key.job,
            STAGE_PROCESSING,
            Content::Metadata,
            None,
            "Workflow results per task",
        );
        let tasks: Vec<TaskRec> = groups
            .into_iter()
            .enumerate()
            .map(|(i, g)| new_task(&format!("processing-{:04}", i + 1), g, now))
            .collect();
        let n = tasks.len();
        if let Some(job) = db.job_mut(&key.ws, &key.job) {
            job.stages
                .push(new_stage(STAGE_PROCESSING, vec![out], tasks, now));
            push_log(
                job,
                Some(STAGE_PROCESSING),
                None,
                "info",
                "stage-planned",
                json!({"tasks": n}),
            );
        }
        None
    });
    match plan_error {
        Some(Some(msg)) => {
            with_job(ctx, key, |job, _| {
                push_log(
                    job,
                    Some(STAGE_PROCESSING),
                    None,
                    "error",
                    "input-not-usable",
                    json!({"message": msg}),
                );
            });
            finish(ctx, key, false, &msg);
            return;
        }
        Some(None) => return,
        None => {}
    }
    let Some((params, tasks, out_batch)) = ctx.store.read(|db| {
        db.job(&key.ws, &key.job).and_then(|j| {
            j.stages.first().map(|s| {
                (
                    j.params.clone(),
                    s.tasks.len(),
                    s.output_batches.first().cloned().unwrap_or_default(),
                )
            })
        })
    }) else {
        return;
    };
    let budget_seconds = params.timeout_seconds / tasks.max(1) as f64;
    let work = Work::Processing {
        workflow,
        csv,
        parameters,
        max_fps,
        budget_seconds,
        max_failure_rate: params.max_image_failure_rate,
        out_batch,
    };
    if !run_stage(ctx, key, 0, work, params.max_parallel_tasks).await {
        return;
    }

    // Plan the export stage once, from the processing results.
    let planned = with_job(ctx, key, |job, _| job.stages.len() >= 2);
    match planned {
        None => return,
        Some(true) => {}
        Some(false) => {
            let per_archive = ctx.config.job_speed.results_per_archive.max(1);
            ctx.store.write(|db| {
                let now = ctx.now();
                let Some(proc_out) = db
                    .job(&key.ws, &key.job)
                    .and_then(|j| j.stages.first())
                    .and_then(|s| s.output_batches.first().cloned())
                else {
                    return;
                };
                let results: Vec<TaskInput> = db
                    .batch(&key.ws, &proc_out, now)
                    .map(|b| {
                        b.files
                            .iter()
                            .map(|f| TaskInput {
                                name: f.name.clone(),
                                data: f.data.clone(),
                                content: f.content,
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let out = output_batch(
                    ctx,
                    db,
                    &key.ws,
                    &key.job,
                    STAGE_EXPORT,
                    Content::Archives,
                    Some(Content::Metadata),
                    "Compressed processing results",
                );
                let mut tasks: Vec<TaskRec> = results
                    .chunks(per_archive)
                    .enumerate()
                    .map(|(i, c)| new_task(&format!("export-{:04}", i + 1), c.to_vec(), now))
                    .collect();
                if tasks.is_empty() {
                    tasks.push(new_task("export-0001", Vec::new(), now));
                }
                if let Some(job) = db.job_mut(&key.ws, &key.job) {
                    let n = tasks.len();
                    job.stages
                        .push(new_stage(STAGE_EXPORT, vec![out], tasks, now));
                    push_log(
                        job,
                        Some(STAGE_EXPORT),
                        None,
                        "info",
                        "stage-planned",
                        json!({"tasks": n}),
                    );
                }
            });
        }
    }
    let Some(out_batch) = ctx.store.read(|db| {
        db.job(&key.ws, &key.job)
            .and_then(|j| j.stages.get(1))
            .and_then(|s| s.output_batches.first().cloned())
    }) else {
        return;
    };
    if !run_stage(
        ctx,
        key,
        1,
        Work::Export { out_batch },
        params.max_parallel_tasks,
    )
    .await
    {
        return;
    }
    let total: usize = ctx.store.read(|db| {
        db.job(&key.ws, &key.job)
            .and_then(|j| j.stages.first())
            .map(|s| s.tasks.iter().map(|t| t.inputs.len()).sum())
            .unwrap_or(0)
    });
    finish(
        ctx,
        key,
        true,
        &format!("job finished: {total} files processed and exported"),
    );
}

/// Runs the unfinished tasks of a stage; true when all succeeded.
async fn run_stage(ctx: &Arc<Ctx>, key: &Key, stage: usize, work: Work, max_parallel: u32) -> bool {
    let pending = with_job(ctx, key, |job, now| {
        let name = job.stages.get(stage).map(|s| s.name.clone());
        job.current_stage = name.clone();
        job.last_notification =
            json!({"message": format!("stage {} running", name.as_deref().unwrap_or("?"))});
        job.stages.get_mut(stage).map(|s| {
            s.status_type = "info".into();
            s.last_event = now;
            s.tasks
                .iter()
                .enumerate()
                .filter(|(_, t)| !t.status_type.contains("success"))
                .map(|(i, _)| i)
                .collect::<Vec<_>>()
        })
    });
    let Some(Some(pending)) = pending else {
        return false;
    };
    let limit = Arc::new(Semaphore::new(
        usize::try_from(max_parallel.max(1))
            .unwrap_or(usize::MAX)
            .min(Semaphore::MAX_PERMITS),
    ));
    let mut set = tokio::task::JoinSet::new();
    for task in pending {
        let (ctx, key, work, limit) = (ctx.clone(), key.clone(), work.clone(), limit.clone());
        set.spawn(async move {
            let Ok(_job_slot) = limit.acquire_owned().await else {
                return;
            };
            let Ok(_worker) = ctx.workers.clone().acquire_owned().await else {
                return;
            };
            if !alive(&ctx, &key) {
                return;
            }
            let ctx2 = ctx.clone();
            let _ = tokio::task::spawn_blocking(move || run_task(&ctx2, &key, stage, task, &work))
                .await;
        });
    }
    while set.join_next().await.is_some() {}
    if ctx.closing.is_cancelled() {
        // shutting down: leave the job as it is, it resumes on the next start
        return false;
    }
    let outcome = with_job(ctx, key, |job, now| {
        let stage_rec = job.stages.get_mut(stage)?;
        // A task that never reached a terminal state (its worker crashed)
        // is a failed task.
        for t in &mut stage_rec.tasks {
            if t.status_type == "info" {
                t.status_type = "error".into();
                t.notification = json!({"message": "task stopped unexpectedly"});
                t.event_ts = now;
            }
        }
        let failed: Vec<String> = stage_rec
            .tasks
            .iter()
            .filter(|t| !t.status_type.contains("success"))
            .map(|t| t.id.clone())
            .collect();
        let n = stage_rec.tasks.len();
        stage_rec.last_event = now;
        if failed.is_empty() {
            stage_rec.status_type = "success".into();
            stage_rec.notification = json!({"message": format!("{n} of {n} tasks succeeded")});
        } else {
            stage_rec.status_type = "error".into();
            stage_rec.notification = json!({"message": format!("{} of {n} tasks failed", failed.len()), "failedTasks": failed});
        }
        Some((failed, stage_rec.name.clone()))
    });
    match outcome {
        Some(Some((failed, _))) if failed.is_empty() => true,
        Some(Some((failed, name))) => {
            finish(
                ctx,
                key,
                false,
                &format!(
                    "stage {name} failed: {} task(s) failed ({}); see the job logs, then restart the job",
                    failed.len(),
                    failed.join(", ")
                ),
            );
            false
        }
        _ => false,
    }
}

fn set_task(ctx: &Ctx, key: &Key, stage: usize, task: usize, f: impl FnOnce(&mut TaskRec)) -> bool {
    with_job(ctx, key, |job, now| {
        if let Some(t) = job
            .stages
            .get_mut(stage)
            .and_then(|s| s.tasks.get_mut(task))
        {
            t.event_ts = now;
            f(t);
        }
        if let Some(s) = job.stages.get_mut(stage) {
            s.last_event = now;
        }
    })
    .is_some()
}

fn task_log(
    ctx: &Ctx,
    key: &Key,
    stage: usize,
    task: usize,
    severity: &str,
    log_type: &str,
    payload: Value,
) {
    with_job(ctx, key, |job, _| {
        let s = job.stages.get(stage).map(|s| s.id.clone());
        let t = s
            .as_ref()
            .and_then(|_| job.stages.get(stage))
            .and_then(|st| st.tasks.get(task))
            .map(|t| t.id.clone());
        push_log(job, s.as_deref(), t.as_deref(), severity, log_type, payload);
    });
}

fn fail_task(ctx: &Ctx, key: &Key, stage: usize, task: usize, log_type: &str, message: String) {
    task_log(
        ctx,
        key,
        stage,
        task,
        "error",
        log_type,
        json!({"message": message}),
    );
    set_task(ctx, key, stage, task, |t| {
        t.status_type = "error".into();
        t.notification = json!({"message": message});
    });
}

/// Runs one task to completion (blocking; on the worker pool).
fn run_task(ctx: &Ctx, key: &Key, stage: usize, task: usize, work: &Work) {
    let Some(Some(inputs)) = ctx.store.read(|db| {
        db.job(&key.ws, &key.job).map(|j| {
            j.stages
                .get(stage)
                .and_then(|s| s.tasks.get(task))
                .map(|t| t.inputs.clone())
        })
    }) else {
        return;
    };
    let total = inputs.len();
    if !set_task(ctx, key, stage, task, |t| {
        t.progress = Some(0.0);
        t.status_type = "info".into();
        t.notification = json!({"message": format!("processing 0/{total}")});
    }) {
        return;
    }
    let delay = ctx.config.job_speed.item_delay;
    match work {
        Work::Compile => {
            if !delay.is_zero() {
                std::thread::sleep(delay);
            }
            set_task(ctx, key, stage, task, |t| {
                t.progress = Some(1.0);
                t.status_type = "success".into();
                t.notification = json!({"message": "engine compiled"});
            });
        }
        Work::Export { out_batch } => run_export(ctx, key, stage, task, &inputs, out_batch),
        Work::Processing {
            workflow,
            csv,
            parameters,
            max_fps,
            budget_seconds,
            max_failure_rate,
            out_batch,
        } => {
            let mut records = Vec::with_capacity(total);
            let mut failed = 0usize;
            let mut spent = 0.0f64;
            let cost = ctx.config.job_speed.simulated_seconds_per_item;
            for (i, input) in inputs.iter().enumerate() {
                if !alive(ctx, key) {
                    return;
                }
                spent += cost;
                if spent > *budget_seconds {
                    fail_task(
                        ctx,
                        key,
                        stage,
                        task,
                        "processing-timeout",
                        format!(
                            "task used its share of processingTimeoutSeconds ({budget_seconds:.1} s of simulated compute) after {i} of {total} files; restart with a larger processingTimeoutSeconds"
                        ),
                    );
                    return;
                }
                // A decoder bug on a hostile file must not take the task down.
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    process_item(ctx, *workflow, input, parameters, *max_fps)
                }))
                .unwrap_or_else(|_| Err("the workflow crashed on this file".to_string()));
                match outcome {
                    Ok(mut out) => {
                        let mut rec = Map::new();
                        rec.insert("file_name".into(), input.name.clone().into());
                        rec.insert("workflow_id".into(), workflow.id().into());
                        rec.append(&mut out);
                        records.push(rec);
                    }
                    Err(reason) => {
                        failed += 1;
                        task_log(
                            ctx,
                            key,
                            stage,
                            task,
                            "error",
                            "image-processing-failed",
                            json!({"fileName": input.name, "reason": reason}),
                        );
                        let too_many = match max_failure_rate {
                            Some(r) => failed as f64 > r * total as f64,
                            None => failed > 10,
                        };
                        if too_many {
                            fail_task(
                                ctx,
                                key,
                                stage,
                                task,
                                "failure-rate-exceeded",
                                format!(
                                    "{failed} of {total} files failed, more than maxImageFailureRate allows"
                                ),
                            );
                            return;
                        }
                    }
                }
                if !delay.is_zero() {
                    std::thread::sleep(delay);
                }
                let done = i + 1;
                set_task(ctx, key, stage, task, |t| {
                    t.progress = Some(done as f64 / total.max(1) as f64 * 0.999);
                    t.notification = json!({"message": format!("processing {done}/{total}")});
                });
            }
            let Some(task_id) = task_id(ctx, key, stage, task) else {
                return;
            };
            let (name, body) = if *csv {
                (format!("{}_{task_id}.csv", key.job), to_csv(&records))
            } else {
                let mut s = String::new();
                for r in &records {
                    s.push_str(&Value::Object(r.clone()).to_string());
                    s.push('\n');
                }
                (format!("{}_{task_id}.jsonl", key.job), s.into_bytes())
            };
            match store_output(ctx, key, out_batch, &name, &body, Content::Metadata, None) {
                Ok(()) => {
                    set_task(ctx, key, stage, task, |t| {
                        t.progress = Some(1.0);
                        t.status_type = "success".into();
                        t.notification = json!({"message": format!("processed {}/{total} files", total - failed), "failedFiles": failed});
                    });
                }
                Err(e) => fail_task(
                    ctx,
                    key,
                    stage,
                    task,
                    "output-write-failed",
                    format!("cannot store results: {e}"),
                ),
            }
        }
    }
}

fn task_id(ctx: &Ctx, key: &Key, stage: usize, task: usize) -> Option<String> {
    ctx.store.read(|db| {
        db.job(&key.ws, &key.job)
            .and_then(|j| j.stages.get(stage))
            .and_then(|s| s.tasks.get(task))
            .map(|t| t.id.clone())
    })
}

fn open_range(ctx: &Ctx, data: &BlobRef) -> std::io::Result<std::fs::File> {
    let mut f = std::fs::File::open(ctx.store.blob_path(&data.blob))?;
    f.seek(SeekFrom::Start(data.offset))?;
    Ok(f)
}

fn process_item(
    ctx: &Ctx,
    workflow: Workflow,
    input: &TaskInput,
    parameters: &Map<String, Value>,
    max_fps: Option<f64>,
) -> Result<Map<String, Value>, String> {
    let mut f =
        open_range(ctx, &input.data).map_err(|e| format!("input file is unreadable: {e}"))?;
    if input.content == Content::Videos {
        let mut r = std::io::BufReader::new(f);
        workflow
            .run_video(&mut r, input.data.len, max_fps)
            .map_err(|e| e.0)
    } else {
        let len = usize::try_from(input.data.len).map_err(|_| "input too large".to_string())?;
        let mut bytes = vec![0u8; len];
        f.read_exact(&mut bytes)
            .map_err(|e| format!("input file is unreadable: {e}"))?;
        workflow.run_image(&bytes, parameters).map_err(|e| e.0)
    }
}

fn csv_field(v: &Value) -> String {
    let s = match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// Records as CSV: a header of all keys (first-seen order), values as text,
/// nested values as compact JSON.
pub(crate) fn to_csv(records: &[Map<String, Value>]) -> Vec<u8> {
    let mut columns: Vec<String> = vec!["file_name".to_string()];
    for r in records {
        for k in r.keys() {
            if !columns.contains(k) {
                columns.push(k.clone());
            }
        }
    }
    let mut out = String::new();
    out.push_str(
        &columns
            .iter()
            .map(|c| csv_field(&Value::String(c.clone())))
            .collect::<Vec<_>>()
            .join(","),
    );
    out.push('\n');
    for r in records {
        let row: Vec<String> = columns
            .iter()
            .map(|c| csv_field(r.get(c).unwrap_or(&Value::Null)))
            .collect();
        out.push_str(&row.join(","));
        out.push('\n');
    }
    out.into_bytes()
}

/// Stores an output file into the `results` part of an output batch
/// (replacing a file of the same name).
fn store_output(
    ctx: &Ctx,
    key: &Key,
    out_batch: &str,
    name: &str,
    body: &[u8],
    content: Content,
    nested: Option<Content>,
) -> std::io::Result<()> {
    let blob = format!("{}.out", uuid::Uuid::new_v4().simple());
    ctx.store.write_blob(&blob, |w| w.write_all(body))?;
    add_output(
        ctx,
        key,
        out_batch,
        name,
        BlobRef {
            blob,
            offset: 0,
            len: body.len() as u64,
        },
        content,
        nested,
    );
    Ok(())
}

fn add_output(
    ctx: &Ctx,
    key: &Key,
    out_batch: &str,
    name: &str,
    data: BlobRef,
    content: Content,
    nested: Option<Content>,
) {
    let now = ctx.now();
    let old = ctx.store.write(|db| {
        let b = db.batch_mut(&key.ws, out_batch, now)?;
        let rec = FileRec {
            name: name.to_string(),
            data,
            content,
            part: Some(RESULTS_PART.into()),
            shard: None,
            nested,
        };
        match b.files.iter_mut().find(|f| f.name == name) {
            Some(f) => Some(std::mem::replace(f, rec).data.blob),
            None => {
                b.files.push(rec);
                None
            }
        }
    });
    if let Some(old) = old {
        ctx.store.remove_blob(&old);
    }
}

fn run_export(
    ctx: &Ctx,
    key: &Key,
    stage: usize,
    task: usize,
    inputs: &[TaskInput],
    out_batch: &str,
) {
    let Some(task_id) = task_id(ctx, key, stage, task) else {
        return;
    };
    let blob = format!("{}.tgz", uuid::Uuid::new_v4().simple());
    let total = inputs.len();
    let result = ctx.store.write_blob(&blob, |w| {
        let gz = flate2::write::GzEncoder::new(w, flate2::Compression::fast());
        let mut tar = tar::Builder::new(gz);
        let mtime = u64::try_from(Utc::now().timestamp()).unwrap_or(0);
        for (i, input) in inputs.iter().enumerate() {
            if !alive(ctx, key) {
                return Err(std::io::Error::other("job is no longer running"));
            }
            let f = open_range(ctx, &input.data)?;
            let mut h = tar::Header::new_ustar();
            h.set_size(input.data.len);
            h.set_mode(0o644);
            h.set_mtime(mtime);
            h.set_entry_type(tar::EntryType::Regular);
            tar.append_data(&mut h, &input.name, f.take(input.data.len))?;
            let done = i + 1;
            set_task(ctx, key, stage, task, |t| {
                t.progress = Some(done as f64 / total.max(1) as f64 * 0.999);
                t.notification = json!({"message": format!("packed {done}/{total} result files")});
            });
        }
        tar.into_inner()?.finish()?;
        Ok(())
    });
    if let Err(e) = result {
        if alive(ctx, key) {
            fail_task(
                ctx,
                key,
                stage,
                task,
                "export-failed",
                format!("cannot build archive: {e}"),
            );
        }
        return;
    }
    let len = std::fs::metadata(ctx.store.blob_path(&blob))
        .map(|m| m.len())
        .unwrap_or(0);
    let name = format!("{}_{task_id}.tar.gz", key.job);
    add_output(
        ctx,
        key,
        out_batch,
        &name,
        BlobRef {
            blob,
            offset: 0,
            len,
        },
        Content::Archives,
        Some(Content::Metadata),
    );
    set_task(ctx, key, stage, task, |t| {
        t.progress = Some(1.0);
        t.status_type = "success".into();
        t.notification = json!({"message": format!("packed {total} result files into {name}")});
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_and_columns() {
        let mut a = Map::new();
        a.insert("file_name".into(), "a,b.png".into());
        a.insert("n".into(), 1.into());
        let mut b = Map::new();
        b.insert("file_name".into(), "c.png".into());
        b.insert("p".into(), json!({"x": "\"q\""}));
        let out = String::from_utf8(to_csv(&[a, b])).unwrap();
        assert_eq!(
            out,
            "file_name,n,p\n\"a,b.png\",1,\n c.png,,\"{\"\"x\"\":\"\"\\\"\"q\\\"\"\"\"}\"\n"
                .replacen(" c.png", "c.png", 1)
        );
    }
}
