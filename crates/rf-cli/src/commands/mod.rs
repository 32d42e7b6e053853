//! One module per command group; `dispatch` resolves the configuration and
//! runs the chosen command, turning Ctrl-C into a clean stop.

mod completions;
mod webhook;

use crate::args::{Cli, Command, WebhookCommand};
use crate::config::Env;
use crate::error::Result;
use crate::output::Output;
use crate::progress::Mode;

/// Runs the parsed command line.
pub(crate) async fn dispatch(cli: Cli) -> Result<()> {
    let mode = Mode::detect(cli.global.quiet);
    let output = Output::new(cli.global.json, cli.global.quiet, mode.multi());
    let env = Env::from_process();
    match &cli.command {
        Command::Completions(args) => completions::run(args, &output),
        Command::Webhook(WebhookCommand::Listen(args)) => {
            webhook::listen(args, env.webhook_token.clone(), &output).await
        }
        _ => Err(crate::error::CliError::local("not wired yet")),
    }
}
