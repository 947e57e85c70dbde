//! `TcpStream` and `TcpListener`: the user's side of connections a shard owns.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, SocketAddrV4, ToSocketAddrs};
use std::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use crossbeam_queue::ArrayQueue;
use mio::{Interest, Registry, Token};
use rumpnet_stack::tcp::{TcpError, TcpHandle, TcpListenerHandle};

use super::bytes::ByteRing;
use super::signal::Signal;
use super::{
    code_error, deadline, each_addr, load_timeout, store_timeout, tcp_code, tcp_error, timed_out,
    Cmd, NetConfig, NetHandle, NetShared, ShardLink,
};

// ---- what a connection's user side and its shard share ----

/// `ConnShared::state` bits, set by the shard.
pub(crate) const CONNECTED: u32 = 1;
/// The peer's FIN arrived and every byte before it is in the receive ring.
pub(crate) const RX_EOF: u32 = 2;
/// The connection failed (`error` says why): reads fail once the ring is empty.
pub(crate) const FAILED: u32 = 4;
/// Sending failed (`error` says why): writes fail.
pub(crate) const WR_FAILED: u32 = 8;

/// `ConnShared::req` bits, set by the user side before a [`Cmd::Conn`].
pub(crate) const REQ_SHUT_WR: u32 = 1;
pub(crate) const REQ_SHUT_RD: u32 = 2;
pub(crate) const REQ_CLOSE: u32 = 4;
pub(crate) const REQ_NODELAY: u32 = 8;

/// `ConnShared::want` bits, set by the shard when it stopped for want of something.
/// The user side clears one and sends a [`Cmd::Conn`] when it provides it.
pub(crate) const WANT_TX: u32 = 1;
pub(crate) const WANT_RX_ROOM: u32 = 2;

/// One connection, as its user side and its shard share it.
pub(crate) struct ConnShared {
    /// Shard → user bytes.
    pub rx: ByteRing,
    /// User → shard bytes.
    pub tx: ByteRing,
    pub state: AtomicU32,
    pub error: AtomicU8,
    pub req: AtomicU32,
    pub want: AtomicU32,
    /// A `Cmd::Conn` for it is queued (so at most one is).
    pub queued: AtomicBool,
    pub nodelay: AtomicBool,
    pub signal: Signal,
    /// The stack's handle, set by the shard once the connection exists.
    pub handle: OnceLock<TcpHandle>,
    pub local: OnceLock<SocketAddrV4>,
    pub remote: SocketAddrV4,
    pub shard: usize,
}

impl ConnShared {
    pub fn new(config: &NetConfig, shard: usize, remote: SocketAddrV4) -> ConnShared {
        ConnShared {
            rx: ByteRing::new(config.rx_ring),
            tx: ByteRing::new(config.tx_ring),
            state: AtomicU32::new(0),
            error: AtomicU8::new(0),
            req: AtomicU32::new(0),
            want: AtomicU32::new(0),
            queued: AtomicBool::new(false),
            nodelay: AtomicBool::new(false),
            signal: Signal::default(),
            handle: OnceLock::new(),
            local: OnceLock::new(),
            remote,
            shard,
        }
    }

    pub fn state(&self) -> u32 {
        self.state.load(Ordering::Acquire)
    }

    /// Shard: the connection failed with `code` (`FAILED` or `WR_FAILED`).
    pub fn fail(&self, code: u8, bits: u32) {
        let _ = self
            .error
            .compare_exchange(0, code, Ordering::AcqRel, Ordering::Relaxed);
        self.state.fetch_or(bits, Ordering::AcqRel);
    }

    pub fn fail_tcp(&self, e: TcpError, bits: u32) {
        self.fail(tcp_code(e), bits);
    }

    fn error(&self) -> io::Error {
        code_error(self.error.load(Ordering::Acquire))
    }
}

impl std::fmt::Debug for ConnShared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnShared")
            .field("shard", &self.shard)
            .field("remote", &self.remote)
            .field("state", &self.state.load(Ordering::Relaxed))
            .finish()
    }
}

/// Ask the connection's shard to look at it (once: a pending request covers the rest).
fn nudge(c: &Arc<ConnShared>, link: &ShardLink) {
    if !c.queued.swap(true, Ordering::SeqCst) {
        // A stopped shard answers nothing; the caller sees `FAILED` soon enough.
        let _ = link.push(Cmd::Conn(Arc::clone(c)));
    }
}

/// The shard stopped for want of `bit`, which the caller just provided: nudge it.
fn provide(c: &Arc<ConnShared>, link: &ShardLink, bit: u32) {
    // Pairs with the shard's fence between setting `want` and re-checking the ring.
    fence(Ordering::SeqCst);
    if c.want.load(Ordering::Relaxed) & bit != 0
        && c.want.fetch_and(!bit, Ordering::SeqCst) & bit != 0
    {
        nudge(c, link);
    }
}

// ---- TcpStream ----

struct StreamInner {
    conn: Arc<ConnShared>,
    link: Arc<ShardLink>,
    /// Readers take turns (the receive ring has one consumer).
    rd: Mutex<()>,
    /// Writers take turns (the transmit ring has one producer).
    wr: Mutex<()>,
    read_timeout: AtomicU64,
    write_timeout: AtomicU64,
    nonblocking: AtomicBool,
    rd_shut: AtomicBool,
    wr_shut: AtomicBool,
}

impl Drop for StreamInner {
    /// Close: what was written is still sent, then a FIN (the shard finishes the close).
    fn drop(&mut self) {
        self.conn.req.fetch_or(REQ_CLOSE, Ordering::SeqCst);
        nudge(&self.conn, &self.link);
    }
}

/// A TCP connection, as [`std::net::TcpStream`].
///
/// Reads and writes copy through the connection's rings; `read` blocks until at least
/// one byte (or EOF, or an error), `write` until at least one byte fits; with
/// [`set_nonblocking`](Self::set_nonblocking) they return `WouldBlock` instead, and
/// with a timeout they return `WouldBlock` once it passes, as std does on Linux.
///
/// Dropping the last handle (see [`try_clone`](Self::try_clone)) closes the connection
/// after what was written is sent, as closing a kernel socket does.
///
/// # mio
/// `TcpStream` is a [`mio::event::Source`]. Its events are edge-triggered and carry no
/// direction: an event on its token means its readiness may have changed (data, room,
/// EOF, an error); read and write until they return `WouldBlock`, which re-arms it.
/// The first poll after registering reports it once.
pub struct TcpStream {
    inner: Arc<StreamInner>,
}

impl std::fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpStream")
            .field("local", &self.inner.conn.local.get())
            .field("peer", &self.inner.conn.remote)
            .field("shard", &self.inner.conn.shard)
            .finish()
    }
}

fn lock(m: &Mutex<()>) -> MutexGuard<'_, ()> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl TcpStream {
    fn from_conn(conn: Arc<ConnShared>, link: Arc<ShardLink>) -> TcpStream {
        TcpStream {
            inner: Arc::new(StreamInner {
                conn,
                link,
                rd: Mutex::new(()),
                wr: Mutex::new(()),
                read_timeout: AtomicU64::new(0),
                write_timeout: AtomicU64::new(0),
                nonblocking: AtomicBool::new(false),
                rd_shut: AtomicBool::new(false),
                wr_shut: AtomicBool::new(false),
            }),
        }
    }

    /// Open a connection to `addr` through the default runtime (see
    /// [`NetHandle::current`]), trying each resolved address in turn.
    pub fn connect<A: ToSocketAddrs>(addr: A) -> io::Result<TcpStream> {
        TcpStream::connect_on(&NetHandle::current()?, addr)
    }

    /// [`connect`](Self::connect) through `rt`.
    pub fn connect_on<A: ToSocketAddrs>(rt: &NetHandle, addr: A) -> io::Result<TcpStream> {
        each_addr(addr, |a| TcpStream::open(rt, a, None))
    }

    /// Open a connection, giving up after `timeout` (`TimedOut`), as std's.
    pub fn connect_timeout(addr: &SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        TcpStream::connect_timeout_on(&NetHandle::current()?, addr, timeout)
    }

    /// [`connect_timeout`](Self::connect_timeout) through `rt`.
    pub fn connect_timeout_on(
        rt: &NetHandle,
        addr: &SocketAddr,
        timeout: Duration,
    ) -> io::Result<TcpStream> {
        if timeout.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot set a 0 duration timeout",
            ));
        }
        each_addr(*addr, |a| TcpStream::open(rt, a, Some(timeout)))
    }

    fn open(
        rt: &NetHandle,
        remote: SocketAddrV4,
        timeout: Option<Duration>,
    ) -> io::Result<TcpStream> {
        let shared = &rt.shared;
        let link = Arc::clone(shared.pick_shard());
        let conn = Arc::new(ConnShared::new(&shared.config, link.id, remote));
        link.push(Cmd::Connect(Arc::clone(&conn)))?;
        // From here the stream owns the connection: dropping it (on failure) closes it.
        let stream = TcpStream::from_conn(Arc::clone(&conn), link);
        let done = conn.signal.wait_until(deadline(timeout), || {
            conn.state() & (CONNECTED | FAILED) != 0
        });
        let st = conn.state();
        if st & CONNECTED != 0 {
            Ok(stream)
        } else if st & FAILED != 0 {
            Err(conn.error())
        } else {
            debug_assert!(!done);
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "connection timed out",
            ))
        }
    }

    /// The address of the other end.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        Ok(SocketAddr::V4(self.inner.conn.remote))
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner
            .conn
            .local
            .get()
            .map(|&a| SocketAddr::V4(a))
            .ok_or_else(|| tcp_error(TcpError::InvalidState))
    }

    /// The shard that owns the connection.
    pub fn shard(&self) -> usize {
        self.inner.conn.shard
    }

    /// Shut down reading, writing or both. After `Write`, the peer reads EOF once it
    /// has what was written; after `Read`, reads return 0.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        let c = &self.inner.conn;
        let mut req = 0;
        if matches!(how, Shutdown::Read | Shutdown::Both) {
            self.inner.rd_shut.store(true, Ordering::Release);
            req |= REQ_SHUT_RD;
        }
        if matches!(how, Shutdown::Write | Shutdown::Both) {
            self.inner.wr_shut.store(true, Ordering::Release);
            req |= REQ_SHUT_WR;
        }
        c.req.fetch_or(req, Ordering::SeqCst);
        nudge(c, &self.inner.link);
        // Wake our own blocked readers: they now read 0.
        c.signal.wake();
        Ok(())
    }

    /// Another handle on the same connection (shared options, as a dup'ed socket).
    pub fn try_clone(&self) -> io::Result<TcpStream> {
        Ok(TcpStream {
            inner: Arc::clone(&self.inner),
        })
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

    /// Turn Nagle's algorithm off (true) or on.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        let c = &self.inner.conn;
        c.nodelay.store(nodelay, Ordering::Release);
        c.req.fetch_or(REQ_NODELAY, Ordering::SeqCst);
        nudge(c, &self.inner.link);
        Ok(())
    }

    pub fn nodelay(&self) -> io::Result<bool> {
        Ok(self.inner.conn.nodelay.load(Ordering::Acquire))
    }

    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.inner.nonblocking.store(nonblocking, Ordering::Release);
        Ok(())
    }

    /// The connection's error, if it failed (std's `SO_ERROR`; not cleared here).
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        let c = &self.inner.conn;
        Ok((c.state() & (FAILED | WR_FAILED) != 0).then(|| c.error()))
    }

    /// Read without consuming (waits like `read`).
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: `read_with` holds the reader lock: we are the ring's only consumer.
        self.read_with(buf, |c, b| unsafe { c.rx.peek(b) })
    }

    fn read_impl(&self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.read_with(buf, |c, b| {
            // SAFETY: `read_with` holds the reader lock: we are the ring's only consumer.
            unsafe { c.rx.pop(b) }
        })?;
        if n > 0 {
            provide(&self.inner.conn, &self.inner.link, WANT_RX_ROOM);
        }
        Ok(n)
    }

    /// The waiting discipline of `read` and `peek`, around `take` (the ring access).
    fn read_with(
        &self,
        buf: &mut [u8],
        mut take: impl FnMut(&ConnShared, &mut [u8]) -> usize,
    ) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let inner = &*self.inner;
        let c = &*inner.conn;
        let _g = lock(&inner.rd);
        // The state is read before the ring: the shard fills the ring before it sets
        // RX_EOF/FAILED, so seeing the flag means the last bytes are visible too.
        let mut attempt = |buf: &mut [u8]| -> Option<io::Result<usize>> {
            if inner.rd_shut.load(Ordering::Acquire) {
                return Some(Ok(0));
            }
            let st = c.state();
            let n = take(c, buf);
            if n > 0 {
                Some(Ok(n))
            } else if st & RX_EOF != 0 {
                Some(Ok(0))
            } else if st & FAILED != 0 {
                Some(Err(c.error()))
            } else {
                None
            }
        };
        let deadline = deadline(load_timeout(&inner.read_timeout));
        loop {
            if let Some(r) = attempt(buf) {
                return r;
            }
            if inner.nonblocking.load(Ordering::Acquire) {
                c.signal.rearm();
                return attempt(buf).unwrap_or_else(|| Err(io::ErrorKind::WouldBlock.into()));
            }
            let ready = c.signal.wait_until(deadline, || {
                !c.rx.is_empty()
                    || c.state() & (RX_EOF | FAILED) != 0
                    || inner.rd_shut.load(Ordering::Acquire)
            });
            if !ready {
                return Err(timed_out());
            }
        }
    }

    fn write_impl(&self, data: &[u8]) -> io::Result<usize> {
        if data.is_empty() {
            return Ok(0);
        }
        let inner = &*self.inner;
        let c = &*inner.conn;
        let _g = lock(&inner.wr);
        let attempt = || -> Option<io::Result<usize>> {
            if inner.wr_shut.load(Ordering::Acquire) {
                return Some(Err(io::Error::new(
                    io::ErrorKind::BrokenPipe,
                    "write after shutdown",
                )));
            }
            if c.state() & (FAILED | WR_FAILED) != 0 {
                return Some(Err(c.error()));
            }
            // SAFETY: we hold the writer lock: the only producer of the ring.
            let n = unsafe { c.tx.push(data) };
            (n > 0).then_some(Ok(n))
        };
        let deadline = deadline(load_timeout(&inner.write_timeout));
        let r = loop {
            if let Some(r) = attempt() {
                break r;
            }
            if inner.nonblocking.load(Ordering::Acquire) {
                c.signal.rearm();
                break attempt().unwrap_or_else(|| Err(io::ErrorKind::WouldBlock.into()));
            }
            let ready = c.signal.wait_until(deadline, || {
                !c.tx.is_full() || c.state() & (FAILED | WR_FAILED) != 0
            });
            if !ready {
                break Err(timed_out());
            }
        };
        if matches!(r, Ok(n) if n > 0) {
            provide(&inner.conn, &inner.link, WANT_TX);
        }
        r
    }

    /// Wait until everything written has been handed to the stack (std's `flush` is a
    /// no-op because the kernel already has the bytes; here they may still be in the
    /// ring). Honours the write timeout and nonblocking mode.
    fn flush_impl(&self) -> io::Result<()> {
        let inner = &*self.inner;
        let c = &*inner.conn;
        let done = || c.tx.is_empty() || c.state() & (FAILED | WR_FAILED) != 0;
        if done() {
            return Ok(());
        }
        if inner.nonblocking.load(Ordering::Acquire) {
            c.signal.rearm();
            return if done() {
                Ok(())
            } else {
                Err(io::ErrorKind::WouldBlock.into())
            };
        }
        if c.signal
            .wait_until(deadline(load_timeout(&inner.write_timeout)), done)
        {
            Ok(())
        } else {
            Err(timed_out())
        }
    }
}

impl Read for TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_impl(buf)
    }
}

impl Read for &TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_impl(buf)
    }
}

impl Write for TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_impl(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.flush_impl()
    }
}

impl Write for &TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_impl(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.flush_impl()
    }
}

impl mio::event::Source for TcpStream {
    fn register(&mut self, registry: &Registry, token: Token, _: Interest) -> io::Result<()> {
        self.inner.conn.signal.mio_register(registry, token)
    }
    fn reregister(&mut self, registry: &Registry, token: Token, _: Interest) -> io::Result<()> {
        self.inner.conn.signal.mio_register(registry, token)
    }
    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        self.inner.conn.signal.mio_deregister(registry)
    }
}

// ---- TcpListener ----

/// A connection a shard accepted, waiting for `accept`.
pub(crate) struct Accepted {
    pub conn: Arc<ConnShared>,
}

/// One shard's part of a listener.
pub(crate) struct ShardAccept {
    pub queue: ArrayQueue<Accepted>,
    /// The shard stopped accepting because the queue was full.
    pub want_room: AtomicBool,
    /// The shard's listener handle, once it listens.
    pub handle: OnceLock<TcpListenerHandle>,
}

/// A listener, as its user side and the shards share it.
pub(crate) struct ListenerShared {
    pub local: SocketAddrV4,
    pub backlog: usize,
    pub shards: Box<[ShardAccept]>,
    /// Shards that have not answered the `Listen` yet.
    pub pending: AtomicUsize,
    /// Why a shard could not listen (tcp code; 0: none).
    pub bind_error: AtomicU8,
    /// The runtime stopped.
    pub stopped: AtomicBool,
    pub signal: Signal,
}

impl ListenerShared {
    fn any_waiting(&self) -> bool {
        self.shards.iter().any(|s| !s.queue.is_empty())
    }
}

/// A listening socket, as [`std::net::TcpListener`]: it listens on every shard and
/// [`accept`](Self::accept) takes connections from any of them. A [`mio::event::Source`]
/// with the contract described at [`TcpStream`].
pub struct TcpListener {
    inner: Arc<ListenerInner>,
}

/// The user's side of a listener, shared by its clones.
struct ListenerInner {
    shared: Arc<ListenerShared>,
    net: Arc<NetShared>,
    next: AtomicUsize,
    nonblocking: AtomicBool,
}

impl std::fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpListener")
            .field("local", &self.inner.shared.local)
            .finish()
    }
}

/// Std's backlog.
const DEFAULT_BACKLOG: usize = 128;
/// Tries to find a port free on every shard for a bind to port 0.
const EPHEMERAL_TRIES: usize = 64;

impl TcpListener {
    /// Listen on `addr` (port 0: a free port) through the default runtime.
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<TcpListener> {
        TcpListener::bind_on(&NetHandle::current()?, addr)
    }

    /// [`bind`](Self::bind) through `rt`.
    pub fn bind_on<A: ToSocketAddrs>(rt: &NetHandle, addr: A) -> io::Result<TcpListener> {
        TcpListener::bind_with_backlog(rt, addr, DEFAULT_BACKLOG)
    }

    /// [`bind_on`](Self::bind_on) with this accept backlog per shard (at most
    /// [`NetConfig::max_backlog`](super::NetConfig::max_backlog)).
    pub fn bind_with_backlog<A: ToSocketAddrs>(
        rt: &NetHandle,
        addr: A,
        backlog: usize,
    ) -> io::Result<TcpListener> {
        each_addr(addr, |a| {
            if a.port() != 0 {
                return TcpListener::listen(rt, a, backlog);
            }
            let mut last = None;
            for _ in 0..EPHEMERAL_TRIES {
                let port = rt.shared.ephemeral_port();
                match TcpListener::listen(rt, SocketAddrV4::new(*a.ip(), port), backlog) {
                    Err(e) if e.kind() == io::ErrorKind::AddrInUse => last = Some(e),
                    r => return r,
                }
            }
            Err(last.unwrap_or_else(|| tcp_error(TcpError::NoPortsAvailable)))
        })
    }

    fn listen(rt: &NetHandle, local: SocketAddrV4, backlog: usize) -> io::Result<TcpListener> {
        let net = &rt.shared;
        let backlog = backlog.clamp(1, net.config.max_backlog.max(1));
        let n = net.links.len();
        let shared = Arc::new(ListenerShared {
            local,
            backlog,
            shards: (0..n)
                .map(|_| ShardAccept {
                    queue: ArrayQueue::new(backlog),
                    want_room: AtomicBool::new(false),
                    handle: OnceLock::new(),
                })
                .collect(),
            pending: AtomicUsize::new(n),
            bind_error: AtomicU8::new(0),
            stopped: AtomicBool::new(false),
            signal: Signal::default(),
        });
        let listener = TcpListener {
            inner: Arc::new(ListenerInner {
                shared: Arc::clone(&shared),
                net: Arc::clone(net),
                next: AtomicUsize::new(0),
                nonblocking: AtomicBool::new(false),
            }),
        };
        for (i, link) in net.links.iter().enumerate() {
            if let Err(e) = link.push(Cmd::Listen(Arc::clone(&shared))) {
                shared.pending.fetch_sub(n - i, Ordering::AcqRel);
                return Err(e);
            }
        }
        shared.signal.wait_until(None, || {
            shared.pending.load(Ordering::Acquire) == 0 || shared.stopped.load(Ordering::Acquire)
        });
        if shared.stopped.load(Ordering::Acquire) {
            return Err(super::stopped());
        }
        match shared.bind_error.load(Ordering::Acquire) {
            // Dropping `listener` closes what did listen.
            0 => Ok(listener),
            code => Err(code_error(code)),
        }
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(SocketAddr::V4(self.inner.shared.local))
    }

    /// A connection from the accept queues, waiting for one (unless nonblocking).
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let s = &*self.inner.shared;
        loop {
            if let Some(r) = self.try_accept() {
                return Ok(r);
            }
            if s.stopped.load(Ordering::Acquire) {
                return Err(super::stopped());
            }
            if self.inner.nonblocking.load(Ordering::Acquire) {
                s.signal.rearm();
                return self
                    .try_accept()
                    .ok_or_else(|| io::ErrorKind::WouldBlock.into());
            }
            s.signal.wait_until(None, || {
                s.any_waiting() || s.stopped.load(Ordering::Acquire)
            });
        }
    }

    fn try_accept(&self) -> Option<(TcpStream, SocketAddr)> {
        let n = self.inner.shared.shards.len();
        let start = self.inner.next.fetch_add(1, Ordering::Relaxed);
        for k in 0..n {
            let i = (start + k) % n;
            let sa = &self.inner.shared.shards[i];
            if let Some(a) = sa.queue.pop() {
                let link = &self.inner.net.links[i];
                // Pairs with the shard's fence after it set `want_room`.
                fence(Ordering::SeqCst);
                if sa.want_room.load(Ordering::Relaxed)
                    && sa.want_room.swap(false, Ordering::SeqCst)
                {
                    let _ = link.push(Cmd::AcceptMore(Arc::clone(&self.inner.shared)));
                }
                let remote = a.conn.remote;
                return Some((
                    TcpStream::from_conn(a.conn, Arc::clone(link)),
                    SocketAddr::V4(remote),
                ));
            }
        }
        None
    }

    /// An endless iterator of `accept`s.
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.inner.nonblocking.store(nonblocking, Ordering::Release);
        Ok(())
    }

    /// Another handle on the same listener.
    pub fn try_clone(&self) -> io::Result<TcpListener> {
        Ok(TcpListener {
            inner: Arc::clone(&self.inner),
        })
    }
}

impl Drop for ListenerInner {
    /// Stop listening on every shard; connections not yet accepted are closed.
    fn drop(&mut self) {
        for link in &self.net.links {
            let _ = link.push(Cmd::CloseListener(Arc::clone(&self.shared)));
        }
    }
}

impl mio::event::Source for TcpListener {
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

/// What [`TcpListener::incoming`] returns.
#[derive(Debug)]
pub struct Incoming<'a> {
    listener: &'a TcpListener,
}

impl Iterator for Incoming<'_> {
    type Item = io::Result<TcpStream>;
    fn next(&mut self) -> Option<io::Result<TcpStream>> {
        Some(self.listener.accept().map(|(s, _)| s))
    }
}
