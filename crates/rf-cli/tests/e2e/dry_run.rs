//! `--dry-run`: what `rf run` and `rf batch ingest` would do, with nothing
//! sent that changes state and nothing written.

use crate::emu::{ingest_args, samples};
use crate::util::{Sandbox, run, run_args};

#[test]
fn a_dry_run_plans_without_changing_anything_then_sees_the_real_run() {
    let sb = Sandbox::new();
    let out = sb.path().join("out");
    let images = samples();
    let mut args = run_args(&images, "image-properties", &out);
    args.extend(["--batch-id", "dry-1", "--job-id", "dry-job-1"].map(String::from));
    let dry = run(sb.rf().arg("--json").args(&args).arg("--dry-run"));
    dry.expect_code(0);
    let plan = dry.json();
    assert_eq!(plan["items"], 12, "{plan}");
    assert_eq!(plan["images"]["files"], 12, "{plan}");
    assert_eq!(plan["mode"], "single", "{plan}");
    assert_eq!(plan["batchId"], "dry-1", "{plan}");
    assert_eq!(plan["batchExists"], false, "{plan}");
    assert_eq!(plan["jobExists"], false, "{plan}");
    assert_eq!(plan["resumes"], false, "{plan}");
    assert_eq!(
        plan["jobDefinition"]["processingSpecification"]["workflowId"], "image-properties",
        "{plan}"
    );
    assert!(!out.exists(), "a dry run wrote the output directory");
    // Nothing was sent that changes state: the batch does not exist.
    let files = run(sb.rf().args(["--json", "batch", "show", "dry-1"]));
    files.expect_code(4);

    run(sb.rf().args(&args)).expect_code(0);
    let again = run(sb.rf().arg("--json").args(&args).arg("--dry-run"));
    again.expect_code(0);
    let plan = again.json();
    assert_eq!(plan["resumes"], true, "{plan}");
    assert_eq!(plan["alreadyUploaded"], 12, "{plan}");
    assert_eq!(plan["batchExists"], true, "{plan}");
    assert_eq!(plan["jobExists"], true, "{plan}");
}

#[test]
fn a_dry_run_that_would_not_start_says_why_with_the_usage_code() {
    let sb = Sandbox::new();
    let empty = sb.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    std::fs::write(empty.join("notes.txt"), b"no media here").unwrap();
    let done = run(sb.rf().args(ingest_args(&empty, "dry-2")).arg("--dry-run"));
    done.expect_code(2);
    assert!(
        done.error_line().contains("no images found"),
        "{}",
        done.stderr
    );

    let text = run(sb
        .rf()
        .args(ingest_args(&samples(), "dry-2"))
        .arg("--dry-run"));
    text.expect_code(0);
    assert!(
        text.stdout
            .contains("12 images in 12 requests (single mode)"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout
            .contains("dry-2 (new: created by the first upload)"),
        "{}",
        text.stdout
    );
    assert!(!text.stdout.contains("job definition"), "{}", text.stdout);
    assert!(
        !sb.cache().join("rf/ingest").exists(),
        "a dry run wrote a manifest"
    );
}
