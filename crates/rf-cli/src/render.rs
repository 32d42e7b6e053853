//! Turns API models into tables and text for people. (`--json` prints the
//! models themselves, with their wire names.)

use rf_types::{
    BatchMetadata, BatchPart, FileMetadata, JobLog, JobMetadata, JobStage, Notification,
    ShardStatus, StatusKind, TaskStatus, Timestamp, status_kind,
};

use crate::output::Table;

/// `2025-06-01 02:00:11Z`.
pub(crate) fn time(ts: &Timestamp) -> String {
    ts.format("%Y-%m-%d %H:%M:%SZ").to_string()
}

/// A notification as one short line.
pub(crate) fn notification(n: &Notification) -> String {
    match n {
        Notification::Text(t) => t.clone(),
        Notification::Object(map) if map.is_empty() => String::new(),
        Notification::Object(map) => object_line(map),
    }
}

/// A JSON object as one short line: its `message`, then the other fields
/// (`processed 12/12 files (failedFiles: 0)`); without a text `message`,
/// the object as JSON.
fn object_line(map: &serde_json::Map<String, serde_json::Value>) -> String {
    match map.get("message").and_then(|m| m.as_str()) {
        Some(message) if map.len() == 1 => message.to_owned(),
        Some(message) => {
            let rest: Vec<String> = map
                .iter()
                .filter(|(k, _)| k.as_str() != "message")
                .map(|(k, v)| match v {
                    serde_json::Value::String(s) => format!("{k}: {s}"),
                    other => format!("{k}: {other}"),
                })
                .collect();
            format!("{message} ({})", rest.join(", "))
        }
        None => serde_json::to_string(map).unwrap_or_default(),
    }
}

/// The state of a job in one word.
pub(crate) fn job_state(job: &JobMetadata) -> &'static str {
    match (job.is_terminal, job.error) {
        (false, false) => "running",
        (false, true) => "running (errors)",
        (true, false) => "succeeded",
        (true, true) => "failed",
    }
}

/// A stage or task status in one word.
pub(crate) fn status_word(status_type: &str) -> &'static str {
    match status_kind(status_type) {
        StatusKind::Running => "running",
        StatusKind::Succeeded => "succeeded",
        StatusKind::Failed => "failed",
        StatusKind::OtherTerminal => "ended",
    }
}

/// `rf batch list`.
pub(crate) fn batches(items: &[BatchMetadata]) -> Table {
    let mut t = Table::new(["BATCH ID", "TYPE", "CONTENT", "NAME", "CREATED", "EXPIRES"]);
    for b in items {
        t.row([
            b.batch_id.clone(),
            b.batch_type.to_string(),
            b.batch_content_type.to_string(),
            b.display_name.clone(),
            time(&b.created_date),
            time(&b.expiry_date),
        ]);
    }
    t
}

/// `rf batch show`.
pub(crate) fn batch(b: &BatchMetadata) -> Table {
    let mut t = Table::key_values();
    t.row(["batch id".to_owned(), b.batch_id.clone()]);
    t.row(["name".to_owned(), b.display_name.clone()]);
    t.row(["type".to_owned(), b.batch_type.to_string()]);
    t.row(["content".to_owned(), b.batch_content_type.to_string()]);
    t.row(["created".to_owned(), time(&b.created_date)]);
    t.row(["expires".to_owned(), time(&b.expiry_date)]);
    t
}

/// `rf batch files`. Download URLs are left out (they are long and signed);
/// `--json` has them.
pub(crate) fn files(items: &[FileMetadata]) -> Table {
    let mut t = Table::new(["FILE", "PART", "SHARD", "CONTENT"]);
    for f in items {
        t.row([
            f.file_name.clone(),
            f.part_name
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            f.shard_id
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            f.content_type.to_string(),
        ]);
    }
    t
}

/// `rf batch parts`.
pub(crate) fn parts(items: &[BatchPart]) -> Table {
    let mut t = Table::new(["PART", "TYPE", "CONTENT", "NESTED", "DESCRIPTION"]);
    for p in items {
        t.row([
            p.part_name.to_string(),
            p.part_type.to_string(),
            p.content_type.to_string(),
            p.nested_content_type
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            p.part_description.clone().unwrap_or_default(),
        ]);
    }
    t
}

/// `rf batch shards`.
pub(crate) fn shards(items: &[ShardStatus]) -> Table {
    let mut t = Table::new(["SHARD", "STATUS", "TYPE", "OBJECTS", "UPDATED"]);
    for s in items {
        t.row([
            s.shard_id.to_string(),
            s.status_name.clone(),
            s.status_type.clone(),
            s.shard_objects_count.to_string(),
            time(&s.event_timestamp),
        ]);
    }
    t
}

/// `rf job list`.
pub(crate) fn jobs(items: &[JobMetadata]) -> Table {
    let mut t = Table::new(["JOB ID", "NAME", "STATE", "STAGE", "CREATED", "UPDATED"]);
    for j in items {
        t.row([
            j.job_id.clone(),
            j.name.clone(),
            job_state(j).to_owned(),
            j.current_stage.clone().unwrap_or_default(),
            time(&j.created_at),
            time(&j.last_update),
        ]);
    }
    t
}

/// `rf job show`.
pub(crate) fn job(j: &JobMetadata) -> Table {
    let mut t = Table::key_values();
    t.row(["job id".to_owned(), j.job_id.clone()]);
    t.row(["name".to_owned(), j.name.clone()]);
    t.row(["state".to_owned(), job_state(j).to_owned()]);
    let kind = j
        .job_definition
        .get("type")
        .and_then(|v| v.as_str())
        .unwrap_or_default();
    t.row(["type".to_owned(), kind.to_owned()]);
    let input = j
        .job_definition
        .pointer("/jobInput/batchId")
        .and_then(|v| v.as_str())
        .unwrap_or_default();
    t.row(["input batch".to_owned(), input.to_owned()]);
    let workflow = j
        .job_definition
        .pointer("/processingSpecification/workflowId")
        .and_then(|v| v.as_str())
        .unwrap_or_default();
    t.row(["workflow".to_owned(), workflow.to_owned()]);
    let planned = j.planned_stages.clone().unwrap_or_default();
    let stage = match &j.current_stage {
        Some(current) if !planned.is_empty() => format!("{current} (of {})", planned.join(", ")),
        Some(current) => current.clone(),
        None => String::new(),
    };
    t.row(["stage".to_owned(), stage]);
    t.row([
        "last notification".to_owned(),
        j.last_notification
            .as_ref()
            .map(notification)
            .unwrap_or_default(),
    ]);
    t.row(["created".to_owned(), time(&j.created_at)]);
    t.row(["updated".to_owned(), time(&j.last_update)]);
    if !j.restart_parameters_override.is_empty() {
        t.row([
            "restarts".to_owned(),
            j.restart_parameters_override.len().to_string(),
        ]);
    }
    t
}

/// `rf job stages`.
pub(crate) fn stages(items: &[JobStage]) -> Table {
    let mut t = Table::new([
        "STAGE ID",
        "NAME",
        "STATE",
        "TASKS",
        "OUTPUT BATCHES",
        "STARTED",
        "NOTIFICATION",
    ]);
    for s in items {
        t.row([
            s.processing_stage_id.to_string(),
            s.processing_stage_name.clone(),
            status_word(&s.status_type).to_owned(),
            s.tasks_number.to_string(),
            s.output_batches.join(","),
            time(&s.start_timestamp),
            notification(&s.notification),
        ]);
    }
    t
}

/// `rf job tasks`.
pub(crate) fn tasks(items: &[TaskStatus]) -> Table {
    let mut t = Table::new(["TASK", "STATE", "PROGRESS", "UPDATED", "NOTIFICATION"]);
    for task in items {
        t.row([
            task.task_id.to_string(),
            status_word(&task.status_type).to_owned(),
            task.progress
                .map(|p| format!("{:.0}%", (p * 100.0).clamp(0.0, 100.0)))
                .unwrap_or_else(|| "-".to_owned()),
            time(&task.event_timestamp),
            notification(&task.notification),
        ]);
    }
    t
}

/// One line of `rf job logs`.
pub(crate) fn log_line(log: &JobLog) -> String {
    let mut line = format!(
        "{} {:<7} {}",
        time(&log.created_at),
        log.severity.as_str(),
        log.log_type
    );
    if let Some(stage) = &log.processing_stage_id {
        line.push_str(&format!(" stage={stage}"));
    }
    if let Some(task) = &log.task_id {
        line.push_str(&format!(" task={task}"));
    }
    if !log.payload.is_empty() {
        // `job-aborted stage=processing: job aborted by user`; a payload
        // without a message as JSON after a space.
        let has_message = log.payload.get("message").is_some_and(|m| m.is_string());
        line.push_str(if has_message { ": " } else { " " });
        line.push_str(&object_line(&log.payload));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts() -> Timestamp {
        rf_types::timestamp::parse_timestamp("2025-06-01T02:00:11.512Z").unwrap()
    }

    #[test]
    fn times_are_short_and_utc() {
        assert_eq!(time(&ts()), "2025-06-01 02:00:11Z");
    }

    #[test]
    fn notifications_render_on_one_line() {
        assert_eq!(
            notification(&Notification::Text("3 of 12".into())),
            "3 of 12"
        );
        let mut map = serde_json::Map::new();
        map.insert("message".into(), "done".into());
        assert_eq!(notification(&Notification::Object(map.clone())), "done");
        map.insert("failedFiles".into(), 1.into());
        map.insert("stage".into(), "export".into());
        assert_eq!(
            notification(&Notification::Object(map)),
            "done (failedFiles: 1, stage: export)"
        );
        let mut bare = serde_json::Map::new();
        bare.insert("n".into(), 1.into());
        assert_eq!(notification(&Notification::Object(bare)), r#"{"n":1}"#);
    }

    #[test]
    fn log_lines_tell_a_message_in_words_and_other_payloads_as_json() {
        let log: JobLog = serde_json::from_value(serde_json::json!({
            "createdAt": "2025-06-01T02:00:11Z", "severity": "warning",
            "logType": "job-aborted", "processingStageId": "processing", "reportingModule": "rf",
            "payload": {"message": "job aborted by user"}
        }))
        .unwrap();
        assert_eq!(
            log_line(&log),
            "2025-06-01 02:00:11Z warning job-aborted stage=processing: job aborted by user"
        );
        let log: JobLog = serde_json::from_value(serde_json::json!({
            "createdAt": "2025-06-01T02:00:11Z", "severity": "info",
            "logType": "job-created", "reportingModule": "rf",
            "payload": {"type": "simple-image-processing-v1"}
        }))
        .unwrap();
        assert_eq!(
            log_line(&log),
            r#"2025-06-01 02:00:11Z info    job-created {"type":"simple-image-processing-v1"}"#
        );
    }

    #[test]
    fn job_tables_show_state_and_stage() {
        let job: JobMetadata = serde_json::from_value(serde_json::json!({
            "jobId": "job-1", "name": "nightly", "jobDefinition": {
                "type": "simple-image-processing-v1",
                "jobInput": {"type": "staging-batch-input-v1", "batchId": "b1"},
                "processingSpecification": {"workflowId": "wf"}
            },
            "currentStage": "export", "plannedStages": ["processing", "export"],
            "error": true, "isTerminal": true,
            "createdAt": "2025-06-01T02:00:11Z", "lastUpdate": "2025-06-01T02:10:11Z"
        }))
        .unwrap();
        let text = jobs(std::slice::from_ref(&job)).render();
        assert!(text.contains("job-1") && text.contains("failed"), "{text}");
        let text = super::job(&job).render();
        assert!(text.contains("export (of processing, export)"), "{text}");
        assert!(text.contains("wf") && text.contains("b1"), "{text}");
    }

    #[test]
    fn status_words() {
        assert_eq!(status_word("info"), "running");
        assert_eq!(status_word("SUCCESS"), "succeeded");
        assert_eq!(status_word("task-error"), "failed");
        assert_eq!(status_word("aborted"), "ended");
    }
}
