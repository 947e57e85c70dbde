//! The topology from hwloc (the `hwloc` feature): the same [`Topology`] the sysfs reader
//! builds, from the library that also knows machines whose /sys says little (and other
//! operating systems), and that can describe a synthetic machine for tests.
//!
//! Why `hwlocality` and not `hwloc2`: hwloc2 2.2.0 builds and links against Debian 12's
//! hwloc 2.9, but its safe API is unsound, which no careful use on our side repairs:
//! `TopologyObject` lacks hwloc 2's `symmetric_subtree` field (the fields after it line
//! up on 64-bit targets only by padding luck, and `memory_arity` reads the wrong one),
//! `TopologyObject::name` hands hwloc's string to `CString::from_raw` (Rust then frees C
//! memory), its `Display` lets `snprintf` write 64 and 2048 bytes into 1-byte buffers,
//! `cpuset`/`nodeset` return bitmaps not tied to the topology's lifetime (use after free
//! from safe code), and `objects_with_type(&ObjectType::NUMANode)` panics ("depth
//! 4294967292 is out of bounds": it maps hwloc 2's `HWLOC_TYPE_DEPTH_NUMANODE` (-3) to
//! the 1.x bridge depth). Its build script is silent when pkg-config cannot find hwloc.
//! hwlocality is maintained, wraps every call in a sound API, and fails the build with a
//! clear message when hwloc is missing. Its cost: a pre-release version (pinned), a few
//! more crates, and it asks pkg-config for static link flags, so hwloc's private
//! dependency libudev must be installed as a development package (`libudev-dev`).

use hwlocality::errors::{FlagsError, HybridError, RawHwlocError};
use hwlocality::object::attributes::ObjectAttributes;
use hwlocality::object::types::{CacheType, ObjectType};
use hwlocality::object::TopologyObject;
use hwlocality::topology::builder::{BuildFlags, StringInputError, TypeFilter};

use super::{Cache, CacheKind, Cpu, Topology, TopologySource};

/// Why hwloc gave no topology.
#[derive(Debug, thiserror::Error)]
pub enum HwlocError {
    #[error("hwloc rejected the build flags: {0}")]
    Flags(#[source] HybridError<FlagsError<BuildFlags>>),
    #[error("hwloc rejected a type filter: {0}")]
    Filter(#[source] RawHwlocError),
    #[error("hwloc rejected the synthetic description {description:?}: {source}")]
    Synthetic {
        description: String,
        #[source]
        source: StringInputError,
    },
    #[error("hwloc could not load the topology: {0}")]
    Load(#[source] RawHwlocError),
}

impl Topology {
    /// This machine's topology as hwloc sees it, restricted to `allowed` (the affinity
    /// mask) when given: the same CPUs, cores, nodes and caches
    /// [`from_sysfs`](Self::from_sysfs) reads.
    pub fn from_hwloc(allowed: Option<&[usize]>) -> Result<Topology, HwlocError> {
        let hw = builder()?.build().map_err(HwlocError::Load)?;
        Ok(convert(&hw, allowed))
    }

    /// The topology of a machine hwloc makes up from `description` (hwloc's synthetic
    /// syntax, e.g. `"pack:2 [numa] l3:1 core:2 pu:2"`): for tests and for planning a
    /// placement for a machine one is not on.
    pub fn from_hwloc_synthetic(
        description: &str,
        allowed: Option<&[usize]>,
    ) -> Result<Topology, HwlocError> {
        let hw = builder()?
            .from_synthetic(description)
            .map_err(|source| HwlocError::Synthetic {
                description: description.to_owned(),
                source,
            })?
            .build()
            .map_err(HwlocError::Load)?;
        Ok(convert(&hw, allowed))
    }
}

/// A builder that keeps what /sys shows: CPUs outside our cgroup (the affinity mask
/// restricts later, as on the sysfs path, so siblings and cache sharing stay the
/// hardware's), and every CPU cache, instruction caches included (hwloc drops those by
/// default).
fn builder() -> Result<hwlocality::topology::builder::TopologyBuilder, HwlocError> {
    hwlocality::Topology::builder()
        .with_flags(BuildFlags::INCLUDE_DISALLOWED)
        .map_err(HwlocError::Flags)?
        .with_cpu_cache_type_filter(TypeFilter::KeepAll)
        .map_err(HwlocError::Filter)?
        .with_cpu_icache_type_filter(TypeFilter::KeepAll)
        .map_err(HwlocError::Filter)
}

/// The ids of the PUs in an object's CPU set (empty if it has none).
fn cpus_of(obj: &TopologyObject) -> Vec<usize> {
    obj.cpuset()
        .map(|set| set.iter_set().map(usize::from).collect())
        .unwrap_or_default()
}

fn convert(hw: &hwlocality::Topology, allowed: Option<&[usize]>) -> Topology {
    // NUMA nodes and their CPUs, as sysfs's node/nodeN/cpulist.
    let nodes: Vec<(usize, Vec<usize>)> = hw
        .objects_with_type(ObjectType::NUMANode)
        .filter_map(|n| Some((n.os_index()?, cpus_of(n))))
        .collect();
    let mut cpus: Vec<Cpu> = hw
        .objects_with_type(ObjectType::PU)
        .filter_map(|pu| {
            let id = pu.os_index()?;
            if allowed.is_some_and(|a| !a.contains(&id)) {
                return None;
            }
            let core = pu.first_ancestor_with_type(ObjectType::Core);
            let mut cpu = Cpu::bare(id);
            cpu.core = core.and_then(TopologyObject::os_index);
            cpu.package = pu
                .first_ancestor_with_type(ObjectType::Package)
                .and_then(TopologyObject::os_index);
            cpu.node = nodes
                .iter()
                .find(|(_, list)| list.contains(&id))
                .map(|(n, _)| *n);
            if let Some(core) = core {
                cpu.siblings = cpus_of(core);
            }
            cpu.caches = pu.ancestors().filter_map(cache_of).collect();
            // sysfs lists a level's data cache before its instruction cache.
            cpu.caches
                .sort_by_key(|c| (c.level, c.kind != CacheKind::Data));
            Some(cpu)
        })
        .collect();
    cpus.sort_unstable_by_key(|c| c.id);
    Topology {
        cpus,
        source: TopologySource::Hwloc,
    }
}

/// The cache an ancestor of a PU is, if it is a CPU cache.
fn cache_of(obj: &TopologyObject) -> Option<Cache> {
    if !obj.object_type().is_cpu_cache() {
        return None;
    }
    let Some(ObjectAttributes::Cache(attr)) = obj.attributes() else {
        return None;
    };
    Some(Cache {
        level: u8::try_from(attr.depth()).ok()?,
        kind: match attr.cache_type() {
            CacheType::Data => CacheKind::Data,
            CacheType::Instruction => CacheKind::Instruction,
            _ => CacheKind::Unified,
        },
        size: attr.size().map(|s| s.get()),
        shared_with: cpus_of(obj),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// With the feature on, hwloc and /sys describe this machine alike: the same CPUs,
    /// cores, packages, NUMA nodes, SMT siblings and caches (level, kind, size, which
    /// CPUs share each), under the same affinity mask.
    #[test]
    fn agrees_with_sysfs_on_this_machine() {
        let mask: Option<Vec<usize>> =
            core_affinity::get_core_ids().map(|ids| ids.into_iter().map(|c| c.id).collect());
        let sys = match Topology::from_sysfs(Path::new("/sys/devices/system"), mask.as_deref()) {
            Ok(t) if !t.cpus.is_empty() => t,
            other => {
                assert!(
                    std::env::var_os("CI").is_none() || !cfg!(target_os = "linux"),
                    "no /sys topology in CI on Linux: {other:?}"
                );
                eprintln!("skipped: no /sys topology to compare with ({other:?})");
                return;
            }
        };
        let hw = Topology::from_hwloc(mask.as_deref()).expect("hwloc topology");
        assert_eq!(hw.source, TopologySource::Hwloc);
        let ids = |t: &Topology| t.cpus.iter().map(|c| c.id).collect::<Vec<_>>();
        assert_eq!(ids(&hw), ids(&sys), "CPUs");
        for (h, s) in hw.cpus.iter().zip(&sys.cpus) {
            assert_eq!(h.core, s.core, "core of cpu {}", s.id);
            assert_eq!(h.package, s.package, "package of cpu {}", s.id);
            // A kernel without NUMA shows no node in /sys; hwloc then makes one node.
            if s.node.is_some() {
                assert_eq!(h.node, s.node, "node of cpu {}", s.id);
            }
            assert_eq!(h.siblings, s.siblings, "siblings of cpu {}", s.id);
            assert_eq!(h.caches, s.caches, "caches of cpu {}", s.id);
        }
        assert_eq!(hw.placement_order(), sys.placement_order());
    }

    /// A synthetic two-node machine: 2 packages, each one NUMA node and one L3 over 2
    /// cores of 2 hardware threads (hwloc numbers PUs in order: 0,1 share core 0).
    #[test]
    fn converts_a_synthetic_two_node_machine() {
        let t = Topology::from_hwloc_synthetic(
            "pack:2 [numa] l3:1(size=32MiB) l2:2(size=1MiB) l1d:1(size=48KiB) core:1 pu:2",
            None,
        )
        .expect("synthetic topology");
        assert_eq!(t.cpus.len(), 8);
        let c5 = t.cpu(5).unwrap();
        assert_eq!((c5.package, c5.node), (Some(1), Some(1)));
        assert_eq!(c5.siblings, [4, 5]);
        let levels: Vec<(u8, CacheKind)> = c5.caches.iter().map(|c| (c.level, c.kind)).collect();
        assert_eq!(
            levels,
            [
                (1, CacheKind::Data),
                (2, CacheKind::Unified),
                (3, CacheKind::Unified)
            ]
        );
        let llc = c5.last_level_cache().unwrap();
        assert_eq!(
            (llc.size, &llc.shared_with[..]),
            (Some(32 << 20), &[4, 5, 6, 7][..])
        );
        assert_eq!(c5.caches[1].shared_with, [4, 5]);
        // Node 0's cores, its second threads, then node 1; or node 1 first when asked.
        assert_eq!(t.placement_order(), [0, 2, 1, 3, 4, 6, 5, 7]);
        let p = t.place_near(2, 1, Some(1));
        assert_eq!(p.shards, [Some(4), Some(6)]);
        assert_eq!(p.io, [Some(5)]);
        // The mask restricts the CPUs, not the hardware facts.
        let t = Topology::from_hwloc_synthetic("pack:2 [numa] core:2 pu:2", Some(&[1, 6]))
            .expect("synthetic topology");
        assert_eq!(t.cpus.len(), 2);
        assert_eq!(t.cpu(1).unwrap().siblings, [0, 1]);
        assert_eq!(t.cpu(6).unwrap().node, Some(1));
    }

    #[test]
    fn bad_synthetic_description_is_an_error() {
        let e = Topology::from_hwloc_synthetic("pack:two", None).unwrap_err();
        assert!(matches!(e, HwlocError::Synthetic { .. }), "{e}");
        assert!(Topology::from_hwloc_synthetic("pack:2\0", None).is_err());
    }
}
