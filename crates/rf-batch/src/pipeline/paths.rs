//! Where a run reads and writes: the input directory, the output directory
//! and the manifest, resolved and checked before anything is created.
//!
//! Nothing a run writes may land inside its input directory, where the next
//! run would upload it: an output or state directory there is refused with
//! [`Error::OutputInsideInput`] or [`Error::StateInsideInput`], before the
//! directory is created.

use std::path::{Path, PathBuf};

use crate::error::{DirRole, Error, Result};
use crate::state::MANIFEST_FILE;

/// The resolved, absolute paths of a run.
#[derive(Debug, Clone)]
pub(crate) struct RunPaths {
    /// The input directory, canonical.
    pub(crate) input_dir: PathBuf,
    /// The output directory, created and canonical.
    pub(crate) output_dir: PathBuf,
    /// The manifest (`<state dir>/rf-run.json`).
    pub(crate) state_file: PathBuf,
}

/// Turns an I/O error into [`Error::Io`] about `path`.
pub(crate) fn io_err(context: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.to_path_buf();
    move |source| Error::Io {
        context,
        path,
        source,
    }
}

/// The input directory, canonical, and as given but absolute (a symlinked
/// input is compared both ways).
pub(crate) fn input_dir(dir: &Path) -> Result<(PathBuf, PathBuf)> {
    let canonical =
        std::fs::canonicalize(dir).map_err(io_err("cannot open input directory", dir))?;
    let requested =
        std::path::absolute(dir).map_err(io_err("cannot resolve input directory", dir))?;
    Ok((canonical, requested))
}

/// [`Error::NotADirectory`] when something other than a directory is at
/// `path` (a directory to create there would fail with a bare OS error).
pub(crate) fn check_dir_or_absent(path: &Path, what: DirRole) -> Result<()> {
    match std::fs::metadata(path) {
        Ok(meta) if !meta.is_dir() => Err(Error::NotADirectory {
            role: what,
            path: path.to_path_buf(),
        }),
        _ => Ok(()),
    }
}

/// Checks, without creating anything, that `output_dir` and `state_dir`
/// (when given) are directories or absent, and outside `input_dir`.
pub(crate) fn check_outside_input(
    input_dir: &Path,
    output_dir: &Path,
    state_dir: Option<&Path>,
) -> Result<()> {
    check_dir_or_absent(output_dir, DirRole::Output)?;
    if let Some(dir) = state_dir {
        check_dir_or_absent(dir, DirRole::State)?;
    }
    let (input, requested_in) = self::input_dir(input_dir)?;
    let output = std::path::absolute(output_dir)
        .map_err(io_err("cannot resolve output directory", output_dir))?;
    if inside(&output, &input, &requested_in) {
        return Err(Error::OutputInsideInput { output, input });
    }
    match state_dir {
        Some(dir) => state_outside(dir, input, &requested_in),
        None => Ok(()),
    }
}

/// Checks, without creating anything, that the state directory `state_dir`
/// is outside `input_dir`.
pub(crate) fn check_state_outside_input(input_dir: &Path, state_dir: &Path) -> Result<()> {
    let (input, requested_in) = self::input_dir(input_dir)?;
    state_outside(state_dir, input, &requested_in)
}

fn state_outside(state_dir: &Path, input: PathBuf, requested_input: &Path) -> Result<()> {
    let state = std::path::absolute(state_dir)
        .map_err(io_err("cannot resolve state directory", state_dir))?;
    if inside(&state, &input, requested_input) {
        return Err(Error::StateInsideInput { state, input });
    }
    Ok(())
}

fn inside(path: &Path, canonical_input: &Path, requested_input: &Path) -> bool {
    path.starts_with(requested_input) || path.starts_with(canonical_input)
}

/// The manifest file of a run writing into `output`: in `state_dir`
/// (created) when given, else in `<output>/.rf-state`.
fn state_file_of(output: &Path, state_dir: Option<&Path>) -> Result<PathBuf> {
    Ok(match state_dir {
        Some(dir) => create_dir(
            dir,
            [
                "cannot create state directory",
                "cannot open state directory",
            ],
        )?
        .join(MANIFEST_FILE),
        None => output.join(".rf-state").join(MANIFEST_FILE),
    })
}

impl RunPaths {
    /// Resolves the paths of a run reading `input_dir`, writing results to
    /// `output_dir` (created) and its manifest to `state_dir` (default
    /// `<output_dir>/.rf-state`, created). Called after
    /// [`check_outside_input`] refused, before anything was created, paths
    /// inside the input as given; the canonical ones (symlinks followed)
    /// are checked here.
    pub(crate) fn resolve(
        input_dir: &Path,
        output_dir: &Path,
        state_dir: Option<&Path>,
    ) -> Result<RunPaths> {
        let (input, _) = self::input_dir(input_dir)?;
        let output = create_dir(
            output_dir,
            [
                "cannot create output directory",
                "cannot open output directory",
            ],
        )?;
        // The canonical paths, after symlinks: checked again.
        if output.starts_with(&input) {
            return Err(Error::OutputInsideInput { output, input });
        }
        let state_file = state_file_of(&output, state_dir)?;
        if state_file.starts_with(&input) {
            return Err(Error::StateInsideInput {
                state: state_file,
                input,
            });
        }
        Ok(RunPaths {
            input_dir: input,
            output_dir: output,
            state_file,
        })
    }
}

impl RunPaths {
    /// The paths of a run whose input is not a local directory (a bucket,
    /// named by `source`): the output and state directories are created;
    /// there is no input directory to keep them out of.
    #[cfg(feature = "cloud")]
    pub(crate) fn resolve_remote(
        source: &str,
        output_dir: &Path,
        state_dir: Option<&Path>,
    ) -> Result<RunPaths> {
        check_dir_or_absent(output_dir, DirRole::Output)?;
        if let Some(dir) = state_dir {
            check_dir_or_absent(dir, DirRole::State)?;
        }
        let creating = [
            "cannot create output directory",
            "cannot open output directory",
        ];
        let output = create_dir(output_dir, creating)?;
        let state_file = state_file_of(&output, state_dir)?;
        Ok(RunPaths {
            input_dir: PathBuf::from(source),
            output_dir: output,
            state_file,
        })
    }
}

/// Creates `dir` and returns its canonical path; `[creating, opening]`
/// say what failed.
fn create_dir(dir: &Path, [creating, opening]: [&'static str; 2]) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).map_err(io_err(creating, dir))?;
    std::fs::canonicalize(dir).map_err(io_err(opening, dir))
}
