//! `rf webhook listen`: bearer token check, JSON lines on stdout, clean stop.

use crate::emu::ingest_args;
use crate::util::{Running, Sandbox, http_post, run_args};

const JOB_NOTIFICATION: &str = r#"{"type":"roboflow-batch-job-notification-v1","event_id":"c2d4e6f8-0a1b-4c3d-8e5f-6a7b8c9d0e1f","job_id":"job-k3v9x0a1b2c3","job_state":"success","delivery_attempt":1}"#;

fn listening_url(line: &str) -> String {
    let start = line.find("http://").expect("no url in the listening line");
    line[start..]
        .split_whitespace()
        .next()
        .unwrap()
        .trim_end_matches('/')
        .to_owned()
}

/// Starts `rf webhook listen` on a free port expecting `token`; returns it
/// and the URL it listens on.
fn listen(sb: &Sandbox, token: &str) -> (Running, String) {
    let mut listener = Running::spawn(sb.rf().args([
        "webhook",
        "listen",
        "--addr",
        "127.0.0.1:0",
        "--token",
        token,
    ]));
    let url = listening_url(&listener.wait_for_stderr("listening for webhooks on"));
    (listener, url)
}

fn post(url: &str, auth: Option<&str>, body: &str) -> (u16, String) {
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(auth) = auth {
        headers.push(("Authorization", auth));
    }
    http_post(&format!("{url}/hooks/jobs"), &headers, body)
}

#[test]
fn checks_the_token_and_prints_each_notification_as_a_json_line() {
    let sb = Sandbox::new();
    let (mut listener, url) = listen(&sb, "hook-secret");

    let (status, body) = post(&url, None, JOB_NOTIFICATION);
    assert_eq!(status, 401, "{body}");
    let (status, _) = post(&url, Some("Bearer wrong"), JOB_NOTIFICATION);
    assert_eq!(status, 401);
    let (status, _) = post(&url, Some("Bearer hook-secret"), "not json");
    assert_eq!(status, 400);
    // Each refusal is told on stderr: where, the status, why, and which
    // token was expected in redacted form (never the token itself).
    let refused = listener.wait_for_stderr("refused a delivery to /hooks/jobs: HTTP 401");
    assert!(
        refused.contains("expected Bearer hoo\u{2026} (11 characters)"),
        "{refused}"
    );
    assert!(refused.contains("got no Authorization header"), "{refused}");
    let wrong = listener.wait_for_stderr("got another token");
    assert!(wrong.contains("HTTP 401"), "{wrong}");
    listener.wait_for_stderr("HTTP 400: the body is not json");

    let (status, body) = post(&url, Some("Bearer hook-secret"), JOB_NOTIFICATION);
    assert_eq!(status, 200, "{body}");
    let line = listener.wait_for_stdout("job-k3v9x0a1b2c3");
    let printed: serde_json::Value = serde_json::from_str(&line).unwrap();
    let sent: serde_json::Value = serde_json::from_str(JOB_NOTIFICATION).unwrap();
    assert_eq!(printed, sent);
    listener.wait_for_stderr("job notification");

    // A body of an unknown shape is still shown, with a warning.
    let (status, _) = post(&url, Some("Bearer hook-secret"), r#"{"hello":"world"}"#);
    assert_eq!(status, 200);
    listener.wait_for_stdout("hello");
    listener.wait_for_stderr("unknown shape");

    listener.interrupt();
    let done = listener.finish();
    done.expect_code(0);
    // Only the two accepted notifications reached stdout, one per line.
    assert_eq!(done.stdout.lines().count(), 2, "{}", done.stdout);
    assert!(!done.stderr.contains("hook-secret"), "{}", done.stderr);
}

#[test]
fn a_busy_address_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let sb = Sandbox::new();
    let done = crate::util::run(sb.rf().args(["webhook", "listen", "--addr", &addr]));
    done.expect_code(1);
    assert!(
        done.error_line().contains("cannot listen on"),
        "{}",
        done.stderr
    );
}

#[test]
fn receives_the_job_notification_of_a_run() {
    let emu = crate::emu::TestEmulator::start();
    let sb = Sandbox::new();
    let token = format!("rf_{}", crate::emu::WORKSPACE);
    let (mut listener, url) = listen(&sb, &token);
    crate::util::run(
        emu.rf(&sb)
            .args(run_args(
                &crate::emu::samples(),
                "image-properties",
                &sb.path().join("out"),
            ))
            .args([
                "--job-id",
                "e2e-hooked",
                "--notifications-url",
                &format!("{url}/jobs"),
            ]),
    )
    .expect_code(0);
    let line = listener.wait_for_stdout("e2e-hooked");
    let n: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(n["type"], "roboflow-batch-job-notification-v1");
    assert_eq!(n["job_state"], "success");
    listener.interrupt();
    listener.finish().expect_code(0);
}

#[test]
fn receives_staging_notifications_of_a_bulk_ingest() {
    let emu = crate::emu::TestEmulator::start();
    let sb = Sandbox::new();
    let token = format!("rf_{}", crate::emu::WORKSPACE);
    let (mut listener, url) = listen(&sb, &token);
    crate::util::run(
        emu.rf(&sb)
            .args(ingest_args(&crate::emu::samples(), "e2e-hooked-bulk"))
            .args([
                "--mode",
                "bulk",
                "--notifications-url",
                &format!("{url}/staging"),
                "--wait",
            ]),
    )
    .expect_code(0);
    let line = listener.wait_for_stdout("e2e-hooked-bulk");
    let n: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(n["type"], "roboflow-data-staging-notification-v1", "{n}");
    listener.wait_for_stderr("staging notification");
    listener.interrupt();
    listener.finish().expect_code(0);
}
