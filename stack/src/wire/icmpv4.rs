//! ICMP for IPv4 (RFC 792): echo, and the two errors a host sends and must understand
//! (destination unreachable, time exceeded).
//!
//! The view covers the whole ICMP message (the IP payload), because the checksum does.

use super::checksum;
use super::{Error, Result};

/// The fixed part: type, code, checksum and the 4-byte rest-of-header.
pub const HEADER_LEN: usize = 8;
/// RFC 792 / RFC 1812 §4.3.2.3: an error quotes the offending IP header and at least the
/// first 8 bytes of its payload (enough for the transport ports).
pub const MIN_INVOKING_LEN: usize = 20 + 8;

mod field {
    use core::ops::Range;

    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Range<usize> = 2..4;
    /// Echo: identifier and sequence number.
    pub const ECHO_IDENT: Range<usize> = 4..6;
    pub const ECHO_SEQNO: Range<usize> = 6..8;
    /// Destination unreachable: unused (zero), then the next-hop MTU (RFC 1191 §4).
    pub const UNUSED: Range<usize> = 4..6;
    pub const MTU: Range<usize> = 6..8;
    /// The 4 bytes after the checksum, as a whole (zero where unused).
    pub const REST: Range<usize> = 4..8;
    pub const DATA: usize = 8;
}

/// The ICMP message type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Message {
    EchoReply,
    DstUnreachable,
    TimeExceeded,
    EchoRequest,
    Other(u8),
}

impl From<u8> for Message {
    fn from(v: u8) -> Self {
        match v {
            0 => Message::EchoReply,
            3 => Message::DstUnreachable,
            11 => Message::TimeExceeded,
            8 => Message::EchoRequest,
            other => Message::Other(other),
        }
    }
}

impl From<Message> for u8 {
    fn from(m: Message) -> u8 {
        match m {
            Message::EchoReply => 0,
            Message::DstUnreachable => 3,
            Message::TimeExceeded => 11,
            Message::EchoRequest => 8,
            Message::Other(v) => v,
        }
    }
}

/// Codes of the destination unreachable message (RFC 792).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DstUnreachable {
    NetUnreachable,
    HostUnreachable,
    ProtoUnreachable,
    PortUnreachable,
    /// Fragmentation needed and DF set; carries the next-hop MTU (RFC 1191).
    FragRequired,
    Other(u8),
}

impl From<u8> for DstUnreachable {
    fn from(v: u8) -> Self {
        match v {
            0 => DstUnreachable::NetUnreachable,
            1 => DstUnreachable::HostUnreachable,
            2 => DstUnreachable::ProtoUnreachable,
            3 => DstUnreachable::PortUnreachable,
            4 => DstUnreachable::FragRequired,
            other => DstUnreachable::Other(other),
        }
    }
}

impl From<DstUnreachable> for u8 {
    fn from(c: DstUnreachable) -> u8 {
        match c {
            DstUnreachable::NetUnreachable => 0,
            DstUnreachable::HostUnreachable => 1,
            DstUnreachable::ProtoUnreachable => 2,
            DstUnreachable::PortUnreachable => 3,
            DstUnreachable::FragRequired => 4,
            DstUnreachable::Other(v) => v,
        }
    }
}

/// Codes of the time exceeded message (RFC 792).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimeExceeded {
    /// TTL reached zero in transit.
    TtlExpired,
    /// Reassembly timed out.
    FragExpired,
    Other(u8),
}

impl From<u8> for TimeExceeded {
    fn from(v: u8) -> Self {
        match v {
            0 => TimeExceeded::TtlExpired,
            1 => TimeExceeded::FragExpired,
            other => TimeExceeded::Other(other),
        }
    }
}

impl From<TimeExceeded> for u8 {
    fn from(c: TimeExceeded) -> u8 {
        match c {
            TimeExceeded::TtlExpired => 0,
            TimeExceeded::FragExpired => 1,
            TimeExceeded::Other(v) => v,
        }
    }
}

/// A read/write view of an ICMPv4 message.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking it; accessors may panic if it is too short.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps a buffer after checking that the 8-byte header is there.
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// `Err(Truncated)` if the buffer is shorter than the fixed header.
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    /// Gives the buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn read_u16(&self, r: core::ops::Range<usize>) -> u16 {
        let d = self.buffer.as_ref();
        u16::from_be_bytes([d[r.start], d[r.start + 1]])
    }

    pub fn msg_type(&self) -> Message {
        Message::from(self.buffer.as_ref()[field::TYPE])
    }

    pub fn msg_code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    pub fn checksum(&self) -> u16 {
        self.read_u16(field::CHECKSUM)
    }

    pub fn echo_ident(&self) -> u16 {
        self.read_u16(field::ECHO_IDENT)
    }

    pub fn echo_seq_no(&self) -> u16 {
        self.read_u16(field::ECHO_SEQNO)
    }

    /// The next-hop MTU of a "fragmentation needed" message (0 from pre-RFC 1191 routers).
    pub fn next_hop_mtu(&self) -> u16 {
        self.read_u16(field::MTU)
    }

    /// Everything after the 8-byte header: echo data, or the invoking datagram of an error.
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[field::DATA..]
    }

    /// The checksum over the whole message verifies.
    pub fn verify_checksum(&self) -> bool {
        checksum::verifies(&[checksum::sum(self.buffer.as_ref())])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    fn write_u16(&mut self, r: core::ops::Range<usize>, v: u16) {
        self.buffer.as_mut()[r].copy_from_slice(&v.to_be_bytes());
    }

    pub fn set_msg_type(&mut self, v: Message) {
        self.buffer.as_mut()[field::TYPE] = v.into();
    }

    pub fn set_msg_code(&mut self, v: u8) {
        self.buffer.as_mut()[field::CODE] = v;
    }

    pub fn set_checksum(&mut self, v: u16) {
        self.write_u16(field::CHECKSUM, v)
    }

    pub fn set_echo_ident(&mut self, v: u16) {
        self.write_u16(field::ECHO_IDENT, v)
    }

    pub fn set_echo_seq_no(&mut self, v: u16) {
        self.write_u16(field::ECHO_SEQNO, v)
    }

    /// Sets the next-hop MTU and zeroes the unused bytes before it.
    pub fn set_next_hop_mtu(&mut self, v: u16) {
        self.write_u16(field::UNUSED, 0);
        self.write_u16(field::MTU, v)
    }

    /// Zeroes the 4 bytes after the checksum (RFC 792: "unused, must be zero").
    pub fn clear_rest_of_header(&mut self) {
        self.buffer.as_mut()[field::REST].fill(0);
    }

    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::DATA..]
    }

    /// Computes and writes the checksum over the whole buffer.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let sum = checksum::sum(self.buffer.as_ref());
        self.set_checksum(checksum::finish(&[sum]));
    }
}

/// The meaning of an ICMPv4 message the stack handles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Icmpv4Repr<'a> {
    EchoRequest {
        ident: u16,
        seq_no: u16,
        data: &'a [u8],
    },
    EchoReply {
        ident: u16,
        seq_no: u16,
        data: &'a [u8],
    },
    DstUnreachable {
        reason: DstUnreachable,
        /// Meaningful for `FragRequired` only; 0 otherwise.
        next_hop_mtu: u16,
        /// The offending datagram's IP header and at least 8 bytes of its payload.
        invoking: &'a [u8],
    },
    TimeExceeded {
        reason: TimeExceeded,
        /// The offending datagram's IP header and at least 8 bytes of its payload.
        invoking: &'a [u8],
    },
}

impl<'a> Icmpv4Repr<'a> {
    /// Reads an echo or error message; other types are `Unsupported`, an error quoting
    /// less than an IP header plus 8 bytes is `Truncated`.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &'a Packet<&'a T>,
        verify_checksum: bool,
    ) -> Result<Icmpv4Repr<'a>> {
        packet.check_len()?;
        if verify_checksum && !packet.verify_checksum() {
            return Err(Error::BadChecksum);
        }
        match packet.msg_type() {
            Message::EchoRequest => Ok(Icmpv4Repr::EchoRequest {
                ident: packet.echo_ident(),
                seq_no: packet.echo_seq_no(),
                data: packet.data(),
            }),
            Message::EchoReply => Ok(Icmpv4Repr::EchoReply {
                ident: packet.echo_ident(),
                seq_no: packet.echo_seq_no(),
                data: packet.data(),
            }),
            Message::DstUnreachable => {
                let invoking = invoking(packet.data())?;
                let reason = DstUnreachable::from(packet.msg_code());
                let next_hop_mtu = if reason == DstUnreachable::FragRequired {
                    packet.next_hop_mtu()
                } else {
                    0
                };
                Ok(Icmpv4Repr::DstUnreachable {
                    reason,
                    next_hop_mtu,
                    invoking,
                })
            }
            Message::TimeExceeded => Ok(Icmpv4Repr::TimeExceeded {
                reason: TimeExceeded::from(packet.msg_code()),
                invoking: invoking(packet.data())?,
            }),
            Message::Other(_) => Err(Error::Unsupported),
        }
    }

    /// The message length: the 8-byte header plus data or invoking bytes.
    pub const fn buffer_len(&self) -> usize {
        match self {
            Icmpv4Repr::EchoRequest { data, .. } | Icmpv4Repr::EchoReply { data, .. } => {
                HEADER_LEN + data.len()
            }
            Icmpv4Repr::DstUnreachable { invoking, .. }
            | Icmpv4Repr::TimeExceeded { invoking, .. } => HEADER_LEN + invoking.len(),
        }
    }

    /// Writes the message and its checksum (computed over `buffer_len` bytes); the
    /// buffer must be at least [`buffer_len`](Self::buffer_len).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        let body = match *self {
            Icmpv4Repr::EchoRequest {
                ident,
                seq_no,
                data,
            }
            | Icmpv4Repr::EchoReply {
                ident,
                seq_no,
                data,
            } => {
                let msg = if matches!(self, Icmpv4Repr::EchoRequest { .. }) {
                    Message::EchoRequest
                } else {
                    Message::EchoReply
                };
                packet.set_msg_type(msg);
                packet.set_msg_code(0);
                packet.set_echo_ident(ident);
                packet.set_echo_seq_no(seq_no);
                data
            }
            Icmpv4Repr::DstUnreachable {
                reason,
                next_hop_mtu,
                invoking,
            } => {
                packet.set_msg_type(Message::DstUnreachable);
                packet.set_msg_code(reason.into());
                // RFC 792: unused bytes are zero; RFC 1191 §4 puts the MTU in the low half.
                let mtu = if reason == DstUnreachable::FragRequired {
                    next_hop_mtu
                } else {
                    0
                };
                packet.set_next_hop_mtu(mtu);
                invoking
            }
            Icmpv4Repr::TimeExceeded { reason, invoking } => {
                packet.set_msg_type(Message::TimeExceeded);
                packet.set_msg_code(reason.into());
                packet.clear_rest_of_header();
                invoking
            }
        };
        packet.data_mut()[..body.len()].copy_from_slice(body);
        packet.set_checksum(0);
        let len = self.buffer_len();
        let sum = checksum::sum(&packet.buffer.as_ref()[..len]);
        packet.set_checksum(checksum::finish(&[sum]));
    }
}

/// The quoted datagram of an error message, refused when shorter than RFC 792 requires.
fn invoking(data: &[u8]) -> Result<&[u8]> {
    if data.len() < MIN_INVOKING_LEN {
        Err(Error::Truncated)
    } else {
        Ok(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rand::Rand;
    use crate::wire::ethernet::Frame;
    use crate::wire::ipv4::{self, Ipv4Repr};
    use crate::wire::udp;
    use crate::wire::{IpProtocol, Ipv4Addr};
    use alloc::vec;
    use alloc::vec::Vec;

    const IP_A: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);
    const IP_B: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 2);

    const ECHO_REQUEST: &[u8] = include_bytes!("testdata/icmp_echo_request.bin");
    const ECHO_REPLY: &[u8] = include_bytes!("testdata/icmp_echo_reply.bin");
    const PORT_UNREACHABLE: &[u8] = include_bytes!("testdata/icmp_port_unreachable.bin");
    const OPTIONS: &[u8] = include_bytes!("testdata/ipv4_options.bin");
    const OPTIONS_REPLY: &[u8] = include_bytes!("testdata/ipv4_options_reply.bin");
    const VLAN_ECHO: &[u8] = include_bytes!("testdata/vlan_icmp_echo_request.bin");

    /// The 56 data bytes the capture script's ping socket sends.
    fn ping_data() -> Vec<u8> {
        (0x10..0x10 + 56).collect()
    }

    /// Ethernet -> IPv4 (checksum verified) -> the ICMP message bytes.
    fn icmp_of(frame: &[u8]) -> (Ipv4Repr, &[u8]) {
        let frame = Frame::new_checked(frame).unwrap();
        let start = frame.header_len();
        let ip = ipv4::Packet::new_checked(&frame.into_inner()[start..]).unwrap();
        let repr = Ipv4Repr::parse(&ip, true).unwrap();
        assert_eq!(repr.protocol, IpProtocol::Icmp);
        let range = ip.header_len()..usize::from(ip.total_len());
        (repr, &ip.into_inner()[range])
    }

    #[test]
    fn parse_captured_echo_request_and_reply() {
        let data = ping_data();
        for (frame, seq_no) in [(ECHO_REQUEST, 1), (VLAN_ECHO, 2), (OPTIONS, 3)] {
            let (ip, bytes) = icmp_of(frame);
            assert_eq!(ip.protocol, IpProtocol::Icmp);
            let packet = Packet::new_checked(bytes).unwrap();
            assert_eq!(packet.msg_type(), Message::EchoRequest);
            assert_eq!(packet.msg_code(), 0);
            assert!(packet.verify_checksum());
            assert_eq!(
                Icmpv4Repr::parse(&packet, true).unwrap(),
                Icmpv4Repr::EchoRequest {
                    ident: 0x1234,
                    seq_no,
                    data: &data,
                }
            );
        }
        for (frame, seq_no) in [(ECHO_REPLY, 1), (OPTIONS_REPLY, 3)] {
            let (ip, bytes) = icmp_of(frame);
            assert_eq!((ip.src_addr, ip.dst_addr), (IP_B, IP_A));
            let packet = Packet::new_checked(bytes).unwrap();
            assert_eq!(
                Icmpv4Repr::parse(&packet, true).unwrap(),
                Icmpv4Repr::EchoReply {
                    ident: 0x1234,
                    seq_no,
                    data: &data,
                }
            );
        }
        let (_, bytes) = icmp_of(ECHO_REQUEST);
        let packet = Packet::new_checked(bytes).unwrap();
        assert_eq!(packet.checksum(), 0x2cf6);
        assert_eq!((packet.echo_ident(), packet.echo_seq_no()), (0x1234, 1));
    }

    #[test]
    fn parse_captured_port_unreachable() {
        let (ip, bytes) = icmp_of(PORT_UNREACHABLE);
        assert_eq!((ip.src_addr, ip.dst_addr), (IP_B, IP_A));
        let packet = Packet::new_checked(bytes).unwrap();
        assert_eq!(packet.msg_type(), Message::DstUnreachable);
        assert_eq!(
            DstUnreachable::from(packet.msg_code()),
            DstUnreachable::PortUnreachable
        );
        assert_eq!(packet.checksum(), 0x11ec);
        let repr = Icmpv4Repr::parse(&packet, true).unwrap();
        let Icmpv4Repr::DstUnreachable {
            reason: DstUnreachable::PortUnreachable,
            next_hop_mtu: 0,
            invoking,
        } = repr
        else {
            panic!("{repr:?}")
        };
        // Linux quotes the whole (small) offending datagram: A's UDP to B's port 9.
        assert_eq!(invoking.len(), 41);
        let quoted = ipv4::Packet::new_checked(invoking).unwrap();
        let quoted_repr = Ipv4Repr::parse(&quoted, true).unwrap();
        assert_eq!((quoted_repr.src_addr, quoted_repr.dst_addr), (IP_A, IP_B));
        assert_eq!(quoted_repr.protocol, IpProtocol::Udp);
        let udp = udp::Packet::new_checked(quoted.payload()).unwrap();
        assert_eq!((udp.src_port(), udp.dst_port()), (40000, 9));
        assert_eq!(udp.payload(), b"anyone there?");
    }

    #[test]
    fn emit_round_trips_captured_messages() {
        for frame in [
            ECHO_REQUEST,
            ECHO_REPLY,
            PORT_UNREACHABLE,
            OPTIONS,
            VLAN_ECHO,
        ] {
            let (_, bytes) = icmp_of(frame);
            let packet = Packet::new_checked(bytes).unwrap();
            let repr = Icmpv4Repr::parse(&packet, true).unwrap();
            assert_eq!(repr.buffer_len(), bytes.len());
            let mut buf = vec![0xa5u8; repr.buffer_len()];
            repr.emit(&mut Packet::new_unchecked(&mut buf[..]));
            assert_eq!(&buf[..], bytes);
        }
    }

    #[test]
    fn emit_errors_zero_unused_bytes() {
        let (_, quoted) = icmp_of(ECHO_REQUEST);
        let invoking = &ipv4_datagram(ECHO_REQUEST)[..28];
        assert_eq!(&invoking[20..], &quoted[..8]);
        let cases = [
            (
                Icmpv4Repr::DstUnreachable {
                    reason: DstUnreachable::FragRequired,
                    next_hop_mtu: 1400,
                    invoking,
                },
                [3, 4, 0, 0, 0x05, 0x78],
            ),
            (
                Icmpv4Repr::DstUnreachable {
                    reason: DstUnreachable::HostUnreachable,
                    next_hop_mtu: 0,
                    invoking,
                },
                [3, 1, 0, 0, 0, 0],
            ),
            (
                Icmpv4Repr::TimeExceeded {
                    reason: TimeExceeded::TtlExpired,
                    invoking,
                },
                [11, 0, 0, 0, 0, 0],
            ),
            (
                Icmpv4Repr::TimeExceeded {
                    reason: TimeExceeded::FragExpired,
                    invoking,
                },
                [11, 1, 0, 0, 0, 0],
            ),
        ];
        for (repr, head) in cases {
            assert_eq!(repr.buffer_len(), 36);
            let mut buf = [0xa5u8; 36];
            repr.emit(&mut Packet::new_unchecked(&mut buf[..]));
            assert_eq!(&buf[..2], &head[..2]);
            assert_eq!(&buf[4..8], &head[2..]);
            assert_eq!(&buf[8..], invoking);
            let packet = Packet::new_checked(&buf[..]).unwrap();
            assert!(packet.verify_checksum());
            assert_eq!(Icmpv4Repr::parse(&packet, true).unwrap(), repr);
        }
    }

    /// The IPv4 datagram of a captured frame.
    fn ipv4_datagram(frame: &[u8]) -> &[u8] {
        &frame[14..]
    }

    #[test]
    fn truncated_and_corrupt_messages() {
        let (_, bytes) = icmp_of(PORT_UNREACHABLE);
        for len in 0..8 {
            assert_eq!(
                Packet::new_checked(&bytes[..len]).err(),
                Some(Error::Truncated)
            );
        }
        // An error quoting less than an IP header + 8 bytes is refused.
        for len in 8..36 {
            let packet = Packet::new_checked(&bytes[..len]).unwrap();
            assert_eq!(
                Icmpv4Repr::parse(&packet, false),
                Err(Error::Truncated),
                "len {len}"
            );
        }
        let packet = Packet::new_checked(&bytes[..36]).unwrap();
        assert!(Icmpv4Repr::parse(&packet, false).is_ok());
        // Cutting the message breaks its checksum.
        assert_eq!(Icmpv4Repr::parse(&packet, true), Err(Error::BadChecksum));

        let (_, echo) = icmp_of(ECHO_REQUEST);
        let mut bytes = Vec::from(echo);
        bytes[20] ^= 0x01;
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert!(!packet.verify_checksum());
        assert_eq!(Icmpv4Repr::parse(&packet, true), Err(Error::BadChecksum));
        assert!(Icmpv4Repr::parse(&packet, false).is_ok());
    }

    #[test]
    fn other_types_are_unsupported() {
        // A timestamp request (type 13) with a valid checksum.
        let mut buf = [0u8; 20];
        let mut packet = Packet::new_unchecked(&mut buf[..]);
        packet.set_msg_type(Message::from(13));
        packet.set_msg_code(0);
        packet.fill_checksum();
        let packet = Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(packet.msg_type(), Message::Other(13));
        assert!(packet.verify_checksum());
        assert_eq!(Icmpv4Repr::parse(&packet, true), Err(Error::Unsupported));
    }

    #[test]
    fn code_conversions() {
        for v in 0..=255u8 {
            assert_eq!(u8::from(Message::from(v)), v);
            assert_eq!(u8::from(DstUnreachable::from(v)), v);
            assert_eq!(u8::from(TimeExceeded::from(v)), v);
        }
        assert_eq!(Message::from(11), Message::TimeExceeded);
        assert_eq!(DstUnreachable::from(4), DstUnreachable::FragRequired);
        assert_eq!(TimeExceeded::from(1), TimeExceeded::FragExpired);
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = Rand::from_u64(10);
        let mut buf = [0u8; 64];
        for _ in 0..10_000 {
            let len = rng.below(64) as usize;
            rng.fill(&mut buf[..len]);
            if len > 0 {
                buf[0] = [0, 3, 8, 11, 13][rng.below(5) as usize];
            }
            if let Ok(packet) = Packet::new_checked(&buf[..len]) {
                if let Ok(repr) = Icmpv4Repr::parse(&packet, false) {
                    assert_eq!(repr.buffer_len(), len);
                }
            }
        }
    }
}
