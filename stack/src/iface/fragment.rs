//! IPv4 fragment reassembly (RFC 791 §3.2, with RFC 815's hole bookkeeping), bounded.
//!
//! Limits hold against any sender: at most `max_datagrams` datagrams in progress, at
//! most `max_bytes` of buffers among them (a buffer is charged for the highest offset it
//! was asked to hold, so a lone fragment at offset 65000 costs what it makes us
//! allocate), at most `max_fragments` fragments per datagram, and `timeout` to complete.
//! Overlapping fragments drop the whole datagram, as Linux does for IPv4 (the attacks of
//! RFC 1858 and RFC 3128 need overlaps); an exact or contained duplicate is ignored, so a
//! duplicating network still reassembles.

use alloc::vec::Vec;

use crate::stats::DropReason;
use crate::time::{Duration, Instant};
use crate::wire::ipv4::Ipv4Repr;
use crate::wire::{IpProtocol, Ipv4Addr};

/// Reassembly limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReassemblyConfig {
    /// Datagrams being reassembled at once.
    pub max_datagrams: usize,
    /// Buffer bytes among all datagrams being reassembled.
    pub max_bytes: usize,
    /// Largest reassembled IP payload (at most 65515 = 65535 - 20).
    pub max_datagram_len: usize,
    /// Fragments accepted for one datagram.
    pub max_fragments: usize,
    /// Time allowed from the first fragment to the last (RFC 1122 §3.3.2: 60 to 120 s
    /// recommended; Linux uses 30 s).
    pub timeout: Duration,
}

impl Default for ReassemblyConfig {
    fn default() -> Self {
        ReassemblyConfig {
            max_datagrams: 64,
            max_bytes: 4 << 20,
            max_datagram_len: 65515,
            max_fragments: 64,
            timeout: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    src: Ipv4Addr,
    dst: Ipv4Addr,
    protocol: IpProtocol,
    ident: u16,
}

#[derive(Debug)]
struct Datagram {
    key: Key,
    buf: Vec<u8>,
    /// Received byte ranges, sorted, merged when they touch.
    ranges: Vec<(usize, usize)>,
    fragments: usize,
    /// Payload length, once the last fragment (MF clear) arrived.
    total: Option<usize>,
    /// The header of the first fragment (offset 0), once it arrived.
    first: Option<Ipv4Repr>,
    expires: Instant,
}

/// A completed datagram: the header of its first fragment (fragment fields cleared,
/// payload length set) and its reassembled payload. Give the buffer back with
/// [`Reassembler::recycle`].
#[derive(Debug)]
pub struct Reassembled {
    pub repr: Ipv4Repr,
    pub payload: Vec<u8>,
}

/// What became of a fragment.
#[derive(Debug)]
pub enum FragmentOutcome {
    /// Stored; the datagram is not complete yet.
    Stored,
    /// A duplicate of data already held; ignored.
    Duplicate,
    /// The datagram is complete.
    Complete(Reassembled),
}

/// The reassembly buffers of one stack.
#[derive(Debug)]
pub struct Reassembler {
    config: ReassemblyConfig,
    datagrams: Vec<Datagram>,
    bytes: usize,
    spare: Vec<Vec<u8>>,
    /// Fragments held for datagrams that failed `add`s discarded, not yet taken by
    /// [`take_discarded`](Self::take_discarded).
    discarded: usize,
}

impl Reassembler {
    /// Empty buffers with these limits.
    pub fn new(config: ReassemblyConfig) -> Self {
        Reassembler {
            config,
            datagrams: Vec::new(),
            bytes: 0,
            spare: Vec::new(),
            discarded: 0,
        }
    }

    /// Datagrams in progress.
    #[inline]
    pub fn in_progress(&self) -> usize {
        self.datagrams.len()
    }

    /// Buffer bytes charged to datagrams in progress.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Take one fragment. Errors are the drop reason for this fragment and, for
    /// overlaps, oversize and too many fragments, for the datagram it belonged to, which
    /// is discarded: [`take_discarded`](Self::take_discarded) then says how many held
    /// fragments went with it, so every fragment received is counted.
    pub fn add(
        &mut self,
        now: Instant,
        repr: &Ipv4Repr,
        payload: &[u8],
    ) -> Result<FragmentOutcome, DropReason> {
        let start = usize::from(repr.frag_offset);
        let end = start + payload.len();
        let last = !repr.more_frags;
        // RFC 791: every fragment but the last carries a multiple of 8 bytes.
        if !last && (payload.is_empty() || !payload.len().is_multiple_of(8)) {
            return Err(DropReason::FragBadLength);
        }
        let key = Key {
            src: repr.src_addr,
            dst: repr.dst_addr,
            protocol: repr.protocol,
            ident: repr.ident,
        };
        let idx = self.datagrams.iter().position(|d| d.key == key);
        if end > self.config.max_datagram_len {
            if let Some(i) = idx {
                self.reject(i);
            }
            return Err(DropReason::FragOversize);
        }
        let i = match idx {
            Some(i) => i,
            None => {
                if self.datagrams.len() >= self.config.max_datagrams {
                    return Err(DropReason::FragNoBuffer);
                }
                let buf = self.spare.pop().unwrap_or_default();
                self.datagrams.push(Datagram {
                    key,
                    buf,
                    ranges: Vec::new(),
                    fragments: 0,
                    total: None,
                    first: None,
                    expires: now + self.config.timeout,
                });
                self.datagrams.len() - 1
            }
        };

        // Consistency with what is known of the datagram's end.
        let d = &self.datagrams[i];
        let known_end = d.ranges.last().map_or(0, |r| r.1);
        let bad_end = match d.total {
            Some(total) => end > total || (last && end != total),
            None => last && end < known_end,
        };
        if bad_end {
            self.reject(i);
            return Err(DropReason::FragOverlap);
        }
        if d.ranges.iter().any(|&(s, e)| s <= start && end <= e) && !payload.is_empty() {
            return Ok(FragmentOutcome::Duplicate);
        }
        if d.ranges.iter().any(|&(s, e)| start < e && s < end) {
            self.reject(i);
            return Err(DropReason::FragOverlap);
        }
        if d.fragments >= self.config.max_fragments {
            self.reject(i);
            return Err(DropReason::FragTooMany);
        }
        let grow = end.saturating_sub(d.buf.len());
        if self.bytes + grow > self.config.max_bytes {
            if d.fragments == 0 {
                self.reject(i);
            }
            return Err(DropReason::FragNoBuffer);
        }

        self.bytes += grow;
        let d = &mut self.datagrams[i];
        if grow > 0 {
            d.buf.resize(end, 0);
        }
        d.buf[start..end].copy_from_slice(payload);
        d.fragments += 1;
        if last {
            d.total = Some(end);
        }
        if start == 0 {
            d.first = Some(*repr);
        }
        // Insert the range and merge it with the neighbours it touches (in place: the
        // list never holds more than `max_fragments` ranges).
        let at = d.ranges.partition_point(|&(s, _)| s < start);
        d.ranges.insert(at, (start, end));
        if at + 1 < d.ranges.len() && d.ranges[at].1 == d.ranges[at + 1].0 {
            d.ranges[at].1 = d.ranges[at + 1].1;
            d.ranges.remove(at + 1);
        }
        if at > 0 && d.ranges[at - 1].1 == d.ranges[at].0 {
            d.ranges[at - 1].1 = d.ranges[at].1;
            d.ranges.remove(at);
        }

        let complete = matches!((d.total, d.ranges.as_slice()), (Some(t), [(0, e)]) if *e == t);
        if !complete {
            return Ok(FragmentOutcome::Stored);
        }
        let d = self.datagrams.swap_remove(i);
        self.bytes -= d.buf.len();
        let mut repr = d.first.unwrap_or(*repr);
        repr.payload_len = d.buf.len();
        repr.more_frags = false;
        repr.frag_offset = 0;
        Ok(FragmentOutcome::Complete(Reassembled {
            repr,
            payload: d.buf,
        }))
    }

    /// Discard datagram `i` for a fragment refused by `add`; its held fragments are
    /// counted by the caller under the same reason.
    fn reject(&mut self, i: usize) {
        self.discarded += self.discard(i);
    }

    /// Fragments discarded along with their datagram by the failed `add`s since the
    /// last call (the refused fragment itself not included).
    pub fn take_discarded(&mut self) -> usize {
        core::mem::take(&mut self.discarded)
    }

    fn discard(&mut self, i: usize) -> usize {
        let d = self.datagrams.swap_remove(i);
        self.bytes -= d.buf.len();
        let n = d.fragments;
        self.recycle(d.buf);
        n
    }

    /// Give a reassembled payload's buffer back for reuse.
    pub fn recycle(&mut self, mut buf: Vec<u8>) {
        if self.spare.len() < 4 && buf.capacity() <= 65536 {
            buf.clear();
            self.spare.push(buf);
        }
    }

    /// Drop datagrams past their time; returns how many fragments were discarded.
    // Inline: called on every poll, and nearly always nothing is being reassembled.
    #[inline]
    pub fn expire(&mut self, now: Instant) -> u64 {
        if self.datagrams.is_empty() {
            return 0;
        }
        self.expire_some(now)
    }

    /// [`expire`](Self::expire) with datagrams in progress.
    #[inline(never)]
    fn expire_some(&mut self, now: Instant) -> u64 {
        let mut dropped = 0u64;
        let mut i = 0;
        while i < self.datagrams.len() {
            if now >= self.datagrams[i].expires {
                dropped += self.discard(i) as u64;
            } else {
                i += 1;
            }
        }
        dropped
    }

    /// The earliest time a datagram in progress expires.
    pub fn poll_at(&self) -> Option<Instant> {
        self.datagrams.iter().map(|d| d.expires).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rand::Rand;

    fn frag(ident: u16, off: usize, mf: bool, len: usize) -> Ipv4Repr {
        Ipv4Repr {
            src_addr: Ipv4Addr::new(10, 0, 0, 1),
            dst_addr: Ipv4Addr::new(10, 0, 0, 2),
            protocol: IpProtocol::Udp,
            payload_len: len,
            ttl: 64,
            tos: 0,
            ident,
            dont_frag: false,
            more_frags: mf,
            frag_offset: off as u16,
        }
    }

    fn data(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7) as u8).collect()
    }

    /// Split `payload` in `chunk`-byte fragments.
    fn split(ident: u16, payload: &[u8], chunk: usize) -> Vec<(Ipv4Repr, Vec<u8>)> {
        payload
            .chunks(chunk)
            .enumerate()
            .map(|(i, c)| {
                let off = i * chunk;
                (
                    frag(ident, off, off + c.len() < payload.len(), c.len()),
                    c.to_vec(),
                )
            })
            .collect()
    }

    #[test]
    fn any_order_with_duplicates_reassembles() {
        let payload = data(3000);
        for seed in 0..200 {
            let mut rng = Rand::from_u64(seed);
            let mut frags = split(7, &payload, 1480);
            frags.extend(
                split(7, &payload, 1480)
                    .into_iter()
                    .filter(|_| rng.chance(0.5)),
            );
            for i in (1..frags.len()).rev() {
                frags.swap(i, rng.below(i as u32 + 1) as usize);
            }
            let mut r = Reassembler::new(ReassemblyConfig::default());
            let mut done = None;
            for (repr, p) in &frags {
                match r.add(Instant::ZERO, repr, p).unwrap() {
                    FragmentOutcome::Complete(c) => {
                        // Duplicates of every fragment after completion make a second,
                        // identical datagram: fine, the copies were real.
                        if let Some(first) = &done {
                            let first: &Reassembled = first;
                            assert_eq!(first.payload, c.payload);
                        } else {
                            done = Some(c);
                        }
                    }
                    FragmentOutcome::Stored | FragmentOutcome::Duplicate => {}
                }
            }
            let c = done.expect("complete");
            assert_eq!(c.payload, payload);
            assert_eq!(c.repr.payload_len, 3000);
            assert!(!c.repr.more_frags);
            // A duplicate that arrives after completion starts a new datagram (as in
            // Linux); it would time out. At most one such datagram is left.
            assert!(r.in_progress() <= 1);
        }
    }

    #[test]
    fn overlap_drops_the_datagram() {
        let mut r = Reassembler::new(ReassemblyConfig::default());
        r.add(Instant::ZERO, &frag(1, 0, true, 16), &data(16))
            .unwrap();
        assert_eq!(
            r.add(Instant::ZERO, &frag(1, 8, true, 16), &data(16))
                .unwrap_err(),
            DropReason::FragOverlap
        );
        assert_eq!(r.in_progress(), 0);
        assert_eq!(r.take_discarded(), 1, "the held fragment went with it");
        assert_eq!(r.take_discarded(), 0);
        // A contained duplicate is only ignored.
        r.add(Instant::ZERO, &frag(2, 0, true, 16), &data(16))
            .unwrap();
        assert!(matches!(
            r.add(Instant::ZERO, &frag(2, 8, true, 8), &data(8))
                .unwrap(),
            FragmentOutcome::Duplicate
        ));
        // Once the last fragment fixed the end at 40, another "last" ending at 24 is
        // inconsistent and takes the datagram down.
        r.add(Instant::ZERO, &frag(2, 32, false, 8), &data(8))
            .unwrap();
        assert_eq!(
            r.add(Instant::ZERO, &frag(2, 16, false, 8), &data(8))
                .unwrap_err(),
            DropReason::FragOverlap
        );
        assert_eq!(r.in_progress(), 0);
    }

    #[test]
    fn limits_hold() {
        let cfg = ReassemblyConfig {
            max_datagrams: 2,
            max_bytes: 70_000,
            max_fragments: 3,
            ..Default::default()
        };
        let mut r = Reassembler::new(cfg);
        assert_eq!(
            r.add(Instant::ZERO, &frag(1, 8, true, 7), &data(7))
                .unwrap_err(),
            DropReason::FragBadLength
        );
        assert_eq!(
            r.add(Instant::ZERO, &frag(1, 65512, false, 8), &data(8))
                .unwrap_err(),
            DropReason::FragOversize
        );
        // A far fragment is charged for the buffer it makes us hold.
        r.add(Instant::ZERO, &frag(1, 65000, true, 8), &data(8))
            .unwrap();
        assert_eq!(r.bytes(), 65008);
        assert_eq!(
            r.add(Instant::ZERO, &frag(2, 8000, true, 8), &data(8))
                .unwrap_err(),
            DropReason::FragNoBuffer
        );
        assert_eq!(r.in_progress(), 1);
        r.add(Instant::ZERO, &frag(3, 0, true, 8), &data(8))
            .unwrap();
        assert_eq!(
            r.add(Instant::ZERO, &frag(4, 0, true, 8), &data(8))
                .unwrap_err(),
            DropReason::FragNoBuffer
        );
        r.add(Instant::ZERO, &frag(3, 8, true, 8), &data(8))
            .unwrap();
        r.add(Instant::ZERO, &frag(3, 16, true, 8), &data(8))
            .unwrap();
        assert_eq!(
            r.add(Instant::ZERO, &frag(3, 24, false, 8), &data(8))
                .unwrap_err(),
            DropReason::FragTooMany
        );
        assert_eq!(r.poll_at(), Some(Instant::from_secs(30)));
        assert_eq!(r.expire(Instant::from_secs(29)), 0);
        assert_eq!(r.expire(Instant::from_secs(30)), 1);
        assert_eq!(r.in_progress(), 0);
        assert_eq!(r.bytes(), 0);
    }
}
