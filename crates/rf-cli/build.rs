//! Sets `RF_VERSION`, what `rf --version` prints after `rf `: the package
//! version, then the git commit it was built from when that is known —
//! `0.1.0 (1a2b3c4)`, `0.1.0 (1a2b3c4-dirty)` with uncommitted changes to
//! tracked files. The commit comes from `git` when this crate is built in
//! its own checkout, else from the `.cargo_vcs_info.json` that
//! `cargo package` writes into a `.crate` file (crates.io); with neither (no
//! git, a plain copy of the sources) the version stands alone.
//!
//! In a checkout the script runs again when HEAD moves, the branch it names
//! gets a new commit, or the index changes (a commit, `git add`); an edit
//! that is not staged yet is seen as `-dirty` at the next of those.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    println!("cargo:rerun-if-changed=build.rs");
    let commit = commit_from_git(&manifest_dir).or_else(|| commit_from_vcs_info(&manifest_dir));
    match commit {
        Some(commit) => println!("cargo:rustc-env=RF_VERSION={version} ({commit})"),
        None => println!("cargo:rustc-env=RF_VERSION={version}"),
    }
}

/// `git` in `dir`, its trimmed standard output when it succeeds.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let output = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    Some(String::from_utf8(output.stdout).ok()?.trim().to_string())
}

/// The short commit (with `-dirty`) of the checkout this crate sits in, and
/// the files to watch for a change of it. `None` when there is no git, or
/// when the enclosing repository is not this crate's own (a packaged copy
/// unpacked inside some other checkout, such as `target/package/`).
fn commit_from_git(manifest_dir: &Path) -> Option<String> {
    let prefix = git(manifest_dir, &["rev-parse", "--show-prefix"])?;
    if prefix.trim_end_matches('/') != "crates/rf-cli" {
        return None;
    }
    let commit = git(manifest_dir, &["rev-parse", "--short", "HEAD"])?;
    watch_git_files(manifest_dir);
    let changes = git(
        manifest_dir,
        &["status", "--porcelain", "--untracked-files=no"],
    )?;
    Some(if changes.is_empty() {
        commit
    } else {
        format!("{commit}-dirty")
    })
}

/// Asks cargo to run this script again when HEAD, the branch HEAD names
/// (loose or packed) or the index changes.
fn watch_git_files(manifest_dir: &Path) {
    let path = |args: &[&str]| git(manifest_dir, args).map(|p| manifest_dir.join(p));
    let mut watched = Vec::new();
    watched.extend(path(&["rev-parse", "--git-path", "HEAD"]));
    watched.extend(path(&["rev-parse", "--git-path", "index"]));
    watched.extend(path(&["rev-parse", "--git-path", "packed-refs"]));
    if let Some(branch) = git(manifest_dir, &["symbolic-ref", "-q", "HEAD"]) {
        watched.extend(path(&["rev-parse", "--git-path", &branch]));
    }
    for file in watched.iter().filter(|p| p.exists()) {
        println!("cargo:rerun-if-changed={}", file.display());
    }
}

/// The commit `cargo package` recorded in `.cargo_vcs_info.json`
/// (`{"git": {"sha1": "…", "dirty": true}, "path_in_vcs": "…"}`), shortened
/// as git does by default.
fn commit_from_vcs_info(manifest_dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(manifest_dir.join(".cargo_vcs_info.json")).ok()?;
    let info: serde_json::Value = serde_json::from_str(&text).ok()?;
    let sha1 = info["git"]["sha1"].as_str()?;
    let short = sha1.get(..7)?;
    Some(if info["git"]["dirty"] == true {
        format!("{short}-dirty")
    } else {
        short.to_string()
    })
}
