//! The User Datagram Protocol header (RFC 768), over IPv4.

use super::checksum;
use super::{Error, IpProtocol, Ipv4Addr, Result};

/// The length of the UDP header.
pub const HEADER_LEN: usize = 8;

mod field {
    use core::ops::Range;

    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const LENGTH: Range<usize> = 4..6;
    pub const CHECKSUM: Range<usize> = 6..8;
}

/// How [`UdpRepr::emit`] fills the checksum field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UdpChecksum {
    /// Compute the full checksum in software.
    Compute,
    /// Write the pseudo-header sum, not complemented, for the device to finish over the
    /// datagram (the partial checksum NICs and virtio-net expect with `csum_start`).
    Offload,
    /// Send without a checksum (the field is 0; RFC 768 allows it over IPv4).
    None,
}

/// A read/write view of a UDP datagram.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking it; accessors may panic if it is too short.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps a buffer after checking the header and the length field against it.
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// The header is there, the length field covers it and does not run past the buffer.
    /// Bytes after the length field's end are allowed and ignored.
    pub fn check_len(&self) -> Result<()> {
        let buffer_len = self.buffer.as_ref().len();
        if buffer_len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let len = usize::from(self.len());
        if len < HEADER_LEN {
            Err(Error::BadLength)
        } else if len > buffer_len {
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

    pub fn src_port(&self) -> u16 {
        self.read_u16(field::SRC_PORT)
    }

    pub fn dst_port(&self) -> u16 {
        self.read_u16(field::DST_PORT)
    }

    /// The length field: header plus payload, in bytes. (A field, not a container
    /// size: there is no `is_empty`.)
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> u16 {
        self.read_u16(field::LENGTH)
    }

    pub fn checksum(&self) -> u16 {
        self.read_u16(field::CHECKSUM)
    }

    /// The payload, up to the length field (not the end of the buffer).
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..usize::from(self.len())]
    }

    /// The checksum over pseudo-header, header and payload verifies. RFC 768: a zero
    /// field means the sender computed none, which IPv4 accepts.
    pub fn verify_checksum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        if self.checksum() == 0 {
            return true;
        }
        let len = self.len();
        let data = &self.buffer.as_ref()[..usize::from(len)];
        checksum::verifies(&[
            checksum::pseudo_header_v4(src, dst, IpProtocol::Udp, len),
            checksum::sum(data),
        ])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    fn write_u16(&mut self, r: core::ops::Range<usize>, v: u16) {
        self.buffer.as_mut()[r].copy_from_slice(&v.to_be_bytes());
    }

    pub fn set_src_port(&mut self, v: u16) {
        self.write_u16(field::SRC_PORT, v)
    }

    pub fn set_dst_port(&mut self, v: u16) {
        self.write_u16(field::DST_PORT, v)
    }

    pub fn set_len(&mut self, v: u16) {
        self.write_u16(field::LENGTH, v)
    }

    pub fn set_checksum(&mut self, v: u16) {
        self.write_u16(field::CHECKSUM, v)
    }

    /// Computes and writes the checksum over the length field's bytes. RFC 768: a
    /// computed zero is sent as all ones, since zero means "no checksum".
    pub fn fill_checksum(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        self.set_checksum(0);
        let len = self.len();
        let sum = checksum::sum(&self.buffer.as_ref()[..usize::from(len)]);
        let c = checksum::finish(&[
            checksum::pseudo_header_v4(src, dst, IpProtocol::Udp, len),
            sum,
        ]);
        self.set_checksum(if c == 0 { 0xffff } else { c });
    }

    /// The payload (up to the length field), writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = usize::from(self.len());
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }
}

/// The meaning of a UDP header: the ports (the length follows from the payload).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UdpRepr {
    pub src_port: u16,
    pub dst_port: u16,
}

impl UdpRepr {
    /// Reads a header, optionally verifying the checksum against the IPv4 pseudo-header
    /// (skip it when the device already did). Source port 0 means "no reply expected"
    /// (RFC 768) and is fine; destination port 0 is reserved and is `Malformed`.
    pub fn parse<T: AsRef<[u8]>>(
        packet: &Packet<T>,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        verify_checksum: bool,
    ) -> Result<UdpRepr> {
        packet.check_len()?;
        if packet.dst_port() == 0 {
            return Err(Error::Malformed);
        }
        if verify_checksum && !packet.verify_checksum(src, dst) {
            return Err(Error::BadChecksum);
        }
        Ok(UdpRepr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
        })
    }

    /// The header length, 8.
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header for a payload of `payload_len` bytes that is already in place
    /// at offset 8, with the checksum as `checksum` asks.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut Packet<T>,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        payload_len: usize,
        checksum: UdpChecksum,
    ) {
        debug_assert!(payload_len <= usize::from(u16::MAX) - HEADER_LEN);
        let len = (HEADER_LEN + payload_len) as u16;
        packet.set_src_port(self.src_port);
        packet.set_dst_port(self.dst_port);
        packet.set_len(len);
        match checksum {
            UdpChecksum::Compute => packet.fill_checksum(src, dst),
            UdpChecksum::Offload => {
                packet.set_checksum(checksum::pseudo_header_v4(src, dst, IpProtocol::Udp, len))
            }
            UdpChecksum::None => packet.set_checksum(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rand::Rand;
    use crate::wire::ethernet::Frame;
    use crate::wire::ipv4::{self, Ipv4Repr};
    use alloc::vec;
    use alloc::vec::Vec;

    const IP_A: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);
    const IP_B: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 2);

    const DATAGRAM: &[u8] = include_bytes!("testdata/udp_datagram.bin");
    const FRAG_FIRST: &[u8] = include_bytes!("testdata/udp_frag_first.bin");
    const FRAG_MIDDLE: &[u8] = include_bytes!("testdata/udp_frag_middle.bin");
    const FRAG_LAST: &[u8] = include_bytes!("testdata/udp_frag_last.bin");

    /// Ethernet -> IPv4 (checksum verified) -> the IP payload.
    fn ip_payload_of(frame: &[u8]) -> (Ipv4Repr, &[u8]) {
        let frame = Frame::new_checked(frame).unwrap();
        let ip = ipv4::Packet::new_checked(&frame.into_inner()[14..]).unwrap();
        let repr = Ipv4Repr::parse(&ip, true).unwrap();
        assert_eq!(repr.protocol, IpProtocol::Udp);
        let range = ip.header_len()..usize::from(ip.total_len());
        (repr, &ip.into_inner()[range])
    }

    #[test]
    fn parse_captured_datagram() {
        let (ip, bytes) = ip_payload_of(DATAGRAM);
        let packet = Packet::new_checked(bytes).unwrap();
        assert_eq!((packet.src_port(), packet.dst_port()), (40000, 7777));
        assert_eq!(packet.len(), 25);
        assert_eq!(packet.checksum(), 0x9687);
        assert!(packet.verify_checksum(ip.src_addr, ip.dst_addr));
        // The pseudo-header counts: the wrong addresses fail.
        assert!(!packet.verify_checksum(ip.src_addr, Ipv4Addr::new(10, 99, 0, 3)));
        assert_eq!(packet.payload(), b"rumpnet udp test\n");
        assert_eq!(
            UdpRepr::parse(&packet, IP_A, IP_B, true).unwrap(),
            UdpRepr {
                src_port: 40000,
                dst_port: 7777
            }
        );
    }

    #[test]
    fn fragments_reassemble_to_a_valid_datagram() {
        let (first, a) = ip_payload_of(FRAG_FIRST);
        let (_, b) = ip_payload_of(FRAG_MIDDLE);
        let (_, c) = ip_payload_of(FRAG_LAST);
        // The first fragment carries the header, but not the length it claims.
        let head = Packet::new_checked(a);
        assert_eq!(head.err(), Some(Error::Truncated));
        let head = Packet::new_unchecked(a);
        assert_eq!(
            (head.src_port(), head.dst_port(), head.len()),
            (40000, 7777, 3008)
        );
        let whole: Vec<u8> = [a, b, c].concat();
        let packet = Packet::new_checked(&whole[..]).unwrap();
        assert!(packet.verify_checksum(first.src_addr, first.dst_addr));
        let expected: Vec<u8> = (0..3000).map(|i| i as u8).collect();
        assert_eq!(packet.payload(), &expected[..]);
        assert!(UdpRepr::parse(&packet, IP_A, IP_B, true).is_ok());
    }

    #[test]
    fn emit_round_trips_captured_datagram() {
        let (_, bytes) = ip_payload_of(DATAGRAM);
        let repr = UdpRepr::parse(&Packet::new_checked(bytes).unwrap(), IP_A, IP_B, true).unwrap();
        assert_eq!(repr.header_len(), 8);
        let mut buf = vec![0xa5u8; bytes.len()];
        buf[8..].copy_from_slice(&bytes[8..]);
        let mut packet = Packet::new_unchecked(&mut buf[..]);
        repr.emit(
            &mut packet,
            IP_A,
            IP_B,
            bytes.len() - 8,
            UdpChecksum::Compute,
        );
        assert_eq!(&buf[..], bytes);
    }

    #[test]
    fn checksum_offload_and_none() {
        let (_, bytes) = ip_payload_of(DATAGRAM);
        let repr = UdpRepr {
            src_port: 40000,
            dst_port: 7777,
        };
        let payload_len = bytes.len() - 8;
        let mut buf = vec![0xa5u8; bytes.len()];
        buf[8..].copy_from_slice(&bytes[8..]);
        let mut packet = Packet::new_unchecked(&mut buf[..]);
        repr.emit(&mut packet, IP_A, IP_B, payload_len, UdpChecksum::Offload);
        assert_eq!(
            packet.checksum(),
            checksum::pseudo_header_v4(IP_A, IP_B, IpProtocol::Udp, 25)
        );
        // What the NIC does with the partial sum: checksum from csum_start (the UDP
        // header) to the end and store it, which yields Linux's value.
        let finished = checksum::finish(&[checksum::sum(&buf)]);
        assert_eq!(finished, 0x9687);

        let mut packet = Packet::new_unchecked(&mut buf[..]);
        repr.emit(&mut packet, IP_A, IP_B, payload_len, UdpChecksum::None);
        assert_eq!(packet.checksum(), 0);
        // RFC 768: zero means "not computed", and is accepted.
        assert!(packet.verify_checksum(IP_A, IP_B));
        assert_eq!(UdpRepr::parse(&packet, IP_A, IP_B, true), Ok(repr));
    }

    #[test]
    fn computed_zero_is_sent_as_all_ones() {
        // Pick a 2-byte payload that makes the one's complement sum 0xffff, so the
        // complement (the checksum) would be 0.
        let mut buf = [0xa5u8; 10];
        let repr = UdpRepr {
            src_port: 1234,
            dst_port: 5678,
        };
        let mut packet = Packet::new_unchecked(&mut buf[..]);
        repr.emit(&mut packet, IP_A, IP_B, 2, UdpChecksum::None);
        let rest = checksum::combine(&[
            checksum::pseudo_header_v4(IP_A, IP_B, IpProtocol::Udp, 10),
            checksum::sum(&buf[..8]),
        ]);
        buf[8..].copy_from_slice(&(!rest).to_be_bytes());
        let mut packet = Packet::new_unchecked(&mut buf[..]);
        repr.emit(&mut packet, IP_A, IP_B, 2, UdpChecksum::Compute);
        assert_eq!(packet.checksum(), 0xffff);
        assert!(packet.verify_checksum(IP_A, IP_B));
    }

    #[test]
    fn length_errors() {
        let (_, bytes) = ip_payload_of(DATAGRAM);
        for len in 0..bytes.len() {
            // Every cut is below the header or below the length field's claim.
            assert_eq!(
                Packet::new_checked(&bytes[..len]).err(),
                Some(Error::Truncated),
                "len {len}"
            );
        }
        let mut buf = Vec::from(bytes);
        for (field_len, want) in [
            (0u16, Err(Error::BadLength)),
            (7, Err(Error::BadLength)),
            (26, Err(Error::Truncated)),
            (0xffff, Err(Error::Truncated)),
            (8, Ok(0)),
            (25, Ok(17)),
        ] {
            buf[4..6].copy_from_slice(&field_len.to_be_bytes());
            let got = Packet::new_checked(&buf[..]).map(|p| p.payload().len());
            assert_eq!(got, want, "length field {field_len}");
        }
        // A buffer longer than the length field (IP padding): the payload stops at len.
        let mut long = Vec::from(bytes);
        long.extend_from_slice(&[0; 6]);
        let packet = Packet::new_checked(&long[..]).unwrap();
        assert_eq!(packet.payload(), b"rumpnet udp test\n");
        assert!(packet.verify_checksum(IP_A, IP_B));
    }

    #[test]
    fn bad_checksum_and_ports() {
        let (_, bytes) = ip_payload_of(DATAGRAM);
        let mut buf = Vec::from(bytes);
        buf[10] ^= 0x20;
        let packet = Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(
            UdpRepr::parse(&packet, IP_A, IP_B, true),
            Err(Error::BadChecksum)
        );
        assert!(UdpRepr::parse(&packet, IP_A, IP_B, false).is_ok());

        // Source port 0 is legal (no reply expected); destination port 0 is not.
        let mut buf = [0xa5u8; 8];
        let mut packet = Packet::new_unchecked(&mut buf[..]);
        UdpRepr {
            src_port: 0,
            dst_port: 53,
        }
        .emit(&mut packet, IP_A, IP_B, 0, UdpChecksum::Compute);
        assert_eq!(
            UdpRepr::parse(&packet, IP_A, IP_B, true).map(|r| r.src_port),
            Ok(0)
        );
        UdpRepr {
            src_port: 53,
            dst_port: 0,
        }
        .emit(&mut packet, IP_A, IP_B, 0, UdpChecksum::Compute);
        assert!(packet.verify_checksum(IP_A, IP_B));
        assert_eq!(
            UdpRepr::parse(&packet, IP_A, IP_B, true),
            Err(Error::Malformed)
        );
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = Rand::from_u64(11);
        let mut buf = [0u8; 48];
        for _ in 0..10_000 {
            let len = rng.below(48) as usize;
            rng.fill(&mut buf[..len]);
            if len >= 6 && rng.chance(0.7) {
                let claimed = rng.below(56) as u16;
                buf[4..6].copy_from_slice(&claimed.to_be_bytes());
            }
            if let Ok(packet) = Packet::new_checked(&buf[..len]) {
                assert_eq!(packet.payload().len() + 8, usize::from(packet.len()));
                let _ = UdpRepr::parse(&packet, IP_A, IP_B, true);
            }
        }
    }
}
