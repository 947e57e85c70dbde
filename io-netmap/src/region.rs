//! The memory a netmap port lives in, and the ring views over it.
//!
//! In production the region is `mmap`ed from `/dev/netmap`; in the tests it is an aligned
//! heap block that a simulated kernel lays out exactly as netmap does. Everything above
//! this module sees only offsets, ring views and buffer indices, so both run the same
//! code.

use std::alloc::Layout;
use std::os::fd::OwnedFd;
use std::ptr::{self, addr_of, addr_of_mut, NonNull};
use std::sync::Arc;

use crate::abi::{netmap_ring, netmap_slot, RING_HEADER};

/// A block of memory holding a netmap_if, its rings and the buffer pool.
pub struct Region {
    base: NonNull<u8>,
    len: usize,
    backing: Backing,
}

enum Backing {
    /// `mmap`ed from this `/dev/netmap` descriptor (closed after the `munmap`).
    Mmap { _fd: OwnedFd },
    /// A heap block, shared with the test that built it so it can inspect the memory
    /// after the port is gone.
    Heap(#[allow(dead_code)] Arc<HeapBlock>),
}

// SAFETY: a Region is a plain block of memory with no thread affinity (an mmap of
// /dev/netmap may be touched from any thread of the process). Who may access which part
// of it, and when, is the netmap ownership protocol that `port` enforces: ring headers and
// slots only from the port (`&mut self`), a buffer only from its single owner.
unsafe impl Send for Region {}
// SAFETY: as above; shared references to a Region only read its base and length.
unsafe impl Sync for Region {}

impl std::fmt::Debug for Region {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Region")
            .field("len", &self.len)
            .field(
                "backing",
                &match self.backing {
                    Backing::Mmap { .. } => "mmap",
                    Backing::Heap(_) => "heap",
                },
            )
            .finish()
    }
}

impl Region {
    /// A region `mmap`ed from `fd`; unmapped, then `fd` closed, on drop.
    ///
    /// # Safety
    /// `base` must be the start of a live `len`-byte shared mapping that nothing else
    /// unmaps.
    pub(crate) unsafe fn from_mmap(base: NonNull<u8>, len: usize, fd: OwnedFd) -> Region {
        Region {
            base,
            len,
            backing: Backing::Mmap { _fd: fd },
        }
    }

    /// A zeroed, page-aligned heap region (the tests' stand-in for the mmap).
    pub fn heap(block: &Arc<HeapBlock>) -> Region {
        Region {
            base: block.base,
            len: block.layout.size(),
            backing: Backing::Heap(Arc::clone(block)),
        }
    }

    /// First byte of the region.
    pub fn base(&self) -> *mut u8 {
        self.base.as_ptr()
    }

    /// Size in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// The region is empty (never true for a usable port).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        if let Backing::Mmap { .. } = self.backing {
            // SAFETY: `from_mmap`'s contract: this is our mapping and nothing else unmaps
            // it; every frame and ring view into it is gone (they hold the Arc that owns
            // this Region).
            unsafe {
                libc::munmap(self.base.as_ptr().cast(), self.len);
            }
        }
    }
}

/// A zeroed, page-aligned heap block standing in for netmap's mapping in tests.
#[derive(Debug)]
pub struct HeapBlock {
    base: NonNull<u8>,
    layout: Layout,
}

// SAFETY: plain owned memory; see Region's Send/Sync.
unsafe impl Send for HeapBlock {}
// SAFETY: plain owned memory; see Region's Send/Sync.
unsafe impl Sync for HeapBlock {}

impl HeapBlock {
    /// `len` zeroed bytes aligned to 4096 (netmap's rings and buffers are page-aligned).
    pub fn new(len: usize) -> Arc<HeapBlock> {
        let layout = Layout::from_size_align(len.max(4096), 4096).expect("region layout");
        // SAFETY: the layout has a non-zero size.
        let p = unsafe { std::alloc::alloc_zeroed(layout) };
        let base = NonNull::new(p).unwrap_or_else(|| std::alloc::handle_alloc_error(layout));
        Arc::new(HeapBlock { base, layout })
    }

    /// First byte of the block.
    pub fn base(&self) -> *mut u8 {
        self.base.as_ptr()
    }
}

impl Drop for HeapBlock {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout, freed once.
        unsafe { std::alloc::dealloc(self.base.as_ptr(), self.layout) }
    }
}

/// A view of one `netmap_ring` inside a region whose bounds were checked when the view
/// was made (`port::discover`): the header and `num_slots` slots lie inside the region.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RingPtr {
    ring: NonNull<netmap_ring>,
    num_slots: u32,
}

// SAFETY: a pointer into a Region, which is Send; the port that owns the view is the only
// user of the ring header and slots.
unsafe impl Send for RingPtr {}

impl RingPtr {
    /// # Safety
    /// `ring` must point to a `netmap_ring` header followed by `num_slots` slots, all
    /// inside a live region that outlives the view.
    pub(crate) unsafe fn new(ring: NonNull<netmap_ring>, num_slots: u32) -> RingPtr {
        RingPtr { ring, num_slots }
    }

    pub(crate) fn num_slots(&self) -> u32 {
        self.num_slots
    }

    // head/cur/tail are read and written volatile: the kernel changes them during our
    // syscalls (and, for some port types, from its own threads).
    pub(crate) fn head(&self) -> u32 {
        // SAFETY: the header is inside the region (RingPtr::new's contract).
        unsafe { ptr::read_volatile(addr_of!((*self.ring.as_ptr()).head)) }
    }

    pub(crate) fn tail(&self) -> u32 {
        // SAFETY: as in `head`.
        unsafe { ptr::read_volatile(addr_of!((*self.ring.as_ptr()).tail)) }
    }

    #[cfg(test)]
    pub(crate) fn cur(&self) -> u32 {
        // SAFETY: as in `head`.
        unsafe { ptr::read_volatile(addr_of!((*self.ring.as_ptr()).cur)) }
    }

    /// Publish `v` as both `head` and `cur` (we never wait beyond what we consumed).
    pub(crate) fn set_head_cur(&self, v: u32) {
        // SAFETY: as in `head`; the user side owns head and cur.
        unsafe {
            ptr::write_volatile(addr_of_mut!((*self.ring.as_ptr()).cur), v);
            ptr::write_volatile(addr_of_mut!((*self.ring.as_ptr()).head), v);
        }
    }

    /// Set `tail`: only the (simulated) kernel does this.
    #[cfg(test)]
    pub(crate) fn set_tail(&self, v: u32) {
        // SAFETY: as in `head`.
        unsafe { ptr::write_volatile(addr_of_mut!((*self.ring.as_ptr()).tail), v) }
    }

    /// Slot `i` (`i < num_slots`).
    pub(crate) fn slot(&self, i: u32) -> *mut netmap_slot {
        assert!(i < self.num_slots, "slot {i} of {}", self.num_slots);
        // SAFETY: the slots follow the 256-byte header and the first `num_slots` of them
        // are inside the region (RingPtr::new's contract); `i` is below `num_slots`.
        unsafe {
            self.ring
                .as_ptr()
                .cast::<u8>()
                .add(RING_HEADER)
                .cast::<netmap_slot>()
                .add(i as usize)
        }
    }

    pub(crate) fn next(&self, i: u32) -> u32 {
        if i + 1 == self.num_slots {
            0
        } else {
            i + 1
        }
    }

    /// Slots from `from` up to (not including) `to`, going round the ring.
    pub(crate) fn distance(&self, from: u32, to: u32) -> u32 {
        if to >= from {
            to - from
        } else {
            to + self.num_slots - from
        }
    }

    /// Slots the user side owns: `[head, tail)` (netmap's `nm_ring_space`).
    pub(crate) fn space(&self) -> u32 {
        self.distance(self.head(), self.tail())
    }
}
