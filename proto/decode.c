/*
 * Decoding: mqtt_frame reads a fixed header, mqtt_decode turns one whole
 * packet of any of the 15 types (MQTT 3.1, 3.1.1, 5.0) into views and
 * enforces the codec rules of the standards; also the SUBSCRIBE walkers,
 * the ERR_* to reason code mapping and packet type names.
 */
#include "proto/proto.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

static bool
version_is_known(uint8_t v)
{
	return v == MQTT_V31 || v == MQTT_V311 || v == MQTT_V5;
}

/* Reads the fixed header; @p hl gets its length, @p rl the remaining one. */
static int
header_parse(const uint8_t *p, size_t len, size_t *hl, uint32_t *rl)
{
	struct rd r;
	int rc;

	if (len < 1)
		return ERR_AGAIN;
	rd_init(&r, p + 1, len - 1);
	rc = rd_varint(&r, rl);
	if (rc == ERR_MALFORMED)
		return ERR_AGAIN; /* the length is not all there yet */
	if (rc)
		return rc;
	*hl = len - r.left;
	return 0;
}

int
mqtt_frame(const uint8_t *p, size_t len, size_t max_size, uint8_t *type_flags,
           size_t *total)
{
	uint32_t rl;
	size_t hl;
	int rc;

	rc = header_parse(p, len, &hl, &rl);
	if (rc)
		return rc;
	*type_flags = p[0];
	*total = hl + rl;
	if (max_size != 0 && *total > max_size)
		return ERR_TOO_LARGE;
	return 0;
}

/* [MQTT-2.2.2-1] [MQTT-2.2.2-2] 3.1.1, [MQTT-2.1.3-1] v5: reserved bits. */
static int
flags_check(uint8_t type, uint8_t flags)
{
	uint8_t qos;

	switch (type) {
	case MQTT_PUBLISH:
		qos = (flags >> 1) & 3;
		if (qos == 3)
			return ERR_BAD_QOS; /* [MQTT-3.3.1-4] */
		if (qos == 0 && (flags & 8))
			return ERR_BAD_FLAGS; /* [MQTT-3.3.1-2] */
		return 0;
	case MQTT_PUBREL:
	case MQTT_SUBSCRIBE:
	case MQTT_UNSUBSCRIBE:
		return flags == 2 ? 0 : ERR_BAD_FLAGS;
	default:
		return flags == 0 ? 0 : ERR_BAD_FLAGS;
	}
}

/* MQTT 5 reason codes allowed in each packet (sections 3.x.2.1, 3.9.3,
 * 3.11.3, table 2-6). */
static const uint8_t rc_connack[] = { 0x00, 0x80, 0x81, 0x82, 0x83, 0x84,
	                              0x85, 0x86, 0x87, 0x88, 0x89, 0x8a,
	                              0x8c, 0x90, 0x95, 0x97, 0x99, 0x9a,
	                              0x9b, 0x9c, 0x9d, 0x9f };
static const uint8_t rc_puback[] = { 0x00, 0x10, 0x80, 0x83, 0x87,
	                             0x90, 0x91, 0x97, 0x99 };
static const uint8_t rc_pubrel[] = { 0x00, 0x92 };
static const uint8_t rc_suback[] = { 0x00, 0x01, 0x02, 0x80, 0x83, 0x87,
	                             0x8f, 0x91, 0x97, 0x9e, 0xa1, 0xa2 };
static const uint8_t rc_suback_v3[] = { 0x00, 0x01, 0x02, 0x80 };
static const uint8_t rc_unsuback[] = {
	0x00, 0x11, 0x80, 0x83, 0x87, 0x8f, 0x91
};
static const uint8_t rc_disconnect[] = { 0x00, 0x04, 0x80, 0x81, 0x82, 0x83,
	                                 0x87, 0x89, 0x8b, 0x8c, 0x8d, 0x8e,
	                                 0x8f, 0x90, 0x93, 0x94, 0x95, 0x96,
	                                 0x97, 0x98, 0x99, 0x9a, 0x9b, 0x9c,
	                                 0x9d, 0x9e, 0x9f, 0xa0, 0xa1, 0xa2 };
static const uint8_t rc_auth[] = { 0x00, 0x18, 0x19 };

static int
rc_check(uint8_t version, uint8_t type, uint8_t rc)
{
	struct {
		const uint8_t *p;
		size_t n;
	} tab;

	switch (type) {
	case MQTT_CONNACK:
		if (version != MQTT_V5)
			return rc <= MQTT_CONNACK_V3_NOT_AUTHORIZED
			               ? 0
			               : ERR_BAD_REASON;
		tab.p = rc_connack;
		tab.n = sizeof(rc_connack);
		break;
	case MQTT_PUBACK:
	case MQTT_PUBREC:
		tab.p = rc_puback;
		tab.n = sizeof(rc_puback);
		break;
	case MQTT_PUBREL:
	case MQTT_PUBCOMP:
		tab.p = rc_pubrel;
		tab.n = sizeof(rc_pubrel);
		break;
	case MQTT_SUBACK:
		tab.p = version == MQTT_V5 ? rc_suback : rc_suback_v3;
		tab.n = version == MQTT_V5 ? sizeof(rc_suback)
		                           : sizeof(rc_suback_v3);
		break;
	case MQTT_UNSUBACK:
		tab.p = rc_unsuback;
		tab.n = sizeof(rc_unsuback);
		break;
	case MQTT_DISCONNECT:
		tab.p = rc_disconnect;
		tab.n = sizeof(rc_disconnect);
		break;
	case MQTT_AUTH:
		tab.p = rc_auth;
		tab.n = sizeof(rc_auth);
		break;
	default:
		return ERR_BAD_REASON;
	}
	return memchr(tab.p, rc, tab.n) ? 0 : ERR_BAD_REASON;
}

/* A UTF-8 string field. [MQTT-1.5.3-1] [MQTT-1.5.3-2] 3.1.1,
 * [MQTT-1.5.4-1] [MQTT-1.5.4-2] v5. */
static int
utf8_read(struct rd *r, struct mqtt_bytes *s)
{
	int rc = rd_str(r, &s->p, &s->len);

	if (rc)
		return rc;
	return mqtt_utf8_is_valid(s->p, s->len) ? 0 : ERR_BAD_UTF8;
}

static int
bin_read(struct rd *r, struct mqtt_bytes *s)
{
	return rd_str(r, &s->p, &s->len);
}

static int
packet_id_read(struct rd *r, uint16_t *id)
{
	int rc = rd_u16(r, id);

	if (rc)
		return rc;
	/* [MQTT-2.3.1-1] 3.1.1, [MQTT-2.2.1-3] v5 */
	return *id == 0 ? ERR_BAD_PACKET_ID : 0;
}

static bool
bytes_is(struct mqtt_bytes s, const char *lit)
{
	size_t n = strlen(lit);

	return s.len == n && memcmp(s.p, lit, n) == 0;
}

/* Protocol name and level. [MQTT-3.1.2-1] [MQTT-3.1.2-2] */
static int
connect_protocol_read(struct rd *r, struct mqtt_connect *c)
{
	struct mqtt_bytes name;
	bool mqtt, mqisdp;
	int rc;

	rc = rd_str(r, &name.p, &name.len);
	if (rc)
		return rc;
	rc = rd_u8(r, &c->version);
	if (rc)
		return rc;
	mqtt = bytes_is(name, "MQTT");
	mqisdp = bytes_is(name, "MQIsdp");
	if (!mqtt && !mqisdp)
		return ERR_BAD_PROTOCOL;
	if (!version_is_known(c->version))
		return ERR_BAD_VERSION;
	if (mqisdp != (c->version == MQTT_V31))
		return ERR_BAD_PROTOCOL;
	return 0;
}

static int
connect_flags_read(struct rd *r, struct mqtt_connect *c)
{
	uint8_t f;
	int rc;

	rc = rd_u8(r, &f);
	if (rc)
		return rc;
	if (f & 0x01)
		return ERR_BAD_FLAGS; /* [MQTT-3.1.2-3] */
	c->clean_start = f & 0x02;
	c->will = f & 0x04;
	c->will_qos = (f >> 3) & 3;
	c->will_retain = f & 0x20;
	c->has_password = f & 0x40;
	c->has_username = f & 0x80;
	/* [MQTT-3.1.2-14] 3.1.1, [MQTT-3.1.2-12] v5 */
	if (c->will_qos == 3)
		return ERR_BAD_QOS;
	/* [MQTT-3.1.2-11] [MQTT-3.1.2-13] [MQTT-3.1.2-15] 3.1.1,
	 * [MQTT-3.1.2-11] [MQTT-3.1.2-13] v5 */
	if (!c->will && (c->will_qos != 0 || c->will_retain))
		return ERR_BAD_WILL;
	/* [MQTT-3.1.2-22] 3.1.1; MQTT 5 allows a password alone */
	if (c->version != MQTT_V5 && c->has_password && !c->has_username)
		return ERR_BAD_CREDENTIALS;
	return 0;
}

static int
connect_will_read(struct rd *r, struct mqtt_connect *c)
{
	int rc;

	if (c->version == MQTT_V5) {
		rc = mqtt_props_decode(r, MQTT_PROPS_WILL, &c->will_props);
		if (rc)
			return rc;
	}
	rc = utf8_read(r, &c->will_topic); /* [MQTT-3.1.3-11] v5 */
	if (rc)
		return rc;
	/* [MQTT-4.7.0-1] v5, [MQTT-4.7.1-1] [MQTT-4.7.3-1] 3.1.1 */
	if (!mqtt_topic_name_is_valid(c->will_topic))
		return ERR_BAD_TOPIC;
	return bin_read(r, &c->will_payload);
}

static int
connect_decode(struct rd *r, struct mqtt_connect *c)
{
	int rc;

	rc = connect_protocol_read(r, c);
	if (rc)
		return rc;
	rc = connect_flags_read(r, c);
	if (rc)
		return rc;
	rc = rd_u16(r, &c->keepalive);
	if (rc)
		return rc;
	if (c->version == MQTT_V5) {
		rc = mqtt_props_decode(r, MQTT_CONNECT, &c->props);
		if (rc)
			return rc;
	}
	/* [MQTT-3.1.3-3] [MQTT-3.1.3-4] */
	rc = utf8_read(r, &c->client_id);
	if (rc)
		return rc;
	if (c->will) {
		rc = connect_will_read(r, c);
		if (rc)
			return rc;
	}
	if (c->has_username) {
		rc = utf8_read(r, &c->username); /* [MQTT-3.1.3-12] v5 */
		if (rc)
			return rc;
	}
	if (c->has_password)
		return bin_read(r, &c->password);
	return 0;
}

static int
connack_decode(struct rd *r, uint8_t version, struct mqtt_connack *c)
{
	uint8_t f;
	int rc;

	rc = rd_u8(r, &f);
	if (rc)
		return rc;
	if (f & 0xfe)
		return ERR_BAD_FLAGS; /* [MQTT-3.2.2-1] v5 */
	c->session_present = f & 1;
	rc = rd_u8(r, &c->rc);
	if (rc)
		return rc;
	rc = rc_check(version, MQTT_CONNACK, c->rc);
	if (rc || version != MQTT_V5)
		return rc;
	return mqtt_props_decode(r, MQTT_CONNACK, &c->props);
}

static int
publish_decode(struct rd *r, uint8_t version, uint8_t flags,
               struct mqtt_publish *pub)
{
	int rc;

	pub->qos = (flags >> 1) & 3;
	pub->dup = flags & 8;
	pub->retain = flags & 1;
	rc = utf8_read(r, &pub->topic); /* [MQTT-3.3.2-1] */
	if (rc)
		return rc;
	/* [MQTT-3.3.2-2] */
	if (memchr(pub->topic.p, '+', pub->topic.len) ||
	    memchr(pub->topic.p, '#', pub->topic.len))
		return ERR_BAD_TOPIC;
	if (pub->qos > 0) {
		rc = packet_id_read(r, &pub->packet_id);
		if (rc)
			return rc;
	}
	if (version == MQTT_V5) {
		rc = mqtt_props_decode(r, MQTT_PUBLISH, &pub->props);
		if (rc)
			return rc;
	}
	/* [MQTT-4.7.3-1]; v5 §3.3.2.1: empty only with a Topic Alias, and
	 * without one it is a Protocol Error (0x82), not a bad name */
	if (pub->topic.len == 0 && version != MQTT_V5)
		return ERR_BAD_TOPIC;
	if (pub->topic.len == 0 &&
	    !mqtt_props_has(&pub->props, MQTT_PROP_TOPIC_ALIAS))
		return ERR_PROTOCOL;
	pub->payload.len = r->left;
	return rd_bytes(r, r->left, &pub->payload.p);
}

/* PUBACK, PUBREC, PUBREL, PUBCOMP; v5 §3.4.2.1 short forms. */
static int
ack_decode(struct rd *r, uint8_t version, uint8_t type, struct mqtt_ack *a)
{
	int rc;

	rc = packet_id_read(r, &a->packet_id);
	if (rc || version != MQTT_V5 || r->left == 0)
		return rc;
	rc = rd_u8(r, &a->rc);
	if (rc)
		return rc;
	rc = rc_check(version, type, a->rc);
	if (rc || r->left == 0)
		return rc;
	return mqtt_props_decode(r, type, &a->props);
}

int
mqtt_sub_next(struct rd *r, uint8_t version, struct mqtt_sub_entry *out)
{
	uint8_t o;

	if (r->left == 0)
		return ERR_NOTFOUND;
	memset(out, 0, sizeof(*out));
	if (rd_str(r, &out->filter.p, &out->filter.len) || rd_u8(r, &o))
		return ERR_MALFORMED;
	out->qos = o & 3;
	if (version == MQTT_V5) {
		out->no_local = o & 0x04;
		out->retain_as_published = o & 0x08;
		out->retain_handling = (o >> 4) & 3;
	}
	return 0;
}

int
mqtt_unsub_next(struct rd *r, struct mqtt_bytes *filter)
{
	if (r->left == 0)
		return ERR_NOTFOUND;
	if (rd_str(r, &filter->p, &filter->len))
		return ERR_MALFORMED;
	return 0;
}

static int
filter_read(struct rd *r, struct mqtt_bytes *f)
{
	int rc;

	/* [MQTT-3.8.3-1] [MQTT-3.10.3-1] */
	rc = utf8_read(r, f);
	if (rc)
		return rc;
	/* The wildcard rules [MQTT-4.7.1-2] 3.1.1 are not checked here: a
	 * filter that breaks them fails only its own entry (SUBACK 0x80,
	 * v5 0x8F), so the broker checks each with
	 * mqtt_topic_filter_is_valid. */
	return 0;
}

static int
sub_options_check(uint8_t version, uint8_t o)
{
	/* [MQTT-3.8.3-4] 3.1.1, [MQTT-3.8.3-5] v5: reserved bits */
	if (version == MQTT_V5 ? (o & 0xc0) || ((o >> 4) & 3) == 3 : (o & 0xfc))
		return ERR_BAD_FLAGS;
	return (o & 3) == 3 ? ERR_BAD_QOS : 0;
}

/* SUBSCRIBE and UNSUBSCRIBE. */
static int
subscribe_decode(struct rd *r, uint8_t version, uint8_t type,
                 struct mqtt_subscribe *s)
{
	struct mqtt_bytes f;
	uint8_t o;
	int rc;

	rc = packet_id_read(r, &s->packet_id);
	if (rc)
		return rc;
	if (version == MQTT_V5) {
		rc = mqtt_props_decode(r, type, &s->props);
		if (rc)
			return rc;
	}
	s->entries.p = r->p;
	s->entries.len = r->left;
	while (r->left > 0) {
		rc = filter_read(r, &f);
		if (rc)
			return rc;
		if (type == MQTT_SUBSCRIBE) {
			rc = rd_u8(r, &o);
			if (rc)
				return rc;
			rc = sub_options_check(version, o);
			if (rc)
				return rc;
		}
		s->count++;
	}
	/* [MQTT-3.8.3-3] 3.1.1, [MQTT-3.8.3-2] v5, [MQTT-3.10.3-2] */
	return s->count == 0 ? ERR_EMPTY : 0;
}

/* SUBACK and UNSUBACK (a v3 UNSUBACK has no codes). */
static int
suback_decode(struct rd *r, uint8_t version, uint8_t type,
              struct mqtt_suback *s)
{
	size_t i;
	int rc;

	rc = packet_id_read(r, &s->packet_id);
	if (rc)
		return rc;
	if (version == MQTT_V5) {
		rc = mqtt_props_decode(r, type, &s->props);
		if (rc)
			return rc;
	} else if (type == MQTT_UNSUBACK) {
		return 0;
	}
	s->codes.len = r->left;
	rc = rd_bytes(r, r->left, &s->codes.p);
	if (rc)
		return rc;
	if (s->codes.len == 0)
		return ERR_EMPTY;
	for (i = 0; i < s->codes.len; i++) {
		rc = rc_check(version, type, s->codes.p[i]);
		if (rc)
			return rc;
	}
	return 0;
}

/* DISCONNECT and AUTH (v5 §3.14.2.1, §3.15.2.1 short forms). */
static int
disconnect_decode(struct rd *r, uint8_t version, uint8_t type,
                  struct mqtt_disconnect *d)
{
	int rc;

	if (version != MQTT_V5 || r->left == 0)
		return 0;
	rc = rd_u8(r, &d->rc);
	if (rc)
		return rc;
	rc = rc_check(version, type, d->rc);
	if (rc || r->left == 0)
		return rc;
	return mqtt_props_decode(r, type, &d->props);
}

static int
body_decode(struct rd *r, uint8_t version, struct mqtt_packet *out)
{
	switch (out->type) {
	case MQTT_CONNECT:
		return connect_decode(r, &out->u.connect);
	case MQTT_CONNACK:
		return connack_decode(r, version, &out->u.connack);
	case MQTT_PUBLISH:
		return publish_decode(r, version, out->flags, &out->u.publish);
	case MQTT_PUBACK:
	case MQTT_PUBREC:
	case MQTT_PUBREL:
	case MQTT_PUBCOMP:
		return ack_decode(r, version, out->type, &out->u.ack);
	case MQTT_SUBSCRIBE:
	case MQTT_UNSUBSCRIBE:
		return subscribe_decode(r, version, out->type,
		                        &out->u.subscribe);
	case MQTT_SUBACK:
	case MQTT_UNSUBACK:
		return suback_decode(r, version, out->type, &out->u.suback);
	case MQTT_PINGREQ:
	case MQTT_PINGRESP:
		return 0;
	case MQTT_DISCONNECT:
	case MQTT_AUTH:
		return disconnect_decode(r, version, out->type,
		                         &out->u.disconnect);
	default:
		return ERR_BAD_TYPE;
	}
}

int
mqtt_decode(const uint8_t *p, size_t len, uint8_t version,
            struct mqtt_packet *out, size_t *used)
{
	struct rd r;
	uint32_t rl;
	size_t hl;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = header_parse(p, len, &hl, &rl);
	if (rc)
		return rc;
	if (len - hl < rl)
		return ERR_AGAIN;
	*used = hl + rl;
	out->type = p[0] >> 4;
	out->flags = p[0] & 0x0f;
	/* §2.1.2: type 0 is reserved; AUTH exists only in MQTT 5 */
	if (out->type == 0)
		return ERR_BAD_TYPE;
	if (out->type != MQTT_CONNECT && !version_is_known(version))
		return ERR_BAD_VERSION;
	if (out->type == MQTT_AUTH && version != MQTT_V5)
		return ERR_BAD_TYPE;
	rc = flags_check(out->type, out->flags);
	if (rc)
		return rc;
	rd_init(&r, p + hl, rl);
	rc = body_decode(&r, version, out);
	if (rc)
		return rc;
	/* §2.1.4: the remaining length must match the fields */
	return r.left == 0 ? 0 : ERR_BAD_LENGTH;
}

uint8_t
mqtt_rc_from_err(int err)
{
	switch (err) {
	case 0:
		return MQTT_RC_SUCCESS;
	case ERR_TOO_LARGE:
		return MQTT_RC_PACKET_TOO_LARGE;
	case ERR_BAD_TOPIC:
		return MQTT_RC_TOPIC_NAME_INVALID;
	case ERR_BAD_PROTOCOL:
	case ERR_BAD_VERSION:
		return MQTT_RC_UNSUPPORTED_VERSION;
	case ERR_BAD_CLIENT_ID:
		return MQTT_RC_CLIENT_ID_INVALID;
	case ERR_LIMIT:
		return MQTT_RC_QUOTA_EXCEEDED;
	case ERR_PROTOCOL:
	case ERR_WRONG_STATE:
	case ERR_BAD_PACKET_ID:
	case ERR_BAD_PROPERTY:
	case ERR_EMPTY:
		return MQTT_RC_PROTOCOL_ERROR;
	case ERR_MALFORMED:
	case ERR_BAD_FLAGS:
	case ERR_BAD_QOS:
	case ERR_BAD_UTF8:
	case ERR_BAD_FILTER:
	case ERR_BAD_LENGTH:
	case ERR_BAD_TYPE:
	case ERR_BAD_WILL:
	case ERR_BAD_CREDENTIALS:
	case ERR_BAD_REASON:
	case ERR_BAD_PROPERTY_ID:
		return MQTT_RC_MALFORMED;
	default:
		return MQTT_RC_UNSPECIFIED;
	}
}

static const char *const type_names[] = {
	[MQTT_CONNECT] = "CONNECT",   [MQTT_CONNACK] = "CONNACK",
	[MQTT_PUBLISH] = "PUBLISH",   [MQTT_PUBACK] = "PUBACK",
	[MQTT_PUBREC] = "PUBREC",     [MQTT_PUBREL] = "PUBREL",
	[MQTT_PUBCOMP] = "PUBCOMP",   [MQTT_SUBSCRIBE] = "SUBSCRIBE",
	[MQTT_SUBACK] = "SUBACK",     [MQTT_UNSUBSCRIBE] = "UNSUBSCRIBE",
	[MQTT_UNSUBACK] = "UNSUBACK", [MQTT_PINGREQ] = "PINGREQ",
	[MQTT_PINGRESP] = "PINGRESP", [MQTT_DISCONNECT] = "DISCONNECT",
	[MQTT_AUTH] = "AUTH",
};

const char *
mqtt_type_name(uint8_t type)
{
	if (type >= sizeof(type_names) / sizeof(type_names[0]) ||
	    type_names[type] == NULL)
		return "?";
	return type_names[type];
}
