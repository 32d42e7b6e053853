//! The `rf` binary: Roboflow batch processing from the terminal.
//!
//! Shape (after ripgrep): `main` only maps a result to an exit code and is the
//! one place that prints an error; `args` is the clap tree (no I/O);
//! `config` resolves it (environment, credentials, client); `commands/*` do
//! the work and write results through `output`; `progress` renders rf-batch
//! events. Exit codes are listed in `error.rs` and docs/cli.md.
#![allow(clippy::print_stdout, clippy::print_stderr)]
#![warn(clippy::unwrap_used)]
#![warn(clippy::too_many_lines)]
// Doc comments on the clap structs are the `--help` text, where URLs are plain.
#![allow(rustdoc::bare_urls)]

mod args;
mod commands;
mod config;
mod error;
mod events;
mod logging;
mod output;
mod progress;
mod render;
mod roboflow_config;
mod secrets;
mod workspace_cache;

use std::process::ExitCode;

use crate::error::{CliError, Kind};

fn main() -> ExitCode {
    let cli = match args::Cli::try_parse_args() {
        Ok(cli) => cli,
        Err(err) => {
            // Help and --version go to stdout with code 0; usage errors to
            // stderr with code 2. A closed stdout is not worth a message.
            let _ = err.print();
            return ExitCode::from(u8::try_from(err.exit_code()).unwrap_or(2));
        }
    };
    let env = config::Env::from_process();
    let webhook_token = match &cli.command {
        args::Command::Webhook(args::WebhookCommand::Listen(a)) => a.token.clone(),
        _ => None,
    };
    secrets::register(
        [cli.global.api_key.clone(), webhook_token]
            .into_iter()
            .flatten()
            .chain(env.secrets()),
    );
    let mode = progress::Mode::detect(cli.global.quiet);
    let bars = mode.multi();
    logging::init(
        cli.global.verbose,
        cli.global.quiet,
        env.rf_log.clone(),
        bars.clone(),
        mode == progress::Mode::Bars,
    );
    // One TLS crypto provider for the whole process (ring: no C toolchain
    // needed). The embedded emulator's HTTP client relies on a process
    // default; rf-transport configures its own explicitly.
    let _ = rustls::crypto::ring::default_provider().install_default();
    match run(cli, env, mode, bars) {
        Ok(code) => code,
        Err(err) => {
            if err.kind() != Kind::BrokenPipe {
                eprintln!("rf: {}", secrets::scrub(&err.to_string()));
            }
            err.kind().exit_code()
        }
    }
}

/// Whether `command` runs on a single-threaded runtime. Exports are network
/// and filesystem bound: on one thread, the HTTP connections, the downloads
/// and the progress display hand work to each other without waking other
/// threads, which for many small files cost more CPU than the transfers
/// themselves (filesystem work that blocks for long still goes to tokio's
/// blocking pool). Commands that pack, upload or serve keep a thread per core.
fn single_threaded(command: &args::Command) -> bool {
    matches!(
        command,
        args::Command::Batch(args::BatchCommand::Export(_))
            | args::Command::Job(args::JobCommand::Export(_))
    )
}

/// Builds the runtime and runs the command; any error comes back here once.
fn run(
    cli: args::Cli,
    env: config::Env,
    mode: progress::Mode,
    bars: indicatif::MultiProgress,
) -> Result<ExitCode, CliError> {
    let mut builder = if single_threaded(&cli.command) {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    let runtime = builder
        .enable_all()
        .thread_name("rf")
        .build()
        .map_err(|e| CliError::local(format!("could not start the async runtime: {e}")))?;
    let result = runtime.block_on(commands::dispatch(cli, env, mode, bars));
    let result = result.map(|()| ExitCode::SUCCESS);
    // Do not wait for background tasks (an embedded emulator's workers, a
    // download that was interrupted): everything durable is already on disk.
    runtime.shutdown_background();
    result
}
