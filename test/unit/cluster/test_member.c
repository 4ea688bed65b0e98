/*
 * Unit tests for cluster/member.c: which membership update wins, when a node
 * refutes, when a suspect is declared dead, node name and address checks,
 * and the Auth proof (RFC 4231 HMAC-SHA256 vectors).
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster.h"
#include "cluster/cluster_int.h"

struct wins_case {
	enum cluster_member_state cur;
	uint64_t cur_inc;
	enum cluster_member_state st;
	uint64_t inc;
	bool wins;
};

static const struct wins_case wins_cases[] = {
	/* a higher incarnation always wins */
	{ CLUSTER_ALIVE, 1, CLUSTER_ALIVE, 2, true },
	{ CLUSTER_SUSPECT, 1, CLUSTER_ALIVE, 2, true },
	{ CLUSTER_DEAD, 1, CLUSTER_ALIVE, 2, true },
	{ CLUSTER_LEFT, 1, CLUSTER_ALIVE, 2, true },
	{ CLUSTER_ALIVE, 5, CLUSTER_SUSPECT, 6, true },
	/* a lower one never does */
	{ CLUSTER_ALIVE, 2, CLUSTER_DEAD, 1, false },
	{ CLUSTER_SUSPECT, 2, CLUSTER_LEFT, 1, false },
	{ CLUSTER_ALIVE, 2, CLUSTER_ALIVE, 1, false },
	/* equal: ALIVE < SUSPECT < DEAD < LEFT */
	{ CLUSTER_ALIVE, 3, CLUSTER_ALIVE, 3, false },
	{ CLUSTER_ALIVE, 3, CLUSTER_SUSPECT, 3, true },
	{ CLUSTER_ALIVE, 3, CLUSTER_DEAD, 3, true },
	{ CLUSTER_SUSPECT, 3, CLUSTER_ALIVE, 3, false },
	{ CLUSTER_SUSPECT, 3, CLUSTER_SUSPECT, 3, false },
	{ CLUSTER_SUSPECT, 3, CLUSTER_DEAD, 3, true },
	{ CLUSTER_DEAD, 3, CLUSTER_SUSPECT, 3, false },
	{ CLUSTER_DEAD, 3, CLUSTER_LEFT, 3, true },
	{ CLUSTER_LEFT, 3, CLUSTER_DEAD, 3, false },
	{ CLUSTER_LEFT, 3, CLUSTER_ALIVE, 3, false },
};

START_TEST(test_update_wins)
{
	const struct wins_case *w = &wins_cases[_i];

	ck_assert_msg(member_update_wins(w->cur, w->cur_inc, w->st, w->inc) ==
	                      w->wins,
	              "case %d", _i);
}
END_TEST

START_TEST(test_refute)
{
	/* suspected or declared dead at our incarnation: go one above */
	ck_assert_uint_eq(member_refute(7, CLUSTER_SUSPECT, 7), 8);
	ck_assert_uint_eq(member_refute(7, CLUSTER_DEAD, 7), 8);
	ck_assert_uint_eq(member_refute(7, CLUSTER_LEFT, 7), 8);
	/* news about an older incarnation, or our own claim: nothing */
	ck_assert_uint_eq(member_refute(7, CLUSTER_SUSPECT, 6), 7);
	ck_assert_uint_eq(member_refute(7, CLUSTER_ALIVE, 7), 7);
	/* any claim above ours (a previous life with a faster clock) */
	ck_assert_uint_eq(member_refute(7, CLUSTER_ALIVE, 9), 10);
	ck_assert_uint_eq(member_refute(7, CLUSTER_DEAD, 9), 10);
}
END_TEST

START_TEST(test_dead_at)
{
	/* heard at 1000, suspected at 1300, ping 100, dead 600: dead at
	 * 1000 + 600 - 50, inside dead_ms of the last contact */
	ck_assert_uint_eq(member_dead_at(1300, 1000, 100, 600), 1550);
	/* suspected late: at least one ping to refute */
	ck_assert_uint_eq(member_dead_at(1500, 1000, 100, 600), 1600);
	/* defaults: 5000 after the last contact, minus 500 */
	ck_assert_uint_eq(member_dead_at(12000, 10000, 1000, 5000), 14500);
	/* heard after the suspicion began (relayed Ack) */
	ck_assert_uint_eq(member_dead_at(1000, 1200, 100, 600), 1750);
}
END_TEST

START_TEST(test_name_valid)
{
	char longname[CLUSTER_NAME_MAX + 2];

	ck_assert(member_name_is_valid("a"));
	ck_assert(member_name_is_valid("mqd-1.example"));
	ck_assert(member_name_is_valid("node 1"));
	ck_assert(!member_name_is_valid(""));
	ck_assert(!member_name_is_valid("a\nb"));
	ck_assert(!member_name_is_valid("a\"b"));
	ck_assert(!member_name_is_valid("a\x7f"));
	memset(longname, 'x', sizeof(longname));
	longname[CLUSTER_NAME_MAX] = '\0';
	ck_assert(member_name_is_valid(longname));
	longname[CLUSTER_NAME_MAX] = 'x';
	longname[CLUSTER_NAME_MAX + 1] = '\0';
	ck_assert(!member_name_is_valid(longname));
}
END_TEST

struct addr_case {
	const char *in;
	int rc;
	const char *host;
	const char *port;
};

static const struct addr_case addr_cases[] = {
	{ "127.0.0.1:7000", 0, "127.0.0.1", "7000" },
	{ "mqd-2:7883", 0, "mqd-2", "7883" },
	{ "mqd-2", 0, "mqd-2", "7883" },
	{ "[::1]:9000", 0, "::1", "9000" },
	{ "[::1]", 0, "::1", "7883" },
	{ "::1", 0, "::1", "7883" },
	{ "fe80::1", 0, "fe80::1", "7883" },
	{ "", ERR_MALFORMED, NULL, NULL },
	{ ":7000", ERR_MALFORMED, NULL, NULL },
	{ "host:", ERR_MALFORMED, NULL, NULL },
	{ "host:0", ERR_MALFORMED, NULL, NULL },
	{ "host:65536", ERR_MALFORMED, NULL, NULL },
	{ "host:12a", ERR_MALFORMED, NULL, NULL },
	{ "host:-1", ERR_MALFORMED, NULL, NULL },
	{ "[::1", ERR_MALFORMED, NULL, NULL },
	{ "[]:7000", ERR_MALFORMED, NULL, NULL },
	{ "[::1]x", ERR_MALFORMED, NULL, NULL },
};

START_TEST(test_addr_split)
{
	const struct addr_case *a = &addr_cases[_i];
	char host[64], port[8];
	int rc;

	rc = member_addr_split(a->in, 7883, host, sizeof(host), port,
	                       sizeof(port));
	ck_assert_msg(rc == a->rc, "%s: rc %d", a->in, rc);
	if (rc == 0) {
		ck_assert_str_eq(host, a->host);
		ck_assert_str_eq(port, a->port);
	}
}
END_TEST

START_TEST(test_addr_split_limits)
{
	char in[CLUSTER_ADDR_MAX + 8], host[16], port[8];

	/* the host does not fit the caller's buffer */
	ck_assert_int_eq(member_addr_split("averylonghostname:1", 0, host,
	                                   sizeof(host), port, sizeof(port)),
	                 ERR_MALFORMED);
	/* no port and no default */
	ck_assert_int_eq(member_addr_split("h", 0, host, sizeof(host), port,
	                                   sizeof(port)),
	                 ERR_MALFORMED);
	memset(in, 'a', sizeof(in));
	in[sizeof(in) - 1] = '\0';
	ck_assert_int_eq(member_addr_split(in, 1, host, sizeof(host), port,
	                                   sizeof(port)),
	                 ERR_MALFORMED);
}
END_TEST

static void
hex(const uint8_t *p, size_t n, char *out)
{
	size_t i;

	for (i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", p[i]);
}

START_TEST(test_auth_mac)
{
	/* RFC 4231 test case 2: key "Jefe", data "what do ya want for
	 * nothing?", split as a 16-byte nonce and a name */
	const uint8_t *nonce = (const uint8_t *)"what do ya want ";
	uint8_t mac[CLUSTER_MAC_LEN], mac2[CLUSTER_MAC_LEN];
	char h[2 * CLUSTER_MAC_LEN + 1];

	ck_assert_int_eq(member_auth_mac("Jefe", 4, nonce, "for nothing?", mac),
	                 0);
	hex(mac, sizeof(mac), h);
	ck_assert_str_eq(h, "5bdcc146bf60754e6a042426089575c7"
	                    "5a003f089d2739839dec58b964ec3843");
	/* the name and the secret both change the proof */
	ck_assert_int_eq(
	        member_auth_mac("Jefe", 4, nonce, "for nothing!", mac2), 0);
	ck_assert(memcmp(mac, mac2, sizeof(mac)) != 0);
	ck_assert_int_eq(
	        member_auth_mac("Jeff", 4, nonce, "for nothing?", mac2), 0);
	ck_assert(memcmp(mac, mac2, sizeof(mac)) != 0);
}
END_TEST

START_TEST(test_state_names)
{
	ck_assert_str_eq(member_state_name(CLUSTER_ALIVE), "alive");
	ck_assert_str_eq(member_state_name(CLUSTER_SUSPECT), "suspect");
	ck_assert_str_eq(member_state_name(CLUSTER_DEAD), "dead");
	ck_assert_str_eq(member_state_name(CLUSTER_LEFT), "left");
}
END_TEST

static Suite *
member_suite(void)
{
	Suite *s = suite_create("cluster_member");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, test_update_wins, 0,
	                    sizeof(wins_cases) / sizeof(wins_cases[0]));
	tcase_add_test(tc, test_refute);
	tcase_add_test(tc, test_dead_at);
	tcase_add_test(tc, test_name_valid);
	tcase_add_loop_test(tc, test_addr_split, 0,
	                    sizeof(addr_cases) / sizeof(addr_cases[0]));
	tcase_add_test(tc, test_addr_split_limits);
	tcase_add_test(tc, test_auth_mac);
	tcase_add_test(tc, test_state_names);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(member_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
