//! Thumbnails of the sampled images: decoded with the `image` crate (JPEG
//! and PNG), shrunk to [`THUMB_SIDE`] on the longest side and embedded as
//! JPEG `data:` URIs. Only the gallery's sample gets one, so the page grows
//! with `--sample`, never with the number of results.

use std::io::Cursor;
use std::path::Path;

use base64::Engine as _;
use image::codecs::jpeg::JpegEncoder;
use image::{ImageReader, Limits};

/// Longest side of a thumbnail, in pixels.
pub const THUMB_SIDE: u32 = 256;
/// JPEG quality of thumbnails (small files; boxes are drawn by the page).
const QUALITY: u8 = 75;
/// Most memory one decode may take; a larger image is shown without its
/// picture (its boxes still are).
const MAX_DECODE_BYTES: u64 = 96 * 1024 * 1024;

/// An embedded thumbnail.
#[derive(Debug, Clone)]
pub(crate) struct Thumb {
    /// `data:image/jpeg;base64,...`
    pub(crate) uri: String,
    /// The source's size in pixels.
    pub(crate) source: (u32, u32),
}

/// Why an image has no thumbnail (shown on its card).
#[derive(Debug, thiserror::Error)]
pub(crate) enum ThumbError {
    /// It cannot be opened.
    #[error("cannot open: {0}")]
    Open(#[from] std::io::Error),
    /// It cannot be decoded.
    #[error("cannot decode: {0}")]
    Decode(#[from] image::ImageError),
}

/// The thumbnail of the image at `path`.
pub(crate) fn thumbnail(path: &Path) -> Result<Thumb, ThumbError> {
    let mut reader = ImageReader::open(path)?.with_guessed_format()?;
    let mut limits = Limits::default();
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    let img = reader.decode()?;
    let source = (img.width(), img.height());
    let small = if source.0.max(source.1) > THUMB_SIDE {
        img.thumbnail(THUMB_SIDE, THUMB_SIDE)
    } else {
        img
    };
    let rgb = small.into_rgb8();
    let mut jpeg = Vec::with_capacity(16 * 1024);
    JpegEncoder::new_with_quality(Cursor::new(&mut jpeg), QUALITY).encode_image(&rgb)?;
    let mut uri = String::from("data:image/jpeg;base64,");
    base64::engine::general_purpose::STANDARD.encode_string(&jpeg, &mut uri);
    Ok(Thumb { uri, source })
}

/// The size of a thumbnail of an image of `source` size: the longest side
/// [`THUMB_SIDE`] (or the source's, when it is smaller).
pub(crate) fn fit(source: (f64, f64)) -> (f64, f64) {
    let (w, h) = source;
    let side = f64::from(THUMB_SIDE);
    let scale = (side / w.max(h)).min(1.0);
    ((w * scale).round().max(1.0), (h * scale).round().max(1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_becomes_small_jpeg() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.png");
        image::RgbImage::from_pixel(640, 320, image::Rgb([200, 10, 10]))
            .save(&p)
            .unwrap();
        let t = thumbnail(&p).unwrap();
        assert_eq!(t.source, (640, 320));
        assert!(t.uri.starts_with("data:image/jpeg;base64,"));
        assert!(t.uri.len() < 20_000);
        assert_eq!(fit((640.0, 320.0)), (256.0, 128.0));
        assert_eq!(fit((100.0, 50.0)), (100.0, 50.0));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.jpg");
        std::fs::write(&p, b"\xff\xd8\xff garbage").unwrap();
        assert!(matches!(thumbnail(&p), Err(ThumbError::Decode(_))));
        assert!(matches!(
            thumbnail(&dir.path().join("none.jpg")),
            Err(ThumbError::Open(_))
        ));
    }
}
