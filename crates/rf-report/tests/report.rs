//! The report of a hand-made output directory: a run manifest over real
//! images, JSONL and CSV parts with broken and unknown lines, saved job
//! details, a video; what the page says and where it draws the boxes.

use std::fs;
use std::path::Path;

use rf_report::{JobDetailsWriter, ReportError, ReportOptions, job_details_path, write_report};
use serde_json::json;

/// Writes `name` (a 400×200 PNG) into `dir`.
fn image(dir: &Path, name: &str) {
    image::RgbImage::from_pixel(400, 200, image::Rgb([30, 90, 200]))
        .save(dir.join(name))
        .unwrap();
}

fn manifest(input: &Path, names: &[&str]) -> serde_json::Value {
    let singles: Vec<_> = names
        .iter()
        .map(|n| json!({"relative": n, "name": n, "kind": "image", "size": 1, "mtime_ns": 0, "uploaded": true}))
        .collect();
    json!({"version": 2,
        "run": {"input_dir": input, "batch_id": "b1", "workflow_id": "color-blobs", "kind": "image"},
        "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:09Z",
        "ingest": {"mode": "single", "singles": singles, "shards": [], "skipped": []},
        "count_confirmed": names.len(),
        "job": {"job_id": "j1", "created": true, "terminal": true, "error": false},
        "export": {"output_batch": "j1-out", "downloads": {}, "complete": true}})
}

fn detection(name: &str, class: &str, conf: f64) -> serde_json::Value {
    json!({"file_name": name, "workflow_id": "color-blobs", "predictions": {"image": {"width": 400, "height": 200},
        "predictions": [{"x": 100, "y": 50, "width": 40, "height": 20, "class": class, "confidence": conf}]}})
}

/// An output directory: a.png and b.png detected (JSONL), c.png in a CSV
/// part, d.png failed (reason in the job's logs), e.png missing with no
/// reason; a broken line, a non-object line, a video.
fn out_dir(root: &Path) -> std::path::PathBuf {
    let input = root.join("in");
    fs::create_dir_all(&input).unwrap();
    for n in ["a.png", "b.png", "c.png"] {
        image(&input, n);
    }
    let out = root.join("out");
    fs::create_dir_all(out.join("results/nested")).unwrap();
    fs::create_dir_all(out.join(".rf-state")).unwrap();
    let m = manifest(&input, &["a.png", "b.png", "c.png", "d.png", "e.png"]);
    fs::write(out.join(".rf-state/rf-run.json"), m.to_string()).unwrap();
    let jsonl = [
        detection("a.png", "cat", 0.9).to_string(),
        "{broken".to_string(),
        detection("b.png", "<script>dog</script>", 0.4).to_string(),
        "42".to_string(),
        json!({"file_name": "clip.mp4", "duration_seconds": 1.0, "fps": 2.0,
               "frames": [{"frame": 0, "timestamp_seconds": 0.0}, {"frame": 1, "timestamp_seconds": 0.5}]}).to_string(),
    ];
    fs::write(out.join("results/j1_0001.jsonl"), jsonl.join("\n")).unwrap();
    let preds = json!({"image": {"width": 400, "height": 200}, "predictions": []}).to_string();
    let csv = format!(
        "file_name,predictions,score\nc.png,\"{}\",7\n",
        preds.replace('"', "\"\"")
    );
    fs::write(out.join("results/nested/j1_0002.csv"), csv).unwrap();
    fs::write(out.join("results/readme.txt"), "not a result").unwrap();
    let mut w = JobDetailsWriter::create(
        &job_details_path(&out),
        &json!({"job": {"isTerminal": true}}),
    )
    .unwrap();
    w.log(&json!({"logType": "image-processing-failed", "payload": {"fileName": "d.png", "reason": "cannot decode d"}})).unwrap();
    w.finish().unwrap();
    out
}

#[test]
fn report_shows_everything_and_draws_boxes_where_predictions_say() {
    let dir = tempfile::tempdir().unwrap();
    let out = out_dir(dir.path());
    let s = write_report(&ReportOptions::new(&out)).unwrap();
    assert_eq!(s.path, out.join("report.html"));
    assert_eq!(s.records, 4);
    assert_eq!(s.broken_lines, 2);
    assert_eq!((s.sampled, s.thumbnails), (2, 2));
    assert_eq!(s.predictions, 2);
    assert_eq!(s.failed, 2, "d.png with its reason, e.png without a result");
    let html = fs::read_to_string(&s.path).unwrap();
    assert!(html.contains("content=\"default-src 'none'; img-src data:;"));
    assert!(!html.contains("<script>dog"), "class names are escaped");
    assert!(html.contains("&lt;script&gt;dog"));
    // 400×200 shown as 256×128: the box (x 100, y 50, 40×20, centred) at
    // (80, 40)·0.64 = (51.2, 25.6), 25.6×12.8, in a stage 64 px down
    assert!(
        html.contains("left:51.2px;top:25.6px;width:25.6px;height:12.8px"),
        "{html}"
    );
    assert!(html.contains("left:0.0px;top:64.0px;width:256.0px;height:128.0px"));
    assert!(html.contains("cannot decode d"));
    assert!(
        html.contains("<li>e.png</li>"),
        "inputs with no result listed"
    );
    assert!(
        html.contains("<li>c.png</li>"),
        "c.png had an empty predictions output"
    );
    assert!(
        html.contains("not JSON"),
        "broken line shown with its reason"
    );
    assert!(html.contains("a JSON number where a record was expected"));
    assert!(
        html.contains("clip.mp4") && html.contains("<polyline points=\"0.0,80.0 600.0,80.0\">")
    );
    assert!(
        html.contains("<code>score</code>"),
        "non-prediction field listed"
    );
    assert!(html.contains("1 other files ignored"));
    assert!(html.contains("9.0 s"), "run took");
}

#[test]
fn same_input_same_page() {
    let dir = tempfile::tempdir().unwrap();
    let out = out_dir(dir.path());
    let strip = |p: &Path| {
        fs::read_to_string(p)
            .unwrap()
            .lines()
            .filter(|l| !l.contains("generated"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let a = write_report(&ReportOptions::new(&out)).unwrap();
    let first = strip(&a.path);
    write_report(&ReportOptions::new(&out)).unwrap();
    assert_eq!(first, strip(&a.path));
}

#[test]
fn without_manifest_boxes_are_drawn_without_pictures() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    fs::create_dir_all(out.join("results")).unwrap();
    fs::write(
        out.join("results/r.jsonl"),
        detection("a.png", "cat", 0.9).to_string(),
    )
    .unwrap();
    let s = write_report(&ReportOptions::new(&out)).unwrap();
    assert_eq!((s.sampled, s.thumbnails), (1, 0));
    let html = fs::read_to_string(&s.path).unwrap();
    assert!(html.contains("source image not found"));
    assert!(html.contains("No run manifest"));
}

#[test]
fn typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let err = write_report(&ReportOptions::new(dir.path().join("none"))).unwrap_err();
    assert!(matches!(err, ReportError::NotADirectory { .. }));
    let err = write_report(&ReportOptions::new(dir.path())).unwrap_err();
    assert!(matches!(err, ReportError::NoResults { .. }));
    let mut o = ReportOptions::new(dir.path());
    o.sample = 0;
    assert!(matches!(
        write_report(&o).unwrap_err(),
        ReportError::SampleSize { .. }
    ));
    fs::create_dir_all(dir.path().join("results")).unwrap();
    fs::write(dir.path().join("results/r.jsonl"), "{}").unwrap();
    fs::create_dir_all(dir.path().join(".rf-state")).unwrap();
    fs::write(dir.path().join(".rf-state/rf-run.json"), "{not json").unwrap();
    let err = write_report(&ReportOptions::new(dir.path())).unwrap_err();
    assert!(matches!(err, ReportError::Manifest(_)));
}

#[test]
fn polygons_and_labels_are_drawn() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    fs::create_dir_all(out.join("results")).unwrap();
    let lines = [
        json!({"file_name": "seg.png", "seg": {"image": {"width": 100, "height": 100}, "predictions": [
            {"x": 50, "y": 50, "width": 20, "height": 20, "class": "leaf", "confidence": 0.8,
             "points": [{"x": 40, "y": 40}, {"x": 60, "y": 40}, {"x": 50, "y": 60}]}]}}),
        json!({"file_name": "cls.png", "cls": {"top": "cat", "confidence": 0.7}}),
    ];
    let text: Vec<String> = lines.iter().map(ToString::to_string).collect();
    fs::write(out.join("results/r.jsonl"), text.join("\n")).unwrap();
    let s = write_report(&ReportOptions::new(&out)).unwrap();
    assert_eq!(s.sampled, 2);
    let html = fs::read_to_string(&s.path).unwrap();
    assert!(
        html.contains("<svg class=\"polys\" viewBox=\"0 0 100 100\""),
        "{html}"
    );
    assert!(html.contains("points=\"40.0,40.0 60.0,40.0 50.0,60.0\""));
    assert!(html.contains("class=\"pred tag\" data-class=\"cat\""));
    assert!(html.contains("cat 0.70"));
}
