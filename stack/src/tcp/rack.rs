//! RACK-TLP (RFC 8985): time-based loss detection, and the Tail Loss Probe.
//!
//! **RACK** ("recent ACK") declares a segment lost when a segment sent *after* it has
//! been delivered (cumulatively or selectively acknowledged) and a reordering window
//! has passed since it was sent: `xmit + RACK.rtt + reo_wnd <= now`. Counting time
//! instead of duplicate ACKs finds losses that the DupThresh rule of RFC 6675 cannot:
//! a lost retransmission (it was sent after the segments SACKed since), losses at the
//! tail of a flight (too few segments follow to make three duplicate ACKs), and losses
//! in a burst of hundreds of holes. Without reordering seen, the window is zero in
//! recovery and once DupThresh segments are SACKed (Linux's behaviour), so RACK acts at
//! least as fast as DupThresh.
//!
//! **TLP** sends one probe two smoothed RTTs after the last transmission when nothing
//! else would bring an ACK: new data if the window allows, else the last segment again.
//! The ACK that answers it carries the SACK information RACK needs, so a tail loss is
//! repaired by fast recovery instead of a retransmission timeout (200 ms at least,
//! thousands of round trips on a datacenter path).
//!
//! What lives where: the per-segment send times and marks are in the sent log
//! ([`SentLog`](super::sent::SentLog), which also runs the loss scan,
//! [`SentLog::detect_lost`](super::sent::SentLog::detect_lost)); this module keeps
//! RACK's and TLP's own state, and the TCB wires both into its ACK processing
//! (`input.rs`), its timers (`timers.rs`: the reordering timer and the probe timeout)
//! and its send ladder (`output.rs`: lost segments first, the probe). RACK-TLP needs
//! SACK (RFC 8985 §4); connections without it keep RFC 5681 / RFC 6582.

use crate::tcp::sent::{sent_after, SentSeg};
use crate::time::{Duration, Instant};
use crate::wire::seq::SeqNumber;

/// RFC 6675 DupThresh: with this many segments SACKed and no reordering seen, RACK's
/// window is zero (RFC 8985 §6.2 step 4).
const DUP_THRESH: u32 = 3;

/// RFC 8985 §6.2 step 4: a D-SACK-widened reordering window is kept for this many
/// recoveries without D-SACK.
const REO_WND_PERSIST: u32 = 16;

/// RFC 8985 §7.2 WCDelAckT: the worst-case delayed-ACK time a probe waits for when only
/// one segment is in flight (a receiver may hold its ACK that long).
pub const WC_DEL_ACK: Duration = Duration::from_millis(200);

/// RFC 8985 §7.2: the probe timeout before any RTT sample.
pub const PTO_NO_SRTT: Duration = Duration::from_secs(1);

/// RACK-TLP state of one connection (RFC 8985 §5.2 and §7).
#[derive(Debug, Clone)]
pub struct Rack {
    /// `RACK.xmit_ts` / `RACK.end_seq`: the most recently sent segment delivered so far.
    newest: Option<(Instant, SeqNumber)>,
    /// When that segment was delivered: `RACK.rtt` is this less its send time (kept
    /// this way so that delivering a segment costs no time arithmetic).
    delivered_at: Instant,
    /// `RACK.fack`: the highest sequence number delivered.
    fack: Option<SeqNumber>,
    /// `RACK.reordering_seen`.
    reordering_seen: bool,
    /// `RACK.dsack_round`: D-SACKs before this SND.NXT count as one round.
    dsack_round: Option<SeqNumber>,
    /// `RACK.reo_wnd_mult`.
    reo_wnd_mult: u32,
    /// `RACK.reo_wnd_persist`.
    reo_wnd_persist: u32,
    /// `TLP.end_seq`: SND.NXT after the probe of the episode in progress.
    pub tlp_end: Option<SeqNumber>,
    /// `TLP.is_retrans`: the probe resent old data.
    pub tlp_is_retrans: bool,
}

impl Default for Rack {
    fn default() -> Rack {
        Rack::new()
    }
}

impl Rack {
    /// Nothing delivered yet, no reordering seen, no probe out.
    pub const fn new() -> Rack {
        Rack {
            newest: None,
            delivered_at: Instant::ZERO,
            fack: None,
            reordering_seen: false,
            dsack_round: None,
            reo_wnd_mult: 1,
            reo_wnd_persist: 0,
            tlp_end: None,
            tlp_is_retrans: false,
        }
    }

    /// The most recently sent segment delivered so far, with its RTT: what
    /// [`SentLog::detect_lost`](super::sent::SentLog::detect_lost) compares against.
    pub fn newest(&self) -> Option<(Instant, SeqNumber, Duration)> {
        self.newest.map(|(t, s)| (t, s, self.delivered_at - t))
    }

    /// [`newest`](Self::newest) without its RTT: on most ACKs there is nothing to
    /// scan, and the RTT (a `Duration` built from the clock) is not needed.
    #[inline]
    pub fn newest_sent(&self) -> Option<(Instant, SeqNumber)> {
        self.newest
    }

    /// When the most recently sent segment delivered so far was (its RTT is this
    /// minus its send time).
    #[inline]
    pub fn delivered_at(&self) -> Instant {
        self.delivered_at
    }

    /// Reordering has been seen on this connection.
    pub fn reordering_seen(&self) -> bool {
        self.reordering_seen
    }

    /// RFC 8985 §6.2 steps 2 and 3 for one segment newly delivered by an ACK
    /// (`RACK_update` and `RACK_detect_reordering`). Call for every such segment, in
    /// sequence order. For a retransmitted segment, `trust(rtt)` says whether the ACK
    /// may answer its last transmission: its timestamp echo is not older than that
    /// transmission, and `rtt` is not below the minimum RTT (see
    /// [`trust_retransmission`]); it is not called for segments sent once.
    pub fn on_delivered(
        &mut self,
        seg: &SentSeg,
        now: Instant,
        trust: impl FnOnce(Duration) -> bool,
    ) {
        // Step 3: a segment delivered below one delivered earlier was reordered,
        // unless it was retransmitted (then the retransmission explains it).
        match self.fack {
            Some(f) if !seg.end.gt(f) => {
                if seg.end.lt(f) && !seg.retransmitted() {
                    self.reordering_seen = true;
                }
            }
            _ => self.fack = Some(seg.end),
        }
        // Step 2: which copy of a retransmitted segment was delivered is ambiguous;
        // trust it only if the echo is not older than the retransmission and it took
        // at least the minimum RTT (Linux tcp_rack_advance).
        if seg.retransmitted() && !trust(now - seg.xmit) {
            return;
        }
        self.note_newest(seg, now);
    }

    /// [`on_delivered`](Self::on_delivered) for a segment sent once that ends at or
    /// above every segment delivered before (as the last segment sent does: nothing
    /// delivered lies above SND.MAX). Step 3 then finds no reordering, and the
    /// forward-most ACKed end becomes the segment's whichever way it compares (below
    /// it, or equal), so it is simply set; step 2 as there.
    #[inline(always)]
    pub fn on_delivered_last(&mut self, seg: &SentSeg, now: Instant) {
        debug_assert!(!seg.retransmitted() && self.fack.is_none_or(|f| !seg.end.lt(f)));
        self.fack = Some(seg.end);
        self.note_newest(seg, now);
    }

    /// Step 2's end, shared by [`on_delivered`](Self::on_delivered) and
    /// [`on_delivered_last`](Self::on_delivered_last): `seg`, delivered at `now`,
    /// becomes RACK's newest delivered segment if it was sent after the one so far.
    #[inline(always)]
    fn note_newest(&mut self, seg: &SentSeg, now: Instant) {
        let newer = match self.newest {
            Some((t, end)) => sent_after(seg.xmit, seg.end, t, end),
            None => true,
        };
        if newer {
            self.newest = Some((seg.xmit, seg.end));
            self.delivered_at = now;
        }
    }

    /// RFC 8985 §6.2 step 4: an ACK with a D-SACK arrived; `snd_una` and `snd_nxt` are
    /// after it. One round of D-SACKs (until `SND.UNA` passes the `SND.NXT` of the
    /// first) widens the reordering window by one step.
    pub fn on_dsack(&mut self, snd_una: SeqNumber, snd_nxt: SeqNumber) {
        self.end_dsack_round(snd_una);
        if self.dsack_round.is_none() {
            self.dsack_round = Some(snd_nxt);
            self.reo_wnd_mult = self.reo_wnd_mult.saturating_add(1);
            self.reo_wnd_persist = REO_WND_PERSIST;
        }
    }

    fn end_dsack_round(&mut self, snd_una: SeqNumber) {
        if self.dsack_round.is_some_and(|r| snd_una.ge(r)) {
            self.dsack_round = None;
        }
    }

    /// RFC 8985 §6.2 step 4: a recovery (fast or after a timeout) ended; after
    /// `REO_WND_PERSIST` of them without D-SACK the window shrinks back.
    pub fn on_recovery_end(&mut self) {
        self.reo_wnd_persist = self.reo_wnd_persist.saturating_sub(1);
        if self.reo_wnd_persist == 0 {
            self.reo_wnd_mult = 1;
        }
    }

    /// RFC 8985 §6.2 step 4 (`RACK_update_reo_wnd`): the reordering window. Zero while
    /// no reordering was seen and either a recovery is in progress or `sacked_segs`
    /// reached DupThresh (the DupThresh rule, as Linux); otherwise a quarter of the
    /// minimum RTT per step (D-SACK rounds widen it), at most the smoothed RTT.
    pub fn reo_wnd(
        &self,
        in_recovery: bool,
        sacked_segs: u32,
        min_rtt: Option<Duration>,
        srtt: Option<Duration>,
    ) -> Duration {
        if !self.reordering_seen && (in_recovery || sacked_segs >= DUP_THRESH) {
            return Duration::ZERO;
        }
        let wnd = (min_rtt.unwrap_or(Duration::ZERO) / 4).saturating_mul(self.reo_wnd_mult);
        match srtt {
            Some(srtt) => wnd.min(srtt),
            None => wnd,
        }
    }

    /// RFC 8985 §7.2: the probe timeout for a flight of `segments` segments: two
    /// smoothed RTTs, plus the worst-case delayed ACK when only one segment is out
    /// (its ACK may be delayed); one second before any RTT sample.
    pub fn pto(srtt: Option<Duration>, segments: usize) -> Duration {
        let srtt = srtt.map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
        Duration::from_micros(Rack::pto_micros(srtt, segments <= 1))
    }

    /// [`pto`](Self::pto) in microseconds, from an SRTT in microseconds, `one` when at
    /// most one segment is out: computed for every segment of new data, so kept to
    /// integer arithmetic, and the flight asked only as what the PTO depends on
    /// ([`SentLog::at_most_one`](crate::tcp::sent::SentLog::at_most_one)).
    #[inline]
    pub fn pto_micros(srtt_micros: Option<u64>, one: bool) -> u64 {
        const WC_DEL_ACK_MICROS: u64 = WC_DEL_ACK.as_micros() as u64;
        const PTO_NO_SRTT_MICROS: u64 = PTO_NO_SRTT.as_micros() as u64;
        // Linux keeps the probe at least 10 ms out (`tcp_schedule_loss_probe`): on a
        // path of tens of microseconds, 2·SRTT is shorter than a host's scheduling
        // hiccup, and probes would fire at a peer that is merely descheduled.
        const PTO_MIN_MICROS: u64 = 10_000;
        // The delayed ACK alone, and the no-sample PTO, are past the floor already:
        // only 2·SRTT is brought up to it (one comparison less for one segment in
        // flight, which every request and answer has).
        const _: () = assert!(WC_DEL_ACK_MICROS >= PTO_MIN_MICROS);
        const _: () = assert!(PTO_NO_SRTT_MICROS >= PTO_MIN_MICROS);
        match srtt_micros {
            Some(srtt) if one => srtt.saturating_mul(2).saturating_add(WC_DEL_ACK_MICROS),
            Some(srtt) => srtt.saturating_mul(2).max(PTO_MIN_MICROS),
            None => PTO_NO_SRTT_MICROS,
        }
    }

    /// A retransmission timeout: any probe episode is over (RFC 8985 §7.4: a probe
    /// answered by nothing is followed by the RTO).
    pub fn on_timeout(&mut self) {
        self.tlp_end = None;
        self.tlp_is_retrans = false;
    }
}

/// RFC 8985 §6.2 step 2 for a retransmitted segment delivered `rtt` after its last
/// transmission at `xmit`: the ACK may answer that transmission if its timestamp echo
/// (`tsecr`, when timestamps are on; our TSval is the millisecond clock plus
/// `ts_offset`) is not older than the TSval the transmission carried, and if `rtt` is
/// not below the minimum RTT (an earlier copy would explain a faster answer).
/// `min_rtt_us` is in microseconds, as the estimator keeps it: the caller passes it
/// for every delivered segment, and only a retransmitted one is judged.
pub fn trust_retransmission(
    rtt: Duration,
    xmit: Instant,
    tsecr: Option<u32>,
    ts_offset: u32,
    min_rtt_us: Option<u64>,
) -> bool {
    let echo_ok = match tsecr {
        Some(echo) => {
            let tsval = (xmit.total_millis() as u32).wrapping_add(ts_offset);
            (echo.wrapping_sub(tsval) as i32) >= 0
        }
        None => true,
    };
    // `rtt >= m µs` exactly: m µs is a whole number of microseconds.
    echo_ok && min_rtt_us.is_none_or(|m| rtt.as_micros() >= u128::from(m))
}

/// What an ACK means for a probe episode (RFC 8985 §7.4, as Linux's
/// `tcp_process_tlp_ack`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlpAck {
    /// No episode, or the ACK does not settle it yet.
    Pending,
    /// The episode is over, nothing was lost (the probe was new data, or both the
    /// original and the probe arrived).
    NoLoss,
    /// The probe repaired a loss: the congestion window must be reduced once.
    Loss,
}

impl Rack {
    /// RFC 8985 §7.4: settle a probe episode with an ACK. `advanced`: it acknowledged
    /// new data; `dsack_probe`: it carries a D-SACK for the probe's sequence range;
    /// `news`: it carried new information (data, new SACK blocks, a window change).
    pub fn on_tlp_ack(&mut self, ack: SeqNumber, dsack_probe: bool, news: bool) -> TlpAck {
        let Some(end) = self.tlp_end else {
            return TlpAck::Pending;
        };
        if ack.lt(end) {
            return TlpAck::Pending;
        }
        let verdict = if !self.tlp_is_retrans || dsack_probe {
            // New data delivered, or the original and the probe both arrived.
            TlpAck::NoLoss
        } else if ack.gt(end) {
            // Data sent after the probe is acknowledged without a D-SACK for the
            // probe: the probe repaired a loss.
            TlpAck::Loss
        } else if !news {
            // A pure duplicate ACK at the probe's end: both copies arrived.
            TlpAck::NoLoss
        } else {
            return TlpAck::Pending;
        };
        self.tlp_end = None;
        self.tlp_is_retrans = false;
        verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::sent::SentLog;

    fn sq(n: u32) -> SeqNumber {
        SeqNumber(n)
    }

    fn at(us: u64) -> Instant {
        Instant::from_micros(us)
    }

    fn us(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    /// Segments of 100 octets from 1000, the i-th sent at 10·i µs.
    fn sent_log(n: u32) -> SentLog {
        let mut log = SentLog::new(64);
        for i in 0..n {
            log.on_send(at(u64::from(i) * 10), sq(1000 + 100 * i), 100, 100);
        }
        log
    }

    #[test]
    fn the_last_segment_delivered_leaves_rack_as_on_delivered_does() {
        // `on_delivered_last` (input.rs `try_sole_ack`): for a segment sent once
        // ending at or above everything delivered before, the same state as
        // `on_delivered`, from any earlier state: nothing delivered yet, the highest
        // end below or at the segment's, the newest delivered one sent before, at the
        // same time (ends breaking the tie) or after it (a retransmission).
        let seg = |xmit: u64, end: u32| {
            let mut log = SentLog::new(4);
            log.on_send(at(xmit), sq(end - 100), 100, 100);
            *log.last().unwrap()
        };
        let mut starts = alloc::vec![Rack::new()];
        for (xmit, end) in [(5, 1100), (50, 1200), (80, 1300), (50, 1300), (90, 1250)] {
            let mut r = Rack::new();
            r.on_delivered(&seg(xmit, end), at(100), |_| true);
            starts.push(r);
        }
        let mut reordered = Rack::new();
        reordered.on_delivered(&seg(20, 1300), at(100), |_| true);
        reordered.on_delivered(&seg(10, 1200), at(110), |_| true);
        assert!(reordered.reordering_seen());
        starts.push(reordered);
        for (i, start) in starts.iter().enumerate() {
            for (xmit, end) in [(50, 1300), (60, 1300), (70, 1400), (40, 1400)] {
                let s = seg(xmit, end);
                let mut last = start.clone();
                last.on_delivered_last(&s, at(300));
                let mut plain = start.clone();
                plain.on_delivered(&s, at(300), |_| true);
                assert_eq!(
                    alloc::format!("{last:?}"),
                    alloc::format!("{plain:?}"),
                    "start {i}, segment sent at {xmit} ending at {end}"
                );
            }
        }
    }

    #[test]
    fn the_newest_delivered_segment_is_tracked() {
        let mut rack = Rack::new();
        let mut log = sent_log(5);
        let now = at(200);
        // SACK segment 3 then segment 1 (an older one): RACK stays on segment 3.
        log.on_sack(sq(1300), sq(1400), |s| rack.on_delivered(s, now, |_| true));
        log.on_sack(sq(1100), sq(1200), |s| rack.on_delivered(s, now, |_| true));
        assert_eq!(rack.newest(), Some((at(30), sq(1400), us(170))));
        // Segment 1 was delivered below the highest delivered one, and was sent once:
        // reordering.
        assert!(rack.reordering_seen());
    }

    #[test]
    fn ambiguous_retransmissions_do_not_move_rack() {
        let mut rack = Rack::new();
        let mut log = sent_log(3);
        log.on_sack(sq(1100), sq(1200), |s| {
            rack.on_delivered(s, at(100), |_| true)
        });
        // Segment 0 retransmitted at 150 µs and acknowledged at 160 µs: 10 µs is below
        // the minimum RTT of 90 µs, so the original must have been acknowledged.
        log.on_send(at(150), sq(1000), 100, 100);
        log.on_cum_ack(sq(1100), |s| {
            rack.on_delivered(s, at(160), |rtt| {
                trust_retransmission(rtt, s.xmit, None, 0, Some(90))
            })
        });
        assert_eq!(rack.newest(), Some((at(10), sq(1200), us(90))));
        // An echo older than the retransmission rules it out too.
        let mut log2 = sent_log(3);
        let mut rack2 = Rack::new();
        log2.on_send(at(150), sq(1000), 100, 100);
        // (TSval 10 on the retransmission, echo 9.)
        log2.on_cum_ack(sq(1100), |s| {
            rack2.on_delivered(s, at(400), |rtt| {
                trust_retransmission(rtt, s.xmit, Some(9), 10, None)
            })
        });
        assert_eq!(rack2.newest(), None);
        // A retransmission delivered after a full RTT with a fresh echo counts.
        let mut log3 = sent_log(3);
        let mut rack3 = Rack::new();
        log3.on_send(at(150), sq(1000), 100, 100);
        log3.on_cum_ack(sq(1100), |s| {
            rack3.on_delivered(s, at(300), |rtt| {
                trust_retransmission(rtt, s.xmit, Some(10), 10, Some(90))
            })
        });
        assert_eq!(rack3.newest(), Some((at(150), sq(1100), us(150))));
        assert!(!rack3.reordering_seen());
    }

    #[test]
    fn which_retransmissions_are_trusted() {
        let t = Instant::from_millis(5); // TSval 5 + offset
        assert!(trust_retransmission(us(100), t, None, 0, None));
        assert!(trust_retransmission(us(100), t, Some(7), 2, Some(100)));
        assert!(
            !trust_retransmission(us(99), t, Some(7), 2, Some(100)),
            "too fast"
        );
        assert!(
            !trust_retransmission(us(100), t, Some(6), 2, None),
            "older echo"
        );
        // The echo compares in sequence-space fashion across the wrap.
        assert!(trust_retransmission(
            us(100),
            t,
            Some(2),
            u32::MAX - 2,
            None
        ));
    }

    #[test]
    fn reordering_window() {
        let mut rack = Rack::new();
        let min = Some(us(100));
        let srtt = Some(us(300));
        // No reordering seen: zero in recovery or at DupThresh, else min_rtt / 4.
        assert_eq!(rack.reo_wnd(true, 0, min, srtt), Duration::ZERO);
        assert_eq!(rack.reo_wnd(false, 3, min, srtt), Duration::ZERO);
        assert_eq!(rack.reo_wnd(false, 2, min, srtt), us(25));
        // D-SACK rounds widen it a step each, up to SRTT.
        rack.on_dsack(sq(1000), sq(5000));
        assert_eq!(rack.reo_wnd(false, 2, min, srtt), us(50));
        rack.on_dsack(sq(2000), sq(6000)); // same round: no step
        assert_eq!(rack.reo_wnd(false, 2, min, srtt), us(50));
        for i in 0..20u32 {
            rack.on_dsack(sq(5000 + 1000 * i), sq(5001 + 1000 * i));
        }
        assert_eq!(rack.reo_wnd(false, 2, min, srtt), us(300));
        // 16 recoveries without D-SACK bring it back.
        for _ in 0..REO_WND_PERSIST {
            rack.on_recovery_end();
        }
        assert_eq!(rack.reo_wnd(false, 2, min, srtt), us(25));
        // Once reordering was seen, the window applies in recovery too.
        rack.reordering_seen = true;
        assert_eq!(rack.reo_wnd(true, 10, min, srtt), us(25));
    }

    #[test]
    fn probe_timeout() {
        // Two SRTTs, never under 10 ms (Linux's floor).
        assert_eq!(Rack::pto(Some(us(100)), 5), us(10_000));
        assert_eq!(Rack::pto(Some(us(20_000)), 5), us(40_000));
        assert_eq!(Rack::pto(Some(us(100)), 1), us(200) + WC_DEL_ACK);
        assert_eq!(Rack::pto(None, 5), PTO_NO_SRTT);
    }

    /// `pto_micros` brings only 2·SRTT up to the floor: the same as the floor applied
    /// to every case, for any SRTT (saturation included) and flight.
    #[test]
    fn probe_timeout_floor_applies_as_to_every_case() {
        let reference = |srtt: Option<u64>, segments: usize| {
            let pto = match srtt {
                Some(srtt) if segments <= 1 => srtt
                    .saturating_mul(2)
                    .saturating_add(WC_DEL_ACK.as_micros() as u64),
                Some(srtt) => srtt.saturating_mul(2),
                None => PTO_NO_SRTT.as_micros() as u64,
            };
            pto.max(10_000)
        };
        let mut srtts = alloc::vec![None];
        for v in [0, 1, 4_999, 5_000, 5_001, 100_000, u64::MAX / 2, u64::MAX] {
            for d in [0u64, 1, 2] {
                srtts.push(Some(v.saturating_sub(d)));
                srtts.push(Some(v.saturating_add(d)));
            }
        }
        for srtt in srtts {
            for segments in [0, 1, 2, 100] {
                assert_eq!(
                    Rack::pto_micros(srtt, segments <= 1),
                    reference(srtt, segments),
                    "{srtt:?} {segments}"
                );
            }
        }
    }

    #[test]
    fn probe_episodes_settle() {
        let mut rack = Rack::new();
        assert_eq!(rack.on_tlp_ack(sq(10), false, true), TlpAck::Pending);
        // A probe of new data, delivered.
        rack.tlp_end = Some(sq(5000));
        assert_eq!(rack.on_tlp_ack(sq(4000), false, true), TlpAck::Pending);
        assert_eq!(rack.on_tlp_ack(sq(5000), false, true), TlpAck::NoLoss);
        assert_eq!(rack.tlp_end, None);
        // A retransmitted probe answered with a D-SACK: both copies arrived.
        rack.tlp_end = Some(sq(5000));
        rack.tlp_is_retrans = true;
        assert_eq!(rack.on_tlp_ack(sq(5000), true, true), TlpAck::NoLoss);
        // Answered by an ACK past it, no D-SACK: the probe repaired a loss.
        rack.tlp_end = Some(sq(5000));
        rack.tlp_is_retrans = true;
        assert_eq!(rack.on_tlp_ack(sq(5000), false, true), TlpAck::Pending);
        assert_eq!(rack.on_tlp_ack(sq(6000), false, true), TlpAck::Loss);
        // A pure duplicate ACK at its end: no loss.
        rack.tlp_end = Some(sq(5000));
        rack.tlp_is_retrans = true;
        assert_eq!(rack.on_tlp_ack(sq(5000), false, false), TlpAck::NoLoss);
    }
}
