//! The ingest stages: scan and plan (or resume), upload, count check. The
//! [`crate::Pipeline`] runs them before its job; [`ingest`] runs them alone,
//! as `rf batch ingest` does.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rf_types::{BatchId, IngestId, ShardNotificationConfig};

use super::paths::{check_state_outside_input, input_dir};
use super::refused::{Shortfall, settle};
use crate::context::Context;
use crate::error::{CountTimeout, Error, Result};
use crate::events::Event;
use crate::ingest::{
    MediaKind, PlanOptions, ScanOptions, SkippedFile, UploadMode, UploadSettings, UploadSummary,
    UploadTarget, upload_all,
};
use crate::limit::LimitReport;
use crate::state::{
    FreshRun, Manifest, ManifestFile, Prepared, Reconciliation, StateLock, state_dir_of,
};
use crate::wait::{PollOptions, wait_for_count};

/// What to ingest and how: the input of [`prepare`].
#[derive(Debug, Clone)]
pub(crate) struct IngestSource {
    /// The input directory, canonical.
    pub(crate) input_dir: PathBuf,
    /// The manifest.
    pub(crate) state_file: PathBuf,
    /// The batch asked for (default: generated once, kept in the manifest).
    pub(crate) batch_id: Option<BatchId>,
    /// The workflow of the run (empty for an ingest alone).
    pub(crate) workflow_id: String,
    /// Images or videos (default: images if there are any).
    pub(crate) kind: Option<MediaKind>,
    /// Scan rules.
    pub(crate) scan: ScanOptions,
    /// Upload planning.
    pub(crate) plan: PlanOptions,
}

/// A scanned and planned (or resumed) ingest, its manifest saved.
#[derive(Debug)]
pub(crate) struct PreparedIngest {
    /// The manifest and its file.
    pub(crate) state: ManifestFile,
    /// The batch.
    pub(crate) batch: BatchId,
    /// The input directory, canonical.
    pub(crate) input_dir: PathBuf,
    /// Whether an earlier attempt's manifest was resumed.
    pub(crate) resumed: bool,
    /// Images found.
    pub(crate) images: usize,
    /// Videos found.
    pub(crate) videos: usize,
    /// Files not used, with the reason.
    pub(crate) skipped: Vec<SkippedFile>,
    /// Items the batch holds once every upload is done.
    pub(crate) expected: u64,
    /// Items uploaded by earlier attempts.
    pub(crate) uploaded_before: u64,
}

/// Scans the input and plans the uploads, or resumes the manifest an
/// earlier attempt left (reconciled with a fresh scan), and tells what it
/// found as events: `InputChanged`, `RunStarted`, `Scanned`, `FileSkipped`,
/// `Planned`. A directory without media of the run's kind is
/// [`Error::NoMedia`].
pub(crate) async fn prepare(ctx: &Context, source: IngestSource) -> Result<PreparedIngest> {
    let scan_source = source.clone();
    let prepared = tokio::task::spawn_blocking(move || open_or_plan(&scan_source))
        .await
        .map_err(|e| Error::InvalidInput {
            what: "scan",
            detail: e.to_string(),
        })??;
    let Prepared {
        mut manifest,
        scan,
        changes,
    } = prepared;
    warn_other_kind(ctx, manifest.run.kind, scan.other_kind).await;
    let resumed = changes.is_some();
    if let Some(rec) = changes {
        tell_changes(ctx, &manifest, rec).await;
    }
    manifest.ingest.skipped = scan.skipped.clone();
    let mut state = ManifestFile::new(manifest, &source.state_file);
    state.save()?;
    let batch = BatchId::new(state.run.batch_id.clone()).map_err(|e| Error::InvalidInput {
        what: "batch id in manifest",
        detail: e.to_string(),
    })?;
    let prepared = PreparedIngest {
        expected: state.expected_count(),
        uploaded_before: state.uploaded_count(),
        state,
        batch,
        input_dir: source.input_dir,
        resumed,
        images: scan.images,
        videos: scan.videos,
        skipped: scan.skipped,
    };
    tell_plan(ctx, &prepared, scan.hidden).await?;
    Ok(prepared)
}

/// Opens the manifest at `source.state_file` if it belongs to this run, or
/// plans a fresh one (blocking).
fn open_or_plan(source: &IngestSource) -> Result<Prepared> {
    let batch_id = source
        .batch_id
        .clone()
        .unwrap_or_else(BatchId::generate)
        .to_string();
    Manifest::open_or_plan(
        &source.state_file,
        FreshRun {
            input_dir: &source.input_dir,
            batch_id,
            workflow_id: source.workflow_id.clone(),
            kind: source.kind,
            scan: &source.scan,
            plan: &source.plan,
        },
        |m| check_same_run(source, m),
    )
}

/// [`Error::ForeignRun`] when the manifest records another run than
/// `source`: another input, workflow, kind or batch.
pub(super) fn check_same_run(source: &IngestSource, m: &Manifest) -> Result<()> {
    let run = &m.run;
    let same = run.input_dir == source.input_dir
        && run.workflow_id == source.workflow_id
        && source.kind.is_none_or(|k| k == run.kind)
        && source
            .batch_id
            .as_ref()
            .is_none_or(|b| b.as_str() == run.batch_id);
    if same {
        return Ok(());
    }
    let requested_batch = source
        .batch_id
        .as_ref()
        .map_or(run.batch_id.as_str(), BatchId::as_str);
    Err(Error::ForeignRun {
        path: source.state_file.clone(),
        existing: describe(&run.input_dir, &run.workflow_id, &run.batch_id),
        existing_input: run.input_dir.clone(),
        requested: describe(&source.input_dir, &source.workflow_id, requested_batch),
    })
}

fn describe(input: &Path, workflow: &str, batch: &str) -> String {
    format!(
        "input {} with workflow {workflow:?} into batch {batch:?}",
        input.display()
    )
}

async fn warn_other_kind(ctx: &Context, kind: MediaKind, other: usize) {
    if other > 0 {
        let msg = match kind {
            MediaKind::Image => format!("{other} videos skipped: this run processes images"),
            MediaKind::Video => format!("{other} images skipped: this run processes videos"),
        };
        ctx.warn(msg).await;
    }
}

/// Tells what changed in the input since an earlier attempt.
async fn tell_changes(ctx: &Context, manifest: &Manifest, rec: Reconciliation) {
    if let Some(job) = &manifest.job {
        let late = rec.added.len() + rec.changed_pending.len();
        if late > 0 {
            ctx.warn(format!(
                "{late} new or changed files will be uploaded to batch {} but job {} already started without them; use a new output directory for a new run",
                manifest.run.batch_id, job.job_id
            ))
            .await;
        }
    }
    if rec.is_empty() {
        return;
    }
    if let Some(first) = rec.changed_after_upload.first() {
        ctx.warn(format!(
            "{} files changed after they were uploaded; the batch keeps the uploaded version (first: {first})",
            rec.changed_after_upload.len(),
        ))
        .await;
    }
    ctx.emit(Event::InputChanged {
        changed_after_upload: rec.changed_after_upload,
        changed_pending: rec.changed_pending,
        vanished_pending: rec.vanished_pending,
        vanished_after_upload: rec.vanished_after_upload,
        added: rec.added,
        refused_fixed: rec.refused_fixed,
        refused_removed: rec.refused_removed,
    })
    .await;
}

/// Tells the run's start, the scan and the plan.
async fn tell_plan(ctx: &Context, p: &PreparedIngest, hidden: u64) -> Result<()> {
    ctx.emit(Event::RunStarted {
        batch_id: p.batch.to_string(),
        resumed: p.resumed,
        state_file: p.state.path().to_path_buf(),
    })
    .await;
    ctx.emit(Event::Scanned {
        images: p.images,
        videos: p.videos,
        skipped: p.skipped.len(),
        hidden,
    })
    .await;
    for file in &p.skipped {
        ctx.emit(Event::FileSkipped { file: file.clone() }).await;
    }
    if p.expected == 0 {
        return Err(Error::NoMedia {
            kind: p.state.run.kind,
            dir: p.input_dir.clone(),
        });
    }
    let ingest = &p.state.ingest;
    ctx.emit(Event::Planned {
        mode: ingest.mode,
        items: p.expected,
        already_uploaded: p.uploaded_before,
        singles_pending: ingest.singles.iter().filter(|s| !s.uploaded).count(),
        shards_pending: ingest.shards.iter().filter(|s| !s.uploaded).count(),
    })
    .await;
    Ok(())
}

/// How the upload stage runs.
#[derive(Debug, Clone)]
pub(crate) struct UploadStage<'a> {
    /// Concurrency, retries, display name.
    pub(crate) settings: &'a UploadSettings,
    /// The staging webhook sent in each shard (bulk mode only).
    pub(crate) notifications_url: Option<&'a str>,
    /// The first pause while a broken shard's batch settles.
    pub(crate) settle: Duration,
}

/// Uploads what the manifest still lacks. The workspace is resolved first:
/// a service that is down or a key it refuses stops the run here with one
/// clear error, rather than once per file. A cancelled upload is
/// [`Error::Cancelled`]; failed units are in the summary (see
/// [`UploadSummary::failed`]).
pub(crate) async fn upload(
    ctx: &Context,
    p: &mut PreparedIngest,
    stage: &UploadStage<'_>,
) -> Result<UploadSummary> {
    ctx.check_cancel()?;
    ctx.client.workspace().await?;
    let mut settings = stage.settings.clone();
    settings.notification = notification(ctx, p, stage.notifications_url).await;
    let target = UploadTarget {
        input_dir: p.input_dir.clone(),
        batch: p.batch.clone(),
        settings,
    };
    let summary = upload_all(ctx, &target, &mut p.state, stage.settle).await?;
    if summary.cancelled {
        return Err(Error::Cancelled);
    }
    Ok(summary)
}

/// The shard notification for `url`; single uploads have none (the service
/// sends no webhooks for them), which is said as a warning.
async fn notification(
    ctx: &Context,
    p: &PreparedIngest,
    url: Option<&str>,
) -> Option<ShardNotificationConfig> {
    let url = url?;
    if p.state.ingest.mode == UploadMode::Single {
        ctx.warn(
            "the staging notifications URL is ignored: the service sends no webhooks for single uploads (use bulk mode)".into(),
        )
        .await;
        return None;
    }
    Some(ShardNotificationConfig {
        ingest_id: IngestId::from(p.batch.as_str()),
        notifications_url: url.to_owned(),
    })
}

/// Waits until the batch holds every uploaded item (unless an earlier
/// attempt confirmed it), records the count and tells it; returns it.
pub(crate) async fn confirm_count(
    ctx: &Context,
    p: &mut PreparedIngest,
    poll: &PollOptions,
) -> Result<u64> {
    ctx.check_cancel()?;
    let expected = p.expected;
    let confirmed = match p.state.count_confirmed {
        Some(c) if c >= expected => c,
        _ => {
            let events = ctx.events.clone();
            let count = match wait_for_count(
                &ctx.client,
                p.batch.as_str(),
                expected,
                poll,
                &ctx.cancel,
                move |count| {
                    events.try_emit(Event::CountPolled { count, expected });
                },
            )
            .await
            {
                Ok(count) => count,
                Err(Error::CountTimeout(t)) if t.rejected > 0 => {
                    settle_refused(ctx, p, &t, poll).await?
                }
                Err(e) => return Err(e),
            };
            p.state.count_confirmed = Some(count);
            p.state.save()?;
            count
        }
    };
    if confirmed > expected {
        ctx.warn(format!(
            "batch {} holds {confirmed} items but this run uploaded {expected}; another writer may share the batch",
            p.batch
        ))
        .await;
    }
    ctx.emit(Event::CountConfirmed {
        count: confirmed,
        expected,
    })
    .await;
    Ok(confirmed)
}

/// Settles a count check that stopped on refused files (see [`settle`])
/// and records in the manifest which files were refused and whether they
/// are settled, so that a re-run tells them apart from uploaded files that
/// changed.
async fn settle_refused(
    ctx: &Context,
    p: &mut PreparedIngest,
    timeout: &CountTimeout,
    poll: &PollOptions,
) -> Result<u64> {
    let shortfall = Shortfall {
        state: &p.state,
        input_dir: &p.input_dir,
        batch: &p.batch,
        expected: p.expected,
    };
    let mut found = Vec::new();
    let settled = settle(ctx, shortfall, timeout, poll, &mut found).await;
    if !found.is_empty() {
        let refused = &mut p.state.ingest.refused;
        refused.retain(|r| !found.iter().any(|f| f.relative == r.relative));
        refused.extend(found);
        p.state.save()?;
    }
    settled
}

/// An ingest of a directory into a staging batch, alone (no job): what
/// `rf batch ingest` runs. See [`ingest`].
#[derive(Debug, Clone, PartialEq)]
pub struct IngestOptions {
    /// Directory of images or videos (read only).
    pub input_dir: PathBuf,
    /// The staging batch.
    pub batch_id: BatchId,
    /// Images or videos.
    pub kind: MediaKind,
    /// Where the manifest goes (anywhere outside `input_dir`; one manifest
    /// per batch lets a re-run resume).
    pub state_file: PathBuf,
    /// Scan rules.
    pub scan: ScanOptions,
    /// Upload planning.
    pub plan: PlanOptions,
    /// Upload concurrency, retries, display name.
    pub upload: UploadSettings,
    /// Staging webhook for shards (`notificationsURL`, bulk mode only).
    pub notifications_url: Option<String>,
    /// Wait for the batch to index every item, polling like this (default:
    /// return once uploaded).
    pub wait: Option<PollOptions>,
    /// Who the ingest says it is in its state directory's lock (default
    /// `an rf-batch ingest`).
    pub lock_owner: Option<String>,
}

impl IngestOptions {
    /// An ingest of `input_dir` into `batch_id` with every default, its
    /// manifest at `state_file`.
    pub fn new(
        input_dir: impl Into<PathBuf>,
        batch_id: BatchId,
        kind: MediaKind,
        state_file: impl Into<PathBuf>,
    ) -> IngestOptions {
        IngestOptions {
            input_dir: input_dir.into(),
            batch_id,
            kind,
            state_file: state_file.into(),
            scan: ScanOptions::default(),
            plan: PlanOptions::default(),
            upload: UploadSettings::default(),
            notifications_url: None,
            wait: None,
            lock_owner: None,
        }
    }

    /// Checks the options without creating or sending anything: the input
    /// directory opens, and the manifest is outside it.
    pub fn validate(&self) -> Result<()> {
        check_state_outside_input(&self.input_dir, &state_dir_of(&self.state_file))
    }
}

/// What an [`ingest`] did.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IngestReport {
    /// The batch.
    pub batch_id: String,
    /// Single uploads or tar shards.
    pub mode: Option<UploadMode>,
    /// Items the batch holds once everything is uploaded.
    pub items: u64,
    /// Items uploaded now.
    pub uploaded_now: u64,
    /// Items uploaded by earlier attempts.
    pub uploaded_before: u64,
    /// Shards uploaded now.
    pub shards_uploaded_now: usize,
    /// The batch count, when waited for.
    pub count: Option<u64>,
    /// The manifest.
    pub state_file: PathBuf,
    /// Whether an earlier attempt was resumed.
    pub resumed: bool,
    /// Files not used, with the reason.
    pub skipped: Vec<SkippedFile>,
    /// What the upload concurrency limit did (where it settled).
    pub concurrency: Option<LimitReport>,
    /// Warnings said during the ingest.
    pub warnings: Vec<String>,
    /// How long it took.
    #[serde(serialize_with = "crate::events::seconds")]
    pub took: Duration,
}

/// Ingests a directory into a batch, resumably: scan and plan (or resume
/// the manifest at `options.state_file`), upload what is missing, and with
/// `options.wait` wait until the batch holds every item. Holds the state
/// directory's lock throughout ([`StateLock`]). Failed uploads are
/// [`Error::UploadsFailed`]; a re-run sends only what is missing.
///
/// ```no_run
/// # async fn demo() -> Result<(), rf_batch::Error> {
/// use rf_batch::ingest::MediaKind;
/// use rf_batch::pipeline::{IngestOptions, ingest};
/// use rf_batch::{Client, Context};
/// use rf_types::BatchId;
/// let ctx = Context::new(Client::builder().api_key("key").build()?);
/// let batch = BatchId::new("my-batch").expect("a valid batch id");
/// let options = IngestOptions::new("images/", batch, MediaKind::Image, "state/rf-run.json");
/// let report = ingest(&ctx, &options).await?;
/// println!("{} items uploaded now", report.uploaded_now);
/// # Ok(()) }
/// ```
pub async fn ingest(ctx: &Context, options: &IngestOptions) -> Result<IngestReport> {
    let started = Instant::now();
    options.validate()?;
    let _lock = StateLock::acquire(
        &state_dir_of(&options.state_file),
        options
            .lock_owner
            .as_deref()
            .unwrap_or("an rf-batch ingest"),
    )?;
    let (input_dir, _) = input_dir(&options.input_dir)?;
    let mut p = prepare(ctx, source_of(options, input_dir)).await?;
    let stage = UploadStage {
        settings: &options.upload,
        notifications_url: options.notifications_url.as_deref(),
        settle: Duration::from_millis(500),
    };
    let summary = upload(ctx, &mut p, &stage).await?;
    if let Some(failed) = summary.failed() {
        return Err(failed);
    }
    let count = match &options.wait {
        Some(poll) => Some(confirm_count(ctx, &mut p, poll).await?),
        None => None,
    };
    Ok(IngestReport {
        batch_id: p.batch.to_string(),
        mode: Some(p.state.ingest.mode),
        items: p.expected,
        uploaded_now: summary.items,
        uploaded_before: p.uploaded_before,
        shards_uploaded_now: summary.shards,
        count,
        state_file: p.state.path().to_path_buf(),
        resumed: p.resumed,
        skipped: p.skipped,
        concurrency: summary.concurrency,
        warnings: ctx.take_warnings(),
        took: started.elapsed(),
    })
}

fn source_of(options: &IngestOptions, input_dir: PathBuf) -> IngestSource {
    IngestSource {
        input_dir,
        state_file: options.state_file.clone(),
        batch_id: Some(options.batch_id.clone()),
        workflow_id: String::new(),
        kind: Some(options.kind),
        scan: options.scan.clone(),
        plan: options.plan.clone(),
    }
}
