/*
 * Unit tests for cluster/rtab.c, the remote route table: add / delete,
 * duplicates, each node reported once per match however many of its
 * filters match, dropping a node, replacing a node's set (a snapshot),
 * growth past many filters, and allocation failures (fault suite).
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster.h"
#include "cluster/cluster_int.h"
#include "test/unit/fault.h"

static struct mqtt_bytes
B(const char *s) {
	return (struct mqtt_bytes){ (const uint8_t *)s, strlen(s) };
}

/* Match results: how often each slot was reported. */
struct hits {
	uint32_t n[64];
	size_t calls;
};

static void
hit(void *arg, uint32_t slot)
{
	struct hits *h = arg;

	ck_assert_uint_lt(slot, 64);
	h->n[slot]++;
	h->calls++;
}

static size_t
match(struct rtab *t, const char *topic, struct hits *h)
{
	memset(h, 0, sizeof(*h));
	return rtab_match(t, B(topic), hit, h);
}

START_TEST(test_add_del)
{
	struct rtab t;

	rtab_init(&t);
	ck_assert_int_eq(rtab_add(&t, B("a/+"), 1), 0);
	ck_assert_int_eq(rtab_add(&t, B("a/+"), 1), ERR_EXISTS);
	ck_assert_int_eq(rtab_add(&t, B("a/+"), 2), 0);
	ck_assert_int_eq(rtab_add(&t, B("b"), 2), 0);
	ck_assert_uint_eq(rtab_node_routes(&t, 1), 1);
	ck_assert_uint_eq(rtab_node_routes(&t, 2), 2);
	ck_assert_uint_eq(rtab_node_routes(&t, 3), 0);
	ck_assert_uint_eq(rtab_node_routes(&t, 1000), 0);
	ck_assert_uint_eq(t.n_entries, 2);
	ck_assert_int_eq(rtab_del(&t, B("a/+"), 1), 0);
	ck_assert_int_eq(rtab_del(&t, B("a/+"), 1), ERR_NOTFOUND);
	ck_assert_int_eq(rtab_del(&t, B("zzz"), 1), ERR_NOTFOUND);
	ck_assert_int_eq(rtab_del(&t, B("b"), 1000), ERR_NOTFOUND);
	ck_assert_uint_eq(rtab_node_routes(&t, 1), 0);
	ck_assert_uint_eq(t.n_entries, 2);
	ck_assert_int_eq(rtab_del(&t, B("a/+"), 2), 0);
	ck_assert_uint_eq(t.n_entries, 1);
	rtab_fini(&t);
	rtab_fini(NULL);
}
END_TEST

START_TEST(test_del_on_empty_table)
{
	struct rtab t;
	struct hits h;

	rtab_init(&t);
	ck_assert_int_eq(rtab_del(&t, B("a"), 0), ERR_NOTFOUND);
	rtab_drop_node(&t, 0);
	ck_assert_uint_eq(match(&t, "a", &h), 0);
	rtab_fini(&t);
}
END_TEST

START_TEST(test_match_once_per_node)
{
	struct rtab t;
	struct hits h;

	rtab_init(&t);
	/* node 1 has three filters matching a/b, node 2 one, node 3 none */
	ck_assert_int_eq(rtab_add(&t, B("a/+"), 1), 0);
	ck_assert_int_eq(rtab_add(&t, B("a/#"), 1), 0);
	ck_assert_int_eq(rtab_add(&t, B("a/b"), 1), 0);
	ck_assert_int_eq(rtab_add(&t, B("#"), 2), 0);
	ck_assert_int_eq(rtab_add(&t, B("x/y"), 3), 0);
	ck_assert_uint_eq(match(&t, "a/b", &h), 2);
	ck_assert_uint_eq(h.calls, 2);
	ck_assert_uint_eq(h.n[1], 1);
	ck_assert_uint_eq(h.n[2], 1);
	ck_assert_uint_eq(h.n[3], 0);
	/* again: the stamps of the last match do not leak into this one */
	ck_assert_uint_eq(match(&t, "a/b", &h), 2);
	ck_assert_uint_eq(h.n[1], 1);
	ck_assert_uint_eq(match(&t, "x/y", &h), 2);
	ck_assert_uint_eq(h.n[2], 1);
	ck_assert_uint_eq(h.n[3], 1);
	/* "$" topics are not matched by a leading wildcard */
	ck_assert_uint_eq(match(&t, "$SYS/x", &h), 0);
	/* "a/#" matches its parent "a" */
	ck_assert_uint_eq(match(&t, "a", &h), 2);
	ck_assert_uint_eq(h.n[1], 1);
	rtab_fini(&t);
}
END_TEST

START_TEST(test_generation_wrap)
{
	struct rtab t;
	struct hits h;

	rtab_init(&t);
	ck_assert_int_eq(rtab_add(&t, B("a"), 0), 0);
	ck_assert_int_eq(rtab_add(&t, B("+"), 0), 0);
	t.gen = UINT32_MAX - 1;
	ck_assert_uint_eq(match(&t, "a", &h), 1);
	ck_assert_uint_eq(match(&t, "a", &h), 1); /* gen wraps to 0 -> 1 */
	ck_assert_uint_eq(t.gen, 1);
	ck_assert_uint_eq(match(&t, "a", &h), 1);
	ck_assert_uint_eq(h.n[0], 1);
	rtab_fini(&t);
}
END_TEST

START_TEST(test_drop_node_and_replace)
{
	struct rtab t;
	struct hits h;

	rtab_init(&t);
	ck_assert_int_eq(rtab_add(&t, B("a/+"), 1), 0);
	ck_assert_int_eq(rtab_add(&t, B("b/+"), 1), 0);
	ck_assert_int_eq(rtab_add(&t, B("a/+"), 2), 0);
	rtab_drop_node(&t, 1);
	ck_assert_uint_eq(rtab_node_routes(&t, 1), 0);
	ck_assert_uint_eq(rtab_node_routes(&t, 2), 1);
	ck_assert_uint_eq(t.n_entries, 1);
	ck_assert_uint_eq(match(&t, "b/x", &h), 0);
	ck_assert_uint_eq(match(&t, "a/x", &h), 1);
	ck_assert_uint_eq(h.n[2], 1);
	/* a snapshot for node 2: drop, then its new set */
	rtab_drop_node(&t, 2);
	ck_assert_int_eq(rtab_add(&t, B("c"), 2), 0);
	ck_assert_int_eq(rtab_add(&t, B("d/#"), 2), 0);
	ck_assert_uint_eq(rtab_node_routes(&t, 2), 2);
	ck_assert_uint_eq(match(&t, "a/x", &h), 0);
	ck_assert_uint_eq(match(&t, "d/e/f", &h), 1);
	rtab_drop_node(&t, 2);
	rtab_drop_node(&t, 2);
	rtab_drop_node(&t, 60000); /* never seen */
	ck_assert_uint_eq(t.n_entries, 0);
	rtab_fini(&t);
}
END_TEST

START_TEST(test_many_filters)
{
	struct rtab t;
	struct hits h;
	char f[32];
	int i;

	rtab_init(&t);
	for (i = 0; i < 5000; i++) {
		snprintf(f, sizeof(f), "dev/%d/+", i);
		ck_assert_int_eq(rtab_add(&t, B(f), (uint32_t)(i % 7)), 0);
	}
	ck_assert_uint_eq(t.n_entries, 5000);
	ck_assert_uint_ge(t.n_buckets, 5000);
	ck_assert_uint_eq(match(&t, "dev/4242/temp", &h), 1);
	ck_assert_uint_eq(h.n[4242 % 7], 1);
	for (i = 0; i < 5000; i += 2) {
		snprintf(f, sizeof(f), "dev/%d/+", i);
		ck_assert_int_eq(rtab_del(&t, B(f), (uint32_t)(i % 7)), 0);
	}
	ck_assert_uint_eq(t.n_entries, 2500);
	ck_assert_uint_eq(match(&t, "dev/4242/temp", &h), 0);
	for (i = 0; i < 7; i++)
		rtab_drop_node(&t, (uint32_t)i);
	ck_assert_uint_eq(t.n_entries, 0);
	rtab_fini(&t);
}
END_TEST

/* Fail allocation 1, 2, ... of a sequence of adds until it succeeds: a
 * failed add leaves the table as it was (and nothing leaks under ASan). */
START_TEST(test_add_alloc_failures)
{
	struct rtab t;
	size_t held;
	char f[32];
	long n;
	int i, ok, rc;
	uint32_t slot;

	for (n = 1; n < 200; n++) {
		rtab_init(&t);
		rc = 0;
		ok = 0;
		fault_arm(n);
		for (i = 0; i < 40 && rc == 0; i++) {
			snprintf(f, sizeof(f), "t/%d", i / 2);
			rc = rtab_add(&t, B(f), (uint32_t)(i % 2 ? i : 30));
			ok += rc == 0;
		}
		fault_off();
		if (rc == 0) {
			rtab_fini(&t);
			break;
		}
		ck_assert_int_eq(rc, ERR_NOMEM);
		/* the failed add changed nothing: the counts add up to the
		 * adds that succeeded, and the table still works */
		for (held = 0, slot = 0; slot < 64; slot++)
			held += rtab_node_routes(&t, slot);
		ck_assert_uint_eq(held, (size_t)ok);
		ck_assert_int_eq(rtab_add(&t, B("t/x"), 3), 0);
		rtab_fini(&t);
	}
	ck_assert_int_lt(n, 200);
}
END_TEST

static Suite *
rtab_suite(void)
{
	Suite *s = suite_create("cluster_rtab");
	TCase *tc = tcase_create("core");
	TCase *tf = tcase_create("fault");

	tcase_add_test(tc, test_add_del);
	tcase_add_test(tc, test_del_on_empty_table);
	tcase_add_test(tc, test_match_once_per_node);
	tcase_add_test(tc, test_generation_wrap);
	tcase_add_test(tc, test_drop_node_and_replace);
	tcase_add_test(tc, test_many_filters);
	tcase_add_test(tf, test_add_alloc_failures);
	suite_add_tcase(s, tc);
	suite_add_tcase(s, tf);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(rtab_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
