/*
 * Unit tests for cluster/frame.c: encode / decode round trips of the
 * envelope bodies, incomplete input, and rejection of oversize lengths,
 * garbage, another protocol version and an envelope without a body.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster.h"
#include "cluster/cluster.pb-c.h"
#include "cluster/cluster_int.h"

static ProtobufCBinaryData
bin(const char *s)
{
	ProtobufCBinaryData b = { strlen(s), (uint8_t *)s };

	return b;
}

static bool
bin_eq(ProtobufCBinaryData b, const char *s)
{
	return b.len == strlen(s) && memcmp(b.data, s, b.len) == 0;
}

/* Decodes all of b as one frame. */
static Mqd__Envelope *
decode_ok(const struct buf *b)
{
	Mqd__Envelope *env = NULL;
	const char *why = NULL;
	size_t used = 0;

	ck_assert_int_eq(frame_decode(b->data, b->len, &used, &env, &why), 0);
	ck_assert_uint_eq(used, b->len);
	ck_assert_ptr_nonnull(env);
	return env;
}

START_TEST(test_publish_round_trip)
{
	Mqd__Envelope env = MQD__ENVELOPE__INIT, *out;
	Mqd__Publish p = MQD__PUBLISH__INIT;
	struct buf b;
	uint32_t len;

	p.origin_node = 0x1122334455667788ull;
	p.msg_id = 42;
	p.topic = bin("a/b");
	p.payload = bin("hello\0world");
	p.payload.len = 11;
	p.props = bin("\x03\x01\x02");
	p.qos = 2;
	p.retain = true;
	p.expiry_s = 3600;
	p.origin_client = bin("client-1");
	env.body_case = MQD__ENVELOPE__BODY_PUBLISH;
	env.publish = &p;
	buf_init(&b);
	ck_assert_int_eq(frame_encode(&b, &env), 0);
	ck_assert_uint_eq(env.version, CLUSTER_PROTO_VERSION);
	ck_assert_int_eq(frame_peek(b.data, b.len, &len), 0);
	ck_assert_uint_eq(len + 4, b.len);
	out = decode_ok(&b);
	ck_assert_int_eq(out->body_case, MQD__ENVELOPE__BODY_PUBLISH);
	ck_assert_str_eq(frame_body_name(out), "publish");
	ck_assert(out->publish->origin_node == 0x1122334455667788ull);
	ck_assert_uint_eq(out->publish->msg_id, 42);
	ck_assert(bin_eq(out->publish->topic, "a/b"));
	ck_assert_uint_eq(out->publish->payload.len, 11);
	ck_assert(memcmp(out->publish->payload.data, "hello\0world", 11) == 0);
	ck_assert(bin_eq(out->publish->props, "\x03\x01\x02"));
	ck_assert_uint_eq(out->publish->qos, 2);
	ck_assert(out->publish->retain);
	ck_assert_uint_eq(out->publish->expiry_s, 3600);
	ck_assert(bin_eq(out->publish->origin_client, "client-1"));
	frame_free(out);
	frame_free(NULL);
	buf_fini(&b);
}
END_TEST

START_TEST(test_retained_round_trip)
{
	Mqd__Envelope env = MQD__ENVELOPE__INIT, *out;
	Mqd__RetainedSync s = MQD__RETAINED_SYNC__INIT;
	Mqd__Retained e[2], *pv[2] = { &e[0], &e[1] };
	const Mqd__Retained *r;
	struct buf b;

	mqd__retained__init(&e[0]);
	mqd__retained__init(&e[1]);
	e[0].topic = bin("r/1");
	e[0].payload = bin("v");
	e[0].props = bin("\x02\x01\x01");
	e[0].qos = 1;
	e[0].expiry_s = 60;
	e[0].stamp = 0x0123456789ab0001ull;
	e[0].origin_node = 7;
	e[1].topic = bin("r/2"); /* a tombstone: no payload */
	e[1].stamp = 2;
	e[1].origin_node = 8;
	s.n_entries = 2;
	s.entries = pv;
	s.snapshot = true;
	s.more = true;
	env.body_case = MQD__ENVELOPE__BODY_RETAINED_SYNC;
	env.retained_sync = &s;
	buf_init(&b);
	ck_assert_int_eq(frame_encode(&b, &env), 0);
	out = decode_ok(&b);
	ck_assert_int_eq(out->body_case, MQD__ENVELOPE__BODY_RETAINED_SYNC);
	ck_assert_str_eq(frame_body_name(out), "retained-sync");
	ck_assert_uint_eq(out->retained_sync->n_entries, 2);
	ck_assert(out->retained_sync->snapshot && out->retained_sync->more);
	r = out->retained_sync->entries[0];
	ck_assert(bin_eq(r->topic, "r/1") && bin_eq(r->payload, "v"));
	ck_assert(bin_eq(r->props, "\x02\x01\x01"));
	ck_assert_uint_eq(r->qos, 1);
	ck_assert_uint_eq(r->expiry_s, 60);
	ck_assert(r->stamp == 0x0123456789ab0001ull);
	ck_assert_uint_eq(r->origin_node, 7);
	r = out->retained_sync->entries[1];
	ck_assert(bin_eq(r->topic, "r/2"));
	ck_assert_uint_eq(r->payload.len, 0);
	ck_assert_uint_eq(r->stamp, 2);
	ck_assert_uint_eq(r->origin_node, 8);
	frame_free(out);
	buf_fini(&b);
}
END_TEST

START_TEST(test_hello_round_trip)
{
	Mqd__Envelope env = MQD__ENVELOPE__INIT, *out;
	Mqd__Hello h = MQD__HELLO__INIT;
	Mqd__Member m[2] = { MQD__MEMBER__INIT, MQD__MEMBER__INIT };
	Mqd__Member *pm[2] = { &m[0], &m[1] };
	uint8_t nonce[CLUSTER_NONCE_LEN] = { 1, 2, 3 };
	struct buf b;

	m[0].name = "a";
	m[0].node_id = 1;
	m[0].addr = "127.0.0.1:1";
	m[0].incarnation = 10;
	m[1].name = "b";
	m[1].node_id = 2;
	m[1].addr = "b:7883";
	m[1].incarnation = 20;
	m[1].state = MQD__MEMBER_STATE__MEMBER_SUSPECT;
	h.version = CLUSTER_PROTO_VERSION;
	h.name = "a";
	h.node_id = 1;
	h.addr = "127.0.0.1:1";
	h.nonce.data = nonce;
	h.nonce.len = sizeof(nonce);
	h.incarnation = 10;
	h.auth = true;
	h.n_members = 2;
	h.members = pm;
	env.body_case = MQD__ENVELOPE__BODY_HELLO;
	env.hello = &h;
	buf_init(&b);
	ck_assert_int_eq(frame_encode(&b, &env), 0);
	out = decode_ok(&b);
	ck_assert_str_eq(frame_body_name(out), "hello");
	ck_assert_str_eq(out->hello->name, "a");
	ck_assert_str_eq(out->hello->addr, "127.0.0.1:1");
	ck_assert(out->hello->auth);
	ck_assert_uint_eq(out->hello->nonce.len, CLUSTER_NONCE_LEN);
	ck_assert_uint_eq(out->hello->n_members, 2);
	ck_assert_str_eq(out->hello->members[1]->name, "b");
	ck_assert_int_eq(out->hello->members[1]->state,
	                 MQD__MEMBER_STATE__MEMBER_SUSPECT);
	ck_assert_uint_eq(out->hello->members[1]->incarnation, 20);
	frame_free(out);
	buf_fini(&b);
}
END_TEST

/* Two frames back to back, then each prefix of the second. */
START_TEST(test_stream_and_incomplete)
{
	Mqd__Envelope env = MQD__ENVELOPE__INIT, *out = NULL;
	Mqd__Ping p = MQD__PING__INIT;
	Mqd__RouteDelta d = MQD__ROUTE_DELTA__INIT;
	const char *why = NULL;
	size_t used = 0, first, i;
	struct buf b;

	p.seq = 7;
	env.body_case = MQD__ENVELOPE__BODY_PING;
	env.ping = &p;
	buf_init(&b);
	ck_assert_int_eq(frame_encode(&b, &env), 0);
	first = b.len;
	d.seq = 3;
	d.add = true;
	d.filter = bin("x/#");
	env.body_case = MQD__ENVELOPE__BODY_ROUTE_DELTA;
	env.route_delta = &d;
	ck_assert_int_eq(frame_encode(&b, &env), 0);
	ck_assert_int_eq(frame_decode(b.data, b.len, &used, &out, &why), 0);
	ck_assert_uint_eq(used, first);
	ck_assert_uint_eq(out->ping->seq, 7);
	frame_free(out);
	for (i = 0; i < b.len - first; i++) {
		ck_assert_int_eq(
		        frame_decode(b.data + first, i, &used, &out, &why),
		        ERR_AGAIN);
		ck_assert_ptr_null(out);
	}
	ck_assert_int_eq(
	        frame_decode(b.data + first, b.len - first, &used, &out, &why),
	        0);
	ck_assert_str_eq(frame_body_name(out), "route-delta");
	ck_assert(out->route_delta->add);
	ck_assert(bin_eq(out->route_delta->filter, "x/#"));
	frame_free(out);
	buf_fini(&b);
}
END_TEST

START_TEST(test_oversize)
{
	/* CLUSTER_FRAME_MAX + 1: refused from the prefix alone */
	const uint8_t big[4] = { 0x01, 0x00, 0x00, 0x01 };
	const uint8_t max[4] = { 0x01, 0x00, 0x00, 0x00 };
	const uint8_t huge[4] = { 0xff, 0xff, 0xff, 0xff };
	Mqd__Envelope *out = NULL;
	const char *why = NULL;
	size_t used;
	uint32_t len;

	ck_assert_int_eq(frame_peek(big, 4, &len), ERR_TOO_LARGE);
	ck_assert_int_eq(frame_peek(huge, 4, &len), ERR_TOO_LARGE);
	ck_assert_int_eq(frame_peek(max, 4, &len), 0);
	ck_assert_uint_eq(len, CLUSTER_FRAME_MAX);
	ck_assert_int_eq(frame_peek(max, 3, &len), ERR_AGAIN);
	ck_assert_int_eq(frame_decode(huge, 4, &used, &out, &why),
	                 ERR_TOO_LARGE);
	ck_assert_str_eq(why, "oversize frame");
	ck_assert_ptr_null(out);
	/* the largest allowed length is just incomplete */
	ck_assert_int_eq(frame_decode(max, 4, &used, &out, &why), ERR_AGAIN);
}
END_TEST

START_TEST(test_encode_too_large)
{
	Mqd__Envelope env = MQD__ENVELOPE__INIT;
	Mqd__Publish p = MQD__PUBLISH__INIT;
	struct buf b;
	uint8_t *payload = calloc(1, CLUSTER_FRAME_MAX);

	ck_assert_ptr_nonnull(payload);
	p.topic = bin("t");
	p.payload.data = payload;
	p.payload.len = CLUSTER_FRAME_MAX;
	env.body_case = MQD__ENVELOPE__BODY_PUBLISH;
	env.publish = &p;
	buf_init(&b);
	ck_assert_int_eq(frame_encode(&b, &env), ERR_TOO_LARGE);
	ck_assert_uint_eq(b.len, 0);
	ck_assert(!buf_failed(&b));
	/* a fixed buffer too small fails the buffer */
	p.payload.len = 100;
	buf_fini(&b);
	{
		uint8_t small[16];

		buf_init_fixed(&b, small, sizeof(small));
		ck_assert_int_eq(frame_encode(&b, &env), ERR_TOO_LARGE);
		ck_assert(buf_failed(&b));
	}
	free(payload);
}
END_TEST

START_TEST(test_garbage)
{
	/* length 5, then bytes that are no protobuf: field 0 / wire type 7 */
	const uint8_t junk[] = { 0, 0, 0, 5, 0xff, 0xff, 0xff, 0xff, 0xff };
	/* length 3: a truncated varint field */
	const uint8_t trunc[] = { 0, 0, 0, 3, 0x08, 0x80, 0x80 };
	Mqd__Envelope *out = NULL;
	const char *why = NULL;
	size_t used;

	ck_assert_int_eq(frame_decode(junk, sizeof(junk), &used, &out, &why),
	                 ERR_MALFORMED);
	ck_assert_str_eq(why, "undecodable frame");
	ck_assert_ptr_null(out);
	ck_assert_int_eq(frame_decode(trunc, sizeof(trunc), &used, &out, &why),
	                 ERR_MALFORMED);
	ck_assert_ptr_null(out);
}
END_TEST

START_TEST(test_version_and_body)
{
	/* version 2 (field 1 varint 2), with a Leave body */
	const uint8_t v2[] = { 0, 0, 0, 4, 0x08, 0x02, 0x5a, 0x00 };
	/* version 1, no body */
	const uint8_t nobody[] = { 0, 0, 0, 2, 0x08, 0x01 };
	/* empty envelope: version 0 */
	const uint8_t empty[] = { 0, 0, 0, 0 };
	Mqd__Envelope *out = NULL;
	const char *why = NULL;
	size_t used;

	ck_assert_int_eq(frame_decode(v2, sizeof(v2), &used, &out, &why),
	                 ERR_BAD_VERSION);
	ck_assert_str_eq(why, "incompatible version");
	ck_assert_int_eq(
	        frame_decode(nobody, sizeof(nobody), &used, &out, &why),
	        ERR_MALFORMED);
	ck_assert_str_eq(why, "frame without a body");
	ck_assert_int_eq(frame_decode(empty, sizeof(empty), &used, &out, &why),
	                 ERR_BAD_VERSION);
	ck_assert_ptr_null(out);
}
END_TEST

START_TEST(test_body_names)
{
	Mqd__Envelope env = MQD__ENVELOPE__INIT;
	static const struct {
		Mqd__Envelope__BodyCase bc;
		const char *name;
	} names[] = {
		{ MQD__ENVELOPE__BODY_HELLO, "hello" },
		{ MQD__ENVELOPE__BODY_AUTH, "auth" },
		{ MQD__ENVELOPE__BODY_PING, "ping" },
		{ MQD__ENVELOPE__BODY_ACK, "ack" },
		{ MQD__ENVELOPE__BODY_PING_REQ, "ping-req" },
		{ MQD__ENVELOPE__BODY_GOSSIP, "gossip" },
		{ MQD__ENVELOPE__BODY_ROUTE_SNAPSHOT, "route-snapshot" },
		{ MQD__ENVELOPE__BODY_ROUTE_DELTA, "route-delta" },
		{ MQD__ENVELOPE__BODY_PUBLISH, "publish" },
		{ MQD__ENVELOPE__BODY_LEAVE, "leave" },
		{ MQD__ENVELOPE__BODY_RETAINED_SYNC, "retained-sync" },
		{ MQD__ENVELOPE__BODY__NOT_SET, "unknown" },
	};
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		env.body_case = names[i].bc;
		ck_assert_str_eq(frame_body_name(&env), names[i].name);
	}
}
END_TEST

static Suite *
frame_suite(void)
{
	Suite *s = suite_create("cluster_frame");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_publish_round_trip);
	tcase_add_test(tc, test_retained_round_trip);
	tcase_add_test(tc, test_hello_round_trip);
	tcase_add_test(tc, test_stream_and_incomplete);
	tcase_add_test(tc, test_oversize);
	tcase_add_test(tc, test_encode_too_large);
	tcase_add_test(tc, test_garbage);
	tcase_add_test(tc, test_version_and_body);
	tcase_add_test(tc, test_body_names);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(frame_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
