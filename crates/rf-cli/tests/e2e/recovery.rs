//! Recovering from bad input: a file the service refuses is named with one
//! exit code and one piece of advice that works — fix or remove it, re-run.

use std::path::Path;

use crate::emu::samples;
use crate::util::{Sandbox, run, run_args};

/// A directory with `good` valid JPEGs (copied from the samples) and one
/// that is not an image at all, `broken.jpg`.
fn images_with_one_corrupt(dir: &Path, good: usize) {
    let samples = samples();
    std::fs::create_dir_all(dir).unwrap();
    let jpegs: Vec<_> = std::fs::read_dir(&samples)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
        .take(good)
        .collect();
    assert_eq!(jpegs.len(), good, "not enough sample JPEGs");
    for p in &jpegs {
        std::fs::copy(p, dir.join(p.file_name().unwrap())).unwrap();
    }
    std::fs::write(dir.join("broken.jpg"), b"not a jpeg at all, just text").unwrap();
}

#[test]
fn a_refused_file_in_single_mode_is_named_and_removing_it_lets_the_rerun_finish() {
    let sb = Sandbox::new();
    let images = sb.path().join("images");
    images_with_one_corrupt(&images, 2);
    let out = sb.path().join("out");
    let command = |sb: &Sandbox| {
        let mut cmd = sb.rf();
        cmd.args(run_args(&images, "image-properties", &out))
            .args(["--mode", "single"]);
        cmd
    };
    let first = run(&mut command(&sb));
    // A permanent refusal: a usage-class error (2), not "partial, re-run".
    first.expect_code(2);
    let line = first.error_line();
    assert!(line.contains("refused 1 of 3 files as invalid"), "{line}");
    assert!(line.contains("broken.jpg"), "{line}");
    assert!(line.contains("fix or remove them"), "{line}");
    assert!(!line.contains("retry only the failed"), "{line}");

    std::fs::remove_file(images.join("broken.jpg")).unwrap();
    let second = run(command(&sb).arg("--json"));
    second.expect_code(0);
    let report = second.json();
    assert_eq!(report["confirmedCount"], 2, "{report}");
    // Only what was missing: the two good files went the first time.
    assert_eq!(report["uploadedNow"], 0, "{report}");
}

#[test]
fn an_out_that_is_a_file_is_told_before_anything_starts() {
    let sb = Sandbox::new();
    let out = sb.path().join("results.txt");
    std::fs::write(&out, b"not a directory").unwrap();
    let done = run(sb.rf().args(run_args(&samples(), "image-properties", &out)));
    done.expect_code(2);
    let line = done.error_line();
    assert!(line.contains("is a file, not a directory"), "{line}");
    assert!(line.contains("choose a directory"), "{line}");
    // Checked before the embedded emulator starts; nothing was created.
    assert!(
        !done.stderr.contains("embedded emulator"),
        "{}",
        done.stderr
    );
    assert!(!sb.cache().exists());
}

#[test]
fn a_rerun_says_what_changed_in_the_input() {
    let sb = Sandbox::new();
    let images = sb.path().join("images");
    std::fs::create_dir_all(&images).unwrap();
    for name in ["frame_000.jpg", "frame_001.jpg"] {
        std::fs::copy(samples().join(name), images.join(name)).unwrap();
    }
    let out = sb.path().join("out");
    let mut args = sb.rf();
    args.args(run_args(&images, "image-properties", &out));
    run(&mut args).expect_code(0);
    std::fs::remove_file(images.join("frame_001.jpg")).unwrap();
    let again = run(&mut args);
    again.expect_code(0);
    let warning = again
        .stderr
        .lines()
        .find(|l| l.contains("the input directory changed"))
        .unwrap_or_else(|| panic!("no warning:\n{}", again.stderr));
    assert!(
        warning.ends_with("1 gone after upload (the batch keeps them: frame_001.jpg)"),
        "{warning}"
    );
}

#[test]
fn a_count_check_that_runs_out_of_time_names_the_flag_that_waits_longer() {
    // Shards are indexed a minute after their upload: the count check of a
    // one-second --count-timeout runs out first.
    let emu = crate::emu::TestEmulator::with(|mut c| {
        c.index_delay = std::time::Duration::from_secs(60);
        c
    });
    let sb = Sandbox::new();
    let samples = samples();
    let done = run(emu
        .rf(&sb)
        .args([
            "batch",
            "ingest",
            "--batch-id",
            "slow-index",
            "--mode",
            "bulk",
        ])
        .args(["--wait", "--count-timeout", "1", "--images"])
        .arg(&samples));
    done.expect_code(5);
    let line = done.error_line();
    assert!(line.contains("holds 0 of 12 expected items"), "{line}");
    assert!(line.contains("pass --count-timeout SECS"), "{line}");
}

/// `rf run --mode bulk` over `images` (its manifest in `out`).
fn bulk_run(sb: &Sandbox, images: &Path, out: &Path) -> crate::util::Done {
    run(sb
        .rf()
        .arg("--json")
        .arg("run")
        .arg("--images")
        .arg(images)
        .args(["--workflow", "image-properties", "--mode", "bulk", "--out"])
        .arg(out))
}

#[test]
fn a_file_refused_inside_a_shard_can_be_removed_or_fixed_and_the_rerun_finishes() {
    let sb = Sandbox::new();
    let images = sb.path().join("images");
    images_with_one_corrupt(&images, 2);
    let out = sb.path().join("out");
    let first = bulk_run(&sb, &images, &out);
    // Refused while the shard was indexed: named, with the same exit code
    // and advice as in single mode.
    first.expect_code(2);
    let line = first.error_line();
    assert!(line.contains("refused 1 of 3 files as invalid"), "{line}");
    assert!(
        line.contains("first: broken.jpg (\"broken.jpg\" is not a decodable image"),
        "{line}"
    );
    assert!(line.contains("fix or remove them"), "{line}");
    // Re-running with the file as it was names it again.
    let again = bulk_run(&sb, &images, &out);
    again.expect_code(2);
    assert!(
        again.error_line().contains("broken.jpg"),
        "{}",
        again.stderr
    );

    // Fixed: it alone is sent again, and the run finishes with every file.
    let good = std::fs::read_dir(&images)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().is_some_and(|n| n != "broken.jpg"))
        .unwrap();
    std::fs::copy(good, images.join("broken.jpg")).unwrap();
    let fixed = bulk_run(&sb, &images, &out);
    fixed.expect_code(0);
    assert_eq!(fixed.json()["confirmedCount"], 3, "{}", fixed.stdout);
    // Told as the fix it is, not as an uploaded file the batch ignores.
    assert!(
        fixed
            .stderr
            .contains("refused 1 file fixed (sent again: broken.jpg)"),
        "{}",
        fixed.stderr
    );
    assert!(
        !fixed.stderr.contains("kept as uploaded"),
        "{}",
        fixed.stderr
    );
    assert!(
        !fixed.stderr.contains("keeps the uploaded version"),
        "{}",
        fixed.stderr
    );
    // Settled: a later re-run does not tell it again.
    let later = bulk_run(&sb, &images, &out);
    later.expect_code(0);
    assert!(!later.stderr.contains("broken.jpg"), "{}", later.stderr);

    // Removed, in another run: the run finishes without it.
    let sb = Sandbox::new();
    let images = sb.path().join("images");
    images_with_one_corrupt(&images, 2);
    let out = sb.path().join("out");
    bulk_run(&sb, &images, &out).expect_code(2);
    std::fs::remove_file(images.join("broken.jpg")).unwrap();
    let removed = bulk_run(&sb, &images, &out);
    removed.expect_code(0);
    assert_eq!(removed.json()["confirmedCount"], 2, "{}", removed.stdout);
    assert!(
        removed
            .stderr
            .contains("refused 1 file removed (no longer expected: broken.jpg)"),
        "{}",
        removed.stderr
    );
    assert!(
        !removed.stderr.contains("the batch keeps them"),
        "{}",
        removed.stderr
    );
}
