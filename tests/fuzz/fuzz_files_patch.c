/* files.img port patching (serve --tcp-listen-remap): CRIU's files image,
 * decoded entry by entry, listening TCP sockets' ports rewritten.
 *
 * Input: the remap list as given on the command line ("OLD:NEW,..."),
 * then FUZZ_SEPARATOR and the files.img bytes. Without a separator, the
 * whole input is the image and the remap is "1:2".
 *
 * Properties: a failure has a message; every parsed port is 1..65535; a
 * patched image is itself a valid files image, which an empty remap list
 * copies byte for byte.
 *
 * Mutations: three in four work on the image's entries (an entry's
 * protobuf fields, nested socket fields included, with its length kept
 * right; entries repeated up to 32 times, dropped or swapped), the others
 * are libFuzzer's on the bytes. */
#include "fuzz.h"
#include "fuzz_mutate.h"
#include "criu/files_patch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_part parts[2];
	int n = fuzz_split(data, size, parts, 2);
	char *spec = n == 2 ? fuzz_cstr(parts[0].p, parts[0].len) : fuzz_cstr((const uint8_t *)"1:2", 3);
	const struct fuzz_part *img = &parts[n - 1];

	struct port_remap *remaps = NULL;
	int nremaps = 0;
	err_clear();
	if (parse_port_remaps(spec, &remaps, &nremaps) < 0) {
		fuzz_failed_with_message("parse_port_remaps");
		free(spec);
		return 0;
	}
	FUZZ_CHECK(nremaps >= 1, "%d remaps parsed", nremaps);
	for (int i = 0; i < nremaps; i++)
		FUZZ_CHECK(remaps[i].from && remaps[i].to, "port 0 accepted in \"%s\"", spec);

	uint8_t *out = NULL;
	size_t out_len = 0;
	err_clear();
	if (criu_patch_tcp_listen(img->p, img->len, remaps, nremaps, &out, &out_len) < 0) {
		fuzz_failed_with_message("criu_patch_tcp_listen");
	} else {
		uint8_t *same = NULL;
		size_t same_len = 0;
		FUZZ_CHECK(criu_patch_tcp_listen(out, out_len, NULL, 0, &same, &same_len) == 0,
			   "the patched image does not parse: %s", err_msg());
		FUZZ_CHECK(same_len == out_len && memcmp(same, out, out_len) == 0,
			   "an image without remaps is not copied byte for byte");
		free(same);
		free(out);
	}
	free(remaps);
	free(spec);
	return 0;
}

/* ---- structure-aware mutation: files.img as a list of entries ---- */

#define MAX_ENTRIES 4096

struct entry {
	const uint8_t *p;	/* the message, after its u32 length */
	size_t len;
};

static size_t mutate_image(const uint8_t *img, size_t len, uint8_t *out, size_t max)
{
	static struct entry e[MAX_ENTRIES + 32];
	static uint8_t store[1 << 16];
	if (len < 8 || max < 8)
		return 0;
	int n = 0;
	size_t pos = 8;
	while (len - pos >= 4 && n < MAX_ENTRIES) {
		uint32_t l;
		memcpy(&l, img + pos, 4);
		if (l > len - pos - 4)
			break;
		e[n++] = (struct entry){img + pos + 4, l};
		pos += 4 + l;
	}
	if (n == 0)
		return 0;
	int i = (int)fuzz_rand((size_t)n);
	switch (fuzz_rand(4)) {
	case 0:
	case 1: { /* an entry's fields, nested messages included */
		if (e[i].len > sizeof(store) / 2)
			return 0;
		memcpy(store, e[i].p, e[i].len);
		size_t m = pb_mutate(store, e[i].len, sizeof(store), 0);
		if (!m)
			return 0;
		e[i] = (struct entry){store, m};
		break;
	}
	case 2: { /* an entry repeated, up to 32 times */
		int k = 1 + (int)fuzz_rand(32);
		if (n + k > MAX_ENTRIES + 32)
			return 0;
		memmove(&e[i + k], &e[i], (size_t)(n - i) * sizeof(e[0]));
		for (int j = 1; j <= k; j++)
			e[i + j] = e[i];
		n += k;
		break;
	}
	default: /* an entry dropped, or two swapped */
		if (fuzz_rand(2)) {
			memmove(&e[i], &e[i + 1], (size_t)(n - i - 1) * sizeof(e[0]));
			n--;
		} else {
			struct entry t = e[i];
			int j = (int)fuzz_rand((size_t)n);
			e[i] = e[j];
			e[j] = t;
		}
	}
	size_t o = 8;
	memcpy(out, img, 8);
	for (int k = 0; k < n; k++) {
		if (o + 4 + e[k].len > max)
			return 0;
		uint32_t l = (uint32_t)e[k].len;
		memcpy(out + o, &l, 4);
		memcpy(out + o + 4, e[k].p, e[k].len);
		o += 4 + e[k].len;
	}
	/* Bytes after the last whole entry stay. */
	if (o + (len - pos) > max)
		return 0;
	memcpy(out + o, img + pos, len - pos);
	return o + (len - pos);
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned seed)
{
	static uint8_t copy[1 << 20], out[1 << 20];
	fuzz_rng_seed(seed);
	if (size > sizeof(copy) || !fuzz_rand(4))
		return LLVMFuzzerMutate(data, size, max_size);
	memcpy(copy, data, size);
	struct fuzz_part parts[2];
	int n = fuzz_split(copy, size, parts, 2);
	const struct fuzz_part *img = &parts[n - 1];
	size_t head = n == 2 ? (size_t)(img->p - copy) : 0;	/* the remaps and separator */
	size_t m = head < max_size ? mutate_image(img->p, img->len, out, max_size - head) : 0;
	if (!m)
		return LLVMFuzzerMutate(data, size, max_size);
	memcpy(data, copy, head);
	memcpy(data + head, out, m);
	return head + m;
}
