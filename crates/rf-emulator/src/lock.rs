//! The data directory's lock: one emulator at a time per directory.
//!
//! Two emulators on one data directory (two `rf run` with the embedded
//! emulator, or one of them beside `rf emulator serve`) would each load the
//! snapshot, keep their own copy in memory and write it back, so the last one
//! to stop silently erases what the other recorded; each also clears the
//! other's half-written uploads from `tmp/` when it starts. So an emulator
//! takes an exclusive advisory lock on `<data dir>/lock` before it reads
//! anything there and holds it until it closes. The file also says who holds
//! it ([`LockHolder`]: process ID, owner label, base URL), so the one that is
//! refused can name the holder. The operating system drops the lock when the
//! holding process ends, however it ends, so a crash leaves nothing to clean.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::EmulatorError;

/// The lock file's name inside the data directory.
pub(crate) const LOCK_FILE: &str = "lock";

/// Who holds a data directory, as written in its lock file (the
/// [`EmulatorError::DataDirInUse`] error carries the holder's record).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct LockHolder {
    /// The holding process.
    pub pid: Option<u32>,
    /// What it is, as its configuration says ([`crate::EmulatorConfig::owner`]),
    /// e.g. `rf run` or `rf emulator serve`.
    pub owner: Option<String>,
    /// Where it serves the API.
    pub base_url: Option<String>,
}

impl std::fmt::Display for LockHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.owner.as_deref().unwrap_or("another emulator"))?;
        match (self.pid, &self.base_url) {
            (Some(pid), Some(url)) => write!(f, " (pid {pid}, serving {url})"),
            (Some(pid), None) => write!(f, " (pid {pid})"),
            (None, Some(url)) => write!(f, " (serving {url})"),
            (None, None) => Ok(()),
        }
    }
}

/// Takes the lock of the data directory `root` for `me`, or says who has it.
/// A file system without advisory locks is used unlocked (with a warning).
pub(crate) fn acquire(root: &Path, me: &LockHolder) -> Result<File, EmulatorError> {
    let path = root.join(LOCK_FILE);
    let io = |source| EmulatorError::Io {
        path: path.clone(),
        source,
    };
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            // The holder writes its record right after locking; an empty or
            // torn file just leaves the holder unnamed.
            let mut text = String::new();
            let holder = match file.read_to_string(&mut text) {
                Ok(_) => serde_json::from_str(&text).unwrap_or_default(),
                Err(_) => LockHolder::default(),
            };
            return Err(EmulatorError::DataDirInUse {
                dir: root.to_path_buf(),
                holder,
            });
        }
        Err(TryLockError::Error(e)) if e.kind() == std::io::ErrorKind::Unsupported => {
            tracing::warn!(
                "{} does not support file locks: nothing stops a second emulator from using this data dir at the same time",
                path.display()
            );
            return Ok(file);
        }
        Err(TryLockError::Error(e)) => return Err(io(e)),
    }
    let record = serde_json::to_vec(me).map_err(|e| io(std::io::Error::other(e)))?;
    file.set_len(0)
        .and_then(|()| file.seek(SeekFrom::Start(0)))
        .and_then(|_| file.write_all(&record))
        .map_err(io)?;
    Ok(file)
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
        assert!(
            err.to_string().contains("in use by another emulator;"),
            "{err}"
        );
        drop(first);
    }
}
