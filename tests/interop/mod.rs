//! Interop: the `rumpnet` binary on a TAP device against the Linux kernel.
//!
//! Each test makes a network namespace of its own, runs `rumpnet serve` (or `rumpnet
//! connect`) inside it, and talks to the stack from the same namespace with real Linux
//! tools (`ping`, `arping`, `curl`, `tshark`) and Linux sockets (Python scripts run with
//! `ip netns exec`). Names and the 10.x.y.0/24 subnet come from the pid and a counter, so
//! parallel tests and parallel runs never share one (and the namespace keeps everything
//! away from the machine's own interfaces, such as a `tap0` or 10.77.0.0/24). A guard
//! stops the processes and deletes the namespace when a test ends, also when it fails.
//!
//! Every wait is bounded: each command runs under `timeout`, the scripts set socket
//! timeouts, and the server's start and stop are waited for with a deadline.
//!
//! Needs root, /dev/net/tun, `ip`, `timeout`, python3 and the tool a test uses
//! (`scripts/install-deps.sh`). Without them a test says why and passes, except under
//! `CI=true`, where a skip is a failure.

use std::io::{BufRead, BufReader, Read};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rumpnet::stack::rand::Rand;

#[path = "../host/mod.rs"]
mod host;
use host::*;

const BIN: &str = env!("CARGO_BIN_EXE_rumpnet");

/// Ports of the built-in servers every `serve` here runs.
const ECHO: u16 = 7;
const DISCARD: u16 = 9;
const CHARGEN: u16 = 19;
const HTTP: u16 = 80;
const UDP_ECHO: u16 = 7;

// ------------------------------------------------------------------ skipping

/// Whether `test` can run here (root, the TUN device, `tools`); prints why not.
/// Under `CI=true` a skip is a failure.
fn can_run(test: &str, tools: &[&str]) -> bool {
    let why = if euid() != Some(0) {
        "needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN) for TAP devices and network namespaces"
            .to_string()
    } else if !Path::new("/dev/net/tun").exists() {
        "needs /dev/net/tun".to_string()
    } else if let Some(why) = missing_tool(tools) {
        why
    } else {
        return true;
    };
    skip(test, &why)
}

// ------------------------------------------------------------------ commands

/// A counter of the `stack counters:` part of `serve`'s report (`    12 frames sent`).
fn stack_counter(report: &str, name: &str) -> u64 {
    report
        .lines()
        .filter_map(|l| l.trim().split_once(' '))
        .find(|(_, n)| *n == name)
        .and_then(|(v, _)| v.parse().ok())
        .unwrap_or_else(|| panic!("no counter `{name}` in\n{report}"))
}

/// A counter of the `servers:` line of `serve`'s report (`3 connections accepted`,
/// `echo 100 B`).
fn server_counter(report: &str, name: &str) -> u64 {
    let line = report
        .lines()
        .find(|l| l.starts_with("servers:"))
        .unwrap_or_else(|| panic!("no servers: line in\n{report}"));
    for part in line["servers:".len()..].split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_suffix(name) {
            if let Ok(v) = v.trim().trim_end_matches(" B").parse() {
                return v;
            }
        }
        if let Some(v) = part.strip_prefix(name) {
            if let Ok(v) = v.trim().trim_end_matches(" B").parse() {
                return v;
            }
        }
    }
    panic!("no `{name}` in {line}")
}

// ------------------------------------------------------------------ the lab

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A running `rumpnet serve`, with its output collected by reader threads.
struct Server {
    child: Child,
    lines: Receiver<String>,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    /// The threads reading stdout and stderr: they end when the process does.
    readers: Vec<JoinHandle<()>>,
}

/// One test's namespace, with the TAP's subnet `10.a.b.0/24` (kernel side `.1`, the
/// stack `.2`). Dropping it stops what runs inside and deletes the namespace.
struct Lab {
    ns: String,
    tap: String,
    net: [u8; 3],
    server: Option<Server>,
    files: Vec<PathBuf>,
    python: String,
}

impl Lab {
    fn new() -> Lab {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        // 10.32.0.0 to 10.255.255.0: the pid picks a block of 16 subnets, the counter
        // one in it.
        let k = (u64::from(pid) * 16 + n as u64) % (224 * 256);
        let lab = Lab {
            ns: format!("rumpnet-interop-{pid}-{n}"),
            tap: format!("rni{pid}x{n}"),
            net: [10, 32 + (k / 256) as u8, (k % 256) as u8],
            server: None,
            files: Vec::new(),
            python: python(),
        };
        let out = ip(&["netns", "add", &lab.ns]);
        assert!(out.status.success(), "{}", describe("ip netns add", &out));
        let out = ip(&["-n", &lab.ns, "link", "set", "lo", "up"]);
        assert!(out.status.success(), "{}", describe("lo up", &out));
        lab
    }

    fn host_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(self.net[0], self.net[1], self.net[2], 1)
    }

    fn stack_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(self.net[0], self.net[1], self.net[2], 2)
    }

    /// The flags that put a stack on this lab's TAP.
    fn device_flags(&self) -> Vec<String> {
        vec![
            "--tap".into(),
            self.tap.clone(),
            "--addr".into(),
            format!("{}/24", self.stack_ip()),
            "--host-addr".into(),
            format!("{}/24", self.host_ip()),
        ]
    }

    /// A path for a file of this test, removed with the lab.
    fn temp_file(&mut self, suffix: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("{}{suffix}", self.ns));
        self.files.push(p.clone());
        p
    }

    /// `args` run in the namespace, killed after `secs` seconds.
    fn cmd(&self, secs: u32, args: &[&str]) -> Command {
        let mut c = Command::new("timeout");
        c.args([
            "-k",
            "2",
            &secs.to_string(),
            "ip",
            "netns",
            "exec",
            &self.ns,
        ])
        .args(args);
        c
    }

    fn run(&self, secs: u32, args: &[&str]) -> Output {
        output(&mut self.cmd(secs, args))
    }

    /// A Python script run in the namespace; its output, which must be a success.
    fn python(&self, secs: u32, script: &str, args: &[&str]) -> String {
        let mut full = vec![self.python.as_str(), "-c", script];
        full.extend_from_slice(args);
        let out = self.run(secs, &full);
        assert!(out.status.success(), "{}", describe("python script", &out));
        text(&out.stdout)
    }

    /// Start `rumpnet serve` with the built-in servers and `extra` flags; returns once it
    /// says `ready`.
    fn serve(&mut self, extra: &[&str]) {
        assert!(self.server.is_none(), "one server per lab");
        let mut args: Vec<String> = vec![BIN.into(), "serve".into()];
        args.extend(self.device_flags());
        for (flag, port) in [
            ("--echo", ECHO),
            ("--discard", DISCARD),
            ("--chargen", CHARGEN),
            ("--http", HTTP),
            ("--udp-echo", UDP_ECHO),
        ] {
            args.push(flag.into());
            args.push(port.to_string());
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        args.extend(crate::SERVE_EXTRA.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        // The outer bound: a server a crashed test leaves behind dies on its own.
        let mut child = self
            .cmd(600, &args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn rumpnet serve");
        let (tx, lines) = mpsc::channel();
        let stdout = Arc::new(Mutex::new(String::new()));
        let out = child.stdout.take().expect("stdout");
        let keep = Arc::clone(&stdout);
        let out_reader = std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                {
                    let mut all = keep.lock().unwrap();
                    all.push_str(&line);
                    all.push('\n');
                }
                let _ = tx.send(line);
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err = child.stderr.take().expect("stderr");
        let keep = Arc::clone(&stderr);
        let err_reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            keep.lock().unwrap().push_str(&s);
        });
        self.server = Some(Server {
            child,
            lines,
            stdout,
            stderr,
            readers: vec![out_reader, err_reader],
        });
        let s = self.server.as_ref().expect("just set");
        match s.lines.recv_timeout(Duration::from_secs(30)) {
            Ok(line) if line.starts_with("ready") => {}
            other => {
                std::thread::sleep(Duration::from_millis(200));
                panic!(
                    "rumpnet serve did not say ready ({other:?}); stderr:\n{}",
                    s.stderr.lock().unwrap()
                );
            }
        }
    }

    /// Stop the server with SIGTERM; its report (counters), after checking it exited 0.
    fn stop(&mut self) -> String {
        let mut s = self.server.take().expect("a server runs");
        // `timeout` passes SIGTERM on to rumpnet.
        let _ = Command::new("kill")
            .args(["-TERM", &s.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        let status = loop {
            if let Some(st) = s.child.try_wait().expect("wait") {
                break st;
            }
            if Instant::now() > deadline {
                let _ = s.child.kill();
                panic!("rumpnet serve did not stop within 15 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        // The pipes are closed now: the readers have all the output.
        for r in s.readers.drain(..) {
            let _ = r.join();
        }
        let out = s.stdout.lock().unwrap().clone();
        assert!(
            status.success(),
            "rumpnet serve exited with {status}; stdout:\n{out}\nstderr:\n{}",
            s.stderr.lock().unwrap()
        );
        assert!(out.contains("rumpnet: stopped"), "{out}");
        out
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(mut s) = self.server.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &s.child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while s.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = s.child.kill();
            let _ = s.child.wait();
        }
        // Anything still running in the namespace was started by this test.
        if let Ok(out) = Command::new("ip")
            .args(["netns", "pids", &self.ns])
            .output()
        {
            for pid in text(&out.stdout).split_whitespace() {
                let _ = Command::new("kill").args(["-KILL", pid]).status();
            }
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.ns])
            .stderr(Stdio::null())
            .status();
        for f in &self.files {
            let _ = std::fs::remove_file(f);
        }
    }
}

// ------------------------------------------------------------------ data

/// Where `data` first differs from the chargen stream, if it does.
fn chargen_mismatch(data: &[u8]) -> Option<usize> {
    let p = chargen_pattern();
    data.chunks(p.len()).enumerate().find_map(|(i, c)| {
        (c != &p[..c.len()])
            .then(|| i * p.len() + c.iter().zip(&p).position(|(a, b)| a != b).unwrap_or(0))
    })
}

/// zlib's CRC-32 (what `rumpnet connect` and Python's `zlib.crc32` print).
fn crc32(data: &[u8]) -> u32 {
    let mut table = [0u32; 256];
    for (i, t) in table.iter_mut().enumerate() {
        let mut c = i as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xedb8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
        *t = c;
    }
    !data.iter().fold(!0u32, |c, &b| {
        table[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8)
    })
}

// ------------------------------------------------------------------ scripts

/// TCP echo of `n` random bytes: sends and reads at once, prints both SHA-256 sums.
const PY_ECHO: &str = r#"
import hashlib, os, socket, sys, threading
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
data = os.urandom(n)
s = socket.create_connection((host, port), timeout=10)
s.settimeout(30)
errors = []
def send():
    try:
        view = memoryview(data)
        for off in range(0, n, 1 << 16):
            s.sendall(view[off:off + (1 << 16)])
        s.shutdown(socket.SHUT_WR)
    except Exception as e:
        errors.append("send: %r" % e)
t = threading.Thread(target=send)
t.start()
h = hashlib.sha256()
got = 0
buf = bytearray(1 << 20)
try:
    while True:
        k = s.recv_into(buf)
        if k == 0:
            break
        h.update(memoryview(buf)[:k])
        got += k
except Exception as e:
    errors.append("recv: %r" % e)
t.join(60)
s.close()
print("sent=%d sent_sha256=%s received=%d received_sha256=%s errors=%d" % (
    n, hashlib.sha256(data).hexdigest(), got, h.hexdigest(), len(errors)))
for e in errors:
    print("error:", e)
"#;

/// `down`: read `n` bytes of chargen and check them; `up`: send `n` bytes to discard and
/// wait for its close. Prints the longest time without progress.
const PY_BULK: &str = r#"
import os, socket, sys, time
mode, host, port, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
s = socket.create_connection((host, port), timeout=10)
s.settimeout(10)
gap, bad, done = 0.0, -1, 0
start = last = time.monotonic()
if mode == "down":
    pat = b"".join(bytes(32 + (line + i) % 95 for i in range(72)) + b"\r\n" for line in range(95))
    rep = pat * (2 + (1 << 20) // len(pat))
    buf = bytearray(1 << 20)
    while done < n:
        k = s.recv_into(buf, min(len(buf), n - done))
        if k == 0:
            break
        now = time.monotonic()
        gap, last = max(gap, now - last), now
        off = done % len(pat)
        if bad < 0 and bytes(buf[:k]) != rep[off:off + k]:
            bad = done + next(i for i in range(k) if buf[i] != rep[off + i])
        done += k
else:
    chunk = memoryview(os.urandom(1 << 20))
    while done < n:
        k = s.send(chunk[:min(len(chunk), n - done)])
        now = time.monotonic()
        gap, last = max(gap, now - last), now
        done += k
    s.shutdown(socket.SHUT_WR)
    # The discard server closes once it has read everything.
    while s.recv(65536):
        pass
elapsed = time.monotonic() - start
s.close()
print("bytes=%d secs=%.3f max_gap_ms=%.0f bad_at=%d" % (done, elapsed, gap * 1000, bad))
"#;

/// `count` connections to echo, all open at once, each sending a different random
/// message and checking its echo.
const PY_MANY: &str = r#"
import os, selectors, socket, sys, time
host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
socks = []
for i in range(count):
    s = socket.create_connection((host, port), timeout=10)
    s.setblocking(False)
    socks.append(s)
sel = selectors.DefaultSelector()
state = {}
for i, s in enumerate(socks):
    state[s] = [os.urandom(1000 + 97 * i), 0, bytearray()]
    sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE)
deadline = time.monotonic() + 60
ok = bad = 0
while state and time.monotonic() < deadline:
    for key, ev in sel.select(timeout=1):
        s = key.fileobj
        st = state[s]
        msg = st[0]
        if ev & selectors.EVENT_WRITE and st[1] < len(msg):
            try:
                st[1] += s.send(msg[st[1]:])
            except BlockingIOError:
                pass
            if st[1] == len(msg):
                s.shutdown(socket.SHUT_WR)
                sel.modify(s, selectors.EVENT_READ)
        if ev & selectors.EVENT_READ:
            try:
                d = s.recv(65536)
            except BlockingIOError:
                continue
            if d:
                st[2] += d
            else:
                if bytes(st[2]) == msg:
                    ok += 1
                else:
                    bad += 1
                sel.unregister(s)
                s.close()
                del state[s]
print("opened=%d ok=%d bad=%d unfinished=%d" % (count, ok, bad, len(state)))
"#;

/// UDP: a datagram to `closed` (0: skip) must be refused (ICMP port unreachable); each
/// size must come back from the echo port intact.
const PY_UDP: &str = r#"
import os, socket, sys
host, port, closed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
sizes = [int(x) for x in sys.argv[4].split(",") if x]
if closed:
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.settimeout(3)
    u.connect((host, closed))
    u.send(b"anyone there?")
    try:
        u.recv(100)
        print("closed=answered")
    except ConnectionRefusedError:
        print("closed=refused")
    except socket.timeout:
        print("closed=timeout")
for size in sizes:
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.settimeout(2)
    u.connect((host, port))
    payload = os.urandom(size)
    result = "timeout"
    for attempt in range(3):
        u.send(payload)
        try:
            d = u.recv(65536)
        except socket.timeout:
            continue
        result = "ok" if d == payload else "mismatch%d" % len(d)
        break
    print("size=%d result=%s" % (size, result))
"#;

/// A Linux TCP echo server for one connection on `port`; prints what it received.
const PY_LISTEN: &str = r#"
import socket, sys, zlib
port = int(sys.argv[1])
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("0.0.0.0", port))
l.listen(1)
l.settimeout(30)
print("listening", flush=True)
c, peer = l.accept()
c.settimeout(30)
crc, n = 0, 0
while True:
    d = c.recv(1 << 20)
    if not d:
        break
    crc = zlib.crc32(d, crc)
    n += len(d)
    c.sendall(d)
c.shutdown(socket.SHUT_WR)
c.close()
print("peer=%s:%d received=%d received_crc32=%08x" % (peer[0], peer[1], n, crc))
"#;

/// Run the echo script and check that what came back is what was sent.
fn echo_roundtrip(lab: &Lab, n: usize, secs: u32) {
    let out = lab.python(
        secs,
        PY_ECHO,
        &[
            &lab.stack_ip().to_string(),
            &ECHO.to_string(),
            &n.to_string(),
        ],
    );
    let f = fields(&out);
    assert!(!out.contains("error:"), "{out}");
    assert_eq!(field::<usize>(&f, "sent", &out), n, "{out}");
    assert_eq!(field::<usize>(&f, "received", &out), n, "{out}");
    assert_eq!(f["sent_sha256"], f["received_sha256"], "{out}");
}

// ------------------------------------------------------------------ tests

#[test]
fn ping_arping_and_port_unreachable() {
    if !can_run("ping_arping_and_port_unreachable", &["ping", "arping"]) {
        return;
    }
    let mut lab = Lab::new();
    lab.serve(&[]);
    let stack = lab.stack_ip().to_string();

    let out = lab.run(
        30,
        &["ping", "-n", "-c", "5", "-i", "0.2", "-W", "2", &stack],
    );
    let s = text(&out.stdout);
    assert!(out.status.success(), "{}", describe("ping", &out));
    assert!(s.contains("5 packets transmitted, 5 received"), "{s}");
    // Echo requests larger than the MTU: fragmented both ways.
    let out = lab.run(
        30,
        &["ping", "-n", "-c", "2", "-s", "4000", "-W", "2", &stack],
    );
    let s = text(&out.stdout);
    assert!(out.status.success(), "{}", describe("ping -s 4000", &out));
    assert!(s.contains("2 received"), "{s}");

    // Two arping tools share the name: Thomas Habets' (-i) and iputils' (-I).
    let help = lab.run(10, &["arping", "--help"]);
    let habets = text(&help.stdout).contains("Habets") || text(&help.stderr).contains("Habets");
    let iface_flag = if habets { "-i" } else { "-I" };
    let out = lab.run(20, &["arping", "-c", "3", iface_flag, &lab.tap, &stack]);
    assert!(out.status.success(), "{}", describe("arping", &out));
    let mac = format!(
        "02:72:{:02x}:{:02x}:{:02x}:02",
        lab.net[0], lab.net[1], lab.net[2]
    );
    assert!(
        text(&out.stdout).to_lowercase().contains(&mac),
        "arping answered without the stack's MAC {mac}:\n{}",
        text(&out.stdout)
    );

    // A datagram to a closed port: the stack answers ICMP port unreachable, which Linux
    // turns into ECONNREFUSED on the connected socket.
    let out = lab.python(20, PY_UDP, &[&stack, &UDP_ECHO.to_string(), "4242", ""]);
    assert!(out.contains("closed=refused"), "{out}");

    let report = lab.stop();
    assert!(
        stack_counter(&report, "icmp echo replies sent") >= 7,
        "{report}"
    );
    assert!(stack_counter(&report, "arp replies sent") >= 3, "{report}");
    assert!(
        stack_counter(&report, "udp no socket (port unreachable)") >= 1,
        "{report}"
    );
}

#[test]
fn curl_index_bytes_and_keepalive() {
    if !can_run("curl_index_bytes_and_keepalive", &["curl"]) {
        return;
    }
    let mut lab = Lab::new();
    lab.serve(&[]);
    let base = format!("http://{}:{HTTP}", lab.stack_ip());

    let out = lab.run(
        30,
        &["curl", "-sS", "-f", "--max-time", "20", &format!("{base}/")],
    );
    assert!(out.status.success(), "{}", describe("curl /", &out));
    let page = text(&out.stdout);
    assert!(page.contains("<title>rumpnet</title>"), "{page}");

    let n = 10_000_000;
    let out = lab.run(
        60,
        &[
            "curl",
            "-sS",
            "-f",
            "--max-time",
            "50",
            &format!("{base}/bytes/{n}"),
        ],
    );
    assert!(out.status.success(), "{}", describe("curl /bytes", &out));
    assert_eq!(out.stdout.len(), n, "body length");
    assert_eq!(chargen_mismatch(&out.stdout), None, "body content");

    // 100 requests on one connection: curl reuses it and says so with num_connects.
    let mut args: Vec<String> = [
        "curl",
        "-sS",
        "-f",
        "--http1.1",
        "--max-time",
        "50",
        "-w",
        "%{http_code} %{num_connects} %{size_download}\\n",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for i in 0..100 {
        args.extend(["-o".into(), "/dev/null".into()]);
        args.push(format!("{base}/bytes/{}", i * 101));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = lab.run(60, &args);
    assert!(
        out.status.success(),
        "{}",
        describe("curl keep-alive", &out)
    );
    let s = text(&out.stdout);
    let lines: Vec<&str> = s.lines().collect();
    assert_eq!(lines.len(), 100, "{s}");
    let mut connects = 0;
    for (i, l) in lines.iter().enumerate() {
        let v: Vec<&str> = l.split_whitespace().collect();
        assert_eq!(v[0], "200", "request {i}: {l}");
        connects += v[1].parse::<u32>().expect("num_connects");
        assert_eq!(v[2], (i * 101).to_string(), "request {i}: {l}");
    }
    assert_eq!(connects, 1, "keep-alive must reuse one connection:\n{s}");

    let report = lab.stop();
    assert_eq!(
        server_counter(&report, "connections accepted"),
        3,
        "{report}"
    );
    assert_eq!(server_counter(&report, "http requests"), 102, "{report}");
}

#[test]
fn tcp_echo_16mb_with_and_without_offloads() {
    if !can_run("tcp_echo_16mb_with_and_without_offloads", &[]) {
        return;
    }
    for offloads in ["true", "false"] {
        let mut lab = Lab::new();
        lab.serve(&["--offloads", offloads]);
        echo_roundtrip(&lab, 16 << 20, 90);
        let report = lab.stop();
        assert_eq!(server_counter(&report, "echo"), 16 << 20, "{report}");
    }
}

#[test]
fn tcp_echo_16mb_under_loss_reordering_and_duplication() {
    if !can_run("tcp_echo_16mb_under_loss_reordering_and_duplication", &[]) {
        return;
    }
    // With offloads a lost frame from Linux is a whole GSO burst; without, one segment.
    for (offloads, seed) in [("true", "7"), ("false", "8")] {
        let mut lab = Lab::new();
        // Both directions: the spec impairs what the stack sends and what it receives.
        lab.serve(&[
            "--offloads",
            offloads,
            "--impair",
            &format!("loss=3,reorder=10,dup=1,seed={seed}"),
        ]);
        echo_roundtrip(&lab, 16 << 20, 150);
        let report = lab.stop();
        assert_eq!(server_counter(&report, "echo"), 16 << 20, "{report}");
        // The impairment really happened: the stack had to retransmit.
        assert!(
            stack_counter(&report, "tcp segments retransmitted") > 0,
            "{report}"
        );
    }
}

#[test]
fn chargen_download_and_discard_upload_256mb_without_stalls() {
    if !can_run(
        "chargen_download_and_discard_upload_256mb_without_stalls",
        &[],
    ) {
        return;
    }
    let mut lab = Lab::new();
    lab.serve(&[]);
    let n: u64 = 256 << 20;
    let stack = lab.stack_ip().to_string();
    for (mode, port) in [("down", CHARGEN), ("up", DISCARD)] {
        let out = lab.python(
            120,
            PY_BULK,
            &[mode, &stack, &port.to_string(), &n.to_string()],
        );
        let f = fields(&out);
        assert_eq!(field::<u64>(&f, "bytes", &out), n, "{mode}: {out}");
        assert_eq!(field::<i64>(&f, "bad_at", &out), -1, "{mode}: {out}");
        // A stall is a second without a byte moving (the path does gigabits).
        let gap: f64 = field(&f, "max_gap_ms", &out);
        assert!(gap < 1000.0, "{mode} stalled: {out}");
        eprintln!("interop: {mode} 256 MiB: {out}");
    }
    let report = lab.stop();
    assert_eq!(server_counter(&report, "discard"), n, "{report}");
    assert!(server_counter(&report, "chargen") >= n, "{report}");
}

#[test]
fn two_hundred_concurrent_echo_connections() {
    if !can_run("two_hundred_concurrent_echo_connections", &[]) {
        return;
    }
    let mut lab = Lab::new();
    lab.serve(&[]);
    let out = lab.python(
        90,
        PY_MANY,
        &[&lab.stack_ip().to_string(), &ECHO.to_string(), "200"],
    );
    let f = fields(&out);
    assert_eq!(field::<u32>(&f, "ok", &out), 200, "{out}");
    assert_eq!(field::<u32>(&f, "bad", &out), 0, "{out}");
    let report = lab.stop();
    assert_eq!(
        server_counter(&report, "connections accepted"),
        200,
        "{report}"
    );
    let sent: u64 = (0..200u64).map(|i| 1000 + 97 * i).sum();
    assert_eq!(server_counter(&report, "echo"), sent, "{report}");
    if !crate::SERVE_EXTRA.is_empty() {
        // Sharded: software RSS spread the 200 connections over both shards, each
        // served on the shard that owns its flow (a shard's share is binomial around
        // 100; 60 is more than 5 standard deviations away).
        let per_shard: Vec<u64> = report
            .lines()
            .filter(|l| l.starts_with("shard "))
            .map(|l| {
                let n = l.split(": ").nth(1).and_then(|r| r.split(' ').next());
                n.and_then(|n| n.parse().ok()).unwrap_or(0)
            })
            .collect();
        assert_eq!(per_shard.len(), 2, "{report}");
        assert_eq!(per_shard.iter().sum::<u64>(), 200, "{report}");
        assert!(per_shard.iter().all(|&n| n >= 60), "{report}");
    }
}

#[test]
fn rumpnet_connects_out_and_moves_16mb_both_ways() {
    if !can_run("rumpnet_connects_out_and_moves_16mb_both_ways", &[]) {
        return;
    }
    let n: usize = 16 << 20;
    for (seed, extra) in [
        (11u64, vec!["--offloads", "true"]),
        (12, vec!["--offloads", "false"]),
        (13, vec!["--impair", "loss=3,reorder=10,dup=1,seed=3"]),
    ] {
        let lab = Lab::new();
        let port = "5001";
        let mut listener = lab
            .cmd(120, &[&lab.python, "-c", PY_LISTEN, port])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the Linux listener");
        let mut first = String::new();
        BufReader::new(listener.stdout.as_mut().expect("stdout"))
            .read_line(&mut first)
            .expect("read");
        assert_eq!(first.trim(), "listening", "the listener did not start");

        let mut args: Vec<String> = vec![
            BIN.into(),
            "connect".into(),
            format!("{}:{port}", lab.host_ip()),
        ];
        args.extend(lab.device_flags());
        args.extend(extra.iter().map(|s| s.to_string()));
        args.extend(
            [
                "--send",
                &n.to_string(),
                "--seed",
                &seed.to_string(),
                "--expect",
                &n.to_string(),
                "--verify-echo",
                "--timeout",
                "90",
            ]
            .iter()
            .map(|s| s.to_string()),
        );
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = lab.run(110, &args);
        let linux = listener.wait_with_output().expect("listener");
        let linux_out = text(&linux.stdout);
        assert!(
            out.status.success(),
            "{}\nlistener: {linux_out}{}",
            describe("rumpnet connect", &out),
            text(&linux.stderr)
        );
        let s = text(&out.stdout);
        assert!(s.starts_with("connected "), "{s}");
        let f = fields(&s);
        let mut stream = vec![0u8; n];
        Rand::from_u64(seed).fill(&mut stream);
        let want = format!("{:08x}", crc32(&stream));
        assert_eq!(field::<usize>(&f, "sent", &s), n, "{s}");
        assert_eq!(field::<usize>(&f, "received", &s), n, "{s}");
        assert_eq!(f["sent_crc32"], want, "{s}");
        assert_eq!(f["received_crc32"], want, "{s}");
        assert_eq!(f["echo"], "verified", "{s}");
        // What Linux read is the seeded stream too.
        assert!(linux.status.success(), "listener: {linux_out}");
        let lf = fields(&linux_out);
        assert_eq!(
            field::<usize>(&lf, "received", &linux_out),
            n,
            "{linux_out}"
        );
        assert_eq!(lf["received_crc32"], want, "{linux_out}");
        assert!(
            lf["peer"].starts_with(&format!("{}:", lab.stack_ip())),
            "{linux_out}"
        );
        eprintln!("interop: connect {extra:?}: {}", s.trim());
    }
}

#[test]
fn udp_echo_from_1_byte_to_8kb_fragmented() {
    if !can_run("udp_echo_from_1_byte_to_8kb_fragmented", &[]) {
        return;
    }
    for offloads in ["true", "false"] {
        let mut lab = Lab::new();
        lab.serve(&["--offloads", offloads]);
        let sizes = [1, 2, 100, 512, 1472, 1473, 2000, 4000, 6000, 8000, 8192];
        let list: Vec<String> = sizes.iter().map(|s: &usize| s.to_string()).collect();
        let out = lab.python(
            60,
            PY_UDP,
            &[
                &lab.stack_ip().to_string(),
                &UDP_ECHO.to_string(),
                "0",
                &list.join(","),
            ],
        );
        for size in sizes {
            assert!(
                out.contains(&format!("size={size} result=ok\n")),
                "offloads {offloads}, {size} bytes:\n{out}"
            );
        }
        let report = lab.stop();
        // 1473 bytes and up do not fit a 1500-byte MTU: fragments in, fragments out.
        let big = sizes.iter().filter(|&&s| s > 1472).count() as u64;
        assert!(
            stack_counter(&report, "datagrams reassembled") >= big,
            "{report}"
        );
        assert!(
            stack_counter(&report, "fragments sent") >= 2 * big,
            "{report}"
        );
    }
}

#[test]
fn pcap_opens_in_tshark_and_shows_the_handshake() {
    if !can_run("pcap_opens_in_tshark_and_shows_the_handshake", &["tshark"]) {
        return;
    }
    let mut lab = Lab::new();
    let pcap = lab.temp_file(".pcap");
    lab.serve(&["--pcap", pcap.to_str().expect("utf-8 temp path")]);
    echo_roundtrip(&lab, 100_000, 30);
    lab.stop();

    let out = output(Command::new("timeout").args([
        "60",
        "tshark",
        "-n",
        "-r",
        pcap.to_str().expect("path"),
        "-Y",
        "tcp",
        "-T",
        "fields",
        "-E",
        "separator=,",
        "-e",
        "frame.number",
        "-e",
        "ip.src",
        "-e",
        "tcp.srcport",
        "-e",
        "ip.dst",
        "-e",
        "tcp.dstport",
        "-e",
        "tcp.flags",
        "-e",
        "tcp.len",
    ]));
    assert!(out.status.success(), "{}", describe("tshark -r", &out));
    let stack = lab.stack_ip().to_string();
    let host = lab.host_ip().to_string();
    let rows: Vec<Vec<String>> = text(&out.stdout)
        .lines()
        .map(|l| l.split(',').map(str::to_string).collect())
        .filter(|r: &Vec<String>| r.len() == 7)
        .collect();
    let flags = |r: &Vec<String>| {
        u16::from_str_radix(r[5].trim_start_matches("0x"), 16).expect("tcp.flags in hex")
    };
    const SYN: u16 = 0x02;
    const ACK: u16 = 0x10;
    let syn = rows
        .iter()
        .position(|r| {
            r[1] == host
                && r[3] == stack
                && r[4] == ECHO.to_string()
                && flags(r) & (SYN | ACK) == SYN
        })
        .unwrap_or_else(|| panic!("no SYN to the echo port in\n{}", text(&out.stdout)));
    let client_port = rows[syn][2].clone();
    let synack = rows[syn..]
        .iter()
        .position(|r| {
            r[1] == stack
                && r[3] == host
                && r[4] == client_port
                && flags(r) & (SYN | ACK) == SYN | ACK
        })
        .map(|i| i + syn)
        .unwrap_or_else(|| panic!("no SYN-ACK after the SYN in\n{}", text(&out.stdout)));
    let ack = rows[synack..]
        .iter()
        .position(|r| r[1] == host && r[2] == client_port && flags(r) & (SYN | ACK) == ACK);
    assert!(
        ack.is_some(),
        "no ACK completing the handshake in\n{}",
        text(&out.stdout)
    );
    // The whole transfer is in the file too: 100,000 bytes each way (more if some were
    // sent again).
    let payload = |from: &str, to: &str| -> u64 {
        rows.iter()
            .filter(|r| r[1] == from && r[3] == to)
            .map(|r| r[6].parse::<u64>().unwrap_or(0))
            .sum()
    };
    assert!(payload(&host, &stack) >= 100_000, "{}", text(&out.stdout));
    assert!(payload(&stack, &host) >= 100_000, "{}", text(&out.stdout));
}
