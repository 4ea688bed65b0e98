/*
 * Unit tests for proto/utf8.c: the UTF-8 rules of MQTT 3.1.1 section 1.5.3
 * and MQTT 5 section 1.5.4, and their use in decoded string fields.
 */
#include "proto/proto.h"

#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct utf8_case {
	const char *name;
	const char *s;
	size_t n;
	bool ok;
};

#define CASE(name, lit, ok)                    \
	{                                      \
		name, lit, sizeof(lit) - 1, ok \
	}

static const struct utf8_case cases[] = {
	CASE("empty", "", true),
	CASE("ascii", "sport/tennis", true),
	CASE("2-byte U+00E9", "caf\xc3\xa9", true),
	CASE("3-byte U+20AC", "\xe2\x82\xac", true),
	CASE("4-byte U+1F600", "\xf0\x9f\x98\x80", true),
	CASE("U+10FFFF", "\xf4\x8f\xbf\xbf", true),
	CASE("U+D7FF", "\xed\x9f\xbf", true),
	CASE("U+E000", "\xee\x80\x80", true),
	/* [MQTT-1.5.3-3] 3.1.1, [MQTT-1.5.4-3] v5: BOM is a character */
	CASE("U+FEFF",
	     "\xef\xbb\xbf"
	     "a",
	     true),
	/* non-characters and controls other than U+0000 are accepted */
	CASE("U+FFFF", "\xef\xbf\xbf", true),
	CASE("U+0001", "\x01", true),
	CASE("U+007F", "\x7f", true),
	CASE("U+0080", "\xc2\x80", true),
	CASE("U+0800", "\xe0\xa0\x80", true),
	CASE("U+10000", "\xf0\x90\x80\x80", true),
	/* [MQTT-1.5.3-2] 3.1.1, [MQTT-1.5.4-2] v5: U+0000 */
	CASE("U+0000",
	     "a\x00"
	     "b",
	     false),
	CASE("overlong U+0000", "\xc0\x80", false),
	/* [MQTT-1.5.3-1] 3.1.1, [MQTT-1.5.4-1] v5: ill-formed */
	CASE("overlong 2-byte", "\xc1\xbf", false),
	CASE("overlong 3-byte", "\xe0\x9f\xbf", false),
	CASE("overlong 4-byte", "\xf0\x8f\xbf\xbf", false),
	CASE("surrogate U+D800", "\xed\xa0\x80", false),
	CASE("surrogate U+DBFF", "\xed\xaf\xbf", false),
	CASE("surrogate U+DC00", "\xed\xb0\x80", false),
	CASE("surrogate U+DFFF", "\xed\xbf\xbf", false),
	CASE("U+110000", "\xf4\x90\x80\x80", false),
	CASE("lead F5", "\xf5\x80\x80\x80", false),
	CASE("lead FF", "\xff", false),
	CASE("lone continuation", "\x80", false),
	CASE("truncated 2-byte", "\xc3", false),
	CASE("truncated 3-byte", "\xe2\x82", false),
	CASE("truncated 4-byte", "\xf0\x9f\x98", false),
	CASE("truncated then ascii",
	     "\xe2\x82"
	     "a",
	     false),
	CASE("bad second continuation", "\xe2\x82\x41", false),
	CASE("bad third continuation", "\xf0\x9f\x98\xc0", false),
};

START_TEST(test_utf8_table)
{
	const struct utf8_case *c = &cases[_i];

	ck_assert_msg(mqtt_utf8_is_valid((const uint8_t *)c->s, c->n) == c->ok,
	              "case %s", c->name);
}
END_TEST

/* Every code point through the encoder's rules: only surrogates and U+0000
 * are refused. */
START_TEST(test_utf8_all_code_points)
{
	uint8_t s[4];
	uint32_t cp;
	size_t n;
	bool want;

	for (cp = 0; cp <= 0x10ffff; cp++) {
		if (cp < 0x80) {
			s[0] = (uint8_t)cp;
			n = 1;
		} else if (cp < 0x800) {
			s[0] = (uint8_t)(0xc0 | cp >> 6);
			s[1] = (uint8_t)(0x80 | (cp & 0x3f));
			n = 2;
		} else if (cp < 0x10000) {
			s[0] = (uint8_t)(0xe0 | cp >> 12);
			s[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
			s[2] = (uint8_t)(0x80 | (cp & 0x3f));
			n = 3;
		} else {
			s[0] = (uint8_t)(0xf0 | cp >> 18);
			s[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
			s[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
			s[3] = (uint8_t)(0x80 | (cp & 0x3f));
			n = 4;
		}
		want = cp != 0 && (cp < 0xd800 || cp > 0xdfff);
		ck_assert_msg(mqtt_utf8_is_valid(s, n) == want, "U+%04X",
		              (unsigned)cp);
	}
}
END_TEST

/* The rules apply to strings inside packets: client id, topic, user name. */
START_TEST(test_utf8_in_packets)
{
	/* 3.1.1 CONNECT, client id "a\xed\xa0\x80" (a surrogate) */
	static const uint8_t bad_id[] = { 0x10, 0x10, 0x00, 0x04, 'M',  0x51,
		                          'T',  'T',  0x04, 0x02, 0x00, 0x3c,
		                          0x00, 0x04, 'a',  0xed, 0xa0, 0x80 };
	/* PUBLISH with topic "a\0" */
	static const uint8_t nul_topic[] = {
		0x30, 0x04, 0x00, 0x02, 'a', 0x00
	};
	/* PUBLISH with topic of an overlong '/' */
	static const uint8_t overlong[] = {
		0x30, 0x04, 0x00, 0x02, 0xc0, 0xaf
	};
	/* 3.1.1 CONNECT with user name "\xff" */
	static const uint8_t bad_user[] = {
		0x10, 0x10, 0x00, 0x04, 'M',  'Q', 'T',  'T',  0x04,
		0x82, 0x00, 0x3c, 0x00, 0x01, 'c', 0x00, 0x01, 0xff
	};
	struct mqtt_packet pkt;
	size_t used;

	/* [MQTT-3.1.3-4] 3.1.1 and [MQTT-1.5.3-1] 3.1.1 */
	ck_assert_int_eq(mqtt_decode(bad_id, sizeof(bad_id), 0, &pkt, &used),
	                 ERR_BAD_UTF8);
	/* [MQTT-1.5.3-2] 3.1.1, [MQTT-4.7.3-2] 3.1.1 */
	ck_assert_int_eq(mqtt_decode(nul_topic, sizeof(nul_topic), MQTT_V311,
	                             &pkt, &used),
	                 ERR_BAD_UTF8);
	/* [MQTT-1.5.4-2] v5, [MQTT-4.7.3-2] v5 */
	ck_assert_int_eq(
	        mqtt_decode(nul_topic, sizeof(nul_topic), MQTT_V5, &pkt, &used),
	        ERR_BAD_UTF8);
	/* [MQTT-1.5.4-1] v5, [MQTT-3.3.2-1] v5 */
	ck_assert_int_eq(
	        mqtt_decode(overlong, sizeof(overlong), MQTT_V5, &pkt, &used),
	        ERR_BAD_UTF8);
	/* [MQTT-3.3.2-1] 3.1.1 */
	ck_assert_int_eq(
	        mqtt_decode(overlong, sizeof(overlong), MQTT_V311, &pkt, &used),
	        ERR_BAD_UTF8);
	/* [MQTT-3.1.3-11] 3.1.1 (user name) */
	ck_assert_int_eq(
	        mqtt_decode(bad_user, sizeof(bad_user), 0, &pkt, &used),
	        ERR_BAD_UTF8);
}
END_TEST

static Suite *
utf8_suite(void)
{
	Suite *s = suite_create("proto_utf8");
	TCase *tc = tcase_create("utf8");

	tcase_add_loop_test(tc, test_utf8_table, 0,
	                    sizeof(cases) / sizeof(cases[0]));
	tcase_add_test(tc, test_utf8_all_code_points);
	tcase_add_test(tc, test_utf8_in_packets);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(utf8_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
