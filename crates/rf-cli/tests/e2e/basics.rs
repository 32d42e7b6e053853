//! Version, help, completions and usage errors: no API involved.

use crate::util::{Sandbox, run};

#[test]
fn version_prints_the_crate_version_and_the_commit() {
    let sb = Sandbox::new();
    let done = run(sb.rf().arg("--version"));
    done.expect_code(0);
    let line = done.stdout.trim();
    let rest = line
        .strip_prefix(&format!("rf {}", env!("CARGO_PKG_VERSION")))
        .unwrap_or_else(|| panic!("not the crate version: {line}"));
    // Built from a git checkout (as the tests are, when git is installed):
    // " (<short hash>)" or " (<short hash>-dirty)".
    if let Some(commit) = rest.strip_prefix(" (").and_then(|r| r.strip_suffix(')')) {
        let hash = commit.strip_suffix("-dirty").unwrap_or(commit);
        assert!(
            hash.len() >= 7 && hash.chars().all(|c| c.is_ascii_hexdigit()),
            "{line}"
        );
    } else {
        assert_eq!(rest, "", "{line}");
    }
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
