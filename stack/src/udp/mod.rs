//! UDP sockets (RFC 768): bind, connect, send_to, recv_from, over bounded queues.
//!
//! The table demultiplexes by local address and port with a hash map (specific address
//! first, then the wildcard), never by scanning sockets. Receive and send queues are
//! allocated when the socket is made and never grow: a full receive queue drops and
//! counts, a full send queue answers `WouldBlock`.

use alloc::collections::VecDeque;
use core::fmt;
use core::net::SocketAddrV4;

use crate::rand::Rand;
use crate::socket::{DatagramQueue, Slab, SlabKey};
use crate::wire::Ipv4Addr;
use crate::HashMap;

/// The largest UDP payload over IPv4: 65535 - 20 (IP header) - 8 (UDP header).
pub const MAX_PAYLOAD: usize = 65507;

/// The IANA dynamic port range (RFC 6335), used for ephemeral ports.
pub const EPHEMERAL_PORTS: core::ops::RangeInclusive<u16> = 49152..=65535;

/// Limits of the UDP table and default queue sizes of its sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpConfig {
    /// Most sockets open at once.
    pub max_sockets: usize,
    /// Default socket options for new sockets.
    pub socket: UdpSocketOptions,
}

impl Default for UdpConfig {
    fn default() -> Self {
        UdpConfig {
            max_sockets: 1024,
            socket: UdpSocketOptions::default(),
        }
    }
}

/// Queue sizes of one socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpSocketOptions {
    /// Receive queue bytes.
    pub rx_bytes: usize,
    /// Receive queue datagrams.
    pub rx_datagrams: usize,
    /// Send queue bytes (at least one largest datagram, or large sends fail).
    pub tx_bytes: usize,
    /// Send queue datagrams.
    pub tx_datagrams: usize,
}

impl Default for UdpSocketOptions {
    fn default() -> Self {
        UdpSocketOptions {
            rx_bytes: 64 * 1024,
            rx_datagrams: 256,
            tx_bytes: 64 * 1024,
            tx_datagrams: 256,
        }
    }
}

/// A handle to a UDP socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UdpHandle(pub(crate) SlabKey);

/// Errors of UDP socket calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UdpError {
    /// The handle does not name a live socket.
    InvalidHandle,
    /// The local address and port are taken.
    AddrInUse,
    /// The local address is not one of the stack's.
    AddrNotAvailable,
    /// Every ephemeral port is taken.
    NoPortsAvailable,
    /// The socket table is full.
    TooManySockets,
    /// `send` on a socket that is not connected.
    NotConnected,
    /// Nothing to receive now, or no room to queue the datagram now.
    WouldBlock,
    /// Larger than a UDP datagram can be (or than the send queue).
    TooLarge,
    /// Destination address or port unusable (0.0.0.0, port 0).
    Unaddressable,
    /// No route to the destination.
    NoRoute,
    /// The peer answered ICMP port unreachable (reported once, on a connected socket).
    ConnectionRefused,
}

impl fmt::Display for UdpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UdpError::InvalidHandle => "invalid udp socket handle",
            UdpError::AddrInUse => "address in use",
            UdpError::AddrNotAvailable => "address not available",
            UdpError::NoPortsAvailable => "no ephemeral ports available",
            UdpError::TooManySockets => "too many udp sockets",
            UdpError::NotConnected => "socket not connected",
            UdpError::WouldBlock => "operation would block",
            UdpError::TooLarge => "datagram too large",
            UdpError::Unaddressable => "unaddressable destination",
            UdpError::NoRoute => "no route to host",
            UdpError::ConnectionRefused => "connection refused",
        })
    }
}

#[cfg(feature = "std")]
impl std::error::Error for UdpError {}

#[derive(Debug)]
pub(crate) struct UdpSocket {
    pub(crate) local: SocketAddrV4,
    pub(crate) remote: Option<SocketAddrV4>,
    pub(crate) rx: DatagramQueue<SocketAddrV4>,
    pub(crate) tx: DatagramQueue<SocketAddrV4>,
    pub(crate) dirty: bool,
    pub(crate) error: Option<UdpError>,
}

/// Why an arriving datagram was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DeliverError {
    NoSocket,
    QueueFull,
}

/// The UDP sockets of one stack.
#[derive(Debug)]
pub(crate) struct UdpTable {
    pub(crate) sockets: Slab<UdpSocket>,
    by_local: HashMap<(Ipv4Addr, u16), SlabKey>,
    /// Sockets per port, any address: a wildcard bind needs the port wholly free.
    port_users: HashMap<u16, u32>,
    pub(crate) dirty: VecDeque<SlabKey>,
    config: UdpConfig,
}

impl UdpTable {
    pub(crate) fn new(config: UdpConfig, seed: u64) -> Self {
        UdpTable {
            sockets: Slab::new(config.max_sockets),
            by_local: crate::new_map(seed),
            port_users: crate::new_map(seed.rotate_left(17)),
            dirty: VecDeque::new(),
            config,
        }
    }

    pub(crate) fn default_options(&self) -> UdpSocketOptions {
        self.config.socket
    }

    fn port_free(&self, addr: Ipv4Addr, port: u16) -> bool {
        if addr.is_unspecified() {
            !self.port_users.contains_key(&port)
        } else {
            !self.by_local.contains_key(&(addr, port))
                && !self.by_local.contains_key(&(Ipv4Addr::UNSPECIFIED, port))
        }
    }

    pub(crate) fn bind(
        &mut self,
        local: SocketAddrV4,
        opts: UdpSocketOptions,
        rand: &mut Rand,
    ) -> Result<UdpHandle, UdpError> {
        if self.sockets.len() >= self.config.max_sockets {
            return Err(UdpError::TooManySockets);
        }
        let addr = *local.ip();
        let port = if local.port() == 0 {
            let span = u32::from(EPHEMERAL_PORTS.end() - EPHEMERAL_PORTS.start()) + 1;
            let start = rand.below(span);
            (0..span)
                .map(|i| EPHEMERAL_PORTS.start() + ((start + i) % span) as u16)
                .find(|&p| self.port_free(addr, p))
                .ok_or(UdpError::NoPortsAvailable)?
        } else if self.port_free(addr, local.port()) {
            local.port()
        } else {
            return Err(UdpError::AddrInUse);
        };
        let sock = UdpSocket {
            local: SocketAddrV4::new(addr, port),
            remote: None,
            rx: DatagramQueue::new(opts.rx_bytes, opts.rx_datagrams),
            tx: DatagramQueue::new(opts.tx_bytes, opts.tx_datagrams),
            dirty: false,
            error: None,
        };
        let key = self
            .sockets
            .insert(sock)
            .map_err(|_| UdpError::TooManySockets)?;
        self.by_local.insert((addr, port), key);
        *self.port_users.entry(port).or_insert(0) += 1;
        Ok(UdpHandle(key))
    }

    pub(crate) fn close(&mut self, h: UdpHandle) -> Result<(), UdpError> {
        let s = self.sockets.remove(h.0).ok_or(UdpError::InvalidHandle)?;
        self.by_local.remove(&(*s.local.ip(), s.local.port()));
        if let Some(n) = self.port_users.get_mut(&s.local.port()) {
            *n -= 1;
            if *n == 0 {
                self.port_users.remove(&s.local.port());
            }
        }
        Ok(())
    }

    pub(crate) fn get(&self, h: UdpHandle) -> Result<&UdpSocket, UdpError> {
        self.sockets.get(h.0).ok_or(UdpError::InvalidHandle)
    }

    pub(crate) fn get_mut(&mut self, h: UdpHandle) -> Result<&mut UdpSocket, UdpError> {
        self.sockets.get_mut(h.0).ok_or(UdpError::InvalidHandle)
    }

    /// Queue `data` for `dst` on the socket's send queue.
    pub(crate) fn queue_send(
        &mut self,
        h: UdpHandle,
        dst: SocketAddrV4,
        data: &[u8],
    ) -> Result<(), UdpError> {
        let s = self.sockets.get_mut(h.0).ok_or(UdpError::InvalidHandle)?;
        if data.len() > MAX_PAYLOAD || data.len() > s.tx.capacity_bytes() {
            return Err(UdpError::TooLarge);
        }
        s.tx.push(dst, data).map_err(|_| UdpError::WouldBlock)?;
        if !s.dirty {
            s.dirty = true;
            self.dirty.push_back(h.0);
        }
        Ok(())
    }

    /// The socket a datagram to `dst_addr:dst_port` from `from` belongs to.
    pub(crate) fn lookup(
        &self,
        dst_addr: Ipv4Addr,
        dst_port: u16,
        from: SocketAddrV4,
    ) -> Option<SlabKey> {
        let key = self
            .by_local
            .get(&(dst_addr, dst_port))
            .or_else(|| self.by_local.get(&(Ipv4Addr::UNSPECIFIED, dst_port)))
            .copied()?;
        let s = self.sockets.get(key)?;
        // A connected socket hears only its peer (as BSD sockets do).
        match s.remote {
            Some(r) if r != from => None,
            _ => Some(key),
        }
    }

    /// Queue an arriving datagram on the socket it belongs to.
    pub(crate) fn deliver(
        &mut self,
        dst_addr: Ipv4Addr,
        dst_port: u16,
        from: SocketAddrV4,
        payload: &[u8],
    ) -> Result<(), DeliverError> {
        let key = self
            .lookup(dst_addr, dst_port, from)
            .ok_or(DeliverError::NoSocket)?;
        let s = self.sockets.get_mut(key).ok_or(DeliverError::NoSocket)?;
        s.rx.push(from, payload)
            .map_err(|_| DeliverError::QueueFull)
    }

    /// An ICMP port unreachable came back for a datagram we sent from `local` to
    /// `remote`: a connected socket to that peer reports it once (RFC 1122 §4.1.3.3).
    pub(crate) fn port_unreachable(&mut self, local: SocketAddrV4, remote: SocketAddrV4) {
        let key = self
            .by_local
            .get(&(*local.ip(), local.port()))
            .or_else(|| self.by_local.get(&(Ipv4Addr::UNSPECIFIED, local.port())))
            .copied();
        if let Some(s) = key.and_then(|k| self.sockets.get_mut(k)) {
            if s.remote == Some(remote) {
                s.error = Some(UdpError::ConnectionRefused);
            }
        }
    }
}
