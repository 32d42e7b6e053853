//! One run at a time per state directory.
//!
//! A run keeps its manifest, items file and downloads journal in its state
//! directory, and clears half-written downloads it finds as leftovers when it
//! starts. Two runs over one directory at once (the same command started
//! twice, say) would each write their own manifest back and delete each
//! other's temporaries. So a run first takes an exclusive advisory lock on
//! `lock` in that directory and writes who it is into it; a second one stops
//! at once with [`StateError::InUse`] naming the first. The operating system
//! drops the lock when the process ends, however it ends. [`crate::Pipeline`]
//! takes it by itself; code that drives the pieces (as `rf batch ingest`
//! does) takes it with [`StateLock::acquire`].

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::StateError;

/// The lock file's name inside a state directory.
pub const LOCK_FILE: &str = "lock";

/// What the lock file says about the run that holds it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockHolder {
    /// Its process ID.
    pub pid: Option<u32>,
    /// What it is (`rf run`, `rf batch export`, ...).
    pub command: Option<String>,
}

impl std::fmt::Display for LockHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.command.as_deref().unwrap_or("another run"))?;
        if let Some(pid) = self.pid {
            write!(f, " (pid {pid})")?;
        }
        Ok(())
    }
}

/// The lock of a state directory, held until dropped.
///
/// ```
/// use rf_batch::state::{StateError, StateLock};
/// let dir = std::env::temp_dir().join(format!("rf-lock-doc-{}", std::process::id()));
/// let held = StateLock::acquire(&dir, "my tool").unwrap();
/// match StateLock::acquire(&dir, "my other tool") {
///     Err(StateError::InUse { holder, .. }) => assert_eq!(holder.command.as_deref(), Some("my tool")),
///     other => panic!("{other:?}"),
/// }
/// drop(held);
/// assert!(StateLock::acquire(&dir, "my other tool").is_ok());
/// # std::fs::remove_dir_all(&dir).ok();
/// ```
#[derive(Debug)]
pub struct StateLock {
    _file: File,
}

impl StateLock {
    /// Locks the state directory `dir` (created if missing) for `command`,
    /// or says who holds it. A file system without advisory locks is used
    /// unlocked (with a warning in the log).
    pub fn acquire(dir: &Path, command: &str) -> Result<StateLock, StateError> {
        let path = dir.join(LOCK_FILE);
        let io = |source| StateError::Io {
            action: "lock",
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
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
                // The holder writes its record right after locking; an empty
                // or torn record just leaves it unnamed.
                let mut text = String::new();
                let holder = match file.read_to_string(&mut text) {
                    Ok(_) => serde_json::from_str(&text).unwrap_or_default(),
                    Err(_) => LockHolder::default(),
                };
                return Err(StateError::InUse {
                    dir: dir.to_path_buf(),
                    holder,
                });
            }
            Err(TryLockError::Error(e)) if e.kind() == std::io::ErrorKind::Unsupported => {
                tracing::warn!("{} cannot be locked: {e}", path.display());
                return Ok(StateLock { _file: file });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        let record = serde_json::to_vec(&LockHolder {
            pid: Some(std::process::id()),
            command: Some(command.to_owned()),
        })
        .map_err(|e| io(std::io::Error::other(e)))?;
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(&record))
            .map_err(io)?;
        Ok(StateLock { _file: file })
    }
}

/// The state directory of the manifest at `manifest_path`.
pub(crate) fn state_dir_of(manifest_path: &Path) -> PathBuf {
    manifest_path
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_run_is_refused_naming_the_first_until_it_is_done() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("out/.rf-state");
        let first = StateLock::acquire(&state, "rf run").unwrap();
        let err = StateLock::acquire(&state, "rf batch export").unwrap_err();
        let StateError::InUse { dir: held, holder } = &err else {
            panic!("{err:?}");
        };
        assert_eq!(held, &state);
        assert_eq!(
            holder,
            &LockHolder {
                pid: Some(std::process::id()),
                command: Some("rf run".into()),
            }
        );
        assert_eq!(
            err.to_string(),
            format!(
                "state directory {} is in use by rf run (pid {}); wait for it to finish, or use another directory",
                state.display(),
                std::process::id()
            )
        );
        drop(first);
        let _second = StateLock::acquire(&state, "rf batch export").unwrap();
    }
}
