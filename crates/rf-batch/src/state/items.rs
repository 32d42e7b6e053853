//! The items file: the plan of a run's shards, on disk beside its manifest.
//!
//! A run over 200,000 images plans 400 shards of 500 images. Holding every
//! planned item in memory (and rewriting all of them with each manifest save)
//! made memory and save time grow with the input. So the items live in
//! `<manifest>.items`, one JSON line per item ([`PlannedItem`]) after a
//! header line naming the manifest they belong to (its creation time), and a
//! shard record in the manifest holds only the byte range of its lines
//! ([`ItemRange`]). A shard's items are read back when it is uploaded.
//!
//! The file is append-only while a manifest refers to it: a re-plan (inputs
//! changed before upload) appends the new shards' lines and saves a manifest
//! pointing at them, so a crash between the two leaves only unused lines at
//! the end. It is synced to disk before any manifest that points into it.
//!
//! [`Manifest::scan_and_plan`] scans an input directory straight into this
//! file and cuts the shards while reading it back, so a fresh run never
//! holds the list of its files.

use std::fs;
use std::io::{self, BufRead, Read, Seek, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{
    IngestState, Manifest, RunIdentity, ShardItems, ShardRecord, SingleRecord, StateError,
};
use crate::files::plan::{PlanOptions, PlannedItem, ShardCutter, ShardPlan, UploadMode};
use crate::files::scan::{
    MediaKind, ScanError, ScanOptions, ScanTally, SkipReason, SkippedFile, scan_each,
};
use crate::files::tar_stream::member_len;

/// Format version of the items file's header.
const ITEMS_VERSION: u32 = 1;

/// Where a shard's items are in the items file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemRange {
    /// Byte offset of the shard's first line.
    pub offset: u64,
    /// Length in bytes of its lines (each ending in `\n`).
    pub len: u64,
    /// Number of items (lines).
    pub count: usize,
}

/// The first line of an items file.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Header {
    rf_items: u32,
    manifest: DateTime<Utc>,
}

/// Where the items file of the manifest at `manifest_path` lives.
pub fn items_path_for(manifest_path: &Path) -> PathBuf {
    super::beside(manifest_path, ".items")
}

pub(super) fn io_error<'a>(
    action: &'static str,
    path: &'a Path,
) -> impl Fn(io::Error) -> StateError + 'a {
    move |source| StateError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// Writes items, one line each, tracking byte offsets and what the lines
/// pushed since it was opened add up to (what [`ShardCutter`] needs).
pub(crate) struct ItemsWriter {
    path: PathBuf,
    out: io::BufWriter<fs::File>,
    offset: u64,
    line: Vec<u8>,
    /// Items pushed.
    pub(crate) count: usize,
    /// Their tar members' length ([`member_len`] of each size, summed).
    pub(crate) tar_bytes: u64,
}

impl ItemsWriter {
    /// Creates (or truncates) `path` and writes the header for the manifest
    /// created at `manifest`.
    pub(crate) fn create(path: &Path, manifest: DateTime<Utc>) -> Result<Self, StateError> {
        let file = fs::File::create(path).map_err(io_error("create", path))?;
        let mut writer = ItemsWriter {
            path: path.to_path_buf(),
            out: io::BufWriter::with_capacity(64 * 1024, file),
            offset: 0,
            line: Vec::with_capacity(256),
            count: 0,
            tar_bytes: 0,
        };
        let header = Header {
            rf_items: ITEMS_VERSION,
            manifest,
        };
        writer.write_line(&header)?;
        Ok(writer)
    }

    /// Opens the items file of the manifest created at `manifest` for
    /// appending. One that is missing, or whose header names another
    /// manifest, is started over: no manifest that could point into it is
    /// this one. Ours is only ever appended to, so the ranges an older save
    /// of this manifest points at stay valid even if a crash comes before
    /// the next save.
    pub(crate) fn open_for(path: &Path, manifest: DateTime<Utc>) -> Result<Self, StateError> {
        if check_header(path, manifest).is_ok() {
            Self::append(path)
        } else {
            Self::create(path, manifest)
        }
    }

    /// Opens `path` for appending after the lines already there.
    fn append(path: &Path) -> Result<Self, StateError> {
        let file = fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(io_error("open", path))?;
        let offset = file.metadata().map_err(io_error("read", path))?.len();
        Ok(ItemsWriter {
            path: path.to_path_buf(),
            out: io::BufWriter::with_capacity(64 * 1024, file),
            offset,
            line: Vec::with_capacity(256),
            count: 0,
            tar_bytes: 0,
        })
    }

    fn write_line(&mut self, value: &impl Serialize) -> Result<u64, StateError> {
        self.line.clear();
        serde_json::to_writer(&mut self.line, value)
            .map_err(|e| io_error("write", &self.path)(io::Error::other(e)))?;
        self.line.push(b'\n');
        self.out
            .write_all(&self.line)
            .map_err(io_error("write", &self.path))?;
        let len = self.line.len() as u64;
        self.offset += len;
        Ok(len)
    }

    /// The byte offset the next line starts at.
    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    /// Appends one item.
    pub(crate) fn push(&mut self, item: &PlannedItem) -> Result<(), StateError> {
        self.write_line(item)?;
        self.count += 1;
        self.tar_bytes += member_len(item.size);
        Ok(())
    }

    /// The file written to.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Drops every line written from byte `offset` on (lines no manifest
    /// points at).
    pub(crate) fn truncate(self, offset: u64) -> Result<(), StateError> {
        let err = io_error("write", &self.path);
        let file = self.out.into_inner().map_err(|e| err(e.into_error()))?;
        file.set_len(offset).map_err(err)
    }

    /// Flushes and, with `sync`, syncs the file to disk.
    pub(crate) fn finish(self, sync: bool) -> Result<(), StateError> {
        let err = io_error("write", &self.path);
        let file = self.out.into_inner().map_err(|e| err(e.into_error()))?;
        if sync {
            file.sync_all().map_err(err)?;
        }
        Ok(())
    }
}

/// Checks that the items file at `path` belongs to the manifest created at
/// `manifest`.
pub(crate) fn check_header(path: &Path, manifest: DateTime<Utc>) -> Result<(), StateError> {
    let file = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(StateError::Corrupt {
                path: path.to_path_buf(),
                detail: "the run's items file is missing".into(),
            });
        }
        Err(e) => return Err(io_error("read", path)(e)),
    };
    let mut line = String::new();
    io::BufReader::new(file)
        .take(4096)
        .read_line(&mut line)
        .map_err(io_error("read", path))?;
    match serde_json::from_str::<Header>(&line) {
        Ok(h) if h.rf_items == ITEMS_VERSION && h.manifest == manifest => Ok(()),
        Ok(h) if h.rf_items != ITEMS_VERSION => Err(StateError::Corrupt {
            path: path.to_path_buf(),
            detail: format!(
                "items file format {} but this build reads {ITEMS_VERSION}",
                h.rf_items
            ),
        }),
        Ok(_) => Err(StateError::Corrupt {
            path: path.to_path_buf(),
            detail: "the items file belongs to another run than the manifest beside it".into(),
        }),
        Err(e) => Err(StateError::Corrupt {
            path: path.to_path_buf(),
            detail: format!("items file header: {e}"),
        }),
    }
}

/// Reads the items in `range` of the items file at `path`.
pub(crate) fn read_range(path: &Path, range: &ItemRange) -> Result<Vec<PlannedItem>, StateError> {
    let corrupt = |detail: String| StateError::Corrupt {
        path: path.to_path_buf(),
        detail,
    };
    let mut file = fs::File::open(path).map_err(io_error("read", path))?;
    file.seek(io::SeekFrom::Start(range.offset))
        .map_err(io_error("read", path))?;
    let len = usize::try_from(range.len).map_err(|_| corrupt("range too large".into()))?;
    let mut bytes = vec![0; len];
    file.read_exact(&mut bytes).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => corrupt(format!(
            "items file ends before byte {}",
            range.offset + range.len
        )),
        _ => io_error("read", path)(e),
    })?;
    let mut items = Vec::with_capacity(range.count);
    for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let item = serde_json::from_slice::<PlannedItem>(line)
            .map_err(|e| corrupt(format!("item at byte {}: {e}", range.offset)))?;
        items.push(item);
    }
    if items.len() != range.count {
        return Err(corrupt(format!(
            "{} items at byte {} where the manifest records {}",
            items.len(),
            range.offset,
            range.count
        )));
    }
    Ok(items)
}

impl ShardRecord {
    /// The shard with its items, read from the items file at `items_file`
    /// when they are stored there (see [`Manifest::items_file`]).
    pub fn load(&self, items_file: Option<&Path>) -> Result<ShardPlan, StateError> {
        let items = match &self.items {
            ShardItems::Inline(items) => items.clone(),
            ShardItems::Stored(range) => {
                let path = items_file.ok_or_else(|| StateError::Corrupt {
                    path: PathBuf::from(super::MANIFEST_FILE),
                    detail: format!(
                        "shard {} is stored in an items file, and the manifest was never saved or loaded",
                        self.index
                    ),
                })?;
                read_range(path, range)?
            }
        };
        Ok(ShardPlan {
            index: self.index,
            items,
            tar_bytes: self.tar_bytes,
        })
    }
}

/// Where [`Manifest::scan_and_plan`] scans and what it plans for.
#[derive(Debug, Clone)]
pub struct FreshRun<'a> {
    /// The input directory (absolute).
    pub input_dir: &'a Path,
    /// The staging batch.
    pub batch_id: String,
    /// The workflow (empty for an ingest without a job).
    pub workflow_id: String,
    /// Images or videos; `None` picks images if there are any, else videos.
    pub kind: Option<MediaKind>,
    /// Scan rules.
    pub scan: &'a ScanOptions,
    /// Planning rules.
    pub plan: &'a PlanOptions,
}

/// What [`Manifest::scan_and_plan`] found besides the plan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanSummary {
    /// Images found (of either kind of run).
    pub images: usize,
    /// Videos found.
    pub videos: usize,
    /// Hidden entries skipped.
    pub hidden: u64,
    /// Files not used, with the reason; files of the other kind than the
    /// run's come last, as [`SkipReason::OtherKind`].
    pub skipped: Vec<SkippedFile>,
    /// How many of `skipped` are of the other kind.
    pub other_kind: usize,
}

/// What [`Manifest::open_or_plan`] gives.
#[derive(Debug)]
pub struct Prepared {
    /// The manifest: loaded and reconciled, or freshly planned. Not saved
    /// yet.
    pub manifest: Manifest,
    /// What the scan found.
    pub scan: ScanSummary,
    /// For a resumed run, what changed in the input since the manifest was
    /// written; `None` for a fresh run.
    pub changes: Option<super::Reconciliation>,
}

impl Manifest {
    /// A fresh manifest, saved at `manifest_path` (not yet: the caller saves
    /// it), planned from a scan of `run.input_dir` without ever holding the
    /// list of files: each file found is written to the items file
    /// ([`items_path_for`]) as the scan goes, and the shards are cut while the
    /// file is read back. Memory stays flat however many files there are
    /// (single uploads, which are few unless forced, are held in the
    /// manifest).
    ///
    /// Blocking; call it from `spawn_blocking` in async code.
    pub fn scan_and_plan(
        manifest_path: &Path,
        run: FreshRun<'_>,
    ) -> Result<(Manifest, ScanSummary), crate::Error> {
        let created_at = Utc::now();
        let items_path = items_path_for(manifest_path);
        let dir = manifest_path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir).map_err(io_error("create the directory of", manifest_path))?;
        let (tally, [images, videos]) = scan_to_items_files(&run, &items_path, created_at)?;
        let cleanup = |f: &Option<ItemsWriter>| {
            if let Some(f) = f {
                let _ = fs::remove_file(f.path());
            }
        };
        let kind = MediaKind::for_run(run.kind, tally.images, tally.videos);
        let (kept, other) = match kind {
            MediaKind::Image => (images, videos),
            MediaKind::Video => (videos, images),
        };
        let mut summary = ScanSummary {
            images: tally.images,
            videos: tally.videos,
            hidden: tally.hidden,
            skipped: tally.skipped,
            other_kind: 0,
        };
        // Files of the other kind are reported, not planned.
        if let Some(other) = other
            && let Err(e) = report_other_kind(other, &mut summary)
        {
            cleanup(&kept);
            return Err(e.into());
        }
        let image_count = if kind == MediaKind::Image {
            kept.as_ref().map_or(0, |k| k.count)
        } else {
            0
        };
        let mode = run.plan.mode_for(image_count);
        let plan = run.plan;
        let mut manifest = Manifest::new(
            RunIdentity {
                input_dir: run.input_dir.to_path_buf(),
                batch_id: run.batch_id,
                workflow_id: run.workflow_id,
                kind,
            },
            mode,
        );
        manifest.created_at = created_at;
        manifest.updated_at = created_at;
        if let Some(kept) = kept {
            manifest.plan_stored(kept, &items_path, plan)?;
        }
        Ok((manifest, summary))
    }

    /// The plan of the files kept (written to the temporary items file
    /// `kept`): the items file moved into place at `items_path`, then single
    /// uploads (videos, or a single-mode run) or shards cut from it.
    fn plan_stored(
        &mut self,
        kept: ItemsWriter,
        items_path: &Path,
        plan: &PlanOptions,
    ) -> Result<(), StateError> {
        let (count, tar_bytes) = (kept.count, kept.tar_bytes);
        let kept_path = kept.path().to_path_buf();
        let result = kept.finish(true).and_then(|()| {
            fs::rename(&kept_path, items_path).map_err(io_error("write", items_path))
        });
        if let Err(e) = result {
            let _ = fs::remove_file(&kept_path);
            return Err(e);
        }
        self.items_file = Some(items_path.to_path_buf());
        if self.run.kind == MediaKind::Video || self.ingest.mode == UploadMode::Single {
            let singles = &mut self.ingest.singles;
            return for_each_item(items_path, |item, _, _| {
                singles.push(SingleRecord {
                    item,
                    uploaded: false,
                });
                Ok(())
            });
        }
        self.ingest.shards = cut_stored(items_path, None, count, tar_bytes, plan, 0)?;
        Ok(())
    }

    /// Opens the run whose manifest is at `manifest_path`, or plans a fresh
    /// one: with a manifest there, `check` decides whether it is the same run
    /// (an error refuses it), the input is scanned again and the plan
    /// reconciled with it ([`Manifest::reconcile`]); without one,
    /// [`Manifest::scan_and_plan`]. The kind of a resumed run is `run.kind`,
    /// or else the manifest's.
    ///
    /// Blocking; call it from `spawn_blocking` in async code.
    pub fn open_or_plan(
        manifest_path: &Path,
        mut run: FreshRun<'_>,
        check: impl FnOnce(&Manifest) -> Result<(), crate::Error>,
    ) -> Result<Prepared, crate::Error> {
        let Some(mut manifest) = Manifest::load(manifest_path)? else {
            let (manifest, scan) = Manifest::scan_and_plan(manifest_path, run)?;
            return Ok(Prepared {
                manifest,
                scan,
                changes: None,
            });
        };
        check(&manifest)?;
        let kind = *run.kind.get_or_insert(manifest.run.kind);
        if let Some((mut changes, scan)) =
            manifest.reconcile_streamed(run.input_dir, run.scan, kind, run.plan)?
        {
            changes.split_refused(&manifest.ingest.refused);
            return Ok(Prepared {
                manifest,
                scan,
                changes: Some(changes),
            });
        }
        // Shards held in memory, or a plan re-cut too often to merge: the
        // scan is held and indexed instead.
        let mut files = Vec::new();
        let mut other = Vec::new();
        let tally = scan_each(run.input_dir, run.scan, |file| {
            if file.kind == kind {
                files.push(file);
            } else {
                other.push(SkippedFile {
                    relative: file.relative,
                    reason: SkipReason::OtherKind(file.kind),
                });
            }
            std::ops::ControlFlow::Continue(())
        })?;
        let mut changes = manifest.reconcile(&files, run.plan)?;
        changes.split_refused(&manifest.ingest.refused);
        let other_kind = other.len();
        let mut skipped = tally.skipped;
        skipped.append(&mut other);
        Ok(Prepared {
            manifest,
            scan: ScanSummary {
                images: tally.images,
                videos: tally.videos,
                hidden: tally.hidden,
                skipped,
                other_kind,
            },
            changes: Some(changes),
        })
    }

    /// Moves the items of shards held in memory ([`ShardItems::Inline`]) to
    /// the items file of the manifest at `path`, so the manifest itself stays
    /// small. Called by [`Manifest::save`] before it writes the manifest.
    pub(super) fn store_inline_items(&mut self, path: &Path) -> Result<(), StateError> {
        let items_path = items_path_for(path);
        let stored = |s: &ShardRecord| matches!(s.items, ShardItems::Stored(_));
        if self.items_file.as_deref() != Some(items_path.as_path())
            && self.ingest.shards.iter().any(stored)
        {
            // Saved somewhere new: bring the stored items along.
            let from = self.items_file.clone();
            for shard in &mut self.ingest.shards {
                if let ShardItems::Stored(_) = shard.items {
                    shard.items = ShardItems::Inline(shard.load(from.as_deref())?.items);
                }
            }
        }
        if !self
            .ingest
            .shards
            .iter()
            .any(|s| matches!(s.items, ShardItems::Inline(_)))
        {
            self.items_file = Some(items_path);
            return Ok(());
        }
        let dir = path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir).map_err(io_error("write", path))?;
        let mut writer = ItemsWriter::open_for(&items_path, self.created_at)?;
        let mut ranges = Vec::new();
        for (position, shard) in self.ingest.shards.iter().enumerate() {
            if let ShardItems::Inline(items) = &shard.items {
                let offset = writer.offset();
                for item in items {
                    writer.push(item)?;
                }
                ranges.push((
                    position,
                    ItemRange {
                        offset,
                        len: writer.offset() - offset,
                        count: items.len(),
                    },
                ));
            }
        }
        writer.finish(true)?;
        // Only once the lines are on disk do the records point at them.
        for (position, range) in ranges {
            self.ingest.shards[position].items = ShardItems::Stored(range);
        }
        self.items_file = Some(items_path);
        Ok(())
    }
}

/// Scans `run.input_dir`, writing the files of each kind to a temporary items
/// file beside `items_path` as they are found: `[images, videos]`, each
/// `None` when none was found. On an error no temporary file is left.
fn scan_to_items_files(
    run: &FreshRun<'_>,
    items_path: &Path,
    created_at: DateTime<Utc>,
) -> Result<(ScanTally, [Option<ItemsWriter>; 2]), crate::Error> {
    let temp = |kind: &str| super::beside(items_path, &format!(".{kind}.tmp"));
    // The scan's files of each kind, written as they arrive.
    let mut files: [Option<ItemsWriter>; 2] = [None, None];
    let mut failed: Option<StateError> = None;
    let slot = |kind: MediaKind| usize::from(kind == MediaKind::Video);
    let tally: ScanTally = scan_each(run.input_dir, run.scan, |file| {
        let kind = file.kind;
        let entry = &mut files[slot(kind)];
        let out = match entry {
            Some(out) => out,
            None => {
                let path = temp(if kind == MediaKind::Image {
                    "images"
                } else {
                    "videos"
                });
                match ItemsWriter::create(&path, created_at) {
                    Ok(writer) => entry.insert(writer),
                    Err(e) => {
                        failed = Some(e);
                        return std::ops::ControlFlow::Break(());
                    }
                }
            }
        };
        match out.push(&PlannedItem::from_owned(file)) {
            Ok(()) => std::ops::ControlFlow::Continue(()),
            Err(e) => {
                failed = Some(e);
                std::ops::ControlFlow::Break(())
            }
        }
    })
    .map_err(|e: ScanError| {
        for f in files.iter().flatten() {
            let _ = fs::remove_file(f.path());
        }
        crate::Error::from(e)
    })?;
    let [images, videos] = files;
    let cleanup = |f: &Option<ItemsWriter>| {
        if let Some(f) = f {
            let _ = fs::remove_file(f.path());
        }
    };
    if let Some(e) = failed {
        cleanup(&images);
        cleanup(&videos);
        return Err(e.into());
    }
    Ok((tally, [images, videos]))
}

/// Reads back the temporary items file of the kind not planned, reporting
/// each of its files as skipped ([`SkipReason::OtherKind`]); the file is
/// removed.
fn report_other_kind(other: ItemsWriter, summary: &mut ScanSummary) -> Result<(), StateError> {
    let path = other.path().to_path_buf();
    let read = other.finish(false).and_then(|()| {
        for_each_item(&path, |item, _, _| {
            summary.skipped.push(SkippedFile {
                relative: item.relative,
                reason: SkipReason::OtherKind(item.kind),
            });
            summary.other_kind += 1;
            Ok(())
        })
    });
    let _ = fs::remove_file(&path);
    read
}

/// A reader of the items file's lines from a given byte offset.
pub(crate) struct Lines {
    path: PathBuf,
    reader: io::BufReader<fs::File>,
    offset: u64,
    line: String,
}

impl Lines {
    /// Opens the items file at `path` at byte `offset`, with a read buffer
    /// of `buffer` bytes.
    pub(crate) fn open_at(path: &Path, offset: u64, buffer: usize) -> Result<Self, StateError> {
        let mut file = fs::File::open(path).map_err(io_error("read", path))?;
        if offset > 0 {
            file.seek(io::SeekFrom::Start(offset))
                .map_err(io_error("read", path))?;
        }
        Ok(Lines {
            path: path.to_path_buf(),
            reader: io::BufReader::with_capacity(buffer, file),
            offset,
            line: String::new(),
        })
    }

    /// The byte offset of the next line.
    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    /// Moves to byte `offset` (a no-op when already there).
    pub(crate) fn seek(&mut self, offset: u64) -> Result<(), StateError> {
        if offset != self.offset {
            self.reader
                .seek(io::SeekFrom::Start(offset))
                .map_err(io_error("read", &self.path))?;
            self.offset = offset;
        }
        Ok(())
    }

    /// Reads the next line raw; its length, or 0 at the end of the file.
    fn next_line(&mut self) -> Result<u64, StateError> {
        self.line.clear();
        let len = self
            .reader
            .read_line(&mut self.line)
            .map_err(io_error("read", &self.path))? as u64;
        self.offset += len;
        Ok(len)
    }

    /// Skips the header line.
    pub(crate) fn skip_header(&mut self) -> Result<(), StateError> {
        self.next_line().map(drop)
    }

    /// The next item with its byte offset and line length, or `None` at the
    /// end of the file.
    pub(crate) fn next_item(&mut self) -> Result<Option<(PlannedItem, u64, u64)>, StateError> {
        let offset = self.offset;
        let len = self.next_line()?;
        if len == 0 {
            return Ok(None);
        }
        let item = serde_json::from_str::<PlannedItem>(self.line.trim_end()).map_err(|e| {
            StateError::Corrupt {
                path: self.path.clone(),
                detail: format!("item at byte {offset}: {e}"),
            }
        })?;
        Ok(Some((item, offset, len)))
    }
}

/// Calls `f` with each item of the items file at `path`, its byte offset and
/// its line length, in order.
fn for_each_item(
    path: &Path,
    mut f: impl FnMut(PlannedItem, u64, u64) -> Result<(), StateError>,
) -> Result<(), StateError> {
    let mut lines = Lines::open_at(path, 0, 64 * 1024)?;
    lines.skip_header()?;
    while let Some((item, offset, len)) = lines.next_item()? {
        f(item, offset, len)?;
    }
    Ok(())
}

/// Cuts the `count` images of the items file at `path` from byte `start` to
/// its end (whose tar members take `tar_bytes`) into stored shards numbered
/// from `first_index`, reading them once.
pub(crate) fn cut_stored(
    path: &Path,
    start: Option<u64>,
    count: usize,
    tar_bytes: u64,
    options: &PlanOptions,
    first_index: usize,
) -> Result<Vec<ShardRecord>, StateError> {
    let mut cutter = ShardCutter::new(count, tar_bytes, options);
    let mut shards = Vec::with_capacity(cutter.shard_count());
    let mut current = ItemRange {
        offset: 0,
        len: 0,
        count: 0,
    };
    let close = |range: ItemRange, tar_bytes: u64, shards: &mut Vec<ShardRecord>| {
        shards.push(ShardRecord {
            index: first_index + shards.len(),
            items: ShardItems::Stored(range),
            tar_bytes,
            uploaded: false,
            attempted: false,
        });
    };
    let mut lines = Lines::open_at(path, start.unwrap_or(0), 64 * 1024)?;
    if start.is_none() {
        lines.skip_header()?;
    }
    while let Some((item, offset, len)) = lines.next_item()? {
        if let Some(bytes) = cutter.push(item.size) {
            close(current, bytes, &mut shards);
            current.count = 0;
        }
        if current.count == 0 {
            current = ItemRange {
                offset,
                len: 0,
                count: 0,
            };
        }
        current.len += len;
        current.count += 1;
    }
    if let Some(bytes) = cutter.finish() {
        close(current, bytes, &mut shards);
    }
    Ok(shards)
}

impl IngestState {
    /// Number of items in the shards (without reading the items file).
    pub fn shard_items(&self) -> usize {
        self.shards.iter().map(|s| s.items.count()).sum()
    }
}

/// Test helper: a fresh plan of `input` (batch `b`, workflow `wf`) at
/// `manifest_path`, with default scan rules.
#[cfg(test)]
pub(crate) fn plan_for_test(
    manifest_path: &Path,
    input: &Path,
    kind: Option<MediaKind>,
    plan: &PlanOptions,
) -> (Manifest, ScanSummary) {
    Manifest::scan_and_plan(
        manifest_path,
        FreshRun {
            input_dir: input,
            batch_id: "b".into(),
            workflow_id: "wf".into(),
            kind,
            scan: &ScanOptions::default(),
            plan,
        },
    )
    .unwrap()
}
