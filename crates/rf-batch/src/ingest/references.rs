//! Reference ingest: images or videos that the service downloads by URL.
//!
//! [`send_references`] takes any stream of references and sends it in
//! chunks of at most [`MAX_REFERENCES_PER_REQUEST`] while the stream is
//! still being read, so millions of references never sit in memory whole.
//! Chunks go several at once under an adaptive limit ([`crate::limit`],
//! from 2 up to [`MAX_CHUNKS_IN_FLIGHT`]: cut on `429`, `503` or timeouts,
//! grown while throughput rises) and are recorded in stream order. A
//! [`ChunkPolicy`] names each chunk (its ingest ID), may skip a chunk the
//! service already accepted, and is told of each acceptance. Two sources use
//! it: a local JSONL file ([`ingest_references_file`], chunk IDs
//! `<ingest_id>-<n>`) and a bucket listing (`ingest::cloud`, deterministic
//! IDs and a journal of accepted chunks).

use std::future::Future;
use std::path::Path;

use futures::stream::FuturesOrdered;
use futures::{Stream, StreamExt};
use rf_types::{
    BatchId, ImageReferencesIngestRequest, IngestId, Reference, ReferencesSource, ShardId,
    VideoReferencesIngestRequest,
};
use tokio::io::AsyncBufReadExt;

use super::scan::MediaKind;
use crate::client::Client;
use crate::error::{Error, Result};
use crate::limit::{Concurrency, Limiter};

/// Most references sent in one request (the official client's chunk size).
pub const MAX_REFERENCES_PER_REQUEST: usize = 20_000;

/// Chunks sent at once at most: each holds up to
/// [`MAX_REFERENCES_PER_REQUEST`] references (a few MB) in memory.
pub const MAX_CHUNKS_IN_FLIGHT: usize = 4;

/// What a reference ingest did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReferencesSummary {
    /// References read from the source (sent or in skipped chunks).
    pub references: u64,
    /// Requests made (one per chunk sent).
    pub requests: u64,
    /// Ingest IDs of the chunks sent.
    pub ingest_ids: Vec<String>,
    /// Chunks the service recognised as repeats.
    pub duplicated: u64,
    /// Chunks not sent because the service had accepted them already.
    pub skipped_chunks: u64,
    /// References in those chunks.
    pub skipped_references: u64,
}

/// What the service answered to one chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkAccepted {
    /// The chunk's ingest ID.
    pub ingest_id: String,
    /// References in the chunk.
    pub references: u64,
    /// Shards the service creates for it (images only).
    pub shard_ids: Vec<ShardId>,
    /// Whether the service recognised it as a repeat.
    pub duplicated: bool,
}

/// How the chunks of a reference ingest are named and resumed.
pub trait ChunkPolicy {
    /// The ingest ID of chunk number `index` (from 0) holding `refs`.
    fn ingest_id(&mut self, index: u64, refs: &[Reference]) -> String;
    /// Whether the chunk `ingest_id` (of `references` references) was
    /// accepted before and need not be sent.
    fn already_accepted(
        &mut self,
        ingest_id: &str,
        references: u64,
    ) -> impl Future<Output = Result<bool>> + Send;
    /// Records that the service accepted a chunk.
    fn accepted(&mut self, chunk: &ChunkAccepted) -> Result<()>;
    /// Whether the chunk ends after `reference`, its `len`-th, although it
    /// is not full (default: never; chunks are cut when full).
    fn ends_chunk(&self, _reference: &Reference, _len: usize) -> bool {
        false
    }
}

/// Where a reference ingest goes.
#[derive(Debug, Clone, Copy)]
pub struct ReferencesTarget<'a> {
    /// The client.
    pub client: &'a Client,
    /// The batch.
    pub batch: &'a BatchId,
    /// Images or videos.
    pub kind: MediaKind,
    /// References per request (clamped to 1..=[`MAX_REFERENCES_PER_REQUEST`]).
    pub chunk_size: usize,
    /// The batch's display name, if it is created.
    pub display_name: Option<&'a str>,
    /// Where the service sends the ingest's webhooks (`notificationsURL`).
    pub notifications_url: Option<&'a str>,
}

/// Sends every reference of `refs` in chunks, each as soon as it is full,
/// up to [`MAX_CHUNKS_IN_FLIGHT`] at once. An error of the stream stops the
/// ingest before its chunk is sent, once the chunks before it are answered.
pub async fn send_references<S, P>(
    target: &ReferencesTarget<'_>,
    refs: S,
    policy: &mut P,
) -> Result<ReferencesSummary>
where
    S: Stream<Item = Result<Reference>>,
    P: ChunkPolicy,
{
    let mut sender = Sender {
        target,
        chunk_size: target.chunk_size.clamp(1, MAX_REFERENCES_PER_REQUEST),
        limiter: Limiter::new(
            Concurrency::Adaptive {
                initial: 2,
                max: MAX_CHUNKS_IN_FLIGHT,
            },
            target.client.retry_stats().cloned(),
        ),
        in_flight: FuturesOrdered::new(),
        index: 0,
        summary: ReferencesSummary::default(),
    };
    let mut refs = std::pin::pin!(refs);
    let mut chunk: Vec<Reference> = Vec::with_capacity(sender.chunk_size.min(1024));
    let mut failed = None;
    let mut done = false;
    loop {
        let room = sender.in_flight.len() < MAX_CHUNKS_IN_FLIGHT;
        tokio::select! {
            biased;
            Some(answer) = sender.in_flight.next() => {
                let accepted = answer?;
                sender.record(policy, &accepted)?;
            }
            next = refs.next(), if room && !done => match next {
                Some(Ok(reference)) => {
                    let ends = policy.ends_chunk(&reference, chunk.len() + 1);
                    chunk.push(reference);
                    if ends || chunk.len() == sender.chunk_size {
                        sender.dispatch(policy, std::mem::take(&mut chunk)).await?;
                    }
                }
                Some(Err(e)) => (failed, done) = (Some(e), true),
                None => {
                    done = true;
                    if !chunk.is_empty() {
                        sender.dispatch(policy, std::mem::take(&mut chunk)).await?;
                    }
                }
            },
            else => return failed.map_or(Ok(sender.summary), Err),
        }
    }
}

/// The chunks of one [`send_references`] call: those in flight, in order.
struct Sender<'t, 'a> {
    target: &'t ReferencesTarget<'a>,
    chunk_size: usize,
    limiter: std::sync::Arc<Limiter>,
    in_flight: FuturesOrdered<ChunkFuture<'t>>,
    index: u64,
    summary: ReferencesSummary,
}

impl<'t> Sender<'t, '_> {
    /// Names the chunk, skips it if the service has it, else starts sending it.
    async fn dispatch<P: ChunkPolicy>(
        &mut self,
        policy: &mut P,
        refs: Vec<Reference>,
    ) -> Result<()> {
        let n = refs.len() as u64;
        self.summary.references += n;
        let id = policy.ingest_id(self.index, &refs);
        self.index += 1;
        if policy.already_accepted(&id, n).await? {
            self.summary.skipped_chunks += 1;
            self.summary.skipped_references += n;
            return Ok(());
        }
        let (target, limiter) = (self.target, self.limiter.clone());
        self.in_flight.push_back(Box::pin(async move {
            let permit = limiter.acquire().await;
            let work: usize = refs.iter().map(|r| r.name.len() + r.url.len()).sum();
            let answer = send_chunk(target, refs, &id).await;
            let overload = answer.as_ref().err().is_some_and(Error::is_overload);
            permit.finish(work as u64, overload);
            answer
        }));
        Ok(())
    }

    /// Counts an answered chunk and tells the policy.
    fn record<P: ChunkPolicy>(&mut self, policy: &mut P, accepted: &ChunkAccepted) -> Result<()> {
        self.summary.requests += 1;
        self.summary.duplicated += u64::from(accepted.duplicated);
        self.summary.ingest_ids.push(accepted.ingest_id.clone());
        policy.accepted(accepted)
    }
}

/// A chunk being sent.
type ChunkFuture<'t> = std::pin::Pin<Box<dyn Future<Output = Result<ChunkAccepted>> + Send + 't>>;

/// Chunk IDs `<base>-<n>`, nothing skipped: a references file.
#[derive(Debug)]
struct NumberedIds<'a>(&'a str);

impl ChunkPolicy for NumberedIds<'_> {
    fn ingest_id(&mut self, index: u64, _refs: &[Reference]) -> String {
        format!("{}-{index}", self.0)
    }

    async fn already_accepted(&mut self, _ingest_id: &str, _references: u64) -> Result<bool> {
        Ok(false)
    }

    fn accepted(&mut self, _chunk: &ChunkAccepted) -> Result<()> {
        Ok(())
    }
}

/// Ingests every reference of the JSONL file at `path` into `batch`.
///
/// Blank lines are skipped; a line that is not `{"name", "url"}` JSON stops
/// the ingest with an error naming the line, before anything of its chunk is
/// sent. Each chunk carries its own ingest ID (`<ingest_id>-<n>`) so the
/// service's duplicate detection recognises a retried chunk without
/// confusing two different ones.
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
    let lines = tokio::io::BufReader::new(file).lines();
    let refs =
        futures::stream::try_unfold((lines, 0u64), move |(mut lines, mut line_no)| async move {
            loop {
                let line = lines.next_line().await.map_err(|source| Error::Io {
                    context: "cannot read references file",
                    path: path.to_path_buf(),
                    source,
                })?;
                let Some(line) = line else { return Ok(None) };
                line_no += 1;
                if line.trim().is_empty() {
                    continue;
                }
                let reference = serde_json::from_str(&line).map_err(|e| Error::InvalidInput {
                    what: "references file",
                    detail: format!(
                        "{} line {line_no}: {e}; expected {{\"name\": ..., \"url\": ...}}",
                        path.display()
                    ),
                })?;
                return Ok(Some((reference, (lines, line_no))));
            }
        });
    let target = ReferencesTarget {
        client,
        batch,
        kind,
        chunk_size,
        display_name,
        notifications_url: None,
    };
    send_references(&target, refs, &mut NumberedIds(ingest_id)).await
}

async fn send_chunk(
    target: &ReferencesTarget<'_>,
    refs: Vec<Reference>,
    ingest_id: &str,
) -> Result<ChunkAccepted> {
    let references = refs.len() as u64;
    let source = ReferencesSource::Inline(refs);
    let id = Some(IngestId::from(ingest_id));
    let staging = target.client.staging();
    let (duplicated, shard_ids) = match target.kind {
        MediaKind::Image => {
            let req = ImageReferencesIngestRequest {
                source,
                ingest_id: id,
                notifications_url: target.notifications_url.map(str::to_owned),
                notification_categories: None,
            };
            let r = staging
                .ingest_image_references(target.batch, &req, target.display_name)
                .await?;
            (r.duplicated, r.shard_ids.unwrap_or_default())
        }
        MediaKind::Video => {
            let req = VideoReferencesIngestRequest {
                source,
                ingest_id: id,
                notifications_url: target.notifications_url.map(str::to_owned),
                notification_categories: None,
            };
            let r = staging
                .ingest_video_references(target.batch, &req, target.display_name)
                .await?;
            (r.duplicated, Vec::new())
        }
    };
    Ok(ChunkAccepted {
        ingest_id: ingest_id.to_owned(),
        references,
        shard_ids,
        duplicated: duplicated.unwrap_or(false),
    })
}
