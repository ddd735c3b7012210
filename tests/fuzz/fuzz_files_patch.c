/* files.img port patching (serve --tcp-listen-remap): CRIU's files image,
 * decoded entry by entry, listening TCP sockets' ports rewritten.
 *
 * Input: the remap list as given on the command line ("OLD:NEW,..."),
 * then FUZZ_SEPARATOR and the files.img bytes. Without a separator, the
 * whole input is the image and the remap is "1:2".
 *
 * Properties: a failure has a message; every parsed port is 1..65535; a
 * patched image is itself a valid files image, which an empty remap list
 * copies byte for byte. */
#include "fuzz.h"
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
