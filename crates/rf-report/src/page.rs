//! The page's model (everything the template shows, computed here so the
//! template only lays it out) and its rendering with minijinja.

use serde::Serialize;

use crate::aggregate::{Aggregates, Broken, Capped, Failure};
use crate::cards::{Card, Colours};
use crate::fields::FieldView;
use crate::job::JobDetails;
use crate::sources::RunInfo;
use crate::stats::{BINS, Bar, NumericView};
use crate::video::VideoView;

/// The template (HTML, autoescaped).
const TEMPLATE: &str = include_str!("../templates/report.html");
/// The page's stylesheet and script, inlined by the template.
const STYLE: &str = include_str!("../templates/report.css");
const SCRIPT: &str = include_str!("../templates/report.js");

/// A class and its count.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ClassRow {
    pub(crate) name: String,
    pub(crate) count: u64,
    pub(crate) pct: f64,
    pub(crate) colour: &'static str,
}

/// A result file read.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct FileRow {
    pub(crate) name: String,
    pub(crate) records: u64,
    pub(crate) broken: u64,
}

/// Everything the page shows.
#[derive(Debug, Serialize)]
pub(crate) struct Page {
    pub(crate) title: String,
    pub(crate) generated: String,
    pub(crate) run: Option<RunInfo>,
    pub(crate) job: JobDetails,
    pub(crate) records: u64,
    pub(crate) with_output: u64,
    pub(crate) predictions: u64,
    pub(crate) unnamed: u64,
    pub(crate) other_files: u64,
    pub(crate) files: Vec<FileRow>,
    pub(crate) broken: Capped<Broken>,
    pub(crate) classes: Vec<ClassRow>,
    pub(crate) other_classes: u64,
    pub(crate) confidence: Vec<Bar>,
    pub(crate) without_confidence: u64,
    pub(crate) cards: Vec<Card>,
    pub(crate) sample: usize,
    pub(crate) empty: Capped<String>,
    pub(crate) failed: Capped<Failure>,
    pub(crate) missing: Capped<Failure>,
    pub(crate) fields: Vec<FieldView>,
    pub(crate) untracked_fields: u64,
    pub(crate) numeric: Vec<NumericView>,
    pub(crate) videos: Vec<VideoView>,
    pub(crate) untracked_videos: u64,
}

/// The classes by count, most frequent first, with their colours.
pub(crate) fn class_rows(a: &Aggregates, colours: &Colours) -> Vec<ClassRow> {
    let top = a.classes.values().copied().max().unwrap_or(1).max(1) as f64;
    let mut rows: Vec<ClassRow> = a
        .classes
        .iter()
        .map(|(name, &count)| ClassRow {
            name: name.clone(),
            count,
            pct: (count as f64 * 1000.0 / top).round() / 10.0,
            colour: colours.of(name),
        })
        .collect();
    rows.sort_by(|x, y| y.count.cmp(&x.count).then_with(|| x.name.cmp(&y.name)));
    rows
}

/// The result files read, for the summary.
pub(crate) fn file_rows(a: &Aggregates) -> Vec<FileRow> {
    a.files
        .iter()
        .map(|(name, records, broken)| FileRow {
            name: name.clone(),
            records: *records,
            broken: *broken,
        })
        .collect()
}

/// Lower bounds of the confidence histogram's bars, as labels.
fn confidence_labels() -> Vec<String> {
    (0..BINS)
        .map(|i| format!("{:.2}", i as f64 / BINS as f64))
        .collect()
}

/// The page as HTML.
pub(crate) fn render(page: &Page) -> Result<String, minijinja::Error> {
    let mut env = minijinja::Environment::new();
    env.add_template("report.html", TEMPLATE)?;
    let tmpl = env.get_template("report.html")?;
    tmpl.render(minijinja::context! {
        page => page,
        style => minijinja::Value::from_safe_string(STYLE.to_string()),
        script => minijinja::Value::from_safe_string(SCRIPT.to_string()),
        confidence_labels => confidence_labels(),
    })
}
