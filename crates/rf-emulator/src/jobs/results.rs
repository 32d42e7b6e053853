//! Job results: the output batch of each stage (a multipart batch with one
//! `results` part), the per-task result file of the processing stage (JSONL,
//! or CSV with `aggregationFormat: csv`) and adding files to an output
//! batch.

use serde_json::{Map, Value};

use crate::ctx::Ctx;
use crate::model::{Batch, BatchKind, BlobRef, Content, Db, FileRec, PartRec};

use super::JobKey;

/// Part name of both output batches.
const RESULTS_PART: &str = "results";

/// What a stage's output batch holds.
#[derive(Debug, Clone, Copy)]
pub(super) struct OutputBatch {
    pub(super) stage: &'static str,
    pub(super) content: Content,
    pub(super) nested: Option<Content>,
    pub(super) description: &'static str,
}

impl OutputBatch {
    /// The processing stage's: one result file per task.
    pub(super) const PROCESSING: OutputBatch = OutputBatch {
        stage: rf_types::STAGE_PROCESSING,
        content: Content::Metadata,
        nested: None,
        description: "Workflow results per task",
    };
    /// The export stage's: archives of result files.
    pub(super) const EXPORT: OutputBatch = OutputBatch {
        stage: rf_types::STAGE_EXPORT,
        content: Content::Archives,
        nested: Some(Content::Metadata),
        description: "Compressed processing results",
    };
}

/// Creates (or reuses) the output batch `spec` of a job; returns its ID
/// (`<job>-<stage>-output`, with a random suffix when a batch of that name
/// belongs to something else).
pub(super) fn output_batch(ctx: &Ctx, db: &mut Db, key: &JobKey, spec: OutputBatch) -> String {
    let now = ctx.now();
    let (ws, job) = (key.ws.as_str(), key.job.as_str());
    let mut name = format!("{job}-{}-output", spec.stage);
    let taken = db
        .ws(ws)
        .and_then(|w| w.batches.get(&name))
        .is_some_and(|b| b.owner_job.as_deref() != Some(job));
    if taken {
        name = format!("{name}-{}", &uuid::Uuid::new_v4().simple().to_string()[..6]);
    }
    let seq = db.next_seq();
    let ttl = ctx.batch_ttl();
    if !db.ws(ws).is_some_and(|w| w.batches.contains_key(&name)) {
        let mut b = Batch::new(
            &name,
            Some(&format!("{job} {} output", spec.stage)),
            BatchKind::MultipartBatch,
            spec.content,
            now,
            ttl,
            seq,
        );
        b.owner_job = Some(job.to_string());
        b.parts.push(PartRec {
            name: RESULTS_PART.into(),
            part_type: BatchKind::SimpleBatch,
            content: spec.content,
            description: Some(spec.description.to_string()),
            nested: spec.nested,
        });
        db.insert_batch(ws, b);
    }
    name
}

/// A file to put into the `results` part of an output batch.
#[derive(Debug, Clone)]
pub(super) struct OutputFile<'a> {
    pub(super) batch: &'a str,
    pub(super) name: String,
    pub(super) content: Content,
    pub(super) nested: Option<Content>,
}

/// The result file of a processing task: `<job>_<task>.jsonl`, or `.csv`.
pub(super) fn result_file(
    key: &JobKey,
    task_id: &str,
    records: &[Map<String, Value>],
    csv: bool,
) -> (String, Vec<u8>) {
    if csv {
        (format!("{}_{task_id}.csv", key.job), to_csv(records))
    } else {
        (format!("{}_{task_id}.jsonl", key.job), to_jsonl(records))
    }
}

/// Stores `body` as `file` (replacing a file of the same name).
pub(super) fn store_output(
    ctx: &Ctx,
    key: &JobKey,
    file: &OutputFile<'_>,
    body: &[u8],
) -> std::io::Result<()> {
    let blob = format!("{}.out", uuid::Uuid::new_v4().simple());
    ctx.store
        .write_blob(&blob, |w| std::io::Write::write_all(w, body))?;
    let data = BlobRef {
        blob,
        offset: 0,
        len: body.len() as u64,
    };
    add_output(ctx, key, file, data);
    Ok(())
}

/// Records `file`, whose bytes are `data`, in its output batch (replacing
/// a file of the same name, whose blob is deleted).
pub(super) fn add_output(ctx: &Ctx, key: &JobKey, file: &OutputFile<'_>, data: BlobRef) {
    let now = ctx.now();
    let old = ctx.store.write(|db| {
        let b = db.batch_mut(&key.ws, file.batch, now)?;
        let rec = FileRec {
            name: file.name.clone(),
            data,
            content: file.content,
            part: Some(RESULTS_PART.into()),
            shard: None,
            nested: file.nested,
        };
        match b.files.iter_mut().find(|f| f.name == file.name) {
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

/// Records as JSON lines.
fn to_jsonl(records: &[Map<String, Value>]) -> Vec<u8> {
    let mut s = String::new();
    for r in records {
        s.push_str(&Value::Object(r.clone()).to_string());
        s.push('\n');
    }
    s.into_bytes()
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
fn to_csv(records: &[Map<String, Value>]) -> Vec<u8> {
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

#[cfg(test)]
mod tests {
    use serde_json::json;

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
