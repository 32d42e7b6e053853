//! The whole run: scan → plan → upload → count check → job → wait → export.
//!
//! ```no_run
//! # async fn demo() -> Result<(), rf_batch::Error> {
//! use rf_batch::{Client, Pipeline, RunConfig};
//! let client = Client::builder().api_key("key").build()?;
//! let config = RunConfig::new("images/", "out/", "my-workflow");
//! let (tx, mut rx) = tokio::sync::mpsc::channel(64);
//! let printer = tokio::spawn(async move {
//!     while let Some(event) = rx.recv().await { let _ = event; /* render it */ }
//! });
//! let report = Pipeline::new(client, config).events(tx).run().await?;
//! printer.await.ok();
//! println!("{} items, job {}", report.confirmed_count, report.job_id);
//! # Ok(()) }
//! ```
//!
//! **Resume.** Every step is recorded in the run manifest
//! (`<state_dir>/rf-run.json`, by default `<output_dir>/.rf-state/`) before it
//! is reported. Running the same configuration again picks up where the last
//! attempt stopped: uploaded files and shards are not sent again, an existing
//! job is followed rather than recreated, downloaded files are not fetched
//! again. Inputs that changed since are detected by size and modification time
//! (see [`crate::state::Manifest::reconcile`]).
//!
//! **One at a time.** A run holds its state directory's lock
//! ([`crate::state::StateLock`]) from start to end; a second run over the
//! same directory fails at once with [`crate::state::StateError::InUse`].
//!
//! **Cancellation.** Cancelling the token stops the run at the next safe
//! point: no new upload or download starts, those in flight finish and are
//! recorded, and `run` returns [`Error::Cancelled`](crate::Error::Cancelled). The job keeps running on
//! the service; a re-run follows it.

#[cfg(feature = "cloud")]
mod bucket;
mod dry_run;
mod export;
mod ingest;
mod job;
mod paths;
mod refused;

use std::path::PathBuf;
use std::time::Instant;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use self::dry_run::{DryRun, NameCollision, Tally, dry_run, dry_run_ingest};
pub use self::export::{EXPORT_MANIFEST, ExportOptions, ExportReport, export};
pub use self::ingest::{IngestOptions, IngestReport, ingest};

use self::export::download_batch;
use self::ingest::{IngestSource, PreparedIngest, UploadStage, confirm_count, prepare, upload};
use self::paths::RunPaths;
use crate::client::Client;
use crate::context::Context;
use crate::error::Result;
use crate::events::{Event, EventSink, RunReport};
use crate::export::{
    DownloadSettings, DownloadSummary, DownloadTarget, ExportPlan, find_export_batch,
};
use crate::ingest::{MediaKind, PlanOptions, ScanOptions, UploadSettings, UploadSummary};
use crate::job::JobSettings;
use crate::state::{MANIFEST_FILE, StateLock, state_dir_of};
use crate::wait::PollOptions;
use rf_types::{BatchId, JobId};

/// Everything a run needs besides the client.
#[derive(Debug, Clone, PartialEq)]
pub struct RunConfig {
    /// Directory of images or videos to process (read only).
    pub input_dir: PathBuf,
    /// Where results go (created if needed; must not be inside `input_dir`).
    pub output_dir: PathBuf,
    /// Where the manifest goes (default `<output_dir>/.rf-state`).
    pub state_dir: Option<PathBuf>,
    /// The workflow to run.
    pub workflow_id: String,
    /// The staging batch (default: generated once and kept in the manifest).
    pub batch_id: Option<BatchId>,
    /// The batch's display name.
    pub batch_name: Option<String>,
    /// The job ID (default: generated once and kept in the manifest).
    pub job_id: Option<JobId>,
    /// The job's display name.
    pub job_name: Option<String>,
    /// Images or videos (default: images if there are any, else videos).
    pub kind: Option<MediaKind>,
    /// Scan rules.
    pub scan: ScanOptions,
    /// Upload planning.
    pub plan: PlanOptions,
    /// Upload concurrency and retries.
    pub upload: UploadSettings,
    /// Staging webhook for shards (`notificationsURL`); sent in each shard.
    pub staging_notifications_url: Option<String>,
    /// Every option of the job.
    pub job: JobSettings,
    /// Count check polling (default: up to 10 minutes).
    pub count_poll: PollOptions,
    /// Job polling (default: no deadline).
    pub job_poll: PollOptions,
    /// Download concurrency and extraction.
    pub download: DownloadSettings,
    /// Stop after the job finished, without downloading (default false).
    pub skip_export: bool,
    /// Also upload the results into this bucket once downloaded into
    /// `output_dir` (which is then the staging directory; see
    /// [`crate::export::bucket`]).
    #[cfg(feature = "cloud")]
    pub out_bucket: Option<crate::export::bucket::BucketTarget>,
    /// Who the run says it is in its state directory's lock, for a second
    /// run refused while this one holds it (default `an rf-batch pipeline`;
    /// see [`crate::state::StateLock`]).
    pub lock_owner: Option<String>,
    /// Ingest from this bucket instead of `input_dir` (by reference:
    /// listed, presigned and sent as it is listed; see
    /// [`crate::ingest::cloud`]). Credentials come from the process
    /// environment ([`crate::cloud::open`]).
    #[cfg(feature = "cloud")]
    pub bucket: Option<crate::cloud::CloudUrl>,
    /// How long the presigned URLs of a bucket ingest stay valid (default
    /// [`crate::ingest::DEFAULT_PRESIGN_EXPIRY`]).
    #[cfg(feature = "cloud")]
    pub presign_expiry: std::time::Duration,
}

impl RunConfig {
    /// A configuration with every default.
    pub fn new(
        input_dir: impl Into<PathBuf>,
        output_dir: impl Into<PathBuf>,
        workflow_id: impl Into<String>,
    ) -> Self {
        RunConfig {
            input_dir: input_dir.into(),
            output_dir: output_dir.into(),
            state_dir: None,
            workflow_id: workflow_id.into(),
            batch_id: None,
            batch_name: None,
            job_id: None,
            job_name: None,
            kind: None,
            scan: ScanOptions::default(),
            plan: PlanOptions::default(),
            upload: UploadSettings::default(),
            staging_notifications_url: None,
            job: JobSettings::default(),
            count_poll: PollOptions::default(),
            job_poll: PollOptions {
                timeout: None,
                ..PollOptions::default()
            },
            download: DownloadSettings::default(),
            skip_export: false,
            #[cfg(feature = "cloud")]
            out_bucket: None,
            lock_owner: None,
            #[cfg(feature = "cloud")]
            bucket: None,
            #[cfg(feature = "cloud")]
            presign_expiry: crate::ingest::DEFAULT_PRESIGN_EXPIRY,
        }
    }

    /// The manifest path this configuration uses.
    pub fn state_file(&self) -> PathBuf {
        self.state_dir
            .clone()
            .unwrap_or_else(|| self.output_dir.join(".rf-state"))
            .join(MANIFEST_FILE)
    }

    /// Checks the configuration without creating or sending anything: the
    /// input directory opens, the output and state directories are outside
    /// it ([`crate::Error::OutputInsideInput`], [`crate::Error::StateInsideInput`]), and
    /// the job options are valid for the kind of media (when the kind is
    /// given; otherwise the run checks them once the scan has chosen it).
    /// [`Pipeline::run`] checks the same before it starts.
    pub fn validate(&self) -> Result<()> {
        if self.has_bucket() {
            paths::check_dir_or_absent(&self.output_dir, crate::DirRole::Output)?;
            if let Some(dir) = &self.state_dir {
                paths::check_dir_or_absent(dir, crate::DirRole::State)?;
            }
        } else {
            paths::check_outside_input(
                &self.input_dir,
                &self.output_dir,
                self.state_dir.as_deref(),
            )?;
        }
        if let Some(kind) = self.kind {
            self.job.validate(kind, &self.workflow_id)?;
        }
        Ok(())
    }
}

impl RunConfig {
    /// Whether the input is a bucket rather than `input_dir`.
    fn has_bucket(&self) -> bool {
        #[cfg(feature = "cloud")]
        return self.bucket.is_some();
        #[cfg(not(feature = "cloud"))]
        false
    }

    fn paths(&self) -> Result<RunPaths> {
        #[cfg(feature = "cloud")]
        if let Some(url) = &self.bucket {
            return RunPaths::resolve_remote(
                url.as_str(),
                &self.output_dir,
                self.state_dir.as_deref(),
            );
        }
        RunPaths::resolve(&self.input_dir, &self.output_dir, self.state_dir.as_deref())
    }
}

/// Runs a [`RunConfig`]; see the module docs.
#[derive(Debug)]
pub struct Pipeline {
    client: Client,
    config: RunConfig,
    events: EventSink,
    cancel: CancellationToken,
}

impl Pipeline {
    /// A pipeline over `client`.
    pub fn new(client: Client, config: RunConfig) -> Self {
        Pipeline {
            client,
            config,
            events: EventSink::none(),
            cancel: CancellationToken::new(),
        }
    }

    /// Send progress events to `tx` (a bounded channel; keep draining it).
    pub fn events(mut self, tx: mpsc::Sender<Event>) -> Self {
        self.events = EventSink::new(tx);
        self
    }

    /// Send progress events to `events` (for a sink shared with other
    /// steps).
    pub fn events_to(mut self, events: EventSink) -> Self {
        self.events = events;
        self
    }

    /// Stop cleanly when `token` is cancelled.
    pub fn cancel_token(mut self, token: CancellationToken) -> Self {
        self.cancel = token;
        self
    }

    /// Runs (or resumes) the whole pipeline and reports what it did.
    pub async fn run(self) -> Result<RunReport> {
        let (report, outcome) = self.run_with_report().await;
        outcome.map(|()| report)
    }

    /// Like [`Pipeline::run`], but returns the report even when the run
    /// fails, with what was done up to the failure (IDs, counts, timings,
    /// and the individual upload and download failures in
    /// [`RunReport::failures`]).
    pub async fn run_with_report(self) -> (RunReport, Result<()>) {
        let ctx = Context::new(self.client)
            .with_events(self.events)
            .with_cancel(self.cancel);
        let mut run = Run {
            ctx,
            config: self.config,
            report: RunReport::default(),
        };
        let started = Instant::now();
        let retries_before = run.transport_retries();
        let outcome = run.execute().await;
        let report = &mut run.report;
        report.transport_retries = run
            .ctx
            .client
            .retry_stats()
            .map_or(0, |s| s.retries())
            .saturating_sub(retries_before);
        report.retries = report.transport_retries + report.upload_retries + report.download_retries;
        report.warnings = run.ctx.take_warnings();
        report.timings.total = started.elapsed();
        (run.report, outcome)
    }
}

/// One run of the pipeline: its context, configuration and report so far.
struct Run {
    ctx: Context,
    config: RunConfig,
    report: RunReport,
}

impl Run {
    fn transport_retries(&self) -> u64 {
        self.ctx.client.retry_stats().map_or(0, |s| s.retries())
    }

    async fn execute(&mut self) -> Result<()> {
        let phase = Instant::now();
        self.config.validate()?;
        let paths = self.config.paths()?;
        self.report.output_dir = paths.output_dir.clone();
        self.report.state_file = paths.state_file.clone();
        // One run at a time per state directory, held until the run ends.
        let _lock = StateLock::acquire(
            &state_dir_of(&paths.state_file),
            self.config
                .lock_owner
                .as_deref()
                .unwrap_or("an rf-batch pipeline"),
        )?;
        #[cfg(feature = "cloud")]
        if let Some(bucket) = &self.config.out_bucket {
            bucket.check().await?;
        }
        let mut ingest = self.ingest(&paths, phase).await?;

        let phase = Instant::now();
        self.report.confirmed_count =
            confirm_count(&self.ctx, &mut ingest, &self.config.count_poll).await?;
        self.report.timings.count = phase.elapsed();

        let phase = Instant::now();
        let (job_id, progress) =
            job::run_job(&self.ctx, &self.config, &mut ingest.state, &ingest.batch).await?;
        self.report.job_id = job_id.to_string();
        self.report.job = Some(progress);
        self.report.timings.job = phase.elapsed();
        if self.config.skip_export {
            return Ok(());
        }

        let phase = Instant::now();
        let exported = self.export(&mut ingest, &job_id, paths.output_dir).await;
        self.report.timings.export = phase.elapsed();
        exported
    }

    /// The ingest stages: scan, plan and upload a directory, or ingest a
    /// bucket by reference.
    async fn ingest(&mut self, paths: &RunPaths, phase: Instant) -> Result<PreparedIngest> {
        #[cfg(feature = "cloud")]
        if let Some(url) = self.config.bucket.clone() {
            let source = bucket::BucketSource {
                url: &url,
                state_file: paths.state_file.clone(),
                batch_id: self.config.batch_id.clone(),
                workflow_id: &self.config.workflow_id,
                kind: self.config.kind.unwrap_or(MediaKind::Image),
                presign_expiry: self.config.presign_expiry,
                display_name: self.config.batch_name.clone(),
                notifications_url: self.config.staging_notifications_url.clone(),
                max_image_bytes: self.config.scan.max_image_bytes,
            };
            let ingest = bucket::ingest_bucket(&self.ctx, source).await?;
            self.note_prepared(&ingest);
            self.report.uploaded_now = ingest.expected - ingest.uploaded_before;
            self.report.timings.ingest = phase.elapsed();
            return Ok(ingest);
        }
        let mut ingest = prepare(&self.ctx, self.source(paths)).await?;
        self.note_prepared(&ingest);
        self.report.timings.scan = phase.elapsed();

        let phase = Instant::now();
        let uploaded = self.upload(&mut ingest).await;
        self.report.timings.ingest = phase.elapsed();
        uploaded?;
        Ok(ingest)
    }

    /// What the scan of this run reads, and where its manifest goes.
    fn source(&self, paths: &RunPaths) -> IngestSource {
        IngestSource {
            input_dir: paths.input_dir.clone(),
            state_file: paths.state_file.clone(),
            batch_id: self.config.batch_id.clone(),
            workflow_id: self.config.workflow_id.clone(),
            kind: self.config.kind,
            scan: self.config.scan.clone(),
            plan: self.config.plan.clone(),
        }
    }

    fn note_prepared(&mut self, p: &PreparedIngest) {
        let report = &mut self.report;
        report.images_found = p.images;
        report.videos_found = p.videos;
        report.batch_id = p.batch.to_string();
        report.resumed = p.resumed;
        report.mode = Some(p.state.ingest.mode);
        report.skipped = p.skipped.clone();
        report.expected_count = p.expected;
        report.uploaded_before = p.uploaded_before;
    }

    /// The upload stage; failed units are recorded in the report and end
    /// the run.
    async fn upload(&mut self, ingest: &mut PreparedIngest) -> Result<()> {
        let mut settings = self.config.upload.clone();
        if settings.display_name.is_none() {
            settings.display_name = self.config.batch_name.clone();
        }
        let stage = UploadStage {
            settings: &settings,
            notifications_url: self.config.staging_notifications_url.as_deref(),
            settle: self.config.count_poll.initial_interval,
        };
        let summary = upload(&self.ctx, ingest, &stage).await?;
        self.note_upload(&summary);
        match summary.failed() {
            Some(failed) => Err(failed),
            None => Ok(()),
        }
    }

    fn note_upload(&mut self, summary: &UploadSummary) {
        self.report.uploaded_now = summary.items;
        self.report.shards_uploaded_now = summary.shards;
        self.report.upload_retries = summary.resent;
        self.report.upload_concurrency = summary.concurrency;
        self.report.failures.extend(
            summary
                .failures
                .iter()
                .map(|(unit, err)| format!("upload {unit}: {err}")),
        );
    }

    /// The export stage: the job's output batch (found once, kept in the
    /// manifest) downloaded into the output directory.
    async fn export(
        &mut self,
        ingest: &mut PreparedIngest,
        job_id: &JobId,
        output_dir: PathBuf,
    ) -> Result<()> {
        self.ctx.check_cancel()?;
        let state = &mut ingest.state;
        let output_batch = match state.export.output_batch.clone() {
            Some(b) => b,
            None => {
                let b = find_export_batch(&self.ctx.client, job_id.as_str()).await?;
                state.export.output_batch = Some(b.clone());
                state.save()?;
                b
            }
        };
        self.report.output_batch = Some(output_batch.clone());
        let target = DownloadTarget {
            out_dir: output_dir,
            settings: self.config.download.clone(),
        };
        let plan = ExportPlan::ask(&self.ctx.client, &output_batch, &[]).await?;
        let summary = download_batch(&self.ctx, &plan, &target, state).await?;
        self.note_download(&summary);
        if let Some(failed) = summary.failed() {
            return Err(failed);
        }
        state.export.complete = true;
        state.save()?;
        #[cfg(feature = "cloud")]
        if let Some(bucket) = &self.config.out_bucket {
            let dir = self.report.output_dir.clone();
            self.report.out_bucket =
                Some(crate::export::bucket::upload_dir(&self.ctx, &dir, bucket).await?);
        }
        Ok(())
    }

    fn note_download(&mut self, summary: &DownloadSummary) {
        let report = &mut self.report;
        report.downloaded_before = summary.already;
        report.download_retries += summary.retried;
        report.downloaded_now = summary.files;
        report.download_concurrency = summary.concurrency;
        report.bytes_downloaded = summary.bytes;
        report.extracted_files = summary.extracted_files;
        report.refused_entries = summary.refused.clone();
        report.failures.extend(
            summary
                .failures
                .iter()
                .map(|(file, err)| format!("download {file}: {err}")),
        );
    }
}
