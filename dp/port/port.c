/*
 * EAL arguments, ports and pools (see port.h).
 *
 * Devices: a configured device string that looks like a PCI address goes to
 * the EAL allow-list (-a), anything else is a virtual device (--vdev). The
 * DPDK port is then found by name (the part before the first comma).
 */
#include <ctype.h>
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_thash.h>

#include "port.h"
#include "wp/common.h"
#include "wp/log.h"

#define MAX_ARGS 64

/* The default Toeplitz key most NICs ship with (Microsoft's RSS spec). */
static const uint8_t default_rss_key[WP_RSS_KEY_LEN] = {
        0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3,
        0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3,
        0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
};

static bool is_pci_address(const char *dev)
{
	/* dddd:bb:dd.f or bb:dd.f */
	unsigned colons = 0, dots = 0;

	for (const char *p = dev; *p && *p != ','; p++) {
		if (*p == ':')
			colons++;
		else if (*p == '.')
			dots++;
		else if (!isxdigit((unsigned char)*p))
			return false;
	}
	return colons >= 1 && dots == 1;
}

static void device_name(const char *dev, char *name, size_t len)
{
	size_t n = strcspn(dev, ",");

	if (n >= len)
		n = len - 1;
	memcpy(name, dev, n);
	name[n] = '\0';
}

/* Free 2 MiB hugepages on the machine, or 0 if none or unknown. */
static unsigned long free_hugepages_2m(void)
{
	FILE *f = fopen("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages", "r");
	unsigned long n = 0;

	if (f == NULL)
		return 0;
	if (fscanf(f, "%lu", &n) != 1)
		n = 0;
	fclose(f);
	return n;
}

/* The value of devarg KEY in a device string ("name,key=value,..."), or NULL. */
static const char *devarg(const char *device, const char *key)
{
	size_t n = strlen(key);

	for (const char *p = strchr(device, ','); p != NULL; p = strchr(p + 1, ','))
		if (strncmp(p + 1, key, n) == 0 && p[1 + n] == '=')
			return p + 2 + n;
	return NULL;
}

static bool devarg_is(const char *device, const char *key, const char *value)
{
	const char *v = devarg(device, key);
	size_t n = strlen(value);

	return v != NULL && strncmp(v, value, n) == 0 && (v[n] == ',' || v[n] == '\0');
}

/*
 * Ports whose peer maps the EAL's memory: a memif port in zero-copy mode
 * (device "net_memif...,zero-copy=yes": its rings point into waypointd's own
 * mbufs, as a NIC's descriptors do, instead of the driver copying every
 * packet) and a virtio_user port (its vhost-user backend reads and writes
 * the guest's buffers, as a hypervisor does). They share that memory file by
 * file, which DPDK allows only with --single-file-segments (vhost-user takes
 * at most 8 regions): added unless eal.args already holds it.
 */
static bool shares_memory(const struct wp_config *cfg)
{
	for (unsigned i = 0; i < cfg->eal_nargs; i++)
		if (strcmp(cfg->eal_args[i], "--single-file-segments") == 0)
			return false;
	for (unsigned i = 0; i < cfg->n_ports; i++) {
		const char *d = cfg->ports[i].device;

		if ((strncmp(d, "net_memif", 9) == 0 && devarg_is(d, "zero-copy", "yes")) ||
		    strncmp(d, "virtio_user", 11) == 0)
			return true;
	}
	return false;
}

/* "0,1,3" of the CPUs this process may run on. */
static void allowed_cpus(char *buf, size_t len)
{
	cpu_set_t set;
	size_t off = 0;

	buf[0] = '\0';
	if (sched_getaffinity(0, sizeof(set), &set) != 0) {
		snprintf(buf, len, "0");
		return;
	}
	for (int c = 0; c < CPU_SETSIZE && off < len; c++)
		if (CPU_ISSET(c, &set))
			off += (size_t)snprintf(buf + off, len - off, "%s%d", off ? "," : "", c);
}

/*
 * The TAP PMD (DPDK 22.11) claims the first real-time signal whose
 * disposition is still the default, turns on O_ASYNC on its queues with
 * that signal, and counts signals so that an empty RX burst can skip the
 * read() system call. Under load that is one queued signal per received
 * packet, delivered to whichever thread does not block it (the main,
 * telemetry and control-plane threads here): a few microseconds each,
 * more than the read() it saves on a busy core, and it interrupts every
 * thread's system calls. When no real-time signal is free, the PMD says so
 * ("No Rx trigger signal available") and polls with read() like any
 * other poll-mode driver. So, for TAP ports, the unused real-time signals
 * are set to be ignored before the EAL creates the devices; nothing in
 * waypointd uses them.
 */
static void tap_no_rx_signals(const struct wp_config *cfg)
{
	for (unsigned i = 0; i < cfg->n_ports; i++)
		if (strncmp(cfg->ports[i].device, "net_tap", 7) == 0) {
			for (int sig = SIGRTMIN + 1; sig < SIGRTMAX; sig++) {
				struct sigaction sa;

				if (sigaction(sig, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL)
					(void)signal(sig, SIG_IGN);
			}
			return;
		}
}

int wp_port_eal_init(const struct wp_config *cfg, const char *argv0, char *err, size_t errlen)
{
	static char store[MAX_ARGS][300];
	char *argv[MAX_ARGS];
	int argc = 0;
	bool no_huge = cfg->eal_no_huge, any_pci = false;
	unsigned long need = (cfg->eal_memory_mb + 1) / 2;
	int rc;

#define ARG(...)                                                                                   \
	do {                                                                                       \
		snprintf(store[argc], sizeof(store[argc]), __VA_ARGS__);                           \
		argv[argc] = store[argc];                                                          \
		argc++;                                                                            \
	} while (0)

	ARG("%s", argv0);
	if (cfg->eal_lcores[0] != '\0') {
		ARG("--lcores=%s", cfg->eal_lcores);
	} else {
		char cpus[200];

		allowed_cpus(cpus, sizeof(cpus));
		ARG("--lcores=(0-%u)@(%s)", cfg->workers, cpus);
	}
	ARG("--main-lcore=0");
	ARG("--file-prefix=%s", cfg->eal_file_prefix);
	if (cfg->eal_in_memory)
		ARG("--in-memory");
	if (!no_huge && free_hugepages_2m() < need) {
		wp_log(WP_LOG_WARNING,
		       "waypointd: warning: %lu free 2 MiB hugepages, %lu needed for "
		       "eal.memory_mb=%u; falling back to --no-huge (slower, not for "
		       "production). Reserve them with: echo %lu > /proc/sys/vm/nr_hugepages\n",
		       free_hugepages_2m(), need, cfg->eal_memory_mb, need + 64);
		no_huge = true;
	}
	if (no_huge)
		ARG("--no-huge");
	ARG("-m");
	ARG("%u", cfg->eal_memory_mb);
	ARG("--log-level=%s", cfg->eal_log_level);
	for (unsigned i = 0; i < cfg->n_ports; i++) {
		if (is_pci_address(cfg->ports[i].device)) {
			ARG("-a");
			any_pci = true;
		} else {
			ARG("--vdev");
		}
		ARG("%s", cfg->ports[i].device);
	}
	if (!any_pci)
		ARG("--no-pci");
	if (shares_memory(cfg))
		ARG("--single-file-segments");
	for (unsigned i = 0; i < cfg->eal_nargs && argc < MAX_ARGS - 1; i++)
		ARG("%s", cfg->eal_args[i]);
#undef ARG
	argv[argc] = NULL;

	tap_no_rx_signals(cfg);
	rc = rte_eal_init(argc, argv);
	if (rc < 0) {
		snprintf(err, errlen, "EAL initialisation failed: %s", rte_strerror(rte_errno));
		return -rte_errno ?: -EINVAL;
	}
	if (rte_lcore_count() < cfg->workers + 1) {
		snprintf(err, errlen, "%u workers need %u lcores, the EAL has %u", cfg->workers,
		         cfg->workers + 1, rte_lcore_count());
		return -EINVAL;
	}
	return 0;
}

/*
 * Whether to use an offload (ports.[idx].<key>) the device <offered> or not:
 * "on", or "auto" on a NIC or VF (the PCI devices). "on" for a device that
 * does not offer it is an error naming the key and the device.
 */
static int offload_use(enum wp_offload mode, const char *device, bool offered, unsigned idx,
                       const char *key, const char *name, const char *what, bool *use, char *err,
                       size_t errlen)
{
	*use = offered &&
	       (mode == WP_OFFLOAD_ON || (mode == WP_OFFLOAD_AUTO && is_pci_address(device)));
	if (mode == WP_OFFLOAD_ON && !offered) {
		snprintf(err, errlen,
		         "ports.[%u].%s is \"on\" but %s offers no %s (use \"auto\" or \"off\")",
		         idx, key, name, what);
		return -ENOTSUP;
	}
	return 0;
}

/*
 * TCP checksum offload (ports.[N].checksum_offload): on transmit the
 * device fills in the checksum over the pseudo-header sum the stack leaves
 * in the field; on receive it flags segments it verified, and the stack
 * skips its own pass over them (anything else it still verifies). "auto"
 * trusts only NICs and VFs: virtual devices that advertise it (TAP) do the
 * same work in software inside the driver. IPv4 header checksums stay in
 * software (20 bytes).
 */
static int cksum_offloads(const struct wp_port_config *pc, unsigned idx,
                          const struct rte_eth_dev_info *info, struct wp_port *p,
                          struct rte_eth_conf *conf, char *err, size_t errlen)
{
	bool tx = info->tx_offload_capa & RTE_ETH_TX_OFFLOAD_TCP_CKSUM;
	bool rx = info->rx_offload_capa & RTE_ETH_RX_OFFLOAD_TCP_CKSUM;
	bool use;
	int rc = offload_use(pc->cksum_offload, pc->device, tx || rx, idx, "checksum_offload",
	                     p->name, "TCP checksum offload", &use, err, errlen);

	if (rc != 0)
		return rc;
	p->tx_tcp_cksum = use && tx;
	p->rx_tcp_cksum = use && rx;
	if (p->tx_tcp_cksum)
		conf->txmode.offloads |= RTE_ETH_TX_OFFLOAD_TCP_CKSUM;
	if (p->rx_tcp_cksum)
		conf->rxmode.offloads |= RTE_ETH_RX_OFFLOAD_TCP_CKSUM;
	return 0;
}

/*
 * TCP segmentation offload (ports.[N].tso): the stack hands the device one
 * segment of up to 64 KiB with a template header, and the device cuts it
 * into pieces of tso_segsz payload, each with its own IPv4 and TCP checksum
 * (so TSO takes the TCP checksum offload with it, and the IPv4 one where the
 * device lists it: a virtio NIC does not, its host sums each piece's IPv4
 * header whatever the guest asks, and the stack's own sum of the template
 * header stays in the frame). "auto" trusts
 * only NICs and VFs, as for checksums: net_tap offers TSO but cuts in
 * software (rte_gso) and sums every piece itself. net_tap also compares
 * each piece's frame, Ethernet header included, with the MTU, so pieces
 * for it are 14 bytes shorter (tso_frame_hdr).
 */
static int tso_offload(const struct wp_port_config *pc, unsigned idx,
                       const struct rte_eth_dev_info *info, struct wp_port *p,
                       struct rte_eth_conf *conf, char *err, size_t errlen)
{
	const uint64_t need = RTE_ETH_TX_OFFLOAD_TCP_TSO | RTE_ETH_TX_OFFLOAD_TCP_CKSUM;
	int rc = offload_use(
	        pc->tso, pc->device, (info->tx_offload_capa & need) == need, idx, "tso", p->name,
	        "TCP segmentation offload with TCP checksums on transmit", &p->tso, err, errlen);

	if (rc != 0)
		return rc;
	p->tso_ip_cksum = p->tso && (info->tx_offload_capa & RTE_ETH_TX_OFFLOAD_IPV4_CKSUM);
	if (p->tso)
		conf->txmode.offloads |= need;
	if (p->tso_ip_cksum)
		conf->txmode.offloads |= RTE_ETH_TX_OFFLOAD_IPV4_CKSUM;
	p->tso_frame_hdr = strcmp(info->driver_name, "net_tap") == 0 ? RTE_ETHER_HDR_LEN : 0;
	return 0;
}

/*
 * Large receive offload (ports.[N].lro): the device joins a connection's
 * segments into one of up to 64 KiB, in an mbuf chain (with scattered
 * receive where the driver lists it) that the worker hands to TCP as pieces
 * (wp_tcp_input_pieces). The largest joined packet is the device's own
 * limit, at most 65,535 bytes; a driver that lists no limit (virtio) takes
 * none from us, and ethdev then asks that it be left at the frame size.
 * On a virtio NIC it tells the host it may pass large segments (the
 * guest's TSO4/TSO6 features).
 */
static int lro_offload(const struct wp_port_config *pc, unsigned idx,
                       const struct rte_eth_dev_info *info, struct wp_port *p,
                       struct rte_eth_conf *conf, char *err, size_t errlen)
{
	int rc =
	        offload_use(pc->lro, pc->device, info->rx_offload_capa & RTE_ETH_RX_OFFLOAD_TCP_LRO,
	                    idx, "lro", p->name, "large receive offload", &p->lro, err, errlen);

	if (rc != 0 || !p->lro)
		return rc;
	conf->rxmode.offloads |= RTE_ETH_RX_OFFLOAD_TCP_LRO;
	if (info->rx_offload_capa & RTE_ETH_RX_OFFLOAD_SCATTER)
		conf->rxmode.offloads |= RTE_ETH_RX_OFFLOAD_SCATTER;
	if (info->max_lro_pkt_size != 0) /* else the driver takes no limit (ethdev: the MTU's) */
		conf->rxmode.max_lro_pkt_size =
		        RTE_MIN(info->max_lro_pkt_size, (uint32_t)UINT16_MAX);
	return 0;
}

/*
 * The largest MTU the device takes, as ethdev computes it: its own max_mtu,
 * and its largest frame less the L2 overhead (Ethernet header and CRC, or
 * what the device says its overhead is). net_tap in DPDK 22.11 takes no
 * frame over 1522 bytes; most NICs take jumbo frames.
 *
 * memif is the exception. Its driver reports 1518 bytes (RTE_ETHER_MAX_LEN),
 * which ethdev enforces, yet the memif protocol carries longer frames, and a
 * frame that fits one memif buffer passes the driver whole. One that does
 * not is spread over a chain of buffers, which DPDK 22.11's copy mode
 * corrupts (it leaves a stale "next" flag on a buffer it reuses; fixed in
 * 26.03). So waypointd takes an MTU over 1500 on memif when each frame fits
 * one buffer: as the client (whose buffers both ends use), in zero-copy
 * mode (a buffer is one of waypointd's mbufs, sized for the MTU) or with
 * bsize at least the frame. ethdev is then configured at what it accepts
 * and the stack uses the configured MTU. Returns the MTU to give ethdev, or
 * a negative errno with err set.
 */
static int device_mtu(const struct wp_port_config *pc, unsigned idx,
                      const struct rte_eth_dev_info *info, const char *name, char *err,
                      size_t errlen)
{
	uint32_t overhead = RTE_ETHER_HDR_LEN + RTE_ETHER_CRC_LEN, max = info->max_mtu;
	uint32_t frame = pc->mtu + RTE_ETHER_HDR_LEN;
	const char *bsize = devarg(pc->device, "bsize");

	if (info->max_mtu != UINT16_MAX && info->max_rx_pktlen > info->max_mtu)
		overhead = info->max_rx_pktlen - info->max_mtu;
	if (info->max_rx_pktlen > overhead)
		max = WP_MIN(max, info->max_rx_pktlen - overhead);
	if (pc->mtu <= max)
		return pc->mtu;
	if (strncmp(name, "net_memif", 9) != 0) {
		snprintf(err, errlen, "ports.[%u].mtu %u: %s takes at most %u", idx, pc->mtu, name,
		         max);
		return -EINVAL;
	}
	if (devarg_is(pc->device, "role", "client") &&
	    (devarg_is(pc->device, "zero-copy", "yes") ||
	     (bsize != NULL && strtoul(bsize, NULL, 10) >= frame)))
		return (int)max;
	snprintf(err, errlen,
	         "ports.[%u].mtu %u: %s takes frames over %u bytes only whole in one memif "
	         "buffer: role=client with zero-copy=yes, or with bsize=%u or more (DPDK 22.11's "
	         "memif corrupts frames spread over buffers)",
	         idx, pc->mtu, name, max + RTE_ETHER_HDR_LEN, frame);
	return -EINVAL;
}

static int start_port(const struct wp_config *cfg, unsigned idx, struct wp_ports *ports, char *err,
                      size_t errlen)
{
	const struct wp_port_config *pc = &cfg->ports[idx];
	struct wp_port *p = &ports->port[idx];
	struct rte_eth_dev_info info;
	struct rte_eth_conf conf;
	struct rte_ether_addr mac;
	uint16_t nq = (uint16_t)cfg->workers, rxd = pc->rx_desc, txd = pc->tx_desc;
	int rc, mtu;

	device_name(pc->device, p->name, sizeof(p->name));
	if (rte_eth_dev_get_port_by_name(p->name, &p->port_id) != 0) {
		snprintf(err, errlen,
		         "ports.[%u].device '%s': no such DPDK port (is it bound to a "
		         "DPDK driver / a valid vdev?)",
		         idx, pc->device);
		return -ENODEV;
	}
	rc = rte_eth_dev_info_get(p->port_id, &info);
	if (rc != 0)
		goto fail;
	if (info.max_rx_queues < nq || info.max_tx_queues < nq) {
		snprintf(err, errlen, "ports.[%u] %s: %u workers need %u queues, device has %u/%u",
		         idx, p->name, cfg->workers, nq, info.max_rx_queues, info.max_tx_queues);
		return -EINVAL;
	}

	/*
	 * Virtual devices may advertise RSS without being able to honour it
	 * (TAP without the multiq qdisc picks queues in the kernel): trust the
	 * device to steer only when it is a real NIC or VF.
	 */
	memset(&conf, 0, sizeof(conf));
	memcpy(p->rss_key, default_rss_key, sizeof(p->rss_key));
	p->rss = false;
	if (nq > 1 && info.flow_type_rss_offloads != 0 && is_pci_address(pc->device)) {
		conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
		conf.rx_adv_conf.rss_conf.rss_key = p->rss_key;
		conf.rx_adv_conf.rss_conf.rss_key_len = WP_RSS_KEY_LEN;
		conf.rx_adv_conf.rss_conf.rss_hf =
		        info.flow_type_rss_offloads &
		        (RTE_ETH_RSS_NONFRAG_IPV4_TCP | RTE_ETH_RSS_NONFRAG_IPV4_UDP |
		         RTE_ETH_RSS_IPV4);
		p->rss = true;
	}
	mtu = device_mtu(pc, idx, &info, p->name, err, errlen);
	if (mtu < 0)
		return mtu;
	conf.rxmode.mtu = (uint32_t)mtu;
	rc = cksum_offloads(pc, idx, &info, p, &conf, err, errlen);
	if (rc == 0)
		rc = tso_offload(pc, idx, &info, p, &conf, err, errlen);
	if (rc == 0)
		rc = lro_offload(pc, idx, &info, p, &conf, err, errlen);
	if (rc != 0)
		return rc;
	rc = rte_eth_dev_configure(p->port_id, nq, nq, &conf);
	if (rc != 0 && p->rss) {
		/* The device advertises RSS but refuses it (TAP without multiq): steer in software.
		 */
		conf.rxmode.mq_mode = RTE_ETH_MQ_RX_NONE;
		memset(&conf.rx_adv_conf, 0, sizeof(conf.rx_adv_conf));
		p->rss = false;
		rc = rte_eth_dev_configure(p->port_id, nq, nq, &conf);
	}
	if (rc != 0)
		goto fail;
	rc = rte_eth_dev_adjust_nb_rx_tx_desc(p->port_id, &rxd, &txd);
	if (rc != 0)
		goto fail;
	for (uint16_t q = 0; q < nq; q++) {
		int socket = rte_eth_dev_socket_id(p->port_id);

		rc = rte_eth_rx_queue_setup(p->port_id, q, rxd, socket < 0 ? 0 : (unsigned)socket,
		                            NULL, ports->pool[q]);
		if (rc != 0)
			goto fail;
		rc = rte_eth_tx_queue_setup(p->port_id, q, txd, socket < 0 ? 0 : (unsigned)socket,
		                            NULL);
		if (rc != 0)
			goto fail;
	}
	rc = rte_eth_dev_set_mtu(p->port_id, (uint16_t)mtu);
	if (rc != 0 && rc != -ENOTSUP)
		goto fail;
	rc = rte_eth_dev_start(p->port_id);
	if (rc != 0)
		goto fail;
	rte_eth_macaddr_get(p->port_id, &mac);
	memcpy(p->mac, mac.addr_bytes, 6);

	/* Hash -> queue map: the device's RETA when it hashes, else modulo. */
	p->reta_size = 0;
	if (p->rss && info.reta_size > 0 && info.reta_size <= WP_ARRAY_SIZE(p->reta)) {
		struct rte_eth_rss_reta_entry64
		        conf64[WP_ARRAY_SIZE(p->reta) / RTE_ETH_RETA_GROUP_SIZE];
		struct rte_eth_rss_conf rss = {.rss_key = p->rss_key,
		                               .rss_key_len = WP_RSS_KEY_LEN};

		memset(conf64, 0, sizeof(conf64));
		for (unsigned g = 0; g < info.reta_size / RTE_ETH_RETA_GROUP_SIZE; g++)
			conf64[g].mask = UINT64_MAX;
		if (rte_eth_dev_rss_reta_query(p->port_id, conf64, info.reta_size) == 0 &&
		    rte_eth_dev_rss_hash_conf_get(p->port_id, &rss) == 0) {
			for (unsigned i = 0; i < info.reta_size; i++)
				p->reta[i] = conf64[i / RTE_ETH_RETA_GROUP_SIZE]
				                     .reta[i % RTE_ETH_RETA_GROUP_SIZE];
			p->reta_size = info.reta_size;
		} else {
			p->rss = false; /* cannot predict the device: steer in software */
		}
	}
	ports->n = idx + 1;
	return 0;
fail:
	snprintf(err, errlen, "ports.[%u] %s: set-up failed: %s", idx, p->name, rte_strerror(-rc));
	return rc;
}

/*
 * One mbuf holds one frame (every frame is sent from one mbuf, and a frame
 * received in one buffer takes the short path; chains are for LRO): the
 * default 2 KiB data room up to an MTU of ~2,000, then room for the largest
 * port's frames (9000 -> 9,216 bytes), as OVS-DPDK sizes its pools by MTU.
 */
static uint16_t buf_size_for(const struct wp_config *cfg)
{
	uint32_t room = RTE_MBUF_DEFAULT_DATAROOM;

	for (unsigned i = 0; i < cfg->n_ports; i++) {
		/* Ethernet header, one VLAN tag, CRC; in 1 KiB steps */
		uint32_t frame = cfg->ports[i].mtu + RTE_ETHER_HDR_LEN + 4 + RTE_ETHER_CRC_LEN;

		room = WP_MAX(room, (frame + 1023) & ~1023u);
	}
	return (uint16_t)(RTE_PKTMBUF_HEADROOM + room);
}

/* A pool of 64 KiB mbufs per worker for the segments a TSO device cuts. */
static int tso_pools(const struct wp_config *cfg, struct wp_ports *ports, char *err, size_t errlen)
{
	for (unsigned w = 0; w < cfg->workers; w++) {
		char name[RTE_MEMPOOL_NAMESIZE];

		snprintf(name, sizeof(name), "wp_tso_%u", w);
		ports->tso_pool[w] = rte_pktmbuf_pool_create(name, WP_TSO_POOL_MBUFS, 16, 0,
		                                             UINT16_MAX, (int)rte_socket_id());
		if (ports->tso_pool[w] == NULL) {
			snprintf(err, errlen,
			         "cannot create %u TSO mbufs of 64 KiB for worker %u: %s (raise "
			         "eal.memory_mb, or set ports.[N].tso = \"off\")",
			         WP_TSO_POOL_MBUFS, w, rte_strerror(rte_errno));
			return -ENOMEM;
		}
	}
	return 0;
}

int wp_ports_start(const struct wp_config *cfg, struct wp_ports *ports, char *err, size_t errlen)
{
	uint16_t buf_size = buf_size_for(cfg);

	memset(ports, 0, sizeof(*ports));
	for (unsigned w = 0; w < cfg->workers; w++) {
		char name[RTE_MEMPOOL_NAMESIZE];

		snprintf(name, sizeof(name), "wp_mbuf_%u", w);
		ports->pool[w] = rte_pktmbuf_pool_create(name, cfg->mbufs_per_worker, 256, 0,
		                                         buf_size, (int)rte_socket_id());
		if (ports->pool[w] == NULL) {
			snprintf(err, errlen,
			         "cannot create %u mbufs of %u bytes for worker %u: %s (raise "
			         "eal.memory_mb, or lower mbufs_per_worker)",
			         cfg->mbufs_per_worker, buf_size, w, rte_strerror(rte_errno));
			return -ENOMEM;
		}
	}
	for (unsigned i = 0; i < cfg->n_ports; i++) {
		int rc = start_port(cfg, i, ports, err, errlen);
		if (rc != 0)
			return rc;
	}
	for (unsigned i = 0; i < cfg->n_ports; i++)
		if (ports->port[i].tso)
			return tso_pools(cfg, ports, err, errlen);
	return 0;
}

void wp_ports_stop(struct wp_ports *ports)
{
	for (unsigned i = 0; i < ports->n; i++) {
		rte_eth_dev_stop(ports->port[i].port_id);
		rte_eth_dev_close(ports->port[i].port_id);
	}
	ports->n = 0;
	for (unsigned w = 0; w < WP_MAX_WORKERS; w++) {
		rte_mempool_free(ports->pool[w]);
		ports->pool[w] = NULL;
		rte_mempool_free(ports->tso_pool[w]);
		ports->tso_pool[w] = NULL;
	}
}

unsigned wp_port_flow_owner(const struct wp_port *p, uint32_t src_ip, uint32_t dst_ip,
                            uint16_t src_port, uint16_t dst_port, unsigned n_workers)
{
	struct rte_ipv4_tuple t;
	uint32_t h;

	if (n_workers <= 1)
		return 0;
	t.src_addr = rte_be_to_cpu_32(src_ip);
	t.dst_addr = rte_be_to_cpu_32(dst_ip);
	t.sport = rte_be_to_cpu_16(src_port);
	t.dport = rte_be_to_cpu_16(dst_port);
	h = rte_softrss((uint32_t *)&t, RTE_THASH_V4_L4_LEN, p->rss_key);
	if (p->rss && p->reta_size)
		return p->reta[h % p->reta_size] % n_workers;
	return h % n_workers;
}
