//! Request authentication: the API key (query `api_key`, else
//! `Authorization: Bearer`), the workspace it opens, and the [`Authed`]
//! extractor of workspace paths.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{FromRequestParts, Path};
use http::request::Parts;

use crate::ctx::Ctx;
use crate::error::ApiError;
use crate::params::Params;

/// The caller's key (query `api_key`, else `Authorization: Bearer`).
fn presented_key(parts: &Parts, params: &Params) -> Option<String> {
    if let Some(k) = params.get("api_key") {
        return Some(k.to_string());
    }
    let h = parts
        .headers
        .get(http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, rest) = h.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| rest.trim().to_string())
        .filter(|k| !k.is_empty())
}

/// Resolves the caller's workspace from the key.
pub(crate) fn authenticate(ctx: &Ctx, parts: &Parts, params: &Params) -> Result<String, ApiError> {
    let key = presented_key(parts, params).ok_or_else(|| {
        ApiError::unauthorized("missing api key: pass it as the api_key query parameter")
    })?;
    ctx.workspace_of(&key)
        .map(str::to_string)
        .ok_or_else(|| ApiError::unauthorized("invalid api key"))
}

/// An authenticated request to a workspace path (`/{ws}/...`): the key was
/// valid and opens that workspace.
#[derive(Debug)]
pub(crate) struct Authed {
    pub(crate) ws: String,
    pub(crate) params: Params,
}

impl FromRequestParts<Arc<Ctx>> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        ctx: &Arc<Ctx>,
    ) -> Result<Self, Self::Rejection> {
        let params = Params::parse(parts.uri.query());
        let ws = authenticate(ctx, parts, &params)?;
        let path = Path::<HashMap<String, String>>::from_request_parts(parts, ctx)
            .await
            .map_err(|e| ApiError::bad_request(format!("invalid path: {e}")))?;
        match path.get("ws") {
            Some(p) if *p == ws => Ok(Self { ws, params }),
            Some(p) => Err(ApiError::forbidden(format!(
                "the api key does not grant access to workspace {p:?}"
            ))),
            None => Ok(Self { ws, params }),
        }
    }
}
