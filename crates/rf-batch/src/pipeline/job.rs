//! The job stage of a [`crate::Pipeline`]: choose the job ID once (saved
//! before the job is created), create the job or follow the one an earlier
//! attempt created, and wait for it to end.

use rf_types::{BatchId, JobId};

use super::RunConfig;
use crate::context::Context;
use crate::error::{Error, Result};
use crate::events::Event;
use crate::ingest::MediaKind;
use crate::job::{JobStart, build_definition, follow_or_start_job};
use crate::state::{JobRecord, ManifestFile};
use crate::wait::{JobProgress, job_progress, wait_for_job};

/// The job of the run: its ID and its final progress.
pub(crate) async fn run_job(
    ctx: &Context,
    config: &RunConfig,
    state: &mut ManifestFile,
    batch: &BatchId,
) -> Result<(JobId, JobProgress)> {
    ctx.check_cancel()?;
    let record = job_record(config, state)?;
    let job_id = JobId::new(record.job_id.clone()).map_err(|e| Error::InvalidInput {
        what: "job id",
        detail: e.to_string(),
    })?;
    if !record.created {
        start(ctx, config, state, batch, &job_id).await?;
    } else if !record.terminal {
        ctx.emit(Event::JobResumed {
            job_id: job_id.to_string(),
        })
        .await;
    }
    let progress = if !record.terminal || record.error {
        wait(ctx, config, state, &job_id).await?
    } else {
        // Ended in an earlier attempt: read its final state once, for the
        // report.
        job_progress(&ctx.client, job_id.as_str()).await?
    };
    Ok((job_id, progress))
}

/// The manifest's job record, choosing the ID (and saving it) the first
/// time.
fn job_record(config: &RunConfig, state: &mut ManifestFile) -> Result<JobRecord> {
    if let Some(record) = &state.job {
        return Ok(record.clone());
    }
    let job_id = config.job_id.clone().unwrap_or_else(JobId::generate);
    let record = JobRecord {
        job_id: job_id.to_string(),
        created: false,
        terminal: false,
        error: false,
    };
    state.job = Some(record.clone());
    state.save()?;
    Ok(record)
}

/// Creates the job. The ID was saved before the job was created: a job
/// under it may come from an earlier attempt whose answer was lost; it is
/// followed only if it runs this run's definition.
async fn start(
    ctx: &Context,
    config: &RunConfig,
    state: &mut ManifestFile,
    batch: &BatchId,
    job_id: &JobId,
) -> Result<()> {
    let workspace = ctx.client.workspace().await?;
    let kind: MediaKind = state.run.kind;
    let definition = build_definition(kind, batch, &workspace, &config.workflow_id, &config.job)?;
    let outcome =
        follow_or_start_job(&ctx.client, job_id, &definition, config.job_name.as_deref()).await?;
    let job_id = job_id.to_string();
    ctx.emit(match outcome {
        JobStart::Created => Event::JobCreated { job_id },
        JobStart::Existing => Event::JobResumed { job_id },
    })
    .await;
    if let Some(j) = state.job.as_mut() {
        j.created = true;
    }
    state.save()?;
    Ok(())
}

/// Waits for the job to end; records and tells its end (a failed job too,
/// which is then [`Error::JobFailed`]).
async fn wait(
    ctx: &Context,
    config: &RunConfig,
    state: &mut ManifestFile,
    job_id: &JobId,
) -> Result<JobProgress> {
    let events = ctx.events.clone();
    let outcome = wait_for_job(
        &ctx.client,
        job_id.as_str(),
        &config.job_poll,
        &ctx.cancel,
        move |p| {
            events.try_emit(Event::JobProgress(p.clone()));
        },
    )
    .await;
    let failed = matches!(outcome, Err(Error::JobFailed { .. }));
    if outcome.is_ok() || failed {
        if let Some(j) = state.job.as_mut() {
            j.terminal = true;
            j.error = failed;
        }
        state.save()?;
        ctx.emit(Event::JobFinished {
            job_id: job_id.to_string(),
            error: failed,
        })
        .await;
    }
    outcome
}
