//! The emulator half of `cargo xtask soak`: `rf emulator serve` is killed
//! with SIGKILL at a random moment while clients upload to it (single
//! images and tar shards), restarted on the same data dir, and checked:
//!
//! - every acknowledged upload is present after restart (listed, with its
//!   bytes);
//! - every acknowledged shard gets indexed (its files listed).
//!
//! `--emulator-kills N` (20) sets the number of kills; the delays come
//! from the soak's first seed.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::ServerGuard;
use crate::bench_data::Rng;

const KEY: &str = "crash-key";
const IMAGES: &str = "crash-img";
const SHARDS: &str = "crash-sh";
/// Images per shard.
const PER_SHARD: usize = 5;
/// How long acknowledged shards may take to be indexed after a restart.
const INDEX_DEADLINE: Duration = Duration::from_secs(60);

/// What was acknowledged so far: single uploads (name, sample index) and
/// shards (their file names).
#[derive(Debug, Default)]
struct Acked {
    images: Vec<(String, usize)>,
    shards: Vec<Vec<String>>,
}

/// A running `rf emulator serve` and its base URL.
struct Server {
    guard: Mutex<ServerGuard>,
    base: String,
    agent: ureq::Agent,
}

impl Server {
    fn start(rf: &Path, data: &Path) -> Result<Server, String> {
        let mut command = Command::new(rf);
        command
            .args(["--json", "emulator", "serve", "--addr", "127.0.0.1:0"])
            .args(["--key", &format!("{KEY}=crash-ws")])
            .arg("--data-dir")
            .arg(data)
            .args(["--index-delay-ms", "20"]);
        let (guard, base) = crate::serve_json(command)?;
        let base = base.trim_end_matches('/').to_owned();
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .proxy(None)
            .build()
            .into();
        Ok(Server {
            guard: Mutex::new(guard),
            base,
            agent,
        })
    }

    fn ds(&self, batch: &str, rest: &str) -> String {
        format!(
            "{}/data-staging/v1/external/crash-ws/batches/{batch}/{rest}",
            self.base
        )
    }

    /// SIGKILL, then reap.
    fn kill_9(&self) {
        let mut guard = self.guard.lock().unwrap_or_else(|p| p.into_inner());
        let _ = guard.0.kill();
        let _ = guard.0.wait();
    }
}

/// A GET's JSON body (status 200 only).
fn get_json(agent: &ureq::Agent, url: &str) -> Result<serde_json::Value, String> {
    let mut r = agent.get(url).call().map_err(|e| format!("GET: {e}"))?;
    let body = r.body_mut().read_to_string().map_err(|e| e.to_string())?;
    if r.status().as_u16() != 200 {
        return Err(format!("GET {}: {body}", r.status()));
    }
    serde_json::from_str(&body).map_err(|e| e.to_string())
}

/// One single-image upload; true when acknowledged (200).
fn upload_image(s: &Server, name: &str, bytes: &[u8]) -> bool {
    let boundary = "soakboundary7d1f";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let url = format!(
        "{}?api_key={KEY}&fileName={name}",
        s.ds(IMAGES, "upload/image")
    );
    s.agent
        .post(&url)
        .header(
            "content-type",
            &format!("multipart/form-data; boundary={boundary}"),
        )
        .send(&body[..])
        .is_ok_and(|r| r.status().as_u16() == 200)
}

/// One shard upload (signed URL, then PUT); true when acknowledged.
fn upload_shard(s: &Server, names: &[String], samples: &[Vec<u8>]) -> Result<bool, String> {
    let mut tar = tar::Builder::new(Vec::new());
    for (i, name) in names.iter().enumerate() {
        let data = &samples[i % samples.len()];
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, name, &data[..])
            .map_err(|e| e.to_string())?;
    }
    let tar = tar.into_inner().map_err(|e| e.to_string())?;
    let Ok(mut r) = s
        .agent
        .post(&format!(
            "{}?api_key={KEY}",
            s.ds(SHARDS, "bulk-upload/image-files")
        ))
        .send_empty()
    else {
        return Ok(false);
    };
    let Ok(text) = r.body_mut().read_to_string() else {
        return Ok(false);
    };
    let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
        return Ok(false);
    };
    let d = &v["signedURLDetails"];
    let mut put = s.agent.put(d["uploadURL"].as_str().unwrap_or_default());
    if let Some(h) = d["extensionHeaders"].as_object() {
        for (k, v) in h {
            put = put.header(k, v.as_str().unwrap_or_default());
        }
    }
    Ok(put.send(&tar[..]).is_ok_and(|r| r.status().as_u16() == 200))
}

/// Every file of a batch: name -> download URL.
fn listing(s: &Server, batch: &str) -> Result<BTreeMap<String, String>, String> {
    let mut all = BTreeMap::new();
    let mut token = String::new();
    loop {
        let mut url = format!("{}?api_key={KEY}&pageSize=10000", s.ds(batch, "list"));
        if !token.is_empty() {
            url.push_str(&format!("&nextPageToken={token}"));
        }
        let v = match get_json(&s.agent, &url) {
            Ok(v) => v,
            // Not created yet: nothing acknowledged in it.
            Err(e) if e.contains("404") => return Ok(all),
            Err(e) => return Err(e),
        };
        for f in v["filesMetadata"].as_array().into_iter().flatten() {
            let name = f["fileName"].as_str().unwrap_or_default().to_string();
            let url = f["downloadURL"].as_str().unwrap_or_default().to_string();
            all.insert(name, url);
        }
        match v["nextPageToken"].as_str() {
            Some(t) if !t.is_empty() => token = t.to_string(),
            _ => return Ok(all),
        }
    }
}

/// After a restart: every acknowledged upload is listed (the `check_bytes`
/// last ones also downloaded and compared) and every acknowledged shard's
/// files show up (polled: indexing resumes in the background).
fn check(s: &Server, acked: &Acked, samples: &[Vec<u8>], check_bytes: usize) -> Result<(), String> {
    let images = listing(s, IMAGES)?;
    for (i, (name, sample)) in acked.images.iter().enumerate() {
        let url = images
            .get(name)
            .ok_or_else(|| format!("acknowledged upload {name} is missing after restart"))?;
        if i + check_bytes >= acked.images.len() {
            let mut r = s.agent.get(url).call().map_err(|e| e.to_string())?;
            let bytes = r.body_mut().read_to_vec().map_err(|e| e.to_string())?;
            if bytes != samples[*sample] {
                return Err(format!(
                    "acknowledged upload {name} has other bytes after restart"
                ));
            }
        }
    }
    let deadline = Instant::now() + INDEX_DEADLINE;
    loop {
        let files = listing(s, SHARDS)?;
        let missing = acked
            .shards
            .iter()
            .flatten()
            .find(|n| !files.contains_key(*n));
        match missing {
            None => return Ok(()),
            Some(n) if Instant::now() > deadline => {
                return Err(format!(
                    "acknowledged shard file {n} never indexed after restart"
                ));
            }
            Some(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// Uploads from a few threads until the server dies; what was acknowledged
/// goes into `acked`.
fn load(
    s: &Arc<Server>,
    round: u64,
    samples: &Arc<Vec<Vec<u8>>>,
    acked: &Arc<Mutex<Acked>>,
    stop: &Arc<AtomicBool>,
) -> Vec<std::thread::JoinHandle<()>> {
    let mut threads = Vec::new();
    for t in 0..4usize {
        let (s, samples, acked, stop) = (s.clone(), samples.clone(), acked.clone(), stop.clone());
        threads.push(std::thread::spawn(move || {
            let mut i = 0usize;
            while !stop.load(Ordering::Relaxed) {
                if t == 3 {
                    let names: Vec<String> = (0..PER_SHARD)
                        .map(|k| format!("r{round}-s{i}-{k}.jpg"))
                        .collect();
                    if !upload_shard(&s, &names, &samples).unwrap_or(false) {
                        return;
                    }
                    acked
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .shards
                        .push(names);
                } else {
                    let sample = (t + i) % samples.len();
                    let name = format!("r{round}-t{t}-{i}.jpg");
                    if !upload_image(&s, &name, &samples[sample]) {
                        return;
                    }
                    acked
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .images
                        .push((name, sample));
                }
                i += 1;
            }
        }));
    }
    threads
}

/// Runs `kills` rounds of upload, kill -9, restart, check; returns the
/// summary line.
pub(crate) fn emulator_kills(
    rf: &Path,
    work: &Path,
    samples: Vec<Vec<u8>>,
    kills: u64,
    seed: u64,
) -> Result<String, String> {
    let data = work.join("emulator-crash-data");
    let _ = std::fs::remove_dir_all(&data);
    let samples = Arc::new(samples);
    let acked = Arc::new(Mutex::new(Acked::default()));
    let mut rng = Rng::new(seed);
    let mut last_images = 0;
    for round in 0..kills {
        let server = Arc::new(Server::start(rf, &data)?);
        {
            let a = acked.lock().unwrap_or_else(|p| p.into_inner());
            check(&server, &a, &samples, a.images.len() - last_images)
                .map_err(|e| format!("after kill {round}: {e}"))?;
            last_images = a.images.len();
        }
        let stop = Arc::new(AtomicBool::new(false));
        let threads = load(&server, round, &samples, &acked, &stop);
        std::thread::sleep(Duration::from_millis(50 + rng.below(450)));
        server.kill_9();
        stop.store(true, Ordering::Relaxed);
        for t in threads {
            let _ = t.join();
        }
    }
    let server = Server::start(rf, &data)?;
    let a = acked.lock().unwrap_or_else(|p| p.into_inner());
    check(&server, &a, &samples, a.images.len()).map_err(|e| format!("after kill {kills}: {e}"))?;
    Ok(format!(
        "soak: emulator: {kills} kills -9 during uploads; all {} acknowledged uploads present after restart, all {} acknowledged shards ({} files) indexed",
        a.images.len(),
        a.shards.len(),
        a.shards.len() * PER_SHARD
    ))
}
