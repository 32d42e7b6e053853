//! State storage: the in-memory [`Db`] behind a lock, kept in the data
//! dir's database ([`database`], redb) record by record, and blob files
//! under `blobs/`.
//!
//! Every acknowledged write is durable: a writer changes the state in
//! memory ([`Store::write`], which records which records it touched), and
//! the request answers only once [`Store::durable`] says a commit covering
//! that write has reached the disk. Commits are grouped: one committer
//! writes the records changed by every writer since its last commit in one
//! fsynced transaction, while writers wait, so many concurrent requests
//! share one fsync. Blob bytes are fsynced before the record that points
//! at them is written (and the blob directory before each commit, for the
//! names of blobs moved into it).

mod database;

use std::io::{Seek, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use tokio::sync::{Notify, watch};

use crate::error::EmulatorError;
use crate::lock::LockHolder;
use crate::model::{BlobRef, Db};

use database::Database;

const SECRET_FILE: &str = "signing.key";

/// The emulator's storage.
pub(crate) struct Store {
    db: Mutex<Db>,
    root: PathBuf,
    blobs: PathBuf,
    tmp: PathBuf,
    /// Bumped (under the `db` lock) by every write that changed a record.
    version: AtomicU64,
    /// The highest version committed and the last failure.
    commits: watch::Sender<Commits>,
    /// Wakes the committer.
    pending: Notify,
    /// Requests waiting in [`Store::durable`], and the signal that one
    /// came: the committer then commits at once rather than batching.
    waiters: AtomicUsize,
    urgent: Notify,
    /// The database and the data directory's lock; held while committing.
    durable: Mutex<Durable>,
    secret: Vec<u8>,
    _temp: Option<tempfile::TempDir>,
}

/// Where commits stand.
#[derive(Debug, Clone, Default)]
struct Commits {
    /// Every write up to this version is on disk.
    committed: u64,
    /// The last commit that failed: writes up to this version may be lost.
    failed: Option<(u64, String)>,
}

/// The database and the data directory's lock ([`crate::lock`]).
#[derive(Debug)]
struct Durable {
    /// `None` once released.
    database: Option<Database>,
    /// Held until released (dropping it unlocks the directory); `None`
    /// when no lock was asked for (a temporary directory, or locking off).
    _lock: Option<rf_util::FileLock>,
    /// The highest version a commit was attempted for.
    attempted: u64,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> EmulatorError + '_ {
    move |source| EmulatorError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("root", &self.root)
            .field("secret", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (or creates) the data dir; `None` makes a temporary one. With
    /// `lock`, a given directory is locked for that holder first (see
    /// [`crate::lock`]): nothing in it is read or cleaned up before.
    pub(crate) fn open(
        dir: Option<&Path>,
        lock: Option<&LockHolder>,
    ) -> Result<Self, EmulatorError> {
        let (root, temp) = match dir {
            Some(d) => (d.to_path_buf(), None),
            None => {
                let t = tempfile::Builder::new()
                    .prefix("rf-emulator-")
                    .tempdir()
                    .map_err(io_err(Path::new("<temp dir>")))?;
                (t.path().to_path_buf(), Some(t))
            }
        };
        create_owner_only_dir(&root)?;
        let dir_lock = match (lock, &temp) {
            (Some(me), None) => Some(crate::lock::acquire(&root, me)?),
            _ => None,
        };
        let blobs = root.join("blobs");
        let tmp = root.join("tmp");
        for d in [&blobs, &tmp] {
            std::fs::create_dir_all(d).map_err(io_err(d))?;
        }
        // Leftovers of interrupted uploads are garbage.
        if let Ok(rd) = std::fs::read_dir(&tmp) {
            for e in rd.flatten() {
                let _ = std::fs::remove_file(e.path());
            }
        }
        let (database, db) = Database::open(&root)?;
        let secret = read_or_make_secret(&root.join(SECRET_FILE), &tmp)?;
        Ok(Self {
            db: Mutex::new(db),
            root,
            blobs,
            tmp,
            version: AtomicU64::new(0),
            commits: watch::Sender::new(Commits::default()),
            pending: Notify::new(),
            waiters: AtomicUsize::new(0),
            urgent: Notify::new(),
            durable: Mutex::new(Durable {
                database: Some(database),
                _lock: dir_lock,
                attempted: 0,
            }),
            secret,
            _temp: temp,
        })
    }

    /// The data directory.
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// The HMAC key for signed URLs (kept in the data dir, so URLs survive a restart).
    pub(crate) fn secret(&self) -> &[u8] {
        &self.secret
    }

    fn lock(&self) -> MutexGuard<'_, Db> {
        self.db.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn durable_lock(&self) -> MutexGuard<'_, Durable> {
        self.durable.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reads the state.
    pub(crate) fn read<R>(&self, f: impl FnOnce(&Db) -> R) -> R {
        f(&self.lock())
    }

    /// Changes the state in memory and wakes the committer; a request
    /// answers only after [`Store::durable`].
    pub(crate) fn write<R>(&self, f: impl FnOnce(&mut Db) -> R) -> R {
        let mut db = self.lock();
        let r = f(&mut db);
        if db.has_changes() {
            self.version.fetch_add(1, Ordering::AcqRel);
            drop(db);
            self.pending.notify_one();
        }
        r
    }

    /// Waits until every write made so far (by anyone) is committed; an
    /// error when the commit failed or the store was released first.
    pub(crate) async fn durable(&self) -> Result<(), EmulatorError> {
        let target = self.version.load(Ordering::Acquire);
        let mut rx = self.commits.subscribe();
        if rx.borrow().committed >= target {
            return Ok(());
        }
        let _waiting = Waiting::new(&self.waiters);
        self.pending.notify_one();
        self.urgent.notify_one();
        let state = rx
            .wait_for(|c| {
                c.committed >= target || c.failed.as_ref().is_some_and(|(v, _)| *v >= target)
            })
            .await
            .map_err(|_| EmulatorError::NotCommitted("the emulator is closing".into()))?
            .clone();
        match state.failed {
            Some((_, why)) if state.committed < target => Err(EmulatorError::NotCommitted(why)),
            _ => Ok(()),
        }
    }

    /// True when writes wait for a commit that was not tried yet.
    pub(crate) fn needs_commit(&self) -> bool {
        self.version.load(Ordering::Acquire) > self.durable_lock().attempted
    }

    /// Waits until a write (or a waiter) asks for a commit.
    pub(crate) async fn commit_wanted(&self) {
        self.pending.notified().await;
    }

    /// True when a request waits for a commit.
    pub(crate) fn has_waiters(&self) -> bool {
        self.waiters.load(Ordering::Acquire) > 0
    }

    /// Waits until a request starts waiting for a commit.
    pub(crate) async fn commit_awaited(&self) {
        self.urgent.notified().await;
    }

    /// Commits every change made so far in one durable transaction (after
    /// an fsync of the blob directory), then tells the waiters. Blocks:
    /// call it off the async threads.
    pub(crate) fn commit(&self) -> Result<(), EmulatorError> {
        let mut durable = self.durable_lock();
        if durable.database.is_none() {
            return Err(self.closed());
        }
        let (target, changes, encoded, seq) = {
            let mut db = self.lock();
            let target = self.version.load(Ordering::Acquire);
            let changes = db.take_changes();
            let encoded = database::encode(&db, &changes, &self.root);
            (target, changes, encoded, db.seq)
        };
        durable.attempted = target;
        let Some(database) = durable.database.as_ref() else {
            return Err(self.closed());
        };
        let written = encoded.and_then(|encoded| {
            if !encoded.is_empty() {
                sync_dir(&self.blobs)?;
                // A panic while writing is a failed commit like any other:
                // its changes are kept for the next one and its waiters
                // told, never acknowledged by a later commit.
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    database.write_encoded(&encoded, seq)
                }))
                .map_err(|_| EmulatorError::NotCommitted("the state writer panicked".into()))??;
            }
            Ok(())
        });
        match written {
            Ok(()) => {
                self.commits
                    .send_modify(|c| c.committed = c.committed.max(target));
                Ok(())
            }
            Err(e) => {
                self.lock().restore_changes(changes);
                let why = format!("cannot commit the state: {e}");
                self.commits.send_modify(|c| c.failed = Some((target, why)));
                Err(e)
            }
        }
    }

    /// Commits what is pending (also done continuously by the committer).
    pub(crate) fn persist(&self) -> Result<(), EmulatorError> {
        self.commit()
    }

    /// Commits the last changes, closes the database and lets go of the
    /// data dir's lock, so that another emulator can open the directory at
    /// once; nothing is written after this (writes then fail to commit).
    pub(crate) fn release(&self) -> Result<(), EmulatorError> {
        let written = self.commit();
        let mut durable = self.durable_lock();
        durable.database = None;
        durable._lock = None;
        drop(durable);
        self.closed();
        written
    }

    /// Tells every waiter that nothing more is stored (the store was
    /// released); returns that as an error.
    fn closed(&self) -> EmulatorError {
        let why = "the emulator is closed: nothing more is stored".to_string();
        self.commits
            .send_modify(|c| c.failed = Some((u64::MAX, why.clone())));
        EmulatorError::NotCommitted(why)
    }

    /// Path of the blob a signed token names, when `blob` is a blob ID
    /// ([`is_blob_id`]): never a path outside `blobs/`.
    pub(crate) fn blob_path_checked(&self, blob: &str) -> Option<PathBuf> {
        is_blob_id(blob).then(|| self.blobs.join(blob))
    }

    /// Path of a blob file.
    pub(crate) fn blob_path(&self, blob: &str) -> PathBuf {
        self.blobs.join(blob)
    }

    /// A fresh path in the temp area (same file system as the blobs).
    pub(crate) fn tmp_path(&self) -> PathBuf {
        self.tmp.join(uuid::Uuid::new_v4().simple().to_string())
    }

    /// Writes the blob `blob` atomically ([`rf_util::write_atomic_via`], the
    /// temporary file in `tmp/`): it is on disk, whole, when this returns.
    pub(crate) fn write_blob(
        &self,
        blob: &str,
        write: impl FnOnce(&mut std::io::BufWriter<std::fs::File>) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        rf_util::write_atomic_via(&self.blob_path(blob), &self.tmp, write)
    }

    /// Opens the blob of `data` at the start of its byte range (the caller
    /// reads `data.len` bytes).
    pub(crate) fn open_range(&self, data: &BlobRef) -> std::io::Result<std::fs::File> {
        let mut f = std::fs::File::open(self.blob_path(&data.blob))?;
        f.seek(SeekFrom::Start(data.offset))?;
        Ok(f)
    }

    /// Moves a finished temp file into the blob store under `blob`.
    pub(crate) fn commit_blob(&self, tmp: &Path, blob: &str) -> std::io::Result<()> {
        std::fs::rename(tmp, self.blob_path(blob))
    }

    /// Deletes a blob file (missing files are fine).
    pub(crate) fn remove_blob(&self, blob: &str) {
        let _ = std::fs::remove_file(self.blob_path(blob));
    }
}

/// Counts one request waiting in [`Store::durable`] while it lives (also
/// when its future is dropped).
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn new(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::AcqRel);
        Self(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Reads the signing key, or makes one (owner-only) the first time.
fn read_or_make_secret(secret_path: &Path, tmp: &Path) -> Result<Vec<u8>, EmulatorError> {
    check_owner_only(secret_path)?;
    match std::fs::read_to_string(secret_path) {
        Ok(s) => hex::decode(s.trim()).map_err(|e| {
            EmulatorError::Config(format!(
                "signing key {} is not hex ({e}); delete it to make a new one",
                secret_path.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut key = Vec::with_capacity(32);
            key.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
            key.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
            let text = hex::encode(&key);
            rf_util::write_atomic_via(secret_path, tmp, |w| {
                restrict_to_owner(w.get_ref())?;
                w.write_all(text.as_bytes())
            })
            .map_err(io_err(secret_path))?;
            Ok(key)
        }
        Err(e) => Err(io_err(secret_path)(e)),
    }
}

/// Flushes a directory's entries (names of files renamed into it).
fn sync_dir(dir: &Path) -> Result<(), EmulatorError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

/// True for a blob ID: an opaque name such as `<uuid>.tar` (letters,
/// digits, `-` and `_`, then at most one `.` and an extension), never a path.
pub(crate) fn is_blob_id(name: &str) -> bool {
    let (stem, ext) = name.split_once('.').unwrap_or((name, "ok"));
    let word = |s: &str, extra: &[char]| {
        !s.is_empty()
            && s.len() <= 80
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || extra.contains(&c))
    };
    word(stem, &['-', '_']) && word(ext, &[])
}

/// Creates the data directory owner-only (0700) when it does not exist yet.
fn create_owner_only_dir(root: &Path) -> Result<(), EmulatorError> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(root).map_err(io_err(root))
}

/// Makes a file being written readable by its owner only (0600).
fn restrict_to_owner(f: &std::fs::File) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    let _ = f;
    Ok(())
}

/// Refuses an existing signing key that other users may read or write.
fn check_owner_only(path: &Path) -> Result<(), EmulatorError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path) {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(EmulatorError::Config(format!(
                    "signing key {} has mode {mode:o}: other users could forge signed URLs; run `chmod 600 {}` and start again",
                    path.display(),
                    path.display()
                )));
            }
        }
    }
    let _ = path;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Batch, BatchKind, Content};

    /// Adds an image batch `id` to workspace `ws`.
    fn add_batch(store: &Store, id: &str, now: chrono::DateTime<chrono::Utc>) {
        store.write(|db| {
            let seq = db.next_seq();
            let b = Batch::new(
                id,
                None,
                BatchKind::SimpleBatch,
                Content::Images,
                now,
                chrono::Duration::days(7),
                seq,
            );
            db.insert_batch("ws", b);
        });
    }

    #[test]
    fn committed_records_survive_reopen_and_uncommitted_ones_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let now = chrono::Utc::now();
        {
            let store = Store::open(Some(dir.path()), None).unwrap();
            add_batch(&store, "b1", now);
            store.commit().unwrap();
            add_batch(&store, "b2", now);
            // dropped without a commit: b2 was never acknowledged
        }
        let store = Store::open(Some(dir.path()), None).unwrap();
        assert!(store.read(|db| db.batch("ws", "b1", now).is_some()));
        assert!(store.read(|db| db.batch("ws", "b2", now).is_none()));
        // A removal is committed too.
        store.write(|db| db.remove_batch("ws", "b1"));
        store.commit().unwrap();
        drop(store);
        let store = Store::open(Some(dir.path()), None).unwrap();
        assert!(store.read(|db| db.batch("ws", "b1", now).is_none()));
    }

    #[tokio::test]
    async fn durable_waits_for_the_commit_that_covers_the_write() {
        let dir = tempfile::tempdir().unwrap();
        let store = std::sync::Arc::new(Store::open(Some(dir.path()), None).unwrap());
        let now = chrono::Utc::now();
        add_batch(&store, "w", now);
        assert!(store.needs_commit());
        let waiter = tokio::spawn({
            let store = store.clone();
            async move { store.durable().await }
        });
        // The committer's part: commit once asked.
        store.commit_wanted().await;
        store.commit().unwrap();
        waiter.await.unwrap().unwrap();
        assert!(!store.needs_commit());
        // Nothing pending: no wait.
        store.durable().await.unwrap();
        store.release().unwrap();
        add_batch(&store, "late", now);
        assert!(matches!(
            store.durable().await,
            Err(EmulatorError::NotCommitted(_))
        ));
    }

    #[test]
    fn a_json_snapshot_is_migrated_once() {
        let dir = tempfile::tempdir().unwrap();
        let now = chrono::Utc::now();
        let old = serde_json::json!({
            "seq": 7,
            "workspaces": {"ws": {"batches": {"old": {
                "id": "old", "display_name": "Old", "kind": "simple-batch",
                "content": "images", "created": now, "expiry": now + chrono::Duration::days(1),
                "seq": 7,
                "files": [{"name": "a.png", "data": {"blob": "x.img", "offset": 0, "len": 3}, "content": "images"}]
            }}, "jobs": {}, "ingests": {"old\n\nabc": {"ingest_id": "i", "shard_ids": []}}}}
        });
        std::fs::write(dir.path().join(database::SNAPSHOT_FILE), old.to_string()).unwrap();
        let store = Store::open(Some(dir.path()), None).unwrap();
        assert!(!dir.path().join(database::SNAPSHOT_FILE).exists());
        assert!(dir.path().join("state.json.migrated").exists());
        drop(store);
        let store = Store::open(Some(dir.path()), None).unwrap();
        store.read(|db| {
            let b = db.batch("ws", "old", now).unwrap();
            assert_eq!(b.display_name, "Old");
            assert_eq!(b.files[0].data.blob, "x.img");
            assert_eq!(db.seq, 7);
            assert!(db.ws("ws").unwrap().ingests.contains_key("old\n\nabc"));
        });
        // New batches get later sequence numbers than migrated ones.
        assert_eq!(store.write(Db::next_seq), 8);
    }

    #[test]
    fn release_hands_the_directory_over_and_writes_nothing_after() {
        let dir = tempfile::tempdir().unwrap();
        let now = chrono::Utc::now();
        let me = LockHolder {
            pid: Some(1),
            owner: Some("first".into()),
            base_url: None,
        };
        let first = Store::open(Some(dir.path()), Some(&me)).unwrap();
        add_batch(&first, "kept", now);
        // Held: a second store on the directory is refused.
        assert!(matches!(
            Store::open(Some(dir.path()), Some(&LockHolder::default())),
            Err(EmulatorError::DataDirInUse { .. })
        ));
        first.release().unwrap();
        let second = Store::open(Some(dir.path()), Some(&LockHolder::default())).unwrap();
        assert!(second.read(|db| db.batch("ws", "kept", now).is_some()));
        // The first one's later changes never reach the disk.
        add_batch(&first, "late", now);
        assert!(first.persist().is_err());
        drop(second);
        let third = Store::open(Some(dir.path()), None).unwrap();
        assert!(third.read(|db| db.batch("ws", "kept", now).is_some()));
        assert!(third.read(|db| db.batch("ws", "late", now).is_none()));
    }

    #[test]
    fn corrupt_state_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(database::SNAPSHOT_FILE), b"{not json").unwrap();
        let err = Store::open(Some(dir.path()), None).unwrap_err();
        assert!(err.to_string().contains("corrupt"), "{err}");
    }

    #[test]
    fn signing_key_is_stable_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let a = Store::open(Some(dir.path()), None)
            .unwrap()
            .secret()
            .to_vec();
        let b = Store::open(Some(dir.path()), None)
            .unwrap()
            .secret()
            .to_vec();
        assert_eq!(a, b);
        assert_eq!(a.len(), 32);
    }

    #[test]
    fn blob_ids_are_names_never_paths() {
        for ok in ["0b6f-aa.tar", "kept.img", "abc_1", "f00.vid"] {
            assert!(is_blob_id(ok), "{ok}");
        }
        for bad in [
            "",
            "../signing.key",
            "/etc/shadow",
            "a/b",
            "..",
            ".tar",
            "a.b.c",
            "a.",
            "x\\y",
            "a b",
        ] {
            assert!(!is_blob_id(bad), "{bad}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn data_dir_and_signing_key_are_owner_only_and_a_loose_key_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("data");
        drop(Store::open(Some(&dir), None).unwrap());
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        let key = dir.join(SECRET_FILE);
        assert_eq!(mode(&key), 0o600);
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = Store::open(Some(&dir), None).unwrap_err().to_string();
        assert!(err.contains(&key.display().to_string()), "{err}");
        assert!(err.contains("chmod 600"), "{err}");
    }
}
