//! Request limits: connections that never finish their headers (or never
//! send their opening bytes) are closed,
//! bodies are bounded per endpoint (`413` past the limit), a TRT job's
//! device list is de-duplicated and bounded, and file names that would
//! print as something else (control and bidirectional characters) or are
//! too long are refused with their reason.

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::*;

/// Opens a connection to an emulator with a 300 ms header-read timeout for
/// each of `openings`, sends it, and asserts that the server closes every
/// one within [`DEADLINE`] (a read ends: EOF, a reset, or a 408 answer then
/// EOF), then still answers a whole request.
async fn assert_stalled_openings_are_closed(openings: &[&[u8]], why: &str) {
    let mut config = EmulatorConfig::for_tests();
    config.header_read_timeout = Duration::from_millis(300);
    let env = start_with(config).await;
    let addr = env.emu.local_addr();
    let mut held = Vec::new();
    for opening in openings {
        let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        tcp.write_all(opening).await.unwrap();
        held.push(tcp);
    }
    let mut buf = [0u8; 1024];
    for mut tcp in held {
        let closed = tokio::time::timeout(DEADLINE, async {
            loop {
                match tcp.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        })
        .await;
        assert!(closed.is_ok(), "{why}");
    }
    let (s, _) = env.get(&env.base(), &[]).await;
    assert_eq!(s, StatusCode::OK, "the server still answers whole requests");
    env.emu.shutdown().await;
}

#[tokio::test]
async fn connections_that_never_finish_their_headers_are_closed() {
    let half_request: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ";
    assert_stalled_openings_are_closed(&[half_request; 50], "a half-sent request was held open")
        .await;
}

#[tokio::test]
async fn connections_that_send_nothing_or_half_a_preface_are_closed() {
    let silent: &[u8] = b"";
    let half_preface: &[u8] = b"PRI * HTTP/2.0\r\n";
    let openings: Vec<&[u8]> = [[silent; 10], [half_preface; 10]].concat();
    assert_stalled_openings_are_closed(&openings, "a silent connection was held open").await;
}

/// POSTs `body` raw to `url` and returns the status and error message.
async fn post_raw(env: &support::Env, url: &str, body: Vec<u8>) -> (StatusCode, String) {
    let r = env
        .http
        .post(url)
        .query(&[("api_key", "test-key"), ("fileName", "a.png")])
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    (status, v["error"].as_str().unwrap_or("").to_string())
}

#[tokio::test]
async fn bodies_past_their_endpoint_limit_get_a_413_naming_it() {
    let env = start().await;
    env.upload_image("lim", "a.png", png(2, 2, 1), "file").await;
    // A job definition is at most 1 MiB: a 2 MiB one is refused, not stored.
    let mut job = image_job("lim", "image-properties", "jsonl");
    job["padding"] = json!("x".repeat(2 * 1024 * 1024));
    let (s, e) = post_raw(&env, &env.bp("jobs/big"), serde_json::to_vec(&job).unwrap()).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{e}");
    assert!(e.contains("job definition") && e.contains("1048576"), "{e}");
    assert_eq!(
        env.get(&env.bp("jobs/big"), &[]).await.0,
        StatusCode::NOT_FOUND
    );
    // A restart body is at most 64 KiB.
    let (s, e) = post_raw(&env, &env.bp("jobs/big/restart"), vec![b' '; 100_000]).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{e}");
    assert!(e.contains("restart"), "{e}");
    // A single-image upload is at most one image and its framing: a huge
    // text field before the file part is refused with 413.
    let form = reqwest::multipart::Form::new()
        .text("note", "y".repeat(22 * 1024 * 1024))
        .part(
            "file",
            reqwest::multipart::Part::bytes(png(1, 1, 1)).file_name("b.png"),
        );
    let r = env
        .http
        .post(env.ds("batches/lim/upload/image"))
        .query(&[("api_key", "test-key"), ("fileName", "b.png")])
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let v: Value = r.json().await.unwrap();
    assert!(v["error"].as_str().unwrap().contains("image upload"), "{v}");
    // A normal job still goes through.
    let (s, b) = env
        .post(
            &env.bp("jobs/ok"),
            &[],
            Some(image_job("lim", "image-properties", "jsonl")),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    env.emu.shutdown().await;
}

#[tokio::test]
async fn trt_devices_are_deduplicated_and_bounded() {
    let env = start().await;
    let devices: Vec<&str> = std::iter::repeat_n("nvidia-t4", 20_000)
        .chain(std::iter::repeat_n("nvidia-l4", 20_000))
        .collect();
    let trt =
        json!({"type": "trt-compilation-v1", "modelId": "p/3", "compilationDevices": devices});
    let (s, b) = env.post(&env.bp("jobs/trt-dup"), &[], Some(trt)).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    env.wait_job("trt-dup").await;
    let (_, stages) = env.get(&env.bp("jobs/trt-dup/stages"), &[]).await;
    assert_eq!(stages["stages"][0]["tasksNumber"], 2, "{stages}");
    let many: Vec<String> = (0..17).map(|i| format!("gpu-{i}")).collect();
    let trt = json!({"type": "trt-compilation-v1", "modelId": "p/3", "compilationDevices": many});
    let (s, b) = env.post(&env.bp("jobs/trt-many"), &[], Some(trt)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    let e = b["error"].as_str().unwrap();
    assert!(
        e.contains("compilationDevices") && e.contains("17 distinct"),
        "{e}"
    );
    env.emu.shutdown().await;
}

#[tokio::test]
async fn names_with_control_or_bidi_characters_or_over_255_bytes_are_refused_with_their_reason() {
    let env = start().await;
    let refused = |name: String, want: &'static str| {
        let env = &env;
        async move {
            let (s, b) = env.upload_image("names", &name, png(1, 1, 1), "file").await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{name:?}: {b}");
            let e = b["error"].as_str().unwrap().to_string();
            assert!(e.contains(want), "{name:?}: {e}");
        }
    };
    refused("a\r\nX-Injected: 1.png".into(), "control character U+000D").await;
    refused("a\nb.png".into(), "control character U+000A").await;
    refused(
        "invoice\u{202E}gnp.exe.png".into(),
        "bidirectional control character U+202E",
    )
    .await;
    refused(
        "a\u{2066}b.png".into(),
        "bidirectional control character U+2066",
    )
    .await;
    refused(
        format!("{}.png", "a".repeat(252)),
        "256 bytes long; at most 255",
    )
    .await;
    // 255 bytes is the longest name a file system takes: accepted.
    let longest = format!("{}.png", "a".repeat(251));
    let (s, b) = env
        .upload_image("names", &longest, png(1, 1, 1), "file")
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    // The same rules hold for shard members and video names.
    env.put_shard(
        "names-sh",
        tar_of(&[("ok.png", png(1, 1, 2)), ("b\u{202E}.png", png(1, 1, 3))]),
    )
    .await;
    env.wait_count("names-sh", 1).await;
    let (s, b) = env
        .post(
            &env.ds("batches/v/upload/video"),
            &[("fileName", "a\rb.mp4")],
            None,
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    env.emu.shutdown().await;
}
