//! The neighbour (ARP) cache of one interface: IPv4 address -> MAC, with timeouts, a size
//! limit, and a small bounded queue of packets waiting for resolution.
//!
//! States follow Linux's neighbour table in miniature. `Incomplete`: a request is out,
//! packets wait (at most `pending_per_neighbor` each, `pending_total` in all, the oldest
//! pushed out first). `Reachable`: confirmed within `reachable_time`. `Stale`: the time
//! is up; the old MAC is still used while the entry is re-probed, so a long flow does not
//! stall every minute. `Failed`: resolution gave up; new packets are dropped at once for
//! `failed_hold`, so an unreachable host does not cause a request storm.

use alloc::collections::VecDeque;

use crate::time::{Duration, Instant};
use crate::wire::{EthernetAddress, Ipv4Addr};
use crate::HashMap;

/// Limits and timers of a neighbour cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NeighborConfig {
    /// Most entries in the cache.
    pub capacity: usize,
    /// How long a confirmed entry is used before it is re-probed.
    pub reachable_time: Duration,
    /// Interval between ARP requests while resolving.
    pub retry_interval: Duration,
    /// Requests sent before giving up.
    pub max_probes: u8,
    /// How long a failed resolution drops new packets without asking again.
    pub failed_hold: Duration,
    /// Packets queued per unresolved neighbour.
    pub pending_per_neighbor: usize,
    /// Packets queued for all unresolved neighbours together.
    pub pending_total: usize,
}

impl Default for NeighborConfig {
    fn default() -> Self {
        NeighborConfig {
            capacity: 1024,
            reachable_time: Duration::from_secs(60),
            retry_interval: Duration::from_secs(1),
            max_probes: 3,
            failed_hold: Duration::from_secs(1),
            pending_per_neighbor: 32,
            pending_total: 256,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Incomplete {
        probes: u8,
        next_probe: Instant,
    },
    Reachable {
        mac: EthernetAddress,
        expires: Instant,
    },
    Stale {
        mac: EthernetAddress,
        probes: u8,
        next_probe: Instant,
    },
    Failed {
        until: Instant,
    },
}

#[derive(Debug)]
struct Entry<P> {
    state: State,
    pending: VecDeque<P>,
}

/// What the caller must do with a packet for a neighbour.
#[derive(Debug, PartialEq, Eq)]
pub enum Resolve<P> {
    /// The MAC is known: send the packet (given back) now; when the flag is set, also
    /// send an ARP request (a stale entry's re-probe).
    Ready(EthernetAddress, bool, P),
    /// It was queued; send an ARP request for the address now.
    QueuedProbe,
    /// It was queued behind a request already out.
    Queued,
    /// It was queued and pushed out an older packet, returned to be counted.
    QueuedDropped(P),
    /// Not queued: resolution failed recently, or the cache is full.
    Dropped(P, ResolveDrop),
}

/// Why a packet could not wait for resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResolveDrop {
    /// The neighbour did not answer recently.
    Unresolved,
    /// No room for another entry.
    CacheFull,
    /// The pending queues are full.
    QueueFull,
}

/// A timer action from [`NeighborCache::poll`].
#[derive(Debug, PartialEq, Eq)]
pub enum NeighborEvent<P> {
    /// Send an ARP request for this address.
    Probe(Ipv4Addr),
    /// Resolution failed: this queued packet is dropped.
    Failed(P),
}

/// The neighbour cache of one interface.
#[derive(Debug)]
pub struct NeighborCache<P> {
    entries: HashMap<Ipv4Addr, Entry<P>>,
    config: NeighborConfig,
    pending_total: usize,
    /// Entries being probed (Incomplete or Stale): the poll only scans when non-zero.
    probing: usize,
    /// The last answer of [`lookup_send`](Self::lookup_send) that left its entry as it
    /// was: the address, its MAC, and until when the answer holds (a reachable entry's
    /// expiry; `None` for a stale one, which answers the same until updated or removed).
    /// Nearly every packet goes to the neighbour the one before went to, and this skips
    /// the hash lookup for it. [`update`](Self::update) and [`remove`](Self::remove), the
    /// only ways an answering entry changes, clear it, so a hit is what the table says.
    last: Option<(Ipv4Addr, EthernetAddress, Option<Instant>)>,
    /// Counts the changes of `last`: while it stays, so does `last`, and an answer
    /// taken from it holds until its own expiry.
    last_epoch: u64,
}

impl<P> NeighborCache<P> {
    /// An empty cache; `seed` keys its hash table.
    pub fn new(config: NeighborConfig, seed: u64) -> Self {
        NeighborCache {
            entries: crate::new_map(seed),
            config,
            pending_total: 0,
            probing: 0,
            last: None,
            last_epoch: 0,
        }
    }

    /// Every change of the remembered answer goes through here, counted.
    #[inline]
    fn set_last(&mut self, last: Option<(Ipv4Addr, EthernetAddress, Option<Instant>)>) {
        self.last = last;
        self.last_epoch = self.last_epoch.wrapping_add(1);
    }

    /// The count of changes to the remembered answer (see
    /// [`remembered_with_epoch`](Self::remembered_with_epoch)).
    #[inline]
    pub(crate) fn last_epoch(&self) -> u64 {
        self.last_epoch
    }

    /// [`remembered`](Self::remembered), with until when the answer holds and the
    /// [`last_epoch`](Self::last_epoch) it was given at: while the epoch is the same,
    /// `remembered(ip, t)` answers the same MAC for every `t` before that time.
    pub(crate) fn remembered_with_epoch(
        &self,
        ip: Ipv4Addr,
        now: Instant,
    ) -> Option<(EthernetAddress, Option<Instant>, u64)> {
        let mac = self.remembered(ip, now)?;
        let until = self.last.and_then(|(_, _, until)| until);
        Some((mac, until, self.last_epoch))
    }

    /// Some entry is being probed, so [`poll`](Self::poll) has work to do: lets a
    /// caller skip the call (and what it sets up for it) on the many polls that have none.
    #[inline]
    pub fn is_probing(&self) -> bool {
        self.probing > 0
    }

    /// Number of entries (all states).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The cache is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Packets waiting for resolution.
    pub fn pending(&self) -> usize {
        self.pending_total
    }

    /// The MAC for `ip` if known (reachable or stale), without changing anything.
    pub fn lookup(&self, ip: Ipv4Addr) -> Option<EthernetAddress> {
        match self.entries.get(&ip)?.state {
            State::Reachable { mac, .. } | State::Stale { mac, .. } => Some(mac),
            _ => None,
        }
    }

    /// The MAC to send to `ip` now, without queueing anything: `Some((mac, probe))`
    /// when known (`probe`: the entry just went stale, send an ARP request too), `None`
    /// when the packet must wait (then call [`resolve`](Self::resolve) with it).
    // Inline: the remembered answer is a few compares on every packet sent, cheaper than
    // the call; the table lookup behind it stays out of line.
    #[inline]
    pub fn lookup_send(&mut self, ip: Ipv4Addr, now: Instant) -> Option<(EthernetAddress, bool)> {
        if let Some(mac) = self.remembered(ip, now) {
            return Some((mac, false));
        }
        self.lookup_send_table(ip, now)
    }

    /// The remembered last answer for `ip` at `now`, if it holds: what
    /// [`lookup_send`](Self::lookup_send) answers without a probe and without touching
    /// the table. A frame header built from it stays right while this gives the same MAC.
    #[inline]
    pub(crate) fn remembered(&self, ip: Ipv4Addr, now: Instant) -> Option<EthernetAddress> {
        match self.last {
            Some((last_ip, mac, until)) if last_ip == ip && until.is_none_or(|t| now < t) => {
                Some(mac)
            }
            _ => None,
        }
    }

    /// [`lookup_send`](Self::lookup_send) past the remembered answer.
    #[inline(never)]
    fn lookup_send_table(&mut self, ip: Ipv4Addr, now: Instant) -> Option<(EthernetAddress, bool)> {
        let retry = self.config.retry_interval;
        let e = self.entries.get_mut(&ip)?;
        match e.state {
            State::Reachable { mac, expires } if now < expires => {
                self.set_last(Some((ip, mac, Some(expires))));
                Some((mac, false))
            }
            State::Reachable { mac, .. } => {
                e.state = State::Stale {
                    mac,
                    probes: 1,
                    next_probe: now + retry,
                };
                self.set_last(None);
                self.probing += 1;
                Some((mac, true))
            }
            State::Stale { mac, .. } => {
                self.set_last(Some((ip, mac, None)));
                Some((mac, false))
            }
            _ => None,
        }
    }

    /// Resolve `ip` for `packet`: say where to send it, or queue it.
    pub fn resolve(&mut self, ip: Ipv4Addr, now: Instant, packet: P) -> Resolve<P> {
        if let Some((mac, probe)) = self.lookup_send(ip, now) {
            return Resolve::Ready(mac, probe, packet);
        }
        let retry = self.config.retry_interval;
        if let Some(e) = self.entries.get_mut(&ip) {
            match e.state {
                State::Failed { until } if now < until => {
                    return Resolve::Dropped(packet, ResolveDrop::Unresolved)
                }
                State::Failed { .. } => {
                    e.state = State::Incomplete {
                        probes: 1,
                        next_probe: now + retry,
                    };
                    self.probing += 1;
                    return self.queue(ip, packet, true);
                }
                _ => return self.queue(ip, packet, false),
            }
        }
        if self.entries.len() >= self.config.capacity && !self.evict_one(now) {
            return Resolve::Dropped(packet, ResolveDrop::CacheFull);
        }
        self.entries.insert(
            ip,
            Entry {
                state: State::Incomplete {
                    probes: 1,
                    next_probe: now + retry,
                },
                pending: VecDeque::new(),
            },
        );
        self.probing += 1;
        self.queue(ip, packet, true)
    }

    fn queue(&mut self, ip: Ipv4Addr, packet: P, probe: bool) -> Resolve<P> {
        let per = self.config.pending_per_neighbor;
        let total = self.config.pending_total;
        let Some(e) = self.entries.get_mut(&ip) else {
            return Resolve::Dropped(packet, ResolveDrop::QueueFull);
        };
        if per == 0 {
            return Resolve::Dropped(packet, ResolveDrop::QueueFull);
        }
        // Full: push out this neighbour's oldest packet (as Linux does), if it has one.
        let pushed_out = if e.pending.len() >= per || self.pending_total >= total {
            match e.pending.pop_front() {
                Some(old) => {
                    self.pending_total -= 1;
                    Some(old)
                }
                None => return Resolve::Dropped(packet, ResolveDrop::QueueFull),
            }
        } else {
            None
        };
        e.pending.push_back(packet);
        self.pending_total += 1;
        match (pushed_out, probe) {
            (Some(old), _) => Resolve::QueuedDropped(old),
            (None, true) => Resolve::QueuedProbe,
            (None, false) => Resolve::Queued,
        }
    }

    /// Make room by removing a failed entry, or else the reachable/stale entry that
    /// expires first. Entries being resolved with packets waiting are kept.
    fn evict_one(&mut self, now: Instant) -> bool {
        let mut victim: Option<(Ipv4Addr, Instant)> = None;
        for (ip, e) in self.entries.iter() {
            let key = match e.state {
                State::Failed { .. } => Instant::ZERO,
                State::Reachable { expires, .. } => expires,
                State::Stale { .. } => now,
                State::Incomplete { .. } => continue,
            };
            if victim.is_none_or(|(_, k)| key < k) {
                victim = Some((*ip, key));
            }
        }
        let Some((ip, _)) = victim else { return false };
        self.remove(ip);
        true
    }

    fn remove(&mut self, ip: Ipv4Addr) {
        self.set_last(None);
        if let Some(e) = self.entries.remove(&ip) {
            self.pending_total -= e.pending.len();
            if matches!(e.state, State::Incomplete { .. } | State::Stale { .. }) {
                self.probing -= 1;
            }
        }
    }

    /// Learn or confirm `ip` at `mac`. An existing entry is always updated (RFC 826's
    /// merge); a new one is created only when `create` (the ARP was addressed to us).
    /// Returns the packets that were waiting, now sendable to `mac`, through `sink`.
    pub fn update(
        &mut self,
        ip: Ipv4Addr,
        mac: EthernetAddress,
        now: Instant,
        create: bool,
        mut sink: impl FnMut(P),
    ) {
        self.set_last(None);
        let reachable = State::Reachable {
            mac,
            expires: now + self.config.reachable_time,
        };
        if let Some(e) = self.entries.get_mut(&ip) {
            if matches!(e.state, State::Incomplete { .. } | State::Stale { .. }) {
                self.probing -= 1;
            }
            e.state = reachable;
            self.pending_total -= e.pending.len();
            while let Some(p) = e.pending.pop_front() {
                sink(p);
            }
            return;
        }
        if !create {
            return;
        }
        if self.entries.len() >= self.config.capacity && !self.evict_one(now) {
            return;
        }
        self.entries.insert(
            ip,
            Entry {
                state: reachable,
                pending: VecDeque::new(),
            },
        );
    }

    /// Run the timers: re-send requests that are due, give up on neighbours that did
    /// not answer (their packets come back as [`NeighborEvent::Failed`]).
    // Inline: the stack polls every interface on every poll, and nearly always nothing
    // is being probed; the test alone then costs nothing next to entering the scan.
    #[inline]
    pub fn poll(&mut self, now: Instant, event: impl FnMut(NeighborEvent<P>)) {
        if self.probing != 0 {
            self.poll_probing(now, event);
        }
    }

    /// [`poll`](Self::poll) when some entry is being probed: scan them all.
    #[inline(never)]
    fn poll_probing(&mut self, now: Instant, mut event: impl FnMut(NeighborEvent<P>)) {
        let cfg = self.config;
        let mut gone: Option<Ipv4Addr> = None;
        let mut newly_failed = 0usize;
        for (ip, e) in self.entries.iter_mut() {
            match e.state {
                State::Incomplete { probes, next_probe } if now >= next_probe => {
                    if probes < cfg.max_probes {
                        e.state = State::Incomplete {
                            probes: probes + 1,
                            next_probe: now + cfg.retry_interval,
                        };
                        event(NeighborEvent::Probe(*ip));
                    } else {
                        e.state = State::Failed {
                            until: now + cfg.failed_hold,
                        };
                        newly_failed += 1;
                        self.pending_total -= e.pending.len();
                        while let Some(p) = e.pending.pop_front() {
                            event(NeighborEvent::Failed(p));
                        }
                    }
                }
                State::Stale {
                    mac,
                    probes,
                    next_probe,
                } if now >= next_probe => {
                    if probes < cfg.max_probes {
                        e.state = State::Stale {
                            mac,
                            probes: probes + 1,
                            next_probe: now + cfg.retry_interval,
                        };
                        event(NeighborEvent::Probe(*ip));
                    } else if gone.is_none() {
                        // The neighbour went away: forget it (one per poll is plenty).
                        gone = Some(*ip);
                    }
                }
                _ => {}
            }
        }
        self.probing -= newly_failed;
        if let Some(ip) = gone {
            self.remove(ip);
        }
    }

    /// When [`poll`](Self::poll) next has work, if ever.
    pub fn poll_at(&self) -> Option<Instant> {
        if self.probing == 0 {
            return None;
        }
        self.entries
            .values()
            .filter_map(|e| match e.state {
                State::Incomplete { next_probe, .. } | State::Stale { next_probe, .. } => {
                    Some(next_probe)
                }
                _ => None,
            })
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    const A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
    const B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 3);
    const MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 2]);

    fn t(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    #[test]
    fn queue_resolve_and_flush() {
        let mut c: NeighborCache<u32> = NeighborCache::new(NeighborConfig::default(), 1);
        assert_eq!(c.resolve(A, t(0), 1), Resolve::QueuedProbe);
        assert_eq!(c.resolve(A, t(1), 2), Resolve::Queued);
        assert_eq!(c.pending(), 2);
        let mut out = Vec::new();
        c.update(A, MAC, t(2), false, |p| out.push(p));
        assert_eq!(out, [1, 2]);
        assert_eq!(c.pending(), 0);
        assert_eq!(c.resolve(A, t(3), 3), Resolve::Ready(MAC, false, 3));
        assert_eq!(c.poll_at(), None);
    }

    #[test]
    fn retries_then_fails_and_holds() {
        let mut c: NeighborCache<u32> = NeighborCache::new(NeighborConfig::default(), 1);
        assert_eq!(c.resolve(A, t(0), 1), Resolve::QueuedProbe);
        let mut ev = Vec::new();
        c.poll(t(999), |e| ev.push(e));
        assert!(ev.is_empty());
        assert_eq!(c.poll_at(), Some(t(1000)));
        c.poll(t(1000), |e| ev.push(e));
        c.poll(t(2000), |e| ev.push(e));
        assert_eq!(ev, [NeighborEvent::Probe(A), NeighborEvent::Probe(A)]);
        ev.clear();
        c.poll(t(3000), |e| ev.push(e));
        assert_eq!(ev, [NeighborEvent::Failed(1)]);
        assert_eq!(c.pending(), 0);
        assert_eq!(c.poll_at(), None);
        assert_eq!(
            c.resolve(A, t(3500), 2),
            Resolve::Dropped(2, ResolveDrop::Unresolved)
        );
        assert_eq!(c.resolve(A, t(4000), 3), Resolve::QueuedProbe);
    }

    #[test]
    fn stale_entries_keep_working_while_reprobed() {
        let mut c: NeighborCache<u32> = NeighborCache::new(NeighborConfig::default(), 1);
        c.update(A, MAC, t(0), true, |_| {});
        assert_eq!(c.resolve(A, t(59_999), 1), Resolve::Ready(MAC, false, 1));
        assert_eq!(c.resolve(A, t(60_000), 1), Resolve::Ready(MAC, true, 1));
        assert_eq!(c.lookup_send(A, t(60_001)), Some((MAC, false)));
        let mut ev = Vec::new();
        for s in 61..70 {
            c.poll(t(s * 1000), |e| ev.push(e));
        }
        assert_eq!(ev.len(), 2);
        assert_eq!(c.lookup(A), None);
        assert_eq!(c.len(), 0);
    }

    /// The remembered last answer never outlives what the table says: a new MAC, an
    /// expiry, a stale entry that is dropped, another neighbour in between.
    #[test]
    fn last_answer_follows_the_table() {
        const MAC2: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 9]);
        let mut c: NeighborCache<u32> = NeighborCache::new(NeighborConfig::default(), 1);
        c.update(A, MAC, t(0), true, |_| {});
        c.update(B, MAC2, t(0), true, |_| {});
        assert_eq!(c.lookup_send(A, t(1)), Some((MAC, false)));
        assert_eq!(c.lookup_send(B, t(1)), Some((MAC2, false)));
        assert_eq!(c.lookup_send(A, t(2)), Some((MAC, false)));
        // A's MAC changes (RFC 826 merge): the next answer has the new one.
        c.update(A, MAC2, t(3), false, |_| {});
        assert_eq!(c.lookup_send(A, t(4)), Some((MAC2, false)));
        // Expiry: the answer turns stale with a probe, exactly at reachable_time.
        let expiry = t(3) + NeighborConfig::default().reachable_time;
        assert_eq!(c.lookup_send(A, expiry), Some((MAC2, true)));
        assert_eq!(c.lookup_send(A, expiry), Some((MAC2, false)));
        // The stale entry that never answers is forgotten, and so is its answer.
        for s in 1..10 {
            c.poll(expiry + crate::time::Duration::from_secs(s), |_| {});
        }
        assert_eq!(c.lookup(A), None);
        assert_eq!(
            c.lookup_send(A, expiry + crate::time::Duration::from_secs(10)),
            None
        );
    }

    #[test]
    fn unsolicited_not_created_and_limits_hold() {
        let cfg = NeighborConfig {
            capacity: 2,
            pending_per_neighbor: 2,
            pending_total: 3,
            ..Default::default()
        };
        let mut c: NeighborCache<u32> = NeighborCache::new(cfg, 1);
        c.update(A, MAC, t(0), false, |_| {});
        assert_eq!(c.len(), 0);
        assert_eq!(c.resolve(A, t(0), 1), Resolve::QueuedProbe);
        assert_eq!(c.resolve(A, t(0), 2), Resolve::Queued);
        assert_eq!(c.resolve(A, t(0), 3), Resolve::QueuedDropped(1));
        assert_eq!(c.resolve(B, t(0), 4), Resolve::QueuedProbe);
        assert_eq!(c.pending(), 3);
        // Both entries are incomplete with packets: nothing can be evicted.
        assert_eq!(
            c.resolve(Ipv4Addr::new(10, 0, 0, 9), t(0), 5),
            Resolve::Dropped(5, ResolveDrop::CacheFull)
        );
        // A confirmed entry can be evicted for a new one.
        c.update(A, MAC, t(0), false, |_| {});
        assert_eq!(
            c.resolve(Ipv4Addr::new(10, 0, 0, 9), t(0), 6),
            Resolve::QueuedProbe
        );
        assert_eq!(c.lookup(A), None);
        assert_eq!(c.len(), 2);
    }
}
