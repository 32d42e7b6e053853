//! The typed client against a local emulator: upload images one by one,
//! check the count, start a job, follow it, list its output, read logs.
//!
//! Run: `cargo run -p rf-batch --example typed_client`
#![allow(clippy::print_stdout)]

use futures::TryStreamExt;
use rf_batch::Client;
use rf_batch::wait::{PollOptions, wait_for_count, wait_for_job};
use rf_emulator::{Emulator, EmulatorConfig};
use rf_types::{BatchId, JobId, WorkflowJob};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The emulator's own HTTP client needs a rustls crypto provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let emu = Emulator::start(EmulatorConfig::for_tests(), "127.0.0.1:0".parse()?).await?;
    let client = Client::new(
        rf_transport::ReqwestTransport::new()?,
        emu.base_url().as_str(),
        emu.api_key(),
    )?;
    println!("workspace: {}", client.workspace().await?);

    // Upload the sample images one by one into a simple batch.
    let batch = BatchId::new("example-batch")?;
    let samples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../samples/images");
    let report = rf_batch::ingest::scan(&samples, &Default::default())?;
    for file in &report.files {
        let name = rf_batch::ingest::flat_name(&file.relative);
        client
            .staging()
            .upload_image_file(&batch, &name, &file.path(&samples), Some("Example"))
            .await?;
    }
    let cancel = rf_batch::CancellationToken::new();
    let count = wait_for_count(
        &client,
        batch.as_str(),
        report.files.len() as u64,
        &PollOptions::default(),
        &cancel,
        |_| {},
    )
    .await?;
    println!("batch {batch} holds {count} images");

    // Start a job and follow it.
    let job_id = JobId::generate();
    let definition =
        WorkflowJob::image(batch.clone(), client.workspace().await?, "image-properties")
            .max_parallel_tasks(2)
            .build()?;
    client
        .jobs()
        .create(&job_id, &definition, Some("example"))
        .await?;
    let done = wait_for_job(
        &client,
        job_id.as_str(),
        &PollOptions::default(),
        &cancel,
        |p| {
            let stage = p.stage.as_deref().unwrap_or("starting");
            println!("  {stage:<10} {:>5.1}%", p.overall * 100.0);
        },
    )
    .await?;
    println!("job {job_id} finished (error: {})", done.error);

    // Its output and logs.
    let output = rf_batch::export::find_export_batch(&client, job_id.as_str()).await?;
    for f in rf_batch::export::list_export(&client, &output).await? {
        match &f.part {
            Some(part) => println!("output file: {part}/{}", f.file.file_name),
            None => println!("output file: {}", f.file.file_name),
        }
    }
    let logs: Vec<_> = client
        .jobs()
        .logs(job_id.as_str(), None)
        .try_collect()
        .await?;
    println!("{} log entries", logs.len());

    // Errors name the endpoint, the ID and what the server said.
    if let Err(e) = client.jobs().get("no-such-job").await {
        println!("expected error: {e}");
    }
    emu.shutdown().await;
    Ok(())
}
