//! The TAP device: one queue of a Linux TAP interface behind [`Device`].
//!
//! Each [`TapDevice`] owns one open `/dev/net/tun` file, non-blocking, attached to a TAP
//! interface with `IFF_TAP | IFF_NO_PI` (Ethernet frames, no packet-information prefix).
//! A single-queue device has one such file; [`TapDevice::open_queues`] opens one file per
//! queue with `IFF_MULTI_QUEUE`, so each shard owns a queue and no two threads share a
//! file.
//!
//! ## Cost per frame
//!
//! TAP moves one frame per system call: `read(2)` returns exactly one frame and
//! `writev(2)` takes exactly one (the kernel's TUN driver has no batched interface for
//! userspace short of vhost-net). That is inherent to TAP, and why the zero-copy backends
//! exist. What this backend does avoid is everything else per frame: frames are read
//! straight into [`FramePool`] buffers and written from them, the virtio-net header goes
//! out through a second `iovec` from the stack (no copy of the frame, no headroom
//! needed), and nothing is allocated once the pools are warm.
//!
//! ## Offloads
//!
//! With [`TapOptions::offloads`] the file is opened with `IFF_VNET_HDR` (a 12-byte
//! virtio-net header in front of every frame, see [`crate::vnet`]) and `TUNSETOFFLOAD`
//! allows `TUN_F_CSUM | TUN_F_TSO4`: the kernel may then hand over frames whose TCP/UDP
//! checksum is only partial (it was never computed: the frame never left the machine)
//! and TCP super-frames of up to 64 KB (GSO), and it finishes checksums and cuts TSO
//! segments for frames we send. [`Capabilities`] advertise TCP/UDP checksum offload in
//! both directions and `tso_max` = 65535 (the largest IPv4 packet); there is no IPv4
//! header checksum offload on TAP. Without offloads, frames carry no header and every
//! checksum is the stack's job.

use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use rumpnet_stack::device::{Capabilities, ChecksumCaps, Device, Frame, FramePool, HeapFrame};
use rumpnet_stack::link::LINK_HEADER_MAX;
use rumpnet_stack::wire::{EthernetAddress, Ipv4Cidr};

use crate::error::TapError;
use crate::sys;
use crate::vnet::{VnetHdr, VNET_HDR_LEN};

/// Where the TUN/TAP character device lives.
pub const DEFAULT_TUN_PATH: &str = "/dev/net/tun";

/// The largest IPv4 packet (the total-length field is 16 bits): the bound on a GSO
/// super-frame in either direction, and the `tso_max` this backend advertises.
pub const MAX_IP_PACKET: usize = 65535;

/// Frames per burst unless [`TapOptions::burst`] says otherwise.
pub const DEFAULT_BURST: usize = 32;

/// What a poll loop does when a poll found no work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdlePolicy {
    /// Never sleep: lowest latency, one core at 100 % even when idle.
    BusyPoll,
    /// Poll `spin` more times without work, then sleep in `epoll_wait` until a frame
    /// arrives or the stack's next timer is due.
    Wait {
        /// Empty polls before sleeping (0: sleep at the first empty poll).
        spin: u32,
    },
}

impl Default for IdlePolicy {
    fn default() -> Self {
        IdlePolicy::Wait { spin: 0 }
    }
}

/// How to open a TAP interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TapOptions {
    /// The TUN/TAP character device (tests point it elsewhere to see the error).
    pub tun_path: PathBuf,
    /// Set the interface's MTU; `None` keeps the current one (1500 for a new interface).
    pub mtu: Option<usize>,
    /// Use the virtio-net header for checksum and segmentation offloads.
    pub offloads: bool,
    /// Bring the link up after opening.
    pub bring_up: bool,
    /// The most frames one `rx_burst` reads.
    pub burst: usize,
    /// Free MTU-sized transmit buffers kept for reuse.
    pub pool_frames: usize,
    /// Headroom in front of the data of every frame.
    pub headroom: usize,
    /// What [`TapDevice::idle`] does.
    pub idle: IdlePolicy,
}

impl Default for TapOptions {
    fn default() -> Self {
        TapOptions {
            tun_path: PathBuf::from(DEFAULT_TUN_PATH),
            mtu: None,
            offloads: true,
            bring_up: true,
            burst: DEFAULT_BURST,
            pool_frames: 1024,
            headroom: 128,
            idle: IdlePolicy::default(),
        }
    }
}

/// Counters of one TAP queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TapStats {
    /// Frames handed to the stack.
    pub rx_frames: u64,
    /// Their bytes (link header included, virtio-net header not).
    pub rx_bytes: u64,
    /// Received GSO super-frames (a kernel TCP send not yet cut into segments).
    pub rx_gso: u64,
    /// Received frames whose L4 checksum was partial (`NEEDS_CSUM`).
    pub rx_csum_partial: u64,
    /// Reads longer than the buffer (the frame was cut short and dropped).
    pub rx_oversize: u64,
    /// Reads shorter than the virtio-net header, dropped.
    pub rx_runt: u64,
    /// Failed reads (other than "nothing to read").
    pub rx_errors: u64,
    /// Frames the kernel took.
    pub tx_frames: u64,
    /// Their bytes (without the virtio-net header).
    pub tx_bytes: u64,
    /// Frames sent with a checksum-offload request.
    pub tx_csum_offload: u64,
    /// Frames sent as TSO super-frames.
    pub tx_tso: u64,
    /// Frames the kernel refused (bad offload header, link gone...), dropped.
    pub tx_errors: u64,
    /// Times [`TapDevice::wait`] slept in `epoll_wait`.
    pub waits: u64,
}

/// One queue of a TAP interface, as a [`Device`].
pub struct TapDevice {
    file: File,
    name: String,
    vnet: bool,
    mtu: usize,
    queue: u16,
    burst: usize,
    headroom: usize,
    pool_frames: usize,
    rx_pool: Arc<FramePool>,
    rx_len: usize,
    tx_pool: Arc<FramePool>,
    tx_len: usize,
    /// Buffers for TSO super-frames, only with offloads.
    tso_pool: Option<Arc<FramePool>>,
    poll: Option<Poll>,
    events: Events,
    /// The last read returned `EAGAIN`: only then may `wait` sleep (epoll is
    /// edge-triggered, so data left unread would never wake it).
    drained: bool,
    idle: IdlePolicy,
    idle_polls: u32,
    stats: TapStats,
    last_error: Option<io::Error>,
}

/// One queue of a multi-queue TAP interface: a [`TapDevice`] of its own.
pub type TapQueue = TapDevice;

impl std::fmt::Debug for TapDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TapDevice")
            .field("name", &self.name)
            .field("queue", &self.queue)
            .field("fd", &self.file.as_raw_fd())
            .field("offloads", &self.vnet)
            .field("mtu", &self.mtu)
            .field("stats", &self.stats)
            .finish()
    }
}

/// Check `name` the way the kernel's `dev_valid_name` does, so a bad name fails with a
/// precise error before any system call. An empty name or a `%d` pattern lets the kernel
/// pick (`tap%d`).
fn validate_name(name: &str) -> Result<(), TapError> {
    if name.len() >= sys::IFNAMSIZ {
        return Err(TapError::NameTooLong {
            name: name.to_string(),
            len: name.len(),
        });
    }
    let bad = name == "."
        || name == ".."
        || name
            .bytes()
            .any(|b| b == b'/' || b == b':' || b == 0 || b.is_ascii_whitespace());
    if bad {
        return Err(TapError::InvalidName {
            name: name.to_string(),
        });
    }
    Ok(())
}

/// Open the TUN device and attach it to `name` with `flags`; returns the file and the
/// name the kernel used.
fn attach(name: &str, flags: libc::c_int, opts: &TapOptions) -> Result<(File, String), TapError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(&opts.tun_path)
        .map_err(|source| match source.raw_os_error() {
            Some(libc::ENOENT) | Some(libc::ENODEV) | Some(libc::ENXIO) => TapError::NoTunDevice {
                path: opts.tun_path.clone(),
                source,
            },
            _ => TapError::from_io("open the TUN/TAP device", source),
        })?;
    let actual = sys::tun_set_iff(&file, name, flags).map_err(|source| {
        match source.raw_os_error() {
            Some(libc::EBUSY) => TapError::NameTaken {
                name: name.to_string(),
            },
            Some(libc::EINVAL) => TapError::NotATap {
                name: name.to_string(),
            },
            // ENOTTY: the path is not the TUN device (a regular file, /dev/null...).
            Some(libc::ENOTTY) => TapError::NoTunDevice {
                path: opts.tun_path.clone(),
                source,
            },
            _ => TapError::from_io("TUNSETIFF (create or attach the TAP interface)", source),
        }
    })?;
    if flags & libc::IFF_VNET_HDR != 0 {
        sys::tun_set_vnet_hdr_sz(&file, VNET_HDR_LEN)
            .map_err(|e| TapError::from_io("TUNSETVNETHDRSZ", e))?;
        sys::tun_set_offload(&file, libc::TUN_F_CSUM | libc::TUN_F_TSO4)
            .map_err(|e| TapError::from_io("TUNSETOFFLOAD", e))?;
    }
    Ok((file, actual))
}

/// Set the MTU and link state of `name` as `opts` asks; returns the MTU in force.
fn configure(name: &str, opts: &TapOptions) -> Result<usize, TapError> {
    let ctl = sys::CtlSocket::new().map_err(|e| TapError::from_io("socket(AF_INET)", e))?;
    if let Some(mtu) = opts.mtu {
        ctl.set_mtu(name, mtu)
            .map_err(|source| match source.raw_os_error() {
                Some(libc::EINVAL) => TapError::BadMtu {
                    name: name.to_string(),
                    mtu,
                    source,
                },
                _ => TapError::from_io("SIOCSIFMTU", source),
            })?;
    }
    if opts.bring_up {
        ctl.set_up(name, true)
            .map_err(|e| TapError::from_io("SIOCSIFFLAGS (bring the link up)", e))?;
    }
    ctl.mtu(name)
        .map_err(|e| TapError::from_io("SIOCGIFMTU", e))
}

impl TapDevice {
    /// Create the TAP interface `name`, or attach to it if it exists and is free, as a
    /// single-queue device. An empty name lets the kernel choose (see [`name`](Self::name)).
    pub fn open(name: &str, opts: &TapOptions) -> Result<TapDevice, TapError> {
        validate_name(name)?;
        let mut flags = libc::IFF_TAP | libc::IFF_NO_PI;
        if opts.offloads {
            flags |= libc::IFF_VNET_HDR;
        }
        let (file, actual) = attach(name, flags, opts)?;
        let mtu = configure(&actual, opts)?;
        Ok(TapDevice::new(file, actual, 0, mtu, opts))
    }

    /// Create (or attach to) the multi-queue TAP interface `name` and open `n` queues of
    /// it, one [`TapQueue`] each, for `n` shards.
    ///
    /// The kernel picks the queue of each frame it sends by flow: a new flow lands on a
    /// queue chosen by its hash, and a flow the stack has sent on sticks to the queue it
    /// was sent from (TUN's automatic flow steering), so replies reach the shard that
    /// owns the connection.
    pub fn open_queues(name: &str, n: usize, opts: &TapOptions) -> Result<Vec<TapQueue>, TapError> {
        if n == 0 || n > sys::MAX_QUEUES {
            return Err(TapError::BadQueueCount {
                requested: n,
                max: sys::MAX_QUEUES,
            });
        }
        validate_name(name)?;
        let mut flags = libc::IFF_TAP | libc::IFF_NO_PI | libc::IFF_MULTI_QUEUE;
        if opts.offloads {
            flags |= libc::IFF_VNET_HDR;
        }
        let mut files = Vec::with_capacity(n);
        let mut actual = name.to_string();
        for _ in 0..n {
            let (file, got) = attach(&actual, flags, opts)?;
            actual = got;
            files.push(file);
        }
        let mtu = configure(&actual, opts)?;
        Ok(files
            .into_iter()
            .enumerate()
            .map(|(i, file)| TapDevice::new(file, actual.clone(), i as u16, mtu, opts))
            .collect())
    }

    fn new(file: File, name: String, queue: u16, mtu: usize, opts: &TapOptions) -> TapDevice {
        let vnet = opts.offloads;
        let burst = opts.burst.max(1);
        let headroom = opts.headroom;
        let (rx_pool, rx_len, tx_pool, tx_len, tso_pool) = Self::pools(vnet, mtu, burst, opts);
        TapDevice {
            file,
            name,
            vnet,
            mtu,
            queue,
            burst,
            headroom,
            pool_frames: opts.pool_frames,
            rx_pool,
            rx_len,
            tx_pool,
            tx_len,
            tso_pool,
            poll: None,
            events: Events::with_capacity(1),
            drained: false,
            idle: opts.idle,
            idle_polls: 0,
            stats: TapStats::default(),
            last_error: None,
        }
    }

    /// Receive buffers hold the largest frame the kernel may hand over (a 64 KB GSO
    /// super-frame with offloads, an MTU-sized frame without), plus the virtio-net header
    /// and a VLAN tag. Transmit buffers are MTU-sized, with a second pool of 64 KB
    /// buffers for TSO frames so a small frame never pins a large buffer.
    #[allow(clippy::type_complexity)]
    fn pools(
        vnet: bool,
        mtu: usize,
        burst: usize,
        opts: &TapOptions,
    ) -> (
        Arc<FramePool>,
        usize,
        Arc<FramePool>,
        usize,
        Option<Arc<FramePool>>,
    ) {
        let headroom = opts.headroom;
        let hdr = if vnet { VNET_HDR_LEN } else { 0 };
        let rx_ip = if vnet { MAX_IP_PACKET.max(mtu) } else { mtu };
        let rx_len = hdr + LINK_HEADER_MAX + rx_ip;
        let rx_pool = FramePool::new(burst * 2, headroom + rx_len, headroom);
        let tx_len = mtu + LINK_HEADER_MAX;
        let tx_pool = FramePool::new(opts.pool_frames, headroom + tx_len, headroom);
        let tso_pool = vnet.then(|| {
            FramePool::new(
                burst * 2,
                headroom + MAX_IP_PACKET + LINK_HEADER_MAX,
                headroom,
            )
        });
        (rx_pool, rx_len, tx_pool, tx_len, tso_pool)
    }

    /// The interface's name (as the kernel spelled it).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// This queue's index among the interface's queues (0 for a single-queue device).
    pub fn queue_index(&self) -> u16 {
        self.queue
    }

    /// The virtio-net header and offloads are in use.
    pub fn offloads(&self) -> bool {
        self.vnet
    }

    /// The MTU in force.
    pub fn mtu(&self) -> usize {
        self.mtu
    }

    /// The counters.
    pub fn stats(&self) -> TapStats {
        self.stats
    }

    /// The latest failed read or write, if any (counted in [`TapStats`], kept here so
    /// the host can log why).
    pub fn take_error(&mut self) -> Option<io::Error> {
        self.last_error.take()
    }

    /// Assign `cidr` to the kernel side of the interface (`SIOCSIFADDR`,
    /// `SIOCSIFNETMASK`): the host's own address on the TAP link. The name is resolved in
    /// the caller's network namespace.
    pub fn set_host_addr(&self, cidr: Ipv4Cidr) -> Result<(), TapError> {
        let ctl = sys::CtlSocket::new().map_err(|e| TapError::from_io("socket(AF_INET)", e))?;
        ctl.set_ipv4(&self.name, cidr.address(), cidr.netmask())
            .map_err(|e| TapError::from_io("SIOCSIFADDR/SIOCSIFNETMASK", e))
    }

    /// Bring the kernel side's link up or down.
    pub fn set_link_up(&self, up: bool) -> Result<(), TapError> {
        let ctl = sys::CtlSocket::new().map_err(|e| TapError::from_io("socket(AF_INET)", e))?;
        ctl.set_up(&self.name, up)
            .map_err(|e| TapError::from_io("SIOCSIFFLAGS", e))
    }

    /// Change the interface's MTU; the buffers follow. Other queues of the same interface
    /// keep the MTU they were opened with until they are told too.
    pub fn set_mtu(&mut self, mtu: usize) -> Result<(), TapError> {
        let opts = TapOptions {
            mtu: Some(mtu),
            bring_up: false,
            ..TapOptions::default()
        };
        self.mtu = configure(&self.name, &opts)?;
        let (rx_pool, rx_len, tx_pool, tx_len, tso_pool) = Self::pools(
            self.vnet,
            self.mtu,
            self.burst,
            &TapOptions {
                headroom: self.headroom,
                pool_frames: self.pool_frames,
                ..TapOptions::default()
            },
        );
        self.rx_pool = rx_pool;
        self.rx_len = rx_len;
        self.tx_pool = tx_pool;
        self.tx_len = tx_len;
        self.tso_pool = tso_pool;
        Ok(())
    }

    /// The kernel side's MAC address (the stack's neighbour on the TAP link).
    pub fn host_mac(&self) -> Result<EthernetAddress, TapError> {
        let ctl = sys::CtlSocket::new().map_err(|e| TapError::from_io("socket(AF_INET)", e))?;
        ctl.hwaddr(&self.name)
            .map(EthernetAddress)
            .map_err(|e| TapError::from_io("SIOCGIFHWADDR", e))
    }

    /// Sleep until a frame can be read or `timeout` passes (`None`: no limit). Returns
    /// whether a frame may be waiting. Returns at once if the last `rx_burst` stopped
    /// before draining the queue.
    pub fn wait(&mut self, timeout: Option<Duration>) -> Result<bool, TapError> {
        if !self.drained {
            return Ok(true);
        }
        if self.poll.is_none() {
            let poll = Poll::new().map_err(|e| TapError::from_io("epoll_create", e))?;
            poll.registry()
                .register(
                    &mut SourceFd(&self.file.as_raw_fd()),
                    Token(0),
                    Interest::READABLE,
                )
                .map_err(|e| TapError::from_io("epoll_ctl", e))?;
            self.poll = Some(poll);
        }
        let Some(poll) = self.poll.as_mut() else {
            return Ok(true);
        };
        self.stats.waits += 1;
        match poll.poll(&mut self.events, timeout) {
            Ok(()) => {}
            // A signal: let the caller poll and come back.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(true),
            Err(e) => return Err(TapError::from_io("epoll_wait", e)),
        }
        let ready = !self.events.is_empty();
        if ready {
            self.drained = false;
        }
        Ok(ready)
    }

    /// Apply the [`IdlePolicy`] after a poll that found no work: spin, or once `spin`
    /// empty polls have passed, [`wait`](Self::wait) up to `timeout` (the time until the
    /// stack's next timer).
    pub fn idle(&mut self, timeout: Option<Duration>) -> Result<(), TapError> {
        match self.idle {
            IdlePolicy::BusyPoll => {
                std::hint::spin_loop();
                Ok(())
            }
            IdlePolicy::Wait { spin } => {
                self.idle_polls = self.idle_polls.saturating_add(1);
                if self.idle_polls > spin {
                    self.idle_polls = 0;
                    self.wait(timeout)?;
                }
                Ok(())
            }
        }
    }

    /// The idle policy.
    pub fn idle_policy(&self) -> IdlePolicy {
        self.idle
    }

    /// Change the idle policy.
    pub fn set_idle_policy(&mut self, idle: IdlePolicy) {
        self.idle = idle;
        self.idle_polls = 0;
    }

    /// Read one frame into a pooled buffer; `Ok(None)` when nothing is left to read.
    fn read_frame(&mut self) -> io::Result<Option<HeapFrame>> {
        loop {
            let Some(mut frame) = self.rx_pool.alloc(self.rx_len) else {
                return Ok(None);
            };
            let buf = frame.spare_from_start();
            let room = buf.len();
            let n = match (&self.file).read(buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.drained = true;
                    return Ok(None);
                }
                Err(e) => return Err(e),
            };
            // TUN reports the frame's full length even when it cut it to fit the buffer.
            if n > room {
                self.stats.rx_oversize += 1;
                continue;
            }
            frame.set_len(n);
            if self.vnet {
                let Some(hdr) = VnetHdr::parse(frame.data()) else {
                    self.stats.rx_runt += 1;
                    continue;
                };
                frame.trim_front(VNET_HDR_LEN);
                let meta = hdr.rx_meta();
                self.stats.rx_gso += u64::from(meta.gso_size > 0);
                self.stats.rx_csum_partial += u64::from(meta.l4_csum_partial);
                frame.set_rx_meta(meta);
            }
            return Ok(Some(frame));
        }
    }

    /// Write one frame, with its virtio-net header when offloads are on.
    fn write_frame(&mut self, frame: &HeapFrame) -> io::Result<()> {
        loop {
            let res = if self.vnet {
                let offload = frame.tx_offload();
                let hdr = VnetHdr::for_tx(&offload).emit();
                let iov = [IoSlice::new(&hdr), IoSlice::new(frame.data())];
                (&self.file).write_vectored(&iov)
            } else {
                (&self.file).write(frame.data())
            };
            match res {
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

impl Device for TapDevice {
    fn readiness_fd(&self) -> Option<i32> {
        Some(self.file.as_raw_fd())
    }

    type Frame = HeapFrame;

    fn capabilities(&self) -> Capabilities {
        let csum = ChecksumCaps {
            ipv4: false,
            tcp: self.vnet,
            udp: self.vnet,
        };
        Capabilities {
            mtu: self.mtu,
            max_burst: self.burst,
            rx_checksum: csum,
            tx_checksum: csum,
            tso_max: if self.vnet { MAX_IP_PACKET } else { 0 },
            rss_hash: false,
            rx_queues: 1,
            tx_queues: 1,
            headroom: self.headroom,
        }
    }

    /// Read up to `max` frames, one `read(2)` each, until the kernel has none left.
    /// `queue` is ignored: this device *is* one queue.
    fn rx_burst(&mut self, _queue: u16, out: &mut Vec<HeapFrame>, max: usize) -> usize {
        let mut n = 0;
        while n < max {
            match self.read_frame() {
                Ok(Some(frame)) => {
                    self.stats.rx_frames += 1;
                    self.stats.rx_bytes += frame.len() as u64;
                    out.push(frame);
                    n += 1;
                }
                Ok(None) => break,
                Err(e) => {
                    self.stats.rx_errors += 1;
                    self.last_error = Some(e);
                    break;
                }
            }
        }
        if n > 0 {
            self.idle_polls = 0;
        }
        n
    }

    /// Write the frames in order, one `writev(2)` each. A frame the kernel refuses (a
    /// malformed offload request, a link that is gone) is dropped and counted in
    /// `tx_errors`, not handed back: retrying it could never succeed. TAP writes do not
    /// block, but should one report `EAGAIN` the rest stay in `frames`.
    fn tx_burst(&mut self, _queue: u16, frames: &mut Vec<HeapFrame>) -> usize {
        let mut taken = 0;
        for frame in frames.iter() {
            match self.write_frame(frame) {
                Ok(()) => {
                    let offload = frame.tx_offload();
                    self.stats.tx_frames += 1;
                    self.stats.tx_bytes += frame.len() as u64;
                    self.stats.tx_csum_offload += u64::from(self.vnet && offload.l4_csum.is_some());
                    self.stats.tx_tso += u64::from(self.vnet && offload.tso_mss > 0);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    self.stats.tx_errors += 1;
                    self.last_error = Some(e);
                }
            }
            taken += 1;
        }
        frames.drain(..taken);
        taken
    }

    /// An MTU-sized pooled buffer, or with offloads a 64 KB one for a TSO super-frame.
    fn alloc_tx(&mut self, len: usize) -> Option<HeapFrame> {
        if len <= self.tx_len {
            self.tx_pool.alloc(len)
        } else {
            self.tso_pool.as_ref()?.alloc(len)
        }
    }
}

impl AsRawFd for TapDevice {
    fn as_raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
}

impl AsFd for TapDevice {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}
