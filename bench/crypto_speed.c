/* Single-core throughput of the trusted-checkpoint filters, through the
 * same writer/reader API the streams use (1 MiB writes and reads over
 * memory): age encryption and decryption (ChaCha20-Poly1305, 64 KiB
 * chunks), chunk digests written and verified; and the candidate digests
 * on their own (SHA-256, SHA-512, BLAKE2b-512 through OpenSSL's EVP), the
 * numbers behind DIGEST_ALGO. MB/s are 10^6 bytes per second of this
 * thread's CPU time; best of N.
 *
 *   make -f bench/Makefile.crypto && build/bench/crypto_speed [MiB [reps]]
 * defaults: 256 MiB, best of 3. */
#include "bench_data.h"
#include "bench_sink.h"

#include "crypt/crypt_impl.h"
#include "util/err.h"
#include "util/stream.h"

#include <openssl/evp.h>
#include <unistd.h>

#define IO_SIZE ((size_t)1 << 20)

static void fail(const char *what)
{
	fprintf(stderr, "crypto_speed: %s: %s\n", what, err_msg());
	exit(1);
}

static double cpu_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double write_all(struct writer *w, const unsigned char *data, size_t len, double t)
{
	if (!w)
		fail("filter");
	for (size_t off = 0; off < len; off += IO_SIZE)
		if (writer_write(w, data + off, len - off < IO_SIZE ? len - off : IO_SIZE) < 0)
			fail("write");
	if (writer_close(w) < 0)
		fail("close");
	return cpu_now() - t;
}

static double read_all(struct reader *r, unsigned char *out, size_t expect, double t)
{
	if (!r)
		fail("filter");
	size_t total = 0;
	for (;;) {
		ssize_t n = reader_read(r, out, IO_SIZE);
		if (n < 0)
			fail("read");
		if (n == 0)
			break;
		total += (size_t)n;
	}
	reader_close(r);
	if (total != expect) {
		fprintf(stderr, "crypto_speed: read %zu bytes, not %zu\n", total, expect);
		exit(1);
	}
	return cpu_now() - t;
}

static double evp_digest(const char *name, const unsigned char *data, size_t len)
{
	EVP_MD *md = EVP_MD_fetch(NULL, name, NULL);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char out[64];
	double t = cpu_now();
	if (!md || !ctx || EVP_DigestInit_ex2(ctx, md, NULL) != 1)
		fail(name);
	for (size_t off = 0; off < len; off += IO_SIZE)
		EVP_DigestUpdate(ctx, data + off, len - off < IO_SIZE ? len - off : IO_SIZE);
	EVP_DigestFinal_ex(ctx, out, NULL);
	t = cpu_now() - t;
	EVP_MD_CTX_free(ctx);
	EVP_MD_free(md);
	return t;
}

static void row(const char *what, size_t len, double best)
{
	printf("| %-44s | %8.0f |\n", what, (double)len / best / 1e6);
	fflush(stdout);
}

#define BEST(var, expr)                                  \
	do {                                             \
		var = 1e9;                               \
		for (int i_ = 0; i_ < reps; i_++) {      \
			double t_ = (expr);              \
			var = t_ < var ? t_ : var;       \
		}                                        \
	} while (0)

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 256;
	int reps = argc > 2 ? atoi(argv[2]) : 3;
	size_t len = mib << 20;
	unsigned char *data = malloc(len), *out = malloc(IO_SIZE);
	struct blob_writer sink = {{&blob_ops, NULL, 0}, NULL, 0, len + len / 100 + (1u << 20)};
	sink.data = malloc(sink.cap);
	char dir[] = "/tmp/crypto_speed.XXXXXX", id[64], rec[128];
	if (!data || !out || !sink.data || !mkdtemp(dir))
		fail("setup");
	/* Random-looking data: what reaches the crypto filters is compressed. */
	uint64_t s = 42;
	for (size_t i = 0; i + 8 <= len; i += 8) {
		uint64_t r = bench_rand(&s);
		memcpy(data + i, &r, 8);
	}
	snprintf(id, sizeof(id), "%s/id.txt", dir);
	struct age_recipients *r = age_recipients_new();
	struct age_identities *ids = age_identities_new();
	if (age_keygen(id, rec, sizeof(rec)) < 0 || age_recipients_add(r, rec) < 0 ||
	    age_identities_add_file(ids, id) < 0)
		fail("keys");
	unlink(id);
	rmdir(dir);

	printf("%zu MiB of random bytes, best of %d, 1 MiB writes/reads, one thread, MB/s of CPU time\n\n",
	       mib, reps);
	printf("| %-44s | %8s |\n", "what", "MB/s");
	printf("|----------------------------------------------|---------:|\n");
	double t;
	BEST(t, (sink.len = 0, write_all(age_writer(&sink.w, r), data, len, cpu_now())));
	row("age encrypt (ChaCha20-Poly1305, 64 KiB chunks)", len, t);
	BEST(t, read_all(age_reader(mem_reader(sink.data, sink.len, 0), ids), out, len, cpu_now()));
	row("age decrypt", len, t);
	struct chunk_digests d = {0};
	BEST(t, (sink.len = 0, chunk_digests_free(&d),
		 write_all(digest_writer(&sink.w, &d), data, len, cpu_now())));
	row("chunk digests, written (SHA-256 per 4 MiB)", len, t);
	BEST(t, read_all(verify_reader(mem_reader(sink.data, sink.len, 0), &d), out, len, cpu_now()));
	row("chunk digests, verified (chunk held, then read)", len, t);
	BEST(t, evp_digest("SHA256", data, len));
	row("EVP SHA-256", len, t);
	BEST(t, evp_digest("SHA512", data, len));
	row("EVP SHA-512", len, t);
	BEST(t, evp_digest("BLAKE2B-512", data, len));
	row("EVP BLAKE2b-512", len, t);
	chunk_digests_free(&d);
	age_recipients_free(r);
	age_identities_free(ids);
	free(sink.data);
	free(out);
	free(data);
	return 0;
}
