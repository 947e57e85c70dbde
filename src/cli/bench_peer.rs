//! `rumpnet bench-peer` (hidden): one end of `rumpnet bench`'s `dpdk-memif` transport.
//!
//! DPDK's EAL starts once per process and a memif link joins two processes, so `rumpnet
//! bench` runs each end of a rumpnet ↔ rumpnet case over memif as a child process of its
//! own binary: this subcommand. The work is `rumpnet_bench::systems::dpdk`'s (the same
//! workload code as every other row); see there for the line protocol with the parent.

use clap::Args;

use rumpnet_bench::systems::dpdk::{peer_main, PeerArgs};

/// Options of `rumpnet bench-peer`, as `rumpnet bench` passes them.
#[derive(Debug, Clone, Args)]
pub struct BenchPeerArgs {
    #[command(flatten)]
    pub peer: PeerArgs,
}

/// Run one end; its result is printed as a `result {json}` line on the way.
pub fn run(args: &BenchPeerArgs) -> Result<(), String> {
    peer_main(&args.peer).map_err(|e| e.to_string())
}
