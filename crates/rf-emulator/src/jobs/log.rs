//! The job log: entries the runner adds as a job goes (created, started,
//! stage planned, file failed, task failed, job ended), served by
//! `GET .../jobs/{jobId}/logs`.

use chrono::Utc;
use serde_json::{Map, Value};

use crate::model::{Job, LogRec};

/// Most log entries kept per job.
const MAX_LOGS: usize = 20_000;

/// What a log entry says: its severity (`info`, `warning`, `error`), its
/// type (`job-started`, `image-processing-failed`, ...) and its payload (an
/// object; anything else is kept as `{"message": ...}`).
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    severity: &'static str,
    log_type: &'static str,
    payload: Value,
}

impl Entry {
    pub(crate) fn new(severity: &'static str, log_type: &'static str, payload: Value) -> Self {
        Self {
            severity,
            log_type,
            payload,
        }
    }
}

/// Appends a log entry to a job, about one of its stages and tasks.
pub(crate) fn push_log(job: &mut Job, stage: Option<&str>, task: Option<&str>, entry: Entry) {
    if job.logs.len() >= MAX_LOGS {
        return;
    }
    let payload = match entry.payload {
        Value::Object(m) => m,
        other => {
            let mut m = Map::new();
            m.insert("message".into(), other);
            m
        }
    };
    job.logs.push(LogRec {
        created: Utc::now(),
        stage: stage.map(str::to_string),
        task: task.map(str::to_string),
        severity: entry.severity.to_string(),
        module: "emulator-runner".into(),
        log_type: entry.log_type.to_string(),
        payload,
    });
}
