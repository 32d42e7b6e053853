//! One module per command group; `dispatch` resolves the configuration and
//! runs the chosen command, turning Ctrl-C into a clean stop.
//!
//! Ctrl-C: for commands that move data or wait (`run`, `batch ingest`,
//! `batch export`, `job export`, `job wait`) the first one cancels the
//! command's token (uploads and downloads in flight finish and are recorded,
//! nothing new starts) and the command returns; a second one stops at once.
//! Other commands stop at once. The exit code is 130 and the message says
//! how to go on (re-run the same command to resume).

mod batch;
mod bucket;
mod bucket_out;
mod completions;
mod dry_run;
mod emulator;
mod export;
mod ingest;
mod job;
mod library;
mod listing;
mod options;
mod report;
mod run;
mod session;
mod state_lock;
mod webhook;

use std::future::Future;

use indicatif::MultiProgress;
use tokio_util::sync::CancellationToken;

use crate::args::{BatchCommand, Cli, Command, EmulatorCommand, JobCommand, WebhookCommand};
use crate::config::{Config, Env};
use crate::error::{CliError, Kind, Result};
use crate::output::Output;
use crate::progress::{Mode, Progress};

/// Runs the parsed command line.
pub(crate) async fn dispatch(cli: Cli, env: Env, mode: Mode, bars: MultiProgress) -> Result<()> {
    let output = Output::new(cli.global.json, cli.global.quiet, bars);
    match &cli.command {
        Command::Completions(args) => completions::run(args, &output),
        Command::Report(args) => report::run(args, &output),
        Command::Webhook(WebhookCommand::Listen(args)) => {
            webhook::listen(args, env.webhook_token.clone(), &output).await
        }
        Command::Emulator(EmulatorCommand::Serve(args)) => {
            emulator::serve(args, &env, &output).await
        }
        Command::Run(args) => {
            let config = Config::resolve(&cli.global, &env, output)?;
            let progress = Progress::new(&config.output, mode);
            interruptible(&config.output, true, |cancel| {
                run::run(args, &config, progress, cancel)
            })
            .await
        }
        Command::Batch(command) => {
            let config = Config::resolve(&cli.global, &env, output)?;
            let progress = Progress::new(&config.output, mode);
            let graceful = matches!(command, BatchCommand::Ingest(_) | BatchCommand::Export(_));
            interruptible(&config.output, graceful, |cancel| {
                batch::run(command, &config, progress, cancel)
            })
            .await
        }
        Command::Job(command) => {
            let config = Config::resolve(&cli.global, &env, output)?;
            let progress = Progress::new(&config.output, mode);
            let graceful = matches!(command, JobCommand::Wait(_) | JobCommand::Export(_));
            interruptible(&config.output, graceful, |cancel| {
                job::run(command, &config, progress, cancel)
            })
            .await
        }
    }
}

/// Runs `command` with a cancellation token. With `graceful`, the first
/// Ctrl-C cancels the token and lets the command wind down, a second one
/// abandons it; otherwise the first Ctrl-C abandons it.
async fn interruptible<F, Fut>(output: &Output, graceful: bool, command: F) -> Result<()>
where
    F: FnOnce(CancellationToken) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    let cancel = CancellationToken::new();
    let work = command(cancel.clone());
    let mut work = std::pin::pin!(work);
    tokio::select! {
        result = &mut work => return result,
        signal = tokio::signal::ctrl_c() => {
            if signal.is_err() {
                // No signal handling available: just run to the end.
                return work.await;
            }
        }
    }
    if !graceful {
        return Err(CliError::new(Kind::Interrupted, "interrupted"));
    }
    cancel.cancel();
    output.note("stopping: letting what is in flight finish (Ctrl-C again to quit now)");
    tokio::select! {
        result = &mut work => result,
        _ = tokio::signal::ctrl_c() => Err(CliError::new(
            Kind::Interrupted,
            "interrupted; re-run the same command to resume",
        )),
    }
}

/// Waits for Ctrl-C (SIGINT), and with `terminate` for SIGTERM as well, for
/// a command that serves until stopped. The handlers are registered here,
/// not when the future is first polled (as with tokio's `ctrl_c()`): a
/// signal sent as soon as the command printed where it listens stops it
/// cleanly instead of killing it. Register before printing.
fn stop_signal(terminate: bool) -> std::io::Result<impl Future<Output = std::io::Result<()>>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut term = terminate
            .then(|| signal(SignalKind::terminate()))
            .transpose()?;
        Ok(async move {
            match &mut term {
                Some(term) => {
                    tokio::select! {
                        _ = interrupt.recv() => {}
                        _ = term.recv() => {}
                    }
                }
                None => {
                    interrupt.recv().await;
                }
            }
            Ok(())
        })
    }
    #[cfg(not(unix))]
    {
        let _ = terminate;
        Ok(tokio::signal::ctrl_c())
    }
}
