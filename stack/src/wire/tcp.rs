//! TCP header (RFC 9293 §3.1) and its options: end of list, no-operation and maximum
//! segment size (RFC 9293 §3.2), window scale and timestamps (RFC 7323), SACK-permitted and
//! SACK blocks (RFC 2018).
//!
//! [`Packet`] is the zero-copy view over a segment's bytes, [`TcpOption`] parses and emits
//! one option, and [`TcpRepr`] is the parsed header with its options. [`TcpRepr::emit`]
//! lays options out the way Linux does (`tcp_options_write`), so our segments look
//! familiar in a capture and real Linux segments round-trip byte for byte.

use core::fmt;

use super::checksum;
use super::seq::SeqNumber;
use super::{Error, IpProtocol, Ipv4Addr, Result};

/// Length of the TCP header without options.
pub const HEADER_LEN: usize = 20;
/// Longest TCP header: the 4-bit data offset counts at most 15 32-bit words.
pub const MAX_HEADER_LEN: usize = 60;
/// Room for options: 40 bytes.
pub const MAX_OPTIONS_LEN: usize = MAX_HEADER_LEN - HEADER_LEN;
/// Most SACK blocks one option can carry: 2 + 8·4 = 34 bytes fits in 40, 5 blocks do not
/// (RFC 2018 §3).
pub const MAX_SACK_BLOCKS: usize = 4;
/// Largest window scale shift (RFC 7323 §2.3).
pub const MAX_WINDOW_SCALE: u8 = 14;

mod field {
    pub type Field = core::ops::Range<usize>;

    pub const SRC_PORT: Field = 0..2;
    pub const DST_PORT: Field = 2..4;
    pub const SEQ_NUM: Field = 4..8;
    pub const ACK_NUM: Field = 8..12;
    /// Data offset (4 bits), reserved (3 bits), then the 9 control bits.
    pub const FLAGS: Field = 12..14;
    pub const WIN_SIZE: Field = 14..16;
    pub const CHECKSUM: Field = 16..18;
    pub const URGENT: Field = 18..20;

    pub const OPT_END: u8 = 0x00;
    pub const OPT_NOP: u8 = 0x01;
    pub const OPT_MSS: u8 = 0x02;
    pub const OPT_WS: u8 = 0x03;
    pub const OPT_SACKPERM: u8 = 0x04;
    pub const OPT_SACKRNG: u8 = 0x05;
    pub const OPT_TSTAMP: u8 = 0x08;

    pub const LEN_MSS: usize = 4;
    pub const LEN_WS: usize = 3;
    pub const LEN_SACKPERM: usize = 2;
    pub const LEN_TSTAMP: usize = 10;
    /// [`LEN_TSTAMP`] as the length byte holds it, for matching raw option bytes.
    pub const LEN_TSTAMP_BYTE: u8 = LEN_TSTAMP as u8;
    pub const LEN_SACK_BLOCK: usize = 8;
}

#[inline]
fn read_u16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

#[inline]
fn read_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// The partial sum of the IPv4 pseudo-header for a segment of `len` bytes. The length is
/// added as a 32-bit value, as Linux's `csum_tcpudp_nofold` does, so a TSO super-segment
/// over 64 KiB still gets the sum a segmenting NIC adjusts from.
fn pseudo_sum(src: Ipv4Addr, dst: Ipv4Addr, len: usize) -> u16 {
    // Summed as 32-bit words in 64 bits (2^16 = 1 modulo 0xffff, so the one's
    // complement sum of the 16-bit halves is the same), then folded to 16: three
    // additions and three folds rather than seven 16-bit words.
    let acc = u64::from(src.to_bits())
        + u64::from(dst.to_bits())
        + u64::from(u8::from(IpProtocol::Tcp))
        + (len as u32) as u64;
    let acc = (acc & 0xffff_ffff) + (acc >> 32);
    let acc = (acc & 0xffff) + (acc >> 16);
    let acc = (acc & 0xffff) + (acc >> 16);
    ((acc & 0xffff) + (acc >> 16)) as u16
}

/// The pseudo-header sum for `src` and `dst` without the length, for
/// [`TcpChecksum::OffloadFrom`]: [`pseudo_sum`] is this with the length added. Never zero
/// (the protocol number is in it), so adding the length and folding gives the very
/// value `pseudo_sum` gives.
pub fn pseudo_sum_addrs(src: Ipv4Addr, dst: Ipv4Addr) -> u16 {
    pseudo_sum(src, dst, 0)
}

/// [`pseudo_sum`] for a segment of `len` bytes from the sum of its addresses
/// ([`pseudo_sum_addrs`]): the length is added as a 32-bit value, as there.
/// Each half of the length goes in as a 16-bit one's complement addition (the carry
/// out of the top added back in): the same value as summing in 32 bits and folding
/// twice, in fewer steps. The carry added back never carries again (a sum that
/// carries leaves at most 0xfffe).
#[inline(always)]
fn pseudo_sum_from(addrs: u16, len: usize) -> u16 {
    let len = len as u32;
    let (acc, carry) = addrs.overflowing_add(len as u16);
    let acc = acc + u16::from(carry);
    let (acc, carry) = acc.overflowing_add((len >> 16) as u16);
    acc + u16::from(carry)
}

/// The TCP control bits (RFC 9293 §3.1, RFC 3168 for ECE/CWR).
///
/// Holds the nine bits below the data offset that have a meaning; the three reserved bits
/// are zero when generated and ignored when received (RFC 9293 §3.1), so they never
/// get in here.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flags(u16);

impl Flags {
    /// No more data from sender.
    pub const FIN: Flags = Flags(0x001);
    /// Synchronize sequence numbers.
    pub const SYN: Flags = Flags(0x002);
    /// Reset the connection.
    pub const RST: Flags = Flags(0x004);
    /// Push function.
    pub const PSH: Flags = Flags(0x008);
    /// The acknowledgment field is significant.
    pub const ACK: Flags = Flags(0x010);
    /// The urgent pointer field is significant.
    pub const URG: Flags = Flags(0x020);
    /// ECN-Echo (RFC 3168).
    pub const ECE: Flags = Flags(0x040);
    /// Congestion Window Reduced (RFC 3168).
    pub const CWR: Flags = Flags(0x080);
    /// The ECN nonce sum bit of RFC 3540 (historic since RFC 8311); AccECN (RFC 9768)
    /// reuses it as AE.
    pub const NS: Flags = Flags(0x100);

    const ALL: u16 = 0x1ff;
    const NAMES: [(Flags, &'static str, &'static str); 9] = [
        (Flags::FIN, "FIN", "F"),
        (Flags::SYN, "SYN", "S"),
        (Flags::RST, "RST", "R"),
        (Flags::PSH, "PSH", "P"),
        (Flags::ACK, "ACK", "."),
        (Flags::URG, "URG", "U"),
        (Flags::ECE, "ECE", "E"),
        (Flags::CWR, "CWR", "W"),
        (Flags::NS, "NS", "e"),
    ];

    /// No bit set.
    pub const fn empty() -> Flags {
        Flags(0)
    }
    /// The flags of the low 9 bits of `bits`; other bits are dropped.
    pub const fn from_bits_truncate(bits: u16) -> Flags {
        Flags(bits & Self::ALL)
    }
    /// The bits as they sit in the low 9 bits of header bytes 12..14.
    pub const fn bits(self) -> u16 {
        self.0
    }
    /// No bit set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// Every bit of `other` is set in `self`.
    pub const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }
    /// Some bit of `other` is set in `self`.
    pub const fn intersects(self, other: Flags) -> bool {
        self.0 & other.0 != 0
    }
    /// Set the bits of `other`.
    pub fn insert(&mut self, other: Flags) {
        self.0 |= other.0;
    }
    /// Clear the bits of `other`.
    pub fn remove(&mut self, other: Flags) {
        self.0 &= !other.0;
    }
    /// Set or clear the bits of `other`.
    pub fn set(&mut self, other: Flags, on: bool) {
        if on {
            self.insert(other)
        } else {
            self.remove(other)
        }
    }
}

impl core::ops::BitOr for Flags {
    type Output = Flags;
    fn bitor(self, rhs: Flags) -> Flags {
        Flags(self.0 | rhs.0)
    }
}

impl core::ops::BitOrAssign for Flags {
    fn bitor_assign(&mut self, rhs: Flags) {
        self.0 |= rhs.0;
    }
}

impl core::ops::BitAnd for Flags {
    type Output = Flags;
    fn bitand(self, rhs: Flags) -> Flags {
        Flags(self.0 & rhs.0)
    }
}

impl core::ops::Not for Flags {
    type Output = Flags;
    fn not(self) -> Flags {
        Flags(!self.0 & Self::ALL)
    }
}

/// `SYN | ACK`, or `(empty)`.
impl fmt::Debug for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("(empty)");
        }
        let mut first = true;
        for (flag, name, _) in Flags::NAMES {
            if self.contains(flag) {
                if !first {
                    f.write_str(" | ")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        Ok(())
    }
}

/// tcpdump's letters: `S.` for SYN-ACK, `P.` for PSH-ACK, `none` when empty.
impl fmt::Display for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("none");
        }
        for (flag, _, letter) in Flags::NAMES {
            if self.contains(flag) {
                f.write_str(letter)?;
            }
        }
        Ok(())
    }
}

/// A read/write view of a TCP segment: header, options and payload.
///
/// The buffer is the whole segment (the IP payload, sized by the IP total length), since
/// the checksum covers all of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// A view without any length check; accessors may panic on a short buffer.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// A view of untrusted bytes: [`check_len`](Self::check_len) passed, so no accessor
    /// can panic.
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// The buffer holds the fixed header and the options its data offset claims.
    ///
    /// `Truncated` if shorter than 20 bytes or than the data offset; `BadHeaderLength` if
    /// the data offset is under 5 words (RFC 9293 §3.1: the header is at least 20 bytes).
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let header_len = self.header_len();
        if header_len < HEADER_LEN {
            Err(Error::BadHeaderLength)
        } else if header_len > len {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Source port.
    pub fn src_port(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::SRC_PORT])
    }

    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::DST_PORT])
    }

    /// Sequence number of the first octet (the ISN when SYN is set).
    pub fn seq_number(&self) -> SeqNumber {
        SeqNumber(read_u32(&self.buffer.as_ref()[field::SEQ_NUM]))
    }

    /// Acknowledgment number; meaningful only when ACK is set.
    pub fn ack_number(&self) -> SeqNumber {
        SeqNumber(read_u32(&self.buffer.as_ref()[field::ACK_NUM]))
    }

    /// Header length in bytes, from the data offset (4 × a 4-bit word count).
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::FLAGS.start] >> 4) * 4
    }

    /// The control bits (reserved bits left out).
    ///
    /// Always inlined: a few instructions on the path of every segment, which LLVM
    /// left a call where the receive path is inlined in more than one place.
    #[inline(always)]
    pub fn flags(&self) -> Flags {
        Flags::from_bits_truncate(read_u16(&self.buffer.as_ref()[field::FLAGS]))
    }

    /// The window field as sent: not yet shifted by the window scale.
    pub fn window_len(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::WIN_SIZE])
    }

    /// The checksum field.
    pub fn checksum(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::CHECKSUM])
    }

    /// The urgent pointer field; meaningful only when URG is set.
    pub fn urgent_at(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::URGENT])
    }

    /// The option bytes between the fixed header and the data offset.
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.header_len()]
    }

    /// The data after the header.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }

    /// Sequence space the segment occupies: payload plus one for SYN and one for FIN
    /// (RFC 9293 §3.4).
    pub fn segment_len(&self) -> usize {
        let flags = self.flags();
        self.payload().len()
            + usize::from(flags.contains(Flags::SYN))
            + usize::from(flags.contains(Flags::FIN))
    }

    /// The checksum over the pseudo-header and the whole buffer verifies (RFC 9293 §3.1).
    pub fn verify_checksum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        let data = self.buffer.as_ref();
        checksum::verifies(&[pseudo_sum(src, dst, data.len()), checksum::sum(data)])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Set the source port.
    pub fn set_src_port(&mut self, value: u16) {
        self.buffer.as_mut()[field::SRC_PORT].copy_from_slice(&value.to_be_bytes());
    }

    /// Set the destination port.
    pub fn set_dst_port(&mut self, value: u16) {
        self.buffer.as_mut()[field::DST_PORT].copy_from_slice(&value.to_be_bytes());
    }

    /// Set the sequence number.
    pub fn set_seq_number(&mut self, value: SeqNumber) {
        self.buffer.as_mut()[field::SEQ_NUM].copy_from_slice(&value.0.to_be_bytes());
    }

    /// Set the acknowledgment number.
    pub fn set_ack_number(&mut self, value: SeqNumber) {
        self.buffer.as_mut()[field::ACK_NUM].copy_from_slice(&value.0.to_be_bytes());
    }

    /// Set the data offset from a header length in bytes (a multiple of 4, 20..=60);
    /// the control bits are kept.
    pub fn set_header_len(&mut self, value: usize) {
        let b = &mut self.buffer.as_mut()[field::FLAGS.start];
        *b = (*b & 0x0f) | (((value / 4) as u8) << 4);
    }

    /// Set the control bits; the data offset is kept and the reserved bits are cleared.
    pub fn set_flags(&mut self, value: Flags) {
        let raw = read_u16(&self.buffer.as_ref()[field::FLAGS]);
        let raw = (raw & 0xf000) | value.bits();
        self.buffer.as_mut()[field::FLAGS].copy_from_slice(&raw.to_be_bytes());
    }

    /// Set the (unscaled) window field.
    pub fn set_window_len(&mut self, value: u16) {
        self.buffer.as_mut()[field::WIN_SIZE].copy_from_slice(&value.to_be_bytes());
    }

    /// Set the checksum field.
    pub fn set_checksum(&mut self, value: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&value.to_be_bytes());
    }

    /// Set the urgent pointer.
    pub fn set_urgent_at(&mut self, value: u16) {
        self.buffer.as_mut()[field::URGENT].copy_from_slice(&value.to_be_bytes());
    }

    /// The option bytes, writable.
    pub fn options_mut(&mut self) -> &mut [u8] {
        let header_len = self.header_len();
        &mut self.buffer.as_mut()[HEADER_LEN..header_len]
    }

    /// The payload, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let header_len = self.header_len();
        &mut self.buffer.as_mut()[header_len..]
    }

    /// Compute and store the checksum over the pseudo-header and the whole buffer.
    pub fn fill_checksum(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        let len = self.buffer.as_ref().len();
        self.fill_checksum_over(len, src, dst);
    }

    /// The checksum of the first `len` bytes (the segment, in a buffer that may be longer).
    fn fill_checksum_over(&mut self, len: usize, src: Ipv4Addr, dst: Ipv4Addr) {
        self.set_checksum(0);
        let data = &self.buffer.as_ref()[..len];
        let sum = checksum::finish(&[pseudo_sum(src, dst, len), checksum::sum(data)]);
        self.set_checksum(sum);
    }
}

/// One TCP option, borrowed from the option bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpOption<'a> {
    /// Kind 0: end of the option list; what follows is padding.
    EndOfList,
    /// Kind 1: one byte of padding between options.
    NoOperation,
    /// Kind 2: the largest segment the sender can receive (RFC 9293 §3.7.1), SYN only.
    MaxSegmentSize(u16),
    /// Kind 3: the sender's receive-window shift (RFC 7323 §2), SYN only.
    WindowScale(u8),
    /// Kind 4: the sender can receive SACK blocks (RFC 2018 §2), SYN only.
    SackPermitted,
    /// Kind 5: up to four received blocks `[left, right)` beyond the cumulative ACK
    /// (RFC 2018 §3); filled from index 0, unused entries `None`.
    SackRange([Option<(SeqNumber, SeqNumber)>; MAX_SACK_BLOCKS]),
    /// Kind 8: timestamps (RFC 7323 §3).
    TimeStamp { tsval: u32, tsecr: u32 },
    /// Any other kind, skipped by its length field (RFC 9293 §3.1, MUST-6: ignore without
    /// error any option not implemented, assuming it has a length field).
    Unknown { kind: u8, data: &'a [u8] },
}

impl<'a> TcpOption<'a> {
    /// Parse the option at the start of `buffer`, returning the bytes after it.
    ///
    /// `Truncated` for an empty buffer. `BadOption` when the length byte is missing,
    /// under 2 or past the end of `buffer`, when a known kind has the wrong length
    /// (MSS 4, window scale 3, SACK-permitted 2, timestamps 10, SACK 2 + 8n with n in
    /// 1..=4). A window scale above 14 is returned as 14: RFC 7323 §2.3 says the receiver
    /// "MUST use 14 instead of the specified value".
    pub fn parse(buffer: &'a [u8]) -> Result<(&'a [u8], TcpOption<'a>)> {
        let (&kind, after_kind) = buffer.split_first().ok_or(Error::Truncated)?;
        match kind {
            field::OPT_END => return Ok((after_kind, TcpOption::EndOfList)),
            field::OPT_NOP => return Ok((after_kind, TcpOption::NoOperation)),
            _ => {}
        }
        let length = usize::from(*after_kind.first().ok_or(Error::BadOption)?);
        if length < 2 || length > buffer.len() {
            return Err(Error::BadOption);
        }
        let (option, rest) = buffer.split_at(length);
        let data = &option[2..];
        let option = match kind {
            field::OPT_MSS if length == field::LEN_MSS => TcpOption::MaxSegmentSize(read_u16(data)),
            field::OPT_WS if length == field::LEN_WS => {
                // RFC 7323 §2.3: a shift above 14 is taken as 14.
                TcpOption::WindowScale(data[0].min(MAX_WINDOW_SCALE))
            }
            field::OPT_SACKPERM if length == field::LEN_SACKPERM => TcpOption::SackPermitted,
            field::OPT_TSTAMP if length == field::LEN_TSTAMP => TcpOption::TimeStamp {
                tsval: read_u32(&data[0..4]),
                tsecr: read_u32(&data[4..8]),
            },
            field::OPT_SACKRNG
                if data.len() % field::LEN_SACK_BLOCK == 0
                    && (1..=MAX_SACK_BLOCKS).contains(&(data.len() / field::LEN_SACK_BLOCK)) =>
            {
                let mut ranges = [None; MAX_SACK_BLOCKS];
                for (slot, block) in ranges
                    .iter_mut()
                    .zip(data.chunks_exact(field::LEN_SACK_BLOCK))
                {
                    *slot = Some((
                        SeqNumber(read_u32(&block[0..4])),
                        SeqNumber(read_u32(&block[4..8])),
                    ));
                }
                TcpOption::SackRange(ranges)
            }
            field::OPT_MSS
            | field::OPT_WS
            | field::OPT_SACKPERM
            | field::OPT_TSTAMP
            | field::OPT_SACKRNG => return Err(Error::BadOption),
            _ => TcpOption::Unknown { kind, data },
        };
        Ok((rest, option))
    }

    /// The option's kind byte.
    pub fn kind(&self) -> u8 {
        match *self {
            TcpOption::EndOfList => field::OPT_END,
            TcpOption::NoOperation => field::OPT_NOP,
            TcpOption::MaxSegmentSize(_) => field::OPT_MSS,
            TcpOption::WindowScale(_) => field::OPT_WS,
            TcpOption::SackPermitted => field::OPT_SACKPERM,
            TcpOption::SackRange(_) => field::OPT_SACKRNG,
            TcpOption::TimeStamp { .. } => field::OPT_TSTAMP,
            TcpOption::Unknown { kind, .. } => kind,
        }
    }

    /// Bytes the option takes on the wire.
    pub fn buffer_len(&self) -> usize {
        match *self {
            TcpOption::EndOfList | TcpOption::NoOperation => 1,
            TcpOption::MaxSegmentSize(_) => field::LEN_MSS,
            TcpOption::WindowScale(_) => field::LEN_WS,
            TcpOption::SackPermitted => field::LEN_SACKPERM,
            TcpOption::SackRange(ranges) => {
                2 + ranges.iter().flatten().count() * field::LEN_SACK_BLOCK
            }
            TcpOption::TimeStamp { .. } => field::LEN_TSTAMP,
            TcpOption::Unknown { data, .. } => 2 + data.len(),
        }
    }

    /// Write the option at the start of `buffer` and return the bytes after it. A
    /// `SackRange` writes its `Some` entries in order.
    ///
    /// # Panics
    /// If `buffer` is shorter than [`buffer_len`](Self::buffer_len), or an `Unknown`
    /// option's data is over 253 bytes (its length would not fit the length byte).
    pub fn emit<'b>(&self, buffer: &'b mut [u8]) -> &'b mut [u8] {
        let length = self.buffer_len();
        let (option, rest) = buffer.split_at_mut(length);
        option[0] = self.kind();
        if length > 1 {
            assert!(
                length <= usize::from(u8::MAX),
                "TCP option longer than 255 bytes"
            );
            option[1] = length as u8;
        }
        match *self {
            TcpOption::EndOfList | TcpOption::NoOperation | TcpOption::SackPermitted => {}
            TcpOption::MaxSegmentSize(mss) => option[2..4].copy_from_slice(&mss.to_be_bytes()),
            TcpOption::WindowScale(shift) => option[2] = shift,
            TcpOption::SackRange(ranges) => {
                let blocks = option[2..].chunks_exact_mut(field::LEN_SACK_BLOCK);
                for (block, (left, right)) in blocks.zip(ranges.iter().flatten()) {
                    block[0..4].copy_from_slice(&left.0.to_be_bytes());
                    block[4..8].copy_from_slice(&right.0.to_be_bytes());
                }
            }
            TcpOption::TimeStamp { tsval, tsecr } => {
                option[2..6].copy_from_slice(&tsval.to_be_bytes());
                option[6..10].copy_from_slice(&tsecr.to_be_bytes());
            }
            TcpOption::Unknown { data, .. } => option[2..].copy_from_slice(data),
        }
        rest
    }
}

/// As tcpdump prints options: `mss 1460`, `sackOK`, `TS val 1 ecr 0`, `nop`, `wscale 7`,
/// `sack 2 {10:20}{30:40}`, `opt-30:aabb`.
impl fmt::Display for TcpOption<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            TcpOption::EndOfList => f.write_str("eol"),
            TcpOption::NoOperation => f.write_str("nop"),
            TcpOption::MaxSegmentSize(mss) => write!(f, "mss {mss}"),
            TcpOption::WindowScale(shift) => write!(f, "wscale {shift}"),
            TcpOption::SackPermitted => f.write_str("sackOK"),
            TcpOption::SackRange(ranges) => {
                write!(f, "sack {} ", ranges.iter().flatten().count())?;
                for (left, right) in ranges.iter().flatten() {
                    write!(f, "{{{left}:{right}}}")?;
                }
                Ok(())
            }
            TcpOption::TimeStamp { tsval, tsecr } => write!(f, "TS val {tsval} ecr {tsecr}"),
            TcpOption::Unknown { kind, data } => {
                write!(f, "opt-{kind}:")?;
                for b in data {
                    write!(f, "{b:02x}")?;
                }
                Ok(())
            }
        }
    }
}

/// The timestamps option's values (RFC 7323 §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpTimestamp {
    /// The sender's timestamp clock when the segment was sent.
    pub tsval: u32,
    /// The most recent `tsval` received from the peer (0 in a SYN).
    pub tsecr: u32,
}

impl TcpTimestamp {
    /// A timestamp option's values.
    pub const fn new(tsval: u32, tsecr: u32) -> TcpTimestamp {
        TcpTimestamp { tsval, tsecr }
    }
}

/// How [`TcpRepr::emit`] fills the checksum field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TcpChecksum {
    /// Compute the full checksum in software.
    Compute,
    /// Leave the pseudo-header sum, folded but not complemented, for the NIC to finish over
    /// the segment: what virtio-net (`VIRTIO_NET_HDR_F_NEEDS_CSUM`), DPDK
    /// (`RTE_MBUF_F_TX_TCP_CKSUM`) and Linux `CHECKSUM_PARTIAL` expect.
    Offload,
    /// [`Offload`](Self::Offload), given the pseudo-header sum without the length, as
    /// [`pseudo_sum_addrs`] gives it for the segment's addresses (a sender that sends
    /// many segments on one path works it out once).
    OffloadFrom(u16),
}

/// The size of a header and how many SACK blocks fit in its options, from
/// [`TcpRepr::layout_header`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderLayout {
    len: usize,
    blocks: usize,
}

impl HeaderLayout {
    /// The header length, options included: 20..=60, a multiple of 4.
    #[inline]
    pub fn header_len(self) -> usize {
        self.len
    }
}

/// A parsed TCP header with its options.
///
/// Options appear here whether or not the segment is a SYN; a TCB only sets MSS, window
/// scale and SACK-permitted on SYNs, and ignores them elsewhere (RFC 9293 §3.7.1,
/// RFC 7323 §2.2, RFC 2018 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpRepr<'a> {
    pub src_port: u16,
    pub dst_port: u16,
    /// The control bits, ACK included: on parse it is set iff `ack_number` is `Some`.
    pub flags: Flags,
    pub seq_number: SeqNumber,
    /// `Some` iff the ACK bit is set. On emit this, not `flags`, decides the ACK bit, so
    /// the two cannot disagree on the wire.
    pub ack_number: Option<SeqNumber>,
    /// The window field as sent, before window scaling.
    pub window_len: u16,
    /// The urgent pointer field, as sent (meaningful only with URG).
    pub urgent_pointer: u16,
    pub max_seg_size: Option<u16>,
    /// The shift of the window-scale option, at most 14 once parsed.
    pub window_scale: Option<u8>,
    pub sack_permitted: bool,
    /// SACK blocks `[left, right)`, filled from index 0. On emit, as many as fit in the
    /// 40 bytes of options next to the other options are sent (see [`TcpRepr::emit`]).
    pub sack_ranges: [Option<(SeqNumber, SeqNumber)>; MAX_SACK_BLOCKS],
    pub timestamp: Option<TcpTimestamp>,
    pub payload: &'a [u8],
}

impl TcpRepr<'static> {
    /// A header with no options, no payload, a zero window and urgent pointer: the
    /// start of a reset, or of a header that is filled in field by field.
    pub const fn bare(
        src_port: u16,
        dst_port: u16,
        flags: Flags,
        seq_number: SeqNumber,
        ack_number: Option<SeqNumber>,
    ) -> TcpRepr<'static> {
        TcpRepr {
            src_port,
            dst_port,
            flags,
            seq_number,
            ack_number,
            window_len: 0,
            urgent_pointer: 0,
            max_seg_size: None,
            window_scale: None,
            sack_permitted: false,
            sack_ranges: [None; MAX_SACK_BLOCKS],
            timestamp: None,
            payload: &[],
        }
    }
}

impl<'a> TcpRepr<'a> {
    /// Parse a segment (after [`Packet::check_len`], which this calls again, so an
    /// unchecked packet is safe too). The repr borrows the packet's bytes, not the view.
    ///
    /// `BadChecksum` when `verify_checksum` and the checksum fails; `Malformed` for port 0
    /// (reserved, RFC 6335) or SYN with FIN or RST (no stack sends them;
    /// they are scan probes); `BadOption` from [`TcpOption::parse`]. The option walk stops
    /// at end-of-list, skips unknown kinds, and keeps the last of a repeated option.
    // Inline: the repr is big (SACK blocks), and built in place in the caller it is not
    // copied out through the `Result`.
    #[inline(always)]
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &Packet<&'a T>,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        verify_checksum: bool,
    ) -> Result<TcpRepr<'a>> {
        packet.check_len()?;
        // The bytes live for 'a, longer than the view borrowed here.
        let data: &'a [u8] = packet.buffer.as_ref();
        let header_len = packet.header_len();
        if verify_checksum && !packet.verify_checksum(src, dst) {
            return Err(Error::BadChecksum);
        }
        let (src_port, dst_port) = (packet.src_port(), packet.dst_port());
        if src_port == 0 || dst_port == 0 {
            return Err(Error::Malformed);
        }
        let flags = packet.flags();
        if flags.contains(Flags::SYN) && flags.intersects(Flags::FIN | Flags::RST) {
            return Err(Error::Malformed);
        }

        // After the handshake nearly every segment carries either no option or, with
        // timestamps on, Linux's (and our) `NOP NOP TS`: those two layouts are read in
        // one step; the general walk gives the same result for them, and takes the rest.
        // The repr is written once, straight into the caller's `Result`: the general walk
        // (out of line) fills a repr of its own, so none of this one's address escapes
        // and it is not built in a temporary and then copied (112 bytes, SACK blocks).
        // The `NOP NOP TS` layout's first word is compared whole (one compare, where
        // the byte pattern took four).
        const NOP_NOP_TS: u32 = u32::from_be_bytes([
            field::OPT_NOP,
            field::OPT_NOP,
            field::OPT_TSTAMP,
            field::LEN_TSTAMP_BYTE,
        ]);
        let timestamp = match &data[HEADER_LEN..header_len] {
            [] => None,
            &[k0, k1, k2, k3, v0, v1, v2, v3, e0, e1, e2, e3]
                if u32::from_be_bytes([k0, k1, k2, k3]) == NOP_NOP_TS =>
            {
                Some(TcpTimestamp {
                    tsval: u32::from_be_bytes([v0, v1, v2, v3]),
                    tsecr: u32::from_be_bytes([e0, e1, e2, e3]),
                })
            }
            options => return Self::parse_with_options(packet, flags, header_len, options),
        };
        Ok(TcpRepr {
            timestamp,
            ..Self::fixed_fields(packet, flags, &data[header_len..])
        })
    }

    /// [`parse`](Self::parse) of a segment whose options need the general walk (SYNs,
    /// SACK blocks): rare, so kept out of line.
    #[inline(never)]
    fn parse_with_options<T: AsRef<[u8]> + ?Sized>(
        packet: &Packet<&'a T>,
        flags: Flags,
        header_len: usize,
        options: &'a [u8],
    ) -> Result<TcpRepr<'a>> {
        let data: &'a [u8] = packet.buffer.as_ref();
        let mut repr = Self::fixed_fields(packet, flags, &data[header_len..]);
        // The handshake's layout, Linux's SYN and SYN-ACK and ours alike (see `emit`):
        // MSS, SACK_PERM, TS, NOP, WS, read in one step. Same result as the walk.
        if let &[field::OPT_MSS, 4, m0, m1, field::OPT_SACKPERM, 2, field::OPT_TSTAMP, field::LEN_TSTAMP_BYTE, v0, v1, v2, v3, e0, e1, e2, e3, field::OPT_NOP, field::OPT_WS, 3, shift] =
            options
        {
            repr.max_seg_size = Some(u16::from_be_bytes([m0, m1]));
            repr.sack_permitted = true;
            repr.timestamp = Some(TcpTimestamp {
                tsval: u32::from_be_bytes([v0, v1, v2, v3]),
                tsecr: u32::from_be_bytes([e0, e1, e2, e3]),
            });
            // RFC 7323 §2.3, as TcpOption::parse: a shift above 14 is taken as 14.
            repr.window_scale = Some(shift.min(MAX_WINDOW_SCALE));
            return Ok(repr);
        }
        repr.parse_options(options)?;
        Ok(repr)
    }

    /// The repr of the fixed header, no options yet.
    #[inline(always)]
    fn fixed_fields<T: AsRef<[u8]> + ?Sized>(
        packet: &Packet<&'a T>,
        flags: Flags,
        payload: &'a [u8],
    ) -> TcpRepr<'a> {
        // The field is read whatever the ACK bit (the fixed header is there): the
        // option is then made without a branch.
        let ack_number = packet.ack_number();
        TcpRepr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
            flags,
            seq_number: packet.seq_number(),
            ack_number: flags.contains(Flags::ACK).then_some(ack_number),
            window_len: packet.window_len(),
            urgent_pointer: packet.urgent_at(),
            max_seg_size: None,
            window_scale: None,
            sack_permitted: false,
            sack_ranges: [None; MAX_SACK_BLOCKS],
            timestamp: None,
            payload,
        }
    }

    /// The general option walk of [`parse`](Self::parse): stops at end-of-list, skips
    /// unknown kinds, keeps the last of a repeated option.
    fn parse_options(&mut self, mut options: &'a [u8]) -> Result<()> {
        while !options.is_empty() {
            let (rest, option) = TcpOption::parse(options)?;
            match option {
                TcpOption::EndOfList => break,
                TcpOption::NoOperation | TcpOption::Unknown { .. } => {}
                TcpOption::MaxSegmentSize(mss) => self.max_seg_size = Some(mss),
                TcpOption::WindowScale(shift) => self.window_scale = Some(shift),
                TcpOption::SackPermitted => self.sack_permitted = true,
                TcpOption::SackRange(ranges) => self.sack_ranges = ranges,
                TcpOption::TimeStamp { tsval, tsecr } => {
                    self.timestamp = Some(TcpTimestamp { tsval, tsecr })
                }
            }
            options = rest;
        }
        Ok(())
    }

    /// Option bytes other than SACK blocks, in the layout of [`emit`](Self::emit).
    #[inline]
    fn fixed_options_len(&self) -> usize {
        let mut len = 0;
        if self.max_seg_size.is_some() {
            len += 4; // MSS
        }
        if self.timestamp.is_some() {
            len += 12; // SACK_PERM or NOP NOP, then TS
        } else if self.sack_permitted {
            len += 4; // NOP NOP SACK_PERM
        }
        if self.window_scale.is_some() {
            len += 4; // NOP WS
        }
        len
    }

    /// The option layout of [`emit`](Self::emit): bytes of the options other than SACK
    /// blocks, and how many SACK blocks are sent. Computed once per emitted segment.
    #[inline]
    fn layout(&self) -> (usize, usize) {
        let fixed = self.fixed_options_len();
        let given = self.sack_ranges.iter().filter(|r| r.is_some()).count();
        let room = (MAX_OPTIONS_LEN - fixed).saturating_sub(4);
        (fixed, given.min(room / field::LEN_SACK_BLOCK))
    }

    /// Bytes of a SACK option of `blocks` blocks with its two leading NOPs (0 for none).
    #[inline]
    const fn sack_option_len(blocks: usize) -> usize {
        if blocks > 0 {
            4 + blocks * field::LEN_SACK_BLOCK
        } else {
            0
        }
    }

    /// SACK blocks that [`emit`](Self::emit) sends: those given, up to what fits in the
    /// option space left after NOP NOP SACK (4 bytes): 4 alone, 3 next to timestamps.
    pub fn sack_blocks_emitted(&self) -> usize {
        self.layout().1
    }

    /// Option bytes on the wire; a multiple of 4, at most 40.
    #[inline]
    pub fn options_len(&self) -> usize {
        let (fixed, blocks) = self.layout();
        fixed + Self::sack_option_len(blocks)
    }

    /// Header length with options: 20..=60, a multiple of 4.
    #[inline]
    pub fn header_len(&self) -> usize {
        HEADER_LEN + self.options_len()
    }

    /// Header plus payload.
    pub fn buffer_len(&self) -> usize {
        self.header_len() + self.payload.len()
    }

    /// Sequence space the segment uses: payload plus one each for SYN and FIN
    /// (RFC 9293 §3.4).
    pub fn segment_len(&self) -> usize {
        self.payload.len()
            + usize::from(self.flags.contains(Flags::SYN))
            + usize::from(self.flags.contains(Flags::FIN))
    }

    /// Call `f` with each option in wire order, NOPs included: Linux's
    /// `tcp_options_write` layout, every option 4-byte aligned so no trailing padding is
    /// ever needed:
    ///
    /// ```text
    /// MSS                         02 04 mm mm
    /// SACK_PERM + TS              04 02 08 0a <tsval> <tsecr>
    /// TS without SACK_PERM        01 01 08 0a <tsval> <tsecr>
    /// SACK_PERM without TS        01 01 04 02
    /// WS                          01 03 03 ss
    /// SACK blocks                 01 01 05 len <left right>...
    /// ```
    fn for_each_option<E>(
        &self,
        mut f: impl FnMut(TcpOption<'static>) -> core::result::Result<(), E>,
    ) -> core::result::Result<(), E> {
        if let Some(mss) = self.max_seg_size {
            f(TcpOption::MaxSegmentSize(mss))?;
        }
        match (self.timestamp, self.sack_permitted) {
            (Some(ts), sack_permitted) => {
                if sack_permitted {
                    f(TcpOption::SackPermitted)?;
                } else {
                    f(TcpOption::NoOperation)?;
                    f(TcpOption::NoOperation)?;
                }
                f(TcpOption::TimeStamp {
                    tsval: ts.tsval,
                    tsecr: ts.tsecr,
                })?;
            }
            (None, true) => {
                f(TcpOption::NoOperation)?;
                f(TcpOption::NoOperation)?;
                f(TcpOption::SackPermitted)?;
            }
            (None, false) => {}
        }
        if let Some(shift) = self.window_scale {
            f(TcpOption::NoOperation)?;
            f(TcpOption::WindowScale(shift))?;
        }
        let blocks = self.sack_blocks_emitted();
        if blocks > 0 {
            let mut ranges = [None; MAX_SACK_BLOCKS];
            for (slot, range) in ranges.iter_mut().zip(self.sack_ranges.iter().flatten()) {
                *slot = Some(*range);
            }
            ranges[blocks..].fill(None);
            f(TcpOption::NoOperation)?;
            f(TcpOption::NoOperation)?;
            f(TcpOption::SackRange(ranges))?;
        }
        Ok(())
    }

    /// Write header, options and payload into `packet` and fill the checksum.
    ///
    /// The packet's buffer must hold at least [`buffer_len`](Self::buffer_len) bytes; the
    /// checksum covers exactly that many, so a longer (pool) buffer is fine. Every header
    /// byte is written; nothing is read from the buffer but the payload just copied.
    /// Options follow Linux's layout (see `for_each_option`); SACK blocks beyond what
    /// fits in 40 option bytes are left out. To send a payload already in place, use
    /// [`emit_header`](Self::emit_header).
    ///
    /// # Panics
    /// If the buffer is shorter than `buffer_len()`.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut Packet<T>,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        checksum: TcpChecksum,
    ) {
        let header_len = self.header_len();
        packet.buffer.as_mut()[header_len..header_len + self.payload.len()]
            .copy_from_slice(self.payload);
        self.emit_header(packet, self.payload.len(), src, dst, checksum);
    }

    /// Write the header and options for a payload of `payload_len` bytes that is already in
    /// the buffer at `header_len()..` (the zero-copy output path: data copied once from the
    /// send buffer into the frame). `self.payload` is ignored.
    ///
    /// # Panics
    /// If the buffer is shorter than `header_len() + payload_len`.
    pub fn emit_header<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut Packet<T>,
        payload_len: usize,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        checksum: TcpChecksum,
    ) {
        self.emit_header_as(
            self.layout_header(),
            packet,
            payload_len,
            src,
            dst,
            checksum,
        );
    }

    /// Where the header's options go; [`HeaderLayout::header_len`] is
    /// [`header_len`](Self::header_len). A sender that needs the length before it writes
    /// the header (to size the IP packet) works it out once and hands it to
    /// [`emit_header_as`](Self::emit_header_as).
    #[inline]
    pub fn layout_header(&self) -> HeaderLayout {
        let (fixed, blocks) = self.layout();
        HeaderLayout {
            len: HEADER_LEN + fixed + Self::sack_option_len(blocks),
            blocks,
        }
    }

    /// [`emit_header`](Self::emit_header) with the layout
    /// [`layout_header`](Self::layout_header) gave for this very header.
    ///
    /// # Panics
    /// If the buffer is shorter than `layout.header_len() + payload_len`.
    pub fn emit_header_as<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        layout: HeaderLayout,
        packet: &mut Packet<T>,
        payload_len: usize,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        checksum: TcpChecksum,
    ) {
        debug_assert_eq!(layout, self.layout_header());
        let HeaderLayout {
            len: header_len,
            blocks,
        } = layout;
        let segment_len = header_len + payload_len;
        let buf = packet.buffer.as_mut();
        assert!(buf.len() >= segment_len);

        let mut flags = self.flags;
        flags.set(Flags::ACK, self.ack_number.is_some());
        // Data offset and control bits in one field: reserved bits zero (RFC 9293 §3.1).
        let offset_flags = ((header_len / 4) as u16) << 12 | flags.bits();
        // The fixed header is built whole and stored at once; the checksum field is
        // zero until filled below.
        let mut fixed_header = [0u8; HEADER_LEN];
        fixed_header[field::SRC_PORT].copy_from_slice(&self.src_port.to_be_bytes());
        fixed_header[field::DST_PORT].copy_from_slice(&self.dst_port.to_be_bytes());
        fixed_header[field::SEQ_NUM].copy_from_slice(&self.seq_number.0.to_be_bytes());
        let ack = self.ack_number.unwrap_or_default();
        fixed_header[field::ACK_NUM].copy_from_slice(&ack.0.to_be_bytes());
        fixed_header[field::FLAGS].copy_from_slice(&offset_flags.to_be_bytes());
        fixed_header[field::WIN_SIZE].copy_from_slice(&self.window_len.to_be_bytes());
        fixed_header[field::URGENT].copy_from_slice(&self.urgent_pointer.to_be_bytes());
        let (head, rest) = buf.split_at_mut(HEADER_LEN);
        head.copy_from_slice(&fixed_header);
        self.write_options(&mut rest[..header_len - HEADER_LEN], blocks);

        fill_checksum_as(packet, segment_len, src, dst, checksum);
    }

    /// Write the options in the layout of `for_each_option` straight into `out`, which
    /// holds exactly [`options_len`](Self::options_len) bytes, with `blocks` SACK blocks
    /// (from [`layout`](Self::layout)). Every option with its NOPs is a whole number of
    /// 32-bit words, so the block is written a word at a time; going through
    /// [`TcpOption::emit`] once per option cost three times as much on every segment.
    fn write_options(&self, out: &mut [u8], blocks: usize) {
        let mut at = 0;
        let mut word = |w: [u8; 4]| {
            out[at..at + 4].copy_from_slice(&w);
            at += 4;
        };
        fixed_option_words(
            self.max_seg_size,
            self.timestamp,
            self.sack_permitted,
            self.window_scale,
            &mut word,
        );
        if blocks > 0 {
            let len = (2 + blocks * field::LEN_SACK_BLOCK) as u8;
            word([field::OPT_NOP, field::OPT_NOP, field::OPT_SACKRNG, len]);
            for (left, right) in self.sack_ranges.iter().flatten().take(blocks) {
                word(left.0.to_be_bytes());
                word(right.0.to_be_bytes());
            }
        }
        debug_assert_eq!(at, out.len(), "options_len disagrees with the layout");
    }
}

/// The checksum of a segment of `segment_len` bytes whose header is written: computed
/// over it, or, for a NIC that offloads it, the pseudo-header sum the NIC starts from.
/// For [`TcpRepr::emit_header_as`] and [`HeaderImage::emit_header_as`] alike.
#[inline(always)]
fn fill_checksum_as<T: AsRef<[u8]> + AsMut<[u8]>>(
    packet: &mut Packet<T>,
    segment_len: usize,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    checksum: TcpChecksum,
) {
    match checksum {
        TcpChecksum::Compute => packet.fill_checksum_over(segment_len, src, dst),
        TcpChecksum::Offload => packet.set_checksum(pseudo_sum(src, dst, segment_len)),
        TcpChecksum::OffloadFrom(addrs) => packet.set_checksum(pseudo_sum_from(addrs, segment_len)),
    }
}

/// The options other than SACK blocks in [`TcpRepr::emit`]'s layout (Linux's), a 32-bit
/// word at a time: MSS; then SACK_PERM (or NOP NOP) and the timestamps, or NOP NOP
/// SACK_PERM alone; then NOP and the window scale. One writer for [`TcpRepr`]'s option
/// walk and [`HeaderImage::set_syn`], so the two layouts cannot drift apart.
#[inline(always)]
fn fixed_option_words(
    max_seg_size: Option<u16>,
    timestamp: Option<TcpTimestamp>,
    sack_permitted: bool,
    window_scale: Option<u8>,
    mut word: impl FnMut([u8; 4]),
) {
    if let Some(mss) = max_seg_size {
        let [hi, lo] = mss.to_be_bytes();
        word([field::OPT_MSS, field::LEN_MSS as u8, hi, lo]);
    }
    match (timestamp, sack_permitted) {
        (Some(ts), sack_permitted) => {
            let [a, b] = if sack_permitted {
                [field::OPT_SACKPERM, field::LEN_SACKPERM as u8]
            } else {
                [field::OPT_NOP, field::OPT_NOP]
            };
            word([a, b, field::OPT_TSTAMP, field::LEN_TSTAMP_BYTE]);
            word(ts.tsval.to_be_bytes());
            word(ts.tsecr.to_be_bytes());
        }
        (None, true) => word([
            field::OPT_NOP,
            field::OPT_NOP,
            field::OPT_SACKPERM,
            field::LEN_SACKPERM as u8,
        ]),
        (None, false) => {}
    }
    if let Some(shift) = window_scale {
        word([field::OPT_NOP, field::OPT_WS, field::LEN_WS as u8, shift]);
    }
}

/// A TCP header built in wire order, for a sender that makes one per segment (a
/// connection's output): what [`TcpRepr::emit_header`] would write, less the checksum,
/// which [`emit_header_as`](Self::emit_header_as) adds.
///
/// A [`TcpRepr`] carries every option a header may have (SACK blocks, the SYN options)
/// in `Option`s and a fixed array, and emitting it walks them; a connection's segments
/// nearly all carry the same layout (timestamps, or nothing), so it writes the few fields
/// that change straight into their bytes, and the frame writer copies them out whole.
/// The layout and byte order are [`TcpRepr::emit`]'s (Linux's), byte for byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderImage {
    /// The control bits as sent (also in the header, written with it: read-only). The
    /// ACK bit decides whether the acknowledgment field counts (it is zero without).
    pub flags: Flags,
    /// Header length, options included: 20..=60, a multiple of 4.
    len: u8,
    /// The header: `len` bytes are meaningful, data offset and control bits included
    /// (written with the length, once it is known); bytes 16..18 (checksum) are
    /// filled at emit.
    bytes: [u8; MAX_HEADER_LEN],
}

impl Default for HeaderImage {
    /// A bare header of zeros: 20 bytes, no flags.
    fn default() -> HeaderImage {
        let mut image = HeaderImage {
            flags: Flags::empty(),
            len: 0,
            bytes: [0; MAX_HEADER_LEN],
        };
        image.set_len(HEADER_LEN);
        image
    }
}

impl HeaderImage {
    /// The header of [`TcpRepr::emit_header`] for `repr` (any options).
    pub fn from_repr(repr: &TcpRepr<'_>) -> HeaderImage {
        let layout = repr.layout_header();
        let mut image = HeaderImage::default();
        let mut flags = repr.flags;
        flags.set(Flags::ACK, repr.ack_number.is_some());
        image.fixed(
            repr.src_port,
            repr.dst_port,
            flags,
            repr.seq_number,
            repr.ack_number,
            repr.window_len,
        );
        image.bytes[field::URGENT].copy_from_slice(&repr.urgent_pointer.to_be_bytes());
        repr.write_options(&mut image.bytes[HEADER_LEN..layout.len], layout.blocks);
        image.set_len(layout.len);
        image
    }

    /// Set every field of a header whose only options are the timestamps (if
    /// `timestamp`) and SACK blocks (as many of `sack` as fit, as
    /// [`TcpRepr::sack_blocks_emitted`] counts them): what a synchronized connection
    /// sends. The urgent pointer is zero. The ACK bit is set iff `ack` is given.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub fn set(
        &mut self,
        src_port: u16,
        dst_port: u16,
        flags: Flags,
        seq_number: SeqNumber,
        ack_number: Option<SeqNumber>,
        window_len: u16,
        timestamp: Option<TcpTimestamp>,
        sack: &[(SeqNumber, SeqNumber)],
    ) {
        let mut flags = flags;
        flags.set(Flags::ACK, ack_number.is_some());
        self.fixed(
            src_port, dst_port, flags, seq_number, ack_number, window_len,
        );
        let mut len = HEADER_LEN;
        if let Some(ts) = timestamp {
            self.bytes[20..24].copy_from_slice(&[
                field::OPT_NOP,
                field::OPT_NOP,
                field::OPT_TSTAMP,
                field::LEN_TSTAMP_BYTE,
            ]);
            self.bytes[24..28].copy_from_slice(&ts.tsval.to_be_bytes());
            self.bytes[28..32].copy_from_slice(&ts.tsecr.to_be_bytes());
            len = HEADER_LEN + 12;
        }
        if !sack.is_empty() {
            len = self.sack(len, sack);
        }
        self.set_len(len);
    }

    /// Set every field of a SYN or SYN-ACK header with its options (the MSS, and
    /// timestamps, SACK-permitted and window scale if given), laid out as
    /// [`TcpRepr::emit`] does. The urgent pointer is zero. The ACK bit is set iff `ack`
    /// is given.
    #[allow(clippy::too_many_arguments)]
    pub fn set_syn(
        &mut self,
        src_port: u16,
        dst_port: u16,
        flags: Flags,
        seq_number: SeqNumber,
        ack_number: Option<SeqNumber>,
        window_len: u16,
        max_seg_size: u16,
        window_scale: Option<u8>,
        sack_permitted: bool,
        timestamp: Option<TcpTimestamp>,
    ) {
        let mut flags = flags;
        flags.set(Flags::ACK, ack_number.is_some());
        self.fixed(
            src_port, dst_port, flags, seq_number, ack_number, window_len,
        );
        let mut at = HEADER_LEN;
        let mut word = |w: [u8; 4]| {
            self.bytes[at..at + 4].copy_from_slice(&w);
            at += 4;
        };
        fixed_option_words(
            Some(max_seg_size),
            timestamp,
            sack_permitted,
            window_scale,
            &mut word,
        );
        self.set_len(at);
    }

    /// The header length (`len` bytes, a multiple of 4), and with it the data offset
    /// and control bits word (the flags set before).
    #[inline(always)]
    fn set_len(&mut self, len: usize) {
        self.len = len as u8;
        let offset_flags = ((len / 4) as u16) << 12 | self.flags.bits();
        self.bytes[field::FLAGS].copy_from_slice(&offset_flags.to_be_bytes());
    }

    /// The SACK option after `at` bytes of header, with as many blocks as fit; the
    /// header length with it.
    #[cold]
    fn sack(&mut self, at: usize, sack: &[(SeqNumber, SeqNumber)]) -> usize {
        let blocks = sack
            .len()
            .min((MAX_HEADER_LEN - at - 4) / field::LEN_SACK_BLOCK);
        let len = (2 + blocks * field::LEN_SACK_BLOCK) as u8;
        self.bytes[at..at + 4].copy_from_slice(&[
            field::OPT_NOP,
            field::OPT_NOP,
            field::OPT_SACKRNG,
            len,
        ]);
        let mut at = at + 4;
        for (left, right) in &sack[..blocks] {
            self.bytes[at..at + 4].copy_from_slice(&left.0.to_be_bytes());
            self.bytes[at + 4..at + 8].copy_from_slice(&right.0.to_be_bytes());
            at += 8;
        }
        at
    }

    /// The fixed header but for data offset, flags and checksum; `flags` kept aside.
    #[inline]
    fn fixed(
        &mut self,
        src_port: u16,
        dst_port: u16,
        flags: Flags,
        seq_number: SeqNumber,
        ack_number: Option<SeqNumber>,
        window_len: u16,
    ) {
        self.flags = flags;
        let ack = ack_number.unwrap_or_default();
        let b = &mut self.bytes;
        b[field::SRC_PORT].copy_from_slice(&src_port.to_be_bytes());
        b[field::DST_PORT].copy_from_slice(&dst_port.to_be_bytes());
        b[field::SEQ_NUM].copy_from_slice(&seq_number.0.to_be_bytes());
        b[field::ACK_NUM].copy_from_slice(&ack.0.to_be_bytes());
        b[field::WIN_SIZE].copy_from_slice(&window_len.to_be_bytes());
        b[field::CHECKSUM].copy_from_slice(&[0, 0]);
        b[field::URGENT].copy_from_slice(&[0, 0]);
    }

    /// Header length, options included.
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.len)
    }

    /// The layout to hand to [`emit_header_as`](Self::emit_header_as) (the same
    /// interface as [`TcpRepr`]'s, so a frame writer takes either).
    #[inline]
    pub fn layout_header(&self) -> HeaderLayout {
        HeaderLayout {
            len: self.header_len(),
            blocks: 0,
        }
    }

    /// Write the header for a payload of `payload_len` bytes already in the buffer after
    /// it, and fill the checksum, as [`TcpRepr::emit_header_as`] does.
    ///
    /// # Panics
    /// If the buffer is shorter than `layout.header_len() + payload_len`.
    #[inline(always)]
    pub fn emit_header_as<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        layout: HeaderLayout,
        packet: &mut Packet<T>,
        payload_len: usize,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        checksum: TcpChecksum,
    ) {
        debug_assert_eq!(layout.len, self.header_len());
        // The layout's length, not the image's (the same): the frame writer sized the
        // buffer with it, so the bound below is known to hold and costs nothing.
        let header_len = layout.len;
        let segment_len = header_len + payload_len;
        let buf = packet.buffer.as_mut();
        assert!(buf.len() >= segment_len);
        // The common lengths as fixed-size copies (no call to memcpy); the others
        // wholly out of line, so that this path calls nothing and saves no registers.
        match header_len {
            32 => buf[..32].copy_from_slice(&self.bytes[..32]),
            20 => buf[..20].copy_from_slice(&self.bytes[..20]),
            _ => return self.emit_any(packet, payload_len, src, dst, checksum),
        }
        self.finish(packet, segment_len, src, dst, checksum);
    }

    /// [`emit_header_as`](Self::emit_header_as) for any header length.
    #[cold]
    #[inline(never)]
    fn emit_any<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut Packet<T>,
        payload_len: usize,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        checksum: TcpChecksum,
    ) {
        let header_len = self.header_len();
        packet.buffer.as_mut()[..header_len].copy_from_slice(&self.bytes[..header_len]);
        self.finish(packet, header_len + payload_len, src, dst, checksum);
    }

    /// The checksum, over a header already copied.
    #[inline(always)]
    fn finish<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut Packet<T>,
        segment_len: usize,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        checksum: TcpChecksum,
    ) {
        fill_checksum_as(packet, segment_len, src, dst, checksum);
    }
}

/// One line as tcpdump prints a TCP segment:
///
/// ```text
/// 40001 > 8080: Flags [S], seq 1, win 64240, options [mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 7], length 0
/// ```
///
/// Options are listed as [`emit`](TcpRepr::emit) would send them.
impl fmt::Display for TcpRepr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut flags = self.flags;
        flags.set(Flags::ACK, self.ack_number.is_some());
        write!(
            f,
            "{} > {}: Flags [{}], seq {}",
            self.src_port, self.dst_port, flags, self.seq_number
        )?;
        if let Some(ack) = self.ack_number {
            write!(f, ", ack {ack}")?;
        }
        write!(f, ", win {}", self.window_len)?;
        if flags.contains(Flags::URG) {
            write!(f, ", urg {}", self.urgent_pointer)?;
        }
        if self.options_len() > 0 {
            f.write_str(", options [")?;
            let mut first = true;
            self.for_each_option(|option| {
                if !first {
                    f.write_str(",")?;
                }
                first = false;
                write!(f, "{option}")
            })?;
            f.write_str("]")?;
        }
        write!(f, ", length {}", self.payload.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;
    use alloc::vec::Vec;

    // Linux 6.x frames captured on a veth with offloads off (scripts/capture-linux-frames.py):
    // a kernel connect() from 10.99.0.1:40001 to a listener on 10.99.0.2:8080.
    // Ethernet (14) + IPv4 without options (20) + TCP.
    static SYN_FRAME: &[u8] = include_bytes!("testdata/tcp_syn.bin");
    static SYNACK_FRAME: &[u8] = include_bytes!("testdata/tcp_synack.bin");
    static ACK_TS_FRAME: &[u8] = include_bytes!("testdata/tcp_ack_ts.bin");
    static DATA_FRAME: &[u8] = include_bytes!("testdata/tcp_data.bin");
    static FRAMES: [&[u8]; 4] = [SYN_FRAME, SYNACK_FRAME, ACK_TS_FRAME, DATA_FRAME];

    /// The TCP segment of a captured frame and its IP source and destination.
    fn segment(frame: &[u8]) -> (&[u8], Ipv4Addr, Ipv4Addr) {
        let src = Ipv4Addr::new(frame[26], frame[27], frame[28], frame[29]);
        let dst = Ipv4Addr::new(frame[30], frame[31], frame[32], frame[33]);
        (&frame[34..], src, dst)
    }

    fn parse_frame(frame: &[u8]) -> TcpRepr<'_> {
        let (tcp, src, dst) = segment(frame);
        TcpRepr::parse(&Packet::new_checked(tcp).unwrap(), src, dst, true).unwrap()
    }

    const A: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);
    const B: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 2);

    fn template() -> TcpRepr<'static> {
        let ack = Some(SeqNumber(0x1000));
        TcpRepr {
            window_len: 502,
            ..TcpRepr::bare(40001, 8080, Flags::ACK, SeqNumber(0xffff_fff0), ack)
        }
    }

    /// A segment with the given option bytes (padded by the caller), checksum filled.
    fn with_options(options: &[u8]) -> Vec<u8> {
        assert_eq!(options.len() % 4, 0);
        let mut buf = vec![0u8; HEADER_LEN + options.len()];
        let mut p = Packet::new_unchecked(&mut buf[..]);
        p.set_src_port(1234);
        p.set_dst_port(80);
        p.set_seq_number(SeqNumber(1));
        p.set_header_len(HEADER_LEN + options.len());
        p.set_flags(Flags::ACK);
        p.set_ack_number(SeqNumber(2));
        p.set_window_len(1000);
        p.options_mut().copy_from_slice(options);
        p.fill_checksum(A, B);
        buf
    }

    fn parse_bytes(buf: &[u8]) -> Result<TcpRepr<'_>> {
        TcpRepr::parse(&Packet::new_checked(buf)?, A, B, true)
    }

    fn emit_to_vec(repr: &TcpRepr<'_>, checksum: TcpChecksum) -> Vec<u8> {
        let mut buf = vec![0xa5u8; repr.buffer_len()];
        repr.emit(&mut Packet::new_unchecked(&mut buf[..]), A, B, checksum);
        buf
    }

    #[test]
    fn linux_syn() {
        let (tcp, src, dst) = segment(SYN_FRAME);
        let p = Packet::new_checked(tcp).unwrap();
        assert_eq!((p.src_port(), p.dst_port()), (40001, 8080));
        assert_eq!(p.header_len(), 40);
        assert_eq!(p.flags(), Flags::SYN);
        assert_eq!(p.segment_len(), 1);
        assert!(p.verify_checksum(src, dst));
        assert!(!p.verify_checksum(dst, Ipv4Addr::new(10, 99, 0, 3)));

        let r = parse_frame(SYN_FRAME);
        assert_eq!(r.seq_number, SeqNumber(0x6a94_d3d3));
        assert_eq!(r.ack_number, None);
        assert_eq!(r.window_len, 64240);
        // What Linux offers in a SYN: MSS 1460 (1500 MTU), SACK, timestamps, wscale 10.
        assert_eq!(r.max_seg_size, Some(1460));
        assert!(r.sack_permitted);
        assert_eq!(r.timestamp, Some(TcpTimestamp::new(0x6bbf_452c, 0)));
        assert_eq!(r.window_scale, Some(10));
        assert_eq!(r.sack_ranges, [None; 4]);
        assert_eq!(r.payload, b"");
        assert_eq!(r.segment_len(), 1);
        assert_eq!(r.header_len(), 40);
        assert_eq!(
            r.to_string(),
            "40001 > 8080: Flags [S], seq 1788138451, win 64240, options \
             [mss 1460,sackOK,TS val 1807697196 ecr 0,nop,wscale 10], length 0"
        );
    }

    #[test]
    fn linux_synack() {
        let r = parse_frame(SYNACK_FRAME);
        assert_eq!((r.src_port, r.dst_port), (8080, 40001));
        assert_eq!(r.flags, Flags::SYN | Flags::ACK);
        assert_eq!(r.seq_number, SeqNumber(0x8cf2_f81d));
        // The SYN-ACK acknowledges the SYN's one octet of sequence space.
        assert_eq!(r.ack_number, Some(SeqNumber(0x6a94_d3d3) + 1usize));
        assert_eq!(r.window_len, 65160);
        assert_eq!(r.max_seg_size, Some(1460));
        assert!(r.sack_permitted);
        // tsecr echoes the SYN's tsval.
        assert_eq!(
            r.timestamp,
            Some(TcpTimestamp::new(0x9a0d_cad2, 0x6bbf_452c))
        );
        assert_eq!(r.window_scale, Some(10));
        assert_eq!(
            r.to_string(),
            "8080 > 40001: Flags [S.], seq 2364733469, ack 1788138452, win 65160, options \
             [mss 1460,sackOK,TS val 2584595154 ecr 1807697196,nop,wscale 10], length 0"
        );
    }

    #[test]
    fn linux_ack_and_data() {
        let r = parse_frame(ACK_TS_FRAME);
        assert_eq!(r.flags, Flags::ACK);
        assert_eq!(r.seq_number, SeqNumber(0x6a94_d3d4));
        assert_eq!(r.ack_number, Some(SeqNumber(0x8cf2_f81e)));
        assert_eq!(r.window_len, 63); // scaled by 2^10 at the peer
        assert_eq!(
            r.timestamp,
            Some(TcpTimestamp::new(0x6bbf_452c, 0x9a0d_cad2))
        );
        assert_eq!(
            (r.max_seg_size, r.window_scale, r.sack_permitted),
            (None, None, false)
        );
        assert_eq!(r.header_len(), 32);
        assert_eq!(r.segment_len(), 0);

        let d = parse_frame(DATA_FRAME);
        assert_eq!(d.flags, Flags::PSH | Flags::ACK);
        assert_eq!(d.payload, b"hello rumpnet\n");
        assert_eq!(d.segment_len(), 14);
        assert_eq!(d.buffer_len(), 32 + 14);
        assert_eq!(
            d.to_string(),
            "40001 > 8080: Flags [P.], seq 1788138452, ack 2364733470, win 63, \
             options [nop,nop,TS val 1807697496 ecr 2584595154], length 14"
        );
    }

    #[test]
    fn linux_frames_round_trip_byte_exact() {
        for (i, frame) in FRAMES.iter().enumerate() {
            let (tcp, src, dst) = segment(frame);
            let r = parse_frame(frame);
            assert_eq!(r.buffer_len(), tcp.len(), "frame {i}");
            let mut buf = vec![0xa5u8; tcp.len()];
            r.emit(
                &mut Packet::new_unchecked(&mut buf[..]),
                src,
                dst,
                TcpChecksum::Compute,
            );
            assert_eq!(buf, tcp, "frame {i}: Linux option layout and ours differ");

            // In place: payload already there, header written around it.
            let mut buf = vec![0xa5u8; tcp.len() + 7]; // pool buffers are longer
            buf[r.header_len()..tcp.len()].copy_from_slice(r.payload);
            let mut p = Packet::new_unchecked(&mut buf[..]);
            r.emit_header(&mut p, r.payload.len(), src, dst, TcpChecksum::Compute);
            assert_eq!(&buf[..tcp.len()], tcp, "frame {i} in place");
            assert_eq!(
                &buf[tcp.len()..],
                &[0xa5; 7],
                "frame {i}: wrote past the segment"
            );
        }
    }

    #[test]
    fn offload_leaves_pseudo_header_sum_for_the_nic() {
        for frame in FRAMES {
            let (tcp, src, dst) = segment(frame);
            let r = parse_frame(frame);
            let mut buf = vec![0xa5u8; tcp.len()];
            r.emit(
                &mut Packet::new_unchecked(&mut buf[..]),
                src,
                dst,
                TcpChecksum::Offload,
            );
            let partial = Packet::new_unchecked(&buf[..]).checksum();
            assert_eq!(
                partial,
                checksum::pseudo_header_v4(src, dst, IpProtocol::Tcp, tcp.len() as u16)
            );
            assert!(!Packet::new_unchecked(&buf[..]).verify_checksum(src, dst));
            // What the NIC does: sum the segment from the TCP header on, the partial sum in
            // the field included, and store the complement.
            let nic = checksum::finish(&[checksum::sum(&buf)]);
            Packet::new_unchecked(&mut buf[..]).set_checksum(nic);
            assert_eq!(&buf[..], tcp);
        }
    }

    #[test]
    fn every_truncation_is_an_error() {
        for frame in FRAMES {
            let (tcp, src, dst) = segment(frame);
            let header_len = Packet::new_checked(tcp).unwrap().header_len();
            for len in 0..tcp.len() {
                let cut = &tcp[..len];
                match Packet::new_checked(cut) {
                    Err(e) => {
                        assert!(len < header_len, "len {len}");
                        assert_eq!(e, Error::Truncated, "len {len}");
                    }
                    Ok(p) => {
                        assert!(len >= header_len);
                        let r = TcpRepr::parse(&p, src, dst, true);
                        assert_eq!(r, Err(Error::BadChecksum), "len {len}");
                    }
                }
                // The unchecked path must not panic either: parse re-checks the length.
                let p = Packet::new_unchecked(cut);
                assert!(TcpRepr::parse(&p, src, dst, true).is_err(), "len {len}");
            }
        }
    }

    #[test]
    fn new_checked_header_length() {
        let (tcp, ..) = segment(SYN_FRAME);
        assert_eq!(
            Packet::new_checked(&tcp[..19]).unwrap_err(),
            Error::Truncated
        );
        let mut b = tcp.to_vec();
        b[12] = 0x40 | (b[12] & 0x0f); // 16-byte header: below the minimum
        assert_eq!(
            Packet::new_checked(&b[..]).unwrap_err(),
            Error::BadHeaderLength
        );
        b[12] = 0x00;
        assert_eq!(
            Packet::new_checked(&b[..]).unwrap_err(),
            Error::BadHeaderLength
        );
        b[12] = 0xf0; // 60-byte header in 40 bytes
        assert_eq!(Packet::new_checked(&b[..]).unwrap_err(), Error::Truncated);
        b[12] = 0x50; // no options, the old options become payload
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.options(), b"");
        assert_eq!(p.payload().len(), 20);
    }

    #[test]
    fn bad_checksum_ports_and_flag_combinations() {
        let (tcp, src, dst) = segment(DATA_FRAME);
        let mut b = tcp.to_vec();
        b[40] ^= 0x01; // a payload bit
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(TcpRepr::parse(&p, src, dst, true), Err(Error::BadChecksum));
        assert!(TcpRepr::parse(&p, src, dst, false).is_ok());

        let mut r = template();
        r.src_port = 0;
        assert_eq!(
            parse_bytes(&emit_to_vec(&r, TcpChecksum::Compute)),
            Err(Error::Malformed)
        );
        let mut r = template();
        r.dst_port = 0;
        assert_eq!(
            parse_bytes(&emit_to_vec(&r, TcpChecksum::Compute)),
            Err(Error::Malformed)
        );
        for bad in [
            Flags::SYN | Flags::FIN,
            Flags::SYN | Flags::RST,
            Flags::SYN | Flags::RST | Flags::ACK,
        ] {
            let mut r = template();
            r.flags = bad;
            assert_eq!(
                parse_bytes(&emit_to_vec(&r, TcpChecksum::Compute)),
                Err(Error::Malformed),
                "{bad:?}"
            );
        }
        for good in [
            Flags::FIN | Flags::ACK,
            Flags::RST,
            Flags::RST | Flags::ACK,
            Flags::SYN | Flags::ECE | Flags::CWR,
        ] {
            let mut r = template();
            r.flags = good;
            r.ack_number = good.contains(Flags::ACK).then_some(SeqNumber(5));
            assert_eq!(
                parse_bytes(&emit_to_vec(&r, TcpChecksum::Compute)),
                Ok(r),
                "{good:?}"
            );
        }
    }

    #[test]
    fn ack_number_decides_the_ack_bit() {
        let mut r = template();
        r.flags = Flags::PSH; // ACK bit missing, ack_number present
        let b = emit_to_vec(&r, TcpChecksum::Compute);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.flags(), Flags::PSH | Flags::ACK);
        assert_eq!(p.ack_number(), SeqNumber(0x1000));

        r.flags = Flags::ACK | Flags::FIN;
        r.ack_number = None; // ACK bit set, no ack_number: neither goes out
        let b = emit_to_vec(&r, TcpChecksum::Compute);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.flags(), Flags::FIN);
        assert_eq!(p.ack_number(), SeqNumber(0));
        assert_eq!(parse_bytes(&b).unwrap().ack_number, None);
    }

    #[test]
    fn reserved_bits_are_ignored_and_never_sent() {
        let (tcp, src, dst) = segment(ACK_TS_FRAME);
        let mut b = tcp.to_vec();
        b[12] |= 0x0e; // the three reserved bits
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.flags(), Flags::ACK);
        let r = TcpRepr::parse(&p, src, dst, false).unwrap();
        let mut out = vec![0xa5; b.len()];
        r.emit(
            &mut Packet::new_unchecked(&mut out[..]),
            src,
            dst,
            TcpChecksum::Compute,
        );
        assert_eq!(out, tcp);
        // NS survives a round trip like any control bit.
        let mut r = template();
        r.flags = Flags::ACK | Flags::NS;
        let b = emit_to_vec(&r, TcpChecksum::Compute);
        assert_eq!(b[12] & 0x0f, 0x01);
        assert_eq!(parse_bytes(&b).unwrap().flags, Flags::ACK | Flags::NS);
    }

    #[test]
    fn malformed_options() {
        let cases: &[(&str, &[u8])] = &[
            ("length 0", &[0x1e, 0x00, 0x01, 0x01]),
            ("length 1", &[0x02, 0x01, 0x01, 0x01]),
            ("no length byte", &[0x01, 0x01, 0x01, 0x02]),
            ("unknown past end", &[0x1e, 0x05, 0x00, 0x00]),
            ("mss past end", &[0x01, 0x02, 0x04, 0x05]),
            ("mss length 3", &[0x02, 0x03, 0x05, 0x00]),
            (
                "mss length 5",
                &[0x02, 0x05, 0x05, 0xb4, 0x00, 0x01, 0x01, 0x01],
            ),
            ("ws length 2", &[0x03, 0x02, 0x01, 0x01]),
            ("ws length 4", &[0x03, 0x04, 0x07, 0x00]),
            ("sackperm length 3", &[0x04, 0x03, 0x00, 0x00]),
            ("sackperm length 4", &[0x04, 0x04, 0x00, 0x00]),
            ("ts length 8", &[0x08, 0x08, 0, 0, 0, 1, 0, 0]),
            ("ts length 12", &[0x08, 0x0c, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0]),
            ("sack no blocks", &[0x01, 0x01, 0x05, 0x02]),
            ("sack half block", &[0x05, 0x06, 0, 0, 0, 1, 0, 0]),
            ("sack 9 bytes", &[0x05, 0x0b, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0]),
        ];
        for (what, options) in cases {
            assert_eq!(
                parse_bytes(&with_options(options)),
                Err(Error::BadOption),
                "{what}"
            );
        }
        // The option parser on its own, including five SACK blocks (too long for a header).
        let mut five = vec![0x05, 42];
        five.extend_from_slice(&[0u8; 40]);
        assert_eq!(TcpOption::parse(&five), Err(Error::BadOption));
        assert_eq!(TcpOption::parse(&[0x02, 0x04, 0x05]), Err(Error::BadOption));
        assert_eq!(TcpOption::parse(&[0x02]), Err(Error::BadOption));
        assert_eq!(TcpOption::parse(&[]), Err(Error::Truncated));
    }

    #[test]
    fn unknown_options_are_skipped_and_eol_ends_the_list() {
        // NOP, kind 30 (MPTCP) len 4, MSS 1400, kind 254 len 2, EOL, junk after EOL.
        let opts = [
            1, 30, 4, 0xaa, 0xbb, 2, 4, 0x05, 0x78, 254, 2, 0, 0xff, 0x02, 0x09, 0x33,
        ];
        let buf = with_options(&opts);
        let r = parse_bytes(&buf).unwrap();
        assert_eq!(r.max_seg_size, Some(1400));
        assert_eq!(r.timestamp, None);
        assert_eq!(r.payload, b"");

        let (rest, o) = TcpOption::parse(&opts[1..]).unwrap();
        assert_eq!(
            o,
            TcpOption::Unknown {
                kind: 30,
                data: &[0xaa, 0xbb]
            }
        );
        assert_eq!(rest, &opts[5..]);
        assert_eq!(o.buffer_len(), 4);
        let mut out = [0xa5u8; 5];
        let left = o.emit(&mut out).len();
        assert_eq!((left, &out[..4]), (1, &opts[1..5]));
        assert_eq!(
            TcpOption::parse(&[0, 9, 9]).unwrap(),
            (&[9u8, 9][..], TcpOption::EndOfList)
        );
    }

    #[test]
    fn window_scale_above_14_is_clamped() {
        // RFC 7323 §2.3.
        for (sent, used) in [(0u8, 0u8), (14, 14), (15, 14), (255, 14)] {
            let buf = with_options(&[1, 3, 3, sent]);
            let r = parse_bytes(&buf).unwrap();
            assert_eq!(r.window_scale, Some(used), "{sent}");
        }
    }

    #[test]
    fn sack_one_to_four_blocks() {
        for n in 1..=4usize {
            let mut opts = vec![1, 1, 5, (2 + 8 * n) as u8];
            let mut want = [None; 4];
            for (i, slot) in want.iter_mut().enumerate().take(n) {
                // Blocks straddling the wrap point.
                let left = SeqNumber(0xffff_ff00) + i * 0x100;
                let right = left + 0x80usize;
                opts.extend_from_slice(&left.0.to_be_bytes());
                opts.extend_from_slice(&right.0.to_be_bytes());
                *slot = Some((left, right));
            }
            while opts.len() % 4 != 0 {
                opts.push(0);
            }
            let buf = with_options(&opts);
            let r = parse_bytes(&buf).unwrap();
            assert_eq!(r.sack_ranges, want, "{n} blocks");
            assert_eq!(r.sack_blocks_emitted(), n);
            // Our layout for a bare SACK option is Linux's: NOP NOP SACK.
            assert_eq!(emit_to_vec(&r, TcpChecksum::Compute), buf, "{n} blocks");
        }
    }

    #[test]
    fn option_display() {
        let mut r = template();
        r.timestamp = Some(TcpTimestamp::new(5, 6));
        r.sack_ranges[0] = Some((SeqNumber(10), SeqNumber(20)));
        r.sack_ranges[1] = Some((SeqNumber(30), SeqNumber(40)));
        r.flags = Flags::ACK | Flags::URG;
        r.urgent_pointer = 3;
        assert_eq!(
            r.to_string(),
            "40001 > 8080: Flags [.U], seq 4294967280, ack 4096, win 502, urg 3, options \
             [nop,nop,TS val 5 ecr 6,nop,nop,sack 2 {10:20}{30:40}], length 0"
        );
        assert_eq!(
            TcpOption::Unknown {
                kind: 30,
                data: &[1, 2]
            }
            .to_string(),
            "opt-30:0102"
        );
    }

    #[test]
    fn flags_type() {
        let f = Flags::SYN | Flags::ACK;
        assert!(f.contains(Flags::SYN) && f.contains(Flags::ACK) && !f.contains(Flags::FIN));
        assert!(!f.contains(Flags::SYN | Flags::FIN) && f.intersects(Flags::SYN | Flags::FIN));
        assert_eq!(alloc::format!("{f:?}"), "SYN | ACK");
        assert_eq!(f.to_string(), "S.");
        assert_eq!(Flags::empty().to_string(), "none");
        assert_eq!(alloc::format!("{:?}", Flags::empty()), "(empty)");
        assert_eq!((!Flags::ACK).bits(), 0x1ef);
        assert_eq!(Flags::from_bits_truncate(0xffff).bits(), 0x1ff);
        let mut g = Flags::FIN;
        g |= Flags::PSH;
        g.remove(Flags::FIN);
        assert_eq!(g, Flags::PSH);
        assert_eq!((g & Flags::PSH), Flags::PSH);
    }

    /// Every combination of options: the header fits in 60 bytes, `header_len` is what
    /// emit writes, and parsing gives back the repr (SACK blocks cut to what fit).
    #[test]
    fn header_len_for_every_option_combination() {
        let mut max_blocks_seen = [0usize; 2];
        for bits in 0..16u32 {
            for n in 0..=4usize {
                for flags in [Flags::SYN, Flags::SYN | Flags::ACK, Flags::ACK] {
                    let mut r = template();
                    r.flags = flags;
                    r.ack_number = flags.contains(Flags::ACK).then_some(SeqNumber(77));
                    r.max_seg_size = (bits & 1 != 0).then_some(1460);
                    r.window_scale = (bits & 2 != 0).then_some(7);
                    r.sack_permitted = bits & 4 != 0;
                    r.timestamp = (bits & 8 != 0).then_some(TcpTimestamp::new(1, 2));
                    for i in 0..n {
                        r.sack_ranges[i] =
                            Some((SeqNumber(100 * i as u32), SeqNumber(100 * i as u32 + 50)));
                    }
                    r.payload = b"xyz";
                    let hl = r.header_len();
                    assert!(hl <= MAX_HEADER_LEN && hl.is_multiple_of(4), "{r:?}");
                    let sent = r.sack_blocks_emitted();
                    assert!(sent <= n);
                    if bits & 0b1011 == 0 {
                        max_blocks_seen[0] = max_blocks_seen[0].max(sent);
                    }
                    if bits == 8 {
                        max_blocks_seen[1] = max_blocks_seen[1].max(sent);
                    }
                    let b = emit_to_vec(&r, TcpChecksum::Compute);
                    let p = Packet::new_checked(&b[..]).unwrap();
                    assert_eq!(p.header_len(), hl);
                    assert_eq!(p.payload(), b"xyz");
                    let back = parse_bytes(&b).unwrap();
                    let mut want = r;
                    want.sack_ranges[sent..].fill(None);
                    assert_eq!(back, want, "{r}");
                    // A block that was dropped only because it did not fit.
                    if sent < n {
                        assert!(hl + 8 > MAX_HEADER_LEN, "{r}");
                    }
                }
            }
        }
        // 4 blocks without timestamps, 3 next to them.
        assert_eq!(max_blocks_seen, [4, 3]);
    }

    /// The pseudo-header sum over 32-bit words is the one over 16-bit words (RFC 793's
    /// definition), extremes and TSO lengths over 64 KiB included.
    #[test]
    fn pseudo_sum_is_the_16_bit_word_sum() {
        fn by_words(s: u32, d: u32, len: u32) -> u16 {
            let words = [
                s >> 16,
                s & 0xffff,
                d >> 16,
                d & 0xffff,
                6,
                len >> 16,
                len & 0xffff,
            ];
            let mut acc: u32 = words.iter().sum();
            while acc > 0xffff {
                acc = (acc & 0xffff) + (acc >> 16);
            }
            acc as u16
        }
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let edges = [0, 1, 0xffff, 0x1_0000, 0xffff_fffe, 0xffff_ffff];
        for &s in &edges {
            for &d in &edges {
                for &len in &[0u32, 20, 65535, 65536, 200_000, u32::MAX] {
                    let (a, b) = (Ipv4Addr::from_bits(s), Ipv4Addr::from_bits(d));
                    assert_eq!(pseudo_sum(a, b, len as usize), by_words(s, d, len));
                    let addrs = pseudo_sum_addrs(a, b);
                    assert_eq!(pseudo_sum_from(addrs, len as usize), by_words(s, d, len));
                }
            }
        }
        for _ in 0..10_000 {
            let r = next();
            let (s, d, len) = (r as u32, (r >> 32) as u32, (next() % 300_000) as u32);
            let (a, b) = (Ipv4Addr::from_bits(s), Ipv4Addr::from_bits(d));
            assert_eq!(pseudo_sum(a, b, len as usize), by_words(s, d, len));
            let addrs = pseudo_sum_addrs(a, b);
            assert_eq!(pseudo_sum_from(addrs, len as usize), by_words(s, d, len));
        }
    }

    /// A `HeaderImage` emits the very bytes `TcpRepr::emit` does: built with `set` (the
    /// timestamps and SACK blocks of a synchronized connection: every flag combination
    /// it sends, 0 to 4 blocks, with and without timestamps, both checksum modes) and
    /// with `from_repr` (any options, the SYN's included), over a frame that already
    /// holds the payload, as the zero-copy sender writes it.
    #[test]
    fn header_image_emits_what_the_repr_does() {
        let blocks: Vec<(SeqNumber, SeqNumber)> = (0..4u32)
            .map(|i| {
                (
                    SeqNumber(0x8000_0000 + 100 * i),
                    SeqNumber(0x8000_0000 + 100 * i + 50),
                )
            })
            .collect();
        let check = |r: &TcpRepr<'_>, image: &HeaderImage| {
            // The sum from the addresses' sum is the one from the addresses.
            let from = TcpChecksum::OffloadFrom(pseudo_sum_addrs(A, B));
            for (csum, same) in [
                (TcpChecksum::Compute, TcpChecksum::Compute),
                (TcpChecksum::Offload, TcpChecksum::Offload),
                (from, TcpChecksum::Offload),
            ] {
                let want = emit_to_vec(r, same);
                let layout = image.layout_header();
                assert_eq!(layout.header_len(), r.header_len(), "{r}");
                let mut got = vec![0xa5u8; want.len()];
                got[layout.header_len()..].copy_from_slice(r.payload);
                let mut p = Packet::new_unchecked(&mut got[..]);
                image.emit_header_as(layout, &mut p, r.payload.len(), A, B, csum);
                assert_eq!(got, want, "{r}");
            }
        };
        for flags in [
            Flags::ACK,
            Flags::ACK | Flags::PSH,
            Flags::ACK | Flags::FIN,
            Flags::ACK | Flags::PSH | Flags::FIN,
            Flags::RST,
            Flags::RST | Flags::ACK,
        ] {
            for ts in [None, Some(TcpTimestamp::new(0x0102_0304, 0xfffe_fdfc))] {
                for n in 0..=4usize {
                    for payload in [&b""[..], b"xyz"] {
                        let mut r = template();
                        r.flags = flags;
                        r.ack_number = flags.contains(Flags::ACK).then_some(SeqNumber(77));
                        r.timestamp = ts;
                        for (slot, b) in r.sack_ranges.iter_mut().zip(&blocks[..n]) {
                            *slot = Some(*b);
                        }
                        r.payload = payload;
                        let mut image = HeaderImage::default();
                        image.set(
                            r.src_port,
                            r.dst_port,
                            flags,
                            r.seq_number,
                            r.ack_number,
                            r.window_len,
                            ts,
                            &blocks[..n],
                        );
                        check(&r, &image);
                        check(&r, &HeaderImage::from_repr(&r));
                    }
                }
            }
        }
        for bits in 0..16u32 {
            for flags in [Flags::SYN, Flags::SYN | Flags::ACK] {
                let mut r = template();
                r.flags = flags;
                r.ack_number = flags.contains(Flags::ACK).then_some(SeqNumber(77));
                r.urgent_pointer = 0x1234;
                r.max_seg_size = (bits & 1 != 0).then_some(1460);
                r.window_scale = (bits & 2 != 0).then_some(7);
                r.sack_permitted = bits & 4 != 0;
                r.timestamp = (bits & 8 != 0).then_some(TcpTimestamp::new(1, 0));
                check(&r, &HeaderImage::from_repr(&r));
                if r.urgent_pointer == 0x1234 && bits & 1 != 0 {
                    // `set_syn` always sends the MSS, and a zero urgent pointer.
                    let mut r = r;
                    r.urgent_pointer = 0;
                    let mut image = HeaderImage::default();
                    image.set_syn(
                        r.src_port,
                        r.dst_port,
                        r.flags,
                        r.seq_number,
                        r.ack_number,
                        r.window_len,
                        1460,
                        r.window_scale,
                        r.sack_permitted,
                        r.timestamp,
                    );
                    check(&r, &image);
                }
            }
        }
    }

    /// The word-at-a-time option writer of `emit` lays out exactly the bytes that
    /// `for_each_option` names, option by option through `TcpOption::emit`, for every
    /// combination (also the one `Display` prints).
    #[test]
    fn option_writer_matches_the_option_list() {
        for bits in 0..16u32 {
            for n in 0..=4usize {
                let mut r = template();
                r.max_seg_size = (bits & 1 != 0).then_some(1460);
                r.window_scale = (bits & 2 != 0).then_some(7);
                r.sack_permitted = bits & 4 != 0;
                r.timestamp = (bits & 8 != 0).then_some(TcpTimestamp::new(0x0102_0304, 9));
                for i in 0..n {
                    // Gaps between Some entries too: only the Some ones count.
                    r.sack_ranges[i] = Some((SeqNumber(i as u32), SeqNumber(0xffff_0000)));
                }
                if n == 2 {
                    r.sack_ranges.swap(0, 3);
                }
                let mut listed = vec![0u8; r.options_len()];
                let mut rest = &mut listed[..];
                r.for_each_option(|o| -> core::result::Result<(), ()> {
                    rest = o.emit(core::mem::take(&mut rest));
                    Ok(())
                })
                .unwrap();
                assert!(rest.is_empty(), "{r:?}");
                let mut written = vec![0xeeu8; r.options_len()];
                r.write_options(&mut written, r.sack_blocks_emitted());
                assert_eq!(written, listed, "{r:?}");
            }
        }
    }

    /// `NOP NOP TS` and no options take a shortcut in `parse`; a layout that only looks
    /// like it goes the general way with its usual verdict.
    #[test]
    fn common_option_layouts_parse_like_the_general_walk() {
        let ts = [1, 1, 8, 10, 0, 0, 0, 5, 0, 0, 0, 6];
        let b = with_options(&ts);
        let r = parse_bytes(&b).unwrap();
        assert_eq!(r.timestamp, Some(TcpTimestamp::new(5, 6)));
        let mut general = template();
        general.parse_options(&ts).unwrap();
        assert_eq!(general.timestamp, r.timestamp);
        // A wrong timestamp length is still an error; TS first then padding still parses.
        let bad = with_options(&[1, 1, 8, 11, 0, 0, 0, 5, 0, 0, 0, 6]);
        assert_eq!(parse_bytes(&bad), Err(Error::BadOption));
        let other = with_options(&[8, 10, 0, 0, 0, 5, 0, 0, 0, 6, 1, 0]);
        assert_eq!(
            parse_bytes(&other).unwrap().timestamp,
            Some(TcpTimestamp::new(5, 6))
        );
        let empty = with_options(&[]);
        let none = parse_bytes(&empty).unwrap();
        assert_eq!(none.timestamp, None);
        assert_eq!(none.options_len(), 0);
        // The handshake's MSS SACK_PERM TS NOP WS, a shift above 14 included, and the
        // same options in another order (the walk's way): all as the walk reads them.
        for syn in [
            [
                2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 0, 0, 5, 0, 0, 0, 0, 1, 3, 3, 7,
            ],
            [
                2, 4, 0xff, 0xd7, 4, 2, 8, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 3, 3, 15,
            ],
            [
                2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 0, 0, 5, 0, 0, 0, 9, 1, 3, 3, 0,
            ],
            [
                2, 4, 5, 0xb4, 1, 3, 3, 7, 4, 2, 8, 10, 0, 0, 0, 5, 0, 0, 0, 0,
            ],
        ] {
            let b = with_options(&syn);
            let fast = parse_bytes(&b).unwrap();
            let mut general = template();
            general.parse_options(&syn).unwrap();
            assert_eq!(fast.max_seg_size, general.max_seg_size, "{syn:?}");
            assert_eq!(fast.sack_permitted, general.sack_permitted, "{syn:?}");
            assert_eq!(fast.timestamp, general.timestamp, "{syn:?}");
            assert_eq!(fast.window_scale, general.window_scale, "{syn:?}");
            assert!(fast.max_seg_size.is_some() && fast.sack_permitted);
        }
        // A wrong length in that layout is still an error.
        let bad = with_options(&[
            2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 0, 0, 5, 0, 0, 0, 0, 1, 3, 4, 7,
        ]);
        assert_eq!(parse_bytes(&bad), Err(Error::BadOption));
    }

    #[test]
    fn emit_overwrites_junk_and_stays_in_bounds() {
        // Every header byte is written: emitting into zeros and into 0xff gives the same.
        let mut r = template();
        r.max_seg_size = Some(536);
        r.window_scale = Some(0);
        r.sack_permitted = true;
        r.payload = b"abc";
        let mut zeros = vec![0u8; r.buffer_len() + 4];
        let mut ones = vec![0xffu8; r.buffer_len() + 4];
        r.emit(
            &mut Packet::new_unchecked(&mut zeros[..]),
            A,
            B,
            TcpChecksum::Compute,
        );
        r.emit(
            &mut Packet::new_unchecked(&mut ones[..]),
            A,
            B,
            TcpChecksum::Compute,
        );
        assert_eq!(zeros[..r.buffer_len()], ones[..r.buffer_len()]);
        assert_eq!(&ones[r.buffer_len()..], &[0xff; 4]);
        // MSS, NOP NOP SACK_PERM, NOP WS: Linux's SYN without timestamps.
        assert_eq!(&zeros[20..32], &[2, 4, 2, 0x18, 1, 1, 4, 2, 1, 3, 3, 0]);
        let checked = Packet::new_checked(&zeros[..r.buffer_len()]).unwrap();
        assert!(checked.verify_checksum(A, B));
    }

    #[test]
    fn setters_write_fields() {
        let mut b = [0xa5u8; 24];
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_header_len(24);
        p.set_flags(Flags::SYN);
        p.set_src_port(1);
        p.set_dst_port(2);
        p.set_seq_number(SeqNumber(3));
        p.set_ack_number(SeqNumber(4));
        p.set_window_len(5);
        p.set_checksum(6);
        p.set_urgent_at(7);
        p.options_mut().copy_from_slice(&[1, 1, 1, 0]);
        assert_eq!(p.header_len(), 24);
        assert_eq!(p.flags(), Flags::SYN);
        assert_eq!(
            (
                p.src_port(),
                p.dst_port(),
                p.window_len(),
                p.checksum(),
                p.urgent_at()
            ),
            (1, 2, 5, 6, 7)
        );
        assert_eq!(
            (p.seq_number(), p.ack_number()),
            (SeqNumber(3), SeqNumber(4))
        );
        assert_eq!(p.payload_mut().len(), 0);
        assert_eq!(&b[12..14], &[0x60, 0x02]); // reserved bits cleared
    }

    mod fuzz {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
                if let Ok(p) = Packet::new_checked(&bytes[..]) {
                    let _ = TcpRepr::parse(&p, A, B, false);
                    let _ = TcpRepr::parse(&p, A, B, true);
                }
                let _ = TcpRepr::parse(&Packet::new_unchecked(&bytes[..]), A, B, false);
            }

            /// A real header with random options built from well-formed ones, sometimes with
            /// a byte corrupted: parsing never panics, uncorrupted options always parse, and
            /// what parses re-emits to bytes that parse back to the same repr.
            #[test]
            fn random_options_parse_emit_parse(
                tokens in proptest::collection::vec(
                    (0u8..8, any::<u32>(), any::<u32>(), 1usize..=4),
                    0..10,
                ),
                corrupt in proptest::option::of((0usize..40, any::<u8>())),
            ) {
                let mut options = Vec::new();
                for (what, a, b, n) in tokens {
                    let mut t = Vec::new();
                    match what {
                        0 => t.push(0),
                        1 => t.push(1),
                        2 => t.extend_from_slice(&[2, 4, (a >> 8) as u8, a as u8]),
                        3 => t.extend_from_slice(&[3, 3, a as u8]),
                        4 => t.extend_from_slice(&[4, 2]),
                        5 => {
                            t.extend_from_slice(&[5, (2 + 8 * n) as u8]);
                            for k in 0..n as u32 {
                                t.extend_from_slice(&a.wrapping_add(k << 12).to_be_bytes());
                                t.extend_from_slice(&b.wrapping_add(k << 12).to_be_bytes());
                            }
                        }
                        6 => {
                            t.extend_from_slice(&[8, 10]);
                            t.extend_from_slice(&a.to_be_bytes());
                            t.extend_from_slice(&b.to_be_bytes());
                        }
                        _ => {
                            let len = 2 + (b % 6) as usize;
                            t.extend_from_slice(&[30 + (a % 200) as u8, len as u8]);
                            t.resize(len, 0xee);
                        }
                    }
                    if options.len() + t.len() <= MAX_OPTIONS_LEN {
                        options.extend_from_slice(&t);
                    }
                }
                while options.len() % 4 != 0 {
                    options.push(0);
                }
                let mut corrupted = false;
                if let Some((at, byte)) = corrupt {
                    if let Some(o) = options.get_mut(at) {
                        corrupted = *o != byte;
                        *o = byte;
                    }
                }
                let (tcp, ..) = segment(DATA_FRAME);
                let mut b = tcp[..20].to_vec();
                b.extend_from_slice(&options);
                b.extend_from_slice(b"payload");
                b[12] = (((HEADER_LEN + options.len()) / 4) as u8) << 4;
                let p = Packet::new_checked(&b[..]).unwrap();
                let parsed = TcpRepr::parse(&p, A, B, false);
                prop_assert!(corrupted || parsed.is_ok(), "{:?}: {:?}", options, parsed);
                if let Ok(r) = parsed {
                    prop_assert!(r.window_scale.unwrap_or(0) <= MAX_WINDOW_SCALE);
                    let out = emit_to_vec(&r, TcpChecksum::Compute);
                    prop_assert!(r.header_len() <= MAX_HEADER_LEN);
                    prop_assert_eq!(out.len(), r.header_len() + 7);
                    let back = parse_bytes(&out).unwrap();
                    let mut want = r;
                    want.sack_ranges[r.sack_blocks_emitted()..].fill(None);
                    prop_assert_eq!(back, want);
                }
            }
        }
    }
}
