//! `rf emulator serve`: the local emulator of both APIs as a server, until
//! Ctrl-C (or SIGTERM), optionally in chaos mode (seeded fault injection)
//! and with slowed-down jobs for tests.

use std::path::PathBuf;
use std::time::Duration;

use rf_emulator::{ChaosConfig, ChaosKind, Emulator, EmulatorConfig, EmulatorError, ShapingConfig};
use serde_json::json;

use super::session::{EMBEDDED_WORKSPACE, SERVE_OWNER};
use crate::args::EmulatorServeArgs;
use crate::config::Env;
use crate::error::{CliError, Result};
use crate::output::Output;

/// Serves until Ctrl-C, then shuts down cleanly (state is persisted).
pub(crate) async fn serve(args: &EmulatorServeArgs, env: &Env, output: &Output) -> Result<()> {
    let data_dir = data_dir(args, env)?;
    let config = config_for(args, data_dir.clone());
    let chaos = config.chaos.clone();
    let shaping = config.shaping.clone();
    let running = start(config, args.addr, &data_dir).await?;
    // Ctrl-C and SIGTERM stop it cleanly from here on, before any line
    // says where it listens.
    let stop = super::stop_signal(true);
    let served = Served {
        base_url: running
            .base_url()
            .to_string()
            .trim_end_matches('/')
            .to_owned(),
        workspace: running.workspace().to_string(),
        // The emulator's own key is printed only when it generated it: a
        // key the user passed with --key is theirs and already known.
        key_shown: args.keys.is_empty().then(|| running.api_key().to_string()),
        data_dir,
        chaos,
        shaping,
    };
    served.announce(args, output)?;
    let stopped = match stop {
        Ok(stop) => stop.await,
        Err(e) => Err(e),
    };
    output.note("stopping the emulator");
    running.shutdown().await;
    stopped.map_err(|e| CliError::local(format!("could not wait for ctrl-c: {e}")))
}

/// The data directory `--data-dir` names (default: the embedded one),
/// created.
fn data_dir(args: &EmulatorServeArgs, env: &Env) -> Result<PathBuf> {
    let data_dir = match &args.data_dir {
        Some(dir) => dir.clone(),
        None => env.emulator_data_dir()?,
    };
    std::fs::create_dir_all(&data_dir).map_err(|e| {
        CliError::local(format!(
            "cannot create the data directory {}: {e}; pass a writable --data-dir",
            data_dir.display()
        ))
    })?;
    Ok(data_dir)
}

/// Starts the emulator; a refusal says what to do.
async fn start(
    config: EmulatorConfig,
    addr: std::net::SocketAddr,
    data_dir: &std::path::Path,
) -> Result<rf_emulator::RunningEmulator> {
    Emulator::start(config, addr).await.map_err(|e| match e {
        EmulatorError::DataDirInUse { holder, .. } => CliError::local(format!(
            "the data directory {} is in use by {holder}; stop that one first, or pass another --data-dir",
            data_dir.display()
        )),
        EmulatorError::Bind { addr, source } => CliError::local(format!(
            "cannot listen on {addr}: {source}; choose another --addr"
        )),
        other => CliError::local(format!(
            "cannot start the emulator (data in {}): {other}",
            data_dir.display()
        )),
    })
}

/// What a started emulator serves, for the lines that say so.
struct Served {
    base_url: String,
    workspace: String,
    key_shown: Option<String>,
    data_dir: PathBuf,
    chaos: Option<ChaosConfig>,
    shaping: ShapingConfig,
}

impl Served {
    /// Prints where it listens (stdout: lines to `eval`, or one JSON line)
    /// and notes on stderr.
    fn announce(&self, args: &EmulatorServeArgs, output: &Output) -> Result<()> {
        let base_url = &self.base_url;
        if output.is_json() {
            output.json_line(&self.json())?;
        } else {
            output.stdout_line(&format!("API_BASE_URL={base_url}"))?;
            if let Some(key) = &self.key_shown {
                output.stdout_line(&format!("ROBOFLOW_API_KEY={key}"))?;
            }
        }
        output.note(&format!(
            "emulator listening on {base_url} (workspace {}, data in {}); Ctrl-C to stop",
            self.workspace,
            self.data_dir.display()
        ));
        if !args.addr.ip().is_loopback() {
            output.note(&format!(
                "warning: listening on {}, which is not loopback: anyone who can reach it can try keys; /_emulator/stats asks for an API key here",
                args.addr
            ));
        }
        if !args.keys.is_empty() {
            output.note("clients authenticate with the key(s) given by --key");
        }
        if args.data_dir.is_none() {
            output.note(
                "this is the embedded emulator's data: while it runs, rf without API_BASE_URL and ROBOFLOW_API_KEY is refused; set them as printed above to use this server",
            );
        }
        if let Some(c) = &self.chaos {
            let kinds: Vec<&str> = c.kinds.iter().map(|k| k.as_str()).collect();
            output.note(&format!(
                "chaos mode: a fault in {:.0}% of requests ({}), seed {} (pass --chaos-seed {} to replay); counts at {base_url}/_emulator/stats",
                c.rate * 100.0,
                kinds.join(","),
                c.seed,
                c.seed
            ));
        }
        if self.shaping.is_active() {
            output.note(&format!(
                "network shaping: {}; applied at {base_url}/_emulator/stats",
                shaping_summary(&self.shaping)
            ));
        }
        Ok(())
    }

    fn json(&self) -> serde_json::Value {
        let base_url = &self.base_url;
        json!({
            "baseUrl": base_url,
            "workspace": self.workspace,
            "apiKey": self.key_shown,
            "dataDir": self.data_dir,
            "statsUrl": format!("{base_url}/_emulator/stats"),
            "chaos": self.chaos.as_ref().map(|c| json!({
                "rate": c.rate,
                "seed": c.seed,
                "kinds": c.kinds.iter().map(|k| k.as_str()).collect::<Vec<_>>(),
            })),
            "shaping": self.shaping.is_active().then(|| json!({
                "latencyMs": self.shaping.latency.as_millis() as u64,
                "latencyJitterMs": self.shaping.latency_jitter.as_millis() as u64,
                "bandwidthMbps": self.shaping.bandwidth_mbps,
                "maxConnections": self.shaping.max_connections,
                "maxInFlight": self.shaping.max_in_flight,
            })),
        })
    }
}

/// One line on the shaping in force.
fn shaping_summary(s: &ShapingConfig) -> String {
    let mut parts = vec![format!(
        "{} ms latency (+0..{} ms jitter, seed {})",
        s.latency.as_millis(),
        s.latency_jitter.as_millis(),
        s.seed
    )];
    parts.push(match s.bandwidth_mbps {
        Some(m) => format!("{m} Mbit/s each way"),
        None => "no bandwidth cap".to_owned(),
    });
    if let Some(n) = s.max_connections {
        parts.push(format!("at most {n} connections"));
    }
    if let Some(n) = s.max_in_flight {
        parts.push(format!("429 beyond {n} requests in flight"));
    }
    parts.join(", ")
}

/// The emulator configuration `args` ask for, with state in `data_dir`.
fn config_for(args: &EmulatorServeArgs, data_dir: PathBuf) -> EmulatorConfig {
    let mut config = EmulatorConfig::default()
        .with_data_dir(data_dir)
        .with_owner(SERVE_OWNER);
    for (key, workspace) in &args.keys {
        config = config.with_key(key.clone(), workspace.clone());
    }
    if args.keys.is_empty() {
        // The embedded emulator's workspace: a server on its data directory
        // shows what `rf run` did without a key (its batches and jobs are
        // kept per workspace). The key is new each time and printed.
        config = config.with_generated_key(EMBEDDED_WORKSPACE);
    }
    if let Some(ms) = args.item_delay_ms {
        config.job_speed.item_delay = Duration::from_millis(ms);
    }
    if let Some(ms) = args.index_delay_ms {
        config.index_delay = Duration::from_millis(ms);
    }
    config.chaos = chaos_config(args);
    config.shaping = shaping_config(args);
    config.allowed_webhook_hosts = args.allow_webhook_hosts.clone();
    config.library = args.library.clone();
    config
}

/// The network shaping asked for (the default shapes nothing).
fn shaping_config(args: &EmulatorServeArgs) -> ShapingConfig {
    ShapingConfig {
        latency: Duration::from_millis(args.latency_ms.unwrap_or(0)),
        latency_jitter: Duration::from_millis(args.latency_jitter_ms.unwrap_or(0)),
        bandwidth_mbps: args.bandwidth_mbps,
        max_connections: args.max_connections.map(|n| n as usize),
        max_in_flight: args.max_in_flight.map(|n| n as usize),
        seed: args.latency_seed,
    }
}

/// The chaos settings asked for, or `None` when the rate is 0.
fn chaos_config(args: &EmulatorServeArgs) -> Option<ChaosConfig> {
    if args.chaos_rate <= 0.0 {
        return None;
    }
    let kinds = if args.chaos_kinds.is_empty() {
        ChaosKind::ALL.to_vec()
    } else {
        let mut kinds: Vec<ChaosKind> = Vec::new();
        for k in &args.chaos_kinds {
            if !kinds.contains(k) {
                kinds.push(*k);
            }
        }
        kinds
    };
    Some(ChaosConfig {
        seed: args.chaos_seed.unwrap_or_else(rand_seed),
        rate: args.chaos_rate,
        kinds,
    })
}

/// A seed from the clock and the process ID (printed, so a run can be replayed).
fn rand_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    nanos ^ (u64::from(std::process::id()) << 32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{Cli, Command, EmulatorCommand};
    use clap::Parser;

    fn serve_args(extra: &[&str]) -> EmulatorServeArgs {
        let mut argv = vec!["rf", "emulator", "serve"];
        argv.extend_from_slice(extra);
        match Cli::try_parse_from(argv).expect("valid arguments").command {
            Command::Emulator(EmulatorCommand::Serve(args)) => args,
            _ => unreachable!("parsed as emulator serve"),
        }
    }

    #[test]
    fn chaos_and_speed_flags_reach_the_config() {
        let plain = config_for(&serve_args(&[]), PathBuf::from("/d"));
        assert_eq!(plain.chaos, None);
        assert_eq!(plain.job_speed, EmulatorConfig::default().job_speed);
        assert_eq!(plain.index_delay, EmulatorConfig::default().index_delay);
        // Without --key: a new key for the embedded emulator's workspace, so
        // the server shows what embedded runs did in its data directory.
        assert_eq!(plain.keys.len(), 1);
        assert_eq!(plain.keys[0].1, EMBEDDED_WORKSPACE);
        assert!(plain.keys[0].0.starts_with("rfemu_"), "{:?}", plain.keys);
        assert_eq!(plain.owner.as_deref(), Some(SERVE_OWNER));
        let keyed = config_for(&serve_args(&["--key", "k=ws"]), PathBuf::from("/d"));
        assert_eq!(keyed.keys, [("k".to_owned(), "ws".to_owned())]);

        let c = config_for(
            &serve_args(&[
                "--chaos-rate",
                "0.25",
                "--chaos-seed",
                "9",
                "--chaos-kinds",
                "delay,throttle,delay",
                "--item-delay-ms",
                "300",
                "--index-delay-ms",
                "0",
            ]),
            PathBuf::from("/d"),
        );
        assert_eq!(
            c.chaos,
            Some(ChaosConfig {
                seed: 9,
                rate: 0.25,
                kinds: vec![ChaosKind::Delay, ChaosKind::Throttle],
            })
        );
        assert_eq!(c.job_speed.item_delay, Duration::from_millis(300));
        assert_eq!(c.index_delay, Duration::ZERO);
        assert_eq!(c.data_dir, Some(PathBuf::from("/d")));

        let all = config_for(&serve_args(&["--chaos-rate", "1"]), PathBuf::from("/d"));
        assert_eq!(all.chaos.expect("on").kinds, ChaosKind::ALL.to_vec());
        let off = config_for(
            &serve_args(&["--chaos-rate", "0", "--chaos-seed", "3"]),
            PathBuf::from("/d"),
        );
        assert_eq!(off.chaos, None, "rate 0 is off");
    }

    #[test]
    fn shaping_flags_reach_the_config() {
        let plain = config_for(&serve_args(&[]), PathBuf::from("/d"));
        assert!(!plain.shaping.is_active());
        let c = config_for(
            &serve_args(&[
                "--latency-ms",
                "40",
                "--latency-jitter-ms",
                "5",
                "--latency-seed",
                "3",
                "--bandwidth-mbps",
                "200",
                "--max-connections",
                "16",
                "--max-in-flight",
                "8",
                "--chaos-rate",
                "0.2",
            ]),
            PathBuf::from("/d"),
        );
        assert_eq!(
            c.shaping,
            ShapingConfig {
                latency: Duration::from_millis(40),
                latency_jitter: Duration::from_millis(5),
                bandwidth_mbps: Some(200.0),
                max_connections: Some(16),
                max_in_flight: Some(8),
                seed: 3,
            }
        );
        assert!(c.chaos.is_some(), "shaping and chaos combine");
        assert!(
            shaping_summary(&c.shaping).contains("200 Mbit/s"),
            "{}",
            shaping_summary(&c.shaping)
        );
        let bad = |argv: &[&str]| {
            let mut full = vec!["rf", "emulator", "serve"];
            full.extend_from_slice(argv);
            Cli::try_parse_from(full).is_err()
        };
        assert!(bad(&["--bandwidth-mbps", "0"]));
        assert!(bad(&["--bandwidth-mbps", "fast"]));
        assert!(bad(&["--max-connections", "0"]));
        assert!(bad(&["--max-in-flight", "0"]));
    }

    #[test]
    fn bad_chaos_flags_are_refused() {
        for bad in [
            &["--chaos-rate", "1.5"][..],
            &["--chaos-rate", "-0.1"],
            &["--chaos-rate", "x"],
            &["--chaos-kinds", "boom"],
            &["--chaos-seed", "-1"],
            &["--item-delay-ms", "-5"],
        ] {
            let mut argv = vec!["rf", "emulator", "serve"];
            argv.extend_from_slice(bad);
            assert!(Cli::try_parse_from(argv).is_err(), "{bad:?} accepted");
        }
    }
}
