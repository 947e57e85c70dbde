//! `rumpnet serve --backend netmap`: the glue between the netmap backend and the CLI.
//!
//! The `[netmap]` table names the port and the spare-buffer pool. On one core the stack
//! runs on the port's first ring pair in `serve`'s single-thread loop; with `--cores
//! A,B,..` each shard opens its own ring pair of the interface on its own descriptor
//! (`netmap:eth0-0`, `netmap:eth0-1`, ...: [`run_sharded`], docs/NETMAP.md).

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use serde::Deserialize;

use rumpnet::netmap::{NetmapDevice, NetmapFrame, OpenOptions, PortKind, PortSpec, RingMode};
use rumpnet::stack::device::{Capabilities, Device, TxAllocator};
use rumpnet::stack::time::Duration;
use rumpnet::stack::Stack;

use super::config::{Idle, ServeOptions};
use super::serve::{drive, Sleep, StackApp};

/// The `[netmap]` table of the config file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct NetmapConfig {
    /// The port: `netmap:eth0`, `netmap:eth0-2`, `vale0:p1`, `netmap:eth0{1`, ...
    pub port: String,
    /// Extra buffers to ask the kernel for (the spare pool behind held RX frames and TX
    /// frames).
    #[serde(default = "default_extra_bufs")]
    pub extra_bufs: u32,
    /// Also bind the host rings (`netmap:eth0*`): frames to and from the host's own stack.
    #[serde(default)]
    pub host_rings: bool,
}

fn default_extra_bufs() -> u32 {
    OpenOptions::default().extra_bufs
}

impl NetmapConfig {
    /// Check the table as written.
    pub(crate) fn from_table(table: &toml::Table) -> Result<NetmapConfig, String> {
        let c: NetmapConfig = toml::Value::Table(table.clone())
            .try_into()
            .map_err(|e: toml::de::Error| format!("[netmap]: {}", e.message().trim()))?;
        let min = OpenOptions::default().min_extra_bufs;
        if !(min..=1 << 20).contains(&c.extra_bufs) {
            return Err(format!(
                "[netmap] extra-bufs {}: expected {min}..=1048576",
                c.extra_bufs
            ));
        }
        let spec: PortSpec = c.port.parse().map_err(|e| format!("[netmap] port: {e}"))?;
        if c.host_rings && spec.mode != RingMode::AllNic {
            return Err(format!(
                "[netmap] host-rings = true needs a port name without a ring suffix, got `{}`",
                c.port
            ));
        }
        Ok(c)
    }

    /// The name to open (`*` appended for host rings).
    fn port_name(&self) -> String {
        if self.host_rings {
            format!("{}*", self.port)
        } else {
            self.port.clone()
        }
    }
}

/// The port, and how `serve` idles on it.
struct NetmapServe {
    dev: NetmapDevice,
    busy: bool,
}

impl Device for NetmapServe {
    type Frame = NetmapFrame;
    fn capabilities(&self) -> Capabilities {
        self.dev.capabilities()
    }
    fn rx_burst(&mut self, queue: u16, out: &mut Vec<NetmapFrame>, max: usize) -> usize {
        self.dev.rx_burst(queue, out, max)
    }
    fn tx_burst(&mut self, queue: u16, frames: &mut Vec<NetmapFrame>) -> usize {
        self.dev.tx_burst(queue, frames)
    }
    fn alloc_tx(&mut self, len: usize) -> Option<NetmapFrame> {
        self.dev.alloc_tx(len)
    }
    fn tx_allocator(&self) -> Option<Box<dyn TxAllocator<NetmapFrame>>> {
        self.dev.tx_allocator()
    }
}

impl Sleep for NetmapServe {
    fn sleep(&mut self, timeout: Option<Duration>) -> Result<(), String> {
        // A sync that failed inside a burst stops `serve` here, with the kernel's error.
        if let Some(e) = self.dev.take_error() {
            return Err(e.to_string());
        }
        if self.busy {
            std::hint::spin_loop();
            return Ok(());
        }
        self.dev.wait(timeout).map_err(|e| e.to_string())
    }
}

/// Run the stack on the netmap backend configured by the `[netmap]` table.
pub(crate) fn run<A: StackApp>(
    opts: &ServeOptions,
    table: &toml::Table,
    app: &mut A,
    stop: &AtomicBool,
) -> Result<Stack, String> {
    let cfg = NetmapConfig::from_table(table)?;
    let open = OpenOptions {
        extra_bufs: cfg.extra_bufs,
        ..OpenOptions::default()
    };
    let dev = rumpnet::netmap::open(&cfg.port_name(), &open).map_err(|e| e.to_string())?;
    if opts.mtu + 14 > dev.buf_size() {
        return Err(format!(
            "--mtu {}: frames of {} bytes do not fit netmap's {}-byte buffers",
            opts.mtu,
            opts.mtu + 14,
            dev.buf_size()
        ));
    }
    let dev = NetmapServe {
        dev,
        busy: opts.idle == Idle::Busy,
    };
    drive(dev, opts, app, stop)
}

/// The port each of `shards` shards opens under `serve --cores`: ring pair `i` of the
/// configured interface for shard `i` (`netmap:eth0` → `netmap:eth0-0`, `netmap:eth0-1`,
/// ..., `/x` kept). netmap syncs and polls every ring bound to a descriptor, so one
/// descriptor per ring pair is what lets the shards share nothing. Names that cannot be
/// split that way are refused with the reason.
fn shard_port_names(cfg: &NetmapConfig, shards: usize) -> Result<Vec<String>, String> {
    let spec: PortSpec = cfg
        .port
        .parse()
        .map_err(|e| format!("[netmap] port: {e}"))?;
    let port = &cfg.port;
    let ifname = &spec.kernel_name;
    if cfg.host_rings {
        return Err(format!(
            "[netmap] host-rings = true with --cores: each shard binds one hardware ring pair \
             (netmap:{ifname}-N) and no shard would serve the host rings; leave host-rings out, \
             or serve on one core"
        ));
    }
    match (spec.kind, spec.mode) {
        (PortKind::Interface, RingMode::AllNic) => {}
        (PortKind::Interface, RingMode::OneNic(r)) => {
            return Err(format!(
                "[netmap] port `{port}` names ring pair {r} only; with --cores ({shards} shards) \
                 give the interface without a ring suffix, `netmap:{ifname}`: shard i opens \
                 netmap:{ifname}-i"
            ))
        }
        (PortKind::Interface, RingMode::Host) => {
            return Err(format!(
                "[netmap] port `{port}` is the host rings, which --cores cannot split; give the \
                 interface, `netmap:{ifname}`"
            ))
        }
        (PortKind::Interface, RingMode::NicAndHost) => {
            return Err(format!(
                "[netmap] port `{port}` binds every ring on one descriptor; with --cores give \
                 `netmap:{ifname}` (one ring pair per shard)"
            ))
        }
        (PortKind::Vale, _) => {
            return Err(format!(
                "[netmap] port `{port}`: a VALE port has one ring pair (the switch delivers to \
                 ring 0), so it serves one shard; drop --cores, or run one `serve` per VALE port"
            ))
        }
        (PortKind::PipeMaster | PortKind::PipeSlave, _) => {
            return Err(format!(
                "[netmap] port `{port}`: a netmap pipe has one ring pair, so it serves one shard; \
                 drop --cores"
            ))
        }
    }
    if shards > usize::from(rumpnet::netmap::name::MAX_RING_ID) + 1 {
        return Err(format!(
            "--cores: {shards} shards, netmap has at most 4096 ring pairs"
        ));
    }
    let x = if spec.exclusive { "/x" } else { "" };
    Ok((0..shards)
        .map(|i| format!("netmap:{ifname}-{i}{x}"))
        .collect())
}

/// One shard's port under the runtime. Its counters (and a failed sync, which
/// `rx_burst`/`tx_burst` cannot return) are written to `summary` when the shard drops it
/// at shutdown, for `serve`'s report.
struct ShardPort {
    dev: NetmapDevice,
    summary: Arc<Mutex<Vec<String>>>,
}

impl Device for ShardPort {
    type Frame = NetmapFrame;
    fn capabilities(&self) -> Capabilities {
        self.dev.capabilities()
    }
    fn rx_burst(&mut self, queue: u16, out: &mut Vec<NetmapFrame>, max: usize) -> usize {
        self.dev.rx_burst(queue, out, max)
    }
    fn tx_burst(&mut self, queue: u16, frames: &mut Vec<NetmapFrame>) -> usize {
        self.dev.tx_burst(queue, frames)
    }
    fn alloc_tx(&mut self, len: usize) -> Option<NetmapFrame> {
        self.dev.alloc_tx(len)
    }
    fn tx_allocator(&self) -> Option<Box<dyn TxAllocator<NetmapFrame>>> {
        self.dev.tx_allocator()
    }
}

impl Drop for ShardPort {
    fn drop(&mut self) {
        let s = self.dev.stats();
        let mut line = format!(
            "netmap {}: {} frames in, {} out, {} rx/{} tx syncs, {} held past a poll, {} dropped for want of a spare buffer, {} copied from other ports, {} sync errors",
            self.dev.name(),
            s.rx_frames,
            s.tx_frames,
            s.rxsyncs,
            s.txsyncs,
            s.rx_swapped,
            s.rx_no_spare,
            s.tx_copied,
            s.sync_errors,
        );
        if let Some(e) = self.dev.take_error() {
            line.push_str(&format!(" (last: {e})"));
        }
        self.summary
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(line);
    }
}

/// `serve --cores A,B,..` on netmap: shard `i` opens ring pair `i` of the interface on
/// its own descriptor and polls it, run to completion; the shards are placed near the
/// NIC's NUMA node. The interface must have exactly as many RX rings as there are shards
/// (the NIC spreads flows over all of them). Runs until SIGINT/SIGTERM.
pub(crate) fn run_sharded(opts: &ServeOptions, table: &toml::Table) -> Result<String, String> {
    let cfg = NetmapConfig::from_table(table)?;
    if opts.pipelined {
        return Err(
            "--mode pipelined: not on netmap, whose ring pairs each belong to one shard \
             (run to completion)"
                .into(),
        );
    }
    let n = opts.cores.len();
    let names = shard_port_names(&cfg, n)?;
    let open = OpenOptions {
        extra_bufs: cfg.extra_bufs,
        ..OpenOptions::default()
    };
    // The interface: what shard_port_names split, and whose NUMA node places the shards.
    let ifname = cfg
        .port
        .parse::<PortSpec>()
        .map_err(|e| format!("[netmap] port: {e}"))?
        .kernel_name;
    let summary = Arc::new(Mutex::new(Vec::new()));
    let mut devs = Vec::with_capacity(n);
    for name in &names {
        let dev = rumpnet::netmap::open(name, &open).map_err(|e| e.to_string())?;
        if devs.is_empty() {
            if opts.mtu + 14 > dev.buf_size() {
                return Err(format!(
                    "--mtu {}: frames of {} bytes do not fit netmap's {}-byte buffers",
                    opts.mtu,
                    opts.mtu + 14,
                    dev.buf_size()
                ));
            }
            let (tx, rx) = dev.interface_rings();
            if rx != n || tx < n {
                return Err(format!(
                    "--cores: {n} shards, but {ifname} has {rx} RX and {tx} TX rings: the NIC \
                     spreads flows over all its RX rings and one no shard binds is never read; \
                     give it one ring pair per shard (`ethtool -L {ifname} combined {n}`) or list \
                     {rx} CPUs"
                ));
            }
        }
        devs.push(ShardPort {
            dev,
            summary: Arc::clone(&summary),
        });
    }
    // None for virtual interfaces (and where sysfs does not say): no preference.
    let numa = rumpnet::runtime::topology::netdev_numa_node(Path::new("/sys"), &ifname);
    let report = super::serve::run_sharded(opts, devs, numa)?;
    let mut lines = summary.lock().unwrap_or_else(|e| e.into_inner()).clone();
    lines.sort();
    Ok(format!("{report}\n{}", lines.join("\n")))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::cli::config::{Backend, FileConfig};

    fn table(text: &str) -> toml::Table {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn shipped_netmap_config_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/netmap.toml");
        let opts = ServeOptions::from_config(FileConfig::load(&path).unwrap()).unwrap();
        let Backend::Netmap(t) = &opts.backend else {
            panic!("configs/netmap.toml selects {:?}", opts.backend);
        };
        let c = NetmapConfig::from_table(t).unwrap();
        assert!(c.port.starts_with("netmap:"));
        assert!(c.extra_bufs >= 256);
    }

    #[test]
    fn bad_tables_name_the_problem() {
        let e = |t: &str| NetmapConfig::from_table(&table(t)).unwrap_err();
        assert!(e("").contains("port"));
        assert!(e("port = \"netmap:eth0\"\nbogus = 1").contains("bogus"));
        assert!(e("port = \"eth0\"").contains("bad netmap port name"));
        assert!(e("port = \"netmap:eth0\"\nextra-bufs = 3").contains("extra-bufs"));
        assert!(e("port = \"netmap:eth0-1\"\nhost-rings = true").contains("host-rings"));
        let c =
            NetmapConfig::from_table(&table("port = \"netmap:eth0\"\nhost-rings = true")).unwrap();
        assert_eq!(c.port_name(), "netmap:eth0*");
        assert_eq!(c.extra_bufs, 4096);
        let v = NetmapConfig::from_table(&table("port = \"vale0:p1\"")).unwrap();
        assert_eq!(v.port_name(), "vale0:p1");
    }

    #[test]
    fn each_shard_opens_its_own_ring_pair() {
        let names = |t: &str, n| shard_port_names(&NetmapConfig::from_table(&table(t)).unwrap(), n);
        assert_eq!(
            names("port = \"netmap:eth0\"", 2).unwrap(),
            ["netmap:eth0-0", "netmap:eth0-1"]
        );
        assert_eq!(
            names("port = \"netmap:enp1s0f0/x\"", 3).unwrap(),
            [
                "netmap:enp1s0f0-0/x",
                "netmap:enp1s0f0-1/x",
                "netmap:enp1s0f0-2/x"
            ]
        );
        // Every name parses back to the ring pair it is meant for.
        for (i, n) in names("port = \"netmap:ix0\"", 4)
            .unwrap()
            .iter()
            .enumerate()
        {
            let spec: PortSpec = n.parse().unwrap();
            assert_eq!(spec.mode, RingMode::OneNic(i as u16));
            assert_eq!(spec.kernel_name, "ix0");
        }
        for (t, needle) in [
            ("port = \"netmap:eth0-1\"", "names ring pair 1 only"),
            ("port = \"netmap:eth0^\"", "host rings"),
            ("port = \"netmap:eth0*\"", "every ring on one descriptor"),
            ("port = \"vale0:p1\"", "VALE port"),
            ("port = \"netmap:eth0{1\"", "pipe"),
            ("port = \"netmap:eth0}1\"", "pipe"),
            ("port = \"netmap:eth0\"\nhost-rings = true", "host-rings"),
        ] {
            let e = names(t, 2).unwrap_err();
            assert!(e.contains(needle), "{t}: {e}");
        }
        assert!(names("port = \"netmap:eth0\"", 5000)
            .unwrap_err()
            .contains("4096"));
    }
}
