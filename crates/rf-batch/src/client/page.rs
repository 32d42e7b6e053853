//! Pagination: a listing as a stream over continuation tokens.

use std::collections::HashSet;
use std::future::Future;

use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};

use crate::endpoint::Endpoint;
use crate::error::{Error, Result};

/// Pages a listing may take before it is called broken: at 1,000 items a
/// page (the largest the service gives) ten million items; no listing of a
/// workspace comes near.
pub const MAX_PAGES: u64 = 10_000;

/// Empty pages in a row, each with a token to go on, before a listing is
/// called broken.
pub const MAX_EMPTY_PAGES: u32 = 32;

/// Turns a page fetcher into a stream of items.
///
/// `fetch(token)` returns one page and the next token; the stream ends when
/// the token is absent or empty (an empty token would make some servers start
/// over). A listing that would never end is [`Error::BrokenListing`] instead
/// of being followed forever: a token handed out a second time (a cycle),
/// more than [`MAX_EMPTY_PAGES`] empty pages in a row, or more than
/// [`MAX_PAGES`] pages.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use futures::TryStreamExt;
/// let items: Vec<u32> = rf_batch::client::paginate(|token: Option<String>| async move {
///     Ok(match token.as_deref() {
///         None => (vec![1, 2], Some("p2".to_string())),
///         Some(_) => (vec![3], None),
///     })
/// })
/// .try_collect()
/// .await
/// .unwrap();
/// assert_eq!(items, [1, 2, 3]);
/// # }
/// ```
pub fn paginate<T, F, Fut>(fetch: F) -> BoxStream<'static, Result<T>>
where
    T: Send + 'static,
    F: FnMut(Option<String>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(Vec<T>, Option<String>)>> + Send + 'static,
{
    pages(fetch, Listing::new(None, false))
}

/// Like [`paginate`], but the next page is asked for as soon as a page is
/// handed out, so that it has arrived by the time the consumer reaches it:
/// a consumer that starts work per item (downloads) never waits for a page
/// in between. Memory holds at most two pages. The fetch of the page ahead
/// runs as a tokio task (the stream must be polled inside a tokio runtime)
/// and is aborted when the stream is dropped.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use futures::TryStreamExt;
/// let items: Vec<u32> = rf_batch::client::paginate_ahead(|token: Option<String>| async move {
///     Ok(match token.as_deref() {
///         None => (vec![1, 2], Some("p2".to_string())),
///         Some(_) => (vec![3], None),
///     })
/// })
/// .try_collect()
/// .await
/// .unwrap();
/// assert_eq!(items, [1, 2, 3]);
/// # }
/// ```
pub fn paginate_ahead<T, F, Fut>(fetch: F) -> BoxStream<'static, Result<T>>
where
    T: Send + 'static,
    F: FnMut(Option<String>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(Vec<T>, Option<String>)>> + Send + 'static,
{
    pages(fetch, Listing::new(None, true))
}

/// [`paginate`] (or, `ahead`, [`paginate_ahead`]) of `endpoint`, which a
/// broken listing names.
pub(crate) fn paginate_endpoint<T, F, Fut>(
    endpoint: Endpoint,
    ahead: bool,
    fetch: F,
) -> BoxStream<'static, Result<T>>
where
    T: Send + 'static,
    F: FnMut(Option<String>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(Vec<T>, Option<String>)>> + Send + 'static,
{
    pages(fetch, Listing::new(Some(endpoint), ahead))
}

/// How a listing is read, and what it has seen so far: every token (a cycle
/// is a token seen before), pages and empty pages in a row.
struct Listing {
    endpoint: Option<Endpoint>,
    ahead: bool,
    tokens: HashSet<String>,
    pages: u64,
    empty_in_a_row: u32,
}

impl Listing {
    fn new(endpoint: Option<Endpoint>, ahead: bool) -> Self {
        Listing {
            endpoint,
            ahead,
            tokens: HashSet::new(),
            pages: 0,
            empty_in_a_row: 0,
        }
    }

    /// The token of the page after one of `items` items that gave `next`:
    /// `None` at the end; an error when the listing would not end.
    fn follow(&mut self, items: usize, next: Option<String>) -> Result<Option<String>> {
        let Some(token) = next.filter(|t| !t.is_empty()) else {
            return Ok(None);
        };
        self.pages += 1;
        self.empty_in_a_row = if items == 0 {
            self.empty_in_a_row + 1
        } else {
            0
        };
        if self.tokens.contains(&token) {
            return Err(self.broken(format!(
                "page token {token:?} came back after {} pages (a cycle)",
                self.pages
            )));
        }
        if self.empty_in_a_row > MAX_EMPTY_PAGES {
            return Err(self.broken(format!(
                "{} empty pages in a row, each with a token to go on",
                self.empty_in_a_row
            )));
        }
        if self.pages >= MAX_PAGES {
            return Err(self.broken(format!("still going after {} pages", self.pages)));
        }
        self.tokens.insert(token.clone());
        Ok(Some(token))
    }

    fn broken(&self, detail: String) -> Error {
        Error::BrokenListing {
            endpoint: self.endpoint,
            detail,
        }
    }
}

/// A page being fetched ahead; the fetch is aborted when this is dropped.
struct Ahead<T>(tokio::task::JoinHandle<Result<(Vec<T>, Option<String>)>>);

impl<T> Drop for Ahead<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn pages<T, F, Fut>(fetch: F, listing: Listing) -> BoxStream<'static, Result<T>>
where
    T: Send + 'static,
    F: FnMut(Option<String>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(Vec<T>, Option<String>)>> + Send + 'static,
{
    struct State<T, F> {
        fetch: F,
        /// The token of the page to fetch next (`Some(None)`: the first).
        next: Option<Option<String>>,
        /// That page, already being fetched.
        ahead: Option<Ahead<T>>,
        listing: Listing,
    }
    let state = State {
        fetch,
        next: Some(None),
        ahead: None,
        listing,
    };
    stream::try_unfold(state, move |mut st| async move {
        let Some(token) = st.next.take() else {
            return Ok(None);
        };
        let (items, next) = match st.ahead.take() {
            Some(mut page) => match (&mut page.0).await {
                Ok(page) => page?,
                // A panic in the fetch surfaces here, as it would inline.
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                // Only a runtime shutting down cancels it while it is held.
                Err(_) => return Err(Error::Cancelled),
            },
            None => (st.fetch)(token.clone()).await?,
        };
        st.next = st.listing.follow(items.len(), next)?.map(Some);
        if let (true, Some(next)) = (st.listing.ahead, &st.next) {
            st.ahead = Some(Ahead(tokio::spawn((st.fetch)(next.clone()))));
        }
        Ok(Some((items, st)))
    })
    .map_ok(|items| stream::iter(items.into_iter().map(Ok)))
    .try_flatten()
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn empty_token_ends_and_repeated_token_errors() {
        let items: Vec<u8> = paginate(|t: Option<String>| async move {
            Ok(match t {
                None => (vec![1], Some(String::new())),
                Some(_) => (vec![9], None),
            })
        })
        .try_collect()
        .await
        .unwrap();
        assert_eq!(items, [1]);
        let err =
            paginate(|_t: Option<String>| async move { Ok((vec![1u8], Some("same".into()))) })
                .try_collect::<Vec<_>>()
                .await
                .unwrap_err();
        assert!(err.to_string().contains("same"), "{err}");
    }

    /// What a listing whose page `n` (token `n`, first `None`) is
    /// `page(n)` yields, or its error.
    async fn list(page: fn(u64) -> (Vec<u64>, Option<String>)) -> Result<Vec<u64>> {
        paginate(move |t: Option<String>| async move {
            let n = t.map_or(0, |t| t.parse::<u64>().unwrap_or(u64::MAX));
            Ok(page(n))
        })
        .try_collect()
        .await
    }

    fn broken_detail(r: Result<Vec<u64>>) -> String {
        match r {
            Err(Error::BrokenListing { detail, .. }) => detail,
            other => panic!("not a broken listing: {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_listing_that_would_never_end_is_a_broken_listing() {
        // A cycle: 0 -> 1 -> 2 -> 1.
        let cycle = list(|n| (vec![n], Some(if n == 2 { 1 } else { n + 1 }.to_string()))).await;
        assert!(broken_detail(cycle).contains("\"1\" came back after 3 pages"));
        // Endless empty pages with fresh tokens.
        let empty = list(|n| (Vec::new(), Some((n + 1).to_string()))).await;
        assert!(broken_detail(empty).contains("33 empty pages in a row"));
        // Items on every page, fresh tokens forever: bounded by the pages.
        let endless = list(|n| (vec![n], Some((n + 1).to_string()))).await;
        let detail = broken_detail(endless);
        assert!(
            detail.contains(&format!("after {MAX_PAGES} pages")),
            "{detail}"
        );
        // Empty pages between full ones, under the bound, are fine.
        let sparse = list(|n| {
            let items = if n % 10 == 0 { vec![n] } else { Vec::new() };
            (items, (n < 100).then(|| (n + 1).to_string()))
        })
        .await
        .unwrap();
        assert_eq!(sparse.len(), 11);
    }

    #[tokio::test]
    async fn pages_are_fetched_lazily() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        let mut s = paginate(move |t: Option<String>| {
            let c = c.clone();
            async move {
                let n = c.fetch_add(1, Ordering::SeqCst);
                let _ = t;
                Ok((vec![n], Some(format!("t{n}"))))
            }
        });
        assert_eq!(s.next().await.unwrap().unwrap(), 0);
        assert_eq!(s.next().await.unwrap().unwrap(), 1);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn pages_ahead_are_fetched_one_page_early_and_errors_keep_their_place() {
        use std::sync::{Arc, Mutex};
        let asked = Arc::new(Mutex::new(Vec::new()));
        let log = asked.clone();
        // Pages 0, 1, 2 of two items each; page 3 fails.
        let mut s = paginate_ahead(move |t: Option<String>| {
            let n: usize = t.map_or(0, |t| t.parse().unwrap());
            log.lock().unwrap().push(n);
            async move {
                if n == 3 {
                    return Err(Error::InvalidInput {
                        what: "page",
                        detail: "page 3 is gone".into(),
                    });
                }
                Ok((vec![2 * n, 2 * n + 1], Some((n + 1).to_string())))
            }
        });
        // Handing out page 0 asks for page 1 at once, not for page 2.
        assert_eq!(s.next().await.unwrap().unwrap(), 0);
        assert_eq!(*asked.lock().unwrap(), [0, 1]);
        assert_eq!(s.next().await.unwrap().unwrap(), 1);
        assert_eq!(*asked.lock().unwrap(), [0, 1]);
        // Reaching page 1 asks for page 2.
        assert_eq!(s.next().await.unwrap().unwrap(), 2);
        assert_eq!(*asked.lock().unwrap(), [0, 1, 2]);
        let rest: Vec<Result<usize>> = s.collect().await;
        assert_eq!(rest.len(), 4, "items 3, 4, 5, then the error");
        assert_eq!(
            rest[..3]
                .iter()
                .map(|r| *r.as_ref().unwrap())
                .collect::<Vec<_>>(),
            [3, 4, 5]
        );
        let err = rest[3].as_ref().unwrap_err();
        assert!(err.to_string().contains("page 3 is gone"), "{err}");
    }

    #[tokio::test]
    async fn a_dropped_stream_stops_the_page_fetched_ahead() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, Ordering};
        /// Set when the fetch of page 1 is dropped.
        struct Flag(Arc<AtomicBool>);
        impl Drop for Flag {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let dropped = Arc::new(AtomicBool::new(false));
        let flag = dropped.clone();
        let mut s = paginate_ahead(move |t: Option<String>| {
            let guard = t.is_some().then(|| Flag(flag.clone()));
            async move {
                if let Some(_guard) = guard {
                    // Page 1 never arrives: only an abort ends its fetch.
                    std::future::pending::<()>().await;
                }
                Ok((vec![1u8], Some("next".to_string())))
            }
        });
        assert_eq!(s.next().await.unwrap().unwrap(), 1);
        assert!(!dropped.load(Ordering::SeqCst), "page 1 is being fetched");
        drop(s);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !dropped.load(Ordering::SeqCst) {
            assert!(
                std::time::Instant::now() < deadline,
                "the fetch ahead was not stopped"
            );
            tokio::task::yield_now().await;
        }
    }
}
