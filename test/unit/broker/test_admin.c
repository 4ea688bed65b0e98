/*
 * Unit tests of the admin API's pure parts and of the metrics output:
 * URL decoding, path splitting, paging parameters, the bearer token check,
 * Prometheus text from a hand-made snapshot (families, labels, histogram,
 * label escaping), JSON names and the CONNACK code -> refusal reason map.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "broker/admin.h"
#include "broker/metrics.h"
#include "broker/node.h"
#include "proto/err.h"

START_TEST(url_decode)
{
	char out[16];

	ck_assert_int_eq(admin_url_decode("a%2Fb%20c+", 10, out, sizeof(out)),
	                 0);
	ck_assert_str_eq(out, "a/b c+");
	ck_assert_int_eq(admin_url_decode("%zz", 3, out, sizeof(out)),
	                 ERR_MALFORMED);
	ck_assert_int_eq(admin_url_decode("ab%2", 4, out, sizeof(out)),
	                 ERR_MALFORMED);
	ck_assert_int_eq(admin_url_decode("a%00", 4, out, sizeof(out)),
	                 ERR_MALFORMED);
	ck_assert_int_eq(
	        admin_url_decode("0123456789abcdef", 16, out, sizeof(out)),
	        ERR_TOO_LARGE);
	ck_assert_int_eq(admin_url_decode("", 0, out, sizeof(out)), 0);
	ck_assert_str_eq(out, "");
}
END_TEST

START_TEST(path_parse)
{
	char coll[16], id[32];

	ck_assert_int_eq(admin_path_parse("/api/v1/clients", coll, sizeof(coll),
	                                  id, sizeof(id)),
	                 0);
	ck_assert_str_eq(coll, "clients");
	ck_assert_str_eq(id, "");
	ck_assert_int_eq(admin_path_parse("/api/v1/retained/a/b%2Bc", coll,
	                                  sizeof(coll), id, sizeof(id)),
	                 0);
	ck_assert_str_eq(coll, "retained");
	ck_assert_str_eq(id, "a/b+c");
	ck_assert_int_eq(admin_path_parse("/api/v2/x", coll, sizeof(coll), id,
	                                  sizeof(id)),
	                 ERR_NOTFOUND);
	ck_assert_int_eq(admin_path_parse("/api/v1/", coll, sizeof(coll), id,
	                                  sizeof(id)),
	                 ERR_NOTFOUND);
	ck_assert_int_eq(admin_path_parse("/api/v1/averyveryverylongname", coll,
	                                  sizeof(coll), id, sizeof(id)),
	                 ERR_TOO_LARGE);
	ck_assert_int_eq(admin_path_parse("/api/v1/c/%g1", coll, sizeof(coll),
	                                  id, sizeof(id)),
	                 ERR_MALFORMED);
}
END_TEST

START_TEST(page_parse)
{
	size_t lim, off;

	ck_assert_int_eq(admin_page_parse(NULL, NULL, &lim, &off), 0);
	ck_assert_uint_eq(lim, ADMIN_PAGE_DEFAULT);
	ck_assert_uint_eq(off, 0);
	ck_assert_int_eq(admin_page_parse("1000", "20", &lim, &off), 0);
	ck_assert_uint_eq(lim, 1000);
	ck_assert_uint_eq(off, 20);
	ck_assert_int_eq(admin_page_parse("1001", NULL, &lim, &off),
	                 ERR_MALFORMED);
	ck_assert_int_eq(admin_page_parse("0", NULL, &lim, &off),
	                 ERR_MALFORMED);
	ck_assert_int_eq(admin_page_parse("-1", NULL, &lim, &off),
	                 ERR_MALFORMED);
	ck_assert_int_eq(admin_page_parse("", NULL, &lim, &off), ERR_MALFORMED);
	ck_assert_int_eq(admin_page_parse(NULL, "1x", &lim, &off),
	                 ERR_MALFORMED);
}
END_TEST

START_TEST(token)
{
	ck_assert(admin_token_ok(NULL, ""));
	ck_assert(admin_token_ok("anything", ""));
	ck_assert(admin_token_ok("Bearer abc", "abc"));
	ck_assert(!admin_token_ok(NULL, "abc"));
	ck_assert(!admin_token_ok("Bearer abcd", "abc"));
	ck_assert(!admin_token_ok("Bearer ab", "abc"));
	ck_assert(!admin_token_ok("Basic abc", "abc"));
	ck_assert(!admin_token_ok("bearer abc", "abc"));
}
END_TEST

/* The text of metrics_prom for @p s, NUL-terminated (caller frees). */
static char *
prom_text(const struct metrics_snap *s)
{
	struct evbuffer *b = evbuffer_new();
	size_t n;
	char *t;

	ck_assert_ptr_nonnull(b);
	ck_assert_int_eq(metrics_prom(b, s), 0);
	n = evbuffer_get_length(b);
	t = malloc(n + 1);
	ck_assert_ptr_nonnull(t);
	evbuffer_remove(b, t, n);
	t[n] = '\0';
	evbuffer_free(b);
	return t;
}

START_TEST(prometheus)
{
	struct metrics_peer peer = { (char *)"n\"2\\", 0, true, 3, 5 };
	struct metrics_snap s;
	char *t;

	memset(&s, 0, sizeof(s));
	s.v[METRIC_MIN1] = 7;
	s.v[METRIC_CONNS] = 3;
	s.g.st.commit_hist[0] = 2; /* <= 100 us */
	s.g.st.commit_hist[3] = 1; /* <= 1 ms */
	s.g.st.commits = 3;
	s.g.st.commit_us_sum = 1200;
	s.peers = &peer;
	s.n_peers = 1;
	t = prom_text(&s);
	ck_assert_ptr_nonnull(
	        strstr(t, "mqd_messages_received_total{qos=\"1\"} 7\n"));
	ck_assert_ptr_nonnull(strstr(t, "\nmqd_connections 3\n"));
	/* one TYPE line per family, counters with _total */
	ck_assert_ptr_nonnull(
	        strstr(t, "# TYPE mqd_messages_received_total counter\n"));
	ck_assert_ptr_null(
	        strstr(strstr(t, "# TYPE mqd_messages_received_total") + 1,
	               "# TYPE mqd_messages_received_total"));
	ck_assert_ptr_nonnull(strstr(t, "# TYPE mqd_connections gauge\n"));
	/* cumulative buckets in seconds */
	ck_assert_ptr_nonnull(strstr(
	        t, "mqd_storage_commit_seconds_bucket{le=\"0.0001\"} 2\n"));
	ck_assert_ptr_nonnull(strstr(
	        t, "mqd_storage_commit_seconds_bucket{le=\"0.00025\"} 2\n"));
	ck_assert_ptr_nonnull(strstr(
	        t, "mqd_storage_commit_seconds_bucket{le=\"0.001\"} 3\n"));
	ck_assert_ptr_nonnull(strstr(
	        t, "mqd_storage_commit_seconds_bucket{le=\"+Inf\"} 3\n"));
	ck_assert_ptr_nonnull(
	        strstr(t, "mqd_storage_commit_seconds_sum 0.001200\n"));
	ck_assert_ptr_nonnull(
	        strstr(t, "mqd_storage_commit_seconds_count 3\n"));
	ck_assert_ptr_nonnull(
	        strstr(t, "mqd_cluster_peer_up{peer=\"n\\\"2\\\\\"} 1\n"));
	ck_assert_ptr_nonnull(
	        strstr(t, "mqd_cluster_peer_outbox{peer=\"n\\\"2\\\\\"} 5\n"));
	free(t);
}
END_TEST

START_TEST(label_escape)
{
	char buf[8];

	metrics_label_escape("a\"b\\\nc", buf, sizeof(buf));
	ck_assert_str_eq(buf, "a\\\"b\\\\"); /* cut before a half escape */
	metrics_label_escape("plain", buf, sizeof(buf));
	ck_assert_str_eq(buf, "plain");
}
END_TEST

START_TEST(json_names)
{
	char buf[64];

	metrics_json_name(METRIC_MIN1, buf, sizeof(buf));
	ck_assert_str_eq(buf, "messages.received.qos1");
	metrics_json_name(METRIC_UPTIME, buf, sizeof(buf));
	ck_assert_str_eq(buf, "uptime");
	metrics_json_name(METRIC_N, buf, sizeof(buf));
	ck_assert_str_eq(buf, "");
}
END_TEST

START_TEST(refuse_reason)
{
	ck_assert_int_eq(metrics_refuse_reason(0x04),
	                 NODE_REFUSE_BAD_CREDENTIALS);
	ck_assert_int_eq(metrics_refuse_reason(0x86),
	                 NODE_REFUSE_BAD_CREDENTIALS);
	ck_assert_int_eq(metrics_refuse_reason(0x05),
	                 NODE_REFUSE_NOT_AUTHORIZED);
	ck_assert_int_eq(metrics_refuse_reason(0x87),
	                 NODE_REFUSE_NOT_AUTHORIZED);
	ck_assert_int_eq(metrics_refuse_reason(0x02), NODE_REFUSE_CLIENT_ID);
	ck_assert_int_eq(metrics_refuse_reason(0x85), NODE_REFUSE_CLIENT_ID);
	ck_assert_int_eq(metrics_refuse_reason(0x01), NODE_REFUSE_PROTOCOL);
	ck_assert_int_eq(metrics_refuse_reason(0x84), NODE_REFUSE_PROTOCOL);
	ck_assert_int_eq(metrics_refuse_reason(0x03), NODE_REFUSE_UNAVAILABLE);
	ck_assert_int_eq(metrics_refuse_reason(0x88), NODE_REFUSE_UNAVAILABLE);
	ck_assert_int_eq(metrics_refuse_reason(0x95), NODE_REFUSE_OTHER);
}
END_TEST

START_TEST(commit_bounds)
{
	size_t i;

	for (i = 1; i < STORE_COMMIT_BUCKETS; i++)
		ck_assert_uint_gt(store_commit_bound_us(i),
		                  store_commit_bound_us(i - 1));
	ck_assert_uint_eq(store_commit_bound_us(STORE_COMMIT_BUCKETS - 1),
	                  UINT64_MAX);
	ck_assert_uint_eq(store_commit_bound_us(1000), UINT64_MAX);
}
END_TEST

static Suite *
admin_suite(void)
{
	Suite *s = suite_create("admin");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, url_decode);
	tcase_add_test(tc, path_parse);
	tcase_add_test(tc, page_parse);
	tcase_add_test(tc, token);
	tcase_add_test(tc, prometheus);
	tcase_add_test(tc, label_escape);
	tcase_add_test(tc, json_names);
	tcase_add_test(tc, refuse_reason);
	tcase_add_test(tc, commit_bounds);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(admin_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
