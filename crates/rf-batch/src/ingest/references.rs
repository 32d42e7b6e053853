//! Reference ingest: images or videos that the service downloads by URL,
//! listed in a local JSONL file (`{"name": ..., "url": ...}` per line).
//!
//! The file is read line by line and sent in chunks of at most
//! [`MAX_REFERENCES_PER_REQUEST`] references, so a file of millions of lines
//! never sits in memory whole. Each chunk carries its own ingest ID
//! (`<ingest_id>-<n>`) so the service's duplicate detection recognises a
//! retried chunk without confusing two different ones.

use std::path::Path;

use rf_types::{
    BatchId, ImageReferencesIngestRequest, IngestId, Reference, ReferencesSource,
    VideoReferencesIngestRequest,
};
use tokio::io::AsyncBufReadExt;

use super::scan::MediaKind;
use crate::client::Client;
use crate::error::{Error, Result};

/// Most references sent in one request (the official client's chunk size).
pub const MAX_REFERENCES_PER_REQUEST: usize = 20_000;

/// What a reference ingest did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReferencesSummary {
    /// References sent.
    pub references: u64,
    /// Requests made (one per chunk).
    pub requests: u64,
    /// Ingest IDs of the chunks.
    pub ingest_ids: Vec<String>,
    /// Chunks the service recognised as repeats.
    pub duplicated: u64,
}

/// Ingests every reference of the JSONL file at `path` into `batch`.
///
/// Blank lines are skipped; a line that is not `{"name", "url"}` JSON stops
/// the ingest with an error naming the line, before anything of its chunk is
/// sent.
pub async fn ingest_references_file(
    client: &Client,
    batch: &BatchId,
    kind: MediaKind,
    path: &Path,
    ingest_id: &str,
    chunk_size: usize,
    display_name: Option<&str>,
) -> Result<ReferencesSummary> {
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|source| Error::Io {
            context: "cannot open references file",
            path: path.to_path_buf(),
            source,
        })?;
    let mut lines = tokio::io::BufReader::new(file).lines();
    let chunk_size = chunk_size.clamp(1, MAX_REFERENCES_PER_REQUEST);
    let mut summary = ReferencesSummary::default();
    let mut chunk: Vec<Reference> = Vec::with_capacity(chunk_size.min(1024));
    let mut line_no = 0u64;
    loop {
        let line = lines.next_line().await.map_err(|source| Error::Io {
            context: "cannot read references file",
            path: path.to_path_buf(),
            source,
        })?;
        let done = line.is_none();
        if let Some(line) = line {
            line_no += 1;
            if !line.trim().is_empty() {
                let reference: Reference =
                    serde_json::from_str(&line).map_err(|e| Error::InvalidInput {
                        what: "references file",
                        detail: format!(
                            "{} line {line_no}: {e}; expected {{\"name\": ..., \"url\": ...}}",
                            path.display()
                        ),
                    })?;
                chunk.push(reference);
            }
        }
        if chunk.len() >= chunk_size || (done && !chunk.is_empty()) {
            let id = format!("{ingest_id}-{}", summary.requests);
            let refs = std::mem::take(&mut chunk);
            summary.references += refs.len() as u64;
            let duplicated = send_chunk(client, batch, kind, refs, &id, display_name).await?;
            summary.requests += 1;
            summary.duplicated += u64::from(duplicated);
            summary.ingest_ids.push(id);
        }
        if done {
            return Ok(summary);
        }
    }
}

async fn send_chunk(
    client: &Client,
    batch: &BatchId,
    kind: MediaKind,
    refs: Vec<Reference>,
    ingest_id: &str,
    display_name: Option<&str>,
) -> Result<bool> {
    let source = ReferencesSource::Inline(refs);
    let ingest_id = Some(IngestId::from(ingest_id));
    Ok(match kind {
        MediaKind::Image => {
            let req = ImageReferencesIngestRequest {
                source,
                ingest_id,
                notifications_url: None,
                notification_categories: None,
            };
            let r = client
                .staging()
                .ingest_image_references(batch, &req, display_name)
                .await?;
            r.duplicated.unwrap_or(false)
        }
        MediaKind::Video => {
            let req = VideoReferencesIngestRequest {
                source,
                ingest_id,
                notifications_url: None,
                notification_categories: None,
            };
            let r = client
                .staging()
                .ingest_video_references(batch, &req, display_name)
                .await?;
            r.duplicated.unwrap_or(false)
        }
    })
}
