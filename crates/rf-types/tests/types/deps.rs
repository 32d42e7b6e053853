//! `rf-types` stays free of async and HTTP: its normal dependencies are a
//! fixed, small set (checked on the manifest; `cargo tree -p rf-types -e
//! normal` then shows no tokio, reqwest, hyper or axum).

#[test]
fn only_allowed_normal_dependencies() {
    let manifest = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .expect("read Cargo.toml");
    let mut in_deps = false;
    let mut names = Vec::new();
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_deps = line == "[dependencies]";
            continue;
        }
        if in_deps && !line.is_empty() && !line.starts_with('#') {
            let name = line
                .split(['=', '.', ' '])
                .next()
                .expect("split yields at least one item");
            names.push(name.to_owned());
        }
    }
    names.sort();
    assert_eq!(
        names,
        ["chrono", "rand", "serde", "serde_json", "thiserror"]
    );
    assert!(
        !manifest.contains("[target."),
        "no target-specific dependencies expected"
    );
}
