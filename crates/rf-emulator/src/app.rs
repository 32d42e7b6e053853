//! The shared server context ([`EmulatorState`]) and request authentication.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{FromRequestParts, Path};
use chrono::{DateTime, Utc};
use http::request::Parts;
use tokio::sync::Semaphore;
use url::Url;

use crate::chaos::{Chaos, ChaosConfig};
use crate::config::EmulatorConfig;
use crate::error::{ApiError, EmulatorError};
use crate::params::Params;
use crate::signed::{self, Claims};
use crate::stats::{Counters, EmulatorStats};
use crate::store::Store;
use crate::webhook::Webhooks;

/// Shards (or reference chunks) indexed at the same time.
const INDEX_SLOTS: usize = 2;

/// Everything handlers and background tasks share.
pub(crate) struct Ctx {
    pub(crate) store: Store,
    pub(crate) config: EmulatorConfig,
    keys: HashMap<String, String>,
    pub(crate) base_url: Url,
    pub(crate) webhooks: Webhooks,
    /// Client for fetching loopback references.
    pub(crate) http: reqwest::Client,
    /// The job worker pool (tasks of all jobs).
    pub(crate) workers: Arc<Semaphore>,
    pub(crate) index_slots: Arc<Semaphore>,
    /// Cancelled when the emulator shuts down.
    pub(crate) closing: tokio_util::sync::CancellationToken,
    /// Fault injection (inactive unless configured).
    pub(crate) chaos: Chaos,
    /// Counters served at `/_emulator/stats`.
    pub(crate) counters: Counters,
}

impl std::fmt::Debug for Ctx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // keys are secrets: show only how many there are
        f.debug_struct("Ctx")
            .field("config", &self.config)
            .field("keys", &format_args!("<{} redacted>", self.keys.len()))
            .field("base_url", &self.base_url.as_str())
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl Ctx {
    pub(crate) fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    pub(crate) fn batch_ttl(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.config.batch_ttl).unwrap_or(chrono::Duration::days(7))
    }

    /// Expiry (unix seconds) for a URL signed now.
    pub(crate) fn url_expiry(&self) -> i64 {
        let ttl = i64::try_from(self.config.signed_url_ttl.as_secs()).unwrap_or(i64::MAX / 2);
        self.now().timestamp().saturating_add(ttl)
    }

    /// The full signed URL for `claims`.
    pub(crate) fn signed_url(&self, claims: &Claims) -> String {
        let token = signed::sign(self.store.secret(), claims);
        let base = self.base_url.as_str().trim_end_matches('/');
        format!("{base}{}{token}", signed::SIGNED_PREFIX)
    }

    /// The workspace opened by `key`.
    pub(crate) fn workspace_of(&self, key: &str) -> Option<&str> {
        self.keys.get(key).map(String::as_str)
    }
}

/// Handle to a running emulator's state; build a router from it with
/// [`crate::router`]. Cloning is cheap.
#[derive(Debug, Clone)]
pub struct EmulatorState(pub(crate) Arc<Ctx>);

impl EmulatorState {
    /// Opens the data dir, starts the background work (snapshot writer,
    /// webhook dispatcher, expiry sweeper, and jobs left unfinished by a
    /// previous run) on the current tokio runtime, and returns the state.
    ///
    /// `base_url` is the origin written into signed URLs (normally the
    /// address the router is served on). Must be called inside a tokio
    /// runtime.
    pub fn open(mut config: EmulatorConfig, base_url: Url) -> Result<Self, EmulatorError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(EmulatorError::Config(
                "the emulator must be opened inside a tokio runtime (it runs background tasks)"
                    .into(),
            ));
        }
        if config.keys.is_empty() {
            config
                .keys
                .push((generate_key(), "local-workspace".to_string()));
        }
        for (key, ws) in &config.keys {
            if key.is_empty() {
                return Err(EmulatorError::Config("an api key must not be empty".into()));
            }
            if ws.is_empty()
                || !ws
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(EmulatorError::Config(format!(
                    "workspace {ws:?} must be a non-empty slug of letters, digits, '-' and '_'"
                )));
            }
        }
        if let Some(chaos) = &config.chaos {
            chaos.validate()?;
        }
        let holder = config.lock_data_dir.then(|| crate::LockHolder {
            pid: Some(std::process::id()),
            owner: Some(config.owner.clone().unwrap_or_else(program_name)),
            base_url: Some(base_url.to_string()),
        });
        let store = Store::open(config.data_dir.as_deref(), holder.as_ref())?;
        let keys = config.keys.iter().cloned().collect();
        let http = crate::http_client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .map_err(|e| EmulatorError::Config(format!("cannot build http client: {e}")))?;
        let workers = Arc::new(Semaphore::new(config.job_speed.worker_pool.max(1)));
        let ctx = Arc::new(Ctx {
            store,
            webhooks: Webhooks::start(config.webhooks.clone()).map_err(|e| {
                EmulatorError::Config(format!("cannot build webhook http client: {e}"))
            })?,
            chaos: Chaos::new(config.chaos.clone()),
            counters: Counters::default(),
            config,
            keys,
            base_url,
            http,
            workers,
            index_slots: Arc::new(Semaphore::new(INDEX_SLOTS)),
            closing: tokio_util::sync::CancellationToken::new(),
        });
        crate::background::start(&ctx);
        Ok(Self(ctx))
    }

    /// The first configured (or generated) API key.
    pub fn api_key(&self) -> &str {
        self.0
            .config
            .keys
            .first()
            .map(|(k, _)| k.as_str())
            .unwrap_or("")
    }

    /// The workspace of the first key.
    pub fn workspace(&self) -> &str {
        self.0
            .config
            .keys
            .first()
            .map(|(_, w)| w.as_str())
            .unwrap_or("")
    }

    /// The data directory in use (a temporary one, removed when the
    /// emulator is gone, unless `data_dir` was configured).
    pub fn data_dir(&self) -> &std::path::Path {
        self.0.store.root()
    }

    /// The base URL used in signed URLs.
    pub fn base_url(&self) -> &Url {
        &self.0.base_url
    }

    /// What the emulator has seen so far (the `GET /_emulator/stats` answer).
    pub fn stats(&self) -> EmulatorStats {
        let now = self.0.now();
        self.0
            .store
            .read(|db| self.0.counters.snapshot(&self.0.chaos, db, now))
    }

    /// Turns chaos mode on, changes it, or (`None`) turns it off while the
    /// emulator runs; the request sequence of the seed restarts at 0.
    /// Tests use it to set up state cleanly, then inject faults.
    pub fn set_chaos(&self, chaos: Option<ChaosConfig>) -> Result<(), EmulatorError> {
        if let Some(c) = &chaos {
            c.validate()?;
        }
        self.0.chaos.set(chaos);
        Ok(())
    }

    /// Writes the state snapshot now (also done automatically).
    pub fn persist(&self) -> Result<(), EmulatorError> {
        self.0.store.persist()
    }

    /// Stops background work (jobs stop at their next step), writes a final
    /// snapshot and releases the data directory's lock (another emulator can
    /// open it at once). The router keeps answering requests, but what they
    /// change is no longer written.
    pub fn close(&self) -> Result<(), EmulatorError> {
        self.0.closing.cancel();
        self.0.workers.close();
        self.0.index_slots.close();
        self.0.store.release()
    }
}

/// This program's file name (the default owner in the data dir's lock file).
fn program_name() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "another emulator".to_owned())
}

/// A random API key (`rfemu_` + 32 hex characters).
pub(crate) fn generate_key() -> String {
    format!("rfemu_{}", uuid::Uuid::new_v4().simple())
}

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
