//! smoltcp (the latest release): the same workloads over one smoltcp `Interface` on its
//! `Loopback` device, both ends' sockets in one `SocketSet`, polled by one thread.
//!
//! smoltcp is single-threaded (an interface and its sockets are one `&mut` world), so
//! it has no cross-core placement. Two things are made equal to rumpnet's conditions:
//! the device reports the MTU under test (the stock `Loopback` says 65,535), and
//! checksums follow rumpnet's in-memory link: skipped (as the stock `Loopback` does,
//! `ChecksumCapabilities::ignored`) when the link offloads them, computed and verified
//! by smoltcp when it does not. smoltcp has no TSO/GRO: that gap is real and is measured
//! as such. Its `Loopback` allocates a `Vec` per frame: that is smoltcp's own design,
//! and measured as such.
//!
//! smoltcp has no listener with an accept queue: a listening socket becomes the
//! connection. The server keeps a few sockets listening on the port; once one it
//! closed reaches TIME-WAIT (which smoltcp holds for 10 s on the socket itself) it is
//! aborted and listens again, which is how an application reuses smoltcp sockets.

use std::io;
use std::time::Instant as WallInstant;

use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::phy::{Device, DeviceCapabilities, Loopback, Medium};
use smoltcp::socket::tcp::{self, RecvError, SendError, State};
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, IpAddress, IpCidr};

use super::{sample, stall_limit, BenchError, Sample};
use crate::machine;
use crate::systems::rumpnet::{RR_BUF, STREAM_BUF};
use crate::workload::{Client, Kind, Server, Sockets, Spec};

const PORT: u16 = 5001;

/// smoltcp's `Loopback`, reporting the MTU under test and asking for checksums unless
/// `skip_checksums`.
#[derive(Debug)]
pub struct MtuLoopback {
    inner: Loopback,
    /// The largest IP packet.
    mtu: usize,
    /// Tell smoltcp to neither compute nor verify checksums (a loopback or NIC that
    /// offloads them, as rumpnet's link with offloads).
    skip_checksums: bool,
}

impl Device for MtuLoopback {
    type RxToken<'a> = <Loopback as Device>::RxToken<'a>;
    type TxToken<'a> = <Loopback as Device>::TxToken<'a>;

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        // smoltcp counts the Ethernet header in an Ethernet device's MTU.
        caps.max_transmission_unit = (self.mtu + 14).min(65535);
        if self.skip_checksums {
            caps.checksum = smoltcp::phy::ChecksumCapabilities::ignored();
        }
        caps
    }

    fn receive(&mut self, t: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        self.inner.receive(t)
    }

    fn transmit(&mut self, t: Instant) -> Option<Self::TxToken<'_>> {
        self.inner.transmit(t)
    }
}

/// One interface with both ends' sockets.
pub struct SmolNet {
    iface: Interface,
    dev: MtuLoopback,
    sockets: SocketSet<'static>,
    /// Server sockets and whether the server holds them (else they listen, or are
    /// closing and will listen again).
    servers: Vec<(SocketHandle, bool)>,
    /// Client sockets and whether the client holds them.
    clients: Vec<(SocketHandle, bool)>,
    next_port: u16,
    buf: usize,
    nodelay: bool,
    epoch: WallInstant,
}

impl std::fmt::Debug for SmolNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmolNet")
            .field("servers", &self.servers.len())
            .field("clients", &self.clients.len())
            .finish()
    }
}

fn smol_io(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("smoltcp: {e}"))
}

impl SmolNet {
    /// An interface at 127.0.0.1/8 over a loopback of `mtu`, with `listeners` sockets
    /// listening on the server port; smoltcp computes and verifies checksums.
    pub fn new(spec: &Spec, mtu: usize, listeners: usize, epoch: WallInstant) -> SmolNet {
        Self::with_checksums(spec, mtu, listeners, epoch, false)
    }

    /// [`SmolNet::new`], with checksums skipped when `skip_checksums`.
    pub fn with_checksums(
        spec: &Spec,
        mtu: usize,
        listeners: usize,
        epoch: WallInstant,
        skip_checksums: bool,
    ) -> SmolNet {
        let mut dev = MtuLoopback {
            inner: Loopback::new(Medium::Ethernet),
            mtu,
            skip_checksums,
        };
        let mut config = Config::new(EthernetAddress([0x02, 0, 0, 0, 0, 1]).into());
        config.random_seed = 0x5eed;
        let mut iface = Interface::new(config, &mut dev, Instant::from_micros(0));
        iface.update_ip_addrs(|a| {
            let _ = a.push(IpCidr::new(IpAddress::v4(127, 0, 0, 1), 8));
        });
        let buf = match spec.kind {
            Kind::Stream => STREAM_BUF,
            Kind::Rr | Kind::Crr => RR_BUF,
        };
        let mut net = SmolNet {
            iface,
            dev,
            sockets: SocketSet::new(Vec::new()),
            servers: Vec::new(),
            clients: Vec::new(),
            next_port: 49152,
            buf,
            nodelay: spec.nodelay(),
            epoch,
        };
        for _ in 0..listeners.max(1) {
            let mut s = net.new_socket();
            // A fresh socket on a free port: cannot fail.
            let _ = s.listen(PORT);
            let h = net.sockets.add(s);
            net.servers.push((h, false));
        }
        net
    }

    fn new_socket(&self) -> tcp::Socket<'static> {
        let mut s = tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0u8; self.buf]),
            tcp::SocketBuffer::new(vec![0u8; self.buf]),
        );
        s.set_nagle_enabled(!self.nodelay);
        s
    }

    /// Run the interface: everything received is processed, everything queued sent.
    pub fn poll(&mut self, now: WallInstant) {
        let t = Instant::from_micros(now.saturating_duration_since(self.epoch).as_micros() as i64);
        self.iface.poll(t, &mut self.dev, &mut self.sockets);
    }

    fn socket(&mut self, h: SocketHandle) -> &mut tcp::Socket<'static> {
        self.sockets.get_mut::<tcp::Socket>(h)
    }
}

impl Sockets for SmolNet {
    type Conn = SocketHandle;

    fn connect(&mut self) -> io::Result<SocketHandle> {
        let free = self.clients.iter().position(|&(h, held)| {
            !held && self.sockets.get::<tcp::Socket>(h).state() == State::Closed
        });
        let i = match free {
            Some(i) => i,
            None => {
                let s = self.new_socket();
                let h = self.sockets.add(s);
                self.clients.push((h, false));
                self.clients.len() - 1
            }
        };
        let h = self.clients[i].0;
        self.clients[i].1 = true;
        let port = self.next_port;
        self.next_port = if port == u16::MAX { 49152 } else { port + 1 };
        let cx = self.iface.context();
        self.sockets
            .get_mut::<tcp::Socket>(h)
            .connect(cx, (IpAddress::v4(127, 0, 0, 1), PORT), port)
            .map_err(smol_io)?;
        Ok(h)
    }

    fn accept(&mut self) -> io::Result<Option<SocketHandle>> {
        for i in 0..self.servers.len() {
            let (h, held) = self.servers[i];
            if held {
                continue;
            }
            let s = self.sockets.get_mut::<tcp::Socket>(h);
            match s.state() {
                State::Established | State::CloseWait => {
                    self.servers[i].1 = true;
                    return Ok(Some(h));
                }
                State::TimeWait | State::Closed => {
                    s.abort();
                    s.listen(PORT).map_err(smol_io)?;
                }
                _ => {}
            }
        }
        Ok(None)
    }

    fn send(&mut self, c: SocketHandle, data: &[u8]) -> io::Result<usize> {
        let s = self.socket(c);
        match s.send_slice(data) {
            Ok(n) => Ok(n),
            Err(SendError::InvalidState)
                if matches!(s.state(), State::SynSent | State::SynReceived) =>
            {
                Ok(0)
            }
            Err(e) => Err(smol_io(format!("send in {}: {e}", s.state()))),
        }
    }

    fn recv(&mut self, c: SocketHandle, buf: &mut [u8]) -> io::Result<Option<usize>> {
        let s = self.socket(c);
        match s.recv_slice(buf) {
            Ok(0) => Ok(None),
            Ok(n) => Ok(Some(n)),
            Err(RecvError::Finished) => Ok(Some(0)),
            Err(RecvError::InvalidState)
                if matches!(s.state(), State::SynSent | State::SynReceived) =>
            {
                Ok(None)
            }
            Err(e) => Err(smol_io(format!("recv in {}: {e}", s.state()))),
        }
    }

    fn close(&mut self, c: SocketHandle) {
        self.socket(c).close();
        for entry in self.servers.iter_mut().chain(self.clients.iter_mut()) {
            if entry.0 == c {
                entry.1 = false;
            }
        }
    }
}

/// Run a timed workload once (same core: smoltcp has no other placement), smoltcp
/// computing and verifying checksums.
pub fn run(spec: &Spec, mtu: usize) -> Result<Sample, BenchError> {
    run_with(spec, mtu, false)
}

/// [`run`], with checksums skipped when `skip_checksums` (what rumpnet's link with
/// offloads is compared against).
pub fn run_with(spec: &Spec, mtu: usize, skip_checksums: bool) -> Result<Sample, BenchError> {
    let spec = *spec;
    std::thread::scope(|s| {
        s.spawn(move || {
            machine::pin_to_core(0);
            run_pinned(&spec, mtu, skip_checksums)
        })
        .join()
        .unwrap_or_else(|_| Err(BenchError::Setup("the smoltcp thread panicked".into())))
    })
}

fn run_pinned(spec: &Spec, mtu: usize, skip_checksums: bool) -> Result<Sample, BenchError> {
    let epoch = WallInstant::now();
    let cpu0 = machine::process_cpu_time();
    let listeners = match spec.kind {
        Kind::Crr => 4,
        Kind::Stream | Kind::Rr => spec.conns,
    };
    let mut net = SmolNet::with_checksums(spec, mtu, listeners, epoch, skip_checksums);
    let mut client = Client::new(*spec, epoch);
    let mut server = Server::new(*spec, epoch);
    let limit = epoch + spec.warmup() + spec.duration + stall_limit(spec);
    loop {
        // As rumpnet's same-core loop: the client's clock read of the last turn, if it
        // made one, else a fresh one.
        let now = client.take_clock().unwrap_or_else(WallInstant::now);
        net.poll(now);
        client.step(&mut net, now)?;
        server.step(&mut net, now)?;
        if client.done() {
            server.finish();
            if server.done() {
                break;
            }
        }
        if now > limit {
            return Err(BenchError::Stalled("smoltcp"));
        }
    }
    let wall = epoch.elapsed();
    let cpu = machine::process_cpu_time().saturating_sub(cpu0);
    sample(spec, client.outcome(), &server.outcome(), cpu, wall)
}

/// Most idle connections smoltcp is asked to hold: every `Interface::poll` visits every
/// socket, so opening N connections costs O(N²) socket visits; at 20,000 that is
/// already tens of seconds on a small machine (10,000: a few).
pub const CONNS_MAX: usize = 10_000;

/// `conns` on smoltcp: open `count` idle connections over the loopback (both ends in
/// one `SocketSet`, 512-byte buffers each way as rumpnet's), measure the resident set
/// before and after, then send one byte on every one and check it arrives.
///
/// smoltcp has no accept queue: each server end is a socket put to listen beforehand,
/// which the SYN turns into the connection. Its buffers are allocated when the socket
/// is made, so (unlike rumpnet's) they count in the figure.
pub fn conns(count: usize) -> Result<super::rumpnet::ConnsResult, BenchError> {
    let count = count.clamp(1, CONNS_MAX);
    std::thread::scope(|s| {
        s.spawn(move || {
            machine::pin_to_core(0);
            conns_inner(count)
        })
        .join()
        .unwrap_or_else(|_| {
            Err(BenchError::Setup(
                "the smoltcp conns thread panicked".into(),
            ))
        })
    })
}

fn conns_inner(count: usize) -> Result<super::rumpnet::ConnsResult, BenchError> {
    use super::rumpnet::{ConnsResult, CONNS_BUF};
    // Server ports (from PORT up), each taking up to this many client ports (distinct
    // 4-tuples); client ports from 10,000 up never meet a server port.
    const PER_PORT: usize = 50_000;
    let epoch = WallInstant::now();
    let spec = Spec {
        kind: Kind::Rr,
        conns: 1,
        msg: 1,
        duration: std::time::Duration::from_secs(1),
    };
    machine::release_free_memory();
    let rss0 = machine::rss_bytes();
    let mut net = SmolNet::new(&spec, 1500, 0, epoch);
    // `new` made one listener on PORT; the buffers of every socket here are CONNS_BUF.
    net.buf = CONNS_BUF;
    let first = net.servers.remove(0).0;
    net.sockets.remove(first);
    let mut servers = Vec::with_capacity(count);
    let mut clients = Vec::with_capacity(count);
    for i in 0..count {
        let port = PORT + (i / PER_PORT) as u16;
        let mut s = net.new_socket();
        s.listen(port)
            .map_err(|e| BenchError::Setup(format!("smoltcp listen: {e}")))?;
        servers.push(net.sockets.add(s));
    }
    let limit = epoch + std::time::Duration::from_secs(120);
    // Connect in windows, as rumpnet's `conns` does: a SYN burst larger than the
    // loopback's queue would only be dropped and retried.
    const WINDOW: usize = 128;
    let established = |net: &SmolNet, h: SocketHandle| {
        net.sockets.get::<tcp::Socket>(h).state() == State::Established
    };
    let mut done = 0usize;
    while done < count {
        while clients.len() < count && clients.len() < done + WINDOW {
            let i = clients.len();
            let s = net.new_socket();
            let h = net.sockets.add(s);
            let port = PORT + (i / PER_PORT) as u16;
            let local = 10_000 + (i % PER_PORT) as u16;
            let cx = net.iface.context();
            net.sockets
                .get_mut::<tcp::Socket>(h)
                .connect(cx, (IpAddress::v4(127, 0, 0, 1), port), local)
                .map_err(|e| BenchError::Setup(format!("smoltcp connect: {e}")))?;
            clients.push(h);
        }
        loop {
            let now = WallInstant::now();
            net.poll(now);
            let upto = clients.len();
            while done < upto && established(&net, clients[done]) {
                done += 1;
            }
            if done == upto {
                break;
            }
            if now > limit {
                return Err(BenchError::Stalled("smoltcp conns: opening"));
            }
        }
    }
    // The server ends too: a SYN-ACK's ACK may still be on its way.
    loop {
        net.poll(WallInstant::now());
        if servers.iter().all(|&h| established(&net, h)) {
            break;
        }
        if WallInstant::now() > limit {
            return Err(BenchError::Stalled("smoltcp conns: server ends"));
        }
    }
    let open = epoch.elapsed();
    let rss1 = machine::rss_bytes();
    // Every connection still answers: one byte from the client, echoed by the server.
    for &h in &clients {
        let _ = net.sockets.get_mut::<tcp::Socket>(h).send_slice(b"x");
    }
    let mut answered = 0usize;
    // 0: nothing yet, 1: the server got it and echoed it, 2: the client got it back.
    let mut stage = vec![0u8; count];
    let deadline = WallInstant::now() + std::time::Duration::from_secs(60);
    while answered < count && WallInstant::now() < deadline {
        net.poll(WallInstant::now());
        for i in 0..count {
            let mut b = [0u8; 1];
            if stage[i] == 0 {
                let s = net.sockets.get_mut::<tcp::Socket>(servers[i]);
                if let Ok(1) = s.recv_slice(&mut b) {
                    if b[0] == b'x' && s.send_slice(b"x") == Ok(1) {
                        stage[i] = 1;
                    }
                }
            } else if stage[i] == 1 {
                let c = net.sockets.get_mut::<tcp::Socket>(clients[i]);
                if let Ok(1) = c.recv_slice(&mut b) {
                    if b[0] == b'x' {
                        stage[i] = 2;
                        answered += 1;
                    }
                }
            }
        }
    }
    Ok(ConnsResult {
        count,
        bytes_per_conn: rss1.saturating_sub(rss0) as f64 / count as f64,
        open,
        answered,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn idle_connections_answer() {
        let r = conns(300).unwrap();
        assert_eq!((r.count, r.answered), (300, 300));
        // The RSS delta is a measurement, not a property: in a test process whose other
        // threads just freed memory the allocator reuses, it can even be 0.
    }

    #[test]
    fn every_workload_runs() {
        for (kind, conns, msg) in [
            (Kind::Stream, 1, 65536),
            (Kind::Stream, 2, 65536),
            (Kind::Rr, 1, 64),
            (Kind::Rr, 3, 64),
            (Kind::Crr, 1, 64),
        ] {
            let spec = Spec {
                kind,
                conns,
                msg,
                duration: Duration::from_millis(100),
            };
            let s = run(&spec, 1500).unwrap_or_else(|e| panic!("{kind:?}/{conns}: {e}"));
            assert!(s.value > 0.0, "{kind:?}/{conns}: {s:?}");
            assert!(s.checked > 0);
        }
    }
}
