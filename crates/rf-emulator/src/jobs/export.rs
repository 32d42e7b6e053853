//! An export task: packs result files of the processing stage into one
//! `.tar.gz` archive in the export stage's output batch. The archive is
//! written atomically (see [`crate::store::Store::write_blob`]), so a task
//! cut off leaves no half archive behind.

use std::io::Read;

use chrono::Utc;
use serde_json::json;

use crate::model::{BlobRef, Content, TaskInput};

use super::TaskCtx;
use super::results::{OutputFile, add_output};

/// Packs `inputs` into `<job>_<task>.tar.gz` in `out_batch`.
pub(super) fn run_export(t: &TaskCtx<'_>, inputs: &[TaskInput], out_batch: &str) {
    let Some(task_id) = t.id() else {
        return;
    };
    let blob = format!("{}.tgz", uuid::Uuid::new_v4().simple());
    if let Err(e) = t.ctx.store.write_blob(&blob, |w| pack(t, inputs, w)) {
        if t.alive() {
            t.fail("export-failed", format!("cannot build archive: {e}"));
        }
        return;
    }
    let len = std::fs::metadata(t.ctx.store.blob_path(&blob))
        .map(|m| m.len())
        .unwrap_or(0);
    let file = OutputFile {
        batch: out_batch,
        name: format!("{}_{task_id}.tar.gz", t.key.job),
        content: Content::Archives,
        nested: Some(Content::Metadata),
    };
    add_output(
        t.ctx,
        t.key,
        &file,
        BlobRef {
            blob,
            offset: 0,
            len,
        },
    );
    let total = inputs.len();
    t.succeed(json!({"message": format!("packed {total} result files into {}", file.name)}));
}

/// Writes the gzipped tar of `inputs` into `out`, reporting progress; stops
/// with an error when the job stops.
fn pack(t: &TaskCtx<'_>, inputs: &[TaskInput], out: impl std::io::Write) -> std::io::Result<()> {
    let gz = flate2::write::GzEncoder::new(out, flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    let mtime = u64::try_from(Utc::now().timestamp()).unwrap_or(0);
    let total = inputs.len();
    for (i, input) in inputs.iter().enumerate() {
        if !t.alive() {
            return Err(std::io::Error::other("job is no longer running"));
        }
        let f = t.ctx.store.open_range(&input.data)?;
        let mut h = tar::Header::new_ustar();
        h.set_size(input.data.len);
        h.set_mode(0o644);
        h.set_mtime(mtime);
        h.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut h, &input.name, f.take(input.data.len))?;
        let done = i + 1;
        t.progress(done, total, format!("packed {done}/{total} result files"));
    }
    tar.into_inner()?.finish()?;
    Ok(())
}
