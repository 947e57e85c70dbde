//! The packet-I/O boundary: what every backend (DPDK, netmap, TAP, the in-memory link)
//! implements, and the only way frames enter or leave the stack.
//!
//! Two traits split the job. A [`Frame`] is one owned packet buffer with headroom in
//! front of the data, so headers can be prepended without a copy; dropping it gives the
//! memory back to whoever owns it (a DPDK mempool, a netmap ring, a heap pool). A
//! [`Device`] moves *batches* of frames: the stack asks for a burst, processes it whole,
//! and hands back a burst to send. Nothing here assumes a `Vec<u8>` per frame.
//!
//! ## How the zero-copy backends fit
//!
//! *An mbuf-backed frame (io-dpdk)* wraps a `NonNull<rte_mbuf>`. `data()` is the slice
//! `buf_addr + data_off .. + data_len`; `headroom()` is `data_off`; `prepend(n)` is
//! `rte_pktmbuf_prepend` (it lowers `data_off`), `trim_front(n)` is `rte_pktmbuf_adj`,
//! `truncate` is `rte_pktmbuf_trim`. `rx_meta()` reads `hash.rss` when
//! `RTE_MBUF_F_RX_RSS_HASH` is set and maps `RTE_MBUF_F_RX_IP_CKSUM_GOOD` /
//! `RTE_MBUF_F_RX_L4_CKSUM_GOOD`; `set_tx_offload` fills `l2_len`/`l3_len`/`l4_len`,
//! `tso_segsz` and the `RTE_MBUF_F_TX_*` flags. `Drop` calls `rte_pktmbuf_free`, and
//! `tx_burst` hands ownership of the taken mbufs to the PMD (`mem::forget` on the wrapper),
//! leaving the rest in the caller's batch. `alloc_tx` is `rte_pktmbuf_alloc` from the
//! queue's mempool (bulk-allocated and cached per burst by the backend).
//!
//! *A netmap-slot frame (io-netmap)* names a buffer index in the shared region plus an
//! offset and length. On receive the backend lends the slot's buffer to the stack and, on
//! `Drop`, returns the index to a free list (when the stack keeps a frame past the poll, the
//! backend swaps a spare buffer into the ring slot with `NS_BUF_CHANGED`, so the ring never
//! waits on the stack). `headroom()` is the offset at which the backend placed the data in
//! its `nm_buf_size` buffer; on transmit `tx_burst` writes `buf_idx`/`len` into the next TX
//! slots (again `NS_BUF_CHANGED`), so the payload is never copied, and one `NIOCTXSYNC`
//! covers the whole batch.
//!
//! *A heap frame* ([`HeapFrame`]) is what the copying backends use: TAP `read`s into one,
//! the in-memory link passes them between stacks through lock-free rings.

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;

use crossbeam_queue::ArrayQueue;

/// Why a buffer operation could not be done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BufferError {
    /// Not enough headroom in front of the data.
    NoHeadroom,
    /// Not enough room behind the data.
    NoTailroom,
}

impl fmt::Display for BufferError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BufferError::NoHeadroom => "not enough headroom in the frame buffer",
            BufferError::NoTailroom => "not enough tailroom in the frame buffer",
        })
    }
}

/// What the NIC already did for a received frame.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RxMeta {
    /// The RSS hash the device computed, when it did (same key as the runtime's).
    pub rss_hash: Option<u32>,
    /// The IPv4 header checksum was verified good by the device.
    pub ipv4_csum_ok: bool,
    /// The TCP/UDP checksum was verified good by the device.
    pub l4_csum_ok: bool,
    /// The device accepted a frame whose L4 checksum is only partial (GSO from a local
    /// kernel, `VIRTIO_NET_HDR_F_NEEDS_CSUM`): trust it as if verified.
    pub l4_csum_partial: bool,
    /// The frame is a large receive-offloaded segment of this MSS (0 if not).
    pub gso_size: u16,
}

/// What the stack asks the device to finish on transmit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TxOffload {
    /// Length of the link-layer header (Ethernet + VLAN tags).
    pub l2_len: u16,
    /// Length of the IP header.
    pub l3_len: u16,
    /// Length of the transport header.
    pub l4_len: u16,
    /// Fill in the IPv4 header checksum.
    pub ipv4_csum: bool,
    /// Fill in the TCP/UDP checksum (the pseudo-header sum is already in the field).
    pub l4_csum: Option<L4Proto>,
    /// Segment this TCP frame into packets of this MSS (0: no TSO).
    pub tso_mss: u16,
}

/// The transport a checksum offload applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L4Proto {
    Tcp,
    Udp,
}

/// Checksum offloads in one direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChecksumCaps {
    pub ipv4: bool,
    pub tcp: bool,
    pub udp: bool,
}

/// What a device can do; the stack uses every offload present and falls back to software
/// for every one absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// The largest IP packet the link carries (Ethernet payload, not counting the header).
    pub mtu: usize,
    /// The most frames one `rx_burst` / `tx_burst` moves.
    pub max_burst: usize,
    /// Checksums the device verifies on receive (reported per frame in [`RxMeta`]).
    pub rx_checksum: ChecksumCaps,
    /// Checksums the device computes on transmit when asked through [`TxOffload`].
    pub tx_checksum: ChecksumCaps,
    /// Largest IP packet the device will cut into MTU-sized TCP segments (TSO; 0: no
    /// TSO). A device that offers it must give `alloc_tx` frames of that size (plus the
    /// link header), and must also offer TCP transmit checksum offload.
    pub tso_max: usize,
    /// The device reports an RSS hash per received frame.
    pub rss_hash: bool,
    /// Number of receive queues.
    pub rx_queues: u16,
    /// Number of transmit queues.
    pub tx_queues: u16,
    /// Bytes of headroom the device leaves in front of allocated frames.
    pub headroom: usize,
}

impl Default for Capabilities {
    fn default() -> Self {
        Capabilities {
            mtu: 1500,
            max_burst: 32,
            rx_checksum: ChecksumCaps::default(),
            tx_checksum: ChecksumCaps::default(),
            tso_max: 0,
            rss_hash: false,
            rx_queues: 1,
            tx_queues: 1,
            headroom: 128,
        }
    }
}

/// One owned frame buffer with headroom. Dropping it returns the memory to its owner.
pub trait Frame {
    /// The frame's bytes, from the first byte of the link-layer header.
    fn data(&self) -> &[u8];
    /// The frame's bytes, writable.
    fn data_mut(&mut self) -> &mut [u8];
    /// Free bytes in front of the data.
    fn headroom(&self) -> usize;
    /// Free bytes behind the data.
    fn tailroom(&self) -> usize;
    /// Grow the data by `n` bytes at the front, taken from the headroom; returns them.
    fn prepend(&mut self, n: usize) -> Result<&mut [u8], BufferError>;
    /// Grow the data by `n` bytes at the back, taken from the tailroom; returns them.
    fn append(&mut self, n: usize) -> Result<&mut [u8], BufferError>;
    /// Drop `n` bytes from the front (they become headroom). Clamped to the length.
    fn trim_front(&mut self, n: usize);
    /// Shorten the data to `len` bytes (no-op if it is already shorter).
    fn truncate(&mut self, len: usize);
    /// What the device did on receive.
    fn rx_meta(&self) -> RxMeta {
        RxMeta::default()
    }
    /// Ask the device to finish this frame on transmit. Devices without the matching
    /// capability never see such a request (the stack checks [`Capabilities`]).
    fn set_tx_offload(&mut self, _offload: TxOffload) {}
    /// Length of the data.
    fn len(&self) -> usize {
        self.data().len()
    }
    /// The frame holds no data.
    fn is_empty(&self) -> bool {
        self.data().is_empty()
    }
    /// A copy of this frame in a new buffer of the same kind (its data and receive
    /// metadata), or `None` when no buffer is free or the backend cannot copy. The
    /// runtime copies the rare frames every shard must see (ARP) this way.
    fn try_clone(&self) -> Option<Self>
    where
        Self: Sized,
    {
        None
    }
}

/// Transmit buffers of a device, usable from another thread than the one polling it:
/// the runtime's pipelined mode gives one to each shard, which builds frames that an
/// I/O thread then sends on the device.
pub trait TxAllocator<F>: Send {
    /// A frame whose data is `len` bytes, as [`Device::alloc_tx`] gives.
    fn alloc(&mut self, len: usize) -> Option<F>;
}

impl TxAllocator<HeapFrame> for Arc<FramePool> {
    fn alloc(&mut self, len: usize) -> Option<HeapFrame> {
        FramePool::alloc(self, len)
    }
}

/// A packet-I/O backend: batch receive, batch transmit, transmit buffers.
///
/// Batches are caller-owned `Vec`s that keep their capacity between polls, so moving a
/// burst allocates nothing.
pub trait Device {
    /// The backend's frame buffer.
    type Frame: Frame;

    /// What the device can do.
    fn capabilities(&self) -> Capabilities;

    /// Receive up to `max` frames from `queue`, appending them to `out`; returns how many.
    fn rx_burst(&mut self, queue: u16, out: &mut Vec<Self::Frame>, max: usize) -> usize;

    /// [`rx_burst`](Device::rx_burst) into an empty `out`, with a burst of exactly one
    /// frame handed back as it is (`Some`, `out` left empty) rather than in `out`:
    /// request/response traffic receives one frame a poll, and a backend that can tell
    /// it has one saves the push into the batch and the pop back out. `None`: the
    /// burst, of any other size (none included), is in `out`. The default asks
    /// `rx_burst`, so every backend receives the same frames either way.
    #[inline]
    fn rx_burst_single(
        &mut self,
        queue: u16,
        out: &mut Vec<Self::Frame>,
        max: usize,
    ) -> Option<Self::Frame> {
        if self.rx_burst(queue, out, max) == 1 && out.len() == 1 {
            return out.pop();
        }
        None
    }

    /// Transmit frames from the front of `frames` on `queue`. The frames the device took
    /// are removed from `frames`; the ones it could not take (ring full) stay there, in
    /// order, for the caller to retry or drop and count. Returns how many were taken.
    fn tx_burst(&mut self, queue: u16, frames: &mut Vec<Self::Frame>) -> usize;

    /// A frame for transmit whose data is `len` bytes (contents unspecified) with the
    /// device's headroom in front; `None` when the pool is exhausted.
    fn alloc_tx(&mut self, len: usize) -> Option<Self::Frame>;

    /// An allocator of this device's transmit frames for another thread (see
    /// [`TxAllocator`]); `None` if the device cannot give one (the runtime then falls
    /// back to heap frames where the frame type allows it).
    fn tx_allocator(&self) -> Option<Box<dyn TxAllocator<Self::Frame>>> {
        None
    }

    /// A file descriptor (Unix) that polls readable when frames arrive, for a host that
    /// sleeps while idle (the runtime registers it, edge-triggered, next to its wake-up
    /// eventfd). Only waited on after an `rx_burst` found nothing, so an edge is never
    /// missed. `None`: the device cannot wake a thread (the host sleeps in short naps).
    fn readiness_fd(&self) -> Option<i32> {
        None
    }

    /// Take back, as one batch, received frames the stack is done with (`frames` is
    /// left empty). A backend may keep their buffers for its next [`alloc_tx`]
    /// (bounded), as DPDK's per-lcore mempool cache does, so a frame that goes out
    /// and comes back costs no trip through a shared pool; the default simply drops
    /// them, which returns each to its owner.
    ///
    /// [`alloc_tx`]: Device::alloc_tx
    fn recycle(&mut self, frames: &mut Vec<Self::Frame>) {
        frames.clear();
    }

    /// [`recycle`](Device::recycle) for a burst of one frame, which the stack hands
    /// over without putting it in a batch: a backend that keeps received frames can take
    /// it as it is. `batch` is an empty vector the default puts it in to call `recycle`
    /// (and leaves empty), so a backend that only implements `recycle` sees the same
    /// batches as before.
    #[inline]
    fn recycle_one(&mut self, frame: Self::Frame, batch: &mut Vec<Self::Frame>) {
        batch.push(frame);
        self.recycle(batch);
    }
}

/// A pool of equally sized heap buffers shared by the [`HeapFrame`]s it hands out; a
/// dropped frame returns its buffer here (lock-free), so steady-state traffic allocates
/// nothing.
pub struct FramePool {
    /// Free buffers, each in the box its frames carry it in (with no pool handle, so
    /// the pool does not keep itself alive).
    free: ArrayQueue<Box<FrameBuf>>,
    buf_size: usize,
    headroom: usize,
}

impl fmt::Debug for FramePool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FramePool")
            .field("free", &self.free.len())
            .field("capacity", &self.free.capacity())
            .field("buf_size", &self.buf_size)
            .field("headroom", &self.headroom)
            .finish()
    }
}

impl FramePool {
    /// A pool that keeps up to `cached` free buffers of `buf_size` bytes, of which the
    /// first `headroom` are left free in front of the data.
    pub fn new(cached: usize, buf_size: usize, headroom: usize) -> Arc<FramePool> {
        Arc::new(FramePool {
            free: ArrayQueue::new(cached.max(1)),
            buf_size: buf_size.max(headroom + 1),
            headroom: headroom.min(buf_size),
        })
    }

    /// Size of each buffer (headroom + data + tailroom).
    pub fn buf_size(&self) -> usize {
        self.buf_size
    }

    /// Headroom left in front of the data of each new frame.
    pub fn headroom(&self) -> usize {
        self.headroom
    }

    /// A frame with `len` bytes of data after the headroom, from a recycled buffer if one
    /// is free; `None` if `len` does not fit in a buffer.
    pub fn alloc(self: &Arc<Self>, len: usize) -> Option<HeapFrame> {
        if len > self.buf_size - self.headroom {
            return None;
        }
        let mut b = self.free.pop().unwrap_or_else(|| {
            Box::new(FrameBuf {
                buf: alloc::vec![0u8; self.buf_size].into_boxed_slice(),
                start: 0,
                end: 0,
                meta: PackedMeta::NONE,
                pool: None,
            })
        });
        b.start = self.headroom;
        b.end = self.headroom + len;
        b.meta = PackedMeta::NONE;
        b.pool = Some(Arc::clone(self));
        Some(HeapFrame(Some(b)))
    }

    /// Free buffers waiting for reuse.
    pub fn free_count(&self) -> usize {
        self.free.len()
    }
}

/// A frame in a heap buffer: used by the copying backends (TAP) and the in-memory link.
///
/// A frame is moved by value several times on its way (into the transmit batch, onto
/// a link's ring, off it, into the receive batch, back to the spare frames), so it is
/// one pointer: its buffer and bookkeeping ([`FrameBuf`], 56 bytes) stay where they
/// are, boxed, and travel with the buffer back to the pool, so the box is allocated
/// once, with the buffer, and reused with it. Moved whole, the 56 bytes took some
/// eight instructions per move and a few moves per hop (callgrind: a quarter of the
/// link's receive path); one register moves now, for one more load per access.
///
/// `None` only inside `drop`, which moves the box to the pool.
pub struct HeapFrame(Option<Box<FrameBuf>>);

/// What a [`HeapFrame`] points to: the buffer, the data's place in it, the metadata,
/// and the pool the buffer goes back to. Its [`RxMeta`] and [`TxOffload`] are stored
/// packed in 16 bytes with no padding ([`PackedMeta`]).
struct FrameBuf {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    meta: PackedMeta,
    pool: Option<Arc<FramePool>>,
}

/// A frame's [`RxMeta`] and [`TxOffload`] in 16 bytes with no padding.
#[derive(Clone, Copy)]
struct PackedMeta {
    /// [`RxMeta::rss_hash`] when [`PackedMeta::RSS`] is set.
    rss_hash: u32,
    /// [`RxMeta::gso_size`].
    gso_size: u16,
    /// [`RxMeta`]'s flags: `RSS`, `IPV4_OK`, `L4_OK`, `L4_PARTIAL`.
    rx_flags: u8,
    /// [`TxOffload`]'s flags: `TX_IPV4`, and `TX_TCP` or `TX_UDP`.
    tx_flags: u8,
    l2_len: u16,
    l3_len: u16,
    l4_len: u16,
    tso_mss: u16,
}

impl PackedMeta {
    const RSS: u8 = 1;
    const IPV4_OK: u8 = 2;
    const L4_OK: u8 = 4;
    const L4_PARTIAL: u8 = 8;
    const TX_IPV4: u8 = 1;
    const TX_TCP: u8 = 2;
    const TX_UDP: u8 = 4;

    /// No receive metadata, no offload request (`RxMeta::default()`,
    /// `TxOffload::default()`).
    const NONE: PackedMeta = PackedMeta {
        rss_hash: 0,
        gso_size: 0,
        rx_flags: 0,
        tx_flags: 0,
        l2_len: 0,
        l3_len: 0,
        l4_len: 0,
        tso_mss: 0,
    };

    #[inline]
    fn set_rx(&mut self, meta: RxMeta) {
        let flag = |on: bool, bit: u8| if on { bit } else { 0 };
        self.rss_hash = meta.rss_hash.unwrap_or(0);
        self.gso_size = meta.gso_size;
        self.rx_flags = flag(meta.rss_hash.is_some(), Self::RSS)
            | flag(meta.ipv4_csum_ok, Self::IPV4_OK)
            | flag(meta.l4_csum_ok, Self::L4_OK)
            | flag(meta.l4_csum_partial, Self::L4_PARTIAL);
    }

    #[inline]
    fn rx(&self) -> RxMeta {
        RxMeta {
            rss_hash: (self.rx_flags & Self::RSS != 0).then_some(self.rss_hash),
            ipv4_csum_ok: self.rx_flags & Self::IPV4_OK != 0,
            l4_csum_ok: self.rx_flags & Self::L4_OK != 0,
            l4_csum_partial: self.rx_flags & Self::L4_PARTIAL != 0,
            gso_size: self.gso_size,
        }
    }

    #[inline]
    fn set_tx(&mut self, offload: TxOffload) {
        self.l2_len = offload.l2_len;
        self.l3_len = offload.l3_len;
        self.l4_len = offload.l4_len;
        self.tso_mss = offload.tso_mss;
        self.tx_flags = if offload.ipv4_csum { Self::TX_IPV4 } else { 0 }
            | match offload.l4_csum {
                None => 0,
                Some(L4Proto::Tcp) => Self::TX_TCP,
                Some(L4Proto::Udp) => Self::TX_UDP,
            };
    }

    #[inline]
    fn tx(&self) -> TxOffload {
        TxOffload {
            l2_len: self.l2_len,
            l3_len: self.l3_len,
            l4_len: self.l4_len,
            ipv4_csum: self.tx_flags & Self::TX_IPV4 != 0,
            l4_csum: if self.tx_flags & Self::TX_TCP != 0 {
                Some(L4Proto::Tcp)
            } else if self.tx_flags & Self::TX_UDP != 0 {
                Some(L4Proto::Udp)
            } else {
                None
            },
            tso_mss: self.tso_mss,
        }
    }
}

impl fmt::Debug for HeapFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.b();
        f.debug_struct("HeapFrame")
            .field("len", &(b.end - b.start))
            .field("headroom", &b.start)
            .field("meta", &b.meta.rx())
            .finish()
    }
}

impl HeapFrame {
    /// A standalone frame (no pool) holding a copy of `data` after `headroom` free bytes.
    pub fn from_slice(data: &[u8], headroom: usize) -> HeapFrame {
        let mut buf = alloc::vec![0u8; headroom + data.len()].into_boxed_slice();
        buf[headroom..].copy_from_slice(data);
        HeapFrame(Some(Box::new(FrameBuf {
            buf,
            start: headroom,
            end: headroom + data.len(),
            meta: PackedMeta::NONE,
            pool: None,
        })))
    }

    /// The buffer and its bookkeeping (there until `drop`).
    #[inline(always)]
    fn b(&self) -> &FrameBuf {
        self.0
            .as_deref()
            .expect("a frame holds its buffer until dropped")
    }

    #[inline(always)]
    fn b_mut(&mut self) -> &mut FrameBuf {
        self.0
            .as_deref_mut()
            .expect("a frame holds its buffer until dropped")
    }

    /// Set the receive metadata (backends do this after filling the frame).
    #[inline]
    pub fn set_rx_meta(&mut self, meta: RxMeta) {
        self.b_mut().meta.set_rx(meta);
    }

    /// The offload request the stack attached on transmit.
    #[inline]
    pub fn tx_offload(&self) -> TxOffload {
        self.b().meta.tx()
    }

    /// Set the data to `len` bytes from the current start (for backends that read into
    /// the whole tail of the buffer, then learn the length).
    pub fn set_len(&mut self, len: usize) {
        let b = self.b_mut();
        b.end = (b.start + len).min(b.buf.len());
    }

    /// Make this frame a fresh transmit frame of `len` bytes after `headroom` (as
    /// [`FramePool::alloc`] gives), keeping its buffer and its pool: how a backend
    /// reuses a received frame without a round trip through the pool. `false` (and
    /// the frame unchanged) if the buffer is too small.
    #[inline]
    pub fn reuse(&mut self, headroom: usize, len: usize) -> bool {
        let b = self.b_mut();
        // The end, worked out once for the test and the store (an overflow is too
        // large as well).
        let end = match headroom.checked_add(len) {
            Some(end) if end <= b.buf.len() => end,
            _ => return false,
        };
        b.start = headroom;
        b.end = end;
        b.meta = PackedMeta::NONE;
        true
    }

    /// The whole writable space from the data start to the end of the buffer.
    pub fn spare_from_start(&mut self) -> &mut [u8] {
        let b = self.b_mut();
        &mut b.buf[b.start..]
    }
}

impl Drop for HeapFrame {
    fn drop(&mut self) {
        let Some(mut b) = self.0.take() else {
            return;
        };
        if let Some(pool) = b.pool.take() {
            // A full pool simply frees the buffer: the pool bounds cached memory.
            let _ = pool.free.push(b);
        }
    }
}

impl Frame for HeapFrame {
    #[inline]
    fn data(&self) -> &[u8] {
        let b = self.b();
        &b.buf[b.start..b.end]
    }
    #[inline]
    fn data_mut(&mut self) -> &mut [u8] {
        let b = self.b_mut();
        &mut b.buf[b.start..b.end]
    }
    #[inline]
    fn headroom(&self) -> usize {
        self.b().start
    }
    #[inline]
    fn tailroom(&self) -> usize {
        let b = self.b();
        b.buf.len() - b.end
    }
    #[inline]
    fn prepend(&mut self, n: usize) -> Result<&mut [u8], BufferError> {
        let b = self.b_mut();
        if n > b.start {
            return Err(BufferError::NoHeadroom);
        }
        b.start -= n;
        Ok(&mut b.buf[b.start..b.start + n])
    }
    #[inline]
    fn append(&mut self, n: usize) -> Result<&mut [u8], BufferError> {
        let b = self.b_mut();
        if n > b.buf.len() - b.end {
            return Err(BufferError::NoTailroom);
        }
        let old = b.end;
        b.end += n;
        Ok(&mut b.buf[old..b.end])
    }
    #[inline]
    fn trim_front(&mut self, n: usize) {
        let b = self.b_mut();
        b.start += n.min(b.end - b.start);
    }
    #[inline]
    fn truncate(&mut self, len: usize) {
        let b = self.b_mut();
        if len < b.end - b.start {
            b.end = b.start + len;
        }
    }
    /// The data's extent, as `data().len()` but without slicing the buffer (and so
    /// without its bounds checks): `start <= end <= buf.len()` always holds.
    #[inline]
    fn len(&self) -> usize {
        let b = self.b();
        b.end - b.start
    }
    #[inline]
    fn is_empty(&self) -> bool {
        let b = self.b();
        b.end == b.start
    }
    #[inline]
    fn rx_meta(&self) -> RxMeta {
        self.b().meta.rx()
    }
    #[inline]
    fn set_tx_offload(&mut self, offload: TxOffload) {
        self.b_mut().meta.set_tx(offload);
    }
    fn try_clone(&self) -> Option<HeapFrame> {
        let data = self.data();
        let b = self.b();
        let mut copy = match &b.pool {
            Some(pool) => {
                let mut c = pool.alloc(data.len())?;
                c.data_mut().copy_from_slice(data);
                c
            }
            None => HeapFrame::from_slice(data, b.start),
        };
        copy.set_rx_meta(b.meta.rx());
        Some(copy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heap_frame_headroom_and_pool_recycling() {
        let pool = FramePool::new(4, 256, 64);
        let mut f = pool.alloc(100).unwrap();
        assert_eq!(f.len(), 100);
        assert_eq!(f.headroom(), 64);
        assert_eq!(f.tailroom(), 92);
        f.prepend(14).unwrap().fill(0xaa);
        assert_eq!(f.len(), 114);
        assert_eq!(f.data()[0], 0xaa);
        assert_eq!(f.prepend(51), Err(BufferError::NoHeadroom));
        f.trim_front(14);
        f.truncate(10);
        assert_eq!(f.len(), 10);
        assert_eq!(f.append(300).err(), Some(BufferError::NoTailroom));
        assert!(pool.alloc(193).is_none());
        drop(f);
        assert_eq!(pool.free_count(), 1);
        let _g = pool.alloc(10).unwrap();
        assert_eq!(pool.free_count(), 0);
    }

    /// `reuse` takes exactly what fits in the buffer, and leaves the frame as it was
    /// otherwise, an overflowing headroom and length included.
    #[test]
    fn reuse_takes_what_fits_and_nothing_else() {
        let mut f = HeapFrame::from_slice(&[7; 100], 28);
        for (headroom, len) in [(29, 100), (128, 1), (usize::MAX, 1), (1, usize::MAX)] {
            assert!(!f.reuse(headroom, len), "{headroom} {len}");
            assert_eq!((f.headroom(), f.len()), (28, 100));
        }
        f.set_tx_offload(TxOffload {
            l2_len: 14,
            l3_len: 20,
            l4_len: 20,
            ipv4_csum: true,
            l4_csum: None,
            tso_mss: 0,
        });
        for (headroom, len) in [(28, 100), (0, 128), (64, 0), (128, 0), (10, 20)] {
            assert!(f.reuse(headroom, len), "{headroom} {len}");
            assert_eq!((f.headroom(), f.len()), (headroom, len));
            assert_eq!(f.tx_offload(), TxOffload::default());
        }
    }
}
