//! The field table of outputs that are not predictions: every field (nested
//! objects as `a.b`, two levels deep), how often it is there, its types and
//! an example, and the numeric fields' statistics.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::stats::{Numeric, NumericView};

/// Most fields listed; more are counted.
pub(crate) const MAX_FIELDS: usize = 100;
/// Nesting flattened into dotted names.
const FLATTEN_DEPTH: usize = 2;
/// Longest example shown, in characters.
const EXAMPLE_CHARS: usize = 80;

/// Keys every record has that say which file and workflow it is.
const IDENTITY_KEYS: [&str; 2] = ["file_name", "workflow_id"];

#[derive(Debug)]
struct Field {
    count: u64,
    types: Vec<&'static str>,
    example: String,
    numeric: Option<Numeric>,
}

/// Every field seen.
#[derive(Debug, Default)]
pub(crate) struct Fields {
    fields: BTreeMap<String, Field>,
    /// Fields beyond [`MAX_FIELDS`], not tracked.
    pub(crate) untracked: u64,
    seed: u64,
}

/// A field as the page shows it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct FieldView {
    pub(crate) name: String,
    pub(crate) count: u64,
    pub(crate) types: String,
    pub(crate) example: String,
}

impl Fields {
    /// Empty; numeric samples seeded from `seed`.
    pub(crate) fn new(seed: u64) -> Self {
        Fields {
            seed,
            ..Fields::default()
        }
    }

    /// Counts the fields of `record`, less `skip` (its prediction outputs).
    pub(crate) fn add(&mut self, record: &Map<String, Value>, skip: &[String]) {
        for (k, v) in record {
            if IDENTITY_KEYS.contains(&k.as_str()) || skip.contains(k) || k == "frames" {
                continue;
            }
            self.add_value(k.clone(), v, 1);
        }
    }

    fn add_value(&mut self, name: String, v: &Value, depth: usize) {
        if let Value::Object(m) = v
            && depth < FLATTEN_DEPTH
            && !m.is_empty()
        {
            for (k, child) in m {
                self.add_value(format!("{name}.{k}"), child, depth + 1);
            }
            return;
        }
        let next_seed = self.seed.wrapping_add(self.fields.len() as u64);
        let full = self.fields.len() >= MAX_FIELDS;
        let field = match self.fields.get_mut(&name) {
            Some(f) => f,
            None if full => {
                self.untracked += 1;
                return;
            }
            None => self.fields.entry(name).or_insert(Field {
                count: 0,
                types: Vec::new(),
                example: example(v),
                numeric: None,
            }),
        };
        field.count += 1;
        let t = type_name(v);
        if !field.types.contains(&t) {
            field.types.push(t);
        }
        if let Some(n) = v.as_f64() {
            field
                .numeric
                .get_or_insert_with(|| Numeric::new(next_seed))
                .push(n);
        }
    }

    /// The table rows.
    pub(crate) fn table(&self) -> Vec<FieldView> {
        self.fields
            .iter()
            .map(|(name, f)| FieldView {
                name: name.clone(),
                count: f.count,
                types: f.types.join(", "),
                example: f.example.clone(),
            })
            .collect()
    }

    /// The numeric fields' statistics.
    pub(crate) fn numeric(&self) -> Vec<NumericView> {
        self.fields
            .iter()
            .filter_map(|(name, f)| f.numeric.as_ref().map(|n| n.view(name)))
            .filter(|v| v.count > 0)
            .collect()
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "text",
        Value::Array(_) => "list",
        Value::Object(_) => "object",
    }
}

fn example(v: &Value) -> String {
    let s = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if s.chars().count() > EXAMPLE_CHARS {
        let cut: String = s.chars().take(EXAMPLE_CHARS).collect();
        format!("{cut}…")
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn flattens_counts_and_samples_numbers() {
        let mut f = Fields::new(7);
        for i in 0..3 {
            let r = json!({"file_name": "a", "w": i, "meta": {"fmt": "png", "deep": {"x": 1}},
                           "predictions": {}, "long": "y".repeat(200)});
            f.add(r.as_object().unwrap(), &["predictions".to_string()]);
        }
        let t = f.table();
        let names: Vec<&str> = t.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["long", "meta.deep", "meta.fmt", "w"]);
        assert_eq!(t[3].count, 3);
        assert_eq!(t[1].types, "object");
        assert!(t[0].example.ends_with('…'));
        let n = f.numeric();
        assert_eq!(n.len(), 1);
        assert_eq!(n[0].max, "2");
    }

    #[test]
    fn bounded_field_count() {
        let mut f = Fields::new(1);
        let mut r = Map::new();
        for i in 0..(MAX_FIELDS + 5) {
            r.insert(format!("f{i:03}"), json!(i));
        }
        f.add(&r, &[]);
        assert_eq!(f.table().len(), MAX_FIELDS);
        assert_eq!(f.untracked, 5);
    }
}
