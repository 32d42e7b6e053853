//! Built-in workflows the emulator runs locally in place of Roboflow
//! Workflows. Every result is computed from the real bytes of the input, so
//! the same input always gives the same output.
//!
//! | id | input | output per file |
//! |----|-------|-----------------|
//! | `image-properties` | image | `width`, `height`, `format`, `channels`, `mean_colour` (per channel, JPEG and PNG), `bytes`, `sha256` |
//! | `color-blobs` | image (JPEG, PNG) | Roboflow object-detection predictions for regions that differ in colour from the background: `{"image": {"width", "height"}, "predictions": [{x, y, width, height, confidence, class, class_id, detection_id}]}` |
//! | `mock-detector` | image | predictions of the same shape derived from the bytes' hash (any image format) |
//! | `video-properties` (alias `video-frames`) | video | container, `bytes`, `sha256`, MP4/MOV `duration_seconds`, `width`, `height`, `frame_count`, `fps`, and the sampled `frames` at `maxVideoFPS` |
//!
//! ```
//! use rf_emulator::workflows::Workflow;
//! let wf = Workflow::lookup("mock-detector").unwrap();
//! assert!(wf.accepts_images());
//! assert!(Workflow::lookup("no-such-workflow").is_none());
//! ```

use std::io::{Read, Seek, SeekFrom};

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

/// A built-in workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Workflow {
    /// `image-properties`: header facts and a content hash of each image.
    ImageProperties,
    /// `mock-detector`: deterministic, hash-derived detector predictions.
    MockDetector,
    /// `color-blobs`: a real colour-region detector on decoded pixels.
    ColorBlobs,
    /// `video-properties` / `video-frames`: container facts and sampled frames.
    VideoProperties,
}

/// Why a workflow could not process one input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct WorkflowError(pub String);

/// Workflow ids the emulator knows (aliases included).
pub const BUILT_IN: &[&str] = &[
    "image-properties",
    "mock-detector",
    "color-blobs",
    "video-properties",
    "video-frames",
];

/// `mock-detector` class names.
pub const DETECTOR_CLASSES: &[&str] = &["red-blob", "green-blob", "blue-blob"];

/// `color-blobs` class names (by hue; `gray-blob` for unsaturated regions).
pub const COLOR_BLOB_CLASSES: &[&str] = crate::pixels::BLOB_CLASSES;

/// Most predictions `color-blobs` reports per image.
pub const MAX_BLOBS: usize = 100;

impl Workflow {
    /// Finds a built-in workflow by id.
    pub fn lookup(id: &str) -> Option<Self> {
        match id {
            "image-properties" => Some(Self::ImageProperties),
            "mock-detector" => Some(Self::MockDetector),
            "color-blobs" => Some(Self::ColorBlobs),
            "video-properties" | "video-frames" => Some(Self::VideoProperties),
            _ => None,
        }
    }

    /// The canonical id.
    pub fn id(self) -> &'static str {
        match self {
            Self::ImageProperties => "image-properties",
            Self::MockDetector => "mock-detector",
            Self::ColorBlobs => "color-blobs",
            Self::VideoProperties => "video-properties",
        }
    }

    /// Whether it runs on images.
    pub fn accepts_images(self) -> bool {
        !matches!(self, Self::VideoProperties)
    }

    /// Whether it runs on videos (only `video-properties` does).
    pub fn accepts_videos(self) -> bool {
        matches!(self, Self::VideoProperties)
    }

    /// Runs an image workflow over one image's bytes.
    pub fn run_image(
        self,
        bytes: &[u8],
        parameters: &Map<String, Value>,
    ) -> Result<Map<String, Value>, WorkflowError> {
        match self {
            Self::ImageProperties => image_properties(bytes),
            Self::MockDetector => detect(bytes, parameters),
            Self::ColorBlobs => color_blobs(bytes, parameters),
            Self::VideoProperties => Err(WorkflowError(
                "video-properties needs a video input, not an image".into(),
            )),
        }
    }

    /// Runs a video workflow over a video read from `reader` (`len` bytes
    /// from its current position).
    pub fn run_video<R: Read + Seek>(
        self,
        reader: &mut R,
        len: u64,
        max_fps: Option<f64>,
    ) -> Result<Map<String, Value>, WorkflowError> {
        match self {
            Self::VideoProperties => video_properties(reader, len, max_fps),
            other => Err(WorkflowError(format!(
                "{} needs an image input, not a video",
                other.id()
            ))),
        }
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn channels(bytes: &[u8]) -> Option<u64> {
    if bytes.starts_with(b"\x89PNG") && bytes.len() > 25 {
        return match bytes[25] {
            0 => Some(1),
            2 | 3 => Some(3),
            4 => Some(2),
            6 => Some(4),
            _ => None,
        };
    }
    if bytes.starts_with(&[0xFF, 0xD8]) {
        // walk JPEG segments to the first SOFn marker
        let mut i = 2usize;
        while i + 9 < bytes.len() {
            if bytes[i] != 0xFF {
                return None;
            }
            let marker = bytes[i + 1];
            let seg = u16::from_be_bytes([bytes[i + 2], bytes[i + 3]]) as usize;
            if matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC) {
                return Some(u64::from(bytes[i + 9]));
            }
            i += 2 + seg;
        }
    }
    None
}

fn image_size(bytes: &[u8]) -> Result<(u64, u64, &'static str), WorkflowError> {
    let info = crate::media::sniff_image(bytes)
        .ok_or_else(|| WorkflowError("input is not a decodable image".into()))?;
    Ok((info.width, info.height, info.format))
}

/// `image-properties` over one image. JPEG and PNG are decoded (a broken
/// one is an error) and get their `mean_colour`; other formats report
/// header facts only.
pub fn image_properties(bytes: &[u8]) -> Result<Map<String, Value>, WorkflowError> {
    let (width, height, format) = image_size(bytes)?;
    let raster = crate::pixels::decode(bytes)
        .map_err(|e| WorkflowError(format!("image cannot be decoded: {e}")))?;
    let mut m = Map::new();
    m.insert("width".into(), width.into());
    m.insert("height".into(), height.into());
    m.insert("format".into(), format.into());
    let channels = raster
        .as_ref()
        .map(|r| u64::from(r.channels))
        .or_else(|| channels(bytes));
    m.insert(
        "channels".into(),
        channels.map(Value::from).unwrap_or(Value::Null),
    );
    m.insert(
        "mean_colour".into(),
        raster.map(|r| json!(r.mean)).unwrap_or(Value::Null),
    );
    m.insert("bytes".into(), (bytes.len() as u64).into());
    m.insert("sha256".into(), sha256_hex(bytes).into());
    Ok(m)
}

/// `color-blobs` over one image: regions whose colour differs from the
/// background, largest first. `workflowParameters.confidence` drops weaker
/// ones.
pub fn color_blobs(
    bytes: &[u8],
    parameters: &Map<String, Value>,
) -> Result<Map<String, Value>, WorkflowError> {
    let raster = crate::pixels::decode(bytes)
        .map_err(|e| WorkflowError(format!("image cannot be decoded: {e}")))?
        .ok_or_else(|| WorkflowError("color-blobs decodes JPEG and PNG images only".into()))?;
    let threshold = parameters
        .get("confidence")
        .and_then(Value::as_f64)
        .unwrap_or(0.0);
    let digest = Sha256::digest(bytes);
    let id = hex::encode(&digest[..8]);
    let predictions: Vec<Value> = crate::pixels::blobs(&raster, MAX_BLOBS)
        .into_iter()
        .filter(|b| b.confidence >= threshold)
        .enumerate()
        .map(|(i, b)| {
            json!({
                "x": b.x,
                "y": b.y,
                "width": b.width,
                "height": b.height,
                "confidence": b.confidence,
                "class": b.class,
                "class_id": COLOR_BLOB_CLASSES.iter().position(|c| *c == b.class).unwrap_or(0),
                "detection_id": format!("{id}-{i}"),
            })
        })
        .collect();
    let mut m = Map::new();
    m.insert(
        "predictions".into(),
        json!({"image": {"width": raster.width, "height": raster.height}, "predictions": predictions}),
    );
    Ok(m)
}

/// `mock-detector` over one image: 0-4 boxes derived from the image hash.
/// `workflowParameters.confidence` (0..1) drops weaker predictions.
pub fn detect(
    bytes: &[u8],
    parameters: &Map<String, Value>,
) -> Result<Map<String, Value>, WorkflowError> {
    let (w, h, _) = image_size(bytes)?;
    let (w, h) = (w.max(1) as f64, h.max(1) as f64);
    let threshold = parameters
        .get("confidence")
        .and_then(Value::as_f64)
        .unwrap_or(0.0);
    let digest = Sha256::digest(bytes);
    let n = (digest[0] % 5) as usize;
    let mut predictions = Vec::new();
    for i in 0..n {
        let b = &digest[1 + i * 6..7 + i * 6];
        let frac = |x: u8| f64::from(x) / 255.0;
        let bw = (w * (0.05 + 0.45 * frac(b[2]))).max(1.0);
        let bh = (h * (0.05 + 0.45 * frac(b[3]))).max(1.0);
        let x = bw / 2.0 + (w - bw) * frac(b[0]);
        let y = bh / 2.0 + (h - bh) * frac(b[1]);
        let confidence = ((0.3 + 0.7 * frac(b[4])) * 1000.0).round() / 1000.0;
        if confidence < threshold {
            continue;
        }
        let class_id = usize::from(b[5]) % DETECTOR_CLASSES.len();
        let detection_id = format!("{}-{i}", hex::encode(&digest[..8]));
        predictions.push(json!({
            "x": (x * 10.0).round() / 10.0,
            "y": (y * 10.0).round() / 10.0,
            "width": (bw * 10.0).round() / 10.0,
            "height": (bh * 10.0).round() / 10.0,
            "confidence": confidence,
            "class": DETECTOR_CLASSES[class_id],
            "class_id": class_id,
            "detection_id": detection_id,
        }));
    }
    let mut m = Map::new();
    m.insert(
        "predictions".into(),
        json!({"image": {"width": w as u64, "height": h as u64}, "predictions": predictions}),
    );
    Ok(m)
}

/// Most sampled frames listed per video.
pub const MAX_FRAMES: usize = 100_000;

/// `video-properties` over one video.
pub fn video_properties<R: Read + Seek>(
    reader: &mut R,
    len: u64,
    max_fps: Option<f64>,
) -> Result<Map<String, Value>, WorkflowError> {
    let io = |e: std::io::Error| WorkflowError(format!("cannot read video: {e}"));
    let start = reader.stream_position().map_err(io)?;
    let mut head = [0u8; 16];
    let n = reader.by_ref().take(16).read(&mut head).map_err(io)?;
    let container = crate::media::sniff_video(&head[..n])
        .ok_or_else(|| WorkflowError("input is not a video container".into()))?;
    reader.seek(SeekFrom::Start(start)).map_err(io)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut left = len;
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let got = reader.read(&mut buf[..want]).map_err(io)?;
        if got == 0 {
            return Err(WorkflowError("video is truncated".into()));
        }
        hasher.update(&buf[..got]);
        left -= got as u64;
    }
    let mut m = Map::new();
    m.insert("container".into(), container.into());
    m.insert("bytes".into(), len.into());
    m.insert("sha256".into(), hex::encode(hasher.finalize()).into());
    if matches!(container, "mp4" | "mov" | "3gp") {
        reader.seek(SeekFrom::Start(start)).map_err(io)?;
        if let Some(info) = mp4::probe(reader, len) {
            let fps = (info.duration > 0.0 && info.frames > 0)
                .then(|| info.frames as f64 / info.duration);
            m.insert("duration_seconds".into(), json!(info.duration));
            m.insert("width".into(), json!(info.width));
            m.insert("height".into(), json!(info.height));
            m.insert("frame_count".into(), json!(info.frames));
            m.insert(
                "fps".into(),
                fps.map(|f| json!((f * 1000.0).round() / 1000.0))
                    .unwrap_or(Value::Null),
            );
            if let Some(fps) = fps {
                let step = match max_fps {
                    Some(cap) if cap > 0.0 && cap < fps => (fps / cap).max(1.0),
                    _ => 1.0,
                };
                let mut frames = Vec::new();
                let mut k = 0.0f64;
                while (k as u64) < info.frames && frames.len() < MAX_FRAMES {
                    let index = k as u64;
                    frames.push(json!({"frame": index, "timestamp_seconds": ((index as f64 / fps) * 1000.0).round() / 1000.0}));
                    k += step;
                }
                m.insert(
                    "sampled_fps".into(),
                    json!(((fps / step) * 1000.0).round() / 1000.0),
                );
                m.insert("frames".into(), Value::Array(frames));
            }
        }
    }
    Ok(m)
}

/// A minimal ISO-BMFF (MP4/MOV) reader: movie duration, the first video
/// track's size and sample count.
mod mp4 {
    use std::io::{Read, Seek, SeekFrom};

    const MAX_MOOV: u64 = 64 * 1024 * 1024;

    #[derive(Debug, Default)]
    pub(super) struct Info {
        pub(super) duration: f64,
        pub(super) width: u64,
        pub(super) height: u64,
        pub(super) frames: u64,
    }

    fn be32(b: &[u8], at: usize) -> Option<u32> {
        Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
    }

    fn be64(b: &[u8], at: usize) -> Option<u64> {
        Some(u64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
    }

    /// Child boxes of a box body: (type, body).
    fn boxes(mut b: &[u8]) -> Vec<([u8; 4], &[u8])> {
        let mut out = Vec::new();
        while b.len() >= 8 {
            let Some(size) = be32(b, 0) else { break };
            let kind: [u8; 4] = [b[4], b[5], b[6], b[7]];
            let (hdr, size) = match size {
                1 => match be64(b, 8) {
                    Some(s) => (16usize, usize::try_from(s).unwrap_or(usize::MAX)),
                    None => break,
                },
                0 => (8, b.len()),
                s => (8, s as usize),
            };
            if size < hdr || size > b.len() {
                break;
            }
            out.push((kind, &b[hdr..size]));
            b = &b[size..];
        }
        out
    }

    fn child<'a>(b: &'a [u8], kind: &[u8; 4]) -> Option<&'a [u8]> {
        boxes(b)
            .into_iter()
            .find(|(k, _)| k == kind)
            .map(|(_, v)| v)
    }

    pub(super) fn probe<R: Read + Seek>(r: &mut R, len: u64) -> Option<Info> {
        let start = r.stream_position().ok()?;
        let mut pos = 0u64;
        while pos + 8 <= len {
            r.seek(SeekFrom::Start(start + pos)).ok()?;
            let mut h = [0u8; 16];
            r.read_exact(&mut h[..8]).ok()?;
            let mut size = u64::from(be32(&h, 0)?);
            let mut hdr = 8u64;
            if size == 1 {
                r.read_exact(&mut h[8..16]).ok()?;
                size = be64(&h, 8)?;
                hdr = 16;
            } else if size == 0 {
                size = len - pos;
            }
            if size < hdr || pos + size > len {
                return None;
            }
            if &h[4..8] == b"moov" {
                let body_len = size - hdr;
                if body_len > MAX_MOOV {
                    return None;
                }
                let mut body = vec![0u8; usize::try_from(body_len).ok()?];
                r.read_exact(&mut body).ok()?;
                return parse_moov(&body);
            }
            pos += size;
        }
        None
    }

    fn parse_moov(moov: &[u8]) -> Option<Info> {
        let mut info = Info::default();
        let mvhd = child(moov, b"mvhd")?;
        let (timescale, duration) = if mvhd.first()? == &1 {
            (be32(mvhd, 20)?, be64(mvhd, 24)?)
        } else {
            (be32(mvhd, 12)?, u64::from(be32(mvhd, 16)?))
        };
        if timescale > 0 {
            info.duration = duration as f64 / f64::from(timescale);
        }
        for (kind, trak) in boxes(moov) {
            if &kind != b"trak" {
                continue;
            }
            let Some(mdia) = child(trak, b"mdia") else {
                continue;
            };
            let is_video = child(mdia, b"hdlr").and_then(|h| h.get(8..12)) == Some(b"vide");
            if !is_video {
                continue;
            }
            if let Some(tkhd) = child(trak, b"tkhd") {
                let off = if tkhd.first() == Some(&1) { 88 } else { 76 };
                info.width = u64::from(be32(tkhd, off).unwrap_or(0) >> 16);
                info.height = u64::from(be32(tkhd, off + 4).unwrap_or(0) >> 16);
            }
            let stsz = child(mdia, b"minf")
                .and_then(|m| child(m, b"stbl"))
                .and_then(|s| child(s, b"stsz"));
            if let Some(stsz) = stsz {
                info.frames = u64::from(be32(stsz, 8).unwrap_or(0));
            }
            break;
        }
        Some(info)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::tests::png;

    #[test]
    fn properties_and_detector_are_deterministic() {
        let real = crate::pixels::tests::encode_png(64, 48, |x, _| {
            if x < 32 { [200, 0, 0] } else { [0, 0, 100] }
        });
        let p = image_properties(&real).unwrap();
        assert_eq!(p["width"], 64);
        assert_eq!(p["height"], 48);
        assert_eq!(p["channels"], 3);
        assert_eq!(p["format"], "png");
        assert_eq!(p["mean_colour"], json!([100.0, 0.0, 50.0]));
        // a PNG header without pixel data cannot be decoded
        let img = png(640, 480, 9);
        assert!(image_properties(&img).unwrap_err().0.contains("decoded"));
        let a = detect(&img, &Map::new()).unwrap();
        assert_eq!(a, detect(&img, &Map::new()).unwrap());
        for p in a["predictions"]["predictions"].as_array().unwrap() {
            let (x, w) = (p["x"].as_f64().unwrap(), p["width"].as_f64().unwrap());
            assert!(x - w / 2.0 >= -0.1 && x + w / 2.0 <= 640.1, "{p}");
            assert!(DETECTOR_CLASSES.contains(&p["class"].as_str().unwrap()));
        }
        let mut strict = Map::new();
        strict.insert("confidence".into(), json!(1.01));
        let none = detect(&img, &strict).unwrap();
        assert!(
            none["predictions"]["predictions"]
                .as_array()
                .unwrap()
                .is_empty()
        );
        assert!(image_properties(b"junk").is_err());
    }

    #[test]
    fn color_blobs_on_a_real_sample() {
        let sample = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../samples/images/park/park_001.png"
        ))
        .unwrap();
        let out = color_blobs(&sample, &Map::new()).unwrap();
        let preds = out["predictions"]["predictions"].as_array().unwrap();
        // the sample shows six small rectangles on a plain background
        assert_eq!(preds.len(), 6, "{out:?}");
        let red = preds
            .iter()
            .find(|p| p["class"] == "red-blob")
            .expect("a red rectangle");
        assert!((red["x"].as_f64().unwrap() - 129.0).abs() < 4.0, "{red}");
        assert!((red["y"].as_f64().unwrap() - 294.0).abs() < 4.0, "{red}");
        assert!(preds.iter().any(|p| p["class"] == "green-blob"));
        assert_eq!(out, color_blobs(&sample, &Map::new()).unwrap());
        assert!(color_blobs(&png(4, 4, 1), &Map::new()).is_err());
    }

    #[test]
    fn jpeg_samples_decode() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../samples/images/street");
        for name in ["street_001.jpg", "street_003.jpg"] {
            let bytes = std::fs::read(format!("{dir}/{name}")).unwrap();
            let p = image_properties(&bytes).unwrap();
            assert_eq!(p["format"], "jpeg");
            assert_eq!(p["channels"], 3);
            assert_eq!(p["mean_colour"].as_array().unwrap().len(), 3, "{p:?}");
            let out = color_blobs(&bytes, &Map::new()).unwrap();
            let preds = out["predictions"]["predictions"].as_array().unwrap();
            assert!(!preds.is_empty(), "{out:?}");
            for pr in preds {
                assert!(pr["x"].as_f64().unwrap() <= p["width"].as_f64().unwrap());
            }
        }
        let mut broken = std::fs::read(format!("{dir}/street_001.jpg")).unwrap();
        broken.truncate(300);
        assert!(image_properties(&broken).is_err());
    }

    /// A tiny synthetic MP4: ftyp + moov(mvhd, trak(tkhd, mdia(hdlr, minf(stbl(stsz))))).
    pub(crate) fn tiny_mp4(frames: u32, seconds: u32) -> Vec<u8> {
        fn bx(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
            let mut v = ((body.len() + 8) as u32).to_be_bytes().to_vec();
            v.extend_from_slice(kind);
            v.extend_from_slice(body);
            v
        }
        let mut mvhd = vec![0u8; 100];
        mvhd[12..16].copy_from_slice(&1000u32.to_be_bytes());
        mvhd[16..20].copy_from_slice(&(seconds * 1000).to_be_bytes());
        let mut tkhd = vec![0u8; 84];
        tkhd[76..80].copy_from_slice(&(320u32 << 16).to_be_bytes());
        tkhd[80..84].copy_from_slice(&(240u32 << 16).to_be_bytes());
        let mut hdlr = vec![0u8; 24];
        hdlr[8..12].copy_from_slice(b"vide");
        let mut stsz = vec![0u8; 12];
        stsz[8..12].copy_from_slice(&frames.to_be_bytes());
        let stbl = bx(b"stbl", &bx(b"stsz", &stsz));
        let minf = bx(b"minf", &stbl);
        let mdia = bx(b"mdia", &[bx(b"hdlr", &hdlr), minf].concat());
        let trak = bx(b"trak", &[bx(b"tkhd", &tkhd), mdia].concat());
        let moov = bx(b"moov", &[bx(b"mvhd", &mvhd), trak].concat());
        [bx(b"ftyp", b"isom\0\0\0\0isom"), moov].concat()
    }

    proptest::proptest! {
        #[test]
        fn video_probe_never_panics(cut in 0usize..400, flip in 0usize..400, byte in proptest::prelude::any::<u8>()) {
            let mut v = tiny_mp4(10, 1);
            let i = flip % v.len();
            v[i] = byte;
            v.truncate(cut.max(8).min(v.len()));
            let len = v.len() as u64;
            let _ = video_properties(&mut std::io::Cursor::new(v), len, Some(2.0));
        }
    }

    #[test]
    fn video_probe_and_sampling() {
        let v = tiny_mp4(50, 2); // 25 fps
        let len = v.len() as u64;
        let out = video_properties(&mut std::io::Cursor::new(&v), len, Some(5.0)).unwrap();
        assert_eq!(out["container"], "mp4");
        assert_eq!(out["width"], 320);
        assert_eq!(out["frame_count"], 50);
        assert_eq!(out["fps"], 25.0);
        assert_eq!(out["frames"].as_array().unwrap().len(), 10);
        assert!(video_properties(&mut std::io::Cursor::new(b"garbage".to_vec()), 7, None).is_err());
    }
}
