//! Data Staging API models: batches, parts, files, shards, signed upload URLs,
//! references ingest requests and responses, the shard
//! `notification_config.json`, and the client-side media rules (size limits,
//! file extensions).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ids::{IngestId, PartName, ShardId};
use crate::timestamp::{self, Timestamp};

open_enum! {
    /// The kind of a staging batch (`batchType`, and `partType` of parts).
    pub enum BatchType {
        /// `simple-batch`: items ingested one by one.
        SimpleBatch = "simple-batch",
        /// `sharded-batch`: bulk (tar shards) or references ingest.
        ShardedBatch = "sharded-batch",
        /// `multipart-batch`: created by the system, e.g. job outputs.
        MultipartBatch = "multipart-batch",
    }
}

open_enum! {
    /// What a batch, part or file holds (`batchContentType`, `contentType`,
    /// `nestedContentType`).
    pub enum ContentType {
        /// `images`.
        Images = "images",
        /// `videos`.
        Videos = "videos",
        /// `metadata`.
        Metadata = "metadata",
        /// `archives`.
        Archives = "archives",
        /// `mixed`.
        Mixed = "mixed",
    }
}

open_enum! {
    /// A webhook category of references ingest (`notificationCategories[]`).
    pub enum NotificationCategory {
        /// `ingest-status`: the overall ingest result (the default).
        IngestStatus = "ingest-status",
        /// `files-status`: per-file results, per shard.
        FilesStatus = "files-status",
    }
}

/// Metadata of one staging batch (`GET .../batches/{batchId}`, list batches).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchMetadata {
    /// Human-readable name.
    pub display_name: String,
    /// The batch ID. A plain string: output batches are named by the server.
    pub batch_id: String,
    /// Simple, sharded or multipart.
    pub batch_type: BatchType,
    /// What the batch holds.
    pub batch_content_type: ContentType,
    /// When the batch was created.
    #[serde(with = "timestamp")]
    pub created_date: Timestamp,
    /// When the batch expires (staging is ephemeral storage).
    #[serde(with = "timestamp")]
    pub expiry_date: Timestamp,
}

/// Answer of `GET .../batches/{batchId}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GetBatchResponse {
    /// The batch.
    pub batch: BatchMetadata,
}

/// Answer of `GET .../batches` (one page).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListBatchesResponse {
    /// Batches on this page.
    pub batches: Vec<BatchMetadata>,
    /// Token of the next page; `None` on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

/// Answer of `GET .../batches/{batchId}/count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountResponse {
    /// Items ingested and indexed so far.
    pub count: u64,
}

/// One part of a multipart batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchPart {
    /// Part name: the `partName` of count, list and job input.
    pub part_name: PartName,
    /// How the part behaves (batch-type strings).
    pub part_type: BatchType,
    /// What the part holds.
    pub content_type: ContentType,
    /// Free-form description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part_description: Option<String>,
    /// Content type inside archives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nested_content_type: Option<ContentType>,
}

/// Answer of `GET .../batches/{batchId}/parts` (not paginated).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListPartsResponse {
    /// Every part of the batch.
    pub batch_parts: Vec<BatchPart>,
}

/// One file of a batch listing, with its pre-signed download URL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileMetadata {
    /// Pre-signed `GET` URL (wire name `downloadURL`).
    #[serde(rename = "downloadURL")]
    pub download_url: String,
    /// File name (flat, no `/`).
    pub file_name: String,
    /// Part of a multipart batch the file belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part_name: Option<PartName>,
    /// Shard of a sharded batch the file belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard_id: Option<ShardId>,
    /// What the file is.
    pub content_type: ContentType,
    /// Content type inside an archive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nested_content_type: Option<ContentType>,
}

/// Answer of `GET .../batches/{batchId}/list` (one page).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListFilesResponse {
    /// Files on this page.
    pub files_metadata: Vec<FileMetadata>,
    /// Token of the next page; `None` on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

/// Ingest status of one shard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShardStatus {
    /// The shard.
    pub shard_id: ShardId,
    /// Free-form status label.
    pub status_name: String,
    /// Severity-like class (`info`, or a value containing `error`).
    pub status_type: String,
    /// Latest status change.
    #[serde(with = "timestamp")]
    pub event_timestamp: Timestamp,
    /// Number of objects in the shard.
    pub shard_objects_count: u64,
    /// Free-form details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_metadata: Option<serde_json::Value>,
}

/// Answer of `GET .../batches/{batchId}/shards` (one page).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListShardsResponse {
    /// Shards on this page.
    pub shards: Vec<ShardStatus>,
    /// Token of the next page; `None` on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

/// Where and how to `PUT` an upload (video or tar shard).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedUrlDetails {
    /// Target of the `PUT` (wire name `uploadURL`).
    #[serde(rename = "uploadURL")]
    pub upload_url: String,
    /// Headers to send unchanged on the `PUT` (may be empty).
    #[serde(rename = "extensionHeaders", default)]
    pub extension_headers: BTreeMap<String, String>,
}

/// Answer of `POST .../upload/video` and `POST .../bulk-upload/image-files`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedUrlResponse {
    /// The upload target (wire name `signedURLDetails`).
    #[serde(rename = "signedURLDetails")]
    pub signed_url_details: SignedUrlDetails,
}

/// One media reference: a line of a references JSONL file, or an element of
/// `imageReferences` / `videoReferences`. Extra keys are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reference {
    /// Unique file name in the batch.
    pub name: String,
    /// HTTPS URL the server downloads.
    pub url: String,
}

impl Reference {
    /// A reference named `name` at `url`.
    pub fn new(name: impl Into<String>, url: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            url: url.into(),
        }
    }
}

/// The references of an ingest request: inline, or a URL of a JSONL file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReferencesSource {
    /// References in the body (`imageReferences` / `videoReferences`).
    Inline(Vec<Reference>),
    /// HTTPS URL of a JSONL references file (`imageReferencesURL` /
    /// `videoReferencesURL`).
    Url(String),
}

/// The fields shared by both references ingest bodies (the variant-specific
/// reference keys are taken out before these are read).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReferencesIngestCommon {
    #[serde(default)]
    ingest_id: Option<IngestId>,
    #[serde(rename = "notificationsURL", default)]
    notifications_url: Option<String>,
    #[serde(default)]
    notification_categories: Option<Vec<NotificationCategory>>,
}

/// Reads an optional key taken out of a JSON object (`null` counts as absent).
fn take_optional<T: serde::de::DeserializeOwned>(
    map: &mut serde_json::Map<String, serde_json::Value>,
    key: &str,
) -> Result<Option<T>, String> {
    match map.remove(key) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(value) => serde_json::from_value(value)
            .map(Some)
            .map_err(|e| format!("invalid `{key}`: {e}")),
    }
}

/// Why a references ingest body could not be read.
fn references_source(
    inline: Option<Vec<Reference>>,
    url: Option<String>,
    inline_key: &str,
    url_key: &str,
) -> Result<ReferencesSource, String> {
    match (inline, url) {
        (Some(refs), None) => Ok(ReferencesSource::Inline(refs)),
        (None, Some(url)) => Ok(ReferencesSource::Url(url)),
        (Some(_), Some(_)) => Err(format!(
            "invalid references ingest body: give either `{inline_key}` or `{url_key}`, not both"
        )),
        (None, None) => Err(format!(
            "invalid references ingest body: missing `{inline_key}` or `{url_key}`"
        )),
    }
}

macro_rules! references_ingest_request {
    ($(#[$meta:meta])* $name:ident, $inline:literal, $url:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name {
            #[doc = concat!("The references: `", $inline, "` (inline) or `", $url, "` (JSONL file URL).")]
            pub source: ReferencesSource,
            /// Client-chosen ingest ID; the server assigns one when absent.
            pub ingest_id: Option<IngestId>,
            /// Webhook URL (wire name `notificationsURL`).
            pub notifications_url: Option<String>,
            /// Webhook categories; the server default is `ingest-status`.
            pub notification_categories: Option<Vec<NotificationCategory>>,
        }

        impl $name {
            /// A request with only the references set.
            pub fn new(source: ReferencesSource) -> Self {
                Self {
                    source,
                    ingest_id: None,
                    notifications_url: None,
                    notification_categories: None,
                }
            }

            /// A request with inline references.
            pub fn inline(references: Vec<Reference>) -> Self {
                Self::new(ReferencesSource::Inline(references))
            }

            /// A request pointing at a JSONL references file.
            pub fn from_url(url: impl Into<String>) -> Self {
                Self::new(ReferencesSource::Url(url.into()))
            }

            fn to_wire(&self) -> serde_json::Map<String, serde_json::Value> {
                let mut map = serde_json::Map::new();
                match &self.source {
                    ReferencesSource::Inline(refs) => {
                        map.insert(
                            $inline.to_owned(),
                            serde_json::Value::Array(
                                refs.iter()
                                    .map(|r| {
                                        serde_json::json!({"name": r.name, "url": r.url})
                                    })
                                    .collect(),
                            ),
                        );
                    }
                    ReferencesSource::Url(url) => {
                        map.insert($url.to_owned(), serde_json::Value::String(url.clone()));
                    }
                }
                if let Some(id) = &self.ingest_id {
                    map.insert("ingestId".to_owned(), serde_json::Value::String(id.as_str().to_owned()));
                }
                if let Some(url) = &self.notifications_url {
                    map.insert("notificationsURL".to_owned(), serde_json::Value::String(url.clone()));
                }
                if let Some(categories) = &self.notification_categories {
                    map.insert(
                        "notificationCategories".to_owned(),
                        serde_json::Value::Array(
                            categories
                                .iter()
                                .map(|c| serde_json::Value::String(c.as_str().to_owned()))
                                .collect(),
                        ),
                    );
                }
                map
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                self.to_wire().serialize(serializer)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                use serde::de::Error;
                let mut map =
                    serde_json::Map::<String, serde_json::Value>::deserialize(deserializer)?;
                let inline: Option<Vec<Reference>> =
                    take_optional(&mut map, $inline).map_err(D::Error::custom)?;
                let url: Option<String> = take_optional(&mut map, $url).map_err(D::Error::custom)?;
                let source =
                    references_source(inline, url, $inline, $url).map_err(D::Error::custom)?;
                let common: ReferencesIngestCommon =
                    serde_json::from_value(serde_json::Value::Object(map))
                        .map_err(D::Error::custom)?;
                Ok(Self {
                    source,
                    ingest_id: common.ingest_id,
                    notifications_url: common.notifications_url,
                    notification_categories: common.notification_categories,
                })
            }
        }
    };
}

references_ingest_request!(
    /// Body of `POST .../bulk-upload/image-references`.
    ///
    /// ```
    /// use rf_types::{ImageReferencesIngestRequest, Reference};
    ///
    /// let mut request = ImageReferencesIngestRequest::inline(vec![Reference::new(
    ///     "a.jpg",
    ///     "https://bucket.example/a.jpg",
    /// )]);
    /// request.ingest_id = Some("nightly-1".into());
    /// let json = serde_json::to_value(&request)?;
    /// assert_eq!(json["imageReferences"][0]["name"], "a.jpg");
    /// assert_eq!(json["ingestId"], "nightly-1");
    /// assert!(json.get("notificationsURL").is_none());
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    ImageReferencesIngestRequest,
    "imageReferences",
    "imageReferencesURL"
);

references_ingest_request!(
    /// Body of `POST .../bulk-upload/video-references`.
    VideoReferencesIngestRequest,
    "videoReferences",
    "videoReferencesURL"
);

/// Answer of `POST .../bulk-upload/image-references`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageReferencesIngestResponse {
    /// The echoed or assigned ingest ID.
    pub ingest_id: IngestId,
    /// Shards the server will create for this ingest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard_ids: Option<Vec<ShardId>>,
    /// `true` when the request was recognised as a repeat (nothing ingested).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicated: Option<bool>,
}

/// Answer of `POST .../bulk-upload/video-references`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VideoReferencesIngestResponse {
    /// The echoed or assigned ingest ID.
    pub ingest_id: IngestId,
    /// `true` when the request was recognised as a repeat (nothing ingested).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicated: Option<bool>,
}

/// Name of the optional tar member that registers a webhook for a shard.
pub const NOTIFICATION_CONFIG_MEMBER: &str = "notification_config.json";

/// Content of the [`NOTIFICATION_CONFIG_MEMBER`] of a bulk image shard:
/// `{"ingestId": ..., "notificationsURL": ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardNotificationConfig {
    /// The ingest all shards of one run share.
    #[serde(rename = "ingestId")]
    pub ingest_id: IngestId,
    /// Webhook URL (wire name `notificationsURL`).
    #[serde(rename = "notificationsURL")]
    pub notifications_url: String,
}

/// Largest image the service accepts, in bytes (20 MiB).
pub const MAX_IMAGE_BYTES: u64 = 20_971_520;

/// Most images per tar shard the service documents.
pub const MAX_IMAGES_PER_SHARD: usize = 500;

/// Image file extensions (lower case, no dot) the official client picks up.
pub const IMAGE_EXTENSIONS: &[&str] = &["bmp", "dib", "jpeg", "jpg", "jpe", "jp2", "png", "webp"];

/// Video file extensions (lower case, no dot) the official client picks up.
pub const VIDEO_EXTENSIONS: &[&str] = &[
    "mp4", "m4a", "m4p", "m4b", "m4r", "m4v", "avi", "mov", "mkv", "flv", "wmv", "mpeg", "mpg",
    "3gp", "webm", "ogg",
];

/// Whether `name`'s extension (after the last `.`) is in `extensions`,
/// ignoring case.
fn has_extension(name: &str, extensions: &[&str]) -> bool {
    match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() && !stem.ends_with('/') => extensions
            .iter()
            .any(|known| known.eq_ignore_ascii_case(ext)),
        _ => false,
    }
}

/// Whether a file name has an image extension ([`IMAGE_EXTENSIONS`],
/// case-insensitive).
///
/// ```
/// assert!(rf_types::is_image_file_name("cam1_0001.JPG"));
/// assert!(!rf_types::is_image_file_name("notes.txt"));
/// assert!(!rf_types::is_image_file_name("jpg"));
/// ```
pub fn is_image_file_name(name: &str) -> bool {
    has_extension(name, IMAGE_EXTENSIONS)
}

/// Whether a file name has a video extension ([`VIDEO_EXTENSIONS`],
/// case-insensitive).
pub fn is_video_file_name(name: &str) -> bool {
    has_extension(name, VIDEO_EXTENSIONS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions() {
        assert!(is_image_file_name("a.jpeg"));
        assert!(is_image_file_name("dir.v2/a.Png"));
        assert!(!is_image_file_name(".png"));
        assert!(!is_image_file_name("a.mp4"));
        assert!(is_video_file_name("clip.MP4"));
        assert!(is_video_file_name("clip.3gp"));
        assert!(!is_video_file_name("clip"));
        assert!(!is_video_file_name("clip.mp4.txt"));
    }
}
