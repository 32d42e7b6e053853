//! Job definitions (the create-job body), their parts and the restart body,
//! plus the validation rules shared by the builder and the emulator.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Number, Value};

use crate::ids::{BatchId, PartName};

open_enum! {
    /// Machine kind of a job's workers (`machineType`).
    pub enum MachineType {
        /// `cpu`.
        Cpu = "cpu",
        /// `gpu`.
        Gpu = "gpu",
    }
}

open_enum! {
    /// Format of aggregated results (`aggregationFormat`).
    pub enum AggregationFormat {
        /// `csv`.
        Csv = "csv",
        /// `jsonl`.
        Jsonl = "jsonl",
    }
}

open_enum! {
    /// Inference backend of a workflow job (`inferenceBackend`).
    pub enum InferenceBackend {
        /// `inference-models`.
        InferenceModels = "inference-models",
        /// `old-inference`.
        OldInference = "old-inference",
    }
}

open_enum! {
    /// Target device of a TensorRT compilation (`compilationDevices[]`).
    pub enum CompilationDevice {
        /// `nvidia-t4`.
        NvidiaT4 = "nvidia-t4",
        /// `nvidia-l4`.
        NvidiaL4 = "nvidia-l4",
        /// `nvidia-l40s` (official CLI only).
        NvidiaL40s = "nvidia-l40s",
    }
}

/// A job definition is invalid; the message names the option, the value and
/// what to do.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum JobDefinitionError {
    /// `maxImageFailureRate` outside 0.0..=1.0.
    #[error("invalid max image failure rate {value}: use a fraction from 0.0 to 1.0")]
    MaxImageFailureRateOutOfRange {
        /// The rejected value.
        value: f64,
    },
    /// `maxVideoFPS` not a finite number above zero.
    #[error("invalid max video fps {value}: use a number greater than 0")]
    InvalidMaxVideoFps {
        /// The rejected value, as text.
        value: String,
    },
    /// An image-only option was set on a video job.
    #[error("{option} applies to image jobs only: remove it from the video job")]
    ImageOnlyOption {
        /// The option's name.
        option: &'static str,
    },
    /// A video-only option was set on an image job.
    #[error("{option} applies to video jobs only: remove it from the image job")]
    VideoOnlyOption {
        /// The option's name.
        option: &'static str,
    },
    /// A count or duration was zero.
    #[error("{option} must be greater than 0")]
    MustBePositive {
        /// The option's name.
        option: &'static str,
    },
    /// A required text field was empty.
    #[error("{field} must not be empty")]
    Empty {
        /// The field's name.
        field: &'static str,
    },
}

tagged_struct! {
/// The input of a workflow job: a staging batch (`staging-batch-input-v1`).
#[derive(Debug, Clone, PartialEq)]
#[serde(tag = "staging-batch-input-v1", remote = "StagingBatchInput", rename_all = "camelCase")]
pub struct StagingBatchInput {
    /// The staging batch to process.
    pub batch_id: BatchId,
    /// For a multipart batch: the part holding the media.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part_name: Option<PartName>,
    /// A part with per-image metadata (image jobs only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images_metadata_part: Option<PartName>,
}
}

impl StagingBatchInput {
    /// The whole batch `batch_id` as input.
    pub fn new(batch_id: BatchId) -> Self {
        Self {
            batch_id,
            part_name: None,
            images_metadata_part: None,
        }
    }
}

tagged_struct! {
/// Compute settings of a job (`compute-configuration-v2`). The default sends
/// just the type, leaving the choices to the server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[serde(tag = "compute-configuration-v2", remote = "ComputeConfiguration", rename_all = "camelCase")]
pub struct ComputeConfiguration {
    /// CPU or GPU machines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine_type: Option<MachineType>,
    /// Workers per machine; fewer avoid out-of-memory failures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workers_per_machine: Option<u32>,
}
}

impl ComputeConfiguration {
    /// Whether neither machine type nor workers are set.
    pub fn is_empty(&self) -> bool {
        self.machine_type.is_none() && self.workers_per_machine.is_none()
    }
}

tagged_struct! {
/// What to run: a Roboflow workflow (`workflows-processing-specification-v1`).
#[derive(Debug, Clone, PartialEq)]
#[serde(tag = "workflows-processing-specification-v1", remote = "WorkflowsProcessingSpecification", rename_all = "camelCase")]
pub struct WorkflowsProcessingSpecification {
    /// Workspace that owns the workflow.
    pub workspace: String,
    /// The workflow.
    pub workflow_id: String,
    /// Extra workflow inputs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_parameters: Option<Map<String, Value>>,
    /// Name of the workflow's image input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_input_name: Option<String>,
    /// Whether image outputs are kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persist_images_outputs: Option<bool>,
    /// Which image outputs to keep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images_outputs_to_be_persisted: Option<Vec<String>>,
    /// CSV or JSONL results.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aggregation_format: Option<AggregationFormat>,
    /// Video jobs: frame sub-sampling cap (wire name `maxVideoFPS`; integer or
    /// number, kept as sent).
    #[serde(
        rename = "maxVideoFPS",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub max_video_fps: Option<Number>,
    /// Image jobs: workflow input name -> metadata key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images_metadata_inputs_mapping: Option<BTreeMap<String, String>>,
}
}

impl WorkflowsProcessingSpecification {
    /// Runs `workflow_id` of `workspace` with every option unset.
    pub fn new(workspace: impl Into<String>, workflow_id: impl Into<String>) -> Self {
        Self {
            workspace: workspace.into(),
            workflow_id: workflow_id.into(),
            workflow_parameters: None,
            image_input_name: None,
            persist_images_outputs: None,
            images_outputs_to_be_persisted: None,
            aggregation_format: None,
            max_video_fps: None,
            images_metadata_inputs_mapping: None,
        }
    }
}

/// A workflow job over a staging batch: the body of the
/// `simple-image-processing-v1` and `simple-video-processing-v1` variants of
/// [`JobDefinition`]. Build one with [`WorkflowJob::image`] or
/// [`WorkflowJob::video`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowJob {
    /// The input batch.
    pub job_input: StagingBatchInput,
    /// Compute settings (always sent, possibly with just the type).
    #[serde(default)]
    pub compute_configuration: ComputeConfiguration,
    /// The workflow to run.
    pub processing_specification: WorkflowsProcessingSpecification,
    /// Compute budget in seconds, summed over all workers (server default 3600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processing_timeout_seconds: Option<u64>,
    /// Upper bound on concurrent tasks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_parallel_tasks: Option<u32>,
    /// Job webhook URL (wire name `notificationsURL`).
    #[serde(
        rename = "notificationsURL",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub notifications_url: Option<String>,
    /// Inference backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inference_backend: Option<InferenceBackend>,
    /// Image jobs: fraction 0.0..=1.0 of images per shard that may fail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_image_failure_rate: Option<f64>,
}

/// A TensorRT compilation job (`trt-compilation-v1`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrtCompilationJob {
    /// The model, e.g. `project/3`.
    pub model_id: String,
    /// Devices to compile for (server default: T4 and L4).
    #[serde(default = "default_compilation_devices")]
    pub compilation_devices: Vec<CompilationDevice>,
    /// Job webhook URL (wire name `notificationsURL`).
    #[serde(
        rename = "notificationsURL",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub notifications_url: Option<String>,
}

/// The devices the older spec documents as default.
fn default_compilation_devices() -> Vec<CompilationDevice> {
    vec![CompilationDevice::NvidiaT4, CompilationDevice::NvidiaL4]
}

impl TrtCompilationJob {
    /// Compiles `model_id` for `devices`.
    pub fn new(model_id: impl Into<String>, devices: Vec<CompilationDevice>) -> Self {
        Self {
            model_id: model_id.into(),
            compilation_devices: devices,
            notifications_url: None,
        }
    }
}

/// The body of `POST .../jobs/{jobId}`, told apart by `type`.
///
/// The TRT variant also accepts the older spelling `TRT_COMPILATION_V1`
/// and always writes `trt-compilation-v1`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum JobDefinition {
    /// `simple-image-processing-v1`.
    #[serde(rename = "simple-image-processing-v1")]
    SimpleImageProcessingV1(WorkflowJob),
    /// `simple-video-processing-v1`.
    #[serde(rename = "simple-video-processing-v1")]
    SimpleVideoProcessingV1(WorkflowJob),
    /// `trt-compilation-v1` (alias `TRT_COMPILATION_V1`).
    #[serde(rename = "trt-compilation-v1", alias = "TRT_COMPILATION_V1")]
    TrtCompilationV1(TrtCompilationJob),
}

impl JobDefinition {
    /// The input staging batch (`None` for TRT compilation).
    pub fn input_batch_id(&self) -> Option<&BatchId> {
        self.workflow().map(|job| &job.job_input.batch_id)
    }

    /// The job webhook URL, if any.
    pub fn notifications_url(&self) -> Option<&str> {
        match self {
            Self::SimpleImageProcessingV1(job) | Self::SimpleVideoProcessingV1(job) => {
                job.notifications_url.as_deref()
            }
            Self::TrtCompilationV1(job) => job.notifications_url.as_deref(),
        }
    }

    /// The wire value of `type`.
    pub fn kind_str(&self) -> &'static str {
        match self {
            Self::SimpleImageProcessingV1(_) => "simple-image-processing-v1",
            Self::SimpleVideoProcessingV1(_) => "simple-video-processing-v1",
            Self::TrtCompilationV1(_) => "trt-compilation-v1",
        }
    }

    /// The workflow job, for the image and video variants.
    pub fn workflow(&self) -> Option<&WorkflowJob> {
        match self {
            Self::SimpleImageProcessingV1(job) | Self::SimpleVideoProcessingV1(job) => Some(job),
            Self::TrtCompilationV1(_) => None,
        }
    }

    /// Whether this is a video job.
    pub fn is_video(&self) -> bool {
        matches!(self, Self::SimpleVideoProcessingV1(_))
    }

    /// Checks the rules the server enforces or documents: failure rate in
    /// 0..=1 and images only; max video FPS above 0 and videos only; image
    /// metadata options images only; counts and timeout above 0; required
    /// names non-empty; at least one TRT device.
    pub fn validate(&self) -> Result<(), JobDefinitionError> {
        match self {
            Self::SimpleImageProcessingV1(job) => validate_workflow(job, false),
            Self::SimpleVideoProcessingV1(job) => validate_workflow(job, true),
            Self::TrtCompilationV1(job) => {
                if job.model_id.trim().is_empty() {
                    return Err(JobDefinitionError::Empty { field: "model id" });
                }
                if job.compilation_devices.is_empty() {
                    return Err(JobDefinitionError::Empty {
                        field: "compilation devices",
                    });
                }
                Ok(())
            }
        }
    }
}

fn positive<T: PartialEq + Default>(
    value: Option<T>,
    option: &'static str,
) -> Result<(), JobDefinitionError> {
    match value {
        Some(v) if v == T::default() => Err(JobDefinitionError::MustBePositive { option }),
        _ => Ok(()),
    }
}

fn check_failure_rate(value: Option<f64>) -> Result<(), JobDefinitionError> {
    match value {
        Some(value) if !(0.0..=1.0).contains(&value) => {
            Err(JobDefinitionError::MaxImageFailureRateOutOfRange { value })
        }
        _ => Ok(()),
    }
}

fn validate_workflow(job: &WorkflowJob, video: bool) -> Result<(), JobDefinitionError> {
    let spec = &job.processing_specification;
    if spec.workspace.trim().is_empty() {
        return Err(JobDefinitionError::Empty { field: "workspace" });
    }
    if spec.workflow_id.trim().is_empty() {
        return Err(JobDefinitionError::Empty {
            field: "workflow id",
        });
    }
    positive(job.processing_timeout_seconds, "processing timeout seconds")?;
    positive(job.max_parallel_tasks, "max parallel tasks")?;
    positive(
        job.compute_configuration.workers_per_machine,
        "workers per machine",
    )?;
    if video {
        if job.max_image_failure_rate.is_some() {
            return Err(JobDefinitionError::ImageOnlyOption {
                option: "max image failure rate",
            });
        }
        if job.job_input.images_metadata_part.is_some() {
            return Err(JobDefinitionError::ImageOnlyOption {
                option: "images metadata part",
            });
        }
        if spec.images_metadata_inputs_mapping.is_some() {
            return Err(JobDefinitionError::ImageOnlyOption {
                option: "images metadata inputs mapping",
            });
        }
        if let Some(fps) = &spec.max_video_fps {
            match fps.as_f64() {
                Some(v) if v.is_finite() && v > 0.0 => {}
                _ => {
                    return Err(JobDefinitionError::InvalidMaxVideoFps {
                        value: fps.to_string(),
                    });
                }
            }
        }
    } else {
        if spec.max_video_fps.is_some() {
            return Err(JobDefinitionError::VideoOnlyOption {
                option: "max video fps",
            });
        }
        check_failure_rate(job.max_image_failure_rate)?;
    }
    Ok(())
}

tagged_struct! {
/// The restart body (`parameters-override-v1`). Send no body at all when it
/// [`is_empty`](Self::is_empty), as the official client does.
#[derive(Debug, Clone, Default, PartialEq)]
#[serde(tag = "parameters-override-v1", remote = "ParametersOverride", rename_all = "camelCase")]
pub struct ParametersOverride {
    /// New compute settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute_configuration: Option<ComputeConfiguration>,
    /// New concurrency cap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_parallel_tasks: Option<u32>,
    /// New compute budget (a number here, an integer on create).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processing_timeout_seconds: Option<f64>,
    /// New failure-rate threshold (0.0..=1.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_image_failure_rate: Option<f64>,
}
}

impl ParametersOverride {
    /// Whether nothing is overridden (an empty compute configuration counts
    /// as nothing).
    pub fn is_empty(&self) -> bool {
        self.compute_configuration
            .as_ref()
            .is_none_or(ComputeConfiguration::is_empty)
            && self.max_parallel_tasks.is_none()
            && self.processing_timeout_seconds.is_none()
            && self.max_image_failure_rate.is_none()
    }

    /// Checks failure rate in 0..=1, counts and timeout above 0.
    pub fn validate(&self) -> Result<(), JobDefinitionError> {
        positive(self.max_parallel_tasks, "max parallel tasks")?;
        if let Some(compute) = &self.compute_configuration {
            positive(compute.workers_per_machine, "workers per machine")?;
        }
        if let Some(timeout) = self.processing_timeout_seconds {
            if !(timeout.is_finite() && timeout > 0.0) {
                return Err(JobDefinitionError::MustBePositive {
                    option: "processing timeout seconds",
                });
            }
        }
        check_failure_rate(self.max_image_failure_rate)
    }
}
