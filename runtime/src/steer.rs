//! Moving received frames to the shard that owns their flow.
//!
//! One function, [`Steering::dispatch`], does it for both modes. In pipelined mode the
//! I/O thread hands it every frame it received and keeps none. In run-to-completion mode
//! a shard hands it the frames of its own device queue through a [`SteeredDevice`] and
//! keeps those that are its own: with hardware RSS that is all of them but the ARP
//! frames (copied to every other shard) and what the NIC's indirection table sent
//! elsewhere than the runtime's would (forwarded). Either way a flow is only ever
//! processed by one shard.

use std::sync::Arc;

#[cfg(test)]
use rumpnet_stack::device::HeapFrame;
use rumpnet_stack::device::{Capabilities, Device, Frame};

use crate::ring::Ring;
use crate::rss::{Rss, Steer};

/// What one [`Steering::dispatch`] call did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DispatchCounts {
    /// Frames kept by the calling shard.
    pub kept: usize,
    /// Frames pushed to other shards' rings (copies of broadcasts included).
    pub forwarded: usize,
    /// Frames dropped because the target ring was full.
    pub dropped: usize,
}

/// The shard map and every shard's receive ring.
///
/// Broadcast frames (ARP: rare, off the data path) are copied with
/// [`Frame::try_clone`]; a copy that cannot be made is dropped and counted.
#[derive(Debug)]
pub struct Steering<F> {
    rss: Rss,
    inboxes: Vec<Arc<Ring<F>>>,
}

impl<F: Frame> Steering<F> {
    /// Steering over `inboxes` (shard `i` receives from `inboxes[i]`); `rss` must map to
    /// that many shards.
    pub fn new(rss: Rss, inboxes: Vec<Arc<Ring<F>>>) -> Self {
        debug_assert_eq!(rss.shards(), inboxes.len());
        Steering { rss, inboxes }
    }

    /// The shard map.
    pub fn rss(&self) -> &Rss {
        &self.rss
    }

    /// Shard `i`'s receive ring.
    pub fn inbox(&self, i: usize) -> &Arc<Ring<F>> {
        &self.inboxes[i]
    }

    /// Steer each frame of `frames` (draining it): frames for shard `me.0` are appended
    /// to `me.1` (run-to-completion), all others go to their shard's ring, dropped and
    /// counted by the ring when it is full. Broadcast frames are copied to every shard.
    /// Each shard that got frames is woken once, after the whole burst; `woken` is the
    /// caller's scratch for that, one flag per shard.
    pub fn dispatch(
        &self,
        frames: &mut Vec<F>,
        mut me: Option<(usize, &mut Vec<F>)>,
        woken: &mut [bool],
    ) -> DispatchCounts {
        let mut counts = DispatchCounts::default();
        let mine = me.as_ref().map(|m| m.0);
        for frame in frames.drain(..) {
            match self.rss.steer(frame.data(), frame.rx_meta()) {
                Steer::Shard(s) if Some(s) == mine => {
                    if let Some((_, out)) = me.as_mut() {
                        out.push(frame);
                        counts.kept += 1;
                    }
                }
                Steer::Shard(s) => self.forward(s, frame, &mut counts, woken),
                Steer::All => {
                    for s in (0..self.inboxes.len()).filter(|&s| Some(s) != mine) {
                        match frame.try_clone() {
                            Some(copy) => self.forward(s, copy, &mut counts, woken),
                            None => counts.dropped += 1,
                        }
                    }
                    match me.as_mut() {
                        Some((_, out)) => {
                            out.push(frame);
                            counts.kept += 1;
                        }
                        None => drop(frame),
                    }
                }
            }
        }
        for (inbox, w) in self.inboxes.iter().zip(woken.iter_mut()) {
            if std::mem::take(w) {
                inbox.notify();
            }
        }
        counts
    }

    fn forward(&self, s: usize, frame: F, counts: &mut DispatchCounts, woken: &mut [bool]) {
        if self.inboxes[s].push(frame) {
            counts.forwarded += 1;
            if let Some(w) = woken.get_mut(s) {
                *w = true;
            }
        } else {
            counts.dropped += 1;
        }
    }
}

/// A shard's device in run-to-completion mode: its own queue of the backend, plus the
/// ring where other shards put the frames of its flows that reached them.
pub struct SteeredDevice<D: Device> {
    inner: D,
    queue: u16,
    shard: usize,
    inbox: Arc<Ring<D::Frame>>,
    steering: Arc<Steering<D::Frame>>,
    scratch: Vec<D::Frame>,
    woken: Vec<bool>,
    forwarded: u64,
    dropped: u64,
}

impl<D: Device + std::fmt::Debug> std::fmt::Debug for SteeredDevice<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SteeredDevice")
            .field("inner", &self.inner)
            .field("queue", &self.queue)
            .field("shard", &self.shard)
            .field("forwarded", &self.forwarded)
            .field("dropped", &self.dropped)
            .finish()
    }
}

impl<D: Device> SteeredDevice<D> {
    /// Shard `shard` driving `queue` of `inner`.
    pub fn new(inner: D, queue: u16, shard: usize, steering: Arc<Steering<D::Frame>>) -> Self {
        let n = steering.rss().shards();
        SteeredDevice {
            inner,
            queue,
            shard,
            inbox: Arc::clone(steering.inbox(shard)),
            steering,
            scratch: Vec::new(),
            woken: vec![false; n],
            forwarded: 0,
            dropped: 0,
        }
    }

    /// The backend queue.
    pub fn inner(&self) -> &D {
        &self.inner
    }

    /// The backend queue, writable.
    pub fn inner_mut(&mut self) -> &mut D {
        &mut self.inner
    }

    /// Frames received on this queue and passed to other shards.
    pub fn forwarded(&self) -> u64 {
        self.forwarded
    }

    /// Frames received on this queue for other shards whose rings were full.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

impl<D: Device> Device for SteeredDevice<D> {
    type Frame = D::Frame;

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    /// Frames other shards passed here first, then this queue's own.
    fn rx_burst(&mut self, _queue: u16, out: &mut Vec<D::Frame>, max: usize) -> usize {
        let mut n = self.inbox.pop_burst(out, max);
        if n < max {
            self.inner.rx_burst(self.queue, &mut self.scratch, max - n);
            let c =
                self.steering
                    .dispatch(&mut self.scratch, Some((self.shard, out)), &mut self.woken);
            n += c.kept;
            self.forwarded += c.forwarded as u64;
            self.dropped += c.dropped as u64;
        }
        n
    }

    fn tx_burst(&mut self, _queue: u16, frames: &mut Vec<D::Frame>) -> usize {
        self.inner.tx_burst(self.queue, frames)
    }

    fn alloc_tx(&mut self, len: usize) -> Option<D::Frame> {
        self.inner.alloc_tx(len)
    }

    fn tx_allocator(&self) -> Option<Box<dyn rumpnet_stack::device::TxAllocator<D::Frame>>> {
        self.inner.tx_allocator()
    }

    fn readiness_fd(&self) -> Option<i32> {
        self.inner.readiness_fd()
    }

    fn recycle(&mut self, frames: &mut Vec<D::Frame>) {
        self.inner.recycle(frames)
    }

    fn recycle_one(&mut self, frame: D::Frame, batch: &mut Vec<D::Frame>) {
        self.inner.recycle_one(frame, batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::Parker;
    use std::net::Ipv4Addr;

    fn tcp_frame(sport: u16) -> HeapFrame {
        let mut f = vec![0u8; 14 + 20 + 20];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        let ip = &mut f[14..];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&40u16.to_be_bytes());
        ip[9] = 6;
        ip[12..16].copy_from_slice(&[10, 0, 0, 1]);
        ip[16..20].copy_from_slice(&[10, 0, 0, 2]);
        ip[20..22].copy_from_slice(&sport.to_be_bytes());
        ip[22..24].copy_from_slice(&80u16.to_be_bytes());
        HeapFrame::from_slice(&f, 64)
    }

    fn arp_frame() -> HeapFrame {
        let mut f = vec![0u8; 42];
        f[12..14].copy_from_slice(&[0x08, 0x06]);
        f[41] = 0x77;
        HeapFrame::from_slice(&f, 64)
    }

    fn steering(shards: usize, ring: usize) -> (Steering<HeapFrame>, Vec<Parker>) {
        let parkers: Vec<Parker> = (0..shards).map(|_| Parker::new().unwrap()).collect();
        let inboxes = parkers
            .iter()
            .map(|p| Ring::new(ring, Arc::clone(p.notifier())))
            .collect();
        (Steering::new(Rss::symmetric(shards), inboxes), parkers)
    }

    fn shard_of(sport: u16, shards: usize) -> usize {
        Rss::symmetric(shards).shard_of_flow(
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::new(10, 0, 0, 2),
            sport,
            80,
        )
    }

    #[test]
    fn pipelined_dispatch_steers_by_flow_and_copies_arp() {
        let (st, _parkers) = steering(4, 64);
        let mut woken = vec![false; 4];
        let mut batch: Vec<HeapFrame> = (50000..50032).map(tcp_frame).collect();
        batch.push(arp_frame());
        let c = st.dispatch(&mut batch, None, &mut woken);
        assert!(batch.is_empty());
        assert_eq!(
            c,
            DispatchCounts {
                kept: 0,
                forwarded: 32 + 4,
                dropped: 0
            }
        );
        assert!(
            woken.iter().all(|w| !w),
            "wake flags are reset after the burst"
        );
        for s in 0..4 {
            let mut out = Vec::new();
            st.inbox(s).pop_burst(&mut out, 64);
            let (arp, tcp): (Vec<_>, Vec<_>) = out.iter().partition(|f| f.data()[13] == 0x06);
            assert_eq!(arp.len(), 1, "every shard gets the ARP frame");
            assert_eq!(arp[0].data()[41], 0x77);
            for f in tcp {
                let sport = u16::from_be_bytes([f.data()[34], f.data()[35]]);
                assert_eq!(shard_of(sport, 4), s);
            }
        }
    }

    #[test]
    fn full_ring_drops_count_and_never_block() {
        let (st, _parkers) = steering(2, 4);
        let mut woken = vec![false; 2];
        // 200 frames of one flow: 4 fit in its shard's ring, the rest are dropped.
        let mut batch: Vec<HeapFrame> = (0..200).map(|_| tcp_frame(50000)).collect();
        let c = st.dispatch(&mut batch, None, &mut woken);
        assert_eq!((c.forwarded, c.dropped), (4, 196));
        let s = shard_of(50000, 2);
        assert_eq!(st.inbox(s).len(), 4);
        assert_eq!(st.inbox(s).dropped_full(), 196);
        assert_eq!(st.inbox(1 - s).pushed(), 0);
    }

    #[test]
    fn run_to_completion_keeps_its_own_and_passes_the_rest() {
        let (st, _parkers) = steering(2, 64);
        let st = Arc::new(st);
        // A queue that (like a NIC with a different indirection table) received flows of
        // both shards plus an ARP frame.
        let (mut nic, queue) = rumpnet_stack::link::pair(Default::default());
        let mut dev = SteeredDevice::new(queue, 0, 0, Arc::clone(&st));
        let mut sent: Vec<HeapFrame> = (50000..50016).map(tcp_frame).collect();
        sent.push(arp_frame());
        nic.tx_burst(0, &mut sent);
        let mut out = Vec::new();
        let n = dev.rx_burst(0, &mut out, 64);
        assert_eq!(n, out.len());
        let mine = (50000..50016).filter(|&p| shard_of(p, 2) == 0).count();
        assert_eq!(n, mine + 1, "own flows and the ARP frame");
        assert_eq!(dev.forwarded(), (16 - mine) as u64 + 1);
        assert_eq!(st.inbox(1).len(), 16 - mine + 1);
        // Frames other shards passed to shard 0 come out of its device first.
        st.inbox(0).push(arp_frame());
        out.clear();
        assert_eq!(dev.rx_burst(0, &mut out, 64), 1);
    }
}
