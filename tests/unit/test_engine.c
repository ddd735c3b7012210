/* The engines against a fake CRIU client speaking the socket protocol of
 * spec section 1 (requests, replies and pipes over SCM_RIGHTS), encoded by
 * hand. The real CRIU drives them in the integration tests; this covers the
 * protocol corners CRIU rarely hits. */
#include "unit.h"
#include "fixture.h"
#include "engine/engine.h"
#include "shard/shard_writer.h"
#include "util/err.h"
#include "util/fdio.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- the fake CRIU ---- */

static int criu_connect(const char *dir, const char *sock)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	snprintf(a.sun_path, sizeof(a.sun_path), "%s/%s", dir, sock);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	for (int i = 0; i < 500; i++) {
		if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0)
			return fd;
		usleep(10000);
	}
	perror("connect");
	exit(2);
}

/* u32 length (host order), then field 1 (string) of the request; false
 * if the engine has closed the connection already. */
static bool try_request(int sk, const char *name)
{
	unsigned char buf[256];
	size_t n = strlen(name);
	uint32_t len = (uint32_t)(2 + n);
	memcpy(buf, &len, 4);
	buf[4] = 0x0a;
	buf[5] = (unsigned char)n;
	memcpy(buf + 6, name, n);
	return send(sk, buf, 6 + n, MSG_NOSIGNAL) == (ssize_t)(6 + n);
}

static void send_request(int sk, const char *name)
{
	CHECK(try_request(sk, name));
}

/* Returns 1 for exists=true, 0 for false, -1 on a broken connection. */
static int read_reply(int sk)
{
	unsigned char buf[6];
	if (read_full(sk, buf, 6) != 6)
		return -1;
	uint32_t len;
	memcpy(&len, buf, 4);
	CHECK(len == 2 && buf[4] == 0x08);
	return buf[5];
}

static void send_fd(int sk, int fd)
{
	char byte = 0;
	struct iovec iov = {.iov_base = &byte, .iov_len = 1};
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
			     .msg_controllen = sizeof(ctl.buf)};
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	CHECK(sendmsg(sk, &msg, 0) == 1);
}

/* Restore side: ask for a file; on success returns the read end. */
static int fetch(int sk, const char *name, int *exists)
{
	send_request(sk, name);
	*exists = read_reply(sk);
	if (*exists != 1)
		return -1;
	int p[2];
	CHECK(pipe(p) == 0);
	send_fd(sk, p[1]);
	close(p[1]);
	return p[0];
}

static size_t slurp(int fd, unsigned char *buf, size_t cap)
{
	size_t n = 0;
	ssize_t r;
	while (n < cap && (r = read(fd, buf + n, cap - n)) > 0)
		n += (size_t)r;
	return n;
}

/* ---- running an engine in a thread ---- */

struct run {
	struct engine_opts o;
	struct shard_stat stats[4];
	struct engine_result res;
	int rc;
	char err[ERR_MAX];
	pthread_t th;
	int (*fn)(const struct engine_opts *, struct engine_result *);
};

static void *run_main(void *arg)
{
	struct run *r = arg;
	r->res.shards = r->stats;
	r->rc = r->fn(&r->o, &r->res);
	err_copy(r->err, sizeof(r->err));
	return NULL;
}

static void start(struct run *r)
{
	pthread_create(&r->th, NULL, run_main, r);
}

static int finish(struct run *r)
{
	pthread_join(r->th, NULL);
	if (r->rc < 0)
		err_set("%s", r->err);
	return r->rc;
}

static char *temp_dir(void)
{
	static char dirs[8][64];
	static int n;
	char *d = dirs[n++ % 8];
	strcpy(d, "/tmp/crstream-ut-XXXXXX");
	if (!mkdtemp(d)) {
		perror("mkdtemp");
		exit(2);
	}
	return d;
}

#define BIG_LEN (3u << 20)

/* An image of two small files and a 3 MiB one (more than a pipe holds, so
 * that CRIU closing early really cuts a transfer), in one regular-file
 * shard written by the shard writer (whose bytes test_shard checks). */
static int small_image(void)
{
	static unsigned char big[BIG_LEN];
	memset(big, 'B', sizeof(big));
	char path[] = "/tmp/crstream-ut-XXXXXX";
	int fd = mkstemp(path);
	unlink(path);
	struct shard_writer w;
	if (fd < 0 || shard_writer_init(&w, &fd, 1) < 0 ||
	    shard_writer_write(&w, "inventory.img", "INV", 3) < 0 ||
	    shard_writer_file_eof(&w, "inventory.img") < 0 ||
	    shard_writer_write(&w, "big.img", big, sizeof(big)) < 0 ||
	    shard_writer_file_eof(&w, "big.img") < 0 ||
	    shard_writer_write(&w, "files.img", "F", 1) < 0 ||
	    shard_writer_file_eof(&w, "files.img") < 0 || shard_writer_image_eof(&w) < 0) {
		fprintf(stderr, "building the test image: %s\n", err_msg());
		exit(2);
	}
	shard_writer_free(&w);
	lseek(fd, 0, SEEK_SET);
	return fd;
}

static void serve_setup(struct run *r, int *shard, const char *dir)
{
	memset(r, 0, sizeof(*r));
	engine_opts_init(&r->o);
	r->fn = engine_serve;
	r->o.images_dir = dir;
	r->o.shard_fds = shard;
	r->o.nshards = 1;
}

static void test_serve_files_and_absent(void)
{
	int shard = small_image();
	char *dir = temp_dir();
	struct run r;
	serve_setup(&r, &shard, dir);
	start(&r);
	int sk = criu_connect(dir, "streamer-serve.sock");
	int exists;
	static unsigned char buf[BIG_LEN + 1];
	int fd = fetch(sk, "inventory.img", &exists);
	CHECK(exists == 1);
	CHECK(slurp(fd, buf, sizeof(buf)) == 3 && !memcmp(buf, "INV", 3));
	close(fd);
	fd = fetch(sk, "nosuch.img", &exists);
	CHECK(exists == 0 && fd < 0);
	fd = fetch(sk, "big.img", &exists);
	CHECK(exists == 1);
	size_t n = slurp(fd, buf, sizeof(buf));
	CHECK(n == BIG_LEN && buf[0] == 'B' && buf[BIG_LEN - 1] == 'B');
	close(fd);
	close(sk);
	CHECK(finish(&r) == 0);
	CHECK(r.stats[0].bytes > BIG_LEN);
	close(shard);
}

/* CRIU closes some pipes before reading the whole file (nftables images):
 * serve drops the rest and carries on. */
static void test_serve_early_close(void)
{
	int shard = small_image();
	char *dir = temp_dir();
	struct run r;
	serve_setup(&r, &shard, dir);
	start(&r);
	int sk = criu_connect(dir, "streamer-serve.sock");
	int exists;
	unsigned char buf[16];
	int fd = fetch(sk, "big.img", &exists);
	CHECK(exists == 1);
	CHECK(read(fd, buf, sizeof(buf)) == sizeof(buf));
	close(fd);
	fd = fetch(sk, "files.img", &exists);
	CHECK(exists == 1 && slurp(fd, buf, sizeof(buf)) == 1 && buf[0] == 'F');
	close(fd);
	close(sk);
	CHECK(finish(&r) == 0);
	close(shard);
}

/* CRIU takes name whole, then asks for it again: serve refuses (what it
 * served is gone) and ends with that as its error. */
static void request_twice(int shard, const char *name)
{
	char *dir = temp_dir();
	struct run r;
	serve_setup(&r, &shard, dir);
	start(&r);
	int sk = criu_connect(dir, "streamer-serve.sock");
	int exists;
	unsigned char buf[16];
	int fd = fetch(sk, name, &exists);
	CHECK(exists == 1);
	slurp(fd, buf, sizeof(buf));
	close(fd);
	send_request(sk, name);
	CHECK(read_reply(sk) == -1);	/* serve gives up: the connection breaks */
	close(sk);
	CHECK(finish(&r) < 0);
}

static void test_serve_file_requested_twice(void)
{
	int shard = small_image();
	request_twice(shard, "inventory.img");
	CHECK_ERR("CRIU requested inventory.img twice; a streamed image file is served once");
	close(shard);
}

/* What CRIU 4.2.1 does for a private hugetlb mapping (zdtm's maps09): the
 * refusal says why no streamer could serve it. */
static void test_serve_pages_requested_twice_says_why(void)
{
	static struct fx f;
	memset(&f, 0, sizeof(f));
	fx_filename(&f, 0, "pages-4.img");
	fx_data(&f, 1, "PAGE", 4);
	fx_file_eof(&f, 2);
	fx_image_eof(&f, 3);
	int shard = fx_file(&f);
	request_twice(shard, "pages-4.img");
	CHECK_ERR("CRIU requested pages-4.img twice");
	CHECK_ERR("private hugetlb mappings, which it cannot restore from a stream");
	close(shard);
}

/* A corrupt image fails serve even while CRIU waits for an answer. */
static void test_serve_truncated_image(void)
{
	static struct fx f;
	memset(&f, 0, sizeof(f));
	fx_filename(&f, 0, "pages-1.img");
	fx_data(&f, 1, "0123456789", 10);
	f.len -= 5;
	int shard = fx_file(&f);
	char *dir = temp_dir();
	struct run r;
	serve_setup(&r, &shard, dir);
	start(&r);
	int sk = criu_connect(dir, "streamer-serve.sock");
	/* The engine may find the shard bad and hang up before the request
	 * is written: then the write fails. Either way no answer comes. */
	(void)try_request(sk, "inventory.img");
	CHECK(read_reply(sk) == -1);
	close(sk);
	CHECK(finish(&r) < 0);
	CHECK_ERR("pages-1.img");
	CHECK_ERR("truncated");
	close(shard);
}

/* With a tiny memory budget, data spills to a file and still arrives. */
static void test_serve_spill(void)
{
	int p[2];
	CHECK(pipe(p) == 0);
	int shard = small_image();
	/* Feed the shard through a pipe: a pipe cannot be referenced by
	 * offset, so data over the budget must go to the spill file. */
	static unsigned char img[BIG_LEN + 4096];
	ssize_t len = pread(shard, img, sizeof(img), 0);
	pid_t pid = fork();
	if (pid == 0) {
		close(p[0]);
		_exit(write_full(p[1], img, (size_t)len) < 0);
	}
	close(p[1]);
	char *dir = temp_dir();
	struct run r;
	serve_setup(&r, &p[0], dir);
	r.o.memory_limit = 4096;
	r.o.spill_dir = dir;
	start(&r);
	int sk = criu_connect(dir, "streamer-serve.sock");
	int exists;
	static unsigned char buf[BIG_LEN + 1];
	int fd = fetch(sk, "big.img", &exists);
	CHECK(exists == 1);
	size_t n = slurp(fd, buf, sizeof(buf));
	CHECK(n == BIG_LEN && buf[BIG_LEN / 2] == 'B');
	close(fd);
	close(sk);
	CHECK(finish(&r) == 0);
	CHECK(r.res.spilled >= BIG_LEN - 4096);
	CHECK(r.res.peak_buffered <= 4096);
	waitpid(pid, NULL, 0);
	close(p[0]);
	close(shard);
}

/* A child writing img into fd 4 KiB at a time (each write atomic), its
 * progress in *written (shared memory). */
static pid_t feed(int fd, const unsigned char *img, size_t len, uint64_t *written)
{
	pid_t pid = fork();
	if (pid == 0) {
		for (size_t off = 0; off < len; off += 4096) {
			size_t n = len - off < 4096 ? len - off : 4096;
			if (write_full(fd, img + off, n) < 0)
				_exit(1);
			__atomic_store_n(written, off + n, __ATOMIC_SEQ_CST);
		}
		_exit(0);
	}
	return pid;
}

/* The process is asleep in write(). */
static bool blocked_in_write(pid_t pid)
{
	char path[64], buf[64] = "";
	snprintf(path, sizeof(path), "/proc/%d/syscall", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return false;
	bool in_write = fgets(buf, sizeof(buf), f) && strncmp(buf, "1 ", 2) == 0;
	fclose(f);
	return in_write;
}

/* The budget is spent before CRIU asks for the file that fills it (CRIU
 * starts slowly, asks for small images first): the ingest then waits for
 * CRIU instead of spilling, which costs a copy to $TMPDIR and back. Here
 * the shard writer blocks with the budget full, and the file then arrives
 * whole. */
static void test_serve_waits_for_criu_instead_of_spilling(void)
{
	int shard = small_image();
	static unsigned char img[BIG_LEN + 4096];
	ssize_t len = pread(shard, img, sizeof(img), 0);
	const size_t budget = 1 << 20;
	uint64_t *written = mmap(NULL, sizeof(*written), PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	int p[2];
	if (len < (ssize_t)(2 * budget) || written == MAP_FAILED || pipe(p) < 0) {
		CHECK(!"test set-up");
		return;
	}
	pid_t pid = feed(p[1], img, (size_t)len, written);
	close(p[1]);
	char *dir = temp_dir();
	struct run r;
	serve_setup(&r, &p[0], dir);
	r.o.memory_limit = budget;
	r.o.spill_dir = dir;
	start(&r);
	int sk = criu_connect(dir, "streamer-serve.sock");
	/* The budget is spent (a buffer for inventory.img, the rest for
	 * big.img) and the ingest has stopped reading: the pipe stays full
	 * and the writer asleep in write() with more to send, look after
	 * look. (Spilling, the ingest would take everything past the budget
	 * into the spill file and the writer would finish.) A liveness guard
	 * of 60 s, not a timing check. */
	bool stopped = false;
	int capacity = fcntl(p[0], F_GETPIPE_SZ), still = 0;
	uint64_t last = 0;
	for (int i = 0; i < 6000 && !stopped; i++) {
		uint64_t sent = __atomic_load_n(written, __ATOMIC_SEQ_CST);
		int queued = pipe_queued(p[0]);
		bool full = queued > capacity - 4096 && sent < (uint64_t)len && blocked_in_write(pid);
		still = full && sent == last ? still + 1 : 0;
		last = sent;
		stopped = still >= 20;
		if (!stopped)
			usleep(10000);
	}
	CHECK(stopped);
	int exists;
	static unsigned char buf[BIG_LEN + 1];
	int fd = fetch(sk, "big.img", &exists);
	CHECK(exists == 1);
	CHECK(slurp(fd, buf, sizeof(buf)) == BIG_LEN && buf[0] == 'B' && buf[BIG_LEN - 1] == 'B');
	close(fd);
	/* The last file too, before CRIU goes (data nobody can read any more
	 * is spilled rather than waited for). */
	fd = fetch(sk, "files.img", &exists);
	CHECK(exists == 1 && slurp(fd, buf, sizeof(buf)) == 1 && buf[0] == 'F');
	close(fd);
	close(sk);
	CHECK(finish(&r) == 0);
	/* Spilling early would have cost all of big.img past the budget. Once
	 * CRIU reads, a stall of 200 ms with nothing read back may still spill
	 * an extent (a loaded machine), never that much. */
	CHECK(r.res.spilled < BIG_LEN - budget);
	CHECK(r.res.peak_buffered <= budget);
	waitpid(pid, NULL, 0);
	munmap(written, sizeof(*written));
	close(p[0]);
	close(shard);
}

static void test_socket_path_too_long(void)
{
	char dir[200];
	memset(dir, 'd', sizeof(dir));
	dir[0] = '/';
	strcpy(dir + 1, "tmp/");
	memset(dir + 5, 'x', 120);
	dir[125] = '\0';
	int fd = small_image();
	struct run r;
	serve_setup(&r, &fd, dir);
	CHECK(engine_serve(&r.o, &r.res) < 0);
	CHECK_ERR("socket path too long for a UNIX socket");
	CHECK_ERR("streamer-serve.sock");
	rmdir(dir);
	close(fd);
}

/* ---- capture ---- */

static void capture_setup(struct run *r, int *shards, int n, const char *dir)
{
	memset(r, 0, sizeof(*r));
	engine_opts_init(&r->o);
	r->fn = engine_capture;
	r->o.images_dir = dir;
	r->o.shard_fds = shards;
	r->o.nshards = n;
}

/* Dump side: announce a file and hand over the pipe's read end. */
static int offer(int sk, const char *name)
{
	send_request(sk, name);
	int p[2];
	CHECK(pipe(p) == 0);
	send_fd(sk, p[0]);
	close(p[0]);
	return p[1];
}

static void test_capture_then_extract(void)
{
	char *dir = temp_dir();
	int shards[2];
	for (int i = 0; i < 2; i++) {
		char path[] = "/tmp/crstream-ut-XXXXXX";
		shards[i] = mkstemp(path);
		unlink(path);
	}
	struct run r;
	capture_setup(&r, shards, 2, dir);
	start(&r);
	int sk = criu_connect(dir, "streamer-capture.sock");
	static unsigned char data[3 << 20];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (unsigned char)(i * 7 + i / 4096);
	int a = offer(sk, "pages-1.img");
	int b = offer(sk, "pagemap-1.img");
	CHECK(write_full(b, "PM", 2) == 0);
	CHECK(write_full(a, data, sizeof(data)) == 0);
	close(a);
	close(b);
	int c = offer(sk, "empty.img");
	close(c);
	close(sk);
	CHECK(finish(&r) == 0);
	CHECK(r.stats[0].bytes + r.stats[1].bytes > sizeof(data));
	CHECK(r.stats[0].bytes > 0 && r.stats[1].bytes > 0);

	char *out = temp_dir();
	struct run x;
	memset(&x, 0, sizeof(x));
	lseek(shards[0], 0, SEEK_SET);
	lseek(shards[1], 0, SEEK_SET);
	engine_opts_init(&x.o);
	x.o.images_dir = out;
	x.o.shard_fds = shards;
	x.o.nshards = 2;
	x.res.shards = x.stats;
	CHECK(engine_extract(&x.o, &x.res) == 0);
	char path[128];
	snprintf(path, sizeof(path), "%s/pages-1.img", out);
	int fd = open(path, O_RDONLY);
	static unsigned char back[3 << 20];
	CHECK(fd >= 0 && slurp(fd, back, sizeof(back)) == sizeof(data));
	CHECK(!memcmp(back, data, sizeof(data)));
	close(fd);
	snprintf(path, sizeof(path), "%s/empty.img", out);
	struct stat st;
	CHECK(stat(path, &st) == 0 && st.st_size == 0);
	close(shards[0]);
	close(shards[1]);
}

static void test_capture_same_file_twice(void)
{
	char *dir = temp_dir();
	char path[] = "/tmp/crstream-ut-XXXXXX";
	int shard = mkstemp(path);
	unlink(path);
	struct run r;
	capture_setup(&r, &shard, 1, dir);
	start(&r);
	int sk = criu_connect(dir, "streamer-capture.sock");
	int a = offer(sk, "core-1.img");
	close(a);
	usleep(50000);
	int b = offer(sk, "core-1.img");
	close(b);
	close(sk);
	CHECK(finish(&r) < 0);
	CHECK_ERR("core-1.img is sent twice");
	close(shard);
}

/* A shard consumer that goes away is reported, not a SIGPIPE death. */
static void test_capture_shard_consumer_gone(void)
{
	char *dir = temp_dir();
	int p[2];
	CHECK(pipe(p) == 0);
	close(p[0]);
	struct run r;
	capture_setup(&r, &p[1], 1, dir);
	start(&r);
	int sk = criu_connect(dir, "streamer-capture.sock");
	int a = offer(sk, "pages-1.img");
	(void)!write(a, "data", 4);
	close(a);
	close(sk);
	CHECK(finish(&r) < 0);
	CHECK_ERR("shard 0 (fd");
	CHECK_ERR("Broken pipe");
	close(p[1]);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	RUN(test_serve_files_and_absent);
	RUN(test_serve_early_close);
	RUN(test_serve_file_requested_twice);
	RUN(test_serve_pages_requested_twice_says_why);
	RUN(test_serve_truncated_image);
	RUN(test_serve_spill);
	RUN(test_serve_waits_for_criu_instead_of_spilling);
	RUN(test_socket_path_too_long);
	RUN(test_capture_then_extract);
	RUN(test_capture_same_file_twice);
	RUN(test_capture_shard_consumer_gone);
	return unit_done();
}
