//! inference-cli's cloud-storage ingest beside rf's, from one bucket of the
//! local S3 server (moto, from `cargo xtask testservers`): `inference
//! rf-cloud data-staging create-batch-of-images --data-source cloud-storage
//! --bucket-path s3://…` and `rf batch ingest --images s3://…` each fill a
//! batch of the same emulator, which fetches every presigned URL from moto;
//! both batches must end with every image of the bucket, and rf's re-run
//! must send nothing.
//!
//! The objects have distinct base names in several folders: inference-cli
//! names its references by base name, so same-named objects in different
//! folders would collide in its batch (rf names them by their key's path).

use rf_testservers::S3Server;

use super::Ctx;

/// Images put into the bucket, in [`FOLDERS`] folders.
const IMAGES: usize = 60;
const FOLDERS: usize = 4;
/// Where the objects go in the bucket.
const PREFIX: &str = "compat-cloud";

/// The cloud-storage step of the inference half.
pub(crate) fn steps(ctx: &Ctx) -> Result<(), String> {
    crate::testservers::testservers()?;
    let s3 = S3Server::start().map_err(|e| e.to_string())?;
    fill(&s3)?;
    let url = format!("{}/", s3.url(PREFIX));
    let env = s3.env();
    ctx.inference_with(&inference_args(&url, "compat-cloud-inf"), &env)?;
    ctx.wait_count("compat-cloud-inf", IMAGES as u64)?;
    let ingest = [
        "batch",
        "ingest",
        "--images",
        &url,
        "--batch-id",
        "compat-cloud-rf",
    ];
    let first = ctx.rf_with(&ingest, &env)?;
    ctx.wait_count("compat-cloud-rf", IMAGES as u64)?;
    let again = ctx.rf_with(&ingest, &env)?;
    let resent = resent_references(&again)?;
    if resent != 0 {
        return Err(format!(
            "rf's re-run of the bucket ingest sent {resent} references again:\n{again}\n(first run: {first})"
        ));
    }
    ctx.wait_count("compat-cloud-rf", IMAGES as u64)?;
    eprintln!("compat: cloud-storage ingest: inference-cli and rf each staged {IMAGES} images");
    Ok(())
}

/// `inference rf-cloud` arguments of a cloud-storage ingest of `url` into
/// `batch` (here and in `bench-cloud --peer`).
pub(crate) fn inference_args<'a>(url: &'a str, batch: &'a str) -> [&'a str; 8] {
    [
        "data-staging",
        "create-batch-of-images",
        "--data-source",
        "cloud-storage",
        "--bucket-path",
        url,
        "--batch-id",
        batch,
    ]
}

/// Puts [`IMAGES`] small JPEGs and a text file (which both clients leave
/// out) under [`PREFIX`].
fn fill(s3: &S3Server) -> Result<(), String> {
    for i in 0..IMAGES {
        let body = crate::bench_data::jpeg(600, i as u64);
        let key = format!("{PREFIX}/f{}/img_{i:03}.jpg", i % FOLDERS);
        s3.put(&key, &body).map_err(|e| e.to_string())?;
    }
    s3.put(&format!("{PREFIX}/notes.txt"), b"not an image")
        .map_err(|e| e.to_string())
}

/// The references a bucket ingest's `--json` report says it sent (not
/// counting the chunks it found accepted before).
fn resent_references(report: &str) -> Result<u64, String> {
    let value: serde_json::Value =
        serde_json::from_str(report).map_err(|e| format!("rf's report: {e}: {report}"))?;
    let sent = value["references"].as_u64();
    let skipped = value["skippedReferences"].as_u64();
    match (sent, skipped) {
        (Some(sent), Some(skipped)) => Ok(sent - skipped.min(sent)),
        _ => Err(format!("rf's report names no references sent: {report}")),
    }
}
