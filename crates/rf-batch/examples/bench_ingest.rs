//! Memory benchmark of ingest: scans, plans and uploads a large input
//! through the real code paths (manifest, tar streams, concurrency) into a
//! sink transport that drains every body, then prints peak RSS as JSON.
//!
//! ```text
//! cargo run --release -p rf-batch --example bench_ingest -- files 100000
//! cargo run --release -p rf-batch --example bench_ingest -- video 4096   # MiB
//! ```
//!
//! Peak RSS (Linux `VmHWM`) stays flat because the plan is written to the
//! items file as the scan goes (the file list is never held), shards are
//! streamed from disk in 256 KiB chunks and at most `concurrency` uploads are
//! in flight.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use futures::StreamExt;
use rf_batch::ingest::{PlanOptions, ScanOptions, UploadSettings, UploadTarget, upload_pending};
use rf_batch::state::{FreshRun, Manifest, ManifestFile};
use rf_batch::{Client, Context};
use rf_transport::{
    ErrorKind, HeaderMap, Method, Request, Response, StatusCode, Transport, TransportError,
};
use rf_types::BatchId;

/// Answers the upload endpoints and drains every body.
#[derive(Debug, Default)]
struct Sink {
    bytes: AtomicU64,
    bodies: AtomicU64,
}

fn json(value: serde_json::Value) -> Response {
    Response::from_bytes(StatusCode::OK, HeaderMap::new(), value.to_string())
}

#[async_trait::async_trait]
impl Transport for Sink {
    async fn send(&self, request: Request) -> Result<Response, TransportError> {
        let expected = request.body.content_length();
        let mut stream = request.body.stream();
        let mut got = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| request.error(ErrorKind::Body, e.to_string()))?;
            got += chunk.len() as u64;
        }
        if expected.is_some_and(|e| e != got) {
            return Err(request.error(ErrorKind::Body, "length mismatch"));
        }
        self.bytes.fetch_add(got, Ordering::Relaxed);
        self.bodies.fetch_add(1, Ordering::Relaxed);
        let path = request.url.path().to_string();
        Ok(if path == "/" {
            json(serde_json::json!({"workspace": "bench"}))
        } else if request.method == Method::POST
            && (path.ends_with("/image-files") || path.ends_with("/upload/video"))
        {
            json(serde_json::json!({"signedURLDetails": {
                "uploadURL": "http://sink.test/put", "extensionHeaders": {}}}))
        } else {
            json(serde_json::json!({}))
        })
    }
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = args.first().map(String::as_str).unwrap_or("files");
    let amount: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let work = std::env::temp_dir().join(format!("rf-bench-{}", std::process::id()));
    let input = work.join("input");
    std::fs::create_dir_all(&input)?;
    let setup = Instant::now();
    match mode {
        "video" => {
            let mut f = std::fs::File::create(input.join("big.mp4"))?;
            let block = vec![7u8; 1 << 20];
            for _ in 0..amount {
                f.write_all(&block)?;
            }
        }
        _ => {
            let data = vec![1u8; 1024];
            for i in 0..amount {
                let dir = input.join(format!("d{:03}", i % 1000));
                if i < 1000 {
                    std::fs::create_dir_all(&dir)?;
                }
                std::fs::write(dir.join(format!("img_{i:06}.jpg")), &data)?;
            }
        }
    }
    let setup = setup.elapsed();
    let rss_after_setup = peak_rss_kib();

    let started = Instant::now();
    let sink = Arc::new(Sink::default());
    let client = Client::builder()
        .shared_transport(sink.clone())
        .base_url("http://sink.test")
        .api_key("bench")
        .build()?;
    // The pipeline's own path: the scan is written to the items file as it
    // goes and the shards are cut from it, so the list is never in memory.
    let state = work.join("state/rf-run.json");
    let scan_options = ScanOptions::default();
    let plan_options = PlanOptions::default();
    let (manifest, _) = Manifest::scan_and_plan(
        &state,
        FreshRun {
            input_dir: &input,
            batch_id: "bench".into(),
            workflow_id: "none".into(),
            kind: None,
            scan: &scan_options,
            plan: &plan_options,
        },
    )?;
    let mut state = ManifestFile::new(manifest, state);
    state.save()?;
    let target = UploadTarget {
        input_dir: input.clone(),
        batch: BatchId::new("bench")?,
        settings: UploadSettings::default(),
    };
    let summary = upload_pending(&Context::new(client), &target, &mut state).await?;
    let elapsed = started.elapsed();
    let bytes = sink.bytes.load(Ordering::Relaxed);
    println!(
        "{}",
        serde_json::json!({
            "mode": mode,
            "amount": amount,
            "items_uploaded": summary.items,
            "shards": summary.shards,
            "bytes_sent": bytes,
            "failures": summary.failures.len(),
            "setup_seconds": setup.as_secs_f64(),
            "ingest_seconds": elapsed.as_secs_f64(),
            "mib_per_second": bytes as f64 / 1048576.0 / elapsed.as_secs_f64(),
            "peak_rss_kib_after_setup": rss_after_setup,
            "peak_rss_kib": peak_rss_kib(),
        })
    );
    std::fs::remove_dir_all(&work)?;
    if !summary.failures.is_empty() {
        eprintln!(
            "failures: {:?}",
            &summary.failures[..summary.failures.len().min(3)]
        );
        std::process::exit(1);
    }
    Ok(())
}
