//! `rf batch ...`: Data Staging commands.

use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::session::{Session, map_error};
use super::{export, ingest, listing};
use crate::args::BatchCommand;
use crate::config::Config;
use crate::error::Result;
use crate::progress::Progress;
use crate::render;

/// Runs one `rf batch` command.
pub(crate) async fn run(
    command: &BatchCommand,
    config: &Config,
    progress: Progress,
    cancel: CancellationToken,
) -> Result<()> {
    if let BatchCommand::Ingest(args) = command {
        ingest::check_input(args)?;
    }
    let session = Session::open(config, name(command)).await?;
    let result = dispatch(command, &session, config, progress, cancel).await;
    session.finish(result).await
}

/// The command as typed (names this process in the embedded emulator's lock).
fn name(command: &BatchCommand) -> &'static str {
    match command {
        BatchCommand::Ingest(_) => "rf batch ingest",
        BatchCommand::List(_) => "rf batch list",
        BatchCommand::Show(_) => "rf batch show",
        BatchCommand::Count(_) => "rf batch count",
        BatchCommand::Files(_) => "rf batch files",
        BatchCommand::Parts(_) => "rf batch parts",
        BatchCommand::Shards(_) => "rf batch shards",
        BatchCommand::Export(_) => "rf batch export",
    }
}

async fn dispatch(
    command: &BatchCommand,
    session: &Session,
    config: &Config,
    progress: Progress,
    cancel: CancellationToken,
) -> Result<()> {
    let staging = session.client().staging();
    let out = &config.output;
    match command {
        BatchCommand::Ingest(args) => ingest::run(args, session, config, progress, cancel).await,
        BatchCommand::List(args) => {
            listing::print(staging.list_batches(None), args.limit, out, render::batches).await
        }
        BatchCommand::Show(args) => {
            let batch = staging
                .batch(&args.batch_id)
                .await
                .map_err(|e| map_error(&e))?;
            if out.is_json() {
                out.document(&batch)
            } else {
                out.table(&render::batch(&batch))
            }
        }
        BatchCommand::Count(args) => {
            let count = staging
                .count(&args.batch_id, args.part.as_deref())
                .await
                .map_err(|e| map_error(&e))?;
            if out.is_json() {
                let mut doc = json!({ "batchId": args.batch_id, "count": count });
                if let Some(part) = &args.part {
                    doc["partName"] = json!(part);
                }
                out.document(&doc)
            } else {
                out.stdout_line(&count.to_string())
            }
        }
        BatchCommand::Files(args) => {
            listing::print(
                staging.list_files(&args.batch_id, args.part.as_deref()),
                args.limit,
                out,
                render::files,
            )
            .await
        }
        BatchCommand::Parts(args) => {
            let parts = staging
                .parts(&args.batch_id)
                .await
                .map_err(|e| map_error(&e))?;
            listing::print_all(&parts, out, render::parts)
        }
        BatchCommand::Shards(args) => {
            listing::print(staging.shards(&args.batch_id), None, out, render::shards).await
        }
        BatchCommand::Export(args) => {
            export::run(
                session,
                config,
                progress,
                cancel,
                export::Target {
                    batch_id: args.batch_id.clone(),
                    parts: args.part.clone(),
                    out: args.out.clone(),
                    staging_dir: args.staging_dir.clone(),
                    command: "rf batch export",
                },
            )
            .await
        }
    }
}
