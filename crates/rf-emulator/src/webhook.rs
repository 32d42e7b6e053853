//! Webhooks: the job and data-staging notifications, and their delivery.
//!
//! Delivery: POST the documented payloads with
//! `Authorization: Bearer rf_<workspace>`, retry non-2xx answers and
//! connection errors with exponential backoff, keep the `event_id` and count
//! `delivery_attempt` up. The queue and the number of deliveries in flight
//! are bounded. Each notification is kept in the state's outbox until it
//! is delivered or given up, so one a crash cut off is sent again on the
//! next start ([`Webhooks::resend`]). Notifications go to loopback hosts only, plus the hosts
//! allowed in [`crate::EmulatorConfig::allowed_webhook_hosts`] (the check is
//! [`crate::http_client::check_destination`]); redirects are never followed.

use std::sync::Arc;

use rf_types::{EventId, JobNotification, JobState, StagingNotification};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::{Semaphore, mpsc};

use crate::config::WebhookConfig;
use crate::http_client::check_destination;
use crate::model::OutboxRec;
use crate::store::Store;

const QUEUE: usize = 4096;
const IN_FLIGHT: usize = 32;

/// One notification to deliver.
#[derive(Debug)]
struct Delivery {
    /// Its outbox entry.
    id: String,
    url: String,
    workspace: String,
    /// The payload; `delivery_attempt` is set per attempt.
    body: Value,
}

/// Handle to the webhook dispatcher.
#[derive(Debug, Clone)]
pub(crate) struct Webhooks {
    tx: mpsc::Sender<Delivery>,
    /// Hosts allowed besides loopback.
    allowed_hosts: Arc<[String]>,
    /// Where the outbox is kept.
    store: Arc<Store>,
}

impl Webhooks {
    /// Starts the dispatcher on the current runtime.
    pub(crate) fn start(
        config: WebhookConfig,
        allowed_hosts: Vec<String>,
        store: Arc<Store>,
    ) -> Result<Self, reqwest::Error> {
        let (tx, mut rx) = mpsc::channel::<Delivery>(QUEUE);
        let client = crate::http_client::builder()
            .timeout(config.timeout)
            .build()?;
        let slots = Arc::new(Semaphore::new(IN_FLIGHT));
        let outbox = store.clone();
        tokio::spawn(async move {
            while let Some(d) = rx.recv().await {
                let Ok(permit) = slots.clone().acquire_owned().await else {
                    break;
                };
                let client = client.clone();
                let config = config.clone();
                let outbox = outbox.clone();
                tokio::spawn(async move {
                    let id = d.id.clone();
                    // On disk before the first attempt: a receiver that saw
                    // it will see it again if the process dies now.
                    if let Err(e) = outbox.durable().await {
                        tracing::debug!("webhook outbox entry not committed: {e}");
                    }
                    deliver(&client, &config, d).await;
                    outbox.write(|db| db.remove_outbox(&id));
                    drop(permit);
                });
            }
        });
        Ok(Self {
            tx,
            allowed_hosts: allowed_hosts.into(),
            store,
        })
    }

    /// Why a notification to `url` would not be sent (`None`: it would be).
    pub(crate) fn refusal(&self, url: &str) -> Option<String> {
        check_destination(url, &self.allowed_hosts).err()
    }

    /// Queues the job notification (`roboflow-batch-job-notification-v1`)
    /// of a job that ended, successfully or not.
    pub(crate) fn send_job(&self, url: &str, workspace: &str, job_id: &str, success: bool) {
        let n = JobNotification {
            event_id: new_event_id(),
            job_id: job_id.to_string(),
            job_state: if success {
                JobState::Success
            } else {
                JobState::Fail
            },
            delivery_attempt: 1,
        };
        self.send_encoded(url, workspace, &n, "job notification");
    }

    /// Queues a data-staging notification (ingest or files status).
    pub(crate) fn send_staging(&self, url: &str, workspace: &str, n: &StagingNotification) {
        self.send_encoded(url, workspace, n, "staging notification");
    }

    fn send_encoded(&self, url: &str, workspace: &str, n: &impl Serialize, what: &str) {
        match serde_json::to_value(n) {
            Ok(v) => self.send(url, workspace, v),
            Err(e) => tracing::warn!("cannot encode {what}: {e}"),
        }
    }

    /// Queues a notification; `body` must be a JSON object.
    fn send(&self, url: &str, workspace: &str, body: Value) {
        if let Some(reason) = self.refusal(url) {
            tracing::warn!(url = %redact_url(url), "webhook not sent: {reason}");
            return;
        }
        let id = uuid::Uuid::new_v4().simple().to_string();
        let rec = OutboxRec {
            url: url.to_string(),
            workspace: workspace.to_string(),
            body,
        };
        self.store
            .write(|db| db.insert_outbox(id.clone(), rec.clone()));
        self.queue(id, rec);
    }

    /// Queues a notification of the outbox left undelivered by a previous
    /// run (its `event_id` kept).
    pub(crate) fn resend(&self, id: String, rec: OutboxRec) {
        if let Some(reason) = self.refusal(&rec.url) {
            tracing::warn!(url = %redact_url(&rec.url), "webhook not sent: {reason}");
            self.store.write(|db| db.remove_outbox(&id));
            return;
        }
        self.queue(id, rec);
    }

    fn queue(&self, id: String, rec: OutboxRec) {
        let d = Delivery {
            id: id.clone(),
            url: rec.url,
            workspace: rec.workspace,
            body: rec.body,
        };
        if let Err(e) = self.tx.try_send(d) {
            tracing::warn!(url = %redact_url(&rec_url_of(&e)), "webhook queue full or closed, notification dropped: {e}");
            self.store.write(|db| db.remove_outbox(&id));
        }
    }
}

/// The URL of a delivery that could not be queued.
fn rec_url_of(e: &mpsc::error::TrySendError<Delivery>) -> String {
    match e {
        mpsc::error::TrySendError::Full(d) | mpsc::error::TrySendError::Closed(d) => d.url.clone(),
    }
}

/// A fresh event ID (kept by every delivery attempt of one notification).
pub(crate) fn new_event_id() -> EventId {
    EventId::from(uuid::Uuid::new_v4().to_string())
}

/// Where a job definition asks its notification to go (`notificationsURL`).
pub(crate) fn job_notifications_url(definition: &Value) -> Option<String> {
    definition
        .get("notificationsURL")
        .and_then(Value::as_str)
        .map(str::to_string)
}

async fn deliver(client: &reqwest::Client, config: &WebhookConfig, mut d: Delivery) {
    let auth = config
        .authorization
        .clone()
        .unwrap_or_else(|| format!("Bearer rf_{}", d.workspace));
    let mut backoff = config.initial_backoff;
    let mut why = String::new();
    for attempt in 1..=config.max_attempts.max(1) {
        if let Value::Object(map) = &mut d.body {
            map.insert("delivery_attempt".into(), Value::from(attempt));
        }
        let result = client
            .post(&d.url)
            .header(http::header::AUTHORIZATION, &auth)
            .json(&d.body)
            .send()
            .await;
        match result {
            Ok(r) if r.status().is_success() => {
                tracing::debug!(url = %redact_url(&d.url), attempt, "webhook delivered");
                return;
            }
            Ok(r) => {
                why = format!("the receiver answered HTTP {}", r.status());
                tracing::info!(url = %redact_url(&d.url), attempt, "webhook not delivered: {why}");
            }
            Err(e) => {
                why = format!("connection error: {}", e.without_url());
                tracing::info!(url = %redact_url(&d.url), attempt, "webhook not delivered: {why}");
            }
        }
        if attempt < config.max_attempts {
            tokio::time::sleep(backoff).await;
            backoff = backoff.saturating_mul(2);
        }
    }
    tracing::warn!(
        url = %redact_url(&d.url),
        "webhook given up after {} attempts; last failure: {why}",
        config.max_attempts
    );
}

/// A URL for logs: scheme, host and path only (query strings may hold secrets).
pub(crate) fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => match u.port() {
            Some(p) => format!(
                "{}://{}:{p}{}",
                u.scheme(),
                u.host_str().unwrap_or(""),
                u.path()
            ),
            None => format!(
                "{}://{}{}",
                u.scheme(),
                u.host_str().unwrap_or(""),
                u.path()
            ),
        },
        Err(_) => "<invalid url>".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_keeps_host_port_path_only() {
        assert_eq!(
            redact_url("http://127.0.0.1:9/x?token=secret"),
            "http://127.0.0.1:9/x"
        );
        assert_eq!(
            redact_url("https://h.example/p#frag"),
            "https://h.example/p"
        );
        assert_eq!(redact_url("::"), "<invalid url>");
    }
}
