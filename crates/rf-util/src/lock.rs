//! An exclusive advisory lock on a file that says who holds it.
//!
//! Two processes working on one directory at once (the same `rf run` started
//! twice; two emulators on one data directory) would overwrite each other's
//! state. So the first takes an exclusive lock on a lock file in that
//! directory and writes a [`LockHolder`] record into it; the next one is
//! refused at once with [`LockError::Held`] carrying that record, so it can
//! name the holder. The operating system drops the lock when the holding
//! process ends, however it ends: a crash leaves nothing to clean up.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

/// Who holds a lock, as written in its lock file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LockHolder {
    /// The holding process.
    pub pid: Option<u32>,
    /// What it is (`rf run`, `rf batch export`, `rf emulator serve`, ...).
    /// Read from `command` too, the name older rf versions wrote.
    #[serde(alias = "command")]
    pub owner: Option<String>,
    /// Where it serves, for a server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
}

impl LockHolder {
    /// This process, doing `owner`.
    pub fn this_process(owner: &str) -> LockHolder {
        LockHolder {
            pid: Some(std::process::id()),
            owner: Some(owner.to_owned()),
            base_url: None,
        }
    }
}

impl std::fmt::Display for LockHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.owner.as_deref().unwrap_or("another process"))?;
        match (self.pid, &self.base_url) {
            (Some(pid), Some(url)) => write!(f, " (pid {pid}, serving {url})"),
            (Some(pid), None) => write!(f, " (pid {pid})"),
            (None, Some(url)) => write!(f, " (serving {url})"),
            (None, None) => Ok(()),
        }
    }
}

/// Why a lock was not taken.
#[derive(Debug)]
pub enum LockError {
    /// Another process holds it; its record, or an empty one when the record
    /// could not be read (torn, or written by something else).
    Held(LockHolder),
    /// The lock file could not be opened, locked or written.
    Io(std::io::Error),
}

impl std::fmt::Display for LockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LockError::Held(holder) => write!(f, "held by {holder}"),
            LockError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for LockError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LockError::Held(_) => None,
            LockError::Io(e) => Some(e),
        }
    }
}

/// A held lock; dropping it releases the lock.
#[derive(Debug)]
pub struct FileLock {
    _file: File,
    enforced: bool,
}

impl FileLock {
    /// Takes the exclusive lock on the file at `path` (created if missing;
    /// its directory must exist) and writes `me` into it, or returns the
    /// holder's record.
    ///
    /// On a file system without advisory locks the file is used unlocked:
    /// the result says so through [`FileLock::is_enforced`], for the caller
    /// to warn about.
    ///
    /// ```
    /// use rf_util::{FileLock, LockError, LockHolder};
    /// let dir = tempfile::tempdir().unwrap();
    /// let path = dir.path().join("lock");
    /// let held = FileLock::acquire(&path, &LockHolder::this_process("my tool")).unwrap();
    /// match FileLock::acquire(&path, &LockHolder::this_process("other")) {
    ///     Err(LockError::Held(holder)) => assert_eq!(holder.owner.as_deref(), Some("my tool")),
    ///     other => panic!("{other:?}"),
    /// }
    /// drop(held);
    /// assert!(FileLock::acquire(&path, &LockHolder::this_process("other")).is_ok());
    /// ```
    pub fn acquire(path: &Path, me: &LockHolder) -> Result<FileLock, LockError> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(LockError::Io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(LockError::Held(read_holder(&mut file))),
            Err(TryLockError::Error(e)) if e.kind() == std::io::ErrorKind::Unsupported => {
                return Ok(FileLock {
                    _file: file,
                    enforced: false,
                });
            }
            Err(TryLockError::Error(e)) => return Err(LockError::Io(e)),
        }
        write_holder(&mut file, me).map_err(LockError::Io)?;
        Ok(FileLock {
            _file: file,
            enforced: true,
        })
    }

    /// Whether the operating system enforces the lock (false on a file
    /// system without advisory locks, where the file is used unlocked).
    pub fn is_enforced(&self) -> bool {
        self.enforced
    }
}

/// The holder's record. It writes the record right after locking, so an
/// empty or torn one just leaves the holder unnamed.
fn read_holder(file: &mut File) -> LockHolder {
    let mut text = String::new();
    match file.read_to_string(&mut text) {
        Ok(_) => serde_json::from_str(&text).unwrap_or_default(),
        Err(_) => LockHolder::default(),
    }
}

fn write_holder(file: &mut File, me: &LockHolder) -> std::io::Result<()> {
    let record = serde_json::to_vec(me).map_err(std::io::Error::other)?;
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    file.write_all(&record)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(owner: &str) -> LockHolder {
        LockHolder {
            pid: Some(42),
            owner: Some(owner.into()),
            base_url: Some("http://127.0.0.1:8700/".into()),
        }
    }

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_record_until_it_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        let first = FileLock::acquire(&path, &server("rf run")).unwrap();
        assert!(first.is_enforced());
        let Err(LockError::Held(holder)) = FileLock::acquire(&path, &server("b")) else {
            panic!("a second lock was granted");
        };
        assert_eq!(holder, server("rf run"));
        assert_eq!(
            holder.to_string(),
            "rf run (pid 42, serving http://127.0.0.1:8700/)"
        );
        drop(first);
        // Released: the next one gets it and its own record replaces the old.
        let _second = FileLock::acquire(&path, &LockHolder::this_process("b")).unwrap();
        let Err(LockError::Held(holder)) = FileLock::acquire(&path, &server("c")) else {
            panic!("a second lock was granted");
        };
        assert_eq!(holder, LockHolder::this_process("b"));
    }

    #[test]
    fn an_unreadable_record_leaves_the_holder_unnamed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        let _first = FileLock::acquire(&path, &server("x")).unwrap();
        std::fs::write(&path, b"{torn").unwrap();
        let Err(LockError::Held(holder)) = FileLock::acquire(&path, &server("y")) else {
            panic!("a second lock was granted");
        };
        assert_eq!(holder, LockHolder::default());
        assert_eq!(holder.to_string(), "another process");
    }

    #[test]
    fn records_of_older_versions_name_their_command() {
        let old: LockHolder = serde_json::from_str(r#"{"pid":7,"command":"rf run"}"#).unwrap();
        assert_eq!(old.to_string(), "rf run (pid 7)");
    }
}
