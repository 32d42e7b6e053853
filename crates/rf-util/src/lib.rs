//! Small shared helpers for the rf crates, with no knowledge of batches,
//! jobs or HTTP:
//!
//! - [`lock`]: an exclusive advisory lock on a file that records who holds
//!   it, so a second process is refused with the holder's name (rf-batch's
//!   state directory, the emulator's data directory);
//! - [`atomic`]: write a file so that readers see the old content or the new
//!   one, never a mix, and the new one survives a crash once written;
//! - [`rng`]: SplitMix64, the seeded generator behind retry jitter, chaos
//!   decisions and test data.
//!
//! It depends on serde only, so every crate of the workspace (rf-types
//! excepted, which needs none of this) may use it.
#![warn(clippy::too_many_lines)]

pub mod atomic;
pub mod lock;
pub mod rng;

pub use atomic::{write_atomic, write_atomic_via};
pub use lock::{FileLock, LockError, LockHolder};
pub use rng::SplitMix64;
