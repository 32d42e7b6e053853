//! A manifest together with the file it is saved to: what every step that
//! records its progress needs, passed as one value.

use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};

use super::{Manifest, StateError};

/// A [`Manifest`] and its path.
///
/// Derefs to the manifest; [`ManifestFile::save`] writes it where it
/// belongs.
#[derive(Debug)]
pub struct ManifestFile {
    manifest: Manifest,
    path: PathBuf,
}

impl ManifestFile {
    /// `manifest`, saved to `path`.
    pub fn new(manifest: Manifest, path: impl Into<PathBuf>) -> ManifestFile {
        ManifestFile {
            manifest,
            path: path.into(),
        }
    }

    /// Where the manifest is saved.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Saves the manifest (atomically; see [`Manifest::save`]).
    pub fn save(&mut self) -> Result<(), StateError> {
        self.manifest.save(&self.path)
    }

    /// The manifest.
    pub fn into_inner(self) -> Manifest {
        self.manifest
    }
}

impl Deref for ManifestFile {
    type Target = Manifest;

    fn deref(&self) -> &Manifest {
        &self.manifest
    }
}

impl DerefMut for ManifestFile {
    fn deref_mut(&mut self) -> &mut Manifest {
        &mut self.manifest
    }
}
