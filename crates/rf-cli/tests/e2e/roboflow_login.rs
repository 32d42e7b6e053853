//! The key `roboflow login` stored: with no `ROBOFLOW_API_KEY`, `rf` reads
//! the official `roboflow` package's config file (and its `API_URL`), and
//! never prints the key it found there.

use crate::emu::{CANARY, TestEmulator, WORKSPACE};
use crate::util::{Sandbox, run};

/// Writes the config file `roboflow login` would leave in the sandbox's
/// home directory for the test emulator's workspace and key.
fn log_in(sb: &Sandbox) {
    let dir = sb.path().join(".config/roboflow");
    std::fs::create_dir_all(&dir).unwrap();
    let config = serde_json::json!({
        "workspaces": {"ws-id": {"url": WORKSPACE, "name": "E2E", "apiKey": CANARY}},
        "RF_WORKSPACE": WORKSPACE,
        "ROBOFLOW_CREDENTIALS_REGION": "us"
    });
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
}

#[test]
fn the_stored_key_and_api_url_reach_the_emulator_and_are_never_printed() {
    let emu = TestEmulator::start();
    let sb = Sandbox::new();
    log_in(&sb);
    let done = run(sb
        .rf()
        .env("API_URL", &emu.base_url)
        .args(["-vv", "--json", "batch", "list"]));
    done.expect_code(0);
    assert!(done.stdout.trim_start().starts_with('['), "{}", done.stdout);
    assert!(!done.stdout.contains(CANARY) && !done.stderr.contains(CANARY));
    // ROBOFLOW_CONFIG_DIR names another file: it is read instead (none
    // there: no key for the URL).
    let done = run(sb
        .rf()
        .env("API_URL", &emu.base_url)
        .env("ROBOFLOW_CONFIG_DIR", sb.path().join("elsewhere.json"))
        .args(["batch", "list"]));
    done.expect_code(3);
    assert!(
        done.error_line().contains("roboflow login"),
        "{}",
        done.stderr
    );
}
