//! Emulator configuration: keys, data directory, delays and speeds.
//!
//! Every knob has a default that resembles the real service closely enough to
//! exercise a client (a short indexing delay, visible job progress); the
//! [`EmulatorConfig::for_tests`] preset removes every delay.

use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use crate::chaos::ChaosConfig;
use crate::error::EmulatorError;
use crate::shaping::ShapingConfig;

/// How fast simulated job work progresses.
///
/// Processing a media file really happens (the built-in workflows read and
/// hash the bytes); these knobs add the *simulated* part: a real pause per
/// item so progress can be watched, and a simulated compute cost charged
/// against the job's `processingTimeoutSeconds` budget.
#[derive(Debug, Clone, PartialEq)]
pub struct JobSpeed {
    /// Real time spent per processed item (images, video frames count as one
    /// item per file). Zero in tests.
    pub item_delay: Duration,
    /// Simulated machine seconds charged per processed item against the
    /// per-task share of `processingTimeoutSeconds`.
    pub simulated_seconds_per_item: f64,
    /// Tasks of all jobs running at the same time (the worker pool size).
    pub worker_pool: usize,
    /// How many input files go into one processing task of a simple batch
    /// (sharded batches get one task per shard).
    pub images_per_task: usize,
    /// How many processing result files go into one export archive.
    pub results_per_archive: usize,
}

impl Default for JobSpeed {
    fn default() -> Self {
        Self {
            item_delay: Duration::from_millis(20),
            simulated_seconds_per_item: 0.5,
            worker_pool: 4,
            images_per_task: 500,
            results_per_archive: 50,
        }
    }
}

/// Webhook delivery settings.
#[derive(Clone, PartialEq)]
pub struct WebhookConfig {
    /// Attempts per notification (the first delivery included).
    pub max_attempts: u32,
    /// Pause before the second attempt; doubled for every further one.
    pub initial_backoff: Duration,
    /// Timeout of one delivery attempt.
    pub timeout: Duration,
    /// `Authorization` header value sent with every webhook; `None` sends
    /// `Bearer rf_<workspace>` (what the service documents).
    pub authorization: Option<String>,
}

impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("max_attempts", &self.max_attempts)
            .field("initial_backoff", &self.initial_backoff)
            .field("timeout", &self.timeout)
            .field(
                "authorization",
                &self.authorization.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(500),
            timeout: Duration::from_secs(10),
            authorization: None,
        }
    }
}

/// Configuration of one emulator instance.
///
/// ```
/// use rf_emulator::EmulatorConfig;
/// let config = EmulatorConfig::for_tests();
/// assert_eq!(config.keys, vec![("test-key".to_string(), "test-ws".to_string())]);
/// ```
#[derive(Clone, PartialEq)]
pub struct EmulatorConfig {
    /// Where state and blobs live. `None` uses a temporary directory that is
    /// removed when the emulator shuts down.
    pub data_dir: Option<PathBuf>,
    /// API keys and the workspace each one opens, as `(key, workspace)`.
    /// Empty: one random key is generated for the workspace `local-workspace`.
    pub keys: Vec<(String, String)>,
    /// Delay between a shard upload (or reference ingest) and its indexing.
    pub index_delay: Duration,
    /// Lifetime of the signed upload and download URLs handed out.
    pub signed_url_ttl: Duration,
    /// Lifetime of a batch, counted from its creation.
    pub batch_ttl: Duration,
    /// Speed of simulated job work.
    pub job_speed: JobSpeed,
    /// Webhook delivery settings.
    pub webhooks: WebhookConfig,
    /// Base URL written into signed URLs; defaults to `http://<bound address>`.
    /// A path prefix here (`http://host/prefix`) is also served by the router.
    pub public_base_url: Option<Url>,
    /// Fault injection ([`ChaosConfig`]); `None` (the default) injects none.
    pub chaos: Option<ChaosConfig>,
    /// Network shaping ([`ShapingConfig`]: latency, bandwidth, connection
    /// cap); the default shapes nothing. Independent of [`Self::chaos`].
    pub shaping: ShapingConfig,
    /// What runs this emulator (`rf run`, `rf emulator serve`, ...), written
    /// into the data directory's lock file so that a second emulator refused
    /// the directory can name it. `None`: the program's file name.
    pub owner: Option<String>,
    /// Hold an exclusive lock on the data directory while running (the
    /// default): a second emulator on the same directory, in this process or
    /// another, fails to start with [`crate::EmulatorError::DataDirInUse`]
    /// instead of both overwriting each other's state. The lock goes when the
    /// emulator closes or its process ends. Turn it off only to simulate a
    /// crash inside one process (an emulator leaked with `mem::forget` keeps
    /// its lock until the process ends).
    pub lock_data_dir: bool,
    /// Hosts (names or IP addresses) webhooks may go to besides loopback
    /// (`rf emulator serve --allow-webhook-host`). Empty (the default):
    /// loopback only; a notification for any other host is not sent.
    pub allowed_webhook_hosts: Vec<String>,
    /// How long a connection may take to send a request's headers, counted
    /// from its start and from the end of each answer: a client that never
    /// finishes them is disconnected then, so half-sent requests cannot
    /// pile up (an idle keep-alive connection is closed after it too).
    /// Default 10 s.
    pub header_read_timeout: Duration,
    /// The asset library (`rf emulator serve --library DIR`): the images
    /// under this directory, tagged by their folders (and the `tags` of a
    /// sidecar `<file>.json`), which Asset Library jobs and RoboQL ingests
    /// select from. `None` (the default): no library; those requests are
    /// refused with a 400 that says so.
    pub library: Option<PathBuf>,
}

impl std::fmt::Debug for EmulatorConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys: Vec<String> = self
            .keys
            .iter()
            .map(|(_, ws)| format!("<redacted>={ws}"))
            .collect();
        f.debug_struct("EmulatorConfig")
            .field("data_dir", &self.data_dir)
            .field("keys", &keys)
            .field("index_delay", &self.index_delay)
            .field("signed_url_ttl", &self.signed_url_ttl)
            .field("batch_ttl", &self.batch_ttl)
            .field("job_speed", &self.job_speed)
            .field("webhooks", &self.webhooks)
            .field("public_base_url", &self.public_base_url)
            .field("chaos", &self.chaos)
            .field("shaping", &self.shaping)
            .field("owner", &self.owner)
            .field("lock_data_dir", &self.lock_data_dir)
            .field("allowed_webhook_hosts", &self.allowed_webhook_hosts)
            .field("header_read_timeout", &self.header_read_timeout)
            .field("library", &self.library)
            .finish()
    }
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            data_dir: None,
            keys: Vec::new(),
            index_delay: Duration::from_millis(500),
            signed_url_ttl: Duration::from_secs(24 * 3600),
            batch_ttl: Duration::from_secs(7 * 24 * 3600),
            job_speed: JobSpeed::default(),
            webhooks: WebhookConfig::default(),
            public_base_url: None,
            chaos: None,
            shaping: ShapingConfig::default(),
            owner: None,
            lock_data_dir: true,
            allowed_webhook_hosts: Vec::new(),
            header_read_timeout: Duration::from_secs(10),
            library: None,
        }
    }
}

impl EmulatorConfig {
    /// A configuration for tests: one key `test-key` for the workspace
    /// `test-ws`, a temporary data directory, no indexing delay, instant jobs
    /// and fast webhook retries.
    pub fn for_tests() -> Self {
        Self {
            keys: vec![("test-key".to_string(), "test-ws".to_string())],
            index_delay: Duration::ZERO,
            job_speed: JobSpeed {
                item_delay: Duration::ZERO,
                simulated_seconds_per_item: 0.0,
                ..JobSpeed::default()
            },
            webhooks: WebhookConfig {
                max_attempts: 4,
                initial_backoff: Duration::from_millis(10),
                timeout: Duration::from_secs(5),
                authorization: None,
            },
            ..Self::default()
        }
    }

    /// Adds a key for a workspace (builder style).
    pub fn with_key(mut self, key: impl Into<String>, workspace: impl Into<String>) -> Self {
        self.keys.push((key.into(), workspace.into()));
        self
    }

    /// Adds a freshly generated random key (`rfemu_` + 32 hex characters)
    /// for a workspace (builder style); [`crate::RunningEmulator::api_key`]
    /// tells it when it is the first key.
    pub fn with_generated_key(self, workspace: impl Into<String>) -> Self {
        self.with_key(generate_key(), workspace)
    }

    /// Parses a `KEY=WORKSPACE` binding (the `--key` flag of `rf emulator serve`).
    ///
    /// ```
    /// use rf_emulator::EmulatorConfig;
    /// let (key, ws) = EmulatorConfig::parse_key_binding("secret=acme").unwrap();
    /// assert_eq!((key.as_str(), ws.as_str()), ("secret", "acme"));
    /// assert!(EmulatorConfig::parse_key_binding("no-equals").is_err());
    /// ```
    pub fn parse_key_binding(binding: &str) -> Result<(String, String), EmulatorError> {
        match binding.split_once('=') {
            Some((k, w)) if !k.is_empty() && !w.is_empty() => Ok((k.to_string(), w.to_string())),
            _ => Err(EmulatorError::Config(
                "a key binding must look like KEY=WORKSPACE".to_string(),
            )),
        }
    }

    /// Turns chaos mode on (builder style).
    pub fn with_chaos(mut self, chaos: ChaosConfig) -> Self {
        self.chaos = Some(chaos);
        self
    }

    /// Shapes the network (builder style; see [`ShapingConfig`]).
    pub fn with_shaping(mut self, shaping: ShapingConfig) -> Self {
        self.shaping = shaping;
        self
    }

    /// Names what runs this emulator, for the data directory's lock file
    /// (builder style; see [`EmulatorConfig::owner`]).
    pub fn with_owner(mut self, owner: impl Into<String>) -> Self {
        self.owner = Some(owner.into());
        self
    }

    /// Checks the keys and workspaces, the chaos and shaping settings, and gives a
    /// configuration without keys a generated one for `local-workspace`.
    pub(crate) fn checked(mut self) -> Result<Self, EmulatorError> {
        if self.keys.is_empty() {
            self.keys
                .push((generate_key(), "local-workspace".to_string()));
        }
        for (key, ws) in &self.keys {
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
        if let Some(chaos) = &self.chaos {
            chaos.validate()?;
        }
        self.shaping.validate()?;
        Ok(self)
    }

    /// Sets the data directory (builder style).
    pub fn with_data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }
}

/// A random API key (`rfemu_` + 32 hex characters).
pub(crate) fn generate_key() -> String {
    format!("rfemu_{}", uuid::Uuid::new_v4().simple())
}
