//! Azure with a SAS token (`AZURE_STORAGE_SAS_KEY`): object_store lists
//! with it but cannot sign with it (a SAS does not sign other SASs), so
//! each object's URL is the blob's URL with the token as its query, as the
//! official client builds it. The URL lives as long as the token, whatever
//! expiry is asked for; unlike the official client, the blob name is
//! percent-encoded and the `?` is put in.

use std::fmt;
use std::ops::Range;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use object_store::azure::MicrosoftAzure;
use object_store::list::{PaginatedListOptions, PaginatedListResult, PaginatedListStore};
use object_store::path::Path;
use object_store::signer::{Method, Signer};
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};
use url::Url;

/// An Azure container reached with a SAS token: object_store's store for
/// everything, the token for presigned URLs.
#[derive(Debug)]
pub(crate) struct SasStore {
    inner: MicrosoftAzure,
    /// `https://{account}.blob.core.windows.net/{container}` (or the endpoint's).
    container_url: Url,
    /// The token, without a leading `?`.
    sas: String,
}

impl SasStore {
    pub(crate) fn new(inner: MicrosoftAzure, container_url: Url, sas: &str) -> SasStore {
        SasStore {
            inner,
            container_url,
            sas: sas.trim_start_matches('?').to_owned(),
        }
    }

    /// The blob's URL with the token.
    pub(crate) fn url_of(&self, path: &Path) -> Url {
        let mut url = self.container_url.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty();
            for part in path.as_ref().split('/') {
                segments.push(part);
            }
        }
        url.set_query(Some(&self.sas));
        url
    }
}

impl fmt::Display for SasStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (SAS)", self.inner)
    }
}

#[async_trait]
impl PaginatedListStore for SasStore {
    async fn list_paginated(
        &self,
        prefix: Option<&str>,
        opts: PaginatedListOptions,
    ) -> Result<PaginatedListResult> {
        self.inner.list_paginated(prefix, opts).await
    }
}

#[async_trait]
impl Signer for SasStore {
    async fn signed_url(&self, _method: Method, path: &Path, _expires_in: Duration) -> Result<Url> {
        Ok(self.url_of(path))
    }
}

#[async_trait]
impl ObjectStore for SasStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

#[cfg(test)]
mod tests {
    use object_store::azure::MicrosoftAzureBuilder;

    use super::*;

    #[tokio::test]
    async fn urls_carry_the_token_and_encode_the_name() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let inner = MicrosoftAzureBuilder::new()
            .with_account("acct")
            .with_container_name("c")
            .with_config(
                "azure_storage_sas_key".parse().unwrap(),
                "sv=2024&sig=abc%2F",
            )
            .build()
            .unwrap();
        let base = Url::parse("https://acct.blob.core.windows.net/c").unwrap();
        let store = SasStore::new(inner, base, "?sv=2024&sig=abc%2F");
        let url = store
            .signed_url(
                Method::GET,
                &Path::parse("a b/x#1.jpg").unwrap(),
                Duration::from_secs(60),
            )
            .await
            .unwrap();
        assert_eq!(
            url.as_str(),
            "https://acct.blob.core.windows.net/c/a%20b/x%231.jpg?sv=2024&sig=abc%2F"
        );
    }
}
