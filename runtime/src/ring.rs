//! The rings between threads and the device a shard sees in pipelined mode.
//!
//! Every hand-off between two runtime threads is a bounded crossbeam [`ArrayQueue`] of
//! frames: no lock, no allocation per frame, and a full ring drops (and counts) rather
//! than blocks or grows. A thread that went to sleep because its rings were empty is
//! woken through its [`Notifier`] by whoever puts frames there, and only then: a
//! producer pays for a wake-up (one `eventfd` write) only when the consumer is asleep.

use std::fmt;
use std::sync::atomic::{fence, AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_queue::ArrayQueue;
use mio::{Events, Poll, Token, Waker};

use rumpnet_stack::device::{Capabilities, Device, Frame, FramePool, HeapFrame, TxAllocator};

/// How a producer wakes a consumer thread that sleeps on its rings.
///
/// The consumer announces it is about to sleep ([`Parker::park`] sets `sleeping`), then
/// looks at its rings once more; a producer pushes, then looks at `sleeping`. Both put a
/// sequentially consistent fence between their write and their read (the Dekker
/// pattern), so at least one of them sees the other: either the consumer finds the frame
/// and does not sleep, or the producer finds it asleep and wakes it.
pub struct Notifier {
    sleeping: AtomicBool,
    waker: Waker,
}

impl fmt::Debug for Notifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Notifier")
            .field("sleeping", &self.sleeping.load(Ordering::Relaxed))
            .finish()
    }
}

impl Notifier {
    /// Wake the consumer if it sleeps (or is about to). Call after pushing.
    pub fn notify(&self) {
        fence(Ordering::SeqCst);
        if self.sleeping.load(Ordering::Relaxed) && self.sleeping.swap(false, Ordering::AcqRel) {
            // A failed wake-up (eventfd full) means one is already pending.
            let _ = self.waker.wake();
        }
    }

    /// Wake the consumer whatever it is doing (shutdown).
    pub fn wake(&self) {
        self.sleeping.store(false, Ordering::SeqCst);
        let _ = self.waker.wake();
    }
}

/// The consumer's side of a [`Notifier`]: the poller it sleeps in.
pub struct Parker {
    poll: Poll,
    events: Events,
    notifier: Arc<Notifier>,
}

impl fmt::Debug for Parker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Parker")
            .field("notifier", &self.notifier)
            .finish()
    }
}

const WAKE: Token = Token(0);
const DEVICE: Token = Token(1);

impl Parker {
    /// A parker and the notifier that wakes it.
    pub fn new() -> std::io::Result<Parker> {
        let poll = Poll::new()?;
        let waker = Waker::new(poll.registry(), WAKE)?;
        Ok(Parker {
            poll,
            events: Events::with_capacity(4),
            notifier: Arc::new(Notifier {
                sleeping: AtomicBool::new(false),
                waker,
            }),
        })
    }

    /// Also wake when `fd` becomes readable (a backend's [`Device::readiness_fd`]).
    pub fn watch_fd(&mut self, fd: i32) -> std::io::Result<()> {
        self.poll.registry().register(
            &mut mio::unix::SourceFd(&fd),
            DEVICE,
            mio::Interest::READABLE,
        )
    }

    /// The notifier producers use.
    pub fn notifier(&self) -> &Arc<Notifier> {
        &self.notifier
    }

    /// Sleep up to `timeout` unless `has_work` (checked after announcing the sleep)
    /// says there is something to do. Returns whether it actually slept.
    pub fn park(&mut self, timeout: Duration, has_work: impl FnOnce() -> bool) -> bool {
        self.notifier.sleeping.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if has_work() {
            self.notifier.sleeping.store(false, Ordering::Relaxed);
            return false;
        }
        // An interrupted or failed poll is only an early return: the caller loops.
        let _ = self.poll.poll(&mut self.events, Some(timeout));
        self.notifier.sleeping.store(false, Ordering::Relaxed);
        true
    }
}

/// Frames on their way to one consumer, with the counters its producers keep.
pub struct Ring<F = HeapFrame> {
    queue: ArrayQueue<F>,
    notifier: Arc<Notifier>,
    /// Frames pushed.
    pushed: AtomicU64,
    /// Frames dropped because the ring was full.
    dropped_full: AtomicU64,
}

impl<F> fmt::Debug for Ring<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ring")
            .field("len", &self.queue.len())
            .field("capacity", &self.queue.capacity())
            .field("pushed", &self.pushed())
            .field("dropped_full", &self.dropped_full())
            .finish()
    }
}

impl<F> Ring<F> {
    /// A ring of `capacity` frames whose consumer `notifier` wakes.
    pub fn new(capacity: usize, notifier: Arc<Notifier>) -> Arc<Ring<F>> {
        Arc::new(Ring {
            queue: ArrayQueue::new(capacity.max(1)),
            notifier,
            pushed: AtomicU64::new(0),
            dropped_full: AtomicU64::new(0),
        })
    }

    /// Push a burst without waking the consumer (call [`Ring::notify`] once after it).
    /// What does not fit is dropped and counted; returns how many were pushed.
    pub fn push_burst(&self, frames: impl IntoIterator<Item = F>) -> usize {
        let (mut pushed, mut dropped) = (0u64, 0u64);
        for f in frames {
            match self.queue.push(f) {
                Ok(()) => pushed += 1,
                // Dropping the frame gives its buffer back to its pool.
                Err(_) => dropped += 1,
            }
        }
        self.count(pushed, dropped);
        pushed as usize
    }

    /// Push one frame (dropped and counted if the ring is full), without waking.
    pub fn push(&self, frame: F) -> bool {
        self.push_burst(core::iter::once(frame)) == 1
    }

    /// Move frames from the front of `frames` while there is room; the rest stay there,
    /// in order, like a NIC transmit ring (the caller keeps or drops them). Returns how
    /// many were moved. Does not wake.
    pub fn push_front_of(&self, frames: &mut Vec<F>) -> usize {
        let room = self.queue.capacity() - self.queue.len();
        let n = room.min(frames.len());
        let mut moved = 0u64;
        for f in frames.drain(..n) {
            // Only one producer moves frames this way, so the room it saw can only have
            // grown; a failure would be a bug, counted rather than hidden.
            if self.queue.push(f).is_ok() {
                moved += 1;
            } else {
                self.dropped_full.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count(moved, 0);
        n
    }

    fn count(&self, pushed: u64, dropped: u64) {
        if pushed > 0 {
            self.pushed.fetch_add(pushed, Ordering::Relaxed);
        }
        if dropped > 0 {
            self.dropped_full.fetch_add(dropped, Ordering::Relaxed);
        }
    }

    /// Wake the consumer if it sleeps.
    pub fn notify(&self) {
        self.notifier.notify();
    }

    /// Take up to `max` frames, appending them to `out`; returns how many.
    pub fn pop_burst(&self, out: &mut Vec<F>, max: usize) -> usize {
        let mut n = 0;
        while n < max {
            match self.queue.pop() {
                Some(f) => out.push(f),
                None => break,
            }
            n += 1;
        }
        n
    }

    /// Frames waiting.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Nothing waits.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Frames pushed so far.
    pub fn pushed(&self) -> u64 {
        self.pushed.load(Ordering::Relaxed)
    }

    /// Frames dropped so far because the ring was full.
    pub fn dropped_full(&self) -> u64 {
        self.dropped_full.load(Ordering::Relaxed)
    }
}

/// What the runtime reads of a ring whatever its frame type: fill and counters.
pub trait RingState: Send + Sync + fmt::Debug {
    /// Frames waiting.
    fn len(&self) -> usize;
    /// Nothing waits.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Frames pushed so far.
    fn pushed(&self) -> u64;
    /// Frames dropped so far because the ring was full.
    fn dropped_full(&self) -> u64;
}

impl<F: Send> RingState for Ring<F> {
    fn len(&self) -> usize {
        Ring::len(self)
    }
    fn pushed(&self) -> u64 {
        Ring::pushed(self)
    }
    fn dropped_full(&self) -> u64 {
        Ring::dropped_full(self)
    }
}

/// A shard's device in pipelined mode: it receives from the ring the I/O thread fills
/// (software RSS already picked this shard) and transmits into the ring the I/O thread
/// drains to the backend. Transmit frames come from the backend's allocator for this
/// shard (for heap frames, the shard's own pool) and go back to it when the backend is
/// done with them.
pub struct RingDevice<F = HeapFrame> {
    rx: Arc<Ring<F>>,
    tx: Arc<Ring<F>>,
    alloc: Box<dyn TxAllocator<F>>,
    caps: Capabilities,
}

impl<F> fmt::Debug for RingDevice<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RingDevice")
            .field("rx", &self.rx)
            .field("tx", &self.tx)
            .field("caps", &self.caps)
            .finish()
    }
}

impl RingDevice<HeapFrame> {
    /// A device over `rx` and `tx` whose transmit frames come from `pool`.
    pub fn new(rx: Arc<Ring>, tx: Arc<Ring>, pool: Arc<FramePool>, caps: Capabilities) -> Self {
        RingDevice::with_allocator(rx, tx, Box::new(pool), caps)
    }
}

impl<F> RingDevice<F> {
    /// A device over `rx` and `tx`, advertising `caps` (the backend's: the frames are
    /// the backend's to send, offload requests included) as one queue, its transmit
    /// frames from `alloc`.
    pub fn with_allocator(
        rx: Arc<Ring<F>>,
        tx: Arc<Ring<F>>,
        alloc: Box<dyn TxAllocator<F>>,
        caps: Capabilities,
    ) -> Self {
        RingDevice {
            rx,
            tx,
            alloc,
            caps: Capabilities {
                rx_queues: 1,
                tx_queues: 1,
                ..caps
            },
        }
    }

    /// The receive ring.
    pub fn rx_ring(&self) -> &Arc<Ring<F>> {
        &self.rx
    }

    /// The transmit ring.
    pub fn tx_ring(&self) -> &Arc<Ring<F>> {
        &self.tx
    }
}

impl<F: Frame> Device for RingDevice<F> {
    type Frame = F;

    fn capabilities(&self) -> Capabilities {
        self.caps
    }

    fn rx_burst(&mut self, _queue: u16, out: &mut Vec<F>, max: usize) -> usize {
        self.rx.pop_burst(out, max)
    }

    /// Frames the ring has no room for stay in `frames` for the stack's bounded backlog:
    /// a slow backend pushes back on the shard instead of losing frames here.
    fn tx_burst(&mut self, _queue: u16, frames: &mut Vec<F>) -> usize {
        let n = self.tx.push_front_of(frames);
        if n > 0 {
            self.tx.notify();
        }
        n
    }

    fn alloc_tx(&mut self, len: usize) -> Option<F> {
        self.alloc.alloc(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rumpnet_stack::device::Frame;
    use std::time::Instant;

    fn frames(pool: &Arc<FramePool>, n: usize) -> Vec<HeapFrame> {
        (0..n)
            .map(|i| {
                let mut f = pool.alloc(60).unwrap();
                f.data_mut()[0] = i as u8;
                f
            })
            .collect()
    }

    #[test]
    fn full_ring_drops_and_counts() {
        let parker = Parker::new().unwrap();
        let ring = Ring::new(4, Arc::clone(parker.notifier()));
        let pool = FramePool::new(16, 256, 64);
        assert_eq!(ring.push_burst(frames(&pool, 6)), 4);
        assert_eq!(ring.pushed(), 4);
        assert_eq!(ring.dropped_full(), 2);
        // The dropped frames went back to the pool, the ring did not grow.
        assert_eq!(pool.free_count(), 2);
        assert_eq!(ring.len(), 4);
        let mut out = Vec::new();
        assert_eq!(ring.pop_burst(&mut out, 3), 3);
        assert_eq!(
            out.iter().map(|f| f.data()[0]).collect::<Vec<_>>(),
            [0, 1, 2]
        );
    }

    #[test]
    fn ring_device_keeps_what_does_not_fit() {
        let parker = Parker::new().unwrap();
        let rx = Ring::new(8, Arc::clone(parker.notifier()));
        let tx = Ring::new(3, Arc::clone(parker.notifier()));
        let pool = FramePool::new(16, 256, 64);
        let mut dev = RingDevice::new(
            Arc::clone(&rx),
            Arc::clone(&tx),
            Arc::clone(&pool),
            Capabilities::default(),
        );
        let mut batch = frames(&pool, 5);
        assert_eq!(dev.tx_burst(0, &mut batch), 3);
        // The two left are the last two, in order; nothing was dropped.
        assert_eq!(
            batch.iter().map(|f| f.data()[0]).collect::<Vec<_>>(),
            [3, 4]
        );
        assert_eq!(tx.dropped_full(), 0);
        assert_eq!(dev.tx_burst(0, &mut batch), 0);
        rx.push_burst(frames(&pool, 2));
        let mut out = Vec::new();
        assert_eq!(dev.rx_burst(0, &mut out, 64), 2);
        assert!(dev.alloc_tx(100).is_some());
    }

    #[test]
    fn park_returns_at_once_with_work_and_wakes_on_notify() {
        let mut parker = Parker::new().unwrap();
        let t = Instant::now();
        assert!(!parker.park(Duration::from_secs(5), || true));
        assert!(t.elapsed() < Duration::from_secs(1));

        let ring = Ring::new(4, Arc::clone(parker.notifier()));
        let pool = FramePool::new(16, 256, 64);
        let r2 = Arc::clone(&ring);
        let producer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            r2.push_burst(frames(&pool, 1));
            r2.notify();
        });
        let t = Instant::now();
        let mut slept = false;
        while ring.is_empty() {
            slept |= parker.park(Duration::from_secs(10), || !ring.is_empty());
        }
        producer.join().unwrap();
        assert!(slept);
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "woken by the notifier, not the timeout"
        );
    }
}
