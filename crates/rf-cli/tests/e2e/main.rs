//! End-to-end tests of the `rf` binary: it is run as a child process, against
//! the emulator over real HTTP on loopback, and its stdout, stderr, exit codes
//! and written files are checked. One harness, one module per area.

mod emu;
mod util;

mod archives;
mod basics;
mod batch;
mod bucket;
mod buckets;
mod dry_run;
mod emulator;
mod faults;
mod job;
mod json_style;
mod library;
mod listings;
mod messages;
mod recovery;
mod report;
mod roboflow_login;
mod run;
mod secrets;
mod shared_data;
mod terminal;
mod webhook;
mod workspace_cache;
