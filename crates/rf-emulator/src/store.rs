//! State storage: the in-memory [`Db`] behind a lock, persisted to the data
//! dir as a JSON snapshot written atomically (temp file, fsync, rename), and
//! blob files under `blobs/`.
//!
//! Writers mark the state dirty; a background persister writes the snapshot
//! shortly after (coalescing bursts) and once more on shutdown. Blob bytes are
//! always on disk before the metadata that points at them.

use std::io::{Seek, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use tokio::sync::Notify;

use crate::error::EmulatorError;
use crate::lock::LockHolder;
use crate::model::{BlobRef, Db};

const STATE_FILE: &str = "state.json";
const SECRET_FILE: &str = "signing.key";

/// The emulator's storage.
pub(crate) struct Store {
    db: Mutex<Db>,
    root: PathBuf,
    blobs: PathBuf,
    tmp: PathBuf,
    dirty: AtomicBool,
    notify: Notify,
    /// Held while a snapshot is written; guards the data directory's lock.
    persist_lock: Mutex<DirLock>,
    secret: Vec<u8>,
    _temp: Option<tempfile::TempDir>,
}

/// The data directory's lock ([`crate::lock`]) as far as the store is
/// concerned.
#[derive(Debug)]
enum DirLock {
    /// None was asked for (a temporary directory, or locking turned off).
    NotTaken,
    /// Held: snapshots may be written.
    Held {
        /// Open until released: dropping it unlocks the directory.
        _lock: rf_util::FileLock,
    },
    /// Let go by [`Store::release`]: another emulator may own the
    /// directory, so nothing more is written.
    Released,
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
            (Some(me), None) => DirLock::Held {
                _lock: crate::lock::acquire(&root, me)?,
            },
            _ => DirLock::NotTaken,
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
        let state_path = root.join(STATE_FILE);
        let db = match std::fs::read(&state_path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| EmulatorError::State {
                path: state_path.clone(),
                source,
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Db::default(),
            Err(e) => return Err(io_err(&state_path)(e)),
        };
        let secret_path = root.join(SECRET_FILE);
        check_owner_only(&secret_path)?;
        let secret = match std::fs::read_to_string(&secret_path) {
            Ok(s) => hex::decode(s.trim()).map_err(|e| {
                EmulatorError::Config(format!(
                    "signing key {} is not hex ({e}); delete it to make a new one",
                    secret_path.display()
                ))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = Vec::with_capacity(32);
                key.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
                key.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
                let text = hex::encode(&key);
                rf_util::write_atomic_via(&secret_path, &tmp, |w| {
                    restrict_to_owner(w.get_ref())?;
                    w.write_all(text.as_bytes())
                })
                .map_err(io_err(&secret_path))?;
                key
            }
            Err(e) => return Err(io_err(&secret_path)(e)),
        };
        Ok(Self {
            db: Mutex::new(db),
            root,
            blobs,
            tmp,
            dirty: AtomicBool::new(false),
            notify: Notify::new(),
            persist_lock: Mutex::new(dir_lock),
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

    /// Reads the state.
    pub(crate) fn read<R>(&self, f: impl FnOnce(&Db) -> R) -> R {
        f(&self.lock())
    }

    /// Changes the state and schedules a snapshot.
    pub(crate) fn write<R>(&self, f: impl FnOnce(&mut Db) -> R) -> R {
        let r = f(&mut self.lock());
        self.dirty.store(true, Ordering::Release);
        self.notify.notify_one();
        r
    }

    /// Waits until some write happened since the last snapshot.
    pub(crate) async fn changed(&self) {
        if !self.dirty.load(Ordering::Acquire) {
            self.notify.notified().await;
        }
    }

    /// Writes the snapshot now if anything changed (and the data dir's lock,
    /// if one was taken, is still held: after [`Store::release`] another
    /// emulator may own the directory).
    pub(crate) fn persist(&self) -> Result<(), EmulatorError> {
        let dir_lock = self.persist_lock();
        if matches!(*dir_lock, DirLock::Released) {
            tracing::debug!("state changed after the emulator closed; not written");
            return Ok(());
        }
        if !self.dirty.swap(false, Ordering::AcqRel) {
            return Ok(());
        }
        let bytes = {
            let db = self.lock();
            serde_json::to_vec(&*db)
        };
        let path = self.root.join(STATE_FILE);
        let bytes = bytes.map_err(|source| EmulatorError::State {
            path: path.clone(),
            source,
        })?;
        rf_util::write_atomic_via(&path, &self.tmp, |w| w.write_all(&bytes)).map_err(|e| {
            self.dirty.store(true, Ordering::Release);
            io_err(&path)(e)
        })
    }

    fn persist_lock(&self) -> MutexGuard<'_, DirLock> {
        self.persist_lock.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes the last snapshot and lets go of the data dir's lock, so that
    /// another emulator can open the directory at once; nothing is written
    /// after this.
    pub(crate) fn release(&self) -> Result<(), EmulatorError> {
        let written = self.persist();
        *self.persist_lock() = DirLock::Released;
        written
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
            db.ws_mut("ws").batches.insert(
                id.into(),
                Batch::new(
                    id,
                    None,
                    BatchKind::SimpleBatch,
                    Content::Images,
                    now,
                    chrono::Duration::days(7),
                    seq,
                ),
            );
        });
    }

    #[test]
    fn snapshot_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let now = chrono::Utc::now();
        {
            let store = Store::open(Some(dir.path()), None).unwrap();
            add_batch(&store, "b1", now);
            store.persist().unwrap();
        }
        let store = Store::open(Some(dir.path()), None).unwrap();
        assert!(store.read(|db| db.batch("ws", "b1", now).is_some()));
        assert!(store.read(|db| db.batch("ws", "b2", now).is_none()));
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
        first.persist().unwrap();
        drop(second);
        let third = Store::open(Some(dir.path()), None).unwrap();
        assert!(third.read(|db| db.batch("ws", "kept", now).is_some()));
        assert!(third.read(|db| db.batch("ws", "late", now).is_none()));
    }

    #[test]
    fn corrupt_state_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(STATE_FILE), b"{not json").unwrap();
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
