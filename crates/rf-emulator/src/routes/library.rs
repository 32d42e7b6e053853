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
//!
//! A RoboQL ingest of images with metadata makes a multipart batch: the
//! images in part [`IMAGES_PART`], each one's metadata as `<name>.json` in
//! part [`METADATA_PART`], for jobs' `imagesMetadataInputsMapping`.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use http::StatusCode;
use rf_types::{AssetLibraryJobRequest, BatchId, JobDefinition, WorkflowJob};
use serde_json::{Map, Value, json};

use super::auth::Authed;
use super::jobs::start_job;
use super::limits::{JOB_DEFINITION_BODY, read_body};
use crate::batches::{
    Intake, check_batch_id, ensure_batch, precheck_intake, put_file, put_part_file,
};
use crate::ctx::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::library::{LibraryImage, SelectionError};
use crate::model::{AsyncTaskRecord, Batch, BlobRef, Content};

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
    let count = gather(&ctx, &auth.ws, &batch, &images, None, Layout::Simple).await?;
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

/// The part of a RoboQL-ingested batch that holds its images, when they
/// carry metadata.
pub(crate) const IMAGES_PART: &str = "images";
/// The part that holds each image's metadata, as `<image name>.json`.
pub(crate) const METADATA_PART: &str = "metadata";

/// How [`gather`] lays out the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// A simple batch of the images.
    Simple,
    /// A multipart batch: the images in part [`IMAGES_PART`], each image's
    /// sidecar metadata as `<name>.json` in part [`METADATA_PART`].
    WithMetadata,
}

impl Layout {
    /// The layout a RoboQL ingest of `images` gets: with metadata when any
    /// image has some.
    fn of(images: &[&LibraryImage]) -> Layout {
        if images.iter().any(|i| i.metadata.is_some()) {
            Layout::WithMetadata
        } else {
            Layout::Simple
        }
    }

    fn intake(self) -> Intake {
        match self {
            Layout::Simple => Intake::SINGLE_IMAGES,
            Layout::WithMetadata => Intake::IMAGES_WITH_METADATA,
        }
    }
}

/// One library image copied into the blob store.
struct Stored {
    name: String,
    image: BlobRef,
    metadata: Option<BlobRef>,
}

/// Copies `images` into staging batch `batch` (created if missing, laid
/// out as `layout` says); returns how many images it holds.
async fn gather(
    ctx: &Ctx,
    ws: &str,
    batch: &str,
    images: &[&LibraryImage],
    display_name: Option<&str>,
    layout: Layout,
) -> ApiResult<usize> {
    check_batch_id(batch)?;
    precheck_intake(ctx, ws, batch, layout.intake())?;
    let mut stored = Vec::with_capacity(images.len());
    for image in images {
        stored.push(store_image(ctx, image, layout).await?);
    }
    let count = stored.len();
    ctx.store.write(|db| {
        let b = ensure_batch(ctx, db, ws, batch, layout.intake(), display_name)?;
        for s in stored {
            put_stored(b, s, layout);
        }
        Ok::<_, ApiError>(())
    })?;
    Ok(count)
}

/// Copies one library image (and, with metadata, its metadata as JSON)
/// into the blob store.
async fn store_image(ctx: &Ctx, image: &LibraryImage, layout: Layout) -> ApiResult<Stored> {
    let tmp = ctx.store.tmp_path();
    let copied = tokio::fs::copy(&image.path, &tmp).await;
    let len = copied
        .map_err(|e| ApiError::internal(format!("cannot read library image {}: {e}", image.id)))?;
    let stored_image = commit(ctx, &tmp, len)?;
    let metadata = match (layout, &image.metadata) {
        (Layout::WithMetadata, Some(m)) => Some(store_metadata(ctx, m).await?),
        _ => None,
    };
    Ok(Stored {
        name: image.id.replace('/', "__"),
        image: stored_image,
        metadata,
    })
}

/// Writes one image's metadata object as a JSON blob.
async fn store_metadata(ctx: &Ctx, metadata: &Map<String, Value>) -> ApiResult<BlobRef> {
    let body = serde_json::to_vec(metadata)
        .map_err(|e| ApiError::internal(format!("cannot encode metadata: {e}")))?;
    let tmp = ctx.store.tmp_path();
    tokio::fs::write(&tmp, &body)
        .await
        .map_err(|e| ApiError::internal(format!("cannot store metadata: {e}")))?;
    commit(ctx, &tmp, body.len() as u64)
}

/// Moves the temp file `tmp` of `len` bytes into the blob store.
fn commit(ctx: &Ctx, tmp: &std::path::Path, len: u64) -> ApiResult<BlobRef> {
    let blob = format!("{}.img", uuid::Uuid::new_v4().simple());
    ctx.store
        .commit_blob(tmp, &blob)
        .map_err(|e| ApiError::internal(format!("cannot store image: {e}")))?;
    Ok(BlobRef {
        blob,
        offset: 0,
        len,
    })
}

/// Adds one stored image (and its metadata) to the batch.
fn put_stored(b: &mut Batch, s: Stored, layout: Layout) {
    if layout == Layout::Simple {
        put_file(b, s.name, s.image, Content::Images);
        return;
    }
    let metadata_name = format!("{}.json", s.name);
    put_part_file(b, IMAGES_PART, s.name, s.image, Content::Images);
    if let Some(m) = s.metadata {
        put_part_file(b, METADATA_PART, metadata_name, m, Content::Metadata);
    }
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
    let layout = Layout::of(&images);
    let count = gather(&ctx, &auth.ws, &batch, &images, display, layout).await?;
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
