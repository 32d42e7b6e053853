//! The request shortcuts of the reliability tests (chaos, hostile input,
//! isolation, idempotency): they tell a dropped connection and a cut body
//! from an answer ([`Outcome`]). They live on [`Env`], a wrapper of the
//! shared [`super::Env`] (which it dereferences to), so that they do not
//! clash with the answer shortcuts of [`super::answers`].

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::StatusCode;
use rf_emulator::{ChaosConfig, ChaosKind, EmulatorStats};
use serde_json::Value;

pub(crate) use super::{DEADLINE, png, signed_url_details, tar_of};

/// A started emulator with the reliability shortcuts.
pub(crate) struct Env(pub(crate) super::Env);

impl std::ops::Deref for Env {
    type Target = super::Env;

    fn deref(&self) -> &super::Env {
        &self.0
    }
}

/// An emulator with [`rf_emulator::EmulatorConfig::for_tests`].
pub(crate) async fn start() -> Env {
    Env(super::start().await)
}

/// An emulator with `config`.
pub(crate) async fn start_with(config: rf_emulator::EmulatorConfig) -> Env {
    Env(super::start_with(config).await)
}

/// What a request came back with.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Outcome {
    /// A complete answer: status, `Retry-After` header, body.
    Answer(StatusCode, Option<String>, Vec<u8>),
    /// The connection dropped before the head arrived.
    NoAnswer,
    /// The head arrived, then the body was cut.
    CutBody(StatusCode),
}

impl Outcome {
    pub(crate) fn status(&self) -> Option<StatusCode> {
        match self {
            Outcome::Answer(s, _, _) | Outcome::CutBody(s) => Some(*s),
            Outcome::NoAnswer => None,
        }
    }
    pub(crate) fn json(&self) -> Value {
        match self {
            Outcome::Answer(_, _, b) => serde_json::from_slice(b).unwrap_or(Value::Null),
            _ => Value::Null,
        }
    }
    /// A short label, for comparing runs.
    pub(crate) fn label(&self) -> String {
        match self {
            Outcome::Answer(s, _, _) => s.as_u16().to_string(),
            Outcome::NoAnswer => "no-answer".into(),
            Outcome::CutBody(s) => format!("cut-{}", s.as_u16()),
        }
    }
}

/// Chaos of one kind on every request.
pub(crate) fn always(kind: ChaosKind, seed: u64) -> Option<ChaosConfig> {
    Some(ChaosConfig {
        seed,
        rate: 1.0,
        kinds: vec![kind],
    })
}

/// The request shortcuts of the reliability tests: they tell a dropped
/// connection and a cut body from an answer ([`Outcome`]).
impl Env {
    pub(crate) fn chaos(&self, chaos: Option<ChaosConfig>) {
        self.emu.state().set_chaos(chaos).unwrap();
    }

    /// Sends `req` and reads the whole answer, telling drops apart.
    pub(crate) async fn send(&self, req: reqwest::RequestBuilder) -> Outcome {
        let r = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                assert!(!e.is_builder(), "bad request built: {e}");
                return Outcome::NoAnswer;
            }
        };
        let status = r.status();
        let retry_after = r
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_string());
        match r.bytes().await {
            Ok(b) => Outcome::Answer(status, retry_after, b.to_vec()),
            Err(_) => Outcome::CutBody(status),
        }
    }

    pub(crate) async fn get(&self, url: &str, query: &[(&str, &str)]) -> Outcome {
        let mut q: Vec<(&str, &str)> = vec![("api_key", "test-key")];
        q.extend_from_slice(query);
        self.send(self.http.get(url).query(&q)).await
    }

    pub(crate) async fn post(&self, url: &str, body: Option<Value>) -> Outcome {
        let mut req = self.http.post(url).query(&[("api_key", "test-key")]);
        if let Some(b) = body {
            req = req.json(&b);
        }
        self.send(req).await
    }

    /// GET that must answer 200 with JSON.
    pub(crate) async fn get_ok(&self, url: &str, query: &[(&str, &str)]) -> Value {
        let o = self.get(url, query).await;
        assert_eq!(o.status(), Some(StatusCode::OK), "{url}: {o:?}");
        o.json()
    }

    /// Asks for a shard upload URL and its headers (chaos must be off).
    pub(crate) async fn shard_url(&self, batch: &str) -> (String, BTreeMap<String, String>) {
        let o = self
            .post(
                &self.ds(&format!("batches/{batch}/bulk-upload/image-files")),
                None,
            )
            .await;
        assert_eq!(o.status(), Some(StatusCode::OK), "{o:?}");
        signed_url_details(&o.json())
    }

    pub(crate) async fn put(
        &self,
        url: &str,
        headers: &BTreeMap<String, String>,
        body: Vec<u8>,
    ) -> Outcome {
        let mut req = self.http.put(url).body(body);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        self.send(req).await
    }

    /// The stats endpoint, over HTTP (never faulted).
    pub(crate) async fn stats(&self) -> EmulatorStats {
        let r = self
            .http
            .get(format!("{}_emulator/stats", self.base()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        r.json().await.unwrap()
    }

    /// Polls the stats until `pred` holds.
    pub(crate) async fn wait_stats(
        &self,
        what: &str,
        pred: impl Fn(&EmulatorStats) -> bool,
    ) -> EmulatorStats {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let s = self.stats().await;
            if pred(&s) {
                return s;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "waited for {what}; stats: {s:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// A tar of `n` distinct small PNGs named `img-<i>.png`.
pub(crate) fn shard_of(n: u8) -> Vec<u8> {
    shard_named("img", n)
}

/// A tar of `n` distinct small PNGs named `<prefix>-<i>.png`.
pub(crate) fn shard_named(prefix: &str, n: u8) -> Vec<u8> {
    let members: Vec<(String, Vec<u8>)> = (0..n)
        .map(|i| (format!("{prefix}-{i}.png"), png(2, 2, i)))
        .collect();
    tar_of(&members)
}

/// A valid image job over `batch` with JSONL results.
pub(crate) fn image_job(batch: &str, workflow: &str) -> Value {
    super::answers::image_job(batch, workflow, "jsonl")
}
