//! Timestamps: [`Timestamp`] (`chrono::DateTime<Utc>`), a lenient parser for
//! the formats the API sends and serde helpers for struct fields.
//!
//! Accepted on input: RFC 3339 with `Z` or a numeric offset (`+00:00`, also
//! `+0000`), with or without fractional seconds, `T` or a space between date
//! and time, and naive `YYYY-MM-DDTHH:MM:SS[.fff]` (treated as UTC). Written
//! as RFC 3339 with `Z` (fractional seconds only when non-zero).

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serializer};

/// A point in time, in UTC.
pub type Timestamp = DateTime<Utc>;

/// A timestamp string matched none of the accepted formats.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid timestamp {value:?}: use RFC 3339, e.g. 2025-06-01T02:00:11Z or 2025-06-01T02:00:11.512+00:00"
)]
pub struct TimestampError {
    value: String,
}

impl TimestampError {
    /// The rejected value.
    pub fn value(&self) -> &str {
        &self.value
    }
}

/// Parses a timestamp in any of the accepted formats (see the module docs).
///
/// ```
/// use rf_types::timestamp::{format_timestamp, parse_timestamp};
///
/// let a = parse_timestamp("2025-06-01T02:00:11.512Z")?;
/// let b = parse_timestamp("2025-06-01T04:00:11.512+02:00")?;
/// let c = parse_timestamp("2025-06-01T02:00:11.512")?;
/// assert_eq!(a, b);
/// assert_eq!(a, c);
/// assert_eq!(format_timestamp(&a), "2025-06-01T02:00:11.512Z");
/// # Ok::<(), rf_types::timestamp::TimestampError>(())
/// ```
pub fn parse_timestamp(value: &str) -> Result<Timestamp, TimestampError> {
    let trimmed = value.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(trimmed) {
        return Ok(t.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%z"] {
        if let Ok(t) = DateTime::parse_from_str(trimmed, format) {
            return Ok(t.with_timezone(&Utc));
        }
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(trimmed, format) {
            return Ok(t.and_utc());
        }
    }
    Err(TimestampError {
        value: value.to_owned(),
    })
}

/// Formats a timestamp as RFC 3339 with `Z`, with fractional seconds only
/// when they are non-zero.
pub fn format_timestamp(value: &Timestamp) -> String {
    value.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Serializes a [`Timestamp`] field (use with `#[serde(with = "rf_types::timestamp")]`).
pub fn serialize<S: Serializer>(value: &Timestamp, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&format_timestamp(value))
}

/// Deserializes a [`Timestamp`] field leniently (see the module docs).
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Timestamp, D::Error> {
    let value = String::deserialize(deserializer)?;
    parse_timestamp(&value).map_err(serde::de::Error::custom)
}

/// Serde helpers for `Option<Timestamp>` fields
/// (`#[serde(default, with = "rf_types::timestamp::option")]`).
pub mod option {
    use super::{Timestamp, format_timestamp, parse_timestamp};
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serializes an optional timestamp (`null` for `None`).
    pub fn serialize<S: Serializer>(
        value: &Option<Timestamp>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(t) => serializer.serialize_str(&format_timestamp(t)),
            None => serializer.serialize_none(),
        }
    }

    /// Deserializes an optional timestamp leniently.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Timestamp>, D::Error> {
        match Option::<String>::deserialize(deserializer)? {
            Some(value) => parse_timestamp(&value)
                .map(Some)
                .map_err(serde::de::Error::custom),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_formats_agree() {
        let expected = parse_timestamp("2025-06-01T02:00:11Z").expect("plain rfc 3339");
        for input in [
            "2025-06-01T02:00:11+00:00",
            "2025-06-01T04:00:11+02:00",
            "2025-05-31T21:00:11-05:00",
            "2025-06-01T02:00:11+0000",
            "2025-06-01 02:00:11Z",
            "2025-06-01T02:00:11",
            "2025-06-01 02:00:11",
            "2025-06-01t02:00:11z",
        ] {
            assert_eq!(parse_timestamp(input), Ok(expected), "{input}");
        }
    }

    #[test]
    fn fractional_seconds() {
        let t = parse_timestamp("2025-06-01T02:00:11.123456Z").expect("micros");
        assert_eq!(format_timestamp(&t), "2025-06-01T02:00:11.123456Z");
        let naive = parse_timestamp("2025-06-01T02:00:11.5").expect("naive fraction");
        assert_eq!(format_timestamp(&naive), "2025-06-01T02:00:11.500Z");
    }

    #[test]
    fn rejects_garbage_with_value_in_message() {
        let err = parse_timestamp("yesterday").expect_err("not a timestamp");
        assert!(err.to_string().contains("\"yesterday\""), "{err}");
        assert!(parse_timestamp("2025-13-01T00:00:00Z").is_err());
        assert!(parse_timestamp("").is_err());
    }
}
