//! `cargo xtask package`: the crates.io readiness of the workspace (part of
//! `cargo xtask ci` and `.ci/run`). First the metadata every published
//! crate needs, read from `cargo metadata`: a description, license,
//! repository, homepage, documentation, rust-version, a README that exists,
//! keywords and categories; every other member says `publish = false`. Then
//! `cargo package` of the published crates, which cargo orders by their
//! dependencies, packages with the unpublished ones standing in for the
//! registry, and builds each from its own `.crate` file (so a file a crate
//! reads at compile time but does not ship fails here).

use std::process::Command;

use serde_json::Value;

use crate::{project_root, run};

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
    check_metadata(&workspace_metadata()?)?;
    let mut args = vec!["package", "--allow-dirty"];
    for name in PUBLISHED {
        args.extend(["-p", name]);
    }
    run("cargo", &args)
}

/// `cargo metadata --no-deps` of the workspace.
fn workspace_metadata() -> Result<Value, String> {
    let output = Command::new("cargo")
        .args(["metadata", "--format-version", "1", "--no-deps"])
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
        check_metadata(&workspace_metadata().unwrap()).unwrap();
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
