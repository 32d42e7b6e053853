//! Progress events and the run report.
//!
//! The library never prints. A [`crate::Pipeline`] sends [`Event`]s on a
//! bounded `tokio::sync::mpsc` channel given by the caller (the CLI renders
//! them as progress bars or JSON lines). Sending waits when the channel is
//! full, so a consumer must keep draining it; a dropped receiver is fine (events
//! are then discarded). The periodic snapshots `CountPolled` and `JobProgress`
//! and the cumulative `BucketListed` and `BucketChunk` are the exception: they
//! are dropped rather than waited for when the channel is full, since the
//! next one supersedes them. Every event is `Serialize`
//! (tagged by `"event"`).

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::mpsc;

use crate::files::extract::RefusedEntry;
use crate::files::plan::UploadMode;
use crate::files::scan::SkippedFile;
use crate::limit::LimitReport;
use crate::wait::JobProgress;

/// Something that happened during a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(
    tag = "event",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
#[non_exhaustive]
pub enum Event {
    /// The run started (or resumed from its manifest).
    RunStarted {
        /// The staging batch.
        batch_id: String,
        /// Whether a manifest was found and the run resumes.
        resumed: bool,
        /// The manifest file.
        state_file: PathBuf,
    },
    /// The input directory was scanned.
    Scanned {
        /// Images found.
        images: usize,
        /// Videos found.
        videos: usize,
        /// Files skipped (each also sent as [`Event::FileSkipped`]).
        skipped: usize,
        /// Hidden entries skipped.
        hidden: u64,
    },
    /// A file was not used.
    FileSkipped {
        /// The file and why.
        file: SkippedFile,
    },
    /// Inputs changed since the manifest was written.
    InputChanged {
        /// Uploaded, then changed (not re-uploaded).
        changed_after_upload: Vec<String>,
        /// Changed before upload (re-planned).
        changed_pending: Vec<String>,
        /// Gone before upload (dropped).
        vanished_pending: Vec<String>,
        /// Uploaded, then gone locally (harmless: the batch keeps them).
        vanished_after_upload: Vec<String>,
        /// New files (added).
        added: Vec<String>,
        /// Files the service refused, fixed since (sent again once the
        /// count check finds them missing).
        refused_fixed: Vec<String>,
        /// Files the service refused, removed since (no longer expected).
        refused_removed: Vec<String>,
    },
    /// The upload plan.
    Planned {
        /// Single or bulk.
        mode: UploadMode,
        /// Items the batch will hold.
        items: u64,
        /// Items already uploaded by an earlier attempt.
        already_uploaded: u64,
        /// Single uploads still to do.
        singles_pending: usize,
        /// Shards still to upload.
        shards_pending: usize,
    },
    /// An upload (one file or one shard) started.
    UploadStarted {
        /// What: a file name or `shard N`.
        unit: String,
        /// Items in it.
        items: usize,
        /// Bytes to send.
        bytes: u64,
    },
    /// An upload completed (recorded in the manifest, which is saved at
    /// most every [`crate::ingest::upload::SAVE_INTERVAL`]).
    UploadFinished {
        /// What.
        unit: String,
        /// Items in it.
        items: usize,
        /// Bytes sent.
        bytes: u64,
        /// Items uploaded so far, including earlier attempts.
        uploaded: u64,
        /// Items in the plan.
        total: u64,
    },
    /// An upload failed (the run goes on; the failure is reported at the end).
    UploadFailed {
        /// What.
        unit: String,
        /// Why.
        error: String,
    },
    /// A count poll.
    CountPolled {
        /// Items counted.
        count: u64,
        /// Items expected.
        expected: u64,
    },
    /// The batch holds every expected item.
    CountConfirmed {
        /// Items counted.
        count: u64,
        /// Items expected.
        expected: u64,
    },
    /// The job was created.
    JobCreated {
        /// The job.
        job_id: String,
    },
    /// An earlier attempt's job was found and is followed instead of a new one.
    JobResumed {
        /// The job.
        job_id: String,
    },
    /// A job progress snapshot.
    JobProgress(JobProgress),
    /// The job is terminal.
    JobFinished {
        /// The job.
        job_id: String,
        /// Whether it failed.
        error: bool,
    },
    /// The export output was listed.
    ExportListed {
        /// The output batch.
        output_batch: String,
        /// Files in it, as the count endpoint tells before the listing is
        /// streamed (`0` when the count could not be read).
        files: usize,
        /// Files already downloaded by an earlier attempt (as the manifest
        /// records them).
        already_downloaded: usize,
    },
    /// A download started.
    DownloadStarted {
        /// File name in the batch.
        file: String,
        /// Part, if any.
        part: Option<String>,
    },
    /// A download completed (and was recorded in the manifest).
    DownloadFinished {
        /// File name in the batch.
        file: String,
        /// Part, if any.
        part: Option<String>,
        /// Bytes received.
        bytes: u64,
        /// Where it went (for archives: the directory it was unpacked into).
        path: PathBuf,
    },
    /// A download failed (reported at the end; a re-run retries it).
    DownloadFailed {
        /// File name in the batch.
        file: String,
        /// Why.
        error: String,
    },
    /// An archive was unpacked.
    Extracted {
        /// The archive's name in the batch.
        file: String,
        /// Where.
        into: PathBuf,
        /// Files written.
        files: u64,
        /// Entries refused (unsafe paths, links, ...).
        refused: Vec<RefusedEntry>,
    },
    /// How far a bucket ingest's listing is ([`crate::ingest::cloud`]):
    /// cumulative, sent every [`crate::ingest::cloud::LISTED_EVENT_EVERY`]
    /// objects listed and when the listing ends; dropped rather than waited
    /// for when the channel is full (the next one supersedes it).
    BucketListed {
        /// Objects the store listed so far.
        listed: u64,
        /// Of those, media kept (signed and sent as references).
        kept: u64,
        /// Whether the listing is complete.
        done: bool,
    },
    /// A chunk of a bucket ingest was answered: cumulative references sent
    /// in this run and found accepted by an earlier one. Dropped like
    /// [`Event::BucketListed`] when the channel is full.
    BucketChunk {
        /// References in chunks the service accepted in this run.
        sent: u64,
        /// References in chunks accepted before (checked and skipped).
        skipped: u64,
        /// Chunks answered so far (sent or skipped).
        chunks: u64,
    },
    /// A file of an export went into a bucket
    /// ([`crate::export::bucket::upload_dir`]), or was found complete there.
    BucketUploaded {
        /// Its path in the export (`/`-separated).
        file: String,
        /// Bytes sent now (0 when it was there already).
        bytes: u64,
        /// Files uploaded now so far.
        uploaded_now: u64,
        /// Files found complete from an earlier run so far.
        uploaded_before: u64,
        /// Files to go through in all.
        total: u64,
    },
    /// An adaptive concurrency limit moved ([`crate::limit`]).
    ConcurrencyChanged {
        /// `uploads` or `downloads`.
        transfers: String,
        /// Transfers allowed in flight from now on.
        limit: usize,
    },
    /// Something worth telling the user that does not stop the run.
    Warning {
        /// The warning.
        message: String,
    },
}

/// Where events go: an optional bounded channel.
#[derive(Debug, Clone, Default)]
pub struct EventSink {
    tx: Option<mpsc::Sender<Event>>,
}

impl EventSink {
    /// Events go to `tx`.
    pub fn new(tx: mpsc::Sender<Event>) -> Self {
        EventSink { tx: Some(tx) }
    }

    /// Events are discarded.
    pub fn none() -> Self {
        EventSink { tx: None }
    }

    /// Sends a progress snapshot without waiting; returns false (and drops
    /// it) when the channel is full or closed. Used for `CountPolled` and
    /// `JobProgress`, where only the latest state matters.
    pub fn try_emit(&self, event: Event) -> bool {
        match &self.tx {
            Some(tx) => tx.try_send(event).is_ok(),
            None => false,
        }
    }

    /// Sends an event, waiting for room; a closed channel discards it.
    pub async fn emit(&self, event: Event) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(event).await;
        }
    }
}

/// How long each phase took. Serialized as seconds (a JSON number, to the
/// microsecond), e.g. `{"scan": 0.012, ..., "total": 4.56}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Timings {
    /// Scan and plan.
    #[serde(serialize_with = "seconds")]
    pub scan: Duration,
    /// Uploads.
    #[serde(serialize_with = "seconds")]
    pub ingest: Duration,
    /// Count check.
    #[serde(serialize_with = "seconds")]
    pub count: Duration,
    /// Job creation and wait.
    #[serde(serialize_with = "seconds")]
    pub job: Duration,
    /// Downloads and extraction.
    #[serde(serialize_with = "seconds")]
    pub export: Duration,
    /// The whole run.
    #[serde(serialize_with = "seconds")]
    pub total: Duration,
}

/// A duration as seconds, rounded to the microsecond.
pub(crate) fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_micros() as f64 / 1e6)
}

/// What a run did; returned by [`crate::Pipeline::run`].
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunReport {
    /// The staging batch.
    pub batch_id: String,
    /// The job.
    pub job_id: String,
    /// The export output batch.
    pub output_batch: Option<String>,
    /// Where results went.
    pub output_dir: PathBuf,
    /// What the upload of the results into a bucket did (runs with
    /// [`crate::RunConfig::bucket`]).
    #[cfg(feature = "cloud")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub out_bucket: Option<crate::bucket_types::BucketSummary>,
    /// The manifest.
    pub state_file: PathBuf,
    /// Whether an earlier attempt was resumed.
    pub resumed: bool,
    /// Single or bulk.
    pub mode: Option<UploadMode>,
    /// Images found by the scan.
    pub images_found: usize,
    /// Videos found by the scan.
    pub videos_found: usize,
    /// Files skipped by the scan.
    pub skipped: Vec<SkippedFile>,
    /// Items uploaded by this attempt.
    pub uploaded_now: u64,
    /// Items uploaded by earlier attempts.
    pub uploaded_before: u64,
    /// Shards uploaded by this attempt.
    pub shards_uploaded_now: usize,
    /// Items the batch should hold.
    pub expected_count: u64,
    /// Items the service counted.
    pub confirmed_count: u64,
    /// Final job progress.
    pub job: Option<JobProgress>,
    /// Files downloaded by this attempt.
    pub downloaded_now: usize,
    /// Files downloaded by earlier attempts.
    pub downloaded_before: usize,
    /// Bytes downloaded by this attempt.
    pub bytes_downloaded: u64,
    /// Files written by extraction (this attempt).
    pub extracted_files: u64,
    /// Archive entries refused (this attempt).
    pub refused_entries: Vec<RefusedEntry>,
    /// Every retry of this attempt: `transport_retries + upload_retries +
    /// download_retries`.
    pub retries: u64,
    /// Requests the transport sent again (429, 5xx, connection errors), when
    /// it reports them ([`crate::ClientBuilder::retry_stats`]).
    pub transport_retries: u64,
    /// Uploads sent again by the run: after a failure that proved nothing
    /// arrived, or after a broken transfer once the batch showed it missing.
    pub upload_retries: u64,
    /// Downloads fetched again after a broken or short transfer.
    pub download_retries: u64,
    /// What the upload concurrency limit did (where it settled).
    pub upload_concurrency: Option<LimitReport>,
    /// What the download concurrency limit did (where it settled).
    pub download_concurrency: Option<LimitReport>,
    /// Warnings sent during the run.
    pub warnings: Vec<String>,
    /// Uploads and downloads that failed (`"upload shard 3: ..."`); a re-run
    /// retries exactly these.
    pub failures: Vec<String>,
    /// Phase durations.
    pub timings: Timings,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timings_serialize_as_seconds() {
        let t = Timings {
            scan: Duration::from_millis(12),
            total: Duration::from_micros(4_560_001),
            ..Timings::default()
        };
        assert_eq!(
            serde_json::to_value(&t).unwrap(),
            serde_json::json!({"scan": 0.012, "ingest": 0.0, "count": 0.0, "job": 0.0,
                               "export": 0.0, "total": 4.560001})
        );
    }

    #[test]
    fn events_serialize_tagged_for_json_output() {
        let e = Event::UploadFinished {
            unit: "shard 3".into(),
            items: 500,
            bytes: 1024,
            uploaded: 1500,
            total: 2000,
        };
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"event": "upload_finished", "unit": "shard 3", "items": 500,
                               "bytes": 1024, "uploaded": 1500, "total": 2000})
        );
        let w = serde_json::to_value(Event::Warning {
            message: "m".into(),
        })
        .unwrap();
        assert_eq!(w["event"], "warning");
        let r = serde_json::to_value(RunReport::default()).unwrap();
        assert!(r.get("timings").is_some());
        // camelCase like every JSON document rf prints.
        assert!(r.get("confirmedCount").is_some(), "{r}");
        assert!(r.get("confirmed_count").is_none(), "{r}");
        let started = serde_json::to_value(Event::RunStarted {
            batch_id: "b".into(),
            resumed: false,
            state_file: PathBuf::from("m.json"),
        })
        .unwrap();
        assert_eq!(
            started,
            serde_json::json!({"event": "run_started", "batchId": "b", "resumed": false,
                               "stateFile": "m.json"})
        );
    }
}
