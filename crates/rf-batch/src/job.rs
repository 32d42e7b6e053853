//! Job definitions from run settings, and the job lifecycle helpers.
//!
//! [`JobSettings`] holds every option of a workflow job (the create-job
//! body, `rf_types::JobDefinition`)
//! in one plain struct that a CLI can fill from flags; [`build_definition`]
//! turns it into the wire definition through `rf_types`' validating builder.
//! [`start_job`] starts a job so that a retried start never makes a second
//! one (see its docs); [`restart_job`] restarts one so that a lost answer
//! neither fails the command nor restarts twice. Aborting and reading logs
//! are methods of [`crate::client::Jobs`]; waiting is
//! [`crate::wait::wait_for_job`].

use rf_types::{
    AggregationFormat, BatchId, InferenceBackend, JobDefinition, JobId, MachineType,
    ParametersOverride, WorkflowJob,
};
use serde_json::{Map, Value};

use crate::client::Client;
use crate::error::{ApiErrorKind, Error, Result};
use crate::files::scan::MediaKind;

/// Every option of a workflow job. `None` leaves the service's default.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobSettings {
    /// Extra workflow inputs (`workflowParameters`).
    pub workflow_parameters: Option<Map<String, Value>>,
    /// Name of the workflow's image input (`imageInputName`).
    pub image_input_name: Option<String>,
    /// Image outputs to keep (`imagesOutputsToBePersisted`; also sets
    /// `persistImagesOutputs`).
    pub outputs_to_persist: Option<Vec<String>>,
    /// Part of a multipart input batch (`jobInput.partName`).
    pub part_name: Option<String>,
    /// `cpu` or `gpu`.
    pub machine_type: Option<MachineType>,
    /// Workers per machine.
    pub workers_per_machine: Option<u32>,
    /// Compute budget in seconds (`processingTimeoutSeconds`; service default 3600).
    pub max_runtime_seconds: Option<u64>,
    /// Most tasks at once.
    pub max_parallel_tasks: Option<u32>,
    /// Share of images per shard that may fail (0.0..=1.0, images only).
    pub max_image_failure_rate: Option<f64>,
    /// `csv` or `jsonl`.
    pub aggregation_format: Option<AggregationFormat>,
    /// Frame sub-sampling cap (videos only).
    pub max_video_fps: Option<f64>,
    /// Job webhook (`notificationsURL`).
    pub notifications_url: Option<String>,
    /// Inference backend.
    pub inference_backend: Option<InferenceBackend>,
    /// Images only: the part of a multipart input batch holding each
    /// image's metadata (`jobInput.imagesMetadataPart`).
    pub images_metadata_part: Option<String>,
    /// Images only: workflow input -> metadata key
    /// (`imagesMetadataInputsMapping`): each image's metadata value under
    /// the key is passed to the workflow as that input.
    pub metadata_mapping: Option<std::collections::BTreeMap<String, String>>,
}

impl JobSettings {
    /// Parses workflow parameters from a JSON object text.
    ///
    /// ```
    /// let p = rf_batch::JobSettings::parse_parameters(r#"{"confidence": 0.4}"#).unwrap();
    /// assert_eq!(p["confidence"], 0.4);
    /// assert!(rf_batch::JobSettings::parse_parameters("[1]").is_err());
    /// ```
    pub fn parse_parameters(json: &str) -> Result<Map<String, Value>> {
        match serde_json::from_str::<Value>(json) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(other) => Err(Error::InvalidInput {
                what: "workflow parameters",
                detail: format!("expected a JSON object, got {other}"),
            }),
            Err(e) => Err(Error::InvalidInput {
                what: "workflow parameters",
                detail: e.to_string(),
            }),
        }
    }
}

impl JobSettings {
    /// Checks these options for a job over `kind` running `workflow_id`
    /// before the batch and workspace are known (a run knows them only once
    /// it has uploaded and looked the workspace up), so that a bad option
    /// fails before anything is sent.
    ///
    /// rf-types checks options on a whole definition; the definition built
    /// here names a stand-in batch and workspace and is dropped unsent.
    ///
    /// ```
    /// use rf_batch::JobSettings;
    /// use rf_batch::ingest::MediaKind;
    /// let mut s = JobSettings::default();
    /// assert!(s.validate(MediaKind::Image, "my-workflow").is_ok());
    /// s.max_video_fps = Some(5.0);
    /// assert!(s.validate(MediaKind::Image, "my-workflow").is_err());
    /// ```
    pub fn validate(&self, kind: MediaKind, workflow_id: &str) -> Result<()> {
        const STAND_IN: &str = "unresolved";
        let batch = BatchId::new(STAND_IN).map_err(|e| Error::InvalidInput {
            what: "batch id",
            detail: e.to_string(),
        })?;
        build_definition(kind, &batch, STAND_IN, workflow_id, self).map(drop)
    }
}

/// The job definition running `workflow_id` of `workspace` over `batch`.
pub fn build_definition(
    kind: MediaKind,
    batch: &BatchId,
    workspace: &str,
    workflow_id: &str,
    s: &JobSettings,
) -> Result<JobDefinition> {
    let mut b = match kind {
        MediaKind::Image => WorkflowJob::image(batch.clone(), workspace, workflow_id),
        MediaKind::Video => WorkflowJob::video(batch.clone(), workspace, workflow_id),
    };
    if let Some(p) = &s.workflow_parameters {
        b = b.workflow_parameters(p.clone());
    }
    if let Some(n) = &s.image_input_name {
        b = b.image_input_name(n.clone());
    }
    if let Some(outputs) = &s.outputs_to_persist {
        b = b
            .persist_images_outputs(!outputs.is_empty())
            .images_outputs_to_be_persisted(outputs.clone());
    }
    if let Some(p) = &s.part_name {
        b = b.part_name(p.as_str());
    }
    if let Some(m) = &s.machine_type {
        b = b.machine_type(m.clone());
    }
    if let Some(w) = s.workers_per_machine {
        b = b.workers_per_machine(w);
    }
    if let Some(t) = s.max_runtime_seconds {
        b = b.processing_timeout_seconds(t);
    }
    if let Some(t) = s.max_parallel_tasks {
        b = b.max_parallel_tasks(t);
    }
    if let Some(r) = s.max_image_failure_rate {
        b = b.max_image_failure_rate(r);
    }
    if let Some(f) = &s.aggregation_format {
        b = b.aggregation_format(f.clone());
    }
    if let Some(f) = s.max_video_fps {
        b = b.max_video_fps(f);
    }
    if let Some(u) = &s.notifications_url {
        b = b.notifications_url(u.clone());
    }
    if let Some(i) = &s.inference_backend {
        b = b.inference_backend(i.clone());
    }
    if let Some(part) = &s.images_metadata_part {
        b = b.images_metadata_part(part.as_str());
    }
    if let Some(mapping) = &s.metadata_mapping {
        b = b.images_metadata_inputs_mapping(mapping.clone());
    }
    b.build().map_err(|e| Error::InvalidInput {
        what: "job options",
        detail: e.to_string(),
    })
}

/// How [`start_job`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStart {
    /// The service created the job (or answered a repeated create with the
    /// same definition as a success).
    Created,
    /// The job already existed with the same definition (an earlier attempt
    /// whose answer was lost created it); nothing new was started.
    Existing,
}

/// Starts job `job_id` running `definition`, safely under retries.
///
/// The create request is marked idempotent, so the transport resends it after
/// a timeout or a lost answer; the job ID is chosen by the client, so a resend
/// names the same job and cannot start a second one. The service answers a
/// repeated create with the same definition with `200` ([`JobStart::Created`]).
/// A `409 Conflict` is answered by reading the job: the same definition means
/// an earlier attempt created it ([`JobStart::Existing`]); a different one is
/// [`Error::JobConflict`], naming both.
pub async fn start_job(
    client: &Client,
    job_id: &JobId,
    definition: &JobDefinition,
    name: Option<&str>,
) -> Result<JobStart> {
    match client.jobs().create(job_id, definition, name).await {
        Ok(()) => Ok(JobStart::Created),
        Err(e) if e.is_api(ApiErrorKind::Conflict) => {
            let existing = client.jobs().get(job_id.as_str()).await?;
            check_same_job(job_id, &existing.job.job_definition, definition)?;
            Ok(JobStart::Existing)
        }
        Err(e) => Err(e),
    }
}

/// Follows job `job_id` if it exists, or starts it: for a job ID chosen
/// before the job was created (saved first, or given by the user), whose
/// job may come from an earlier attempt whose answer was lost. An existing
/// job is followed only if it runs `definition` ([`JobStart::Existing`]);
/// another definition is [`Error::JobConflict`]; no job under the ID means
/// [`start_job`]. So repeating the call never starts a second job.
pub async fn follow_or_start_job(
    client: &Client,
    job_id: &JobId,
    definition: &JobDefinition,
    name: Option<&str>,
) -> Result<JobStart> {
    match client.jobs().get(job_id.as_str()).await {
        Ok(job) => {
            check_same_job(job_id, &job.job.job_definition, definition)?;
            Ok(JobStart::Existing)
        }
        Err(e) if e.is_api(ApiErrorKind::NotFound) => {
            start_job(client, job_id, definition, name).await
        }
        Err(e) => Err(e),
    }
}

/// How [`restart_job`] ended.
#[derive(Debug, Clone, PartialEq)]
pub enum JobRestart {
    /// The service answered the restart (its answer inside).
    Restarted(Value),
    /// The answer to a restart was lost (connection cut, timeout, an
    /// undecodable or `5xx` answer), but reading the job back shows that it
    /// was restarted: nothing was sent again.
    RestartedAnswerLost,
}

/// How many times [`restart_job`] sends the restart when reading the job
/// back shows an earlier attempt did not take effect.
const RESTART_ATTEMPTS: usize = 3;

/// Restarts job `job_id` (optionally with `overrides`), safely under lost
/// answers.
///
/// A restart is not idempotent: once it is applied, sending it again is
/// answered `409` (the job is running again). So the transport does not resend
/// it after a cut connection or a timeout, and this function decides instead:
/// it reads the job's `restartParametersOverride` list (which grows by one
/// with every applied restart) before sending, and after any failure other
/// than a plain refusal reads it again. A longer list means the restart was
/// applied ([`JobRestart::RestartedAnswerLost`]); an unchanged one means it
/// was not, and the restart is sent again (at most three times in all). A
/// refusal (`4xx`, e.g. restarting a running or succeeded job) with an
/// unchanged list is returned as it is.
pub async fn restart_job(
    client: &Client,
    job_id: &str,
    overrides: &ParametersOverride,
) -> Result<JobRestart> {
    let restarts = |job: &rf_types::GetJobResponse| job.job.restart_parameters_override.len();
    let before = restarts(&client.jobs().get(job_id).await?);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let error = match client.jobs().restart(job_id, overrides).await {
            Ok(answer) => return Ok(JobRestart::Restarted(answer)),
            Err(e) => e,
        };
        // Read the job back; if even that fails, the restart's own error is
        // the one worth reporting.
        let Ok(now) = client.jobs().get(job_id).await else {
            return Err(error);
        };
        if restarts(&now) > before {
            tracing::info!(
                job = job_id,
                "the restart's answer was lost, but the job was restarted"
            );
            return Ok(JobRestart::RestartedAnswerLost);
        }
        if !error.may_succeed_later() || attempt >= RESTART_ATTEMPTS {
            return Err(error);
        }
        tracing::info!(job = job_id, %error, "the restart did not take effect; sending it again");
    }
}

/// Checks that an existing job's definition (as the service returns it) is
/// the one this client would submit.
///
/// Equal JSON matches. Otherwise what identifies the work must agree: the
/// job type, the input (`jobInput`), and the workspace, workflow and
/// workflow parameters; other fields may differ only by defaults the service
/// filled in. A mismatch is [`Error::JobConflict`].
///
/// ```
/// use rf_batch::job::{JobSettings, build_definition, check_same_job};
/// use rf_batch::ingest::MediaKind;
/// use rf_types::{BatchId, JobId};
///
/// let job = JobId::new("job-1").unwrap();
/// let def = |batch| build_definition(MediaKind::Image, &BatchId::new(batch).unwrap(),
///     "ws", "wf", &JobSettings::default()).unwrap();
/// let mut served = serde_json::to_value(def("b1")).unwrap();
/// served["processingTimeoutSeconds"] = 3600.into(); // a default filled in
/// assert!(check_same_job(&job, &served, &def("b1")).is_ok());
/// let err = check_same_job(&job, &served, &def("b2")).unwrap_err();
/// assert!(err.to_string().contains("b2"), "{err}");
/// ```
pub fn check_same_job(job_id: &JobId, existing: &Value, requested: &JobDefinition) -> Result<()> {
    let requested = serde_json::to_value(requested).map_err(|e| Error::InvalidInput {
        what: "job definition",
        detail: e.to_string(),
    })?;
    if existing == &requested {
        return Ok(());
    }
    let identity = |v: &Value| {
        let spec = &v["processingSpecification"];
        let field = |v: &Value| match v {
            Value::Null => Value::Null,
            Value::Object(m) if m.is_empty() => Value::Null,
            other => other.clone(),
        };
        [
            field(&v["type"]),
            field(&v["jobInput"]),
            field(&spec["workspace"]),
            field(&spec["workflowId"]),
            field(&spec["workflowParameters"]),
        ]
    };
    if identity(existing) == identity(&requested) {
        return Ok(());
    }
    let describe = |v: &Value| {
        format!(
            "batch {} with workflow {}",
            v["jobInput"]["batchId"], v["processingSpecification"]["workflowId"]
        )
    };
    Err(Error::JobConflict {
        job_id: job_id.to_string(),
        existing: describe(existing),
        requested: describe(&requested),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_option_reaches_the_wire() {
        let s = JobSettings {
            workflow_parameters: Some(JobSettings::parse_parameters(r#"{"c":0.4}"#).unwrap()),
            image_input_name: Some("image".into()),
            outputs_to_persist: Some(vec!["annotated".into()]),
            part_name: Some("images".into()),
            machine_type: Some(MachineType::Gpu),
            workers_per_machine: Some(2),
            max_runtime_seconds: Some(7200),
            max_parallel_tasks: Some(8),
            max_image_failure_rate: Some(0.05),
            aggregation_format: Some(AggregationFormat::Jsonl),
            max_video_fps: None,
            notifications_url: Some("https://hooks.example/jobs".into()),
            inference_backend: Some(InferenceBackend::InferenceModels),
            images_metadata_part: Some("metadata".into()),
            metadata_mapping: Some([("camera_id".to_owned(), "camera".to_owned())].into()),
        };
        let batch = BatchId::new("b1").unwrap();
        let def = build_definition(MediaKind::Image, &batch, "ws", "wf", &s).unwrap();
        let v = serde_json::to_value(&def).unwrap();
        assert_eq!(v["type"], "simple-image-processing-v1");
        assert_eq!(v["jobInput"]["partName"], "images");
        assert_eq!(v["jobInput"]["imagesMetadataPart"], "metadata");
        assert_eq!(
            v["processingSpecification"]["imagesMetadataInputsMapping"]["camera_id"],
            "camera"
        );
        assert_eq!(v["computeConfiguration"]["machineType"], "gpu");
        assert_eq!(v["computeConfiguration"]["workersPerMachine"], 2);
        assert_eq!(v["processingTimeoutSeconds"], 7200);
        assert_eq!(v["maxParallelTasks"], 8);
        assert_eq!(v["maxImageFailureRate"], 0.05);
        assert_eq!(v["notificationsURL"], "https://hooks.example/jobs");
        assert_eq!(v["inferenceBackend"], "inference-models");
        let spec = &v["processingSpecification"];
        assert_eq!(spec["workspace"], "ws");
        assert_eq!(spec["workflowId"], "wf");
        assert_eq!(spec["workflowParameters"]["c"], 0.4);
        assert_eq!(spec["imageInputName"], "image");
        assert_eq!(spec["persistImagesOutputs"], true);
        assert_eq!(spec["imagesOutputsToBePersisted"][0], "annotated");
        assert_eq!(spec["aggregationFormat"], "jsonl");
    }

    #[test]
    fn video_options_are_checked() {
        let batch = BatchId::new("v1").unwrap();
        let s = JobSettings {
            max_video_fps: Some(5.0),
            ..Default::default()
        };
        let v = serde_json::to_value(
            build_definition(MediaKind::Video, &batch, "ws", "wf", &s).unwrap(),
        )
        .unwrap();
        assert_eq!(v["type"], "simple-video-processing-v1");
        assert!(v["processingSpecification"]["maxVideoFPS"].is_number());
        let bad = JobSettings {
            max_image_failure_rate: Some(0.5),
            ..Default::default()
        };
        assert!(build_definition(MediaKind::Video, &batch, "ws", "wf", &bad).is_err());
        let bad = JobSettings {
            max_image_failure_rate: Some(1.5),
            ..Default::default()
        };
        assert!(build_definition(MediaKind::Image, &batch, "ws", "wf", &bad).is_err());
    }
}
