//! Hostile result archives through the whole pipeline (fake service): entries
//! with absolute paths, `..`, links out, devices, FIFOs and duplicate names
//! are refused and reported while the rest is extracted; a truncated archive
//! or a decompression bomb fails the download, leaves nothing that looks
//! complete, is not recorded in the manifest, and a re-run fetches it again.

use std::path::{Path, PathBuf};

use crate::common::fake::FakeService;
use crate::common::raw_tar::{finish, gz, raw_entry};
use crate::common::{config, make_images};
use rf_batch::export::RefusalReason;
use rf_batch::ingest::ModeChoice;
use rf_batch::state::Manifest;
use rf_batch::{Client, Error, Pipeline, RunConfig};

fn setup(n: usize) -> (FakeService, tempfile::TempDir, tempfile::TempDir, RunConfig) {
    let fake = FakeService::new();
    let input = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    make_images(input.path(), n);
    let mut cfg = config(input.path(), &work.path().join("out"), "wf");
    cfg.plan.mode = ModeChoice::Bulk;
    cfg.count_poll = crate::common::fast_poll(5);
    cfg.download.attempts = 1;
    (fake, input, work, cfg)
}

fn client(fake: &FakeService) -> Client {
    Client::new(fake.clone(), fake.base_url(), "fake-key").unwrap()
}

/// Every path under `dir` (files, links, directories), relative.
fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
            if rel.starts_with("out/.rf-state/") {
                continue;
            }
            let meta = std::fs::symlink_metadata(&p).unwrap();
            if meta.is_dir() {
                stack.push(p.clone());
            }
            out.push(rel);
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn hostile_entries_are_refused_reported_and_nothing_escapes() {
    let (fake, _input, work, cfg) = setup(4);
    let outside: PathBuf = work.path().join("outside");
    let absolute = format!("{}/abs.txt", outside.display());
    let mut t = Vec::new();
    raw_entry(&mut t, b"results/good.json", b'0', b"{\"ok\":1}\n", b"");
    raw_entry(&mut t, absolute.as_bytes(), b'0', b"x", b"");
    raw_entry(&mut t, b"../escape.txt", b'0', b"x", b"");
    raw_entry(&mut t, b"results/../../../escape2.txt", b'0', b"x", b"");
    raw_entry(&mut t, b"results/link", b'2', b"", b"../../outside");
    raw_entry(&mut t, b"results/hard", b'1', b"", b"/etc/passwd");
    raw_entry(&mut t, b"results/dev", b'3', b"", b"");
    raw_entry(&mut t, b"results/fifo", b'6', b"", b"");
    raw_entry(&mut t, b"results/good.json", b'0', b"{\"evil\":1}\n", b"");
    raw_entry(&mut t, b"results/more.json", b'0', b"{\"ok\":2}\n", b"");
    fake.state.lock().unwrap().export_archive = Some(gz(&finish(t)));

    let report = Pipeline::new(client(&fake), cfg.clone())
        .run()
        .await
        .unwrap();
    let refused: Vec<(String, RefusalReason)> = report
        .refused_entries
        .iter()
        .map(|e| (e.path.clone(), e.reason.clone()))
        .collect();
    assert_eq!(
        refused,
        [
            (absolute.clone(), RefusalReason::AbsolutePath),
            ("../escape.txt".into(), RefusalReason::ParentComponent),
            (
                "results/../../../escape2.txt".into(),
                RefusalReason::ParentComponent
            ),
            ("results/link".into(), RefusalReason::Link),
            ("results/hard".into(), RefusalReason::Link),
            ("results/dev".into(), RefusalReason::UnsupportedType),
            ("results/fifo".into(), RefusalReason::UnsupportedType),
            ("results/good.json".into(), RefusalReason::Duplicate),
        ]
    );
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("8 archive entries were refused")),
        "{:?}",
        report.warnings
    );
    // Only the good files were written, and only under the output directory.
    assert_eq!(
        tree(work.path()),
        [
            "out",
            "out/.rf-state",
            "out/results",
            "out/results/results",
            "out/results/results/good.json",
            "out/results/results/more.json",
        ]
    );
    assert_eq!(
        std::fs::read(work.path().join("out/results/results/good.json")).unwrap(),
        b"{\"ok\":1}\n",
        "the first of two same-named entries is kept"
    );
    // The manifest keeps what was refused.
    let m = Manifest::load(&cfg.state_file()).unwrap().unwrap();
    assert!(m.export.complete);
    let record = m.export.downloads.values().next().unwrap();
    assert_eq!(record.extracted.as_ref().unwrap().refused.len(), 8);
}

#[tokio::test]
async fn truncated_archive_fails_leaves_nothing_and_is_fetched_again() {
    let (fake, _input, work, cfg) = setup(4);
    let mut t = Vec::new();
    raw_entry(&mut t, b"results/a.json", b'0', &[b'a'; 700], b"");
    raw_entry(&mut t, b"results/b.json", b'0', &[b'b'; 700], b"");
    let cut_at = t.len() / 2; // after the first entry: no end marker
    let t = finish(t);
    // The download is complete (its length matches), the archive inside is not.
    fake.state.lock().unwrap().export_archive = Some(gz(&t[..cut_at]));
    let (report, outcome) = Pipeline::new(client(&fake), cfg.clone())
        .run_with_report()
        .await;
    let err = outcome.unwrap_err();
    assert!(
        matches!(err, Error::DownloadsFailed { failed: 1, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("truncated"), "{err}");
    assert_eq!(err.failure_class(), rf_batch::FailureClass::Retryable);
    assert_eq!(report.failures.len(), 1);
    // Nothing half-written, nothing recorded as done.
    assert_eq!(tree(work.path()), ["out", "out/.rf-state", "out/results"]);
    let m = Manifest::load(&cfg.state_file()).unwrap().unwrap();
    assert!(m.export.downloads.is_empty());
    assert!(!m.export.complete);

    // Fixed on the server: the re-run downloads it again and completes.
    fake.state.lock().unwrap().export_archive = Some(gz(&t));
    let report = Pipeline::new(client(&fake), cfg).run().await.unwrap();
    assert_eq!(report.downloaded_now, 1);
    assert_eq!(report.extracted_files, 2);
    assert!(work.path().join("out/results/results/b.json").exists());
}

#[tokio::test]
async fn decompression_bomb_is_refused_with_a_clear_error() {
    let (fake, _input, work, mut cfg) = setup(3);
    cfg.download.limits.max_ratio = 20;
    cfg.download.limits.ratio_floor = 1 << 20;
    let mut t = Vec::new();
    raw_entry(&mut t, b"results/bomb.bin", b'0', &vec![0u8; 16 << 20], b"");
    fake.state.lock().unwrap().export_archive = Some(gz(&finish(t)));
    let err = Pipeline::new(client(&fake), cfg.clone())
        .run()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::DownloadsFailed { .. }), "{err}");
    assert!(err.to_string().contains("refusing to extract"), "{err}");
    // Refused again as it is: no advice to simply re-run.
    assert_eq!(err.failure_class(), rf_batch::FailureClass::Permanent);
    assert!(
        err.to_string().contains("1 cannot succeed as they are"),
        "{err}"
    );
    assert_eq!(tree(work.path()), ["out", "out/.rf-state", "out/results"]);
    let m = Manifest::load(&cfg.state_file()).unwrap().unwrap();
    assert!(m.export.downloads.is_empty());
}
