//! Uploading a plan: single images, videos and tar shards, N in flight.
//!
//! [`upload_pending`] sends every unit of the manifest that is not yet marked
//! uploaded, at most [`UploadSettings::concurrency`] at a time, and records each
//! completion in the manifest (saved atomically, at most every
//! [`SAVE_INTERVAL`], and at the end). A unit
//! whose failure proves nothing reached the service (an error status, or a
//! connection that never opened) is retried in the same run with a fresh signed
//! URL; any other failure is recorded as failed, and re-running the command
//! retries it. On cancellation no new unit starts; units in flight finish, so
//! the manifest never misses an upload that the service received.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use rf_transport::Body;
use rf_types::{BatchId, ShardNotificationConfig};

use super::plan::{PlannedItem, ShardPlan};
use super::scan::MediaKind;
use super::tar_stream::{MemberSource, TarMember, tar_len, tar_stream};
use crate::client::Client;
use crate::context::Context;
use crate::error::{Error, Result};
use crate::events::Event;
use crate::limit::{Concurrency, LimitReport, Limiter};
use crate::state::{Manifest, ManifestFile, ShardRecord};
use crate::wait::pause;

/// How uploads run.
#[derive(Debug, Clone, PartialEq)]
pub struct UploadSettings {
    /// Uploads in flight at once (default: adaptive from 32 up to 128; see
    /// [`crate::limit`]).
    pub concurrency: Concurrency,
    /// Batch display name sent with each upload.
    pub display_name: Option<String>,
    /// Staging webhook registered through each shard's `notification_config.json`.
    pub notification: Option<ShardNotificationConfig>,
    /// Attempts per unit for failures that are safe to retry (default 3).
    pub attempts: u32,
    /// Pause before the first retry, doubled each time (default 1 s).
    pub retry_delay: Duration,
}

impl Default for UploadSettings {
    fn default() -> Self {
        UploadSettings {
            concurrency: Concurrency::default(),
            display_name: None,
            notification: None,
            attempts: 3,
            retry_delay: Duration::from_secs(1),
        }
    }
}

/// What [`upload_pending`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UploadSummary {
    /// Items uploaded now.
    pub items: u64,
    /// Shards uploaded now.
    pub shards: usize,
    /// Units (single files and shards) uploaded now.
    pub units: usize,
    /// Units that failed, with the error text.
    pub failures: Vec<(String, String)>,
    /// How many of `failures` another attempt may fix: the transfer broke
    /// (the unit may or may not have arrived) or the service was busy.
    pub retryable_failures: usize,
    /// How many of `failures` the service refused as invalid (HTTP 400,
    /// 413, 415, 422: a corrupt or unsupported file): sending them again
    /// unchanged cannot help.
    pub refused: usize,
    /// Units sent again within this call after a failure that proved nothing
    /// arrived (on top of the transport's own retries).
    pub resent: u64,
    /// Whether it stopped early because of cancellation.
    pub cancelled: bool,
    /// What the concurrency limit did (`None` when nothing was pending).
    pub concurrency: Option<LimitReport>,
}

/// One upload. A shard is described by its record; its items are read
/// from the items file only while it uploads.
#[derive(Debug, Clone)]
enum Unit {
    Single(usize, PlannedItem),
    Shard(usize, ShardRecord),
}

impl Unit {
    fn label(&self) -> String {
        match self {
            Unit::Single(_, item) => item.relative.clone(),
            Unit::Shard(_, s) => format!("shard {}", s.index),
        }
    }
    fn items(&self) -> usize {
        match self {
            Unit::Single(..) => 1,
            Unit::Shard(_, s) => s.items.count(),
        }
    }
    fn bytes(&self) -> u64 {
        match self {
            Unit::Single(_, item) => item.size,
            Unit::Shard(_, s) => s.tar_bytes,
        }
    }
}

/// Where uploads go and how: the input directory the plan's relative paths
/// start from, the batch, and the settings.
#[derive(Debug, Clone)]
pub struct UploadTarget {
    /// The directory the manifest's relative paths start from.
    pub input_dir: PathBuf,
    /// The staging batch.
    pub batch: BatchId,
    /// Concurrency, retries, display name, shard notification.
    pub settings: UploadSettings,
}

/// Uploads every pending unit of the manifest (see the module docs), saving
/// it after completions, under a limiter of its own.
pub async fn upload_pending(
    ctx: &Context,
    target: &UploadTarget,
    state: &mut ManifestFile,
) -> Result<UploadSummary> {
    let limiter = Limiter::new(
        target.settings.concurrency,
        ctx.client.retry_stats().cloned(),
    );
    upload_pending_with(ctx, target, state, &limiter).await
}

/// [`upload_pending`] under `limiter`: [`upload_all`] keeps one across its
/// rounds, so a later round starts where the last one's limit was.
async fn upload_pending_with(
    ctx: &Context,
    target: &UploadTarget,
    state: &mut ManifestFile,
    limiter: &Arc<Limiter>,
) -> Result<UploadSummary> {
    // Only positions here: a shard's items are read from the items file
    // when it starts, so memory holds at most `concurrency` shards of them.
    let pending = pending_units(state);
    mark_attempted(state)?;
    let mut recorder = Recorder::new(state.expected_count());
    // The per-unit futures own everything they use (no borrowed captures),
    // so the whole run stays `Send` for `tokio::spawn`.
    let shared_target = Arc::new(target.clone());
    let items_file: Option<Arc<Path>> = state.items_file().map(Arc::from);
    // The stream reads the manifest when it starts a unit and the loop
    // below updates it between polls; the lock is never held across an await.
    let shared = std::sync::Mutex::new(state);
    let shared_ref = &shared;
    let any = !pending.is_empty();
    let unit_limiter = limiter.clone();
    let mut results = futures::stream::iter(pending.into_iter().map(move |(shard, i)| {
        let unit = unit_at(&lock(shared_ref), shard, i);
        let sender = Sender {
            ctx: ctx.clone(),
            target: shared_target.clone(),
            items_file: items_file.clone(),
            limiter: unit_limiter.clone(),
        };
        sender.send(unit)
    }))
    .buffer_unordered(target.settings.concurrency.max());
    while let Some((unit, result)) = results.next().await {
        recorder.record(ctx, &shared, unit, result).await?;
    }
    drop(results);
    let state = shared
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    recorder.summary.concurrency = any.then(|| limiter.report());
    recorder.finish(state)
}

/// The units not yet uploaded: `(is_shard, index)`.
fn pending_units(manifest: &Manifest) -> Vec<(bool, usize)> {
    let singles = manifest.ingest.singles.iter().enumerate();
    let shards = manifest.ingest.shards.iter().enumerate();
    singles
        .filter(|(_, s)| !s.uploaded)
        .map(|(i, _)| (false, i))
        .chain(shards.filter(|(_, s)| !s.uploaded).map(|(i, _)| (true, i)))
        .collect()
}

/// Marks the shards about to be sent before any byte leaves: after a crash
/// or a dropped connection, a re-run checks the batch for them first.
fn mark_attempted(state: &mut ManifestFile) -> Result<()> {
    let mut marked = false;
    for s in state.ingest.shards.iter_mut().filter(|s| !s.uploaded) {
        marked |= !s.attempted;
        s.attempted = true;
    }
    if marked {
        state.save()?;
    }
    Ok(())
}

fn unit_at(manifest: &Manifest, shard: bool, i: usize) -> Unit {
    if shard {
        Unit::Shard(i, manifest.ingest.shards[i].clone())
    } else {
        Unit::Single(i, manifest.ingest.singles[i].item.clone())
    }
}

/// What became of one unit: `None` when it never started (cancelled), else
/// its outcome and how many times it was resent.
type UnitOutcome = (Unit, Option<(Result<()>, u64)>);

/// What one unit's upload needs (owned: the whole run stays `Send`).
struct Sender {
    ctx: Context,
    target: Arc<UploadTarget>,
    items_file: Option<Arc<Path>>,
    limiter: Arc<Limiter>,
}

impl Sender {
    /// Uploads `unit` once the limiter admits it.
    async fn send(self, unit: Unit) -> UnitOutcome {
        let permit = self.limiter.acquire().await;
        if self.ctx.cancel.is_cancelled() {
            return (unit, None);
        }
        let ctx = &self.ctx;
        ctx.emit(Event::UploadStarted {
            unit: unit.label(),
            items: unit.items(),
            bytes: unit.bytes(),
        })
        .await;
        let outcome = upload_unit(ctx, &self.target, &unit, self.items_file.as_deref()).await;
        let (bytes, overload) = match &outcome.0 {
            Ok(()) => (unit.bytes(), false),
            Err(e) => (0, e.is_overload()),
        };
        if let Some(limit) = permit.finish(bytes, overload) {
            ctx.emit(Event::ConcurrencyChanged {
                transfers: "uploads".to_owned(),
                limit,
            })
            .await;
        }
        (unit, Some(outcome))
    }
}

/// Records each unit's outcome in the manifest and the summary.
///
/// Rewriting a manifest of 100k files after every one of hundreds of
/// shards would dominate the run, so saves are spaced at least
/// `SAVE_INTERVAL` apart, more for a manifest slow to write (`SavePacer`),
/// and always made at the end. This is safe: every shard was marked
/// `attempted` before sending, so one whose completion was not saved yet is
/// checked against the batch on resume, never resent blindly; a single file
/// resent overwrites itself.
struct Recorder {
    summary: UploadSummary,
    total: u64,
    pacer: SavePacer,
    dirty: bool,
}

impl Recorder {
    fn new(total: u64) -> Recorder {
        Recorder {
            summary: UploadSummary::default(),
            total,
            pacer: SavePacer::new(),
            dirty: false,
        }
    }

    async fn record(
        &mut self,
        ctx: &Context,
        shared: &std::sync::Mutex<&mut ManifestFile>,
        unit: Unit,
        result: Option<(Result<()>, u64)>,
    ) -> Result<()> {
        let result = result.map(|(result, resent)| {
            self.summary.resent += resent;
            result
        });
        match result {
            None | Some(Err(Error::Cancelled)) => self.summary.cancelled = true,
            Some(Ok(())) => {
                let uploaded = self.mark_uploaded(&mut lock(shared), &unit)?;
                self.summary.units += 1;
                self.summary.items += unit.items() as u64;
                ctx.emit(Event::UploadFinished {
                    unit: unit.label(),
                    items: unit.items(),
                    bytes: unit.bytes(),
                    uploaded,
                    total: self.total,
                })
                .await;
            }
            Some(Err(e)) => self.failed(ctx, &unit, &e).await,
        }
        Ok(())
    }

    /// Marks `unit` uploaded, saves when due; returns the items uploaded so
    /// far.
    fn mark_uploaded(&mut self, state: &mut ManifestFile, unit: &Unit) -> Result<u64> {
        match unit {
            Unit::Single(i, _) => state.ingest.singles[*i].uploaded = true,
            Unit::Shard(i, _) => {
                state.ingest.shards[*i].uploaded = true;
                self.summary.shards += 1;
            }
        }
        self.dirty = true;
        if self.pacer.due() {
            self.pacer.save(state)?;
            self.dirty = false;
        }
        Ok(state.uploaded_count())
    }

    async fn failed(&mut self, ctx: &Context, unit: &Unit, e: &Error) {
        let text = e.to_string();
        if e.may_succeed_later() {
            self.summary.retryable_failures += 1;
        } else if e.is_refusal() {
            self.summary.refused += 1;
        }
        ctx.emit(Event::UploadFailed {
            unit: unit.label(),
            error: text.clone(),
        })
        .await;
        self.summary.failures.push((unit.label(), text));
    }

    fn finish(self, state: &mut ManifestFile) -> Result<UploadSummary> {
        if self.dirty {
            state.save()?;
        }
        Ok(self.summary)
    }
}

/// Upload rounds of [`upload_all`]: after a round that made progress but
/// whose failures may all succeed later (broken transfers, a busy service),
/// the batch is checked and what is missing is sent again, up to this many
/// rounds in all.
pub const UPLOAD_ROUNDS: u32 = 4;

/// Uploads everything the manifest still lacks, in rounds: each round first
/// settles the shards whose transfer broke ([`resolve_uncertain_shards`]:
/// found in the batch means done, absent means send again), then runs
/// [`upload_pending`], all rounds under one limiter (a round after broken
/// transfers starts at the level the last one reached, not from scratch).
/// Another round follows while the last one made progress
/// and all its failures may succeed later, up to [`UPLOAD_ROUNDS`]. So a lost
/// answer or a dropped connection neither fails the run nor duplicates a
/// shard, and a service that fails everything is reported, not hammered.
///
/// `settle` is the first pause while waiting for the batch count to settle.
/// The summary adds up the rounds (`items`, `shards`, `units`, `resent`,
/// which also counts broken units sent again); `failures` are those of the
/// last round.
pub async fn upload_all(
    ctx: &Context,
    target: &UploadTarget,
    state: &mut ManifestFile,
    settle: Duration,
) -> Result<UploadSummary> {
    let mut total = UploadSummary::default();
    let mut broken = 0u64;
    let limiter = Limiter::new(
        target.settings.concurrency,
        ctx.client.retry_stats().cloned(),
    );
    for round in 1..=UPLOAD_ROUNDS {
        let found = resolve_uncertain_shards(ctx, &target.batch, state, settle).await?;
        // Broken transfers of the last round that did not arrive go again.
        total.resent += broken.saturating_sub(found as u64);
        let summary = upload_pending_with(ctx, target, state, &limiter).await?;
        let progress = summary.units > 0 || found > 0;
        total.add_round(summary);
        let failed = total.failures.len();
        if total.cancelled
            || failed == 0
            || total.retryable_failures < failed
            || !progress
            || round == UPLOAD_ROUNDS
        {
            break;
        }
        broken = failed as u64;
        ctx.warn(format!(
            "{failed} uploads failed in a way another attempt may fix; checking the batch for any that arrived and sending again only what is missing"
        ))
        .await;
    }
    Ok(total)
}

impl UploadSummary {
    /// Adds a round's summary: counts add up, failures are the round's.
    fn add_round(&mut self, round: UploadSummary) {
        self.items += round.items;
        self.shards += round.shards;
        self.units += round.units;
        self.resent += round.resent;
        self.failures = round.failures;
        self.retryable_failures = round.retryable_failures;
        self.refused = round.refused;
        self.cancelled = round.cancelled;
        if round.concurrency.is_some() {
            self.concurrency = round.concurrency;
        }
    }

    /// The failures as one error, if there were any: [`Error::FilesRefused`]
    /// when the service refused every failed file as invalid (fix or remove
    /// them), else [`Error::UploadsFailed`] (a re-run may fix them).
    pub fn failed(&self) -> Option<Error> {
        let (unit, err) = self.failures.first()?;
        if self.refused == self.failures.len() {
            return Some(Error::FilesRefused {
                refused: self.refused,
                total: self.failures.len() + self.units,
                first: format!("{unit}: {err}"),
            });
        }
        Some(Error::UploadsFailed {
            failed: self.failures.len(),
            total: self.failures.len() + self.units,
            first: format!("{unit}: {err}"),
        })
    }
}

/// Locks `m`; a panic while it was held cannot have left the manifest
/// half-updated (plain field writes), so a poisoned lock is used as it is.
fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Shortest time between two manifest saves during uploads and downloads.
pub const SAVE_INTERVAL: Duration = Duration::from_millis(500);

/// Paces manifest saves during a transfer: at least [`SAVE_INTERVAL`]
/// apart, and at least four times as long apart as the last save took, so
/// rewriting the manifest of a run over 100,000s of files never takes more
/// than about a fifth of the run (a fixed interval made that quadratic).
#[derive(Debug)]
pub(crate) struct SavePacer {
    last: std::time::Instant,
    cost: Duration,
}

impl SavePacer {
    /// A pacer whose first save is due after [`SAVE_INTERVAL`].
    pub(crate) fn new() -> Self {
        SavePacer {
            last: std::time::Instant::now(),
            cost: Duration::ZERO,
        }
    }

    /// Whether a save is due.
    pub(crate) fn due(&self) -> bool {
        self.last.elapsed() >= SAVE_INTERVAL.max(self.cost.saturating_mul(4))
    }

    /// Saves the manifest and notes how long that took.
    pub(crate) fn save(
        &mut self,
        state: &mut ManifestFile,
    ) -> std::result::Result<(), crate::state::StateError> {
        let start = std::time::Instant::now();
        state.save()?;
        self.last = std::time::Instant::now();
        self.cost = self.last - start;
        Ok(())
    }
}

/// Settles shards that were sent but not confirmed (see
/// [`crate::state::ShardRecord::attempted`]): waits until the batch count stops
/// changing, lists the batch, and marks a shard uploaded when its items are
/// there, or clears its mark so it is sent again when none are.
///
/// Returns how many shards were found already on the service.
pub async fn resolve_uncertain_shards(
    ctx: &Context,
    batch: &BatchId,
    state: &mut ManifestFile,
    settle: Duration,
) -> Result<usize> {
    let uncertain: Vec<usize> = state
        .ingest
        .shards
        .iter()
        .enumerate()
        .filter(|(_, s)| s.attempted && !s.uploaded)
        .map(|(i, _)| i)
        .collect();
    if uncertain.is_empty() {
        return Ok(0);
    }
    let last = wait_for_settled_count(ctx, batch, settle).await?;
    // Look only for the names of the uncertain shards while streaming the
    // listing, so memory stays bounded by them, not by the batch.
    let mut names: Vec<Vec<String>> = Vec::with_capacity(uncertain.len());
    for &i in &uncertain {
        let plan = state.shard_plan(i)?;
        names.push(plan.items.into_iter().map(|item| item.name).collect());
    }
    let mut wanted: HashMap<&str, bool> = names
        .iter()
        .flatten()
        .map(|name| (name.as_str(), false))
        .collect();
    if last != Some(0) {
        mark_listed(&ctx.client, batch, &mut wanted).await?;
    }
    let mut found = 0;
    for (i, names) in uncertain.into_iter().zip(&names) {
        let present = names
            .iter()
            .filter(|name| wanted.get(name.as_str()).copied().unwrap_or(false))
            .count();
        if let Some(message) = settle_shard(&mut state.ingest.shards[i], present, names.len()) {
            found += 1;
            ctx.warn(message).await;
        }
    }
    state.save()?;
    Ok(found)
}

/// Lets background indexing settle: two equal counts in a row, and no shard
/// of the batch still waiting to be indexed (a shard stored but not yet
/// indexed is not in the listing, and would be sent twice). Returns the
/// last count (0 for a batch that does not exist yet).
async fn wait_for_settled_count(
    ctx: &Context,
    batch: &BatchId,
    settle: Duration,
) -> Result<Option<u64>> {
    let mut last = None;
    let mut wait = settle;
    for _ in 0..20 {
        let count = match ctx.client.staging().count(batch.as_str(), None).await {
            Ok(c) => Some(c),
            Err(e) if e.is_api(crate::error::ApiErrorKind::NotFound) => Some(0),
            Err(e) => return Err(e),
        };
        if count == last && !shards_pending(&ctx.client, batch).await {
            break;
        }
        last = count;
        pause(wait, &ctx.cancel).await?;
        wait = wait.mul_f64(1.5).min(Duration::from_secs(5));
    }
    Ok(last)
}

/// Streams the batch's listing and sets `wanted[name]` for each name seen.
async fn mark_listed(
    client: &Client,
    batch: &BatchId,
    wanted: &mut HashMap<&str, bool>,
) -> Result<()> {
    let mut files = client.staging().list_files(batch.as_str(), None);
    while let Some(file) = futures::TryStreamExt::try_next(&mut files).await? {
        if let Some(seen) = wanted.get_mut(file.file_name.as_str()) {
            *seen = true;
        }
    }
    Ok(())
}

/// Settles one uncertain shard of which `present` of `items` are in the
/// batch: none means send it again; some means it arrived (the warning to
/// give is returned).
fn settle_shard(shard: &mut ShardRecord, present: usize, items: usize) -> Option<String> {
    if present == 0 {
        shard.attempted = false;
        return None;
    }
    shard.uploaded = true;
    Some(if present == items {
        format!(
            "shard {} had reached the service before the connection was lost; not sending it again",
            shard.index
        )
    } else {
        format!(
            "shard {} reached the service only in part ({present} of {items} items indexed); not sending it again to avoid duplicates",
            shard.index
        )
    })
}

/// Whether the batch has a shard the service has not finished indexing
/// (neither ingested nor failed). Best effort: `false` when the shard
/// listing cannot be read (a simple batch has none).
async fn shards_pending(client: &Client, batch: &BatchId) -> bool {
    let mut shards = client.staging().shards(batch.as_str());
    while let Some(next) = shards.next().await {
        let Ok(shard) = next else { return false };
        let name = shard.status_name.to_ascii_lowercase();
        let settled = name.contains("ingested")
            || name.contains("fail")
            || shard.status_type.to_ascii_lowercase().contains("error");
        if !settled {
            return true;
        }
    }
    false
}

/// Whether a failed upload certainly did not reach the service, so that
/// sending it again cannot duplicate it.
fn safe_to_resend(e: &Error) -> bool {
    match e {
        Error::Api(api) => api.is_transient(),
        Error::Transport { source, .. } => source.is_retryable(false),
        _ => false,
    }
}

/// Uploads one unit, resending it while that is safe; returns the outcome
/// and how many times it was resent.
async fn upload_unit(
    ctx: &Context,
    target: &UploadTarget,
    unit: &Unit,
    items_file: Option<&Path>,
) -> (Result<()>, u64) {
    // A shard's items are read from the items file once, for all attempts.
    enum Loaded<'a> {
        Single(&'a PlannedItem),
        Shard(ShardPlan),
    }
    let loaded = match unit {
        Unit::Single(_, item) => Loaded::Single(item),
        Unit::Shard(_, record) => match record.load(items_file) {
            Ok(plan) => Loaded::Shard(plan),
            Err(e) => return (Err(e.into()), 0),
        },
    };
    let settings = &target.settings;
    let mut delay = settings.retry_delay;
    let mut attempt = 1;
    loop {
        let result = match &loaded {
            Loaded::Single(item) => upload_single(&ctx.client, target, item).await,
            Loaded::Shard(shard) => upload_shard(&ctx.client, target, shard).await,
        };
        match result {
            Err(e) if attempt < settings.attempts && safe_to_resend(&e) => {
                tracing::debug!(unit = %unit.label(), attempt, error = %e, "retrying upload");
                if let Err(cancelled) = pause(delay, &ctx.cancel).await {
                    return (Err(cancelled), u64::from(attempt - 1));
                }
                delay = delay.saturating_mul(2);
                attempt += 1;
            }
            other => return (other, u64::from(attempt - 1)),
        }
    }
}

async fn upload_single(client: &Client, target: &UploadTarget, item: &PlannedItem) -> Result<()> {
    let path = target.input_dir.join(&item.relative);
    let display = target.settings.display_name.as_deref();
    let batch = &target.batch;
    match item.kind {
        MediaKind::Image => {
            client
                .staging()
                .upload_image_file(batch, &item.name, &path, display)
                .await
        }
        MediaKind::Video => {
            client
                .staging()
                .upload_video_file(batch, &item.name, &path, display)
                .await
        }
    }
}

/// The tar members of a shard (plus the notification config, if any).
pub fn shard_members(
    input_dir: &Path,
    shard: &ShardPlan,
    notification: Option<&ShardNotificationConfig>,
) -> Result<Vec<TarMember>> {
    let mut members: Vec<TarMember> = shard
        .items
        .iter()
        .map(|item| TarMember {
            name: item.name.clone(),
            source: MemberSource::File(input_dir.join(&item.relative)),
            size: item.size,
            mtime: u64::try_from(item.mtime_ns / 1_000_000_000).unwrap_or(0),
        })
        .collect();
    if let Some(config) = notification {
        let json = serde_json::to_vec(config).map_err(|e| Error::InvalidInput {
            what: "notification config",
            detail: e.to_string(),
        })?;
        members.push(TarMember {
            name: rf_types::NOTIFICATION_CONFIG_MEMBER.to_string(),
            size: json.len() as u64,
            source: MemberSource::Bytes(json.into()),
            mtime: 0,
        });
    }
    Ok(members)
}

/// Sends one shard (its tar streamed from the files) through a signed URL.
pub(crate) async fn upload_shard(
    client: &Client,
    target: &UploadTarget,
    shard: &ShardPlan,
) -> Result<()> {
    let settings = &target.settings;
    let batch = &target.batch;
    let members: Arc<[TarMember]> =
        shard_members(&target.input_dir, shard, settings.notification.as_ref())?.into();
    let len = tar_len(&members);
    let details = client
        .staging()
        .shard_upload_url(batch, settings.display_name.as_deref())
        .await?;
    let body = Body::from_stream_factory(Some(len), move || tar_stream(members.clone()));
    let label = format!("shard {}", shard.index);
    client
        .staging()
        .put_signed(&details, body, &label, false)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_pacing_grows_with_the_cost_of_a_save() {
        assert!(!SavePacer::new().due());
        let Some(past) = std::time::Instant::now().checked_sub(Duration::from_secs(2)) else {
            return;
        };
        let cheap = SavePacer {
            last: past,
            cost: Duration::from_millis(10),
        };
        assert!(cheap.due());
        // A save that took 1 s waits 4 s before the next one.
        let slow = SavePacer {
            last: past,
            cost: Duration::from_secs(1),
        };
        assert!(!slow.due());
    }

    #[test]
    fn pacer_records_what_a_save_cost() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(crate::state::MANIFEST_FILE);
        let manifest = Manifest::new(
            crate::state::RunIdentity {
                input_dir: dir.path().to_path_buf(),
                batch_id: "b".into(),
                workflow_id: String::new(),
                kind: MediaKind::Image,
            },
            crate::ingest::UploadMode::Bulk,
        );
        let mut state = ManifestFile::new(manifest, &path);
        let mut pacer = SavePacer::new();
        pacer.save(&mut state).unwrap();
        assert!(path.exists());
        assert!(!pacer.due());
    }
}
