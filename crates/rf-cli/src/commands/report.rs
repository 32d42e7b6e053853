//! `rf report` (and `rf run --report`): the HTML page of a run's results
//! (rf-report), and the job details a run saves for it while the service is
//! at hand.

use futures::StreamExt;
use rf_batch::Client;
use rf_report::{JobDetailsWriter, ReportError, ReportOptions, ReportSummary};
use rf_types::LogSeverity;

use crate::args::ReportArgs;
use crate::error::{CliError, Kind, Result};
use crate::output::{Output, Table, human_bytes};

/// `rf report OUT`.
pub(crate) fn run(args: &ReportArgs, output: &Output) -> Result<()> {
    let mut opts = ReportOptions::new(&args.out_dir);
    opts.output.clone_from(&args.output);
    if let Some(n) = args.sample {
        opts.sample = usize::from(n);
    }
    let summary = write(&opts)?;
    print(&summary, output)
}

/// Writes the report, errors mapped to exit codes.
pub(crate) fn write(opts: &ReportOptions) -> Result<ReportSummary> {
    rf_report::write_report(opts).map_err(|e| map_error(&e))
}

/// The exit code of a report failure (docs/cli.md).
pub(crate) fn map_error(e: &ReportError) -> CliError {
    let kind = match e {
        ReportError::NotADirectory { .. }
        | ReportError::NoResults { .. }
        | ReportError::SampleSize { .. } => Kind::Usage,
        ReportError::Read { .. }
        | ReportError::Manifest(_)
        | ReportError::Render(_)
        | ReportError::Write { .. } => Kind::Local,
    };
    let hint = match e {
        ReportError::NoResults { .. } | ReportError::NotADirectory { .. } => {
            "; pass the --out directory of `rf run` or `rf batch export`"
        }
        _ => "",
    };
    CliError::new(kind, format!("report: {e}{hint}"))
}

/// The summary lines of a written report.
pub(crate) fn print(s: &ReportSummary, output: &Output) -> Result<()> {
    if output.is_json() {
        return output.document(&json(s));
    }
    let mut t = Table::key_values();
    rows(&mut t, s);
    output.table(&t)
}

/// `s` as rf's JSON (camelCase).
pub(crate) fn json(s: &ReportSummary) -> serde_json::Value {
    serde_json::json!({
        "path": s.path,
        "bytes": s.bytes,
        "records": s.records,
        "brokenLines": s.broken_lines,
        "sampled": s.sampled,
        "thumbnails": s.thumbnails,
        "predictions": s.predictions,
        "failed": s.failed,
    })
}

/// Adds the report's rows to a key-value table.
pub(crate) fn rows(t: &mut Table, s: &ReportSummary) {
    t.row([
        "report".to_owned(),
        format!("{} ({})", s.path.display(), human_bytes(s.bytes)),
    ]);
    t.row([
        "shows".to_owned(),
        format!(
            "{} results, {} predictions, {} sampled images ({} with thumbnails), {} failed, {} broken lines",
            s.records, s.predictions, s.sampled, s.thumbnails, s.failed, s.broken_lines
        ),
    ]);
}

/// Saves the job's details (`GET .../jobs/{job}` and its error logs) into
/// the run's state directory for the report; a failure only warns (the
/// report then lists inputs without results, without reasons).
pub(crate) async fn save_job_details(
    client: &Client,
    job_id: &str,
    out_dir: &std::path::Path,
    output: &Output,
) {
    if let Err(e) = try_save_job_details(client, job_id, out_dir).await {
        output.warn(&format!(
            "could not save the job's details for the report ({e}); failed items are listed without reasons"
        ));
    }
}

async fn try_save_job_details(
    client: &Client,
    job_id: &str,
    out_dir: &std::path::Path,
) -> std::result::Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let job = serde_json::to_value(client.jobs().get(job_id).await?)?;
    let path = rf_report::job_details_path(out_dir);
    let mut w = JobDetailsWriter::create(&path, &job)?;
    let jobs = client.jobs();
    let mut logs = std::pin::pin!(jobs.logs(job_id, Some(LogSeverity::Error)));
    while let Some(log) = logs.next().await {
        w.log(&serde_json::to_value(log?)?)?;
    }
    w.finish()?;
    Ok(())
}
