//! One run at a time per state directory.
//!
//! A run keeps its manifest, items file and downloads journal in its state
//! directory, and clears half-written downloads it finds as leftovers when it
//! starts. Two runs over one directory at once (the same command started
//! twice, say) would each write their own manifest back and delete each
//! other's temporaries. So a run first takes an exclusive advisory lock on
//! `lock` in that directory and writes who it is into it (through
//! [`rf_util::FileLock`]); a second one stops at once with
//! [`StateError::InUse`] naming the first. The operating system drops the
//! lock when the process ends, however it ends. [`crate::Pipeline`] takes it
//! by itself; code that drives the pieces takes it with
//! [`StateLock::acquire`].

use std::path::{Path, PathBuf};

use rf_util::{FileLock, LockError, LockHolder};

use super::StateError;

/// The lock file's name inside a state directory.
pub const LOCK_FILE: &str = "lock";

/// The lock of a state directory, held until dropped.
///
/// ```
/// use rf_batch::state::{StateError, StateLock};
/// let dir = std::env::temp_dir().join(format!("rf-lock-doc-{}", std::process::id()));
/// let held = StateLock::acquire(&dir, "my tool").unwrap();
/// match StateLock::acquire(&dir, "my other tool") {
///     Err(StateError::InUse { holder, .. }) => assert_eq!(holder.owner.as_deref(), Some("my tool")),
///     other => panic!("{other:?}"),
/// }
/// drop(held);
/// assert!(StateLock::acquire(&dir, "my other tool").is_ok());
/// # std::fs::remove_dir_all(&dir).ok();
/// ```
#[derive(Debug)]
pub struct StateLock {
    _lock: FileLock,
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
        match FileLock::acquire(&path, &LockHolder::this_process(command)) {
            Ok(lock) => {
                if !lock.is_enforced() {
                    tracing::warn!(
                        "{} cannot be locked: the file system has no advisory locks",
                        path.display()
                    );
                }
                Ok(StateLock { _lock: lock })
            }
            Err(LockError::Held(holder)) => Err(StateError::InUse {
                dir: dir.to_path_buf(),
                holder,
            }),
            Err(LockError::Io(e)) => Err(io(e)),
        }
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
        assert_eq!(holder, &LockHolder::this_process("rf run"));
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
