//! A netmap kernel in a test: a heap block laid out exactly as netmap lays out its
//! mapping (netmap_if with the ring offset table, ring headers with `buf_ofs`, slots,
//! `nr_buf_size` buffers, the extra-buffer list), and a [`Kernel`] that plays the
//! kernel's part of the head/cur/tail protocol on it: it checks what userspace published,
//! honours `NS_BUF_CHANGED`, delivers frames up to one slot before `head` and transmits
//! what lies before `head`, by as much as the test (or a seeded generator) lets it.

use std::collections::VecDeque;
use std::io;
use std::ptr::{addr_of_mut, NonNull};
use std::sync::Arc;
use std::time::Duration;

use crate::abi::{netmap_if, netmap_ring, netmap_slot, NS_BUF_CHANGED, RING_HEADER};
use crate::port::Kernel;
use crate::region::{HeapBlock, Region, RingPtr};

/// The shape of a simulated port.
#[derive(Debug, Clone, Copy)]
pub struct SimConfig {
    pub tx_rings: u32,
    pub rx_rings: u32,
    pub slots: u32,
    pub buf_size: u32,
    pub extra_bufs: u32,
}

/// How much the kernel does per sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Everything it can.
    All,
    /// A seeded random part of it (possibly nothing).
    Random,
    /// Nothing (a stalled NIC).
    None,
}

struct SimRing {
    ring: RingPtr,
    /// The kernel's view of `head` after the last sync.
    hwcur: u32,
    /// TX only: first slot not yet transmitted.
    done: u32,
}

/// The simulated kernel.
pub struct SimKernel {
    tx: Vec<SimRing>,
    rx: Vec<SimRing>,
    bufs: *mut u8,
    buf_size: u32,
    nbufs: u32,
    /// Frames waiting to be received, per RX ring.
    pub inbound: Vec<VecDeque<Vec<u8>>>,
    /// Frames transmitted, per TX ring, in order.
    pub sent: Vec<Vec<Vec<u8>>>,
    /// Buffer indices seen transmitted, per TX ring, in order (zero-copy checks).
    pub sent_idx: Vec<Vec<u32>>,
    pub progress: Progress,
    rng: u64,
    /// Protocol violations userspace committed (must stay empty).
    pub violations: Vec<String>,
    /// Slots returned with NS_BUF_CHANGED.
    pub buf_changes: u64,
    pub rxsyncs: u64,
    pub txsyncs: u64,
}

impl std::fmt::Debug for SimKernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimKernel")
            .field("violations", &self.violations)
            .finish()
    }
}

/// The region, where its netmap_if is, and the kernel that owns its rings.
pub struct SimPort {
    pub block: Arc<HeapBlock>,
    pub region: Region,
    pub nifp_offset: usize,
    pub kernel: SimKernel,
    /// Every valid buffer index of the region.
    pub all_bufs: Vec<u32>,
}

const PAGE: usize = 4096;

fn align(x: usize) -> usize {
    x.div_ceil(PAGE) * PAGE
}

/// Lay out a region as netmap does: the netmap_if first, the rings after it (page
/// aligned), then the buffer pool whose indices 0 and 1 are reserved. One (unbound, offset
/// 0) host ring pair sits in the offset table, as on a NIC.
pub fn build(cfg: SimConfig, seed: u64) -> SimPort {
    let (ntx, nrx, n) = (cfg.tx_rings as usize, cfg.rx_rings as usize, cfg.slots);
    let table = ntx + 1 + nrx + 1;
    let if_size = std::mem::size_of::<netmap_if>() + table * 8;
    let ring_size = align(RING_HEADER + n as usize * std::mem::size_of::<netmap_slot>());
    let rings_off = align(if_size);
    let bufs_off = rings_off + (ntx + nrx) * ring_size;
    let nbufs = 2 + (ntx + nrx) as u32 * n + cfg.extra_bufs;
    let len = bufs_off + nbufs as usize * cfg.buf_size as usize;
    let block = HeapBlock::new(len);
    let base = block.base();
    let nifp_offset = 0;
    let mut next_buf = 2u32;
    let mut tx = Vec::new();
    let mut rx = Vec::new();
    // SAFETY: every write below is inside the `len`-byte block just allocated, at offsets
    // computed from the layout above, and nothing else uses the block yet.
    unsafe {
        let nifp = base.add(nifp_offset).cast::<netmap_if>();
        addr_of_mut!((*nifp).ni_tx_rings).write(cfg.tx_rings);
        addr_of_mut!((*nifp).ni_rx_rings).write(cfg.rx_rings);
        addr_of_mut!((*nifp).ni_spare1).write([1, 1, 0, 0, 0]);
        let ofs_table = base
            .add(nifp_offset + std::mem::size_of::<netmap_if>())
            .cast::<isize>();
        for r in 0..ntx + nrx {
            let is_tx = r < ntx;
            let ring_off = rings_off + r * ring_size;
            // Table order: NIC tx, host tx (unbound: 0), NIC rx, host rx (unbound: 0).
            let entry = if is_tx { r } else { ntx + 1 + (r - ntx) };
            ofs_table
                .add(entry)
                .write(ring_off as isize - nifp_offset as isize);
            let ring = base.add(ring_off).cast::<netmap_ring>();
            addr_of_mut!((*ring).buf_ofs).write(bufs_off as i64 - ring_off as i64);
            addr_of_mut!((*ring).num_slots).write(n);
            addr_of_mut!((*ring).nr_buf_size).write(cfg.buf_size);
            addr_of_mut!((*ring).ringid).write(if is_tx { r } else { r - ntx } as u16);
            addr_of_mut!((*ring).dir).write(if is_tx { 0 } else { 1 });
            // TX starts with every slot but one free for userspace; RX starts empty.
            addr_of_mut!((*ring).head).write(0);
            addr_of_mut!((*ring).cur).write(0);
            addr_of_mut!((*ring).tail).write(if is_tx { n - 1 } else { 0 });
            let slots = base.add(ring_off + RING_HEADER).cast::<netmap_slot>();
            for i in 0..n as usize {
                let s = slots.add(i);
                addr_of_mut!((*s).buf_idx).write(next_buf);
                addr_of_mut!((*s).len).write(0);
                addr_of_mut!((*s).flags).write(0);
                next_buf += 1;
            }
            let view = RingPtr::new(NonNull::new_unchecked(ring), n);
            let sim = SimRing {
                ring: view,
                hwcur: 0,
                done: 0,
            };
            if is_tx {
                tx.push(sim)
            } else {
                rx.push(sim)
            }
        }
        // The extra buffers: a list from ni_bufs_head through each buffer's first word.
        let mut head = 0u32;
        for _ in 0..cfg.extra_bufs {
            let idx = next_buf;
            next_buf += 1;
            base.add(bufs_off + idx as usize * cfg.buf_size as usize)
                .cast::<u32>()
                .write(head);
            head = idx;
        }
        addr_of_mut!((*nifp).ni_bufs_head).write(head);
    }
    let kernel = SimKernel {
        tx,
        rx,
        // SAFETY: inside the block.
        bufs: unsafe { base.add(bufs_off) },
        buf_size: cfg.buf_size,
        nbufs,
        inbound: vec![VecDeque::new(); nrx],
        sent: vec![Vec::new(); ntx],
        sent_idx: vec![Vec::new(); ntx],
        progress: Progress::All,
        rng: seed | 1,
        violations: Vec::new(),
        buf_changes: 0,
        rxsyncs: 0,
        txsyncs: 0,
    };
    SimPort {
        region: Region::heap(&block),
        block,
        nifp_offset,
        kernel,
        all_bufs: (2..nbufs).collect(),
    }
}

impl SimKernel {
    fn rand(&mut self, bound: u32) -> u32 {
        // xorshift64*: deterministic per seed.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        (self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as u32 % bound.max(1)
    }

    fn amount(&mut self, avail: u32) -> u32 {
        match self.progress {
            Progress::All => avail,
            Progress::None => 0,
            Progress::Random => self.rand(avail + 1),
        }
    }

    fn buf(&self, idx: u32) -> *mut u8 {
        assert!(idx < self.nbufs);
        // SAFETY: buffer `idx < nbufs` is inside the block.
        unsafe { self.bufs.add(idx as usize * self.buf_size as usize) }
    }

    /// Every buffer index now in a slot of a bound ring.
    pub fn ring_bufs(&self) -> Vec<u32> {
        let mut v = Vec::new();
        for r in self.tx.iter().chain(&self.rx) {
            for i in 0..r.ring.num_slots() {
                // SAFETY: slot inside the ring.
                v.push(unsafe { (*r.ring.slot(i)).buf_idx });
            }
        }
        v
    }

    /// The address of the buffer currently in RX ring `q`'s slot `i`.
    pub fn rx_slot_buf(&self, q: usize, i: u32) -> *const u8 {
        // SAFETY: slot inside the ring.
        let idx = unsafe { (*self.rx[q].ring.slot(i)).buf_idx };
        self.buf(idx)
    }

    /// Userspace's head must lie in [hwcur, tail] (netmap's *sync prologue checks).
    fn check_head(&mut self, what: &str, r: usize, tx: bool) -> Option<u32> {
        let sr = if tx { &self.tx[r] } else { &self.rx[r] };
        let (head, cur, tail) = (sr.ring.head(), sr.ring.cur(), sr.ring.tail());
        let n = sr.ring.num_slots();
        let ok = head < n && sr.ring.distance(sr.hwcur, head) <= sr.ring.distance(sr.hwcur, tail);
        if !ok || cur != head {
            self.violations.push(format!(
                "{what} ring {r}: head {head} cur {cur} outside [hwcur {}, tail {tail}]",
                sr.hwcur
            ));
            return None;
        }
        Some(head)
    }

    fn take_slot(&mut self, ring: RingPtr, i: u32, what: &str) -> u32 {
        let s = ring.slot(i);
        // SAFETY: slot inside the ring; the kernel owns it now.
        let (idx, flags) = unsafe { ((*s).buf_idx, (*s).flags) };
        if flags & NS_BUF_CHANGED != 0 {
            self.buf_changes += 1;
            // SAFETY: as above.
            unsafe { (*s).flags &= !NS_BUF_CHANGED };
        }
        if !(2..self.nbufs).contains(&idx) {
            self.violations
                .push(format!("{what}: slot {i} has buffer {idx}"));
        }
        idx
    }
}

impl Kernel for SimKernel {
    fn rxsync(&mut self) -> io::Result<()> {
        self.rxsyncs += 1;
        for r in 0..self.rx.len() {
            let Some(head) = self.check_head("rx", r, false) else {
                return Err(io::Error::from_raw_os_error(libc::EINVAL));
            };
            let ring = self.rx[r].ring;
            // Slots before head are the kernel's again.
            let mut i = self.rx[r].hwcur;
            while i != head {
                self.take_slot(ring, i, "rx return");
                i = ring.next(i);
            }
            self.rx[r].hwcur = head;
            // Fill from tail up to one slot before head.
            let mut tail = ring.tail();
            // The kernel owns [tail, head) and keeps one slot empty.
            let owned = ring.distance(tail, head);
            let room = if owned == 0 {
                ring.num_slots() - 1
            } else {
                owned - 1
            };
            let want = self.amount(room.min(self.inbound[r].len() as u32));
            for _ in 0..want {
                let frame = self.inbound[r].pop_front().expect("counted");
                let s = ring.slot(tail);
                // SAFETY: the slot and its buffer are the kernel's (outside [head, tail)).
                unsafe {
                    let idx = (*s).buf_idx;
                    let len = frame.len().min(self.buf_size as usize);
                    std::ptr::copy_nonoverlapping(frame.as_ptr(), self.buf(idx), len);
                    (*s).len = len as u16;
                    (*s).flags = 0;
                }
                tail = ring.next(tail);
            }
            ring.set_tail(tail);
        }
        Ok(())
    }

    fn txsync(&mut self) -> io::Result<()> {
        self.txsyncs += 1;
        for r in 0..self.tx.len() {
            let Some(head) = self.check_head("tx", r, true) else {
                return Err(io::Error::from_raw_os_error(libc::EINVAL));
            };
            let ring = self.tx[r].ring;
            self.tx[r].hwcur = head;
            let pending = ring.distance(self.tx[r].done, head);
            let k = self.amount(pending);
            for _ in 0..k {
                let i = self.tx[r].done;
                let idx = self.take_slot(ring, i, "tx");
                // SAFETY: slot inside the ring, buffer validated by take_slot (else the
                // violation is recorded and the copy skipped).
                let len = unsafe { (*ring.slot(i)).len } as usize;
                if (2..self.nbufs).contains(&idx) && len <= self.buf_size as usize {
                    let mut bytes = vec![0u8; len];
                    // SAFETY: `len` bytes of a buffer inside the block.
                    unsafe {
                        std::ptr::copy_nonoverlapping(self.buf(idx), bytes.as_mut_ptr(), len)
                    };
                    self.sent[r].push(bytes);
                    self.sent_idx[r].push(idx);
                }
                self.tx[r].done = ring.next(i);
            }
            // Completed slots go back to userspace: tail is one behind the first slot
            // still to transmit.
            let done = self.tx[r].done;
            ring.set_tail((done + ring.num_slots() - 1) % ring.num_slots());
        }
        Ok(())
    }

    fn wait(&mut self, _timeout: Option<Duration>) -> io::Result<()> {
        // poll(2) on a netmap fd runs rxsync.
        self.rxsync()
    }
}

fn first_ring(block: &HeapBlock, nifp_offset: usize) -> *mut netmap_ring {
    // SAFETY: a block laid out by `build`: the table's first entry is TX ring 0's offset.
    unsafe {
        let ofs = block
            .base()
            .add(nifp_offset + std::mem::size_of::<netmap_if>())
            .cast::<isize>()
            .read();
        block.base().offset(nifp_offset as isize + ofs).cast()
    }
}

/// The extra-buffer list the kernel would free on close (from `ni_bufs_head`).
pub fn bufs_list(block: &HeapBlock, nifp_offset: usize) -> Vec<u32> {
    let ring = first_ring(block, nifp_offset);
    let mut v = Vec::new();
    // SAFETY: a block laid out by `build`; indices are checked against its size.
    unsafe {
        let bufs = ring.cast::<u8>().offset((*ring).buf_ofs as isize);
        let size = (*ring).nr_buf_size as usize;
        let nifp = block.base().add(nifp_offset).cast::<netmap_if>();
        let mut idx = (*nifp).ni_bufs_head;
        while idx != 0 && v.len() < 1 << 20 {
            v.push(idx);
            idx = bufs.add(idx as usize * size).cast::<u32>().read();
        }
    }
    v
}

/// Point TX ring 0's table entry somewhere else (layout validation tests).
pub fn corrupt_first_ring_offset(block: &HeapBlock, ofs: isize) {
    // SAFETY: the table's first entry is inside the block.
    unsafe {
        block
            .base()
            .add(std::mem::size_of::<netmap_if>())
            .cast::<isize>()
            .write(ofs)
    }
}
