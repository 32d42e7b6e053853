//! Downloading an output batch: fetch each file its listing
//! ([`super::listing`]) gives, write it safely, unpack archives.
//!
//! Files go to `<out>/` (simple and sharded batches) or `<out>/<partName>/`
//! (multipart batches), as the official client lays them out. Each file is
//! written to a temporary file in its destination directory; its length is
//! checked against `Content-Length` (a truncated tar can otherwise look
//! complete; a resume checks the length of what is recorded again, see
//! [`DownloadRecord::is_on_disk`]); archives (`.tar`, `.tar.gz`, `.tgz`) are then unpacked safely
//! ([`super::extract`]) and the archive removed, other files are renamed into
//! place, so a partial file never has its final name. Completions are
//! appended to the manifest's journal ([`DownloadJournal`]) as they happen,
//! so a re-run downloads only what is missing, and memory holds neither the
//! whole listing nor a record per downloaded file.
//!
//! Small files (up to 256 KiB) are received whole and written where they
//! are received, on the task that downloads them: a create, one write and a
//! rename against the page cache take microseconds, less than handing the
//! file to the blocking thread pool and back (two thread wake-ups), which
//! dominated exports of many small files. Larger files stream to a blocking
//! writer task through a short bounded queue.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use futures::StreamExt;
use futures::stream::BoxStream;

use super::extract::{ExtractLimits, extract_archive};
use super::listing::ExportFile;
use crate::client::Client;
use crate::context::Context;
use crate::endpoint::Endpoint;
use crate::error::{Error, FailureCounts, Result};
use crate::events::Event;
use crate::limit::{Concurrency, LimitReport, Limiter};
use crate::state::{DownloadJournal, DownloadRecord, Manifest, ManifestFile};

/// How downloads run.
#[derive(Debug, Clone, PartialEq)]
pub struct DownloadSettings {
    /// Downloads in flight at once (default: adaptive from 32 up to 128; see
    /// [`crate::limit`]).
    pub concurrency: Concurrency,
    /// Unpack archives (default true).
    pub extract: bool,
    /// Bounds on what one archive may unpack to.
    pub limits: ExtractLimits,
    /// Attempts per file when the transfer breaks or comes back short
    /// (default 3, like the official client).
    pub attempts: u32,
    /// Pause before the second attempt, doubled after each (default 1 s).
    pub retry_delay: std::time::Duration,
}

impl Default for DownloadSettings {
    fn default() -> Self {
        DownloadSettings {
            concurrency: Concurrency::default(),
            extract: true,
            limits: ExtractLimits::default(),
            attempts: 3,
            retry_delay: std::time::Duration::from_secs(1),
        }
    }
}

/// What [`download_pending`] did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DownloadSummary {
    /// Files the listing held (downloaded now, before, or failed).
    pub listed: usize,
    /// Files of the listing already on disk from an earlier run.
    pub already: usize,
    /// Files downloaded now.
    pub files: usize,
    /// Bytes downloaded now.
    pub bytes: u64,
    /// Files written by extraction.
    pub extracted_files: u64,
    /// Archive entries refused.
    pub refused: Vec<super::RefusedEntry>,
    /// Failed downloads, with the error text.
    pub failures: Vec<(String, String)>,
    /// The failed downloads by class (see [`Error::failure_class`]).
    pub failure_classes: FailureCounts,
    /// Files of the listing skipped because an earlier file of it had the
    /// same part and name (they would be written to one path).
    pub duplicates: usize,
    /// The first of those (`part/name`, or the name).
    pub first_duplicate: Option<String>,
    /// Downloads fetched again after a broken or short transfer.
    pub retried: u64,
    /// Whether it stopped early because of cancellation.
    pub cancelled: bool,
    /// What the concurrency limit did.
    pub concurrency: Option<LimitReport>,
}

/// Where downloads go and how.
#[derive(Debug, Clone)]
pub struct DownloadTarget {
    /// The directory files go to (a multipart batch's parts in
    /// subdirectories).
    pub out_dir: PathBuf,
    /// Concurrency, retries, extraction.
    pub settings: DownloadSettings,
}

/// Downloads every file of `files` not yet recorded in the manifest (see
/// [`download_stream`]).
pub async fn download_pending(
    ctx: &Context,
    files: &[ExportFile],
    target: &DownloadTarget,
    state: &mut ManifestFile,
) -> Result<DownloadSummary> {
    // The stream must own its items (`'static`): a copy of the slice.
    let owned: Vec<Result<ExportFile>> = files.iter().cloned().map(Ok).collect();
    download_stream(ctx, futures::stream::iter(owned).boxed(), target, state).await
}

/// Downloads every file `files` yields that is not yet recorded in the
/// manifest (or whose recorded copy is no longer on disk),
/// `settings.concurrency` at a time, reading the listing only as fast as
/// downloads start: memory holds the manifest and what `files` holds (for
/// [`super::export_files`], two pages of the listing), not the whole batch.
///
/// A listing error ends the run after the downloads already started have
/// finished and been recorded; it is returned then.
pub async fn download_stream(
    ctx: &Context,
    files: BoxStream<'static, Result<ExportFile>>,
    target: &DownloadTarget,
    state: &mut ManifestFile,
) -> Result<DownloadSummary> {
    // A crash mid-download leaves temporary files behind: remove them, in
    // `out_dir` now and in a part's directory before its first download.
    remove_stale_temporaries(&target.out_dir).await;
    let listing = Listing::default();
    let pending = listing.pending(files, already_here(state), ctx, &target.out_dir);
    // The per-file futures own everything they use (no borrowed captures),
    // so the whole run stays `Send` for `tokio::spawn`.
    let shared = Arc::new(target.clone());
    let fetch_ctx = ctx.clone();
    let limiter = Limiter::new(
        target.settings.concurrency,
        ctx.client.retry_stats().cloned(),
    );
    let file_limiter = limiter.clone();
    let mut results = pending
        .map(move |f| limited_fetch(fetch_ctx.clone(), shared.clone(), file_limiter.clone(), f))
        .buffer_unordered(target.settings.concurrency.max())
        .boxed();
    // Each completed download is appended to the manifest's journal, not
    // kept in memory: memory does not grow with the batch, and nothing is
    // rewritten per file. The manifest itself is saved first, so that the
    // journal belongs to a manifest on disk.
    state.save()?;
    let mut journal = DownloadJournal::open(state.path(), state)?;
    let mut summary = DownloadSummary::default();
    while let Some((f, result)) = results.next().await {
        summary.record(ctx, &mut journal, &f, result).await?;
    }
    drop(results);
    journal.finish()?;
    summary.concurrency = Some(limiter.report());
    summary.cancelled |= ctx.cancel.is_cancelled();
    listing.warn_duplicates(ctx).await;
    listing.finish(summary)
}

/// The keys of the files recorded as downloaded and still on disk (empty on
/// a first run).
fn already_here(manifest: &Manifest) -> HashSet<String> {
    manifest
        .export
        .downloads
        .iter()
        .filter(|(_, rec)| rec.is_on_disk())
        .map(|(key, _)| key.clone())
        .collect()
}

/// A 64-bit hash of `key` (the same in every run).
pub(crate) fn hash_of(key: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::hash::DefaultHasher::new();
    key.hash(&mut h);
    h.finish()
}

/// Files whose key (part and name) an earlier file of the same listing
/// had: how many, and the first.
#[derive(Debug, Default)]
struct Duplicates {
    count: usize,
    first: Option<String>,
}

/// What the listing yielded: how many files, how many already here, the
/// files that repeat an earlier one's key, and the error that ended it
/// early, if any.
#[derive(Default)]
struct Listing {
    listed: Arc<AtomicUsize>,
    already: Arc<AtomicUsize>,
    duplicates: Arc<std::sync::Mutex<Duplicates>>,
    error: Arc<std::sync::Mutex<Option<Error>>>,
}

impl Listing {
    /// The files of `files` still to download: counted, cut short by a
    /// listing error or cancellation, without those in `done`, and with a
    /// part's directory cleared of stale temporaries before its first file.
    fn pending(
        &self,
        files: BoxStream<'static, Result<ExportFile>>,
        done: HashSet<String>,
        ctx: &Context,
        out_dir: &Path,
    ) -> impl futures::Stream<Item = ExportFile> + Send + 'static {
        let (listed, already) = (self.listed.clone(), self.already.clone());
        let error_slot = self.error.clone();
        let stop = ctx.cancel.clone();
        let mut seen_parts: HashSet<String> = HashSet::new();
        let parts_root = out_dir.to_path_buf();
        files
            .scan((), move |_, item| {
                let next = match item {
                    _ if stop.is_cancelled() => None,
                    Ok(f) => {
                        listed.fetch_add(1, Ordering::Relaxed);
                        Some(f)
                    }
                    Err(e) => {
                        if let Ok(mut slot) = error_slot.lock() {
                            *slot = Some(e);
                        }
                        None
                    }
                };
                std::future::ready(next)
            })
            .filter(self.first_of_each_key())
            .filter(move |f| {
                let here = done.contains(&f.key());
                if here {
                    already.fetch_add(1, Ordering::Relaxed);
                }
                std::future::ready(!here)
            })
            .then(move |f| {
                let fresh_dir = f
                    .part
                    .as_deref()
                    .filter(|p| safe_component(p) && seen_parts.insert((*p).to_string()))
                    .map(|p| parts_root.join(p));
                async move {
                    if let Some(dir) = fresh_dir {
                        remove_stale_temporaries(&dir).await;
                    }
                    f
                }
            })
    }

    /// A filter that keeps the first file of each key and counts the
    /// others: two files of one listing with the same name would be
    /// written to one path. Keys are held as 64-bit hashes (8 bytes a
    /// file).
    fn first_of_each_key(
        &self,
    ) -> impl FnMut(&ExportFile) -> std::future::Ready<bool> + Send + 'static {
        let duplicates = self.duplicates.clone();
        let mut seen: HashSet<u64> = HashSet::new();
        move |f| {
            let key = f.key();
            let first = seen.insert(hash_of(&key));
            if !first && let Ok(mut d) = duplicates.lock() {
                d.count += 1;
                d.first.get_or_insert_with(|| match &f.part {
                    Some(part) => format!("{part}/{}", f.file.file_name),
                    None => f.file.file_name.clone(),
                });
            }
            std::future::ready(first)
        }
    }

    /// Warns of the files skipped because they repeat an earlier name.
    async fn warn_duplicates(&self, ctx: &Context) {
        let told = self.duplicates.lock().ok().and_then(|d| {
            let first = d.first.as_ref()?;
            Some(format!(
                "{} files of the listing repeat the name of an earlier file of it (first: {first}); only the first of each was downloaded",
                d.count
            ))
        });
        if let Some(message) = told {
            ctx.warn(message).await;
        }
    }

    /// The summary with the listing's counts, or the listing's error.
    fn finish(self, mut summary: DownloadSummary) -> Result<DownloadSummary> {
        summary.listed = self.listed.load(Ordering::Relaxed);
        summary.already = self.already.load(Ordering::Relaxed);
        if let Ok(mut d) = self.duplicates.lock() {
            summary.duplicates = d.count;
            summary.first_duplicate = d.first.take();
        }
        let error = self.error.lock().ok().and_then(|mut slot| slot.take());
        match error {
            Some(e) => Err(e),
            None => Ok(summary),
        }
    }
}

/// What became of one file: `None` when it never started (cancelled), else
/// its outcome and how many times it was fetched again.
type FileOutcome = (ExportFile, Option<(Result<DownloadRecord>, u64)>);

/// Downloads one file once the limiter admits it, and tells the limiter
/// how it went.
async fn limited_fetch(
    ctx: Context,
    target: Arc<DownloadTarget>,
    limiter: Arc<Limiter>,
    f: ExportFile,
) -> FileOutcome {
    let permit = limiter.acquire().await;
    let (f, outcome) = fetch_with_retries(ctx.clone(), target, f).await;
    let (bytes, overload) = match &outcome {
        Some((Ok(record), _)) => (record.bytes, false),
        Some((Err(e), _)) => (0, e.is_overload()),
        None => (0, false),
    };
    if let Some(limit) = permit.finish(bytes, overload) {
        ctx.emit(Event::ConcurrencyChanged {
            transfers: "downloads".to_owned(),
            limit,
        })
        .await;
    }
    (f, outcome)
}

/// Downloads one file, again after a broken transfer while attempts remain.
async fn fetch_with_retries(
    ctx: Context,
    target: Arc<DownloadTarget>,
    f: ExportFile,
) -> FileOutcome {
    if ctx.cancel.is_cancelled() {
        return (f, None);
    }
    ctx.emit(Event::DownloadStarted {
        file: f.file.file_name.clone(),
        part: f.part.clone(),
    })
    .await;
    let settings = &target.settings;
    let mut delay = settings.retry_delay;
    let mut attempt = 1;
    let result = loop {
        match download_one(&ctx.client, &f, &target.out_dir, settings).await {
            Err(e) if attempt < settings.attempts && transfer_failed(&e) => {
                tracing::debug!(file = %f.file.file_name, attempt, error = %e, "retrying download");
                if crate::wait::pause(delay, &ctx.cancel).await.is_err() {
                    break Err(Error::Cancelled);
                }
                delay = delay.saturating_mul(2);
                attempt += 1;
            }
            other => break other,
        }
    };
    (f, Some((result, u64::from(attempt - 1))))
}

impl DownloadSummary {
    /// Records one file's outcome: in the journal and the summary, told as
    /// events.
    async fn record(
        &mut self,
        ctx: &Context,
        journal: &mut DownloadJournal,
        f: &ExportFile,
        result: Option<(Result<DownloadRecord>, u64)>,
    ) -> Result<()> {
        let result = result.map(|(result, retried)| {
            self.retried += retried;
            result
        });
        match result {
            None | Some(Err(Error::Cancelled)) => self.cancelled = true,
            Some(Ok(record)) => self.downloaded(ctx, journal, f, record).await?,
            Some(Err(e)) => {
                let text = e.to_string();
                ctx.emit(Event::DownloadFailed {
                    file: f.file.file_name.clone(),
                    error: text.clone(),
                })
                .await;
                self.failures.push((f.file.file_name.clone(), text));
                self.failure_classes.add(e.failure_class());
            }
        }
        Ok(())
    }

    async fn downloaded(
        &mut self,
        ctx: &Context,
        journal: &mut DownloadJournal,
        f: &ExportFile,
        record: DownloadRecord,
    ) -> Result<()> {
        self.files += 1;
        self.bytes += record.bytes;
        if let Some(report) = &record.extracted {
            self.extracted_files += report.files;
            self.refused.extend(report.refused.iter().cloned());
            ctx.emit(Event::Extracted {
                file: f.file.file_name.clone(),
                into: record.local_path.clone(),
                files: report.files,
                refused: report.refused.clone(),
            })
            .await;
        }
        journal.append(&f.key(), &record)?;
        ctx.emit(Event::DownloadFinished {
            file: f.file.file_name.clone(),
            part: f.part.clone(),
            bytes: record.bytes,
            path: record.local_path,
        })
        .await;
        Ok(())
    }

    /// The failures as one [`Error::DownloadsFailed`], if there were any.
    pub fn failed(&self) -> Option<Error> {
        let (file, err) = self.failures.first()?;
        Some(Error::DownloadsFailed {
            failed: self.failures.len(),
            total: self.failures.len() + self.files,
            first: format!("{file}: {err}"),
            counts: self.failure_classes,
        })
    }
}

/// Removes `.rf-part-*` files and `.rf-extract-*` directories (this crate's
/// temporaries) directly inside `dir`; errors are ignored.
async fn remove_stale_temporaries(dir: &Path) {
    let Ok(mut entries) = tokio::fs::read_dir(dir).await else {
        return;
    };
    while let Ok(Some(entry)) = entries.next_entry().await {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(".rf-part-") {
            let _ = tokio::fs::remove_file(entry.path()).await;
        } else if name.starts_with(".rf-extract-") {
            let _ = tokio::fs::remove_dir_all(entry.path()).await;
        }
    }
}

/// Whether a download failed in transfer (worth another attempt), as
/// opposed to a refusal that will not change.
fn transfer_failed(e: &Error) -> bool {
    match e {
        Error::Transport { .. } | Error::LengthMismatch { .. } => true,
        Error::Api(api) => api.is_transient(),
        _ => false,
    }
}

/// Whether `name` is a single safe path component.
fn safe_component(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\', '\0'])
}

/// Whether a file name is an archive the exporter unpacks.
pub fn is_archive(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.ends_with(".tar") || lower.ends_with(".tar.gz") || lower.ends_with(".tgz")
}

/// Downloads one file (see the module docs).
pub async fn download_one(
    client: &Client,
    f: &ExportFile,
    out_dir: &Path,
    settings: &DownloadSettings,
) -> Result<DownloadRecord> {
    let name = &f.file.file_name;
    if !safe_component(name) {
        return Err(Error::InvalidInput {
            what: "file name in output batch",
            detail: format!("{name:?} is not a plain file name; refusing to write it"),
        });
    }
    let dest_dir = match &f.part {
        Some(part) if !safe_component(part) => {
            return Err(Error::InvalidInput {
                what: "part name in output batch",
                detail: format!("{part:?} is not a plain directory name"),
            });
        }
        Some(part) => out_dir.join(part),
        None => out_dir.to_path_buf(),
    };
    let tmp = dest_dir.join(temporary_name());
    let archive = settings.extract && is_archive(name);
    let dest: PathBuf = dest_dir.join(name);
    let bytes = fetch_to(client, f, &dest_dir, &tmp, (!archive).then_some(&dest)).await?;
    if archive {
        let limits = settings.limits;
        let (archive, target) = (tmp.clone(), dest_dir.clone());
        let report = tokio::task::spawn_blocking(move || {
            let report = extract_archive(&archive, &target, &limits);
            let _ = std::fs::remove_file(&archive);
            report
        })
        .await
        .map_err(|e| Error::Io {
            context: "extraction task failed for",
            path: tmp.clone(),
            source: std::io::Error::other(e.to_string()),
        });
        let report = report??;
        return Ok(DownloadRecord {
            part: f.part.clone(),
            file_name: name.clone(),
            local_path: dest_dir,
            bytes,
            extracted: Some(report),
        });
    }
    Ok(DownloadRecord {
        part: f.part.clone(),
        file_name: name.clone(),
        local_path: dest,
        bytes,
        extracted: None,
    })
}

/// A fresh name for a download's temporary file: `.rf-part-` (what
/// [`remove_stale_temporaries`] looks for), a random tag drawn once per
/// process and a counter. Unique among the downloads of this process and
/// of any other one writing to the same directory, without asking the
/// system for randomness per file.
fn temporary_name() -> String {
    static TAG: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let tag = TAG.get_or_init(|| uuid::Uuid::new_v4().simple().to_string());
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!(".rf-part-{tag}-{n}")
}

/// Chunks of one download queued for its writer.
const WRITE_QUEUE: usize = 4;
/// Files up to this size are received whole and written in place (see the
/// module docs); larger ones stream to a blocking writer.
const INLINE_FILE: u64 = 256 * 1024;

/// Streams one download into `tmp` (in `dir`, created if missing), checks
/// its length and, with `rename_to`, moves it into place; on any failure
/// `tmp` is removed. Files are not synced one by one (see
/// [`DownloadRecord::is_on_disk`] for how a resume finds one a crash lost).
///
/// A small file is written right here once received whole (see the module
/// docs); a larger one by one blocking task, fed through a short bounded
/// queue: one hand-off to the blocking pool per file, not one per
/// filesystem call.
async fn fetch_to(
    client: &Client,
    f: &ExportFile,
    dir: &Path,
    tmp: &Path,
    rename_to: Option<&Path>,
) -> Result<u64> {
    let name = &f.file.file_name;
    let mut response = client.staging().download(&f.file).await?;
    let expected = response
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    // The body broke off mid-transfer.
    let broke = |source| Error::Transport {
        endpoint: Endpoint::Download,
        id: Some(name.clone()),
        source: Box::new(source),
    };
    if expected.is_some_and(|n| n <= INLINE_FILE) {
        let mut chunks = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(broke)? {
            chunks.push(chunk);
        }
        // One write, whatever the number of chunks it came in.
        let body = match chunks.len() {
            0 | 1 => chunks,
            _ => vec![bytes::Bytes::from(chunks.concat())],
        };
        // The whole body is here: the transfer did not break.
        let broken = AtomicBool::new(false);
        return write_file(dir, tmp, body, &broken, expected, rename_to, name);
    }
    let (tx, rx) = std::sync::mpsc::sync_channel::<bytes::Bytes>(WRITE_QUEUE);
    let broken = Arc::new(AtomicBool::new(false));
    let writer = {
        let (dir, tmp) = (dir.to_path_buf(), tmp.to_path_buf());
        let rename_to = rename_to.map(Path::to_path_buf);
        let name = name.clone();
        let broken = broken.clone();
        tokio::task::spawn_blocking(move || {
            write_file(
                &dir,
                &tmp,
                rx,
                &broken,
                expected,
                rename_to.as_deref(),
                &name,
            )
        })
    };
    // Feeding the writer: a full queue parks this task on the blocking
    // pool's thread only for as long as the disk is behind.
    let mut sent = Ok(());
    loop {
        let chunk = match response.chunk().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            Err(source) => {
                sent = Err(broke(source));
                break;
            }
        };
        let pushed = match tx.try_send(chunk) {
            Ok(()) => true,
            Err(std::sync::mpsc::TrySendError::Full(chunk)) => {
                let tx = tx.clone();
                tokio::task::spawn_blocking(move || tx.send(chunk).is_ok())
                    .await
                    .unwrap_or(false)
            }
            Err(std::sync::mpsc::TrySendError::Disconnected(_)) => false,
        };
        if !pushed {
            // The writer stopped early: its result says why.
            break;
        }
    }
    if sent.is_err() {
        // Tell the writer the transfer broke, so it removes `tmp`.
        broken.store(true, Ordering::SeqCst);
    }
    drop(tx);
    let written = writer.await.map_err(|e| Error::Io {
        context: "download writer failed for",
        path: tmp.to_path_buf(),
        source: std::io::Error::other(e.to_string()),
    })?;
    sent?;
    written
}

/// Writes a download's chunks to `tmp`, checks the length and renames it
/// into place (the filesystem half of [`fetch_to`]; blocking).
fn write_file(
    dir: &Path,
    tmp: &Path,
    chunks: impl IntoIterator<Item = bytes::Bytes>,
    broken: &AtomicBool,
    expected: Option<u64>,
    rename_to: Option<&Path>,
    name: &str,
) -> Result<u64> {
    use std::io::Write;
    let io_err = |context, path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io {
            context,
            path,
            source,
        }
    };
    let result = (|| {
        // The directory almost always exists: create it only when needed
        // (one `mkdir` per file is measurable on exports of small files).
        let mut out = match std::fs::File::create(tmp) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(dir).map_err(io_err("cannot create", dir))?;
                std::fs::File::create(tmp)
            }
            other => other,
        }
        .map_err(io_err("cannot write download", tmp))?;
        let mut got = 0u64;
        for chunk in chunks {
            got += chunk.len() as u64;
            out.write_all(&chunk)
                .map_err(io_err("cannot write download", tmp))?;
        }
        // The queue is closed: by the end of the body, or by a broken
        // transfer (the caller reports that error; this one is not shown).
        if broken.load(Ordering::SeqCst) {
            return Err(Error::Cancelled);
        }
        if let Some(expected) = expected
            && got != expected
        {
            return Err(Error::LengthMismatch {
                file: name.to_string(),
                got,
                expected,
            });
        }
        if let Some(dest) = rename_to {
            std::fs::rename(tmp, dest)
                .map_err(io_err("cannot move download into place at", dest))?;
        }
        Ok(got)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(safe_component("results_0001.tar.gz"));
        for bad in ["", ".", "..", "a/b", "..\\x", "a\0"] {
            assert!(!safe_component(bad), "{bad:?}");
        }
        assert!(is_archive("R.TAR.GZ"));
        assert!(is_archive("x.tgz"));
        assert!(!is_archive("x.jsonl"));
    }

    #[tokio::test]
    async fn temporary_names_are_distinct_and_cleaned_up_as_stale() {
        let dir = tempfile::tempdir().unwrap();
        let names: HashSet<String> = (0..1000).map(|_| temporary_name()).collect();
        assert_eq!(names.len(), 1000);
        for name in names.iter().take(3) {
            assert!(safe_component(name), "{name}");
            std::fs::write(dir.path().join(name), b"partial").unwrap();
        }
        std::fs::write(dir.path().join("kept.json"), b"{}").unwrap();
        remove_stale_temporaries(dir.path()).await;
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, ["kept.json"]);
    }
}
