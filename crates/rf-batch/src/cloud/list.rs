//! Streams the media objects under a bucket URL, filtered like a local scan.
//!
//! The store's listing is consumed object by object (its pages are fetched
//! as the stream is read), so memory stays flat however many objects there
//! are. An object is kept when its key, relative to the prefix, passes the
//! URL's glob and the same rules as local files
//! (`crate::files::scan`): an image or video extension of the kind asked for
//! (case-insensitive), no hidden component (a name starting with `.`), and
//! for images at most the size limit.

use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::path::Path as StorePath;
use object_store::{ObjectMeta, ObjectStore};

use super::error::{CloudError, refine_listing_error};
use super::url::CloudUrl;
use crate::files::scan::{MediaKind, media_kind};

/// One object kept by a [`Listing`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudObject {
    /// Its full key in the bucket.
    pub location: StorePath,
    /// Its key relative to the URL's prefix (`/`-separated).
    pub relative: String,
    /// Its size in bytes.
    pub size: u64,
}

/// What a [`Listing`] saw, so far or in all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListTally {
    /// Objects the store listed under the prefix.
    pub listed: u64,
    /// Objects kept.
    pub kept: u64,
    /// Left out by the glob.
    pub unmatched: u64,
    /// Left out as hidden (a component starting with `.`).
    pub hidden: u64,
    /// Left out as not media of the kind asked for.
    pub other: u64,
    /// Images left out as larger than the limit.
    pub too_large: u64,
}

/// A streamed, filtered listing of one bucket URL.
pub struct Listing<'a> {
    store: &'a dyn ObjectStore,
    url: CloudUrl,
    kind: MediaKind,
    max_image_bytes: u64,
    inner: BoxStream<'static, object_store::Result<ObjectMeta>>,
    tally: ListTally,
}

impl std::fmt::Debug for Listing<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listing")
            .field("url", &self.url.as_str())
            .field("kind", &self.kind)
            .field("tally", &self.tally)
            .finish_non_exhaustive()
    }
}

impl<'a> Listing<'a> {
    /// Starts listing `url` in `store` for media of `kind`; images over
    /// `max_image_bytes` are left out.
    pub fn new(
        store: &'a dyn ObjectStore,
        url: &CloudUrl,
        kind: MediaKind,
        max_image_bytes: u64,
    ) -> Listing<'a> {
        let prefix = url.prefix();
        let prefix = (!prefix.as_ref().is_empty()).then_some(prefix);
        Listing {
            store,
            url: url.clone(),
            kind,
            max_image_bytes,
            inner: store.list(prefix),
            tally: ListTally::default(),
        }
    }

    /// The next kept object; `None` at the end. When the listing ends with
    /// nothing kept, the end is an error: [`CloudError::EmptyPrefix`] when
    /// nothing was listed at all, [`CloudError::NoMatch`] otherwise.
    pub async fn next(&mut self) -> Result<Option<CloudObject>, CloudError> {
        while let Some(meta) = self.inner.next().await {
            let meta = match meta {
                Ok(meta) => meta,
                Err(e) => {
                    let first_page = self.tally.listed == 0;
                    return Err(listing_error(self.store, &self.url, first_page, e).await);
                }
            };
            self.tally.listed += 1;
            if let Some(object) = self.keep(meta) {
                self.tally.kept += 1;
                return Ok(Some(object));
            }
        }
        match self.tally {
            ListTally { listed: 0, .. } => Err(CloudError::EmptyPrefix {
                url: self.url.as_str().to_owned(),
            }),
            ListTally {
                kept: 0, listed, ..
            } => Err(CloudError::NoMatch {
                url: self.url.as_str().to_owned(),
                kind: self.kind.plural(),
                listed,
                has_glob: self.url.pattern().is_some(),
            }),
            _ => Ok(None),
        }
    }

    /// What was seen so far.
    pub fn tally(&self) -> ListTally {
        self.tally
    }

    fn keep(&mut self, meta: ObjectMeta) -> Option<CloudObject> {
        let relative = self.url.relative(&meta.location)?;
        if !self.url.matches(&relative) {
            self.tally.unmatched += 1;
            return None;
        }
        if relative.split('/').any(|c| c.starts_with('.')) {
            self.tally.hidden += 1;
            return None;
        }
        if media_kind(&relative) != Some(self.kind) {
            self.tally.other += 1;
            return None;
        }
        if self.kind == MediaKind::Image && meta.size > self.max_image_bytes {
            self.tally.too_large += 1;
            return None;
        }
        Some(CloudObject {
            location: meta.location,
            relative,
            size: meta.size,
        })
    }
}

/// Sorts a listing error by its type; on the first page, a generic error
/// is made precise by [`refine_listing_error`].
async fn listing_error(
    store: &dyn ObjectStore,
    url: &CloudUrl,
    first_page: bool,
    error: object_store::Error,
) -> CloudError {
    let error = if first_page {
        refine_listing_error(store, url.prefix(), error).await
    } else {
        error
    };
    CloudError::from_listing(url.as_str(), error)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use object_store::memory::InMemory;
    use object_store::{ObjectStoreExt, PutPayload};

    use super::*;

    async fn put(store: &InMemory, key: &str, len: usize) {
        store
            .put(&StorePath::from(key), PutPayload::from(vec![0u8; len]))
            .await
            .unwrap();
    }

    async fn keys(
        store: Arc<InMemory>,
        url: &str,
        kind: MediaKind,
    ) -> Result<Vec<String>, CloudError> {
        let url = CloudUrl::parse(url).unwrap();
        let mut listing = Listing::new(store.as_ref(), &url, kind, 100);
        let mut out = Vec::new();
        while let Some(o) = listing.next().await? {
            out.push(o.relative);
        }
        Ok(out)
    }

    #[tokio::test]
    async fn filters_like_a_local_scan() {
        let store = Arc::new(InMemory::new());
        for (key, len) in [
            ("p/a/x.jpg", 10),
            ("p/b/x.JPG", 10),
            ("p/.hidden/y.jpg", 10),
            ("p/notes.txt", 10),
            ("p/clip.mp4", 10),
            ("p/big.png", 101),
            ("px/z.jpg", 10),
        ] {
            put(&store, key, len).await;
        }
        let got = keys(store.clone(), "s3://b/p/", MediaKind::Image)
            .await
            .unwrap();
        assert_eq!(got, ["a/x.jpg", "b/x.JPG"]);
        let got = keys(store.clone(), "s3://b/p/*/*.jpg", MediaKind::Image)
            .await
            .unwrap();
        assert_eq!(got, ["a/x.jpg"]);
        let got = keys(store.clone(), "s3://b/p", MediaKind::Video)
            .await
            .unwrap();
        assert_eq!(got, ["clip.mp4"]);
    }

    #[tokio::test]
    async fn empty_prefix_and_no_match_are_errors() {
        let store = Arc::new(InMemory::new());
        put(&store, "p/notes.txt", 1).await;
        let err = keys(store.clone(), "s3://b/q/", MediaKind::Image)
            .await
            .unwrap_err();
        assert!(matches!(err, CloudError::EmptyPrefix { .. }), "{err}");
        let err = keys(store.clone(), "s3://b/p/", MediaKind::Image)
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                CloudError::NoMatch {
                    listed: 1,
                    has_glob: false,
                    ..
                }
            ),
            "{err}"
        );
    }
}
