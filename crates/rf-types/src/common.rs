//! Models shared by both APIs: the error body, the acknowledgement body, the
//! workspace lookup answer, "object or string" notifications and timestamps.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use crate::timestamp::Timestamp;

/// The error body both services send with a non-2xx status:
/// `{"error": "<human-readable message>"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiError {
    /// Human-readable message.
    pub error: String,
}

impl ApiError {
    /// An error body with this message.
    pub fn new(error: impl Into<String>) -> Self {
        Self {
            error: error.into(),
        }
    }
}

/// The acknowledgement body of calls whose answer carries nothing:
/// `{"status": "ok"}` (newest docs) or `{}` (older spec).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StatusOk {
    /// `"ok"` when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

impl StatusOk {
    /// `{"status": "ok"}`.
    pub fn ok() -> Self {
        Self {
            status: Some("ok".to_owned()),
        }
    }
}

/// The answer of the workspace lookup (`GET {base}/?api_key=...`). Other
/// fields of that answer (`welcome`, `docs`, ...) are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkspaceInfo {
    /// The workspace slug the API key belongs to.
    pub workspace: String,
}

/// A status message that the API sends either as a JSON object or as a plain
/// string (`notification` of stages and tasks, `lastNotification` of jobs).
///
/// `Display` shows text as-is and an object as compact JSON.
///
/// ```
/// use rf_types::Notification;
///
/// let text: Notification = serde_json::from_str(r#""3 of 12 tasks done""#)?;
/// assert_eq!(text.to_string(), "3 of 12 tasks done");
/// let object: Notification = serde_json::from_str(r#"{"message": "done"}"#)?;
/// assert_eq!(object.to_string(), r#"{"message":"done"}"#);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Notification {
    /// A JSON object.
    Object(Map<String, Value>),
    /// A plain string.
    Text(String),
}

impl Notification {
    /// A text notification.
    pub fn text(text: impl Into<String>) -> Self {
        Self::Text(text.into())
    }

    /// The text, when this is a text notification.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Self::Text(text) => Some(text),
            Self::Object(_) => None,
        }
    }

    /// The object, when this is an object notification.
    pub fn as_object(&self) -> Option<&Map<String, Value>> {
        match self {
            Self::Object(map) => Some(map),
            Self::Text(_) => None,
        }
    }
}

impl Default for Notification {
    /// An empty text (`""`), what the emulator sends when there is nothing to say.
    fn default() -> Self {
        Self::Text(String::new())
    }
}

impl From<&str> for Notification {
    fn from(text: &str) -> Self {
        Self::Text(text.to_owned())
    }
}

impl From<String> for Notification {
    fn from(text: String) -> Self {
        Self::Text(text)
    }
}

impl From<Map<String, Value>> for Notification {
    fn from(map: Map<String, Value>) -> Self {
        Self::Object(map)
    }
}

impl fmt::Display for Notification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Text(text) => f.write_str(text),
            Self::Object(map) => {
                // A map of JSON values always serializes.
                let json = serde_json::to_string(map).map_err(|_| fmt::Error)?;
                f.write_str(&json)
            }
        }
    }
}
