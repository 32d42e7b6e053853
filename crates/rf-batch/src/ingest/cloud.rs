//! Reference ingest straight from a bucket (S3, GCS, Azure Blob).
//!
//! The bucket is listed as a stream ([`crate::cloud::Listing`]: glob, hidden
//! names, extension and size rules of a local scan); each object kept is
//! presigned for `GET` and becomes a reference named by its key relative to
//! the prefix, flattened by the local files' rule ([`super::flat_name`]:
//! `a/x.jpg` → `a__x.jpg`, unique and the same on every run). References go
//! out in chunks of at most [`MAX_REFERENCES_PER_REQUEST`] while the
//! listing continues ([`send_references`]).
//!
//! Each chunk's ingest ID is derived from the batch, the bucket URL and the
//! names in it, and chunks end where a name's hash says ([`ends_chunk`]) or
//! when full, so a re-run over an unchanged bucket (stores list keys in
//! order) builds the same chunks with the same IDs, and one over a bucket
//! that changed rebuilds only the chunks around the change.
//! Accepted chunks are appended to a [`ChunkJournal`]; on a re-run a
//! recorded chunk is checked with the service before it is skipped: its
//! shards must be in the batch's shard listing (images), or the batch must
//! exist (videos, whose ingest announces no shards). A chunk that fails the
//! check is sent again.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use futures::TryStreamExt;
use object_store::signer::Method;
use rf_types::{BatchId, Reference};
use sha2::{Digest, Sha256};

use super::references::{
    ChunkAccepted, ChunkPolicy, MAX_REFERENCES_PER_REQUEST, ReferencesSummary, ReferencesTarget,
    send_references,
};
use super::scan::{MAX_IMAGE_BYTES, MediaKind};
use crate::ApiErrorKind;
use crate::cloud::{CloudError, CloudUrl, ListTally, Listing, SigningStore};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::events::Event;
use crate::state::{ChunkJournal, StateLock};

/// How long presigned URLs stay valid by default: 24 hours, like the
/// official client. The service fetches the objects after accepting the
/// chunk, possibly much later on a busy queue, so an expiry of minutes could
/// fail the ingest; a longer one only widens the window in which a leaked
/// URL reads the object (S3 and GCS signatures allow at most 7 days).
pub const DEFAULT_PRESIGN_EXPIRY: Duration = Duration::from_secs(24 * 60 * 60);

/// What a bucket ingest does.
#[derive(Debug, Clone)]
pub struct CloudIngestOptions {
    /// The bucket, prefix and glob.
    pub url: CloudUrl,
    /// The batch.
    pub batch_id: BatchId,
    /// Images or videos.
    pub kind: MediaKind,
    /// The journal of accepted chunks (one per batch and URL, see
    /// [`journal_file_name`]; keep it to make a re-run resume). Its
    /// directory is locked for the run ([`StateLock`]).
    pub journal: PathBuf,
    /// Who the ingest says it is in the lock (default `an rf-batch ingest`).
    pub lock_owner: Option<String>,
    /// How long each presigned URL stays valid.
    pub presign_expiry: Duration,
    /// References per request (at most [`MAX_REFERENCES_PER_REQUEST`]).
    pub chunk_size: usize,
    /// The batch's display name, if it is created.
    pub display_name: Option<String>,
    /// Where the service sends the ingest's webhooks (`notificationsURL`).
    pub notifications_url: Option<String>,
    /// Largest image kept, in bytes.
    pub max_image_bytes: u64,
}

impl CloudIngestOptions {
    /// An ingest of `url` into `batch_id` with every default.
    pub fn new(url: CloudUrl, batch_id: BatchId, kind: MediaKind, journal: PathBuf) -> Self {
        CloudIngestOptions {
            url,
            batch_id,
            kind,
            journal,
            lock_owner: None,
            presign_expiry: DEFAULT_PRESIGN_EXPIRY,
            chunk_size: MAX_REFERENCES_PER_REQUEST,
            display_name: None,
            notifications_url: None,
            max_image_bytes: MAX_IMAGE_BYTES,
        }
    }
}

/// What a bucket ingest did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CloudIngestReport {
    /// The chunks: sent, skipped as accepted before, repeats.
    pub references: ReferencesSummary,
    /// What the listing saw and left out.
    pub listing: ListTally,
}

/// Lists, presigns and ingests every media object of `options.url` (see the
/// module docs).
///
/// Cancelling `ctx` stops before the next chunk ([`Error::Cancelled`]);
/// every chunk accepted so far is in the journal.
pub async fn ingest_cloud(
    ctx: &Context,
    store: &dyn SigningStore,
    options: &CloudIngestOptions,
) -> Result<CloudIngestReport> {
    let dir = options
        .journal
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let owner = options
        .lock_owner
        .as_deref()
        .unwrap_or("an rf-batch ingest");
    let _lock = StateLock::acquire(dir, owner)?;
    ingest_cloud_locked(ctx, store, options).await
}

/// [`ingest_cloud`] for a caller that holds the journal directory's lock
/// already (the pipeline, whose state directory it is).
pub(crate) async fn ingest_cloud_locked(
    ctx: &Context,
    store: &dyn SigningStore,
    options: &CloudIngestOptions,
) -> Result<CloudIngestReport> {
    let journal = ChunkJournal::open(
        &options.journal,
        options.batch_id.as_str(),
        options.url.as_str(),
    )?;
    let client = &ctx.client;
    let mut policy = CloudChunks {
        ctx,
        chunk_size: options.chunk_size.clamp(1, MAX_REFERENCES_PER_REQUEST),
        batch: &options.batch_id,
        source: options.url.as_str(),
        journal,
        shards: None,
        sent: 0,
        skipped: 0,
        chunks: 0,
    };
    let mut listing = Listing::new(store, &options.url, options.kind, options.max_image_bytes)
        .with_folders(store);
    let refs = signed_references(ctx, store, &mut listing, options);
    let target = ReferencesTarget {
        client,
        batch: &options.batch_id,
        kind: options.kind,
        chunk_size: options.chunk_size,
        display_name: options.display_name.as_deref(),
        notifications_url: options.notifications_url.as_deref(),
    };
    let references = send_references(&target, refs, &mut policy).await?;
    Ok(CloudIngestReport {
        references,
        listing: listing.tally(),
    })
}

/// How often a bucket ingest tells how far its listing is: every this many
/// objects listed ([`crate::Event::BucketListed`]).
pub const LISTED_EVENT_EVERY: u64 = 1_000;

/// The listing's kept objects as presigned references, in listing order;
/// tells the listing's progress as it goes ([`crate::Event::BucketListed`]).
fn signed_references<'s>(
    ctx: &'s Context,
    store: &'s dyn SigningStore,
    listing: &'s mut Listing<'_>,
    options: &'s CloudIngestOptions,
) -> impl futures::Stream<Item = Result<Reference>> + 's {
    let state = (listing, 0u64);
    futures::stream::try_unfold(state, move |(listing, told)| async move {
        let next = listing.next().await?;
        let tally = listing.tally();
        let done = next.is_none();
        let told = if done || tally.listed >= told + LISTED_EVENT_EVERY {
            ctx.events.try_emit(Event::BucketListed {
                listed: tally.listed,
                kept: tally.kept,
                done,
            });
            tally.listed
        } else {
            told
        };
        let Some(object) = next else {
            return Ok(None);
        };
        let url = store
            .signed_url(Method::GET, &object.location, options.presign_expiry)
            .await
            .map_err(|source| CloudError::Sign {
                url: options.url.as_str().to_owned(),
                key: object.location.to_string(),
                source: Box::new(source),
            })?;
        let reference = Reference::new(super::flat_name(&object.relative), url.to_string());
        Ok::<_, Error>(Some((reference, (listing, told))))
    })
}

/// Lists `url` as [`ingest_cloud`] would, without signing or sending
/// anything: what would be sent (`kept`) and what is left out, and the same
/// errors for an empty prefix or nothing matching.
pub async fn list_cloud(
    store: &dyn SigningStore,
    url: &CloudUrl,
    kind: MediaKind,
    max_image_bytes: u64,
) -> Result<ListTally> {
    let mut listing = Listing::new(store, url, kind, max_image_bytes).with_folders(store);
    while listing.next().await?.is_some() {}
    Ok(listing.tally())
}

/// The journal's file name for an ingest of `url` of `kind`: one per source
/// (`cloud-<16 hex of the URL's SHA-256>-images.jsonl`), so several buckets
/// can feed one batch, each resuming on its own.
pub fn journal_file_name(url: &CloudUrl, kind: MediaKind) -> String {
    let hash = Sha256::digest(url.as_str().as_bytes());
    format!("cloud-{}-{}.jsonl", hex::encode(&hash[..8]), kind.plural())
}

/// The deterministic ingest ID of a chunk of `source` into `batch` holding
/// `refs`: a hash of the three (names are unique in a listing, so two
/// chunks never share one), independent of the chunk's position.
pub fn chunk_ingest_id(batch: &str, source: &str, refs: &[Reference]) -> String {
    let mut hash = Sha256::new();
    for part in [batch, source]
        .into_iter()
        .chain(refs.iter().map(|r| r.name.as_str()))
    {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    format!("rf-{}", hex::encode(&hash.finalize()[..16]))
}

/// Whether a chunk of a bucket ingest ends after `name`, its `len`-th
/// reference: past a quarter of `chunk_size`, where the name's hash hits
/// one in `chunk_size / 2`. Boundaries thus depend on the names around
/// them, not on their positions in the listing: an object added or removed
/// between two runs changes the chunk it falls in (and seldom the next),
/// not every chunk after it.
pub fn ends_chunk(name: &str, len: usize, chunk_size: usize) -> bool {
    if len < chunk_size / 4 {
        return false;
    }
    let digest = Sha256::digest(name.as_bytes());
    let mut head = [0u8; 8];
    head.copy_from_slice(&digest[..8]);
    let divisor = (chunk_size / 2).max(2) as u64;
    u64::from_be_bytes(head) % divisor == 0
}

/// Chunk naming and resuming of a bucket ingest.
struct CloudChunks<'a> {
    ctx: &'a Context,
    /// References per chunk at most.
    chunk_size: usize,
    batch: &'a BatchId,
    source: &'a str,
    journal: ChunkJournal,
    /// The batch's shards, listed once at the first chunk.
    shards: Option<BatchShards>,
    /// What [`crate::Event::BucketChunk`] tells.
    sent: u64,
    skipped: u64,
    chunks: u64,
}

/// What the batch's shard listing shows: its shard IDs, and the ingest IDs
/// its shards name in their `statusMetadata` (where the service says).
#[derive(Default)]
struct BatchShards {
    ids: HashSet<String>,
    ingest_ids: HashSet<String>,
}

impl CloudChunks<'_> {
    /// One more chunk answered: tells the totals so far.
    fn tell_chunk(&mut self) {
        self.chunks += 1;
        self.ctx.events.try_emit(Event::BucketChunk {
            sent: self.sent,
            skipped: self.skipped,
            chunks: self.chunks,
        });
    }

    async fn batch_exists(&self) -> Result<bool> {
        match self.ctx.client.staging().batch(self.batch.as_str()).await {
            Ok(_) => Ok(true),
            Err(e) if e.is_api(ApiErrorKind::NotFound) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn shards(&mut self) -> Result<&BatchShards> {
        if self.shards.is_none() {
            let mut listed = BatchShards::default();
            let mut stream = self.ctx.client.staging().shards(self.batch.as_str());
            loop {
                match stream.try_next().await {
                    Ok(Some(shard)) => {
                        let ingest_id = shard
                            .status_metadata
                            .as_ref()
                            .and_then(|m| m.get("ingestId"))
                            .and_then(|v| v.as_str());
                        listed.ingest_ids.extend(ingest_id.map(str::to_owned));
                        listed.ids.insert(shard.shard_id.to_string());
                    }
                    Ok(None) => break,
                    // A batch not created yet has no shards.
                    Err(e) if e.is_api(ApiErrorKind::NotFound) => break,
                    Err(e) => return Err(e),
                }
            }
            self.shards = Some(listed);
        }
        Ok(self.shards.get_or_insert_default())
    }
}

impl ChunkPolicy for CloudChunks<'_> {
    fn ingest_id(&mut self, _index: u64, refs: &[Reference]) -> String {
        chunk_ingest_id(self.batch.as_str(), self.source, refs)
    }

    fn ends_chunk(&self, reference: &Reference, len: usize) -> bool {
        ends_chunk(&reference.name, len, self.chunk_size)
    }

    async fn already_accepted(&mut self, ingest_id: &str, references: u64) -> Result<bool> {
        self.ctx.check_cancel()?;
        let recorded = self.journal.get(ingest_id).map(|r| r.shard_ids.clone());
        if recorded.as_ref().is_some_and(Vec::is_empty) {
            // A video chunk: the service announces no shards for it.
            return self.batch_exists().await;
        }
        let shards = self.shards().await?;
        let seen = match &recorded {
            Some(ids) => ids.iter().all(|s| shards.ids.contains(s)),
            // Accepted, but the run stopped before recording it.
            None => shards.ingest_ids.contains(ingest_id),
        };
        if seen && recorded.is_none() {
            self.journal.append(ingest_id, references, Vec::new())?;
        }
        if seen {
            self.skipped += references;
            self.tell_chunk();
        }
        Ok(seen)
    }

    fn accepted(&mut self, chunk: &ChunkAccepted) -> Result<()> {
        let shard_ids = chunk.shard_ids.iter().map(ToString::to_string).collect();
        self.journal
            .append(&chunk.ingest_id, chunk.references, shard_ids)?;
        self.sent += chunk.references;
        self.tell_chunk();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_end_by_name_past_a_quarter_and_average_below_full() {
        let names: Vec<String> = (0..200_000).map(|i| format!("a/img_{i:07}.jpg")).collect();
        assert!(!names.iter().any(|n| ends_chunk(n, 4_999, 20_000)));
        let (mut len, mut chunks) = (0usize, 0usize);
        for name in &names {
            len += 1;
            if ends_chunk(name, len, 20_000) || len == 20_000 {
                chunks += 1;
                len = 0;
            }
        }
        // 5,000 + about 10,000 on average, at most 20,000.
        assert!((10..=40).contains(&chunks), "{chunks} chunks");
        assert_eq!(
            chunk_ingest_id("b", "s3://x/", &[Reference::new("a.jpg", "u1")]),
            chunk_ingest_id("b", "s3://x/", &[Reference::new("a.jpg", "u2")]),
            "the signed URL is not part of the ID"
        );
    }
}
