/* The age v1 file format as a restore reads an encrypted stream: the
 * header parser (age_header_parse), the stanza and MAC checks
 * (age_header_open) with a test identity, and the whole file through the
 * decrypting reader (age_reader: STREAM chunks, tags, the final chunk).
 *
 * Input: an options byte (how the reader is fed and read), then an age
 * file. The seeds are files Debian's `age` encrypted to the test identity
 * below, so mutations start from headers that open and payloads that
 * decrypt. Mutations: libFuzzer's, and one time in eight a line repeated
 * (long stanza bodies, many stanzas).
 *
 * Properties: a failure says why; a parsed header ends with its MAC line,
 * and every shorter prefix of it asks for more input (the reader feeds the
 * parser as the bytes arrive: a prefix refused as invalid would refuse a
 * valid file read in small pieces); age_reader accepts exactly the headers
 * the parser and age_header_open accept, followed by the payload's 16-byte
 * nonce; what the reader returns and whether it fails do not depend on how
 * the input is chunked or how much the caller reads at a time; a read
 * error sticks; a read never returns more than asked. */
#include "fuzz.h"
#include "fuzz_mutate.h"
#include "crypt/crypt_impl.h"
#include "util/stream.h"

#include <fcntl.h>
#include <sys/stat.h>

/* A test-only identity (age-keygen); its recipient is
 * age1t0j9rafcucas7htch6dp3mdpcn9x42r4gpd42ay0f9kra3wq83rqa9dpx6. */
static const char test_identity[] =
	"# created: 2026-12-01T18:32:31Z\n"
	"# public key: age1t0j9rafcucas7htch6dp3mdpcn9x42r4gpd42ay0f9kra3wq83rqa9dpx6\n"
	"AGE-SECRET-KEY-1L9HPQYL5YGVD88E2FCEQTPFS6QYXU8PLQ7XM69KFAA46JRNLMLHQGQUZQN\n";

#define OUT_CAP ((size_t)4 << 20)

static struct age_identities *ids;

/* The identity goes through the real key-file loader once: a private file
 * in a private directory, removed at once. */
static void load_identity(void)
{
	char dir[] = "/tmp/fuzz-age.XXXXXX", path[64];
	FUZZ_CHECK(mkdtemp(dir), "mkdtemp");
	snprintf(path, sizeof(path), "%s/id.txt", dir);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	FUZZ_CHECK(fd >= 0, "creating %s", path);
	FUZZ_CHECK(write(fd, test_identity, sizeof(test_identity) - 1) ==
			   (ssize_t)sizeof(test_identity) - 1, "writing %s", path);
	close(fd);
	ids = age_identities_new();
	FUZZ_CHECK(ids && age_identities_add_file(ids, path) == 0, "identity: %s", err_msg());
	unlink(path);
	rmdir(dir);
}

/* Decrypts data through age_reader over a reader returning at most chunk
 * bytes a call, reading cap bytes at a time. Returns 0 on success, -2 if
 * the header was refused, -1 if the payload was; the plaintext (up to
 * OUT_CAP) in out. */
static int decrypt(const uint8_t *data, size_t size, size_t chunk, size_t cap, uint8_t *out,
		   size_t *outlen)
{
	*outlen = 0;
	struct reader *src = mem_reader(data, size, chunk);
	FUZZ_CHECK(src, "mem_reader");
	err_clear();
	struct reader *r = age_reader(src, ids);
	if (!r) {
		fuzz_failed_with_message("age_reader");
		reader_close(src);
		return -2;
	}
	static uint8_t buf[(size_t)1 << 17];
	int rc = 0;
	for (;;) {
		ssize_t n = reader_read(r, buf, cap);
		if (n < 0) {
			fuzz_failed_with_message("age_reader read");
			FUZZ_CHECK(reader_read(r, buf, cap) < 0, "a read error did not stick");
			rc = -1;
			break;
		}
		FUZZ_CHECK((size_t)n <= cap, "read %zd bytes, asked for %zu", n, cap);
		if (n == 0)
			break;
		size_t keep = *outlen + (size_t)n > OUT_CAP ? OUT_CAP - *outlen : (size_t)n;
		memcpy(out + *outlen, buf, keep);
		*outlen += keep;
		if (*outlen == OUT_CAP)
			break;
	}
	reader_close(r);
	return rc;
}

/* The parser on its own; returns its verdict, and the header's length. */
static int check_header(const uint8_t *data, size_t size, bool *opened, size_t *hlen)
{
	struct age_header h;
	*opened = false;
	*hlen = 0;
	err_clear();
	int rc = age_header_parse(data, size, &h);
	FUZZ_CHECK(rc >= -1 && rc <= 1, "age_header_parse returned %d", rc);
	if (rc < 0)
		fuzz_failed_with_message("age_header_parse");
	if (rc == 1)
		FUZZ_CHECK(size < AGE_HEADER_MAX, "asks for more than the header limit");
	if (rc != 0)
		return rc;
	FUZZ_CHECK(h.len <= size && h.len > 0 && data[h.len - 1] == '\n',
		   "header of %zu bytes in %zu, not ending a line", h.len, size);
	FUZZ_CHECK(h.mac_covered < h.len, "the MAC covers %zu of %zu bytes", h.mac_covered, h.len);
	FUZZ_CHECK(h.nstanzas >= 1 && h.nstanzas <= AGE_MAX_STANZAS, "%d stanzas", h.nstanzas);
	*hlen = h.len;
	/* Every shorter prefix asks for more (long headers: a sample). */
	size_t step = h.len <= 1024 ? 1 : h.len / 256;
	for (size_t cut = 0; cut < h.len; cut += step) {
		struct age_header p;
		err_clear();
		int prc = age_header_parse(data, cut, &p);
		FUZZ_CHECK(prc == 1, "a %zu-byte prefix of a %zu-byte header: %d (%s)", cut, h.len,
			   prc, err_msg());
	}
	uint8_t file_key[AGE_FILE_KEY_LEN];
	err_clear();
	if (age_header_open(&h, data, age_identities_keys(ids), age_identities_count(ids),
			    file_key) == 0)
		*opened = true;
	else
		fuzz_failed_with_message("age_header_open");
	wipe(file_key, sizeof(file_key));
	age_header_free(&h);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!ids)
		load_identity();
	if (size < 1)
		return 0;
	static const size_t chunks[] = {1, 7, 64, 4096, 65536 + 16, 65536 + 17, 200000, 0};
	static const size_t caps[] = {1, 7, 4096, 65536, 65537, (size_t)1 << 17, 1000, 100};
	uint8_t opt = data[0];
	data++, size--;

	bool opened;
	size_t hlen;
	int hrc = check_header(data, size, &opened, &hlen);
	/* The reader opens the header and takes the payload's nonce. */
	bool header_ok = hrc == 0 && opened && size - hlen >= AGE_NONCE_LEN;

	static uint8_t *a, *b;
	if (!a) {
		a = malloc(OUT_CAP);
		b = malloc(OUT_CAP);
		FUZZ_CHECK(a && b, "out of memory");
	}
	size_t alen, blen;
	int ra = decrypt(data, size, 0, (size_t)1 << 17, a, &alen);
	FUZZ_CHECK((ra != -2) == header_ok,
		   "age_reader %s the header, the parser said %d, opened %d, %zu bytes after it",
		   ra == -2 ? "refused" : "accepted", hrc, opened, size - hlen);
	if (ra == -2)
		return 0;
	/* Byte-sized pieces of a 64 KiB file cost 100,000 calls: those
	 * only for small inputs, which reach the same boundaries. */
	size_t chunk = chunks[opt & 7], cap = caps[(opt >> 3) & 7];
	if (size > 8192 && chunk && chunk < 4096)
		chunk += 4093;
	if (size > 8192 && cap < 4096)
		cap += 4093;
	int rb = decrypt(data, size, chunk, cap, b, &blen);
	FUZZ_CHECK(ra == rb, "verdict %d read whole, %d in pieces (chunk %zu, cap %zu)", ra, rb,
		   chunk, cap);
	if (ra == 0)
		FUZZ_CHECK(alen == blen && !memcmp(a, b, alen),
			   "plaintext differs read whole and in pieces (%zu vs %zu bytes)", alen, blen);
	return 0;
}

/* One time in eight, a line (from after the options byte) repeated 8 to
 * 200 times where it was: a stanza body of many full 64-column lines, or
 * many stanzas, in one step; the rest libFuzzer's own mutations. */
static size_t repeat_line(uint8_t *data, size_t size, size_t max)
{
	if (size < 2)
		return size;
	size_t at = 1 + fuzz_rand(size - 1), start = at, end;
	while (start > 1 && data[start - 1] != '\n')
		start--;
	const uint8_t *lf = memchr(data + at, '\n', size - at);
	if (!lf)
		return size;
	end = (size_t)(lf - data) + 1;
	size_t len = end - start, copies = 8 + fuzz_rand(193);
	if (len * copies > max - size)
		copies = (max - size) / len;
	if (copies == 0)
		return size;
	memmove(data + end + len * copies, data + end, size - end);
	for (size_t i = 1; i <= copies; i++)
		memcpy(data + start + i * len, data + start, len);
	return size + len * copies;
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned seed)
{
	fuzz_rng_seed(seed);
	if (fuzz_rand(8) == 0)
		return repeat_line(data, size, max_size);
	return LLVMFuzzerMutate(data, size, max_size);
}
