//! The asset library the emulator serves (`rf emulator serve --library
//! DIR`): the images under a directory, each with an ID (its path under the
//! directory, `/`-separated), its tags (the names of the folders it is in,
//! plus the `tags` of an optional sidecar `<file>.json`, whose `metadata`
//! object is the image's metadata), selected by ID or
//! by a RoboQL query ([`roboql`]) for Asset Library jobs and RoboQL ingests.
//!
//! The index is read once, when the emulator starts; every workspace sees
//! the same library.

pub(crate) mod roboql;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::EmulatorError;
use roboql::{Query, QueryError, Subject};

/// Most images a library may hold (the index is kept in memory).
pub(crate) const MAX_LIBRARY_IMAGES: usize = 1_000_000;

/// One image of the library.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LibraryImage {
    /// Its path under the library directory, `/`-separated.
    pub(crate) id: String,
    /// The file.
    pub(crate) path: PathBuf,
    pub(crate) file_name: String,
    pub(crate) tags: BTreeSet<String>,
    /// The sidecar's `metadata` object (what RoboQL ingests put into a
    /// batch's `metadata` part, for jobs' `imagesMetadataInputsMapping`).
    pub(crate) metadata: Option<Map<String, Value>>,
}

impl Subject for LibraryImage {
    fn tags(&self) -> &BTreeSet<String> {
        &self.tags
    }
    fn file_name(&self) -> &str {
        &self.file_name
    }
}

/// The library's images, sorted by ID.
#[derive(Debug, Clone, Default)]
pub(crate) struct Library {
    images: Vec<LibraryImage>,
}

/// A selection the library cannot serve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SelectionError {
    /// The emulator was started without a library.
    #[error(
        "this emulator has no asset library: start it with --library DIR (images under DIR, tagged by their folders)"
    )]
    NoLibrary,
    /// Image IDs the library does not hold.
    #[error(
        "{count} image IDs are not in the asset library (first: {first:?}); an ID is the image's path under the library directory"
    )]
    UnknownIds { count: usize, first: String },
    /// A query outside the supported subset.
    #[error(transparent)]
    Query(#[from] QueryError),
    /// Nothing selected.
    #[error("the selection matched no image of the asset library")]
    Empty,
}

/// A sidecar's fields the library reads.
#[derive(Debug, Default, Deserialize)]
struct Sidecar {
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    metadata: Option<Map<String, Value>>,
}

impl Library {
    /// Indexes the images under `dir` (none: an empty library).
    pub(crate) fn load(dir: Option<&Path>) -> Result<Library, EmulatorError> {
        let Some(dir) = dir else {
            return Ok(Library::default());
        };
        let mut images = Vec::new();
        walk(dir, dir, &mut images)?;
        images.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(Library { images })
    }

    /// The images with these IDs, in the order given.
    pub(crate) fn by_ids(&self, ids: &[String]) -> Result<Vec<&LibraryImage>, SelectionError> {
        self.check_present()?;
        let mut found = Vec::with_capacity(ids.len());
        let mut unknown = Vec::new();
        for id in ids {
            match self.images.binary_search_by(|i| i.id.as_str().cmp(id)) {
                Ok(i) => found.push(&self.images[i]),
                Err(_) => unknown.push(id),
            }
        }
        match unknown.first() {
            Some(first) => Err(SelectionError::UnknownIds {
                count: unknown.len(),
                first: (*first).clone(),
            }),
            None => Ok(found),
        }
    }

    /// The images `query` selects (`""`: all of them), by ID.
    pub(crate) fn by_query(&self, query: &str) -> Result<Vec<&LibraryImage>, SelectionError> {
        self.check_present()?;
        if query.trim().is_empty() {
            return Ok(self.images.iter().collect());
        }
        let q = Query::parse(query)?;
        let hits: Vec<&LibraryImage> = self.images.iter().filter(|i| q.matches(*i)).collect();
        if hits.is_empty() {
            return Err(SelectionError::Empty);
        }
        Ok(hits)
    }

    fn check_present(&self) -> Result<(), SelectionError> {
        if self.images.is_empty() {
            Err(SelectionError::NoLibrary)
        } else {
            Ok(())
        }
    }
}

/// Adds the images under `dir` (recursively; hidden entries and symbolic
/// links skipped) to `out`.
fn walk(root: &Path, dir: &Path, out: &mut Vec<LibraryImage>) -> Result<(), EmulatorError> {
    let io = |source| EmulatorError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(io)?
        .collect::<Result<_, _>>()
        .map_err(io)?;
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        let kind = entry.file_type().map_err(io)?;
        if name.starts_with('.') || kind.is_symlink() {
            continue;
        }
        let path = entry.path();
        if kind.is_dir() {
            walk(root, &path, out)?;
        } else if rf_types::is_image_file_name(&name) {
            if out.len() >= MAX_LIBRARY_IMAGES {
                return Err(EmulatorError::Config(format!(
                    "the asset library {} holds more than {MAX_LIBRARY_IMAGES} images",
                    root.display()
                )));
            }
            out.push(image(root, path, name));
        }
    }
    Ok(())
}

/// The library entry of the image at `path`.
fn image(root: &Path, path: PathBuf, file_name: String) -> LibraryImage {
    let relative = path.strip_prefix(root).unwrap_or(&path);
    let id = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/");
    let mut tags: BTreeSet<String> = relative
        .parent()
        .into_iter()
        .flat_map(Path::components)
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let sidecar = read_sidecar(&path.with_file_name(format!("{file_name}.json")));
    tags.extend(sidecar.tags);
    LibraryImage {
        id,
        path,
        file_name,
        tags,
        metadata: sidecar.metadata,
    }
}

/// The sidecar at `path`; an absent or unreadable one is empty.
fn read_sidecar(path: &Path) -> Sidecar {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn library() -> (tempfile::TempDir, Library) {
        let dir = tempfile::tempdir().unwrap();
        let put = |rel: &str, bytes: &[u8]| {
            let p = dir.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, bytes).unwrap();
        };
        put("night/cam1/a.jpg", b"x");
        put("night/cam2/b.png", b"x");
        put("day/c.jpg", b"x");
        put(
            "day/c.jpg.json",
            br#"{"tags": ["defect"], "metadata": {"camera": "c7"}}"#,
        );
        put("day/notes.txt", b"not an image");
        put(".hidden/d.jpg", b"x");
        let lib = Library::load(Some(dir.path())).unwrap();
        (dir, lib)
    }

    fn ids(images: Vec<&LibraryImage>) -> Vec<&str> {
        images.iter().map(|i| i.id.as_str()).collect()
    }

    #[test]
    fn images_are_tagged_by_folders_and_sidecars() {
        let (_dir, lib) = library();
        assert_eq!(
            ids(lib.by_query("").unwrap()),
            ["day/c.jpg", "night/cam1/a.jpg", "night/cam2/b.png"]
        );
        assert_eq!(
            ids(lib.by_query("tag:night AND NOT tag:cam2").unwrap()),
            ["night/cam1/a.jpg"]
        );
        assert_eq!(ids(lib.by_query("tag:defect").unwrap()), ["day/c.jpg"]);
        assert_eq!(lib.by_query("tag:snow"), Err(SelectionError::Empty));
    }

    #[test]
    fn a_sidecars_metadata_object_is_the_images_metadata() {
        let (_dir, lib) = library();
        let all = lib.by_query("").unwrap();
        let c = all.iter().find(|i| i.id == "day/c.jpg").unwrap();
        assert_eq!(c.metadata.as_ref().unwrap()["camera"], "c7");
        let a = all.iter().find(|i| i.id == "night/cam1/a.jpg").unwrap();
        assert_eq!(a.metadata, None);
    }

    #[test]
    fn ids_must_be_in_the_library_and_a_missing_library_is_told() {
        let (_dir, lib) = library();
        let got = lib
            .by_ids(&["night/cam2/b.png".into(), "day/c.jpg".into()])
            .unwrap();
        assert_eq!(ids(got), ["night/cam2/b.png", "day/c.jpg"]);
        assert_eq!(
            lib.by_ids(&["day/c.jpg".into(), "nope.jpg".into()]),
            Err(SelectionError::UnknownIds {
                count: 1,
                first: "nope.jpg".into()
            })
        );
        assert_eq!(
            Library::default().by_query(""),
            Err(SelectionError::NoLibrary)
        );
    }
}
