//! A packetdrill-style harness: one [`Stack`] on one end of an in-memory link whose other
//! end the test drives by hand.
//!
//! A test injects hand-built Ethernet/IPv4/TCP frames ([`Harness::inject`] with a
//! [`seg!`] literal) and checks, segment by segment, what the stack sent back
//! ([`expect!`], [`Harness::expect_none`]). Time moves only when the test says so
//! ([`Harness::advance`]), polling the stack at each of its timer deadlines on the way, so
//! every segment the stack sends is stamped with the instant it left.
//!
//! Sequence numbers follow packetdrill's convention: the peer's (the test's) numbers are
//! absolute, the stack's are relative to its ISN for that connection. So a stack's
//! SYN-ACK reads `seq 0`, and the ACK the test sends for it reads `ack 1`, whatever ISN
//! the stack picked. SACK blocks the test sends (about the stack's data) are relative
//! too; SACK blocks the stack sends (about the test's data) are absolute.
//!
//! ARP is handled out of sight: the stack learns the peer's MAC at start, and any later
//! request for the peer is answered at once, so long timer tests do not stall on it.

#![allow(dead_code)] // helpers for every test file; not each uses all

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;
use core::fmt;
use core::net::SocketAddrV4;

use crate::iface::{InterfaceConfig, Port};
use crate::link::{self, LinkConfig, LinkEnd};
use crate::rand::Rand;
use crate::tcp::tcb::{Tcb, TcpSocketOptions};
use crate::tcp::{TcpHandle, TcpListenerHandle};
use crate::time::{Duration, Instant};
use crate::wire::arp::{self, ArpRepr, Operation};
use crate::wire::ethernet::{self, EtherType, EthernetRepr};
use crate::wire::ipv4::{self, Ipv4Repr};
use crate::wire::seq::SeqNumber;
use crate::wire::tcp::{self as wtcp, Flags, TcpChecksum, TcpRepr, TcpTimestamp};
use crate::wire::{EthernetAddress, IpProtocol, Ipv4Addr, Ipv4Cidr};
use crate::{Stack, StackConfig};

use crate::device::{Device, Frame};

pub const STACK_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
pub const PEER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
pub const STACK_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x01]);
pub const PEER_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x02]);
/// The stack's port: its listener, and the source port of its active opens.
pub const STACK_PORT: u16 = 8080;
/// The test's port.
pub const PEER_PORT: u16 = 40000;
/// The ISN the test uses in its SYNs.
pub const PEER_ISN: u32 = 1000;
/// When every test starts (not zero, so that "100 s in" timestamps look like a real host's).
pub const START: Instant = Instant::from_secs(100);

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// `n` bytes of a recognisable pattern (byte `i` is `i % 251`).
pub fn payload(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

/// TCP control bits written as packetdrill and tcpdump do: `S` SYN, `F` FIN, `R` RST,
/// `P` PSH, `.` ACK, `U` URG, `E` ECE, `W` CWR. `"S."` is a SYN-ACK.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct Ctl(pub Flags);

impl From<&str> for Ctl {
    fn from(s: &str) -> Ctl {
        let mut f = Flags::empty();
        for c in s.chars() {
            f |= match c {
                'S' => Flags::SYN,
                'F' => Flags::FIN,
                'R' => Flags::RST,
                'P' => Flags::PSH,
                '.' => Flags::ACK,
                'U' => Flags::URG,
                'E' => Flags::ECE,
                'W' => Flags::CWR,
                _ => panic!("unknown flag letter {c:?} in {s:?}"),
            };
        }
        Ctl(f)
    }
}

impl fmt::Debug for Ctl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One TCP segment, in either direction, in the harness's numbering (see the module
/// docs). Build with [`seg!`]; fields left out take the defaults: the harness's ports,
/// window 65535, no options, no data.
#[derive(Clone, PartialEq)]
pub struct Seg {
    /// Source and destination port; 0 means the default for the direction.
    pub sport: u16,
    pub dport: u16,
    pub flags: Ctl,
    pub seq: u32,
    /// Meaningful (and sent) only with the ACK flag.
    pub ack: u32,
    pub win: u16,
    pub urg: u16,
    pub mss: Option<u16>,
    pub ws: Option<u8>,
    pub sackok: bool,
    pub sack: Vec<(u32, u32)>,
    /// (TSval, TSecr).
    pub ts: Option<(u32, u32)>,
    pub data: Vec<u8>,
    /// When the stack sent it (segments the test reads).
    pub at: Instant,
}

impl Default for Seg {
    fn default() -> Seg {
        Seg {
            sport: 0,
            dport: 0,
            flags: Ctl::default(),
            seq: 0,
            ack: 0,
            win: 65535,
            urg: 0,
            mss: None,
            ws: None,
            sackok: false,
            sack: Vec::new(),
            ts: None,
            data: Vec::new(),
            at: Instant::ZERO,
        }
    }
}

impl Seg {
    /// All the flags in `s` are set.
    pub fn has(&self, s: &str) -> bool {
        self.flags.0.contains(Ctl::from(s).0)
    }

    /// Sequence space the segment takes (data, SYN, FIN).
    pub fn len(&self) -> u32 {
        self.data.len() as u32 + u32::from(self.has("S")) + u32::from(self.has("F"))
    }

    pub fn tsval(&self) -> u32 {
        self.ts.expect("segment has no timestamp").0
    }

    pub fn tsecr(&self) -> u32 {
        self.ts.expect("segment has no timestamp").1
    }
}

/// Printed as a packetdrill line: `S. 0:0(0) ack 1001 win 65535 <mss 1460,...>`.
impl fmt::Debug for Seg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let end = self.seq.wrapping_add(self.data.len() as u32);
        write!(
            f,
            "{}:{} {:?} {}:{}({})",
            self.sport,
            self.dport,
            self.flags,
            self.seq,
            end,
            self.data.len()
        )?;
        if self.has(".") {
            write!(f, " ack {}", self.ack)?;
        }
        write!(f, " win {}", self.win)?;
        let mut opts = Vec::new();
        if let Some(m) = self.mss {
            opts.push(alloc::format!("mss {m}"));
        }
        if self.sackok {
            opts.push("sackOK".into());
        }
        if let Some((v, e)) = self.ts {
            opts.push(alloc::format!("TS val {v} ecr {e}"));
        }
        if let Some(w) = self.ws {
            opts.push(alloc::format!("wscale {w}"));
        }
        for (l, r) in &self.sack {
            opts.push(alloc::format!("sack {l}:{r}"));
        }
        if !opts.is_empty() {
            write!(f, " <{}>", opts.join(","))?;
        }
        write!(f, " @{}", self.at)
    }
}

/// A segment literal: `seg!{flags: "S", seq: 1000, win: 65535, mss: 1460}`. Options are
/// given bare (`mss: 1460`, `ws: 7`, `ts: (tsval, tsecr)`, `sack: [(l, r)]`), data as
/// any byte slice (`data: b"hi"`, `data: payload(1000)`).
macro_rules! seg {
    (@set $s:ident, flags, $v:expr) => { $s.flags = $crate::tcp::tests::harness::Ctl::from($v); };
    (@set $s:ident, mss, $v:expr) => { $s.mss = Some($v); };
    (@set $s:ident, ws, $v:expr) => { $s.ws = Some($v); };
    (@set $s:ident, ts, $v:expr) => { $s.ts = Some($v); };
    (@set $s:ident, data, $v:expr) => { $s.data = alloc::vec::Vec::from(&$v[..]); };
    (@set $s:ident, sack, $v:expr) => { $s.sack = alloc::vec::Vec::from(&$v[..]); };
    (@set $s:ident, $f:ident, $v:expr) => { $s.$f = $v; };
    ($($f:ident : $v:expr),* $(,)?) => {{
        #[allow(unused_mut)]
        let mut s = $crate::tcp::tests::harness::Seg::default();
        $( seg!(@set s, $f, $v); )*
        s
    }};
}

/// Read the next segment the stack sent and check the fields given, packetdrill style:
/// `expect!(h, flags: "S.", seq: 0, ack: 1001, mss: 1460)`. Extra pseudo-fields: `len`
/// (payload length), `tsecr`, `nots` (no timestamp option: `nots: true`). Returns the
/// segment for further checks.
macro_rules! expect {
    (@chk $s:ident, flags, $v:expr) => {
        assert_eq!($s.flags, $crate::tcp::tests::harness::Ctl::from($v), "flags of {:?}", $s);
    };
    (@chk $s:ident, mss, $v:expr) => { assert_eq!($s.mss, Some($v), "mss of {:?}", $s); };
    (@chk $s:ident, ws, $v:expr) => { assert_eq!($s.ws, Some($v), "wscale of {:?}", $s); };
    (@chk $s:ident, ts, $v:expr) => { assert_eq!($s.ts, Some($v), "timestamp of {:?}", $s); };
    (@chk $s:ident, tsecr, $v:expr) => { assert_eq!($s.tsecr(), $v, "TSecr of {:?}", $s); };
    (@chk $s:ident, nots, $v:expr) => { assert_eq!($s.ts.is_none(), $v, "timestamp of {:?}", $s); };
    (@chk $s:ident, len, $v:expr) => { assert_eq!($s.data.len(), $v, "length of {:?}", $s); };
    (@chk $s:ident, data, $v:expr) => { assert_eq!(&$s.data[..], &$v[..], "data of {:?}", $s); };
    (@chk $s:ident, sack, $v:expr) => {
        assert_eq!(&$s.sack[..], &$v[..], "sack blocks of {:?}", $s);
    };
    (@chk $s:ident, $f:ident, $v:expr) => {
        assert_eq!($s.$f, $v, concat!(stringify!($f), " of {:?}"), $s);
    };
    ($h:expr $(, $f:ident : $v:expr)* $(,)?) => {{
        let s = $h.recv();
        $( expect!(@chk s, $f, $v); )*
        s
    }};
}

/// The stack under test and the far end of its link.
pub struct Harness {
    pub stack: Stack,
    ports: Vec<Port<LinkEnd>>,
    peer: LinkEnd,
    pub now: Instant,
    /// Segments the stack sent that the test has not read yet.
    sent: VecDeque<Seg>,
    /// The stack's ISN per (stack port, peer port), learned from its SYNs.
    iss: BTreeMap<(u16, u16), u32>,
    /// Add a timestamp option to injected segments that have none, as a peer that
    /// negotiated timestamps would: TSval from the peer's clock (milliseconds), TSecr the
    /// last TSval the stack sent.
    pub auto_ts: bool,
    last_tsval: u32,
    /// Frames from the stack that were neither ARP nor TCP (ICMP errors, ...).
    pub other_frames: usize,
}

impl Harness {
    pub fn new() -> Harness {
        Harness::with_config(StackConfig::default())
    }

    /// A stack with `config`, address 10.0.0.1/24, that already knows the peer's MAC.
    pub fn with_config(config: StackConfig) -> Harness {
        Harness::build(config, None)
    }

    /// [`with_config`](Self::with_config) with the interface's MTU set to `mtu`.
    pub fn build(config: StackConfig, mtu: Option<usize>) -> Harness {
        let (a, b) = link::pair(LinkConfig::default());
        let mut stack = Stack::new(config, Rand::from_u64(0x7c9_5eed));
        let cidr = Ipv4Cidr::new(STACK_IP, 24).expect("cidr");
        let mut iface = InterfaceConfig::new(STACK_MAC, cidr);
        iface.mtu = mtu;
        stack.add_interface(iface).expect("interface");
        let mut h = Harness {
            stack,
            ports: alloc::vec![Port::new(a)],
            peer: b,
            now: START,
            sent: VecDeque::new(),
            iss: BTreeMap::new(),
            auto_ts: false,
            last_tsval: 0,
            other_frames: 0,
        };
        h.poll(); // the stack announces its address
                  // RFC 826: a request for the stack's address teaches it the sender's MAC.
        h.inject_arp(Operation::Request, EthernetAddress::BROADCAST);
        assert_eq!(h.stack.neighbor(0, PEER_IP), Some(PEER_MAC));
        assert!(h.sent.is_empty());
        h
    }

    /// The stack's socket address (listener, and source of active opens).
    pub fn local() -> SocketAddrV4 {
        SocketAddrV4::new(STACK_IP, STACK_PORT)
    }

    /// The test's socket address.
    pub fn remote() -> SocketAddrV4 {
        SocketAddrV4::new(PEER_IP, PEER_PORT)
    }

    fn inject_arp(&mut self, op: Operation, dst: EthernetAddress) {
        let repr = ArpRepr {
            operation: op,
            source_hardware_addr: PEER_MAC,
            source_protocol_addr: PEER_IP,
            target_hardware_addr: if op == Operation::Reply {
                STACK_MAC
            } else {
                EthernetAddress::UNSPECIFIED
            },
            target_protocol_addr: STACK_IP,
        };
        let eth = EthernetRepr {
            src_addr: PEER_MAC,
            dst_addr: dst,
            ethertype: EtherType::Arp,
            vlan: None,
        };
        let mut buf = alloc::vec![0xa5u8; eth.buffer_len() + 28];
        let mut frame = ethernet::Frame::new_unchecked(&mut buf[..]);
        eth.emit(&mut frame);
        repr.emit(&mut arp::Packet::new_unchecked(frame.payload_mut()));
        self.ports[0].device_mut().inject(&buf);
        self.poll();
    }

    /// Run the stack once at `self.now` and collect what it sent.
    pub fn poll(&mut self) {
        for _ in 0..4 {
            self.ports[0].device_mut().set_now(self.now);
            self.stack.poll(self.now, &mut self.ports);
            if !self.collect() {
                break;
            }
        }
    }

    /// Read the frames the stack sent: TCP segments are queued for the test, ARP
    /// requests for the peer answered. True if an answer was injected (poll again).
    fn collect(&mut self) -> bool {
        let mut frames = Vec::new();
        let mut answered = false;
        loop {
            frames.clear();
            self.peer.rx_burst(0, &mut frames, 64);
            if frames.is_empty() {
                return answered;
            }
            for f in frames.drain(..) {
                answered |= self.take_frame(f.data());
            }
        }
    }

    fn take_frame(&mut self, bytes: &[u8]) -> bool {
        let frame = ethernet::Frame::new_checked(bytes).expect("stack sent a short frame");
        let eth = EthernetRepr::parse(&frame).expect("ethernet header");
        assert_eq!(eth.src_addr, STACK_MAC);
        match eth.ethertype {
            EtherType::Arp => {
                let p = arp::Packet::new_checked(frame.payload()).expect("arp");
                let a = ArpRepr::parse(&p).expect("arp repr");
                if a.operation == Operation::Request && a.target_protocol_addr == PEER_IP {
                    self.inject_arp(Operation::Reply, STACK_MAC);
                    return true;
                }
                false
            }
            EtherType::Ipv4 => {
                assert_eq!(eth.dst_addr, PEER_MAC, "IPv4 frame to the wrong MAC");
                let p = ipv4::Packet::new_checked(frame.payload()).expect("ipv4");
                let ip = Ipv4Repr::parse(&p, true).expect("ipv4 header (checksum)");
                if ip.protocol != IpProtocol::Tcp {
                    self.other_frames += 1;
                    return false;
                }
                assert_eq!((ip.src_addr, ip.dst_addr), (STACK_IP, PEER_IP));
                let payload = &p.payload()[..ip.payload_len];
                let t = wtcp::Packet::new_checked(payload).expect("tcp header");
                let r = TcpRepr::parse(&t, ip.src_addr, ip.dst_addr, true)
                    .expect("tcp segment (checksum)");
                self.push_sent(&r);
                false
            }
            _ => {
                self.other_frames += 1;
                false
            }
        }
    }

    fn push_sent(&mut self, r: &TcpRepr<'_>) {
        let key = (r.src_port, r.dst_port);
        if r.flags.contains(Flags::SYN) {
            self.iss.insert(key, r.seq_number.0);
        }
        let iss = self.iss.get(&key).copied().unwrap_or(0);
        if let Some(ts) = r.timestamp {
            self.last_tsval = ts.tsval;
        }
        self.sent.push_back(Seg {
            sport: r.src_port,
            dport: r.dst_port,
            flags: Ctl(r.flags),
            seq: r.seq_number.0.wrapping_sub(iss),
            ack: r.ack_number.map_or(0, |a| a.0),
            win: r.window_len,
            urg: r.urgent_pointer,
            mss: r.max_seg_size,
            ws: r.window_scale,
            sackok: r.sack_permitted,
            sack: r
                .sack_ranges
                .iter()
                .flatten()
                .map(|(l, r)| (l.0, r.0))
                .collect(),
            ts: r.timestamp.map(|t| (t.tsval, t.tsecr)),
            data: r.payload.to_vec(),
            at: self.now,
        });
    }

    /// The stack's ISN (absolute) on the connection between the default ports, once
    /// its SYN or SYN-ACK was seen.
    pub fn stack_iss(&self) -> Option<u32> {
        self.iss_of(STACK_PORT, PEER_PORT)
    }

    /// The stack's ISN (absolute) on the connection from its port `sport` to `dport`.
    pub fn iss_of(&self, sport: u16, dport: u16) -> Option<u32> {
        self.iss.get(&(sport, dport)).copied()
    }

    /// The peer's timestamp clock: milliseconds of the test clock.
    pub fn peer_tsval(&self) -> u32 {
        self.now.total_millis() as u32
    }

    /// The last TSval the stack sent.
    pub fn last_tsval(&self) -> u32 {
        self.last_tsval
    }

    /// Send `seg` to the stack and let it process it (one poll at the current time).
    pub fn inject(&mut self, seg: Seg) {
        let bytes = self.frame_for(&seg);
        self.ports[0].device_mut().inject(&bytes);
        self.poll();
    }

    /// The Ethernet frame carrying `seg` from the peer to the stack.
    pub fn frame_for(&self, seg: &Seg) -> Vec<u8> {
        let sport = if seg.sport == 0 { PEER_PORT } else { seg.sport };
        let dport = if seg.dport == 0 {
            STACK_PORT
        } else {
            seg.dport
        };
        let iss = self.iss.get(&(dport, sport)).copied().unwrap_or(0);
        let ts = match seg.ts {
            Some((v, e)) => Some(TcpTimestamp { tsval: v, tsecr: e }),
            None if self.auto_ts && !seg.has("R") => Some(TcpTimestamp {
                tsval: self.peer_tsval(),
                tsecr: self.last_tsval,
            }),
            None => None,
        };
        let mut sack = [None; wtcp::MAX_SACK_BLOCKS];
        for (slot, (l, r)) in sack.iter_mut().zip(&seg.sack) {
            *slot = Some((
                SeqNumber(l.wrapping_add(iss)),
                SeqNumber(r.wrapping_add(iss)),
            ));
        }
        let repr = TcpRepr {
            src_port: sport,
            dst_port: dport,
            flags: seg.flags.0,
            seq_number: SeqNumber(seg.seq),
            ack_number: seg.has(".").then(|| SeqNumber(seg.ack.wrapping_add(iss))),
            window_len: seg.win,
            urgent_pointer: seg.urg,
            max_seg_size: seg.mss,
            window_scale: seg.ws,
            sack_permitted: seg.sackok,
            sack_ranges: sack,
            timestamp: ts,
            payload: &seg.data,
        };
        let ip = Ipv4Repr {
            src_addr: PEER_IP,
            dst_addr: STACK_IP,
            protocol: IpProtocol::Tcp,
            payload_len: repr.buffer_len(),
            ttl: 64,
            tos: 0,
            ident: 0,
            dont_frag: true,
            more_frags: false,
            frag_offset: 0,
        };
        let eth = EthernetRepr {
            src_addr: PEER_MAC,
            dst_addr: STACK_MAC,
            ethertype: EtherType::Ipv4,
            vlan: None,
        };
        let len = eth.buffer_len() + ip.buffer_len() + repr.buffer_len();
        let mut buf = alloc::vec![0xa5u8; len];
        let mut frame = ethernet::Frame::new_unchecked(&mut buf[..]);
        eth.emit(&mut frame);
        let mut p = ipv4::Packet::new_unchecked(frame.payload_mut());
        ip.emit(&mut p, true);
        repr.emit(
            &mut wtcp::Packet::new_unchecked(p.payload_mut()),
            PEER_IP,
            STACK_IP,
            TcpChecksum::Compute,
        );
        buf
    }

    /// Let `d` pass, polling the stack at every deadline it asks for on the way (as a
    /// host that sleeps until `poll_at` would).
    pub fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        let mut stuck = 0;
        while let Some(t) = self.stack.poll_at().filter(|&t| t <= end) {
            if t > self.now {
                self.now = t;
                stuck = 0;
            } else {
                stuck += 1;
                if stuck > 3 {
                    // A deadline the stack does not clear: step past it.
                    self.now = (self.now + ms(1)).min(end);
                    if self.now == end {
                        break;
                    }
                }
            }
            self.poll();
        }
        self.now = end;
        self.poll();
    }

    /// Advance in steps of `step` until the stack sends something, at most `limit`.
    /// Returns the time waited.
    pub fn advance_until_sent(&mut self, limit: Duration) -> Duration {
        let t0 = self.now;
        self.poll();
        while self.sent.is_empty() && self.now - t0 < limit {
            let next = self
                .stack
                .poll_at()
                .filter(|&t| t > self.now)
                .unwrap_or(t0 + limit)
                .min(t0 + limit);
            self.now = next;
            self.poll();
        }
        assert!(!self.sent.is_empty(), "nothing sent within {limit:?}");
        self.sent[0].at - t0
    }

    /// The next segment the stack sent (polling it first). Panics if there is none.
    pub fn recv(&mut self) -> Seg {
        self.poll();
        match self.sent.pop_front() {
            Some(s) => s,
            None => panic!(
                "expected a segment from the stack at {}, got none",
                self.now
            ),
        }
    }

    /// Nothing was sent (after a poll at the current time).
    #[track_caller]
    pub fn expect_none(&mut self) {
        self.poll();
        if let Some(s) = self.sent.front() {
            panic!("expected nothing from the stack, got {s:?}");
        }
    }

    /// Every segment sent and not yet read.
    pub fn drain(&mut self) -> Vec<Seg> {
        self.poll();
        self.sent.drain(..).collect()
    }

    /// Segments sent and not yet read.
    pub fn pending(&self) -> usize {
        self.sent.len()
    }

    // ---- connection set-up ----

    /// Listen on the stack's port with an accept queue of `backlog`.
    pub fn listen(&mut self, backlog: usize) -> TcpListenerHandle {
        self.stack
            .tcp_listen(Harness::local(), backlog)
            .expect("listen")
    }

    /// Passive open: listen, the test sends `syn`, the stack answers SYN-ACK, the test
    /// ACKs it, the application accepts. Returns the accepted connection (ESTABLISHED;
    /// the test's next sequence number is `syn.seq + 1`, the stack's is relative 1).
    /// With a timestamp in `syn`, later injected segments get timestamps (`auto_ts`).
    pub fn passive(&mut self, syn: Seg) -> TcpHandle {
        let l = self.listen(16);
        self.passive_on(l, syn)
    }

    /// [`passive`](Self::passive) on an existing listener.
    pub fn passive_on(&mut self, l: TcpListenerHandle, syn: Seg) -> TcpHandle {
        let seq = syn.seq;
        let ts = syn.ts.is_some();
        let sport = syn.sport;
        self.inject(syn.clone());
        let synack = expect!(self, flags: "S.", seq: 0, ack: seq.wrapping_add(1));
        let ack_ts = synack.ts.map(|(v, _)| (self.peer_tsval(), v));
        // The peer's window stays what its SYN said (scaled now, if it offered a shift).
        let win = syn.win >> syn.ws.unwrap_or(0).min(14);
        let mut ack = seg! {flags: ".", seq: seq.wrapping_add(1), ack: 1, sport: sport, win: win};
        ack.ts = ack_ts;
        self.inject(ack);
        self.auto_ts = ts;
        let (c, peer) = self.stack.tcp_accept(l).expect("accept");
        let want = if sport == 0 { PEER_PORT } else { sport };
        assert_eq!(peer, SocketAddrV4::new(PEER_IP, want));
        self.expect_none();
        c
    }

    /// The simplest passive open: the test's SYN has MSS 1460 and no other option.
    pub fn passive_plain(&mut self) -> TcpHandle {
        self.passive(seg! {flags: "S", seq: PEER_ISN, mss: 1460})
    }

    /// Start an active open from the stack's port to the test's with `opts`; returns
    /// the handle, the stack's SYN still unread.
    pub fn connect_with(&mut self, opts: TcpSocketOptions) -> TcpHandle {
        self.stack
            .tcp_connect_with(Harness::remote(), Some(Harness::local()), opts, |_| true)
            .expect("connect")
    }

    pub fn connect(&mut self) -> TcpHandle {
        let opts = self.stack.tcp.config.socket;
        self.connect_with(opts)
    }

    /// Active open to ESTABLISHED: the stack's SYN, the test's SYN-ACK `synack` (its
    /// `ack` is filled in: relative 1), the stack's ACK.
    pub fn active(&mut self, mut synack: Seg) -> TcpHandle {
        let c = self.connect();
        let syn = expect!(self, flags: "S", seq: 0);
        synack.ack = 1;
        if synack.ts.is_some() {
            synack.ts = Some((synack.tsval(), syn.tsval()));
        }
        let ts = synack.ts.is_some();
        let seq = synack.seq;
        self.inject(synack);
        expect!(self, flags: ".", seq: 1, ack: seq.wrapping_add(1));
        self.auto_ts = ts;
        c
    }

    // ---- looking inside ----

    /// The control block of connection `c` (owned or not).
    pub fn tcb(&self, c: TcpHandle) -> &Tcb {
        &self.stack.tcp.conns.get(c.0).expect("live connection").tcb
    }

    /// The control block of `c` as Debug text, for comparing whole TCBs built with
    /// header prediction on and off: the switch itself is the one field allowed to
    /// differ, so it reads "on" in both.
    pub fn tcb_text(&self, c: TcpHandle) -> alloc::string::String {
        alloc::format!("{:?}", self.tcb(c))
            .replace("header_prediction: false", "header_prediction: true")
    }

    /// Give `seg` straight to connection `c`'s input ([`Tcb::input`]), with no poll
    /// and no output pass after it: what the input path alone leaves. The ring storage
    /// for data is supplied first, as `input_conn` does.
    pub fn input_to_tcb(&mut self, c: TcpHandle, seg: &Seg) {
        use crate::wire::tcp::{Packet, TcpRepr};
        let frame = self.frame_for(seg);
        // Ethernet (14) and an IPv4 header without options (20), then the segment.
        let packet = Packet::new_checked(&frame[34..]).unwrap();
        let (src, dst) = (*Harness::remote().ip(), *Harness::local().ip());
        let repr = TcpRepr::parse(&packet, src, dst, false).unwrap();
        let now = self.now;
        let tcp = &mut self.stack.tcp;
        let tcb = &mut tcp.conns.get_mut(c.0).unwrap().tcb;
        if tcb.rcv_buf.allocated() == 0 {
            tcp.bufs.supply(&mut tcb.rcv_buf);
        }
        let _ = tcb.input(now, &repr);
    }

    pub fn tcb_mut(&mut self, c: TcpHandle) -> &mut Tcb {
        &mut self
            .stack
            .tcp
            .conns
            .get_mut(c.0)
            .expect("live connection")
            .tcb
    }

    /// Read everything the connection has received.
    pub fn read_all(&mut self, c: TcpHandle) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = self.stack.tcp_recv(c, &mut buf) {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        out
    }

    /// Events reported since the last call, for connection `c`, or-ed together.
    pub fn events_of(&mut self, c: TcpHandle) -> u8 {
        let mut evs = Vec::new();
        self.stack.tcp_events(&mut evs);
        evs.iter()
            .filter(|e| e.socket == crate::tcp::TcpSocketRef::Connection(c))
            .fold(0, |acc, e| acc | e.events.0)
    }
}

impl Default for Harness {
    fn default() -> Self {
        Harness::new()
    }
}
