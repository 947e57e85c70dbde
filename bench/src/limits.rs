//! The machine's own ceilings, measured in the same run as the stacks, so a stack's
//! figure can be read as a fraction of what the hardware allows at that moment (the
//! machine's load included).
//!
//! - **memcpy bandwidth**: a bulk byte costs a stack at least its copies (rumpnet
//!   copies each byte four times: into the send ring, into the frame, into the receive
//!   ring, out to the application), so one copy's rate is an upper bound on the rate
//!   of any stack that copies; the figure is that one copy, in Gbit/s.
//! - **frame ping-pong**: one 118-byte frame (a 64-byte request in Ethernet, IPv4
//!   and TCP headers) sent from one end of the in-memory link to the other and a copy
//!   sent back, through the same rings and frame pools rumpnet uses, with no stack:
//!   the ceiling of request/response over that link, in round trips per second.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use rumpnet_stack::device::{Device, Frame, HeapFrame};
use rumpnet_stack::link::{self, LinkEnd};

use crate::machine;
use crate::systems::rumpnet::link_config;
use crate::systems::{BenchError, Placement, Sample};

/// Bytes of the frame the ping-pong moves: Ethernet 14 + IPv4 20 + TCP 20 + 64.
pub const PING_FRAME: usize = 118;

/// Copy 64 KiB blocks between two 1 MiB buffers (cache-resident, as a stack's rings
/// are) for `duration`; Gbit/s of one copy.
pub fn memcpy(duration: Duration) -> Sample {
    const BUF: usize = 1 << 20;
    const BLOCK: usize = 64 * 1024;
    let src: Vec<u8> = (0..BUF).map(|i| i as u8).collect();
    let mut dst = vec![0u8; BUF];
    let start = Instant::now();
    let mut bytes = 0u64;
    let mut off = 0;
    while start.elapsed() < duration {
        dst[off..off + BLOCK].copy_from_slice(black_box(&src[off..off + BLOCK]));
        black_box(&mut dst);
        off = (off + BLOCK) % BUF;
        bytes += BLOCK as u64;
    }
    let secs = start.elapsed().as_secs_f64();
    Sample {
        value: bytes as f64 * 8.0 / secs / 1e9,
        extra: Vec::new(),
        checked: 0,
        errors: 0,
    }
}

/// Send one frame on `end`, copied from `payload`; false if the pool or ring refused.
fn send(end: &mut LinkEnd, out: &mut Vec<HeapFrame>, payload: &[u8]) -> bool {
    let Some(mut f) = end.alloc_tx(payload.len()) else {
        return false;
    };
    f.data_mut().copy_from_slice(payload);
    out.push(f);
    end.tx_burst(0, out);
    out.clear();
    true
}

/// Frames ping-ponged through the in-memory link for `duration`; round trips/s.
pub fn ping_pong(placement: Placement, duration: Duration) -> Result<Sample, BenchError> {
    let (mut a, mut b) = link::pair(link_config(1500));
    let payload = [0x42u8; PING_FRAME];
    match placement {
        Placement::SameCore => thread::scope(|s| {
            s.spawn(|| {
                machine::pin_to_core(0);
                let (mut rx, mut tx) = (Vec::with_capacity(64), Vec::with_capacity(64));
                let start = Instant::now();
                let mut trips = 0u64;
                // Read the clock every 256 round trips: it costs about as much as one.
                for i in 0u64.. {
                    if i % 256 == 0 && start.elapsed() >= duration {
                        break;
                    }
                    if !send(&mut a, &mut tx, &payload) {
                        return Err(BenchError::Setup("the link refused a frame".into()));
                    }
                    b.rx_burst(0, &mut rx, 64);
                    for f in rx.drain(..) {
                        send(&mut b, &mut tx, f.data());
                    }
                    a.rx_burst(0, &mut rx, 64);
                    trips += rx.len() as u64;
                    rx.clear();
                }
                Ok(rate(trips, start))
            })
            .join()
            .unwrap_or_else(|_| Err(BenchError::Setup("ping-pong thread panicked".into())))
        }),
        Placement::CrossCore => {
            let stop = AtomicBool::new(false);
            thread::scope(|s| {
                let stop = &stop;
                let echo = s.spawn(move || {
                    machine::pin_to_core(1);
                    let (mut rx, mut tx) = (Vec::with_capacity(64), Vec::with_capacity(64));
                    while !stop.load(Ordering::Relaxed) {
                        b.rx_burst(0, &mut rx, 64);
                        for f in rx.drain(..) {
                            send(&mut b, &mut tx, f.data());
                        }
                    }
                });
                let pinger = s.spawn(move || {
                    machine::pin_to_core(0);
                    let (mut rx, mut tx) = (Vec::with_capacity(64), Vec::with_capacity(64));
                    let start = Instant::now();
                    let mut trips = 0u64;
                    let limit = start + duration + Duration::from_secs(10);
                    while start.elapsed() < duration {
                        if !send(&mut a, &mut tx, &payload) {
                            break;
                        }
                        while a.rx_burst(0, &mut rx, 64) == 0 {
                            if Instant::now() > limit {
                                break;
                            }
                        }
                        trips += rx.len() as u64;
                        rx.clear();
                    }
                    stop.store(true, Ordering::Relaxed);
                    rate(trips, start)
                });
                let r = pinger.join();
                stop.store(true, Ordering::Relaxed);
                let _ = echo.join();
                r.map_err(|_| BenchError::Setup("ping-pong thread panicked".into()))
            })
        }
    }
}

fn rate(trips: u64, start: Instant) -> Sample {
    Sample {
        value: trips as f64 / start.elapsed().as_secs_f64(),
        extra: Vec::new(),
        checked: trips * PING_FRAME as u64,
        errors: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_measured() {
        assert!(memcpy(Duration::from_millis(100)).value > 0.0);
        for p in [Placement::SameCore, Placement::CrossCore] {
            let s = ping_pong(p, Duration::from_millis(100)).unwrap();
            assert!(s.value > 0.0, "{p:?}");
        }
    }
}
