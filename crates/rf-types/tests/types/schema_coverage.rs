//! Every property of every schema in both OpenAPI files of
//! the official API (`tests/fixtures/openapi/`) has its
//! field in `rf-types`: each operation's request and response schema is
//! walked against the fully-populated value of the matching model.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::full::full_value;
use crate::support::fixture_value;

/// Which models answer (or are) each operation's JSON body.
/// Keys: `"<spec> <METHOD> <path> <REQ|status>"`.
fn models_for(key: &str) -> Option<Vec<&'static str>> {
    let names: &[&str] = match key {
        "data-staging GET /{workspace}/batches 200" => &["ListBatchesResponse"],
        "data-staging GET /{workspace}/batches/{batchId}/list 200" => &["ListFilesResponse"],
        "data-staging POST /{workspace}/batches/{batchId}/bulk-upload/image-references REQ" => &[
            "ImageReferencesIngestRequest(inline)",
            "ImageReferencesIngestRequest(url)",
        ],
        "data-staging POST /{workspace}/batches/{batchId}/bulk-upload/image-references 200" => {
            &["ImageReferencesIngestResponse"]
        }
        "data-staging POST /{workspace}/batches/{batchId}/bulk-upload/video-references REQ" => &[
            "VideoReferencesIngestRequest(inline)",
            "VideoReferencesIngestRequest(url)",
        ],
        "data-staging POST /{workspace}/batches/{batchId}/bulk-upload/video-references 200" => {
            &["VideoReferencesIngestResponse"]
        }
        "data-staging POST /{workspace}/batches/{batchId}/upload/image 200" => &["StatusOk"],
        "data-staging POST /{workspace}/batches/{batchId}/upload/video 200"
        | "data-staging POST /{workspace}/batches/{batchId}/bulk-upload/image-files 200" => {
            &["SignedUrlResponse"]
        }
        "data-staging GET /{workspace}/batches/{batchId}/count 200" => &["CountResponse"],
        "data-staging GET /{workspace}/batches/{batchId} 200" => &["GetBatchResponse"],
        "data-staging GET /{workspace}/batches/{batchId}/parts 200" => &["ListPartsResponse"],
        "data-staging GET /{workspace}/batches/{batchId}/shards 200" => &["ListShardsResponse"],
        "batch-processing GET /{workspace}/jobs 200" => &["ListJobsResponse"],
        "batch-processing GET /{workspace}/jobs/{jobId} 200" => &["GetJobResponse"],
        "batch-processing POST /{workspace}/jobs/{jobId} REQ" => &[
            "JobDefinition(image)",
            "JobDefinition(video)",
            "JobDefinition(trt)",
        ],
        "batch-processing GET /{workspace}/jobs/{jobId}/stages 200" => &["ListStagesResponse"],
        "batch-processing GET /{workspace}/jobs/{jobId}/stages/{stageId}/tasks 200" => {
            &["ListTasksResponse"]
        }
        "batch-processing POST /{workspace}/jobs/{jobId}/abort 200"
        | "batch-processing POST /{workspace}/jobs/{jobId}/restart 200" => &["StatusOk"],
        "batch-processing POST /{workspace}/jobs/{jobId}/restart REQ" => &["ParametersOverride"],
        "batch-processing GET /{workspace}/jobs/{jobId}/logs 200" => &["JobLogsResponse"],
        _ => return None,
    };
    Some(names.to_vec())
}

struct Walker<'a> {
    spec: &'a Value,
    visited: BTreeSet<String>,
}

impl Walker<'_> {
    /// Checks that `value` carries every property `schema` declares,
    /// recursively. Returns the first missing path.
    fn covers(&mut self, schema: &Value, value: &Value, path: &str) -> Result<(), String> {
        let schema = self.deref(schema);
        if let Some(alternatives) = schema.get("oneOf").and_then(Value::as_array) {
            // Nested oneOf ("object or string"): one alternative must match.
            let mut errors = Vec::new();
            for alt in alternatives {
                match self.covers(alt, value, path) {
                    Ok(()) => return Ok(()),
                    Err(e) => errors.push(e),
                }
            }
            return Err(errors.join("; "));
        }
        if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
            let object = value
                .as_object()
                .ok_or_else(|| format!("{path}: expected an object, got {value}"))?;
            for (name, property) in properties {
                let child = object
                    .get(name)
                    .ok_or_else(|| format!("{path}.{name}: property has no field"))?;
                if !child.is_null() {
                    self.covers(property, child, &format!("{path}.{name}"))?;
                }
            }
        }
        if let Some(items) = schema.get("items") {
            let array = value
                .as_array()
                .ok_or_else(|| format!("{path}: expected an array, got {value}"))?;
            if array.is_empty() {
                return Err(format!("{path}: full value has an empty array"));
            }
            for item in array {
                self.covers(items, item, &format!("{path}[]"))?;
            }
        }
        Ok(())
    }

    fn deref(&mut self, schema: &Value) -> Value {
        match schema.get("$ref").and_then(Value::as_str) {
            Some(reference) => {
                let name = reference
                    .strip_prefix("#/components/schemas/")
                    .unwrap_or_else(|| panic!("unsupported $ref {reference}"));
                self.visited.insert(name.to_owned());
                let target = self.spec["components"]["schemas"][name].clone();
                assert!(!target.is_null(), "dangling $ref {reference}");
                self.deref(&target)
            }
            None => schema.clone(),
        }
    }
}

#[test]
fn every_openapi_property_has_a_field() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for spec_name in ["data-staging", "batch-processing"] {
        let spec = fixture_value(&format!("openapi/{spec_name}.openapi"));
        let mut walker = Walker {
            spec: &spec,
            visited: BTreeSet::new(),
        };
        let paths = spec["paths"].as_object().expect("paths object");
        for (path, operations) in paths {
            let operations = operations.as_object().expect("operations object");
            for (method, operation) in operations {
                let Some(operation) = operation.as_object() else {
                    continue;
                };
                let method = method.to_uppercase();
                let mut bodies = Vec::new();
                if let Some(content) = operation
                    .get("requestBody")
                    .and_then(|b| b.get("content"))
                    .and_then(Value::as_object)
                {
                    for (content_type, media) in content {
                        if content_type == "application/json" {
                            bodies.push(("REQ".to_owned(), media["schema"].clone()));
                        }
                    }
                }
                if let Some(responses) = operation.get("responses").and_then(Value::as_object) {
                    for (status, response) in responses {
                        if let Some(schema) = response
                            .get("content")
                            .and_then(|c| c.get("application/json"))
                            .and_then(|m| m.get("schema"))
                        {
                            bodies.push((status.clone(), schema.clone()));
                        }
                    }
                }
                for (which, schema) in bodies {
                    let key = format!("{spec_name} {method} {path} {which}");
                    let Some(models) = models_for(&key) else {
                        failures.push(format!("{key}: no model mapped to this body"));
                        continue;
                    };
                    checked += 1;
                    let values: Vec<Value> = models.iter().map(|m| full_value(m)).collect();
                    let schema = walker.deref(&schema);
                    let alternatives = match schema.get("oneOf").and_then(Value::as_array) {
                        Some(alts) => alts.clone(),
                        None => vec![schema.clone()],
                    };
                    for (i, alt) in alternatives.iter().enumerate() {
                        let mut errors = Vec::new();
                        let covered = values.iter().any(|v| match walker.covers(alt, v, "$") {
                            Ok(()) => true,
                            Err(e) => {
                                errors.push(e);
                                false
                            }
                        });
                        if !covered {
                            failures
                                .push(format!("{key} (alternative {i}): {}", errors.join(" | ")));
                        }
                    }
                }
            }
        }
        let all: BTreeSet<String> = spec["components"]["schemas"]
            .as_object()
            .expect("schemas object")
            .keys()
            .cloned()
            .collect();
        let unvisited: Vec<_> = all.difference(&walker.visited).collect();
        assert!(
            unvisited.is_empty(),
            "{spec_name}: schemas never reached: {unvisited:?}"
        );
    }
    assert!(failures.is_empty(), "uncovered:\n{}", failures.join("\n"));
    assert_eq!(checked, 22, "every JSON body of both specs is checked");
}

#[test]
fn walker_reports_missing_properties() {
    let spec = serde_json::json!({"components": {"schemas": {
        "Inner": {"type": "object", "properties": {"downloadURL": {"type": "string"}}}
    }}});
    let mut walker = Walker {
        spec: &spec,
        visited: BTreeSet::new(),
    };
    let schema = serde_json::json!({"type": "object", "properties": {
        "files": {"type": "array", "items": {"$ref": "#/components/schemas/Inner"}}
    }});
    let good = serde_json::json!({"files": [{"downloadURL": "u"}]});
    assert_eq!(walker.covers(&schema, &good, "$"), Ok(()));
    let drifted = serde_json::json!({"files": [{"downloadUrl": "u"}]});
    assert_eq!(
        walker.covers(&schema, &drifted, "$"),
        Err("$.files[].downloadURL: property has no field".to_owned())
    );
    assert!(walker.visited.contains("Inner"));
}
