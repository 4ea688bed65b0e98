/*
 * Unit tests for proto/props.c: MQTT 5 properties allowed per packet (table
 * 2-4), duplicates, value ranges, string rules, encoding order and the raw
 * User Property run.
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

/* Decodes a property list (without its length) given as bytes, after
 * prefixing the length, from an exact-size copy. */
static int
props_decode_raw(uint8_t ctx, const char *list, size_t n,
                 struct mqtt_props *out)
{
	struct mqtt_props tmp;
	struct buf b;
	struct rd r;
	int rc;

	buf_init(&b);
	buf_put_varint(&b, (uint32_t)n);
	buf_put_bytes(&b, list, n);
	ck_assert(!buf_failed(&b));
	rd_init(&r, b.data, b.len);
	rc = mqtt_props_decode(&r, ctx, out ? out : &tmp);
	if (rc == 0)
		ck_assert_uint_eq(r.left, 0);
	buf_fini(&b);
	return rc;
}

#define PROPS(ctx, lit) props_decode_raw((ctx), (lit), sizeof(lit) - 1, NULL)

#define C  (1u << MQTT_CONNECT)
#define CA (1u << MQTT_CONNACK)
#define P  (1u << MQTT_PUBLISH)
#define W  (1u << MQTT_PROPS_WILL)
#define ACKS                                                               \
	((1u << MQTT_PUBACK) | (1u << MQTT_PUBREC) | (1u << MQTT_PUBREL) | \
	 (1u << MQTT_PUBCOMP))
#define S   (1u << MQTT_SUBSCRIBE)
#define SA  (1u << MQTT_SUBACK)
#define U   (1u << MQTT_UNSUBSCRIBE)
#define UA  (1u << MQTT_UNSUBACK)
#define D   (1u << MQTT_DISCONNECT)
#define A   (1u << MQTT_AUTH)
#define ALL (C | CA | P | W | ACKS | S | SA | U | UA | D | A)

/* MQTT 5 table 2-4, written out from the standard, with one valid encoding
 * of each property. */
static const struct prop_case {
	uint8_t id;
	uint32_t allow;
	const char *raw;
	size_t n;
} prop_cases[] = {
#define PC(id, allow, lit)                      \
	{                                       \
		id, allow, lit, sizeof(lit) - 1 \
	}
	PC(0x01, P | W, "\x01\x01"),
	PC(0x02, P | W, "\x02\x00\x00\x00\x0a"),
	PC(0x03, P | W,
	   "\x03\x00\x01"
	   "t"),
	PC(0x08, P | W,
	   "\x08\x00\x01"
	   "r"),
	PC(0x09, P | W, "\x09\x00\x01\xff"),
	PC(0x0b, P | S, "\x0b\x05"),
	PC(0x11, C | CA | D, "\x11\x00\x00\x00\x0a"),
	PC(0x12, CA,
	   "\x12\x00\x01"
	   "a"),
	PC(0x13, CA, "\x13\x00\x0a"),
	PC(0x15, C | CA | A,
	   "\x15\x00\x01"
	   "m"),
	PC(0x16, C | CA | A,
	   "\x15\x00\x01"
	   "m"
	   "\x16\x00\x01\xfe"),
	PC(0x17, C, "\x17\x01"),
	PC(0x18, W, "\x18\x00\x00\x00\x05"),
	PC(0x19, C, "\x19\x01"),
	PC(0x1a, CA,
	   "\x1a\x00\x01"
	   "i"),
	PC(0x1c, CA | D,
	   "\x1c\x00\x01"
	   "s"),
	PC(0x1f, CA | ACKS | SA | UA | D | A,
	   "\x1f\x00\x01"
	   "r"),
	PC(0x21, C | CA, "\x21\x00\x0a"),
	PC(0x22, C | CA, "\x22\x00\x0a"),
	PC(0x23, P, "\x23\x00\x01"),
	PC(0x24, CA, "\x24\x01"),
	PC(0x25, CA, "\x25\x01"),
	PC(0x26, ALL,
	   "\x26\x00\x01"
	   "k"
	   "\x00\x01"
	   "v"),
	PC(0x27, C | CA, "\x27\x00\x00\x04\x00"),
	PC(0x28, CA, "\x28\x01"),
	PC(0x29, CA, "\x29\x01"),
	PC(0x2a, CA, "\x2a\x00"),
#undef PC
};

static const uint8_t contexts[] = {
	MQTT_CONNECT,    MQTT_CONNACK, MQTT_PUBLISH,     MQTT_PROPS_WILL,
	MQTT_PUBACK,     MQTT_PUBREC,  MQTT_PUBREL,      MQTT_PUBCOMP,
	MQTT_SUBSCRIBE,  MQTT_SUBACK,  MQTT_UNSUBSCRIBE, MQTT_UNSUBACK,
	MQTT_DISCONNECT, MQTT_AUTH,
};

/* §2.2.2.2 [5.0, no ID]: an identifier not valid for the packet type */
START_TEST(test_props_allowed_table)
{
	const struct prop_case *pc = &prop_cases[_i];
	struct mqtt_props pr;
	size_t c;
	uint8_t ctx;
	int rc, want;

	for (c = 0; c < sizeof(contexts); c++) {
		ctx = contexts[c];
		want = (pc->allow >> ctx) & 1u ? 0 : ERR_BAD_PROPERTY_ID;
		rc = props_decode_raw(ctx, pc->raw, pc->n, &pr);
		ck_assert_msg(rc == want, "id 0x%02x ctx %u: %s", pc->id, ctx,
		              err_str(rc));
		if (rc == 0)
			ck_assert(mqtt_props_has(&pr, pc->id));
	}
}
END_TEST

/* §2.2.2 [5.0, no ID], §3.1.2.11, §3.1.3.2, §3.3.2.3, §3.2.2.3,
 * §3.4.2.2: any property but User Property twice is a Protocol Error;
 * Subscription Identifier may repeat in PUBLISH only. */
START_TEST(test_props_duplicates)
{
	const struct prop_case *pc = &prop_cases[_i];
	char twice[64];
	size_t c;
	uint8_t ctx;
	int rc, want;

	ck_assert_uint_le(2 * pc->n, sizeof(twice));
	memcpy(twice, pc->raw, pc->n);
	memcpy(twice + pc->n, pc->raw, pc->n);
	for (c = 0; c < sizeof(contexts); c++) {
		ctx = contexts[c];
		if (!((pc->allow >> ctx) & 1u))
			continue;
		want = pc->id == MQTT_PROP_USER ||
		                       (pc->id == MQTT_PROP_SUB_ID &&
		                        ctx == MQTT_PUBLISH)
		               ? 0
		               : ERR_BAD_PROPERTY;
		rc = props_decode_raw(ctx, twice, 2 * pc->n, NULL);
		ck_assert_msg(rc == want, "id 0x%02x twice in ctx %u: %s",
		              pc->id, ctx, err_str(rc));
	}
}
END_TEST

START_TEST(test_props_unknown_ids)
{
	ck_assert_int_eq(PROPS(MQTT_PUBLISH, "\x00\x01"), ERR_BAD_PROPERTY_ID);
	ck_assert_int_eq(PROPS(MQTT_PUBLISH, "\x04\x01"), ERR_BAD_PROPERTY_ID);
	ck_assert_int_eq(PROPS(MQTT_CONNECT, "\x14\x00"), ERR_BAD_PROPERTY_ID);
	ck_assert_int_eq(PROPS(MQTT_CONNACK, "\x2b\x00"), ERR_BAD_PROPERTY_ID);
	ck_assert_int_eq(PROPS(MQTT_CONNACK, "\x7f\x00"), ERR_BAD_PROPERTY_ID);
	ck_assert_int_eq(PROPS(MQTT_CONNACK, "\x80\x01\x00"),
	                 ERR_BAD_PROPERTY_ID);
	/* an unknown context allows nothing */
	ck_assert_int_eq(PROPS(0, "\x26\x00\x00\x00\x00"), ERR_BAD_PROPERTY_ID);
	ck_assert_int_eq(PROPS(40, "\x26\x00\x00\x00\x00"),
	                 ERR_BAD_PROPERTY_ID);
	ck_assert_int_eq(PROPS(MQTT_PINGREQ, "\x26\x00\x00\x00\x00"),
	                 ERR_BAD_PROPERTY_ID);
}
END_TEST

START_TEST(test_props_values)
{
	struct mqtt_props pr;

	/* §3.3.2.3.2: Payload Format Indicator 0 or 1 */
	ck_assert_int_eq(PROPS(MQTT_PUBLISH, "\x01\x00"), 0);
	ck_assert_int_eq(PROPS(MQTT_PUBLISH, "\x01\x02"), ERR_BAD_PROPERTY);
	ck_assert_int_eq(PROPS(MQTT_PROPS_WILL, "\x01\xff"), ERR_BAD_PROPERTY);
	/* §3.1.2.11.6 [5.0, no ID]: request flags 0 or 1 */
	ck_assert_int_eq(PROPS(MQTT_CONNECT, "\x17\x00"), 0);
	ck_assert_int_eq(PROPS(MQTT_CONNECT, "\x17\x02"), ERR_BAD_PROPERTY);
	ck_assert_int_eq(PROPS(MQTT_CONNECT, "\x19\x02"), ERR_BAD_PROPERTY);
	/* §3.1.2.11.3 [5.0, no ID]: Receive Maximum 0 */
	ck_assert_int_eq(PROPS(MQTT_CONNECT, "\x21\x00\x00"), ERR_BAD_PROPERTY);
	ck_assert_int_eq(PROPS(MQTT_CONNACK, "\x21\x00\x00"), ERR_BAD_PROPERTY);
	ck_assert_int_eq(PROPS(MQTT_CONNECT, "\x21\xff\xff"), 0);
	/* §3.1.2.11.4 [5.0, no ID]: Maximum Packet Size 0 */
	ck_assert_int_eq(PROPS(MQTT_CONNECT, "\x27\x00\x00\x00\x00"),
	                 ERR_BAD_PROPERTY);
	ck_assert_int_eq(PROPS(MQTT_CONNACK, "\x27\x00\x00\x00\x00"),
	                 ERR_BAD_PROPERTY);
	/* Topic Alias 0 decodes: [MQTT-3.3.2-8] v5 makes it a 0x94 error,
	 * which the broker answers (test_v5_publish.py); Topic Alias
	 * Maximum 0 is fine */
	ck_assert_int_eq(PROPS(MQTT_PUBLISH, "\x23\x00\x00"), 0);
	ck_assert_int_eq(PROPS(MQTT_CONNECT, "\x22\x00\x00"), 0);
	/* §3.2.2.3 [5.0, no ID]: CONNACK flags 0 or 1 */
	ck_assert_int_eq(PROPS(MQTT_CONNACK, "\x24\x00"), 0);
	ck_assert_int_eq(PROPS(MQTT_CONNACK, "\x24\x02"), ERR_BAD_PROPERTY);
	ck_assert_int_eq(PROPS(MQTT_CONNACK, "\x25\x02"), ERR_BAD_PROPERTY);
	ck_assert_int_eq(PROPS(MQTT_CONNACK, "\x28\x02"), ERR_BAD_PROPERTY);
	ck_assert_int_eq(PROPS(MQTT_CONNACK, "\x29\x02"), ERR_BAD_PROPERTY);
	ck_assert_int_eq(PROPS(MQTT_CONNACK, "\x2a\x02"), ERR_BAD_PROPERTY);
	/* §3.8.2.1.2, §3.3.2.3.8 [5.0, no ID]: Subscription Identifier
	 * 1..268435455 */
	ck_assert_int_eq(PROPS(MQTT_SUBSCRIBE, "\x0b\x00"), ERR_BAD_PROPERTY);
	ck_assert_int_eq(PROPS(MQTT_PUBLISH, "\x0b\x00"), ERR_BAD_PROPERTY);
	ck_assert_int_eq(props_decode_raw(MQTT_SUBSCRIBE,
	                                  "\x0b\xff\xff\xff\x7f", 5, &pr),
	                 0);
	ck_assert_uint_eq(pr.n_sub_ids, 1);
	ck_assert_uint_eq(pr.sub_ids[0], 268435455u);
	ck_assert_int_eq(PROPS(MQTT_SUBSCRIBE, "\x0b\x80\x80\x80\x80\x01"),
	                 ERR_BAD_PROPERTY);
	/* the 32-bit values take anything */
	ck_assert_int_eq(
	        props_decode_raw(MQTT_CONNECT, "\x11\xff\xff\xff\xff", 5, &pr),
	        0);
	ck_assert_uint_eq(pr.session_expiry, 0xffffffffu);
}
END_TEST

/* §3.1.2.11.10, §3.15.2.2.3 [5.0, no ID]: Authentication Data only with an
 * Authentication Method */
START_TEST(test_props_auth_data_needs_method)
{
	ck_assert_int_eq(PROPS(MQTT_CONNECT, "\x16\x00\x01"
	                                     "d"),
	                 ERR_BAD_PROPERTY);
	ck_assert_int_eq(PROPS(MQTT_AUTH, "\x16\x00\x01"
	                                  "d"),
	                 ERR_BAD_PROPERTY);
	ck_assert_int_eq(PROPS(MQTT_AUTH, "\x16\x00\x01"
	                                  "d"
	                                  "\x15\x00\x01"
	                                  "m"),
	                 0);
}
END_TEST

/* §1.5.4 [5.0, no ID]: string properties are UTF-8 Encoded Strings;
 * binary ones are not checked. */
START_TEST(test_props_strings)
{
	/* [MQTT-3.3.2-19] v5: Content Type */
	ck_assert_int_eq(PROPS(MQTT_PUBLISH, "\x03\x00\x01\xff"), ERR_BAD_UTF8);
	/* [MQTT-3.3.2-13] v5: Response Topic */
	ck_assert_int_eq(PROPS(MQTT_PUBLISH, "\x08\x00\x02\xc0\x80"),
	                 ERR_BAD_UTF8);
	/* [MQTT-3.3.2-14] v5: no wildcard in a Response Topic; not empty */
	ck_assert_int_eq(PROPS(MQTT_PUBLISH, "\x08\x00\x03"
	                                     "a/#"),
	                 ERR_BAD_PROPERTY);
	ck_assert_int_eq(PROPS(MQTT_PROPS_WILL, "\x08\x00\x01"
	                                        "+"),
	                 ERR_BAD_PROPERTY);
	ck_assert_int_eq(PROPS(MQTT_PUBLISH, "\x08\x00\x00"), ERR_BAD_PROPERTY);
	/* [MQTT-1.5.4-2] v5: U+0000 in a Reason String */
	ck_assert_int_eq(PROPS(MQTT_PUBACK, "\x1f\x00\x02"
	                                    "a"
	                                    "\x00"),
	                 ERR_BAD_UTF8);
	/* [MQTT-1.5.4-1] v5: surrogate in an Authentication Method */
	ck_assert_int_eq(PROPS(MQTT_CONNECT, "\x15\x00\x03\xed\xbf\xbf"),
	                 ERR_BAD_UTF8);
	ck_assert_int_eq(PROPS(MQTT_CONNACK, "\x12\x00\x01\x80"), ERR_BAD_UTF8);
	ck_assert_int_eq(PROPS(MQTT_CONNACK, "\x1a\x00\x01\x80"), ERR_BAD_UTF8);
	ck_assert_int_eq(PROPS(MQTT_DISCONNECT, "\x1c\x00\x01\x80"),
	                 ERR_BAD_UTF8);
	/* [MQTT-1.5.7-1] v5: both halves of a User Property pair */
	ck_assert_int_eq(PROPS(MQTT_PUBLISH, "\x26\x00\x01\xff\x00\x00"),
	                 ERR_BAD_UTF8);
	ck_assert_int_eq(PROPS(MQTT_PUBLISH, "\x26\x00\x00\x00\x01\xff"),
	                 ERR_BAD_UTF8);
	/* binary data: anything goes */
	ck_assert_int_eq(PROPS(MQTT_PUBLISH, "\x09\x00\x03\x00\xff\xc0"), 0);
	ck_assert_int_eq(PROPS(MQTT_CONNECT, "\x15\x00\x00\x16\x00\x02\xed"
	                                     "\xa0"),
	                 0);
}
END_TEST

START_TEST(test_props_lengths)
{
	static const uint8_t five[] = { 0x80, 0x80, 0x80, 0x80, 0x01 };
	static const uint8_t past[] = { 0x05, 0x01, 0x01 };
	struct mqtt_props pr;
	struct rd r;

	/* a property value past the property length */
	ck_assert_int_eq(PROPS(MQTT_PUBLISH, "\x02\x00\x00"), ERR_MALFORMED);
	ck_assert_int_eq(PROPS(MQTT_PUBLISH, "\x03\x00\x05"
	                                     "ab"),
	                 ERR_MALFORMED);
	ck_assert_int_eq(PROPS(MQTT_PUBLISH, "\x26\x00\x01"
	                                     "k"),
	                 ERR_MALFORMED);
	ck_assert_int_eq(PROPS(MQTT_PUBLISH, "\x01"), ERR_MALFORMED);
	/* the property length past the input */
	rd_init(&r, past, sizeof(past));
	ck_assert_int_eq(mqtt_props_decode(&r, MQTT_PUBLISH, &pr),
	                 ERR_MALFORMED);
	/* [MQTT-1.5.5-1] v5: a five-byte property length */
	rd_init(&r, five, sizeof(five));
	ck_assert_int_eq(mqtt_props_decode(&r, MQTT_PUBLISH, &pr),
	                 ERR_BAD_LENGTH);
	/* [MQTT-2.2.2-1] v5: no property length at all */
	rd_init(&r, five, 0);
	ck_assert_int_eq(mqtt_props_decode(&r, MQTT_PUBLISH, &pr),
	                 ERR_MALFORMED);
	/* an empty list */
	ck_assert_int_eq(props_decode_raw(MQTT_PUBLISH, "", 0, &pr), 0);
	ck_assert_uint_eq(pr.present, 0);
}
END_TEST

START_TEST(test_props_sub_ids_kept)
{
	struct mqtt_props pr;
	char raw[40];
	size_t i;

	for (i = 0; i < 12; i++) {
		raw[2 * i] = MQTT_PROP_SUB_ID;
		raw[2 * i + 1] = (char)(i + 1);
	}
	ck_assert_int_eq(props_decode_raw(MQTT_PUBLISH, raw, 24, &pr), 0);
	ck_assert_uint_eq(pr.n_sub_ids, MQTT_MAX_SUB_IDS);
	for (i = 0; i < MQTT_MAX_SUB_IDS; i++)
		ck_assert_uint_eq(pr.sub_ids[i], i + 1);
	/* each one is still checked */
	raw[22] = MQTT_PROP_SUB_ID;
	raw[23] = 0;
	ck_assert_int_eq(props_decode_raw(MQTT_PUBLISH, raw, 24, &pr),
	                 ERR_BAD_PROPERTY);
}
END_TEST

/* User Properties interleaved with others keep their order; the encoder
 * writes them as one run. [MQTT-3.3.2-17] [MQTT-3.3.2-18] v5 */
START_TEST(test_props_user_run)
{
	static const char raw[] = "\x19"
	                          "\x26\x00\x01"
	                          "a"
	                          "\x00\x01"
	                          "1"
	                          "\x1f\x00\x02"
	                          "rs"
	                          "\x26\x00\x01"
	                          "b"
	                          "\x00\x00"
	                          "\x26\x00\x01"
	                          "a"
	                          "\x00\x01"
	                          "3";
	static const char want[] = "\x19\x1f\x00\x02"
	                           "rs"
	                           "\x26\x00\x01"
	                           "a"
	                           "\x00\x01"
	                           "1"
	                           "\x26\x00\x01"
	                           "b"
	                           "\x00\x00"
	                           "\x26\x00\x01"
	                           "a"
	                           "\x00\x01"
	                           "3";
	struct mqtt_props pr, again;
	struct mqtt_bytes k, v;
	struct buf b;
	struct rd r;

	rd_init(&r, (const uint8_t *)raw, sizeof(raw) - 1);
	ck_assert_int_eq(mqtt_props_decode(&r, MQTT_PUBACK, &pr), 0);
	ck_assert_uint_eq(r.left, 0);
	ck_assert_uint_eq(pr.n_user, 3);
	ck_assert(mqtt_bytes_equals(pr.reason_string, B("rs")));
	rd_init(&r, pr.user.p, pr.user.len);
	ck_assert_int_eq(mqtt_user_next(&r, &k, &v), 0);
	ck_assert(mqtt_bytes_equals(k, B("a")) && mqtt_bytes_equals(v, B("1")));
	ck_assert_int_eq(mqtt_user_next(&r, &k, &v), 0);
	ck_assert(mqtt_bytes_equals(k, B("b")) && mqtt_bytes_equals(v, B("")));
	ck_assert_int_eq(mqtt_user_next(&r, &k, &v), 0);
	ck_assert(mqtt_bytes_equals(k, B("a")) && mqtt_bytes_equals(v, B("3")));
	ck_assert_int_eq(mqtt_user_next(&r, &k, &v), ERR_NOTFOUND);
	buf_init(&b);
	mqtt_props_encode(&b, &pr);
	ck_assert(!buf_failed(&b));
	ck_assert_uint_eq(b.len, sizeof(want) - 1);
	ck_assert_mem_eq(b.data, want, sizeof(want) - 1);
	ck_assert_uint_eq(mqtt_props_len(&pr), sizeof(want) - 2);
	rd_init(&r, b.data, b.len);
	ck_assert_int_eq(mqtt_props_decode(&r, MQTT_PUBACK, &again), 0);
	ck_assert(mqtt_props_equals(&pr, &again));
	buf_fini(&b);
	/* a run that is not properties */
	rd_init(&r,
	        (const uint8_t *)"\x26\x00\x05"
	                         "ab",
	        5);
	ck_assert_int_eq(mqtt_user_next(&r, &k, &v), ERR_MALFORMED);
	rd_init(&r, (const uint8_t *)"\x7f\x00", 2);
	ck_assert_int_eq(mqtt_user_next(&r, &k, &v), ERR_MALFORMED);
	rd_init(&r, (const uint8_t *)"\x02\x00", 2);
	ck_assert_int_eq(mqtt_user_next(&r, &k, &v), ERR_MALFORMED);
}
END_TEST

/* Encoding follows `present` order, one entry per Subscription Identifier;
 * mqtt_props_len agrees with what is written. */
START_TEST(test_props_encode_order)
{
	static const char want[] = "\x14"
	                           "\x0b\x01"
	                           "\x0b\x80\x01"
	                           "\x11\x00\x00\x00\x0a"
	                           "\x1f\x00\x01"
	                           "r"
	                           "\x26\x00\x01"
	                           "k"
	                           "\x00\x00";
	struct mqtt_props pr = { 0 };
	struct buf b, ub;

	buf_init(&b);
	buf_init(&ub);
	mqtt_user_put(&ub, B("k"), B(""));
	pr.present = 1ull << MQTT_PROP_USER | 1ull << MQTT_PROP_REASON_STRING |
	             1ull << MQTT_PROP_SESSION_EXPIRY |
	             1ull << MQTT_PROP_SUB_ID;
	pr.user = (struct mqtt_bytes){ ub.data, ub.len };
	pr.n_user = 1;
	pr.reason_string = B("r");
	pr.session_expiry = 10;
	pr.n_sub_ids = 2;
	pr.sub_ids[0] = 1;
	pr.sub_ids[1] = 128;
	/* fields without their present bit are not written */
	pr.topic_alias = 5;
	pr.content_type = B("x");
	mqtt_props_encode(&b, &pr);
	ck_assert(!buf_failed(&b));
	ck_assert_uint_eq(b.len, sizeof(want) - 1);
	ck_assert_mem_eq(b.data, want, sizeof(want) - 1);
	ck_assert_uint_eq(mqtt_props_len(&pr), sizeof(want) - 2);
	/* nothing present: a single zero length byte */
	memset(&pr, 0, sizeof(pr));
	buf_reset(&b);
	mqtt_props_encode(&b, &pr);
	ck_assert_uint_eq(b.len, 1);
	ck_assert_uint_eq(b.data[0], 0);
	ck_assert_uint_eq(mqtt_props_len(&pr), 0);
	buf_fini(&b);
	buf_fini(&ub);
}
END_TEST

static int
packet_raw(uint8_t version, const char *lit, size_t n)
{
	struct mqtt_packet p;
	size_t used;
	uint8_t *copy = malloc(n);
	int rc;

	ck_assert_ptr_nonnull(copy);
	memcpy(copy, lit, n);
	rc = mqtt_decode(copy, n, version, &p, &used);
	free(copy);
	return rc;
}

#define PKT(v, lit) packet_raw((v), (lit), sizeof(lit) - 1)

/* The packet decoder checks each property section in its own context. */
START_TEST(test_props_in_packets)
{
	/* CONNECT with Will Delay in the CONNECT properties */
	ck_assert_int_eq(PKT(0, "\x10\x12\x00\x04"
	                        "MQTT"
	                        "\x05\x02\x00\x3c"
	                        "\x05\x18\x00\x00\x00\x01\x00\x01"
	                        "c"),
	                 ERR_BAD_PROPERTY_ID);
	/* §3.1.3.2: Session Expiry in the Will properties */
	ck_assert_int_eq(PKT(0, "\x10\x19\x00\x04"
	                        "MQTT"
	                        "\x05\x06\x00\x3c"
	                        "\x00\x00\x01"
	                        "c"
	                        "\x05\x11\x00\x00\x00\x01\x00\x01"
	                        "t"
	                        "\x00\x00"),
	                 ERR_BAD_PROPERTY_ID);
	/* and Will Delay where it belongs */
	ck_assert_int_eq(PKT(0, "\x10\x19\x00\x04"
	                        "MQTT"
	                        "\x05\x06\x00\x3c"
	                        "\x00\x00\x01"
	                        "c"
	                        "\x05\x18\x00\x00\x00\x01\x00\x01"
	                        "t"
	                        "\x00\x00"),
	                 0);
	/* §3.1.2.11 [5.0, no ID]: a CONNECT property twice */
	ck_assert_int_eq(PKT(0, "\x10\x13\x00\x04"
	                        "MQTT"
	                        "\x05\x02\x00\x3c"
	                        "\x06\x21\x00\x01\x21\x00\x01\x00\x01"
	                        "c"),
	                 ERR_BAD_PROPERTY);
	/* §3.4.2.2 [5.0, no ID]: Reason String twice in an ack */
	ck_assert_int_eq(PKT(MQTT_V5, "\x40\x0c\x00\x01\x00\x08"
	                              "\x1f\x00\x01"
	                              "a"
	                              "\x1f\x00\x01"
	                              "b"),
	                 ERR_BAD_PROPERTY);
	/* a Topic Alias in a PUBACK */
	ck_assert_int_eq(PKT(MQTT_V5, "\x40\x07\x00\x01\x00\x03\x23\x00\x01"),
	                 ERR_BAD_PROPERTY_ID);
	/* §3.8.2.1.2 [5.0, no ID]: Subscription Identifier twice in a
	 * SUBSCRIBE, but several in a PUBLISH */
	ck_assert_int_eq(PKT(MQTT_V5, "\x82\x0a\x00\x01\x04\x0b\x01\x0b\x02"
	                              "\x00\x01"
	                              "a"
	                              "\x00"),
	                 ERR_BAD_PROPERTY);
	ck_assert_int_eq(PKT(MQTT_V5, "\x30\x08\x00\x01"
	                              "a"
	                              "\x04\x0b\x01\x0b\x02"),
	                 0);
	/* §3.14.2: DISCONNECT may carry Session Expiry, not a Topic Alias */
	ck_assert_int_eq(PKT(MQTT_V5, "\xe0\x07\x00\x05\x11\x00\x00\x00\x00"),
	                 0);
	ck_assert_int_eq(PKT(MQTT_V5, "\xe0\x05\x00\x03\x23\x00\x01"),
	                 ERR_BAD_PROPERTY_ID);
	/* §3.15.2.2: AUTH with method and data */
	ck_assert_int_eq(PKT(MQTT_V5, "\xf0\x0a\x18\x08\x15\x00\x01"
	                              "m"
	                              "\x16\x00\x01"
	                              "d"),
	                 0);
	ck_assert_int_eq(PKT(MQTT_V5, "\xf0\x06\x18\x04\x16\x00\x01"
	                              "d"),
	                 ERR_BAD_PROPERTY);
	/* UNSUBSCRIBE allows only User Property */
	ck_assert_int_eq(PKT(MQTT_V5, "\xa2\x08\x00\x01\x02\x0b\x01\x00\x01"
	                              "a"),
	                 ERR_BAD_PROPERTY_ID);
	ck_assert_int_eq(mqtt_rc_from_err(ERR_BAD_PROPERTY),
	                 MQTT_RC_PROTOCOL_ERROR);
}
END_TEST

static Suite *
props_suite(void)
{
	Suite *s = suite_create("proto_props");
	TCase *tc = tcase_create("props");
	int n = sizeof(prop_cases) / sizeof(prop_cases[0]);

	tcase_add_loop_test(tc, test_props_allowed_table, 0, n);
	tcase_add_loop_test(tc, test_props_duplicates, 0, n);
	tcase_add_test(tc, test_props_unknown_ids);
	tcase_add_test(tc, test_props_values);
	tcase_add_test(tc, test_props_auth_data_needs_method);
	tcase_add_test(tc, test_props_strings);
	tcase_add_test(tc, test_props_lengths);
	tcase_add_test(tc, test_props_sub_ids_kept);
	tcase_add_test(tc, test_props_user_run);
	tcase_add_test(tc, test_props_encode_order);
	tcase_add_test(tc, test_props_in_packets);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(props_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
