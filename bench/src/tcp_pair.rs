//! Two hosts joined by an in-memory link with one TCP connection between them: what the
//! loss benchmark ([`crate::tcp_loss`]) and the TCP path micro-benchmarks
//! (`benches/tcp_path.rs`) start from.
//!
//! Host A (10.0.0.1) connects to host B (10.0.0.2) port [`PORT`]. Both stacks run on one
//! virtual clock, advanced event by event: the next instant worth a poll is the earliest
//! of the stacks' timers ([`Stack::poll_at`]) and the next frame either link end can
//! hand out ([`LinkEnd::next_rx_at`]). Nothing happens in between, so a run costs the
//! work of its events, not of its virtual duration, and is a pure function of its seeds.

use core::fmt;
use std::net::SocketAddrV4;
use std::sync::Arc;

use rumpnet_stack::iface::{InterfaceConfig, Port};
use rumpnet_stack::link::{self, LinkConfig, LinkEnd, PcapCapture};
use rumpnet_stack::rand::Rand;
use rumpnet_stack::tcp::{State, TcpError, TcpHandle, TcpSocketOptions};
use rumpnet_stack::time::{Duration, Instant};
use rumpnet_stack::wire::{EthernetAddress, Ipv4Addr, Ipv4Cidr};
use rumpnet_stack::{ConfigError, PollResult, Stack, StackConfig};

/// B's listening port.
pub const PORT: u16 = 5001;

/// The address of host A (the client, the data sender in the benchmarks).
pub const A_ADDR: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);

/// The address of host B (the server, the data receiver in the benchmarks).
pub const B_ADDR: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

/// How long the handshake (ARP included) may take in virtual time before
/// [`TcpPair::connect`] gives up: a few initial RTOs, for links that lose the SYN.
const HANDSHAKE_LIMIT: Duration = Duration::from_secs(30);

/// Why a pair could not be set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetupError {
    /// The interface was refused.
    Interface(ConfigError),
    /// A socket call failed.
    Tcp(TcpError),
    /// The connection was not established within [`HANDSHAKE_LIMIT`] of virtual time.
    HandshakeTimeout,
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetupError::Interface(e) => write!(f, "interface: {e}"),
            SetupError::Tcp(e) => write!(f, "tcp: {e}"),
            SetupError::HandshakeTimeout => f.write_str("the handshake did not complete"),
        }
    }
}

impl std::error::Error for SetupError {}

impl From<ConfigError> for SetupError {
    fn from(e: ConfigError) -> Self {
        SetupError::Interface(e)
    }
}

impl From<TcpError> for SetupError {
    fn from(e: TcpError) -> Self {
        SetupError::Tcp(e)
    }
}

/// One host: a stack and the link end of its only interface.
#[derive(Debug)]
pub struct Host {
    pub stack: Stack,
    pub ports: [Port<LinkEnd>; 1],
}

impl Host {
    /// A host at `addr/24` with MAC `02:00:00:00:00:<last octet of addr>`.
    pub fn new(
        config: StackConfig,
        end: LinkEnd,
        addr: Ipv4Addr,
        seed: u64,
    ) -> Result<Host, SetupError> {
        let mut stack = Stack::new(config, Rand::from_u64(seed));
        let mac = EthernetAddress([2, 0, 0, 0, 0, addr.octets()[3]]);
        let cidr = Ipv4Cidr::new(addr, 24).ok_or(ConfigError::BadAddress(addr))?;
        stack.add_interface(InterfaceConfig::new(mac, cidr))?;
        Ok(Host {
            stack,
            ports: [Port::new(end)],
        })
    }

    /// Tell the link end the time, then poll the stack.
    pub fn poll(&mut self, now: Instant) -> PollResult {
        self.ports[0].device_mut().set_now(now);
        self.stack.poll(now, &mut self.ports)
    }

    /// The host's link end.
    pub fn link(&mut self) -> &mut LinkEnd {
        self.ports[0].device_mut()
    }

    /// The earliest instant this host needs a poll: a timer, a frame arriving, or
    /// frames its device did not take yet (retried after `retry`).
    pub fn next_event(&mut self, now: Instant, retry: Duration) -> Option<Instant> {
        let mut at = earliest(self.stack.poll_at(), self.link().next_rx_at());
        if self.ports[0].tx_backlog() > 0 {
            at = earliest(at, Some(now + retry));
        }
        at
    }
}

/// The earlier of two optional instants.
pub fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Two hosts over one link and an established connection from A to B.
#[derive(Debug)]
pub struct TcpPair {
    pub a: Host,
    pub b: Host,
    /// A's end of the connection.
    pub client: TcpHandle,
    /// B's end, accepted from its listener (which is closed again).
    pub server: TcpHandle,
    /// The virtual clock, as of the last poll.
    pub now: Instant,
}

impl TcpPair {
    /// Build the hosts (stack seeds `seed * 3` and `seed * 5`), connect A to B with
    /// `opts` on both sides, and run the clock from `start` until both ends are
    /// ESTABLISHED and B has accepted. With `capture`, both link ends record every
    /// frame they send into it (for Wireshark).
    pub fn connect(
        link: LinkConfig,
        config_a: StackConfig,
        config_b: StackConfig,
        opts: TcpSocketOptions,
        seed: u64,
        start: Instant,
        capture: Option<Arc<PcapCapture>>,
    ) -> Result<TcpPair, SetupError> {
        let (ea, eb) = match capture {
            Some(c) => link::pair_with_capture(link, c),
            None => link::pair(link),
        };
        let mut a = Host::new(config_a, ea, A_ADDR, seed.wrapping_mul(3))?;
        let mut b = Host::new(config_b, eb, B_ADDR, seed.wrapping_mul(5))?;
        let listener =
            b.stack
                .tcp_listen_with(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, PORT), 1, opts)?;
        // One poll first so the stacks learn their devices' MTU, which the MSS we
        // advertise is computed from.
        a.poll(start);
        b.poll(start);
        let client =
            a.stack
                .tcp_connect_with(SocketAddrV4::new(B_ADDR, PORT), None, opts, |_| true)?;
        let mut pair = TcpPair {
            a,
            b,
            client,
            // Replaced once B accepts; until then nothing reads it.
            server: client,
            now: start,
        };
        let deadline = start + HANDSHAKE_LIMIT;
        loop {
            let polled = pair.poll();
            if let Some(e) = pair.a.stack.tcp_error(client)? {
                return Err(e.into());
            }
            if pair.a.stack.tcp_state(client)? == State::Established {
                match pair.b.stack.tcp_accept(listener) {
                    Ok((s, _)) => {
                        pair.server = s;
                        break;
                    }
                    Err(TcpError::WouldBlock) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            pair.advance(polled, false);
            if pair.now > deadline {
                return Err(SetupError::HandshakeTimeout);
            }
        }
        pair.b.stack.tcp_close_listener(listener)?;
        Ok(pair)
    }

    /// Poll A, then B, at `self.now`; the two results summed.
    pub fn poll(&mut self) -> PollResult {
        let ra = self.a.poll(self.now);
        let rb = self.b.poll(self.now);
        PollResult {
            rx_frames: ra.rx_frames + rb.rx_frames,
            tx_frames: ra.tx_frames + rb.tx_frames,
        }
    }

    /// Move the clock to the next instant worth a poll. `polled` is what the last
    /// [`poll`](Self::poll) did; `busy` says the application did something since
    /// (queued or read data), which the stacks act on only at their next poll, so the
    /// clock stays put for it.
    pub fn advance(&mut self, polled: PollResult, busy: bool) {
        if busy {
            return;
        }
        let retry = Duration::from_micros(1);
        let next = earliest(
            self.a.next_event(self.now, retry),
            self.b.next_event(self.now, retry),
        );
        self.now = match next {
            Some(t) if t > self.now => t,
            // Frames are due now (more than one burst arrived at this instant): poll
            // again. If the last poll moved nothing, a timer reported as due did not
            // fire; step past it rather than spin.
            Some(_) if polled.rx_frames + polled.tx_frames > 0 => self.now,
            Some(_) => self.now + retry,
            None => self.now + Duration::from_millis(1),
        };
    }
}
