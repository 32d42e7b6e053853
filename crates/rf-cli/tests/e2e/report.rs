//! `rf run --report` and `rf report`: the page of a `color-blobs` run over
//! the sample images, and the exit codes of bad input.

use crate::emu::samples;
use crate::util::{Sandbox, path_arg, run, run_args};

#[test]
fn run_with_report_writes_a_self_contained_page() {
    let sb = Sandbox::new();
    let out = sb.path().join("out");
    let mut args = run_args(&samples(), "color-blobs", &out);
    args.push("--report".into());
    let done = run(sb.rf().arg("--json").args(&args));
    done.expect_code(0);
    let doc = done.json();
    let report = &doc["report"];
    assert_eq!(report["records"], 12, "{doc}");
    assert_eq!(report["sampled"], 12, "{doc}");
    assert_eq!(report["thumbnails"], 12, "{doc}");
    assert_eq!(report["brokenLines"], 0, "{doc}");
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("default-src 'none'"), "strict CSP");
    assert_eq!(html.matches("data:image/jpeg;base64,").count(), 12);
    assert!(!html.contains("http://") && !html.contains("https://"));
    assert!(html.contains("class=\"pred box\" data-class=\"red-blob\""));
    // the job's details were saved for `rf report`, which works offline
    assert!(out.join(".rf-state/rf-job.jsonl").is_file());
    assert!(
        html.contains("job finished"),
        "job's last notification shown"
    );

    // `rf report` again, to another file and a smaller sample
    let other = sb.path().join("small.html");
    let again = run(sb.rf().args([
        "report".into(),
        path_arg(&out),
        "--sample".into(),
        "3".into(),
        "--output".into(),
        path_arg(&other),
    ]));
    again.expect_code(0);
    assert!(
        again.stdout.contains("3 sampled images"),
        "{}",
        again.stdout
    );
    let small = std::fs::read_to_string(&other).unwrap();
    assert_eq!(small.matches("<figure class=\"card\"").count(), 3);
}

#[test]
fn report_of_a_directory_without_results_is_a_usage_error() {
    let sb = Sandbox::new();
    let empty = sb.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let done = run(sb.rf().args(["report".into(), path_arg(&empty)]));
    done.expect_code(2);
    assert!(
        done.error_line().contains("no results in"),
        "{}",
        done.stderr
    );
    let missing = run(sb
        .rf()
        .args(["report".into(), path_arg(&sb.path().join("nope"))]));
    missing.expect_code(2);
    let bad = run(sb.rf().args(["report", "x", "--sample", "0"]));
    bad.expect_code(2);
}

#[test]
fn csv_results_give_the_same_figures() {
    let sb = Sandbox::new();
    let out = sb.path().join("out");
    let mut args = run_args(&samples(), "color-blobs", &out);
    args.extend([
        "--aggregation-format".into(),
        "csv".into(),
        "--report".into(),
    ]);
    let done = run(sb.rf().arg("--json").args(&args));
    done.expect_code(0);
    let doc = done.json();
    assert_eq!(doc["report"]["records"], 12, "{doc}");
    assert_eq!(doc["report"]["predictions"], 63, "{doc}");
    assert_eq!(doc["report"]["brokenLines"], 0, "{doc}");
}
