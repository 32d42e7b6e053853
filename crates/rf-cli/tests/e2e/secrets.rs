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
