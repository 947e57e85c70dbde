//! IPv4 on the interfaces: frame input, validation (RFC 791, RFC 1122 §3.2.1),
//! local delivery, forwarding (RFC 1812), output with next-hop resolution and
//! fragmentation, and the ICMP (RFC 792) and UDP (RFC 768) input that hangs off it.

use core::net::SocketAddrV4;

use crate::device::{Device, Frame, L4Proto, RxMeta, TxOffload};
use crate::iface::fragment::FragmentOutcome;
use crate::iface::neighbor::{Resolve, ResolveDrop};
use crate::iface::route::{OutHop, PathTemplate, PATH_HEADER_MAX};
use crate::iface::{AddrMatch, Interface, PendingPacket, Port, RxMemo};
use crate::stats::{DropReason, Stats};
use crate::time::Instant;
use crate::udp::DeliverError;
use crate::wire::ethernet::{self, EtherType};
use crate::wire::icmpv4::{self, DstUnreachable, Icmpv4Repr, Message, TimeExceeded};
use crate::wire::ipv4::{self, Ipv4Repr};
use crate::wire::tcp::{self, TcpChecksum};
use crate::wire::udp::{self, UdpChecksum, UdpRepr};
use crate::wire::{checksum, Error, EthernetAddress, IpProtocol, Ipv4Addr};
use crate::Stack;

/// RFC 1812 §4.3.2.3: an ICMP error carries as much of the offending datagram as fits
/// in 576 bytes.
const ICMP_ERROR_MAX_QUOTE: usize = 576 - ipv4::HEADER_LEN - icmpv4::HEADER_LEN;

/// What a transport would like the device to finish for it (used only when the
/// device's capabilities say it can).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct L4Offload {
    /// The transport whose checksum the device may compute.
    pub(crate) proto: Option<L4Proto>,
    /// Its header length.
    pub(crate) l4_len: u16,
    /// TCP segment size for TSO (0: no segmentation).
    pub(crate) tso_mss: u16,
}

/// The parts of the stack the templated TCP output uses, borrowed apart from the
/// connection table: the connection that sends stays borrowed meanwhile, and its send
/// buffer is read in place (the general path needs all of the stack, so the buffer is
/// lent out and the connection looked up again after each segment).
pub(crate) struct TcpPathOut<'a> {
    pub(crate) path: Option<&'a PathTemplate>,
    pub(crate) ifaces: &'a [Interface],
    /// The route table's generation now.
    pub(crate) generation: u64,
    pub(crate) ip_ident: &'a mut u16,
    pub(crate) stats: &'a mut Stats,
}

impl TcpPathOut<'_> {
    /// A TCP segment of `ip_payload_len` bytes from `src` to `dst` through the
    /// [`PathTemplate`] when it holds for them: exactly what
    /// [`Stack::output_ipv4_offload`] does with a [`Stack::local_repr`] header with DF
    /// set (the same bytes, identification, offloads and counters), without its lookups
    /// and layered header writes. `None`, having changed nothing, when the general path
    /// must send it: no template for this path or a stale one, a port missing, or a
    /// packet the MTU does not let through whole. `fill` writes the TCP segment with the
    /// checksum it is given: where the general path's says "offloaded", the
    /// [`OffloadFrom`](TcpChecksum::OffloadFrom) of the template's addresses.
    #[inline]
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn send<D: Device>(
        self,
        now: Instant,
        ports: &mut [Port<D>],
        src: Ipv4Addr,
        dst: Ipv4Addr,
        ip_payload_len: usize,
        want: L4Offload,
        fill: impl FnOnce(&mut [u8], TcpChecksum),
    ) -> Option<Result<(), DropReason>> {
        let t = self.path?;
        if t.src != src || t.dst != dst || t.generation != self.generation {
            return None;
        }
        let i = t.iface;
        let port = ports.get_mut(i)?;
        let iface = self.ifaces.get(i)?;
        if iface.neighbors.last_epoch() != t.neighbor_epoch || t.until.is_some_and(|u| now >= u) {
            return None;
        }
        // emit_ipv4_to's choice between one frame and fragments, and emit_frame's
        // offloads, from the port as it is now.
        let caps = &port.caps;
        let mtu = iface.mtu(caps);
        let ip_len = ipv4::HEADER_LEN + ip_payload_len;
        let l4_csum = caps.tx_checksum.tcp;
        // Over the MTU, only a TSO burst the device takes goes (and asks for its
        // segment size); the TSO questions are asked only then.
        let mut tso_mss = 0;
        if ip_len > mtu {
            if !(want.tso_mss > 0 && l4_csum && ip_len <= caps.tso_max) {
                return None;
            }
            tso_mss = want.tso_mss;
        }
        let offload = caps.tx_checksum.ipv4;
        let l2 = t.l2_len;
        // Taken where local_repr takes it: before the frame, whether or not one comes.
        *self.ip_ident = self.ip_ident.wrapping_add(1);
        let ident = *self.ip_ident;
        let Some(mut frame) = port.dev.alloc_tx(l2 + ip_len) else {
            return Some(Err(DropReason::TxNoBuffer));
        };
        // Filled here and then queued (a frame handle is small): no looking it up in
        // the batch again for each of its writes.
        {
            let (head, body) = frame.data_mut().split_at_mut(l2 + ipv4::HEADER_LEN);
            // Fixed-size copies for both link header lengths: no call to memcpy.
            if l2 == ethernet::HEADER_LEN {
                head[..34].copy_from_slice(&t.header[..34]);
            } else {
                head[..38].copy_from_slice(&t.header[..38]);
            }
            let ip = &mut head[l2..];
            let total = ip_len as u16;
            ip[2..4].copy_from_slice(&total.to_be_bytes());
            ip[4..6].copy_from_slice(&ident.to_be_bytes());
            if !offload {
                let csum = checksum::finish(&[t.sum, total, ident]);
                ip[10..12].copy_from_slice(&csum.to_be_bytes());
            }
            // What the general path's `offloaded` asks for, with the addresses' share
            // of the pseudo-header sum already worked out.
            let csum = if l4_csum {
                TcpChecksum::OffloadFrom(t.tcp_pseudo)
            } else {
                TcpChecksum::Compute
            };
            fill(&mut body[..ip_payload_len], csum);
        }
        if offload || l4_csum {
            frame.set_tx_offload(TxOffload {
                l2_len: l2 as u16,
                l3_len: ipv4::HEADER_LEN as u16,
                l4_len: want.l4_len,
                ipv4_csum: offload,
                l4_csum: l4_csum.then_some(L4Proto::Tcp),
                tso_mss,
            });
        }
        port.tx.push(frame);
        self.stats.ipv4_tx += 1;
        // The frame's length: alloc_tx gives exactly what was asked.
        self.stats.tx_bytes += (l2 + ip_len) as u64;
        Some(Ok(()))
    }
}

/// Which ICMP error to send about a received datagram.
#[derive(Debug, Clone, Copy)]
pub(crate) enum IcmpErrorKind {
    Unreachable(DstUnreachable, u16),
    TimeExceeded(TimeExceeded),
}

/// The received datagram an ICMP error is about.
#[derive(Clone, Copy)]
pub(crate) struct Offending<'a> {
    pub(crate) repr: &'a Ipv4Repr,
    /// The datagram's own header bytes (options included) when it arrived whole.
    pub(crate) header: Option<&'a [u8]>,
    pub(crate) payload: &'a [u8],
    /// It was addressed to a broadcast or multicast address (no errors for those).
    pub(crate) to_broadcast: bool,
}

/// RFC 1122 §3.2.1.3: a source that cannot be a host (or is one of our addresses).
#[inline(always)]
fn martian_source(src: Ipv4Addr, here: AddrMatch) -> bool {
    src.is_multicast() || src.is_broadcast() || src.is_loopback() || here.src_local
}

fn ipv4_drop(e: Error) -> DropReason {
    match e {
        Error::BadVersion => DropReason::Ipv4BadVersion,
        Error::BadHeaderLength => DropReason::Ipv4BadHeaderLength,
        Error::BadLength => DropReason::Ipv4BadLength,
        Error::BadChecksum => DropReason::Ipv4BadChecksum,
        Error::BadOption => DropReason::Ipv4BadOptions,
        _ => DropReason::Ipv4Truncated,
    }
}

impl Stack {
    /// One received frame on interface `i`.
    ///
    /// Inlined into the poll's receive of a burst of one, the path of every frame of
    /// request/response traffic (and into that of a longer burst). The device's
    /// metadata is read where each path needs it: read ahead of both, it was unpacked
    /// into memory for the general path's calls on every frame.
    #[inline(always)]
    pub(crate) fn input_frame<D: Device>(
        &mut self,
        now: Instant,
        ports: &mut [Port<D>],
        i: usize,
        frame: &D::Frame,
    ) {
        let data = frame.data();
        if let Some((src, dst, payload)) = self.unicast_tcp(i, data, frame.rx_meta()) {
            // The counters the general path bumps on its way to the same call.
            self.stats.rx_frames += 1;
            self.stats.rx_bytes += data.len() as u64;
            self.stats.ipv4_rx += 1;
            self.stats.ipv4_delivered += 1;
            return self.input_tcp(now, ports, (src, dst), payload, frame.rx_meta());
        }
        let meta = frame.rx_meta();
        self.stats.rx_frames += 1;
        self.stats.rx_bytes += data.len() as u64;
        let Ok(frame) = ethernet::Frame::new_checked(data) else {
            return self.stats.drop(DropReason::EthTruncated);
        };
        let iface = &self.ifaces[i];
        let dst = frame.dst_addr();
        if frame.src_addr() == iface.mac {
            return self.stats.drop(DropReason::EthLooped);
        }
        if dst != iface.mac && !dst.is_multicast() {
            return self.stats.drop(DropReason::EthNotForUs);
        }
        if frame.vlan().map(|t| t.vid) != iface.vlan {
            return self.stats.drop(DropReason::VlanMismatch);
        }
        match frame.ethertype() {
            EtherType::Arp => self.input_arp(now, ports, i, frame.payload()),
            EtherType::Ipv4 => {
                self.input_ipv4(now, ports, i, frame.payload(), meta, dst.is_multicast())
            }
            _ => self.stats.drop(DropReason::EthUnknownType),
        }
    }

    fn input_ipv4<D: Device>(
        &mut self,
        now: Instant,
        ports: &mut [Port<D>],
        i: usize,
        data: &[u8],
        meta: RxMeta,
        link_broadcast: bool,
    ) {
        self.stats.ipv4_rx += 1;
        let packet = match ipv4::Packet::new_checked(data) {
            Ok(p) => p,
            Err(e) => return self.stats.drop(ipv4_drop(e)),
        };
        // Borrowed where it was parsed: moving it out of the `Result` copies it.
        let parsed = Ipv4Repr::parse(&packet, !meta.ipv4_csum_ok);
        let repr = match &parsed {
            Ok(r) => r,
            Err(e) => return self.stats.drop(ipv4_drop(*e)),
        };
        let (src, dst) = (repr.src_addr, repr.dst_addr);
        let here = self.match_addrs(i, src, dst);
        if martian_source(src, here) {
            return self.stats.drop(DropReason::Ipv4MartianSource);
        }
        let to_broadcast = dst.is_broadcast() || here.dst_subnet_broadcast;
        if !to_broadcast && !here.dst_local {
            // RFC 1812 §5.3.4: never forward what came as a link-layer broadcast.
            if self.config.ip_forward && !link_broadcast && !dst.is_multicast() {
                let dgram = Offending {
                    repr,
                    header: Some(&data[..packet.header_len()]),
                    payload: packet.payload(),
                    to_broadcast: false,
                };
                self.forward(now, ports, i, dgram, meta);
            } else {
                self.stats.drop(DropReason::Ipv4NotForUs);
            }
            return;
        }
        let payload = packet.payload();
        if repr.more_frags || repr.frag_offset != 0 {
            self.stats.frag_rx += 1;
            match self.reasm.add(now, repr, payload) {
                Err(reason) => {
                    // This fragment and those discarded with its datagram.
                    let held = self.reasm.take_discarded() as u64;
                    self.stats.drop_n(reason, 1 + held);
                }
                Ok(FragmentOutcome::Stored) => {}
                Ok(FragmentOutcome::Duplicate) => self.stats.drop(DropReason::FragDuplicate),
                Ok(FragmentOutcome::Complete(whole)) => {
                    self.stats.frag_reassembled += 1;
                    // The device's L4 checksum verdict was about one fragment.
                    let meta = RxMeta {
                        l4_csum_ok: false,
                        l4_csum_partial: false,
                        ..meta
                    };
                    let off = Offending {
                        repr: &whole.repr,
                        header: None,
                        payload: &whole.payload,
                        to_broadcast,
                    };
                    self.deliver(now, ports, i, off, meta);
                    self.reasm.recycle(whole.payload);
                }
            }
            return;
        }
        if repr.protocol == IpProtocol::Tcp && !to_broadcast {
            // What `deliver` does with a whole unicast TCP datagram, without building
            // the description of it that only the other transports and ICMP errors use.
            self.stats.ipv4_delivered += 1;
            return self.input_tcp(now, ports, (src, dst), payload, meta);
        }
        let header = &data[..packet.header_len()];
        let off = Offending {
            repr,
            header: Some(header),
            payload,
            to_broadcast,
        };
        self.deliver(now, ports, i, off, meta);
    }

    /// The frame if it is what nearly every frame of an established TCP connection is:
    /// untagged IPv4 for this interface's MAC, a 20-byte header, not a fragment, TCP,
    /// from a possible host to one of our unicast addresses; its addresses and TCP
    /// bytes, with the header checksum verified (unless the device did). Read at fixed
    /// offsets in one pass, where the general path parses the Ethernet header for a
    /// VLAN tag, the IPv4 header into a repr, and describes the datagram for ICMP.
    ///
    /// Only frames that the general path, with the same checks, takes straight to
    /// `input_tcp` with the same arguments (see `input_frame` for the counters); not
    /// all of them (a group MAC, a VLAN tag, IPv4 options, another interface's
    /// address are left to it). `None` for any other frame, which the general path
    /// then takes. The test below holds the two side by side.
    ///
    /// What the checks of the MACs and addresses found is remembered
    /// ([`Interface::rx_memo`]): the next frame with the same MACs and addresses (on
    /// a connection, every one) is taken on a comparison of those bytes.
    #[inline(always)]
    fn unicast_tcp<'a>(
        &mut self,
        i: usize,
        data: &'a [u8],
        meta: RxMeta,
    ) -> Option<(Ipv4Addr, Ipv4Addr, &'a [u8])> {
        let (eth, rest) = data.split_first_chunk::<{ ethernet::HEADER_LEN }>()?;
        let (ip, _) = rest.split_first_chunk::<{ ipv4::HEADER_LEN }>()?;
        // EtherType IPv4 untagged, version 4 with IHL 5, protocol TCP.
        if eth[12..14] != [0x08, 0x00] || ip[0] != 0x45 || ip[9] != u8::from(IpProtocol::Tcp) {
            return None;
        }
        let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
        if total < ipv4::HEADER_LEN || total > rest.len() {
            return None;
        }
        // Neither more fragments nor an offset: a whole datagram.
        if u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff != 0 {
            return None;
        }
        if !meta.ipv4_csum_ok && !checksum::verifies(&[checksum::sum(ip)]) {
            return None;
        }
        let iface = self.ifaces.get(i)?;
        let seen = RxMemo::of(eth, ip);
        if iface.rx_memo != Some(seen) {
            if !self.local_unicast(i, eth, ip) {
                return None;
            }
            self.ifaces[i].rx_memo = Some(seen);
        }
        let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
        let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
        Some((src, dst, &rest[ipv4::HEADER_LEN..total]))
    }

    /// The checks of [`unicast_tcp`](Self::unicast_tcp) that depend only on the MACs
    /// and addresses of the frame (`eth`, `ip`: its Ethernet and IPv4 headers) and on
    /// the interfaces, which do not change but by one being added: the frame is for
    /// interface `i`'s MAC, not from it, and untagged where the interface expects no
    /// tag; to one of `i`'s addresses, which is no subnet broadcast (unless one of
    /// them is also a broadcast address, which is left to the general path), from a
    /// possible host.
    #[inline(always)]
    fn local_unicast(
        &self,
        i: usize,
        eth: &[u8; ethernet::HEADER_LEN],
        ip: &[u8; ipv4::HEADER_LEN],
    ) -> bool {
        let Some(iface) = self.ifaces.get(i) else {
            return false;
        };
        if iface.vlan.is_some() || eth[0..6] != iface.mac.0 || eth[6..12] == iface.mac.0 {
            return false;
        }
        let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
        let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
        // The destination is one of this interface's addresses (not of another's) and
        // so no subnet broadcast, unless it is also one: then `None`, and the general
        // path works it out.
        let Some(mut here) = iface.match_local(src, dst) else {
            return false;
        };
        if self.ifaces.len() > 1 {
            for (k, f) in self.ifaces.iter().enumerate() {
                if k != i {
                    here.src_local |= f.has_addr(src);
                }
            }
        }
        !martian_source(src, here) && !dst.is_broadcast()
    }

    /// How `src` and `dst` relate to our addresses: the receiving interface `i`
    /// answers all three questions in one pass; others can only add local addresses.
    #[inline(always)]
    fn match_addrs(&self, i: usize, src: Ipv4Addr, dst: Ipv4Addr) -> AddrMatch {
        let mut here = self.ifaces[i].match_addrs(src, dst);
        if self.ifaces.len() > 1 {
            for (k, f) in self.ifaces.iter().enumerate() {
                if k != i {
                    here.src_local |= f.has_addr(src);
                    here.dst_local |= f.has_addr(dst);
                }
            }
        }
        here
    }

    /// A whole datagram for us: hand it to its transport.
    fn deliver<D: Device>(
        &mut self,
        now: Instant,
        ports: &mut [Port<D>],
        i: usize,
        dgram: Offending<'_>,
        meta: RxMeta,
    ) {
        self.stats.ipv4_delivered += 1;
        match dgram.repr.protocol {
            IpProtocol::Icmp => self.input_icmp(now, ports, dgram),
            IpProtocol::Udp => self.input_udp(now, ports, i, dgram, meta),
            // RFC 9293 §3.9.1: TCP is unicast only.
            IpProtocol::Tcp if dgram.to_broadcast => self.stats.drop(DropReason::TcpBroadcast),
            IpProtocol::Tcp => {
                let ip = dgram.repr;
                self.input_tcp(now, ports, (ip.src_addr, ip.dst_addr), dgram.payload, meta)
            }
            _ => {
                self.stats.drop(DropReason::Ipv4UnknownProtocol);
                // RFC 1122 §3.2.2.1: a host SHOULD answer protocol unreachable.
                let kind = IcmpErrorKind::Unreachable(DstUnreachable::ProtoUnreachable, 0);
                self.send_icmp_error(now, ports, i, dgram, kind);
            }
        }
    }

    /// RFC 1812 §5.2: forward a packet that is not ours.
    fn forward<D: Device>(
        &mut self,
        now: Instant,
        ports: &mut [Port<D>],
        i: usize,
        dgram: Offending<'_>,
        meta: RxMeta,
    ) {
        let repr = *dgram.repr;
        let payload = dgram.payload;
        // RFC 1812 §5.3.1: TTL is decremented; a packet that would reach 0 is dropped
        // with an ICMP time exceeded.
        if repr.ttl <= 1 {
            self.stats.drop(DropReason::Ipv4TtlExpired);
            let kind = IcmpErrorKind::TimeExceeded(TimeExceeded::TtlExpired);
            return self.send_icmp_error(now, ports, i, dgram, kind);
        }
        let mut out = repr;
        out.ttl -= 1;
        // A frame from a local kernel may carry a partial L4 checksum (virtio
        // NEEDS_CSUM): what leaves here must be complete, so finish it in software.
        let finish = meta.l4_csum_partial && repr.frag_offset == 0 && !repr.more_frags;
        let field = match repr.protocol {
            IpProtocol::Tcp => Some(16),
            IpProtocol::Udp => Some(6),
            _ => None,
        };
        match self.output_ipv4(now, ports, out, |buf| {
            buf.copy_from_slice(payload);
            if let (true, Some(f)) = (finish, field) {
                if buf.len() >= f + 2 {
                    // The field holds the pseudo-header sum: sum it all, complement.
                    let mut c = checksum::finish(&[checksum::sum(buf)]);
                    if c == 0 && repr.protocol == IpProtocol::Udp {
                        c = 0xffff;
                    }
                    buf[f..f + 2].copy_from_slice(&c.to_be_bytes());
                }
            }
        }) {
            Ok(()) => self.stats.ipv4_forwarded += 1,
            Err(DropReason::Ipv4NoRoute) => {
                self.stats.drop(DropReason::Ipv4NoRoute);
                let kind = IcmpErrorKind::Unreachable(DstUnreachable::NetUnreachable, 0);
                self.send_icmp_error(now, ports, i, dgram, kind);
            }
            Err(DropReason::Ipv4FragNeeded) => {
                self.stats.drop(DropReason::Ipv4FragNeeded);
                let mtu = self
                    .routes
                    .lookup(repr.dst_addr)
                    .and_then(|r| Some(self.ifaces.get(r.iface)?.mtu(&ports.get(r.iface)?.caps)))
                    .unwrap_or(576);
                let mtu = u16::try_from(mtu).unwrap_or(u16::MAX);
                let kind = IcmpErrorKind::Unreachable(DstUnreachable::FragRequired, mtu);
                self.send_icmp_error(now, ports, i, dgram, kind);
            }
            Err(reason) => self.stats.drop(reason),
        }
    }

    /// Send an IP datagram: route it, resolve the next hop (queueing it while ARP
    /// runs), fragment it if it is larger than the MTU and DF is clear. `fill` writes
    /// the `repr.payload_len` payload bytes. An unspecified source becomes the outgoing
    /// interface's address.
    pub(crate) fn output_ipv4<D: Device>(
        &mut self,
        now: Instant,
        ports: &mut [Port<D>],
        repr: Ipv4Repr,
        fill: impl FnOnce(&mut [u8]),
    ) -> Result<(), DropReason> {
        self.output_ipv4_offload(now, ports, repr, L4Offload::default(), |b, _| fill(b))
    }

    /// [`output_ipv4`](Self::output_ipv4) for a transport that can leave its checksum
    /// (and, for TCP, segmentation) to the device: `fill` is told whether the device
    /// will finish the checksum (then the field must hold the pseudo-header sum). A
    /// packet that waits for ARP or is fragmented is finished in software.
    pub(crate) fn output_ipv4_offload<D: Device>(
        &mut self,
        now: Instant,
        ports: &mut [Port<D>],
        mut repr: Ipv4Repr,
        want: L4Offload,
        fill: impl FnOnce(&mut [u8], bool),
    ) -> Result<(), DropReason> {
        let dst = repr.dst_addr;
        let hop = if dst.is_broadcast() {
            // The limited broadcast leaves by the interface of the source address.
            let i = self
                .ifaces
                .iter()
                .position(|f| f.has_addr(repr.src_addr))
                .unwrap_or(0);
            OutHop {
                iface: i,
                next_hop: dst,
                subnet_broadcast: false,
            }
        } else {
            self.out_hop(dst)?
        };
        let (i, next_hop) = (hop.iface, hop.next_hop);
        if i >= ports.len() || i >= self.ifaces.len() {
            return Err(DropReason::Ipv4NoRoute);
        }
        if repr.src_addr.is_unspecified() {
            repr.src_addr = self.ifaces[i]
                .source_for(next_hop)
                .ok_or(DropReason::Ipv4NoRoute)?;
        }
        if dst.is_broadcast() || hop.subnet_broadcast {
            return self.emit_ipv4_to(ports, i, EthernetAddress::BROADCAST, repr, want, fill);
        }
        let iface = &mut self.ifaces[i];
        if let Some((mac, probe)) = iface.neighbors.lookup_send(next_hop, now) {
            if probe {
                self.send_arp_request(ports, i, next_hop);
            }
            return self.emit_ipv4_to(ports, i, mac, repr, want, fill);
        }
        // The slow path: build the payload now and let it wait for ARP.
        let mut payload = alloc::vec![0u8; repr.payload_len];
        fill(&mut payload, false);
        let pending = PendingPacket { repr, payload };
        match self.ifaces[i].neighbors.resolve(next_hop, now, pending) {
            Resolve::QueuedProbe => {
                self.send_arp_request(ports, i, next_hop);
                Ok(())
            }
            Resolve::Queued => Ok(()),
            Resolve::QueuedDropped(_) => {
                self.stats.drop(DropReason::ArpQueueFull);
                Ok(())
            }
            Resolve::Ready(mac, probe, p) => {
                if probe {
                    self.send_arp_request(ports, i, next_hop);
                }
                let none = L4Offload::default();
                self.emit_ipv4_to(ports, i, mac, p.repr, none, |b, _| {
                    b.copy_from_slice(&p.payload)
                })
            }
            Resolve::Dropped(_, ResolveDrop::Unresolved) => Err(DropReason::ArpUnresolved),
            Resolve::Dropped(_, ResolveDrop::CacheFull) => Err(DropReason::NeighborCacheFull),
            Resolve::Dropped(_, ResolveDrop::QueueFull) => Err(DropReason::ArpQueueFull),
        }
    }

    /// How a datagram to (unicast or subnet broadcast) `dst` leaves: the route's
    /// interface and next hop, and whether `dst` is that interface's subnet broadcast.
    /// Answered from the [`RouteMemo`](crate::iface::route::RouteMemo) when it holds `dst` for the current table.
    #[inline]
    fn out_hop(&mut self, dst: Ipv4Addr) -> Result<OutHop, DropReason> {
        let generation = self.routes.generation();
        match self.route_memo.get(dst, generation) {
            Some(hop) => Ok(hop),
            None => self.out_hop_lookup(dst, generation),
        }
    }

    /// [`out_hop`](Self::out_hop) from the table, remembered when the interface exists.
    #[inline(never)]
    fn out_hop_lookup(&mut self, dst: Ipv4Addr, generation: u64) -> Result<OutHop, DropReason> {
        let r = self.routes.lookup(dst).ok_or(DropReason::Ipv4NoRoute)?;
        let mut hop = OutHop {
            iface: r.iface,
            next_hop: r.next_hop(dst),
            subnet_broadcast: false,
        };
        if let Some(f) = self.ifaces.get(hop.iface) {
            hop.subnet_broadcast = f.is_subnet_broadcast(dst);
            self.route_memo.set(dst, generation, hop);
        }
        Ok(hop)
    }

    /// Emit a datagram to a known link-layer destination on interface `i`,
    /// fragmenting it when it exceeds the MTU (RFC 791 §3.2, "Fragmentation").
    pub(crate) fn emit_ipv4_to<D: Device>(
        &mut self,
        ports: &mut [Port<D>],
        i: usize,
        dst_mac: EthernetAddress,
        repr: Ipv4Repr,
        want: L4Offload,
        fill: impl FnOnce(&mut [u8], bool),
    ) -> Result<(), DropReason> {
        let caps = &ports[i].caps;
        let mtu = self.ifaces[i].mtu(caps);
        let ip_len = ipv4::HEADER_LEN + repr.payload_len;
        // A TCP segment larger than the MTU may go as one frame when the device cuts it
        // (TSO) at the MSS the transport asked for.
        let tso = want.tso_mss > 0
            && want.proto == Some(L4Proto::Tcp)
            && caps.tx_checksum.tcp
            && ip_len <= caps.tso_max;
        if ip_len <= mtu || tso {
            return self.emit_frame(ports, i, mtu, dst_mac, repr, want, fill);
        }
        if repr.dont_frag {
            return Err(DropReason::Ipv4FragNeeded);
        }
        // Every fragment but the last carries a multiple of 8 bytes.
        let chunk = (mtu.saturating_sub(ipv4::HEADER_LEN)) & !7;
        if chunk == 0 {
            return Err(DropReason::Ipv4FragNeeded);
        }
        let mut scratch = core::mem::take(&mut self.scratch);
        scratch.clear();
        scratch.resize(repr.payload_len, 0);
        fill(&mut scratch, false);
        let mut result = Ok(());
        let mut off = 0;
        while off < scratch.len() {
            let len = chunk.min(scratch.len() - off);
            let last = off + len == scratch.len();
            let mut frag = repr;
            frag.payload_len = len;
            frag.frag_offset = repr.frag_offset.saturating_add(off as u16);
            frag.more_frags = repr.more_frags || !last;
            let piece = &scratch[off..off + len];
            let none = L4Offload::default();
            let copy = |b: &mut [u8], _| b.copy_from_slice(piece);
            if let Err(e) = self.emit_frame(ports, i, mtu, dst_mac, frag, none, copy) {
                result = Err(e);
                break;
            }
            self.stats.frag_tx += 1;
            off += len;
        }
        self.scratch = scratch;
        result
    }

    /// Put one IPv4 packet that fits the MTU into a transmit frame. `mtu` is interface
    /// `i`'s, as the caller just worked it out.
    #[allow(clippy::too_many_arguments)]
    fn emit_frame<D: Device>(
        &mut self,
        ports: &mut [Port<D>],
        i: usize,
        mtu: usize,
        dst_mac: EthernetAddress,
        repr: Ipv4Repr,
        want: L4Offload,
        fill: impl FnOnce(&mut [u8], bool),
    ) -> Result<(), DropReason> {
        let iface = &self.ifaces[i];
        let eth = iface.ethernet_to(dst_mac, EtherType::Ipv4);
        let l2 = eth.buffer_len();
        let port = &mut ports[i];
        let offload = port.caps.tx_checksum.ipv4;
        let l4_csum = want.proto.filter(|p| match p {
            L4Proto::Tcp => port.caps.tx_checksum.tcp,
            L4Proto::Udp => port.caps.tx_checksum.udp,
        });
        let ip_len = ipv4::HEADER_LEN + repr.payload_len;
        let tso_mss = if l4_csum == Some(L4Proto::Tcp) && ip_len > mtu {
            want.tso_mss
        } else {
            0
        };
        let frame = port
            .dev
            .alloc_tx(l2 + ip_len)
            .ok_or(DropReason::TxNoBuffer)?;
        // Into the batch first and filled there: a frame filled on the stack and then
        // pushed was copied twice more, its metadata field by field.
        port.tx.push(frame);
        let Some(frame) = port.tx.last_mut() else {
            return Err(DropReason::TxNoBuffer);
        };
        {
            let (head, rest) = frame.data_mut().split_at_mut(l2);
            eth.emit(&mut ethernet::Frame::new_unchecked(head));
            let (hdr, body) = rest.split_at_mut(ipv4::HEADER_LEN);
            fill(&mut body[..repr.payload_len], l4_csum.is_some());
            repr.emit(&mut ipv4::Packet::new_unchecked(hdr), !offload);
        }
        if offload || l4_csum.is_some() {
            frame.set_tx_offload(TxOffload {
                l2_len: l2 as u16,
                l3_len: ipv4::HEADER_LEN as u16,
                l4_len: want.l4_len,
                ipv4_csum: offload,
                l4_csum,
                tso_mss,
            });
        }
        self.stats.ipv4_tx += 1;
        self.stats.tx_bytes += frame.len() as u64;
        Ok(())
    }

    /// What [`TcpPathOut::send`] needs of the stack, borrowed whole (for callers that
    /// hold no connection).
    #[cfg(all(test, feature = "std"))]
    pub(crate) fn tcp_path_out(&mut self) -> TcpPathOut<'_> {
        TcpPathOut {
            path: self.tcp_path.as_ref(),
            ifaces: &self.ifaces,
            generation: self.routes.generation(),
            ip_ident: &mut self.ip_ident,
            stats: &mut self.stats,
        }
    }

    /// Build the [`PathTemplate`] for TCP from `src` to `dst` when the general path
    /// would send their segments as [`TcpPathOut::send`] does
    /// does: a unicast destination with a route, a known source, and a neighbour
    /// the cache remembers. Asked after the general path sent a segment (which leaves
    /// the route and neighbour answers remembered); changes nothing else.
    #[inline(never)]
    pub(crate) fn learn_tcp_path(&mut self, now: Instant, src: Ipv4Addr, dst: Ipv4Addr) {
        if dst.is_broadcast() || src.is_unspecified() {
            return;
        }
        let generation = self.routes.generation();
        let Ok(hop) = self.out_hop(dst) else {
            return;
        };
        let Some(iface) = self.ifaces.get(hop.iface) else {
            return;
        };
        if hop.subnet_broadcast {
            return;
        }
        let Some((dst_mac, until, neighbor_epoch)) =
            iface.neighbors.remembered_with_epoch(hop.next_hop, now)
        else {
            return;
        };
        let eth = iface.ethernet_to(dst_mac, EtherType::Ipv4);
        let l2 = eth.buffer_len();
        let ip = Ipv4Repr {
            src_addr: src,
            dst_addr: dst,
            protocol: IpProtocol::Tcp,
            payload_len: 0,
            ttl: self.config.default_ttl,
            tos: 0,
            ident: 0,
            dont_frag: true,
            more_frags: false,
            frag_offset: 0,
        };
        let mut header = [0; PATH_HEADER_MAX];
        let (head, rest) = header.split_at_mut(l2);
        eth.emit(&mut ethernet::Frame::new_unchecked(head));
        let hdr = &mut rest[..ipv4::HEADER_LEN];
        ip.emit(&mut ipv4::Packet::new_unchecked(&mut *hdr), false);
        // The total length is patched per segment: out of the sum, as the
        // identification and the checksum are.
        hdr[2..4].fill(0);
        let sum = checksum::sum(hdr);
        self.tcp_path = Some(PathTemplate {
            src,
            dst,
            generation,
            iface: hop.iface,
            neighbor_epoch,
            until,
            l2_len: l2,
            header,
            sum,
            tcp_pseudo: tcp::pseudo_sum_addrs(src, dst),
        });
    }

    /// The source address for a datagram to `dst` from a socket bound to `bound`: the
    /// bound address, or that of the interface the route leaves by.
    pub(crate) fn source_addr_for(&self, bound: Ipv4Addr, dst: Ipv4Addr) -> Option<Ipv4Addr> {
        if !bound.is_unspecified() {
            return Some(bound);
        }
        if dst.is_broadcast() {
            return self.ifaces.first()?.addrs.first().map(|c| c.address());
        }
        let r = self.routes.lookup(dst)?;
        self.ifaces.get(r.iface)?.source_for(r.next_hop(dst))
    }

    /// A header for a datagram this stack originates.
    pub(crate) fn local_repr(
        &mut self,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        protocol: IpProtocol,
        payload_len: usize,
    ) -> Ipv4Repr {
        Ipv4Repr {
            src_addr: src,
            dst_addr: dst,
            protocol,
            payload_len,
            ttl: self.config.default_ttl,
            tos: 0,
            ident: self.next_ident(),
            dont_frag: false,
            more_frags: false,
            frag_offset: 0,
        }
    }

    /// Tell the sender of `dgram` why it was not delivered, within the rules of RFC 1122
    /// §3.2.2 and RFC 1812 §4.3.2.7 and the rate limit.
    pub(crate) fn send_icmp_error<D: Device>(
        &mut self,
        now: Instant,
        ports: &mut [Port<D>],
        i: usize,
        dgram: Offending<'_>,
        kind: IcmpErrorKind,
    ) {
        let orig = dgram.repr;
        // Never about: broadcast/multicast destinations, non-first fragments,
        // sources that cannot be answered, and ICMP errors themselves.
        if dgram.to_broadcast
            || orig.dst_addr.is_multicast()
            || orig.frag_offset != 0
            || orig.src_addr.is_unspecified()
        {
            return;
        }
        if orig.protocol == IpProtocol::Icmp {
            let t = dgram.payload.first().copied().map(Message::from);
            if !matches!(t, Some(Message::EchoRequest) | Some(Message::EchoReply)) {
                return;
            }
        }
        if !self.icmp_limit.take(now) {
            return self.stats.drop(DropReason::IcmpRateLimited);
        }
        // The quote: the original header (options and all) and as much payload as fits.
        let mut quote = [0u8; ICMP_ERROR_MAX_QUOTE];
        let hlen = match dgram.header {
            Some(h) => {
                let n = h.len().min(quote.len());
                quote[..n].copy_from_slice(&h[..n]);
                n
            }
            None => {
                let mut whole = *orig;
                whole.frag_offset = 0;
                whole.more_frags = false;
                whole.emit(
                    &mut ipv4::Packet::new_unchecked(&mut quote[..ipv4::HEADER_LEN]),
                    true,
                );
                ipv4::HEADER_LEN
            }
        };
        let plen = dgram.payload.len().min(quote.len() - hlen);
        quote[hlen..hlen + plen].copy_from_slice(&dgram.payload[..plen]);
        let invoking = &quote[..hlen + plen];
        let msg = match kind {
            IcmpErrorKind::Unreachable(reason, mtu) => Icmpv4Repr::DstUnreachable {
                reason,
                next_hop_mtu: mtu,
                invoking,
            },
            IcmpErrorKind::TimeExceeded(reason) => Icmpv4Repr::TimeExceeded { reason, invoking },
        };
        // From the address the datagram was sent to when it is ours, else from the
        // interface it arrived on.
        let src = if self.is_local_addr(orig.dst_addr) {
            orig.dst_addr
        } else {
            self.ifaces[i]
                .source_for(orig.src_addr)
                .unwrap_or(Ipv4Addr::UNSPECIFIED)
        };
        let repr = self.local_repr(src, orig.src_addr, IpProtocol::Icmp, msg.buffer_len());
        match self.output_ipv4(now, ports, repr, |b| {
            msg.emit(&mut icmpv4::Packet::new_unchecked(b))
        }) {
            Ok(()) => self.stats.icmp_tx += 1,
            Err(reason) => self.stats.drop(reason),
        }
    }

    fn input_icmp<D: Device>(&mut self, now: Instant, ports: &mut [Port<D>], dgram: Offending<'_>) {
        self.stats.icmp_rx += 1;
        let Ok(packet) = icmpv4::Packet::new_checked(dgram.payload) else {
            return self.stats.drop(DropReason::IcmpTruncated);
        };
        let repr = match Icmpv4Repr::parse(&packet, true) {
            Ok(r) => r,
            Err(Error::BadChecksum) => return self.stats.drop(DropReason::IcmpBadChecksum),
            Err(Error::Unsupported) => return self.stats.drop(DropReason::IcmpUnsupported),
            Err(_) => return self.stats.drop(DropReason::IcmpTruncated),
        };
        let ip = dgram.repr;
        match repr {
            Icmpv4Repr::EchoRequest {
                ident,
                seq_no,
                data,
            } => {
                // Linux ignores echo to broadcast by default (smurf amplification).
                if dgram.to_broadcast {
                    return self.stats.drop(DropReason::IcmpBroadcastEcho);
                }
                let reply = Icmpv4Repr::EchoReply {
                    ident,
                    seq_no,
                    data,
                };
                let out = self.local_repr(
                    ip.dst_addr,
                    ip.src_addr,
                    IpProtocol::Icmp,
                    reply.buffer_len(),
                );
                match self.output_ipv4(now, ports, out, |b| {
                    reply.emit(&mut icmpv4::Packet::new_unchecked(b))
                }) {
                    Ok(()) => {
                        self.stats.icmp_tx += 1;
                        self.stats.icmp_echo_replies_tx += 1;
                    }
                    Err(reason) => self.stats.drop(reason),
                }
            }
            Icmpv4Repr::EchoReply {
                ident,
                seq_no,
                data,
            } => {
                if !self.icmp.deliver(ident, ip.src_addr, seq_no, data) {
                    self.stats.drop(DropReason::IcmpNoSocket);
                }
            }
            Icmpv4Repr::DstUnreachable {
                reason, invoking, ..
            } => {
                self.stats.icmp_errors_rx += 1;
                if reason == DstUnreachable::PortUnreachable {
                    self.udp_port_unreachable(invoking);
                }
            }
            Icmpv4Repr::TimeExceeded { .. } => self.stats.icmp_errors_rx += 1,
        }
    }

    /// An ICMP port unreachable quoting one of our UDP datagrams. The quote is
    /// usually cut short of the length its header claims, so the fixed header fields
    /// are read directly, after checking they are there.
    fn udp_port_unreachable(&mut self, invoking: &[u8]) {
        let Some(h) = invoking.get(..ipv4::HEADER_LEN) else {
            return;
        };
        let p = ipv4::Packet::new_unchecked(h);
        if p.version() != 4 || p.protocol() != IpProtocol::Udp {
            return;
        }
        let hl = p.header_len();
        let Some(ports) = invoking.get(hl..hl + 4) else {
            return;
        };
        let sport = u16::from_be_bytes([ports[0], ports[1]]);
        let dport = u16::from_be_bytes([ports[2], ports[3]]);
        self.udp.port_unreachable(
            SocketAddrV4::new(p.src_addr(), sport),
            SocketAddrV4::new(p.dst_addr(), dport),
        );
    }

    fn input_udp<D: Device>(
        &mut self,
        now: Instant,
        ports: &mut [Port<D>],
        i: usize,
        dgram: Offending<'_>,
        meta: RxMeta,
    ) {
        let ip = dgram.repr;
        let packet = match udp::Packet::new_checked(dgram.payload) {
            Ok(p) => p,
            Err(Error::BadLength) => return self.stats.drop(DropReason::UdpBadLength),
            Err(_) => return self.stats.drop(DropReason::UdpTruncated),
        };
        let verify = !(meta.l4_csum_ok || meta.l4_csum_partial);
        let repr = match UdpRepr::parse(&packet, ip.src_addr, ip.dst_addr, verify) {
            Ok(r) => r,
            Err(Error::BadChecksum) => return self.stats.drop(DropReason::UdpBadChecksum),
            Err(Error::BadLength) => return self.stats.drop(DropReason::UdpBadLength),
            Err(Error::Malformed) => return self.stats.drop(DropReason::UdpMalformed),
            Err(_) => return self.stats.drop(DropReason::UdpTruncated),
        };
        self.stats.udp_rx += 1;
        let from = SocketAddrV4::new(ip.src_addr, repr.src_port);
        match self
            .udp
            .deliver(ip.dst_addr, repr.dst_port, from, packet.payload())
        {
            Ok(()) => {}
            Err(DeliverError::QueueFull) => self.stats.drop(DropReason::UdpRxQueueFull),
            Err(DeliverError::NoSocket) => {
                self.stats.drop(DropReason::UdpNoSocket);
                let kind = IcmpErrorKind::Unreachable(DstUnreachable::PortUnreachable, 0);
                self.send_icmp_error(now, ports, i, dgram, kind);
            }
        }
    }

    /// Send what UDP sockets queued since the last poll.
    pub(crate) fn flush_udp<D: Device>(&mut self, now: Instant, ports: &mut [Port<D>]) {
        while let Some(key) = self.udp.dirty.pop_front() {
            let Some(sock) = self.udp.sockets.get_mut(key) else {
                continue;
            };
            sock.dirty = false;
            let local = sock.local;
            let mut queue = core::mem::replace(&mut sock.tx, crate::socket::DatagramQueue::empty());
            while let Some((dst, data)) = queue.peek() {
                let repr = UdpRepr {
                    src_port: local.port(),
                    dst_port: dst.port(),
                };
                let len = udp::HEADER_LEN + data.len();
                // The checksum covers the source address, so settle it before output.
                let src = match self.source_addr_for(*local.ip(), *dst.ip()) {
                    Some(a) => a,
                    None => {
                        self.stats.drop(DropReason::Ipv4NoRoute);
                        queue.pop_front();
                        continue;
                    }
                };
                let ip = self.local_repr(src, *dst.ip(), IpProtocol::Udp, len);
                let want = L4Offload {
                    proto: Some(L4Proto::Udp),
                    l4_len: udp::HEADER_LEN as u16,
                    tso_mss: 0,
                };
                let res = self.output_ipv4_offload(now, ports, ip, want, |b, offloaded| {
                    b[udp::HEADER_LEN..].copy_from_slice(data);
                    let csum = if offloaded {
                        UdpChecksum::Offload
                    } else {
                        UdpChecksum::Compute
                    };
                    repr.emit(
                        &mut udp::Packet::new_unchecked(b),
                        src,
                        *dst.ip(),
                        data.len(),
                        csum,
                    );
                });
                match res {
                    Ok(()) => self.stats.udp_tx += 1,
                    Err(reason) => self.stats.drop(reason),
                }
                queue.pop_front();
            }
            if let Some(sock) = self.udp.sockets.get_mut(key) {
                sock.tx = queue;
            }
        }
    }

    /// Send the echo requests ICMP sockets queued.
    pub(crate) fn flush_icmp<D: Device>(&mut self, now: Instant, ports: &mut [Port<D>]) {
        while let Some(key) = self.icmp.dirty.pop_front() {
            let Some(sock) = self.icmp.sockets.get_mut(key) else {
                continue;
            };
            sock.dirty = false;
            let ident = sock.ident;
            let mut queue = core::mem::replace(&mut sock.tx, crate::socket::DatagramQueue::empty());
            while let Some(((dst, seq_no), data)) = queue.peek() {
                let msg = Icmpv4Repr::EchoRequest {
                    ident,
                    seq_no,
                    data,
                };
                let ip = self.local_repr(
                    Ipv4Addr::UNSPECIFIED,
                    dst,
                    IpProtocol::Icmp,
                    msg.buffer_len(),
                );
                match self.output_ipv4(now, ports, ip, |b| {
                    msg.emit(&mut icmpv4::Packet::new_unchecked(b))
                }) {
                    Ok(()) => self.stats.icmp_tx += 1,
                    Err(reason) => self.stats.drop(reason),
                }
                queue.pop_front();
            }
            if let Some(sock) = self.icmp.sockets.get_mut(key) {
                sock.tx = queue;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iface::InterfaceConfig;
    use crate::rand::Rand;
    use crate::wire::Ipv4Cidr;
    use crate::StackConfig;
    use alloc::vec::Vec;

    /// The TCP path template against the general IPv4 output (over the in-memory link,
    /// which needs `std`).
    #[cfg(feature = "std")]
    mod template {
        use super::*;
        use crate::device::Capabilities;
        use crate::iface::neighbor::NeighborConfig;
        use crate::link::{self, LinkConfig, LinkEnd};
        use crate::wire::seq::SeqNumber;
        use crate::wire::tcp::{self, Flags, HeaderImage, TcpChecksum, TcpRepr, TcpTimestamp};

        const SRC: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
        const DST: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
        const MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 1]);
        const PEER_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 2]);

        fn stack(vlan: Option<u16>) -> (Stack, Vec<Port<LinkEnd>>, LinkEnd) {
            let mut stack = Stack::new(StackConfig::default(), Rand::from_u64(7));
            let mut iface = InterfaceConfig::new(MAC, Ipv4Cidr::new(SRC, 24).expect("cidr"));
            iface.vlan = vlan;
            stack.add_interface(iface).expect("interface");
            let now = Instant::from_millis(1);
            stack.ifaces[0]
                .neighbors
                .update(DST, PEER_MAC, now, true, |_| {});
            let config = LinkConfig {
                mtu: 9000,
                ..LinkConfig::default()
            };
            let (a, b) = link::pair(config);
            (stack, alloc::vec![Port::new(a)], b)
        }

        /// What flush_tcp sends for `repr` with `payload`, through the template or the general
        /// path: the result, the frame's bytes and offload request, the identification after,
        /// and what the transmit counters grew by.
        type Sent = (
            Result<(), DropReason>,
            Option<(Vec<u8>, TxOffload)>,
            u16,
            u64,
            u64,
        );

        fn send(
            stack: &mut Stack,
            ports: &mut [Port<LinkEnd>],
            repr: &TcpRepr<'_>,
            payload: &[u8],
            tso_mss: u16,
            templated: bool,
        ) -> Option<Sent> {
            let now = Instant::from_millis(2);
            send_at(now, stack, ports, repr, payload, tso_mss, templated)
        }

        /// [`send`] at `now`.
        fn send_at(
            now: Instant,
            stack: &mut Stack,
            ports: &mut [Port<LinkEnd>],
            repr: &TcpRepr<'_>,
            payload: &[u8],
            tso_mss: u16,
            templated: bool,
        ) -> Option<Sent> {
            let image = HeaderImage::from_repr(repr);
            let layout = image.layout_header();
            let hlen = layout.header_len();
            let want = L4Offload {
                proto: Some(L4Proto::Tcp),
                l4_len: hlen as u16,
                tso_mss,
            };
            let fill = |b: &mut [u8], csum: TcpChecksum| {
                b[hlen..].copy_from_slice(payload);
                let packet = &mut tcp::Packet::new_unchecked(b);
                image.emit_header_as(layout, packet, payload.len(), SRC, DST, csum);
            };
            let ip_len = hlen + payload.len();
            let before = (stack.stats.ipv4_tx, stack.stats.tx_bytes);
            let res = if templated {
                stack
                    .tcp_path_out()
                    .send(now, ports, SRC, DST, ip_len, want, fill)?
            } else {
                let mut ip = stack.local_repr(SRC, DST, IpProtocol::Tcp, ip_len);
                ip.dont_frag = true;
                let fill = |b: &mut [u8], offloaded: bool| {
                    let csum = if offloaded {
                        TcpChecksum::Offload
                    } else {
                        TcpChecksum::Compute
                    };
                    fill(b, csum);
                };
                let res = stack.output_ipv4_offload(now, ports, ip, want, fill);
                stack.learn_tcp_path(now, SRC, DST);
                res
            };
            let frame = ports[0]
                .tx
                .pop()
                .map(|f| (f.data().to_vec(), f.tx_offload()));
            let s = &stack.stats;
            let counted = (s.ipv4_tx - before.0, s.tx_bytes - before.1);
            Some((res, frame, stack.ip_ident, counted.0, counted.1))
        }

        /// The template writes the very frames the general output path writes (bytes,
        /// offload request, identification, counters), with and without a VLAN tag, for
        /// every offload, header and size (TSO bursts and packets the MTU refuses
        /// included: those it leaves to the general path).
        #[test]
        fn templated_tcp_output_is_the_general_path() {
            let payload: Vec<u8> = (0..12_000u32).map(|i| (i * 7 + 3) as u8).collect();
            let ts = Some(TcpTimestamp {
                tsval: 0x0102_0304,
                tsecr: 0xfffe_fdfc,
            });
            let sack = [
                Some((SeqNumber(100), SeqNumber(200))),
                Some((SeqNumber(300), SeqNumber(0xffff_ff00))),
                None,
                None,
            ];
            let mut templated = 0;
            for vlan in [None, Some(42)] {
                for caps in 0..8u8 {
                    let (mut stack, mut ports, _peer) = stack(vlan);
                    let mut c = Capabilities {
                        mtu: 1500,
                        tso_max: if caps & 4 != 0 { 9000 } else { 0 },
                        ..ports[0].caps
                    };
                    c.tx_checksum.ipv4 = caps & 1 != 0;
                    c.tx_checksum.tcp = caps & 2 != 0;
                    ports[0].set_caps(c);
                    for flags in [
                        Flags::ACK,
                        Flags::ACK | Flags::PSH,
                        Flags::ACK | Flags::FIN,
                        Flags::SYN,
                        Flags::SYN | Flags::ACK,
                        Flags::RST,
                    ] {
                        for opts in 0..4 {
                            for (len, tso_mss) in [(0, 0), (1, 0), (64, 0), (1448, 0), (7000, 1448)]
                            {
                                let mut repr = TcpRepr::bare(
                                    40000,
                                    80,
                                    flags,
                                    SeqNumber(0x8000_0000),
                                    flags.contains(Flags::ACK).then_some(SeqNumber(0x1234)),
                                );
                                repr.window_len = 0xfff0;
                                if opts & 1 != 0 {
                                    repr.timestamp = ts;
                                }
                                if opts & 2 != 0 {
                                    repr.sack_ranges = sack;
                                }
                                if flags.contains(Flags::SYN) {
                                    repr.max_seg_size = Some(1460);
                                    repr.window_scale = Some(7);
                                    repr.sack_permitted = true;
                                }
                                let data = &payload[..len];
                                stack.ip_ident = 0xfffe;
                                let general =
                                    send(&mut stack, &mut ports, &repr, data, tso_mss, false);
                                stack.ip_ident = 0xfffe;
                                match send(&mut stack, &mut ports, &repr, data, tso_mss, true) {
                                    Some(fast) => {
                                        templated += 1;
                                        assert_eq!(
                                            Some(fast),
                                            general,
                                            "vlan {vlan:?} caps {caps} {flags:?} opts {opts} len {len}"
                                        );
                                    }
                                    None => {
                                        // Left to the general path: only what it could not
                                        // send as one frame, with nothing changed.
                                        assert_eq!(stack.ip_ident, 0xfffe);
                                        assert!(ports[0].tx.is_empty());
                                        let (r, ..) = general.expect("general path");
                                        assert!(
                                            r.is_err() || len == 7000,
                                            "vlan {vlan:?} caps {caps} len {len}"
                                        );
                                    }
                                }
                            }
                        }
                    }
                }
            }
            assert!(templated > 1000, "{templated}");
        }

        /// The template is left alone when the route table or the neighbour changed, or
        /// the neighbour's answer expired.
        #[test]
        fn template_follows_route_and_neighbour_changes() {
            let (mut stack, mut ports, _peer) = stack(None);
            let repr = TcpRepr::bare(1, 2, Flags::ACK, SeqNumber(1), Some(SeqNumber(2)));
            let (sent, ..) = send(&mut stack, &mut ports, &repr, b"x", 0, false).expect("general");
            assert_eq!(sent, Ok(()));
            assert!(send(&mut stack, &mut ports, &repr, b"x", 0, true).is_some());
            let now = Instant::from_millis(3);
            let other = EthernetAddress([2, 0, 0, 0, 0, 9]);
            stack.ifaces[0]
                .neighbors
                .update(DST, other, now, true, |_| {});
            assert!(send(&mut stack, &mut ports, &repr, b"x", 0, true).is_none());
            let (_, frame, ..) =
                send(&mut stack, &mut ports, &repr, b"x", 0, false).expect("general");
            assert_eq!(frame.expect("frame").0[..6], other.0);
            assert!(send(&mut stack, &mut ports, &repr, b"x", 0, true).is_some());
            // Reachable until 60 s after the update: then the general path probes.
            let expired = now + NeighborConfig::default().reachable_time;
            let (r, p) = (&repr, &mut ports);
            assert!(send_at(expired, &mut stack, p, r, b"x", 0, true).is_none());
            let arp_before = stack.stats.ipv4_tx;
            let (sent, ..) = send_at(expired, &mut stack, p, r, b"x", 0, false).expect("general");
            assert_eq!(sent, Ok(()));
            assert_eq!(stack.stats.ipv4_tx, arp_before + 1);
            // The ARP probe went out first; the frame compared was the segment.
            assert_eq!(p[0].tx.len(), 1);
            p[0].tx.clear();
            // Stale now, and nothing remembered from the answer that asked for the probe:
            // the next segment takes the general path, then the template again (a stale
            // answer holds until it changes).
            assert!(send_at(expired, &mut stack, p, r, b"x", 0, true).is_none());
            let (sent, ..) = send_at(expired, &mut stack, p, r, b"x", 0, false).expect("general");
            assert_eq!(sent, Ok(()));
            assert!(send_at(expired, &mut stack, p, r, b"x", 0, true).is_some());
            stack
                .set_default_gateway(Ipv4Addr::new(10, 0, 0, 254))
                .expect("gateway");
            assert!(send(&mut stack, &mut ports, &repr, b"x", 0, true).is_none());
        }
    }

    /// The unicast TCP input fast path against the general input path.
    mod fast_input {
        use super::*;

        const MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 1]);
        const PEER: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 2]);

        /// A stack with 10.0.0.1/24 on interface 0 and 10.0.1.1/24 on interface 1 (so that
        /// the other-interface address checks are exercised too).
        /// Interface 0 has 10.0.0.1/24 and `extra`: 10.0.5.1/24 (a second prefix), or
        /// 10.0.0.255/23, the broadcast address of the first.
        fn stack(extra: Option<[u8; 4]>) -> Stack {
            let mut s = Stack::new(StackConfig::default(), Rand::from_u64(7));
            let a = Ipv4Cidr::new(Ipv4Addr::new(10, 0, 0, 1), 24).expect("cidr");
            let b = Ipv4Cidr::new(Ipv4Addr::new(10, 0, 1, 1), 24).expect("cidr");
            let mut config = InterfaceConfig::new(MAC, a);
            if let Some([a, b, c, d]) = extra {
                let len = if d == 255 { 23 } else { 24 };
                let cidr = Ipv4Cidr::new(Ipv4Addr::new(a, b, c, d), len).expect("cidr");
                config.addrs.push(cidr);
            }
            s.add_interface(config).expect("iface");
            let other = EthernetAddress([0x02, 0, 0, 0, 0, 9]);
            s.add_interface(InterfaceConfig::new(other, b))
                .expect("iface");
            s
        }

        /// A TCP segment from 10.0.0.2 to 10.0.0.1 in an Ethernet frame, with a valid
        /// IPv4 header checksum.
        fn frame() -> Vec<u8> {
            let mut f = Vec::new();
            f.extend_from_slice(&MAC.0);
            f.extend_from_slice(&PEER.0);
            f.extend_from_slice(&[0x08, 0x00]);
            let payload = [0x5au8; 28]; // a 20-byte TCP header and 8 bytes of data
            let total = (20 + payload.len()) as u16;
            let mut ip = [
                0x45, 0, 0, 0, 0x12, 0x34, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 2, 10, 0, 0, 1,
            ];
            ip[2..4].copy_from_slice(&total.to_be_bytes());
            fix_checksum(&mut ip);
            f.extend_from_slice(&ip);
            f.extend_from_slice(&payload);
            f
        }

        fn fix_checksum(ip: &mut [u8]) {
            ip[10] = 0;
            ip[11] = 0;
            let sum = !checksum::sum(&ip[..20]);
            ip[10..12].copy_from_slice(&sum.to_be_bytes());
        }

        /// What the general path does with a single frame: `Some` with what it hands
        /// `input_tcp` when it goes straight there.
        fn general<'a>(
            s: &Stack,
            data: &'a [u8],
            meta: RxMeta,
        ) -> Option<(Ipv4Addr, Ipv4Addr, &'a [u8])> {
            let frame = ethernet::Frame::new_checked(data).ok()?;
            let iface = &s.ifaces[0];
            let dst_mac = frame.dst_addr();
            if frame.src_addr() == iface.mac || (dst_mac != iface.mac && !dst_mac.is_multicast()) {
                return None;
            }
            if frame.vlan().map(|t| t.vid) != iface.vlan || frame.ethertype() != EtherType::Ipv4 {
                return None;
            }
            let payload = &data[frame.header_len()..];
            let packet = ipv4::Packet::new_checked(payload).ok()?;
            let repr = Ipv4Repr::parse(&packet, !meta.ipv4_csum_ok).ok()?;
            let (src, dst) = (repr.src_addr, repr.dst_addr);
            let here = s.match_addrs(0, src, dst);
            let to_broadcast = dst.is_broadcast() || here.dst_subnet_broadcast;
            if martian_source(src, here) || (!to_broadcast && !here.dst_local) {
                return None; // dropped, or forwarded
            }
            if repr.more_frags || repr.frag_offset != 0 {
                return None; // to reassembly
            }
            if repr.protocol != IpProtocol::Tcp || to_broadcast {
                return None; // to `deliver`
            }
            let header_len = packet.header_len();
            Some((
                src,
                dst,
                &payload[header_len..usize::from(packet.total_len())],
            ))
        }

        /// Frames the fast path declines though the general path takes them to TCP:
        /// a group destination MAC, a VLAN tag, IPv4 options, a destination address of
        /// another interface, any on an interface one of whose addresses is a broadcast.
        fn declined_on_purpose(s: &Stack, data: &[u8]) -> bool {
            data[0] & 1 != 0
                || data[12..14] == [0x81, 0x00]
                || data[14] != 0x45
                || !s.ifaces[0].has_addr(Ipv4Addr::new(data[30], data[31], data[32], data[33]))
                || s.ifaces[0].addr_is_broadcast
        }

        /// Every one-byte change and every truncation of a unicast TCP frame, and a set
        /// of address changes, with and without the device's checksum verdict: whatever
        /// the fast path takes, the general path takes to `input_tcp` with the same
        /// arguments, and the fast path declines only what it leaves on purpose.
        #[test]
        fn unicast_tcp_takes_exactly_what_the_general_path_does() {
            check_against_general_path(&mut stack(None));
            check_against_general_path(&mut stack(Some([10, 0, 5, 1])));
            let mut odd = stack(Some([10, 0, 0, 255]));
            assert!(odd.ifaces[0].addr_is_broadcast);
            check_against_general_path(&mut odd);
        }

        fn check_against_general_path(s: &mut Stack) {
            let base = frame();
            let mut cases: Vec<Vec<u8>> = Vec::new();
            cases.push(base.clone());
            for pos in 0..base.len() {
                for v in [0u8, 1, 0x06, 0x08, 0x11, 0x20, 0x40, 0x45, 0x46, 0x81, 0xff] {
                    let mut f = base.clone();
                    f[pos] = v;
                    cases.push(f.clone());
                    if (14..34).contains(&pos) {
                        fix_checksum(&mut f[14..34]);
                        cases.push(f);
                    }
                }
                let mut f = base.clone();
                f[pos] ^= 0x80;
                cases.push(f);
                cases.push(base[..pos].to_vec());
            }
            let addrs = [
                [10, 0, 0, 1],
                [10, 0, 0, 2],
                [10, 0, 0, 255],
                [10, 0, 1, 1],
                [10, 0, 1, 255],
                [10, 0, 2, 1],
                [10, 0, 5, 1],
                [127, 0, 0, 1],
                [224, 0, 0, 1],
                [255, 255, 255, 255],
                [0, 0, 0, 0],
            ];
            for src in addrs {
                for dst in addrs {
                    let mut f = base.clone();
                    f[26..30].copy_from_slice(&src);
                    f[30..34].copy_from_slice(&dst);
                    fix_checksum(&mut f[14..34]);
                    cases.push(f);
                }
            }
            s.ifaces[0].rx_memo = None;
            let _ = s.unicast_tcp(0, &base, RxMeta::default());
            let primed = s.ifaces[0].rx_memo;
            assert_eq!(primed.is_some(), !s.ifaces[0].addr_is_broadcast);
            let mut taken = 0;
            for f in &cases {
                for ipv4_csum_ok in [false, true] {
                    let meta = RxMeta {
                        ipv4_csum_ok,
                        ..RxMeta::default()
                    };
                    let slow = general(s, f, meta);
                    // With nothing remembered, and with what the usual frame left.
                    for memo in [None, primed] {
                        s.ifaces[0].rx_memo = memo;
                        let fast = s.unicast_tcp(0, f, meta);
                        match fast {
                            Some(_) => {
                                assert_eq!(fast, slow, "frame {f:02x?}");
                                taken += 1;
                            }
                            None => assert!(
                                slow.is_none() || declined_on_purpose(s, f),
                                "declined {f:02x?}"
                            ),
                        }
                    }
                }
            }
            if s.ifaces[0].addr_is_broadcast {
                assert_eq!(taken, 0);
            } else {
                assert!(s.unicast_tcp(0, &base, RxMeta::default()).is_some());
                assert!(taken > 200, "only {taken} frames taken");
            }
        }
    }
}
