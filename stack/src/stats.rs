//! Named traffic and drop counters, `netstat -s` style.
//!
//! Every frame the stack does not deliver or forward is dropped for a [`DropReason`] and
//! counted. Stats are plain counters owned by one stack (one shard); a runtime sums shards
//! on demand with [`Stats::merge`]. No atomics: the owner is the only writer.

use core::fmt;

macro_rules! drop_reasons {
    ($($(#[$doc:meta])* $name:ident => $text:literal,)*) => {
        /// Why a frame, packet or datagram was dropped.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum DropReason {
            $($(#[$doc])* $name,)*
        }

        impl DropReason {
            /// Every reason, in counter order.
            pub const ALL: &'static [DropReason] = &[$(DropReason::$name,)*];
            /// Number of reasons (the size of the counter array).
            pub const COUNT: usize = Self::ALL.len();

            /// A short lower-case description, as printed in the counters table.
            pub const fn description(self) -> &'static str {
                match self {
                    $(DropReason::$name => $text,)*
                }
            }
        }
    };
}

drop_reasons! {
    /// Shorter than an Ethernet header (or its VLAN tag).
    EthTruncated => "ethernet frame truncated",
    /// Destination MAC is neither ours, broadcast, nor a multicast group we receive.
    EthNotForUs => "ethernet frame for another station",
    /// Own source MAC: a frame we sent, looped back.
    EthLooped => "ethernet frame from our own MAC",
    /// EtherType the stack does not handle.
    EthUnknownType => "unknown ethertype",
    /// 802.1Q tag missing, or with a VLAN id this interface is not on.
    VlanMismatch => "vlan id mismatch",
    /// ARP packet truncated or with inconsistent fields.
    ArpMalformed => "arp malformed",
    /// ARP for a hardware/protocol type other than Ethernet/IPv4, or unknown operation.
    ArpUnsupported => "arp unsupported type or operation",
    /// ARP whose sender claims one of our addresses (address conflict).
    ArpAddressConflict => "arp sender uses our address",
    /// ARP with a broadcast/multicast sender MAC or unusable sender address.
    ArpBadSender => "arp bad sender address",
    /// Packets waiting for ARP that were dropped when resolution failed.
    ArpUnresolved => "packets dropped: neighbour unresolved",
    /// A packet waiting for ARP pushed out of a full pending queue.
    ArpQueueFull => "packets dropped: arp pending queue full",
    /// The neighbour cache is full of live entries.
    NeighborCacheFull => "neighbour cache full",
    /// IPv4 packet shorter than its header or its total length.
    Ipv4Truncated => "ipv4 truncated",
    /// IP version field is not 4.
    Ipv4BadVersion => "ipv4 bad version",
    /// IHL below 5 words (an IHL past the end of the packet is `Ipv4Truncated`).
    Ipv4BadHeaderLength => "ipv4 bad header length",
    /// Total length smaller than the header.
    Ipv4BadLength => "ipv4 bad total length",
    /// Header checksum does not verify.
    Ipv4BadChecksum => "ipv4 bad header checksum",
    /// Malformed IPv4 options.
    Ipv4BadOptions => "ipv4 bad options",
    /// Source address that cannot be a sender (multicast, broadcast, loopback).
    Ipv4MartianSource => "ipv4 martian source",
    /// Destination is not ours and forwarding is off (or not forwardable).
    Ipv4NotForUs => "ipv4 not for us",
    /// Forwarding would take TTL to zero.
    Ipv4TtlExpired => "ipv4 ttl expired in transit",
    /// No route to the destination.
    Ipv4NoRoute => "ipv4 no route",
    /// Transport protocol not handled here.
    Ipv4UnknownProtocol => "ipv4 unknown protocol",
    /// Too large for the link MTU with DF set.
    Ipv4FragNeeded => "ipv4 fragmentation needed but DF set",
    /// A fragment whose data overlaps data already received (RFC 5722 spirit: the whole
    /// datagram is dropped, as Linux does for IPv4, and each of its fragments counted).
    FragOverlap => "fragment overlap (datagram dropped)",
    /// The reassembled datagram would exceed 65535 bytes or the per-datagram limit (the
    /// fragments already held for it are dropped and counted too).
    FragOversize => "fragment beyond maximum datagram size",
    /// A non-final fragment whose length is not a multiple of 8, or an empty one.
    FragBadLength => "fragment bad length",
    /// A datagram with more fragments than allowed (all of them are dropped and counted).
    FragTooMany => "too many fragments in one datagram",
    /// A fragment whose bytes were already received (ignored, not an error).
    FragDuplicate => "duplicate fragment ignored",
    /// No room for another datagram or more bytes in the reassembly buffers.
    FragNoBuffer => "reassembly buffers full",
    /// Fragments of a datagram that did not complete in time.
    FragTimeout => "reassembly timed out",
    /// ICMP message truncated.
    IcmpTruncated => "icmp truncated",
    /// ICMP checksum does not verify.
    IcmpBadChecksum => "icmp bad checksum",
    /// ICMP type this stack does not handle.
    IcmpUnsupported => "icmp unsupported type",
    /// Echo request to a broadcast address (ignored, as Linux does by default).
    IcmpBroadcastEcho => "icmp echo to broadcast ignored",
    /// Echo reply with no socket for its identifier.
    IcmpNoSocket => "icmp echo reply without socket",
    /// ICMP error not sent because of the rate limit.
    IcmpRateLimited => "icmp error rate limited",
    /// UDP datagram shorter than its header or its length field.
    UdpTruncated => "udp truncated",
    /// UDP length field inconsistent with the IP payload.
    UdpBadLength => "udp bad length",
    /// UDP checksum does not verify.
    UdpBadChecksum => "udp bad checksum",
    /// UDP datagram malformed otherwise (destination port 0).
    UdpMalformed => "udp malformed",
    /// No socket bound to the destination port.
    UdpNoSocket => "udp no socket (port unreachable)",
    /// The socket's receive queue is full.
    UdpRxQueueFull => "udp socket receive queue full",
    /// A TCP segment to a broadcast or multicast address.
    TcpBroadcast => "tcp to broadcast/multicast",
    /// TCP segment shorter than its header.
    TcpTruncated => "tcp truncated",
    /// TCP header malformed (data offset < 5, port 0, SYN+FIN, ...).
    TcpMalformed => "tcp malformed header",
    /// TCP checksum does not verify.
    TcpBadChecksum => "tcp bad checksum",
    /// A malformed TCP option.
    TcpBadOption => "tcp bad option",
    /// No connection or listener for the segment (a RST answers it unless it was one).
    TcpNoSocket => "tcp no socket (reset sent)",
    /// Outside the receive window (RFC 9293 §3.10.7.4).
    TcpOutOfWindow => "tcp segment outside the window",
    /// An old duplicate caught by PAWS (RFC 7323 §5).
    TcpPaws => "tcp rejected by paws",
    /// No ACK bit in a synchronized state.
    TcpNoAck => "tcp segment without ack",
    /// An ACK for data not sent, or too old (RFC 5961 §5).
    TcpBadAck => "tcp unacceptable ack",
    /// A RST or SYN answered with a challenge ACK (RFC 5961).
    TcpChallenged => "tcp challenge ack sent",
    /// A RST or SYN that would have been challenged, beyond the connection's budget of
    /// challenge ACKs (RFC 5961 §7).
    TcpChallengeLimited => "tcp challenge ack rate-limited",
    /// Too many holes in a connection's out-of-order data.
    TcpReassemblyFull => "tcp out-of-order queue full",
    /// A final handshake ACK whose SYN cookie did not verify.
    TcpBadCookie => "tcp bad syn cookie",
    /// A listener's accept queue was full.
    TcpAcceptQueueFull => "tcp accept queue full",
    /// A listener's SYN backlog was full and cookies are off.
    TcpSynBacklogFull => "tcp syn backlog full",
    /// The connection table was full.
    TcpTooManyConnections => "tcp connection table full",
    /// The device had no transmit buffer.
    TxNoBuffer => "tx no buffer",
    /// The device did not take frames and the transmit backlog is full.
    TxBacklogFull => "tx backlog full",
}

/// Counters of one stack. Plain integers, summed across shards with [`Stats::merge`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stats {
    pub rx_frames: u64,
    pub rx_bytes: u64,
    pub tx_frames: u64,
    pub tx_bytes: u64,
    pub arp_rx: u64,
    pub arp_requests_tx: u64,
    pub arp_replies_tx: u64,
    pub ipv4_rx: u64,
    pub ipv4_delivered: u64,
    pub ipv4_forwarded: u64,
    pub ipv4_tx: u64,
    pub frag_rx: u64,
    pub frag_reassembled: u64,
    pub frag_tx: u64,
    pub icmp_rx: u64,
    pub icmp_tx: u64,
    pub icmp_echo_replies_tx: u64,
    pub icmp_errors_rx: u64,
    pub udp_rx: u64,
    pub udp_tx: u64,
    pub tcp_rx: u64,
    pub tcp_tx: u64,
    pub tcp_active_opens: u64,
    pub tcp_passive_opens: u64,
    pub tcp_retransmits: u64,
    pub tcp_retransmit_bytes: u64,
    pub tcp_timeouts: u64,
    pub tcp_rst_tx: u64,
    pub tcp_syncookies_sent: u64,
    drops: [u64; DropReason::COUNT],
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            rx_frames: 0,
            rx_bytes: 0,
            tx_frames: 0,
            tx_bytes: 0,
            arp_rx: 0,
            arp_requests_tx: 0,
            arp_replies_tx: 0,
            ipv4_rx: 0,
            ipv4_delivered: 0,
            ipv4_forwarded: 0,
            ipv4_tx: 0,
            frag_rx: 0,
            frag_reassembled: 0,
            frag_tx: 0,
            icmp_rx: 0,
            icmp_tx: 0,
            icmp_echo_replies_tx: 0,
            icmp_errors_rx: 0,
            udp_rx: 0,
            udp_tx: 0,
            tcp_rx: 0,
            tcp_tx: 0,
            tcp_active_opens: 0,
            tcp_passive_opens: 0,
            tcp_retransmits: 0,
            tcp_retransmit_bytes: 0,
            tcp_timeouts: 0,
            tcp_rst_tx: 0,
            tcp_syncookies_sent: 0,
            drops: [0; DropReason::COUNT],
        }
    }
}

impl Stats {
    /// Count one drop.
    #[inline]
    pub fn drop(&mut self, reason: DropReason) {
        self.drops[reason as usize] += 1;
    }

    /// Count `n` drops.
    #[inline]
    pub fn drop_n(&mut self, reason: DropReason, n: u64) {
        self.drops[reason as usize] += n;
    }

    /// Drops counted for `reason`.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.drops[reason as usize]
    }

    /// All drops.
    pub fn total_drops(&self) -> u64 {
        self.drops.iter().sum()
    }

    /// Add another shard's counters into these.
    pub fn merge(&mut self, other: &Stats) {
        self.rx_frames += other.rx_frames;
        self.rx_bytes += other.rx_bytes;
        self.tx_frames += other.tx_frames;
        self.tx_bytes += other.tx_bytes;
        self.arp_rx += other.arp_rx;
        self.arp_requests_tx += other.arp_requests_tx;
        self.arp_replies_tx += other.arp_replies_tx;
        self.ipv4_rx += other.ipv4_rx;
        self.ipv4_delivered += other.ipv4_delivered;
        self.ipv4_forwarded += other.ipv4_forwarded;
        self.ipv4_tx += other.ipv4_tx;
        self.frag_rx += other.frag_rx;
        self.frag_reassembled += other.frag_reassembled;
        self.frag_tx += other.frag_tx;
        self.icmp_rx += other.icmp_rx;
        self.icmp_tx += other.icmp_tx;
        self.icmp_echo_replies_tx += other.icmp_echo_replies_tx;
        self.icmp_errors_rx += other.icmp_errors_rx;
        self.udp_rx += other.udp_rx;
        self.udp_tx += other.udp_tx;
        self.tcp_rx += other.tcp_rx;
        self.tcp_tx += other.tcp_tx;
        self.tcp_active_opens += other.tcp_active_opens;
        self.tcp_passive_opens += other.tcp_passive_opens;
        self.tcp_retransmits += other.tcp_retransmits;
        self.tcp_retransmit_bytes += other.tcp_retransmit_bytes;
        self.tcp_timeouts += other.tcp_timeouts;
        self.tcp_rst_tx += other.tcp_rst_tx;
        self.tcp_syncookies_sent += other.tcp_syncookies_sent;
        for (a, b) in self.drops.iter_mut().zip(other.drops.iter()) {
            *a += *b;
        }
    }

    /// The traffic counters with their names, in print order.
    pub fn traffic(&self) -> [(&'static str, u64); 29] {
        [
            ("frames received", self.rx_frames),
            ("bytes received", self.rx_bytes),
            ("frames sent", self.tx_frames),
            ("bytes sent", self.tx_bytes),
            ("arp packets received", self.arp_rx),
            ("arp requests sent", self.arp_requests_tx),
            ("arp replies sent", self.arp_replies_tx),
            ("ipv4 packets received", self.ipv4_rx),
            ("ipv4 packets delivered", self.ipv4_delivered),
            ("ipv4 packets forwarded", self.ipv4_forwarded),
            ("ipv4 packets sent", self.ipv4_tx),
            ("fragments received", self.frag_rx),
            ("datagrams reassembled", self.frag_reassembled),
            ("fragments sent", self.frag_tx),
            ("icmp messages received", self.icmp_rx),
            ("icmp messages sent", self.icmp_tx),
            ("icmp echo replies sent", self.icmp_echo_replies_tx),
            ("icmp errors received", self.icmp_errors_rx),
            ("udp datagrams received", self.udp_rx),
            ("udp datagrams sent", self.udp_tx),
            ("tcp segments received", self.tcp_rx),
            ("tcp segments sent", self.tcp_tx),
            ("tcp active opens", self.tcp_active_opens),
            ("tcp passive opens", self.tcp_passive_opens),
            ("tcp segments retransmitted", self.tcp_retransmits),
            ("tcp bytes retransmitted", self.tcp_retransmit_bytes),
            ("tcp retransmission timeouts", self.tcp_timeouts),
            ("tcp resets sent", self.tcp_rst_tx),
            ("tcp syn cookies sent", self.tcp_syncookies_sent),
        ]
    }

    /// The non-zero drop counters with their reasons.
    pub fn drops(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL
            .iter()
            .map(|&r| (r, self.drops[r as usize]))
            .filter(|&(_, n)| n != 0)
    }
}

impl fmt::Display for Stats {
    /// `netstat -s` style: one counter per line, drops by reason after the traffic.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, v) in self.traffic() {
            writeln!(f, "    {v} {name}")?;
        }
        writeln!(f, "    {} dropped in total", self.total_drops())?;
        for (r, n) in self.drops() {
            writeln!(f, "        {n} {}", r.description())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn drops_count_and_merge() {
        let mut a = Stats::default();
        a.drop(DropReason::Ipv4BadChecksum);
        a.drop_n(DropReason::FragOverlap, 2);
        a.rx_frames = 3;
        let mut b = Stats::default();
        b.drop(DropReason::Ipv4BadChecksum);
        b.rx_frames = 4;
        b.merge(&a);
        assert_eq!(b.dropped(DropReason::Ipv4BadChecksum), 2);
        assert_eq!(b.dropped(DropReason::FragOverlap), 2);
        assert_eq!(b.total_drops(), 4);
        assert_eq!(b.rx_frames, 7);
        let text = b.to_string();
        assert!(text.contains("2 ipv4 bad header checksum"), "{text}");
        assert!(!text.contains("udp bad checksum"));
        let mut names: alloc::vec::Vec<_> =
            DropReason::ALL.iter().map(|r| r.description()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), DropReason::COUNT);
    }
}
