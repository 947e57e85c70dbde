//! The I/O thread of pipelined mode: it polls one backend queue, steers every received
//! frame to its shard's ring, and sends what its shards put on their return rings.
//!
//! It never blocks on a shard: a full shard ring drops the frame (counted on that ring),
//! and frames the backend does not take stay in a batch of at most one burst, so a slow
//! backend fills the return rings and pushes back on the shards' own bounded backlogs
//! rather than growing anything here.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rumpnet_stack::device::Device;

use crate::ring::{Parker, Ring};
use crate::shard::Idle;
use crate::steer::Steering;

/// How long an I/O thread keeps flushing its return rings after the last shard exited.
const EXIT_FLUSH: Duration = Duration::from_millis(100);

/// Counters of one I/O thread, written by it alone.
#[derive(Debug, Default)]
pub(crate) struct IoCounters {
    rx_frames: AtomicU64,
    tx_frames: AtomicU64,
    steered: AtomicU64,
    dropped: AtomicU64,
    sleeps: AtomicU64,
}

impl IoCounters {
    pub fn snapshot(&self, io: usize, cpu: Option<usize>) -> IoStats {
        IoStats {
            io,
            cpu,
            rx_frames: self.rx_frames.load(Ordering::Relaxed),
            tx_frames: self.tx_frames.load(Ordering::Relaxed),
            steered: self.steered.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            sleeps: self.sleeps.load(Ordering::Relaxed),
        }
    }

    fn add(c: &AtomicU64, n: usize) {
        if n > 0 {
            c.fetch_add(n as u64, Ordering::Relaxed);
        }
    }
}

/// Counters of one I/O thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IoStats {
    /// The I/O thread's index (it polls backend queue `io` of the list given).
    pub io: usize,
    /// The CPU it was pinned to.
    pub cpu: Option<usize>,
    /// Frames received from the backend.
    pub rx_frames: u64,
    /// Frames the backend took for transmission.
    pub tx_frames: u64,
    /// Frames put on shard rings (broadcast copies included).
    pub steered: u64,
    /// Frames dropped because a shard's ring was full.
    pub dropped: u64,
    /// Times it slept.
    pub sleeps: u64,
}

/// Everything one I/O thread runs with.
pub(crate) struct IoRun<D: Device> {
    pub dev: D,
    pub queue: u16,
    pub steering: Arc<Steering<D::Frame>>,
    /// The return rings of the shards this thread transmits for.
    pub returns: Vec<Arc<Ring<D::Frame>>>,
    pub parker: Parker,
    pub idle: Idle,
    pub stop: Arc<AtomicBool>,
    /// Shards still running; the thread exits once they all have and it has flushed.
    pub live_shards: Arc<AtomicUsize>,
    pub counters: Arc<IoCounters>,
    pub burst: usize,
}

impl<D: Device> IoRun<D> {
    pub fn run(mut self) {
        let burst = self.burst.max(1);
        let shards = self.steering.rss().shards();
        let mut rx: Vec<D::Frame> = Vec::with_capacity(burst);
        let mut tx: Vec<D::Frame> = Vec::with_capacity(burst);
        let mut woken = vec![false; shards];
        let mut next = 0usize;
        let mut exit_by: Option<std::time::Instant> = None;
        let c = Arc::clone(&self.counters);
        self.idle.watch_device(&self.dev, &mut self.parker);
        loop {
            let received = self.dev.rx_burst(self.queue, &mut rx, burst);
            if received > 0 {
                IoCounters::add(&c.rx_frames, received);
                let d = self.steering.dispatch(&mut rx, None, &mut woken);
                IoCounters::add(&c.steered, d.forwarded);
                IoCounters::add(&c.dropped, d.dropped);
            }
            // Round-robin over the return rings, one burst in all, so no shard starves
            // the others of the backend.
            let k = self.returns.len();
            for i in 0..k {
                let room = burst.saturating_sub(tx.len());
                if room == 0 {
                    break;
                }
                self.returns[(next + i) % k].pop_burst(&mut tx, room);
            }
            next = (next + 1) % k.max(1);
            let sent = if tx.is_empty() {
                0
            } else {
                self.dev.tx_burst(self.queue, &mut tx)
            };
            IoCounters::add(&c.tx_frames, sent);

            if self.live_shards.load(Ordering::Acquire) == 0 {
                let by = *exit_by.get_or_insert_with(|| std::time::Instant::now() + EXIT_FLUSH);
                let flushed = tx.is_empty() && self.returns.iter().all(|r| r.is_empty());
                if flushed || std::time::Instant::now() >= by {
                    break;
                }
            }
            if received > 0 || sent > 0 {
                self.idle.work();
                continue;
            }
            let (returns, live, stop) = (&self.returns, &self.live_shards, &self.stop);
            let before = self.idle.sleeps;
            self.idle.wait(None, &mut self.parker, || {
                returns.iter().any(|r| !r.is_empty())
                    || (stop.load(Ordering::Relaxed) && live.load(Ordering::Relaxed) == 0)
            });
            if self.idle.sleeps > before {
                c.sleeps.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}
