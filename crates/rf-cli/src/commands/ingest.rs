//! `rf batch ingest`: a directory of images or videos (single uploads or tar
//! shards, resumable), or a JSON-lines references file.
//!
//! Directory ingests keep rf-batch's manifest in the cache directory
//! (`<cache>/rf/ingest/<api>/<batch-id>/rf-run.json`): never in the input
//! directory, which may be read-only. Re-running the same command sends only
//! what is missing.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rf_batch::Context;
use rf_batch::cloud::CloudUrl;
use rf_batch::ingest::{MediaKind, UploadMode, ingest_references_file};
use rf_batch::pipeline::{IngestOptions, IngestReport};
use rf_batch::state::StateError;
use rf_batch::wait::{PollOptions, wait_for_count};
use rf_types::BatchId;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::session::{Session, map_error};
use super::{bucket, options, state_lock};
use crate::args::BatchIngestArgs;
use crate::config::Config;
use crate::error::{CliError, Result};
use crate::events::{drawn, plural};
use crate::output::Table;
use crate::progress::Progress;

/// How long `--wait` waits for the count by default.
const COUNT_TIMEOUT_DEFAULT: Duration = Duration::from_secs(600);

/// References sent per request.
const REFERENCES_CHUNK: usize = rf_batch::ingest::references::MAX_REFERENCES_PER_REQUEST;

/// Checks the input (directory or references file) before anything else
/// happens, so a typo is a usage error and starts no emulator.
pub(crate) fn check_input(args: &BatchIngestArgs) -> Result<()> {
    options::batch_id(&args.batch_id)?;
    if bucket_source(args)?.is_some() {
        return Ok(());
    }
    match (
        &args.source.images,
        &args.source.videos,
        &args.source.references,
    ) {
        (Some(dir), _, _) => options::input_dir("--images", dir),
        (None, Some(dir), _) => options::input_dir("--videos", dir),
        (None, None, Some(file)) => options::input_file("--references", file),
        (None, None, None) => match &args.source.query {
            Some(q) if q.trim().is_empty() => Err(CliError::usage(
                "--query is blank: give a RoboQL query, such as \"tag:night\"",
            )),
            Some(_) => Ok(()),
            None => Err(CliError::usage(
                "pass --images DIR, --videos DIR, --references FILE or --query ROBOQL",
            )),
        },
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
    if let Some((url, kind)) = bucket_source(args)? {
        return bucket(args, &batch, (url, kind), session, config, progress, cancel).await;
    }
    if let Some(path) = &args.source.references {
        return references(args, &batch, path, session, config, &cancel).await;
    }
    if let Some(query) = &args.source.query {
        return roboql(args, &batch, query, session, config).await;
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
    let input = Input { dir, kind };
    directory(args, &batch, input, session, config, progress, cancel).await
}

/// The bucket URL given to `--images` or `--videos`, if any.
fn bucket_source(args: &BatchIngestArgs) -> Result<Option<(CloudUrl, MediaKind)>> {
    let given = [
        (&args.source.images, MediaKind::Image),
        (&args.source.videos, MediaKind::Video),
    ];
    for (value, kind) in given {
        if let Some(url) = value
            .as_deref()
            .map(bucket::bucket_url)
            .transpose()?
            .flatten()
        {
            return Ok(Some((url, kind)));
        }
    }
    Ok(None)
}

/// `rf batch ingest --images s3://...`: lists, presigns and ingests the
/// bucket, then (`--wait`) waits for the count.
async fn bucket(
    args: &BatchIngestArgs,
    batch: &BatchId,
    (url, kind): (CloudUrl, MediaKind),
    session: &Session,
    config: &Config,
    progress: Progress,
    cancel: CancellationToken,
) -> Result<()> {
    if args.dry_run {
        return bucket::dry_run(&url, kind, batch, config).await;
    }
    config.output.note(&format!(
        "listing {url} and sending its {} by reference as the listing goes",
        kind.plural()
    ));
    let request = bucket::BucketIngest {
        url: url.clone(),
        kind,
        batch,
        display_name: args.batch_name.clone(),
        notifications_url: args.notifications_url.clone(),
        presign_expiry: args.presign_expiry.map_or(
            rf_batch::ingest::DEFAULT_PRESIGN_EXPIRY,
            Duration::from_secs,
        ),
        owner: "rf batch ingest",
    };
    let (report, renderer) = drawn(progress, config, |events| {
        bucket::ingest(request, session, config, events, cancel.clone())
    })
    .await;
    drop(renderer);
    let report = report?;
    let mut count = None;
    if args.wait {
        let expected = report.references.references;
        count = Some(wait_count(session, batch.as_str(), expected, args, &cancel).await?);
    }
    bucket::print(&url, kind, batch, &report, count, config)
}

/// `rf batch ingest --query`: asks the service to stage the library images
/// the query selects.
async fn roboql(
    args: &BatchIngestArgs,
    batch: &BatchId,
    query: &str,
    session: &Session,
    config: &Config,
) -> Result<()> {
    let mut request = rf_types::RoboqlIngestRequest::new(query);
    request.display_name = args.batch_name.clone();
    request.notifications_url = args.notifications_url.clone();
    session
        .client()
        .staging()
        .roboql_ingest(batch, &request)
        .await
        .map_err(|e| ingest_error(e, batch))?;
    let out = &config.output;
    if out.is_json() {
        return out.document(&json!({"batchId": batch.as_str(), "query": query}));
    }
    out.note(&format!(
        "the service stages what the query selects into batch {batch}; follow it with: rf batch count {batch}"
    ));
    out.stdout_line(batch.as_str())
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
        let n = wait_count(session, batch.as_str(), summary.references, args, cancel).await?;
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
    args: &BatchIngestArgs,
    cancel: &CancellationToken,
) -> Result<u64> {
    let options = count_poll(args);
    wait_for_count(session.client(), batch, expected, &options, cancel, |_| {})
        .await
        .map_err(|e| map_error(&e))
}

/// How `--wait` polls the count: briskly at first, for `--count-timeout`.
fn count_poll(args: &BatchIngestArgs) -> PollOptions {
    PollOptions {
        initial_interval: Duration::from_millis(250),
        timeout: Some(
            args.count_timeout
                .map_or(COUNT_TIMEOUT_DEFAULT, Duration::from_secs),
        ),
        ..PollOptions::default()
    }
}

/// A directory to ingest and what it holds.
#[derive(Debug, Clone, Copy)]
struct Input<'a> {
    dir: &'a Path,
    kind: MediaKind,
}

/// Ingests a directory with rf-batch's ingest run, drawing its events.
async fn directory(
    args: &BatchIngestArgs,
    batch: &BatchId,
    input: Input<'_>,
    session: &Session,
    config: &Config,
    progress: Progress,
    cancel: CancellationToken,
) -> Result<()> {
    let state_file = state_path(config, batch)?;
    let options = ingest_options(args, batch, input, state_file, config);
    let ctx = Context::new(session.client().clone()).with_cancel(cancel);
    if args.dry_run {
        let dry = rf_batch::pipeline::dry_run_ingest(&ctx, &options).await;
        return super::dry_run::print(&dry.map_err(|e| ingest_error(e, batch))?, config);
    }
    let (result, renderer) = drawn(progress, config, |events| async move {
        rf_batch::pipeline::ingest(&ctx.with_events(events), &options).await
    })
    .await;
    drop(renderer);
    let report = result.map_err(|e| ingest_error(e, batch))?;
    print_ingest(&report, config)
}

fn ingest_options(
    args: &BatchIngestArgs,
    batch: &BatchId,
    input: Input<'_>,
    state_file: PathBuf,
    config: &Config,
) -> IngestOptions {
    let mut options = IngestOptions::new(input.dir, batch.clone(), input.kind, state_file);
    options.plan.mode = options::ingest_mode(args.mode);
    options.upload.concurrency = config.concurrency;
    options.upload.display_name.clone_from(&args.batch_name);
    options
        .notifications_url
        .clone_from(&args.notifications_url);
    options.wait = args.wait.then(|| count_poll(args));
    // One `rf batch ingest` at a time per batch (its manifest).
    options.lock_owner = Some("rf batch ingest".to_owned());
    options
}

/// The library's error in this command's terms.
fn ingest_error(e: rf_batch::Error, batch: &BatchId) -> CliError {
    match e {
        rf_batch::Error::State(e @ StateError::InUse { .. }) => {
            state_lock::explain(e, &format!("the ingest of batch {batch}"), "--batch-id")
        }
        rf_batch::Error::NoMedia { kind, dir } => CliError::usage(format!(
            "no {} found in {}; {}",
            kind.plural(),
            dir.display(),
            options::media_hint(kind)
        )),
        rf_batch::Error::ForeignRun {
            path,
            existing_input,
            ..
        } => CliError::usage(format!(
            "batch {batch} was filled from {} by an earlier ingest; use another --batch-id (or remove {})",
            existing_input.display(),
            path.display()
        )),
        other => map_error(&other),
    }
}

fn print_ingest(report: &IngestReport, config: &Config) -> Result<()> {
    let out = &config.output;
    if out.is_json() {
        return out.document(report);
    }
    let mut t = Table::key_values();
    t.row(["batch".to_owned(), report.batch_id.clone()]);
    let mode = match report.mode {
        Some(UploadMode::Single) => "single",
        _ => "bulk",
    };
    t.row([
        "uploaded".to_owned(),
        format!(
            "{} of {} items now, {} before ({mode} mode)",
            report.uploaded_now, report.items, report.uploaded_before
        ),
    ]);
    if let Some(n) = report.count {
        t.row(["indexed".to_owned(), n.to_string()]);
    }
    if let Some(c) = &report.concurrency {
        t.row(["concurrency".to_owned(), crate::events::concurrency_text(c)]);
    }
    out.table(&t)
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
