#![doc = include_str!("../README.md")]
#![warn(clippy::too_many_lines)]

pub mod atomic;
pub mod lock;
pub mod rng;

pub use atomic::{write_atomic, write_atomic_via};
pub use lock::{FileLock, LockError, LockHolder};
pub use rng::SplitMix64;
