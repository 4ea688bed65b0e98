/*
 * Unit tests for proto/topic.c: topic name and filter validity, matching
 * (MQTT section 4.7 with the '$' rule), client identifier rules.
 */
#include "proto/proto.h"

#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static struct mqtt_bytes
B(const char *s) {
	return (struct mqtt_bytes){ (const uint8_t *)s, strlen(s) };
}

struct valid_case {
	const char *s;
	bool name_ok;
	bool filter_ok;
};

static const struct valid_case valid_cases[] = {
	{ "sport/tennis/player1", true, true },
	{ "/", true, true },
	{ "//", true, true },
	{ "/finance", true, true },
	{ "sport/", true, true },
	{ "a b/c d", true, true }, /* spaces are fine */
	{ "$SYS/broker", true, true },
	{ "caf\xc3\xa9", true, true },
	/* [MQTT-4.7.1-2] v5 / [MQTT-4.7.1-3] 3.1.1: '+' fills a level */
	{ "+", false, true },
	{ "+/tennis/#", false, true },
	{ "sport/+/player1", false, true },
	{ "sport/+", false, true },
	{ "/+", false, true },
	{ "+/+", false, true },
	{ "sport+", false, false },
	{ "a+/b", false, false },
	{ "a/+b", false, false },
	{ "++", false, false },
	/* [MQTT-4.7.1-1] v5 / [MQTT-4.7.1-2] 3.1.1: '#' last and alone */
	{ "#", false, true },
	{ "sport/#", false, true },
	{ "sport/tennis/#", false, true },
	{ "/#", false, true },
	{ "sport/tennis#", false, false },
	{ "sport/tennis/#/ranking", false, false },
	{ "#/", false, false },
	{ "##", false, false },
	{ "a#", false, false },
	/* [MQTT-4.7.3-1]: never empty */
	{ "", false, false },
};

START_TEST(test_topic_validity)
{
	const struct valid_case *c = &valid_cases[_i];

	/* [MQTT-4.7.0-1] v5 / [MQTT-4.7.1-1] 3.1.1: no wildcards in names */
	ck_assert_msg(mqtt_topic_name_is_valid(B(c->s)) == c->name_ok,
	              "name %s", c->s);
	ck_assert_msg(mqtt_topic_filter_is_valid(B(c->s)) == c->filter_ok,
	              "filter %s", c->s);
}
END_TEST

START_TEST(test_topic_validity_utf8_and_length)
{
	static const uint8_t nul[] = { 'a', 0, 'b' };
	static const uint8_t sur[] = { 'a', '/', 0xed, 0xa0, 0x80 };
	struct mqtt_bytes t;
	uint8_t *big = malloc(65536);

	/* [MQTT-4.7.3-2]: U+0000 in a name or filter */
	t = (struct mqtt_bytes){ nul, sizeof(nul) };
	ck_assert(!mqtt_topic_name_is_valid(t));
	ck_assert(!mqtt_topic_filter_is_valid(t));
	t = (struct mqtt_bytes){ sur, sizeof(sur) };
	ck_assert(!mqtt_topic_name_is_valid(t));
	ck_assert(!mqtt_topic_filter_is_valid(t));
	/* [MQTT-4.7.3-3]: at most 65535 bytes */
	ck_assert_ptr_nonnull(big);
	memset(big, 'a', 65536);
	t = (struct mqtt_bytes){ big, 65535 };
	ck_assert(mqtt_topic_name_is_valid(t));
	ck_assert(mqtt_topic_filter_is_valid(t));
	t.len = 65536;
	ck_assert(!mqtt_topic_name_is_valid(t));
	ck_assert(!mqtt_topic_filter_is_valid(t));
	free(big);
}
END_TEST

struct match_case {
	const char *filter;
	const char *topic;
	bool match;
};

static const struct match_case match_cases[] = {
	{ "sport/tennis/player1", "sport/tennis/player1", true },
	{ "sport/tennis/player1", "sport/tennis/player2", false },
	{ "sport/tennis/player1", "sport/tennis", false },
	{ "sport/tennis", "sport/tennis/player1", false },
	/* §4.7.1 examples of '#' */
	{ "sport/tennis/player1/#", "sport/tennis/player1", true },
	{ "sport/tennis/player1/#", "sport/tennis/player1/ranking", true },
	{ "sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon",
	  true },
	{ "sport/#", "sport", true },
	{ "sport/#", "sport/", true },
	{ "sport/#", "sports", false },
	{ "sport/#", "sportx/a", false },
	{ "#", "sport/tennis", true },
	{ "#", "/", true },
	{ "#", "a", true },
	{ "/#", "/finance", true },
	{ "/#", "finance", false },
	/* §4.7.1 examples of '+' */
	{ "sport/tennis/+", "sport/tennis/player1", true },
	{ "sport/tennis/+", "sport/tennis/player2", true },
	{ "sport/tennis/+", "sport/tennis/player1/ranking", false },
	{ "sport/+", "sport", false },
	{ "sport/+", "sport/", true },
	{ "+/+", "/finance", true },
	{ "/+", "/finance", true },
	{ "+", "/finance", false },
	{ "+", "finance", true },
	{ "+/tennis/#", "sport/tennis/player1", true },
	{ "+/tennis/#", "sport/tennis", true },
	{ "+/tennis/#", "sport/golf", false },
	{ "+/+/+", "a//c", true },
	{ "a/+/c", "a//c", true },
	{ "a/+/c", "a/c", false },
	{ "+/#", "a", true },
	{ "+/#", "/", true },
	{ "//", "//", true },
	{ "/", "//", false },
	/* [MQTT-4.7.3-4]: byte for byte, case sensitive */
	{ "ACCOUNTS", "Accounts", false },
	{ "a b", "a b", true },
	{ "caf\xc3\xa9", "caf\xc3\xa9", true },
	{ "cafe", "caf\xc3\xa9", false },
	/* [MQTT-4.7.2-1]: wildcard-first filters never match '$' topics */
	{ "#", "$SYS/broker/clients", false },
	{ "+/monitor/Clients", "$SYS/monitor/Clients", false },
	{ "+", "$SYS", false },
	{ "+/#", "$SYS/x", false },
	{ "$SYS/#", "$SYS/monitor/Clients", true },
	{ "$SYS/#", "$SYS", true },
	{ "$SYS/monitor/+", "$SYS/monitor/Clients", true },
	{ "$SYS/+/Clients", "$SYS/monitor/Clients", true },
	{ "a/#", "a/$SYS", true },
	{ "a/+", "a/$x", true },
	{ "/#", "/$SYS", true },
	{ "$share/g/a", "a", false },
};

START_TEST(test_topic_matches)
{
	const struct match_case *c = &match_cases[_i];

	ck_assert_msg(mqtt_topic_matches(B(c->filter), B(c->topic)) == c->match,
	              "filter %s topic %s", c->filter, c->topic);
}
END_TEST

START_TEST(test_topic_matches_empty)
{
	ck_assert(!mqtt_topic_matches(B(""), B("a")));
	ck_assert(!mqtt_topic_matches(B("#"), B("")));
}
END_TEST

START_TEST(test_client_id_check)
{
	static const uint8_t bad[] = { 'a', 0xc0, 0x80 };
	struct mqtt_bytes id23 = B("abcdefghijklmnopqrstuvw");
	struct mqtt_bytes id24 = B("abcdefghijklmnopqrstuvwx");
	struct mqtt_bytes empty = B("");
	struct mqtt_bytes badid = { bad, sizeof(bad) };

	/* MQTT 3.1: 1..23 bytes */
	ck_assert_int_eq(mqtt_client_id_check(MQTT_V31, true, B("a")), 0);
	ck_assert_int_eq(mqtt_client_id_check(MQTT_V31, true, id23), 0);
	ck_assert_int_eq(mqtt_client_id_check(MQTT_V31, true, id24),
	                 ERR_BAD_CLIENT_ID);
	ck_assert_int_eq(mqtt_client_id_check(MQTT_V31, true, empty),
	                 ERR_BAD_CLIENT_ID);
	/* [MQTT-3.1.3-5] 3.1.1: 1..23 alphanumerics always accepted;
	 * longer ones are accepted too */
	ck_assert_int_eq(mqtt_client_id_check(MQTT_V311, false, id23), 0);
	ck_assert_int_eq(mqtt_client_id_check(MQTT_V311, false, id24), 0);
	/* [MQTT-3.1.3-7] [MQTT-3.1.3-8] 3.1.1: empty needs clean session */
	ck_assert_int_eq(mqtt_client_id_check(MQTT_V311, true, empty), 0);
	ck_assert_int_eq(mqtt_client_id_check(MQTT_V311, false, empty),
	                 ERR_BAD_CLIENT_ID);
	/* [MQTT-3.1.3-5] v5; v5 always allows empty (the server assigns
	 * one, [MQTT-3.1.3-6] v5) */
	ck_assert_int_eq(mqtt_client_id_check(MQTT_V5, false, id23), 0);
	ck_assert_int_eq(mqtt_client_id_check(MQTT_V5, false, empty), 0);
	ck_assert_int_eq(mqtt_client_id_check(MQTT_V5, true, empty), 0);
	/* [MQTT-3.1.3-4] 3.1.1 and v5: valid UTF-8 */
	ck_assert_int_eq(mqtt_client_id_check(MQTT_V31, true, badid),
	                 ERR_BAD_UTF8);
	ck_assert_int_eq(mqtt_client_id_check(MQTT_V311, true, badid),
	                 ERR_BAD_UTF8);
	ck_assert_int_eq(mqtt_client_id_check(MQTT_V5, true, badid),
	                 ERR_BAD_UTF8);
}
END_TEST

static Suite *
topic_suite(void)
{
	Suite *s = suite_create("proto_topic");
	TCase *tc = tcase_create("topic");

	tcase_add_loop_test(tc, test_topic_validity, 0,
	                    sizeof(valid_cases) / sizeof(valid_cases[0]));
	tcase_add_test(tc, test_topic_validity_utf8_and_length);
	tcase_add_loop_test(tc, test_topic_matches, 0,
	                    sizeof(match_cases) / sizeof(match_cases[0]));
	tcase_add_test(tc, test_topic_matches_empty);
	tcase_add_test(tc, test_client_id_check);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(topic_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
