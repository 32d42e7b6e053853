//! The workspace of an API key, remembered between commands
//! (`<cache>/rf/api/workspaces.json`): the first command looks it up, the
//! next ones do not; the file never holds the key; a wrong remembered
//! workspace fails one command, which corrects it and says to run again.

use crate::emu::{CANARY, TestEmulator, WORKSPACE};
use crate::util::{Sandbox, run};

#[test]
fn the_workspace_is_looked_up_once_and_a_wrong_one_is_corrected() {
    let emu = TestEmulator::start();
    let sb = Sandbox::new();
    let list = || run(emu.rf(&sb).args(["batch", "list"]));
    let requests = || emu.stats().requests;

    let start = requests();
    list().expect_code(0);
    let first = requests() - start;
    list().expect_code(0);
    let second = requests() - start - first;
    assert_eq!(first, second + 1, "the second command asks no lookup");

    let file = sb.cache().join("rf/api/workspaces.json");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains(WORKSPACE), "{text}");
    assert!(!text.contains(CANARY), "the key is never written: {text}");

    // A workspace the key does not belong to (one renamed, say).
    std::fs::write(&file, text.replace(WORKSPACE, "gone-ws")).unwrap();
    let wrong = list();
    assert!(matches!(wrong.code, Some(3 | 4)), "{}", wrong.stderr);
    let line = wrong.error_line();
    assert!(line.contains("not \"gone-ws\""), "{line}");
    assert!(line.contains("run the command again"), "{line}");
    assert!(!wrong.stderr.contains(CANARY));
    let corrected = std::fs::read_to_string(&file).unwrap();
    assert!(corrected.contains(WORKSPACE) && !corrected.contains("gone-ws"));
    list().expect_code(0);
}

#[test]
fn a_given_workspace_is_not_remembered() {
    let emu = TestEmulator::start();
    let sb = Sandbox::new();
    run(emu
        .rf(&sb)
        .args(["--workspace", WORKSPACE, "batch", "list"]))
    .expect_code(0);
    assert!(!sb.cache().join("rf/api/workspaces.json").exists());
}
