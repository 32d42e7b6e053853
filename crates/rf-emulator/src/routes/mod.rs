//! The axum router: every endpoint of the wire contract on one origin, JSON
//! errors everywhere (extractor rejections included), request logging
//! without query strings (they carry the API key).

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::State;
use axum::extract::{DefaultBodyLimit, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http::{StatusCode, header};

use crate::chaos::{Fault, respond};
use crate::ctx::Ctx;
use crate::error::ApiError;
use crate::stats::{Counters, EmulatorStats};

mod auth;
mod jobs;
mod library;
mod limits;
mod signed;
mod staging;
mod uploads;

/// Largest error body rewritten into the JSON error shape.
const MAX_REWRITTEN_ERROR: usize = 64 * 1024;

/// Builds the router serving `ctx` (see [`crate::router`]).
pub(crate) fn build(ctx: Arc<Ctx>) -> Router {
    let prefix = ctx.base_url.path().trim_end_matches('/').to_string();
    // A prefix with route syntax in it cannot be nested; serve at the root only.
    let prefix = if prefix.contains(['{', '}', '*']) {
        String::new()
    } else {
        prefix
    };
    let ds = "/data-staging/v1/external/{ws}/batches";
    let bp = "/batch-processing/v1/external/{ws}/jobs";
    let api: Router<Arc<Ctx>> = Router::new()
        .route("/", get(staging::workspace).post(staging::workspace))
        .route(
            "/batch-processing/v1/external/{ws}/asset-library/jobs",
            post(library::create_job),
        )
        .route("/{ws}/asynctasks/{task}", get(library::get_task))
        .route(ds, get(staging::list_batches))
        .route(&format!("{ds}/{{batch}}"), get(staging::get_batch))
        .route(
            &format!("{ds}/{{batch}}/upload/image"),
            post(uploads::upload_image).layer(DefaultBodyLimit::max(limits::IMAGE_UPLOAD_BODY)),
        )
        .route(
            &format!("{ds}/{{batch}}/upload/video"),
            post(uploads::upload_video),
        )
        .route(
            &format!("{ds}/{{batch}}/bulk-upload/image-files"),
            post(uploads::bulk_image_files),
        )
        .route(
            &format!("{ds}/{{batch}}/bulk-upload/image-references"),
            post(uploads::image_references),
        )
        .route(
            &format!("{ds}/{{batch}}/bulk-upload/video-references"),
            post(uploads::video_references),
        )
        .route(
            &format!("{ds}/{{batch}}/roboql-ingest"),
            post(library::roboql_ingest),
        )
        .route(&format!("{ds}/{{batch}}/count"), get(staging::count))
        .route(&format!("{ds}/{{batch}}/parts"), get(staging::parts))
        .route(&format!("{ds}/{{batch}}/list"), get(staging::list_files))
        .route(&format!("{ds}/{{batch}}/shards"), get(staging::shards))
        .route(bp, get(jobs::list_jobs))
        .route(
            &format!("{bp}/{{job}}"),
            get(jobs::get_job).post(jobs::create_job),
        )
        .route(&format!("{bp}/{{job}}/stages"), get(jobs::stages))
        .route(
            &format!("{bp}/{{job}}/stages/{{stage}}/tasks"),
            get(jobs::tasks),
        )
        .route(&format!("{bp}/{{job}}/logs"), get(jobs::logs))
        .route(&format!("{bp}/{{job}}/abort"), post(jobs::abort))
        .route(&format!("{bp}/{{job}}/restart"), post(jobs::restart))
        .route(STATS_PATH, get(stats))
        .route(
            "/_signed/{token}",
            get(signed::get)
                .put(signed::put)
                .layer(DefaultBodyLimit::disable()),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limits::DEFAULT_BODY));
    let app = if prefix.is_empty() {
        api
    } else {
        Router::new()
            .route(&format!("{prefix}/"), get(staging::workspace))
            .nest(&prefix, api.clone())
            .merge(api)
    };
    with_layers(app, ctx, &prefix)
}

/// The layers around every route, innermost first: commit before
/// answering, JSON errors and the request log, request counting and chaos,
/// network shaping.
fn with_layers(app: Router<Arc<Ctx>>, ctx: Arc<Ctx>, prefix: &str) -> Router {
    let stats_paths = [STATS_PATH.to_string(), format!("{prefix}{STATS_PATH}")];
    app.layer(axum::middleware::from_fn_with_state(
        ctx.clone(),
        commit_before_answering,
    ))
    .layer(axum::middleware::from_fn(json_errors_and_log))
    .layer(axum::middleware::from_fn_with_state(
        (ctx.clone(), Arc::new(stats_paths.clone())),
        count_and_inject_faults,
    ))
    .layer(axum::middleware::from_fn_with_state(
        (ctx.clone(), Arc::new(stats_paths.clone())),
        shape_network,
    ))
    .with_state(ctx)
}

/// The emulator's own statistics endpoint (never faulted; no key needed on
/// a loopback address, a valid one on any other).
const STATS_PATH: &str = "/_emulator/stats";

/// `GET /_emulator/stats`.
async fn stats(State(ctx): State<Arc<Ctx>>, req: Request) -> Result<Json<EmulatorStats>, ApiError> {
    if ctx.exposed() {
        let (parts, _) = req.into_parts();
        let params = crate::params::Params::parse(parts.uri.query());
        auth::authenticate(&ctx, &parts, &params)?;
    }
    Ok(Json(ctx.stats()))
}

/// Counts every request but the stats ones and, in chaos mode, injects the
/// fault drawn for it (outermost layer: a dropped answer stays dropped).
async fn count_and_inject_faults(
    State((ctx, stats_paths)): State<(Arc<Ctx>, Arc<[String; 2]>)>,
    req: Request,
    next: Next,
) -> Response {
    if stats_paths.iter().any(|p| p == req.uri().path()) {
        return next.run(req).await;
    }
    Counters::bump(&ctx.counters.requests);
    if req.version() == http::Version::HTTP_2 {
        Counters::bump(&ctx.counters.http2_requests);
    }
    let Some(fault) = ctx.chaos.next() else {
        return next.run(req).await;
    };
    let logged_path = if req.uri().path().starts_with(crate::signed::SIGNED_PREFIX) {
        "/_signed/<token>"
    } else {
        req.uri().path()
    };
    tracing::info!(method = %req.method(), path = %logged_path, fault = ?fault, "chaos: injecting a fault");
    match fault {
        Fault::Throttle { retry_after_secs } => {
            respond::drain(req.into_body()).await;
            respond::throttled(retry_after_secs)
        }
        Fault::ServerError(status) => {
            respond::drain(req.into_body()).await;
            respond::server_error(status)
        }
        Fault::DropRequest => respond::drop_before_head(),
        Fault::DropResponse => respond::cut_response(next.run(req).await),
        Fault::Delay(pause) => {
            tokio::time::sleep(pause).await;
            next.run(req).await
        }
    }
}

/// Network shaping (outside chaos: a faulted answer is late and paced too);
/// the stats endpoint is never shaped.
async fn shape_network(
    State((ctx, stats_paths)): State<(Arc<Ctx>, Arc<[String; 2]>)>,
    req: Request,
    next: Next,
) -> Response {
    if stats_paths.iter().any(|p| p == req.uri().path()) {
        return next.run(req).await;
    }
    ctx.shaper.shape(req, next).await
}

/// Answers a successful request that may have changed the state (any
/// method but `GET` and `HEAD`) only once its changes are committed: a
/// `2xx` means durable. A failed commit turns the answer into a `500`.
async fn commit_before_answering(
    State(ctx): State<Arc<Ctx>>,
    req: Request,
    next: Next,
) -> Response {
    let reads_only = matches!(*req.method(), http::Method::GET | http::Method::HEAD);
    let resp = next.run(req).await;
    if reads_only || !resp.status().is_success() {
        return resp;
    }
    match ctx.store.durable().await {
        Ok(()) => resp,
        Err(e) => ApiError::internal(e.to_string()).into_response(),
    }
}

async fn not_found(uri: http::Uri) -> ApiError {
    if uri.path().contains("//") {
        return ApiError::not_found(
            "no such endpoint: the path has an empty segment (`//`); if API_BASE_URL ends with `/`, remove the trailing slash",
        );
    }
    ApiError::not_found("no such endpoint; see docs/emulator.md for the served paths")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed on this endpoint",
    )
}

/// Logs each request (path only) and rewrites non-JSON error answers
/// (extractor rejections) into `{"error": "..."}`.
async fn json_errors_and_log(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let logged_path = if path.starts_with("/_signed/") {
        "/_signed/<token>"
    } else {
        path.as_str()
    };
    let started = Instant::now();
    let resp = next.run(req).await;
    let status = resp.status();
    tracing::info!(
        method = %method,
        path = %logged_path,
        status = status.as_u16(),
        ms = started.elapsed().as_millis() as u64,
        "request"
    );
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if status.as_u16() < 400 || is_json {
        return resp;
    }
    let (_, body) = resp.into_parts();
    let text = match axum::body::to_bytes(body, MAX_REWRITTEN_ERROR).await {
        Ok(b) => String::from_utf8_lossy(&b).trim().to_string(),
        Err(_) => String::new(),
    };
    let message = if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("error")
            .to_ascii_lowercase()
    } else {
        text
    };
    let mut r = ApiError::new(status, message).into_response();
    if r.status() != status {
        *r.status_mut() = status;
    }
    let _ = Body::empty();
    r
}
