//! `--dry-run` of `rf run` and `rf batch ingest`: rf-batch's dry run
//! (scan, plan, read-only API calls) told as a table, or one JSON document.

use rf_batch::ingest::{MediaKind, UploadMode};
use rf_batch::pipeline::DryRun;

use crate::config::Config;
use crate::error::Result;
use crate::events::plural;
use crate::output::{Table, human_bytes};

/// Skipped files named one by one (the rest are counted; `--json` lists
/// them all).
const SKIPPED_SHOWN: usize = 10;

/// Prints what the run would do.
pub(crate) fn print(dry: &DryRun, config: &Config) -> Result<()> {
    let out = &config.output;
    if out.is_json() {
        return out.document(dry);
    }
    let mut t = Table::key_values();
    t.row(["would send".to_owned(), sending(dry)]);
    t.row(["found".to_owned(), found(dry)]);
    if !dry.skipped.is_empty() {
        t.row(["skipped".to_owned(), skipped(dry)]);
    }
    for c in &dry.colliding_names {
        t.row([
            "name clash".to_owned(),
            format!("{} would name {}", c.name, c.files.join(", ")),
        ]);
    }
    t.row(["batch".to_owned(), batch(dry)]);
    if dry.resumes {
        t.row([
            "resumes".to_owned(),
            format!(
                "{} of {} items uploaded by an earlier attempt ({})",
                dry.already_uploaded,
                dry.items,
                dry.state_file.display()
            ),
        ]);
    }
    if dry.job_definition.is_some() {
        t.row(["job".to_owned(), job(dry)]);
    }
    t.row(["workspace".to_owned(), dry.workspace.clone()]);
    out.table(&t)?;
    if let Some(definition) = &dry.job_definition {
        out.stdout_line("job definition:")?;
        out.document(definition)?;
    }
    out.note("dry run: nothing was uploaded, started or written");
    Ok(())
}

fn sending(dry: &DryRun) -> String {
    let what = plural(dry.items, kind_word(dry.kind));
    match dry.mode {
        UploadMode::Bulk => format!(
            "{what} in {} ({}, bulk mode)",
            plural(dry.shards as u64, "tar shard"),
            human_bytes(dry.shard_bytes)
        ),
        UploadMode::Single => format!(
            "{what} in {} (single mode)",
            plural(dry.single_uploads as u64, "request")
        ),
    }
}

fn kind_word(kind: MediaKind) -> &'static str {
    match kind {
        MediaKind::Image => "image",
        MediaKind::Video => "video",
    }
}

fn found(dry: &DryRun) -> String {
    format!(
        "{} ({}), {} ({}) in {}",
        plural(dry.images.files as u64, "image"),
        human_bytes(dry.images.bytes),
        plural(dry.videos.files as u64, "video"),
        human_bytes(dry.videos.bytes),
        dry.input_dir.display()
    )
}

fn skipped(dry: &DryRun) -> String {
    let mut named: Vec<String> = dry
        .skipped
        .iter()
        .take(SKIPPED_SHOWN)
        .map(|s| format!("{} ({})", s.relative, s.reason))
        .collect();
    if dry.skipped.len() > SKIPPED_SHOWN {
        named.push(format!(
            "and {} more (--json lists them all)",
            dry.skipped.len() - SKIPPED_SHOWN
        ));
    }
    format!(
        "{}: {}",
        plural(dry.skipped.len() as u64, "file"),
        named.join("; ")
    )
}

fn batch(dry: &DryRun) -> String {
    let state = match (dry.batch_id_generated, dry.batch_exists) {
        (true, _) => "new; the run generates its own ID",
        (false, true) => "exists: the run adds to it",
        (false, false) => "new: created by the first upload",
    };
    format!("{} ({state})", dry.batch_id)
}

fn job(dry: &DryRun) -> String {
    match (&dry.job_id, dry.job_exists) {
        (Some(id), Some(true)) => {
            format!("{id} (exists: the run follows it if it runs this definition)")
        }
        (Some(id), _) => format!("{id} (new)"),
        (None, _) => "a new job, its ID generated at start".to_owned(),
    }
}
