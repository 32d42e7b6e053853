//! Job options from the command line to rf-batch's `JobSettings` and
//! `ParametersOverride`, and ID validation with the rules in the message.

use rf_batch::JobSettings;
use rf_batch::ingest::ModeChoice;
use rf_types::{
    AggregationFormat, BatchId, CompilationDevice, ComputeConfiguration, InferenceBackend, JobId,
    MachineType, ParametersOverride,
};

use crate::args::{
    AggregationFormatArg, DeviceArg, InferenceBackendArg, IngestModeArg, JobOptions,
    MachineTypeArg, RestartOverrides,
};
use crate::error::{CliError, Result};

/// Validates a batch ID (1-64 of `a-z 0-9 _ -`).
pub(crate) fn batch_id(text: &str) -> Result<BatchId> {
    BatchId::new(text).map_err(|e| CliError::usage(e.to_string()))
}

/// Validates a job ID (1-20 of `a-z 0-9 _ -`).
pub(crate) fn job_id(text: &str) -> Result<JobId> {
    JobId::new(text).map_err(|e| CliError::usage(e.to_string()))
}

/// Checks that `dir` is a directory, naming the flag when it is not.
pub(crate) fn input_dir(flag: &str, dir: &std::path::Path) -> Result<()> {
    input_path(flag, dir, "directory", std::fs::Metadata::is_dir)
}

/// Checks that `path` (given with `flag`) is a readable regular file.
pub(crate) fn input_file(flag: &str, path: &std::path::Path) -> Result<()> {
    input_path(flag, path, "file", std::fs::Metadata::is_file)
}

/// Checks that `path` exists and `is` a `what`, naming `flag` when not.
fn input_path(
    flag: &str,
    path: &std::path::Path,
    what: &str,
    is: fn(&std::fs::Metadata) -> bool,
) -> Result<()> {
    match std::fs::metadata(path) {
        Ok(meta) if is(&meta) => Ok(()),
        Ok(_) => Err(CliError::usage(format!(
            "{flag} {}: not a {what}",
            path.display()
        ))),
        Err(e) => Err(CliError::usage(format!(
            "{flag} {}: {}; pass an existing {what}",
            path.display(),
            io_reason(&e)
        ))),
    }
}

/// What an empty input directory lacks: the extensions rf picks up.
pub(crate) fn media_hint(kind: rf_batch::ingest::MediaKind) -> String {
    let (what, exts) = match kind {
        rf_batch::ingest::MediaKind::Image => ("images", rf_types::IMAGE_EXTENSIONS),
        rf_batch::ingest::MediaKind::Video => ("videos", rf_types::VIDEO_EXTENSIONS),
    };
    format!(
        "{what} are files named *.{} (searched recursively; hidden files are skipped)",
        exts.join(", *.")
    )
}

/// A short lower-case reason for an I/O error.
pub(crate) fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".to_owned(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        _ => e.to_string(),
    }
}

/// The upload mode `--mode` asks for.
pub(crate) fn ingest_mode(arg: IngestModeArg) -> ModeChoice {
    match arg {
        IngestModeArg::Auto => ModeChoice::Auto,
        IngestModeArg::Single => ModeChoice::Single,
        IngestModeArg::Bulk => ModeChoice::Bulk,
    }
}

pub(crate) fn machine_type(arg: MachineTypeArg) -> MachineType {
    match arg {
        MachineTypeArg::Cpu => MachineType::Cpu,
        MachineTypeArg::Gpu => MachineType::Gpu,
    }
}

/// The devices of `rf job trt-compile`, each once, in the order given.
pub(crate) fn compilation_devices(args: &[DeviceArg]) -> Vec<CompilationDevice> {
    let mut devices = Vec::with_capacity(args.len());
    for arg in args {
        let device = match arg {
            DeviceArg::NvidiaT4 => CompilationDevice::NvidiaT4,
            DeviceArg::NvidiaL4 => CompilationDevice::NvidiaL4,
            DeviceArg::NvidiaL40s => CompilationDevice::NvidiaL40s,
        };
        if !devices.contains(&device) {
            devices.push(device);
        }
    }
    devices
}

fn aggregation_format(arg: AggregationFormatArg) -> AggregationFormat {
    match arg {
        AggregationFormatArg::Csv => AggregationFormat::Csv,
        AggregationFormatArg::Jsonl => AggregationFormat::Jsonl,
    }
}

fn inference_backend(arg: InferenceBackendArg) -> InferenceBackend {
    match arg {
        InferenceBackendArg::InferenceModels => InferenceBackend::InferenceModels,
        InferenceBackendArg::OldInference => InferenceBackend::OldInference,
    }
}

/// The job settings the flags ask for (reads `--workflow-params`).
pub(crate) fn job_settings(opts: &JobOptions) -> Result<JobSettings> {
    let workflow_parameters = match &opts.workflow_params {
        None => None,
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                CliError::usage(format!(
                    "--workflow-params {}: {}",
                    path.display(),
                    io_reason(&e)
                ))
            })?;
            let params = JobSettings::parse_parameters(&text).map_err(|e| {
                CliError::usage(format!("--workflow-params {}: {e}", path.display()))
            })?;
            Some(params)
        }
    };
    let outputs_to_persist =
        (!opts.image_outputs_to_save.is_empty()).then(|| opts.image_outputs_to_save.clone());
    Ok(JobSettings {
        workflow_parameters,
        image_input_name: opts.image_input_name.clone(),
        outputs_to_persist,
        part_name: opts.part_name.clone(),
        machine_type: opts.machine_type.map(machine_type),
        workers_per_machine: opts.workers_per_machine,
        max_runtime_seconds: opts.max_runtime_seconds,
        max_parallel_tasks: opts.max_parallel_tasks,
        max_image_failure_rate: opts.max_image_failure_rate,
        aggregation_format: opts.aggregation_format.map(aggregation_format),
        max_video_fps: opts.max_video_fps.map(f64::from),
        notifications_url: opts.notifications_url.clone(),
        inference_backend: opts.inference_backend.map(inference_backend),
        images_metadata_part: opts.images_metadata_part_name.clone(),
        // A repeated input keeps its last key, as in the official client.
        metadata_mapping: (!opts.metadata_mapping.is_empty())
            .then(|| opts.metadata_mapping.iter().cloned().collect()),
    })
}

/// Whether the flags ask to keep every image output (`--save-image-outputs`
/// without naming any): rf-batch's `JobSettings` can only express a list, so
/// the caller sets `persistImagesOutputs` on the built definition.
pub(crate) fn keep_all_image_outputs(opts: &JobOptions) -> bool {
    opts.save_image_outputs && opts.image_outputs_to_save.is_empty()
}

/// Sets `persistImagesOutputs: true` on a workflow job definition.
pub(crate) fn persist_all_image_outputs(definition: &mut rf_types::JobDefinition) {
    use rf_types::JobDefinition;
    match definition {
        JobDefinition::SimpleImageProcessingV1(job)
        | JobDefinition::SimpleVideoProcessingV1(job) => {
            job.processing_specification.persist_images_outputs = Some(true);
        }
        JobDefinition::TrtCompilationV1(_) => {}
    }
}

/// The restart body the flags ask for (empty when none is given).
pub(crate) fn restart_override(o: &RestartOverrides) -> ParametersOverride {
    let compute = (o.machine_type.is_some() || o.workers_per_machine.is_some()).then(|| {
        ComputeConfiguration {
            machine_type: o.machine_type.map(machine_type),
            workers_per_machine: o.workers_per_machine,
        }
    });
    ParametersOverride {
        compute_configuration: compute,
        max_parallel_tasks: o.max_parallel_tasks,
        processing_timeout_seconds: o.max_runtime_seconds.map(|s| s as f64),
        max_image_failure_rate: o.max_image_failure_rate,
    }
}
