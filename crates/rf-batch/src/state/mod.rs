//! The run manifest: what a run has done, so that re-running resumes it.
//!
//! One JSON file per run, kept in the output (or a chosen state) directory and
//! never in the input directory, which may be read-only. It is rewritten
//! atomically after every step (write a temporary file beside it, `fsync` it,
//! rename it over the old one, `fsync` the directory), so a crash or Ctrl-C at
//! any moment leaves either the old or the new manifest, never a torn one.
//!
//! It records: the plan (which file went into which shard, with its size and
//! modification time; the shards' items themselves live in the items file
//! beside it, see [`items`]), which uploads completed, the expected and confirmed
//! count, the job ID (saved *before* the job is created, so a re-run finds the
//! job instead of starting a second one), the export batch and which downloads
//! completed. [`Manifest::reconcile`] compares it against a fresh scan to find
//! inputs that changed, appeared or vanished since.
//!
//! Completed downloads are not added to the manifest while an export runs:
//! rewriting a manifest with one record per file after each file would be
//! quadratic, and holding every record in memory would make memory grow with
//! the batch. They are appended, one JSON line each, to a journal beside it
//! ([`DownloadJournal`], `<manifest>.downloads`), and [`Manifest::load`]
//! merges the journal back into [`ExportState::downloads`]. Each line names
//! the manifest it belongs to (its creation time), so a journal left behind
//! by an older manifest is ignored; a line torn by a crash is skipped (that
//! file is downloaded again).

use std::path::{Path, PathBuf};

pub mod chunks;
mod file;
pub mod items;
mod journal;
mod lock;
mod reconcile;
mod records;
mod resume;
mod store;

pub use crate::error::StateError;
pub use chunks::{ChunkJournal, ChunkRecord};
pub use file::ManifestFile;
pub use items::{FreshRun, ItemRange, Prepared, ScanSummary, items_path_for};
pub use journal::{DownloadJournal, download_key};
pub(crate) use lock::state_dir_of;
pub use lock::{LOCK_FILE, StateLock};
pub use reconcile::Reconciliation;
pub use records::{
    DownloadRecord, ExportState, IngestState, JobRecord, Manifest, RefusedFile, RunIdentity,
    ShardItems, ShardRecord, SingleRecord,
};
pub use rf_util::LockHolder;

/// Manifest format version written by this crate. Version 1 (shard items
/// held in the manifest itself) is still read; its items move to the items
/// file at the next save.
pub const MANIFEST_VERSION: u32 = 2;

/// File name of the manifest inside the state directory.
pub const MANIFEST_FILE: &str = "rf-run.json";

/// `path` with `suffix` added to its file name (`rf-run.json` →
/// `rf-run.json.items`): the files that belong to a manifest sit beside it.
pub(crate) fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| MANIFEST_FILE.into());
    name.push(suffix);
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::files::extract::ExtractReport;
    use crate::files::plan::plan;
    use crate::files::plan::{PlanOptions, UploadMode};
    use crate::files::scan::{MediaKind, ScannedFile};

    fn file(rel: &str, size: u64, kind: MediaKind) -> ScannedFile {
        ScannedFile {
            relative: rel.into(),
            kind,
            size,
            mtime_ns: 7,
        }
    }

    fn manifest_for(files: &[ScannedFile], options: &PlanOptions) -> Manifest {
        Manifest::from_plan(
            RunIdentity {
                input_dir: "/in".into(),
                batch_id: "b".into(),
                workflow_id: "wf".into(),
                kind: MediaKind::Image,
            },
            plan(files, options),
        )
    }

    fn images(n: usize) -> Vec<ScannedFile> {
        (0..n)
            .map(|i| file(&format!("{i:03}.jpg"), 100, MediaKind::Image))
            .collect()
    }

    #[test]
    fn the_downloads_journal_is_merged_on_load_and_only_its_own_lines_count() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(MANIFEST_FILE);
        let mut m = manifest_for(&images(3), &PlanOptions::default());
        m.save(&path).unwrap();
        let record = |name: &str| DownloadRecord {
            part: None,
            file_name: name.into(),
            local_path: dir.path().join(name),
            bytes: 1,
            extracted: None,
        };
        let mut journal = DownloadJournal::open(&path, &m).unwrap();
        journal.append("-/-/a.json", &record("a.json")).unwrap();
        journal.append("-/-/b.json", &record("b.json")).unwrap();
        journal.finish().unwrap();
        // A line of an older manifest and a line torn by a crash.
        let mut older = m.clone();
        older.created_at = m.created_at - chrono::Duration::seconds(60);
        let mut stale = DownloadJournal::open(&path, &older).unwrap();
        stale.append("-/-/old.json", &record("old.json")).unwrap();
        stale.finish().unwrap();
        let journal_path = DownloadJournal::path_for(&path);
        assert_eq!(journal_path, dir.path().join("rf-run.json.downloads"));
        let mut text = std::fs::read_to_string(&journal_path).unwrap();
        text.push_str("{\"manifest\": \"2026-");
        std::fs::write(&journal_path, text).unwrap();

        let loaded = Manifest::load(&path).unwrap().unwrap();
        let keys: Vec<&str> = loaded.export.downloads.keys().map(String::as_str).collect();
        assert_eq!(keys, ["-/-/a.json", "-/-/b.json"]);
        assert_eq!(loaded.export.downloads["-/-/a.json"], record("a.json"));
        // The in-memory manifest that wrote the journal holds no record.
        assert!(m.export.downloads.is_empty());
    }

    #[test]
    fn download_records_check_what_is_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.jpg");
        std::fs::write(&file, b"12345").unwrap();
        let mut rec = DownloadRecord {
            part: None,
            file_name: "a.jpg".into(),
            local_path: file.clone(),
            bytes: 5,
            extracted: None,
        };
        assert!(rec.is_on_disk());
        // Short after a crash, or gone: downloaded again.
        std::fs::write(&file, b"").unwrap();
        assert!(!rec.is_on_disk());
        std::fs::remove_file(&file).unwrap();
        assert!(!rec.is_on_disk());
        // An unpacked archive: its directory is enough.
        rec.local_path = dir.path().to_path_buf();
        rec.extracted = Some(ExtractReport::default());
        assert!(rec.is_on_disk());
        rec.local_path = dir.path().join("missing");
        assert!(!rec.is_on_disk());
    }

    #[test]
    fn save_is_atomic_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state").join(MANIFEST_FILE);
        assert!(Manifest::load(&path).unwrap().is_none());
        let mut m = manifest_for(&images(40), &PlanOptions::default());
        m.job = Some(JobRecord {
            job_id: "job-1".into(),
            created: false,
            terminal: false,
            error: false,
        });
        m.export.downloads.insert(
            download_key(Some("p"), "a.tar", None),
            DownloadRecord {
                part: Some("p".into()),
                file_name: "a.tar".into(),
                local_path: "/out/p".into(),
                bytes: 3,
                extracted: Some(ExtractReport::default()),
            },
        );
        m.save(&path).unwrap();
        m.save(&path).unwrap();
        let back = Manifest::load(&path).unwrap().unwrap();
        assert_eq!(back, m);
        // no temporary files left beside it: the manifest and its items
        let mut names: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(names, [MANIFEST_FILE, "rf-run.json.items"]);
        // The manifest holds ranges, not the items.
        let text = fs::read_to_string(&path).unwrap();
        assert!(!text.contains("000.jpg"), "{text}");
        assert_eq!(back.shard_plan(0).unwrap().items.len(), 40);
    }

    #[test]
    fn shard_items_move_to_the_items_file_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(MANIFEST_FILE);
        let files = images(1200);
        let options = PlanOptions::default();
        let in_memory = plan(&files, &options);
        let mut m = manifest_for(&files, &options);
        assert!(matches!(m.ingest.shards[0].items, ShardItems::Inline(_)));
        m.save(&path).unwrap();
        assert!(
            m.ingest
                .shards
                .iter()
                .all(|s| matches!(s.items, ShardItems::Stored(_)))
        );
        let back = Manifest::load(&path).unwrap().unwrap();
        for (i, shard) in in_memory.shards.iter().enumerate() {
            assert_eq!(&m.shard_plan(i).unwrap(), shard);
            assert_eq!(&back.shard_plan(i).unwrap(), shard);
        }
        assert_eq!(back.expected_count(), 1200);
        // Saved elsewhere, the items come along.
        let moved = dir.path().join("elsewhere").join(MANIFEST_FILE);
        let mut copy = back.clone();
        copy.save(&moved).unwrap();
        fs::remove_file(items_path_for(&path)).unwrap();
        let again = Manifest::load(&moved).unwrap().unwrap();
        assert_eq!(&again.shard_plan(2).unwrap(), &in_memory.shards[2]);
        // The original manifest without its items file is refused clearly.
        let err = Manifest::load(&path).unwrap_err().to_string();
        assert!(err.contains("items file is missing"), "{err}");
    }

    #[test]
    fn an_items_file_of_another_run_or_cut_short_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(MANIFEST_FILE);
        let mut m = manifest_for(&images(600), &PlanOptions::default());
        m.save(&path).unwrap();
        let items = items_path_for(&path);
        let original = fs::read(&items).unwrap();
        // Another run's items file beside this manifest.
        let mut other = manifest_for(&images(600), &PlanOptions::default());
        other.created_at = m.created_at - chrono::Duration::seconds(5);
        let other_path = dir.path().join("other").join(MANIFEST_FILE);
        other.save(&other_path).unwrap();
        fs::copy(items_path_for(&other_path), &items).unwrap();
        let err = Manifest::load(&path).unwrap_err().to_string();
        assert!(err.contains("belongs to another run"), "{err}");
        assert!(err.contains("move it away"), "{err}");
        // Cut short (a disk that filled up): the shard past the end is refused.
        fs::write(&items, &original[..original.len() - 10]).unwrap();
        let loaded = Manifest::load(&path).unwrap().unwrap();
        assert!(loaded.shard_plan(0).is_ok());
        let err = loaded.shard_plan(1).unwrap_err().to_string();
        assert!(err.contains("ends before byte"), "{err}");
    }

    #[test]
    fn version_1_manifests_with_inline_items_still_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(MANIFEST_FILE);
        let files = images(700);
        let m = manifest_for(&files, &PlanOptions::default());
        // What rf wrote before the items file: every item inline, version 1.
        let mut v1 = serde_json::to_value(&m).unwrap();
        v1["version"] = 1.into();
        v1["ingest"]["shards"][0]["uploaded"] = true.into();
        fs::write(&path, serde_json::to_vec(&v1).unwrap()).unwrap();
        let mut loaded = Manifest::load(&path).unwrap().unwrap();
        assert_eq!(loaded.version, MANIFEST_VERSION);
        assert_eq!(loaded.uploaded_count(), 350);
        let expected = plan(&files, &PlanOptions::default());
        assert_eq!(loaded.shard_plan(1).unwrap(), expected.shards[1]);
        // The next save moves the items out.
        loaded.save(&path).unwrap();
        let again = Manifest::load(&path).unwrap().unwrap();
        assert!(matches!(
            again.ingest.shards[1].items,
            ShardItems::Stored(_)
        ));
        assert_eq!(again.shard_plan(1).unwrap(), expected.shards[1]);
        assert_eq!(again.uploaded_count(), 350);
    }

    #[test]
    fn a_replan_appends_to_the_items_file_and_keeps_uploaded_ranges() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(MANIFEST_FILE);
        let mut files = images(1200);
        let options = PlanOptions::default();
        let mut m = manifest_for(&files, &options);
        m.ingest.shards[0].uploaded = true;
        m.save(&path).unwrap();
        let uploaded = m.ingest.shards[0].clone();
        let before = fs::metadata(items_path_for(&path)).unwrap().len();
        files.push(file("zz_new.jpg", 5, MediaKind::Image));
        let mut m = Manifest::load(&path).unwrap().unwrap();
        let rec = m.reconcile(&files, &options).unwrap();
        assert_eq!(rec.added, ["zz_new.jpg"]);
        m.save(&path).unwrap();
        assert!(fs::metadata(items_path_for(&path)).unwrap().len() > before);
        let m = Manifest::load(&path).unwrap().unwrap();
        assert_eq!(m.ingest.shards[0], uploaded);
        assert_eq!(m.expected_count(), 1201);
        let last = m.shard_plan(m.ingest.shards.len() - 1).unwrap();
        assert_eq!(last.items.last().unwrap().relative, "zz_new.jpg");
    }

    #[test]
    fn scan_and_plan_writes_the_same_plan_as_planning_in_memory() {
        let input = tempfile::tempdir().unwrap();
        for i in 0..1234 {
            let sub = if i % 3 == 0 { "a" } else { "b/c" };
            let dir = input.path().join(sub);
            fs::create_dir_all(&dir).unwrap();
            fs::write(dir.join(format!("{i:05}.jpg")), vec![1u8; i % 700]).unwrap();
        }
        fs::write(input.path().join("clip.mp4"), b"v").unwrap();
        fs::write(input.path().join("notes.txt"), b"n").unwrap();
        let state = tempfile::tempdir().unwrap();
        let path = state.path().join(MANIFEST_FILE);
        let options = PlanOptions {
            max_shard_bytes: 200 * 1024,
            ..PlanOptions::default()
        };
        let scan_options = crate::files::scan::ScanOptions::default();
        let (mut m, summary) = items::plan_for_test(&path, input.path(), None, &options);
        let report = crate::files::scan::scan(input.path(), &scan_options).unwrap();
        let images: Vec<ScannedFile> = report
            .files
            .iter()
            .filter(|f| f.kind == MediaKind::Image)
            .cloned()
            .collect();
        let expected = plan(&images, &options);
        assert_eq!(m.ingest.mode, UploadMode::Bulk);
        assert_eq!(m.ingest.shards.len(), expected.shards.len());
        assert!(expected.shards.len() > 3, "bounded by bytes and count");
        for (i, shard) in expected.shards.iter().enumerate() {
            assert_eq!(&m.shard_plan(i).unwrap(), shard);
        }
        assert_eq!(
            (summary.images, summary.videos, summary.other_kind),
            (1234, 1, 1)
        );
        let reasons: Vec<_> = summary.skipped.iter().map(|s| &s.relative).collect();
        assert_eq!(reasons, ["notes.txt", "clip.mp4"]);
        assert_eq!(
            summary.skipped[1].reason,
            crate::files::scan::SkipReason::OtherKind(MediaKind::Video)
        );
        // Saved and loaded, the stored plan is the same; no temporary files.
        m.save(&path).unwrap();
        let back = Manifest::load(&path).unwrap().unwrap();
        assert_eq!(back.shard_plan(3).unwrap(), expected.shards[3]);
        let mut names: Vec<_> = fs::read_dir(state.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(names, [MANIFEST_FILE, "rf-run.json.items"]);

        // A video run of the same directory: one single, images reported.
        let path = state.path().join("v").join(MANIFEST_FILE);
        let (m, summary) =
            items::plan_for_test(&path, input.path(), Some(MediaKind::Video), &options);
        assert_eq!(m.ingest.singles.len(), 1);
        assert_eq!(m.ingest.singles[0].item.name, "clip.mp4");
        assert!(m.ingest.shards.is_empty());
        assert_eq!(summary.other_kind, 1234);
    }

    #[test]
    fn corrupt_and_foreign_versions_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(MANIFEST_FILE);
        fs::write(&path, b"{not json").unwrap();
        let err = Manifest::load(&path).unwrap_err();
        assert!(err.to_string().contains("move it away"), "{err}");
        let mut m = manifest_for(&images(1), &PlanOptions::default());
        m.version = 99;
        fs::write(&path, serde_json::to_vec(&m).unwrap()).unwrap();
        assert!(
            Manifest::load(&path)
                .unwrap_err()
                .to_string()
                .contains("version 99")
        );
    }

    #[test]
    fn counts_track_uploads() {
        let mut m = manifest_for(&images(40), &PlanOptions::default());
        assert_eq!((m.expected_count(), m.uploaded_count()), (40, 0));
        m.ingest.shards[0].uploaded = true;
        assert_eq!(m.uploaded_count(), 40);
        assert!(m.ingest_complete());
    }

    #[test]
    fn reconcile_without_changes_keeps_the_plan() {
        let files = images(1200);
        let mut m = manifest_for(&files, &PlanOptions::default());
        m.ingest.shards[1].uploaded = true;
        let before = m.clone();
        let rec = m.reconcile(&files, &PlanOptions::default()).unwrap();
        assert!(rec.is_empty(), "{rec:?}");
        assert_eq!(m.ingest, before.ingest);
    }

    #[test]
    fn reconcile_detects_changes_and_replans_pending_only() {
        let mut files = images(1200);
        let mut m = manifest_for(&files, &PlanOptions::default());
        assert_eq!(m.ingest.shards.len(), 3);
        m.ingest.shards[0].uploaded = true;
        let uploaded = m.ingest.shards[0].clone();
        // change one uploaded and one pending file, remove a pending one, add two
        files[0].size = 1;
        files[500].mtime_ns = 99;
        files.remove(900);
        files.push(file("zz_new.jpg", 5, MediaKind::Image));
        files.push(file("zz_new2.jpg", 5, MediaKind::Image));
        let rec = m.reconcile(&files, &PlanOptions::default()).unwrap();
        assert_eq!(rec.changed_after_upload, ["000.jpg"]);
        assert_eq!(rec.changed_pending, ["500.jpg"]);
        assert_eq!(rec.vanished_pending, ["900.jpg"]);
        assert_eq!(rec.added, ["zz_new.jpg", "zz_new2.jpg"]);
        assert_eq!(m.ingest.shards[0], uploaded);
        assert_eq!(m.expected_count(), 1201);
        // pending shards were re-cut with fresh indexes after the old ones
        assert!(
            m.ingest.shards[1..]
                .iter()
                .all(|s| s.index >= 3 && !s.uploaded)
        );
        let replanned = m.ingest.shards[1..]
            .iter()
            .flat_map(|s| s.load(None).unwrap().items)
            .find(|i| i.relative == "500.jpg")
            .unwrap();
        assert_eq!(replanned.mtime_ns, 99);
    }

    #[test]
    fn reconcile_in_single_mode_adds_singles() {
        let files = images(3);
        let mut m = manifest_for(&files, &PlanOptions::default());
        m.ingest.singles[0].uploaded = true;
        let mut more = files.clone();
        more.push(file("new.jpg", 1, MediaKind::Image));
        more.remove(1);
        let rec = m.reconcile(&more, &PlanOptions::default()).unwrap();
        assert_eq!(rec.vanished_pending, ["001.jpg"]);
        assert_eq!(rec.added, ["new.jpg"]);
        let names: Vec<_> = m
            .ingest
            .singles
            .iter()
            .map(|s| s.item.relative.as_str())
            .collect();
        assert_eq!(names, ["000.jpg", "002.jpg", "new.jpg"]);
        assert_eq!(m.ingest.mode, UploadMode::Single);
    }
}
