//! Cross-cutting serde rules: open enums, unknown fields, timestamps,
//! "object or string" fields, `nextPageToken` presence, `None` omission and
//! the constant `type` tags.

use rf_types::*;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::support::{fixture_value, null_paths};

fn parse<T: DeserializeOwned>(value: Value) -> T {
    serde_json::from_value(value)
        .unwrap_or_else(|e| panic!("does not parse as {}: {e}", std::any::type_name::<T>()))
}

fn parse_err<T: DeserializeOwned + std::fmt::Debug>(value: Value) -> String {
    serde_json::from_value::<T>(value)
        .expect_err("must be rejected")
        .to_string()
}

/// Checks an open enum: known values map to known variants and back,
/// unknown values are kept and round-trip.
fn check_open_enum<T>(known: &[T], as_str: fn(&T) -> &str, is_known: fn(&T) -> bool)
where
    T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug + std::fmt::Display,
{
    assert!(!known.is_empty());
    for value in known {
        let json = serde_json::to_value(value).expect("serialize");
        assert_eq!(json, Value::String(as_str(value).to_owned()));
        let back: T = parse(json);
        assert_eq!(&back, value);
        assert!(is_known(&back));
        assert_eq!(back.to_string(), as_str(value));
    }
    let unknown: T = parse(json!("some-future-value-v9"));
    assert!(!is_known(&unknown));
    assert_eq!(as_str(&unknown), "some-future-value-v9");
    assert_eq!(
        serde_json::to_value(&unknown).expect("serialize"),
        json!("some-future-value-v9")
    );
}

#[test]
fn open_enums_keep_unknown_values() {
    check_open_enum(BatchType::KNOWN, BatchType::as_str, BatchType::is_known);
    check_open_enum(
        ContentType::KNOWN,
        ContentType::as_str,
        ContentType::is_known,
    );
    check_open_enum(
        NotificationCategory::KNOWN,
        NotificationCategory::as_str,
        NotificationCategory::is_known,
    );
    check_open_enum(
        MachineType::KNOWN,
        MachineType::as_str,
        MachineType::is_known,
    );
    check_open_enum(
        AggregationFormat::KNOWN,
        AggregationFormat::as_str,
        AggregationFormat::is_known,
    );
    check_open_enum(
        InferenceBackend::KNOWN,
        InferenceBackend::as_str,
        InferenceBackend::is_known,
    );
    check_open_enum(
        CompilationDevice::KNOWN,
        CompilationDevice::as_str,
        CompilationDevice::is_known,
    );
    check_open_enum(JobStatus::KNOWN, JobStatus::as_str, JobStatus::is_known);
    check_open_enum(JobState::KNOWN, JobState::as_str, JobState::is_known);
    assert_eq!(
        "nvidia-l40s".parse::<CompilationDevice>(),
        Ok(CompilationDevice::NvidiaL40s)
    );
}

#[test]
fn unknown_enum_values_round_trip_inside_models() {
    let mut batch = fixture_value("get_batch");
    batch["batch"]["batchType"] = json!("streaming-batch");
    batch["batch"]["batchContentType"] = json!("point-clouds");
    let resp: GetBatchResponse = parse(batch.clone());
    assert_eq!(
        resp.batch.batch_type,
        BatchType::Other("streaming-batch".into())
    );
    assert_eq!(
        resp.batch.batch_content_type,
        ContentType::Other("point-clouds".into())
    );
    assert_eq!(serde_json::to_value(&resp).expect("serialize"), batch);

    let mut job = fixture_value("webhook_job");
    job["job_state"] = json!("cancelled");
    let n: JobNotification = parse(job.clone());
    assert_eq!(n.job_state, JobState::Other("cancelled".into()));
    assert_eq!(serde_json::to_value(&n).expect("serialize"), job);

    let mut trt = fixture_value("job_trt");
    trt["compilationDevices"] = json!(["nvidia-h100"]);
    let def: JobDefinition = parse(trt.clone());
    assert_eq!(serde_json::to_value(&def).expect("serialize"), trt);
}

#[test]
fn log_severity_is_closed() {
    for severity in LogSeverity::ALL {
        assert_eq!(severity.as_str().parse::<LogSeverity>(), Ok(severity));
        assert_eq!(
            serde_json::to_value(severity).expect("serialize"),
            json!(severity.as_str())
        );
    }
    let err = "debug".parse::<LogSeverity>().expect_err("not a severity");
    assert_eq!(
        err.to_string(),
        r#"invalid log severity "debug": use info, warning or error"#
    );
    let mut logs = fixture_value("job_logs");
    logs["logs"][0]["severity"] = json!("critical");
    parse_err::<JobLogsResponse>(logs);
}

/// Adds `"x-extra": ...` to every object in `value`, except inside the
/// free-form maps listed in `skip` (their content is data, not schema).
fn add_unknown_fields(value: &mut Value, skip: &[&str]) {
    if let Value::Object(map) = value {
        for (k, v) in map.iter_mut() {
            if !skip.contains(&k.as_str()) {
                add_unknown_fields(v, skip);
            }
        }
        map.insert("x-extra".to_owned(), json!({"nested": [1, 2, 3]}));
    } else if let Value::Array(items) = value {
        for item in items {
            add_unknown_fields(item, skip);
        }
    }
}

fn check_unknown_fields_ignored<T>(fixture: &str)
where
    T: DeserializeOwned + PartialEq + std::fmt::Debug,
{
    const FREE_FORM: &[&str] = &[
        "workflowParameters",
        "imagesMetadataInputsMapping",
        "extensionHeaders",
        "statusMetadata",
        "payload",
        "jobDefinition",
        "lastNotification",
        "notification",
        "restartParametersOverride",
    ];
    let clean = fixture_value(fixture);
    let mut noisy = clean.clone();
    add_unknown_fields(&mut noisy, FREE_FORM);
    assert_ne!(clean, noisy);
    let a: T = parse(clean);
    let b: T = serde_json::from_value(noisy)
        .unwrap_or_else(|e| panic!("{fixture} with unknown fields must still parse: {e}"));
    assert_eq!(a, b, "{fixture}");
}

#[test]
fn unknown_fields_ignored_everywhere() {
    check_unknown_fields_ignored::<WorkspaceInfo>("workspace_info");
    check_unknown_fields_ignored::<ApiError>("api_error");
    check_unknown_fields_ignored::<GetBatchResponse>("get_batch");
    check_unknown_fields_ignored::<ListBatchesResponse>("list_batches");
    check_unknown_fields_ignored::<CountResponse>("count");
    check_unknown_fields_ignored::<ListPartsResponse>("list_parts");
    check_unknown_fields_ignored::<ListFilesResponse>("list_files");
    check_unknown_fields_ignored::<ListShardsResponse>("list_shards");
    check_unknown_fields_ignored::<SignedUrlResponse>("signed_url");
    check_unknown_fields_ignored::<ImageReferencesIngestRequest>("image_references_inline");
    check_unknown_fields_ignored::<ImageReferencesIngestRequest>("image_references_url");
    check_unknown_fields_ignored::<VideoReferencesIngestRequest>("video_references_inline");
    check_unknown_fields_ignored::<ImageReferencesIngestResponse>("image_references_response");
    check_unknown_fields_ignored::<VideoReferencesIngestResponse>("video_references_response");
    check_unknown_fields_ignored::<ShardNotificationConfig>("shard_notification_config");
    check_unknown_fields_ignored::<JobDefinition>("job_image_full");
    check_unknown_fields_ignored::<JobDefinition>("job_video");
    check_unknown_fields_ignored::<JobDefinition>("job_trt");
    check_unknown_fields_ignored::<ParametersOverride>("parameters_override");
    check_unknown_fields_ignored::<GetJobResponse>("get_job");
    check_unknown_fields_ignored::<ListJobsResponse>("list_jobs");
    check_unknown_fields_ignored::<ListStagesResponse>("list_stages");
    check_unknown_fields_ignored::<ListTasksResponse>("list_tasks");
    check_unknown_fields_ignored::<JobLogsResponse>("job_logs");
    check_unknown_fields_ignored::<WebhookPayload>("webhook_ingest_status");
    check_unknown_fields_ignored::<WebhookPayload>("webhook_files_status");
    check_unknown_fields_ignored::<WebhookPayload>("webhook_job");
}

#[test]
fn workspace_lookup_extra_fields() {
    let info: WorkspaceInfo = parse(json!({
        "workspace": "acme-vision",
        "welcome": "Welcome to the Roboflow API.",
        "instructions": "You are successfully authenticated.",
        "docs": "https://docs.roboflow.com"
    }));
    assert_eq!(info.workspace, "acme-vision");
}

#[test]
fn timestamps_in_several_formats() {
    let expected = rf_types::timestamp::parse_timestamp("2025-06-01T02:00:11.512Z")
        .expect("reference timestamp");
    for created in [
        "2025-06-01T02:00:11.512Z",
        "2025-06-01T02:00:11.512+00:00",
        "2025-06-01T04:00:11.512+02:00",
        "2025-06-01T02:00:11.512000Z",
        "2025-06-01T02:00:11.512",
        "2025-06-01 02:00:11.512",
        "2025-06-01T02:00:11.512+0000",
    ] {
        let mut batch = fixture_value("get_batch");
        batch["batch"]["createdDate"] = json!(created);
        let resp: GetBatchResponse = parse(batch);
        assert_eq!(resp.batch.created_date, expected, "{created}");
        let back = serde_json::to_value(&resp).expect("serialize");
        assert_eq!(back["batch"]["createdDate"], "2025-06-01T02:00:11.512Z");
    }
    let mut batch = fixture_value("get_batch");
    batch["batch"]["expiryDate"] = json!("next week");
    let err = parse_err::<GetBatchResponse>(batch);
    assert!(err.contains("invalid timestamp \"next week\""), "{err}");
    let mut batch = fixture_value("get_batch");
    batch["batch"]["expiryDate"] = json!(1_717_200_000);
    parse_err::<GetBatchResponse>(batch);
}

#[test]
fn whole_second_timestamps_have_no_fraction() {
    let tasks: ListTasksResponse = parse(fixture_value("list_tasks"));
    let json = serde_json::to_value(&tasks).expect("serialize");
    assert_eq!(json["tasks"][0]["eventTimestamp"], "2025-06-01T03:10:00Z");
}

#[test]
fn object_or_string_fields() {
    let text: Notification = parse(json!("hello"));
    assert_eq!(text, Notification::text("hello"));
    let object: Notification = parse(json!({"message": "hi", "n": 1}));
    assert_eq!(object.to_string(), r#"{"message":"hi","n":1}"#);
    assert_eq!(text.to_string(), "hello");
    parse_err::<Notification>(json!(42));
    parse_err::<Notification>(json!(["a"]));

    let mut job = fixture_value("get_job");
    job["job"]["lastNotification"] = json!({"stage": "export", "done": 3});
    let resp: GetJobResponse = parse(job.clone());
    assert!(
        resp.job
            .last_notification
            .as_ref()
            .is_some_and(|n| n.as_object().is_some())
    );
    assert_eq!(serde_json::to_value(&resp).expect("serialize"), job);

    job["job"]["lastNotification"] = Value::Null;
    let resp: GetJobResponse = parse(job.clone());
    assert_eq!(resp.job.last_notification, None);
    job["job"]
        .as_object_mut()
        .expect("object")
        .remove("lastNotification");
    assert_eq!(serde_json::to_value(&resp).expect("serialize"), job);

    let mut stages = fixture_value("list_stages");
    stages["stages"][0]["notification"] = json!("plain text now");
    let resp: ListStagesResponse = parse(stages);
    assert_eq!(
        resp.stages[0].notification.as_text(),
        Some("plain text now")
    );
}

#[test]
fn next_page_token_always_written_on_jobs_and_tasks() {
    let jobs = ListJobsResponse {
        jobs: vec![],
        next_page_token: None,
    };
    assert_eq!(
        serde_json::to_value(&jobs).expect("serialize"),
        json!({"jobs": [], "nextPageToken": null})
    );
    let tasks = ListTasksResponse {
        tasks: vec![],
        next_page_token: None,
    };
    assert_eq!(
        serde_json::to_value(&tasks).expect("serialize"),
        json!({"tasks": [], "nextPageToken": null})
    );
    // Reading: absent and null both mean "last page".
    let absent: ListJobsResponse = parse(json!({"jobs": []}));
    assert_eq!(absent.next_page_token, None);
    let absent: ListTasksResponse = parse(json!({"tasks": []}));
    assert_eq!(absent.next_page_token, None);
}

#[test]
fn next_page_token_omitted_on_other_lists_and_null_accepted() {
    let batches = ListBatchesResponse {
        batches: vec![],
        next_page_token: None,
    };
    assert_eq!(
        serde_json::to_value(&batches).expect("serialize"),
        json!({"batches": []})
    );
    // The contract's examples send an explicit null.
    let files: ListFilesResponse = parse(json!({"filesMetadata": [], "nextPageToken": null}));
    assert_eq!(files.next_page_token, None);
    assert_eq!(
        serde_json::to_value(&files).expect("serialize"),
        json!({"filesMetadata": []})
    );
    let shards: ListShardsResponse = parse(json!({"shards": [], "nextPageToken": null}));
    assert_eq!(shards.next_page_token, None);
    let logs: JobLogsResponse = parse(json!({"logs": [], "nextPageToken": null}));
    assert_eq!(logs.next_page_token, None);
}

#[test]
fn none_omitted_elsewhere() {
    // Minimal values of the models with optional fields: the only nulls
    // allowed are the ones the contract requires.
    let ts = rf_types::timestamp::parse_timestamp("2025-06-01T00:00:00Z").expect("timestamp");
    let definition = WorkflowJob::video(BatchId::new("b").expect("valid"), "ws", "wf")
        .build()
        .expect("valid job");
    let mut spec = definition.workflow().expect("workflow").clone();
    spec.processing_specification.persist_images_outputs = None;
    let minimal: Vec<(&str, Value, Vec<&str>)> = vec![
        (
            "job definition",
            serde_json::to_value(JobDefinition::SimpleImageProcessingV1(spec)).expect("ser"),
            vec![],
        ),
        (
            "parameters override",
            serde_json::to_value(ParametersOverride::default()).expect("ser"),
            vec![],
        ),
        (
            "file",
            serde_json::to_value(FileMetadata {
                download_url: "u".into(),
                file_name: "f".into(),
                part_name: None,
                shard_id: None,
                content_type: ContentType::Images,
                nested_content_type: None,
            })
            .expect("ser"),
            vec![],
        ),
        (
            "job",
            serde_json::to_value(GetJobResponse {
                job: JobMetadata {
                    job_id: "j".into(),
                    name: "j".into(),
                    job_definition: json!({}),
                    current_stage: None,
                    planned_stages: None,
                    error: false,
                    is_terminal: false,
                    last_notification: None,
                    created_at: ts,
                    last_update: ts,
                    restart_parameters_override: vec![],
                },
                status: None,
                job_status: None,
                progress: None,
            })
            .expect("ser"),
            vec![],
        ),
        (
            "task",
            serde_json::to_value(TaskStatus {
                task_id: "t".into(),
                notification: Notification::default(),
                status_type: "info".into(),
                progress: None,
                event_timestamp: ts,
            })
            .expect("ser"),
            vec!["progress"],
        ),
        (
            "staging webhook",
            serde_json::to_value(StagingNotification {
                event_id: "e".into(),
                ingest_id: "i".into(),
                batch_id: "b".into(),
                shard_id: None,
                notification: StagingNotificationBody::IngestStatus(IngestStatusNotification {
                    success: true,
                    error_details: None,
                }),
                delivery_attempt: 1,
            })
            .expect("ser"),
            vec!["shard_id"],
        ),
        (
            "references request",
            serde_json::to_value(ImageReferencesIngestRequest::from_url("https://x")).expect("ser"),
            vec![],
        ),
        (
            "part",
            serde_json::to_value(BatchPart {
                part_name: "p".into(),
                part_type: BatchType::SimpleBatch,
                content_type: ContentType::Images,
                part_description: None,
                nested_content_type: None,
            })
            .expect("ser"),
            vec![],
        ),
        (
            "log",
            serde_json::to_value(JobLog {
                created_at: ts,
                processing_stage_id: None,
                task_id: None,
                severity: LogSeverity::Info,
                reporting_module: "m".into(),
                log_type: "l".into(),
                payload: serde_json::Map::new(),
            })
            .expect("ser"),
            vec![],
        ),
    ];
    for (name, value, allowed) in minimal {
        assert_eq!(null_paths(&value), allowed, "{name}: {value}");
    }
    // Job metadata defaults are written (the CLI reads them as required).
    let job = serde_json::to_value(JobMetadata {
        job_id: "j".into(),
        name: "j".into(),
        job_definition: json!({}),
        current_stage: None,
        planned_stages: None,
        error: false,
        is_terminal: false,
        last_notification: None,
        created_at: ts,
        last_update: ts,
        restart_parameters_override: vec![],
    })
    .expect("ser");
    assert_eq!(job["error"], json!(false));
    assert_eq!(job["isTerminal"], json!(false));
    assert_eq!(job["restartParametersOverride"], json!([]));
}

#[test]
fn job_metadata_defaults_when_absent_or_null() {
    let mut job = fixture_value("get_job");
    let inner = job["job"].as_object_mut().expect("object");
    inner.remove("error");
    inner.remove("isTerminal");
    inner.insert("restartParametersOverride".into(), Value::Null);
    let resp: GetJobResponse = parse(job);
    assert!(!resp.job.error);
    assert!(!resp.job.is_terminal);
    assert!(resp.job.restart_parameters_override.is_empty());
}

#[test]
fn task_progress_null_is_written() {
    let tasks: ListTasksResponse = parse(fixture_value("list_tasks"));
    let json = serde_json::to_value(&tasks).expect("serialize");
    assert_eq!(json["tasks"][1]["progress"], Value::Null);
    assert!(
        json["tasks"][1]
            .as_object()
            .is_some_and(|o| o.contains_key("progress"))
    );
}

#[test]
fn trt_type_alias_accepted_and_normalised() {
    let mut body = fixture_value("job_trt");
    body["type"] = json!("TRT_COMPILATION_V1");
    let def: JobDefinition = parse(body);
    assert_eq!(def.kind_str(), "trt-compilation-v1");
    assert_eq!(
        serde_json::to_value(&def).expect("serialize"),
        fixture_value("job_trt")
    );
    // The older spec's default devices apply when the list is absent.
    let def: JobDefinition = parse(json!({"type": "TRT_COMPILATION_V1", "modelId": "m/1"}));
    let JobDefinition::TrtCompilationV1(job) = def else {
        panic!("expected trt");
    };
    assert_eq!(
        job.compilation_devices,
        vec![CompilationDevice::NvidiaT4, CompilationDevice::NvidiaL4]
    );
}

#[test]
fn constant_type_tags_are_checked() {
    let mut body = fixture_value("job_image_full");
    body["jobInput"]["type"] = json!("staging-batch-input-v2");
    let err = parse_err::<JobDefinition>(body);
    assert!(err.contains("staging-batch-input-v1"), "{err}");

    let mut body = fixture_value("job_image_full");
    body["computeConfiguration"]
        .as_object_mut()
        .expect("object")
        .remove("type");
    let err = parse_err::<JobDefinition>(body);
    assert!(err.contains("missing field `type`"), "{err}");

    let mut body = fixture_value("job_image_full");
    body["processingSpecification"]["type"] = json!(7);
    parse_err::<JobDefinition>(body);

    let mut body = fixture_value("job_image_full");
    body["type"] = json!("simple-audio-processing-v1");
    parse_err::<JobDefinition>(body);

    let mut body = fixture_value("parameters_override");
    body["type"] = json!("parameters-override-v2");
    parse_err::<ParametersOverride>(body);

    let mut body = fixture_value("webhook_job");
    body["type"] = json!("roboflow-data-staging-notification-v1");
    parse_err::<JobNotification>(body);

    let err = parse_err::<WebhookPayload>(json!({"type": "roboflow-other-v1"}));
    assert!(
        err.contains("unknown webhook payload type \"roboflow-other-v1\""),
        "{err}"
    );
    let err = parse_err::<WebhookPayload>(json!({"event_id": "e"}));
    assert!(err.contains("no string `type`"), "{err}");

    let mut body = fixture_value("webhook_files_status");
    body["notification"]["type"] = json!("ingest-unknown-v1");
    parse_err::<StagingNotification>(body);
}

#[test]
fn references_body_needs_exactly_one_source() {
    let err = parse_err::<ImageReferencesIngestRequest>(json!({"ingestId": "x"}));
    assert!(
        err.contains("missing `imageReferences` or `imageReferencesURL`"),
        "{err}"
    );
    let err = parse_err::<VideoReferencesIngestRequest>(json!({
        "videoReferences": [],
        "videoReferencesURL": "https://x"
    }));
    assert!(err.contains("not both"), "{err}");
    // Keys of the other request kind, or of no kind, do not count.
    parse_err::<ImageReferencesIngestRequest>(json!({"inline": [{"name": "a", "url": "u"}]}));
    let err = parse_err::<ImageReferencesIngestRequest>(json!({"imageReferences": "nope"}));
    assert!(err.contains("invalid `imageReferences`"), "{err}");
    parse_err::<VideoReferencesIngestRequest>(json!({"imageReferencesURL": "https://x"}));
    // Extra keys on reference lines are ignored.
    let req: ImageReferencesIngestRequest = parse(json!({
        "imageReferences": [{"name": "a.jpg", "url": "https://x/a.jpg", "size": 3}]
    }));
    assert_eq!(
        req.source,
        ReferencesSource::Inline(vec![Reference::new("a.jpg", "https://x/a.jpg")])
    );
}

#[test]
fn signed_url_headers_may_be_empty() {
    let resp: SignedUrlResponse = parse(json!({
        "signedURLDetails": {"uploadURL": "https://x/u", "extensionHeaders": {}}
    }));
    assert!(resp.signed_url_details.extension_headers.is_empty());
    assert_eq!(
        serde_json::to_value(&resp).expect("serialize"),
        json!({"signedURLDetails": {"uploadURL": "https://x/u", "extensionHeaders": {}}})
    );
}

#[test]
fn max_video_fps_keeps_number_form() {
    let mut body = fixture_value("job_video");
    body["processingSpecification"]["maxVideoFPS"] = json!(2.5);
    let def: JobDefinition = parse(body.clone());
    assert_eq!(serde_json::to_value(&def).expect("serialize"), body);
    assert_eq!(
        def.workflow()
            .and_then(|j| j.processing_specification.max_video_fps.as_ref())
            .and_then(serde_json::Number::as_f64),
        Some(2.5)
    );
}

#[test]
fn user_supplied_ids_validated_on_deserialize() {
    let mut body = fixture_value("job_image_minimal");
    body["jobInput"]["batchId"] = json!("Has Spaces");
    let err = parse_err::<JobDefinition>(body);
    assert!(err.contains("invalid batch id \"Has Spaces\""), "{err}");
}
