//! The public handle on a running emulator's state ([`EmulatorState`]) and
//! the [`router`] built from it: the top of the module graph, tying the
//! context ([`crate::ctx`]), the background work and the routes together.

use std::sync::Arc;

use axum::Router;
use url::Url;

use crate::background;
use crate::chaos::ChaosConfig;
use crate::config::EmulatorConfig;
use crate::ctx::Ctx;
use crate::error::EmulatorError;
use crate::routes;
use crate::stats::EmulatorStats;

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
    pub fn open(config: EmulatorConfig, base_url: Url) -> Result<Self, EmulatorError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(EmulatorError::Config(
                "the emulator must be opened inside a tokio runtime (it runs background tasks)"
                    .into(),
            ));
        }
        let ctx = Arc::new(Ctx::open(config, base_url)?);
        background::start(&ctx);
        Ok(Self(ctx))
    }

    /// Records the address the router is served on (a non-loopback one
    /// makes `/_emulator/stats` ask for an API key).
    pub(crate) fn set_bound(&self, addr: std::net::SocketAddr) {
        self.0.set_bound(addr);
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
        self.0.stats()
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

    /// Commits the pending state changes now (also done continuously: a
    /// request is answered once its changes are committed).
    pub fn persist(&self) -> Result<(), EmulatorError> {
        self.0.store.persist()
    }

    /// Stops background work (jobs stop at their next step), writes a final
    /// snapshot and releases the data directory's lock (another emulator can
    /// open it at once). The router keeps answering requests, but what they
    /// change is no longer written.
    pub fn close(&self) -> Result<(), EmulatorError> {
        self.0.close()
    }
}

/// Builds the emulator's router for `state` (for in-process use; the
/// [`crate::Emulator`] server uses the same router).
pub fn router(state: EmulatorState) -> Router {
    routes::build(state.0)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::background::remove_orphans;
    use crate::model::{Batch, BatchKind, BlobRef, Content};

    #[test]
    fn opening_outside_a_runtime_is_an_error_not_a_panic() {
        let err = EmulatorState::open(
            EmulatorConfig::for_tests(),
            "http://127.0.0.1:1/".parse().unwrap(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("tokio runtime"), "{err}");
    }

    #[tokio::test]
    async fn orphans_are_removed_referenced_blobs_kept() {
        let state = EmulatorState::open(
            EmulatorConfig::for_tests(),
            "http://127.0.0.1:1/".parse().unwrap(),
        )
        .unwrap();
        let ctx = &state.0;
        let now = ctx.now();
        std::fs::write(ctx.store.blob_path("kept.img"), b"x").unwrap();
        std::fs::write(ctx.store.blob_path("orphan.img"), b"y").unwrap();
        ctx.store.write(|db| {
            let seq = db.next_seq();
            let mut b = Batch::new(
                "b",
                None,
                BatchKind::SimpleBatch,
                Content::Images,
                now,
                chrono::Duration::days(1),
                seq,
            );
            crate::batches::put_file(
                &mut b,
                "a.png".into(),
                BlobRef {
                    blob: "kept.img".into(),
                    offset: 0,
                    len: 1,
                },
                Content::Images,
            );
            db.insert_batch("test-ws", b);
        });
        assert_eq!(
            remove_orphans(ctx, Duration::from_secs(3600)),
            0,
            "young files are kept"
        );
        assert_eq!(remove_orphans(ctx, Duration::ZERO), 1);
        assert!(ctx.store.blob_path("kept.img").exists());
        assert!(!ctx.store.blob_path("orphan.img").exists());
        state.close().unwrap();
    }
}
