//! The workflow job builder: it produces exactly the bodies the official
//! client sends, and refuses invalid combinations with clear messages.

use rf_types::*;
use serde_json::json;

use crate::support::fixture_value;

fn batch(id: &str) -> BatchId {
    BatchId::new(id).expect("valid test batch id")
}

#[test]
fn full_image_job_matches_contract_example() {
    let def = WorkflowJob::image(batch("nightly-cam-0601"), "acme-vision", "defect-detector")
        .part_name("images")
        .images_metadata_part("metadata")
        .machine_type(MachineType::Gpu)
        .workers_per_machine(2)
        .processing_timeout_seconds(7200)
        .max_parallel_tasks(8)
        .max_image_failure_rate(0.05)
        .workflow_parameter("confidence", 0.4)
        .image_input_name("image")
        .persist_images_outputs(true)
        .images_outputs_to_be_persisted(["annotated"])
        .aggregation_format(AggregationFormat::Jsonl)
        .images_metadata_input("camera_id", "camera")
        .notifications_url("https://hooks.example/jobs")
        .inference_backend(InferenceBackend::InferenceModels)
        .build()
        .expect("valid job");
    pretty_assertions::assert_eq!(
        serde_json::to_value(&def).expect("serialize"),
        fixture_value("job_image_full")
    );
}

#[test]
fn minimal_image_job_matches_what_the_cli_sends() {
    let def = WorkflowJob::image(batch("b1"), "acme-vision", "wf")
        .build()
        .expect("valid job");
    pretty_assertions::assert_eq!(
        serde_json::to_value(&def).expect("serialize"),
        fixture_value("job_image_minimal")
    );
}

#[test]
fn video_job_sends_whole_fps_as_integer() {
    let def = WorkflowJob::video(batch("videos-0601"), "acme-vision", "tracker")
        .machine_type(MachineType::Cpu)
        .processing_timeout_seconds(3600)
        .aggregation_format(AggregationFormat::Csv)
        .max_video_fps(5.0)
        .inference_backend(InferenceBackend::OldInference)
        .build()
        .expect("valid job");
    pretty_assertions::assert_eq!(
        serde_json::to_value(&def).expect("serialize"),
        fixture_value("job_video")
    );
    let fractional = WorkflowJob::video(batch("v"), "ws", "wf")
        .max_video_fps(2.5)
        .build()
        .expect("valid job");
    let json = serde_json::to_value(&fractional).expect("serialize");
    assert_eq!(json["processingSpecification"]["maxVideoFPS"], json!(2.5));
}

#[test]
fn invalid_combinations_refused() {
    let image = || WorkflowJob::image(batch("b"), "ws", "wf");
    let video = || WorkflowJob::video(batch("b"), "ws", "wf");
    let cases: Vec<(WorkflowJobBuilder, &str)> = vec![
        (
            image().max_image_failure_rate(1.5),
            "invalid max image failure rate 1.5: use a fraction from 0.0 to 1.0",
        ),
        (
            image().max_image_failure_rate(-0.1),
            "invalid max image failure rate -0.1: use a fraction from 0.0 to 1.0",
        ),
        (
            image().max_image_failure_rate(f64::NAN),
            "invalid max image failure rate NaN: use a fraction from 0.0 to 1.0",
        ),
        (
            video().max_image_failure_rate(0.5),
            "max image failure rate applies to image jobs only: remove it from the video job",
        ),
        (
            video().images_metadata_part("meta"),
            "images metadata part applies to image jobs only: remove it from the video job",
        ),
        (
            video().images_metadata_input("a", "b"),
            "images metadata inputs mapping applies to image jobs only: remove it from the video job",
        ),
        (
            image().max_video_fps(5.0),
            "max video fps applies to video jobs only: remove it from the image job",
        ),
        (
            video().max_video_fps(0.0),
            "invalid max video fps 0: use a number greater than 0",
        ),
        (
            video().max_video_fps(f64::INFINITY),
            "invalid max video fps inf: use a number greater than 0",
        ),
        (
            image().workers_per_machine(0),
            "workers per machine must be greater than 0",
        ),
        (
            image().max_parallel_tasks(0),
            "max parallel tasks must be greater than 0",
        ),
        (
            image().processing_timeout_seconds(0),
            "processing timeout seconds must be greater than 0",
        ),
        (
            WorkflowJob::image(batch("b"), "", "wf"),
            "workspace must not be empty",
        ),
        (
            WorkflowJob::image(batch("b"), "ws", " "),
            "workflow id must not be empty",
        ),
    ];
    for (builder, message) in cases {
        let err = builder.build().expect_err(message);
        assert_eq!(err.to_string(), message);
    }
    // The boundaries are allowed.
    assert!(image().max_image_failure_rate(0.0).build().is_ok());
    assert!(image().max_image_failure_rate(1.0).build().is_ok());
}

#[test]
fn trt_validation() {
    let ok = JobDefinition::TrtCompilationV1(TrtCompilationJob::new(
        "pcb-defects/3",
        vec![CompilationDevice::NvidiaT4],
    ));
    assert_eq!(ok.validate(), Ok(()));
    let no_devices = JobDefinition::TrtCompilationV1(TrtCompilationJob::new("m/1", vec![]));
    assert_eq!(
        no_devices.validate().map_err(|e| e.to_string()),
        Err("compilation devices must not be empty".to_owned())
    );
    let no_model = JobDefinition::TrtCompilationV1(TrtCompilationJob::new(
        "",
        vec![CompilationDevice::NvidiaL4],
    ));
    assert!(no_model.validate().is_err());
}

#[test]
fn parameters_override_empty_and_validation() {
    assert!(ParametersOverride::default().is_empty());
    let only_empty_compute = ParametersOverride {
        compute_configuration: Some(ComputeConfiguration::default()),
        ..ParametersOverride::default()
    };
    assert!(only_empty_compute.is_empty());
    assert_eq!(
        serde_json::to_value(ParametersOverride::default()).expect("serialize"),
        json!({"type": "parameters-override-v1"})
    );
    let tasks = ParametersOverride {
        max_parallel_tasks: Some(2),
        ..ParametersOverride::default()
    };
    assert!(!tasks.is_empty());
    assert_eq!(tasks.validate(), Ok(()));
    let bad_rate = ParametersOverride {
        max_image_failure_rate: Some(2.0),
        ..ParametersOverride::default()
    };
    assert!(bad_rate.validate().is_err());
    let bad_timeout = ParametersOverride {
        processing_timeout_seconds: Some(0.0),
        ..ParametersOverride::default()
    };
    assert_eq!(
        bad_timeout.validate().map_err(|e| e.to_string()),
        Err("processing timeout seconds must be greater than 0".to_owned())
    );
}

#[test]
fn struct_literals_stay_easy() {
    // The emulator and users build nested parts directly; the constant
    // `type` tags are written without a field for them.
    let input = StagingBatchInput {
        batch_id: batch("b"),
        part_name: None,
        images_metadata_part: None,
    };
    assert_eq!(
        serde_json::to_value(&input).expect("serialize"),
        json!({"type": "staging-batch-input-v1", "batchId": "b"})
    );
    assert_eq!(StagingBatchInput::TYPE, "staging-batch-input-v1");
    assert_eq!(ComputeConfiguration::TYPE, "compute-configuration-v2");
    assert_eq!(
        WorkflowsProcessingSpecification::TYPE,
        "workflows-processing-specification-v1"
    );
    assert_eq!(ParametersOverride::TYPE, "parameters-override-v1");
}

#[test]
fn status_kinds() {
    assert_eq!(status_kind("info"), StatusKind::Running);
    assert!(!StatusKind::Running.is_terminal());
    assert_eq!(status_kind("success"), StatusKind::Succeeded);
    assert_eq!(status_kind("Task-Success"), StatusKind::Succeeded);
    assert_eq!(status_kind("error"), StatusKind::Failed);
    assert_eq!(status_kind("TIMEOUT_ERROR"), StatusKind::Failed);
    assert_eq!(status_kind("cancelled"), StatusKind::OtherTerminal);
    assert!(StatusKind::OtherTerminal.is_terminal());
}
