//! Fetching from loopback URLs, the only place the emulator fetches from:
//! a reference anywhere else is refused as `unsafe-url-detected`, without a
//! request. Downloads are streamed with a size limit.

use std::io::Write;

use rf_types::MAX_IMAGE_BYTES;

use crate::ctx::Ctx;
use crate::http_client::is_loopback_url;
use crate::media::{FileFailure, sniff_video};

/// Largest video fetched by reference.
const MAX_VIDEO_FETCH: u64 = 2 * 1024 * 1024 * 1024;

fn unsafe_url(url: &str) -> FileFailure {
    FileFailure::new(
        "unsafe-url-detected",
        format!("Untrusted domain found: {url}"),
    )
}

/// Fetches a loopback URL with a size limit.
pub(super) async fn fetch(ctx: &Ctx, url: &str, limit: u64) -> Result<Vec<u8>, FileFailure> {
    let mut out = Vec::new();
    fetch_into(ctx, url, limit, &mut out).await?;
    Ok(out)
}

/// Streams a loopback URL into `out` with a size limit; returns the length.
async fn fetch_into<W: Write>(
    ctx: &Ctx,
    url: &str,
    limit: u64,
    out: &mut W,
) -> Result<u64, FileFailure> {
    if !is_loopback_url(url) {
        return Err(unsafe_url(url));
    }
    let mut resp = ctx.http.get(url).send().await.map_err(|e| {
        FileFailure::new(
            "download-failed",
            format!("cannot download: {}", e.without_url()),
        )
    })?;
    if !resp.status().is_success() {
        return Err(FileFailure::new(
            "download-failed",
            format!("download answered HTTP {}", resp.status().as_u16()),
        ));
    }
    let mut total = 0u64;
    while let Some(chunk) = resp.chunk().await.map_err(|e| {
        FileFailure::new(
            "download-failed",
            format!("download interrupted: {}", e.without_url()),
        )
    })? {
        total += chunk.len() as u64;
        if total > limit {
            return Err(if limit == MAX_IMAGE_BYTES {
                FileFailure::too_large()
            } else {
                FileFailure::new(
                    "file-size-limit-exceeded",
                    format!("file is larger than {limit}B"),
                )
            });
        }
        out.write_all(&chunk)
            .map_err(|_| FileFailure::new("storage-error", "emulator could not store the file"))?;
    }
    Ok(total)
}

/// Downloads one video reference into `tmp` and checks its container.
pub(super) async fn fetch_video(
    ctx: &Ctx,
    url: &str,
    name: &str,
    tmp: &std::path::Path,
) -> Result<u64, FileFailure> {
    let storage = |_| FileFailure::new("storage-error", "emulator could not store the file");
    let mut file = std::io::BufWriter::new(std::fs::File::create(tmp).map_err(storage)?);
    let result = fetch_into(ctx, url, MAX_VIDEO_FETCH, &mut file).await;
    // Flushed and fsynced before the caller renames it into the blob store.
    let file = file
        .into_inner()
        .map_err(|e| e.into_error())
        .and_then(|f| f.sync_all())
        .map_err(storage);
    let len = match (result, file) {
        (Ok(len), Ok(_)) => len,
        (Err(f), _) | (_, Err(f)) => {
            let _ = std::fs::remove_file(tmp);
            return Err(f);
        }
    };
    let mut head = [0u8; 16];
    let n = std::fs::File::open(tmp)
        .and_then(|mut f| std::io::Read::read(&mut f, &mut head))
        .unwrap_or(0);
    if sniff_video(&head[..n]).is_none() {
        let _ = std::fs::remove_file(tmp);
        return Err(FileFailure::new(
            "invalid-video",
            format!("{name:?} is not a video container"),
        ));
    }
    Ok(len)
}
