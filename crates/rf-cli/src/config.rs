//! The resolved configuration: flags merged with the environment
//! (`ROBOFLOW_API_KEY`, `API_BASE_URL`, the same variables the official client
//! reads), where the API is, and how output is written.
//!
//! This is the only module that reads the environment.

use std::fmt;
use std::path::PathBuf;

use crate::args::GlobalArgs;
use crate::error::{CliError, Kind, Result};
use crate::output::Output;

/// The public API, used when a key is configured but no URL.
pub(crate) const DEFAULT_API_URL: &str = "https://api.roboflow.com";
/// Uploads/downloads in flight when `--concurrency` is not given.
pub(crate) const DEFAULT_CONCURRENCY: usize = 8;

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
    pub(crate) concurrency: usize,
    /// `--timeout`: per-request timeout of API calls.
    pub(crate) timeout: Option<std::time::Duration>,
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
    pub(crate) api_url: Option<String>,
    pub(crate) xdg_cache_home: Option<PathBuf>,
    pub(crate) home: Option<PathBuf>,
    pub(crate) webhook_token: Option<String>,
    pub(crate) rf_log: Option<String>,
}

impl Env {
    /// Reads the process environment. Empty values count as unset.
    pub(crate) fn from_process() -> Self {
        fn var(name: &str) -> Option<String> {
            std::env::var(name).ok().filter(|v| !v.trim().is_empty())
        }
        Env {
            api_key: var("ROBOFLOW_API_KEY"),
            api_url: var("API_BASE_URL"),
            xdg_cache_home: var("XDG_CACHE_HOME").map(PathBuf::from),
            home: var("HOME").map(PathBuf::from),
            webhook_token: var("RF_WEBHOOK_TOKEN"),
            rf_log: var("RF_LOG"),
        }
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
    /// Resolves the global flags against the environment.
    pub(crate) fn resolve(args: &GlobalArgs, env: &Env, output: Output) -> Result<Self> {
        let key = args
            .api_key
            .clone()
            .filter(|k| !k.trim().is_empty())
            .or_else(|| env.api_key.clone());
        let url = args
            .api_url
            .clone()
            .filter(|u| !u.trim().is_empty())
            .or_else(|| env.api_url.clone());
        let api = match (key, url) {
            (None, None) => Api::Embedded {
                data_dir: env.emulator_data_dir()?,
            },
            (None, Some(url)) => {
                return Err(CliError::new(
                    Kind::Auth,
                    format!(
                        "no api key for {}: set ROBOFLOW_API_KEY or pass --api-key",
                        parse_url(&url)?
                    ),
                ));
            }
            (Some(key), url) => Api::Remote {
                url: parse_url(url.as_deref().unwrap_or(DEFAULT_API_URL))?,
                key: ApiKey(key.trim().to_owned()),
            },
        };
        let workspace = args.workspace.clone().filter(|w| !w.trim().is_empty());
        Ok(Config {
            api,
            workspace,
            concurrency: args
                .concurrency
                .map(usize::from)
                .unwrap_or(DEFAULT_CONCURRENCY),
            timeout: args.timeout.map(std::time::Duration::from_secs),
            output,
            verbose: args.verbose,
            cache_dir: env.cache_dir().ok(),
        })
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
            timeout: None,
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
        assert_eq!(c.concurrency, DEFAULT_CONCURRENCY);
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
