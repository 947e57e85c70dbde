//! Interop over TAP against the Linux kernel with `rumpnet serve --cores 0,1`: two
//! shards pinned to CPUs 0 and 1, each on its own queue of a multi-queue TAP, software
//! RSS passing frames to the shard that owns their flow. The same tests as
//! `interop_tap.rs` (in `tests/interop/mod.rs`).

/// Extra flags for every `rumpnet serve` of these tests.
const SERVE_EXTRA: &[&str] = &["--cores", "0,1"];

#[path = "interop/mod.rs"]
mod interop;
