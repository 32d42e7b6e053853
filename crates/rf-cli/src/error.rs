//! The binary's error type and the documented exit codes.
//!
//! Every failure ends up as a [`CliError`]: a kind (which decides the exit
//! code) and one line of text saying what failed, why, and what to do next.
//! `main.rs` prints it once as `rf: <message>`.

use std::fmt;
use std::process::ExitCode;

/// What kind of failure happened; decides the exit code (see docs/cli.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Something on this machine failed (a file could not be written, ...). Exit 1.
    Local,
    /// The command line or its input is wrong (bad ID, missing directory). Exit 2.
    Usage,
    /// No API key, or the key was refused. Exit 3.
    Auth,
    /// A batch, job, stage or workflow does not exist. Exit 4.
    NotFound,
    /// The API could not be reached, answered with an error, or the job failed. Exit 5.
    Remote,
    /// The command finished but some items failed. Exit 6.
    Partial,
    /// Ctrl-C. Exit 130.
    Interrupted,
    /// stdout was closed by the reader (e.g. `rf batch files X | head`). Exit 0, no message.
    BrokenPipe,
}

impl Kind {
    /// The process exit code of this kind.
    pub(crate) fn code(self) -> u8 {
        match self {
            Kind::BrokenPipe => 0,
            Kind::Local => 1,
            Kind::Usage => 2,
            Kind::Auth => 3,
            Kind::NotFound => 4,
            Kind::Remote => 5,
            Kind::Partial => 6,
            Kind::Interrupted => 130,
        }
    }

    /// The same code as an [`ExitCode`].
    pub(crate) fn exit_code(self) -> ExitCode {
        ExitCode::from(self.code())
    }
}

/// A failure of an `rf` command, ready to print as one line.
#[derive(Debug)]
pub(crate) struct CliError {
    kind: Kind,
    message: String,
}

impl CliError {
    /// A failure of `kind` described by `message` (lower case, no trailing period).
    pub(crate) fn new(kind: Kind, message: impl Into<String>) -> Self {
        CliError {
            kind,
            message: message.into(),
        }
    }

    /// Shorthand for [`Kind::Usage`].
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self::new(Kind::Usage, message)
    }

    /// Shorthand for [`Kind::Local`].
    pub(crate) fn local(message: impl Into<String>) -> Self {
        Self::new(Kind::Local, message)
    }

    /// The same failure, with `note` after its message.
    pub(crate) fn with_note(mut self, note: &str) -> Self {
        self.message.push_str("; ");
        self.message.push_str(note);
        self
    }

    /// The kind, which decides the exit code.
    pub(crate) fn kind(&self) -> Kind {
        self.kind
    }

    /// An I/O error while writing to stdout: a closed pipe is not a failure.
    pub(crate) fn stdout(err: std::io::Error) -> Self {
        if err.kind() == std::io::ErrorKind::BrokenPipe {
            Self::new(Kind::BrokenPipe, "stdout closed")
        } else {
            Self::local(format!("could not write to stdout: {err}"))
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // One line, whatever the sources put in it.
        let mut first = true;
        for line in self.message.lines() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            if !first {
                f.write_str(" ")?;
            }
            f.write_str(line)?;
            first = false;
        }
        Ok(())
    }
}

impl std::error::Error for CliError {}

/// Results of command functions.
pub(crate) type Result<T, E = CliError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_the_documented_ones() {
        let table = [
            (Kind::BrokenPipe, 0),
            (Kind::Local, 1),
            (Kind::Usage, 2),
            (Kind::Auth, 3),
            (Kind::NotFound, 4),
            (Kind::Remote, 5),
            (Kind::Partial, 6),
            (Kind::Interrupted, 130),
        ];
        for (kind, code) in table {
            assert_eq!(kind.code(), code, "{kind:?}");
        }
    }

    #[test]
    fn messages_print_on_one_line() {
        let err = CliError::usage("first\n  second\n\nthird");
        assert_eq!(err.to_string(), "first second third");
    }

    #[test]
    fn broken_pipe_is_not_a_failure() {
        let err = CliError::stdout(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
        assert_eq!(err.kind().code(), 0);
        let err = CliError::stdout(std::io::Error::other("disk full"));
        assert_eq!(err.kind(), Kind::Local);
    }
}
