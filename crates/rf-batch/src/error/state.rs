//! [`StateError`]: the run manifest or its state directory could not be
//! used. It lives beside [`crate::Error`] (which wraps it) rather than in
//! [`crate::state`] (which returns it), so that the error types depend on no
//! module that uses them.

use std::io;
use std::path::PathBuf;

use rf_util::LockHolder;

/// The manifest could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Reading or writing failed.
    #[error("cannot {action} run manifest {}: {source}", path.display())]
    Io {
        /// Read, write, ...
        action: &'static str,
        /// The manifest path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The file is not a manifest this version understands.
    #[error("run manifest {} is unreadable ({detail}); move it away to start the run afresh", path.display())]
    Corrupt {
        /// The manifest path.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// Another run holds the state directory ([`crate::state::StateLock`]).
    #[error("state directory {} is in use by {holder}; wait for it to finish, or use another directory", dir.display())]
    InUse {
        /// The state directory.
        dir: PathBuf,
        /// Who holds it, as its lock file says.
        holder: LockHolder,
    },
}
