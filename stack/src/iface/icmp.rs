//! ICMP echo sockets (ping) and the rate limit on the ICMP errors the stack sends.

use alloc::collections::VecDeque;

use crate::socket::{DatagramQueue, Slab, SlabKey};
use crate::time::{Duration, Instant};
use crate::wire::Ipv4Addr;
use crate::HashMap;

/// A token bucket: `rate` tokens per second, at most `burst` saved up. RFC 1812
/// §4.3.2.8 asks routers to limit the ICMP errors they send; hosts do the same
/// (Linux: `icmp_msgs_per_sec` 1000, `icmp_msgs_burst` 50).
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: u32,
    burst: u32,
    /// Tokens in millionths, so a refill of a few microseconds is not lost.
    micro_tokens: u64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate: u32, burst: u32) -> Self {
        TokenBucket {
            rate,
            burst,
            micro_tokens: u64::from(burst) * 1_000_000,
            last: Instant::ZERO,
        }
    }

    /// Take a token if there is one.
    pub fn take(&mut self, now: Instant) -> bool {
        let dt = now.saturating_duration_since(self.last);
        self.last = self.last.max(now);
        let cap = u64::from(self.burst) * 1_000_000;
        let add = (dt.min(Duration::from_secs(3600)).as_micros() as u64) * u64::from(self.rate);
        self.micro_tokens = (self.micro_tokens + add).min(cap);
        if self.micro_tokens >= 1_000_000 {
            self.micro_tokens -= 1_000_000;
            true
        } else {
            false
        }
    }
}

/// A handle to an ICMP echo socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IcmpHandle(pub(crate) SlabKey);

/// Errors of ICMP echo sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IcmpError {
    /// The handle does not name a live socket.
    InvalidHandle,
    /// Another socket uses this identifier.
    IdentInUse,
    /// The socket table is full.
    TooManySockets,
    /// Nothing to receive now / no room to queue now.
    WouldBlock,
    /// More data than an echo can carry here.
    TooLarge,
    /// No route to the destination.
    NoRoute,
}

impl core::fmt::Display for IcmpError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            IcmpError::InvalidHandle => "invalid icmp socket handle",
            IcmpError::IdentInUse => "icmp identifier in use",
            IcmpError::TooManySockets => "too many icmp sockets",
            IcmpError::WouldBlock => "operation would block",
            IcmpError::TooLarge => "echo data too large",
            IcmpError::NoRoute => "no route to host",
        })
    }
}

/// An echo reply received by a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EchoReply {
    /// Who answered.
    pub src: Ipv4Addr,
    /// The sequence number it echoed.
    pub seq_no: u16,
    /// Length of the echoed data (copied into the caller's buffer up to its size).
    pub len: usize,
}

/// Echo data limit: a reply must fit the smallest reassembly buffer every host has
/// (RFC 791: 576 bytes) many times over; 65507 is the IP limit.
pub const MAX_ECHO_DATA: usize = 65507 - 8;

#[derive(Debug)]
pub(crate) struct IcmpSocket {
    pub(crate) ident: u16,
    pub(crate) rx: DatagramQueue<(Ipv4Addr, u16)>,
    pub(crate) tx: DatagramQueue<(Ipv4Addr, u16)>,
    pub(crate) dirty: bool,
}

/// The ICMP echo sockets of one stack.
#[derive(Debug)]
pub(crate) struct IcmpTable {
    pub(crate) sockets: Slab<IcmpSocket>,
    by_ident: HashMap<u16, SlabKey>,
    pub(crate) dirty: VecDeque<SlabKey>,
}

impl IcmpTable {
    pub(crate) fn new(limit: usize, seed: u64) -> Self {
        IcmpTable {
            sockets: Slab::new(limit),
            by_ident: crate::new_map(seed),
            dirty: VecDeque::new(),
        }
    }

    pub(crate) fn bind(&mut self, ident: u16) -> Result<IcmpHandle, IcmpError> {
        if self.by_ident.contains_key(&ident) {
            return Err(IcmpError::IdentInUse);
        }
        let sock = IcmpSocket {
            ident,
            rx: DatagramQueue::new(64 * 1024, 64),
            tx: DatagramQueue::new(64 * 1024, 64),
            dirty: false,
        };
        let key = self
            .sockets
            .insert(sock)
            .map_err(|_| IcmpError::TooManySockets)?;
        self.by_ident.insert(ident, key);
        Ok(IcmpHandle(key))
    }

    pub(crate) fn close(&mut self, h: IcmpHandle) -> Result<(), IcmpError> {
        let s = self.sockets.remove(h.0).ok_or(IcmpError::InvalidHandle)?;
        self.by_ident.remove(&s.ident);
        Ok(())
    }

    pub(crate) fn queue_echo(
        &mut self,
        h: IcmpHandle,
        dst: Ipv4Addr,
        seq_no: u16,
        data: &[u8],
    ) -> Result<(), IcmpError> {
        if data.len() > MAX_ECHO_DATA {
            return Err(IcmpError::TooLarge);
        }
        let s = self.sockets.get_mut(h.0).ok_or(IcmpError::InvalidHandle)?;
        s.tx.push((dst, seq_no), data)
            .map_err(|_| IcmpError::WouldBlock)?;
        if !s.dirty {
            s.dirty = true;
            self.dirty.push_back(h.0);
        }
        Ok(())
    }

    pub(crate) fn recv(&mut self, h: IcmpHandle, buf: &mut [u8]) -> Result<EchoReply, IcmpError> {
        let s = self.sockets.get_mut(h.0).ok_or(IcmpError::InvalidHandle)?;
        let ((src, seq_no), len) = s.rx.pop_into(buf).ok_or(IcmpError::WouldBlock)?;
        Ok(EchoReply { src, seq_no, len })
    }

    /// Queue an echo reply for the socket with `ident`; false if none or it is full.
    pub(crate) fn deliver(&mut self, ident: u16, src: Ipv4Addr, seq_no: u16, data: &[u8]) -> bool {
        let Some(&key) = self.by_ident.get(&ident) else {
            return false;
        };
        match self.sockets.get_mut(key) {
            Some(s) => s.rx.push((src, seq_no), data).is_ok(),
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_limits_and_refills() {
        let mut b = TokenBucket::new(1000, 50);
        let t0 = Instant::from_secs(10);
        let granted = (0..200).filter(|_| b.take(t0)).count();
        assert_eq!(granted, 50);
        assert!(!b.take(t0));
        // 1000/s: 10 ms buys 10 tokens.
        let t1 = t0 + Duration::from_millis(10);
        assert_eq!((0..200).filter(|_| b.take(t1)).count(), 10);
        // Never more than the burst, however long the pause.
        let t2 = t1 + Duration::from_secs(100);
        assert_eq!((0..200).filter(|_| b.take(t2)).count(), 50);
    }
}
