/* `crstream extract --path CHECKPOINT -D DIR`: the checkpoint-reading form
 * of extract (the shard form is criu-image-streamer's, in streamer_cli.c). */
#include "checkpoint/unpack.h"
#include "cli/cli.h"
#include "cli/config.h"
#include "util/err.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

static const char unpack_usage[] =
	"Usage: crstream extract --path CHECKPOINT --images-dir DIR [options]\n"
	"\n"
	"Writes a stored checkpoint's CRIU image files into DIR (created; it must\n"
	"not exist), as `criu dump` without streaming writes them. Encrypted\n"
	"checkpoints are decrypted; under a trust policy every chunk is verified\n"
	"before any of its bytes is written. On failure DIR is removed again.\n"
	"(`crstream extract` without --path reads shards: see crstream extract -h.)\n"
	"\n"
	"Options:\n"
	"  -p, --path CHECKPOINT   DIR/NAME, s3://bucket/prefix/NAME or gs://...\n"
	"  -D, --images-dir DIR    where the image files go\n"
	"  -i, --identity FILE     age identity file (repeatable) [restore.identities]\n"
	"      --trusted-key FILE  accept only a checkpoint signed by this key\n"
	"                          (repeatable)                  [restore.trusted_keys]\n"
	"      --json              print the result as JSON on stdout\n"
	"  -h, --help              this help\n"
	"\n"
	"Exit status: 0 when every file was written and checked, 1 on failure,\n"
	"2 on misuse.\n";

enum { O_TRUSTED = 1000, O_JSON };

static const struct option opts[] = {
	{"path", required_argument, NULL, 'p'},
	{"images-dir", required_argument, NULL, 'D'},
	{"identity", required_argument, NULL, 'i'},
	{"trusted-key", required_argument, NULL, O_TRUSTED},
	{"json", no_argument, NULL, O_JSON},
	{"help", no_argument, NULL, 'h'},
	{NULL, 0, NULL, 0},
};

bool extract_wants_checkpoint(int argc, char **argv)
{
	for (int i = 2; i < argc; i++)
		if (!strcmp(argv[i], "--path") || !strncmp(argv[i], "--path=", 7) ||
		    !strcmp(argv[i], "-p"))
			return true;
	return false;
}

static int parse(int argc, char **argv, struct config *cfg, struct unpack_opts *o, bool *json)
{
	struct flag_list ids = {0}, trusted = {0};
	int c, rc = 0;
	optind = 1;
	while (rc == 0 && (c = getopt_long(argc, argv, "p:D:i:h", opts, NULL)) != -1) {
		switch (c) {
		case 'p': o->path = optarg; break;
		case 'D': o->dir = optarg; break;
		case 'i': rc = flag_list_add(&ids, optarg); break;
		case O_TRUSTED: rc = flag_list_add(&trusted, optarg); break;
		case O_JSON: *json = true; break;
		case 'h': fputs(unpack_usage, stdout); rc = 1; break;
		default: rc = EXIT_USAGE; break;
		}
	}
	if (rc == 0 && ids.n)
		rc = config_set_flag(cfg, "restore.identities", ids.joined);
	if (rc == 0 && trusted.n)
		rc = config_set_flag(cfg, "restore.trusted_keys", trusted.joined);
	flag_list_free(&ids);
	flag_list_free(&trusted);
	if (rc < 0)
		return usage_error("crstream extract", "%s", err_msg());
	if (rc)
		return rc;
	if (optind + 1 < argc)	/* argv[1] is "extract" */
		return usage_error("crstream extract", "unexpected argument \"%s\"", argv[optind + 1]);
	if (!o->path || !o->dir)
		return usage_error("crstream extract", "--path CHECKPOINT and --images-dir DIR are required");
	return 0;
}

int cmd_extract_checkpoint(int argc, char **argv)
{
	struct unpack_opts o = {0};
	struct unpack_result r = {0};
	struct config *cfg = NULL;
	bool json = false;
	if (config_load(&cfg) < 0) {
		err_print(NULL);
		return 1;
	}
	int rc = parse(argc, argv, cfg, &o, &json);
	if (rc) {
		config_free(cfg);
		return rc == 1 ? 0 : rc;
	}
	struct store_options so = {.config = config_lookup, .ctx = cfg};
	o.store_opt = &so;
	o.identities = config_get(cfg, "restore.identities");
	o.trusted_keys = config_get(cfg, "restore.trusted_keys");
	rc = checkpoint_unpack(&o, &r);
	if (json) {
		printf("{\"status\":\"%s\",\"checkpoint\":", rc < 0 ? "error" : "ok");
		json_print_string(stdout, o.path);
		printf(",\"images_dir\":");
		json_print_string(stdout, o.dir);
		if (rc < 0) {
			printf(",\"error\":");
			json_print_string(stdout, err_msg());
		}
		printf(",\"files\":%llu,\"bytes\":%llu,\"trust\":", (unsigned long long)r.files,
		       (unsigned long long)r.bytes);
		json_print_string(stdout, r.trust);
		printf("}\n");
	} else if (rc < 0) {
		err_print(NULL);
	} else {
		printf("extracted %s into %s: %llu files, %llu bytes; %s\n", o.path, o.dir,
		       (unsigned long long)r.files, (unsigned long long)r.bytes, r.trust);
	}
	config_free(cfg);
	return rc < 0 ? 1 : 0;
}
