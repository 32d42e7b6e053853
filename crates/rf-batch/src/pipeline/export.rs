//! The export stage: download an output batch into a directory, resumably.
//! The [`crate::Pipeline`] runs it after its job; [`export`] runs it alone,
//! as `rf batch export` and `rf job export` do.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::paths::{check_dir_or_absent, io_err};
use crate::context::Context;
use crate::error::{DirRole, Error, Result};
use crate::events::Event;
use crate::export::{
    DownloadSettings, DownloadSummary, DownloadTarget, ExportPlan, RefusedEntry, download_stream,
    within_count,
};
use crate::ingest::{MediaKind, UploadMode};
use crate::limit::LimitReport;
use crate::state::{Manifest, ManifestFile, RunIdentity, StateLock, state_dir_of};

/// Downloads every file of the plan's batch that the manifest does not
/// record yet into `target.out_dir`, telling the total first
/// (`ExportListed`). A cancelled download is [`Error::Cancelled`]; failed
/// files are in the summary (see [`DownloadSummary::failed`]).
pub(crate) async fn download_batch(
    ctx: &Context,
    plan: &ExportPlan,
    target: &DownloadTarget,
    state: &mut ManifestFile,
) -> Result<DownloadSummary> {
    ctx.check_cancel()?;
    // The listing is streamed into the downloads (memory: two pages of it);
    // the plan's count is the progress total. The progress starts from
    // what the manifest records; the download checks each record against
    // the disk (`summary.already`).
    let total = plan.total();
    ctx.emit(Event::ExportListed {
        output_batch: plan.batch().to_owned(),
        files: usize::try_from(total).unwrap_or(usize::MAX),
        already_downloaded: state.export.downloads.len(),
    })
    .await;
    let files = within_count(plan.files(&ctx.client), total);
    let summary = download_stream(ctx, files, target, state).await?;

    if !summary.refused.is_empty() {
        ctx.warn(format!(
            "{} archive entries were refused (unsafe paths or links); see the report",
            summary.refused.len()
        ))
        .await;
    }
    if summary.cancelled {
        return Err(Error::Cancelled);
    }
    Ok(summary)
}

/// The manifest of exports run alone, inside `<out>/.rf-state/` (`rf run`
/// keeps `rf-run.json` beside it).
pub const EXPORT_MANIFEST: &str = "rf-export.json";

/// A download of a batch into a directory, alone: what `rf batch export`
/// and `rf job export` run. See [`export`].
#[derive(Debug, Clone, PartialEq)]
pub struct ExportOptions {
    /// The batch to download (a job's output batch:
    /// [`crate::export::find_export_batch`]).
    pub batch_id: String,
    /// Only the files of these parts (empty: all).
    pub parts: Vec<String>,
    /// Where files go (created if needed).
    pub out_dir: PathBuf,
    /// Concurrency, retries, extraction.
    pub download: DownloadSettings,
    /// Who the export says it is in its state directory's lock (default
    /// `an rf-batch export`).
    pub lock_owner: Option<String>,
    /// Also upload the files into this bucket once downloaded into
    /// `out_dir` (which is then the staging directory; see
    /// [`crate::export::bucket`]).
    #[cfg(feature = "cloud")]
    pub out_bucket: Option<crate::export::bucket::BucketTarget>,
}

impl ExportOptions {
    /// A download of `batch_id` into `out_dir` with every default.
    pub fn new(batch_id: impl Into<String>, out_dir: impl Into<PathBuf>) -> ExportOptions {
        ExportOptions {
            batch_id: batch_id.into(),
            parts: Vec::new(),
            out_dir: out_dir.into(),
            download: DownloadSettings::default(),
            lock_owner: None,
            #[cfg(feature = "cloud")]
            out_bucket: None,
        }
    }

    /// The manifest of this export (`<out>/.rf-state/rf-export.json`).
    pub fn state_file(&self) -> PathBuf {
        self.out_dir.join(".rf-state").join(EXPORT_MANIFEST)
    }
}

/// What an [`export`] did.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportReport {
    /// The batch.
    pub batch_id: String,
    /// Where files went.
    pub output_dir: PathBuf,
    /// What the upload into a bucket did ([`ExportOptions::out_bucket`]).
    #[cfg(feature = "cloud")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub out_bucket: Option<crate::export::bucket::BucketSummary>,
    /// Files of the batch (those of `parts`).
    pub files: usize,
    /// Files downloaded now.
    pub downloaded_now: usize,
    /// Files downloaded by earlier attempts.
    pub downloaded_before: usize,
    /// Bytes downloaded now.
    pub bytes: u64,
    /// Files written by extraction now.
    pub extracted_files: u64,
    /// Archive entries refused now.
    pub refused_entries: Vec<RefusedEntry>,
    /// What the download concurrency limit did (where it settled).
    pub concurrency: Option<LimitReport>,
    /// Warnings said during the export.
    pub warnings: Vec<String>,
    /// How long it took.
    #[serde(serialize_with = "crate::events::seconds")]
    pub took: Duration,
}

/// Downloads a batch into a directory, resumably: an unknown batch or part
/// is refused before anything is created; the state directory's lock is
/// held throughout ([`StateLock`]); files already downloaded (recorded in
/// `<out>/.rf-state/rf-export.json`) are not fetched again. Failed files
/// are [`Error::DownloadsFailed`]; a re-run fetches only those.
///
/// ```no_run
/// # async fn demo() -> Result<(), rf_batch::Error> {
/// use rf_batch::pipeline::{ExportOptions, export};
/// use rf_batch::{Client, Context};
/// let ctx = Context::new(Client::builder().api_key("key").build()?);
/// let report = export(&ctx, &ExportOptions::new("my-output-batch", "results/")).await?;
/// println!("{} files downloaded now", report.downloaded_now);
/// # Ok(()) }
/// ```
pub async fn export(ctx: &Context, options: &ExportOptions) -> Result<ExportReport> {
    let started = Instant::now();
    check_dir_or_absent(&options.out_dir, DirRole::Output)?;
    // An unknown batch or part is told before anything is created.
    let plan = ExportPlan::ask(&ctx.client, &options.batch_id, &options.parts).await?;
    #[cfg(feature = "cloud")]
    if let Some(target) = &options.out_bucket {
        target.check().await?;
    }
    let _lock = StateLock::acquire(
        &state_dir_of(&options.state_file()),
        options
            .lock_owner
            .as_deref()
            .unwrap_or("an rf-batch export"),
    )?;
    let out_dir = create_out_dir(&options.out_dir)?;
    let mut state = open_export_manifest(&out_dir, &options.batch_id)?;
    let target = DownloadTarget {
        out_dir: out_dir.clone(),
        settings: options.download.clone(),
    };
    let summary = download_batch(ctx, &plan, &target, &mut state).await?;
    if let Some(failed) = summary.failed() {
        return Err(failed);
    }
    #[cfg(feature = "cloud")]
    let out_bucket = match &options.out_bucket {
        Some(target) => Some(crate::export::bucket::upload_dir(ctx, &out_dir, target).await?),
        None => None,
    };
    Ok(ExportReport {
        batch_id: options.batch_id.clone(),
        output_dir: out_dir,
        #[cfg(feature = "cloud")]
        out_bucket,
        files: summary.listed,
        downloaded_now: summary.files,
        downloaded_before: summary.already,
        bytes: summary.bytes,
        extracted_files: summary.extracted_files,
        refused_entries: summary.refused,
        concurrency: summary.concurrency,
        warnings: ctx.take_warnings(),
        took: started.elapsed(),
    })
}

/// Creates the output directory and returns its canonical path.
fn create_out_dir(dir: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).map_err(io_err("cannot create output directory", dir))?;
    std::fs::canonicalize(dir).map_err(io_err("cannot open output directory", dir))
}

/// The export manifest in `out_dir`: loaded when it is this batch's, new
/// when there is none, [`Error::ForeignExport`] when it is another batch's.
fn open_export_manifest(out_dir: &Path, batch: &str) -> Result<ManifestFile> {
    let path = out_dir.join(".rf-state").join(EXPORT_MANIFEST);
    let manifest = match Manifest::load(&path)? {
        Some(m) if m.run.batch_id == batch => m,
        Some(m) => {
            return Err(Error::ForeignExport {
                out_dir: out_dir.to_path_buf(),
                existing_batch: m.run.batch_id,
                requested_batch: batch.to_owned(),
            });
        }
        None => Manifest::new(
            RunIdentity {
                input_dir: PathBuf::new(),
                batch_id: batch.to_owned(),
                workflow_id: String::new(),
                kind: MediaKind::Image,
            },
            UploadMode::Single,
        ),
    };
    Ok(ManifestFile::new(manifest, path))
}
