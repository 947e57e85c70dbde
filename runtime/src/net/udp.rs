//! `UdpSocket`: bound on every shard (a datagram arrives on the shard its 4-tuple
//! hashes to), sending through one ("home") shard.
//!
//! Datagrams cross in bounded queues of buffers that are recycled through bounded free
//! lists, so after warm-up a send or receive allocates nothing.

use std::io;
use std::net::{SocketAddr, SocketAddrV4, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crossbeam_queue::ArrayQueue;
use mio::{Interest, Registry, Token};
use rumpnet_stack::udp::{UdpError, UdpHandle, MAX_PAYLOAD};
use rumpnet_stack::Stack;

use super::signal::Signal;
use super::{
    deadline, each_addr, load_timeout, stopped, store_timeout, timed_out, udp_error, Cmd,
    NetHandle, NetShared, ShardLink, STOPPED_CODE,
};

/// A datagram and its peer (sender on receive, destination on send).
pub(crate) struct Datagram {
    addr: SocketAddrV4,
    data: Vec<u8>,
}

/// One shard's part of a socket.
pub(crate) struct UdpShardQ {
    rx: ArrayQueue<Datagram>,
    /// Buffers the user gave back, for the shard's next receives.
    free: ArrayQueue<Vec<u8>>,
    handle: OnceLock<UdpHandle>,
}

/// A socket, as its user side and the shards share it.
pub(crate) struct UdpShared {
    local: SocketAddrV4,
    home: usize,
    shards: Box<[UdpShardQ]>,
    tx: ArrayQueue<Datagram>,
    tx_free: ArrayQueue<Vec<u8>>,
    pending: AtomicUsize,
    bind_error: AtomicU8,
    stopped: AtomicBool,
    /// An error of an earlier send (udp code), reported by the next call.
    error: AtomicU8,
    signal: Signal,
}

const UDP_ERRORS: [UdpError; 11] = [
    UdpError::InvalidHandle,
    UdpError::AddrInUse,
    UdpError::AddrNotAvailable,
    UdpError::NoPortsAvailable,
    UdpError::TooManySockets,
    UdpError::NotConnected,
    UdpError::WouldBlock,
    UdpError::TooLarge,
    UdpError::Unaddressable,
    UdpError::NoRoute,
    UdpError::ConnectionRefused,
];

fn udp_code(e: UdpError) -> u8 {
    UDP_ERRORS
        .iter()
        .position(|&x| x == e)
        .map_or(1, |i| i as u8 + 1)
}

fn udp_code_error(code: u8) -> io::Error {
    match code {
        STOPPED_CODE => stopped(),
        c => UDP_ERRORS
            .get((c as usize).wrapping_sub(1))
            .map_or_else(|| io::Error::other("unknown error"), |&e| udp_error(e)),
    }
}

impl UdpShared {
    /// Shard `shard` answered a bind.
    pub fn bind_answered(&self, _shard: usize, r: Result<(), u8>) {
        if let Err(code) = r {
            if code == STOPPED_CODE {
                self.stopped.store(true, Ordering::Release);
            }
            let _ = self
                .bind_error
                .compare_exchange(0, code, Ordering::AcqRel, Ordering::Relaxed);
        }
        self.pending.fetch_sub(1, Ordering::AcqRel);
        self.signal.wake();
    }

    fn any_waiting(&self) -> bool {
        self.shards.iter().any(|s| !s.rx.is_empty())
    }
}

/// A socket as one shard keeps it.
struct ShardSock {
    handle: UdpHandle,
    shared: Arc<UdpShared>,
    /// A datagram the stack had no room for, sent first next time.
    stash: Option<Datagram>,
}

/// The UDP sockets of one shard.
#[derive(Default)]
pub(crate) struct UdpShard {
    socks: Vec<ShardSock>,
}

impl UdpShard {
    pub fn bind(&mut self, stack: &mut Stack, link: &ShardLink, u: Arc<UdpShared>) {
        match stack.udp_bind(u.local) {
            Ok(h) => {
                let _ = u.shards[link.id].handle.set(h);
                self.socks.push(ShardSock {
                    handle: h,
                    shared: Arc::clone(&u),
                    stash: None,
                });
                u.bind_answered(link.id, Ok(()));
            }
            Err(e) => u.bind_answered(link.id, Err(udp_code(e))),
        }
    }

    pub fn close(&mut self, stack: &mut Stack, link: &ShardLink, u: &Arc<UdpShared>) {
        if let Some(i) = self.socks.iter().position(|s| Arc::ptr_eq(&s.shared, u)) {
            let s = self.socks.swap_remove(i);
            let _ = stack.udp_close(s.handle);
            if s.shared.home == link.id {
                let mut dropped = 0;
                while s.shared.tx.pop().is_some() {
                    dropped += 1;
                }
                link.udp_tx_pending.fetch_sub(dropped, Ordering::AcqRel);
            }
        }
    }

    /// Receive into the sockets' queues, send what their users queued. Returns whether
    /// anything moved.
    pub fn turn(&mut self, stack: &mut Stack, link: &ShardLink, scratch: &mut [u8]) -> bool {
        let me = link.id;
        let mut busy = false;
        for s in &mut self.socks {
            let u = &*s.shared;
            let q = &u.shards[me];
            let mut woke = false;
            while !q.rx.is_full() {
                match stack.udp_recv_from(s.handle, scratch) {
                    Ok((len, from)) => {
                        let n = len.min(scratch.len());
                        let mut data = q.free.pop().unwrap_or_default();
                        data.clear();
                        data.extend_from_slice(&scratch[..n]);
                        // Only this shard pushes here, and there was room.
                        let _ = q.rx.push(Datagram { addr: from, data });
                        woke = true;
                    }
                    Err(UdpError::WouldBlock) => break,
                    Err(e) => {
                        let _ = u.error.compare_exchange(
                            0,
                            udp_code(e),
                            Ordering::AcqRel,
                            Ordering::Relaxed,
                        );
                        woke = true;
                        break;
                    }
                }
            }
            if u.home == me {
                loop {
                    let d = match s.stash.take() {
                        Some(d) => d,
                        None => match u.tx.pop() {
                            Some(d) => {
                                link.udp_tx_pending.fetch_sub(1, Ordering::AcqRel);
                                d
                            }
                            None => break,
                        },
                    };
                    match stack.udp_send_to(s.handle, &d.data, d.addr) {
                        Err(UdpError::WouldBlock) => {
                            s.stash = Some(d);
                            break;
                        }
                        r => {
                            if let Err(e) = r {
                                let _ = u.error.compare_exchange(
                                    0,
                                    udp_code(e),
                                    Ordering::AcqRel,
                                    Ordering::Relaxed,
                                );
                            }
                            let _ = u.tx_free.push(d.data);
                            woke = true;
                        }
                    }
                }
            }
            if woke {
                u.signal.wake();
                busy = true;
            }
        }
        busy
    }

    pub fn stop(&mut self) {
        for s in self.socks.drain(..) {
            s.shared.stopped.store(true, Ordering::Release);
            s.shared.signal.wake();
        }
    }
}

/// The user's side, shared by clones.
struct UdpInner {
    shared: Arc<UdpShared>,
    net: Arc<NetShared>,
    /// The connected peer: `1 << 48 | ip << 16 | port`, 0 when not connected.
    peer: AtomicU64,
    next: AtomicUsize,
    nonblocking: AtomicBool,
    read_timeout: AtomicU64,
    write_timeout: AtomicU64,
}

impl Drop for UdpInner {
    fn drop(&mut self) {
        for link in &self.net.links {
            let _ = link.push(Cmd::UdpClose(Arc::clone(&self.shared)));
        }
    }
}

/// A UDP socket, as [`std::net::UdpSocket`]. A [`mio::event::Source`] with the
/// contract described at [`TcpStream`](super::TcpStream).
///
/// `send_to` queues the datagram for the socket's home shard and returns; an error the
/// stack reports for it (no route) is returned by the next call. `connect` fixes the
/// default destination and filters received datagrams by sender.
pub struct UdpSocket {
    inner: Arc<UdpInner>,
}

impl std::fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UdpSocket")
            .field("local", &self.inner.shared.local)
            .finish()
    }
}

const EPHEMERAL_TRIES: usize = 64;

fn encode_peer(a: SocketAddrV4) -> u64 {
    1 << 48 | u64::from(u32::from(*a.ip())) << 16 | u64::from(a.port())
}

fn decode_peer(v: u64) -> Option<SocketAddrV4> {
    (v != 0).then(|| SocketAddrV4::new(((v >> 16) as u32).into(), v as u16))
}

impl UdpSocket {
    /// Bind `addr` (port 0: a free port) through the default runtime.
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<UdpSocket> {
        UdpSocket::bind_on(&NetHandle::current()?, addr)
    }

    /// [`bind`](Self::bind) through `rt`.
    pub fn bind_on<A: ToSocketAddrs>(rt: &NetHandle, addr: A) -> io::Result<UdpSocket> {
        each_addr(addr, |a| {
            if a.port() != 0 {
                return UdpSocket::open(rt, a);
            }
            let mut last = None;
            for _ in 0..EPHEMERAL_TRIES {
                let port = rt.shared.ephemeral_port();
                match UdpSocket::open(rt, SocketAddrV4::new(*a.ip(), port)) {
                    Err(e) if e.kind() == io::ErrorKind::AddrInUse => last = Some(e),
                    r => return r,
                }
            }
            Err(last.unwrap_or_else(|| udp_error(UdpError::NoPortsAvailable)))
        })
    }

    fn open(rt: &NetHandle, local: SocketAddrV4) -> io::Result<UdpSocket> {
        let net = &rt.shared;
        let n = net.links.len();
        let cap = net.config.udp_queue.max(1);
        let home = net.pick_shard().id;
        let shared = Arc::new(UdpShared {
            local,
            home,
            shards: (0..n)
                .map(|_| UdpShardQ {
                    rx: ArrayQueue::new(cap),
                    free: ArrayQueue::new(cap),
                    handle: OnceLock::new(),
                })
                .collect(),
            tx: ArrayQueue::new(cap),
            tx_free: ArrayQueue::new(cap),
            pending: AtomicUsize::new(n),
            bind_error: AtomicU8::new(0),
            stopped: AtomicBool::new(false),
            error: AtomicU8::new(0),
            signal: Signal::default(),
        });
        let sock = UdpSocket {
            inner: Arc::new(UdpInner {
                shared: Arc::clone(&shared),
                net: Arc::clone(net),
                peer: AtomicU64::new(0),
                next: AtomicUsize::new(0),
                nonblocking: AtomicBool::new(false),
                read_timeout: AtomicU64::new(0),
                write_timeout: AtomicU64::new(0),
            }),
        };
        for (i, link) in net.links.iter().enumerate() {
            if let Err(e) = link.push(Cmd::UdpBind(Arc::clone(&shared))) {
                shared.pending.fetch_sub(n - i, Ordering::AcqRel);
                return Err(e);
            }
        }
        shared
            .signal
            .wait_until(None, || shared.pending.load(Ordering::Acquire) == 0);
        match shared.bind_error.load(Ordering::Acquire) {
            // Dropping `sock` closes it where it was bound.
            0 => Ok(sock),
            code => Err(udp_code_error(code)),
        }
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(SocketAddr::V4(self.inner.shared.local))
    }

    /// The connected peer.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        decode_peer(self.inner.peer.load(Ordering::Acquire))
            .map(SocketAddr::V4)
            .ok_or_else(|| udp_error(UdpError::NotConnected))
    }

    /// Send to this address by default, and receive only from it.
    pub fn connect<A: ToSocketAddrs>(&self, addr: A) -> io::Result<()> {
        each_addr(addr, |a| {
            if a.ip().is_unspecified() || a.port() == 0 {
                return Err(udp_error(UdpError::Unaddressable));
            }
            self.inner.peer.store(encode_peer(a), Ordering::Release);
            Ok(())
        })
    }

    fn take_error_now(&self) -> Option<io::Error> {
        let s = &self.inner.shared;
        if s.stopped.load(Ordering::Acquire) {
            return Some(stopped());
        }
        match s.error.swap(0, Ordering::AcqRel) {
            0 => None,
            c => Some(udp_code_error(c)),
        }
    }

    /// Queue a datagram to `addr`; waits for room (unless nonblocking or timed out).
    pub fn send_to<A: ToSocketAddrs>(&self, buf: &[u8], addr: A) -> io::Result<usize> {
        let dst = each_addr(addr, Ok)?;
        self.send_v4(buf, dst)
    }

    /// Queue a datagram to the connected peer.
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        let dst = decode_peer(self.inner.peer.load(Ordering::Acquire))
            .ok_or_else(|| udp_error(UdpError::NotConnected))?;
        self.send_v4(buf, dst)
    }

    fn send_v4(&self, buf: &[u8], dst: SocketAddrV4) -> io::Result<usize> {
        if buf.len() > MAX_PAYLOAD {
            return Err(udp_error(UdpError::TooLarge));
        }
        if dst.ip().is_unspecified() || dst.port() == 0 {
            return Err(udp_error(UdpError::Unaddressable));
        }
        if let Some(e) = self.take_error_now() {
            return Err(e);
        }
        let inner = &*self.inner;
        let s = &*inner.shared;
        let dl = deadline(load_timeout(&inner.write_timeout));
        let mut d = Datagram {
            addr: dst,
            data: s.tx_free.pop().unwrap_or_default(),
        };
        d.data.clear();
        d.data.extend_from_slice(buf);
        loop {
            match s.tx.push(d) {
                Ok(()) => break,
                Err(back) => d = back,
            }
            if inner.nonblocking.load(Ordering::Acquire) {
                let _ = s.tx_free.push(d.data);
                s.signal.rearm();
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let ready = s
                .signal
                .wait_until(dl, || !s.tx.is_full() || s.stopped.load(Ordering::Acquire));
            if s.stopped.load(Ordering::Acquire) {
                return Err(stopped());
            }
            if !ready {
                return Err(timed_out());
            }
        }
        let link = &inner.net.links[s.home];
        link.udp_tx_pending.fetch_add(1, Ordering::SeqCst);
        link.notify();
        Ok(buf.len())
    }

    /// Receive a datagram (truncated to `buf`), with its sender.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.recv_impl(buf, true)
    }

    /// Receive a datagram without taking it off the queue.
    pub fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.recv_impl(buf, false)
    }

    /// Receive a datagram from the connected peer.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        if self.inner.peer.load(Ordering::Acquire) == 0 {
            return Err(udp_error(UdpError::NotConnected));
        }
        self.recv_from(buf).map(|(n, _)| n)
    }

    fn try_recv(&self, buf: &mut [u8], take: bool) -> Option<(usize, SocketAddr)> {
        let inner = &*self.inner;
        let s = &*inner.shared;
        let peer = decode_peer(inner.peer.load(Ordering::Acquire));
        let n = s.shards.len();
        let start = inner.next.fetch_add(1, Ordering::Relaxed);
        for k in 0..n {
            let q = &s.shards[(start + k) % n];
            while let Some(d) = q.rx.pop() {
                if peer.is_some_and(|p| p != d.addr) {
                    let _ = q.free.push(d.data);
                    continue;
                }
                let len = d.data.len().min(buf.len());
                buf[..len].copy_from_slice(&d.data[..len]);
                let from = SocketAddr::V4(d.addr);
                if take {
                    let _ = q.free.push(d.data);
                } else if let Err(d) = q.rx.push(d) {
                    // Peeking puts it back at the end; with several shards or a full
                    // queue the order may change, as peek makes no promise here.
                    let _ = q.free.push(d.data);
                }
                return Some((len, from));
            }
        }
        None
    }

    fn recv_impl(&self, buf: &mut [u8], take: bool) -> io::Result<(usize, SocketAddr)> {
        let inner = &*self.inner;
        let s = &*inner.shared;
        let dl = deadline(load_timeout(&inner.read_timeout));
        loop {
            if let Some(r) = self.try_recv(buf, take) {
                return Ok(r);
            }
            if let Some(e) = self.take_error_now() {
                return Err(e);
            }
            if inner.nonblocking.load(Ordering::Acquire) {
                s.signal.rearm();
                return self
                    .try_recv(buf, take)
                    .ok_or_else(|| io::ErrorKind::WouldBlock.into());
            }
            let ready = s.signal.wait_until(dl, || {
                s.any_waiting()
                    || s.stopped.load(Ordering::Acquire)
                    || s.error.load(Ordering::Acquire) != 0
            });
            if !ready {
                return Err(timed_out());
            }
        }
    }

    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.inner.nonblocking.store(nonblocking, Ordering::Release);
        Ok(())
    }

    pub fn set_read_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        store_timeout(&self.inner.read_timeout, dur)
    }

    pub fn set_write_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        store_timeout(&self.inner.write_timeout, dur)
    }

    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(load_timeout(&self.inner.read_timeout))
    }

    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(load_timeout(&self.inner.write_timeout))
    }

    /// An error an earlier send ran into, taken (std's `SO_ERROR`).
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        Ok(self.take_error_now())
    }

    pub fn try_clone(&self) -> io::Result<UdpSocket> {
        Ok(UdpSocket {
            inner: Arc::clone(&self.inner),
        })
    }
}

impl mio::event::Source for UdpSocket {
    fn register(&mut self, registry: &Registry, token: Token, _: Interest) -> io::Result<()> {
        self.inner.shared.signal.mio_register(registry, token)
    }
    fn reregister(&mut self, registry: &Registry, token: Token, _: Interest) -> io::Result<()> {
        self.inner.shared.signal.mio_register(registry, token)
    }
    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        self.inner.shared.signal.mio_deregister(registry)
    }
}
