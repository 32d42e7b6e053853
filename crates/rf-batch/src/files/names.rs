//! Item names: maps a file's relative path to the flat name it gets in the batch.
//!
//! The service names an item by a single flat name (the `fileName` of a single
//! upload, the member name inside a tar shard), so `a/x.jpg` and `b/x.jpg` need
//! different flat names. The mapping is a pure function of the relative path
//! (it does not depend on which other files exist), so a resumed run names every
//! file exactly as the first run did, and it is injective:
//!
//! - a path is *clean* when no component contains `__`, `~` or a control
//!   character, starts or ends with `_`, and the result fits in 100 bytes;
//!   a clean path maps to its components joined by `__` (`a/x.jpg` →
//!   `a__x.jpg`, `x.jpg` → `x.jpg`). In a clean result every `__` is a
//!   separator, so two clean paths never meet;
//! - any other path maps to a readable prefix of its sanitised form followed by
//!   `~` and 16 hex digits of the SHA-256 of the path, then the extension
//!   (`a__b/x.jpg` → `a_b__x~3f2a….jpg`). Clean names never contain `~`, so they
//!   cannot meet a hashed name; two hashed names meet only on a 64-bit hash
//!   collision.
//!
//! Names are at most 100 bytes, so every one fits a plain ustar tar header.

use sha2::{Digest, Sha256};

/// Longest flat name produced, in bytes (the ustar `name` field).
pub const MAX_NAME_BYTES: usize = 100;

/// Maps a `/`-separated relative path to its flat item name (see the module docs).
///
/// ```
/// use rf_batch::ingest::flat_name;
/// assert_eq!(flat_name("x.jpg"), "x.jpg");
/// assert_eq!(flat_name("a/x.jpg"), "a__x.jpg");
/// assert_ne!(flat_name("a__x.jpg"), flat_name("a/x.jpg"));
/// ```
pub fn flat_name(relative: &str) -> String {
    let components: Vec<&str> = relative.split('/').filter(|c| !c.is_empty()).collect();
    let clean = components.iter().all(|c| is_clean_component(c));
    let joined = components.join("__");
    if clean && joined.len() <= MAX_NAME_BYTES && !joined.is_empty() {
        return joined;
    }
    hashed_name(relative, &components)
}

fn is_clean_component(c: &str) -> bool {
    !c.contains("__")
        && !c.contains('~')
        && !c.starts_with('_')
        && !c.ends_with('_')
        && !c.chars().any(char::is_control)
}

fn hashed_name(relative: &str, components: &[&str]) -> String {
    let digest = Sha256::digest(relative.as_bytes());
    let hash = hex::encode(&digest[..8]);
    let last = components.last().copied().unwrap_or("");
    let ext = match last.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() && ext.len() <= 10 => sanitize(ext),
        _ => String::new(),
    };
    // Readable part: components with runs of '_' collapsed, '~' and controls replaced.
    let mut readable = components
        .iter()
        .map(|c| sanitize(c))
        .collect::<Vec<_>>()
        .join("__");
    if !ext.is_empty() && readable.ends_with(&format!(".{ext}")) {
        readable.truncate(readable.len() - ext.len() - 1);
    }
    let suffix_len = 1 + hash.len() + if ext.is_empty() { 0 } else { ext.len() + 1 };
    let budget = MAX_NAME_BYTES.saturating_sub(suffix_len);
    truncate_at_char(&mut readable, budget);
    let mut out = readable;
    out.push('~');
    out.push_str(&hash);
    if !ext.is_empty() {
        out.push('.');
        out.push_str(&ext);
    }
    out
}

fn sanitize(c: &str) -> String {
    let mut out = String::with_capacity(c.len());
    for ch in c.chars() {
        let ch = if ch == '~' || ch.is_control() {
            '-'
        } else {
            ch
        };
        if ch == '_' && out.ends_with('_') {
            continue;
        }
        out.push(ch);
    }
    out.trim_matches('_').to_string()
}

fn truncate_at_char(s: &mut String, max: usize) {
    if s.len() <= max {
        return;
    }
    let mut cut = max;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    s.truncate(cut);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn clean_paths_are_readable() {
        assert_eq!(flat_name("cam1_0001.jpg"), "cam1_0001.jpg");
        assert_eq!(flat_name("a/b/c.png"), "a__b__c.png");
        assert_eq!(flat_name("día/foto 1.jpg"), "día__foto 1.jpg");
    }

    #[test]
    fn ambiguous_paths_are_hashed_and_distinct() {
        let paths = [
            "a/x.jpg",
            "a__x.jpg",
            "a_/x.jpg",
            "a/_x.jpg",
            "a___x.jpg",
            "b/x.jpg",
            "x~1.jpg",
            "_x.jpg",
            "x.jpg",
        ];
        let mut seen = HashMap::new();
        for p in paths {
            let n = flat_name(p);
            assert!(!n.contains('/'), "{n}");
            assert!(n.len() <= MAX_NAME_BYTES);
            if let Some(prev) = seen.insert(n.clone(), p) {
                panic!("{p} and {prev} both map to {n}");
            }
        }
        let hashed = flat_name("a__x.jpg");
        assert!(hashed.starts_with("a_x~"), "{hashed}");
        assert!(hashed.ends_with(".jpg"), "{hashed}");
    }

    #[test]
    fn long_paths_fit_and_keep_extension() {
        let long = format!("{}/{}.jpeg", "d".repeat(80), "é".repeat(40));
        let n = flat_name(&long);
        assert!(n.len() <= MAX_NAME_BYTES, "{} bytes", n.len());
        assert!(n.ends_with(".jpeg"));
        assert_ne!(
            n,
            flat_name(&format!("{}/{}.jpeg", "d".repeat(80), "é".repeat(41)))
        );
    }

    #[test]
    fn deterministic() {
        assert_eq!(flat_name("q/__w.png"), flat_name("q/__w.png"));
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    fn path() -> impl Strategy<Value = String> {
        // components from an alphabet rich in the characters that matter
        prop::collection::vec("[a_~.x/é]{1,6}", 1..4).prop_map(|parts| parts.join("/"))
    }

    proptest! {
        #[test]
        fn flat_names_are_flat_short_and_injective(a in path(), b in path()) {
            let (na, nb) = (flat_name(&a), flat_name(&b));
            prop_assert!(!na.contains('/'));
            prop_assert!(na.len() <= MAX_NAME_BYTES);
            prop_assert!(!na.is_empty());
            let norm = |p: &str| p.split('/').filter(|c| !c.is_empty()).collect::<Vec<_>>().join("/");
            if norm(&a) != norm(&b) {
                prop_assert_ne!(na, nb, "{} and {} collide", a, b);
            }
        }
    }
}
