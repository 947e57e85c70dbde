//! Impairments of one direction of a link, and the sender-side state that applies them.
//!
//! Every decision is drawn from one [`Rand`] seeded by [`Impairments::seed`], in a fixed
//! order per frame, and only for impairments that are switched on. The outcome therefore
//! depends only on the seed, the frames and the sender's clock: a failing simulation is
//! replayed by running it again with the same seed.

use core::sync::atomic::Ordering::Relaxed;

use crate::device::{Frame, HeapFrame};
use crate::rand::Rand;
use crate::time::{Duration, Instant};

use super::{LinkStats, TxCounters};

/// How long a frame held back by [`Impairments::reorder`] waits for a successor to overtake
/// it before [`LinkEnd::set_now`](super::LinkEnd::set_now) sends it anyway, so the last
/// frame of a flight is late, not lost.
pub const REORDER_MAX_HOLD: Duration = Duration::from_millis(1);

/// What one direction of a link does to the frames it carries. The default is a perfect
/// link: no loss, no delay, unlimited rate.
///
/// Per frame, in this order: the rate limiter (tail drop when the backlog is over
/// `queue_limit_bytes`, else the frame occupies the link for `len * 8 / rate_bps`), loss,
/// corruption, duplication, delay + jitter, reordering. A lost frame still occupied the
/// link: it was lost on the wire, after the bottleneck.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Impairments {
    /// Seed of the generator behind every random decision of this direction.
    pub seed: u64,
    /// Probability that a frame is dropped.
    pub loss: f64,
    /// Probability that a frame is delivered twice (the copy right after the original).
    pub duplicate: f64,
    /// Probability that a frame is held back and delivered right after the next frame
    /// (or after [`REORDER_MAX_HOLD`] of the sender's clock if none follows).
    pub reorder: f64,
    /// Probability that one uniformly chosen bit of the frame is flipped. Any bit: the
    /// receiver's checksums (or their absence, for the Ethernet header) must cope.
    pub corrupt: f64,
    /// One-way latency added to every frame: the minimum time from transmit to receive.
    pub delay: Duration,
    /// Extra latency drawn uniformly from `0..=jitter` per frame. Frames that draw
    /// different jitter can overtake each other: jitter reorders, as on a real path.
    pub jitter: Duration,
    /// Serialization rate of the link in bits per second (`None` or `Some(0)`:
    /// unlimited). Frames leave one after another, each when the previous finished.
    pub rate_bps: Option<u64>,
    /// Bottleneck buffer in bytes in front of the rate limiter: a frame that would take
    /// the unsent backlog past it is tail-dropped. Only meaningful with `rate_bps`.
    pub queue_limit_bytes: Option<usize>,
}

impl Impairments {
    /// A perfect direction (same as `Default`).
    pub fn none() -> Impairments {
        Impairments::default()
    }

    fn rate(&self) -> Option<u64> {
        self.rate_bps.filter(|&r| r > 0)
    }

    /// Frames need a delivery time (the receiver orders them by it).
    pub(super) fn is_timed(&self) -> bool {
        !self.delay.is_zero() || !self.jitter.is_zero() || self.rate().is_some()
    }

    /// Nothing to do per frame: the fast path may move frames untouched.
    pub(super) fn is_transparent(&self) -> bool {
        !self.is_timed()
            && self.loss <= 0.0
            && self.duplicate <= 0.0
            && self.reorder <= 0.0
            && self.corrupt <= 0.0
    }
}

/// The serialization state of a rate-limited direction, in nanoseconds so that small
/// frames on fast links do not round to zero.
#[derive(Debug)]
struct Shaper {
    bps: u64,
    queue_limit: Option<usize>,
    /// When the link finishes sending what it has accepted so far.
    busy_until_ns: u64,
    /// Remainder of the last division (in units of 1/bps ns), so the long-run rate is exact.
    carry: u64,
}

impl Shaper {
    /// Accept a frame of `len` bytes at `now_ns`: the instant its last bit has left, or
    /// `None` if the bottleneck buffer is full.
    fn admit(&mut self, len: usize, now_ns: u64) -> Option<Instant> {
        let backlog_ns = self.busy_until_ns.saturating_sub(now_ns);
        if let Some(limit) = self.queue_limit {
            let backlog = u128::from(backlog_ns) * u128::from(self.bps) / 8_000_000_000;
            if backlog + len as u128 > limit as u128 {
                return None;
            }
        }
        if backlog_ns == 0 {
            // The link was idle: this frame starts now, with no fraction pending.
            self.busy_until_ns = now_ns;
            self.carry = 0;
        }
        let bits_ns = (len as u128) * 8 * 1_000_000_000 + u128::from(self.carry);
        let ser_ns = bits_ns / u128::from(self.bps);
        self.carry = (bits_ns % u128::from(self.bps)) as u64;
        self.busy_until_ns = self
            .busy_until_ns
            .saturating_add(u64::try_from(ser_ns).unwrap_or(u64::MAX));
        Some(Instant::from_micros(self.busy_until_ns.div_ceil(1000)))
    }
}

/// A frame held back to be overtaken by the next one.
#[derive(Debug)]
struct Held {
    frame: HeapFrame,
    at: Instant,
    dup: bool,
    since: Instant,
}

/// The sender-side half of one direction: applies its [`Impairments`] to each frame and
/// hands the survivors to `emit(frame, deliver_at, duplicate)`.
#[derive(Debug)]
pub(super) struct Wire {
    imp: Impairments,
    rand: Rand,
    timed: bool,
    transparent: bool,
    shaper: Option<Shaper>,
    held: Option<Held>,
}

impl Wire {
    pub(super) fn new(imp: Impairments) -> Wire {
        Wire {
            imp,
            rand: Rand::from_u64(imp.seed),
            timed: imp.is_timed(),
            transparent: imp.is_transparent(),
            shaper: imp.rate().map(|bps| Shaper {
                bps,
                queue_limit: imp.queue_limit_bytes,
                busy_until_ns: 0,
                carry: 0,
            }),
            held: None,
        }
    }

    pub(super) fn is_transparent(&self) -> bool {
        self.transparent
    }

    /// Ring slots one frame may need at most (itself and a duplicate).
    pub(super) fn slots_per_frame(&self) -> usize {
        if self.imp.duplicate > 0.0 {
            2
        } else {
            1
        }
    }

    /// A frame is held back for reordering.
    #[inline]
    pub(super) fn holds(&self) -> bool {
        self.held.is_some()
    }

    /// Ring slots the held-back frame will need when it is released.
    pub(super) fn held_slots(&self) -> usize {
        self.held.as_ref().map_or(0, |h| 1 + usize::from(h.dup))
    }

    /// Apply the impairments to one frame sent at `now`.
    pub(super) fn transmit(
        &mut self,
        mut frame: HeapFrame,
        now: Instant,
        stats: &TxCounters,
        mut emit: impl FnMut(HeapFrame, Instant, bool),
    ) {
        let mut at = now;
        if let Some(shaper) = self.shaper.as_mut() {
            match shaper.admit(frame.len(), now.total_micros().saturating_mul(1000)) {
                Some(done) => at = done,
                None => {
                    stats.queue_dropped.fetch_add(1, Relaxed);
                    return;
                }
            }
        }
        if self.rand.chance(self.imp.loss) {
            stats.lost.fetch_add(1, Relaxed);
            return;
        }
        if self.rand.chance(self.imp.corrupt) && !frame.is_empty() {
            let bit = below(&mut self.rand, frame.len() as u64 * 8);
            let data = frame.data_mut();
            if let Some(byte) = data.get_mut((bit / 8) as usize) {
                *byte ^= 1 << (bit % 8);
                stats.corrupted.fetch_add(1, Relaxed);
                // A link with offloads marked the frame verified; the receiving NIC's
                // check would now fail, so the stack must verify (and drop) it.
                frame.set_rx_meta(crate::device::RxMeta::default());
            }
        }
        let dup = self.rand.chance(self.imp.duplicate);
        if dup {
            stats.duplicated.fetch_add(1, Relaxed);
        }
        at = if self.timed {
            let jitter = duration_micros(self.imp.jitter);
            let extra = if jitter > 0 {
                below(&mut self.rand, jitter + 1)
            } else {
                0
            };
            at + self.imp.delay + Duration::from_micros(extra)
        } else {
            Instant::ZERO
        };
        if let Some(held) = self.held.take() {
            // The held frame is overtaken by this one: it must not be delivered earlier
            // either, or a timed receiver would sort the reordering away.
            emit(frame, at, dup);
            emit(held.frame, held.at.max(at), held.dup);
            stats.reordered.fetch_add(1, Relaxed);
        } else if self.rand.chance(self.imp.reorder) {
            self.held = Some(Held {
                frame,
                at,
                dup,
                since: now,
            });
        } else {
            emit(frame, at, dup);
        }
    }

    /// When the held-back frame, if any, is sent without waiting for a successor.
    pub(super) fn release_at(&self) -> Option<Instant> {
        self.held.as_ref().map(|h| h.since + REORDER_MAX_HOLD)
    }

    /// Send a held-back frame that no successor overtook within [`REORDER_MAX_HOLD`].
    pub(super) fn release_stale(
        &mut self,
        now: Instant,
        mut emit: impl FnMut(HeapFrame, Instant, bool),
    ) {
        if self
            .held
            .as_ref()
            .is_some_and(|h| now >= h.since + REORDER_MAX_HOLD)
        {
            if let Some(held) = self.held.take() {
                let at = if self.timed {
                    held.at.max(now)
                } else {
                    held.at
                };
                emit(held.frame, at, held.dup);
            }
        }
    }
}

/// One direction's [`Impairments`] applied by a device other than the in-memory link
/// (the TAP backend keeps one per direction), with the same draws in the same order as
/// the link, so a seed means the same thing on both.
#[derive(Debug)]
pub struct Impairer {
    wire: Wire,
    counters: TxCounters,
    delivered: u64,
}

impl Impairer {
    /// An impairer drawing from a generator seeded with `imp.seed`.
    pub fn new(imp: Impairments) -> Impairer {
        Impairer {
            wire: Wire::new(imp),
            counters: TxCounters::default(),
            delivered: 0,
        }
    }

    /// Nothing to do per frame: a caller may skip [`apply`](Self::apply).
    pub fn is_transparent(&self) -> bool {
        self.wire.is_transparent()
    }

    /// Apply the impairments to `frame`, seen at `now`. `emit(frame, deliver_at,
    /// duplicate)` receives the survivors in delivery order (up to two: a held-back frame
    /// follows the one that overtakes it); `duplicate` asks for a second copy right after.
    /// `deliver_at` is [`Instant::ZERO`] unless delay, jitter or a rate is set.
    pub fn apply(
        &mut self,
        frame: HeapFrame,
        now: Instant,
        mut emit: impl FnMut(HeapFrame, Instant, bool),
    ) {
        self.counters.sent.fetch_add(1, Relaxed);
        let delivered = &mut self.delivered;
        self.wire
            .transmit(frame, now, &self.counters, |f, at, dup| {
                *delivered += 1 + u64::from(dup);
                emit(f, at, dup)
            });
    }

    /// When a held-back frame must be released by [`release_stale`](Self::release_stale).
    pub fn release_at(&self) -> Option<Instant> {
        self.wire.release_at()
    }

    /// Hand a held-back frame that nothing overtook within [`REORDER_MAX_HOLD`] to `emit`.
    pub fn release_stale(&mut self, now: Instant, mut emit: impl FnMut(HeapFrame, Instant, bool)) {
        let delivered = &mut self.delivered;
        self.wire.release_stale(now, |f, at, dup| {
            *delivered += 1 + u64::from(dup);
            emit(f, at, dup)
        });
    }

    /// What was done so far: `sent` frames went in, `delivered` came out (copies
    /// included), and the impairment counters; the ring fields stay zero.
    pub fn stats(&self) -> LinkStats {
        let c = &self.counters;
        LinkStats {
            sent: c.sent.load(Relaxed),
            delivered: self.delivered,
            lost: c.lost.load(Relaxed),
            duplicated: c.duplicated.load(Relaxed),
            reordered: c.reordered.load(Relaxed),
            corrupted: c.corrupted.load(Relaxed),
            queue_dropped: c.queue_dropped.load(Relaxed),
            ..LinkStats::default()
        }
    }
}

fn duration_micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// A uniform value in `0..n` (`n > 0`) by multiply-shift, for ranges past `u32`.
fn below(rand: &mut Rand, n: u64) -> u64 {
    ((u128::from(rand.next_u64()) * u128::from(n)) >> 64) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shaper_is_exact_over_many_small_frames() {
        // 64-byte frames at 10 Gbit/s take 51.2 ns each: rounding per frame would drift.
        let mut s = Shaper {
            bps: 10_000_000_000,
            queue_limit: None,
            busy_until_ns: 0,
            carry: 0,
        };
        let mut done = Instant::ZERO;
        for _ in 0..1_000_000 {
            done = s.admit(64, 0).unwrap();
        }
        assert_eq!(s.busy_until_ns, 51_200_000);
        assert_eq!(done, Instant::from_micros(51_200));
    }

    #[test]
    fn shaper_queue_limit_counts_unsent_bytes() {
        let mut s = Shaper {
            bps: 8_000, // 1 byte per ms
            queue_limit: Some(100),
            busy_until_ns: 0,
            carry: 0,
        };
        assert_eq!(s.admit(60, 0), Some(Instant::from_millis(60)));
        assert_eq!(s.admit(50, 0), None, "60 + 50 unsent bytes exceed 100");
        assert_eq!(s.admit(40, 0), Some(Instant::from_millis(100)));
        // 30 ms later 70 bytes are still unsent: 30 more fit, 31 do not.
        assert_eq!(s.admit(31, 30_000_000), None);
        assert_eq!(s.admit(30, 30_000_000), Some(Instant::from_millis(130)));
    }

    #[test]
    fn impairer_accounts_for_every_frame() {
        let mut imp = Impairer::new(Impairments {
            seed: 5,
            loss: 0.2,
            duplicate: 0.1,
            reorder: 0.1,
            ..Impairments::default()
        });
        let mut out = 0u64;
        for i in 0..1000u64 {
            let f = HeapFrame::from_slice(&[i as u8; 60], 0);
            imp.apply(f, Instant::from_micros(i), |_, _, dup| {
                out += 1 + u64::from(dup)
            });
        }
        imp.release_stale(Instant::from_secs(1), |_, _, dup| out += 1 + u64::from(dup));
        let s = imp.stats();
        assert_eq!(s.sent, 1000);
        assert_eq!(s.delivered, out);
        assert_eq!(s.delivered, s.sent + s.duplicated - s.lost);
        assert!(
            s.lost > 100 && s.duplicated > 30 && s.reordered > 30,
            "{s:?}"
        );
    }

    #[test]
    fn below_stays_in_range() {
        let mut r = Rand::from_u64(1);
        assert!((0..10_000).all(|_| below(&mut r, 7) < 7));
        assert_eq!(below(&mut r, 1), 0);
    }
}
