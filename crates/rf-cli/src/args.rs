//! The command line as clap parses it: a derive tree that mirrors what the user
//! typed and does no I/O. `config.rs` turns it into a resolved configuration.
//!
//! Option names follow the official client (`inference rf-cloud ...`) so that
//! its users find the same flags here.

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

/// Version string shown by `rf --version`: the package version and, when
/// known, the git commit it was built from (`0.1.0 (1a2b3c4)`; build.rs).
const VERSION: &str = env!("RF_VERSION");

/// rf: run Roboflow batch jobs from the terminal.
///
/// Stage images or videos, run a Workflow over them as a batch job and download
/// the results. With no API key and no API URL configured, `rf run` starts an
/// embedded local emulator so the whole pipeline works on a fresh machine.
#[derive(Debug, Parser)]
#[command(
    name = "rf",
    version = VERSION,
    max_term_width = 100,
    after_help = "Get started (no account needed: the embedded emulator):\n  rf run --images samples/images --workflow image-properties --out out\n  rf batch list\n  rf job list\n\nEnvironment:\n  ROBOFLOW_API_KEY   API key (same as --api-key)\n  API_BASE_URL       API base URL (same as --api-url)\n  XDG_CACHE_HOME     the embedded emulator keeps its data in $XDG_CACHE_HOME/rf/emulator\n                     (default ~/.cache/rf/emulator)\n  RF_WEBHOOK_TOKEN   token for `rf webhook listen` (same as --token)\n  RF_LOG             log filter for -v output (tracing EnvFilter syntax)\n\nExit codes: 0 ok, 1 local error, 2 usage, 3 auth, 4 not found, 5 remote failure,\n6 partial failure, 130 interrupted. See docs/cli.md."
)]
pub(crate) struct Cli {
    /// Options shared by every command.
    #[command(flatten)]
    pub(crate) global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The global options that only matter to commands that call the API.
const API_OPTIONS: [&str; 7] = [
    "api_key",
    "api_url",
    "workspace",
    "concurrency",
    "max_concurrency",
    "timeout",
    "http2_prior_knowledge",
];

/// The commands that never call the API (their help hides [`API_OPTIONS`]).
const OFFLINE_COMMANDS: [&[&str]; 3] = [
    &["completions"],
    &["webhook", "listen"],
    &["emulator", "serve"],
];

impl Cli {
    /// The clap command, as parsed and as completions describe it: the
    /// global options only API calls use are hidden from the help of the
    /// commands that make none (they are still accepted there, and
    /// ignored).
    pub(crate) fn command_for_help() -> clap::Command {
        let command = <Cli as clap::CommandFactory>::command();
        let hidden: Vec<clap::Arg> = command
            .get_arguments()
            .filter(|a| API_OPTIONS.contains(&a.get_id().as_str()))
            .map(|a| a.clone().global(false).hide(true))
            .collect();
        OFFLINE_COMMANDS
            .iter()
            .fold(command, |c, path| with_hidden(c, path, &hidden))
    }

    /// Parses the process's arguments with [`Cli::command_for_help`].
    pub(crate) fn try_parse_args() -> Result<Cli, clap::Error> {
        let matches = Cli::command_for_help().try_get_matches()?;
        <Cli as clap::FromArgMatches>::from_arg_matches(&matches)
    }
}

/// `command` with `hidden` defined in the subcommand at `path`: a
/// subcommand's own argument of the same name keeps the global one from
/// being shown there.
fn with_hidden(command: clap::Command, path: &[&str], hidden: &[clap::Arg]) -> clap::Command {
    match path {
        [] => command.args(hidden.iter().cloned()),
        [first, rest @ ..] => command.mut_subcommand(*first, |sub| with_hidden(sub, rest, hidden)),
    }
}

/// Options accepted by every command, before or after the subcommand.
#[derive(Debug, Args)]
pub(crate) struct GlobalArgs {
    /// Roboflow API key [env: ROBOFLOW_API_KEY] (prefer the variable: flags show up in `ps`)
    #[arg(
        long,
        global = true,
        value_name = "KEY",
        help_heading = "Global options"
    )]
    pub(crate) api_key: Option<String>,

    /// API base URL [env: API_BASE_URL] [default: https://api.roboflow.com; with no key
    /// either, the embedded emulator]
    #[arg(
        long,
        global = true,
        value_name = "URL",
        help_heading = "Global options"
    )]
    pub(crate) api_url: Option<String>,

    /// Workspace to use instead of the one the API key belongs to
    #[arg(
        long,
        global = true,
        value_name = "NAME",
        help_heading = "Global options"
    )]
    pub(crate) workspace: Option<String>,

    /// Machine-readable output: one JSON document, or JSON lines for streams
    #[arg(long, global = true, help_heading = "Global options")]
    pub(crate) json: bool,

    /// More detail on stderr (-v: info, -vv: debug, -vvv: trace)
    #[arg(short, long, global = true, action = ArgAction::Count, help_heading = "Global options")]
    pub(crate) verbose: u8,

    /// Only errors on stderr: no progress, no notes
    #[arg(
        short,
        long,
        global = true,
        conflicts_with = "verbose",
        help_heading = "Global options"
    )]
    pub(crate) quiet: bool,

    /// Pin uploads and downloads in flight at once to N [default: adaptive,
    /// from 32 up to --max-concurrency]
    #[arg(long, global = true, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=128), conflicts_with = "max_concurrency", help_heading = "Global options")]
    pub(crate) concurrency: Option<u16>,

    /// Most uploads and downloads the adaptive limit may run at once
    /// [default: 128]
    #[arg(long, global = true, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=128), help_heading = "Global options")]
    pub(crate) max_concurrency: Option<u16>,

    /// Give up on an API call (not an upload or download) after SECS, then retry it
    #[arg(long, global = true, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..), help_heading = "Global options")]
    pub(crate) timeout: Option<u64>,

    /// Speak HTTP/2 from a connection's first byte, for cleartext servers
    /// known to speak it (`rf emulator serve`); over https HTTP/2 is
    /// negotiated wherever the server offers it, without this
    #[arg(long, global = true, help_heading = "Global options")]
    pub(crate) http2_prior_knowledge: bool,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Ingest a directory, run a workflow over it and download the results
    ///
    /// Steps: ingest -> count check -> start job -> wait -> export into --out.
    /// Re-running the same command resumes where it stopped: nothing is
    /// uploaded or downloaded twice.
    #[command(
        after_help = "Examples:\n  rf run --images samples/images --workflow image-properties --out out\n  rf run --images ./frames --workflow my-detector --out results --batch-id frames-0601 \\\n         --machine-type gpu --aggregation-format jsonl\n  rf run --videos ./clips --workflow my-video-workflow --out clips-out --max-video-fps 1\n  rf --json run --images ./frames --workflow my-detector --out results > report.json"
    )]
    Run(RunArgs),
    /// Data Staging: ingest, list and export batches
    #[command(subcommand)]
    Batch(BatchCommand),
    /// Batch Processing: start, watch and control jobs
    #[command(subcommand)]
    Job(JobCommand),
    /// The local emulator of both APIs
    #[command(subcommand)]
    Emulator(EmulatorCommand),
    /// Receive webhook notifications locally
    #[command(subcommand)]
    Webhook(WebhookCommand),
    /// Write an HTML report of downloaded results (one self-contained page)
    ///
    /// Reads <OUT_DIR>/results (JSON lines and CSV, every part), the run
    /// manifest and the job details a run saved, and writes
    /// <OUT_DIR>/report.html: a gallery of sampled images with their
    /// predictions drawn, class counts, a confidence histogram, failures,
    /// fields of other outputs, videos. Needs no network, and neither does
    /// the page.
    #[command(
        after_help = "Examples:\n  rf report out\n  rf report out --sample 500 --output /tmp/out.html\n  rf run --images samples/images --workflow color-blobs --out out --report"
    )]
    Report(ReportArgs),
    /// Print a shell completion script to stdout
    #[command(
        after_help = "Examples:\n  rf completions bash > ~/.local/share/bash-completion/completions/rf\n  rf completions zsh  > \"${fpath[1]}/_rf\"\n  rf completions fish > ~/.config/fish/completions/rf.fish"
    )]
    Completions(CompletionsArgs),
}

/// `rf report`.
#[derive(Debug, Args)]
pub(crate) struct ReportArgs {
    /// The output directory of `rf run`, `rf batch export` or `rf job export`
    #[arg(value_name = "OUT_DIR")]
    pub(crate) out_dir: PathBuf,
    /// Images in the gallery, sampled per class [default: 200]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=5000))]
    pub(crate) sample: Option<u16>,
    /// Where to write the page [default: OUT_DIR/report.html]
    #[arg(long, value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,
}

/// Where the media come from: a directory of images or one of videos.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub(crate) struct MediaSource {
    /// Directory of images (searched recursively), or a bucket: s3://,
    /// gs://, az:// or azure:// BUCKET/PREFIX/, optionally with a glob
    #[arg(long, value_name = "DIR|URL")]
    pub(crate) images: Option<PathBuf>,
    /// Directory of videos (searched recursively), or a bucket URL
    #[arg(long, value_name = "DIR|URL")]
    pub(crate) videos: Option<PathBuf>,
}

/// `rf run`.
#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// Input media.
    #[command(flatten)]
    pub(crate) source: MediaSource,
    /// Workflow to run (its ID in your workspace)
    #[arg(long, value_name = "ID")]
    pub(crate) workflow: String,
    /// Directory for the results (created if missing; holds the resume
    /// manifest), or a bucket: s3://BUCKET/PREFIX/, gs://..., az://...
    #[arg(long, value_name = "DIR|URL")]
    pub(crate) out: PathBuf,
    /// For a bucket --out: the local directory the results are downloaded
    /// into before their upload, and where the resume records live
    /// [default: $XDG_CACHE_HOME/rf/bucket-exports/<the URL, encoded>]
    #[arg(long, value_name = "DIR")]
    pub(crate) staging_dir: Option<PathBuf>,
    /// Staging batch ID [default: generated, and kept in the run manifest]
    #[arg(long, value_name = "ID")]
    pub(crate) batch_id: Option<String>,
    /// Job ID [default: generated, and kept in the run manifest]
    #[arg(long, value_name = "ID")]
    pub(crate) job_id: Option<String>,
    /// Upload mode for images: one request per image, tar shards, or chosen by size
    #[arg(long, value_enum, default_value_t = IngestModeArg::Auto)]
    pub(crate) mode: IngestModeArg,
    /// Most images per tar shard in bulk mode [default: 500]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=500))]
    pub(crate) shard_size: Option<u16>,
    /// Scan, check and plan, say what would happen, and change nothing
    /// (read-only API calls only)
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// How long to wait for the service to index every uploaded item
    /// [default: 600]
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) count_timeout: Option<u64>,
    /// After the export, write OUT/report.html (as `rf report OUT`), with
    /// the job's details saved for it
    #[arg(long)]
    pub(crate) report: bool,
    /// With a bucket URL: how long the presigned object URLs the service
    /// downloads stay valid, in seconds (60 to 604800) [default: 86400]
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(60..=604_800))]
    pub(crate) presign_expiry: Option<u64>,
    /// Job options.
    #[command(flatten)]
    pub(crate) job: JobOptions,
}

/// Options of a processing job, named as in the official client.
#[derive(Debug, Args, Default, Clone)]
#[command(next_help_heading = "Job options")]
pub(crate) struct JobOptions {
    /// JSON file with extra workflow parameters (an object)
    #[arg(long, value_name = "FILE")]
    pub(crate) workflow_params: Option<PathBuf>,
    /// Name of the workflow's image input
    #[arg(long, value_name = "NAME")]
    pub(crate) image_input_name: Option<String>,
    /// Keep the workflow's image outputs (with `rf run`, name them with
    /// --image-outputs-to-save)
    #[arg(long)]
    pub(crate) save_image_outputs: bool,
    /// Image outputs to keep (repeat or separate with commas)
    #[arg(long, value_name = "NAME", value_delimiter = ',', action = ArgAction::Append)]
    pub(crate) image_outputs_to_save: Vec<String>,
    /// Part of a multipart input batch to process
    #[arg(long, value_name = "PART")]
    pub(crate) part_name: Option<String>,
    /// Part of the input batch holding each image's metadata (images only)
    #[arg(long, value_name = "PART")]
    pub(crate) images_metadata_part_name: Option<String>,
    /// Pass metadata key KEY of each image as workflow input INPUT (repeat;
    /// images only)
    #[arg(long, value_name = "INPUT=KEY", value_parser = parse_metadata_mapping, action = ArgAction::Append)]
    pub(crate) metadata_mapping: Vec<(String, String)>,
    /// Machine type
    #[arg(long, value_enum, value_name = "TYPE")]
    pub(crate) machine_type: Option<MachineTypeArg>,
    /// Workers per machine (lower values avoid out-of-memory failures)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) workers_per_machine: Option<u32>,
    /// Compute budget of the job in seconds, summed over all machines
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) max_runtime_seconds: Option<u64>,
    /// Most tasks running at once
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) max_parallel_tasks: Option<u32>,
    /// Share of failed images (0.0-1.0) after which a shard is aborted (images only)
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    pub(crate) max_image_failure_rate: Option<f64>,
    /// Format of the aggregated results
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub(crate) aggregation_format: Option<AggregationFormatArg>,
    /// Frames per second to sample from videos (videos only)
    #[arg(long, value_name = "FPS", value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) max_video_fps: Option<u32>,
    /// URL that receives a webhook when the job ends
    #[arg(long, value_name = "URL")]
    pub(crate) notifications_url: Option<String>,
    /// Inference backend
    #[arg(long, value_enum, value_name = "BACKEND")]
    pub(crate) inference_backend: Option<InferenceBackendArg>,
    /// Human-readable job name
    #[arg(long, value_name = "NAME")]
    pub(crate) job_name: Option<String>,
}

/// Options that `rf job restart` may override.
#[derive(Debug, Args, Default, Clone)]
#[command(next_help_heading = "Overrides")]
pub(crate) struct RestartOverrides {
    /// Machine type
    #[arg(long, value_enum, value_name = "TYPE")]
    pub(crate) machine_type: Option<MachineTypeArg>,
    /// Workers per machine
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) workers_per_machine: Option<u32>,
    /// Compute budget in seconds
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) max_runtime_seconds: Option<u64>,
    /// Most tasks running at once
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) max_parallel_tasks: Option<u32>,
    /// Share of failed images (0.0-1.0) after which a shard is aborted
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    pub(crate) max_image_failure_rate: Option<f64>,
}

/// `--machine-type`.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub(crate) enum MachineTypeArg {
    /// CPU machines
    Cpu,
    /// GPU machines
    Gpu,
}

/// `--aggregation-format`.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub(crate) enum AggregationFormatArg {
    /// Comma-separated values
    Csv,
    /// JSON lines
    Jsonl,
}

/// `--inference-backend`.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub(crate) enum InferenceBackendArg {
    /// The inference-models backend
    InferenceModels,
    /// The previous inference backend
    OldInference,
}

/// `rf batch ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum BatchCommand {
    /// Upload a directory of images or videos, or a references file, into a batch
    ///
    /// Re-running the same command resumes: nothing is uploaded twice (the
    /// manifest lives under $XDG_CACHE_HOME/rf/ingest/, never in the input
    /// directory).
    #[command(
        after_help = "Examples:\n  rf batch ingest --images ./frames --batch-id frames-0601 --wait\n  rf batch ingest --videos ./clips --batch-id clips-0601\n  rf batch ingest --references refs.jsonl --batch-id remote-0601\n  rf batch ingest --images s3://my-bucket/frames/ --batch-id frames-0601 --wait\n  rf batch ingest --images 'gs://my-bucket/2024/**/*.jpg' --batch-id frames-2024\n  rf batch ingest --query tag:night --batch-id night-0601"
    )]
    Ingest(BatchIngestArgs),
    /// List batches
    List(ListArgs),
    /// Show one batch
    Show(BatchIdArg),
    /// Count the indexed items of a batch
    Count(BatchPartArgs),
    /// List the files of a batch
    #[command(
        after_help = "Examples:\n  rf batch files frames-0601 --limit 20\n  rf --json batch files frames-0601 | jq -r '.[].fileName'   # --json includes the signed download URLs"
    )]
    Files(BatchFilesArgs),
    /// List the parts of a multipart batch
    Parts(BatchIdArg),
    /// List the shards of a bulk-ingested batch with their status
    Shards(BatchIdArg),
    /// Download a batch (archives are extracted) into a directory
    ///
    /// Re-running skips what is already downloaded (the records live in
    /// DIR/.rf-state/).
    #[command(
        after_help = "Examples:\n  rf batch export job-k3v9x0a1b2c3-export-output --out results\n  rf batch export my-batch --out results --part part-1 --part part-2"
    )]
    Export(BatchExportArgs),
}

/// Input of `rf batch ingest`.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub(crate) struct IngestSource {
    /// Directory of images (searched recursively), or a bucket: s3://,
    /// gs://, az:// or azure:// BUCKET/PREFIX/, optionally with a glob
    /// (s3://b/p/**/*.jpg)
    #[arg(long, value_name = "DIR|URL")]
    pub(crate) images: Option<PathBuf>,
    /// Directory of videos (searched recursively), or a bucket URL as for
    /// --images
    #[arg(long, value_name = "DIR|URL")]
    pub(crate) videos: Option<PathBuf>,
    /// JSON-lines file of image references (`{"name": ..., "url": ...}` per line)
    #[arg(long, value_name = "FILE")]
    pub(crate) references: Option<PathBuf>,
    /// Images of the workspace's Asset Library that a RoboQL query selects
    /// (the service fills the batch afterwards; follow it with `rf batch
    /// count`)
    #[arg(long, value_name = "ROBOQL", conflicts_with_all = ["wait", "dry_run", "mode"])]
    pub(crate) query: Option<String>,
}

/// `rf batch ingest`.
#[derive(Debug, Args)]
pub(crate) struct BatchIngestArgs {
    /// What to upload.
    #[command(flatten)]
    pub(crate) source: IngestSource,
    /// Batch to upload into (created on first upload)
    #[arg(long, value_name = "ID")]
    pub(crate) batch_id: String,
    /// Upload mode for images: one request per image, tar shards, or chosen by size
    #[arg(long, value_enum, default_value_t = IngestModeArg::Auto)]
    pub(crate) mode: IngestModeArg,
    /// Wait until every item is indexed (count check)
    #[arg(long)]
    pub(crate) wait: bool,
    /// With --wait: how long to wait for every item to be indexed
    /// [default: 600]
    #[arg(long, value_name = "SECS", requires = "wait", value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) count_timeout: Option<u64>,
    /// Display name of the batch [default: the batch ID]
    #[arg(long, value_name = "NAME")]
    pub(crate) batch_name: Option<String>,
    /// URL that receives ingest webhooks (bulk mode only: single uploads get none)
    #[arg(long, value_name = "URL")]
    pub(crate) notifications_url: Option<String>,
    /// Scan, check and plan a directory ingest (or list a bucket), say what
    /// would happen, and change nothing (read-only API calls only)
    #[arg(long, conflicts_with = "references")]
    pub(crate) dry_run: bool,
    /// With a bucket URL: how long the presigned object URLs the service
    /// downloads stay valid, in seconds (60 to 604800) [default: 86400]
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(60..=604_800))]
    pub(crate) presign_expiry: Option<u64>,
}

/// `--mode`.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub(crate) enum IngestModeArg {
    /// Bulk shards for large directories, single uploads otherwise
    Auto,
    /// One request per image
    Single,
    /// Tar shards through signed URLs
    Bulk,
}

/// Paging options of listings.
#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// Show at most N entries
    #[arg(long, value_name = "N")]
    pub(crate) limit: Option<usize>,
}

/// `rf job list`.
#[derive(Debug, Args)]
pub(crate) struct JobListArgs {
    /// Show at most N entries
    #[arg(long, value_name = "N")]
    pub(crate) limit: Option<usize>,
    /// Only jobs whose name, workflow or status text matches (at most 160
    /// characters)
    #[arg(long, value_name = "TEXT", value_parser = parse_search)]
    pub(crate) search: Option<String>,
}

/// A job search: 1 to 160 characters.
fn parse_search(text: &str) -> Result<String, String> {
    match text.trim().chars().count() {
        0 => Err("the search is empty".into()),
        n if n > 160 => Err(format!("the search has {n} characters; at most 160")),
        _ => Ok(text.trim().to_owned()),
    }
}

/// A batch ID argument.
#[derive(Debug, Args)]
pub(crate) struct BatchIdArg {
    /// Batch ID
    #[arg(value_name = "BATCH_ID")]
    pub(crate) batch_id: String,
}

/// `rf batch count`.
#[derive(Debug, Args)]
pub(crate) struct BatchPartArgs {
    /// Batch ID
    #[arg(value_name = "BATCH_ID")]
    pub(crate) batch_id: String,
    /// Count only this part of a multipart batch
    #[arg(long, value_name = "PART")]
    pub(crate) part: Option<String>,
}

/// `rf batch files`.
#[derive(Debug, Args)]
pub(crate) struct BatchFilesArgs {
    /// Batch ID
    #[arg(value_name = "BATCH_ID")]
    pub(crate) batch_id: String,
    /// List only this part of a multipart batch
    #[arg(long, value_name = "PART")]
    pub(crate) part: Option<String>,
    /// Show at most N files
    #[arg(long, value_name = "N")]
    pub(crate) limit: Option<usize>,
}

/// `rf batch export`.
#[derive(Debug, Args)]
pub(crate) struct BatchExportArgs {
    /// Batch ID
    #[arg(value_name = "BATCH_ID")]
    pub(crate) batch_id: String,
    /// Directory to download into (created if missing), or a bucket:
    /// s3://BUCKET/PREFIX/, gs://..., az://...
    #[arg(long, value_name = "DIR|URL")]
    pub(crate) out: PathBuf,
    /// For a bucket --out: the local directory the results are downloaded
    /// into before their upload, and where the resume records live
    /// [default: $XDG_CACHE_HOME/rf/bucket-exports/<the URL, encoded>]
    #[arg(long, value_name = "DIR")]
    pub(crate) staging_dir: Option<PathBuf>,
    /// Export only these parts (repeatable) [default: all]
    #[arg(long, value_name = "PART", action = ArgAction::Append)]
    pub(crate) part: Vec<String>,
}

/// `rf job ...`.
// Parsed once per process: the size difference between variants is irrelevant.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub(crate) enum JobCommand {
    /// Start a job over a staged batch
    ///
    /// Prints the job ID. Starting a --job-id that already exists with the
    /// same definition starts nothing new; without --job-id, every call
    /// starts another job.
    #[command(
        after_help = "Examples:\n  JOB=$(rf job start --batch-id frames-0601 --workflow my-detector)\n  rf job wait \"$JOB\" && rf job export \"$JOB\" --out results\n  rf job start --batch-id clips-0601 --workflow my-video-workflow --videos --max-video-fps 1"
    )]
    Start(JobStartArgs),
    /// Compile a model with TensorRT for NVIDIA devices (a TRT compilation job)
    ///
    /// Prints the job ID; --wait follows it to its end. Starting a --job-id
    /// that already exists with the same definition starts nothing new.
    #[command(
        name = "trt-compile",
        after_help = "Examples:\n  rf job trt-compile --model-id my-project/3 --device nvidia-t4 --device nvidia-l4\n  rf job trt-compile --model-id my-project/3 --device nvidia-l40s --job-id trt-my-project-3 --wait"
    )]
    TrtCompile(TrtCompileArgs),
    /// Start a job over images of the workspace's Asset Library
    ///
    /// What `roboflow batch create` does: select images by ID, by RoboQL
    /// query or all of them. Running the same command again starts nothing
    /// new (the idempotency key is derived from the request). Prints the
    /// job ID; --wait follows the task that reports the job's start.
    #[command(
        after_help = "Examples:\n  rf job library --workflow defect-detector --query \"tag:night\" --machine-type gpu --wait\n  rf job library --workflow defect-detector --image-ids img-1,img-2\n  rf job library --workflow defect-detector --all --job-name whole-library"
    )]
    Library(LibraryJobArgs),
    /// Show a task of the workspace (an Asset Library job's start)
    ///
    /// With --wait, polls until it ends: exit 0 when it completed, 5 when
    /// it failed.
    #[command(after_help = "Examples:\n  rf job task task-1 --wait")]
    Task(TaskArgs),
    /// List jobs (--search keeps those whose name, workflow or status matches)
    List(JobListArgs),
    /// Show one job
    Show(JobIdArg),
    /// List the stages of a job
    Stages(JobIdArg),
    /// List the tasks of a job stage
    Tasks(JobTasksArgs),
    /// Print job logs
    #[command(
        after_help = "Examples:\n  rf job logs job-k3v9x0a1b2c3 --severity error\n  rf job logs job-k3v9x0a1b2c3 --follow"
    )]
    Logs(JobLogsArgs),
    /// Wait until a job ends, showing progress
    ///
    /// Exit code 0 when the job succeeded, 5 when it failed or was aborted.
    /// Ctrl-C stops watching; the job keeps running.
    #[command(
        after_help = "Examples:\n  rf job wait job-k3v9x0a1b2c3 && rf job export job-k3v9x0a1b2c3 --out results\n  rf --json job wait job-k3v9x0a1b2c3   # the final snapshot as JSON"
    )]
    Wait(JobIdArg),
    /// Abort a running job
    Abort(JobIdArg),
    /// Restart a failed or aborted job, optionally with new limits
    ///
    /// Sends only the overrides given. A restart whose answer is lost is
    /// neither reported as a failure nor sent twice: rf reads the job back.
    #[command(
        after_help = "Examples:\n  rf job restart job-k3v9x0a1b2c3\n  rf job restart job-k3v9x0a1b2c3 --workers-per-machine 1 --max-runtime-seconds 7200"
    )]
    Restart(JobRestartArgs),
    /// Download the results of a job's export stage into a directory
    ///
    /// Like `rf batch export` of the job's export output batch; re-running
    /// skips what is already downloaded.
    #[command(after_help = "Examples:\n  rf job export job-k3v9x0a1b2c3 --out results")]
    Export(JobExportArgs),
}

/// `rf job start`.
#[derive(Debug, Args)]
pub(crate) struct JobStartArgs {
    /// Staged batch to process
    #[arg(long, value_name = "ID")]
    pub(crate) batch_id: String,
    /// Workflow to run
    #[arg(long, value_name = "ID")]
    pub(crate) workflow: String,
    /// The batch holds videos (a video processing job)
    #[arg(long)]
    pub(crate) videos: bool,
    /// Job ID [default: generated]
    #[arg(long, value_name = "ID")]
    pub(crate) job_id: Option<String>,
    /// Job options.
    #[command(flatten)]
    pub(crate) job: JobOptions,
}

/// `rf job library`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("selection").required(true).args(["image_ids", "query", "all"])))]
pub(crate) struct LibraryJobArgs {
    /// Workflow to run
    #[arg(long, value_name = "ID")]
    pub(crate) workflow: String,
    /// Images by ID (repeat or separate with commas; at most 2048)
    #[arg(long, value_name = "ID", value_delimiter = ',', action = ArgAction::Append)]
    pub(crate) image_ids: Vec<String>,
    /// Images a RoboQL query selects
    #[arg(long, value_name = "ROBOQL")]
    pub(crate) query: Option<String>,
    /// Every image of the library
    #[arg(long)]
    pub(crate) all: bool,
    /// Machine type [default: cpu]
    #[arg(long, value_enum, value_name = "TYPE")]
    pub(crate) machine_type: Option<MachineTypeArg>,
    /// Human-readable job name
    #[arg(long, value_name = "NAME")]
    pub(crate) job_name: Option<String>,
    /// Idempotency key (8-128 of A-Z a-z 0-9 _ -) [default: derived from the request]
    #[arg(long, value_name = "KEY")]
    pub(crate) idempotency_key: Option<String>,
    /// Follow the task that reports the job's start until it ends
    #[arg(long)]
    pub(crate) wait: bool,
}

/// `rf job task`.
#[derive(Debug, Args)]
pub(crate) struct TaskArgs {
    /// Task ID
    #[arg(value_name = "TASK_ID")]
    pub(crate) task_id: String,
    /// Poll until the task ends
    #[arg(long)]
    pub(crate) wait: bool,
}

/// `rf job trt-compile`.
#[derive(Debug, Args)]
pub(crate) struct TrtCompileArgs {
    /// The model to compile, e.g. my-project/3
    #[arg(long, value_name = "MODEL")]
    pub(crate) model_id: String,
    /// A device to compile for (repeat for several; duplicates are sent once)
    #[arg(long = "device", value_enum, value_name = "DEVICE", required = true)]
    pub(crate) devices: Vec<DeviceArg>,
    /// Job ID [default: generated, trt-...]
    #[arg(long, value_name = "ID")]
    pub(crate) job_id: Option<String>,
    /// Human-readable job name
    #[arg(long, value_name = "NAME")]
    pub(crate) job_name: Option<String>,
    /// URL that receives a webhook when the job ends
    #[arg(long, value_name = "URL")]
    pub(crate) notifications_url: Option<String>,
    /// Follow the job until it ends (exit 0 when it succeeded, 5 when not)
    #[arg(long)]
    pub(crate) wait: bool,
}

/// `--device` of `rf job trt-compile`: every device the official client knows.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub(crate) enum DeviceArg {
    /// NVIDIA T4
    #[value(name = "nvidia-t4")]
    NvidiaT4,
    /// NVIDIA L4
    #[value(name = "nvidia-l4")]
    NvidiaL4,
    /// NVIDIA L40S
    #[value(name = "nvidia-l40s")]
    NvidiaL40s,
}

/// A job ID argument.
#[derive(Debug, Args)]
pub(crate) struct JobIdArg {
    /// Job ID
    #[arg(value_name = "JOB_ID")]
    pub(crate) job_id: String,
}

/// `rf job tasks`.
#[derive(Debug, Args)]
pub(crate) struct JobTasksArgs {
    /// Job ID
    #[arg(value_name = "JOB_ID")]
    pub(crate) job_id: String,
    /// Stage ID (see `rf job stages`)
    #[arg(value_name = "STAGE_ID")]
    pub(crate) stage_id: String,
}

/// `rf job logs`.
#[derive(Debug, Args)]
pub(crate) struct JobLogsArgs {
    /// Job ID
    #[arg(value_name = "JOB_ID")]
    pub(crate) job_id: String,
    /// Only logs of this severity
    #[arg(long, value_enum, value_name = "SEVERITY")]
    pub(crate) severity: Option<SeverityArg>,
    /// Keep printing new logs until the job ends
    #[arg(long, short = 'f')]
    pub(crate) follow: bool,
}

/// `--severity`.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub(crate) enum SeverityArg {
    /// Informational
    Info,
    /// Warnings
    Warning,
    /// Errors
    Error,
}

/// `rf job restart`.
#[derive(Debug, Args)]
pub(crate) struct JobRestartArgs {
    /// Job ID
    #[arg(value_name = "JOB_ID")]
    pub(crate) job_id: String,
    /// New limits.
    #[command(flatten)]
    pub(crate) overrides: RestartOverrides,
}

/// `rf job export`.
#[derive(Debug, Args)]
pub(crate) struct JobExportArgs {
    /// Job ID
    #[arg(value_name = "JOB_ID")]
    pub(crate) job_id: String,
    /// Directory to download into (created if missing), or a bucket:
    /// s3://BUCKET/PREFIX/, gs://..., az://...
    #[arg(long, value_name = "DIR|URL")]
    pub(crate) out: PathBuf,
    /// For a bucket --out: the local directory the results are downloaded
    /// into before their upload, and where the resume records live
    /// [default: $XDG_CACHE_HOME/rf/bucket-exports/<the URL, encoded>]
    #[arg(long, value_name = "DIR")]
    pub(crate) staging_dir: Option<PathBuf>,
}

/// `rf emulator ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum EmulatorCommand {
    /// Serve both APIs locally until Ctrl-C
    ///
    /// Point any client at it with API_BASE_URL and ROBOFLOW_API_KEY (both are
    /// printed on start). The official Python client works against it too.
    /// By default it serves the embedded emulator's data, so it shows what
    /// `rf run` did without a key, and several rf commands can use it at
    /// once. One emulator per data directory: while it runs, rf without a
    /// key is refused and told its address.
    #[command(
        after_help = "Examples:\n  rf emulator serve                          # prints API_BASE_URL=... and ROBOFLOW_API_KEY=...\n  rf emulator serve --addr 127.0.0.1:8700 --key dev-key=dev --data-dir ./emu-data\n  rf emulator serve --chaos-rate 0.2 --chaos-seed 42   # faults in a fifth of the requests\n  rf emulator serve --latency-ms 40 --bandwidth-mbps 200  # a WAN link"
    )]
    Serve(EmulatorServeArgs),
}

/// `rf emulator serve`.
#[derive(Debug, Args)]
pub(crate) struct EmulatorServeArgs {
    /// Address to listen on
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8700")]
    pub(crate) addr: std::net::SocketAddr,
    /// Directory for the emulator's state [default: the embedded emulator's cache directory]
    #[arg(long, value_name = "DIR")]
    pub(crate) data_dir: Option<PathBuf>,
    /// An API key the emulator accepts and the workspace it belongs to, as
    /// KEY=WORKSPACE (repeatable) [default: one generated key for the
    /// workspace `local`, printed on start]
    #[arg(long = "key", value_name = "KEY=WORKSPACE", value_parser = parse_key_workspace, action = ArgAction::Append)]
    pub(crate) keys: Vec<(String, String)>,
    /// Chaos mode: inject a fault into this share of requests, from 0.0 to
    /// 1.0 (0 = off); see docs/emulator.md
    #[arg(long, value_name = "RATE", default_value_t = 0.0, value_parser = parse_rate)]
    pub(crate) chaos_rate: f64,
    /// Seed of the fault decisions: the same seed and the same requests give
    /// the same faults [default: a random seed, printed on start]
    #[arg(long, value_name = "SEED")]
    pub(crate) chaos_seed: Option<u64>,
    /// Fault kinds to inject, comma-separated: throttle, error, drop-request,
    /// drop-response, delay [default: all]
    #[arg(long, value_name = "KINDS", value_delimiter = ',', value_parser = parse_chaos_kind)]
    pub(crate) chaos_kinds: Vec<rf_emulator::ChaosKind>,
    /// Real time a job spends on each item, in milliseconds (raise it to
    /// watch or interrupt jobs mid-run) [default: 20]
    #[arg(long, value_name = "MS")]
    pub(crate) item_delay_ms: Option<u64>,
    /// Pause between a shard upload and its indexing, in milliseconds
    /// [default: 500]
    #[arg(long, value_name = "MS")]
    pub(crate) index_delay_ms: Option<u64>,
    /// Network shaping: milliseconds added before each answer, like a round
    /// trip (API and signed URLs alike) [default: 0]
    #[arg(long, value_name = "MS")]
    pub(crate) latency_ms: Option<u64>,
    /// Most extra milliseconds drawn per answer on top of --latency-ms,
    /// seeded by --latency-seed [default: 0]
    #[arg(long, value_name = "MS")]
    pub(crate) latency_jitter_ms: Option<u64>,
    /// Seed of the latency jitter draws
    #[arg(long, value_name = "SEED", default_value_t = 0)]
    pub(crate) latency_seed: u64,
    /// Network shaping: megabits per second in each direction, one bucket
    /// shared by all connections (request bodies in, answer bodies out)
    /// [default: no cap]
    #[arg(long, value_name = "MBPS", value_parser = parse_mbps)]
    pub(crate) bandwidth_mbps: Option<f64>,
    /// Network shaping: connections open at once; more wait to be accepted
    /// [default: no cap]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) max_connections: Option<u32>,
    /// Service capacity: requests answered at once; one arriving while N
    /// are in the works gets 429 with Retry-After: 1, as from a loaded
    /// service [default: no cap]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) max_in_flight: Option<u32>,
    /// A host (name or IP address) webhooks may be sent to besides loopback
    /// (repeatable) [default: loopback only]
    #[arg(long = "allow-webhook-host", value_name = "HOST", action = ArgAction::Append)]
    pub(crate) allow_webhook_hosts: Vec<String>,
    /// An asset library: the images under DIR, tagged by their folders (and
    /// a sidecar FILE.json's "tags"), for Asset Library jobs and RoboQL
    /// ingests [default: none]
    #[arg(long, value_name = "DIR")]
    pub(crate) library: Option<std::path::PathBuf>,
}

/// `rf webhook ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum WebhookCommand {
    /// Print every webhook notification received as a JSON line on stdout
    ///
    /// Requests must carry `Authorization: Bearer <token>` when --token is
    /// given (401 otherwise). Bodies are checked against the documented
    /// staging and job notification shapes.
    #[command(
        after_help = "Examples:\n  rf webhook listen --addr 127.0.0.1:8787 --token rf_local > hooks.jsonl &\n  rf run --images samples/images --workflow image-properties --out out \\\n         --notifications-url http://127.0.0.1:8787/jobs\n(The emulator signs its webhooks with `Bearer rf_<workspace>`; the embedded one's workspace is `local`.)"
    )]
    Listen(WebhookListenArgs),
}

/// `rf webhook listen`.
#[derive(Debug, Args)]
pub(crate) struct WebhookListenArgs {
    /// Address to listen on
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8787")]
    pub(crate) addr: std::net::SocketAddr,
    /// Bearer token senders must present [env: RF_WEBHOOK_TOKEN]
    #[arg(long, value_name = "TOKEN")]
    pub(crate) token: Option<String>,
}

/// `rf completions`.
#[derive(Debug, Args)]
pub(crate) struct CompletionsArgs {
    /// Shell to generate completions for
    #[arg(value_enum)]
    pub(crate) shell: ShellArg,
}

/// Shells `rf completions` supports.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub(crate) enum ShellArg {
    /// Bash
    Bash,
    /// Zsh
    Zsh,
    /// Fish
    Fish,
}

fn parse_key_workspace(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((key, ws)) if !key.trim().is_empty() && !ws.trim().is_empty() => {
            Ok((key.trim().to_owned(), ws.trim().to_owned()))
        }
        _ => Err("expected KEY=WORKSPACE, e.g. --key my-key=my-workspace".to_owned()),
    }
}

fn parse_mbps(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!(
            "{s:?} is not a positive number of megabits per second"
        )),
    }
}

fn parse_chaos_kind(s: &str) -> Result<rf_emulator::ChaosKind, String> {
    s.parse()
        .map_err(|e: rf_emulator::EmulatorError| e.to_string())
}

fn parse_rate(s: &str) -> Result<f64, String> {
    let rate: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number: use a value from 0.0 to 1.0"))?;
    if (0.0..=1.0).contains(&rate) {
        Ok(rate)
    } else {
        Err(format!("{s} is out of range: use a value from 0.0 to 1.0"))
    }
}

/// `INPUT=KEY` of `--metadata-mapping`, split at the first `=` (a key may
/// hold `=`); both sides non-empty.
fn parse_metadata_mapping(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((input, key)) if !input.trim().is_empty() && !key.trim().is_empty() => {
            Ok((input.trim().to_owned(), key.trim().to_owned()))
        }
        _ => Err(format!(
            "{text:?} is not INPUT=KEY (a workflow input name, '=', a metadata key)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_tree_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_options_work_after_the_subcommand() {
        let cli = Cli::try_parse_from([
            "rf",
            "batch",
            "list",
            "--json",
            "--api-url",
            "http://x",
            "-vv",
        ])
        .unwrap();
        assert!(cli.global.json);
        assert_eq!(cli.global.verbose, 2);
        assert_eq!(cli.global.api_url.as_deref(), Some("http://x"));
    }

    #[test]
    fn run_needs_exactly_one_source() {
        let both = Cli::try_parse_from([
            "rf",
            "run",
            "--images",
            "a",
            "--videos",
            "b",
            "--workflow",
            "w",
            "--out",
            "o",
        ]);
        assert!(both.is_err());
        let none = Cli::try_parse_from(["rf", "run", "--workflow", "w", "--out", "o"]);
        assert!(none.is_err());
    }

    #[test]
    fn job_options_parse_like_the_official_client() {
        let cli = Cli::try_parse_from([
            "rf",
            "job",
            "start",
            "--batch-id",
            "b",
            "--workflow",
            "w",
            "--image-outputs-to-save",
            "a,b",
            "--image-outputs-to-save",
            "c",
            "--max-image-failure-rate",
            "0.25",
            "--machine-type",
            "gpu",
            "--inference-backend",
            "old-inference",
        ])
        .unwrap();
        let Command::Job(JobCommand::Start(start)) = cli.command else {
            panic!("wrong command");
        };
        assert_eq!(start.job.image_outputs_to_save, ["a", "b", "c"]);
        assert_eq!(start.job.max_image_failure_rate, Some(0.25));
        assert_eq!(start.job.machine_type, Some(MachineTypeArg::Gpu));
        assert_eq!(
            start.job.inference_backend,
            Some(InferenceBackendArg::OldInference)
        );
    }

    #[test]
    fn failure_rate_out_of_range_is_a_usage_error() {
        let err = Cli::try_parse_from([
            "rf",
            "job",
            "start",
            "--batch-id",
            "b",
            "--workflow",
            "w",
            "--max-image-failure-rate",
            "1.5",
        ])
        .unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("0.0 to 1.0"), "{err}");
    }

    #[test]
    fn emulator_keys_are_key_workspace_pairs() {
        let cli = Cli::try_parse_from([
            "rf",
            "emulator",
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--key",
            "k1=ws1",
            "--key",
            "k2=ws2",
        ])
        .unwrap();
        let Command::Emulator(EmulatorCommand::Serve(serve)) = cli.command else {
            panic!("wrong command");
        };
        assert_eq!(
            serve.keys,
            [
                ("k1".to_owned(), "ws1".to_owned()),
                ("k2".to_owned(), "ws2".to_owned())
            ]
        );
        let err = Cli::try_parse_from(["rf", "emulator", "serve", "--key", "nokey"]).unwrap_err();
        assert!(err.to_string().contains("KEY=WORKSPACE"));
    }

    /// The `rf ...` command lines in `text`: continuation lines joined,
    /// `$(...)` unwrapped, split at `&&`, `|` and `;`, cut at `#`, `>` and
    /// a trailing `&`, and split into words (quotes removed).
    fn command_lines(text: &str) -> Vec<Vec<String>> {
        let joined = text.replace("\\\n", " ");
        let mut out = Vec::new();
        for line in joined.lines() {
            let line = line.trim();
            let line = line.split(" #").next().unwrap_or("");
            let line = match line.find("$(rf ") {
                Some(i) => line[i + 2..].trim_end_matches(')'),
                None => line,
            };
            for part in line.split("&&").flat_map(|p| p.split(['|', ';'])) {
                let part = part.split('>').next().unwrap_or("").trim();
                let part = part.trim_end_matches('&').trim();
                if !part.starts_with("rf ") {
                    continue;
                }
                let words: Vec<String> = part
                    .split_whitespace()
                    .map(|w| w.trim_matches(|c| c == '"' || c == '\'').to_owned())
                    .collect();
                // Placeholders such as `rf job logs <job-id>` stand for a value.
                let words = words
                    .into_iter()
                    .map(|w| {
                        if w.starts_with('<') {
                            "x".to_owned()
                        } else {
                            w
                        }
                    })
                    .collect();
                out.push(words);
            }
        }
        out
    }

    #[test]
    fn command_lines_are_found_and_cleaned() {
        let found = command_lines(
            "  JOB=$(rf job start --batch-id b --workflow w)\n  rf job wait \"$JOB\" && rf job export \"$JOB\" --out r\n  rf run --images a \\\n   --out o > x.json   # note\n  cargo run -p x\n  rf x &",
        );
        let as_text: Vec<String> = found.iter().map(|w| w.join(" ")).collect();
        assert_eq!(
            as_text,
            [
                "rf job start --batch-id b --workflow w",
                "rf job wait $JOB",
                "rf job export $JOB --out r",
                "rf run --images a --out o",
                "rf x",
            ]
        );
    }

    /// Every example in the help texts parses.
    #[test]
    fn help_examples_parse() {
        fn walk(cmd: &mut clap::Command, found: &mut Vec<Vec<String>>, with_examples: &mut usize) {
            if let Some(after) = cmd.get_after_help() {
                let text = after.to_string();
                if text.contains("Examples:") {
                    *with_examples += 1;
                }
                found.extend(command_lines(&text));
            }
            for sub in cmd.get_subcommands_mut() {
                walk(sub, found, with_examples);
            }
        }
        let mut found = Vec::new();
        let mut with_examples = 0;
        walk(&mut Cli::command(), &mut found, &mut with_examples);
        assert!(
            with_examples >= 12,
            "{with_examples} commands with examples"
        );
        assert!(found.len() >= 25, "{found:?}");
        for words in &found {
            if let Err(e) = Cli::try_parse_from(words) {
                panic!("help example `{}` does not parse: {e}", words.join(" "));
            }
        }
    }

    /// Every `rf ...` line in the user documentation parses.
    #[test]
    fn documented_command_lines_parse() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut checked = 0;
        for doc in ["README.md", "docs/cli.md", "docs/emulator.md"] {
            let text = std::fs::read_to_string(root.join(doc)).expect("doc readable");
            // Only `sh` code blocks: the runnable examples (synopses are
            // plain blocks, prose mentions commands by name).
            let blocks = text.split("```").skip(1).step_by(2);
            for block in blocks.filter_map(|b| b.strip_prefix("sh\n")) {
                for words in command_lines(block) {
                    // Synopses (`[--limit N]`, `ID`) are not runnable.
                    if words.iter().any(|w| w.contains(['[', ']'])) {
                        continue;
                    }
                    if let Err(e) = Cli::try_parse_from(&words)
                        && !matches!(
                            e.kind(),
                            clap::error::ErrorKind::DisplayHelp
                                | clap::error::ErrorKind::DisplayVersion
                        )
                    {
                        panic!("{doc}: `{}` does not parse: {e}", words.join(" "));
                    }
                    checked += 1;
                }
            }
        }
        assert!(checked >= 30, "only {checked} command lines found");
    }

    #[test]
    fn quiet_and_verbose_conflict() {
        assert!(Cli::try_parse_from(["rf", "-q", "-v", "batch", "list"]).is_err());
    }
}
