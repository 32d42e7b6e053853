//! A real terminal: `rf` drawn in a pseudo-terminal (util-linux `script`)
//! and its output read back through a VT100 emulator (`vt100`), so the test
//! sees the screen a user sees once the command is over, not the bytes.

use std::process::{Command, Stdio};

use crate::emu::samples;
use crate::util::{Sandbox, path_arg, rf_binary, run_args};

/// Screen height of the pseudo-terminal: tall enough that nothing scrolls
/// off, so the screen holds the whole run.
const ROWS: u16 = 80;
/// A wide terminal.
const COLS: u16 = 120;

/// What a command left in a terminal.
struct Terminal {
    code: i32,
    /// The final screen, as a VT100 terminal shows it.
    screen: String,
    /// What the command wrote, as text (line ends are `\r\n`).
    raw: String,
}

/// Runs `rf args...` in a pseudo-terminal of [`ROWS`]×`cols` with the
/// embedded emulator (data under the sandbox); returns its exit code and
/// final screen.
fn run_in_terminal<S: AsRef<str>>(sb: &Sandbox, args: &[S]) -> (i32, String) {
    let t = terminal(sb, COLS, args);
    (t.code, t.screen)
}

/// `rf args...` run by util-linux `script` in a pseudo-terminal, with the
/// sandbox's environment (as [`Sandbox::rf`], but in colour on a terminal).
fn terminal<S: AsRef<str>>(sb: &Sandbox, cols: u16, args: &[S]) -> Terminal {
    let binary = path_arg(rf_binary());
    let quoted: Vec<String> = std::iter::once(binary.as_str())
        .chain(args.iter().map(AsRef::as_ref))
        .map(|a| format!("'{}'", a.replace('\'', r"'\''")))
        .collect();
    let script = format!("stty rows {ROWS} cols {cols}; exec {}", quoted.join(" "));
    let mut cmd = Command::new("script");
    let output = sb
        .isolate(&mut cmd)
        .args(["-q", "-e", "-c", &script, "/dev/null"])
        .env("TERM", "xterm-256color")
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .output()
        .expect("util-linux `script` runs (it gives the test a pseudo-terminal)");
    let mut parser = vt100::Parser::new(ROWS, cols, 0);
    parser.process(&output.stdout);
    Terminal {
        code: output.status.code().unwrap_or(-1),
        screen: parser.screen().contents(),
        raw: String::from_utf8_lossy(&output.stdout).into_owned(),
    }
}

#[test]
fn every_phase_keeps_its_final_line_on_screen() {
    let sb = Sandbox::new();
    let args = run_args(&samples(), "image-properties", &sb.path().join("out"));
    let (code, screen) = run_in_terminal(&sb, &args);
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

#[test]
fn help_is_wrapped_to_a_narrow_terminal() {
    let sb = Sandbox::new();
    for args in [
        &["run", "--help"][..],
        &["batch", "ingest", "--help"],
        &["--help"],
    ] {
        let t = terminal(&sb, 60, args);
        assert_eq!(t.code, 0, "{}", t.screen);
        // Wrapped by rf at word boundaries, not by the terminal mid-word
        // (clap keeps the usage line whole).
        let text = strip_styles(&t.raw);
        let long: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with("Usage:") && l.trim_end().chars().count() > 60)
            .collect();
        assert!(
            long.is_empty(),
            "{args:?}: lines wider than 60 columns: {long:#?}"
        );
    }
}

#[test]
fn commands_that_call_no_api_do_not_offer_api_options() {
    let sb = Sandbox::new();
    for args in [
        &["completions", "--help"][..],
        &["webhook", "listen", "--help"],
        &["emulator", "serve", "--help"],
    ] {
        let t = terminal(&sb, COLS, args);
        assert_eq!(t.code, 0, "{}", t.screen);
        for option in [
            "--api-key",
            "--api-url",
            "--workspace",
            "--concurrency",
            "--timeout",
        ] {
            assert!(
                !t.screen.contains(option),
                "{args:?} offers {option}:\n{}",
                t.screen
            );
        }
        assert!(t.screen.contains("--json"), "{}", t.screen);
    }
    let t = terminal(&sb, COLS, &["batch", "list", "--help"]);
    assert!(t.screen.contains("--api-key"), "{}", t.screen);
}

/// `text` without its SGR escape sequences (`ESC [ ... m`).
fn strip_styles(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            chars.by_ref().find(|&c| c == 'm');
        } else {
            out.push(c);
        }
    }
    out
}
