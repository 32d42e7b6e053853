//! One task of a job, run to its end on a blocking worker thread: a
//! processing task runs its job's built-in workflow over each input file
//! (charging simulated compute against its share of
//! `processingTimeoutSeconds`, counting failed files against
//! `maxImageFailureRate`) and stores one result file; an export task packs
//! result files ([`super::export`]); a compilation task just succeeds.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::Read;

use serde_json::{Map, Value, json};

use crate::ctx::Ctx;
use crate::model::{Content, TaskInput};
use crate::workflows::Workflow;

use super::export::run_export;
use super::log::Entry;
use super::results::{OutputFile, result_file, store_output};
use super::{TaskCtx, read_job};

/// What the tasks of a stage do.
#[derive(Debug, Clone)]
pub(super) enum Work {
    Processing(Processing),
    Export { out_batch: String },
    Compile,
}

/// How a processing stage runs its workflow.
#[derive(Debug, Clone)]
pub(super) struct Processing {
    pub(super) workflow: Workflow,
    /// CSV results (`aggregationFormat: csv`) instead of JSONL.
    pub(super) csv: bool,
    pub(super) parameters: Map<String, Value>,
    /// `imagesMetadataInputsMapping`: workflow input name → metadata key.
    pub(super) metadata_mapping: BTreeMap<String, String>,
    pub(super) max_fps: Option<f64>,
    /// Simulated compute seconds each task may spend.
    pub(super) budget_seconds: f64,
    pub(super) max_failure_rate: Option<f64>,
    pub(super) out_batch: String,
}

/// Runs one task to completion (blocking; on the worker pool).
pub(super) fn run_task(t: &TaskCtx<'_>, work: &Work) {
    let Some(inputs) = read_job(t.ctx, t.key, |j| {
        j.stages
            .get(t.stage)
            .and_then(|s| s.tasks.get(t.task))
            .map(|task| task.inputs.clone())
    }) else {
        return;
    };
    let total = inputs.len();
    let started = t.set(|task| {
        task.progress = Some(0.0);
        task.status_type = "info".into();
        task.notification = json!({"message": format!("processing 0/{total}")});
    });
    if !started {
        return;
    }
    match work {
        Work::Compile => {
            pause(t.ctx);
            t.succeed(json!({"message": "engine compiled"}));
        }
        Work::Export { out_batch } => run_export(t, &inputs, out_batch),
        Work::Processing(p) => process(t, p, &inputs),
    }
}

/// The simulated time per item ([`crate::config::JobSpeed::item_delay`]).
fn pause(ctx: &Ctx) {
    let delay = ctx.config.job_speed.item_delay;
    if !delay.is_zero() {
        std::thread::sleep(delay);
    }
}

/// How a processing task is doing.
#[derive(Debug, Default)]
struct Tally {
    total: usize,
    failed: usize,
    spent: f64,
}

/// Runs the workflow over every input, then stores the result file.
fn process(t: &TaskCtx<'_>, p: &Processing, inputs: &[TaskInput]) {
    let total = inputs.len();
    let mut tally = Tally {
        total,
        ..Tally::default()
    };
    let mut records = Vec::with_capacity(total);
    for (i, input) in inputs.iter().enumerate() {
        if !t.alive() || !charge(t, p, &mut tally, i) {
            return;
        }
        match run_workflow(t.ctx, p, input) {
            Ok(record) => records.push(record),
            Err(reason) => {
                if !count_failure(t, p, &mut tally, &input.name, reason) {
                    return;
                }
            }
        }
        pause(t.ctx);
        let done = i + 1;
        t.progress(done, total, format!("processing {done}/{total}"));
    }
    store_results(t, p, &records, &tally);
}

/// Charges one item's simulated compute; false (and the task failed) when
/// the task's budget is spent. `i` items are done.
fn charge(t: &TaskCtx<'_>, p: &Processing, tally: &mut Tally, i: usize) -> bool {
    tally.spent += t.ctx.config.job_speed.simulated_seconds_per_item;
    if tally.spent <= p.budget_seconds {
        return true;
    }
    t.fail(
        "processing-timeout",
        format!(
            "task used its share of processingTimeoutSeconds ({:.1} s of simulated compute) after {i} of {} files; restart with a larger processingTimeoutSeconds",
            p.budget_seconds, tally.total
        ),
    );
    false
}

/// Logs a file the workflow failed on; false (and the task failed) when
/// more files failed than `maxImageFailureRate` allows (10 without it).
fn count_failure(
    t: &TaskCtx<'_>,
    p: &Processing,
    tally: &mut Tally,
    name: &str,
    reason: String,
) -> bool {
    tally.failed += 1;
    t.log(Entry::new(
        "error",
        "image-processing-failed",
        json!({"fileName": name, "reason": reason}),
    ));
    let too_many = match p.max_failure_rate {
        Some(r) => tally.failed as f64 > r * tally.total as f64,
        None => tally.failed > 10,
    };
    if too_many {
        t.fail(
            "failure-rate-exceeded",
            format!(
                "{} of {} files failed, more than maxImageFailureRate allows",
                tally.failed, tally.total
            ),
        );
    }
    !too_many
}

/// Most bytes of one image's metadata file the workflow reads.
const MAX_METADATA_BYTES: u64 = 1 << 20;

/// The result record of one input file, or why the workflow failed on it.
/// With a metadata mapping, the record shows the values the workflow's
/// inputs received (`workflow_inputs`).
fn run_workflow(
    ctx: &Ctx,
    p: &Processing,
    input: &TaskInput,
) -> Result<Map<String, Value>, String> {
    let mapped = metadata_inputs(ctx, p, input)?;
    let parameters = if mapped.is_empty() {
        Cow::Borrowed(&p.parameters)
    } else {
        let mut all = mapped.clone();
        all.extend(p.parameters.clone());
        Cow::Owned(all)
    };
    // A decoder bug on a hostile file must not take the task down.
    let run = || process_item(ctx, p, input, &parameters);
    let mut out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(run))
        .unwrap_or_else(|_| Err("the workflow crashed on this file".to_string()))?;
    let mut rec = Map::new();
    rec.insert("file_name".into(), input.name.clone().into());
    rec.insert("workflow_id".into(), p.workflow.id().into());
    if !mapped.is_empty() {
        rec.insert("workflow_inputs".into(), Value::Object(mapped));
    }
    rec.append(&mut out);
    Ok(rec)
}

/// The workflow inputs `imagesMetadataInputsMapping` gives this image: each
/// input's value from the image's metadata, or from `workflowParameters`,
/// which win (as in the official local runner). An image whose metadata
/// lacks a mapped key fails with the keys it lacks.
fn metadata_inputs(
    ctx: &Ctx,
    p: &Processing,
    input: &TaskInput,
) -> Result<Map<String, Value>, String> {
    if p.metadata_mapping.is_empty() || input.content == Content::Videos {
        return Ok(Map::new());
    }
    let metadata = read_metadata(ctx, input)?;
    let mut values = Map::new();
    let mut missing = Vec::new();
    for (workflow_input, key) in &p.metadata_mapping {
        let value = p.parameters.get(workflow_input);
        if let Some(v) = value.or_else(|| metadata.get(key)) {
            values.insert(workflow_input.clone(), v.clone());
        } else {
            missing.push(key.as_str());
        }
    }
    if missing.is_empty() {
        Ok(values)
    } else {
        Err(format!(
            "Missing keys in the image's metadata ({}.json of the job's imagesMetadataPart): {}",
            input.name,
            missing.join(", ")
        ))
    }
}

/// The image's metadata object (empty when it has no metadata file).
fn read_metadata(ctx: &Ctx, input: &TaskInput) -> Result<Map<String, Value>, String> {
    let Some(data) = &input.metadata else {
        return Ok(Map::new());
    };
    if data.len > MAX_METADATA_BYTES {
        return Err(format!(
            "the image's metadata file is {} bytes, more than the {MAX_METADATA_BYTES} a workflow reads",
            data.len
        ));
    }
    let mut bytes = Vec::new();
    ctx.store
        .open_range(data)
        .and_then(|f| f.take(data.len).read_to_end(&mut bytes))
        .map_err(|e| format!("the image's metadata file is unreadable: {e}"))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| format!("the image's metadata file is not a JSON object: {e}"))
}

fn process_item(
    ctx: &Ctx,
    p: &Processing,
    input: &TaskInput,
    parameters: &Map<String, Value>,
) -> Result<Map<String, Value>, String> {
    let mut f = ctx
        .store
        .open_range(&input.data)
        .map_err(|e| format!("input file is unreadable: {e}"))?;
    if input.content == Content::Videos {
        let mut r = std::io::BufReader::new(f);
        p.workflow
            .run_video(&mut r, input.data.len, p.max_fps)
            .map_err(|e| e.0)
    } else {
        let len = usize::try_from(input.data.len).map_err(|_| "input too large".to_string())?;
        let mut bytes = vec![0u8; len];
        f.read_exact(&mut bytes)
            .map_err(|e| format!("input file is unreadable: {e}"))?;
        p.workflow.run_image(&bytes, parameters).map_err(|e| e.0)
    }
}

/// Stores the task's result file and marks the task succeeded.
fn store_results(t: &TaskCtx<'_>, p: &Processing, records: &[Map<String, Value>], tally: &Tally) {
    let Some(task_id) = t.id() else {
        return;
    };
    let (name, body) = result_file(t.key, &task_id, records, p.csv);
    let file = OutputFile {
        batch: &p.out_batch,
        name,
        content: Content::Metadata,
        nested: None,
    };
    match store_output(t.ctx, t.key, &file, &body) {
        Ok(()) => {
            let (total, failed) = (tally.total, tally.failed);
            t.succeed(json!({"message": format!("processed {}/{total} files", total - failed), "failedFiles": failed}));
        }
        Err(e) => t.fail("output-write-failed", format!("cannot store results: {e}")),
    }
}
