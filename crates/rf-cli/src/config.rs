//! The resolved configuration: flags merged with the environment (the
//! variables the official clients read) and the config file `roboflow
//! login` writes; where the API is, and how output is written.
//!
//! Precedence, first found wins:
//! - key: `--api-key`, `ROBOFLOW_API_KEY`, the config file's key for the
//!   workspace (see [`crate::roboflow_config`]); with none of them and no
//!   URL, the embedded emulator;
//! - URL: `--api-url`, `API_BASE_URL` (inference-cli), `API_URL` (the
//!   `roboflow` package; environment, then config file), else the host of
//!   the region (`ROBOFLOW_REGION`, environment then config file: `us`,
//!   `eu`);
//! - workspace: `--workspace`, `RF_WORKSPACE`, the config file's
//!   workspace when its key is used, else looked up with the key;
//! - timeout of an API call: `--timeout`, `ROBOFLOW_API_REQUEST_TIMEOUT`.
//!
//! This is the only module that reads the environment.

use std::fmt;
use std::path::PathBuf;

use rf_batch::limit::Concurrency;

use crate::args::GlobalArgs;
use crate::error::{CliError, Kind, Result};
use crate::output::Output;
use crate::roboflow_config::{RoboflowConfig, StoredKey};

/// The public API, used when a key is configured but no URL.
pub(crate) const DEFAULT_API_URL: &str = "https://api.roboflow.com";
/// The public API of the EU region (`ROBOFLOW_REGION=eu`).
pub(crate) const EU_API_URL: &str = "https://api.roboflow.eu";
/// The most uploads/downloads in flight when neither `--concurrency` nor
/// `--max-concurrency` is given (the adaptive limit's ceiling): as many as
/// the memory bound allows.
pub(crate) const DEFAULT_MAX_CONCURRENCY: usize = rf_batch::limit::MEMORY_CAP;

/// An API key. Never printed: `Debug` and `Display` show `***`.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct ApiKey(String);

impl ApiKey {
    /// The key itself, for handing to the client.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

/// Which API the command talks to.
#[derive(Debug, Clone)]
pub(crate) enum Api {
    /// A configured API (the public one, or any URL such as a separately
    /// started emulator).
    Remote {
        /// Base URL, without a trailing slash.
        url: url::Url,
        /// The key.
        key: ApiKey,
    },
    /// Nothing configured: start the emulator in this process, keeping its
    /// data in `data_dir`.
    Embedded {
        /// The emulator's data directory.
        data_dir: PathBuf,
    },
}

/// Everything a command needs besides its own arguments.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// Where the API is, or that the embedded emulator is to be used.
    pub(crate) api: Api,
    /// `--workspace`: skips the workspace lookup.
    pub(crate) workspace: Option<String>,
    /// Uploads/downloads in flight.
    pub(crate) concurrency: Concurrency,
    /// `--timeout`: per-request timeout of API calls.
    pub(crate) timeout: Option<std::time::Duration>,
    /// `--http2-prior-knowledge`: HTTP/2 without negotiation.
    pub(crate) http2_prior_knowledge: bool,
    /// How to write results and notes.
    pub(crate) output: Output,
    /// `-v` count.
    pub(crate) verbose: u8,
    /// `$XDG_CACHE_HOME/rf` (or `~/.cache/rf`), if there is one.
    pub(crate) cache_dir: Option<PathBuf>,
}

/// The environment as far as `rf` cares, captured once (tests fill it in).
#[derive(Debug, Default, Clone)]
pub(crate) struct Env {
    pub(crate) api_key: Option<String>,
    /// `API_BASE_URL` (inference-cli's name).
    pub(crate) api_url: Option<String>,
    /// `API_URL` (the `roboflow` package's name).
    pub(crate) rfpy_api_url: Option<String>,
    pub(crate) region: Option<String>,
    pub(crate) workspace: Option<String>,
    pub(crate) request_timeout: Option<String>,
    pub(crate) xdg_cache_home: Option<PathBuf>,
    pub(crate) home: Option<PathBuf>,
    pub(crate) webhook_token: Option<String>,
    pub(crate) rf_log: Option<String>,
    /// The `roboflow login` config file, if there is one.
    pub(crate) roboflow: Option<RoboflowConfig>,
    /// Why the config file could not be read, if it could not.
    pub(crate) roboflow_error: Option<String>,
}

impl Env {
    /// Reads the process environment and the `roboflow login` config file.
    /// Empty values count as unset.
    pub(crate) fn from_process() -> Self {
        fn var(name: &str) -> Option<String> {
            std::env::var(name).ok().filter(|v| !v.trim().is_empty())
        }
        let home = var("HOME").map(PathBuf::from);
        let config_path =
            RoboflowConfig::path(var("ROBOFLOW_CONFIG_DIR").as_deref(), home.as_deref());
        Env {
            api_key: var("ROBOFLOW_API_KEY"),
            api_url: var("API_BASE_URL"),
            rfpy_api_url: var("API_URL"),
            region: var("ROBOFLOW_REGION"),
            workspace: var("RF_WORKSPACE"),
            request_timeout: var("ROBOFLOW_API_REQUEST_TIMEOUT"),
            xdg_cache_home: var("XDG_CACHE_HOME").map(PathBuf::from),
            home,
            webhook_token: var("RF_WEBHOOK_TOKEN"),
            rf_log: var("RF_LOG"),
            roboflow: None,
            roboflow_error: None,
        }
        .with_roboflow_config(config_path.as_deref())
    }

    /// This environment with the config file at `path` read into it.
    fn with_roboflow_config(mut self, path: Option<&std::path::Path>) -> Self {
        match path.map(RoboflowConfig::load) {
            Some(Ok(config)) => self.roboflow = config,
            Some(Err(why)) => self.roboflow_error = Some(why),
            None => {}
        }
        self
    }

    /// Every API key the environment and the config file hold, to keep out
    /// of any output.
    pub(crate) fn secrets(&self) -> Vec<String> {
        let mut keys: Vec<String> = [&self.api_key, &self.webhook_token]
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        if let Some(c) = &self.roboflow {
            keys.extend(c.keys().map(str::to_owned));
        }
        keys
    }

    /// `$XDG_CACHE_HOME/rf`, else `~/.cache/rf`.
    pub(crate) fn cache_dir(&self) -> Result<PathBuf> {
        if let Some(dir) = self.xdg_cache_home.as_ref().filter(|d| d.is_absolute()) {
            return Ok(dir.join("rf"));
        }
        match &self.home {
            Some(home) => Ok(home.join(".cache").join("rf")),
            None => Err(CliError::local(
                "cannot find a cache directory for the embedded emulator: set XDG_CACHE_HOME or HOME, or configure an API with ROBOFLOW_API_KEY",
            )),
        }
    }

    /// Where the embedded emulator keeps its state.
    pub(crate) fn emulator_data_dir(&self) -> Result<PathBuf> {
        Ok(self.cache_dir()?.join("emulator"))
    }
}

impl Config {
    /// Resolves the global flags against the environment and the config
    /// file (see the module docs for the precedence).
    pub(crate) fn resolve(args: &GlobalArgs, env: &Env, output: Output) -> Result<Self> {
        let flag = |v: &Option<String>| v.clone().filter(|v| !v.trim().is_empty());
        let mut workspace = flag(&args.workspace).or_else(|| env.workspace.clone());
        let url = flag(&args.api_url)
            .or_else(|| env.api_url.clone())
            .or_else(|| env.rfpy_api_url.clone())
            .or_else(|| env.roboflow.as_ref().and_then(|c| c.api_url.clone()));
        let key = match flag(&args.api_key).or_else(|| env.api_key.clone()) {
            Some(key) => Some(key),
            None => stored_key(env, workspace.as_deref())?.map(|stored| {
                workspace.get_or_insert(stored.workspace);
                stored.key
            }),
        };
        let api = match (key, url) {
            (None, None) => Api::Embedded {
                data_dir: env.emulator_data_dir()?,
            },
            (None, Some(url)) => {
                return Err(CliError::new(
                    Kind::Auth,
                    format!(
                        "no api key for {}: set ROBOFLOW_API_KEY, pass --api-key, or log in with `roboflow login`",
                        parse_url(&url)?
                    ),
                ));
            }
            (Some(key), url) => Api::Remote {
                url: match url {
                    Some(url) => parse_url(&url)?,
                    None => parse_url(region_url(env)?)?,
                },
                key: ApiKey(key.trim().to_owned()),
            },
        };
        Ok(Config {
            api,
            workspace,
            concurrency: concurrency_of(args),
            timeout: request_timeout(args, env)?,
            http2_prior_knowledge: args.http2_prior_knowledge,
            output,
            verbose: args.verbose,
            cache_dir: env.cache_dir().ok(),
        })
    }
}

/// The config file's key for `workspace` (or its default workspace); a
/// config file that cannot be read is an error only when a key is needed
/// from it.
fn stored_key(env: &Env, workspace: Option<&str>) -> Result<Option<StoredKey>> {
    if let Some(why) = &env.roboflow_error {
        return Err(CliError::usage(format!(
            "{why}; fix or remove it, or set ROBOFLOW_API_KEY"
        )));
    }
    Ok(env.roboflow.as_ref().and_then(|c| c.key_for(workspace)))
}

/// The public API's host for `ROBOFLOW_REGION` (environment, then config
/// file): `us` (the default) or `eu`.
fn region_url(env: &Env) -> Result<&'static str> {
    let region = env
        .region
        .clone()
        .or_else(|| env.roboflow.as_ref().and_then(|c| c.region.clone()));
    match region.as_deref().map(|r| r.trim().to_ascii_lowercase()) {
        None => Ok(DEFAULT_API_URL),
        Some(r) if r == "us" => Ok(DEFAULT_API_URL),
        Some(r) if r == "eu" => Ok(EU_API_URL),
        Some(other) => Err(CliError::usage(format!(
            "ROBOFLOW_REGION {other:?} is not a region: use us or eu"
        ))),
    }
}

/// `--timeout`, else `ROBOFLOW_API_REQUEST_TIMEOUT` (whole seconds, as the
/// official client reads it).
/// `--concurrency N` pins the number in flight; otherwise it adapts, up to
/// `--max-concurrency` (default [`DEFAULT_MAX_CONCURRENCY`]).
fn concurrency_of(args: &GlobalArgs) -> Concurrency {
    match (args.concurrency, args.max_concurrency) {
        (Some(n), _) => Concurrency::Fixed(usize::from(n)),
        (None, max) => {
            Concurrency::adaptive_up_to(max.map_or(DEFAULT_MAX_CONCURRENCY, usize::from))
        }
    }
}

fn request_timeout(args: &GlobalArgs, env: &Env) -> Result<Option<std::time::Duration>> {
    if let Some(secs) = args.timeout {
        return Ok(Some(std::time::Duration::from_secs(secs)));
    }
    let Some(text) = &env.request_timeout else {
        return Ok(None);
    };
    match text.trim().parse::<u64>() {
        Ok(secs) if secs > 0 => Ok(Some(std::time::Duration::from_secs(secs))),
        _ => Err(CliError::usage(format!(
            "ROBOFLOW_API_REQUEST_TIMEOUT {text:?} is not a whole number of seconds above 0"
        ))),
    }
}

impl Config {
    /// A file-name-safe label of the API in use (`embedded`, or host and
    /// port), to keep local state of different APIs apart.
    pub(crate) fn api_label(&self) -> String {
        match &self.api {
            Api::Embedded { .. } => "embedded".to_owned(),
            Api::Remote { url, .. } => {
                let host = url.host_str().unwrap_or("api");
                let label = match url.port_or_known_default() {
                    Some(port) => format!("{host}-{port}"),
                    None => host.to_owned(),
                };
                label
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                            c
                        } else {
                            '_'
                        }
                    })
                    .collect()
            }
        }
    }
}

/// Parses an API base URL: http or https, no query, no trailing slash.
fn parse_url(text: &str) -> Result<url::Url> {
    let text = text.trim();
    let shown = shown_url(text);
    let mut url = url::Url::parse(text).map_err(|e| {
        CliError::usage(format!(
            "invalid api url {shown:?}: {e}; use something like https://api.roboflow.com"
        ))
    })?;
    if url.query().is_some() || !url.username().is_empty() || url.password().is_some() {
        return Err(CliError::usage(
            "invalid api url: remove the query string and credentials; pass the key with ROBOFLOW_API_KEY",
        ));
    }
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(CliError::usage(format!(
            "invalid api url {shown:?}: use an http or https url such as https://api.roboflow.com"
        )));
    }
    let path = url.path().trim_end_matches('/').to_owned();
    url.set_path(&path);
    Ok(url)
}

/// A URL as typed, safe to echo: no query string, no credentials.
fn shown_url(text: &str) -> String {
    let base = text.split(['?', '#']).next().unwrap_or_default();
    if base.contains('@') {
        "<url with credentials>".to_owned()
    } else {
        base.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use indicatif::{MultiProgress, ProgressDrawTarget};

    fn output() -> Output {
        Output::new(
            false,
            true,
            MultiProgress::with_draw_target(ProgressDrawTarget::hidden()),
        )
    }

    fn args(key: Option<&str>, url: Option<&str>) -> GlobalArgs {
        GlobalArgs {
            api_key: key.map(str::to_owned),
            api_url: url.map(str::to_owned),
            workspace: None,
            json: false,
            verbose: 0,
            quiet: false,
            concurrency: None,
            max_concurrency: None,
            timeout: None,
            http2_prior_knowledge: false,
        }
    }

    fn env() -> Env {
        Env {
            home: Some(PathBuf::from("/home/u")),
            ..Env::default()
        }
    }

    #[test]
    fn nothing_configured_means_the_embedded_emulator() {
        let c = Config::resolve(&args(None, None), &env(), output()).unwrap();
        match c.api {
            Api::Embedded { data_dir } => {
                assert_eq!(data_dir, PathBuf::from("/home/u/.cache/rf/emulator"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            c.concurrency,
            Concurrency::Adaptive {
                initial: rf_batch::limit::DEFAULT_INITIAL,
                max: DEFAULT_MAX_CONCURRENCY
            }
        );
        let pinned = GlobalArgs {
            concurrency: Some(32),
            ..args(None, None)
        };
        assert_eq!(concurrency_of(&pinned), Concurrency::Fixed(32));
        let capped = GlobalArgs {
            max_concurrency: Some(4),
            ..args(None, None)
        };
        assert_eq!(
            concurrency_of(&capped),
            Concurrency::Adaptive { initial: 4, max: 4 }
        );
    }

    #[test]
    fn xdg_cache_home_wins_over_home() {
        let e = Env {
            xdg_cache_home: Some(PathBuf::from("/tmp/c")),
            ..env()
        };
        assert_eq!(
            e.emulator_data_dir().unwrap(),
            PathBuf::from("/tmp/c/rf/emulator")
        );
    }

    #[test]
    fn key_without_url_uses_the_public_api() {
        let c = Config::resolve(&args(Some("k"), None), &env(), output()).unwrap();
        let Api::Remote { url, key } = c.api else {
            panic!()
        };
        assert_eq!(url.as_str(), "https://api.roboflow.com/");
        assert_eq!(key.expose(), "k");
        assert_eq!(format!("{key:?}"), "ApiKey(***)");
    }

    #[test]
    fn flags_override_the_environment() {
        let e = Env {
            api_key: Some("env-key".into()),
            api_url: Some("http://env:1".into()),
            ..env()
        };
        let c = Config::resolve(
            &args(Some("flag-key"), Some("http://flag:2/")),
            &e,
            output(),
        )
        .unwrap();
        let Api::Remote { url, key } = c.api else {
            panic!()
        };
        assert_eq!(key.expose(), "flag-key");
        assert_eq!(url.as_str(), "http://flag:2/");
        let c = Config::resolve(&args(None, None), &e, output()).unwrap();
        let Api::Remote { url, key } = c.api else {
            panic!()
        };
        assert_eq!(key.expose(), "env-key");
        assert_eq!(url.as_str(), "http://env:1/");
    }

    #[test]
    fn url_without_key_is_an_auth_error() {
        let err =
            Config::resolve(&args(None, Some("http://127.0.0.1:9")), &env(), output()).unwrap_err();
        assert_eq!(err.kind(), Kind::Auth);
        assert!(err.to_string().contains("ROBOFLOW_API_KEY"), "{err}");
    }

    #[test]
    fn bad_urls_are_usage_errors() {
        for bad in [
            "not a url",
            "ftp://x",
            "http://h/?api_key=secret",
            "http://u:secret@h",
            "ftp://h?api_key=secret",
            "no scheme?api_key=secret",
        ] {
            let err = Config::resolve(&args(Some("k"), Some(bad)), &env(), output()).unwrap_err();
            assert_eq!(err.kind(), Kind::Usage, "{bad}");
            assert!(!err.to_string().contains("secret"));
        }
    }

    #[test]
    fn api_labels_are_file_name_safe() {
        let c = Config::resolve(
            &args(Some("k"), Some("http://127.0.0.1:8700")),
            &env(),
            output(),
        )
        .unwrap();
        assert_eq!(c.api_label(), "127.0.0.1-8700");
        let c = Config::resolve(&args(Some("k"), None), &env(), output()).unwrap();
        assert_eq!(c.api_label(), "api.roboflow.com-443");
        let c = Config::resolve(&args(None, None), &env(), output()).unwrap();
        assert_eq!(c.api_label(), "embedded");
    }

    fn logged_in(workspace: &str, key: &str, extra: &str) -> Env {
        let config = format!(
            r#"{{"workspaces": {{"id": {{"url": "{workspace}", "apiKey": "{key}"}}}}, "RF_WORKSPACE": "{workspace}"{extra}}}"#
        );
        Env {
            roboflow: Some(serde_json::from_str(&config).unwrap()),
            ..env()
        }
    }

    fn remote(c: &Config) -> (String, String) {
        let Api::Remote { url, key } = &c.api else {
            panic!("{:?}", c.api)
        };
        (url.to_string(), key.expose().to_owned())
    }

    #[test]
    fn the_roboflow_login_key_comes_after_flag_and_environment() {
        let e = logged_in("acme", "k-file", "");
        let c = Config::resolve(&args(None, None), &e, output()).unwrap();
        assert_eq!(
            remote(&c),
            ("https://api.roboflow.com/".into(), "k-file".into())
        );
        // Its workspace comes with it: no lookup needed.
        assert_eq!(c.workspace.as_deref(), Some("acme"));
        let env_key = Env {
            api_key: Some("k-env".into()),
            ..e.clone()
        };
        let c = Config::resolve(&args(None, None), &env_key, output()).unwrap();
        assert_eq!(remote(&c).1, "k-env");
        let c = Config::resolve(&args(Some("k-flag"), None), &env_key, output()).unwrap();
        assert_eq!(remote(&c).1, "k-flag");
        // Another workspace asked for: the file has no key for it.
        let mut other = args(None, None);
        other.workspace = Some("beta".into());
        assert!(matches!(
            Config::resolve(&other, &e, output()).unwrap().api,
            Api::Embedded { .. }
        ));
    }

    #[test]
    fn the_region_and_api_url_pick_the_host() {
        let eu = Env {
            region: Some(" EU ".into()),
            ..env()
        };
        let c = Config::resolve(&args(Some("k"), None), &eu, output()).unwrap();
        assert_eq!(remote(&c).0, "https://api.roboflow.eu/");
        // The config file's region, when the environment has none.
        let e = logged_in("acme", "k", r#", "ROBOFLOW_REGION": "eu""#);
        let c = Config::resolve(&args(None, None), &e, output()).unwrap();
        assert_eq!(remote(&c).0, "https://api.roboflow.eu/");
        // The roboflow package's API_URL beats the region.
        let e = Env {
            rfpy_api_url: Some("http://127.0.0.1:9000".into()),
            ..e
        };
        let c = Config::resolve(&args(None, None), &e, output()).unwrap();
        assert_eq!(remote(&c).0, "http://127.0.0.1:9000/");
        let bad = Env {
            region: Some("mars".into()),
            ..env()
        };
        let err = Config::resolve(&args(Some("k"), None), &bad, output()).unwrap_err();
        assert_eq!(err.kind(), Kind::Usage);
        assert!(err.to_string().contains("use us or eu"), "{err}");
    }

    #[test]
    fn the_request_timeout_variable_is_honoured_after_the_flag() {
        let e = Env {
            request_timeout: Some("30".into()),
            ..env()
        };
        let c = Config::resolve(&args(None, None), &e, output()).unwrap();
        assert_eq!(c.timeout, Some(std::time::Duration::from_secs(30)));
        let mut flagged = args(None, None);
        flagged.timeout = Some(5);
        let c = Config::resolve(&flagged, &e, output()).unwrap();
        assert_eq!(c.timeout, Some(std::time::Duration::from_secs(5)));
        for bad in ["60.5", "0", "soon"] {
            let e = Env {
                request_timeout: Some(bad.into()),
                ..env()
            };
            let err = Config::resolve(&args(None, None), &e, output()).unwrap_err();
            assert!(
                err.to_string().contains("ROBOFLOW_API_REQUEST_TIMEOUT"),
                "{err}"
            );
        }
    }

    #[test]
    fn a_broken_config_file_matters_only_when_its_key_is_needed() {
        let e = Env {
            roboflow_error: Some(
                "/h/.config/roboflow/config.json is not a roboflow config file".into(),
            ),
            ..env()
        };
        let err = Config::resolve(&args(None, None), &e, output()).unwrap_err();
        assert!(err.to_string().contains("fix or remove it"), "{err}");
        assert!(Config::resolve(&args(Some("k"), None), &e, output()).is_ok());
    }

    #[test]
    fn path_prefix_is_kept_without_trailing_slash() {
        let c =
            Config::resolve(&args(Some("k"), Some("http://h:1/api/")), &env(), output()).unwrap();
        let Api::Remote { url, .. } = c.api else {
            panic!()
        };
        assert_eq!(url.as_str(), "http://h:1/api");
    }
}
