//! The IPv4 routing table: longest-prefix match over a small bounded table.
//!
//! Interfaces add their connected prefixes; users add static routes and a default
//! gateway. A host stack holds a handful of routes, so a sorted vector scanned from the
//! longest prefix beats a trie on cache behaviour; the table is bounded regardless.

use alloc::vec::Vec;

use crate::time::Instant;
use crate::wire::{ethernet, ipv4, Ipv4Addr, Ipv4Cidr};

/// One route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// The destination prefix (stored with host bits cleared).
    pub dest: Ipv4Cidr,
    /// The next hop; `None` for a connected prefix (the destination is on-link).
    pub gateway: Option<Ipv4Addr>,
    /// The interface the route leaves by.
    pub iface: usize,
}

impl Route {
    /// Where a packet for `dst` is sent on the link.
    pub fn next_hop(&self, dst: Ipv4Addr) -> Ipv4Addr {
        self.gateway.unwrap_or(dst)
    }
}

/// Why a route was not added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteError {
    /// The table is at its limit.
    TableFull,
    /// The gateway is not on any connected prefix.
    GatewayUnreachable,
    /// No such interface.
    NoSuchInterface,
}

impl core::fmt::Display for RouteError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            RouteError::TableFull => "routing table full",
            RouteError::GatewayUnreachable => "gateway is not on a connected network",
            RouteError::NoSuchInterface => "no such interface",
        })
    }
}

/// A bounded table of routes, longest prefix first.
#[derive(Debug, Clone)]
pub struct RouteTable {
    routes: Vec<Route>,
    limit: usize,
    /// Bumped by every change, so an answer remembered with it (a [`RouteMemo`]) can
    /// tell it still holds.
    generation: u64,
}

impl RouteTable {
    /// An empty table of at most `limit` routes.
    pub fn new(limit: usize) -> Self {
        RouteTable {
            routes: Vec::new(),
            limit,
            generation: 0,
        }
    }

    /// Add or replace the route for `route.dest`.
    pub fn add(&mut self, mut route: Route) -> Result<(), RouteError> {
        route.dest =
            Ipv4Cidr::new(route.dest.network(), route.dest.prefix_len()).unwrap_or(route.dest);
        if let Some(r) = self.routes.iter_mut().find(|r| r.dest == route.dest) {
            *r = route;
            self.generation += 1;
            return Ok(());
        }
        if self.routes.len() >= self.limit {
            return Err(RouteError::TableFull);
        }
        // Keep longest prefixes first; among equals, the older route first.
        let at = self
            .routes
            .iter()
            .position(|r| r.dest.prefix_len() < route.dest.prefix_len())
            .unwrap_or(self.routes.len());
        self.routes.insert(at, route);
        self.generation += 1;
        Ok(())
    }

    /// Remove the route for exactly `dest`; true if there was one.
    pub fn remove(&mut self, dest: Ipv4Cidr) -> bool {
        let dest = Ipv4Cidr::new(dest.network(), dest.prefix_len()).unwrap_or(dest);
        let before = self.routes.len();
        self.routes.retain(|r| r.dest != dest);
        let removed = before != self.routes.len();
        if removed {
            self.generation += 1;
        }
        removed
    }

    /// The longest-prefix route for `dst`.
    pub fn lookup(&self, dst: Ipv4Addr) -> Option<&Route> {
        self.routes.iter().find(|r| r.dest.contains(dst))
    }

    /// Counts changes to the table: equal generations, equal answers.
    #[inline]
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// All routes, longest prefix first.
    pub fn iter(&self) -> impl Iterator<Item = &Route> {
        self.routes.iter()
    }
}

/// Where the output path last sent a datagram: a one-entry memo in front of the table
/// scan and the interface's broadcast check. A host sends nearly every packet to the
/// destination the one before went to (one connection at a time, both directions of a
/// request/response), so this answers most lookups with two compares. Valid only for the
/// table [`generation`](RouteTable::generation) it was filled at; only answers whose
/// interface exists are kept, and an interface's addresses (which decide `broadcast`)
/// never change once it is added.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RouteMemo {
    /// The destination and the table generation of the answer; `None` when empty.
    key: Option<(Ipv4Addr, u64)>,
    hop: OutHop,
}

/// The Ethernet and IPv4 headers of the TCP segments from `src` to `dst`, built once by
/// the general output path's own writers and then copied into each frame with the few
/// fields that vary patched in: the connection's output skips the route and neighbour
/// lookups and the layered header emits for nearly every segment it sends.
///
/// It holds while the route table is at `generation` (the hop) and the interface's
/// neighbour cache still remembers the MAC it was built with for the next hop (the
/// answer its `lookup_send` gives without a probe): its remembered answer is unchanged
/// since (`neighbor_epoch`) and not expired (`until`). An interface's MAC, VLAN and
/// addresses never change once it is added, nor does the stack's TTL. Everything that depends on the
/// port (MTU, offloads) is asked per segment, as the general path does.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PathTemplate {
    pub(crate) src: Ipv4Addr,
    pub(crate) dst: Ipv4Addr,
    /// The route table generation the hop was worked out at.
    pub(crate) generation: u64,
    pub(crate) iface: usize,
    /// The neighbour cache's `last_epoch` when its answer was taken.
    pub(crate) neighbor_epoch: u64,
    /// Until when that answer holds (`None`: until it changes).
    pub(crate) until: Option<Instant>,
    /// Link header length: 14, or 18 with a VLAN tag.
    pub(crate) l2_len: usize,
    /// The link header then the IPv4 header (TTL, DF, protocol TCP, addresses) with
    /// total length, identification and checksum zero.
    pub(crate) header: [u8; PATH_HEADER_MAX],
    /// The one's complement sum of that IPv4 header: the checksum is this plus the
    /// total length and identification, complemented.
    pub(crate) sum: u16,
    /// The TCP pseudo-header sum of the addresses, for a checksum the device finishes
    /// ([`pseudo_sum_addrs`](crate::wire::tcp::pseudo_sum_addrs)).
    pub(crate) tcp_pseudo: u16,
}

/// Room for an Ethernet header with a VLAN tag and an IPv4 header without options.
pub(crate) const PATH_HEADER_MAX: usize =
    ethernet::HEADER_LEN + ethernet::VLAN_TAG_LEN + ipv4::HEADER_LEN;

/// How a datagram to one destination leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OutHop {
    /// The interface.
    pub(crate) iface: usize,
    /// The on-link address to resolve.
    pub(crate) next_hop: Ipv4Addr,
    /// The destination is the broadcast address of one of the interface's prefixes.
    pub(crate) subnet_broadcast: bool,
}

impl Default for OutHop {
    fn default() -> Self {
        OutHop {
            iface: 0,
            next_hop: Ipv4Addr::UNSPECIFIED,
            subnet_broadcast: false,
        }
    }
}

impl RouteMemo {
    /// The remembered answer for `dst`, if it was worked out at `generation`.
    #[inline]
    pub(crate) fn get(&self, dst: Ipv4Addr, generation: u64) -> Option<OutHop> {
        (self.key == Some((dst, generation))).then_some(self.hop)
    }

    /// Remember `hop` as the answer for `dst` at `generation`.
    #[inline]
    pub(crate) fn set(&mut self, dst: Ipv4Addr, generation: u64, hop: OutHop) {
        self.key = Some((dst, generation));
        self.hop = hop;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(s: &str) -> Ipv4Cidr {
        s.parse().unwrap()
    }

    #[test]
    fn longest_prefix_wins() {
        let mut t = RouteTable::new(8);
        let gw = Ipv4Addr::new(10, 0, 0, 1);
        t.add(Route {
            dest: cidr("0.0.0.0/0"),
            gateway: Some(gw),
            iface: 0,
        })
        .unwrap();
        t.add(Route {
            dest: cidr("10.0.0.5/24"),
            gateway: None,
            iface: 0,
        })
        .unwrap();
        t.add(Route {
            dest: cidr("10.0.0.128/25"),
            gateway: None,
            iface: 1,
        })
        .unwrap();
        let r = t.lookup(Ipv4Addr::new(10, 0, 0, 200)).unwrap();
        assert_eq!(r.iface, 1);
        assert_eq!(r.dest, cidr("10.0.0.128/25"));
        let r = t.lookup(Ipv4Addr::new(10, 0, 0, 7)).unwrap();
        assert_eq!(
            (r.iface, r.next_hop(Ipv4Addr::new(10, 0, 0, 7))),
            (0, Ipv4Addr::new(10, 0, 0, 7))
        );
        let r = t.lookup(Ipv4Addr::new(192, 0, 2, 1)).unwrap();
        assert_eq!(r.next_hop(Ipv4Addr::new(192, 0, 2, 1)), gw);
        assert!(t.remove(cidr("0.0.0.0/0")));
        assert!(t.lookup(Ipv4Addr::new(192, 0, 2, 1)).is_none());
    }

    #[test]
    fn bounded_and_replacing() {
        let mut t = RouteTable::new(1);
        t.add(Route {
            dest: cidr("10.0.0.0/8"),
            gateway: None,
            iface: 0,
        })
        .unwrap();
        t.add(Route {
            dest: cidr("10.0.0.0/8"),
            gateway: None,
            iface: 1,
        })
        .unwrap();
        assert_eq!(t.lookup(Ipv4Addr::new(10, 1, 1, 1)).unwrap().iface, 1);
        assert_eq!(
            t.add(Route {
                dest: cidr("11.0.0.0/8"),
                gateway: None,
                iface: 0
            }),
            Err(RouteError::TableFull)
        );
    }

    #[test]
    fn memo_holds_only_for_its_generation() {
        let mut t = RouteTable::new(4);
        t.add(Route {
            dest: cidr("10.0.0.0/24"),
            gateway: None,
            iface: 0,
        })
        .unwrap();
        let dst = Ipv4Addr::new(10, 0, 0, 9);
        let hop = OutHop {
            iface: 0,
            next_hop: dst,
            subnet_broadcast: false,
        };
        let mut memo = RouteMemo::default();
        assert_eq!(memo.get(dst, t.generation()), None);
        memo.set(dst, t.generation(), hop);
        assert_eq!(memo.get(dst, t.generation()), Some(hop));
        assert_eq!(memo.get(Ipv4Addr::new(10, 0, 0, 8), t.generation()), None);
        let g = t.generation();
        t.add(Route {
            dest: cidr("10.0.0.0/24"),
            gateway: None,
            iface: 1,
        })
        .unwrap();
        assert_ne!(t.generation(), g);
        assert_eq!(memo.get(dst, t.generation()), None);
        let g = t.generation();
        assert!(!t.remove(cidr("192.0.2.0/24")));
        assert_eq!(t.generation(), g);
        assert!(t.remove(cidr("10.0.0.0/24")));
        assert_ne!(t.generation(), g);
    }
}
