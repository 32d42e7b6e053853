//! Version, help, completions and usage errors: no API involved.

use crate::util::{Sandbox, run};

#[test]
fn version_prints_the_crate_version() {
    let sb = Sandbox::new();
    let done = run(sb.rf().arg("--version"));
    done.expect_code(0);
    assert_eq!(
        done.stdout.trim(),
        format!("rf {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn help_lists_every_command_and_the_exit_codes() {
    let sb = Sandbox::new();
    let done = run(sb.rf().arg("--help"));
    done.expect_code(0);
    for word in [
        "run",
        "batch",
        "job",
        "emulator",
        "webhook",
        "completions",
        "ROBOFLOW_API_KEY",
        "API_BASE_URL",
        "130 interrupted",
    ] {
        assert!(done.stdout.contains(word), "help lacks {word:?}");
    }
}

#[test]
fn completions_are_generated_for_each_shell() {
    let sb = Sandbox::new();
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef rf"),
        ("fish", "complete -c rf"),
    ] {
        let done = run(sb.rf().args(["completions", shell]));
        done.expect_code(0);
        assert!(done.stdout.contains(marker), "{shell}: no {marker:?}");
        assert!(done.stdout.contains("max-image-failure-rate"), "{shell}");
        assert!(done.stderr.is_empty(), "{shell}: {}", done.stderr);
    }
}

#[test]
fn usage_errors_exit_2() {
    let sb = Sandbox::new();
    // Missing required options.
    run(sb.rf().args(["run", "--images", "x"])).expect_code(2);
    // Unknown shell, out-of-range rate, both sources.
    run(sb.rf().args(["completions", "powershell"])).expect_code(2);
    let done = run(sb.rf().args([
        "job",
        "start",
        "--batch-id",
        "b",
        "--workflow",
        "w",
        "--max-image-failure-rate",
        "2",
    ]));
    done.expect_code(2);
    assert!(done.stderr.contains("0.0 to 1.0"), "{}", done.stderr);
    run(sb.rf().args([
        "run",
        "--images",
        "a",
        "--videos",
        "b",
        "--workflow",
        "w",
        "--out",
        "o",
    ]))
    .expect_code(2);
}

#[test]
fn api_url_without_key_is_an_auth_error() {
    let sb = Sandbox::new();
    let done = run(sb
        .rf()
        .args(["batch", "list"])
        .env("API_BASE_URL", "http://127.0.0.1:9"));
    done.expect_code(3);
    assert!(
        done.error_line().contains("ROBOFLOW_API_KEY"),
        "{}",
        done.stderr
    );
}

#[test]
fn closed_stdout_is_not_an_error() {
    use std::process::Stdio;
    let sb = Sandbox::new();
    // Close the read end before the child writes its (large) script.
    let mut child = sb
        .rf()
        .args(["completions", "zsh"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let done = crate::util::Done::from_output(child.wait_with_output().unwrap());
    done.expect_code(0);
    assert!(!done.stderr.contains("panicked"), "{}", done.stderr);
}
