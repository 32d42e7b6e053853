//! `cargo xtask package`: the crates.io readiness of the workspace (part of
//! `cargo xtask ci` and `.ci/run`). First the metadata every published
//! crate needs, read from `cargo metadata`: a description, license,
//! repository, homepage, documentation, rust-version, a README that exists,
//! keywords and categories; every other member says `publish = false`;
//! no published crate promises a `rust-version` below one of the crates it
//! builds with (normal and build dependencies, transitively). Then
//! `cargo package` of the published crates, which cargo orders by their
//! dependencies, packages with the unpublished ones standing in for the
//! registry, and builds each from its own `.crate` file (so a file a crate
//! reads at compile time but does not ship fails here). It verifies in
//! `target/package-verify`, and first forgets what an earlier run unpacked
//! and built of our crates: cargo would reuse it while the version is the
//! same, verifying against stale sources.

use std::process::Command;

use serde_json::Value;

use crate::{project_root, run_command, target_dir};

/// The crates published to crates.io, in dependency order.
pub(crate) const PUBLISHED: [&str; 7] = [
    "rf-types",
    "rf-util",
    "rf-transport",
    "rf-emulator",
    "rf-batch",
    "rf-report",
    "rf-cli",
];

/// The fields crates.io shows, each of which a published crate must set.
const REQUIRED: [&str; 6] = [
    "description",
    "license",
    "repository",
    "homepage",
    "documentation",
    "rust_version",
];

/// Checks the metadata, then packages and verifies every published crate.
pub(crate) fn package() -> Result<(), String> {
    check_metadata(&workspace_metadata(false)?)?;
    let too_low = msrv_problems(&workspace_metadata(true)?);
    if !too_low.is_empty() {
        return Err(format!("rust-version:\n  {}", too_low.join("\n  ")));
    }
    forget_unpacked_packages()?;
    let verify_dir = target_dir().join("package-verify");
    forget_built_packages(&verify_dir)?;
    let mut command = Command::new("cargo");
    command
        .args(["package", "--allow-dirty"])
        .env("CARGO_TARGET_DIR", &verify_dir);
    for name in PUBLISHED {
        command.args(["-p", name]);
    }
    run_command(&mut command)
}

/// Removes the build fingerprints of our crates from `verify_dir`, the
/// target directory `cargo package` verifies in (its own, so that only
/// packaged builds of our crates are there). Cargo takes a crate from a
/// registry as unchanged while its version is, so without this a crate
/// changed since the last run would be verified against the old build of
/// the crates it depends on.
fn forget_built_packages(verify_dir: &std::path::Path) -> Result<(), String> {
    let Ok(entries) = std::fs::read_dir(verify_dir.join("debug/.fingerprint")) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if PUBLISHED.iter().any(|p| name.starts_with(&format!("{p}-"))) {
            std::fs::remove_dir_all(entry.path())
                .map_err(|e| format!("{}: {e}", entry.path().display()))?;
        }
    }
    Ok(())
}

/// Removes the sources cargo unpacked from an earlier `cargo package`.
///
/// Cargo verifies a crate against the others through a temporary local
/// registry, unpacked into `$CARGO_HOME/registry/src/-<hash>/<name>-<version>`
/// (a local registry's directory has no host name before the dash). It
/// unpacks a crate there once and reuses it while the version stays the
/// same, so a crate changed since would be verified against its old
/// sources. Only our published crates' directories in local registries go.
fn forget_unpacked_packages() -> Result<(), String> {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".cargo")))
        .ok_or("neither CARGO_HOME nor HOME is set")?;
    let Ok(registries) = std::fs::read_dir(cargo_home.join("registry/src")) else {
        return Ok(());
    };
    let version = env!("CARGO_PKG_VERSION");
    for registry in registries.flatten() {
        if !registry.file_name().to_string_lossy().starts_with('-') {
            continue;
        }
        for name in PUBLISHED {
            let unpacked = registry.path().join(format!("{name}-{version}"));
            if unpacked.is_dir() {
                std::fs::remove_dir_all(&unpacked)
                    .map_err(|e| format!("{}: {e}", unpacked.display()))?;
            }
        }
    }
    Ok(())
}

/// `cargo metadata` of the workspace: its members only (`--no-deps`), or
/// with every dependency and the resolved graph.
fn workspace_metadata(with_deps: bool) -> Result<Value, String> {
    let mut args = vec!["metadata", "--format-version", "1"];
    if !with_deps {
        args.push("--no-deps");
    }
    let output = Command::new("cargo")
        .args(args)
        .current_dir(project_root())
        .output()
        .map_err(|e| format!("could not start cargo metadata: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    serde_json::from_slice(&output.stdout).map_err(|e| format!("cargo metadata output: {e}"))
}

/// A `rust-version` as numbers (`1.89` → `[1, 89]`), for comparing.
fn rust_version(text: &str) -> Vec<u64> {
    text.split('.').map(|n| n.parse().unwrap_or(0)).collect()
}

/// Published crates whose `rust-version` is below that of a crate they
/// build with (normal and build dependencies, transitively): they would not
/// build on the Rust they promise.
fn msrv_problems(metadata: &Value) -> Vec<String> {
    let empty = Vec::new();
    let packages = metadata["packages"].as_array().unwrap_or(&empty);
    let nodes = metadata["resolve"]["nodes"].as_array().unwrap_or(&empty);
    let package = |id: &Value| packages.iter().find(|p| p["id"] == *id);
    let node = |id: &Value| nodes.iter().find(|n| n["id"] == *id);
    let mut problems = Vec::new();
    for published in packages
        .iter()
        .filter(|p| PUBLISHED.iter().any(|n| p["name"] == *n))
    {
        let promised = rust_version(published["rust_version"].as_str().unwrap_or("0"));
        let mut seen: Vec<&Value> = Vec::new();
        let mut stack = vec![&published["id"]];
        while let Some(id) = stack.pop() {
            if seen.contains(&id) {
                continue;
            }
            seen.push(id);
            let deps = node(id)
                .and_then(|n| n["deps"].as_array())
                .unwrap_or(&empty);
            for dep in deps {
                let kinds = dep["dep_kinds"].as_array().unwrap_or(&empty);
                if kinds
                    .iter()
                    .any(|k| k["kind"].is_null() || k["kind"] == "build")
                {
                    stack.push(&dep["pkg"]);
                }
            }
        }
        for dep in seen.into_iter().skip(1).filter_map(package) {
            let needs = dep["rust_version"].as_str().unwrap_or("0");
            if rust_version(needs) > promised {
                problems.push(format!(
                    "{}: rust-version {} but {} needs {needs}",
                    published["name"].as_str().unwrap_or("?"),
                    published["rust_version"].as_str().unwrap_or("none"),
                    dep["name"].as_str().unwrap_or("?"),
                ));
            }
        }
    }
    problems
}

/// Every problem with the workspace's packages, as one error listing them.
fn check_metadata(metadata: &Value) -> Result<(), String> {
    let packages = metadata["packages"]
        .as_array()
        .ok_or("cargo metadata lists no packages")?;
    let mut problems = Vec::new();
    for package in packages {
        let name = package["name"].as_str().unwrap_or("?");
        if PUBLISHED.contains(&name) {
            problems.extend(published_problems(package));
        } else if package["publish"] != Value::Array(Vec::new()) {
            problems.push(format!("{name}: not published, so it says publish = false"));
        }
    }
    for name in PUBLISHED {
        if !packages.iter().any(|p| p["name"] == name) {
            problems.push(format!("{name}: published but not a workspace member"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("package metadata:\n  {}", problems.join("\n  ")))
    }
}

/// What one published package lacks.
fn published_problems(package: &Value) -> Vec<String> {
    let name = package["name"].as_str().unwrap_or("?");
    let mut problems: Vec<String> = REQUIRED
        .iter()
        .filter(|field| package[**field].as_str().is_none_or(str::is_empty))
        .map(|field| format!("{name}: no {field}"))
        .collect();
    for field in ["keywords", "categories"] {
        if package[field].as_array().is_none_or(Vec::is_empty) {
            problems.push(format!("{name}: no {field}"));
        }
    }
    let readme = package["readme"].as_str().map(|readme| {
        let manifest = package["manifest_path"].as_str().unwrap_or("");
        std::path::Path::new(manifest).with_file_name(readme)
    });
    match readme {
        Some(path) if path.is_file() => {}
        Some(path) => problems.push(format!("{name}: readme {} is missing", path.display())),
        None => problems.push(format!("{name}: no readme")),
    }
    if package["publish"] == Value::Array(Vec::new()) {
        problems.push(format!("{name}: published, yet publish = false"));
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workspace_metadata_is_ready_for_crates_io() {
        check_metadata(&workspace_metadata(false).unwrap()).unwrap();
    }

    #[test]
    fn every_published_rust_version_covers_its_dependencies() {
        let problems = msrv_problems(&workspace_metadata(true).unwrap());
        assert!(problems.is_empty(), "{problems:#?}");
    }

    #[test]
    fn a_dependency_needing_a_newer_rust_is_named() {
        let metadata = serde_json::json!({
            "packages": [
                {"id": "a", "name": "rf-types", "rust_version": "1.85"},
                {"id": "b", "name": "helper", "rust_version": "1.80"},
                {"id": "c", "name": "deep", "rust_version": "1.88"},
                {"id": "d", "name": "test-only", "rust_version": "1.90"},
            ],
            "resolve": {"nodes": [
                {"id": "a", "deps": [
                    {"pkg": "b", "dep_kinds": [{"kind": null}]},
                    {"pkg": "d", "dep_kinds": [{"kind": "dev"}]},
                ]},
                {"id": "b", "deps": [{"pkg": "c", "dep_kinds": [{"kind": "build"}]}]},
                {"id": "c", "deps": []},
                {"id": "d", "deps": []},
            ]},
        });
        assert_eq!(
            msrv_problems(&metadata),
            ["rf-types: rust-version 1.85 but deep needs 1.88"]
        );
        assert!(rust_version("1.89") > rust_version("1.85.1"));
        assert!(rust_version("1.100") > rust_version("1.99"));
    }

    #[test]
    fn a_missing_field_and_an_unmarked_private_crate_are_both_named() {
        let metadata = serde_json::json!({"packages": [
            {"name": "rf-types", "description": "d", "license": "Apache-2.0",
             "repository": "r", "homepage": "h", "documentation": "",
             "rust_version": "1.85", "keywords": ["k"], "categories": [],
             "readme": null, "manifest_path": "/x/Cargo.toml", "publish": null},
            {"name": "xtask", "publish": null},
        ]});
        let err = check_metadata(&metadata).unwrap_err();
        for problem in [
            "rf-types: no documentation",
            "rf-types: no categories",
            "rf-types: no readme",
            "xtask: not published, so it says publish = false",
            "rf-cli: published but not a workspace member",
        ] {
            assert!(err.contains(problem), "{problem} not in {err}");
        }
        assert!(!err.contains("rf-types: no description"), "{err}");
    }
}
