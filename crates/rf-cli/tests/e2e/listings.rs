//! Listings that would never end: a page token that comes back, endless
//! empty pages, far more files than the count says. `rf` stops with the
//! remote-failure code and says the listing is broken, instead of looping
//! without end; files repeating an earlier name are reported, not dropped
//! silently.

use crate::secrets::{http_answer, serve};
use crate::util::{Sandbox, run};

/// The value of query parameter `name` in the request line of `head`.
fn query(head: &str, name: &str) -> Option<String> {
    let path = head.split_whitespace().nth(1)?;
    let query = path.split_once('?')?.1;
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| v.to_owned())
    })
}

/// Workspace `ws` of a service whose listings misbehave:
/// - the batch listing hands out empty pages with a fresh token forever;
/// - batch `cycle` lists files whose token goes `a`, `b`, `a`, ...;
/// - batch `endless` counts 5 files but lists 100 files a page, all named
///   `same.json`, with a fresh token forever.
fn broken_listings(head: &str) -> Option<String> {
    let host = head
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .unwrap_or("127.0.0.1")
        .trim();
    let path = head.split_whitespace().nth(1).unwrap_or("/");
    let route = path.split('?').next().unwrap_or(path);
    let json = |body: String| Some(http_answer("200 OK", "application/json", &body));
    let token = query(head, "nextPageToken");
    let base = "/data-staging/v1/external/ws/batches";
    let Some(rest) = route.strip_prefix(base) else {
        return (route == "/dl/same.json").then(|| http_answer("200 OK", "application/json", "{}"));
    };
    let next = token
        .as_deref()
        .map_or(1, |t| t.parse::<u64>().unwrap_or(0) + 1);
    match rest.trim_start_matches('/').split('/').collect::<Vec<_>>()[..] {
        [""] => json(format!(r#"{{"batches": [], "nextPageToken": "{next}"}}"#)),
        [b] => json(format!(
            r#"{{"batch": {{"displayName": "{b}", "batchId": "{b}", "batchType": "simple-batch",
                "batchContentType": "archives", "createdDate": "2025-06-01T02:00:00Z",
                "expiryDate": "2025-06-08T02:00:00Z"}}}}"#
        )),
        [_, "count"] => json(r#"{"count": 5}"#.to_owned()),
        ["cycle", "list"] => {
            let next = if token.as_deref() == Some("a") {
                "b"
            } else {
                "a"
            };
            json(format!(
                r#"{{"filesMetadata": [], "nextPageToken": "{next}"}}"#
            ))
        }
        ["endless", "list"] => {
            let file = format!(
                r#"{{"downloadURL": "http://{host}/dl/same.json", "fileName": "same.json", "contentType": "results"}}"#
            );
            let files = vec![file; 100].join(",");
            json(format!(
                r#"{{"filesMetadata": [{files}], "nextPageToken": "{next}"}}"#
            ))
        }
        _ => Some(http_answer(
            "404 Not Found",
            "application/json",
            r#"{"error": "not found"}"#,
        )),
    }
}

fn rf_at(sb: &Sandbox, base: &str, args: &[&str]) -> crate::util::Done {
    run(sb
        .rf()
        .args([
            "--api-url",
            base,
            "--api-key",
            "k-list",
            "--workspace",
            "ws",
        ])
        .args(args))
}

#[test]
fn a_batch_listing_of_endless_empty_pages_is_a_remote_failure() {
    let base = serve(broken_listings);
    let sb = Sandbox::new();
    let done = rf_at(&sb, &base, &["batch", "list"]);
    done.expect_code(5);
    let line = done.error_line();
    assert!(
        line.contains("list batches: the listing is broken"),
        "{line}"
    );
    assert!(line.contains("33 empty pages in a row"), "{line}");
}

#[test]
fn a_page_token_that_comes_back_is_a_remote_failure_not_a_usage_error() {
    let base = serve(broken_listings);
    let sb = Sandbox::new();
    let out = sb.path().join("out");
    let done = rf_at(
        &sb,
        &base,
        &["batch", "export", "cycle", "--out", out.to_str().unwrap()],
    );
    done.expect_code(5);
    let line = done.error_line();
    assert!(line.contains("list files: the listing is broken"), "{line}");
    assert!(line.contains("\"a\" came back"), "{line}");
}

#[test]
fn an_export_listing_far_past_the_count_stops_and_repeated_names_are_reported() {
    let base = serve(broken_listings);
    let sb = Sandbox::new();
    let out = sb.path().join("out");
    let done = rf_at(
        &sb,
        &base,
        &["batch", "export", "endless", "--out", out.to_str().unwrap()],
    );
    done.expect_code(5);
    let line = done.error_line();
    assert!(
        line.contains("listed more than 1005 files where the count endpoint says 5"),
        "{line}"
    );
    // One file downloaded; the ones repeating its name are told, not lost
    // in silence.
    assert!(out.join("same.json").is_file());
    assert!(
        done.stderr
            .contains("repeat the name of an earlier file of it (first: same.json); only the first of each was downloaded"),
        "{}",
        done.stderr
    );
}
