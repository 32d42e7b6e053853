//! Integration tests of the emulator, one module per area, in one test
//! binary. Most run over real HTTP on loopback; every wait polls with a
//! deadline. The API tests (`auth` to `conformance`) use the answer
//! shortcuts of [`support::answers`]; the reliability tests (`chaos`,
//! `fuzz`, `idempotency`, `isolation`: chaos mode, the stats endpoint,
//! hostile input to every route as property tests with `RF_FUZZ_CASES`
//! raising the case count, workspace isolation, signed-URL reuse and
//! job-start idempotency) those of [`support::outcome`].

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::StatusCode;
use rf_emulator::{Emulator, EmulatorConfig};
use serde_json::{Value, json};

mod support;
use support::answers::{Receiver, file_server, image_job};
use support::{DEADLINE, png, start, start_with, tar_of};

mod auth;
mod conformance;
mod crash;
mod hostile;
mod http2;
mod jobs;
mod library;
mod limits;
mod pagination;
mod persistence;
mod prefix;
mod properties;
mod secrets;
mod signed_urls;
mod staging;
mod webhooks;

mod chaos;
mod fuzz;
mod idempotency;
mod isolation;
mod shaping;
