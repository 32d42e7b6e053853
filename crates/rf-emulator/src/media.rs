//! Media validation by content: images through `imagesize` (plus a JPEG 2000
//! signature check), videos by container magic bytes; extension lists and the
//! 20 MiB image limit from the contract.

use rf_types::{MAX_IMAGE_BYTES, is_image_file_name, is_video_file_name};

/// Why one file was not ingested (reported in shard statuses and
/// `files-status` webhooks as `{type, file_name, reason}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileFailure {
    pub(crate) kind: &'static str,
    pub(crate) reason: String,
}

impl FileFailure {
    pub(crate) fn new(kind: &'static str, reason: impl Into<String>) -> Self {
        Self {
            kind,
            reason: reason.into(),
        }
    }

    pub(crate) fn too_large() -> Self {
        Self::new(
            "file-size-limit-exceeded",
            format!("Max size of single image is {MAX_IMAGE_BYTES}B."),
        )
    }
}

/// What an image's header says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ImageInfo {
    pub(crate) format: &'static str,
    pub(crate) width: u64,
    pub(crate) height: u64,
}

const JP2_SIGNATURE: &[u8] = &[
    0x00, 0x00, 0x00, 0x0C, 0x6A, 0x50, 0x20, 0x20, 0x0D, 0x0A, 0x87, 0x0A,
];

/// Longest file name accepted, in bytes: the longest name a file system
/// takes for one path component (`NAME_MAX` on Linux), since a client
/// saves each file under its name.
pub(crate) const MAX_NAME_BYTES: usize = 255;

/// Checks that a file name is a plain, flat name that prints as what it
/// is: no directories, no control characters (CR/LF could forge log lines
/// and headers), no bidirectional controls (they display a name reversed,
/// hiding its real extension), at most [`MAX_NAME_BYTES`] bytes.
pub(crate) fn check_name(name: &str) -> Result<(), FileFailure> {
    let invalid = |why: String| Err(FileFailure::new("invalid-file-name", why));
    if name.len() > MAX_NAME_BYTES {
        return invalid(format!(
            "file name is {} bytes long; at most {MAX_NAME_BYTES} bytes are allowed",
            name.len()
        ));
    }
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\\']) {
        return invalid(format!(
            "file name {name:?} must be a plain name without directories"
        ));
    }
    if let Some(c) = name.chars().find(|c| c.is_control()) {
        return invalid(format!(
            "file name {name:?} contains the control character U+{:04X}",
            u32::from(c)
        ));
    }
    if let Some(c) = name.chars().find(|c| is_bidi_control(*c)) {
        return invalid(format!(
            "file name {name:?} contains the bidirectional control character U+{:04X}, which would display it in another order than it is",
            u32::from(c)
        ));
    }
    Ok(())
}

/// The Unicode bidirectional formatting characters: embeddings and
/// overrides (U+202A–U+202E), isolates (U+2066–U+2069) and the marks
/// (U+200E, U+200F, U+061C).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// Validates an image by name and content.
pub(crate) fn check_image(name: &str, bytes: &[u8]) -> Result<ImageInfo, FileFailure> {
    check_image_head(name, bytes, bytes.len() as u64)
}

/// Validates an image from its first bytes (`head`, enough for the header)
/// and its total length.
pub(crate) fn check_image_head(
    name: &str,
    head: &[u8],
    len: u64,
) -> Result<ImageInfo, FileFailure> {
    let bytes = head;
    check_name(name)?;
    if !is_image_file_name(name) {
        return Err(FileFailure::new(
            "unsupported-file-type",
            format!(
                "{name:?} does not have an image extension (bmp, jpg, jpeg, jpe, jp2, png, webp, dib)"
            ),
        ));
    }
    if len > MAX_IMAGE_BYTES {
        return Err(FileFailure::too_large());
    }
    if len == 0 || bytes.is_empty() {
        return Err(FileFailure::new("empty-file", format!("{name:?} is empty")));
    }
    sniff_image(bytes).ok_or_else(|| {
        FileFailure::new(
            "invalid-image",
            format!(
                "{name:?} is not a decodable image (content is not jpeg, png, bmp, webp or jp2)"
            ),
        )
    })
}

/// Detects an image format and size from content.
pub(crate) fn sniff_image(bytes: &[u8]) -> Option<ImageInfo> {
    if bytes.starts_with(JP2_SIGNATURE) {
        return Some(ImageInfo {
            format: "jp2",
            width: 0,
            height: 0,
        });
    }
    let format = match imagesize::image_type(bytes).ok()? {
        imagesize::ImageType::Jpeg => "jpeg",
        imagesize::ImageType::Png => "png",
        imagesize::ImageType::Bmp => "bmp",
        imagesize::ImageType::Webp => "webp",
        _ => return None,
    };
    let size = imagesize::blob_size(bytes).ok()?;
    if size.width == 0 || size.height == 0 {
        return None;
    }
    Some(ImageInfo {
        format,
        width: size.width as u64,
        height: size.height as u64,
    })
}

/// Detects a video container from its first bytes.
pub(crate) fn sniff_video(head: &[u8]) -> Option<&'static str> {
    if head.len() >= 12 && &head[4..8] == b"ftyp" {
        let brand = &head[8..12];
        return Some(if brand.starts_with(b"qt") {
            "mov"
        } else if brand.starts_with(b"3g") {
            "3gp"
        } else {
            "mp4"
        });
    }
    if head.len() >= 12 && &head[0..4] == b"RIFF" && &head[8..12] == b"AVI " {
        return Some("avi");
    }
    if head.starts_with(&[0x1A, 0x45, 0xDF, 0xA3]) {
        return Some("matroska");
    }
    if head.starts_with(b"FLV") {
        return Some("flv");
    }
    if head.starts_with(&[0x30, 0x26, 0xB2, 0x75]) {
        return Some("asf");
    }
    if head.starts_with(&[0x00, 0x00, 0x01, 0xBA]) || head.starts_with(&[0x00, 0x00, 0x01, 0xB3]) {
        return Some("mpeg");
    }
    if head.starts_with(b"OggS") {
        return Some("ogg");
    }
    None
}

/// Validates a video file name (content is checked after upload).
pub(crate) fn check_video_name(name: &str) -> Result<(), FileFailure> {
    check_name(name)?;
    if !is_video_file_name(name) {
        return Err(FileFailure::new(
            "unsupported-file-type",
            format!("{name:?} does not have a video extension (mp4, mov, avi, mkv, webm, ...)"),
        ));
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A minimal valid PNG header of the given size (enough for sniffing).
    pub(crate) fn png(width: u32, height: u32, seed: u8) -> Vec<u8> {
        let mut v = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
        v.extend_from_slice(&13u32.to_be_bytes());
        v.extend_from_slice(b"IHDR");
        v.extend_from_slice(&width.to_be_bytes());
        v.extend_from_slice(&height.to_be_bytes());
        v.extend_from_slice(&[8, 2, 0, 0, 0]);
        v.extend_from_slice(&[0, 0, 0, 0]);
        v.extend_from_slice(&[seed; 16]);
        v
    }

    #[test]
    fn images_by_content() {
        let info = check_image("a.png", &png(3, 4, 0)).unwrap();
        assert_eq!((info.format, info.width, info.height), ("png", 3, 4));
        // jpg extension with png content is still an image
        assert!(check_image("a.jpg", &png(3, 4, 0)).is_ok());
        assert_eq!(
            check_image("a.png", b"hello").unwrap_err().kind,
            "invalid-image"
        );
        assert_eq!(check_image("a.png", b"").unwrap_err().kind, "empty-file");
        assert_eq!(
            check_image("a.txt", &png(1, 1, 0)).unwrap_err().kind,
            "unsupported-file-type"
        );
        assert_eq!(
            check_image("x/a.png", &png(1, 1, 0)).unwrap_err().kind,
            "invalid-file-name"
        );
        assert_eq!(
            check_image("..", &png(1, 1, 0)).unwrap_err().kind,
            "invalid-file-name"
        );
        let big = vec![0u8; MAX_IMAGE_BYTES as usize + 1];
        assert_eq!(
            check_image("a.png", &big).unwrap_err().kind,
            "file-size-limit-exceeded"
        );
    }

    #[test]
    fn names_with_controls_or_over_255_bytes_are_refused_with_their_reason() {
        let reason = |n: &str| check_name(n).unwrap_err().reason;
        assert!(check_name(&format!("{}.png", "a".repeat(251))).is_ok());
        let long = format!("{}.png", "a".repeat(252));
        assert!(
            reason(&long).contains("256 bytes long"),
            "{}",
            reason(&long)
        );
        // Multi-byte characters count in bytes.
        assert!(reason(&"\u{e9}".repeat(128)).contains("256 bytes"));
        for (name, code) in [
            ("a\r.png", "U+000D"),
            ("a\nb.png", "U+000A"),
            ("a\u{7f}.png", "U+007F"),
            ("a\u{85}.png", "U+0085"),
            ("a\0.png", "U+0000"),
        ] {
            let r = reason(name);
            assert!(r.contains("control character") && r.contains(code), "{r}");
        }
        for c in ['\u{202A}', '\u{202E}', '\u{2066}', '\u{2069}', '\u{200F}'] {
            let r = reason(&format!("invoice{c}gnp.exe"));
            assert!(r.contains("bidirectional"), "{r}");
        }
        assert!(reason("a/b.png").contains("without directories"));
        assert!(check_name("caf\u{e9} \u{4e2d}.png").is_ok());
    }

    #[test]
    fn videos_by_magic() {
        assert_eq!(sniff_video(b"\0\0\0\x18ftypisom\0\0\0\0"), Some("mp4"));
        assert_eq!(sniff_video(b"RIFF\0\0\0\0AVI LIST"), Some("avi"));
        assert_eq!(sniff_video(b"not a video"), None);
        assert!(check_video_name("clip.MP4").is_ok());
        assert!(check_video_name("clip.png").is_err());
    }
}
