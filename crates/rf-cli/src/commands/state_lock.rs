//! One `rf` at a time per state directory, told in the user's terms.
//!
//! The lock itself is rf-batch's ([`rf_batch::state::StateLock`]): `rf run`
//! gets it from the pipeline, and the exports and `rf batch ingest` take it
//! here. A second command on the same directory stops at once, and this
//! module says so naming the directory as the user gave it (`--out
//! results`), who holds it, and the option that picks another.

use std::path::Path;

use rf_batch::state::{StateError, StateLock};

use super::session::map_error;
use crate::error::{CliError, Result};

/// Locks the state directory `dir` (created if missing) for `command`
/// (`rf batch export`, ...). Refused: a one-line error saying that `what`
/// (e.g. `--out results`) is in use, by whom, and `flag`, the option that
/// picks another.
pub(crate) fn lock(dir: &Path, what: &str, command: &str, flag: &str) -> Result<StateLock> {
    StateLock::acquire(dir, command).map_err(|e| explain(e, what, flag))
}

/// The error of a refused lock, in the user's terms; any other state error
/// as usual.
pub(crate) fn explain(e: StateError, what: &str, flag: &str) -> CliError {
    match e {
        // The holder reads `rf run (pid 4242)`.
        StateError::InUse { holder, .. } => CliError::local(format!(
            "{what} is in use by {holder}; wait for it to finish, or use another {flag}"
        )),
        other => map_error(&other.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_command_is_refused_naming_the_first_until_it_is_done() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("out/.rf-state");
        let first = lock(&state, "--out out", "rf run", "--out").unwrap();
        let err = lock(&state, "--out out", "rf batch export", "--out").unwrap_err();
        assert_eq!(err.kind().code(), 1);
        assert_eq!(
            err.to_string(),
            format!(
                "--out out is in use by rf run (pid {}); wait for it to finish, or use another --out",
                std::process::id()
            )
        );
        drop(first);
        let _second = lock(&state, "--out out", "rf batch export", "--out").unwrap();
    }
}
