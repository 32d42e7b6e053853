//! Reconciling a resumed run's plan with a fresh scan in flat memory.
//!
//! [`Manifest::reconcile`] takes the whole fresh scan as a list and indexes
//! it: about 100 bytes a file, held while the plan is checked. A resume of a
//! run over millions of files does not need to hold either side: the scan
//! lists files in [`scan_order`], and the items file of a plan made by
//! [`Manifest::scan_and_plan`] is in the same order. So the two are merged
//! as they are read, the way `comm` merges two sorted files: a planned item
//! the scan passes by has vanished, a scanned file no planned item matches
//! was added, and a match is compared by size and modification time.
//!
//! A plan that was re-cut (inputs changed before they were uploaded) is no
//! longer one sorted sequence: each re-cut appends one more sorted run of
//! lines. The runs are found by reading the live shards once, and merged
//! with one small reader each. The pending items and new files that a re-cut
//! needs are appended, in order, to the items file rather than held, and
//! become the new shards (or are cut off again when nothing changed). With more than
//! [`MAX_RUNS`] runs, or shards still held in memory, the caller falls back
//! to [`Manifest::reconcile`].
//!
//! Memory: one line per run, the shard records, the single uploads, and the
//! names the [`Reconciliation`] reports.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use super::items::{ItemsWriter, Lines, ScanSummary, cut_stored};
use super::{Manifest, Reconciliation, ShardItems, ShardRecord, SingleRecord, StateError};
use crate::files::plan::{PlanOptions, PlannedItem, UploadMode};
use crate::files::scan::{
    MediaKind, ScanOptions, ScannedFile, SkipReason, SkippedFile, scan_each, scan_order,
};

/// Most sorted runs merged at once; a plan re-cut more often than this is
/// reconciled in memory instead.
pub(crate) const MAX_RUNS: usize = 64;

/// Read buffer of each run's reader.
const RUN_BUFFER: usize = 16 * 1024;

/// The lines of one shard record in the items file.
#[derive(Debug, Clone, Copy)]
struct Live {
    offset: u64,
    end: u64,
    /// Position of the shard in `manifest.ingest.shards`.
    shard: usize,
}

/// A reader of one sorted run: its live ranges in file order.
struct Run {
    path: PathBuf,
    lines: Lines,
    ranges: Vec<Live>,
    next: usize,
}

impl Run {
    /// The next planned item of the run, with its shard's position.
    fn next(&mut self) -> Result<Option<(PlannedItem, usize)>, StateError> {
        while let Some(range) = self.ranges.get(self.next) {
            if self.lines.offset() < range.offset {
                self.lines.seek(range.offset)?;
            }
            if self.lines.offset() >= range.end {
                self.next += 1;
                continue;
            }
            return match self.lines.next_item()? {
                Some((item, _, _)) => Ok(Some((item, range.shard))),
                None => Err(StateError::Corrupt {
                    path: self.path.clone(),
                    detail: format!("items file ends before byte {}", range.end),
                }),
            };
        }
        Ok(None)
    }
}

/// The smallest unread item of each run, ordered by [`scan_order`].
struct Head {
    item: PlannedItem,
    shard: usize,
    run: usize,
}

impl PartialEq for Head {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Head {}
impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Head {
    fn cmp(&self, other: &Self) -> Ordering {
        scan_order(&self.item.relative, &other.item.relative).then(self.run.cmp(&other.run))
    }
}

/// Splits the live shards, in file order, into sorted runs; `None` when
/// there are more than [`MAX_RUNS`].
fn find_runs(items_file: &Path, live: &[Live]) -> Result<Option<Vec<(usize, u64)>>, StateError> {
    // Each run starts at (index into `live`, byte offset).
    let mut starts = Vec::new();
    if live.is_empty() {
        return Ok(Some(starts));
    }
    let mut lines = Lines::open_at(items_file, 0, 64 * 1024)?;
    let mut previous: Option<String> = None;
    for (i, range) in live.iter().enumerate() {
        lines.seek(range.offset)?;
        while lines.offset() < range.end {
            let offset = lines.offset();
            let Some((item, _, _)) = lines.next_item()? else {
                return Err(StateError::Corrupt {
                    path: items_file.to_path_buf(),
                    detail: format!("items file ends before byte {}", range.end),
                });
            };
            let sorted = previous
                .as_deref()
                .is_some_and(|p| scan_order(p, &item.relative) == Ordering::Less);
            if !sorted {
                starts.push((i, offset));
                if starts.len() > MAX_RUNS {
                    return Ok(None);
                }
            }
            previous = Some(item.relative);
        }
    }
    Ok(Some(starts))
}

impl Manifest {
    /// Reconciles the plan with a fresh scan of `input_dir` (see the module
    /// docs) and reports what the scan found. `None` (nothing scanned,
    /// nothing changed) when this plan must be reconciled in memory
    /// instead: shards held in memory, or more than [`MAX_RUNS`] runs.
    ///
    /// The outcome is that of [`Manifest::reconcile`] over the same scan,
    /// except that re-cut shards list their items in scan order, and the
    /// reported names come in scan order.
    pub(crate) fn reconcile_streamed(
        &mut self,
        input_dir: &Path,
        scan: &ScanOptions,
        kind: MediaKind,
        options: &PlanOptions,
    ) -> Result<Option<(Reconciliation, ScanSummary)>, crate::Error> {
        let Some(items_file) = self.items_file.clone() else {
            return Ok(None);
        };
        let Some(live) = self.live_shards() else {
            return Ok(None);
        };
        let Some(starts) = find_runs(&items_file, &live)? else {
            return Ok(None);
        };
        let runs = open_runs(&items_file, &live, &starts)?;
        // The pending items and new files, in order, go straight to the end
        // of the items file: if nothing changed they are cut off again, else
        // they become the new shards. No saved manifest points past `start`.
        let pool = ItemsWriter::open_for(&items_file, self.created_at)?;
        let start = pool.offset();
        let mode = self.ingest.mode;
        let mut merge = Merge::new(
            runs,
            pool,
            &self.ingest.shards,
            &mut self.ingest.singles,
            mode,
        )?;
        let mut other: Vec<SkippedFile> = Vec::new();
        let mut failed: Option<StateError> = None;
        let tally = scan_each(input_dir, scan, |file| {
            if file.kind != kind {
                other.push(SkippedFile {
                    relative: file.relative,
                    reason: SkipReason::OtherKind(file.kind),
                });
                return ControlFlow::Continue(());
            }
            match merge.step(file) {
                Ok(()) => ControlFlow::Continue(()),
                Err(e) => {
                    failed = Some(e);
                    ControlFlow::Break(())
                }
            }
        })?;
        if let Some(e) = failed {
            return Err(e.into());
        }
        let (rec, pool) = merge.finish()?;
        let pending_unchanged = rec.changed_pending.is_empty()
            && rec.vanished_pending.is_empty()
            && rec.added.is_empty();
        if pending_unchanged {
            pool.truncate(start)?;
        } else {
            self.recut_from_pool(&items_file, pool, start, options)?;
        }
        let other_kind = other.len();
        let mut skipped = tally.skipped;
        skipped.append(&mut other);
        let summary = ScanSummary {
            images: tally.images,
            videos: tally.videos,
            hidden: tally.hidden,
            skipped,
            other_kind,
        };
        Ok(Some((rec, summary)))
    }

    /// The stored shards' line ranges in file order; `None` when a shard
    /// holds its items in memory.
    fn live_shards(&self) -> Option<Vec<Live>> {
        let mut live = Vec::with_capacity(self.ingest.shards.len());
        for (position, shard) in self.ingest.shards.iter().enumerate() {
            match &shard.items {
                ShardItems::Stored(range) => live.push(Live {
                    offset: range.offset,
                    end: range.offset + range.len,
                    shard: position,
                }),
                ShardItems::Inline(_) => return None,
            }
        }
        live.sort_by_key(|l| l.offset);
        Some(live)
    }

    /// Replaces the pending shards by shards cut from the lines `pool`
    /// appended to the items file from byte `start` (synced before the
    /// records point at them).
    fn recut_from_pool(
        &mut self,
        items_file: &Path,
        pool: ItemsWriter,
        start: u64,
        options: &PlanOptions,
    ) -> Result<(), StateError> {
        let (count, tar_bytes) = (pool.count, pool.tar_bytes);
        pool.finish(true)?;
        let next_index = self
            .ingest
            .shards
            .iter()
            .map(|s| s.index + 1)
            .max()
            .unwrap_or(0);
        let mut recut: Vec<ShardRecord> = Vec::new();
        if count > 0 {
            recut = cut_stored(
                items_file,
                Some(start),
                count,
                tar_bytes,
                options,
                next_index,
            )?;
        }
        self.ingest.shards.retain(|s| s.uploaded || s.attempted);
        self.ingest.shards.append(&mut recut);
        self.ingest.shards.sort_by_key(|s| s.index);
        Ok(())
    }
}

/// A reader per sorted run, each positioned at the run's start.
fn open_runs(
    items_file: &Path,
    live: &[Live],
    starts: &[(usize, u64)],
) -> Result<Vec<Run>, StateError> {
    let mut runs = Vec::with_capacity(starts.len());
    for (k, &(first, offset)) in starts.iter().enumerate() {
        let (last, end) = match starts.get(k + 1) {
            Some(&(next, next_offset)) if next_offset > live[next].offset => (next, next_offset),
            Some(&(next, _)) => (next - 1, live[next - 1].end),
            None => (live.len() - 1, live[live.len() - 1].end),
        };
        let mut ranges = live[first..=last].to_vec();
        ranges[0].offset = offset;
        if let Some(tail) = ranges.last_mut() {
            tail.end = end;
        }
        runs.push(Run {
            path: items_file.to_path_buf(),
            lines: Lines::open_at(items_file, offset, RUN_BUFFER)?,
            ranges,
            next: 0,
        });
    }
    Ok(runs)
}

/// The merge of the planned items (the runs, through their heads) with the
/// scanned files, one file at a time in scan order.
struct Merge<'a> {
    runs: Vec<Run>,
    heads: BinaryHeap<Reverse<Head>>,
    /// Where pending and new shard items go (see `reconcile_streamed`).
    pool: ItemsWriter,
    shards: &'a [ShardRecord],
    singles: &'a mut Vec<SingleRecord>,
    /// The position of each single by its relative path.
    single_at: HashMap<String, usize>,
    single_seen: Vec<bool>,
    new_singles: Vec<SingleRecord>,
    mode: UploadMode,
    rec: Reconciliation,
}

impl<'a> Merge<'a> {
    fn new(
        mut runs: Vec<Run>,
        pool: ItemsWriter,
        shards: &'a [ShardRecord],
        singles: &'a mut Vec<SingleRecord>,
        mode: UploadMode,
    ) -> Result<Merge<'a>, StateError> {
        let mut heads = BinaryHeap::new();
        for (run, reader) in runs.iter_mut().enumerate() {
            if let Some((item, shard)) = reader.next()? {
                heads.push(Reverse(Head { item, shard, run }));
            }
        }
        let single_at: HashMap<String, usize> = singles
            .iter()
            .enumerate()
            .map(|(i, s)| (s.item.relative.clone(), i))
            .collect();
        Ok(Merge {
            single_seen: vec![false; single_at.len()],
            single_at,
            runs,
            heads,
            pool,
            shards,
            singles,
            new_singles: Vec::new(),
            mode,
            rec: Reconciliation::default(),
        })
    }

    /// Whether the shard at `position` was sent (or may have been).
    fn sent(&self, position: usize) -> bool {
        let shard = &self.shards[position];
        shard.uploaded || shard.attempted
    }

    /// Takes in one scanned file: matched against the planned items up to
    /// it (those before it have vanished), else against the singles, else
    /// it is new.
    fn step(&mut self, file: ScannedFile) -> Result<(), StateError> {
        if self.match_planned(&file)? {
            return Ok(());
        }
        if let Some(&i) = self.single_at.get(&file.relative) {
            self.single_seen[i] = true;
            self.compare_single(i, file);
            return Ok(());
        }
        self.rec.added.push(file.relative.clone());
        let item = PlannedItem::from_owned(file);
        match (self.mode, item.kind) {
            (UploadMode::Bulk, MediaKind::Image) => self.pool.push(&item)?,
            _ => self.new_singles.push(SingleRecord {
                item,
                uploaded: false,
            }),
        }
        Ok(())
    }

    /// Pops the planned items up to `file`; returns whether one is `file`.
    fn match_planned(&mut self, file: &ScannedFile) -> Result<bool, StateError> {
        let mut matched = false;
        while let Some(Reverse(top)) = self.heads.peek() {
            let order = scan_order(&top.item.relative, &file.relative);
            if order == Ordering::Greater {
                break;
            }
            let Some(Reverse(head)) = self.heads.pop() else {
                break;
            };
            if order == Ordering::Equal && !matched {
                matched = true;
                self.compare_planned(&head, file)?;
            } else {
                self.vanished(&head);
            }
            self.advance(head.run)?;
        }
        Ok(matched)
    }

    /// A planned shard item found again: changed after its upload (told,
    /// kept), or pending (kept as it is, or re-planned with its new size).
    fn compare_planned(&mut self, head: &Head, file: &ScannedFile) -> Result<(), StateError> {
        let same = head.item.size == file.size && head.item.mtime_ns == file.mtime_ns;
        if self.sent(head.shard) {
            if !same {
                self.rec
                    .changed_after_upload
                    .push(head.item.relative.clone());
            }
        } else if same {
            self.pool.push(&head.item)?;
        } else {
            self.rec.changed_pending.push(head.item.relative.clone());
            self.pool.push(&PlannedItem::from_scanned(file))?;
        }
        Ok(())
    }

    /// A single found again: changed after upload (told), or pending and
    /// changed (re-planned).
    fn compare_single(&mut self, i: usize, file: ScannedFile) {
        let single = &mut self.singles[i];
        if single.item.size == file.size && single.item.mtime_ns == file.mtime_ns {
            return;
        }
        if single.uploaded {
            self.rec.changed_after_upload.push(file.relative);
        } else {
            self.rec.changed_pending.push(file.relative.clone());
            single.item = PlannedItem::from_owned(file);
        }
    }

    /// A planned shard item the scan did not find.
    fn vanished(&mut self, head: &Head) {
        let name = head.item.relative.clone();
        if self.sent(head.shard) {
            self.rec.vanished_after_upload.push(name);
        } else {
            self.rec.vanished_pending.push(name);
        }
    }

    /// The next item of `run` becomes its head.
    fn advance(&mut self, run: usize) -> Result<(), StateError> {
        if let Some((item, shard)) = self.runs[run].next()? {
            self.heads.push(Reverse(Head { item, shard, run }));
        }
        Ok(())
    }

    /// After the scan: what it never reached has vanished; the singles
    /// keep the uploaded ones, drop pending ones that vanished, then take
    /// the new ones in scan order. Returns what changed and the pool.
    fn finish(mut self) -> Result<(Reconciliation, ItemsWriter), StateError> {
        while let Some(Reverse(head)) = self.heads.pop() {
            self.vanished(&head);
            self.advance(head.run)?;
        }
        let (seen, rec) = (&self.single_seen, &mut self.rec);
        let mut position = 0;
        self.singles.retain(|single| {
            let was_seen = seen[position];
            position += 1;
            if !was_seen {
                let name = single.item.relative.clone();
                if single.uploaded {
                    rec.vanished_after_upload.push(name);
                } else {
                    rec.vanished_pending.push(name);
                }
            }
            was_seen || single.uploaded
        });
        self.singles.append(&mut self.new_singles);
        Ok((self.rec, self.pool))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::fs;

    use proptest::prelude::*;
    use rf_util::SplitMix64;

    use super::*;
    use crate::files::plan::ModeChoice;
    use crate::files::tar_stream::{TAR_END_LEN, member_len};
    use crate::state::MANIFEST_FILE;

    /// The test's whole input comes from one seed.
    fn rng(seed: u64) -> impl FnMut() -> u64 {
        let mut generator = SplitMix64::new(seed);
        move || generator.next_u64()
    }

    fn write(root: &Path, rel: &str, size: u64) {
        let path = root.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, vec![7u8; size as usize]).unwrap();
    }

    fn random_name(next: &mut impl FnMut() -> u64, serial: &mut u32) -> String {
        const DIRS: [&str; 6] = ["", "a/", "a/b/", "a-b/", "b/", "c d/"];
        const EXT: [&str; 4] = ["jpg", "png", "jpg", "mp4"];
        *serial += 1;
        let dir = DIRS[(next() % DIRS.len() as u64) as usize];
        let ext = EXT[(next() % EXT.len() as u64) as usize];
        format!("{dir}f{}-{serial}.{ext}", next() % 50)
    }

    fn sorted(mut v: Vec<String>) -> Vec<String> {
        v.sort();
        v
    }

    /// Every pending shard item as (relative, size, mtime), sorted.
    fn pending_items(m: &Manifest) -> Vec<(String, u64, i64)> {
        let mut items = Vec::new();
        for (i, s) in m.ingest.shards.iter().enumerate() {
            if !(s.uploaded || s.attempted) {
                let plan = m.shard_plan(i).unwrap();
                let members: u64 = plan.items.iter().map(|i| member_len(i.size)).sum();
                assert_eq!(plan.tar_bytes, TAR_END_LEN + members, "shard {}", s.index);
                items.extend(
                    plan.items
                        .into_iter()
                        .map(|i| (i.relative, i.size, i.mtime_ns)),
                );
            }
        }
        items.sort();
        items
    }

    /// Plans a random tree, then over three rounds marks random units sent,
    /// deletes, changes and adds files, and reconciles both ways from the
    /// same manifest: the streamed merge must reach what the in-memory
    /// reconcile reaches.
    fn streamed_matches_in_memory(seed: u64) {
        let mut next = rng(seed);
        let input = tempfile::tempdir().unwrap();
        let state = tempfile::tempdir().unwrap();
        let path = state.path().join(MANIFEST_FILE);
        let mut serial = 0;
        let mut present: BTreeMap<String, u64> = BTreeMap::new();
        for _ in 0..1 + next() % 60 {
            let name = random_name(&mut next, &mut serial);
            let size = 1 + next() % 3000;
            write(input.path(), &name, size);
            present.insert(name, size);
        }
        let options = PlanOptions {
            mode: [
                ModeChoice::Auto,
                ModeChoice::Bulk,
                ModeChoice::Bulk,
                ModeChoice::Single,
            ][(next() % 4) as usize],
            single_max: 4,
            max_images_per_shard: 1 + (next() % 9) as usize,
            max_shard_bytes: 4096 + next() % 8192,
        };
        let scan_options = ScanOptions::default();
        let (mut manifest, _) = crate::state::items::plan_for_test(
            &path,
            input.path(),
            Some(MediaKind::Image),
            &options,
        );
        manifest.save(&path).unwrap();
        for round in 0..3 {
            change_at_random(
                &mut manifest,
                &mut present,
                input.path(),
                &mut next,
                &mut serial,
            );
            manifest.save(&path).unwrap();
            let mut memory = manifest.clone();
            let mut streamed = manifest.clone();
            let (got, summary) = streamed
                .reconcile_streamed(input.path(), &scan_options, MediaKind::Image, &options)
                .unwrap()
                .expect("a stored plan is merged");
            let report = crate::files::scan::scan(input.path(), &scan_options).unwrap();
            let files: Vec<ScannedFile> = report
                .files
                .into_iter()
                .filter(|f| f.kind == MediaKind::Image)
                .collect();
            let want = memory.reconcile(&files, &options).unwrap();
            let context = format!("seed {seed} round {round}");
            let merged = Merged {
                rec: got,
                summary,
                manifest: &streamed,
            };
            assert_reaches(merged, want, &memory, &present, &options, &context);
            // Carry on from the streamed result, as a resumed run would.
            streamed.save(&path).unwrap();
            manifest = Manifest::load(&path).unwrap().unwrap();
            assert_eq!(pending_items(&manifest), pending_items(&streamed));
        }
        // Nothing temporary is left beside the manifest.
        let mut names: Vec<_> = fs::read_dir(state.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names.retain(|n| n != "rf-run.json.items");
        assert_eq!(names, [MANIFEST_FILE]);
    }

    /// One round of random change: units marked sent, files deleted,
    /// changed and added.
    fn change_at_random(
        manifest: &mut Manifest,
        present: &mut BTreeMap<String, u64>,
        input: &Path,
        next: &mut impl FnMut() -> u64,
        serial: &mut u32,
    ) {
        for s in &mut manifest.ingest.shards {
            match next() % 5 {
                0 => s.uploaded = true,
                1 => s.attempted = true,
                _ => {}
            }
        }
        for s in &mut manifest.ingest.singles {
            s.uploaded |= next().is_multiple_of(3);
        }
        let names: Vec<String> = present.keys().cloned().collect();
        for name in names {
            match next() % 10 {
                0 => {
                    fs::remove_file(input.join(&name)).unwrap();
                    present.remove(&name);
                }
                1 => {
                    let size = present[&name] + 1 + next() % 100;
                    write(input, &name, size);
                    present.insert(name, size);
                }
                _ => {}
            }
        }
        for _ in 0..next() % 8 {
            let name = random_name(next, serial);
            let size = 1 + next() % 3000;
            write(input, &name, size);
            present.insert(name, size);
        }
    }

    /// The streamed merge's outcome.
    struct Merged<'a> {
        rec: Reconciliation,
        summary: ScanSummary,
        manifest: &'a Manifest,
    }

    /// The streamed merge reached what the in-memory reconcile reached.
    fn assert_reaches(
        merged: Merged<'_>,
        want: Reconciliation,
        memory: &Manifest,
        present: &BTreeMap<String, u64>,
        options: &PlanOptions,
        context: &str,
    ) {
        let (got, summary, streamed) = (merged.rec, merged.summary, merged.manifest);
        assert_eq!(
            sorted(got.changed_after_upload),
            sorted(want.changed_after_upload),
            "{context}"
        );
        assert_eq!(
            sorted(got.changed_pending),
            sorted(want.changed_pending),
            "{context}"
        );
        assert_eq!(
            sorted(got.vanished_pending),
            sorted(want.vanished_pending),
            "{context}"
        );
        assert_eq!(
            sorted(got.vanished_after_upload),
            sorted(want.vanished_after_upload),
            "{context}"
        );
        assert_eq!(got.added, want.added, "{context}");
        assert_eq!(
            summary.other_kind,
            present.keys().filter(|n| n.ends_with(".mp4")).count(),
            "{context}"
        );
        assert_eq!(streamed.ingest.singles, memory.ingest.singles, "{context}");
        assert_eq!(
            streamed.expected_count(),
            memory.expected_count(),
            "{context}"
        );
        assert_eq!(
            streamed.uploaded_count(),
            memory.uploaded_count(),
            "{context}"
        );
        let sent = |m: &Manifest| -> Vec<ShardRecord> {
            m.ingest
                .shards
                .iter()
                .filter(|s| s.uploaded || s.attempted)
                .cloned()
                .collect()
        };
        assert_eq!(sent(streamed), sent(memory), "{context}");
        assert_eq!(pending_items(streamed), pending_items(memory), "{context}");
        for s in &streamed.ingest.shards {
            assert!(s.items.count() <= options.max_images_per_shard, "{context}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(
            std::env::var("RF_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(40)
        ))]
        #[test]
        fn the_streamed_merge_reconciles_like_the_in_memory_one(seed in any::<u64>()) {
            streamed_matches_in_memory(seed);
        }
    }

    fn live_of(m: &Manifest) -> Vec<Live> {
        let mut live: Vec<Live> = m
            .ingest
            .shards
            .iter()
            .enumerate()
            .map(|(shard, s)| match &s.items {
                ShardItems::Stored(r) => Live {
                    offset: r.offset,
                    end: r.offset + r.len,
                    shard,
                },
                ShardItems::Inline(_) => panic!("inline shard"),
            })
            .collect();
        live.sort_by_key(|l| l.offset);
        live
    }

    #[test]
    fn each_recut_adds_a_run_and_the_runs_are_merged() {
        let input = tempfile::tempdir().unwrap();
        let state = tempfile::tempdir().unwrap();
        let path = state.path().join(MANIFEST_FILE);
        for i in 10..40 {
            write(input.path(), &format!("f{i}.jpg"), 10);
        }
        let options = PlanOptions {
            mode: ModeChoice::Bulk,
            max_images_per_shard: 10,
            ..PlanOptions::default()
        };
        let scan_options = ScanOptions::default();
        let (mut m, _) = crate::state::items::plan_for_test(&path, input.path(), None, &options);
        m.save(&path).unwrap();
        let items_file = m.items_file().unwrap().to_path_buf();
        let runs = |m: &Manifest| find_runs(&items_file, &live_of(m)).unwrap().unwrap().len();
        assert_eq!(runs(&m), 1);
        // The first pending shard was sent and a file that sorts first is
        // added: the re-cut pending shards form one more run each time.
        for (round, name) in ["a0.jpg", "a1.jpg"].into_iter().enumerate() {
            m.ingest.shards[round].uploaded = true;
            write(input.path(), name, 10);
            let (rec, _) = m
                .reconcile_streamed(input.path(), &scan_options, MediaKind::Image, &options)
                .unwrap()
                .unwrap();
            assert_eq!(rec.added, [name]);
            m.save(&path).unwrap();
            assert_eq!(runs(&m), round + 2);
        }
        // With three runs and nothing changed, the merge finds every file.
        let (rec, _) = m
            .reconcile_streamed(input.path(), &scan_options, MediaKind::Image, &options)
            .unwrap()
            .unwrap();
        assert!(rec.is_empty(), "{rec:?}");
        assert_eq!(m.expected_count(), 32);
        let second = m.shard_plan(1).unwrap();
        assert_eq!(second.items[0].relative, "a0.jpg");
        let third = m.shard_plan(2).unwrap();
        assert_eq!(third.items[0].relative, "a1.jpg");
    }

    #[test]
    fn shards_held_in_memory_fall_back_to_the_in_memory_reconcile() {
        let input = tempfile::tempdir().unwrap();
        write(input.path(), "a.jpg", 3);
        let files = crate::files::scan::scan(input.path(), &ScanOptions::default())
            .unwrap()
            .files;
        let options = PlanOptions {
            mode: ModeChoice::Bulk,
            ..PlanOptions::default()
        };
        let mut m = Manifest::from_plan(
            crate::state::RunIdentity {
                input_dir: input.path().to_path_buf(),
                batch_id: "b".into(),
                workflow_id: "wf".into(),
                kind: MediaKind::Image,
            },
            crate::files::plan::plan(&files, &options),
        );
        let before = m.clone();
        let outcome = m
            .reconcile_streamed(
                input.path(),
                &ScanOptions::default(),
                MediaKind::Image,
                &options,
            )
            .unwrap();
        assert!(outcome.is_none());
        assert_eq!(m, before);
    }
}
