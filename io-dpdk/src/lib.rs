//! rumpnet's DPDK backend.
//!
//! It drives NIC queues through the system DPDK (libdpdk, found with pkg-config) and hands
//! mbufs to the stack zero-copy behind the [`rumpnet_stack::device::Device`] trait: the
//! stack parses a received mbuf in place and prepends headers into a transmit mbuf's
//! headroom. DPDK virtual devices (net_memif between two processes, net_af_packet or
//! net_af_xdp on a veth, net_tap, net_ring, net_null) make it testable without a
//! DPDK-capable NIC.
//!
//! Two layers:
//! - [`sys`]: the raw FFI. DPDK's fast path is `static inline` in its headers, so a small
//!   C shim (`shim/shim.c`, compiled by build.rs with `pkg-config --cflags libdpdk`)
//!   exports wrappers, called once per burst; it also exports the mbuf field offsets
//!   (`offsetof`), so no DPDK struct is mirrored by hand here.
//! - The safe layer: [`Eal`] (started once per process from arguments), [`Mempool`],
//!   [`PortBuilder`] → [`Port`] (link, statistics), and per queue an [`RxQueue`] /
//!   [`TxQueue`] pair ([`QueuePair`], the stack's `Device`) owned by one core, moving
//!   [`Mbuf`]s whose `Drop` returns them to their pool.
//!
//! Without the `dpdk` cargo feature the crate is empty, so the workspace builds with
//! cargo alone.
// Only the FFI calls into libdpdk opt back in, each with a `// SAFETY:` comment.
#![deny(unsafe_code)]
#![warn(missing_debug_implementations)]

#[cfg(feature = "dpdk")]
mod eal;
#[cfg(feature = "dpdk")]
mod error;
#[cfg(feature = "dpdk")]
mod mbuf;
#[cfg(feature = "dpdk")]
mod mempool;
#[cfg(feature = "dpdk")]
mod port;
#[cfg(feature = "dpdk")]
pub mod sys;

#[cfg(feature = "dpdk")]
pub use eal::Eal;
#[cfg(feature = "dpdk")]
pub use error::{strerror, DpdkError};
#[cfg(feature = "dpdk")]
pub use mbuf::Mbuf;
#[cfg(feature = "dpdk")]
pub use mempool::{MbufAllocator, Mempool, ALLOC_BATCH};
#[cfg(feature = "dpdk")]
pub use port::{
    Link, Port, PortBuilder, PortRef, PortStats, QueuePair, RxQueue, TxQueue, MAX_BURST,
};

/// Headroom DPDK leaves in front of a fresh mbuf's data (`RTE_PKTMBUF_HEADROOM`).
#[cfg(feature = "dpdk")]
pub fn mbuf_headroom() -> usize {
    mbuf::layout().headroom as usize
}

/// The version string of the libdpdk this crate is linked against, such as
/// `"DPDK 22.11.11"`. Needs no EAL initialisation.
#[cfg(feature = "dpdk")]
pub fn dpdk_version() -> String {
    use std::ffi::CStr;
    use std::sync::OnceLock;

    // rte_version() fills a static buffer on its first call without a lock, so two
    // first calls racing would be a data race in C; the OnceLock makes ours happen once.
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION
        .get_or_init(|| {
            // SAFETY: rte_version takes no arguments and has no preconditions (it does
            // not need rte_eal_init). It returns a pointer to a NUL-terminated string in
            // a static buffer of librte_eal that lives as long as the process and is
            // never rewritten after the first call; we copy it out at once. The OnceLock
            // guarantees this crate calls it only once, so it cannot race with itself.
            #[allow(unsafe_code)]
            let s = unsafe { CStr::from_ptr(sys::rte_version()) };
            s.to_string_lossy().into_owned()
        })
        .clone()
}

#[cfg(all(test, feature = "dpdk"))]
mod tests;
