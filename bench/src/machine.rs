//! Facts about the machine a run happened on, and the few measurements of the process
//! itself that the workloads need (resident memory, CPU time, pinning to a core).

use std::fs;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// What the report prints and the JSON records about the machine.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Machine {
    /// `model name` of the first CPU in /proc/cpuinfo.
    pub cpu: String,
    /// CPUs this process may run on.
    pub cores: usize,
    /// MemTotal, bytes.
    pub memory_bytes: u64,
    /// The running kernel's release.
    pub kernel: String,
    /// Load average (1 min) when the run began and when it ended: other work on the
    /// machine makes every figure noisier.
    pub load_before: f64,
    pub load_after: f64,
    /// When the run began (UTC, ISO 8601).
    pub date: String,
    /// `release` or `debug`: a debug build's figures mean nothing.
    pub build: &'static str,
    /// Running as root: what decides whether Linux gets private network namespaces.
    pub root: bool,
}

impl Machine {
    /// Read the facts now (`load_after` is filled in by [`Machine::finish`]).
    pub fn probe() -> Machine {
        process_cores();
        let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|l| l.split_once(':'))
            .map_or_else(|| "unknown".to_owned(), |(_, v)| v.trim().to_owned());
        let load = load_average();
        Machine {
            cpu,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_bytes: meminfo_kib("MemTotal:").unwrap_or(0) * 1024,
            kernel: fs::read_to_string("/proc/sys/kernel/osrelease")
                .map_or_else(|_| "unknown".to_owned(), |s| s.trim().to_owned()),
            load_before: load,
            load_after: load,
            date: utc_now(),
            build: if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            },
            root: is_root(),
        }
    }

    /// Record the load at the end of the run.
    pub fn finish(&mut self) {
        self.load_after = load_average();
    }
}

/// The effective user is root (or at least may create network namespaces: we do not
/// check capabilities separately).
pub fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// The process may raise its hard resource limits (CAP_SYS_RESOURCE, bit 24 of the
/// effective capabilities).
pub fn has_cap_sys_resource() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .is_some_and(|caps| caps & (1 << 24) != 0)
}

/// Give the memory the allocator holds free back to the kernel, so that a resident-set
/// baseline taken next does not hide later allocations in pages already resident.
#[allow(unsafe_code)]
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap pages to the kernel; it touches no
    // memory the program owns.
    unsafe {
        libc::malloc_trim(0);
    }
}

fn load_average() -> f64 {
    fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0.0)
}

fn meminfo_kib(key: &str) -> Option<u64> {
    let s = fs::read_to_string("/proc/meminfo").ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// The process's resident set (VmRSS), bytes.
pub fn rss_bytes() -> u64 {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        })
        .map_or(0, |kib| kib * 1024)
}

/// The kernel's slab memory (SReclaimable + SUnreclaim), bytes: where the kernel keeps
/// its sockets, so its growth over an open is what Linux's connections cost.
pub fn kernel_slab_bytes() -> u64 {
    (meminfo_kib("SReclaimable:").unwrap_or(0) + meminfo_kib("SUnreclaim:").unwrap_or(0)) * 1024
}

/// CPU time used by every thread of this process so far (user + system).
#[allow(unsafe_code)]
pub fn process_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the call only writes it.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// The cores this process may use, read once, before any thread is pinned: a thread
/// inherits its creator's affinity, so asking again from a pinned thread (or one it
/// spawned) would see a single core.
fn process_cores() -> &'static [core_affinity::CoreId] {
    static CORES: OnceLock<Vec<core_affinity::CoreId>> = OnceLock::new();
    CORES.get_or_init(|| core_affinity::get_core_ids().unwrap_or_default())
}

/// Pin the calling thread to `core` (an index into the cores this process may use);
/// false if that core does not exist or the kernel refused.
pub fn pin_to_core(core: usize) -> bool {
    process_cores()
        .get(core)
        .copied()
        .is_some_and(core_affinity::set_for_current)
}

/// Cores this process may be pinned to.
pub fn pinnable_cores() -> usize {
    process_cores().len()
}

/// Now, as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day): Howard Hinnant's `civil_from_days`.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_454), (2026, 1, 1));
    }

    #[test]
    fn process_facts_are_read() {
        assert!(rss_bytes() > 0);
        let m = Machine::probe();
        assert!(m.cores >= 1);
        assert!(m.memory_bytes > 0);
        assert_eq!(m.date.len(), 20, "{}", m.date);
        let t0 = process_cpu_time();
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_add(std::hint::black_box(i));
        }
        std::hint::black_box(x);
        assert!(process_cpu_time() > t0);
    }
}
