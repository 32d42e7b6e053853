//! `rf run`: ingest a directory, check the count, run the job, wait, and
//! export the results, resumably (rf-batch's `Pipeline`).

use rf_batch::events::RunReport;
use rf_batch::ingest::MediaKind;
use rf_batch::{Pipeline, RunConfig};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::session::{Session, map_error};
use super::{options, state_lock};
use crate::args::RunArgs;
use crate::config::Config;
use crate::error::{CliError, Result};
use crate::events::{Renderer, plural};
use crate::output::{Table, human_bytes};
use crate::progress::{Progress, human_duration};

/// Events waiting to be drawn; the pipeline waits when the renderer lags.
const EVENT_QUEUE: usize = 256;

/// Runs (or resumes) the whole pipeline.
pub(crate) async fn run(
    args: &RunArgs,
    config: &Config,
    progress: Progress,
    cancel: CancellationToken,
) -> Result<()> {
    let (input, kind, flag) = match (&args.source.images, &args.source.videos) {
        (Some(dir), _) => (dir, MediaKind::Image, "--images"),
        (None, Some(dir)) => (dir, MediaKind::Video, "--videos"),
        (None, None) => return Err(CliError::usage("pass --images DIR or --videos DIR")),
    };
    options::input_dir(flag, input)?;
    let mut run_config = RunConfig::new(input, &args.out, &args.workflow);
    run_config.kind = Some(kind);
    run_config.batch_id = args
        .batch_id
        .as_deref()
        .map(options::batch_id)
        .transpose()?;
    run_config.job_id = args.job_id.as_deref().map(options::job_id).transpose()?;
    run_config.job_name.clone_from(&args.job.job_name);
    run_config.job = options::job_settings(&args.job)?;
    if options::keep_all_image_outputs(&args.job) {
        return Err(CliError::usage(
            "`rf run --save-image-outputs` needs the outputs named with --image-outputs-to-save NAME,...; to keep every image output, use `rf job start --save-image-outputs`",
        ));
    }
    // Check the job options now rather than after the upload: the definition
    // is built the same way later, with the real batch and workspace.
    let probe_batch = run_config
        .batch_id
        .clone()
        .map_or_else(|| options::batch_id("options-check"), Ok)?;
    rf_batch::job::build_definition(
        kind,
        &probe_batch,
        "workspace",
        &args.workflow,
        &run_config.job,
    )
    .map_err(|e| map_error(&e))?;
    run_config.plan.mode = options::ingest_mode(args.mode);
    if let Some(n) = args.shard_size {
        run_config.plan.max_images_per_shard = usize::from(n);
    }
    run_config.upload.concurrency = config.concurrency;
    run_config.download.concurrency = config.concurrency;

    // One `rf` at a time on this output directory (its manifest and
    // downloads): the pipeline holds `<out>/.rf-state/lock` while it runs.
    run_config.lock_owner = Some("rf run".to_owned());
    let session = Session::open(config, "rf run").await?;
    let (tx, rx) = mpsc::channel(EVENT_QUEUE);
    let renderer = Renderer::new(progress, &config.output, config.verbose);
    let drawing = tokio::spawn(renderer.drain(rx));
    let pipeline = Pipeline::new(session.client().clone(), run_config)
        .events(tx)
        .cancel_token(cancel);
    let result = pipeline.run().await;
    // The pipeline is gone, so the channel is closed and the renderer ends.
    let mut renderer = drawing.await.ok();
    session.close().await;
    match result {
        Ok(report) => {
            if let Some(r) = renderer.as_mut() {
                r.finish_download(format!(
                    "{} ({})",
                    plural(
                        (report.downloaded_now + report.downloaded_before) as u64,
                        "file"
                    ),
                    human_bytes(report.bytes_downloaded)
                ));
            }
            drop(renderer);
            print_report(&report, config)
        }
        Err(err) => {
            if let Some(r) = renderer.as_mut() {
                r.clear();
            }
            Err(match err {
                rf_batch::Error::State(e @ rf_batch::state::StateError::InUse { .. }) => {
                    state_lock::explain(e, &format!("--out {}", args.out.display()), "--out")
                }
                // The input directory has no media of the kind asked for.
                e @ rf_batch::Error::InvalidInput {
                    what: "input directory",
                    ..
                } => CliError::usage(format!("{e}; {}", options::media_hint(kind))),
                other => map_error(&other),
            })
        }
    }
}

fn print_report(report: &RunReport, config: &Config) -> Result<()> {
    let out = &config.output;
    if out.is_json() {
        return out.document(report);
    }
    let mut t = Table::key_values();
    t.row([
        "batch".to_owned(),
        format!(
            "{} ({}{})",
            report.batch_id,
            plural(report.confirmed_count, "item"),
            if report.uploaded_before > 0 {
                format!(
                    ", {} uploaded by an earlier attempt",
                    report.uploaded_before
                )
            } else {
                String::new()
            }
        ),
    ]);
    let job_state = match &report.job {
        Some(p) if p.error => "failed",
        Some(_) => "succeeded",
        None if report.resumed => "finished in an earlier attempt",
        None => "not run",
    };
    t.row(["job".to_owned(), format!("{} ({job_state})", report.job_id)]);
    if let Some(output_batch) = &report.output_batch {
        t.row(["output batch".to_owned(), output_batch.clone()]);
    }
    t.row([
        "results".to_owned(),
        format!(
            "{} ({} downloaded now, {} before, {} extracted)",
            report.output_dir.display(),
            plural(report.downloaded_now as u64, "file"),
            report.downloaded_before,
            report.extracted_files
        ),
    ]);
    if !report.skipped.is_empty() {
        t.row([
            "skipped".to_owned(),
            plural(report.skipped.len() as u64, "file"),
        ]);
    }
    if !report.refused_entries.is_empty() {
        t.row([
            "refused".to_owned(),
            format!("{} archive entries", report.refused_entries.len()),
        ]);
    }
    t.row([
        "retries".to_owned(),
        format!(
            "{} ({} requests, {} uploads, {} downloads sent again)",
            report.retries,
            report.transport_retries,
            report.upload_retries,
            report.download_retries
        ),
    ]);
    if !report.warnings.is_empty() {
        t.row(["warnings".to_owned(), report.warnings.len().to_string()]);
    }
    t.row(["took".to_owned(), human_duration(report.timings.total)]);
    out.table(&t)
}
