//! The raw interface: libdpdk's exported functions that take only plain arguments, and
//! the C shim (`shim/shim.c`) for the static-inline fast path and for the calls that take
//! large DPDK structs. The `Rn*` structs mirror the shim's own small `struct rn_*`, not
//! DPDK's; the mbuf layout comes from the shim at run time ([`rn_mbuf_layout`]).
#![allow(unsafe_code)]

use core::ffi::{c_char, c_int, c_uint, c_void};

/// `struct rte_mbuf`, only ever behind a pointer (its layout is read through
/// [`RnMbufLayout`]).
#[repr(C)]
#[derive(Debug)]
pub struct RteMbuf {
    _opaque: [u8; 0],
}

/// `struct rte_mempool`, only ever behind a pointer.
#[repr(C)]
#[derive(Debug)]
pub struct RteMempool {
    _opaque: [u8; 0],
}

/// Offsets into `struct rte_mbuf` and the flag values the backend uses, from `offsetof`
/// and DPDK's macros in the shim (see `struct rn_mbuf_layout` there).
#[repr(C)]
#[derive(Debug)]
pub struct RnMbufLayout {
    pub size: u32,
    pub off_buf_addr: u32,
    pub off_data_off: u32,
    pub off_pkt_len: u32,
    pub off_data_len: u32,
    pub off_buf_len: u32,
    pub off_nb_segs: u32,
    pub off_ol_flags: u32,
    pub off_rss: u32,
    pub off_tx_offload: u32,
    pub l2_len_shift: u32,
    pub l3_len_shift: u32,
    pub l4_len_shift: u32,
    pub tso_segsz_shift: u32,
    pub headroom: u32,
    pub pad0: u32,
    pub rx_rss_hash: u64,
    pub rx_ip_cksum_mask: u64,
    pub rx_ip_cksum_good: u64,
    pub rx_l4_cksum_mask: u64,
    pub rx_l4_cksum_good: u64,
    pub tx_ipv4: u64,
    pub tx_ip_cksum: u64,
    pub tx_tcp_cksum: u64,
    pub tx_udp_cksum: u64,
    pub tx_tcp_seg: u64,
}

/// `struct rn_dev_info`: the parts of `rte_eth_dev_info` the backend looks at.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct RnDevInfo {
    pub driver: [c_char; 64],
    pub rx_offload_capa: u64,
    pub tx_offload_capa: u64,
    pub flow_type_rss_offloads: u64,
    pub max_rx_pktlen: u32,
    pub min_rx_bufsize: u32,
    pub max_rx_queues: u16,
    pub max_tx_queues: u16,
    pub reta_size: u16,
    pub min_mtu: u16,
    pub max_mtu: u16,
    pub rx_desc_max: u16,
    pub tx_desc_max: u16,
    pub hash_key_size: u8,
    pub pad0: u8,
    pub socket_id: i32,
    pub pad1: u32,
}

/// `struct rn_port_conf`: what rumpnet asks of a port.
#[repr(C)]
#[derive(Debug)]
pub struct RnPortConf {
    pub rss_key: *const u8,
    pub nb_rxq: u16,
    pub nb_txq: u16,
    pub mtu: u16,
    pub rss_key_len: u8,
    pub want_rx_csum: u8,
    pub want_tx_csum: u8,
    pub want_tso: u8,
    pub want_rss: u8,
    pub pad0: u8,
}

/// `struct rn_port_enabled`: the offloads the port was configured with.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct RnPortEnabled {
    pub rx_ipv4_csum: u8,
    pub rx_tcp_csum: u8,
    pub rx_udp_csum: u8,
    pub tx_ipv4_csum: u8,
    pub tx_tcp_csum: u8,
    pub tx_udp_csum: u8,
    pub tso: u8,
    pub rss: u8,
    pub rss_hash: u8,
    pub pad0: u8,
    pub mtu: u16,
}

/// `struct rn_link`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct RnLink {
    pub speed_mbps: u32,
    pub up: u8,
    pub full_duplex: u8,
    pub pad0: u16,
}

/// `struct rn_stats`: `rte_eth_stats` without the per-queue arrays.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct RnStats {
    pub ipackets: u64,
    pub opackets: u64,
    pub ibytes: u64,
    pub obytes: u64,
    pub imissed: u64,
    pub ierrors: u64,
    pub oerrors: u64,
    pub rx_nombuf: u64,
}

// The shim (compiled by build.rs into librumpnet_dpdk_shim.a).
extern "C" {
    pub static rn_mbuf_layout: RnMbufLayout;
    pub fn rn_errno() -> c_int;
    pub fn rn_rx_burst(port: u16, queue: u16, pkts: *mut *mut RteMbuf, n: u16) -> u16;
    pub fn rn_tx_burst(port: u16, queue: u16, pkts: *mut *mut RteMbuf, n: u16) -> u16;
    pub fn rn_alloc_bulk(pool: *mut RteMempool, pkts: *mut *mut RteMbuf, n: c_uint) -> c_int;
    pub fn rn_free_bulk(pkts: *mut *mut RteMbuf, n: c_uint);
    pub fn rn_free(m: *mut RteMbuf);
    pub fn rn_copy(m: *const RteMbuf) -> *mut RteMbuf;
    pub fn rn_pool_create(
        name: *const c_char,
        n: c_uint,
        cache: c_uint,
        data_room: u16,
        socket: c_int,
    ) -> *mut RteMempool;
    pub fn rn_pool_in_use(pool: *const RteMempool) -> c_uint;
    pub fn rn_pool_avail(pool: *const RteMempool) -> c_uint;
    pub fn rn_pool_ops_name(pool: *const RteMempool) -> *const c_char;
    pub fn rn_pool_single_thread_flags(pool: *const RteMempool) -> c_uint;
    pub fn rn_port_info(port: u16, out: *mut RnDevInfo) -> c_int;
    pub fn rn_port_configure(port: u16, conf: *const RnPortConf, en: *mut RnPortEnabled) -> c_int;
    pub fn rn_port_reta_spread(port: u16, reta_size: u16, nb_rxq: u16) -> c_int;
    pub fn rn_port_link(port: u16, out: *mut RnLink) -> c_int;
    pub fn rn_port_stats(port: u16, out: *mut RnStats) -> c_int;
    pub fn rn_port_mac(port: u16, out: *mut u8) -> c_int;
}

// libdpdk's exported functions with plain arguments.
#[link(name = "rte_eal")]
extern "C" {
    pub fn rte_version() -> *const c_char;
    pub fn rte_eal_init(argc: c_int, argv: *mut *mut c_char) -> c_int;
    pub fn rte_eal_cleanup() -> c_int;
    pub fn rte_strerror(errnum: c_int) -> *const c_char;
    pub fn rte_socket_id() -> c_uint;
}

#[link(name = "rte_mempool")]
extern "C" {
    pub fn rte_mempool_free(mp: *mut RteMempool);
}

#[link(name = "rte_ethdev")]
extern "C" {
    pub fn rte_eth_dev_count_avail() -> u16;
    pub fn rte_eth_dev_is_valid_port(port: u16) -> c_int;
    pub fn rte_eth_dev_get_port_by_name(name: *const c_char, port: *mut u16) -> c_int;
    pub fn rte_eth_dev_get_name_by_port(port: u16, name: *mut c_char) -> c_int;
    pub fn rte_eth_dev_adjust_nb_rx_tx_desc(port: u16, nb_rxd: *mut u16, nb_txd: *mut u16)
        -> c_int;
    pub fn rte_eth_rx_queue_setup(
        port: u16,
        queue: u16,
        nb_desc: u16,
        socket: c_uint,
        rx_conf: *const c_void,
        pool: *mut RteMempool,
    ) -> c_int;
    pub fn rte_eth_tx_queue_setup(
        port: u16,
        queue: u16,
        nb_desc: u16,
        socket: c_uint,
        tx_conf: *const c_void,
    ) -> c_int;
    pub fn rte_eth_dev_start(port: u16) -> c_int;
    pub fn rte_eth_dev_stop(port: u16) -> c_int;
    pub fn rte_eth_dev_close(port: u16) -> c_int;
    pub fn rte_eth_promiscuous_enable(port: u16) -> c_int;
    pub fn rte_eth_stats_reset(port: u16) -> c_int;
}

/// `RTE_ETH_NAME_MAX_LEN`: room for a port name with its NUL.
pub const ETH_NAME_MAX_LEN: usize = 64;
/// `SOCKET_ID_ANY`.
pub const SOCKET_ID_ANY: c_int = -1;
