//! The one pass over the results: every record is counted into bounded
//! aggregates and offered to the gallery's sample, then dropped.

use std::collections::{BTreeMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::Path;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::extract::{self, Found};
use crate::fields::Fields;
use crate::results::Line;
use crate::sample::{Sampled, Sampler};
use crate::stats::BINS;
use crate::video::{self, Videos};

/// Classes counted by name; predictions of more are counted together.
pub(crate) const MAX_CLASSES_COUNTED: usize = 1000;
/// Names listed of images with no prediction, of failures, and examples
/// of broken lines.
pub(crate) const MAX_LISTED: usize = 500;
/// Examples of broken lines kept.
const MAX_BROKEN_EXAMPLES: usize = 20;

/// A line that was not a record.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Broken {
    pub(crate) file: String,
    pub(crate) line: u64,
    pub(crate) reason: String,
}

/// A failed item and why.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Failure {
    pub(crate) name: String,
    pub(crate) reason: String,
}

/// A list of which only the first [`MAX_LISTED`] are kept.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Capped<T> {
    pub(crate) total: u64,
    pub(crate) items: Vec<T>,
}

impl<T> Default for Capped<T> {
    fn default() -> Self {
        Capped {
            total: 0,
            items: Vec::new(),
        }
    }
}

impl<T> Capped<T> {
    pub(crate) fn push(&mut self, item: T) {
        self.total += 1;
        if self.items.len() < MAX_LISTED {
            self.items.push(item);
        }
    }
}

/// Everything counted.
#[derive(Debug)]
pub(crate) struct Aggregates {
    pub(crate) files: Vec<(String, u64, u64)>,
    pub(crate) records: u64,
    pub(crate) broken: Capped<Broken>,
    pub(crate) with_output: u64,
    pub(crate) predictions: u64,
    pub(crate) classes: BTreeMap<String, u64>,
    pub(crate) other_classes: u64,
    pub(crate) confidence: [u64; BINS],
    pub(crate) without_confidence: u64,
    pub(crate) empty: Capped<String>,
    pub(crate) failed: Capped<Failure>,
    pub(crate) unnamed: u64,
    pub(crate) fields: Fields,
    pub(crate) videos: Videos,
    pub(crate) sampler: Sampler,
    names: HashSet<u64>,
}

/// A short fixed hash of a result's file name: the set of names seen costs
/// 8 bytes per result, whatever the names' length.
pub(crate) fn name_key(name: &str) -> u64 {
    let mut h = DefaultHasher::new();
    name.hash(&mut h);
    h.finish()
}

impl Aggregates {
    /// Empty, with a sample of `sample` images; every random choice is
    /// seeded from `seed`.
    pub(crate) fn new(sample: usize, seed: u64) -> Self {
        Aggregates {
            files: Vec::new(),
            records: 0,
            broken: Capped::default(),
            with_output: 0,
            predictions: 0,
            classes: BTreeMap::new(),
            other_classes: 0,
            confidence: [0; BINS],
            without_confidence: 0,
            empty: Capped::default(),
            failed: Capped::default(),
            unnamed: 0,
            fields: Fields::new(seed ^ 0x5eed),
            videos: Videos::default(),
            sampler: Sampler::new(sample, seed),
            names: HashSet::new(),
        }
    }

    /// Whether a result named `name` was read.
    pub(crate) fn has_result(&self, name: &str) -> bool {
        self.names.contains(&name_key(name))
    }

    /// Counts every line of one result file (`path`, shown as `shown`).
    pub(crate) fn add_file(
        &mut self,
        path: &Path,
        shown: String,
    ) -> Result<(), crate::ReportError> {
        let (mut n, mut bad) = (0u64, 0u64);
        crate::results::read_file(path, |line| {
            n += 1;
            match line {
                Line::Record(r) => self.add_record(&r),
                Line::Broken(reason) => {
                    bad += 1;
                    if self.broken.items.len() < MAX_BROKEN_EXAMPLES {
                        self.broken.items.push(Broken {
                            file: shown.clone(),
                            line: n,
                            reason,
                        });
                    }
                    self.broken.total += 1;
                }
            }
        })?;
        self.files.push((shown, n - bad, bad));
        Ok(())
    }

    /// Counts one record.
    pub(crate) fn add_record(&mut self, r: &Map<String, Value>) {
        self.records += 1;
        let name = r
            .get("file_name")
            .and_then(Value::as_str)
            .map(str::to_string);
        match &name {
            Some(n) => {
                self.names.insert(name_key(n));
            }
            None => self.unnamed += 1,
        }
        let name = name.unwrap_or_else(|| format!("(record {})", self.records));
        let found = extract::find(r);
        self.fields.add(r, &found.keys);
        if video::is_video(r) {
            self.videos.add(&name, r, found.predictions.len());
        }
        if let Some(reason) = error_of(r).filter(|_| !found.any_output) {
            self.failed.push(Failure { name, reason });
            return;
        }
        if found.any_output {
            self.add_found(name, found);
        }
    }

    fn add_found(&mut self, name: String, found: Found) {
        self.with_output += 1;
        self.predictions += found.predictions.len() as u64;
        for p in &found.predictions {
            self.count_class(&p.class);
            match p.confidence {
                Some(c) => {
                    let bin = ((c.clamp(0.0, 1.0) * BINS as f64) as usize).min(BINS - 1);
                    self.confidence[bin] += 1;
                }
                None => self.without_confidence += 1,
            }
        }
        if found.predictions.is_empty() {
            self.empty.push(name);
        } else {
            self.sampler
                .offer(Sampled::new(name, found.image, found.predictions));
        }
    }

    fn count_class(&mut self, class: &str) {
        if let Some(n) = self.classes.get_mut(class) {
            *n += 1;
        } else if self.classes.len() < MAX_CLASSES_COUNTED {
            self.classes.insert(class.to_string(), 1);
        } else {
            self.other_classes += 1;
        }
    }
}

/// The error a result record reports about its item, if any.
fn error_of(r: &Map<String, Value>) -> Option<String> {
    let e = r.get("error").or_else(|| r.get("errors"))?;
    match e {
        Value::Null | Value::Bool(false) => None,
        Value::String(s) => Some(s.clone()),
        Value::Object(m) => Some(
            m.get("message")
                .and_then(Value::as_str)
                .map_or_else(|| e.to_string(), str::to_string),
        ),
        other => Some(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn add(a: &mut Aggregates, v: Value) {
        a.add_record(v.as_object().unwrap());
    }

    #[test]
    fn counts_classes_confidences_empties_and_errors() {
        let mut a = Aggregates::new(10, 1);
        add(
            &mut a,
            json!({"file_name": "a", "predictions": {"predictions": [
            {"x": 1, "y": 1, "width": 1, "height": 1, "class": "red", "confidence": 0.95},
            {"x": 1, "y": 1, "width": 1, "height": 1, "class": "red", "confidence": 0.05},
            {"x": 1, "y": 1, "width": 1, "height": 1, "class": "blue"}]}}),
        );
        add(
            &mut a,
            json!({"file_name": "b", "predictions": {"predictions": []}}),
        );
        add(
            &mut a,
            json!({"file_name": "c", "error": {"message": "cannot decode"}}),
        );
        add(&mut a, json!({"width": 3}));
        assert_eq!(a.records, 4);
        assert_eq!(a.with_output, 2);
        assert_eq!(a.classes["red"], 2);
        assert_eq!(a.confidence[19], 1);
        assert_eq!(a.confidence[1], 1);
        assert_eq!(a.without_confidence, 1);
        assert_eq!(a.empty.items, ["b"]);
        assert_eq!(a.failed.items[0].reason, "cannot decode");
        assert_eq!(a.unnamed, 1);
        assert!(a.has_result("c") && !a.has_result("d"));
        assert_eq!(a.fields.numeric()[0].name, "width");
    }
}
