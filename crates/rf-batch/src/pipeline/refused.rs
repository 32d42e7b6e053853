//! Files the service refused while indexing a shard (bulk mode), settled on
//! a re-run: a refused file the user removed is no longer expected, one they
//! fixed is sent again on its own, one left as it was is named again.
//!
//! A shard is one upload, so a corrupt image inside it cannot be taken out
//! of the plan: the count check finds the batch short by the refused files
//! ([`CountTimeout::rejected`]). This module looks each one up in the input
//! directory and decides.

use std::collections::{HashMap, HashSet};

use std::path::Path;

use rf_types::BatchId;

use crate::context::Context;
use crate::error::{CountTimeout, Error, Result};
use crate::files::plan::{PlannedItem, ShardPlan};
use crate::files::scan::mtime_ns;
use crate::files::tar_stream::{TAR_END_LEN, member_len};
use crate::ingest::upload::{UploadSettings, UploadTarget, upload_shard};
use crate::state::{ManifestFile, RefusedFile};
use crate::wait::{PollOptions, wait_past_rejections};

/// The ingest whose count check stopped on refused files.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shortfall<'a> {
    /// Its manifest (the shards' items).
    pub(crate) state: &'a ManifestFile,
    /// The input directory, canonical.
    pub(crate) input_dir: &'a Path,
    /// The batch.
    pub(crate) batch: &'a BatchId,
    /// Items the batch should hold.
    pub(crate) expected: u64,
}

/// What became of the refused files since they were sent.
#[derive(Debug, Default)]
struct Refused {
    removed: Vec<PlannedItem>,
    changed: Vec<PlannedItem>,
    unchanged: Vec<PlannedItem>,
}

impl Refused {
    /// Every refused file, as the manifest records it.
    fn records(&self, settled: bool) -> Vec<RefusedFile> {
        [&self.removed, &self.changed, &self.unchanged]
            .into_iter()
            .flatten()
            .map(|item| RefusedFile {
                relative: item.relative.clone(),
                settled,
            })
            .collect()
    }
}

/// Settles a count check that stopped on refused files: returns the count
/// once removed files are no longer expected and fixed ones were sent
/// again; [`Error::FilesRefused`] when some are still as they were refused.
/// The refused files found are put in `found` (settled or not), for the
/// manifest, whatever the outcome.
pub(crate) async fn settle(
    ctx: &Context,
    p: Shortfall<'_>,
    timeout: &CountTimeout,
    poll: &PollOptions,
    found: &mut Vec<RefusedFile>,
) -> Result<u64> {
    let refused = find(p, timeout)?;
    if refused.removed.len() + refused.changed.len() + refused.unchanged.len() == 0 {
        // Not files of this plan: nothing to settle here.
        return Err(Error::CountTimeout(Box::new(timeout.clone())));
    }
    *found = refused.records(false);
    if !refused.unchanged.is_empty() {
        return Err(still_refused(&refused.unchanged, timeout, p.expected));
    }
    if !refused.changed.is_empty() {
        resend(ctx, p, refused.changed.clone()).await?;
    }
    *found = refused.records(true);
    let expected = timeout.counted + refused.changed.len() as u64;
    // The shards still report the files refused before; only new
    // refusals may stop this wait early.
    let count = wait_past_rejections(
        &ctx.client,
        p.batch.as_str(),
        expected,
        poll,
        &ctx.cancel,
        |_| {},
        timeout.rejected,
    )
    .await?;
    ctx.warn(format!(
        "{} of the files the service refused were removed and {} fixed ones sent again; batch {} holds {count} items",
        refused.removed.len(),
        refused.changed.len(),
        p.batch
    ))
    .await;
    Ok(count)
}

/// Sends the fixed files again, as one more tar shard: a batch filled by
/// shards takes no single uploads. Not recorded in the manifest: a re-run
/// finds them in the batch (the count check) and sends nothing more.
async fn resend(ctx: &Context, p: Shortfall<'_>, items: Vec<PlannedItem>) -> Result<()> {
    let items: Vec<PlannedItem> = items
        .into_iter()
        .map(|item| refreshed(p, item))
        .collect::<Result<_>>()?;
    let shard = ShardPlan {
        index: p.state.ingest.shards.len(),
        tar_bytes: items.iter().map(|i| member_len(i.size)).sum::<u64>() + TAR_END_LEN,
        items,
    };
    let target = UploadTarget {
        input_dir: p.input_dir.to_path_buf(),
        batch: p.batch.clone(),
        settings: UploadSettings::default(),
    };
    upload_shard(&ctx.client, &target, &shard).await
}

/// `item` with the size and time its file has now.
fn refreshed(p: Shortfall<'_>, mut item: PlannedItem) -> Result<PlannedItem> {
    let path = p.input_dir.join(&item.relative);
    let meta = std::fs::metadata(&path).map_err(|source| Error::Io {
        context: "cannot read",
        path,
        source,
    })?;
    item.size = meta.len();
    item.mtime_ns = mtime_ns(&meta);
    Ok(item)
}

/// The refused files of this plan, sorted by what the input holds now.
fn find(p: Shortfall<'_>, timeout: &CountTimeout) -> Result<Refused> {
    let names: HashSet<&str> = timeout.failed_names.iter().map(String::as_str).collect();
    let mut refused = Refused::default();
    for (i, shard) in p.state.ingest.shards.iter().enumerate() {
        if !shard.uploaded {
            continue;
        }
        for item in p.state.shard_plan(i)?.items {
            if names.contains(item.name.as_str()) {
                classify(p, item, &mut refused);
            }
        }
    }
    Ok(refused)
}

fn classify(p: Shortfall<'_>, item: PlannedItem, refused: &mut Refused) {
    match std::fs::metadata(p.input_dir.join(&item.relative)) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => refused.removed.push(item),
        Ok(meta) if meta.len() == item.size && mtime_ns(&meta) == item.mtime_ns => {
            refused.unchanged.push(item);
        }
        _ => refused.changed.push(item),
    }
}

/// [`Error::FilesRefused`] naming the files still as they were refused,
/// with the service's reason.
fn still_refused(unchanged: &[PlannedItem], timeout: &CountTimeout, expected: u64) -> Error {
    let reasons: HashMap<&str, &str> = timeout
        .failed_names
        .iter()
        .zip(&timeout.failed_files)
        .map(|(name, described)| (name.as_str(), described.as_str()))
        .collect();
    let first = &unchanged[0];
    // `name (reason)` as the service said it, told with the file's path.
    let reason = reasons
        .get(first.name.as_str())
        .and_then(|described| described.strip_prefix(first.name.as_str()))
        .unwrap_or(" (refused while its shard was indexed)");
    Error::FilesRefused {
        refused: unchanged.len(),
        total: usize::try_from(expected).unwrap_or(usize::MAX),
        first: format!("{}{reason}", first.relative),
    }
}
