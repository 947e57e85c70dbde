//! Checksum offload: a device that says it computes TCP/UDP checksums gets frames whose
//! checksum field holds the pseudo-header sum and an offload request; finishing them as
//! a NIC would must give frames the peer accepts. A device without the capability gets
//! complete checksums.

use std::net::SocketAddrV4;

use rumpnet::stack::device::{Capabilities, Device, Frame, HeapFrame, L4Proto};
use rumpnet::stack::iface::{InterfaceConfig, Port};
use rumpnet::stack::link::{self, LinkConfig, LinkEnd};
use rumpnet::stack::rand::Rand;
use rumpnet::stack::time::{Duration, Instant};
use rumpnet::stack::wire::checksum;
use rumpnet::stack::{Stack, StackConfig};

/// A link end that claims L4 checksum offload and finishes the checksums in "hardware".
struct Nic {
    inner: LinkEnd,
    finished: u64,
    plain: u64,
}

impl Device for Nic {
    type Frame = HeapFrame;

    fn capabilities(&self) -> Capabilities {
        let mut c = self.inner.capabilities();
        c.tx_checksum.tcp = true;
        c.tx_checksum.udp = true;
        c
    }

    fn rx_burst(&mut self, queue: u16, out: &mut Vec<HeapFrame>, max: usize) -> usize {
        self.inner.rx_burst(queue, out, max)
    }

    fn tx_burst(&mut self, queue: u16, frames: &mut Vec<HeapFrame>) -> usize {
        for f in frames.iter_mut() {
            let o = f.tx_offload();
            let Some(proto) = o.l4_csum else {
                self.plain += 1;
                continue;
            };
            // As a NIC: sum from the L4 header to the end, with the field holding the
            // pseudo-header sum, and store the complement.
            let start = usize::from(o.l2_len + o.l3_len);
            let field = start + if proto == L4Proto::Tcp { 16 } else { 6 };
            let data = f.data_mut();
            let sum = checksum::sum(&data[start..]);
            let mut c = checksum::finish(&[sum]);
            if proto == L4Proto::Udp && c == 0 {
                c = 0xffff;
            }
            data[field..field + 2].copy_from_slice(&c.to_be_bytes());
            self.finished += 1;
        }
        self.inner.tx_burst(queue, frames)
    }

    fn alloc_tx(&mut self, len: usize) -> Option<HeapFrame> {
        self.inner.alloc_tx(len)
    }
}

fn stack(last: u8) -> Stack {
    let mut s = Stack::new(StackConfig::default(), Rand::from_u64(u64::from(last)));
    let mac = rumpnet::stack::wire::EthernetAddress([2, 0, 0, 0, 0, last]);
    let addr = format!("10.0.0.{last}/24").parse().unwrap();
    s.add_interface(InterfaceConfig::new(mac, addr)).unwrap();
    s
}

#[test]
fn offloaded_checksums_are_finished_by_the_device_and_accepted() {
    let (a_end, b_end) = link::pair(LinkConfig::default());
    let mut a = stack(1);
    let mut b = stack(2);
    let mut pa = [Port::new(Nic {
        inner: a_end,
        finished: 0,
        plain: 0,
    })];
    let mut pb = [Port::new(b_end)];
    let l = b.tcp_listen("0.0.0.0:80".parse().unwrap(), 4).unwrap();
    let c = a.tcp_connect("10.0.0.2:80".parse().unwrap()).unwrap();
    let ua = a.udp_bind("0.0.0.0:0".parse().unwrap()).unwrap();
    let ub = b.udp_bind("0.0.0.0:9".parse().unwrap()).unwrap();
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 249) as u8).collect();
    let mut sent = 0;
    let mut got = Vec::new();
    let mut s = None;
    let mut buf = vec![0u8; 65536];
    let mut now = Instant::from_secs(1);
    let mut udp_ok = 0;
    for k in 0..3000 {
        if sent < data.len() {
            if let Ok(n) = a.tcp_send(c, &data[sent..]) {
                sent += n;
            }
        }
        if k % 100 == 50 {
            let dst: SocketAddrV4 = "10.0.0.2:9".parse().unwrap();
            a.udp_send_to(ua, &data[..1000], dst).unwrap();
        }
        pa[0].device_mut().inner.set_now(now);
        pb[0].device_mut().set_now(now);
        a.poll(now, &mut pa);
        b.poll(now, &mut pb);
        if s.is_none() {
            s = b.tcp_accept(l).ok().map(|x| x.0);
        }
        if let Some(s) = s {
            while let Ok(n) = b.tcp_recv(s, &mut buf) {
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
        }
        while let Ok((n, _)) = b.udp_recv_from(ub, &mut buf) {
            assert_eq!(&buf[..n], &data[..1000]);
            udp_ok += 1;
        }
        now += Duration::from_millis(1);
        if got.len() == data.len() && udp_ok >= 5 {
            break;
        }
    }
    assert!(got == data, "got {} of {}", got.len(), data.len());
    assert!(udp_ok >= 5);
    let nic = pa[0].device();
    assert!(nic.finished > 70, "offloaded frames {}", nic.finished);
    // ARP went without an L4 request.
    assert!(nic.plain >= 1);
    let st = b.stats();
    assert_eq!(
        st.dropped(rumpnet::stack::stats::DropReason::TcpBadChecksum),
        0
    );
    assert_eq!(
        st.dropped(rumpnet::stack::stats::DropReason::UdpBadChecksum),
        0
    );
}
