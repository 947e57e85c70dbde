//! rumpnet's Linux TAP backend.
//!
//! It will move Ethernet frames through `/dev/net/tun` opened with `IFF_TAP` (with the
//! virtio-net header for checksum/segmentation offloads, and one queue per shard with
//! `IFF_MULTI_QUEUE`) behind the [`rumpnet_stack::device::Device`] trait. It needs no
//! special hardware, so it is the backend the integration tests use, with the Linux kernel
//! in a private network namespace as the peer.
//!
//! The crate is an empty shell until the TAP issue lands.
#![deny(unsafe_code)]
#![warn(missing_debug_implementations)]
