/* The SigV4 signer against AWS's published S3 examples ("Signature
 * Calculations for the Authorization Header: Transferring Payload in a
 * Single Chunk", Amazon S3 API Reference): access key AKIAIOSFODNN7EXAMPLE,
 * secret wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY, bucket examplebucket,
 * 20130524T000000Z, us-east-1. For each example the documented hash of the
 * canonical request (the last line of its string to sign) and the
 * signature are checked. Plus the encoding rules S3 and Swift insist on. */
#include "store/s3_str.h"
#include "store/sigv4.h"
#include "util/err.h"
#include "unit.h"

static const struct sigv4_key aws_example = {
	.access_key = "AKIAIOSFODNN7EXAMPLE",
	.secret_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
	.region = "us-east-1",
	.service = "s3",
};

#define DATE "20130524T000000Z"
#define HOST "examplebucket.s3.amazonaws.com"
#define CRED "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"

/* Signs and checks the string-to-sign's hash line and the full header. */
static void check_example(const char *method, const char *uri, const struct sigv4_param *q,
			  size_t nq, const struct sigv4_header *h, size_t nh,
			  const char *payload, const char *creq_hash, const char *auth)
{
	char *query = sigv4_canonical_query(q, nq);
	CHECK(query != NULL);
	if (!query)
		return;
	char *creq = sigv4_canonical_request(method, uri, query, h, nh, payload);
	char *sts = creq ? sigv4_string_to_sign(&aws_example, DATE, creq) : NULL;
	CHECK(sts != NULL);
	if (sts) {
		const char *last = strrchr(sts, '\n');
		CHECK(last && strcmp(last + 1, creq_hash) == 0);
		CHECK(strncmp(sts, "AWS4-HMAC-SHA256\n" DATE "\n20130524/us-east-1/s3/aws4_request\n",
			      strlen("AWS4-HMAC-SHA256\n" DATE "\n20130524/us-east-1/s3/aws4_request\n")) == 0);
	}
	char out[512];
	CHECK(sigv4_authorization(&aws_example, method, uri, query, h, nh, payload, DATE, out,
				  sizeof(out)) == 0);
	if (strcmp(out, auth) != 0)
		fprintf(stderr, "  got      %s\n  expected %s\n", out, auth);
	CHECK(strcmp(out, auth) == 0);
	free(creq);
	free(sts);
	free(query);
}

static void test_get_object(void)
{
	const struct sigv4_header h[] = {
		{"Host", HOST},
		{"Range", "bytes=0-9"},
		{"x-amz-content-sha256", SIGV4_EMPTY_SHA256},
		{"x-amz-date", DATE},
	};
	check_example("GET", "/test.txt", NULL, 0, h, 4, SIGV4_EMPTY_SHA256,
		      "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972",
		      CRED "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
			   "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

static void test_put_object(void)
{
	const char *body = "Welcome to Amazon S3.";
	char hash[SIGV4_HEX];
	CHECK(sigv4_sha256_hex(body, strlen(body), hash) == 0);
	CHECK(strcmp(hash, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072") == 0);
	/* The key is "test$file.text": '$' is encoded once, by us. */
	char *uri = sigv4_uri_encode("/test$file.text", strlen("/test$file.text"), true);
	CHECK(uri && strcmp(uri, "/test%24file.text") == 0);
	const struct sigv4_header h[] = {
		{"Date", "Fri, 24 May 2013 00:00:00 GMT"},
		{"Host", HOST},
		{"x-amz-date", DATE},
		{"x-amz-storage-class", "REDUCED_REDUNDANCY"},
		{"x-amz-content-sha256", hash},
	};
	check_example("PUT", uri ? uri : "", NULL, 0, h, 5, hash,
		      "9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d",
		      CRED "SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class,"
			   "Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
	free(uri);
}

static const struct sigv4_header bucket_headers[] = {
	{"Host", HOST},
	{"x-amz-date", DATE},
	{"x-amz-content-sha256", SIGV4_EMPTY_SHA256},
};

/* A valueless parameter (?lifecycle, like ?uploads) is signed "lifecycle=". */
static void test_get_bucket_lifecycle(void)
{
	const struct sigv4_param q[] = {{"lifecycle", NULL}};
	check_example("GET", "/", q, 1, bucket_headers, 3, SIGV4_EMPTY_SHA256,
		      "9766c798316ff2757b517bc739a67f6213b4ab36dd5da2f94eaebf79c77395ca",
		      CRED "SignedHeaders=host;x-amz-content-sha256;x-amz-date,"
			   "Signature=fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
}

/* Parameters given out of order are sorted. */
static void test_list_objects(void)
{
	const struct sigv4_param q[] = {{"prefix", "J"}, {"max-keys", "2"}};
	check_example("GET", "/", q, 2, bucket_headers, 3, SIGV4_EMPTY_SHA256,
		      "df57d21db20da04d7fa30298dd4488ba3a2b47ca3a489c74750e0f1e7df1b9b7",
		      CRED "SignedHeaders=host;x-amz-content-sha256;x-amz-date,"
			   "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}

static void test_encoding(void)
{
	const char *key = "/a b+c=d/x~y_z-1.2/%/é";
	char *e = sigv4_uri_encode(key, strlen(key), true);
	CHECK(e && strcmp(e, "/a%20b%2Bc%3Dd/x~y_z-1.2/%25/%C3%A9") == 0);
	free(e);
	e = sigv4_uri_encode("a/b c", 5, false);
	CHECK(e && strcmp(e, "a%2Fb%20c") == 0);
	free(e);

	const struct sigv4_param q[] = {
		{"uploadId", "x+y/z="},
		{"uploads", ""},
		{"prefix", "a b+c=d/"},
		{"list-type", "2"},
		{"continuation-token", "1/2+3=="},
	};
	char *cq = sigv4_canonical_query(q, 5);
	CHECK(cq && strcmp(cq, "continuation-token=1%2F2%2B3%3D%3D&list-type=2&prefix=a%20b%2Bc%3Dd%2F&"
			       "uploadId=x%2By%2Fz%3D&uploads=") == 0);
	free(cq);
	cq = sigv4_canonical_query(NULL, 0);
	CHECK(cq && strcmp(cq, "") == 0);
	free(cq);

	char d[SIGV4_AMZ_DATE];
	sigv4_amz_date(1369353600LL, d);
	CHECK(strcmp(d, DATE) == 0);
}

/* Header values are trimmed and inner blank runs squeezed; names lowered. */
static void test_header_canon(void)
{
	const struct sigv4_header h[] = {{"X-Amz-Meta-A", "  a   b  "}, {"Host", "h"}};
	char *c = sigv4_canonical_request("GET", "/", "", h, 2, "UNSIGNED-PAYLOAD");
	CHECK(c && strcmp(c, "GET\n/\n\nhost:h\nx-amz-meta-a:a b\n\nhost;x-amz-meta-a\nUNSIGNED-PAYLOAD") == 0);
	free(c);
}

static void test_xml(void)
{
	const char *doc = "<?xml version=\"1.0\"?>\n<ListBucketResult xmlns=\"http://s3\">"
			  "<Name>b</Name><IsTruncated>true</IsTruncated>"
			  "<Contents><Key>a &amp; b&#x2F;&#233;&lt;</Key><Size>12</Size></Contents>"
			  "<Contents><Key>k2</Key><Size>0</Size><ETag>&quot;x&quot;</ETag></Contents>"
			  "<NextContinuationToken>t+/=</NextContinuationToken><Prefix/>"
			  "</ListBucketResult>";
	const char *pos = doc, *end = doc + strlen(doc);
	struct xml_span s;
	bool oom = false;
	CHECK(xml_next(&pos, end, "Contents", &s));
	char *k = xml_text(s, "Key", &oom);
	CHECK(k && strcmp(k, "a & b/\xC3\xA9<") == 0);
	free(k);
	CHECK(xml_next(&pos, end, "Contents", &s));
	k = xml_text(s, "ETag", &oom);
	CHECK(k && strcmp(k, "\"x\"") == 0);
	free(k);
	CHECK(!xml_next(&pos, end, "Contents", &s));
	struct xml_span all = {doc, strlen(doc)};
	k = xml_text(all, "NextContinuationToken", &oom);
	CHECK(k && strcmp(k, "t+/=") == 0);
	free(k);
	k = xml_text(all, "Prefix", &oom);
	CHECK(k && strcmp(k, "") == 0);
	free(k);
	/* "<Name>" must not match "<NameX>" and a truncated doc finds nothing. */
	const char *bad = "<NameX>1</NameX><Name>2";
	pos = bad;
	CHECK(!xml_next(&pos, bad + strlen(bad), "Name", &s));
	CHECK(xml_decode("&bogus;", 7) == NULL);
	CHECK(xml_decode("&#0;", 4) == NULL);
	CHECK(!oom);

	struct sbuf b = {0};
	sbuf_add_xml(&b, "\"e<&>'");
	CHECK(strcmp(sbuf_cstr(&b), "&quot;e&lt;&amp;&gt;&apos;") == 0);
	sbuf_free(&b);
}

static void test_parse_size(void)
{
	unsigned long long v;
	CHECK(s3_parse_size("5242880", &v) == 0 && v == 5242880);
	CHECK(s3_parse_size("8M", &v) == 0 && v == 8ULL << 20);
	CHECK(s3_parse_size("8MiB", &v) == 0 && v == 8ULL << 20);
	CHECK(s3_parse_size("1g", &v) == 0 && v == 1ULL << 30);
	CHECK(s3_parse_size("64k", &v) == 0 && v == 64ULL << 10);
	CHECK(s3_parse_size("x", &v) < 0);
	CHECK(s3_parse_size("-1", &v) < 0);
	CHECK(s3_parse_size("5MX", &v) < 0);
	CHECK(s3_parse_size("99999999999999999999", &v) < 0);
}

int main(void)
{
	RUN(test_get_object);
	RUN(test_put_object);
	RUN(test_get_bucket_lifecycle);
	RUN(test_list_objects);
	RUN(test_encoding);
	RUN(test_header_canon);
	RUN(test_xml);
	RUN(test_parse_size);
	return unit_done();
}
