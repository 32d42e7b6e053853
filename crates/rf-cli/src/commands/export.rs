//! Downloading a batch into a directory, resumably (shared by `rf batch
//! export` and `rf job export`): rf-batch's export run, its events drawn and
//! its errors told in this command's terms.
//!
//! The download records live in `<out>/.rf-state/rf-export.json` (rf-batch's
//! manifest format; `rf run` uses `rf-run.json` beside it) and its journal
//! `rf-export.json.downloads` (one line per completed download), so
//! re-running the same export skips files already there.

use std::path::PathBuf;

use rf_batch::Context;
use rf_batch::pipeline::{ExportOptions, ExportReport};
use rf_batch::state::StateError;
use tokio_util::sync::CancellationToken;

use super::bucket_out;
use super::session::{Session, map_error};
use super::state_lock;
use crate::config::Config;
use crate::error::{CliError, Kind, Result};
use crate::events::{drawn, plural};
use crate::output::{Table, human_bytes};
use crate::progress::Progress;

/// What to export where.
#[derive(Debug)]
pub(crate) struct Target {
    /// The batch to download.
    pub(crate) batch_id: String,
    /// Only these parts (empty: all).
    pub(crate) parts: Vec<String>,
    /// The directory to download into, or a bucket URL.
    pub(crate) out: PathBuf,
    /// The staging directory of a bucket `--out` (default: in the cache).
    pub(crate) staging_dir: Option<PathBuf>,
    /// The command (`rf batch export`, `rf job export`), named to another
    /// `rf` refused the directory meanwhile.
    pub(crate) command: &'static str,
}

/// Downloads `target.batch_id` into `target.out` and reports what it did.
pub(crate) async fn run(
    session: &Session,
    config: &Config,
    progress: Progress,
    cancel: CancellationToken,
    target: Target,
) -> Result<()> {
    let out = bucket_out::out_target(&target.out, target.staging_dir.as_deref(), config)?;
    let mut options = ExportOptions::new(target.batch_id.clone(), &out.dir);
    options.out_bucket = out.bucket;
    options.parts.clone_from(&target.parts);
    options.download.concurrency = config.concurrency;
    options.lock_owner = Some(target.command.to_owned());
    let ctx = Context::new(session.client().clone()).with_cancel(cancel);
    let (result, renderer) = drawn(progress, config, |events| async move {
        rf_batch::pipeline::export(&ctx.with_events(events), &options).await
    })
    .await;
    let report = result.map_err(|e| export_error(e, &target))?;
    if let Some(mut r) = renderer {
        r.finish_download(format!(
            "{} ({} now, {})",
            plural(report.files as u64, "file"),
            report.downloaded_now,
            human_bytes(report.bytes)
        ));
    }
    print_export(&report, config)
}

/// The library's error in this command's terms.
fn export_error(e: rf_batch::Error, target: &Target) -> CliError {
    match e {
        rf_batch::Error::State(e @ StateError::InUse { .. }) => {
            state_lock::explain(e, &format!("--out {}", target.out.display()), "--out")
        }
        rf_batch::Error::ForeignExport {
            out_dir,
            existing_batch,
            requested_batch,
        } => CliError::usage(format!(
            "{} already holds an export of batch {existing_batch}; use another --out for batch {requested_batch}",
            out_dir.display(),
        )),
        rf_batch::Error::UnknownPart { batch, part } => CliError::new(
            Kind::NotFound,
            format!("batch {batch} has no files in part {part:?}; see `rf batch parts {batch}`"),
        ),
        other => map_error(&other),
    }
}

fn print_export(report: &ExportReport, config: &Config) -> Result<()> {
    let out = &config.output;
    if out.is_json() {
        return out.document(report);
    }
    let mut t = Table::key_values();
    t.row(["batch".to_owned(), report.batch_id.clone()]);
    t.row([
        "results".to_owned(),
        format!(
            "{} ({}: {} downloaded now, {} before, {} extracted)",
            report.output_dir.display(),
            plural(report.files as u64, "file"),
            report.downloaded_now,
            report.downloaded_before,
            report.extracted_files
        ),
    ]);
    if !report.refused_entries.is_empty() {
        t.row([
            "refused".to_owned(),
            format!("{} unsafe archive entries", report.refused_entries.len()),
        ]);
    }
    if let Some(bucket) = &report.out_bucket {
        t.row(bucket_out::bucket_row(bucket));
    }
    if let Some(c) = &report.concurrency {
        t.row(["concurrency".to_owned(), crate::events::concurrency_text(c)]);
    }
    out.table(&t)
}
