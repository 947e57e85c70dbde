//! ARP (RFC 826) on an interface: answering requests for our addresses, learning
//! neighbours, resolving next hops, and announcing our addresses at start (RFC 5227 §2.3).

use alloc::vec::Vec;

use crate::device::{Device, Frame};
use crate::iface::{PendingPacket, Port};
use crate::stats::DropReason;
use crate::time::Instant;
use crate::wire::arp::{self, ArpRepr, Operation};
use crate::wire::ethernet::{self, EtherType};
use crate::wire::{Error, EthernetAddress, Ipv4Addr};
use crate::Stack;

impl Stack {
    /// An ARP packet arrived on interface `i`.
    pub(crate) fn input_arp<D: Device>(
        &mut self,
        now: Instant,
        ports: &mut [Port<D>],
        i: usize,
        payload: &[u8],
    ) {
        self.stats.arp_rx += 1;
        let parsed = arp::Packet::new_checked(payload).and_then(|p| ArpRepr::parse(&p));
        let repr = match parsed {
            Ok(r) => r,
            Err(Error::Unsupported) => return self.stats.drop(DropReason::ArpUnsupported),
            Err(_) => return self.stats.drop(DropReason::ArpMalformed),
        };
        let sha = repr.source_hardware_addr;
        let spa = repr.source_protocol_addr;
        if !sha.is_unicast() || spa.is_broadcast() || spa.is_multicast() {
            return self.stats.drop(DropReason::ArpBadSender);
        }
        let iface = &self.ifaces[i];
        if iface.has_addr(spa) {
            // Someone else claims our address (or a gratuitous ARP of ours looped).
            return self.stats.drop(DropReason::ArpAddressConflict);
        }
        let for_us = iface.has_addr(repr.target_protocol_addr);
        // RFC 826 "Packet Reception": update an existing entry from any ARP; create one
        // only when we are the target. A probe (sender 0.0.0.0, RFC 5227) teaches nothing.
        if !spa.is_unspecified() {
            let mut ready: Vec<PendingPacket> = Vec::new();
            self.ifaces[i]
                .neighbors
                .update(spa, sha, now, for_us, |p| ready.push(p));
            for p in ready {
                let none = crate::iface::ipv4::L4Offload::default();
                let copy = |buf: &mut [u8], _| buf.copy_from_slice(&p.payload);
                if let Err(reason) = self.emit_ipv4_to(ports, i, sha, p.repr, none, copy) {
                    self.stats.drop(reason);
                }
            }
        }
        if for_us && repr.operation == Operation::Request && self.ifaces[i].answer_arp {
            let reply = ArpRepr {
                operation: Operation::Reply,
                source_hardware_addr: self.ifaces[i].mac,
                source_protocol_addr: repr.target_protocol_addr,
                target_hardware_addr: sha,
                target_protocol_addr: spa,
            };
            if self.send_arp(ports, i, sha, &reply) {
                self.stats.arp_replies_tx += 1;
            }
        }
    }

    /// Ask who has `target` on interface `i`.
    pub(crate) fn send_arp_request<D: Device>(
        &mut self,
        ports: &mut [Port<D>],
        i: usize,
        target: Ipv4Addr,
    ) {
        let Some(spa) = self.ifaces[i].source_for(target) else {
            return;
        };
        let req = ArpRepr {
            operation: Operation::Request,
            source_hardware_addr: self.ifaces[i].mac,
            source_protocol_addr: spa,
            target_hardware_addr: EthernetAddress::UNSPECIFIED,
            target_protocol_addr: target,
        };
        if self.send_arp(ports, i, EthernetAddress::BROADCAST, &req) {
            self.stats.arp_requests_tx += 1;
        }
    }

    /// Announce each address of interface `i` with a gratuitous ARP request (sender and
    /// target both our address), so neighbours with stale entries update them.
    pub(crate) fn announce<D: Device>(&mut self, ports: &mut [Port<D>], i: usize) {
        for k in 0..self.ifaces[i].addrs.len() {
            let addr = self.ifaces[i].addrs[k].address();
            let req = ArpRepr {
                operation: Operation::Request,
                source_hardware_addr: self.ifaces[i].mac,
                source_protocol_addr: addr,
                target_hardware_addr: EthernetAddress::UNSPECIFIED,
                target_protocol_addr: addr,
            };
            if self.send_arp(ports, i, EthernetAddress::BROADCAST, &req) {
                self.stats.arp_requests_tx += 1;
            }
        }
    }

    fn send_arp<D: Device>(
        &mut self,
        ports: &mut [Port<D>],
        i: usize,
        dst: EthernetAddress,
        repr: &ArpRepr,
    ) -> bool {
        let iface = &self.ifaces[i];
        let eth = iface.ethernet_to(dst, EtherType::Arp);
        let l2 = eth.buffer_len();
        let port = &mut ports[i];
        let Some(mut frame) = port.dev.alloc_tx(l2 + repr.buffer_len()) else {
            self.stats.drop(DropReason::TxNoBuffer);
            return false;
        };
        let buf = frame.data_mut();
        let (head, body) = buf.split_at_mut(l2);
        eth.emit(&mut ethernet::Frame::new_unchecked(head));
        repr.emit(&mut arp::Packet::new_unchecked(body));
        self.stats.tx_bytes += frame.len() as u64;
        port.tx.push(frame);
        true
    }
}
