//! Batch Processing handlers: create, get and list jobs, stages, tasks,
//! logs, abort and restart.

use std::str::FromStr;
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use rf_types::{
    GetJobResponse, JobDefinition, JobId, JobLog, JobLogsResponse, JobMetadata, JobStage,
    JobStatus, ListJobsResponse, ListStagesResponse, ListTasksResponse, LogSeverity, Notification,
    ParametersOverride, STAGE_EXPORT, STAGE_PROCESSING, StageId, StatusOk, TaskId, TaskStatus,
};
use serde_json::{Value, json};

use super::auth::Authed;
use super::limits::{JOB_DEFINITION_BODY, RESTART_BODY, read_body};
use crate::batches::check_batch_id;
use crate::ctx::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::jobs::{self, log::Entry, log::push_log};
use crate::model::{Job, JobParams, JobPhase};
use crate::stats::Counters;
use crate::webhook::job_notifications_url;

fn notification(v: &Value) -> Notification {
    match v {
        Value::Object(m) => Notification::Object(m.clone()),
        Value::String(s) => Notification::Text(s.clone()),
        Value::Null => Notification::Text(String::new()),
        other => Notification::Text(other.to_string()),
    }
}

fn planned_stages(j: &Job) -> Vec<String> {
    if j.definition
        .get("type")
        .and_then(Value::as_str)
        .is_some_and(|t| t.eq_ignore_ascii_case("trt-compilation-v1") || t == "TRT_COMPILATION_V1")
    {
        vec!["compilation".to_string()]
    } else {
        vec![STAGE_PROCESSING.to_string(), STAGE_EXPORT.to_string()]
    }
}

fn job_metadata(j: &Job) -> JobMetadata {
    JobMetadata {
        job_id: j.id.clone(),
        name: j.name.clone(),
        job_definition: j.definition.clone(),
        current_stage: j.current_stage.clone(),
        planned_stages: Some(planned_stages(j)),
        error: matches!(j.phase, JobPhase::Failed | JobPhase::Aborted),
        is_terminal: j.phase.is_terminal(),
        last_notification: Some(notification(&j.last_notification)),
        created_at: j.created,
        last_update: j.last_update,
        restart_parameters_override: j.restart_overrides.clone(),
    }
}

fn progress(j: &Job) -> f64 {
    if j.phase == JobPhase::Succeeded {
        return 1.0;
    }
    let planned = planned_stages(j).len().max(1) as f64;
    let done: f64 = j
        .stages
        .iter()
        .map(|s| {
            let n = s.tasks.len().max(1) as f64;
            s.tasks
                .iter()
                .map(|t| {
                    if t.status_type.contains("success") {
                        1.0
                    } else {
                        t.progress.unwrap_or(0.0)
                    }
                })
                .sum::<f64>()
                / n
        })
        .sum();
    (done / planned).clamp(0.0, 1.0)
}

fn job_status(j: &Job) -> JobStatus {
    match j.phase {
        JobPhase::Pending => JobStatus::Pending,
        JobPhase::Running => JobStatus::Processing,
        JobPhase::Succeeded => JobStatus::Completed,
        JobPhase::Failed | JobPhase::Aborted => JobStatus::Failed,
    }
}

fn check_job_id(id: &str) -> ApiResult<()> {
    JobId::new(id)
        .map(|_| ())
        .map_err(|e| ApiError::bad_request(e.to_string()))
}

fn job_not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("job {id:?} not found"))
}

fn with_job<R>(
    ctx: &Ctx,
    ws: &str,
    id: &str,
    f: impl FnOnce(&Job) -> ApiResult<R>,
) -> ApiResult<R> {
    check_job_id(id)?;
    ctx.store.read(|db| match db.job(ws, id) {
        Some(j) => f(j),
        None => Err(job_not_found(id)),
    })
}

/// `POST .../jobs/{jobId}` — create (idempotent for the same body).
pub(crate) async fn create_job(
    State(ctx): State<Arc<Ctx>>,
    auth: Authed,
    Path((_, job_id)): Path<(String, String)>,
    body: Body,
) -> ApiResult<Json<StatusOk>> {
    check_job_id(&job_id)?;
    let body = read_body(body, JOB_DEFINITION_BODY, "job definition").await?;
    let (raw, def) = parse_definition(&body)?;
    check_job_input(&ctx, &auth.ws, &def)?;
    let name = auth.params.get("name").unwrap_or(&job_id).to_string();
    start_job(&ctx, &auth.ws, &job_id, name, &def, raw)?;
    Ok(Json(StatusOk::ok()))
}

/// Adds job `job_id` running `def` (`raw` as sent) and starts it; the same
/// job again starts nothing, another definition under its ID is a conflict.
pub(super) fn start_job(
    ctx: &Arc<Ctx>,
    ws: &str,
    job_id: &str,
    name: String,
    def: &JobDefinition,
    raw: Value,
) -> ApiResult<()> {
    let job = NewJob {
        name,
        id: job_id.to_owned(),
        kind: def.kind_str(),
        params: job_params(def),
        definition: raw,
    };
    if insert_job(ctx, ws, job)? {
        Counters::bump(&ctx.counters.jobs_created);
        jobs::spawn(ctx, ws, job_id);
    } else {
        Counters::bump(&ctx.counters.job_starts_repeated);
    }
    Ok(())
}

/// The body of a job creation: as sent (stored and compared on a repeat)
/// and parsed.
fn parse_definition(body: &[u8]) -> ApiResult<(Value, JobDefinition)> {
    let raw: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?;
    let def: JobDefinition = serde_path_to_error::deserialize(raw.clone()).map_err(|e| {
        let path = e.path().to_string();
        ApiError::bad_request(format!(
            "invalid job definition at {path}: {}",
            e.into_inner()
        ))
    })?;
    def.validate()
        .map_err(|e| ApiError::bad_request(format!("invalid job definition: {e}")))?;
    if let JobDefinition::TrtCompilationV1(trt) = &def {
        let distinct = jobs::compilation_devices(trt).len();
        if distinct > jobs::MAX_COMPILATION_DEVICES {
            return Err(ApiError::bad_request(format!(
                "invalid job definition at compilationDevices: {distinct} distinct devices; at most {} are allowed",
                jobs::MAX_COMPILATION_DEVICES
            )));
        }
    }
    Ok((raw, def))
}

/// A workflow job's input batch (and part, and metadata part) must exist;
/// a metadata mapping needs a metadata part.
fn check_job_input(ctx: &Ctx, ws: &str, def: &JobDefinition) -> ApiResult<()> {
    let Some(wf) = def.workflow() else {
        return Ok(());
    };
    let now = ctx.now();
    let batch = wf.job_input.batch_id.as_str();
    check_batch_id(batch)?;
    let metadata = wf.job_input.images_metadata_part.as_ref();
    let mapping = &wf.processing_specification.images_metadata_inputs_mapping;
    if mapping.as_ref().is_some_and(|m| !m.is_empty()) && metadata.is_none() {
        return Err(ApiError::bad_request(
            "processingSpecification.imagesMetadataInputsMapping needs jobInput.imagesMetadataPart: the part of the input batch that holds the images' metadata",
        ));
    }
    let parts = [wf.job_input.part_name.as_ref(), metadata];
    ctx.store.read(|db| match db.batch(ws, batch, now) {
        None => Err(ApiError::not_found(format!(
            "input batch {batch:?} not found (never created, or expired)"
        ))),
        Some(b) => match parts
            .into_iter()
            .flatten()
            .find(|p| !b.parts.iter().any(|x| x.name == p.as_str()))
        {
            Some(p) => Err(ApiError::bad_request(format!(
                "input batch {batch:?} has no part {:?}",
                p.as_str()
            ))),
            None => Ok(()),
        },
    })
}

/// The parameters a new job runs with.
fn job_params(def: &JobDefinition) -> JobParams {
    match def {
        JobDefinition::SimpleImageProcessingV1(w) | JobDefinition::SimpleVideoProcessingV1(w) => {
            JobParams {
                timeout_seconds: w
                    .processing_timeout_seconds
                    .map(|s| s as f64)
                    .unwrap_or(3600.0),
                max_parallel_tasks: w.max_parallel_tasks.unwrap_or(u32::MAX),
                max_image_failure_rate: w.max_image_failure_rate,
            }
        }
        JobDefinition::TrtCompilationV1(_) => JobParams {
            timeout_seconds: 3600.0,
            max_parallel_tasks: u32::MAX,
            max_image_failure_rate: None,
        },
    }
}

/// A job to create.
#[derive(Debug)]
struct NewJob {
    id: String,
    name: String,
    definition: Value,
    /// The definition's type, for the log.
    kind: &'static str,
    params: JobParams,
}

/// Adds the job; false when the same job (same definition) exists already,
/// a conflict when one with another definition does.
fn insert_job(ctx: &Ctx, ws: &str, new: NewJob) -> ApiResult<bool> {
    let now = ctx.now();
    ctx.store.write(|db| {
        if let Some(existing) = db.job(ws, &new.id) {
            return if existing.definition == new.definition {
                Ok(false)
            } else {
                Err(ApiError::conflict(format!(
                    "job {:?} already exists with a different definition; pick a new job id",
                    new.id
                )))
            };
        }
        let seq = db.next_seq();
        let mut job = Job {
            id: new.id.clone(),
            name: new.name,
            definition: new.definition,
            created: now,
            last_update: now,
            seq,
            phase: JobPhase::Pending,
            current_stage: None,
            last_notification: json!({"message": "job accepted"}),
            restart_overrides: Vec::new(),
            params: new.params,
            generation: 0,
            stages: Vec::new(),
            logs: Vec::new(),
        };
        let entry = Entry::new("info", "job-created", json!({"type": new.kind}));
        push_log(&mut job, None, None, entry);
        db.insert_job(ws, job);
        Ok(true)
    })
}

/// `GET .../jobs/{jobId}`.
pub(crate) async fn get_job(
    State(ctx): State<Arc<Ctx>>,
    auth: Authed,
    Path((_, job_id)): Path<(String, String)>,
) -> ApiResult<Json<GetJobResponse>> {
    with_job(&ctx, &auth.ws, &job_id, |j| {
        Ok(Json(GetJobResponse {
            job: job_metadata(j),
            status: Some("ok".into()),
            job_status: Some(job_status(j)),
            progress: Some(progress(j)),
        }))
    })
}

/// `GET .../jobs` (paginated, creation order).
pub(crate) async fn list_jobs(
    State(ctx): State<Arc<Ctx>>,
    auth: Authed,
) -> ApiResult<Json<ListJobsResponse>> {
    let page = auth.params.page()?;
    let search = auth.params.get("search").map(str::to_lowercase);
    let (jobs, next_page_token) = ctx.store.read(|db| {
        let mut all: Vec<&Job> = db
            .ws(&auth.ws)
            .map(|w| w.jobs.values().collect())
            .unwrap_or_default();
        if let Some(s) = &search {
            all.retain(|j| job_matches(j, s));
        }
        all.sort_by_key(|j| j.seq);
        page.take(all.len(), all.into_iter().map(job_metadata))
    });
    Ok(Json(ListJobsResponse {
        jobs,
        next_page_token,
    }))
}

/// Whether `search` (lower case) is in the job's ID, name, workflow or
/// status text (its phase, current stage and last notification), as the
/// service searches "names, Workflows, and status text".
fn job_matches(j: &Job, search: &str) -> bool {
    let workflow = j.definition["processingSpecification"]["workflowId"]
        .as_str()
        .unwrap_or_default();
    [
        j.id.as_str(),
        j.name.as_str(),
        workflow,
        j.phase.as_str(),
        j.current_stage.as_deref().unwrap_or_default(),
        &j.last_notification.to_string(),
    ]
    .iter()
    .any(|text| text.to_lowercase().contains(search))
}

/// `GET .../jobs/{jobId}/stages`.
pub(crate) async fn stages(
    State(ctx): State<Arc<Ctx>>,
    auth: Authed,
    Path((_, job_id)): Path<(String, String)>,
) -> ApiResult<Json<ListStagesResponse>> {
    with_job(&ctx, &auth.ws, &job_id, |j| {
        Ok(Json(ListStagesResponse {
            stages: j
                .stages
                .iter()
                .map(|s| JobStage {
                    processing_stage_id: StageId::from(s.id.as_str()),
                    processing_stage_name: s.name.clone(),
                    tasks_number: s.tasks.len().max(1) as u64,
                    output_batches: s.output_batches.clone(),
                    start_timestamp: s.start,
                    notification: notification(&s.notification),
                    status_type: s.status_type.clone(),
                    last_event_timestamp: s.last_event,
                })
                .collect(),
        }))
    })
}

/// `GET .../jobs/{jobId}/stages/{stageId}/tasks` (paginated).
pub(crate) async fn tasks(
    State(ctx): State<Arc<Ctx>>,
    auth: Authed,
    Path((_, job_id, stage_id)): Path<(String, String, String)>,
) -> ApiResult<Json<ListTasksResponse>> {
    let page = auth.params.page()?;
    with_job(&ctx, &auth.ws, &job_id, |j| {
        let stage = j.stages.iter().find(|s| s.id == stage_id).ok_or_else(|| {
            ApiError::not_found(format!(
                "job {job_id:?} has no stage {stage_id:?}; list its stages first"
            ))
        })?;
        let (tasks, next_page_token) = page.take(
            stage.tasks.len(),
            stage.tasks.iter().map(|t| TaskStatus {
                task_id: TaskId::from(t.id.as_str()),
                notification: notification(&t.notification),
                status_type: t.status_type.clone(),
                progress: t.progress,
                event_timestamp: t.event_ts,
            }),
        );
        Ok(Json(ListTasksResponse {
            tasks,
            next_page_token,
        }))
    })
}

/// `GET .../jobs/{jobId}/logs[?severity=]` (paginated).
pub(crate) async fn logs(
    State(ctx): State<Arc<Ctx>>,
    auth: Authed,
    Path((_, job_id)): Path<(String, String)>,
) -> ApiResult<Json<JobLogsResponse>> {
    let page = auth.params.page()?;
    let severity = match auth.params.get("severity") {
        None => None,
        Some(s) => Some(LogSeverity::from_str(s).map_err(|_| {
            ApiError::bad_request(format!("severity {s:?} is not one of info, warning, error"))
        })?),
    };
    with_job(&ctx, &auth.ws, &job_id, |j| {
        let selected: Vec<_> = j
            .logs
            .iter()
            .filter(|l| severity.is_none_or(|s| l.severity == s.as_str()))
            .collect();
        let (logs, next_page_token) = page.take(
            selected.len(),
            selected.into_iter().map(|l| JobLog {
                created_at: l.created,
                processing_stage_id: l.stage.as_deref().map(StageId::from),
                task_id: l.task.as_deref().map(TaskId::from),
                severity: LogSeverity::from_str(&l.severity).unwrap_or(LogSeverity::Info),
                reporting_module: l.module.clone(),
                log_type: l.log_type.clone(),
                payload: l.payload.clone(),
            }),
        );
        Ok(Json(JobLogsResponse {
            logs,
            next_page_token,
        }))
    })
}

/// `POST .../jobs/{jobId}/abort`.
pub(crate) async fn abort(
    State(ctx): State<Arc<Ctx>>,
    auth: Authed,
    Path((_, job_id)): Path<(String, String)>,
) -> ApiResult<Json<StatusOk>> {
    check_job_id(&job_id)?;
    let now = ctx.now();
    let url = ctx.store.write(|db| {
        let job = db
            .job_mut(&auth.ws, &job_id)
            .ok_or_else(|| job_not_found(&job_id))?;
        if job.phase.is_terminal() {
            return Ok(None);
        }
        job.generation += 1;
        job.phase = JobPhase::Aborted;
        job.last_update = now;
        job.last_notification = json!({"message": "job aborted by user"});
        for stage in &mut job.stages {
            let mut touched = false;
            for t in &mut stage.tasks {
                if !t.status_type.contains("success") {
                    t.status_type = "error".into();
                    t.notification = json!({"message": "aborted"});
                    t.event_ts = now;
                    touched = true;
                }
            }
            if touched {
                stage.status_type = "error".into();
                stage.notification = json!({"message": "aborted by user"});
                stage.last_event = now;
            }
        }
        let stage = job.current_stage.clone();
        let message = json!({"message": "job aborted by user"});
        push_log(
            job,
            stage.as_deref(),
            None,
            Entry::new("warning", "job-aborted", message),
        );
        Ok::<_, ApiError>(Some(job_notifications_url(&job.definition)))
    })?;
    if let Some(Some(url)) = url {
        ctx.webhooks.send_job(&url, &auth.ws, &job_id, false);
    }
    Ok(Json(StatusOk::ok()))
}

/// `POST .../jobs/{jobId}/restart` — optional `parameters-override-v1` body.
pub(crate) async fn restart(
    State(ctx): State<Arc<Ctx>>,
    auth: Authed,
    Path((_, job_id)): Path<(String, String)>,
    body: Body,
) -> ApiResult<Json<StatusOk>> {
    check_job_id(&job_id)?;
    let body = read_body(body, RESTART_BODY, "restart").await?;
    let (raw, overrides) = parse_override(&body)?;
    let now = ctx.now();
    ctx.store.write(|db| {
        let job = db
            .job_mut(&auth.ws, &job_id)
            .ok_or_else(|| job_not_found(&job_id))?;
        check_restartable(job)?;
        if let Some(o) = &overrides {
            apply_override(&mut job.params, o);
        }
        job.restart_overrides.push(raw.clone());
        job.generation += 1;
        job.phase = JobPhase::Pending;
        job.last_update = now;
        job.last_notification = json!({"message": "job restarted"});
        reset_unfinished_tasks(job, now);
        let entry = Entry::new("info", "job-restarted", json!({"override": raw}));
        push_log(job, None, None, entry);
        Ok::<_, ApiError>(())
    })?;
    jobs::spawn(&ctx, &auth.ws, &job_id);
    Ok(Json(StatusOk::ok()))
}

/// A restart body: as sent (kept in the job's restart history) and parsed;
/// an empty body or `{}` overrides nothing.
fn parse_override(body: &[u8]) -> ApiResult<(Value, Option<ParametersOverride>)> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok((json!({}), None));
    }
    let raw: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?;
    // `{}` (what `roboflow batch restart` sends) overrides nothing too.
    if raw.as_object().is_some_and(serde_json::Map::is_empty) {
        return Ok((raw, None));
    }
    let o: ParametersOverride = serde_path_to_error::deserialize(raw.clone()).map_err(|e| {
        let path = e.path().to_string();
        ApiError::bad_request(format!(
            "invalid restart body at {path}: {}",
            e.into_inner()
        ))
    })?;
    o.validate()
        .map_err(|e| ApiError::bad_request(format!("invalid restart body: {e}")))?;
    Ok((raw, Some(o)))
}

/// Only a failed or aborted job can be restarted.
fn check_restartable(job: &Job) -> ApiResult<()> {
    match job.phase {
        JobPhase::Pending | JobPhase::Running => Err(ApiError::conflict(format!(
            "job {:?} is still running; abort it before restarting",
            job.id
        ))),
        JobPhase::Succeeded => Err(ApiError::conflict(format!(
            "job {:?} already succeeded; there is nothing to restart",
            job.id
        ))),
        JobPhase::Failed | JobPhase::Aborted => Ok(()),
    }
}

fn apply_override(params: &mut JobParams, o: &ParametersOverride) {
    if let Some(p) = o.max_parallel_tasks {
        params.max_parallel_tasks = p;
    }
    if let Some(t) = o.processing_timeout_seconds {
        params.timeout_seconds = t;
    }
    if let Some(r) = o.max_image_failure_rate {
        params.max_image_failure_rate = Some(r);
    }
}

/// Tasks that did not succeed wait to run again.
fn reset_unfinished_tasks(job: &mut Job, now: DateTime<Utc>) {
    for stage in &mut job.stages {
        let mut reset = false;
        for t in &mut stage.tasks {
            if !t.status_type.contains("success") {
                t.status_type = "info".into();
                t.progress = None;
                t.notification = json!({"message": "waiting (restarted)"});
                t.event_ts = now;
                reset = true;
            }
        }
        if reset {
            stage.status_type = "info".into();
            stage.last_event = now;
        }
    }
}
