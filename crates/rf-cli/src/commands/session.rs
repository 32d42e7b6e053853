//! A connection to the API for one command: a configured remote API, or the
//! embedded emulator started in this process when nothing is configured.
//! Also the mapping of library errors to exit codes.

use std::net::SocketAddr;
use std::path::Path;

use rf_batch::{ApiErrorKind, Client, Endpoint, Error, FailureClass};
use rf_emulator::{Emulator, EmulatorConfig, EmulatorError, RunningEmulator};

use crate::config::{Api, Config};
use crate::error::{CliError, Kind, Result};
use crate::workspace_cache::RememberedWorkspace;

/// The key and workspace of the embedded emulator. Not a secret: the
/// embedded emulator only listens on loopback inside this process.
pub(crate) const EMBEDDED_KEY: &str = "rf-embedded-key";
/// The workspace the embedded emulator reports.
pub(crate) const EMBEDDED_WORKSPACE: &str = "local";

/// A client, and the emulator behind it when it is embedded (kept alive for
/// as long as the session).
#[derive(Debug)]
pub(crate) struct Session {
    client: Client,
    emulator: Option<RunningEmulator>,
    /// The workspace cache's entry for this key, when no workspace was
    /// given (see [`crate::workspace_cache`]), and what it held at open.
    remembered: Option<(RememberedWorkspace, Option<String>)>,
}

impl Session {
    /// Connects per `config`: builds the client, or starts the embedded
    /// emulator (and says so in one line on stderr). `command` (`rf run`,
    /// `rf batch list`, ...) names this process to another `rf` refused the
    /// embedded emulator's data directory while this one holds it.
    pub(crate) async fn open(config: &Config, command: &str) -> Result<Session> {
        match &config.api {
            Api::Remote { url, key } => {
                let mut builder = Client::builder()
                    .base_url(url.as_str())
                    .api_key(key.expose())
                    .http2_prior_knowledge(config.http2_prior_knowledge);
                let remembered = remembered_workspace(config, url.as_str(), key.expose());
                let workspace = config
                    .workspace
                    .clone()
                    .or_else(|| remembered.as_ref().and_then(|(_, held)| held.clone()));
                if let Some(ws) = workspace {
                    builder = builder.workspace(ws);
                }
                if let Some(t) = config.timeout {
                    builder = builder.timeout(t);
                }
                let client = builder.build().map_err(|e| map_error(&e))?;
                Ok(Session {
                    client,
                    emulator: None,
                    remembered,
                })
            }
            Api::Embedded { data_dir } => {
                std::fs::create_dir_all(data_dir).map_err(|e| {
                    CliError::local(format!(
                        "cannot create the embedded emulator's data directory {}: {e}; set XDG_CACHE_HOME to a writable directory",
                        data_dir.display()
                    ))
                })?;
                let emulator_config = EmulatorConfig::default()
                    .with_key(EMBEDDED_KEY, EMBEDDED_WORKSPACE)
                    .with_data_dir(data_dir.clone())
                    .with_owner(command);
                let addr = SocketAddr::from(([127, 0, 0, 1], 0));
                let running = Emulator::start(emulator_config, addr)
                    .await
                    .map_err(|e| embedded_start_error(&e, data_dir))?;
                config.output.note(&format!(
                    "no ROBOFLOW_API_KEY or API_BASE_URL set: using the embedded emulator at {} (data in {})",
                    running.base_url().as_str().trim_end_matches('/'),
                    data_dir.display()
                ));
                let client = Client::builder()
                    .base_url(running.base_url().to_string())
                    .api_key(EMBEDDED_KEY)
                    .workspace(EMBEDDED_WORKSPACE)
                    .http2_prior_knowledge(config.http2_prior_knowledge)
                    .build()
                    .map_err(|e| map_error(&e))?;
                Ok(Session {
                    client,
                    emulator: Some(running),
                    remembered: None,
                })
            }
        }
    }

    /// The API client.
    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// Ends the session after a command that ended with `result`: settles
    /// the remembered workspace ([`Session::settle_workspace`]), then closes.
    pub(crate) async fn finish<T>(self, result: Result<T>) -> Result<T> {
        let result = self.settle_workspace(result).await;
        self.close().await;
        result
    }

    /// Keeps the workspace the client looked up for the next command; when
    /// the command failed as a wrong workspace would make it fail (key
    /// refused, not found) with a remembered workspace, asks the server
    /// which workspace is the key's: a different one replaces it (and the
    /// error says to run the command again), a failed lookup forgets it.
    async fn settle_workspace<T>(&self, result: Result<T>) -> Result<T> {
        let Some((entry, held)) = &self.remembered else {
            return result;
        };
        let Some(held) = held else {
            if let Some(ws) = self.client.known_workspace() {
                entry.put(ws);
            }
            return result;
        };
        let err = match result {
            Err(e) if matches!(e.kind(), Kind::Auth | Kind::NotFound) => e,
            other => return other,
        };
        match self.client.lookup_workspace().await {
            Ok(ws) if ws == *held => Err(err),
            Ok(ws) => {
                entry.put(&ws);
                Err(err.with_note(&format!(
                    "this API key's workspace is {ws:?}, not {held:?} as remembered in {}: corrected, run the command again",
                    entry.path().display()
                )))
            }
            Err(_) => {
                entry.forget();
                Err(err)
            }
        }
    }

    /// Stops the embedded emulator, if any, letting it persist its state.
    pub(crate) async fn close(mut self) {
        if let Some(emulator) = self.emulator.take() {
            emulator.shutdown().await;
        }
    }
}

impl Drop for Session {
    /// A session dropped without [`Session::close`] (a second Ctrl-C abandons
    /// the command) still writes the embedded emulator's state, so that it
    /// agrees with the run manifest on the next run.
    fn drop(&mut self) {
        if let Some(emulator) = &self.emulator
            && let Err(e) = emulator.state().persist()
        {
            tracing::warn!("cannot save the embedded emulator's state: {e}");
        }
    }
}

/// The cache entry of the workspace of `key` at `url`, and what it holds;
/// none when a workspace was given or there is no cache directory.
fn remembered_workspace(
    config: &Config,
    url: &str,
    key: &str,
) -> Option<(RememberedWorkspace, Option<String>)> {
    if config.workspace.is_some() {
        return None;
    }
    let entry = RememberedWorkspace::of(config.cache_dir.as_deref()?, url, key);
    let held = entry.get();
    Some((entry, held))
}

/// Why the embedded emulator did not start, and what to do about it.
fn embedded_start_error(err: &EmulatorError, data_dir: &Path) -> CliError {
    let EmulatorError::DataDirInUse { holder, .. } = err else {
        return CliError::local(format!(
            "cannot start the embedded emulator (data in {}): {err}",
            data_dir.display()
        ));
    };
    let owner = holder.owner.as_deref().unwrap_or("another program");
    let pid = holder
        .pid
        .map(|p| format!(" (pid {p})"))
        .unwrap_or_default();
    let what = format!(
        "the embedded emulator's data directory {} is in use by {owner}{pid}",
        data_dir.display()
    );
    let serve_url = holder.base_url.as_deref().filter(|_| owner == SERVE_OWNER);
    let todo = match serve_url {
        // A server on this directory: use it instead of a second emulator.
        Some(url) => format!(
            "point rf at that server: export API_BASE_URL={} and ROBOFLOW_API_KEY=<its key> (printed when it started, or the one passed with --key)",
            url.trim_end_matches('/')
        ),
        None => "wait for it to finish, or, to run several commands at once, start `rf emulator serve` and point each rf at it (API_BASE_URL and ROBOFLOW_API_KEY, as it prints)".to_owned(),
    };
    CliError::local(format!("{what}; {todo}"))
}

/// The owner `rf emulator serve` writes into the data directory's lock.
pub(crate) const SERVE_OWNER: &str = "rf emulator serve";

/// The exit-code class of a library error.
fn kind_of(err: &Error) -> Kind {
    match err {
        Error::Api(api) => match api.kind {
            ApiErrorKind::Unauthenticated | ApiErrorKind::Forbidden => Kind::Auth,
            ApiErrorKind::NotFound => Kind::NotFound,
            ApiErrorKind::BadRequest | ApiErrorKind::Conflict | ApiErrorKind::PayloadTooLarge => {
                Kind::Usage
            }
            _ => Kind::Remote,
        },
        // One cause, one code: files the service refused, whether at upload
        // (single mode) or while indexing a shard (bulk mode).
        Error::FilesRefused { .. } => Kind::Usage,
        Error::CountTimeout(t) if t.rejected > 0 => Kind::Usage,
        Error::InvalidInput { .. }
        | Error::Scan(_)
        | Error::ForeignRun { .. }
        | Error::ForeignExport { .. }
        | Error::OutputInsideInput { .. }
        | Error::StateInsideInput { .. }
        | Error::NoMedia { .. }
        | Error::NotADirectory { .. }
        | Error::JobConflict { .. } => Kind::Usage,
        Error::UnknownPart { .. } => Kind::NotFound,
        Error::Transport { .. }
        | Error::Decode { .. }
        | Error::CountTimeout(_)
        | Error::LengthMismatch { .. }
        | Error::JobFailed { .. }
        | Error::JobTimeout { .. }
        | Error::NoExportOutput { .. }
        | Error::BrokenListing { .. }
        | Error::TaskFailed { .. }
        | Error::TaskTimeout { .. } => Kind::Remote,
        Error::UploadsFailed { .. } => Kind::Partial,
        // The advice (in the message) and the code follow the class that
        // needs the most from the user.
        Error::DownloadsFailed { counts, .. } => match counts.class() {
            FailureClass::Retryable => Kind::Partial,
            FailureClass::Local => Kind::Local,
            _ => Kind::Remote,
        },
        Error::Cancelled => Kind::Interrupted,
        Error::Cloud(cloud) => cloud_kind(cloud),
        Error::Bucket(bucket) => bucket_kind(bucket),
        _ => Kind::Local,
    }
}

/// The exit-code class of a bucket error: a wrong URL or one that lists
/// nothing is usage, credentials missing or refused are authentication, a
/// missing bucket is not found.
fn cloud_kind(err: &rf_batch::cloud::CloudError) -> Kind {
    use rf_batch::cloud::CloudError as C;
    match err {
        C::Url(_) | C::Config { .. } | C::EmptyPrefix { .. } | C::NoMatch { .. } => Kind::Usage,
        C::NoCredentials { .. } | C::AccessDenied { .. } => Kind::Auth,
        C::BucketNotFound { .. } => Kind::NotFound,
        _ => Kind::Remote,
    }
}

/// The exit-code class of an upload into a bucket: as a listing's for the
/// bucket itself, remote for one object, local for a file of the staging
/// directory, partial when some files failed.
fn bucket_kind(err: &rf_batch::export::bucket::BucketError) -> Kind {
    use rf_batch::export::bucket::BucketError as B;
    match err {
        B::Open(cloud) => cloud_kind(cloud),
        B::Glob { .. } => Kind::Usage,
        B::AccessDenied { .. } => Kind::Auth,
        B::BucketNotFound { .. } => Kind::NotFound,
        B::UploadsFailed { .. } => Kind::Partial,
        B::Cancelled => Kind::Interrupted,
        B::Transfer { .. } | B::Unreachable { .. } => Kind::Remote,
        _ => Kind::Local,
    }
}

/// The exit-code class and one-line message of a library error.
pub(crate) fn map_error(err: &Error) -> CliError {
    let kind = kind_of(err);
    let message = match err {
        Error::Cancelled => "interrupted; re-run the same command to resume".to_owned(),
        Error::JobFailed { job_id, message } => format!(
            "job {job_id:?} failed: {}; see why with `rf job logs {job_id}`, and run it again with `rf job restart {job_id}` once the cause is fixed",
            notification_text(message)
        ),
        Error::Api(api) => api_message(api).unwrap_or_else(|| err.to_string()),
        Error::CountTimeout(t) if t.rejected == 0 => {
            format!("{err}; to wait longer, pass --count-timeout SECS (default 600)")
        }
        // The library's advice covers every caller; on the command line the
        // way out is a flag.
        Error::JobConflict {
            job_id,
            existing,
            requested,
        } => format!(
            "job {job_id:?} already exists and runs {existing}, not {requested}; choose another --job-id (or leave it out for a generated one)"
        ),
        Error::ForeignRun {
            path,
            existing,
            requested,
            ..
        } => format!(
            "{} records another run ({existing}), not this one ({requested}); use another --out directory, or remove {} to start this run there",
            path.display(),
            path.parent().unwrap_or(path).display()
        ),
        Error::OutputInsideInput { .. } => {
            format!("{err}; choose an --out outside the input directory")
        }
        Error::NotADirectory {
            role: rf_batch::DirRole::Output,
            path,
        } => format!(
            "--out {} is a file, not a directory; choose a directory (it is created if missing)",
            path.display()
        ),
        Error::NoMedia { kind, .. } => format!("{err}; {}", super::options::media_hint(*kind)),
        _ => err.to_string(),
    };
    CliError::new(kind, message)
}

/// A job's last notification as the library gives it (a JSON object's text,
/// or plain text) as one short line.
fn notification_text(message: &str) -> String {
    match serde_json::from_str::<rf_types::Notification>(message) {
        Ok(n @ rf_types::Notification::Object(_)) => crate::render::notification(&n),
        _ => message.to_owned(),
    }
}

/// The message of an API error whose generic advice (rf-batch's) can be
/// made more precise for the command line: which ID to check and the `rf`
/// command that lists them, why a restart was refused. `None`: the
/// library's message is right as it is.
fn api_message(api: &rf_batch::ApiError) -> Option<String> {
    let advice = match (api.kind, api.endpoint) {
        (ApiErrorKind::NotFound, Endpoint::ListTasks) => {
            "check the job ID (`rf job list`) and the stage ID (`rf job stages JOB_ID`)"
        }
        (
            ApiErrorKind::NotFound,
            Endpoint::GetJob
            | Endpoint::ListStages
            | Endpoint::JobLogs
            | Endpoint::AbortJob
            | Endpoint::RestartJob,
        ) => "check the job ID (`rf job list`) and the workspace",
        (
            ApiErrorKind::NotFound,
            Endpoint::GetBatch
            | Endpoint::Count
            | Endpoint::ListFiles
            | Endpoint::ListParts
            | Endpoint::ListShards
            | Endpoint::CreateJob,
        ) => {
            "check the batch ID (`rf batch list`) and the workspace; staged batches expire after about 7 days"
        }
        (ApiErrorKind::Conflict, Endpoint::RestartJob) => {
            "only a failed or aborted job can be restarted; to process the batch again, start a new job (`rf job start`)"
        }
        _ => return None,
    };
    let id = api
        .id
        .as_ref()
        .map(|i| format!(" {i:?}"))
        .unwrap_or_default();
    let what = match api.kind {
        ApiErrorKind::NotFound => "not found",
        _ => "conflict",
    };
    Some(format!(
        "{}{id} failed: {what} (HTTP {}): {}; {advice}",
        api.endpoint, api.status, api.message
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rf_batch::ApiError;

    fn api(kind: ApiErrorKind, status: u16) -> Error {
        Error::Api(ApiError {
            kind,
            status,
            endpoint: Endpoint::GetBatch,
            id: Some("b1".into()),
            message: "nope".into(),
            retry_after: None,
        })
    }

    fn downloads_failed(retryable: usize, local: usize, permanent: usize) -> Error {
        let failed = retryable + local + permanent;
        Error::DownloadsFailed {
            failed,
            total: failed + 2,
            first: "r.tar: boom".into(),
            counts: rf_batch::FailureCounts {
                retryable,
                local,
                permanent,
            },
        }
    }

    #[test]
    fn library_errors_map_to_the_documented_exit_codes() {
        let cases = [
            (api(ApiErrorKind::Unauthenticated, 401), 3),
            (api(ApiErrorKind::Forbidden, 403), 3),
            (api(ApiErrorKind::NotFound, 404), 4),
            (api(ApiErrorKind::BadRequest, 400), 2),
            (api(ApiErrorKind::Conflict, 409), 2),
            (api(ApiErrorKind::Server, 503), 5),
            (api(ApiErrorKind::RateLimited, 429), 5),
            (
                Error::UploadsFailed {
                    failed: 1,
                    total: 3,
                    first: "a.jpg: boom".into(),
                },
                6,
            ),
            (
                Error::BrokenListing {
                    endpoint: Some(Endpoint::ListFiles),
                    detail: "a cycle".into(),
                },
                5,
            ),
            (downloads_failed(1, 0, 0), 6),
            (downloads_failed(1, 1, 0), 1),
            (downloads_failed(1, 1, 1), 5),
            (
                Error::JobFailed {
                    job_id: "job-1".into(),
                    message: "bad".into(),
                },
                5,
            ),
            (Error::Cancelled, 130),
            (
                Error::InvalidInput {
                    what: "batch id",
                    detail: "bad".into(),
                },
                2,
            ),
        ];
        for (err, code) in cases {
            let mapped = map_error(&err);
            assert_eq!(mapped.kind().code(), code, "{err}");
            assert!(!mapped.to_string().contains('\n'));
        }
    }

    #[test]
    fn not_found_and_conflict_advice_names_the_right_id_and_command() {
        let mut job = api(ApiErrorKind::NotFound, 404);
        if let Error::Api(a) = &mut job {
            a.endpoint = Endpoint::GetJob;
            a.id = Some("job-1".into());
            a.message = "job \"job-1\" not found".into();
        }
        let msg = map_error(&job).to_string();
        assert_eq!(
            msg,
            "get job \"job-1\" failed: not found (HTTP 404): job \"job-1\" not found; check the job ID (`rf job list`) and the workspace"
        );
        assert_eq!(map_error(&job).kind().code(), 4);
        let batch = map_error(&api(ApiErrorKind::NotFound, 404)).to_string();
        assert!(
            batch.contains("check the batch ID (`rf batch list`)"),
            "{batch}"
        );
        assert!(batch.contains("expire after about 7 days"), "{batch}");
        let mut restart = api(ApiErrorKind::Conflict, 409);
        if let Error::Api(a) = &mut restart {
            a.endpoint = Endpoint::RestartJob;
        }
        let msg = map_error(&restart).to_string();
        assert!(
            msg.contains("only a failed or aborted job can be restarted"),
            "{msg}"
        );
        assert_eq!(map_error(&restart).kind().code(), 2);
        // Other conflicts keep the library's advice.
        let other = map_error(&api(ApiErrorKind::Conflict, 409)).to_string();
        assert_eq!(other, api(ApiErrorKind::Conflict, 409).to_string());
    }

    #[test]
    fn conflicts_name_the_flag_to_change() {
        let msg = map_error(&Error::JobConflict {
            job_id: "j".into(),
            existing: "batch \"a\" with workflow \"w\"".into(),
            requested: "batch \"b\" with workflow \"w\"".into(),
        });
        assert_eq!(msg.kind().code(), 2);
        assert!(
            msg.to_string()
                .ends_with("choose another --job-id (or leave it out for a generated one)"),
            "{msg}"
        );
        let msg = map_error(&Error::ForeignRun {
            path: "/o/.rf-state/rf-run.json".into(),
            existing: "input /a with workflow \"w\" into batch \"b\"".into(),
            requested: "input /a with workflow \"x\" into batch \"b\"".into(),
            existing_input: "/a".into(),
        });
        assert_eq!(msg.kind().code(), 2);
        assert_eq!(
            msg.to_string(),
            "/o/.rf-state/rf-run.json records another run (input /a with workflow \"w\" into batch \"b\"), not this one (input /a with workflow \"x\" into batch \"b\"); use another --out directory, or remove /o/.rf-state to start this run there"
        );
    }

    #[test]
    fn a_failed_job_is_told_in_words_with_the_commands_to_go_on() {
        let msg = map_error(&Error::JobFailed {
            job_id: "job-1".into(),
            message: r#"{"message":"workflow \"x\" is not available"}"#.into(),
        })
        .to_string();
        assert_eq!(
            msg,
            "job \"job-1\" failed: workflow \"x\" is not available; see why with `rf job logs job-1`, and run it again with `rf job restart job-1` once the cause is fixed"
        );
        let text = map_error(&Error::JobFailed {
            job_id: "job-1".into(),
            message: "out of memory".into(),
        })
        .to_string();
        assert!(
            text.starts_with("job \"job-1\" failed: out of memory; "),
            "{text}"
        );
    }

    #[test]
    fn messages_say_what_to_do_next() {
        let msg = map_error(&Error::Cancelled).to_string();
        assert!(msg.contains("re-run the same command"), "{msg}");
        let msg = map_error(&Error::JobFailed {
            job_id: "job-1".into(),
            message: "bad".into(),
        })
        .to_string();
        assert!(msg.contains("rf job logs job-1"), "{msg}");
    }
}
