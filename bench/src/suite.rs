//! What `rumpnet bench` runs: the plan of cases (workload × system × placement ×
//! transport × MTU) from the options, run round by round with a progress bar, and the
//! samples gathered into a [`Report`].
//!
//! Each round runs every case once, and `--repeat N` runs N rounds, so a burst of load
//! from elsewhere on the machine spreads over all systems instead of landing on one.

use std::fmt;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::limits;
use crate::machine::{self, Machine};
use crate::systems::linux::{self, LinuxNet};
use crate::systems::{
    dpdk, rumpnet, smoltcp, tap, BenchError, Placement, Sample, System, Transport,
};
use crate::workload::{Kind, Spec};

/// The four workloads of the issue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Workload {
    Stream,
    Rr,
    Crr,
    /// Idle established connections: memory per connection.
    Conns,
}

impl Workload {
    pub const ALL: [Workload; 4] = [
        Workload::Stream,
        Workload::Rr,
        Workload::Crr,
        Workload::Conns,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Workload::Stream => "stream",
            Workload::Rr => "rr",
            Workload::Crr => "crr",
            Workload::Conns => "conns",
        }
    }

    fn kind(self) -> Option<Kind> {
        match self {
            Workload::Stream => Some(Kind::Stream),
            Workload::Rr => Some(Kind::Rr),
            Workload::Crr => Some(Kind::Crr),
            Workload::Conns => None,
        }
    }
}

/// Everything `rumpnet bench` can be asked.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub workloads: Vec<Workload>,
    pub systems: Vec<System>,
    pub placements: Vec<Placement>,
    /// Connection counts of `stream`.
    pub stream_conns: Vec<usize>,
    /// Connection counts of `rr`.
    pub rr_conns: Vec<usize>,
    /// Bytes per send call of `stream`.
    pub stream_msg: usize,
    /// Request and response bytes of `rr` and `crr`.
    pub rr_msg: usize,
    /// Idle connections `conns` opens on rumpnet.
    pub conns: usize,
    /// At most this many on Linux (two file descriptors and several kernel objects
    /// each).
    pub conns_linux_max: usize,
    /// At most this many idle connections on smoltcp (its poll visits every socket,
    /// so opening N costs O(N²)); at most [`smoltcp::CONNS_MAX`].
    pub conns_smoltcp_max: usize,
    /// Measured time of each timed run (a tenth more is warm-up).
    pub duration: Duration,
    /// Rounds; min / median / max are over these.
    pub repeat: usize,
    /// The MTU all systems share (rumpnet's link, Linux's `lo`, smoltcp's device).
    pub mtu: usize,
    /// The large MTU `stream` is also run at: rumpnet's link and smoltcp's device
    /// (65,535, IPv4's largest packet); Linux's `lo` keeps its own default, 65,536.
    pub large_mtu: usize,
    /// Also run Linux over a veth pair between two namespaces (root only).
    pub veth: bool,
    /// Also run rumpnet on a TAP device against a Linux client (root only).
    pub tap: bool,
    /// rumpnet's in-memory link offloads checksums and segmentation (TSO up to 64 KiB,
    /// delivered as GRO super-segments), as Linux's `lo` does; smoltcp then skips
    /// checksums too. With it, `stream` also gets a same-core rumpnet row without
    /// offloads at the shared MTU, for the cost of the software path.
    pub link_offloads: bool,
    /// Show a progress bar (on stderr, when it is a terminal).
    pub progress: bool,
}

/// Linux's loopback MTU out of the box.
pub const LINUX_LO_DEFAULT_MTU: usize = 65536;

impl Options {
    /// The full run: 2 s per case, 3 rounds, 100,000 idle connections.
    pub fn full() -> Options {
        Options {
            workloads: Workload::ALL.to_vec(),
            systems: System::ALL.to_vec(),
            placements: Placement::ALL.to_vec(),
            stream_conns: vec![1, 8],
            rr_conns: vec![1, 32],
            stream_msg: 64 * 1024,
            rr_msg: 64,
            conns: 100_000,
            conns_linux_max: 100_000,
            conns_smoltcp_max: smoltcp::CONNS_MAX,
            duration: Duration::from_secs(2),
            repeat: 3,
            mtu: 1500,
            large_mtu: 65535,
            veth: true,
            tap: true,
            link_offloads: true,
            progress: true,
        }
    }

    /// `--quick`: the same cases, short (under a minute on two cores).
    pub fn quick() -> Options {
        Options {
            duration: Duration::from_millis(150),
            conns: 10_000,
            conns_linux_max: 10_000,
            conns_smoltcp_max: 2_000,
            ..Options::full()
        }
    }
}

/// One line of the comparison: a workload on one system, placement, transport, MTU.
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    pub workload: Workload,
    /// Connections at once (crr: 1; conns: how many were opened).
    pub conns: usize,
    /// Message bytes (stream: per send; rr/crr: request and response).
    pub msg: usize,
    pub system: System,
    pub placement: Placement,
    pub transport: Transport,
    /// The path's MTU (`None`: the default namespace's `lo`, not ours to set).
    pub mtu: Option<usize>,
    run: Runner,
}

impl Case {
    /// `stream/8 mtu 1500 rumpnet same-core mem (offloads: csum+tso)`.
    pub fn label(&self) -> String {
        let mtu = self.mtu.map_or("default".to_owned(), |m| m.to_string());
        let link = self
            .link_detail()
            .map_or(String::new(), |d| format!(" ({d})"));
        format!(
            "{}/{} mtu {} {} {} {}{link}",
            self.workload.name(),
            self.conns,
            mtu,
            self.system.name(),
            self.placement.name(),
            self.transport.name()
        )
    }

    /// What the link did for the stack, where that can change: rumpnet's in-memory
    /// link with or without its offloads, smoltcp's loopback with checksums skipped
    /// (as rumpnet's link offloads them) or computed.
    pub fn link_detail(&self) -> Option<&'static str> {
        match self.run {
            Runner::Rumpnet(_, true) => Some("offloads: csum+tso"),
            Runner::Rumpnet(_, false) => Some("no offloads"),
            Runner::Smoltcp(_, true) => Some("checksums skipped"),
            Runner::Smoltcp(_, false) => Some("checksums computed"),
            _ => None,
        }
    }
}

/// How a case is run.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Runner {
    /// rumpnet ↔ rumpnet over the in-memory link, with its offloads or not.
    Rumpnet(Spec, bool),
    /// rumpnet on a TAP, a Linux client on the other side.
    RumpnetTap(Spec),
    /// rumpnet ↔ rumpnet over DPDK's net_memif, two processes.
    DpdkMemif(Spec),
    /// A timed workload over the `i`th Linux network.
    Linux(Spec, usize),
    /// smoltcp on its loopback, checksums skipped or not.
    Smoltcp(Spec, bool),
    Memcpy,
    PingPong,
    RumpnetConns,
    LinuxConns(usize),
    SmoltcpConns,
}

/// The samples of one case, or why it failed.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub case: Case,
    pub samples: Vec<Sample>,
    /// The last failure, if any round failed.
    pub error: Option<String>,
}

/// Min, median and max of some figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    pub min: f64,
    pub median: f64,
    pub max: f64,
}

impl Spread {
    pub fn of(values: impl IntoIterator<Item = f64>) -> Option<Spread> {
        let mut v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Some(Spread {
            min: v[0],
            median,
            max: v[n - 1],
        })
    }
}

impl Row {
    /// Min / median / max of the main figure.
    pub fn spread(&self) -> Option<Spread> {
        Spread::of(self.samples.iter().map(|s| s.value))
    }

    /// Min / median / max of a secondary figure.
    pub fn extra(&self, name: &str) -> Option<Spread> {
        Spread::of(
            self.samples
                .iter()
                .filter_map(|s| s.extra.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)),
        )
    }

    /// The names of the secondary figures, in order.
    pub fn extra_names(&self) -> Vec<&'static str> {
        let mut names: Vec<&'static str> = Vec::new();
        for s in &self.samples {
            for (n, _) in &s.extra {
                if !names.contains(n) {
                    names.push(n);
                }
            }
        }
        names
    }
}

/// A whole run.
#[derive(Debug, Clone)]
pub struct Report {
    pub machine: Machine,
    pub options: Options,
    pub rows: Vec<Row>,
    /// What was skipped or changed, and why.
    pub notes: Vec<String>,
    /// Wall time of the whole run.
    pub elapsed: Duration,
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The Linux networks a run needs, set up once: loopback at our MTU and at its
/// default, and a veth pair (root), or the default namespace's loopback.
struct LinuxNets {
    nets: Vec<LinuxNet>,
}

fn linux_nets(opts: &Options, notes: &mut Vec<String>) -> LinuxNets {
    let mut nets = Vec::new();
    if !opts.systems.contains(&System::Linux) {
        return LinuxNets { nets };
    }
    if !machine::is_root() {
        notes.push(
            "not root: Linux runs over the default namespace's loopback (127.0.0.1) at its own \
             MTU; the private namespaces (lo at our MTU) and the veth pair need root"
                .to_owned(),
        );
        nets.push(LinuxNet::default_loopback());
        return LinuxNets { nets };
    }
    linux::remove_stale_namespaces();
    for mtu in [opts.mtu, LINUX_LO_DEFAULT_MTU] {
        match LinuxNet::loopback(mtu) {
            Ok(n) => nets.push(n),
            Err(e) => notes.push(format!("Linux loopback at MTU {mtu} skipped: {e}")),
        }
        if opts.mtu == LINUX_LO_DEFAULT_MTU {
            break;
        }
    }
    if opts.veth {
        match LinuxNet::veth(opts.mtu) {
            Ok(n) => nets.push(n),
            Err(e) => notes.push(format!("Linux over veth skipped: {e}")),
        }
    }
    LinuxNets { nets }
}

/// The cases the options ask for.
fn plan(opts: &Options, linux: &LinuxNets, notes: &mut Vec<String>) -> Vec<Case> {
    let mut cases = Vec::new();
    let has = |s: System| opts.systems.contains(&s);
    let cross_ok = machine::pinnable_cores() >= 2;
    let placements: Vec<Placement> = opts
        .placements
        .iter()
        .copied()
        .filter(|&p| p == Placement::SameCore || cross_ok)
        .collect();
    if !cross_ok && opts.placements.contains(&Placement::CrossCore) {
        notes.push("one core only: cross-core placement skipped".to_owned());
    }
    let same_core = placements.contains(&Placement::SameCore);
    let tap = opts.tap && machine::is_root();
    // Over DPDK memif beside TAP: the `dpdk` feature, root, and the rumpnet binary
    // (whose `bench-peer` runs each end in a process of its own).
    let dpdk = match dpdk::available() {
        Ok(_) => true,
        Err(why) => {
            if has(System::Rumpnet) {
                notes.push(format!("rumpnet over DPDK memif skipped: {why}"));
            }
            false
        }
    };
    for &w in &opts.workloads {
        let Some(kind) = w.kind() else {
            // conns: same-core only (one thread opens both ends).
            if has(System::Rumpnet) {
                cases.push(Case {
                    workload: w,
                    conns: opts.conns,
                    msg: 1,
                    system: System::Rumpnet,
                    placement: Placement::SameCore,
                    transport: Transport::Mem,
                    mtu: Some(opts.mtu),
                    run: Runner::RumpnetConns,
                });
            }
            if has(System::Smoltcp) {
                let want = opts
                    .conns
                    .min(opts.conns_smoltcp_max)
                    .min(smoltcp::CONNS_MAX);
                if want < opts.conns {
                    notes.push(format!(
                        "smoltcp conns: {want} connections, not {}: every poll of a smoltcp \
                         interface visits every socket, so opening N costs O(N²)",
                        opts.conns
                    ));
                }
                cases.push(Case {
                    workload: w,
                    conns: want.max(1),
                    msg: 1,
                    system: System::Smoltcp,
                    placement: Placement::SameCore,
                    transport: Transport::Loopback,
                    mtu: Some(opts.mtu),
                    run: Runner::SmoltcpConns,
                });
            }
            if let Some((i, net)) = linux
                .nets
                .iter()
                .enumerate()
                .find(|(_, n)| n.transport == Transport::Loopback)
            {
                let most = linux::max_conns();
                let want = opts.conns.min(opts.conns_linux_max);
                if want > most {
                    notes.push(format!(
                        "Linux conns: {} connections at most here (two descriptors each within the \
                         open-file hard limit, which this process may not raise), not {want}",
                        most
                    ));
                }
                cases.push(Case {
                    workload: w,
                    conns: want.min(most).max(1),
                    msg: 1,
                    system: System::Linux,
                    placement: Placement::SameCore,
                    transport: Transport::Loopback,
                    mtu: net.mtu,
                    run: Runner::LinuxConns(i),
                });
            }
            continue;
        };
        let (counts, msg) = match kind {
            Kind::Stream => (opts.stream_conns.clone(), opts.stream_msg),
            Kind::Rr => (opts.rr_conns.clone(), opts.rr_msg),
            Kind::Crr => (vec![1], opts.rr_msg),
        };
        // Bulk is where the MTU matters: it also runs at the large MTU.
        let mtus: Vec<usize> = if kind == Kind::Stream && opts.large_mtu != opts.mtu {
            vec![opts.mtu, opts.large_mtu]
        } else {
            vec![opts.mtu]
        };
        for &conns in &counts {
            let spec = Spec {
                kind,
                conns,
                msg,
                duration: opts.duration,
            };
            let case = |system, placement, transport, mtu, run| Case {
                workload: w,
                conns,
                msg,
                system,
                placement,
                transport,
                mtu,
                run,
            };
            if has(System::Limit) && conns == counts[0] {
                match kind {
                    Kind::Stream if same_core => cases.push(case(
                        System::Limit,
                        Placement::SameCore,
                        Transport::Mem,
                        None,
                        Runner::Memcpy,
                    )),
                    Kind::Rr => {
                        for &p in &placements {
                            cases.push(case(
                                System::Limit,
                                p,
                                Transport::Mem,
                                Some(opts.mtu),
                                Runner::PingPong,
                            ));
                        }
                    }
                    _ => {}
                }
            }
            for &mtu in &mtus {
                if has(System::Rumpnet) {
                    for &p in &placements {
                        cases.push(case(
                            System::Rumpnet,
                            p,
                            Transport::Mem,
                            Some(mtu),
                            Runner::Rumpnet(spec, opts.link_offloads),
                        ));
                    }
                    // The software path too, once, where offloads matter most.
                    if opts.link_offloads && kind == Kind::Stream && mtu == opts.mtu && same_core {
                        cases.push(case(
                            System::Rumpnet,
                            Placement::SameCore,
                            Transport::Mem,
                            Some(mtu),
                            Runner::Rumpnet(spec, false),
                        ));
                    }
                    // Over TAP at our MTU only: the kernel cuts and merges large
                    // segments itself (TSO/GSO through the virtio-net header).
                    if tap && mtu == opts.mtu {
                        for &p in &placements {
                            cases.push(case(
                                System::Rumpnet,
                                p,
                                Transport::Tap,
                                Some(mtu),
                                Runner::RumpnetTap(spec),
                            ));
                        }
                    }
                    if dpdk && mtu == opts.mtu {
                        for &p in &placements {
                            cases.push(case(
                                System::Rumpnet,
                                p,
                                Transport::DpdkMemif,
                                Some(mtu),
                                Runner::DpdkMemif(spec),
                            ));
                        }
                    }
                }
                if has(System::Smoltcp) && same_core {
                    cases.push(case(
                        System::Smoltcp,
                        Placement::SameCore,
                        Transport::Loopback,
                        Some(mtu),
                        Runner::Smoltcp(spec, opts.link_offloads),
                    ));
                }
            }
            for (i, net) in linux.nets.iter().enumerate() {
                // The large-MTU loopback carries bulk only; rr and crr run at ours.
                if net.mtu == Some(LINUX_LO_DEFAULT_MTU)
                    && opts.mtu != LINUX_LO_DEFAULT_MTU
                    && kind != Kind::Stream
                {
                    continue;
                }
                for &p in &placements {
                    cases.push(case(
                        System::Linux,
                        p,
                        net.transport,
                        net.mtu.or(lo_mtu()),
                        Runner::Linux(spec, i),
                    ));
                }
            }
        }
    }
    if has(System::Rumpnet) && opts.link_offloads {
        notes.push(
            "rumpnet's in-memory link offloads checksums and segmentation (TSO up to 64 KiB, \
             received as one GRO super-segment; the MTU is unchanged), as Linux's lo does; \
             smoltcp skips checksums likewise and has no TSO; the `no offloads` row and \
             --link-offloads false show the software path"
                .to_owned(),
        );
    }
    if has(System::Smoltcp) {
        notes.push(
            "smoltcp is single-threaded (one interface, its sockets in one set): same-core only"
                .to_owned(),
        );
    }
    if has(System::Rumpnet) && opts.tap && !tap {
        notes.push(
            "not root: rumpnet over TAP against a Linux client skipped (it needs a network \
             namespace and /dev/net/tun)"
                .to_owned(),
        );
    }
    cases
}

/// The default namespace's loopback MTU, as the kernel reports it.
fn lo_mtu() -> Option<usize> {
    std::fs::read_to_string("/sys/class/net/lo/mtu")
        .ok()
        .and_then(|s| s.trim().parse().ok())
}

fn run_case(case: &Case, opts: &Options, linux: &LinuxNets) -> Result<Sample, BenchError> {
    match case.run {
        Runner::Rumpnet(spec, offloads) => rumpnet::run_with(
            &spec,
            case.placement,
            case.mtu.unwrap_or(opts.mtu),
            offloads,
        ),
        Runner::RumpnetTap(spec) => tap::run(&spec, case.placement, case.mtu.unwrap_or(opts.mtu)),
        Runner::DpdkMemif(spec) => dpdk::run(&spec, case.placement, case.mtu.unwrap_or(opts.mtu)),
        Runner::Linux(spec, i) => linux::run(&spec, case.placement, &linux.nets[i]),
        Runner::Smoltcp(spec, skip) => smoltcp::run_with(&spec, case.mtu.unwrap_or(opts.mtu), skip),
        Runner::Memcpy => Ok(limits::memcpy(opts.duration)),
        Runner::PingPong => limits::ping_pong(case.placement, opts.duration),
        Runner::RumpnetConns => {
            let r = rumpnet::conns(case.conns)?;
            conns_sample(r.count, r.bytes_per_conn, r.open, r.answered)
        }
        Runner::SmoltcpConns => {
            let r = smoltcp::conns(case.conns)?;
            conns_sample(r.count, r.bytes_per_conn, r.open, r.answered)
        }
        Runner::LinuxConns(i) => {
            let r = linux::conns(case.conns, &linux.nets[i])?;
            conns_sample(r.count, r.bytes_per_conn, r.open, r.answered)
        }
    }
}

fn conns_sample(
    count: usize,
    bytes: f64,
    open: Duration,
    answered: usize,
) -> Result<Sample, BenchError> {
    if answered != count {
        return Err(BenchError::Corrupt((count - answered) as u64));
    }
    Ok(Sample {
        value: bytes,
        extra: vec![
            ("open_s", open.as_secs_f64()),
            (
                "open_conn_per_s",
                count as f64 / open.as_secs_f64().max(1e-9),
            ),
            ("answered", answered as f64),
        ],
        checked: answered as u64,
        errors: 0,
    })
}

/// Run everything `opts` asks for. Failures of single cases are recorded in their
/// rows, never fatal: the report says what failed.
pub fn run(opts: &Options) -> Report {
    let start = std::time::Instant::now();
    let mut machine = Machine::probe();
    let mut notes = Vec::new();
    if machine.build == "debug" {
        notes.push("debug build: these figures mean nothing; use --release".to_owned());
    }
    let linux = linux_nets(opts, &mut notes);
    let cases = plan(opts, &linux, &mut notes);
    let mut rows: Vec<Row> = cases
        .into_iter()
        .map(|case| Row {
            case,
            samples: Vec::new(),
            error: None,
        })
        .collect();
    let total = (rows.len() * opts.repeat.max(1)) as u64;
    let bar = if opts.progress {
        let b = ProgressBar::new(total);
        if let Ok(style) =
            ProgressStyle::with_template("{bar:30} {pos}/{len} {elapsed_precise} {msg}")
        {
            b.set_style(style);
        }
        b
    } else {
        ProgressBar::hidden()
    };
    for round in 0..opts.repeat.max(1) {
        for row in rows.iter_mut() {
            bar.set_message(format!("round {}: {}", round + 1, row.case.label()));
            match run_case(&row.case, opts, &linux) {
                Ok(s) => row.samples.push(s),
                Err(e) => row.error = Some(e.to_string()),
            }
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    drop(linux);
    machine.finish();
    Report {
        machine,
        options: opts.clone(),
        rows,
        notes,
        elapsed: start.elapsed(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_of_samples() {
        let s = Spread::of([3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.min, s.median, s.max), (1.0, 2.0, 3.0));
        assert_eq!(Spread::of([1.0, 4.0]).unwrap().median, 2.5);
        assert!(Spread::of([]).is_none());
    }

    #[test]
    fn the_plan_covers_every_system_and_placement() {
        let opts = Options {
            veth: false,
            ..Options::quick()
        };
        let mut notes = Vec::new();
        let nets = LinuxNets {
            nets: vec![LinuxNet::default_loopback()],
        };
        let cases = plan(&opts, &nets, &mut notes);
        for w in Workload::ALL {
            assert!(
                cases
                    .iter()
                    .any(|c| c.workload == w && c.system == System::Rumpnet),
                "{w}"
            );
            assert!(
                cases
                    .iter()
                    .any(|c| c.workload == w && c.system == System::Linux),
                "{w}"
            );
        }
        for w in [Workload::Stream, Workload::Rr, Workload::Crr] {
            assert!(
                cases
                    .iter()
                    .any(|c| c.workload == w && c.system == System::Smoltcp),
                "{w}"
            );
        }
        assert!(cases
            .iter()
            .any(|c| c.workload == Workload::Stream && c.mtu == Some(65535)));
        assert!(cases
            .iter()
            .any(|c| c.system == System::Limit && c.workload == Workload::Rr));
    }

    /// Every workload on rumpnet, for a few milliseconds: results come out and the
    /// data checked out (no figure is asserted: benchmarks never assert times).
    #[test]
    fn smoke_run_on_rumpnet() {
        let opts = Options {
            systems: vec![System::Rumpnet, System::Limit],
            duration: Duration::from_millis(20),
            repeat: 1,
            conns: 2000,
            progress: false,
            // Over TAP the kernel's slow start and ARP take longer than these 20 ms
            // runs; systems::tap's own test measures it with longer runs.
            tap: false,
            ..Options::quick()
        };
        let report = run(&opts);
        for w in Workload::ALL {
            assert!(report.rows.iter().any(|r| r.case.workload == w), "{w}");
        }
        for row in &report.rows {
            assert_eq!(row.error, None, "{}", row.case.label());
            assert_eq!(row.samples.len(), 1, "{}", row.case.label());
            let s = &row.samples[0];
            if row.case.placement == Placement::CrossCore {
                // Two threads pinned to the machine's two cores: on a machine busy with
                // other work one can be kept off its core for a whole short window, so
                // here it is enough that the run moved and checked data at all.
                assert!(s.value > 0.0 || s.checked > 0, "{}", row.case.label());
            } else {
                assert!(s.value > 0.0, "{}", row.case.label());
            }
            assert_eq!(s.errors, 0);
            if row.case.system != System::Limit || row.case.workload == Workload::Rr {
                assert!(s.checked > 0, "{}", row.case.label());
            }
        }
    }
}
