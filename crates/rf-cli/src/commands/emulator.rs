//! `rf emulator serve`: the local emulator of both APIs as a server, until
//! Ctrl-C.

use std::path::PathBuf;
use std::time::Duration;

use rf_emulator::{Emulator, EmulatorConfig};
use serde_json::json;

use crate::args::EmulatorServeArgs;
use crate::config::Env;
use crate::error::{CliError, Result};
use crate::output::Output;

/// Serves until Ctrl-C, then shuts down cleanly (state is persisted).
pub(crate) async fn serve(args: &EmulatorServeArgs, env: &Env, output: &Output) -> Result<()> {
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
    let config = config_for(args, data_dir.clone());
    let keys_given = !args.keys.is_empty();
    let running = Emulator::start(config, args.addr).await.map_err(|e| {
        CliError::local(format!(
            "cannot start the emulator on {}: {e}; choose another --addr",
            args.addr
        ))
    })?;
    let base_url = running.base_url().to_string();
    let base_url = base_url.trim_end_matches('/').to_owned();
    let workspace = running.workspace().to_string();
    // The emulator's own key is printed only when it generated it: a key the
    // user passed with --key is theirs and already known.
    let key_shown = if keys_given {
        None
    } else {
        Some(running.api_key().to_string())
    };
    if output.is_json() {
        output.json_line(&json!({
            "baseUrl": base_url,
            "workspace": workspace,
            "apiKey": key_shown,
            "dataDir": data_dir,
        }))?;
    } else {
        output.stdout_line(&format!("API_BASE_URL={base_url}"))?;
        if let Some(key) = &key_shown {
            output.stdout_line(&format!("ROBOFLOW_API_KEY={key}"))?;
        }
    }
    output.note(&format!(
        "emulator listening on {base_url} (workspace {workspace}, data in {}); Ctrl-C to stop",
        data_dir.display()
    ));
    if keys_given {
        output.note("clients authenticate with the key(s) given by --key");
    }
    let stopped = tokio::signal::ctrl_c().await;
    output.note("stopping the emulator");
    running.shutdown().await;
    stopped.map_err(|e| CliError::local(format!("could not wait for ctrl-c: {e}")))
}

/// The emulator configuration `args` ask for, with state in `data_dir`.
fn config_for(args: &EmulatorServeArgs, data_dir: PathBuf) -> EmulatorConfig {
    let mut config = EmulatorConfig::default().with_data_dir(data_dir);
    for (key, workspace) in &args.keys {
        config = config.with_key(key.clone(), workspace.clone());
    }
    if args.no_delays {
        config.index_delay = Duration::ZERO;
        config.job_speed.item_delay = Duration::ZERO;
        config.job_speed.simulated_seconds_per_item = 0.0;
    }
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(no_delays: bool) -> EmulatorServeArgs {
        EmulatorServeArgs {
            addr: "127.0.0.1:0".parse().expect("address"),
            data_dir: None,
            keys: vec![("k".into(), "ws".into())],
            no_delays,
        }
    }

    #[test]
    fn no_delays_removes_the_simulated_delays_only() {
        let realistic = config_for(&args(false), PathBuf::from("/d"));
        assert_eq!(realistic.index_delay, EmulatorConfig::default().index_delay);
        assert!(realistic.job_speed.item_delay > Duration::ZERO);
        let fast = config_for(&args(true), PathBuf::from("/d"));
        assert_eq!(fast.index_delay, Duration::ZERO);
        assert_eq!(fast.job_speed.item_delay, Duration::ZERO);
        assert_eq!(fast.job_speed.simulated_seconds_per_item, 0.0);
        assert_eq!(fast.keys, vec![("k".to_string(), "ws".to_string())]);
        assert_eq!(fast.data_dir, Some(PathBuf::from("/d")));
        assert_eq!(fast.job_speed.worker_pool, realistic.job_speed.worker_pool);
    }
}
