//! Crashes: an emulator process killed with SIGKILL (`kill -9`) loses
//! nothing it acknowledged. The server is this test binary run again as
//! [`serve_for_crash_test`] on a data dir; the tests upload to it, kill
//! it, and open the data dir in process to check.

use std::io::BufRead as _;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use super::*;

/// The data dir of the server process (set for it only).
const CHILD_DIR: &str = "RF_EMULATOR_CRASH_CHILD_DIR";
/// Its indexing delay in milliseconds.
const CHILD_INDEX_DELAY: &str = "RF_EMULATOR_CRASH_CHILD_INDEX_DELAY_MS";
/// Its pause before a webhook's second attempt, in milliseconds.
const CHILD_WEBHOOK_BACKOFF: &str = "RF_EMULATOR_CRASH_CHILD_WEBHOOK_BACKOFF_MS";

/// The server process of the crash tests (does nothing when run on its
/// own): serves the data dir of [`CHILD_DIR`] and prints its address.
#[test]
#[ignore = "the crash tests run it as their server process"]
fn serve_for_crash_test() {
    let Some(dir) = std::env::var_os(CHILD_DIR) else {
        return;
    };
    let millis = |var: &str, default: u64| {
        std::env::var(var)
            .ok()
            .and_then(|v| v.parse().ok())
            .map_or(Duration::from_millis(default), Duration::from_millis)
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut config = EmulatorConfig::for_tests().with_data_dir(&dir);
        config.index_delay = millis(CHILD_INDEX_DELAY, 0);
        config.webhooks.initial_backoff = millis(CHILD_WEBHOOK_BACKOFF, 10);
        let emu = Emulator::start(config, "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        println!("LISTENING {}", emu.base_url());
        std::future::pending::<()>().await;
    });
}

/// A server process and its base URL.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn spawn(dir: &std::path::Path, index_delay_ms: u64) -> Server {
        Self::spawn_with(dir, index_delay_ms, 10)
    }

    fn spawn_with(dir: &std::path::Path, index_delay_ms: u64, webhook_backoff_ms: u64) -> Server {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["crash::serve_for_crash_test", "--exact", "--ignored"])
            .args(["--nocapture", "--test-threads=1"])
            .env(CHILD_DIR, dir)
            .env(CHILD_INDEX_DELAY, index_delay_ms.to_string())
            .env(CHILD_WEBHOOK_BACKOFF, webhook_backoff_ms.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let out = std::io::BufReader::new(child.stdout.take().unwrap());
        let base = out
            .lines()
            .map_while(Result::ok)
            .find_map(|l| {
                l.split_once("LISTENING ")
                    .map(|(_, url)| url.trim().to_string())
            })
            .expect("the server process did not start");
        Server { child, base }
    }

    fn ds(&self, path: &str) -> String {
        format!("{}data-staging/v1/external/test-ws/{path}", self.base)
    }

    /// SIGKILL, then reap.
    fn kill_9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().no_proxy().build().unwrap()
}

async fn upload(http: &reqwest::Client, server: &str, name: &str, bytes: Vec<u8>) -> bool {
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(bytes).file_name(name.to_string()),
    );
    let sent = http
        .post(server)
        .query(&[("api_key", "test-key"), ("fileName", name)])
        .multipart(form)
        .send()
        .await;
    sent.is_ok_and(|r| r.status() == StatusCode::OK)
}

#[tokio::test]
async fn every_acknowledged_upload_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::spawn(dir.path(), 0);
    let http = client();
    let url = server.ds("batches/crash/upload/image");
    let acked = Arc::new(Mutex::new(Vec::new()));
    // Eight uploaders; the kill lands while they are busy.
    let mut tasks = Vec::new();
    for t in 0..8u8 {
        let (http, url, acked) = (http.clone(), url.clone(), acked.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..100u8 {
                let name = format!("{t}-{i}.png");
                if !upload(
                    &http,
                    &url,
                    &name,
                    png(2, 2, t.wrapping_mul(100).wrapping_add(i)),
                )
                .await
                {
                    return;
                }
                acked
                    .lock()
                    .unwrap()
                    .push((name, t.wrapping_mul(100).wrapping_add(i)));
            }
        }));
    }
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while acked.lock().unwrap().len() < 40 {
        assert!(tokio::time::Instant::now() < deadline, "uploads stalled");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.kill_9();
    for t in tasks {
        t.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    let env = start_with(EmulatorConfig::for_tests().with_data_dir(dir.path())).await;
    let (_, list) = env
        .get(&env.ds("batches/crash/list"), &[("pageSize", "1000")])
        .await;
    let urls: BTreeMap<String, String> = list["filesMetadata"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["fileName"].as_str().unwrap().to_string(),
                f["downloadURL"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for (name, seed) in &acked {
        let url = urls
            .get(name)
            .unwrap_or_else(|| panic!("acknowledged {name} lost ({} acknowledged)", acked.len()));
        let (s, bytes) = env.download(url).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(bytes, png(2, 2, *seed), "{name}");
    }
    env.emu.shutdown().await;
}

#[tokio::test]
async fn acknowledged_shards_get_indexed_after_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    // Indexing an hour away: the kill always comes first.
    let server = Server::spawn(dir.path(), 3_600_000);
    let http = client();
    for s in 0..3u8 {
        let r: Value = http
            .post(server.ds("batches/crash-sh/bulk-upload/image-files"))
            .query(&[("api_key", "test-key")])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let (url, headers) = support::signed_url_details(&r);
        let tar = tar_of(&[
            (format!("{s}-a.png"), png(2, 2, s)),
            (format!("{s}-b.png"), png(3, 3, s)),
        ]);
        let mut req = http.put(url).body(tar);
        for (k, v) in &headers {
            req = req.header(k, v);
        }
        assert_eq!(req.send().await.unwrap().status(), StatusCode::OK);
    }
    server.kill_9();
    let env = start_with(EmulatorConfig::for_tests().with_data_dir(dir.path())).await;
    env.wait_count("crash-sh", 6).await;
    let (_, shards) = env.get(&env.ds("batches/crash-sh/shards"), &[]).await;
    for s in shards["shards"].as_array().unwrap() {
        assert_eq!(s["statusName"], "shard-ingested", "{s}");
    }
    env.emu.shutdown().await;
}

/// A file server that holds every connection unanswered until `serve` is
/// set, then answers each request with `body` (a PNG).
async fn held_then_served(
    serve: Arc<std::sync::atomic::AtomicBool>,
    body: Vec<u8>,
) -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut c, _)) = listener.accept().await {
            if !serve.load(std::sync::atomic::Ordering::SeqCst) {
                held.push(c);
                continue;
            }
            let body = body.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = c.read(&mut buf).await;
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: image/png\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = c.write_all(head.as_bytes()).await;
                let _ = c.write_all(&body).await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn a_reference_ingest_cut_off_by_kill_9_is_resumed_after_restart() {
    let serve = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let files = held_then_served(serve.clone(), png(2, 2, 7)).await;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::spawn(dir.path(), 0);
    let http = client();
    let body = json!({
        "imageReferences": [{"name": "a.png", "url": format!("http://{files}/a.png")}],
        "ingestId": "cut-1"
    });
    let r = http
        .post(server.ds("batches/cut/bulk-upload/image-references"))
        .query(&[("api_key", "test-key")])
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // Killed while the fetch hangs; the file is there after the restart.
    server.kill_9();
    serve.store(true, std::sync::atomic::Ordering::SeqCst);
    let env = start_with(EmulatorConfig::for_tests().with_data_dir(dir.path())).await;
    env.wait_count("cut", 1).await;
    let (_, shards) = env.get(&env.ds("batches/cut/shards"), &[]).await;
    assert_eq!(
        shards["shards"][0]["statusName"], "shard-ingested",
        "{shards}"
    );
    // The same request again is the same ingest: answered as a duplicate.
    let (st, b) = env
        .post(
            &env.ds("batches/cut/bulk-upload/image-references"),
            &[],
            Some(body),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    assert_eq!(b["duplicated"], true, "{b}");
    env.emu.shutdown().await;
}

#[tokio::test]
async fn a_webhook_cut_off_by_kill_9_is_delivered_after_restart() {
    // The receiver refuses the first call; the server then waits an hour
    // before its second attempt, and is killed meanwhile.
    let (rx, hook) = Receiver::start(1).await;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::spawn_with(dir.path(), 0, 3_600_000);
    let http = client();
    assert!(
        upload(
            &http,
            &server.ds("batches/hooked/upload/image"),
            "a.png",
            png(2, 2, 1)
        )
        .await
    );
    let mut job = image_job("hooked", "image-properties", "jsonl");
    job["notificationsURL"] = json!(hook);
    let url = format!(
        "{}batch-processing/v1/external/test-ws/jobs/hooked-job",
        server.base
    );
    let r = http
        .post(url)
        .query(&[("api_key", "test-key")])
        .json(&job)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let first = rx.wait_for(|c| !c.is_empty()).await;
    server.kill_9();
    let env = start_with(EmulatorConfig::for_tests().with_data_dir(dir.path())).await;
    let calls = rx.wait_for(|c| c.len() >= 2).await;
    assert_eq!(calls[1].1["job_id"], "hooked-job");
    assert_eq!(calls[1].1["job_state"], "success");
    assert_eq!(
        calls[1].1["event_id"], first[0].1["event_id"],
        "the same notification"
    );
    env.emu.shutdown().await;
}
