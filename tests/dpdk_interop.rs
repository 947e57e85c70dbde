//! The DPDK backend end to end: `rumpnet` processes on DPDK virtual devices.
//!
//! - net_memif: two rumpnet processes (a `serve` as memif server, a `connect` as memif
//!   client) share frames through a memif socket in a temp dir: a bulk TCP echo checked
//!   byte for byte, connections one after the other, 1,000 concurrent connections each
//!   echo-checked (`connect --conns`), UDP echo of many sizes (`connect --udp`), and
//!   `rumpnet bench`'s dpdk-memif transport (two `bench-peer` processes).
//! - net_af_packet and net_af_xdp: rumpnet bound to one end of a veth pair in a network
//!   namespace of its own, the Linux kernel on the other end in a second namespace:
//!   ping, curl of `/bytes/N` (checked against the chargen pattern), a 16 MB echo with
//!   SHA-256 on both sides, UDP echo.
//!
//! `rte_eal_init` runs once per process, so every scenario spawns its own `rumpnet`
//! processes. Names (namespaces, veths, sockets, DPDK file prefixes) include the pid and
//! a counter; a guard stops the processes and deletes the namespaces when a test ends,
//! also when it fails. Every wait is bounded.
//!
//! Needs root, `ip`, `timeout`, python3, curl and ping (scripts/install-deps.sh). Without
//! them a test says why and passes, except under `CI=true`, where a skip is a failure.
//! Bulk sizes are smaller in debug builds (the stack is ~10x slower unoptimised); run
//! with `--release` for the full 256 MB (see docs/DPDK.md), or set
//! `RUMPNET_DPDK_BULK_MB`.
#![cfg(feature = "dpdk")]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

#[path = "host/mod.rs"]
mod host;
use host::*;

const BIN: &str = env!("CARGO_BIN_EXE_rumpnet");

const ECHO: u16 = 7;
const DISCARD: u16 = 9;
const HTTP: u16 = 80;
const UDP_ECHO: u16 = 7;

// ------------------------------------------------------------------ skipping

/// The directory DPDK loads its drivers from, and whether `pmd` is there.
fn have_pmd(pmd: &str) -> bool {
    let out = Command::new("pkg-config")
        .args(["--variable=pmdsdir", "libdpdk"])
        .output();
    let from_pkg = out
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty());
    let dirs: Vec<PathBuf> = match from_pkg {
        Some(d) => vec![PathBuf::from(d)],
        None => std::fs::read_dir("/usr/lib/x86_64-linux-gnu/dpdk")
            .map(|r| r.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default(),
    };
    dirs.iter()
        .any(|d| d.join(format!("librte_{pmd}.so")).exists())
}

/// Whether `test` can run here; prints why not. Under `CI=true` a skip is a failure.
fn can_run(test: &str, tools: &[&str], pmd: &str) -> bool {
    let why = if euid() != Some(0) {
        "needs root (network namespaces, veth, AF_PACKET/AF_XDP sockets)".to_string()
    } else if !have_pmd(pmd) {
        format!("needs DPDK's {pmd} driver (scripts/install-deps.sh installs dpdk)")
    } else if let Some(why) = missing_tool(tools) {
        why
    } else {
        return true;
    };
    skip(test, &why)
}

// ------------------------------------------------------------------ commands

fn ip_ok(args: &[&str]) {
    let out = ip(args);
    assert!(
        out.status.success(),
        "{}",
        describe(&format!("ip {args:?}"), &out)
    );
}

/// A counter line of a report (`    12 frames sent`, `  12 frames sent by the device`).
fn counter(report: &str, name: &str) -> u64 {
    report
        .lines()
        .filter_map(|l| l.trim().split_once(' '))
        .find(|(_, n)| *n == name)
        .and_then(|(v, _)| v.parse().ok())
        .unwrap_or_else(|| panic!("no counter `{name}` in\n{report}"))
}

/// MB moved by the bulk transfers: 256 in optimised builds (the proof), 16 in debug.
fn bulk_bytes() -> u64 {
    let mb = std::env::var("RUMPNET_DPDK_BULK_MB")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(if cfg!(debug_assertions) { 16 } else { 256 });
    mb << 20
}

// ------------------------------------------------------------------ processes

/// A running `rumpnet`, with its output collected by reader threads.
struct Proc {
    name: &'static str,
    child: Child,
    lines: Receiver<String>,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
}

impl Proc {
    /// Start `cmd` with its stdout/stderr collected.
    fn spawn(name: &'static str, cmd: &mut Command) -> Proc {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        let (tx, lines) = mpsc::channel();
        let stdout = Arc::new(Mutex::new(String::new()));
        let out = child.stdout.take().expect("stdout");
        let keep = Arc::clone(&stdout);
        let r1 = std::thread::spawn(move || {
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
        let r2 = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            keep.lock().unwrap().push_str(&s);
        });
        Proc {
            name,
            child,
            lines,
            stdout,
            stderr,
            readers: vec![r1, r2],
        }
    }

    /// Wait for a line starting with `prefix` (at most `secs`).
    fn wait_for(&self, prefix: &str, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.starts_with(prefix) => return,
                Ok(_) => continue,
                Err(e) => {
                    std::thread::sleep(Duration::from_millis(200));
                    panic!(
                        "{} did not print `{prefix}...` ({e:?}); stdout:\n{}\nstderr:\n{}",
                        self.name,
                        self.stdout.lock().unwrap(),
                        self.stderr.lock().unwrap()
                    );
                }
            }
        }
    }

    /// Wait for the process to exit by itself (at most `secs`); its status and output.
    fn finish(mut self, secs: u64) -> (bool, String, String) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let status = loop {
            if let Some(st) = self.child.try_wait().expect("wait") {
                break st;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                for r in self.readers.drain(..) {
                    let _ = r.join();
                }
                panic!(
                    "{} did not finish within {secs} s; stdout:\n{}\nstderr:\n{}",
                    self.name,
                    self.stdout.lock().unwrap(),
                    self.stderr.lock().unwrap()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        let out = self.stdout.lock().unwrap().clone();
        let err = self.stderr.lock().unwrap().clone();
        (status.success(), out, err)
    }

    /// SIGTERM, then its report (which must be a clean stop).
    fn stop(self) -> String {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let name = self.name;
        let (ok, out, err) = self.finish(15);
        assert!(
            ok,
            "{name} exited with failure; stdout:\n{out}\nstderr:\n{err}"
        );
        assert!(out.contains("rumpnet: stopped"), "{out}");
        out
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let p = std::env::temp_dir().join(format!("rumpnet-dpdk-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("temp dir");
        TempDir(p)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    /// Write a config file here; its path.
    fn config(&self, name: &str, body: &str) -> String {
        let p = self.0.join(name);
        std::fs::write(&p, body).expect("write config");
        p.to_string_lossy().into_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn rumpnet(args: &[&str]) -> Command {
    // The outer bound: a process a crashed test leaves behind dies on its own.
    let mut c = Command::new("timeout");
    c.args(["-k", "2", "300", BIN]).args(args);
    c
}

// ------------------------------------------------------------------ memif

/// Two rumpnets joined by net_memif: the server's and the client's config files.
struct MemifPair {
    dir: TempDir,
    server: String,
    client: String,
}

impl MemifPair {
    fn new() -> MemifPair {
        let dir = TempDir::new("memif");
        let sock = dir.path().join("memif.sock");
        let sock = sock.to_string_lossy();
        let server = dir.config(
            "server.toml",
            &format!(
                "backend = \"dpdk\"\naddr = \"10.78.0.1/24\"\nidle = \"wait\"\n\
                 echo = {ECHO}\ndiscard = {DISCARD}\nudp-echo = {UDP_ECHO}\n\n[dpdk]\n\
                 vdevs = [\"net_memif0,role=server,id=0,socket={sock}\"]\n\
                 port = \"net_memif0\"\nlink-timeout-ms = 0\n"
            ),
        );
        let client = dir.config(
            "client.toml",
            &format!(
                "backend = \"dpdk\"\naddr = \"10.78.0.2/24\"\nidle = \"wait\"\n\n[dpdk]\n\
                 vdevs = [\"net_memif0,role=client,id=0,socket={sock}\"]\n\
                 port = \"net_memif0\"\nlink-timeout-ms = 10000\n"
            ),
        );
        MemifPair {
            dir,
            server,
            client,
        }
    }

    fn serve(&self) -> Proc {
        let p = Proc::spawn(
            "rumpnet serve (memif server)",
            &mut rumpnet(&["serve", "--config", &self.server]),
        );
        p.wait_for("ready", 30);
        p
    }

    /// Run `rumpnet connect` as the memif client with `extra` flags; its report.
    fn connect(&self, port: u16, extra: &[&str], secs: u64) -> String {
        let remote = format!("10.78.0.1:{port}");
        let mut args = vec!["connect", remote.as_str(), "--config", &self.client];
        args.extend_from_slice(extra);
        let p = Proc::spawn("rumpnet connect (memif client)", &mut rumpnet(&args));
        let (ok, out, err) = p.finish(secs);
        assert!(ok, "rumpnet connect failed; stdout:\n{out}\nstderr:\n{err}");
        let _ = &self.dir;
        out
    }
}

#[test]
fn memif_two_rumpnets_bulk_echo_with_byte_check() {
    if !can_run(
        "memif_two_rumpnets_bulk_echo_with_byte_check",
        &[],
        "net_memif",
    ) {
        return;
    }
    let pair = MemifPair::new();
    let server = pair.serve();
    let n = bulk_bytes();
    let n_s = n.to_string();
    let t = Instant::now();
    let out = pair.connect(
        ECHO,
        &["--send", &n_s, "--verify-echo", "--timeout", "240"],
        260,
    );
    let secs = t.elapsed().as_secs_f64();
    assert!(out.contains("dpdk: DPDK"), "the client ran on DPDK:\n{out}");
    assert!(out.contains("driver net_memif"), "{out}");
    let last = out.lines().last().unwrap_or_default();
    let f = fields(last);
    assert_eq!(field::<u64>(&f, "sent", last), n, "{out}");
    assert_eq!(field::<u64>(&f, "received", last), n, "{out}");
    assert_eq!(f["echo"], "verified", "{out}");
    assert_eq!(f["sent_crc32"], f["received_crc32"], "{out}");
    // The client's port saw at least the frames its stack sent.
    assert!(
        counter(&out, "frames sent by the device") > n / 9000,
        "{out}"
    );
    let report = server.stop();
    assert!(report.contains("driver net_memif"), "{report}");
    // (memif drops a server's device counters when its client disconnects: the
    // stack's own count is what is left to check.)
    assert!(counter(&report, "frames received") > n / 1500, "{report}");
    assert_eq!(counter(&report, "chained frames dropped"), 0, "{report}");
    eprintln!(
        "dpdk memif: {} MB echoed in {secs:.1} s ({:.0} Mbit/s each way)",
        n >> 20,
        n as f64 * 8.0 / secs / 1e6
    );
}

#[test]
fn memif_connections_one_after_another_then_a_discard_upload() {
    if !can_run(
        "memif_connections_one_after_another_then_a_discard_upload",
        &[],
        "net_memif",
    ) {
        return;
    }
    let pair = MemifPair::new();
    let server = pair.serve();
    // Each `connect` is a new process, so a new EAL, memif client and link up.
    for seed in 1..=3u64 {
        let seed_s = seed.to_string();
        let out = pair.connect(
            ECHO,
            &["--send", "100000", "--seed", &seed_s, "--verify-echo"],
            60,
        );
        assert!(
            out.lines()
                .last()
                .unwrap_or_default()
                .contains("echo=verified"),
            "{out}"
        );
    }
    let out = pair.connect(DISCARD, &["--send", "4000000", "--expect", "0"], 120);
    assert!(out.contains("sent=4000000 "), "{out}");
    let report = server.stop();
    assert!(report.contains("4 connections accepted"), "{report}");
    assert!(report.contains("discard 4000000 B"), "{report}");
}

/// A figure of the `servers:` line of `serve`'s report (`1000 connections accepted`,
/// `echo 4096000 B`, `2000 udp datagrams echoed`).
fn server_figure(report: &str, name: &str) -> u64 {
    let line = report
        .lines()
        .find(|l| l.starts_with("servers:"))
        .unwrap_or_else(|| panic!("no servers: line in\n{report}"));
    line["servers:".len()..]
        .split(',')
        .map(str::trim)
        .find_map(|part| {
            let v = part
                .strip_suffix(name)
                .or_else(|| part.strip_prefix(name))?;
            v.trim().trim_end_matches(" B").parse().ok()
        })
        .unwrap_or_else(|| panic!("no `{name}` in {line}"))
}

#[test]
fn memif_thousand_concurrent_connections_then_udp_echo() {
    if !can_run(
        "memif_thousand_concurrent_connections_then_udp_echo",
        &[],
        "net_memif",
    ) {
        return;
    }
    let pair = MemifPair::new();
    let server = pair.serve();
    // 1,000 connections established together (each held open until every echo is
    // checked), each with its own seeded 4 KB stream.
    let (n, each) = (1000u64, 4096u64);
    let t = Instant::now();
    let out = pair.connect(
        ECHO,
        &[
            "--conns",
            &n.to_string(),
            "--send",
            &each.to_string(),
            "--seed",
            "21",
            "--timeout",
            "100",
        ],
        120,
    );
    let secs = t.elapsed().as_secs_f64();
    assert!(out.contains("driver net_memif"), "{out}");
    let last = out.lines().last().unwrap_or_default();
    let f = fields(last);
    assert_eq!(field::<u64>(&f, "conns", last), n, "{out}");
    assert_eq!(field::<u64>(&f, "verified", last), n, "{out}");
    assert_eq!(field::<u64>(&f, "closed", last), n, "{out}");
    assert_eq!(field::<u64>(&f, "failed", last), 0, "{out}");
    assert_eq!(field::<u64>(&f, "peak_open", last), n, "{out}");
    assert_eq!(field::<u64>(&f, "received", last), n * each, "{out}");
    assert_eq!(f["echo"], "verified", "{out}");
    eprintln!("dpdk memif: {n} concurrent connections in {secs:.1} s: {last}");

    // UDP echo: datagrams in one frame, then fragmented ones (reassembled by both
    // stacks). memif does not drop once both sides see the link up, but each `connect`
    // is a new memif client and a frame sent around its connection can be lost (the
    // PMD drops what is sent while its side of the link is still down): one datagram
    // of the run may go missing, never more, and none may come back wrong.
    let mut datagrams = 0;
    for (count, sizes) in [(2000u64, "1-1472"), (200, "1473-8000")] {
        let out = pair.connect(
            UDP_ECHO,
            &[
                "--udp",
                "--datagrams",
                &count.to_string(),
                "--sizes",
                sizes,
                "--window",
                "32",
                "--timeout",
                "60",
                "--max-loss",
                &format!("{}", 100.0 / count as f64),
            ],
            90,
        );
        let last = out.lines().last().unwrap_or_default();
        let f = fields(last);
        let lost = field::<u64>(&f, "lost", last);
        assert!(lost <= 1, "{out}");
        assert_eq!(field::<u64>(&f, "verified", last), count - lost, "{out}");
        assert_eq!(field::<u64>(&f, "bad", last), 0, "{out}");
        eprintln!("dpdk memif: udp {sizes}: {last}");
        datagrams += count - lost;
    }
    let report = server.stop();
    assert_eq!(
        server_figure(&report, "connections accepted"),
        n,
        "{report}"
    );
    assert_eq!(server_figure(&report, "echo"), n * each, "{report}");
    assert_eq!(
        server_figure(&report, "udp datagrams echoed"),
        datagrams,
        "{report}"
    );
}

// ------------------------------------------------------------------ bench

/// `rumpnet bench`'s dpdk-memif transport: two `rumpnet bench-peer` processes of this
/// binary run the workloads over memif; the samples come back checked.
#[test]
fn bench_dpdk_memif_rr_and_stream() {
    use rumpnet_bench::systems::dpdk::{run_with, PeerCommand};
    use rumpnet_bench::systems::Placement;
    use rumpnet_bench::workload::{Kind, Spec};

    if !can_run("bench_dpdk_memif_rr_and_stream", &[], "net_memif") {
        return;
    }
    let peer = PeerCommand::new(BIN);
    for (kind, conns, msg) in [(Kind::Rr, 1, 64), (Kind::Stream, 1, 65536)] {
        let spec = Spec {
            kind,
            conns,
            msg,
            duration: Duration::from_millis(300),
        };
        let s = run_with(&spec, Placement::SameCore, 1500, &peer)
            .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        eprintln!("bench dpdk-memif {kind:?}: {s:?}");
        assert!(s.value > 0.0, "{kind:?}: {s:?}");
        assert!(s.checked > 0, "{kind:?}: {s:?}");
        assert_eq!(s.errors, 0, "{kind:?}: {s:?}");
        if kind == Kind::Rr {
            // Every transaction's echo was compared byte for byte: 64 bytes each.
            assert!(s.checked >= 64, "{s:?}");
            assert!(s
                .extra
                .iter()
                .any(|(n, v)| *n == "latency_p50_us" && *v > 0.0));
        }
    }

    // The same through `rumpnet bench`: the rows carry the transport's name.
    let dir = TempDir::new("bench");
    let json = dir.path().join("bench.json");
    let json_s = json.to_string_lossy().into_owned();
    let p = Proc::spawn(
        "rumpnet bench",
        &mut rumpnet(&[
            "bench",
            "--systems",
            "rumpnet",
            "--workloads",
            "crr",
            "--placements",
            "same-core",
            "--duration",
            "0.2",
            "--repeat",
            "1",
            "--no-tap",
            "--no-progress",
            "--json",
            &json_s,
        ]),
    );
    let (ok, out, err) = p.finish(120);
    assert!(ok, "rumpnet bench failed; stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("dpdk-memif"), "{out}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("the JSON")).expect("JSON");
    let rows: Vec<&serde_json::Value> = v["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter(|r| r["transport"] == "dpdk-memif")
        .collect();
    assert_eq!(rows.len(), 1, "one crr row over memif: {v}");
    let r = rows[0];
    assert_eq!(r["system"], "rumpnet", "{r}");
    assert_eq!(r["workload"], "crr", "{r}");
    assert_eq!(r["metric"], "conn_per_s", "{r}");
    assert!(r["median"].as_f64().unwrap_or(0.0) > 0.0, "{r}");
    assert!(r["error"].is_null(), "{r}");
}

// ------------------------------------------------------------------ veth + kernel

/// rumpnet in namespace `ns_dpdk` on veth end `dev` (no IP), the kernel in namespace
/// `ns_host` on the peer with 10.a.b.1/24; the stack is 10.a.b.2.
struct VethLab {
    ns_dpdk: String,
    ns_host: String,
    dev: String,
    net: [u8; 3],
    python: String,
    dir: TempDir,
}

impl VethLab {
    fn new(tag: &str) -> VethLab {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        let k = (u64::from(pid) * 16 + n as u64 + 7) % (224 * 256);
        let lab = VethLab {
            ns_dpdk: format!("rn-{tag}-d-{pid}-{n}"),
            ns_host: format!("rn-{tag}-h-{pid}-{n}"),
            dev: format!("rnd{}x{n}", pid % 100_000),
            net: [10, 32 + (k / 256) as u8, (k % 256) as u8],
            python: python(),
            dir: TempDir::new(tag),
        };
        ip_ok(&["netns", "add", &lab.ns_dpdk]);
        ip_ok(&["netns", "add", &lab.ns_host]);
        let peer = format!("rnh{}x{n}", pid % 100_000);
        ip_ok(&[
            "link",
            "add",
            &lab.dev,
            "netns",
            &lab.ns_dpdk,
            "type",
            "veth",
            "peer",
            "name",
            &peer,
            "netns",
            &lab.ns_host,
        ]);
        for ns in [&lab.ns_dpdk, &lab.ns_host] {
            ip_ok(&["-n", ns, "link", "set", "lo", "up"]);
        }
        ip_ok(&["-n", &lab.ns_dpdk, "link", "set", &lab.dev, "up"]);
        let host = format!("{}/24", lab.host_ip());
        ip_ok(&["-n", &lab.ns_host, "addr", "add", &host, "dev", &peer]);
        ip_ok(&["-n", &lab.ns_host, "link", "set", &peer, "up"]);
        // The kernel would leave TCP/UDP checksums to a veth "offload" that never
        // happens (CHECKSUM_PARTIAL) and send 64 KB TSO frames: an AF_PACKET/AF_XDP
        // reader on the other end sees both as they are. Real NICs finish them; here
        // the kernel must do it itself.
        let out = output(Command::new("timeout").args([
            "20",
            "ip",
            "netns",
            "exec",
            &lab.ns_host,
            "ethtool",
            "-K",
            &peer,
            "tx",
            "off",
            "tso",
            "off",
            "gso",
            "off",
        ]));
        assert!(
            out.status.success(),
            "{}",
            describe("ethtool -K tx off", &out)
        );
        lab
    }

    fn host_ip(&self) -> String {
        format!("{}.{}.{}.1", self.net[0], self.net[1], self.net[2])
    }

    fn stack_ip(&self) -> String {
        format!("{}.{}.{}.2", self.net[0], self.net[1], self.net[2])
    }

    /// `rumpnet serve` in the dpdk namespace on `vdev` (the veth's name is appended as
    /// `iface=`) with `extra` flags; returns once it says ready.
    fn serve(&self, vdev: &str, port: &str, extra: &[&str]) -> Proc {
        let cfg = self.dir.config(
            "serve.toml",
            &format!(
                "backend = \"dpdk\"\naddr = \"{}/24\"\nidle = \"wait\"\n\
                 echo = {ECHO}\nhttp = {HTTP}\nudp-echo = {UDP_ECHO}\n\n[dpdk]\n\
                 vdevs = [\"{vdev},iface={}\"]\nport = \"{port}\"\nlink-timeout-ms = 5000\n",
                self.stack_ip(),
                self.dev
            ),
        );
        let mut c = Command::new("timeout");
        c.args([
            "-k",
            "2",
            "300",
            "ip",
            "netns",
            "exec",
            &self.ns_dpdk,
            BIN,
            "serve",
            "--config",
            &cfg,
        ])
        .args(extra);
        let p = Proc::spawn("rumpnet serve (veth)", &mut c);
        p.wait_for("ready", 30);
        p
    }

    /// `args` run in the kernel's namespace, killed after `secs` seconds.
    fn host(&self, secs: u32, args: &[&str]) -> Output {
        let mut c = Command::new("timeout");
        c.args([
            "-k",
            "2",
            &secs.to_string(),
            "ip",
            "netns",
            "exec",
            &self.ns_host,
        ])
        .args(args);
        output(&mut c)
    }

    fn py(&self, secs: u32, script: &str, args: &[&str]) -> String {
        let mut full = vec![self.python.as_str(), "-c", script];
        full.extend_from_slice(args);
        let out = self.host(secs, &full);
        assert!(out.status.success(), "{}", describe("python script", &out));
        text(&out.stdout)
    }
}

impl Drop for VethLab {
    fn drop(&mut self) {
        for ns in [&self.ns_dpdk, &self.ns_host] {
            if let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() {
                for pid in text(&out.stdout).split_whitespace() {
                    let _ = Command::new("kill").args(["-KILL", pid]).status();
                }
            }
            // Deleting a namespace deletes the veth end in it (and so the pair).
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// TCP echo of `n` random bytes: sends and reads at once, prints both SHA-256 sums.
const PY_ECHO: &str = r#"
import hashlib, os, socket, sys, threading
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
data = os.urandom(n)
s = socket.create_connection((host, port), timeout=10)
s.settimeout(60)
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

/// UDP echo of each size, three tries each.
const PY_UDP: &str = r#"
import os, socket, sys
host, port = sys.argv[1], int(sys.argv[2])
for size in [int(x) for x in sys.argv[3].split(",")]:
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

/// ping, curl of /bytes/N, a 16 MB echo with hash check and UDP echo against the stack
/// on `vdev`, with the kernel as the peer.
fn kernel_peer_checks(tag: &str, vdev: &str, port: &str, extra: &[&str]) -> String {
    let lab = VethLab::new(tag);
    let server = lab.serve(vdev, port, extra);
    let stack = lab.stack_ip();

    let out = lab.host(
        30,
        &["ping", "-n", "-c", "5", "-i", "0.2", "-W", "2", &stack],
    );
    assert!(out.status.success(), "{}", describe("ping", &out));
    assert!(
        text(&out.stdout).contains("5 packets transmitted, 5 received"),
        "{}",
        text(&out.stdout)
    );

    let n = 3_000_000usize;
    let body = lab.dir.path().join("bytes");
    let url = format!("http://{stack}:{HTTP}/bytes/{n}");
    let body_s = body.to_string_lossy().into_owned();
    let out = lab.host(
        60,
        &["curl", "-sS", "--max-time", "50", "-o", &body_s, &url],
    );
    assert!(out.status.success(), "{}", describe("curl", &out));
    let got = std::fs::read(&body).expect("curl wrote the body");
    assert_eq!(got.len(), n);
    let pat = chargen_pattern();
    let bad = got.chunks(pat.len()).position(|c| c != &pat[..c.len()]);
    assert_eq!(bad, None, "/bytes/{n} differs from the chargen pattern");

    let m = 16usize << 20;
    let out = lab.py(120, PY_ECHO, &[&stack, &ECHO.to_string(), &m.to_string()]);
    let f = fields(&out);
    assert!(!out.contains("error:"), "{out}");
    assert_eq!(field::<usize>(&f, "received", &out), m, "{out}");
    assert_eq!(f["sent_sha256"], f["received_sha256"], "{out}");

    // Datagrams that fit one frame: see docs/DPDK.md for fragmented UDP on af_packet.
    let out = lab.py(30, PY_UDP, &[&stack, &UDP_ECHO.to_string(), "1,100,1472"]);
    for size in [1, 100, 1472] {
        assert!(out.contains(&format!("size={size} result=ok")), "{out}");
    }

    let report = server.stop();
    assert!(
        report.contains(&format!(
            "driver {}",
            vdev.split(',')
                .next()
                .unwrap_or(vdev)
                .trim_end_matches(char::is_numeric)
        )),
        "{report}"
    );
    assert!(counter(&report, "icmp echo replies sent") >= 5, "{report}");
    assert!(
        counter(&report, "frames received by the device") > (m / 1500) as u64,
        "{report}"
    );
    report
}

#[test]
fn af_packet_on_a_veth_with_the_kernel_as_peer() {
    if !can_run(
        "af_packet_on_a_veth_with_the_kernel_as_peer",
        &["ping", "curl", "ethtool"],
        "net_af_packet",
    ) {
        return;
    }
    kernel_peer_checks("afp", "net_af_packet0,qpairs=1", "net_af_packet0", &[]);
}

/// `serve --cores 0,1` on DPDK: two shards, each on its own queue pair of an af_packet
/// port (the kernel spreads flows over the two sockets by its own hash; software RSS
/// passes each frame to the shard that owns its flow), the same kernel-peer checks.
#[test]
fn af_packet_two_shards_on_two_queue_pairs() {
    if !can_run(
        "af_packet_two_shards_on_two_queue_pairs",
        &["ping", "curl", "ethtool"],
        "net_af_packet",
    ) {
        return;
    }
    let report = kernel_peer_checks(
        "afp2",
        "net_af_packet0,qpairs=2",
        "net_af_packet0",
        &["--cores", "0,1"],
    );
    assert!(report.contains("2 queue pairs"), "{report}");
    let shards = report.lines().filter(|l| l.starts_with("shard ")).count();
    assert_eq!(shards, 2, "{report}");
}

/// `serve --cores 0,1 --mode pipelined` on DPDK: the runtime's I/O thread polls one
/// af_packet queue pair and moves batches through rings to two shards, whose transmit
/// mbufs come from the port's mempool through `Device::tx_allocator`.
#[test]
fn af_packet_pipelined_to_two_shards() {
    if !can_run(
        "af_packet_pipelined_to_two_shards",
        &["ping", "curl", "ethtool"],
        "net_af_packet",
    ) {
        return;
    }
    let report = kernel_peer_checks(
        "afpp",
        "net_af_packet0,qpairs=1",
        "net_af_packet0",
        &["--cores", "0,1", "--mode", "pipelined"],
    );
    assert!(report.contains("pipelined"), "{report}");
    let shards = report.lines().filter(|l| l.starts_with("shard ")).count();
    assert_eq!(shards, 2, "{report}");
}

#[test]
fn af_xdp_on_a_veth_with_the_kernel_as_peer() {
    if !can_run(
        "af_xdp_on_a_veth_with_the_kernel_as_peer",
        &["ping", "curl", "ethtool"],
        "net_af_xdp",
    ) {
        return;
    }
    kernel_peer_checks(
        "xdp",
        "net_af_xdp0,start_queue=0,queue_count=1",
        "net_af_xdp0",
        &[],
    );
}
