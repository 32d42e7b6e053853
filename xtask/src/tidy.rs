//! Repository hygiene checks that run as ordinary tests (`cargo test`), in
//! the manner of rust-analyzer's `tidy.rs`.

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::{Path, PathBuf};

    use crate::project_root;

    fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name == "target" || name.starts_with('.') {
                continue;
            }
            if path.is_dir() {
                rust_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    fn all_rust_files() -> Vec<PathBuf> {
        let root = project_root();
        let mut files = Vec::new();
        rust_files(&root.join("crates"), &mut files);
        rust_files(&root.join("xtask"), &mut files);
        files
    }

    /// Every source file says what it is for in a `//!` header.
    #[test]
    fn every_source_file_opens_with_a_module_doc() {
        let missing: Vec<_> = all_rust_files()
            .into_iter()
            .filter(|p| {
                let text = fs::read_to_string(p).unwrap_or_default();
                let first = text
                    .lines()
                    .find(|l| !l.trim().is_empty() && !l.starts_with("#!["))
                    .unwrap_or("");
                !first.starts_with("//!")
            })
            .collect();
        assert!(
            missing.is_empty(),
            "files without a //! header: {missing:#?}"
        );
    }

    /// CI must run the test command that README.md shows.
    #[test]
    fn ci_runs_the_readme_test_command() {
        let root = project_root();
        let ci = fs::read_to_string(root.join(".ci/run")).expect(".ci/run exists");
        let readme = fs::read_to_string(root.join("README.md")).expect("README.md exists");
        let test_cmd = ci
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with("cargo test"))
            .expect(".ci/run runs cargo test");
        assert!(
            readme.contains(test_cmd),
            "README.md does not show the test command of .ci/run: {test_cmd}"
        );
    }

    /// Dependency versions are declared once, in the root manifest.
    #[test]
    fn crate_manifests_take_versions_from_the_workspace() {
        let root = project_root();
        let mut offenders = Vec::new();
        for dir in [
            "crates/rf-types",
            "crates/rf-transport",
            "crates/rf-batch",
            "crates/rf-emulator",
            "crates/rf-cli",
            "xtask",
        ] {
            let manifest = fs::read_to_string(root.join(dir).join("Cargo.toml"))
                .expect("crate manifest exists");
            let mut in_deps = false;
            for line in manifest.lines() {
                let line = line.trim();
                if line.starts_with('[') {
                    in_deps = line.contains("dependencies");
                    continue;
                }
                if in_deps && !line.is_empty() && !line.starts_with('#') && line.contains("version")
                {
                    offenders.push(format!("{dir}: {line}"));
                }
            }
        }
        assert!(
            offenders.is_empty(),
            "declare versions in [workspace.dependencies]: {offenders:#?}"
        );
    }

    /// No debugging leftovers in library or binary code.
    #[test]
    fn no_dbg_or_todo_macros() {
        let bad: Vec<_> = all_rust_files()
            .into_iter()
            .filter(|p| !p.ends_with("tidy.rs"))
            .filter(|p| {
                let text = fs::read_to_string(p).unwrap_or_default();
                text.contains("dbg!(")
                    || text.contains("todo!(")
                    || text.contains("unimplemented!(")
            })
            .collect();
        assert!(
            bad.is_empty(),
            "dbg!/todo!/unimplemented! found in {bad:#?}"
        );
    }
}
