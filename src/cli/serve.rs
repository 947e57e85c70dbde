//! `rumpnet serve`: the stack behind a TAP device, with the built-in servers.
//!
//! One thread runs the stack and the servers (run-to-completion): receive a burst,
//! serve what became ready, send, and when nothing happened sleep on the TAP fd until
//! a frame arrives or the next timer is due (or spin, with `--idle busy`).

use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant as StdInstant;

use clap::Args;

use rumpnet::capture::CaptureDevice;
use rumpnet::runtime::{IdlePolicy as RtIdle, Mode, Queue, Runtime, RuntimeConfig};
use rumpnet::servers::{ServerStats, Servers, ShardServers};
use rumpnet::stack::device::Device;
use rumpnet::stack::device::{Capabilities, HeapFrame};
use rumpnet::stack::iface::{InterfaceConfig, Port};
use rumpnet::stack::link::PcapCapture;
use rumpnet::stack::rand::Rand;
use rumpnet::stack::time::{Duration, Instant};
use rumpnet::stack::{Stack, StackConfig};
use rumpnet::tap::{IdlePolicy, ImpairSpec, ImpairedDevice, TapDevice, TapError, TapOptions};

use super::config::{Backend, FileConfig, Idle, ServeOptions};

/// Options of the TAP device and the stack on it, shared by `rumpnet serve` and
/// `rumpnet connect` (each also a key of the config file).
#[derive(Debug, Clone, Args)]
pub struct DeviceArgs {
    /// TOML file with any of the options below (flags override it).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Packet I/O: `tap`, `dpdk` or `netmap` (the last two need the cargo feature of
    /// the same name; their settings are the `[dpdk]` / `[netmap]` table of --config)
    /// [default: tap].
    #[arg(long, value_name = "BACKEND")]
    pub backend: Option<String>,
    /// Run one shard per CPU in this list, each pinned (e.g. 0,1) [default: one thread].
    #[arg(long, value_name = "CPU,CPU,...", value_delimiter = ',')]
    pub cores: Option<Vec<usize>>,
    /// With --cores: `run-to-completion` (each shard polls its own backend queue) or
    /// `pipelined` (an I/O thread polls one queue and moves batches through rings to
    /// the shards and back) [default: run-to-completion].
    #[arg(long, value_name = "MODE")]
    pub mode: Option<String>,
    /// TAP interface to create or attach to [default: rumpnet0].
    #[arg(long, value_name = "NAME")]
    pub tap: Option<String>,
    /// The stack's IPv4 address and prefix, e.g. 10.77.0.2/24 (required).
    #[arg(long, value_name = "IPV4/PREFIX")]
    pub addr: Option<String>,
    /// Default gateway of the stack.
    #[arg(long, value_name = "IPV4")]
    pub gateway: Option<String>,
    /// The stack's MAC address [default: derived from --addr, locally administered].
    #[arg(long, value_name = "MAC")]
    pub mac: Option<String>,
    /// Address given to the kernel side of the TAP (brought up), so the host can reach
    /// the stack at once.
    #[arg(long, value_name = "IPV4/PREFIX")]
    pub host_addr: Option<String>,
    /// MTU of the TAP link [default: 1500].
    #[arg(long, value_name = "N")]
    pub mtu: Option<u32>,
    /// Write every frame in and out to this pcap file.
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<PathBuf>,
    /// Use (true) or not (false) checksum and TSO/GSO offloads with the kernel [default: true].
    #[arg(long, value_name = "BOOL")]
    pub offloads: Option<bool>,
    /// Seeded fault injection on the TAP path, in percent: loss=3,reorder=10,dup=1,corrupt=0.1,seed=7.
    #[arg(long, value_name = "SPEC")]
    pub impair: Option<String>,
    /// When idle: `wait` (sleep on the TAP fd) or `busy` (spin) [default: wait].
    #[arg(long, value_name = "POLICY")]
    pub idle: Option<String>,
}

impl DeviceArgs {
    /// The config file (if any) overlaid with these flags and `servers`' ports, checked.
    pub fn options(&self, servers: FileConfig) -> Result<ServeOptions, String> {
        let file = match &self.config {
            Some(p) => FileConfig::load(p)?,
            None => FileConfig::default(),
        };
        let flags = FileConfig {
            backend: self.backend.clone(),
            cores: self.cores.clone(),
            mode: self.mode.clone(),
            tap: self.tap.clone(),
            addr: self.addr.clone(),
            gateway: self.gateway.clone(),
            mac: self.mac.clone(),
            host_addr: self.host_addr.clone(),
            mtu: self.mtu,
            pcap: self.pcap.clone(),
            offloads: self.offloads,
            impair: self.impair.clone(),
            idle: self.idle.clone(),
            ..servers
        };
        let opts = ServeOptions::from_config(file.overlay(flags))?;
        if let Some(spec) = &opts.impair {
            spec.parse::<ImpairSpec>()
                .map_err(|e| format!("--impair: {e}"))?;
        }
        Ok(opts)
    }
}

/// Options of `rumpnet serve` (each also a key of the config file).
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub device: DeviceArgs,
    /// TCP echo server (RFC 862) on this port.
    #[arg(long, value_name = "PORT")]
    pub echo: Option<u16>,
    /// TCP discard server (RFC 863) on this port.
    #[arg(long, value_name = "PORT")]
    pub discard: Option<u16>,
    /// TCP chargen server (RFC 864) on this port.
    #[arg(long, value_name = "PORT")]
    pub chargen: Option<u16>,
    /// HTTP/1.1 server on this port (GET / and GET /bytes/N).
    #[arg(long, value_name = "PORT")]
    pub http: Option<u16>,
    /// UDP echo server on this port.
    #[arg(long, value_name = "PORT")]
    pub udp_echo: Option<u16>,
}

impl ServeArgs {
    /// The file (if any) overlaid with the flags, checked.
    pub fn options(&self) -> Result<ServeOptions, String> {
        self.device.options(FileConfig {
            echo: self.echo,
            discard: self.discard,
            chargen: self.chargen,
            http: self.http,
            udp_echo: self.udp_echo,
            ..FileConfig::default()
        })
    }
}

/// A device `serve` can sleep on until it has frames or `timeout` passes (a busy-polling
/// backend just returns). Errors are one line for the user.
pub(crate) trait Sleep {
    fn sleep(&mut self, timeout: Option<Duration>) -> Result<(), String>;
}

impl Sleep for TapDevice {
    fn sleep(&mut self, timeout: Option<Duration>) -> Result<(), String> {
        self.idle(timeout).map_err(|e: TapError| e.to_string())
    }
}

impl Sleep for ImpairedDevice<TapDevice> {
    fn sleep(&mut self, timeout: Option<Duration>) -> Result<(), String> {
        self.idle(timeout).map_err(|e: TapError| e.to_string())
    }
}

fn host_seed() -> [u8; 32] {
    let mut seed = [0u8; 32];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = f.read_exact(&mut seed);
    }
    // Mixed with the clock in case /dev/urandom is unavailable (never all zero).
    let t = StdInstant::now().elapsed().as_nanos() as u64 ^ std::process::id() as u64;
    for (b, t) in seed.iter_mut().zip(t.to_le_bytes().iter().cycle()) {
        *b ^= t;
    }
    seed
}

/// A flag that SIGINT and SIGTERM raise.
pub(crate) fn stop_on_signals() -> Result<Arc<AtomicBool>, String> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .map_err(|e| format!("cannot handle signal {sig}: {e}"))?;
    }
    Ok(stop)
}

/// What runs on the stack's thread next to it: `serve`'s servers, `connect`'s client.
pub(crate) trait StackApp {
    /// Called once the stack is up, before the first poll (open listeners, say `ready`;
    /// the stack's clock starts at that poll, so active opens belong in `run`).
    fn start(&mut self, stack: &mut Stack, opts: &ServeOptions) -> Result<(), String>;
    /// Called after every poll with the time of that poll. `Ok(true)`: finished.
    fn run(&mut self, stack: &mut Stack, now: Instant) -> Result<bool, String>;
}

/// Open the TAP device `opts` describes (with its impairments, capture and host
/// address) and run a stack on it with `app` until the app finishes or `stop` is
/// raised. Returns the stack, for its counters. Errors are one line for the user.
pub(crate) fn run_on_tap<A: StackApp>(
    opts: &ServeOptions,
    app: &mut A,
    stop: &AtomicBool,
) -> Result<Stack, String> {
    let tap_opts = TapOptions {
        mtu: Some(opts.mtu),
        offloads: opts.offloads,
        idle: match opts.idle {
            Idle::Busy => IdlePolicy::BusyPoll,
            Idle::Wait => IdlePolicy::Wait { spin: 64 },
        },
        ..TapOptions::default()
    };
    let tap = TapDevice::open(&opts.tap, &tap_opts).map_err(|e| e.to_string())?;
    if let Some(h) = opts.host_addr {
        tap.set_host_addr(h).map_err(|e| e.to_string())?;
    }
    let spec = match &opts.impair {
        Some(s) => Some(
            s.parse::<ImpairSpec>()
                .map_err(|e| format!("--impair: {e}"))?,
        ),
        None => None,
    };
    match spec.filter(|s| !s.is_none()) {
        Some(spec) => {
            let dev =
                ImpairedDevice::from_spec(tap, &spec).map_err(|e| format!("--impair: {e}"))?;
            drive(dev, opts, app, stop)
        }
        None => drive(tap, opts, app, stop),
    }
}

/// Run the stack `opts` describes on its backend with `app` until the app finishes or
/// `stop` is raised; returns the stack, for its counters.
pub(crate) fn run_on_backend<A: StackApp>(
    opts: &ServeOptions,
    app: &mut A,
    stop: &AtomicBool,
) -> Result<Stack, String> {
    match &opts.backend {
        Backend::Tap => run_on_tap(opts, app, stop),
        #[cfg(feature = "dpdk")]
        Backend::Dpdk(table) => super::dpdk::run(opts, table, app, stop),
        #[cfg(not(feature = "dpdk"))]
        Backend::Dpdk(_) => Err(
            "backend `dpdk`: this rumpnet was built without DPDK (cargo build --features dpdk)"
                .into(),
        ),
        #[cfg(feature = "netmap")]
        Backend::Netmap(table) => super::netmap::run(opts, table, app, stop),
        #[cfg(not(feature = "netmap"))]
        Backend::Netmap(_) => Err(
            "backend `netmap`: this rumpnet was built without netmap (cargo build --features netmap)"
                .into(),
        ),
    }
}

/// Run `serve` until SIGINT/SIGTERM. Errors are one line for the user.
pub fn run(opts: ServeOptions) -> Result<String, String> {
    let sharded = match &opts.backend {
        Backend::Tap => !opts.cores.is_empty(),
        // One CPU: the single-thread loop on that lcore.
        _ => opts.cores.len() > 1,
    };
    if sharded {
        return match &opts.backend {
            Backend::Tap => run_sharded_tap(&opts),
            #[cfg(feature = "dpdk")]
            Backend::Dpdk(table) => super::dpdk::run_sharded(&opts, table),
            #[cfg(feature = "netmap")]
            Backend::Netmap(table) => super::netmap::run_sharded(&opts, table),
            // Only reachable in builds without a backend's feature.
            #[allow(unreachable_patterns)]
            _ => Err(
                "--cores: this rumpnet was built without the backend (cargo build --features \
                 dpdk / --features netmap)"
                    .into(),
            ),
        };
    }
    let stop = stop_on_signals()?;
    let mut app = ServeApp { servers: None };
    let stack = run_on_backend(&opts, &mut app, &stop)?;
    let s = app.servers.map(|s| s.stats()).unwrap_or_default();
    Ok(report(&s, &stack.stats().to_string()))
}

/// The report `serve` prints when it stops.
fn report(s: &ServerStats, counters: &str) -> String {
    format!(
        "rumpnet: stopped\nservers: {} connections accepted, {} closed, {} http requests, echo {} B, discard {} B, chargen {} B, http {} B, {} udp datagrams echoed\nstack counters:\n{counters}",
        s.accepted,
        s.closed,
        s.http_requests,
        s.echo_bytes,
        s.discard_bytes,
        s.chargen_bytes,
        s.http_bytes,
        s.udp_echoed,
    )
}

/// `serve --cores A,B,..`: one shard per CPU on a multi-queue TAP (one queue each, run to
/// completion), the built-in servers on every shard (on-shard API). The kernel spreads
/// new flows over the queues by its own hash and software RSS passes each frame on to
/// the shard that owns its flow; replies leave from that shard's queue, and TUN then
/// sends the flow's next frames to that queue.
fn run_sharded_tap(opts: &ServeOptions) -> Result<String, String> {
    let n = if opts.pipelined { 1 } else { opts.cores.len() };
    let tap_opts = TapOptions {
        mtu: Some(opts.mtu),
        offloads: opts.offloads,
        // The shard loop does the idling (runtime IdlePolicy); the queues never block.
        idle: IdlePolicy::BusyPoll,
        ..TapOptions::default()
    };
    let queues = TapDevice::open_queues(&opts.tap, n, &tap_opts).map_err(|e| e.to_string())?;
    if let Some(h) = opts.host_addr {
        queues[0].set_host_addr(h).map_err(|e| e.to_string())?;
    }
    let spec = match &opts.impair {
        Some(s) => Some(
            s.parse::<ImpairSpec>()
                .map_err(|e| format!("--impair: {e}"))?,
        ),
        None => None,
    }
    .filter(|s| !s.is_none());
    let mut devs = Vec::with_capacity(n);
    for (i, q) in queues.into_iter().enumerate() {
        devs.push(match spec {
            Some(mut spec) => {
                // Each queue draws its own impairments, replayable from the seed.
                spec.seed = spec.seed.wrapping_add(2 * i as u64);
                ShardTap::Impaired(
                    ImpairedDevice::from_spec(q, &spec).map_err(|e| format!("--impair: {e}"))?,
                )
            }
            None => ShardTap::Plain(q),
        });
    }
    run_sharded(opts, devs, None)
}

/// `serve --cores A,B,..` on any backend: one shard per CPU, the built-in servers on
/// every shard through the on-shard API. Run to completion, shard `i` polls `devs[i]`
/// (one queue pair each); pipelined, one I/O thread per device moves frames through
/// rings to the shards (software RSS) and back. `numa_node`: the device's, to place
/// the threads near it. Runs until SIGINT/SIGTERM; returns the report.
pub(crate) fn run_sharded<D>(
    opts: &ServeOptions,
    devs: Vec<D>,
    numa_node: Option<usize>,
) -> Result<String, String>
where
    D: Device + Send + 'static,
    D::Frame: Send + 'static,
{
    let stop = stop_on_signals()?;
    let n = opts.cores.len();
    let mode = if opts.pipelined {
        Mode::Pipelined
    } else {
        Mode::RunToCompletion
    };
    let capture = match &opts.pcap {
        Some(p) => Some(Arc::new(
            PcapCapture::create(p).map_err(|e| format!("--pcap {}: {e}", p.display()))?,
        )),
        None => None,
    };
    let epoch = StdInstant::now();
    let queues: Vec<_> = devs
        .into_iter()
        .map(|d| {
            let cap = capture.clone().unwrap_or_else(null_capture);
            Queue::new(CaptureDevice::with_epoch(d, cap, epoch), 0)
        })
        .collect();
    let mut iface = InterfaceConfig::new(opts.mac, opts.addr);
    iface.mtu = Some(opts.mtu);
    let mut config = RuntimeConfig::new(n, mode, iface);
    config.gateway = opts.gateway;
    config.cpus = Some(opts.cores.clone());
    config.numa_node = numa_node;
    config.idle = match opts.idle {
        Idle::Busy => RtIdle::BusyPoll,
        Idle::Wait => RtIdle::default(),
    };
    let started = Arc::new(AtomicUsize::new(0));
    let ports = opts.ports;
    let st = Arc::clone(&started);
    let rt = Runtime::start(config, queues, move |_| {
        ShardServers::new(ports, Arc::clone(&st))
    })
    .map_err(|e| format!("runtime: {e}"))?;
    let by = StdInstant::now() + std::time::Duration::from_secs(10);
    while started.load(Ordering::Acquire) < n {
        if rt.is_finished() || StdInstant::now() > by {
            let _ = rt.shutdown();
            return Err("runtime: the shards did not start".into());
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let placement = rt.placement().to_string();
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "ready: rumpnet serving on {} at {} (mac {}{}){}; {n} shards, {} ({placement})",
            backend_label(opts),
            opts.addr,
            opts.mac,
            opts.host_addr
                .map(|h| format!(", host side {h}"))
                .unwrap_or_default(),
            describe_ports(opts),
            if opts.pipelined {
                "pipelined"
            } else {
                "run to completion"
            },
        );
        let _ = out.flush();
    }
    while !stop.load(Ordering::Relaxed) && !rt.is_finished() {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let finished_early = !stop.load(Ordering::Relaxed);
    let report_rt = rt.shutdown().map_err(|e| format!("runtime: {e}"))?;
    if let Some(c) = &capture {
        c.flush().map_err(|e| format!("--pcap: {e}"))?;
    }
    if let Some(e) = report_rt.apps.iter().find_map(|a| a.error()) {
        return Err(e.to_string());
    }
    if finished_early {
        return Err("runtime: the shards stopped on their own".into());
    }
    let mut s = ServerStats::default();
    for a in &report_rt.apps {
        s.add(&a.stats());
    }
    let mut counters = report_rt.stats.total().to_string();
    for (sh, app) in report_rt.stats.shards.iter().zip(&report_rt.apps) {
        counters.push_str(&format!(
            "\nshard {} (cpu {}): {} connections accepted, {} polls, {} frames from other shards, {} passed on, {} ring drops",
            sh.shard,
            sh.cpu.map_or("-".to_string(), |c| c.to_string()),
            app.stats().accepted,
            sh.polls,
            sh.ring_rx,
            sh.forwarded,
            sh.ring_rx_dropped,
        ));
    }
    Ok(report(&s, &counters))
}

/// What the stack is on, for the `ready` line.
pub(crate) fn backend_label(opts: &ServeOptions) -> String {
    let port = |t: &toml::Table| {
        t.get("port")
            .map(|p| match p {
                toml::Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .unwrap_or_else(|| "0".into())
    };
    match &opts.backend {
        Backend::Tap => format!("tap {}", opts.tap),
        Backend::Dpdk(t) => format!("dpdk port {}", port(t)),
        Backend::Netmap(t) => format!("netmap port {}", port(t)),
    }
}

/// A TAP queue with or without impairments, as one type for the runtime.
// One per shard, owned by its thread for the whole run: the size does not matter.
#[allow(clippy::large_enum_variant)]
enum ShardTap {
    Plain(TapDevice),
    Impaired(ImpairedDevice<TapDevice>),
}

impl std::fmt::Debug for ShardTap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ShardTap::Plain(d) => d.fmt(f),
            ShardTap::Impaired(_) => f.write_str("ImpairedDevice<TapDevice>"),
        }
    }
}

impl Device for ShardTap {
    type Frame = HeapFrame;

    fn readiness_fd(&self) -> Option<i32> {
        match self {
            ShardTap::Plain(d) => d.readiness_fd(),
            ShardTap::Impaired(d) => d.readiness_fd(),
        }
    }

    fn capabilities(&self) -> Capabilities {
        match self {
            ShardTap::Plain(d) => d.capabilities(),
            ShardTap::Impaired(d) => d.capabilities(),
        }
    }

    fn rx_burst(&mut self, queue: u16, out: &mut Vec<HeapFrame>, max: usize) -> usize {
        match self {
            ShardTap::Plain(d) => d.rx_burst(queue, out, max),
            ShardTap::Impaired(d) => d.rx_burst(queue, out, max),
        }
    }

    fn tx_burst(&mut self, queue: u16, frames: &mut Vec<HeapFrame>) -> usize {
        match self {
            ShardTap::Plain(d) => d.tx_burst(queue, frames),
            ShardTap::Impaired(d) => d.tx_burst(queue, frames),
        }
    }

    fn alloc_tx(&mut self, len: usize) -> Option<HeapFrame> {
        match self {
            ShardTap::Plain(d) => d.alloc_tx(len),
            ShardTap::Impaired(d) => d.alloc_tx(len),
        }
    }
}

/// `serve`'s side of the loop: the built-in servers.
struct ServeApp {
    servers: Option<Servers>,
}

impl StackApp for ServeApp {
    fn start(&mut self, stack: &mut Stack, opts: &ServeOptions) -> Result<(), String> {
        self.servers = Some(Servers::start(stack, opts.ports)?);
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "ready: rumpnet serving on {} at {} (mac {}{}){}",
            backend_label(opts),
            opts.addr,
            opts.mac,
            opts.host_addr
                .map(|h| format!(", host side {h}"))
                .unwrap_or_default(),
            describe_ports(opts),
        );
        let _ = out.flush();
        Ok(())
    }

    fn run(&mut self, stack: &mut Stack, _now: Instant) -> Result<bool, String> {
        if let Some(s) = &mut self.servers {
            s.run(stack);
        }
        Ok(false)
    }
}

/// Run one stack on `dev` with `app` (every backend's single-thread loop).
pub(crate) fn drive<D: Device + Sleep, A: StackApp>(
    dev: D,
    opts: &ServeOptions,
    app: &mut A,
    stop: &AtomicBool,
) -> Result<Stack, String> {
    let mut stack = Stack::new(StackConfig::default(), Rand::from_seed(host_seed()));
    let mut cfg = InterfaceConfig::new(opts.mac, opts.addr);
    cfg.mtu = Some(opts.mtu);
    stack.add_interface(cfg).map_err(|e| e.to_string())?;
    if let Some(gw) = opts.gateway {
        stack
            .set_default_gateway(gw)
            .map_err(|e| format!("--gateway: {e}"))?;
    }
    let capture = match &opts.pcap {
        Some(p) => Some(Arc::new(
            PcapCapture::create(p).map_err(|e| format!("--pcap {}: {e}", p.display()))?,
        )),
        None => None,
    };
    let mut ports = [Port::new(CaptureDevice::new(
        dev,
        capture.clone().unwrap_or_else(null_capture),
    ))];
    let capturing = capture.is_some();
    let epoch = StdInstant::now();
    let clock = || Instant::from_micros(epoch.elapsed().as_micros() as u64);
    let mut run = || -> Result<(), String> {
        app.start(&mut stack, opts)?;
        while !stop.load(Ordering::Relaxed) {
            let now = clock();
            if capturing {
                ports[0].device_mut().set_now(now);
            }
            let r = stack.poll(now, &mut ports);
            if app.run(&mut stack, now)? {
                // Send what the app's last calls queued (an ACK, a FIN) before leaving.
                let now = clock();
                if capturing {
                    ports[0].device_mut().set_now(now);
                }
                stack.poll(now, &mut ports);
                break;
            }
            if r.rx_frames == 0 && r.tx_frames == 0 && ports[0].tx_backlog() == 0 {
                let timeout = stack.poll_at().map(|t| t.saturating_duration_since(now));
                // Wake at least every 100 ms to notice a stop request.
                let timeout = Some(timeout.map_or(Duration::from_millis(100), |t| {
                    t.min(Duration::from_millis(100))
                }));
                ports[0].device_mut().inner_mut().sleep(timeout)?;
            }
        }
        Ok(())
    };
    let result = run();
    // The capture is complete also when the run failed: that is when it is wanted.
    if let Some(c) = &capture {
        c.flush().map_err(|e| format!("--pcap: {e}"))?;
    }
    result.map(|()| stack)
}

/// A capture that writes nowhere, for when `--pcap` is not given.
fn null_capture() -> Arc<PcapCapture> {
    Arc::new(
        PcapCapture::new(std::io::sink()).expect("writing a pcap header to io::sink cannot fail"),
    )
}

fn describe_ports(opts: &ServeOptions) -> String {
    let p = opts.ports;
    let mut s = String::new();
    for (name, port) in [
        ("echo", p.echo),
        ("discard", p.discard),
        ("chargen", p.chargen),
        ("http", p.http),
        ("udp-echo", p.udp_echo),
    ] {
        if let Some(port) = port {
            s.push_str(&format!(" {name}:{port}"));
        }
    }
    if s.is_empty() {
        s
    } else {
        format!(";{s}")
    }
}
