//! Renders rf-batch [`Event`]s: progress tracks for scan, upload, indexing,
//! job and download, and warnings on stderr. Nothing here writes to stdout.

use std::time::Instant;

use rf_batch::wait::JobProgress;
use rf_batch::{Event, EventSink};
use tokio::sync::mpsc;

use crate::config::Config;
use crate::output::{Output, human_bytes};
use crate::progress::{Phase, Progress, Unit};

/// Refused archive entries named one by one per archive; the rest are counted.
const REFUSED_SHOWN: usize = 20;

/// Skipped files listed one by one up to this many (the rest are counted).
const MAX_SKIPPED_SHOWN: usize = 10;

/// Events waiting to be drawn; the library waits when the renderer lags.
pub(crate) const EVENT_QUEUE: usize = 256;

/// Runs `work` with the events it sends drawn by a [`Renderer`] on its own
/// task. Returns what `work` gave and the renderer, for a last line (on an
/// error its unfinished tracks are already cleared).
pub(crate) async fn drawn<T, F, Fut>(
    progress: Progress,
    config: &Config,
    work: F,
) -> (rf_batch::Result<T>, Option<Renderer>)
where
    F: FnOnce(EventSink) -> Fut,
    Fut: Future<Output = rf_batch::Result<T>>,
{
    let (tx, rx) = mpsc::channel(EVENT_QUEUE);
    let drawing = tokio::spawn(Renderer::new(progress, &config.output, config.verbose).drain(rx));
    // `work` owns the only sender: when it is done the channel closes and
    // the renderer ends.
    let result = work(EventSink::new(tx)).await;
    let mut renderer = drawing.await.ok();
    if result.is_err()
        && let Some(r) = renderer.as_mut()
    {
        r.clear();
    }
    (result, renderer)
}

/// Turns events into progress; owns the progress display.
#[derive(Debug)]
pub(crate) struct Renderer {
    progress: Progress,
    output: Output,
    verbose: u8,
    skipped_shown: usize,
    upload_bytes: u64,
    upload_started: Option<Instant>,
    download_bytes: u64,
    download_started: Option<Instant>,
}

impl Renderer {
    /// A renderer drawing into `progress`, writing notes through `output`.
    pub(crate) fn new(progress: Progress, output: &Output, verbose: u8) -> Self {
        Renderer {
            progress,
            output: output.clone(),
            verbose,
            skipped_shown: 0,
            upload_bytes: 0,
            upload_started: None,
            download_bytes: 0,
            download_started: None,
        }
    }

    /// The progress display (for commands that drive it directly).
    pub(crate) fn progress(&mut self) -> &mut Progress {
        &mut self.progress
    }

    /// Renders events until the sending side closes.
    pub(crate) async fn drain(mut self, mut rx: mpsc::Receiver<Event>) -> Self {
        while let Some(event) = rx.recv().await {
            self.event(&event);
        }
        self
    }

    /// Removes unfinished bars (before printing an error).
    pub(crate) fn clear(&mut self) {
        self.progress.clear();
    }

    /// Renders one event.
    pub(crate) fn event(&mut self, event: &Event) {
        match event {
            Event::RunStarted {
                batch_id,
                resumed,
                state_file,
            } => self.run_started(batch_id, *resumed, state_file),
            Event::Scanned {
                images,
                videos,
                skipped,
                hidden,
            } => self.scanned(*images, *videos, *skipped, *hidden),
            Event::FileSkipped { file } => self.file_skipped(file),
            Event::InputChanged { .. } => self.input_changed(event),
            Event::Planned { .. } => self.planned(event),
            Event::UploadStarted { unit, .. } if self.verbose > 1 => {
                self.output.note(&format!("uploading {unit}"));
            }
            Event::UploadFinished {
                bytes,
                uploaded,
                total,
                ..
            } => self.upload_finished(*bytes, *uploaded, *total),
            Event::UploadFailed { unit, error } => {
                self.output
                    .warn(&format!("upload of {unit} failed: {error}"));
            }
            Event::CountPolled { count, expected } => self.indexed(*count, *expected, false),
            Event::CountConfirmed { count, expected } => self.indexed(*count, *expected, true),
            Event::JobCreated { job_id } => self.job_begins(&format!("started job {job_id}")),
            Event::JobResumed { job_id } => {
                self.job_begins(&format!("following job {job_id} from an earlier attempt"));
            }
            Event::JobProgress(p) => self.job_progress(p),
            Event::JobFinished { job_id, error } => self.job_finished(job_id, *error),
            Event::ExportListed {
                output_batch,
                files,
                already_downloaded,
            } => self.export_listed(output_batch, *files, *already_downloaded),
            Event::DownloadStarted { file, .. } if self.verbose > 1 => {
                self.output.note(&format!("downloading {file}"));
            }
            Event::DownloadFinished { bytes, .. } => self.download_finished(*bytes),
            Event::DownloadFailed { file, error } => {
                self.output
                    .warn(&format!("download of {file} failed: {error}"));
            }
            Event::Extracted { .. } => self.extracted(event),
            Event::Warning { message } => self.output.warn(message),
            _ => {}
        }
    }

    fn run_started(&mut self, batch_id: &str, resumed: bool, state_file: &std::path::Path) {
        if resumed {
            self.output.note(&format!(
                "resuming the run of batch {batch_id} (manifest {})",
                state_file.display()
            ));
        } else if self.verbose > 0 {
            self.output.note(&format!(
                "batch {batch_id}, manifest {}",
                state_file.display()
            ));
        }
        if !self.progress.has(Phase::Scan) {
            self.progress.begin(Phase::Scan, None, Unit::Items("files"));
        }
    }

    fn scanned(&mut self, images: usize, videos: usize, skipped: usize, hidden: u64) {
        let mut summary = format!("{images} images, {videos} videos");
        if skipped > 0 {
            summary.push_str(&format!(", {skipped} skipped"));
        }
        if hidden > 0 {
            summary.push_str(&format!(", {hidden} hidden ignored"));
        }
        self.progress.set(Phase::Scan, (images + videos) as u64);
        self.progress.finish(Phase::Scan, summary);
    }

    fn file_skipped(&mut self, file: &rf_batch::ingest::SkippedFile) {
        if self.skipped_shown < MAX_SKIPPED_SHOWN || self.verbose > 0 {
            self.output
                .warn(&format!("skipped {}: {}", file.relative, file.reason));
        } else if self.skipped_shown == MAX_SKIPPED_SHOWN {
            self.output
                .warn("more files skipped (run with -v to list them all)");
        }
        self.skipped_shown += 1;
    }

    fn input_changed(&mut self, event: &Event) {
        let Event::InputChanged {
            changed_after_upload,
            changed_pending,
            vanished_pending,
            added,
        } = event
        else {
            return;
        };
        let mut parts = Vec::new();
        if !added.is_empty() {
            parts.push(format!("{} new", added.len()));
        }
        if !changed_pending.is_empty() {
            parts.push(format!("{} changed before upload", changed_pending.len()));
        }
        if !vanished_pending.is_empty() {
            parts.push(format!("{} gone before upload", vanished_pending.len()));
        }
        if !changed_after_upload.is_empty() {
            parts.push(format!(
                "{} changed after upload (kept as uploaded: {})",
                changed_after_upload.len(),
                preview(changed_after_upload)
            ));
        }
        self.output.warn(&format!(
            "the input directory changed since the last attempt: {}",
            parts.join(", ")
        ));
    }

    fn planned(&mut self, event: &Event) {
        let Event::Planned {
            mode,
            items,
            already_uploaded,
            singles_pending,
            shards_pending,
        } = event
        else {
            return;
        };
        let how = match mode {
            rf_batch::ingest::UploadMode::Single => {
                format!("one request per file, {singles_pending} to go")
            }
            rf_batch::ingest::UploadMode::Bulk => format!("tar shards, {shards_pending} to go"),
        };
        self.progress
            .begin(Phase::Upload, Some(*items), Unit::Items("files"));
        self.progress.set(Phase::Upload, *already_uploaded);
        self.progress.message(Phase::Upload, format!("({how})"));
        self.upload_started = Some(Instant::now());
        self.upload_bytes = 0;
        if *already_uploaded == *items {
            self.progress.finish(
                Phase::Upload,
                format!("{} already uploaded", plural(*items, "file")),
            );
        }
    }

    fn upload_finished(&mut self, bytes: u64, uploaded: u64, total: u64) {
        self.upload_bytes += bytes;
        self.progress.set(Phase::Upload, uploaded);
        let rate = rate(self.upload_bytes, self.upload_started);
        self.progress.message(
            Phase::Upload,
            format!("{} sent{rate}", human_bytes(self.upload_bytes)),
        );
        if uploaded >= total {
            self.progress.finish(
                Phase::Upload,
                format!(
                    "{} uploaded ({} this time)",
                    plural(total, "file"),
                    human_bytes(self.upload_bytes)
                ),
            );
        }
    }

    /// The indexing track: `count` of `expected` items, finished once
    /// `confirmed`.
    fn indexed(&mut self, count: u64, expected: u64, confirmed: bool) {
        if !self.progress.has(Phase::Index) {
            self.progress
                .begin(Phase::Index, Some(expected), Unit::Items("items"));
        }
        self.progress.set(Phase::Index, count);
        if confirmed {
            self.progress
                .finish(Phase::Index, format!("{count} of {expected} items indexed"));
        }
    }

    fn job_begins(&mut self, note: &str) {
        self.output.note(note);
        self.progress.begin(Phase::Job, Some(100), Unit::Percent);
    }

    fn job_finished(&mut self, job_id: &str, error: bool) {
        let summary = if error {
            format!("{job_id} failed")
        } else {
            format!("{job_id} succeeded")
        };
        if self.progress.has(Phase::Job) {
            self.progress.set(Phase::Job, 100);
        }
        self.progress.finish(Phase::Job, summary);
    }

    fn export_listed(&mut self, output_batch: &str, files: usize, already_downloaded: usize) {
        self.progress.begin(
            Phase::Download,
            (files > 0).then_some(files as u64),
            Unit::Items("files"),
        );
        self.progress
            .set(Phase::Download, already_downloaded as u64);
        self.progress
            .message(Phase::Download, format!("from {output_batch}"));
        self.download_started = Some(Instant::now());
        self.download_bytes = 0;
        // `files` is 0 when the count could not be read: unknown, so nothing
        // is claimed yet.
        if files > 0 && already_downloaded == files {
            self.progress.finish(
                Phase::Download,
                format!("{} already downloaded", plural(files as u64, "file")),
            );
        }
    }

    fn download_finished(&mut self, bytes: u64) {
        self.download_bytes += bytes;
        self.progress.inc(Phase::Download, 1);
        let rate = rate(self.download_bytes, self.download_started);
        self.progress.message(
            Phase::Download,
            format!("{} received{rate}", human_bytes(self.download_bytes)),
        );
    }

    fn extracted(&mut self, event: &Event) {
        let Event::Extracted {
            file,
            into,
            files,
            refused,
        } = event
        else {
            return;
        };
        if self.verbose > 0 {
            self.output.note(&format!(
                "unpacked {file}: {} into {}",
                plural(*files, "file"),
                into.display()
            ));
        }
        for entry in refused.iter().take(REFUSED_SHOWN) {
            self.output.warn(&format!(
                "refused archive entry {:?} in {file}: {}",
                entry.path, entry.reason
            ));
        }
        if refused.len() > REFUSED_SHOWN {
            self.output.warn(&format!(
                "{} more archive entries of {file} were refused; --json lists them all",
                refused.len() - REFUSED_SHOWN
            ));
        }
    }

    /// Ends the download track once the run is over.
    pub(crate) fn finish_download(&mut self, summary: String) {
        if self.progress.has(Phase::Download) {
            self.progress.finish(Phase::Download, summary);
        }
    }

    /// Shows a job snapshot on the job track.
    pub(crate) fn job_progress(&mut self, p: &JobProgress) {
        if !self.progress.has(Phase::Job) {
            self.progress.begin(Phase::Job, Some(100), Unit::Percent);
        }
        let stage = p.stage.clone().unwrap_or_else(|| "waiting".to_owned());
        let mut message = if p.tasks_total > 0 {
            format!(
                "{stage}: {}/{} tasks done",
                p.tasks_succeeded + p.tasks_failed,
                p.tasks_total
            )
        } else {
            stage
        };
        if p.tasks_running > 0 {
            message.push_str(&format!(", {} running", p.tasks_running));
        }
        if p.tasks_failed > 0 {
            message.push_str(&format!(", {} failed", p.tasks_failed));
        }
        let percent = (p.overall * 100.0).round().clamp(0.0, 100.0) as u64;
        self.progress.update(Phase::Job, percent, message);
    }
}

/// `1 file`, `2 files`.
pub(crate) fn plural(n: u64, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// `, 3.1 MiB/s` once there is something to measure.
fn rate(bytes: u64, since: Option<Instant>) -> String {
    let Some(since) = since else {
        return String::new();
    };
    let secs = since.elapsed().as_secs_f64();
    if secs < 0.5 || bytes == 0 {
        return String::new();
    }
    format!(", {}/s", human_bytes((bytes as f64 / secs) as u64))
}

/// The first few names of a list.
fn preview(names: &[String]) -> String {
    let mut text = names.iter().take(3).cloned().collect::<Vec<_>>().join(", ");
    if names.len() > 3 {
        text.push_str(&format!(", ... {} more", names.len() - 3));
    }
    text
}
