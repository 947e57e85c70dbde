//! The Address Resolution Protocol (RFC 826), for IPv4 over Ethernet only.
//!
//! The view reads any hardware/protocol address lengths (the addresses are located
//! through `hlen`/`plen`, so an odd packet cannot make an accessor read past the
//! buffer); the [`ArpRepr`] accepts only Ethernet + IPv4, the one pairing this stack
//! resolves.

use super::ethernet::EtherType;
use super::{Error, EthernetAddress, Ipv4Addr, Result};

mod field {
    use core::ops::Range;

    pub const HTYPE: Range<usize> = 0..2;
    pub const PTYPE: Range<usize> = 2..4;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: Range<usize> = 6..8;
    /// The variable-length addresses start here: SHA, SPA, THA, TPA.
    pub const ADDRS: usize = 8;

    pub const fn sha(hlen: u8, _plen: u8) -> Range<usize> {
        ADDRS..ADDRS + hlen as usize
    }
    pub const fn spa(hlen: u8, plen: u8) -> Range<usize> {
        let start = sha(hlen, plen).end;
        start..start + plen as usize
    }
    pub const fn tha(hlen: u8, plen: u8) -> Range<usize> {
        let start = spa(hlen, plen).end;
        start..start + hlen as usize
    }
    pub const fn tpa(hlen: u8, plen: u8) -> Range<usize> {
        let start = tha(hlen, plen).end;
        start..start + plen as usize
    }
}

/// RFC 826 hardware type for Ethernet (ar$hrd).
const HTYPE_ETHERNET: u16 = 1;
/// The length of an Ethernet/IPv4 ARP packet.
pub const ETHERNET_IPV4_LEN: usize = 28;

/// The ARP opcode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    Request,
    Reply,
    Unknown(u16),
}

impl From<u16> for Operation {
    fn from(v: u16) -> Self {
        match v {
            1 => Operation::Request,
            2 => Operation::Reply,
            other => Operation::Unknown(other),
        }
    }
}

impl From<Operation> for u16 {
    fn from(op: Operation) -> u16 {
        match op {
            Operation::Request => 1,
            Operation::Reply => 2,
            Operation::Unknown(v) => v,
        }
    }
}

/// A read/write view of an ARP packet.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking it; accessors may panic if it is too short.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps a buffer after checking that the fixed part and the four addresses, at the
    /// lengths `hlen`/`plen` claim, are all inside it.
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// `Err(Truncated)` if the buffer ends before the target protocol address does.
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < field::ADDRS || len < field::tpa(self.hardware_len(), self.protocol_len()).end {
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

    pub fn hardware_type(&self) -> u16 {
        self.read_u16(field::HTYPE)
    }

    pub fn protocol_type(&self) -> EtherType {
        EtherType::from(self.read_u16(field::PTYPE))
    }

    pub fn hardware_len(&self) -> u8 {
        self.buffer.as_ref()[field::HLEN]
    }

    pub fn protocol_len(&self) -> u8 {
        self.buffer.as_ref()[field::PLEN]
    }

    pub fn operation(&self) -> Operation {
        Operation::from(self.read_u16(field::OPER))
    }

    pub fn source_hardware_addr(&self) -> &[u8] {
        &self.buffer.as_ref()[field::sha(self.hardware_len(), self.protocol_len())]
    }

    pub fn source_protocol_addr(&self) -> &[u8] {
        &self.buffer.as_ref()[field::spa(self.hardware_len(), self.protocol_len())]
    }

    pub fn target_hardware_addr(&self) -> &[u8] {
        &self.buffer.as_ref()[field::tha(self.hardware_len(), self.protocol_len())]
    }

    pub fn target_protocol_addr(&self) -> &[u8] {
        &self.buffer.as_ref()[field::tpa(self.hardware_len(), self.protocol_len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    fn write_u16(&mut self, r: core::ops::Range<usize>, v: u16) {
        self.buffer.as_mut()[r].copy_from_slice(&v.to_be_bytes());
    }

    pub fn set_hardware_type(&mut self, v: u16) {
        self.write_u16(field::HTYPE, v)
    }

    pub fn set_protocol_type(&mut self, v: EtherType) {
        self.write_u16(field::PTYPE, v.into())
    }

    pub fn set_hardware_len(&mut self, v: u8) {
        self.buffer.as_mut()[field::HLEN] = v;
    }

    pub fn set_protocol_len(&mut self, v: u8) {
        self.buffer.as_mut()[field::PLEN] = v;
    }

    pub fn set_operation(&mut self, v: Operation) {
        self.write_u16(field::OPER, v.into())
    }

    /// Writes the source hardware address; its length must equal `hardware_len()`.
    pub fn set_source_hardware_addr(&mut self, addr: &[u8]) {
        let r = field::sha(self.hardware_len(), self.protocol_len());
        self.buffer.as_mut()[r].copy_from_slice(addr);
    }

    /// Writes the source protocol address; its length must equal `protocol_len()`.
    pub fn set_source_protocol_addr(&mut self, addr: &[u8]) {
        let r = field::spa(self.hardware_len(), self.protocol_len());
        self.buffer.as_mut()[r].copy_from_slice(addr);
    }

    /// Writes the target hardware address; its length must equal `hardware_len()`.
    pub fn set_target_hardware_addr(&mut self, addr: &[u8]) {
        let r = field::tha(self.hardware_len(), self.protocol_len());
        self.buffer.as_mut()[r].copy_from_slice(addr);
    }

    /// Writes the target protocol address; its length must equal `protocol_len()`.
    pub fn set_target_protocol_addr(&mut self, addr: &[u8]) {
        let r = field::tpa(self.hardware_len(), self.protocol_len());
        self.buffer.as_mut()[r].copy_from_slice(addr);
    }
}

/// The meaning of an Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpRepr {
    pub operation: Operation,
    pub source_hardware_addr: EthernetAddress,
    pub source_protocol_addr: Ipv4Addr,
    pub target_hardware_addr: EthernetAddress,
    pub target_protocol_addr: Ipv4Addr,
}

impl ArpRepr {
    /// Reads an Ethernet/IPv4 request or reply; anything else is `Unsupported`.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<ArpRepr> {
        packet.check_len()?;
        if packet.hardware_type() != HTYPE_ETHERNET
            || packet.protocol_type() != EtherType::Ipv4
            || packet.hardware_len() != 6
            || packet.protocol_len() != 4
        {
            return Err(Error::Unsupported);
        }
        let operation = match packet.operation() {
            op @ (Operation::Request | Operation::Reply) => op,
            Operation::Unknown(_) => return Err(Error::Unsupported),
        };
        Ok(ArpRepr {
            operation,
            source_hardware_addr: mac(packet.source_hardware_addr()),
            source_protocol_addr: ipv4(packet.source_protocol_addr()),
            target_hardware_addr: mac(packet.target_hardware_addr()),
            target_protocol_addr: ipv4(packet.target_protocol_addr()),
        })
    }

    /// Always 28: an Ethernet/IPv4 ARP packet.
    pub const fn buffer_len(&self) -> usize {
        ETHERNET_IPV4_LEN
    }

    /// Writes the packet; the buffer must be at least [`buffer_len`](Self::buffer_len).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        packet.set_hardware_type(HTYPE_ETHERNET);
        packet.set_protocol_type(EtherType::Ipv4);
        packet.set_hardware_len(6);
        packet.set_protocol_len(4);
        packet.set_operation(self.operation);
        packet.set_source_hardware_addr(&self.source_hardware_addr.0);
        packet.set_source_protocol_addr(&self.source_protocol_addr.octets());
        packet.set_target_hardware_addr(&self.target_hardware_addr.0);
        packet.set_target_protocol_addr(&self.target_protocol_addr.octets());
    }
}

/// The caller has checked the slice is 6 bytes (hlen == 6).
fn mac(b: &[u8]) -> EthernetAddress {
    let mut a = [0u8; 6];
    a.copy_from_slice(b);
    EthernetAddress(a)
}

/// The caller has checked the slice is 4 bytes (plen == 4).
fn ipv4(b: &[u8]) -> Ipv4Addr {
    let mut a = [0u8; 4];
    a.copy_from_slice(b);
    Ipv4Addr::from(a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rand::Rand;
    use crate::wire::ethernet::{EthernetRepr, Frame};

    const MAC_A: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 1]);
    const MAC_B: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 2]);
    const IP_A: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);
    const IP_B: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 2);
    const REQUEST: &[u8] = include_bytes!("testdata/arp_request.bin");
    const REPLY: &[u8] = include_bytes!("testdata/arp_reply.bin");

    fn arp_of(frame: &[u8]) -> &[u8] {
        let frame = Frame::new_checked(frame).unwrap();
        assert_eq!(frame.ethertype(), EtherType::Arp);
        &frame.into_inner()[14..]
    }

    #[test]
    fn parse_captured_request() {
        let packet = Packet::new_checked(arp_of(REQUEST)).unwrap();
        assert_eq!(packet.hardware_type(), 1);
        assert_eq!(packet.protocol_type(), EtherType::Ipv4);
        assert_eq!((packet.hardware_len(), packet.protocol_len()), (6, 4));
        assert_eq!(packet.operation(), Operation::Request);
        assert_eq!(packet.source_hardware_addr(), &MAC_A.0);
        assert_eq!(packet.target_protocol_addr(), &IP_B.octets());
        assert_eq!(
            ArpRepr::parse(&packet).unwrap(),
            ArpRepr {
                operation: Operation::Request,
                source_hardware_addr: MAC_A,
                source_protocol_addr: IP_A,
                // Linux leaves the unknown target hardware address zero.
                target_hardware_addr: EthernetAddress::UNSPECIFIED,
                target_protocol_addr: IP_B,
            }
        );
    }

    #[test]
    fn parse_captured_reply() {
        let packet = Packet::new_checked(arp_of(REPLY)).unwrap();
        assert_eq!(
            ArpRepr::parse(&packet).unwrap(),
            ArpRepr {
                operation: Operation::Reply,
                source_hardware_addr: MAC_B,
                source_protocol_addr: IP_B,
                target_hardware_addr: MAC_A,
                target_protocol_addr: IP_A,
            }
        );
    }

    #[test]
    fn emit_round_trips_captured_frames() {
        for capture in [REQUEST, REPLY] {
            let eth = EthernetRepr::parse(&Frame::new_checked(capture).unwrap()).unwrap();
            let arp = ArpRepr::parse(&Packet::new_checked(arp_of(capture)).unwrap()).unwrap();
            assert_eq!(arp.buffer_len(), 28);
            let mut buf = [0xa5u8; 42];
            let mut frame = Frame::new_unchecked(&mut buf[..]);
            eth.emit(&mut frame);
            arp.emit(&mut Packet::new_unchecked(frame.payload_mut()));
            assert_eq!(&buf[..], capture);
        }
    }

    #[test]
    fn truncated_packets_are_refused() {
        let arp = arp_of(REQUEST);
        for len in 0..arp.len() {
            assert_eq!(
                Packet::new_checked(&arp[..len]).err(),
                Some(Error::Truncated),
                "len {len}"
            );
        }
        // Trailing bytes (Ethernet padding to 60) are fine.
        let mut padded = [0u8; 46];
        padded[..28].copy_from_slice(arp);
        let packet = Packet::new_checked(&padded[..]).unwrap();
        assert_eq!(ArpRepr::parse(&packet).unwrap().target_protocol_addr, IP_B);
    }

    #[test]
    fn other_address_types_are_unsupported() {
        let arp = arp_of(REQUEST);
        let mut buf = [0u8; 28];
        // Each edit: (byte, value) applied to a copy of the request, and the outcome.
        for (at, value, want) in [
            (1, 6u8, Error::Unsupported),  // htype IEEE 802
            (2, 0x86, Error::Unsupported), // ptype 0x8600
            (4, 0, Error::Unsupported),    // hlen 0
            (5, 0, Error::Unsupported),    // plen 0
            (4, 8, Error::Truncated),      // hlen 8: the addresses run past 28 bytes
            (5, 16, Error::Truncated),     // plen 16 (IPv6-sized)
        ] {
            buf.copy_from_slice(arp);
            buf[at] = value;
            let got = Packet::new_checked(&buf[..]).and_then(|p| ArpRepr::parse(&p));
            assert_eq!(got, Err(want), "byte {at} = {value}");
        }
        // hlen 8 (e.g. some other hardware) in a buffer long enough: read, then refused.
        let mut long = [0u8; 8 + 2 * (8 + 4)];
        long[..8].copy_from_slice(&arp[..8]);
        long[4] = 8;
        long[16..20].copy_from_slice(&IP_A.octets());
        let packet = Packet::new_checked(&long[..]).unwrap();
        assert_eq!(packet.source_hardware_addr().len(), 8);
        assert_eq!(packet.source_protocol_addr(), &IP_A.octets());
        assert_eq!(ArpRepr::parse(&packet), Err(Error::Unsupported));
        // hlen 255 cannot make an accessor read past a short buffer.
        buf.copy_from_slice(arp);
        buf[4] = 255;
        assert_eq!(Packet::new_checked(&buf[..]).err(), Some(Error::Truncated));
    }

    #[test]
    fn unknown_operation_is_unsupported() {
        let mut buf = [0u8; 28];
        buf.copy_from_slice(arp_of(REPLY));
        buf[7] = 9; // RFC 2390 InARP request
        let packet = Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(packet.operation(), Operation::Unknown(9));
        assert_eq!(ArpRepr::parse(&packet), Err(Error::Unsupported));
        assert_eq!(u16::from(Operation::Unknown(9)), 9);
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = Rand::from_u64(8);
        let mut buf = [0u8; 64];
        for _ in 0..10_000 {
            let len = rng.below(64) as usize;
            rng.fill(&mut buf[..len]);
            if len > 5 && rng.chance(0.5) {
                buf[4] = rng.below(12) as u8;
                buf[5] = rng.below(12) as u8;
            }
            if let Ok(packet) = Packet::new_checked(&buf[..len]) {
                let _ = packet.target_protocol_addr();
                let _ = ArpRepr::parse(&packet);
            }
        }
    }
}
