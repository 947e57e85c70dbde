//! Ethernet ports: [`PortBuilder`] configures and starts one, [`Port`] reports its link
//! and statistics, and each of its queues is handed out once, as an [`RxQueue`] /
//! [`TxQueue`] pair ([`QueuePair`], the stack's [`Device`]) owned by one core.

use std::ffi::{c_char, CString};
use std::fmt;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rumpnet_stack::device::{Capabilities, ChecksumCaps, Device, TxAllocator};

use crate::eal::Eal;
use crate::error::{strerror, DpdkError};
use crate::mbuf::{layout, Mbuf};
use crate::mempool::Mempool;
use crate::sys::{self, RnDevInfo, RnPortEnabled, RteMbuf};

/// The most mbufs one shim call moves; bursts are cut into pieces of this size.
pub const MAX_BURST: usize = 64;

/// Ethernet header plus one VLAN tag and the FCS some PMDs count in a frame's length.
const L2_OVERHEAD: usize = 14 + 4 + 4;

/// Which port: by id or by the name DPDK gives it (a vdev's name such as `net_memif0`,
/// or a PCI address such as `0000:01:00.0`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortRef {
    Id(u16),
    Name(String),
}

impl fmt::Display for PortRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortRef::Id(i) => write!(f, "{i}"),
            PortRef::Name(n) => f.write_str(n),
        }
    }
}

/// What a port is asked to do; [`PortBuilder::start`] checks it against the device.
#[derive(Debug, Clone)]
pub struct PortBuilder {
    port: PortRef,
    rx_queues: u16,
    tx_queues: u16,
    rx_ring: u16,
    tx_ring: u16,
    mtu: u16,
    burst: usize,
    checksum_offload: bool,
    tso: bool,
    rss_key: Option<Vec<u8>>,
    promiscuous: bool,
}

impl PortBuilder {
    /// Defaults: one queue pair, 1024-descriptor rings, MTU 1500, bursts of 32, checksum
    /// offloads when the device has them, no TSO, promiscuous.
    pub fn new(port: PortRef) -> PortBuilder {
        PortBuilder {
            port,
            rx_queues: 1,
            tx_queues: 1,
            rx_ring: 1024,
            tx_ring: 1024,
            mtu: 1500,
            burst: 32,
            checksum_offload: true,
            tso: false,
            rss_key: None,
            promiscuous: true,
        }
    }

    /// Number of receive and transmit queues (one pair per shard).
    pub fn queues(mut self, rx: u16, tx: u16) -> Self {
        self.rx_queues = rx;
        self.tx_queues = tx;
        self
    }

    /// Descriptors per receive and transmit ring (adjusted to the device's limits).
    pub fn rings(mut self, rx: u16, tx: u16) -> Self {
        self.rx_ring = rx;
        self.tx_ring = tx;
        self
    }

    /// The port's MTU (IP packet size).
    pub fn mtu(mut self, mtu: u16) -> Self {
        self.mtu = mtu;
        self
    }

    /// Frames per burst the stack moves (at most [`MAX_BURST`]).
    pub fn burst(mut self, burst: usize) -> Self {
        self.burst = burst;
        self
    }

    /// Use the device's IPv4/TCP/UDP checksum offloads, where it has them.
    pub fn checksum_offload(mut self, on: bool) -> Self {
        self.checksum_offload = on;
        self
    }

    /// Use TSO where the device has it (needs a transmit pool of 64 KiB mbufs, see
    /// [`Port::queue_pair_with_tx_pool`]).
    pub fn tso(mut self, on: bool) -> Self {
        self.tso = on;
        self
    }

    /// Spread receive queues with RSS using this key (repeated to the device's key
    /// size; a key with a 16-bit period such as the runtime's symmetric one stays
    /// symmetric), and ask for the hash per frame.
    pub fn rss_key(mut self, key: &[u8]) -> Self {
        self.rss_key = Some(key.to_vec());
        self
    }

    /// Receive frames for every destination MAC (needed when the stack's MAC is not
    /// the port's).
    pub fn promiscuous(mut self, on: bool) -> Self {
        self.promiscuous = on;
        self
    }

    /// Configure and start the port, receive queue `i` filling from `pools[i]` (or
    /// `pools[0]` for all, if only one is given).
    pub fn start(self, eal: &Eal, pools: &[Mempool]) -> Result<Port, DpdkError> {
        let id = resolve(&self.port)?;
        let info = port_info(id)?;
        let driver = cstr(&info.driver);
        let limit = |what: String| DpdkError::PortLimit {
            port: id,
            driver: driver.clone(),
            what,
        };
        let call = |call: &'static str, code: i32| DpdkError::PortCall {
            port: id,
            driver: driver.clone(),
            call,
            code,
            text: strerror(code),
        };
        if self.rx_queues == 0 || self.rx_queues > info.max_rx_queues {
            return Err(limit(format!(
                "{} receive queues asked, the device has 1 to {}",
                self.rx_queues, info.max_rx_queues
            )));
        }
        if self.tx_queues == 0 || self.tx_queues > info.max_tx_queues {
            return Err(limit(format!(
                "{} transmit queues asked, the device has 1 to {}",
                self.tx_queues, info.max_tx_queues
            )));
        }
        if pools.is_empty() || (pools.len() != 1 && pools.len() != usize::from(self.rx_queues)) {
            return Err(limit(format!(
                "{} mempools given for {} receive queues (give 1, or one per queue)",
                pools.len(),
                self.rx_queues
            )));
        }
        if self.burst == 0 || self.burst > MAX_BURST {
            return Err(limit(format!(
                "burst {} is outside 1..={MAX_BURST}",
                self.burst
            )));
        }
        if info.max_mtu != 0 && (self.mtu > info.max_mtu || self.mtu < info.min_mtu) {
            return Err(limit(format!(
                "MTU {} is outside the device's {}..={}",
                self.mtu, info.min_mtu, info.max_mtu
            )));
        }
        let headroom = layout().headroom as usize;
        for p in pools {
            let room = usize::from(p.data_room()).saturating_sub(headroom);
            if room < usize::from(self.mtu) + L2_OVERHEAD {
                return Err(limit(format!(
                    "mempool {:?} has {room} B of data room per mbuf, too small for MTU {} \
                     (frames are not chained: give a data room of at least {})",
                    p.name(),
                    self.mtu,
                    usize::from(self.mtu) + L2_OVERHEAD + headroom
                )));
            }
        }
        // The key, cut or repeated to the device's size.
        let key: Vec<u8> = match (&self.rss_key, info.hash_key_size) {
            (Some(k), n) if !k.is_empty() && n > 0 => {
                k.iter().copied().cycle().take(usize::from(n)).collect()
            }
            (Some(k), _) => k.clone(),
            (None, _) => Vec::new(),
        };
        let conf = sys::RnPortConf {
            rss_key: if key.is_empty() {
                std::ptr::null()
            } else {
                key.as_ptr()
            },
            nb_rxq: self.rx_queues,
            nb_txq: self.tx_queues,
            mtu: self.mtu,
            rss_key_len: key.len().min(255) as u8,
            want_rx_csum: self.checksum_offload as u8,
            want_tx_csum: self.checksum_offload as u8,
            want_tso: self.tso as u8,
            want_rss: self.rss_key.is_some() as u8,
            pad0: 0,
        };
        let mut en = RnPortEnabled::default();
        // SAFETY: the EAL is up (we hold a handle) and `id` is a valid port; conf and
        // its key outlive the call (DPDK copies the key); en is ours to fill.
        #[allow(unsafe_code)]
        let rc = unsafe { sys::rn_port_configure(id, &conf, &mut en) };
        if rc != 0 {
            return Err(call("rte_eth_dev_configure", rc));
        }
        let (mut nb_rxd, mut nb_txd) = (self.rx_ring, self.tx_ring);
        // SAFETY: configured port; both pointers are to our locals.
        #[allow(unsafe_code)]
        let rc = unsafe { sys::rte_eth_dev_adjust_nb_rx_tx_desc(id, &mut nb_rxd, &mut nb_txd) };
        if rc != 0 {
            return Err(call("rte_eth_dev_adjust_nb_rx_tx_desc", rc));
        }
        let socket = if info.socket_id < 0 {
            0
        } else {
            info.socket_id as u32
        };
        // From here on a failure must close the port again: the guard does it.
        let inner = PortInner {
            id,
            name: port_name(id),
            driver: driver.clone(),
            enabled: en,
            rx_queues: self.rx_queues,
            tx_queues: self.tx_queues,
            burst: self.burst,
            rings: (nb_rxd, nb_txd),
            taken: Mutex::new(vec![false; usize::from(self.rx_queues.max(self.tx_queues))]),
            pools: pools.to_vec(),
            counters: PortCounters::default(),
            started: false,
            _eal: eal.clone(),
        };
        for q in 0..self.rx_queues {
            let pool = &pools[usize::from(q) % pools.len()];
            // SAFETY: configured port, q < nb_rxq; a NULL rx_conf asks for the driver's
            // defaults; the pool outlives the port (PortInner keeps a handle to it).
            #[allow(unsafe_code)]
            let rc = unsafe {
                sys::rte_eth_rx_queue_setup(id, q, nb_rxd, socket, std::ptr::null(), pool.as_ptr())
            };
            if rc != 0 {
                return Err(call("rte_eth_rx_queue_setup", rc));
            }
        }
        for q in 0..self.tx_queues {
            // SAFETY: configured port, q < nb_txq; NULL tx_conf: driver defaults.
            #[allow(unsafe_code)]
            let rc =
                unsafe { sys::rte_eth_tx_queue_setup(id, q, nb_txd, socket, std::ptr::null()) };
            if rc != 0 {
                return Err(call("rte_eth_tx_queue_setup", rc));
            }
        }
        let mut inner = inner;
        // SAFETY: every queue is set up.
        #[allow(unsafe_code)]
        let rc = unsafe { sys::rte_eth_dev_start(id) };
        if rc != 0 {
            return Err(call("rte_eth_dev_start", rc));
        }
        inner.started = true;
        if self.promiscuous {
            // SAFETY: started port. Some PMDs cannot (they receive everything anyway):
            // -ENOTSUP is fine.
            #[allow(unsafe_code)]
            let rc = unsafe { sys::rte_eth_promiscuous_enable(id) };
            if rc != 0 && rc != -libc_enotsup() {
                return Err(call("rte_eth_promiscuous_enable", rc));
            }
        }
        if en.rss != 0 && info.reta_size > 0 {
            // SAFETY: started port with nb_rxq queues; the shim builds the table.
            #[allow(unsafe_code)]
            let rc = unsafe { sys::rn_port_reta_spread(id, info.reta_size, self.rx_queues) };
            if rc != 0 && rc != -libc_enotsup() {
                return Err(call("rte_eth_dev_rss_reta_update", rc));
            }
        }
        Ok(Port {
            inner: Arc::new(inner),
        })
    }
}

fn libc_enotsup() -> i32 {
    95 // ENOTSUP on Linux (EOPNOTSUPP)
}

fn cstr(b: &[c_char]) -> String {
    let bytes: Vec<u8> = b
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn port_info(id: u16) -> Result<RnDevInfo, DpdkError> {
    // SAFETY: RnDevInfo is plain data (integers and a char array): all zeroes is valid.
    #[allow(unsafe_code)]
    let mut info: RnDevInfo = unsafe { std::mem::zeroed() };
    // SAFETY: the shim validates the port id and fills our struct.
    #[allow(unsafe_code)]
    let rc = unsafe { sys::rn_port_info(id, &mut info) };
    if rc != 0 {
        return Err(DpdkError::NoSuchPort {
            port: id,
            known: known_ports(),
        });
    }
    Ok(info)
}

fn port_name(id: u16) -> String {
    let mut buf = [0 as c_char; sys::ETH_NAME_MAX_LEN];
    // SAFETY: buf has RTE_ETH_NAME_MAX_LEN bytes, as rte_eth_dev_get_name_by_port needs.
    #[allow(unsafe_code)]
    let rc = unsafe { sys::rte_eth_dev_get_name_by_port(id, buf.as_mut_ptr()) };
    if rc == 0 {
        cstr(&buf)
    } else {
        format!("port{id}")
    }
}

/// `0 (net_memif0), 1 (net_null0)` for error messages.
fn known_ports() -> String {
    let mut v = Vec::new();
    for id in 0..64u16 {
        // SAFETY: any id may be asked about.
        #[allow(unsafe_code)]
        if unsafe { sys::rte_eth_dev_is_valid_port(id) } != 0 {
            v.push(format!("{id} ({})", port_name(id)));
        }
    }
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

fn resolve(port: &PortRef) -> Result<u16, DpdkError> {
    match port {
        PortRef::Id(id) => {
            // SAFETY: any id may be asked about.
            #[allow(unsafe_code)]
            if unsafe { sys::rte_eth_dev_is_valid_port(*id) } == 0 {
                return Err(DpdkError::NoSuchPort {
                    port: *id,
                    known: known_ports(),
                });
            }
            Ok(*id)
        }
        PortRef::Name(name) => {
            let c = CString::new(name.as_str()).map_err(|_| DpdkError::NoSuchPortName {
                name: name.clone(),
                text: "contains a NUL byte".into(),
                known: known_ports(),
            })?;
            let mut id = 0u16;
            // SAFETY: c is a valid C string, id a valid out pointer.
            #[allow(unsafe_code)]
            let rc = unsafe { sys::rte_eth_dev_get_port_by_name(c.as_ptr(), &mut id) };
            if rc != 0 {
                return Err(DpdkError::NoSuchPortName {
                    name: name.clone(),
                    text: strerror(rc),
                    known: known_ports(),
                });
            }
            Ok(id)
        }
    }
}

/// Counters of what the backend itself dropped or did, summed over the port's queues
/// (added once per burst, not per packet).
#[derive(Debug, Default)]
struct PortCounters {
    rx_chained_dropped: AtomicU64,
    tx_retries: AtomicU64,
}

struct PortInner {
    id: u16,
    name: String,
    driver: String,
    enabled: RnPortEnabled,
    rx_queues: u16,
    tx_queues: u16,
    burst: usize,
    rings: (u16, u16),
    taken: Mutex<Vec<bool>>,
    pools: Vec<Mempool>,
    counters: PortCounters,
    started: bool,
    _eal: Eal,
}

impl fmt::Debug for PortInner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Port")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("driver", &self.driver)
            .field("rx_queues", &self.rx_queues)
            .field("tx_queues", &self.tx_queues)
            .finish()
    }
}

impl Drop for PortInner {
    fn drop(&mut self) {
        // Every queue handle holds an Arc to this, so no burst can run any more; stopping
        // and closing the port frees the mbufs still in its rings to their pools (which
        // we still hold, so they outlive this).
        // SAFETY: the port was configured by us and nothing else uses it.
        #[allow(unsafe_code)]
        unsafe {
            if self.started {
                sys::rte_eth_dev_stop(self.id);
            }
            sys::rte_eth_dev_close(self.id);
        }
    }
}

/// The link state of a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    pub up: bool,
    pub speed_mbps: u32,
    pub full_duplex: bool,
}

impl fmt::Display for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.up {
            write!(
                f,
                "up, {} Mbit/s, {} duplex",
                self.speed_mbps,
                if self.full_duplex { "full" } else { "half" }
            )
        } else {
            f.write_str("down")
        }
    }
}

/// A port's counters: the device's (`rte_eth_stats`) and the backend's own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortStats {
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    /// Frames the device dropped because the receive ring was full.
    pub rx_missed: u64,
    pub rx_errors: u64,
    pub tx_errors: u64,
    /// Receive buffer allocation failures (mempool exhausted).
    pub rx_nombuf: u64,
    /// Chained (multi-segment) frames dropped by the backend.
    pub rx_chained_dropped: u64,
    /// `tx_burst` calls that left frames for the next poll (ring full).
    pub tx_retries: u64,
}

impl fmt::Display for PortStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (v, name) in [
            (self.rx_packets, "frames received by the device"),
            (self.rx_bytes, "bytes received by the device"),
            (self.tx_packets, "frames sent by the device"),
            (self.tx_bytes, "bytes sent by the device"),
            (self.rx_missed, "frames missed (receive ring full)"),
            (self.rx_errors, "receive errors"),
            (self.tx_errors, "transmit errors"),
            (self.rx_nombuf, "receive mbuf allocation failures"),
            (self.rx_chained_dropped, "chained frames dropped"),
            (
                self.tx_retries,
                "transmit bursts left for retry (ring full)",
            ),
        ] {
            writeln!(f, "{v:>12} {name}")?;
        }
        Ok(())
    }
}

/// A started port. Clones share it; it is stopped and closed when the last handle
/// (including its queues) goes.
#[derive(Debug, Clone)]
pub struct Port {
    inner: Arc<PortInner>,
}

impl Port {
    /// The port id.
    pub fn id(&self) -> u16 {
        self.inner.id
    }

    /// The port's name (`net_memif0`, a PCI address).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The driver's name (`net_memif`, `net_ice`).
    pub fn driver(&self) -> &str {
        &self.inner.driver
    }

    /// Descriptors per receive and transmit ring, after the device's adjustment.
    pub fn rings(&self) -> (u16, u16) {
        self.inner.rings
    }

    /// The port's MAC address.
    pub fn mac(&self) -> Result<[u8; 6], DpdkError> {
        let mut mac = [0u8; 6];
        // SAFETY: started port; mac has the 6 bytes the shim writes.
        #[allow(unsafe_code)]
        let rc = unsafe { sys::rn_port_mac(self.inner.id, mac.as_mut_ptr()) };
        if rc != 0 {
            return Err(self.call_error("rte_eth_macaddr_get", rc));
        }
        Ok(mac)
    }

    fn call_error(&self, call: &'static str, code: i32) -> DpdkError {
        DpdkError::PortCall {
            port: self.inner.id,
            driver: self.inner.driver.clone(),
            call,
            code,
            text: strerror(code),
        }
    }

    /// The link state now (does not wait).
    pub fn link(&self) -> Result<Link, DpdkError> {
        let mut l = sys::RnLink::default();
        // SAFETY: started port; l is ours to fill.
        #[allow(unsafe_code)]
        let rc = unsafe { sys::rn_port_link(self.inner.id, &mut l) };
        if rc != 0 {
            return Err(self.call_error("rte_eth_link_get_nowait", rc));
        }
        Ok(Link {
            up: l.up != 0,
            speed_mbps: l.speed_mbps,
            full_duplex: l.full_duplex != 0,
        })
    }

    /// Wait (polling every 10 ms) until the link is up, at most `timeout`.
    pub fn wait_link_up(&self, timeout: Duration) -> Result<Link, DpdkError> {
        let start = Instant::now();
        loop {
            let l = self.link()?;
            if l.up {
                return Ok(l);
            }
            if start.elapsed() >= timeout {
                return Err(DpdkError::LinkDown {
                    port: self.inner.id,
                    driver: self.inner.driver.clone(),
                    waited_ms: start.elapsed().as_millis() as u64,
                });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The device's counters and the backend's.
    pub fn stats(&self) -> Result<PortStats, DpdkError> {
        let mut s = sys::RnStats::default();
        // SAFETY: started port; s is ours to fill.
        #[allow(unsafe_code)]
        let rc = unsafe { sys::rn_port_stats(self.inner.id, &mut s) };
        if rc != 0 {
            return Err(self.call_error("rte_eth_stats_get", rc));
        }
        let c = &self.inner.counters;
        Ok(PortStats {
            rx_packets: s.ipackets,
            tx_packets: s.opackets,
            rx_bytes: s.ibytes,
            tx_bytes: s.obytes,
            rx_missed: s.imissed,
            rx_errors: s.ierrors,
            tx_errors: s.oerrors,
            rx_nombuf: s.rx_nombuf,
            rx_chained_dropped: c.rx_chained_dropped.load(Ordering::Relaxed),
            tx_retries: c.tx_retries.load(Ordering::Relaxed),
        })
    }

    /// What each queue pair of this port can do, as the stack sees it.
    pub fn capabilities(&self) -> Capabilities {
        self.capabilities_with(None)
    }

    fn capabilities_with(&self, tx_pool: Option<&Mempool>) -> Capabilities {
        let en = &self.inner.enabled;
        let headroom = layout().headroom as usize;
        let tso_max = match tx_pool {
            Some(p) if en.tso != 0 => (usize::from(p.data_room()) - headroom)
                .saturating_sub(L2_OVERHEAD)
                .min(65535),
            _ => 0,
        };
        Capabilities {
            mtu: usize::from(en.mtu),
            max_burst: self.inner.burst,
            rx_checksum: ChecksumCaps {
                ipv4: en.rx_ipv4_csum != 0,
                tcp: en.rx_tcp_csum != 0,
                udp: en.rx_udp_csum != 0,
            },
            tx_checksum: ChecksumCaps {
                ipv4: en.tx_ipv4_csum != 0,
                tcp: en.tx_tcp_csum != 0,
                udp: en.tx_udp_csum != 0,
            },
            tso_max,
            rss_hash: en.rss_hash != 0,
            rx_queues: 1,
            tx_queues: 1,
            headroom,
        }
    }

    /// Whether receive queues are spread by RSS with the key given to the builder.
    pub fn rss_enabled(&self) -> bool {
        self.inner.enabled.rss != 0
    }

    /// Number of receive and transmit queues.
    pub fn queue_count(&self) -> (u16, u16) {
        (self.inner.rx_queues, self.inner.tx_queues)
    }

    /// Receive queue `q` and transmit queue `q`, for one core; each `q` is handed out
    /// once. Transmit frames come from receive queue `q`'s pool.
    pub fn queue_pair(&self, q: u16) -> Result<QueuePair, DpdkError> {
        let pool = self.inner.pools[usize::from(q) % self.inner.pools.len()].clone();
        self.queue_pair_with_tx_pool(q, pool)
    }

    /// [`Port::queue_pair`] with transmit frames from `tx_pool` (large mbufs for TSO).
    pub fn queue_pair_with_tx_pool(
        &self,
        q: u16,
        tx_pool: Mempool,
    ) -> Result<QueuePair, DpdkError> {
        let err = |why| DpdkError::Queue {
            port: self.inner.id,
            queue: q,
            why,
        };
        if q >= self.inner.rx_queues || q >= self.inner.tx_queues {
            return Err(err("does not exist"));
        }
        {
            let mut taken = self.inner.taken.lock().unwrap_or_else(|e| e.into_inner());
            if taken[usize::from(q)] {
                return Err(err("is already owned by another queue pair"));
            }
            taken[usize::from(q)] = true;
        }
        let caps = self.capabilities_with(Some(&tx_pool));
        Ok(QueuePair {
            rx: RxQueue {
                port: Arc::clone(&self.inner),
                queue: q,
                ptrs: [std::ptr::null_mut(); MAX_BURST],
                chained: [std::ptr::null_mut(); MAX_BURST],
            },
            tx: TxQueue {
                port: Arc::clone(&self.inner),
                queue: q,
                max_len: usize::from(tx_pool.data_room()) - layout().headroom as usize,
                pool: tx_pool,
                ptrs: [std::ptr::null_mut(); MAX_BURST],
                cache: [std::ptr::null_mut(); MAX_BURST],
                cached: 0,
            },
            caps,
        })
    }
}

/// A receive queue, owned by one thread (DPDK queues are not safe to poll from two).
pub struct RxQueue {
    port: Arc<PortInner>,
    queue: u16,
    ptrs: [*mut RteMbuf; MAX_BURST],
    chained: [*mut RteMbuf; MAX_BURST],
}

// SAFETY: the queue is only ever used through &mut self, so by one thread at a time, as
// DPDK requires; the pointer arrays are scratch space holding nothing between calls.
#[allow(unsafe_code)]
unsafe impl Send for RxQueue {}

impl fmt::Debug for RxQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RxQueue({}:{})", self.port.id, self.queue)
    }
}

impl RxQueue {
    /// Receive up to `max` frames, appending them to `out`; returns how many. Chained
    /// (multi-segment) frames are dropped and counted: the stack needs one slice.
    pub fn recv(&mut self, out: &mut Vec<Mbuf>, max: usize) -> usize {
        let want = max.min(MAX_BURST) as u16;
        if want == 0 {
            return 0;
        }
        // SAFETY: the port is started (PortInner lives while we hold it), we are the
        // only user of this queue (&mut self), and ptrs has room for `want` pointers.
        #[allow(unsafe_code)]
        let n = unsafe { sys::rn_rx_burst(self.port.id, self.queue, self.ptrs.as_mut_ptr(), want) };
        let segs = layout().off_nb_segs as usize;
        let mut chained = 0usize;
        out.reserve(usize::from(n));
        for &p in &self.ptrs[..usize::from(n)] {
            // SAFETY: rx_burst returned `n` valid mbufs, now ours; nb_segs is a u16
            // field at the shim's offset.
            #[allow(unsafe_code)]
            let nb_segs = unsafe { p.cast::<u8>().add(segs).cast::<u16>().read() };
            if nb_segs == 1 {
                // SAFETY: a valid single-segment mbuf that only we own.
                #[allow(unsafe_code)]
                out.push(unsafe { Mbuf::from_raw(NonNull::new_unchecked(p)) });
            } else {
                self.chained[chained] = p;
                chained += 1;
            }
        }
        if chained > 0 {
            // SAFETY: these mbufs are ours and nothing else refers to them.
            #[allow(unsafe_code)]
            unsafe {
                sys::rn_free_bulk(self.chained.as_mut_ptr(), chained as u32)
            };
            self.port
                .counters
                .rx_chained_dropped
                .fetch_add(chained as u64, Ordering::Relaxed);
        }
        usize::from(n) - chained
    }
}

/// A transmit queue with its buffer cache, owned by one thread.
pub struct TxQueue {
    port: Arc<PortInner>,
    queue: u16,
    pool: Mempool,
    max_len: usize,
    ptrs: [*mut RteMbuf; MAX_BURST],
    /// Fresh mbufs taken from the pool in bulk; `cache[..cached]` are ours.
    cache: [*mut RteMbuf; MAX_BURST],
    cached: usize,
}

// SAFETY: as RxQueue: used through &mut self only; the cached mbufs are owned by the
// queue and may be freed from any thread (see Mbuf's Send).
#[allow(unsafe_code)]
unsafe impl Send for TxQueue {}

impl fmt::Debug for TxQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "TxQueue({}:{}, {} cached)",
            self.port.id, self.queue, self.cached
        )
    }
}

impl TxQueue {
    /// Send frames from the front of `frames`; the ones taken are removed (the PMD owns
    /// them now), the rest stay, in order. Returns how many were taken.
    pub fn send(&mut self, frames: &mut Vec<Mbuf>) -> usize {
        let mut total = 0;
        while total < frames.len() {
            let chunk = (frames.len() - total).min(MAX_BURST);
            for (slot, f) in self.ptrs.iter_mut().zip(&frames[total..total + chunk]) {
                *slot = f.as_ptr();
            }
            // SAFETY: started port, queue used by us alone; ptrs[..chunk] are valid
            // mbufs we own (still in `frames`, forgotten below once the PMD has them).
            #[allow(unsafe_code)]
            let n = unsafe {
                sys::rn_tx_burst(
                    self.port.id,
                    self.queue,
                    self.ptrs.as_mut_ptr(),
                    chunk as u16,
                )
            };
            total += usize::from(n);
            if usize::from(n) < chunk {
                self.port
                    .counters
                    .tx_retries
                    .fetch_add(1, Ordering::Relaxed);
                break;
            }
        }
        // The PMD owns the first `total` now: forget them without freeing.
        for f in frames.drain(..total) {
            let _ = f.into_raw();
        }
        total
    }

    /// A frame of `len` bytes (contents unspecified) with the pool's headroom in front;
    /// `None` when the pool is exhausted or `len` does not fit one mbuf.
    pub fn alloc(&mut self, len: usize) -> Option<Mbuf> {
        if len > self.max_len {
            return None;
        }
        if self.cached == 0 {
            // Refill a burst's worth at once; when the pool is nearly empty take one.
            let want = MAX_BURST / 2;
            if self.pool.alloc_raw(&mut self.cache[..want]) {
                self.cached = want;
            } else if self.pool.alloc_raw(&mut self.cache[..1]) {
                self.cached = 1;
            } else {
                return None;
            }
        }
        self.cached -= 1;
        let p = self.cache[self.cached];
        // SAFETY: cache[..cached+1] held fresh mbufs from our pool, owned by this
        // queue; the one at `cached` is handed over now and no longer counted.
        #[allow(unsafe_code)]
        let mut m = unsafe { Mbuf::from_raw(NonNull::new_unchecked(p)) };
        // Fits: len <= max_len = data room - headroom, and a fresh mbuf's data_off is
        // the headroom.
        m.set_data_len(len).then_some(m)
    }
}

impl Drop for TxQueue {
    fn drop(&mut self) {
        if self.cached > 0 {
            // SAFETY: cache[..cached] are mbufs this queue owns.
            #[allow(unsafe_code)]
            unsafe {
                sys::rn_free_bulk(self.cache.as_mut_ptr(), self.cached as u32)
            };
            self.cached = 0;
        }
    }
}

/// Receive and transmit queue `q` of a port: the stack's [`Device`], for one shard.
#[derive(Debug)]
pub struct QueuePair {
    pub rx: RxQueue,
    pub tx: TxQueue,
    caps: Capabilities,
}

impl QueuePair {
    /// The queue index (receive and transmit).
    pub fn queue(&self) -> u16 {
        self.rx.queue
    }

    /// The port this pair belongs to.
    pub fn port(&self) -> Port {
        Port {
            inner: Arc::clone(&self.rx.port),
        }
    }
}

impl Device for QueuePair {
    type Frame = Mbuf;

    fn capabilities(&self) -> Capabilities {
        self.caps
    }

    /// `_queue` is ignored: a pair is one queue of the port (see [`QueuePair::queue`]).
    fn rx_burst(&mut self, _queue: u16, out: &mut Vec<Mbuf>, max: usize) -> usize {
        self.rx.recv(out, max)
    }

    fn tx_burst(&mut self, _queue: u16, frames: &mut Vec<Mbuf>) -> usize {
        self.tx.send(frames)
    }

    fn alloc_tx(&mut self, len: usize) -> Option<Mbuf> {
        self.tx.alloc(len)
    }

    /// Transmit mbufs from this pair's transmit pool for another thread (the runtime's
    /// pipelined mode), the same size as [`alloc_tx`](Device::alloc_tx) gives; `None`
    /// if the pool is not multi-thread safe (see [`Mempool::tx_allocator`]).
    fn tx_allocator(&self) -> Option<Box<dyn TxAllocator<Mbuf>>> {
        let a = self.tx.pool.tx_allocator(self.tx.max_len).ok()?;
        Some(Box::new(a))
    }

    /// Free the stack's finished receive frames with one `rte_pktmbuf_free_bulk` per
    /// [`MAX_BURST`] instead of one call per frame.
    fn recycle(&mut self, frames: &mut Vec<Mbuf>) {
        let mut ptrs = [std::ptr::null_mut::<RteMbuf>(); MAX_BURST];
        while !frames.is_empty() {
            let n = frames.len().min(MAX_BURST);
            for (slot, f) in ptrs.iter_mut().zip(frames.drain(..n)) {
                *slot = f.into_raw();
            }
            // SAFETY: ptrs[..n] are mbufs we owned (their wrappers were consumed by
            // into_raw), so nothing else frees or uses them.
            #[allow(unsafe_code)]
            unsafe {
                sys::rn_free_bulk(ptrs.as_mut_ptr(), n as u32)
            };
        }
    }
}
