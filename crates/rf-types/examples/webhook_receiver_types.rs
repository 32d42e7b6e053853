//! A webhook receiver's parsing step using only `rf-types` (no HTTP here:
//! plug it behind any server). Reads one payload and prints what it says.
//!
//! ```text
//! cargo run -p rf-types --example webhook_receiver_types                # built-in sample
//! cargo run -p rf-types --example webhook_receiver_types -- payload.json
//! cat payload.json | cargo run -p rf-types --example webhook_receiver_types -- -
//! ```
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::Read;
use std::process::ExitCode;

use rf_types::{JobState, StagingNotificationBody, WebhookPayload};

/// Used when no file is given: the files-status example of the API docs.
const SAMPLE: &str = r#"{
  "type": "roboflow-data-staging-notification-v1",
  "event_id": "b8a4c3d0-5e2f-4a61-9c7e-0f1d2e3a4b5c",
  "ingest_id": "nightly-2025-06-01",
  "batch_id": "nightly-cam-0601",
  "shard_id": "0d40fa12-349e-439f-83f8-42b9b7987b33",
  "notification": {
    "type": "ingest-files-status-notification-v1",
    "success": true,
    "ingested_files": ["cam1_0001.jpg", "cam1_0002.jpg"],
    "failed_files": [
      {"type": "file-size-limit-exceeded", "file_name": "cam1_0003.png",
       "reason": "Max size of single image is 20971520B."}
    ],
    "content_truncated": false
  },
  "delivery_attempt": 1
}"#;

fn read_input() -> Result<Vec<u8>, String> {
    match std::env::args().nth(1).as_deref() {
        None => Ok(SAMPLE.as_bytes().to_vec()),
        Some("-") => {
            let mut body = Vec::new();
            std::io::stdin()
                .read_to_end(&mut body)
                .map_err(|e| format!("cannot read stdin: {e}"))?;
            Ok(body)
        }
        Some(path) => std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}")),
    }
}

fn describe(payload: &WebhookPayload) {
    // A real receiver would skip event IDs it has already handled:
    // redeliveries keep `event_id` and increment `delivery_attempt`.
    println!(
        "event {} (attempt {}), type {}",
        payload.event_id(),
        payload.delivery_attempt(),
        payload.kind_str()
    );
    match payload {
        WebhookPayload::Job(job) => {
            let outcome = match &job.job_state {
                JobState::Success => "succeeded".to_owned(),
                JobState::Fail => "failed".to_owned(),
                other => format!("ended in state {other}"),
            };
            println!("job {} {outcome}", job.job_id);
        }
        WebhookPayload::Staging(event) => {
            println!("batch {}, ingest {}", event.batch_id, event.ingest_id);
            if let Some(shard) = &event.shard_id {
                println!("shard {shard}");
            }
            match &event.notification {
                StagingNotificationBody::IngestStatus(status) => {
                    println!("ingest success: {}", status.success);
                    if let Some(details) = &status.error_details {
                        println!("error {}: {}", details.kind, details.reason);
                    }
                }
                StagingNotificationBody::FilesStatus(files) => {
                    println!(
                        "shard success: {}, {} ingested, {} failed{}",
                        files.success,
                        files.ingested_files.len(),
                        files.failed_files.len(),
                        if files.content_truncated {
                            " (lists truncated)"
                        } else {
                            ""
                        }
                    );
                    for failed in &files.failed_files {
                        println!(
                            "  {}: {} ({})",
                            failed.file_name, failed.reason, failed.kind
                        );
                    }
                }
            }
        }
    }
}

fn main() -> ExitCode {
    let body = match read_input() {
        Ok(body) => body,
        Err(e) => {
            eprintln!("webhook_receiver_types: {e}");
            return ExitCode::FAILURE;
        }
    };
    match WebhookPayload::from_slice(&body) {
        Ok(payload) => {
            describe(&payload);
            ExitCode::SUCCESS
        }
        Err(e) => {
            // A receiver would answer 400 here, so the sender does not retry.
            eprintln!("webhook_receiver_types: not a webhook payload: {e}");
            ExitCode::FAILURE
        }
    }
}
