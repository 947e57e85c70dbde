//! The in-memory link: two [`LinkEnd`]s joined by a pair of lock-free rings, each
//! direction with its own seeded [`Impairments`], and optional pcap capture.
//!
//! Every protocol test and the network simulation run two stacks over this link. It
//! reads no clock and no entropy source: each end is told the time with
//! [`LinkEnd::set_now`], and every loss, duplicate, reordering, bit flip and jitter draw
//! comes from a [`Rand`](crate::rand::Rand) seeded per direction. A run is therefore a
//! pure function of its seeds and inputs, so thousands of seeds can run in seconds and a
//! failing one is replayed exactly, with a [`PcapCapture`] to look at in Wireshark.
//!
//! The same link carries benchmarks (two stacks on two threads), so the unimpaired path
//! is cheap: a burst moves through a single-producer single-consumer ring (`rtrb`) with
//! no lock, no locked instruction and no allocation per frame; frames are [`HeapFrame`]s whose buffers go back to the sending
//! end's [`FramePool`] when the receiver drops them. A stack hands each received burst
//! back through [`Device::recycle`] (a burst of one through [`Device::recycle_one`]),
//! and the receiving end keeps up to two bursts of those frames for its own next
//! transmissions, so request/response traffic moves frames with no atomic operation
//! on a shared pool.
//!
//! ## Time
//!
//! A frame is stamped on `tx_burst` with the sender's clock plus what its direction adds
//! (serialization at `rate_bps`, `delay`, `jitter`), and `rx_burst` hands it out once the
//! receiver's clock has reached that instant. A direction with no delay, jitter or rate
//! is untimed: its frames are deliverable at once, whatever the clocks say, in order.
//!
//! ## Capacity
//!
//! Each direction's ring holds `capacity` frames; when it is full `tx_burst` takes no
//! more and leaves the rest in the caller's batch, like a NIC whose TX ring is full. On a
//! timed direction the receiver moves frames off the ring into a time-ordered in-flight
//! queue of at most `capacity` more frames (the "wire"), so up to `2 * capacity` frames
//! can be in flight; size `capacity` for the bandwidth-delay product you simulate.

mod impair;
mod pcap;

#[cfg(test)]
mod tests;

pub use impair::{Impairer, Impairments, REORDER_MAX_HOLD};
pub use pcap::PcapCapture;

use alloc::boxed::Box;
use alloc::collections::{BinaryHeap, VecDeque};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::cmp::{Ordering, Reverse};
use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

use rtrb::{Consumer, Producer, RingBuffer};

use crate::device::{Capabilities, ChecksumCaps, Device, Frame, FramePool, HeapFrame, RxMeta};
use crate::time::Instant;

use impair::Wire;

/// Bytes of link header a frame may carry beyond the MTU: Ethernet (14) + one VLAN tag (4).
pub const LINK_HEADER_MAX: usize = 18;

/// Frames moved per `rx_burst`/`tx_burst` at most, as advertised in [`Capabilities`].
pub const MAX_BURST: usize = 64;

/// How to build a link.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkConfig {
    /// Frames each direction's ring holds.
    pub capacity: usize,
    /// Largest IP packet carried; frames may be `mtu + LINK_HEADER_MAX` bytes long.
    pub mtu: usize,
    /// What happens to frames sent by end A.
    pub a_to_b: Impairments,
    /// What happens to frames sent by end B.
    pub b_to_a: Impairments,
    /// Free buffers each end's [`FramePool`] keeps for reuse.
    pub pool_frames: usize,
    /// Headroom in front of the data of every allocated frame.
    pub headroom: usize,
    /// Model a NIC (or Linux's `lo`) with checksum and segmentation offload: each end
    /// advertises IPv4/TCP/UDP transmit and receive checksum offload and TSO up to
    /// [`OFFLOAD_TSO_MAX`] bytes, and delivers every frame it carried with
    /// [`RxMeta::ipv4_csum_ok`] and [`RxMeta::l4_csum_ok`] set (what a NIC that verified
    /// them, or `lo`'s `CHECKSUM_UNNECESSARY`, tells the stack) and, for a TSO frame,
    /// [`RxMeta::gso_size`] = the MSS the sender asked for: the receiver gets it as one
    /// LRO/GRO super-segment, as the NIC that cut it into MTU-sized packets and the one
    /// that coalesced them again would hand it over. The MTU is unchanged: no packet
    /// the link conceptually carries is larger. Off by default, so every protocol test
    /// exercises the software checksums. With offloads, a frame flipped by `corrupt`
    /// loses its verified flags (the receiving NIC's check failed), so the stack
    /// verifies it in software and drops it; `loss` drops a TSO frame whole (every
    /// packet of the burst, where a real wire would lose one of them).
    pub offloads: bool,
}

/// Largest IP packet a link with [`LinkConfig::offloads`] accepts for segmentation
/// (TSO), as Linux's 64 KiB GSO limit.
pub const OFFLOAD_TSO_MAX: usize = 65_535;

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig {
            capacity: 1024,
            mtu: 1500,
            a_to_b: Impairments::default(),
            b_to_a: Impairments::default(),
            pool_frames: 4096,
            headroom: 128,
            offloads: false,
        }
    }
}

/// Counters of one direction of a link. `sent` counts frames `tx_burst` took; each is
/// then delivered, filtered, lost, queue-dropped or oversize-dropped, and duplicates add
/// one delivery each, so on a drained link
/// `delivered == sent + duplicated - filtered - lost - queue_dropped - oversize`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Frames taken by `tx_burst`.
    pub sent: u64,
    /// Frames handed out by the receiver's `rx_burst` (injected frames not included).
    pub delivered: u64,
    /// Frames dropped by `loss`.
    pub lost: u64,
    /// Extra copies made by `duplicate`.
    pub duplicated: u64,
    /// Frames delivered after their successor by `reorder` (jitter reordering not counted).
    pub reordered: u64,
    /// Frames with one bit flipped by `corrupt`.
    pub corrupted: u64,
    /// Frames tail-dropped because the rate limiter's backlog was over `queue_limit_bytes`.
    pub queue_dropped: u64,
    /// `tx_burst` calls that stopped early because the ring was full (the frames not taken
    /// stayed with the caller; none was dropped).
    pub ring_full: u64,
    /// Frames longer than `mtu + LINK_HEADER_MAX`, dropped as a NIC would.
    pub oversize: u64,
    /// Frames dropped by the sender's [drop filter](LinkEnd::set_drop_filter).
    pub filtered: u64,
}

/// Counters written by the sending end. Aligned apart from [`RxCounters`] so the two
/// threads of a benchmark do not share a cache line.
#[derive(Debug, Default)]
#[repr(align(128))]
struct TxCounters {
    sent: AtomicU64,
    lost: AtomicU64,
    duplicated: AtomicU64,
    reordered: AtomicU64,
    corrupted: AtomicU64,
    queue_dropped: AtomicU64,
    ring_full: AtomicU64,
    oversize: AtomicU64,
    filtered: AtomicU64,
}

/// Add `n` to a counter that only this end writes (`sent` by the sending end,
/// `delivered` by the receiving one; a [`LinkEnd`] is not `Clone` and its methods take
/// `&mut self`): a load and a store, not a locked read-modify-write, which costs
/// some 20 cycles on x86 (perf showed the `lock add` as a fifth of the receive path's
/// time in a request/response run). Readers on other threads still see every value
/// whole, and one written later than the one before.
#[inline(always)]
fn bump(counter: &AtomicU64, n: u64) {
    counter.store(counter.load(Relaxed).wrapping_add(n), Relaxed);
}

/// Counters written by the receiving end.
#[derive(Debug, Default)]
#[repr(align(128))]
struct RxCounters {
    delivered: AtomicU64,
}

/// A frame on a timed direction's ring: deliverable at `at`. Only the frame and one
/// word, since the ring moves it in and out by value.
struct Slot {
    frame: HeapFrame,
    at: Instant,
}

/// A direction's ring, one end of it each for the sending and the receiving end. An
/// untimed direction delivers in order whatever the clocks say, so its ring holds bare
/// frames: a push or pop moves no delivery time, and a frame popped goes straight into
/// the receive batch where a [`Slot`] is taken apart first.
///
/// Single producer, single consumer by construction (each end owns its half), so the
/// ring is `rtrb`'s SPSC ring rather than crossbeam's MPMC `ArrayQueue`, chosen on a
/// measurement: in a request/response run, perf put a fifth of the receive path's
/// samples on `ArrayQueue::pop`'s `lock cmpxchg` (and the push takes another); an SPSC
/// ring moves a frame with plain loads and stores (acquire/release), no locked
/// instruction and no fence.
enum TxRing {
    Untimed(Producer<HeapFrame>),
    Timed(Producer<Slot>),
}

/// The receiving end's half of a direction's ring (see [`TxRing`]).
enum RxRing {
    Untimed(Consumer<HeapFrame>),
    Timed(Consumer<Slot>),
}

impl TxRing {
    /// Free slots: exact for this, the only producer (the consumer can only make it
    /// grow meanwhile, so pushes within it cannot fail).
    fn slots(&self) -> usize {
        match self {
            TxRing::Untimed(q) => q.slots(),
            TxRing::Timed(q) => q.slots(),
        }
    }

    /// Put `frame` on the ring, deliverable at `at` (dropped by an untimed ring);
    /// `false` if the ring is full. Always inlined: out of line it is a call with a
    /// full prologue per frame, and the frame is copied once more into its argument.
    #[inline(always)]
    fn push(&mut self, frame: HeapFrame, at: Instant) -> bool {
        match self {
            TxRing::Untimed(q) => q.push(frame).is_ok(),
            TxRing::Timed(q) => q.push(Slot { frame, at }).is_ok(),
        }
    }
}

impl RxRing {
    #[inline]
    fn is_empty(&self) -> bool {
        match self {
            RxRing::Untimed(q) => q.is_empty(),
            RxRing::Timed(q) => q.is_empty(),
        }
    }

    /// The oldest frame and its delivery time (`Instant::ZERO` on an untimed ring).
    fn pop(&mut self) -> Option<(HeapFrame, Instant)> {
        match self {
            RxRing::Untimed(q) => q.pop().ok().map(|f| (f, Instant::ZERO)),
            RxRing::Timed(q) => q.pop().ok().map(|s| (s.frame, s.at)),
        }
    }
}

/// A frame on a timed direction's wire: `seq` keeps equal instants in send order. It
/// is numbered by the receiver as it comes off the ring, which holds frames in send
/// order, so the ring's slots need not carry it.
struct InFlight {
    frame: HeapFrame,
    at: Instant,
    seq: u64,
}

impl InFlight {
    fn key(&self) -> (Instant, u64) {
        (self.at, self.seq)
    }
}

impl PartialEq for InFlight {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}
impl Eq for InFlight {}
impl PartialOrd for InFlight {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for InFlight {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key().cmp(&other.key())
    }
}

/// One direction's counters, shared by its two ends (the ring itself is split between
/// them: [`TxRing`], [`RxRing`]).
struct Channel {
    tx: TxCounters,
    rx: RxCounters,
}

impl Channel {
    /// A direction with the ring its impairments need (`timed`: frames carry a
    /// delivery time): its counters, and the sending and the receiving half of its ring.
    fn new(capacity: usize, timed: bool) -> (Arc<Channel>, TxRing, RxRing) {
        let capacity = capacity.max(1);
        let (tx, rx) = if timed {
            let (p, c) = RingBuffer::new(capacity);
            (TxRing::Timed(p), RxRing::Timed(c))
        } else {
            let (p, c) = RingBuffer::new(capacity);
            (TxRing::Untimed(p), RxRing::Untimed(c))
        };
        let channel = Arc::new(Channel {
            tx: TxCounters::default(),
            rx: RxCounters::default(),
        });
        (channel, tx, rx)
    }

    fn stats(&self) -> LinkStats {
        LinkStats {
            sent: self.tx.sent.load(Relaxed),
            delivered: self.rx.delivered.load(Relaxed),
            lost: self.tx.lost.load(Relaxed),
            duplicated: self.tx.duplicated.load(Relaxed),
            reordered: self.tx.reordered.load(Relaxed),
            corrupted: self.tx.corrupted.load(Relaxed),
            queue_dropped: self.tx.queue_dropped.load(Relaxed),
            ring_full: self.tx.ring_full.load(Relaxed),
            oversize: self.tx.oversize.load(Relaxed),
            filtered: self.tx.filtered.load(Relaxed),
        }
    }
}

/// The part of an end that puts frames on its transmit ring.
struct Emitter {
    ring: Arc<Channel>,
    /// This direction's ring, the sending half.
    tx: TxRing,
    pool: Arc<FramePool>,
    headroom: usize,
    capture: Option<Arc<PcapCapture>>,
    /// Free ring slots as last counted, less the pushes since: a lower bound on the true
    /// room, since only this (the producer) fills the ring and the consumer only empties
    /// it. Counting reads the consumer's index (a cache line the other end writes); the
    /// bound spares that on every burst but about one per `capacity` frames.
    room_hint: usize,
}

impl Emitter {
    /// Free ring slots: exact when fewer than `want` were known free, else a lower bound
    /// of at least `want` (enough for the caller, who asks for what it needs).
    #[inline]
    fn room(&mut self, want: usize) -> usize {
        if self.room_hint < want {
            self.room_hint = self.tx.slots();
        }
        self.room_hint
    }

    /// Put `frame` (and a copy if `dup`) on the ring, deliverable at `at`, recording what
    /// goes on the wire. The caller has reserved the slots.
    fn emit(&mut self, frame: HeapFrame, at: Instant, dup: bool, now: Instant) {
        let copy = dup.then(|| {
            let mut c = copy_frame(&self.pool, frame.data(), self.headroom);
            c.set_rx_meta(frame.rx_meta());
            c
        });
        self.push(frame, at, now);
        if let Some(copy) = copy {
            self.push(copy, at, now);
        }
    }

    fn push(&mut self, frame: HeapFrame, at: Instant, now: Instant) {
        if let Some(cap) = &self.capture {
            cap.record(now, frame.data());
        }
        self.room_hint = self.room_hint.saturating_sub(1);
        if !self.tx.push(frame, at) {
            // Unreachable: slots were reserved by the only producer. Count it rather
            // than lose a frame silently.
            debug_assert!(false, "link ring overflow despite reservation");
            self.ring.tx.ring_full.fetch_add(1, Relaxed);
        }
    }
}

/// A frame holding a copy of `data`, from `pool` when it fits.
fn copy_frame(pool: &Arc<FramePool>, data: &[u8], headroom: usize) -> HeapFrame {
    match pool.alloc(data.len()) {
        Some(mut f) => {
            f.data_mut().copy_from_slice(data);
            f
        }
        None => HeapFrame::from_slice(data, headroom),
    }
}

/// Whether the link carries `frame`: at most `max_frame` bytes, or, with offloads
/// (`offload` = the longest TSO frame), that many when it asks for TSO. With offloads,
/// stamps what the receiving NIC reports: checksums verified (the sender's NIC filled
/// them in), and the MSS of a TSO frame, which arrives as one coalesced super-segment.
#[inline]
fn admit(frame: &mut HeapFrame, max_frame: usize, offload: Option<usize>) -> bool {
    let Some(max_tso) = offload else {
        return frame.len() <= max_frame;
    };
    let tso_mss = frame.tx_offload().tso_mss;
    let limit = if tso_mss > 0 { max_tso } else { max_frame };
    if frame.len() > limit {
        return false;
    }
    frame.set_rx_meta(RxMeta {
        ipv4_csum_ok: true,
        l4_csum_ok: true,
        gso_size: tso_mss,
        ..RxMeta::default()
    });
    true
}

/// Put `frame` on a transparent direction's ring, if the link carries it ([`admit`]):
/// the plain transmit path, with a slot reserved by the caller. Always inlined into
/// `tx_burst`: out of line it costs a call and one more copy of every frame.
#[inline(always)]
fn put_plain(
    ring: &Channel,
    tx: &mut TxRing,
    mut frame: HeapFrame,
    max_frame: usize,
    offload: Option<usize>,
) {
    if !admit(&mut frame, max_frame, offload) {
        return count_oversize(ring);
    }
    push_admitted(ring, tx, frame);
}

/// Count a frame [`admit`] refused. Out of line and cold, as every branch off the
/// plain transmit path: with these marks the compiler takes that path for the hot
/// one and inlines `rtrb`'s push into a burst of one, which it kept out of line
/// behind half a dozen branches of unknown odds (a call, and the frame and the
/// result through memory, on every frame sent).
#[cold]
#[inline(never)]
fn count_oversize(ring: &Channel) {
    ring.tx.oversize.fetch_add(1, Relaxed);
}

/// Count a burst of one that found the ring full; 0 frames taken. Cold (see
/// [`count_oversize`]).
#[cold]
#[inline(never)]
fn count_ring_full(ring: &Channel) -> usize {
    ring.tx.ring_full.fetch_add(1, Relaxed);
    0
}

/// [`put_plain`] past [`admit`].
#[inline(always)]
fn push_admitted(ring: &Channel, tx: &mut TxRing, frame: HeapFrame) {
    if !tx.push(frame, Instant::ZERO) {
        // Unreachable: the only producer reserved the slot. Count it rather than lose
        // a frame silently.
        debug_assert!(false, "link ring overflow despite reservation");
        ring.tx.ring_full.fetch_add(1, Relaxed);
    }
}

/// Frames off an untimed ring, in order, into `out` until `n` (those already in `out`
/// this burst) reaches `max`; returns the new `n`.
///
/// Counts what the ring holds first (one load of the producer's index), then pops
/// that many, each found by the consumer's cached view of that index: popping until
/// the ring says it is empty would load the index once more, after the last frame.
#[inline(always)]
fn pop_frames(
    ring: &mut Consumer<HeapFrame>,
    out: &mut Vec<HeapFrame>,
    max: usize,
    n: usize,
) -> usize {
    let ready = ring.slots().min(max.saturating_sub(n));
    n + pop_ready(ring, out, ready)
}

/// [`pop_frames`] past its count: the `ready` frames the ring was found to hold, into
/// `out`; returns how many (`ready`).
#[inline(always)]
fn pop_ready(ring: &mut Consumer<HeapFrame>, out: &mut Vec<HeapFrame>, ready: usize) -> usize {
    let mut got = 0;
    while got < ready {
        // Never empty here: the only consumer counted these frames on the ring.
        let Ok(frame) = ring.pop() else { break };
        out.push(frame);
        got += 1;
    }
    got
}

/// A test's choice of frames to drop: called with each frame an end sends, before any
/// impairment; `true` drops it.
pub type DropFilter = Box<dyn FnMut(&[u8]) -> bool + Send>;

/// One end of an in-memory link: a [`Device`] with one queue whose transmit ring is the
/// other end's receive ring. `Send`, so the two ends can run on two threads.
pub struct LinkEnd {
    emitter: Emitter,
    filter: Option<DropFilter>,
    wire: Wire,
    /// The wire is transparent and nothing captures or filters what this end sends:
    /// `tx_burst` moves frames untouched. Kept by the calls that change the capture
    /// and the filter (the impairments are fixed), so a burst asks one flag.
    tx_plain: bool,
    rx: Arc<Channel>,
    /// The receive direction's ring, the receiving half.
    rx_ring: RxRing,
    rx_timed: bool,
    in_flight: BinaryHeap<Reverse<InFlight>>,
    /// Frames moved into `in_flight` so far: the last one's [`InFlight::seq`].
    in_flight_seq: u64,
    injected: VecDeque<HeapFrame>,
    /// Received frames the stack gave back ([`Device::recycle`]), reused by
    /// [`alloc_tx`](Device::alloc_tx) before the pool: a frame that comes in and one
    /// that goes out cost no atomic operation on a shared pool. At most `spare_max`
    /// with `spare_top`; the excess goes back to the pools. Taken last in, first out.
    spare: Vec<HeapFrame>,
    /// The spare frame kept last, on top of `spare` (which holds the older ones): a
    /// frame received and given back, then taken for the next transmission (what
    /// request/response traffic does with every frame) moves in and out of one slot,
    /// with no length or capacity to check.
    spare_top: Option<HeapFrame>,
    spare_max: usize,
    caps: Capabilities,
    max_frame: usize,
    /// With offloads: buffers for TSO frames (longer than `max_frame`), allocated only
    /// when a TSO frame is first asked for, so small frames keep their small buffers.
    big_pool: Option<Arc<FramePool>>,
    /// With offloads: the longest frame that asks for TSO (`OFFLOAD_TSO_MAX` plus the
    /// link header, or `max_frame` when the MTU is that large already). `None`: the
    /// link offloads nothing.
    offload_max_frame: Option<usize>,
    capacity: usize,
    now: Instant,
}

impl fmt::Debug for LinkEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LinkEnd")
            .field("now", &self.now)
            .field("tx", &self.stats())
            .field("rx", &self.rx_stats())
            .field("in_flight", &self.in_flight.len())
            .field("injected", &self.injected.len())
            .field("filter", &self.filter.is_some())
            .finish()
    }
}

/// Two connected ends: frames sent on A arrive at B under `config.a_to_b`, and back.
pub fn pair(config: LinkConfig) -> (LinkEnd, LinkEnd) {
    let (ab, ab_tx, ab_rx) = Channel::new(config.capacity, config.a_to_b.is_timed());
    let (ba, ba_tx, ba_rx) = Channel::new(config.capacity, config.b_to_a.is_timed());
    let a = LinkEnd::new(
        &config,
        (config.a_to_b, config.b_to_a),
        (Arc::clone(&ab), ab_tx),
        (Arc::clone(&ba), ba_rx),
    );
    let b = LinkEnd::new(
        &config,
        (config.b_to_a, config.a_to_b),
        (ba, ba_tx),
        (ab, ab_rx),
    );
    (a, b)
}

/// [`pair`] with both ends recording into `capture`.
pub fn pair_with_capture(config: LinkConfig, capture: Arc<PcapCapture>) -> (LinkEnd, LinkEnd) {
    let (mut a, mut b) = pair(config);
    a.capture(Arc::clone(&capture));
    b.capture(capture);
    (a, b)
}

impl LinkEnd {
    fn new(
        config: &LinkConfig,
        (tx_imp, rx_imp): (Impairments, Impairments),
        (tx, tx_ring): (Arc<Channel>, TxRing),
        (rx, rx_ring): (Arc<Channel>, RxRing),
    ) -> LinkEnd {
        let max_frame = config.mtu + LINK_HEADER_MAX;
        let pool = FramePool::new(
            config.pool_frames,
            config.headroom + max_frame,
            config.headroom,
        );
        let rx_timed = rx_imp.is_timed();
        let capacity = config.capacity.max(1);
        let all = ChecksumCaps {
            ipv4: true,
            tcp: true,
            udp: true,
        };
        let (csum, tso_max, big_pool) = if config.offloads && config.mtu < OFFLOAD_TSO_MAX {
            // A few super-frames in flight per direction fill a 1 MiB window; keep no
            // more than that many 64 KiB buffers.
            let cached = config.pool_frames.min(64);
            let big = FramePool::new(
                cached,
                config.headroom + OFFLOAD_TSO_MAX + LINK_HEADER_MAX,
                config.headroom,
            );
            (all, OFFLOAD_TSO_MAX, Some(big))
        } else if config.offloads {
            // The MTU is already as large as TSO would make frames: checksums only.
            (all, 0, None)
        } else {
            (ChecksumCaps::default(), 0, None)
        };
        LinkEnd {
            emitter: Emitter {
                ring: tx,
                tx: tx_ring,
                pool,
                headroom: config.headroom,
                capture: None,
                room_hint: 0,
            },
            filter: None,
            tx_plain: tx_imp.is_transparent(),
            wire: Wire::new(tx_imp),
            rx,
            rx_ring,
            rx_timed,
            in_flight: if rx_timed {
                BinaryHeap::with_capacity(capacity)
            } else {
                BinaryHeap::new()
            },
            in_flight_seq: 0,
            injected: VecDeque::new(),
            // Two bursts' worth, and never more than a quarter of the pool (64 KiB
            // frames at large MTUs).
            spare: Vec::with_capacity((2 * MAX_BURST).min(config.pool_frames / 4)),
            spare_top: None,
            spare_max: (2 * MAX_BURST).min(config.pool_frames / 4),
            caps: Capabilities {
                mtu: config.mtu,
                max_burst: MAX_BURST,
                rx_checksum: csum,
                tx_checksum: csum,
                tso_max,
                rss_hash: false,
                rx_queues: 1,
                tx_queues: 1,
                headroom: config.headroom,
            },
            max_frame,
            big_pool,
            offload_max_frame: config.offloads.then_some(if tso_max > 0 {
                OFFLOAD_TSO_MAX + LINK_HEADER_MAX
            } else {
                max_frame
            }),
            capacity,
            now: Instant::ZERO,
        }
    }

    /// Set this end's clock. Frames it sends are stamped with it; frames it receives are
    /// handed out once it reaches their delivery time. Also sends a frame held back for
    /// reordering once it has waited [`REORDER_MAX_HOLD`] for a successor.
    pub fn set_now(&mut self, now: Instant) {
        self.now = now;
        if !self.wire.holds() {
            return;
        }
        let slots = self.wire.held_slots();
        if self.emitter.room(slots) >= slots {
            let emitter = &mut self.emitter;
            self.wire
                .release_stale(now, |f, at, dup| emitter.emit(f, at, dup, now));
        }
    }

    /// This end's clock.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Counters of the direction this end sends on.
    pub fn stats(&self) -> LinkStats {
        self.emitter.ring.stats()
    }

    /// Counters of the direction this end receives on.
    pub fn rx_stats(&self) -> LinkStats {
        self.rx.stats()
    }

    /// Record every frame this end puts on the wire into `capture`, and every frame
    /// [`inject`](LinkEnd::inject)ed into it. Give both ends the same capture to see
    /// both directions in one file.
    ///
    /// What is recorded is what the receiver will get: frames after the impairments, so
    /// lost and tail-dropped frames are absent, duplicates appear twice, corrupted frames
    /// with the flipped bit, reordered frames in their new order. The timestamp is the
    /// sender's clock when the frame went on the wire (delay is not applied), like
    /// tcpdump on the sender behind a lossy NIC.
    pub fn capture(&mut self, capture: Arc<PcapCapture>) {
        self.emitter.capture = Some(capture);
        self.tx_plain = false;
    }

    /// Stop capturing.
    pub fn stop_capture(&mut self) {
        self.emitter.capture = None;
        self.update_tx_plain();
    }

    /// Drop the frames this end sends for which `filter` returns true (`None`: stop
    /// filtering), counted in [`LinkStats::filtered`]. It runs before the impairments, so
    /// a dropped frame takes no random draw: the rest of the run is what it would have
    /// been. This is how a test loses one particular segment (the SYN, the last ACK, a
    /// FIN) rather than a random one.
    pub fn set_drop_filter(&mut self, filter: Option<DropFilter>) {
        self.filter = filter;
        self.update_tx_plain();
    }

    /// Work out [`tx_plain`](Self::tx_plain) again after a change of capture or filter.
    fn update_tx_plain(&mut self) {
        self.tx_plain =
            self.wire.is_transparent() && self.emitter.capture.is_none() && self.filter.is_none();
    }

    /// Queue raw bytes to be received by this end ahead of anything on the link, with no
    /// impairment and no length check: how tests feed malformed frames to a stack.
    pub fn inject(&mut self, bytes: &[u8]) {
        if let Some(cap) = &self.emitter.capture {
            cap.record(self.now, bytes);
        }
        let frame = copy_frame(&self.emitter.pool, bytes, self.emitter.headroom);
        self.injected.push_back(frame);
    }

    /// The pool this end's transmit frames come from (and return to).
    pub fn pool(&self) -> &Arc<FramePool> {
        &self.emitter.pool
    }

    /// When the next frame can be received: `Some(t)` with `t <= now()` means now, `None`
    /// means nothing is on the way. A simulation advances its clock to the earliest of
    /// this and the stacks' own timers.
    pub fn next_rx_at(&mut self) -> Option<Instant> {
        if !self.injected.is_empty() {
            return Some(self.now);
        }
        if !self.rx_timed {
            return (!self.rx_ring.is_empty()).then_some(Instant::ZERO);
        }
        self.fill_in_flight();
        self.in_flight.peek().map(|s| s.0.at)
    }

    /// When [`set_now`](LinkEnd::set_now) will send, on its own, a frame this end holds
    /// back for reordering (`None`: none is held). A simulation that skips idle time
    /// must not skip past it, or the frame arrives later than the link says.
    pub fn next_release_at(&self) -> Option<Instant> {
        self.wire.release_at()
    }

    /// [`Device::rx_burst`] on another queue than 0 (there is none), with injected
    /// frames or a timed direction. Cold, as the branches off the plain transmit path
    /// (see [`count_oversize`]).
    #[cold]
    #[inline(never)]
    fn receive(&mut self, queue: u16, out: &mut Vec<HeapFrame>, max: usize) -> usize {
        if queue != 0 {
            return 0;
        }
        let mut n = 0;
        while n < max {
            match self.injected.pop_front() {
                Some(f) => out.push(f),
                None => break,
            }
            n += 1;
        }
        if !self.rx_timed {
            return self.receive_ring(out, max, n);
        }
        let from_link_start = n;
        self.fill_in_flight();
        while n < max && self.in_flight.peek().is_some_and(|s| s.0.at <= self.now) {
            if let Some(Reverse(slot)) = self.in_flight.pop() {
                out.push(slot.frame);
                n += 1;
            }
        }
        if n > from_link_start {
            bump(&self.rx.rx.delivered, (n - from_link_start) as u64);
        }
        n
    }

    /// [`Device::rx_burst_single`] past its usual case: [`receive`](Self::receive),
    /// with a burst of one handed back as the provided method does.
    #[cold]
    #[inline(never)]
    fn receive_single(
        &mut self,
        queue: u16,
        out: &mut Vec<HeapFrame>,
        max: usize,
    ) -> Option<HeapFrame> {
        if self.receive(queue, out, max) == 1 && out.len() == 1 {
            return out.pop();
        }
        None
    }

    /// An untimed direction's receive: frames off the ring, in order, until `n`
    /// (those already in `out` this burst) reaches `max`.
    #[inline]
    fn receive_ring(&mut self, out: &mut Vec<HeapFrame>, max: usize, mut n: usize) -> usize {
        let from_link_start = n;
        // Most polls of a busy link find the ring empty: the pop says so with one load
        // of the producer's index (cached while it shows frames to take).
        match &mut self.rx_ring {
            RxRing::Untimed(ring) => n = pop_frames(ring, out, max, n),
            // Not built for an untimed direction; handled all the same.
            RxRing::Timed(ring) => {
                while n < max {
                    match ring.pop() {
                        Ok(Slot { frame, .. }) => out.push(frame),
                        Err(_) => break,
                    }
                    n += 1;
                }
            }
        }
        if n > from_link_start {
            bump(&self.rx.rx.delivered, (n - from_link_start) as u64);
        }
        n
    }

    /// [`Device::alloc_tx`] past its reuse of the top spare frame: a TSO frame, or a
    /// frame from the older spares or the pool.
    fn alloc_slow(&mut self, len: usize) -> Option<HeapFrame> {
        if len > self.max_frame {
            // A TSO frame, from the pool of 64 KiB buffers (never the spare frames,
            // which are mostly MTU-sized).
            return match (&self.big_pool, self.offload_max_frame) {
                (Some(big), Some(max)) if len <= max => big.alloc(len),
                _ => None,
            };
        }
        while let Some(mut f) = self.spare.pop() {
            if f.reuse(self.emitter.headroom, len) {
                return Some(f);
            }
            // An injected frame of another size: let it go.
        }
        self.emitter.pool.alloc(len)
    }

    /// [`Device::recycle_one`] past its usual case: `frame` goes on top of the spare
    /// frames if there is room, else back to its pool.
    #[inline]
    fn keep_spare(&mut self, frame: HeapFrame) {
        let kept = self.spare.len() + usize::from(self.spare_top.is_some());
        if kept >= self.spare_max {
            return;
        }
        if let Some(top) = self.spare_top.replace(frame) {
            self.spare.push(top);
        }
    }

    /// [`Device::tx_burst`] on another queue than 0 (there is none), of no frame, or
    /// through the impairments, the drop filter or the capture: out of line, so the
    /// plain path stays small, and cold (see [`count_oversize`]).
    #[cold]
    #[inline(never)]
    fn transmit_other(&mut self, queue: u16, frames: &mut Vec<HeapFrame>) -> usize {
        if queue != 0 || frames.is_empty() {
            return 0;
        }
        self.transmit_impaired(frames)
    }

    /// [`Device::tx_burst`] through the impairments, the drop filter or the capture.
    fn transmit_impaired(&mut self, frames: &mut Vec<HeapFrame>) -> usize {
        let per_frame = self.wire.slots_per_frame();
        let held = self.wire.held_slots();
        let room = self.emitter.room(frames.len() * per_frame + held);
        let counters = &self.emitter.ring.tx;
        let n = (room.saturating_sub(held) / per_frame).min(frames.len());
        if n < frames.len() {
            counters.ring_full.fetch_add(1, Relaxed);
        }
        if n == 0 {
            return 0;
        }
        bump(&counters.sent, n as u64);
        let max_frame = self.max_frame;
        let offload = self.offload_max_frame;
        let now = self.now;
        // One handle on the counters for the burst, so the emitter can be borrowed
        // mutably by the closure while the wire counts into them.
        let channel = Arc::clone(&self.emitter.ring);
        let emitter = &mut self.emitter;
        for mut frame in frames.drain(..n) {
            if !admit(&mut frame, max_frame, offload) {
                channel.tx.oversize.fetch_add(1, Relaxed);
                continue;
            }
            if let Some(filter) = self.filter.as_mut() {
                if filter(frame.data()) {
                    channel.tx.filtered.fetch_add(1, Relaxed);
                    continue;
                }
            }
            self.wire.transmit(frame, now, &channel.tx, |f, at, dup| {
                emitter.emit(f, at, dup, now)
            });
        }
        n
    }

    /// Move frames from the ring to the time-ordered in-flight queue, up to its bound.
    fn fill_in_flight(&mut self) {
        while self.in_flight.len() < self.capacity {
            match self.rx_ring.pop() {
                Some((frame, at)) => {
                    self.in_flight_seq += 1;
                    self.in_flight.push(Reverse(InFlight {
                        frame,
                        at,
                        seq: self.in_flight_seq,
                    }));
                }
                None => break,
            }
        }
    }
}

impl Device for LinkEnd {
    type Frame = HeapFrame;

    fn capabilities(&self) -> Capabilities {
        self.caps
    }

    /// Injected frames first, then frames from the link that are due at this end's
    /// clock. Only queue 0 exists.
    #[inline]
    fn rx_burst(&mut self, queue: u16, out: &mut Vec<HeapFrame>, max: usize) -> usize {
        if queue != 0 || !self.injected.is_empty() {
            return self.receive(queue, out, max);
        }
        // The usual case, inlined into the caller: an untimed direction (its ring holds
        // bare frames), nothing injected. Half the polls of request/response traffic
        // find the ring empty and stop at the first check.
        let RxRing::Untimed(ring) = &mut self.rx_ring else {
            return self.receive(queue, out, max);
        };
        let n = pop_frames(ring, out, max, 0);
        if n > 0 {
            bump(&self.rx.rx.delivered, n as u64);
        }
        n
    }

    /// [`rx_burst`](Device::rx_burst)'s usual case, with a ring that holds exactly one
    /// frame (or `max` 1) popped straight out: the push into the burst and the pop
    /// back out are saved. Anything else is `rx_burst`'s (the cold cases by the
    /// provided method's rule, so the same frames come out).
    #[inline]
    fn rx_burst_single(
        &mut self,
        queue: u16,
        out: &mut Vec<HeapFrame>,
        max: usize,
    ) -> Option<HeapFrame> {
        if queue != 0 || !self.injected.is_empty() {
            return self.receive_single(queue, out, max);
        }
        let RxRing::Untimed(ring) = &mut self.rx_ring else {
            return self.receive_single(queue, out, max);
        };
        let ready = ring.slots().min(max);
        if ready != 1 {
            let n = pop_ready(ring, out, ready);
            if n > 0 {
                bump(&self.rx.rx.delivered, n as u64);
            }
            return None;
        }
        // Never empty here: the only consumer counted this frame on the ring.
        let frame = ring.pop().ok()?;
        bump(&self.rx.rx.delivered, 1);
        Some(frame)
    }

    /// Takes frames from the front of `frames` while the ring has room for them (and
    /// for the duplicates and held-back frame they may release); the rest stay in
    /// `frames`, in order, and [`LinkStats::ring_full`] counts the call. Only queue 0
    /// exists.
    fn tx_burst(&mut self, queue: u16, frames: &mut Vec<HeapFrame>) -> usize {
        if queue != 0 || frames.is_empty() || !self.tx_plain {
            return self.transmit_other(queue, frames);
        }
        // Fast path: no per-frame decision, no capture, one slot per frame.
        let (max_frame, offload) = (self.max_frame, self.offload_max_frame);
        if frames.len() == 1 {
            // A burst of one (request/response traffic sends each segment alone): no
            // drain to set up and tear down, no batch arithmetic.
            if self.emitter.room(1) == 0 {
                return count_ring_full(&self.emitter.ring);
            }
            self.emitter.room_hint -= 1;
            let (ring, tx) = (&self.emitter.ring, &mut self.emitter.tx);
            bump(&ring.tx.sent, 1);
            if let Some(frame) = frames.pop() {
                put_plain(ring, tx, frame, max_frame, offload);
            }
            return 1;
        }
        let want = frames.len();
        let n = self.emitter.room(want).min(want);
        let tx = &self.emitter.ring.tx;
        if n < want {
            tx.ring_full.fetch_add(1, Relaxed);
        }
        if n == 0 {
            return 0;
        }
        bump(&tx.sent, n as u64);
        self.emitter.room_hint -= n;
        let (ring, tx) = (&self.emitter.ring, &mut self.emitter.tx);
        // The whole batch when it fits (the usual case): a drain with no tail to
        // move back.
        let taken = if n == want {
            frames.drain(..)
        } else {
            frames.drain(..n)
        };
        for frame in taken {
            put_plain(ring, tx, frame, max_frame, offload);
        }
        n
    }

    /// A frame from this end's spare frames or its pool; `None` if `len` is over
    /// `mtu + LINK_HEADER_MAX`.
    #[inline]
    fn alloc_tx(&mut self, len: usize) -> Option<HeapFrame> {
        // The usual case, inlined into the stack's output: the last frame received
        // and given back, reused as it is.
        if len <= self.max_frame {
            // The top spare frame, else the next older one.
            let spare = match self.spare_top.take() {
                None => self.spare.pop(),
                top => top,
            };
            if let Some(mut f) = spare {
                if f.reuse(self.emitter.headroom, len) {
                    return Some(f);
                }
                // An injected frame of another size: let it go.
            }
        }
        self.alloc_slow(len)
    }

    /// Keeps the frame for [`alloc_tx`](Device::alloc_tx) if fewer than `spare_max`
    /// are kept; else it goes back to its pool.
    #[inline]
    fn recycle_one(&mut self, frame: HeapFrame, _batch: &mut Vec<HeapFrame>) {
        if self.spare_top.is_none() && self.spare.len() < self.spare_max {
            // The usual case: `alloc_tx` took the last spare frame given back.
            self.spare_top = Some(frame);
        } else {
            self.keep_spare(frame);
        }
    }

    /// Keeps up to `spare_max` frames for [`alloc_tx`](Device::alloc_tx); the rest
    /// go back to their pools.
    #[inline]
    fn recycle(&mut self, frames: &mut Vec<HeapFrame>) {
        if frames.len() == 1 {
            // A burst of one: one move, where swapping the vectors below moves six
            // words and `append` calls `memcpy` for the frame.
            if let Some(f) = frames.pop() {
                self.recycle_one(f, frames);
            }
            return;
        }
        // All the spares in `spare`, in their order, for the batch to go on top.
        if let Some(top) = self.spare_top.take() {
            self.spare.push(top);
        }
        let keep = self.spare_max.saturating_sub(self.spare.len());
        if self.spare.is_empty() && frames.len() <= keep {
            // A larger burst when `alloc_tx` took the last spare: the burst becomes the
            // spares, its vector swapped for the empty one, and no frame moves. The two
            // vectors trade places from then on; neither allocates again once both
            // have grown to what the traffic needs.
            core::mem::swap(&mut self.spare, frames);
        } else if frames.len() <= keep {
            // A burst smaller than the spare room: one move, no per-frame iterator.
            self.spare.append(frames);
        } else {
            self.spare.extend(frames.drain(..keep));
            frames.clear();
        }
    }
}
