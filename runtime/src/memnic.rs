//! An in-memory multi-queue NIC: how run-to-completion mode (one queue per shard,
//! hardware RSS) is tested and benchmarked without hardware.
//!
//! [`multiqueue`] builds one in-memory link per queue. The runtime side gets one
//! [`LinkEnd`] per queue; the peer side gets a [`RssWire`], a single-queue device that
//! does what a NIC's RSS does on receive: it hashes each frame it carries with the
//! runtime's key, records the hash in the frame's [`RxMeta::rss_hash`] (as a NIC writes
//! it into the descriptor), and puts the frame on the queue the indirection table picks.
//! Frames the NIC would not hash (ARP, fragments, ICMP) go to queue 0 without a hash,
//! as on real NICs, and the runtime passes them on from there.

use rumpnet_stack::device::{Capabilities, Device, Frame, HeapFrame, RxMeta};
use rumpnet_stack::link::{self, LinkConfig, LinkEnd};

use crate::rss::{Rss, RssKey};

/// The peer's side of a [`multiqueue`] NIC: one device whose transmissions are spread
/// over the queues by RSS, and whose receptions are gathered from all of them.
#[derive(Debug)]
pub struct RssWire {
    ends: Vec<LinkEnd>,
    rss: Rss,
    per_queue: Vec<Vec<HeapFrame>>,
    next_rx: usize,
}

/// A NIC with `queues` queues (at least 1) hashing with `key`: the peer's side and the
/// runtime's queues (queue `i` is the `i`-th end, each its own device's queue 0).
pub fn multiqueue(config: LinkConfig, queues: usize, key: &RssKey) -> (RssWire, Vec<LinkEnd>) {
    let queues = queues.max(1);
    let (peer, ours): (Vec<LinkEnd>, Vec<LinkEnd>) =
        (0..queues).map(|_| link::pair(config)).unzip();
    (
        RssWire {
            ends: peer,
            rss: Rss::new(key, queues),
            per_queue: (0..queues).map(|_| Vec::new()).collect(),
            next_rx: 0,
        },
        ours,
    )
}

impl RssWire {
    /// The link end of queue `i`, on the peer's side.
    pub fn end(&self, i: usize) -> Option<&LinkEnd> {
        self.ends.get(i)
    }

    /// The queue a frame goes to and the hash the NIC reports with it: by the hash for
    /// the frames the runtime would hash itself, queue 0 unhashed for the rest.
    fn classify(&self, frame: &HeapFrame) -> (usize, Option<u32>) {
        match flow_hash(&self.rss, frame.data()) {
            Some(h) => (self.rss.shard_of_hash(h), Some(h)),
            None => (0, None),
        }
    }
}

/// The Toeplitz hash of an unfragmented IPv4 TCP/UDP frame's 4-tuple.
fn flow_hash(rss: &Rss, frame: &[u8]) -> Option<u32> {
    use rumpnet_stack::wire::ethernet::{EtherType, Frame as EthernetFrame};
    use rumpnet_stack::wire::ipv4::Packet as Ipv4Packet;
    use rumpnet_stack::wire::IpProtocol;
    let eth = EthernetFrame::new_checked(frame).ok()?;
    if eth.ethertype() != EtherType::Ipv4 {
        return None;
    }
    let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
    if ip.more_frags() || ip.frag_offset() != 0 {
        return None;
    }
    if !matches!(ip.protocol(), IpProtocol::Tcp | IpProtocol::Udp) {
        return None;
    }
    let l4 = ip.payload();
    let ports = l4.get(0..4)?;
    Some(rss.toeplitz().hash_v4(
        ip.src_addr(),
        ip.dst_addr(),
        u16::from_be_bytes([ports[0], ports[1]]),
        u16::from_be_bytes([ports[2], ports[3]]),
    ))
}

impl Device for RssWire {
    type Frame = HeapFrame;

    fn capabilities(&self) -> Capabilities {
        self.ends[0].capabilities()
    }

    /// From every queue in turn, starting with a different one each call.
    fn rx_burst(&mut self, _queue: u16, out: &mut Vec<HeapFrame>, max: usize) -> usize {
        let k = self.ends.len();
        let mut n = 0;
        for i in 0..k {
            if n >= max {
                break;
            }
            n += self.ends[(self.next_rx + i) % k].rx_burst(0, out, max - n);
        }
        self.next_rx = (self.next_rx + 1) % k;
        n
    }

    /// Frames a queue's ring had no room for come back in `frames`, each queue's in
    /// their order (the relative order of frames of different queues may change, as it
    /// may on a NIC).
    fn tx_burst(&mut self, _queue: u16, frames: &mut Vec<HeapFrame>) -> usize {
        for mut f in frames.drain(..) {
            let (q, hash) = self.classify(&f);
            f.set_rx_meta(RxMeta {
                rss_hash: hash,
                ..f.rx_meta()
            });
            self.per_queue[q].push(f);
        }
        let mut taken = 0;
        for (end, batch) in self.ends.iter_mut().zip(self.per_queue.iter_mut()) {
            if !batch.is_empty() {
                taken += end.tx_burst(0, batch);
                frames.append(batch);
            }
        }
        taken
    }

    fn alloc_tx(&mut self, len: usize) -> Option<HeapFrame> {
        self.ends[0].alloc_tx(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn tcp_frame(sport: u16) -> HeapFrame {
        let mut f = vec![0u8; 14 + 20 + 20];
        f[0..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 2]);
        f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 1]);
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        let ip = &mut f[14..];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&40u16.to_be_bytes());
        ip[9] = 6;
        ip[12..16].copy_from_slice(&[10, 0, 0, 1]);
        ip[16..20].copy_from_slice(&[10, 0, 0, 2]);
        ip[20..22].copy_from_slice(&sport.to_be_bytes());
        ip[22..24].copy_from_slice(&80u16.to_be_bytes());
        HeapFrame::from_slice(&f, 64)
    }

    #[test]
    fn spreads_by_hash_and_reports_it() {
        let key = crate::rss::SYMMETRIC_KEY;
        let (mut wire, mut queues) = multiqueue(LinkConfig::default(), 4, &key);
        let rss = Rss::new(&key, 4);
        let mut batch: Vec<HeapFrame> = (50000..50064).map(tcp_frame).collect();
        assert_eq!(wire.tx_burst(0, &mut batch), 64);
        assert!(batch.is_empty());
        let mut seen = 0;
        for (q, end) in queues.iter_mut().enumerate() {
            let mut out = Vec::new();
            end.rx_burst(0, &mut out, 64);
            for f in &out {
                let sport = u16::from_be_bytes([f.data()[34], f.data()[35]]);
                let h = rss.toeplitz().hash_v4(
                    Ipv4Addr::new(10, 0, 0, 1),
                    Ipv4Addr::new(10, 0, 0, 2),
                    sport,
                    80,
                );
                assert_eq!(f.rx_meta().rss_hash, Some(h));
                assert_eq!(rss.shard_of_hash(h), q);
            }
            seen += out.len();
        }
        assert_eq!(seen, 64);
        // ARP goes to queue 0, unhashed.
        let mut arp = vec![0u8; 42];
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        let mut batch = vec![HeapFrame::from_slice(&arp, 64)];
        wire.tx_burst(0, &mut batch);
        let mut out = Vec::new();
        queues[0].rx_burst(0, &mut out, 8);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].rx_meta().rss_hash, None);
    }
}
