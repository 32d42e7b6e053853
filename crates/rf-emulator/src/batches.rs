//! Batch rules shared by the upload handlers and the ingest workers: batch
//! IDs, which way of ingesting a batch takes ([`Intake`]: single uploads and
//! bulk ingest are never mixed in one batch, job output batches take
//! nothing), and adding or replacing files and shard statuses.

use rf_types::BatchId;

use crate::ctx::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::model::{Batch, BatchKind, BlobRef, Content, Db, FileRec, PartRec, ShardRec};

/// A way of putting files into a batch: the batch type it needs, the content
/// it adds, and how an error names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Intake {
    pub(crate) kind: BatchKind,
    pub(crate) content: Content,
    /// For errors: "batch X is a sharded-batch and cannot take <what>".
    pub(crate) what: &'static str,
}

impl Intake {
    /// `POST .../upload/image`.
    pub(crate) const SINGLE_IMAGES: Intake = Intake {
        kind: BatchKind::SimpleBatch,
        content: Content::Images,
        what: "single-image uploads",
    };
    /// `POST .../upload/video` (then the signed PUT).
    pub(crate) const VIDEO_UPLOADS: Intake = Intake {
        kind: BatchKind::SimpleBatch,
        content: Content::Videos,
        what: "video uploads",
    };
    /// `POST .../bulk-upload/image-files` (then the signed shard PUT).
    pub(crate) const SHARDS: Intake = Intake {
        kind: BatchKind::ShardedBatch,
        content: Content::Images,
        what: "bulk shard uploads",
    };
    /// `POST .../bulk-upload/image-references`.
    pub(crate) const IMAGE_REFERENCES: Intake = Intake {
        kind: BatchKind::ShardedBatch,
        content: Content::Images,
        what: "image references",
    };
    /// `POST .../bulk-upload/video-references`.
    pub(crate) const VIDEO_REFERENCES: Intake = Intake {
        kind: BatchKind::SimpleBatch,
        content: Content::Videos,
        what: "video references",
    };
    /// `POST .../roboql-ingest` of images that carry metadata: a multipart
    /// batch with an `images` and a `metadata` part.
    pub(crate) const IMAGES_WITH_METADATA: Intake = Intake {
        kind: BatchKind::MultipartBatch,
        content: Content::Images,
        what: "images with metadata (a RoboQL ingest)",
    };
}

/// Checks a batch ID's syntax.
pub(crate) fn check_batch_id(id: &str) -> ApiResult<()> {
    BatchId::new(id)
        .map(|_| ())
        .map_err(|e| ApiError::bad_request(e.to_string()))
}

fn mixing_error(id: &str, existing: BatchKind, wanted: &str) -> ApiError {
    ApiError::bad_request(format!(
        "batch {id:?} is a {} and cannot take {wanted}: single-image/video uploads and bulk ingestion cannot be mixed in one batch; use a new batch id",
        existing.as_str()
    ))
}

fn output_batch_error(id: &str) -> ApiError {
    ApiError::bad_request(format!(
        "batch {id:?} is a job output batch; nothing can be ingested into it"
    ))
}

/// Finds or creates the user batch `id` for `intake`, refusing a mix of
/// ingest modes and job output batches.
pub(crate) fn ensure_batch<'a>(
    ctx: &Ctx,
    db: &'a mut Db,
    ws: &str,
    id: &str,
    intake: Intake,
    display_name: Option<&str>,
) -> ApiResult<&'a mut Batch> {
    let now = ctx.now();
    let seq = db.next_seq();
    let ttl = ctx.batch_ttl();
    let fresh = match db.ws(ws).and_then(|w| w.batches.get(id)) {
        None => true,
        Some(b) if b.expiry <= now => true,
        Some(b) if b.kind != intake.kind => return Err(mixing_error(id, b.kind, intake.what)),
        Some(_) => false,
    };
    if fresh {
        let batch = Batch::new(id, display_name, intake.kind, intake.content, now, ttl, seq);
        db.insert_batch(ws, batch);
    }
    let batch = db
        .batch_mut(ws, id, now)
        .ok_or_else(|| ApiError::internal("batch vanished"))?;
    if batch.owner_job.is_some() {
        return Err(output_batch_error(id));
    }
    Ok(batch)
}

/// Quick pre-check of the mode before reading a large body.
pub(crate) fn precheck_intake(ctx: &Ctx, ws: &str, id: &str, intake: Intake) -> ApiResult<()> {
    let now = ctx.now();
    ctx.store.read(|db| match db.batch(ws, id, now) {
        Some(b) if b.owner_job.is_some() => Err(output_batch_error(id)),
        Some(b) if b.kind != intake.kind => Err(mixing_error(id, b.kind, intake.what)),
        _ => Ok(()),
    })
}

/// Whether a blob holds exactly one file (single uploads and videos), so it
/// can be deleted with it.
pub(crate) fn owns_blob(blob: &str) -> bool {
    blob.ends_with(".img") || blob.ends_with(".vid")
}

/// Adds or replaces (same name) a file of a simple batch; returns the blob
/// of a replaced file, which the caller deletes.
pub(crate) fn put_file(
    batch: &mut Batch,
    name: String,
    data: BlobRef,
    content: Content,
) -> Option<String> {
    batch.content = if batch.files.is_empty() {
        content
    } else {
        batch.content.merge(content)
    };
    let rec = FileRec {
        name,
        data,
        content,
        part: None,
        shard: None,
        nested: None,
    };
    if let Some(existing) = batch.files.iter_mut().find(|f| f.name == rec.name) {
        let old = std::mem::replace(existing, rec);
        owns_blob(&old.data.blob).then_some(old.data.blob)
    } else {
        batch.files.push(rec);
        None
    }
}

/// Stores `data` as file `name` of part `part` of a multipart batch
/// (adding the part, of `content`, when missing; replacing a file of the
/// same name in that part). Returns the replaced file's own blob, if any.
pub(crate) fn put_part_file(
    batch: &mut Batch,
    part: &str,
    name: String,
    data: BlobRef,
    content: Content,
) -> Option<String> {
    if !batch.parts.iter().any(|p| p.name == part) {
        batch.parts.push(PartRec {
            name: part.to_owned(),
            part_type: BatchKind::SimpleBatch,
            content,
            description: None,
            nested: None,
        });
    }
    let rec = FileRec {
        name,
        data,
        content,
        part: Some(part.to_owned()),
        shard: None,
        nested: None,
    };
    let same = |f: &&mut FileRec| f.name == rec.name && f.part == rec.part;
    if let Some(existing) = batch.files.iter_mut().find(same) {
        let old = std::mem::replace(existing, rec);
        owns_blob(&old.data.blob).then_some(old.data.blob)
    } else {
        batch.files.push(rec);
        None
    }
}

/// Sets the status of a shard of `batch` (replacing the one of the same ID).
/// A shard made by a reference ingest keeps its `ingestId` in every later
/// status's metadata: a client that lost the answer to its ingest finds
/// there that the chunk was accepted.
pub(crate) fn set_shard(batch: &mut Batch, mut rec: ShardRec) {
    match batch.shards.iter_mut().find(|s| s.id == rec.id) {
        Some(s) => {
            if let (Some(id), Some(new)) =
                (s.metadata.get("ingestId"), rec.metadata.as_object_mut())
            {
                new.entry("ingestId").or_insert_with(|| id.clone());
            }
            *s = rec;
        }
        None => batch.shards.push(rec),
    }
}
