//! Dry runs: what a run or an ingest would do, found without changing
//! anything. The input is scanned and planned in memory (no manifest, no
//! items file, no output directory is written), an earlier attempt's
//! manifest is read if there is one, and the service is asked only
//! read-only questions (the workspace, whether the batch and job exist).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rf_types::BatchId;
use serde::Serialize;

use super::paths::input_dir;
use super::{IngestOptions, RunConfig};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::ingest::{
    MediaKind, PlanOptions, ScanOptions, ScanReport, SkipReason, SkippedFile, UploadMode, plan,
    scan,
};
use crate::job::build_definition;
use crate::state::Manifest;

/// What a run (or an ingest) would do. Serialized in camelCase.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DryRun {
    /// The input directory (canonical).
    pub input_dir: PathBuf,
    /// The kind of media the run processes.
    pub kind: MediaKind,
    /// Images found: how many, how many bytes.
    pub images: Tally,
    /// Videos found.
    pub videos: Tally,
    /// Files that would not be sent, with the reason (unreadable, too
    /// large, not media, the other kind...).
    pub skipped: Vec<SkippedFile>,
    /// Item names that two files would share (none unless a name hash
    /// collides; see `ingest::names`).
    pub colliding_names: Vec<NameCollision>,
    /// Single uploads or tar shards.
    pub mode: UploadMode,
    /// Items the batch would hold.
    pub items: u64,
    /// Single uploads planned.
    pub single_uploads: usize,
    /// Tar shards planned, and their bytes.
    pub shards: usize,
    /// Bytes of the tar shards.
    pub shard_bytes: u64,
    /// The manifest this run keeps.
    pub state_file: PathBuf,
    /// Whether an earlier attempt's manifest would be resumed.
    pub resumes: bool,
    /// Items an earlier attempt already uploaded.
    pub already_uploaded: u64,
    /// The staging batch (generated now if none was given or recorded; the
    /// run generates its own then).
    pub batch_id: String,
    /// Whether the batch ID was generated for this dry run.
    pub batch_id_generated: bool,
    /// Whether the batch already exists on the service.
    pub batch_exists: bool,
    /// The job (runs only; `None` when one would be generated at start).
    pub job_id: Option<String>,
    /// Whether that job already exists (runs only).
    pub job_exists: Option<bool>,
    /// The workspace the key belongs to.
    pub workspace: String,
    /// The job definition the run would send (runs only).
    pub job_definition: Option<serde_json::Value>,
}

/// A count of files and their bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Tally {
    /// Files.
    pub files: usize,
    /// Bytes.
    pub bytes: u64,
}

/// One item name that several files would get.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NameCollision {
    /// The item name.
    pub name: String,
    /// The files (relative paths).
    pub files: Vec<String>,
}

/// What a dry run of a run reads.
struct Ask<'a> {
    input_dir: &'a Path,
    kind: Option<MediaKind>,
    scan: &'a ScanOptions,
    plan: &'a PlanOptions,
    state_file: PathBuf,
    batch_id: Option<&'a BatchId>,
}

/// What [`crate::Pipeline::run`] would do with `config`, without doing it.
/// Invalid options, paths or an input without media are the errors the run
/// would fail with.
pub async fn dry_run(ctx: &Context, config: &RunConfig) -> Result<DryRun> {
    config.validate()?;
    let ask = Ask {
        input_dir: &config.input_dir,
        kind: config.kind,
        scan: &config.scan,
        plan: &config.plan,
        state_file: config.state_file(),
        batch_id: config.batch_id.as_ref(),
    };
    let (mut dry, manifest) = look(ctx, ask).await?;
    let job_id = config
        .job_id
        .as_ref()
        .map(ToString::to_string)
        .or_else(|| manifest.and_then(|m| m.job.map(|j| j.job_id)));
    if let Some(job) = &job_id {
        dry.job_exists = Some(exists(ctx.client.jobs().get(job).await)?);
    }
    dry.job_id = job_id;
    let batch = BatchId::new(dry.batch_id.clone()).map_err(|e| Error::InvalidInput {
        what: "batch id",
        detail: e.to_string(),
    })?;
    let definition = build_definition(
        dry.kind,
        &batch,
        &dry.workspace,
        &config.workflow_id,
        &config.job,
    )?;
    dry.job_definition = serde_json::to_value(definition).ok();
    Ok(dry)
}

/// What [`super::ingest`] would do with `options`, without doing it.
pub async fn dry_run_ingest(ctx: &Context, options: &IngestOptions) -> Result<DryRun> {
    options.validate()?;
    let ask = Ask {
        input_dir: &options.input_dir,
        kind: Some(options.kind),
        scan: &options.scan,
        plan: &options.plan,
        state_file: options.state_file.clone(),
        batch_id: Some(&options.batch_id),
    };
    Ok(look(ctx, ask).await?.0)
}

/// Scans and plans in memory, reads an earlier manifest, asks the service.
async fn look(ctx: &Context, ask: Ask<'_>) -> Result<(DryRun, Option<Manifest>)> {
    let (input, _) = input_dir(ask.input_dir)?;
    let (root, options) = (input.clone(), ask.scan.clone());
    let report = tokio::task::spawn_blocking(move || scan(&root, &options))
        .await
        .map_err(|e| Error::InvalidInput {
            what: "scan",
            detail: e.to_string(),
        })??;
    let manifest = Manifest::load(&ask.state_file)?.filter(|m| m.run.input_dir == input);
    let mut dry = plan_of(report, ask.kind, ask.plan, input)?;
    dry.state_file = ask.state_file;
    if let Some(m) = &manifest {
        dry.resumes = true;
        dry.already_uploaded = m.uploaded_count();
    }
    let recorded = manifest.as_ref().map(|m| m.run.batch_id.clone());
    match ask.batch_id.map(ToString::to_string).or(recorded) {
        Some(id) => dry.batch_id = id,
        None => {
            dry.batch_id = BatchId::generate().to_string();
            dry.batch_id_generated = true;
        }
    }
    dry.workspace = ctx.client.workspace().await?;
    dry.batch_exists = exists(ctx.client.staging().batch(&dry.batch_id).await)?;
    Ok((dry, manifest))
}

/// `Ok(true)` for a found thing, `Ok(false)` for a 404, the error else.
fn exists<T>(answer: Result<T>) -> Result<bool> {
    match answer {
        Ok(_) => Ok(true),
        Err(e) if e.is_api(crate::ApiErrorKind::NotFound) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The plan of a scan: the kind chosen, the other kind skipped, names
/// checked, uploads cut. [`Error::NoMedia`] when nothing would be sent.
fn plan_of(
    report: ScanReport,
    kind: Option<MediaKind>,
    options: &PlanOptions,
    input_dir: PathBuf,
) -> Result<DryRun> {
    let images = tally(&report, MediaKind::Image);
    let videos = tally(&report, MediaKind::Video);
    let kind = MediaKind::for_run(kind, images.files, videos.files);
    let ScanReport {
        files, mut skipped, ..
    } = report;
    let (kept, other): (Vec<_>, Vec<_>) = files.into_iter().partition(|f| f.kind == kind);
    skipped.extend(other.into_iter().map(|f| SkippedFile {
        relative: f.relative,
        reason: SkipReason::OtherKind(f.kind),
    }));
    if kept.is_empty() {
        return Err(Error::NoMedia {
            kind,
            dir: input_dir,
        });
    }
    let planned = plan(&kept, options);
    Ok(DryRun {
        colliding_names: collisions(&planned),
        input_dir,
        kind,
        images,
        videos,
        skipped,
        mode: planned.mode,
        items: planned.item_count() as u64,
        single_uploads: planned.singles.len(),
        shards: planned.shards.len(),
        shard_bytes: planned.shards.iter().map(|s| s.tar_bytes).sum(),
        state_file: PathBuf::new(),
        resumes: false,
        already_uploaded: 0,
        batch_id: String::new(),
        batch_id_generated: false,
        batch_exists: false,
        job_id: None,
        job_exists: None,
        workspace: String::new(),
        job_definition: None,
    })
}

fn tally(report: &ScanReport, kind: MediaKind) -> Tally {
    report
        .files
        .iter()
        .filter(|f| f.kind == kind)
        .fold(Tally::default(), |t, f| Tally {
            files: t.files + 1,
            bytes: t.bytes + f.size,
        })
}

/// Item names planned for more than one file.
fn collisions(planned: &crate::ingest::Plan) -> Vec<NameCollision> {
    let items = planned
        .singles
        .iter()
        .chain(planned.shards.iter().flat_map(|s| s.items.iter()));
    let mut by_name: HashMap<&str, Vec<String>> = HashMap::new();
    for item in items {
        by_name
            .entry(item.name.as_str())
            .or_default()
            .push(item.relative.clone());
    }
    let mut found: Vec<NameCollision> = by_name
        .into_iter()
        .filter(|(_, files)| files.len() > 1)
        .map(|(name, files)| NameCollision {
            name: name.to_owned(),
            files,
        })
        .collect();
    found.sort_by(|a, b| a.name.cmp(&b.name));
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::ScannedFile;

    fn file(relative: &str, kind: MediaKind, size: u64) -> ScannedFile {
        ScannedFile {
            relative: relative.into(),
            kind,
            size,
            mtime_ns: 0,
        }
    }

    #[test]
    fn the_plan_counts_by_kind_skips_the_other_kind_and_cuts_uploads() {
        let report = ScanReport {
            files: vec![
                file("a.jpg", MediaKind::Image, 10),
                file("b.png", MediaKind::Image, 20),
                file("c.mp4", MediaKind::Video, 300),
            ],
            skipped: vec![SkippedFile {
                relative: "notes.txt".into(),
                reason: SkipReason::NotMedia,
            }],
            hidden: 0,
        };
        let dry = plan_of(report, None, &PlanOptions::default(), "/in".into()).unwrap();
        assert_eq!(dry.kind, MediaKind::Image);
        assert_eq!(
            dry.images,
            Tally {
                files: 2,
                bytes: 30
            }
        );
        assert_eq!(
            dry.videos,
            Tally {
                files: 1,
                bytes: 300
            }
        );
        assert_eq!(dry.items, 2);
        assert_eq!(dry.mode, UploadMode::Single);
        assert_eq!(dry.single_uploads, 2);
        let reasons: Vec<_> = dry.skipped.iter().map(|s| s.relative.as_str()).collect();
        assert_eq!(reasons, ["notes.txt", "c.mp4"]);
        assert!(dry.colliding_names.is_empty());
    }

    #[test]
    fn nothing_to_send_is_the_error_the_run_would_give() {
        let report = ScanReport {
            files: vec![file("c.mp4", MediaKind::Video, 300)],
            ..ScanReport::default()
        };
        let err = plan_of(
            report,
            Some(MediaKind::Image),
            &PlanOptions::default(),
            "/in".into(),
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                Error::NoMedia {
                    kind: MediaKind::Image,
                    ..
                }
            ),
            "{err}"
        );
    }
}
