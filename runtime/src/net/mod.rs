//! `std::net` over the shards: [`TcpListener`], [`TcpStream`] and [`UdpSocket`] with
//! std's names, signatures and error kinds, usable from any thread.
//!
//! Porting a `std::net` program means changing its imports and starting a runtime:
//!
//! ```no_run
//! use std::io::{Read, Write};
//! use rumpnet_runtime::net::{NetConfig, NetRuntime, TcpStream};
//! # fn run(config: rumpnet_runtime::RuntimeConfig,
//! #        queues: Vec<rumpnet_runtime::Queue<rumpnet_stack::link::LinkEnd>>)
//! #        -> std::io::Result<()> {
//! let rt = NetRuntime::start(config, NetConfig::default(), queues).expect("runtime");
//! rt.install_default();
//! let mut s = TcpStream::connect("10.0.0.1:7")?;
//! s.write_all(b"hello")?;
//! let mut buf = [0u8; 5];
//! s.read_exact(&mut buf)?;
//! # Ok(()) }
//! ```
//!
//! How it works: every socket belongs to one shard, which alone touches its stack
//! state. A connection's bytes cross between the user's thread and the shard through
//! two bounded lock-free single-producer single-consumer byte rings; requests that are
//! not bytes (connect, listen, close, shutdown, options) go on the shard's bounded
//! command queue, followed by a [`Notifier::notify`](crate::ring::Notifier::notify) that
//! wakes the shard only if it sleeps. The shard moves bytes between the stack and the
//! rings in its loop (stack → receive ring when readable, transmit ring → stack when
//! writable) and asks for a nudge, through a flag, only when it stopped because a ring
//! was empty or full; so a stream being read or written steadily costs no command and
//! no system call per call. A user thread that has to wait sleeps on the socket's
//! [`Signal`](signal::Signal), woken by the shard with the same announce-then-recheck
//! discipline as the shard's own sleep, so no wake-up is lost.
//!
//! Listeners listen on every shard (software RSS spreads new connections over them),
//! each shard puts what it accepts on its own bounded queue, and `accept` takes from
//! any. Active opens go to the shards in turn; the shard picks a source port whose RSS
//! hash comes back to it. UDP sockets are bound on every shard too (a datagram arrives
//! on the shard its 4-tuple hashes to) and send through one.
//!
//! Everything is bounded: a full ring, accept queue or datagram queue pushes back
//! (the sender blocks, or gets `WouldBlock` in nonblocking mode) instead of growing.
//!
//! For `mio` users every socket implements [`mio::event::Source`] (see
//! [`TcpStream`]'s documentation for the edge-triggered contract).

mod app;
mod bytes;
mod signal;
mod tcp;
mod udp;

use std::cell::RefCell;
use std::io;
use std::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use crossbeam_queue::ArrayQueue;
use rumpnet_stack::device::{Device, HeapFrame};
use rumpnet_stack::tcp::TcpError;
use rumpnet_stack::udp::UdpError;

use crate::ring::Notifier;
use crate::{Queue, Runtime, RuntimeConfig, RuntimeError, RuntimeStats};

pub use tcp::{Incoming, TcpListener, TcpStream};
pub use udp::UdpSocket;

/// std's address types, so that a port of a `std::net` program changes one path.
pub use std::net::{
    AddrParseError, IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, SocketAddrV4, SocketAddrV6,
    ToSocketAddrs,
};

pub use app::NetApp;

/// Sizes of the per-socket rings and queues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetConfig {
    /// Bytes of each connection's receive ring (shard → user).
    pub rx_ring: usize,
    /// Bytes of each connection's transmit ring (user → shard).
    pub tx_ring: usize,
    /// Commands each shard's queue holds; a full queue makes the caller wait.
    pub commands: usize,
    /// Datagrams each UDP socket queues per shard for receive, and in all for send.
    pub udp_queue: usize,
    /// Largest listener backlog (std's `bind` asks for 128).
    pub max_backlog: usize,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            rx_ring: 64 * 1024,
            tx_ring: 64 * 1024,
            commands: 4096,
            udp_queue: 256,
            max_backlog: 1024,
        }
    }
}

/// A request from a user thread to a shard.
pub(crate) enum Cmd {
    /// A connection's requests or rings need the shard (see `tcp::ConnShared`).
    Conn(Arc<tcp::ConnShared>),
    /// Open this connection.
    Connect(Arc<tcp::ConnShared>),
    /// Listen on this shard too.
    Listen(Arc<tcp::ListenerShared>),
    /// The accept queue has room again.
    AcceptMore(Arc<tcp::ListenerShared>),
    /// Stop listening; close what was accepted but not taken.
    CloseListener(Arc<tcp::ListenerShared>),
    /// Bind this UDP socket on this shard too.
    UdpBind(Arc<udp::UdpShared>),
    /// Close this UDP socket.
    UdpClose(Arc<udp::UdpShared>),
}

/// What user threads share with one shard.
pub(crate) struct ShardLink {
    pub id: usize,
    pub cmds: ArrayQueue<Cmd>,
    /// Set once the runtime started.
    pub notifier: OnceLock<Arc<Notifier>>,
    /// The shard stopped serving (runtime shutdown).
    pub stopped: AtomicBool,
    /// UDP sockets whose sends this shard carries: checked before it sleeps.
    pub udp_tx_pending: AtomicUsize,
    pub config: NetConfig,
}

impl std::fmt::Debug for ShardLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardLink")
            .field("id", &self.id)
            .field("cmds", &self.cmds.len())
            .field("stopped", &self.stopped.load(Ordering::Relaxed))
            .finish()
    }
}

impl ShardLink {
    pub fn notify(&self) {
        if let Some(n) = self.notifier.get() {
            n.notify();
        }
    }

    fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }

    /// Queue `cmd` and wake the shard. A full queue is backpressure: wait for room.
    /// Fails once the shard stopped (then nobody would ever answer).
    pub fn push(&self, cmd: Cmd) -> io::Result<()> {
        if self.is_stopped() {
            return Err(stopped());
        }
        let mut cmd = cmd;
        let mut tries = 0u32;
        loop {
            match self.cmds.push(cmd) {
                Ok(()) => break,
                Err(c) => {
                    cmd = c;
                    self.notify();
                    if self.is_stopped() {
                        return Err(stopped());
                    }
                    tries += 1;
                    if tries < 64 {
                        std::thread::yield_now();
                    } else {
                        std::thread::sleep(Duration::from_micros(50));
                    }
                }
            }
        }
        self.notify();
        // Pairs with the shard's store of `stopped` before it drains the queue: either
        // it sees this command, or we see that it stopped.
        fence(Ordering::SeqCst);
        if self.is_stopped() {
            return Err(stopped());
        }
        Ok(())
    }
}

/// What every socket of a runtime shares: the way to its shards.
pub(crate) struct NetShared {
    pub links: Vec<Arc<ShardLink>>,
    next_shard: AtomicUsize,
    next_port: AtomicU32,
    pub config: NetConfig,
}

impl NetShared {
    /// The shard for the next active open (round robin).
    pub fn pick_shard(&self) -> &Arc<ShardLink> {
        let i = self.next_shard.fetch_add(1, Ordering::Relaxed) % self.links.len();
        &self.links[i]
    }

    /// A port for a listener or UDP socket bound to port 0: the same on every shard,
    /// from below the stack's ephemeral range (which its active opens use).
    pub fn ephemeral_port(&self) -> u16 {
        const LO: u32 = 32768;
        const SPAN: u32 = 49152 - 32768;
        (LO + self.next_port.fetch_add(1, Ordering::Relaxed) % SPAN) as u16
    }
}

/// A handle on a running [`NetRuntime`]: what sockets are opened on. Cheap to clone,
/// `Send + Sync`.
#[derive(Clone)]
pub struct NetHandle {
    pub(crate) shared: Arc<NetShared>,
}

impl std::fmt::Debug for NetHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetHandle")
            .field("shards", &self.shared.links.len())
            .finish()
    }
}

static DEFAULT: RwLock<Option<NetHandle>> = RwLock::new(None);

thread_local! {
    static THREAD_DEFAULT: RefCell<Vec<NetHandle>> = const { RefCell::new(Vec::new()) };
}

impl NetHandle {
    /// Make this the runtime that `TcpStream::connect`, `TcpListener::bind` and
    /// `UdpSocket::bind` use in every thread that has not [`enter`](Self::enter)ed
    /// another (replacing the previous default).
    pub fn install_default(&self) {
        let mut g = DEFAULT.write().unwrap_or_else(|e| e.into_inner());
        *g = Some(self.clone());
    }

    /// Remove the process default (sockets already open keep working).
    pub fn uninstall_default() {
        let mut g = DEFAULT.write().unwrap_or_else(|e| e.into_inner());
        *g = None;
    }

    /// Make this the runtime of the calling thread until the guard is dropped (over
    /// the process default): how one process talks through two runtimes.
    pub fn enter(&self) -> EnterGuard {
        THREAD_DEFAULT.with(|t| t.borrow_mut().push(self.clone()));
        EnterGuard {
            _not_send: std::marker::PhantomData,
        }
    }

    /// The runtime the std-style constructors use in this thread.
    pub fn current() -> io::Result<NetHandle> {
        if let Some(h) = THREAD_DEFAULT.with(|t| t.borrow().last().cloned()) {
            return Ok(h);
        }
        DEFAULT
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    "no rumpnet runtime: call NetRuntime::install_default or NetHandle::enter",
                )
            })
    }

    /// Number of shards.
    pub fn shards(&self) -> usize {
        self.shared.links.len()
    }
}

/// Undoes [`NetHandle::enter`] when dropped.
#[derive(Debug)]
pub struct EnterGuard {
    _not_send: std::marker::PhantomData<*const ()>,
}

impl Drop for EnterGuard {
    fn drop(&mut self) {
        THREAD_DEFAULT.with(|t| {
            t.borrow_mut().pop();
        });
    }
}

/// A runtime whose shards serve the std-like sockets of this module. Dropping it (or
/// [`shutdown`](Self::shutdown)) stops the shards: they close their connections and
/// drain, and open sockets then fail with `ConnectionAborted`.
pub struct NetRuntime {
    rt: Option<Runtime<NetApp>>,
    handle: NetHandle,
}

impl std::fmt::Debug for NetRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetRuntime")
            .field("runtime", &self.rt)
            .finish()
    }
}

impl NetRuntime {
    /// Start `config.shards` shards over `queues` (as [`Runtime::start`]) serving
    /// sockets sized by `net`.
    pub fn start<D>(
        config: RuntimeConfig,
        net: NetConfig,
        queues: Vec<Queue<D>>,
    ) -> Result<NetRuntime, RuntimeError>
    where
        D: Device<Frame = HeapFrame> + Send + 'static,
    {
        let links: Vec<Arc<ShardLink>> = (0..config.shards)
            .map(|id| {
                Arc::new(ShardLink {
                    id,
                    cmds: ArrayQueue::new(net.commands.max(16)),
                    notifier: OnceLock::new(),
                    stopped: AtomicBool::new(false),
                    udp_tx_pending: AtomicUsize::new(0),
                    config: net,
                })
            })
            .collect();
        let for_apps = links.clone();
        let rt = Runtime::start(config, queues, move |i| {
            NetApp::new(Arc::clone(&for_apps[i]))
        })?;
        for (i, l) in links.iter().enumerate() {
            if let Some(n) = rt.shard_waker(i) {
                let _ = l.notifier.set(n);
            }
        }
        Ok(NetRuntime {
            rt: Some(rt),
            handle: NetHandle {
                shared: Arc::new(NetShared {
                    links,
                    next_shard: AtomicUsize::new(0),
                    next_port: AtomicU32::new(std::process::id()),
                    config: net,
                }),
            },
        })
    }

    /// The handle sockets are opened on.
    pub fn handle(&self) -> &NetHandle {
        &self.handle
    }

    /// The underlying runtime (placement, RSS map).
    pub fn runtime(&self) -> Option<&Runtime<NetApp>> {
        self.rt.as_ref()
    }

    /// The shards' counters.
    pub fn stats(&self) -> Option<RuntimeStats> {
        self.rt.as_ref().map(|r| r.stats())
    }

    /// Stop the shards (they close and drain their connections) and wait for them.
    pub fn shutdown(mut self) -> Result<RuntimeStats, RuntimeError> {
        match self.rt.take() {
            Some(rt) => rt.shutdown().map(|r| r.stats),
            None => Ok(RuntimeStats {
                shards: Vec::new(),
                io: Vec::new(),
            }),
        }
    }

    /// Ask the shards to stop and return at once; [`shutdown`](Self::shutdown) or drop
    /// waits. Until they stop, the runtime keeps answering the network (a peer that
    /// must see the FINs needs it to).
    pub fn request_stop(&self) {
        if let Some(rt) = &self.rt {
            rt.request_stop();
        }
    }

    /// Every shard has exited.
    pub fn is_finished(&self) -> bool {
        self.rt.as_ref().is_none_or(|r| r.is_finished())
    }
}

impl std::ops::Deref for NetRuntime {
    type Target = NetHandle;
    fn deref(&self) -> &NetHandle {
        &self.handle
    }
}

impl Drop for NetRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            let _ = rt.shutdown();
        }
    }
}

// ---- errors ----

/// The error of a socket whose shard stopped.
pub(crate) fn stopped() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "the rumpnet runtime stopped",
    )
}

/// The `io::ErrorKind` std reports for the same condition on Linux.
pub(crate) fn tcp_error(e: TcpError) -> io::Error {
    use io::ErrorKind as K;
    let kind = match e {
        TcpError::InvalidHandle | TcpError::InvalidState => K::NotConnected,
        TcpError::AddrInUse => K::AddrInUse,
        TcpError::AddrNotAvailable | TcpError::NoPortsAvailable => K::AddrNotAvailable,
        TcpError::TooManyConnections => K::OutOfMemory,
        TcpError::WouldBlock => K::WouldBlock,
        TcpError::NoRoute => K::HostUnreachable,
        TcpError::Unaddressable => K::InvalidInput,
        TcpError::ConnectionRefused => K::ConnectionRefused,
        TcpError::ConnectionReset => K::ConnectionReset,
        TcpError::TimedOut => K::TimedOut,
    };
    io::Error::new(kind, e)
}

pub(crate) fn udp_error(e: UdpError) -> io::Error {
    use io::ErrorKind as K;
    let kind = match e {
        UdpError::InvalidHandle | UdpError::NotConnected => K::NotConnected,
        UdpError::AddrInUse => K::AddrInUse,
        UdpError::AddrNotAvailable | UdpError::NoPortsAvailable => K::AddrNotAvailable,
        UdpError::TooManySockets => K::OutOfMemory,
        UdpError::WouldBlock => K::WouldBlock,
        UdpError::TooLarge => K::InvalidInput,
        UdpError::Unaddressable => K::InvalidInput,
        UdpError::NoRoute => K::HostUnreachable,
        UdpError::ConnectionRefused => K::ConnectionRefused,
    };
    io::Error::new(kind, e)
}

/// A TCP error kept in an atomic: its index + 1 (0: none); `STOPPED_CODE`: the runtime
/// stopped.
pub(crate) const STOPPED_CODE: u8 = 255;

const TCP_ERRORS: [TcpError; 12] = [
    TcpError::InvalidHandle,
    TcpError::AddrInUse,
    TcpError::AddrNotAvailable,
    TcpError::NoPortsAvailable,
    TcpError::TooManyConnections,
    TcpError::WouldBlock,
    TcpError::NoRoute,
    TcpError::Unaddressable,
    TcpError::InvalidState,
    TcpError::ConnectionRefused,
    TcpError::ConnectionReset,
    TcpError::TimedOut,
];

pub(crate) fn tcp_code(e: TcpError) -> u8 {
    TCP_ERRORS
        .iter()
        .position(|&x| x == e)
        .map_or(1, |i| i as u8 + 1)
}

pub(crate) fn code_error(code: u8) -> io::Error {
    match code {
        STOPPED_CODE => stopped(),
        0 => io::Error::other("no error recorded"),
        c => TCP_ERRORS
            .get(c as usize - 1)
            .map_or_else(|| io::Error::other("unknown error"), |&e| tcp_error(e)),
    }
}

/// Resolve `addr` and call `f` with each IPv4 address in turn until one succeeds, as
/// std does; IPv6 addresses are skipped (the stack is IPv4 only).
pub(crate) fn each_addr<A: ToSocketAddrs, T>(
    addr: A,
    mut f: impl FnMut(SocketAddrV4) -> io::Result<T>,
) -> io::Result<T> {
    let mut last = None;
    for a in addr.to_socket_addrs()? {
        match a {
            SocketAddr::V4(v4) => match f(v4) {
                Ok(t) => return Ok(t),
                Err(e) => last = Some(e),
            },
            SocketAddr::V6(_) => {
                last.get_or_insert_with(|| {
                    io::Error::new(io::ErrorKind::Unsupported, "rumpnet is IPv4 only")
                });
            }
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "could not resolve to any addresses",
        )
    }))
}

/// A timeout kept in an atomic as nanoseconds (0: none), refusing zero as std does.
pub(crate) fn store_timeout(
    slot: &std::sync::atomic::AtomicU64,
    d: Option<Duration>,
) -> io::Result<()> {
    let v = match d {
        None => 0,
        Some(d) if d.is_zero() => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot set a 0 duration timeout",
            ))
        }
        Some(d) => u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1),
    };
    slot.store(v, Ordering::Relaxed);
    Ok(())
}

pub(crate) fn load_timeout(slot: &std::sync::atomic::AtomicU64) -> Option<Duration> {
    match slot.load(Ordering::Relaxed) {
        0 => None,
        n => Some(Duration::from_nanos(n)),
    }
}

/// The deadline of an operation with this timeout, starting now.
pub(crate) fn deadline(t: Option<Duration>) -> Option<std::time::Instant> {
    t.and_then(|d| std::time::Instant::now().checked_add(d))
}

/// What std returns when a blocking call's timeout passed (EAGAIN on Linux).
pub(crate) fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::WouldBlock, "operation timed out")
}
