//! The API key never appears in any output: on success with -vvv, on a 401,
//! and when the API cannot be reached.

use crate::emu::{CANARY, TestEmulator, samples};
use crate::util::{Done, Sandbox, run};

#[track_caller]
fn assert_no_canary(done: &Done) {
    assert!(
        !done.stdout.contains(CANARY),
        "key in stdout:\n{}",
        done.stdout
    );
    assert!(
        !done.stderr.contains(CANARY),
        "key in stderr:\n{}",
        done.stderr
    );
}

#[test]
fn key_is_not_printed_on_success_even_when_very_verbose() {
    let emu = TestEmulator::start();
    let sb = Sandbox::new();
    let done = run(emu.rf(&sb).args([
        "-vvv",
        "run",
        "--images",
        samples().to_str().unwrap(),
        "--workflow",
        "image-properties",
        "--out",
        sb.path().join("out").to_str().unwrap(),
    ]));
    done.expect_code(0);
    assert_no_canary(&done);
    let done = run(emu.rf(&sb).args(["-vvv", "--json", "batch", "list"]));
    done.expect_code(0);
    assert_no_canary(&done);
}

#[test]
fn wrong_key_is_an_auth_error_without_the_key() {
    let emu = TestEmulator::with(|mut c| {
        c.keys = vec![("the-right-key".to_owned(), "ws".to_owned())];
        c
    });
    let sb = Sandbox::new();
    // The canary is the wrong key here, passed by flag and by environment.
    let done = run(sb.rf().args([
        "-vv",
        "--api-url",
        &emu.base_url,
        "--api-key",
        CANARY,
        "batch",
        "list",
    ]));
    done.expect_code(3);
    assert_eq!(
        done.stderr
            .lines()
            .filter(|l| l.starts_with("rf: "))
            .count(),
        1,
        "{}",
        done.stderr
    );
    assert_no_canary(&done);
    let done = run(sb
        .rf()
        .env("ROBOFLOW_API_KEY", CANARY)
        .env("API_BASE_URL", &emu.base_url)
        .args(["-vvv", "job", "list"]));
    done.expect_code(3);
    assert_no_canary(&done);
}

#[test]
fn unreachable_api_is_a_remote_failure_without_the_key() {
    // A port nothing listens on: bind, read the port, close.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let sb = Sandbox::new();
    let done = run(sb.rf().args([
        "-vvv",
        "--api-url",
        &format!("http://127.0.0.1:{port}"),
        "--api-key",
        CANARY,
        "batch",
        "show",
        "some-batch",
    ]));
    done.expect_code(5);
    assert!(done.error_line().contains("127.0.0.1"), "{}", done.stderr);
    assert_no_canary(&done);
}

/// Every file under `dir` whose bytes contain the canary.
fn files_with_canary(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = crate::emu::walk_files(dir, |_| false);
    files.retain(|path| {
        let bytes = std::fs::read(path).unwrap_or_default();
        bytes.windows(CANARY.len()).any(|w| w == CANARY.as_bytes())
    });
    files
}

#[track_caller]
fn assert_no_canary_in_files(dir: &std::path::Path) {
    let hits = files_with_canary(dir);
    assert!(hits.is_empty(), "the key was written to {hits:?}");
}

#[test]
fn canary_never_leaks_from_any_command_at_any_verbosity() {
    let emu = TestEmulator::start();
    let sb = Sandbox::new();
    let out = sb.path().join("out");
    let run_out = sb.path().join("run-out");
    let out2 = sb.path().join("out2");
    let samples = samples();
    let samples = samples.to_str().unwrap();
    // (arguments, expected exit code or None when any code is fine)
    let commands: Vec<(Vec<&str>, Option<i32>)> = vec![
        (
            vec![
                "batch",
                "ingest",
                "--images",
                samples,
                "--batch-id",
                "canary-b",
                "--mode",
                "bulk",
                "--wait",
            ],
            Some(0),
        ),
        (vec!["batch", "list"], Some(0)),
        (vec!["batch", "show", "canary-b"], Some(0)),
        (vec!["batch", "count", "canary-b"], Some(0)),
        (vec!["batch", "files", "canary-b"], Some(0)),
        (vec!["batch", "shards", "canary-b"], Some(0)),
        (vec!["batch", "parts", "canary-b"], None),
        (
            vec![
                "job",
                "start",
                "--batch-id",
                "canary-b",
                "--workflow",
                "image-properties",
                "--job-id",
                "canary-j",
            ],
            Some(0),
        ),
        (vec!["job", "list"], Some(0)),
        (vec!["job", "show", "canary-j"], Some(0)),
        (vec!["job", "wait", "canary-j"], Some(0)),
        (vec!["job", "stages", "canary-j"], Some(0)),
        (vec!["job", "tasks", "canary-j", "processing"], None),
        (vec!["job", "logs", "canary-j"], Some(0)),
        (
            vec!["job", "export", "canary-j", "--out", out.to_str().unwrap()],
            Some(0),
        ),
        (vec!["job", "abort", "canary-j"], None),
        (vec!["job", "restart", "canary-j"], None),
        (vec!["job", "show", "no-such-job"], Some(4)),
        (
            vec![
                "batch",
                "export",
                "no-such-batch",
                "--out",
                out2.to_str().unwrap(),
            ],
            Some(4),
        ),
        (
            vec![
                "run",
                "--images",
                samples,
                "--workflow",
                "image-properties",
                "--out",
                run_out.to_str().unwrap(),
            ],
            Some(0),
        ),
    ];
    for (i, (args, code)) in commands.iter().enumerate() {
        for json in [false, true] {
            // Alternate how the key is given and how loud the logs are.
            let mut cmd = if i % 2 == 0 {
                emu.rf(&sb)
            } else {
                let mut c = sb.rf();
                c.env("ROBOFLOW_API_KEY", CANARY)
                    .env("API_BASE_URL", &emu.base_url);
                c
            };
            if json {
                cmd.args(["--json", "-v"])
                    .env("RF_LOG", "trace")
                    .env("RUST_LOG", "trace");
            } else {
                cmd.arg(["-vv", "-vvv"][i % 2]);
            }
            let done = run(cmd.args(args));
            if let Some(code) = code {
                done.expect_code(*code);
            }
            assert_no_canary(&done);
        }
    }
    assert!(run_out.join(".rf-state").exists());
    assert_no_canary_in_files(sb.path());
}

/// A loopback HTTP server answering every request with `respond(head)`;
/// `None` holds the connection open without answering until the client
/// gives up. Returns its base URL.
pub(crate) fn serve(respond: fn(&str) -> Option<String>) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            std::thread::spawn(move || {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                match respond(&String::from_utf8_lossy(&head)) {
                    Some(answer) => {
                        let _ = stream.write_all(answer.as_bytes());
                    }
                    // Read until the client closes the connection.
                    None => while matches!(stream.read(&mut buf), Ok(n) if n > 0) {},
                }
            });
        }
    });
    url
}

pub(crate) fn http_answer(status: &str, content_type: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// The request line, as a careless server quotes it back.
fn request_line(head: &str) -> String {
    head.lines().next().unwrap_or_default().to_owned()
}

#[test]
fn error_bodies_echoing_the_url_do_not_leak_the_key() {
    let echo_500 = serve(|head| {
        Some(http_answer(
            "500 Internal Server Error",
            "text/plain",
            &format!("internal error while serving {}", request_line(head)),
        ))
    });
    let echo_json_502 = serve(|head| {
        Some(http_answer(
            "502 Bad Gateway",
            "application/json",
            &format!(
                "{{\"error\": \"upstream failed for {}\", \"url\": \"{}\"}}",
                request_line(head),
                request_line(head).split(' ').nth(1).unwrap_or_default()
            ),
        ))
    });
    let echo_400 = serve(|head| {
        Some(http_answer(
            "400 Bad Request",
            "application/json",
            &format!("{{\"error\": \"bad request: {}\"}}", request_line(head)),
        ))
    });
    let echo_401 = serve(|head| {
        Some(http_answer(
            "401 Unauthorized",
            "application/json",
            &format!("{{\"error\": \"key rejected in {}\"}}", request_line(head)),
        ))
    });
    let sb = Sandbox::new();
    for (url, code) in [
        (&echo_500, 5),
        (&echo_json_502, 5),
        (&echo_400, 2),
        (&echo_401, 3),
    ] {
        for args in [
            vec!["batch", "list"],
            vec!["--workspace", "ws", "batch", "count", "some-batch"],
            vec!["--workspace", "ws", "job", "show", "some-job"],
            vec![
                "run",
                "--images",
                samples().to_str().unwrap(),
                "--workflow",
                "image-properties",
                "--out",
                sb.path().join("out").to_str().unwrap(),
            ],
        ] {
            let done = run(sb
                .rf()
                .env("RF_LOG", "trace")
                .args(["-vvv", "--api-url", url, "--api-key", CANARY])
                .args(&args));
            done.expect_code(code);
            assert!(
                done.error_line().contains("REDACTED") || !done.error_line().contains("api_key"),
                "{}",
                done.stderr
            );
            assert_no_canary(&done);
        }
    }
    assert_no_canary_in_files(sb.path());
}

#[test]
fn timeouts_do_not_leak_the_key() {
    let silent = serve(|_| None);
    let sb = Sandbox::new();
    let done = run(sb.rf().args([
        "-vvv",
        "--timeout",
        "1",
        "--api-url",
        &silent,
        "--api-key",
        CANARY,
        "--workspace",
        "ws",
        "batch",
        "count",
        "some-batch",
    ]));
    done.expect_code(5);
    assert!(done.error_line().contains("timed out"), "{}", done.stderr);
    assert_no_canary(&done);
    assert_no_canary_in_files(sb.path());
}
