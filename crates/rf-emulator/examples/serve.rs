//! Runs the emulator as a standalone server (the same thing `rf emulator
//! serve` does), for use without the `rf` binary:
//!
//! ```text
//! cargo run -p rf-emulator --example serve -- [--addr 127.0.0.1:9001] [--data-dir DIR] [--key KEY=WORKSPACE]...
//!     [--chaos-rate R --chaos-seed N --chaos-kinds K,...] [--item-delay-ms MS] [--index-delay-ms MS]
//! ```
//!
//! Prints `API_BASE_URL` and the key, logs each request (without query
//! strings), and stops gracefully on Ctrl-C.

// A command-line program: printing the address and key is its job.
#![allow(clippy::print_stdout)]

use std::net::SocketAddr;
use std::time::Duration;

use rf_emulator::{ChaosConfig, Emulator, EmulatorConfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let mut config = EmulatorConfig::default();
    let mut addr: SocketAddr = "127.0.0.1:9001".parse()?;
    let mut chaos = ChaosConfig::new(0, 0.0);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--addr" => addr = value()?.parse()?,
            "--data-dir" => config.data_dir = Some(value()?.into()),
            "--key" => {
                let (key, ws) = EmulatorConfig::parse_key_binding(&value()?)?;
                config.keys.push((key, ws));
            }
            "--chaos-rate" => chaos.rate = value()?.parse()?,
            "--chaos-seed" => chaos.seed = value()?.parse()?,
            "--chaos-kinds" => chaos.kinds = ChaosConfig::parse_kinds(&value()?)?,
            "--item-delay-ms" => {
                config.job_speed.item_delay = Duration::from_millis(value()?.parse()?)
            }
            "--index-delay-ms" => config.index_delay = Duration::from_millis(value()?.parse()?),
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    if chaos.rate > 0.0 {
        println!(
            "chaos mode: rate {}, seed {}, kinds {:?}",
            chaos.rate, chaos.seed, chaos.kinds
        );
        config.chaos = Some(chaos);
    }
    let generated = config.keys.is_empty();
    let emu = Emulator::start(config, addr).await?;
    println!("rf emulator listening on {}", emu.base_url());
    println!(
        "export API_BASE_URL={}",
        emu.base_url().as_str().trim_end_matches('/')
    );
    if generated {
        // a fresh key for this run only; printing it is the point
        println!("export ROBOFLOW_API_KEY={}", emu.api_key());
    }
    println!("workspace: {}", emu.workspace());
    emu.serve_until(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await;
    Ok(())
}
