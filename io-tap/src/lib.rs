//! rumpnet's Linux TAP backend.
//!
//! It moves Ethernet frames through `/dev/net/tun` opened with `IFF_TAP | IFF_NO_PI`
//! behind the [`rumpnet_stack::device::Device`] trait: [`TapDevice`] is one queue of a
//! TAP interface, with the virtio-net header for checksum and segmentation offloads
//! ([`vnet`]), one queue per shard with `IFF_MULTI_QUEUE`
//! ([`TapDevice::open_queues`]), and an idle wait on the file through mio
//! ([`TapDevice::wait`], [`IdlePolicy`]). It needs no special hardware, so it is the
//! backend the integration tests use, with the Linux kernel in a private network
//! namespace as the peer.
//!
//! [`ImpairedDevice`] puts the in-memory link's seeded loss, reordering, duplication and
//! corruption in front of it (`--impair loss=3,reorder=10,dup=1`, see [`ImpairSpec`]).
//!
//! ```no_run
//! use rumpnet_io_tap::{TapDevice, TapOptions};
//! use rumpnet_stack::iface::Port;
//!
//! let tap = TapDevice::open("rump0", &TapOptions::default())?;
//! tap.set_host_addr("10.0.0.1/24".parse().unwrap())?;
//! let port = Port::new(tap);
//! # Ok::<(), rumpnet_io_tap::TapError>(())
//! ```
#![deny(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_debug_implementations)]

mod error;
pub mod impair;
#[allow(unsafe_code)]
mod sys;
mod tap;
pub mod vnet;

pub use error::TapError;
pub use impair::{ImpairError, ImpairParseError, ImpairSpec, ImpairedDevice};
pub use tap::{
    IdlePolicy, TapDevice, TapOptions, TapQueue, TapStats, DEFAULT_BURST, DEFAULT_TUN_PATH,
    MAX_IP_PACKET,
};
