//! rumpnet-runtime: the stack on many cores.
//!
//! A runtime runs `N` shards, each an independent [`Stack`](rumpnet_stack::Stack) with its
//! own flows, timers and buffers on its own pinned thread; nothing on the data path is
//! shared between them. A symmetric Toeplitz hash of the 4-tuple ([`rss`]) decides which
//! shard owns a flow, so both of its directions are processed by one shard, and active
//! opens pick a source port that hashes back to the opening shard.
//!
//! Frames reach the shards in one of two [`Mode`]s with one code path:
//!
//! - *run-to-completion*: each shard polls its own backend queue (hardware RSS) and runs
//!   its stack inline; what arrives on the wrong queue (ARP, which every shard needs, or
//!   a flow the NIC put elsewhere) is passed to its shard through a ring;
//! - *pipelined*: I/O threads poll the backend and move batches through lock-free rings
//!   ([`ring`]) to the shards and back, steering by software RSS ([`steer`]).
//!
//! The application runs inside each shard's loop ([`ShardApp`]), called with batches of
//! socket events, and reads, writes, accepts and connects on its own shard without
//! crossing threads. Threads are placed from the machine's topology ([`topology`]) and
//! pinned; an idle shard spins, then sleeps until a timer or a ring wakes it
//! ([`IdlePolicy`]).
//!
//! Backends whose frames are [`HeapFrame`](rumpnet_stack::device::HeapFrame)s (the
//! in-memory link, TAP) plug in directly.

pub mod io;
pub mod memnic;
pub mod net;
pub mod ring;
pub mod rss;
mod runtime;
pub mod shard;
pub mod steer;
pub mod topology;

pub use io::IoStats;
pub use runtime::{Mode, Queue, RunReport, Runtime, RuntimeConfig, RuntimeError, RuntimeStats};
pub use shard::{IdlePolicy, ShardApp, ShardCtx, ShardStats};
