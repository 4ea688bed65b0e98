/*
 * Check tests for broker/acl.c: the rules file ([auth] acl_file), which
 * topics a rule lets a client publish to, and which subscription filters it
 * covers.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/acl.h"
#include "proto/err.h"

static char path[] = "/tmp/mqd-acl-XXXXXX";

static struct mqtt_bytes
B(const char *s) {
	return (struct mqtt_bytes){ (const uint8_t *)s, strlen(s) };
}

static void
write_rules(const char *text)
{
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

static void
setup(void)
{
	int fd;

	strcpy(path, "/tmp/mqd-acl-XXXXXX");
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	close(fd);
}

static void
teardown(void)
{
	unlink(path);
}

static bool
covers(const char *rule, const char *filter)
{
	return acl_filter_covers(B(rule), B(filter));
}

START_TEST(test_covers)
{
	ck_assert(covers("#", "a/b/#"));
	ck_assert(covers("a/#", "a")); /* "a/#" matches "a" */
	ck_assert(covers("a/#", "a/+/c"));
	ck_assert(covers("a/#", "a/#"));
	ck_assert(covers("a/+", "a/b"));
	ck_assert(covers("a/+", "a/+"));
	ck_assert(covers("+/x", "+/x"));
	ck_assert(covers("a/b", "a/b"));
	ck_assert(covers("$SYS/#", "$SYS/broker/uptime"));
	ck_assert(!covers("a/#", "#")); /* broader */
	ck_assert(!covers("a/#", "+/b"));
	ck_assert(!covers("a/+", "a/#")); /* deeper */
	ck_assert(!covers("a/+", "a"));   /* "a/+" does not match "a" */
	ck_assert(!covers("a/b", "a/+"));
	ck_assert(!covers("a", "a/b"));
	ck_assert(!covers("a/b/c", "a/b"));
	ck_assert(!covers("#", "$SYS/x")); /* as topic matching */
	ck_assert(!covers("+/x", "$SYS/x"));
}
END_TEST

START_TEST(test_rules)
{
	struct acl a;
	char err[256];

	write_rules("# who access filter\n"
	            "\n"
	            "alice   pub     cmd/alice/#\n"
	            "alice   sub     sensors/#\n"
	            "  bob   pubsub  chat/+\n"
	            "*       sub     public/#\n");
	ck_assert_int_eq(acl_load(&a, path, err, sizeof(err)), 0);
	ck_assert(a.enabled);
	ck_assert_uint_eq(a.n, 4);
	ck_assert(acl_may_publish(&a, "alice", B("cmd/alice/x")));
	ck_assert(!acl_may_publish(&a, "alice", B("cmd/bob/x")));
	ck_assert(!acl_may_publish(&a, "alice", B("sensors/1"))); /* sub only */
	ck_assert(acl_may_subscribe(&a, "alice", B("sensors/+/temp")));
	ck_assert(!acl_may_subscribe(&a, "alice", B("#")));
	ck_assert(acl_may_publish(&a, "bob", B("chat/room")));
	ck_assert(acl_may_subscribe(&a, "bob", B("chat/room")));
	/* "*" is every client, those without a user name too */
	ck_assert(acl_may_subscribe(&a, NULL, B("public/news")));
	ck_assert(acl_may_subscribe(&a, "alice", B("public/#")));
	ck_assert(!acl_may_publish(&a, NULL, B("public/news")));
	ck_assert(!acl_may_subscribe(&a, "carol", B("chat/room")));
	acl_fini(&a);

	/* no file: everything for everyone */
	ck_assert_int_eq(acl_load(&a, "", err, sizeof(err)), 0);
	ck_assert(!a.enabled);
	ck_assert(acl_may_publish(&a, NULL, B("x")));
	ck_assert(acl_may_subscribe(&a, NULL, B("#")));
	acl_fini(&a);

	/* a file without rules: nothing for anyone */
	write_rules("# nothing\n");
	ck_assert_int_eq(acl_load(&a, path, err, sizeof(err)), 0);
	ck_assert(a.enabled);
	ck_assert(!acl_may_publish(&a, "alice", B("x")));
	acl_fini(&a);
}
END_TEST

static void
expect_bad(const char *text, const char *msg)
{
	struct acl a;
	char err[256], want[512];

	write_rules(text);
	ck_assert_int_eq(acl_load(&a, path, err, sizeof(err)), ERR_MALFORMED);
	snprintf(want, sizeof(want), "%s:%s", path, msg);
	ck_assert_str_eq(err, want);
	ck_assert_uint_eq(a.n, 0);
}

START_TEST(test_bad_lines)
{
	struct acl a;
	char err[256];

	expect_bad("alice pub\n", "1: expected: user|* pub|sub|pubsub filter");
	expect_bad("alice pub a b\n",
	           "1: expected: user|* pub|sub|pubsub filter");
	expect_bad("# ok\nalice read a/#\n",
	           "2: access \"read\" is not pub, sub or pubsub");
	expect_bad("alice pub a/#/b\n", "1: \"a/#/b\" is not a topic filter");
	ck_assert_int_eq(acl_load(&a, "/nonexistent/acl", err, sizeof(err)),
	                 ERR_IO);
	ck_assert(strstr(err, "/nonexistent/acl: cannot read") == err);
}
END_TEST

static Suite *
suite(void)
{
	Suite *s = suite_create("acl");
	TCase *tc = tcase_create("acl");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_covers);
	tcase_add_test(tc, test_rules);
	tcase_add_test(tc, test_bad_lines);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
