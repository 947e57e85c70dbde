//! Software receive-side scaling: the Toeplitz hash of a flow's 4-tuple, the indirection
//! table that turns a hash into a shard, and the classification of a received frame.
//!
//! The hash is the one NICs compute (Microsoft's RSS specification, "RSS hashing
//! functions"), so a NIC programmed with the same key and indirection table puts a flow
//! on the same queue as this code puts it on a shard, and a backend's hardware hash
//! ([`RxMeta::rss_hash`]) can be used as is. With [`SYMMETRIC_KEY`] (the 16-bit pattern
//! `0x6d5a` repeated, Woo and Park, "Scalable TCP Session Monitoring with Symmetric
//! Receive-side Scaling", 2012) swapping source and destination leaves the hash unchanged,
//! so both directions of a flow meet on one shard. The price of that key is that the
//! hash depends only on `src ^ dst` and `sport ^ dport`: flows whose XORs agree collide.
//! That spreads as well as any key over many ports, which is what a shard map needs; it
//! is not a defence against chosen collisions.

use std::net::Ipv4Addr;

use rumpnet_stack::device::RxMeta;
use rumpnet_stack::wire::ethernet::{EtherType, Frame as EthernetFrame};
use rumpnet_stack::wire::ipv4::Packet as Ipv4Packet;
use rumpnet_stack::wire::IpProtocol;

/// A Toeplitz key: 40 bytes, as NICs take it (enough for an IPv6 4-tuple).
pub type RssKey = [u8; 40];

/// The default key of Microsoft's RSS specification (and of most NIC drivers). Not
/// symmetric; here so the hash can be checked against the published verification table.
pub const MICROSOFT_KEY: RssKey = [
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0,
    0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c,
    0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
];

/// The symmetric key: `0x6d5a` repeated. Its period (16 bits) divides the offsets
/// between the two addresses (32 bits) and the two ports (16 bits) in the hash input, so
/// each swapped field meets the same key bits and `hash(a, b) == hash(b, a)`.
pub const SYMMETRIC_KEY: RssKey = {
    let mut k = [0u8; 40];
    let mut i = 0;
    while i < 40 {
        k[i] = if i % 2 == 0 { 0x6d } else { 0x5a };
        i += 1;
    }
    k
};

/// Entries in the indirection table: 128, as in Intel's NICs (the low 7 bits of the hash
/// pick an entry) and DPDK's default table.
pub const RETA_SIZE: usize = 128;

/// Bytes of hash input for an IPv4 4-tuple: source, destination, source port,
/// destination port.
const V4_INPUT: usize = 12;

/// The Toeplitz hash, straight from the specification: for each input bit that is set,
/// XOR in the 32 key bits that start at that bit's position. The reference that
/// [`Toeplitz`]'s tables are built from and checked against; `input` may be at most
/// `key.len() - 4` bytes.
pub fn toeplitz(key: &[u8], input: &[u8]) -> u32 {
    let mut result = 0u32;
    for (i, byte) in input.iter().enumerate() {
        for bit in 0..8 {
            if byte & (0x80 >> bit) != 0 {
                result ^= key_window(key, i * 8 + bit);
            }
        }
    }
    result
}

/// The 32 key bits starting at bit `pos` (bit 0 is the most significant bit of
/// `key[0]`); bits past the end of the key read as zero.
fn key_window(key: &[u8], pos: usize) -> u32 {
    let mut w = 0u64;
    for j in 0..5 {
        w = (w << 8) | u64::from(key.get(pos / 8 + j).copied().unwrap_or(0));
    }
    (w >> (8 - pos % 8)) as u32
}

/// The Toeplitz hash of an IPv4 4-tuple by table lookup: one table of 256 partial hashes
/// per input byte (12 KiB), since the hash is linear over GF(2) and the hash of a byte
/// string is the XOR of the hashes of its bytes in place.
#[derive(Clone)]
pub struct Toeplitz {
    table: Box<[[u32; 256]; V4_INPUT]>,
}

impl std::fmt::Debug for Toeplitz {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Toeplitz").finish_non_exhaustive()
    }
}

impl Toeplitz {
    /// The tables for `key`.
    pub fn new(key: &RssKey) -> Toeplitz {
        let mut table = Box::new([[0u32; 256]; V4_INPUT]);
        for (i, t) in table.iter_mut().enumerate() {
            let windows: [u32; 8] = core::array::from_fn(|bit| key_window(key, i * 8 + bit));
            for (b, entry) in t.iter_mut().enumerate() {
                *entry = (0..8)
                    .filter(|bit| b & (0x80 >> bit) != 0)
                    .fold(0, |acc, bit| acc ^ windows[bit]);
            }
        }
        Toeplitz { table }
    }

    /// Hash of the addresses and ports as they appear in the packet: source first.
    pub fn hash_v4(&self, src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16) -> u32 {
        let mut input = [0u8; V4_INPUT];
        input[0..4].copy_from_slice(&src.octets());
        input[4..8].copy_from_slice(&dst.octets());
        input[8..10].copy_from_slice(&sport.to_be_bytes());
        input[10..12].copy_from_slice(&dport.to_be_bytes());
        self.hash_input(&input)
    }

    /// Hash of the addresses only (what NICs compute for fragments and other IP).
    pub fn hash_v4_addrs(&self, src: Ipv4Addr, dst: Ipv4Addr) -> u32 {
        let mut input = [0u8; 8];
        input[0..4].copy_from_slice(&src.octets());
        input[4..8].copy_from_slice(&dst.octets());
        self.hash_input(&input)
    }

    fn hash_input(&self, input: &[u8]) -> u32 {
        input
            .iter()
            .zip(self.table.iter())
            .fold(0, |acc, (&b, t)| acc ^ t[usize::from(b)])
    }
}

/// Where a received frame goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Steer {
    /// To this shard only.
    Shard(usize),
    /// To every shard: each shard's interface keeps its own ARP cache, so every one of
    /// them must see the replies (and the requests, whose sender every cache learns
    /// under RFC 826's merge rule).
    All,
}

/// The shard map: a Toeplitz hash and an indirection table over `shards` shards.
///
/// Frames of a TCP or UDP flow (not fragmented) go to the shard the hash of their 4-tuple
/// picks; ARP goes to every shard; everything else — IP fragments (which carry no ports
/// after the first), ICMP, other EtherTypes, frames too short to classify — goes to
/// shard 0, which answers or drops and counts them like any stack would.
#[derive(Debug, Clone)]
pub struct Rss {
    toeplitz: Toeplitz,
    reta: [u16; RETA_SIZE],
    shards: usize,
}

impl Rss {
    /// A map over `shards` shards (at least 1) with `key`; the indirection table is
    /// filled round-robin (entry `i` is shard `i % shards`), as NIC drivers do by default.
    pub fn new(key: &RssKey, shards: usize) -> Rss {
        let shards = shards.clamp(1, usize::from(u16::MAX));
        Rss {
            toeplitz: Toeplitz::new(key),
            reta: core::array::from_fn(|i| (i % shards) as u16),
            shards,
        }
    }

    /// The symmetric map the runtime uses.
    pub fn symmetric(shards: usize) -> Rss {
        Rss::new(&SYMMETRIC_KEY, shards)
    }

    /// Number of shards.
    pub fn shards(&self) -> usize {
        self.shards
    }

    /// The hash function.
    pub fn toeplitz(&self) -> &Toeplitz {
        &self.toeplitz
    }

    /// The shard a hash maps to (through the indirection table).
    pub fn shard_of_hash(&self, hash: u32) -> usize {
        usize::from(self.reta[hash as usize % RETA_SIZE])
    }

    /// The shard of a flow, given as the packet carries it (either direction, with a
    /// symmetric key).
    pub fn shard_of_flow(&self, src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16) -> usize {
        self.shard_of_hash(self.toeplitz.hash_v4(src, dst, sport, dport))
    }

    /// Where a received Ethernet frame goes. A hash the device computed (`meta.rss_hash`,
    /// with the same key) is used instead of hashing again; it is only trusted for
    /// frames this function would hash itself, so ARP is still broadcast and fragments
    /// still go to shard 0. Never panics, whatever the bytes.
    pub fn steer(&self, frame: &[u8], meta: RxMeta) -> Steer {
        let Ok(eth) = EthernetFrame::new_checked(frame) else {
            return Steer::Shard(0);
        };
        match eth.ethertype() {
            EtherType::Arp => return Steer::All,
            EtherType::Ipv4 => {}
            _ => return Steer::Shard(0),
        }
        let Ok(ip) = Ipv4Packet::new_checked(eth.payload()) else {
            return Steer::Shard(0);
        };
        // RFC 791 §3.2: only the first fragment carries the transport header, so a
        // fragmented datagram cannot be hashed by ports; one shard reassembles them all.
        if ip.more_frags() || ip.frag_offset() != 0 {
            return Steer::Shard(0);
        }
        if !matches!(ip.protocol(), IpProtocol::Tcp | IpProtocol::Udp) {
            return Steer::Shard(0);
        }
        let l4 = ip.payload();
        let (Some(sp), Some(dp)) = (l4.get(0..2), l4.get(2..4)) else {
            return Steer::Shard(0);
        };
        let hash = match meta.rss_hash {
            Some(h) => h,
            None => self.toeplitz.hash_v4(
                ip.src_addr(),
                ip.dst_addr(),
                u16::from_be_bytes([sp[0], sp[1]]),
                u16::from_be_bytes([dp[0], dp[1]]),
            ),
        };
        Steer::Shard(self.shard_of_hash(hash))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Microsoft's "Verifying the RSS Hash Calculation" table (IPv4), with
    /// [`MICROSOFT_KEY`]: source, source port, destination, destination port, the hash
    /// of the addresses only, the hash of the 4-tuple.
    const VECTORS: [(&str, u16, &str, u16, u32, u32); 5] = [
        (
            "66.9.149.187",
            2794,
            "161.142.100.80",
            1766,
            0x323e8fc2,
            0x51ccc178,
        ),
        (
            "199.92.111.2",
            14230,
            "65.69.140.83",
            4739,
            0xd718262a,
            0xc626b0ea,
        ),
        (
            "24.19.198.95",
            12898,
            "12.22.207.184",
            38024,
            0xd2d0a5de,
            0x5c2b394a,
        ),
        (
            "38.27.205.30",
            48228,
            "209.142.163.6",
            2217,
            0x82989176,
            0xafc7327f,
        ),
        (
            "153.39.163.191",
            44251,
            "202.188.127.2",
            1303,
            0x5d1809c5,
            0x10e828a2,
        ),
    ];

    #[test]
    fn microsoft_verification_vectors() {
        let t = Toeplitz::new(&MICROSOFT_KEY);
        for (src, sport, dst, dport, l3, l4) in VECTORS {
            let (s, d): (Ipv4Addr, Ipv4Addr) = (src.parse().unwrap(), dst.parse().unwrap());
            assert_eq!(t.hash_v4_addrs(s, d), l3, "{src} -> {dst}");
            assert_eq!(
                t.hash_v4(s, d, sport, dport),
                l4,
                "{src}:{sport} -> {dst}:{dport}"
            );
            // The bit-by-bit reference agrees.
            let mut input = Vec::new();
            input.extend_from_slice(&s.octets());
            input.extend_from_slice(&d.octets());
            assert_eq!(toeplitz(&MICROSOFT_KEY, &input), l3);
            input.extend_from_slice(&sport.to_be_bytes());
            input.extend_from_slice(&dport.to_be_bytes());
            assert_eq!(toeplitz(&MICROSOFT_KEY, &input), l4);
        }
    }

    #[test]
    fn microsoft_key_is_not_symmetric() {
        // The check below means something: the default key does tell directions apart.
        let t = Toeplitz::new(&MICROSOFT_KEY);
        let (a, b) = (
            Ipv4Addr::new(66, 9, 149, 187),
            Ipv4Addr::new(161, 142, 100, 80),
        );
        assert_ne!(t.hash_v4(a, b, 2794, 1766), t.hash_v4(b, a, 1766, 2794));
    }

    #[test]
    fn symmetric_key_is_6d5a_repeated() {
        assert!(SYMMETRIC_KEY.chunks(2).all(|c| c == [0x6d, 0x5a]));
    }

    #[test]
    fn reta_round_robin() {
        let rss = Rss::symmetric(4);
        assert_eq!(
            (0..8).map(|h| rss.shard_of_hash(h)).collect::<Vec<_>>(),
            [0, 1, 2, 3, 0, 1, 2, 3]
        );
        assert_eq!(rss.shard_of_hash(128 + 5), 1);
        let one = Rss::symmetric(0);
        assert_eq!(one.shards(), 1);
        assert_eq!(one.shard_of_hash(u32::MAX), 0);
    }

    /// An Ethernet + IPv4 + 4 transport bytes frame (enough to steer; checksums unset).
    fn frame(
        src: Ipv4Addr,
        dst: Ipv4Addr,
        proto: u8,
        sport: u16,
        dport: u16,
        frag: u16,
    ) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 20 + 8];
        f[0..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 2]);
        f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 1]);
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        let ip = &mut f[14..];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&28u16.to_be_bytes());
        ip[6..8].copy_from_slice(&frag.to_be_bytes());
        ip[8] = 64;
        ip[9] = proto;
        ip[12..16].copy_from_slice(&src.octets());
        ip[16..20].copy_from_slice(&dst.octets());
        ip[20..22].copy_from_slice(&sport.to_be_bytes());
        ip[22..24].copy_from_slice(&dport.to_be_bytes());
        f
    }

    #[test]
    fn steer_classifies() {
        let rss = Rss::symmetric(4);
        let (a, b) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
        let none = RxMeta::default();
        // TCP and UDP: by the hash, the same both ways.
        for proto in [6, 17] {
            for port in 49152..49152 + 64 {
                let want = rss.shard_of_flow(a, b, port, 80);
                assert_eq!(
                    rss.steer(&frame(a, b, proto, port, 80, 0), none),
                    Steer::Shard(want)
                );
                assert_eq!(
                    rss.steer(&frame(b, a, proto, 80, port, 0), none),
                    Steer::Shard(want)
                );
            }
        }
        // Fragments (first: MF set; later: offset), ICMP: shard 0.
        let mf = 0x2000;
        for port in 49152..49152 + 64 {
            assert_eq!(
                rss.steer(&frame(a, b, 6, port, 80, mf), none),
                Steer::Shard(0)
            );
            assert_eq!(
                rss.steer(&frame(a, b, 17, port, 80, 185), none),
                Steer::Shard(0)
            );
            assert_eq!(
                rss.steer(&frame(a, b, 1, port, 80, 0), none),
                Steer::Shard(0)
            );
        }
        // ARP: everyone.
        let mut arp = vec![0u8; 42];
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(rss.steer(&arp, none), Steer::All);
        // Garbage and truncation: shard 0.
        assert_eq!(rss.steer(&[], none), Steer::Shard(0));
        let f = frame(a, b, 6, 50000, 80, 0);
        for len in 0..f.len() {
            let s = rss.steer(&f[..len], none);
            assert!(matches!(s, Steer::Shard(_)));
        }
        assert_eq!(rss.steer(&f[..14 + 20 + 3], none), Steer::Shard(0));
    }

    #[test]
    fn steer_uses_the_device_hash() {
        let rss = Rss::symmetric(4);
        let (a, b) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
        let f = frame(a, b, 6, 50000, 80, 0);
        for h in 0..8u32 {
            let meta = RxMeta {
                rss_hash: Some(h),
                ..RxMeta::default()
            };
            assert_eq!(rss.steer(&f, meta), Steer::Shard(h as usize % 4));
            // Not for fragments: those have no ports the device could have hashed.
            assert_eq!(
                rss.steer(&frame(a, b, 6, 50000, 80, 0x2000), meta),
                Steer::Shard(0)
            );
        }
    }

    /// Over the whole ephemeral range the symmetric hash splits ports exactly evenly
    /// (the hash is linear in the port bits, and the low bits the table uses depend on
    /// them with full rank), so an uneven spread of random ports is sampling noise only.
    #[test]
    fn ephemeral_ports_split_exactly_evenly() {
        let (a, b) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
        for shards in [2, 4, 8] {
            let rss = Rss::symmetric(shards);
            let mut count = vec![0usize; shards];
            for port in 49152..=65535u16 {
                count[rss.shard_of_flow(a, b, port, 7000)] += 1;
            }
            assert!(count.iter().all(|&c| c == 16384 / shards), "{count:?}");
        }
    }

    proptest! {
        #[test]
        fn symmetric_hash_is_symmetric(a: u32, b: u32, p: u16, q: u16) {
            let t = Toeplitz::new(&SYMMETRIC_KEY);
            let (a, b) = (Ipv4Addr::from(a), Ipv4Addr::from(b));
            prop_assert_eq!(t.hash_v4(a, b, p, q), t.hash_v4(b, a, q, p));
            prop_assert_eq!(t.hash_v4_addrs(a, b), t.hash_v4_addrs(b, a));
        }

        #[test]
        fn tables_match_the_reference(key: [u8; 32], a: u32, b: u32, p: u16, q: u16) {
            let mut k = [0u8; 40];
            k[..32].copy_from_slice(&key);
            let t = Toeplitz::new(&k);
            let mut input = Vec::new();
            input.extend_from_slice(&a.to_be_bytes());
            input.extend_from_slice(&b.to_be_bytes());
            input.extend_from_slice(&p.to_be_bytes());
            input.extend_from_slice(&q.to_be_bytes());
            prop_assert_eq!(t.hash_v4(a.into(), b.into(), p, q), toeplitz(&k, &input));
        }

        #[test]
        fn steer_never_panics(bytes: Vec<u8>, hash: Option<u32>) {
            let rss = Rss::symmetric(3);
            let meta = RxMeta { rss_hash: hash, ..RxMeta::default() };
            match rss.steer(&bytes, meta) {
                Steer::Shard(s) => prop_assert!(s < 3),
                Steer::All => {}
            }
        }
    }
}
