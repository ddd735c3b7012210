#include "shard/marker.h"
#include "util/err.h"
#include "marker.pb-c.h"

#include <string.h>

int marker_encode(const struct marker *m, uint8_t *out)
{
	Crs__Marker pb = CRS__MARKER__INIT;
	pb.seq = m->seq;
	switch (m->kind) {
	case MARKER_FILENAME:
		if (strlen(m->name) > MARKER_NAME_MAX)
			return err_set("file name longer than %u bytes: %.64s...",
				       MARKER_NAME_MAX, m->name);
		pb.body_case = CRS__MARKER__BODY_FILENAME;
		pb.filename = (char *)m->name;
		break;
	case MARKER_FILE_DATA:
		pb.body_case = CRS__MARKER__BODY_FILE_DATA;
		pb.file_data = m->data_len;
		break;
	case MARKER_FILE_EOF:
		pb.body_case = CRS__MARKER__BODY_FILE_EOF;
		pb.file_eof = 1;
		break;
	case MARKER_IMAGE_EOF:
		pb.body_case = CRS__MARKER__BODY_IMAGE_EOF;
		pb.image_eof = 1;
		break;
	}
	size_t len = crs__marker__get_packed_size(&pb);
	if (len >= MARKER_MAX_LEN)
		return err_set("marker of %zu bytes is too large", len);
	crs__marker__pack(&pb, out + 4);
	le32_store(out, (uint32_t)len);
	return (int)(4 + len);
}

int marker_decode(const uint8_t *buf, size_t len, struct marker *m)
{
	Crs__Marker *pb = crs__marker__unpack(NULL, len, buf);
	if (!pb)
		return err_set("malformed marker (%zu bytes do not decode as a marker)", len);
	int rc = 0;
	m->seq = pb->seq;
	m->data_len = 0;
	m->name[0] = '\0';
	switch (pb->body_case) {
	case CRS__MARKER__BODY_FILENAME:
		m->kind = MARKER_FILENAME;
		if (!pb->filename || !pb->filename[0])
			rc = err_set("malformed marker (seq %llu): empty file name",
				     (unsigned long long)pb->seq);
		else if (strlen(pb->filename) > MARKER_NAME_MAX)
			rc = err_set("malformed marker (seq %llu): file name longer than %u bytes",
				     (unsigned long long)pb->seq, MARKER_NAME_MAX);
		else
			strcpy(m->name, pb->filename);
		break;
	case CRS__MARKER__BODY_FILE_DATA:
		m->kind = MARKER_FILE_DATA;
		m->data_len = pb->file_data;
		break;
	case CRS__MARKER__BODY_FILE_EOF:
		m->kind = MARKER_FILE_EOF;
		if (!pb->file_eof)
			rc = err_set("malformed marker (seq %llu): file_eof=false",
				     (unsigned long long)pb->seq);
		break;
	case CRS__MARKER__BODY_IMAGE_EOF:
		m->kind = MARKER_IMAGE_EOF;
		if (!pb->image_eof)
			rc = err_set("malformed marker (seq %llu): image_eof=false",
				     (unsigned long long)pb->seq);
		break;
	default:
		rc = err_set("malformed marker (seq %llu): no body",
			     (unsigned long long)pb->seq);
		break;
	}
	crs__marker__free_unpacked(pb, NULL);
	return rc;
}

const char *marker_kind_name(enum marker_kind kind)
{
	switch (kind) {
	case MARKER_FILENAME:
		return "filename";
	case MARKER_FILE_DATA:
		return "file_data";
	case MARKER_FILE_EOF:
		return "file_eof";
	case MARKER_IMAGE_EOF:
		return "image_eof";
	}
	return "?";
}
