//! One network interface and the IP layer around it: addresses, the neighbour (ARP)
//! cache, routes, IPv4 input and output, fragmentation and reassembly, ICMP.
//!
//! The [`Stack`](crate::Stack) owns its interfaces; each is driven through a [`Port`]
//! that pairs a backend [`Device`] with the reusable burst vectors of that interface.

pub mod arp;
pub mod fragment;
pub mod icmp;
pub mod ipv4;
pub mod neighbor;
pub mod route;

use alloc::vec::Vec;

use crate::device::{Capabilities, Device};
use crate::wire::ethernet::{EtherType, EthernetRepr, VlanTag};
use crate::wire::ipv4::Ipv4Repr;
use crate::wire::{EthernetAddress, Ipv4Addr, Ipv4Cidr};
use neighbor::{NeighborCache, NeighborConfig};

/// Most addresses on one interface.
pub const MAX_ADDRS: usize = 8;

/// How an interface is set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceConfig {
    /// The interface's MAC address (unicast).
    pub mac: EthernetAddress,
    /// Its IPv4 addresses with their prefixes; the first is the primary (source of
    /// locally generated packets when nothing better matches).
    pub addrs: Vec<Ipv4Cidr>,
    /// Send and receive 802.1Q-tagged frames with this VLAN id (untagged if `None`).
    pub vlan: Option<u16>,
    /// Use an MTU below the device's (`None`: the device's).
    pub mtu: Option<usize>,
    /// Answer ARP requests for our addresses and announce them (gratuitous ARP) at
    /// start. Shards of one host share its addresses and all see every ARP frame (to
    /// learn their neighbours), so only one of them speaks for the host.
    pub answer_arp: bool,
}

impl InterfaceConfig {
    /// An interface with one address.
    pub fn new(mac: EthernetAddress, addr: Ipv4Cidr) -> Self {
        InterfaceConfig {
            mac,
            addrs: alloc::vec![addr],
            vlan: None,
            mtu: None,
            answer_arp: true,
        }
    }
}

/// A packet that waits for its next hop's MAC: the header and the IP payload.
#[derive(Debug)]
pub struct PendingPacket {
    pub(crate) repr: Ipv4Repr,
    pub(crate) payload: Vec<u8>,
}

/// What [`Interface::match_addrs`] found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct AddrMatch {
    /// The source is one of the addresses.
    pub(crate) src_local: bool,
    /// The destination is one of the addresses.
    pub(crate) dst_local: bool,
    /// The destination is the broadcast address of one of the prefixes.
    pub(crate) dst_subnet_broadcast: bool,
}

/// One interface's state, owned by the stack.
#[derive(Debug)]
pub struct Interface {
    pub(crate) mac: EthernetAddress,
    pub(crate) addrs: Vec<Ipv4Cidr>,
    pub(crate) vlan: Option<u16>,
    pub(crate) mtu: Option<usize>,
    pub(crate) neighbors: NeighborCache<PendingPacket>,
    pub(crate) announced: bool,
    pub(crate) answer_arp: bool,
    /// One of the addresses is also the broadcast address of one of the prefixes (a
    /// configuration no real network has). When not, a destination that is one of
    /// the addresses is no subnet broadcast, and [`match_local`](Self::match_local)
    /// answers for it without working out a broadcast address per prefix. The
    /// addresses are fixed when the interface is made.
    pub(crate) addr_is_broadcast: bool,
    /// The MACs and addresses of the last frame the unicast TCP input fast path took
    /// on this interface: the checks of them (see `Stack::local_unicast`) depend on
    /// nothing else that can change but the interfaces there are, and adding one
    /// forgets every interface's memo.
    pub(crate) rx_memo: Option<RxMemo>,
}

/// A received frame's Ethernet destination and source, and its IPv4 source and
/// destination, as they are on the wire: compared whole in two or three words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RxMemo {
    macs: [u8; 12],
    addrs: [u8; 8],
}

impl RxMemo {
    /// The MACs and addresses of a frame with these Ethernet and IPv4 headers.
    #[inline(always)]
    pub(crate) fn of(eth: &[u8; 14], ip: &[u8; 20]) -> RxMemo {
        let mut macs = [0; 12];
        macs.copy_from_slice(&eth[..12]);
        let mut addrs = [0; 8];
        addrs.copy_from_slice(&ip[12..20]);
        RxMemo { macs, addrs }
    }
}

impl Interface {
    pub(crate) fn new(config: InterfaceConfig, neighbor: NeighborConfig, seed: u64) -> Self {
        let addr_is_broadcast = config.addrs.iter().any(|a| {
            config
                .addrs
                .iter()
                .any(|c| c.broadcast() == Some(a.address()))
        });
        Interface {
            addr_is_broadcast,
            rx_memo: None,
            mac: config.mac,
            addrs: config.addrs,
            vlan: config.vlan,
            mtu: config.mtu,
            neighbors: NeighborCache::new(neighbor, seed),
            // A stack that does not speak for the addresses has nothing to announce.
            announced: !config.answer_arp,
            answer_arp: config.answer_arp,
        }
    }

    /// The MAC address.
    pub fn mac(&self) -> EthernetAddress {
        self.mac
    }

    /// The IPv4 addresses.
    pub fn addrs(&self) -> &[Ipv4Cidr] {
        &self.addrs
    }

    /// The VLAN id frames carry, if tagged.
    pub fn vlan(&self) -> Option<u16> {
        self.vlan
    }

    /// `ip` is one of this interface's addresses.
    pub fn has_addr(&self, ip: Ipv4Addr) -> bool {
        self.addrs.iter().any(|c| c.address() == ip)
    }

    /// `ip` is the broadcast address of one of this interface's prefixes.
    #[inline]
    pub fn is_subnet_broadcast(&self, ip: Ipv4Addr) -> bool {
        self.addrs.iter().any(|c| c.broadcast() == Some(ip))
    }

    /// How a received datagram's `src` and `dst` relate to this interface's addresses,
    /// found in one pass (input asks all three of every datagram).
    pub(crate) fn match_addrs(&self, src: Ipv4Addr, dst: Ipv4Addr) -> AddrMatch {
        let mut m = AddrMatch::default();
        for c in &self.addrs {
            m.src_local |= c.address() == src;
            m.dst_local |= c.address() == dst;
            m.dst_subnet_broadcast |= c.broadcast() == Some(dst);
        }
        m
    }

    /// Whether `src` and `dst` are among the addresses, with what
    /// [`match_addrs`](Self::match_addrs) would say of a subnet broadcast when `dst`
    /// is one of them: `None` when it would have to be worked out (see
    /// `addr_is_broadcast`), and always when `dst` is not ours. The receive path's
    /// question for a unicast segment.
    #[inline]
    pub(crate) fn match_local(&self, src: Ipv4Addr, dst: Ipv4Addr) -> Option<AddrMatch> {
        if self.addr_is_broadcast {
            return None;
        }
        let mut m = AddrMatch::default();
        if let [only] = self.addrs[..] {
            // The usual host: one address, and no loop to set up.
            m.src_local = only.address() == src;
            m.dst_local = only.address() == dst;
        } else {
            for c in &self.addrs {
                m.src_local |= c.address() == src;
                m.dst_local |= c.address() == dst;
            }
        }
        m.dst_local.then_some(m)
    }

    /// The address to send from toward on-link `dst`: one on the same prefix, or the
    /// primary.
    pub fn source_for(&self, dst: Ipv4Addr) -> Option<Ipv4Addr> {
        self.addrs
            .iter()
            .find(|c| c.contains(dst))
            .or(self.addrs.first())
            .map(|c| c.address())
    }

    /// The MTU in use given the device's capabilities.
    #[inline]
    pub fn mtu(&self, caps: &Capabilities) -> usize {
        self.mtu.map_or(caps.mtu, |m| m.min(caps.mtu))
    }

    /// The neighbour cache entry for `ip`.
    pub fn neighbor(&self, ip: Ipv4Addr) -> Option<EthernetAddress> {
        self.neighbors.lookup(ip)
    }

    /// The link header of a frame this interface sends to `dst` carrying `ethertype`:
    /// its own MAC as the source, and its VLAN tag if it has one.
    pub(crate) fn ethernet_to(&self, dst: EthernetAddress, ethertype: EtherType) -> EthernetRepr {
        EthernetRepr {
            src_addr: self.mac,
            dst_addr: dst,
            ethertype,
            vlan: self.vlan_tag(),
        }
    }

    pub(crate) fn vlan_tag(&self) -> Option<VlanTag> {
        self.vlan.map(|vid| VlanTag {
            pcp: 0,
            dei: false,
            vid,
        })
    }
}

/// What the stack's TCP output needs to know of a port's device, worked out from its
/// [`Capabilities`] when the port is made (they are fixed from then on), so that a
/// poll copies it rather than derives it again.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct PortLimits {
    /// The device's MTU.
    pub(crate) mtu: usize,
    /// The largest IP packet the stack hands the device to segment (0: no TSO, which
    /// needs TCP transmit checksum offload and a limit above the MTU).
    pub(crate) tso_max: usize,
}

impl PortLimits {
    fn of(caps: &Capabilities) -> PortLimits {
        let tso = caps.tx_checksum.tcp && caps.tso_max > caps.mtu;
        PortLimits {
            mtu: caps.mtu,
            tso_max: if tso { caps.tso_max } else { 0 },
        }
    }
}

/// A device as the stack drives it: the backend, its capabilities read once, and the
/// receive and transmit burst vectors, reused every poll so a burst allocates nothing.
#[derive(Debug)]
pub struct Port<D: Device> {
    pub(crate) dev: D,
    pub(crate) caps: Capabilities,
    /// What output needs of `caps` (see [`PortLimits`]).
    pub(crate) limits: PortLimits,
    /// Frames one receive burst asks for: `caps.max_burst`, at least one.
    pub(crate) burst: usize,
    pub(crate) queue: u16,
    pub(crate) rx: Vec<D::Frame>,
    /// The frames of the burst being received that the stack is done with, given back
    /// to the device together ([`Device::recycle`]); empty between polls.
    pub(crate) done: Vec<D::Frame>,
    pub(crate) tx: Vec<D::Frame>,
}

impl<D: Device> Port<D> {
    /// Drive queue 0 of `dev`.
    pub fn new(dev: D) -> Self {
        Self::with_queue(dev, 0)
    }

    /// Drive queue `queue` of `dev` (one per shard with multi-queue devices).
    pub fn with_queue(dev: D, queue: u16) -> Self {
        let caps = dev.capabilities();
        let burst = caps.max_burst.max(1);
        Port {
            dev,
            limits: PortLimits::of(&caps),
            burst,
            caps,
            queue,
            rx: Vec::with_capacity(burst),
            done: Vec::with_capacity(burst),
            tx: Vec::with_capacity(burst * 2),
        }
    }

    /// Replace the capabilities (tests that try other offloads on the same device),
    /// and what is derived from them.
    #[cfg(all(test, feature = "std"))]
    pub(crate) fn set_caps(&mut self, caps: Capabilities) {
        self.caps = caps;
        self.limits = PortLimits::of(&caps);
        self.burst = caps.max_burst.max(1);
    }

    /// The device.
    pub fn device(&self) -> &D {
        &self.dev
    }

    /// The device, writable (e.g. to advance an in-memory link's clock).
    pub fn device_mut(&mut self) -> &mut D {
        &mut self.dev
    }

    /// The capabilities read when the port was made.
    pub fn capabilities(&self) -> &Capabilities {
        &self.caps
    }

    /// Frames waiting because the device did not take them yet.
    pub fn tx_backlog(&self) -> usize {
        self.tx.len()
    }

    /// The device back (frames still in the backlog are dropped).
    pub fn into_inner(self) -> D {
        self.dev
    }
}
