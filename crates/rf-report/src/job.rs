//! The job's details as a run saved them: `.rf-state/rf-job.jsonl` in the
//! output directory, written by `rf run --report` while the service is still
//! at hand, so that `rf report` works offline. The first line is the job
//! (`GET .../jobs/{job}`'s answer); each further line is one of its error
//! logs (the failed items: `image-processing-failed`, with `fileName` and
//! `reason` in the payload).

use std::fs;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::aggregate::{Capped, Failure};

/// File name of the job details, in the run's state directory.
pub const JOB_DETAILS_FILE: &str = "rf-job.jsonl";

/// Where the job details of the run that wrote `out_dir` are.
pub fn job_details_path(out_dir: &Path) -> PathBuf {
    out_dir.join(".rf-state").join(JOB_DETAILS_FILE)
}

/// Writes the job details file, streamed (logs one at a time), to a
/// temporary name renamed into place by [`JobDetailsWriter::finish`].
#[derive(Debug)]
pub struct JobDetailsWriter {
    path: PathBuf,
    tmp: PathBuf,
    out: BufWriter<fs::File>,
}

impl JobDetailsWriter {
    /// Starts the file at `path` with the job document `job`.
    pub fn create(path: &Path, job: &Value) -> io::Result<Self> {
        let tmp = path.with_extension("jsonl.tmp");
        let mut w = JobDetailsWriter {
            path: path.to_path_buf(),
            out: BufWriter::new(fs::File::create(&tmp)?),
            tmp,
        };
        w.line(job)?;
        Ok(w)
    }

    /// Adds one error log of the job.
    pub fn log(&mut self, log: &Value) -> io::Result<()> {
        self.line(log)
    }

    fn line(&mut self, v: &Value) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, v)?;
        self.out.write_all(b"\n")
    }

    /// Flushes and renames the file into place.
    pub fn finish(mut self) -> io::Result<()> {
        self.out.flush()?;
        fs::rename(&self.tmp, &self.path)
    }
}

/// What the job details file says.
#[derive(Debug, Default, serde::Serialize)]
pub(crate) struct JobDetails {
    pub(crate) saved: bool,
    pub(crate) status: String,
    /// The job's last notification.
    pub(crate) message: String,
    pub(crate) created: String,
    pub(crate) updated: String,
    /// From creation to the last update, for people ("" if unknown).
    pub(crate) took: String,
    pub(crate) failures: Capped<Failure>,
    /// Error logs about no one item.
    pub(crate) errors: Capped<String>,
}

/// Reads the job details at `path` (a missing or unreadable file gives
/// `saved: false`; unreadable lines are skipped).
pub(crate) fn read(path: &Path) -> JobDetails {
    let mut d = JobDetails::default();
    let Ok(file) = fs::File::open(path) else {
        return d;
    };
    let mut lines = BufReader::new(file).lines().map_while(Result::ok);
    let Some(first) = lines.next() else {
        return d;
    };
    d.saved = true;
    if let Ok(job) = serde_json::from_str::<Value>(&first) {
        let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("").to_string();
        let flag = |p: &str| job.pointer(p).and_then(Value::as_bool).unwrap_or(false);
        d.status = if flag("/job/error") {
            "failed".to_string()
        } else if flag("/job/isTerminal") {
            "finished".to_string()
        } else {
            text(job.pointer("/job/currentStage"))
        };
        d.message = text(job.pointer("/job/lastNotification/message"));
        d.created = text(job.pointer("/job/createdAt"));
        d.updated = text(job.pointer("/job/lastUpdate"));
        d.took = took(&d.created, &d.updated);
    }
    for line in lines {
        if let Ok(log) = serde_json::from_str::<Value>(&line) {
            add_log(&mut d, &log);
        }
    }
    d
}

fn took(created: &str, updated: &str) -> String {
    let parse = |t: &str| chrono::DateTime::parse_from_rfc3339(t).ok();
    match (parse(created), parse(updated)) {
        (Some(c), Some(u)) => {
            let secs = (u - c).num_milliseconds() as f64 / 1000.0;
            format!("{secs:.1} s, from {}", c.format("%Y-%m-%d %H:%M:%S"))
        }
        _ => String::new(),
    }
}

fn add_log(d: &mut JobDetails, log: &Value) {
    let payload = log.get("payload");
    let text = |k: &str| payload.and_then(|p| p.get(k)).and_then(Value::as_str);
    let kind = log
        .get("logType")
        .and_then(Value::as_str)
        .unwrap_or("error");
    match text("fileName") {
        Some(name) => d.failures.push(Failure {
            name: name.to_string(),
            reason: text("reason").map_or_else(|| kind.to_string(), str::to_string),
        }),
        None => d
            .errors
            .push(match text("reason").or_else(|| text("message")) {
                Some(r) => format!("{kind}: {r}"),
                None => kind.to_string(),
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(JOB_DETAILS_FILE);
        let mut w = JobDetailsWriter::create(&p, &json!({"status": "ok",
            "job": {"isTerminal": true, "lastNotification": {"message": "done"}, "createdAt": "2026-01-01T00:00:00Z", "lastUpdate": "2026-01-01T00:01:00Z"}})).unwrap();
        w.log(&json!({"logType": "image-processing-failed", "payload": {"fileName": "a.jpg", "reason": "bad"}})).unwrap();
        w.log(&json!({"logType": "failure-rate-exceeded", "payload": {"message": "too many"}}))
            .unwrap();
        w.finish().unwrap();
        let d = read(&p);
        assert!(d.saved);
        assert_eq!(d.status, "finished");
        assert_eq!(d.message, "done");
        assert_eq!(d.took, "60.0 s, from 2026-01-01 00:00:00");
        assert_eq!(d.updated, "2026-01-01T00:01:00Z");
        assert_eq!(d.failures.items[0].name, "a.jpg");
        assert_eq!(d.failures.items[0].reason, "bad");
        assert_eq!(d.errors.items, ["failure-rate-exceeded: too many"]);
        assert!(!read(&dir.path().join("none")).saved);
    }
}
