//! `rf-batch`: see docs/architecture.md. Filled in by its issue.
#![deny(missing_docs)]
#![warn(clippy::unwrap_used)]
