//! What an export downloads: a job's output batch, its parts, its count and
//! the pages of signed URLs that list its files.
//!
//! Before the first page can be asked for, an export must know the batch's
//! type (a multipart batch is listed part by part) and, for progress and
//! to bound a runaway listing, how many files it holds. [`ExportPlan::ask`]
//! asks the batch, its parts and its count at once: one round trip where
//! asking them in turn took three, which over a 150 ms link was most of a
//! small export's time. The parts are asked before the batch's type is
//! known; a batch that turns out not to be multipart ignores that answer
//! (the parts endpoint refuses such batches).

use futures::future::Either;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use rf_types::{BatchType, FileMetadata, STAGE_EXPORT};

use crate::client::{Client, LIST_FILES_PAGE_SIZE};
use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::state::download_key;

/// One file of an output batch.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportFile {
    /// The part it belongs to (multipart batches).
    pub part: Option<String>,
    /// Its metadata and download URL.
    pub file: FileMetadata,
}

impl ExportFile {
    /// Its key in the manifest.
    pub fn key(&self) -> String {
        download_key(
            self.part.as_deref(),
            &self.file.file_name,
            self.file.shard_id.as_ref().map(|s| s.as_str()),
        )
    }
}

/// The export stage's output batch of a job (falls back to the last stage
/// that has an output batch).
pub async fn find_export_batch(client: &Client, job_id: &str) -> Result<String> {
    let stages = client.jobs().stages(job_id).await?;
    let export = stages
        .iter()
        .find(|s| s.processing_stage_name == STAGE_EXPORT && !s.output_batches.is_empty())
        .or_else(|| stages.iter().rev().find(|s| !s.output_batches.is_empty()));
    export
        .and_then(|s| s.output_batches.first().cloned())
        .ok_or_else(|| Error::NoExportOutput {
            job_id: job_id.to_string(),
        })
}

/// What listing a batch for export takes: the parts to list one by one
/// (a multipart batch) or none (the batch is listed whole), and the count
/// the listing should come to. Asked with [`ExportPlan::ask`]; listed with
/// [`ExportPlan::files`].
#[derive(Debug, Clone, PartialEq)]
pub struct ExportPlan {
    batch: String,
    parts: Option<Vec<String>>,
    total: u64,
}

impl ExportPlan {
    /// Asks the batch, its parts and its count at once (see the module
    /// docs). `wanted`, when not empty, keeps only those parts of a
    /// multipart batch.
    ///
    /// An unknown batch is that request's error; a part `wanted` that the
    /// batch lacks (any part, for a batch that is not multipart) is
    /// [`Error::UnknownPart`]. The count is best effort: `0` when it cannot
    /// be read (the listing does not depend on it).
    ///
    /// ```no_run
    /// # async fn demo(client: rf_batch::Client) -> Result<(), rf_batch::Error> {
    /// use futures::TryStreamExt;
    /// use rf_batch::export::ExportPlan;
    /// let plan = ExportPlan::ask(&client, "my-output-batch", &[]).await?;
    /// println!("{} files", plan.total());
    /// let files: Vec<_> = plan.files(&client).try_collect().await?;
    /// # Ok(()) }
    /// ```
    pub async fn ask(client: &Client, batch: &str, wanted: &[String]) -> Result<ExportPlan> {
        let staging = client.staging();
        let head = futures::future::join(staging.batch(batch), export_count(client, batch, wanted));
        let mut parts = std::pin::pin!(staging.parts(batch));
        let ((meta, total), parts_answer) =
            match futures::future::select(std::pin::pin!(head), parts.as_mut()).await {
                Either::Left((head, _)) => (head, None),
                Either::Right((answer, head)) => (head.await, Some(answer)),
            };
        let parts = if meta?.batch_type == BatchType::MultipartBatch {
            let answer = match parts_answer {
                Some(answer) => answer,
                None => parts.await,
            };
            let names = answer?.into_iter().map(|p| p.part_name.to_string());
            Some(chosen_parts(batch, names.collect(), wanted)?)
        } else {
            // Only a multipart batch has parts: the request still in flight
            // is dropped (a refusal, or retries of it, never delay this).
            if let Some(part) = wanted.first() {
                return Err(unknown_part(batch, part));
            }
            None
        };
        Ok(ExportPlan {
            batch: batch.to_owned(),
            parts,
            total,
        })
    }

    /// The batch.
    pub fn batch(&self) -> &str {
        &self.batch
    }

    /// The parts listed one by one (a multipart batch), or `None`.
    pub fn parts(&self) -> Option<&[String]> {
        self.parts.as_deref()
    }

    /// How many files the count endpoint says the listing holds (`0`:
    /// unknown).
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Every file of the plan, part by part for a multipart batch, as a
    /// stream that reads the listing one page ahead of its consumer (the
    /// next page is asked for while this one is used, so downloads never
    /// wait for it): memory holds at most two pages (each entry carries a
    /// signed URL of about 1 KB), however large the batch.
    pub fn files(&self, client: &Client) -> BoxStream<'static, Result<ExportFile>> {
        let client = client.clone();
        let batch = self.batch.clone();
        match self.parts.clone() {
            Some(names) => futures::stream::iter(names)
                .flat_map(move |name| {
                    client
                        .staging()
                        .list_files(&batch, Some(&name))
                        .map_ok(move |file| ExportFile {
                            part: Some(name.clone()),
                            file,
                        })
                })
                .boxed(),
            None => client
                .staging()
                .list_files(&batch, None)
                .map_ok(|file| ExportFile {
                    part: file.part_name.as_ref().map(|p| p.to_string()),
                    file,
                })
                .boxed(),
        }
    }
}

/// The batch's parts to list: all of them, or those of `wanted` (in the
/// batch's order), [`Error::UnknownPart`] for the first it lacks.
fn chosen_parts(batch: &str, mut names: Vec<String>, wanted: &[String]) -> Result<Vec<String>> {
    if wanted.is_empty() {
        return Ok(names);
    }
    if let Some(part) = wanted.iter().find(|part| !names.contains(part)) {
        return Err(unknown_part(batch, part));
    }
    names.retain(|n| wanted.contains(n));
    Ok(names)
}

fn unknown_part(batch: &str, part: &str) -> Error {
    Error::UnknownPart {
        batch: batch.to_owned(),
        part: part.to_owned(),
    }
}

/// Every file of `batch` (only `parts`, when not empty), as a stream (see
/// [`ExportPlan::files`]); the plan is asked first ([`ExportPlan::ask`]).
pub fn export_files(
    client: &Client,
    batch: &str,
    parts: &[String],
) -> BoxStream<'static, Result<ExportFile>> {
    let client = client.clone();
    let batch = batch.to_owned();
    let parts = parts.to_vec();
    futures::stream::once(async move {
        let plan = ExportPlan::ask(&client, &batch, &parts).await?;
        Ok::<_, Error>(plan.files(&client))
    })
    .try_flatten()
    .boxed()
}

/// Every file of `batch`, part by part for a multipart batch, collected
/// (see [`export_files`] for the streaming form, which keeps memory flat).
pub async fn list_export(client: &Client, batch: &str) -> Result<Vec<ExportFile>> {
    export_files(client, batch, &[]).try_collect().await
}

/// How many files [`export_files`] will yield for `batch` (and `parts`),
/// from the count endpoint (the parts' counts asked at once): the total of
/// a progress display, without listing anything. Best effort: `0` when the
/// count cannot be read (the download itself does not depend on it).
pub async fn export_count(client: &Client, batch: &str, parts: &[String]) -> u64 {
    match try_export_count(client, batch, parts).await {
        Ok(n) => n,
        Err(e) => {
            tracing::debug!(batch, error = %e, "could not count the export batch");
            0
        }
    }
}

async fn try_export_count(client: &Client, batch: &str, parts: &[String]) -> Result<u64> {
    let staging = client.staging();
    if parts.is_empty() {
        return staging.count(batch, None).await;
    }
    let counts =
        futures::future::try_join_all(parts.iter().map(|part| staging.count(batch, Some(part))))
            .await?;
    Ok(counts.into_iter().sum())
}

/// `files`, ended with [`Error::BrokenListing`] once it yields far more
/// than the `total` the count endpoint gave (twice as many, and at least a
/// page more): a listing that hands out new pages forever is stopped
/// rather than followed. `total` 0 (unknown) bounds nothing.
pub fn within_count(
    files: BoxStream<'static, Result<ExportFile>>,
    total: u64,
) -> BoxStream<'static, Result<ExportFile>> {
    if total == 0 {
        return files;
    }
    let bound = total.saturating_add(total.max(u64::from(LIST_FILES_PAGE_SIZE)));
    let mut listed = 0u64;
    files
        .map(move |item| {
            listed += 1;
            match item {
                Ok(_) if listed > bound => Err(Error::BrokenListing {
                    endpoint: Some(Endpoint::ListFiles),
                    detail: format!(
                        "it listed more than {bound} files where the count endpoint says {total}"
                    ),
                }),
                other => other,
            }
        })
        .boxed()
}
