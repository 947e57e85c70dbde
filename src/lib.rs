//! rumpnet: a userspace TCP/IP stack for kernel-bypass NICs, after the NetBSD rump
//! kernel stack that ran on DPDK and netmap.
//!
//! This is the user-facing crate. It re-exports the sans-I/O protocol stack
//! ([`stack`], also reachable module by module from the crate root) and the packet-I/O
//! backends ([`tap`], [`dpdk`], [`netmap`]); the `rumpnet` binary is its CLI. Backends
//! that need system libraries sit behind cargo features (`dpdk`, `netmap`), so a plain
//! `cargo build` needs nothing beyond cargo.
#![deny(unsafe_code)]
#![warn(missing_debug_implementations)]

/// The protocol stack: wire formats, the device trait, interfaces, sockets, the
/// in-memory link. No I/O, no clock, no threads, no `unsafe`.
pub use rumpnet_stack as stack;

pub use rumpnet_stack::{device, iface, link, rand, stats, tcp, time, udp, wire};

/// The per-core runtime: shards pinned to cores, lock-free rings, software RSS, the
/// on-shard application API.
pub use rumpnet_runtime as runtime;

/// `std::net` over the runtime's shards: `TcpListener`, `TcpStream`, `UdpSocket` with
/// std's names and semantics, usable from any thread.
pub use rumpnet_runtime::net;

pub mod capture;
pub mod servers;

/// The Linux TAP backend (the one that needs no special hardware).
pub use rumpnet_io_tap as tap;

/// The DPDK backend; links the system libdpdk only with the `dpdk` feature.
pub use rumpnet_io_dpdk as dpdk;

/// The netmap backend; the `netmap` feature enables it.
pub use rumpnet_io_netmap as netmap;
