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
            recorded: 0,
        }
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
        for f in &out[start..] {
            self.capture.record(self.now, f.data());
        }
        n
    }

    fn tx_burst(&mut self, queue: u16, frames: &mut Vec<D::Frame>) -> usize {
        for f in frames.iter().skip(self.recorded) {
            self.capture.record(self.now, f.data());
        }
        let n = self.inner.tx_burst(queue, frames);
        self.recorded = frames.len();
        n
    }

    fn alloc_tx(&mut self, len: usize) -> Option<D::Frame> {
        self.inner.alloc_tx(len)
    }
}
