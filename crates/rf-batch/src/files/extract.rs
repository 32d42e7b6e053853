//! Safe extraction of `.tar` and `.tar.gz` archives.
//!
//! `tar::Archive::unpack` is not used: it silently drops `..` entries and does
//! not check link targets. [`extract_archive`] walks the entries itself and:
//!
//! - allows only regular files and directories; symbolic and hard links,
//!   devices, FIFOs and sparse files are refused;
//! - refuses absolute paths and any path with a `..` component;
//! - reports **every** refused entry (path and reason) in the
//!   [`ExtractReport`], and extracts the rest;
//! - extracts the first of several entries with the same path and refuses
//!   the others ([`RefusalReason::Duplicate`]), so a later entry can never
//!   replace an earlier one;
//! - caps the number of entries, the total bytes written, and the expansion
//!   ratio (bytes written per byte of archive, checked past a floor), so a
//!   decompression bomb stops with an error instead of filling the disk;
//! - treats an archive that ends before its end-of-archive marker, or inside
//!   an entry, as truncated: an error, nothing extracted;
//! - unpacks into a fresh temporary directory inside the target, then moves the
//!   result into place, so a failed extraction leaves nothing half-written, and
//!   a symbolic link already present in the target is never followed.
//!
//! Compression is detected from the first bytes (gzip magic), not the file
//! name, and multi-member gzip streams are read whole (`MultiGzDecoder`).
//! A truncated download can end a tar at an entry boundary without an error,
//! so callers verify the archive's length before extracting (the exporter does).

use std::collections::HashSet;
use std::fs;
use std::io::{self, BufReader, Read, Seek};
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Bounds on what one archive may unpack to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtractLimits {
    /// Most bytes of file content written (default 64 GiB).
    pub max_total_bytes: u64,
    /// Most entries read (default 1,000,000).
    pub max_entries: u64,
    /// Most bytes written per byte of archive (default 200; export results
    /// compress far less, a gzip bomb ~1000:1) ...
    pub max_ratio: u64,
    /// ... once more than this many bytes were written (default 256 MiB), so
    /// small archives of very repetitive text are never refused.
    pub ratio_floor: u64,
}

impl Default for ExtractLimits {
    fn default() -> Self {
        ExtractLimits {
            max_total_bytes: 64 * 1024 * 1024 * 1024,
            max_entries: 1_000_000,
            max_ratio: 200,
            ratio_floor: 256 * 1024 * 1024,
        }
    }
}

impl ExtractLimits {
    /// The most bytes an archive of `archive_len` bytes may unpack to.
    pub fn budget(&self, archive_len: u64) -> u64 {
        let by_ratio = archive_len
            .saturating_mul(self.max_ratio)
            .max(self.ratio_floor);
        self.max_total_bytes.min(by_ratio)
    }
}

/// Why an entry was not extracted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RefusalReason {
    /// The path is absolute (or has a drive prefix).
    AbsolutePath,
    /// The path has a `..` component.
    ParentComponent,
    /// The path is empty (or only `.`).
    EmptyPath,
    /// A symbolic or hard link.
    Link,
    /// Not a regular file or directory (device, FIFO, sparse file, ...).
    UnsupportedType,
    /// The path collides with something of another kind (a file where a
    /// directory is needed, or a symbolic link already in the target).
    Conflict,
    /// An earlier entry had the same path (the first one is kept).
    Duplicate,
}

impl std::fmt::Display for RefusalReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RefusalReason::AbsolutePath => "absolute path",
            RefusalReason::ParentComponent => "path contains '..'",
            RefusalReason::EmptyPath => "empty path",
            RefusalReason::Link => "link entries are not extracted",
            RefusalReason::UnsupportedType => "not a regular file or directory",
            RefusalReason::Conflict => "conflicts with an existing path of another kind",
            RefusalReason::Duplicate => "an earlier entry has the same path",
        })
    }
}

/// An entry that was not extracted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusedEntry {
    /// The entry's path as written in the archive (lossy UTF-8).
    pub path: String,
    /// Why it was refused.
    pub reason: RefusalReason,
}

/// What an extraction did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtractReport {
    /// Regular files written.
    pub files: u64,
    /// Directories created.
    pub directories: u64,
    /// Bytes of file content written.
    pub bytes: u64,
    /// Entries not extracted, with the reason.
    pub refused: Vec<RefusedEntry>,
}

/// An extraction that stopped; nothing of it is left in the target.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    /// Reading the archive or writing the target failed.
    #[error("cannot extract {}: {context}: {source}", archive.display())]
    Io {
        /// The archive.
        archive: PathBuf,
        /// What was being done.
        context: String,
        /// The I/O error (a corrupt or truncated archive shows up here too).
        #[source]
        source: io::Error,
    },
    /// The archive has more entries than allowed.
    #[error("{} has more than {limit} entries; refusing to extract it (raise the entry limit if it is trusted)", archive.display())]
    TooManyEntries {
        /// The archive.
        archive: PathBuf,
        /// The limit.
        limit: u64,
    },
    /// The archive unpacks to more bytes than allowed (the byte cap, or the
    /// expansion ratio past its floor).
    #[error("{} unpacks to more than {limit} bytes; refusing to extract it (raise the byte limit if it is trusted)", archive.display())]
    TooLarge {
        /// The archive.
        archive: PathBuf,
        /// The limit.
        limit: u64,
    },
    /// The archive ends early: inside an entry, or without its end marker.
    #[error("{} is truncated ({detail}); nothing was extracted; download it again", archive.display())]
    Truncated {
        /// The archive.
        archive: PathBuf,
        /// Where it ends.
        detail: String,
    },
}

/// Extracts `archive` (`.tar`, or gzip-compressed tar) into `target`
/// (created if needed). Blocking: call it from `spawn_blocking` in async code.
pub fn extract_archive(
    archive: &Path,
    target: &Path,
    limits: &ExtractLimits,
) -> Result<ExtractReport, ExtractError> {
    let io_err = |context: &str| {
        let archive = archive.to_path_buf();
        let context = context.to_string();
        move |source| ExtractError::Io {
            archive,
            context,
            source,
        }
    };
    fs::create_dir_all(target).map_err(io_err("creating the target directory"))?;
    let staging = target.join(format!(".rf-extract-{}", uuid::Uuid::new_v4().simple()));
    fs::create_dir(&staging).map_err(io_err("creating a temporary directory"))?;
    let result = unpack_into(archive, &staging, limits).and_then(|mut report| {
        merge(&staging, target, "", &mut report).map_err(io_err("moving files into place"))?;
        Ok(report)
    });
    let _ = fs::remove_dir_all(&staging);
    result
}

fn unpack_into(
    archive: &Path,
    staging: &Path,
    limits: &ExtractLimits,
) -> Result<ExtractReport, ExtractError> {
    let (reader, archive_len) = open_archive(archive)?;
    let mut tar = tar::Archive::new(EndWatch {
        inner: reader,
        hit_end: false,
    });
    let mut unpack = Unpack {
        archive,
        staging,
        limits,
        max_bytes: limits.budget(archive_len),
        report: ExtractReport::default(),
        entries_seen: 0,
        seen_files: HashSet::new(),
    };
    let entries = tar
        .entries()
        .map_err(io_error(archive, "reading the archive".into()))?;
    for entry in entries {
        let entry = entry.map_err(io_error(archive, "reading an entry header".into()))?;
        unpack.entry(entry)?;
    }
    // A complete archive ends with a block of zeros, which stops the reader
    // before the end of the data; running into the end of the data instead
    // means the archive was cut at an entry boundary.
    if tar.into_inner().hit_end {
        return Err(unpack.truncated("it ends without the end-of-archive marker".to_string()));
    }
    Ok(unpack.report)
}

/// The I/O error of `context` while extracting `archive`.
fn io_error(archive: &Path, context: String) -> impl FnOnce(io::Error) -> ExtractError {
    let archive = archive.to_path_buf();
    move |source| ExtractError::Io {
        archive,
        context,
        source,
    }
}

/// The archive's content (gunzipped when it starts with the gzip magic) and
/// its length on disk.
fn open_archive(archive: &Path) -> Result<(Box<dyn Read>, u64), ExtractError> {
    let reading = || io_error(archive, "reading the archive".into());
    let mut file =
        fs::File::open(archive).map_err(io_error(archive, "opening the archive".into()))?;
    let archive_len = file.metadata().map_err(reading())?.len();
    let mut magic = [0u8; 2];
    let got = read_up_to(&mut file, &mut magic).map_err(reading())?;
    file.rewind().map_err(reading())?;
    let reader: Box<dyn Read> = if got == 2 && magic == [0x1f, 0x8b] {
        Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(file)))
    } else {
        Box::new(BufReader::new(file))
    };
    Ok((reader, archive_len))
}

/// One extraction in progress: where it goes, its limits and what it did.
struct Unpack<'a> {
    archive: &'a Path,
    staging: &'a Path,
    limits: &'a ExtractLimits,
    /// Most bytes the files may take ([`ExtractLimits::budget`]).
    max_bytes: u64,
    report: ExtractReport,
    entries_seen: u64,
    seen_files: HashSet<PathBuf>,
}

impl Unpack<'_> {
    fn truncated(&self, detail: String) -> ExtractError {
        ExtractError::Truncated {
            archive: self.archive.to_path_buf(),
            detail,
        }
    }

    fn too_large(&self) -> ExtractError {
        ExtractError::TooLarge {
            archive: self.archive.to_path_buf(),
            limit: self.max_bytes,
        }
    }

    fn refuse(&mut self, raw_path: &str, reason: RefusalReason) {
        self.report.refused.push(RefusedEntry {
            path: raw_path.to_owned(),
            reason,
        });
    }

    /// One entry: refused (and reported), a directory made, or a file
    /// written; an error stops the whole extraction.
    fn entry<R: Read>(&mut self, mut entry: tar::Entry<'_, R>) -> Result<(), ExtractError> {
        self.entries_seen += 1;
        if self.entries_seen > self.limits.max_entries {
            return Err(ExtractError::TooManyEntries {
                archive: self.archive.to_path_buf(),
                limit: self.limits.max_entries,
            });
        }
        let raw_path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let kind = entry.header().entry_type();
        match kind {
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader => return Ok(()),
            tar::EntryType::Symlink | tar::EntryType::Link => {
                self.refuse(&raw_path, RefusalReason::Link);
                return Ok(());
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::Directory => {}
            _ => {
                self.refuse(&raw_path, RefusalReason::UnsupportedType);
                return Ok(());
            }
        }
        let path = entry
            .path()
            .map_err(io_error(self.archive, "reading an entry path".into()))?;
        let relative = match safe_relative(&path) {
            Ok(p) => p,
            Err(reason) => {
                self.refuse(&raw_path, reason);
                return Ok(());
            }
        };
        let dest = self.staging.join(&relative);
        if kind == tar::EntryType::Directory {
            match fs::create_dir_all(&dest) {
                Ok(()) => self.report.directories += 1,
                Err(_) => self.refuse(&raw_path, RefusalReason::Conflict),
            }
            return Ok(());
        }
        if !self.seen_files.insert(relative) {
            self.refuse(&raw_path, RefusalReason::Duplicate);
            return Ok(());
        }
        self.file(&mut entry, &raw_path, &dest)
    }

    /// A regular entry's content written to `dest`, within the byte budget.
    fn file<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        raw_path: &str,
        dest: &Path,
    ) -> Result<(), ExtractError> {
        let size = entry.header().size().unwrap_or(0);
        if self.report.bytes.saturating_add(size) > self.max_bytes {
            return Err(self.too_large());
        }
        if let Some(parent) = dest.parent()
            && fs::create_dir_all(parent).is_err()
        {
            self.refuse(raw_path, RefusalReason::Conflict);
            return Ok(());
        }
        if dest.is_dir() {
            self.refuse(raw_path, RefusalReason::Conflict);
            return Ok(());
        }
        let mut out = fs::File::create(dest)
            .map_err(io_error(self.archive, format!("creating {raw_path}")))?;
        let budget = self.max_bytes - self.report.bytes;
        let written = io::copy(&mut entry.by_ref().take(budget + 1), &mut out)
            .map_err(io_error(self.archive, format!("writing {raw_path}")))?;
        if written > budget {
            return Err(self.too_large());
        }
        if written < size {
            return Err(self.truncated(format!(
                "entry {raw_path:?} has {written} of its {size} bytes"
            )));
        }
        self.report.bytes += written;
        self.report.files += 1;
        Ok(())
    }
}

/// A reader that notes when it reached the end of its data.
struct EndWatch<R> {
    inner: R,
    hit_end: bool,
}

impl<R: Read> Read for EndWatch<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.hit_end = true;
        }
        Ok(n)
    }
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Checks an entry path: relative, no `..`, not empty; `.` components dropped.
fn safe_relative(path: &Path) -> Result<PathBuf, RefusalReason> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::ParentDir => return Err(RefusalReason::ParentComponent),
            Component::RootDir | Component::Prefix(_) => return Err(RefusalReason::AbsolutePath),
        }
    }
    if out.as_os_str().is_empty() {
        return Err(RefusalReason::EmptyPath);
    }
    Ok(out)
}

/// Moves everything under `from` into `to`, never following a symbolic link
/// found in `to`. Existing files are replaced (a re-extraction is idempotent).
fn merge(from: &Path, to: &Path, rel: &str, report: &mut ExtractReport) -> io::Result<()> {
    let mut entries: Vec<fs::DirEntry> = fs::read_dir(from)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name();
        let child_rel = if rel.is_empty() {
            name.to_string_lossy().into_owned()
        } else {
            format!("{rel}/{}", name.to_string_lossy())
        };
        let src = entry.path();
        let dest = to.join(&name);
        let src_is_dir = entry.file_type()?.is_dir();
        match fs::symlink_metadata(&dest) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => fs::rename(&src, &dest)?,
            Err(e) => return Err(e),
            Ok(meta) if meta.file_type().is_symlink() && src_is_dir => {
                report.refused.push(RefusedEntry {
                    path: child_rel,
                    reason: RefusalReason::Conflict,
                });
            }
            Ok(meta) if src_is_dir && meta.is_dir() => merge(&src, &dest, &child_rel, report)?,
            Ok(meta) if !src_is_dir && !meta.is_dir() => fs::rename(&src, &dest)?,
            Ok(_) => report.refused.push(RefusedEntry {
                path: child_rel,
                reason: RefusalReason::Conflict,
            }),
        }
    }
    Ok(())
}

/// Raw tar archives, shared with the integration tests.
#[cfg(test)]
#[path = "../../tests/batch/common/raw_tar.rs"]
mod raw_tar;

#[cfg(test)]
mod tests {
    use super::raw_tar::{finish, gz, raw_entry};
    use super::*;

    /// Each refused entry's path and reason, in order.
    fn refused(r: &ExtractReport) -> Vec<(&str, &RefusalReason)> {
        r.refused
            .iter()
            .map(|e| (e.path.as_str(), &e.reason))
            .collect()
    }

    fn write_archive(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let p = dir.join(name);
        fs::write(&p, bytes).unwrap();
        p
    }

    #[test]
    fn extracts_files_and_dirs_from_tar_and_multi_member_gzip() {
        let work = tempfile::tempdir().unwrap();
        let mut t = Vec::new();
        raw_entry(&mut t, b"results/", b'5', b"", b"");
        raw_entry(&mut t, b"results/a.jsonl", b'0', b"{\"a\":1}\n", b"");
        raw_entry(&mut t, b"./top.csv", b'0', b"x,y\n", b"");
        let t = finish(t);
        let plain = write_archive(work.path(), "r.tar", &t);
        let target = work.path().join("out");
        let r = extract_archive(&plain, &target, &ExtractLimits::default()).unwrap();
        assert_eq!((r.files, r.directories, r.bytes), (2, 1, 12));
        assert!(r.refused.is_empty());
        assert_eq!(
            fs::read(target.join("results/a.jsonl")).unwrap(),
            b"{\"a\":1}\n"
        );
        assert_eq!(fs::read(target.join("top.csv")).unwrap(), b"x,y\n");

        // gzip split in two members: MultiGzDecoder must read both
        let (first, second) = t.split_at(700);
        let mut multi = gz(first);
        multi.extend(gz(second));
        let packed = write_archive(work.path(), "r.bin", &multi);
        let target2 = work.path().join("out2");
        let r = extract_archive(&packed, &target2, &ExtractLimits::default()).unwrap();
        assert_eq!(r.files, 2);
        assert_eq!(fs::read(target2.join("top.csv")).unwrap(), b"x,y\n");
        // no temporary directory is left behind
        let leftovers: Vec<_> = fs::read_dir(&target2)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(leftovers.len(), 2, "{leftovers:?}");
    }

    #[test]
    fn hostile_entries_are_refused_and_reported() {
        let work = tempfile::tempdir().unwrap();
        let outside = work.path().join("outside");
        let mut t = Vec::new();
        raw_entry(&mut t, b"/etc/evil", b'0', b"x", b"");
        raw_entry(&mut t, b"../escape.txt", b'0', b"x", b"");
        raw_entry(&mut t, b"a/../../escape2.txt", b'0', b"x", b"");
        raw_entry(&mut t, b"link", b'2', b"", b"/etc/passwd");
        raw_entry(&mut t, b"hard", b'1', b"", b"../outside/x");
        raw_entry(&mut t, b"dev", b'3', b"", b"");
        raw_entry(&mut t, b"fifo", b'6', b"", b"");
        raw_entry(&mut t, b"./", b'5', b"", b"");
        raw_entry(&mut t, b"good.txt", b'0', b"ok", b"");
        let archive = write_archive(work.path(), "evil.tar", &finish(t));
        let target = work.path().join("target");
        let r = extract_archive(&archive, &target, &ExtractLimits::default()).unwrap();
        assert_eq!(
            refused(&r),
            [
                ("/etc/evil", &RefusalReason::AbsolutePath),
                ("../escape.txt", &RefusalReason::ParentComponent),
                ("a/../../escape2.txt", &RefusalReason::ParentComponent),
                ("link", &RefusalReason::Link),
                ("hard", &RefusalReason::Link),
                ("dev", &RefusalReason::UnsupportedType),
                ("fifo", &RefusalReason::UnsupportedType),
                ("./", &RefusalReason::EmptyPath),
            ]
        );
        assert_eq!(r.files, 1);
        assert!(!work.path().join("escape.txt").exists());
        assert!(!outside.exists());
        let names: Vec<_> = fs::read_dir(&target)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["good.txt"]);
    }

    #[cfg(unix)]
    #[test]
    fn existing_symlink_in_target_is_not_followed() {
        let work = tempfile::tempdir().unwrap();
        let target = work.path().join("target");
        let elsewhere = work.path().join("elsewhere");
        fs::create_dir_all(&target).unwrap();
        fs::create_dir_all(&elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, target.join("sub")).unwrap();
        let mut t = Vec::new();
        raw_entry(&mut t, b"sub/x.txt", b'0', b"x", b"");
        let archive = write_archive(work.path(), "a.tar", &finish(t));
        let r = extract_archive(&archive, &target, &ExtractLimits::default()).unwrap();
        assert_eq!(r.refused[0].reason, RefusalReason::Conflict);
        assert!(!elsewhere.join("x.txt").exists());
    }

    #[test]
    fn caps_entries_and_bytes_and_leaves_nothing() {
        let work = tempfile::tempdir().unwrap();
        let mut t = Vec::new();
        for i in 0..5 {
            raw_entry(&mut t, format!("f{i}").as_bytes(), b'0', &[7u8; 600], b"");
        }
        let archive = write_archive(work.path(), "many.tar.gz", &gz(&finish(t)));
        let target = work.path().join("t");
        let err = extract_archive(
            &archive,
            &target,
            &ExtractLimits {
                max_entries: 3,
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(
            matches!(err, ExtractError::TooManyEntries { limit: 3, .. }),
            "{err}"
        );
        let err = extract_archive(
            &archive,
            &target,
            &ExtractLimits {
                max_total_bytes: 1000,
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("more than 1000 bytes"), "{err}");
        assert_eq!(fs::read_dir(&target).unwrap().count(), 0);
    }

    #[test]
    fn duplicate_names_keep_the_first_and_are_reported() {
        let work = tempfile::tempdir().unwrap();
        let mut t = Vec::new();
        raw_entry(&mut t, b"r/a.json", b'0', b"first", b"");
        raw_entry(&mut t, b"r/a.json", b'0', b"second", b"");
        raw_entry(&mut t, b"./r//a.json", b'0', b"third", b"");
        raw_entry(&mut t, b"r/b.json", b'0', b"b", b"");
        raw_entry(&mut t, b"r/b.json/", b'5', b"", b"");
        let archive = write_archive(work.path(), "dup.tar", &finish(t));
        let target = work.path().join("t");
        let r = extract_archive(&archive, &target, &ExtractLimits::default()).unwrap();
        assert_eq!(fs::read(target.join("r/a.json")).unwrap(), b"first");
        assert_eq!(fs::read(target.join("r/b.json")).unwrap(), b"b");
        assert_eq!(
            refused(&r),
            [
                ("r/a.json", &RefusalReason::Duplicate),
                ("./r//a.json", &RefusalReason::Duplicate),
                ("r/b.json/", &RefusalReason::Conflict),
            ]
        );
        assert_eq!(r.files, 2);
    }

    #[test]
    fn a_decompression_bomb_stops_at_the_ratio_and_leaves_nothing() {
        let work = tempfile::tempdir().unwrap();
        // 8 MiB of zeros in one entry: the gzip is a few KiB.
        let mut t = Vec::new();
        raw_entry(&mut t, b"ok.txt", b'0', b"fine", b"");
        raw_entry(&mut t, b"bomb.bin", b'0', &vec![0u8; 8 << 20], b"");
        let z = gz(&finish(t));
        assert!(z.len() < 64 * 1024, "{}", z.len());
        let archive = write_archive(work.path(), "bomb.tar.gz", &z);
        let target = work.path().join("t");
        let limits = ExtractLimits {
            max_ratio: 20,
            ratio_floor: 1 << 20,
            ..ExtractLimits::default()
        };
        assert!(limits.budget(z.len() as u64) < 8 << 20);
        let err = extract_archive(&archive, &target, &limits).unwrap_err();
        assert!(matches!(err, ExtractError::TooLarge { .. }), "{err}");
        assert!(err.to_string().contains("refusing to extract"), "{err}");
        assert_eq!(fs::read_dir(&target).unwrap().count(), 0, "nothing left");
        // The defaults leave room for it (8 MiB is under the 256 MiB floor).
        let r = extract_archive(&archive, &target, &ExtractLimits::default()).unwrap();
        assert_eq!(r.bytes, (8 << 20) + 4);
        // The ratio is enforced past the floor.
        let d = ExtractLimits::default();
        assert_eq!(d.budget(1 << 20), 256 << 20);
        assert_eq!(d.budget(10 << 20), 2000 << 20);
    }

    #[test]
    fn truncated_plain_tar_is_an_error_and_leaves_nothing() {
        let work = tempfile::tempdir().unwrap();
        let mut t = Vec::new();
        raw_entry(&mut t, b"a.json", b'0', &[b'a'; 700], b"");
        raw_entry(&mut t, b"b.json", b'0', &[b'b'; 700], b"");
        let whole = finish(t);
        let target = work.path().join("t");
        // Cut inside the second entry's data (header 512, data 1024 each).
        let cut = write_archive(work.path(), "cut.tar", &whole[..1536 + 512 + 100]);
        let err = extract_archive(&cut, &target, &ExtractLimits::default()).unwrap_err();
        assert!(matches!(err, ExtractError::Truncated { .. }), "{err}");
        assert!(err.to_string().contains("b.json"), "{err}");
        assert_eq!(fs::read_dir(&target).unwrap().count(), 0);
        // Cut exactly after the first entry: no end marker.
        let cut = write_archive(work.path(), "cut2.tar", &whole[..1536]);
        let err = extract_archive(&cut, &target, &ExtractLimits::default()).unwrap_err();
        assert!(err.to_string().contains("end-of-archive marker"), "{err}");
        assert_eq!(fs::read_dir(&target).unwrap().count(), 0);
        // The same cut, compressed: also refused.
        let cut = write_archive(work.path(), "cut3.tar.gz", &gz(&whole[..1536]));
        let err = extract_archive(&cut, &target, &ExtractLimits::default()).unwrap_err();
        assert!(matches!(err, ExtractError::Truncated { .. }), "{err}");
        // Whole, it extracts.
        let ok = write_archive(work.path(), "ok.tar", &whole);
        assert_eq!(
            extract_archive(&ok, &target, &ExtractLimits::default())
                .unwrap()
                .files,
            2
        );
    }

    #[test]
    fn truncated_gzip_is_an_error() {
        let work = tempfile::tempdir().unwrap();
        let mut t = Vec::new();
        raw_entry(&mut t, b"f", b'0', &[1u8; 5000], b"");
        let z = gz(&finish(t));
        let archive = write_archive(work.path(), "cut.tar.gz", &z[..z.len() / 2]);
        let err = extract_archive(&archive, &work.path().join("t"), &ExtractLimits::default())
            .unwrap_err();
        assert!(
            matches!(
                err,
                ExtractError::Io { .. } | ExtractError::Truncated { .. }
            ),
            "{err}"
        );
        assert_eq!(fs::read_dir(work.path().join("t")).unwrap().count(), 0);
    }
}
