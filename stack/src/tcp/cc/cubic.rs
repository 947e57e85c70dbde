//! CUBIC congestion control (RFC 9438), Linux's default.
//!
//! After a congestion event the window follows a cubic function of the time since the
//! current congestion avoidance stage began (RFC 9438 §4.2):
//!
//! ```text
//! W_cubic(t) = C * (t - K)^3 + W_max        K = cbrt((W_max - cwnd_epoch) / C)
//! ```
//!
//! with C = 0.4 segments/s³, `W_max` the window before the last reduction and
//! `cwnd_epoch` the window when the stage began. The curve is concave below `W_max`
//! (quick recovery, then a plateau near the last known limit) and convex above it
//! (probing for more). Independent of the RTT, which is what makes CUBIC fair between
//! flows of different RTTs and fast on long fat paths.
//!
//! Implemented: the window function and its per-ACK target with the 1.5x cap (§4.2),
//! the Reno-friendly region (§4.3, α = 3(1-β)/(1+β) then 1 once W_est reaches
//! cwnd_prior), concave and convex regions (§4.4, §4.5), multiplicative decrease with
//! β = 0.7 (§4.6), fast convergence (§4.7), timeouts (§4.8), application-limited
//! periods excluded from t (§5.8), Reno slow start below ssthresh with HyStart++ for
//! the initial one (§4.10, RFC 9406, [`super::hystart`]).
//! Not implemented: undoing spurious reductions (§4.9).
//!
//! Units: windows are in bytes and time in microseconds, all integer: `no_std` core
//! has no `cbrt`, so K comes from an integer cube root (Newton's method, like Linux's
//! `cubic_root` without the table), and C, β and α are exact fractions.

use super::hystart::HyStart;
use super::{
    cwnd_limited, initial_window, micros, rescale, restart_window, sane_mss, slow_start,
    CongestionControl, NewAck, INITIAL_SSTHRESH,
};
use crate::time::{Duration, Instant};

/// β_cubic = 0.7 (RFC 9438 §4.6), as a fraction.
const BETA_NUM: u64 = 7;
const BETA_DEN: u64 = 10;
/// C = 0.4 (RFC 9438 §5), as a fraction.
const C_NUM: u128 = 2;
const C_DEN: u128 = 5;
/// α_cubic = 3(1 - β)/(1 + β) = 0.9/1.7 = 9/17 (RFC 9438 §4.3).
const ALPHA_NUM: u64 = 9;
const ALPHA_DEN: u64 = 17;
/// µs³ per s³.
const MICROS3_PER_SEC3: u128 = 1_000_000_000_000_000_000;
/// |t - K| is capped at about 71 minutes: beyond, W_cubic exceeds any u32 window
/// anyway, and the cube stays far inside u128.
const MAX_DT_MICROS: u64 = 1 << 32;

/// One congestion avoidance stage ("epoch"), from its first ACK.
#[derive(Debug, Clone, Copy)]
struct Epoch {
    start: Instant,
    /// K, µs: when the curve reaches W_max.
    k_micros: u64,
    /// The Reno-friendly window estimate W_est, bytes (RFC 9438 §4.3).
    w_est: u32,
    /// Remainder of W_est's growth, in units of 1/(cwnd * α denominator) byte.
    est_rem: u64,
    /// Remainder of cwnd's growth towards the target, in units of 1/cwnd byte.
    inc_rem: u128,
}

/// CUBIC congestion control state of one connection.
#[derive(Debug, Clone)]
pub struct Cubic {
    mss: u32,
    cwnd: u32,
    ssthresh: u32,
    /// W_max, bytes: the window before the last reduction, after fast convergence.
    w_max: u32,
    /// cwnd_prior, bytes: the window when ssthresh was last set (RFC 9438 §4.6).
    cwnd_prior: u32,
    epoch: Option<Epoch>,
    /// RFC 9438 §4.8: after a timeout the next stage starts with K = 0 and
    /// W_max = cwnd_epoch.
    after_rto: bool,
    in_recovery: bool,
    /// A timeout lowered ssthresh and no new data was acknowledged since.
    rto_episode: bool,
    /// The smallest smoothed RTT seen, in whole µs (all the `t + RTT` term uses), for
    /// that term when the caller has no estimate.
    min_rtt_us: Option<u64>,
    /// HyStart++ for the initial slow start.
    hystart: HyStart,
}

/// ⌊∛n⌋ by Newton's method on integers.
///
/// Starting above the root, each step `x' = ⌊(2x + ⌊n/x²⌋)/3⌋` stays at or above
/// ⌊∛n⌋ (AM-GM) and strictly decreases while x exceeds it, so the first step that does
/// not decrease has found it.
fn cube_root(n: u128) -> u128 {
    if n == 0 {
        return 0;
    }
    let bits = 128 - n.leading_zeros();
    // 2^⌈bits/3⌉ > ∛n, and its square (at most 2^86) cannot overflow.
    let mut x: u128 = 1 << bits.div_ceil(3);
    loop {
        let y = (2 * x + n / (x * x)) / 3;
        if y >= x {
            return x;
        }
        x = y;
    }
}

fn mul_frac(bytes: u32, num: u64, den: u64) -> u32 {
    u32::try_from(u64::from(bytes) * num / den).unwrap_or(u32::MAX)
}

impl Cubic {
    /// Slow start from the initial window (RFC 6928 IW10) with an "arbitrarily high"
    /// ssthresh (RFC 5681 §3.1), no W_max yet.
    pub fn new(mss: u32) -> Cubic {
        let mss = sane_mss(mss);
        Cubic {
            mss,
            cwnd: initial_window(mss),
            ssthresh: INITIAL_SSTHRESH,
            w_max: 0,
            cwnd_prior: 0,
            epoch: None,
            after_rto: false,
            in_recovery: false,
            rto_episode: false,
            min_rtt_us: None,
            hystart: HyStart::new(),
        }
    }

    /// W_max in bytes: the window the curve plateaus at (0 before any congestion).
    pub fn w_max(&self) -> u32 {
        self.w_max
    }

    /// W_cubic(t) in bytes (RFC 9438 §4.2, eq. 1), saturating, for t in µs since the
    /// epoch began.
    fn w_cubic(&self, k_micros: u64, t_micros: u64) -> u64 {
        let ahead = t_micros >= k_micros;
        let dt = u128::from(t_micros.abs_diff(k_micros).min(MAX_DT_MICROS));
        // C * dt³ in segments, times MSS, with dt in µs: at most 2^96 * 2 * 2^16.
        let delta = dt * dt * dt * C_NUM * u128::from(self.mss) / (C_DEN * MICROS3_PER_SEC3);
        let delta = u64::try_from(delta).unwrap_or(u64::MAX);
        let w_max = u64::from(self.w_max);
        if ahead {
            w_max.saturating_add(delta)
        } else {
            w_max.saturating_sub(delta)
        }
    }

    /// A new congestion avoidance stage begins with this ACK (RFC 9438 §4.2).
    fn start_epoch(&mut self, now: Instant) -> Epoch {
        let cwnd_epoch = self.cwnd;
        let k_micros = if self.after_rto || self.w_max <= cwnd_epoch {
            // §4.8 after a timeout, and (as Linux) when the window already passed W_max:
            // the curve starts at the current window, in its convex part.
            self.w_max = cwnd_epoch;
            self.after_rto = false;
            0
        } else {
            // K = cbrt((W_max - cwnd_epoch) / C), in µs: cbrt(bytes/(C*MSS) * 10^18).
            let diff = u128::from(self.w_max - cwnd_epoch);
            let k = cube_root(diff * C_DEN * MICROS3_PER_SEC3 / (C_NUM * u128::from(self.mss)));
            u64::try_from(k).unwrap_or(u64::MAX)
        };
        Epoch {
            start: now,
            k_micros,
            // §4.3: W_est starts at cwnd_epoch.
            w_est: cwnd_epoch,
            est_rem: 0,
            inc_rem: 0,
        }
    }

    /// Congestion avoidance for `acked` bytes (RFC 9438 §4.2-§4.5).
    fn congestion_avoidance(&mut self, now: Instant, acked: u32, rtt_us: u64) {
        let mut epoch = match self.epoch {
            Some(epoch) => epoch,
            None => self.start_epoch(now),
        };
        let t = micros(now.saturating_duration_since(epoch.start));
        let cwnd = u64::from(self.cwnd.max(1));

        // §4.3: W_est += α * segments_acked / cwnd (in segments), with α = 1 once
        // W_est has reached cwnd_prior.
        let (num, den) = if epoch.w_est >= self.cwnd_prior {
            (1, 1)
        } else {
            (ALPHA_NUM, ALPHA_DEN)
        };
        let grow = epoch.est_rem + u64::from(acked) * u64::from(self.mss) * num;
        let unit = cwnd * den;
        let est_inc = u32::try_from(grow / unit).unwrap_or(u32::MAX);
        epoch.w_est = epoch.w_est.saturating_add(est_inc);
        epoch.est_rem = grow % unit;

        if self.w_cubic(epoch.k_micros, t) < u64::from(epoch.w_est) {
            // §4.3: Reno-friendly region: cwnd = W_est.
            self.cwnd = self.cwnd.max(epoch.w_est);
        } else {
            // §4.4/§4.5: aim at W_cubic(t + RTT), between cwnd and 1.5 * cwnd, and
            // close (target - cwnd)/cwnd of the gap per acknowledged segment.
            let ahead = t.saturating_add(rtt_us);
            let target = self
                .w_cubic(epoch.k_micros, ahead)
                .clamp(cwnd, cwnd * 3 / 2);
            let grow = epoch.inc_rem + u128::from(target - cwnd) * u128::from(acked);
            let inc = u64::try_from(grow / u128::from(cwnd)).unwrap_or(u64::MAX);
            epoch.inc_rem = grow % u128::from(cwnd);
            let new = cwnd.saturating_add(inc).min(target);
            self.cwnd = u32::try_from(new).unwrap_or(u32::MAX);
        }
        self.epoch = Some(epoch);
    }

    /// Slow start, then congestion avoidance for what slow start left of `acked`. Out
    /// of line: an application-limited sender (request/response) never gets here, and
    /// the per-ACK path it is called from stays small enough to inline.
    #[inline(never)]
    fn grow(&mut self, now: Instant, acked: u32, rtt: Option<u64>) {
        let mut acked = acked;
        if self.cwnd < self.ssthresh {
            // §4.10: Reno slow start below ssthresh.
            let divisor = self.hystart.growth_divisor();
            acked = slow_start(&mut self.cwnd, self.ssthresh, acked, self.mss, divisor);
        }
        if acked == 0 {
            return;
        }
        let rtt = rtt.or(self.min_rtt_us).unwrap_or(0);
        self.congestion_avoidance(now, acked, rtt);
    }

    /// §4.6 / §4.8: ssthresh = max(cwnd * β, 2 * MSS), remembering cwnd_prior.
    fn reduce_ssthresh(&mut self) {
        self.cwnd_prior = self.cwnd;
        self.ssthresh = mul_frac(self.cwnd, BETA_NUM, BETA_DEN).max(self.mss.saturating_mul(2));
    }
}

impl CongestionControl for Cubic {
    fn cwnd(&self) -> u32 {
        self.cwnd
    }

    fn ssthresh(&self) -> u32 {
        self.ssthresh
    }

    fn on_ack(&mut self, now: Instant, acked: u32, flight_before: u32, rtt: Option<Duration>) {
        self.on_ack_micros(now, acked, flight_before, rtt.map(micros));
    }

    /// [`on_ack`](CongestionControl::on_ack) in whole microseconds: the window function
    /// reads the RTT in µs only, so truncating first (and taking the minimum of
    /// truncated values) gives the same windows.
    #[inline]
    fn on_ack_micros(&mut self, now: Instant, acked: u32, flight_before: u32, rtt: Option<u64>) {
        // New data acknowledged: a retransmission after a timeout got through.
        self.rto_episode = false;
        if let Some(rtt) = rtt {
            // Written only when it moves: on most ACKs it does not.
            if self.min_rtt_us.is_none_or(|m| rtt < m) {
                self.min_rtt_us = Some(rtt);
            }
        }
        // Recovery sets the window; an application-limited sender does not grow it
        // (which is also what lets §4.6 use cwnd rather than FlightSize).
        if self.in_recovery || !cwnd_limited(self.cwnd, self.ssthresh, flight_before, self.mss) {
            return;
        }
        self.grow(now, acked, rtt);
    }

    /// `flight` is not used: §4.6 allows cwnd in place of FlightSize where the window
    /// cannot grow while application-limited, which [`on_ack`](Self::on_ack) ensures;
    /// Linux does the same.
    fn on_congestion(&mut self, _now: Instant, _flight: u32) {
        if self.in_recovery {
            return;
        }
        self.hystart.finish();
        // §4.7 fast convergence: a flow that lost below its last W_max releases
        // bandwidth by aiming lower: W_max = cwnd * (1 + β) / 2.
        self.w_max = if self.cwnd < self.w_max {
            mul_frac(self.cwnd, BETA_DEN + BETA_NUM, 2 * BETA_DEN)
        } else {
            self.cwnd
        };
        // §4.6: cwnd = ssthresh = max(cwnd * β, 2 * MSS).
        self.reduce_ssthresh();
        self.cwnd = self.ssthresh;
        self.epoch = None;
        self.after_rto = false;
        self.in_recovery = true;
    }

    fn on_recovery_end(&mut self, _now: Instant) {
        if self.in_recovery {
            // The epoch starts with the next ACK, outside recovery.
            self.cwnd = self.ssthresh;
            self.in_recovery = false;
        }
    }

    fn on_rto(&mut self, _now: Instant, _flight: u32) {
        // §4.8: ssthresh as for a congestion event, held on a repeated timeout or
        // inside a recovery that already lowered it (RFC 5681 §3.1).
        if !self.rto_episode && !self.in_recovery {
            self.reduce_ssthresh();
        }
        self.hystart.finish();
        // RFC 5681 §3.1: cwnd = LW = 1*SMSS; the next stage restarts the curve (§4.8).
        self.cwnd = self.mss;
        self.epoch = None;
        self.after_rto = true;
        self.in_recovery = false;
        self.rto_episode = true;
    }

    #[inline]
    fn on_idle_restart_micros(&mut self, _now: Instant, idle: u64, rto: u64) {
        if restart_window(&mut self.cwnd, &mut self.ssthresh, self.mss, idle, rto) {
            // The curve's origin no longer matches the window: start a new stage.
            self.epoch = None;
        } else if let Some(epoch) = &mut self.epoch {
            // §5.8: t must not count time the flow was application-limited.
            epoch.start = Instant::from_micros(epoch.start.total_micros().saturating_add(idle));
        }
    }

    fn set_mss(&mut self, mss: u32) {
        let mss = sane_mss(mss);
        self.cwnd = rescale(self.cwnd, self.mss, mss).max(mss);
        if self.ssthresh < INITIAL_SSTHRESH {
            self.ssthresh = rescale(self.ssthresh, self.mss, mss).max(2 * mss);
        }
        self.w_max = rescale(self.w_max, self.mss, mss);
        self.cwnd_prior = rescale(self.cwnd_prior, self.mss, mss);
        // K depends on the MSS: recompute it from here.
        self.epoch = None;
        self.mss = mss;
    }

    #[inline]
    fn on_round_start(&mut self, _now: Instant) {
        // RFC 9406 §4.2: congestion avoidance from this window once CSS ran its rounds (the
        // first stage starts at it, in the curve's convex part, as after a timeout).
        self.hystart.round_start(self.cwnd, &mut self.ssthresh);
    }

    fn on_rtt_sample(&mut self, _now: Instant, rtt: Duration) {
        self.hystart.rtt_sample(self.cwnd, self.ssthresh, rtt);
    }

    #[inline]
    fn on_rtt_sample_micros(&mut self, _now: Instant, rtt_us: u64) {
        self.hystart
            .rtt_sample_micros(self.cwnd, self.ssthresh, rtt_us);
    }

    /// The HyStart++ hooks in one step ([`HyStart::on_ack`]), then the growth.
    #[inline(always)]
    fn on_new_ack(&mut self, now: Instant, ack: NewAck) {
        self.hystart
            .on_ack(self.cwnd, &mut self.ssthresh, ack.round_start, ack.rtt_us);
        if let Some(grow) = ack.grow {
            self.on_ack_micros(now, grow.acked, grow.flight_before, grow.srtt_us);
        }
    }
}

impl Cubic {
    /// [`on_new_ack`](CongestionControl::on_new_ack) if HyStart++ takes the ACK in its
    /// usual case ([`HyStart::on_ack_round_start`]: a round start in slow start, every
    /// ACK of request/response traffic): then the same steps, and true; else false,
    /// with nothing changed.
    #[inline(always)]
    pub fn on_new_ack_round_start(&mut self, now: Instant, ack: NewAck) -> bool {
        if !self
            .hystart
            .on_ack_round_start(self.cwnd, self.ssthresh, ack.round_start, ack.rtt_us)
        {
            return false;
        }
        if let Some(grow) = ack.grow {
            self.on_ack_micros(now, grow.acked, grow.flight_before, grow.srtt_us);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    const MSS: u32 = 1000;

    /// One round trip of a window-limited sender: a whole window is sent, each segment
    /// acknowledged by its own ACK spread over the RTT, the window refilled after each.
    fn round(cc: &mut Cubic, now: &mut Instant, rtt: Duration) {
        let segments = (cc.cwnd() / MSS).max(1);
        for i in 0..segments {
            let at = *now + rtt * (i + 1) / segments;
            cc.on_ack(at, MSS, cc.cwnd(), Some(rtt));
        }
        *now += rtt;
    }

    fn dist(a: f64, b: f64) -> f64 {
        if a > b {
            a - b
        } else {
            b - a
        }
    }

    /// A connection that lost at exactly `segments` segments and left recovery.
    fn after_loss_at(segments: u32) -> Cubic {
        let mut cc = Cubic::new(MSS);
        while cc.cwnd() < segments * MSS {
            cc.on_ack(Instant::ZERO, MSS, cc.cwnd(), None);
        }
        assert_eq!(cc.cwnd(), segments * MSS);
        cc.on_congestion(Instant::ZERO, segments * MSS);
        cc.on_recovery_end(Instant::ZERO);
        cc
    }

    #[test]
    fn cube_root_is_exact_and_monotone() {
        let mut last = 0;
        for n in 0..200_000u128 {
            let r = cube_root(n);
            assert!(r * r * r <= n && (r + 1) * (r + 1) * (r + 1) > n, "n = {n}");
            assert!(r >= last);
            last = r;
        }
        for x in (1..=(1u128 << 42))
            .step_by(987_654_321)
            .chain([2, 3, 1 << 42])
        {
            assert_eq!(cube_root(x * x * x), x);
            assert_eq!(cube_root(x * x * x - 1), x - 1);
            assert_eq!(cube_root(x * x * x + 1), x);
        }
        let r = cube_root(u128::MAX);
        assert!(r.checked_pow(3).is_some());
        assert!((r + 1).checked_pow(3).is_none());
    }

    #[test]
    fn slow_start_doubles_per_rtt() {
        let mut cc = Cubic::new(MSS);
        let mut now = Instant::ZERO;
        for expected in [20, 40, 80, 160] {
            round(&mut cc, &mut now, Duration::from_millis(50));
            assert_eq!(cc.cwnd(), expected * MSS);
        }
    }

    #[test]
    fn congestion_event_multiplies_by_beta_with_fast_convergence() {
        let mut cc = after_loss_at(100);
        assert_eq!(cc.cwnd(), 70 * MSS);
        assert_eq!(cc.ssthresh(), 70 * MSS);
        assert_eq!(cc.w_max(), 100 * MSS);
        // A second loss below W_max: W_max = 80 * 0.85 = 68, cwnd = 80 * 0.7 = 56.
        while cc.cwnd() < 80 * MSS {
            cc.on_ack(
                Instant::ZERO,
                MSS,
                cc.cwnd(),
                Some(Duration::from_millis(1)),
            );
        }
        let at_loss = cc.cwnd();
        cc.on_congestion(Instant::ZERO, at_loss);
        assert_eq!(cc.w_max(), at_loss * 17 / 20);
        assert_eq!(cc.cwnd(), at_loss * 7 / 10);
        // Floor of 2*MSS.
        let mut cc = Cubic::new(MSS);
        cc.on_rto(Instant::ZERO, 0);
        cc.on_ack(Instant::ZERO, MSS, MSS, None);
        cc.on_congestion(Instant::ZERO, 2 * MSS);
        assert_eq!(cc.cwnd(), 2 * MSS);
    }

    #[test]
    fn k_matches_the_formula() {
        let mut cc = after_loss_at(100);
        cc.on_ack(
            Instant::from_secs(1),
            MSS,
            cc.cwnd(),
            Some(Duration::from_millis(100)),
        );
        // K = cbrt(100 * 0.3 / 0.4) = cbrt(75) s = 4.217163 s.
        let k = cc.epoch.map(|e| e.k_micros);
        assert_eq!(k, Some(4_217_163));
    }

    #[test]
    fn window_follows_the_cubic_curve() {
        let rtt = Duration::from_millis(100);
        let mut cc = after_loss_at(100);
        let start = Instant::from_secs(10);
        let mut now = start;
        // (seconds since epoch start, cwnd in segments) after each round.
        let mut trace = Vec::new();
        for _ in 0..80 {
            round(&mut cc, &mut now, rtt);
            let t = (now - start).as_secs_f64();
            trace.push((t, f64::from(cc.cwnd()) / f64::from(MSS)));
        }
        // K = cbrt(75) s; no float cbrt in core, and the tests must build without std.
        let k = 4.217_163;
        let w_cubic = |t: f64| 0.4 * (t - k) * (t - k) * (t - k) + 100.0;
        // The Reno-friendly estimate: from 70, 9/17 segment per RTT up to cwnd_prior =
        // 100, then one per RTT. It overtakes the curve's flat part near t = 5.9 s.
        let w_est = |t: f64| {
            let rounds = t / 0.1;
            let to_prior = 30.0 * 17.0 / 9.0;
            if rounds <= to_prior {
                70.0 + rounds * 9.0 / 17.0
            } else {
                100.0 + rounds - to_prior
            }
        };
        let w = |t: f64| {
            if w_cubic(t) < w_est(t) {
                w_est(t)
            } else {
                w_cubic(t)
            }
        };
        for &(t, cwnd) in &trace {
            // cwnd aims at W(t + RTT) and closes the gap within about one RTT.
            assert!(
                dist(cwnd, w(t)) / w(t) < 0.03,
                "t = {t}: {cwnd} vs {}",
                w(t)
            );
        }
        assert!(trace.iter().any(|&(t, _)| w_est(t) > w_cubic(t) + 3.0));
        // Back at W_max after K seconds, within 2%.
        let at_k = trace
            .iter()
            .find(|(t, _)| *t >= k)
            .map(|(_, c)| *c)
            .unwrap_or(0.0);
        assert!(dist(at_k, 100.0) < 2.0, "cwnd {at_k} at K");
        // Concave below W_max (growth per RTT shrinks), convex above (it grows again).
        let growth: Vec<(f64, f64)> = trace
            .windows(2)
            .map(|p| (p[1].0, p[1].1 - p[0].1))
            .collect();
        let before: Vec<f64> = growth
            .iter()
            .filter(|(t, _)| *t < k - 0.5)
            .map(|g| g.1)
            .collect();
        let after: Vec<f64> = growth
            .iter()
            .filter(|(t, _)| *t > k + 0.5)
            .map(|g| g.1)
            .collect();
        assert!(before.windows(2).all(|p| p[1] <= p[0] + 0.05), "{before:?}");
        assert!(after.windows(2).all(|p| p[1] >= p[0] - 0.05), "{after:?}");
        assert!(before[0] > 3.0 * before[before.len() - 1]);
        assert!(after[after.len() - 1] > 3.0 * after[0]);
        assert!(trace.iter().all(|(t, c)| *t >= k - 0.5 || *c < 100.0));
        assert!(trace.iter().all(|(t, c)| *t <= k + 1.0 || *c > 100.0));
    }

    #[test]
    fn reno_friendly_region_dominates_at_short_rtt() {
        // 1 ms RTT: in 0.2 s Reno would add about one segment per RTT, far more than
        // the curve (W_cubic(0.2 s) = 74 segments): CUBIC must keep up with Reno.
        let rtt = Duration::from_millis(1);
        let mut cc = after_loss_at(100);
        let mut now = Instant::from_secs(10);
        for _ in 0..200 {
            round(&mut cc, &mut now, rtt);
        }
        let cwnd = cc.cwnd() / MSS;
        // W_est: 70 + (9/17 per RTT up to cwnd_prior = 100, then 1 per RTT) ~ 240.
        assert!((220..=260).contains(&cwnd), "cwnd {cwnd} segments");

        // 100 ms RTT: after 2 s (20 RTTs) Reno would be at ~81 segments, the curve at
        // W_cubic(2 s) = 95.6: the cubic region rules.
        let rtt = Duration::from_millis(100);
        let mut cc = after_loss_at(100);
        let mut now = Instant::from_secs(10);
        for _ in 0..20 {
            round(&mut cc, &mut now, rtt);
        }
        let cwnd = cc.cwnd() / MSS;
        assert!((93..=98).contains(&cwnd), "cwnd {cwnd} segments");
    }

    #[test]
    fn target_is_capped_at_one_and_a_half_windows() {
        // Long after K the curve is far above the window; growth per RTT is then at
        // most 50%.
        let rtt = Duration::from_millis(100);
        let mut cc = after_loss_at(100);
        let mut now = Instant::from_secs(10);
        round(&mut cc, &mut now, rtt);
        now += Duration::from_secs(60);
        let before = cc.cwnd();
        round(&mut cc, &mut now, rtt);
        assert!(cc.cwnd() <= before * 3 / 2 + MSS);
        assert!(cc.cwnd() > before * 5 / 4);
    }

    #[test]
    fn rto_collapses_to_one_mss_and_restarts_the_curve() {
        let mut cc = after_loss_at(100);
        let mut now = Instant::from_secs(10);
        let rtt = Duration::from_millis(100);
        for _ in 0..10 {
            round(&mut cc, &mut now, rtt);
        }
        let before = cc.cwnd();
        cc.on_rto(now, before);
        assert_eq!(cc.cwnd(), MSS);
        assert_eq!(cc.ssthresh(), before * 7 / 10);
        // A repeated timeout holds ssthresh.
        cc.on_rto(now, MSS);
        assert_eq!(cc.ssthresh(), before * 7 / 10);
        // Slow start back to ssthresh, then a convex curve from there (K = 0,
        // W_max = cwnd_epoch).
        while cc.cwnd() < cc.ssthresh() {
            round(&mut cc, &mut now, rtt);
        }
        round(&mut cc, &mut now, rtt);
        let epoch = cc.epoch.map(|e| e.k_micros);
        assert_eq!(epoch, Some(0));
        assert!(cc.w_max() >= before * 7 / 10 && cc.w_max() <= cc.cwnd());
    }

    #[test]
    fn idle_time_is_not_part_of_the_curve() {
        let rtt = Duration::from_millis(100);
        let mut busy = after_loss_at(100);
        let mut now = Instant::from_secs(10);
        for _ in 0..10 {
            round(&mut busy, &mut now, rtt);
        }
        let mut idle = busy.clone();
        let mut idle_now = now + Duration::from_millis(800);
        idle.on_idle_restart(idle_now, Duration::from_millis(800), Duration::from_secs(1));
        assert_eq!(idle.cwnd(), busy.cwnd());
        for _ in 0..10 {
            round(&mut busy, &mut now, rtt);
            round(&mut idle, &mut idle_now, rtt);
        }
        assert_eq!(idle.cwnd(), busy.cwnd(), "the pause shifted the curve");

        // Without the shift the paused flow would have jumped ahead on the curve.
        let mut unshifted = busy.clone();
        let mut later = now + Duration::from_millis(800);
        round(&mut busy, &mut now, rtt);
        round(&mut unshifted, &mut later, rtt);
        assert!(unshifted.cwnd() > busy.cwnd());

        // Longer than the RTO: restart window, ssthresh keeps 3/4 of the old window.
        let old = busy.cwnd();
        busy.on_idle_restart(now, Duration::from_secs(3), Duration::from_secs(1));
        assert_eq!(busy.cwnd(), 10 * MSS);
        assert_eq!(busy.ssthresh(), old * 3 / 4);
        assert!(busy.epoch.is_none());
    }

    #[test]
    fn application_limited_sender_does_not_grow() {
        let mut cc = after_loss_at(100);
        for i in 0..1000 {
            cc.on_ack(Instant::from_millis(i), MSS, 50 * MSS, None);
        }
        assert_eq!(cc.cwnd(), 70 * MSS);
    }

    #[test]
    fn mss_change_keeps_segments() {
        let mut cc = Cubic::new(536);
        cc.set_mss(1460);
        assert_eq!(cc.cwnd(), 14_600);
        let mut cc = after_loss_at(100);
        cc.set_mss(500);
        assert_eq!(cc.w_max(), 50 * 1000);
        assert_eq!(cc.cwnd(), 35 * 1000);
        cc.set_mss(0);
        cc.on_ack(
            Instant::from_secs(1),
            1,
            u32::MAX,
            Some(Duration::from_millis(1)),
        );
        assert!(cc.cwnd() >= 1);
    }
}
