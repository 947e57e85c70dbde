//! Linux: the same workloads over kernel sockets (`std::net`), between two threads.
//!
//! As root, every path runs inside network namespaces this process creates (named
//! `rumpnet-bench-<pid>-<n>`, deleted when dropped): loopback in a private namespace
//! with `lo` at the MTU asked for, or a veth pair between two namespaces. Without root,
//! the default namespace's loopback (127.0.0.1, its own MTU) is used instead, and the
//! report says so. Nothing is ever sent to an address outside those.
//!
//! Each side is its own thread, pinned to its core (both on core 0 for same-core).
//! With one connection a side the sockets block, as netperf's do: a `recv` sleeps in
//! the kernel until data comes, which is Linux's fastest way to wait. With several, the
//! sockets are non-blocking and a side that can do nothing waits in `poll(2)`.

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use super::{sample, stall_limit, BenchError, Placement, Sample, Transport};
use crate::machine;
use crate::workload::{Client, Kind, Server, Sockets, Spec};

/// A network namespace of our own, deleted on drop.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

static NEXT_NS: AtomicUsize = AtomicUsize::new(0);

fn ip(args: &[&str]) -> Result<(), BenchError> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| BenchError::Setup(format!("running `ip`: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(BenchError::Setup(format!(
            "`ip {}`: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// Delete the namespaces earlier runs of this tool left behind (a run killed by a
/// signal never drops its [`Netns`]): those named `rumpnet-bench-<pid>-<n>` whose
/// process is gone. Nothing else is touched.
pub fn remove_stale_namespaces() {
    let Ok(dir) = std::fs::read_dir("/var/run/netns") else {
        return;
    };
    for entry in dir.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix("rumpnet-bench-") else {
            continue;
        };
        let Some((pid, n)) = rest.split_once('-') else {
            continue;
        };
        if pid.parse::<u32>().is_err() || n.parse::<u32>().is_err() {
            continue;
        }
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = ip(&["netns", "del", &name]);
        }
    }
}

impl Netns {
    /// A fresh namespace with its loopback up at `lo_mtu`.
    pub fn new(lo_mtu: usize) -> Result<Netns, BenchError> {
        let n = NEXT_NS.fetch_add(1, Ordering::Relaxed);
        let name = format!("rumpnet-bench-{}-{n}", std::process::id());
        ip(&["netns", "add", &name])?;
        let ns = Netns { name };
        let mtu = lo_mtu.to_string();
        ip(&["-n", &ns.name, "link", "set", "lo", "mtu", &mtu, "up"])?;
        // Room for the many connections of `conns` from one address.
        let _ = Command::new("ip")
            .args(["netns", "exec", &ns.name, "sysctl", "-q", "-w"])
            .arg("net.ipv4.ip_local_port_range=1024 65535")
            .output();
        Ok(ns)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Move the calling thread into this namespace (sockets it creates from now on
    /// live there; sockets already open stay where they were made).
    #[allow(unsafe_code)]
    pub fn enter(&self) -> io::Result<()> {
        let f = File::open(format!("/var/run/netns/{}", self.name))?;
        // SAFETY: `f` is an open namespace file for the duration of the call;
        // setns only changes the calling thread's network namespace.
        let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.name]);
    }
}

/// Where Linux's two ends live.
#[derive(Debug)]
pub struct LinuxNet {
    pub transport: Transport,
    /// The MTU of the path (loopback's `lo`, the veth pair), if we set it.
    pub mtu: Option<usize>,
    client_ns: Option<Arc<Netns>>,
    server_ns: Option<Arc<Netns>>,
    server_ip: Ipv4Addr,
}

impl LinuxNet {
    /// Loopback in a private namespace with `lo` at `mtu`.
    pub fn loopback(mtu: usize) -> Result<LinuxNet, BenchError> {
        let ns = Arc::new(Netns::new(mtu)?);
        Ok(LinuxNet {
            transport: Transport::Loopback,
            mtu: Some(mtu),
            client_ns: Some(ns.clone()),
            server_ns: Some(ns),
            server_ip: Ipv4Addr::LOCALHOST,
        })
    }

    /// The loopback of the namespace we run in (no root needed; its MTU is whatever
    /// the machine has).
    pub fn default_loopback() -> LinuxNet {
        LinuxNet {
            transport: Transport::Loopback,
            mtu: None,
            client_ns: None,
            server_ns: None,
            server_ip: Ipv4Addr::LOCALHOST,
        }
    }

    /// A veth pair at `mtu` between two fresh namespaces: client 10.203.0.1, server
    /// 10.203.0.2 (addresses that exist only inside them).
    pub fn veth(mtu: usize) -> Result<LinuxNet, BenchError> {
        let a = Arc::new(Netns::new(1500)?);
        let b = Arc::new(Netns::new(1500)?);
        let n = NEXT_NS.fetch_add(1, Ordering::Relaxed);
        let (va, vb) = (format!("rbv{n}a"), format!("rbv{n}b"));
        let mtu_s = mtu.to_string();
        ip(&[
            "-n",
            a.name(),
            "link",
            "add",
            &va,
            "mtu",
            &mtu_s,
            "type",
            "veth",
            "peer",
            "name",
            &vb,
            "mtu",
            &mtu_s,
            "netns",
            b.name(),
        ])?;
        ip(&["-n", a.name(), "addr", "add", "10.203.0.1/24", "dev", &va])?;
        ip(&["-n", b.name(), "addr", "add", "10.203.0.2/24", "dev", &vb])?;
        ip(&["-n", a.name(), "link", "set", &va, "up"])?;
        ip(&["-n", b.name(), "link", "set", &vb, "up"])?;
        Ok(LinuxNet {
            transport: Transport::Veth,
            mtu: Some(mtu),
            client_ns: Some(a),
            server_ns: Some(b),
            server_ip: Ipv4Addr::new(10, 203, 0, 2),
        })
    }

    fn enter_client(&self) -> io::Result<()> {
        self.client_ns.as_ref().map_or(Ok(()), |n| n.enter())
    }

    fn enter_server(&self) -> io::Result<()> {
        self.server_ns.as_ref().map_or(Ok(()), |n| n.enter())
    }
}

/// One side's kernel sockets. A connection is an index into `conns`.
#[derive(Debug)]
pub(crate) struct LinuxSockets {
    server: SocketAddr,
    listener: Option<TcpListener>,
    conns: Vec<Option<TcpStream>>,
    /// The last send on this connection found no room: wait for POLLOUT.
    write_blocked: Vec<bool>,
    blocking: bool,
    nodelay: bool,
    timeout: Duration,
}

impl LinuxSockets {
    pub(crate) fn new(
        server: SocketAddr,
        listener: Option<TcpListener>,
        spec: &Spec,
    ) -> LinuxSockets {
        LinuxSockets {
            server,
            listener,
            conns: Vec::new(),
            write_blocked: Vec::new(),
            blocking: blocking(spec),
            nodelay: spec.nodelay(),
            timeout: stall_limit(spec),
        }
    }

    fn adopt(&mut self, s: TcpStream) -> io::Result<usize> {
        s.set_nodelay(self.nodelay)?;
        s.set_nonblocking(!self.blocking)?;
        if self.blocking {
            // A stalled peer ends the run with an error instead of hanging it.
            s.set_read_timeout(Some(self.timeout))?;
            s.set_write_timeout(Some(self.timeout))?;
        }
        let i = match self.conns.iter().position(Option::is_none) {
            Some(i) => i,
            None => {
                self.conns.push(None);
                self.write_blocked.push(false);
                self.conns.len() - 1
            }
        };
        self.conns[i] = Some(s);
        self.write_blocked[i] = false;
        Ok(i)
    }

    fn stream(&mut self, c: usize) -> io::Result<&mut TcpStream> {
        self.conns
            .get_mut(c)
            .and_then(Option::as_mut)
            .ok_or_else(|| io::Error::other("no such connection"))
    }

    /// One connection at a time: the sockets block (the kernel sleeps the thread).
    pub(crate) fn is_blocking(&self) -> bool {
        self.blocking
    }

    /// Sleep in poll(2) until a socket is ready (or 10 ms pass).
    #[allow(unsafe_code)]
    pub(crate) fn wait(&mut self) {
        let mut fds: Vec<libc::pollfd> = Vec::with_capacity(self.conns.len() + 1);
        if let Some(l) = &self.listener {
            fds.push(libc::pollfd {
                fd: l.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            });
        }
        for (s, &w) in self.conns.iter().zip(&self.write_blocked) {
            if let Some(s) = s {
                fds.push(libc::pollfd {
                    fd: s.as_raw_fd(),
                    events: if w {
                        libc::POLLIN | libc::POLLOUT
                    } else {
                        libc::POLLIN
                    },
                    revents: 0,
                });
            }
        }
        // SAFETY: `fds` is a valid array of `fds.len()` pollfd structs that outlives
        // the call; poll only writes their `revents`.
        unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 10) };
        self.write_blocked.iter_mut().for_each(|w| *w = false);
    }
}

impl Sockets for LinuxSockets {
    type Conn = usize;

    fn connect(&mut self) -> io::Result<usize> {
        let s = TcpStream::connect(self.server)?;
        self.adopt(s)
    }

    fn accept(&mut self) -> io::Result<Option<usize>> {
        let Some(l) = &self.listener else {
            return Ok(None);
        };
        match l.accept() {
            Ok((s, _)) => self.adopt(s).map(Some),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn send(&mut self, c: usize, data: &[u8]) -> io::Result<usize> {
        match self.stream(c)?.write(data) {
            Ok(n) => Ok(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.write_blocked[c] = true;
                Ok(0)
            }
            Err(e) => Err(e),
        }
    }

    fn recv(&mut self, c: usize, buf: &mut [u8]) -> io::Result<Option<usize>> {
        match self.stream(c)?.read(buf) {
            Ok(n) => Ok(Some(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn close(&mut self, c: usize) {
        if let Some(slot) = self.conns.get_mut(c) {
            *slot = None;
        }
    }
}

/// Blocking sockets when a side has one connection at a time.
fn blocking(spec: &Spec) -> bool {
    spec.kind == Kind::Crr || spec.conns <= 1
}

/// Run a timed workload once over `net`.
pub fn run(spec: &Spec, placement: Placement, net: &LinuxNet) -> Result<Sample, BenchError> {
    let spec = *spec;
    let (client_core, server_core) = placement.cores();
    let epoch = Instant::now();
    let cpu0 = machine::process_cpu_time();
    let limit = epoch + spec.warmup() + spec.duration + stall_limit(&spec);
    let client_done = AtomicBool::new(false);
    let failed = AtomicBool::new(false);
    let (tx, rx) = mpsc::channel::<Result<SocketAddr, String>>();
    let (client, server) = thread::scope(|s| {
        let (client_done, failed) = (&client_done, &failed);
        let server = s.spawn(move || -> Result<_, BenchError> {
            net.enter_server()?;
            machine::pin_to_core(server_core);
            let bound = TcpListener::bind(SocketAddrV4::new(net.server_ip, 0)).and_then(|l| {
                l.set_nonblocking(!blocking(&spec))?;
                Ok(l)
            });
            let listener = match bound {
                Ok(l) => l,
                Err(e) => {
                    let _ = tx.send(Err(e.to_string()));
                    return Err(e.into());
                }
            };
            let addr = listener.local_addr()?;
            let _ = tx.send(Ok(addr));
            let mut sockets = LinuxSockets::new(addr, Some(listener), &spec);
            let mut server = Server::new(spec, epoch);
            loop {
                let moved = match server.step(&mut sockets, Instant::now()) {
                    Ok(m) => m,
                    Err(e) => {
                        failed.store(true, Ordering::Release);
                        return Err(e.into());
                    }
                };
                if client_done.load(Ordering::Acquire) {
                    server.finish();
                }
                if server.done() {
                    return Ok(server);
                }
                if failed.load(Ordering::Acquire) || Instant::now() > limit {
                    return Err(BenchError::Stalled("linux server"));
                }
                if !moved && !sockets.blocking {
                    sockets.wait();
                }
            }
        });
        let client = s.spawn(move || -> Result<_, BenchError> {
            net.enter_client()?;
            machine::pin_to_core(client_core);
            let addr = rx
                .recv()
                .map_err(|_| BenchError::Setup("the server thread died".into()))?
                .map_err(BenchError::Setup)?;
            let mut sockets = LinuxSockets::new(addr, None, &spec);
            let mut client = Client::new(spec, epoch);
            let result = loop {
                let moved = match client.step(&mut sockets, Instant::now()) {
                    Ok(m) => m,
                    Err(e) => break Err(e.into()),
                };
                if client.done() {
                    break Ok(());
                }
                if failed.load(Ordering::Acquire) || Instant::now() > limit {
                    break Err(BenchError::Stalled("linux client"));
                }
                if !moved && !sockets.blocking {
                    sockets.wait();
                }
            };
            client_done.store(true, Ordering::Release);
            if result.is_err() {
                failed.store(true, Ordering::Release);
            }
            if spec.kind == Kind::Crr {
                // The crr server may be asleep in a blocking accept(): one more
                // connection wakes it to see that the client is done.
                drop(TcpStream::connect(addr));
            }
            result.map(|()| client)
        });
        (
            client
                .join()
                .unwrap_or_else(|_| Err(BenchError::Setup("client thread panicked".into()))),
            server
                .join()
                .unwrap_or_else(|_| Err(BenchError::Setup("server thread panicked".into()))),
        )
    });
    let (client, server) = (client?, server?);
    let wall = epoch.elapsed();
    let cpu = machine::process_cpu_time().saturating_sub(cpu0);
    sample(&spec, client.outcome(), &server.outcome(), cpu, wall)
}

/// What `conns` measured on Linux.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConnsResult {
    pub count: usize,
    /// Growth of the kernel's slab memory plus this process's resident set over the
    /// open, divided by `count`: machine-wide, so other activity adds noise.
    pub bytes_per_conn: f64,
    pub open: Duration,
    pub answered: usize,
}

/// Connections per listening port: the ephemeral range is widened to 1024-65535 in
/// our namespaces; the default namespace's (usually 32768-60999) is left alone.
fn conns_per_port(net: &LinuxNet) -> usize {
    if net.client_ns.is_some() {
        60_000
    } else {
        20_000
    }
}

/// Open `count` idle connections over loopback in `net`, both ends in this process,
/// then check that each echoes a byte. Needs two file descriptors per connection.
pub fn conns(count: usize, net: &LinuxNet) -> Result<ConnsResult, BenchError> {
    thread::scope(|s| {
        s.spawn(|| conns_inner(count.max(1), net))
            .join()
            .unwrap_or_else(|_| Err(BenchError::Setup("the conns thread panicked".into())))
    })
}

/// Idle connections `conns` can open here: two descriptors each, within the hard limit
/// on open files (which only a process with CAP_SYS_RESOURCE may raise).
#[allow(unsafe_code)]
pub fn max_conns() -> usize {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid rlimit the call writes.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return 0;
    }
    let nr_open = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(lim.rlim_max);
    let fds = if machine::has_cap_sys_resource() {
        nr_open
    } else {
        lim.rlim_max
    };
    (fds.saturating_sub(1024) / 2) as usize
}

#[allow(unsafe_code)]
fn raise_fd_limit(want: u64) -> Result<(), BenchError> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid rlimit the call writes.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(BenchError::Setup("getrlimit failed".into()));
    }
    if lim.rlim_cur >= want {
        return Ok(());
    }
    // Root may raise the hard limit too (up to fs.nr_open); anyone else up to it.
    let raised = libc::rlimit {
        rlim_cur: want,
        rlim_max: lim.rlim_max.max(want),
    };
    // SAFETY: `raised` and `lim` are valid rlimits the calls read.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
        return Ok(());
    }
    lim.rlim_cur = want.min(lim.rlim_max);
    // SAFETY: as above.
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
    if lim.rlim_cur < want {
        return Err(BenchError::Setup(format!(
            "{want} file descriptors needed, the hard limit is {}",
            lim.rlim_max
        )));
    }
    Ok(())
}

fn conns_inner(count: usize, net: &LinuxNet) -> Result<ConnsResult, BenchError> {
    raise_fd_limit(count as u64 * 2 + 1024)?;
    net.enter_server()?;
    machine::pin_to_core(0);
    let per_port = conns_per_port(net);
    let ports = count.div_ceil(per_port);
    let listeners = (0..ports)
        .map(|_| {
            let l = TcpListener::bind(SocketAddrV4::new(net.server_ip, 0))?;
            Ok((l.local_addr()?, l))
        })
        .collect::<io::Result<Vec<_>>>()?;
    let mut client = Vec::with_capacity(count);
    let mut server = Vec::with_capacity(count);
    machine::release_free_memory();
    let before = machine::kernel_slab_bytes() + machine::rss_bytes();
    let start = Instant::now();
    // Accept as we go: the accept queue is bounded (somaxconn), and a full one
    // drops SYNs, which would stall a blocking connect for a second.
    const BATCH: usize = 64;
    while client.len() < count {
        let port = client.len() / per_port;
        let (addr, l) = &listeners[port];
        let n = BATCH
            .min(count - client.len())
            .min((port + 1) * per_port - client.len());
        for _ in 0..n {
            client.push(TcpStream::connect(addr)?);
        }
        for _ in 0..n {
            server.push(l.accept()?.0);
        }
    }
    let open = start.elapsed();
    let after = machine::kernel_slab_bytes() + machine::rss_bytes();
    // Pair each client with its server end by the client's port.
    let mut by_port = std::collections::HashMap::with_capacity(count);
    for (i, s) in server.iter().enumerate() {
        by_port.insert(s.peer_addr()?, i);
    }
    let mut answered = 0;
    let mut byte = [0u8; 1];
    for c in client.iter_mut() {
        c.set_read_timeout(Some(Duration::from_secs(5)))?;
        c.write_all(&[0x5a])?;
        let Some(&j) = by_port.get(&c.local_addr()?) else {
            continue;
        };
        let s = &mut server[j];
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        s.read_exact(&mut byte)?;
        s.write_all(&byte)?;
        c.read_exact(&mut byte)?;
        if byte[0] == 0x5a {
            answered += 1;
        }
    }
    Ok(ConnsResult {
        count,
        bytes_per_conn: after.saturating_sub(before) as f64 / count as f64,
        open,
        answered,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(kind: Kind, conns: usize) -> Spec {
        Spec {
            kind,
            conns,
            msg: if kind == Kind::Stream { 65536 } else { 64 },
            duration: Duration::from_millis(200),
        }
    }

    /// Over the default namespace's loopback: needs no privileges.
    #[test]
    fn workloads_run_over_loopback() {
        let net = LinuxNet::default_loopback();
        for placement in [Placement::SameCore, Placement::CrossCore] {
            for (kind, conns) in [
                (Kind::Stream, 1),
                (Kind::Stream, 2),
                (Kind::Rr, 1),
                (Kind::Rr, 4),
                (Kind::Crr, 1),
            ] {
                let s = run(&spec(kind, conns), placement, &net)
                    .unwrap_or_else(|e| panic!("{kind:?}/{conns} {placement:?}: {e}"));
                assert!(s.value > 0.0, "{kind:?}: {s:?}");
                assert!(s.checked > 0);
            }
        }
    }

    #[test]
    fn idle_connections_answer() {
        let r = conns(300, &LinuxNet::default_loopback()).unwrap();
        assert_eq!(r.answered, 300);
    }

    #[test]
    fn namespaces_when_root() {
        if !machine::is_root() {
            return;
        }
        let net = LinuxNet::loopback(1500).unwrap();
        let s = run(&spec(Kind::Rr, 1), Placement::SameCore, &net).unwrap();
        assert!(s.value > 0.0);
        let veth = LinuxNet::veth(1500).unwrap();
        // A second, not 0.2: on a loaded 2-core machine a debug build's two threads
        // across cores can spend the short window setting up (seen in CI with load 9).
        let long = Spec {
            duration: Duration::from_secs(1),
            ..spec(Kind::Stream, 1)
        };
        let s = run(&long, Placement::CrossCore, &veth).unwrap();
        assert!(s.value > 0.0, "{s:?}");
        let name = veth.client_ns.as_ref().unwrap().name().to_owned();
        drop(veth);
        assert!(!std::path::Path::new(&format!("/var/run/netns/{name}")).exists());
    }
}
