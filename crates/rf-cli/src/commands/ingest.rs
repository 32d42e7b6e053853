//! `rf batch ingest`: a directory of images or videos (single uploads or tar
//! shards, resumable), or a JSON-lines references file.
//!
//! Directory ingests keep rf-batch's manifest in the cache directory
//! (`<cache>/rf/ingest/<api>/<batch-id>/rf-run.json`): never in the input
//! directory, which may be read-only. Re-running the same command sends only
//! what is missing.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rf_batch::ingest::{
    MediaKind, PlanOptions, ScanOptions, SkippedFile, UploadSettings, ingest_references_file,
    upload_all,
};
use rf_batch::state::{FreshRun, Manifest, Reconciliation};
use rf_batch::wait::{PollOptions, wait_for_count};
use rf_batch::{Event, EventSink};
use rf_types::{BatchId, IngestId, ShardNotificationConfig};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::options;
use super::session::{Session, map_error};
use crate::args::BatchIngestArgs;
use crate::config::Config;
use crate::error::{CliError, Result};
use crate::events::{Renderer, plural};
use crate::output::Table;
use crate::progress::Progress;

/// References sent per request.
const REFERENCES_CHUNK: usize = rf_batch::ingest::references::MAX_REFERENCES_PER_REQUEST;

/// Checks the input (directory or references file) before anything else
/// happens, so a typo is a usage error and starts no emulator.
pub(crate) fn check_input(args: &BatchIngestArgs) -> Result<()> {
    options::batch_id(&args.batch_id)?;
    match (
        &args.source.images,
        &args.source.videos,
        &args.source.references,
    ) {
        (Some(dir), _, _) => options::input_dir("--images", dir),
        (None, Some(dir), _) => options::input_dir("--videos", dir),
        (None, None, Some(file)) => options::input_file("--references", file),
        (None, None, None) => Err(CliError::usage(
            "pass --images DIR, --videos DIR or --references FILE",
        )),
    }
}

/// Runs `rf batch ingest`.
pub(crate) async fn run(
    args: &BatchIngestArgs,
    session: &Session,
    config: &Config,
    progress: Progress,
    cancel: CancellationToken,
) -> Result<()> {
    let batch = options::batch_id(&args.batch_id)?;
    if let Some(path) = &args.source.references {
        return references(args, &batch, path, session, config, &cancel).await;
    }
    let (dir, kind, flag) = match (&args.source.images, &args.source.videos) {
        (Some(dir), _) => (dir, MediaKind::Image, "--images"),
        (None, Some(dir)) => (dir, MediaKind::Video, "--videos"),
        (None, None) => {
            return Err(CliError::usage(
                "pass --images DIR, --videos DIR or --references FILE",
            ));
        }
    };
    options::input_dir(flag, dir)?;
    directory(args, &batch, dir, kind, session, config, progress, cancel).await
}

async fn references(
    args: &BatchIngestArgs,
    batch: &BatchId,
    path: &Path,
    session: &Session,
    config: &Config,
    cancel: &CancellationToken,
) -> Result<()> {
    if args.notifications_url.is_some() {
        config
            .output
            .warn("--notifications-url is not supported with --references yet; ignored");
    }
    // The batch ID as ingest ID: re-running the same file is recognised by
    // the service as a repeat instead of ingesting everything twice.
    let summary = ingest_references_file(
        session.client(),
        batch,
        MediaKind::Image,
        path,
        batch.as_str(),
        REFERENCES_CHUNK,
        args.batch_name.as_deref(),
    )
    .await
    .map_err(|e| map_error(&e))?;
    let mut count = None;
    if args.wait {
        config.output.note(
            "reference ingests are indexed in the background; waiting for the count to settle",
        );
        let n = wait_count(session, batch.as_str(), summary.references, cancel).await?;
        count = Some(n);
    }
    let out = &config.output;
    if out.is_json() {
        out.document(&json!({
            "batchId": batch.as_str(),
            "references": summary.references,
            "requests": summary.requests,
            "ingestIds": summary.ingest_ids,
            "duplicated": summary.duplicated,
            "count": count,
        }))
    } else {
        let mut t = Table::key_values();
        t.row(["batch".to_owned(), batch.to_string()]);
        t.row([
            "references".to_owned(),
            format!(
                "{} sent in {} ({} recognised as repeats)",
                summary.references,
                plural(summary.requests, "request"),
                summary.duplicated
            ),
        ]);
        if let Some(n) = count {
            t.row(["count".to_owned(), n.to_string()]);
        }
        out.table(&t)
    }
}

/// Polls the count until it reaches `expected` (no progress events); the
/// first Ctrl-C (`cancel`) stops waiting.
async fn wait_count(
    session: &Session,
    batch: &str,
    expected: u64,
    cancel: &CancellationToken,
) -> Result<u64> {
    let options = PollOptions {
        initial_interval: Duration::from_millis(250),
        ..PollOptions::default()
    };
    wait_for_count(session.client(), batch, expected, &options, cancel, |_| {})
        .await
        .map_err(|e| map_error(&e))
}

#[allow(clippy::too_many_arguments)]
async fn directory(
    args: &BatchIngestArgs,
    batch: &BatchId,
    dir: &Path,
    kind: MediaKind,
    session: &Session,
    config: &Config,
    progress: Progress,
    cancel: CancellationToken,
) -> Result<()> {
    let input_dir = std::fs::canonicalize(dir)
        .map_err(|e| CliError::usage(format!("{}: {}", dir.display(), options::io_reason(&e))))?;
    let state_path = state_path(config, batch)?;
    // One `rf batch ingest` at a time per batch (its manifest).
    let _batch_lock = match state_path.parent() {
        Some(dir) => Some(super::state_lock::lock(
            dir,
            &format!("the ingest of batch {batch}"),
            "rf batch ingest",
            "--batch-id",
        )?),
        None => None,
    };
    let plan_options = PlanOptions {
        mode: options::ingest_mode(args.mode),
        ..PlanOptions::default()
    };
    // Both kinds are scanned, so that media of the other kind are reported
    // as such ("an image, and this run processes videos"), as `rf run` does.
    let scan_options = ScanOptions::default();
    // Scan and plan on one blocking thread. A fresh ingest writes its plan
    // to the items file beside the manifest as the scan goes, so the list of
    // 100,000s of files is never held in memory.
    let prepared = {
        let (root, state_path, batch) = (input_dir.clone(), state_path.clone(), batch.clone());
        let plan_options = plan_options.clone();
        tokio::task::spawn_blocking(move || {
            prepare(
                &root,
                &state_path,
                &batch,
                kind,
                &scan_options,
                &plan_options,
            )
        })
        .await
        .map_err(|e| CliError::local(format!("the directory scan failed: {e}")))??
    };
    let Prepared {
        mut manifest,
        resumed,
        changes,
        images,
        videos,
        hidden,
        skipped,
    } = prepared;
    let (tx, rx) = mpsc::channel(256);
    let drawing = tokio::spawn(Renderer::new(progress, &config.output, config.verbose).drain(rx));
    let sink = EventSink::new(tx);
    if let Some(rec) = changes.filter(|r| !r.is_empty()) {
        sink.emit(Event::InputChanged {
            changed_after_upload: rec.changed_after_upload,
            changed_pending: rec.changed_pending,
            vanished_pending: rec.vanished_pending,
            added: rec.added,
        })
        .await;
    }
    manifest.ingest.skipped = skipped.clone();
    manifest
        .save(&state_path)
        .map_err(|e| map_error(&e.into()))?;
    sink.emit(Event::RunStarted {
        batch_id: batch.to_string(),
        resumed,
        state_file: state_path.clone(),
    })
    .await;
    sink.emit(Event::Scanned {
        images,
        videos,
        skipped: skipped.len(),
        hidden,
    })
    .await;
    for file in skipped {
        sink.emit(Event::FileSkipped { file }).await;
    }
    let expected = manifest.expected_count();
    if expected == 0 {
        drop(sink);
        let _ = drawing.await;
        return Err(CliError::usage(format!(
            "no {} found in {}; {}",
            if kind == MediaKind::Image {
                "images"
            } else {
                "videos"
            },
            input_dir.display(),
            options::media_hint(kind)
        )));
    }
    let before = manifest.uploaded_count();
    sink.emit(Event::Planned {
        mode: manifest.ingest.mode,
        items: expected,
        already_uploaded: before,
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

    let mut upload = UploadSettings {
        concurrency: config.concurrency,
        display_name: args.batch_name.clone(),
        ..UploadSettings::default()
    };
    if let Some(url) = &args.notifications_url {
        if manifest.ingest.mode == rf_batch::ingest::UploadMode::Bulk {
            upload.notification = Some(ShardNotificationConfig {
                ingest_id: IngestId::from(batch.as_str()),
                notifications_url: url.clone(),
            });
        } else {
            config.output.warn(
                "--notifications-url is ignored: the service sends no webhooks for single uploads (use --mode bulk)",
            );
        }
    }
    let client = session.client();
    let outcome = async {
        let summary = upload_all(
            client,
            &input_dir,
            batch,
            &mut manifest,
            &state_path,
            &upload,
            Duration::from_millis(500),
            &sink,
            &cancel,
        )
        .await?;
        if summary.cancelled {
            return Err(rf_batch::Error::Cancelled);
        }
        if let Some((unit, err)) = summary.failures.first() {
            return Err(rf_batch::Error::UploadsFailed {
                failed: summary.failures.len(),
                total: summary.failures.len() + summary.units,
                first: format!("{unit}: {err}"),
            });
        }
        let mut count = None;
        if args.wait {
            let poll_tx = sink.clone();
            let (ptx, mut prx) = mpsc::unbounded_channel();
            let forward = async move {
                while let Some(n) = prx.recv().await {
                    poll_tx
                        .emit(Event::CountPolled { count: n, expected })
                        .await;
                }
            };
            let options = PollOptions {
                initial_interval: Duration::from_millis(250),
                ..PollOptions::default()
            };
            let wait = wait_for_count(
                client,
                batch.as_str(),
                expected,
                &options,
                &cancel,
                move |n| {
                    let _ = ptx.send(n);
                },
            );
            let (n, ()) = tokio::join!(wait, forward);
            let n = n?;
            manifest.count_confirmed = Some(n);
            manifest.save(&state_path)?;
            sink.emit(Event::CountConfirmed { count: n, expected })
                .await;
            count = Some(n);
        }
        Ok((summary, count))
    }
    .await;
    drop(sink);
    let mut renderer = drawing.await.ok();
    let (summary, count) = match outcome {
        Ok(done) => done,
        Err(e) => {
            if let Some(r) = renderer.as_mut() {
                r.clear();
            }
            return Err(map_error(&e));
        }
    };
    drop(renderer);

    let out = &config.output;
    if out.is_json() {
        out.document(&json!({
            "batchId": batch.as_str(),
            "mode": manifest.ingest.mode,
            "items": expected,
            "uploadedNow": summary.items,
            "uploadedBefore": before,
            "shardsUploadedNow": summary.shards,
            "count": count,
            "stateFile": state_path,
        }))
    } else {
        let mut t = Table::key_values();
        t.row(["batch".to_owned(), batch.to_string()]);
        t.row([
            "uploaded".to_owned(),
            format!(
                "{} of {expected} items now, {before} before ({} mode)",
                summary.items,
                match manifest.ingest.mode {
                    rf_batch::ingest::UploadMode::Single => "single",
                    rf_batch::ingest::UploadMode::Bulk => "bulk",
                }
            ),
        ]);
        if let Some(n) = count {
            t.row(["indexed".to_owned(), n.to_string()]);
        }
        out.table(&t)
    }
}

/// What [`prepare`] found and planned.
struct Prepared {
    manifest: Manifest,
    resumed: bool,
    changes: Option<Reconciliation>,
    images: usize,
    videos: usize,
    hidden: u64,
    skipped: Vec<SkippedFile>,
}

/// Scans `input_dir`, then plans a new manifest (written to disk as the scan
/// goes, so memory stays flat) or reconciles the one a previous run left
/// (blocking).
fn prepare(
    input_dir: &Path,
    state_path: &Path,
    batch: &BatchId,
    kind: MediaKind,
    scan_options: &ScanOptions,
    plan_options: &PlanOptions,
) -> Result<Prepared> {
    let prepared = Manifest::open_or_plan(
        state_path,
        FreshRun {
            input_dir,
            batch_id: batch.to_string(),
            workflow_id: String::new(),
            kind: Some(kind),
            scan: scan_options,
            plan: plan_options,
        },
        |m| {
            if m.run.input_dir != input_dir || m.run.kind != kind {
                return Err(rf_batch::Error::InvalidInput {
                    what: "--batch-id",
                    detail: format!(
                        "batch {batch} was filled from {} by an earlier ingest; use another --batch-id (or remove {})",
                        m.run.input_dir.display(),
                        state_path.display()
                    ),
                });
            }
            Ok(())
        },
    )
    .map_err(|e| map_error(&e))?;
    Ok(Prepared {
        manifest: prepared.manifest,
        resumed: prepared.changes.is_some(),
        changes: prepared.changes,
        images: prepared.scan.images,
        videos: prepared.scan.videos,
        hidden: prepared.scan.hidden,
        skipped: prepared.scan.skipped,
    })
}

/// Where the manifest of a directory ingest into `batch` lives.
fn state_path(config: &Config, batch: &BatchId) -> Result<PathBuf> {
    let cache = config.cache_dir.as_ref().ok_or_else(|| {
        CliError::local(
            "cannot find a cache directory for the ingest manifest: set XDG_CACHE_HOME or HOME",
        )
    })?;
    Ok(cache
        .join("ingest")
        .join(config.api_label())
        .join(batch.as_str())
        .join(rf_batch::state::MANIFEST_FILE))
}
