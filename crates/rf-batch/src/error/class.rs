//! [`FailureClass`]: whether a failure can be cured by running again, only
//! on this machine, or not by rf at all; and [`FailureCounts`], a tally of
//! failures by class that words the advice for all of them.

use std::io::ErrorKind;

use crate::endpoint::Endpoint;
use crate::files::extract::ExtractError;

use super::Error;

/// How a failure can be cured; the advice (and the command line's exit
/// code) follows from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailureClass {
    /// Running again may succeed: a broken or cut transfer, a busy or
    /// failing service, an expired signed URL (a re-run lists fresh ones).
    Retryable,
    /// Something on this machine: disk full, permissions, a file in the
    /// way. Running again helps only once that is fixed.
    Local,
    /// The service or the data refuses it (a 4xx other than an expired
    /// link, an archive rf refuses to extract): running again as it is
    /// cannot help.
    Permanent,
}

impl Error {
    /// The class of this failure (see [`FailureClass`]). A download's 403,
    /// 404 or 410 is [`FailureClass::Retryable`]: signed URLs expire, and a
    /// re-run asks for fresh ones.
    pub fn failure_class(&self) -> FailureClass {
        match self {
            Error::Api(api) if api.is_transient() => FailureClass::Retryable,
            Error::Api(api)
                if api.endpoint == Endpoint::Download && matches!(api.status, 403 | 404 | 410) =>
            {
                FailureClass::Retryable
            }
            Error::Transport { .. } | Error::LengthMismatch { .. } | Error::Cancelled => {
                FailureClass::Retryable
            }
            Error::Io { .. } | Error::State(_) => FailureClass::Local,
            Error::Extract(e) => extract_class(e),
            Error::DownloadsFailed { counts, .. } => counts.class(),
            Error::UploadsFailed { .. } => FailureClass::Retryable,
            _ => FailureClass::Permanent,
        }
    }
}

/// An archive that ends early may download whole next time; one whose data
/// is corrupt or over a limit is refused again; a write that failed is this
/// machine's.
fn extract_class(e: &ExtractError) -> FailureClass {
    match e {
        ExtractError::Truncated { .. } => FailureClass::Retryable,
        ExtractError::TooManyEntries { .. } | ExtractError::TooLarge { .. } => {
            FailureClass::Permanent
        }
        ExtractError::Io { source, .. } => match source.kind() {
            ErrorKind::InvalidData | ErrorKind::InvalidInput => FailureClass::Permanent,
            ErrorKind::UnexpectedEof => FailureClass::Retryable,
            _ => FailureClass::Local,
        },
    }
}

/// Failures counted by [`FailureClass`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FailureCounts {
    /// Failures a re-run may cure.
    pub retryable: usize,
    /// Failures on this machine.
    pub local: usize,
    /// Failures a re-run cannot cure.
    pub permanent: usize,
}

impl FailureCounts {
    /// Counts one failure of `class`.
    pub fn add(&mut self, class: FailureClass) {
        match class {
            FailureClass::Retryable => self.retryable += 1,
            FailureClass::Local => self.local += 1,
            FailureClass::Permanent => self.permanent += 1,
        }
    }

    /// The class of them all: the one that needs the most from the user
    /// (a permanent failure before a local one before a retryable one).
    pub fn class(&self) -> FailureClass {
        if self.permanent > 0 {
            FailureClass::Permanent
        } else if self.local > 0 {
            FailureClass::Local
        } else {
            FailureClass::Retryable
        }
    }

    /// What to do about them, as one clause.
    pub fn advice(&self) -> String {
        let mut clauses = Vec::new();
        if self.permanent > 0 {
            clauses.push(format!(
                "{} cannot succeed as they are (see the first error; running again will not help)",
                self.permanent
            ));
        }
        if self.local > 0 {
            clauses.push(format!(
                "{} failed on this machine (disk space, permissions, a file in the way): fix that, then re-run the same command",
                self.local
            ));
        }
        if self.retryable > 0 {
            clauses.push(format!(
                "{} may succeed if tried again: re-run the same command to retry only the failed ones",
                self.retryable
            ));
        }
        clauses.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{ApiError, ApiErrorKind};

    fn download_status(status: u16) -> Error {
        Error::Api(ApiError {
            kind: ApiErrorKind::from_status(rf_transport::StatusCode::from_u16(status).unwrap()),
            status,
            endpoint: Endpoint::Download,
            id: Some("r.tar".into()),
            message: "nope".into(),
            retry_after: None,
        })
    }

    #[test]
    fn an_expired_link_and_a_busy_service_are_retryable_other_refusals_are_not() {
        for status in [403, 404, 410, 429, 500, 503] {
            assert_eq!(
                download_status(status).failure_class(),
                FailureClass::Retryable,
                "{status}"
            );
        }
        assert_eq!(
            download_status(400).failure_class(),
            FailureClass::Permanent
        );
        let io = Error::Io {
            context: "cannot write",
            path: "out/r.tar".into(),
            source: std::io::Error::from(ErrorKind::StorageFull),
        };
        assert_eq!(io.failure_class(), FailureClass::Local);
        let bomb = Error::Extract(ExtractError::TooLarge {
            archive: "r.tar".into(),
            limit: 1,
        });
        assert_eq!(bomb.failure_class(), FailureClass::Permanent);
    }

    #[test]
    fn the_tally_is_classed_by_what_needs_most_from_the_user() {
        let mut counts = FailureCounts::default();
        counts.add(FailureClass::Retryable);
        assert_eq!(counts.class(), FailureClass::Retryable);
        counts.add(FailureClass::Local);
        assert_eq!(counts.class(), FailureClass::Local);
        counts.add(FailureClass::Permanent);
        assert_eq!(counts.class(), FailureClass::Permanent);
        let advice = counts.advice();
        assert!(advice.contains("1 cannot succeed"), "{advice}");
        assert!(advice.contains("1 failed on this machine"), "{advice}");
        assert!(advice.contains("1 may succeed"), "{advice}");
    }
}
