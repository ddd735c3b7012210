/* linkem: a constant one-way delay for the packets a network namespace
 * receives, for bench/remote.sh's emulated network.
 *
 *   linkem DELAY_US NS [NS...]
 *
 * In each network namespace NS (a name under /run/netns, made by `ip netns
 * add`) linkem binds netfilter queue 0 and lets every packet queued there go
 * on DELAY_US microseconds after it arrived. bench/remote.sh sends what
 * crosses its veth pair to that queue (iptables ... -i DEV -j NFQUEUE in the
 * INPUT chain of the receiving side) and limits the rate with tc tbf on each
 * veth's egress; linkem prints "ready" once every queue is bound.
 *
 * Why this and not netem: the kernel this was written on is built without
 * sch_netem (and without fq/etf). A netfilter queue holds the packets in
 * the kernel; linkem sees only their ids (copy mode "meta": no payload is
 * ever copied; the interface counters say how many bytes crossed) and
 * gives its verdicts in batches, so the delay costs a few small netlink
 * messages per 64 KiB segment, not the copies of a user-space packet
 * relay. Delaying at the receiver's INPUT hook, after the stack has
 * orphaned the packet from the sending socket, keeps TCP small queues on
 * the sender unaware of the delay, as on a real path.
 *
 * The delay is constant, so packets leave in the order they came: the
 * verdict "accept every id up to N" releases exactly those whose time has
 * come. SIGINT/SIGTERM end it with a one-line summary per namespace on
 * stderr; its exit unbinds the queues (packets then queue nowhere and are
 * dropped: the link is down, never silently undelayed). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <linux/netlink.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_NS 4
#define QUEUE_NUM 0
#define RING (1u << 16)		/* packets waiting per namespace */
#define KERNEL_QUEUE_MAX 65536	/* the kernel's queue length (default 1024) */
#define SOCK_BUF (16 << 20)	/* a full ring's worth of packet messages */

struct waiting {
	uint32_t id;
	uint64_t due_ns;
};

struct queue {
	const char *ns;
	int fd;
	struct waiting ring[RING];
	uint32_t head, tail;	/* ring[head..tail) wait, indices mod RING */
	uint64_t packets, early, peak;
};

static volatile sig_atomic_t stop;

static void on_stop(int sig)
{
	(void)sig;
	stop = 1;
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	int e = errno;
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "linkem: ");
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, ": %s\n", strerror(e));
	exit(1);
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- netlink messages ---- */

struct msg {
	union {
		struct nlmsghdr nh;
		unsigned char buf[256];
	};
};

static void msg_start(struct msg *m, uint16_t type, uint16_t flags)
{
	memset(m, 0, sizeof(*m));
	m->nh.nlmsg_len = NLMSG_LENGTH(sizeof(struct nfgenmsg));
	m->nh.nlmsg_type = (uint16_t)((NFNL_SUBSYS_QUEUE << 8) | type);
	m->nh.nlmsg_flags = (uint16_t)(NLM_F_REQUEST | flags);
	struct nfgenmsg *g = NLMSG_DATA(&m->nh);
	g->nfgen_family = AF_UNSPEC;
	g->version = NFNETLINK_V0;
	g->res_id = htons(QUEUE_NUM);
}

static void msg_attr(struct msg *m, uint16_t type, const void *data, size_t len)
{
	struct nlattr *a = (struct nlattr *)(m->buf + NLMSG_ALIGN(m->nh.nlmsg_len));
	a->nla_type = type;
	a->nla_len = (uint16_t)(NLA_HDRLEN + len);
	memcpy((unsigned char *)a + NLA_HDRLEN, data, len);
	m->nh.nlmsg_len = NLMSG_ALIGN(m->nh.nlmsg_len) + NLA_ALIGN(a->nla_len);
}

static void msg_send(const struct queue *q, const struct msg *m)
{
	struct sockaddr_nl to = {.nl_family = AF_NETLINK};
	if (sendto(q->fd, m->buf, m->nh.nlmsg_len, 0, (struct sockaddr *)&to, sizeof(to)) < 0)
		die("netlink message to the queue in %s", q->ns);
}

/* Sends a configuration message and waits for its acknowledgement. */
static void configure(const struct queue *q, const struct msg *m, const char *what)
{
	msg_send(q, m);
	unsigned char buf[4096];
	for (;;) {
		ssize_t n = recv(q->fd, buf, sizeof(buf), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("%s: no answer", what);
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n);
		     h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_type != NLMSG_ERROR)
				continue;
			const struct nlmsgerr *e = NLMSG_DATA(h);
			if (e->error == 0)
				return;
			errno = -e->error;
			die("%s", what);
		}
	}
}

/* Queue 0 of namespace q->ns, bound to a socket opened inside it. */
static void bind_queue(struct queue *q)
{
	char path[256];
	snprintf(path, sizeof(path), "/run/netns/%s", q->ns);
	int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	int target = open(path, O_RDONLY | O_CLOEXEC);
	if (self < 0 || target < 0)
		die("opening %s", target < 0 ? path : "/proc/self/ns/net");
	if (setns(target, CLONE_NEWNET) < 0)
		die("entering %s", path);
	q->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
	if (q->fd < 0)
		die("netfilter netlink socket in %s", q->ns);
	if (setns(self, CLONE_NEWNET) < 0)
		die("returning from %s", path);
	close(self);
	close(target);
	int size = SOCK_BUF;
	if (setsockopt(q->fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0)
		die("socket buffer in %s", q->ns);
	struct sockaddr_nl me = {.nl_family = AF_NETLINK};
	if (bind(q->fd, (struct sockaddr *)&me, sizeof(me)) < 0)
		die("binding the netlink socket in %s", q->ns);

	struct msg m;
	struct nfqnl_msg_config_cmd cmd = {.command = NFQNL_CFG_CMD_BIND, .pf = htons(AF_INET)};
	msg_start(&m, NFQNL_MSG_CONFIG, NLM_F_ACK);
	msg_attr(&m, NFQA_CFG_CMD, &cmd, sizeof(cmd));
	configure(q, &m, "binding queue 0 (is another linkem running?)");
	/* Only ids and lengths come up (no payload); GSO segments stay
	 * whole; a long queue for a long delay at a high rate. */
	struct nfqnl_msg_config_params params = {.copy_range = htonl(0),
						 .copy_mode = NFQNL_COPY_META};
	uint32_t maxlen = htonl(KERNEL_QUEUE_MAX), flags = htonl(NFQA_CFG_F_GSO);
	msg_start(&m, NFQNL_MSG_CONFIG, NLM_F_ACK);
	msg_attr(&m, NFQA_CFG_PARAMS, &params, sizeof(params));
	msg_attr(&m, NFQA_CFG_QUEUE_MAXLEN, &maxlen, sizeof(maxlen));
	msg_attr(&m, NFQA_CFG_FLAGS, &flags, sizeof(flags));
	msg_attr(&m, NFQA_CFG_MASK, &flags, sizeof(flags));
	configure(q, &m, "configuring queue 0");
}

/* Accept every queued packet with an id up to and including id. */
static void release_upto(const struct queue *q, uint32_t id)
{
	struct msg m;
	struct nfqnl_msg_verdict_hdr v = {.verdict = htonl(NF_ACCEPT), .id = htonl(id)};
	msg_start(&m, NFQNL_MSG_VERDICT_BATCH, 0);
	msg_attr(&m, NFQA_VERDICT_HDR, &v, sizeof(v));
	msg_send(q, &m);
}

/* One packet message: its id into the ring, due after the delay. */
static void on_packet(struct queue *q, const struct nlmsghdr *h, uint64_t due_ns)
{
	const unsigned char *p = (const unsigned char *)NLMSG_DATA(h) + NLMSG_ALIGN(sizeof(struct nfgenmsg));
	const unsigned char *end = (const unsigned char *)h + h->nlmsg_len;
	bool have_id = false;
	uint32_t id = 0;
	while (p + NLA_HDRLEN <= end) {
		const struct nlattr *a = (const struct nlattr *)p;
		if (a->nla_len < NLA_HDRLEN || p + a->nla_len > end)
			break;
		const unsigned char *data = p + NLA_HDRLEN;
		switch (a->nla_type & NLA_TYPE_MASK) {
		case NFQA_PACKET_HDR: {
			struct nfqnl_msg_packet_hdr ph;
			memcpy(&ph, data, sizeof(ph));
			id = ntohl(ph.packet_id);
			have_id = true;
			break;
		}
		}
		p += NLA_ALIGN(a->nla_len);
	}
	if (!have_id)
		return;
	q->packets++;
	if (q->tail - q->head == RING) {
		/* Ring full: let the oldest go now rather than lose anything. */
		release_upto(q, q->ring[q->head % RING].id);
		q->head++;
		q->early++;
	}
	q->ring[q->tail % RING] = (struct waiting){id, due_ns};
	q->tail++;
	if (q->tail - q->head > q->peak)
		q->peak = q->tail - q->head;
}

static void take_in(struct queue *q, uint64_t delay_ns)
{
	static unsigned char buf[65536];
	for (;;) {
		ssize_t n = recv(q->fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n < 0 && errno == ENOBUFS) {
			/* The kernel dropped messages (and with them packets,
			 * which TCP will resend): say so, go on. */
			fprintf(stderr, "linkem: %s: netlink receive buffer overrun\n", q->ns);
			continue;
		}
		if (n < 0)
			die("receiving from the queue in %s", q->ns);
		uint64_t due = now_ns() + delay_ns;
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n);
		     h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_type == ((NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET))
				on_packet(q, h, due);
		}
	}
}

/* Releases what is due; returns when the next packet is (UINT64_MAX: none). */
static uint64_t release_due(struct queue *q)
{
	uint64_t now = now_ns();
	bool any = false;
	uint32_t last = 0;
	while (q->head != q->tail && q->ring[q->head % RING].due_ns <= now) {
		last = q->ring[q->head % RING].id;
		q->head++;
		any = true;
	}
	if (any)
		release_upto(q, last);
	return q->head != q->tail ? q->ring[q->head % RING].due_ns : UINT64_MAX;
}

int main(int argc, char **argv)
{
	if (argc < 3 || argc - 2 > MAX_NS) {
		fprintf(stderr, "usage: linkem DELAY_US NS [NS...] (at most %d namespaces)\n", MAX_NS);
		return 2;
	}
	char *end;
	unsigned long long delay_us = strtoull(argv[1], &end, 10);
	if (*end || end == argv[1] || delay_us > 10000000) {
		fprintf(stderr, "linkem: delay must be 0..10000000 microseconds, not %s\n", argv[1]);
		return 2;
	}
	int n = argc - 2;
	static struct queue qs[MAX_NS];
	for (int i = 0; i < n; i++) {
		qs[i].ns = argv[i + 2];
		bind_queue(&qs[i]);
	}

	sigset_t block, none;
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigemptyset(&none);
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	/* Signals are taken only inside ppoll(), never between the check of
	 * `stop` and the wait. */
	sigprocmask(SIG_BLOCK, &block, NULL);

	printf("ready\n");
	fflush(stdout);
	uint64_t delay_ns = (uint64_t)delay_us * 1000;
	struct pollfd pfd[MAX_NS];
	while (!stop) {
		uint64_t next = UINT64_MAX;
		for (int i = 0; i < n; i++) {
			uint64_t due = release_due(&qs[i]);
			if (due < next)
				next = due;
			pfd[i] = (struct pollfd){qs[i].fd, POLLIN, 0};
		}
		struct timespec ts, *timeout = NULL;
		if (next != UINT64_MAX) {
			uint64_t now = now_ns();
			uint64_t wait = next > now ? next - now : 0;
			ts.tv_sec = (time_t)(wait / 1000000000u);
			ts.tv_nsec = (long)(wait % 1000000000u);
			timeout = &ts;
		}
		int ready = ppoll(pfd, (nfds_t)n, timeout, &none);
		if (ready < 0 && errno != EINTR)
			die("%s", "ppoll");
		for (int i = 0; ready > 0 && i < n; i++)
			if (pfd[i].revents & POLLIN)
				take_in(&qs[i], delay_ns);
	}
	for (int i = 0; i < n; i++)
		fprintf(stderr,
			"linkem: %s: %llu packets delayed, %llu let go early (ring full), "
			"at most %llu waiting\n",
			qs[i].ns, (unsigned long long)qs[i].packets,
			(unsigned long long)qs[i].early, (unsigned long long)qs[i].peak);
	return 0;
}
