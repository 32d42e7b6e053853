//! Fixture loading and the golden round-trip check.

use std::path::PathBuf;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Path of a file under `tests/fixtures`.
pub(crate) fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("fixtures")
        .join(name)
}

/// Text of a file under `tests/fixtures`.
pub(crate) fn fixture_text(name: &str) -> String {
    let path = fixture_path(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// A fixture `<name>.json` as a JSON value.
pub(crate) fn fixture_value(name: &str) -> Value {
    let text = fixture_text(&format!("{name}.json"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("fixture {name} is not JSON: {e}"))
}

/// Deserializes fixture `<name>.json` into `T`, serializes it back and checks
/// that the JSON is the same value; returns the model for value checks.
pub(crate) fn golden<T: DeserializeOwned + Serialize>(name: &str) -> T {
    let text = fixture_text(&format!("{name}.json"));
    let model: T = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "fixture {name} does not deserialize as {}: {e}",
            std::any::type_name::<T>()
        )
    });
    let original: Value = serde_json::from_str(&text).expect("fixture parsed once already");
    let back = serde_json::to_value(&model).expect("models always serialize");
    pretty_assertions::assert_eq!(back, original, "fixture {name} does not round-trip");
    model
}

/// Every JSON path in `value` that holds `null` (`a.b[].c` style).
pub(crate) fn null_paths(value: &Value) -> Vec<String> {
    fn walk(value: &Value, path: &str, out: &mut Vec<String>) {
        match value {
            Value::Null => out.push(path.to_owned()),
            Value::Object(map) => {
                for (k, v) in map {
                    walk(v, &join(path, k), out);
                }
            }
            Value::Array(items) => {
                for item in items {
                    walk(item, &format!("{path}[]"), out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(value, "", &mut out);
    out
}

/// Every key path in `value` (`a.b[].c` style), sorted and deduplicated.
pub(crate) fn key_paths(value: &Value) -> Vec<String> {
    fn walk(value: &Value, path: &str, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    let p = join(path, k);
                    out.push(p.clone());
                    walk(v, &p, out);
                }
            }
            Value::Array(items) => {
                for item in items {
                    walk(item, &format!("{path}[]"), out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(value, "", &mut out);
    out.sort();
    out.dedup();
    out
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}
