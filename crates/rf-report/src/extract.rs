//! Finding Roboflow prediction outputs inside a result record, wherever
//! they are: object detection (`predictions: [{x, y, width, height, class,
//! confidence}]`, with the `image: {width, height}` beside it), instance
//! segmentation (the same with `points: [{x, y}]`) and classification
//! (`top` with `confidence`, or `predictions` as a list of `{class,
//! confidence}` or a map of class to `{confidence}`).

use serde_json::{Map, Value};

/// Deepest nesting searched for prediction outputs.
const MAX_DEPTH: usize = 6;
/// Most points kept per polygon.
const MAX_POINTS: usize = 256;

/// Where a prediction is in its image (source pixels, box centre and size).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct BoundingBox {
    pub(crate) x: f64,
    pub(crate) y: f64,
    pub(crate) width: f64,
    pub(crate) height: f64,
}

/// One prediction.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Prediction {
    pub(crate) class: String,
    pub(crate) confidence: Option<f64>,
    pub(crate) bbox: Option<BoundingBox>,
    pub(crate) points: Vec<(f64, f64)>,
}

/// The prediction outputs of one record.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Found {
    /// Whether the record had any prediction output (even an empty one).
    pub(crate) any_output: bool,
    /// The image size the outputs give, if any.
    pub(crate) image: Option<(f64, f64)>,
    /// Every prediction.
    pub(crate) predictions: Vec<Prediction>,
    /// Top-level keys holding prediction outputs (left out of the field table).
    pub(crate) keys: Vec<String>,
}

/// The prediction outputs of `record` (its `frames`, a video's, are left to
/// [`crate::video`]).
pub(crate) fn find(record: &Map<String, Value>) -> Found {
    let mut found = Found::default();
    for (k, v) in record {
        if k == "frames" {
            continue;
        }
        let before = (found.any_output, found.predictions.len());
        visit(v, 0, &mut found);
        if (found.any_output, found.predictions.len()) != before {
            found.keys.push(k.clone());
        }
    }
    found
}

/// The prediction outputs of one value (a video frame, say).
pub(crate) fn find_in(value: &Value) -> Found {
    let mut found = Found::default();
    visit(value, 0, &mut found);
    found
}

fn visit(v: &Value, depth: usize, found: &mut Found) {
    if depth > MAX_DEPTH {
        return;
    }
    match v {
        Value::Object(m) if !output_of(m, found) => {
            for child in m.values() {
                visit(child, depth + 1, found);
            }
        }
        Value::Array(a) => {
            for child in a {
                visit(child, depth + 1, found);
            }
        }
        _ => {}
    }
}

/// Reads `m` as a prediction output; false when it is none.
fn output_of(m: &Map<String, Value>, found: &mut Found) -> bool {
    if let Some(top) = m.get("top").and_then(Value::as_str) {
        found.any_output = true;
        found.predictions.push(Prediction {
            class: top.to_string(),
            confidence: m.get("confidence").and_then(Value::as_f64),
            bbox: None,
            points: Vec::new(),
        });
        return true;
    }
    match m.get("predictions") {
        Some(Value::Array(list)) if list.iter().all(Value::is_object) => {
            found.any_output = true;
            if found.image.is_none() {
                found.image = image_size(m.get("image"));
            }
            found.predictions.extend(list.iter().filter_map(prediction));
            true
        }
        Some(Value::Object(classes)) if classes.values().all(has_confidence) => {
            found.any_output = true;
            found
                .predictions
                .extend(classes.iter().map(|(class, v)| Prediction {
                    class: class.clone(),
                    confidence: v.get("confidence").and_then(Value::as_f64),
                    bbox: None,
                    points: Vec::new(),
                }));
            true
        }
        _ => false,
    }
}

fn has_confidence(v: &Value) -> bool {
    v.get("confidence").is_some_and(Value::is_number)
}

fn image_size(v: Option<&Value>) -> Option<(f64, f64)> {
    let v = v?;
    let w = v.get("width")?.as_f64()?;
    let h = v.get("height")?.as_f64()?;
    (w > 0.0 && h > 0.0 && w.is_finite() && h.is_finite()).then_some((w, h))
}

fn prediction(v: &Value) -> Option<Prediction> {
    let class = match v.get("class")? {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    let num = |k: &str| v.get(k).and_then(Value::as_f64).filter(|f| f.is_finite());
    let bbox = match (num("x"), num("y"), num("width"), num("height")) {
        (Some(x), Some(y), Some(width), Some(height)) if width >= 0.0 && height >= 0.0 => {
            Some(BoundingBox {
                x,
                y,
                width,
                height,
            })
        }
        _ => None,
    };
    let points = v
        .get("points")
        .and_then(Value::as_array)
        .map(|ps| {
            ps.iter()
                .filter_map(|p| Some((p.get("x")?.as_f64()?, p.get("y")?.as_f64()?)))
                .take(MAX_POINTS)
                .collect()
        })
        .unwrap_or_default();
    Some(Prediction {
        class,
        confidence: num("confidence"),
        bbox,
        points,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rec(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn detections_with_image_size_anywhere() {
        let r = rec(
            json!({"file_name": "a.jpg", "out": {"model": {"image": {"width": 320, "height": 240},
            "predictions": [{"x": 10, "y": 20, "width": 4, "height": 6, "class": "red", "confidence": 0.9}]}}}),
        );
        let f = find(&r);
        assert!(f.any_output);
        assert_eq!(f.image, Some((320.0, 240.0)));
        assert_eq!(f.keys, vec!["out".to_string()]);
        let p = &f.predictions[0];
        assert_eq!(p.class, "red");
        assert_eq!(p.confidence, Some(0.9));
        assert_eq!(p.bbox.unwrap().width, 4.0);
    }

    #[test]
    fn empty_output_counts_as_output() {
        let f = find(&rec(
            json!({"predictions": {"image": {"width": 1, "height": 1}, "predictions": []}}),
        ));
        assert!(f.any_output);
        assert!(f.predictions.is_empty());
    }

    #[test]
    fn segmentation_and_classification() {
        let f = find(&rec(json!({
            "seg": {"predictions": [{"x": 5, "y": 5, "width": 2, "height": 2, "class": "c", "confidence": 0.5,
                     "points": [{"x": 4, "y": 4}, {"x": 6, "y": 4}, {"x": 5, "y": 6}]}]},
            "cls": {"top": "cat", "confidence": 0.7, "predictions": [{"class": "cat", "confidence": 0.7}]},
            "multi": {"predictions": {"dog": {"confidence": 0.2}, "cat": {"confidence": 0.8}}}
        })));
        assert_eq!(f.predictions.len(), 4);
        assert_eq!(
            f.predictions.iter().filter(|p| p.points.len() == 3).count(),
            1
        );
        assert!(
            f.predictions
                .iter()
                .any(|p| p.class == "cat" && p.bbox.is_none())
        );
        assert!(f.predictions.iter().any(|p| p.class == "dog"));
    }

    #[test]
    fn other_outputs_are_not_predictions() {
        let f = find(&rec(
            json!({"width": 3, "predictions": "text", "frames": [{"predictions": [{"class": "x"}]}]}),
        ));
        assert!(!f.any_output);
        assert!(f.keys.is_empty());
    }
}
