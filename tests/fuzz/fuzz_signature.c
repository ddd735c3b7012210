/* What a restore under a trust policy reads before anything else: the
 * manifest's SSHSIG signature (sshsig_verify: armor, the signature blob,
 * its public key, namespace and hash algorithm, the Ed25519 check) and a
 * stream's chunk-digest list (digests_parse), both from the checkpoint's
 * writable storage.
 *
 * Input: an options byte. Bit 0 clear: a chunk list; the next 4 bytes
 * give the stream's length (little-endian), bits 1-5 of the options the
 * chunk size (2^(15+n) bytes: some out of the accepted range), the rest is
 * the list. Bit 0 set: a message and an armored signature separated by
 * FUZZ_SEPARATOR, checked against the test key below. Seeds: lists
 * written by sha256sum over 4 MiB pieces, signatures made by
 * `ssh-keygen -Y sign -n crstream`.
 *
 * Properties: a failure says why; a parsed list has one digest per chunk
 * and formats back (digests_format) to the very text it came from (one
 * text per list: nothing else a signature covers can mean the same); a
 * verified signature names the signer by a SHA256: fingerprint, and the
 * verdict does not change when asked twice. */
#include "fuzz.h"
#include "crypt/crypt_impl.h"

static struct trusted_keys *trusted;

/* A test-only key pair (ssh-keygen -t ed25519); the signature seeds were
 * made with its secret half. */
static const char test_pub[] =
	"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJpa68TXdX8Ffy6Xsr8MgE9zim2cnLfjTy8uAUti0+u9 fuzz\n";

static void load_trusted(void)
{
	int fd = fuzz_memfd("trusted.pub", test_pub, sizeof(test_pub) - 1);
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	trusted = sshsig_trusted_new();
	FUZZ_CHECK(trusted && sshsig_trusted_add_file(trusted, path) == 0, "trusted key: %s",
		   err_msg());
	close(fd);
}

static void fuzz_digests(uint8_t opt, const uint8_t *data, size_t size)
{
	if (size < 4)
		return;
	uint64_t bytes = (uint64_t)data[0] | (uint64_t)data[1] << 8 | (uint64_t)data[2] << 16 |
			 (uint64_t)data[3] << 24;
	uint64_t chunk_size = (uint64_t)1 << (15 + ((opt >> 1) & 31));
	const char *text = (const char *)data + 4;
	size_t len = size - 4;
	struct chunk_digests d;
	err_clear();
	if (digests_parse(text, len, chunk_size, bytes, &d) < 0) {
		fuzz_failed_with_message("digests_parse");
		FUZZ_CHECK(!d.digest, "a refused list left its digests allocated");
		return;
	}
	FUZZ_CHECK(d.count == bytes / chunk_size + (bytes % chunk_size != 0) &&
			   d.bytes == bytes && d.chunk_size == chunk_size,
		   "%llu digests for %llu bytes in chunks of %llu", (unsigned long long)d.count,
		   (unsigned long long)bytes, (unsigned long long)chunk_size);
	size_t flen;
	char *again = digests_format(&d, &flen);
	FUZZ_CHECK(again, "digests_format: %s", err_msg());
	FUZZ_CHECK(flen == len && !memcmp(again, text, len),
		   "a parsed list formats to other text (%zu bytes, was %zu)", flen, len);
	free(again);
	chunk_digests_free(&d);
}

static void fuzz_sshsig(const uint8_t *data, size_t size)
{
	struct fuzz_part part[2];
	if (fuzz_split(data, size, part, 2) < 2)
		return;
	char signer[128], again[128];
	memset(signer, 0x5a, sizeof(signer));
	err_clear();
	int rc = sshsig_verify(trusted, part[0].p, part[0].len, (const char *)part[1].p,
			       part[1].len, signer, sizeof(signer));
	if (rc < 0) {
		fuzz_failed_with_message("sshsig_verify");
	} else {
		FUZZ_CHECK(memchr(signer, '\0', sizeof(signer)) && !strncmp(signer, "SHA256:", 7),
			   "a verified signature names no signer");
	}
	int rc2 = sshsig_verify(trusted, part[0].p, part[0].len, (const char *)part[1].p,
				part[1].len, again, sizeof(again));
	FUZZ_CHECK(rc == rc2, "verdicts %d then %d", rc, rc2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!trusted)
		load_trusted();
	if (size < 1)
		return 0;
	if (data[0] & 1)
		fuzz_sshsig(data + 1, size - 1);
	else
		fuzz_digests(data[0], data + 1, size - 1);
	return 0;
}
