//! Data Staging endpoints (the table in `docs/library.md`, section 1).

use std::path::Path;

use futures::stream::BoxStream;
use rf_transport::{Body, Request, Response};
use rf_types::{
    BatchId, BatchMetadata, BatchPart, CountResponse, FileMetadata, GetBatchResponse,
    ImageReferencesIngestRequest, ImageReferencesIngestResponse, ListBatchesResponse,
    ListFilesResponse, ListPartsResponse, ListShardsResponse, RoboqlIngestRequest, ShardStatus,
    SignedUrlDetails, SignedUrlResponse, VideoReferencesIngestRequest,
    VideoReferencesIngestResponse,
};

use super::{Client, STAGING_PREFIX, paginate_endpoint};
use crate::endpoint::Endpoint;
use crate::error::{Error, Result};

/// Files asked for per page of a batch listing (`pageSize`, documented for
/// this endpoint; the service caps listings at 10,000 a call). Without it a
/// server's default page (50 on the emulator) makes an export of 20,000
/// files spend 400 requests on listing.
pub(crate) const LIST_FILES_PAGE_SIZE: u32 = 1000;

/// Data Staging endpoints; get one with [`Client::staging`].
#[derive(Debug, Clone, Copy)]
pub struct Staging<'a> {
    client: &'a Client,
}

impl<'a> Staging<'a> {
    pub(crate) fn new(client: &'a Client) -> Self {
        Staging { client }
    }

    async fn url(&self, segments: &[&str]) -> Result<url::Url> {
        self.client.api_url(STAGING_PREFIX, segments).await
    }

    /// `POST .../batches/{batch}/upload/image`: uploads one image (multipart,
    /// the part named after the file, as the official client sends it).
    /// Re-uploading the same `file_name` replaces the item.
    pub async fn upload_image(
        &self,
        batch: &BatchId,
        file_name: &str,
        body: Body,
        display_name: Option<&str>,
    ) -> Result<()> {
        let url = self
            .url(&["batches", batch.as_str(), "upload", "image"])
            .await?;
        let mut req = Request::post(url)
            .query("fileName", file_name)
            .body(Body::multipart(file_name, file_name, None, body))
            .idempotent(true);
        if let Some(d) = display_name {
            req = req.query("displayName", d);
        }
        self.client
            .call(Endpoint::UploadImage, Some(file_name), req)
            .await?;
        Ok(())
    }

    /// [`Staging::upload_image`] streaming the file at `path` from disk.
    pub async fn upload_image_file(
        &self,
        batch: &BatchId,
        file_name: &str,
        path: &Path,
        display_name: Option<&str>,
    ) -> Result<()> {
        let body = file_body(path).await?;
        self.upload_image(batch, file_name, body, display_name)
            .await
    }

    /// `POST .../batches/{batch}/upload/video`: a signed URL for one video.
    pub async fn video_upload_url(
        &self,
        batch: &BatchId,
        file_name: &str,
        display_name: Option<&str>,
    ) -> Result<SignedUrlDetails> {
        let url = self
            .url(&["batches", batch.as_str(), "upload", "video"])
            .await?;
        let mut req = Request::post(url)
            .query("fileName", file_name)
            .idempotent(true);
        if let Some(d) = display_name {
            req = req.query("displayName", d);
        }
        let r: SignedUrlResponse = self
            .client
            .call_json(Endpoint::RequestVideoUploadUrl, Some(file_name), req)
            .await?;
        Ok(r.signed_url_details)
    }

    /// `POST .../batches/{batch}/bulk-upload/image-files`: a signed URL for one tar shard.
    pub async fn shard_upload_url(
        &self,
        batch: &BatchId,
        display_name: Option<&str>,
    ) -> Result<SignedUrlDetails> {
        let url = self
            .url(&["batches", batch.as_str(), "bulk-upload", "image-files"])
            .await?;
        // Each call allocates an upload slot; a retried call only leaves an
        // unused slot behind, so retrying is harmless.
        let mut req = Request::post(url).idempotent(true);
        if let Some(d) = display_name {
            req = req.query("displayName", d);
        }
        let r: SignedUrlResponse = self
            .client
            .call_json(Endpoint::RequestShardUploadUrl, Some(batch.as_str()), req)
            .await?;
        Ok(r.signed_url_details)
    }

    /// `PUT <uploadURL>`: sends `body` to a signed URL with its extension
    /// headers (no API key). `what` names the upload in errors.
    ///
    /// `idempotent` says whether resending is harmless: true for a video (the
    /// same name is overwritten), false for a shard (the service would index it
    /// twice), so the retry layer does not resend a shard whose body may have
    /// arrived.
    pub async fn put_signed(
        &self,
        details: &SignedUrlDetails,
        body: Body,
        what: &str,
        idempotent: bool,
    ) -> Result<()> {
        let url = url::Url::parse(&details.upload_url).map_err(|e| Error::InvalidInput {
            what: "signed upload url",
            detail: e.to_string(),
        })?;
        let mut req = Request::put(url).body(body).idempotent(idempotent);
        for (name, value) in &details.extension_headers {
            req =
                req.try_header(name.as_str(), value.as_str())
                    .map_err(|e| Error::InvalidInput {
                        what: "signed url extension header",
                        detail: format!("{name}: {e}"),
                    })?;
        }
        self.client
            .send_raw(Endpoint::SignedUpload, Some(what), req)
            .await?;
        Ok(())
    }

    /// Uploads the video at `path` (signed URL, then a streamed `PUT`).
    pub async fn upload_video_file(
        &self,
        batch: &BatchId,
        file_name: &str,
        path: &Path,
        display_name: Option<&str>,
    ) -> Result<()> {
        let details = self
            .video_upload_url(batch, file_name, display_name)
            .await?;
        let body = file_body(path).await?;
        self.put_signed(&details, body, file_name, true).await
    }

    /// `POST .../bulk-upload/image-references`: ingests images by URL.
    pub async fn ingest_image_references(
        &self,
        batch: &BatchId,
        request: &ImageReferencesIngestRequest,
        display_name: Option<&str>,
    ) -> Result<ImageReferencesIngestResponse> {
        self.ingest_references(batch, false, request, display_name)
            .await
    }

    /// `POST .../bulk-upload/video-references`: ingests videos by URL.
    pub async fn ingest_video_references(
        &self,
        batch: &BatchId,
        request: &VideoReferencesIngestRequest,
        display_name: Option<&str>,
    ) -> Result<VideoReferencesIngestResponse> {
        self.ingest_references(batch, true, request, display_name)
            .await
    }

    /// `POST .../batches/{batch}/roboql-ingest`: stages the Asset Library
    /// images `request.query` selects. The service fills the batch
    /// afterwards; its answer carries nothing to wait on (follow the batch's
    /// count or shards, or the webhook).
    pub async fn roboql_ingest(
        &self,
        batch: &BatchId,
        request: &RoboqlIngestRequest,
    ) -> Result<()> {
        let url = self
            .url(&["batches", batch.as_str(), "roboql-ingest"])
            .await?;
        let req = json_request(Request::post(url), request, "roboql ingest")?.idempotent(true);
        self.client
            .call(Endpoint::RoboqlIngest, Some(batch.as_str()), req)
            .await?;
        Ok(())
    }

    /// What both references endpoints share.
    async fn ingest_references<B, R>(
        &self,
        batch: &BatchId,
        videos: bool,
        request: &B,
        display_name: Option<&str>,
    ) -> Result<R>
    where
        B: serde::Serialize,
        R: serde::de::DeserializeOwned,
    {
        let (segment, what, endpoint) = if videos {
            (
                "video-references",
                "video references",
                Endpoint::IngestVideoReferences,
            )
        } else {
            (
                "image-references",
                "image references",
                Endpoint::IngestImageReferences,
            )
        };
        let url = self
            .url(&["batches", batch.as_str(), "bulk-upload", segment])
            .await?;
        let mut req = json_request(Request::post(url), request, what)?.idempotent(true);
        if let Some(d) = display_name {
            req = req.query("displayName", d);
        }
        self.client
            .call_json(endpoint, Some(batch.as_str()), req)
            .await
    }

    /// `GET .../batches/{batch}/count`: items indexed so far (optionally in one part).
    pub async fn count(&self, batch: &str, part: Option<&str>) -> Result<u64> {
        let url = self.url(&["batches", batch, "count"]).await?;
        let mut req = Request::get(url).idempotent(true);
        if let Some(p) = part {
            req = req.query("partName", p);
        }
        let r: CountResponse = self
            .client
            .call_json(Endpoint::Count, Some(batch), req)
            .await?;
        Ok(r.count)
    }

    /// `GET .../batches/{batch}`: batch metadata.
    pub async fn batch(&self, batch: &str) -> Result<BatchMetadata> {
        let url = self.url(&["batches", batch]).await?;
        let r: GetBatchResponse = self
            .client
            .call_json(
                Endpoint::GetBatch,
                Some(batch),
                Request::get(url).idempotent(true),
            )
            .await?;
        Ok(r.batch)
    }

    /// `GET .../batches`: every batch of the workspace, page by page.
    pub fn list_batches(
        &self,
        page_size: Option<u32>,
    ) -> BoxStream<'static, Result<BatchMetadata>> {
        let client = self.client.clone();
        paginate_endpoint(Endpoint::ListBatches, false, move |token| {
            let client = client.clone();
            async move {
                let url = client.api_url(STAGING_PREFIX, &["batches"]).await?;
                let req = page_request(url, page_size, token);
                let r: ListBatchesResponse =
                    client.call_json(Endpoint::ListBatches, None, req).await?;
                Ok((r.batches, r.next_page_token))
            }
        })
    }

    /// `GET .../batches/{batch}/parts`: the parts of a multipart batch.
    pub async fn parts(&self, batch: &str) -> Result<Vec<BatchPart>> {
        let url = self.url(&["batches", batch, "parts"]).await?;
        let r: ListPartsResponse = self
            .client
            .call_json(
                Endpoint::ListParts,
                Some(batch),
                Request::get(url).idempotent(true),
            )
            .await?;
        Ok(r.batch_parts)
    }

    /// `GET .../batches/{batch}/list`: files and download URLs, page by page
    /// (1,000 files a page), the next page asked for while this one is used
    /// ([`super::paginate_ahead`]: a download never waits for the listing; at most
    /// two pages in memory).
    pub fn list_files(
        &self,
        batch: &str,
        part: Option<&str>,
    ) -> BoxStream<'static, Result<FileMetadata>> {
        let client = self.client.clone();
        let batch = batch.to_string();
        let part = part.map(str::to_string);
        paginate_endpoint(Endpoint::ListFiles, true, move |token| {
            let client = client.clone();
            let batch = batch.clone();
            let part = part.clone();
            async move {
                let url = client
                    .api_url(STAGING_PREFIX, &["batches", &batch, "list"])
                    .await?;
                let mut req = page_request(url, Some(LIST_FILES_PAGE_SIZE), token);
                if let Some(p) = &part {
                    req = req.query("partName", p.as_str());
                }
                let r: ListFilesResponse = client
                    .call_json(Endpoint::ListFiles, Some(&batch), req)
                    .await?;
                Ok((r.files_metadata, r.next_page_token))
            }
        })
    }

    /// `GET .../batches/{batch}/shards`: shard ingest statuses, page by page.
    pub fn shards(&self, batch: &str) -> BoxStream<'static, Result<ShardStatus>> {
        let client = self.client.clone();
        let batch = batch.to_string();
        paginate_endpoint(Endpoint::ListShards, false, move |token| {
            let client = client.clone();
            let batch = batch.clone();
            async move {
                let url = client
                    .api_url(STAGING_PREFIX, &["batches", &batch, "shards"])
                    .await?;
                let req = page_request(url, None, token);
                let r: ListShardsResponse = client
                    .call_json(Endpoint::ListShards, Some(&batch), req)
                    .await?;
                Ok((r.shards, r.next_page_token))
            }
        })
    }

    /// `GET <downloadURL>`: starts downloading one file; the body streams.
    pub async fn download(&self, file: &FileMetadata) -> Result<Response> {
        let url = url::Url::parse(&file.download_url).map_err(|e| Error::InvalidInput {
            what: "download url",
            detail: format!("{}: {e}", file.file_name),
        })?;
        self.client
            .send_raw(
                Endpoint::Download,
                Some(&file.file_name),
                Request::get(url).idempotent(true),
            )
            .await
    }
}

/// A GET with optional `pageSize` and `nextPageToken`.
pub(crate) fn page_request(
    url: url::Url,
    page_size: Option<u32>,
    token: Option<String>,
) -> Request {
    let mut req = Request::get(url).idempotent(true);
    if let Some(n) = page_size {
        req = req.query("pageSize", n.to_string());
    }
    if let Some(t) = token {
        req = req.query("nextPageToken", t);
    }
    req
}

pub(crate) fn json_request<T: serde::Serialize>(
    req: Request,
    value: &T,
    what: &'static str,
) -> Result<Request> {
    req.json(value).map_err(|e| Error::InvalidInput {
        what,
        detail: e.to_string(),
    })
}

/// A streamed body of the file at `path`.
pub(crate) async fn file_body(path: &Path) -> Result<Body> {
    Body::file(path).await.map_err(|source| Error::Io {
        context: "cannot open",
        path: path.to_path_buf(),
        source,
    })
}
