/* Where the S3 backend takes its settings from, without a server:
 * environment before config keys before the ~/.aws profile, GCS keys,
 * endpoint/addressing defaults, tuning limits, the part-size growth rule. */
#include "store/s3.h"
#include "util/err.h"
#include "unit.h"

#include <stdio.h>
#include <unistd.h>

struct kv {
	const char *k, *v;
};

static const char *kv_config(void *ctx, const char *key)
{
	for (const struct kv *p = ctx; p && p->k; p++)
		if (strcmp(p->k, key) == 0)
			return p->v;
	return NULL;
}

static char dir[] = "/tmp/crstream-s3cfg-XXXXXX";
static char creds_path[256], config_path[256];

static void clear_env(void)
{
	static const char *vars[] = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
				     "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL",
				     "AWS_ENDPOINT_URL_S3", "AWS_PROFILE", "GCS_HMAC_ACCESS_ID",
				     "GCS_HMAC_SECRET"};
	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		unsetenv(vars[i]);
	setenv("AWS_SHARED_CREDENTIALS_FILE", creds_path, 1);
	setenv("AWS_CONFIG_FILE", config_path, 1);
}

static int load(struct s3_conf *c, const char *loc, struct kv *cfg)
{
	struct store_options opt = {kv_config, cfg};
	return s3_conf_load(c, loc, &opt);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	CHECK(f != NULL);
	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

static void test_location_and_defaults(void)
{
	struct s3_conf c;
	clear_env();
	setenv("AWS_ACCESS_KEY_ID", "AKID", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "SECRET", 1);
	CHECK(load(&c, "s3://bkt/some/prefix//", NULL) == 0);
	CHECK(strcmp(c.bucket, "bkt") == 0 && strcmp(c.prefix, "some/prefix") == 0);
	CHECK(strcmp(c.region, "us-east-1") == 0);
	CHECK(strcmp(c.endpoint, "https://s3.us-east-1.amazonaws.com") == 0);
	CHECK(strcmp(c.host, "s3.us-east-1.amazonaws.com") == 0 && c.https && !c.path_style);
	CHECK(c.part_size == 8 << 20 && c.parts_in_flight == 4 && c.retries == 5);
	CHECK(strcmp(c.cred_source, "environment") == 0 && !c.session_token);
	s3_conf_free(&c);
	CHECK(load(&c, "s3://bkt", NULL) == 0 && strcmp(c.prefix, "") == 0);
	s3_conf_free(&c);
	/* Dots in the bucket break virtual-hosted TLS names: path-style. */
	CHECK(load(&c, "s3://my.bucket/p", NULL) == 0 && c.path_style);
	s3_conf_free(&c);
	CHECK(load(&c, "s3:///p", NULL) < 0);
	CHECK_ERR("no bucket name");
	CHECK(load(&c, "s3://b?x/p", NULL) < 0);
	CHECK_ERR("bucket name");
}

static void test_precedence(void)
{
	struct s3_conf c;
	struct kv cfg[] = {{"s3.access_key_id", "CFGID"}, {"s3.secret_access_key", "CFGSECRET"},
			   {"s3.region", "eu-west-3"}, {"s3.endpoint", "http://127.0.0.1:9000/"},
			   {NULL, NULL}};
	clear_env();
	write_file(creds_path, "[default]\naws_access_key_id = PROFID\naws_secret_access_key = PROFSECRET\n"
			       "[other]\naws_access_key_id=OTHERID\naws_secret_access_key=OTHERSECRET\n"
			       "aws_session_token = TOKEN\n");
	write_file(config_path, "[default]\nregion = ap-south-1\n[profile other]\nregion = sa-east-1\n"
				"endpoint_url = http://s3.internal.example:80\ns3 =\n  addressing_style = virtual\n");
	/* Profile only. */
	CHECK(load(&c, "s3://b/p", NULL) == 0);
	CHECK(strcmp(c.access_key, "PROFID") == 0 && strcmp(c.region, "ap-south-1") == 0);
	CHECK(strcmp(c.cred_source, "profile") == 0);
	s3_conf_free(&c);
	setenv("AWS_PROFILE", "other", 1);
	CHECK(load(&c, "s3://b/p", NULL) == 0);
	CHECK(strcmp(c.access_key, "OTHERID") == 0 && c.session_token &&
	      strcmp(c.session_token, "TOKEN") == 0 && strcmp(c.region, "sa-east-1") == 0);
	/* A custom endpoint, default port dropped from the signed host. */
	CHECK(strcmp(c.host, "s3.internal.example") == 0 && !c.https && c.path_style);
	s3_conf_free(&c);
	/* Config keys beat the profile. */
	CHECK(load(&c, "s3://b/p", cfg) == 0);
	CHECK(strcmp(c.access_key, "CFGID") == 0 && strcmp(c.region, "eu-west-3") == 0);
	CHECK(strcmp(c.host, "127.0.0.1:9000") == 0 && c.path_style && !c.session_token);
	s3_conf_free(&c);
	/* The environment beats both. */
	setenv("AWS_ACCESS_KEY_ID", "ENVID", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "ENVSECRET", 1);
	setenv("AWS_DEFAULT_REGION", "us-west-2", 1);
	setenv("AWS_ENDPOINT_URL", "https://minio.example:443", 1);
	CHECK(load(&c, "s3://b/p", cfg) == 0);
	CHECK(strcmp(c.access_key, "ENVID") == 0 && strcmp(c.secret_key, "ENVSECRET") == 0);
	CHECK(strcmp(c.region, "us-west-2") == 0 && strcmp(c.host, "minio.example") == 0);
	s3_conf_free(&c);
	setenv("AWS_REGION", "ca-central-1", 1);
	CHECK(load(&c, "s3://b/p", cfg) == 0 && strcmp(c.region, "ca-central-1") == 0);
	s3_conf_free(&c);
	/* Half a key pair is an error naming the missing half, not the secret. */
	unsetenv("AWS_ACCESS_KEY_ID");
	CHECK(load(&c, "s3://b/p", cfg) < 0);
	CHECK_ERR("s3://b/p: AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not");
	CHECK(!strstr(err_msg(), "ENVSECRET"));
	clear_env();
	unlink(creds_path);
	unlink(config_path);
	CHECK(load(&c, "s3://b/p", NULL) < 0);
	CHECK_ERR("no credentials");
}

static void test_gcs(void)
{
	struct s3_conf c;
	clear_env();
	setenv("AWS_ACCESS_KEY_ID", "AWSID", 1);	/* not used for gs:// */
	setenv("AWS_SECRET_ACCESS_KEY", "AWSSECRET", 1);
	CHECK(load(&c, "gs://b/p", NULL) < 0);
	CHECK_ERR("GCS_HMAC_ACCESS_ID");
	struct kv cfg[] = {{"gcs.hmac_access_id", "GOOGID"}, {"gcs.hmac_secret", "GOOGSECRET"},
			   {NULL, NULL}};
	CHECK(load(&c, "gs://b/p", cfg) == 0);
	CHECK(c.gcs && strcmp(c.access_key, "GOOGID") == 0 && strcmp(c.region, "auto") == 0);
	CHECK(strcmp(c.host, "storage.googleapis.com") == 0 && c.https && c.path_style);
	s3_conf_free(&c);
	setenv("GCS_HMAC_ACCESS_ID", "ENVGOOG", 1);
	setenv("GCS_HMAC_SECRET", "ENVGOOGSECRET", 1);
	CHECK(load(&c, "gs://b/p", cfg) == 0 && strcmp(c.access_key, "ENVGOOG") == 0);
	s3_conf_free(&c);
}

static void test_tuning(void)
{
	struct s3_conf c;
	clear_env();
	setenv("AWS_ACCESS_KEY_ID", "A", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "S", 1);
	struct kv ok[] = {{"s3.part_size", "16MiB"}, {"s3.parts_in_flight", "8"},
			  {"s3.timeout_seconds", "5"}, {"s3.retries", "0"},
			  {"s3.addressing", "virtual"}, {"s3.endpoint", "http://h:1"}, {NULL, NULL}};
	CHECK(load(&c, "s3://b", ok) == 0);
	CHECK(c.part_size == 16 << 20 && c.parts_in_flight == 8 && c.timeout_s == 5 &&
	      c.retries == 0 && !c.path_style);
	s3_conf_free(&c);
	struct kv small[] = {{"s3.part_size", "4M"}, {NULL, NULL}};
	CHECK(load(&c, "s3://b", small) < 0);
	CHECK_ERR("s3.part_size \"4M\"");
	struct kv one[] = {{"s3.parts_in_flight", "1"}, {NULL, NULL}};
	CHECK(load(&c, "s3://b", one) < 0);
	struct kv addr[] = {{"s3.addressing", "dns"}, {NULL, NULL}};
	CHECK(load(&c, "s3://b", addr) < 0);
	CHECK_ERR("s3.addressing");
	struct kv badep[] = {{"s3.endpoint", "ftp://x"}, {NULL, NULL}};
	CHECK(load(&c, "s3://b", badep) < 0);
}

/* Loads with endpoint url and returns what was printed on stderr. */
static void load_capturing(const char *url, char *out, size_t size)
{
	struct s3_conf c;
	struct kv cfg[] = {{"s3.endpoint", url}, {NULL, NULL}};
	char path[300];
	snprintf(path, sizeof(path), "%s/stderr", dir);
	fflush(stderr);
	int saved = dup(STDERR_FILENO);
	FILE *f = fopen(path, "w+");
	CHECK(f && saved >= 0 && dup2(fileno(f), STDERR_FILENO) >= 0);
	CHECK(load(&c, "s3://b", cfg) == 0);
	s3_conf_free(&c);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	size_t n = f ? fread(out, 1, size - 1, (rewind(f), f)) : 0;
	out[n] = '\0';
	if (f)
		fclose(f);
}

/* Plain http to anywhere but loopback: images and requests in clear. */
static void test_plain_http_warning(void)
{
	char err[1024];
	clear_env();
	setenv("AWS_ACCESS_KEY_ID", "A", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "S", 1);
	load_capturing("http://minio.example:9000", err, sizeof(err));
	CHECK(strstr(err, "warning: endpoint http://minio.example:9000 is plain http") != NULL);
	load_capturing("http://10.1.2.3", err, sizeof(err));
	CHECK(strstr(err, "warning: endpoint http://10.1.2.3 is plain http") != NULL);
	static const char *const quiet[] = {"http://127.0.0.1:8080", "http://localhost:9000",
					    "http://[::1]:80", "https://minio.example"};
	for (size_t i = 0; i < sizeof(quiet) / sizeof(quiet[0]); i++) {
		load_capturing(quiet[i], err, sizeof(err));
		CHECK(err[0] == '\0');
		if (err[0])
			fprintf(stderr, "  %s: %s", quiet[i], err);
	}
}

/* With the defaults, 10,000 parts hold more than 1 TiB, every part but
 * the last is >= 5 MiB, and none exceeds S3's 5 GiB. */
static void test_part_growth(void)
{
	struct s3_conf c = {.part_size = S3_DEFAULT_PART};
	uint64_t total = 0;
	unsigned n_for_tib = 0;
	for (unsigned n = 1; n <= S3_MAX_PARTS; n++) {
		uint64_t p = s3_part_size_for(&c, n);
		CHECK(p >= S3_MIN_PART && p <= S3_MAX_PART);
		total += p;
		if (!n_for_tib && total >= (1ULL << 40))
			n_for_tib = n;
	}
	CHECK(s3_part_size_for(&c, 1) == 8 << 20 && s3_part_size_for(&c, 250) == 8 << 20);
	CHECK(s3_part_size_for(&c, 251) == 16 << 20);
	CHECK(n_for_tib > 0 && n_for_tib < S3_MAX_PARTS);
	fprintf(stderr, "  1 TiB fits in %u parts; 10,000 parts hold %.2f TiB\n", n_for_tib,
		(double)total / (1ULL << 40));
}

int main(void)
{
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(creds_path, sizeof(creds_path), "%s/credentials", dir);
	snprintf(config_path, sizeof(config_path), "%s/config", dir);
	RUN(test_location_and_defaults);
	RUN(test_precedence);
	RUN(test_gcs);
	RUN(test_tuning);
	RUN(test_part_growth);
	RUN(test_plain_http_warning);
	unlink(creds_path);
	unlink(config_path);
	rmdir(dir);
	return unit_done();
}
