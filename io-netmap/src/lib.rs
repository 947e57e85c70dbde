//! rumpnet's netmap backend.
//!
//! netmap maps a NIC's rings (or a VALE switch port's, or a netmap pipe's) into the
//! process: frames are received by reading slots of a shared ring in place and sent by
//! writing buffer indices into slots, with one `ioctl` per batch. This crate puts such a
//! port behind [`rumpnet_stack::device::Device`], zero-copy in both directions: an RX
//! frame *is* the slot's buffer, a TX frame's buffer is swapped into the slot
//! (`NS_BUF_CHANGED`). See [`port`] for the ownership protocol and `docs/NETMAP.md` for
//! running it.
//!
//! The ring logic is separated from the kernel by the [`Kernel`] trait, so the tests run
//! the very same code against a simulated kernel over a memory block laid out exactly as
//! netmap lays out its mapping (this machine, like CI, has no netmap module).
//!
//! Without the `netmap` feature only the port-name parser ([`PortSpec`]) and the error
//! type are compiled.
#![deny(unsafe_code)]
#![warn(missing_debug_implementations)]

mod error;
pub mod name;

pub use error::NetmapError;
pub use name::{NameError, PortKind, PortSpec, RingMode};

#[cfg(feature = "netmap")]
#[allow(unsafe_code)]
pub mod abi;
#[cfg(feature = "netmap")]
#[allow(unsafe_code)]
pub mod port;
#[cfg(feature = "netmap")]
#[allow(unsafe_code)]
pub mod region;
#[cfg(feature = "netmap")]
#[allow(unsafe_code)]
mod sys;

#[cfg(all(test, feature = "netmap"))]
mod sharded_tests;
#[cfg(all(test, feature = "netmap"))]
#[allow(unsafe_code)]
mod sim;
#[cfg(all(test, feature = "netmap"))]
mod tests;

#[cfg(feature = "netmap")]
pub use port::{Kernel, NetmapFrame, NetmapPort, NetmapStats};
#[cfg(feature = "netmap")]
pub use sys::{open, open_at, FdKernel, NetmapDevice, OpenOptions, DEV_NETMAP};
