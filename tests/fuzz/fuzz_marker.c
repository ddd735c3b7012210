/* Shard marker decoding: one marker body (the bytes after a record's u32
 * length) from a shard that anyone may have written.
 *
 * Property: a marker that decodes re-encodes (marker_encode) into a record
 * that decodes to the same marker.
 *
 * Mutations: three in four are made on the protobuf fields (fuzz_mutate.h),
 * the others by libFuzzer on the bytes. */
#include "fuzz.h"
#include "fuzz_mutate.h"
#include "shard/marker.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* The reader never hands over a body at or above the limit. */
	if (size >= MARKER_MAX_LEN)
		return -1;
	struct marker m;
	err_clear();
	if (marker_decode(data, size, &m) < 0) {
		fuzz_failed_with_message("marker_decode");
		return 0;
	}
	FUZZ_CHECK(m.kind == MARKER_FILENAME ? m.name[0] != '\0' : m.name[0] == '\0',
		   "kind %s with name \"%s\"", marker_kind_name(m.kind), m.name);

	static uint8_t record[MARKER_RECORD_MAX];
	int len = marker_encode(&m, record);
	FUZZ_CHECK(len >= 4 && (size_t)len <= MARKER_RECORD_MAX, "marker_encode returned %d: %s",
		   len, err_msg());
	FUZZ_CHECK(le32_load(record) == (uint32_t)len - 4, "length prefix %u for a %d-byte record",
		   le32_load(record), len);
	struct marker again;
	FUZZ_CHECK(marker_decode(record + 4, (size_t)len - 4, &again) == 0,
		   "re-encoded marker does not decode: %s", err_msg());
	FUZZ_CHECK(again.kind == m.kind && again.seq == m.seq && again.data_len == m.data_len &&
			   strcmp(again.name, m.name) == 0,
		   "re-encoded %s marker seq %llu decodes as %s seq %llu", marker_kind_name(m.kind),
		   (unsigned long long)m.seq, marker_kind_name(again.kind),
		   (unsigned long long)again.seq);
	return 0;
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned seed)
{
	fuzz_rng_seed(seed);
	if (fuzz_rand(4)) {
		size_t n = pb_mutate(data, size, max_size, 0);
		if (n)
			return n;
	}
	return LLVMFuzzerMutate(data, size, max_size);
}
