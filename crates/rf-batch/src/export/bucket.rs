//! Exports into a bucket: the files an export wrote into a local directory,
//! copied into an object store under a prefix, streamed and resumably.
//!
//! The export itself runs as for a local `--out` (downloads, extraction, its
//! manifest and resume) into a staging directory; [`upload_dir`] then walks
//! that directory (leaving out `.rf-state` and this crate's temporaries) and
//! puts each file at `prefix/<its path>`, so the bucket receives the same
//! files, with the same relative paths, as a local export.
//!
//! - **Streamed.** A file up to [`BucketSettings::part_size`] is read and
//!   sent in one `PUT`; a larger one goes up as a multipart upload
//!   (`WriteMultipart`), read in 1 MiB pieces with at most
//!   [`BucketSettings::parts_in_flight`] parts in flight. Memory per file is
//!   bounded by `part_size × (parts_in_flight + 1)`, and
//!   [`BucketSettings::files_in_flight`] files go at once; no file is ever
//!   held whole unless it is small. A multipart upload that fails is
//!   aborted.
//! - **Resumable.** Each completed upload is appended to
//!   `.rf-state/rf-bucket.jsonl` in the staging directory (object URL, size,
//!   ETag). A re-run skips a file when its record has the same size and a
//!   `HEAD` of the object still answers that size and ETag: an object
//!   deleted or replaced since is uploaded again, and nothing complete is
//!   sent twice. A crash loses at most the records of the uploads in flight
//!   (those files are sent again).
//! - **Typed errors.** A missing bucket and refused credentials end the run
//!   at once ([`BucketError::BucketNotFound`], [`BucketError::AccessDenied`]);
//!   other failures are counted per file and reported together
//!   ([`BucketError::UploadsFailed`]; a re-run sends only those).

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use object_store::path::Path as StorePath;
use object_store::{ObjectStoreExt, PutPayload, WriteMultipart};
use tokio::io::AsyncReadExt;

use super::download::hash_of;
pub use crate::bucket_types::{BucketError, BucketSettings, BucketSummary, BucketTarget};
use crate::context::Context;

/// The journal of completed uploads, in the staging directory's `.rf-state`.
pub const BUCKET_JOURNAL: &str = "rf-bucket.jsonl";

/// One file of the staging directory: its path relative to it and size.
#[derive(Debug, Clone)]
struct LocalFile {
    relative: PathBuf,
    size: u64,
}

/// Uploads every file under `dir` (but `.rf-state` and temporaries) to
/// `target`, skipping those already complete there (see the module docs).
pub async fn upload_dir(
    ctx: &Context,
    dir: &Path,
    target: &BucketTarget,
) -> Result<BucketSummary, BucketError> {
    std::fs::read_dir(dir).map_err(|source| BucketError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    let journal_path = dir.join(".rf-state").join(BUCKET_JOURNAL);
    let done = Journal::load(&journal_path)?;
    let mut journal = Journal::open(&journal_path)?;
    let total = count_files(dir).await?;
    let files = walk(dir.to_path_buf());
    let shared = Arc::new((target.clone(), dir.to_path_buf(), done));
    let cancel = ctx.cancel.clone();
    let mut results = files
        .take_while(move |_| std::future::ready(!cancel.is_cancelled()))
        .map(|file| {
            let shared = shared.clone();
            async move {
                let file = file?;
                let (target, dir, done) = &*shared;
                let outcome = sync_one(target, dir, done, &file).await;
                Ok::<_, BucketError>((file, outcome))
            }
        })
        .buffer_unordered(target.settings.files_in_flight.max(1))
        .boxed();
    let mut summary = BucketSummary {
        url: target.url.clone(),
        ..BucketSummary::default()
    };
    while let Some(result) = results.next().await {
        let (file, outcome) = result?;
        summary.files += 1;
        let bytes = match outcome {
            Ok(Synced::Before) => {
                summary.uploaded_before += 1;
                0
            }
            Ok(Synced::Now(record)) => {
                summary.uploaded_now += 1;
                summary.bytes += record.size;
                summary.multipart += usize::from(record.size > target.settings.part_size as u64);
                journal.append(&record)?;
                record.size
            }
            Err(e) if e.is_fatal() => return Err(e),
            Err(e) => {
                summary
                    .failures
                    .push(format!("{}: {e}", file.relative.display()));
                continue;
            }
        };
        tell_uploaded(ctx, &file, bytes, &summary, total).await;
    }
    if ctx.cancel.is_cancelled() {
        return Err(BucketError::Cancelled);
    }
    match summary.failures.first() {
        Some(first) => Err(BucketError::UploadsFailed {
            url: target.url.clone(),
            failed: summary.failures.len(),
            total: summary.files,
            first: first.clone(),
        }),
        None => Ok(summary),
    }
}

/// Tells that `file` is in the bucket ([`crate::Event::BucketUploaded`]).
async fn tell_uploaded(
    ctx: &Context,
    file: &LocalFile,
    bytes: u64,
    summary: &BucketSummary,
    total: u64,
) {
    let name = file
        .relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/");
    ctx.events
        .emit(crate::Event::BucketUploaded {
            file: name,
            bytes,
            uploaded_now: summary.uploaded_now as u64,
            uploaded_before: summary.uploaded_before as u64,
            total,
        })
        .await;
}

/// How many files [`upload_dir`] goes through (one walk of the directory,
/// before the one that uploads), for the progress it tells.
async fn count_files(dir: &Path) -> Result<u64, BucketError> {
    walk(dir.to_path_buf())
        .try_fold(0u64, |n, _| std::future::ready(Ok(n + 1)))
        .await
}

/// What happened to one file.
enum Synced {
    /// Already complete in the bucket.
    Before,
    /// Uploaded now.
    Now(Record),
}

/// Uploads one file unless the journal and a `HEAD` say it is there.
async fn sync_one(
    target: &BucketTarget,
    dir: &Path,
    done: &Journal,
    file: &LocalFile,
) -> Result<Synced, BucketError> {
    let key = target
        .key_of(&file.relative)
        .ok_or_else(|| BucketError::BadName {
            path: dir.join(&file.relative),
        })?;
    let object = target.object_url(&key);
    if let Some((size, e_tag)) = done.get(&object)
        && *size == file.size
    {
        match target.store.head(&key).await {
            Ok(meta) if meta.size == file.size && meta.e_tag == *e_tag => {
                return Ok(Synced::Before);
            }
            Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(BucketError::from_store(target, &key, e)),
        }
    }
    let path = dir.join(&file.relative);
    let e_tag = if file.size <= target.settings.part_size as u64 {
        put_small(target, &key, &path).await?
    } else {
        put_large(target, &key, &path).await?
    };
    Ok(Synced::Now(Record {
        object,
        size: file.size,
        e_tag,
    }))
}

/// One `PUT` of a small file, read whole.
async fn put_small(
    target: &BucketTarget,
    key: &StorePath,
    path: &Path,
) -> Result<Option<String>, BucketError> {
    let bytes = tokio::fs::read(path)
        .await
        .map_err(|source| BucketError::Read {
            path: path.to_path_buf(),
            source,
        })?;
    let result = target
        .store
        .put(key, PutPayload::from(bytes))
        .await
        .map_err(|e| BucketError::from_store(target, key, e))?;
    Ok(result.e_tag)
}

/// A multipart upload of a large file, read in pieces; aborted on failure.
async fn put_large(
    target: &BucketTarget,
    key: &StorePath,
    path: &Path,
) -> Result<Option<String>, BucketError> {
    let store_err = |e| BucketError::from_store(target, key, e);
    let read_err = |source| BucketError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut file = tokio::fs::File::open(path).await.map_err(read_err)?;
    let upload = target.store.put_multipart(key).await.map_err(store_err)?;
    let mut writer = WriteMultipart::new_with_chunk_size(upload, target.settings.part_size);
    let mut buffer = vec![0u8; READ_PIECE];
    let sent: Result<(), BucketError> = async {
        loop {
            writer
                .wait_for_capacity(target.settings.parts_in_flight.max(1))
                .await
                .map_err(store_err)?;
            let n = file.read(&mut buffer).await.map_err(read_err)?;
            if n == 0 {
                return Ok(());
            }
            writer.write(&buffer[..n]);
        }
    }
    .await;
    match sent {
        Ok(()) => Ok(writer.finish().await.map_err(store_err)?.e_tag),
        Err(e) => {
            let _ = writer.abort().await;
            Err(e)
        }
    }
}

/// How much of a large file is read at a time.
const READ_PIECE: usize = 1024 * 1024;
/// Files the directory walk queues ahead of the uploads.
const WALK_QUEUE: usize = 64;

/// The files under `dir`, depth first, from a blocking walk that runs
/// ahead of its consumer by at most [`WALK_QUEUE`] files. `.rf-state` at
/// the top and this crate's temporaries (`.rf-part-*`, `.rf-extract-*`)
/// are left out; symbolic links are not followed.
fn walk(dir: PathBuf) -> impl futures::Stream<Item = Result<LocalFile, BucketError>> + Send {
    let (tx, rx) = tokio::sync::mpsc::channel(WALK_QUEUE);
    tokio::task::spawn_blocking(move || {
        let mut pending = vec![PathBuf::new()];
        while let Some(relative) = pending.pop() {
            if let Err(e) = walk_one(&dir, &relative, &tx, &mut pending) {
                let _ = tx.blocking_send(Err(e));
                return;
            }
        }
    });
    futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
}

/// Sends the files of the directory `relative` (inside `root`) and queues
/// its subdirectories, in name order.
fn walk_one(
    root: &Path,
    relative: &Path,
    tx: &tokio::sync::mpsc::Sender<Result<LocalFile, BucketError>>,
    pending: &mut Vec<PathBuf>,
) -> Result<(), BucketError> {
    let path = root.join(relative);
    let read = |source| BucketError::Read {
        path: path.clone(),
        source,
    };
    let mut entries: Vec<_> = std::fs::read_dir(&path)
        .map_err(read)?
        .collect::<Result<_, _>>()
        .map_err(read)?;
    entries.sort_by_key(std::fs::DirEntry::file_name);
    let mut subdirs = Vec::new();
    for entry in entries {
        let name = entry.file_name();
        let text = name.to_string_lossy();
        let top_state = relative.as_os_str().is_empty() && text == ".rf-state";
        if top_state || text.starts_with(".rf-part-") || text.starts_with(".rf-extract-") {
            continue;
        }
        let kind = entry.file_type().map_err(read)?;
        if kind.is_dir() {
            subdirs.push(relative.join(&name));
        } else if kind.is_file() {
            let size = entry.metadata().map_err(read)?.len();
            let file = LocalFile {
                relative: relative.join(&name),
                size,
            };
            if tx.blocking_send(Ok(file)).is_err() {
                // The consumer stopped (cancelled or failed).
                return Ok(());
            }
        }
    }
    // Popped from the end: reversed, they are walked in name order.
    pending.extend(subdirs.into_iter().rev());
    Ok(())
}

/// One completed upload, as the journal records it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Record {
    /// `scheme://bucket/key`.
    object: String,
    /// Bytes.
    size: u64,
    /// The ETag the store gave it.
    e_tag: Option<String>,
}

/// The journal of completed uploads: loaded as a map from object URL to
/// its record (the last line for an object wins), or open for appending.
#[derive(Debug, Default)]
struct Journal {
    /// By the hash of the object URL (memory: a few dozen bytes a file):
    /// the size and ETag.
    records: HashMap<u64, (u64, Option<String>)>,
    file: Option<std::fs::File>,
    path: PathBuf,
}

impl Journal {
    /// The records of `path` (none when it does not exist; a torn last
    /// line, from a crash mid-write, is ignored).
    fn load(path: &Path) -> Result<Journal, BucketError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => {
                return Err(BucketError::Journal {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        let records = text
            .lines()
            .filter_map(|line| serde_json::from_str::<Record>(line).ok())
            .map(|r| (hash_of(&r.object), (r.size, r.e_tag)))
            .collect();
        Ok(Journal {
            records,
            file: None,
            path: path.to_path_buf(),
        })
    }

    /// `path` opened for appending (created with its directory).
    fn open(path: &Path) -> Result<Journal, BucketError> {
        let io = |source| BucketError::Journal {
            path: path.to_path_buf(),
            source,
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io)?;
        Ok(Journal {
            records: HashMap::new(),
            file: Some(file),
            path: path.to_path_buf(),
        })
    }

    /// The size and ETag recorded for `object`. A hash collision at worst
    /// makes [`sync_one`] ask the store, whose answer must match both.
    fn get(&self, object: &str) -> Option<&(u64, Option<String>)> {
        self.records.get(&hash_of(object))
    }

    /// Appends one record (one line, written at once).
    fn append(&mut self, record: &Record) -> Result<(), BucketError> {
        let io = |source| BucketError::Journal {
            path: self.path.clone(),
            source,
        };
        let mut line = serde_json::to_string(record).map_err(|e| io(std::io::Error::other(e)))?;
        line.push('\n');
        match &mut self.file {
            Some(file) => file.write_all(line.as_bytes()).map_err(io),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use object_store::ObjectStore;
    use object_store::memory::InMemory;

    use super::*;
    use crate::client::Client;

    fn ctx() -> Context {
        let client = Client::builder()
            .api_key("key")
            .transport(rf_transport::MockTransport::new())
            .build()
            .unwrap();
        Context::new(client)
    }

    /// A staging directory as an export leaves it: files at the top and
    /// in a part's directory, the state directory, a stale temporary.
    fn staging() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("part-1/sub")).unwrap();
        std::fs::create_dir_all(root.join(".rf-state")).unwrap();
        std::fs::write(root.join("a.json"), b"{\"a\":1}").unwrap();
        std::fs::write(root.join("part-1/b c.jsonl"), b"line\n").unwrap();
        std::fs::write(root.join("part-1/sub/big.bin"), vec![7u8; 100]).unwrap();
        std::fs::write(root.join(".rf-state/rf-export.json"), b"{}").unwrap();
        std::fs::write(root.join(".rf-part-x-1"), b"partial").unwrap();
        dir
    }

    fn target(store: &Arc<InMemory>) -> BucketTarget {
        let mut target = BucketTarget::new(
            "s3://bucket/results/run-1/",
            store.clone(),
            StorePath::from("results/run-1"),
        );
        // 100 bytes is "large": it goes up in parts of 16.
        target.settings.part_size = 16;
        target
    }

    async fn keys(store: &InMemory) -> Vec<String> {
        use futures::TryStreamExt;
        let mut keys: Vec<String> = store
            .list(None)
            .map_ok(|m| m.location.to_string())
            .try_collect()
            .await
            .unwrap();
        keys.sort();
        keys
    }

    #[tokio::test]
    async fn the_bucket_gets_the_files_of_the_directory_under_the_prefix() {
        let dir = staging();
        let store = Arc::new(InMemory::new());
        let summary = upload_dir(&ctx(), dir.path(), &target(&store))
            .await
            .unwrap();
        assert_eq!(
            keys(&store).await,
            [
                "results/run-1/a.json",
                "results/run-1/part-1/b c.jsonl",
                "results/run-1/part-1/sub/big.bin",
            ]
        );
        let big = store
            .get(&StorePath::from("results/run-1/part-1/sub/big.bin"))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(big.as_ref(), vec![7u8; 100].as_slice());
        assert_eq!(
            (summary.files, summary.uploaded_now, summary.uploaded_before),
            (3, 3, 0)
        );
        assert_eq!((summary.bytes, summary.multipart), (7 + 5 + 100, 1));
    }

    #[tokio::test]
    async fn a_rerun_uploads_nothing_complete_and_resends_what_changed_in_the_bucket() {
        let dir = staging();
        let store = Arc::new(InMemory::new());
        let target = target(&store);
        upload_dir(&ctx(), dir.path(), &target).await.unwrap();
        let again = upload_dir(&ctx(), dir.path(), &target).await.unwrap();
        assert_eq!((again.uploaded_now, again.uploaded_before), (0, 3));

        // Deleted in the bucket, and replaced by other bytes of the same
        // size: both go up again; the third is left alone.
        store
            .delete(&StorePath::from("results/run-1/a.json"))
            .await
            .unwrap();
        store
            .put(
                &StorePath::from("results/run-1/part-1/b c.jsonl"),
                PutPayload::from_static(b"LINE\n"),
            )
            .await
            .unwrap();
        let third = upload_dir(&ctx(), dir.path(), &target).await.unwrap();
        assert_eq!((third.uploaded_now, third.uploaded_before), (2, 1));
        let b = store
            .get(&StorePath::from("results/run-1/part-1/b c.jsonl"))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(b.as_ref(), b"line\n");
    }

    #[tokio::test]
    async fn objects_not_recorded_by_this_directory_are_overwritten() {
        let dir = staging();
        let store = Arc::new(InMemory::new());
        // Same key and size, put there by someone else: not ours, so sent.
        store
            .put(
                &StorePath::from("results/run-1/a.json"),
                PutPayload::from_static(b"{\"b\":2}"),
            )
            .await
            .unwrap();
        let summary = upload_dir(&ctx(), dir.path(), &target(&store))
            .await
            .unwrap();
        assert_eq!(summary.uploaded_now, 3);
    }

    #[tokio::test]
    async fn a_torn_journal_line_only_costs_that_file() {
        let dir = staging();
        let store = Arc::new(InMemory::new());
        let target = target(&store);
        upload_dir(&ctx(), dir.path(), &target).await.unwrap();
        let journal = dir.path().join(".rf-state").join(BUCKET_JOURNAL);
        let text = std::fs::read_to_string(&journal).unwrap();
        assert_eq!(text.lines().count(), 3);
        let cut = text.len() - 10;
        std::fs::write(&journal, &text[..cut]).unwrap();
        let again = upload_dir(&ctx(), dir.path(), &target).await.unwrap();
        assert_eq!((again.uploaded_now, again.uploaded_before), (1, 2));
    }

    #[tokio::test]
    async fn an_unreadable_directory_is_a_read_error() {
        let store = Arc::new(InMemory::new());
        let missing = std::env::temp_dir().join("rf-bucket-test-no-such-dir");
        let err = upload_dir(&ctx(), &missing, &target(&store)).await;
        assert!(!missing.exists());
        assert!(matches!(err, Err(BucketError::Read { .. })), "{err:?}");
    }

    #[test]
    fn keys_are_the_prefix_and_the_relative_path() {
        let store = Arc::new(InMemory::new());
        let target = target(&store);
        let key = target.key_of(Path::new("part-1/x y.json")).unwrap();
        assert_eq!(key.as_ref(), "results/run-1/part-1/x y.json");
        assert_eq!(
            target.object_url(&key),
            "s3://bucket/results/run-1/part-1/x y.json"
        );
        let root = BucketTarget::new("gs://b", store, StorePath::default());
        assert_eq!(root.key_of(Path::new("a.json")).unwrap().as_ref(), "a.json");
    }
}
