//! One emulator per data directory: an embedded-mode `rf` or `rf emulator
//! serve` refused a directory another emulator holds names the holder and
//! what to do, and gets it once the holder is gone; `rf emulator serve` on
//! the embedded directory shows what embedded runs did.

use crate::emu::{TestEmulator, samples};
use crate::util::{Running, Sandbox, run, run_args};

#[test]
fn embedded_rf_is_refused_while_a_server_holds_its_data_and_pointed_at_it() {
    let sb = Sandbox::new();
    // A run in embedded mode first, so the directory has something to show.
    let out = sb.path().join("out");
    run(sb
        .rf()
        .args(run_args(&samples(), "image-properties", &out))
        .args(["--batch-id", "before-serve"]))
    .expect_code(0);

    // `rf emulator serve` on the embedded directory (its default).
    let mut server = Running::spawn(sb.rf().args(["emulator", "serve", "--addr", "127.0.0.1:0"]));
    let url = server
        .wait_for_stdout("API_BASE_URL=")
        .trim_start_matches("API_BASE_URL=")
        .to_owned();
    let key = server
        .wait_for_stdout("ROBOFLOW_API_KEY=")
        .trim_start_matches("ROBOFLOW_API_KEY=")
        .to_owned();
    server.wait_for_stderr("emulator listening on");
    server.wait_for_stderr("this is the embedded emulator's data");
    let pid = server.child.id();

    // An embedded-mode command is refused, told who holds the data and how
    // to reach that server instead.
    let refused = run(sb.rf().args(["batch", "list"]));
    refused.expect_code(1);
    let line = refused.error_line();
    let data = sb.cache().join("rf/emulator");
    assert!(
        line.contains(&format!(
            "the embedded emulator's data directory {} is in use by rf emulator serve (pid {pid})",
            data.display()
        )),
        "{line}"
    );
    assert!(line.contains(&format!("API_BASE_URL={url}")), "{line}");
    assert!(
        !line.contains(&key),
        "the server's key is not repeated: {line}"
    );
    assert_eq!(
        refused
            .stderr
            .lines()
            .filter(|l| l.starts_with("rf: "))
            .count(),
        1,
        "one line:\n{}",
        refused.stderr
    );

    // A second server on the same directory is refused too.
    let second = run(sb.rf().args(["emulator", "serve", "--addr", "127.0.0.1:0"]));
    second.expect_code(1);
    assert!(
        second.error_line().contains(&format!(
            "is in use by rf emulator serve (pid {pid}, serving {url}/)"
        )),
        "{}",
        second.stderr
    );
    assert!(second.stdout.is_empty(), "{}", second.stdout);

    // Following the advice works: the server shows the embedded run's batch.
    let listed = run(sb
        .rf()
        .env("API_BASE_URL", &url)
        .env("ROBOFLOW_API_KEY", &key)
        .args(["--json", "batch", "show", "before-serve"]));
    assert_eq!(listed.expect_code(0).json()["batchId"], "before-serve");

    // Once the server stops, embedded mode gets the directory back.
    server.interrupt();
    server.finish().expect_code(0);
    let after = run(sb.rf().args(["--json", "batch", "show", "before-serve"]));
    assert_eq!(after.expect_code(0).json()["batchId"], "before-serve");
}

#[test]
fn embedded_rf_is_refused_while_another_embedded_rf_holds_its_data() {
    let sb = Sandbox::new();
    let data = sb.cache().join("rf/emulator");
    // Another `rf run` in embedded mode, as far as the data directory can
    // tell: an emulator holding it under that name.
    let holder = TestEmulator::with(|c| c.with_data_dir(&data).with_owner("rf run"));
    let refused = run(sb.rf().args(run_args(
        &samples(),
        "image-properties",
        &sb.path().join("out"),
    )));
    refused.expect_code(1);
    let line = refused.error_line();
    assert!(
        line.contains(&format!(
            "is in use by rf run (pid {}); wait for it to finish, or, to run several commands at once, start `rf emulator serve`",
            std::process::id()
        )),
        "{line}"
    );
    // Nothing was done: no output directory, no upload.
    assert!(!sb.path().join("out").exists());
    drop(holder);
    run(sb.rf().args(["batch", "list"])).expect_code(0);
}

#[test]
fn the_same_run_started_twice_is_refused_naming_the_first() {
    // A job slow enough that the first run is still waiting for it.
    let emu = TestEmulator::slow(std::time::Duration::from_secs(2));
    let sb = Sandbox::new();
    let out = sb.path().join("out");
    let images = samples();
    let mut args = run_args(&images, "image-properties", &out);
    args.extend(["--batch-id", "twice"].map(String::from));
    let mut first = Running::spawn(emu.rf(&sb).args(&args));
    first.wait_for_stderr("started job");
    let second = run(emu.rf(&sb).args(&args));
    second.expect_code(1);
    assert_eq!(
        second.error_line(),
        format!(
            "rf: --out {} is in use by rf run (pid {}); wait for it to finish, or use another --out",
            out.display(),
            first.child.id()
        )
    );
    // An export into the same directory is refused the same way.
    let export =
        run(emu
            .rf(&sb)
            .args(["batch", "export", "twice", "--out", out.to_str().unwrap()]));
    export.expect_code(1);
    assert!(
        export
            .error_line()
            .contains(&format!("is in use by rf run (pid {})", first.child.id())),
        "{}",
        export.stderr
    );
    first.interrupt();
    first.finish().expect_code(130);
}
