//! rumpnet's netmap backend.
//!
//! It will exchange frames with a NIC (or a VALE port) through netmap's shared-memory
//! rings (via `netmap_sys`), one ring pair per shard, behind the
//! [`rumpnet_stack::device::Device`] trait. Its ring protocol is to be tested against an
//! in-memory netmap layout, and on real NICs where the netmap module is loaded.
//!
//! The crate is an empty shell until the netmap issue lands; the `netmap` feature
//! compiles but links nothing yet.
#![deny(unsafe_code)]
#![warn(missing_debug_implementations)]
