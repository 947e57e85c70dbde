//! `rumpnet serve --backend netmap`: the glue between the netmap backend and the CLI.
//!
//! The `[netmap]` table names the port and the spare-buffer pool; the stack runs on the
//! port's first ring pair in `serve`'s single-thread loop (open one port per shard,
//! `netmap:eth0-N`, to use more: docs/NETMAP.md).

use std::sync::atomic::AtomicBool;

use serde::Deserialize;

use rumpnet::netmap::{NetmapDevice, NetmapFrame, OpenOptions, PortSpec, RingMode};
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
}
