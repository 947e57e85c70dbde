//! rumpnet ↔ rumpnet over DPDK's net_memif: the `dpdk-memif` transport.
//!
//! DPDK's EAL starts once per process (`rte_eal_init` cannot run twice), and a memif
//! link joins two processes, so each run spawns two peers: the `rumpnet` binary's
//! hidden `bench-peer` subcommand, once as the memif server (the workload's server) and
//! once as the memif client (the workload's client). Each runs the very same
//! [`workload`](crate::workload) state machines as the other rows, over one
//! [`Stack`] on queue pair 0 of its memif port, in a plain run-to-completion loop:
//! poll the port, step the workload, poll again if it queued anything.
//!
//! The peers talk to this process in lines: the server says `ready` once its port is
//! up; the client says `start` when its workload clock starts, which is passed on to
//! the server at once so both measure from (nearly) the same instant (a pipe hop,
//! microseconds, against a warm-up of a tenth of the run). Each prints `result {json}`
//! when its part is done: its [`Outcome`] (the latency histogram as value/count pairs)
//! and the CPU time its process used over its run. After the client's result the
//! server is told `finish` (crr's server cannot know the count); the client keeps
//! polling meanwhile, so what it still has in flight (a stream's send buffer, its FINs)
//! arrives. Once the server has its result and stopped polling, the client is told
//! `exit`, then the server: the memif link goes down while neither side is in a burst. The [`Sample`] is made from the two outcomes exactly as for the other rows
//! ([`sample`](super::sample)); the CPU figure is the sum of both processes' over the
//! client's wall time.
//!
//! Placement: same core, both EALs on core 0 (`-l`), and a peer whose poll found
//! nothing yields the CPU (spinning would starve the other); cross core, cores 0
//! (client) and 1 (server), both spinning. No hugepages (`--no-huge`): memif needs
//! none. Needs root and the `dpdk` cargo feature; the suite runs it only then.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::workload::{new_histogram, Kind, Outcome, Spec};

/// One side of a `dpdk-memif` run, as `rumpnet bench-peer` takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    /// The memif server, the workload's server (listens).
    Server,
    /// The memif client, the workload's client (connects).
    Client,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Server => "server",
            Role::Client => "client",
        }
    }
}

fn parse_kind(s: &str) -> Result<Kind, String> {
    [Kind::Stream, Kind::Rr, Kind::Crr]
        .into_iter()
        .find(|k| k.name() == s)
        .ok_or_else(|| format!("{s:?}: one of stream, rr, crr"))
}

/// The arguments of `rumpnet bench-peer` (hidden: only `rumpnet bench` starts it).
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct PeerArgs {
    #[arg(long, value_enum)]
    pub role: Role,
    /// stream, rr or crr.
    #[arg(long, value_parser = parse_kind)]
    pub workload: Kind,
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub conns: u32,
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=16 << 20))]
    pub msg: u32,
    /// Measured milliseconds (a tenth more is warm-up).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub duration_ms: u64,
    #[arg(long, value_parser = clap::value_parser!(u32).range(576..=9000))]
    pub mtu: u32,
    /// The CPU the EAL's main lcore runs on (`-l`).
    #[arg(long)]
    pub cpu: usize,
    /// Spin when a poll found nothing (a core of its own); otherwise yield it.
    #[arg(long)]
    pub busy: bool,
    /// The memif control socket (its name, unique per run).
    #[arg(long)]
    pub socket: PathBuf,
}

impl PeerArgs {
    /// The workload both peers run.
    pub fn spec(&self) -> Spec {
        Spec {
            kind: self.workload,
            conns: self.conns as usize,
            msg: self.msg as usize,
            duration: Duration::from_millis(self.duration_ms),
        }
    }

    /// The command line after `bench-peer` that parses back into `self`.
    pub fn to_args(&self) -> Vec<String> {
        let mut a = vec![
            "--role".to_owned(),
            self.role.name().to_owned(),
            "--workload".to_owned(),
            self.workload.name().to_owned(),
            "--conns".to_owned(),
            self.conns.to_string(),
            "--msg".to_owned(),
            self.msg.to_string(),
            "--duration-ms".to_owned(),
            self.duration_ms.to_string(),
            "--mtu".to_owned(),
            self.mtu.to_string(),
            "--cpu".to_owned(),
            self.cpu.to_string(),
            "--socket".to_owned(),
            self.socket.to_string_lossy().into_owned(),
        ];
        if self.busy {
            a.push("--busy".to_owned());
        }
        a
    }
}

/// What a peer measured, as it prints it (`result {json}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerResult {
    pub bytes: u64,
    pub transactions: u64,
    pub window_ns: u64,
    pub checked: u64,
    pub errors: u64,
    /// The latency histogram's recorded values and their counts (rr, crr).
    pub latency: Option<Vec<(u64, u64)>>,
    /// CPU time of the peer's process over its run, and the run's wall time.
    pub cpu_ns: u64,
    pub wall_ns: u64,
}

impl PeerResult {
    pub fn new(o: &Outcome, cpu: Duration, wall: Duration) -> PeerResult {
        PeerResult {
            bytes: o.bytes,
            transactions: o.transactions,
            window_ns: o.window.as_nanos() as u64,
            checked: o.checked,
            errors: o.errors,
            latency: o.latency.as_ref().map(|h| {
                h.iter_recorded()
                    .map(|v| (v.value_iterated_to(), v.count_at_value()))
                    .collect()
            }),
            cpu_ns: cpu.as_nanos() as u64,
            wall_ns: wall.as_nanos() as u64,
        }
    }

    /// The outcome again (the histogram rebuilt from its values: the same buckets).
    pub fn outcome(&self) -> Outcome {
        Outcome {
            bytes: self.bytes,
            transactions: self.transactions,
            window: Duration::from_nanos(self.window_ns),
            latency: self.latency.as_ref().map(|pairs| {
                let mut h = new_histogram();
                for &(v, n) in pairs {
                    h.saturating_record_n(v.max(1), n);
                }
                h
            }),
            checked: self.checked,
            errors: self.errors,
        }
    }
}

/// How to start a peer: an executable with the `bench-peer` subcommand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCommand {
    pub exe: PathBuf,
}

/// Names the peer executable instead of the running one (tests, a copied binary).
pub const PEER_EXE_ENV: &str = "RUMPNET_BENCH_PEER_EXE";

impl PeerCommand {
    pub fn new(exe: impl Into<PathBuf>) -> PeerCommand {
        PeerCommand { exe: exe.into() }
    }

    /// `$RUMPNET_BENCH_PEER_EXE`, else this process's executable if it is a `rumpnet`
    /// binary (when `rumpnet bench` runs); why not otherwise.
    pub fn find() -> Result<PeerCommand, String> {
        if let Some(p) = std::env::var_os(PEER_EXE_ENV).filter(|p| !p.is_empty()) {
            return Ok(PeerCommand::new(p));
        }
        let exe = std::env::current_exe().map_err(|e| format!("no executable path: {e}"))?;
        if exe.file_name().is_some_and(|n| n == "rumpnet") {
            Ok(PeerCommand::new(exe))
        } else {
            Err(format!(
                "{} is not the rumpnet binary, whose `bench-peer` runs the two ends \
                 (set {PEER_EXE_ENV})",
                exe.display()
            ))
        }
    }
}

/// Whether the suite can run `dpdk-memif` here; why not otherwise.
pub fn available() -> Result<PeerCommand, String> {
    if !cfg!(feature = "dpdk") {
        return Err("built without DPDK (cargo build --release --features dpdk)".into());
    }
    if !crate::machine::is_root() {
        return Err("not root (DPDK's memif and EAL need it here)".into());
    }
    PeerCommand::find()
}

#[cfg(feature = "dpdk")]
pub use imp::{peer_main, run, run_with};

#[cfg(not(feature = "dpdk"))]
/// Without the `dpdk` feature there is nothing to run.
pub fn run(
    _spec: &Spec,
    _placement: super::Placement,
    _mtu: usize,
) -> Result<super::Sample, super::BenchError> {
    Err(super::BenchError::Setup(
        "dpdk-memif: built without the `dpdk` feature".into(),
    ))
}

#[cfg(feature = "dpdk")]
mod imp {
    use std::io::{self, BufRead, BufReader, Read, Write};
    use std::net::SocketAddrV4;
    use std::process::{Child, ChildStdin, Command, Stdio};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc::{self, Receiver, RecvTimeoutError, TryRecvError};
    use std::sync::{Arc, Mutex};
    use std::thread::{self, JoinHandle};
    use std::time::{Duration, Instant as WallInstant};

    use rumpnet_io_dpdk::{mbuf_headroom, Eal, Mempool, PortBuilder, PortRef, QueuePair};
    use rumpnet_stack::iface::{InterfaceConfig, Port};
    use rumpnet_stack::rand::Rand;
    use rumpnet_stack::tcp::{TcpHandle, TcpListenerHandle, TcpSocketOptions};
    use rumpnet_stack::time::Instant;
    use rumpnet_stack::wire::{EthernetAddress, Ipv4Addr, Ipv4Cidr};
    use rumpnet_stack::{Stack, StackConfig};

    use super::{PeerArgs, PeerCommand, PeerResult, Role};
    use crate::machine;
    use crate::systems::rumpnet::{socket_options, EPHEMERAL_FIRST};
    use crate::systems::stack_sockets::StackSockets;
    use crate::systems::{sample, stall_limit, BenchError, Placement, Sample};
    use crate::workload::{Client, Server, Spec};

    /// The memif server's (the workload server's) address and the client's.
    const SERVER_ADDR: Ipv4Addr = Ipv4Addr::new(10, 205, 0, 1);
    const CLIENT_ADDR: Ipv4Addr = Ipv4Addr::new(10, 205, 0, 2);
    const PORT: u16 = 5001;
    /// How long the client waits for the memif link, and anyone for a peer's line
    /// outside the timed run (EAL start, link up).
    const SETUP_LIMIT: Duration = Duration::from_secs(30);

    fn setup(e: impl std::fmt::Display) -> BenchError {
        BenchError::Setup(e.to_string())
    }

    // ------------------------------------------------------------ the peer process

    /// A line for the parent (flushed: it waits on it).
    fn say(line: &str) {
        let mut out = io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }

    fn eal_args(a: &PeerArgs) -> Vec<String> {
        let mut v: Vec<String> = [
            "rumpnet-bench-peer",
            "--no-huge",
            "--no-shconf",
            "--no-pci",
            "--no-telemetry",
            "-m",
            "256",
            "--log-level",
            "error",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.push("--file-prefix".into());
        v.push(format!("rnbench-{}", std::process::id()));
        v.push("-l".into());
        v.push(a.cpu.to_string());
        v.push("--vdev".into());
        v.push(format!(
            "net_memif0,role={},id=0,socket={}",
            a.role.name(),
            a.socket.display()
        ));
        v
    }

    /// `rumpnet bench-peer`: run one side of a `dpdk-memif` case and print its result.
    pub fn peer_main(a: &PeerArgs) -> Result<(), BenchError> {
        let eal = Eal::init(eal_args(a)).map_err(setup)?;
        let result = peer_on(&eal, a);
        // Every pool and port is gone by now: hand the EAL's memory back.
        let _ = eal.cleanup();
        result
    }

    fn peer_on(eal: &Eal, a: &PeerArgs) -> Result<(), BenchError> {
        let spec = a.spec();
        let mtu = a.mtu as usize;
        let headroom = mbuf_headroom();
        let room = ((headroom + mtu + 22).div_ceil(64) * 64).max(2048 + headroom);
        let pool = Mempool::create(eal, "bench", 8191, 256, room as u16, None).map_err(setup)?;
        let port = PortBuilder::new(PortRef::Name("net_memif0".into()))
            .rings(1024, 1024)
            .mtu(a.mtu as u16)
            .start(eal, std::slice::from_ref(&pool))
            .map_err(setup)?;
        let (addr, last) = match a.role {
            Role::Server => (SERVER_ADDR, 1),
            Role::Client => (CLIENT_ADDR, 2),
        };
        let mut stack = Stack::new(StackConfig::default(), Rand::from_u64(7 + last));
        let mut iface = InterfaceConfig::new(
            EthernetAddress([0x02, 0x72, 10, 205, 0, last as u8]),
            Ipv4Cidr::new(addr, 24).ok_or_else(|| setup("bad prefix"))?,
        );
        iface.mtu = Some(mtu);
        stack.add_interface(iface).map_err(setup)?;
        let opts = socket_options(&spec);
        match a.role {
            Role::Server => {
                let l = stack
                    .tcp_listen_with(
                        SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, PORT),
                        StackConfig::default().tcp.max_accept_backlog,
                        opts,
                    )
                    .map_err(setup)?;
                let qp = port.queue_pair(0).map_err(setup)?;
                // memif's server is up once its socket listens (at EAL start); the
                // link comes up when the client connects.
                say("ready");
                serve(a, &spec, stack, qp, l, opts)
            }
            Role::Client => {
                port.wait_link_up(SETUP_LIMIT).map_err(setup)?;
                let qp = port.queue_pair(0).map_err(setup)?;
                drive_client(a, &spec, stack, qp, opts)
            }
        }
    }

    fn stack_now(epoch: WallInstant, now: WallInstant) -> Instant {
        Instant::from_micros(now.saturating_duration_since(epoch).as_micros() as u64)
    }

    /// Commands from the parent on stdin: `start`, `finish`, `exit` (EOF: `finish`, then
    /// the channel closes).
    fn commands() -> Receiver<String> {
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                if tx.send(line.trim().to_owned()).is_err() {
                    return;
                }
            }
            let _ = tx.send("finish".into());
        });
        rx
    }

    fn serve(
        a: &PeerArgs,
        spec: &Spec,
        mut stack: Stack,
        qp: QueuePair,
        listener: TcpListenerHandle,
        opts: TcpSocketOptions,
    ) -> Result<(), BenchError> {
        let cmds = commands();
        let epoch = WallInstant::now();
        let mut ports = [Port::new(qp)];
        let mut server: Option<(Server<TcpHandle>, WallInstant, std::time::Duration)> = None;
        let mut finishing = false;
        let mut limit = epoch + SETUP_LIMIT;
        loop {
            let now = WallInstant::now();
            let t = stack_now(epoch, now);
            let r = stack.poll(t, &mut ports);
            while let Ok(cmd) = cmds.try_recv() {
                match cmd.as_str() {
                    "start" if server.is_none() => {
                        let start = WallInstant::now();
                        server = Some((
                            Server::new(*spec, start),
                            start,
                            machine::process_cpu_time(),
                        ));
                        limit = start + spec.warmup() + spec.duration + stall_limit(spec);
                    }
                    "finish" => finishing = true,
                    _ => {}
                }
            }
            let Some((srv, start, cpu0)) = server.as_mut() else {
                if finishing {
                    return Err(setup("told to finish before the client started"));
                }
                if now > limit {
                    return Err(setup("the client did not start"));
                }
                idle(a, r.rx_frames + r.tx_frames == 0);
                continue;
            };
            let moved = srv.step(
                &mut StackSockets {
                    stack: &mut stack,
                    listener: Some(listener),
                    opts,
                    client: None,
                },
                now,
            )?;
            if moved {
                stack.poll(t, &mut ports);
            }
            if finishing {
                srv.finish();
            }
            if srv.done() {
                // The last FINs and ACKs leave, then no more bursts: the client exits
                // (taking the link down) while this side is quiet, then so does this.
                stack.poll(t, &mut ports);
                let cpu = machine::process_cpu_time().saturating_sub(*cpu0);
                report(&srv.outcome(), cpu, start.elapsed())?;
                let until = WallInstant::now() + SETUP_LIMIT;
                loop {
                    let left = until.saturating_duration_since(WallInstant::now());
                    match cmds.recv_timeout(left) {
                        Ok(c) if c == "exit" => return Ok(()),
                        Ok(_) => {}
                        Err(_) => return Ok(()),
                    }
                }
            }
            if now > limit {
                return Err(BenchError::Stalled("dpdk-memif server"));
            }
            idle(a, r.rx_frames + r.tx_frames == 0 && !moved);
        }
    }

    fn drive_client(
        a: &PeerArgs,
        spec: &Spec,
        mut stack: Stack,
        qp: QueuePair,
        opts: TcpSocketOptions,
    ) -> Result<(), BenchError> {
        let mut ports = [Port::new(qp)];
        let mut next_port = EPHEMERAL_FIRST;
        let epoch = WallInstant::now();
        let cpu0 = machine::process_cpu_time();
        say("start");
        let mut client = Client::new(*spec, epoch);
        let limit = epoch + spec.warmup() + spec.duration + stall_limit(spec);
        loop {
            let now = WallInstant::now();
            let t = stack_now(epoch, now);
            let r = stack.poll(t, &mut ports);
            let moved = client.step(
                &mut StackSockets {
                    stack: &mut stack,
                    listener: None,
                    opts,
                    client: Some((
                        CLIENT_ADDR,
                        SocketAddrV4::new(SERVER_ADDR, PORT),
                        &mut next_port,
                    )),
                },
                now,
            )?;
            if moved {
                stack.poll(t, &mut ports);
            }
            if client.done() {
                break;
            }
            if now > limit {
                return Err(BenchError::Stalled("dpdk-memif client"));
            }
            idle(a, r.rx_frames + r.tx_frames == 0 && !moved);
        }
        let wall = epoch.elapsed();
        let cpu = machine::process_cpu_time().saturating_sub(cpu0);
        report(client.outcome(), cpu, wall)?;
        // Keep the connections going (a stream's send buffer still drains, its FIN
        // follows; the server ends at each EOF) until told to exit, which is after the
        // server has its result and has stopped polling: the memif link goes down
        // while neither side is in a burst.
        let cmds = commands();
        let linger = WallInstant::now() + SETUP_LIMIT + stall_limit(spec);
        loop {
            let now = WallInstant::now();
            let r = stack.poll(stack_now(epoch, now), &mut ports);
            match cmds.try_recv() {
                Ok(c) if c == "exit" || c == "finish" => return Ok(()),
                Ok(_) | Err(TryRecvError::Empty) => {}
                Err(TryRecvError::Disconnected) => return Ok(()),
            }
            if now > linger {
                return Err(BenchError::Stalled("dpdk-memif client, after its run"));
            }
            idle(a, r.rx_frames + r.tx_frames == 0);
        }
    }

    /// Same core: give the CPU to the other peer when there was nothing to do.
    fn idle(a: &PeerArgs, nothing: bool) {
        if nothing && !a.busy {
            thread::yield_now();
        }
    }

    fn report(
        o: &crate::workload::Outcome,
        cpu: Duration,
        wall: Duration,
    ) -> Result<(), BenchError> {
        let json = serde_json::to_string(&PeerResult::new(o, cpu, wall)).map_err(setup)?;
        say(&format!("result {json}"));
        Ok(())
    }

    // ------------------------------------------------------------ the parent

    /// A running peer: stdout lines through a channel, stderr kept for errors. Dropped
    /// while running, it is killed (it is our own child).
    struct PeerProc {
        what: &'static str,
        child: Child,
        stdin: Option<ChildStdin>,
        lines: Receiver<String>,
        stderr: Arc<Mutex<String>>,
        readers: Vec<JoinHandle<()>>,
    }

    impl PeerProc {
        fn spawn(
            what: &'static str,
            cmd: &PeerCommand,
            a: &PeerArgs,
        ) -> Result<PeerProc, BenchError> {
            let mut child = Command::new(&cmd.exe)
                .arg("bench-peer")
                .args(a.to_args())
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|e| setup(format!("{}: {e}", cmd.exe.display())))?;
            let stdin = child.stdin.take();
            let out = child.stdout.take().ok_or_else(|| setup("no stdout"))?;
            let mut err = child.stderr.take().ok_or_else(|| setup("no stderr"))?;
            let (tx, lines) = mpsc::channel();
            let r1 = thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
            let stderr = Arc::new(Mutex::new(String::new()));
            let keep = Arc::clone(&stderr);
            let r2 = thread::spawn(move || {
                let mut s = String::new();
                let _ = err.read_to_string(&mut s);
                if let Ok(mut k) = keep.lock() {
                    k.push_str(&s);
                }
            });
            Ok(PeerProc {
                what,
                child,
                stdin,
                lines,
                stderr,
                readers: vec![r1, r2],
            })
        }

        fn tell(&mut self, line: &str) {
            if let Some(s) = self.stdin.as_mut() {
                let _ = writeln!(s, "{line}").and_then(|()| s.flush());
            }
        }

        /// Why it failed, with the end of its stderr (after it exits, all of it).
        fn failure(&mut self, why: &str) -> BenchError {
            // Give it a moment to exit, so its error message is complete.
            let until = WallInstant::now() + Duration::from_millis(500);
            while self.child.try_wait().ok().flatten().is_none() && WallInstant::now() < until {
                thread::sleep(Duration::from_millis(10));
            }
            let err = self.stderr.lock().map(|s| s.clone()).unwrap_or_default();
            let tail: String = err
                .lines()
                .filter(|l| !l.trim().is_empty())
                .rev()
                .take(3)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join(" | ");
            setup(format!("dpdk-memif {}: {why}: {tail}", self.what))
        }

        /// The first line starting with `prefix`, at most `wait` from now.
        fn wait_for(&mut self, prefix: &str, wait: Duration) -> Result<String, BenchError> {
            let deadline = WallInstant::now() + wait;
            loop {
                let left = deadline.saturating_duration_since(WallInstant::now());
                match self.lines.recv_timeout(left) {
                    Ok(l) if l.starts_with(prefix) => return Ok(l),
                    Ok(_) => continue,
                    Err(RecvTimeoutError::Timeout) => {
                        return Err(self.failure(&format!("no `{prefix}` within {wait:?}")))
                    }
                    Err(RecvTimeoutError::Disconnected) => {
                        return Err(self.failure(&format!("exited before `{prefix}`")))
                    }
                }
            }
        }

        fn result(&mut self, wait: Duration) -> Result<PeerResult, BenchError> {
            let line = self.wait_for("result ", wait)?;
            serde_json::from_str(&line["result ".len()..]).map_err(|e| {
                setup(format!(
                    "dpdk-memif {}: bad result {line:?}: {e}",
                    self.what
                ))
            })
        }

        /// Wait for it to exit (at most `wait`); an error unless it succeeded.
        fn exit(&mut self, wait: Duration) -> Result<(), BenchError> {
            self.stdin = None;
            let deadline = WallInstant::now() + wait;
            loop {
                match self.child.try_wait() {
                    Ok(Some(st)) if st.success() => return Ok(()),
                    Ok(Some(st)) => return Err(self.failure(&format!("exited with {st}"))),
                    Ok(None) if WallInstant::now() < deadline => {
                        thread::sleep(Duration::from_millis(5))
                    }
                    Ok(None) => return Err(self.failure("did not exit")),
                    Err(e) => return Err(setup(e)),
                }
            }
        }
    }

    impl Drop for PeerProc {
        fn drop(&mut self) {
            self.stdin = None;
            if let Ok(None) = self.child.try_wait() {
                let _ = self.child.kill();
            }
            let _ = self.child.wait();
            for r in self.readers.drain(..) {
                let _ = r.join();
            }
        }
    }

    /// The CPU id of the `i`th CPU this process may use (what `Placement` counts in),
    /// for the EAL's `-l`.
    fn cpu_id(i: usize) -> usize {
        core_affinity::get_core_ids()
            .and_then(|ids| ids.get(i).map(|c| c.id))
            .unwrap_or(i)
    }

    static RUNS: AtomicUsize = AtomicUsize::new(0);

    /// Run a timed workload once over memif between two `rumpnet bench-peer` processes
    /// of this very binary (see [`PeerCommand::find`]).
    pub fn run(spec: &Spec, placement: Placement, mtu: usize) -> Result<Sample, BenchError> {
        let cmd = PeerCommand::find().map_err(BenchError::Setup)?;
        run_with(spec, placement, mtu, &cmd)
    }

    /// [`run`] with the peers started from `cmd`.
    pub fn run_with(
        spec: &Spec,
        placement: Placement,
        mtu: usize,
        cmd: &PeerCommand,
    ) -> Result<Sample, BenchError> {
        let n = RUNS.fetch_add(1, Ordering::Relaxed);
        // memif's sockets are abstract by default (no file), but name it as a path in
        // the temp dir anyway, unique to this run.
        let socket = std::env::temp_dir().join(format!(
            "rumpnet-bench-memif-{}-{n}.sock",
            std::process::id()
        ));
        let (client_core, server_core) = placement.cores();
        let busy = client_core != server_core;
        let args = |role, core| PeerArgs {
            role,
            workload: spec.kind,
            conns: spec.conns as u32,
            msg: spec.msg as u32,
            duration_ms: spec.duration.as_millis().max(1) as u64,
            mtu: mtu as u32,
            cpu: cpu_id(core),
            busy,
            socket: socket.clone(),
        };
        let result = (|| {
            let mut server = PeerProc::spawn("server", cmd, &args(Role::Server, server_core))?;
            server.wait_for("ready", SETUP_LIMIT)?;
            let mut client = PeerProc::spawn("client", cmd, &args(Role::Client, client_core))?;
            client.wait_for("start", SETUP_LIMIT)?;
            server.tell("start");
            let run_limit = spec.warmup() + spec.duration + stall_limit(spec);
            let c = client.result(run_limit)?;
            // The client keeps its connections going until the server is through.
            server.tell("finish");
            let s = server.result(stall_limit(spec))?;
            // Both quiet now: first the client leaves (the link goes down), then the
            // server.
            client.tell("exit");
            client.exit(SETUP_LIMIT)?;
            server.tell("exit");
            server.exit(SETUP_LIMIT)?;
            let cpu = Duration::from_nanos(c.cpu_ns + s.cpu_ns);
            let wall = Duration::from_nanos(c.wall_ns);
            sample(spec, &c.outcome(), &s.outcome(), cpu, wall)
        })();
        let _ = std::fs::remove_file(&socket);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        peer: PeerArgs,
    }

    #[test]
    fn peer_args_parse_back() {
        for (role, kind, busy) in [
            (Role::Server, Kind::Stream, false),
            (Role::Client, Kind::Rr, true),
            (Role::Client, Kind::Crr, false),
        ] {
            let a = PeerArgs {
                role,
                workload: kind,
                conns: 8,
                msg: 65536,
                duration_ms: 1500,
                mtu: 1500,
                cpu: 3,
                busy,
                socket: PathBuf::from("/tmp/x y.sock"),
            };
            let mut argv = vec!["bench-peer".to_owned()];
            argv.extend(a.to_args());
            let back = Cli::try_parse_from(argv).unwrap().peer;
            assert_eq!(back, a);
            assert_eq!(back.spec().duration, Duration::from_millis(1500));
        }
        assert!(Cli::try_parse_from(["p", "--role", "server", "--workload", "conns"]).is_err());
    }

    #[test]
    fn results_carry_the_outcome_and_its_histogram() {
        let mut h = new_histogram();
        for v in [1_000u64, 1_500, 20_000, 20_000, 3_000_000] {
            h.record(v).unwrap();
        }
        let o = Outcome {
            bytes: 7,
            transactions: 5,
            window: Duration::from_millis(1234),
            latency: Some(h.clone()),
            checked: 320,
            errors: 0,
        };
        let r = PeerResult::new(&o, Duration::from_millis(900), Duration::from_secs(2));
        let json = serde_json::to_string(&r).unwrap();
        let back: PeerResult = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
        let o2 = back.outcome();
        assert_eq!((o2.bytes, o2.transactions, o2.checked), (7, 5, 320));
        assert_eq!(o2.window, o.window);
        let h2 = o2.latency.unwrap();
        assert_eq!(h2.len(), 5);
        for q in [0.0, 0.5, 0.99, 1.0] {
            assert_eq!(h2.value_at_quantile(q), h.value_at_quantile(q), "q {q}");
        }
        // A stream's outcome has no histogram.
        let s = Outcome { latency: None, ..o };
        assert!(PeerResult::new(&s, Duration::ZERO, Duration::ZERO)
            .outcome()
            .latency
            .is_none());
    }

    #[test]
    fn the_peer_is_the_rumpnet_binary_or_named() {
        // A test binary is not `rumpnet`: no peer unless named.
        if std::env::var_os(PEER_EXE_ENV).is_none() {
            let e = PeerCommand::find().unwrap_err();
            assert!(e.contains(PEER_EXE_ENV), "{e}");
        }
        if !cfg!(feature = "dpdk") {
            assert!(available().unwrap_err().contains("without DPDK"));
        }
    }
}
