//! `cargo xtask deps`: the dependency rules, checked with cargo-deny's
//! `bans`, and unused dependencies, found with cargo-machete (part of
//! `cargo xtask ci` and `.ci/run`). The rules live in three
//! configuration files, each over its own graph (the root `deny.toml` says
//! which): `deny.toml` over the whole workspace with dev-dependencies,
//! `deny.library.toml` over each library crate's normal dependencies, and a
//! crate's own `deny.toml` (today `crates/rf-types/deny.toml`) in place of
//! the library file where a crate has stricter rules.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{project_root, run, run_command};

/// A cargo subcommand these checks need, and the version CI installs
/// (`.ci/run` pins the same ones; a test checks).
struct Tool {
    /// The crate (and `cargo <subcommand>` without the `cargo-`).
    name: &'static str,
    version: &'static str,
}

const CARGO_DENY: Tool = Tool {
    name: "cargo-deny",
    version: "0.20.2",
};

const CARGO_MACHETE: Tool = Tool {
    name: "cargo-machete",
    version: "0.9.2",
};

/// Crates that are not libraries for the rules: the binary that ships the
/// emulator, and the emulator itself.
const NOT_LIBRARIES: &[&str] = &["rf-cli", "rf-emulator"];

/// One cargo-deny run.
#[derive(Debug, PartialEq)]
pub(crate) struct DenyRun {
    /// The crate's manifest, relative to the project root (`None`: the
    /// whole workspace).
    pub(crate) manifest: Option<PathBuf>,
    /// The configuration file, relative to the project root.
    pub(crate) config: PathBuf,
}

impl DenyRun {
    fn args(&self) -> Vec<String> {
        let mut args = vec!["deny".to_string()];
        if let Some(manifest) = &self.manifest {
            args.push("--manifest-path".into());
            args.push(manifest.display().to_string());
        }
        args.push("--config".into());
        args.push(self.config.display().to_string());
        args.push("check".into());
        args.push("bans".into());
        args
    }
}

/// The runs for the project at `root`: the workspace, then each library
/// crate under `crates/`.
pub(crate) fn deny_runs(root: &Path) -> Vec<DenyRun> {
    let mut crates: Vec<String> = std::fs::read_dir(root.join("crates"))
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.path().join("Cargo.toml").is_file())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    crates.sort();
    let mut runs = vec![DenyRun {
        manifest: None,
        config: PathBuf::from("deny.toml"),
    }];
    for name in crates
        .iter()
        .filter(|n| !NOT_LIBRARIES.contains(&n.as_str()))
    {
        let dir = Path::new("crates").join(name);
        let own = dir.join("deny.toml");
        runs.push(DenyRun {
            manifest: Some(dir.join("Cargo.toml")),
            config: if root.join(&own).is_file() {
                own
            } else {
                PathBuf::from("deny.library.toml")
            },
        });
    }
    runs
}

impl Tool {
    /// `cargo <subcommand>`. Without `CARGO_PKG_NAME`, which `cargo run`
    /// sets for xtask: cargo-machete reads it as "not started by cargo" and
    /// then takes its own name for a directory to scan.
    fn command(&self) -> Command {
        let mut command = Command::new("cargo");
        command
            .arg(self.name.trim_start_matches("cargo-"))
            .env_remove("CARGO_PKG_NAME");
        command
    }

    fn install_command(&self) -> String {
        format!(
            "cargo install {} --locked --version {}",
            self.name, self.version
        )
    }

    /// Fails with the install command when the tool is missing.
    fn ensure_installed(&self) -> Result<(), String> {
        let output = self
            .command()
            .arg("--version")
            .output()
            .map_err(|e| format!("could not start cargo: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "{} is not installed; the dependency checks need it: {}",
                self.name,
                self.install_command()
            ));
        }
        let found = String::from_utf8_lossy(&output.stdout);
        if !found.contains(self.version) {
            eprintln!(
                "xtask: warning: {} found, CI uses {} {} ({})",
                found.trim(),
                self.name,
                self.version,
                self.install_command()
            );
        }
        Ok(())
    }
}

/// `cargo xtask deps`: the rules with cargo-deny, then unused dependencies
/// with cargo-machete.
pub(crate) fn deps() -> Result<(), String> {
    CARGO_DENY.ensure_installed()?;
    CARGO_MACHETE.ensure_installed()?;
    for deny_run in deny_runs(&project_root()) {
        let args = deny_run.args();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run("cargo", &args).map_err(|e| format!("dependency rules broken: {e}"))?;
    }
    run_command(&mut CARGO_MACHETE.command()).map_err(|e| {
        format!("unused dependencies (remove them, or list a false positive under [package.metadata.cargo-machete] ignored): {e}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_library_crate_is_checked_with_its_rules() {
        let runs = deny_runs(&project_root());
        assert_eq!(runs[0].manifest, None);
        let checked: Vec<String> = runs[1..]
            .iter()
            .map(|r| {
                format!(
                    "{} {}",
                    r.manifest.as_ref().unwrap().display(),
                    r.config.display()
                )
            })
            .collect();
        assert!(checked.contains(&"crates/rf-types/Cargo.toml crates/rf-types/deny.toml".into()));
        assert!(checked.contains(&"crates/rf-batch/Cargo.toml deny.library.toml".into()));
        assert!(
            !checked
                .iter()
                .any(|c| c.contains("rf-cli") || c.contains("rf-emulator/"))
        );
        for run in &runs {
            assert!(project_root().join(&run.config).is_file(), "{run:?}");
        }
    }

    #[test]
    fn ci_installs_the_pinned_tools() {
        let ci = std::fs::read_to_string(project_root().join(".ci/run")).unwrap();
        for tool in [CARGO_DENY, CARGO_MACHETE] {
            assert!(
                ci.contains(&tool.install_command()),
                ".ci/run must run `{}`",
                tool.install_command()
            );
        }
    }
}
