//! The workspace each API key belongs to, remembered between commands.
//!
//! Every path of the API holds the workspace, and the key alone does not
//! tell it: without `--workspace`, `RF_WORKSPACE` or a `roboflow login`
//! config, each command first asks the server (`GET /?api_key=`), one
//! round trip before any work (150 ms on a far link). A key belongs to one
//! workspace for good, so the answer is kept in
//! `<cache>/api/workspaces.json` and the next command starts at once.
//!
//! The file holds no key: each entry is named by a SHA-256 of the API URL
//! and the key. Its directory is owner-only, and it is written atomically.
//! A command that fails as if the workspace were wrong (refused key, not
//! found) checks the remembered one with a lookup and corrects or forgets
//! it (see `Session::finish`); a cache that cannot be read or written is
//! ignored: it only ever saves time.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Entries kept at most (the oldest go first).
const MAX_ENTRIES: usize = 64;

/// The remembered workspace of one API key at one API URL.
#[derive(Debug, Clone)]
pub(crate) struct RememberedWorkspace {
    path: PathBuf,
    /// SHA-256 (hex) of the API URL and the key: never the key itself.
    id: String,
}

/// One remembered workspace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    id: String,
    workspace: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct File {
    /// Oldest first.
    entries: Vec<Entry>,
}

impl RememberedWorkspace {
    /// The entry of `key` at `api_url` in the cache inside `cache_dir`
    /// (`<cache_dir>/api/workspaces.json`).
    pub(crate) fn of(cache_dir: &Path, api_url: &str, key: &str) -> RememberedWorkspace {
        RememberedWorkspace {
            path: cache_dir.join("api").join("workspaces.json"),
            id: entry_id(api_url, key),
        }
    }

    /// The workspace remembered.
    pub(crate) fn get(&self) -> Option<String> {
        self.read()
            .entries
            .into_iter()
            .find(|e| e.id == self.id)
            .map(|e| e.workspace)
    }

    /// Remembers `workspace` (best effort).
    pub(crate) fn put(&self, workspace: &str) {
        self.update(|entries, id| {
            entries.retain(|e| e.id != id);
            entries.push(Entry {
                id: id.to_owned(),
                workspace: workspace.to_owned(),
            });
            let excess = entries.len().saturating_sub(MAX_ENTRIES);
            entries.drain(..excess);
        });
    }

    /// Forgets the workspace (best effort).
    pub(crate) fn forget(&self) {
        self.update(|entries, id| entries.retain(|e| e.id != id));
    }

    /// The file of every remembered workspace.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The file's entries; none when it is missing or unreadable.
    fn read(&self) -> File {
        std::fs::read(&self.path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    fn update(&self, change: impl FnOnce(&mut Vec<Entry>, &str)) {
        let mut file = self.read();
        change(&mut file.entries, &self.id);
        if let Err(e) = self.write(&file) {
            tracing::debug!(path = %self.path.display(), error = %e, "cannot save the workspace cache");
        }
    }

    fn write(&self, file: &File) -> std::io::Result<()> {
        let Some(dir) = self.path.parent() else {
            return Ok(());
        };
        create_private_dir(dir)?;
        rf_util::write_atomic(&self.path, |w| {
            serde_json::to_writer(&mut *w, file).map_err(std::io::Error::other)
        })
    }
}

/// The entry's name: no key in the file, and one key at two API URLs (an
/// emulator and the service) gives two entries.
fn entry_id(api_url: &str, key: &str) -> String {
    let mut hash = Sha256::new();
    hash.update(b"rf workspace cache v1\0");
    hash.update(api_url.trim_end_matches('/').as_bytes());
    hash.update(b"\0");
    hash.update(key.as_bytes());
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Creates `dir` (and its parents), itself readable by its owner only.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_per_url_and_key_and_forgets() {
        let dir = tempfile::tempdir().unwrap();
        let at = |url: &str, key: &str| RememberedWorkspace::of(dir.path(), url, key);
        assert_eq!(at("http://a", "k1").get(), None);
        at("http://a/", "k1").put("ws1");
        at("http://b", "k1").put("other");
        assert_eq!(at("http://a", "k1").get().as_deref(), Some("ws1"));
        assert_eq!(at("http://a", "k2").get(), None);
        assert_eq!(at("http://b", "k1").get().as_deref(), Some("other"));
        at("http://a", "k1").put("ws2");
        assert_eq!(at("http://a", "k1").get().as_deref(), Some("ws2"));
        at("http://a", "k1").forget();
        assert_eq!(at("http://a", "k1").get(), None);
        assert_eq!(at("http://b", "k1").get().as_deref(), Some("other"));
    }

    #[test]
    fn holds_no_key_and_is_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let entry = RememberedWorkspace::of(dir.path(), "http://a", "secret-key-123");
        entry.put("ws");
        let text = std::fs::read_to_string(entry.path()).unwrap();
        assert!(!text.contains("secret-key-123"), "{text}");
        assert!(text.contains("\"ws\""));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let parent = entry.path().parent().unwrap();
            let mode = std::fs::metadata(parent).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "{mode:o}");
        }
    }

    #[test]
    fn keeps_the_newest_entries_and_survives_a_broken_file() {
        let dir = tempfile::tempdir().unwrap();
        let at = |i: usize| RememberedWorkspace::of(dir.path(), "http://a", &format!("k{i}"));
        for i in 0..MAX_ENTRIES + 5 {
            at(i).put(&format!("ws{i}"));
        }
        assert_eq!(at(0).read().entries.len(), MAX_ENTRIES);
        assert_eq!(at(0).get(), None);
        let last = MAX_ENTRIES + 4;
        assert_eq!(at(last).get(), Some(format!("ws{last}")));
        std::fs::write(at(1).path(), b"{not json").unwrap();
        assert_eq!(at(last).get(), None);
        at(1).put("ws");
        assert_eq!(at(1).get().as_deref(), Some("ws"));
    }
}
