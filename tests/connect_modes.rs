//! `rumpnet connect --conns N` and `rumpnet connect --udp` on a TAP device, with the
//! Linux kernel as the peer: a small Python echo server (TCP and UDP, one selector
//! loop) in a network namespace of the test's own, `rumpnet connect` in the same
//! namespace on a TAP whose kernel side is the server's address.
//!
//! The same modes run between two rumpnets over DPDK's net_memif in
//! `tests/dpdk_interop.rs`; here they are covered without DPDK. Besides the happy
//! paths, the server has a second TCP and UDP port that flips a byte of what it echoes,
//! and a port nobody listens on: `connect` must notice both and exit 1.
//!
//! Needs root, /dev/net/tun, `ip`, `timeout` and python3. Without them a test says why
//! and passes, except under `CI=true`, where a skip is a failure. Names include the pid
//! and a counter; a guard kills what runs in the namespace and deletes it, also when a
//! test fails. Every wait is bounded.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[path = "host/mod.rs"]
mod host;
use host::*;

const BIN: &str = env!("CARGO_BIN_EXE_rumpnet");

/// The Python server's ports: echo, echo that flips a byte, and a port left closed.
const ECHO: u16 = 7;
const BAD: u16 = 8;
const CLOSED: u16 = 9;

/// Whether `test` can run here; prints why not. Under `CI=true` a skip is a failure.
fn can_run(test: &str) -> bool {
    let why = if euid() != Some(0) {
        "needs root (a network namespace and a TAP device)".to_string()
    } else if !Path::new("/dev/net/tun").exists() {
        "needs /dev/net/tun".to_string()
    } else if let Some(t) = ["ip", "timeout", "python3"].iter().find(|t| !have(t)) {
        format!("needs `{t}` (scripts/install-deps.sh installs it)")
    } else {
        return true;
    };
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test}: {why}; under CI=true a skipped test is a failure");
    }
    let _ = writeln!(std::io::stderr(), "skipping {test}: {why}");
    false
}

fn field<T: std::str::FromStr>(s: &str, key: &str) -> T {
    fields(s)
        .get(key)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no `{key}=` in:\n{s}"))
}

/// TCP and UDP echo for any number of clients at once, in one selector loop, until its
/// stdin closes; then it prints what it saw. The `bad` ports flip the first byte of
/// every chunk they echo.
const PY_SERVER: &str = r#"
import os, selectors, socket, sys
echo, bad = int(sys.argv[1]), int(sys.argv[2])
sel = selectors.DefaultSelector()
st = {"accepted": 0, "open": 0, "peak": 0, "tcp_bytes": 0, "udp": 0, "udp_bytes": 0}
for port in (echo, bad):
    l = socket.socket()
    l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.bind(("0.0.0.0", port))
    l.listen(4096)
    l.setblocking(False)
    sel.register(l, selectors.EVENT_READ, ["listen", port == bad])
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    u.bind(("0.0.0.0", port))
    u.setblocking(False)
    sel.register(u, selectors.EVENT_READ, ["udp", port == bad])
sel.register(sys.stdin, selectors.EVENT_READ, ["stdin", False])
def flip(d, is_bad):
    return bytes([d[0] ^ 0xff]) + d[1:] if is_bad and d else d
def close(c):
    sel.unregister(c)
    c.close()
    st["open"] -= 1
print("listening", flush=True)
running = True
while running:
    for key, ev in sel.select(timeout=1):
        kind, is_bad = key.data[0], key.data[1]
        s = key.fileobj
        if kind == "stdin":
            if not os.read(0, 4096):
                running = False
        elif kind == "listen":
            try:
                c, _ = s.accept()
            except BlockingIOError:
                continue
            c.setblocking(False)
            sel.register(c, selectors.EVENT_READ, ["conn", is_bad, bytearray(), False])
            st["accepted"] += 1
            st["open"] += 1
            st["peak"] = max(st["peak"], st["open"])
        elif kind == "udp":
            while True:
                try:
                    d, a = s.recvfrom(65536)
                except BlockingIOError:
                    break
                s.sendto(flip(d, is_bad), a)
                st["udp"] += 1
                st["udp_bytes"] += len(d)
        else:
            buf = key.data[2]
            try:
                if ev & selectors.EVENT_READ and not key.data[3]:
                    d = s.recv(65536)
                    if d:
                        st["tcp_bytes"] += len(d)
                        buf += flip(d, is_bad)
                    else:
                        key.data[3] = True
                if buf:
                    del buf[:s.send(buf)]
            except BlockingIOError:
                pass
            except OSError:
                close(s)
                continue
            if key.data[3] and not buf:
                s.shutdown(socket.SHUT_WR)
                close(s)
            else:
                sel.modify(s, selectors.EVENT_READ | (selectors.EVENT_WRITE if buf else 0), key.data)
print(" ".join("%s=%d" % kv for kv in st.items()), flush=True)
"#;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A namespace with the Python server in it; `rumpnet connect` runs there on a TAP
/// (kernel side `.1`, the stack `.2`). Dropping it kills what runs inside and deletes
/// the namespace.
struct Lab {
    ns: String,
    tap: String,
    net: [u8; 3],
    server: Option<(Child, ChildStdin)>,
}

impl Lab {
    fn new() -> Lab {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        // 10.32.0.0 to 10.255.255.0, away from tests/interop's choice for the same
        // pid (which uses blocks of 16 from the same base): offset by 8.
        let k = (u64::from(pid) * 16 + 8 + n as u64) % (224 * 256);
        let lab = Lab {
            ns: format!("rumpnet-cm-{pid}-{n}"),
            tap: format!("rncm{pid}x{n}"),
            net: [10, 32 + (k / 256) as u8, (k % 256) as u8],
            server: None,
        };
        let out = ip(&["netns", "add", &lab.ns]);
        assert!(out.status.success(), "{}", describe("ip netns add", &out));
        let out = ip(&["-n", &lab.ns, "link", "set", "lo", "up"]);
        assert!(out.status.success(), "{}", describe("lo up", &out));
        lab
    }

    fn ip_of(&self, host: u8) -> String {
        format!("{}.{}.{}.{host}", self.net[0], self.net[1], self.net[2])
    }

    /// `args` in the namespace under `timeout secs`.
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

    /// Start the Python server; returns once it listens.
    fn start_server(&mut self) {
        let py = Command::new("python3")
            .args(["-c", "import sys; print(sys.executable)"])
            .output()
            .expect("python3");
        // The interpreter itself: a pyenv shim does not work under `ip netns exec`.
        let py = text(&py.stdout).trim().to_string();
        let mut child = self
            .cmd(
                300,
                &[&py, "-c", PY_SERVER, &ECHO.to_string(), &BAD.to_string()],
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the Python server");
        let stdin = child.stdin.take().expect("stdin");
        let mut first = String::new();
        BufReader::new(child.stdout.as_mut().expect("stdout"))
            .read_line(&mut first)
            .expect("read the server's first line");
        assert_eq!(first.trim(), "listening", "the Python server did not start");
        self.server = Some((child, stdin));
    }

    /// Close the server's stdin; its summary line.
    fn stop_server(&mut self) -> String {
        let (child, stdin) = self.server.take().expect("a server runs");
        drop(stdin);
        let out = child
            .wait_with_output()
            .expect("the Python server's output");
        assert!(out.status.success(), "{}", describe("Python server", &out));
        text(&out.stdout).trim().to_string()
    }

    /// `rumpnet connect` to the server's `port` on this lab's TAP with `extra` flags.
    fn connect(&self, port: u16, extra: &[&str]) -> Output {
        let remote = format!("{}:{port}", self.ip_of(1));
        let addr = format!("{}/24", self.ip_of(2));
        let host = format!("{}/24", self.ip_of(1));
        let mut args = vec![
            BIN,
            "connect",
            &remote,
            "--tap",
            &self.tap,
            "--addr",
            &addr,
            "--host-addr",
            &host,
        ];
        args.extend_from_slice(extra);
        let started = Instant::now();
        let out = self
            .cmd(120, &args)
            .stdin(Stdio::null())
            .output()
            .expect("run rumpnet connect");
        eprintln!(
            "connect {extra:?} in {:.1} s: {}{}",
            started.elapsed().as_secs_f64(),
            text(&out.stdout).trim(),
            text(&out.stderr).trim()
        );
        out
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some((mut child, stdin)) = self.server.take() {
            drop(stdin);
            let deadline = Instant::now() + Duration::from_secs(5);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
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
    }
}

/// The last line of stdout (the report).
fn report(out: &Output) -> String {
    text(&out.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn many_connections_at_once_each_echo_checked() {
    if !can_run("many_connections_at_once_each_echo_checked") {
        return;
    }
    let mut lab = Lab::new();
    lab.start_server();
    let (n, each) = (300u64, 2000u64);
    let out = lab.connect(
        ECHO,
        &[
            "--conns",
            &n.to_string(),
            "--send",
            &each.to_string(),
            "--parallel",
            "64",
            "--seed",
            "5",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        describe("connect --conns", &out)
    );
    let r = report(&out);
    assert_eq!(field::<u64>(&r, "conns"), n, "{r}");
    assert_eq!(field::<u64>(&r, "opened"), n, "{r}");
    assert_eq!(field::<u64>(&r, "verified"), n, "{r}");
    assert_eq!(field::<u64>(&r, "closed"), n, "{r}");
    assert_eq!(field::<u64>(&r, "failed"), 0, "{r}");
    // Every connection was held open until all were checked: all n at once.
    assert_eq!(field::<u64>(&r, "peak_open"), n, "{r}");
    assert_eq!(field::<u64>(&r, "sent"), n * each, "{r}");
    assert_eq!(field::<u64>(&r, "received"), n * each, "{r}");
    assert_eq!(fields(&r)["echo"], "verified", "{r}");
    // Linux saw the same: n connections, all open together, every byte.
    let s = lab.stop_server();
    assert_eq!(field::<u64>(&s, "accepted"), n, "{s}");
    assert_eq!(field::<u64>(&s, "peak"), n, "{s}");
    assert_eq!(field::<u64>(&s, "tcp_bytes"), n * each, "{s}");
    assert_eq!(field::<u64>(&s, "open"), 0, "{s}");
}

#[test]
fn many_connections_fail_loudly_on_a_bad_echo_or_a_closed_port() {
    if !can_run("many_connections_fail_loudly_on_a_bad_echo_or_a_closed_port") {
        return;
    }
    let mut lab = Lab::new();
    lab.start_server();
    let out = lab.connect(BAD, &["--conns", "5", "--send", "300"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe("bad echo", &out));
    let err = text(&out.stderr);
    assert!(err.contains("5 of 5 connections failed"), "{err}");
    assert!(
        err.contains("echo differs from what was sent at byte 0"),
        "{err}"
    );
    assert!(err.contains("verified=0"), "{err}");

    let out = lab.connect(CLOSED, &["--conns", "3", "--timeout", "20"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        describe("closed port", &out)
    );
    let err = text(&out.stderr);
    assert!(err.contains("3 of 3 connections failed"), "{err}");
    assert!(err.to_lowercase().contains("refused"), "{err}");
    lab.stop_server();
}

#[test]
fn udp_echo_of_many_sizes_checked_and_fragmented() {
    if !can_run("udp_echo_of_many_sizes_checked_and_fragmented") {
        return;
    }
    let mut lab = Lab::new();
    lab.start_server();
    // Sizes that fit a frame, then sizes the stack must fragment and reassemble.
    let mut total = 0u64;
    for (n, sizes) in [(500u64, "1-1472"), (60, "1473-8000")] {
        let out = lab.connect(
            ECHO,
            &[
                "--udp",
                "--datagrams",
                &n.to_string(),
                "--sizes",
                sizes,
                "--window",
                "16",
            ],
        );
        assert!(out.status.success(), "{}", describe("connect --udp", &out));
        let r = report(&out);
        assert_eq!(field::<u64>(&r, "datagrams"), n, "{r}");
        assert_eq!(field::<u64>(&r, "sent"), n, "{r}");
        assert_eq!(field::<u64>(&r, "verified"), n, "{r}");
        assert_eq!(field::<u64>(&r, "lost"), 0, "{r}");
        assert_eq!(field::<u64>(&r, "bad"), 0, "{r}");
        total += n;
    }
    // A byte flipped by the peer is caught, and so is nobody listening.
    let out = lab.connect(BAD, &["--udp", "--datagrams", "20"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        describe("bad udp echo", &out)
    );
    let err = text(&out.stderr);
    assert!(err.contains("matched no datagram sent"), "{err}");
    let out = lab.connect(CLOSED, &["--udp", "--datagrams", "5"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        describe("closed udp port", &out)
    );
    assert!(
        text(&out.stderr).contains("port unreachable"),
        "{}",
        text(&out.stderr)
    );
    let s = lab.stop_server();
    // Linux echoed every datagram of the good runs, and the bad port's first (which
    // goes alone, and whose flipped echo ends that run at once).
    assert_eq!(field::<u64>(&s, "udp"), total + 1, "{s}");
}
