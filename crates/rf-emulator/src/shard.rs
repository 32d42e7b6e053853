//! Tar shard indexing (synchronous; run it in `spawn_blocking`).
//!
//! A shard is an uncompressed tar of flat image members plus an optional
//! `notification_config.json`. Images are not copied: each indexed file is
//! recorded as a byte range of the stored tar. Every member is validated by
//! content (and the 20 MiB limit); problems become per-file failures, a broken
//! archive becomes a shard-level error. Nothing here panics on hostile input.

use std::io::Read;

use rf_types::{MAX_IMAGE_BYTES, NOTIFICATION_CONFIG_MEMBER, ShardNotificationConfig};

use crate::media::{FileFailure, check_image, check_name};

/// Most members looked at in one shard; the rest is refused as one error.
pub(crate) const MAX_MEMBERS: usize = 100_000;
/// Most per-file failures kept with details (the count is always exact).
pub(crate) const MAX_FAILURE_DETAILS: usize = 1_000;

/// One image found in a shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IndexedFile {
    pub(crate) name: String,
    pub(crate) offset: u64,
    pub(crate) len: u64,
}

/// The result of indexing one shard.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct ShardIndex {
    pub(crate) files: Vec<IndexedFile>,
    /// Failed members, details capped at [`MAX_FAILURE_DETAILS`].
    pub(crate) failed: Vec<(String, FileFailure)>,
    pub(crate) failed_count: u64,
    pub(crate) notification: Option<ShardNotificationConfig>,
    /// Set when the archive itself is unreadable; then `files` is empty.
    pub(crate) error: Option<String>,
}

impl ShardIndex {
    fn fail(&mut self, name: String, failure: FileFailure) {
        self.failed_count += 1;
        if self.failed.len() < MAX_FAILURE_DETAILS {
            self.failed.push((name, failure));
        }
    }

    /// Members that count as objects of the shard (images and failed files).
    pub(crate) fn objects(&self) -> u64 {
        self.files.len() as u64 + self.failed_count
    }
}

/// Indexes a tar read from `reader`, which must start at the archive's first byte.
pub(crate) fn index_tar<R: Read>(reader: R) -> ShardIndex {
    let mut index = ShardIndex::default();
    match walk(reader, &mut index) {
        Ok(()) => index,
        Err(e) => ShardIndex {
            error: Some(e),
            ..ShardIndex::default()
        },
    }
}

fn walk<R: Read>(reader: R, index: &mut ShardIndex) -> Result<(), String> {
    let mut archive = tar::Archive::new(reader);
    let entries = archive
        .entries()
        .map_err(|e| format!("not a tar archive: {e}"))?;
    let mut buf = Vec::new();
    for (seen, entry) in entries.enumerate() {
        let mut entry = entry.map_err(|e| format!("malformed tar archive: {e}"))?;
        if seen + 1 > MAX_MEMBERS {
            return Err(format!("shard has more than {MAX_MEMBERS} members"));
        }
        let Some(name) = member_name(&entry, index) else {
            continue;
        };
        if name == NOTIFICATION_CONFIG_MEMBER {
            read_notification_config(&mut entry, name, index, &mut buf)?;
        } else {
            read_image(&mut entry, name, index, &mut buf)?;
        }
    }
    Ok(())
}

/// The name of a member to index: a regular file with a valid name (else
/// it is recorded as failed, or skipped for extended headers).
fn member_name<R: Read>(entry: &tar::Entry<'_, R>, index: &mut ShardIndex) -> Option<String> {
    let raw_name = entry.path_bytes().into_owned();
    let name = String::from_utf8_lossy(&raw_name).into_owned();
    let name = name.strip_prefix("./").unwrap_or(&name).to_string();
    match entry.header().entry_type() {
        tar::EntryType::XGlobalHeader | tar::EntryType::XHeader => return None,
        tar::EntryType::Regular | tar::EntryType::Continuous => {}
        other => {
            let reason = format!(
                "tar member {name:?} is a {other:?} entry, only regular files are ingested"
            );
            index.fail(name, FileFailure::new("unsupported-entry", reason));
            return None;
        }
    }
    if std::str::from_utf8(&raw_name).is_err() {
        let failure = FileFailure::new("invalid-file-name", "tar member name is not valid utf-8");
        index.fail(name, failure);
        return None;
    }
    if let Err(f) = check_name(&name) {
        index.fail(name, f);
        return None;
    }
    Some(name)
}

/// Reads the shard's notification config member.
fn read_notification_config<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    name: String,
    index: &mut ShardIndex,
    buf: &mut Vec<u8>,
) -> Result<(), String> {
    buf.clear();
    if entry.size() > 64 * 1024 {
        let failure = FileFailure::new(
            "invalid-notification-config",
            "notification config is larger than 64 KiB",
        );
        index.fail(name, failure);
        return Ok(());
    }
    entry
        .read_to_end(buf)
        .map_err(|e| format!("malformed tar archive: {e}"))?;
    match serde_json::from_slice::<ShardNotificationConfig>(buf) {
        Ok(c) => index.notification = Some(c),
        Err(e) => index.fail(
            name,
            FileFailure::new(
                "invalid-notification-config",
                format!("notification_config.json is not valid: {e}"),
            ),
        ),
    }
    Ok(())
}

/// Reads and checks an image member; a good one is indexed at its offset.
fn read_image<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    name: String,
    index: &mut ShardIndex,
    buf: &mut Vec<u8>,
) -> Result<(), String> {
    let size = entry.size();
    let offset = entry.raw_file_position();
    if size > MAX_IMAGE_BYTES {
        index.fail(name, FileFailure::too_large());
        return Ok(());
    }
    buf.clear();
    entry
        .read_to_end(buf)
        .map_err(|e| format!("malformed tar archive (member {name:?} is truncated): {e}"))?;
    if buf.len() as u64 != size {
        return Err(format!(
            "malformed tar archive: member {name:?} is truncated"
        ));
    }
    match check_image(&name, buf) {
        Ok(_) => index.files.push(IndexedFile {
            name,
            offset,
            len: size,
        }),
        Err(f) => index.fail(name, f),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::tests::png;
    use proptest::prelude::*;

    fn tar_of(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in members {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, name, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn indexes_images_and_config() {
        let a = png(2, 2, 1);
        let b = png(5, 7, 2);
        let cfg = br#"{"ingestId":"i1","notificationsURL":"http://127.0.0.1:9/h"}"#;
        let tar = tar_of(&[
            ("a.png", &a),
            ("b.jpg", &b),
            ("notification_config.json", cfg),
            ("c.txt", b"x"),
            ("d.png", b"nope"),
        ]);
        let idx = index_tar(&tar[..]);
        assert_eq!(idx.error, None);
        assert_eq!(idx.files.len(), 2);
        let f = &idx.files[1];
        assert_eq!(&tar[f.offset as usize..(f.offset + f.len) as usize], &b[..]);
        assert_eq!(idx.failed_count, 2);
        assert_eq!(idx.objects(), 4);
        assert_eq!(
            idx.notification.as_ref().unwrap().notifications_url,
            "http://127.0.0.1:9/h"
        );
    }

    #[test]
    fn path_like_names_fail() {
        let a = png(2, 2, 1);
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(a.len() as u64);
        h.set_cksum();
        b.append_data(&mut h, "dir/a.png", &a[..]).unwrap();
        let tar = b.into_inner().unwrap();
        let idx = index_tar(&tar[..]);
        assert!(idx.files.is_empty());
        assert_eq!(idx.failed[0].1.kind, "invalid-file-name");
    }

    #[test]
    fn garbage_is_an_archive_error() {
        let idx = index_tar(&[7u8; 1500][..]);
        assert!(idx.error.is_some());
        let tar = tar_of(&[("a.png", &png(1, 1, 0))]);
        let idx = index_tar(&tar[..700]);
        assert!(idx.error.is_some(), "{idx:?}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn never_panics_on_arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..4096)) {
            let _ = index_tar(&data[..]);
        }

        #[test]
        fn never_panics_on_mutated_tars(pos in 0usize..2048, byte in any::<u8>(), cut in 0usize..2048) {
            let mut tar = tar_of(&[("a.png", &png(2, 2, 1)), ("b.png", &png(3, 3, 2))]);
            let p = pos % tar.len();
            tar[p] = byte;
            tar.truncate(cut.max(1).min(tar.len()));
            let idx = index_tar(&tar[..]);
            for f in &idx.files {
                prop_assert!(f.offset + f.len <= tar.len() as u64);
            }
        }
    }
}
