//! Diagnostics on stderr through `tracing`, at the level `-v`/`-q` ask for.
//!
//! Only rf's own crates log above `warn`: HTTP libraries at debug level can
//! print request lines, and those may carry the API key.

use tracing_subscriber::EnvFilter;

/// Installs the stderr subscriber. `RF_LOG` (an `EnvFilter` directive)
/// overrides the level chosen by the flags.
pub(crate) fn init(verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        (false, _) => "trace",
    };
    let directives = std::env::var("RF_LOG")
        .ok()
        .filter(|s| !s.trim().is_empty());
    let filter = match directives {
        Some(d) => EnvFilter::try_new(d).unwrap_or_else(|_| default_filter(level)),
        None => default_filter(level),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(verbose >= 2)
        .without_time()
        .try_init();
}

fn default_filter(level: &str) -> EnvFilter {
    let quiet_level = if level == "error" { "error" } else { "warn" };
    let spec = format!(
        "{quiet_level},rf={level},rf_cli={level},rf_batch={level},rf_transport={level},rf_emulator={quiet_level}"
    );
    EnvFilter::try_new(spec).unwrap_or_else(|_| EnvFilter::new("warn"))
}
