//! Atomic file writes: readers see the old content or the new one, never a
//! mix, and once the call returns the new content survives a crash or a
//! power cut.
//!
//! The content goes to a temporary file first, which is flushed to disk
//! (`fsync`) and then renamed over the target; the directory is synced too,
//! so the rename itself is durable. A failed write removes its temporary
//! file and leaves the target untouched.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Writes `path` atomically, with its temporary file beside it.
///
/// `write` fills a buffered writer; its error aborts the write.
///
/// ```
/// use std::io::Write;
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("state.json");
/// rf_util::write_atomic(&path, |w| w.write_all(b"{}")).unwrap();
/// assert_eq!(std::fs::read(&path).unwrap(), b"{}");
/// ```
pub fn write_atomic(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> io::Result<()>,
) -> io::Result<()> {
    let dir = parent_of(path);
    write_atomic_via(path, &dir, write)
}

/// Writes `path` atomically, with its temporary file in `tmp_dir` (which
/// must be on the same file system; a directory the owner clears of
/// leftovers at start, say).
pub fn write_atomic_via(
    path: &Path,
    tmp_dir: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> io::Result<()>,
) -> io::Result<()> {
    let tmp = tmp_dir.join(temp_name(path));
    let result = write_then_rename(&tmp, path, write);
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn write_then_rename(
    tmp: &Path,
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> io::Result<()>,
) -> io::Result<()> {
    let mut w = BufWriter::new(File::create(tmp)?);
    write(&mut w)?;
    w.flush()?;
    let file = w.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(tmp, path)?;
    sync_dir(&parent_of(path));
    Ok(())
}

/// Syncs a directory so that renames and creations in it are durable (best
/// effort: some file systems cannot open a directory for this).
pub fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// `.<name>.tmp-<pid>-<n>`: unique within the process and between processes.
fn temp_name(path: &Path) -> String {
    static SERIAL: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .map_or_else(|| "file".into(), |n| n.to_string_lossy());
    format!(
        ".{name}.tmp-{}-{}",
        std::process::id(),
        SERIAL.fetch_add(1, Ordering::Relaxed)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_content_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.json");
        std::fs::write(&path, b"old").unwrap();
        write_atomic(&path, |w| w.write_all(b"new content")).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new content");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "a temporary file was left behind");
    }

    #[test]
    fn a_failed_write_leaves_the_old_file_and_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.json");
        std::fs::write(&path, b"old").unwrap();
        let err = write_atomic(&path, |w| {
            w.write_all(b"half")?;
            Err(io::Error::other("serializer broke"))
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "serializer broke");
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn the_temporary_can_live_in_another_directory() {
        let dir = tempfile::tempdir().unwrap();
        let tmp = dir.path().join("tmp");
        std::fs::create_dir(&tmp).unwrap();
        let path = dir.path().join("state.json");
        write_atomic_via(&path, &tmp, |w| w.write_all(b"x")).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"x");
        assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0);
    }
}
