//! Downloading a batch into a directory, resumably (shared by `rf batch
//! export` and `rf job export`).
//!
//! The download records live in `<out>/.rf-state/rf-export.json` (rf-batch's
//! manifest format; `rf run` uses `rf-run.json` beside it) and its journal
//! `rf-export.json.downloads` (one line per completed download), so
//! re-running the same export skips files already there.

use std::path::{Path, PathBuf};

use rf_batch::export::{DownloadSettings, download_stream, export_count, export_files};
use rf_batch::ingest::{MediaKind, UploadMode};
use rf_batch::state::{Manifest, RunIdentity};
use rf_batch::{Event, EventSink};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::session::{Session, map_error};
use crate::config::Config;
use crate::error::{CliError, Kind, Result};
use crate::events::{Renderer, plural};
use crate::output::{Table, human_bytes};
use crate::progress::Progress;

/// The manifest of standalone exports, inside `<out>/.rf-state/`.
const EXPORT_MANIFEST: &str = "rf-export.json";

/// What to export where.
#[derive(Debug)]
pub(crate) struct Target {
    /// The batch to download.
    pub(crate) batch_id: String,
    /// Only these parts (empty: all).
    pub(crate) parts: Vec<String>,
    /// The directory to download into.
    pub(crate) out: PathBuf,
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
    // An unknown batch is told before anything is created or drawn.
    session
        .client()
        .staging()
        .batch(&target.batch_id)
        .await
        .map_err(|e| map_error(&e))?;
    let _out_lock = super::state_lock::lock(
        &target.out.join(".rf-state"),
        &format!("--out {}", target.out.display()),
        target.command,
        "--out",
    )?;
    let out_dir = prepare_dir(&target.out)?;
    let state_path = out_dir.join(".rf-state").join(EXPORT_MANIFEST);
    let mut manifest = match Manifest::load(&state_path).map_err(|e| map_error(&e.into()))? {
        Some(m) if m.run.batch_id == target.batch_id => m,
        Some(m) => {
            return Err(CliError::usage(format!(
                "{} already holds an export of batch {}; use another --out for batch {}",
                out_dir.display(),
                m.run.batch_id,
                target.batch_id
            )));
        }
        None => Manifest::new(
            RunIdentity {
                input_dir: PathBuf::new(),
                batch_id: target.batch_id.clone(),
                workflow_id: String::new(),
                kind: MediaKind::Image,
            },
            UploadMode::Single,
        ),
    };

    let client = session.client();
    if !target.parts.is_empty() {
        let known: Vec<String> = client
            .staging()
            .parts(&target.batch_id)
            .await
            .map_err(|e| map_error(&e))?
            .into_iter()
            .map(|p| p.part_name.to_string())
            .collect();
        for part in &target.parts {
            if !known.contains(part) {
                return Err(CliError::new(
                    Kind::NotFound,
                    format!(
                        "batch {} has no files in part {part:?}; see `rf batch parts {}`",
                        target.batch_id, target.batch_id
                    ),
                ));
            }
        }
    }
    // The total for progress comes from the count endpoint; the listing is
    // streamed into the downloads, so memory holds two pages of it.
    let total = export_count(client, &target.batch_id, &target.parts).await;
    // The progress starts from what the manifest records; the download
    // checks each record against the disk (`summary.already`).
    let already = manifest.export.downloads.len();

    let (tx, rx) = mpsc::channel(256);
    let drawing = tokio::spawn(Renderer::new(progress, &config.output, config.verbose).drain(rx));
    let sink = EventSink::new(tx);
    sink.emit(Event::ExportListed {
        output_batch: target.batch_id.clone(),
        files: usize::try_from(total).unwrap_or(usize::MAX),
        already_downloaded: already,
    })
    .await;
    let settings = DownloadSettings {
        concurrency: config.concurrency,
        ..DownloadSettings::default()
    };
    let result = download_stream(
        client,
        export_files(client, &target.batch_id, &target.parts),
        &out_dir,
        &mut manifest,
        &state_path,
        &settings,
        &sink,
        &cancel,
    )
    .await;
    drop(sink);
    let mut renderer = drawing.await.ok();
    let summary = match result {
        Ok(summary) => summary,
        Err(e) => {
            if let Some(r) = renderer.as_mut() {
                r.clear();
            }
            return Err(map_error(&e));
        }
    };
    if summary.cancelled {
        if let Some(r) = renderer.as_mut() {
            r.clear();
        }
        return Err(map_error(&rf_batch::Error::Cancelled));
    }
    if let Some((file, why)) = summary.failures.first() {
        if let Some(r) = renderer.as_mut() {
            r.clear();
        }
        return Err(map_error(&rf_batch::Error::DownloadsFailed {
            failed: summary.failures.len(),
            total: summary.listed - summary.already,
            first: format!("{file}: {why}"),
        }));
    }
    if let Some(r) = renderer.as_mut() {
        r.finish_download(format!(
            "{} ({} now, {})",
            plural(summary.listed as u64, "file"),
            summary.files,
            human_bytes(summary.bytes)
        ));
    }
    drop(renderer);

    let out = &config.output;
    if out.is_json() {
        out.document(&json!({
            "batchId": target.batch_id,
            "outputDir": out_dir,
            "files": summary.listed,
            "downloadedNow": summary.files,
            "downloadedBefore": summary.already,
            "bytes": summary.bytes,
            "extractedFiles": summary.extracted_files,
            "refusedEntries": summary.refused,
        }))
    } else {
        let mut t = Table::key_values();
        t.row(["batch".to_owned(), target.batch_id.clone()]);
        t.row([
            "results".to_owned(),
            format!(
                "{} ({}: {} downloaded now, {} before, {} extracted)",
                out_dir.display(),
                plural(summary.listed as u64, "file"),
                summary.files,
                summary.already,
                summary.extracted_files
            ),
        ]);
        if !summary.refused.is_empty() {
            t.row([
                "refused".to_owned(),
                format!("{} unsafe archive entries", summary.refused.len()),
            ]);
        }
        out.table(&t)
    }
}

/// Creates the output directory and returns its absolute path.
fn prepare_dir(dir: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).map_err(|e| {
        CliError::local(format!(
            "cannot create the output directory {}: {}",
            dir.display(),
            super::options::io_reason(&e)
        ))
    })?;
    std::fs::canonicalize(dir).map_err(|e| {
        CliError::local(format!(
            "cannot open the output directory {}: {}",
            dir.display(),
            super::options::io_reason(&e)
        ))
    })
}
