//! The stack: one instance of the protocol stack (one shard), driven by `poll`.
//!
//! A `Stack` owns its interfaces, routes, reassembly buffers, sockets and counters.
//! The host calls [`Stack::poll`] with the current time and the [`Port`]s of its
//! interfaces (index `i` of the slice is interface `i`); the stack receives one burst
//! per port, processes it whole, runs its timers, sends what its sockets queued, and
//! hands each device one transmit burst. [`Stack::poll_at`] says when timers next need
//! a poll if no frame arrives before.

use alloc::vec::Vec;
use core::fmt;
use core::net::SocketAddrV4;

use crate::device::Device;
use crate::iface::fragment::{Reassembler, ReassemblyConfig};
use crate::iface::icmp::{EchoReply, IcmpError, IcmpHandle, IcmpTable, TokenBucket};
use crate::iface::neighbor::NeighborConfig;
use crate::iface::route::{PathTemplate, Route, RouteError, RouteMemo, RouteTable};
use crate::iface::{Interface, InterfaceConfig, Port, PortLimits, MAX_ADDRS};
use crate::rand::Rand;
use crate::stats::{DropReason, Stats};
use crate::tcp::output::OutSegment;
use crate::tcp::{TcpConfig, TcpTable};
use crate::time::Instant;
use crate::udp::{UdpConfig, UdpError, UdpHandle, UdpSocketOptions, UdpTable};
use crate::wire::{EthernetAddress, Ipv4Addr, Ipv4Cidr};

/// Settings of a stack.
#[derive(Debug, Clone, PartialEq)]
pub struct StackConfig {
    /// Forward IPv4 packets between interfaces (a router); off for a host.
    pub ip_forward: bool,
    /// TTL of packets the stack originates.
    pub default_ttl: u8,
    /// Neighbour cache limits and timers (per interface).
    pub neighbor: NeighborConfig,
    /// Reassembly limits.
    pub reassembly: ReassemblyConfig,
    /// ICMP errors sent per second at most.
    pub icmp_error_rate: u32,
    /// ICMP errors that may be sent back to back.
    pub icmp_error_burst: u32,
    /// Most interfaces.
    pub max_interfaces: usize,
    /// Most routes (connected ones included).
    pub max_routes: usize,
    /// Frames kept per port when the device does not take them; beyond, the oldest are
    /// dropped and counted.
    pub tx_backlog: usize,
    /// UDP table limits and default queue sizes.
    pub udp: UdpConfig,
    /// Most ICMP echo sockets.
    pub max_icmp_sockets: usize,
    /// TCP limits and protocol settings.
    pub tcp: TcpConfig,
}

impl Default for StackConfig {
    fn default() -> Self {
        StackConfig {
            ip_forward: false,
            default_ttl: 64,
            neighbor: NeighborConfig::default(),
            reassembly: ReassemblyConfig::default(),
            icmp_error_rate: 1000,
            icmp_error_burst: 50,
            max_interfaces: 8,
            max_routes: 256,
            tx_backlog: 1024,
            udp: UdpConfig::default(),
            max_icmp_sockets: 64,
            tcp: TcpConfig::default(),
        }
    }
}

/// Why an interface could not be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigError {
    /// The stack has its maximum number of interfaces.
    TooManyInterfaces,
    /// The interface has no address, or more than [`MAX_ADDRS`].
    BadAddressCount,
    /// The MAC address is not a unicast address.
    BadMac,
    /// An address is unusable as a host address (unspecified, multicast, broadcast).
    BadAddress(Ipv4Addr),
    /// The VLAN id is outside 1..=4094.
    BadVlan(u16),
    /// The routing table is full.
    Route(RouteError),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::TooManyInterfaces => f.write_str("too many interfaces"),
            ConfigError::BadAddressCount => {
                write!(f, "an interface needs 1 to {MAX_ADDRS} IPv4 addresses")
            }
            ConfigError::BadMac => f.write_str("the MAC address must be unicast"),
            ConfigError::BadAddress(a) => write!(f, "{a} cannot be a host address"),
            ConfigError::BadVlan(v) => write!(f, "vlan id {v} outside 1..=4094"),
            ConfigError::Route(e) => write!(f, "{e}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ConfigError {}

/// What one poll did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PollResult {
    /// Frames received.
    pub rx_frames: usize,
    /// Frames the devices took for transmission.
    pub tx_frames: usize,
}

/// One instance of the protocol stack.
#[derive(Debug)]
pub struct Stack {
    pub(crate) config: StackConfig,
    pub(crate) rand: Rand,
    pub(crate) ifaces: Vec<Interface>,
    pub(crate) routes: RouteTable,
    /// The output path's last route answer (see [`RouteMemo`]).
    pub(crate) route_memo: RouteMemo,
    /// The headers of the last TCP path sent on (see [`PathTemplate`]).
    pub(crate) tcp_path: Option<PathTemplate>,
    pub(crate) reasm: Reassembler,
    pub(crate) udp: UdpTable,
    pub(crate) icmp: IcmpTable,
    pub(crate) tcp: TcpTable,
    /// The time of the latest poll (what socket calls between polls see as now).
    pub(crate) now: Instant,
    /// The MTU and TSO limit of each interface's device, as of the latest poll.
    pub(crate) port_limits: Vec<PortLimits>,
    pub(crate) icmp_limit: TokenBucket,
    pub(crate) stats: Stats,
    pub(crate) ip_ident: u16,
    /// Reused buffer for payloads that must be built before they are fragmented.
    pub(crate) scratch: Vec<u8>,
    /// Some interface has not sent its gratuitous ARP yet: lets a poll skip looking.
    unannounced: bool,
    /// The TCP output pass's segment slot, kept between passes (see `flush_tcp`).
    pub(crate) out_seg: OutSegment,
}

impl Stack {
    /// A stack with no interfaces. `rand` is the host's randomness (seeded in tests).
    pub fn new(config: StackConfig, mut rand: Rand) -> Stack {
        let udp = UdpTable::new(config.udp, rand.next_u64());
        let icmp = IcmpTable::new(config.max_icmp_sockets, rand.next_u64());
        let tcp = TcpTable::new(config.tcp, &mut rand, Instant::ZERO);
        Stack {
            routes: RouteTable::new(config.max_routes),
            route_memo: RouteMemo::default(),
            tcp_path: None,
            reasm: Reassembler::new(config.reassembly),
            icmp_limit: TokenBucket::new(config.icmp_error_rate, config.icmp_error_burst),
            ip_ident: rand.next_u32() as u16,
            udp,
            icmp,
            tcp,
            now: Instant::ZERO,
            port_limits: Vec::new(),
            ifaces: Vec::new(),
            stats: Stats::default(),
            scratch: Vec::new(),
            unannounced: false,
            out_seg: OutSegment::default(),
            rand,
            config,
        }
    }

    /// Add an interface; returns its index, which is its [`Port`]'s index in `poll`.
    /// Its prefixes become connected routes.
    pub fn add_interface(&mut self, config: InterfaceConfig) -> Result<usize, ConfigError> {
        if self.ifaces.len() >= self.config.max_interfaces {
            return Err(ConfigError::TooManyInterfaces);
        }
        if config.addrs.is_empty() || config.addrs.len() > MAX_ADDRS {
            return Err(ConfigError::BadAddressCount);
        }
        if !config.mac.is_unicast() {
            return Err(ConfigError::BadMac);
        }
        for c in &config.addrs {
            let a = c.address();
            if a.is_unspecified()
                || a.is_multicast()
                || a.is_broadcast()
                || c.broadcast() == Some(a)
            {
                return Err(ConfigError::BadAddress(a));
            }
        }
        if let Some(v) = config.vlan {
            if !(1..=4094).contains(&v) {
                return Err(ConfigError::BadVlan(v));
            }
        }
        let index = self.ifaces.len();
        for c in &config.addrs {
            self.routes
                .add(Route {
                    dest: *c,
                    gateway: None,
                    iface: index,
                })
                .map_err(ConfigError::Route)?;
        }
        let seed = self.rand.next_u64();
        let iface = Interface::new(config, self.config.neighbor, seed);
        // Whether a source is one of our addresses now asks this one too.
        for f in &mut self.ifaces {
            f.rx_memo = None;
        }
        self.unannounced |= !iface.announced;
        self.ifaces.push(iface);
        Ok(index)
    }

    /// Route `dest` via `gateway`, which must be on a connected prefix.
    pub fn add_route(&mut self, dest: Ipv4Cidr, gateway: Ipv4Addr) -> Result<(), RouteError> {
        let iface = self
            .routes
            .iter()
            .find(|r| r.gateway.is_none() && r.dest.contains(gateway))
            .map(|r| r.iface)
            .ok_or(RouteError::GatewayUnreachable)?;
        self.routes.add(Route {
            dest,
            gateway: Some(gateway),
            iface,
        })
    }

    /// Route everything without a more specific route via `gateway`.
    pub fn set_default_gateway(&mut self, gateway: Ipv4Addr) -> Result<(), RouteError> {
        self.add_route(
            Ipv4Cidr::new(Ipv4Addr::UNSPECIFIED, 0).expect("/0 is valid"),
            gateway,
        )
    }

    /// The routing table.
    pub fn routes(&self) -> &RouteTable {
        &self.routes
    }

    /// Interface `i`.
    pub fn interface(&self, i: usize) -> Option<&Interface> {
        self.ifaces.get(i)
    }

    /// The MAC that interface `iface` has cached for `ip`.
    pub fn neighbor(&self, iface: usize, ip: Ipv4Addr) -> Option<EthernetAddress> {
        self.ifaces.get(iface)?.neighbor(ip)
    }

    /// Buffer bytes held by fragment reassembly, bounded by `reassembly.max_bytes`: lets
    /// a host (or a test feeding hostile fragments) watch the memory it costs.
    pub fn reassembly_bytes(&self) -> usize {
        self.reasm.bytes()
    }

    /// Datagrams being reassembled, bounded by `reassembly.max_datagrams`.
    pub fn reassembly_in_progress(&self) -> usize {
        self.reasm.in_progress()
    }

    /// Entries in interface `iface`'s neighbour cache (any state), bounded by
    /// `neighbor.capacity`; 0 for an unknown interface.
    pub fn neighbor_count(&self, iface: usize) -> usize {
        self.ifaces.get(iface).map_or(0, |i| i.neighbors.len())
    }

    /// Packets on interface `iface` waiting for ARP, bounded by `neighbor.pending_total`.
    pub fn neighbor_pending(&self, iface: usize) -> usize {
        self.ifaces.get(iface).map_or(0, |i| i.neighbors.pending())
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// `ip` is one of the stack's addresses (any interface: the weak host model of
    /// RFC 1122 §3.3.4.2).
    pub fn is_local_addr(&self, ip: Ipv4Addr) -> bool {
        self.ifaces.iter().any(|i| i.has_addr(ip))
    }

    /// Do the work that is due at `now`: receive one burst per port, run timers, send
    /// what sockets queued, transmit. `ports[i]` must be the device of interface `i`;
    /// ports beyond the interfaces are ignored.
    pub fn poll<D: Device>(&mut self, now: Instant, ports: &mut [Port<D>]) -> PollResult {
        let mut result = PollResult::default();
        let n = ports.len().min(self.ifaces.len());
        self.now = now;
        // Read every poll: the caller may hand other ports than last time. Each port
        // worked its limits out when it was made, so this is a copy.
        if let ([seen], [port]) = (&mut self.port_limits[..], &ports[..n]) {
            // One interface, as last time: no loop.
            *seen = port.limits;
        } else {
            self.port_limits.resize(n, PortLimits::default());
            for (seen, p) in self.port_limits.iter_mut().zip(&ports[..n]) {
                *seen = p.limits;
            }
        }
        if self.unannounced {
            self.unannounced = false;
            for i in 0..n {
                if !self.ifaces[i].announced {
                    self.ifaces[i].announced = true;
                    self.announce(ports, i);
                }
            }
            // An interface without its port this poll announces on a later one.
            self.unannounced = self.ifaces.iter().any(|i| !i.announced);
        }
        if !self.tcp.ack_next.is_empty() {
            self.release_deferred_acks();
        }
        if let [_] = ports[..n] {
            // One interface (the common host): no loop, so nothing of the input path
            // is set up ahead of one for the polls that receive nothing.
            result.rx_frames += self.receive_port(now, ports, 0);
        } else {
            for i in 0..n {
                result.rx_frames += self.receive_port(now, ports, i);
            }
        }
        self.run_timers(now, ports);
        self.run_tcp_timers(now);
        self.flush_tcp(now, ports);
        // Datagram sockets are rare next to TCP: skip their flushes when none queued.
        if !self.udp.dirty.is_empty() {
            self.flush_udp(now, ports);
        }
        if !self.icmp.dirty.is_empty() {
            self.flush_icmp(now, ports);
        }
        if let [port] = &mut ports[..n] {
            // One interface: no loop (see the receive above).
            result.tx_frames += self.flush_port(port);
        } else {
            for port in &mut ports[..n] {
                result.tx_frames += self.flush_port(port);
            }
        }
        result
    }

    /// Receive one burst on port `i` and process it; returns how many frames it had.
    #[inline(always)]
    fn receive_port<D: Device>(&mut self, now: Instant, ports: &mut [Port<D>], i: usize) -> usize {
        let port = &mut ports[i];
        if let Some(frame) = port
            .dev
            .rx_burst_single(port.queue, &mut port.rx, port.burst)
        {
            // A burst of one (request/response traffic): the frame comes as it is, not
            // through the burst, and goes back so, not through the batch. No loop: one
            // set up ahead of the first frame costs more than a frame of this size.
            self.input_frame(now, ports, i, &frame);
            let port = &mut ports[i];
            port.dev.recycle_one(frame, &mut port.done);
            return 1;
        }
        if ports[i].rx.is_empty() {
            return 0;
        }
        self.receive_burst(now, ports, i)
    }

    /// [`receive_port`](Self::receive_port) of a burst in `ports[i].rx` (any size but
    /// none): out of line, as the burst of one is the path of request/response traffic.
    #[inline(never)]
    fn receive_burst<D: Device>(&mut self, now: Instant, ports: &mut [Port<D>], i: usize) -> usize {
        let port = &mut ports[i];
        let got = port.rx.len();
        // Each frame moves out of the burst while it is processed, which may send on the
        // port, and into the port's batch of frames done with: the vectors stay where
        // they are (moving the burst's vector out of the port and back cost six words
        // each way and a drop to rule out). Popped from the back, so reversed first to
        // be taken in the order received.
        port.rx.reverse();
        while let Some(frame) = ports[i].rx.pop() {
            self.input_frame(now, ports, i, &frame);
            ports[i].done.push(frame);
        }
        // The burst goes back whole: the device may reuse the buffers.
        let port = &mut ports[i];
        port.dev.recycle(&mut port.done);
        got
    }

    /// When the stack's timers next need a poll (if no frame arrives first); `None`
    /// if nothing is pending.
    pub fn poll_at(&self) -> Option<Instant> {
        // Output queued by socket calls since the last poll (data, a window update, a
        // close) is due at once.
        if !self.tcp.dirty.is_empty()
            || !self.tcp.ack_next.is_empty()
            || !self.udp.dirty.is_empty()
            || !self.icmp.dirty.is_empty()
        {
            return Some(self.now);
        }
        let mut at = self.reasm.poll_at();
        at = match (at, self.tcp.wheel.next_expiry()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        for i in &self.ifaces {
            at = match (at, i.neighbors.poll_at()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        at
    }

    fn run_timers<D: Device>(&mut self, now: Instant, ports: &mut [Port<D>]) {
        if self.reasm.in_progress() > 0 {
            let expired = self.reasm.expire(now);
            self.stats.drop_n(DropReason::FragTimeout, expired);
        }
        for i in 0..ports.len().min(self.ifaces.len()) {
            // Most polls find no neighbour being probed: skip the cache's walk.
            if !self.ifaces[i].neighbors.is_probing() {
                continue;
            }
            let mut probes: Vec<Ipv4Addr> = Vec::new();
            let stats = &mut self.stats;
            self.ifaces[i].neighbors.poll(now, |ev| match ev {
                crate::iface::neighbor::NeighborEvent::Probe(ip) => probes.push(ip),
                crate::iface::neighbor::NeighborEvent::Failed(_) => {
                    stats.drop(DropReason::ArpUnresolved)
                }
            });
            for ip in probes.drain(..) {
                self.send_arp_request(ports, i, ip);
            }
        }
    }

    /// Hand the port's backlog to its device; keep what it did not take, up to the
    /// backlog limit (the oldest beyond it are dropped and counted).
    fn flush_port<D: Device>(&mut self, port: &mut Port<D>) -> usize {
        if port.tx.is_empty() {
            return 0;
        }
        let taken = port.dev.tx_burst(port.queue, &mut port.tx);
        self.stats.tx_frames += taken as u64;
        let excess = port.tx.len().saturating_sub(self.config.tx_backlog);
        if excess > 0 {
            port.tx.drain(..excess);
            self.stats.drop_n(DropReason::TxBacklogFull, excess as u64);
        }
        taken
    }

    pub(crate) fn next_ident(&mut self) -> u16 {
        self.ip_ident = self.ip_ident.wrapping_add(1);
        self.ip_ident
    }

    // ---- UDP sockets ----

    /// Open a UDP socket on `local` (address 0.0.0.0: any of ours; port 0: an
    /// ephemeral port) with the default queue sizes.
    pub fn udp_bind(&mut self, local: SocketAddrV4) -> Result<UdpHandle, UdpError> {
        let opts = self.udp.default_options();
        self.udp_bind_with(local, opts)
    }

    /// [`udp_bind`](Self::udp_bind) with these queue sizes.
    pub fn udp_bind_with(
        &mut self,
        local: SocketAddrV4,
        opts: UdpSocketOptions,
    ) -> Result<UdpHandle, UdpError> {
        let addr = *local.ip();
        if !addr.is_unspecified() && !self.is_local_addr(addr) {
            return Err(UdpError::AddrNotAvailable);
        }
        self.udp.bind(local, opts, &mut self.rand)
    }

    /// Fix the socket's peer: `udp_send` goes there, and only its datagrams are received.
    pub fn udp_connect(&mut self, h: UdpHandle, remote: SocketAddrV4) -> Result<(), UdpError> {
        if remote.ip().is_unspecified() || remote.port() == 0 {
            return Err(UdpError::Unaddressable);
        }
        let s = self.udp.get_mut(h)?;
        s.remote = Some(remote);
        s.error = None;
        Ok(())
    }

    /// Queue a datagram to `dst`; it leaves on the next poll.
    pub fn udp_send_to(
        &mut self,
        h: UdpHandle,
        data: &[u8],
        dst: SocketAddrV4,
    ) -> Result<(), UdpError> {
        if dst.ip().is_unspecified() || dst.port() == 0 {
            return Err(UdpError::Unaddressable);
        }
        if let Some(e) = self.udp.get_mut(h)?.error.take() {
            return Err(e);
        }
        if !dst.ip().is_broadcast() && self.routes.lookup(*dst.ip()).is_none() {
            return Err(UdpError::NoRoute);
        }
        self.udp.queue_send(h, dst, data)
    }

    /// Queue a datagram to the connected peer.
    pub fn udp_send(&mut self, h: UdpHandle, data: &[u8]) -> Result<(), UdpError> {
        let remote = self.udp.get(h)?.remote.ok_or(UdpError::NotConnected)?;
        self.udp_send_to(h, data, remote)
    }

    /// Take the oldest received datagram: copy it into `buf` (truncated to its size) and
    /// return its full length and sender.
    pub fn udp_recv_from(
        &mut self,
        h: UdpHandle,
        buf: &mut [u8],
    ) -> Result<(usize, SocketAddrV4), UdpError> {
        let s = self.udp.get_mut(h)?;
        if let Some((from, len)) = s.rx.pop_into(buf) {
            return Ok((len, from));
        }
        match s.error.take() {
            Some(e) => Err(e),
            None => Err(UdpError::WouldBlock),
        }
    }

    /// The socket's local address.
    pub fn udp_local_addr(&self, h: UdpHandle) -> Result<SocketAddrV4, UdpError> {
        Ok(self.udp.get(h)?.local)
    }

    /// Datagrams waiting to be received on the socket.
    pub fn udp_recv_queue_len(&self, h: UdpHandle) -> Result<usize, UdpError> {
        Ok(self.udp.get(h)?.rx.len())
    }

    /// Close the socket; queued datagrams are discarded.
    pub fn udp_close(&mut self, h: UdpHandle) -> Result<(), UdpError> {
        self.udp.close(h)
    }

    // ---- ICMP echo sockets ----

    /// Open an echo socket for identifier `ident`: it sends echo requests and receives
    /// the replies carrying that identifier.
    pub fn icmp_bind(&mut self, ident: u16) -> Result<IcmpHandle, IcmpError> {
        self.icmp.bind(ident)
    }

    /// Queue an echo request to `dst`.
    pub fn icmp_send_echo(
        &mut self,
        h: IcmpHandle,
        dst: Ipv4Addr,
        seq_no: u16,
        data: &[u8],
    ) -> Result<(), IcmpError> {
        if !dst.is_broadcast() && self.routes.lookup(dst).is_none() {
            return Err(IcmpError::NoRoute);
        }
        self.icmp.queue_echo(h, dst, seq_no, data)
    }

    /// Take the oldest echo reply, copying its data into `buf`.
    pub fn icmp_recv(&mut self, h: IcmpHandle, buf: &mut [u8]) -> Result<EchoReply, IcmpError> {
        self.icmp.recv(h, buf)
    }

    /// Close the echo socket.
    pub fn icmp_close(&mut self, h: IcmpHandle) -> Result<(), IcmpError> {
        self.icmp.close(h)
    }
}
