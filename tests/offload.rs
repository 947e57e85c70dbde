//! Checksum offload: a device that says it computes TCP/UDP checksums gets frames whose
//! checksum field holds the pseudo-header sum and an offload request; finishing them as
//! a NIC would must give frames the peer accepts. A device without the capability gets
//! complete checksums.

use std::net::SocketAddrV4;

use rumpnet::stack::device::{Capabilities, Device, Frame, FramePool, HeapFrame, L4Proto};
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
    /// Claim TSO and cut large TCP frames as a NIC would.
    tso: bool,
    tso_frames: u64,
    out: Vec<HeapFrame>,
    /// Buffers for frames larger than the link's MTU (TSO super-frames).
    big: std::sync::Arc<FramePool>,
}

/// Finish the L4 checksum of `data` (an Ethernet frame) as a NIC does: sum from the
/// L4 header on with the field holding the pseudo-header sum, store the complement.
fn finish_l4(data: &mut [u8], start: usize, proto: L4Proto) {
    let field = start + if proto == L4Proto::Tcp { 16 } else { 6 };
    let sum = checksum::sum(&data[start..]);
    let mut c = checksum::finish(&[sum]);
    if proto == L4Proto::Udp && c == 0 {
        c = 0xffff;
    }
    data[field..field + 2].copy_from_slice(&c.to_be_bytes());
}

/// Cut a TSO frame into MSS-sized frames (RFC 7323-free: options are copied as they
/// are), as NICs do: per piece, fix IPv4 length/ident/checksum, TCP seq, flags, sum.
fn segment(f: &HeapFrame, mss: usize, pool: &mut LinkEnd) -> Vec<HeapFrame> {
    let o = f.tx_offload();
    let d = f.data();
    let (l2, l3, l4) = (o.l2_len as usize, o.l3_len as usize, o.l4_len as usize);
    let hdrs = l2 + l3 + l4;
    let payload = &d[hdrs..];
    let seq0 = u32::from_be_bytes([
        d[l2 + l3 + 4],
        d[l2 + l3 + 5],
        d[l2 + l3 + 6],
        d[l2 + l3 + 7],
    ]);
    let ident0 = u16::from_be_bytes([d[l2 + 4], d[l2 + 5]]);
    let flags = d[l2 + l3 + 13];
    let n = payload.len().div_ceil(mss);
    let mut out = Vec::new();
    for (k, chunk) in payload.chunks(mss).enumerate() {
        let mut g = pool.alloc_tx(hdrs + chunk.len()).unwrap();
        let b = g.data_mut();
        b[..hdrs].copy_from_slice(&d[..hdrs]);
        b[hdrs..].copy_from_slice(chunk);
        let tot = (l3 + l4 + chunk.len()) as u16;
        b[l2 + 2..l2 + 4].copy_from_slice(&tot.to_be_bytes());
        b[l2 + 4..l2 + 6].copy_from_slice(&ident0.wrapping_add(k as u16).to_be_bytes());
        b[l2 + 10..l2 + 12].copy_from_slice(&[0, 0]);
        let ipsum = checksum::finish(&[checksum::sum(&b[l2..l2 + l3])]);
        b[l2 + 10..l2 + 12].copy_from_slice(&ipsum.to_be_bytes());
        let seq = seq0.wrapping_add((k * mss) as u32);
        b[l2 + l3 + 4..l2 + l3 + 8].copy_from_slice(&seq.to_be_bytes());
        // FIN and PSH only on the last piece.
        b[l2 + l3 + 13] = if k + 1 == n { flags } else { flags & !0x09 };
        // The pseudo-header sum depends on the length: recompute it for this piece.
        let src =
            rumpnet::stack::wire::Ipv4Addr::new(b[l2 + 12], b[l2 + 13], b[l2 + 14], b[l2 + 15]);
        let dst =
            rumpnet::stack::wire::Ipv4Addr::new(b[l2 + 16], b[l2 + 17], b[l2 + 18], b[l2 + 19]);
        let ph = checksum::pseudo_header_v4(
            src,
            dst,
            rumpnet::stack::wire::IpProtocol::Tcp,
            (l4 + chunk.len()) as u16,
        );
        b[l2 + l3 + 16..l2 + l3 + 18].copy_from_slice(&ph.to_be_bytes());
        finish_l4(b, l2 + l3, L4Proto::Tcp);
        out.push(g);
    }
    out
}

impl Device for Nic {
    type Frame = HeapFrame;

    fn capabilities(&self) -> Capabilities {
        let mut c = self.inner.capabilities();
        c.tx_checksum.tcp = true;
        c.tx_checksum.udp = true;
        if self.tso {
            c.tso_max = 65535;
        }
        c
    }

    fn rx_burst(&mut self, queue: u16, out: &mut Vec<HeapFrame>, max: usize) -> usize {
        self.inner.rx_burst(queue, out, max)
    }

    fn tx_burst(&mut self, queue: u16, frames: &mut Vec<HeapFrame>) -> usize {
        // Finish every frame into `out` (cutting TSO frames), then hand `out` on; what
        // the link did not take stays in `out` for the next call (a NIC's ring).
        let taken = frames.len();
        for mut f in frames.drain(..) {
            let o = f.tx_offload();
            let Some(proto) = o.l4_csum else {
                self.plain += 1;
                self.out.push(f);
                continue;
            };
            if o.tso_mss > 0 {
                self.tso_frames += 1;
                let pieces = segment(&f, usize::from(o.tso_mss), &mut self.inner);
                self.finished += pieces.len() as u64;
                self.out.extend(pieces);
                continue;
            }
            let start = usize::from(o.l2_len + o.l3_len);
            finish_l4(f.data_mut(), start, proto);
            self.finished += 1;
            self.out.push(f);
        }
        let mut out = std::mem::take(&mut self.out);
        self.inner.tx_burst(queue, &mut out);
        self.out = out;
        taken
    }

    fn alloc_tx(&mut self, len: usize) -> Option<HeapFrame> {
        self.inner.alloc_tx(len).or_else(|| self.big.alloc(len))
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
    run(false);
}

#[test]
fn tso_frames_are_cut_by_the_device_and_the_data_arrives_intact() {
    run(true);
}

fn run(tso: bool) {
    let (a_end, b_end) = link::pair(LinkConfig {
        capacity: 8192,
        ..Default::default()
    });
    let mut a = stack(1);
    let mut b = stack(2);
    let mut pa = [Port::new(Nic {
        inner: a_end,
        finished: 0,
        plain: 0,
        tso,
        tso_frames: 0,
        out: Vec::new(),
        big: FramePool::new(64, 65536 + 256, 128),
    })];
    let mut pb = [Port::new(b_end)];
    let l = b.tcp_listen("0.0.0.0:80".parse().unwrap(), 4).unwrap();
    let c = a.tcp_connect("10.0.0.2:80".parse().unwrap()).unwrap();
    let ua = a.udp_bind("0.0.0.0:0".parse().unwrap()).unwrap();
    let ub = b.udp_bind("0.0.0.0:9".parse().unwrap()).unwrap();
    let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 249) as u8).collect();
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
    if tso {
        assert!(nic.tso_frames > 10, "tso frames {}", nic.tso_frames);
    } else {
        assert_eq!(nic.tso_frames, 0);
    }
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

/// A link end whose received UDP frames look like a local kernel's: the checksum field
/// holds only the pseudo-header sum and the frame says so (virtio NEEDS_CSUM).
struct PartialRx {
    inner: LinkEnd,
}

impl Device for PartialRx {
    type Frame = HeapFrame;
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    fn rx_burst(&mut self, queue: u16, out: &mut Vec<HeapFrame>, max: usize) -> usize {
        let start = out.len();
        let n = self.inner.rx_burst(queue, out, max);
        for f in &mut out[start..] {
            let d = f.data_mut();
            if d.len() >= 42 && d[12..14] == [8, 0] && d[23] == 17 {
                let src = rumpnet::stack::wire::Ipv4Addr::new(d[26], d[27], d[28], d[29]);
                let dst = rumpnet::stack::wire::Ipv4Addr::new(d[30], d[31], d[32], d[33]);
                let len = u16::from_be_bytes([d[38], d[39]]);
                let ph = checksum::pseudo_header_v4(
                    src,
                    dst,
                    rumpnet::stack::wire::IpProtocol::Udp,
                    len,
                );
                d[40..42].copy_from_slice(&ph.to_be_bytes());
                f.set_rx_meta(rumpnet::stack::device::RxMeta {
                    l4_csum_partial: true,
                    ..Default::default()
                });
            }
        }
        n
    }
    fn tx_burst(&mut self, queue: u16, frames: &mut Vec<HeapFrame>) -> usize {
        self.inner.tx_burst(queue, frames)
    }
    fn alloc_tx(&mut self, len: usize) -> Option<HeapFrame> {
        self.inner.alloc_tx(len)
    }
}

#[test]
fn a_router_finishes_partial_checksums_before_forwarding() {
    use rumpnet::stack::stats::DropReason;
    let (a_end, g0) = link::pair(LinkConfig::default());
    let (g1, b_end) = link::pair(LinkConfig::default());
    let mut a = Stack::new(StackConfig::default(), Rand::from_u64(1));
    let mac = |l| rumpnet::stack::wire::EthernetAddress([2, 0, 0, 0, 0, l]);
    a.add_interface(InterfaceConfig::new(mac(1), "10.0.1.2/24".parse().unwrap()))
        .unwrap();
    a.set_default_gateway("10.0.1.1".parse().unwrap()).unwrap();
    let mut g = Stack::new(
        StackConfig {
            ip_forward: true,
            ..Default::default()
        },
        Rand::from_u64(2),
    );
    g.add_interface(InterfaceConfig::new(mac(2), "10.0.1.1/24".parse().unwrap()))
        .unwrap();
    g.add_interface(InterfaceConfig::new(mac(3), "10.0.2.1/24".parse().unwrap()))
        .unwrap();
    let mut b2 = Stack::new(StackConfig::default(), Rand::from_u64(5));
    b2.add_interface(InterfaceConfig::new(mac(5), "10.0.2.2/24".parse().unwrap()))
        .unwrap();
    b2.set_default_gateway("10.0.2.1".parse().unwrap()).unwrap();
    let mut pa = [Port::new(a_end)];
    let mut pg0 = PartialRx { inner: g0 };
    let mut pg = vec![
        Port::new(LinkOrPartial::Partial(&mut pg0)),
        Port::new(LinkOrPartial::Link(Box::new(g1))),
    ];
    let mut pb = [Port::new(b_end)];
    let ua = a.udp_bind("0.0.0.0:1000".parse().unwrap()).unwrap();
    let ub = b2.udp_bind("0.0.0.0:2000".parse().unwrap()).unwrap();
    let dst: SocketAddrV4 = "10.0.2.2:2000".parse().unwrap();
    let mut now = Instant::from_secs(1);
    let mut buf = [0u8; 2000];
    let mut got = 0;
    for k in 0..100 {
        if k % 10 == 0 {
            a.udp_send_to(ua, b"finish me", dst).unwrap();
        }
        a.poll(now, &mut pa);
        g.poll(now, &mut pg);
        b2.poll(now, &mut pb);
        while let Ok((n, _)) = b2.udp_recv_from(ub, &mut buf) {
            assert_eq!(&buf[..n], b"finish me");
            got += 1;
        }
        now += Duration::from_millis(1);
    }
    assert!(got >= 8, "got {got}");
    assert_eq!(b2.stats().dropped(DropReason::UdpBadChecksum), 0);
    assert!(g.stats().ipv4_forwarded >= 8);
}

/// Two device types behind one port type for the router.
enum LinkOrPartial<'a> {
    Link(Box<LinkEnd>),
    Partial(&'a mut PartialRx),
}

impl Device for LinkOrPartial<'_> {
    type Frame = HeapFrame;
    fn capabilities(&self) -> Capabilities {
        match self {
            LinkOrPartial::Link(l) => l.capabilities(),
            LinkOrPartial::Partial(p) => p.capabilities(),
        }
    }
    fn rx_burst(&mut self, queue: u16, out: &mut Vec<HeapFrame>, max: usize) -> usize {
        match self {
            LinkOrPartial::Link(l) => l.rx_burst(queue, out, max),
            LinkOrPartial::Partial(p) => p.rx_burst(queue, out, max),
        }
    }
    fn tx_burst(&mut self, queue: u16, frames: &mut Vec<HeapFrame>) -> usize {
        match self {
            LinkOrPartial::Link(l) => l.tx_burst(queue, frames),
            LinkOrPartial::Partial(p) => p.tx_burst(queue, frames),
        }
    }
    fn alloc_tx(&mut self, len: usize) -> Option<HeapFrame> {
        match self {
            LinkOrPartial::Link(l) => l.alloc_tx(len),
            LinkOrPartial::Partial(p) => p.alloc_tx(len),
        }
    }
}
