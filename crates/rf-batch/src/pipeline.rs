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
//! recorded, and `run` returns [`Error::Cancelled`]. The job keeps running on
//! the service; a re-run follows it.

use std::path::{Path, PathBuf};
use std::time::Instant;

use rf_types::{BatchId, JobId, ShardNotificationConfig};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::client::Client;
use crate::error::{Error, Result};
use crate::events::{Event, EventSink, RunReport};
use crate::export::{
    DownloadSettings, download_stream, export_count, export_files, find_export_batch,
};
use crate::ingest::{MediaKind, PlanOptions, ScanOptions, UploadSettings, upload_all};
use crate::job::{JobSettings, JobStart, build_definition, follow_or_start_job};
use crate::state::{
    FreshRun, JobRecord, MANIFEST_FILE, Manifest, Prepared, StateLock, state_dir_of,
};
use crate::wait::{PollOptions, wait_for_count, wait_for_job};

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
    /// Who the run says it is in its state directory's lock, for a second
    /// run refused while this one holds it (default `an rf-batch pipeline`;
    /// see [`crate::state::StateLock`]).
    pub lock_owner: Option<String>,
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
            lock_owner: None,
        }
    }

    /// The manifest path this configuration uses.
    pub fn state_file(&self) -> PathBuf {
        self.state_dir
            .clone()
            .unwrap_or_else(|| self.output_dir.join(".rf-state"))
            .join(MANIFEST_FILE)
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
        let mut run = Run {
            client: self.client,
            config: self.config,
            events: self.events,
            cancel: self.cancel,
            report: RunReport::default(),
            started: Instant::now(),
        };
        let retries_before = run.client.retry_stats().map_or(0, |s| s.retries());
        let outcome = run.execute().await;
        run.report.transport_retries = run
            .client
            .retry_stats()
            .map_or(0, |s| s.retries())
            .saturating_sub(retries_before);
        run.report.retries =
            run.report.transport_retries + run.report.upload_retries + run.report.download_retries;
        run.report.timings.total = run.started.elapsed();
        (run.report, outcome)
    }
}

struct Run {
    client: Client,
    config: RunConfig,
    events: EventSink,
    cancel: CancellationToken,
    report: RunReport,
    started: Instant,
}

fn io_err(context: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.to_path_buf();
    move |source| Error::Io {
        context,
        path,
        source,
    }
}

impl Run {
    async fn warn(&mut self, message: String) {
        self.report.warnings.push(message.clone());
        self.events.emit(Event::Warning { message }).await;
    }

    fn check_cancel(&self) -> Result<()> {
        if self.cancel.is_cancelled() {
            Err(Error::Cancelled)
        } else {
            Ok(())
        }
    }

    async fn execute(&mut self) -> Result<()> {
        let phase = Instant::now();
        let input_dir = std::fs::canonicalize(&self.config.input_dir).map_err(io_err(
            "cannot open input directory",
            &self.config.input_dir,
        ))?;
        // Refuse an output directory inside the input before creating it.
        let requested_out = std::path::absolute(&self.config.output_dir).map_err(io_err(
            "cannot resolve output directory",
            &self.config.output_dir,
        ))?;
        let requested_in = std::path::absolute(&self.config.input_dir).map_err(io_err(
            "cannot resolve input directory",
            &self.config.input_dir,
        ))?;
        if requested_out.starts_with(&requested_in) || requested_out.starts_with(&input_dir) {
            return Err(Error::InvalidInput {
                what: "output directory",
                detail: format!(
                    "{} is inside the input directory {}; results would be uploaded by the next run",
                    requested_out.display(),
                    input_dir.display()
                ),
            });
        }
        std::fs::create_dir_all(&self.config.output_dir).map_err(io_err(
            "cannot create output directory",
            &self.config.output_dir,
        ))?;
        let output_dir = std::fs::canonicalize(&self.config.output_dir).map_err(io_err(
            "cannot open output directory",
            &self.config.output_dir,
        ))?;
        if output_dir.starts_with(&input_dir) {
            return Err(Error::InvalidInput {
                what: "output directory",
                detail: format!(
                    "{} is inside the input directory {}; results would be uploaded by the next run",
                    output_dir.display(),
                    input_dir.display()
                ),
            });
        }
        let state_path = match &self.config.state_dir {
            Some(dir) => {
                let requested = std::path::absolute(dir)
                    .map_err(io_err("cannot resolve state directory", dir))?;
                if requested.starts_with(&requested_in) || requested.starts_with(&input_dir) {
                    return Err(Error::InvalidInput {
                        what: "state directory",
                        detail: "the run manifest must not be written into the input directory"
                            .into(),
                    });
                }
                std::fs::create_dir_all(dir)
                    .map_err(io_err("cannot create state directory", dir))?;
                std::fs::canonicalize(dir)
                    .map_err(io_err("cannot open state directory", dir))?
                    .join(MANIFEST_FILE)
            }
            None => output_dir.join(".rf-state").join(MANIFEST_FILE),
        };
        if state_path.starts_with(&input_dir) {
            return Err(Error::InvalidInput {
                what: "state directory",
                detail: "the run manifest must not be written into the input directory".into(),
            });
        }
        self.report.output_dir = output_dir.clone();
        self.report.state_file = state_path.clone();
        // One run at a time per state directory, held until the run ends.
        let _lock = StateLock::acquire(
            &state_dir_of(&state_path),
            self.config
                .lock_owner
                .as_deref()
                .unwrap_or("an rf-batch pipeline"),
        )?;

        // Scan and plan (blocking file system walk). A fresh run writes its
        // plan to disk as it scans; a resumed one reconciles its manifest
        // with a fresh scan.
        let scan_options = self.config.scan.clone();
        let plan_options = self.config.plan.clone();
        let root = input_dir.clone();
        let path = state_path.clone();
        let workflow_id = self.config.workflow_id.clone();
        let requested_kind = self.config.kind;
        let requested_batch = self.config.batch_id.clone();
        let prepared = tokio::task::spawn_blocking(move || {
            let batch_id = requested_batch
                .clone()
                .unwrap_or_else(BatchId::generate)
                .to_string();
            Manifest::open_or_plan(
                &path,
                FreshRun {
                    input_dir: &root,
                    batch_id,
                    workflow_id: workflow_id.clone(),
                    kind: requested_kind,
                    scan: &scan_options,
                    plan: &plan_options,
                },
                |m| {
                    if m.run.input_dir != root
                        || m.run.workflow_id != workflow_id
                        || requested_kind.is_some_and(|k| k != m.run.kind)
                        || requested_batch
                            .as_ref()
                            .is_some_and(|b| b.as_str() != m.run.batch_id)
                    {
                        return Err(Error::ForeignRun {
                            path: path.clone(),
                            existing: describe(
                                &m.run.input_dir,
                                &m.run.workflow_id,
                                &m.run.batch_id,
                            ),
                            requested: describe(
                                &root,
                                &workflow_id,
                                requested_batch
                                    .as_ref()
                                    .map(|b| b.as_str())
                                    .unwrap_or(&m.run.batch_id),
                            ),
                        });
                    }
                    Ok(())
                },
            )
        })
        .await
        .map_err(|e| Error::InvalidInput {
            what: "scan",
            detail: e.to_string(),
        })??;
        let Prepared {
            mut manifest,
            scan: scanned,
            changes,
        } = prepared;
        let kind = manifest.run.kind;
        if scanned.other_kind > 0 {
            let other = scanned.other_kind;
            let msg = match kind {
                MediaKind::Image => format!("{other} videos skipped: this run processes images"),
                MediaKind::Video => format!("{other} images skipped: this run processes videos"),
            };
            self.warn(msg).await;
        }
        self.report.images_found = scanned.images;
        self.report.videos_found = scanned.videos;
        let resumed = changes.is_some();
        if let Some(rec) = changes {
            if let Some(job) = &manifest.job {
                let late = rec.added.len() + rec.changed_pending.len();
                if late > 0 {
                    let msg = format!(
                        "{late} new or changed files will be uploaded to batch {} but job {} already started without them; use a new output directory for a new run",
                        manifest.run.batch_id, job.job_id
                    );
                    self.warn(msg).await;
                }
            }
            if !rec.is_empty() {
                if !rec.changed_after_upload.is_empty() {
                    let msg = format!(
                        "{} files changed after they were uploaded; the batch keeps the uploaded version (first: {})",
                        rec.changed_after_upload.len(),
                        rec.changed_after_upload[0]
                    );
                    self.warn(msg).await;
                }
                self.events
                    .emit(Event::InputChanged {
                        changed_after_upload: rec.changed_after_upload,
                        changed_pending: rec.changed_pending,
                        vanished_pending: rec.vanished_pending,
                        added: rec.added,
                    })
                    .await;
            }
        }
        let skipped = scanned.skipped;
        manifest.ingest.skipped = skipped.clone();
        manifest.save(&state_path)?;
        let batch_id =
            BatchId::new(manifest.run.batch_id.clone()).map_err(|e| Error::InvalidInput {
                what: "batch id in manifest",
                detail: e.to_string(),
            })?;
        self.report.batch_id = batch_id.to_string();
        self.report.resumed = resumed;
        self.report.mode = Some(manifest.ingest.mode);
        self.report.skipped = skipped.clone();
        self.events
            .emit(Event::RunStarted {
                batch_id: batch_id.to_string(),
                resumed,
                state_file: state_path.clone(),
            })
            .await;
        self.events
            .emit(Event::Scanned {
                images: scanned.images,
                videos: scanned.videos,
                skipped: skipped.len(),
                hidden: scanned.hidden,
            })
            .await;
        for file in skipped {
            self.events.emit(Event::FileSkipped { file }).await;
        }
        let expected = manifest.expected_count();
        if expected == 0 {
            return Err(Error::InvalidInput {
                what: "input directory",
                detail: format!(
                    "no {} found in {}",
                    match kind {
                        MediaKind::Image => "images",
                        MediaKind::Video => "videos",
                    },
                    input_dir.display()
                ),
            });
        }
        self.report.expected_count = expected;
        self.report.uploaded_before = manifest.uploaded_count();
        self.events
            .emit(Event::Planned {
                mode: manifest.ingest.mode,
                items: expected,
                already_uploaded: manifest.uploaded_count(),
                singles_pending: manifest
                    .ingest
                    .singles
                    .iter()
                    .filter(|s| !s.uploaded)
                    .count(),
                shards_pending: manifest
                    .ingest
                    .shards
                    .iter()
                    .filter(|s| !s.uploaded)
                    .count(),
            })
            .await;
        self.report.timings.scan = phase.elapsed();

        // Upload. Resolve the workspace first: a service that is down or a
        // key it refuses stops the run here with one clear error, rather
        // than once per file.
        let phase = Instant::now();
        self.check_cancel()?;
        self.client.workspace().await?;
        let mut upload = self.config.upload.clone();
        if upload.display_name.is_none() {
            upload.display_name = self.config.batch_name.clone();
        }
        if let Some(url) = &self.config.staging_notifications_url {
            upload.notification = Some(ShardNotificationConfig {
                ingest_id: rf_types::IngestId::from(batch_id.as_str()),
                notifications_url: url.clone(),
            });
        }
        let summary = upload_all(
            &self.client,
            &input_dir,
            &batch_id,
            &mut manifest,
            &state_path,
            &upload,
            self.config.count_poll.initial_interval,
            &self.events,
            &self.cancel,
        )
        .await?;
        self.report.uploaded_now = summary.items;
        self.report.shards_uploaded_now = summary.shards;
        self.report.upload_retries = summary.resent;
        if summary.cancelled {
            self.report.timings.ingest = phase.elapsed();
            return Err(Error::Cancelled);
        }
        self.report.timings.ingest = phase.elapsed();
        self.report.failures.extend(
            summary
                .failures
                .iter()
                .map(|(unit, err)| format!("upload {unit}: {err}")),
        );
        if let Some((unit, err)) = summary.failures.first() {
            return Err(Error::UploadsFailed {
                failed: summary.failures.len(),
                total: summary.failures.len() + summary.units,
                first: format!("{unit}: {err}"),
            });
        }

        // Count check.
        let phase = Instant::now();
        self.check_cancel()?;
        let confirmed = match manifest.count_confirmed {
            Some(c) if c >= expected => c,
            _ => {
                let events = self.events.clone();
                let count = wait_for_count(
                    &self.client,
                    batch_id.as_str(),
                    expected,
                    &self.config.count_poll,
                    &self.cancel,
                    move |count| {
                        events.try_emit(Event::CountPolled { count, expected });
                    },
                )
                .await;
                let count = count?;
                manifest.count_confirmed = Some(count);
                manifest.save(&state_path)?;
                count
            }
        };
        if confirmed > expected {
            self.warn(format!(
                "batch {batch_id} holds {confirmed} items but this run uploaded {expected}; another writer may share the batch"
            ))
            .await;
        }
        self.report.confirmed_count = confirmed;
        self.events
            .emit(Event::CountConfirmed {
                count: confirmed,
                expected,
            })
            .await;
        self.report.timings.count = phase.elapsed();

        // Job.
        let phase = Instant::now();
        self.check_cancel()?;
        if manifest.job.is_none() {
            let job_id = match &self.config.job_id {
                Some(j) => j.clone(),
                None => JobId::generate(),
            };
            manifest.job = Some(JobRecord {
                job_id: job_id.to_string(),
                created: false,
                terminal: false,
                error: false,
            });
            manifest.save(&state_path)?;
        }
        let record = manifest.job.clone().ok_or(Error::Cancelled)?;
        let job_id = JobId::new(record.job_id.clone()).map_err(|e| Error::InvalidInput {
            what: "job id",
            detail: e.to_string(),
        })?;
        self.report.job_id = job_id.to_string();
        if !record.created {
            // The ID was saved before the job was created: a job under it may
            // come from an earlier attempt whose answer was lost. Follow it
            // only if it runs this run's definition.
            let workspace = self.client.workspace().await?;
            let definition = build_definition(
                kind,
                &batch_id,
                &workspace,
                &self.config.workflow_id,
                &self.config.job,
            )?;
            let outcome = follow_or_start_job(
                &self.client,
                &job_id,
                &definition,
                self.config.job_name.as_deref(),
            )
            .await?;
            let event = match outcome {
                JobStart::Created => Event::JobCreated {
                    job_id: job_id.to_string(),
                },
                JobStart::Existing => Event::JobResumed {
                    job_id: job_id.to_string(),
                },
            };
            self.events.emit(event).await;
            if let Some(j) = manifest.job.as_mut() {
                j.created = true;
            }
            manifest.save(&state_path)?;
        } else if !record.terminal {
            self.events
                .emit(Event::JobResumed {
                    job_id: job_id.to_string(),
                })
                .await;
        }
        if !record.terminal || record.error {
            let events = self.events.clone();
            let outcome = wait_for_job(
                &self.client,
                job_id.as_str(),
                &self.config.job_poll,
                &self.cancel,
                move |p| {
                    events.try_emit(Event::JobProgress(p.clone()));
                },
            )
            .await;
            let failed = matches!(outcome, Err(Error::JobFailed { .. }));
            if outcome.is_ok() || failed {
                if let Some(j) = manifest.job.as_mut() {
                    j.terminal = true;
                    j.error = failed;
                }
                manifest.save(&state_path)?;
                self.events
                    .emit(Event::JobFinished {
                        job_id: job_id.to_string(),
                        error: failed,
                    })
                    .await;
            }
            self.report.job = Some(outcome?);
        }
        self.report.timings.job = phase.elapsed();
        if self.config.skip_export {
            return Ok(());
        }

        // Export.
        let phase = Instant::now();
        self.check_cancel()?;
        let output_batch = match manifest.export.output_batch.clone() {
            Some(b) => b,
            None => {
                let b = find_export_batch(&self.client, job_id.as_str()).await?;
                manifest.export.output_batch = Some(b.clone());
                manifest.save(&state_path)?;
                b
            }
        };
        self.report.output_batch = Some(output_batch.clone());
        // The total for progress comes from the count endpoint; the listing
        // itself is streamed into the downloads (memory: two pages of it).
        let total = export_count(&self.client, &output_batch, &[]).await;
        // The progress starts from what the manifest records; the download
        // checks each record against the disk (`summary.already`).
        self.events
            .emit(Event::ExportListed {
                output_batch: output_batch.clone(),
                files: usize::try_from(total).unwrap_or(usize::MAX),
                already_downloaded: manifest.export.downloads.len(),
            })
            .await;
        let summary = download_stream(
            &self.client,
            export_files(&self.client, &output_batch, &[]),
            &output_dir,
            &mut manifest,
            &state_path,
            &self.config.download,
            &self.events,
            &self.cancel,
        )
        .await?;
        self.report.downloaded_before = summary.already;
        self.report.download_retries += summary.retried;
        self.report.downloaded_now = summary.files;
        self.report.bytes_downloaded = summary.bytes;
        self.report.extracted_files = summary.extracted_files;
        self.report.refused_entries = summary.refused.clone();
        self.report.timings.export = phase.elapsed();
        if !summary.refused.is_empty() {
            self.warn(format!(
                "{} archive entries were refused (unsafe paths or links); see the report",
                summary.refused.len()
            ))
            .await;
        }
        if summary.cancelled {
            return Err(Error::Cancelled);
        }
        self.report.failures.extend(
            summary
                .failures
                .iter()
                .map(|(file, err)| format!("download {file}: {err}")),
        );
        if let Some((file, err)) = summary.failures.first() {
            return Err(Error::DownloadsFailed {
                failed: summary.failures.len(),
                total: summary.failures.len() + summary.files,
                first: format!("{file}: {err}"),
            });
        }
        manifest.export.complete = true;
        manifest.save(&state_path)?;
        Ok(())
    }
}

fn describe(input: &Path, workflow: &str, batch: &str) -> String {
    format!(
        "input {} with workflow {workflow:?} into batch {batch:?}",
        input.display()
    )
}
