//! Diagnostics on stderr through `tracing`, at the level `-v`/`-q` ask for.
//!
//! Only rf's own crates log above `warn`: HTTP libraries at debug level can
//! print request lines, and those may carry the API key.

use std::io::Write;

use indicatif::MultiProgress;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// Installs the stderr subscriber. `rf_log` (the `RF_LOG` variable, an
/// `EnvFilter` directive) overrides the level chosen by the flags. Log lines
/// are printed above the progress bars of `bars`, never through them.
pub(crate) fn init(
    verbose: u8,
    quiet: bool,
    rf_log: Option<String>,
    bars: MultiProgress,
    ansi: bool,
) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        (false, _) => "trace",
    };
    let filter = match rf_log {
        Some(d) => EnvFilter::try_new(d).unwrap_or_else(|_| default_filter(level)),
        None => default_filter(level),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(AboveBars(bars))
        .with_ansi(ansi)
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

/// Makes one writer per log event; each writes its line above the bars.
struct AboveBars(MultiProgress);

impl<'a> MakeWriter<'a> for AboveBars {
    type Writer = EventWriter;

    fn make_writer(&'a self) -> EventWriter {
        EventWriter {
            bars: self.0.clone(),
            buffer: Vec::new(),
        }
    }
}

/// Collects one formatted event and prints it when dropped.
struct EventWriter {
    bars: MultiProgress,
    buffer: Vec<u8>,
}

impl Write for EventWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for EventWriter {
    fn drop(&mut self) {
        let buffer = std::mem::take(&mut self.buffer);
        if !buffer.is_empty() {
            let buffer = crate::secrets::scrub_bytes(&buffer);
            self.bars.suspend(|| {
                let _ = std::io::stderr().lock().write_all(&buffer);
            });
        }
    }
}
