//! Chaos mode: seeded fault injection on every API route and signed URL.
//!
//! When [`crate::EmulatorConfig::chaos`] is set, each request (except the
//! emulator's own `/_emulator/stats`) draws a decision from the seed and the
//! request's sequence number: with probability `rate` it suffers one fault of
//! the configured [`ChaosKind`]s. The same seed and the same request sequence
//! give the same faults. What each kind does:
//!
//! | kind | handler runs | what the client sees |
//! |------|--------------|----------------------|
//! | `throttle` | no | `429` with `Retry-After: 0` or `1` |
//! | `error` | no | `500`, `502`, `503` or `504` |
//! | `drop-request` | no | the connection closes before any answer |
//! | `drop-response` | yes (its effect is applied) | the answer is cut mid-body, or the connection closes before the head when the body is empty |
//! | `delay` | yes | the normal answer, 50–500 ms late |

use std::str::FromStr;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http::StatusCode;
use serde::{Deserialize, Serialize};

use rf_util::rng::{mix, unit};

use crate::error::EmulatorError;

pub(crate) mod respond;

/// One kind of injected fault (the CLI spelling is in parentheses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ChaosKind {
    /// (`throttle`) `429 Too Many Requests` with a `Retry-After` of 0 or 1
    /// second; the handler does not run.
    #[serde(rename = "throttle")]
    Throttle,
    /// (`error`) `500`, `502`, `503` or `504` with a JSON error body; the
    /// handler does not run.
    #[serde(rename = "error")]
    ServerError,
    /// (`drop-request`) the connection is closed before the handler runs:
    /// no effect is applied and no answer is sent.
    #[serde(rename = "drop-request")]
    DropRequest,
    /// (`drop-response`) the handler runs and its effect is applied, then the
    /// answer is lost: cut off mid-body (a body shorter than its
    /// `Content-Length`, or a chunked body without its end), or the
    /// connection is closed before the head when the answer has no body.
    #[serde(rename = "drop-response")]
    DropResponse,
    /// (`delay`) the correct answer, 50–500 ms late.
    #[serde(rename = "delay")]
    Delay,
}

impl ChaosKind {
    /// Every kind, in a fixed order (the default of `--chaos-kinds`).
    pub const ALL: [ChaosKind; 5] = [
        ChaosKind::Throttle,
        ChaosKind::ServerError,
        ChaosKind::DropRequest,
        ChaosKind::DropResponse,
        ChaosKind::Delay,
    ];

    /// The CLI (and stats JSON) spelling: `throttle`, `error`,
    /// `drop-request`, `drop-response`, `delay`.
    pub fn as_str(self) -> &'static str {
        match self {
            ChaosKind::Throttle => "throttle",
            ChaosKind::ServerError => "error",
            ChaosKind::DropRequest => "drop-request",
            ChaosKind::DropResponse => "drop-response",
            ChaosKind::Delay => "delay",
        }
    }

    fn index(self) -> usize {
        match self {
            ChaosKind::Throttle => 0,
            ChaosKind::ServerError => 1,
            ChaosKind::DropRequest => 2,
            ChaosKind::DropResponse => 3,
            ChaosKind::Delay => 4,
        }
    }
}

impl std::fmt::Display for ChaosKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ChaosKind {
    type Err = EmulatorError;

    /// Parses the CLI spelling.
    ///
    /// ```
    /// use rf_emulator::ChaosKind;
    /// assert_eq!("drop-response".parse::<ChaosKind>().unwrap(), ChaosKind::DropResponse);
    /// assert!("explode".parse::<ChaosKind>().is_err());
    /// ```
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        ChaosKind::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                EmulatorError::Config(format!(
                    "unknown chaos kind {s:?}: use throttle, error, drop-request, drop-response or delay"
                ))
            })
    }
}

/// Fault injection settings ([`crate::EmulatorConfig::chaos`]).
///
/// ```
/// use rf_emulator::{ChaosConfig, ChaosKind};
/// let chaos = ChaosConfig::new(42, 0.2);
/// assert_eq!(chaos.kinds, ChaosKind::ALL.to_vec());
/// let only = ChaosConfig { kinds: vec![ChaosKind::Throttle], ..chaos };
/// assert!(only.validate().is_ok());
/// assert!(ChaosConfig::new(1, 1.5).validate().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChaosConfig {
    /// Seed of the per-request decisions.
    pub seed: u64,
    /// Probability (0.0..=1.0) that a request suffers a fault.
    pub rate: f64,
    /// The kinds drawn from (uniformly) when a request is faulted.
    pub kinds: Vec<ChaosKind>,
}

impl ChaosConfig {
    /// Every kind at `rate`, seeded with `seed`.
    pub fn new(seed: u64, rate: f64) -> Self {
        Self {
            seed,
            rate,
            kinds: ChaosKind::ALL.to_vec(),
        }
    }

    /// Checks the rate is a probability and at least one kind is chosen.
    pub fn validate(&self) -> Result<(), EmulatorError> {
        if !self.rate.is_finite() || !(0.0..=1.0).contains(&self.rate) {
            return Err(EmulatorError::Config(format!(
                "chaos rate {} is not a probability: use a number from 0.0 to 1.0",
                self.rate
            )));
        }
        if self.kinds.is_empty() {
            return Err(EmulatorError::Config(
                "chaos mode needs at least one fault kind".to_string(),
            ));
        }
        Ok(())
    }

    /// Parses a comma-separated list of kinds (`throttle,error,...`).
    ///
    /// ```
    /// use rf_emulator::{ChaosConfig, ChaosKind};
    /// let kinds = ChaosConfig::parse_kinds("throttle, delay,throttle").unwrap();
    /// assert_eq!(kinds, vec![ChaosKind::Throttle, ChaosKind::Delay]);
    /// ```
    pub fn parse_kinds(list: &str) -> Result<Vec<ChaosKind>, EmulatorError> {
        let mut kinds = Vec::new();
        for part in list.split(',').filter(|p| !p.trim().is_empty()) {
            let kind: ChaosKind = part.parse()?;
            if !kinds.contains(&kind) {
                kinds.push(kind);
            }
        }
        Ok(kinds)
    }
}

/// One decided fault with its drawn parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    Throttle { retry_after_secs: u64 },
    ServerError(StatusCode),
    DropRequest,
    DropResponse,
    Delay(Duration),
}

impl Fault {
    pub(crate) fn kind(self) -> ChaosKind {
        match self {
            Fault::Throttle { .. } => ChaosKind::Throttle,
            Fault::ServerError(_) => ChaosKind::ServerError,
            Fault::DropRequest => ChaosKind::DropRequest,
            Fault::DropResponse => ChaosKind::DropResponse,
            Fault::Delay(_) => ChaosKind::Delay,
        }
    }
}

/// The running fault injector: the config, a request counter and the
/// counts of injected faults.
#[derive(Debug)]
pub(crate) struct Chaos {
    config: RwLock<Option<ChaosConfig>>,
    sequence: AtomicU64,
    injected: [AtomicU64; 5],
}

/// The `lane`-th random number of request `n` under `seed`.
fn draw(seed: u64, n: u64, lane: u64) -> u64 {
    mix(mix(seed ^ mix(n)).wrapping_add(lane))
}

const ERROR_STATUSES: [StatusCode; 4] = [
    StatusCode::INTERNAL_SERVER_ERROR,
    StatusCode::BAD_GATEWAY,
    StatusCode::SERVICE_UNAVAILABLE,
    StatusCode::GATEWAY_TIMEOUT,
];

impl Chaos {
    pub(crate) fn new(config: Option<ChaosConfig>) -> Self {
        Self {
            config: RwLock::new(config),
            sequence: AtomicU64::new(0),
            injected: Default::default(),
        }
    }

    /// Replaces the settings (`None` turns chaos off) and restarts the
    /// request sequence, so a new seed replays from its first request.
    /// Counts of injected faults are kept.
    pub(crate) fn set(&self, config: Option<ChaosConfig>) {
        let mut guard = self.config.write().unwrap_or_else(|e| e.into_inner());
        *guard = config;
        self.sequence.store(0, Ordering::Relaxed);
    }

    /// The fault (if any) for the next request; counts it as injected.
    pub(crate) fn next(&self) -> Option<Fault> {
        let guard = self.config.read().unwrap_or_else(|e| e.into_inner());
        let config = guard.as_ref().filter(|c| c.rate > 0.0)?;
        let n = self.sequence.fetch_add(1, Ordering::Relaxed);
        let fault = decide(config, n)?;
        self.injected[fault.kind().index()].fetch_add(1, Ordering::Relaxed);
        Some(fault)
    }

    /// The settings in force (`None`: off).
    pub(crate) fn config(&self) -> Option<ChaosConfig> {
        self.config
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Faults injected so far, per kind.
    pub(crate) fn injected(&self, kind: ChaosKind) -> u64 {
        self.injected[kind.index()].load(Ordering::Relaxed)
    }
}

/// The decision for the `n`-th request (0-based) under `config`.
pub(crate) fn decide(config: &ChaosConfig, n: u64) -> Option<Fault> {
    if config.kinds.is_empty() || unit(draw(config.seed, n, 0)) >= config.rate {
        return None;
    }
    let pick = draw(config.seed, n, 1) % config.kinds.len() as u64;
    let kind = config.kinds[usize::try_from(pick).unwrap_or(0)];
    let p = draw(config.seed, n, 2);
    Some(match kind {
        ChaosKind::Throttle => Fault::Throttle {
            retry_after_secs: p % 2,
        },
        ChaosKind::ServerError => {
            let i = usize::try_from(p % ERROR_STATUSES.len() as u64).unwrap_or(0);
            Fault::ServerError(ERROR_STATUSES[i])
        }
        ChaosKind::DropRequest => Fault::DropRequest,
        ChaosKind::DropResponse => Fault::DropResponse,
        ChaosKind::Delay => Fault::Delay(Duration::from_millis(50 + p % 451)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_are_deterministic_and_follow_the_rate() {
        let config = ChaosConfig::new(7, 0.3);
        let a: Vec<_> = (0..2000).map(|n| decide(&config, n)).collect();
        let b: Vec<_> = (0..2000).map(|n| decide(&config, n)).collect();
        assert_eq!(a, b);
        let faults = a.iter().filter(|f| f.is_some()).count();
        assert!(
            (450..750).contains(&faults),
            "{faults} faults of 2000 at 0.3"
        );
        for kind in ChaosKind::ALL {
            assert!(
                a.iter().flatten().any(|f| f.kind() == kind),
                "{kind} never drawn"
            );
        }
        let other = ChaosConfig::new(8, 0.3);
        let c: Vec<_> = (0..2000).map(|n| decide(&other, n)).collect();
        assert_ne!(a, c, "another seed gives other faults");
    }

    #[test]
    fn parameters_stay_in_their_ranges() {
        let config = ChaosConfig::new(3, 1.0);
        for n in 0..5000 {
            match decide(&config, n).unwrap() {
                Fault::Throttle { retry_after_secs } => assert!(retry_after_secs <= 1),
                Fault::ServerError(s) => assert!(ERROR_STATUSES.contains(&s)),
                Fault::Delay(d) => {
                    assert!(d >= Duration::from_millis(50) && d <= Duration::from_millis(500))
                }
                Fault::DropRequest | Fault::DropResponse => {}
            }
        }
    }

    #[test]
    fn rate_zero_and_one_and_kind_filter() {
        let off = ChaosConfig::new(1, 0.0);
        assert!((0..1000).all(|n| decide(&off, n).is_none()));
        let only = ChaosConfig {
            kinds: vec![ChaosKind::Delay],
            ..ChaosConfig::new(1, 1.0)
        };
        assert!((0..1000).all(|n| matches!(decide(&only, n), Some(Fault::Delay(_)))));
        let chaos = Chaos::new(Some(only));
        for _ in 0..10 {
            assert!(chaos.next().is_some());
        }
        assert_eq!(chaos.injected(ChaosKind::Delay), 10);
        assert_eq!(chaos.injected(ChaosKind::Throttle), 0);
        assert!(Chaos::new(Some(ChaosConfig::new(1, 0.0))).next().is_none());
    }

    #[test]
    fn kinds_parse_in_cli_spelling() {
        for kind in ChaosKind::ALL {
            assert_eq!(kind.as_str().parse::<ChaosKind>().unwrap(), kind);
            assert_eq!(
                serde_json::to_value(kind).unwrap(),
                serde_json::json!(kind.as_str())
            );
        }
        assert!(ChaosConfig::parse_kinds("throttle,nope").is_err());
        assert!(ChaosConfig::new(1, f64::NAN).validate().is_err());
        assert!(
            ChaosConfig {
                kinds: vec![],
                ..ChaosConfig::new(1, 0.5)
            }
            .validate()
            .is_err()
        );
    }
}
