//! One `rf` at a time per state directory, told in the user's terms.
//!
//! The lock itself is rf-batch's ([`rf_batch::state::StateLock`]), taken
//! by its runs (the pipeline, the ingest and the export). A second command on the same directory stops at once, and this
//! module says so naming the directory as the user gave it (`--out
//! results`), who holds it, and the option that picks another.

use rf_batch::state::StateError;

use super::session::map_error;
use crate::error::CliError;

/// The error of a refused lock, in the user's terms: `what` (e.g. `--out
/// results`) is in use, by whom, and `flag`, the option that picks another;
/// any other state error as usual.
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
    use rf_batch::state::StateLock;
    use std::path::Path;

    fn lock(dir: &Path, command: &str) -> std::result::Result<StateLock, CliError> {
        StateLock::acquire(dir, command).map_err(|e| explain(e, "--out out", "--out"))
    }

    #[test]
    fn a_second_command_is_refused_naming_the_first_until_it_is_done() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("out/.rf-state");
        let first = lock(&state, "rf run").unwrap();
        let err = lock(&state, "rf batch export").unwrap_err();
        assert_eq!(err.kind().code(), 1);
        assert_eq!(
            err.to_string(),
            format!(
                "--out out is in use by rf run (pid {}); wait for it to finish, or use another --out",
                std::process::id()
            )
        );
        drop(first);
        let _second = lock(&state, "rf batch export").unwrap();
    }
}
