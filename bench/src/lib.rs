//! rumpnet-bench: the benchmarks of rumpnet.
//!
//! This crate will hold the workloads behind `rumpnet bench` (throughput, latency and
//! connection rate of rumpnet against the Linux kernel stack, smoltcp and the machine's
//! own limits), so the CLI and CI can run the same code. Today it holds:
//!
//! - [`tcp_loss`]: loss recovery under 1% random loss on a simulated 10 Gbit/s, 100 µs
//!   RTT path, measured in virtual time (`cargo run --release -p rumpnet-bench --bin
//!   tcp-loss`);
//! - [`tcp_pair`]: two stacks over the in-memory link with a connection between them,
//!   which that benchmark and the TCP path micro-benchmarks start from;
//! - the criterion micro-benchmarks under `benches/` (`cargo bench -p rumpnet-bench`).
//!
//! Their figures, with the command that produced them, are in `docs/BENCHMARKS.md`.
#![deny(unsafe_code)]

pub mod tcp_loss;
pub mod tcp_pair;
