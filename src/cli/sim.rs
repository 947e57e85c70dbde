//! `rumpnet sim`: two stacks over the in-memory link, on a virtual clock.
//!
//! Host A (10.0.0.1) pings host B (10.0.0.2) and sends it UDP datagrams, which B echoes
//! back; the link between them loses, duplicates, reorders, corrupts, delays and
//! rate-limits frames as asked, from a seed, so a run replays exactly. It shows the
//! stack working end to end without any special hardware or privileges, and writes a
//! pcap of the wire for Wireshark/tshark when asked.

use std::fmt::Write as _;
use std::net::SocketAddrV4;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;

use rumpnet_stack::iface::{InterfaceConfig, Port};
use rumpnet_stack::link::{self, Impairments, LinkConfig, LinkEnd, PcapCapture};
use rumpnet_stack::rand::Rand;
use rumpnet_stack::time::{Duration, Instant};
use rumpnet_stack::udp::{UdpError, UdpSocketOptions};
use rumpnet_stack::wire::{EthernetAddress, Ipv4Addr, Ipv4Cidr};
use rumpnet_stack::{Stack, StackConfig};

/// Options of `rumpnet sim`.
#[derive(Debug, Clone, Args)]
pub struct SimArgs {
    /// Echo requests A sends to B.
    #[arg(long, default_value_t = 10)]
    pub pings: u16,
    /// UDP datagrams A sends to B's echo port.
    #[arg(long, default_value_t = 100)]
    pub udp: u32,
    /// UDP payload bytes (above MTU - 28 the datagrams are fragmented).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(0..=65507))]
    pub size: u32,
    /// Bytes A sends through B's TCP echo server (and reads back, hash-checked).
    #[arg(long, default_value_t = 4_000_000)]
    pub tcp: u64,
    /// Link MTU in bytes.
    #[arg(long, default_value_t = 1500, value_parser = clap::value_parser!(u32).range(68..=9000))]
    pub mtu: u32,
    /// Probability that a frame is lost (each direction).
    #[arg(long, default_value_t = 0.0, value_parser = probability)]
    pub loss: f64,
    /// Probability that a frame is duplicated.
    #[arg(long, default_value_t = 0.0, value_parser = probability)]
    pub duplicate: f64,
    /// Probability that a frame is delivered after its successor.
    #[arg(long, default_value_t = 0.0, value_parser = probability)]
    pub reorder: f64,
    /// Probability that one bit of a frame is flipped.
    #[arg(long, default_value_t = 0.0, value_parser = probability)]
    pub corrupt: f64,
    /// One-way delay in milliseconds.
    #[arg(long, default_value_t = 1)]
    pub delay_ms: u64,
    /// Link rate in Mbit/s (0: unlimited).
    #[arg(long, default_value_t = 0)]
    pub rate_mbps: u64,
    /// Seed of every random decision (link impairments, the stacks' randomness).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Write every frame on the wire to this pcap file.
    #[arg(long)]
    pub pcap: Option<PathBuf>,
}

fn probability(s: &str) -> Result<f64, String> {
    let p: f64 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    if (0.0..=1.0).contains(&p) {
        Ok(p)
    } else {
        Err(format!("{p} is not a probability between 0 and 1"))
    }
}

/// What a run measured.
#[derive(Debug, Default)]
pub struct SimReport {
    pub pings_sent: u16,
    pub pings_answered: u16,
    pub rtt_min: Option<Duration>,
    pub rtt_max: Option<Duration>,
    pub udp_sent: u32,
    pub udp_echoed: u32,
    pub udp_intact: u32,
    pub tcp_sent: u64,
    pub tcp_echoed: u64,
    /// The echoed stream equals what was sent.
    pub tcp_intact: bool,
    /// Virtual time from connect to the last echoed byte.
    pub tcp_time: Option<Duration>,
    pub tcp_retransmits: u64,
    pub virtual_time: Duration,
    pub text: String,
}

struct Host {
    stack: Stack,
    ports: [Port<LinkEnd>; 1],
}

impl Host {
    fn new(end: LinkEnd, last: u8, seed: u64) -> Result<Host, String> {
        let mut stack = Stack::new(StackConfig::default(), Rand::from_u64(seed));
        let addr: Ipv4Cidr = format!("10.0.0.{last}/24")
            .parse()
            .map_err(|e| format!("{e}"))?;
        stack
            .add_interface(InterfaceConfig::new(
                EthernetAddress([2, 0, 0, 0, 0, last]),
                addr,
            ))
            .map_err(|e| e.to_string())?;
        Ok(Host {
            stack,
            ports: [Port::new(end)],
        })
    }

    fn poll(&mut self, now: Instant) -> bool {
        self.ports[0].device_mut().set_now(now);
        let r = self.stack.poll(now, &mut self.ports);
        r.rx_frames > 0 || r.tx_frames > 0
    }

    /// When this host next has something to do: a timer, or a frame due on its link.
    fn next_event(&mut self) -> Option<Instant> {
        let a = self.stack.poll_at();
        let b = self.ports[0].device_mut().next_rx_at();
        match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// FNV-1a over a stream, to compare what was sent and what came back.
struct Fnv(u64);

impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn update(&mut self, data: &[u8]) {
        for &b in data {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// Byte `i` of the TCP test stream (not periodic over short spans).
fn pattern_byte(i: u64) -> u8 {
    (i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56) as u8 ^ (i >> 16) as u8
}

fn payload(k: u32, size: usize) -> Vec<u8> {
    let mut v: Vec<u8> = (0..size)
        .map(|i| (i as u32).wrapping_mul(131).wrapping_add(k) as u8)
        .collect();
    if size >= 4 {
        v[..4].copy_from_slice(&k.to_be_bytes());
    }
    v
}

/// Run the simulation.
pub fn run(args: &SimArgs) -> Result<SimReport, String> {
    let imp = |seed: u64| Impairments {
        seed,
        loss: args.loss,
        duplicate: args.duplicate,
        reorder: args.reorder,
        corrupt: args.corrupt,
        delay: Duration::from_millis(args.delay_ms),
        rate_bps: (args.rate_mbps > 0).then(|| args.rate_mbps.saturating_mul(1_000_000)),
        ..Default::default()
    };
    let cfg = LinkConfig {
        mtu: args.mtu as usize,
        a_to_b: imp(args.seed),
        b_to_a: imp(args.seed.wrapping_add(1)),
        ..Default::default()
    };
    let capture = match &args.pcap {
        Some(path) => {
            Some(Arc::new(PcapCapture::create(path).map_err(|e| {
                format!("cannot create {}: {e}", path.display())
            })?))
        }
        None => None,
    };
    let (ea, eb) = match &capture {
        Some(c) => link::pair_with_capture(cfg, Arc::clone(c)),
        None => link::pair(cfg),
    };
    let mut a = Host::new(ea, 1, args.seed.wrapping_mul(3))?;
    let mut b = Host::new(eb, 2, args.seed.wrapping_mul(5))?;
    let b_addr = Ipv4Addr::new(10, 0, 0, 2);
    let echo_port = 7;
    let big = UdpSocketOptions {
        rx_bytes: 1 << 20,
        rx_datagrams: 4096,
        tx_bytes: 1 << 20,
        tx_datagrams: 4096,
    };
    let ua = a
        .stack
        .udp_bind_with(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0), big)
        .map_err(|e| e.to_string())?;
    let ub = b
        .stack
        .udp_bind_with(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, echo_port), big)
        .map_err(|e| e.to_string())?;
    let ping = a.stack.icmp_bind(0x7270).map_err(|e| e.to_string())?;
    // B runs the built-in TCP echo server; A streams through it.
    let mut servers = rumpnet::servers::Servers::start(
        &mut b.stack,
        rumpnet::servers::ServerPorts {
            echo: Some(echo_port),
            ..Default::default()
        },
    )?;
    let tcp_total = args.tcp;
    let tcp = if tcp_total > 0 {
        Some(
            a.stack
                .tcp_connect(SocketAddrV4::new(b_addr, echo_port))
                .map_err(|e| format!("tcp connect: {e}"))?,
        )
    } else {
        None
    };
    let mut tcp_hash_out = Fnv::new();
    let mut tcp_hash_in = Fnv::new();
    let mut tcp_chunk = vec![0u8; 64 * 1024];
    let mut tcp_done = tcp.is_none();

    let mut report = SimReport::default();
    let start = Instant::from_secs(1);
    let mut now = start;
    let step = Duration::from_micros(100);
    let size = args.size as usize;
    let mut ping_sent_at: Vec<Option<Instant>> = vec![None; usize::from(args.pings)];
    let mut answered = vec![false; usize::from(args.pings)];
    let mut udp_seen = vec![false; args.udp as usize];
    let mut buf = vec![0u8; 65536];
    // Pace the sends: one ping every 10 ms, UDP as fast as the socket queue takes them.
    // Generous: a lossy link can need many retransmission timeouts for TCP.
    let deadline = start
        + Duration::from_secs(
            5 + u64::from(args.pings) / 100 + u64::from(args.udp) / 1000 + 120 + args.tcp / 50_000,
        );
    let mut next_udp = 0u32;
    let mut idle_since: Option<Instant> = None;
    while now < deadline {
        let k = ((now - start).as_millis() / 10) as usize;
        if k < ping_sent_at.len()
            && ping_sent_at[k].is_none()
            && a.stack
                .icmp_send_echo(ping, b_addr, k as u16, b"rumpnet sim ping")
                .is_ok()
        {
            ping_sent_at[k] = Some(now);
            report.pings_sent += 1;
        }
        // UDP starts once ARP had time to resolve (the first ping does it): datagrams
        // sent before then would wait in the small ARP queue, and most be dropped,
        // as in any IP stack.
        while next_udp < args.udp && now - start >= Duration::from_millis(20) {
            match a.stack.udp_send_to(
                ua,
                &payload(next_udp, size),
                SocketAddrV4::new(b_addr, echo_port),
            ) {
                Ok(()) => {
                    next_udp += 1;
                    report.udp_sent += 1;
                }
                Err(UdpError::WouldBlock) => break,
                Err(e) => return Err(format!("udp send: {e}")),
            }
        }
        let busy_a = a.poll(now);
        let busy_b = b.poll(now);
        servers.run(&mut b.stack);
        if let (Some(c), false) = (tcp, tcp_done) {
            // Send the next piece of the pattern stream, read what came back.
            while report.tcp_sent < tcp_total {
                let n = (tcp_total - report.tcp_sent).min(tcp_chunk.len() as u64) as usize;
                for (i, b) in tcp_chunk[..n].iter_mut().enumerate() {
                    *b = pattern_byte(report.tcp_sent + i as u64);
                }
                match a.stack.tcp_send(c, &tcp_chunk[..n]) {
                    Ok(k) => {
                        tcp_hash_out.update(&tcp_chunk[..k]);
                        report.tcp_sent += k as u64;
                        if report.tcp_sent == tcp_total {
                            let _ = a.stack.tcp_shutdown(c);
                        }
                    }
                    Err(_) => break,
                }
            }
            loop {
                match a.stack.tcp_recv(c, &mut buf) {
                    Ok(0) => {
                        tcp_done = true;
                        report.tcp_time = Some(now - start);
                        break;
                    }
                    Ok(n) => {
                        tcp_hash_in.update(&buf[..n]);
                        report.tcp_echoed += n as u64;
                    }
                    Err(_) => break,
                }
            }
        }
        // B echoes every datagram back to its sender.
        while let Ok((n, from)) = b.stack.udp_recv_from(ub, &mut buf) {
            if n <= buf.len() {
                let _ = b.stack.udp_send_to(ub, &buf[..n], from);
            }
        }
        while let Ok((n, _)) = a.stack.udp_recv_from(ua, &mut buf) {
            report.udp_echoed += 1;
            if n >= 4 || size < 4 {
                let k = if size >= 4 {
                    u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]])
                } else {
                    0
                };
                let fresh = udp_seen.get(k as usize) == Some(&false);
                if fresh && n == size && buf[..n] == payload(k, size)[..] {
                    udp_seen[k as usize] = true;
                    report.udp_intact += 1;
                }
            }
        }
        while let Ok(r) = a.stack.icmp_recv(ping, &mut buf) {
            let i = usize::from(r.seq_no);
            if let (Some(Some(t0)), false) = (
                ping_sent_at.get(i),
                answered.get(i).copied().unwrap_or(true),
            ) {
                answered[i] = true;
                report.pings_answered += 1;
                let rtt = now - *t0;
                report.rtt_min = Some(report.rtt_min.map_or(rtt, |m| m.min(rtt)));
                report.rtt_max = Some(report.rtt_max.map_or(rtt, |m| m.max(rtt)));
            }
        }
        let all_sent = report.pings_sent == args.pings && next_udp == args.udp && tcp_done;
        let all_back = report.pings_answered == args.pings && report.udp_intact == args.udp;
        if all_sent && all_back {
            break;
        }
        // With loss, some never come back: stop 1 s after the last send went quiet.
        if all_sent {
            let since = *idle_since.get_or_insert(now);
            if now - since > Duration::from_secs(1) {
                break;
            }
        }
        // Skip idle stretches (retransmission timeouts, delays) in one jump.
        let mut next = now + step;
        let pending_sends = (next_udp < args.udp && now - start >= Duration::from_millis(20))
            || (tcp.is_some() && !tcp_done && report.tcp_sent < tcp_total);
        if !busy_a && !busy_b && !pending_sends {
            let ping_due = ping_sent_at
                .iter()
                .position(|t| t.is_none())
                .map(|k| start + Duration::from_millis(10 * k as u64));
            let udp_due = (next_udp < args.udp).then(|| start + Duration::from_millis(20));
            let wake = [a.next_event(), b.next_event(), ping_due, udp_due]
                .into_iter()
                .flatten()
                .min();
            if let Some(w) = wake {
                next = next.max(w);
            } else {
                next = next.max(now + Duration::from_millis(100));
            }
        }
        now = next;
    }
    report.virtual_time = now - start;
    report.tcp_intact =
        tcp_done && report.tcp_echoed == tcp_total && tcp_hash_in.0 == tcp_hash_out.0;
    report.tcp_retransmits = a.stack.stats().tcp_retransmits + b.stack.stats().tcp_retransmits;
    if let Some(c) = &capture {
        c.flush().map_err(|e| format!("pcap: {e}"))?;
    }

    let t = &mut report.text;
    let _ = writeln!(
        t,
        "rumpnet sim: 10.0.0.1 <-> 10.0.0.2 over the in-memory link (mtu {}, loss {}, duplicate {}, reorder {}, corrupt {}, delay {} ms, rate {}, seed {})",
        args.mtu,
        args.loss,
        args.duplicate,
        args.reorder,
        args.corrupt,
        args.delay_ms,
        if args.rate_mbps == 0 { "unlimited".to_string() } else { format!("{} Mbit/s", args.rate_mbps) },
        args.seed
    );
    let _ = writeln!(
        t,
        "ping: {} sent, {} answered{}",
        report.pings_sent,
        report.pings_answered,
        match (report.rtt_min, report.rtt_max) {
            (Some(lo), Some(hi)) => format!(
                ", rtt min {:.3} ms max {:.3} ms (virtual)",
                lo.as_secs_f64() * 1e3,
                hi.as_secs_f64() * 1e3
            ),
            _ => String::new(),
        }
    );
    let _ = writeln!(
        t,
        "udp echo: {} datagrams of {} bytes sent, {} echoed back intact ({} received in all)",
        report.udp_sent, size, report.udp_intact, report.udp_echoed
    );
    let _ = writeln!(
        t,
        "tcp echo: {} bytes sent, {} echoed back, {}{}, {} segments retransmitted",
        report.tcp_sent,
        report.tcp_echoed,
        if report.tcp_intact {
            "intact (hash matches)"
        } else {
            "NOT intact"
        },
        match report.tcp_time {
            Some(d) if d > Duration::ZERO => format!(
                " in {:.3} s virtual ({:.1} Mbit/s each way)",
                d.as_secs_f64(),
                report.tcp_sent as f64 * 8.0 / d.as_secs_f64() / 1e6
            ),
            _ => String::new(),
        },
        report.tcp_retransmits
    );
    let _ = writeln!(
        t,
        "virtual time: {:.3} s",
        report.virtual_time.as_secs_f64()
    );
    let la = a.ports[0].device().stats();
    let lb = b.ports[0].device().stats();
    let _ = writeln!(
        t,
        "link A->B: {} sent, {} lost, {} duplicated, {} reordered, {} corrupted, {} queue-dropped",
        la.sent, la.lost, la.duplicated, la.reordered, la.corrupted, la.queue_dropped
    );
    let _ = writeln!(
        t,
        "link B->A: {} sent, {} lost, {} duplicated, {} reordered, {} corrupted, {} queue-dropped",
        lb.sent, lb.lost, lb.duplicated, lb.reordered, lb.corrupted, lb.queue_dropped
    );
    let _ = writeln!(t, "host A counters:\n{}", a.stack.stats());
    let _ = write!(t, "host B counters:\n{}", b.stack.stats());
    if let Some(p) = &args.pcap {
        let _ = write!(
            t,
            "\ncapture: {} frames in {}",
            capture.as_ref().map_or(0, |c| c.frames()),
            p.display()
        );
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        sim: SimArgs,
    }

    fn args(extra: &[&str]) -> SimArgs {
        let mut v = vec!["t"];
        v.extend_from_slice(extra);
        T::try_parse_from(v).unwrap().sim
    }

    #[test]
    fn clean_link_everything_comes_back() {
        let r = run(&args(&[
            "--pings", "5", "--udp", "50", "--size", "3000", "--tcp", "4000000",
        ]))
        .unwrap();
        assert_eq!((r.pings_sent, r.pings_answered), (5, 5));
        assert_eq!((r.udp_sent, r.udp_intact), (50, 50));
        assert!(r.tcp_intact, "{}", r.text);
        assert_eq!(r.tcp_echoed, 4_000_000);
        // 1 ms each way, polled every 100 us.
        let rtt = r.rtt_min.unwrap();
        assert!(
            rtt >= Duration::from_millis(2) && rtt < Duration::from_millis(3),
            "{rtt:?}"
        );
        assert!(r.text.contains("datagrams reassembled"));
    }

    #[test]
    fn impaired_link_still_delivers_only_intact_data() {
        let r = run(&args(&[
            "--udp",
            "200",
            "--size",
            "2000",
            "--tcp",
            "300000",
            "--loss",
            "0.02",
            "--reorder",
            "0.2",
            "--duplicate",
            "0.1",
            "--corrupt",
            "0.05",
            "--seed",
            "7",
        ]))
        .unwrap();
        // Fragmented datagrams die with any lost fragment; most still make it.
        assert!(r.udp_intact > 100, "{}", r.text);
        assert!(
            r.udp_intact < 200,
            "with 2% loss per frame some must be lost: {}",
            r.text
        );
    }

    #[test]
    fn bad_probability_is_a_usage_error() {
        assert!(T::try_parse_from(["t", "--loss", "1.5"]).is_err());
        assert!(T::try_parse_from(["t", "--loss", "abc"]).is_err());
        assert!(T::try_parse_from(["t", "--mtu", "20"]).is_err());
    }
}
