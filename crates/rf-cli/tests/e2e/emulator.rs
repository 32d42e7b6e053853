//! `rf emulator serve`: prints where it listens, serves other `rf`
//! processes, stops on Ctrl-C with exit 0.

use crate::util::{Running, Sandbox, run};

#[test]
fn serves_until_ctrl_c() {
    let sb = Sandbox::new();
    let data = sb.path().join("emulator-data");
    let mut server = Running::spawn(sb.rf().args([
        "emulator",
        "serve",
        "--addr",
        "127.0.0.1:0",
        "--key",
        "serve-key=serve-ws",
        "--data-dir",
        data.to_str().unwrap(),
    ]));
    let line = server.wait_for_stdout("API_BASE_URL=");
    let base_url = line.trim_start_matches("API_BASE_URL=").to_owned();
    server.wait_for_stderr("emulator listening on");

    let list = run(sb
        .rf()
        .env("API_BASE_URL", &base_url)
        .env("ROBOFLOW_API_KEY", "serve-key")
        .args(["--json", "batch", "list"]));
    assert_eq!(list.expect_code(0).json(), serde_json::json!([]));

    server.interrupt();
    let done = server.finish();
    done.expect_code(0);
    // The key given with --key is not echoed.
    assert!(!done.stdout.contains("serve-key"), "{}", done.stdout);
    assert!(!done.stderr.contains("serve-key"), "{}", done.stderr);
    assert!(data.is_dir());
}
