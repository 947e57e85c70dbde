//! HyStart++ (RFC 9406): leave the initial slow start when the RTT says a queue is
//! building, before the losses that would otherwise say so.
//!
//! Slow start doubles the window every round trip until a loss. On a path with a short
//! bottleneck queue the window is then up to twice what the path holds, and the queue
//! drops a whole window's excess at once: hundreds of segments on a fast path, more
//! than a receiver's SACK reports can describe quickly, often ending in a timeout.
//! HyStart++ watches the minimum RTT of each round: when it rises by a threshold over
//! the previous round's, slow start gives way to Conservative Slow Start (CSS), which
//! grows a quarter as fast; if the rise persists for `CSS_ROUNDS` rounds the window is
//! taken as the path's and congestion avoidance begins (ssthresh = cwnd). A minimum RTT
//! falling back below the level that started CSS means the rise was noise: slow start
//! resumes.
//!
//! Used only for the initial slow start, while ssthresh is still "arbitrarily high"
//! (RFC 9406 §4.2): later slow starts stop at the ssthresh a loss taught.
//!
//! The sender tells the algorithm when a round begins (an ACK covers what was
//! outstanding when the previous one began, RFC 9406 `windowEnd`) and hands it each RTT
//! sample, through [`CongestionControl::on_round_start`] and
//! [`CongestionControl::on_rtt_sample`](super::CongestionControl::on_rtt_sample).
//!
//! One deliberate difference from the RFC's recommended constants: the RTT threshold is
//! `clamp(lastRoundMinRTT / 8, floor, MAX_RTT_THRESH)` where the floor is MIN_RTT_THRESH
//! = 4 ms only on paths whose minimum RTT is 16 ms or more, and a quarter of the
//! minimum RTT below that. The 4 ms floor suits Internet paths measured with
//! millisecond clocks (RFC 9406 §4.3 lets implementations tune the constants); on a
//! 100 µs datacenter path it asks for a standing queue of 40 round trips before
//! reacting, so slow start always overshoots there (measured in docs/BENCHMARKS.md: a
//! 2 BDP queue overflows by hundreds of segments). A rise of a quarter of the base RTT
//! keeps twice the RFC's own relative margin (RTT/8) against noise. During slow start
//! each round's minimum RTT trails the queue by about a round (its first samples come
//! from segments sent before the queue built), so a larger threshold fires a round
//! later, when the window has doubled again.
//!
//! [`CongestionControl::on_round_start`]: super::CongestionControl::on_round_start

use crate::time::Duration;

/// RFC 9406 §4.3 MIN_RTT_THRESH, for paths of 16 ms and more (see the module
/// documentation).
const MIN_RTT_THRESH: Duration = Duration::from_millis(4);
/// RFC 9406 §4.3 MAX_RTT_THRESH.
const MAX_RTT_THRESH: Duration = Duration::from_millis(16);
/// RFC 9406 §4.3 MIN_RTT_DIVISOR.
const MIN_RTT_DIVISOR: u32 = 8;
/// RFC 9406 §4.3 N_RTT_SAMPLE: samples per round before the round's minimum counts.
const N_RTT_SAMPLE: u32 = 8;
// `HyStart::on_ack` relies on it.
const _: () = assert!(N_RTT_SAMPLE > 1);
/// RFC 9406 §4.3 CSS_GROWTH_DIVISOR.
pub const CSS_GROWTH_DIVISOR: u32 = 4;
/// RFC 9406 §4.3 CSS_ROUNDS.
const CSS_ROUNDS: u32 = 5;

/// Where the initial slow start is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Standard slow start, watching the RTT.
    SlowStart,
    /// Conservative Slow Start: `rounds` completed, entered at minimum RTT `baseline`.
    Css { rounds: u32, baseline: Duration },
    /// Slow start is over (a loss, or CSS ran its rounds); HyStart++ is not used again.
    Done,
}

/// What a round boundary or an RTT sample asks of the algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Carry on.
    Continue,
    /// CSS ran its rounds: set ssthresh = cwnd and enter congestion avoidance.
    EnterCongestionAvoidance,
}

/// HyStart++ state of one connection (see the module documentation).
#[derive(Debug, Clone)]
pub struct HyStart {
    phase: Phase,
    /// The previous round's minimum RTT, in nanoseconds (see [`nanos`]).
    last_round_min: Option<u64>,
    /// This round's minimum RTT so far, in nanoseconds, once `samples` is not zero
    /// (`u64::MAX` before: the minimum is then a plain `min`, no `Option`).
    current_round_min: u64,
    /// Samples this round; they and `current_round_min` are reset together.
    samples: u32,
}

/// An RTT in nanoseconds: the sender hands in whole microseconds every ACK, and a `u64`
/// compares and takes a minimum in one step where a `Duration` (seconds and nanoseconds)
/// takes several. Exact for any RTT below 584 years; longer ones saturate.
#[inline]
fn nanos(rtt: Duration) -> u64 {
    u64::try_from(rtt.as_nanos()).unwrap_or(u64::MAX)
}

/// [`nanos`] of a whole number of microseconds.
#[inline]
fn nanos_from_micros(us: u64) -> u64 {
    // `saturating_mul` as a comparison and a plain product, which the compiler
    // keeps in registers (its overflow flag made a branch and moves around the
    // multiplication of every sample).
    if us <= u64::MAX / 1_000 {
        us * 1_000
    } else {
        u64::MAX
    }
}

impl Default for HyStart {
    fn default() -> HyStart {
        HyStart::new()
    }
}

impl HyStart {
    /// At the start of a connection: standard slow start, no round measured yet.
    pub const fn new() -> HyStart {
        HyStart {
            phase: Phase::SlowStart,
            last_round_min: None,
            current_round_min: u64::MAX,
            samples: 0,
        }
    }

    /// Where the initial slow start is.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The divisor of slow start's growth: 1, or `CSS_GROWTH_DIVISOR` in CSS.
    pub fn growth_divisor(&self) -> u32 {
        match self.phase {
            Phase::Css { .. } => CSS_GROWTH_DIVISOR,
            _ => 1,
        }
    }

    /// Slow start ended another way (a loss, a timeout): HyStart++ is over.
    pub fn finish(&mut self) {
        self.phase = Phase::Done;
    }

    /// RFC 9406 §4.2: a round begins. The last round's minimum is kept for comparison;
    /// in CSS, a round is counted and the last one ends slow start.
    #[inline]
    pub fn on_round_start(&mut self) -> Verdict {
        if self.phase == Phase::Done {
            return Verdict::Continue;
        }
        let current = core::mem::replace(&mut self.current_round_min, u64::MAX);
        self.last_round_min = (self.samples != 0).then_some(current);
        self.samples = 0;
        if let Phase::Css { rounds, baseline } = self.phase {
            let rounds = rounds + 1;
            if rounds >= CSS_ROUNDS {
                self.phase = Phase::Done;
                return Verdict::EnterCongestionAvoidance;
            }
            self.phase = Phase::Css { rounds, baseline };
        }
        Verdict::Continue
    }

    /// The `on_round_start` hook of an algorithm in slow start: when CSS ran its rounds
    /// (RFC 9406 §4.2), congestion avoidance starts from the current window.
    #[inline]
    pub fn round_start(&mut self, cwnd: u32, ssthresh: &mut u32) {
        if self.on_round_start() == Verdict::EnterCongestionAvoidance && cwnd < *ssthresh {
            *ssthresh = cwnd;
        }
    }

    /// The `on_rtt_sample` hook: samples count only during slow start.
    pub fn rtt_sample(&mut self, cwnd: u32, ssthresh: u32, rtt: Duration) {
        if cwnd < ssthresh {
            self.sample_nanos(nanos(rtt));
        }
    }

    /// [`rtt_sample`](Self::rtt_sample) with the RTT in microseconds, as the sender
    /// measures it on every ACK: no `Duration` to build.
    #[inline]
    pub fn rtt_sample_micros(&mut self, cwnd: u32, ssthresh: u32, rtt_us: u64) {
        if cwnd < ssthresh {
            self.sample_nanos(nanos_from_micros(rtt_us));
        }
    }

    /// A new ACK's hooks at once, as an algorithm calls them: the round boundary
    /// ([`round_start`](Self::round_start)) if `round_start`, then the RTT sample in µs
    /// ([`rtt_sample_micros`](Self::rtt_sample_micros)) if any. The same steps; in
    /// standard slow start a sample that opens a round is simply the round's minimum,
    /// without the reset and the `min` in between (request/response traffic, where
    /// every ACK ends a round, comes this way on every ACK).
    #[inline]
    pub fn on_ack(
        &mut self,
        cwnd: u32,
        ssthresh: &mut u32,
        round_start: bool,
        rtt_us: Option<u64>,
    ) {
        if !self.on_ack_round_start(cwnd, *ssthresh, round_start, rtt_us) {
            self.on_ack_other(cwnd, ssthresh, round_start, rtt_us);
        }
    }

    /// [`on_ack`](Self::on_ack)'s usual case alone: a round start in standard slow
    /// start, which changes only this state. True when it was that case (and done);
    /// false, with nothing changed, when `on_ack_other` is to
    /// run. Apart, so that an algorithm can make the rest its own out-of-line call.
    #[inline(always)]
    pub fn on_ack_round_start(
        &mut self,
        cwnd: u32,
        ssthresh: u32,
        round_start: bool,
        rtt_us: Option<u64>,
    ) -> bool {
        if !(round_start && self.phase == Phase::SlowStart) {
            return false;
        }
        self.last_round_min = (self.samples != 0).then_some(self.current_round_min);
        // One sample decides nothing (N_RTT_SAMPLE > 1).
        (self.current_round_min, self.samples) = match rtt_us {
            Some(rtt) if cwnd < ssthresh => (nanos_from_micros(rtt), 1),
            _ => (u64::MAX, 0),
        };
        true
    }

    /// [`on_ack`](Self::on_ack) but for a round start in standard slow start.
    #[inline]
    fn on_ack_other(
        &mut self,
        cwnd: u32,
        ssthresh: &mut u32,
        round_start: bool,
        rtt_us: Option<u64>,
    ) {
        if round_start {
            self.round_start(cwnd, ssthresh);
        }
        if let Some(rtt) = rtt_us {
            self.rtt_sample_micros(cwnd, *ssthresh, rtt);
        }
    }

    /// RFC 9406 §4.2: an RTT sample arrived during slow start or CSS.
    pub fn on_rtt_sample(&mut self, rtt: Duration) {
        self.sample_nanos(nanos(rtt));
    }

    #[inline]
    fn sample_nanos(&mut self, rtt: u64) {
        if self.phase == Phase::Done {
            return;
        }
        let min = self.current_round_min.min(rtt);
        self.current_round_min = min;
        self.samples = self.samples.saturating_add(1);
        if self.samples < N_RTT_SAMPLE {
            return;
        }
        self.judge_round(min);
    }

    /// The round has its N_RTT_SAMPLE samples: compare its minimum, `min` ns, with the
    /// last round's (slow start) or with CSS's baseline. In `Duration`s, as the RFC's
    /// thresholds are; only from the N_RTT_SAMPLE-th sample of a round on.
    #[cold]
    fn judge_round(&mut self, min: u64) {
        let min = Duration::from_nanos(min);
        match self.phase {
            Phase::SlowStart => {
                let Some(last) = self.last_round_min.map(Duration::from_nanos) else {
                    return;
                };
                if min >= last.saturating_add(rtt_thresh(last)) {
                    self.phase = Phase::Css {
                        rounds: 0,
                        baseline: min,
                    };
                }
            }
            Phase::Css { baseline, .. } => {
                if min < baseline {
                    // The rise was not a queue: back to standard slow start.
                    self.phase = Phase::SlowStart;
                }
            }
            Phase::Done => {}
        }
    }
}

/// The floor is never above a quarter of the minimum RTT (see the module documentation).
const FLOOR_RTT_DIVISOR: u32 = 4;

/// RFC 9406 §4.2 RttThresh, with the floor scaled for short paths (see the module
/// documentation).
fn rtt_thresh(last_round_min: Duration) -> Duration {
    let floor = MIN_RTT_THRESH.min(last_round_min / FLOOR_RTT_DIVISOR);
    (last_round_min / MIN_RTT_DIVISOR).clamp(floor, MAX_RTT_THRESH)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    /// One round: a boundary, then `n` samples of `rtt`.
    fn round(h: &mut HyStart, rtt: Duration, n: u32) -> Verdict {
        let v = h.on_round_start();
        for _ in 0..n {
            h.on_rtt_sample(rtt);
        }
        v
    }

    #[test]
    fn nanos_from_micros_saturates_as_saturating_mul() {
        let edge = u64::MAX / 1_000;
        for us in [
            0,
            1,
            7,
            1_000_000,
            edge - 1,
            edge,
            edge + 1,
            u64::MAX / 2,
            u64::MAX,
        ] {
            assert_eq!(nanos_from_micros(us), us.saturating_mul(1_000), "{us}");
        }
    }

    #[test]
    fn thresholds_follow_the_rfc_above_four_milliseconds() {
        assert_eq!(
            rtt_thresh(Duration::from_millis(20)),
            Duration::from_millis(4)
        );
        assert_eq!(
            rtt_thresh(Duration::from_millis(80)),
            Duration::from_millis(10)
        );
        assert_eq!(
            rtt_thresh(Duration::from_millis(500)),
            Duration::from_millis(16)
        );
        assert_eq!(
            rtt_thresh(Duration::from_millis(16)),
            Duration::from_millis(4)
        );
        // Shorter paths: a rise of a quarter of the base RTT.
        assert_eq!(
            rtt_thresh(Duration::from_millis(4)),
            Duration::from_millis(1)
        );
        assert_eq!(rtt_thresh(us(100)), us(25));
        assert_eq!(rtt_thresh(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn a_delay_rise_leads_through_css_to_congestion_avoidance() {
        let mut h = HyStart::new();
        assert_eq!(round(&mut h, us(100), 8), Verdict::Continue);
        // A rise below the threshold (25 µs): still slow start.
        round(&mut h, us(120), 8);
        assert_eq!(h.phase(), Phase::SlowStart);
        assert_eq!(h.growth_divisor(), 1);
        // The round after compares with 120 µs (threshold 30 µs): a rise to 160 µs
        // crosses it, but only once N_RTT_SAMPLE samples were taken.
        h.on_round_start();
        for _ in 0..7 {
            h.on_rtt_sample(us(160));
        }
        assert_eq!(h.phase(), Phase::SlowStart);
        h.on_rtt_sample(us(160));
        assert_eq!(
            h.phase(),
            Phase::Css {
                rounds: 0,
                baseline: us(160)
            }
        );
        assert_eq!(h.growth_divisor(), CSS_GROWTH_DIVISOR);
        for _ in 1..CSS_ROUNDS {
            assert_eq!(round(&mut h, us(400), 8), Verdict::Continue);
        }
        assert_eq!(round(&mut h, us(400), 8), Verdict::EnterCongestionAvoidance);
        assert_eq!(h.phase(), Phase::Done);
        // Done for good.
        round(&mut h, us(100), 8);
        round(&mut h, us(900), 8);
        assert_eq!(h.phase(), Phase::Done);
        assert_eq!(h.growth_divisor(), 1);
    }

    #[test]
    fn a_spurious_rise_resumes_slow_start() {
        let mut h = HyStart::new();
        round(&mut h, us(100), 8);
        round(&mut h, us(250), 8);
        assert!(matches!(h.phase(), Phase::Css { .. }));
        // The next round's minimum falls below the baseline of 250 µs.
        round(&mut h, us(120), 8);
        assert_eq!(h.phase(), Phase::SlowStart);
    }

    #[test]
    fn few_samples_decide_nothing() {
        let mut h = HyStart::new();
        round(&mut h, us(100), 3);
        round(&mut h, us(900), 8);
        // The first round had fewer than N_RTT_SAMPLE samples, but its minimum still
        // counts as the last round's: it was measured.
        assert!(matches!(h.phase(), Phase::Css { .. }));
        let mut h = HyStart::new();
        round(&mut h, us(100), 8);
        round(&mut h, us(900), 7);
        assert_eq!(h.phase(), Phase::SlowStart);
    }

    #[test]
    fn finish_stops_everything() {
        let mut h = HyStart::new();
        h.finish();
        round(&mut h, us(100), 8);
        round(&mut h, us(900), 8);
        assert_eq!(h.phase(), Phase::Done);
    }
}
