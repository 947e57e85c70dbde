//! A device wrapper that records every frame in and out to a pcap file (`--pcap`).
//!
//! Capturing is a debugging aid, so it may cost a copy and a lock per frame; a device
//! without capture pays nothing (the wrapper is only put in when asked for).

use std::sync::Arc;

use rumpnet_stack::device::{Capabilities, Device, Frame};
use rumpnet_stack::link::PcapCapture;
use rumpnet_stack::time::Instant;

/// `inner`, with every received and transmitted frame written to a capture.
#[derive(Debug)]
pub struct CaptureDevice<D: Device> {
    inner: D,
    capture: Arc<PcapCapture>,
    now: Instant,
    /// Stamp frames from this clock instead of [`set_now`](Self::set_now) (devices polled
    /// by a runtime shard, whose loop the caller does not see).
    epoch: Option<std::time::Instant>,
    /// Frames at the front of the transmit batch already recorded (the device did not
    /// take them last time; they are retried, not recorded twice).
    recorded: usize,
}

impl<D: Device> CaptureDevice<D> {
    /// Record `inner`'s traffic into `capture`.
    pub fn new(inner: D, capture: Arc<PcapCapture>) -> Self {
        CaptureDevice {
            inner,
            capture,
            now: Instant::ZERO,
            epoch: None,
            recorded: 0,
        }
    }

    /// Record `inner`'s traffic into `capture`, stamped with the time since `epoch`
    /// read at each burst.
    pub fn with_epoch(inner: D, capture: Arc<PcapCapture>, epoch: std::time::Instant) -> Self {
        CaptureDevice {
            epoch: Some(epoch),
            ..CaptureDevice::new(inner, capture)
        }
    }

    fn stamp(&mut self) -> Instant {
        if let Some(e) = self.epoch {
            self.now = Instant::from_micros(e.elapsed().as_micros() as u64);
        }
        self.now
    }

    /// The time stamped on frames from now on.
    pub fn set_now(&mut self, now: Instant) {
        self.now = now;
    }

    /// The wrapped device.
    pub fn inner(&self) -> &D {
        &self.inner
    }

    /// The wrapped device, writable.
    pub fn inner_mut(&mut self) -> &mut D {
        &mut self.inner
    }
}

impl<D: Device> Device for CaptureDevice<D> {
    type Frame = D::Frame;

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    fn rx_burst(&mut self, queue: u16, out: &mut Vec<D::Frame>, max: usize) -> usize {
        let start = out.len();
        let n = self.inner.rx_burst(queue, out, max);
        if n > 0 {
            let now = self.stamp();
            for f in &out[start..] {
                self.capture.record(now, f.data());
            }
        }
        n
    }

    fn tx_burst(&mut self, queue: u16, frames: &mut Vec<D::Frame>) -> usize {
        let now = self.stamp();
        for f in frames.iter().skip(self.recorded) {
            self.capture.record(now, f.data());
        }
        let n = self.inner.tx_burst(queue, frames);
        self.recorded = frames.len();
        n
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
