//! The TAP backend against the real Linux kernel.
//!
//! Each test creates a TAP interface with a name unique to this run, moves it into a
//! network namespace it creates (so every address it configures and every packet it
//! provokes stays inside that namespace), runs the rumpnet stack or hand-built frames on
//! the TAP file, and checks the result with real tools (`ping`, Python sockets) run in
//! the namespace. The namespaces are removed by a guard, also when a test fails.
//!
//! Creating interfaces and namespaces needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN).
//! Without it these tests print why and pass, except under `CI=true`, where a skip is a
//! failure. The error-path tests at the top need no privilege.

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use rumpnet_io_tap::{
    ImpairSpec, ImpairedDevice, TapDevice, TapError, TapOptions, TapStats, MAX_IP_PACKET,
};
use rumpnet_stack::device::{Device, Frame, HeapFrame, L4Proto, TxOffload};
use rumpnet_stack::iface::{InterfaceConfig, Port};
use rumpnet_stack::rand::Rand;
use rumpnet_stack::tcp::{TcpHandle, TcpListenerHandle};
use rumpnet_stack::time::Instant;
use rumpnet_stack::wire::checksum;
use rumpnet_stack::wire::{EthernetAddress, IpProtocol, Ipv4Cidr};
use rumpnet_stack::{Stack, StackConfig};

// ---------------------------------------------------------------- error paths (no root)

#[test]
fn a_name_of_16_bytes_is_too_long() {
    let e = TapDevice::open("abcdefghijklmnop", &TapOptions::default()).unwrap_err();
    assert!(matches!(e, TapError::NameTooLong { len: 16, .. }), "{e:?}");
    assert!(e.to_string().contains("at most 15"), "{e}");
    let e = TapDevice::open_queues("abcdefghijklmnopq", 2, &TapOptions::default()).unwrap_err();
    assert!(matches!(e, TapError::NameTooLong { len: 17, .. }), "{e:?}");
}

#[test]
fn names_the_kernel_would_refuse_are_invalid() {
    for name in ["a/b", "a:b", "a b", "..", "."] {
        let e = TapDevice::open(name, &TapOptions::default()).unwrap_err();
        assert!(matches!(e, TapError::InvalidName { .. }), "{name}: {e:?}");
    }
}

#[test]
fn a_missing_tun_device_is_reported_as_such() {
    let opts = TapOptions {
        tun_path: PathBuf::from("/nonexistent/net/tun"),
        ..TapOptions::default()
    };
    let e = TapDevice::open("rtnone0", &opts).unwrap_err();
    assert!(matches!(e, TapError::NoTunDevice { .. }), "{e:?}");
    assert!(e.to_string().contains("/nonexistent/net/tun"), "{e}");
    assert!(e.to_string().contains("tun"), "{e}");
    // A path that exists but is not the TUN device: TUNSETIFF is not its ioctl.
    let opts = TapOptions {
        tun_path: PathBuf::from("/dev/null"),
        ..TapOptions::default()
    };
    let e = TapDevice::open("rtnone0", &opts).unwrap_err();
    assert!(matches!(e, TapError::NoTunDevice { .. }), "{e:?}");
}

#[test]
fn queue_counts_outside_1_to_256_are_refused() {
    for n in [0, 257] {
        let e = TapDevice::open_queues("rtq", n, &TapOptions::default()).unwrap_err();
        assert!(
            matches!(e, TapError::BadQueueCount { requested, max: 256 } if requested == n),
            "{e:?}"
        );
    }
}

// ---------------------------------------------------------------- harness

/// The effective uid, from /proc (no libc call needed).
fn euid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// Whether a root-only test can run; prints why not. Under `CI=true` a skip fails.
fn can_run(test: &str) -> bool {
    let why = if euid() != Some(0) {
        "needs root (CAP_NET_ADMIN) to create TAP interfaces and network namespaces"
    } else if !std::path::Path::new("/dev/net/tun").exists() {
        "needs /dev/net/tun"
    } else if Command::new("ip").arg("-V").output().is_err() {
        "needs the `ip` tool (iproute2; scripts/install-deps.sh)"
    } else {
        return true;
    };
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test}: {why}; under CI=true a skipped test is a failure");
    }
    // Straight to the stream, past libtest's capture, so the skip is seen.
    let _ = writeln!(std::io::stderr(), "skipping {test}: {why}");
    false
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Per-test identifiers unique to this run: a TAP name, a namespace name, and a /24 of
/// 10/8 that exists only inside the namespace.
struct Ids {
    n: usize,
    tap: String,
    ns: String,
}

fn ids() -> Ids {
    let n = COUNTER.fetch_add(1, SeqCst);
    let pid = std::process::id();
    Ids {
        n,
        tap: format!("rt{}x{}", pid % 1_000_000, n),
        ns: format!("rumpnet-tap-{pid}-{n}"),
    }
}

/// `10.<a>.<b>.host`: `a` from the pid, `b` from the test counter (and `sub` for a
/// second subnet of the same test).
fn addr(ids: &Ids, sub: u8, host: u8) -> Ipv4Addr {
    let a = 16 + (std::process::id() % 200) as u8;
    let b = (ids.n as u8).wrapping_mul(4).wrapping_add(sub);
    Ipv4Addr::new(10, a, b, host)
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    out
}

fn must(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn ip(args: &[&str]) -> String {
    must(Command::new("ip").args(args))
}

fn python() -> String {
    // The interpreter the test runner sees (a pyenv shim resolves here, outside the
    // namespace's mount of /sys).
    let out = run(Command::new("python3").args(["-c", "import sys; print(sys.executable)"]));
    assert!(out.status.success(), "python3 is needed for the TAP tests");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A network namespace of our own, deleted on drop (also when the test panics).
struct Netns {
    name: String,
}

impl Netns {
    fn new(name: &str) -> Netns {
        ip(&["netns", "add", name]);
        let ns = Netns {
            name: name.to_string(),
        };
        ip(&["-n", name, "link", "set", "lo", "up"]);
        ns
    }

    /// A command run inside the namespace, bounded by `secs` seconds.
    fn cmd(&self, secs: u32, args: &[&str]) -> Command {
        let mut c = Command::new("timeout");
        c.arg(secs.to_string())
            .args(["ip", "netns", "exec", &self.name])
            .args(args);
        c
    }

    fn ip(&self, args: &[&str]) -> String {
        let mut full = vec!["-n", &self.name];
        full.extend_from_slice(args);
        ip(&full)
    }

    /// Run a Python script in the namespace.
    fn python(&self, secs: u32, script: &str, args: &[&str]) -> Output {
        let py = python();
        let mut full = vec![py.as_str(), "-c", script];
        full.extend_from_slice(args);
        run(&mut self.cmd(secs, &full))
    }

    /// Move interface `dev` (in our namespace) into this one, give it `cidr` and bring
    /// it up.
    fn adopt(&self, dev: &str, cidr: &str) {
        ip(&["link", "set", dev, "netns", &self.name]);
        self.ip(&["addr", "add", cidr, "dev", dev]);
        self.ip(&["link", "set", dev, "up"]);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stderr(Stdio::null())
            .status();
    }
}

/// A child process killed on drop (a server left behind by a failed test).
struct Reaper(Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const STACK_MAC: EthernetAddress = EthernetAddress([0x02, 0x52, 0x55, 0x4d, 0x50, 0x01]);

/// What the poll loop needs from a device beyond [`Device`].
trait Waiting: Device<Frame = HeapFrame> + Send + 'static {
    fn idle_for(&mut self, timeout: Duration);
    fn tap_stats(&self) -> TapStats;
}

impl Waiting for TapDevice {
    fn idle_for(&mut self, timeout: Duration) {
        self.idle(Some(timeout)).expect("epoll");
    }
    fn tap_stats(&self) -> TapStats {
        self.stats()
    }
}

impl Waiting for ImpairedDevice<TapDevice> {
    fn idle_for(&mut self, timeout: Duration) {
        self.idle(Some(timeout)).expect("epoll");
    }
    fn tap_stats(&self) -> TapStats {
        self.inner().stats()
    }
}

/// What the stack thread reports when stopped.
struct Report {
    tap: TapStats,
    stack: String,
}

/// A rumpnet stack polling one device on its own thread, with `app` called after every
/// poll (it returns whether it did anything, so the loop flushes instead of sleeping).
struct StackThread {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<Report>>,
}

impl StackThread {
    fn spawn<D: Waiting>(
        dev: D,
        cidr: Ipv4Cidr,
        mut app: impl FnMut(&mut Stack) -> bool + Send + 'static,
    ) -> StackThread {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let handle = std::thread::spawn(move || {
            let mut stack = Stack::new(StackConfig::default(), Rand::from_u64(0x7a9));
            stack
                .add_interface(InterfaceConfig::new(STACK_MAC, cidr))
                .expect("interface");
            let mut ports = [Port::new(dev)];
            let epoch = std::time::Instant::now();
            let clock = || Instant::from_micros(epoch.elapsed().as_micros() as u64);
            while !flag.load(SeqCst) {
                let r = stack.poll(clock(), &mut ports);
                let busy = app(&mut stack);
                if busy {
                    stack.poll(clock(), &mut ports);
                }
                if r.rx_frames == 0 && !busy {
                    let now = clock();
                    let next = stack
                        .poll_at()
                        .map(|at| at.total_micros().saturating_sub(now.total_micros()))
                        .unwrap_or(10_000);
                    ports[0]
                        .device_mut()
                        .idle_for(Duration::from_micros(next.min(10_000)));
                }
            }
            Report {
                tap: ports[0].device().tap_stats(),
                stack: format!("{:?}", stack.stats()),
            }
        });
        StackThread {
            stop,
            handle: Some(handle),
        }
    }

    fn stop(mut self) -> Report {
        self.stop.store(true, SeqCst);
        let h = self.handle.take().expect("running");
        h.join().expect("the stack thread panicked")
    }
}

impl Drop for StackThread {
    fn drop(&mut self) {
        self.stop.store(true, SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// A UDP echo server on `port`.
fn udp_echo(port: u16) -> impl FnMut(&mut Stack) -> bool + Send + 'static {
    let mut sock = None;
    move |stack: &mut Stack| {
        let h = *sock.get_or_insert_with(|| {
            stack
                .udp_bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port))
                .expect("udp bind")
        });
        let mut buf = [0u8; 2048];
        let mut did = false;
        while let Ok((n, from)) = stack.udp_recv_from(h, &mut buf) {
            stack.udp_send_to(h, &buf[..n], from).expect("udp send");
            did = true;
        }
        did
    }
}

/// A TCP echo server on `port`: echoes every connection until the peer closes.
fn tcp_echo(port: u16) -> impl FnMut(&mut Stack) -> bool + Send + 'static {
    let mut listener: Option<TcpListenerHandle> = None;
    let mut conns: Vec<(TcpHandle, Vec<u8>, bool)> = Vec::new();
    let mut buf = vec![0u8; 65536];
    move |stack: &mut Stack| {
        let l = *listener.get_or_insert_with(|| {
            stack
                .tcp_listen(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port), 16)
                .expect("listen")
        });
        let mut did = false;
        while let Ok((h, _)) = stack.tcp_accept(l) {
            conns.push((h, Vec::new(), false));
            did = true;
        }
        conns.retain_mut(|(h, pending, eof)| {
            while pending.len() < 1 << 18 && !*eof {
                match stack.tcp_recv(*h, &mut buf) {
                    Ok(0) => *eof = true,
                    Ok(n) => {
                        pending.extend_from_slice(&buf[..n]);
                        did = true;
                    }
                    Err(_) => break,
                }
            }
            if !pending.is_empty() {
                if let Ok(n) = stack.tcp_send(*h, pending) {
                    pending.drain(..n);
                    did |= n > 0;
                }
            }
            if *eof && pending.is_empty() {
                let _ = stack.tcp_close(*h);
                return false;
            }
            stack.tcp_error(*h).map(|e| e.is_none()).unwrap_or(false)
        });
        did
    }
}

/// A TAP in a fresh namespace: the kernel side is `10.a.b.1/24`, the stack `10.a.b.2`.
struct Rig {
    ns: Netns,
    ids: Ids,
    stack: Ipv4Addr,
}

/// Open a TAP with `opts`, move it into a new namespace and address the kernel side.
fn rig(opts: &TapOptions) -> (Rig, TapDevice) {
    let ids = ids();
    let tap = TapDevice::open(&ids.tap, opts).expect("open tap");
    assert_eq!(tap.name(), ids.tap);
    let ns = Netns::new(&ids.ns);
    let host = addr(&ids, 0, 1);
    let stack = addr(&ids, 0, 2);
    ns.adopt(&ids.tap, &format!("{host}/24"));
    (Rig { ns, ids, stack }, tap)
}

impl Rig {
    fn stack_cidr(&self) -> Ipv4Cidr {
        Ipv4Cidr::new(self.stack, 24).expect("cidr")
    }
}

const UDP_CLIENT: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(1.0)
msg = b"rumpnet over tap " + sys.argv[3].encode()
for attempt in range(5):
    s.sendto(msg, (sys.argv[1], int(sys.argv[2])))
    try:
        data, peer = s.recvfrom(2048)
    except socket.timeout:
        continue
    print("reply", data.decode(), peer[0])
    sys.exit(0 if data == msg else 1)
print("no reply")
sys.exit(1)
"#;

fn ping_and_udp_echo(offloads: bool) {
    let opts = TapOptions {
        offloads,
        ..TapOptions::default()
    };
    let (rig, tap) = rig(&opts);
    let stack = StackThread::spawn(tap, rig.stack_cidr(), udp_echo(7));
    let target = rig.stack.to_string();
    let out = run(&mut rig
        .ns
        .cmd(20, &["ping", "-c", "3", "-W", "1", "-i", "0.2", &target]));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "ping failed:\n{text}");
    assert!(text.contains("3 received"), "{text}");
    let out = rig.ns.python(20, UDP_CLIENT, &[&target, "7", &rig.ids.tap]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "udp echo: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(&format!("reply rumpnet over tap {}", rig.ids.tap)),
        "{text}"
    );
    assert!(text.contains(&target), "{text}");
    let report = stack.stop();
    assert!(report.tap.rx_frames >= 4, "{:?}", report.tap);
    assert!(report.tap.tx_frames >= 4, "{:?}", report.tap);
    assert_eq!(
        report.tap.rx_errors + report.tap.tx_errors,
        0,
        "{:?}",
        report.tap
    );
    if offloads {
        // The kernel leaves the UDP checksum of its datagram to the "device"...
        assert!(report.tap.rx_csum_partial >= 1, "{:?}", report.tap);
        // ...and the stack leaves the one of its echo to the kernel.
        assert!(report.tap.tx_csum_offload >= 1, "{:?}", report.tap);
    } else {
        assert_eq!(report.tap.rx_csum_partial, 0);
        assert_eq!(report.tap.tx_csum_offload, 0);
    }
}

#[test]
fn kernel_pings_the_stack_and_gets_udp_echoed_with_offloads() {
    if can_run("kernel_pings_the_stack_and_gets_udp_echoed_with_offloads") {
        ping_and_udp_echo(true);
    }
}

#[test]
fn kernel_pings_the_stack_and_gets_udp_echoed_without_offloads() {
    if can_run("kernel_pings_the_stack_and_gets_udp_echoed_without_offloads") {
        ping_and_udp_echo(false);
    }
}

const TCP_CLIENT: &str = r#"
import socket, sys, threading, hashlib
size = int(sys.argv[3])
data = bytes((i * 131 + (i >> 8)) & 0xff for i in range(size))
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=30)
def writer():
    # Large writes: with offloads the kernel hands the TAP 64 KB GSO frames.
    view = memoryview(data)
    while view:
        n = s.send(view[:262144])
        view = view[n:]
    s.shutdown(socket.SHUT_WR)
t = threading.Thread(target=writer)
t.start()
got = bytearray()
while True:
    chunk = s.recv(262144)
    if not chunk:
        break
    got += chunk
t.join()
print("echoed", len(got), hashlib.sha256(got).hexdigest() == hashlib.sha256(data).hexdigest())
sys.exit(0 if bytes(got) == data else 1)
"#;

fn tcp_echo_1mb(offloads: bool) {
    let opts = TapOptions {
        offloads,
        ..TapOptions::default()
    };
    let (rig, tap) = rig(&opts);
    let stack = StackThread::spawn(tap, rig.stack_cidr(), tcp_echo(5001));
    let target = rig.stack.to_string();
    let size = (1 << 20).to_string();
    let out = rig.ns.python(60, TCP_CLIENT, &[&target, "5001", &size]);
    let report = stack.stop();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "tcp echo failed: {text}{}\ntap: {:?}\nstack: {}",
        String::from_utf8_lossy(&out.stderr),
        report.tap,
        report.stack
    );
    assert!(text.contains("echoed 1048576 True"), "{text}");
    assert_eq!(
        report.tap.rx_errors + report.tap.tx_errors,
        0,
        "{:?}",
        report.tap
    );
    assert_eq!(
        report.tap.rx_oversize + report.tap.rx_runt,
        0,
        "{:?}",
        report.tap
    );
    if offloads {
        // The kernel's TCP sent segments larger than the MTU, and the stack took them.
        assert!(
            report.tap.rx_gso > 0,
            "no GSO frame received: {:?}",
            report.tap
        );
        assert!(report.tap.rx_csum_partial > 0, "{:?}", report.tap);
        assert!(report.tap.tx_csum_offload > 0, "{:?}", report.tap);
        assert!(
            report.tap.rx_frames < 1024,
            "1 MB in {} frames is no GSO",
            report.tap.rx_frames
        );
    } else {
        assert_eq!(report.tap.rx_gso, 0);
        assert!(report.tap.rx_frames > 700, "{:?}", report.tap);
    }
}

#[test]
fn tcp_echo_of_1_mb_with_offloads_takes_gso_frames_from_the_kernel() {
    if can_run("tcp_echo_of_1_mb_with_offloads_takes_gso_frames_from_the_kernel") {
        tcp_echo_1mb(true);
    }
}

#[test]
fn tcp_echo_of_1_mb_without_offloads() {
    if can_run("tcp_echo_of_1_mb_without_offloads") {
        tcp_echo_1mb(false);
    }
}

// ---------------------------------------------------------------- hand-built offloads

fn ipv4_header(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, payload: usize, id: u16) -> [u8; 20] {
    let mut h = [0u8; 20];
    h[0] = 0x45;
    let total = (20 + payload) as u16;
    h[2..4].copy_from_slice(&total.to_be_bytes());
    h[4..6].copy_from_slice(&id.to_be_bytes());
    h[6] = 0x40; // DF
    h[8] = 64;
    h[9] = proto;
    h[12..16].copy_from_slice(&src.octets());
    h[16..20].copy_from_slice(&dst.octets());
    let c = checksum::finish(&[checksum::sum(&h)]);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h
}

/// An Ethernet + IPv4 + transport frame in a TX buffer of `dev`, the transport's
/// checksum field holding `csum`.
fn build_frame(
    dev: &mut TapDevice,
    dst_mac: EthernetAddress,
    ip: [u8; 20],
    l4: &[u8],
    payload: &[u8],
) -> HeapFrame {
    let len = 14 + 20 + l4.len() + payload.len();
    let mut f = dev.alloc_tx(len).expect("tx buffer");
    let d = f.data_mut();
    d[0..6].copy_from_slice(&dst_mac.0);
    d[6..12].copy_from_slice(&STACK_MAC.0);
    d[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    d[14..34].copy_from_slice(&ip);
    d[34..34 + l4.len()].copy_from_slice(l4);
    d[34 + l4.len()..].copy_from_slice(payload);
    f
}

fn tcp_header(sport: u16, dport: u16, seq: u32, ack: u32, flags: u8, opts: &[u8]) -> Vec<u8> {
    let mut h = vec![0u8; 20 + opts.len()];
    h[0..2].copy_from_slice(&sport.to_be_bytes());
    h[2..4].copy_from_slice(&dport.to_be_bytes());
    h[4..8].copy_from_slice(&seq.to_be_bytes());
    h[8..12].copy_from_slice(&ack.to_be_bytes());
    h[12] = (((20 + opts.len()) / 4) as u8) << 4;
    h[13] = flags;
    h[14..16].copy_from_slice(&65535u16.to_be_bytes());
    h[20..].copy_from_slice(opts);
    h
}

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const PSH: u8 = 0x08;

/// Fill in a full software TCP/UDP checksum (for frames sent without offload).
fn full_l4_checksum(
    f: &mut HeapFrame,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    proto: IpProtocol,
    off: usize,
) {
    let d = f.data_mut();
    let l4 = &mut d[34..];
    l4[off..off + 2].fill(0);
    let ph = checksum::pseudo_header_v4(src, dst, proto, l4.len() as u16);
    let c = checksum::finish(&[ph, checksum::sum(l4)]);
    l4[off..off + 2].copy_from_slice(&c.to_be_bytes());
}

/// Put the pseudo-header sum in the checksum field, for the kernel to finish.
fn partial_l4_checksum(
    f: &mut HeapFrame,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    proto: IpProtocol,
    off: usize,
) {
    let d = f.data_mut();
    let l4 = &mut d[34..];
    let ph = checksum::pseudo_header_v4(src, dst, proto, l4.len() as u16);
    l4[off..off + 2].copy_from_slice(&ph.to_be_bytes());
}

fn send(dev: &mut TapDevice, f: HeapFrame) {
    let mut v = vec![f];
    assert_eq!(dev.tx_burst(0, &mut v), 1);
}

/// Read frames until `pick` accepts one or `secs` pass.
fn await_frame<T>(
    dev: &mut TapDevice,
    secs: u64,
    mut pick: impl FnMut(&[u8]) -> Option<T>,
) -> Option<T> {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    let mut v = Vec::new();
    while std::time::Instant::now() < deadline {
        v.clear();
        dev.rx_burst(0, &mut v, 32);
        for f in &v {
            if let Some(t) = pick(f.data()) {
                return Some(t);
            }
        }
        if v.is_empty() {
            dev.wait(Some(Duration::from_millis(50))).expect("wait");
        }
    }
    None
}

/// The sequence number of a SYN-ACK from `from:port`, if `frame` is one.
fn syn_ack(frame: &[u8], from: Ipv4Addr, port: u16) -> Option<u32> {
    if frame.get(12..14)? != [0x08, 0x00] || *frame.get(23)? != 6 {
        return None;
    }
    if frame.get(26..30)? != from.octets() {
        return None;
    }
    let ihl = usize::from(frame[14] & 0x0f) * 4;
    let tcp = frame.get(14 + ihl..)?;
    if u16::from_be_bytes([tcp[0], tcp[1]]) != port || tcp[13] & (SYN | ACK) != SYN | ACK {
        return None;
    }
    Some(u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]))
}

const TCP_SINK: &str = r#"
import socket, sys, hashlib
size = int(sys.argv[3])
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind((sys.argv[1], int(sys.argv[2])))
l.listen(1)
l.settimeout(20)
print("ready", flush=True)
c, peer = l.accept()
c.settimeout(20)
got = bytearray()
while len(got) < size:
    chunk = c.recv(65536)
    if not chunk:
        break
    got += chunk
print("got", len(got), hashlib.sha256(got).hexdigest(), flush=True)
"#;

const UDP_SINK: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
s.settimeout(5)
print("ready", flush=True)
try:
    data, peer = s.recvfrom(4096)
    print("first", data.decode(), flush=True)
except socket.timeout:
    print("nothing", flush=True)
"#;

/// Start a Python server in `ns` and wait for its "ready" line.
fn start_server(
    ns: &Netns,
    script: &str,
    args: &[&str],
) -> (Reaper, BufReader<std::process::ChildStdout>) {
    let py = python();
    let mut full = vec![py.as_str(), "-c", script];
    full.extend_from_slice(args);
    let mut child = ns
        .cmd(40, &full)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn python");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    out.read_line(&mut line).expect("server output");
    assert_eq!(line.trim(), "ready", "server did not start");
    (Reaper(child), out)
}

fn read_line(out: &mut BufReader<std::process::ChildStdout>) -> String {
    let mut line = String::new();
    out.read_line(&mut line).expect("server output");
    line.trim().to_string()
}

fn rx_packets(ns: &Netns, dev: &str) -> u64 {
    let path = format!("/sys/class/net/{dev}/statistics/rx_packets");
    must(&mut ns.cmd(10, &["cat", &path]))
        .trim()
        .parse()
        .expect("counter")
}

/// The kernel must finish what the TAP asked through the virtio-net header: a UDP
/// checksum left partial (the control without the request is dropped by the receiver),
/// and a 60,000-byte TCP segment cut into MSS-sized packets with correct checksums.
///
/// To check the work was really done, the kernel forwards the frames: namespace `r`
/// holds the TAP and routes to namespace `s` over a veth pair whose checksum and
/// segmentation offloads are off, so the kernel must checksum and segment in software
/// before `s` receives (and verifies) every packet.
#[test]
fn kernel_finishes_checksums_and_cuts_tso_frames_the_tap_sends() {
    if !can_run("kernel_finishes_checksums_and_cuts_tso_frames_the_tap_sends") {
        return;
    }
    let ids = ids();
    let mut tap = TapDevice::open(&ids.tap, &TapOptions::default()).expect("open tap");
    assert!(tap.offloads());
    let host_mac = tap.host_mac().expect("mac");
    let r = Netns::new(&ids.ns);
    let s = Netns::new(&format!("{}s", ids.ns));
    let stack_ip = addr(&ids, 0, 2);
    let router_tap = addr(&ids, 0, 1);
    let router_veth = addr(&ids, 1, 1);
    let server = addr(&ids, 1, 2);
    r.adopt(&ids.tap, &format!("{router_tap}/24"));
    let (va, vb) = (format!("{}a", ids.tap), format!("{}b", ids.tap));
    r.ip(&[
        "link", "add", &va, "type", "veth", "peer", "name", &vb, "netns", &s.name,
    ]);
    r.ip(&["addr", "add", &format!("{router_veth}/24"), "dev", &va]);
    r.ip(&["link", "set", &va, "up"]);
    s.ip(&["addr", "add", &format!("{server}/24"), "dev", &vb]);
    s.ip(&["link", "set", &vb, "up"]);
    s.ip(&[
        "route",
        "add",
        &format!("{}/24", addr(&ids, 0, 0)),
        "via",
        &router_veth.to_string(),
    ]);
    r.ip(&[
        "neigh",
        "add",
        &stack_ip.to_string(),
        "lladdr",
        &STACK_MAC.to_string(),
        "dev",
        &ids.tap,
        "nud",
        "permanent",
    ]);
    must(&mut r.cmd(10, &["sysctl", "-qw", "net.ipv4.ip_forward=1"]));
    let ethtool = run(&mut r.cmd(
        10,
        &[
            "ethtool", "-K", &va, "tx", "off", "tso", "off", "gso", "off", "sg", "off",
        ],
    ));
    assert!(
        ethtool.status.success(),
        "ethtool is needed (scripts/install-deps.sh): {ethtool:?}"
    );

    // UDP: the control carries the pseudo-header sum without asking the kernel to finish
    // it, so the receiver must drop it; the real one asks and must arrive.
    let (_udp, mut udp_out) = start_server(&s, UDP_SINK, &[&server.to_string(), "6001"]);
    for (payload, offload) in [
        (&b"control"[..], false),
        (&b"finished by the kernel"[..], true),
    ] {
        let mut udp = [0u8; 8];
        udp[0..2].copy_from_slice(&40001u16.to_be_bytes());
        udp[2..4].copy_from_slice(&6001u16.to_be_bytes());
        udp[4..6].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        let ip = ipv4_header(stack_ip, server, 17, 8 + payload.len(), 1);
        let mut f = build_frame(&mut tap, host_mac, ip, &udp, payload);
        partial_l4_checksum(&mut f, stack_ip, server, IpProtocol::Udp, 6);
        if offload {
            f.set_tx_offload(TxOffload {
                l2_len: 14,
                l3_len: 20,
                l4_len: 8,
                l4_csum: Some(L4Proto::Udp),
                ..TxOffload::default()
            });
        }
        send(&mut tap, f);
    }
    assert_eq!(read_line(&mut udp_out), "first finished by the kernel");

    // TCP: handshake by hand, then one 60,000-byte TSO frame.
    let size = 60_000usize;
    let payload: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
    let (_tcp, mut tcp_out) = start_server(
        &s,
        TCP_SINK,
        &[&server.to_string(), "6000", &size.to_string()],
    );
    let before = rx_packets(&s, &vb);
    let iss = 0x1000_0000u32;
    let mss_opt = [2, 4, 0x05, 0xb4]; // MSS 1460
    let syn = tcp_header(40000, 6000, iss, 0, SYN, &mss_opt);
    let mut f = build_frame(
        &mut tap,
        host_mac,
        ipv4_header(stack_ip, server, 6, syn.len(), 2),
        &syn,
        &[],
    );
    full_l4_checksum(&mut f, stack_ip, server, IpProtocol::Tcp, 16);
    send(&mut tap, f);
    let irs =
        await_frame(&mut tap, 10, |d| syn_ack(d, server, 6000)).expect("SYN-ACK from the server");
    let ack = tcp_header(40000, 6000, iss + 1, irs + 1, ACK, &[]);
    let mut f = build_frame(
        &mut tap,
        host_mac,
        ipv4_header(stack_ip, server, 6, ack.len(), 3),
        &ack,
        &[],
    );
    full_l4_checksum(&mut f, stack_ip, server, IpProtocol::Tcp, 16);
    send(&mut tap, f);

    let seg = tcp_header(40000, 6000, iss + 1, irs + 1, ACK | PSH, &[]);
    let ip = ipv4_header(stack_ip, server, 6, seg.len() + size, 4);
    let mut f = build_frame(&mut tap, host_mac, ip, &seg, &payload);
    assert!(f.len() > 60_000 && f.len() - 14 <= MAX_IP_PACKET);
    partial_l4_checksum(&mut f, stack_ip, server, IpProtocol::Tcp, 16);
    f.set_tx_offload(TxOffload {
        l2_len: 14,
        l3_len: 20,
        l4_len: 20,
        l4_csum: Some(L4Proto::Tcp),
        tso_mss: 1448,
        ..TxOffload::default()
    });
    send(&mut tap, f);
    let line = read_line(&mut tcp_out);
    let want = must(Command::new(python()).args([
        "-c",
        "import hashlib,sys; print(hashlib.sha256(bytes((i * 7 % 251) for i in range(int(sys.argv[1])))).hexdigest())",
        &size.to_string(),
    ]));
    assert_eq!(line, format!("got {size} {}", want.trim()));
    // ACK + ceil(60000 / 1448) = 42 segments at least reached the server's veth.
    let segments = rx_packets(&s, &vb) - before;
    assert!(segments >= 43, "only {segments} packets reached the server");
    let st = tap.stats();
    assert_eq!(st.tx_tso, 1, "{st:?}");
    assert_eq!(st.tx_csum_offload, 2, "{st:?}");
    assert_eq!(st.tx_errors, 0, "{st:?}");

    // A request the kernel cannot honour (checksum offset past the frame) is refused
    // with an error: dropped and counted, not handed back.
    let mut f = build_frame(
        &mut tap,
        host_mac,
        ipv4_header(stack_ip, server, 17, 8, 5),
        &[0u8; 8],
        &[],
    );
    f.set_tx_offload(TxOffload {
        l2_len: 14,
        l3_len: 2000,
        l4_len: 8,
        l4_csum: Some(L4Proto::Udp),
        ..TxOffload::default()
    });
    let mut v = vec![f];
    assert_eq!(tap.tx_burst(0, &mut v), 1);
    assert!(v.is_empty());
    assert_eq!(tap.stats().tx_errors, 1);
    assert!(tap.take_error().is_some());
}

// ---------------------------------------------------------------- multi-queue, errors

const UDP_SPRAY: &str = r#"
import socket, sys
for i in range(int(sys.argv[3])):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.sendto(b"flow %d" % i, (sys.argv[1], int(sys.argv[2])))
    s.close()
"#;

/// The kernel spreads flows over the queues of a multi-queue TAP, and every frame
/// arrives on exactly one of them.
#[test]
fn multi_queue_tap_spreads_flows_over_its_queues() {
    if !can_run("multi_queue_tap_spreads_flows_over_its_queues") {
        return;
    }
    let ids = ids();
    let opts = TapOptions::default();
    let mut queues = TapDevice::open_queues(&ids.tap, 4, &opts).expect("open queues");
    assert_eq!(queues.len(), 4);
    for (i, q) in queues.iter().enumerate() {
        assert_eq!(q.queue_index() as usize, i);
        assert_eq!(q.name(), ids.tap);
    }
    // A single-queue open of a multi-queue interface is refused, not silently added.
    let e = TapDevice::open(&ids.tap, &opts).unwrap_err();
    assert!(matches!(e, TapError::NotATap { .. }), "{e:?}");

    let ns = Netns::new(&ids.ns);
    let host = addr(&ids, 0, 1);
    let stack_ip = addr(&ids, 0, 2);
    ns.adopt(&ids.tap, &format!("{host}/24"));
    let txq = must(&mut ns.cmd(10, &["ls", &format!("/sys/class/net/{}/queues", ids.tap)]));
    assert!(txq.contains("tx-3"), "{txq}");
    ns.ip(&[
        "neigh",
        "add",
        &stack_ip.to_string(),
        "lladdr",
        &STACK_MAC.to_string(),
        "dev",
        &ids.tap,
        "nud",
        "permanent",
    ]);
    let flows = 64;
    let out = ns.python(
        20,
        UDP_SPRAY,
        &[&stack_ip.to_string(), "9", &flows.to_string()],
    );
    assert!(out.status.success(), "{out:?}");
    let mut per_queue = [0usize; 4];
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while per_queue.iter().sum::<usize>() < flows && std::time::Instant::now() < deadline {
        for (i, q) in queues.iter_mut().enumerate() {
            let mut v = Vec::new();
            q.rx_burst(0, &mut v, 64);
            per_queue[i] += v
                .iter()
                .filter(|f| f.data().windows(5).any(|w| w == b"flow "))
                .count();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(per_queue.iter().sum::<usize>(), flows, "{per_queue:?}");
    assert!(
        per_queue.iter().filter(|&&n| n > 0).count() >= 2,
        "64 flows all on one queue: {per_queue:?}"
    );
}

#[test]
fn a_busy_name_is_taken_and_a_non_tap_name_is_refused() {
    if !can_run("a_busy_name_is_taken_and_a_non_tap_name_is_refused") {
        return;
    }
    let ids = ids();
    let opts = TapOptions {
        bring_up: false,
        ..TapOptions::default()
    };
    let first = TapDevice::open(&ids.tap, &opts).expect("open");
    let e = TapDevice::open(&ids.tap, &opts).unwrap_err();
    assert!(matches!(e, TapError::NameTaken { .. }), "{e:?}");
    assert!(e.to_string().contains(&ids.tap), "{e}");
    drop(first);
    // `lo` exists and is no TAP: TUNSETIFF refuses before touching it.
    let e = TapDevice::open("lo", &opts).unwrap_err();
    assert!(matches!(e, TapError::NotATap { .. }), "{e:?}");
}

#[test]
fn mtu_and_host_address_are_applied_to_the_interface() {
    if !can_run("mtu_and_host_address_are_applied_to_the_interface") {
        return;
    }
    let ids = ids();
    let opts = TapOptions {
        mtu: Some(9000),
        offloads: false,
        ..TapOptions::default()
    };
    let mut tap = TapDevice::open(&ids.tap, &opts).expect("open");
    // Removed again when the TAP closes; the address lives only on this interface,
    // which is down to the world (no route leaves it).
    let show = ip(&["-o", "link", "show", "dev", &ids.tap]);
    assert!(show.contains("mtu 9000") && show.contains("UP"), "{show}");
    assert_eq!(tap.mtu(), 9000);
    assert_eq!(tap.capabilities().mtu, 9000);
    assert!(tap.alloc_tx(9018).is_some());
    assert!(
        tap.alloc_tx(9019).is_none(),
        "no TSO buffers without offloads"
    );
    tap.set_mtu(1400).expect("mtu");
    assert_eq!(tap.capabilities().mtu, 1400);
    let e = tap.set_mtu(70_000).unwrap_err();
    assert!(matches!(e, TapError::BadMtu { mtu: 70_000, .. }), "{e:?}");
    // The host address goes on in a namespace of our own so no route appears outside.
    let ns = Netns::new(&ids.ns);
    ip(&["link", "set", &ids.tap, "netns", &ns.name]);
    let in_ns = must(&mut ns.cmd(10, &["ip", "-o", "link", "show", "dev", &ids.tap]));
    assert!(in_ns.contains("mtu 1400"), "{in_ns}");
    // Names resolve in the caller's namespace: the moved interface is not found here.
    let cidr: Ipv4Cidr = format!("{}/24", addr(&ids, 0, 1)).parse().expect("cidr");
    assert!(tap.set_host_addr(cidr).is_err());
}

/// `set_host_addr` inside the namespace, through a helper process that enters it.
#[test]
fn set_host_addr_assigns_the_kernel_side_address() {
    if !can_run("set_host_addr_assigns_the_kernel_side_address") {
        return;
    }
    let ids = ids();
    let ns = Netns::new(&ids.ns);
    // Run the child test (below) inside the namespace: it opens the TAP there.
    let exe = std::env::current_exe().expect("exe");
    let out = run(ns
        .cmd(
            30,
            &[
                exe.to_str().expect("path"),
                "--ignored",
                "--exact",
                "child_set_host_addr",
                "--nocapture",
            ],
        )
        .env("RUMPNET_TAP_CHILD_NAME", &ids.tap)
        .env("RUMPNET_TAP_CHILD_ADDR", format!("{}/24", addr(&ids, 0, 1))));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("1 passed"), "{text}");
}

#[test]
#[ignore = "run inside a namespace by set_host_addr_assigns_the_kernel_side_address"]
fn child_set_host_addr() {
    let name = std::env::var("RUMPNET_TAP_CHILD_NAME").expect("run by the parent test");
    let cidr: Ipv4Cidr = std::env::var("RUMPNET_TAP_CHILD_ADDR")
        .expect("run by the parent test")
        .parse()
        .expect("cidr");
    let tap = TapDevice::open(&name, &TapOptions::default()).expect("open");
    tap.set_host_addr(cidr).expect("set_host_addr");
    let show = ip(&["-o", "-4", "addr", "show", "dev", &name]);
    assert!(show.contains(&cidr.to_string()), "{show}");
}

/// Without CAP_NET_ADMIN the error says so: the test binary re-runs itself as `nobody`.
#[test]
fn without_cap_net_admin_the_error_says_what_is_needed() {
    if !can_run("without_cap_net_admin_the_error_says_what_is_needed") {
        return;
    }
    let exe = std::env::current_exe().expect("exe");
    let ids = ids();
    let out = run(Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(&exe)
        .args([
            "--ignored",
            "--exact",
            "child_open_unprivileged",
            "--nocapture",
        ])
        .env("RUMPNET_TAP_CHILD_NAME", &ids.tap));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("1 passed"), "{text}");
}

#[test]
#[ignore = "run as an unprivileged user by without_cap_net_admin_the_error_says_what_is_needed"]
fn child_open_unprivileged() {
    let name = std::env::var("RUMPNET_TAP_CHILD_NAME").expect("run by the parent test");
    assert_ne!(euid(), Some(0), "must run unprivileged");
    let e = TapDevice::open(&name, &TapOptions::default()).unwrap_err();
    assert!(matches!(e, TapError::PermissionDenied { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains("CAP_NET_ADMIN") && msg.contains("root"),
        "{msg}"
    );
}

// ---------------------------------------------------------------- impairments

/// The seeded impairments act on the TAP path: with every frame duplicated each way,
/// ping sees duplicate replies; with every received frame lost, it sees none.
#[test]
fn impairments_apply_to_the_tap_path() {
    if !can_run("impairments_apply_to_the_tap_path") {
        return;
    }
    for (spec, expect_dup) in [("dup=100,seed=1", true), ("loss=100,seed=1", false)] {
        let (rig, tap) = rig(&TapOptions::default());
        let spec: ImpairSpec = spec.parse().expect("spec");
        let dev = ImpairedDevice::from_spec(tap, &spec).expect("impair");
        let stack = StackThread::spawn(dev, rig.stack_cidr(), |_| false);
        let target = rig.stack.to_string();
        let out = run(&mut rig
            .ns
            .cmd(20, &["ping", "-c", "3", "-W", "1", "-i", "0.2", &target]));
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let report = stack.stop();
        if expect_dup {
            assert!(out.status.success(), "{text}");
            assert!(text.contains("DUP!"), "no duplicate replies:\n{text}");
        } else {
            assert!(!out.status.success(), "ping got through 100% loss:\n{text}");
            assert!(text.contains("100% packet loss"), "{text}");
            assert_eq!(
                report.tap.tx_frames, 0,
                "the stack answered nothing: {:?}",
                report.tap
            );
        }
        // The TAP read the kernel's frames either way (ARP, ICMP, IPv6 chatter).
        assert!(report.tap.rx_frames >= 1, "{:?}", report.tap);
        drop(rig);
    }
}
