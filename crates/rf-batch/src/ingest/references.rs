//! Reference ingest: images or videos that the service downloads by URL,
//! listed in a local JSONL file (`{"name": ..., "url": ...}` per line).
//!
//! The file is read line by line and sent in chunks of at most
//! [`MAX_REFERENCES_PER_REQUEST`] references, so a file of millions of lines
//! never sits in memory whole. Each chunk carries its own ingest ID
//! (`<ingest_id>-<n>`) so the service's duplicate detection recognises a
//! retried chunk without confusing two different ones. Chunks go several
//! at once under an adaptive limit ([`MAX_CHUNKS_IN_FLIGHT`]).

use std::path::{Path, PathBuf};

use futures::StreamExt;

use rf_types::{
    BatchId, ImageReferencesIngestRequest, IngestId, Reference, ReferencesSource,
    VideoReferencesIngestRequest,
};
use tokio::io::AsyncBufReadExt;

use super::scan::MediaKind;
use crate::client::Client;
use crate::error::{Error, Result};
use crate::limit::{Concurrency, Limiter};

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

/// Chunks sent at once at most: each holds up to
/// [`MAX_REFERENCES_PER_REQUEST`] references (a few MB) in memory.
pub const MAX_CHUNKS_IN_FLIGHT: usize = 4;

/// One chunk read from the file: its ingest ID and its references.
struct Chunk {
    id: String,
    refs: Vec<Reference>,
}

/// Ingests every reference of the JSONL file at `path` into `batch`.
///
/// Chunks are sent as they are read, several at once under an adaptive
/// limit ([`crate::limit`], from 2 up to [`MAX_CHUNKS_IN_FLIGHT`]: cut on
/// `429`, `503` or timeouts, grown while throughput rises); they are
/// counted in file order. Blank lines are skipped; a line that is not
/// `{"name", "url"}` JSON stops the ingest with an error naming the line,
/// once the chunks before it are sent, and before anything of its chunk is.
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
    let reader = ChunkReader {
        lines: tokio::io::BufReader::new(file).lines(),
        path: path.to_path_buf(),
        chunk_size: chunk_size.clamp(1, MAX_REFERENCES_PER_REQUEST),
        ingest_id: ingest_id.to_string(),
        line_no: 0,
        chunks: 0,
    };
    let limiter = Limiter::new(
        Concurrency::Adaptive {
            initial: 2,
            max: MAX_CHUNKS_IN_FLIGHT,
        },
        client.retry_stats().cloned(),
    );
    let sent = reader
        .into_stream()
        .map(|chunk| {
            let limiter = limiter.clone();
            async move {
                let chunk = chunk?;
                let permit = limiter.acquire().await;
                let work: usize = chunk.refs.iter().map(|r| r.name.len() + r.url.len()).sum();
                let count = chunk.refs.len() as u64;
                let r = send_chunk(client, batch, kind, chunk.refs, &chunk.id, display_name).await;
                let overload = r.as_ref().err().is_some_and(Error::is_overload);
                permit.finish(work as u64, overload);
                r.map(|duplicated| (chunk.id, count, duplicated))
            }
        })
        .buffered(MAX_CHUNKS_IN_FLIGHT);
    let mut sent = std::pin::pin!(sent);
    let mut summary = ReferencesSummary::default();
    while let Some(done) = sent.next().await {
        let (id, count, duplicated) = done?;
        summary.references += count;
        summary.requests += 1;
        summary.duplicated += u64::from(duplicated);
        summary.ingest_ids.push(id);
    }
    Ok(summary)
}

/// Reads a references file chunk by chunk.
struct ChunkReader {
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::fs::File>>,
    path: PathBuf,
    chunk_size: usize,
    ingest_id: String,
    line_no: u64,
    chunks: u64,
}

impl ChunkReader {
    /// The chunks, ended after the first error.
    fn into_stream(self) -> impl futures::Stream<Item = Result<Chunk>> {
        futures::stream::unfold(Some(self), |reader| async move {
            let mut reader = reader?;
            match reader.next_chunk().await {
                Ok(None) => None,
                Ok(Some(chunk)) => Some((Ok(chunk), Some(reader))),
                Err(e) => Some((Err(e), None)),
            }
        })
    }

    /// The next chunk (`None` at the end of the file).
    async fn next_chunk(&mut self) -> Result<Option<Chunk>> {
        let mut refs: Vec<Reference> = Vec::with_capacity(self.chunk_size.min(1024));
        while refs.len() < self.chunk_size {
            let line = self.lines.next_line().await.map_err(|source| Error::Io {
                context: "cannot read references file",
                path: self.path.clone(),
                source,
            })?;
            let Some(line) = line else { break };
            self.line_no += 1;
            if line.trim().is_empty() {
                continue;
            }
            let reference = serde_json::from_str(&line).map_err(|e| Error::InvalidInput {
                what: "references file",
                detail: format!(
                    "{} line {}: {e}; expected {{\"name\": ..., \"url\": ...}}",
                    self.path.display(),
                    self.line_no
                ),
            })?;
            refs.push(reference);
        }
        if refs.is_empty() {
            return Ok(None);
        }
        let id = format!("{}-{}", self.ingest_id, self.chunks);
        self.chunks += 1;
        Ok(Some(Chunk { id, refs }))
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
