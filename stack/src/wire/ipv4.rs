//! The IPv4 header (RFC 791).
//!
//! The stack reads options only to step over them (checking their TLV structure so a
//! malformed list is refused rather than half-read) and never emits any: record route,
//! timestamps and source routing are diagnostics or attack surface, not something a
//! host needs to originate (RFC 7126 §4 recommends dropping source-routed packets).

use super::checksum;
use super::{Error, IpProtocol, Ipv4Addr, Result};

/// The length of a header without options (IHL = 5).
pub const HEADER_LEN: usize = 20;

mod field {
    use core::ops::Range;

    pub const VER_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const LENGTH: Range<usize> = 2..4;
    pub const IDENT: Range<usize> = 4..6;
    pub const FLG_OFF: Range<usize> = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Range<usize> = 10..12;
    pub const SRC_ADDR: Range<usize> = 12..16;
    pub const DST_ADDR: Range<usize> = 16..20;
}

/// RFC 791 §3.1 flags, in the flags/fragment-offset word.
const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;
const OFFSET_MASK: u16 = 0x1fff;

/// RFC 791 §3.1 option types with no length byte.
const OPT_END: u8 = 0;
const OPT_NOP: u8 = 1;

/// A read/write view of an IPv4 packet.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking it; accessors may panic if it is too short.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps a buffer after checking version, header length and total length against
    /// it (not the checksum), so no accessor can panic.
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// The checks of [`new_checked`](Self::new_checked), in order: the fixed header is
    /// there, the version is 4, IHL >= 5, the header with its options is there, the total
    /// length covers the header and lies within the buffer. Bytes after the total length
    /// (Ethernet padding) are allowed and ignored.
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if self.version() != 4 {
            return Err(Error::BadVersion);
        }
        let header_len = self.header_len();
        if header_len < HEADER_LEN {
            return Err(Error::BadHeaderLength);
        }
        if header_len > len {
            return Err(Error::Truncated);
        }
        let total_len = usize::from(self.total_len());
        if total_len < header_len {
            return Err(Error::BadLength);
        }
        if total_len > len {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Gives the buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn read_u16(&self, r: core::ops::Range<usize>) -> u16 {
        let d = self.buffer.as_ref();
        u16::from_be_bytes([d[r.start], d[r.start + 1]])
    }

    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// The header length in bytes (IHL * 4), options included.
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }

    /// The whole type-of-service byte (DSCP << 2 | ECN).
    pub fn tos(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN]
    }

    pub fn dscp(&self) -> u8 {
        self.tos() >> 2
    }

    pub fn ecn(&self) -> u8 {
        self.tos() & 0x03
    }

    /// The length of header plus payload, in bytes.
    pub fn total_len(&self) -> u16 {
        self.read_u16(field::LENGTH)
    }

    pub fn ident(&self) -> u16 {
        self.read_u16(field::IDENT)
    }

    pub fn dont_frag(&self) -> bool {
        self.read_u16(field::FLG_OFF) & FLAG_DF != 0
    }

    pub fn more_frags(&self) -> bool {
        self.read_u16(field::FLG_OFF) & FLAG_MF != 0
    }

    /// The fragment offset in bytes (the field counts 8-byte units).
    pub fn frag_offset(&self) -> u16 {
        (self.read_u16(field::FLG_OFF) & OFFSET_MASK) << 3
    }

    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    pub fn protocol(&self) -> IpProtocol {
        IpProtocol::from(self.buffer.as_ref()[field::PROTOCOL])
    }

    pub fn checksum(&self) -> u16 {
        self.read_u16(field::CHECKSUM)
    }

    pub fn src_addr(&self) -> Ipv4Addr {
        let d = self.buffer.as_ref();
        let r = field::SRC_ADDR;
        Ipv4Addr::new(d[r.start], d[r.start + 1], d[r.start + 2], d[r.start + 3])
    }

    pub fn dst_addr(&self) -> Ipv4Addr {
        let d = self.buffer.as_ref();
        let r = field::DST_ADDR;
        Ipv4Addr::new(d[r.start], d[r.start + 1], d[r.start + 2], d[r.start + 3])
    }

    /// The option bytes between the fixed header and the payload (may be empty).
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.header_len()]
    }

    /// The header checksum (RFC 791 §3.1: over the header only) verifies.
    pub fn verify_checksum(&self) -> bool {
        checksum::verifies(&[checksum::sum(&self.buffer.as_ref()[..self.header_len()])])
    }

    /// The payload: from the end of the header to the total length, so link-layer
    /// padding after the datagram is not included.
    pub fn payload(&self) -> &[u8] {
        let range = self.header_len()..usize::from(self.total_len());
        &self.buffer.as_ref()[range]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    fn write_u16(&mut self, r: core::ops::Range<usize>, v: u16) {
        self.buffer.as_mut()[r].copy_from_slice(&v.to_be_bytes());
    }

    pub fn set_version(&mut self, v: u8) {
        let b = &mut self.buffer.as_mut()[field::VER_IHL];
        *b = (*b & 0x0f) | (v << 4);
    }

    /// Sets IHL from a length in bytes (a multiple of 4, at most 60).
    pub fn set_header_len(&mut self, len: usize) {
        let b = &mut self.buffer.as_mut()[field::VER_IHL];
        *b = (*b & 0xf0) | ((len / 4) as u8 & 0x0f);
    }

    pub fn set_tos(&mut self, v: u8) {
        self.buffer.as_mut()[field::DSCP_ECN] = v;
    }

    pub fn set_dscp(&mut self, v: u8) {
        let b = &mut self.buffer.as_mut()[field::DSCP_ECN];
        *b = (*b & 0x03) | (v << 2);
    }

    pub fn set_ecn(&mut self, v: u8) {
        let b = &mut self.buffer.as_mut()[field::DSCP_ECN];
        *b = (*b & !0x03) | (v & 0x03);
    }

    pub fn set_total_len(&mut self, v: u16) {
        self.write_u16(field::LENGTH, v)
    }

    pub fn set_ident(&mut self, v: u16) {
        self.write_u16(field::IDENT, v)
    }

    /// Writes the whole flags/offset word: DF, MF and the offset in bytes (a multiple of
    /// 8), with the reserved flag clear.
    pub fn set_flags_and_frag_offset(&mut self, dont_frag: bool, more_frags: bool, offset: u16) {
        let mut w = (offset >> 3) & OFFSET_MASK;
        if dont_frag {
            w |= FLAG_DF;
        }
        if more_frags {
            w |= FLAG_MF;
        }
        self.write_u16(field::FLG_OFF, w)
    }

    pub fn set_dont_frag(&mut self, v: bool) {
        let w = self.read_u16(field::FLG_OFF) & !FLAG_DF;
        self.write_u16(field::FLG_OFF, if v { w | FLAG_DF } else { w })
    }

    pub fn set_more_frags(&mut self, v: bool) {
        let w = self.read_u16(field::FLG_OFF) & !FLAG_MF;
        self.write_u16(field::FLG_OFF, if v { w | FLAG_MF } else { w })
    }

    /// Sets the fragment offset from bytes (a multiple of 8).
    pub fn set_frag_offset(&mut self, offset: u16) {
        let w = self.read_u16(field::FLG_OFF) & !OFFSET_MASK;
        self.write_u16(field::FLG_OFF, w | ((offset >> 3) & OFFSET_MASK))
    }

    pub fn set_ttl(&mut self, v: u8) {
        self.buffer.as_mut()[field::TTL] = v;
    }

    pub fn set_protocol(&mut self, v: IpProtocol) {
        self.buffer.as_mut()[field::PROTOCOL] = v.into();
    }

    pub fn set_checksum(&mut self, v: u16) {
        self.write_u16(field::CHECKSUM, v)
    }

    pub fn set_src_addr(&mut self, addr: Ipv4Addr) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&addr.octets());
    }

    pub fn set_dst_addr(&mut self, addr: Ipv4Addr) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&addr.octets());
    }

    /// Computes and writes the header checksum.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let header_len = self.header_len();
        let sum = checksum::sum(&self.buffer.as_ref()[..header_len]);
        self.set_checksum(checksum::finish(&[sum]));
    }

    /// The payload (header length to total length), writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let range = self.header_len()..usize::from(self.total_len());
        &mut self.buffer.as_mut()[range]
    }
}

/// Steps over an option list, checking its TLV structure (RFC 791 §3.1): End and NOP are
/// single bytes, every other option has a length byte that counts itself and the type,
/// so is at least 2 and ends inside the header. Nothing after End is examined (padding).
fn check_options(mut opts: &[u8]) -> Result<()> {
    while let Some(&kind) = opts.first() {
        match kind {
            OPT_END => return Ok(()),
            OPT_NOP => opts = &opts[1..],
            _ => {
                let len = usize::from(*opts.get(1).ok_or(Error::BadOption)?);
                if len < 2 || len > opts.len() {
                    return Err(Error::BadOption);
                }
                opts = &opts[len..];
            }
        }
    }
    Ok(())
}

/// The meaning of an IPv4 header, without options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Repr {
    pub src_addr: Ipv4Addr,
    pub dst_addr: Ipv4Addr,
    pub protocol: IpProtocol,
    /// Bytes after the header: total length minus header length.
    pub payload_len: usize,
    pub ttl: u8,
    /// The type-of-service byte (DSCP and ECN).
    pub tos: u8,
    pub ident: u16,
    pub dont_frag: bool,
    pub more_frags: bool,
    /// Fragment offset in bytes (a multiple of 8).
    pub frag_offset: u16,
}

impl Ipv4Repr {
    /// Reads a header, optionally verifying its checksum (skip it when the device already
    /// did). Options are checked for structure and otherwise ignored.
    // Inline: run on every received datagram, and the repr then lands in the caller's
    // frame instead of being copied out through the `Result`.
    #[inline(always)]
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>, verify_checksum: bool) -> Result<Ipv4Repr> {
        packet.check_len()?;
        if verify_checksum && !packet.verify_checksum() {
            return Err(Error::BadChecksum);
        }
        let data = packet.buffer.as_ref();
        let header_len = packet.header_len();
        if header_len > HEADER_LEN {
            check_options(&data[HEADER_LEN..header_len])?;
        }
        // The fixed header as one array (check_len held it whole): the fields below are
        // read without a bounds check each.
        let h: &[u8; HEADER_LEN] = data[..HEADER_LEN]
            .try_into()
            .expect("check_len holds the header");
        let flags_offset = u16::from_be_bytes([h[6], h[7]]);
        Ok(Ipv4Repr {
            src_addr: Ipv4Addr::new(h[12], h[13], h[14], h[15]),
            dst_addr: Ipv4Addr::new(h[16], h[17], h[18], h[19]),
            protocol: IpProtocol::from(h[field::PROTOCOL]),
            payload_len: usize::from(u16::from_be_bytes([h[2], h[3]])) - header_len,
            ttl: h[field::TTL],
            tos: h[field::DSCP_ECN],
            ident: u16::from_be_bytes([h[4], h[5]]),
            dont_frag: flags_offset & FLAG_DF != 0,
            more_frags: flags_offset & FLAG_MF != 0,
            frag_offset: (flags_offset & OFFSET_MASK) << 3,
        })
    }

    /// Always 20: options are never emitted.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the 20-byte header with total length `20 + payload_len`. With
    /// `fill_checksum` false the checksum field is left 0 for the device to fill (TX
    /// checksum offload).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>, fill_checksum: bool) {
        debug_assert!(self.payload_len <= usize::from(u16::MAX) - HEADER_LEN);
        // Version and IHL share a byte; write it whole so nothing old is read back.
        packet.buffer.as_mut()[field::VER_IHL] = 0x40 | (HEADER_LEN / 4) as u8;
        packet.set_tos(self.tos);
        packet.set_total_len((HEADER_LEN + self.payload_len) as u16);
        packet.set_ident(self.ident);
        packet.set_flags_and_frag_offset(self.dont_frag, self.more_frags, self.frag_offset);
        packet.set_ttl(self.ttl);
        packet.set_protocol(self.protocol);
        packet.set_src_addr(self.src_addr);
        packet.set_dst_addr(self.dst_addr);
        if fill_checksum {
            packet.fill_checksum();
        } else {
            packet.set_checksum(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rand::Rand;
    use crate::wire::ethernet::{EtherType, Frame};
    use alloc::vec::Vec;

    const IP_A: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);
    const IP_B: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 2);

    const ECHO_REQUEST: &[u8] = include_bytes!("testdata/icmp_echo_request.bin");
    const ECHO_REPLY: &[u8] = include_bytes!("testdata/icmp_echo_reply.bin");
    const PORT_UNREACHABLE: &[u8] = include_bytes!("testdata/icmp_port_unreachable.bin");
    const UDP: &[u8] = include_bytes!("testdata/udp_datagram.bin");
    const FRAG_FIRST: &[u8] = include_bytes!("testdata/udp_frag_first.bin");
    const FRAG_MIDDLE: &[u8] = include_bytes!("testdata/udp_frag_middle.bin");
    const FRAG_LAST: &[u8] = include_bytes!("testdata/udp_frag_last.bin");
    const OPTIONS: &[u8] = include_bytes!("testdata/ipv4_options.bin");
    const OPTIONS_REPLY: &[u8] = include_bytes!("testdata/ipv4_options_reply.bin");
    const TCP_SYN: &[u8] = include_bytes!("testdata/tcp_syn.bin");
    const TCP_SYNACK: &[u8] = include_bytes!("testdata/tcp_synack.bin");
    const TCP_ACK: &[u8] = include_bytes!("testdata/tcp_ack_ts.bin");
    const TCP_DATA: &[u8] = include_bytes!("testdata/tcp_data.bin");
    const VLAN_ECHO: &[u8] = include_bytes!("testdata/vlan_icmp_echo_request.bin");

    /// The captured IPv4 frames without options.
    const PLAIN: &[&[u8]] = &[
        ECHO_REQUEST,
        ECHO_REPLY,
        PORT_UNREACHABLE,
        UDP,
        FRAG_FIRST,
        FRAG_MIDDLE,
        FRAG_LAST,
        TCP_SYN,
        TCP_SYNACK,
        TCP_ACK,
        TCP_DATA,
        VLAN_ECHO,
    ];

    /// The IPv4 datagram inside a captured frame (after a tag, if any).
    fn ip_of(frame: &[u8]) -> &[u8] {
        let frame = Frame::new_checked(frame).unwrap();
        assert_eq!(frame.ethertype(), EtherType::Ipv4);
        let start = frame.header_len();
        &frame.into_inner()[start..]
    }

    fn parse(frame: &[u8]) -> Ipv4Repr {
        let packet = Packet::new_checked(ip_of(frame)).unwrap();
        assert!(packet.verify_checksum());
        Ipv4Repr::parse(&packet, true).unwrap()
    }

    #[test]
    fn parse_captured_echo_request() {
        let packet = Packet::new_checked(ip_of(ECHO_REQUEST)).unwrap();
        assert_eq!(packet.version(), 4);
        assert_eq!(packet.header_len(), 20);
        assert_eq!((packet.dscp(), packet.ecn()), (0, 0));
        assert_eq!(packet.total_len(), 84);
        assert_eq!(packet.ident(), 0xed26);
        assert!(packet.dont_frag() && !packet.more_frags());
        assert_eq!(packet.frag_offset(), 0);
        assert_eq!(packet.ttl(), 64);
        assert_eq!(packet.protocol(), IpProtocol::Icmp);
        assert_eq!(packet.checksum(), 0x38ba);
        assert!(packet.verify_checksum());
        assert_eq!((packet.src_addr(), packet.dst_addr()), (IP_A, IP_B));
        assert!(packet.options().is_empty());
        assert_eq!(packet.payload().len(), 64);
        assert_eq!(packet.payload()[0], 8); // ICMP echo request
        assert_eq!(
            Ipv4Repr::parse(&packet, true).unwrap(),
            Ipv4Repr {
                src_addr: IP_A,
                dst_addr: IP_B,
                protocol: IpProtocol::Icmp,
                payload_len: 64,
                ttl: 64,
                tos: 0,
                ident: 0xed26,
                dont_frag: true,
                more_frags: false,
                frag_offset: 0,
            }
        );
    }

    #[test]
    fn parse_captured_replies_and_transports() {
        let reply = parse(ECHO_REPLY);
        assert_eq!((reply.src_addr, reply.dst_addr), (IP_B, IP_A));
        // Linux sends echo replies (and ICMP errors) without DF.
        assert_eq!((reply.ident, reply.dont_frag), (0x6921, false));
        let unreach = parse(PORT_UNREACHABLE);
        assert_eq!(unreach.protocol, IpProtocol::Icmp);
        // Linux marks ICMP errors DSCP CS6 (internetwork control).
        assert_eq!(unreach.tos, 0xc0);
        assert_eq!(unreach.payload_len, 49);
        let udp = parse(UDP);
        assert_eq!(
            (udp.protocol, udp.payload_len, udp.ident),
            (IpProtocol::Udp, 25, 0xde0a)
        );
        for (frame, len) in [
            (TCP_SYN, 40),
            (TCP_SYNACK, 40),
            (TCP_ACK, 32),
            (TCP_DATA, 46),
        ] {
            let tcp = parse(frame);
            assert_eq!((tcp.protocol, tcp.payload_len), (IpProtocol::Tcp, len));
            assert!(tcp.dont_frag);
        }
        let vlan = parse(VLAN_ECHO);
        assert_eq!(
            (vlan.src_addr, vlan.dst_addr),
            (Ipv4Addr::new(10, 99, 42, 1), Ipv4Addr::new(10, 99, 42, 2))
        );
    }

    #[test]
    fn parse_captured_fragments() {
        let first = parse(FRAG_FIRST);
        let middle = parse(FRAG_MIDDLE);
        let last = parse(FRAG_LAST);
        // One datagram: same ident, offsets in bytes, MF on all but the last.
        assert_eq!(first.ident, 0xde24);
        assert_eq!((middle.ident, last.ident), (first.ident, first.ident));
        assert_eq!(
            (first.frag_offset, first.more_frags, first.payload_len),
            (0, true, 1480)
        );
        assert_eq!(
            (middle.frag_offset, middle.more_frags, middle.payload_len),
            (1480, true, 1480)
        );
        assert_eq!(
            (last.frag_offset, last.more_frags, last.payload_len),
            (2960, false, 48)
        );
        // The pieces add up to the 8-byte UDP header plus 3000 bytes of data.
        assert_eq!(
            first.payload_len + middle.payload_len + last.payload_len,
            3008
        );
        assert!(!first.dont_frag);
    }

    #[test]
    fn parse_captured_options() {
        for frame in [OPTIONS, OPTIONS_REPLY] {
            let packet = Packet::new_checked(ip_of(frame)).unwrap();
            assert_eq!(packet.header_len(), 60);
            assert!(packet.verify_checksum());
            // Record route (type 7, length 39), then End of options.
            let options = packet.options();
            assert_eq!(options.len(), 40);
            assert_eq!(&options[..2], &[7, 39]);
            assert_eq!(options[39], 0);
            let repr = Ipv4Repr::parse(&packet, true).unwrap();
            assert_eq!(repr.payload_len, 64);
            assert_eq!(repr.protocol, IpProtocol::Icmp);
            // The payload starts after the options.
            assert_eq!(packet.payload()[0], if frame == OPTIONS { 8 } else { 0 });
        }
        // The reply carries the route recorded so far: A, then B twice (B's outgoing
        // interface and B as the replying host).
        let reply = Packet::new_checked(ip_of(OPTIONS_REPLY)).unwrap();
        assert_eq!(reply.options()[2], 16); // pointer past three addresses
        assert_eq!(&reply.options()[3..7], &IP_A.octets());
        assert_eq!(&reply.options()[7..11], &IP_B.octets());
    }

    #[test]
    fn emit_round_trips_captured_headers() {
        for (i, &frame) in PLAIN.iter().enumerate() {
            let ip = ip_of(frame);
            let repr = parse(frame);
            assert_eq!(repr.buffer_len(), 20);
            let mut buf = [0xa5u8; 20];
            repr.emit(&mut Packet::new_unchecked(&mut buf[..]), true);
            assert_eq!(&buf[..], &ip[..20], "capture #{i}");
            // Checksum offload: everything but the checksum field, which is left zero.
            let mut buf = [0xa5u8; 20];
            repr.emit(&mut Packet::new_unchecked(&mut buf[..]), false);
            assert_eq!(&buf[10..12], &[0, 0]);
            assert_eq!((&buf[..10], &buf[12..]), (&ip[..10], &ip[12..20]));
        }
    }

    #[test]
    fn emit_options_frame_without_options() {
        // The options are dropped; the rest of the header survives.
        let repr = parse(OPTIONS);
        let mut buf = [0xa5u8; 20 + 64];
        let mut packet = Packet::new_unchecked(&mut buf[..]);
        repr.emit(&mut packet, true);
        packet.payload_mut().copy_from_slice(&ip_of(OPTIONS)[60..]);
        let packet = Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(packet.header_len(), 20);
        assert_eq!(Ipv4Repr::parse(&packet, true).unwrap(), repr);
    }

    #[test]
    fn setters_write_what_getters_read() {
        let mut buf = [0xa5u8; 24];
        let mut p = Packet::new_unchecked(&mut buf[..]);
        p.set_version(4);
        p.set_header_len(24);
        p.set_dscp(46); // EF
        p.set_ecn(1);
        p.set_total_len(24);
        p.set_ident(0xbeef);
        p.set_flags_and_frag_offset(false, false, 0);
        p.set_dont_frag(true);
        p.set_more_frags(true);
        p.set_frag_offset(8 * 0x1fff);
        p.set_more_frags(false);
        p.set_ttl(1);
        p.set_protocol(IpProtocol::Unknown(99));
        p.set_src_addr(IP_B);
        p.set_dst_addr(IP_A);
        p.buffer[20..24].copy_from_slice(&[1, 1, 1, 0]); // NOP NOP NOP End
        p.fill_checksum();
        let p = Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(
            (p.version(), p.header_len(), p.dscp(), p.ecn()),
            (4, 24, 46, 1)
        );
        assert_eq!(p.tos(), 46 << 2 | 1);
        assert_eq!((p.total_len(), p.ident(), p.ttl()), (24, 0xbeef, 1));
        assert!(p.dont_frag() && !p.more_frags());
        assert_eq!(p.frag_offset(), 65528);
        assert_eq!(p.protocol(), IpProtocol::Unknown(99));
        assert_eq!((p.src_addr(), p.dst_addr()), (IP_B, IP_A));
        assert!(p.verify_checksum());
        assert!(p.payload().is_empty());
        assert!(Ipv4Repr::parse(&p, true).is_ok());
    }

    #[test]
    fn ethernet_padding_is_not_payload() {
        // A 45-byte datagram padded to the 60-byte Ethernet minimum, as a NIC delivers it.
        let mut padded = Vec::from(ip_of(UDP));
        padded.resize(46, 0);
        let packet = Packet::new_checked(&padded[..]).unwrap();
        assert_eq!(packet.payload(), &ip_of(UDP)[20..]);
        assert_eq!(Ipv4Repr::parse(&packet, true).unwrap().payload_len, 25);
    }

    #[test]
    fn truncation_at_every_length_is_refused() {
        for &frame in PLAIN.iter().chain([OPTIONS, OPTIONS_REPLY].iter()) {
            let ip = ip_of(frame);
            for len in 0..ip.len() {
                // Every cut removes bytes the total length claims.
                assert_eq!(
                    Packet::new_checked(&ip[..len]).err(),
                    Some(Error::Truncated),
                    "len {len}"
                );
            }
            assert!(Packet::new_checked(ip).is_ok());
        }
    }

    /// A copy of the echo request's IP datagram with `edit` applied and the checksum
    /// refilled.
    fn edited(edit: impl FnOnce(&mut [u8])) -> Vec<u8> {
        let mut v = Vec::from(ip_of(ECHO_REQUEST));
        edit(&mut v);
        let mut p = Packet::new_unchecked(&mut v[..]);
        if p.version() == 4 && (20..=p.buffer.len()).contains(&p.header_len()) {
            p.fill_checksum();
        }
        v
    }

    #[test]
    fn bad_headers_give_their_error() {
        let cases: [(&str, Vec<u8>, Error); 6] = [
            ("version 6", edited(|b| b[0] = 0x65), Error::BadVersion),
            ("IHL 4", edited(|b| b[0] = 0x44), Error::BadHeaderLength),
            ("IHL 0", edited(|b| b[0] = 0x40), Error::BadHeaderLength),
            ("total_len < IHL*4", edited(|b| b[3] = 19), Error::BadLength),
            (
                "total_len < IHL*4 with options",
                edited(|b| {
                    b[0] = 0x46;
                    b[2..4].copy_from_slice(&22u16.to_be_bytes())
                }),
                Error::BadLength,
            ),
            (
                "total_len > buffer",
                edited(|b| b[2..4].copy_from_slice(&85u16.to_be_bytes())),
                Error::Truncated,
            ),
        ];
        for (what, bytes, want) in cases {
            assert_eq!(Packet::new_checked(&bytes[..]).err(), Some(want), "{what}");
            // parse repeats the checks for views made with new_unchecked.
            let p = Packet::new_unchecked(&bytes[..]);
            assert_eq!(Ipv4Repr::parse(&p, false).err(), Some(want), "{what}");
        }
        // IHL 15 in a 40-byte buffer: the options would run past it.
        let short = edited(|b| b[0] = 0x4f);
        assert_eq!(
            Packet::new_checked(&short[..40]).err(),
            Some(Error::Truncated)
        );
    }

    #[test]
    fn bad_checksum_only_when_verifying() {
        let mut bytes = Vec::from(ip_of(ECHO_REQUEST));
        bytes[8] = 63; // TTL changed, checksum not updated
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert!(!packet.verify_checksum());
        assert_eq!(Ipv4Repr::parse(&packet, true), Err(Error::BadChecksum));
        assert_eq!(Ipv4Repr::parse(&packet, false).unwrap().ttl, 63);
    }

    #[test]
    fn malformed_options_are_refused() {
        // A 28-byte header: 8 option bytes, and the datagram is just the header.
        let with_options = |opts: [u8; 8]| {
            let mut v = Vec::from(&ip_of(ECHO_REQUEST)[..20]);
            v.extend_from_slice(&opts);
            v[0] = 0x47;
            v[2..4].copy_from_slice(&28u16.to_be_bytes());
            Packet::new_unchecked(&mut v[..]).fill_checksum();
            v
        };
        for (opts, want) in [
            ([1, 1, 1, 1, 1, 1, 1, 1], Ok(())),                 // all NOP
            ([0, 0xff, 0xff, 0, 0, 0, 0, 0], Ok(())),           // End, then ignored padding
            ([7, 7, 4, 0, 0, 0, 0, 0], Ok(())),                 // record route, 1 slot
            ([1, 7, 7, 4, 0, 0, 0, 0], Ok(())),                 // NOP then RR, exact fit
            ([7, 1, 4, 0, 0, 0, 0, 0], Err(Error::BadOption)),  // length below 2
            ([7, 0, 4, 0, 0, 0, 0, 0], Err(Error::BadOption)),  // length 0 (would loop)
            ([7, 9, 4, 0, 0, 0, 0, 0], Err(Error::BadOption)),  // past the header
            ([1, 1, 1, 1, 1, 1, 1, 7], Err(Error::BadOption)),  // no room for a length
            ([1, 1, 1, 1, 1, 1, 68, 3], Err(Error::BadOption)), // timestamp cut short
        ] {
            let bytes = with_options(opts);
            let packet = Packet::new_checked(&bytes[..]).unwrap();
            assert_eq!(packet.options(), &opts);
            let got = Ipv4Repr::parse(&packet, true).map(|r| assert_eq!(r.payload_len, 0));
            assert_eq!(got, want, "{opts:?}");
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = Rand::from_u64(9);
        let base = ip_of(OPTIONS);
        let mut buf = [0u8; 140];
        for _ in 0..20_000 {
            let len = rng.below(base.len() as u32 + 1) as usize;
            buf[..len].copy_from_slice(&base[..len]);
            // Corrupt a few bytes, mostly in the header and options.
            for _ in 0..rng.below(4) {
                let at = rng.below(len.clamp(1, 64) as u32) as usize;
                if at < len {
                    buf[at] = rng.next_u32() as u8;
                }
            }
            if let Ok(packet) = Packet::new_checked(&buf[..len]) {
                let _ = (packet.options(), packet.payload(), packet.verify_checksum());
                if let Ok(repr) = Ipv4Repr::parse(&packet, false) {
                    assert_eq!(repr.payload_len, packet.payload().len());
                }
            }
        }
    }
}
