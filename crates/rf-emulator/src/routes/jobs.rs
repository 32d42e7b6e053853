//! Batch Processing handlers: create, get and list jobs, stages, tasks,
//! logs, abort and restart.

use std::str::FromStr;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use bytes::Bytes;
use rf_types::{
    GetJobResponse, JobDefinition, JobId, JobLog, JobLogsResponse, JobMetadata, JobStage,
    JobStatus, ListJobsResponse, ListStagesResponse, ListTasksResponse, LogSeverity, Notification,
    ParametersOverride, STAGE_EXPORT, STAGE_PROCESSING, StageId, StatusOk, TaskId, TaskStatus,
};
use serde_json::{Value, json};

use crate::app::{Authed, Ctx};
use crate::error::{ApiError, ApiResult};
use crate::model::{Job, JobParams, JobPhase};
use crate::routes::staging::check_batch_id;
use crate::runner::{self, push_log, send_job_webhook};
use crate::stats::Counters;

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
    body: Bytes,
) -> ApiResult<Json<StatusOk>> {
    check_job_id(&job_id)?;
    let raw: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?;
    let de = raw.clone();
    let def: JobDefinition = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        ApiError::bad_request(format!(
            "invalid job definition at {path}: {}",
            e.into_inner()
        ))
    })?;
    def.validate()
        .map_err(|e| ApiError::bad_request(format!("invalid job definition: {e}")))?;
    let now = ctx.now();
    if let Some(wf) = def.workflow() {
        let batch = wf.job_input.batch_id.as_str();
        check_batch_id(batch)?;
        let part = wf
            .job_input
            .part_name
            .as_ref()
            .map(|p| p.as_str().to_string());
        ctx.store.read(|db| match db.batch(&auth.ws, batch, now) {
            None => Err(ApiError::not_found(format!(
                "input batch {batch:?} not found (never created, or expired)"
            ))),
            Some(b) => match &part {
                Some(p) if !b.parts.iter().any(|x| &x.name == p) => Err(ApiError::bad_request(
                    format!("input batch {batch:?} has no part {p:?}"),
                )),
                _ => Ok(()),
            },
        })?;
    }
    let params = match &def {
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
    };
    let name = auth.params.get("name").unwrap_or(&job_id).to_string();
    let created = ctx.store.write(|db| {
        if let Some(existing) = db.job(&auth.ws, &job_id) {
            return if existing.definition == raw {
                Ok(false)
            } else {
                Err(ApiError::conflict(format!(
                    "job {job_id:?} already exists with a different definition; pick a new job id"
                )))
            };
        }
        let seq = db.next_seq();
        let mut job = Job {
            id: job_id.clone(),
            name,
            definition: raw.clone(),
            created: now,
            last_update: now,
            seq,
            phase: JobPhase::Pending,
            current_stage: None,
            last_notification: json!({"message": "job accepted"}),
            restart_overrides: Vec::new(),
            params,
            generation: 0,
            stages: Vec::new(),
            logs: Vec::new(),
        };
        push_log(
            &mut job,
            None,
            None,
            "info",
            "job-created",
            json!({"type": def.kind_str()}),
        );
        db.ws_mut(&auth.ws).jobs.insert(job_id.clone(), job);
        Ok(true)
    })?;
    if created {
        Counters::bump(&ctx.counters.jobs_created);
        runner::spawn(&ctx, &auth.ws, &job_id);
    } else {
        Counters::bump(&ctx.counters.job_starts_repeated);
    }
    Ok(Json(StatusOk::ok()))
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
    let (jobs, next_page_token) = ctx.store.read(|db| {
        let mut all: Vec<&Job> = db
            .ws(&auth.ws)
            .map(|w| w.jobs.values().collect())
            .unwrap_or_default();
        all.sort_by_key(|j| j.seq);
        page.take(all.len(), all.into_iter().map(job_metadata))
    });
    Ok(Json(ListJobsResponse {
        jobs,
        next_page_token,
    }))
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
        push_log(
            job,
            stage.as_deref(),
            None,
            "warning",
            "job-aborted",
            json!({"message": "job aborted by user"}),
        );
        Ok::<_, ApiError>(Some(runner::notifications_url(&job.definition)))
    })?;
    if let Some(Some(url)) = url {
        send_job_webhook(&ctx, &auth.ws, &job_id, &url, false);
    }
    Ok(Json(StatusOk::ok()))
}

/// `POST .../jobs/{jobId}/restart` — optional `parameters-override-v1` body.
pub(crate) async fn restart(
    State(ctx): State<Arc<Ctx>>,
    auth: Authed,
    Path((_, job_id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Json<StatusOk>> {
    check_job_id(&job_id)?;
    let (raw, overrides) = if body.iter().all(u8::is_ascii_whitespace) {
        (json!({}), None)
    } else {
        let raw: Value = serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?;
        let o: ParametersOverride = serde_path_to_error::deserialize(raw.clone()).map_err(|e| {
            let path = e.path().to_string();
            ApiError::bad_request(format!(
                "invalid restart body at {path}: {}",
                e.into_inner()
            ))
        })?;
        o.validate()
            .map_err(|e| ApiError::bad_request(format!("invalid restart body: {e}")))?;
        (raw, Some(o))
    };
    let now = ctx.now();
    ctx.store.write(|db| {
        let job = db
            .job_mut(&auth.ws, &job_id)
            .ok_or_else(|| job_not_found(&job_id))?;
        match job.phase {
            JobPhase::Pending | JobPhase::Running => {
                return Err(ApiError::conflict(format!(
                    "job {job_id:?} is still running; abort it before restarting"
                )));
            }
            JobPhase::Succeeded => {
                return Err(ApiError::conflict(format!(
                    "job {job_id:?} already succeeded; there is nothing to restart"
                )));
            }
            JobPhase::Failed | JobPhase::Aborted => {}
        }
        if let Some(o) = &overrides {
            if let Some(p) = o.max_parallel_tasks {
                job.params.max_parallel_tasks = p;
            }
            if let Some(t) = o.processing_timeout_seconds {
                job.params.timeout_seconds = t;
            }
            if let Some(r) = o.max_image_failure_rate {
                job.params.max_image_failure_rate = Some(r);
            }
        }
        job.restart_overrides.push(raw.clone());
        job.generation += 1;
        job.phase = JobPhase::Pending;
        job.last_update = now;
        job.last_notification = json!({"message": "job restarted"});
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
        push_log(
            job,
            None,
            None,
            "info",
            "job-restarted",
            json!({"override": raw}),
        );
        Ok(())
    })?;
    runner::spawn(&ctx, &auth.ws, &job_id);
    Ok(Json(StatusOk::ok()))
}
