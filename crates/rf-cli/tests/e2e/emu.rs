//! An emulator started inside the test process (on its own runtime), reached
//! by the `rf` child process over real HTTP on loopback.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use rf_emulator::{Emulator, EmulatorConfig, RunningEmulator};

/// A canary key: it must never show up in any output of `rf`.
pub(crate) const CANARY: &str = "canary-key-7f3a9c1e5b";
pub(crate) const WORKSPACE: &str = "e2e-ws";

pub(crate) struct TestEmulator {
    runtime: tokio::runtime::Runtime,
    running: Option<RunningEmulator>,
    pub(crate) base_url: String,
    pub(crate) key: String,
}

impl TestEmulator {
    /// An instant emulator (no delays) accepting only [`CANARY`].
    pub(crate) fn start() -> Self {
        Self::with(|c| c)
    }

    /// An emulator whose configuration `tweak` adjusts.
    pub(crate) fn with(tweak: impl FnOnce(EmulatorConfig) -> EmulatorConfig) -> Self {
        // The emulator's HTTP client (webhooks) needs a process-wide TLS provider.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let mut config = EmulatorConfig::for_tests();
        config.keys = vec![(CANARY.to_owned(), WORKSPACE.to_owned())];
        let config = tweak(config);
        let addr = SocketAddr::from(([127, 0, 0, 1], 0));
        let running = runtime
            .block_on(Emulator::start(config, addr))
            .expect("emulator starts");
        let base_url = running
            .base_url()
            .to_string()
            .trim_end_matches('/')
            .to_owned();
        TestEmulator {
            runtime,
            running: Some(running),
            base_url,
            key: CANARY.to_owned(),
        }
    }

    /// A slow emulator: each processed item takes `per_item`.
    pub(crate) fn slow(per_item: Duration) -> Self {
        Self::with(|mut c| {
            c.job_speed.item_delay = per_item;
            c
        })
    }

    /// Stages the sample images as batch `batch` (`rf batch ingest ...
    /// --wait`), which must succeed.
    pub(crate) fn stage_samples(&self, sandbox: &crate::util::Sandbox, batch: &str) {
        crate::util::run(
            self.rf(sandbox)
                .args(ingest_args(&samples(), batch))
                .arg("--wait"),
        )
        .expect_code(0);
    }

    /// What the emulator has counted so far.
    pub(crate) fn stats(&self) -> rf_emulator::EmulatorStats {
        self.running
            .as_ref()
            .expect("running until dropped")
            .state()
            .stats()
    }

    /// `rf` pointed at this emulator with the canary key, via flags.
    pub(crate) fn rf(&self, sandbox: &crate::util::Sandbox) -> Command {
        let mut cmd = sandbox.rf();
        cmd.args(["--api-url", &self.base_url, "--api-key", &self.key]);
        cmd
    }
}

impl Drop for TestEmulator {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            self.runtime.block_on(running.shutdown());
        }
    }
}

/// The arguments of `rf batch ingest --images IMAGES --batch-id BATCH`.
pub(crate) fn ingest_args(images: &Path, batch: &str) -> Vec<String> {
    let images = crate::util::path_arg(images);
    ["batch", "ingest", "--images", &images, "--batch-id", batch]
        .map(String::from)
        .to_vec()
}

/// The arguments of `rf emulator serve --addr 127.0.0.1:0 --key KEY
/// --data-dir DATA` (`key` as `KEY=WORKSPACE`): a server on a free port.
pub(crate) fn serve_args(key: &str, data: &Path) -> Vec<String> {
    let data = crate::util::path_arg(data);
    [
        "emulator",
        "serve",
        "--addr",
        "127.0.0.1:0",
        "--key",
        key,
        "--data-dir",
        &data,
    ]
    .map(String::from)
    .to_vec()
}

/// The sample images the repository ships.
pub(crate) fn samples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../samples/images")
}

/// Base names of every sample image.
pub(crate) fn sample_names() -> Vec<String> {
    let mut names = Vec::new();
    collect(&samples(), &mut names);
    names.sort();
    names
}

fn collect(dir: &Path, names: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect(&path, names);
        } else if let Some(ext) = path.extension().and_then(|e| e.to_str())
            && ["jpg", "png"].contains(&ext)
        {
            names.push(path.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
}

/// Every file under `dir` (skipping rf's own state directory).
pub(crate) fn files_under(dir: &Path) -> Vec<PathBuf> {
    walk_files(dir, |path| {
        path.file_name().is_some_and(|n| n == ".rf-state")
    })
}

/// Every regular file under `dir`, symbolic links not followed, leaving out
/// the entries (and what is under them) that `skip` names.
pub(crate) fn walk_files(dir: &Path, skip: impl Fn(&Path) -> bool) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if skip(&path) {
                continue;
            }
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                stack.push(path);
            } else if meta.is_file() {
                out.push(path);
            }
        }
    }
    out
}

/// Asserts that the results under `dir` name every one of `names`.
#[track_caller]
pub(crate) fn assert_results_name(dir: &Path, names: &[String]) {
    let files = files_under(dir);
    assert!(!files.is_empty(), "no result files under {}", dir.display());
    let mut all = String::new();
    for f in &files {
        all.push_str(&String::from_utf8_lossy(&std::fs::read(f).unwrap()));
        all.push('\n');
        all.push_str(&f.to_string_lossy());
        all.push('\n');
    }
    for name in names {
        assert!(
            all.contains(name.as_str()),
            "results under {} do not mention {name}; files: {files:?}",
            dir.display()
        );
    }
}

/// Writes `n` tiny files that look like MP4 videos into `dir`.
pub(crate) fn make_videos(dir: &Path, n: usize) -> Vec<String> {
    std::fs::create_dir_all(dir).unwrap();
    let mut names = Vec::new();
    for i in 0..n {
        let name = format!("clip_{i:02}.mp4");
        let mut bytes = vec![0, 0, 0, 0x18];
        bytes.extend_from_slice(b"ftypisom");
        bytes.extend_from_slice(&[0, 0, 2, 0]);
        bytes.extend_from_slice(b"isomiso2mp41");
        bytes.extend(std::iter::repeat_n(i as u8, 256));
        std::fs::write(dir.join(&name), bytes).unwrap();
        names.push(name);
    }
    names
}
