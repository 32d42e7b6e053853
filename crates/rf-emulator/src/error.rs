//! Errors: [`EmulatorError`] for starting and running the server, and the
//! HTTP error answer (`{"error": "..."}` with a 4xx status) used by handlers.

use std::path::PathBuf;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// An error starting or running the emulator.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmulatorError {
    /// The listening socket could not be bound.
    #[error("cannot listen on {addr}: {source}; pick another address or free the port")]
    Bind {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// A file or directory of the data dir could not be used.
    #[error("data dir problem with {path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The persisted state file is unreadable.
    #[error("state file {path} is corrupt: {source}; move it away to start empty")]
    State {
        /// The state file.
        path: PathBuf,
        /// The cause.
        source: serde_json::Error,
    },
    /// The state database could not be opened, read or written.
    #[error("state database {path}: {source}")]
    Database {
        /// The database file.
        path: PathBuf,
        /// The cause.
        source: redb::Error,
    },
    /// A write could not be committed to the state database (the request
    /// that made it is answered `500`), or the emulator is closed.
    #[error("the change was not stored: {0}")]
    NotCommitted(String),
    /// The configuration is not usable.
    #[error("invalid emulator configuration: {0}")]
    Config(String),
    /// Another emulator holds the data directory (see [`rf_util::LockHolder`],
    /// re-exported as `rf_emulator::LockHolder`).
    #[error("data dir {dir} is in use by {holder}; stop that one first, or use another data dir")]
    DataDirInUse {
        /// The data directory.
        dir: PathBuf,
        /// Who holds it, as its lock file says.
        holder: rf_util::LockHolder,
    },
}

/// An HTTP error answer: a status (always 4xx for client mistakes) and a
/// message rendered as `{"error": "<message>"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }
    pub(crate) fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }
    pub(crate) fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }
    pub(crate) fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }
    /// A server-side failure (disk full...). Still answered as JSON.
    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(rf_types::ApiError {
                error: self.message,
            }),
        )
            .into_response()
    }
}

/// Result of a handler.
pub(crate) type ApiResult<T> = Result<T, ApiError>;
