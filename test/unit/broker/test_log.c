/*
 * Unit tests of broker/log.c: the line format, level filtering and parsing,
 * one-line sanitising, truncation and the rate limiter. stderr is captured
 * by pointing fd 2 at a temporary file.
 */
#include <check.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "broker/log.h"

struct capture {
	FILE *f;
	int saved;
};

static void
capture_start(struct capture *c)
{
	c->f = tmpfile();
	ck_assert_ptr_nonnull(c->f);
	c->saved = dup(STDERR_FILENO);
	ck_assert_int_ge(c->saved, 0);
	ck_assert_int_ge(dup2(fileno(c->f), STDERR_FILENO), 0);
}

/* Restores stderr; @return the bytes written meanwhile, NUL-terminated. */
static size_t
capture_end(struct capture *c, char *buf, size_t len)
{
	size_t n;

	ck_assert_int_ge(dup2(c->saved, STDERR_FILENO), 0);
	close(c->saved);
	rewind(c->f);
	n = fread(buf, 1, len - 1, c->f);
	buf[n] = '\0';
	fclose(c->f);
	return n;
}

static size_t
count_char(const char *s, char c)
{
	size_t n = 0;

	for (; *s; s++)
		n += *s == c;
	return n;
}

static void
setup(void)
{
	log_set_level(LOG_INFO);
}

START_TEST(test_line_format)
{
	const char *re = "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:"
	                 "[0-9]{2}\\.[0-9]{3}Z info hello key=1 client=c1\n$";
	char out[512], lo[32], hi[32];
	struct capture c;
	time_t before, after;
	struct tm tm;
	regex_t rx;

	before = time(NULL);
	capture_start(&c);
	log_info("hello key=%d client=%s", 1, "c1");
	capture_end(&c, out, sizeof(out));
	after = time(NULL);

	ck_assert_int_eq(regcomp(&rx, re, REG_EXTENDED | REG_NOSUB), 0);
	ck_assert_msg(regexec(&rx, out, 0, NULL, 0) == 0, "bad line: %s", out);
	regfree(&rx);

	/* ISO 8601 UTC sorts as text: the stamp lies between before/after */
	gmtime_r(&before, &tm);
	strftime(lo, sizeof(lo), "%Y-%m-%dT%H:%M:%S", &tm);
	gmtime_r(&after, &tm);
	strftime(hi, sizeof(hi), "%Y-%m-%dT%H:%M:%S", &tm);
	ck_assert_int_le(strncmp(lo, out, 19), 0);
	ck_assert_int_ge(strncmp(hi, out, 19), 0);
}
END_TEST

START_TEST(test_level_names_in_lines)
{
	char out[1024];
	struct capture c;

	log_set_level(LOG_DEBUG);
	capture_start(&c);
	log_error("e1");
	log_warn("w1");
	log_info("i1");
	log_debug("d1");
	capture_end(&c, out, sizeof(out));
	ck_assert_ptr_nonnull(strstr(out, "Z error e1\n"));
	ck_assert_ptr_nonnull(strstr(out, "Z warn w1\n"));
	ck_assert_ptr_nonnull(strstr(out, "Z info i1\n"));
	ck_assert_ptr_nonnull(strstr(out, "Z debug d1\n"));
	ck_assert_uint_eq(count_char(out, '\n'), 4);
}
END_TEST

START_TEST(test_level_filter)
{
	char out[1024];
	struct capture c;

	log_set_level(LOG_WARN);
	ck_assert_int_eq(log_get_level(), LOG_WARN);
	capture_start(&c);
	log_error("e1");
	log_warn("w1");
	log_info("i1");
	log_debug("d1");
	capture_end(&c, out, sizeof(out));
	ck_assert_ptr_nonnull(strstr(out, " error e1\n"));
	ck_assert_ptr_nonnull(strstr(out, " warn w1\n"));
	ck_assert_ptr_null(strstr(out, "i1"));
	ck_assert_ptr_null(strstr(out, "d1"));

	log_set_level(LOG_ERROR);
	capture_start(&c);
	log_warn("w2");
	capture_end(&c, out, sizeof(out));
	ck_assert_str_eq(out, "");
}
END_TEST

/* Runs without the fixture, in a fresh fork (CK_FORK=no: skipped). */
START_TEST(test_level_default)
{
	const char *fork = getenv("CK_FORK");

	if (fork && strcmp(fork, "no") == 0)
		return;
	ck_assert_int_eq(log_get_level(), LOG_INFO);
}
END_TEST

START_TEST(test_level_clamp)
{
	log_set_level(-5);
	ck_assert_int_eq(log_get_level(), LOG_ERROR);
	log_set_level(99);
	ck_assert_int_eq(log_get_level(), LOG_DEBUG);
}
END_TEST

START_TEST(test_level_parse)
{
	ck_assert_int_eq(log_level_parse("error"), LOG_ERROR);
	ck_assert_int_eq(log_level_parse("warn"), LOG_WARN);
	ck_assert_int_eq(log_level_parse("info"), LOG_INFO);
	ck_assert_int_eq(log_level_parse("debug"), LOG_DEBUG);
	ck_assert_int_eq(log_level_parse("INFO"), -1);
	ck_assert_int_eq(log_level_parse("warning"), -1);
	ck_assert_int_eq(log_level_parse(""), -1);
	ck_assert_int_eq(log_level_parse("info "), -1);
	ck_assert_int_eq(log_level_parse(NULL), -1);
	ck_assert_str_eq(log_level_name(LOG_WARN), "warn");
	ck_assert_str_eq(log_level_name(7), "?");
	ck_assert_str_eq(log_level_name(-1), "?");
}
END_TEST

START_TEST(test_control_chars_stay_on_one_line)
{
	char out[512];
	struct capture c;

	capture_start(&c);
	log_info("client=%s", "a\nb\rc\td\x7f"
	                      "e");
	capture_end(&c, out, sizeof(out));
	ck_assert_uint_eq(count_char(out, '\n'), 1);
	ck_assert_ptr_nonnull(strstr(out, " info client=a?b?c?d?e\n"));
}
END_TEST

START_TEST(test_long_line_is_cut)
{
	char out[8192];
	struct capture c;
	char *big = malloc(10000);
	size_t n;

	ck_assert_ptr_nonnull(big);
	memset(big, 'x', 9999);
	big[9999] = '\0';
	capture_start(&c);
	log_info("payload=%s", big);
	n = capture_end(&c, out, sizeof(out));
	free(big);
	ck_assert_uint_le(n, 4096);
	ck_assert_uint_gt(n, 4000);
	ck_assert_uint_eq(count_char(out, '\n'), 1);
	ck_assert_str_eq(out + n - 5, "x...\n");
}
END_TEST

START_TEST(test_limit_burst_per_second)
{
	struct log_limit l = { 0 };
	char out[512];
	struct capture c;

	ck_assert(log_limit_ok_at(&l, 3, 100));
	ck_assert(log_limit_ok_at(&l, 3, 100));
	ck_assert(log_limit_ok_at(&l, 3, 100));
	ck_assert(!log_limit_ok_at(&l, 3, 100));
	ck_assert(!log_limit_ok_at(&l, 3, 100));
	ck_assert_uint_eq(l.dropped, 2);

	/* the next second reports the suppressed count, once */
	capture_start(&c);
	ck_assert(log_limit_ok_at(&l, 3, 101));
	ck_assert(log_limit_ok_at(&l, 3, 101));
	capture_end(&c, out, sizeof(out));
	ck_assert_ptr_nonnull(strstr(out, " warn log lines suppressed n=2\n"));
	ck_assert_uint_eq(count_char(out, '\n'), 1);
	ck_assert_uint_eq(l.dropped, 0);

	/* a quiet second prints nothing */
	capture_start(&c);
	ck_assert(log_limit_ok_at(&l, 3, 105));
	capture_end(&c, out, sizeof(out));
	ck_assert_str_eq(out, "");
}
END_TEST

START_TEST(test_limit_zero_burst)
{
	struct log_limit l = { 0 };

	ck_assert(!log_limit_ok_at(&l, 0, 5));
	ck_assert(!log_limit_ok_at(&l, 0, 6));
	ck_assert_uint_eq(l.dropped, 2);
}
END_TEST

START_TEST(test_limit_real_clock)
{
	struct log_limit l = { 0 };

	ck_assert(log_limit_ok(&l, 1));
	ck_assert_int_ne(l.window, 0);
}
END_TEST

static Suite *
log_suite(void)
{
	Suite *s = suite_create("log");
	TCase *fresh = tcase_create("fresh");
	TCase *tc = tcase_create("log");

	tcase_add_test(fresh, test_level_default);
	suite_add_tcase(s, fresh);
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, test_line_format);
	tcase_add_test(tc, test_level_names_in_lines);
	tcase_add_test(tc, test_level_filter);
	tcase_add_test(tc, test_level_clamp);
	tcase_add_test(tc, test_level_parse);
	tcase_add_test(tc, test_control_chars_stay_on_one_line);
	tcase_add_test(tc, test_long_line_is_cut);
	tcase_add_test(tc, test_limit_burst_per_second);
	tcase_add_test(tc, test_limit_zero_burst);
	tcase_add_test(tc, test_limit_real_clock);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(log_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
