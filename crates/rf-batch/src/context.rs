//! What every orchestration step needs besides its own data: the client,
//! where progress events go, the cancellation token, and the warnings said
//! so far (for the step's report).

use std::sync::{Arc, Mutex, PoisonError};

use tokio_util::sync::CancellationToken;

use crate::client::Client;
use crate::error::{Error, Result};
use crate::events::{Event, EventSink};

/// The client, events, cancellation and warnings of one run.
///
/// Cheap to clone; clones share the warnings.
#[derive(Debug, Clone)]
pub struct Context {
    /// The typed client.
    pub client: Client,
    /// Where progress events go.
    pub events: EventSink,
    /// Cancelled: stop at the next safe point.
    pub cancel: CancellationToken,
    warnings: Arc<Mutex<Vec<String>>>,
}

impl Context {
    /// A context over `client` that emits nothing and is never cancelled.
    pub fn new(client: Client) -> Context {
        Context {
            client,
            events: EventSink::none(),
            cancel: CancellationToken::new(),
            warnings: Arc::default(),
        }
    }

    /// Events go to `events`.
    pub fn with_events(mut self, events: EventSink) -> Context {
        self.events = events;
        self
    }

    /// Stops when `cancel` is cancelled.
    pub fn with_cancel(mut self, cancel: CancellationToken) -> Context {
        self.cancel = cancel;
        self
    }

    /// Says `message` as a [`Event::Warning`] and keeps it for the report.
    pub async fn warn(&self, message: String) {
        self.warnings
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(message.clone());
        self.events.emit(Event::Warning { message }).await;
    }

    /// The warnings said so far, taken out.
    pub fn take_warnings(&self) -> Vec<String> {
        std::mem::take(&mut *self.warnings.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// [`Error::Cancelled`] once the token is cancelled.
    pub fn check_cancel(&self) -> Result<()> {
        if self.cancel.is_cancelled() {
            Err(Error::Cancelled)
        } else {
            Ok(())
        }
    }

    /// Emits `event`, waiting for room in the channel.
    pub async fn emit(&self, event: Event) {
        self.events.emit(event).await;
    }
}
