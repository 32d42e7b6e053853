//! One `rf` at a time per state directory.
//!
//! `rf run` and the exports keep their manifest in `<out>/.rf-state/`, and
//! `rf batch ingest` in its cache directory per batch. Two commands on one of
//! these at once (the same command started twice, say) would each load the
//! manifest and write their own copy back, and each clears the other's
//! half-written downloads as leftovers when it starts. So a command takes an
//! exclusive advisory lock on `lock` in that directory first, and writes who
//! it is into it; a second one stops at once naming the first. The
//! operating system drops the lock when the process ends, however it ends.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{CliError, Result};

/// The lock file's name inside a state directory.
const LOCK_FILE: &str = "lock";

/// What the lock file says about its holder.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Holder {
    pid: Option<u32>,
    command: Option<String>,
}

/// Held for as long as the command runs; dropping it releases the lock.
#[derive(Debug)]
pub(crate) struct StateLock {
    _file: File,
}

/// Locks the state directory `dir` (created if missing) for `command`
/// (`rf run`, ...). Refused: a one-line error saying that `what` (the
/// directory as the user knows it, e.g. `--out results`) is in use, by whom,
/// and `flag`, the option that picks another. A file system without
/// advisory locks is used unlocked.
pub(crate) fn lock(dir: &Path, what: &str, command: &str, flag: &str) -> Result<StateLock> {
    let path = dir.join(LOCK_FILE);
    let io = |e: std::io::Error| {
        CliError::local(format!(
            "cannot lock {}: {}",
            path.display(),
            super::options::io_reason(&e)
        ))
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
            let mut text = String::new();
            let holder: Holder = match file.read_to_string(&mut text) {
                Ok(_) => serde_json::from_str(&text).unwrap_or_default(),
                Err(_) => Holder::default(),
            };
            let who = holder.command.as_deref().unwrap_or("another rf");
            let pid = holder
                .pid
                .map(|p| format!(" (pid {p})"))
                .unwrap_or_default();
            return Err(CliError::local(format!(
                "{what} is in use by {who}{pid}; wait for it to finish, or use another {flag}"
            )));
        }
        Err(TryLockError::Error(e)) if e.kind() == std::io::ErrorKind::Unsupported => {
            tracing::warn!("{} cannot be locked: {e}", path.display());
            return Ok(StateLock { _file: file });
        }
        Err(TryLockError::Error(e)) => return Err(io(e)),
    }
    let record = serde_json::to_vec(&Holder {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_command_is_refused_naming_the_first_until_it_is_done() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("out/.rf-state");
        let first = lock(&state, "--out out", "rf run", "--out").unwrap();
        let err = lock(&state, "--out out", "rf batch export", "--out").unwrap_err();
        assert_eq!(err.kind().code(), 1);
        assert_eq!(
            err.to_string(),
            format!(
                "--out out is in use by rf run (pid {}); wait for it to finish, or use another --out",
                std::process::id()
            )
        );
        drop(first);
        let _second = lock(&state, "--out out", "rf batch export", "--out").unwrap();
    }
}
