//! Reliability and security tests of the emulator (issue 8): chaos mode over
//! real loopback HTTP, the stats endpoint, hostile input to every route
//! (property tests; `RF_FUZZ_CASES` raises the case count), workspace
//! isolation, signed-URL reuse and job-start idempotency.

mod chaos;
mod hostile;
mod idempotency;
mod isolation;
#[path = "../support/mod.rs"]
mod support;
mod util;
