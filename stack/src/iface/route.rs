//! The IPv4 routing table: longest-prefix match over a small bounded table.
//!
//! Interfaces add their connected prefixes; users add static routes and a default
//! gateway. A host stack holds a handful of routes, so a sorted vector scanned from the
//! longest prefix beats a trie on cache behaviour; the table is bounded regardless.

use alloc::vec::Vec;

use crate::wire::{Ipv4Addr, Ipv4Cidr};

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
}

impl RouteTable {
    /// An empty table of at most `limit` routes.
    pub fn new(limit: usize) -> Self {
        RouteTable {
            routes: Vec::new(),
            limit,
        }
    }

    /// Add or replace the route for `route.dest`.
    pub fn add(&mut self, mut route: Route) -> Result<(), RouteError> {
        route.dest =
            Ipv4Cidr::new(route.dest.network(), route.dest.prefix_len()).unwrap_or(route.dest);
        if let Some(r) = self.routes.iter_mut().find(|r| r.dest == route.dest) {
            *r = route;
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
        Ok(())
    }

    /// Remove the route for exactly `dest`; true if there was one.
    pub fn remove(&mut self, dest: Ipv4Cidr) -> bool {
        let dest = Ipv4Cidr::new(dest.network(), dest.prefix_len()).unwrap_or(dest);
        let before = self.routes.len();
        self.routes.retain(|r| r.dest != dest);
        before != self.routes.len()
    }

    /// The longest-prefix route for `dst`.
    pub fn lookup(&self, dst: Ipv4Addr) -> Option<&Route> {
        self.routes.iter().find(|r| r.dest.contains(dst))
    }

    /// All routes, longest prefix first.
    pub fn iter(&self) -> impl Iterator<Item = &Route> {
        self.routes.iter()
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
}
