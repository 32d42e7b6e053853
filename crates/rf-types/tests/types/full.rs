//! Fully-populated values of every model (every `Option` set, every list
//! non-empty), built from Rust struct literals so a renamed field shows up
//! in their JSON.

use std::collections::BTreeMap;

use rf_types::*;
use serde::Serialize;
use serde_json::{Map, Value, json};

fn ts() -> Timestamp {
    rf_types::timestamp::parse_timestamp("2025-06-01T02:00:11.512Z").expect("valid timestamp")
}

fn to_value<T: Serialize>(model: &T) -> Value {
    serde_json::to_value(model).expect("models always serialize")
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("expected an object, got {other}"),
    }
}

fn batch() -> BatchMetadata {
    BatchMetadata {
        display_name: "d".into(),
        batch_id: "b".into(),
        batch_type: BatchType::SimpleBatch,
        batch_content_type: ContentType::Images,
        created_date: ts(),
        expiry_date: ts(),
    }
}

fn compute() -> ComputeConfiguration {
    ComputeConfiguration {
        machine_type: Some(MachineType::Gpu),
        workers_per_machine: Some(2),
    }
}

fn workflow_job() -> WorkflowJob {
    WorkflowJob {
        job_input: StagingBatchInput {
            batch_id: BatchId::new("b1").expect("valid"),
            part_name: Some("images".into()),
            images_metadata_part: Some("metadata".into()),
        },
        compute_configuration: compute(),
        processing_specification: WorkflowsProcessingSpecification {
            workspace: "ws".into(),
            workflow_id: "wf".into(),
            workflow_parameters: Some(object(json!({"p": 1}))),
            image_input_name: Some("image".into()),
            persist_images_outputs: Some(true),
            images_outputs_to_be_persisted: Some(vec!["out".into()]),
            aggregation_format: Some(AggregationFormat::Csv),
            max_video_fps: Some(5.into()),
            images_metadata_inputs_mapping: Some(BTreeMap::from([(
                "input".to_owned(),
                "key".to_owned(),
            )])),
        },
        processing_timeout_seconds: Some(3600),
        max_parallel_tasks: Some(4),
        notifications_url: Some("https://hooks.example".into()),
        inference_backend: Some(InferenceBackend::InferenceModels),
        max_image_failure_rate: Some(0.5),
    }
}

fn job_metadata() -> JobMetadata {
    JobMetadata {
        job_id: "job-1".into(),
        name: "n".into(),
        job_definition: json!({"type": "trt-compilation-v1"}),
        current_stage: Some(STAGE_PROCESSING.into()),
        planned_stages: Some(vec![STAGE_PROCESSING.into()]),
        error: true,
        is_terminal: true,
        last_notification: Some(Notification::text("t")),
        created_at: ts(),
        last_update: ts(),
        restart_parameters_override: vec![json!({})],
    }
}

fn references_inline() -> Vec<Reference> {
    vec![Reference::new("a.jpg", "https://x.example/a.jpg")]
}

/// `(model name, fully-populated JSON)` for every model. Some models appear
/// twice, once per shape (`ImageReferencesIngestRequest` inline and by URL).
pub(crate) fn full_values() -> Vec<(&'static str, Value)> {
    let mut image_refs = ImageReferencesIngestRequest::inline(references_inline());
    image_refs.ingest_id = Some("i".into());
    image_refs.notifications_url = Some("https://hooks.example".into());
    image_refs.notification_categories = Some(vec![NotificationCategory::FilesStatus]);
    let mut image_refs_url = image_refs.clone();
    image_refs_url.source = ReferencesSource::Url("https://x.example/refs.jsonl".into());
    let mut video_refs = VideoReferencesIngestRequest::inline(references_inline());
    video_refs.ingest_id = image_refs.ingest_id.clone();
    video_refs.notifications_url = image_refs.notifications_url.clone();
    video_refs.notification_categories = image_refs.notification_categories.clone();
    let mut video_refs_url = video_refs.clone();
    video_refs_url.source = ReferencesSource::Url("https://x.example/refs.jsonl".into());

    vec![
        ("ApiError", to_value(&ApiError::new("e"))),
        ("StatusOk", to_value(&StatusOk::ok())),
        (
            "WorkspaceInfo",
            to_value(&WorkspaceInfo {
                workspace: "ws".into(),
            }),
        ),
        (
            "GetBatchResponse",
            to_value(&GetBatchResponse { batch: batch() }),
        ),
        (
            "ListBatchesResponse",
            to_value(&ListBatchesResponse {
                batches: vec![batch()],
                next_page_token: Some("t".into()),
            }),
        ),
        ("CountResponse", to_value(&CountResponse { count: 1 })),
        (
            "ListPartsResponse",
            to_value(&ListPartsResponse {
                batch_parts: vec![BatchPart {
                    part_name: "p".into(),
                    part_type: BatchType::ShardedBatch,
                    content_type: ContentType::Archives,
                    part_description: Some("d".into()),
                    nested_content_type: Some(ContentType::Metadata),
                }],
            }),
        ),
        (
            "ListFilesResponse",
            to_value(&ListFilesResponse {
                files_metadata: vec![FileMetadata {
                    download_url: "https://x.example/f".into(),
                    file_name: "f".into(),
                    part_name: Some("p".into()),
                    shard_id: Some("s".into()),
                    content_type: ContentType::Archives,
                    nested_content_type: Some(ContentType::Images),
                }],
                next_page_token: Some("t".into()),
            }),
        ),
        (
            "ListShardsResponse",
            to_value(&ListShardsResponse {
                shards: vec![ShardStatus {
                    shard_id: "s".into(),
                    status_name: "n".into(),
                    status_type: "info".into(),
                    event_timestamp: ts(),
                    shard_objects_count: 1,
                    status_metadata: Some(json!({"k": 1})),
                }],
                next_page_token: Some("t".into()),
            }),
        ),
        (
            "SignedUrlResponse",
            to_value(&SignedUrlResponse {
                signed_url_details: SignedUrlDetails {
                    upload_url: "https://x.example/u".into(),
                    extension_headers: BTreeMap::from([("h".to_owned(), "v".to_owned())]),
                },
            }),
        ),
        ("Reference", to_value(&references_inline()[0])),
        (
            "ImageReferencesIngestRequest(inline)",
            to_value(&image_refs),
        ),
        (
            "ImageReferencesIngestRequest(url)",
            to_value(&image_refs_url),
        ),
        (
            "VideoReferencesIngestRequest(inline)",
            to_value(&video_refs),
        ),
        (
            "VideoReferencesIngestRequest(url)",
            to_value(&video_refs_url),
        ),
        (
            "ImageReferencesIngestResponse",
            to_value(&ImageReferencesIngestResponse {
                ingest_id: "i".into(),
                shard_ids: Some(vec!["s".into()]),
                duplicated: Some(true),
            }),
        ),
        (
            "VideoReferencesIngestResponse",
            to_value(&VideoReferencesIngestResponse {
                ingest_id: "i".into(),
                duplicated: Some(true),
            }),
        ),
        (
            "ShardNotificationConfig",
            to_value(&ShardNotificationConfig {
                ingest_id: "i".into(),
                notifications_url: "https://hooks.example".into(),
            }),
        ),
        (
            "JobDefinition(image)",
            to_value(&JobDefinition::SimpleImageProcessingV1(workflow_job())),
        ),
        (
            "JobDefinition(video)",
            to_value(&JobDefinition::SimpleVideoProcessingV1(workflow_job())),
        ),
        (
            "JobDefinition(trt)",
            to_value(&JobDefinition::TrtCompilationV1(TrtCompilationJob {
                model_id: "m/1".into(),
                compilation_devices: vec![CompilationDevice::NvidiaL4],
                notifications_url: Some("https://hooks.example".into()),
            })),
        ),
        (
            "ParametersOverride",
            to_value(&ParametersOverride {
                compute_configuration: Some(compute()),
                max_parallel_tasks: Some(1),
                processing_timeout_seconds: Some(60.0),
                max_image_failure_rate: Some(0.1),
            }),
        ),
        (
            "GetJobResponse",
            to_value(&GetJobResponse {
                job: job_metadata(),
                status: Some("ok".into()),
                job_status: Some(JobStatus::Completed),
                progress: Some(1.0),
            }),
        ),
        (
            "ListJobsResponse",
            to_value(&ListJobsResponse {
                jobs: vec![job_metadata()],
                next_page_token: Some("t".into()),
            }),
        ),
        (
            "ListStagesResponse",
            to_value(&ListStagesResponse {
                stages: vec![JobStage {
                    processing_stage_id: "s".into(),
                    processing_stage_name: STAGE_EXPORT.into(),
                    tasks_number: 1,
                    output_batches: vec!["o".into()],
                    start_timestamp: ts(),
                    notification: Notification::text("n"),
                    status_type: "info".into(),
                    last_event_timestamp: ts(),
                }],
            }),
        ),
        (
            "ListTasksResponse",
            to_value(&ListTasksResponse {
                tasks: vec![TaskStatus {
                    task_id: "t".into(),
                    notification: Notification::text("n"),
                    status_type: "info".into(),
                    progress: Some(0.5),
                    event_timestamp: ts(),
                }],
                next_page_token: Some("t".into()),
            }),
        ),
        (
            "JobLogsResponse",
            to_value(&JobLogsResponse {
                logs: vec![JobLog {
                    created_at: ts(),
                    processing_stage_id: Some("s".into()),
                    task_id: Some("t".into()),
                    severity: LogSeverity::Warning,
                    reporting_module: "m".into(),
                    log_type: "l".into(),
                    payload: object(json!({"k": "v"})),
                }],
                next_page_token: Some("t".into()),
            }),
        ),
        (
            "StagingNotification(ingest-status)",
            to_value(&StagingNotification {
                event_id: "e".into(),
                ingest_id: "i".into(),
                batch_id: "b".into(),
                shard_id: Some("s".into()),
                notification: StagingNotificationBody::IngestStatus(IngestStatusNotification {
                    success: false,
                    error_details: Some(ErrorDetails {
                        kind: "k".into(),
                        reason: "r".into(),
                    }),
                }),
                delivery_attempt: 2,
            }),
        ),
        (
            "StagingNotification(files-status)",
            to_value(&StagingNotification {
                event_id: "e".into(),
                ingest_id: "i".into(),
                batch_id: "b".into(),
                shard_id: Some("s".into()),
                notification: StagingNotificationBody::FilesStatus(FilesStatusNotification {
                    success: true,
                    ingested_files: vec!["a".into()],
                    failed_files: vec![FailedFile {
                        kind: "k".into(),
                        file_name: "f".into(),
                        reason: "r".into(),
                    }],
                    content_truncated: true,
                }),
                delivery_attempt: 1,
            }),
        ),
        (
            "JobNotification",
            to_value(&JobNotification {
                event_id: "e".into(),
                job_id: "j".into(),
                job_state: JobState::Fail,
                delivery_attempt: 1,
            }),
        ),
    ]
}

/// The fully-populated JSON of one model, by name.
pub(crate) fn full_value(name: &str) -> Value {
    full_values()
        .into_iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("no full value named {name}"))
}
