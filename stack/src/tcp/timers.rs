//! What each TCP timer does when it fires (the BSD `tcp_timer`): timers only change
//! the control block; output then acts on what they set.

use crate::tcp::cc::CongestionControl;
use crate::tcp::rack::Rack;
use crate::tcp::tcb::{ConnError, State, Tcb};
use crate::time::Instant;

/// Declares the timers of [`Deadlines`]: each with a getter and a setter that keeps
/// the floor.
macro_rules! deadlines {
    ($($(#[$doc:meta])* $name:ident, $set:ident;)*) => {
        /// A TCB's timers (deadlines; the stack's wheel wakes the TCB when the earliest
        /// is due), and a lower bound of the earliest one, kept as they are armed.
        ///
        /// The bound answers "is any timer armed before the wheel's entry?", asked
        /// after every segment, without looking at each timer: arming one lowers it
        /// to that deadline, cancelling or moving one later cannot make the earliest
        /// earlier, so it is left; only when the bound says "maybe" are the timers
        /// looked at (which sets it to their minimum again). The fields are private
        /// so that no timer is armed without lowering the bound.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct Deadlines {
            $($name: Option<Instant>,)*
            /// No armed timer is earlier than this (microseconds; `u64::MAX` when none
            /// has been armed since the timers were last looked at).
            floor: u64,
        }

        impl Default for Deadlines {
            fn default() -> Self {
                Deadlines {
                    $($name: None,)*
                    floor: u64::MAX,
                }
            }
        }

        impl Deadlines {
            $(
                $(#[$doc])*
                #[inline(always)]
                pub fn $name(&self) -> Option<Instant> {
                    self.$name
                }

                /// Arm (`Some`) or cancel (`None`) the timer.
                #[inline(always)]
                pub fn $set(&mut self, at: Option<Instant>) {
                    if let Some(t) = at {
                        self.floor = self.floor.min(t.total_micros());
                    }
                    self.$name = at;
                }
            )*

            /// Every timer, armed or not.
            #[inline(always)]
            fn all(&self) -> [Option<Instant>; 7] {
                [$(self.$name,)*]
            }
        }
    };
}

deadlines! {
    /// The retransmission timer, or the persist timer while persisting.
    rto_at, set_rto_at;
    /// RACK's reordering timer: segments become lost when it expires (RFC 8985 §6.2).
    rack_at, set_rack_at;
    /// The tail loss probe timeout (RFC 8985 §7.2).
    tlp_at, set_tlp_at;
    /// The delayed ACK.
    delack_at, set_delack_at;
    /// The next keepalive probe (or the check whether one is due).
    keepalive_at, set_keepalive_at;
    /// The end of TIME-WAIT.
    timewait_at, set_timewait_at;
    /// The end of an orphaned FIN-WAIT-2.
    fin_wait2_at, set_fin_wait2_at;
}

impl Deadlines {
    /// The earliest deadline among the timers.
    ///
    /// Branch-free: each timer as microseconds, an unarmed one as "never"
    /// (`u64::MAX`), makes the minimum a chain of conditional moves, where matching on
    /// pairs of options branched on each. Whether any is armed is kept apart, so that
    /// a timer armed at `u64::MAX` itself (saturated arithmetic) still counts.
    pub fn next(&self) -> Option<Instant> {
        let (m, armed) = self.all().iter().fold((u64::MAX, false), |(m, armed), &t| {
            (m.min(micros_or_never(t)), armed | t.is_some())
        });
        armed.then_some(Instant::from_micros(m))
    }

    /// Some timer is armed before `at`: `next() < Some(at)`. Nearly always answered
    /// by the floor alone; otherwise the timers are looked at, and the floor set to
    /// their minimum.
    #[inline(always)]
    pub fn any_before(&mut self, at: Instant) -> bool {
        self.floor < at.total_micros() && self.any_before_scan(at)
    }

    /// [`any_before`](Self::any_before) when the floor cannot tell.
    #[inline]
    fn any_before_scan(&mut self, at: Instant) -> bool {
        let m = self
            .all()
            .iter()
            .fold(u64::MAX, |m, &t| m.min(micros_or_never(t)));
        self.floor = m;
        m < at.total_micros()
    }

    /// The earliest deadline right after [`any_before`](Self::any_before) answered
    /// true (and before any timer changes): the floor, which that answer set to their
    /// minimum, looking at the timers; so the wheel's re-arm, which asked, need not
    /// look again.
    #[inline(always)]
    pub fn earliest_after_any_before(&self) -> Instant {
        let at = Instant::from_micros(self.floor);
        debug_assert_eq!(self.next(), Some(at));
        at
    }
}

/// A timer as microseconds, an unarmed one as "never" (u64::MAX).
#[inline(always)]
fn micros_or_never(t: Option<Instant>) -> u64 {
    t.map_or(u64::MAX, Instant::total_micros)
}

impl Tcb {
    /// Run every timer of this TCB that is due at `now`.
    pub fn on_timers(&mut self, now: Instant) {
        if self.timers.timewait_at().is_some_and(|t| now >= t) {
            self.timers.set_timewait_at(None);
            self.close_now();
            return;
        }
        if self.timers.fin_wait2_at().is_some_and(|t| now >= t) {
            // Linux tcp_fin_timeout: an orphaned FIN-WAIT-2 does not wait forever.
            self.timers.set_fin_wait2_at(None);
            self.close_now();
            return;
        }
        if self.timers.rto_at().is_some_and(|t| now >= t) {
            self.timers.set_rto_at(None);
            if self.persisting {
                self.on_persist(now);
            } else {
                self.on_retransmit_timeout(now);
            }
            if self.state == State::Closed {
                return;
            }
        }
        if self.timers.rack_at().is_some_and(|t| now >= t) {
            // RFC 8985 §6.2: the reordering window of a suspect segment has passed.
            self.timers.set_rack_at(None);
            self.rack_detect(now);
        }
        if self.timers.tlp_at().is_some_and(|t| now >= t) {
            self.timers.set_tlp_at(None);
            self.on_probe_timeout();
        }
        if self.timers.delack_at().is_some_and(|t| now >= t) {
            self.timers.set_delack_at(None);
            self.owed.set_ack_now(true);
            // The answer did not come in time: ACK small segments at once again.
            self.pingpong = false;
        }
        if self.timers.keepalive_at().is_some_and(|t| now >= t) {
            self.timers.set_keepalive_at(None);
            self.on_keepalive(now);
        }
    }

    /// RFC 6298 §5.4-5.7 and RFC 5681 §3.1: retransmit from the oldest unacknowledged
    /// byte, back off, collapse the congestion window; give up after too many tries.
    fn on_retransmit_timeout(&mut self, now: Instant) {
        self.retransmits += 1;
        let limit = if self.state.is_synchronized() {
            self.config.retries
        } else {
            self.config.syn_retries
        };
        if self.retransmits > limit {
            self.error = Some(ConnError::TimedOut);
            self.close_now();
            return;
        }
        let flight = self.flight();
        self.cc.on_rto(now, flight);
        self.rtt.backoff();
        self.rtt_probe = None;
        // RFC 6582 §4: after a timeout, no fast retransmit for data sent before it.
        self.recover = self.snd_max;
        self.in_recovery = false;
        self.dupacks = 0;
        self.owed.set_rexmit_una(false);
        self.rexmit_first = false;
        // RFC 6675 §5.1: the receiver may have reneged; start the scoreboard over.
        self.scoreboard.clear();
        self.sent.on_timeout();
        // RFC 8985 §7.4: the probe (if any) went unanswered; RACK starts over too.
        self.rack.on_timeout();
        self.timers.set_rack_at(None);
        self.timers.set_tlp_at(None);
        self.owed.set_tlp_send(false);
        self.snd_nxt = self.snd_una;
        self.high_rxt = self.snd_una;
        self.timers.set_rto_at(Some(self.rto_deadline(now)));
    }

    /// Arm (or, with `restart`, re-arm) the tail loss probe, or cancel it where RFC
    /// 8985 §7.2 does not want one: without RACK, outside the established states, in
    /// a recovery or after a timeout (what is lost is known, or the RTO acts), while a
    /// probe is already out, with SACKed data (RACK's reordering timer covers it),
    /// with nothing in flight, or while persisting. The probe goes two SRTTs after
    /// the last transmission or ACK; where the RTO would expire first, the RTO acts
    /// (Linux fires the probe at the RTO's time instead; see docs/TCP.md).
    ///
    /// The tests are made cheapest first, each answering alone: nothing in flight
    /// (every ACK of everything sent), then a probe that would be due no earlier than
    /// the RTO, which is never armed, wanted or not (the usual answer after new data:
    /// for one segment in flight the probe waits the worst-case delayed ACK, about
    /// the RTO's floor), then the rest of what RFC 8985 wants.
    pub(crate) fn arm_tlp(&mut self, now: Instant, restart: bool) {
        if self.sent.is_empty() {
            self.timers.set_tlp_at(None);
            return;
        }
        self.arm_tlp_in_flight(now, restart);
    }

    /// [`arm_tlp`](Self::arm_tlp) with something in flight (the sent log not empty),
    /// as after a transmission: the emptiness test is not asked again.
    #[inline(always)]
    pub(crate) fn arm_tlp_in_flight(&mut self, now: Instant, restart: bool) {
        debug_assert!(!self.sent.is_empty());
        // An armed probe stays unless restarted (if it is still wanted).
        let keep = self.timers.tlp_at().is_some() && !restart;
        let pto = Rack::pto_micros(self.rtt.srtt_micros(), self.sent.at_most_one());
        let at = Instant::from_micros(now.total_micros().saturating_add(pto));
        if !keep && self.timers.rto_at().is_some_and(|rto| at >= rto) {
            self.timers.set_tlp_at(None);
            return;
        }
        let wanted = self.rack_on()
            && matches!(
                self.state,
                State::Established
                    | State::CloseWait
                    | State::FinWait1
                    | State::Closing
                    | State::LastAck
            )
            && !self.in_recovery
            && self.retransmits == 0
            && self.snd_nxt == self.snd_max
            && self.rack.tlp_end.is_none()
            && self.sent.sacked_segs() == 0
            && !self.persisting;
        if !wanted {
            self.timers.set_tlp_at(None);
        } else if !keep {
            // Before the RTO (or none is armed): checked above.
            self.timers.set_tlp_at(Some(at));
        }
    }

    /// RFC 8985 §7.3: the probe timeout expired: output sends one probe, if a probe is
    /// still what the connection needs.
    fn on_probe_timeout(&mut self) {
        if self.rack_on()
            && !self.in_recovery
            && self.retransmits == 0
            && self.rack.tlp_end.is_none()
            && !self.sent.is_empty()
        {
            self.owed.set_tlp_send(true);
        }
    }

    /// The persist timer: probe the zero window (RFC 9293 §3.8.6.1), backing off like
    /// the retransmission timer. A peer that keeps answering is not timed out.
    fn on_persist(&mut self, now: Instant) {
        self.rtt.backoff();
        self.owed.set_force_probe(true);
        self.persisting = true;
        self.timers.set_rto_at(Some(self.rto_deadline(now)));
    }

    /// Keepalive (RFC 1122 §4.2.3.6): probe an idle peer, give up after `count` probes.
    fn on_keepalive(&mut self, now: Instant) {
        let Some(k) = self.opts.keepalive else {
            return;
        };
        if !matches!(self.state, State::Established | State::CloseWait) {
            return;
        }
        if now - self.last_recv < k.idle && self.keepalive_probes == 0 {
            self.timers.set_keepalive_at(Some(self.last_recv + k.idle));
            return;
        }
        if self.snd_una != self.snd_max || self.persisting || !self.snd_buf.is_empty() {
            // Data in flight or waiting to go: the retransmission and persist timers
            // already watch the peer and give up on their own (Linux
            // tcp_keepalive_timer reschedules in this case too).
            self.timers.set_keepalive_at(Some(now + k.idle));
            return;
        }
        if self.keepalive_probes >= k.count {
            // The peer is gone: reset (in case it is not, but our probes were lost) and
            // close, as Linux tcp_keepalive_timer does; output sends the RST, then
            // closes.
            self.error = Some(ConnError::TimedOut);
            self.owed.set_send_rst(true);
            return;
        }
        self.keepalive_probes += 1;
        self.owed.set_keepalive_probe(true);
        self.timers.set_keepalive_at(Some(now + k.interval));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rand::Rand;
    use crate::tcp::tcb::{OpenParams, TcbConfig, TcpSocketOptions};
    use crate::wire::seq::SeqNumber;
    use core::net::{Ipv4Addr, SocketAddrV4};

    /// `arm_tlp` as RFC 8985 §7.2 reads (before its tests were reordered by cost):
    /// what the reordered one must do in every state.
    fn arm_tlp_reference(t: &mut Tcb, now: Instant, restart: bool) {
        let wanted = t.rack_on()
            && matches!(
                t.state,
                State::Established
                    | State::CloseWait
                    | State::FinWait1
                    | State::Closing
                    | State::LastAck
            )
            && !t.in_recovery
            && t.retransmits == 0
            && t.snd_nxt == t.snd_max
            && t.rack.tlp_end.is_none()
            && !t.sent.is_empty()
            && t.sent.sacked_segs() == 0
            && !t.persisting;
        if !wanted {
            t.timers.set_tlp_at(None);
            return;
        }
        if t.timers.tlp_at().is_some() && !restart {
            return;
        }
        let pto = Rack::pto_micros(t.rtt.srtt_micros(), t.sent.at_most_one());
        let at = Instant::from_micros(now.total_micros().saturating_add(pto));
        t.timers.set_tlp_at(match t.timers.rto_at() {
            Some(rto) if at >= rto => None,
            _ => Some(at),
        });
    }

    /// The reordered `arm_tlp` arms (or cancels, or keeps) the probe exactly as the
    /// reference does, over random states: in flight or not, RACK on or off, each
    /// condition met or not, probe and RTO armed at random, SRTTs short and long.
    #[test]
    fn arm_tlp_matches_its_reference() {
        let mut rand = Rand::from_u64(11);
        let states = State::all_but(&[State::Closed, State::SynReceived]);
        let addr = |p| SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), p);
        for _ in 0..20_000 {
            let r = rand.next_u64();
            let bit = |n: u32| (r >> n) & 1 == 1;
            let now = Instant::from_micros(1_000_000 + (r >> 40) % 1_000_000);
            let open = OpenParams {
                local: addr(1),
                remote: addr(2),
                iss: SeqNumber(1000),
                ts_offset: 0,
                our_mss: 1460,
            };
            let mut t = Tcb::new(now, open, TcbConfig::default(), TcpSocketOptions::default());
            t.state = states[(r % states.len() as u64) as usize];
            t.sack_ok = !bit(3) || bit(4);
            t.config.rack = !bit(5) || bit(6);
            t.in_recovery = bit(7) && bit(8);
            t.retransmits = u32::from(bit(9) && bit(10));
            t.persisting = bit(11) && bit(12);
            let segs = (r >> 13) % 4;
            for i in 0..segs as u32 {
                t.sent.on_send(now, SeqNumber(1001 + 100 * i), 100, 1000);
            }
            t.snd_max = SeqNumber(1001 + 100 * segs as u32);
            t.snd_nxt = if bit(15) && bit(16) {
                SeqNumber(1001)
            } else {
                t.snd_max
            };
            if bit(17) && bit(18) {
                t.rack.tlp_end = Some(t.snd_max);
            }
            if !bit(19) {
                t.rtt.sample_micros((r >> 20) % 300_000);
            }
            let at = |n: u32| Instant::from_micros(now.total_micros() + (r >> n) % 400_000);
            t.timers.set_rto_at(bit(21).then(|| at(22)));
            t.timers.set_tlp_at(bit(23).then(|| at(30)));
            let restart = bit(24);
            // The reference changes only the probe timer: run it, put the timer back,
            // run the reordered one on the same state.
            let before = t.timers.tlp_at();
            arm_tlp_reference(&mut t, now, restart);
            let reference = t.timers.tlp_at();
            t.timers.set_tlp_at(before);
            t.arm_tlp(now, restart);
            assert_eq!(t.timers.tlp_at(), reference, "draw {r:#x}");
        }
    }

    /// `any_before` (the floor, then a look when it cannot tell) answers exactly as
    /// the earliest deadline would, whatever is armed, cancelled or moved in between.
    #[test]
    fn floor_answers_as_the_earliest_deadline() {
        let mut rand = Rand::from_u64(7);
        let mut d = Deadlines::default();
        let setters: [fn(&mut Deadlines, Option<Instant>); 7] = [
            Deadlines::set_rto_at,
            Deadlines::set_rack_at,
            Deadlines::set_tlp_at,
            Deadlines::set_delack_at,
            Deadlines::set_keepalive_at,
            Deadlines::set_timewait_at,
            Deadlines::set_fin_wait2_at,
        ];
        for _ in 0..100_000 {
            let r = rand.next_u64();
            let at = match r % 8 {
                0 => None,
                1 => Some(Instant::from_micros(u64::MAX)),
                _ => Some(Instant::from_micros((r >> 8) % 1000)),
            };
            setters[(r >> 40) as usize % 7](&mut d, at);
            if !(r >> 50).is_multiple_of(3) {
                continue;
            }
            let probe = Instant::from_micros((r >> 20) % 1100);
            let want = d.next().filter(|&n| n < probe);
            assert_eq!(d.any_before(probe), want.is_some());
            if want.is_some() {
                assert_eq!(Some(d.earliest_after_any_before()), want);
            }
        }
    }
}
