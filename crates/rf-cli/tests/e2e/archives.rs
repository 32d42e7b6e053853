//! `rf batch export` of a hostile archive served over loopback: the unsafe
//! entries are refused and named on stderr (and in `--json`), the safe ones
//! are extracted, nothing is written outside `--out`; a truncated archive is
//! a partial failure that leaves nothing behind.

use crate::secrets::{http_answer, serve};
use crate::util::{Sandbox, run};

/// A raw ustar header with any path and type (ASCII only, so the archive
/// travels in a `String`).
fn raw_entry(out: &mut String, path: &str, kind: char, data: &str, link: &str) {
    let mut h = vec![0u8; 512];
    h[..path.len()].copy_from_slice(path.as_bytes());
    h[100..107].copy_from_slice(b"0000644");
    h[108..115].copy_from_slice(b"0000000");
    h[116..123].copy_from_slice(b"0000000");
    h[124..135].copy_from_slice(format!("{:011o}", data.len()).as_bytes());
    h[136..147].copy_from_slice(b"00000000000");
    h[156] = kind as u8;
    h[157..157 + link.len()].copy_from_slice(link.as_bytes());
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    out.push_str(std::str::from_utf8(&h).unwrap());
    out.push_str(data);
    let padded = out.len().div_ceil(512) * 512;
    out.extend(std::iter::repeat_n('\0', padded - out.len()));
}

fn hostile_tar() -> String {
    let mut t = String::new();
    raw_entry(&mut t, "results/good.json", '0', "{\"ok\":1}\n", "");
    raw_entry(&mut t, "/tmp/rf-e2e-absolute.txt", '0', "x", "");
    raw_entry(&mut t, "../escape.txt", '0', "x", "");
    raw_entry(&mut t, "results/link", '2', "", "/etc");
    raw_entry(&mut t, "results/hard", '1', "", "../../x");
    raw_entry(&mut t, "results/fifo", '6', "", "");
    raw_entry(&mut t, "results/good.json", '0', "{\"evil\":1}\n", "");
    t.push_str(&"\0".repeat(1024));
    t
}

/// The batch `hostile` of workspace `ws`, one archive whose download URL
/// points back at this server; `/dl/cut.tar` is the archive cut short.
fn hostile_service(head: &str) -> Option<String> {
    let path = head.split_whitespace().nth(1).unwrap_or("/");
    let host = head
        .lines()
        .find_map(|l| {
            l.strip_prefix("host: ")
                .or_else(|| l.strip_prefix("Host: "))
        })
        .unwrap_or("127.0.0.1")
        .trim();
    let base = "/data-staging/v1/external/ws/batches/";
    let json = |body: String| Some(http_answer("200 OK", "application/json", &body));
    let route = path.split('?').next().unwrap_or(path);
    let batch = route.strip_prefix(base).unwrap_or("");
    match batch.split('/').collect::<Vec<_>>()[..] {
        [b] if !b.is_empty() => json(format!(
            r#"{{"batch": {{"displayName": "{b}", "batchId": "{b}", "batchType": "simple-batch",
                "batchContentType": "archives", "createdDate": "2025-06-01T02:00:00Z",
                "expiryDate": "2025-06-08T02:00:00Z"}}}}"#
        )),
        [b, "list"] => {
            let file = if b == "hostile" {
                "results.tar"
            } else {
                "cut.tar"
            };
            json(format!(
                r#"{{"filesMetadata": [{{"downloadURL": "http://{host}/dl/{file}", "fileName": "{file}",
                    "contentType": "archives"}}], "nextPageToken": null}}"#
            ))
        }
        _ if route == "/dl/results.tar" => {
            Some(http_answer("200 OK", "application/x-tar", &hostile_tar()))
        }
        _ if route == "/dl/cut.tar" => {
            let whole = hostile_tar();
            Some(http_answer("200 OK", "application/x-tar", &whole[..1024]))
        }
        _ => Some(http_answer(
            "404 Not Found",
            "application/json",
            r#"{"error": "not found"}"#,
        )),
    }
}

fn tree(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
            if std::fs::symlink_metadata(&p).unwrap().is_dir() {
                stack.push(p);
            }
            out.push(rel);
        }
    }
    out.sort();
    out
}

#[test]
fn unsafe_entries_are_refused_and_named_and_nothing_escapes() {
    let base = serve(hostile_service);
    let sb = Sandbox::new();
    let work = sb.path().join("work");
    let out = work.join("out");
    let rf = |json: bool| {
        let mut cmd = sb.rf();
        cmd.args([
            "--api-url",
            &base,
            "--api-key",
            "k-archive",
            "--workspace",
            "ws",
        ]);
        if json {
            cmd.arg("--json");
        }
        cmd
    };
    let done = run(rf(false).args(["batch", "export", "hostile", "--out", out.to_str().unwrap()]));
    done.expect_code(0);
    for (path, reason) in [
        ("/tmp/rf-e2e-absolute.txt", "absolute path"),
        ("../escape.txt", "path contains '..'"),
        ("results/link", "link entries are not extracted"),
        ("results/hard", "link entries are not extracted"),
        ("results/fifo", "not a regular file or directory"),
        ("results/good.json", "an earlier entry has the same path"),
    ] {
        let line = format!("rf: warning: refused archive entry {path:?} in results.tar: {reason}");
        assert!(
            done.stderr.contains(&line),
            "no {line:?} in:\n{}",
            done.stderr
        );
    }
    assert!(
        done.stdout.contains("6 unsafe archive entries"),
        "{}",
        done.stdout
    );
    assert_eq!(
        tree(&work),
        [
            "out",
            "out/.rf-state",
            "out/.rf-state/lock",
            "out/.rf-state/rf-export.json",
            "out/.rf-state/rf-export.json.downloads",
            "out/results",
            "out/results/good.json"
        ]
    );
    assert_eq!(
        std::fs::read_to_string(out.join("results/good.json")).unwrap(),
        "{\"ok\":1}\n"
    );
    assert!(!std::path::Path::new("/tmp/rf-e2e-absolute.txt").exists());

    let out2 = work.join("out2");
    let done = run(rf(true).args([
        "batch",
        "export",
        "hostile",
        "--out",
        out2.to_str().unwrap(),
    ]));
    done.expect_code(0);
    let report = done.json();
    let refused = report["refusedEntries"].as_array().unwrap();
    assert_eq!(refused.len(), 6, "{report}");
    assert_eq!(refused[1]["path"], "../escape.txt");
    assert_eq!(refused[1]["reason"], "parent-component");
}

#[test]
fn truncated_archive_is_a_partial_failure_and_leaves_nothing() {
    let base = serve(hostile_service);
    let sb = Sandbox::new();
    let out = sb.path().join("out");
    let done = run(sb.rf().args([
        "--api-url",
        &base,
        "--api-key",
        "k-archive",
        "--workspace",
        "ws",
        "batch",
        "export",
        "cut",
        "--out",
        out.to_str().unwrap(),
    ]));
    done.expect_code(6);
    assert!(done.error_line().contains("truncated"), "{}", done.stderr);
    // Nothing but rf's own state; the archive is not recorded as done.
    let left: Vec<String> = tree(&out)
        .into_iter()
        .filter(|p| !p.starts_with(".rf-state"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    let state = out.join(".rf-state/rf-export.json");
    if state.exists() {
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(state).unwrap()).unwrap();
        assert_eq!(manifest["export"]["downloads"], serde_json::json!({}));
        assert_eq!(manifest["export"]["complete"], false);
    }
}
