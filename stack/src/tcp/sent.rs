//! The sender's record of the data in flight: one entry per segment sent and not yet
//! cumulatively acknowledged, saying when it last left and what became of it.
//!
//! Linux keeps this on its retransmission queue (each `skb` carries its send time and
//! its SACKed / lost / retransmitted bits); the send ring here holds only bytes, so the
//! record lives beside it. Three things need it:
//!
//! - **RTT samples** (RFC 6298 with Karn's rule): every ACK that newly acknowledges a
//!   segment sent only once gives a sample `now - xmit`, in microseconds, whether or
//!   not timestamps are on; timestamps (whose clock ticks in milliseconds) are needed
//!   only for data that was retransmitted (RFC 7323 §4.1).
//! - **RACK** (RFC 8985 §6): a segment is lost when one sent after it was delivered and
//!   a reordering window has passed, which needs each segment's last send time; lost
//!   retransmissions are found the same way.
//! - **SACK recovery** (RFC 6675 with RACK's loss marks): per segment, whether it was
//!   SACKed, is marked lost, and has a retransmission in flight; the totals give the
//!   pipe (`flight - sacked - lost + retransmitted`, Linux's `tcp_packets_in_flight`)
//!   without walking the record.
//!
//! # Shape and bounds
//!
//! A `VecDeque` of [`SentSeg`] in sequence order covering `[SND.UNA, SND.MAX)` without
//! gaps (an entry alone in an empty log kept in a slot of its own, see [`SentLog`]):
//! new data is appended (a TSO burst as one entry per segment the device will
//! cut), cumulative ACKs pop from the front, and a retransmission that covers part of
//! an entry splits it so that entries stay aligned with what the receiver SACKs. The
//! deque keeps its capacity, so a bulk sender stops allocating once its window has
//! been reached. Its length is bounded by [`SentLog::limit`] (about two entries per
//! MSS of send buffer, see [`record_limit`]): when it is full, new data waits for an
//! ACK ([`SentLog::is_full`]), as Linux's send buffer accounting limits the number of
//! small segments in flight. Retransmissions are never refused: when the record is full
//! they simply do not split entries.
//!
//! Entries are in sequence order, not send order: a retransmitted entry left later than
//! the entries above it. Entries never retransmitted, though, left in sequence order, and
//! RACK's loss scan relies on that to stop early (see [`SentLog::detect_lost`]).

use alloc::collections::VecDeque;

use crate::time::{Duration, Instant};
use crate::wire::seq::SeqNumber;

/// Sent more than once (Karn's rule; RACK's ambiguity check).
const RETRANS: u8 = 1;
/// Reported held by the receiver (RFC 2018).
const SACKED: u8 = 2;
/// Marked lost and not SACKed since (RFC 8985: RACK's `Segment.lost`).
const LOST: u8 = 4;
/// A retransmission of it is in flight (Linux `TCPCB_SACKED_RETRANS`): counted by the
/// pipe until it is delivered or itself marked lost.
const RXT_OUT: u8 = 8;

/// Fewest entries a log allows, whatever the buffer.
const MIN_RECORDS: usize = 16;
/// Most entries a log allows, whatever the buffer.
const MAX_RECORDS: usize = 1 << 16;

/// The entry limit for a send buffer of `snd_buf` bytes sent in segments of `mss`:
/// two entries per full segment the buffer holds, room for a mix of full and short
/// segments, within 16..=65536.
pub fn record_limit(snd_buf: usize, mss: u32) -> usize {
    let mss = (mss as usize).max(1);
    (snd_buf / mss)
        .saturating_mul(2)
        .clamp(MIN_RECORDS, MAX_RECORDS)
}

/// One segment in flight: the sequence space it covers (a FIN counts), when it last
/// left, and what became of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SentSeg {
    pub start: SeqNumber,
    pub end: SeqNumber,
    /// When the segment was last (re)transmitted.
    pub xmit: Instant,
    flags: u8,
}

impl SentSeg {
    /// Sequence space covered.
    #[inline]
    pub fn len(&self) -> u32 {
        self.end.0.wrapping_sub(self.start.0)
    }

    /// Always false for an entry in the log (entries cover at least one octet).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// It was sent more than once.
    #[inline]
    pub fn retransmitted(&self) -> bool {
        self.flags & RETRANS != 0
    }

    /// The receiver reported it held.
    #[inline]
    pub fn sacked(&self) -> bool {
        self.flags & SACKED != 0
    }

    /// Marked lost (and not SACKed since).
    #[inline]
    pub fn lost(&self) -> bool {
        self.flags & LOST != 0
    }

    /// A retransmission of it is in flight.
    #[inline]
    pub fn rxt_in_flight(&self) -> bool {
        self.flags & RXT_OUT != 0
    }
}

/// RFC 8985 §6.2 `RACK_sent_after`: segment 1 left after segment 2, with the sequence
/// number breaking ties between segments sent in the same microsecond.
#[inline]
pub fn sent_after(t1: Instant, end1: SeqNumber, t2: Instant, end2: SeqNumber) -> bool {
    t1 > t2 || (t1 == t2 && end1.gt(end2))
}

/// What [`SentLog::detect_lost`] found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LossScan {
    /// Octets newly marked lost.
    pub newly_lost: u32,
    /// The longest wait among segments not yet lost that will be once the reordering
    /// window has passed (RFC 8985 `RACK_detect_loss`'s `timeout`).
    pub wait: Option<Duration>,
}

/// The segments in flight (see the module documentation).
#[derive(Debug, Clone)]
pub struct SentLog {
    /// The log's one entry when it holds exactly one that came to an empty log, `segs`
    /// then empty; `None` otherwise. Request/response traffic has one segment in
    /// flight at a time: logging it and taking it off again are then a write and a
    /// read of this slot, without the deque's ring arithmetic. Anything else moves the
    /// entry into `segs` first ([`spill`](Self::spill)).
    solo: Option<SentSeg>,
    /// The entries, in sequence order, when `solo` is `None`.
    segs: VecDeque<SentSeg>,
    limit: usize,
    /// Octets SACKed.
    sacked: u32,
    /// Octets marked lost, not SACKed.
    lost: u32,
    /// Octets with a retransmission in flight, not SACKed.
    rxt_out: u32,
    /// Octets marked lost with no retransmission in flight (waiting to be resent).
    lost_waiting: u32,
    /// Entries SACKed.
    sacked_segs: u32,
}

impl Default for SentLog {
    fn default() -> SentLog {
        SentLog::new(MAX_RECORDS)
    }
}

impl SentLog {
    /// An empty log of at most `limit` entries (see [`record_limit`]); allocates on the
    /// first segment sent.
    pub fn new(limit: usize) -> SentLog {
        SentLog {
            solo: None,
            segs: VecDeque::new(),
            limit: limit.clamp(1, MAX_RECORDS),
            sacked: 0,
            lost: 0,
            rxt_out: 0,
            lost_waiting: 0,
            sacked_segs: 0,
        }
    }

    /// Change the entry limit (the MSS became known). Entries already in the log stay.
    pub fn set_limit(&mut self, limit: usize) {
        self.limit = limit.clamp(1, MAX_RECORDS);
    }

    /// Entries the log holds without allocating.
    pub fn capacity(&self) -> usize {
        self.segs.capacity()
    }

    /// Move this log's storage, emptied, into `to` (a new log that has none), leaving
    /// `to`'s in its place; counters and limits stay. A connection that ends passes its
    /// allocation on, so connections opening and closing at a high rate do not allocate
    /// a log each.
    pub fn pass_storage(&mut self, to: &mut SentLog) {
        self.solo = None;
        self.segs.clear();
        core::mem::swap(&mut self.segs, &mut to.segs);
    }

    /// Most entries the log takes before new data must wait.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Entries in the log.
    #[inline]
    pub fn len(&self) -> usize {
        self.segs.len() + usize::from(self.solo.is_some())
    }

    /// At most one entry: [`len`](Self::len)` <= 1`, answered by the slot alone when
    /// it holds the entry (an entry in `solo` leaves the deque empty).
    #[inline]
    pub fn at_most_one(&self) -> bool {
        self.solo.is_some() || self.segs.len() <= 1
    }

    /// Nothing is in flight.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.solo.is_none() && self.segs.is_empty()
    }

    /// No entry can be added: new data must wait for an ACK.
    #[inline]
    pub fn is_full(&self) -> bool {
        self.len() >= self.limit
    }

    /// The entries, in sequence order.
    pub fn iter(&self) -> impl Iterator<Item = &SentSeg> + '_ {
        self.solo.iter().chain(self.segs.iter())
    }

    /// The highest entry (the last segment sent).
    #[inline]
    pub fn last(&self) -> Option<&SentSeg> {
        self.segs.back().or(self.solo.as_ref())
    }

    /// The lowest entry.
    #[inline]
    fn first(&self) -> Option<&SentSeg> {
        self.solo.as_ref().or(self.segs.front())
    }

    /// Move an entry alone in `solo` into `segs`, where the general code finds it.
    #[inline]
    fn spill(&mut self) {
        if let Some(s) = self.solo.take() {
            self.spill_solo(s);
        }
    }

    #[cold]
    #[inline(never)]
    fn spill_solo(&mut self, s: SentSeg) {
        debug_assert!(self.segs.is_empty());
        self.segs.push_back(s);
    }

    /// Octets SACKed.
    #[inline]
    pub fn sacked_bytes(&self) -> u32 {
        self.sacked
    }

    /// Entries SACKed (RFC 8985 `RACK.segs_sacked`).
    #[inline]
    pub fn sacked_segs(&self) -> u32 {
        self.sacked_segs
    }

    /// Octets marked lost and not SACKed.
    #[inline]
    pub fn lost_bytes(&self) -> u32 {
        self.lost
    }

    /// Octets with a retransmission in flight.
    #[inline]
    pub fn rxt_out_bytes(&self) -> u32 {
        self.rxt_out
    }

    /// Octets in flight by the record: `flight - sacked - lost + retransmitted` (RFC
    /// 6675 `SetPipe` with RACK's loss marks; Linux `tcp_packets_in_flight` in bytes),
    /// for a `flight` of `SND.MAX - SND.UNA`.
    pub fn pipe(&self, flight: u32) -> u32 {
        flight
            .saturating_sub(self.sacked)
            .saturating_sub(self.lost)
            .saturating_add(self.rxt_out)
    }

    /// Move the totals from an entry's old flags to its new ones.
    #[inline]
    fn account(&mut self, len: u32, old: u8, new: u8) {
        // Only SACKED, LOST and RXT_OUT count; an entry sent once and not yet
        // reported (the common case) changes no total.
        if (old | new) & (SACKED | LOST | RXT_OUT) == 0 {
            return;
        }
        self.account_marks(len, old, new);
    }

    fn account_marks(&mut self, len: u32, old: u8, new: u8) {
        let class = |f: u8| {
            let sacked = f & SACKED != 0;
            (
                sacked,
                !sacked && f & LOST != 0,
                !sacked && f & RXT_OUT != 0,
                !sacked && f & LOST != 0 && f & RXT_OUT == 0,
            )
        };
        let (s0, l0, r0, w0) = class(old);
        let (s1, l1, r1, w1) = class(new);
        let fix = |total: &mut u32, was: bool, is: bool| match (was, is) {
            (false, true) => *total = total.saturating_add(len),
            (true, false) => *total = total.saturating_sub(len),
            _ => {}
        };
        fix(&mut self.sacked, s0, s1);
        fix(&mut self.lost, l0, l1);
        fix(&mut self.rxt_out, r0, r1);
        fix(&mut self.lost_waiting, w0, w1);
        match (s0, s1) {
            (false, true) => self.sacked_segs += 1,
            (true, false) => self.sacked_segs = self.sacked_segs.saturating_sub(1),
            _ => {}
        }
    }

    fn set_flags(&mut self, i: usize, flags: u8) {
        let (len, old) = match self.segs.get(i) {
            Some(s) => (s.len(), s.flags),
            None => return,
        };
        self.account(len, old, flags);
        if let Some(s) = self.segs.get_mut(i) {
            s.flags = flags;
        }
    }

    /// Index of the first entry that ends after `seq` (the one holding `seq`, if any).
    fn index_after(&self, seq: SeqNumber) -> usize {
        let Some(front) = self.segs.front() else {
            return 0;
        };
        // Offsets from the front are monotone along the deque (it spans one window).
        let base = front.start;
        let off = (seq - base).max(0) as u32;
        self.segs
            .partition_point(|s| s.end.0.wrapping_sub(base.0) <= off)
    }

    /// Make `seq` an entry boundary by splitting the entry that holds it, if the limit
    /// allows.
    fn split_at(&mut self, seq: SeqNumber) {
        let i = self.index_after(seq);
        let Some(&s) = self.segs.get(i) else {
            return;
        };
        if !seq.gt(s.start) || !seq.lt(s.end) || self.is_full() {
            return;
        }
        // Both halves keep the flags; only a SACKed entry changes a count (entries).
        if s.sacked() {
            self.sacked_segs += 1;
        }
        self.segs[i].end = seq;
        self.segs.insert(i + 1, SentSeg { start: seq, ..s });
    }

    /// Record a transmission of `[seq, seq + len)` (sequence space: a FIN counts) at
    /// `now`. Beyond the highest entry it is new data, recorded as entries of at most
    /// `seg` octets (the segments a TSO device cuts); below, it is a retransmission of the
    /// entries it covers, which take the new send time and keep a retransmission in
    /// flight. New data is recorded even when the log is full (the caller checks
    /// [`is_full`](Self::is_full) before sending new data; a retransmission that runs
    /// past the highest entry must not go unrecorded).
    /// Inline (its callers are the sender's few rungs) with the rest out of line.
    #[inline]
    pub fn on_send(&mut self, now: Instant, seq: SeqNumber, len: u32, seg: u32) {
        if len == 0 {
            return;
        }
        let top = self.last().map(|s| s.end);
        if (top.is_none() || top == Some(seq)) && len <= seg {
            // One new segment (the common case): alone in an empty log, or after the
            // others.
            let new = SentSeg {
                start: seq,
                end: seq + len,
                xmit: now,
                flags: 0,
            };
            if top.is_none() {
                self.solo = Some(new);
            } else {
                self.spill();
                self.segs.push_back(new);
            }
            return;
        }
        self.on_send_other(now, seq, len, seg, top);
    }

    /// [`on_send`](Self::on_send) but for one new segment: a retransmission, or new data
    /// cut into several entries. `top` is the highest entry's end.
    #[inline(never)]
    fn on_send_other(
        &mut self,
        now: Instant,
        seq: SeqNumber,
        len: u32,
        seg: u32,
        top: Option<SeqNumber>,
    ) {
        self.spill();
        let end = seq + len;
        // The part below the highest entry: a retransmission.
        if let Some(top) = top.filter(|t| seq.lt(*t)) {
            let rxt_end = end.min(top);
            // Without room to split, the whole entries are marked.
            self.split_at(seq);
            self.split_at(rxt_end);
            let mut i = self.index_after(seq);
            while let Some(&s) = self.segs.get(i) {
                if !s.start.lt(rxt_end) {
                    break;
                }
                self.set_flags(i, s.flags | RETRANS | RXT_OUT);
                self.segs[i].xmit = now;
                i += 1;
            }
        }
        // The part at or above it: new data.
        let mut from = match top {
            Some(t) if t.gt(seq) => t,
            _ => seq,
        };
        let seg = seg.max(1);
        while from.lt(end) {
            let to = (from + seg).min(end);
            self.segs.push_back(SentSeg {
                start: from,
                end: to,
                xmit: now,
                flags: 0,
            });
            from = to;
        }
    }

    /// [`on_cum_ack`](Self::on_cum_ack)'s most common case, without a walk or a
    /// closure: the log holds one entry (request/response traffic), not SACKed, marked
    /// lost or in retransmission (so it counts in no total), and `snd_una` covers it.
    /// The entry goes, and is returned: the newly delivered segment. Otherwise nothing
    /// changes and `None` says to call `on_cum_ack`.
    #[inline]
    pub fn take_only(&mut self, snd_una: SeqNumber) -> Option<SentSeg> {
        let s = self.only(snd_una)?;
        self.drop_only();
        Some(s)
    }

    /// The entry [`take_only`](Self::take_only) would take, left in the log (for a
    /// caller with more to check first; [`drop_only`](Self::drop_only) then takes it).
    #[inline(always)]
    pub fn only(&self, snd_una: SeqNumber) -> Option<SentSeg> {
        let s = match self.solo {
            Some(s) => s,
            None => self.only_in_segs()?,
        };
        if s.flags & (SACKED | LOST | RXT_OUT) != 0 || !s.end.le(snd_una) {
            return None;
        }
        Some(s)
    }

    /// The deque's entry, when it holds just one (one left of several, or one that had
    /// to leave `solo`): [`only`](Self::only) then answers as for `solo`.
    #[inline(never)]
    fn only_in_segs(&self) -> Option<SentSeg> {
        if self.segs.len() != 1 {
            return None;
        }
        self.segs.front().copied()
    }

    /// Take the entry [`only`](Self::only) returned: the log is empty again.
    #[inline(always)]
    pub fn drop_only(&mut self) {
        debug_assert_eq!(self.len(), 1);
        debug_assert_eq!(self.sacked | self.lost | self.rxt_out, 0);
        if self.solo.take().is_none() {
            self.segs.clear();
        }
    }

    /// A cumulative ACK reached `snd_una`: drop the entries below it (trimming one it
    /// ends inside). `delivered` sees every entry that was not SACKed before, in
    /// sequence order, before it goes: the newly delivered segments.
    ///
    /// Out of line: the sender tries [`take_only`](Self::take_only) first.
    #[inline(never)]
    pub fn on_cum_ack(&mut self, snd_una: SeqNumber, mut delivered: impl FnMut(&SentSeg)) {
        self.spill();
        // A bulk sender's usual ACK covers every entry, none of them SACKed, marked
        // lost or with a retransmission in flight (the totals are zero: only such marks
        // make them count). Each entry is then newly delivered and changes no total, so
        // the log empties in one step instead of being popped and accounted entry by
        // entry.
        if (self.sacked | self.lost | self.rxt_out) == 0 {
            if let Some(&last) = self.segs.back().filter(|s| s.end.le(snd_una)) {
                let n = self.segs.len();
                if n > 1 {
                    for s in self.segs.range(..n - 1) {
                        delivered(s);
                    }
                }
                delivered(&last);
                self.segs.clear();
                return;
            }
        }
        while let Some(&s) = self.segs.front() {
            if s.end.le(snd_una) {
                if !s.sacked() {
                    delivered(&s);
                }
                self.account(s.len(), s.flags, 0);
                self.segs.pop_front();
            } else {
                if s.start.lt(snd_una) {
                    // Partly acknowledged: keep the rest (its totals shrink).
                    let cut = snd_una - s.start;
                    self.account(s.len(), s.flags, 0);
                    self.segs[0].start = snd_una;
                    self.account(s.len() - cut as u32, 0, s.flags);
                }
                break;
            }
        }
    }

    /// The receiver holds `[left, right)` (a SACK block already checked against the
    /// window): mark the entries inside it SACKed. `delivered` sees each entry newly
    /// SACKed. An entry only partly inside stays as it is (receivers SACK whole
    /// segments; entries are aligned with what was sent).
    pub fn on_sack(
        &mut self,
        left: SeqNumber,
        right: SeqNumber,
        mut delivered: impl FnMut(&SentSeg),
    ) {
        self.spill();
        let mut i = self.index_after(left);
        while let Some(&s) = self.segs.get(i) {
            if !s.start.lt(right) {
                break;
            }
            if s.start.ge(left) && s.end.le(right) && !s.sacked() {
                delivered(&s);
                self.set_flags(i, s.flags | SACKED);
            }
            i += 1;
        }
    }

    /// RFC 8985 §6.2 step 5 (`RACK_detect_loss`): mark lost every segment not yet
    /// delivered that left before the most recently delivered one (`rack_xmit`,
    /// `rack_end`) and `rtt_reo` ago (RACK.rtt + RACK.reo_wnd) or earlier. A segment
    /// already lost and waiting for its retransmission is skipped (the RFC sets its
    /// send time to infinity); a retransmission in flight is judged by its own send
    /// time, so a lost retransmission is found as any other loss.
    ///
    /// The scan stops at the first entry never retransmitted that left after the
    /// delivered one: entries above it left later still (new data goes out in sequence
    /// order), and so did any retransmission of them. The work is the entries below
    /// the most recently delivered segment.
    pub fn detect_lost(
        &mut self,
        now: Instant,
        rack_xmit: Instant,
        rack_end: SeqNumber,
        rtt_reo: Duration,
    ) -> LossScan {
        let mut scan = LossScan::default();
        self.spill();
        for i in 0..self.segs.len() {
            let s = self.segs[i];
            let before = sent_after(rack_xmit, rack_end, s.xmit, s.end);
            if !before {
                if !s.retransmitted() {
                    break;
                }
                continue;
            }
            if s.sacked() || (s.lost() && !s.rxt_in_flight()) {
                continue;
            }
            let due = s.xmit + rtt_reo;
            if due <= now {
                self.set_flags(i, (s.flags | LOST) & !RXT_OUT);
                scan.newly_lost = scan.newly_lost.saturating_add(s.len());
            } else {
                let wait = due - now;
                scan.wait = Some(scan.wait.map_or(wait, |w| w.max(wait)));
            }
        }
        scan
    }

    /// Some segment in flight was sent more than once. O(entries); for rare decisions.
    pub fn any_retransmitted(&self) -> bool {
        self.iter().any(|s| s.retransmitted())
    }

    /// RACK can find nothing to mark against the delivered segment (`rack_xmit`,
    /// `rack_end`): the lowest entry was sent once, after it, and so was everything
    /// above (see [`detect_lost`](Self::detect_lost)). The usual case with no loss,
    /// checked before the reordering window is worked out.
    #[inline]
    pub fn nothing_to_detect(&self, rack_xmit: Instant, rack_end: SeqNumber) -> bool {
        match self.first() {
            Some(s) => !s.retransmitted() && !sent_after(rack_xmit, rack_end, s.xmit, s.end),
            None => true,
        }
    }

    /// The lowest segment marked lost that has no retransmission in flight: what loss
    /// recovery sends next (RFC 6675 `NextSeg` rule 1 with RACK's loss marks).
    pub fn next_lost(&self) -> Option<(SeqNumber, SeqNumber)> {
        if self.lost_waiting == 0 {
            return None;
        }
        self.iter()
            .find(|s| s.lost() && !s.rxt_in_flight() && !s.sacked())
            .map(|s| (s.start, s.end))
    }

    /// After a retransmission timeout: forget what the receiver reported and what was
    /// marked (RFC 2018 §8: the receiver may have reneged, so SACKed data is sent
    /// again; RFC 6298 §5.4: retransmission restarts from SND.UNA). Send times and the
    /// retransmitted marks stay (Karn).
    pub fn on_timeout(&mut self) {
        for s in self.solo.iter_mut().chain(self.segs.iter_mut()) {
            s.flags &= RETRANS;
        }
        self.sacked = 0;
        self.lost = 0;
        self.rxt_out = 0;
        self.lost_waiting = 0;
        self.sacked_segs = 0;
    }

    /// Forget everything (the connection is gone).
    pub fn clear(&mut self) {
        self.solo = None;
        self.segs.clear();
        self.on_timeout();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    const MSS: u32 = 100;

    fn sq(n: u32) -> SeqNumber {
        SeqNumber(n)
    }

    fn at(us: u64) -> Instant {
        Instant::from_micros(us)
    }

    #[test]
    fn storage_passes_on_emptied() {
        let mut old = SentLog::new(8);
        // Two entries: one alone stays out of the deque.
        old.on_send(at(1), sq(0), MSS, MSS);
        old.on_send(at(1), sq(MSS), MSS, MSS);
        let cap = old.capacity();
        assert!(cap > 0);
        let mut new = SentLog::new(4);
        assert_eq!(new.capacity(), 0);
        old.pass_storage(&mut new);
        assert_eq!(new.capacity(), cap);
        assert!(new.is_empty());
        assert_eq!(new.limit(), 4);
        assert_eq!(old.capacity(), 0);
        new.on_send(at(2), sq(500), MSS, MSS);
        assert_eq!(new.len(), 1);
    }

    fn spans(log: &SentLog) -> Vec<(u32, u32)> {
        log.iter().map(|s| (s.start.0, s.end.0)).collect()
    }

    /// Ten segments of 100 octets from 1000, sent 10 µs apart.
    fn ten() -> SentLog {
        let mut log = SentLog::new(64);
        for i in 0..10u32 {
            log.on_send(at(u64::from(i) * 10), sq(1000 + i * MSS), MSS, MSS);
        }
        log
    }

    /// Check the totals against a recount of the entries.
    fn check_totals(log: &SentLog) {
        let (mut sacked, mut lost, mut rxt, mut waiting, mut segs) = (0, 0, 0, 0, 0);
        for s in log.iter() {
            if s.sacked() {
                sacked += s.len();
                segs += 1;
                continue;
            }
            if s.lost() {
                lost += s.len();
                if !s.rxt_in_flight() {
                    waiting += s.len();
                }
            }
            if s.rxt_in_flight() {
                rxt += s.len();
            }
        }
        assert_eq!(log.sacked_bytes(), sacked);
        assert_eq!(log.sacked_segs(), segs);
        assert_eq!(log.lost_bytes(), lost);
        assert_eq!(log.rxt_out_bytes(), rxt);
        assert_eq!(log.lost_waiting, waiting);
        // Contiguous, in order.
        let v: Vec<_> = log.iter().collect();
        for w in v.windows(2) {
            assert_eq!(w[0].end, w[1].start);
        }
    }

    #[test]
    fn new_data_is_split_into_segments_and_acked_from_the_front() {
        let mut log = SentLog::new(64);
        // A TSO burst of 250 octets in segments of 100.
        log.on_send(at(5), sq(1000), 250, MSS);
        assert_eq!(spans(&log), [(1000, 1100), (1100, 1200), (1200, 1250)]);
        let mut seen = Vec::new();
        log.on_cum_ack(sq(1150), |s| seen.push((s.start.0, s.end.0, s.xmit)));
        assert_eq!(seen, [(1000, 1100, at(5))]);
        // The entry the ACK ends inside is trimmed, not delivered.
        assert_eq!(spans(&log), [(1150, 1200), (1200, 1250)]);
        log.on_cum_ack(sq(1250), |_| {});
        assert!(log.is_empty());
        check_totals(&log);
    }

    #[test]
    fn retransmission_marks_and_splits() {
        let mut log = ten();
        // Resend 50 octets from the middle of the third segment.
        log.on_send(at(500), sq(1250), 50, MSS);
        assert_eq!(log.len(), 11);
        let s = log.iter().find(|s| s.start == sq(1250)).copied().unwrap();
        assert_eq!((s.end, s.xmit), (sq(1300), at(500)));
        assert!(s.retransmitted() && s.rxt_in_flight());
        let first_half = log.iter().find(|s| s.start == sq(1200)).copied().unwrap();
        assert_eq!(first_half.end, sq(1250));
        assert!(!first_half.retransmitted());
        assert_eq!(log.rxt_out_bytes(), 50);
        // A go-back-N resend that runs past the highest entry records the rest as new.
        log.on_send(at(600), sq(1900), 300, MSS);
        assert_eq!(log.last().unwrap().end, sq(2200));
        assert!(log.last().unwrap().xmit == at(600) && !log.last().unwrap().retransmitted());
        assert!(log
            .iter()
            .find(|s| s.start == sq(1900))
            .unwrap()
            .retransmitted());
        check_totals(&log);
    }

    #[test]
    fn sack_marks_whole_segments_and_reports_each_once() {
        let mut log = ten();
        let mut seen = Vec::new();
        log.on_sack(sq(1300), sq(1500), |s| seen.push(s.start.0));
        log.on_sack(sq(1300), sq(1500), |s| seen.push(s.start.0));
        // Partly covered segments are not marked.
        log.on_sack(sq(1650), sq(1800), |s| seen.push(s.start.0));
        assert_eq!(seen, [1300, 1400, 1700]);
        assert_eq!((log.sacked_bytes(), log.sacked_segs()), (300, 3));
        assert_eq!(log.pipe(1000), 700);
        // Cumulatively acknowledging SACKed segments does not deliver them again.
        seen.clear();
        log.on_cum_ack(sq(1500), |s| seen.push(s.start.0));
        assert_eq!(seen, [1000, 1100, 1200]);
        assert_eq!((log.sacked_bytes(), log.sacked_segs()), (100, 1));
        check_totals(&log);
    }

    #[test]
    fn rack_marks_segments_sent_before_the_delivered_one() {
        let mut log = ten();
        // Segment 5 (sent at 50 µs) delivered; RTT 100 µs, reordering window 25 µs.
        log.on_sack(sq(1500), sq(1600), |_| {});
        let rtt_reo = Duration::from_micros(125);
        // At 130 µs only segment 0 (sent at 0) has waited long enough.
        let scan = log.detect_lost(at(130), at(50), sq(1600), rtt_reo);
        assert_eq!(scan.newly_lost, 100);
        // The others wait until the last of them, segment 4 (sent at 40 µs), is due.
        assert_eq!(scan.wait, Some(Duration::from_micros(40 + 125 - 130)));
        assert_eq!(log.next_lost(), Some((sq(1000), sq(1100))));
        let scan = log.detect_lost(at(200), at(50), sq(1600), rtt_reo);
        assert_eq!((scan.newly_lost, scan.wait), (400, None));
        assert_eq!(log.lost_bytes(), 500);
        // Nothing above the delivered segment is lost.
        assert!(log
            .iter()
            .filter(|s| s.start.ge(sq(1500)))
            .all(|s| !s.lost()));
        // Pipe: 1000 sent, 100 SACKed, 500 lost.
        assert_eq!(log.pipe(1000), 400);
        check_totals(&log);
    }

    #[test]
    fn a_lost_retransmission_is_found_again() {
        let mut log = ten();
        log.on_sack(sq(1100), sq(2000), |_| {});
        let rtt_reo = Duration::from_micros(100);
        let scan = log.detect_lost(at(200), at(90), sq(2000), rtt_reo);
        assert_eq!(
            scan,
            LossScan {
                newly_lost: 100,
                wait: None
            }
        );
        assert_eq!(log.next_lost(), Some((sq(1000), sq(1100))));
        // Retransmitted at 200 µs: in flight, not waiting any more.
        log.on_send(at(200), sq(1000), 100, MSS);
        assert_eq!(log.next_lost(), None);
        assert_eq!(
            log.pipe(1000),
            100,
            "1000 sent - 900 SACKed - 100 lost + 100 resent"
        );
        // New data sent after the retransmission is delivered: at 250 µs the
        // retransmission has not waited long enough, at 300 µs it has.
        log.on_send(at(210), sq(2000), 100, MSS);
        log.on_sack(sq(2000), sq(2100), |_| {});
        let scan = log.detect_lost(at(250), at(210), sq(2100), rtt_reo);
        assert_eq!(
            scan,
            LossScan {
                newly_lost: 0,
                wait: Some(Duration::from_micros(50))
            }
        );
        assert_eq!(log.next_lost(), None);
        let scan = log.detect_lost(at(300), at(210), sq(2100), rtt_reo);
        assert_eq!(scan.newly_lost, 100);
        assert_eq!(log.next_lost(), Some((sq(1000), sq(1100))));
        assert_eq!(log.pipe(1100), 0);
        check_totals(&log);
    }

    #[test]
    fn timeout_forgets_marks_but_not_history() {
        let mut log = ten();
        log.on_sack(sq(1500), sq(1700), |_| {});
        log.detect_lost(at(1000), at(60), sq(1700), Duration::ZERO);
        log.on_send(at(1000), sq(1000), 100, MSS);
        log.on_timeout();
        assert_eq!(
            (log.sacked_bytes(), log.lost_bytes(), log.rxt_out_bytes()),
            (0, 0, 0)
        );
        assert_eq!(log.pipe(1000), 1000);
        assert!(log.iter().next().unwrap().retransmitted());
        check_totals(&log);
    }

    #[test]
    fn the_log_is_bounded() {
        assert_eq!(record_limit(4 << 20, 1448), 5792);
        assert_eq!(record_limit(1000, 1448), MIN_RECORDS);
        assert_eq!(record_limit(usize::MAX, 1), MAX_RECORDS);
        let mut log = SentLog::new(4);
        for i in 0..4u32 {
            log.on_send(at(0), sq(i * 10), 10, 10);
        }
        assert!(log.is_full());
        // No room to split: the whole entry is marked retransmitted.
        log.on_send(at(5), sq(12), 3, 10);
        assert_eq!(log.len(), 4);
        assert!(log.iter().nth(1).unwrap().retransmitted());
        assert_eq!(log.rxt_out_bytes(), 10);
        check_totals(&log);
    }

    #[test]
    fn sequence_numbers_wrap() {
        let mut log = SentLog::new(64);
        let base = u32::MAX - 150;
        for i in 0..4u32 {
            log.on_send(at(u64::from(i)), sq(base.wrapping_add(i * MSS)), MSS, MSS);
        }
        log.on_sack(
            sq(base.wrapping_add(200)),
            sq(base.wrapping_add(300)),
            |_| {},
        );
        assert_eq!(log.sacked_segs(), 1);
        log.on_send(at(9), sq(base.wrapping_add(100)), MSS, MSS);
        assert!(log.iter().nth(1).unwrap().retransmitted());
        let mut n = 0;
        log.on_cum_ack(sq(base.wrapping_add(400)), |_| n += 1);
        assert_eq!(n, 3, "the SACKed one was delivered before");
        assert!(log.is_empty());
        check_totals(&log);
    }

    /// Everything a caller can see of a log.
    fn view(log: &SentLog) -> (Vec<SentSeg>, [u32; 5], usize, bool, bool) {
        (
            log.iter().copied().collect(),
            [
                log.sacked_bytes(),
                log.sacked_segs(),
                log.lost_bytes(),
                log.rxt_out_bytes(),
                log.lost_waiting,
            ],
            log.len(),
            log.is_empty(),
            log.is_full(),
        )
    }

    /// The one-entry slot (`solo`) answers every operation as the deque alone does:
    /// random operations, biased to request/response's send-one, acknowledge-it, on a
    /// log that uses the slot and on one whose entries are moved into the deque after
    /// every step (the log as it was before the slot), with everything seen compared.
    #[test]
    fn the_solo_slot_answers_as_the_deque() {
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move |n: u32| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            (rng % u64::from(n.max(1))) as u32
        };
        let mut solo_hits = 0;
        for round in 0..200u32 {
            let limit = 1 + next(6) as usize;
            let mut a = SentLog::new(limit);
            let mut b = SentLog::new(limit);
            // Near the wrap now and then.
            let base = if round % 3 == 0 { u32::MAX - 500 } else { 1000 };
            let (mut una, mut max) = (base, base);
            let mut now = 0u64;
            for _ in 0..300 {
                now += u64::from(next(50));
                let op = next(16);
                let flight = max.wrapping_sub(una);
                let some_seq = |r: u32| una.wrapping_add(r % (flight + 1));
                let r = next(u32::MAX);
                match op {
                    // New data: one segment, or a burst cut into several.
                    0..=3 => {
                        let len = 1 + next(3 * MSS);
                        let seg = if next(2) == 0 { len } else { MSS };
                        a.on_send(at(now), sq(max), len, seg);
                        b.on_send(at(now), sq(max), len, seg);
                        max = max.wrapping_add(len);
                    }
                    // A retransmission, possibly running past the highest entry.
                    4 => {
                        let from = some_seq(r);
                        let len = 1 + next(2 * MSS);
                        a.on_send(at(now), sq(from), len, MSS);
                        b.on_send(at(now), sq(from), len, MSS);
                        if sq(from.wrapping_add(len)).gt(sq(max)) {
                            max = from.wrapping_add(len);
                        }
                    }
                    // The sole ACK of everything, as the sender's fast path takes it.
                    5..=10 => {
                        let ack = if next(4) == 0 { some_seq(r) } else { max };
                        let from_slot = a.solo.is_some();
                        let (x, y) = (a.take_only(sq(ack)), b.take_only(sq(ack)));
                        assert_eq!(x, y);
                        if x.is_some() {
                            solo_hits += u32::from(from_slot);
                            una = ack;
                        }
                        let (x, y) = (a.only(sq(ack)), b.only(sq(ack)));
                        assert_eq!(x, y);
                        if x.is_some() && next(2) == 0 {
                            a.drop_only();
                            b.drop_only();
                            una = ack;
                        }
                    }
                    11 => {
                        let ack = some_seq(r);
                        let mut seen = Vec::new();
                        a.on_cum_ack(sq(ack), |s| seen.push(*s));
                        let mut seen_b = Vec::new();
                        b.on_cum_ack(sq(ack), |s| seen_b.push(*s));
                        assert_eq!(seen, seen_b);
                        una = ack;
                    }
                    12 => {
                        let left = some_seq(r);
                        let right = left.wrapping_add(next(max.wrapping_sub(left) + 1));
                        let mut seen = Vec::new();
                        a.on_sack(sq(left), sq(right), |s| seen.push(*s));
                        let mut seen_b = Vec::new();
                        b.on_sack(sq(left), sq(right), |s| seen_b.push(*s));
                        assert_eq!(seen, seen_b);
                    }
                    13 => {
                        let (xmit, end) =
                            (at(now.saturating_sub(u64::from(next(200)))), some_seq(r));
                        assert_eq!(
                            a.nothing_to_detect(xmit, sq(end)),
                            b.nothing_to_detect(xmit, sq(end))
                        );
                        let reo = Duration::from_micros(u64::from(next(100)));
                        assert_eq!(
                            a.detect_lost(at(now), xmit, sq(end), reo),
                            b.detect_lost(at(now), xmit, sq(end), reo)
                        );
                    }
                    14 => {
                        a.on_timeout();
                        b.on_timeout();
                    }
                    _ => {
                        if next(8) == 0 {
                            a.clear();
                            b.clear();
                            una = max;
                        }
                    }
                }
                b.spill();
                assert!(b.solo.is_none());
                assert!(a.solo.is_none() || a.segs.is_empty());
                assert_eq!(view(&a), view(&b));
                assert_eq!(a.last(), b.last());
                assert_eq!(a.at_most_one(), a.len() <= 1);
                assert_eq!(b.at_most_one(), b.len() <= 1);
                assert_eq!(a.next_lost(), b.next_lost());
                assert_eq!(a.any_retransmitted(), b.any_retransmitted());
                assert_eq!(a.pipe(flight), b.pipe(flight));
                check_totals(&a);
            }
        }
        assert!(solo_hits > 200, "{solo_hits} sole ACKs from the slot");
    }
}
