//! The ingest stage of a run whose input is a bucket (`RunConfig::bucket`):
//! the run's manifest records the bucket URL as its input, and the bucket
//! is ingested by reference ([`crate::ingest::cloud`]) with the chunk
//! journal beside the manifest. Every attempt lists the bucket again: the
//! chunks the service has are checked and skipped, so a re-run sends
//! nothing twice, and the count check waits for exactly what was listed.

use std::path::PathBuf;
use std::time::Duration;

use rf_types::BatchId;

use super::ingest::{IngestSource, PreparedIngest, check_same_run};
use crate::cloud::CloudUrl;
use crate::context::Context;
use crate::error::{Error, Result};
use crate::ingest::cloud::{CloudIngestOptions, ingest_cloud_locked, journal_file_name};
use crate::ingest::{MediaKind, PlanOptions, ScanOptions, UploadMode};
use crate::state::{Manifest, ManifestFile, RunIdentity, state_dir_of};

/// A bucket to ingest for a run.
#[derive(Debug)]
pub(crate) struct BucketSource<'a> {
    /// The bucket URL.
    pub(crate) url: &'a CloudUrl,
    /// The run's manifest.
    pub(crate) state_file: PathBuf,
    /// The batch asked for (default: generated once, kept in the manifest).
    pub(crate) batch_id: Option<BatchId>,
    /// The run's workflow.
    pub(crate) workflow_id: &'a str,
    /// Images or videos (default images).
    pub(crate) kind: MediaKind,
    /// How long presigned URLs stay valid.
    pub(crate) presign_expiry: Duration,
    /// The batch's display name.
    pub(crate) display_name: Option<String>,
    /// The staging webhook (`notificationsURL`).
    pub(crate) notifications_url: Option<String>,
    /// Largest image kept.
    pub(crate) max_image_bytes: u64,
}

/// Opens (or starts) the run's manifest and ingests the bucket.
pub(crate) async fn ingest_bucket(ctx: &Context, src: BucketSource<'_>) -> Result<PreparedIngest> {
    let (manifest, resumed) = open_or_start(&src)?;
    let mut state = ManifestFile::new(manifest, &src.state_file);
    state.save()?;
    let batch = BatchId::new(state.run.batch_id.clone()).map_err(|e| Error::InvalidInput {
        what: "batch id in manifest",
        detail: e.to_string(),
    })?;
    let store = crate::cloud::open(src.url)?;
    let journal = state_dir_of(&src.state_file).join(journal_file_name(src.url, src.kind));
    let mut options = CloudIngestOptions::new(src.url.clone(), batch.clone(), src.kind, journal);
    options.presign_expiry = src.presign_expiry;
    options.display_name = src.display_name;
    options.notifications_url = src.notifications_url;
    options.max_image_bytes = src.max_image_bytes;
    let report = ingest_cloud_locked(ctx, store.as_ref(), &options).await?;
    let found = usize::try_from(report.listing.kept).unwrap_or(usize::MAX);
    let (images, videos) = match src.kind {
        MediaKind::Image => (found, 0),
        MediaKind::Video => (0, found),
    };
    Ok(PreparedIngest {
        state,
        batch,
        input_dir: PathBuf::from(src.url.as_str()),
        resumed,
        images,
        videos,
        skipped: Vec::new(),
        expected: report.references.references,
        uploaded_before: report.references.skipped_references,
    })
}

/// The manifest of an earlier attempt of this run, or a new one.
fn open_or_start(src: &BucketSource<'_>) -> Result<(Manifest, bool)> {
    let input_dir = PathBuf::from(src.url.as_str());
    if let Some(manifest) = Manifest::load(&src.state_file)? {
        let same = IngestSource {
            input_dir,
            state_file: src.state_file.clone(),
            batch_id: src.batch_id.clone(),
            workflow_id: src.workflow_id.to_owned(),
            kind: Some(src.kind),
            scan: ScanOptions::default(),
            plan: PlanOptions::default(),
        };
        check_same_run(&same, &manifest)?;
        return Ok((manifest, true));
    }
    let run = RunIdentity {
        input_dir,
        batch_id: src
            .batch_id
            .clone()
            .unwrap_or_else(BatchId::generate)
            .to_string(),
        workflow_id: src.workflow_id.to_owned(),
        kind: src.kind,
    };
    Ok((Manifest::new(run, UploadMode::Bulk), false))
}
