//! Where the runtime's threads run: the machine's CPUs as Linux describes them in sysfs
//! (core, package, NUMA node, which CPUs share each cache), the choice of a CPU for every
//! shard and I/O thread, and pinning.
//!
//! Only the CPUs the process may run on are considered (its affinity mask, as
//! `core_affinity::get_core_ids` reports it), so a runtime started under `taskset` or in
//! a cpuset stays inside it. Where sysfs is missing (not Linux, a restricted container),
//! the mask alone is used, without core, node or cache information. Pinning that fails
//! is logged and the thread runs unpinned: a runtime never fails for want of a CPU.
//!
//! With the `hwloc` cargo feature the topology comes from the system's libhwloc
//! ([`Topology::from_hwloc`]), falling back to sysfs and then to the mask when hwloc
//! fails; without it sysfs gives what placement needs on Linux, without a C library.
//! Where the backend knows its device's NUMA node ([`pci_numa_node`],
//! [`netdev_numa_node`]), [`Topology::place_near`] puts the threads on that node's cores
//! first, so frames are processed next to the memory the device writes them to.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

#[cfg(feature = "hwloc")]
mod hwloc;
#[cfg(feature = "hwloc")]
pub use hwloc::HwlocError;

/// Where the topology came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopologySource {
    /// `/sys/devices/system` (Linux).
    Sysfs,
    /// The affinity mask only (no core, node or cache information).
    AffinityMask,
    /// libhwloc (the `hwloc` feature).
    Hwloc,
}

/// The kind of a CPU cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheKind {
    Data,
    Instruction,
    Unified,
}

/// One cache a CPU uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cache {
    /// 1 for L1, 2 for L2, ...
    pub level: u8,
    pub kind: CacheKind,
    /// Size in bytes, when known.
    pub size: Option<u64>,
    /// The CPUs that share it (this one included).
    pub shared_with: Vec<usize>,
}

/// One logical CPU (a hardware thread).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cpu {
    /// The OS's CPU number (what pinning takes).
    pub id: usize,
    /// The physical core within its package, when known.
    pub core: Option<usize>,
    /// The physical package (socket), when known.
    pub package: Option<usize>,
    /// The NUMA node, when known.
    pub node: Option<usize>,
    /// The CPUs of the same core (hyper-threads), this one included.
    pub siblings: Vec<usize>,
    /// Its caches, L1 first.
    pub caches: Vec<Cache>,
}

impl Cpu {
    pub(crate) fn bare(id: usize) -> Cpu {
        Cpu {
            id,
            core: None,
            package: None,
            node: None,
            siblings: vec![id],
            caches: Vec::new(),
        }
    }

    /// The highest-level cache, the one most CPUs share (the LLC).
    pub fn last_level_cache(&self) -> Option<&Cache> {
        self.caches.iter().max_by_key(|c| c.level)
    }
}

/// The CPUs this process may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    /// Sorted by id.
    pub cpus: Vec<Cpu>,
    pub source: TopologySource,
}

impl Topology {
    /// The machine's topology, restricted to the calling thread's affinity mask (so
    /// call it from a thread that is not pinned yet): from hwloc with the `hwloc`
    /// feature, else (or when hwloc fails) from sysfs, else the mask alone.
    pub fn detect() -> Topology {
        let allowed: Option<Vec<usize>> =
            core_affinity::get_core_ids().map(|ids| ids.into_iter().map(|c| c.id).collect());
        #[cfg(feature = "hwloc")]
        match Topology::from_hwloc(allowed.as_deref()) {
            Ok(t) if !t.cpus.is_empty() => return t,
            Ok(_) => tracing::warn!("hwloc shows none of the allowed cpus; reading /sys"),
            Err(e) => tracing::warn!("{e}; reading /sys"),
        }
        match Topology::from_sysfs(Path::new("/sys/devices/system"), allowed.as_deref()) {
            Ok(t) if !t.cpus.is_empty() => t,
            _ => {
                let ids = allowed.unwrap_or_else(|| {
                    let n = std::thread::available_parallelism().map_or(1, |n| n.get());
                    (0..n).collect()
                });
                Topology::from_ids(&ids)
            }
        }
    }

    /// A topology of bare CPUs with these ids.
    pub fn from_ids(ids: &[usize]) -> Topology {
        let mut ids = ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        Topology {
            cpus: ids.into_iter().map(Cpu::bare).collect(),
            source: TopologySource::AffinityMask,
        }
    }

    /// Read the topology under `root` (normally `/sys/devices/system`): the online CPUs,
    /// restricted to `allowed` when given. A CPU whose details cannot be read is kept
    /// with what could be.
    pub fn from_sysfs(root: &Path, allowed: Option<&[usize]>) -> std::io::Result<Topology> {
        let cpu_dir = root.join("cpu");
        let online = parse_cpu_list(fs::read_to_string(cpu_dir.join("online"))?.trim())
            .ok_or_else(|| std::io::Error::other("unparsable cpu/online"))?;
        let nodes = read_nodes(&root.join("node"));
        let mut cpus = Vec::new();
        for id in online {
            if allowed.is_some_and(|a| !a.contains(&id)) {
                continue;
            }
            let dir = cpu_dir.join(format!("cpu{id}"));
            let topo = dir.join("topology");
            let mut cpu = Cpu::bare(id);
            cpu.core = read_num(&topo.join("core_id"));
            cpu.package = read_num(&topo.join("physical_package_id"));
            cpu.node = nodes
                .iter()
                .find(|(_, list)| list.contains(&id))
                .map(|(n, _)| *n);
            if let Some(s) = read_list(&topo.join("thread_siblings_list")) {
                cpu.siblings = s;
            }
            cpu.caches = read_caches(&dir.join("cache"));
            cpus.push(cpu);
        }
        Ok(Topology {
            cpus,
            source: TopologySource::Sysfs,
        })
    }

    /// The CPU with this id.
    pub fn cpu(&self, id: usize) -> Option<&Cpu> {
        self.cpus.iter().find(|c| c.id == id)
    }

    /// Keep only the CPUs in `ids` (a user's CPU list); ids not present are ignored.
    pub fn restrict(&self, ids: &[usize]) -> Topology {
        Topology {
            cpus: self
                .cpus
                .iter()
                .filter(|c| ids.contains(&c.id))
                .cloned()
                .collect(),
            source: self.source,
        }
    }

    /// The order in which threads take CPUs: node by node, and within a node one
    /// hardware thread of every physical core before any second thread of a core, so
    /// shards do not share a core while whole cores are free.
    pub fn placement_order(&self) -> Vec<usize> {
        self.placement_order_near(None)
    }

    /// [`placement_order`](Self::placement_order) with node `near`'s CPUs first (when
    /// given), the other nodes after them in their usual order.
    pub fn placement_order_near(&self, near: Option<usize>) -> Vec<usize> {
        let mut keyed: Vec<(bool, usize, usize, usize, usize)> = self
            .cpus
            .iter()
            .map(|c| {
                let rank = c.siblings.iter().filter(|&&s| s < c.id).count();
                let far = near.is_some() && c.node != near;
                (far, c.node.unwrap_or(0), rank, c.package.unwrap_or(0), c.id)
            })
            .collect();
        keyed.sort_unstable();
        keyed.into_iter().map(|k| k.4).collect()
    }

    /// CPUs for `shards` shards and then `io` I/O threads, in
    /// [`placement_order`](Self::placement_order), wrapping around (threads then share
    /// CPUs) when there are more threads than CPUs.
    pub fn place(&self, shards: usize, io: usize) -> Placement {
        self.place_near(shards, io, None)
    }

    /// Like [`place`](Self::place), but on NUMA node `node`'s CPUs first: the node of
    /// the device the threads serve, whose memory its DMA writes frames to. Threads that
    /// do not fit on the node go to the other nodes (spilling beats sharing a CPU). A
    /// node with none of our CPUs (unknown, or outside the mask) is warned about and
    /// ignored; [`Placement::near`] says whether the preference applied.
    pub fn place_near(&self, shards: usize, io: usize, node: Option<usize>) -> Placement {
        let near = node.filter(|&n| {
            let known = self.cpus.iter().any(|c| c.node == Some(n));
            if !known {
                tracing::warn!("none of the usable cpus is on NUMA node {n}; placing as usual");
            }
            known
        });
        let order = self.placement_order_near(near);
        let pick = |i: usize| (!order.is_empty()).then(|| order[i % order.len()]);
        Placement {
            shards: (0..shards).map(pick).collect(),
            io: (shards..shards + io).map(pick).collect(),
            shared: shards + io > order.len(),
            near,
            topology: self.clone(),
        }
    }
}

/// The CPU chosen for every runtime thread (`None`: unpinned).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub shards: Vec<Option<usize>>,
    pub io: Vec<Option<usize>>,
    /// More threads than CPUs: some share one.
    pub shared: bool,
    /// The NUMA node whose CPUs were taken first (a preference that applied).
    pub near: Option<usize>,
    pub topology: Topology,
}

impl Placement {
    /// No pinning at all.
    pub fn unpinned(shards: usize, io: usize, topology: Topology) -> Placement {
        Placement {
            shards: vec![None; shards],
            io: vec![None; io],
            shared: false,
            near: None,
            topology,
        }
    }

    /// What a runtime does with its configuration: the detected topology restricted
    /// to `cpus` (ignored, with a warning, when none of them is usable), no pinning
    /// unless `pin`, and the threads near NUMA node `node` when given.
    pub fn plan(
        topology: Topology,
        shards: usize,
        io: usize,
        cpus: Option<&[usize]>,
        pin: bool,
        node: Option<usize>,
    ) -> Placement {
        let mut topo = topology;
        if let Some(cpus) = cpus {
            let restricted = topo.restrict(cpus);
            if restricted.cpus.is_empty() {
                tracing::warn!("none of the configured cpus {cpus:?} is usable; using all");
            } else {
                topo = restricted;
            }
        }
        if !pin {
            return Placement::unpinned(shards, io, topo);
        }
        let p = topo.place_near(shards, io, node);
        if p.shared {
            tracing::warn!(
                "{} runtime threads on {} cpus: threads share cpus",
                shards + io,
                topo.cpus.len()
            );
        }
        p
    }

    fn describe(
        &self,
        f: &mut fmt::Formatter<'_>,
        what: &str,
        i: usize,
        cpu: Option<usize>,
    ) -> fmt::Result {
        let Some(id) = cpu else {
            return writeln!(f, "  {what} {i}: unpinned");
        };
        write!(f, "  {what} {i}: cpu {id}")?;
        if let Some(c) = self.topology.cpu(id) {
            if let Some(core) = c.core {
                write!(f, ", core {core}")?;
            }
            if let Some(p) = c.package {
                write!(f, ", package {p}")?;
            }
            if let Some(n) = c.node {
                write!(f, ", node {n}")?;
            }
            if let Some(llc) = c.last_level_cache() {
                write!(
                    f,
                    ", L{} shared with {}",
                    llc.level,
                    format_cpu_list(&llc.shared_with)
                )?;
            }
        }
        writeln!(f)
    }
}

impl fmt::Display for Placement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<usize> = self.topology.cpus.iter().map(|c| c.id).collect();
        write!(
            f,
            "placement over cpus {} ({:?})",
            format_cpu_list(&ids),
            self.topology.source
        )?;
        if let Some(n) = self.near {
            write!(f, ", near node {n}")?;
        }
        writeln!(
            f,
            "{}:",
            if self.shared {
                ", threads share cpus"
            } else {
                ""
            }
        )?;
        for (i, c) in self.shards.iter().enumerate() {
            self.describe(f, "shard", i, *c)?;
        }
        for (i, c) in self.io.iter().enumerate() {
            self.describe(f, "io", i, *c)?;
        }
        Ok(())
    }
}

/// Pin the calling thread to `cpu`; on failure warn and carry on unpinned. Returns
/// whether it is pinned.
pub fn pin_current(cpu: usize, what: &str) -> bool {
    let ok = core_affinity::set_for_current(core_affinity::CoreId { id: cpu });
    if !ok {
        tracing::warn!("{what}: could not pin to cpu {cpu}; running unpinned");
    }
    ok
}

/// The NUMA node of PCI device `addr` (`0000:3b:00.0`) as Linux reports it under
/// `sys` (normally `/sys`): `None` when unknown (no such device, `-1`: no NUMA, or an
/// address that is not a plain name).
pub fn pci_numa_node(sys: &Path, addr: &str) -> Option<usize> {
    plain_name(addr)?;
    read_node(&sys.join("bus/pci/devices").join(addr).join("numa_node"))
}

/// The NUMA node of network interface `ifname`'s device (`None` for virtual devices
/// such as TAP, and when unknown).
pub fn netdev_numa_node(sys: &Path, ifname: &str) -> Option<usize> {
    plain_name(ifname)?;
    read_node(&sys.join("class/net").join(ifname).join("device/numa_node"))
}

/// A name that stays one path component (user input joined to a sysfs path).
fn plain_name(s: &str) -> Option<()> {
    (!s.is_empty() && s != "." && s != ".." && !s.contains(['/', '\0'])).then_some(())
}

/// A `numa_node` file: a node number, or `-1` for none.
fn read_node(p: &Path) -> Option<usize> {
    fs::read_to_string(p).ok()?.trim().parse().ok()
}

/// Parse a Linux CPU list (`0-3,8,10-11`); `None` if malformed. An empty string is an
/// empty list.
pub fn parse_cpu_list(s: &str) -> Option<Vec<usize>> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) = (a.parse().ok()?, b.parse().ok()?);
                if b < a || b - a > 1 << 16 {
                    return None;
                }
                out.extend(a..=b);
            }
            None => out.push(part.parse().ok()?),
        }
    }
    Some(out)
}

/// Write a CPU list the way Linux does (`0-3,8`).
pub fn format_cpu_list(ids: &[usize]) -> String {
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let mut out = String::new();
    let mut i = 0;
    while i < ids.len() {
        let start = ids[i];
        while i + 1 < ids.len() && ids[i + 1] == ids[i] + 1 {
            i += 1;
        }
        if !out.is_empty() {
            out.push(',');
        }
        if ids[i] == start {
            out += &start.to_string();
        } else {
            out += &format!("{start}-{}", ids[i]);
        }
        i += 1;
    }
    out
}

fn read_num(p: &Path) -> Option<usize> {
    fs::read_to_string(p).ok()?.trim().parse().ok()
}

fn read_list(p: &Path) -> Option<Vec<usize>> {
    parse_cpu_list(fs::read_to_string(p).ok()?.trim())
}

/// `node/nodeN/cpulist` for every node.
fn read_nodes(dir: &Path) -> Vec<(usize, Vec<usize>)> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut nodes: Vec<(usize, Vec<usize>)> = entries
        .filter_map(|e| {
            let e = e.ok()?;
            let n = e.file_name().to_str()?.strip_prefix("node")?.parse().ok()?;
            Some((n, read_list(&e.path().join("cpulist"))?))
        })
        .collect();
    nodes.sort();
    nodes
}

/// `cache/indexN/{level,type,size,shared_cpu_list}` for every index.
fn read_caches(dir: &Path) -> Vec<Cache> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.starts_with("index"))
        })
        .map(|e| e.path())
        .collect();
    paths.sort();
    let mut caches: Vec<Cache> = paths
        .iter()
        .filter_map(|p| {
            let level = read_num(&p.join("level"))? as u8;
            let kind = match fs::read_to_string(p.join("type")).ok()?.trim() {
                "Data" => CacheKind::Data,
                "Instruction" => CacheKind::Instruction,
                _ => CacheKind::Unified,
            };
            Some(Cache {
                level,
                kind,
                size: fs::read_to_string(p.join("size"))
                    .ok()
                    .and_then(|s| parse_size(s.trim())),
                shared_with: read_list(&p.join("shared_cpu_list")).unwrap_or_default(),
            })
        })
        .collect();
    caches.sort_by_key(|c| c.level);
    caches
}

/// `32K`, `1024K`, `32M` (sysfs cache sizes).
fn parse_size(s: &str) -> Option<u64> {
    let (num, mult) = match s.as_bytes().last()? {
        b'K' => (&s[..s.len() - 1], 1 << 10),
        b'M' => (&s[..s.len() - 1], 1 << 20),
        b'G' => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    num.parse::<u64>().ok().map(|n| n * mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(
            parse_cpu_list("0-3,8,10-11"),
            Some(vec![0, 1, 2, 3, 8, 10, 11])
        );
        assert_eq!(parse_cpu_list(""), Some(vec![]));
        assert_eq!(parse_cpu_list("5"), Some(vec![5]));
        assert_eq!(parse_cpu_list("3-1"), None);
        assert_eq!(parse_cpu_list("x"), None);
        assert_eq!(parse_cpu_list("0-99999999"), None);
        assert_eq!(format_cpu_list(&[11, 0, 1, 2, 3, 8, 10]), "0-3,8,10-11");
        assert_eq!(format_cpu_list(&[]), "");
        assert_eq!(parse_size("32K"), Some(32 << 10));
        assert_eq!(parse_size("16M"), Some(16 << 20));
    }

    /// A fake sysfs: 2 nodes, each 2 cores with 2 threads (Linux numbering: cpu N and
    /// N+4 are siblings), an L3 per node.
    fn fake_sysfs() -> PathBuf {
        let root = std::env::temp_dir().join(format!(
            "rumpnet-topo-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = fs::remove_dir_all(&root);
        let w = |p: PathBuf, s: &str| {
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, s).unwrap();
        };
        w(root.join("cpu/online"), "0-7\n");
        w(root.join("node/node0/cpulist"), "0-1,4-5\n");
        w(root.join("node/node1/cpulist"), "2-3,6-7\n");
        for id in 0..8usize {
            let core = id % 4;
            let d = root.join(format!("cpu/cpu{id}"));
            w(d.join("topology/core_id"), &format!("{}\n", core % 2));
            w(
                d.join("topology/physical_package_id"),
                &format!("{}\n", core / 2),
            );
            w(
                d.join("topology/thread_siblings_list"),
                &format!("{},{}\n", core, core + 4),
            );
            w(d.join("cache/index0/level"), "1\n");
            w(d.join("cache/index0/type"), "Data\n");
            w(d.join("cache/index0/size"), "48K\n");
            w(
                d.join("cache/index0/shared_cpu_list"),
                &format!("{},{}\n", core, core + 4),
            );
            w(d.join("cache/index3/level"), "3\n");
            w(d.join("cache/index3/type"), "Unified\n");
            w(d.join("cache/index3/size"), "32M\n");
            let llc = if core < 2 { "0-1,4-5" } else { "2-3,6-7" };
            w(d.join("cache/index3/shared_cpu_list"), &format!("{llc}\n"));
        }
        root
    }

    #[test]
    fn reads_sysfs_and_places_cores_before_siblings() {
        let root = fake_sysfs();
        let t = Topology::from_sysfs(&root, None).unwrap();
        assert_eq!(t.source, TopologySource::Sysfs);
        assert_eq!(t.cpus.len(), 8);
        let c6 = t.cpu(6).unwrap();
        assert_eq!((c6.core, c6.package, c6.node), (Some(0), Some(1), Some(1)));
        assert_eq!(c6.siblings, [2, 6]);
        let llc = c6.last_level_cache().unwrap();
        assert_eq!(
            (llc.level, llc.kind, llc.size),
            (3, CacheKind::Unified, Some(32 << 20))
        );
        assert_eq!(llc.shared_with, [2, 3, 6, 7]);
        assert_eq!(c6.caches[0].kind, CacheKind::Data);
        // Node 0's cores, then its second threads, then node 1.
        assert_eq!(t.placement_order(), [0, 1, 4, 5, 2, 3, 6, 7]);
        let p = t.place(3, 1);
        assert_eq!(p.shards, [Some(0), Some(1), Some(4)]);
        assert_eq!(p.io, [Some(5)]);
        assert!(!p.shared);
        let text = p.to_string();
        assert!(
            text.contains("shard 1: cpu 1, core 1, package 0, node 0, L3 shared with 0-1,4-5"),
            "{text}"
        );
        // A mask restricts it; more threads than CPUs wrap around.
        let t = Topology::from_sysfs(&root, Some(&[2, 6])).unwrap();
        assert_eq!(t.cpus.iter().map(|c| c.id).collect::<Vec<_>>(), [2, 6]);
        let p = t.place(3, 1);
        assert_eq!(p.shards, [Some(2), Some(6), Some(2)]);
        assert_eq!(p.io, [Some(6)]);
        assert!(p.shared);
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn places_near_the_devices_node_first() {
        let root = fake_sysfs();
        let t = Topology::from_sysfs(&root, None).unwrap();
        fs::remove_dir_all(&root).unwrap();
        // Node 1's cores, its second threads, then node 0 as usual.
        assert_eq!(t.placement_order_near(Some(1)), [2, 3, 6, 7, 0, 1, 4, 5]);
        assert_eq!(t.placement_order_near(Some(0)), t.placement_order());
        let p = t.place_near(3, 1, Some(1));
        assert_eq!(p.shards, [Some(2), Some(3), Some(6)]);
        assert_eq!(p.io, [Some(7)]);
        assert_eq!(p.near, Some(1));
        assert!(p.to_string().contains("near node 1:"), "{p}");
        // More threads than the node has spill over to the other node, not onto
        // the node's CPUs a second time.
        let p = t.place_near(5, 1, Some(1));
        assert_eq!(p.shards, [Some(2), Some(3), Some(6), Some(7), Some(0)]);
        assert_eq!(p.io, [Some(1)]);
        assert!(!p.shared);
        // A node we have no CPU on is ignored.
        let p = t.place_near(2, 0, Some(7));
        assert_eq!((p.near, &p.shards[..]), (None, &[Some(0), Some(1)][..]));
        // Under a mask that leaves node 1 out, the preference cannot apply.
        let masked = t.restrict(&[0, 4]);
        let p = masked.place_near(1, 0, Some(1));
        assert_eq!((p.near, &p.shards[..]), (None, &[Some(0)][..]));
        // A topology without node information knows no node.
        assert_eq!(
            Topology::from_ids(&[0, 1]).place_near(1, 0, Some(0)).near,
            None
        );
    }

    #[test]
    fn plan_applies_the_configuration() {
        let root = fake_sysfs();
        let t = Topology::from_sysfs(&root, None).unwrap();
        fs::remove_dir_all(&root).unwrap();
        let p = Placement::plan(t.clone(), 2, 1, Some(&[0, 2, 6]), true, Some(1));
        assert_eq!(
            (&p.shards[..], &p.io[..]),
            (&[Some(2), Some(6)][..], &[Some(0)][..])
        );
        assert_eq!(p.topology.cpus.len(), 3);
        // None of the listed CPUs usable: all of them are used.
        let p = Placement::plan(t.clone(), 1, 0, Some(&[99]), true, None);
        assert_eq!((p.topology.cpus.len(), &p.shards[..]), (8, &[Some(0)][..]));
        let p = Placement::plan(t, 2, 1, None, false, Some(1));
        assert_eq!(
            (&p.shards[..], &p.io[..], p.near),
            (&[None, None][..], &[None][..], None)
        );
    }

    #[test]
    fn device_numa_nodes() {
        let root = std::env::temp_dir().join(format!("rumpnet-numa-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let w = |p: PathBuf, s: &str| {
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, s).unwrap();
        };
        w(root.join("bus/pci/devices/0000:3b:00.0/numa_node"), "1\n");
        w(root.join("bus/pci/devices/0000:00:03.0/numa_node"), "-1\n");
        w(root.join("class/net/eth0/device/numa_node"), "0\n");
        fs::create_dir_all(root.join("class/net/tap0")).unwrap();
        assert_eq!(pci_numa_node(&root, "0000:3b:00.0"), Some(1));
        assert_eq!(pci_numa_node(&root, "0000:00:03.0"), None);
        assert_eq!(pci_numa_node(&root, "0000:99:00.0"), None);
        assert_eq!(
            pci_numa_node(&root, "../../bus/pci/devices/0000:3b:00.0"),
            None
        );
        assert_eq!(pci_numa_node(&root, ".."), None);
        assert_eq!(netdev_numa_node(&root, "eth0"), Some(0));
        assert_eq!(netdev_numa_node(&root, "tap0"), None);
        assert_eq!(netdev_numa_node(&root, ""), None);
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn detect_finds_the_cpus_we_may_use() {
        let t = Topology::detect();
        assert!(!t.cpus.is_empty());
        if let Some(ids) = core_affinity::get_core_ids() {
            assert_eq!(t.cpus.len(), ids.len());
        }
        // Pinning to a CPU of the mask works (and is undone by the thread ending).
        let id = t.cpus[0].id;
        let pinned = std::thread::spawn(move || pin_current(id, "test"))
            .join()
            .unwrap();
        assert!(pinned || t.source == TopologySource::AffinityMask);
    }

    #[test]
    fn missing_sysfs_falls_back() {
        assert!(Topology::from_sysfs(Path::new("/nonexistent-rumpnet"), None).is_err());
        let t = Topology::from_ids(&[3, 1, 1]);
        assert_eq!(t.placement_order(), [1, 3]);
        assert_eq!(t.place(1, 0).shards, [Some(1)]);
    }
}
