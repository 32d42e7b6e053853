//! `rf run`: ingest a directory, check the count, run the job, wait, and
//! export the results, resumably (rf-batch's `Pipeline`).

use std::time::Duration;

use rf_batch::events::RunReport;
use rf_batch::ingest::MediaKind;
use rf_batch::{Pipeline, RunConfig};
use rf_report::{ReportOptions, ReportSummary};
use tokio_util::sync::CancellationToken;

use super::session::{Session, map_error};
use super::{bucket_out, options, report, state_lock};
use crate::args::RunArgs;
use crate::config::Config;
use crate::error::{CliError, Result};
use crate::events::{drawn, plural};
use crate::output::{Table, human_bytes};
use crate::progress::{Progress, human_duration};

/// Runs (or resumes) the whole pipeline.
pub(crate) async fn run(
    args: &RunArgs,
    config: &Config,
    progress: Progress,
    cancel: CancellationToken,
) -> Result<()> {
    // Every check that needs no service comes first: a typo starts no
    // emulator and creates nothing.
    let run_config = run_config(args, config)?;
    let session = Session::open(config, "rf run").await?;
    if args.dry_run {
        let ctx = rf_batch::Context::new(session.client().clone());
        let dry = rf_batch::pipeline::dry_run(&ctx, &run_config).await;
        let dry = session.finish(dry.map_err(|e| map_error(&e))).await?;
        return super::dry_run::print(&dry, config);
    }
    let pipeline = Pipeline::new(session.client().clone(), run_config).cancel_token(cancel);
    let (result, renderer) =
        drawn(progress, config, |events| pipeline.events_to(events).run()).await;
    if let (true, Ok(r)) = (args.report, &result) {
        report::save_job_details(session.client(), &r.job_id, &args.out, &config.output).await;
    }
    let result = result.map_err(|e| match e {
        rf_batch::Error::State(e @ rf_batch::state::StateError::InUse { .. }) => {
            state_lock::explain(e, &format!("--out {}", args.out.display()), "--out")
        }
        other => map_error(&other),
    });
    let report = session.finish(result).await?;
    if let Some(mut r) = renderer {
        r.finish_download(format!(
            "{} ({})",
            plural(
                (report.downloaded_now + report.downloaded_before) as u64,
                "file"
            ),
            human_bytes(report.bytes_downloaded)
        ));
    }
    let page = if args.report {
        Some(report::write(&ReportOptions::new(&args.out))?)
    } else {
        None
    };
    print_report(&report, page.as_ref(), config)
}

/// The pipeline's configuration from the command line, checked.
fn run_config(args: &RunArgs, config: &Config) -> Result<RunConfig> {
    let (input, kind, flag) = match (&args.source.images, &args.source.videos) {
        (Some(dir), _) => (dir, MediaKind::Image, "--images"),
        (None, Some(dir)) => (dir, MediaKind::Video, "--videos"),
        (None, None) => return Err(CliError::usage("pass --images DIR or --videos DIR")),
    };
    let bucket = super::bucket::bucket_url(input)?;
    match &bucket {
        Some(url) if args.dry_run => {
            return Err(CliError::usage(format!(
                "--dry-run lists nothing in a bucket yet; run without it to process {url}"
            )));
        }
        Some(_) => {}
        None => options::input_dir(flag, input)?,
    }
    if options::keep_all_image_outputs(&args.job) {
        return Err(CliError::usage(
            "`rf run --save-image-outputs` needs the outputs named with --image-outputs-to-save NAME,...; to keep every image output, use `rf job start --save-image-outputs`",
        ));
    }
    let out = bucket_out::out_target(&args.out, args.staging_dir.as_deref(), config)?;
    if out.bucket.is_some() && args.report {
        return Err(CliError::usage(
            "--report writes a page into a local --out; with a bucket --out, run `rf report` on the --staging-dir instead",
        ));
    }
    let mut run_config = RunConfig::new(input, &out.dir, &args.workflow);
    run_config.out_bucket = out.bucket;
    run_config.kind = Some(kind);
    run_config.bucket = bucket;
    if let Some(secs) = args.presign_expiry {
        run_config.presign_expiry = Duration::from_secs(secs);
    }
    run_config.batch_id = args
        .batch_id
        .as_deref()
        .map(options::batch_id)
        .transpose()?;
    run_config.job_id = args.job_id.as_deref().map(options::job_id).transpose()?;
    run_config.job_name.clone_from(&args.job.job_name);
    run_config.job = options::job_settings(&args.job)?;
    run_config.plan.mode = options::ingest_mode(args.mode);
    if let Some(n) = args.shard_size {
        run_config.plan.max_images_per_shard = usize::from(n);
    }
    if let Some(secs) = args.count_timeout {
        run_config.count_poll.timeout = Some(Duration::from_secs(secs));
    }
    run_config.upload.concurrency = config.concurrency;
    run_config.download.concurrency = config.concurrency;
    // One `rf` at a time on this output directory (its manifest and
    // downloads): the pipeline holds `<out>/.rf-state/lock` while it runs.
    run_config.lock_owner = Some("rf run".to_owned());
    run_config.validate().map_err(|e| map_error(&e))?;
    Ok(run_config)
}

/// The run's report as JSON, with the page's summary as `report`.
fn print_json(report: &RunReport, page: Option<&ReportSummary>, config: &Config) -> Result<()> {
    let Some(p) = page else {
        return config.output.document(report);
    };
    let mut doc = serde_json::to_value(report)
        .map_err(|e| CliError::local(format!("cannot print the run report: {e}")))?;
    doc["report"] = report::json(p);
    config.output.document(&doc)
}

/// Where the upload and download limits settled (`None`: neither ran).
fn concurrency_row(report: &RunReport) -> Option<String> {
    let limits = [
        ("uploads", &report.upload_concurrency),
        ("downloads", &report.download_concurrency),
    ];
    let limits: Vec<String> = limits
        .iter()
        .filter_map(|(what, r)| {
            r.as_ref()
                .map(|r| format!("{what} {}", crate::events::concurrency_text(r)))
        })
        .collect();
    (!limits.is_empty()).then(|| limits.join("; "))
}

fn print_report(report: &RunReport, page: Option<&ReportSummary>, config: &Config) -> Result<()> {
    let out = &config.output;
    if out.is_json() {
        return print_json(report, page, config);
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
    results_rows(&mut t, report);
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
    if let Some(limits) = concurrency_row(report) {
        t.row(["concurrency".to_owned(), limits]);
    }
    if !report.warnings.is_empty() {
        t.row(["warnings".to_owned(), report.warnings.len().to_string()]);
    }
    let mut took = human_duration(report.timings.total);
    if report.resumed {
        took.push_str(" (this attempt; the rest was done by earlier attempts)");
    }
    t.row(["took".to_owned(), took]);
    if let Some(p) = page {
        report::rows(&mut t, p);
    }
    out.table(&t)
}

/// Where the results went: the directory, and the bucket they were
/// uploaded into.
fn results_rows(t: &mut Table, report: &RunReport) {
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
    if let Some(bucket) = &report.out_bucket {
        t.row(bucket_out::bucket_row(bucket));
    }
}
