//! Batch Processing endpoints (the table in `docs/library.md`, section 1).

use futures::stream::BoxStream;
use rf_transport::{Body, Request};
use rf_types::{
    AssetLibraryJobCreated, AssetLibraryJobRequest, AsyncTask, GetJobResponse, JobDefinition,
    JobId, JobLog, JobLogsResponse, JobMetadata, JobStage, ListJobsResponse, ListStagesResponse,
    ListTasksResponse, LogSeverity, ParametersOverride, TaskStatus,
};

use super::staging::{json_request, page_request};
use super::{BATCH_PREFIX, Client, paginate_endpoint};
use crate::endpoint::Endpoint;
use crate::error::Result;

/// Batch Processing endpoints; get one with [`Client::jobs`].
#[derive(Debug, Clone, Copy)]
pub struct Jobs<'a> {
    client: &'a Client,
}

impl<'a> Jobs<'a> {
    pub(crate) fn new(client: &'a Client) -> Self {
        Jobs { client }
    }

    async fn url(&self, segments: &[&str]) -> Result<url::Url> {
        self.client.api_url(BATCH_PREFIX, segments).await
    }

    /// `POST .../jobs/{job}`: creates a job. Repeating the call with the same
    /// definition is harmless (the service answers 200), so it is retried.
    pub async fn create(
        &self,
        job_id: &JobId,
        definition: &JobDefinition,
        name: Option<&str>,
    ) -> Result<()> {
        let url = self.url(&["jobs", job_id.as_str()]).await?;
        let mut req =
            json_request(Request::post(url), definition, "job definition")?.idempotent(true);
        if let Some(n) = name {
            req = req.query("name", n);
        }
        self.client
            .call(Endpoint::CreateJob, Some(job_id.as_str()), req)
            .await?;
        Ok(())
    }

    /// `POST .../asset-library/jobs`: starts a job over images of the
    /// workspace's Asset Library (`202`, with the job and the async task
    /// that reports its start). The key goes in an `Authorization: Bearer`
    /// header, as the official `roboflow` client sends it. Retried: the
    /// request's idempotency key makes a repeated create start no second
    /// job.
    pub async fn create_library_job(
        &self,
        request: &AssetLibraryJobRequest,
    ) -> Result<AssetLibraryJobCreated> {
        let url = self.url(&["asset-library", "jobs"]).await?;
        let req = json_request(Request::post(url), request, "asset library job")?.idempotent(true);
        self.client
            .call_json_bearer(
                Endpoint::CreateLibraryJob,
                Some(request.idempotency_key.as_str()),
                req,
            )
            .await
    }

    /// `GET {base}/{workspace}/asynctasks/{task}`: a task of the workspace
    /// (how an Asset Library job's start is followed).
    pub async fn async_task(&self, task_id: &str) -> Result<AsyncTask> {
        let url = self.client.workspace_url(&["asynctasks", task_id]).await?;
        self.client
            .call_json(
                Endpoint::GetAsyncTask,
                Some(task_id),
                Request::get(url).idempotent(true),
            )
            .await
    }

    /// `GET .../jobs/{job}`: the job's metadata (and the newer status fields).
    pub async fn get(&self, job_id: &str) -> Result<GetJobResponse> {
        let url = self.url(&["jobs", job_id]).await?;
        self.client
            .call_json(
                Endpoint::GetJob,
                Some(job_id),
                Request::get(url).idempotent(true),
            )
            .await
    }

    /// `GET .../jobs`: every job of the workspace, page by page.
    pub fn list(&self, page_size: Option<u32>) -> BoxStream<'static, Result<JobMetadata>> {
        self.search(None, page_size)
    }

    /// `GET .../jobs?search=...`: the jobs whose name, workflow or status
    /// text matches `search` (the service's search, as `roboflow batch
    /// list --search` sends it), page by page; `None`: every job.
    pub fn search(
        &self,
        search: Option<&str>,
        page_size: Option<u32>,
    ) -> BoxStream<'static, Result<JobMetadata>> {
        let client = self.client.clone();
        let search = search.map(str::to_owned);
        paginate_endpoint(Endpoint::ListJobs, false, move |token| {
            let client = client.clone();
            let search = search.clone();
            async move {
                let url = client.api_url(BATCH_PREFIX, &["jobs"]).await?;
                let mut req = page_request(url, page_size, token);
                if let Some(s) = search {
                    req = req.query("search", s);
                }
                let r: ListJobsResponse = client.call_json(Endpoint::ListJobs, None, req).await?;
                Ok((r.jobs, r.next_page_token))
            }
        })
    }

    /// `GET .../jobs/{job}/stages`: the job's stages (not paginated).
    pub async fn stages(&self, job_id: &str) -> Result<Vec<JobStage>> {
        let url = self.url(&["jobs", job_id, "stages"]).await?;
        let r: ListStagesResponse = self
            .client
            .call_json(
                Endpoint::ListStages,
                Some(job_id),
                Request::get(url).idempotent(true),
            )
            .await?;
        Ok(r.stages)
    }

    /// `GET .../jobs/{job}/stages/{stage}/tasks`: a stage's tasks, page by page.
    pub fn tasks(&self, job_id: &str, stage_id: &str) -> BoxStream<'static, Result<TaskStatus>> {
        let client = self.client.clone();
        let job_id = job_id.to_string();
        let stage_id = stage_id.to_string();
        paginate_endpoint(Endpoint::ListTasks, false, move |token| {
            let client = client.clone();
            let job_id = job_id.clone();
            let stage_id = stage_id.clone();
            async move {
                let url = client
                    .api_url(
                        BATCH_PREFIX,
                        &["jobs", &job_id, "stages", &stage_id, "tasks"],
                    )
                    .await?;
                let r: ListTasksResponse = client
                    .call_json(
                        Endpoint::ListTasks,
                        Some(&job_id),
                        page_request(url, None, token),
                    )
                    .await?;
                Ok((r.tasks, r.next_page_token))
            }
        })
    }

    /// `GET .../jobs/{job}/logs`: the job's logs, optionally of one severity.
    pub fn logs(
        &self,
        job_id: &str,
        severity: Option<LogSeverity>,
    ) -> BoxStream<'static, Result<JobLog>> {
        let client = self.client.clone();
        let job_id = job_id.to_string();
        paginate_endpoint(Endpoint::JobLogs, false, move |token| {
            let client = client.clone();
            let job_id = job_id.clone();
            async move {
                let url = client
                    .api_url(BATCH_PREFIX, &["jobs", &job_id, "logs"])
                    .await?;
                let mut req = page_request(url, None, token);
                if let Some(s) = severity {
                    req = req.query("severity", s.as_str());
                }
                let r: JobLogsResponse = client
                    .call_json(Endpoint::JobLogs, Some(&job_id), req)
                    .await?;
                Ok((r.logs, r.next_page_token))
            }
        })
    }

    /// `POST .../jobs/{job}/abort` (no body); returns the server's answer.
    pub async fn abort(&self, job_id: &str) -> Result<serde_json::Value> {
        let url = self.url(&["jobs", job_id, "abort"]).await?;
        let req = Request::post(url).body(Body::Empty).idempotent(true);
        self.client
            .call_json(Endpoint::AbortJob, Some(job_id), req)
            .await
    }

    /// `POST .../jobs/{job}/restart`; with no override no body is sent.
    pub async fn restart(
        &self,
        job_id: &str,
        overrides: &ParametersOverride,
    ) -> Result<serde_json::Value> {
        let url = self.url(&["jobs", job_id, "restart"]).await?;
        let req = if overrides.is_empty() {
            Request::post(url).body(Body::Empty)
        } else {
            json_request(Request::post(url), overrides, "restart overrides")?
        };
        self.client
            .call_json(Endpoint::RestartJob, Some(job_id), req.idempotent(false))
            .await
    }
}
