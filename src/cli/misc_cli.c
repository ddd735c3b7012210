/* `crstream config show` and `crstream inspect CHECKPOINT`. */
#include "checkpoint/layout.h"
#include "checkpoint/manifest.h"
#include "checkpoint/protect.h"
#include "cli/cli.h"
#include "cli/config.h"
#include "util/err.h"
#include "util/fmt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cmd_config(int argc, char **argv)
{
	bool show = argc >= 3 && !strcmp(argv[2], "show");
	const char *arg = argc > 3 ? argv[3] : argc == 3 && !show ? argv[2] : NULL;
	if (arg && (!strcmp(arg, "--help") || !strcmp(arg, "-h"))) {
		printf("Usage: crstream config show\n\n"
		       "Prints every configuration key, its effective value and where it\n"
		       "comes from: default < file (%s, or $CRSTREAM_CONFIG) <\n"
		       "environment (CRSTREAM_<SECTION>_<KEY>) < command-line flags.\n"
		       "Secrets are masked.\n\n"
		       "Options:\n"
		       "  -h, --help              this help\n\n"
		       "Exit status: 0 on success, 1 if the configuration is invalid, 2 on misuse.\n",
		       CONFIG_DEFAULT_PATH);
		return 0;
	}
	if (!show || arg)
		return usage_error("crstream config", "use `crstream config show`");
	struct config *cfg;
	if (config_load(&cfg) < 0) {
		err_print(NULL);
		return 1;
	}
	config_show(cfg, stdout);
	config_free(cfg);
	return 0;
}

static void show_protection(const struct manifest *m, const char *trust)
{
	const struct manifest_protection *p = &m->prot;
	if (p->encryption[0]) {
		printf("encryption:  %s, to", p->encryption);
		for (char **r = p->recipients; r && *r; r++)
			printf(" %s", ESCAPED(*r));
		printf("\n");
	} else {
		printf("encryption:  none\n");
	}
	printf("signature:   %s\n", ESCAPED(trust));
	if (p->digest_algorithm[0])
		printf("digests:     %s of every %llu bytes of each stream\n", ESCAPED(p->digest_algorithm),
		       (unsigned long long)p->chunk_size);
}

static void show_manifest(const struct manifest *m, const char *trust)
{
	char img[32], stored[32];
	uint64_t stored_bytes = 0;
	for (int i = 0; m->stream && i < m->streams; i++)
		stored_bytes += m->stream[i].stored_bytes;
	format_bytes(m->image_bytes, img, sizeof(img));
	format_bytes(stored_bytes, stored, sizeof(stored));
	/* Every string here is the checkpoint writer's: escaped. */
	printf("status:      %s%s%s\n", m->complete ? "complete" : "INCOMPLETE",
	       m->error ? ": " : "", m->error ? ESCAPED(m->error) : "");
	printf("streams:     %d (%s, level %d)\n", m->streams, ESCAPED(m->compression), m->level);
	printf("image:       %s in %zu files; stored %s\n", img, m->nfiles, stored);
	printf("process:     pid %d on %s (%s)\n", m->pid, m->hostname ? ESCAPED(m->hostname) : "?",
	       m->kernel ? ESCAPED(m->kernel) : "?");
	printf("dumped:      %s .. %s, frozen %.1f ms, CRIU %s, crstream %s\n",
	       ESCAPED(m->started_at), m->finished_at[0] ? ESCAPED(m->finished_at) : "?",
	       (double)m->frozen_us / 1000.0, m->criu_version ? ESCAPED(m->criu_version) : "?",
	       m->tool_version ? ESCAPED(m->tool_version) : "?");
	show_protection(m, trust);
	for (int i = 0; m->stream && i < m->streams; i++)
		printf("stream:      %-12s %12llu bytes (raw %llu)  xxh128 %s\n",
		       ESCAPED(m->stream[i].file), (unsigned long long)m->stream[i].stored_bytes,
		       (unsigned long long)m->stream[i].raw_bytes, m->stream[i].checksum);
	for (size_t i = 0; i < m->nfiles; i++)
		printf("file:        %-24s %12llu bytes\n", ESCAPED(m->files[i].name),
		       (unsigned long long)m->files[i].size);
}

int cmd_inspect(int argc, char **argv)
{
	static const struct location_cmd inspect = {
		.name = "inspect",
		.usage = "crstream inspect CHECKPOINT",
		.help = "Lists a checkpoint's manifest, streams and image files, or for a\n"
			"checkpoint without manifest the streams found and their layout.\n",
		.option = "path",
		.metavar = "CHECKPOINT",
	};
	const char *loc;
	int status = location_args(argc, argv, &inspect, &loc);
	if (status >= 0)
		return status;
	struct config *cfg = NULL;
	struct store *s = NULL;
	void *json = NULL;
	size_t len;
	int rc = open_location(loc, &cfg, &s);
	if (rc == 0)
		rc = s->ops->get(s, MANIFEST_NAME, &json, &len);
	if (rc == 0) {
		struct manifest m;
		char trust[ERR_MAX + 64];
		rc = protect_inspect(s, config_get(cfg, "restore.trusted_keys"), json, len, trust,
				     sizeof(trust));
		if (rc == 0)
			rc = manifest_parse(json, &m) < 0 ? err_prefix("%s", loc) : 0;
		if (rc == 0) {
			printf("checkpoint:  %s\n", ESCAPED(loc));
			show_manifest(&m, trust);
			manifest_free(&m);
		}
	} else if (rc == 1) {
		struct layout lay;
		rc = layout_detect(s, loc, &lay);
		if (rc == 0) {
			printf("checkpoint:  %s\n", ESCAPED(loc));
			printf("status:      no manifest; %s layout\n", lay.kind);
			printf("streams:     %d (%s%s)\n", lay.streams, lay.codec->name,
			       lay.encrypted ? ", encrypted with age" : "");
			printf("signature:   unsigned checkpoint\n");
			for (int i = 0; i < lay.streams; i++)
				printf("stream:      %s\n", ESCAPED(lay.files[i]));
			layout_free(&lay);
		}
	}
	free(json);
	return close_location(cfg, s, rc);
}
