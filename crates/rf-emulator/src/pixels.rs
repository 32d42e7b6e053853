//! Pixel decoding for the built-in workflows: JPEG (scaled down while
//! decoding) and PNG (streamed row by row) into a small RGB working raster,
//! with bounded memory whatever the input size. Other formats are not
//! decoded (their pixel statistics are reported as unknown).

use std::io::Cursor;

/// Longest side of the working raster.
const WORK_SIZE: u32 = 320;
/// Most bytes a decoder may allocate.
const MAX_DECODE_BYTES: usize = 64 * 1024 * 1024;

/// A decoded image, reduced to a small RGB raster.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Raster {
    /// Original size.
    pub(crate) width: u32,
    pub(crate) height: u32,
    /// Channels of the source (1 gray, 2 gray+alpha, 3 RGB, 4 RGBA or CMYK).
    pub(crate) channels: u8,
    /// Working raster size and RGB pixels (row major).
    pub(crate) w: u32,
    pub(crate) h: u32,
    pub(crate) rgb: Vec<[f32; 3]>,
    /// Mean of every source channel (0..255).
    pub(crate) mean: Vec<f64>,
}

/// Decodes JPEG and PNG; `Ok(None)` for other formats, `Err` for a broken
/// JPEG or PNG.
pub(crate) fn decode(bytes: &[u8]) -> Result<Option<Raster>, String> {
    if bytes.starts_with(&[0xFF, 0xD8]) {
        decode_jpeg(bytes).map(Some)
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        decode_png(bytes).map(Some)
    } else {
        Ok(None)
    }
}

/// Accumulates source pixels into working cells.
struct Accumulator {
    width: u32,
    height: u32,
    w: u32,
    h: u32,
    sums: Vec<[f64; 4]>,
    channel_sums: Vec<f64>,
    pixels: f64,
}

impl Accumulator {
    fn new(width: u32, height: u32, channels: usize) -> Self {
        let scale = (width.max(height) as f64 / f64::from(WORK_SIZE)).max(1.0);
        let w = ((f64::from(width) / scale).round() as u32).max(1);
        let h = ((f64::from(height) / scale).round() as u32).max(1);
        Self {
            width,
            height,
            w,
            h,
            sums: vec![[0.0; 4]; (w * h) as usize],
            channel_sums: vec![0.0; channels],
            pixels: 0.0,
        }
    }

    fn row(&mut self, y: u32, values: impl Iterator<Item = [f32; 3]>, raw: &[u8], channels: usize) {
        let cy = (u64::from(y) * u64::from(self.h) / u64::from(self.height.max(1))) as u32;
        let row_base = (cy.min(self.h - 1) * self.w) as usize;
        for (x, rgb) in values.enumerate() {
            let cx = (x as u64 * u64::from(self.w) / u64::from(self.width.max(1))) as u32;
            let cell = &mut self.sums[row_base + cx.min(self.w - 1) as usize];
            cell[0] += f64::from(rgb[0]);
            cell[1] += f64::from(rgb[1]);
            cell[2] += f64::from(rgb[2]);
            cell[3] += 1.0;
        }
        for (i, v) in raw.iter().enumerate() {
            self.channel_sums[i % channels] += f64::from(*v);
        }
        self.pixels += (raw.len() / channels.max(1)) as f64;
    }

    fn finish(self, channels: u8) -> Raster {
        let rgb = self
            .sums
            .iter()
            .map(|c| {
                let n = c[3].max(1.0);
                [(c[0] / n) as f32, (c[1] / n) as f32, (c[2] / n) as f32]
            })
            .collect();
        let n = self.pixels.max(1.0);
        Raster {
            width: self.width,
            height: self.height,
            channels,
            w: self.w,
            h: self.h,
            rgb,
            mean: self
                .channel_sums
                .iter()
                .map(|s| (s / n * 100.0).round() / 100.0)
                .collect(),
        }
    }
}

fn to_rgb(px: &[u8], channels: usize, cmyk: bool) -> [f32; 3] {
    match (channels, cmyk) {
        (1 | 2, _) => [f32::from(px[0]); 3],
        (4, true) => {
            // Adobe JPEGs store inverted CMYK; jpeg-decoder hands it over as is.
            let k = f32::from(px[3]) / 255.0;
            [
                f32::from(px[0]) * k,
                f32::from(px[1]) * k,
                f32::from(px[2]) * k,
            ]
        }
        _ => [f32::from(px[0]), f32::from(px[1]), f32::from(px[2])],
    }
}

fn decode_jpeg(bytes: &[u8]) -> Result<Raster, String> {
    let mut d = jpeg_decoder::Decoder::new(Cursor::new(bytes));
    d.set_max_decoding_buffer_size(MAX_DECODE_BYTES);
    d.read_info().map_err(|e| format!("jpeg header: {e}"))?;
    let info = d.info().ok_or("jpeg header is missing")?;
    let (width, height) = (u32::from(info.width), u32::from(info.height));
    let target = u16::try_from(WORK_SIZE).unwrap_or(u16::MAX);
    let (sw, sh) = d.scale(target, target).map_err(|e| format!("jpeg: {e}"))?;
    let pixels = d.decode().map_err(|e| format!("jpeg data: {e}"))?;
    let info = d.info().ok_or("jpeg header is missing")?;
    let (channels, cmyk, bytes_per) = match info.pixel_format {
        jpeg_decoder::PixelFormat::L8 => (1usize, false, 1usize),
        jpeg_decoder::PixelFormat::L16 => (1, false, 2),
        jpeg_decoder::PixelFormat::RGB24 => (3, false, 1),
        jpeg_decoder::PixelFormat::CMYK32 => (4, true, 1),
    };
    let (sw, sh) = (u32::from(sw), u32::from(sh));
    let stride = sw as usize * channels * bytes_per;
    if stride == 0 || pixels.len() < stride * sh as usize {
        return Err("jpeg data is shorter than its size".into());
    }
    // 16-bit gray: keep the high bytes.
    let pixels: Vec<u8> = if bytes_per == 2 {
        pixels.chunks(2).map(|c| c[0]).collect()
    } else {
        pixels
    };
    let stride = sw as usize * channels;
    let mut acc = Accumulator::new(sw, sh, channels);
    for y in 0..sh {
        let row = &pixels[y as usize * stride..(y as usize + 1) * stride];
        acc.row(
            y,
            row.chunks_exact(channels)
                .map(|p| to_rgb(p, channels, cmyk)),
            row,
            channels,
        );
    }
    let mut r = acc.finish(channels as u8);
    r.width = width;
    r.height = height;
    Ok(r)
}

fn decode_png(bytes: &[u8]) -> Result<Raster, String> {
    let mut d = png::Decoder::new_with_limits(
        Cursor::new(bytes),
        png::Limits {
            bytes: MAX_DECODE_BYTES,
        },
    );
    d.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = d.read_info().map_err(|e| format!("png header: {e}"))?;
    let (width, height) = (reader.info().width, reader.info().height);
    let interlaced = reader.info().interlaced;
    let (color, _) = reader.output_color_type();
    let channels = color.samples();
    let mut acc = Accumulator::new(width, height, channels);
    if interlaced {
        let mut buf = vec![0u8; reader.output_buffer_size()];
        let frame = reader
            .next_frame(&mut buf)
            .map_err(|e| format!("png data: {e}"))?;
        let stride = frame.line_size;
        for y in 0..height {
            let row = buf
                .get(y as usize * stride..(y as usize + 1) * stride)
                .ok_or("png data is shorter than its size")?;
            acc.row(
                y,
                row.chunks_exact(channels)
                    .map(|p| to_rgb(p, channels, false)),
                row,
                channels,
            );
        }
    } else {
        let mut y = 0;
        while let Some(row) = reader.next_row().map_err(|e| format!("png data: {e}"))? {
            let data = row.data();
            acc.row(
                y,
                data.chunks_exact(channels)
                    .map(|p| to_rgb(p, channels, false)),
                data,
                channels,
            );
            y += 1;
        }
        if y < height {
            return Err("png data ends early".into());
        }
    }
    Ok(acc.finish(channels as u8))
}

/// One detected blob in original image coordinates.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Blob {
    pub(crate) x: f64,
    pub(crate) y: f64,
    pub(crate) width: f64,
    pub(crate) height: f64,
    pub(crate) class: &'static str,
    pub(crate) confidence: f64,
}

/// Blob classes, by hue (and `gray-blob` for unsaturated colours).
pub(crate) const BLOB_CLASSES: &[&str] = &[
    "red-blob",
    "yellow-blob",
    "green-blob",
    "cyan-blob",
    "blue-blob",
    "magenta-blob",
    "gray-blob",
];

fn distance(a: [f32; 3], b: [f32; 3]) -> f32 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)).sqrt()
}

fn classify(c: [f32; 3]) -> &'static str {
    let (r, g, b) = (c[0] / 255.0, c[1] / 255.0, c[2] / 255.0);
    let max = r.max(g).max(b);
    let min = r.min(g).min(b);
    let sat = if max > 0.0 { (max - min) / max } else { 0.0 };
    if sat < 0.25 || max < 0.15 {
        return "gray-blob";
    }
    let d = max - min;
    let hue = if max == r {
        60.0 * (((g - b) / d).rem_euclid(6.0))
    } else if max == g {
        60.0 * ((b - r) / d + 2.0)
    } else {
        60.0 * ((r - g) / d + 4.0)
    };
    match hue {
        h if !(30.0..330.0).contains(&h) => "red-blob",
        h if h < 90.0 => "yellow-blob",
        h if h < 150.0 => "green-blob",
        h if h < 210.0 => "cyan-blob",
        h if h < 270.0 => "blue-blob",
        _ => "magenta-blob",
    }
}

/// Finds regions that differ in colour from the background (the most common
/// colour), largest first, at most `max` of them.
pub(crate) fn blobs(r: &Raster, max: usize) -> Vec<Blob> {
    let (w, h) = (r.w as usize, r.h as usize);
    if w * h == 0 {
        return Vec::new();
    }
    let Some(bg) = background(r) else {
        return Vec::new();
    };
    let mask: Vec<bool> = r.rgb.iter().map(|c| distance(*c, bg) > 48.0).collect();
    let mut seen = vec![false; w * h];
    let mut found = Vec::new();
    for start in 0..w * h {
        if !mask[start] || seen[start] {
            continue;
        }
        let region = flood(r, bg, &mask, &mut seen, start);
        if region.area >= 2 {
            found.push((region.area, region.blob(r)));
        }
    }
    found.sort_by(|a, b| {
        b.0.cmp(&a.0)
            .then(a.1.y.total_cmp(&b.1.y))
            .then(a.1.x.total_cmp(&b.1.x))
    });
    found.into_iter().take(max).map(|(_, b)| b).collect()
}

/// The background colour: the mean of the fullest bin of a
/// 3-bit-per-channel histogram.
fn background(r: &Raster) -> Option<[f32; 3]> {
    let bin = |c: [f32; 3]| {
        ((c[0] as usize >> 5) << 6) | ((c[1] as usize >> 5) << 3) | (c[2] as usize >> 5)
    };
    let mut hist = vec![(0usize, [0f64; 3]); 512];
    for c in &r.rgb {
        let e = &mut hist[bin(*c).min(511)];
        e.0 += 1;
        for (acc, v) in e.1.iter_mut().zip(c) {
            *acc += f64::from(*v);
        }
    }
    let (n, sum) = hist.iter().max_by_key(|e| e.0).copied()?;
    let n = n.max(1) as f64;
    Some([
        (sum[0] / n) as f32,
        (sum[1] / n) as f32,
        (sum[2] / n) as f32,
    ])
}

/// A connected region of foreground pixels (in raster coordinates).
#[derive(Debug)]
struct Region {
    area: usize,
    /// Bounding box: first and last column and row.
    x0: usize,
    y0: usize,
    x1: usize,
    y1: usize,
    /// Sum of the pixels' colours.
    color: [f64; 3],
    /// Sum of the pixels' distances to the background.
    contrast: f64,
}

/// The 4-connected region of foreground pixels from `start`, marked seen.
fn flood(r: &Raster, bg: [f32; 3], mask: &[bool], seen: &mut [bool], start: usize) -> Region {
    let (w, h) = (r.w as usize, r.h as usize);
    let mut region = Region {
        area: 0,
        x0: usize::MAX,
        y0: usize::MAX,
        x1: 0,
        y1: 0,
        color: [0f64; 3],
        contrast: 0f64,
    };
    seen[start] = true;
    let mut stack = vec![start];
    while let Some(i) = stack.pop() {
        let (x, y) = (i % w, i / w);
        region.x0 = region.x0.min(x);
        region.y0 = region.y0.min(y);
        region.x1 = region.x1.max(x);
        region.y1 = region.y1.max(y);
        region.area += 1;
        for (acc, v) in region.color.iter_mut().zip(r.rgb[i]) {
            *acc += f64::from(v);
        }
        region.contrast += f64::from(distance(r.rgb[i], bg));
        let mut push = |j: usize| {
            if mask[j] && !seen[j] {
                seen[j] = true;
                stack.push(j);
            }
        };
        if x > 0 {
            push(i - 1);
        }
        if x + 1 < w {
            push(i + 1);
        }
        if y > 0 {
            push(i - w);
        }
        if y + 1 < h {
            push(i + w);
        }
    }
    region
}

impl Region {
    /// The detection, in the image's own coordinates.
    fn blob(&self, r: &Raster) -> Blob {
        let (w, h) = (r.w as usize, r.h as usize);
        let a = self.area as f64;
        let mean = [
            (self.color[0] / a) as f32,
            (self.color[1] / a) as f32,
            (self.color[2] / a) as f32,
        ];
        let sx = f64::from(r.width) / w as f64;
        let sy = f64::from(r.height) / h as f64;
        let (cols, rows) = (self.x1 - self.x0 + 1, self.y1 - self.y0 + 1);
        let bw = cols as f64 * sx;
        let bh = rows as f64 * sy;
        let fill = a / (cols * rows) as f64;
        let confidence = (0.4 + 0.3 * (self.contrast / a / 255.0).min(1.0) + 0.29 * fill).min(0.99);
        Blob {
            x: ((self.x0 as f64 * sx + bw / 2.0) * 10.0).round() / 10.0,
            y: ((self.y0 as f64 * sy + bh / 2.0) * 10.0).round() / 10.0,
            width: (bw * 10.0).round() / 10.0,
            height: (bh * 10.0).round() / 10.0,
            class: classify(mean),
            confidence: (confidence * 1000.0).round() / 1000.0,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Encodes an 8-bit RGB PNG of `pixel(x, y)`.
    pub(crate) fn encode_png(
        width: u32,
        height: u32,
        pixel: impl Fn(u32, u32) -> [u8; 3],
    ) -> Vec<u8> {
        let mut raw = Vec::new();
        for y in 0..height {
            for x in 0..width {
                raw.extend_from_slice(&pixel(x, y));
            }
        }
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, width, height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().unwrap();
        writer.write_image_data(&raw).unwrap();
        writer.finish().unwrap();
        out
    }

    #[test]
    fn png_mean_and_blobs() {
        // blue background, a red square and a green bar
        let img = encode_png(200, 100, |x, y| {
            if (20..40).contains(&x) && (10..30).contains(&y) {
                [250, 10, 10]
            } else if (100..180).contains(&x) && (60..70).contains(&y) {
                [10, 240, 10]
            } else {
                [20, 20, 200]
            }
        });
        let r = decode(&img).unwrap().unwrap();
        assert_eq!((r.width, r.height, r.channels), (200, 100, 3));
        assert!(r.mean[2] > 150.0, "{:?}", r.mean);
        let b = blobs(&r, 10);
        assert_eq!(b.len(), 2, "{b:?}");
        assert_eq!(b[0].class, "green-blob");
        assert_eq!(
            (b[0].x, b[0].y, b[0].width, b[0].height),
            (140.0, 65.0, 80.0, 10.0)
        );
        assert_eq!(b[1].class, "red-blob");
        assert_eq!(
            (b[1].x, b[1].y, b[1].width, b[1].height),
            (30.0, 20.0, 20.0, 20.0)
        );
    }

    #[test]
    fn large_images_are_reduced() {
        let img = encode_png(1000, 10, |x, _| [(x % 256) as u8, 0, 0]);
        let r = decode(&img).unwrap().unwrap();
        assert_eq!(r.w, WORK_SIZE);
        assert!(r.rgb.len() <= (WORK_SIZE * WORK_SIZE) as usize);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]
        #[test]
        fn decoding_hostile_bytes_never_panics(
            kind in 0u8..3,
            tail in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600),
            flip in 0usize..2000,
        ) {
            let mut bytes = match kind {
                0 => vec![0xFF, 0xD8, 0xFF, 0xE0],
                1 => b"\x89PNG\r\n\x1a\n".to_vec(),
                _ => encode_png(8, 8, |x, y| [x as u8 * 20, y as u8 * 20, 7]),
            };
            bytes.extend_from_slice(&tail);
            let i = flip % bytes.len();
            bytes[i] ^= 0x5A;
            if let Ok(Some(r)) = decode(&bytes) {
                let _ = blobs(&r, 10);
            }
        }
    }

    #[test]
    fn broken_and_unknown_formats() {
        let mut img = encode_png(10, 10, |_, _| [1, 2, 3]);
        img.truncate(img.len() - 20);
        assert!(decode(&img).is_err());
        assert!(decode(&[0xFF, 0xD8, 0xFF, 0x00]).is_err());
        assert_eq!(decode(b"BM...."), Ok(None));
    }
}
