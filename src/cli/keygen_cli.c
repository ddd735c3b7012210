/* `crstream keygen [--sign] --output FILE` */
#include "cli/cli.h"
#include "crypt/crypt.h"
#include "util/err.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

static const char keygen_usage[] =
	"Usage: crstream keygen [--sign] --output FILE\n"
	"\n"
	"Makes a key pair for trusted checkpoints. FILE is created private (0600)\n"
	"and never overwritten.\n"
	"\n"
	"Without --sign: an age identity (AGE-SECRET-KEY-1..., as age-keygen\n"
	"writes it) in FILE; its recipient (age1...) is printed. Dump with\n"
	"`--recipient age1...`, restore with `--identity FILE`; stock `age -r`\n"
	"and `age -d -i FILE` work with both.\n"
	"With --sign: an Ed25519 signing key in OpenSSH's format in FILE and its\n"
	"public half in FILE.pub (printed). Dump with `--sign-key FILE`, restore\n"
	"with `--trusted-key FILE.pub`; `ssh-keygen -Y verify` checks the\n"
	"signatures (see `man crstream-keygen`).\n"
	"\n"
	"Options:\n"
	"  -o, --output FILE   where the secret key goes\n"
	"  -s, --sign          make a signing key instead of an encryption identity\n"
	"  -h, --help          this help\n"
	"\n"
	"Exit status: 0 when the key was written, 1 on failure, 2 on misuse.\n";

static const struct option opts[] = {
	{"output", required_argument, NULL, 'o'},
	{"sign", no_argument, NULL, 's'},
	{"help", no_argument, NULL, 'h'},
	{NULL, 0, NULL, 0},
};

int cmd_keygen(int argc, char **argv)
{
	const char *output = NULL;
	bool sign = false;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "o:sh", opts, NULL)) != -1) {
		switch (c) {
		case 'o': output = optarg; break;
		case 's': sign = true; break;
		case 'h': fputs(keygen_usage, stdout); return 0;
		default: return EXIT_USAGE;
		}
	}
	if (optind + 1 < argc)	/* argv[1] is "keygen" */
		return usage_error("crstream keygen", "unexpected argument \"%s\"", argv[optind + 1]);
	if (!output || !*output)
		return usage_error("crstream keygen", "--output FILE is required");
	const struct crypt_ops *ops = crypt_load("crstream keygen");
	char pub[512];
	if (!ops || (sign ? ops->keygen_sign(output, pub, sizeof(pub))
			  : ops->keygen_age(output, pub, sizeof(pub))) < 0) {
		err_print(NULL);
		return 1;
	}
	printf("%s\n", pub);
	return 0;
}
