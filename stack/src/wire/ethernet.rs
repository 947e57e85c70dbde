//! Ethernet II frames (IEEE 802.3 with an EtherType), optionally with one 802.1Q tag.
//!
//! Only the header is handled here: the NIC strips the preamble and the FCS, and any
//! padding up to the 60-byte minimum stays in the payload, where the IP header's total
//! length tells the next layer where the datagram really ends.

use super::{Error, EthernetAddress, Result};

/// The length of an untagged Ethernet II header.
pub const HEADER_LEN: usize = 14;
/// The length of one 802.1Q tag (TPID + TCI) inserted before the EtherType.
pub const VLAN_TAG_LEN: usize = 4;

mod field {
    use core::ops::Range;

    pub const DESTINATION: Range<usize> = 0..6;
    pub const SOURCE: Range<usize> = 6..12;
    /// The EtherType, or the TPID (0x8100) of an 802.1Q tag.
    pub const ETHERTYPE: Range<usize> = 12..14;
    /// IEEE 802.1Q: the tag control information (PCP, DEI, VID) follows the TPID...
    pub const VLAN_TCI: Range<usize> = 14..16;
    /// ...and the encapsulated EtherType follows the tag.
    pub const VLAN_ETHERTYPE: Range<usize> = 16..18;
}

/// The EtherTypes the stack tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EtherType {
    Ipv4,
    Arp,
    Ipv6,
    /// An IEEE 802.1Q customer VLAN tag (TPID 0x8100).
    Vlan,
    Unknown(u16),
}

impl From<u16> for EtherType {
    fn from(v: u16) -> Self {
        match v {
            0x0800 => EtherType::Ipv4,
            0x0806 => EtherType::Arp,
            0x86dd => EtherType::Ipv6,
            0x8100 => EtherType::Vlan,
            other => EtherType::Unknown(other),
        }
    }
}

impl From<EtherType> for u16 {
    fn from(t: EtherType) -> u16 {
        match t {
            EtherType::Ipv4 => 0x0800,
            EtherType::Arp => 0x0806,
            EtherType::Ipv6 => 0x86dd,
            EtherType::Vlan => 0x8100,
            EtherType::Unknown(v) => v,
        }
    }
}

/// The tag control information of an 802.1Q tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VlanTag {
    /// Priority code point (IEEE 802.1p class), 3 bits.
    pub pcp: u8,
    /// Drop eligible indicator.
    pub dei: bool,
    /// VLAN identifier, 12 bits (0 = priority tag only, 4095 reserved).
    pub vid: u16,
}

impl VlanTag {
    fn from_tci(tci: u16) -> VlanTag {
        VlanTag {
            pcp: (tci >> 13) as u8,
            dei: tci & 0x1000 != 0,
            vid: tci & 0x0fff,
        }
    }

    fn tci(&self) -> u16 {
        (u16::from(self.pcp & 0x7) << 13) | (u16::from(self.dei) << 12) | (self.vid & 0x0fff)
    }
}

/// A read/write view of an Ethernet frame.
#[derive(Debug, Clone)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// Wraps a buffer without checking it; accessors may panic if it is too short.
    pub const fn new_unchecked(buffer: T) -> Frame<T> {
        Frame { buffer }
    }

    /// Wraps a buffer after checking that it holds the whole header (with its tag, if the
    /// outer EtherType announces one), so no accessor can panic.
    pub fn new_checked(buffer: T) -> Result<Frame<T>> {
        let frame = Self::new_unchecked(buffer);
        frame.check_len()?;
        Ok(frame)
    }

    /// `Err(Truncated)` if the buffer is shorter than the header it claims.
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN || len < self.header_len() {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    /// Gives the buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn outer_type(&self) -> u16 {
        let d = self.buffer.as_ref();
        u16::from_be_bytes([d[field::ETHERTYPE.start], d[field::ETHERTYPE.start + 1]])
    }

    fn is_tagged(&self) -> bool {
        self.outer_type() == u16::from(EtherType::Vlan)
    }

    /// 14, or 18 when one 802.1Q tag is present.
    pub fn header_len(&self) -> usize {
        if self.is_tagged() {
            HEADER_LEN + VLAN_TAG_LEN
        } else {
            HEADER_LEN
        }
    }

    pub fn dst_addr(&self) -> EthernetAddress {
        let mut a = [0u8; 6];
        a.copy_from_slice(&self.buffer.as_ref()[field::DESTINATION]);
        EthernetAddress(a)
    }

    pub fn src_addr(&self) -> EthernetAddress {
        let mut a = [0u8; 6];
        a.copy_from_slice(&self.buffer.as_ref()[field::SOURCE]);
        EthernetAddress(a)
    }

    /// The EtherType of the payload: the one after the 802.1Q tag when there is one.
    /// (Stacked tags, 802.1ad, show up as an inner `Vlan` and are not unwrapped.)
    pub fn ethertype(&self) -> EtherType {
        if self.is_tagged() {
            let d = self.buffer.as_ref();
            let r = field::VLAN_ETHERTYPE;
            EtherType::from(u16::from_be_bytes([d[r.start], d[r.start + 1]]))
        } else {
            EtherType::from(self.outer_type())
        }
    }

    /// The 802.1Q tag, if the frame carries one.
    pub fn vlan(&self) -> Option<VlanTag> {
        if self.is_tagged() {
            let d = self.buffer.as_ref();
            let r = field::VLAN_TCI;
            Some(VlanTag::from_tci(u16::from_be_bytes([
                d[r.start],
                d[r.start + 1],
            ])))
        } else {
            None
        }
    }

    /// Everything after the header, including any padding to the minimum frame size.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Frame<T> {
    pub fn set_dst_addr(&mut self, addr: EthernetAddress) {
        self.buffer.as_mut()[field::DESTINATION].copy_from_slice(&addr.0);
    }

    pub fn set_src_addr(&mut self, addr: EthernetAddress) {
        self.buffer.as_mut()[field::SOURCE].copy_from_slice(&addr.0);
    }

    /// Sets the outer EtherType field (the TPID when a tag follows).
    pub fn set_outer_ethertype(&mut self, ethertype: EtherType) {
        self.buffer.as_mut()[field::ETHERTYPE].copy_from_slice(&u16::from(ethertype).to_be_bytes());
    }

    /// Writes a tag: the TPID, the TCI and the inner EtherType (bytes 12..18).
    pub fn set_vlan(&mut self, tag: VlanTag, inner: EtherType) {
        let d = self.buffer.as_mut();
        d[field::ETHERTYPE].copy_from_slice(&u16::from(EtherType::Vlan).to_be_bytes());
        d[field::VLAN_TCI].copy_from_slice(&tag.tci().to_be_bytes());
        d[field::VLAN_ETHERTYPE].copy_from_slice(&u16::from(inner).to_be_bytes());
    }

    /// The payload, writable (the header length follows the tag currently written).
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let start = self.header_len();
        &mut self.buffer.as_mut()[start..]
    }
}

/// The meaning of an Ethernet header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EthernetRepr {
    pub src_addr: EthernetAddress,
    pub dst_addr: EthernetAddress,
    /// The EtherType of the payload (inside the tag when `vlan` is set).
    pub ethertype: EtherType,
    pub vlan: Option<VlanTag>,
}

impl EthernetRepr {
    /// Reads the header of a checked frame.
    pub fn parse<T: AsRef<[u8]>>(frame: &Frame<T>) -> Result<EthernetRepr> {
        frame.check_len()?;
        Ok(EthernetRepr {
            src_addr: frame.src_addr(),
            dst_addr: frame.dst_addr(),
            ethertype: frame.ethertype(),
            vlan: frame.vlan(),
        })
    }

    /// The header length this repr emits: 14, or 18 with a tag.
    pub const fn buffer_len(&self) -> usize {
        if self.vlan.is_some() {
            HEADER_LEN + VLAN_TAG_LEN
        } else {
            HEADER_LEN
        }
    }

    /// Writes the header; the buffer must be at least [`buffer_len`](Self::buffer_len).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, frame: &mut Frame<T>) {
        frame.set_dst_addr(self.dst_addr);
        frame.set_src_addr(self.src_addr);
        match self.vlan {
            Some(tag) => frame.set_vlan(tag, self.ethertype),
            None => frame.set_outer_ethertype(self.ethertype),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rand::Rand;
    use alloc::vec;

    const MAC_A: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 1]);
    const MAC_B: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 2]);

    /// Every frame captured from Linux (see testdata/README.md).
    const CAPTURES: &[&[u8]] = &[
        include_bytes!("testdata/arp_request.bin"),
        include_bytes!("testdata/arp_reply.bin"),
        include_bytes!("testdata/icmp_echo_request.bin"),
        include_bytes!("testdata/icmp_echo_reply.bin"),
        include_bytes!("testdata/icmp_port_unreachable.bin"),
        include_bytes!("testdata/ipv4_options.bin"),
        include_bytes!("testdata/ipv4_options_reply.bin"),
        include_bytes!("testdata/udp_datagram.bin"),
        include_bytes!("testdata/udp_frag_first.bin"),
        include_bytes!("testdata/udp_frag_middle.bin"),
        include_bytes!("testdata/udp_frag_last.bin"),
        include_bytes!("testdata/tcp_syn.bin"),
        include_bytes!("testdata/tcp_synack.bin"),
        include_bytes!("testdata/tcp_ack_ts.bin"),
        include_bytes!("testdata/tcp_data.bin"),
        include_bytes!("testdata/vlan_icmp_echo_request.bin"),
    ];
    const VLAN_ECHO: &[u8] = include_bytes!("testdata/vlan_icmp_echo_request.bin");

    #[test]
    fn parse_captured_arp_request() {
        let bytes = include_bytes!("testdata/arp_request.bin");
        let frame = Frame::new_checked(&bytes[..]).unwrap();
        assert_eq!(frame.header_len(), 14);
        assert_eq!(frame.vlan(), None);
        assert_eq!(frame.payload().len(), 28);
        let repr = EthernetRepr::parse(&frame).unwrap();
        assert_eq!(
            repr,
            EthernetRepr {
                src_addr: MAC_A,
                dst_addr: EthernetAddress::BROADCAST,
                ethertype: EtherType::Arp,
                vlan: None,
            }
        );
        assert_eq!(repr.buffer_len(), 14);
    }

    #[test]
    fn parse_captured_ipv4_frames() {
        let req =
            Frame::new_checked(&include_bytes!("testdata/icmp_echo_request.bin")[..]).unwrap();
        assert_eq!((req.src_addr(), req.dst_addr()), (MAC_A, MAC_B));
        assert_eq!(req.ethertype(), EtherType::Ipv4);
        assert_eq!(req.payload()[0], 0x45);
        let reply =
            Frame::new_checked(&include_bytes!("testdata/icmp_echo_reply.bin")[..]).unwrap();
        assert_eq!((reply.src_addr(), reply.dst_addr()), (MAC_B, MAC_A));
        assert_eq!(reply.ethertype(), EtherType::Ipv4);
    }

    #[test]
    fn parse_captured_vlan_frame() {
        let frame = Frame::new_checked(VLAN_ECHO).unwrap();
        assert_eq!(frame.header_len(), 18);
        assert_eq!(
            frame.vlan(),
            Some(VlanTag {
                pcp: 0,
                dei: false,
                vid: 42
            })
        );
        assert_eq!(frame.ethertype(), EtherType::Ipv4);
        // The IPv4 header starts right after the tag.
        assert_eq!(frame.payload()[0], 0x45);
        assert_eq!(frame.payload().len(), VLAN_ECHO.len() - 18);
        let repr = EthernetRepr::parse(&frame).unwrap();
        assert_eq!(repr.buffer_len(), 18);
        assert_eq!(repr.vlan.map(|t| t.vid), Some(42));
    }

    #[test]
    fn emit_round_trips_every_capture() {
        for (i, &bytes) in CAPTURES.iter().enumerate() {
            let repr = EthernetRepr::parse(&Frame::new_checked(bytes).unwrap()).unwrap();
            let mut buf = vec![0xa5u8; bytes.len()];
            let mut frame = Frame::new_unchecked(&mut buf[..]);
            repr.emit(&mut frame);
            frame
                .payload_mut()
                .copy_from_slice(&bytes[repr.buffer_len()..]);
            assert_eq!(&buf[..], bytes, "capture #{i}");
        }
    }

    #[test]
    fn emit_vlan_header() {
        let repr = EthernetRepr {
            src_addr: MAC_A,
            dst_addr: MAC_B,
            ethertype: EtherType::Arp,
            vlan: Some(VlanTag {
                pcp: 5,
                dei: true,
                vid: 0xabc,
            }),
        };
        assert_eq!(repr.buffer_len(), 18);
        let mut buf = [0xa5u8; 18];
        repr.emit(&mut Frame::new_unchecked(&mut buf[..]));
        assert_eq!(
            buf,
            [2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x81, 0x00, 0xba, 0xbc, 0x08, 0x06]
        );
        let frame = Frame::new_checked(&buf[..]).unwrap();
        assert_eq!(EthernetRepr::parse(&frame).unwrap(), repr);
        assert!(frame.payload().is_empty());
    }

    #[test]
    fn truncated_headers_are_refused() {
        for &bytes in CAPTURES {
            let header_len = if bytes[12..14] == [0x81, 0x00] {
                18
            } else {
                14
            };
            for len in 0..bytes.len() {
                let r = Frame::new_checked(&bytes[..len]);
                if len < header_len {
                    assert_eq!(r.err(), Some(Error::Truncated), "len {len}");
                } else {
                    assert_eq!(r.unwrap().payload().len(), len - header_len);
                }
            }
        }
    }

    #[test]
    fn ethertype_conversions() {
        for (v, t) in [
            (0x0800, EtherType::Ipv4),
            (0x0806, EtherType::Arp),
            (0x86dd, EtherType::Ipv6),
            (0x8100, EtherType::Vlan),
            (0x88cc, EtherType::Unknown(0x88cc)),
        ] {
            assert_eq!(EtherType::from(v), t);
            assert_eq!(u16::from(t), v);
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = Rand::from_u64(7);
        let mut buf = [0u8; 40];
        for _ in 0..10_000 {
            let len = rng.below(40) as usize;
            rng.fill(&mut buf[..len]);
            if rng.chance(0.5) && len >= 14 {
                buf[12..14].copy_from_slice(&[0x81, 0x00]);
            }
            if let Ok(frame) = Frame::new_checked(&buf[..len]) {
                let repr = EthernetRepr::parse(&frame).unwrap();
                assert_eq!(repr.buffer_len() + frame.payload().len(), len);
            }
        }
    }
}
