//! Renders rf-batch [`Event`]s: progress tracks for scan, upload, indexing,
//! job and download, and warnings on stderr. Nothing here writes to stdout.

use std::time::{Duration, Instant};

use rf_batch::wait::JobProgress;
use rf_batch::{Event, EventSink};
use tokio::sync::mpsc;

use crate::config::Config;
use crate::output::{Output, human_bytes};
use crate::progress::{Phase, Progress, Unit, eta, human_duration};

/// Refused archive entries named one by one per archive; the rest are counted.
const REFUSED_SHOWN: usize = 20;

/// Skipped files listed one by one up to this many (the rest are counted).
const MAX_SKIPPED_SHOWN: usize = 10;

/// Events waiting to be drawn; the library waits when the renderer lags.
pub(crate) const EVENT_QUEUE: usize = 256;

/// Runs `work` with the events it sends drawn by a [`Renderer`] on its own
/// task. Returns what `work` gave and the renderer, for a last line (on an
/// error its unfinished tracks are already cleared).
pub(crate) async fn drawn<T, E, F, Fut>(
    progress: Progress,
    config: &Config,
    work: F,
) -> (Result<T, E>, Option<Renderer>)
where
    F: FnOnce(EventSink) -> Fut,
    Fut: Future<Output = Result<T, E>>,
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
    /// When the job was first seen (its elapsed time).
    job_started: Option<Instant>,
    /// The job's current stage and when it was first seen.
    job_stage: Option<(String, Instant)>,
    /// A bucket ingest's listing: objects listed, kept, whether it is done.
    bucket_listed: (u64, u64, bool),
    /// A bucket ingest's chunks: references sent, skipped, chunks answered.
    bucket_chunks: (u64, u64, u64),
    bucket_bytes: u64,
    bucket_started: Option<Instant>,
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
            job_started: None,
            job_stage: None,
            bucket_listed: (0, 0, false),
            bucket_chunks: (0, 0, 0),
            bucket_bytes: 0,
            bucket_started: None,
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
            Event::BucketListed { listed, kept, done } => {
                self.bucket_listed = (*listed, *kept, *done);
                self.bucket_ingest();
            }
            Event::BucketChunk {
                sent,
                skipped,
                chunks,
            } => {
                self.bucket_chunks = (*sent, *skipped, *chunks);
                self.bucket_ingest();
            }
            Event::BucketUploaded { .. } => self.bucket_uploaded(event),
            Event::Warning { message } => self.output.warn(message),
            Event::ConcurrencyChanged { transfers, limit } if self.verbose > 0 => {
                self.output
                    .note(&format!("{transfers}: {limit} in flight at most now"));
            }
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
            vanished_after_upload,
            added,
            refused_fixed,
            refused_removed,
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
        if !vanished_after_upload.is_empty() {
            parts.push(format!(
                "{} gone after upload (the batch keeps them: {})",
                vanished_after_upload.len(),
                preview(vanished_after_upload)
            ));
        }
        if !changed_after_upload.is_empty() {
            parts.push(format!(
                "{} changed after upload (kept as uploaded: {})",
                changed_after_upload.len(),
                preview(changed_after_upload)
            ));
        }
        if !refused_fixed.is_empty() {
            parts.push(format!(
                "refused {} fixed (sent again: {})",
                plural(refused_fixed.len() as u64, "file"),
                preview(refused_fixed)
            ));
        }
        if !refused_removed.is_empty() {
            parts.push(format!(
                "refused {} removed (no longer expected: {})",
                plural(refused_removed.len() as u64, "file"),
                preview(refused_removed)
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

    /// The track of a bucket ingest: references answered so far (sent or
    /// found accepted before) against the objects kept by the listing,
    /// whose end is not known until it is done.
    fn bucket_ingest(&mut self) {
        let (listed, kept, done) = self.bucket_listed;
        let (sent, skipped, chunks) = self.bucket_chunks;
        if !self.progress.has(Phase::Upload) {
            self.progress
                .begin(Phase::Upload, None, Unit::Items("references"));
        }
        let mut message = format!(
            "{listed} objects listed{}, {kept} kept; {} in {}",
            if done { "" } else { " so far" },
            plural(sent, "reference"),
            plural(chunks, "chunk")
        );
        if skipped > 0 {
            message.push_str(&format!(", {skipped} accepted before"));
        }
        self.progress.update(Phase::Upload, sent + skipped, message);
        if done && sent + skipped >= kept {
            self.progress.finish(
                Phase::Upload,
                format!(
                    "{} of {listed} objects sent by reference ({skipped} accepted before)",
                    plural(kept, "media object")
                ),
            );
        }
    }

    /// The track of an export's copy into a bucket.
    fn bucket_uploaded(&mut self, event: &Event) {
        let Event::BucketUploaded {
            bytes,
            uploaded_now,
            uploaded_before,
            total,
            ..
        } = event
        else {
            return;
        };
        if !self.progress.has(Phase::BucketUpload) {
            self.progress
                .begin(Phase::BucketUpload, Some(*total), Unit::Items("files"));
            self.bucket_started = Some(Instant::now());
            self.bucket_bytes = 0;
        }
        self.bucket_bytes += bytes;
        let done = uploaded_now + uploaded_before;
        let rate = rate(self.bucket_bytes, self.bucket_started);
        let mut message = format!("{} sent{rate}", human_bytes(self.bucket_bytes));
        if *uploaded_before > 0 {
            message.push_str(&format!(", {uploaded_before} there before"));
        }
        self.progress.update(Phase::BucketUpload, done, message);
        if done >= *total {
            self.progress.finish(
                Phase::BucketUpload,
                format!(
                    "{} in the bucket ({uploaded_now} now, {})",
                    plural(*total, "file"),
                    human_bytes(self.bucket_bytes)
                ),
            );
        }
    }

    /// Ends the download track once the run is over.
    pub(crate) fn finish_download(&mut self, summary: String) {
        if self.progress.has(Phase::Download) {
            self.progress.finish(Phase::Download, summary);
        }
    }

    /// Shows a job snapshot on the job track: the bar is the current
    /// stage's progress (stages differ in length, so a share of the whole
    /// would stall and jump), the message names the stage, its tasks, the
    /// time since the job was followed and the stage's ETA.
    pub(crate) fn job_progress(&mut self, p: &JobProgress) {
        if !self.progress.has(Phase::Job) {
            self.progress.begin(Phase::Job, Some(100), Unit::Percent);
        }
        let now = Instant::now();
        let job_started = *self.job_started.get_or_insert(now);
        if self.job_stage.as_ref().map(|(name, _)| name) != p.stage.as_ref() {
            self.job_stage = p.stage.clone().map(|name| (name, now));
        }
        let stage_elapsed = self
            .job_stage
            .as_ref()
            .map_or(Duration::ZERO, |(_, since)| now - *since);
        let (percent, message) = job_line(p, now - job_started, stage_elapsed);
        self.progress.update(Phase::Job, percent, message);
    }
}

/// The job track's position (percent of the current stage) and message,
/// e.g. `processing (stage 1/2), ETA 30.0s, 12.0s elapsed; 3/10 tasks
/// done, 2 running`.
fn job_line(p: &JobProgress, elapsed: Duration, stage_elapsed: Duration) -> (u64, String) {
    // Most telling first: a narrow terminal cuts the end of the line.
    let stage = p.stage.as_deref().unwrap_or("waiting");
    let mut message = stage.to_owned();
    let position = p
        .stage
        .as_ref()
        .and_then(|s| p.planned_stages.iter().position(|x| x == s));
    if let (Some(i), n @ 2..) = (position, p.planned_stages.len()) {
        message.push_str(&format!(" (stage {}/{n})", i + 1));
    }
    if let Some(left) = eta(stage_elapsed, p.stage_progress) {
        message.push_str(&format!(", ETA {}", human_duration(left)));
    }
    message.push_str(&format!(", {} elapsed", human_duration(elapsed)));
    if p.tasks_total > 0 {
        message.push_str(&format!(
            "; {}/{} tasks done",
            p.tasks_succeeded + p.tasks_failed,
            p.tasks_total
        ));
    }
    if p.tasks_running > 0 {
        message.push_str(&format!(", {} running", p.tasks_running));
    }
    if p.tasks_failed > 0 {
        message.push_str(&format!(", {} failed", p.tasks_failed));
    }
    let percent = (p.stage_progress * 100.0).round().clamp(0.0, 100.0) as u64;
    (percent, message)
}

/// `1 file`, `2 files`.
/// What a concurrency limit did, for the report tables: `adaptive, settled
/// at 24 (peak 64, 2 cuts for overload)` or `fixed at 8`.
pub(crate) fn concurrency_text(r: &rf_batch::limit::LimitReport) -> String {
    match r.concurrency {
        rf_batch::limit::Concurrency::Fixed(n) => format!("fixed at {n}"),
        rf_batch::limit::Concurrency::Adaptive { max, .. } => {
            let mut text = format!(
                "adaptive, settled at {} (peak {}, max {max}",
                r.settled, r.peak
            );
            if r.decreases > 0 {
                text.push_str(&format!(", {} for overload", plural(r.decreases, "cut")));
            }
            if r.pauses > 0 {
                text.push_str(&format!(", {} for Retry-After", plural(r.pauses, "pause")));
            }
            text.push(')');
            text
        }
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(stage: Option<&str>, progress: f64, tasks: [u64; 4]) -> JobProgress {
        let [total, running, succeeded, failed] = tasks;
        JobProgress {
            job_id: "j".into(),
            stage: stage.map(str::to_owned),
            planned_stages: vec!["processing".into(), "export".into()],
            stage_progress: progress,
            overall: 0.0,
            tasks_total: total,
            tasks_waiting: total - running - succeeded - failed,
            tasks_running: running,
            tasks_succeeded: succeeded,
            tasks_failed: failed,
            notification: None,
            is_terminal: false,
            error: false,
        }
    }

    #[test]
    fn the_job_line_names_the_stage_its_tasks_the_time_and_an_eta() {
        let p = snapshot(Some("processing"), 0.25, [8, 2, 1, 1]);
        let (percent, line) = job_line(&p, Duration::from_secs(12), Duration::from_secs(10));
        // The bar is the stage's own progress, not half of the job's.
        assert_eq!(percent, 25);
        assert_eq!(
            line,
            "processing (stage 1/2), ETA 30.0s, 12.0s elapsed; 2/8 tasks done, 2 running, 1 failed"
        );
        let export = snapshot(Some("export"), 1.0 / 3.0, [3, 1, 1, 0]);
        let (percent, line) = job_line(&export, Duration::from_secs(40), Duration::from_secs(5));
        assert_eq!(percent, 33);
        assert!(
            line.starts_with(
                "export (stage 2/2), ETA 10.0s, 40.0s elapsed; 1/3 tasks done, 1 running"
            ),
            "{line}"
        );
    }

    #[test]
    fn no_eta_before_anything_is_done() {
        let p = snapshot(None, 0.0, [0, 0, 0, 0]);
        let (percent, line) = job_line(&p, Duration::from_secs(3), Duration::ZERO);
        assert_eq!(percent, 0);
        assert_eq!(line, "waiting, 3.0s elapsed");
    }
}
