//! Hand-made tar archives for extraction tests: raw headers with any path
//! and entry type (absolute paths, `..`, links, devices), which the tar
//! crate's builder refuses to write. Shared by the integration tests
//! (through `common`) and by `src/export/extract.rs`'s unit tests (through
//! a `#[path]` module), so both test the same bytes. Not public API.
#![allow(dead_code, unreachable_pub)]

/// Appends one entry (header and data, padded to 512 bytes) to `out`.
pub fn raw_entry(out: &mut Vec<u8>, path: &[u8], kind: u8, data: &[u8], link: &[u8]) {
    let mut h = [0u8; 512];
    h[..path.len()].copy_from_slice(path);
    h[100..107].copy_from_slice(b"0000644");
    h[108..115].copy_from_slice(b"0000000");
    h[116..123].copy_from_slice(b"0000000");
    h[124..135].copy_from_slice(format!("{:011o}", data.len()).as_bytes());
    h[136..147].copy_from_slice(b"00000000000");
    h[156] = kind;
    h[157..157 + link.len()].copy_from_slice(link);
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
}

/// `out` with the end-of-archive marker (two zero blocks) appended.
pub fn finish(mut out: Vec<u8>) -> Vec<u8> {
    out.extend_from_slice(&[0u8; 1024]);
    out
}

/// `bytes`, gzip-compressed.
pub fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut enc, bytes).unwrap();
    enc.finish().unwrap()
}
