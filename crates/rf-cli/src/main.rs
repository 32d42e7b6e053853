//! The `rf` binary.
fn main() {}
