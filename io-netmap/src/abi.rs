//! The netmap ABI this backend speaks: `netmap_sys`'s structures, checked here field by
//! field against `net/netmap.h` (LP64).
//!
//! `netmap_sys` 0.1.4 says `NETMAP_API = 11`. The shared-memory layout (`netmap_if`,
//! `netmap_ring`, `netmap_slot`) has not changed from API 11 to today's API 14 except
//! for names given to spare fields (`ni_spare1[0..2]` became `ni_host_tx_rings` /
//! `ni_host_rx_rings`; the ring's padding before `sem` gained `offset_mask`/`buf_align`),
//! so its structs are used as they are.
//!
//! Registration uses netmap_sys's legacy `struct nmreq` through `NIOCREGIF`, with
//! `nr_version = 14`, on purpose: API 14's own request, `nmreq_register` behind
//! `NIOCCTRL`, grew from 48 to 56 bytes *within* API 14 when host-ring counts were added
//! (netmap 2020, FreeBSD 13), and the kernel copies it by its own `sizeof`, so one layout
//! cannot be right for both module generations. Every API 11..14 kernel accepts the
//! legacy request (API 14 translates it in `netmap_legacy.c`), and its 60-byte layout
//! never changed. Its limits: port names under 16 bytes and a region under 4 GiB.

use core::mem::{offset_of, size_of};

pub use netmap_sys::netmap::{
    netmap_if, netmap_ring, netmap_slot, nmreq, NIOCREGIF, NIOCRXSYNC, NIOCTXSYNC, NS_BUF_CHANGED,
    NS_MOREFRAG,
};

/// The API version this backend puts in `nr_version` (accepted by API 11..14 kernels).
pub const NETMAP_API: u32 = 14;
/// `NR_EXCLUSIVE`: no other file descriptor may bind the same rings.
pub const NR_EXCLUSIVE: u32 = 0x800;
/// Buffer indices 0 and 1 are reserved by the kernel (never valid in a slot).
pub const FIRST_VALID_BUF: u32 = 2;
/// The legacy request's name field: `IFNAMSIZ`, with the NUL.
pub const LEGACY_NAMSIZ: usize = 16;

/// Size of the fixed part of `struct netmap_ring`; the slots start here.
pub const RING_HEADER: usize = size_of::<netmap_ring>();

// The layout checks: the offsets are those of net/netmap.h on LP64 (amd64, arm64), where
// netmap runs. A netmap_sys release that moved a field would stop the build here.
const _: () = {
    assert!(size_of::<netmap_slot>() == 16);
    assert!(offset_of!(netmap_slot, buf_idx) == 0);
    assert!(offset_of!(netmap_slot, len) == 4);
    assert!(offset_of!(netmap_slot, flags) == 6);
    assert!(offset_of!(netmap_slot, ptr) == 8);

    assert!(offset_of!(netmap_ring, buf_ofs) == 0);
    assert!(offset_of!(netmap_ring, num_slots) == 8);
    assert!(offset_of!(netmap_ring, nr_buf_size) == 12);
    assert!(offset_of!(netmap_ring, ringid) == 16);
    assert!(offset_of!(netmap_ring, dir) == 18);
    assert!(offset_of!(netmap_ring, head) == 20);
    assert!(offset_of!(netmap_ring, cur) == 24);
    assert!(offset_of!(netmap_ring, tail) == 28);
    assert!(offset_of!(netmap_ring, flags) == 32);
    assert!(offset_of!(netmap_ring, ts) == 40);
    // `sem` is __aligned__(NM_CACHE_ALIGN = 128) in C; netmap_sys pads to the same place.
    assert!(offset_of!(netmap_ring, sem) == 128);
    assert!(offset_of!(netmap_ring, slot) == 256);
    assert!(RING_HEADER == 256);

    assert!(offset_of!(netmap_if, ni_name) == 0);
    assert!(offset_of!(netmap_if, ni_version) == 16);
    assert!(offset_of!(netmap_if, ni_flags) == 20);
    assert!(offset_of!(netmap_if, ni_tx_rings) == 24);
    assert!(offset_of!(netmap_if, ni_rx_rings) == 28);
    assert!(offset_of!(netmap_if, ni_bufs_head) == 32);
    // ni_spare1[0], ni_spare1[1] are ni_host_tx_rings, ni_host_rx_rings in API 14.
    assert!(offset_of!(netmap_if, ni_spare1) == 36);
    assert!(offset_of!(netmap_if, ring_ofs) == 56);

    assert!(size_of::<nmreq>() == 60);
    assert!(offset_of!(nmreq, nr_version) == 16);
    assert!(offset_of!(nmreq, nr_offset) == 20);
    assert!(offset_of!(nmreq, nr_memsize) == 24);
    assert!(offset_of!(nmreq, nr_tx_rings) == 36);
    assert!(offset_of!(nmreq, nr_ringid) == 40);
    assert!(offset_of!(nmreq, nr_cmd) == 42);
    assert!(offset_of!(nmreq, nr_arg2) == 46);
    assert!(offset_of!(nmreq, nr_arg3) == 48);
    assert!(offset_of!(nmreq, nr_flags) == 52);
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioctl_numbers_match_the_header() {
        // _IOWR('i', 146, struct nmreq) and _IO('i', 148/149), as the C preprocessor
        // computes them.
        assert_eq!(NIOCREGIF, 0xC03C_6992);
        #[cfg(target_os = "linux")]
        {
            assert_eq!(NIOCTXSYNC, 0x6994);
            assert_eq!(NIOCRXSYNC, 0x6995);
        }
    }
}
