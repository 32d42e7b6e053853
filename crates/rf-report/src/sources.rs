//! The run manifest: what the run was (batch, workflow, job, timings) and
//! where each result's source file is in the input directory. Its items are
//! read one shard at a time (rf-batch's items file), keeping only the names
//! asked for, so a 200,000-image run costs no more memory than a small one.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use rf_batch::files::plan::PlannedItem;
use rf_batch::state::{MANIFEST_FILE, Manifest};

use crate::aggregate::{Aggregates, Capped, Failure};
use crate::error::ReportError;

/// What the run manifest says about the run.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub(crate) struct RunInfo {
    pub(crate) input_dir: String,
    pub(crate) batch_id: String,
    pub(crate) workflow_id: String,
    pub(crate) kind: String,
    pub(crate) inputs: u64,
    pub(crate) skipped: u64,
    pub(crate) job_id: String,
    pub(crate) job_state: String,
    pub(crate) output_batch: String,
    pub(crate) started: String,
    pub(crate) took: String,
}

/// The manifest of the run that wrote `out_dir`, if it has one.
pub(crate) fn load(out_dir: &Path) -> Result<Option<Manifest>, ReportError> {
    let path = out_dir.join(".rf-state").join(MANIFEST_FILE);
    Ok(Manifest::load(&path)?)
}

/// The summary of `m`.
pub(crate) fn info(m: &Manifest) -> RunInfo {
    let inputs = m.ingest.singles.len()
        + m.ingest
            .shards
            .iter()
            .map(|s| s.items.count())
            .sum::<usize>();
    let job_state = match &m.job {
        None => "not started".to_string(),
        Some(j) if j.error => "failed".to_string(),
        Some(j) if j.terminal => "succeeded".to_string(),
        Some(_) => "not finished".to_string(),
    };
    let took = (m.updated_at - m.created_at).to_std().unwrap_or_default();
    RunInfo {
        input_dir: m.run.input_dir.display().to_string(),
        batch_id: m.run.batch_id.clone(),
        workflow_id: m.run.workflow_id.clone(),
        kind: m.run.kind.plural().to_string(),
        inputs: inputs as u64,
        skipped: m.ingest.skipped.len() as u64,
        job_id: m.job.as_ref().map(|j| j.job_id.clone()).unwrap_or_default(),
        job_state,
        output_batch: m.export.output_batch.clone().unwrap_or_default(),
        started: m.created_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        took: format!("{:.1} s", took.as_secs_f64()),
    }
}

/// Calls `each` with every planned item of `m`, one shard in memory at a
/// time.
fn each_item(m: &Manifest, mut each: impl FnMut(&PlannedItem)) -> Result<(), ReportError> {
    for s in &m.ingest.singles {
        each(&s.item);
    }
    for position in 0..m.ingest.shards.len() {
        let shard = m.shard_plan(position)?;
        for item in &shard.items {
            each(item);
        }
    }
    Ok(())
}

/// Where the files named `wanted` are, and the items with no result
/// (failed, or never processed).
pub(crate) fn resolve(
    m: &Manifest,
    wanted: &HashSet<String>,
    results: &Aggregates,
) -> Result<(HashMap<String, PathBuf>, Capped<Failure>), ReportError> {
    let mut found = HashMap::new();
    let mut missing = Capped::default();
    each_item(m, |item| {
        if wanted.contains(&item.name) {
            found.insert(item.name.clone(), m.run.input_dir.join(&item.relative));
        }
        if !results.has_result(&item.name) {
            missing.push(Failure {
                name: item.name.clone(),
                reason: String::new(),
            });
        }
    })?;
    Ok((found, missing))
}
