//! The data directory's lock: one emulator at a time per directory.
//!
//! Two emulators on one data directory (two `rf run` with the embedded
//! emulator, or one of them beside `rf emulator serve`) would each load the
//! snapshot, keep their own copy in memory and write it back, so the last one
//! to stop silently erases what the other recorded; each also clears the
//! other's half-written uploads from `tmp/` when it starts. So an emulator
//! takes an exclusive advisory lock on `<data dir>/lock` before it reads
//! anything there and holds it until it closes. The lock itself is
//! [`rf_util::FileLock`]; its record ([`LockHolder`]: process ID, owner label,
//! base URL) lets the one that is refused name the holder. The operating
//! system drops the lock when the holding process ends, however it ends, so a
//! crash leaves nothing to clean.

use std::path::Path;

use rf_util::{FileLock, LockError};

use crate::error::EmulatorError;

/// Who holds a data directory, as written in its lock file (the
/// [`EmulatorError::DataDirInUse`] error carries the holder's record).
pub use rf_util::LockHolder;

/// The lock file's name inside the data directory.
pub(crate) const LOCK_FILE: &str = "lock";

/// Takes the lock of the data directory `root` for `me`, or says who has it.
/// A file system without advisory locks is used unlocked (with a warning).
pub(crate) fn acquire(root: &Path, me: &LockHolder) -> Result<FileLock, EmulatorError> {
    let path = root.join(LOCK_FILE);
    match FileLock::acquire(&path, me) {
        Ok(lock) => {
            if !lock.is_enforced() {
                tracing::warn!(
                    "{} does not support file locks: nothing stops a second emulator from using this data dir at the same time",
                    path.display()
                );
            }
            Ok(lock)
        }
        Err(LockError::Held(holder)) => Err(EmulatorError::DataDirInUse {
            dir: root.to_path_buf(),
            holder,
        }),
        Err(LockError::Io(source)) => Err(EmulatorError::Io { path, source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me(owner: &str) -> LockHolder {
        LockHolder {
            pid: Some(42),
            owner: Some(owner.into()),
            base_url: Some("http://127.0.0.1:8700/".into()),
        }
    }

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_record() {
        let dir = tempfile::tempdir().unwrap();
        let first = acquire(dir.path(), &me("rf run")).unwrap();
        let err = acquire(dir.path(), &me("rf emulator serve")).unwrap_err();
        match &err {
            EmulatorError::DataDirInUse { dir: d, holder } => {
                assert_eq!(d, dir.path());
                assert_eq!(holder, &me("rf run"));
            }
            other => panic!("{other}"),
        }
        let text = err.to_string();
        assert!(
            text.contains("in use by rf run (pid 42, serving http://127.0.0.1:8700/)"),
            "{text}"
        );
        drop(first);
        // Released: the next one gets it and its own record replaces the old.
        let _second = acquire(dir.path(), &me("rf emulator serve")).unwrap();
        let err = acquire(dir.path(), &LockHolder::default()).unwrap_err();
        assert!(
            err.to_string().contains("in use by rf emulator serve"),
            "{err}"
        );
    }

    #[test]
    fn an_unreadable_record_leaves_the_holder_unnamed() {
        let dir = tempfile::tempdir().unwrap();
        let first = acquire(dir.path(), &me("x")).unwrap();
        std::fs::write(dir.path().join(LOCK_FILE), b"{torn").unwrap();
        let err = acquire(dir.path(), &me("y")).unwrap_err();
        // rf-util's holder record names an unknown holder "another process".
        assert!(
            err.to_string().contains("in use by another process;"),
            "{err}"
        );
        drop(first);
    }
}
