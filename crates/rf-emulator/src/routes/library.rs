//! The Asset Library routes: `POST BP/{ws}/asset-library/jobs` (what
//! `roboflow batch create` sends), `GET /{ws}/asynctasks/{task}` and
//! `POST DS/{ws}/batches/{batch}/roboql-ingest`, served from the library
//! of `--library DIR` ([`crate::library`]).
//!
//! A library job gathers the selected images into a new staging batch
//! (`<jobId>-library`, each image named by its ID with `/` as `__`) and
//! starts a workflow job over it before answering `202`; its task is then
//! already `completed` with `{jobId, batchId, images}`. The same
//! idempotency key with the same body answers the same job and task; with
//! another body, `409`.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use http::StatusCode;
use rf_types::{AssetLibraryJobRequest, BatchId, JobDefinition, WorkflowJob};
use serde_json::{Value, json};

use super::auth::Authed;
use super::jobs::start_job;
use super::limits::{JOB_DEFINITION_BODY, read_body};
use crate::batches::{Intake, check_batch_id, ensure_batch, precheck_intake, put_file};
use crate::ctx::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::library::{LibraryImage, SelectionError};
use crate::model::{AsyncTaskRecord, BlobRef, Content};

/// `POST BP/{ws}/asset-library/jobs`.
pub(crate) async fn create_job(
    State(ctx): State<Arc<Ctx>>,
    auth: Authed,
    body: Body,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let body = read_body(body, JOB_DEFINITION_BODY, "asset library job").await?;
    let (raw, request) = parse_request(&body)?;
    if let Some(answer) = repeated(&ctx, &auth.ws, &request, &raw)? {
        return Ok((StatusCode::ACCEPTED, Json(answer)));
    }
    let images = select(&ctx, &request)?;
    let job_id = format!("al-{}", short_id());
    let batch = format!("{job_id}-library");
    let count = gather(&ctx, &auth.ws, &batch, &images, None).await?;
    let def = workflow_job(&auth.ws, &batch, &request)?;
    let name = request
        .display_name
        .clone()
        .unwrap_or_else(|| job_id.clone());
    let raw_def = serde_json::to_value(&def).map_err(|e| ApiError::internal(e.to_string()))?;
    start_job(&ctx, &auth.ws, &job_id, name.clone(), &def, raw_def)?;
    let task_id = format!("task-{}", short_id());
    let created = json!({
        "status": "completed", "taskId": task_id, "jobId": job_id,
        "batchId": batch, "displayName": name,
    });
    let task = AsyncTaskRecord {
        task_id,
        status: "completed".into(),
        result: Some(json!({"jobId": job_id, "batchId": batch, "images": count})),
        error: None,
        idempotency_key: Some(request.idempotency_key.clone()),
        request: raw,
        created: created.clone(),
    };
    ctx.store.write(|db| db.insert_task(&auth.ws, task));
    Ok((StatusCode::ACCEPTED, Json(created)))
}

/// The body as sent (compared on a repeat) and parsed, its rules checked.
fn parse_request(body: &[u8]) -> ApiResult<(Value, AssetLibraryJobRequest)> {
    let raw: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?;
    let request: AssetLibraryJobRequest =
        serde_path_to_error::deserialize(raw.clone()).map_err(|e| {
            ApiError::bad_request(format!(
                "invalid asset library job at {}: {}",
                e.path(),
                e.inner()
            ))
        })?;
    request
        .validate()
        .map_err(|e| ApiError::bad_request(format!("invalid asset library job: {e}")))?;
    if request.image_ids.is_some() == request.query.is_some() {
        return Err(ApiError::bad_request(
            "invalid asset library job: give exactly one of imageIds and query",
        ));
    }
    Ok((raw, request))
}

/// The answer of an earlier create with the same idempotency key and body;
/// a conflict when the body differs.
fn repeated(
    ctx: &Ctx,
    ws: &str,
    request: &AssetLibraryJobRequest,
    raw: &Value,
) -> ApiResult<Option<Value>> {
    ctx.store
        .read(|db| match db.task_by_key(ws, &request.idempotency_key) {
            None => Ok(None),
            Some(t) if &t.request == raw => Ok(Some(t.created.clone())),
            Some(_) => Err(ApiError::conflict(format!(
                "idempotency key {:?} was used for another request; use a new key for a new job",
                request.idempotency_key
            ))),
        })
}

/// The library images the request selects.
fn select<'a>(ctx: &'a Ctx, request: &AssetLibraryJobRequest) -> ApiResult<Vec<&'a LibraryImage>> {
    let selected = match (&request.image_ids, &request.query) {
        (Some(ids), _) => ctx.library.by_ids(ids),
        (None, Some(q)) => ctx.library.by_query(q),
        (None, None) => Err(SelectionError::Empty),
    };
    selected.map_err(|e| ApiError::bad_request(e.to_string()))
}

/// Copies `images` into staging batch `batch` (a simple batch of images,
/// created if missing); returns how many it holds.
async fn gather(
    ctx: &Ctx,
    ws: &str,
    batch: &str,
    images: &[&LibraryImage],
    display_name: Option<&str>,
) -> ApiResult<usize> {
    check_batch_id(batch)?;
    precheck_intake(ctx, ws, batch, Intake::SINGLE_IMAGES)?;
    let mut stored = Vec::with_capacity(images.len());
    for image in images {
        let tmp = ctx.store.tmp_path();
        let blob = format!("{}.img", uuid::Uuid::new_v4().simple());
        let copied = tokio::fs::copy(&image.path, &tmp).await;
        let len = copied.map_err(|e| {
            ApiError::internal(format!("cannot read library image {}: {e}", image.id))
        })?;
        ctx.store
            .commit_blob(&tmp, &blob)
            .map_err(|e| ApiError::internal(format!("cannot store image: {e}")))?;
        stored.push((
            image.id.replace('/', "__"),
            BlobRef {
                blob,
                offset: 0,
                len,
            },
        ));
    }
    let count = stored.len();
    ctx.store.write(|db| {
        let b = ensure_batch(ctx, db, ws, batch, Intake::SINGLE_IMAGES, display_name)?;
        for (name, data) in stored {
            put_file(b, name, data, Content::Images);
        }
        Ok::<_, ApiError>(())
    })?;
    Ok(count)
}

/// The image job over `batch` the request asks for.
fn workflow_job(
    ws: &str,
    batch: &str,
    request: &AssetLibraryJobRequest,
) -> ApiResult<JobDefinition> {
    let batch = BatchId::new(batch).map_err(|e| ApiError::internal(e.to_string()))?;
    WorkflowJob::image(batch, ws, request.workflow_id.as_str())
        .machine_type(request.machine_type.clone())
        .build()
        .map_err(|e| ApiError::bad_request(format!("invalid asset library job: {e}")))
}

/// `GET /{ws}/asynctasks/{task}`.
pub(crate) async fn get_task(
    State(ctx): State<Arc<Ctx>>,
    auth: Authed,
    Path((_, task_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let task = ctx.store.read(|db| db.task(&auth.ws, &task_id).cloned());
    let task = task.ok_or_else(|| ApiError::not_found(format!("task {task_id:?} not found")))?;
    let mut answer = json!({"taskId": task.task_id, "status": task.status});
    if let Some(r) = task.result {
        answer["result"] = r;
    }
    if let Some(e) = task.error {
        answer["error"] = json!(e);
    }
    Ok(Json(answer))
}

/// The body of a RoboQL ingest.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct RoboqlIngest {
    query: String,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    ingest_id: Option<String>,
}

/// `POST DS/{ws}/batches/{batch}/roboql-ingest`: fills `batch` with the
/// library images the query selects (before answering `202`).
pub(crate) async fn roboql_ingest(
    State(ctx): State<Arc<Ctx>>,
    auth: Authed,
    Path((_, batch)): Path<(String, String)>,
    body: Body,
) -> ApiResult<(StatusCode, Json<Value>)> {
    check_batch_id(&batch)?;
    let body = read_body(body, JOB_DEFINITION_BODY, "roboql ingest").await?;
    let request: RoboqlIngest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid roboql ingest: {e}")))?;
    if request.query.trim().is_empty() {
        return Err(ApiError::bad_request(
            "invalid roboql ingest: the query is blank",
        ));
    }
    let images = ctx
        .library
        .by_query(&request.query)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let display = request.display_name.as_deref();
    let count = gather(&ctx, &auth.ws, &batch, &images, display).await?;
    let ingest_id = request.ingest_id.unwrap_or_else(short_id);
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"ingestId": ingest_id, "status": "ok", "images": count})),
    ))
}

/// 12 random `[0-9a-f]`.
fn short_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_owned()
}
