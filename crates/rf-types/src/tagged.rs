//! Helper for objects with a constant `type` tag: reads the object as a JSON
//! map and checks the tag before the typed fields are read.

use serde::de::{Deserialize, Deserializer, Error};
use serde_json::{Map, Value};

/// Reads a JSON object and checks that its `type` field equals `expected`.
/// Returns the remaining fields (the tag removed).
pub(crate) fn take_tagged_map<'de, D>(
    deserializer: D,
    expected: &'static str,
) -> Result<Map<String, Value>, D::Error>
where
    D: Deserializer<'de>,
{
    let mut map = Map::<String, Value>::deserialize(deserializer)?;
    match map.remove("type") {
        Some(Value::String(found)) if found == expected => Ok(map),
        Some(found) => Err(D::Error::custom(format!(
            "invalid type {found}, expected \"{expected}\""
        ))),
        None => Err(D::Error::custom(format!(
            "missing field `type` (expected \"{expected}\")"
        ))),
    }
}
