//! Buckets as an ingest source: S3, Google Cloud Storage and Azure Blob
//! Storage through the `object_store` crate (cargo feature `cloud`, on by
//! default).
//!
//! - [`url`]: [`CloudUrl`], a parsed `s3://bucket/prefix/**/*.jpg`;
//! - [`store`]: [`open`], the bucket from the cloud's standard environment,
//!   as a [`Store`] that lists and presigns;
//! - [`list`]: [`Listing`], the media objects under the URL, streamed and
//!   filtered like a local scan;
//! - [`error`]: [`CloudError`], each failure its own variant.

pub mod error;
pub mod list;
mod sas;
pub mod store;
pub mod url;

pub use error::CloudError;
pub use list::{CloudObject, ListTally, Listing};
pub use store::{SigningStore, Store, open, open_with_env};
pub use url::{CloudUrl, CloudUrlError, Provider};
