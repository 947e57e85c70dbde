//! rumpnet-bench: the benchmarks of rumpnet.
//!
//! The workloads behind `rumpnet bench` (`cargo run --release -- bench`), so the CLI and
//! CI run the same code:
//!
//! - [`workload`]: netperf-style `stream`, `rr` and `crr`, written once against a small
//!   socket trait, so every system runs the same application code;
//! - [`systems`]: the systems compared: rumpnet (two stacks over the in-memory link),
//!   Linux (kernel sockets over loopback or veth in network namespaces of our own) and
//!   smoltcp (its loopback device), and the `conns` workload (memory per idle
//!   connection) for each;
//! - [`limits`]: the machine's ceilings measured in the same run (memcpy bandwidth, a
//!   frame ping-pong through the in-memory link without a stack);
//! - [`suite`] plans and runs the cases, [`report`] prints the table, judges the
//!   issue's floors, writes the JSON and draws the SVG; [`machine`] records the facts.
//!
//! Also here:
//!
//! - [`tcp_loss`]: loss recovery under 1% random loss on a simulated 10 Gbit/s, 100 µs
//!   RTT path, measured in virtual time (`cargo run --release -p rumpnet-bench --bin
//!   tcp-loss`);
//! - [`tcp_pair`]: two stacks over the in-memory link with a connection between them,
//!   which that benchmark, `rumpnet bench` and the TCP path micro-benchmarks start from;
//! - the criterion micro-benchmarks under `benches/` (`cargo bench -p rumpnet-bench`;
//!   CI only builds them).
//!
//! The figures, with the commands that produced them, are in `docs/BENCHMARKS.md`.
//! `unsafe` is denied except in the few OS calls [`machine`] and
//! [`systems::linux`] make (clock, affinity, rlimit, poll, setns), each with its
//! `// SAFETY:` comment.
#![deny(unsafe_code)]

pub mod limits;
pub mod machine;
pub mod report;
pub mod suite;
pub mod systems;
pub mod tcp_loss;
pub mod tcp_pair;
pub mod workload;
