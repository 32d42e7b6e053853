//! `rf batch ingest --images s3://...` (also `gs://`, `az://`, `azure://`):
//! rf-batch's bucket ingest (`ingest::cloud`), resumable through a journal
//! of accepted chunks in the cache directory, beside the manifests of
//! directory ingests (`<cache>/rf/ingest/<api>/<batch-id>/cloud-*.jsonl`).

use std::path::Path;
use std::time::Duration;

use rf_batch::Context;
use rf_batch::cloud::CloudUrl;
use rf_batch::ingest::{CloudIngestOptions, CloudIngestReport, MediaKind, journal_file_name};
use rf_types::BatchId;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::session::{Session, map_error};
use crate::config::Config;
use crate::error::{CliError, Result};
use crate::events::plural;
use crate::output::Table;

/// The bucket URL of an `--images` / `--videos` value, if it is one
/// (`scheme://...`); `Err` when it looks like one but is not valid.
pub(crate) fn bucket_url(value: &Path) -> Result<Option<CloudUrl>> {
    let Some(text) = value.to_str().filter(|t| CloudUrl::looks_like(t)) else {
        return Ok(None);
    };
    CloudUrl::parse(text)
        .map(Some)
        .map_err(|e| map_error(&rf_batch::Error::Cloud(e.into())))
}

/// A bucket ingest as the command line asks for it.
#[derive(Debug)]
pub(crate) struct BucketIngest<'a> {
    /// The bucket URL.
    pub(crate) url: CloudUrl,
    /// Images or videos.
    pub(crate) kind: MediaKind,
    /// The batch.
    pub(crate) batch: &'a BatchId,
    /// `--batch-name`.
    pub(crate) display_name: Option<String>,
    /// `--notifications-url`.
    pub(crate) notifications_url: Option<String>,
    /// `--presign-expiry`.
    pub(crate) presign_expiry: Duration,
    /// Who holds the journal's directory.
    pub(crate) owner: &'static str,
}

/// Lists, presigns and ingests the bucket; returns what it did.
pub(crate) async fn ingest(
    request: BucketIngest<'_>,
    session: &Session,
    config: &Config,
    events: rf_batch::EventSink,
    cancel: CancellationToken,
) -> Result<CloudIngestReport> {
    let store =
        rf_batch::cloud::open(&request.url).map_err(|e| map_error(&rf_batch::Error::Cloud(e)))?;
    let journal =
        journal_dir(config, request.batch)?.join(journal_file_name(&request.url, request.kind));
    let mut options = CloudIngestOptions::new(
        request.url.clone(),
        request.batch.clone(),
        request.kind,
        journal,
    );
    options.presign_expiry = request.presign_expiry;
    options.display_name = request.display_name;
    options.notifications_url = request.notifications_url;
    options.lock_owner = Some(request.owner.to_owned());
    let ctx = Context::new(session.client().clone())
        .with_cancel(cancel)
        .with_events(events);
    rf_batch::ingest::ingest_cloud(&ctx, store.as_ref(), &options)
        .await
        .map_err(|e| match e {
            rf_batch::Error::State(e @ rf_batch::state::StateError::InUse { .. }) => {
                super::state_lock::explain(
                    e,
                    &format!("the ingest of {} into batch {}", request.url, request.batch),
                    "--batch-id",
                )
            }
            other => map_error(&other),
        })
}

/// `--dry-run`: lists the bucket as the ingest would and says what it would
/// send; signs and sends nothing.
pub(crate) async fn dry_run(
    url: &CloudUrl,
    kind: MediaKind,
    batch: &BatchId,
    config: &Config,
) -> Result<()> {
    let store = rf_batch::cloud::open(url).map_err(|e| map_error(&rf_batch::Error::Cloud(e)))?;
    let max = rf_batch::ingest::scan::MAX_IMAGE_BYTES;
    let tally = rf_batch::ingest::list_cloud(store.as_ref(), url, kind, max)
        .await
        .map_err(|e| map_error(&e))?;
    let out = &config.output;
    if out.is_json() {
        return out.document(&json!({
            "batchId": batch.as_str(),
            "source": url.as_str(),
            "dryRun": true,
            "wouldSend": tally.kept,
            "listed": tally.listed,
            "leftOut": {"unmatched": tally.unmatched, "hidden": tally.hidden, "otherKind": tally.other, "tooLarge": tally.too_large},
        }));
    }
    let mut t = Table::key_values();
    t.row(["batch".to_owned(), batch.to_string()]);
    t.row(["source".to_owned(), url.to_string()]);
    t.row([
        "would send".to_owned(),
        format!(
            "{} {} of {} objects listed (dry run: nothing sent)",
            tally.kept,
            kind.plural(),
            tally.listed
        ),
    ]);
    out.table(&t)
}

/// Where the journals of bucket ingests into `batch` live.
fn journal_dir(config: &Config, batch: &BatchId) -> Result<std::path::PathBuf> {
    let cache = config.cache_dir.as_ref().ok_or_else(|| {
        CliError::local(
            "cannot find a cache directory for the ingest journal: set XDG_CACHE_HOME or HOME",
        )
    })?;
    Ok(cache
        .join("ingest")
        .join(config.api_label())
        .join(batch.as_str()))
}

/// Prints what a bucket ingest did (and the count, after `--wait`).
pub(crate) fn print(
    url: &CloudUrl,
    kind: MediaKind,
    batch: &BatchId,
    report: &CloudIngestReport,
    count: Option<u64>,
    config: &Config,
) -> Result<()> {
    let (r, l) = (&report.references, &report.listing);
    let out = &config.output;
    if out.is_json() {
        return out.document(&json!({
            "batchId": batch.as_str(),
            "source": url.as_str(),
            "references": r.references,
            "requests": r.requests,
            "ingestIds": r.ingest_ids,
            "skippedChunks": r.skipped_chunks,
            "skippedReferences": r.skipped_references,
            "duplicated": r.duplicated,
            "listed": l.listed,
            "leftOut": {"unmatched": l.unmatched, "hidden": l.hidden, "otherKind": l.other, "tooLarge": l.too_large},
            "count": count,
        }));
    }
    let mut t = Table::key_values();
    t.row(["batch".to_owned(), batch.to_string()]);
    t.row(["source".to_owned(), url.to_string()]);
    t.row([
        "references".to_owned(),
        format!(
            "{} of {} objects listed; {} now in {}, {} accepted before",
            r.references,
            l.listed,
            r.references - r.skipped_references,
            plural(r.requests, "request"),
            r.skipped_references
        ),
    ]);
    let left_out = l.unmatched + l.hidden + l.other + l.too_large;
    if left_out > 0 {
        t.row([
            "left out".to_owned(),
            format!(
                "{} not matching the pattern, {} hidden, {} not {}, {} too large",
                l.unmatched,
                l.hidden,
                l.other,
                kind.plural(),
                l.too_large
            ),
        ]);
    }
    if let Some(n) = count {
        t.row(["count".to_owned(), n.to_string()]);
    }
    out.table(&t)
}
