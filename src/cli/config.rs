//! `rumpnet serve` settings: a TOML file, overridden by flags, checked into one
//! [`ServeOptions`]. Every flag has a key of the same name in the file (`host-addr`,
//! `udp-echo`, ...); an unknown key or a bad value is a one-line error naming it.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use rumpnet::servers::ServerPorts;
use rumpnet::stack::wire::{EthernetAddress, Ipv4Addr, Ipv4Cidr};

/// The file, as written (every key optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FileConfig {
    /// `tap` (default), `dpdk` or `netmap` (the last two need their cargo feature).
    pub backend: Option<String>,
    /// CPUs to run shards on, one shard each (`[0, 1]`); absent: one thread, unpinned.
    pub cores: Option<Vec<usize>>,
    /// With `cores`: `run-to-completion` (one backend queue per shard, the default) or
    /// `pipelined` (one I/O thread on one queue, rings to the shards).
    pub mode: Option<String>,
    /// The `[dpdk]` table, checked by the DPDK backend's glue (src/cli/dpdk.rs).
    pub dpdk: Option<toml::Table>,
    /// The `[netmap]` table, checked by the netmap backend's glue (src/cli/netmap.rs).
    pub netmap: Option<toml::Table>,
    pub tap: Option<String>,
    pub addr: Option<String>,
    pub gateway: Option<String>,
    pub mac: Option<String>,
    pub host_addr: Option<String>,
    pub mtu: Option<u32>,
    pub pcap: Option<PathBuf>,
    pub offloads: Option<bool>,
    pub impair: Option<String>,
    pub idle: Option<String>,
    pub echo: Option<u16>,
    pub discard: Option<u16>,
    pub chargen: Option<u16>,
    pub http: Option<u16>,
    pub udp_echo: Option<u16>,
}

impl FileConfig {
    /// Read and parse `path`.
    pub fn load(path: &Path) -> Result<FileConfig, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read config {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| {
            let msg = e.message().to_string();
            format!("config {}: {}", path.display(), msg.trim())
        })
    }

    /// Values from flags win over the file's.
    pub fn overlay(mut self, flags: FileConfig) -> FileConfig {
        macro_rules! take {
            ($($f:ident),*) => { $( if flags.$f.is_some() { self.$f = flags.$f; } )* };
        }
        take!(
            backend, cores, mode, dpdk, netmap, tap, addr, gateway, mac, host_addr, mtu, pcap,
            offloads, impair, idle, echo, discard, chargen, http, udp_echo
        );
        self
    }
}

/// How the stack waits when there is nothing to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idle {
    /// Spin on the device (lowest latency, one core at 100%).
    Busy,
    /// Sleep on the device's readiness until the next timer.
    Wait,
}

/// Which packet-I/O backend `serve` runs on.
#[derive(Debug, Clone, PartialEq)]
pub enum Backend {
    /// A Linux TAP device (`tap`, `offloads`, `host-addr` apply).
    Tap,
    /// DPDK; the `[dpdk]` table of the config file, as written (its glue checks it).
    Dpdk(toml::Table),
    /// netmap; the `[netmap]` table of the config file, as written.
    Netmap(toml::Table),
}

/// Everything `serve` needs, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct ServeOptions {
    pub backend: Backend,
    /// CPUs for the shards (one shard each); empty: one unpinned thread, as before.
    pub cores: Vec<usize>,
    /// With `cores`: an I/O thread moves frames between one backend queue and the
    /// shards through rings (instead of each shard polling its own queue).
    pub pipelined: bool,
    pub tap: String,
    pub addr: Ipv4Cidr,
    pub gateway: Option<Ipv4Addr>,
    pub mac: EthernetAddress,
    pub host_addr: Option<Ipv4Cidr>,
    pub mtu: usize,
    pub pcap: Option<PathBuf>,
    pub offloads: bool,
    pub impair: Option<String>,
    pub idle: Idle,
    pub ports: ServerPorts,
}

fn parse<T: std::str::FromStr>(what: &str, v: &str) -> Result<T, String> {
    v.trim()
        .parse()
        .map_err(|_| format!("invalid {what}: `{v}`"))
}

impl ServeOptions {
    /// Check the merged settings.
    pub fn from_config(c: FileConfig) -> Result<ServeOptions, String> {
        let addr: Ipv4Cidr = match &c.addr {
            Some(a) => parse("--addr (expected IPV4/PREFIX, e.g. 10.77.0.2/24)", a)?,
            None => return Err("--addr is required (or `addr` in the config file)".into()),
        };
        let ip = addr.address();
        if ip.is_unspecified() || ip.is_multicast() || ip.is_broadcast() || ip.is_loopback() {
            return Err(format!("--addr {addr} is not a usable host address"));
        }
        let gateway = match &c.gateway {
            Some(g) => {
                let g: Ipv4Addr = parse("--gateway", g)?;
                if !addr.contains(g) || g == ip {
                    return Err(format!("--gateway {g} is not another address in {addr}"));
                }
                Some(g)
            }
            None => None,
        };
        let host_addr = match &c.host_addr {
            Some(h) => {
                let h: Ipv4Cidr = parse("--host-addr (expected IPV4/PREFIX)", h)?;
                if h.address() == ip || !addr.contains(h.address()) {
                    return Err(format!(
                        "--host-addr {h} must be another address in {addr}'s subnet"
                    ));
                }
                Some(h)
            }
            None => None,
        };
        let mac = match &c.mac {
            Some(m) => {
                let m: EthernetAddress = parse("--mac (expected xx:xx:xx:xx:xx:xx)", m)?;
                if !m.is_unicast() {
                    return Err(format!("--mac {m} is not a unicast address"));
                }
                m
            }
            // Locally administered, derived from the address so it is stable per setup.
            None => {
                let o = ip.octets();
                EthernetAddress([0x02, 0x72, o[0], o[1], o[2], o[3]])
            }
        };
        let mtu = c.mtu.unwrap_or(1500);
        if !(576..=65521).contains(&mtu) {
            return Err(format!("--mtu {mtu} is outside 576..=65521"));
        }
        let tap = c.tap.unwrap_or_else(|| "rumpnet0".into());
        if tap.is_empty() || tap.len() > 15 || tap.contains(['/', ' ', '\0']) {
            return Err(format!(
                "--tap `{tap}`: an interface name has 1 to 15 characters, without '/' or spaces"
            ));
        }
        let idle = match c.idle.as_deref().unwrap_or("wait") {
            "wait" => Idle::Wait,
            "busy" | "busy-poll" => Idle::Busy,
            other => return Err(format!("--idle `{other}`: expected `wait` or `busy`")),
        };
        for (name, p) in [
            ("echo", c.echo),
            ("discard", c.discard),
            ("chargen", c.chargen),
            ("http", c.http),
            ("udp-echo", c.udp_echo),
        ] {
            if p == Some(0) {
                return Err(format!("--{name} 0: a server needs a port from 1 to 65535"));
            }
        }
        let tcp_ports = [c.echo, c.discard, c.chargen, c.http];
        for (i, a) in tcp_ports.iter().enumerate() {
            if a.is_some() && tcp_ports[i + 1..].contains(a) {
                return Err(format!(
                    "tcp port {} is given to two servers",
                    a.unwrap_or(0)
                ));
            }
        }
        let backend = match c.backend.as_deref().unwrap_or("tap") {
            "tap" => Backend::Tap,
            "dpdk" => Backend::Dpdk(c.dpdk.unwrap_or_default()),
            "netmap" => Backend::Netmap(c.netmap.unwrap_or_default()),
            other => {
                return Err(format!(
                    "--backend `{other}`: expected `tap`, `dpdk` or `netmap`"
                ))
            }
        };
        let cores = c.cores.unwrap_or_default();
        if cores.len() > 64 {
            return Err(format!("--cores: {} CPUs given, at most 64", cores.len()));
        }
        for (i, a) in cores.iter().enumerate() {
            if cores[i + 1..].contains(a) {
                return Err(format!("--cores: CPU {a} is given twice"));
            }
        }
        let pipelined = match c.mode.as_deref().unwrap_or("run-to-completion") {
            "run-to-completion" | "rtc" => false,
            "pipelined" => true,
            other => {
                return Err(format!(
                    "--mode `{other}`: expected `run-to-completion` or `pipelined`"
                ))
            }
        };
        if pipelined && cores.is_empty() {
            return Err("--mode pipelined needs --cores (the CPUs of the shards)".into());
        }
        Ok(ServeOptions {
            backend,
            cores,
            pipelined,
            tap,
            addr,
            gateway,
            mac,
            host_addr,
            mtu: mtu as usize,
            pcap: c.pcap,
            offloads: c.offloads.unwrap_or(true),
            impair: c.impair,
            idle,
            ports: ServerPorts {
                echo: c.echo,
                discard: c.discard,
                chargen: c.chargen,
                http: c.http,
                udp_echo: c.udp_echo,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(toml_text: &str, flags: FileConfig) -> Result<ServeOptions, String> {
        let file: FileConfig = toml::from_str(toml_text).map_err(|e| e.to_string())?;
        ServeOptions::from_config(file.overlay(flags))
    }

    #[test]
    fn file_and_flags_merge_with_flags_winning() {
        let o = opts(
            "tap = \"rn1\"\naddr = \"10.77.0.2/24\"\nhost-addr = \"10.77.0.1/24\"\necho = 7\nhttp = 80\nudp-echo = 7\n",
            FileConfig {
                http: Some(8080),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(o.tap, "rn1");
        assert_eq!(o.ports.http, Some(8080));
        assert_eq!(o.ports.echo, Some(7));
        assert_eq!(o.host_addr.unwrap().to_string(), "10.77.0.1/24");
        assert_eq!(o.mac.to_string(), "02:72:0a:4d:00:02");
        assert!(o.offloads);
        assert_eq!(o.idle, Idle::Wait);
    }

    #[test]
    fn bad_values_name_the_problem() {
        let e = |t: &str| opts(t, FileConfig::default()).unwrap_err();
        assert!(e("").contains("--addr is required"));
        assert!(e("addr = \"10.0.0.1\"").contains("--addr"));
        assert!(e("addr = \"10.0.0.1/24\"\nmtu = 20").contains("--mtu"));
        assert!(e("addr = \"10.0.0.1/24\"\nhost-addr = \"10.9.0.1/24\"").contains("--host-addr"));
        assert!(
            e("addr = \"10.0.0.1/24\"\ntap = \"a-very-long-interface-name\"").contains("--tap")
        );
        assert!(e("addr = \"10.0.0.1/24\"\nmac = \"ff:ff:ff:ff:ff:ff\"").contains("--mac"));
        assert!(e("addr = \"10.0.0.1/24\"\necho = 7\nhttp = 7").contains("two servers"));
        assert!(e("addr = \"10.0.0.1/24\"\nidle = \"nap\"").contains("--idle"));
        assert!(e("addr = \"10.0.0.1/24\"\nmode = \"turbo\"").contains("--mode"));
        assert!(e("addr = \"10.0.0.1/24\"\nmode = \"pipelined\"").contains("--cores"));
        assert!(e("addr = \"10.0.0.1/24\"\ncores = [0, 0]").contains("twice"));
        assert!(e("addr = \"10.0.0.1/24\"\nbackend = \"vpp\"").contains("--backend"));
        assert!(toml::from_str::<FileConfig>("bogus = 1").is_err());
    }

    #[test]
    fn shipped_example_config_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/tap.toml");
        let c = FileConfig::load(&path).unwrap();
        ServeOptions::from_config(c).unwrap();
    }
}
