//! `--max-connections`: the accept loop takes a connection only while
//! fewer than the maximum are open. Connections beyond it wait in the
//! kernel's backlog, as they would at a server with a connection cap.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::Shaper;

/// The door of the accept loop: counts connections and caps how many are
/// open (`--max-connections`).
#[derive(Debug)]
pub(crate) struct Gate {
    slots: Option<Arc<Semaphore>>,
    shaper: Arc<Shaper>,
}

/// The right to accept one connection (a slot under the cap, if any).
#[derive(Debug)]
pub(crate) struct Pass(Option<OwnedSemaphorePermit>);

impl Gate {
    /// The gate of `shaper`'s `max_connections` (none: connections are
    /// only counted).
    pub(crate) fn new(shaper: Arc<Shaper>) -> Self {
        let slots = shaper
            .config()
            .max_connections
            .map(|n| Arc::new(Semaphore::new(n.max(1))));
        Self { slots, shaper }
    }

    /// Waits until one more connection may be open; call it before
    /// accepting, so connections beyond the cap stay in the backlog.
    pub(crate) async fn pass(&self) -> Pass {
        let Some(slots) = &self.slots else {
            return Pass(None);
        };
        if let Ok(p) = slots.clone().try_acquire_owned() {
            return Pass(Some(p));
        }
        Shaper::bump(&self.shaper.connections_waited);
        // The semaphore is never closed: an error cannot happen.
        Pass(slots.clone().acquire_owned().await.ok())
    }

    /// Counts a connection accepted with `pass`; the returned slot holds
    /// it (and its place under the cap) until dropped with the connection.
    pub(crate) fn admit(&self, pass: Pass) -> Slot {
        Shaper::bump(&self.shaper.connections_accepted);
        self.shaper.connections_open.fetch_add(1, Ordering::Relaxed);
        Slot {
            _permit: pass.0,
            shaper: self.shaper.clone(),
        }
    }
}

/// An open connection's place: counted out (and its slot under the cap
/// freed) when dropped, which the server does when the connection ends.
#[derive(Debug)]
pub(crate) struct Slot {
    _permit: Option<OwnedSemaphorePermit>,
    shaper: Arc<Shaper>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.shaper.connections_open.fetch_sub(1, Ordering::Relaxed);
    }
}
