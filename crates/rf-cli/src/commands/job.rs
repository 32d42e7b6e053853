//! `rf job ...`: Batch Processing commands.

use std::time::Duration;

use futures::StreamExt;
use rf_batch::ingest::MediaKind;
use rf_batch::wait::{PollOptions, wait_for_job};
use rf_types::{JobDefinition, JobId, LogSeverity, TrtCompilationJob};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::session::{Session, map_error};
use super::{export, library, listing, options};
use crate::args::{
    JobCommand, JobLogsArgs, JobRestartArgs, JobStartArgs, SeverityArg, TrtCompileArgs,
};
use crate::config::Config;
use crate::error::{CliError, Kind, Result};
use crate::events::Renderer;
use crate::progress::{Phase, Progress};
use crate::render;

/// Pause between polls of `rf job logs --follow`.
const FOLLOW_INTERVAL: Duration = Duration::from_secs(2);

/// Runs one `rf job` command.
pub(crate) async fn run(
    command: &JobCommand,
    config: &Config,
    progress: Progress,
    cancel: CancellationToken,
) -> Result<()> {
    let session = Session::open(config, name(command)).await?;
    let result = dispatch(command, &session, config, progress, cancel).await;
    session.finish(result).await
}

/// The command as typed (names this process in the embedded emulator's lock).
fn name(command: &JobCommand) -> &'static str {
    match command {
        JobCommand::Start(_) => "rf job start",
        JobCommand::TrtCompile(_) => "rf job trt-compile",
        JobCommand::Library(_) => "rf job library",
        JobCommand::Task(_) => "rf job task",
        JobCommand::List(_) => "rf job list",
        JobCommand::Show(_) => "rf job show",
        JobCommand::Stages(_) => "rf job stages",
        JobCommand::Tasks(_) => "rf job tasks",
        JobCommand::Logs(_) => "rf job logs",
        JobCommand::Wait(_) => "rf job wait",
        JobCommand::Abort(_) => "rf job abort",
        JobCommand::Restart(_) => "rf job restart",
        JobCommand::Export(_) => "rf job export",
    }
}

async fn dispatch(
    command: &JobCommand,
    session: &Session,
    config: &Config,
    progress: Progress,
    cancel: CancellationToken,
) -> Result<()> {
    let jobs = session.client().jobs();
    let out = &config.output;
    match command {
        JobCommand::Start(args) => start(args, session, config).await,
        JobCommand::TrtCompile(args) => trt_compile(args, session, config, progress, cancel).await,
        JobCommand::Library(args) => library::start(args, session, config, cancel).await,
        JobCommand::Task(args) => library::task(args, session, config, cancel).await,
        JobCommand::List(args) => {
            let listed = jobs.search(args.search.as_deref(), None);
            listing::print(listed, args.limit, out, render::jobs).await
        }
        JobCommand::Show(args) => {
            let job = jobs.get(&args.job_id).await.map_err(|e| map_error(&e))?;
            if out.is_json() {
                out.document(&job.job)
            } else {
                out.table(&render::job(&job.job))
            }
        }
        JobCommand::Stages(args) => {
            let stages = jobs.stages(&args.job_id).await.map_err(|e| map_error(&e))?;
            listing::print_all(&stages, out, render::stages)
        }
        JobCommand::Tasks(args) => {
            listing::print(
                jobs.tasks(&args.job_id, &args.stage_id),
                None,
                out,
                render::tasks,
            )
            .await
        }
        JobCommand::Logs(args) => logs(args, session, config).await,
        JobCommand::Wait(args) => wait(&args.job_id, session, config, progress, cancel).await,
        JobCommand::Abort(args) => {
            let answer = jobs.abort(&args.job_id).await.map_err(|e| map_error(&e))?;
            if out.is_json() {
                out.document(&answer)
            } else {
                out.stdout_line(&format!("abort requested for job {}", args.job_id))
            }
        }
        JobCommand::Restart(args) => restart(args, session, config).await,
        JobCommand::Export(args) => {
            let batch = rf_batch::export::find_export_batch(session.client(), &args.job_id)
                .await
                .map_err(|e| map_error(&e))?;
            let target = export::Target {
                batch_id: batch,
                parts: Vec::new(),
                out: args.out.clone(),
                staging_dir: args.staging_dir.clone(),
                command: "rf job export",
            };
            export::run(session, config, progress, cancel, target).await
        }
    }
}

/// `rf job restart`: sent at most once more than needed (see
/// [`rf_batch::job::restart_job`]), an answer lost on the way told as such.
async fn restart(args: &JobRestartArgs, session: &Session, config: &Config) -> Result<()> {
    let out = &config.output;
    let overrides = options::restart_override(&args.overrides);
    overrides
        .validate()
        .map_err(|e| CliError::usage(e.to_string()))?;
    let restart = rf_batch::job::restart_job(session.client(), &args.job_id, &overrides)
        .await
        .map_err(|e| map_error(&e))?;
    let (answer, answer_lost) = match restart {
        rf_batch::job::JobRestart::Restarted(answer) => (answer, false),
        rf_batch::job::JobRestart::RestartedAnswerLost => (serde_json::Value::Null, true),
    };
    if out.is_json() {
        return out.document(&serde_json::json!({
            "jobId": args.job_id,
            "restarted": true,
            "answerLost": answer_lost,
            "answer": answer,
        }));
    }
    let lost = if answer_lost {
        " (its answer was lost; the job shows the restart)"
    } else {
        ""
    };
    out.stdout_line(&format!(
        "restarted job {}{lost} (follow it with: rf job wait {})",
        args.job_id, args.job_id
    ))
}

async fn start(args: &JobStartArgs, session: &Session, config: &Config) -> Result<()> {
    let batch = options::batch_id(&args.batch_id)?;
    let job_id = match &args.job_id {
        Some(id) => options::job_id(id)?,
        None => JobId::generate(),
    };
    let settings = options::job_settings(&args.job)?;
    let kind = if args.videos {
        MediaKind::Video
    } else {
        MediaKind::Image
    };
    let client = session.client();
    let workspace = client.workspace().await.map_err(|e| map_error(&e))?;
    let mut definition =
        rf_batch::job::build_definition(kind, &batch, &workspace, &args.workflow, &settings)
            .map_err(|e| map_error(&e))?;
    if options::keep_all_image_outputs(&args.job) {
        options::persist_all_image_outputs(&mut definition);
    }
    let name = args.job.job_name.as_deref();
    let existed = launch(session, &job_id, args.job_id.is_some(), &definition, name).await?;
    let document = json!({
        "jobId": job_id.as_str(),
        "batchId": batch.as_str(),
        "workflowId": args.workflow,
        "jobDefinition": definition,
        "alreadyExisted": existed,
    });
    tell_started(&config.output, &job_id, existed, &document)
}

/// `rf job trt-compile`: a TRT compilation job, followed with `--wait`.
async fn trt_compile(
    args: &TrtCompileArgs,
    session: &Session,
    config: &Config,
    progress: Progress,
    cancel: CancellationToken,
) -> Result<()> {
    let job_id = match &args.job_id {
        Some(id) => options::job_id(id)?,
        None => JobId::generate_trt(),
    };
    let mut job = TrtCompilationJob::new(
        args.model_id.trim(),
        options::compilation_devices(&args.devices),
    );
    job.notifications_url = args.notifications_url.clone();
    let definition = JobDefinition::TrtCompilationV1(job);
    definition
        .validate()
        .map_err(|e| CliError::usage(e.to_string()))?;
    let name = args.job_name.as_deref();
    let existed = launch(session, &job_id, args.job_id.is_some(), &definition, name).await?;
    let document = json!({
        "jobId": job_id.as_str(),
        "modelId": args.model_id.trim(),
        "jobDefinition": definition,
        "alreadyExisted": existed,
    });
    if !args.wait {
        return tell_started(&config.output, &job_id, existed, &document);
    }
    if !config.output.is_json() {
        config.output.note(&format!("started job {job_id}"));
    }
    wait(job_id.as_str(), session, config, progress, cancel).await
}

/// Starts `definition` as `job_id`. A job ID the user gave (`given`) may
/// name a job started before (by an earlier attempt of the same command):
/// it is followed if it runs this definition, refused clearly if it runs
/// another; a second one is never started. Returns whether it existed.
async fn launch(
    session: &Session,
    job_id: &JobId,
    given: bool,
    definition: &JobDefinition,
    name: Option<&str>,
) -> Result<bool> {
    let client = session.client();
    let started = if given {
        rf_batch::job::follow_or_start_job(client, job_id, definition, name).await
    } else {
        rf_batch::job::start_job(client, job_id, definition, name).await
    };
    Ok(started.map_err(|e| map_error(&e))? == rf_batch::job::JobStart::Existing)
}

/// Tells a started job: `document` with `--json`, else its ID on stdout and
/// how to follow it.
fn tell_started(
    out: &crate::output::Output,
    job_id: &JobId,
    existed: bool,
    document: &serde_json::Value,
) -> Result<()> {
    if out.is_json() {
        return out.document(document);
    }
    if existed {
        out.note(&format!(
            "job {job_id} already existed with this definition; nothing new was started"
        ));
    }
    out.note(&format!("follow it with: rf job wait {job_id}"));
    out.stdout_line(job_id.as_str())
}

async fn wait(
    job_id: &str,
    session: &Session,
    config: &Config,
    progress: Progress,
    cancel: CancellationToken,
) -> Result<()> {
    let mut renderer = Renderer::new(progress, &config.output, config.verbose);
    let options = PollOptions {
        initial_interval: Duration::from_millis(250),
        max_interval: Duration::from_secs(5),
        timeout: None,
        ..PollOptions::default()
    };
    let result = wait_for_job(session.client(), job_id, &options, &cancel, |p| {
        renderer.job_progress(p);
    })
    .await;
    match result {
        Ok(snapshot) => {
            renderer
                .progress()
                .finish(Phase::Job, format!("{job_id} succeeded"));
            drop(renderer);
            let out = &config.output;
            if out.is_json() {
                out.document(&snapshot)
            } else {
                out.stdout_line(&format!("job {job_id} succeeded"))
            }
        }
        Err(rf_batch::Error::Cancelled) => {
            renderer.clear();
            Err(CliError::new(
                Kind::Interrupted,
                format!(
                    "interrupted; the job keeps running on the service: `rf job wait {job_id}` to watch it again"
                ),
            ))
        }
        Err(err) => {
            renderer.clear();
            Err(map_error(&err))
        }
    }
}

async fn logs(args: &JobLogsArgs, session: &Session, config: &Config) -> Result<()> {
    let severity = args.severity.map(|s| match s {
        SeverityArg::Info => LogSeverity::Info,
        SeverityArg::Warning => LogSeverity::Warning,
        SeverityArg::Error => LogSeverity::Error,
    });
    let jobs = session.client().jobs();
    let out = &config.output;
    // Entries already printed; the service lists logs oldest first, so a
    // follow-up listing skips this many.
    let mut printed: usize = 0;
    loop {
        let terminal = if args.follow {
            jobs.get(&args.job_id)
                .await
                .map_err(|e| map_error(&e))?
                .job
                .is_terminal
        } else {
            true
        };
        let mut stream = std::pin::pin!(jobs.logs(&args.job_id, severity).skip(printed));
        while let Some(log) = stream.next().await {
            let log = log.map_err(|e| map_error(&e))?;
            if out.is_json() {
                out.json_line(&log)?;
            } else {
                out.stdout_line(&render::log_line(&log))?;
            }
            printed += 1;
        }
        if terminal {
            return Ok(());
        }
        tokio::time::sleep(FOLLOW_INTERVAL).await;
    }
}
