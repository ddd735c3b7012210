#include "checkpoint/dump.h"
#include "cli/cli.h"
#include "cli/config.h"
#include "store/store.h"
#include "util/err.h"
#include "util/fmt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

int self_path(char *buf, size_t size)
{
	ssize_t n = readlink("/proc/self/exe", buf, size - 1);
	if (n < 0)
		return err_sys("cannot find the crstream binary (/proc/self/exe)");
	buf[n] = '\0';
	return 0;
}

void json_print_string(FILE *out, const char *s)
{
	fputc('"', out);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(out, "\\%c", *p);
		else if (*p < 0x20)
			fprintf(out, "\\u%04x", *p);
		else
			fputc(*p, out);
	}
	fputc('"', out);
}

void print_dump_summary(const struct dump_result *r)
{
	char img[32], stored[32];
	format_bytes(r->image_bytes, img, sizeof(img));
	format_bytes(r->stored_bytes, stored, sizeof(stored));
	printf("checkpoint %s\n", r->location);
	if (r->streams)
		printf("  %s of image in %d %s stream%s: %s stored (ratio %.2f)\n", img, r->streams,
		       r->compression, r->streams == 1 ? "" : "s", stored,
		       r->stored_bytes ? (double)r->image_bytes / (double)r->stored_bytes : 1.0);
	else
		printf("  %s of image, plain CRIU image directory\n", img);
	printf("  frozen %.0f ms, CRIU %llu ms, total %llu ms\n", (double)r->frozen_us / 1000.0,
	       (unsigned long long)r->criu_ms, (unsigned long long)r->dump_ms);
	if (r->encrypted || r->signed_manifest)
		printf("  %s%s%s\n", r->encrypted ? "streams encrypted with age" : "",
		       r->encrypted && r->signed_manifest ? ", " : "",
		       r->signed_manifest ? "manifest signed (manifest.json.sig)" : "");
}

int flag_list_add(struct flag_list *l, const char *v)
{
	if (!*v || strchr(v, ','))
		return err_set("\"%s\": a key or file name must be non-empty and without commas", v);
	size_t old = l->joined ? strlen(l->joined) : 0;
	char *p = realloc(l->joined, old + strlen(v) + 2);
	if (!p)
		return err_set("out of memory");
	sprintf(p + old, "%s%s", old ? "," : "", v);
	l->joined = p;
	l->n++;
	return 0;
}

void flag_list_free(struct flag_list *l)
{
	free(l->joined);
	l->joined = NULL;
	l->n = 0;
}

/* Peak RSS from /proc/self/status (VmHWM): getrusage's ru_maxrss carries
 * over exec() from whatever started us, and would report its peak. */
static long long peak_rss_bytes(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long long kb = -1;
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "VmHWM: %lld kB", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb < 0 ? -1 : kb * 1024;
}

void print_self_usage_json(FILE *out)
{
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru) < 0)
		return;
	double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
		     (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
	/* crstream's own cost, CRIU (a child) excluded. */
	fprintf(out, ",\"peak_rss_bytes\":%lld,\"cpu_seconds\":%.3f", peak_rss_bytes(), cpu);
}

int open_location(const char *location, struct config **cfg, struct store **s)
{
	*s = NULL;
	if (config_load(cfg) < 0)
		return -1;
	/* Static: the store keeps the pointer for its whole life, which ends
	 * with the command. */
	static struct store_options so;
	so.config = config_lookup;
	so.ctx = *cfg;
	return store_open(location, &so, s);
}

bool one_argument(int argc, char **argv, const char *usage, const char *help, int *status)
{
	if (argc == 3 && strcmp(argv[2], "-h") && strcmp(argv[2], "--help"))
		return true;
	if (argc == 3) {
		printf("Usage: %s\n\n%s", usage, help);
		*status = 0;
	} else {
		char cmd[64];
		snprintf(cmd, sizeof(cmd), "crstream %s", argv[1]);
		*status = usage_error(cmd, "usage: %s", usage);
	}
	return false;
}

int close_location(struct config *cfg, struct store *s, int rc)
{
	store_close(s);
	config_free(cfg);
	if (rc < 0) {
		err_print(NULL);
		return 1;
	}
	return 0;
}
