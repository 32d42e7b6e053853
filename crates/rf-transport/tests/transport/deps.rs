//! No OpenSSL and no aws-lc: everything rf-transport pulls in (normal, build
//! and dev dependencies, walked through the workspace's Cargo.lock) is free
//! of `openssl-sys`, `native-tls` and `aws-lc-*`, and TLS is `rustls` + `ring`.

use std::collections::{BTreeSet, HashMap};

/// Package name -> names of its dependencies, from Cargo.lock.
fn lock_graph() -> HashMap<String, Vec<String>> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.lock");
    let lock = std::fs::read_to_string(path).unwrap();
    let mut graph: HashMap<String, Vec<String>> = HashMap::new();
    for block in lock.split("[[package]]").skip(1) {
        let mut name = None;
        let mut deps = Vec::new();
        let mut in_deps = false;
        for line in block.lines().map(str::trim) {
            if let Some(n) = line.strip_prefix("name = ") {
                name = Some(n.trim_matches('"').to_string());
            } else if line.starts_with("dependencies = [") {
                in_deps = true;
            } else if in_deps && line == "]" {
                in_deps = false;
            } else if in_deps {
                // `"name"` or `"name version"` or `"name version (source)"`.
                let dep = line.trim_matches(|c| c == '"' || c == ',');
                deps.push(dep.split(' ').next().unwrap_or(dep).to_string());
            }
        }
        if let Some(name) = name {
            graph.entry(name).or_default().extend(deps);
        }
    }
    graph
}

#[test]
fn no_openssl_or_aws_lc_anywhere_below_rf_transport() {
    let graph = lock_graph();
    assert!(
        graph.contains_key("rf-transport"),
        "rf-transport not in Cargo.lock"
    );
    let mut seen = BTreeSet::new();
    let mut todo = vec!["rf-transport".to_string()];
    while let Some(p) = todo.pop() {
        if seen.insert(p.clone()) {
            todo.extend(graph.get(&p).cloned().unwrap_or_default());
        }
    }
    for banned in [
        "openssl-sys",
        "openssl",
        "native-tls",
        "aws-lc-rs",
        "aws-lc-sys",
    ] {
        assert!(
            !seen.contains(banned),
            "{banned} is a dependency of rf-transport"
        );
    }
    for needed in ["rustls", "ring", "reqwest", "hyper"] {
        assert!(seen.contains(needed), "{needed} missing: {seen:?}");
    }
}
