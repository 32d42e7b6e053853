#![doc = include_str!("../README.md")]

mod aggregate;
mod cards;
mod error;
mod extract;
mod fields;
mod job;
mod page;
mod results;
mod sample;
mod sources;
mod stats;
mod thumbs;
mod video;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

pub use error::ReportError;
pub use job::{JOB_DETAILS_FILE, JobDetailsWriter, job_details_path};
pub use thumbs::THUMB_SIDE;

use aggregate::Aggregates;
use cards::Colours;
use page::Page;

/// File name of the report in the output directory.
pub const REPORT_FILE: &str = "report.html";
/// Default number of images in the gallery.
pub const DEFAULT_SAMPLE: usize = 200;
/// Largest gallery allowed (each image costs ~10 KB of page).
pub const MAX_SAMPLE: usize = 5000;

/// What to report on and where to write it.
#[derive(Debug, Clone)]
pub struct ReportOptions {
    /// The output directory of `rf run` / `rf batch export` (with `results/`).
    pub out_dir: PathBuf,
    /// The page to write (default `<out_dir>/report.html`).
    pub output: Option<PathBuf>,
    /// Images in the gallery (default [`DEFAULT_SAMPLE`]).
    pub sample: usize,
    /// Seed of every random choice (the same seed gives the same page).
    pub seed: u64,
}

impl ReportOptions {
    /// The defaults for `out_dir`.
    pub fn new(out_dir: impl Into<PathBuf>) -> Self {
        ReportOptions {
            out_dir: out_dir.into(),
            output: None,
            sample: DEFAULT_SAMPLE,
            seed: 0x5eed_0f2e_9027,
        }
    }

    /// Where the page goes.
    pub fn output_path(&self) -> PathBuf {
        self.output
            .clone()
            .unwrap_or_else(|| self.out_dir.join(REPORT_FILE))
    }
}

/// What a report holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportSummary {
    /// The page written.
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
    /// Records read.
    pub records: u64,
    /// Lines that were not records.
    pub broken_lines: u64,
    /// Images in the gallery.
    pub sampled: usize,
    /// Images with a thumbnail in the gallery.
    pub thumbnails: usize,
    /// Predictions counted.
    pub predictions: u64,
    /// Failed items (with a reason, or missing from the results).
    pub failed: u64,
}

/// Reads the results in `opts.out_dir` and writes the report.
pub fn write_report(opts: &ReportOptions) -> Result<ReportSummary, ReportError> {
    if opts.sample == 0 || opts.sample > MAX_SAMPLE {
        return Err(ReportError::SampleSize {
            given: opts.sample,
            max: MAX_SAMPLE,
        });
    }
    if !opts.out_dir.is_dir() {
        return Err(ReportError::NotADirectory {
            path: opts.out_dir.clone(),
        });
    }
    let (aggregates, other_files) = read_results(opts)?;
    let manifest = sources::load(&opts.out_dir)?;
    let job = job::read(&job_details_path(&opts.out_dir));
    let page = build_page(aggregates, other_files, manifest.as_ref(), job, opts)?;
    let html = page::render(&page)?;
    let path = opts.output_path();
    rf_util::write_atomic(&path, |w| std::io::Write::write_all(w, html.as_bytes())).map_err(
        |source| ReportError::Write {
            path: path.clone(),
            source,
        },
    )?;
    Ok(ReportSummary {
        path,
        bytes: html.len() as u64,
        records: page.records,
        broken_lines: page.broken.total,
        sampled: page.cards.len(),
        thumbnails: page.cards.iter().filter(|c| c.src.is_some()).count(),
        predictions: page.predictions,
        failed: page.failed.total + page.missing.total,
    })
}

/// The one pass over every result file.
fn read_results(opts: &ReportOptions) -> Result<(Aggregates, u64), ReportError> {
    let dir = opts.out_dir.join("results");
    let (files, other) = if dir.is_dir() {
        results::find(&dir)?
    } else {
        (Vec::new(), 0)
    };
    if files.is_empty() {
        return Err(ReportError::NoResults { path: dir });
    }
    let mut a = Aggregates::new(opts.sample, opts.seed);
    for f in &files {
        let shown = f
            .strip_prefix(&opts.out_dir)
            .unwrap_or(f)
            .display()
            .to_string();
        a.add_file(f, shown)?;
    }
    Ok((a, other))
}

fn build_page(
    mut a: Aggregates,
    other_files: u64,
    manifest: Option<&rf_batch::state::Manifest>,
    job: job::JobDetails,
    opts: &ReportOptions,
) -> Result<Page, ReportError> {
    let sample = std::mem::replace(&mut a.sampler, sample::Sampler::new(0, 0)).finish();
    let wanted: HashSet<String> = sample.iter().map(|s| s.name.clone()).collect();
    let (paths, mut missing) = match manifest {
        Some(m) => sources::resolve(m, &wanted, &a)?,
        None => (HashMap::new(), aggregate::Capped::default()),
    };
    let failed = merge_failures(&mut a, &job, &mut missing);
    let colours = Colours::new(&a.classes);
    let cards = sample
        .iter()
        .map(|s| cards::card(s, paths.get(&s.name), &colours))
        .collect();
    Ok(Page {
        title: title(manifest, &opts.out_dir),
        generated: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
        run: manifest.map(sources::info),
        records: a.records,
        with_output: a.with_output,
        predictions: a.predictions,
        unnamed: a.unnamed,
        other_files,
        files: page::file_rows(&a),
        classes: page::class_rows(&a, &colours),
        other_classes: a.other_classes,
        confidence: stats::Bar::from_counts(&a.confidence),
        without_confidence: a.without_confidence,
        cards,
        sample: opts.sample,
        fields: a.fields.table(),
        untracked_fields: a.fields.untracked,
        numeric: a.fields.numeric(),
        videos: a.videos.views(),
        untracked_videos: a.videos.untracked,
        broken: a.broken,
        empty: a.empty,
        failed,
        missing,
        job,
    })
}

/// The failed items: those the results or the job's logs give a reason for
/// (results first), and, apart, the inputs with no result and no reason.
fn merge_failures(
    a: &mut Aggregates,
    job: &job::JobDetails,
    missing: &mut aggregate::Capped<aggregate::Failure>,
) -> aggregate::Capped<aggregate::Failure> {
    let mut failed = std::mem::take(&mut a.failed);
    let explained: HashSet<&str> = job.failures.items.iter().map(|f| f.name.as_str()).collect();
    for f in &job.failures.items {
        failed.push(f.clone());
    }
    failed.total += job.failures.total - job.failures.items.len() as u64;
    let before = missing.items.len() as u64;
    missing
        .items
        .retain(|f| !explained.contains(f.name.as_str()));
    missing.total -= before - missing.items.len() as u64;
    failed
}

fn title(manifest: Option<&rf_batch::state::Manifest>, out_dir: &Path) -> String {
    match manifest {
        Some(m) => format!("{} on {}", m.run.workflow_id, m.run.input_dir.display()),
        None => out_dir.display().to_string(),
    }
}
