//! `rf emulator serve`: prints where it listens, serves other `rf`
//! processes, stops on Ctrl-C with exit 0; chaos flags and the stats endpoint.

use crate::emu::serve_args;
use crate::util::{Running, Sandbox, get_json, run};

#[test]
fn serves_until_ctrl_c() {
    let sb = Sandbox::new();
    let data = sb.path().join("emulator-data");
    let mut server = Running::spawn(sb.rf().args(serve_args("serve-key=serve-ws", &data)));
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
    // Its own --data-dir: nothing to say about the embedded emulator.
    assert!(
        !done.stderr.contains("embedded emulator's data"),
        "{}",
        done.stderr
    );
    assert!(!done.stderr.contains("serve-key"), "{}", done.stderr);
    assert!(data.is_dir());
}

#[test]
fn chaos_flags_inject_faults_and_the_stats_count_them() {
    let sb = Sandbox::new();
    let data = sb.path().join("emulator-data");
    let mut server = Running::spawn(
        sb.rf()
            .arg("--json")
            .args(serve_args("chaos-key=chaos-ws", &data))
            .args([
                "--chaos-rate",
                "1",
                "--chaos-seed",
                "7",
                "--chaos-kinds",
                "delay",
                "--item-delay-ms",
                "5",
                "--index-delay-ms",
                "0",
            ]),
    );
    let line = server.wait_for_stdout("baseUrl");
    let start: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(
        start["chaos"],
        serde_json::json!({"rate": 1.0, "seed": 7, "kinds": ["delay"]})
    );
    let base_url = start["baseUrl"].as_str().unwrap().to_owned();
    assert_eq!(start["statsUrl"], format!("{base_url}/_emulator/stats"));

    // Every request is delayed, and still answered correctly.
    let list = run(sb
        .rf()
        .env("API_BASE_URL", &base_url)
        .env("ROBOFLOW_API_KEY", "chaos-key")
        .args(["--json", "batch", "list"]));
    assert_eq!(list.expect_code(0).json(), serde_json::json!([]));

    let stats = get_json(&format!("{base_url}/_emulator/stats"));
    let delays = stats["faults"]["delay"].as_u64().unwrap();
    assert!(delays >= 1, "{stats}");
    assert_eq!(stats["requests"].as_u64().unwrap(), delays, "{stats}");
    assert_eq!(stats["faults"]["throttle"], 0, "{stats}");

    server.interrupt();
    server.finish().expect_code(0);
}

#[test]
fn an_unknown_chaos_kind_is_a_usage_error() {
    let sb = Sandbox::new();
    let done = run(sb.rf().args([
        "emulator",
        "serve",
        "--chaos-rate",
        "0.2",
        "--chaos-kinds",
        "throttle,explode",
    ]));
    done.expect_code(2);
    assert!(
        done.stderr.contains("unknown chaos kind"),
        "{}",
        done.stderr
    );
}

#[test]
fn a_busy_address_is_a_clear_error_naming_the_flag() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let sb = Sandbox::new();
    let done = run(sb.rf().args([
        "emulator",
        "serve",
        "--addr",
        &addr,
        "--data-dir",
        sb.path().join("data").to_str().unwrap(),
    ]));
    done.expect_code(1);
    let line = done.error_line();
    assert!(
        line.starts_with(&format!("rf: cannot listen on {addr}: ")),
        "{line}"
    );
    assert!(line.ends_with("; choose another --addr"), "{line}");
    assert!(done.stdout.is_empty(), "{}", done.stdout);
}
