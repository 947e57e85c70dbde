//! The subcommands of the `rumpnet` binary, one module each.

pub mod bench;
#[cfg(feature = "dpdk")]
pub mod bench_peer;
pub mod config;
pub mod connect;
#[cfg(feature = "dpdk")]
pub mod dpdk;
#[cfg(feature = "netmap")]
pub mod netmap;
pub mod serve;
pub mod sim;
