//! `cargo xtask wheel [--check]`: the `rf` binary as a Python wheel, built
//! with maturin (`bindings = "bin"`, python/pyproject.toml, the `dist`
//! profile) into `target/wheels`, linked by zig against glibc 2.17 so that
//! the wheel is tagged manylinux2014 (a binary linked against this system's
//! glibc would need 2.34 or newer). maturin and zig (the `ziglang` wheel)
//! are installed at pinned versions into `target/venv-tools` when missing.
//!
//! `--check` then installs the wheel into a fresh virtualenv with no package
//! index (`pip install --no-index`), and runs the `rf` it put on the venv's
//! PATH: `rf --version`, and `rf run` on `samples/images` with the embedded
//! emulator (no API key or URL in the environment), whose results must
//! land in the output directory. `.ci/run` runs this.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{project_root, run, run_command, target_dir};

/// The maturin `cargo xtask wheel` installs (python/pyproject.toml's
/// build-system accepts it).
const MATURIN: &str = "1.16.0";

/// The zig that links the binary (`maturin build --zig`), from PyPI.
const ZIGLANG: &str = "0.15.1";

/// The wheel's distribution name (python/pyproject.toml), as in file names.
const DIST_NAME: &str = "rf_cli";

/// Builds the wheel; with `--check`, installs and runs it in a fresh venv.
pub(crate) fn wheel(args: &[String]) -> Result<(), String> {
    let check = match args {
        [] => false,
        [flag] if flag == "--check" => true,
        _ => return Err("usage: cargo xtask wheel [--check]".to_string()),
    };
    let wheel = build()?;
    eprintln!("xtask: built {}", wheel.display());
    if check {
        check_wheel(&wheel)?;
        eprintln!("xtask: the wheel installs and runs in a fresh venv");
    }
    Ok(())
}

/// `target/venv-tools/bin/<name>`.
fn tool(name: &str) -> PathBuf {
    target_dir().join("venv-tools/bin").join(name)
}

/// Installs the pinned maturin and zig unless they are there already.
fn ensure_maturin() -> Result<PathBuf, String> {
    let maturin = tool("maturin");
    let prints = |program: &Path, args: &[&str], expected: &str| {
        Command::new(program)
            .args(args)
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == expected)
    };
    let installed = prints(&maturin, &["--version"], &format!("maturin {MATURIN}"))
        && prints(&tool("python3"), &["-m", "ziglang", "version"], ZIGLANG);
    if !installed {
        let venv = target_dir().join("venv-tools");
        run("python3", &["-m", "venv", &venv.to_string_lossy()])?;
        let maturin_pin = format!("maturin=={MATURIN}");
        let zig_pin = format!("ziglang=={ZIGLANG}");
        run(
            &tool("pip").to_string_lossy(),
            &["install", "-q", &maturin_pin, &zig_pin],
        )?;
    }
    Ok(maturin)
}

/// `PATH` with `target/venv-tools/bin` first: maturin finds zig through
/// the `python3` there (`python3 -m ziglang`).
fn tools_first_path() -> Result<std::ffi::OsString, String> {
    let tools = target_dir().join("venv-tools/bin");
    let rest = std::env::var_os("PATH").unwrap_or_default();
    std::env::join_paths(std::iter::once(tools).chain(std::env::split_paths(&rest)))
        .map_err(|e| format!("PATH: {e}"))
}

/// Builds the wheel into `target/wheels` and returns its path.
fn build() -> Result<PathBuf, String> {
    let maturin = ensure_maturin()?;
    let out = target_dir().join("wheels");
    // Old wheels of other versions would make the one to check ambiguous.
    if out.is_dir() {
        std::fs::remove_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    }
    run_command(
        Command::new(&maturin)
            .args([
                "build",
                "--zig",
                "--compatibility",
                "manylinux2014",
                "--out",
            ])
            .arg(&out)
            .current_dir(project_root().join("python"))
            .env("PATH", tools_first_path()?),
    )?;
    find_wheel(&out)
}

/// The one `rf_cli-<version>-*.whl` in `dir`.
fn find_wheel(dir: &Path) -> Result<PathBuf, String> {
    let prefix = format!("{DIST_NAME}-{}-", env!("CARGO_PKG_VERSION"));
    let wheels: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .flatten()
        .map(|entry| entry.path())
        .filter(|p| {
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            name.starts_with(&prefix) && name.ends_with(".whl")
        })
        .collect();
    match wheels.as_slice() {
        [wheel] => Ok(wheel.clone()),
        _ => Err(format!(
            "expected one {prefix}*.whl in {}, found {wheels:?}",
            dir.display()
        )),
    }
}

/// Installs `wheel` into a fresh venv and runs the `rf` it provides.
fn check_wheel(wheel: &Path) -> Result<(), String> {
    let scratch = target_dir().join("wheel-check");
    if scratch.exists() {
        std::fs::remove_dir_all(&scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;
    }
    let venv = scratch.join("venv");
    run("python3", &["-m", "venv", &venv.to_string_lossy()])?;
    let pip = venv.join("bin/pip");
    // No index, no cache, and no pip configuration of this machine (files
    // or PIP_FIND_LINKS may name local wheel folders): the wheel alone.
    run_command(
        Command::new(&pip)
            .args(["install", "--no-index", "--no-cache-dir"])
            .arg(wheel)
            .env("PIP_CONFIG_FILE", "/dev/null")
            .env_remove("PIP_FIND_LINKS"),
    )?;
    let rf = venv.join("bin/rf");
    check_version(&rf)?;
    check_run(&rf, &scratch)
}

/// `rf --version` says `rf <this workspace's version>`.
fn check_version(rf: &Path) -> Result<(), String> {
    let output = Command::new(rf)
        .arg("--version")
        .output()
        .map_err(|e| format!("could not start {}: {e}", rf.display()))?;
    let line = String::from_utf8_lossy(&output.stdout);
    let expected = format!("rf {}", env!("CARGO_PKG_VERSION"));
    eprintln!("xtask: {} --version: {}", rf.display(), line.trim());
    if output.status.success() && line.starts_with(&expected) {
        Ok(())
    } else {
        Err(format!(
            "rf --version printed {line:?}, expected {expected}..."
        ))
    }
}

/// `rf run` of the samples with the embedded emulator writes results.
fn check_run(rf: &Path, scratch: &Path) -> Result<(), String> {
    let out = scratch.join("out");
    let samples = project_root().join("samples/images");
    run_command(
        Command::new(rf)
            .args(["run", "--images"])
            .arg(&samples)
            .args(["--workflow", "image-properties", "--out"])
            .arg(&out)
            .env_remove("ROBOFLOW_API_KEY")
            .env_remove("API_BASE_URL")
            .env("XDG_CACHE_HOME", scratch.join("cache")),
    )?;
    let results = out.join("results");
    let jsonl = std::fs::read_dir(&results)
        .map_err(|e| format!("{}: {e}", results.display()))?
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "jsonl"))
        .filter(|e| e.metadata().is_ok_and(|m| m.len() > 0))
        .count();
    if jsonl == 0 {
        return Err(format!("no results in {}", results.display()));
    }
    eprintln!(
        "xtask: rf run wrote {jsonl} result file(s) into {}",
        results.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pinned_maturin_is_the_one_pyproject_accepts() {
        let pyproject = std::fs::read_to_string(project_root().join("python/pyproject.toml"))
            .expect("python/pyproject.toml");
        let minor: String = MATURIN.split('.').take(2).collect::<Vec<_>>().join(".");
        assert!(
            pyproject.contains(&format!("\"maturin>={minor},<2.0\"")),
            "python/pyproject.toml's build-system does not accept maturin {MATURIN}"
        );
        assert!(pyproject.contains("name = \"rf-cli\""));
        assert!(pyproject.contains("bindings = \"bin\""));
    }

    #[test]
    fn the_wheel_is_found_by_name_and_version() {
        let dir = std::env::temp_dir().join(format!("xtask-wheel-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let version = env!("CARGO_PKG_VERSION");
        assert!(find_wheel(&dir).is_err(), "an empty directory has no wheel");
        let name = format!("rf_cli-{version}-py3-none-manylinux_2_34_x86_64.whl");
        std::fs::write(dir.join(&name), b"").unwrap();
        std::fs::write(dir.join("other-1.0-py3-none-any.whl"), b"").unwrap();
        assert_eq!(find_wheel(&dir).unwrap(), dir.join(&name));
        std::fs::write(
            dir.join(format!("rf_cli-{version}-py3-none-linux_x86_64.whl")),
            b"",
        )
        .unwrap();
        assert!(find_wheel(&dir).is_err(), "two wheels are ambiguous");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
