//! inference-cli's commands beyond the API reference: a RoboQL ingest of library images that carry
//! metadata, a job whose workflow inputs come from that metadata
//! (`--images-metadata-part-name`, `--metadata-mapping`), and a TRT
//! compilation job; and the video commands (`create-batch-of-videos`,
//! `process-videos-with-workflow`). The emulator runs with `--library` on a
//! copy of the street samples, each with a sidecar giving it a camera.

use std::fs;
use std::path::{Path, PathBuf};

use super::Ctx;
use crate::project_root;

/// The library the inference half's emulator serves: the street samples
/// under `street/`, each with `{"metadata": {"camera": "cam-<n>"}}`.
pub(crate) fn make_library(work: &Path) -> Result<PathBuf, String> {
    let library = work.join("library");
    let street = library.join("street");
    fs::create_dir_all(&street).map_err(|e| e.to_string())?;
    let samples = project_root().join("samples/images/street");
    let mut names: Vec<PathBuf> = fs::read_dir(&samples)
        .map_err(|e| e.to_string())?
        .flatten()
        .map(|e| e.path())
        .collect();
    names.sort();
    for (i, path) in names.iter().enumerate() {
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        fs::copy(path, street.join(name)).map_err(|e| e.to_string())?;
        let sidecar = format!(r#"{{"metadata": {{"camera": "cam-{i}"}}}}"#);
        fs::write(street.join(format!("{name}.json")), sidecar).map_err(|e| e.to_string())?;
    }
    Ok(library)
}

/// The parity steps; `images` is how many images the library holds.
pub(crate) fn steps(ctx: &Ctx, work: &Path, images: usize) -> Result<(), String> {
    roboql_ingest(ctx, images)?;
    metadata_job(ctx, work, images)?;
    trt_compile(ctx)?;
    videos(ctx, work)
}

/// Two Motion-JPEG AVI videos uploaded with `create-batch-of-videos`, then
/// `process-videos-with-workflow` over them: a job that succeeds.
fn videos(ctx: &Ctx, work: &Path) -> Result<(), String> {
    let dir = work.join("videos");
    fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    for i in 0..2u64 {
        let bytes = crate::bench_data::video(300_000, i);
        fs::write(dir.join(format!("clip_{i}.avi")), bytes).map_err(|e| e.to_string())?;
    }
    ctx.inference(&[
        "data-staging",
        "create-batch-of-videos",
        "--videos-dir",
        &dir.to_string_lossy(),
        "--batch-id",
        "compat-videos",
    ])?;
    ctx.wait_count("compat-videos", 2)?;
    ctx.inference(&[
        "batch-processing",
        "process-videos-with-workflow",
        "--batch-id",
        "compat-videos",
        "--workflow-id",
        "video-properties",
        "--job-id",
        "compat-video",
    ])?;
    if ctx.job_failed("compat-video")? {
        return Err("the video job failed".into());
    }
    Ok(())
}

/// `create-batch-of-images --data-source roboql`: the batch's `images`
/// part ends with every library image.
fn roboql_ingest(ctx: &Ctx, images: usize) -> Result<(), String> {
    ctx.inference(&[
        "data-staging",
        "create-batch-of-images",
        "--data-source",
        "roboql",
        "--query",
        "tag:street",
        "--batch-id",
        "compat-rq",
    ])?;
    let out = ctx.rf(&["batch", "count", "compat-rq", "--part", "images"])?;
    let count = super::json_u64(&out, "count");
    if count != Some(images as u64) {
        return Err(format!(
            "roboql ingest: part images holds {count:?}, expected {images}"
        ));
    }
    Ok(())
}

/// `process-images-with-workflow` with a metadata part and mapping: every
/// result shows the camera its image's metadata gave the workflow.
fn metadata_job(ctx: &Ctx, work: &Path, images: usize) -> Result<(), String> {
    ctx.inference(&[
        "batch-processing",
        "process-images-with-workflow",
        "--batch-id",
        "compat-rq",
        "--part-name",
        "images",
        "--workflow-id",
        "image-properties",
        "--job-id",
        "compat-meta",
        "--images-metadata-part-name",
        "metadata",
        "--metadata-mapping",
        "camera_id=camera",
    ])?;
    if ctx.job_failed("compat-meta")? {
        return Err("the metadata job failed".into());
    }
    let out = work.join("export-meta");
    ctx.rf(&[
        "job",
        "export",
        "compat-meta",
        "--out",
        &out.to_string_lossy(),
    ])?;
    let cameras = cameras_in(&out)?;
    if cameras != images {
        return Err(format!(
            "{cameras} of {images} results show a camera_id from metadata in {}",
            out.display()
        ));
    }
    Ok(())
}

/// How many JSONL result records under `dir` carry
/// `workflow_inputs.camera_id` starting `cam-`.
fn cameras_in(dir: &Path) -> Result<usize, String> {
    let mut found = 0;
    for entry in fs::read_dir(dir).map_err(|e| e.to_string())?.flatten() {
        let path = entry.path();
        if path.is_dir() {
            found += cameras_in(&path)?;
        } else if path.extension().is_some_and(|e| e == "jsonl") {
            let text = fs::read_to_string(&path).map_err(|e| e.to_string())?;
            found += text
                .lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .filter(|r| {
                    r.pointer("/workflow_inputs/camera_id")
                        .and_then(serde_json::Value::as_str)
                        .is_some_and(|c| c.starts_with("cam-"))
                })
                .count();
        }
    }
    Ok(found)
}

/// `trt-compile` for two devices: a job that succeeds.
fn trt_compile(ctx: &Ctx) -> Result<(), String> {
    ctx.inference(&[
        "batch-processing",
        "trt-compile",
        "--model-id",
        "compat-model/1",
        "--device",
        "nvidia-l4",
        "--device",
        "nvidia-t4",
        "--job-id",
        "compat-trt",
    ])?;
    if ctx.job_failed("compat-trt")? {
        return Err("the TRT compilation job failed".into());
    }
    Ok(())
}
