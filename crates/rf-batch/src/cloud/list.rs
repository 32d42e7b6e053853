//! Streams the media objects under a bucket URL, filtered like a local scan.
//!
//! The store's listing is consumed object by object (its pages are fetched
//! as the stream is read), so memory stays flat however many objects there
//! are. An object is kept when its key, relative to the prefix, passes the
//! URL's glob and the same rules as local files
//! (`crate::files::scan`): an image or video extension of the kind asked for
//! (case-insensitive), no hidden component (a name starting with `.`), and
//! for images at most the size limit.
//!
//! Given the store's page-level listing ([`Listing::with_folders`]), one
//! delimited request first asks for the prefix's first-level folders; when
//! it shows two or more (and fits one page), up to [`FOLDERS_IN_FLIGHT`]
//! folders are listed side by side, each read up to a page ahead, and their
//! objects come out in the same order as one flat listing (so chunks and
//! their IDs do not depend on how the bucket was listed). A bucket's pages
//! come one after the other, each a round trip: ten folders listed at once
//! take a tenth of the time. Otherwise (one folder, or more first-level
//! entries than a page holds) the listing is flat.

use futures::future::{self, BoxFuture};
use futures::stream::{self, BoxStream};
use futures::{FutureExt, StreamExt};
use object_store::list::{PaginatedListOptions, PaginatedListStore};
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

/// First-level folders listed at once by a [`Listing`] with folders.
pub const FOLDERS_IN_FLIGHT: usize = 8;

/// Objects read ahead of the consumer from each folder being listed: one
/// page of S3, GCS and Azure (so memory holds at most
/// [`FOLDERS_IN_FLIGHT`] pages).
const FOLDER_READ_AHEAD: usize = 1_000;

/// The objects of a listing, in flat listing order.
type ObjectStream<'a> = BoxStream<'a, object_store::Result<ObjectMeta>>;

/// A streamed, filtered listing of one bucket URL.
pub struct Listing<'a> {
    store: &'a dyn ObjectStore,
    pages: Option<&'a dyn PaginatedListStore>,
    url: CloudUrl,
    kind: MediaKind,
    max_image_bytes: u64,
    /// Started at the first [`Listing::next`].
    inner: Option<ObjectStream<'a>>,
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
    /// `max_image_bytes` are left out. The listing is flat unless
    /// [`Listing::with_folders`] gives the store's page-level listing.
    pub fn new(
        store: &'a dyn ObjectStore,
        url: &CloudUrl,
        kind: MediaKind,
        max_image_bytes: u64,
    ) -> Listing<'a> {
        Listing {
            store,
            pages: None,
            url: url.clone(),
            kind,
            max_image_bytes,
            inner: None,
            tally: ListTally::default(),
        }
    }

    /// Lists the first-level folders side by side, through `pages` (the
    /// same bucket as the store's): see the module docs.
    pub fn with_folders(mut self, pages: &'a dyn PaginatedListStore) -> Listing<'a> {
        self.pages = Some(pages);
        self
    }

    /// The next kept object; `None` at the end. When the listing ends with
    /// nothing kept, the end is an error: [`CloudError::EmptyPrefix`] when
    /// nothing was listed at all, [`CloudError::NoMatch`] otherwise.
    pub async fn next(&mut self) -> Result<Option<CloudObject>, CloudError> {
        if self.inner.is_none() {
            match start(self.store, self.pages, &self.url).await {
                Ok(inner) => self.inner = Some(inner),
                Err(e) => return Err(listing_error(self.store, &self.url, true, e).await),
            }
        }
        while let Some(meta) = self.next_listed().await {
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

    /// The next object of the started stream.
    async fn next_listed(&mut self) -> Option<object_store::Result<ObjectMeta>> {
        self.inner.as_mut()?.next().await
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

/// The stream of objects under `url`'s prefix: by folders when `pages` is
/// given and the first delimited page shows two or more folders and fits
/// in one page, else flat.
async fn start<'a>(
    store: &'a dyn ObjectStore,
    pages: Option<&'a dyn PaginatedListStore>,
    url: &CloudUrl,
) -> object_store::Result<ObjectStream<'a>> {
    let prefix = url.prefix();
    let flat = || store.list((!prefix.as_ref().is_empty()).then_some(prefix));
    let Some(pages) = pages else {
        return Ok(flat());
    };
    let opts = PaginatedListOptions {
        delimiter: Some("/".into()),
        max_keys: Some(FOLDER_READ_AHEAD),
        ..PaginatedListOptions::default()
    };
    let dir = (!prefix.as_ref().is_empty()).then(|| format!("{prefix}/"));
    let page = pages.list_paginated(dir.as_deref(), opts).await?;
    let folders = page.result.common_prefixes;
    if page.page_token.is_some() || folders.len() < 2 {
        return Ok(flat());
    }
    Ok(by_folders(store, page.result.objects, folders))
}

/// The objects of `direct` (the prefix's own) and of every folder of
/// `folders` (listed flat, [`FOLDERS_IN_FLIGHT`] at once, each read a page
/// ahead), in flat listing order: entries sorted by key, a folder `a` as
/// `a/` (every key under it starts so, and compares to any other key at
/// the same character as the folder's name does).
fn by_folders<'a>(
    store: &'a dyn ObjectStore,
    direct: Vec<ObjectMeta>,
    folders: Vec<StorePath>,
) -> ObjectStream<'a> {
    let mut entries: Vec<(String, Result<ObjectMeta, StorePath>)> = direct
        .into_iter()
        .map(|m| (m.location.to_string(), Ok(m)))
        .chain(folders.into_iter().map(|f| (format!("{f}/"), Err(f))))
        .collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let streams = entries.into_iter().map(
        move |(_, entry)| -> BoxFuture<'static, ObjectStream<'static>> {
            match entry {
                Ok(object) => future::ready(stream::iter([Ok(object)]).boxed()).boxed(),
                Err(folder) => read_ahead(store.list(Some(&folder))).boxed(),
            }
        },
    );
    stream::iter(streams)
        .buffered(FOLDERS_IN_FLIGHT)
        .flatten()
        .boxed()
}

/// `listing` with up to [`FOLDER_READ_AHEAD`] objects read already (the
/// first page), the rest read as it is consumed.
async fn read_ahead(mut listing: ObjectStream<'static>) -> ObjectStream<'static> {
    let mut head = Vec::new();
    while head.len() < FOLDER_READ_AHEAD {
        match listing.next().await {
            Some(Err(e)) => {
                head.push(Err(e));
                return stream::iter(head).boxed();
            }
            Some(object) => head.push(object),
            None => return stream::iter(head).boxed(),
        }
    }
    stream::iter(head).chain(listing).boxed()
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

    /// Page-level listing over an in-memory store: one page holds
    /// everything (what the folder plan needs of it).
    #[derive(Debug)]
    struct Pages(Arc<InMemory>);

    #[async_trait::async_trait]
    impl PaginatedListStore for Pages {
        async fn list_paginated(
            &self,
            prefix: Option<&str>,
            _opts: PaginatedListOptions,
        ) -> object_store::Result<object_store::list::PaginatedListResult> {
            let prefix = prefix.map(|p| StorePath::from(p.trim_end_matches('/')));
            let result = self.0.list_with_delimiter(prefix.as_ref()).await?;
            Ok(object_store::list::PaginatedListResult {
                result,
                page_token: None,
            })
        }
    }

    #[tokio::test]
    async fn folders_listed_side_by_side_come_out_in_flat_order() {
        let store = Arc::new(InMemory::new());
        let keys = [
            "p/a.jpg",
            "p/a/x.jpg",
            "p/a/y/z.jpg",
            "p/a0.jpg",
            "p/b/x.jpg",
            "p/b0/q.jpg",
            "p/c.jpg",
        ];
        for key in keys.iter().rev() {
            put(&store, key, 10).await;
        }
        let url = CloudUrl::parse("s3://b/p/").unwrap();
        let pages = Pages(store.clone());
        let mut by_folders =
            Listing::new(store.as_ref(), &url, MediaKind::Image, 100).with_folders(&pages);
        let mut flat = Listing::new(store.as_ref(), &url, MediaKind::Image, 100);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        while let Some(o) = by_folders.next().await.unwrap() {
            a.push(o.relative);
        }
        while let Some(o) = flat.next().await.unwrap() {
            b.push(o.relative);
        }
        let expected: Vec<_> = keys.iter().map(|k| &k[2..]).collect();
        assert_eq!(a, expected);
        assert_eq!(a, b, "the same order as one flat listing");
        assert_eq!(by_folders.tally(), flat.tally());
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
