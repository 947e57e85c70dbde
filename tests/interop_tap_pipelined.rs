//! Interop over TAP against the Linux kernel with `rumpnet serve --cores 0,1 --mode
//! pipelined`: one I/O thread polls the TAP and moves batches of frames through
//! lock-free rings to two shards (software RSS) and back. The same tests as
//! `interop_tap.rs` (in `tests/interop/mod.rs`).

/// Extra flags for every `rumpnet serve` of these tests.
const SERVE_EXTRA: &[&str] = &["--cores", "0,1", "--mode", "pipelined"];

#[path = "interop/mod.rs"]
mod interop;
