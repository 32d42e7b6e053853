//! Measures how fast the emulator ingests bulk shards: uploads `SHARDS`
//! tar shards of `PER_SHARD` images each through signed URLs and polls the
//! batch count until every image is indexed. Prints images per second.
//! With `uploads`, measures single-image uploads instead: `COUNT` images
//! of `IMAGE_BYTES`, `CONCURRENCY` requests at a time, each acknowledged
//! once stored.
//!
//! ```text
//! cargo run --release -p rf-emulator --example bench_index [-- SHARDS PER_SHARD IMAGE_BYTES]
//! cargo run --release -p rf-emulator --example bench_index -- uploads [COUNT CONCURRENCY IMAGE_BYTES]
//! ```

// A benchmark program: printing its figures is its job.
#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use rf_emulator::{Emulator, EmulatorConfig};
use serde_json::Value;

fn png(seed: u32, size: usize) -> Vec<u8> {
    let mut v = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
    v.extend_from_slice(&13u32.to_be_bytes());
    v.extend_from_slice(b"IHDR");
    v.extend_from_slice(&640u32.to_be_bytes());
    v.extend_from_slice(&480u32.to_be_bytes());
    v.extend_from_slice(&[8, 2, 0, 0, 0, 0, 0, 0, 0]);
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    while v.len() < size {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        v.push(x as u8);
    }
    v
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    if std::env::args().nth(1).as_deref() == Some("uploads") {
        let count = args.first().copied().unwrap_or(5_000);
        let concurrency = args.get(1).copied().unwrap_or(16);
        let image_bytes = args.get(2).copied().unwrap_or(4 * 1024);
        return single_uploads(count, concurrency, image_bytes).await;
    }
    let shards = args.first().copied().unwrap_or(20);
    let per_shard = args.get(1).copied().unwrap_or(500);
    let image_bytes = args.get(2).copied().unwrap_or(20 * 1024);
    let emu = Emulator::start(EmulatorConfig::for_tests(), "127.0.0.1:0".parse()?).await?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder().no_proxy().build()?;
    let base = emu.base_url();
    let ds = format!("{base}data-staging/v1/external/test-ws/batches/bench");

    // Build the shards first: packing is the client's cost, not the server's.
    let mut tars = Vec::with_capacity(shards);
    for s in 0..shards {
        let mut b = tar::Builder::new(Vec::new());
        for i in 0..per_shard {
            let data = png((s * per_shard + i) as u32, image_bytes);
            let mut h = tar::Header::new_ustar();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, format!("img_{s:04}_{i:04}.png"), &data[..])?;
        }
        tars.push(b.into_inner()?);
    }
    let total = (shards * per_shard) as u64;
    let megabytes = tars.iter().map(Vec::len).sum::<usize>() as f64 / 1e6;

    let started = Instant::now();
    let mut uploads = Vec::new();
    for tar in tars {
        let http = http.clone();
        let ds = ds.clone();
        uploads.push(tokio::spawn(async move {
            let r: Value = http
                .post(format!("{ds}/bulk-upload/image-files"))
                .query(&[("api_key", "test-key")])
                .send()
                .await?
                .json()
                .await?;
            let d = &r["signedURLDetails"];
            let mut req = http
                .put(d["uploadURL"].as_str().unwrap_or_default())
                .body(tar);
            if let Some(h) = d["extensionHeaders"].as_object() {
                for (k, v) in h {
                    req = req.header(k, v.as_str().unwrap_or_default());
                }
            }
            req.send().await?.error_for_status()?;
            Ok::<_, reqwest::Error>(())
        }));
    }
    for u in uploads {
        u.await??;
    }
    let uploaded = started.elapsed();
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let c: Value = http
            .get(format!("{ds}/count"))
            .query(&[("api_key", "test-key")])
            .send()
            .await?
            .json()
            .await?;
        if c["count"].as_u64() == Some(total) {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("indexing did not finish: {c}").into());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = started.elapsed();
    println!(
        "{total} images ({megabytes:.1} MB, {shards} shards of {per_shard}) uploaded in {:.2}s, indexed and counted in {:.2}s: {:.0} images/s",
        uploaded.as_secs_f64(),
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64()
    );
    emu.shutdown().await;
    Ok(())
}

/// Uploads `count` images one request each, `concurrency` at a time, and
/// prints acknowledged uploads per second.
async fn single_uploads(
    count: usize,
    concurrency: usize,
    image_bytes: usize,
) -> Result<(), BoxError> {
    let emu = Emulator::start(EmulatorConfig::for_tests(), "127.0.0.1:0".parse()?).await?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder().no_proxy().build()?;
    let url = format!(
        "{}data-staging/v1/external/test-ws/batches/single/upload/image",
        emu.base_url()
    );
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (http, url, next) = (http.clone(), url.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= count {
                    return Ok::<_, BoxError>(());
                }
                let name = format!("img_{i:06}.png");
                let part = reqwest::multipart::Part::bytes(png(i as u32, image_bytes))
                    .file_name(name.clone());
                http.post(&url)
                    .query(&[("api_key", "test-key"), ("fileName", name.as_str())])
                    .multipart(reqwest::multipart::Form::new().part("file", part))
                    .send()
                    .await?
                    .error_for_status()?;
            }
        }));
    }
    for w in workers {
        w.await??;
    }
    let elapsed = started.elapsed();
    println!(
        "{count} single uploads of {image_bytes} B, {concurrency} at a time, acknowledged in {:.2}s: {:.0} uploads/s",
        elapsed.as_secs_f64(),
        count as f64 / elapsed.as_secs_f64()
    );
    emu.shutdown().await;
    Ok(())
}
