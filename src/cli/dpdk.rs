//! `rumpnet serve --backend dpdk` (and `connect`): the glue between the DPDK backend and
//! the CLI.
//!
//! The `[dpdk]` table of the config file says how to start the EAL (hugepages or not,
//! memory, vdevs, extra arguments), which port to use and how to size its queues and
//! pool; [`run`] starts the EAL, configures and starts the port, waits for the link,
//! runs the stack on queue pair 0 with the shared single-thread loop
//! ([`drive`](super::serve::drive)), and prints the port's counters at the end.
//!
//! DPDK has no file descriptor to sleep on, so `idle = "busy"` spins, and `idle = "wait"`
//! spins a little and then sleeps 50 µs at a time (or until the next stack timer, if
//! sooner): an idle stack costs a few percent of a core, and a new frame waits at most
//! about that long (plus the kernel's timer slack) before it is seen.

use std::io::Write;
use std::sync::atomic::AtomicBool;

use serde::Deserialize;

use rumpnet::dpdk::{Eal, Mbuf, Mempool, Port, PortBuilder, PortRef, QueuePair};
use rumpnet::runtime::rss::SYMMETRIC_KEY;
use rumpnet::stack::device::{Capabilities, Device};
use rumpnet::stack::time::Duration;
use rumpnet::stack::wire::EthernetAddress;
use rumpnet::stack::Stack;

use super::config::{Idle, ServeOptions};
use super::serve::{drive, Sleep, StackApp};

/// The `[dpdk]` table. Every key is optional.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DpdkConfig {
    /// Back DPDK's memory with hugepages (`--in-memory`, needs `nr_hugepages` set) or
    /// not (`--no-huge`, plain memory: virtual devices only).
    #[serde(default)]
    pub hugepages: bool,
    /// EAL memory in MiB (`-m`).
    #[serde(default = "default_memory_mb")]
    pub memory_mb: u32,
    /// Scan the PCI bus for NICs bound to a DPDK driver (vfio-pci) [default: the value
    /// of `hugepages`; physical NICs need hugepages for DMA].
    pub pci: Option<bool>,
    /// `--file-prefix`, unique per process [default: rumpnet-<pid>].
    pub file_prefix: Option<String>,
    /// `--log-level` of DPDK's own messages (on stderr).
    #[serde(default = "default_log_level")]
    pub log_level: String,
    /// The EAL's CPUs, as `--lcores` takes them [default: the `cores` of the config,
    /// else lcore 0 floating over every CPU this process may use].
    pub lcores: Option<String>,
    /// Virtual devices, one `--vdev` each (`net_memif0,role=server,socket=/run/x.sock`).
    #[serde(default)]
    pub vdevs: Vec<String>,
    /// Further EAL arguments, appended as written (`["-a", "0000:01:00.0"]`).
    #[serde(default)]
    pub eal_args: Vec<String>,
    /// The port: its id, or its name (`net_memif0`, `0000:01:00.0`) [default: 0].
    pub port: Option<PortKey>,
    /// Receive / transmit queues (one pair per shard).
    #[serde(default = "one")]
    pub rx_queues: u16,
    #[serde(default = "one")]
    pub tx_queues: u16,
    /// Descriptors per receive / transmit ring.
    #[serde(default = "default_ring")]
    pub rx_ring: u16,
    #[serde(default = "default_ring")]
    pub tx_ring: u16,
    /// Frames per burst (1 to 64).
    #[serde(default = "default_burst")]
    pub burst: usize,
    /// Mbufs in the pool (2^k - 1 is best for DPDK).
    #[serde(default = "default_mempool_size")]
    pub mempool_size: u32,
    /// Per-lcore cache of the pool.
    #[serde(default = "default_mempool_cache")]
    pub mempool_cache: u32,
    /// How long to wait for the link before giving up, in ms; 0: do not wait (a memif
    /// server whose client starts later).
    #[serde(default = "default_link_timeout")]
    pub link_timeout_ms: u64,
    /// Receive every destination MAC (the stack's MAC is not the port's).
    #[serde(default = "yes")]
    pub promiscuous: bool,
    /// Give the stack the port's own MAC instead of `mac` / the derived one (a NIC
    /// without promiscuous mode).
    #[serde(default)]
    pub mac_from_port: bool,
}

/// A port id or name.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum PortKey {
    Id(u16),
    Name(String),
}

fn default_memory_mb() -> u32 {
    256
}
fn default_log_level() -> String {
    "notice".into()
}
fn one() -> u16 {
    1
}
fn default_ring() -> u16 {
    1024
}
fn default_burst() -> usize {
    32
}
fn default_mempool_size() -> u32 {
    8191
}
fn default_mempool_cache() -> u32 {
    256
}
fn default_link_timeout() -> u64 {
    10_000
}
fn yes() -> bool {
    true
}

impl DpdkConfig {
    /// Parse and check the `[dpdk]` table.
    pub fn from_table(table: &toml::Table) -> Result<DpdkConfig, String> {
        let c: DpdkConfig = toml::Value::Table(table.clone())
            .try_into()
            .map_err(|e: toml::de::Error| format!("[dpdk]: {}", e.message().trim()))?;
        if !(16..=1 << 20).contains(&c.memory_mb) {
            return Err(format!(
                "[dpdk] memory-mb {} is outside 16..=1048576",
                c.memory_mb
            ));
        }
        if c.burst == 0 || c.burst > rumpnet::dpdk::MAX_BURST {
            return Err(format!(
                "[dpdk] burst {} is outside 1..={}",
                c.burst,
                rumpnet::dpdk::MAX_BURST
            ));
        }
        if c.rx_queues == 0 || c.tx_queues == 0 {
            return Err("[dpdk] rx-queues and tx-queues are at least 1".into());
        }
        if c.rx_ring < 32 || c.tx_ring < 32 {
            return Err("[dpdk] rx-ring and tx-ring are at least 32 descriptors".into());
        }
        let need = u32::from(c.rx_ring) * u32::from(c.rx_queues) + u32::from(c.tx_ring) + 1024;
        if c.mempool_size < need {
            return Err(format!(
                "[dpdk] mempool-size {} is too small: the rings alone hold {} mbufs (give at least {need})",
                c.mempool_size,
                u32::from(c.rx_ring) * u32::from(c.rx_queues) + u32::from(c.tx_ring)
            ));
        }
        if c.mempool_cache > 512 || c.mempool_cache > c.mempool_size / 2 {
            return Err(format!(
                "[dpdk] mempool-cache {} must be at most 512 and half the pool",
                c.mempool_cache
            ));
        }
        if let Some(p) = &c.file_prefix {
            if p.is_empty() || p.contains(['/', ' ', '\0']) {
                return Err(format!("[dpdk] file-prefix {p:?}: a plain file name"));
            }
        }
        for v in c.vdevs.iter().chain(&c.eal_args) {
            if v.contains('\0') {
                return Err(format!("[dpdk] {v:?} contains a NUL byte"));
            }
        }
        Ok(c)
    }

    /// The EAL's arguments: ours first, then `eal-args`.
    pub fn eal_args(&self, cores: &[usize]) -> Result<Vec<String>, String> {
        let mut a: Vec<String> = vec!["rumpnet".into()];
        let mut push = |s: &str| a.push(s.to_string());
        if self.hugepages {
            // Hugepage memory without a hugetlbfs mount or files left behind.
            push("--in-memory");
        } else {
            // `--in-memory` is refused with `--no-huge`; `--no-shconf` is its part
            // that applies (no runtime files, no multi-process).
            push("--no-huge");
            push("--no-shconf");
        }
        push("-m");
        push(&self.memory_mb.to_string());
        if !self.pci.unwrap_or(self.hugepages) {
            push("--no-pci");
        }
        push("--no-telemetry");
        push("--file-prefix");
        let prefix = self
            .file_prefix
            .clone()
            .unwrap_or_else(|| format!("rumpnet-{}", std::process::id()));
        push(&prefix);
        push("--log-level");
        push(&self.log_level);
        let lcores = match (&self.lcores, cores) {
            (Some(l), _) => l.clone(),
            (None, [c, ..]) => format!("0@{c}"),
            (None, []) => format!("0@({})", allowed_cpus()?),
        };
        push("--lcores");
        push(&lcores);
        for v in &self.vdevs {
            push("--vdev");
            push(v);
        }
        a.extend(self.eal_args.iter().cloned());
        Ok(a)
    }

    fn port_ref(&self) -> PortRef {
        match &self.port {
            None => PortRef::Id(0),
            Some(PortKey::Id(i)) => PortRef::Id(*i),
            Some(PortKey::Name(n)) => PortRef::Name(n.clone()),
        }
    }
}

/// The CPUs this process may run on, as a comma-separated list (for `--lcores`).
fn allowed_cpus() -> Result<String, String> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    // /proc/self/status has the affinity list in the kernel's own syntax ("0-3,8").
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| format!("dpdk: cannot read /proc/self/status: {e}"))?;
    Ok(status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| format!("0-{}", cpus - 1)))
}

/// Mbuf buffer size for `mtu`: DPDK's default (2048 + headroom) or enough for one
/// frame of a jumbo MTU, since frames are never chained.
fn data_room(mtu: usize) -> Result<u16, String> {
    let headroom = rumpnet::dpdk::mbuf_headroom();
    let need = (headroom + mtu + 22).div_ceil(64) * 64;
    u16::try_from(need.max(2048 + headroom))
        .map_err(|_| format!("--mtu {mtu}: a frame must fit one mbuf (at most 65535 B)"))
}

/// Queue pair 0 of the port, as `serve`'s loop drives it.
struct DpdkDevice {
    qp: QueuePair,
    idle: Idle,
    /// Consecutive polls that found nothing; sleeping starts after [`SPIN_POLLS`].
    idle_polls: u32,
}

/// Idle polls spent spinning before `idle = "wait"` sleeps: covers a request/response
/// turnaround without a sleep, so latency stays at polling speed under load.
const SPIN_POLLS: u32 = 2000;
/// The longest sleep of `idle = "wait"`: bounds the latency of the first frame after a
/// pause (DPDK gives no fd to wake on).
const IDLE_SLEEP: Duration = Duration::from_micros(50);

impl Device for DpdkDevice {
    type Frame = Mbuf;

    fn capabilities(&self) -> Capabilities {
        self.qp.capabilities()
    }

    fn rx_burst(&mut self, queue: u16, out: &mut Vec<Mbuf>, max: usize) -> usize {
        let n = self.qp.rx_burst(queue, out, max);
        if n > 0 {
            self.idle_polls = 0;
        }
        n
    }

    fn tx_burst(&mut self, queue: u16, frames: &mut Vec<Mbuf>) -> usize {
        self.qp.tx_burst(queue, frames)
    }

    fn alloc_tx(&mut self, len: usize) -> Option<Mbuf> {
        self.qp.alloc_tx(len)
    }

    fn recycle(&mut self, frames: &mut Vec<Mbuf>) {
        self.qp.recycle(frames)
    }

    fn recycle_one(&mut self, frame: Mbuf, batch: &mut Vec<Mbuf>) {
        self.qp.recycle_one(frame, batch)
    }

    fn tx_allocator(&self) -> Option<Box<dyn rumpnet::stack::device::TxAllocator<Mbuf>>> {
        self.qp.tx_allocator()
    }
}

impl Sleep for DpdkDevice {
    fn sleep(&mut self, timeout: Option<Duration>) -> Result<(), String> {
        if self.idle == Idle::Busy {
            return Ok(());
        }
        if self.idle_polls < SPIN_POLLS {
            self.idle_polls += 1;
            std::hint::spin_loop();
            return Ok(());
        }
        let t = timeout.map_or(IDLE_SLEEP, |t| t.min(IDLE_SLEEP));
        if !t.is_zero() {
            std::thread::sleep(t);
        }
        Ok(())
    }
}

/// Run the stack on the dpdk backend configured by the `[dpdk]` table.
pub(crate) fn run<A: StackApp>(
    opts: &ServeOptions,
    table: &toml::Table,
    app: &mut A,
    stop: &AtomicBool,
) -> Result<Stack, String> {
    let cfg = DpdkConfig::from_table(table)?;
    if cfg.rx_queues > 1 || cfg.tx_queues > 1 || opts.cores.len() > 1 {
        return Err(format!(
            "backend `dpdk`: {} rx / {} tx queues and {} cores asked of a single-stack run; \
             `serve --cores A,B,..` runs one shard per queue pair",
            cfg.rx_queues,
            cfg.tx_queues,
            opts.cores.len()
        ));
    }
    let mtu = u16::try_from(opts.mtu).map_err(|_| format!("--mtu {} too large", opts.mtu))?;
    let eal = Eal::init(cfg.eal_args(&opts.cores)?).map_err(|e| format!("dpdk: {e}"))?;
    let result = run_port(&eal, &cfg, opts, mtu, app, stop);
    // Hand the EAL's resources back when nothing of it is left (always, unless a pool
    // had to be leaked with mbufs out).
    let _ = eal.cleanup();
    result
}

/// `serve --cores A,B,..` on DPDK: one RX/TX queue pair per shard (RSS with the
/// runtime's symmetric key, so the NIC and software RSS agree), each shard polling its
/// own pair, run to completion; the shards are placed near the port's NUMA node.
pub(crate) fn run_sharded(opts: &ServeOptions, table: &toml::Table) -> Result<String, String> {
    let cfg = DpdkConfig::from_table(table)?;
    let n = if opts.pipelined { 1 } else { opts.cores.len() };
    let nq = u16::try_from(n).map_err(|_| format!("--cores: {n} CPUs is too many"))?;
    if (cfg.rx_queues > 1 && cfg.rx_queues != nq) || (cfg.tx_queues > 1 && cfg.tx_queues != nq) {
        return Err(format!(
            "backend `dpdk`: rx-queues {} / tx-queues {} do not match the {n} shards of --cores \
             (one queue pair per shard; leave them out)",
            cfg.rx_queues, cfg.tx_queues
        ));
    }
    let mtu = u16::try_from(opts.mtu).map_err(|_| format!("--mtu {} too large", opts.mtu))?;
    // The shards are the runtime's threads, pinned by it (DPDK's burst calls need no
    // lcore; mbufs then bypass the per-lcore mempool cache).
    // Its main lcore may run on any CPU the process may use, so the runtime still sees
    // them all when it places the shards.
    let eal = Eal::init(cfg.eal_args(&[])?).map_err(|e| format!("dpdk: {e}"))?;
    let result = (|| {
        let pools = (0..n)
            .map(|q| {
                Mempool::create(
                    &eal,
                    &format!("rumpnet-q{q}"),
                    cfg.mempool_size,
                    cfg.mempool_cache,
                    data_room(opts.mtu)?,
                    Some(eal.socket_id()),
                )
                .map_err(|e| format!("dpdk: {e}"))
            })
            .collect::<Result<Vec<_>, String>>()?;
        let port = PortBuilder::new(cfg.port_ref())
            .queues(nq, nq)
            .rings(cfg.rx_ring, cfg.tx_ring)
            .mtu(mtu)
            .burst(cfg.burst)
            .checksum_offload(opts.offloads)
            .rss_key(&SYMMETRIC_KEY)
            .promiscuous(cfg.promiscuous)
            .start(&eal, &pools)
            .map_err(|e| format!("dpdk: {e}"))?;
        let link = if cfg.link_timeout_ms > 0 {
            port.wait_link_up(Duration::from_millis(cfg.link_timeout_ms))
        } else {
            port.link()
        }
        .map_err(|e| format!("dpdk: {e}"))?;
        let mut opts = opts.clone();
        if cfg.mac_from_port {
            opts.mac = EthernetAddress(port.mac().map_err(|e| format!("dpdk: {e}"))?);
        }
        let devs = (0..nq)
            .map(|q| {
                port.queue_pair(q)
                    .map(|qp| DpdkDevice {
                        qp,
                        // The runtime's shard loop does the idling.
                        idle: Idle::Busy,
                        idle_polls: 0,
                    })
                    .map_err(|e| format!("dpdk: {e}"))
            })
            .collect::<Result<Vec<_>, String>>()?;
        {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(
                out,
                "dpdk: {} on port {} {} (driver {}), link {link}, {n} queue pairs, offloads: {}",
                rumpnet::dpdk::dpdk_version(),
                port.id(),
                port.name(),
                port.driver(),
                describe_offloads(&devs[0].qp.capabilities()),
            );
            let _ = out.flush();
        }
        let numa = usize::try_from(eal.socket_id()).ok();
        let report = super::serve::run_sharded(&opts, devs, numa);
        print_port_stats(&port);
        report
    })();
    let _ = eal.cleanup();
    result
}

fn run_port<A: StackApp>(
    eal: &Eal,
    cfg: &DpdkConfig,
    opts: &ServeOptions,
    mtu: u16,
    app: &mut A,
    stop: &AtomicBool,
) -> Result<Stack, String> {
    let pool = Mempool::create(
        eal,
        "rumpnet-q0",
        cfg.mempool_size,
        cfg.mempool_cache,
        data_room(opts.mtu)?,
        Some(eal.socket_id()),
    )
    .map_err(|e| format!("dpdk: {e}"))?;
    let port = PortBuilder::new(cfg.port_ref())
        .queues(cfg.rx_queues, cfg.tx_queues)
        .rings(cfg.rx_ring, cfg.tx_ring)
        .mtu(mtu)
        .burst(cfg.burst)
        .checksum_offload(opts.offloads)
        .rss_key(&SYMMETRIC_KEY)
        .promiscuous(cfg.promiscuous)
        .start(eal, std::slice::from_ref(&pool))
        .map_err(|e| format!("dpdk: {e}"))?;
    let link = if cfg.link_timeout_ms > 0 {
        port.wait_link_up(Duration::from_millis(cfg.link_timeout_ms))
    } else {
        port.link()
    }
    .map_err(|e| format!("dpdk: {e}"))?;
    let mut opts = opts.clone();
    if cfg.mac_from_port {
        opts.mac = EthernetAddress(port.mac().map_err(|e| format!("dpdk: {e}"))?);
    }
    let qp = port.queue_pair(0).map_err(|e| format!("dpdk: {e}"))?;
    {
        let caps = qp.capabilities();
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "dpdk: {} on port {} {} (driver {}), link {link}, mtu {}, rings {:?}, burst {}, offloads: {}",
            rumpnet::dpdk::dpdk_version(),
            port.id(),
            port.name(),
            port.driver(),
            caps.mtu,
            port.rings(),
            caps.max_burst,
            describe_offloads(&caps),
        );
        let _ = out.flush();
    }
    let dev = DpdkDevice {
        qp,
        idle: opts.idle,
        idle_polls: 0,
    };
    let result = drive(dev, &opts, app, stop);
    print_port_stats(&port);
    result
}

fn describe_offloads(c: &Capabilities) -> String {
    let mut v = Vec::new();
    for (on, name) in [
        (c.rx_checksum.ipv4, "rx-ipv4-csum"),
        (c.rx_checksum.tcp, "rx-tcp-csum"),
        (c.rx_checksum.udp, "rx-udp-csum"),
        (c.tx_checksum.ipv4, "tx-ipv4-csum"),
        (c.tx_checksum.tcp, "tx-tcp-csum"),
        (c.tx_checksum.udp, "tx-udp-csum"),
        (c.tso_max > 0, "tso"),
        (c.rss_hash, "rss-hash"),
    ] {
        if on {
            v.push(name);
        }
    }
    if v.is_empty() {
        "none (checksums in software)".into()
    } else {
        v.join(" ")
    }
}

/// The port's counters (the device's `rte_eth_stats` and the backend's drops), printed
/// before the stack's own in the report.
fn print_port_stats(port: &Port) {
    let mut out = std::io::stdout().lock();
    match (port.stats(), port.link()) {
        (Ok(s), Ok(l)) => {
            let _ = write!(
                out,
                "dpdk port {} ({}) counters, link {l}:\n{s}",
                port.id(),
                port.name()
            );
        }
        (Err(e), _) | (_, Err(e)) => {
            let _ = writeln!(out, "dpdk: cannot read port counters: {e}");
        }
    }
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(text: &str) -> Result<DpdkConfig, String> {
        let t: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
        DpdkConfig::from_table(&t)
    }

    #[test]
    fn defaults_make_a_no_hugepage_eal_with_a_unique_prefix() {
        let c = cfg("vdevs = [\"net_null0\"]").unwrap();
        let a = c.eal_args(&[]).unwrap();
        let s = a.join(" ");
        assert!(s.contains("--no-huge --no-shconf -m 256 --no-pci"), "{s}");
        assert!(
            s.contains(&format!("--file-prefix rumpnet-{}", std::process::id())),
            "{s}"
        );
        assert!(s.contains("--vdev net_null0"), "{s}");
        assert!(s.contains("--lcores 0@("), "{s}");
        let a = cfg("hugepages = true")
            .unwrap()
            .eal_args(&[3])
            .unwrap()
            .join(" ");
        assert!(a.contains("--in-memory") && !a.contains("--no-pci"), "{a}");
        assert!(a.contains("--lcores 0@3"), "{a}");
    }

    #[test]
    fn bad_tables_name_the_key() {
        let e = |t: &str| cfg(t).unwrap_err();
        assert!(e("bogus = 1").contains("bogus"));
        assert!(e("burst = 0").contains("burst"));
        assert!(e("burst = 65").contains("burst"));
        assert!(e("mempool-size = 100").contains("mempool-size"));
        assert!(e("mempool-cache = 4000").contains("mempool-cache"));
        assert!(e("memory-mb = 1").contains("memory-mb"));
        assert!(e("rx-queues = 0").contains("rx-queues"));
        assert!(e("file-prefix = \"a/b\"").contains("file-prefix"));
        assert!(e("port = 1.5").contains("port") || !e("port = 1.5").is_empty());
        assert!(
            matches!(cfg("port = \"net_memif0\"").unwrap().port_ref(), PortRef::Name(n) if n == "net_memif0")
        );
        assert!(matches!(
            cfg("port = 2").unwrap().port_ref(),
            PortRef::Id(2)
        ));
    }

    #[test]
    fn data_room_fits_the_mtu() {
        assert_eq!(
            usize::from(data_room(1500).unwrap()),
            2048 + rumpnet::dpdk::mbuf_headroom()
        );
        assert!(
            usize::from(data_room(9000).unwrap()) >= 9000 + 22 + rumpnet::dpdk::mbuf_headroom()
        );
        assert!(data_room(65521).is_err());
    }

    #[test]
    fn shipped_dpdk_configs_are_valid() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
        let mut n = 0;
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if !(name.starts_with("dpdk-") && name.ends_with(".toml")) {
                continue;
            }
            let c = super::super::config::FileConfig::load(&p).unwrap();
            let table = c.dpdk.clone().unwrap_or_default();
            let o = ServeOptions::from_config(c).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(
                matches!(o.backend, super::super::config::Backend::Dpdk(_)),
                "{name}"
            );
            DpdkConfig::from_table(&table).unwrap_or_else(|e| panic!("{name}: {e}"));
            n += 1;
        }
        assert!(n >= 3, "configs/dpdk-*.toml: {n} found");
    }
}
