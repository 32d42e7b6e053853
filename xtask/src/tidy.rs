//! Repository hygiene checks that run as ordinary tests (`cargo test`), in
//! the manner of rust-analyzer's `tidy.rs`.

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::{Path, PathBuf};

    use crate::project_root;

    /// Files under `dir` whose extension is one of `exts`, skipping build
    /// output and hidden entries.
    fn files_with(dir: &Path, exts: &[&str], out: &mut Vec<PathBuf>) {
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
                files_with(&path, exts, out);
            } else if path
                .extension()
                .is_some_and(|e| exts.iter().any(|x| e == *x))
            {
                out.push(path);
            }
        }
    }

    /// The files with one of `exts` under `crates/` and `xtask/`.
    fn project_files(exts: &[&str]) -> Vec<PathBuf> {
        let root = project_root();
        let mut files = Vec::new();
        files_with(&root.join("crates"), exts, &mut files);
        files_with(&root.join("xtask"), exts, &mut files);
        files
    }

    fn all_rust_files() -> Vec<PathBuf> {
        project_files(&["rs"])
    }

    /// Comments and docs point only at files inside the repository: the
    /// team's design notes and wire-contract notes live outside it, so a
    /// reader of the code cannot follow such a reference. State the fact
    /// inline or point at `docs/`.
    #[test]
    fn no_references_to_documents_outside_the_repository() {
        // Built from pieces so that this file does not match itself.
        let outside: Vec<String> = [
            ["DESIGN", ".md"],
            ["STYLE", ".md"],
            ["API-", "CONTRACT"],
            ["/work", "/shared"],
            ["shared", "/reference"],
        ]
        .iter()
        .map(|parts| parts.concat())
        .collect();
        let mut found = Vec::new();
        for path in project_files(&["rs", "toml", "md"]) {
            let text = fs::read_to_string(&path).unwrap_or_default();
            for (n, line) in text.lines().enumerate() {
                if outside.iter().any(|o| line.contains(o.as_str())) {
                    found.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
                }
            }
        }
        assert!(
            found.is_empty(),
            "references to documents outside the repository: {found:#?}"
        );
    }

    /// Every source file says what it is for in a `//!` header (a crate
    /// root may include its README.md as that header instead).
    #[test]
    fn every_source_file_opens_with_a_module_doc() {
        let missing: Vec<_> = all_rust_files()
            .into_iter()
            .filter(|p| {
                let text = fs::read_to_string(p).unwrap_or_default();
                if text.starts_with("#![doc = include_str!(\"../README.md\")]") {
                    return !p.with_file_name("../README.md").is_file();
                }
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

    /// No import cycle between the modules of a crate (`cargo xtask cycles`
    /// says how the graph is built). Cycles listed in `cycles::KNOWN` are
    /// tolerated until issue 13 closes; that list is temporary.
    #[test]
    fn no_import_cycles_between_modules() {
        let cycles = crate::cycles::all_cycles(&project_root()).expect("sources parse");
        let new: Vec<String> = cycles
            .iter()
            .filter(|c| !c.is_known())
            .map(crate::cycles::Cycle::render)
            .collect();
        assert!(new.is_empty(), "import cycles:\n{}", new.join("\n"));
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
