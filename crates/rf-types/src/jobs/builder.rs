//! [`WorkflowJobBuilder`]: the easy way to a valid image or video job
//! definition. Every option has a setter; [`WorkflowJobBuilder::build`]
//! checks the combination.

use std::collections::BTreeMap;

use serde_json::{Map, Number, Value};

use super::definition::{
    AggregationFormat, ComputeConfiguration, InferenceBackend, JobDefinition, JobDefinitionError,
    MachineType, StagingBatchInput, WorkflowJob, WorkflowsProcessingSpecification,
};
use crate::ids::{BatchId, PartName};

/// Builds a workflow [`JobDefinition`]; start with [`WorkflowJob::image`] or
/// [`WorkflowJob::video`].
///
/// Like the official client, the builder sends `persistImagesOutputs: false`
/// unless told otherwise.
///
/// ```
/// use rf_types::{AggregationFormat, BatchId, JobDefinition, MachineType, WorkflowJob};
///
/// let job = WorkflowJob::image(BatchId::new("nightly-cam-0601")?, "acme-vision", "defect-detector")
///     .machine_type(MachineType::Gpu)
///     .workers_per_machine(2)
///     .aggregation_format(AggregationFormat::Jsonl)
///     .max_image_failure_rate(0.05)
///     .build()?;
/// assert_eq!(job.kind_str(), "simple-image-processing-v1");
///
/// // Invalid combinations are refused with a message saying why.
/// let err = WorkflowJob::image(BatchId::new("b1")?, "acme-vision", "wf")
///     .max_video_fps(5.0)
///     .build()
///     .unwrap_err();
/// assert_eq!(err.to_string(), "max video fps applies to video jobs only: remove it from the image job");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct WorkflowJobBuilder {
    video: bool,
    job: WorkflowJob,
    max_video_fps: Option<f64>,
}

impl WorkflowJob {
    /// Starts an image job (`simple-image-processing-v1`) running
    /// `workflow_id` of `workspace` over the staging batch `batch_id`.
    pub fn image(
        batch_id: BatchId,
        workspace: impl Into<String>,
        workflow_id: impl Into<String>,
    ) -> WorkflowJobBuilder {
        WorkflowJobBuilder::new(false, batch_id, workspace.into(), workflow_id.into())
    }

    /// Starts a video job (`simple-video-processing-v1`) running
    /// `workflow_id` of `workspace` over the staging batch `batch_id`.
    pub fn video(
        batch_id: BatchId,
        workspace: impl Into<String>,
        workflow_id: impl Into<String>,
    ) -> WorkflowJobBuilder {
        WorkflowJobBuilder::new(true, batch_id, workspace.into(), workflow_id.into())
    }
}

impl WorkflowJobBuilder {
    fn new(video: bool, batch_id: BatchId, workspace: String, workflow_id: String) -> Self {
        let mut spec = WorkflowsProcessingSpecification::new(workspace, workflow_id);
        spec.persist_images_outputs = Some(false);
        Self {
            video,
            job: WorkflowJob {
                job_input: StagingBatchInput::new(batch_id),
                compute_configuration: ComputeConfiguration::default(),
                processing_specification: spec,
                processing_timeout_seconds: None,
                max_parallel_tasks: None,
                notifications_url: None,
                inference_backend: None,
                max_image_failure_rate: None,
            },
            max_video_fps: None,
        }
    }

    /// Processes only this part of a multipart input batch.
    pub fn part_name(mut self, part: impl Into<PartName>) -> Self {
        self.job.job_input.part_name = Some(part.into());
        self
    }

    /// Image jobs: the part of the input batch holding per-image metadata.
    pub fn images_metadata_part(mut self, part: impl Into<PartName>) -> Self {
        self.job.job_input.images_metadata_part = Some(part.into());
        self
    }

    /// CPU or GPU machines.
    pub fn machine_type(mut self, machine_type: MachineType) -> Self {
        self.job.compute_configuration.machine_type = Some(machine_type);
        self
    }

    /// Workers per machine (> 0).
    pub fn workers_per_machine(mut self, workers: u32) -> Self {
        self.job.compute_configuration.workers_per_machine = Some(workers);
        self
    }

    /// Compute budget in seconds, summed over all workers (> 0).
    pub fn processing_timeout_seconds(mut self, seconds: u64) -> Self {
        self.job.processing_timeout_seconds = Some(seconds);
        self
    }

    /// Upper bound on concurrent tasks (> 0).
    pub fn max_parallel_tasks(mut self, tasks: u32) -> Self {
        self.job.max_parallel_tasks = Some(tasks);
        self
    }

    /// Webhook called when the job ends.
    pub fn notifications_url(mut self, url: impl Into<String>) -> Self {
        self.job.notifications_url = Some(url.into());
        self
    }

    /// Inference backend.
    pub fn inference_backend(mut self, backend: InferenceBackend) -> Self {
        self.job.inference_backend = Some(backend);
        self
    }

    /// Image jobs: fraction (0.0..=1.0) of images per shard that may fail
    /// before the shard is aborted.
    pub fn max_image_failure_rate(mut self, rate: f64) -> Self {
        self.job.max_image_failure_rate = Some(rate);
        self
    }

    /// Replaces all extra workflow inputs.
    pub fn workflow_parameters(mut self, parameters: Map<String, Value>) -> Self {
        self.job.processing_specification.workflow_parameters = Some(parameters);
        self
    }

    /// Adds one extra workflow input.
    pub fn workflow_parameter(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.job
            .processing_specification
            .workflow_parameters
            .get_or_insert_with(Map::new)
            .insert(name.into(), value.into());
        self
    }

    /// Name of the workflow's image input.
    pub fn image_input_name(mut self, name: impl Into<String>) -> Self {
        self.job.processing_specification.image_input_name = Some(name.into());
        self
    }

    /// Whether image outputs are kept (default `false`).
    pub fn persist_images_outputs(mut self, persist: bool) -> Self {
        self.job.processing_specification.persist_images_outputs = Some(persist);
        self
    }

    /// Which image outputs to keep.
    pub fn images_outputs_to_be_persisted<I, S>(mut self, outputs: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.job
            .processing_specification
            .images_outputs_to_be_persisted = Some(outputs.into_iter().map(Into::into).collect());
        self
    }

    /// CSV or JSONL results.
    pub fn aggregation_format(mut self, format: AggregationFormat) -> Self {
        self.job.processing_specification.aggregation_format = Some(format);
        self
    }

    /// Video jobs: frame sub-sampling cap (> 0). Whole numbers are sent as
    /// integers, like the official client does.
    pub fn max_video_fps(mut self, fps: f64) -> Self {
        self.max_video_fps = Some(fps);
        self
    }

    /// Image jobs: replaces the workflow input -> metadata key mapping.
    pub fn images_metadata_inputs_mapping(mut self, mapping: BTreeMap<String, String>) -> Self {
        self.job
            .processing_specification
            .images_metadata_inputs_mapping = Some(mapping);
        self
    }

    /// Image jobs: maps one workflow input to a metadata key.
    pub fn images_metadata_input(
        mut self,
        workflow_input: impl Into<String>,
        metadata_key: impl Into<String>,
    ) -> Self {
        self.job
            .processing_specification
            .images_metadata_inputs_mapping
            .get_or_insert_with(BTreeMap::new)
            .insert(workflow_input.into(), metadata_key.into());
        self
    }

    /// Checks the options (see [`JobDefinition::validate`]) and returns the
    /// definition.
    pub fn build(self) -> Result<JobDefinition, JobDefinitionError> {
        let mut job = self.job;
        if let Some(fps) = self.max_video_fps {
            job.processing_specification.max_video_fps = Some(fps_number(fps)?);
        }
        let definition = if self.video {
            JobDefinition::SimpleVideoProcessingV1(job)
        } else {
            JobDefinition::SimpleImageProcessingV1(job)
        };
        definition.validate()?;
        Ok(definition)
    }
}

/// A JSON number for an FPS value: an integer when it is whole.
fn fps_number(fps: f64) -> Result<Number, JobDefinitionError> {
    // 2^53: above it not every integer is representable in f64.
    const MAX_EXACT: f64 = 9_007_199_254_740_992.0;
    if !(fps.is_finite() && fps > 0.0) {
        return Err(JobDefinitionError::InvalidMaxVideoFps {
            value: fps.to_string(),
        });
    }
    if fps.fract() == 0.0 && fps <= MAX_EXACT {
        // Whole, positive and at most 2^53: the cast is exact.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let whole = fps as u64;
        return Ok(Number::from(whole));
    }
    Number::from_f64(fps).ok_or_else(|| JobDefinitionError::InvalidMaxVideoFps {
        value: fps.to_string(),
    })
}
