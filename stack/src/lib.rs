//! rumpnet-stack: the sans-I/O TCP/IP protocol stack of rumpnet.
//!
//! The stack does no I/O, reads no clock and spawns no threads: it is handed a
//! [`device::Device`] and the current [`time::Instant`] and does the work that is due.
//! That is what lets the same code run on DPDK, netmap, TAP or an in-memory link, and
//! what makes every protocol test deterministic. Without the default `std` feature it
//! builds as `#![no_std]` + `alloc`, like a rump kernel that asks its host for almost
//! nothing: a clock, randomness and a way to move frames.
#![cfg_attr(not(feature = "std"), no_std)]
#![deny(unsafe_code)]
#![warn(missing_debug_implementations)]

extern crate alloc;

pub mod device;
pub mod iface;
pub mod rand;
pub mod socket;
mod stack;
pub mod stats;
pub mod tcp;
pub mod time;
pub mod udp;
pub mod wire;

#[cfg(feature = "std")]
pub mod link;

/// Hash maps of the stack: hashbrown keyed with a seed from the host's randomness, so
/// an attacker who picks addresses and ports cannot aim for collisions, and tests stay
/// deterministic.
pub(crate) type HashMap<K, V> = hashbrown::HashMap<K, V, foldhash::fast::FixedState>;

pub(crate) fn new_map<K, V>(seed: u64) -> HashMap<K, V> {
    hashbrown::HashMap::with_hasher(foldhash::fast::FixedState::with_seed(seed))
}

pub use stack::{ConfigError, PollResult, Stack, StackConfig};
