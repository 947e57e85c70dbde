//! rumpnet-bench: the benchmarks of rumpnet.
//!
//! This crate will hold the workloads behind `rumpnet bench` (throughput, latency and
//! connection rate of rumpnet against the Linux kernel stack, smoltcp and the machine's
//! own limits), so the CLI and CI can run the same code. Today it holds only the criterion
//! micro-benchmarks under `benches/` (`cargo bench -p rumpnet-bench`); their figures, with
//! the command that produced them, are in `docs/BENCHMARKS.md`.
#![deny(unsafe_code)]
