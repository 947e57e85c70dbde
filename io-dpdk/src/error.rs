//! Errors of the DPDK backend: every C return code becomes one of these once, with DPDK's
//! own text for it (`rte_strerror`) and what was being done.

use std::ffi::CStr;

use crate::sys;

/// Something DPDK refused, with its error text.
#[derive(Debug, thiserror::Error)]
pub enum DpdkError {
    /// `rte_eal_init` already ran in this process (DPDK cannot initialise twice, not even
    /// after `rte_eal_cleanup`).
    #[error(
        "the DPDK EAL is already initialised in this process (rte_eal_init runs once per process)"
    )]
    EalAlreadyInitialized,
    /// An EAL argument cannot be passed to C.
    #[error("EAL argument {arg:?} contains a NUL byte")]
    EalArgument { arg: String },
    /// The shim and this crate disagree on `struct rn_mbuf_layout` (rebuild both).
    #[error("io-dpdk's C shim reports a {shim}-byte mbuf layout table, the Rust side expects {rust}: rebuild")]
    ShimMismatch { shim: u32, rust: u32 },
    /// `rte_eal_init` failed.
    #[error("rte_eal_init failed: {text} (rte_errno {code}); EAL arguments: {args}")]
    EalInit {
        code: i32,
        text: String,
        args: String,
    },
    /// A mempool could not be made.
    #[error("mempool {name:?} ({n} mbufs, cache {cache}, data room {data_room} B): {text} (rte_errno {code})")]
    Mempool {
        name: String,
        n: u32,
        cache: u32,
        data_room: u16,
        code: i32,
        text: String,
    },
    /// A mempool name DPDK would reject.
    #[error("mempool name {name:?}: 1 to 24 characters, no NUL")]
    MempoolName { name: String },
    /// No port has this name.
    #[error("no DPDK port named {name:?} ({text}); ports: {known}")]
    NoSuchPortName {
        name: String,
        text: String,
        known: String,
    },
    /// No port has this id.
    #[error("no DPDK port {port}; ports: {known} (is the vdev or PCI device given to the EAL?)")]
    NoSuchPort { port: u16, known: String },
    /// A port call failed.
    #[error("port {port} ({driver}): {call} failed: {text} ({code})")]
    PortCall {
        port: u16,
        driver: String,
        call: &'static str,
        code: i32,
        text: String,
    },
    /// The port cannot do what was asked (too many queues, MTU too large, ...).
    #[error("port {port} ({driver}): {what}")]
    PortLimit {
        port: u16,
        driver: String,
        what: String,
    },
    /// The link did not come up in time.
    #[error("port {port} ({driver}): link still down after {waited_ms} ms (is the peer running and connected?)")]
    LinkDown {
        port: u16,
        driver: String,
        waited_ms: u64,
    },
    /// Each queue is handed out once: it is owned by one core.
    #[error("port {port}: queue {queue} {why}")]
    Queue {
        port: u16,
        queue: u16,
        why: &'static str,
    },
    /// A pool whose get or put is single-threaded cannot feed another thread's
    /// allocator (see [`Mempool::tx_allocator`](crate::Mempool::tx_allocator)).
    #[error("mempool {name:?} uses ops {ops:?}{flags}: not safe to take mbufs from several threads at once (give a pool with the default \"ring_mp_mc\" ops)")]
    PoolNotThreadSafe {
        name: String,
        ops: String,
        flags: &'static str,
    },
}

/// DPDK's text for an error code (`rte_strerror`; it knows DPDK's own codes beyond errno).
pub fn strerror(code: i32) -> String {
    let code = code.abs();
    // SAFETY: rte_strerror accepts any int and returns a NUL-terminated string, either a
    // static one for DPDK's own codes or libc's strerror text held in a per-thread
    // buffer; we copy it out at once, before anything on this thread can reuse it.
    #[allow(unsafe_code)]
    let s = unsafe { CStr::from_ptr(sys::rte_strerror(code)) };
    s.to_string_lossy().into_owned()
}

/// The current thread's `rte_errno`.
pub(crate) fn rte_errno() -> i32 {
    // SAFETY: rn_errno only reads the calling thread's (thread-local) rte_errno.
    #[allow(unsafe_code)]
    unsafe {
        sys::rn_errno()
    }
}
