//! Wire-name drift: the key paths of every fully-populated model must equal
//! the checked-in list in `tests/fixtures/wire_names.json`. Renaming a field
//! (or its serde attribute) fails this test.
//!
//! After an intended change, regenerate the list with
//! `RF_TYPES_BLESS=1 cargo test -p rf-types --test types wire_names` and
//! review the diff.

use std::collections::BTreeMap;

use crate::full::full_values;
use crate::support::{fixture_path, fixture_text, key_paths};

#[test]
fn wire_names_match_checked_in_list() {
    let actual: BTreeMap<String, Vec<String>> = full_values()
        .into_iter()
        .map(|(name, value)| (name.to_owned(), key_paths(&value)))
        .collect();
    if std::env::var_os("RF_TYPES_BLESS").is_some() {
        let text = serde_json::to_string_pretty(&actual).expect("serialize") + "\n";
        std::fs::write(fixture_path("wire_names.json"), text).expect("write wire_names.json");
        return;
    }
    let expected: BTreeMap<String, Vec<String>> =
        serde_json::from_str(&fixture_text("wire_names.json")).expect("wire_names.json parses");
    pretty_assertions::assert_eq!(actual, expected);
}

#[test]
fn irregular_names_are_spelled_exactly() {
    let all: Vec<String> = full_values()
        .into_iter()
        .flat_map(|(_, v)| key_paths(&v))
        .collect();
    let has = |suffix: &str| {
        all.iter()
            .any(|p| p == suffix || p.ends_with(&format!(".{suffix}")))
    };
    for name in [
        "downloadURL",
        "uploadURL",
        "signedURLDetails",
        "notificationsURL",
        "imageReferencesURL",
        "videoReferencesURL",
        "maxVideoFPS",
        "event_id",
        "ingest_id",
        "batch_id",
        "shard_id",
        "delivery_attempt",
        "error_details",
        "ingested_files",
        "failed_files",
        "file_name",
        "content_truncated",
        "job_state",
    ] {
        assert!(has(name), "no model writes the key {name}");
    }
    for wrong in [
        "downloadUrl",
        "uploadUrl",
        "notificationsUrl",
        "maxVideoFps",
        "eventId",
    ] {
        assert!(!has(wrong), "a model writes the wrong spelling {wrong}");
    }
}
