/* The CRIU request reader: what arrives on the streamer socket, as capture
 * and serve read it (criu_read_request, then criu_recv_pipe for the file's
 * pipe), over a real socketpair.
 *
 * Input: one options byte (bit 0: the reader is serve, which expects the
 * write end of CRIU's pipe; else capture, which expects the read end), then
 * chunks, each a tag byte and a u16 little-endian length:
 *   tag % 4 == 0  the next `length` bytes, written to the socket as they are
 *   tag % 4 == 1  a 1-byte message carrying fds: (length % 7) picks a
 *                 pipe's read end, its write end, a regular file, a socket,
 *                 no fd at all, both ends of a pipe, or three fds
 *   otherwise     the input is over
 *
 * Properties: a request the reader accepts is a non-empty name without
 * '/' that fits its buffer; a pipe it accepts is a pipe of the right
 * direction; every failure has a message; no fd leaks (each run ends with
 * as many open fds as it started with).
 *
 * Mutations: three in four work on the chunks (a request's protobuf fields
 * with both lengths kept right, chunks repeated, dropped or swapped, the
 * kind of fd passed, the options), the others are libFuzzer's. */
#include "fuzz.h"
#include "fuzz_mutate.h"
#include "criu/criu_socket.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>

#define WANT_WRITE_END 1

static int count_fds(void)
{
	int n = 0;
	DIR *d = opendir("/proc/self/fd");
	FUZZ_CHECK(d, "opendir /proc/self/fd");
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* Sends one byte carrying the fds (none if n is 0). False when the socket
 * would block: each message with fds is its own skb, so a few hundred of
 * them fill the send buffer however small they are, and the reader then sees
 * the stream end there, as after a short data write. */
static bool send_fds(int sock, const int *fds, int n)
{
	char byte = 0;
	struct iovec iov = {.iov_base = &byte, .iov_len = 1};
	union {
		char buf[CMSG_SPACE(3 * sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
	if (n > 0) {
		msg.msg_control = ctl.buf;
		msg.msg_controllen = CMSG_SPACE((size_t)n * sizeof(int));
		struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN((size_t)n * sizeof(int));
		memcpy(CMSG_DATA(c), fds, (size_t)n * sizeof(int));
	}
	ssize_t sent = sendmsg(sock, &msg, MSG_DONTWAIT);
	FUZZ_CHECK(sent == 1 || errno == EAGAIN || errno == ETOOMANYREFS, "sendmsg: %s",
		   strerror(errno));
	return sent == 1;
}

/* Sends a message with the fds the chunk asks for (kind % 7): a pipe's
 * read end, its write end, a regular file, a socket, none, both ends of a
 * pipe at once, or three fds (more than the receiver has room for). */
static bool send_kind(int sock, unsigned kind)
{
	int p[3] = {-1, -1, -1}, n = 1;
	switch (kind % 7) {
	case 0:
	case 1:
	case 5:
		FUZZ_CHECK(pipe2(p, O_CLOEXEC) == 0, "pipe");
		if (kind % 7 == 1) {
			int t = p[0];
			p[0] = p[1];
			p[1] = t;
		}
		n = kind % 7 == 5 ? 2 : 1;
		break;
	case 2:
		p[0] = fuzz_memfd("file", "", 0);
		p[1] = -1;
		break;
	case 3:
		FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p) == 0, "socketpair");
		break;
	case 6:
		FUZZ_CHECK(pipe2(p, O_CLOEXEC) == 0, "pipe");
		p[2] = fuzz_memfd("file", "", 0);
		n = 3;
		break;
	default:
		n = 0;
	}
	bool sent = send_fds(sock, p, n);
	for (int i = 0; i < 3; i++)
		if (p[i] >= 0)
			close(p[i]);
	return sent;
}

/* Writes the chunks into the socket; stops where the socket buffer would
 * block (the reader then sees the stream end there). */
static void feed(int sock, const uint8_t *data, size_t size)
{
	while (size >= 3) {
		uint8_t tag = data[0];
		size_t len = (size_t)data[1] | (size_t)data[2] << 8;
		data += 3;
		size -= 3;
		if (tag % 4 == 0) {
			if (len > size)
				len = size;
			ssize_t n = len ? send(sock, data, len, MSG_DONTWAIT) : 0;
			if (n < (ssize_t)len)
				return;
			data += len;
			size -= len;
		} else if (tag % 4 == 1) {
			if (!send_kind(sock, (unsigned)len))
				return;
		} else {
			return;
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return -1;
	bool serve = data[0] & WANT_WRITE_END;
	int fds_before = count_fds();
	int sv[2];
	FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
	feed(sv[1], data + 1, size - 1);
	close(sv[1]);

	char name[CRIU_NAME_MAX + 1];	/* as capture and serve have it */
	for (;;) {
		err_clear();
		memset(name, 0xAA, sizeof(name));
		int rc = criu_read_request(sv[0], name, sizeof(name));
		if (rc < 0)
			fuzz_failed_with_message("criu_read_request");
		if (rc <= 0)
			break;
		size_t len = strnlen(name, sizeof(name));
		FUZZ_CHECK(len > 0 && len < sizeof(name) && !strchr(name, '/'),
			   "accepted request name \"%.*s\"", (int)len, name);
		err_clear();
		int fd = criu_recv_pipe(sv[0], !serve);
		if (fd < 0) {
			fuzz_failed_with_message("criu_recv_pipe");
			break;
		}
		struct stat st;
		FUZZ_CHECK(fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode), "accepted fd is not a pipe");
		int mode = fcntl(fd, F_GETFL) & O_ACCMODE;
		FUZZ_CHECK(mode == (serve ? O_WRONLY : O_RDONLY), "accepted the wrong end of a pipe");
		FUZZ_CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC, "received fd is not close-on-exec");
		close(fd);
	}
	close(sv[0]);
	FUZZ_CHECK(count_fds() == fds_before, "fds leaked: %d before, %d after", fds_before,
		   count_fds());
	return 0;
}

/* ---- structure-aware mutation: the input as a list of chunks ---- */

#define MAX_CHUNKS 256

struct chunk {
	uint8_t tag;
	const uint8_t *p;	/* data chunks: the bytes written */
	size_t len;		/* data chunks: their count; fd chunks: the kind */
};

static int parse_chunks(const uint8_t *data, size_t size, struct chunk *c)
{
	int n = 0;
	while (size >= 3 && n < MAX_CHUNKS) {
		size_t len = (size_t)data[1] | (size_t)data[2] << 8;
		c[n].tag = data[0];
		c[n].p = data + 3;
		c[n].len = len;
		if (data[0] % 4 == 0 && len > size - 3)
			c[n].len = len = size - 3;
		if (data[0] % 4 != 0)
			len = 0;
		data += 3 + len;
		size -= 3 + len;
		n++;
	}
	return n;
}

/* A data chunk that is one request: [u32 length][message]. Mutates the
 * message and keeps both lengths right. */
static bool mutate_request(struct chunk *c, uint8_t *store, size_t cap)
{
	if (c->tag % 4 != 0 || c->len < 4)
		return false;
	uint32_t len;
	memcpy(&len, c->p, 4);
	if (len != c->len - 4 || c->len > cap)
		return false;
	memcpy(store, c->p, c->len);
	size_t m = pb_mutate(store + 4, len, cap - 4 < 0xffff - 4 ? cap - 4 : 0xffff - 4, 0);
	if (!m)
		return false;
	len = (uint32_t)m;
	memcpy(store, &len, 4);
	c->p = store;
	c->len = 4 + m;
	return true;
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned seed)
{
	static uint8_t copy[1 << 16], store[1 << 16], out[1 << 17];
	static struct chunk c[MAX_CHUNKS + 1];
	fuzz_rng_seed(seed);
	if (size < 1 || size > sizeof(copy) || !fuzz_rand(4))
		return LLVMFuzzerMutate(data, size, max_size);
	memcpy(copy, data, size);
	uint8_t opts = copy[0];
	int n = parse_chunks(copy + 1, size - 1, c);
	int i = n ? (int)fuzz_rand((size_t)n) : 0;
	switch (n ? fuzz_rand(6) : 5) {
	case 0:
	case 1:
		if (!mutate_request(&c[i], store, sizeof(store)))
			return LLVMFuzzerMutate(data, size, max_size);
		break;
	case 2: /* a chunk repeated */
		memmove(&c[i + 1], &c[i], (size_t)(n - i) * sizeof(c[0]));
		n++;
		break;
	case 3: /* a chunk dropped, or two swapped */
		if (fuzz_rand(2)) {
			memmove(&c[i], &c[i + 1], (size_t)(n - i - 1) * sizeof(c[0]));
			n--;
		} else {
			struct chunk t = c[i];
			int j = (int)fuzz_rand((size_t)n);
			c[i] = c[j];
			c[j] = t;
		}
		break;
	case 4: /* another kind of chunk or fd */
		c[i].tag = (uint8_t)fuzz_rand(4);
		if (c[i].tag % 4 == 1)
			c[i].len = fuzz_rand(7);
		else if (c[i].tag % 4 == 0 && !c[i].p)
			c[i].len = 0;
		break;
	default:
		opts = (uint8_t)fuzz_rand(256);
		break;
	}
	size_t pos = 0;
	out[pos++] = opts;
	for (int k = 0; k < n; k++) {
		size_t body = c[k].tag % 4 == 0 ? c[k].len : 0;
		if (pos + 3 + body > sizeof(out) || pos + 3 + body > max_size)
			return LLVMFuzzerMutate(data, size, max_size);
		out[pos] = c[k].tag;
		out[pos + 1] = (uint8_t)c[k].len;
		out[pos + 2] = (uint8_t)(c[k].len >> 8);
		if (body)
			memcpy(out + pos + 3, c[k].p, body);
		pos += 3 + body;
	}
	memcpy(data, out, pos);
	return pos;
}
