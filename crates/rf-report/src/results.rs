//! Reading result files: every `.jsonl` and `.csv` under `results/`, one
//! record at a time. A line that is not a JSON object (or a CSV row that
//! cannot be read) is reported as [`Line::Broken`], never an error.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::error::ReportError;

/// Deepest directory level searched under `results/`.
const MAX_DEPTH: usize = 8;

/// One line of a result file.
#[derive(Debug)]
pub(crate) enum Line {
    /// A record.
    Record(Map<String, Value>),
    /// A line that is not a record, and why.
    Broken(String),
}

/// The result files under `dir`, sorted, and how many other files were
/// there (counted, not read).
pub(crate) fn find(dir: &Path) -> Result<(Vec<PathBuf>, u64), ReportError> {
    let mut files = Vec::new();
    let mut other = 0;
    walk(dir, 0, &mut files, &mut other)?;
    files.sort();
    Ok((files, other))
}

fn walk(
    dir: &Path,
    depth: usize,
    files: &mut Vec<PathBuf>,
    other: &mut u64,
) -> Result<(), ReportError> {
    let read = |source| ReportError::Read {
        path: dir.to_path_buf(),
        source,
    };
    for entry in fs::read_dir(dir).map_err(read)? {
        let entry = entry.map_err(read)?;
        let kind = entry.file_type().map_err(read)?;
        let path = entry.path();
        if kind.is_dir() && depth < MAX_DEPTH {
            walk(&path, depth + 1, files, other)?;
        } else if kind.is_file() && format_of(&path).is_some() {
            files.push(path);
        } else {
            *other += 1;
        }
    }
    Ok(())
}

/// How a result file is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// One JSON object per line.
    Jsonl,
    /// A header row, then one row per record.
    Csv,
}

/// The format of `path`, by its extension.
pub(crate) fn format_of(path: &Path) -> Option<Format> {
    match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
        "jsonl" | "ndjson" => Some(Format::Jsonl),
        "csv" => Some(Format::Csv),
        _ => None,
    }
}

/// Calls `each` with every line of the result file at `path`.
pub(crate) fn read_file(path: &Path, mut each: impl FnMut(Line)) -> Result<(), ReportError> {
    let read = |source| ReportError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = fs::File::open(path).map_err(read)?;
    let reader = BufReader::with_capacity(256 * 1024, file);
    match format_of(path) {
        Some(Format::Csv) => read_csv(reader, &mut each),
        _ => read_jsonl(reader, &mut each).map_err(read),
    }
}

fn read_jsonl(mut reader: impl BufRead, each: &mut impl FnMut(Line)) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(4096);
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf)? == 0 {
            return Ok(());
        }
        let line = buf.trim_ascii();
        if line.is_empty() {
            continue;
        }
        each(parse_json_line(line));
    }
}

fn parse_json_line(line: &[u8]) -> Line {
    match serde_json::from_slice::<Value>(line) {
        Ok(Value::Object(m)) => Line::Record(m),
        Ok(other) => Line::Broken(format!(
            "a JSON {} where a record was expected",
            kind(&other)
        )),
        Err(e) => Line::Broken(format!("not JSON: {e}")),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn read_csv(reader: impl std::io::Read, each: &mut impl FnMut(Line)) -> Result<(), ReportError> {
    let mut csv = csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(true)
        .from_reader(reader);
    let headers = match csv.headers() {
        Ok(h) => h.clone(),
        Err(e) => {
            each(Line::Broken(format!("unreadable CSV header: {e}")));
            return Ok(());
        }
    };
    let mut row = csv::StringRecord::new();
    loop {
        match csv.read_record(&mut row) {
            Ok(false) => return Ok(()),
            Ok(true) => each(csv_record(&headers, &row)),
            Err(e) if e.is_io_error() => {
                each(Line::Broken(format!("CSV read stopped: {e}")));
                return Ok(());
            }
            Err(e) => each(Line::Broken(format!("unreadable CSV row: {e}"))),
        }
    }
}

fn csv_record(headers: &csv::StringRecord, row: &csv::StringRecord) -> Line {
    if row.len() != headers.len() {
        return Line::Broken(format!(
            "CSV row with {} fields under a header of {}",
            row.len(),
            headers.len()
        ));
    }
    let map = headers
        .iter()
        .zip(row.iter())
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k.to_string(), csv_value(v)))
        .collect();
    Line::Record(map)
}

/// A CSV cell as the value it was written from: nested values are compact
/// JSON, numbers and booleans plain text.
pub(crate) fn csv_value(cell: &str) -> Value {
    let t = cell.trim();
    if t.starts_with(['{', '['])
        && let Ok(v) = serde_json::from_str(t)
    {
        return v;
    }
    if let Ok(n) = t.parse::<f64>()
        && let Some(n) = serde_json::Number::from_f64(n)
    {
        return Value::Number(n);
    }
    match t {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        _ => Value::String(cell.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(path: &Path) -> Vec<Line> {
        let mut v = Vec::new();
        read_file(path, |l| v.push(l)).unwrap();
        v
    }

    #[test]
    fn jsonl_lines_and_broken_ones() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.jsonl");
        fs::write(&p, b"{\"a\":1}\n\nnot json\n[1]\n\xff\xfe\n{\"b\":2}").unwrap();
        let lines = lines_of(&p);
        assert_eq!(lines.len(), 5);
        assert!(matches!(&lines[0], Line::Record(m) if m["a"] == 1));
        assert!(matches!(&lines[1], Line::Broken(r) if r.starts_with("not JSON")));
        assert!(matches!(&lines[2], Line::Broken(r) if r.contains("array")));
        assert!(matches!(&lines[3], Line::Broken(_)));
        assert!(matches!(&lines[4], Line::Record(m) if m["b"] == 2));
    }

    #[test]
    fn csv_cells_become_values() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.csv");
        fs::write(
            &p,
            "file_name,predictions,n,ok\na.jpg,\"{\"\"predictions\"\":[]}\",3.5,true\nshort\n",
        )
        .unwrap();
        let lines = lines_of(&p);
        assert_eq!(lines.len(), 2);
        let Line::Record(m) = &lines[0] else { panic!() };
        assert_eq!(m["file_name"], "a.jpg");
        assert_eq!(m["predictions"]["predictions"], Value::Array(vec![]));
        assert_eq!(m["n"], 3.5);
        assert_eq!(m["ok"], true);
        assert!(matches!(&lines[1], Line::Broken(_)));
    }

    #[test]
    fn finds_result_files_recursively_sorted() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("r/x")).unwrap();
        fs::write(dir.path().join("r/x/b.csv"), "").unwrap();
        fs::write(dir.path().join("r/a.jsonl"), "").unwrap();
        fs::write(dir.path().join("r/notes.txt"), "").unwrap();
        let (files, other) = find(&dir.path().join("r")).unwrap();
        assert_eq!(files.len(), 2);
        assert!(files[0].ends_with("a.jsonl"));
        assert_eq!(other, 1);
    }
}
