//! Directory scan: finds the images and videos under an input directory.
//!
//! Rules (all deliberate, all documented in `docs/library.md`):
//!
//! - recursive, in a deterministic order (each directory's entries sorted by
//!   their raw name bytes, depth first), so two scans of the same tree give the
//!   same list and therefore the same shards;
//! - extensions are matched without regard to case against the lists the
//!   official client accepts (`rf_types::IMAGE_EXTENSIONS`, `VIDEO_EXTENSIONS`);
//! - hidden entries (a name starting with `.`) are skipped and not descended
//!   into; they are counted, not listed one by one, because `.git` alone can hold
//!   thousands of files;
//! - symbolic links to files are followed (the file they point at is uploaded
//!   under the link's name); symbolic links to directories are **not** followed,
//!   which rules out loops and escapes from the input tree; each one is reported;
//! - every file that cannot be used (unreadable, not media, name not UTF-8,
//!   image over the size limit, broken link) is reported with its reason, never
//!   silently dropped;
//! - read-only inputs are fine: the scan only reads (opening each media file
//!   once to prove it is readable).

use std::fs;
use std::io;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};

pub use rf_types::{IMAGE_EXTENSIONS, MAX_IMAGE_BYTES, VIDEO_EXTENSIONS};

/// What kind of media a file is, by its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaKind {
    /// A still image (uploaded singly or inside a tar shard).
    Image,
    /// A video (always uploaded alone through a signed URL).
    Video,
}

impl MediaKind {
    /// Classifies a file name by its extension, case-insensitively.
    ///
    /// ```
    /// use rf_batch::ingest::{MediaKind, scan::media_kind};
    /// assert_eq!(media_kind("a/B.JPG"), Some(MediaKind::Image));
    /// assert_eq!(media_kind("clip.Mp4"), Some(MediaKind::Video));
    /// assert_eq!(media_kind("notes.txt"), None);
    /// ```
    pub fn of(name: &str) -> Option<MediaKind> {
        media_kind(name)
    }

    /// The kind a run processes: the one asked for, else images when there
    /// are any (or nothing at all), else videos.
    pub fn for_run(requested: Option<MediaKind>, images: usize, videos: usize) -> MediaKind {
        requested.unwrap_or(if images > 0 || videos == 0 {
            MediaKind::Image
        } else {
            MediaKind::Video
        })
    }

    /// `"images"` or `"videos"`, for messages.
    pub fn plural(self) -> &'static str {
        match self {
            MediaKind::Image => "images",
            MediaKind::Video => "videos",
        }
    }
}

/// Classifies a file name by its extension, case-insensitively (see [`MediaKind::of`]).
pub fn media_kind(name: &str) -> Option<MediaKind> {
    let base = name.rsplit('/').next().unwrap_or(name);
    let (_, ext) = base.rsplit_once('.')?;
    let ext = ext.to_ascii_lowercase();
    if IMAGE_EXTENSIONS.contains(&ext.as_str()) {
        Some(MediaKind::Image)
    } else if VIDEO_EXTENSIONS.contains(&ext.as_str()) {
        Some(MediaKind::Video)
    } else {
        None
    }
}

/// One usable media file found by the scan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScannedFile {
    /// Path relative to the scan root, `/`-separated.
    pub relative: String,
    /// Image or video.
    pub kind: MediaKind,
    /// Size in bytes at scan time.
    pub size: u64,
    /// Modification time at scan time, nanoseconds since the Unix epoch (0 if unknown).
    pub mtime_ns: i64,
}

impl ScannedFile {
    /// The file's full path under `root`.
    pub fn path(&self, root: &Path) -> PathBuf {
        root.join(&self.relative)
    }
}

/// Why a file or directory was not used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "reason", content = "detail")]
pub enum SkipReason {
    /// The extension is not one of the accepted image or video extensions.
    NotMedia,
    /// The file or directory could not be read; the detail is the OS error.
    Unreadable(String),
    /// The name is not valid UTF-8, so it cannot be named in the batch.
    NonUtf8Name,
    /// A symbolic link to a directory (never followed, see the module docs).
    DirectorySymlink,
    /// A symbolic link whose target does not exist.
    BrokenSymlink,
    /// Neither a regular file nor a directory (socket, FIFO, device).
    NotARegularFile,
    /// An image larger than the service's limit; the detail is its size.
    TooLarge(u64),
    /// Media of the other kind than the run processes (a run is either
    /// images or videos); the detail is the file's kind.
    OtherKind(MediaKind),
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SkipReason::NotMedia => f.write_str("not an image or video extension"),
            SkipReason::Unreadable(e) => write!(f, "unreadable: {e}"),
            SkipReason::NonUtf8Name => f.write_str("name is not valid UTF-8"),
            SkipReason::DirectorySymlink => {
                f.write_str("symbolic link to a directory (not followed)")
            }
            SkipReason::BrokenSymlink => f.write_str("broken symbolic link"),
            SkipReason::NotARegularFile => f.write_str("not a regular file"),
            SkipReason::OtherKind(MediaKind::Image) => {
                f.write_str("an image, and this run processes videos")
            }
            SkipReason::OtherKind(MediaKind::Video) => {
                f.write_str("a video, and this run processes images")
            }
            SkipReason::TooLarge(size) => write!(
                f,
                "image is {size} bytes, over the service limit of {MAX_IMAGE_BYTES} bytes"
            ),
        }
    }
}

/// A file or directory that the scan reports instead of using.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedFile {
    /// Path relative to the scan root (lossy for non-UTF-8 names).
    pub relative: String,
    /// Why it was skipped.
    #[serde(flatten)]
    pub reason: SkipReason,
}

/// Options of [`scan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanOptions {
    /// Keep images (default true).
    pub images: bool,
    /// Keep videos (default true).
    pub videos: bool,
    /// Also scan hidden files and directories (default false).
    pub include_hidden: bool,
    /// Largest image accepted, in bytes (default [`MAX_IMAGE_BYTES`]).
    pub max_image_bytes: u64,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            images: true,
            videos: true,
            include_hidden: false,
            max_image_bytes: MAX_IMAGE_BYTES,
        }
    }
}

/// The result of a scan: usable files in a deterministic order, and everything skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanReport {
    /// Usable media files, sorted by path.
    pub files: Vec<ScannedFile>,
    /// Files and directories not used, with the reason.
    pub skipped: Vec<SkippedFile>,
    /// Number of hidden entries skipped (not descended into).
    pub hidden: u64,
}

impl ScanReport {
    /// Number of images found.
    pub fn image_count(&self) -> usize {
        self.files
            .iter()
            .filter(|f| f.kind == MediaKind::Image)
            .count()
    }

    /// Number of videos found.
    pub fn video_count(&self) -> usize {
        self.files
            .iter()
            .filter(|f| f.kind == MediaKind::Video)
            .count()
    }
}

/// A scan that could not run at all (the root itself is unusable).
#[derive(Debug, thiserror::Error)]
#[error("cannot scan input directory {}: {source}; check that it exists and is readable", root.display())]
pub struct ScanError {
    /// The directory that was to be scanned.
    pub root: PathBuf,
    /// The I/O error.
    #[source]
    pub source: io::Error,
}

/// Scans `root` recursively for media files (blocking; call it from
/// `spawn_blocking` in async code). See the module docs for the rules.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = std::env::temp_dir().join(format!("rf-scan-doc-{}", std::process::id()));
/// std::fs::create_dir_all(dir.join("sub"))?;
/// std::fs::write(dir.join("sub/a.JPG"), b"x")?;
/// std::fs::write(dir.join("notes.txt"), b"x")?;
/// let report = rf_batch::ingest::scan(&dir, &Default::default())?;
/// assert_eq!(report.files[0].relative, "sub/a.JPG");
/// assert_eq!(report.skipped[0].relative, "notes.txt");
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok(()) }
/// ```
pub fn scan(root: &Path, options: &ScanOptions) -> Result<ScanReport, ScanError> {
    let mut files = Vec::new();
    let tally = scan_each(root, options, |file| {
        files.push(file);
        ControlFlow::Continue(())
    })?;
    Ok(ScanReport {
        files,
        skipped: tally.skipped,
        hidden: tally.hidden,
    })
}

/// What [`scan_each`] saw besides the files it handed over.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanTally {
    /// Images handed over.
    pub images: usize,
    /// Videos handed over.
    pub videos: usize,
    /// Files and directories not used, with the reason.
    pub skipped: Vec<SkippedFile>,
    /// Number of hidden entries skipped (not descended into).
    pub hidden: u64,
}

/// [`scan`] without holding the list: each usable file is handed to
/// `on_file` as it is found, in the same deterministic order, and the scan
/// stops early when `on_file` returns [`ControlFlow::Break`]. Memory stays
/// bounded by the largest single directory (its entry names, packed in one
/// buffer while they are sorted), not by the tree: a run over 200,000 files
/// can write its plan to disk as it scans.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::ops::ControlFlow;
/// let dir = std::env::temp_dir().join(format!("rf-scan-each-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// std::fs::write(dir.join("b.png"), b"x")?;
/// std::fs::write(dir.join("a.jpg"), b"xy")?;
/// let mut bytes = 0;
/// let tally = rf_batch::ingest::scan::scan_each(&dir, &Default::default(), |file| {
///     bytes += file.size;
///     ControlFlow::Continue(())
/// })?;
/// assert_eq!((tally.images, bytes), (2, 3));
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok(()) }
/// ```
pub fn scan_each(
    root: &Path,
    options: &ScanOptions,
    mut on_file: impl FnMut(ScannedFile) -> ControlFlow<()>,
) -> Result<ScanTally, ScanError> {
    let meta = fs::metadata(root).map_err(|source| ScanError {
        root: root.to_path_buf(),
        source,
    })?;
    if !meta.is_dir() {
        return Err(ScanError {
            root: root.to_path_buf(),
            source: io::Error::new(io::ErrorKind::InvalidInput, "not a directory"),
        });
    }
    let mut tally = ScanTally::default();
    // Read the root eagerly so that an unreadable root is an error, not a skip.
    let entries = SortedNames::read(root).map_err(|source| ScanError {
        root: root.to_path_buf(),
        source,
    })?;
    let mut walk = Walk {
        options,
        tally: &mut tally,
        on_file: &mut on_file,
    };
    // A stop asked for by `on_file` ends the walk; its caller knows why.
    let _ = walk.entries(root, "", &entries);
    Ok(tally)
}

/// The names of one directory, sorted by their raw bytes, packed in one
/// buffer (a `Vec<DirEntry>` costs about four times as much per entry).
struct SortedNames {
    bytes: Vec<u8>,
    /// (start, length) of each name in `bytes`, in sorted order (32 bits
    /// each: a directory whose names take over 4 GiB is refused).
    spans: Vec<(u32, u32)>,
}

impl SortedNames {
    fn read(dir: &Path) -> io::Result<SortedNames> {
        let mut names = SortedNames {
            bytes: Vec::new(),
            spans: Vec::new(),
        };
        for entry in fs::read_dir(dir)? {
            let name = entry?.file_name();
            let raw = name.as_encoded_bytes();
            // The end must fit too, so `start + len` never overflows.
            let too_large = || io::Error::other("directory listing over 4 GiB");
            u32::try_from(names.bytes.len() + raw.len()).map_err(|_| too_large())?;
            let span = (names.bytes.len() as u32, raw.len() as u32);
            names.spans.push(span);
            names.bytes.extend_from_slice(raw);
        }
        let bytes = &names.bytes;
        let name = |&(start, len): &(u32, u32)| &bytes[start as usize..(start + len) as usize];
        names.spans.sort_unstable_by(|a, b| name(a).cmp(name(b)));
        names.bytes.shrink_to_fit();
        names.spans.shrink_to_fit();
        Ok(names)
    }

    /// Each name: as UTF-8, or (not valid UTF-8) a lossy rendering of it.
    fn iter(&self) -> impl Iterator<Item = Result<&str, String>> {
        self.spans.iter().map(|&(start, len)| {
            let raw = &self.bytes[start as usize..(start + len) as usize];
            std::str::from_utf8(raw).map_err(|_| String::from_utf8_lossy(raw).into_owned())
        })
    }
}

struct Walk<'a, F> {
    options: &'a ScanOptions,
    tally: &'a mut ScanTally,
    on_file: &'a mut F,
}

impl<F: FnMut(ScannedFile) -> ControlFlow<()>> Walk<'_, F> {
    fn skip(&mut self, relative: String, reason: SkipReason) {
        self.tally.skipped.push(SkippedFile { relative, reason });
    }

    fn entries(&mut self, dir: &Path, prefix: &str, entries: &SortedNames) -> ControlFlow<()> {
        for name in entries.iter() {
            let name = match name {
                Ok(name) => name,
                Err(lossy) => {
                    self.skip(join(prefix, &lossy), SkipReason::NonUtf8Name);
                    continue;
                }
            };
            if name.starts_with('.') && !self.options.include_hidden {
                self.tally.hidden += 1;
                continue;
            }
            self.entry(dir, prefix, name)?;
        }
        ControlFlow::Continue(())
    }

    /// One entry of a directory: a directory is walked, anything else is
    /// looked at as a file.
    fn entry(&mut self, dir: &Path, prefix: &str, name: &str) -> ControlFlow<()> {
        let relative = join(prefix, name);
        let path = dir.join(name);
        let (meta, is_link) = match followed_metadata(&path) {
            Ok(found) => found,
            Err(reason) => {
                self.skip(relative, reason);
                return ControlFlow::Continue(());
            }
        };
        if !meta.is_dir() {
            return self.file(relative, name, &path, &meta);
        }
        if is_link {
            self.skip(relative, SkipReason::DirectorySymlink);
            return ControlFlow::Continue(());
        }
        match SortedNames::read(&path) {
            Ok(children) => self.entries(&path, &relative, &children),
            Err(e) => {
                self.skip(relative, SkipReason::Unreadable(e.to_string()));
                ControlFlow::Continue(())
            }
        }
    }

    /// A non-directory entry: reported if it is a readable media file of a
    /// wanted kind and size, skipped with the reason otherwise.
    fn file(
        &mut self,
        relative: String,
        name: &str,
        path: &Path,
        meta: &fs::Metadata,
    ) -> ControlFlow<()> {
        let options = self.options;
        if !meta.is_file() {
            self.skip(relative, SkipReason::NotARegularFile);
            return ControlFlow::Continue(());
        }
        let kind = match media_kind(name) {
            Some(MediaKind::Image) if options.images => MediaKind::Image,
            Some(MediaKind::Video) if options.videos => MediaKind::Video,
            _ => {
                self.skip(relative, SkipReason::NotMedia);
                return ControlFlow::Continue(());
            }
        };
        if kind == MediaKind::Image && meta.len() > options.max_image_bytes {
            self.skip(relative, SkipReason::TooLarge(meta.len()));
            return ControlFlow::Continue(());
        }
        if let Err(e) = fs::File::open(path) {
            self.skip(relative, SkipReason::Unreadable(e.to_string()));
            return ControlFlow::Continue(());
        }
        match kind {
            MediaKind::Image => self.tally.images += 1,
            MediaKind::Video => self.tally.videos += 1,
        }
        (self.on_file)(ScannedFile {
            relative,
            kind,
            size: meta.len(),
            mtime_ns: mtime_ns(meta),
        })
    }
}

/// The metadata of `path`, through a symlink (and whether it is one), or why
/// it is skipped.
fn followed_metadata(path: &Path) -> Result<(fs::Metadata, bool), SkipReason> {
    let unreadable = |e: io::Error| SkipReason::Unreadable(e.to_string());
    let link_meta = fs::symlink_metadata(path).map_err(unreadable)?;
    if !link_meta.file_type().is_symlink() {
        return Ok((link_meta, false));
    }
    match fs::metadata(path) {
        Ok(m) => Ok((m, true)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(SkipReason::BrokenSymlink),
        Err(e) => Err(unreadable(e)),
    }
}

/// The order in which [`scan`] lists files, as a comparison of two relative
/// paths: component by component, each compared by its bytes (each
/// directory's entries sorted by name, depth first). A merge of a scan with
/// a list in this order needs neither in memory.
///
/// ```
/// use std::cmp::Ordering;
/// use rf_batch::ingest::scan::scan_order;
/// assert_eq!(scan_order("a/z.jpg", "a.jpg"), Ordering::Less); // dir "a" < file "a.jpg"
/// assert_eq!(scan_order("b.jpg", "a/z.jpg"), Ordering::Greater);
/// ```
pub fn scan_order(a: &str, b: &str) -> std::cmp::Ordering {
    a.split('/').cmp(b.split('/'))
}

/// Modification time of `meta` in nanoseconds since the Unix epoch (0 if unknown).
pub(crate) fn mtime_ns(meta: &fs::Metadata) -> i64 {
    match meta.modified() {
        Ok(t) => match t.duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
            Err(e) => -i64::try_from(e.duration().as_nanos()).unwrap_or(i64::MAX),
        },
        Err(_) => 0,
    }
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}/{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(root: &Path, rel: &str, bytes: &[u8]) {
        let p = root.join(rel);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).unwrap();
        }
        fs::write(p, bytes).unwrap();
    }

    fn rels(r: &ScanReport) -> Vec<&str> {
        r.files.iter().map(|f| f.relative.as_str()).collect()
    }

    #[test]
    fn recursive_sorted_case_insensitive() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        touch(root, "b/z.PNG", b"1");
        touch(root, "b/a.jpeg", b"12");
        touch(root, "a.Jpg", b"123");
        touch(root, "c/d/e/clip.MOV", b"1234");
        touch(root, "readme.md", b"x");
        let r = scan(root, &ScanOptions::default()).unwrap();
        assert_eq!(rels(&r), ["a.Jpg", "b/a.jpeg", "b/z.PNG", "c/d/e/clip.MOV"]);
        assert_eq!(r.files[3].kind, MediaKind::Video);
        assert_eq!(r.files[0].size, 3);
        assert!(r.files[0].mtime_ns > 0);
        assert_eq!(r.image_count(), 3);
        assert_eq!(r.video_count(), 1);
        assert_eq!(
            r.skipped,
            vec![SkippedFile {
                relative: "readme.md".into(),
                reason: SkipReason::NotMedia
            }]
        );
    }

    #[test]
    fn the_scan_lists_files_in_scan_order() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for rel in [
            "a.jpg",
            "a/b.jpg",
            "a-b/c.jpg",
            "a/b/c.jpg",
            "ab.jpg",
            "a b.jpg",
            "B.jpg",
            "a/a.png",
            "z/y/x.jpg",
            "z.jpg",
            "é.jpg",
            "e.jpg",
        ] {
            touch(root, rel, b"1");
        }
        let r = scan(root, &ScanOptions::default()).unwrap();
        assert_eq!(r.files.len(), 12);
        for pair in r.files.windows(2) {
            assert_eq!(
                scan_order(&pair[0].relative, &pair[1].relative),
                std::cmp::Ordering::Less,
                "{} then {}",
                pair[0].relative,
                pair[1].relative
            );
        }
    }

    #[test]
    fn hidden_entries_skipped_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        touch(root, ".hidden.jpg", b"1");
        touch(root, ".git/objects/x.jpg", b"1");
        touch(root, "ok.jpg", b"1");
        let r = scan(root, &ScanOptions::default()).unwrap();
        assert_eq!(rels(&r), ["ok.jpg"]);
        assert_eq!(r.hidden, 2);
        let all = scan(
            root,
            &ScanOptions {
                include_hidden: true,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(rels(&all), [".git/objects/x.jpg", ".hidden.jpg", "ok.jpg"]);
    }

    #[test]
    fn kind_filters_and_size_limit() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        touch(root, "big.png", &[0u8; 10]);
        touch(root, "v.mp4", &[0u8; 100]);
        let r = scan(
            root,
            &ScanOptions {
                videos: false,
                max_image_bytes: 5,
                ..Default::default()
            },
        )
        .unwrap();
        assert!(r.files.is_empty());
        assert_eq!(r.skipped[0].reason, SkipReason::TooLarge(10));
        assert_eq!(r.skipped[1].reason, SkipReason::NotMedia);
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_files_followed_dirs_not() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        touch(outside.path(), "secret/x.jpg", b"1");
        touch(outside.path(), "linked.jpg", b"12345");
        let root = dir.path();
        touch(root, "sub/a.jpg", b"1");
        symlink(outside.path().join("secret"), root.join("dirlink")).unwrap();
        symlink(root.join("sub"), root.join("sub/loop")).unwrap();
        symlink(
            outside.path().join("linked.jpg"),
            root.join("file-link.jpg"),
        )
        .unwrap();
        symlink(root.join("missing.jpg"), root.join("broken.jpg")).unwrap();
        let r = scan(root, &ScanOptions::default()).unwrap();
        assert_eq!(rels(&r), ["file-link.jpg", "sub/a.jpg"]);
        assert_eq!(r.files[0].size, 5);
        let reasons: Vec<(&str, &SkipReason)> = r
            .skipped
            .iter()
            .map(|s| (s.relative.as_str(), &s.reason))
            .collect();
        assert_eq!(
            reasons,
            [
                ("broken.jpg", &SkipReason::BrokenSymlink),
                ("dirlink", &SkipReason::DirectorySymlink),
                ("sub/loop", &SkipReason::DirectorySymlink),
            ]
        );
    }

    #[cfg(unix)]
    #[test]
    fn unreadable_files_are_reported() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        touch(root, "locked.jpg", b"1");
        touch(root, "lockeddir/x.jpg", b"1");
        fs::set_permissions(root.join("locked.jpg"), fs::Permissions::from_mode(0o000)).unwrap();
        fs::set_permissions(root.join("lockeddir"), fs::Permissions::from_mode(0o000)).unwrap();
        let can_bypass = fs::File::open(root.join("locked.jpg")).is_ok(); // running as root
        let r = scan(root, &ScanOptions::default()).unwrap();
        fs::set_permissions(root.join("lockeddir"), fs::Permissions::from_mode(0o755)).unwrap();
        if can_bypass {
            assert_eq!(rels(&r), ["locked.jpg", "lockeddir/x.jpg"]);
        } else {
            assert!(r.files.is_empty());
            assert!(matches!(r.skipped[0].reason, SkipReason::Unreadable(_)));
            assert_eq!(r.skipped[1].relative, "lockeddir");
        }
    }

    #[test]
    fn missing_root_is_an_error() {
        let err = scan(Path::new("/definitely/not/here"), &ScanOptions::default()).unwrap_err();
        assert!(err.to_string().contains("/definitely/not/here"));
    }
}
