//! Hostile input on the receive path.
//!
//! Real frames captured from Linux (`stack/src/wire/testdata/README.md`: host A 10.99.0.1,
//! MAC 02:00:00:00:00:01; host B 10.99.0.2, MAC ..:02) are fed to a stack set up as host
//! B. Each mutant in the table below breaks one thing and must be dropped and counted
//! under its own reason, without a panic; the unmodified frames must still be accepted.
//! A property test throws random frames and random mutations at a stack with tight
//! limits and checks that the counters add up and memory stays within the limits. Last,
//! a capture written by the link must read back in tshark.

mod common;

use std::net::SocketAddrV4;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use common::{cidr, ip, mac, Net, Node};
use proptest::prelude::*;
use rumpnet::stack::device::{Device, Frame};
use rumpnet::stack::iface::{InterfaceConfig, Port};
use rumpnet::stack::link::{self, LinkConfig, LinkEnd, PcapCapture};
use rumpnet::stack::rand::Rand;
use rumpnet::stack::stats::{DropReason, Stats};
use rumpnet::stack::time::{Duration, Instant};
use rumpnet::stack::udp::{UdpHandle, UdpSocketOptions};
use rumpnet::stack::wire::arp::{self, Operation};
use rumpnet::stack::wire::ethernet::{self, EtherType};
use rumpnet::stack::wire::icmpv4::{self, Icmpv4Repr, Message};
use rumpnet::stack::wire::{ipv4, udp, EthernetAddress, IpProtocol, Ipv4Addr};
use rumpnet::stack::{Stack, StackConfig};

macro_rules! testdata {
    ($file:literal) => {
        include_bytes!(concat!("../stack/src/wire/testdata/", $file))
    };
}

const ARP_REQUEST: &[u8] = testdata!("arp_request.bin");
const ARP_REPLY: &[u8] = testdata!("arp_reply.bin");
const UDP: &[u8] = testdata!("udp_datagram.bin");
const FRAG_FIRST: &[u8] = testdata!("udp_frag_first.bin");
const FRAG_MIDDLE: &[u8] = testdata!("udp_frag_middle.bin");
const FRAG_LAST: &[u8] = testdata!("udp_frag_last.bin");
const PORT_UNREACHABLE: &[u8] = testdata!("icmp_port_unreachable.bin");
const ECHO_REQUEST: &[u8] = testdata!("icmp_echo_request.bin");
const ECHO_REPLY: &[u8] = testdata!("icmp_echo_reply.bin");
const OPTIONS: &[u8] = testdata!("ipv4_options.bin");
const OPTIONS_REPLY: &[u8] = testdata!("ipv4_options_reply.bin");
const VLAN_ECHO: &[u8] = testdata!("vlan_icmp_echo_request.bin");
const TCP_SYN: &[u8] = testdata!("tcp_syn.bin");
const TCP_DATA: &[u8] = testdata!("tcp_data.bin");

/// Every capture, as bases for the random mutations.
const REAL: &[&[u8]] = &[
    ARP_REQUEST,
    ARP_REPLY,
    UDP,
    FRAG_FIRST,
    FRAG_MIDDLE,
    FRAG_LAST,
    PORT_UNREACHABLE,
    ECHO_REQUEST,
    ECHO_REPLY,
    OPTIONS,
    OPTIONS_REPLY,
    VLAN_ECHO,
    TCP_SYN,
    TCP_DATA,
];

const ETH: usize = ethernet::HEADER_LEN;
const A_IP: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);
const B_IP: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 2);

// ---- host B over an in-memory link ----

/// A stack with one interface, driven by hand: frames are injected into its end of the
/// link, and what it sends is read from the other end (`peer`).
struct Host {
    stack: Stack,
    ports: Vec<Port<LinkEnd>>,
    peer: LinkEnd,
    sock: UdpHandle,
    now: Instant,
}

impl Host {
    /// Host B of the captures: 10.99.0.2/24, MAC 02:00:00:00:00:02, UDP socket on 7777.
    fn b(config: StackConfig) -> Host {
        let iface = InterfaceConfig::new(mac(2), cidr("10.99.0.2/24"));
        Host::with(config, iface, "10.99.0.2:7777", LinkConfig::default())
    }

    fn with(config: StackConfig, iface: InterfaceConfig, bind: &str, wire: LinkConfig) -> Host {
        let (end, peer) = link::pair(wire);
        let mut stack = Stack::new(config, Rand::from_u64(7));
        stack.add_interface(iface).expect("interface");
        let sock = stack.udp_bind(bind.parse().expect("addr")).expect("bind");
        let mut host = Host {
            stack,
            ports: vec![Port::new(end)],
            peer,
            sock,
            now: Instant::from_secs(1),
        };
        // The first poll announces the address (gratuitous ARP): keep it out of the way.
        host.poll();
        host.sent();
        host
    }

    /// One poll; returns the frames received.
    fn poll(&mut self) -> usize {
        self.ports[0].device_mut().set_now(self.now);
        self.peer.set_now(self.now);
        self.stack.poll(self.now, &mut self.ports).rx_frames
    }

    /// Inject `frames` and poll until the stack has received them all.
    fn feed<F: AsRef<[u8]>>(&mut self, frames: &[F]) {
        for f in frames {
            self.ports[0].device_mut().inject(f.as_ref());
        }
        let mut received = 0;
        while received < frames.len() {
            let n = self.poll();
            assert!(n > 0, "injected frames not received");
            received += n;
        }
    }

    /// What the stack put on the wire since the last call.
    fn sent(&mut self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut burst = Vec::new();
        while self.peer.rx_burst(0, &mut burst, 64) > 0 {
            out.extend(burst.drain(..).map(|f| f.data().to_vec()));
        }
        out
    }

    /// The next datagram on the UDP socket.
    fn recv(&mut self) -> Option<(Vec<u8>, SocketAddrV4)> {
        let mut buf = vec![0u8; 70_000];
        let (n, from) = self.stack.udp_recv_from(self.sock, &mut buf).ok()?;
        buf.truncate(n);
        Some((buf, from))
    }
}

// ---- mutations ----

fn mutate(base: &[u8], edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut f = base.to_vec();
    edit(&mut f);
    f
}

fn cut(base: &[u8], len: usize) -> Vec<u8> {
    base[..len].to_vec()
}

fn eth(f: &mut [u8]) -> ethernet::Frame<&mut [u8]> {
    ethernet::Frame::new_unchecked(f)
}

/// The IPv4 header of an untagged frame.
fn ip_hdr(f: &mut [u8]) -> ipv4::Packet<&mut [u8]> {
    ipv4::Packet::new_unchecked(&mut f[ETH..])
}

fn arp_pkt(f: &mut [u8]) -> arp::Packet<&mut [u8]> {
    arp::Packet::new_unchecked(&mut f[ETH..])
}

/// The IP payload of an untagged frame (header length to total length).
fn l4(f: &mut [u8]) -> &mut [u8] {
    let p = ipv4::Packet::new_unchecked(&f[ETH..]);
    let (start, end) = (ETH + p.header_len(), ETH + usize::from(p.total_len()));
    &mut f[start..end]
}

fn udp_pkt(f: &mut [u8]) -> udp::Packet<&mut [u8]> {
    udp::Packet::new_unchecked(l4(f))
}

fn icmp_pkt(f: &mut [u8]) -> icmpv4::Packet<&mut [u8]> {
    icmpv4::Packet::new_unchecked(l4(f))
}

fn fix_ip(f: &mut [u8]) {
    ip_hdr(f).fill_checksum();
}

fn fix_udp(f: &mut [u8]) {
    let p = ipv4::Packet::new_unchecked(&f[ETH..]);
    let (src, dst) = (p.src_addr(), p.dst_addr());
    udp_pkt(f).fill_checksum(src, dst);
}

fn fix_icmp(f: &mut [u8]) {
    icmp_pkt(f).fill_checksum();
}

/// Set the IP total length, cut the frame to it (when shorter) and redo the header
/// checksum, so the packet is consistent and only its payload is short.
fn set_ip_len(f: &mut Vec<u8>, total: u16) {
    ip_hdr(f).set_total_len(total);
    f.truncate(ETH + usize::from(total));
    fix_ip(f);
}

/// A header field changed with the checksum redone.
fn with_ip(base: &[u8], edit: impl FnOnce(&mut ipv4::Packet<&mut [u8]>)) -> Vec<u8> {
    mutate(base, |f| {
        edit(&mut ip_hdr(f));
        fix_ip(f);
    })
}

/// A fragment moved to `offset` bytes (MF unchanged).
fn at_offset(base: &[u8], offset: u16) -> Vec<u8> {
    with_ip(base, |p| p.set_frag_offset(offset))
}

// ---- the table ----

/// One malformed input: its frames are injected into a fresh host B, and `reason` must
/// go up by `count` and all drops by `total`.
struct Row {
    name: &'static str,
    frames: Vec<Vec<u8>>,
    reason: DropReason,
    count: u64,
    total: u64,
    /// Why a row counts more than one drop.
    why: &'static str,
    /// Datagrams the UDP socket receives (frames of the row that are fine).
    delivers: usize,
    config: fn(&mut StackConfig),
}

fn row(name: &'static str, frames: Vec<Vec<u8>>, reason: DropReason) -> Row {
    Row {
        name,
        frames,
        reason,
        count: 1,
        total: 1,
        why: "",
        delivers: 0,
        config: |_| {},
    }
}

impl Row {
    fn counts(self, count: u64, total: u64, why: &'static str) -> Row {
        Row {
            count,
            total,
            why,
            ..self
        }
    }

    fn config(self, config: fn(&mut StackConfig)) -> Row {
        Row { config, ..self }
    }

    fn delivers(self, delivers: usize) -> Row {
        Row { delivers, ..self }
    }
}

fn rows() -> Vec<Row> {
    use DropReason::*;
    vec![
        // Ethernet.
        row("empty frame", vec![vec![]], EthTruncated),
        row(
            "ethernet header cut at 13",
            vec![cut(UDP, 13)],
            EthTruncated,
        ),
        row(
            "802.1Q tag announced, frame cut at 16",
            vec![cut(VLAN_ECHO, 16)],
            EthTruncated,
        ),
        row(
            "unicast to another MAC",
            vec![mutate(UDP, |f| {
                eth(f).set_dst_addr(EthernetAddress([2, 0, 0, 0, 0, 3]))
            })],
            EthNotForUs,
        ),
        row(
            "our own MAC as source",
            vec![mutate(UDP, |f| eth(f).set_src_addr(mac(2)))],
            EthLooped,
        ),
        row(
            "the real ARP reply B sent, looped back",
            vec![ARP_REPLY.to_vec()],
            EthLooped,
        ),
        row(
            "ethertype IPv6",
            vec![mutate(UDP, |f| eth(f).set_outer_ethertype(EtherType::Ipv6))],
            EthUnknownType,
        ),
        row(
            "ethertype 0x0000 (an 802.3 length)",
            vec![mutate(UDP, |f| {
                eth(f).set_outer_ethertype(EtherType::Unknown(0))
            })],
            EthUnknownType,
        ),
        row(
            "the real VID 42 frame on an untagged interface",
            vec![VLAN_ECHO.to_vec()],
            VlanMismatch,
        ),
        // ARP.
        row(
            "ARP cut at 7 bytes",
            vec![cut(ARP_REQUEST, ETH + 7)],
            ArpMalformed,
        ),
        row(
            "ARP cut inside the target address",
            vec![cut(ARP_REQUEST, ETH + 27)],
            ArpMalformed,
        ),
        row(
            "ARP hlen 7: addresses run past the packet",
            vec![mutate(ARP_REQUEST, |f| arp_pkt(f).set_hardware_len(7))],
            ArpMalformed,
        ),
        row(
            "ARP hlen 255",
            vec![mutate(ARP_REQUEST, |f| arp_pkt(f).set_hardware_len(255))],
            ArpMalformed,
        ),
        row(
            "ARP plen 16",
            vec![mutate(ARP_REQUEST, |f| arp_pkt(f).set_protocol_len(16))],
            ArpMalformed,
        ),
        row(
            "ARP hlen 5: fits, but is not Ethernet",
            vec![mutate(ARP_REQUEST, |f| arp_pkt(f).set_hardware_len(5))],
            ArpUnsupported,
        ),
        row(
            "ARP hardware type 6 (IEEE 802)",
            vec![mutate(ARP_REQUEST, |f| arp_pkt(f).set_hardware_type(6))],
            ArpUnsupported,
        ),
        row(
            "ARP protocol type IPv6",
            vec![mutate(ARP_REQUEST, |f| {
                arp_pkt(f).set_protocol_type(EtherType::Ipv6)
            })],
            ArpUnsupported,
        ),
        row(
            "ARP operation 3 (RARP request)",
            vec![mutate(ARP_REQUEST, |f| {
                arp_pkt(f).set_operation(Operation::Unknown(3))
            })],
            ArpUnsupported,
        ),
        row(
            "ARP sender MAC broadcast",
            vec![mutate(ARP_REQUEST, |f| {
                arp_pkt(f).set_source_hardware_addr(&[0xff; 6])
            })],
            ArpBadSender,
        ),
        row(
            "ARP sender MAC multicast",
            vec![mutate(ARP_REQUEST, |f| {
                arp_pkt(f).set_source_hardware_addr(&[1, 0, 0x5e, 0, 0, 1])
            })],
            ArpBadSender,
        ),
        row(
            "ARP sender IP 255.255.255.255",
            vec![mutate(ARP_REQUEST, |f| {
                arp_pkt(f).set_source_protocol_addr(&[255; 4])
            })],
            ArpBadSender,
        ),
        row(
            "ARP sender IP 224.0.0.1",
            vec![mutate(ARP_REQUEST, |f| {
                arp_pkt(f).set_source_protocol_addr(&[224, 0, 0, 1])
            })],
            ArpBadSender,
        ),
        row(
            "ARP sender claims our address",
            vec![mutate(ARP_REQUEST, |f| {
                arp_pkt(f).set_source_protocol_addr(&B_IP.octets())
            })],
            ArpAddressConflict,
        ),
        // IPv4 header.
        row("IPv4 cut at 0 bytes", vec![cut(UDP, ETH)], Ipv4Truncated),
        row(
            "IPv4 cut at 19 bytes",
            vec![cut(UDP, ETH + 19)],
            Ipv4Truncated,
        ),
        row(
            "cut at 20+7 bytes, total length intact",
            vec![cut(UDP, ETH + 20 + 7)],
            Ipv4Truncated,
        ),
        row(
            "last payload byte missing",
            vec![cut(UDP, UDP.len() - 1)],
            Ipv4Truncated,
        ),
        row(
            "version 6",
            vec![with_ip(UDP, |p| p.set_version(6))],
            Ipv4BadVersion,
        ),
        row(
            "version 0",
            vec![with_ip(UDP, |p| p.set_version(0))],
            Ipv4BadVersion,
        ),
        row(
            "IHL 4",
            vec![mutate(UDP, |f| ip_hdr(f).set_header_len(16))],
            Ipv4BadHeaderLength,
        ),
        row(
            "IHL 0",
            vec![mutate(UDP, |f| ip_hdr(f).set_header_len(0))],
            Ipv4BadHeaderLength,
        ),
        row(
            "IHL 15 on a 45-byte packet (header past the packet)",
            vec![mutate(UDP, |f| ip_hdr(f).set_header_len(60))],
            Ipv4Truncated,
        ),
        row(
            "IHL 6: the UDP ports read as an option of length 64",
            vec![with_ip(UDP, |p| p.set_header_len(24))],
            Ipv4BadOptions,
        ),
        row(
            "record-route option of length 0",
            vec![mutate(OPTIONS, |f| {
                f[ETH + 21] = 0;
                fix_ip(f)
            })],
            Ipv4BadOptions,
        ),
        row(
            "record-route option running past the header",
            vec![mutate(OPTIONS, |f| {
                f[ETH + 21] = 41;
                fix_ip(f)
            })],
            Ipv4BadOptions,
        ),
        row(
            "total length 19, below the header",
            vec![with_ip(UDP, |p| p.set_total_len(19))],
            Ipv4BadLength,
        ),
        row(
            "total length 0",
            vec![with_ip(UDP, |p| p.set_total_len(0))],
            Ipv4BadLength,
        ),
        row(
            "total length one past the frame",
            vec![with_ip(UDP, |p| p.set_total_len(46))],
            Ipv4Truncated,
        ),
        row(
            "total length 65535",
            vec![with_ip(UDP, |p| p.set_total_len(65535))],
            Ipv4Truncated,
        ),
        row(
            "header checksum off by one",
            vec![mutate(UDP, |f| f[ETH + 11] ^= 1)],
            Ipv4BadChecksum,
        ),
        row(
            "header checksum zero",
            vec![mutate(UDP, |f| ip_hdr(f).set_checksum(0))],
            Ipv4BadChecksum,
        ),
        row(
            "TTL changed, checksum not",
            vec![mutate(UDP, |f| ip_hdr(f).set_ttl(1))],
            Ipv4BadChecksum,
        ),
        row(
            "options header checksum off by one",
            vec![mutate(OPTIONS, |f| f[ETH + 10] ^= 0x80)],
            Ipv4BadChecksum,
        ),
        row(
            "martian source 127.0.0.1",
            vec![with_ip(UDP, |p| p.set_src_addr(Ipv4Addr::LOCALHOST))],
            Ipv4MartianSource,
        ),
        row(
            "martian source 224.0.0.5",
            vec![with_ip(UDP, |p| {
                p.set_src_addr(Ipv4Addr::new(224, 0, 0, 5))
            })],
            Ipv4MartianSource,
        ),
        row(
            "martian source 255.255.255.255",
            vec![with_ip(UDP, |p| p.set_src_addr(Ipv4Addr::BROADCAST))],
            Ipv4MartianSource,
        ),
        row(
            "martian source: our own address",
            vec![with_ip(ECHO_REQUEST, |p| p.set_src_addr(B_IP))],
            Ipv4MartianSource,
        ),
        row(
            "destination 10.99.0.3, forwarding off",
            vec![with_ip(UDP, |p| {
                p.set_dst_addr(Ipv4Addr::new(10, 99, 0, 3))
            })],
            Ipv4NotForUs,
        ),
        row(
            "destination 224.0.0.251 (no group joined)",
            vec![with_ip(UDP, |p| {
                p.set_dst_addr(Ipv4Addr::new(224, 0, 0, 251))
            })],
            Ipv4NotForUs,
        ),
        row(
            "protocol 47 (GRE)",
            vec![with_ip(UDP, |p| p.set_protocol(IpProtocol::from(47)))],
            Ipv4UnknownProtocol,
        )
        .counts(
            1,
            1,
            "the protocol unreachable waits for ARP, nothing more is dropped",
        ),
        // UDP.
        row(
            "UDP cut at 7 bytes (IP total length 27)",
            vec![mutate(UDP, |f| set_ip_len(f, 27))],
            UdpTruncated,
        ),
        row(
            "UDP with no bytes at all (IP total length 20)",
            vec![mutate(UDP, |f| set_ip_len(f, 20))],
            UdpTruncated,
        ),
        row(
            "UDP length 7",
            vec![mutate(UDP, |f| udp_pkt(f).set_len(7))],
            UdpBadLength,
        ),
        row(
            "UDP length 0",
            vec![mutate(UDP, |f| udp_pkt(f).set_len(0))],
            UdpBadLength,
        ),
        row(
            "UDP length 26, one past the IP payload",
            vec![mutate(UDP, |f| udp_pkt(f).set_len(26))],
            UdpTruncated,
        ),
        row(
            "UDP length 65535",
            vec![mutate(UDP, |f| udp_pkt(f).set_len(65535))],
            UdpTruncated,
        ),
        row(
            "UDP checksum off by one",
            vec![mutate(UDP, |f| f[ETH + 20 + 7] ^= 1)],
            UdpBadChecksum,
        ),
        row(
            "UDP payload bit flipped",
            vec![mutate(UDP, |f| f[ETH + 20 + 8 + 3] ^= 0x20)],
            UdpBadChecksum,
        ),
        row(
            "UDP source address changed (pseudo-header), IP checksum redone",
            vec![with_ip(UDP, |p| {
                p.set_src_addr(Ipv4Addr::new(10, 99, 0, 9))
            })],
            UdpBadChecksum,
        ),
        row(
            "UDP destination port 0",
            vec![mutate(UDP, |f| {
                udp_pkt(f).set_dst_port(0);
                fix_udp(f)
            })],
            UdpMalformed,
        ),
        row(
            "UDP to closed port 9",
            vec![mutate(UDP, |f| {
                udp_pkt(f).set_dst_port(9);
                fix_udp(f)
            })],
            UdpNoSocket,
        )
        .counts(
            1,
            1,
            "the port unreachable waits for ARP, nothing more is dropped",
        ),
        // ICMP.
        row(
            "ICMP checksum off by one",
            vec![mutate(ECHO_REQUEST, |f| f[ETH + 20 + 3] ^= 1)],
            IcmpBadChecksum,
        ),
        row(
            "echo data bit flipped",
            vec![mutate(ECHO_REQUEST, |f| f[ETH + 20 + 30] ^= 4)],
            IcmpBadChecksum,
        ),
        row(
            "ICMP cut at 7 bytes (IP total length 27)",
            vec![mutate(ECHO_REQUEST, |f| set_ip_len(f, 27))],
            IcmpTruncated,
        ),
        row(
            "ICMP with no bytes (IP total length 20)",
            vec![mutate(ECHO_REQUEST, |f| set_ip_len(f, 20))],
            IcmpTruncated,
        ),
        row(
            "destination unreachable quoting 20 bytes (< 28)",
            vec![mutate(ECHO_REQUEST, |f| {
                set_ip_len(f, 20 + 8 + 20);
                icmp_pkt(f).set_msg_type(Message::DstUnreachable);
                icmp_pkt(f).set_msg_code(3);
                fix_icmp(f)
            })],
            IcmpTruncated,
        ),
        row(
            "ICMP timestamp request (type 13)",
            vec![mutate(ECHO_REQUEST, |f| {
                icmp_pkt(f).set_msg_type(Message::Other(13));
                fix_icmp(f)
            })],
            IcmpUnsupported,
        ),
        row(
            "echo reply nobody asked for",
            vec![mutate(ECHO_REQUEST, |f| {
                icmp_pkt(f).set_msg_type(Message::EchoReply);
                fix_icmp(f)
            })],
            IcmpNoSocket,
        ),
        row(
            "echo request to the subnet broadcast",
            vec![with_ip(ECHO_REQUEST, |p| {
                p.set_dst_addr(Ipv4Addr::new(10, 99, 0, 255))
            })],
            IcmpBroadcastEcho,
        ),
        row(
            "echo request to 255.255.255.255, broadcast MAC",
            vec![mutate(ECHO_REQUEST, |f| {
                eth(f).set_dst_addr(EthernetAddress::BROADCAST);
                ip_hdr(f).set_dst_addr(Ipv4Addr::BROADCAST);
                fix_ip(f)
            })],
            IcmpBroadcastEcho,
        ),
        // Fragments.
        row(
            "first fragment twice",
            vec![FRAG_FIRST.to_vec(), FRAG_FIRST.to_vec()],
            FragDuplicate,
        ),
        row(
            "middle fragment moved 8 bytes into the first",
            vec![FRAG_FIRST.to_vec(), at_offset(FRAG_MIDDLE, 1472)],
            FragOverlap,
        )
        .counts(
            2,
            2,
            "the stored first fragment is discarded with the datagram",
        ),
        row(
            "first fragment moved 8 bytes into the stored middle one",
            vec![FRAG_MIDDLE.to_vec(), at_offset(FRAG_FIRST, 8)],
            FragOverlap,
        )
        .counts(
            2,
            2,
            "the stored middle fragment is discarded with the datagram",
        ),
        row(
            "last fragment moved 8 bytes into the middle one",
            vec![FRAG_MIDDLE.to_vec(), at_offset(FRAG_LAST, 2952)],
            FragOverlap,
        )
        .counts(
            2,
            2,
            "the stored middle fragment is discarded with the datagram",
        ),
        row(
            "a second last fragment with another end",
            vec![FRAG_LAST.to_vec(), at_offset(FRAG_LAST, 2968)],
            FragOverlap,
        )
        .counts(
            2,
            2,
            "the stored last fragment is discarded with the datagram",
        ),
        row(
            "a fragment past the end the last one set",
            vec![FRAG_LAST.to_vec(), at_offset(FRAG_MIDDLE, 2960)],
            FragOverlap,
        )
        .counts(
            2,
            2,
            "the stored last fragment is discarded with the datagram",
        ),
        row(
            "last fragment at offset 65528: ends at 65576",
            vec![at_offset(FRAG_LAST, 65528)],
            FragOversize,
        ),
        row(
            "1480-byte fragment at offset 64080: ends at 65560",
            vec![at_offset(FRAG_MIDDLE, 64080)],
            FragOversize,
        ),
        row(
            "an oversize fragment of a datagram in progress",
            vec![FRAG_FIRST.to_vec(), at_offset(FRAG_LAST, 65528)],
            FragOversize,
        )
        .counts(
            2,
            2,
            "the stored first fragment is discarded with the datagram",
        ),
        row(
            "non-final fragment of 1476 bytes",
            vec![mutate(FRAG_MIDDLE, |f| set_ip_len(f, 20 + 1476))],
            FragBadLength,
        ),
        row(
            "empty non-final fragment",
            vec![mutate(FRAG_MIDDLE, |f| set_ip_len(f, 20))],
            FragBadLength,
        ),
        row(
            "the real 17-byte datagram with MF set",
            vec![with_ip(UDP, |p| p.set_more_frags(true))],
            FragBadLength,
        ),
        // Limits (each row with its own configuration).
        row(
            "a second datagram with max_datagrams 1",
            vec![
                FRAG_FIRST.to_vec(),
                with_ip(FRAG_FIRST, |p| p.set_ident(0x1111)),
            ],
            FragNoBuffer,
        )
        .config(|c| c.reassembly.max_datagrams = 1),
        row(
            "a fragment past max_bytes 2000",
            vec![FRAG_FIRST.to_vec(), FRAG_MIDDLE.to_vec()],
            FragNoBuffer,
        )
        .config(|c| c.reassembly.max_bytes = 2000),
        row(
            "a third fragment with max_fragments 2",
            vec![
                FRAG_FIRST.to_vec(),
                FRAG_MIDDLE.to_vec(),
                FRAG_LAST.to_vec(),
            ],
            FragTooMany,
        )
        .counts(
            3,
            3,
            "the two stored fragments are discarded with the datagram",
        )
        .config(|c| c.reassembly.max_fragments = 2),
        row(
            "a datagram larger than max_datagram_len 2000",
            vec![FRAG_MIDDLE.to_vec()],
            FragOversize,
        )
        .config(|c| c.reassembly.max_datagram_len = 2000),
        row(
            "a second datagram on a socket queue of one",
            vec![UDP.to_vec(), UDP.to_vec()],
            UdpRxQueueFull,
        )
        .delivers(1)
        .config(|c| c.udp.socket.rx_datagrams = 1),
        row(
            "a second port unreachable over an ICMP burst of one",
            vec![
                mutate(UDP, |f| {
                    udp_pkt(f).set_dst_port(9);
                    fix_udp(f)
                }),
                mutate(UDP, |f| {
                    udp_pkt(f).set_dst_port(10);
                    fix_udp(f)
                }),
            ],
            IcmpRateLimited,
        )
        .counts(1, 3, "both datagrams are also UdpNoSocket")
        .config(|c| c.icmp_error_burst = 1),
        row(
            "a second port unreachable, one packet may wait for ARP",
            vec![
                mutate(UDP, |f| {
                    udp_pkt(f).set_dst_port(9);
                    fix_udp(f)
                }),
                mutate(UDP, |f| {
                    udp_pkt(f).set_dst_port(10);
                    fix_udp(f)
                }),
            ],
            ArpQueueFull,
        )
        .counts(1, 3, "both datagrams are also UdpNoSocket")
        .config(|c| c.neighbor.pending_per_neighbor = 1),
        row(
            "port unreachables to two unresolved senders, cache of one",
            vec![
                mutate(UDP, |f| {
                    udp_pkt(f).set_dst_port(9);
                    fix_udp(f)
                }),
                mutate(UDP, |f| {
                    ip_hdr(f).set_src_addr(Ipv4Addr::new(10, 99, 0, 3));
                    fix_ip(f);
                    udp_pkt(f).set_dst_port(9);
                    fix_udp(f)
                }),
            ],
            NeighborCacheFull,
        )
        .counts(1, 3, "both datagrams are also UdpNoSocket")
        .config(|c| c.neighbor.capacity = 1),
    ]
}

fn stats_diff(before: &Stats, after: &Stats) -> Vec<(DropReason, u64)> {
    DropReason::ALL
        .iter()
        .map(|&r| (r, after.dropped(r) - before.dropped(r)))
        .filter(|&(_, n)| n != 0)
        .collect()
}

#[test]
fn malformed_frames_are_dropped_with_their_reason() {
    let mut failures = Vec::new();
    let rows = rows();
    for row in &rows {
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            let mut config = StackConfig::default();
            (row.config)(&mut config);
            let mut host = Host::b(config);
            let before = host.stack.stats().clone();
            host.feed(&row.frames);
            let after = host.stack.stats().clone();
            let mut wrong = Vec::new();
            if after.rx_frames - before.rx_frames != row.frames.len() as u64 {
                wrong.push(format!("rx_frames +{}", after.rx_frames - before.rx_frames));
            }
            let got = after.dropped(row.reason) - before.dropped(row.reason);
            let total = after.total_drops() - before.total_drops();
            if got != row.count || total != row.total {
                wrong.push(format!(
                    "want {:?} +{} ({} in all{}{}), got {:?}",
                    row.reason,
                    row.count,
                    row.total,
                    if row.why.is_empty() { "" } else { ": " },
                    row.why,
                    stats_diff(&before, &after),
                ));
            }
            let delivered = std::iter::from_fn(|| host.recv()).count();
            if delivered != row.delivers {
                wrong.push(format!("{delivered} datagrams delivered"));
            }
            wrong
        }));
        match outcome {
            Ok(wrong) if wrong.is_empty() => {}
            Ok(wrong) => failures.push(format!("{}: {}", row.name, wrong.join("; "))),
            Err(_) => failures.push(format!("{}: PANICKED", row.name)),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
}

// ---- the real frames are accepted ----

/// The 3000-byte payload the fragments carry.
fn frag_payload() -> Vec<u8> {
    (0..3000u32).map(|i| (i & 0xff) as u8).collect()
}

#[test]
fn real_udp_datagram_is_delivered() {
    let mut host = Host::b(StackConfig::default());
    host.feed(&[UDP]);
    let (data, from) = host.recv().expect("datagram delivered");
    assert_eq!(data, b"rumpnet udp test\n");
    assert_eq!(from, SocketAddrV4::new(A_IP, 40000));
    let s = host.stack.stats();
    assert_eq!((s.udp_rx, s.ipv4_delivered, s.total_drops()), (1, 1, 0));
}

#[test]
fn real_fragments_reassemble_in_every_order_and_with_duplicates() {
    let frags = [FRAG_FIRST, FRAG_MIDDLE, FRAG_LAST];
    let orders = [
        [0, 1, 2],
        [0, 2, 1],
        [1, 0, 2],
        [1, 2, 0],
        [2, 0, 1],
        [2, 1, 0],
    ];
    for order in orders {
        // Plain, then with the first two sent twice before the datagram completes.
        let plain: Vec<&[u8]> = order.iter().map(|&i| frags[i]).collect();
        let dup: Vec<&[u8]> = [order[0], order[0], order[1], order[1], order[2]]
            .iter()
            .map(|&i| frags[i])
            .collect();
        for (frames, dups) in [(plain, 0), (dup, 2)] {
            let mut host = Host::b(StackConfig::default());
            host.feed(&frames);
            let (data, from) = host
                .recv()
                .unwrap_or_else(|| panic!("order {order:?} dups {dups}: nothing delivered"));
            assert_eq!(data, frag_payload(), "order {order:?}");
            assert_eq!(from, SocketAddrV4::new(A_IP, 40000));
            assert!(host.recv().is_none(), "delivered once");
            let s = host.stack.stats();
            assert_eq!(s.frag_reassembled, 1);
            assert_eq!(s.dropped(DropReason::FragDuplicate), dups);
            assert_eq!(s.total_drops(), dups, "order {order:?}: {s}");
            assert_eq!(host.stack.reassembly_bytes(), 0);
            assert_eq!(host.stack.reassembly_in_progress(), 0);
        }
    }

    // A copy arriving after the datagram completed starts a new one, which never
    // completes and is let go at the timeout.
    let mut host = Host::b(StackConfig::default());
    host.feed(&[FRAG_LAST, FRAG_FIRST, FRAG_MIDDLE, FRAG_FIRST]);
    assert_eq!(host.recv().expect("delivered").0, frag_payload());
    assert_eq!(host.stack.reassembly_in_progress(), 1);
    assert_eq!(host.stack.reassembly_bytes(), 1480);
    host.now += Duration::from_secs(29);
    host.poll();
    assert_eq!(host.stack.reassembly_in_progress(), 1);
    host.now += Duration::from_secs(1);
    host.poll();
    assert_eq!(host.stack.reassembly_in_progress(), 0);
    assert_eq!(host.stack.reassembly_bytes(), 0);
    let s = host.stack.stats();
    assert_eq!(s.dropped(DropReason::FragTimeout), 1);
    assert_eq!(s.total_drops(), 1, "{s}");
}

/// The IPv4 header and ICMP message of a frame B sent (`vlan`: the tag it must carry).
fn parse_icmp(frame: &[u8], vlan: Option<u16>) -> (ipv4::Ipv4Repr, Vec<u8>) {
    let f = ethernet::Frame::new_checked(frame).expect("ethernet");
    assert_eq!(f.src_addr(), mac(2));
    assert_eq!(f.dst_addr(), mac(1));
    assert_eq!(f.vlan().map(|t| t.vid), vlan);
    assert_eq!(f.ethertype(), EtherType::Ipv4);
    let p = ipv4::Packet::new_checked(f.payload()).expect("ipv4");
    let repr = ipv4::Ipv4Repr::parse(&p, true).expect("ipv4 header and checksum");
    assert_eq!(repr.protocol, IpProtocol::Icmp);
    (repr, p.payload().to_vec())
}

/// The echo reply B sent: from `from` to `to`, the echo of `ident`/`seq`/`data`.
fn assert_echo_reply(icmp: &[u8], ident: u16, seq: u16, data: &[u8]) {
    let p = icmpv4::Packet::new_checked(icmp).expect("icmp");
    match Icmpv4Repr::parse(&p, true).expect("icmp checksum") {
        Icmpv4Repr::EchoReply {
            ident: i,
            seq_no,
            data: d,
        } => assert_eq!((i, seq_no, d), (ident, seq, data)),
        other => panic!("not an echo reply: {other:?}"),
    }
}

#[test]
fn real_echo_requests_are_answered() {
    let echo_data: Vec<u8> = (0x10..0x48).collect();
    // (request, Linux's reply to it, sequence number)
    for (request, linux_reply, seq) in [(ECHO_REQUEST, ECHO_REPLY, 1), (OPTIONS, OPTIONS_REPLY, 3)]
    {
        let mut host = Host::b(StackConfig::default());
        // A resolves B first, as in the capture; B learns A from it.
        host.feed(&[ARP_REQUEST]);
        let sent = host.sent();
        assert_eq!(
            sent,
            vec![ARP_REPLY.to_vec()],
            "B's ARP reply is Linux's, byte for byte"
        );

        host.feed(&[request]);
        let sent = host.sent();
        assert_eq!(sent.len(), 1, "one echo reply, no ARP needed");
        let (ip, icmp) = parse_icmp(&sent[0], None);
        assert_eq!((ip.src_addr, ip.dst_addr, ip.ttl), (B_IP, A_IP, 64));
        assert_echo_reply(&icmp, 0x1234, seq, &echo_data);
        // The ICMP message is the one Linux answered with (its IP header differs: ident,
        // DF, and the recorded route of the options echo).
        let linux = ipv4::Packet::new_checked(&linux_reply[ETH..]).expect("linux reply");
        assert_eq!(&icmp[..], linux.payload());
        let s = host.stack.stats();
        assert_eq!((s.icmp_echo_replies_tx, s.total_drops()), (1, 0), "{s}");
    }
}

#[test]
fn real_vlan_frame_is_answered_on_its_vlan() {
    let mut cfg = InterfaceConfig::new(mac(2), cidr("10.99.42.2/24"));
    cfg.vlan = Some(42);
    let mut host = Host::with(
        StackConfig::default(),
        cfg,
        "10.99.42.2:7777",
        LinkConfig::default(),
    );
    // A's ARP request, tagged and moved to 10.99.42.0/24.
    let mut arp = ARP_REQUEST[..12].to_vec();
    arp.extend_from_slice(&[0x81, 0x00, 0x00, 42]);
    arp.extend_from_slice(&ARP_REQUEST[12..]);
    {
        let mut p = arp::Packet::new_unchecked(&mut arp[ETH + 4..]);
        p.set_source_protocol_addr(&[10, 99, 42, 1]);
        p.set_target_protocol_addr(&[10, 99, 42, 2]);
    }
    host.feed(&[&arp[..]]);
    let sent = host.sent();
    assert_eq!(sent.len(), 1);
    let f = ethernet::Frame::new_checked(&sent[0][..]).expect("arp reply");
    assert_eq!(
        (f.vlan().map(|t| t.vid), f.ethertype()),
        (Some(42), EtherType::Arp)
    );

    host.feed(&[VLAN_ECHO]);
    let sent = host.sent();
    assert_eq!(sent.len(), 1, "{sent:?}");
    let (ip, icmp) = parse_icmp(&sent[0], Some(42));
    assert_eq!(
        (ip.src_addr, ip.dst_addr),
        (Ipv4Addr::new(10, 99, 42, 2), Ipv4Addr::new(10, 99, 42, 1))
    );
    let data: Vec<u8> = (0x10..0x48).collect();
    assert_echo_reply(&icmp, 0x1234, 2, &data);
    assert_eq!(host.stack.stats().total_drops(), 0);

    // Another VLAN, and no tag at all, are not this interface's.
    let vid43 = mutate(VLAN_ECHO, |f| f[15] = 43);
    host.feed(&[&vid43[..], ECHO_REQUEST]);
    assert_eq!(host.stack.stats().dropped(DropReason::VlanMismatch), 2);
    assert!(host.sent().is_empty());

    // And the untagged interface of host B drops the tagged frame (also in the table).
    let mut untagged = Host::b(StackConfig::default());
    untagged.feed(&[VLAN_ECHO]);
    assert_eq!(untagged.stack.stats().dropped(DropReason::VlanMismatch), 1);
    assert!(untagged.sent().is_empty());
}

// ---- random input ----

/// One frame of random input.
#[derive(Debug, Clone)]
enum Input {
    /// Random bytes.
    Raw(Vec<u8>),
    /// An Ethernet header to B with this EtherType, then random bytes.
    Body(u16, Vec<u8>),
    /// One of the three real fragments, with another IP ident: enough of them arrive
    /// to complete datagrams, and to fill the reassembly buffers.
    Fragment(usize, u16),
    /// A real frame, turned around if B sent it (`reflect`: MACs and IP addresses
    /// swapped, which keeps every checksum), with random bytes XORed in, another source
    /// in 10.99.0.0/24 and another IP ident (untagged IPv4 only), a new length, and the
    /// IP and transport checksums redone (`fix`) so the mutant gets past them.
    Mutant {
        base: usize,
        reflect: bool,
        flips: Vec<(usize, u8)>,
        src: Option<u8>,
        ident: Option<u16>,
        len: Option<usize>,
        fix: bool,
    },
}

impl Input {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Input::Raw(b) => b.clone(),
            Input::Body(ethertype, body) => {
                let mut f = Vec::with_capacity(ETH + body.len());
                f.extend_from_slice(&mac(2).0);
                f.extend_from_slice(&mac(1).0);
                f.extend_from_slice(&ethertype.to_be_bytes());
                f.extend_from_slice(body);
                f
            }
            Input::Fragment(k, ident) => {
                let base = [FRAG_FIRST, FRAG_MIDDLE, FRAG_LAST][*k];
                with_ip(base, |p| p.set_ident(0xde24 ^ ident))
            }
            Input::Mutant {
                base,
                reflect,
                flips,
                src,
                ident,
                len,
                fix,
            } => {
                let mut f = REAL[*base].to_vec();
                if *reflect && f[6..12] == mac(2).0 {
                    turn_around(&mut f);
                }
                for &(at, x) in flips {
                    let n = f.len();
                    f[at % n] ^= x;
                }
                let untagged_ipv4 = f.len() >= ETH + ipv4::HEADER_LEN && f[12..14] == [8, 0];
                if untagged_ipv4 {
                    if let Some(s) = src {
                        ip_hdr(&mut f).set_src_addr(Ipv4Addr::new(10, 99, 0, *s));
                    }
                    if let Some(id) = ident {
                        ip_hdr(&mut f).set_ident(0xde24 ^ id);
                    }
                }
                if let Some(len) = len {
                    // Shorter, or longer with zero padding.
                    f.resize(len % (f.len() + 64), 0);
                }
                if *fix {
                    fix_checksums(&mut f);
                }
                f
            }
        }
    }
}

/// Swap the MAC addresses of a frame B sent, and the IP addresses of an untagged IPv4
/// one, so that it comes from A. (The checksums still hold: a sum does not depend on
/// the order of its words.)
fn turn_around(f: &mut [u8]) {
    let (dst, src) = (eth(f).dst_addr(), eth(f).src_addr());
    eth(f).set_dst_addr(src);
    eth(f).set_src_addr(dst);
    if f[12..14] == [8, 0] {
        let p = ipv4::Packet::new_unchecked(&f[ETH..]);
        let (src, dst) = (p.src_addr(), p.dst_addr());
        ip_hdr(f).set_src_addr(dst);
        ip_hdr(f).set_dst_addr(src);
    }
}

/// Redo the checksums of an untagged IPv4 frame, as far as its lengths allow.
fn fix_checksums(f: &mut [u8]) {
    if f.len() < ETH + ipv4::HEADER_LEN || f[12..14] != [8, 0] {
        return;
    }
    let p = ipv4::Packet::new_unchecked(&f[ETH..]);
    let (hl, tl) = (p.header_len(), usize::from(p.total_len()));
    let whole = p.frag_offset() == 0 && !p.more_frags();
    let proto = p.protocol();
    if hl < ipv4::HEADER_LEN || ETH + hl > f.len() {
        return;
    }
    fix_ip(f);
    if !whole || tl < hl + 8 || ETH + tl > f.len() {
        return;
    }
    match proto {
        IpProtocol::Udp => {
            let n = usize::from(udp::Packet::new_unchecked(&l4(f)[..]).len());
            if (8..=tl - hl).contains(&n) {
                fix_udp(f);
            }
        }
        IpProtocol::Icmp => fix_icmp(f),
        _ => {}
    }
}

fn input() -> impl Strategy<Value = Input> {
    let flips = proptest::collection::vec((any::<usize>(), 1u8..), 0..3);
    prop_oneof![
        1 => proptest::collection::vec(any::<u8>(), 0..100).prop_map(Input::Raw),
        1 => (
            prop_oneof![Just(0x0800u16), Just(0x0806), Just(0x8100), any::<u16>()],
            proptest::collection::vec(any::<u8>(), 0..100),
        )
            .prop_map(|(t, b)| Input::Body(t, b)),
        2 => (0..3usize, 0u16..2).prop_map(|(k, ident)| Input::Fragment(k, ident)),
        6 => (
            0..REAL.len(),
            any::<bool>(),
            flips,
            proptest::option::of(1u8..8),
            proptest::option::of(0u16..4),
            proptest::option::weighted(0.3, any::<usize>()),
            any::<bool>(),
        )
            .prop_map(|(base, reflect, flips, src, ident, len, fix)| Input::Mutant {
                base,
                reflect,
                flips,
                src,
                ident,
                len,
                fix,
            }),
    ]
}

/// Time between two frames: mostly none, sometimes enough for timers to fire.
fn gap() -> impl Strategy<Value = u64> {
    prop_oneof![6 => 0u64..3, 1 => 500u64..40_000]
}

/// Tight limits, so that a few dozen frames reach them.
fn tight_config() -> StackConfig {
    let mut c = StackConfig::default();
    c.neighbor.capacity = 4;
    c.neighbor.pending_per_neighbor = 2;
    c.neighbor.pending_total = 5;
    c.reassembly.max_datagrams = 3;
    c.reassembly.max_bytes = 4000;
    c.reassembly.max_fragments = 4;
    c.udp.socket = UdpSocketOptions {
        rx_bytes: 4096,
        rx_datagrams: 4,
        ..UdpSocketOptions::default()
    };
    c.tx_backlog = 8;
    c.icmp_error_burst = 8;
    c
}

fn drops(s: &Stats, reasons: &[DropReason]) -> u64 {
    reasons.iter().map(|&r| s.dropped(r)).sum()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Whatever arrives: no panic, every frame is counted at each layer it reaches, and
    /// reassembly buffers, neighbour cache, ARP queue, socket queue and transmit
    /// backlog stay within their limits.
    #[test]
    fn random_frames_are_counted_and_memory_stays_bounded(
        inputs in proptest::collection::vec((input(), gap()), 1..64),
    ) {
        use DropReason::*;
        let config = tight_config();
        // A small ring that nobody drains most of the time: transmit backs up too.
        let wire = LinkConfig { capacity: 4, ..LinkConfig::default() };
        let iface = InterfaceConfig::new(mac(2), cidr("10.99.0.2/24"));
        let mut host = Host::with(config.clone(), iface, "10.99.0.2:7777", wire);
        let base = host.stack.stats().clone();
        let mut delivered = 0u64;
        for (k, (input, gap)) in inputs.iter().enumerate() {
            host.now += Duration::from_millis(*gap);
            host.feed(&[input.bytes()]);
            let s = &host.stack;
            prop_assert!(s.reassembly_bytes() <= config.reassembly.max_bytes);
            prop_assert!(s.reassembly_in_progress() <= config.reassembly.max_datagrams);
            prop_assert!(s.neighbor_count(0) <= config.neighbor.capacity);
            prop_assert!(s.neighbor_pending(0) <= config.neighbor.pending_total);
            let queued = s.udp_recv_queue_len(host.sock).unwrap();
            prop_assert!(queued <= config.udp.socket.rx_datagrams);
            prop_assert!(host.ports[0].tx_backlog() <= config.tx_backlog);
            if k % 8 == 7 {
                while host.recv().is_some() {
                    delivered += 1;
                }
                host.sent();
            }
        }
        while host.recv().is_some() {
            delivered += 1;
        }
        let s = host.stack.stats();
        prop_assert_eq!(s.rx_frames - base.rx_frames, inputs.len() as u64);
        // Each frame is dropped at the Ethernet layer or handed to ARP or IPv4.
        let eth = drops(s, &[EthTruncated, EthNotForUs, EthLooped, EthUnknownType, VlanMismatch]);
        prop_assert_eq!(s.rx_frames, eth + s.arp_rx + s.ipv4_rx, "{}", s);
        // Each IPv4 packet is dropped on its header, is a fragment, or is delivered
        // whole (delivered also counts the datagrams reassembly completed).
        let ip = drops(s, &[
            Ipv4Truncated, Ipv4BadVersion, Ipv4BadHeaderLength, Ipv4BadLength,
            Ipv4BadChecksum, Ipv4BadOptions, Ipv4MartianSource, Ipv4NotForUs,
        ]);
        prop_assert_eq!(s.ipv4_rx + s.frag_reassembled, ip + s.frag_rx + s.ipv4_delivered, "{}", s);
        // Each delivered datagram goes to ICMP, UDP or TCP, or is an unknown protocol.
        let udp_bad = drops(s, &[UdpTruncated, UdpBadLength, UdpBadChecksum, UdpMalformed]);
        let tcp_bad = drops(s, &[TcpBroadcast, TcpTruncated, TcpMalformed, TcpBadChecksum, TcpBadOption]);
        prop_assert_eq!(
            s.ipv4_delivered,
            s.icmp_rx + udp_bad + s.udp_rx + tcp_bad + s.tcp_rx + s.dropped(Ipv4UnknownProtocol),
            "{}", s
        );
        // Each well-formed UDP datagram is queued (and was received here) or dropped.
        prop_assert_eq!(
            s.udp_rx,
            delivered + s.dropped(UdpRxQueueFull) + s.dropped(UdpNoSocket),
            "{}", s
        );
        // And fragments: each is dropped (once), held, or part of a reassembled datagram.
        prop_assert!(s.frag_rx >= drops(s, &[
            FragOverlap, FragOversize, FragBadLength, FragTooMany, FragDuplicate, FragNoBuffer,
            FragTimeout,
        ]), "{}", s);
    }
}

// ---- the capture reads back in tshark ----

/// A file in the temp directory, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(test: &str) -> TempFile {
        let name = format!("rumpnet-{}-{test}.pcap", std::process::id());
        TempFile(std::env::temp_dir().join(name))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// tshark, if installed; without it the test is skipped, except on CI.
fn have_tshark() -> bool {
    match Command::new("tshark").arg("--version").output() {
        Ok(o) if o.status.success() => true,
        _ if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("tshark is required on CI (apt-get install tshark)")
        }
        _ => {
            eprintln!("skipped: tshark is not on PATH");
            false
        }
    }
}

#[test]
fn capture_of_ping_and_udp_reads_back_in_tshark() {
    if !have_tshark() {
        return;
    }
    let file = TempFile::new("capture_of_ping_and_udp_reads_back_in_tshark");
    let capture = Arc::new(PcapCapture::create(&file.0).expect("create capture"));
    let (a_end, b_end) = link::pair_with_capture(LinkConfig::default(), Arc::clone(&capture));
    let mut a = Node::new(StackConfig::default(), 1);
    a.attach(a_end, mac(1), "10.99.0.1/24");
    let mut b = Node::new(StackConfig::default(), 2);
    b.attach(b_end, mac(2), "10.99.0.2/24");
    let mut net = Net::new(vec![a, b]);
    net.run(Duration::from_millis(2));

    let h = net.node(0).stack.icmp_bind(0x1234).unwrap();
    let data: Vec<u8> = (0x10..0x48).collect();
    net.node(0)
        .stack
        .icmp_send_echo(h, ip("10.99.0.2"), 1, &data)
        .unwrap();
    net.run(Duration::from_millis(5));
    let mut buf = [0u8; 64];
    assert_eq!(net.node(0).stack.icmp_recv(h, &mut buf).unwrap().seq_no, 1);

    let ua = net
        .node(0)
        .stack
        .udp_bind("10.99.0.1:40000".parse().unwrap())
        .unwrap();
    let ub = net
        .node(1)
        .stack
        .udp_bind("10.99.0.2:7777".parse().unwrap())
        .unwrap();
    net.node(0)
        .stack
        .udp_send_to(ua, b"rumpnet udp test\n", "10.99.0.2:7777".parse().unwrap())
        .unwrap();
    net.run(Duration::from_millis(5));
    let (n, _) = net.node(1).stack.udp_recv_from(ub, &mut buf).unwrap();
    assert_eq!(&buf[..n], b"rumpnet udp test\n");

    drop(net);
    capture.flush().expect("flush capture");
    assert_eq!(capture.frames(), 7);
    drop(capture);

    let out = Command::new("tshark")
        .arg("-r")
        .arg(&file.0)
        .args(["-T", "fields", "-E", "separator=|"])
        .args(["-e", "frame.protocols", "-e", "ip.src", "-e", "ip.dst"])
        .args([
            "-e",
            "arp.opcode",
            "-e",
            "arp.src.proto_ipv4",
            "-e",
            "arp.dst.proto_ipv4",
        ])
        .args(["-e", "icmp.type", "-e", "udp.dstport"])
        .output()
        .expect("run tshark");
    assert!(
        out.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let lines: Vec<Vec<&str>> = text.lines().map(|l| l.split('|').collect()).collect();
    // [a protocol of the frame, ip.src, ip.dst, arp opcode, arp sender, arp target,
    //  icmp type, udp port]
    let a = "10.99.0.1";
    let b = "10.99.0.2";
    let want: [[&str; 8]; 7] = [
        ["arp", "", "", "1", a, a, "", ""], // A's gratuitous ARP
        ["arp", "", "", "1", b, b, "", ""], // B's gratuitous ARP
        ["arp", "", "", "1", a, b, "", ""], // A asks for B
        ["arp", "", "", "2", b, a, "", ""], // B answers
        ["icmp", a, b, "", "", "", "8", ""],
        ["icmp", b, a, "", "", "", "0", ""],
        ["udp", a, b, "", "", "", "", "7777"],
    ];
    assert_eq!(lines.len(), want.len(), "tshark output:\n{text}");
    for (line, w) in lines.iter().zip(want) {
        let protocols: Vec<&str> = line[0].split(':').collect();
        assert!(
            protocols.starts_with(&["eth", "ethertype"]) && protocols.contains(&w[0]),
            "{line:?} is not {}: tshark output:\n{text}",
            w[0]
        );
        assert_eq!(line[1..], w[1..], "tshark output:\n{text}");
    }
}
