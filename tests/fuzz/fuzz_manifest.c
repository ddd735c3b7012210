/* The manifest parser: manifest.json as restore, inspect and ls read it
 * from a checkpoint anyone may have written.
 *
 * Properties: a failure has a message; what parses serialises
 * (manifest_to_json) into a manifest that parses to the same values, so
 * that no field the parser accepted is lost or changed on the way back. */
#include "fuzz.h"
#include "checkpoint/manifest.h"

static bool same_str(const char *a, const char *b)
{
	/* The writer leaves out empty strings: NULL and "" are the same. */
	return strcmp(a ? a : "", b ? b : "") == 0;
}

static void check_same(const struct manifest *a, const struct manifest *b)
{
	FUZZ_CHECK(a->complete == b->complete && a->streams == b->streams &&
			   a->level == b->level && a->pid == b->pid && a->nfiles == b->nfiles &&
			   a->image_bytes == b->image_bytes && a->frozen_us == b->frozen_us &&
			   a->dump_ms == b->dump_ms && a->shell_job == b->shell_job &&
			   a->tcp_established == b->tcp_established,
		   "a scalar field changed on the round trip");
	FUZZ_CHECK(same_str(a->compression, b->compression) && same_str(a->error, b->error) &&
			   same_str(a->name, b->name) && same_str(a->hostname, b->hostname) &&
			   same_str(a->kernel, b->kernel) &&
			   same_str(a->criu_version, b->criu_version) &&
			   same_str(a->tool_version, b->tool_version) &&
			   same_str(a->started_at, b->started_at) &&
			   same_str(a->finished_at, b->finished_at),
		   "a string field changed on the round trip");
	FUZZ_CHECK(!a->stream == !b->stream, "stream_files appeared or vanished");
	for (int i = 0; a->stream && i < a->streams; i++)
		FUZZ_CHECK(!strcmp(a->stream[i].file, b->stream[i].file) &&
				   a->stream[i].stored_bytes == b->stream[i].stored_bytes &&
				   a->stream[i].raw_bytes == b->stream[i].raw_bytes &&
				   !strcmp(a->stream[i].checksum, b->stream[i].checksum),
			   "stream_files[%d] changed on the round trip", i);
	for (size_t i = 0; i < a->nfiles; i++)
		FUZZ_CHECK(!strcmp(a->files[i].name, b->files[i].name) &&
				   a->files[i].size == b->files[i].size &&
				   !strcmp(a->files[i].checksum, b->files[i].checksum),
			   "files[%zu] changed on the round trip", i);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *json = fuzz_cstr(data, size);
	struct manifest m;
	err_clear();
	if (manifest_parse(json, &m) < 0) {
		fuzz_failed_with_message("manifest_parse");
		free(json);
		return 0;
	}
	char *again = manifest_to_json(&m);
	FUZZ_CHECK(again, "manifest_to_json: %s", err_msg());
	struct manifest m2;
	FUZZ_CHECK(manifest_parse(again, &m2) == 0, "the serialised manifest does not parse: %s",
		   err_msg());
	check_same(&m, &m2);
	manifest_free(&m2);
	manifest_free(&m);
	free(again);
	free(json);
	return 0;
}
