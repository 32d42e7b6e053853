//! A real terminal: `rf` drawn in a pseudo-terminal (util-linux `script`)
//! and its output read back through a VT100 emulator (`vt100`), so the test
//! sees the screen a user sees once the command is over, not the bytes.

use std::path::Path;
use std::process::{Command, Stdio};

/// Screen size of the pseudo-terminal: tall enough that nothing scrolls
/// off, so the screen holds the whole run.
const ROWS: u16 = 80;
const COLS: u16 = 120;

/// Runs `rf args...` in a pseudo-terminal of [`ROWS`]×[`COLS`] with the
/// embedded emulator (data under `home`); returns its exit code and final
/// screen.
fn run_in_terminal(home: &Path, args: &[&str]) -> (i32, String) {
    let quoted: Vec<String> = std::iter::once(env!("CARGO_BIN_EXE_rf"))
        .chain(args.iter().copied())
        .map(|a| format!("'{}'", a.replace('\'', r"'\''")))
        .collect();
    let script = format!("stty rows {ROWS} cols {COLS}; exec {}", quoted.join(" "));
    let output = Command::new("script")
        .args(["-q", "-e", "-c", &script, "/dev/null"])
        .env("HOME", home)
        .env("XDG_CACHE_HOME", home.join("cache"))
        .env("TERM", "xterm-256color")
        .env_remove("ROBOFLOW_API_KEY")
        .env_remove("API_BASE_URL")
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .output()
        .expect("util-linux `script` runs (it gives the test a pseudo-terminal)");
    let mut parser = vt100::Parser::new(ROWS, COLS, 0);
    parser.process(&output.stdout);
    (
        output.status.code().unwrap_or(-1),
        parser.screen().contents(),
    )
}

fn samples() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../../samples/images").to_owned()
}

#[test]
fn every_phase_keeps_its_final_line_on_screen() {
    let home = tempfile::tempdir().unwrap();
    let out = home.path().join("out");
    let out = out.to_str().unwrap();
    let args = [
        "run",
        "--images",
        &samples(),
        "--workflow",
        "image-properties",
        "--out",
        out,
    ];
    let (code, screen) = run_in_terminal(home.path(), &args);
    assert_eq!(code, 0, "{screen}");
    // Each phase's last line, in order, still on the screen at the end.
    let lines: Vec<&str> = screen.lines().map(str::trim).collect();
    let mut at = 0;
    for start in [
        "scan 12 images, 0 videos in ",
        "upload 12 files uploaded (",
        "indexing 12 of 12 items indexed in ",
        "rf: started job job-",
        "job job-",
        "download 1 file (",
        "took ",
    ] {
        let found = lines[at..].iter().position(|l| l.starts_with(start));
        let Some(i) = found else {
            panic!("no line starting {start:?} after line {at} of the screen:\n{screen}");
        };
        at += i + 1;
    }
    // Nothing half-drawn is left: no bar brackets, no spinner.
    assert!(!screen.contains("=>"), "{screen}");
}
