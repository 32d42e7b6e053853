//! Query-string parsing (form rules: `+` is a space) and page tokens.
//!
//! Page tokens are opaque strings encoding an offset into a stable, creation
//! ordered listing. The last page carries no token; `""` is never produced.

use std::collections::HashMap;

use axum::extract::FromRequestParts;
use http::request::Parts;

use crate::error::ApiError;

/// Default page size when `pageSize` is absent.
pub(crate) const DEFAULT_PAGE_SIZE: usize = 50;
/// Largest page served; bigger `pageSize` values are clamped to it.
pub(crate) const MAX_PAGE_SIZE: usize = 10_000;

/// Decoded query parameters (first occurrence of each name wins).
#[derive(Debug, Default, Clone)]
pub(crate) struct Params(HashMap<String, String>);

impl Params {
    pub(crate) fn parse(query: Option<&str>) -> Self {
        let mut map = HashMap::new();
        for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            map.entry(k.into_owned()).or_insert_with(|| v.into_owned());
        }
        Self(map)
    }

    /// A parameter, absent when missing or empty.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// A required parameter.
    pub(crate) fn required(&self, name: &str) -> Result<&str, ApiError> {
        self.get(name)
            .ok_or_else(|| ApiError::bad_request(format!("query parameter {name} is required")))
    }

    /// The page asked for by `pageSize` and `nextPageToken`.
    pub(crate) fn page(&self) -> Result<Page, ApiError> {
        let size = match self.get("pageSize") {
            None => DEFAULT_PAGE_SIZE,
            Some(s) => {
                let n: i64 = s.trim().parse().map_err(|_| {
                    ApiError::bad_request(format!("pageSize must be a positive integer, got {s:?}"))
                })?;
                if n < 1 {
                    return Err(ApiError::bad_request(format!(
                        "pageSize must be a positive integer, got {n}"
                    )));
                }
                usize::try_from(n)
                    .unwrap_or(MAX_PAGE_SIZE)
                    .min(MAX_PAGE_SIZE)
            }
        };
        let offset = match self.get("nextPageToken") {
            None => 0,
            Some(t) => decode_token(t).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "nextPageToken {t:?} was not issued by this server; start again without it"
                ))
            })?,
        };
        Ok(Page { offset, size })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self::parse(parts.uri.query()))
    }
}

/// A requested page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Page {
    pub(crate) offset: usize,
    pub(crate) size: usize,
}

impl Page {
    /// Cuts one page out of `items`, returning it and the next token.
    #[cfg(test)]
    pub(crate) fn slice<T: Clone>(&self, items: &[T]) -> (Vec<T>, Option<String>) {
        let start = self.offset.min(items.len());
        let end = start.saturating_add(self.size).min(items.len());
        let next = (end < items.len()).then(|| encode_token(end));
        (items[start..end].to_vec(), next)
    }

    /// Like [`Page::slice`] over an iterator with a known total.
    pub(crate) fn take<T>(
        &self,
        total: usize,
        items: impl Iterator<Item = T>,
    ) -> (Vec<T>, Option<String>) {
        let page: Vec<T> = items.skip(self.offset).take(self.size).collect();
        let end = self.offset.saturating_add(page.len());
        let next = (end < total && !page.is_empty()).then(|| encode_token(end));
        (page, next)
    }
}

fn encode_token(offset: usize) -> String {
    format!("pg-{offset:x}")
}

fn decode_token(token: &str) -> Option<usize> {
    usize::from_str_radix(token.strip_prefix("pg-")?, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn plus_is_space_and_first_wins() {
        let p = Params::parse(Some("fileName=a+b%2Bc.jpg&fileName=x&empty="));
        assert_eq!(p.get("fileName"), Some("a b+c.jpg"));
        assert_eq!(p.get("empty"), None);
    }

    #[test]
    fn pages_and_tokens() {
        let items: Vec<u32> = (0..5).collect();
        let p = Params::parse(Some("pageSize=2")).page().unwrap();
        let (a, t) = p.slice(&items);
        assert_eq!(a, vec![0, 1]);
        let t = t.unwrap();
        assert!(!t.is_empty());
        let p2 = Params::parse(Some(&format!("pageSize=2&nextPageToken={t}")))
            .page()
            .unwrap();
        let (b, t2) = p2.slice(&items);
        assert_eq!(b, vec![2, 3]);
        let p3 = Params::parse(Some(&format!("pageSize=2&nextPageToken={}", t2.unwrap())))
            .page()
            .unwrap();
        assert_eq!(p3.slice(&items), (vec![4], None));
        assert!(Params::parse(Some("pageSize=0")).page().is_err());
        assert!(Params::parse(Some("pageSize=abc")).page().is_err());
        assert!(Params::parse(Some("nextPageToken=zzz")).page().is_err());
        assert_eq!(
            Params::parse(Some("pageSize=999999999999"))
                .page()
                .unwrap()
                .size,
            MAX_PAGE_SIZE
        );
    }

    proptest! {
        #[test]
        fn query_parsing_never_panics(q in ".{0,200}") {
            let p = Params::parse(Some(&q));
            let _ = p.page();
        }

        #[test]
        fn any_token_never_panics(t in ".{0,40}", n in 0usize..100) {
            let items: Vec<usize> = (0..n).collect();
            if let Ok(page) = Params::parse(Some(&format!("nextPageToken={}", urlencode(&t)))).page() {
                let (_, next) = page.slice(&items);
                prop_assert!(next.as_deref() != Some(""));
            }
        }
    }

    fn urlencode(s: &str) -> String {
        url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
    }
}
