/*
 * Unit tests for proto/decode.c and proto/encode.c: round trips of every
 * packet type in MQTT 3.1, 3.1.1 and 5.0, spec byte vectors, one test per
 * malformed form with its own ERR_*, reserved flag bits, split input, and
 * the ERR_* to reason code mapping.
 */
#include "proto/proto.h"

#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/mqtt_int.h"

static struct mqtt_bytes
B(const char *s) {
	return (struct mqtt_bytes){ (const uint8_t *)s, strlen(s) };
}

/* Decodes a copy of exactly @p n bytes (so ASan sees any over-read). */
static int
decode_copy(const uint8_t *p, size_t n, uint8_t version,
            struct mqtt_packet *out)
{
	uint8_t *copy = malloc(n ? n : 1);
	size_t used = 0;
	int rc;

	ck_assert_ptr_nonnull(copy);
	if (n)
		memcpy(copy, p, n);
	rc = mqtt_decode(copy, n, version, out, &used);
	if (rc == 0)
		ck_assert_uint_eq(used, n);
	free(copy);
	return rc;
}

/* Frames @p body under first byte @p b0 and decodes it. */
static int
raw_decode(uint8_t version, uint8_t b0, const uint8_t *body, size_t n,
           struct mqtt_packet *out)
{
	struct mqtt_packet tmp;
	struct buf b;
	int rc;

	buf_init(&b);
	buf_put_u8(&b, b0);
	buf_put_varint(&b, (uint32_t)n);
	buf_put_bytes(&b, body, n);
	ck_assert(!buf_failed(&b));
	rc = decode_copy(b.data, b.len, version, out ? out : &tmp);
	buf_fini(&b);
	return rc;
}

#define RAW(v, b0, lit) \
	raw_decode((v), (b0), (const uint8_t *)(lit), sizeof(lit) - 1, NULL)
#define RAWP(v, b0, lit, out) \
	raw_decode((v), (b0), (const uint8_t *)(lit), sizeof(lit) - 1, (out))

static uint8_t
expected_flags(const struct mqtt_packet *p)
{
	const struct mqtt_publish *pub = &p->u.publish;

	switch (p->type) {
	case MQTT_PUBLISH:
		return (uint8_t)((pub->dup ? 8 : 0) | pub->qos << 1 |
		                 (pub->retain ? 1 : 0));
	case MQTT_PUBREL:
	case MQTT_SUBSCRIBE:
	case MQTT_UNSUBSCRIBE:
		return 2;
	default:
		return 0;
	}
}

/*
 * Encodes @p want for @p version, checks the size (when @p want_len is not
 * 0) and that decoding gives the same fields back.
 */
static void
roundtrip(uint8_t version, const struct mqtt_packet *want, size_t want_len)
{
	struct mqtt_packet w = *want, got;
	struct buf b;
	uint8_t *copy;
	size_t used;

	buf_init(&b);
	ck_assert_int_eq(mqtt_encode(&b, version, want), 0);
	if (want_len)
		ck_assert_uint_eq(b.len, want_len);
	copy = malloc(b.len);
	ck_assert_ptr_nonnull(copy);
	memcpy(copy, b.data, b.len);
	ck_assert_int_eq(mqtt_decode(copy, b.len, version, &got, &used), 0);
	ck_assert_uint_eq(used, b.len);
	w.flags = expected_flags(want);
	if (w.type == MQTT_CONNECT)
		w.u.connect.version = version;
	ck_assert_msg(mqtt_packet_equals(version, &w, &got),
	              "%s v%u differs after the round trip",
	              mqtt_type_name(want->type), version);
	free(copy);
	buf_fini(&b);
}

/* Appends a User Property to @p pr, keeping its bytes in @p ub. */
static void
user_add(struct mqtt_props *pr, struct buf *ub, const char *k, const char *v)
{
	mqtt_user_put(ub, B(k), B(v));
	ck_assert(!buf_failed(ub));
	pr->user = (struct mqtt_bytes){ ub->data, ub->len };
	pr->n_user++;
	pr->present |= 1ull << MQTT_PROP_USER;
}

#define SET(pr, id) ((pr)->present |= 1ull << (id))

static const uint8_t versions[] = { MQTT_V31, MQTT_V311, MQTT_V5 };

/* ---- round trips ---- */

START_TEST(test_rt_connect_minimal)
{
	struct mqtt_packet p = { .type = MQTT_CONNECT };

	p.u.connect.clean_start = true;
	p.u.connect.keepalive = 60;
	p.u.connect.client_id = B("client-1");
	roundtrip(versions[_i], &p, 0);
	/* an empty client id decodes; the rule is mqtt_client_id_check's */
	p.u.connect.client_id = B("");
	p.u.connect.keepalive = 0;
	roundtrip(versions[_i], &p, 0);
}
END_TEST

START_TEST(test_rt_connect_full)
{
	struct mqtt_packet p = { .type = MQTT_CONNECT };
	struct mqtt_connect *c = &p.u.connect;
	uint8_t v = versions[_i];
	struct buf ub, wb;

	buf_init(&ub);
	buf_init(&wb);
	c->clean_start = false;
	c->keepalive = 65535;
	c->client_id = B("abc");
	c->will = true;
	c->will_qos = 2;
	c->will_retain = true;
	c->will_topic = B("clients/abc/status");
	c->will_payload = (struct mqtt_bytes){ (const uint8_t *)"\0\xff", 2 };
	c->has_username = true;
	c->username = B("user");
	c->has_password = true;
	c->password = (struct mqtt_bytes){ (const uint8_t *)"\0p\xfe", 3 };
	if (v == MQTT_V5) {
		SET(&c->props, MQTT_PROP_SESSION_EXPIRY);
		c->props.session_expiry = 0xffffffff;
		SET(&c->props, MQTT_PROP_RECEIVE_MAX);
		c->props.receive_max = 10;
		SET(&c->props, MQTT_PROP_MAX_PACKET_SIZE);
		c->props.max_packet_size = 1024;
		SET(&c->props, MQTT_PROP_TOPIC_ALIAS_MAX);
		c->props.topic_alias_max = 0;
		SET(&c->props, MQTT_PROP_REQUEST_RESPONSE_INFO);
		c->props.request_response_info = 1;
		SET(&c->props, MQTT_PROP_REQUEST_PROBLEM_INFO);
		c->props.request_problem_info = 0;
		SET(&c->props, MQTT_PROP_AUTH_METHOD);
		c->props.auth_method = B("SCRAM-SHA-1");
		SET(&c->props, MQTT_PROP_AUTH_DATA);
		c->props.auth_data = B("data");
		user_add(&c->props, &ub, "k1", "v1");
		user_add(&c->props, &ub, "k1", "v2");
		SET(&c->will_props, MQTT_PROP_WILL_DELAY);
		c->will_props.will_delay = 30;
		SET(&c->will_props, MQTT_PROP_PAYLOAD_FORMAT);
		c->will_props.payload_format = 1;
		SET(&c->will_props, MQTT_PROP_MESSAGE_EXPIRY);
		c->will_props.message_expiry = 600;
		SET(&c->will_props, MQTT_PROP_CONTENT_TYPE);
		c->will_props.content_type = B("text/plain");
		SET(&c->will_props, MQTT_PROP_RESPONSE_TOPIC);
		c->will_props.response_topic = B("reply/here");
		SET(&c->will_props, MQTT_PROP_CORRELATION_DATA);
		c->will_props.correlation_data = B("\x01\x02");
		user_add(&c->will_props, &wb, "w", "x");
	}
	roundtrip(v, &p, 0);
	/* will QoS 0 / 1 without retain, user name without password */
	c->will_qos = 1;
	c->will_retain = false;
	c->has_password = false;
	c->password = B("");
	roundtrip(v, &p, 0);
	buf_fini(&ub);
	buf_fini(&wb);
}
END_TEST

/* MQTT 5 allows a password without a user name ([MQTT-3.1.2-22] 3.1.1
 * forbids it, see test_connect_credentials). */
START_TEST(test_rt_connect_v5_password_only)
{
	struct mqtt_packet p = { .type = MQTT_CONNECT };

	p.u.connect.client_id = B("c");
	p.u.connect.has_password = true;
	p.u.connect.password = B("secret");
	roundtrip(MQTT_V5, &p, 0);
}
END_TEST

START_TEST(test_rt_connack)
{
	struct mqtt_packet p = { .type = MQTT_CONNACK };
	uint8_t v = versions[_i];
	struct mqtt_props *pr = &p.u.connack.props;
	struct buf ub;

	buf_init(&ub);
	roundtrip(v, &p, v == MQTT_V5 ? 5 : 4);
	p.u.connack.session_present = true;
	roundtrip(v, &p, 0);
	p.u.connack.session_present = false;
	p.u.connack.rc = v == MQTT_V5 ? MQTT_RC_BAD_USER_OR_PASSWORD
	                              : MQTT_CONNACK_V3_BAD_CREDENTIALS;
	roundtrip(v, &p, 0);
	if (v != MQTT_V5) {
		buf_fini(&ub);
		return;
	}
	p.u.connack.rc = 0;
	SET(pr, MQTT_PROP_SESSION_EXPIRY);
	pr->session_expiry = 100;
	SET(pr, MQTT_PROP_ASSIGNED_CLIENT_ID);
	pr->assigned_client_id = B("auto-1234");
	SET(pr, MQTT_PROP_SERVER_KEEPALIVE);
	pr->server_keepalive = 30;
	SET(pr, MQTT_PROP_RECEIVE_MAX);
	pr->receive_max = 65535;
	SET(pr, MQTT_PROP_TOPIC_ALIAS_MAX);
	pr->topic_alias_max = 10;
	SET(pr, MQTT_PROP_MAX_QOS);
	pr->max_qos = 1;
	SET(pr, MQTT_PROP_RETAIN_AVAILABLE);
	pr->retain_available = 0;
	SET(pr, MQTT_PROP_MAX_PACKET_SIZE);
	pr->max_packet_size = 268435460;
	SET(pr, MQTT_PROP_WILDCARD_SUB_AVAILABLE);
	pr->wildcard_sub_available = 1;
	SET(pr, MQTT_PROP_SUB_ID_AVAILABLE);
	pr->sub_id_available = 1;
	SET(pr, MQTT_PROP_SHARED_SUB_AVAILABLE);
	pr->shared_sub_available = 0;
	SET(pr, MQTT_PROP_RESPONSE_INFO);
	pr->response_info = B("resp/");
	SET(pr, MQTT_PROP_SERVER_REFERENCE);
	pr->server_reference = B("other:1883");
	SET(pr, MQTT_PROP_REASON_STRING);
	pr->reason_string = B("ok");
	SET(pr, MQTT_PROP_AUTH_METHOD);
	pr->auth_method = B("m");
	SET(pr, MQTT_PROP_AUTH_DATA);
	pr->auth_data = B("");
	user_add(pr, &ub, "a", "b");
	roundtrip(v, &p, 0);
	buf_fini(&ub);
}
END_TEST

START_TEST(test_rt_publish)
{
	struct mqtt_packet p = { .type = MQTT_PUBLISH };
	struct mqtt_publish *pub = &p.u.publish;
	uint8_t v = versions[_i];
	uint8_t qos;

	pub->topic = B("a/b");
	pub->payload = B("hello");
	/* [MQTT-2.3.1-5] 3.1.1, [MQTT-2.2.1-2] v5: QoS 0 has no packet id */
	roundtrip(v, &p, v == MQTT_V5 ? 13 : 12);
	pub->retain = true;
	roundtrip(v, &p, 0);
	for (qos = 1; qos <= 2; qos++) {
		pub->qos = qos;
		pub->packet_id = 0xfffe;
		pub->dup = false;
		roundtrip(v, &p, v == MQTT_V5 ? 15 : 14);
		pub->dup = true;
		roundtrip(v, &p, 0);
	}
	/* empty payload, binary payload */
	pub->payload = B("");
	roundtrip(v, &p, 0);
	pub->payload = (struct mqtt_bytes){ (const uint8_t *)"\0\xff\0", 3 };
	roundtrip(v, &p, 0);
}
END_TEST

START_TEST(test_rt_publish_v5_props)
{
	struct mqtt_packet p = { .type = MQTT_PUBLISH };
	struct mqtt_publish *pub = &p.u.publish;
	struct mqtt_props *pr = &pub->props;
	struct buf ub;

	buf_init(&ub);
	pub->qos = 1;
	pub->packet_id = 7;
	pub->topic = B("t");
	pub->payload = B("{}");
	SET(pr, MQTT_PROP_PAYLOAD_FORMAT);
	pr->payload_format = 1;
	SET(pr, MQTT_PROP_MESSAGE_EXPIRY);
	pr->message_expiry = 3600;
	SET(pr, MQTT_PROP_CONTENT_TYPE);
	pr->content_type = B("application/json");
	SET(pr, MQTT_PROP_RESPONSE_TOPIC);
	pr->response_topic = B("resp/t");
	SET(pr, MQTT_PROP_CORRELATION_DATA);
	pr->correlation_data =
	        (struct mqtt_bytes){ (const uint8_t *)"\0\1", 2 };
	SET(pr, MQTT_PROP_TOPIC_ALIAS);
	pr->topic_alias = 3;
	SET(pr, MQTT_PROP_SUB_ID);
	pr->n_sub_ids = 3;
	pr->sub_ids[0] = 1;
	pr->sub_ids[1] = 268435455;
	pr->sub_ids[2] = 128;
	user_add(pr, &ub, "k", "v");
	user_add(pr, &ub, "", "");
	user_add(pr, &ub, "k", "v");
	roundtrip(MQTT_V5, &p, 0);
	/* §3.3.2.1: an empty topic name is fine with a Topic Alias */
	pub->topic = B("");
	roundtrip(MQTT_V5, &p, 0);
	buf_fini(&ub);
}
END_TEST

START_TEST(test_rt_acks)
{
	static const uint8_t types[] = { MQTT_PUBACK, MQTT_PUBREC, MQTT_PUBREL,
		                         MQTT_PUBCOMP };
	struct mqtt_packet p = { 0 };
	uint8_t v = versions[_i];
	size_t t;
	struct buf ub;

	for (t = 0; t < sizeof(types); t++) {
		buf_init(&ub);
		memset(&p, 0, sizeof(p));
		p.type = types[t];
		p.u.ack.packet_id = 1;
		/* §3.4.2.1 v5: success without properties is 2 bytes */
		roundtrip(v, &p, 4);
		p.u.ack.packet_id = 65535;
		roundtrip(v, &p, 4);
		if (v != MQTT_V5) {
			buf_fini(&ub);
			continue;
		}
		p.u.ack.rc = types[t] == MQTT_PUBACK || types[t] == MQTT_PUBREC
		                     ? MQTT_RC_NO_MATCHING_SUBSCRIBERS
		                     : MQTT_RC_PACKET_ID_NOT_FOUND;
		roundtrip(v, &p, 5);
		SET(&p.u.ack.props, MQTT_PROP_REASON_STRING);
		p.u.ack.props.reason_string = B("why");
		user_add(&p.u.ack.props, &ub, "x", "y");
		roundtrip(v, &p, 0);
		p.u.ack.rc = 0;
		roundtrip(v, &p, 0);
		buf_fini(&ub);
	}
}
END_TEST

START_TEST(test_rt_subscribe)
{
	struct mqtt_packet p = { .type = MQTT_SUBSCRIBE };
	struct mqtt_subscribe *s = &p.u.subscribe;
	struct mqtt_sub_entry e = { 0 };
	uint8_t v = versions[_i];
	struct buf eb, ub;

	buf_init(&eb);
	buf_init(&ub);
	e.filter = B("a/+/c");
	e.qos = 0;
	mqtt_sub_entry_put(&eb, v, &e);
	e.filter = B("#");
	e.qos = 2;
	if (v == MQTT_V5) {
		e.no_local = true;
		e.retain_as_published = true;
		e.retain_handling = 2;
	}
	mqtt_sub_entry_put(&eb, v, &e);
	e.filter = B("$SYS/x");
	e.qos = 1;
	e.retain_handling = v == MQTT_V5 ? 1 : 0;
	mqtt_sub_entry_put(&eb, v, &e);
	ck_assert(!buf_failed(&eb));
	s->packet_id = 10;
	s->entries = (struct mqtt_bytes){ eb.data, eb.len };
	s->count = 3;
	if (v == MQTT_V5) {
		SET(&s->props, MQTT_PROP_SUB_ID);
		s->props.n_sub_ids = 1;
		s->props.sub_ids[0] = 42;
		user_add(&s->props, &ub, "s", "u");
	}
	roundtrip(v, &p, 0);
	buf_fini(&eb);
	buf_fini(&ub);
}
END_TEST

START_TEST(test_rt_unsubscribe)
{
	struct mqtt_packet p = { .type = MQTT_UNSUBSCRIBE };
	struct mqtt_subscribe *s = &p.u.subscribe;
	uint8_t v = versions[_i];
	struct buf eb, ub;

	buf_init(&eb);
	buf_init(&ub);
	buf_put_str(&eb, "a/#", 3);
	buf_put_str(&eb, "+", 1);
	s->packet_id = 11;
	s->entries = (struct mqtt_bytes){ eb.data, eb.len };
	s->count = 2;
	if (v == MQTT_V5)
		user_add(&s->props, &ub, "s", "u");
	roundtrip(v, &p, 0);
	buf_fini(&eb);
	buf_fini(&ub);
}
END_TEST

START_TEST(test_rt_suback)
{
	struct mqtt_packet p = { .type = MQTT_SUBACK };
	uint8_t v = versions[_i];
	struct buf ub;

	buf_init(&ub);
	p.u.suback.packet_id = 10;
	p.u.suback.codes = B("\x00\x01\x02\x80");
	p.u.suback.codes.len = 4;
	roundtrip(v, &p, v == MQTT_V5 ? 9 : 8);
	if (v == MQTT_V5) {
		p.u.suback.codes = B("\x8f\x97\xa2");
		SET(&p.u.suback.props, MQTT_PROP_REASON_STRING);
		p.u.suback.props.reason_string = B("no");
		user_add(&p.u.suback.props, &ub, "a", "b");
		roundtrip(v, &p, 0);
	}
	buf_fini(&ub);
}
END_TEST

START_TEST(test_rt_unsuback)
{
	struct mqtt_packet p = { .type = MQTT_UNSUBACK };
	uint8_t v = versions[_i];

	p.u.suback.packet_id = 11;
	if (v == MQTT_V5) {
		p.u.suback.codes = B("\x11");
		roundtrip(v, &p, 6);
		p.u.suback.codes = B("\x87\x8f");
		SET(&p.u.suback.props, MQTT_PROP_REASON_STRING);
		p.u.suback.props.reason_string = B("r");
		roundtrip(v, &p, 0);
	} else {
		/* a 3.1.1 UNSUBACK is just the packet id */
		roundtrip(v, &p, 4);
	}
}
END_TEST

START_TEST(test_rt_ping_disconnect)
{
	struct mqtt_packet p = { 0 };
	uint8_t v = versions[_i];
	struct buf ub;

	p.type = MQTT_PINGREQ;
	roundtrip(v, &p, 2);
	p.type = MQTT_PINGRESP;
	roundtrip(v, &p, 2);
	p.type = MQTT_DISCONNECT;
	roundtrip(v, &p, 2);
	if (v != MQTT_V5)
		return;
	buf_init(&ub);
	p.u.disconnect.rc = MQTT_RC_DISCONNECT_WITH_WILL;
	roundtrip(v, &p, 3);
	SET(&p.u.disconnect.props, MQTT_PROP_SESSION_EXPIRY);
	p.u.disconnect.props.session_expiry = 0;
	SET(&p.u.disconnect.props, MQTT_PROP_SERVER_REFERENCE);
	p.u.disconnect.props.server_reference = B("x");
	SET(&p.u.disconnect.props, MQTT_PROP_REASON_STRING);
	p.u.disconnect.props.reason_string = B("bye");
	user_add(&p.u.disconnect.props, &ub, "a", "b");
	roundtrip(v, &p, 0);
	p.u.disconnect.rc = 0;
	roundtrip(v, &p, 0);
	buf_fini(&ub);
}
END_TEST

START_TEST(test_rt_auth)
{
	struct mqtt_packet p = { .type = MQTT_AUTH };
	struct buf b;

	roundtrip(MQTT_V5, &p, 2);
	p.u.disconnect.rc = MQTT_RC_CONTINUE_AUTH;
	roundtrip(MQTT_V5, &p, 4);
	SET(&p.u.disconnect.props, MQTT_PROP_AUTH_METHOD);
	p.u.disconnect.props.auth_method = B("SCRAM-SHA-1");
	SET(&p.u.disconnect.props, MQTT_PROP_AUTH_DATA);
	p.u.disconnect.props.auth_data = B("\x01\x02\x03");
	SET(&p.u.disconnect.props, MQTT_PROP_REASON_STRING);
	p.u.disconnect.props.reason_string = B("more");
	roundtrip(MQTT_V5, &p, 0);
	p.u.disconnect.rc = MQTT_RC_REAUTHENTICATE;
	roundtrip(MQTT_V5, &p, 0);
	/* AUTH does not exist before MQTT 5 */
	buf_init(&b);
	ck_assert_int_eq(mqtt_encode(&b, MQTT_V311, &p), ERR_BAD_TYPE);
	ck_assert_uint_eq(b.len, 0);
	ck_assert(!buf_failed(&b));
	buf_fini(&b);
}
END_TEST

START_TEST(test_packet_equals_differs)
{
	struct mqtt_packet a = { .type = MQTT_PUBLISH }, b;

	a.u.publish.topic = B("a");
	a.u.publish.payload = B("x");
	b = a;
	ck_assert(mqtt_packet_equals(MQTT_V5, &a, &b));
	b.u.publish.payload = B("y");
	ck_assert(!mqtt_packet_equals(MQTT_V5, &a, &b));
	b = a;
	b.u.publish.topic = B("ab");
	ck_assert(!mqtt_packet_equals(MQTT_V5, &a, &b));
	b = a;
	b.flags = 1;
	ck_assert(!mqtt_packet_equals(MQTT_V5, &a, &b));
	b = a;
	b.u.publish.props.present = 1ull << MQTT_PROP_TOPIC_ALIAS;
	ck_assert(!mqtt_packet_equals(MQTT_V5, &a, &b));
}
END_TEST

/* ---- spec byte vectors ---- */

/* MQTT 3.1.1 §3.1.2.10 example variable header (flags 0xCE, keep alive
 * 10) with a full payload. */
START_TEST(test_vec_connect_v311)
{
	static const uint8_t pkt[] = { 0x10, 0x22, 0x00, 0x04, 'M',  'Q',
		                       'T',  'T',  0x04, 0xce, 0x00, 0x0a,
		                       0x00, 0x03, 'c',  'i',  'd',  0x00,
		                       0x03, 'w',  '/',  't',  0x00, 0x02,
		                       'b',  'y',  0x00, 0x03, 'b',  'o',
		                       'b',  0x00, 0x03, 'p',  'w',  'd' };
	struct mqtt_packet p;
	struct mqtt_connect *c = &p.u.connect;
	size_t used;
	struct buf b;

	ck_assert_int_eq(mqtt_decode(pkt, sizeof(pkt), 0, &p, &used), 0);
	ck_assert_uint_eq(used, sizeof(pkt));
	ck_assert_uint_eq(p.type, MQTT_CONNECT);
	ck_assert_uint_eq(c->version, MQTT_V311);
	ck_assert(c->clean_start);
	ck_assert_uint_eq(c->keepalive, 10);
	ck_assert(c->will);
	ck_assert_uint_eq(c->will_qos, 1);
	ck_assert(!c->will_retain);
	ck_assert(c->has_username && c->has_password);
	ck_assert(mqtt_bytes_equals(c->client_id, B("cid")));
	ck_assert(mqtt_bytes_equals(c->will_topic, B("w/t")));
	ck_assert(mqtt_bytes_equals(c->will_payload, B("by")));
	ck_assert(mqtt_bytes_equals(c->username, B("bob")));
	ck_assert(mqtt_bytes_equals(c->password, B("pwd")));
	/* and the encoder writes the same bytes */
	buf_init(&b);
	ck_assert_int_eq(mqtt_encode(&b, MQTT_V311, &p), 0);
	ck_assert_uint_eq(b.len, sizeof(pkt));
	ck_assert_mem_eq(b.data, pkt, sizeof(pkt));
	buf_fini(&b);
}
END_TEST

/* MQTT 5 §3.1.2.12 example variable header: flags 0xC2, keep alive 10,
 * Session Expiry Interval 10. */
START_TEST(test_vec_connect_v5)
{
	static const uint8_t pkt[] = {
		0x10, 0x1a, 0x00, 0x04, 'M',  'Q',  'T',  'T',  0x05, 0xc2,
		0x00, 0x0a, 0x05, 0x11, 0x00, 0x00, 0x00, 0x0a, 0x00, 0x01,
		'c',  0x00, 0x01, 'u',  0x00, 0x02, 'p',  'w'
	};
	struct mqtt_packet p;
	size_t used;
	struct buf b;

	ck_assert_int_eq(mqtt_decode(pkt, sizeof(pkt), 0, &p, &used), 0);
	ck_assert_uint_eq(p.u.connect.version, MQTT_V5);
	ck_assert(p.u.connect.clean_start);
	ck_assert_uint_eq(p.u.connect.keepalive, 10);
	ck_assert(mqtt_props_has(&p.u.connect.props, MQTT_PROP_SESSION_EXPIRY));
	ck_assert_uint_eq(p.u.connect.props.session_expiry, 10);
	ck_assert_uint_eq(p.u.connect.props.present,
	                  1ull << MQTT_PROP_SESSION_EXPIRY);
	buf_init(&b);
	ck_assert_int_eq(mqtt_encode(&b, MQTT_V5, &p), 0);
	ck_assert_uint_eq(b.len, sizeof(pkt));
	ck_assert_mem_eq(b.data, pkt, sizeof(pkt));
	buf_fini(&b);
}
END_TEST

/* MQTT 3.1 CONNECT as sent by old clients: "MQIsdp", level 3. */
START_TEST(test_vec_connect_v31)
{
	static const uint8_t pkt[] = { 0x10, 0x11, 0x00, 0x06, 'M',  'Q',  'I',
		                       's',  'd',  'p',  0x03, 0x02, 0x00, 0x3c,
		                       0x00, 0x03, 'o',  'l',  'd' };
	struct mqtt_packet p;
	size_t used;

	ck_assert_int_eq(mqtt_decode(pkt, sizeof(pkt), 0, &p, &used), 0);
	ck_assert_uint_eq(p.u.connect.version, MQTT_V31);
	ck_assert(mqtt_bytes_equals(p.u.connect.client_id, B("old")));
}
END_TEST

static void
expect_bytes(uint8_t version, const struct mqtt_packet *p, const char *want,
             size_t n)
{
	struct buf b;

	buf_init(&b);
	ck_assert_int_eq(mqtt_encode(&b, version, p), 0);
	ck_assert_uint_eq(b.len, n);
	ck_assert_mem_eq(b.data, want, n);
	buf_fini(&b);
}

#define EXPECT_BYTES(v, p, lit) expect_bytes((v), (p), (lit), sizeof(lit) - 1)

START_TEST(test_vec_small_packets)
{
	struct mqtt_packet p = { 0 };

	p.type = MQTT_PINGREQ;
	EXPECT_BYTES(MQTT_V311, &p, "\xc0\x00");
	p.type = MQTT_PINGRESP;
	EXPECT_BYTES(MQTT_V5, &p, "\xd0\x00");
	p.type = MQTT_DISCONNECT;
	EXPECT_BYTES(MQTT_V311, &p, "\xe0\x00");
	/* §3.14.2.1: reason 0 and no properties -> Remaining Length 0 */
	EXPECT_BYTES(MQTT_V5, &p, "\xe0\x00");
	p.u.disconnect.rc = MQTT_RC_DISCONNECT_WITH_WILL;
	EXPECT_BYTES(MQTT_V5, &p, "\xe0\x01\x04");
	/* v3 never carries reason codes */
	EXPECT_BYTES(MQTT_V311, &p, "\xe0\x00");
	memset(&p, 0, sizeof(p));
	p.type = MQTT_PUBACK;
	p.u.ack.packet_id = 1;
	EXPECT_BYTES(MQTT_V311, &p, "\x40\x02\x00\x01");
	EXPECT_BYTES(MQTT_V5, &p, "\x40\x02\x00\x01");
	p.u.ack.rc = MQTT_RC_NO_MATCHING_SUBSCRIBERS;
	EXPECT_BYTES(MQTT_V5, &p, "\x40\x03\x00\x01\x10");
	EXPECT_BYTES(MQTT_V311, &p, "\x40\x02\x00\x01");
	/* [MQTT-2.2.2-1] 3.1.1, [MQTT-2.1.3-1] v5: PUBREL flags 0010 */
	p.type = MQTT_PUBREL;
	p.u.ack.rc = 0;
	EXPECT_BYTES(MQTT_V311, &p, "\x62\x02\x00\x01");
	memset(&p, 0, sizeof(p));
	p.type = MQTT_CONNACK;
	EXPECT_BYTES(MQTT_V311, &p, "\x20\x02\x00\x00");
	EXPECT_BYTES(MQTT_V5, &p, "\x20\x03\x00\x00\x00");
	p.u.connack.session_present = true;
	EXPECT_BYTES(MQTT_V311, &p, "\x20\x02\x01\x00");
	memset(&p, 0, sizeof(p));
	p.type = MQTT_UNSUBACK;
	p.u.suback.packet_id = 0x1234;
	p.u.suback.codes = B("\x11");
	/* a 3.1.1 UNSUBACK has no payload */
	EXPECT_BYTES(MQTT_V311, &p, "\xb0\x02\x12\x34");
	EXPECT_BYTES(MQTT_V5, &p, "\xb0\x04\x12\x34\x00\x11");
	/* [MQTT-3.9.3-2] 3.1.1: failures become 0x80 on a v3 SUBACK */
	p.type = MQTT_SUBACK;
	p.u.suback.packet_id = 10;
	p.u.suback.codes =
	        (struct mqtt_bytes){ (const uint8_t *)"\x00\x01\x87", 3 };
	EXPECT_BYTES(MQTT_V311, &p, "\x90\x05\x00\x0a\x00\x01\x80");
	EXPECT_BYTES(MQTT_V5, &p, "\x90\x06\x00\x0a\x00\x00\x01\x87");
}
END_TEST

/* ---- malformed forms, one ERR_* each ---- */

#define V311 MQTT_V311
#define V5   MQTT_V5

/*
 * Decodes a CONNECT: protocol name @p name, level, connect flags, keep
 * alive 60, then @p rest (v5: the properties first).
 */
static int
connect_raw(const char *name, uint8_t level, uint8_t flags, const char *rest,
            size_t n, struct mqtt_packet *out)
{
	struct buf body;
	int rc;

	buf_init(&body);
	buf_put_str(&body, name, strlen(name));
	buf_put_u8(&body, level);
	buf_put_u8(&body, flags);
	buf_put_u16(&body, 60);
	buf_put_bytes(&body, rest, n);
	ck_assert(!buf_failed(&body));
	rc = raw_decode(0, MQTT_CONNECT << 4, body.data, body.len, out);
	buf_fini(&body);
	return rc;
}

#define CONN(level, flags, lit)                                                \
	connect_raw((level) == MQTT_V31 ? "MQIsdp" : "MQTT", (level), (flags), \
	            (lit), sizeof(lit) - 1, NULL)
#define CONN_NAMED(name, level, lit, out) \
	connect_raw((name), (level), 0x02, (lit), sizeof(lit) - 1, (out))

START_TEST(test_connect_protocol)
{
	struct mqtt_packet p;

	ck_assert_int_eq(CONN(V311, 0x02,
	                      "\x00\x01"
	                      "c"),
	                 0);
	ck_assert_int_eq(CONN(MQTT_V31, 0x02,
	                      "\x00\x01"
	                      "c"),
	                 0);
	ck_assert_int_eq(CONN(V5, 0x02,
	                      "\x00\x00\x01"
	                      "c"),
	                 0);
	/* [MQTT-3.1.2-1] 3.1.1 and v5: protocol name */
	ck_assert_int_eq(CONN_NAMED("MQTX", V311,
	                            "\x00\x01"
	                            "c",
	                            NULL),
	                 ERR_BAD_PROTOCOL);
	ck_assert_int_eq(CONN_NAMED("mqtt", V5,
	                            "\x00\x00\x01"
	                            "c",
	                            NULL),
	                 ERR_BAD_PROTOCOL);
	ck_assert_int_eq(CONN_NAMED("", V311,
	                            "\x00\x01"
	                            "c",
	                            NULL),
	                 ERR_BAD_PROTOCOL);
	/* "MQIsdp" is level 3 only, "MQTT" levels 4 and 5 */
	ck_assert_int_eq(CONN_NAMED("MQIsdp", V311,
	                            "\x00\x01"
	                            "c",
	                            NULL),
	                 ERR_BAD_PROTOCOL);
	ck_assert_int_eq(CONN_NAMED("MQTT", MQTT_V31,
	                            "\x00\x01"
	                            "c",
	                            NULL),
	                 ERR_BAD_PROTOCOL);
	/* [MQTT-3.1.2-2] 3.1.1 and v5: the level asked for is reported */
	ck_assert_int_eq(CONN_NAMED("MQTT", 6,
	                            "\x00\x01"
	                            "c",
	                            &p),
	                 ERR_BAD_VERSION);
	ck_assert_uint_eq(p.u.connect.version, 6);
	ck_assert_int_eq(CONN_NAMED("MQTT", 0x84,
	                            "\x00\x01"
	                            "c",
	                            &p),
	                 ERR_BAD_VERSION);
	ck_assert_uint_eq(p.u.connect.version, 0x84);
	ck_assert_int_eq(CONN_NAMED("MQIsdp", 2,
	                            "\x00\x01"
	                            "c",
	                            &p),
	                 ERR_BAD_VERSION);
	ck_assert_uint_eq(p.u.connect.version, 2);
	/* the name itself runs past the end */
	ck_assert_int_eq(RAW(0, 0x10,
	                     "\x00\x04"
	                     "MQ"),
	                 ERR_MALFORMED);
}
END_TEST

START_TEST(test_connect_flags)
{
	/* [MQTT-3.1.2-3] 3.1.1 and v5: reserved bit 0 */
	ck_assert_int_eq(CONN(V311, 0x03,
	                      "\x00\x01"
	                      "c"),
	                 ERR_BAD_FLAGS);
	ck_assert_int_eq(CONN(V5, 0x03,
	                      "\x00\x00\x01"
	                      "c"),
	                 ERR_BAD_FLAGS);
	/* [MQTT-3.1.2-14] 3.1.1, [MQTT-3.1.2-12] v5: will QoS 3 */
	ck_assert_int_eq(CONN(V311, 0x1e,
	                      "\x00\x01"
	                      "c"
	                      "\x00\x01"
	                      "t"
	                      "\x00\x00"),
	                 ERR_BAD_QOS);
	ck_assert_int_eq(CONN(V5, 0x1e,
	                      "\x00\x00\x01"
	                      "c"
	                      "\x00\x00\x01"
	                      "t"
	                      "\x00\x00"),
	                 ERR_BAD_QOS);
	/* [MQTT-3.1.2-13] 3.1.1, [MQTT-3.1.2-11] v5: will QoS without the
	 * will flag */
	ck_assert_int_eq(CONN(V311, 0x0a,
	                      "\x00\x01"
	                      "c"),
	                 ERR_BAD_WILL);
	ck_assert_int_eq(CONN(V5, 0x12,
	                      "\x00\x00\x01"
	                      "c"),
	                 ERR_BAD_WILL);
	/* [MQTT-3.1.2-15] 3.1.1, [MQTT-3.1.2-13] v5: will retain without
	 * the will flag */
	ck_assert_int_eq(CONN(V311, 0x22,
	                      "\x00\x01"
	                      "c"),
	                 ERR_BAD_WILL);
	ck_assert_int_eq(CONN(V5, 0x22,
	                      "\x00\x00\x01"
	                      "c"),
	                 ERR_BAD_WILL);
}
END_TEST

START_TEST(test_connect_credentials)
{
	/* [MQTT-3.1.2-22] 3.1.1: password flag without user name flag */
	ck_assert_int_eq(CONN(V311, 0x42,
	                      "\x00\x01"
	                      "c"
	                      "\x00\x01"
	                      "p"),
	                 ERR_BAD_CREDENTIALS);
	ck_assert_int_eq(CONN(MQTT_V31, 0x42,
	                      "\x00\x01"
	                      "c"
	                      "\x00\x01"
	                      "p"),
	                 ERR_BAD_CREDENTIALS);
	/* MQTT 5 allows it */
	ck_assert_int_eq(CONN(V5, 0x42,
	                      "\x00\x00\x01"
	                      "c"
	                      "\x00\x01"
	                      "p"),
	                 0);
}
END_TEST

START_TEST(test_connect_payload)
{
	/* [MQTT-3.1.3-3] 3.1.1 and v5: no client id */
	ck_assert_int_eq(CONN(V311, 0x02, ""), ERR_MALFORMED);
	ck_assert_int_eq(CONN(V5, 0x02, "\x00"), ERR_MALFORMED);
	ck_assert_int_eq(CONN(V311, 0x02,
	                      "\x00\x02"
	                      "c"),
	                 ERR_MALFORMED);
	/* [MQTT-2.2.2-1] v5: the property length is required */
	ck_assert_int_eq(CONN(V5, 0x02, ""), ERR_MALFORMED);
	/* [MQTT-3.1.2-9] 3.1.1 and v5: will flag but no will properties,
	 * topic or payload */
	ck_assert_int_eq(CONN(V311, 0x06,
	                      "\x00\x01"
	                      "c"),
	                 ERR_MALFORMED);
	ck_assert_int_eq(CONN(V311, 0x06,
	                      "\x00\x01"
	                      "c"
	                      "\x00\x01"
	                      "t"),
	                 ERR_MALFORMED);
	ck_assert_int_eq(CONN(V5, 0x06,
	                      "\x00\x00\x01"
	                      "c"),
	                 ERR_MALFORMED);
	ck_assert_int_eq(CONN(V5, 0x06,
	                      "\x00\x00\x01"
	                      "c"
	                      "\x00\x01"
	                      "t"
	                      "\x00\x00"),
	                 ERR_MALFORMED);
	ck_assert_int_eq(CONN(V5, 0x06,
	                      "\x00\x00\x01"
	                      "c"
	                      "\x00\x00\x01"
	                      "t"
	                      "\x00\x00"),
	                 0);
	/* [MQTT-3.1.3-10] 3.1.1, [MQTT-3.1.3-11] v5: will topic UTF-8 */
	ck_assert_int_eq(CONN(V311, 0x06,
	                      "\x00\x01"
	                      "c"
	                      "\x00\x01\xff"
	                      "\x00\x00"),
	                 ERR_BAD_UTF8);
	ck_assert_int_eq(CONN(V5, 0x06,
	                      "\x00\x00\x01"
	                      "c"
	                      "\x00\x00\x01\x80"
	                      "\x00\x00"),
	                 ERR_BAD_UTF8);
	/* [MQTT-4.7.1-1] 3.1.1, [MQTT-4.7.0-1] v5: no wildcard in a will
	 * topic; [MQTT-4.7.3-1]: nor an empty one */
	ck_assert_int_eq(CONN(V311, 0x06,
	                      "\x00\x01"
	                      "c"
	                      "\x00\x03"
	                      "a/#"
	                      "\x00\x00"),
	                 ERR_BAD_TOPIC);
	ck_assert_int_eq(CONN(V5, 0x06,
	                      "\x00\x00\x01"
	                      "c"
	                      "\x00\x00\x01"
	                      "+"
	                      "\x00\x00"),
	                 ERR_BAD_TOPIC);
	ck_assert_int_eq(CONN(V311, 0x06,
	                      "\x00\x01"
	                      "c"
	                      "\x00\x00\x00\x00"),
	                 ERR_BAD_TOPIC);
	/* [MQTT-3.1.3-4] 3.1.1 and v5: client id UTF-8 */
	ck_assert_int_eq(CONN(V311, 0x02, "\x00\x01\xc1"), ERR_BAD_UTF8);
	ck_assert_int_eq(CONN(V5, 0x02,
	                      "\x00\x00\x02"
	                      "c"
	                      "\x00"),
	                 ERR_BAD_UTF8);
	/* [MQTT-3.1.3-11] 3.1.1, [MQTT-3.1.3-12] v5: user name UTF-8 */
	ck_assert_int_eq(CONN(V5, 0x82,
	                      "\x00\x00\x01"
	                      "c"
	                      "\x00\x01\xfe"),
	                 ERR_BAD_UTF8);
	/* [MQTT-3.1.2-19] 3.1.1, [MQTT-3.1.2-17] v5: user name flag, no
	 * user name */
	ck_assert_int_eq(CONN(V311, 0x82,
	                      "\x00\x01"
	                      "c"),
	                 ERR_MALFORMED);
	ck_assert_int_eq(CONN(V5, 0x82,
	                      "\x00\x00\x01"
	                      "c"),
	                 ERR_MALFORMED);
	/* [MQTT-3.1.2-21] 3.1.1, [MQTT-3.1.2-19] v5: password flag, no
	 * password */
	ck_assert_int_eq(CONN(V311, 0xc2,
	                      "\x00\x01"
	                      "c"
	                      "\x00\x01"
	                      "u"),
	                 ERR_MALFORMED);
	ck_assert_int_eq(CONN(V5, 0x42,
	                      "\x00\x00\x01"
	                      "c"),
	                 ERR_MALFORMED);
	/* [MQTT-3.1.2-18] 3.1.1, [MQTT-3.1.2-16] v5: a user name without
	 * the flag is bytes left over; [MQTT-3.1.2-20] 3.1.1,
	 * [MQTT-3.1.2-18] v5: same for a password */
	ck_assert_int_eq(CONN(V311, 0x02,
	                      "\x00\x01"
	                      "c"
	                      "\x00\x01"
	                      "u"),
	                 ERR_BAD_LENGTH);
	ck_assert_int_eq(CONN(V5, 0x02,
	                      "\x00\x00\x01"
	                      "c"
	                      "\x00\x01"
	                      "u"),
	                 ERR_BAD_LENGTH);
	ck_assert_int_eq(CONN(V311, 0x82,
	                      "\x00\x01"
	                      "c"
	                      "\x00\x01"
	                      "u"
	                      "\x00\x01"
	                      "p"),
	                 ERR_BAD_LENGTH);
	ck_assert_int_eq(CONN(V5, 0x82,
	                      "\x00\x00\x01"
	                      "c"
	                      "\x00\x01"
	                      "u"
	                      "\x00\x01"
	                      "p"),
	                 ERR_BAD_LENGTH);
	/* [MQTT-3.1.3-1] 3.1.1 and v5: fields in the order of the flags */
	ck_assert_int_eq(CONN(V311, 0x82,
	                      "\x00\x01"
	                      "c"
	                      "\x00\x01"
	                      "p"
	                      "\x00"),
	                 ERR_BAD_LENGTH);
}
END_TEST

START_TEST(test_publish_malformed)
{
	struct mqtt_packet p;

	ck_assert_int_eq(RAWP(V311, 0x30,
	                      "\x00\x01"
	                      "a"
	                      "payload",
	                      &p),
	                 0);
	ck_assert_uint_eq(p.u.publish.qos, 0);
	ck_assert_uint_eq(p.u.publish.packet_id, 0);
	/* [MQTT-3.3.1-4] 3.1.1 and v5: QoS 3 */
	ck_assert_int_eq(RAW(V311, 0x36,
	                     "\x00\x01"
	                     "a"
	                     "\x00\x01"),
	                 ERR_BAD_QOS);
	ck_assert_int_eq(RAW(V5, 0x37,
	                     "\x00\x01"
	                     "a"
	                     "\x00\x01\x00"),
	                 ERR_BAD_QOS);
	/* [MQTT-3.3.1-2] 3.1.1 and v5: DUP must be 0 on QoS 0 (strict) */
	ck_assert_int_eq(RAW(V311, 0x38,
	                     "\x00\x01"
	                     "a"),
	                 ERR_BAD_FLAGS);
	ck_assert_int_eq(RAW(V5, 0x38,
	                     "\x00\x01"
	                     "a"
	                     "\x00"),
	                 ERR_BAD_FLAGS);
	/* [MQTT-2.3.1-1] 3.1.1, [MQTT-2.2.1-3] v5: packet id 0 */
	ck_assert_int_eq(RAW(V311, 0x32,
	                     "\x00\x01"
	                     "a"
	                     "\x00\x00"),
	                 ERR_BAD_PACKET_ID);
	ck_assert_int_eq(RAW(V5, 0x34,
	                     "\x00\x01"
	                     "a"
	                     "\x00\x00\x00"),
	                 ERR_BAD_PACKET_ID);
	/* [MQTT-3.3.2-2] 3.1.1 and v5: wildcards in the topic name */
	ck_assert_int_eq(RAW(V311, 0x30,
	                     "\x00\x03"
	                     "a/+"),
	                 ERR_BAD_TOPIC);
	ck_assert_int_eq(RAW(V311, 0x30,
	                     "\x00\x01"
	                     "#"),
	                 ERR_BAD_TOPIC);
	ck_assert_int_eq(RAW(V5, 0x30,
	                     "\x00\x03"
	                     "a/#"
	                     "\x00"),
	                 ERR_BAD_TOPIC);
	ck_assert_int_eq(RAW(V5, 0x30,
	                     "\x00\x02"
	                     "a+"
	                     "\x00"),
	                 ERR_BAD_TOPIC);
	/* [MQTT-4.7.3-1] 3.1.1: empty topic name */
	ck_assert_int_eq(RAW(V311, 0x30,
	                     "\x00\x00"
	                     "x"),
	                 ERR_BAD_TOPIC);
	/* [MQTT-4.7.3-1] v5, §3.3.2.1: empty only with a Topic Alias;
	 * without one a Protocol Error (0x82) */
	ck_assert_int_eq(RAW(V5, 0x30,
	                     "\x00\x00\x00"
	                     "x"),
	                 ERR_PROTOCOL);
	ck_assert_int_eq(RAW(V5, 0x30,
	                     "\x00\x00\x03\x23\x00\x01"
	                     "x"),
	                 0);
	/* [MQTT-3.3.2-1] 3.1.1 and v5: topic missing or past the end */
	ck_assert_int_eq(RAW(V311, 0x30,
	                     "\x00\x05"
	                     "ab"),
	                 ERR_MALFORMED);
	ck_assert_int_eq(RAW(V311, 0x30, "\x00"), ERR_MALFORMED);
	ck_assert_int_eq(RAW(V311, 0x30, ""), ERR_MALFORMED);
	/* packet id missing */
	ck_assert_int_eq(RAW(V311, 0x32,
	                     "\x00\x01"
	                     "a"
	                     "\x00"),
	                 ERR_MALFORMED);
	/* [MQTT-2.2.2-1] v5: property length missing */
	ck_assert_int_eq(RAW(V5, 0x30,
	                     "\x00\x01"
	                     "a"),
	                 ERR_MALFORMED);
	/* property length past the end */
	ck_assert_int_eq(RAW(V5, 0x30,
	                     "\x00\x01"
	                     "a"
	                     "\x05\x01"),
	                 ERR_MALFORMED);
}
END_TEST

START_TEST(test_ack_malformed)
{
	struct mqtt_packet p;

	ck_assert_int_eq(RAW(V311, 0x40, "\x00\x01"), 0);
	/* §2.1.4: remaining length must match (3.1.1 acks are 2 bytes) */
	ck_assert_int_eq(RAW(V311, 0x40, "\x00\x01\x00"), ERR_BAD_LENGTH);
	ck_assert_int_eq(RAW(V311, 0x50, "\x00"), ERR_MALFORMED);
	ck_assert_int_eq(RAW(V311, 0x70, ""), ERR_MALFORMED);
	/* a packet id of 0 never names a PUBLISH */
	ck_assert_int_eq(RAW(V311, 0x40, "\x00\x00"), ERR_BAD_PACKET_ID);
	ck_assert_int_eq(RAW(V5, 0x62, "\x00\x00"), ERR_BAD_PACKET_ID);
	/* §3.4.2.1 v5: short forms */
	ck_assert_int_eq(RAWP(V5, 0x40, "\x00\x01", &p), 0);
	ck_assert_uint_eq(p.u.ack.rc, 0);
	ck_assert_int_eq(RAWP(V5, 0x50, "\x00\x01\x80", &p), 0);
	ck_assert_uint_eq(p.u.ack.rc, 0x80);
	ck_assert_int_eq(RAW(V5, 0x40, "\x00\x01\x00\x00"), 0);
	/* [MQTT-3.4.2-1] [MQTT-3.5.2-1] v5: PUBACK/PUBREC codes */
	ck_assert_int_eq(RAW(V5, 0x40, "\x00\x01\x92"), ERR_BAD_REASON);
	ck_assert_int_eq(RAW(V5, 0x50, "\x00\x01\x01"), ERR_BAD_REASON);
	/* [MQTT-3.6.2-1] [MQTT-3.7.2-1] v5: PUBREL/PUBCOMP 0x00 or 0x92 */
	ck_assert_int_eq(RAW(V5, 0x62, "\x00\x01\x92"), 0);
	ck_assert_int_eq(RAW(V5, 0x70, "\x00\x01\x92"), 0);
	ck_assert_int_eq(RAW(V5, 0x62, "\x00\x01\x10"), ERR_BAD_REASON);
	ck_assert_int_eq(RAW(V5, 0x70, "\x00\x01\x80"), ERR_BAD_REASON);
	/* properties past the end, then bytes left over */
	ck_assert_int_eq(RAW(V5, 0x40, "\x00\x01\x00\x05"), ERR_MALFORMED);
	ck_assert_int_eq(RAW(V5, 0x40, "\x00\x01\x00\x00\x00"), ERR_BAD_LENGTH);
}
END_TEST

START_TEST(test_subscribe_malformed)
{
	struct mqtt_packet p;

	ck_assert_int_eq(RAWP(V311, 0x82,
	                      "\x00\x01\x00\x03"
	                      "a/b"
	                      "\x01",
	                      &p),
	                 0);
	ck_assert_uint_eq(p.u.subscribe.count, 1);
	/* [MQTT-2.3.1-1] 3.1.1, [MQTT-2.2.1-3] v5: packet id 0 */
	ck_assert_int_eq(RAW(V311, 0x82,
	                     "\x00\x00\x00\x01"
	                     "a"
	                     "\x00"),
	                 ERR_BAD_PACKET_ID);
	ck_assert_int_eq(RAW(V5, 0x82,
	                     "\x00\x00\x00\x00\x01"
	                     "a"
	                     "\x00"),
	                 ERR_BAD_PACKET_ID);
	/* [MQTT-3.8.3-3] 3.1.1, [MQTT-3.8.3-2] v5: no entries */
	ck_assert_int_eq(RAW(V311, 0x82, "\x00\x01"), ERR_EMPTY);
	ck_assert_int_eq(RAW(V5, 0x82, "\x00\x01\x00"), ERR_EMPTY);
	/* [MQTT-3.8.3-4] 3.1.1: reserved option bits, QoS 3 */
	ck_assert_int_eq(RAW(V311, 0x82,
	                     "\x00\x01\x00\x01"
	                     "a"
	                     "\x04"),
	                 ERR_BAD_FLAGS);
	ck_assert_int_eq(RAW(V311, 0x82,
	                     "\x00\x01\x00\x01"
	                     "a"
	                     "\x80"),
	                 ERR_BAD_FLAGS);
	ck_assert_int_eq(RAW(V311, 0x82,
	                     "\x00\x01\x00\x01"
	                     "a"
	                     "\x03"),
	                 ERR_BAD_QOS);
	/* [MQTT-3.8.3-5] v5: bits 6-7; §3.8.3.1: retain handling 3 and
	 * QoS 3 */
	ck_assert_int_eq(RAW(V5, 0x82,
	                     "\x00\x01\x00\x00\x01"
	                     "a"
	                     "\x40"),
	                 ERR_BAD_FLAGS);
	ck_assert_int_eq(RAW(V5, 0x82,
	                     "\x00\x01\x00\x00\x01"
	                     "a"
	                     "\x80"),
	                 ERR_BAD_FLAGS);
	ck_assert_int_eq(RAW(V5, 0x82,
	                     "\x00\x01\x00\x00\x01"
	                     "a"
	                     "\x30"),
	                 ERR_BAD_FLAGS);
	ck_assert_int_eq(RAW(V5, 0x82,
	                     "\x00\x01\x00\x00\x01"
	                     "a"
	                     "\x03"),
	                 ERR_BAD_QOS);
	ck_assert_int_eq(RAW(V5, 0x82,
	                     "\x00\x01\x00\x00\x01"
	                     "a"
	                     "\x2e"),
	                 0);
	/* [MQTT-3.8.3-1] 3.1.1 and v5: filter UTF-8 */
	ck_assert_int_eq(RAW(V311, 0x82,
	                     "\x00\x01\x00\x02"
	                     "a"
	                     "\xc0\x00"),
	                 ERR_BAD_UTF8);
	ck_assert_int_eq(RAW(V5, 0x82,
	                     "\x00\x01\x00\x00\x02"
	                     "a"
	                     "\x00\x00"),
	                 ERR_BAD_UTF8);
	/* Filters that break the wildcard rules still decode: the broker
	 * refuses that entry alone (SUBACK 0x80 / 0x8F), see
	 * mqtt_topic_filter_is_valid's own tests in test_topic.c. */
	ck_assert_int_eq(RAW(V311, 0x82,
	                     "\x00\x01\x00\x05"
	                     "a/#/b"
	                     "\x00"),
	                 0); /* entry fails, not packet */
	ck_assert_int_eq(RAW(V311, 0x82,
	                     "\x00\x01\x00\x02"
	                     "a+"
	                     "\x00"),
	                 0); /* entry fails, not packet */
	ck_assert_int_eq(RAW(V311, 0x82, "\x00\x01\x00\x00\x00"),
	                 0); /* entry fails, not packet */
	ck_assert_int_eq(RAW(V5, 0x82,
	                     "\x00\x01\x00\x00\x02"
	                     "#a"
	                     "\x00"),
	                 0); /* entry fails, not packet */
	/* the second entry is checked too */
	ck_assert_int_eq(RAW(V311, 0x82,
	                     "\x00\x01\x00\x01"
	                     "a"
	                     "\x00"
	                     "\x00\x01"
	                     "#"
	                     "\x07"),
	                 ERR_BAD_FLAGS);
	/* options byte missing */
	ck_assert_int_eq(RAW(V311, 0x82,
	                     "\x00\x01\x00\x01"
	                     "a"),
	                 ERR_MALFORMED);
}
END_TEST

START_TEST(test_unsubscribe_malformed)
{
	ck_assert_int_eq(RAW(V311, 0xa2,
	                     "\x00\x01\x00\x01"
	                     "a"),
	                 0);
	/* [MQTT-3.10.3-2] 3.1.1 and v5: no filters */
	ck_assert_int_eq(RAW(V311, 0xa2, "\x00\x01"), ERR_EMPTY);
	ck_assert_int_eq(RAW(V5, 0xa2, "\x00\x01\x00"), ERR_EMPTY);
	/* [MQTT-3.10.3-1] 3.1.1 and v5: filter UTF-8 */
	ck_assert_int_eq(RAW(V311, 0xa2, "\x00\x01\x00\x01\x80"), ERR_BAD_UTF8);
	ck_assert_int_eq(RAW(V5, 0xa2, "\x00\x01\x00\x00\x03\xed\xa0\x80"),
	                 ERR_BAD_UTF8);
	ck_assert_int_eq(RAW(V311, 0xa2,
	                     "\x00\x01\x00\x02"
	                     "+a"),
	                 0); /* entry fails, not packet */
	ck_assert_int_eq(RAW(V311, 0xa2,
	                     "\x00\x00\x00\x01"
	                     "a"),
	                 ERR_BAD_PACKET_ID);
	ck_assert_int_eq(RAW(V311, 0xa2,
	                     "\x00\x01\x00\x02"
	                     "a"),
	                 ERR_MALFORMED);
}
END_TEST

START_TEST(test_server_packets_malformed)
{
	struct mqtt_packet p;

	/* CONNACK */
	ck_assert_int_eq(RAWP(V311, 0x20, "\x01\x00", &p), 0);
	ck_assert(p.u.connack.session_present);
	/* [MQTT-3.2.2-1] v5: acknowledge flags bits 7-1 */
	ck_assert_int_eq(RAW(V311, 0x20, "\x02\x00"), ERR_BAD_FLAGS);
	ck_assert_int_eq(RAW(V5, 0x20, "\x80\x00\x00"), ERR_BAD_FLAGS);
	/* [MQTT-3.2.2-8] v5: connect reason codes; 3.1.1: 0x00-0x05 */
	ck_assert_int_eq(RAW(V311, 0x20, "\x00\x05"), 0);
	ck_assert_int_eq(RAW(V311, 0x20, "\x00\x06"), ERR_BAD_REASON);
	ck_assert_int_eq(RAW(V5, 0x20, "\x00\x84\x00"), 0);
	ck_assert_int_eq(RAW(V5, 0x20, "\x00\x01\x00"), ERR_BAD_REASON);
	ck_assert_int_eq(RAW(V5, 0x20, "\x00\x8e\x00"), ERR_BAD_REASON);
	/* [MQTT-2.2.2-1] v5: CONNACK always has a property length */
	ck_assert_int_eq(RAW(V5, 0x20, "\x00\x00"), ERR_MALFORMED);
	ck_assert_int_eq(RAW(V311, 0x20, "\x00\x00\x00"), ERR_BAD_LENGTH);
	/* SUBACK: [MQTT-3.9.3-2] 3.1.1 and v5 code sets */
	ck_assert_int_eq(RAW(V311, 0x90, "\x00\x01\x00\x01\x02\x80"), 0);
	ck_assert_int_eq(RAW(V311, 0x90, "\x00\x01\x87"), ERR_BAD_REASON);
	ck_assert_int_eq(RAW(V5, 0x90, "\x00\x01\x00\x87\xa2"), 0);
	ck_assert_int_eq(RAW(V5, 0x90, "\x00\x01\x00\x03"), ERR_BAD_REASON);
	ck_assert_int_eq(RAW(V311, 0x90, "\x00\x01"), ERR_EMPTY);
	ck_assert_int_eq(RAW(V311, 0x90, "\x00\x00\x00"), ERR_BAD_PACKET_ID);
	/* UNSUBACK: [MQTT-3.11.3-2] v5 code set; 3.1.1 no payload */
	ck_assert_int_eq(RAW(V311, 0xb0, "\x00\x01"), 0);
	ck_assert_int_eq(RAW(V311, 0xb0, "\x00\x01\x00"), ERR_BAD_LENGTH);
	ck_assert_int_eq(RAW(V5, 0xb0, "\x00\x01\x00\x00\x11\x91"), 0);
	ck_assert_int_eq(RAW(V5, 0xb0, "\x00\x01\x00\x01"), ERR_BAD_REASON);
	ck_assert_int_eq(RAW(V5, 0xb0, "\x00\x01\x00"), ERR_EMPTY);
	/* PINGREQ, PINGRESP: no body */
	ck_assert_int_eq(RAW(V311, 0xc0, ""), 0);
	ck_assert_int_eq(RAW(V311, 0xc0, "\x00"), ERR_BAD_LENGTH);
	ck_assert_int_eq(RAW(V5, 0xd0, "\x00"), ERR_BAD_LENGTH);
}
END_TEST

START_TEST(test_disconnect_auth_malformed)
{
	struct mqtt_packet p;

	ck_assert_int_eq(RAW(V311, 0xe0, ""), 0);
	/* 3.1.1 DISCONNECT has no body */
	ck_assert_int_eq(RAW(V311, 0xe0, "\x00"), ERR_BAD_LENGTH);
	/* §3.14.2.1 v5: short forms */
	ck_assert_int_eq(RAWP(V5, 0xe0, "", &p), 0);
	ck_assert_uint_eq(p.u.disconnect.rc, 0);
	ck_assert_int_eq(RAWP(V5, 0xe0, "\x04", &p), 0);
	ck_assert_uint_eq(p.u.disconnect.rc, 4);
	ck_assert_int_eq(RAW(V5, 0xe0, "\x8e\x00"), 0);
	/* [MQTT-3.14.2-1] v5: disconnect reason codes */
	ck_assert_int_eq(RAW(V5, 0xe0, "\x01"), ERR_BAD_REASON);
	ck_assert_int_eq(RAW(V5, 0xe0, "\x92"), ERR_BAD_REASON);
	ck_assert_int_eq(RAW(V5, 0xe0, "\x00\x00\x00"), ERR_BAD_LENGTH);
	ck_assert_int_eq(RAW(V5, 0xe0, "\x00\x03\x11"), ERR_MALFORMED);
	/* AUTH: [MQTT-3.15.2-1] v5 codes 0x00, 0x18, 0x19 */
	ck_assert_int_eq(RAW(V5, 0xf0, ""), 0);
	ck_assert_int_eq(RAW(V5, 0xf0, "\x18\x00"), 0);
	ck_assert_int_eq(RAW(V5, 0xf0, "\x19\x00"), 0);
	ck_assert_int_eq(RAW(V5, 0xf0, "\x04\x00"), ERR_BAD_REASON);
	/* §2.1.2: AUTH is not a 3.1.1 packet, type 0 is reserved */
	ck_assert_int_eq(RAW(V311, 0xf0, ""), ERR_BAD_TYPE);
	ck_assert_int_eq(RAW(MQTT_V31, 0xf0, ""), ERR_BAD_TYPE);
	ck_assert_int_eq(RAW(V311, 0x00, ""), ERR_BAD_TYPE);
	ck_assert_int_eq(RAW(V5, 0x00, ""), ERR_BAD_TYPE);
	/* other packets need a known connection level */
	ck_assert_int_eq(RAW(0, 0xc0, ""), ERR_BAD_VERSION);
	ck_assert_int_eq(RAW(6, 0x30,
	                     "\x00\x01"
	                     "a"),
	                 ERR_BAD_VERSION);
}
END_TEST

/* One valid packet of each type, for the reserved-flags sweep. */
struct type_case {
	uint8_t type;
	const char *body;
	size_t n;
};

#define TC(t, lit)                      \
	{                               \
		t, lit, sizeof(lit) - 1 \
	}

static const struct type_case v311_types[] = {
	TC(MQTT_CONNECT, "\x00\x04"
	                 "MQTT"
	                 "\x04\x02\x00\x3c\x00\x01"
	                 "c"),
	TC(MQTT_CONNACK, "\x00\x00"),
	TC(MQTT_PUBACK, "\x00\x01"),
	TC(MQTT_PUBREC, "\x00\x01"),
	TC(MQTT_PUBREL, "\x00\x01"),
	TC(MQTT_PUBCOMP, "\x00\x01"),
	TC(MQTT_SUBSCRIBE, "\x00\x01\x00\x01"
	                   "a"
	                   "\x00"),
	TC(MQTT_SUBACK, "\x00\x01\x00"),
	TC(MQTT_UNSUBSCRIBE, "\x00\x01\x00\x01"
	                     "a"),
	TC(MQTT_UNSUBACK, "\x00\x01"),
	TC(MQTT_PINGREQ, ""),
	TC(MQTT_PINGRESP, ""),
	TC(MQTT_DISCONNECT, ""),
};

static const struct type_case v5_types[] = {
	TC(MQTT_CONNECT, "\x00\x04"
	                 "MQTT"
	                 "\x05\x02\x00\x3c\x00\x00\x01"
	                 "c"),
	TC(MQTT_CONNACK, "\x00\x00\x00"),
	TC(MQTT_PUBACK, "\x00\x01"),
	TC(MQTT_PUBREC, "\x00\x01\x00\x00"),
	TC(MQTT_PUBREL, "\x00\x01\x00"),
	TC(MQTT_PUBCOMP, "\x00\x01"),
	TC(MQTT_SUBSCRIBE, "\x00\x01\x00\x00\x01"
	                   "a"
	                   "\x00"),
	TC(MQTT_SUBACK, "\x00\x01\x00\x00"),
	TC(MQTT_UNSUBSCRIBE, "\x00\x01\x00\x00\x01"
	                     "a"),
	TC(MQTT_UNSUBACK, "\x00\x01\x00\x00"),
	TC(MQTT_PINGREQ, ""),
	TC(MQTT_PINGRESP, ""),
	TC(MQTT_DISCONNECT, ""),
	TC(MQTT_AUTH, ""),
};

static void
flags_sweep(uint8_t version, const struct type_case *c)
{
	uint8_t want_flags, f;
	int rc;

	want_flags = (c->type == MQTT_PUBREL || c->type == MQTT_SUBSCRIBE ||
	              c->type == MQTT_UNSUBSCRIBE)
	                     ? 2
	                     : 0;
	for (f = 0; f < 16; f++) {
		rc = raw_decode(version, (uint8_t)(c->type << 4 | f),
		                (const uint8_t *)c->body, c->n, NULL);
		ck_assert_msg(rc == (f == want_flags ? 0 : ERR_BAD_FLAGS),
		              "%s v%u flags %x: %s", mqtt_type_name(c->type),
		              version, f, err_str(rc));
	}
}

/* [MQTT-2.2.2-1] [MQTT-2.2.2-2] 3.1.1, [MQTT-2.1.3-1] v5: reserved
 * fixed-header flags; per packet [MQTT-3.6.1-1] PUBREL, [MQTT-3.8.1-1]
 * SUBSCRIBE, [MQTT-3.10.1-1] UNSUBSCRIBE, [MQTT-3.14.1-1] DISCONNECT (both
 * versions), [MQTT-3.15.1-1] v5 AUTH. */
START_TEST(test_reserved_flags_v311)
{
	flags_sweep(MQTT_V311, &v311_types[_i]);
	flags_sweep(MQTT_V31, &v311_types[_i]);
}
END_TEST

START_TEST(test_reserved_flags_v5)
{
	flags_sweep(MQTT_V5, &v5_types[_i]);
}
END_TEST

/* ---- framing and split input ---- */

START_TEST(test_frame)
{
	static const uint8_t five[] = { 0x30, 0xff, 0xff, 0xff, 0xff, 0x7f };
	static const uint8_t big[] = { 0x30, 0xff, 0xff, 0xff, 0x7f };
	static const uint8_t mid[] = { 0x30, 0x80, 0x01 };
	struct mqtt_packet p;
	uint8_t tf;
	size_t total, used;

	ck_assert_int_eq(mqtt_frame(big, 0, 0, &tf, &total), ERR_AGAIN);
	ck_assert_int_eq(mqtt_frame(big, 1, 0, &tf, &total), ERR_AGAIN);
	ck_assert_int_eq(mqtt_frame(big, 4, 0, &tf, &total), ERR_AGAIN);
	ck_assert_int_eq(mqtt_frame(big, 5, 0, &tf, &total), 0);
	ck_assert_uint_eq(tf, 0x30);
	ck_assert_uint_eq(total, 5 + 268435455u);
	/* ERR_TOO_LARGE is known from the header alone */
	ck_assert_int_eq(mqtt_frame(big, 5, 1000, &tf, &total), ERR_TOO_LARGE);
	ck_assert_int_eq(mqtt_frame(mid, 3, 131, &tf, &total), 0);
	ck_assert_uint_eq(total, 131);
	ck_assert_int_eq(mqtt_frame(mid, 3, 130, &tf, &total), ERR_TOO_LARGE);
	/* [MQTT-1.5.5-1] v5: five-byte remaining length */
	ck_assert_int_eq(mqtt_frame(five, sizeof(five), 0, &tf, &total),
	                 ERR_BAD_LENGTH);
	ck_assert_int_eq(mqtt_frame(five, 5, 0, &tf, &total), ERR_BAD_LENGTH);
	ck_assert_int_eq(mqtt_decode(five, sizeof(five), MQTT_V5, &p, &used),
	                 ERR_BAD_LENGTH);
	ck_assert_int_eq(mqtt_decode(big, sizeof(big), MQTT_V5, &p, &used),
	                 ERR_AGAIN);
}
END_TEST

static void
split_check(uint8_t version, const uint8_t *pkt, size_t n)
{
	struct mqtt_packet whole, part;
	uint8_t tf, *copy;
	size_t k, total, used, hl;

	ck_assert_int_eq(mqtt_decode(pkt, n, version, &whole, &used), 0);
	ck_assert_uint_eq(used, n);
	hl = 2 + (n > 129) + (n > 16386);
	for (k = 0; k < n; k++) {
		copy = malloc(k ? k : 1);
		ck_assert_ptr_nonnull(copy);
		memcpy(copy, pkt, k);
		ck_assert_int_eq(mqtt_decode(copy, k, version, &part, &used),
		                 ERR_AGAIN);
		if (k < hl) {
			ck_assert_int_eq(mqtt_frame(copy, k, 0, &tf, &total),
			                 ERR_AGAIN);
		} else {
			ck_assert_int_eq(mqtt_frame(copy, k, 0, &tf, &total),
			                 0);
			ck_assert_uint_eq(total, n);
		}
		free(copy);
	}
	/* the whole packet followed by the start of the next one */
	copy = malloc(n + 3);
	ck_assert_ptr_nonnull(copy);
	memcpy(copy, pkt, n);
	memcpy(copy + n, "\xc0\x00\x30", 3);
	ck_assert_int_eq(mqtt_decode(copy, n + 3, version, &part, &used), 0);
	ck_assert_uint_eq(used, n);
	ck_assert(mqtt_packet_equals(version, &whole, &part));
	ck_assert_int_eq(mqtt_decode(copy + used, 3, version ? version : V311,
	                             &part, &used),
	                 0);
	ck_assert_uint_eq(part.type, MQTT_PINGREQ);
	free(copy);
}

START_TEST(test_split_input)
{
	struct mqtt_packet p = { .type = MQTT_PUBLISH };
	static uint8_t payload[20000];
	struct buf b;
	size_t sizes[] = { 0, 100, 200, 17000 };
	size_t i;

	/* CONNECT vector, small acks */
	split_check(0,
	            (const uint8_t *)"\x10\x0d\x00\x04MQTT\x04\x02\x00\x3c"
	                             "\x00\x01"
	                             "c",
	            15);
	split_check(MQTT_V5, (const uint8_t *)"\x40\x03\x00\x01\x10", 5);
	split_check(MQTT_V311, (const uint8_t *)"\xe0\x00", 2);
	/* PUBLISH with 1-, 2- and 3-byte remaining lengths */
	memset(payload, 'x', sizeof(payload));
	p.u.publish.topic = B("split/topic");
	p.u.publish.qos = 1;
	p.u.publish.packet_id = 9;
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		p.u.publish.payload = (struct mqtt_bytes){ payload, sizes[i] };
		buf_init(&b);
		ck_assert_int_eq(mqtt_encode(&b, MQTT_V5, &p), 0);
		split_check(MQTT_V5, b.data, b.len);
		buf_fini(&b);
	}
}
END_TEST

/* Every packet cut short inside its body (the remaining length adjusted to
 * match) fails cleanly; a CONNECT has no optional tail, so every cut
 * fails. */
START_TEST(test_truncated_bodies)
{
	static const struct {
		uint8_t version;
		const char *pkt;
		size_t n;
		bool all_fail;
	} cases[] = {
#define TB(v, lit, all) { v, lit, sizeof(lit) - 1, all }
		TB(0,
		   "\x10\x22\x00\x04MQTT\x04\xce\x00\x0a\x00\x03"
		   "cid"
		   "\x00\x03w/t\x00\x02"
		   "by"
		   "\x00\x03"
		   "bob"
		   "\x00\x03pwd",
		   true),
		TB(0,
		   "\x10\x1e\x00\x04MQTT\x05\xc6\x00\x0a\x03\x21\x00\x01"
		   "\x00\x01"
		   "c"
		   "\x02\x01\x01\x00\x01t\x00\x00\x00\x01u"
		   "\x00\x00",
		   true),
		TB(V5, "\x20\x0a\x00\x00\x07\x13\x00\x0a\x1f\x00\x01r", false),
		TB(V311, "\x20\x02\x00\x00", true),
		TB(V5, "\x90\x0a\x00\x01\x04\x1f\x00\x01r\x00\x01\x02", false),
		TB(V5, "\xb0\x06\x00\x01\x00\x00\x11\x00", false),
		TB(V5,
		   "\x82\x09\x00\x01\x02\x0b\x01\x00\x01"
		   "a"
		   "\x00",
		   false),
		TB(V5, "\xe0\x07\x04\x05\x11\x00\x00\x00\x00", false),
		TB(V5,
		   "\xf0\x07\x18\x05\x15\x00\x02"
		   "ab",
		   false),
		TB(V5, "\x62\x07\x00\x01\x92\x03\x1f\x00\x00", false),
		TB(V5,
		   "\x32\x0a\x00\x01"
		   "a"
		   "\x00\x07\x03\x23\x00\x01"
		   "x",
		   false),
#undef TB
	};
	struct mqtt_packet p;
	size_t i, k, rl;
	int rc;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ck_assert_msg(raw_decode(cases[i].version, cases[i].pkt[0],
		                         (const uint8_t *)cases[i].pkt + 2,
		                         cases[i].n - 2, &p) == 0,
		              "case %zu", i);
		rl = cases[i].n - 2;
		for (k = 0; k < rl; k++) {
			rc = raw_decode(cases[i].version, cases[i].pkt[0],
			                (const uint8_t *)cases[i].pkt + 2, k,
			                &p);
			ck_assert_msg(rc <= 0 && rc != ERR_AGAIN,
			              "case %zu cut %zu: %d", i, k, rc);
			if (cases[i].all_fail)
				ck_assert_msg(rc < 0, "case %zu cut %zu", i, k);
		}
	}
}
END_TEST

/* ---- encoder API ---- */

START_TEST(test_publish_header_and_size)
{
	struct mqtt_packet p = { .type = MQTT_PUBLISH };
	struct mqtt_publish *pub = &p.u.publish;
	static uint8_t payload[300];
	struct buf whole, hdr;
	uint8_t v = versions[_i];

	pub->topic = B("a/b/c");
	pub->qos = 2;
	pub->packet_id = 77;
	pub->retain = true;
	pub->payload = (struct mqtt_bytes){ payload, sizeof(payload) };
	if (v == MQTT_V5) {
		SET(&pub->props, MQTT_PROP_MESSAGE_EXPIRY);
		pub->props.message_expiry = 5;
	}
	buf_init(&whole);
	buf_init(&hdr);
	ck_assert_int_eq(mqtt_encode(&whole, v, &p), 0);
	ck_assert_uint_eq(mqtt_publish_size(v, pub), whole.len);
	ck_assert_int_eq(mqtt_publish_header_encode(&hdr, v, pub), 0);
	/* header + payload by reference = the whole packet */
	ck_assert_uint_eq(hdr.len + sizeof(payload), whole.len);
	ck_assert_mem_eq(hdr.data, whole.data, hdr.len);
	ck_assert_mem_eq(whole.data + hdr.len, payload, sizeof(payload));
	buf_fini(&whole);
	buf_fini(&hdr);
}
END_TEST

/* Properties already encoded (props_raw) go after the struct ones, inside
 * one length prefix, and decode as if they had been in the struct. */
START_TEST(test_publish_props_raw)
{
	struct mqtt_packet p = { .type = MQTT_PUBLISH }, out;
	struct mqtt_publish *pub = &p.u.publish;
	struct mqtt_props fw;
	struct buf raw, whole;
	size_t used, i;

	memset(&fw, 0, sizeof(fw));
	SET(&fw, MQTT_PROP_CONTENT_TYPE);
	fw.content_type = B("text/plain");
	SET(&fw, MQTT_PROP_CORRELATION_DATA);
	fw.correlation_data = B("\x01\x02");
	buf_init(&raw);
	mqtt_props_encode(&raw, &fw);
	pub->topic = B("t");
	pub->qos = 1;
	pub->packet_id = 9;
	pub->payload = B("body");
	SET(&pub->props, MQTT_PROP_MESSAGE_EXPIRY);
	pub->props.message_expiry = 30;
	SET(&pub->props, MQTT_PROP_SUB_ID);
	pub->props.sub_ids[0] = 5;
	pub->props.n_sub_ids = 1;
	/* the raw bytes without their own length prefix (1 byte here) */
	pub->props_raw = (struct mqtt_bytes){ raw.data + 1, raw.len - 1 };
	buf_init(&whole);
	ck_assert_int_eq(mqtt_encode(&whole, MQTT_V5, &p), 0);
	ck_assert_uint_eq(mqtt_publish_size(MQTT_V5, pub), whole.len);
	memset(&out, 0, sizeof(out));
	ck_assert_int_eq(
	        mqtt_decode(whole.data, whole.len, MQTT_V5, &out, &used), 0);
	ck_assert_uint_eq(used, whole.len);
	ck_assert(mqtt_bytes_equals(out.u.publish.props.content_type,
	                            B("text/plain")));
	ck_assert(mqtt_bytes_equals(out.u.publish.props.correlation_data,
	                            B("\x01\x02")));
	ck_assert_uint_eq(out.u.publish.props.message_expiry, 30);
	ck_assert_uint_eq(out.u.publish.props.n_sub_ids, 1);
	ck_assert_uint_eq(out.u.publish.props.sub_ids[0], 5);
	ck_assert(mqtt_bytes_equals(out.u.publish.payload, B("body")));
	/* on 3.1.1 there are no properties at all */
	for (i = 0; i < 2; i++) {
		uint8_t v = i ? MQTT_V311 : MQTT_V31;
		buf_reset(&whole);
		ck_assert_int_eq(mqtt_encode(&whole, v, &p), 0);
		ck_assert_uint_eq(whole.len, 2 + 3 + 2 + 4);
	}
	buf_fini(&raw);
	buf_fini(&whole);
}
END_TEST

START_TEST(test_encode_errors)
{
	struct mqtt_packet p = { .type = MQTT_PUBLISH };
	uint8_t mem[16];
	struct buf b;

	p.u.publish.topic = B("topic");
	p.u.publish.payload = B("0123456789");
	/* a fixed buffer too small: nothing of the packet stays */
	buf_init_fixed(&b, mem, sizeof(mem));
	buf_put_u8(&b, 0xee);
	ck_assert_int_eq(mqtt_encode(&b, MQTT_V311, &p), ERR_TOO_LARGE);
	ck_assert(buf_failed(&b));
	ck_assert_uint_eq(b.len, 1);
	ck_assert_int_eq(mqtt_encode(&b, MQTT_V311, &p), ERR_TOO_LARGE);
	buf_reset(&b);
	p.type = MQTT_SUBACK;
	p.u.suback.codes = B("0123456789abcdef");
	ck_assert_int_eq(mqtt_encode(&b, MQTT_V311, &p), ERR_TOO_LARGE);
	ck_assert_uint_eq(b.len, 0);
	buf_reset(&b);
	p.u.suback.codes = B("\x01");
	ck_assert_int_eq(mqtt_encode(&b, MQTT_V311, &p), 0);
	ck_assert_uint_eq(b.len, 5);
	/* a fixed buffer of exactly the packet's size is enough */
	buf_init_fixed(&b, mem, 2);
	p.type = MQTT_PINGREQ;
	ck_assert_int_eq(mqtt_encode(&b, MQTT_V5, &p), 0);
	ck_assert_mem_eq(mem, "\xc0\x00", 2);
	buf_init_fixed(&b, mem, 5);
	p.type = MQTT_CONNACK;
	p.u.connack.rc = 0;
	p.u.connack.session_present = false;
	memset(&p.u.connack.props, 0, sizeof(p.u.connack.props));
	ck_assert_int_eq(mqtt_encode(&b, MQTT_V5, &p), 0);
	ck_assert_uint_eq(b.len, 5);
	buf_init_fixed(&b, mem, 4);
	ck_assert_int_eq(mqtt_encode(&b, MQTT_V5, &p), ERR_TOO_LARGE);
	ck_assert_uint_eq(b.len, 0);
	buf_init_fixed(&b, mem, sizeof(mem));
	p.type = MQTT_SUBACK;
	/* unknown versions and types */
	buf_reset(&b);
	ck_assert_int_eq(mqtt_encode(&b, 2, &p), ERR_BAD_VERSION);
	ck_assert_int_eq(mqtt_publish_header_encode(&b, 6, &p.u.publish),
	                 ERR_BAD_VERSION);
	p.type = 0;
	ck_assert_int_eq(mqtt_encode(&b, MQTT_V5, &p), ERR_BAD_TYPE);
	p.type = 16;
	ck_assert_int_eq(mqtt_encode(&b, MQTT_V5, &p), ERR_BAD_TYPE);
	ck_assert_uint_eq(b.len, 0);
	ck_assert(!buf_failed(&b));
	/* a topic over 65535 bytes cannot be written */
	buf_fini(&b);
}
END_TEST

START_TEST(test_encode_too_large)
{
	struct mqtt_packet p = { .type = MQTT_PUBLISH };
	struct buf b;

	p.u.publish.topic = B("t");
	p.u.publish.payload.p = (const uint8_t *)"";
	p.u.publish.payload.len = MQTT_MAX_REMAINING;
	ck_assert_uint_gt(mqtt_publish_size(MQTT_V311, &p.u.publish),
	                  MQTT_MAX_REMAINING + 5);
	buf_init(&b);
	ck_assert_int_eq(
	        mqtt_publish_header_encode(&b, MQTT_V311, &p.u.publish),
	        ERR_TOO_LARGE);
	ck_assert(buf_failed(&b));
	ck_assert_uint_eq(b.len, 0);
	buf_fini(&b);
	/* the largest remaining length still encodes (header only) */
	p.u.publish.payload.len = MQTT_MAX_REMAINING - 3;
	ck_assert_uint_eq(mqtt_publish_size(MQTT_V311, &p.u.publish),
	                  MQTT_MAX_REMAINING + 5);
	buf_init(&b);
	ck_assert_int_eq(
	        mqtt_publish_header_encode(&b, MQTT_V311, &p.u.publish), 0);
	ck_assert_mem_eq(b.data,
	                 "\x30\xff\xff\xff\x7f\x00\x01"
	                 "t",
	                 8);
	buf_fini(&b);
}
END_TEST

START_TEST(test_sub_walkers)
{
	static const uint8_t sub[] = { 0x82, 0x0d, 0x00, 0x07, 0x00,
		                       0x00, 0x01, 'a',  0x2d, 0x00,
		                       0x03, 'b',  '/',  '#',  0x00 };
	static const uint8_t unsub[] = { 0xa2, 0x08, 0x00, 0x07, 0x00,
		                         0x01, 'a',  0x00, 0x01, '+' };
	struct mqtt_sub_entry e;
	struct mqtt_bytes f;
	struct mqtt_packet p;
	struct rd r;
	size_t used;

	ck_assert_int_eq(mqtt_decode(sub, sizeof(sub), MQTT_V5, &p, &used), 0);
	ck_assert_uint_eq(p.u.subscribe.packet_id, 7);
	ck_assert_uint_eq(p.u.subscribe.count, 2);
	rd_init(&r, p.u.subscribe.entries.p, p.u.subscribe.entries.len);
	ck_assert_int_eq(mqtt_sub_next(&r, MQTT_V5, &e), 0);
	ck_assert(mqtt_bytes_equals(e.filter, B("a")));
	ck_assert_uint_eq(e.qos, 1);
	ck_assert(e.no_local);
	ck_assert(e.retain_as_published);
	ck_assert_uint_eq(e.retain_handling, 2);
	ck_assert_int_eq(mqtt_sub_next(&r, MQTT_V5, &e), 0);
	ck_assert(mqtt_bytes_equals(e.filter, B("b/#")));
	ck_assert_uint_eq(e.qos, 0);
	ck_assert(!e.no_local);
	ck_assert_int_eq(mqtt_sub_next(&r, MQTT_V5, &e), ERR_NOTFOUND);
	/* bytes that were not validated */
	rd_init(&r,
	        (const uint8_t *)"\x00\x05"
	                         "ab",
	        4);
	ck_assert_int_eq(mqtt_sub_next(&r, MQTT_V5, &e), ERR_MALFORMED);
	ck_assert_int_eq(
	        mqtt_decode(unsub, sizeof(unsub), MQTT_V311, &p, &used), 0);
	ck_assert_uint_eq(p.u.subscribe.count, 2);
	rd_init(&r, p.u.subscribe.entries.p, p.u.subscribe.entries.len);
	ck_assert_int_eq(mqtt_unsub_next(&r, &f), 0);
	ck_assert(mqtt_bytes_equals(f, B("a")));
	ck_assert_int_eq(mqtt_unsub_next(&r, &f), 0);
	ck_assert(mqtt_bytes_equals(f, B("+")));
	ck_assert_int_eq(mqtt_unsub_next(&r, &f), ERR_NOTFOUND);
	rd_init(&r, (const uint8_t *)"\x00", 1);
	ck_assert_int_eq(mqtt_unsub_next(&r, &f), ERR_MALFORMED);
}
END_TEST

START_TEST(test_rc_from_err)
{
	ck_assert_uint_eq(mqtt_rc_from_err(0), MQTT_RC_SUCCESS);
	ck_assert_uint_eq(mqtt_rc_from_err(ERR_NOMEM), MQTT_RC_UNSPECIFIED);
	ck_assert_uint_eq(mqtt_rc_from_err(ERR_TOO_LARGE),
	                  MQTT_RC_PACKET_TOO_LARGE);
	/* [MQTT-3.3.2-2] v5: wildcard topic name -> 0x90 */
	ck_assert_uint_eq(mqtt_rc_from_err(ERR_BAD_TOPIC),
	                  MQTT_RC_TOPIC_NAME_INVALID);
	/* [MQTT-3.1.2-1] [MQTT-3.1.2-2] v5: CONNACK 0x84 */
	ck_assert_uint_eq(mqtt_rc_from_err(ERR_BAD_PROTOCOL),
	                  MQTT_RC_UNSUPPORTED_VERSION);
	ck_assert_uint_eq(mqtt_rc_from_err(ERR_BAD_VERSION),
	                  MQTT_RC_UNSUPPORTED_VERSION);
	/* [MQTT-3.1.3-8] v5: CONNACK 0x85 */
	ck_assert_uint_eq(mqtt_rc_from_err(ERR_BAD_CLIENT_ID),
	                  MQTT_RC_CLIENT_ID_INVALID);
	/* [MQTT-2.2.1-3] [MQTT-3.8.3-2] v5: Protocol Error */
	ck_assert_uint_eq(mqtt_rc_from_err(ERR_BAD_PACKET_ID),
	                  MQTT_RC_PROTOCOL_ERROR);
	ck_assert_uint_eq(mqtt_rc_from_err(ERR_EMPTY), MQTT_RC_PROTOCOL_ERROR);
	ck_assert_uint_eq(mqtt_rc_from_err(ERR_BAD_PROPERTY),
	                  MQTT_RC_PROTOCOL_ERROR);
	ck_assert_uint_eq(mqtt_rc_from_err(ERR_PROTOCOL),
	                  MQTT_RC_PROTOCOL_ERROR);
	/* [MQTT-1.5.4-1] [MQTT-3.3.1-4] [MQTT-2.1.3-1] v5: Malformed */
	ck_assert_uint_eq(mqtt_rc_from_err(ERR_BAD_UTF8), MQTT_RC_MALFORMED);
	ck_assert_uint_eq(mqtt_rc_from_err(ERR_BAD_QOS), MQTT_RC_MALFORMED);
	ck_assert_uint_eq(mqtt_rc_from_err(ERR_BAD_FLAGS), MQTT_RC_MALFORMED);
	ck_assert_uint_eq(mqtt_rc_from_err(ERR_MALFORMED), MQTT_RC_MALFORMED);
	ck_assert_uint_eq(mqtt_rc_from_err(ERR_BAD_LENGTH), MQTT_RC_MALFORMED);
	ck_assert_uint_eq(mqtt_rc_from_err(ERR_BAD_FILTER), MQTT_RC_MALFORMED);
	ck_assert_uint_eq(mqtt_rc_from_err(ERR_BAD_WILL), MQTT_RC_MALFORMED);
	ck_assert_uint_eq(mqtt_rc_from_err(ERR_BAD_TYPE), MQTT_RC_MALFORMED);
	ck_assert_uint_eq(mqtt_rc_from_err(ERR_BAD_REASON), MQTT_RC_MALFORMED);
	ck_assert_uint_eq(mqtt_rc_from_err(ERR_BAD_CREDENTIALS),
	                  MQTT_RC_MALFORMED);
	ck_assert_uint_eq(mqtt_rc_from_err(ERR_LIMIT), MQTT_RC_QUOTA_EXCEEDED);
	ck_assert_uint_eq(mqtt_rc_from_err(ERR_IO), MQTT_RC_UNSPECIFIED);
	ck_assert_uint_eq(mqtt_rc_from_err(-999), MQTT_RC_UNSPECIFIED);
}
END_TEST

START_TEST(test_type_name)
{
	ck_assert_str_eq(mqtt_type_name(MQTT_CONNECT), "CONNECT");
	ck_assert_str_eq(mqtt_type_name(MQTT_UNSUBACK), "UNSUBACK");
	ck_assert_str_eq(mqtt_type_name(MQTT_AUTH), "AUTH");
	ck_assert_str_eq(mqtt_type_name(0), "?");
	ck_assert_str_eq(mqtt_type_name(16), "?");
	ck_assert_str_eq(mqtt_type_name(255), "?");
}
END_TEST

static Suite *
codec_suite(void)
{
	Suite *s = suite_create("proto_codec");
	TCase *rt = tcase_create("roundtrip");
	TCase *vec = tcase_create("vectors");
	TCase *bad = tcase_create("malformed");
	TCase *frame = tcase_create("framing");
	TCase *enc = tcase_create("encoder");
	int nv = sizeof(versions);

	tcase_add_loop_test(rt, test_rt_connect_minimal, 0, nv);
	tcase_add_loop_test(rt, test_rt_connect_full, 0, nv);
	tcase_add_test(rt, test_rt_connect_v5_password_only);
	tcase_add_loop_test(rt, test_rt_connack, 0, nv);
	tcase_add_loop_test(rt, test_rt_publish, 0, nv);
	tcase_add_test(rt, test_rt_publish_v5_props);
	tcase_add_loop_test(rt, test_rt_acks, 0, nv);
	tcase_add_loop_test(rt, test_rt_subscribe, 0, nv);
	tcase_add_loop_test(rt, test_rt_unsubscribe, 0, nv);
	tcase_add_loop_test(rt, test_rt_suback, 0, nv);
	tcase_add_loop_test(rt, test_rt_unsuback, 0, nv);
	tcase_add_loop_test(rt, test_rt_ping_disconnect, 0, nv);
	tcase_add_test(rt, test_rt_auth);
	tcase_add_test(rt, test_packet_equals_differs);
	suite_add_tcase(s, rt);

	tcase_add_test(vec, test_vec_connect_v311);
	tcase_add_test(vec, test_vec_connect_v5);
	tcase_add_test(vec, test_vec_connect_v31);
	tcase_add_test(vec, test_vec_small_packets);
	suite_add_tcase(s, vec);

	tcase_add_test(bad, test_connect_protocol);
	tcase_add_test(bad, test_connect_flags);
	tcase_add_test(bad, test_connect_credentials);
	tcase_add_test(bad, test_connect_payload);
	tcase_add_test(bad, test_publish_malformed);
	tcase_add_test(bad, test_ack_malformed);
	tcase_add_test(bad, test_subscribe_malformed);
	tcase_add_test(bad, test_unsubscribe_malformed);
	tcase_add_test(bad, test_server_packets_malformed);
	tcase_add_test(bad, test_disconnect_auth_malformed);
	tcase_add_loop_test(bad, test_reserved_flags_v311, 0,
	                    sizeof(v311_types) / sizeof(v311_types[0]));
	tcase_add_loop_test(bad, test_reserved_flags_v5, 0,
	                    sizeof(v5_types) / sizeof(v5_types[0]));
	suite_add_tcase(s, bad);

	tcase_add_test(frame, test_frame);
	tcase_add_test(frame, test_split_input);
	tcase_add_test(frame, test_truncated_bodies);
	suite_add_tcase(s, frame);

	tcase_add_loop_test(enc, test_publish_header_and_size, 0, nv);
	tcase_add_test(enc, test_publish_props_raw);
	tcase_add_test(enc, test_encode_errors);
	tcase_add_test(enc, test_encode_too_large);
	tcase_add_test(enc, test_sub_walkers);
	tcase_add_test(enc, test_rc_from_err);
	tcase_add_test(enc, test_type_name);
	suite_add_tcase(s, enc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(codec_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
