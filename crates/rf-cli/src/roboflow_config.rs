//! The configuration file that `roboflow login` (the official `roboflow`
//! package) writes: where it is, and the API key, workspace, region and API
//! URL it holds for `rf` to fall back on.
//!
//! The file is `$ROBOFLOW_CONFIG_DIR` (the path of the file itself, despite
//! the name) or `~/.config/roboflow/config.json`:
//!
//! ```json
//! {
//!   "workspaces": {"acme": {"url": "acme", "name": "Acme", "apiKey": "..."}},
//!   "RF_WORKSPACE": "acme",
//!   "ROBOFLOW_REGION": "eu"
//! }
//! ```
//!
//! Only the values of `workspaces` matter (their `url` is the workspace);
//! unknown keys are ignored.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// What `rf` reads of the file.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct RoboflowConfig {
    /// The stored workspaces with their keys.
    #[serde(default)]
    workspaces: BTreeMap<String, WorkspaceEntry>,
    /// The default workspace.
    #[serde(rename = "RF_WORKSPACE")]
    pub(crate) workspace: Option<String>,
    /// `us` or `eu`.
    #[serde(rename = "ROBOFLOW_REGION")]
    pub(crate) region: Option<String>,
    /// The API's base URL (the `roboflow` package's `API_URL`).
    #[serde(rename = "API_URL")]
    pub(crate) api_url: Option<String>,
}

/// One stored workspace.
#[derive(Debug, Clone, Default, Deserialize)]
struct WorkspaceEntry {
    /// The workspace's ID (its URL slug).
    url: Option<String>,
    /// Its API key.
    #[serde(rename = "apiKey")]
    api_key: Option<String>,
}

/// A key the file holds, with the workspace it is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StoredKey {
    /// The workspace.
    pub(crate) workspace: String,
    /// Its key.
    pub(crate) key: String,
}

impl RoboflowConfig {
    /// Where the file is: `config_var` (`ROBOFLOW_CONFIG_DIR`), else
    /// `~/.config/roboflow/config.json`.
    pub(crate) fn path(config_var: Option<&str>, home: Option<&Path>) -> Option<PathBuf> {
        match config_var {
            Some(p) => Some(PathBuf::from(p)),
            None => home.map(|h| h.join(".config").join("roboflow").join("config.json")),
        }
    }

    /// Reads the file at `path`: `Ok(None)` when there is none, an error
    /// text (naming the file) when it cannot be read or parsed.
    pub(crate) fn load(path: &Path) -> Result<Option<RoboflowConfig>, String> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| format!("{} is not a roboflow config file: {e}", path.display()))
    }

    /// Every key the file holds (to keep them out of any output).
    pub(crate) fn keys(&self) -> impl Iterator<Item = &str> {
        self.workspaces
            .values()
            .filter_map(|w| w.api_key.as_deref())
    }

    /// The key for `workspace` (or, when it is `None`, for the file's
    /// default workspace, or its only one): the entry whose `url` is the
    /// workspace, as the `roboflow` package picks it.
    pub(crate) fn key_for(&self, workspace: Option<&str>) -> Option<StoredKey> {
        let wanted = workspace.or(self.workspace.as_deref());
        let usable = || {
            self.workspaces.values().filter_map(|w| {
                let key = w.api_key.as_deref().filter(|k| !k.trim().is_empty())?;
                Some(StoredKey {
                    workspace: w.url.clone()?,
                    key: key.trim().to_owned(),
                })
            })
        };
        match wanted {
            Some(ws) => usable().find(|k| k.workspace == ws),
            None => {
                let mut all = usable();
                let only = all.next();
                all.next().is_none().then_some(only).flatten()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> RoboflowConfig {
        serde_json::from_str(text).unwrap()
    }

    const TWO: &str = r#"{
        "workspaces": {
            "a-id": {"url": "acme", "name": "Acme", "apiKey": "k-acme"},
            "b-id": {"url": "beta", "name": "Beta", "apiKey": "k-beta"}
        },
        "RF_WORKSPACE": "beta",
        "ROBOFLOW_REGION": "eu",
        "ROBOFLOW_CREDENTIALS_REGION": "eu",
        "unknown": [1, 2]
    }"#;

    #[test]
    fn the_key_is_the_entry_whose_url_is_the_workspace() {
        let c = parse(TWO);
        assert_eq!(c.key_for(Some("acme")).unwrap().key, "k-acme");
        // No workspace asked for: the file's default one.
        let default = c.key_for(None).unwrap();
        assert_eq!(
            (default.workspace.as_str(), default.key.as_str()),
            ("beta", "k-beta")
        );
        // A workspace the file does not hold: no key (never another's).
        assert_eq!(c.key_for(Some("gamma")), None);
        assert_eq!(c.region.as_deref(), Some("eu"));
        assert_eq!(c.keys().collect::<Vec<_>>(), ["k-acme", "k-beta"]);
    }

    #[test]
    fn with_no_default_only_a_single_entry_is_taken() {
        let one = parse(r#"{"workspaces": {"x": {"url": "solo", "apiKey": "k"}}}"#);
        assert_eq!(one.key_for(None).unwrap().workspace, "solo");
        let mut two = parse(TWO);
        two.workspace = None;
        assert_eq!(two.key_for(None), None);
    }

    #[test]
    fn a_missing_file_is_none_and_a_broken_one_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        assert!(RoboflowConfig::load(&path).unwrap().is_none());
        std::fs::write(&path, "{not json").unwrap();
        let err = RoboflowConfig::load(&path).unwrap_err();
        assert!(err.contains("is not a roboflow config file"), "{err}");
        assert!(err.contains("config.json"), "{err}");
    }

    #[test]
    fn the_path_is_the_variable_else_under_home() {
        assert_eq!(
            RoboflowConfig::path(Some("/etc/rf.json"), Some(Path::new("/home/u"))),
            Some(PathBuf::from("/etc/rf.json"))
        );
        assert_eq!(
            RoboflowConfig::path(None, Some(Path::new("/home/u"))),
            Some(PathBuf::from("/home/u/.config/roboflow/config.json"))
        );
    }
}
