//! The job runner: takes a job from `pending` through its stages to a
//! terminal phase. A workflow job has a processing stage (one task per image
//! chunk, shard or video, writing JSONL or CSV into a multipart output
//! batch) then an export stage (packing the results into `.tar.gz` archives
//! in a second output batch); a TRT compilation job has one compilation
//! stage. Each stage is planned once (a resumed job keeps its plan), then its
//! unfinished tasks run on the bounded worker pool, at most
//! `maxParallelTasks` at a time per job; each processing task gets an equal
//! share of `processingTimeoutSeconds` of simulated compute.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use rf_types::{
    AggregationFormat, JobDefinition, STAGE_EXPORT, STAGE_PROCESSING, TrtCompilationJob,
    WorkflowJob,
};
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::ctx::Ctx;
use crate::model::{
    Batch, BatchKind, BlobRef, Content, Db, FileRec, JobParams, JobPhase, StageRec, TaskInput,
    TaskRec,
};
use crate::workflows::Workflow;

use super::log::{Entry, push_log};
use super::results::{OutputBatch, output_batch};
use super::task::{Processing, Work, run_task};
use super::{JobKey, TaskCtx, alive, fail_job, finish, read_job, with_job};

/// Stage name of TRT compilation jobs.
const STAGE_COMPILATION: &str = "compilation";

/// Starts (or resumes) the runner of a job.
pub(crate) fn spawn(ctx: &Arc<Ctx>, ws: &str, job_id: &str) {
    let ctx = ctx.clone();
    let (ws, job) = (ws.to_string(), job_id.to_string());
    tokio::spawn(async move { run(ctx, ws, job).await });
}

async fn run(ctx: Arc<Ctx>, ws: String, job_id: String) {
    let Some((generation, definition)) = ctx.store.read(|db| {
        db.job(&ws, &job_id)
            .filter(|j| !j.phase.is_terminal())
            .map(|j| (j.generation, j.definition.clone()))
    }) else {
        return;
    };
    let key = JobKey {
        ws,
        job: job_id,
        generation,
    };
    let def: JobDefinition = match serde_json::from_value(definition) {
        Ok(d) => d,
        Err(e) => {
            let message = format!("job definition is not readable: {e}");
            finish(&ctx, &key, false, &message);
            return;
        }
    };
    mark_running(&ctx, &key);
    let is_video = def.is_video();
    match def {
        JobDefinition::TrtCompilationV1(trt) => run_compilation(&ctx, &key, &trt).await,
        JobDefinition::SimpleImageProcessingV1(wf) | JobDefinition::SimpleVideoProcessingV1(wf) => {
            run_workflow_job(&ctx, &key, &wf, is_video).await;
        }
    }
}

/// A pending job becomes running; tasks cut off by a shutdown start over.
fn mark_running(ctx: &Ctx, key: &JobKey) {
    with_job(ctx, key, |job, _| {
        if job.phase == JobPhase::Pending {
            job.phase = JobPhase::Running;
            let entry = Entry::new("info", "job-started", json!({"message": "job started"}));
            push_log(job, None, None, entry);
        }
        for stage in &mut job.stages {
            for t in &mut stage.tasks {
                if t.status_type == "info" {
                    t.progress = None;
                }
            }
        }
    });
}

/// A TRT compilation job: one task per device.
async fn run_compilation(ctx: &Arc<Ctx>, key: &JobKey, trt: &TrtCompilationJob) {
    let devices = super::compilation_devices(trt);
    let planned = with_job(ctx, key, |job, now| {
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
    if run_stage(ctx, key, 0, Work::Compile, u32::MAX).await {
        let message = format!("compiled {} for {}", trt.model_id, devices.join(", "));
        finish(ctx, key, true, &message);
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

/// A workflow job: the processing stage, then the export stage.
async fn run_workflow_job(ctx: &Arc<Ctx>, key: &JobKey, wf: &WorkflowJob, is_video: bool) {
    let Some(workflow) = check_workflow(ctx, key, wf, is_video) else {
        return;
    };
    let input = JobInput {
        batch: wf.job_input.batch_id.as_str().to_string(),
        part: wf
            .job_input
            .part_name
            .as_ref()
            .map(|p| p.as_str().to_string()),
        metadata_part: wf
            .job_input
            .images_metadata_part
            .as_ref()
            .map(|p| p.as_str().to_string()),
        is_video,
    };
    match plan_processing(ctx, key, &input) {
        Plan::Ready => {}
        Plan::Stale => return,
        Plan::Unusable(message) => {
            let entry = Entry::new("error", "input-not-usable", json!({"message": message}));
            fail_job(ctx, key, STAGE_PROCESSING, entry, &message);
            return;
        }
    }
    let Some((params, processing)) = processing_work(ctx, key, wf, workflow) else {
        return;
    };
    let max_parallel = params.max_parallel_tasks;
    if !run_stage(ctx, key, 0, Work::Processing(processing), max_parallel).await {
        return;
    }
    let Some(out_batch) = plan_export(ctx, key) else {
        return;
    };
    if !run_stage(ctx, key, 1, Work::Export { out_batch }, max_parallel).await {
        return;
    }
    let total: usize = read_job(ctx, key, |j| {
        j.stages
            .first()
            .map(|s| s.tasks.iter().map(|t| t.inputs.len()).sum())
    })
    .unwrap_or(0);
    let message = format!("job finished: {total} files processed and exported");
    finish(ctx, key, true, &message);
}

/// The job's workflow, when the emulator has it and it takes the job's
/// kind of media; else the job fails.
fn check_workflow(ctx: &Ctx, key: &JobKey, wf: &WorkflowJob, is_video: bool) -> Option<Workflow> {
    let id = &wf.processing_specification.workflow_id;
    let Some(workflow) = Workflow::lookup(id) else {
        let message = format!(
            "workflow {id:?} is not available in the emulator; built-in workflows: {}",
            crate::workflows::BUILT_IN.join(", ")
        );
        let payload = json!({"workflowId": id, "message": message});
        let entry = Entry::new("error", "workflow-not-found", payload);
        fail_job(ctx, key, STAGE_PROCESSING, entry, &message);
        return None;
    };
    if is_video == workflow.accepts_videos() {
        return Some(workflow);
    }
    let message = format!(
        "workflow {id:?} runs on {}, but this is a {} job",
        if workflow.accepts_videos() {
            "videos"
        } else {
            "images"
        },
        if is_video { "video" } else { "image" }
    );
    let entry = Entry::new(
        "error",
        "workflow-input-mismatch",
        json!({"message": message}),
    );
    fail_job(ctx, key, STAGE_PROCESSING, entry, &message);
    None
}

/// What a workflow job processes.
#[derive(Debug)]
struct JobInput {
    batch: String,
    part: Option<String>,
    /// The part holding each image's metadata (`imagesMetadataPart`).
    metadata_part: Option<String>,
    is_video: bool,
}

impl JobInput {
    fn content(&self) -> Content {
        if self.is_video {
            Content::Videos
        } else {
            Content::Images
        }
    }
}

/// The outcome of planning a stage.
#[derive(Debug)]
enum Plan {
    /// Planned (now or by an earlier run).
    Ready,
    /// This runner is no longer current.
    Stale,
    /// The input cannot be processed; the job fails with this message.
    Unusable(String),
}

/// Plans the processing stage once: its tasks and its output batch.
fn plan_processing(ctx: &Ctx, key: &JobKey, input: &JobInput) -> Plan {
    let per_task = ctx.config.job_speed.images_per_task.max(1);
    ctx.store.write(|db| {
        let now = ctx.now();
        let Some(job) = db.job(&key.ws, &key.job) else {
            return Plan::Stale;
        };
        if job.generation != key.generation || job.phase.is_terminal() {
            return Plan::Stale;
        }
        if !job.stages.is_empty() {
            return Plan::Ready;
        }
        let groups = match task_inputs(db, key, input, now, per_task) {
            Ok(groups) => groups,
            Err(message) => return Plan::Unusable(message),
        };
        let out = output_batch(ctx, db, key, OutputBatch::PROCESSING);
        let tasks: Vec<TaskRec> = groups
            .into_iter()
            .enumerate()
            .map(|(i, g)| new_task(&format!("processing-{:04}", i + 1), g, now))
            .collect();
        add_stage(db, key, new_stage(STAGE_PROCESSING, vec![out], tasks, now));
        Plan::Ready
    })
}

/// Adds a planned stage to the job, with its log entry.
fn add_stage(db: &mut Db, key: &JobKey, stage: StageRec) {
    if let Some(job) = db.job_mut(&key.ws, &key.job) {
        let (name, n) = (stage.name.clone(), stage.tasks.len());
        job.stages.push(stage);
        let entry = Entry::new("info", "stage-planned", json!({"tasks": n}));
        push_log(job, Some(&name), None, entry);
    }
}

/// The input files of the processing tasks, one group per task: a video
/// each, a shard each (sharded batches), or chunks of `per_task` images.
fn task_inputs(
    db: &Db,
    key: &JobKey,
    input: &JobInput,
    now: DateTime<Utc>,
    per_task: usize,
) -> Result<Vec<Vec<TaskInput>>, String> {
    let Some(batch) = db.batch(&key.ws, &input.batch, now) else {
        return Err(format!(
            "input batch {:?} does not exist (or expired)",
            input.batch
        ));
    };
    let files: Vec<&FileRec> = batch
        .files_in(input.part.as_deref())
        .filter(|f| f.content == input.content())
        .collect();
    if files.is_empty() {
        return Err(format!(
            "input batch {:?}{} has no {} to process",
            input.batch,
            input
                .part
                .as_deref()
                .map(|p| format!(" part {p:?}"))
                .unwrap_or_default(),
            if input.is_video { "videos" } else { "images" }
        ));
    }
    let mut groups = group_files(batch, &files, input.is_video, per_task);
    if let Some(part) = &input.metadata_part {
        attach_metadata(batch, part, &mut groups);
    }
    Ok(groups)
}

/// Joins each image with its metadata file in `part`: the file named like
/// the image plus `.json`.
fn attach_metadata(batch: &Batch, part: &str, groups: &mut [Vec<TaskInput>]) {
    let by_name: HashMap<&str, &BlobRef> = batch
        .files_in(Some(part))
        .filter_map(|f| Some((f.name.strip_suffix(".json")?, &f.data)))
        .collect();
    for input in groups.iter_mut().flatten() {
        input.metadata = by_name.get(input.name.as_str()).map(|d| (*d).clone());
    }
}

fn group_files(
    batch: &Batch,
    files: &[&FileRec],
    is_video: bool,
    per_task: usize,
) -> Vec<Vec<TaskInput>> {
    if is_video {
        return files.iter().map(|f| vec![task_input(f)]).collect();
    }
    if batch.kind != BatchKind::ShardedBatch {
        return files
            .chunks(per_task)
            .map(|c| c.iter().map(|f| task_input(f)).collect())
            .collect();
    }
    let mut order: Vec<String> = Vec::new();
    let mut by_shard: HashMap<String, Vec<TaskInput>> = HashMap::new();
    for f in files {
        let s = f.shard.clone().unwrap_or_default();
        if !by_shard.contains_key(&s) {
            order.push(s.clone());
        }
        by_shard.entry(s).or_default().push(task_input(f));
    }
    order
        .into_iter()
        .filter_map(|s| by_shard.remove(&s))
        .collect()
}

fn task_input(f: &FileRec) -> TaskInput {
    TaskInput {
        name: f.name.clone(),
        data: f.data.clone(),
        content: f.content,
        metadata: None,
    }
}

/// The job's parameters in force and how its processing tasks run.
fn processing_work(
    ctx: &Ctx,
    key: &JobKey,
    wf: &WorkflowJob,
    workflow: Workflow,
) -> Option<(JobParams, Processing)> {
    let spec = &wf.processing_specification;
    let (params, tasks, out_batch) = read_job(ctx, key, |j| {
        j.stages.first().map(|s| {
            (
                j.params.clone(),
                s.tasks.len(),
                s.output_batches.first().cloned().unwrap_or_default(),
            )
        })
    })?;
    let processing = Processing {
        workflow,
        csv: matches!(spec.aggregation_format, Some(AggregationFormat::Csv)),
        parameters: spec.workflow_parameters.clone().unwrap_or_default(),
        metadata_mapping: spec
            .images_metadata_inputs_mapping
            .clone()
            .unwrap_or_default(),
        max_fps: spec
            .max_video_fps
            .as_ref()
            .and_then(serde_json::Number::as_f64),
        budget_seconds: params.timeout_seconds / tasks.max(1) as f64,
        max_failure_rate: params.max_image_failure_rate,
        out_batch,
    };
    Some((params, processing))
}

/// Plans the export stage once, from the processing results; returns its
/// output batch.
fn plan_export(ctx: &Ctx, key: &JobKey) -> Option<String> {
    let planned = with_job(ctx, key, |job, _| job.stages.len() >= 2)?;
    if !planned {
        let per_archive = ctx.config.job_speed.results_per_archive.max(1);
        ctx.store
            .write(|db| add_export_stage(ctx, db, key, per_archive));
    }
    read_job(ctx, key, |j| {
        j.stages
            .get(1)
            .and_then(|s| s.output_batches.first().cloned())
    })
}

/// One export task per `per_archive` result files (one, with none).
fn add_export_stage(ctx: &Ctx, db: &mut Db, key: &JobKey, per_archive: usize) {
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
        .map(|b| b.files.iter().map(task_input).collect())
        .unwrap_or_default();
    let out = output_batch(ctx, db, key, OutputBatch::EXPORT);
    let mut tasks: Vec<TaskRec> = results
        .chunks(per_archive)
        .enumerate()
        .map(|(i, c)| new_task(&format!("export-{:04}", i + 1), c.to_vec(), now))
        .collect();
    if tasks.is_empty() {
        tasks.push(new_task("export-0001", Vec::new(), now));
    }
    add_stage(db, key, new_stage(STAGE_EXPORT, vec![out], tasks, now));
}

/// Runs the unfinished tasks of a stage; true when all succeeded (else the
/// job failed, or stopped).
async fn run_stage(
    ctx: &Arc<Ctx>,
    key: &JobKey,
    stage: usize,
    work: Work,
    max_parallel: u32,
) -> bool {
    let Some(Some(pending)) = start_stage(ctx, key, stage) else {
        return false;
    };
    run_tasks(ctx, key, stage, pending, work, max_parallel).await;
    if ctx.closing.is_cancelled() {
        // shutting down: leave the job as it is, it resumes on the next start
        return false;
    }
    match close_stage(ctx, key, stage) {
        Some(Some((failed, _))) if failed.is_empty() => true,
        Some(Some((failed, name))) => {
            let message = format!(
                "stage {name} failed: {} task(s) failed ({}); see the job logs, then restart the job",
                failed.len(),
                failed.join(", ")
            );
            finish(ctx, key, false, &message);
            false
        }
        _ => false,
    }
}

/// Makes `stage` the current one; returns its unfinished tasks.
fn start_stage(ctx: &Ctx, key: &JobKey, stage: usize) -> Option<Option<Vec<usize>>> {
    with_job(ctx, key, |job, now| {
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
    })
}

/// Runs `pending` tasks of `stage` on the worker pool, at most
/// `max_parallel` at a time, and waits for them all.
async fn run_tasks(
    ctx: &Arc<Ctx>,
    key: &JobKey,
    stage: usize,
    pending: Vec<usize>,
    work: Work,
    max_parallel: u32,
) {
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
            let _ = tokio::task::spawn_blocking(move || {
                let t = TaskCtx {
                    ctx: &ctx,
                    key: &key,
                    stage,
                    task,
                };
                run_task(&t, &work);
            })
            .await;
        });
    }
    while set.join_next().await.is_some() {}
}

/// Closes a stage whose tasks all ended: a task that never reached a
/// terminal state (its worker crashed) failed. Returns the failed tasks and
/// the stage's name.
fn close_stage(ctx: &Ctx, key: &JobKey, stage: usize) -> Option<Option<(Vec<String>, String)>> {
    with_job(ctx, key, |job, now| {
        let stage_rec = job.stages.get_mut(stage)?;
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
        let (status, notification): (&str, Value) = if failed.is_empty() {
            (
                "success",
                json!({"message": format!("{n} of {n} tasks succeeded")}),
            )
        } else {
            (
                "error",
                json!({"message": format!("{} of {n} tasks failed", failed.len()), "failedTasks": failed}),
            )
        };
        stage_rec.status_type = status.into();
        stage_rec.notification = notification;
        Some((failed, stage_rec.name.clone()))
    })
}
