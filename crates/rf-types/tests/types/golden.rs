//! Golden fixtures: every model read from the contract's examples, checked
//! field by field, and written back to the same JSON.

use rf_types::*;
use serde_json::json;

use crate::support::{fixture_text, golden};

fn ts(text: &str) -> Timestamp {
    rf_types::timestamp::parse_timestamp(text).expect("valid test timestamp")
}

#[test]
fn workspace_info() {
    let info: WorkspaceInfo = golden("workspace_info");
    assert_eq!(info.workspace, "acme-vision");
}

#[test]
fn api_error() {
    let err: ApiError = golden("api_error");
    assert_eq!(err.error, "Batch nightly-cam-0601 not found");
}

#[test]
fn status_ok() {
    let ok: StatusOk = golden("status_ok");
    assert_eq!(ok, StatusOk::ok());
    let empty: StatusOk = serde_json::from_str("{}").expect("empty ack");
    assert_eq!(empty.status, None);
    assert_eq!(serde_json::to_string(&empty).expect("serialize"), "{}");
}

#[test]
fn get_batch() {
    let resp: GetBatchResponse = golden("get_batch");
    let b = &resp.batch;
    assert_eq!(b.display_name, "Nightly camera dump");
    assert_eq!(b.batch_id, "nightly-cam-0601");
    assert_eq!(b.batch_type, BatchType::ShardedBatch);
    assert_eq!(b.batch_content_type, ContentType::Images);
    assert_eq!(b.created_date, ts("2025-06-01T02:00:11.512Z"));
    assert_eq!(b.expiry_date - b.created_date, chrono::Duration::days(7));
}

#[test]
fn list_batches() {
    let resp: ListBatchesResponse = golden("list_batches");
    assert_eq!(resp.batches.len(), 2);
    assert_eq!(resp.batches[1].batch_type, BatchType::MultipartBatch);
    assert_eq!(resp.batches[1].batch_content_type, ContentType::Mixed);
    assert_eq!(resp.next_page_token.as_deref(), Some("page-2"));
}

#[test]
fn count() {
    let resp: CountResponse = golden("count");
    assert_eq!(resp.count, 42);
}

#[test]
fn list_parts() {
    let resp: ListPartsResponse = golden("list_parts");
    let [results, images] = resp.batch_parts.as_slice() else {
        panic!("expected two parts, got {:?}", resp.batch_parts);
    };
    assert_eq!(results.part_name, "results");
    assert_eq!(results.part_type, BatchType::ShardedBatch);
    assert_eq!(results.content_type, ContentType::Archives);
    assert_eq!(
        results.part_description.as_deref(),
        Some("Compressed processing results")
    );
    assert_eq!(results.nested_content_type, Some(ContentType::Metadata));
    assert_eq!(images.part_type, BatchType::SimpleBatch);
    assert_eq!(images.part_description, None);
    assert_eq!(images.nested_content_type, None);
}

#[test]
fn list_files() {
    let resp: ListFilesResponse = golden("list_files");
    let archive = &resp.files_metadata[0];
    assert_eq!(
        archive.download_url,
        "https://storage.example/results_0001.tar.gz?sig=abc"
    );
    assert_eq!(archive.file_name, "results_0001.tar.gz");
    assert_eq!(
        archive.part_name.as_ref().map(PartName::as_str),
        Some("results")
    );
    assert_eq!(
        archive.shard_id.as_ref().map(ShardId::as_str),
        Some("0d40fa12-349e-439f-83f8-42b9b7987b33")
    );
    assert_eq!(archive.content_type, ContentType::Archives);
    assert_eq!(archive.nested_content_type, Some(ContentType::Metadata));
    let image = &resp.files_metadata[1];
    assert_eq!(image.part_name, None);
    assert_eq!(image.shard_id, None);
    assert_eq!(resp.next_page_token.as_deref(), Some("opaque-token-2"));
}

#[test]
fn list_shards() {
    let resp: ListShardsResponse = golden("list_shards");
    let ok = &resp.shards[0];
    assert_eq!(ok.shard_id, "0d40fa12-349e-439f-83f8-42b9b7987b33");
    assert_eq!(ok.status_name, "shard-ingested");
    assert_eq!(ok.status_type, "info");
    assert_eq!(ok.event_timestamp, ts("2025-06-01T02:03:40Z"));
    assert_eq!(ok.shard_objects_count, 256);
    assert_eq!(ok.status_metadata, Some(json!({"failedFiles": 0})));
    assert_eq!(resp.shards[1].status_metadata, None);
    assert_eq!(resp.next_page_token, None);
}

#[test]
fn signed_url() {
    let resp: SignedUrlResponse = golden("signed_url");
    let d = &resp.signed_url_details;
    assert_eq!(d.upload_url, "https://storage.example/upload/abc?sig=xyz");
    assert_eq!(
        d.extension_headers
            .get("X-Goog-Content-Length-Range")
            .map(String::as_str),
        Some("0,10737418240")
    );
}

#[test]
fn image_references_inline() {
    let req: ImageReferencesIngestRequest = golden("image_references_inline");
    let ReferencesSource::Inline(refs) = &req.source else {
        panic!("expected inline references, got {:?}", req.source);
    };
    assert_eq!(
        refs[0],
        Reference::new(
            "cam1_0001.jpg",
            "https://bucket.example/cam1_0001.jpg?sig=1"
        )
    );
    assert_eq!(refs.len(), 2);
    assert_eq!(req.ingest_id, Some(IngestId::from("nightly-2025-06-01")));
    assert_eq!(
        req.notifications_url.as_deref(),
        Some("https://hooks.example/staging")
    );
    assert_eq!(
        req.notification_categories,
        Some(vec![
            NotificationCategory::IngestStatus,
            NotificationCategory::FilesStatus
        ])
    );
}

#[test]
fn image_references_url() {
    let req: ImageReferencesIngestRequest = golden("image_references_url");
    assert_eq!(
        req.source,
        ReferencesSource::Url("https://bucket.example/refs.jsonl".to_owned())
    );
    assert_eq!(req.ingest_id, None);
    assert_eq!(req.notifications_url, None);
    assert_eq!(req.notification_categories, None);
}

#[test]
fn video_references_inline() {
    let req: VideoReferencesIngestRequest = golden("video_references_inline");
    assert_eq!(
        req.source,
        ReferencesSource::Inline(vec![Reference::new(
            "clip.mp4",
            "https://bucket.example/clip.mp4"
        )])
    );
    assert_eq!(req.ingest_id, Some(IngestId::from("videos-1")));
    assert_eq!(
        req.notification_categories,
        Some(vec![NotificationCategory::IngestStatus])
    );
}

#[test]
fn video_references_url() {
    let req: VideoReferencesIngestRequest = golden("video_references_url");
    assert_eq!(
        req.source,
        ReferencesSource::Url("https://bucket.example/videos.jsonl".to_owned())
    );
    assert_eq!(
        req.notification_categories,
        Some(vec![NotificationCategory::FilesStatus])
    );
}

#[test]
fn image_references_response() {
    let resp: ImageReferencesIngestResponse = golden("image_references_response");
    assert_eq!(resp.ingest_id, "nightly-2025-06-01");
    assert_eq!(resp.shard_ids.as_ref().map(Vec::len), Some(2));
    assert_eq!(resp.duplicated, Some(false));
}

#[test]
fn video_references_response() {
    let resp: VideoReferencesIngestResponse = golden("video_references_response");
    assert_eq!(resp.ingest_id, "3f0e9a521c7b4f57b1d27a5c2e0d9b11");
    assert_eq!(resp.duplicated, Some(true));
}

#[test]
fn shard_notification_config() {
    let config: ShardNotificationConfig = golden("shard_notification_config");
    assert_eq!(config.ingest_id, "5b0b2f0e-7c55-4a57-9b1a-0a4d5d3e6f70");
    assert_eq!(config.notifications_url, "https://hooks.example/staging");
    assert_eq!(NOTIFICATION_CONFIG_MEMBER, "notification_config.json");
}

#[test]
fn references_jsonl_lines() {
    let text = fixture_text("references.jsonl");
    let refs: Vec<Reference> = text
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is a reference"))
        .collect();
    assert_eq!(
        refs,
        vec![
            Reference::new(
                "cam1_0001.jpg",
                "https://bucket.example/cam1_0001.jpg?sig=1"
            ),
            Reference::new(
                "cam1_0002.jpg",
                "https://bucket.example/cam1_0002.jpg?sig=2"
            ),
        ]
    );
}

#[test]
fn job_image_full() {
    let def: JobDefinition = golden("job_image_full");
    assert_eq!(def.kind_str(), "simple-image-processing-v1");
    assert_eq!(def.validate(), Ok(()));
    let JobDefinition::SimpleImageProcessingV1(job) = &def else {
        panic!("expected an image job, got {def:?}");
    };
    assert_eq!(job.job_input.batch_id, "nightly-cam-0601");
    assert_eq!(job.job_input.part_name, Some(PartName::from("images")));
    assert_eq!(
        job.job_input.images_metadata_part,
        Some(PartName::from("metadata"))
    );
    assert_eq!(
        job.compute_configuration.machine_type,
        Some(MachineType::Gpu)
    );
    assert_eq!(job.compute_configuration.workers_per_machine, Some(2));
    assert_eq!(job.processing_timeout_seconds, Some(7200));
    assert_eq!(job.max_parallel_tasks, Some(8));
    assert_eq!(job.max_image_failure_rate, Some(0.05));
    assert_eq!(
        job.notifications_url.as_deref(),
        Some("https://hooks.example/jobs")
    );
    assert_eq!(
        job.inference_backend,
        Some(InferenceBackend::InferenceModels)
    );
    let spec = &job.processing_specification;
    assert_eq!(spec.workspace, "acme-vision");
    assert_eq!(spec.workflow_id, "defect-detector");
    assert_eq!(
        spec.workflow_parameters
            .as_ref()
            .and_then(|p| p.get("confidence")),
        Some(&json!(0.4))
    );
    assert_eq!(spec.image_input_name.as_deref(), Some("image"));
    assert_eq!(spec.persist_images_outputs, Some(true));
    assert_eq!(
        spec.images_outputs_to_be_persisted,
        Some(vec!["annotated".to_owned()])
    );
    assert_eq!(spec.aggregation_format, Some(AggregationFormat::Jsonl));
    assert_eq!(spec.max_video_fps, None);
    assert_eq!(
        spec.images_metadata_inputs_mapping
            .as_ref()
            .and_then(|m| m.get("camera_id"))
            .map(String::as_str),
        Some("camera")
    );
}

#[test]
fn job_image_minimal() {
    let def: JobDefinition = golden("job_image_minimal");
    let job = def.workflow().expect("workflow job");
    assert_eq!(def.input_batch_id().map(BatchId::as_str), Some("b1"));
    assert!(job.compute_configuration.is_empty());
    assert_eq!(job.processing_timeout_seconds, None);
    assert_eq!(def.notifications_url(), None);
    assert_eq!(
        job.processing_specification.persist_images_outputs,
        Some(false)
    );
}

#[test]
fn job_video() {
    let def: JobDefinition = golden("job_video");
    assert!(def.is_video());
    assert_eq!(def.kind_str(), "simple-video-processing-v1");
    let job = def.workflow().expect("workflow job");
    let fps = job
        .processing_specification
        .max_video_fps
        .as_ref()
        .expect("maxVideoFPS present");
    assert_eq!(fps.as_u64(), Some(5), "an integer stays an integer");
    assert_eq!(
        job.compute_configuration.machine_type,
        Some(MachineType::Cpu)
    );
    assert_eq!(job.inference_backend, Some(InferenceBackend::OldInference));
    assert_eq!(
        job.processing_specification.aggregation_format,
        Some(AggregationFormat::Csv)
    );
    assert_eq!(def.validate(), Ok(()));
}

#[test]
fn job_trt() {
    let def: JobDefinition = golden("job_trt");
    let JobDefinition::TrtCompilationV1(job) = &def else {
        panic!("expected a trt job, got {def:?}");
    };
    assert_eq!(job.model_id, "pcb-defects/3");
    assert_eq!(
        job.compilation_devices,
        vec![CompilationDevice::NvidiaT4, CompilationDevice::NvidiaL40s]
    );
    assert_eq!(def.notifications_url(), Some("https://hooks.example/jobs"));
    assert_eq!(def.input_batch_id(), None);
}

#[test]
fn parameters_override() {
    let body: ParametersOverride = golden("parameters_override");
    let compute = body.compute_configuration.as_ref().expect("compute");
    assert_eq!(compute.machine_type, Some(MachineType::Gpu));
    assert_eq!(compute.workers_per_machine, None);
    assert_eq!(body.max_parallel_tasks, Some(4));
    assert_eq!(body.processing_timeout_seconds, Some(10800.0));
    assert_eq!(body.max_image_failure_rate, Some(0.1));
    assert!(!body.is_empty());
    assert_eq!(body.validate(), Ok(()));
}

#[test]
fn get_job() {
    let resp: GetJobResponse = golden("get_job");
    let job = &resp.job;
    assert_eq!(job.job_id, "job-k3v9x0a1b2c3");
    assert_eq!(job.name, "nightly defects");
    assert_eq!(job.job_definition["type"], "simple-image-processing-v1");
    let def: JobDefinition =
        serde_json::from_value(job.job_definition.clone()).expect("stored definition parses");
    assert_eq!(def.input_batch_id().map(BatchId::as_str), Some("b1"));
    assert_eq!(job.current_stage.as_deref(), Some(STAGE_PROCESSING));
    assert_eq!(
        job.planned_stages,
        Some(vec![STAGE_PROCESSING.to_owned(), STAGE_EXPORT.to_owned()])
    );
    assert!(!job.error);
    assert!(!job.is_terminal);
    assert_eq!(
        job.last_notification,
        Some(Notification::text("Processing 3 of 12 shards"))
    );
    assert_eq!(job.created_at, ts("2025-06-01T03:00:00Z"));
    assert_eq!(job.last_update, ts("2025-06-01T03:12:45Z"));
    assert!(job.restart_parameters_override.is_empty());
    assert_eq!(resp.status.as_deref(), Some("ok"));
    assert_eq!(resp.job_status, Some(JobStatus::Processing));
    assert_eq!(resp.progress, Some(0.25));
}

#[test]
fn list_jobs() {
    let resp: ListJobsResponse = golden("list_jobs");
    assert_eq!(resp.next_page_token, None);
    let trt = &resp.jobs[1];
    assert!(trt.error);
    assert!(trt.is_terminal);
    let notification = trt.last_notification.as_ref().expect("notification");
    assert_eq!(
        notification.as_object().and_then(|o| o.get("code")),
        Some(&json!(7))
    );
    assert_eq!(trt.restart_parameters_override.len(), 1);
    let restart: ParametersOverride =
        serde_json::from_value(trt.restart_parameters_override[0].clone())
            .expect("stored restart body parses");
    assert_eq!(restart.max_parallel_tasks, Some(2));
    assert_eq!(trt.last_update, ts("2025-05-30T10:30:00.125Z"));
}

#[test]
fn list_stages() {
    let resp: ListStagesResponse = golden("list_stages");
    let processing = &resp.stages[0];
    assert_eq!(processing.processing_stage_id, "processing");
    assert_eq!(processing.processing_stage_name, STAGE_PROCESSING);
    assert_eq!(processing.tasks_number, 12);
    assert_eq!(
        processing.output_batches,
        vec!["job-k3v9x0a1b2c3-processing-output".to_owned()]
    );
    assert_eq!(processing.start_timestamp, ts("2025-06-01T03:00:05Z"));
    assert_eq!(
        processing.notification.to_string(),
        r#"{"message":"3 of 12 tasks done"}"#
    );
    assert_eq!(status_kind(&processing.status_type), StatusKind::Running);
    assert_eq!(processing.last_event_timestamp, ts("2025-06-01T03:12:45Z"));
    let export = &resp.stages[1];
    assert_eq!(export.notification, Notification::text(""));
    assert!(export.output_batches.is_empty());
    assert_eq!(status_kind(&export.status_type), StatusKind::Succeeded);
}

#[test]
fn list_tasks() {
    let resp: ListTasksResponse = golden("list_tasks");
    let done = &resp.tasks[0];
    assert_eq!(done.task_id, "shard-0007");
    assert_eq!(
        done.notification.as_text(),
        Some("processed 256/256 images")
    );
    assert_eq!(done.status_type, "success");
    assert_eq!(done.progress, Some(1.0));
    assert_eq!(done.event_timestamp, ts("2025-06-01T03:10:00Z"));
    let queued = &resp.tasks[1];
    assert_eq!(queued.progress, None);
    assert!(queued.notification.as_object().is_some());
    assert_eq!(resp.next_page_token.as_deref(), Some("tasks-page-2"));
}

#[test]
fn job_logs() {
    let resp: JobLogsResponse = golden("job_logs");
    let failure = &resp.logs[0];
    assert_eq!(failure.created_at, ts("2025-06-01T03:05:12Z"));
    assert_eq!(
        failure.processing_stage_id,
        Some(StageId::from("processing"))
    );
    assert_eq!(failure.task_id, Some(TaskId::from("shard-0003")));
    assert_eq!(failure.severity, LogSeverity::Error);
    assert_eq!(failure.reporting_module, "workflow-runner");
    assert_eq!(failure.log_type, "image-processing-failed");
    assert_eq!(
        failure.payload.get("fileName"),
        Some(&json!("cam1_0077.jpg"))
    );
    let started = &resp.logs[1];
    assert_eq!(started.severity, LogSeverity::Info);
    assert_eq!(started.processing_stage_id, None);
    assert_eq!(started.task_id, None);
    assert!(started.payload.is_empty());
    assert_eq!(resp.next_page_token.as_deref(), Some("logs-2"));
}

#[test]
fn webhook_ingest_status() {
    let n: StagingNotification = golden("webhook_ingest_status");
    assert_eq!(n.event_id, "3f0e9a52-1c7b-4f57-b1d2-7a5c2e0d9b11");
    assert_eq!(n.ingest_id, "nightly-2025-06-01");
    assert_eq!(n.batch_id, "nightly-cam-0601");
    assert_eq!(n.shard_id, None);
    assert_eq!(n.delivery_attempt, 1);
    assert_eq!(
        n.notification,
        StagingNotificationBody::IngestStatus(IngestStatusNotification {
            success: false,
            error_details: Some(ErrorDetails {
                kind: "unsafe-url-detected".to_owned(),
                reason: "Untrusted domain found: https://files.example.net/a.png".to_owned(),
            }),
        })
    );
    let payload: WebhookPayload = golden("webhook_ingest_status");
    assert_eq!(payload, WebhookPayload::Staging(n));
}

#[test]
fn webhook_files_status() {
    let n: StagingNotification = golden("webhook_files_status");
    assert_eq!(
        n.shard_id,
        Some(ShardId::from("0d40fa12-349e-439f-83f8-42b9b7987b33"))
    );
    let StagingNotificationBody::FilesStatus(files) = &n.notification else {
        panic!("expected files-status, got {:?}", n.notification);
    };
    assert!(files.success);
    assert_eq!(files.ingested_files, ["cam1_0001.jpg", "cam1_0002.jpg"]);
    assert_eq!(
        files.failed_files,
        vec![FailedFile {
            kind: "file-size-limit-exceeded".to_owned(),
            file_name: "cam1_0003.png".to_owned(),
            reason: "Max size of single image is 20971520B.".to_owned(),
        }]
    );
    assert!(!files.content_truncated);
    let payload: WebhookPayload = golden("webhook_files_status");
    assert_eq!(payload.event_id(), &n.event_id);
    assert_eq!(payload.kind_str(), "roboflow-data-staging-notification-v1");
}

#[test]
fn webhook_job() {
    let n: JobNotification = golden("webhook_job");
    assert_eq!(n.event_id, "c2d4e6f8-0a1b-4c3d-8e5f-6a7b8c9d0e1f");
    assert_eq!(n.job_id, "job-k3v9x0a1b2c3");
    assert_eq!(n.job_state, JobState::Success);
    assert_eq!(n.delivery_attempt, 1);
    let payload: WebhookPayload = golden("webhook_job");
    assert_eq!(payload.delivery_attempt(), 1);
    assert_eq!(payload, WebhookPayload::Job(n));
}
