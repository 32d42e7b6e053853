//! The module tree of one crate, read from its source with `syn`: every
//! module (a file or an inline `mod` block) with the names it defines, the
//! names its `use` items bind, and every path it mentions (in `use` items, in
//! code and inside macro invocations). `#[cfg(test)]` items are left out: the
//! cycle check is about the shape of the shipped code.
//!
//! Resolution of those paths to modules is `cycles_resolve.rs`; the graph and
//! the report are `cycles.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use proc_macro2::{Spacing, TokenStream, TokenTree};
use syn::visit::Visit;
use syn::{Attribute, Item, UseTree};

/// One module of a crate.
#[derive(Debug, Default)]
pub(crate) struct Module {
    /// Its path below the crate root (`[]` is the root, `["client", "jobs"]`).
    pub(crate) path: Vec<String>,
    /// The file holding its items.
    pub(crate) file: PathBuf,
    /// Its parent's index (`None` for the root).
    pub(crate) parent: Option<usize>,
    /// Child modules by name.
    pub(crate) children: BTreeMap<String, usize>,
    /// Names of the items it defines (other than modules).
    pub(crate) items: BTreeSet<String>,
    /// Names its `use` items bind, with the path each one names.
    pub(crate) imports: BTreeMap<String, Vec<String>>,
    /// Paths of its glob imports (`use a::b::*` gives `["a", "b"]`).
    pub(crate) globs: Vec<Vec<String>>,
    /// Every path it mentions.
    pub(crate) refs: Vec<Ref>,
}

/// A path mentioned by a module.
#[derive(Debug, Clone)]
pub(crate) struct Ref {
    /// Its segments as written (`crate`, `super`, `self` included).
    pub(crate) segments: Vec<String>,
    /// 1-based line in the module's file.
    pub(crate) line: usize,
    /// Whether it comes from a `use` item (otherwise from code or a macro).
    pub(crate) is_use: bool,
}

impl Ref {
    /// The path as it would be written: `use crate::a::B` or `crate::a::B`.
    pub(crate) fn text(&self) -> String {
        let path = self.segments.join("::");
        if self.is_use {
            format!("use {path}")
        } else {
            path
        }
    }
}

/// Reads the crate whose root file is `root` (`src/lib.rs` or `src/main.rs`)
/// into its modules; index 0 is the root.
pub(crate) fn load_crate(root: &Path) -> Result<Vec<Module>, String> {
    let dir = root.parent().unwrap_or(Path::new(".")).to_path_buf();
    let mut modules = vec![Module {
        file: root.to_path_buf(),
        ..Module::default()
    }];
    let items = parse(root)?.items;
    load_items(&mut modules, 0, &items, &dir)?;
    Ok(modules)
}

fn parse(file: &Path) -> Result<syn::File, String> {
    let text = fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    syn::parse_file(&text).map_err(|e| format!("{}: {e}", file.display()))
}

/// Records the items of module `at`, whose out-of-line children live in `dir`.
fn load_items(
    modules: &mut Vec<Module>,
    at: usize,
    items: &[Item],
    dir: &Path,
) -> Result<(), String> {
    for item in items {
        if is_cfg_test(item_attrs(item)) {
            continue;
        }
        match item {
            Item::Mod(m) => load_child(modules, at, m, dir)?,
            Item::Use(u) if u.leading_colon.is_none() => {
                let mut leaves = Vec::new();
                flatten_use(&u.tree, &mut Vec::new(), &mut leaves);
                record_use(&mut modules[at], leaves);
            }
            other => {
                if let Some(name) = item_name(other) {
                    modules[at].items.insert(name);
                }
                let mut collector = Collector::default();
                collector.visit_item(other);
                let module = &mut modules[at];
                module.refs.extend(collector.refs);
                record_use(module, collector.uses);
            }
        }
    }
    Ok(())
}

/// Adds the child module that `m` declares inside module `at`, and its items.
fn load_child(
    modules: &mut Vec<Module>,
    at: usize,
    m: &syn::ItemMod,
    dir: &Path,
) -> Result<(), String> {
    let name = m.ident.to_string();
    let mut path = modules[at].path.clone();
    path.push(name.clone());
    let index = modules.len();
    modules[at].children.insert(name.clone(), index);
    let (file, child_dir, items) = match &m.content {
        Some((_, items)) => (modules[at].file.clone(), dir.join(&name), items.clone()),
        None => {
            let file = child_file(&modules[at].file, dir, &name, &m.attrs)?;
            let child_dir = if file.ends_with("mod.rs") {
                file.parent().unwrap_or(dir).to_path_buf()
            } else {
                dir.join(&name)
            };
            let items = parse(&file)?.items;
            (file, child_dir, items)
        }
    };
    modules.push(Module {
        path,
        file,
        parent: Some(at),
        ..Module::default()
    });
    load_items(modules, index, &items, &child_dir)
}

/// The file of `mod name;` declared in `parent_file`, whose children live in
/// `dir`: `#[path]`, else `dir/name.rs`, else `dir/name/mod.rs`.
fn child_file(
    parent_file: &Path,
    dir: &Path,
    name: &str,
    attrs: &[Attribute],
) -> Result<PathBuf, String> {
    for attr in attrs {
        if let syn::Meta::NameValue(nv) = &attr.meta
            && nv.path.is_ident("path")
            && let syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(s),
                ..
            }) = &nv.value
        {
            let base = parent_file.parent().unwrap_or(Path::new("."));
            return Ok(base.join(s.value()));
        }
    }
    let flat = dir.join(format!("{name}.rs"));
    let nested = dir.join(name).join("mod.rs");
    if flat.is_file() {
        Ok(flat)
    } else if nested.is_file() {
        Ok(nested)
    } else {
        Err(format!(
            "{}: no file for `mod {name};` (looked for {} and {})",
            parent_file.display(),
            flat.display(),
            nested.display()
        ))
    }
}

/// Whether the attributes hold `#[cfg(test)]` (or a `cfg` that needs `test`).
fn is_cfg_test(attrs: &[Attribute]) -> bool {
    attrs.iter().any(|a| {
        if let syn::Meta::List(list) = &a.meta
            && list.path.is_ident("cfg")
        {
            let tokens = list.tokens.to_string();
            tokens
                .split(|c: char| !c.is_alphanumeric() && c != '_')
                .any(|w| w == "test")
                && !tokens.contains("not")
        } else {
            false
        }
    })
}

fn item_attrs(item: &Item) -> &[Attribute] {
    match item {
        Item::Const(i) => &i.attrs,
        Item::Enum(i) => &i.attrs,
        Item::ExternCrate(i) => &i.attrs,
        Item::Fn(i) => &i.attrs,
        Item::ForeignMod(i) => &i.attrs,
        Item::Impl(i) => &i.attrs,
        Item::Macro(i) => &i.attrs,
        Item::Mod(i) => &i.attrs,
        Item::Static(i) => &i.attrs,
        Item::Struct(i) => &i.attrs,
        Item::Trait(i) => &i.attrs,
        Item::TraitAlias(i) => &i.attrs,
        Item::Type(i) => &i.attrs,
        Item::Union(i) => &i.attrs,
        Item::Use(i) => &i.attrs,
        _ => &[],
    }
}

fn item_name(item: &Item) -> Option<String> {
    let ident = match item {
        Item::Const(i) => &i.ident,
        Item::Enum(i) => &i.ident,
        Item::Fn(i) => &i.sig.ident,
        Item::Macro(i) => i.ident.as_ref()?,
        Item::Static(i) => &i.ident,
        Item::Struct(i) => &i.ident,
        Item::Trait(i) => &i.ident,
        Item::TraitAlias(i) => &i.ident,
        Item::Type(i) => &i.ident,
        Item::Union(i) => &i.ident,
        _ => return None,
    };
    Some(ident.to_string())
}

/// One leaf of a `use` tree.
#[derive(Debug)]
pub(crate) struct UseLeaf {
    /// The name it binds (`None` for `as _` and globs).
    binding: Option<String>,
    /// The path it names (for a glob, the module globbed).
    path: Vec<String>,
    glob: bool,
    line: usize,
}

fn flatten_use(tree: &UseTree, prefix: &mut Vec<String>, out: &mut Vec<UseLeaf>) {
    let mut leaf = |ident: &syn::Ident, binding: Option<String>, glob: bool| {
        let mut path = prefix.clone();
        if ident != "self" && !glob {
            path.push(ident.to_string());
        }
        let binding = binding.or_else(|| path.last().cloned());
        out.push(UseLeaf {
            binding: binding.filter(|b| b != "_" && !glob),
            path,
            glob,
            line: ident.span().start().line,
        });
    };
    match tree {
        UseTree::Path(p) => {
            prefix.push(p.ident.to_string());
            flatten_use(&p.tree, prefix, out);
            prefix.pop();
        }
        UseTree::Name(n) => leaf(&n.ident, None, false),
        UseTree::Rename(r) => leaf(&r.ident, Some(r.rename.to_string()), false),
        UseTree::Glob(g) => {
            let ident = syn::Ident::new("self", g.star_token.span);
            leaf(&ident, None, true);
        }
        UseTree::Group(g) => {
            for t in &g.items {
                flatten_use(t, prefix, out);
            }
        }
    }
}

fn record_use(module: &mut Module, leaves: Vec<UseLeaf>) {
    for leaf in leaves {
        if leaf.path.is_empty() {
            continue;
        }
        module.refs.push(Ref {
            segments: leaf.path.clone(),
            line: leaf.line,
            is_use: true,
        });
        if leaf.glob {
            module.globs.push(leaf.path);
        } else if let Some(binding) = leaf.binding {
            module.imports.insert(binding, leaf.path);
        }
    }
}

/// Collects the paths of one item (not a module), and the `use` items nested
/// in its bodies.
#[derive(Default)]
struct Collector {
    refs: Vec<Ref>,
    uses: Vec<UseLeaf>,
}

impl<'ast> Visit<'ast> for Collector {
    fn visit_path(&mut self, path: &'ast syn::Path) {
        if path.leading_colon.is_none() && path.segments.len() > 1 {
            let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
            let line = path.segments[0].ident.span().start().line;
            self.refs.push(Ref {
                segments,
                line,
                is_use: false,
            });
        }
        syn::visit::visit_path(self, path);
    }

    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        if u.leading_colon.is_none() && !is_cfg_test(&u.attrs) {
            flatten_use(&u.tree, &mut Vec::new(), &mut self.uses);
        }
    }

    fn visit_item_mod(&mut self, _: &'ast syn::ItemMod) {}

    fn visit_impl_item_fn(&mut self, f: &'ast syn::ImplItemFn) {
        if !is_cfg_test(&f.attrs) {
            syn::visit::visit_impl_item_fn(self, f);
        }
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        syn::visit::visit_macro(self, mac);
        macro_paths(mac.tokens.clone(), &mut self.refs);
    }
}

/// The `crate::…`, `super::…` and `self::…` paths inside a macro's tokens
/// (which `syn` does not parse).
fn macro_paths(tokens: TokenStream, out: &mut Vec<Ref>) {
    let tokens: Vec<TokenTree> = tokens.into_iter().collect();
    let mut i = 0;
    while i < tokens.len() {
        if let TokenTree::Group(g) = &tokens[i] {
            macro_paths(g.stream(), out);
        }
        if let TokenTree::Ident(id) = &tokens[i]
            && ["crate", "super", "self"].contains(&id.to_string().as_str())
            && !follows_path_separator(&tokens, i)
        {
            let (segments, next) = path_at(&tokens, i);
            if segments.len() > 1 {
                out.push(Ref {
                    segments,
                    line: id.span().start().line,
                    is_use: false,
                });
            }
            i = next;
            continue;
        }
        i += 1;
    }
}

fn is_path_separator(tokens: &[TokenTree], i: usize) -> bool {
    matches!(
        (tokens.get(i), tokens.get(i + 1)),
        (Some(TokenTree::Punct(a)), Some(TokenTree::Punct(b)))
            if a.as_char() == ':' && a.spacing() == Spacing::Joint && b.as_char() == ':'
    )
}

fn follows_path_separator(tokens: &[TokenTree], i: usize) -> bool {
    i >= 2 && is_path_separator(tokens, i - 2)
}

/// The identifiers of the path starting at `tokens[i]`, and the index after it.
fn path_at(tokens: &[TokenTree], mut i: usize) -> (Vec<String>, usize) {
    let mut segments = Vec::new();
    while let Some(TokenTree::Ident(id)) = tokens.get(i) {
        segments.push(id.to_string());
        if !is_path_separator(tokens, i + 1) {
            return (segments, i + 1);
        }
        i += 3;
    }
    (segments, i)
}
