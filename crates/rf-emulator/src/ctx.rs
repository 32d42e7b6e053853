//! The shared server context ([`Ctx`]): storage, configuration, the key
//! table, the webhook dispatcher, the worker pools, fault injection and
//! counters. Handlers, the ingest and job workers and the background tasks
//! all hold an `Arc<Ctx>`; this module depends only on the layers below it
//! (store, config, webhook, chaos, shaping, stats, signed URLs), never on them.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::Semaphore;
use url::Url;

use crate::chaos::Chaos;
use crate::config::EmulatorConfig;
use crate::error::EmulatorError;
use crate::lock::LockHolder;
use crate::shaping::Shaper;
use crate::signed::{self, Claims};
use crate::stats::{Counters, EmulatorStats};
use crate::store::Store;
use crate::webhook::Webhooks;

/// Shards (or reference chunks) indexed at the same time.
const INDEX_SLOTS: usize = 2;

/// Everything handlers and background tasks share.
pub(crate) struct Ctx {
    pub(crate) store: Arc<Store>,
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
    /// Network shaping (inactive unless configured).
    pub(crate) shaper: Arc<Shaper>,
    /// Counters served at `/_emulator/stats`.
    pub(crate) counters: Counters,
    /// The asset library ([`EmulatorConfig::library`]), indexed at start.
    pub(crate) library: crate::library::Library,
    /// The address the router is served on, once [`crate::Emulator::start`]
    /// bound it (unset for a state served by its embedder).
    bound: std::sync::OnceLock<std::net::SocketAddr>,
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
    /// Checks `config`, opens (and locks) the data dir and builds the
    /// context; starts the webhook dispatcher on the current runtime.
    pub(crate) fn open(config: EmulatorConfig, base_url: Url) -> Result<Ctx, EmulatorError> {
        let config = config.checked()?;
        let holder = config.lock_data_dir.then(|| LockHolder {
            pid: Some(std::process::id()),
            owner: Some(config.owner.clone().unwrap_or_else(program_name)),
            base_url: Some(base_url.to_string()),
        });
        let library = crate::library::Library::load(config.library.as_deref())?;
        let store = Arc::new(Store::open(config.data_dir.as_deref(), holder.as_ref())?);
        let http = crate::http_client::builder()
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .map_err(|e| EmulatorError::Config(format!("cannot build http client: {e}")))?;
        let webhooks = Webhooks::start(
            config.webhooks.clone(),
            config.allowed_webhook_hosts.clone(),
            store.clone(),
        )
        .map_err(|e| EmulatorError::Config(format!("cannot build webhook http client: {e}")))?;
        Ok(Ctx {
            store,
            webhooks,
            chaos: Chaos::new(config.chaos.clone()),
            shaper: Arc::new(Shaper::new(config.shaping.clone())),
            counters: Counters::default(),
            library,
            keys: config.keys.iter().cloned().collect(),
            workers: Arc::new(Semaphore::new(config.job_speed.worker_pool.max(1))),
            config,
            base_url,
            http,
            index_slots: Arc::new(Semaphore::new(INDEX_SLOTS)),
            closing: tokio_util::sync::CancellationToken::new(),
            bound: std::sync::OnceLock::new(),
        })
    }

    /// Records the address the router is served on.
    pub(crate) fn set_bound(&self, addr: std::net::SocketAddr) {
        let _ = self.bound.set(addr);
    }

    /// True when the router is served on a non-loopback address (reachable
    /// from other machines): `/_emulator/stats` then asks for an API key.
    pub(crate) fn exposed(&self) -> bool {
        self.bound.get().is_some_and(|a| !a.ip().is_loopback())
    }

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

    /// What the emulator has seen so far (the `GET /_emulator/stats` answer).
    pub(crate) fn stats(&self) -> EmulatorStats {
        let now = self.now();
        let mut stats = self
            .store
            .read(|db| self.counters.snapshot(&self.chaos, db, now));
        stats.shaping = self.shaper.stats();
        stats
    }

    /// Stops background work (jobs stop at their next step), commits the
    /// last changes and releases the data directory's lock.
    pub(crate) fn close(&self) -> Result<(), EmulatorError> {
        self.closing.cancel();
        self.workers.close();
        self.index_slots.close();
        self.store.release()
    }
}

/// This program's file name (the default owner in the data dir's lock file).
fn program_name() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "another emulator".to_owned())
}
