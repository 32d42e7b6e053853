//! The whole pipeline (scan → upload → count check → job → export) against
//! a local emulator, with progress events; run it twice to see the resume.
//!
//! Run: `cargo run -p rf-batch --example run_pipeline [OUTPUT_DIR]`
#![allow(clippy::print_stdout)]

use rf_batch::{Client, Event, Pipeline, RunConfig};
use rf_emulator::{Emulator, EmulatorConfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The emulator's own HTTP client needs a rustls crypto provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let emu = Emulator::start(EmulatorConfig::for_tests(), "127.0.0.1:0".parse()?).await?;
    let client = Client::builder()
        .base_url(emu.base_url().as_str())
        .api_key(emu.api_key())
        .build()?;
    let samples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../samples/images");
    let output = match std::env::args().nth(1) {
        Some(dir) => std::path::PathBuf::from(dir),
        None => std::env::temp_dir().join(format!("rf-example-{}", std::process::id())),
    };
    let mut config = RunConfig::new(&samples, &output, "mock-detector");
    config.job.max_parallel_tasks = Some(2);

    let (tx, mut rx) = tokio::sync::mpsc::channel::<Event>(64);
    let printer = tokio::spawn(async move {
        while let Some(event) = rx.recv().await {
            match event {
                Event::UploadFinished {
                    unit,
                    uploaded,
                    total,
                    ..
                } => {
                    println!("uploaded {unit} ({uploaded}/{total})")
                }
                Event::CountConfirmed { count, .. } => println!("batch holds {count} items"),
                Event::JobProgress(p) => println!(
                    "job {}: {:.0}%",
                    p.stage.as_deref().unwrap_or("starting"),
                    p.overall * 100.0
                ),
                Event::Extracted {
                    file, into, files, ..
                } => {
                    println!("unpacked {file}: {files} file(s) into {}", into.display())
                }
                Event::Warning { message } => println!("warning: {message}"),
                _ => {}
            }
        }
    });
    let report = Pipeline::new(client, config).events(tx).run().await?;
    printer.await?;
    println!(
        "done: batch {}, job {}, {} items, {} file(s) downloaded into {} in {:?}",
        report.batch_id,
        report.job_id,
        report.confirmed_count,
        report.downloaded_now,
        report.output_dir.display(),
        report.timings.total
    );
    emu.shutdown().await;
    Ok(())
}
