//! A hashed timing wheel for per-connection timers.
//!
//! Every TCP connection has deadlines (retransmission, delayed ACK, keepalive,
//! TIME-WAIT) and most of them are re-armed far more often than they fire. Scanning the
//! connections for what is due costs O(connections) per poll; a heap costs O(log n) per
//! re-arm. The wheel of Varghese and Lauck ("Hashed and Hierarchical Timing Wheels",
//! SOSP 1987) makes scheduling O(1): time is cut into ticks and a deadline goes into the
//! slot of its tick modulo the number of slots.
//!
//! # Design
//!
//! - **The wheel** holds the deadlines of the next `slots` ticks, one tick per slot:
//!   every entry in a slot is due in the same tick, so a slot is handed out whole. A
//!   bitmap of non-empty slots lets [`TimerWheel::poll`] jump over empty stretches and
//!   [`TimerWheel::next_expiry`] find the earliest deadline in `slots / 64` word reads.
//! - **The overflow list** holds deadlines beyond that horizon (keepalives, long
//!   TIME-WAITs), unsorted, with their minimum kept on the side. Every half rotation of
//!   the cursor, the entries that now fall within the horizon move into their slots, so
//!   a far-future entry is looked at once per half rotation until it comes near, instead
//!   of once per rotation in every slot visit as with per-entry "rounds" counters.
//! - **Time jumps** (a host that did not poll for hours) are not walked tick by tick:
//!   once the wheel is empty, the cursor jumps straight to the earliest overflow deadline
//!   or to `now`, so a gap costs one pass over the overflow list per cluster of deadlines
//!   in it. A poll on an empty wheel is O(1).
//! - **No allocation in steady state**: slots and the overflow list are `Vec`s drained in
//!   place, so they keep their capacity, and the caller lends the output `Vec`.
//!
//! # Cancellation is lazy
//!
//! The wheel has no `remove`. The owner of the timers (the connection table) keeps the
//! authoritative deadline of each key and treats each `(key, at)` that [`poll`] hands
//! out as a hint: it acts only if `at` is still that key's deadline and ignores stale
//! entries. Re-arming is scheduling again; cancelling is clearing the owner's deadline.
//! To keep stale entries few, the owner schedules only when a deadline moves *earlier*
//! than the one already in the wheel; when the earlier entry then fires for a deadline
//! that has since moved later, it schedules the new one. An RTO pushed back by every
//! ACK then costs one entry per RTO, not one per ACK:
//!
//! ```
//! use rumpnet_stack::tcp::timer::TimerWheel;
//! use rumpnet_stack::time::{Duration, Instant};
//!
//! let mut wheel = TimerWheel::new(Duration::from_millis(1), 4096, Instant::ZERO);
//! let mut retransmissions = 0;
//! // Arm the RTO: the owner keeps the deadline (its truth, per key) and, as there is
//! // nothing earlier in the wheel for this key, schedules it.
//! let mut rto = Some(Instant::from_millis(200));
//! wheel.schedule(7u32, Instant::from_millis(200));
//! // An ACK pushes the RTO back: only the owner's deadline changes.
//! rto = Some(Instant::from_millis(300));
//!
//! let mut due = Vec::new();
//! for now in [250, 300].map(Instant::from_millis) {
//!     wheel.poll(now, &mut due);
//!     for (key, at) in due.drain(..) {
//!         match rto {
//!             Some(d) if d == at => {
//!                 rto = None;
//!                 retransmissions += 1;
//!             }
//!             Some(d) if d > at => wheel.schedule(key, d), // moved later: follow it
//!             _ => {} // cancelled, or superseded: stale
//!         }
//!     }
//!     // The 250 ms poll only re-armed; the 300 ms poll fired the real deadline.
//!     assert_eq!(retransmissions, if now.total_millis() < 300 { 0 } else { 1 });
//! }
//! assert!(wheel.is_empty());
//! ```
//!
//! [`poll`]: TimerWheel::poll

use alloc::vec;
use alloc::vec::Vec;

use crate::time::{Duration, Instant};

/// One scheduled deadline. Its tick is `at / tick`, recomputed when needed rather than
/// stored: it is needed only when an entry is placed.
#[derive(Debug, Clone, Copy)]
struct Entry<K> {
    key: K,
    at: Instant,
}

/// A hashed timing wheel: O(1) `schedule`, a `poll` that skips empty time, and an exact
/// [`next_expiry`](TimerWheel::next_expiry) for the host's sleep.
///
/// Removal is lazy: see the [module documentation](self) for the pattern.
#[derive(Debug, Clone)]
pub struct TimerWheel<K: Copy + Eq> {
    /// Tick length in microseconds (at least 1).
    tick_us: u64,
    /// `slots - 1`; `slots` is a power of two.
    mask: usize,
    /// Slot `t & mask` holds the entries due in tick `t`, for `cursor <= t < horizon`.
    slots: Vec<Vec<Entry<K>>>,
    /// Bit `i` is set iff `slots[i]` is non-empty.
    occupied: Vec<u64>,
    /// Every tick before `cursor` has been handed out; entries in tick `cursor` with
    /// `at` after the last poll's `now` may remain.
    cursor: u64,
    /// Entries with tick `< horizon` are in the wheel, the others in `overflow`.
    /// Invariant: `cursor < horizon <= cursor + slots`.
    horizon: u64,
    /// Entries in the wheel.
    wheel_len: usize,
    /// Entries beyond the horizon, unsorted.
    overflow: Vec<Entry<K>>,
    /// The earliest `at` in `overflow`, `Instant::from_micros(u64::MAX)` if empty.
    overflow_min: Instant,
    /// No entry is due before this (a lower bound, exact after each poll that hands
    /// entries out): a poll before it only moves the cursor. The stack polls far more
    /// often than timers fire (every burst, microseconds apart), so that is the common
    /// case, and it costs a comparison.
    next_due: Instant,
    /// The first instant of tick `cursor + 1`: a poll before it and before `next_due`
    /// has nothing to do at all.
    cursor_end: Instant,
    /// The earlier of `next_due` and `cursor_end`, kept with them: a poll before it has
    /// nothing to do, and every poll of the stack asks, so that is one comparison.
    quiet_until: Instant,
}

const NEVER: Instant = Instant::from_micros(u64::MAX);

/// Ticks are capped here so that `tick + slots` never overflows: instants past 2^63 µs
/// (the `u64::MAX` "never" sentinel, in practice) share the last tick, and the exact
/// `at <= now` test within a tick keeps them in order.
const TICK_LIMIT: u64 = u64::MAX >> 1;

/// The tick `at` falls in.
fn tick_of(at: Instant, tick_us: u64) -> u64 {
    (at.total_micros() / tick_us).min(TICK_LIMIT)
}

/// The first instant of tick `tick`.
fn tick_start(tick: u64, tick_us: u64) -> Instant {
    Instant::from_micros(tick.saturating_mul(tick_us))
}

impl<K: Copy + Eq> TimerWheel<K> {
    /// A wheel of `slots` slots of `tick` each, its cursor at `start`.
    ///
    /// `slots` is rounded up to a power of two (at least 1) and `tick` up to at least
    /// 1 µs. The horizon `slots * tick` should cover the common deadlines (4096 × 1 ms
    /// ≈ 4 s covers RTOs and delayed ACKs); later ones wait in the overflow list.
    pub fn new(tick: Duration, slots: usize, start: Instant) -> TimerWheel<K> {
        let slots = slots.max(1).next_power_of_two();
        let tick_us = u64::try_from(tick.as_micros()).unwrap_or(u64::MAX).max(1);
        let cursor = tick_of(start, tick_us);
        let mut slot_vec = Vec::with_capacity(slots);
        slot_vec.resize_with(slots, Vec::new);
        TimerWheel {
            tick_us,
            mask: slots - 1,
            slots: slot_vec,
            occupied: vec![0; slots.div_ceil(64)],
            cursor,
            horizon: cursor.saturating_add(slots as u64),
            wheel_len: 0,
            overflow: Vec::new(),
            overflow_min: NEVER,
            next_due: NEVER,
            cursor_end: tick_start(cursor.saturating_add(1), tick_us),
            quiet_until: tick_start(cursor.saturating_add(1), tick_us),
        }
    }

    /// Work out `quiet_until` again after `next_due` or `cursor_end` changed.
    #[inline]
    fn update_quiet(&mut self) {
        self.quiet_until = self.next_due.min(self.cursor_end);
    }

    /// `at` lies in a tick after the current one (that of the last poll, or later):
    /// an entry scheduled for it is not handed out by a poll at the current instant.
    #[inline]
    pub fn after_current_tick(&self, at: Instant) -> bool {
        at >= self.cursor_end
    }

    /// Entries scheduled and not yet handed out by [`poll`](Self::poll), stale ones
    /// included.
    pub fn len(&self) -> usize {
        self.wheel_len + self.overflow.len()
    }

    /// No entries at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Schedules `key` to be handed out by the first [`poll`](Self::poll) whose `now` is
    /// at or after `at`. O(1); allocates only when a slot outgrows its capacity.
    ///
    /// A deadline already past goes into the current tick and fires at the next poll.
    /// Scheduling a key again does not replace its earlier entry (see the module docs).
    pub fn schedule(&mut self, key: K, at: Instant) {
        let entry = Entry { key, at };
        self.next_due = self.next_due.min(at);
        self.quiet_until = self.quiet_until.min(at);
        let tick = self.tick_of(at).max(self.cursor);
        if tick < self.horizon {
            self.push_slot(tick, entry);
        } else {
            self.overflow.push(entry);
            self.overflow_min = self.overflow_min.min(at);
        }
    }

    /// Nothing is due at `now` and the cursor need not move: [`poll`](Self::poll) would
    /// do nothing. One comparison or two, for the owner to skip its own set-up.
    #[inline]
    pub fn quiet(&self, now: Instant) -> bool {
        now < self.quiet_until
    }

    /// Moves every entry with `at <= now` into `out` (appended; `out` is not cleared), in
    /// tick order: entries of one tick in no particular order, and deadlines that were
    /// already past when scheduled counting as the tick they were scheduled in.
    ///
    /// Work is the entries handed out, one bitmap scan per non-empty slot passed, and a
    /// pass over the overflow list per half rotation of the cursor: empty stretches are
    /// skipped through the bitmap, and an empty wheel jumps its cursor at once, however
    /// far `now` has moved. A `now` earlier than a previous poll's is harmless.
    #[inline]
    pub fn poll(&mut self, now: Instant, out: &mut Vec<(K, Instant)>) {
        // The common case (polled again within the tick, nothing due) costs the caller
        // two compares and no call.
        if self.quiet(now) {
            return;
        }
        self.poll_slow(now, out);
    }

    fn poll_slow(&mut self, now: Instant, out: &mut Vec<(K, Instant)>) {
        if now < self.next_due {
            // Nothing is due, so no tick before now's holds an entry: the cursor moves
            // straight to now.
            let now_tick = self.tick_of(now);
            if now_tick > self.cursor {
                self.cursor = now_tick;
                if self.cursor >= self.horizon {
                    self.refill();
                } else {
                    self.keep_horizon_ahead();
                }
                self.cursor_end = tick_start(self.cursor.saturating_add(1), self.tick_us);
                self.update_quiet();
            }
            return;
        }
        self.poll_due(now, out);
        self.next_due = self.next_expiry().unwrap_or(NEVER);
        self.cursor_end = tick_start(self.cursor.saturating_add(1), self.tick_us);
        self.update_quiet();
    }

    fn poll_due(&mut self, now: Instant, out: &mut Vec<(K, Instant)>) {
        let now_tick = self.tick_of(now);
        if now_tick < self.cursor {
            return;
        }
        if self.is_empty() {
            // Nothing to hand out: no stretch to walk.
            self.cursor = now_tick;
            self.horizon = now_tick.saturating_add(self.slots.len() as u64);
            return;
        }
        loop {
            self.keep_horizon_ahead();
            let limit = self.horizon.min(now_tick.saturating_add(1));
            match self.next_occupied(self.cursor, limit) {
                Some(t) => {
                    self.cursor = t;
                    self.fire_slot(t, now, now_tick, out);
                    if t == now_tick {
                        // The current tick may hold entries later in it: it stays.
                        break;
                    }
                    self.cursor = t + 1;
                }
                None if self.horizon > now_tick => {
                    // Every tick up to now is handed out; the current one stays open.
                    self.cursor = now_tick;
                    break;
                }
                None => {
                    // The wheel is empty up to its horizon, which `now` has passed, so all
                    // that is left sits in the overflow list: jump straight to its
                    // earliest tick, or to now if that is later.
                    let next = self.tick_of(self.overflow_min).min(now_tick);
                    self.cursor = next.max(self.horizon);
                    self.refill();
                }
            }
        }
        self.keep_horizon_ahead();
    }

    /// The earliest `at` among the scheduled entries (stale ones included), or `None`
    /// if there are none: the time the host should next call [`poll`](Self::poll).
    ///
    /// Exact, not rounded to a tick; costs a scan of the bitmap (`slots / 64` words) and
    /// of one slot.
    pub fn next_expiry(&self) -> Option<Instant> {
        if self.wheel_len > 0 {
            if let Some(t) = self.next_occupied(self.cursor, self.horizon) {
                // All wheel entries are before the horizon and all overflow entries at
                // or after it, so the first occupied slot holds the earliest deadline.
                return self.slots[self.slot_index(t)].iter().map(|e| e.at).min();
            }
        }
        (!self.overflow.is_empty()).then_some(self.overflow_min)
    }

    /// Keeps only the entries for which `keep(key, at)` is true: how an owner purges
    /// the stale entries of lazy cancellation in bulk (see the module docs) when they
    /// outnumber its live deadlines, so the wheel's memory follows the live timers and
    /// not the rate at which deadlines were cancelled. O(entries + occupied slots).
    pub fn retain(&mut self, mut keep: impl FnMut(K, Instant) -> bool) {
        for w in 0..self.occupied.len() {
            let mut word = self.occupied[w];
            while word != 0 {
                let i = w * 64 + word.trailing_zeros() as usize;
                word &= word - 1;
                let slot = &mut self.slots[i];
                let before = slot.len();
                slot.retain(|e| keep(e.key, e.at));
                self.wheel_len -= before - slot.len();
                if slot.is_empty() {
                    self.occupied[w] &= !(1 << (i % 64));
                }
            }
        }
        let mut min = NEVER;
        self.overflow.retain(|e| {
            let k = keep(e.key, e.at);
            if k {
                min = min.min(e.at);
            }
            k
        });
        self.overflow_min = min;
        self.next_due = self.next_expiry().unwrap_or(NEVER);
        self.update_quiet();
    }

    fn tick_of(&self, at: Instant) -> u64 {
        tick_of(at, self.tick_us)
    }

    fn slot_index(&self, tick: u64) -> usize {
        // Truncating is the hash: only the low bits select the slot.
        (tick as usize) & self.mask
    }

    fn push_slot(&mut self, tick: u64, entry: Entry<K>) {
        let i = self.slot_index(tick);
        self.slots[i].push(entry);
        self.occupied[i / 64] |= 1 << (i % 64);
        self.wheel_len += 1;
    }

    /// Hands out the entries of tick `tick` that are due at `now`.
    fn fire_slot(&mut self, tick: u64, now: Instant, now_tick: u64, out: &mut Vec<(K, Instant)>) {
        let i = self.slot_index(tick);
        let slot = &mut self.slots[i];
        let before = slot.len();
        if tick < now_tick {
            // A whole past tick: everything in it is due.
            out.extend(slot.drain(..).map(|e| (e.key, e.at)));
        } else {
            slot.retain(|e| {
                let due = e.at <= now;
                if due {
                    out.push((e.key, e.at));
                }
                !due
            });
        }
        self.wheel_len -= before - slot.len();
        if slot.is_empty() {
            self.occupied[i / 64] &= !(1 << (i % 64));
        }
    }

    /// Keeps the horizon more than half a rotation ahead of the cursor: deadlines less
    /// than half a rotation away then go straight into their slots, and an overflow
    /// entry moves into its slot well before the cursor reaches its tick.
    fn keep_horizon_ahead(&mut self) {
        let half = self.slots.len() as u64 / 2;
        if self.horizon - self.cursor <= half {
            self.refill();
        }
    }

    /// Moves the horizon a full rotation past the cursor and the overflow entries it now
    /// covers into their slots.
    fn refill(&mut self) {
        self.horizon = self.cursor.saturating_add(self.slots.len() as u64);
        if self.tick_of(self.overflow_min) >= self.horizon {
            return;
        }
        let (tick_us, mask, cursor, horizon) = (self.tick_us, self.mask, self.cursor, self.horizon);
        let mut min = NEVER;
        let mut moved = 0;
        let (slots, occupied) = (&mut self.slots, &mut self.occupied);
        self.overflow.retain(|e| {
            let tick = tick_of(e.at, tick_us).max(cursor);
            if tick < horizon {
                let i = (tick as usize) & mask;
                slots[i].push(*e);
                occupied[i / 64] |= 1 << (i % 64);
                moved += 1;
                false
            } else {
                min = min.min(e.at);
                true
            }
        });
        self.wheel_len += moved;
        self.overflow_min = min;
    }

    /// The first tick in `from..limit` whose slot is non-empty (`limit - from <= slots`).
    fn next_occupied(&self, from: u64, limit: u64) -> Option<u64> {
        if self.wheel_len == 0 || from >= limit {
            return None;
        }
        let start = self.slot_index(from);
        let words = self.occupied.len();
        let mut w = start / 64;
        let mut word = self.occupied[w] & (u64::MAX << (start % 64));
        // One pass over every word, then the bits of the first word below `start`.
        for _ in 0..=words {
            if word != 0 {
                let i = w * 64 + word.trailing_zeros() as usize;
                let tick = from + ((i.wrapping_sub(start) & self.mask) as u64);
                return (tick < limit).then_some(tick);
            }
            w = (w + 1) % words;
            word = self.occupied[w];
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rand::Rand;

    fn ms(n: u64) -> Instant {
        Instant::from_millis(n)
    }

    /// Checks a poll against a model: exactly the entries with `prev < at <= now` came
    /// out, each once, in tick order.
    fn check_poll(
        wheel: &mut TimerWheel<u32>,
        pending: &mut Vec<(u32, Instant)>,
        now: Instant,
        tick_us: u64,
    ) {
        let mut out = Vec::new();
        // Tick order, deadlines already past when scheduled counting as the cursor's tick.
        let c0 = wheel.cursor;
        wheel.poll(now, &mut out);
        let eff = |at: Instant| (at.total_micros() / tick_us).max(c0);
        for w in out.windows(2) {
            assert!(eff(w[0].1) <= eff(w[1].1), "{:?}", (c0, w));
        }
        let mut expect: Vec<(u32, Instant)> = Vec::new();
        pending.retain(|&(k, at)| {
            if at <= now {
                expect.push((k, at));
                false
            } else {
                true
            }
        });
        out.sort_by_key(|&(k, _)| k);
        expect.sort_by_key(|&(k, _)| k);
        assert_eq!(out, expect, "at {now:?}");
        assert_eq!(wheel.len(), pending.len());
        // Within half a rotation of the cursor, deadlines go straight into the wheel.
        assert!(wheel.cursor < wheel.horizon);
        assert!(wheel.horizon - wheel.cursor > wheel.slots.len() as u64 / 2);
        assert!(wheel
            .overflow
            .iter()
            .all(|e| e.at.total_micros() / tick_us >= wheel.horizon));
        assert_eq!(
            wheel.next_expiry(),
            pending.iter().map(|&(_, at)| at).min(),
            "next_expiry at {now:?}"
        );
    }

    #[test]
    fn retain_purges_entries_in_the_wheel_and_beyond_it() {
        let mut wheel = TimerWheel::new(Duration::from_millis(1), 64, Instant::ZERO);
        // Half within the 64 ms horizon, half in the overflow list.
        for k in 0..200u32 {
            wheel.schedule(k, ms(1 + u64::from(k)));
        }
        wheel.retain(|k, _| k % 2 == 1 && k != 1);
        assert_eq!(wheel.len(), 99);
        assert_eq!(
            wheel.next_expiry(),
            Some(ms(4)),
            "key 3 at 4 ms is the earliest left"
        );
        let mut out = Vec::new();
        wheel.poll(ms(500), &mut out);
        let mut keys: Vec<u32> = out.iter().map(|&(k, _)| k).collect();
        keys.sort_unstable();
        assert_eq!(keys, (3..200).step_by(2).collect::<Vec<u32>>());
        assert!(wheel.is_empty());
        assert_eq!(wheel.next_expiry(), None);
    }

    #[test]
    fn random_deadlines_fire_once_never_early_never_late() {
        // A small wheel (64 × 1 ms) so that most deadlines start in the overflow list.
        let tick_us = 1000;
        let mut r = Rand::from_u64(20);
        let mut wheel = TimerWheel::new(Duration::from_micros(tick_us), 64, Instant::ZERO);
        let mut pending = Vec::new();
        let mut now = 0u64;
        let mut next_key = 0u32;
        for _ in 0..3000 {
            for _ in 0..r.below(8) {
                // Some in the past, most within a few rotations, some far ahead.
                let at = match r.below(10) {
                    0 => now.saturating_sub(u64::from(r.below(5000))),
                    1 => now + u64::from(r.below(60_000_000)),
                    _ => now + u64::from(r.below(300_000)),
                };
                wheel.schedule(next_key, Instant::from_micros(at));
                pending.push((next_key, Instant::from_micros(at)));
                next_key += 1;
            }
            // Polls at odd sub-tick instants, sometimes several ticks apart.
            now += u64::from(r.below(3 * tick_us as u32));
            check_poll(&mut wheel, &mut pending, Instant::from_micros(now), tick_us);
        }
        // Drain the rest.
        now += 61_000_000;
        check_poll(&mut wheel, &mut pending, Instant::from_micros(now), tick_us);
        assert!(wheel.is_empty() && pending.is_empty());
        assert!(next_key > 5000);
    }

    #[test]
    fn same_tick_entries_fire_by_instant_not_by_tick() {
        let mut wheel = TimerWheel::new(Duration::from_millis(1), 16, Instant::ZERO);
        wheel.schedule(1u32, Instant::from_micros(5_200));
        wheel.schedule(2, Instant::from_micros(5_800));
        let mut out = Vec::new();
        wheel.poll(Instant::from_micros(5_500), &mut out);
        assert_eq!(out, [(1, Instant::from_micros(5_200))]);
        // Scheduling into the open tick still works after the partial poll.
        wheel.schedule(3, Instant::from_micros(5_600));
        assert_eq!(wheel.next_expiry(), Some(Instant::from_micros(5_600)));
        out.clear();
        wheel.poll(Instant::from_micros(5_999), &mut out);
        out.sort_by_key(|e| e.0);
        assert_eq!(
            out,
            [
                (2, Instant::from_micros(5_800)),
                (3, Instant::from_micros(5_600))
            ]
        );
        assert!(wheel.is_empty());
    }

    #[test]
    fn far_future_entries_beyond_one_rotation() {
        // Horizon 8 ms; deadlines many rotations out.
        let mut wheel = TimerWheel::new(Duration::from_millis(1), 8, Instant::ZERO);
        let deadlines = [ms(3), ms(9), ms(17), ms(64), ms(1000), ms(7_200_000)];
        for (k, &at) in deadlines.iter().enumerate().rev() {
            wheel.schedule(k, at);
        }
        assert_eq!(wheel.next_expiry(), Some(ms(3)));
        let mut out = Vec::new();
        for t in 0..=1000 {
            wheel.poll(ms(t), &mut out);
        }
        assert_eq!(
            out,
            [
                (0, ms(3)),
                (1, ms(9)),
                (2, ms(17)),
                (3, ms(64)),
                (4, ms(1000))
            ]
        );
        assert_eq!(wheel.next_expiry(), Some(ms(7_200_000)));
        out.clear();
        wheel.poll(ms(7_199_999), &mut out);
        assert!(out.is_empty());
        wheel.poll(ms(7_200_000), &mut out);
        assert_eq!(out, [(5, ms(7_200_000))]);
        assert_eq!(wheel.next_expiry(), None);
    }

    #[test]
    fn hours_long_time_jumps_skip_the_empty_ticks() {
        // A 1 µs tick: walking hours tick by tick would be ~10^10 steps and hang the test.
        let hour = 3_600_000_000u64;
        let mut wheel = TimerWheel::new(Duration::from_micros(1), 64, Instant::ZERO);
        let mut deadlines: Vec<u64> = (0..200u64)
            .map(|i| (i * 7919 * 1_000_003) % (5 * hour))
            .collect();
        for (k, &at) in deadlines.iter().enumerate() {
            wheel.schedule(at, Instant::from_micros(at));
            assert_eq!(wheel.len(), k + 1);
        }
        let mut out = Vec::new();
        wheel.poll(Instant::from_micros(2 * hour), &mut out);
        let first: Vec<u64> = out.iter().map(|e| e.0).collect();
        deadlines.sort_unstable();
        let split = deadlines.partition_point(|&d| d <= 2 * hour);
        assert_eq!(first, deadlines[..split]);
        out.clear();
        wheel.poll(Instant::from_micros(6 * hour), &mut out);
        let rest: Vec<u64> = out.iter().map(|e| e.0).collect();
        assert_eq!(rest, deadlines[split..]);
        assert!(wheel.is_empty());
        // Then schedule relative to the new time: the cursor really moved.
        out.clear();
        wheel.schedule(1, Instant::from_micros(6 * hour + 10));
        wheel.poll(Instant::from_micros(6 * hour + 9), &mut out);
        assert!(out.is_empty());
        wheel.poll(Instant::from_micros(6 * hour + 10), &mut out);
        assert_eq!(out, [(1, Instant::from_micros(6 * hour + 10))]);
    }

    #[test]
    fn polling_an_empty_wheel_is_constant_time() {
        // With 1 µs ticks, a jump to the far future is 2^60 ticks: only a cursor jump
        // finishes. Then a single entry scheduled right after still fires exactly.
        let mut wheel: TimerWheel<u8> =
            TimerWheel::new(Duration::from_micros(1), 4096, Instant::ZERO);
        let mut out = Vec::new();
        let far = Instant::from_micros(1 << 60);
        wheel.poll(far, &mut out);
        assert!(out.is_empty());
        assert_eq!(wheel.cursor, 1 << 60);
        wheel.schedule(9, Instant::from_micros((1 << 60) + 5000));
        wheel.poll(Instant::from_micros((1 << 60) + 4999), &mut out);
        assert!(out.is_empty());
        // The same jump with one far entry in the overflow list: the cursor jumps to it.
        wheel.poll(Instant::from_micros(1 << 61), &mut out);
        assert_eq!(out, [(9, Instant::from_micros((1 << 60) + 5000))]);
        // The end of time does not overflow anything.
        wheel.schedule(1, NEVER);
        wheel.poll(Instant::from_micros(u64::MAX - 1), &mut out);
        assert_eq!(out.len(), 1);
        wheel.poll(NEVER, &mut out);
        assert_eq!(out[1], (1, NEVER));
    }

    #[test]
    fn past_deadlines_fire_at_the_next_poll() {
        let mut wheel = TimerWheel::new(Duration::from_millis(1), 64, ms(1000));
        let mut out = Vec::new();
        wheel.poll(ms(2000), &mut out);
        wheel.schedule(1u16, ms(10));
        wheel.schedule(2, ms(1999));
        assert_eq!(wheel.next_expiry(), Some(ms(10)));
        wheel.poll(ms(2000), &mut out);
        out.sort();
        assert_eq!(out, [(1, ms(10)), (2, ms(1999))]);
    }

    #[test]
    fn stale_entries_are_the_owners_to_ignore() {
        let mut wheel = TimerWheel::new(Duration::from_millis(1), 256, Instant::ZERO);
        let mut deadline = [None; 3];
        // Key 0 armed then re-armed earlier; key 1 armed then cancelled; key 2 armed once.
        for (k, at) in [(0usize, 100), (0, 50), (1, 70), (2, 80)] {
            wheel.schedule(k, ms(at));
            deadline[k] = Some(ms(at));
        }
        deadline[1] = None;
        let mut out = Vec::new();
        let mut fired = Vec::new();
        for t in 0..200 {
            wheel.poll(ms(t), &mut out);
            for (k, at) in out.drain(..) {
                if deadline[k] == Some(at) {
                    deadline[k] = None;
                    fired.push((k, t));
                }
            }
        }
        assert_eq!(fired, [(0, 50), (2, 80)]);
        assert!(wheel.is_empty());
    }

    #[test]
    fn hundred_thousand_entries() {
        let mut r = Rand::from_u64(21);
        let mut wheel = TimerWheel::new(Duration::from_millis(1), 4096, Instant::ZERO);
        let mut at = Vec::with_capacity(100_000);
        for k in 0..100_000u32 {
            let t = Instant::from_micros(u64::from(r.below(30_000_000)));
            wheel.schedule(k, t);
            at.push(t);
        }
        assert_eq!(wheel.len(), 100_000);
        assert_eq!(wheel.next_expiry(), at.iter().copied().min());
        let mut out = Vec::new();
        let mut fired = vec![false; 100_000];
        let mut now = 0;
        while !wheel.is_empty() {
            now += 7_000; // 7 ms steps
            let start = out.len();
            wheel.poll(Instant::from_micros(now), &mut out);
            for &(k, t) in &out[start..] {
                assert!(t.total_micros() <= now && t.total_micros() + 7_000 > now);
                assert_eq!(at[k as usize], t);
                assert!(!fired[k as usize]);
                fired[k as usize] = true;
            }
        }
        assert_eq!(out.len(), 100_000);
        assert!(fired.iter().all(|&f| f));
        // Slots keep their capacity for the next round.
        assert!(wheel.slots.iter().filter(|s| s.capacity() > 0).count() > 4000);
        assert!(wheel.overflow.capacity() > 0);
    }

    #[test]
    fn odd_parameters_are_rounded() {
        let wheel: TimerWheel<u8> = TimerWheel::new(Duration::ZERO, 1000, Instant::ZERO);
        assert_eq!(wheel.slots.len(), 1024);
        assert_eq!(wheel.tick_us, 1);
        let mut one: TimerWheel<u8> = TimerWheel::new(Duration::from_millis(1), 0, Instant::ZERO);
        assert_eq!(one.slots.len(), 1);
        for k in 0..20 {
            one.schedule(k, ms(u64::from(k) * 3));
        }
        let mut out = Vec::new();
        for t in 0..60 {
            let n = out.len();
            one.poll(ms(t), &mut out);
            assert_eq!(out.len() - n, usize::from(t % 3 == 0));
        }
    }
}
