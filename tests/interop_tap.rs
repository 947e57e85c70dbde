//! Interop over TAP against the Linux kernel, `rumpnet serve` on one thread.
//! The tests are in `tests/interop/mod.rs`; `interop_tap_sharded.rs` runs them again
//! with two shards on a multi-queue TAP.

/// Extra flags for every `rumpnet serve` of these tests.
const SERVE_EXTRA: &[&str] = &[];

#[path = "interop/mod.rs"]
mod interop;
