//! Name resolution for the cycle check: which module of a crate defines the
//! item a path names, seen from the module that writes it. Follows child
//! modules, `use` bindings (so a re-export such as `pub use error::Error` in
//! the root leads to `error`), glob imports, `crate`, `self` and `super`.
//! Paths into other crates, local variables and `Self` resolve to nothing.

use crate::cycles_parse::Module;

/// How deep re-exports are followed (a guard against `use` loops).
const MAX_DEPTH: usize = 16;

/// What a name means inside one module.
enum Found<'a> {
    /// A child module.
    Module(usize),
    /// An item the module defines.
    Item,
    /// A `use` binding naming this path.
    Import(&'a [String]),
    /// Something a glob import of this module brings in.
    Glob(usize),
}

/// The module that defines what `segments` names, written in module `from`;
/// `None` when the path leads out of the crate (or to a local or `Self`).
pub(crate) fn resolve(modules: &[Module], from: usize, segments: &[String]) -> Option<usize> {
    resolve_at(modules, from, segments, 0)
}

/// Whether `name`, written as the first segment of a path in module `from`,
/// comes from a `use` item (a binding or a glob).
pub(crate) fn is_imported(modules: &[Module], from: usize, name: &str) -> bool {
    matches!(
        lookup(modules, from, name, 0),
        Some(Found::Import(_) | Found::Glob(_))
    )
}

fn resolve_at(modules: &[Module], from: usize, segments: &[String], depth: usize) -> Option<usize> {
    if depth > MAX_DEPTH {
        return None;
    }
    let (first, rest) = segments.split_first()?;
    match first.as_str() {
        "crate" => walk(modules, 0, rest, depth),
        "self" => walk(modules, from, rest, depth),
        "super" => walk(modules, modules[from].parent?, rest, depth),
        "Self" => None,
        name => match lookup(modules, from, name, depth)? {
            Found::Module(child) => walk(modules, child, rest, depth),
            Found::Item => Some(from),
            Found::Import(path) => {
                let full: Vec<String> = path.iter().chain(rest).cloned().collect();
                resolve_at(modules, from, &full, depth + 1)
            }
            Found::Glob(source) => walk(modules, source, segments, depth + 1),
        },
    }
}

/// Follows `rest` down from module `at`; a name `at` does not know is taken
/// to be defined in `at`.
fn walk(modules: &[Module], at: usize, rest: &[String], depth: usize) -> Option<usize> {
    if depth > MAX_DEPTH {
        return None;
    }
    let Some((first, tail)) = rest.split_first() else {
        return Some(at);
    };
    match first.as_str() {
        "super" => walk(modules, modules[at].parent?, tail, depth),
        "self" => walk(modules, at, tail, depth),
        name => match lookup(modules, at, name, depth) {
            Some(Found::Module(child)) => walk(modules, child, tail, depth),
            Some(Found::Item) | None => Some(at),
            Some(Found::Import(path)) => {
                let full: Vec<String> = path.iter().chain(tail).cloned().collect();
                resolve_at(modules, at, &full, depth + 1).or(Some(at))
            }
            Some(Found::Glob(source)) => walk(modules, source, rest, depth + 1),
        },
    }
}

fn lookup<'a>(modules: &'a [Module], at: usize, name: &str, depth: usize) -> Option<Found<'a>> {
    let module = &modules[at];
    if let Some(&child) = module.children.get(name) {
        return Some(Found::Module(child));
    }
    if module.items.contains(name) {
        return Some(Found::Item);
    }
    if let Some(path) = module.imports.get(name) {
        return Some(Found::Import(path));
    }
    if depth >= MAX_DEPTH {
        return None;
    }
    module.globs.iter().find_map(|glob| {
        let source = resolve_at(modules, at, glob, depth + 1)?;
        (source != at && lookup(modules, source, name, depth + 1).is_some())
            .then_some(Found::Glob(source))
    })
}
