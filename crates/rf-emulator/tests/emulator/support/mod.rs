//! What the emulator's tests share: a started emulator with a client
//! ([`Env`]), two sets of request shortcuts on it ([`answers`]: status and
//! JSON; [`outcome`]: also dropped connections and cut bodies, for the
//! reliability tests), the parsing of a signed-URL answer, and fixtures (a
//! decodable PNG, a tar of named members).

pub(crate) mod answers;
pub(crate) mod outcome;

use std::collections::BTreeMap;
use std::time::Duration;

use rf_emulator::{Emulator, EmulatorConfig, RunningEmulator};
use serde_json::Value;

/// How long any poll waits before the test fails.
pub(crate) const DEADLINE: Duration = Duration::from_secs(15);

/// A started emulator plus a client.
pub(crate) struct Env {
    pub(crate) emu: RunningEmulator,
    pub(crate) http: reqwest::Client,
}

pub(crate) async fn start_with(config: EmulatorConfig) -> Env {
    let emu = Emulator::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    Env { emu, http }
}

pub(crate) async fn start() -> Env {
    start_with(EmulatorConfig::for_tests()).await
}

impl Env {
    pub(crate) fn base(&self) -> String {
        self.emu.base_url().to_string()
    }
    pub(crate) fn ds(&self, path: &str) -> String {
        format!("{}data-staging/v1/external/test-ws/{path}", self.base())
    }
    pub(crate) fn bp(&self, path: &str) -> String {
        format!("{}batch-processing/v1/external/test-ws/{path}", self.base())
    }
}

/// The upload URL and extension headers of a signed-URL answer body.
pub(crate) fn signed_url_details(body: &Value) -> (String, BTreeMap<String, String>) {
    let d = &body["signedURLDetails"];
    let headers = d["extensionHeaders"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect();
    (d["uploadURL"].as_str().unwrap().to_string(), headers)
}

/// A real (decodable) RGB PNG; `seed` makes the content distinct.
pub(crate) fn png(w: u32, h: u32, seed: u8) -> Vec<u8> {
    let mut raw = Vec::new();
    for y in 0..h {
        for x in 0..w {
            raw.extend_from_slice(&[seed, (x % 256) as u8, (y % 256) as u8]);
        }
    }
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, w, h);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().unwrap();
    writer.write_image_data(&raw).unwrap();
    writer.finish().unwrap();
    out
}

/// A tar of `(name, bytes)` members.
pub(crate) fn tar_of<N: AsRef<str>>(members: &[(N, Vec<u8>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in members {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name.as_ref(), &data[..]).unwrap();
    }
    b.into_inner().unwrap()
}
