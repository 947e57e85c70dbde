/*
 * rumpnet's C shim over DPDK.
 *
 * DPDK's fast-path functions (rte_eth_rx_burst, rte_eth_tx_burst, rte_pktmbuf_alloc_bulk,
 * rte_pktmbuf_free, ...) are `static inline` in its headers: there is no symbol for Rust
 * to call, so each gets an exported wrapper here. Calls are per burst, never per packet.
 *
 * The mbuf layout is not mirrored by hand in Rust: `rn_mbuf_layout` holds the offsets
 * of the fields the backend touches and the flag values it needs, computed with
 * offsetof() by the compiler against the very headers the library was built from.
 *
 * The few control-path calls that take large DPDK structs (rte_eth_conf,
 * rte_eth_dev_info, rte_eth_stats, rte_eth_link) are wrapped with small structs of our
 * own (`struct rn_*`), mirrored in io-dpdk/src/sys.rs; keep the two in step.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <rte_config.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

/* ------------------------------------------------------------------ mbuf layout */

struct rn_mbuf_layout {
	uint32_t size;        /* sizeof(struct rn_mbuf_layout), checked by Rust */
	uint32_t off_buf_addr;
	uint32_t off_data_off;
	uint32_t off_pkt_len;
	uint32_t off_data_len;
	uint32_t off_buf_len;
	uint32_t off_nb_segs;
	uint32_t off_ol_flags;
	uint32_t off_rss;
	uint32_t off_tx_offload;
	uint32_t l2_len_shift;
	uint32_t l3_len_shift;
	uint32_t l4_len_shift;
	uint32_t tso_segsz_shift;
	uint32_t headroom;    /* RTE_PKTMBUF_HEADROOM */
	uint32_t pad0;
	uint64_t rx_rss_hash;
	uint64_t rx_ip_cksum_mask;
	uint64_t rx_ip_cksum_good;
	uint64_t rx_l4_cksum_mask;
	uint64_t rx_l4_cksum_good;
	uint64_t tx_ipv4;
	uint64_t tx_ip_cksum;
	uint64_t tx_tcp_cksum;
	uint64_t tx_udp_cksum;
	uint64_t tx_tcp_seg;
};

const struct rn_mbuf_layout rn_mbuf_layout = {
	.size = sizeof(struct rn_mbuf_layout),
	.off_buf_addr = offsetof(struct rte_mbuf, buf_addr),
	.off_data_off = offsetof(struct rte_mbuf, data_off),
	.off_pkt_len = offsetof(struct rte_mbuf, pkt_len),
	.off_data_len = offsetof(struct rte_mbuf, data_len),
	.off_buf_len = offsetof(struct rte_mbuf, buf_len),
	.off_nb_segs = offsetof(struct rte_mbuf, nb_segs),
	.off_ol_flags = offsetof(struct rte_mbuf, ol_flags),
	.off_rss = offsetof(struct rte_mbuf, hash.rss),
	.off_tx_offload = offsetof(struct rte_mbuf, tx_offload),
	.l2_len_shift = RTE_MBUF_L2_LEN_OFS,
	.l3_len_shift = RTE_MBUF_L3_LEN_OFS,
	.l4_len_shift = RTE_MBUF_L4_LEN_OFS,
	.tso_segsz_shift = RTE_MBUF_TSO_SEGSZ_OFS,
	.headroom = RTE_PKTMBUF_HEADROOM,
	.pad0 = 0,
	.rx_rss_hash = RTE_MBUF_F_RX_RSS_HASH,
	.rx_ip_cksum_mask = RTE_MBUF_F_RX_IP_CKSUM_MASK,
	.rx_ip_cksum_good = RTE_MBUF_F_RX_IP_CKSUM_GOOD,
	.rx_l4_cksum_mask = RTE_MBUF_F_RX_L4_CKSUM_MASK,
	.rx_l4_cksum_good = RTE_MBUF_F_RX_L4_CKSUM_GOOD,
	.tx_ipv4 = RTE_MBUF_F_TX_IPV4,
	.tx_ip_cksum = RTE_MBUF_F_TX_IP_CKSUM,
	.tx_tcp_cksum = RTE_MBUF_F_TX_TCP_CKSUM,
	.tx_udp_cksum = RTE_MBUF_F_TX_UDP_CKSUM,
	.tx_tcp_seg = RTE_MBUF_F_TX_TCP_SEG,
};

/* The u16 fields the Rust side writes through these offsets. */
_Static_assert(sizeof(((struct rte_mbuf *)0)->data_off) == 2, "data_off is u16");
_Static_assert(sizeof(((struct rte_mbuf *)0)->data_len) == 2, "data_len is u16");
_Static_assert(sizeof(((struct rte_mbuf *)0)->buf_len) == 2, "buf_len is u16");
_Static_assert(sizeof(((struct rte_mbuf *)0)->nb_segs) == 2, "nb_segs is u16");
_Static_assert(sizeof(((struct rte_mbuf *)0)->pkt_len) == 4, "pkt_len is u32");
_Static_assert(sizeof(((struct rte_mbuf *)0)->ol_flags) == 8, "ol_flags is u64");
_Static_assert(sizeof(((struct rte_mbuf *)0)->tx_offload) == 8, "tx_offload is u64");

/* ------------------------------------------------------------------ errors */

int rn_errno(void)
{
	return rte_errno;
}

/* ------------------------------------------------------------------ fast path */

uint16_t rn_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n)
{
	return rte_eth_rx_burst(port, queue, pkts, n);
}

uint16_t rn_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n)
{
	return rte_eth_tx_burst(port, queue, pkts, n);
}

int rn_alloc_bulk(struct rte_mempool *pool, struct rte_mbuf **pkts, unsigned int n)
{
	return rte_pktmbuf_alloc_bulk(pool, pkts, n);
}

void rn_free_bulk(struct rte_mbuf **pkts, unsigned int n)
{
	rte_pktmbuf_free_bulk(pkts, n);
}

void rn_free(struct rte_mbuf *m)
{
	rte_pktmbuf_free(m);
}

/* A copy of m (data and metadata) in a new mbuf from m's own pool; NULL if none is free. */
struct rte_mbuf *rn_copy(const struct rte_mbuf *m)
{
	return rte_pktmbuf_copy(m, m->pool, 0, UINT32_MAX);
}

/* ------------------------------------------------------------------ mempool */

struct rte_mempool *rn_pool_create(const char *name, unsigned int n, unsigned int cache,
				   uint16_t data_room, int socket)
{
	return rte_pktmbuf_pool_create(name, n, cache, 0, data_room, socket);
}

unsigned int rn_pool_in_use(const struct rte_mempool *pool)
{
	return rte_mempool_in_use_count(pool);
}

unsigned int rn_pool_avail(const struct rte_mempool *pool)
{
	return rte_mempool_avail_count(pool);
}

/* The name of the pool's ops ("ring_mp_mc", ...): whether several threads may get and put
 * at once depends on it. */
const char *rn_pool_ops_name(const struct rte_mempool *pool)
{
	return rte_mempool_get_ops(pool->ops_index)->name;
}

/* The pool's single-producer / single-consumer flags, if any is set (0: none). */
unsigned int rn_pool_single_thread_flags(const struct rte_mempool *pool)
{
	return pool->flags & (RTE_MEMPOOL_F_SP_PUT | RTE_MEMPOOL_F_SC_GET);
}

/* ------------------------------------------------------------------ ports */

struct rn_dev_info {
	char driver[64];
	uint64_t rx_offload_capa;
	uint64_t tx_offload_capa;
	uint64_t flow_type_rss_offloads;
	uint32_t max_rx_pktlen;
	uint32_t min_rx_bufsize;
	uint16_t max_rx_queues;
	uint16_t max_tx_queues;
	uint16_t reta_size;
	uint16_t min_mtu;
	uint16_t max_mtu;
	uint16_t rx_desc_max;
	uint16_t tx_desc_max;
	uint8_t hash_key_size;
	uint8_t pad0;
	int32_t socket_id;
	uint32_t pad1;
};

int rn_port_info(uint16_t port, struct rn_dev_info *out)
{
	struct rte_eth_dev_info info;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = rte_eth_dev_info_get(port, &info);
	if (rc != 0)
		return rc;
	if (info.driver_name != NULL) {
		strncpy(out->driver, info.driver_name, sizeof(out->driver) - 1);
	}
	out->rx_offload_capa = info.rx_offload_capa;
	out->tx_offload_capa = info.tx_offload_capa;
	out->flow_type_rss_offloads = info.flow_type_rss_offloads;
	out->max_rx_pktlen = info.max_rx_pktlen;
	out->min_rx_bufsize = info.min_rx_bufsize;
	out->max_rx_queues = info.max_rx_queues;
	out->max_tx_queues = info.max_tx_queues;
	out->reta_size = info.reta_size;
	out->min_mtu = info.min_mtu;
	out->max_mtu = info.max_mtu;
	out->rx_desc_max = info.rx_desc_lim.nb_max;
	out->tx_desc_max = info.tx_desc_lim.nb_max;
	out->hash_key_size = info.hash_key_size;
	out->socket_id = rte_eth_dev_socket_id(port);
	return 0;
}

/* What rumpnet asks of a port. */
struct rn_port_conf {
	const uint8_t *rss_key; /* hash_key_size bytes, or NULL */
	uint16_t nb_rxq;
	uint16_t nb_txq;
	uint16_t mtu;
	uint8_t rss_key_len;
	uint8_t want_rx_csum;
	uint8_t want_tx_csum;
	uint8_t want_tso;
	uint8_t want_rss;
	uint8_t pad0;
};

/* What the port was configured with (each offload only when the device has it). */
struct rn_port_enabled {
	uint8_t rx_ipv4_csum;
	uint8_t rx_tcp_csum;
	uint8_t rx_udp_csum;
	uint8_t tx_ipv4_csum;
	uint8_t tx_tcp_csum;
	uint8_t tx_udp_csum;
	uint8_t tso;
	uint8_t rss;      /* multi-queue RSS with our key */
	uint8_t rss_hash; /* the hash is reported per mbuf */
	uint8_t pad0;
	uint16_t mtu;
};

/*
 * rte_eth_dev_configure with the offloads the device has out of those asked for.
 * Returns 0 or a negative errno.
 */
int rn_port_configure(uint16_t port, const struct rn_port_conf *c, struct rn_port_enabled *en)
{
	struct rte_eth_dev_info info;
	struct rte_eth_conf conf;
	uint64_t rxc, txc;
	int rc;

	memset(en, 0, sizeof(*en));
	rc = rte_eth_dev_info_get(port, &info);
	if (rc != 0)
		return rc;
	rxc = info.rx_offload_capa;
	txc = info.tx_offload_capa;
	memset(&conf, 0, sizeof(conf));
	conf.rxmode.mtu = c->mtu;
	if (c->want_rx_csum) {
		if (rxc & RTE_ETH_RX_OFFLOAD_IPV4_CKSUM) {
			conf.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_IPV4_CKSUM;
			en->rx_ipv4_csum = 1;
		}
		if (rxc & RTE_ETH_RX_OFFLOAD_TCP_CKSUM) {
			conf.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_TCP_CKSUM;
			en->rx_tcp_csum = 1;
		}
		if (rxc & RTE_ETH_RX_OFFLOAD_UDP_CKSUM) {
			conf.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_UDP_CKSUM;
			en->rx_udp_csum = 1;
		}
	}
	if (c->want_tx_csum) {
		if (txc & RTE_ETH_TX_OFFLOAD_IPV4_CKSUM) {
			conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_IPV4_CKSUM;
			en->tx_ipv4_csum = 1;
		}
		if (txc & RTE_ETH_TX_OFFLOAD_TCP_CKSUM) {
			conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_TCP_CKSUM;
			en->tx_tcp_csum = 1;
		}
		if (txc & RTE_ETH_TX_OFFLOAD_UDP_CKSUM) {
			conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_UDP_CKSUM;
			en->tx_udp_csum = 1;
		}
		/* TSO needs the TCP checksum offload too (the NIC fills every segment's). */
		if (c->want_tso && en->tx_tcp_csum && (txc & RTE_ETH_TX_OFFLOAD_TCP_TSO)) {
			conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_TCP_TSO;
			en->tso = 1;
		}
	}
	if (c->want_rss) {
		uint64_t hf = (RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP) &
			      info.flow_type_rss_offloads;
		if (c->nb_rxq > 1 && hf != 0) {
			conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
			conf.rx_adv_conf.rss_conf.rss_key = (uint8_t *)c->rss_key;
			conf.rx_adv_conf.rss_conf.rss_key_len = c->rss_key_len;
			conf.rx_adv_conf.rss_conf.rss_hf = hf;
			en->rss = 1;
		}
		if (rxc & RTE_ETH_RX_OFFLOAD_RSS_HASH) {
			conf.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_RSS_HASH;
			en->rss_hash = 1;
		}
	}
	rc = rte_eth_dev_configure(port, c->nb_rxq, c->nb_txq, &conf);
	if (rc != 0)
		return rc;
	rc = rte_eth_dev_get_mtu(port, &en->mtu);
	if (rc != 0)
		en->mtu = c->mtu;
	return 0;
}

/* Spread the redirection table over `nb_rxq` queues, round robin. */
int rn_port_reta_spread(uint16_t port, uint16_t reta_size, uint16_t nb_rxq)
{
	struct rte_eth_rss_reta_entry64 reta[RTE_ETH_RSS_RETA_SIZE_512 / RTE_ETH_RETA_GROUP_SIZE];
	unsigned int i;

	if (reta_size == 0 || nb_rxq == 0 || reta_size > RTE_ETH_RSS_RETA_SIZE_512)
		return -EINVAL;
	memset(reta, 0, sizeof(reta));
	for (i = 0; i < reta_size; i++) {
		reta[i / RTE_ETH_RETA_GROUP_SIZE].mask |= 1ULL << (i % RTE_ETH_RETA_GROUP_SIZE);
		reta[i / RTE_ETH_RETA_GROUP_SIZE].reta[i % RTE_ETH_RETA_GROUP_SIZE] = i % nb_rxq;
	}
	return rte_eth_dev_rss_reta_update(port, reta, reta_size);
}

struct rn_link {
	uint32_t speed_mbps;
	uint8_t up;
	uint8_t full_duplex;
	uint16_t pad0;
};

int rn_port_link(uint16_t port, struct rn_link *out)
{
	struct rte_eth_link link;
	int rc;

	memset(out, 0, sizeof(*out));
	memset(&link, 0, sizeof(link));
	rc = rte_eth_link_get_nowait(port, &link);
	if (rc != 0)
		return rc;
	out->speed_mbps = link.link_speed;
	out->up = link.link_status == RTE_ETH_LINK_UP;
	out->full_duplex = link.link_duplex == RTE_ETH_LINK_FULL_DUPLEX;
	return 0;
}

struct rn_stats {
	uint64_t ipackets;
	uint64_t opackets;
	uint64_t ibytes;
	uint64_t obytes;
	uint64_t imissed;
	uint64_t ierrors;
	uint64_t oerrors;
	uint64_t rx_nombuf;
};

int rn_port_stats(uint16_t port, struct rn_stats *out)
{
	struct rte_eth_stats s;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = rte_eth_stats_get(port, &s);
	if (rc != 0)
		return rc;
	out->ipackets = s.ipackets;
	out->opackets = s.opackets;
	out->ibytes = s.ibytes;
	out->obytes = s.obytes;
	out->imissed = s.imissed;
	out->ierrors = s.ierrors;
	out->oerrors = s.oerrors;
	out->rx_nombuf = s.rx_nombuf;
	return 0;
}

int rn_port_mac(uint16_t port, uint8_t out[6])
{
	struct rte_ether_addr a;
	int rc = rte_eth_macaddr_get(port, &a);
	if (rc == 0)
		memcpy(out, a.addr_bytes, 6);
	return rc;
}
