//! Starting, watching and stopping the shards and I/O threads.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use std::any::Any;

use rumpnet_stack::device::{Capabilities, Device, FramePool, HeapFrame, TxAllocator};
use rumpnet_stack::iface::route::RouteError;
use rumpnet_stack::iface::{InterfaceConfig, Port};
use rumpnet_stack::link::LINK_HEADER_MAX;
use rumpnet_stack::rand::Rand;
use rumpnet_stack::stats::Stats;
use rumpnet_stack::wire::Ipv4Addr;
use rumpnet_stack::{ConfigError, Stack, StackConfig};

use crate::io::{IoCounters, IoRun, IoStats};
use crate::ring::{Notifier, Parker, Ring, RingDevice, RingState};
use crate::rss::{Rss, RssKey, SYMMETRIC_KEY};
use crate::shard::{
    Clock, Host, Idle, IdlePolicy, Owned, ShardApp, ShardPort, ShardRun, ShardShared, ShardStats,
};
use crate::steer::{SteeredDevice, Steering};
use crate::topology::{pin_current, Placement, Topology};

/// How frames reach the shards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Each shard polls its own backend queue (one queue per shard, hardware RSS with
    /// the runtime's key and indirection table). Frames a queue gets for another shard
    /// (ARP, a NIC whose table differs) are passed on through that shard's ring.
    RunToCompletion,
    /// I/O threads (one per backend queue given) poll the backend and move batches
    /// through rings to the shards, steered by software RSS, and back.
    Pipelined,
}

/// One backend queue: a device handle and the queue index it drives.
#[derive(Debug)]
pub struct Queue<D> {
    pub dev: D,
    pub id: u16,
}

impl<D> Queue<D> {
    pub fn new(dev: D, id: u16) -> Self {
        Queue { dev, id }
    }
}

/// How to run.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Number of shards (stack instances, one thread each).
    pub shards: usize,
    pub mode: Mode,
    /// Settings of every shard's stack.
    pub stack: StackConfig,
    /// The interface every shard's stack has (the same addresses: the shards are one
    /// host to the outside).
    pub iface: InterfaceConfig,
    /// A default gateway, if any.
    pub gateway: Option<Ipv4Addr>,
    /// The RSS key. Keep it symmetric ([`SYMMETRIC_KEY`]) so both directions of a flow
    /// meet on one shard; a NIC doing RSS for run-to-completion must use the same one.
    pub rss_key: RssKey,
    /// Frames each ring holds.
    pub ring_size: usize,
    /// Free buffers each shard's transmit pool keeps (pipelined mode).
    pub pool_frames: usize,
    pub idle: IdlePolicy,
    /// Pin threads to CPUs (a failure to pin only warns).
    pub pin: bool,
    /// Restrict placement to these CPUs (`None`: all the process may use).
    pub cpus: Option<Vec<usize>>,
    /// The NUMA node of the device, when the backend knows it: cores on that node are
    /// used first (`topology::pci_numa_node`, `netdev_numa_node`, or DPDK's
    /// `rte_eth_dev_socket_id`).
    pub numa_node: Option<usize>,
    /// Seed of the shards' randomness (`None`: from the OS). Tests use a seed.
    pub seed: Option<u64>,
    /// How long shutdown waits for connections to finish closing.
    pub drain_timeout: Duration,
    /// How often shards publish their counters for [`Runtime::stats`].
    pub stats_interval: Duration,
}

impl RuntimeConfig {
    /// `shards` shards in `mode` with `iface`, everything else default.
    pub fn new(shards: usize, mode: Mode, iface: InterfaceConfig) -> RuntimeConfig {
        RuntimeConfig {
            shards,
            mode,
            stack: StackConfig::default(),
            iface,
            gateway: None,
            rss_key: SYMMETRIC_KEY,
            ring_size: 1024,
            pool_frames: 2048,
            idle: IdlePolicy::default(),
            pin: true,
            cpus: None,
            numa_node: None,
            seed: None,
            drain_timeout: Duration::from_secs(2),
            stats_interval: Duration::from_millis(50),
        }
    }
}

/// Why a runtime could not start or did not stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("a runtime needs at least one shard")]
    NoShards,
    #[error("{mode:?} mode with {shards} shards cannot use {queues} backend queues")]
    QueueCount {
        mode: Mode,
        shards: usize,
        queues: usize,
    },
    #[error("interface: {0}")]
    Interface(ConfigError),
    #[error("default gateway: {0}")]
    Gateway(RouteError),
    #[error("pipelined mode needs transmit buffers the shards can allocate, and this backend gives none (Device::tx_allocator)")]
    NoTxAllocator,
    #[error("creating a poller: {0}")]
    Poller(std::io::Error),
    #[error("starting a thread: {0}")]
    Spawn(std::io::Error),
    #[error("shard {0} panicked")]
    ShardPanicked(usize),
    #[error("I/O thread {0} panicked")]
    IoPanicked(usize),
}

/// Counters of every thread of a runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeStats {
    pub shards: Vec<ShardStats>,
    pub io: Vec<IoStats>,
}

impl RuntimeStats {
    /// The stack counters of all shards, summed.
    pub fn total(&self) -> Stats {
        let mut t = Stats::default();
        for s in &self.shards {
            t.merge(&s.stack);
        }
        t
    }

    /// Frames dropped because a ring was full, over all rings.
    pub fn ring_drops(&self) -> u64 {
        self.shards.iter().map(|s| s.ring_rx_dropped).sum()
    }
}

/// What a stopped runtime hands back: every shard's application and the final counters.
#[derive(Debug)]
pub struct RunReport<A> {
    /// The applications, by shard.
    pub apps: Vec<A>,
    pub stats: RuntimeStats,
}

/// Running shards (and I/O threads, in pipelined mode).
pub struct Runtime<A> {
    shard_threads: Vec<JoinHandle<Option<(A, ShardStats)>>>,
    io_threads: Vec<JoinHandle<()>>,
    shared: Vec<Arc<ShardShared>>,
    shard_notifiers: Vec<Arc<Notifier>>,
    io_notifiers: Vec<Arc<Notifier>>,
    io_counters: Vec<Arc<IoCounters>>,
    stop: Arc<AtomicBool>,
    live_shards: Arc<AtomicUsize>,
    placement: Placement,
    rss: Rss,
    mode: Mode,
}

impl<A> std::fmt::Debug for Runtime<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("mode", &self.mode)
            .field("shards", &self.shared.len())
            .field("io_threads", &self.io_threads.len())
            .field("live_shards", &self.live_shards.load(Ordering::Relaxed))
            .finish()
    }
}

/// What a shard thread needs besides its device, shared by all of them.
struct ShardSetup<A> {
    config: RuntimeConfig,
    rss: Rss,
    stop: Arc<AtomicBool>,
    live: Arc<AtomicUsize>,
    clock: Clock,
    make_app: Arc<dyn Fn(usize) -> A + Send + Sync>,
    ready: mpsc::Sender<Result<(), RuntimeError>>,
    io_notifiers: Vec<Arc<Notifier>>,
}

/// Counts a shard thread out when it ends, however it ends (a panicking application
/// included), and wakes the I/O threads, which exit after the last shard.
struct LiveGuard {
    live: Arc<AtomicUsize>,
    io: Vec<Arc<Notifier>>,
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.live.fetch_sub(1, Ordering::AcqRel);
        for n in &self.io {
            n.wake();
        }
    }
}

impl<A: ShardApp> Runtime<A> {
    /// Start `config.shards` shards over `queues`: one queue per shard in
    /// run-to-completion mode, one per I/O thread (at least one) in pipelined mode.
    /// `make_app(i)` makes shard `i`'s application, on the shard's thread. Returns once
    /// every shard has built its stack; prints (logs) where each thread runs.
    pub fn start<D, F>(
        config: RuntimeConfig,
        queues: Vec<Queue<D>>,
        make_app: F,
    ) -> Result<Runtime<A>, RuntimeError>
    where
        D: Device + Send + 'static,
        D::Frame: Send + 'static,
        F: Fn(usize) -> A + Send + Sync + 'static,
    {
        let n = config.shards;
        if n == 0 {
            return Err(RuntimeError::NoShards);
        }
        let queue_count_ok = match config.mode {
            Mode::RunToCompletion => queues.len() == n,
            Mode::Pipelined => !queues.is_empty(),
        };
        if !queue_count_ok {
            return Err(RuntimeError::QueueCount {
                mode: config.mode,
                shards: n,
                queues: queues.len(),
            });
        }
        let io_count = match config.mode {
            Mode::RunToCompletion => 0,
            Mode::Pipelined => queues.len(),
        };
        let placement = place(&config, n, io_count);
        tracing::info!("rumpnet runtime, {:?} mode: {placement}", config.mode);

        let rss = Rss::new(&config.rss_key, n);
        let caps = queues[0].dev.capabilities();
        let frame_max = caps.mtu.max(caps.tso_max) + LINK_HEADER_MAX;
        let shard_parkers = (0..n)
            .map(|_| Parker::new())
            .collect::<Result<Vec<_>, _>>()
            .map_err(RuntimeError::Poller)?;
        let io_parkers = (0..io_count)
            .map(|_| Parker::new())
            .collect::<Result<Vec<_>, _>>()
            .map_err(RuntimeError::Poller)?;
        let shard_notifiers: Vec<_> = shard_parkers
            .iter()
            .map(|p| Arc::clone(p.notifier()))
            .collect();
        let io_notifiers: Vec<_> = io_parkers
            .iter()
            .map(|p| Arc::clone(p.notifier()))
            .collect();
        let inboxes: Vec<Arc<Ring<D::Frame>>> = shard_notifiers
            .iter()
            .map(|no| Ring::new(config.ring_size, Arc::clone(no)))
            .collect();
        let steering = Arc::new(Steering::new(rss.clone(), inboxes.clone()));
        let shared: Vec<Arc<ShardShared>> = (0..n)
            .map(|i| {
                Arc::new(ShardShared {
                    inbox: Arc::clone(&inboxes[i]) as Arc<dyn RingState>,
                    stats: Mutex::new(ShardStats::new(i)),
                })
            })
            .collect();
        let stop = Arc::new(AtomicBool::new(false));
        let live = Arc::new(AtomicUsize::new(n));
        let (ready_tx, ready_rx) = mpsc::channel();
        let setup = Arc::new(ShardSetup {
            config: config.clone(),
            rss: rss.clone(),
            stop: Arc::clone(&stop),
            live: Arc::clone(&live),
            clock: Clock::new(),
            make_app: Arc::new(make_app),
            ready: ready_tx,
            io_notifiers: io_notifiers.clone(),
        });

        let mut rt = Runtime {
            shard_threads: Vec::with_capacity(n),
            io_threads: Vec::with_capacity(io_count),
            shared: shared.clone(),
            shard_notifiers,
            io_notifiers,
            io_counters: (0..io_count).map(|_| Arc::default()).collect(),
            stop: Arc::clone(&stop),
            live_shards: Arc::clone(&live),
            placement: placement.clone(),
            rss,
            mode: config.mode,
        };
        let cpu_shared = |cpu: Option<usize>| {
            cpu.is_some()
                && placement
                    .shards
                    .iter()
                    .chain(placement.io.iter())
                    .filter(|&&c| c == cpu)
                    .count()
                    > 1
        };

        let mut spawned = Ok(());
        match config.mode {
            Mode::RunToCompletion => {
                for ((i, q), parker) in queues.into_iter().enumerate().zip(shard_parkers) {
                    let dev = SteeredDevice::new(q.dev, q.id, i, Arc::clone(&steering));
                    let cpu = placement.shards[i];
                    let r = spawn_shard(i, dev, parker, cpu, cpu_shared(cpu), &shared[i], &setup);
                    match r {
                        Ok(h) => rt.shard_threads.push(h),
                        Err(e) => {
                            spawned = Err(e);
                            break;
                        }
                    }
                }
            }
            Mode::Pipelined => {
                let returns: Vec<Arc<Ring<D::Frame>>> = (0..n)
                    .map(|i| {
                        Ring::new(config.ring_size, Arc::clone(&rt.io_notifiers[i % io_count]))
                    })
                    .collect();
                for (i, parker) in shard_parkers.into_iter().enumerate() {
                    let Some(alloc) = tx_allocator(&queues[0].dev, &config, frame_max, &caps)
                    else {
                        spawned = Err(RuntimeError::NoTxAllocator);
                        break;
                    };
                    let dev = RingDevice::with_allocator(
                        Arc::clone(&inboxes[i]),
                        Arc::clone(&returns[i]),
                        alloc,
                        caps,
                    );
                    let cpu = placement.shards[i];
                    match spawn_shard(i, dev, parker, cpu, cpu_shared(cpu), &shared[i], &setup) {
                        Ok(h) => rt.shard_threads.push(h),
                        Err(e) => {
                            spawned = Err(e);
                            break;
                        }
                    }
                }
                if spawned.is_ok() {
                    for ((j, q), parker) in queues.into_iter().enumerate().zip(io_parkers) {
                        let cpu = placement.io[j];
                        let run = IoRun {
                            dev: q.dev,
                            queue: q.id,
                            steering: Arc::clone(&steering),
                            returns: (j..n)
                                .step_by(io_count)
                                .map(|s| Arc::clone(&returns[s]))
                                .collect(),
                            parker,
                            idle: Idle::new(config.idle, cpu_shared(cpu)),
                            stop: Arc::clone(&stop),
                            live_shards: Arc::clone(&live),
                            counters: Arc::clone(&rt.io_counters[j]),
                            burst: caps.max_burst,
                        };
                        let h = std::thread::Builder::new()
                            .name(format!("rumpnet-io-{j}"))
                            .spawn(move || {
                                if let Some(c) = cpu {
                                    pin_current(c, &format!("io thread {j}"));
                                }
                                run.run()
                            });
                        match h {
                            Ok(h) => rt.io_threads.push(h),
                            Err(e) => {
                                spawned = Err(RuntimeError::Spawn(e));
                                break;
                            }
                        }
                    }
                }
            }
        }
        drop(setup);
        // Every started shard reports whether its stack could be built.
        let mut result = spawned;
        for _ in 0..rt.shard_threads.len() {
            match ready_rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    if result.is_ok() {
                        result = Err(e);
                    }
                }
                Err(_) => break,
            }
        }
        match result {
            Ok(()) => Ok(rt),
            Err(e) => {
                rt.request_stop();
                let _ = rt.join();
                Err(e)
            }
        }
    }

    /// Where each thread runs.
    pub fn placement(&self) -> &Placement {
        &self.placement
    }

    /// The shard map.
    pub fn rss(&self) -> &Rss {
        &self.rss
    }

    /// The mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The counters as last published by each shard (every `stats_interval`), and the
    /// I/O threads' live counters.
    pub fn stats(&self) -> RuntimeStats {
        RuntimeStats {
            shards: self
                .shared
                .iter()
                .map(|s| {
                    let mut st = s
                        .stats
                        .lock()
                        .map(|g| g.clone())
                        .unwrap_or_else(|e| e.into_inner().clone());
                    st.ring_rx = s.inbox.pushed();
                    st.ring_rx_dropped = s.inbox.dropped_full();
                    st
                })
                .collect(),
            io: self.io_stats(),
        }
    }

    fn io_stats(&self) -> Vec<IoStats> {
        self.io_counters
            .iter()
            .enumerate()
            .map(|(j, c)| c.snapshot(j, self.placement.io.get(j).copied().flatten()))
            .collect()
    }

    /// Ask every thread to stop: each shard calls its application's `on_shutdown`,
    /// closes what it opened through its context, and drains (up to `drain_timeout`);
    /// the I/O threads flush what the shards left and follow. Returns at once.
    /// The wake-up of shard `i` (`None` if there is no such shard): push work for the
    /// shard's [`ShardApp::on_turn`] on a ring, then call
    /// [`Notifier::notify`](crate::ring::Notifier::notify) so a sleeping shard wakes.
    pub fn shard_waker(&self, i: usize) -> Option<Arc<Notifier>> {
        self.shard_notifiers.get(i).cloned()
    }

    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::Release);
        for n in self.shard_notifiers.iter().chain(self.io_notifiers.iter()) {
            n.wake();
        }
    }

    /// Shards still running (one that panicked or finished is not).
    pub fn running_shards(&self) -> usize {
        self.live_shards.load(Ordering::Acquire)
    }

    /// Every shard has exited.
    pub fn is_finished(&self) -> bool {
        self.live_shards.load(Ordering::Acquire) == 0
    }

    /// Stop (see [`request_stop`](Self::request_stop)) and wait for every thread.
    pub fn shutdown(self) -> Result<RunReport<A>, RuntimeError> {
        self.request_stop();
        self.join()
    }

    fn join(mut self) -> Result<RunReport<A>, RuntimeError> {
        self.join_threads()
    }

    fn join_threads(&mut self) -> Result<RunReport<A>, RuntimeError> {
        let mut apps = Vec::new();
        let mut shards = Vec::new();
        let mut err = None;
        for (i, h) in self.shard_threads.drain(..).enumerate() {
            match h.join() {
                Ok(Some((app, stats))) => {
                    apps.push(app);
                    shards.push(stats);
                }
                Ok(None) => {}
                Err(_) => {
                    err.get_or_insert(RuntimeError::ShardPanicked(i));
                }
            }
        }
        for (j, h) in self.io_threads.drain(..).enumerate() {
            if h.join().is_err() {
                err.get_or_insert(RuntimeError::IoPanicked(j));
            }
        }
        if let Some(e) = err {
            return Err(e);
        }
        for s in &mut shards {
            let sh = &self.shared[s.shard];
            s.ring_rx = sh.inbox.pushed();
            s.ring_rx_dropped = sh.inbox.dropped_full();
        }
        let io = self.io_stats();
        Ok(RunReport {
            apps,
            stats: RuntimeStats { shards, io },
        })
    }
}

impl<A> Drop for Runtime<A> {
    /// A runtime dropped without [`shutdown`](Runtime::shutdown) (a test that failed
    /// half-way) still stops its threads rather than leave them polling.
    fn drop(&mut self) {
        if self.shard_threads.is_empty() && self.io_threads.is_empty() {
            return;
        }
        self.stop.store(true, Ordering::Release);
        for n in self.shard_notifiers.iter().chain(self.io_notifiers.iter()) {
            n.wake();
        }
        for h in self.shard_threads.drain(..) {
            let _ = h.join();
        }
        for h in self.io_threads.drain(..) {
            let _ = h.join();
        }
    }
}

/// Transmit buffers for one shard in pipelined mode: the backend's own allocator, or for
/// heap-frame backends that give none, a pool of the shard's own.
fn tx_allocator<D: Device>(
    dev: &D,
    config: &RuntimeConfig,
    frame_max: usize,
    caps: &Capabilities,
) -> Option<Box<dyn TxAllocator<D::Frame>>>
where
    D::Frame: 'static,
{
    if let Some(a) = dev.tx_allocator() {
        return Some(a);
    }
    let pool: Box<dyn TxAllocator<HeapFrame>> = Box::new(FramePool::new(
        config.pool_frames,
        caps.headroom + frame_max,
        caps.headroom,
    ));
    // Only when the backend's frames are heap frames: the downcast is the identity then.
    let any: Box<dyn Any> = Box::new(pool);
    any.downcast::<Box<dyn TxAllocator<D::Frame>>>()
        .ok()
        .map(|b| *b)
}

/// CPUs for the threads, from the topology and the configuration.
fn place(config: &RuntimeConfig, shards: usize, io: usize) -> Placement {
    Placement::plan(
        Topology::detect(),
        shards,
        io,
        config.cpus.as_deref(),
        config.pin,
        config.numa_node,
    )
}

/// Randomness for shard `i`: from the configured seed, or from the OS (std's
/// `RandomState` is seeded from it).
fn shard_rand(seed: Option<u64>, i: usize) -> Rand {
    match seed {
        Some(s) => Rand::from_u64(s ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)),
        None => {
            let mut bytes = [0u8; 32];
            for chunk in bytes.chunks_mut(8) {
                let mut h = RandomState::new().build_hasher();
                h.write_usize(i);
                chunk.copy_from_slice(&h.finish().to_le_bytes());
            }
            Rand::from_seed(bytes)
        }
    }
}

/// Build shard `i`'s stack as the configuration says.
fn build_stack(config: &RuntimeConfig, i: usize) -> Result<Stack, RuntimeError> {
    let mut stack = Stack::new(config.stack.clone(), shard_rand(config.seed, i));
    let mut iface = config.iface.clone();
    // Every shard learns from every ARP frame; shard 0 alone answers for the host.
    iface.answer_arp &= i == 0;
    stack
        .add_interface(iface)
        .map_err(RuntimeError::Interface)?;
    if let Some(gw) = config.gateway {
        stack
            .set_default_gateway(gw)
            .map_err(RuntimeError::Gateway)?;
    }
    Ok(stack)
}

fn spawn_shard<D, A>(
    i: usize,
    dev: D,
    parker: Parker,
    cpu: Option<usize>,
    cpu_shared: bool,
    shared: &Arc<ShardShared>,
    setup: &Arc<ShardSetup<A>>,
) -> Result<JoinHandle<Option<(A, ShardStats)>>, RuntimeError>
where
    D: ShardPort + Send + 'static,
    A: ShardApp,
{
    let shared = Arc::clone(shared);
    let setup = Arc::clone(setup);
    std::thread::Builder::new()
        .name(format!("rumpnet-shard-{i}"))
        .spawn(move || {
            let pinned = cpu.filter(|&c| pin_current(c, &format!("shard {i}")));
            // Built on its own thread (and CPU), so its tables are local to it.
            let stack = match build_stack(&setup.config, i) {
                Ok(s) => s,
                Err(e) => {
                    setup.live.fetch_sub(1, Ordering::AcqRel);
                    let _ = setup.ready.send(Err(e));
                    return None;
                }
            };
            let _ = setup.ready.send(Ok(()));
            let run = ShardRun {
                host: Host {
                    id: i,
                    stack,
                    rss: setup.rss.clone(),
                    socket_opts: setup.config.stack.tcp.socket,
                    owned: Owned::default(),
                },
                port: Port::new(dev),
                app: (setup.make_app)(i),
                parker,
                shared,
                stop: Arc::clone(&setup.stop),
                clock: setup.clock,
                idle: Idle::new(setup.config.idle, cpu_shared),
                drain_timeout: setup.config.drain_timeout,
                stats_interval: setup.config.stats_interval,
                cpu: pinned,
            };
            let _live = LiveGuard {
                live: Arc::clone(&setup.live),
                io: setup.io_notifiers.clone(),
            };
            drop(setup);
            Some(run.run())
        })
        .map_err(RuntimeError::Spawn)
}
