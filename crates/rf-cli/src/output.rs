//! Everything `rf` writes: results on stdout (tables, text, one JSON document
//! or JSON lines), notes and warnings on stderr.
//!
//! stdout carries only results, never banners or progress, so it can be piped.
//! Writes go through `std::io::Write` (not `println!`) so that a closed pipe is
//! an error we turn into a quiet exit 0 instead of a panic.

use std::io::Write;

use indicatif::MultiProgress;
use serde::Serialize;

use crate::error::{CliError, Result};

/// Where and how results and notes are written.
#[derive(Debug, Clone)]
pub(crate) struct Output {
    json: bool,
    quiet: bool,
    /// Progress bars currently drawn on stderr; notes are printed above them.
    bars: MultiProgress,
}

impl Output {
    /// `json`: results as JSON; `quiet`: no notes or warnings on stderr.
    pub(crate) fn new(json: bool, quiet: bool, bars: MultiProgress) -> Self {
        Output { json, quiet, bars }
    }

    /// Whether results are JSON.
    pub(crate) fn is_json(&self) -> bool {
        self.json
    }

    /// The progress-bar container shared with the progress renderer.
    pub(crate) fn bars(&self) -> &MultiProgress {
        &self.bars
    }

    /// Writes one JSON document (pretty-printed) to stdout.
    pub(crate) fn document<T: Serialize + ?Sized>(&self, value: &T) -> Result<()> {
        let text = serde_json::to_string_pretty(value)
            .map_err(|e| CliError::local(format!("could not encode the result as json: {e}")))?;
        self.stdout_line(&text)
    }

    /// Writes one compact JSON value and a newline to stdout, then flushes
    /// (for streams read line by line).
    pub(crate) fn json_line<T: Serialize + ?Sized>(&self, value: &T) -> Result<()> {
        let text = serde_json::to_string(value)
            .map_err(|e| CliError::local(format!("could not encode the result as json: {e}")))?;
        self.stdout_line(&text)
    }

    /// Writes a line of text to stdout.
    pub(crate) fn stdout_line(&self, text: &str) -> Result<()> {
        let text = crate::secrets::scrub(text);
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes())
            .and_then(|()| out.write_all(b"\n"))
            .and_then(|()| out.flush())
            .map_err(CliError::stdout)
    }

    /// Writes text to stdout as is (no newline added), flushing it.
    pub(crate) fn stdout_raw(&self, text: &str) -> Result<()> {
        let text = crate::secrets::scrub(text);
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .map_err(CliError::stdout)
    }

    /// Writes a table to stdout.
    pub(crate) fn table(&self, table: &Table) -> Result<()> {
        let text = table.render();
        if text.is_empty() {
            return Ok(());
        }
        let text = crate::secrets::scrub(&text);
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .map_err(CliError::stdout)
    }

    /// A note for the user on stderr (`rf: ...`), unless `-q`.
    pub(crate) fn note(&self, text: &str) {
        if !self.quiet {
            self.stderr_line(&format!("rf: {text}"));
        }
    }

    /// A warning on stderr (`rf: warning: ...`), unless `-q`.
    pub(crate) fn warn(&self, text: &str) {
        if !self.quiet {
            self.stderr_line(&format!("rf: warning: {text}"));
        }
    }

    /// Prints a line on stderr above any progress bars.
    pub(crate) fn stderr_line(&self, line: &str) {
        let line = crate::secrets::scrub(line);
        self.bars.suspend(|| {
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "{line}");
        });
    }
}

/// A plain text table: a header row and aligned columns, two spaces apart.
#[derive(Debug, Default)]
pub(crate) struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
    show_headers: bool,
}

impl Table {
    /// A table with these column headers.
    pub(crate) fn new<I, S>(headers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Table {
            headers: headers.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
            show_headers: true,
        }
    }

    /// A two-column `name  value` block without a header row.
    pub(crate) fn key_values() -> Self {
        Table {
            headers: vec![String::new(), String::new()],
            rows: Vec::new(),
            show_headers: false,
        }
    }

    /// Adds a row; missing cells are empty, extra cells are ignored.
    pub(crate) fn row<I, S>(&mut self, cells: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut row: Vec<String> = cells
            .into_iter()
            .map(Into::into)
            .map(|c| c.replace(['\n', '\r', '\t'], " "))
            .take(self.headers.len())
            .collect();
        row.resize(self.headers.len(), String::new());
        self.rows.push(row);
    }

    /// The table as text, one line per row, each ending in a newline.
    pub(crate) fn render(&self) -> String {
        let columns = self.headers.len();
        if columns == 0 {
            return String::new();
        }
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut text = String::new();
        let header = self.show_headers.then_some(&self.headers);
        for row in header.into_iter().chain(&self.rows) {
            let mut line = String::new();
            for (i, (cell, width)) in row.iter().zip(&widths).enumerate() {
                line.push_str(cell);
                if i + 1 < columns {
                    let pad = width - cell.chars().count() + 2;
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            text.push_str(line.trim_end());
            text.push('\n');
        }
        text
    }
}

/// Formats a byte count for people (`1.5 MiB`).
pub(crate) fn human_bytes(bytes: u64) -> String {
    indicatif::BinaryBytes(bytes).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns_and_trims_line_ends() {
        let mut t = Table::new(["ID", "TYPE", "NAME"]);
        t.row(["a", "simple-batch", "x"]);
        t.row(["longer-id", "sharded", ""]);
        assert_eq!(
            t.render(),
            "ID         TYPE          NAME\n\
             a          simple-batch  x\n\
             longer-id  sharded\n"
        );
    }

    #[test]
    fn table_cells_stay_on_one_line_and_rows_are_padded() {
        let mut t = Table::new(["A", "B"]);
        t.row(["multi\nline"]);
        assert_eq!(t.render(), "A           B\nmulti line\n");
    }

    #[test]
    fn key_value_blocks_have_no_header() {
        let mut t = Table::key_values();
        t.row(["batch", "b1"]);
        t.row(["output batch", "o1"]);
        assert_eq!(t.render(), "batch         b1\noutput batch  o1\n");
    }

    #[test]
    fn bytes_are_human_readable() {
        assert_eq!(human_bytes(1536), "1.50 KiB");
    }
}
