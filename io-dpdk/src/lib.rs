//! rumpnet's DPDK backend.
//!
//! It will drive NIC queues through the system DPDK (libdpdk, found with pkg-config, plus
//! a small C shim for DPDK's static-inline burst and mbuf functions), handing mbufs to the
//! stack zero-copy behind the [`rumpnet_stack::device::Device`] trait. DPDK virtual devices
//! (net_memif between two processes, net_af_packet on a veth, net_tap) make it testable
//! without a DPDK-capable NIC.
//!
//! Today the crate only links libdpdk behind the `dpdk` cargo feature and reports its
//! version; without the feature it is empty, so the workspace builds with cargo alone.
// Only the FFI calls into libdpdk opt back in, each with a `// SAFETY:` comment.
#![deny(unsafe_code)]
#![warn(missing_debug_implementations)]

#[cfg(feature = "dpdk")]
mod ffi {
    use core::ffi::c_char;

    #[link(name = "rte_eal")]
    extern "C" {
        /// `const char *rte_version(void)` from `rte_version.h`, exported by librte_eal.
        pub fn rte_version() -> *const c_char;
    }
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
            let s = unsafe { CStr::from_ptr(ffi::rte_version()) };
            s.to_string_lossy().into_owned()
        })
        .clone()
}

#[cfg(all(test, feature = "dpdk"))]
mod tests {
    use super::dpdk_version;

    #[test]
    fn version_comes_from_linked_libdpdk() {
        let v = dpdk_version();
        assert!(v.starts_with("DPDK "), "unexpected rte_version(): {v:?}");
        // The string the library reports agrees with what pkg-config found at build time.
        let pkg = env!("RUMPNET_DPDK_PKG_VERSION");
        assert!(
            v.contains(pkg),
            "rte_version() {v:?} does not mention pkg-config version {pkg}"
        );
        assert_eq!(v, dpdk_version(), "second call returns the cached string");
    }
}
