//! Pagination: a listing as a stream over continuation tokens.

use std::future::Future;

use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};

use crate::error::{Error, Result};

/// Turns a page fetcher into a stream of items.
///
/// `fetch(token)` returns one page and the next token; the stream ends when
/// the token is absent or empty (an empty token would make some servers start
/// over). A server that hands back the same token twice is reported instead of
/// being followed forever.
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
    struct State<F> {
        fetch: F,
        next: Option<Option<String>>,
    }
    let state = State {
        fetch,
        next: Some(None),
    };
    stream::try_unfold(state, |mut st| async move {
        let Some(token) = st.next.take() else {
            return Ok(None);
        };
        let (items, next) = (st.fetch)(token.clone()).await?;
        st.next = match next {
            Some(t) if t.is_empty() => None,
            Some(t) if Some(&t) == token.as_ref() => {
                return Err(Error::InvalidInput {
                    what: "page token",
                    detail: format!("the server returned the same page token {t:?} twice"),
                });
            }
            Some(t) => Some(Some(t)),
            None => None,
        };
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
}
