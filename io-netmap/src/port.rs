//! The netmap ring protocol behind [`Device`]: a bound port's rings, its pool of spare
//! buffers, and the frames that lend or own those buffers.
//!
//! ## Who owns a buffer
//!
//! netmap's rule: slots (and their buffers) in `[head, tail)` belong to the process, the
//! rest to the kernel. The extra buffers asked for at registration (`ni_bufs_head`) belong
//! to the process throughout; they are the *spare pool*. This module keeps every buffer
//! index in exactly one place: a ring slot, the spare pool (the port's local stash, the
//! shared return queue, or a per-slot reserve) or one frame.
//!
//! *Receive.* `rx_burst` lends each new slot's buffer to a frame without moving `head`,
//! and takes one spare as that slot's *reserve*. On the next `rx_burst` (or `wait`), for
//! each lent slot: if the frame is gone, the buffer never left the slot and the reserve
//! goes back to the stash; if the stack still holds the frame, the reserve is written into
//! the slot with `NS_BUF_CHANGED` and the frame keeps its buffer, now a spare that returns
//! to the pool on drop. Then `head`/`cur` move past the lent slots in one store. So the
//! common case (frames dropped within the poll) never changes a slot, the ring never waits
//! on the stack, and no spare means a counted drop at lend time, never a stall later.
//!
//! *Transmit.* `alloc_tx` hands out a spare. `tx_burst` writes each frame's buffer index
//! and length into the next TX slot with `NS_BUF_CHANGED` and takes the slot's previous
//! buffer into the pool: the payload is never copied. One `NIOCTXSYNC` covers the burst.
//!
//! The lend handshake with a frame dropped on another thread is one atomic word per RX
//! slot: `generation << 2 | state` (lent, returned, taken by `tx_burst`, detached by the
//! port); whoever loses the compare-and-swap knows the other side acted.

use std::fmt;
use std::io;
use std::ptr::{self, addr_of, addr_of_mut, NonNull};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_queue::ArrayQueue;
use rumpnet_stack::device::{BufferError, Capabilities, Device, Frame, TxAllocator};

use crate::abi::FIRST_VALID_BUF;
use crate::abi::{netmap_if, netmap_ring, NS_BUF_CHANGED, NS_MOREFRAG, RING_HEADER};
use crate::name::RingMode;
use crate::region::{Region, RingPtr};
use crate::NetmapError;

/// What the port needs from the kernel: the two ring syncs and a way to sleep. The real
/// one issues `NIOCTXSYNC`/`NIOCRXSYNC`/`poll(2)` on the `/dev/netmap` descriptor; the
/// tests' simulated kernel plays the kernel's part on the same memory.
pub trait Kernel {
    /// Hand the slots before `head` of every bound TX ring to the kernel; learn how far
    /// it got (`tail`).
    fn txsync(&mut self) -> io::Result<()>;
    /// Give back the RX slots before `head`; learn about new frames (`tail`).
    fn rxsync(&mut self) -> io::Result<()>;
    /// Sleep until a bound RX ring has frames (or `timeout` passes).
    fn wait(&mut self, timeout: Option<Duration>) -> io::Result<()>;
}

/// Counters of one port (plain numbers: one thread drives a port).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetmapStats {
    /// Frames handed to the stack.
    pub rx_frames: u64,
    /// Frames put into TX slots.
    pub tx_frames: u64,
    /// `NIOCRXSYNC` calls (one per burst that found its ring empty).
    pub rxsyncs: u64,
    /// `NIOCTXSYNC` calls.
    pub txsyncs: u64,
    /// Held RX frames whose slot got a spare buffer (`NS_BUF_CHANGED`).
    pub rx_swapped: u64,
    /// RX frames dropped because no spare buffer was free to back them.
    pub rx_no_spare: u64,
    /// RX slots dropped as parts of multi-slot (`NS_MOREFRAG`) frames.
    pub rx_fragmented: u64,
    /// RX slots the kernel filled with an impossible buffer index or length.
    pub rx_bad_slot: u64,
    /// TX frames whose data did not start at the buffer's first byte (moved in place:
    /// netmap slots carry no offset).
    pub tx_realigned: u64,
    /// TX frames from another port's memory, copied into a slot buffer.
    pub tx_copied: u64,
    /// TX frames dropped: larger than a buffer.
    pub tx_oversize: u64,
    /// Failed syncs (the last error is kept by the port).
    pub sync_errors: u64,
}

const NO_BUF: u32 = u32::MAX;
/// Most spares a port keeps for itself before returning them to the shared queue.
const STASH_MAX: usize = 512;
/// Spares moved from the shared queue to the stash at a time.
const REFILL: usize = 32;

// RX slot lend states (low two bits; the lend's generation above them).
const DETACHED: u64 = 0;
const LENT: u64 = 1;
const RETURNED: u64 = 2;
const TAKEN: u64 = 3;

fn state(gen: u64, tag: u64) -> u64 {
    (gen << 2) | tag
}

/// What the port and its frames share: the memory, the buffer geometry and the pool that
/// frames dropped on any thread return their buffers to.
struct Shared {
    region: Region,
    nifp_offset: usize,
    bufs_offset: usize,
    buf_size: u32,
    nbufs: u32,
    /// Spare buffers returned by frames (any thread); lock-free, bounded by the number of
    /// spare buffers, which no push can exceed (each index is in one place at a time).
    returned: ArrayQueue<u32>,
    /// Per RX queue, per slot: the lend handshake word.
    rx_state: Box<[Box<[AtomicU64]>]>,
}

impl Shared {
    fn buf_ptr(&self, idx: u32) -> *mut u8 {
        assert!(idx < self.nbufs, "buffer {idx} of {}", self.nbufs);
        // SAFETY: buffer `idx < nbufs` lies inside the region (checked by `discover`:
        // bufs_offset + nbufs * buf_size <= len).
        unsafe {
            self.region
                .base()
                .add(self.bufs_offset + idx as usize * self.buf_size as usize)
        }
    }

    fn valid_buf(&self, idx: u32) -> bool {
        (FIRST_VALID_BUF..self.nbufs).contains(&idx)
    }

    /// A frame of `len` bytes in a spare from the shared queue.
    fn alloc(self: &Arc<Self>, len: usize) -> Option<NetmapFrame> {
        if len > self.buf_size as usize {
            return None;
        }
        let idx = self.returned.pop()?;
        Some(NetmapFrame {
            shared: Arc::clone(self),
            idx,
            start: 0,
            end: len as u32,
            lend: None,
        })
    }

    fn give_back(&self, idx: u32) {
        // Cannot fail: the queue holds as many indices as there are spare buffers.
        let _ = self.returned.push(idx);
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // Hand the spare buffers back the way the kernel expects them on close: a list
        // from ni_bufs_head, linked through each buffer's first 4 bytes, 0-terminated.
        let mut head = 0u32;
        while let Some(idx) = self.returned.pop() {
            // SAFETY: `idx` is a valid spare index (checked when it entered the pool), so
            // its buffer is inside the region, 4-byte aligned (buffers are >= 64-byte
            // multiples from a page-aligned base), and owned by nobody else now.
            unsafe { self.buf_ptr(idx).cast::<u32>().write(head) };
            head = idx;
        }
        // SAFETY: the netmap_if header is inside the region (checked by `discover`).
        unsafe {
            let nifp = self.region.base().add(self.nifp_offset).cast::<netmap_if>();
            ptr::write_volatile(addr_of_mut!((*nifp).ni_bufs_head), head);
        }
    }
}

/// A frame whose bytes live in a netmap buffer: lent from an RX slot, or a spare buffer
/// from [`NetmapPort::alloc_tx`]. Dropping it returns the buffer; it may be moved to and
/// dropped on any thread.
pub struct NetmapFrame {
    shared: Arc<Shared>,
    idx: u32,
    start: u32,
    end: u32,
    lend: Option<Lend>,
}

#[derive(Debug, Clone, Copy)]
struct Lend {
    queue: u16,
    slot: u32,
    gen: u64,
}

impl fmt::Debug for NetmapFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NetmapFrame")
            .field("buf_idx", &self.idx)
            .field("start", &self.start)
            .field("len", &(self.end - self.start))
            .field("lent", &self.lend.is_some())
            .finish()
    }
}

impl NetmapFrame {
    /// The netmap buffer index holding this frame.
    pub fn buf_idx(&self) -> u32 {
        self.idx
    }

    fn buf(&self) -> &[u8] {
        // SAFETY: the frame is the only owner of buffer `idx` (module docs): no ring slot
        // the kernel may touch holds it, and no other frame does. The buffer is inside the
        // live region, which `shared` keeps mapped.
        unsafe {
            std::slice::from_raw_parts(self.shared.buf_ptr(self.idx), self.shared.buf_size as usize)
        }
    }

    fn buf_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `buf`, and `&mut self` makes this the only reference.
        unsafe {
            std::slice::from_raw_parts_mut(
                self.shared.buf_ptr(self.idx),
                self.shared.buf_size as usize,
            )
        }
    }
}

impl Drop for NetmapFrame {
    fn drop(&mut self) {
        if self.idx == NO_BUF {
            return; // handed to a TX slot
        }
        if let Some(l) = self.lend {
            let cell = &self.shared.rx_state[l.queue as usize][l.slot as usize];
            // Still lent: the buffer never left its slot; tell the port it may reuse it.
            if cell
                .compare_exchange(
                    state(l.gen, LENT),
                    state(l.gen, RETURNED),
                    Ordering::Release,
                    Ordering::Relaxed,
                )
                .is_ok()
            {
                return;
            }
            // Otherwise the port detached it: the buffer is a spare now.
        }
        self.shared.give_back(self.idx);
    }
}

impl Frame for NetmapFrame {
    fn data(&self) -> &[u8] {
        &self.buf()[self.start as usize..self.end as usize]
    }
    fn data_mut(&mut self) -> &mut [u8] {
        let (s, e) = (self.start as usize, self.end as usize);
        &mut self.buf_mut()[s..e]
    }
    fn headroom(&self) -> usize {
        self.start as usize
    }
    fn tailroom(&self) -> usize {
        (self.shared.buf_size - self.end) as usize
    }
    fn prepend(&mut self, n: usize) -> Result<&mut [u8], BufferError> {
        if n > self.start as usize {
            return Err(BufferError::NoHeadroom);
        }
        self.start -= n as u32;
        let s = self.start as usize;
        Ok(&mut self.buf_mut()[s..s + n])
    }
    fn append(&mut self, n: usize) -> Result<&mut [u8], BufferError> {
        if n > self.tailroom() {
            return Err(BufferError::NoTailroom);
        }
        let old = self.end as usize;
        self.end += n as u32;
        Ok(&mut self.buf_mut()[old..old + n])
    }
    fn trim_front(&mut self, n: usize) {
        self.start += (n as u32).min(self.end - self.start);
    }
    fn truncate(&mut self, len: usize) {
        if len < (self.end - self.start) as usize {
            self.end = self.start + len as u32;
        }
    }
    fn try_clone(&self) -> Option<NetmapFrame> {
        let mut f = self.shared.alloc(self.data().len())?;
        f.data_mut().copy_from_slice(self.data());
        Some(f)
    }
}

/// Transmit frames for another thread: spares taken from the shared return queue
/// (lock-free), never from the port's own stash.
struct SharedAlloc(Arc<Shared>);

impl TxAllocator<NetmapFrame> for SharedAlloc {
    fn alloc(&mut self, len: usize) -> Option<NetmapFrame> {
        self.0.alloc(len)
    }
}

struct RxRing {
    ring: RingPtr,
    /// Slots `[head, lend_end)` were handed out by the last burst.
    lend_end: u32,
    /// Per slot: the spare reserved for it while its buffer is lent (NO_BUF: not lent).
    reserve: Box<[u32]>,
    /// Per slot: the generation of its current lend.
    gen: Box<[u64]>,
    next_gen: u64,
    /// Inside a multi-slot frame (dropped whole).
    in_frag: bool,
}

/// A registered netmap port: its bound ring pairs as device queues.
pub struct NetmapPort<K: Kernel> {
    shared: Arc<Shared>,
    kernel: K,
    name: String,
    rx: Vec<RxRing>,
    tx: Vec<RingPtr>,
    /// Spare buffers this thread holds (refilled from `shared.returned` in batches, at
    /// most `stash_max` so other threads' allocators are not starved).
    stash: Vec<u32>,
    stash_max: usize,
    stats: NetmapStats,
    last_error: Option<NetmapError>,
    max_burst: usize,
    nic_rings: (usize, usize),
}

impl<K: Kernel> fmt::Debug for NetmapPort<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NetmapPort")
            .field("name", &self.name)
            .field("rx_rings", &self.rx.len())
            .field("tx_rings", &self.tx.len())
            .field("buf_size", &self.shared.buf_size)
            .field("spares", &self.stash.len())
            .field("stats", &self.stats)
            .finish()
    }
}

/// The rings and buffer geometry found in a region.
pub(crate) struct Discovered {
    tx: Vec<RingPtr>,
    rx: Vec<RingPtr>,
    bufs_offset: usize,
    buf_size: u32,
    nbufs: u32,
    /// Hardware TX and RX rings of the interface, bound or not.
    nic_rings: (usize, usize),
}

/// Find the rings `mode` bound in the netmap_if at `nifp_offset`, checking that every
/// ring, slot array and buffer the kernel described lies inside the region.
pub(crate) fn discover(
    region: &Region,
    nifp_offset: usize,
    mode: RingMode,
    name: &str,
) -> Result<Discovered, NetmapError> {
    let bad = |what: String| NetmapError::Layout {
        name: name.to_string(),
        what,
    };
    let len = region.len();
    let if_size = std::mem::size_of::<netmap_if>();
    if !nifp_offset.is_multiple_of(8) || nifp_offset.checked_add(if_size).is_none_or(|e| e > len) {
        return Err(bad(format!(
            "netmap_if at {nifp_offset} outside the {len}-byte region"
        )));
    }
    // SAFETY: the netmap_if header is inside the region and 8-aligned (checked above).
    let nifp = unsafe { region.base().add(nifp_offset).cast::<netmap_if>() };
    // SAFETY: reading plain u32 fields of the in-bounds header.
    let (ntx, nrx, htx, hrx) = unsafe {
        let spare = ptr::read(addr_of!((*nifp).ni_spare1));
        (
            ptr::read(addr_of!((*nifp).ni_tx_rings)) as usize,
            ptr::read(addr_of!((*nifp).ni_rx_rings)) as usize,
            // API 14 names these ni_host_tx/rx_rings; older kernels left them 0 and had
            // exactly one host ring pair in the table (new kernels also write >= 1).
            spare[0].max(1) as usize,
            spare[1].max(1) as usize,
        )
    };
    if ntx > 4096 || nrx > 4096 || htx > 4096 || hrx > 4096 {
        return Err(bad(format!(
            "implausible ring counts tx {ntx}+{htx}, rx {nrx}+{hrx}"
        )));
    }
    let entries = ntx + htx + nrx + hrx;
    if nifp_offset + if_size + entries * 8 > len {
        return Err(bad("ring offset table outside the region".into()));
    }
    let (tx_range, rx_range) = match mode {
        RingMode::AllNic => (0..ntx, 0..nrx),
        RingMode::OneNic(r) => {
            let r = r as usize;
            if r >= ntx || r >= nrx {
                return Err(bad(format!(
                    "ring {r} asked for, the port has {ntx} tx / {nrx} rx rings"
                )));
            }
            (r..r + 1, r..r + 1)
        }
        RingMode::Host => (ntx..ntx + htx, nrx..nrx + hrx),
        RingMode::NicAndHost => (0..ntx + htx, 0..nrx + hrx),
    };
    let mut geometry: Option<(usize, u32)> = None;
    let mut ring_at = |table_index: usize| -> Result<Option<RingPtr>, NetmapError> {
        // SAFETY: the table entry is inside the region (checked above), 8-aligned.
        let ofs = unsafe {
            ptr::read(
                nifp.cast::<u8>()
                    .add(if_size + table_index * 8)
                    .cast::<isize>(),
            )
        };
        if ofs == 0 {
            return Ok(None); // not bound to this descriptor
        }
        let ring_off = (nifp_offset as isize)
            .checked_add(ofs)
            .filter(|&o| {
                o >= 0 && (o as usize).is_multiple_of(8) && o as usize + RING_HEADER <= len
            })
            .ok_or_else(|| bad(format!("ring {table_index} at offset {ofs} outside")))?
            as usize;
        // SAFETY: the ring header is inside the region and aligned (checked above).
        let ring = unsafe { region.base().add(ring_off).cast::<netmap_ring>() };
        // SAFETY: reading plain fields of the in-bounds header.
        let (num_slots, buf_size, buf_ofs, head, tail) = unsafe {
            (
                ptr::read(addr_of!((*ring).num_slots)),
                ptr::read(addr_of!((*ring).nr_buf_size)),
                ptr::read(addr_of!((*ring).buf_ofs)),
                ptr::read(addr_of!((*ring).head)),
                ptr::read(addr_of!((*ring).tail)),
            )
        };
        if !(2..=1 << 20).contains(&num_slots)
            || ring_off + RING_HEADER + num_slots as usize * 16 > len
        {
            return Err(bad(format!(
                "ring {table_index}: {num_slots} slots do not fit"
            )));
        }
        if !(64..=65536).contains(&buf_size) || buf_size % 4 != 0 {
            return Err(bad(format!("ring {table_index}: buffer size {buf_size}")));
        }
        if head >= num_slots || tail >= num_slots {
            return Err(bad(format!("ring {table_index}: head/tail out of range")));
        }
        let bufs = (ring_off as i64)
            .checked_add(buf_ofs)
            .filter(|&b| b >= 0 && (b as usize) < len)
            .ok_or_else(|| bad(format!("ring {table_index}: buffers outside")))?
            as usize;
        match geometry {
            None => geometry = Some((bufs, buf_size)),
            Some(g) if g == (bufs, buf_size) => {}
            Some(_) => return Err(bad("rings disagree on the buffer pool".into())),
        }
        // SAFETY: header and slots are inside the region (checked above); the Region
        // outlives the view (both live in the port, the view only as long as it).
        Ok(Some(unsafe {
            RingPtr::new(NonNull::new_unchecked(ring), num_slots)
        }))
    };
    let mut tx = Vec::new();
    for i in tx_range {
        tx.extend(ring_at(i)?);
    }
    let mut rx = Vec::new();
    for i in rx_range {
        rx.extend(ring_at(ntx + htx + i)?);
    }
    if tx.is_empty() || rx.is_empty() || tx.len() > u16::MAX as usize {
        return Err(bad(format!(
            "{} tx and {} rx rings bound (need at least one pair)",
            tx.len(),
            rx.len()
        )));
    }
    let (bufs_offset, buf_size) = geometry.expect("at least one ring");
    let nbufs = ((len - bufs_offset) / buf_size as usize).min(u32::MAX as usize - 1) as u32;
    Ok(Discovered {
        tx,
        rx,
        bufs_offset,
        buf_size,
        nbufs,
        nic_rings: (ntx, nrx),
    })
}

impl<K: Kernel> NetmapPort<K> {
    /// Take over a registered port: find its rings in `region`, and the spare buffers the
    /// kernel linked from `ni_bufs_head` (at least `min_spares`).
    pub(crate) fn new(
        region: Region,
        nifp_offset: usize,
        mode: RingMode,
        name: &str,
        kernel: K,
        min_spares: u32,
    ) -> Result<NetmapPort<K>, NetmapError> {
        let d = discover(&region, nifp_offset, mode, name)?;
        let bad = |what: String| NetmapError::Layout {
            name: name.to_string(),
            what,
        };
        let buf = |idx: u32| {
            // SAFETY: callers check idx < nbufs, so the buffer is inside the region.
            unsafe {
                region
                    .base()
                    .add(d.bufs_offset + idx as usize * d.buf_size as usize)
            }
        };
        // SAFETY: the netmap_if header is inside the region (checked by discover).
        let nifp = unsafe { region.base().add(nifp_offset).cast::<netmap_if>() };
        // SAFETY: a plain u32 field of the in-bounds header.
        let mut next = unsafe { ptr::read_volatile(addr_of!((*nifp).ni_bufs_head)) };
        let mut spares = Vec::new();
        while next != 0 {
            if next < FIRST_VALID_BUF || next >= d.nbufs || spares.len() >= d.nbufs as usize {
                return Err(bad(format!(
                    "extra buffer list: bad index {next} after {} buffers",
                    spares.len()
                )));
            }
            spares.push(next);
            // SAFETY: `next < nbufs`: its first 4 bytes are inside the region, aligned.
            next = unsafe { buf(next).cast::<u32>().read() };
        }
        let count = spares.len() as u32;
        let returned = ArrayQueue::new(spares.len().max(1));
        for &s in &spares {
            let _ = returned.push(s);
        }
        let rx_state =
            d.rx.iter()
                .map(|r| (0..r.num_slots()).map(|_| AtomicU64::new(0)).collect())
                .collect();
        // From here the spares are ours; Shared's Drop relinks them for the kernel.
        // SAFETY: as above.
        unsafe { ptr::write_volatile(addr_of_mut!((*nifp).ni_bufs_head), 0) };
        let shared = Arc::new(Shared {
            region,
            nifp_offset,
            bufs_offset: d.bufs_offset,
            buf_size: d.buf_size,
            nbufs: d.nbufs,
            returned,
            rx_state,
        });
        if count < min_spares {
            return Err(NetmapError::ExtraBufs {
                name: name.to_string(),
                got: count,
                min: min_spares,
            });
        }
        let min_slots = d.rx.iter().chain(&d.tx).map(|r| r.num_slots()).min();
        let rx =
            d.rx.into_iter()
                .map(|ring| RxRing {
                    ring,
                    lend_end: ring.head(),
                    reserve: vec![NO_BUF; ring.num_slots() as usize].into_boxed_slice(),
                    gen: vec![0; ring.num_slots() as usize].into_boxed_slice(),
                    next_gen: 1,
                    in_frag: false,
                })
                .collect();
        Ok(NetmapPort {
            shared,
            kernel,
            name: name.to_string(),
            rx,
            tx: d.tx,
            stash: Vec::with_capacity(STASH_MAX.min(count as usize)),
            stash_max: STASH_MAX.min(count as usize),
            stats: NetmapStats::default(),
            last_error: None,
            max_burst: (min_slots.unwrap_or(2) as usize - 1).clamp(1, 256),
            nic_rings: d.nic_rings,
        })
    }

    /// The port name it was opened with.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The counters.
    pub fn stats(&self) -> NetmapStats {
        self.stats
    }

    /// The last failed sync, if any (`rx_burst`/`tx_burst` cannot return errors).
    pub fn take_error(&mut self) -> Option<NetmapError> {
        self.last_error.take()
    }

    /// The hardware (TX, RX) rings of the interface, bound to this port or not
    /// (`ni_tx_rings`/`ni_rx_rings`). A port opened on one ring pair per shard checks it
    /// against the shard count: the NIC spreads flows over all its RX rings, and frames on
    /// a ring no port binds are never received.
    pub fn interface_rings(&self) -> (usize, usize) {
        self.nic_rings
    }

    /// Size of each netmap buffer (the largest frame).
    pub fn buf_size(&self) -> usize {
        self.shared.buf_size as usize
    }

    /// The kernel side (the simulated kernel in tests).
    pub fn kernel_mut(&mut self) -> &mut K {
        &mut self.kernel
    }

    /// Give back what the last bursts consumed, then sleep in the kernel until frames
    /// arrive or `timeout` passes.
    pub fn wait(&mut self, timeout: Option<Duration>) -> Result<(), NetmapError> {
        for q in 0..self.rx.len() {
            self.reclaim_rx(q);
        }
        self.kernel
            .wait(timeout)
            .map_err(|source| NetmapError::Sync { op: "poll", source })
    }

    fn spare(&mut self) -> Option<u32> {
        if self.stash.is_empty() {
            // Refill in a batch: one pass over the shared queue per REFILL spares.
            while self.stash.len() < REFILL {
                match self.shared.returned.pop() {
                    Some(i) => self.stash.push(i),
                    None => break,
                }
            }
        }
        self.stash.pop()
    }

    fn free_spare(&mut self, idx: u32) {
        if self.stash.len() < self.stash_max {
            self.stash.push(idx);
        } else {
            self.shared.give_back(idx);
        }
    }

    fn sync_failed(&mut self, op: &'static str, source: io::Error) {
        self.stats.sync_errors += 1;
        self.last_error = Some(NetmapError::Sync { op, source });
    }

    /// Settle the slots the last burst of queue `q` lent, and move `head` past them.
    fn reclaim_rx(&mut self, q: usize) {
        let r = &mut self.rx[q];
        let ring = r.ring;
        let mut i = ring.head();
        while i != r.lend_end {
            let reserve = std::mem::replace(&mut r.reserve[i as usize], NO_BUF);
            if reserve != NO_BUF {
                let gen = r.gen[i as usize];
                let cell = &self.shared.rx_state[q][i as usize];
                let swap = match cell.compare_exchange(
                    state(gen, LENT),
                    state(gen, DETACHED),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    // Still held by the stack: it keeps the buffer, the slot gets the reserve.
                    Ok(_) => true,
                    // Sent by tx_burst: same.
                    Err(s) if s & 3 == TAKEN => true,
                    // Dropped: the buffer is back, the reserve goes back to the pool.
                    Err(_) => false,
                };
                if swap {
                    let slot = ring.slot(i);
                    // SAFETY: slot `i` is in [head, lend_end) ⊆ [head, tail): ours.
                    unsafe {
                        (*slot).buf_idx = reserve;
                        (*slot).flags |= NS_BUF_CHANGED;
                    }
                    self.stats.rx_swapped += 1;
                } else if self.stash.len() < self.stash_max {
                    self.stash.push(reserve);
                } else {
                    self.shared.give_back(reserve);
                }
            }
            i = ring.next(i);
        }
        ring.set_head_cur(r.lend_end);
    }

    /// Hand a frame's buffer to TX slot `slot`, or copy it there; `false` if it was
    /// dropped instead (too large).
    fn place(&mut self, slot: *mut crate::abi::netmap_slot, mut frame: NetmapFrame) -> bool {
        let len = frame.end - frame.start;
        if Arc::ptr_eq(&frame.shared, &self.shared) {
            if let Some(l) = frame.lend.take() {
                // A lent RX buffer sent as is: the RX slot gets its reserve at the next
                // reclaim. If the port already detached it, the frame owns it anyway.
                let _ = self.shared.rx_state[l.queue as usize][l.slot as usize].compare_exchange(
                    state(l.gen, LENT),
                    state(l.gen, TAKEN),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                );
            }
            if frame.start != 0 {
                let base = self.shared.buf_ptr(frame.idx);
                // SAFETY: both ranges are inside the frame's own buffer (start + len <=
                // buf_size); `copy` allows the overlap.
                unsafe { ptr::copy(base.add(frame.start as usize), base, len as usize) };
                self.stats.tx_realigned += 1;
            }
            // SAFETY: `slot` is in [head, tail) of a TX ring: ours.
            let old = unsafe {
                let old = (*slot).buf_idx;
                (*slot).buf_idx = frame.idx;
                (*slot).len = len as u16;
                (*slot).flags = NS_BUF_CHANGED;
                old
            };
            frame.idx = NO_BUF;
            if self.shared.valid_buf(old) {
                self.free_spare(old);
            }
            true
        } else {
            // Another port's memory (another VALE port, another NIC's region): copy.
            // SAFETY: `slot` is ours (as above).
            let idx = unsafe { (*slot).buf_idx };
            if len > self.shared.buf_size || !self.shared.valid_buf(idx) {
                self.stats.tx_oversize += 1;
                return false;
            }
            // SAFETY: the slot's buffer is ours while the slot is in [head, tail), inside
            // the region, and `len` fits in it; the frame's bytes are another region's.
            unsafe {
                ptr::copy_nonoverlapping(
                    frame.data().as_ptr(),
                    self.shared.buf_ptr(idx),
                    len as usize,
                );
                (*slot).len = len as u16;
                (*slot).flags = 0;
            }
            self.stats.tx_copied += 1;
            true
        }
    }

    /// Every spare buffer index the port holds (tests: buffer conservation).
    #[cfg(test)]
    pub(crate) fn spare_indices(&self) -> Vec<u32> {
        let mut v = self.stash.clone();
        for r in &self.rx {
            v.extend(r.reserve.iter().copied().filter(|&i| i != NO_BUF));
        }
        let mut back = Vec::new();
        while let Some(i) = self.shared.returned.pop() {
            back.push(i);
        }
        for &i in &back {
            let _ = self.shared.returned.push(i);
        }
        v.extend(back);
        v
    }
}

impl<K: Kernel> Device for NetmapPort<K> {
    type Frame = NetmapFrame;

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            mtu: self.shared.buf_size as usize - 14,
            max_burst: self.max_burst,
            rx_queues: self.rx.len() as u16,
            tx_queues: self.tx.len() as u16,
            // netmap slots carry no data offset: frames start at the buffer's first byte.
            headroom: 0,
            ..Capabilities::default()
        }
    }

    fn rx_burst(&mut self, queue: u16, out: &mut Vec<NetmapFrame>, max: usize) -> usize {
        let q = queue as usize;
        if q >= self.rx.len() {
            return 0;
        }
        self.reclaim_rx(q);
        let ring = self.rx[q].ring;
        if ring.head() == ring.tail() {
            // Ring empty: one sync for the whole burst (it also returns what we consumed).
            self.stats.rxsyncs += 1;
            if let Err(e) = self.kernel.rxsync() {
                self.sync_failed("NIOCRXSYNC", e);
                return 0;
            }
        }
        let tail = ring.tail();
        if tail >= ring.num_slots() {
            self.stats.rx_bad_slot += 1;
            return 0;
        }
        let mut i = ring.head();
        let mut n = 0;
        while i != tail && n < max {
            let slot = ring.slot(i);
            // SAFETY: slot `i` is in [head, tail): ours until head moves past it.
            let (idx, len, flags) = unsafe { ((*slot).buf_idx, (*slot).len, (*slot).flags) };
            let r = &mut self.rx[q];
            let frag = r.in_frag || flags & NS_MOREFRAG != 0;
            r.in_frag = flags & NS_MOREFRAG != 0;
            if frag {
                self.stats.rx_fragmented += 1;
            } else if !self.shared.valid_buf(idx) || u32::from(len) > self.shared.buf_size {
                self.stats.rx_bad_slot += 1;
            } else if let Some(reserve) = self.spare() {
                let r = &mut self.rx[q];
                let gen = r.next_gen;
                r.next_gen += 1;
                r.gen[i as usize] = gen;
                r.reserve[i as usize] = reserve;
                self.shared.rx_state[q][i as usize].store(state(gen, LENT), Ordering::Relaxed);
                out.push(NetmapFrame {
                    shared: Arc::clone(&self.shared),
                    idx,
                    start: 0,
                    end: u32::from(len),
                    lend: Some(Lend {
                        queue,
                        slot: i,
                        gen,
                    }),
                });
                n += 1;
            } else {
                // No spare to back the lend: drop (counted); the buffer stays in the ring.
                self.stats.rx_no_spare += 1;
            }
            i = ring.next(i);
        }
        self.rx[q].lend_end = i;
        self.stats.rx_frames += n as u64;
        n
    }

    fn tx_burst(&mut self, queue: u16, frames: &mut Vec<NetmapFrame>) -> usize {
        let q = queue as usize;
        if q >= self.tx.len() || frames.is_empty() {
            return 0;
        }
        let ring = self.tx[q];
        if (ring.space() as usize) < frames.len() {
            // Not enough room: learn what the kernel completed first.
            self.stats.txsyncs += 1;
            if let Err(e) = self.kernel.txsync() {
                self.sync_failed("NIOCTXSYNC", e);
            }
        }
        let n = (ring.space() as usize).min(frames.len());
        if n == 0 {
            return 0;
        }
        let mut head = ring.head();
        let mut placed = 0u64;
        for frame in frames.drain(..n) {
            let slot = ring.slot(head);
            if self.place(slot, frame) {
                head = ring.next(head);
                placed += 1;
            }
        }
        ring.set_head_cur(head);
        self.stats.tx_frames += placed;
        self.stats.txsyncs += 1;
        if let Err(e) = self.kernel.txsync() {
            self.sync_failed("NIOCTXSYNC", e);
        }
        n
    }

    fn tx_allocator(&self) -> Option<Box<dyn TxAllocator<NetmapFrame>>> {
        Some(Box::new(SharedAlloc(Arc::clone(&self.shared))))
    }

    fn alloc_tx(&mut self, len: usize) -> Option<NetmapFrame> {
        if len > self.shared.buf_size as usize {
            return None;
        }
        let idx = self.spare()?;
        Some(NetmapFrame {
            shared: Arc::clone(&self.shared),
            idx,
            start: 0,
            end: len as u32,
            lend: None,
        })
    }
}

impl<K: Kernel> Drop for NetmapPort<K> {
    fn drop(&mut self) {
        // Frames the stack still holds keep their buffers (the slots get the reserves);
        // every other spare goes back to the shared pool, which hands them to the kernel
        // when the last frame is gone.
        for q in 0..self.rx.len() {
            self.reclaim_rx(q);
        }
        for idx in std::mem::take(&mut self.stash) {
            self.shared.give_back(idx);
        }
    }
}
