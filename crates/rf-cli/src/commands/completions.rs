//! `rf completions bash|zsh|fish`: the completion script on stdout.

use clap_complete::Shell;

use crate::args::{Cli, CompletionsArgs, ShellArg};
use crate::error::{CliError, Result};
use crate::output::Output;

/// Writes the completion script for the chosen shell.
pub(crate) fn run(args: &CompletionsArgs, output: &Output) -> Result<()> {
    let shell = match args.shell {
        ShellArg::Bash => Shell::Bash,
        ShellArg::Zsh => Shell::Zsh,
        ShellArg::Fish => Shell::Fish,
    };
    // Generate into memory first: clap_complete panics when its writer fails,
    // and a closed pipe must not panic.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command_for_help(), "rf", &mut script);
    let script = String::from_utf8(script)
        .map_err(|e| CliError::local(format!("completion script is not utf-8: {e}")))?;
    output.stdout_line(script.trim_end())
}
