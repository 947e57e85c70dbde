//! A netmap kernel in a test: a heap block laid out exactly as netmap lays out its
//! mapping (netmap_if with the ring offset table, ring headers with `buf_ofs`, slots,
//! `nr_buf_size` buffers, the extra-buffer list), and a [`Kernel`] that plays the
//! kernel's part of the head/cur/tail protocol on it: it checks what userspace published,
//! honours `NS_BUF_CHANGED`, delivers frames up to one slot before `head` and transmits
//! what lies before `head`, by as much as the test (or a seeded generator) lets it.
//!
//! [`build`] registers every ring on one descriptor; [`build_nic`] registers a NIC once
//! per ring pair, as `serve --cores` does. A kernel normally exchanges frames with the
//! test through `inbound`/`sent`; [`SimWire`] (test-only) instead joins it to a peer
//! stack on another thread, one burst per sync.

use std::collections::VecDeque;
use std::io;
use std::ptr::{addr_of_mut, NonNull};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rumpnet_stack::device::{Device, Frame, HeapFrame};
use rumpnet_stack::link::LinkEnd;

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
    /// Test-only cable to a peer (see [`SimWire`]); `None`: `inbound`/`sent` are the wire.
    wire: Option<SimWire>,
    /// Keeps the memory the rings and `bufs` point into alive.
    _block: Arc<HeapBlock>,
}

// SAFETY: the raw pointers (`bufs`, the ring views) point into `_block`, which the kernel
// keeps alive, and only the rings this kernel owns are touched, from whichever thread
// drives the port that owns the kernel (`Kernel` methods take `&mut self`).
unsafe impl Send for SimKernel {}

/// Test-only: the cable of a simulated NIC with one ring pair, so a port can run on
/// another thread (a runtime shard) against a peer stack. It replaces `inbound` and
/// `sent`: each `rxsync` takes one burst from `end` into the free RX slots, each `txsync`
/// sends the transmitted slots onto `end` as one burst (what the link does not take
/// stays in the TX ring, as on a NIC whose wire is busy). Frames are copied in and out,
/// as a NIC's DMA would. When the kernel is dropped (with its port, on the shard's
/// thread) it leaves its counters and any protocol violation in `report`.
pub struct SimWire {
    pub end: LinkEnd,
    pub report: Arc<Mutex<SimReport>>,
    batch: Vec<HeapFrame>,
    /// TX ring positions of the frames in `batch`.
    batch_slots: Vec<u32>,
}

/// What a wired simulated kernel did (see [`SimWire`]).
#[derive(Debug, Default, Clone)]
pub struct SimReport {
    pub violations: Vec<String>,
    /// Frames put into RX slots / taken from TX slots onto the wire.
    pub rx_frames: u64,
    pub tx_frames: u64,
    /// Slots returned with `NS_BUF_CHANGED`.
    pub buf_changes: u64,
    /// Buffer indices seen in the TX ring's slots when sent (all distinct per send).
    pub tx_bufs_seen: Vec<u32>,
    /// The kernel was dropped (its port is gone).
    pub closed: bool,
}

impl SimWire {
    pub fn new(end: LinkEnd, report: Arc<Mutex<SimReport>>) -> SimWire {
        SimWire {
            end,
            report,
            batch: Vec::with_capacity(256),
            batch_slots: Vec::with_capacity(256),
        }
    }
}

impl std::fmt::Debug for SimKernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimKernel")
            .field("violations", &self.violations)
            .finish()
    }
}

/// One registration (one `/dev/netmap` descriptor): the region as it maps it, where its
/// netmap_if is, and the kernel that owns the rings it bound.
pub struct SimPort {
    pub block: Arc<HeapBlock>,
    pub region: Region,
    pub nifp_offset: usize,
    pub kernel: SimKernel,
    /// Every valid buffer index of the region.
    pub all_bufs: Vec<u32>,
    /// The buffers this registration starts with: its bound rings' slots and its extra
    /// buffers. Each port keeps exactly these (sorted) if no frame crosses ports by swap.
    pub own_bufs: Vec<u32>,
}

/// One NIC with `n` ring pairs registered `n` times, one ring pair per descriptor
/// (`netmap:nic-0`, `netmap:nic-1`, ...), as netmap lays that out: the NIC's rings and the
/// buffer pool exist once in the memory region every descriptor maps (buffer indices are
/// global to it); each registration gets its own netmap_if (its own `nr_offset`), whose
/// ring offset table holds only the ring pair it bound (0 for the others), and its own
/// list of extra buffers.
pub struct SimNic {
    pub block: Arc<HeapBlock>,
    /// One per ring pair, in ring order.
    pub ports: Vec<SimPort>,
    /// Every ring: (TX, RX) per pair.
    rings: Vec<(RingPtr, RingPtr)>,
    nifp_offsets: Vec<usize>,
}

// SAFETY: ring views into `block`, which the SimNic keeps alive; the test thread only
// reads the rings through it once every port is gone.
unsafe impl Send for SimNic {}

impl SimNic {
    /// Take the ports out (the rings stay readable through `self`).
    pub fn take_ports(&mut self) -> Vec<SimPort> {
        std::mem::take(&mut self.ports)
    }

    /// The buffer indices now in the slots of ring pair `k`.
    pub fn pair_bufs(&self, k: usize) -> Vec<u32> {
        let (tx, rx) = self.rings[k];
        let mut v = Vec::new();
        for r in [tx, rx] {
            for i in 0..r.num_slots() {
                // SAFETY: a slot inside a ring of the live block.
                v.push(unsafe { (*r.slot(i)).buf_idx });
            }
        }
        v
    }

    /// The extra-buffer list registration `k` handed back on close.
    pub fn returned_extra_bufs(&self, k: usize) -> Vec<u32> {
        bufs_list(&self.block, self.nifp_offsets[k])
    }
}

const PAGE: usize = 4096;

fn align(x: usize) -> usize {
    x.div_ceil(PAGE) * PAGE
}

/// Lay out a region as netmap does: the netmap_if first, the rings after it (page
/// aligned), then the buffer pool whose indices 0 and 1 are reserved. One (unbound, offset
/// 0) host ring pair sits in the offset table, as on a NIC. One registration binds every
/// ring.
pub fn build(cfg: SimConfig, seed: u64) -> SimPort {
    lay_out(cfg, false, seed)
        .ports
        .pop()
        .expect("one registration")
}

/// [`build`] for a NIC registered once per ring pair (see [`SimNic`]); `cfg.extra_bufs`
/// per registration. Needs as many TX as RX rings.
pub fn build_nic(cfg: SimConfig, seed: u64) -> SimNic {
    assert_eq!(cfg.tx_rings, cfg.rx_rings, "ring pairs");
    lay_out(cfg, true, seed)
}

fn lay_out(cfg: SimConfig, per_pair: bool, seed: u64) -> SimNic {
    let (ntx, nrx, n) = (cfg.tx_rings as usize, cfg.rx_rings as usize, cfg.slots);
    let regs = if per_pair { ntx } else { 1 };
    let table = ntx + 1 + nrx + 1;
    // netmap_ifs come from their own pool, one per registration, then the ring pool.
    let if_stride = (std::mem::size_of::<netmap_if>() + table * 8).next_multiple_of(64);
    let ring_size = align(RING_HEADER + n as usize * std::mem::size_of::<netmap_slot>());
    let rings_off = align(regs * if_stride);
    let bufs_off = rings_off + (ntx + nrx) * ring_size;
    let nbufs = 2 + (ntx + nrx) as u32 * n + regs as u32 * cfg.extra_bufs;
    let len = bufs_off + nbufs as usize * cfg.buf_size as usize;
    let block = HeapBlock::new(len);
    let base = block.base();
    let mut next_buf = 2u32;
    let mut tx = Vec::new();
    let mut rx = Vec::new();
    // Buffers each registration starts with (ring slots, then extras).
    let mut own: Vec<Vec<u32>> = vec![Vec::new(); regs];
    let reg_of_ring = |pair: usize| if per_pair { pair } else { 0 };
    // SAFETY: every write below is inside the `len`-byte block just allocated, at offsets
    // computed from the layout above, and nothing else uses the block yet.
    unsafe {
        for r in 0..ntx + nrx {
            let is_tx = r < ntx;
            let pair = if is_tx { r } else { r - ntx };
            let ring_off = rings_off + r * ring_size;
            let ring = base.add(ring_off).cast::<netmap_ring>();
            addr_of_mut!((*ring).buf_ofs).write(bufs_off as i64 - ring_off as i64);
            addr_of_mut!((*ring).num_slots).write(n);
            addr_of_mut!((*ring).nr_buf_size).write(cfg.buf_size);
            addr_of_mut!((*ring).ringid).write(pair as u16);
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
                own[reg_of_ring(pair)].push(next_buf);
                next_buf += 1;
            }
            let view = RingPtr::new(NonNull::new_unchecked(ring), n);
            if is_tx {
                tx.push(view)
            } else {
                rx.push(view)
            }
        }
        for (k, own) in own.iter_mut().enumerate() {
            let nifp_offset = k * if_stride;
            let nifp = base.add(nifp_offset).cast::<netmap_if>();
            addr_of_mut!((*nifp).ni_tx_rings).write(cfg.tx_rings);
            addr_of_mut!((*nifp).ni_rx_rings).write(cfg.rx_rings);
            addr_of_mut!((*nifp).ni_spare1).write([1, 1, 0, 0, 0]);
            let ofs_table = base
                .add(nifp_offset + std::mem::size_of::<netmap_if>())
                .cast::<isize>();
            // Table order: NIC tx, host tx, NIC rx, host rx; rings this registration did
            // not bind (here: the host rings, and with `per_pair` the other pairs) are 0.
            for r in 0..ntx + nrx {
                let is_tx = r < ntx;
                let pair = if is_tx { r } else { r - ntx };
                if reg_of_ring(pair) != k {
                    continue;
                }
                let entry = if is_tx { r } else { ntx + 1 + pair };
                let ring_off = rings_off + r * ring_size;
                ofs_table
                    .add(entry)
                    .write(ring_off as isize - nifp_offset as isize);
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
                own.push(idx);
            }
            addr_of_mut!((*nifp).ni_bufs_head).write(head);
            own.sort_unstable();
        }
    }
    let sim_ring = |ring| SimRing {
        ring,
        hwcur: 0,
        done: 0,
    };
    let mut ports = Vec::new();
    for (k, own_bufs) in own.into_iter().enumerate() {
        let (ktx, krx): (Vec<SimRing>, Vec<SimRing>) = if per_pair {
            (vec![sim_ring(tx[k])], vec![sim_ring(rx[k])])
        } else {
            (
                tx.iter().copied().map(sim_ring).collect(),
                rx.iter().copied().map(sim_ring).collect(),
            )
        };
        let (ntx_k, nrx_k) = (ktx.len(), krx.len());
        let kernel = SimKernel {
            tx: ktx,
            rx: krx,
            // SAFETY: inside the block.
            bufs: unsafe { base.add(bufs_off) },
            buf_size: cfg.buf_size,
            nbufs,
            inbound: vec![VecDeque::new(); nrx_k],
            sent: vec![Vec::new(); ntx_k],
            sent_idx: vec![Vec::new(); ntx_k],
            progress: Progress::All,
            rng: (seed.wrapping_add(k as u64)) | 1,
            violations: Vec::new(),
            buf_changes: 0,
            rxsyncs: 0,
            txsyncs: 0,
            wire: None,
            _block: Arc::clone(&block),
        };
        ports.push(SimPort {
            region: Region::heap(&block),
            block: Arc::clone(&block),
            nifp_offset: k * if_stride,
            kernel,
            all_bufs: (2..nbufs).collect(),
            own_bufs,
        });
    }
    SimNic {
        nifp_offsets: ports.iter().map(|p| p.nifp_offset).collect(),
        block,
        ports,
        rings: tx.into_iter().zip(rx).collect(),
    }
}

impl SimKernel {
    /// Put the (single) ring pair on a cable to a peer instead of `inbound`/`sent`.
    pub fn attach_wire(&mut self, wire: SimWire) {
        assert!(
            self.rx.len() == 1 && self.tx.len() == 1,
            "a wire carries one ring pair"
        );
        self.wire = Some(wire);
    }

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

impl SimKernel {
    /// Send up to `k` pending slots of TX ring `r` onto the wire as one burst; the slots
    /// the link did not take stay pending.
    fn transmit_on_wire(&mut self, w: &mut SimWire, r: usize, k: u32) {
        let ring = self.tx[r].ring;
        let start = self.tx[r].done;
        w.batch.clear();
        w.batch_slots.clear();
        let mut i = start;
        for _ in 0..k {
            // SAFETY: a slot inside the ring, before head: the kernel's to read.
            let (idx, len) = unsafe { ((*ring.slot(i)).buf_idx, (*ring.slot(i)).len) };
            if (2..self.nbufs).contains(&idx) && u32::from(len) <= self.buf_size {
                let Some(mut f) = w.end.alloc_tx(len as usize) else {
                    break;
                };
                // SAFETY: `len` bytes of a buffer inside the block, owned by the kernel
                // while its slot lies before head.
                let bytes = unsafe { std::slice::from_raw_parts(self.buf(idx), len as usize) };
                f.data_mut().copy_from_slice(bytes);
                w.batch.push(f);
                w.batch_slots.push(i);
            }
            i = ring.next(i);
        }
        let end = i;
        let built = w.batch.len();
        let taken = w.end.tx_burst(0, &mut w.batch);
        w.batch.clear();
        // Consumed: every slot up to the first frame the link did not take.
        let stop = if taken < built {
            w.batch_slots[taken]
        } else {
            end
        };
        let mut rep = w.report.lock().unwrap();
        rep.tx_frames += taken as u64;
        let mut i = start;
        while i != stop {
            let idx = self.take_slot(ring, i, "tx");
            rep.tx_bufs_seen.push(idx);
            i = ring.next(i);
        }
        self.tx[r].done = stop;
    }
}

impl Drop for SimKernel {
    fn drop(&mut self) {
        if let Some(w) = &self.wire {
            let mut rep = w.report.lock().unwrap_or_else(|e| e.into_inner());
            rep.violations.append(&mut self.violations);
            rep.buf_changes += self.buf_changes;
            rep.closed = true;
        }
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
            if let Some(mut w) = self.wire.take() {
                let want = self.amount(room) as usize;
                w.batch.clear();
                w.end.rx_burst(0, &mut w.batch, want);
                w.report.lock().unwrap().rx_frames += w.batch.len() as u64;
                for f in w.batch.drain(..) {
                    let s = ring.slot(tail);
                    // SAFETY: the slot and its buffer are the kernel's (outside
                    // [head, tail)).
                    unsafe {
                        let idx = (*s).buf_idx;
                        let len = f.len().min(self.buf_size as usize);
                        std::ptr::copy_nonoverlapping(f.data().as_ptr(), self.buf(idx), len);
                        (*s).len = len as u16;
                        (*s).flags = 0;
                    }
                    tail = ring.next(tail);
                }
                self.wire = Some(w);
                ring.set_tail(tail);
                continue;
            }
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
            if let Some(mut w) = self.wire.take() {
                self.transmit_on_wire(&mut w, r, k);
                self.wire = Some(w);
                let done = self.tx[r].done;
                ring.set_tail((done + ring.num_slots() - 1) % ring.num_slots());
                continue;
            }
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
    // SAFETY: a block laid out by `build`: the table follows the netmap_if, its entries
    // are ring offsets from the netmap_if, 0 for rings this registration did not bind,
    // and every registration bound at least one ring.
    unsafe {
        let nifp = block.base().add(nifp_offset).cast::<netmap_if>();
        let entries = (*nifp).ni_tx_rings + (*nifp).ni_rx_rings + 2;
        let table = block
            .base()
            .add(nifp_offset + std::mem::size_of::<netmap_if>())
            .cast::<isize>();
        let ofs = (0..entries as usize)
            .map(|e| table.add(e).read())
            .find(|&o| o != 0)
            .expect("a bound ring");
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
