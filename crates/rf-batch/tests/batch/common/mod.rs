//! Shared test helpers: input trees built from the sample images, small
//! videos, hand-made tar archives ([`raw_tar`]), and emulator start-up. Not
//! public API.
#![allow(dead_code, unreachable_pub)]

pub mod fake;
pub mod inprocess;
pub mod raw_tar;

use std::path::{Path, PathBuf};

use rf_emulator::{Emulator, EmulatorConfig, RunningEmulator};

/// The repository's sample images.
pub fn samples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../samples/images")
}

/// Every sample image (relative path, bytes), sorted.
pub fn sample_images() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap())
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else if rf_types::is_image_file_name(&p.to_string_lossy()) {
                let rel = p
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    let root = samples_dir();
    walk(&root, &root, &mut out);
    assert!(!out.is_empty(), "sample images missing");
    out
}

/// Copies the sample tree into `dest`; returns the number of images.
pub fn copy_samples(dest: &Path) -> usize {
    let images = sample_images();
    for (rel, bytes) in &images {
        let p = dest.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }
    images.len()
}

/// Writes `n` images (sample bytes, cycled) as `d{i % 3}/img_{i:04}.<ext>` under `dest`.
pub fn make_images(dest: &Path, n: usize) {
    let images = sample_images();
    for i in 0..n {
        let (rel, bytes) = &images[i % images.len()];
        let ext = rel.rsplit('.').next().unwrap();
        let p = dest.join(format!("d{}/img_{i:04}.{ext}", i % 3));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }
}

/// A small file an emulator recognises as MP4 (an `ftyp` box and padding).
pub fn make_video(path: &Path, len: usize) {
    let mut v = vec![0u8, 0, 0, 0x18];
    v.extend_from_slice(b"ftypisom\0\0\x02\0isomiso2");
    while v.len() < len {
        v.push((v.len() % 251) as u8);
    }
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, v).unwrap();
}

/// An emulator on a free loopback port, with no delays.
///
/// In a build that also links rf-transport, reqwest has rustls without a
/// default crypto provider, and the emulator's own reqwest client (webhooks,
/// reference downloads) needs one: install ring as the process default.
pub async fn start_emulator() -> RunningEmulator {
    start_emulator_with(EmulatorConfig::for_tests()).await
}

/// [`start_emulator`] with another configuration.
pub async fn start_emulator_with(config: EmulatorConfig) -> RunningEmulator {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Emulator::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("emulator starts")
}

/// A client speaking to `emu` over reqwest on loopback.
pub fn http_client(emu: &RunningEmulator) -> rf_batch::Client {
    rf_batch::Client::new(
        rf_transport::ReqwestTransport::new().unwrap(),
        emu.base_url().as_str(),
        emu.api_key(),
    )
    .unwrap()
}

/// An input and an output directory, both temporary.
pub fn scratch_dirs() -> (tempfile::TempDir, tempfile::TempDir) {
    (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap())
}

/// The number of items the service counts in `batch` (a resent shard
/// counts twice, so an exact count proves nothing was sent twice).
pub async fn service_count(client: &rf_batch::Client, batch: &str) -> u64 {
    client.staging().count(batch, None).await.unwrap()
}

/// Fast polling for tests (no fixed sleeps: polls until the deadline).
pub fn fast_poll(timeout_secs: u64) -> rf_batch::wait::PollOptions {
    rf_batch::wait::PollOptions {
        initial_interval: std::time::Duration::from_millis(20),
        max_interval: std::time::Duration::from_millis(200),
        multiplier: 1.5,
        timeout: Some(std::time::Duration::from_secs(timeout_secs)),
    }
}

/// A run configuration with fast polling.
pub fn config(input: &Path, output: &Path, workflow: &str) -> rf_batch::RunConfig {
    let mut c = rf_batch::RunConfig::new(input, output, workflow);
    c.count_poll = fast_poll(60);
    c.job_poll = fast_poll(120);
    c.upload.retry_delay = std::time::Duration::from_millis(10);
    c.download.retry_delay = std::time::Duration::from_millis(10);
    c
}

/// Every file under `dir` (relative paths), skipping the state directory.
pub fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            if rel.starts_with(".rf-state") {
                continue;
            }
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.push(rel);
            }
        }
    }
    walk(dir, dir, &mut out);
    out.sort();
    out
}
