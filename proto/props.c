/*
 * MQTT 5 properties (section 2.2.2): decoding with the per-packet validity
 * rules (allowed identifiers, duplicates, value ranges), sizing, encoding,
 * and the walker over raw User Properties.
 */
#include "proto/proto.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "proto/mqtt_int.h"

enum prop_type {
	PT_NONE = 0, /* unknown identifier */
	PT_BYTE,
	PT_U16,
	PT_U32,
	PT_VARINT,
	PT_STR, /* UTF-8 string */
	PT_BIN, /* binary data */
	PT_PAIR /* UTF-8 string pair */
};

/* Contexts a property may appear in: bit (1 << packet type), Will = 16. */
#define IN(t)   (1u << MQTT_##t)
#define IN_WILL (1u << MQTT_PROPS_WILL)
#define IN_ACKS (IN(PUBACK) | IN(PUBREC) | IN(PUBREL) | IN(PUBCOMP))
#define IN_ALL                                                         \
	(IN(CONNECT) | IN(CONNACK) | IN(PUBLISH) | IN_WILL | IN_ACKS | \
	 IN(SUBSCRIBE) | IN(SUBACK) | IN(UNSUBSCRIBE) | IN(UNSUBACK) | \
	 IN(DISCONNECT) | IN(AUTH))
#define PROP_MAX_ID MQTT_PROP_SHARED_SUB_AVAILABLE
/* present bits that name a property identifier (1..PROP_MAX_ID) */
#define PROP_ID_BITS (((2ull << PROP_MAX_ID) - 1) & ~1ull)

struct prop_def {
	uint8_t type;   /* enum prop_type */
	uint32_t allow; /* IN_* contexts */
};

/* MQTT 5 section 2.2.2.2, table 2-4. */
static const struct prop_def prop_defs[PROP_MAX_ID + 1] = {
	[MQTT_PROP_PAYLOAD_FORMAT] = { PT_BYTE, IN(PUBLISH) | IN_WILL },
	[MQTT_PROP_MESSAGE_EXPIRY] = { PT_U32, IN(PUBLISH) | IN_WILL },
	[MQTT_PROP_CONTENT_TYPE] = { PT_STR, IN(PUBLISH) | IN_WILL },
	[MQTT_PROP_RESPONSE_TOPIC] = { PT_STR, IN(PUBLISH) | IN_WILL },
	[MQTT_PROP_CORRELATION_DATA] = { PT_BIN, IN(PUBLISH) | IN_WILL },
	[MQTT_PROP_SUB_ID] = { PT_VARINT, IN(PUBLISH) | IN(SUBSCRIBE) },
	[MQTT_PROP_SESSION_EXPIRY] = { PT_U32, IN(CONNECT) | IN(CONNACK) |
	                                               IN(DISCONNECT) },
	[MQTT_PROP_ASSIGNED_CLIENT_ID] = { PT_STR, IN(CONNACK) },
	[MQTT_PROP_SERVER_KEEPALIVE] = { PT_U16, IN(CONNACK) },
	[MQTT_PROP_AUTH_METHOD] = { PT_STR,
	                            IN(CONNECT) | IN(CONNACK) | IN(AUTH) },
	[MQTT_PROP_AUTH_DATA] = { PT_BIN,
	                          IN(CONNECT) | IN(CONNACK) | IN(AUTH) },
	[MQTT_PROP_REQUEST_PROBLEM_INFO] = { PT_BYTE, IN(CONNECT) },
	[MQTT_PROP_WILL_DELAY] = { PT_U32, IN_WILL },
	[MQTT_PROP_REQUEST_RESPONSE_INFO] = { PT_BYTE, IN(CONNECT) },
	[MQTT_PROP_RESPONSE_INFO] = { PT_STR, IN(CONNACK) },
	[MQTT_PROP_SERVER_REFERENCE] = { PT_STR, IN(CONNACK) | IN(DISCONNECT) },
	[MQTT_PROP_REASON_STRING] = { PT_STR,
	                              IN(CONNACK) | IN_ACKS | IN(SUBACK) |
	                                      IN(UNSUBACK) | IN(DISCONNECT) |
	                                      IN(AUTH) },
	[MQTT_PROP_RECEIVE_MAX] = { PT_U16, IN(CONNECT) | IN(CONNACK) },
	[MQTT_PROP_TOPIC_ALIAS_MAX] = { PT_U16, IN(CONNECT) | IN(CONNACK) },
	[MQTT_PROP_TOPIC_ALIAS] = { PT_U16, IN(PUBLISH) },
	[MQTT_PROP_MAX_QOS] = { PT_BYTE, IN(CONNACK) },
	[MQTT_PROP_RETAIN_AVAILABLE] = { PT_BYTE, IN(CONNACK) },
	[MQTT_PROP_USER] = { PT_PAIR, IN_ALL },
	[MQTT_PROP_MAX_PACKET_SIZE] = { PT_U32, IN(CONNECT) | IN(CONNACK) },
	[MQTT_PROP_WILDCARD_SUB_AVAILABLE] = { PT_BYTE, IN(CONNACK) },
	[MQTT_PROP_SUB_ID_AVAILABLE] = { PT_BYTE, IN(CONNACK) },
	[MQTT_PROP_SHARED_SUB_AVAILABLE] = { PT_BYTE, IN(CONNACK) },
};

static uint8_t
prop_type(uint32_t id)
{
	return id <= PROP_MAX_ID ? prop_defs[id].type : PT_NONE;
}

/* One decoded value: a number, or one or two strings. */
struct prop_val {
	uint32_t n;
	struct mqtt_bytes s;
	struct mqtt_bytes s2;
};

static int
prop_str_read(struct rd *r, bool utf8, struct mqtt_bytes *s)
{
	int rc = rd_str(r, &s->p, &s->len);

	if (rc)
		return rc;
	/* [MQTT-1.5.4-1] [MQTT-1.5.4-2] [MQTT-1.5.7-1] v5 */
	if (utf8 && !mqtt_utf8_is_valid(s->p, s->len))
		return ERR_BAD_UTF8;
	return 0;
}

static int
prop_value_read(struct rd *r, uint8_t type, struct prop_val *v)
{
	uint8_t u8;
	uint16_t u16;
	int rc;

	switch (type) {
	case PT_BYTE:
		rc = rd_u8(r, &u8);
		v->n = u8;
		return rc;
	case PT_U16:
		rc = rd_u16(r, &u16);
		v->n = u16;
		return rc;
	case PT_U32:
		return rd_u32(r, &v->n);
	case PT_VARINT:
		/* a Subscription Identifier over 268435455 needs a fifth
		 * byte */
		rc = rd_varint(r, &v->n);
		return rc == ERR_BAD_LENGTH ? ERR_BAD_PROPERTY : rc;
	case PT_STR:
		return prop_str_read(r, true, &v->s);
	case PT_BIN:
		return prop_str_read(r, false, &v->s);
	case PT_PAIR:
		rc = prop_str_read(r, true, &v->s);
		if (rc)
			return rc;
		return prop_str_read(r, true, &v->s2);
	default:
		return ERR_BAD_PROPERTY;
	}
}

/* Offsets of the string and binary property fields in struct mqtt_props. */
static const size_t prop_bytes_off[PROP_MAX_ID + 1] = {
	[MQTT_PROP_CONTENT_TYPE] = offsetof(struct mqtt_props, content_type),
	[MQTT_PROP_RESPONSE_TOPIC] =
	        offsetof(struct mqtt_props, response_topic),
	[MQTT_PROP_CORRELATION_DATA] =
	        offsetof(struct mqtt_props, correlation_data),
	[MQTT_PROP_ASSIGNED_CLIENT_ID] =
	        offsetof(struct mqtt_props, assigned_client_id),
	[MQTT_PROP_AUTH_METHOD] = offsetof(struct mqtt_props, auth_method),
	[MQTT_PROP_AUTH_DATA] = offsetof(struct mqtt_props, auth_data),
	[MQTT_PROP_RESPONSE_INFO] = offsetof(struct mqtt_props, response_info),
	[MQTT_PROP_SERVER_REFERENCE] =
	        offsetof(struct mqtt_props, server_reference),
	[MQTT_PROP_REASON_STRING] = offsetof(struct mqtt_props, reason_string),
};

static bool
prop_is_bytes(uint32_t id)
{
	return prop_type(id) == PT_STR || prop_type(id) == PT_BIN;
}

/* The field of string or binary property @p id. */
static struct mqtt_bytes *
prop_bytes(struct mqtt_props *pr, uint32_t id)
{
	return (struct mqtt_bytes *)((char *)pr + prop_bytes_off[id]);
}

static const struct mqtt_bytes *
prop_cbytes(const struct mqtt_props *pr, uint32_t id)
{
	return (const struct mqtt_bytes *)((const char *)pr +
	                                   prop_bytes_off[id]);
}

static uint32_t
prop_number(const struct mqtt_props *pr, uint32_t id)
{
	switch (id) {
	case MQTT_PROP_PAYLOAD_FORMAT:
		return pr->payload_format;
	case MQTT_PROP_MESSAGE_EXPIRY:
		return pr->message_expiry;
	case MQTT_PROP_SESSION_EXPIRY:
		return pr->session_expiry;
	case MQTT_PROP_SERVER_KEEPALIVE:
		return pr->server_keepalive;
	case MQTT_PROP_REQUEST_PROBLEM_INFO:
		return pr->request_problem_info;
	case MQTT_PROP_WILL_DELAY:
		return pr->will_delay;
	case MQTT_PROP_REQUEST_RESPONSE_INFO:
		return pr->request_response_info;
	case MQTT_PROP_RECEIVE_MAX:
		return pr->receive_max;
	case MQTT_PROP_TOPIC_ALIAS_MAX:
		return pr->topic_alias_max;
	case MQTT_PROP_TOPIC_ALIAS:
		return pr->topic_alias;
	case MQTT_PROP_MAX_QOS:
		return pr->max_qos;
	case MQTT_PROP_RETAIN_AVAILABLE:
		return pr->retain_available;
	case MQTT_PROP_MAX_PACKET_SIZE:
		return pr->max_packet_size;
	case MQTT_PROP_WILDCARD_SUB_AVAILABLE:
		return pr->wildcard_sub_available;
	case MQTT_PROP_SUB_ID_AVAILABLE:
		return pr->sub_id_available;
	case MQTT_PROP_SHARED_SUB_AVAILABLE:
		return pr->shared_sub_available;
	default:
		return 0;
	}
}

/* Stores a one-byte property whose only values are 0 and 1. */
static int
prop_flag_store(uint8_t *field, uint32_t n)
{
	if (n > 1)
		return ERR_BAD_PROPERTY;
	*field = (uint8_t)n;
	return 0;
}

/* Stores a non-zero two- or four-byte property. */
static int
prop_nonzero_store(uint32_t *f32, uint16_t *f16, uint32_t n)
{
	if (n == 0)
		return ERR_BAD_PROPERTY;
	if (f32)
		*f32 = n;
	else
		*f16 = (uint16_t)n;
	return 0;
}

static int
prop_number_store(struct mqtt_props *pr, uint32_t id, uint32_t n)
{
	switch (id) {
	case MQTT_PROP_PAYLOAD_FORMAT:
		return prop_flag_store(&pr->payload_format, n);
	case MQTT_PROP_REQUEST_PROBLEM_INFO:
		return prop_flag_store(&pr->request_problem_info, n);
	case MQTT_PROP_REQUEST_RESPONSE_INFO:
		return prop_flag_store(&pr->request_response_info, n);
	case MQTT_PROP_MAX_QOS:
		return prop_flag_store(&pr->max_qos, n);
	case MQTT_PROP_RETAIN_AVAILABLE:
		return prop_flag_store(&pr->retain_available, n);
	case MQTT_PROP_WILDCARD_SUB_AVAILABLE:
		return prop_flag_store(&pr->wildcard_sub_available, n);
	case MQTT_PROP_SUB_ID_AVAILABLE:
		return prop_flag_store(&pr->sub_id_available, n);
	case MQTT_PROP_SHARED_SUB_AVAILABLE:
		return prop_flag_store(&pr->shared_sub_available, n);
	case MQTT_PROP_RECEIVE_MAX:
		return prop_nonzero_store(NULL, &pr->receive_max, n);
	case MQTT_PROP_TOPIC_ALIAS:
		/* Alias 0 [MQTT-3.3.2-8] v5 decodes: it is a Topic Alias
		 * invalid error (0x94), which the receiver reports, not a
		 * malformed property. */
		pr->topic_alias = (uint16_t)n;
		return 0;
	case MQTT_PROP_MAX_PACKET_SIZE:
		return prop_nonzero_store(&pr->max_packet_size, NULL, n);
	case MQTT_PROP_TOPIC_ALIAS_MAX:
		pr->topic_alias_max = (uint16_t)n;
		return 0;
	case MQTT_PROP_SERVER_KEEPALIVE:
		pr->server_keepalive = (uint16_t)n;
		return 0;
	case MQTT_PROP_MESSAGE_EXPIRY:
		pr->message_expiry = n;
		return 0;
	case MQTT_PROP_SESSION_EXPIRY:
		pr->session_expiry = n;
		return 0;
	case MQTT_PROP_WILL_DELAY:
		pr->will_delay = n;
		return 0;
	default:
		return ERR_BAD_PROPERTY;
	}
}

static int
prop_store(struct mqtt_props *pr, uint32_t id, const struct prop_val *v)
{
	if (id == MQTT_PROP_SUB_ID) {
		/* §3.8.2.1.2, §3.3.2.3.8: 0 is never valid; the varint
		 * reader already caps it at 268435455 */
		if (v->n == 0)
			return ERR_BAD_PROPERTY;
		if (pr->n_sub_ids < MQTT_MAX_SUB_IDS)
			pr->sub_ids[pr->n_sub_ids++] = v->n;
		return 0;
	}
	if (!prop_is_bytes(id))
		return prop_number_store(pr, id, v->n);
	/* [MQTT-3.3.2-14] v5: a Response Topic is a topic name */
	if (id == MQTT_PROP_RESPONSE_TOPIC && !mqtt_topic_name_is_valid(v->s))
		return ERR_BAD_PROPERTY;
	*prop_bytes(pr, id) = v->s;
	return 0;
}

/* May @p id appear (again) in context @p ctx? */
static bool
prop_is_allowed(const struct mqtt_props *pr, uint32_t id, uint8_t ctx)
{
	if (prop_type(id) == PT_NONE || ctx > 31 ||
	    !((prop_defs[id].allow >> ctx) & 1u))
		return false;
	if (!mqtt_props_has(pr, (enum mqtt_prop_id)id))
		return true;
	/* §2.2.2: only User Property, and Subscription Identifier in a
	 * PUBLISH, may repeat */
	return id == MQTT_PROP_USER ||
	       (id == MQTT_PROP_SUB_ID && ctx == MQTT_PUBLISH);
}

int
mqtt_props_decode(struct rd *r, uint8_t ctx, struct mqtt_props *out)
{
	struct rd in;
	struct prop_val v;
	const uint8_t *p, *start;
	uint32_t len, id;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = rd_varint(r, &len);
	if (rc)
		return rc;
	rc = rd_bytes(r, len, &p);
	if (rc)
		return rc;
	rd_init(&in, p, len);
	while (in.left > 0) {
		start = in.p;
		rc = rd_varint(&in, &id);
		if (rc)
			return rc;
		/* §2.2.2.2 v5: an identifier not valid for the packet is a
		 * Malformed Packet (0x81), a repeated one a Protocol Error
		 * (0x82) */
		if (prop_type(id) == PT_NONE || ctx > 31 ||
		    !((prop_defs[id].allow >> ctx) & 1u))
			return ERR_BAD_PROPERTY_ID;
		if (!prop_is_allowed(out, id, ctx))
			return ERR_BAD_PROPERTY;
		memset(&v, 0, sizeof(v));
		rc = prop_value_read(&in, prop_type(id), &v);
		if (rc)
			return rc;
		if (id == MQTT_PROP_USER) {
			if (out->n_user == 0)
				out->user.p = start;
			out->user.len =
			        len - in.left - (size_t)(out->user.p - p);
			out->n_user++;
		} else {
			rc = prop_store(out, id, &v);
			if (rc)
				return rc;
		}
		out->present |= 1ull << id;
	}
	/* §3.1.2.11.10, §3.2.2.3.17, §3.15.2.2.3: no data without a method */
	if (mqtt_props_has(out, MQTT_PROP_AUTH_DATA) &&
	    !mqtt_props_has(out, MQTT_PROP_AUTH_METHOD))
		return ERR_BAD_PROPERTY;
	return 0;
}

static int
prop_value_skip(struct rd *r, uint8_t type)
{
	struct prop_val v;

	switch (type) {
	case PT_STR:
	case PT_BIN:
		return rd_str(r, &v.s.p, &v.s.len);
	default:
		return prop_value_read(r, type, &v);
	}
}

int
mqtt_user_next(struct rd *r, struct mqtt_bytes *key, struct mqtt_bytes *val)
{
	uint32_t id;
	int rc;

	while (r->left > 0) {
		rc = rd_varint(r, &id);
		if (rc)
			return ERR_MALFORMED;
		if (prop_type(id) == PT_NONE)
			return ERR_MALFORMED;
		if (id != MQTT_PROP_USER) {
			if (prop_value_skip(r, prop_type(id)))
				return ERR_MALFORMED;
			continue;
		}
		if (rd_str(r, &key->p, &key->len) ||
		    rd_str(r, &val->p, &val->len))
			return ERR_MALFORMED;
		return 0;
	}
	return ERR_NOTFOUND;
}

void
mqtt_user_put(struct buf *b, struct mqtt_bytes key, struct mqtt_bytes val)
{
	buf_put_u8(b, MQTT_PROP_USER);
	buf_put_str(b, key.p, key.len);
	buf_put_str(b, val.p, val.len);
}

/* Bytes of the User Properties of pr->user, as the encoder writes them. */
static size_t
prop_user_len(const struct mqtt_props *pr)
{
	struct mqtt_bytes k, v;
	struct rd r;
	size_t n = 0;

	rd_init(&r, pr->user.p, pr->user.len);
	while (mqtt_user_next(&r, &k, &v) == 0)
		n += 5 + k.len + v.len;
	return n;
}

static size_t
prop_len(const struct mqtt_props *pr, uint32_t id)
{
	size_t i, n = 0;

	switch (prop_type(id)) {
	case PT_BYTE:
		return 2;
	case PT_U16:
		return 3;
	case PT_U32:
		return 5;
	case PT_VARINT: /* Subscription Identifier */
		for (i = 0; i < pr->n_sub_ids && i < MQTT_MAX_SUB_IDS; i++)
			n += 1 + varint_size(pr->sub_ids[i]);
		return n;
	case PT_STR:
	case PT_BIN:
		return 3 + prop_cbytes(pr, id)->len;
	case PT_PAIR:
		return prop_user_len(pr);
	default:
		return 0;
	}
}

size_t
mqtt_props_len(const struct mqtt_props *pr)
{
	uint64_t bits = pr->present & PROP_ID_BITS;
	size_t n = 0;

	/* only the identifiers present: a PUBLISH usually has one or two */
	for (; bits; bits &= bits - 1)
		n += prop_len(pr, (uint32_t)__builtin_ctzll(bits));
	return n;
}

static void
prop_user_put(struct buf *b, const struct mqtt_props *pr)
{
	struct mqtt_bytes k, v;
	struct rd r;

	rd_init(&r, pr->user.p, pr->user.len);
	while (mqtt_user_next(&r, &k, &v) == 0)
		mqtt_user_put(b, k, v);
}

static void
prop_put(struct buf *b, const struct mqtt_props *pr, uint32_t id)
{
	const struct mqtt_bytes *s;
	size_t i;

	switch (prop_type(id)) {
	case PT_BYTE:
		buf_put_u8(b, (uint8_t)id);
		buf_put_u8(b, (uint8_t)prop_number(pr, id));
		break;
	case PT_U16:
		buf_put_u8(b, (uint8_t)id);
		buf_put_u16(b, (uint16_t)prop_number(pr, id));
		break;
	case PT_U32:
		buf_put_u8(b, (uint8_t)id);
		buf_put_u32(b, prop_number(pr, id));
		break;
	case PT_VARINT:
		for (i = 0; i < pr->n_sub_ids && i < MQTT_MAX_SUB_IDS; i++) {
			buf_put_u8(b, (uint8_t)id);
			buf_put_varint(b, pr->sub_ids[i]);
		}
		break;
	case PT_STR:
	case PT_BIN:
		s = prop_cbytes(pr, id);
		buf_put_u8(b, (uint8_t)id);
		buf_put_str(b, s->p, s->len);
		break;
	case PT_PAIR:
		prop_user_put(b, pr);
		break;
	default:
		break;
	}
}

void
mqtt_props_encode_extra(struct buf *b, const struct mqtt_props *pr,
                        struct mqtt_bytes extra)
{
	size_t len = mqtt_props_len(pr) + extra.len;
	uint64_t bits = pr->present & PROP_ID_BITS;

	if (len > MQTT_MAX_REMAINING) {
		buf_put_varint(b, UINT32_MAX); /* fails the buf */
		return;
	}
	buf_put_varint(b, (uint32_t)len);
	for (; bits; bits &= bits - 1)
		prop_put(b, pr, (uint32_t)__builtin_ctzll(bits));
	buf_put_bytes(b, extra.p, extra.len);
}

void
mqtt_props_encode(struct buf *b, const struct mqtt_props *pr)
{
	mqtt_props_encode_extra(b, pr, (struct mqtt_bytes){ NULL, 0 });
}

bool
mqtt_bytes_equals(struct mqtt_bytes a, struct mqtt_bytes b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

static bool
prop_users_equal(const struct mqtt_props *a, const struct mqtt_props *b)
{
	struct mqtt_bytes ka, va, kb, vb;
	struct rd ra, rb;
	int rca, rcb;

	rd_init(&ra, a->user.p, a->user.len);
	rd_init(&rb, b->user.p, b->user.len);
	for (;;) {
		rca = mqtt_user_next(&ra, &ka, &va);
		rcb = mqtt_user_next(&rb, &kb, &vb);
		if (rca || rcb)
			return rca == rcb;
		if (!mqtt_bytes_equals(ka, kb) || !mqtt_bytes_equals(va, vb))
			return false;
	}
}

bool
mqtt_props_equals(const struct mqtt_props *a, const struct mqtt_props *b)
{
	uint32_t id;
	size_t i;

	if (a->present != b->present || a->n_user != b->n_user ||
	    a->n_sub_ids != b->n_sub_ids)
		return false;
	for (i = 0; i < a->n_sub_ids && i < MQTT_MAX_SUB_IDS; i++) {
		if (a->sub_ids[i] != b->sub_ids[i])
			return false;
	}
	if (!prop_users_equal(a, b))
		return false;
	for (id = 1; id <= PROP_MAX_ID; id++) {
		if (prop_is_bytes(id) &&
		    !mqtt_bytes_equals(*prop_cbytes(a, id),
		                       *prop_cbytes(b, id)))
			return false;
		if (prop_number(a, id) != prop_number(b, id))
			return false;
	}
	return true;
}
