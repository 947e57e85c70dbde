//! Wire formats: zero-copy views over packet bytes, and `Repr`s to parse and emit them.
//!
//! Each header has two levels, as in smoltcp. A view (`Packet<T: AsRef<[u8]>>`) reads
//! and, when `T: AsMut<[u8]>`, writes fields in place; `new_checked` validates untrusted
//! input once, after which no accessor can panic. A `Repr` is the parsed, owned meaning
//! of a header with `parse`, `emit` and `buffer_len`; emitting writes every byte of the
//! header and never reads what was in the buffer before.

use core::fmt;

pub mod arp;
pub mod checksum;
pub mod ethernet;
pub mod icmpv4;
pub mod ipv4;
pub mod seq;
pub mod tcp;
pub mod udp;

pub use core::net::Ipv4Addr;

/// Why a header could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Error {
    /// The buffer ends before the header (or the length it claims) does.
    Truncated,
    /// A length field is inconsistent (smaller than the header, larger than the buffer).
    BadLength,
    /// The checksum does not verify.
    BadChecksum,
    /// The IP version is not the one this parser reads.
    BadVersion,
    /// The IPv4 header length (IHL) is below 5 words or past the packet.
    BadHeaderLength,
    /// A TCP/IP option is malformed (bad length, truncated, wrong size for its kind).
    BadOption,
    /// A field has a value the protocol does not allow (e.g. an ARP hardware type).
    Malformed,
    /// Well-formed but not something this stack handles (unknown ethertype, ICMP type).
    Unsupported,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Error::Truncated => "truncated packet",
            Error::BadLength => "inconsistent length field",
            Error::BadChecksum => "bad checksum",
            Error::BadVersion => "bad IP version",
            Error::BadHeaderLength => "bad header length",
            Error::BadOption => "malformed option",
            Error::Malformed => "malformed header",
            Error::Unsupported => "unsupported protocol or type",
        })
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Error {}

/// The result of parsing wire bytes.
pub type Result<T> = core::result::Result<T, Error>;

/// A 48-bit Ethernet MAC address.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct EthernetAddress(pub [u8; 6]);

impl EthernetAddress {
    /// ff:ff:ff:ff:ff:ff.
    pub const BROADCAST: EthernetAddress = EthernetAddress([0xff; 6]);
    /// 00:00:00:00:00:00 (unknown target in ARP requests).
    pub const UNSPECIFIED: EthernetAddress = EthernetAddress([0; 6]);

    /// The address from its bytes; `None` unless `bytes` is 6 long.
    pub fn from_bytes(bytes: &[u8]) -> Option<EthernetAddress> {
        <[u8; 6]>::try_from(bytes).ok().map(EthernetAddress)
    }
    /// The six bytes of the address.
    pub const fn as_bytes(&self) -> &[u8; 6] {
        &self.0
    }
    /// ff:ff:ff:ff:ff:ff.
    pub fn is_broadcast(&self) -> bool {
        *self == Self::BROADCAST
    }
    /// The group bit is set (multicast or broadcast).
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }
    /// A station address: neither group nor all-zero.
    pub fn is_unicast(&self) -> bool {
        !self.is_multicast() && *self != Self::UNSPECIFIED
    }
    /// Locally administered (bit 1 of the first byte); generated MACs use it.
    pub fn is_local(&self) -> bool {
        self.0[0] & 0x02 != 0
    }
}

impl fmt::Display for EthernetAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl fmt::Debug for EthernetAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl core::str::FromStr for EthernetAddress {
    type Err = Error;
    fn from_str(s: &str) -> Result<EthernetAddress> {
        let mut out = [0u8; 6];
        let mut parts = s.split([':', '-']);
        for b in out.iter_mut() {
            let p = parts.next().ok_or(Error::Malformed)?;
            if p.len() != 2 {
                return Err(Error::Malformed);
            }
            *b = u8::from_str_radix(p, 16).map_err(|_| Error::Malformed)?;
        }
        if parts.next().is_some() {
            return Err(Error::Malformed);
        }
        Ok(EthernetAddress(out))
    }
}

/// An IPv4 address with a prefix length: an interface address or a route's destination.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Cidr {
    address: Ipv4Addr,
    prefix_len: u8,
}

impl Ipv4Cidr {
    /// `address/prefix_len`; `None` if `prefix_len > 32`.
    pub const fn new(address: Ipv4Addr, prefix_len: u8) -> Option<Ipv4Cidr> {
        if prefix_len > 32 {
            None
        } else {
            Some(Ipv4Cidr {
                address,
                prefix_len,
            })
        }
    }
    /// The address part.
    pub const fn address(&self) -> Ipv4Addr {
        self.address
    }
    /// The prefix length.
    pub const fn prefix_len(&self) -> u8 {
        self.prefix_len
    }
    /// The netmask as a host-order integer.
    #[inline]
    pub const fn mask_bits(&self) -> u32 {
        // Shifted in 64 bits, /0 needs no branch: the 32-bit shift leaves nothing in the
        // low half. Route lookups and address checks run this on every packet.
        (u64::MAX << (32 - self.prefix_len as u32)) as u32
    }
    /// The netmask.
    pub const fn netmask(&self) -> Ipv4Addr {
        Ipv4Addr::from_bits(self.mask_bits())
    }
    /// The network address (host bits cleared).
    pub const fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from_bits(self.address.to_bits() & self.mask_bits())
    }
    /// The subnet-directed broadcast address (all host bits set); `None` for /31 and /32,
    /// which have no broadcast address (RFC 3021).
    pub const fn broadcast(&self) -> Option<Ipv4Addr> {
        if self.prefix_len >= 31 {
            None
        } else {
            Some(Ipv4Addr::from_bits(
                self.address.to_bits() | !self.mask_bits(),
            ))
        }
    }
    /// `addr` lies inside this prefix.
    pub const fn contains(&self, addr: Ipv4Addr) -> bool {
        (addr.to_bits() ^ self.address.to_bits()) & self.mask_bits() == 0
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix_len)
    }
}

impl fmt::Debug for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl core::str::FromStr for Ipv4Cidr {
    type Err = Error;
    fn from_str(s: &str) -> Result<Ipv4Cidr> {
        let (a, p) = s.split_once('/').ok_or(Error::Malformed)?;
        let address: Ipv4Addr = a.parse().map_err(|_| Error::Malformed)?;
        let prefix: u8 = p.parse().map_err(|_| Error::Malformed)?;
        Ipv4Cidr::new(address, prefix).ok_or(Error::Malformed)
    }
}

/// IP protocol numbers the stack knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpProtocol {
    Icmp,
    Tcp,
    Udp,
    Unknown(u8),
}

impl From<u8> for IpProtocol {
    fn from(v: u8) -> Self {
        match v {
            1 => IpProtocol::Icmp,
            6 => IpProtocol::Tcp,
            17 => IpProtocol::Udp,
            other => IpProtocol::Unknown(other),
        }
    }
}

impl From<IpProtocol> for u8 {
    fn from(p: IpProtocol) -> u8 {
        match p {
            IpProtocol::Icmp => 1,
            IpProtocol::Tcp => 6,
            IpProtocol::Udp => 17,
            IpProtocol::Unknown(v) => v,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn mac_parse_display() {
        let m: EthernetAddress = "02:00:5e:10:00:01".parse().unwrap();
        assert_eq!(m.0, [2, 0, 0x5e, 0x10, 0, 1]);
        assert_eq!(m.to_string(), "02:00:5e:10:00:01");
        assert!(m.is_unicast() && m.is_local());
        assert!("02:00:5e:10:00".parse::<EthernetAddress>().is_err());
        assert!("02:00:5e:10:00:01:02".parse::<EthernetAddress>().is_err());
        assert!("zz:00:5e:10:00:01".parse::<EthernetAddress>().is_err());
        assert!(EthernetAddress::BROADCAST.is_multicast());
    }

    #[test]
    fn cidr_math() {
        let c: Ipv4Cidr = "10.1.2.3/24".parse().unwrap();
        assert_eq!(c.network(), Ipv4Addr::new(10, 1, 2, 0));
        assert_eq!(c.netmask(), Ipv4Addr::new(255, 255, 255, 0));
        assert_eq!(c.broadcast(), Some(Ipv4Addr::new(10, 1, 2, 255)));
        assert!(c.contains(Ipv4Addr::new(10, 1, 2, 200)));
        assert!(!c.contains(Ipv4Addr::new(10, 1, 3, 1)));
        let d: Ipv4Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(d.contains(Ipv4Addr::new(8, 8, 8, 8)));
        assert_eq!(
            Ipv4Cidr::new(Ipv4Addr::LOCALHOST, 32).unwrap().broadcast(),
            None
        );
        assert!("10.0.0.1/33".parse::<Ipv4Cidr>().is_err());
        assert!("10.0.0.1".parse::<Ipv4Cidr>().is_err());
        // The branch-free mask at every prefix length, /0 and /32 included.
        for p in 0..=32u8 {
            let c = Ipv4Cidr::new(Ipv4Addr::new(10, 1, 2, 3), p).unwrap();
            let want = if p == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(p))
            };
            assert_eq!(c.mask_bits(), want, "/{p}");
        }
    }
}
