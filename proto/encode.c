/*
 * Encoding: every packet type for MQTT 3.1, 3.1.1 and 5.0 into a struct buf,
 * the PUBLISH header alone (the payload goes out by reference) and its size,
 * and SUBSCRIBE entries. Values are written as given; the decoder is where
 * rules are enforced.
 */
#include "proto/proto.h"

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

static bool
version_is_known(uint8_t v)
{
	return v == MQTT_V31 || v == MQTT_V311 || v == MQTT_V5;
}

static bool
props_is_empty(const struct mqtt_props *pr)
{
	return mqtt_props_len(pr) == 0;
}

static int
buf_err(const struct buf *b)
{
	return b->fixed ? ERR_TOO_LARGE : ERR_NOMEM;
}

/* Drops a half-written packet from @p start and fails the buf. */
static int
packet_abort(struct buf *b, size_t start, int err)
{
	b->len = start;
	b->failed = true;
	return err;
}

/* Bytes of an encoded property section, length prefix included. */
static size_t
props_size(const struct mqtt_props *pr)
{
	size_t n = mqtt_props_len(pr);

	if (n > MQTT_MAX_REMAINING)
		return MQTT_MAX_REMAINING + 1; /* too large either way */
	return varint_size((uint32_t)n) + n;
}

static size_t
connect_size(uint8_t version, const struct mqtt_connect *c)
{
	size_t n = (version == MQTT_V31 ? 8 : 6) + 4 + 2 + c->client_id.len;

	if (version == MQTT_V5)
		n += props_size(&c->props);
	if (c->will) {
		n += 4 + c->will_topic.len + c->will_payload.len;
		if (version == MQTT_V5)
			n += props_size(&c->will_props);
	}
	if (c->has_username)
		n += 2 + c->username.len;
	if (c->has_password)
		n += 2 + c->password.len;
	return n;
}

/* v5 acks, DISCONNECT and AUTH: reason code and properties, short forms
 * (§3.4.2.1, §3.14.2.1, §3.15.2.1) when there is nothing to say. */
static size_t
rc_props_size(uint8_t type, uint8_t rc, const struct mqtt_props *pr)
{
	bool empty = props_is_empty(pr);

	if (rc == 0 && empty)
		return 0;
	if (empty && type != MQTT_AUTH)
		return 1;
	return 1 + props_size(pr);
}

/* Remaining length of a packet other than PUBLISH. */
static size_t
body_size(uint8_t version, const struct mqtt_packet *pkt)
{
	bool v5 = version == MQTT_V5;
	const struct mqtt_suback *sa = &pkt->u.suback;

	switch (pkt->type) {
	case MQTT_CONNECT:
		return connect_size(version, &pkt->u.connect);
	case MQTT_CONNACK:
		return 2 + (v5 ? props_size(&pkt->u.connack.props) : 0);
	case MQTT_PUBACK:
	case MQTT_PUBREC:
	case MQTT_PUBREL:
	case MQTT_PUBCOMP:
		return 2 + (v5 ? rc_props_size(pkt->type, pkt->u.ack.rc,
		                               &pkt->u.ack.props)
		               : 0);
	case MQTT_SUBSCRIBE:
	case MQTT_UNSUBSCRIBE:
		return 2 + pkt->u.subscribe.entries.len +
		       (v5 ? props_size(&pkt->u.subscribe.props) : 0);
	case MQTT_SUBACK:
	case MQTT_UNSUBACK:
		if (v5)
			return 2 + props_size(&sa->props) + sa->codes.len;
		return 2 + (pkt->type == MQTT_SUBACK ? sa->codes.len : 0);
	case MQTT_DISCONNECT:
	case MQTT_AUTH:
		return v5 ? rc_props_size(pkt->type, pkt->u.disconnect.rc,
		                          &pkt->u.disconnect.props)
		          : 0;
	default: /* PINGREQ, PINGRESP */
		return 0;
	}
}

static void
connect_put(struct buf *b, uint8_t version, const struct mqtt_connect *c)
{
	uint8_t f = 0;

	if (version == MQTT_V31)
		buf_put_str(b, "MQIsdp", 6);
	else
		buf_put_str(b, "MQTT", 4);
	buf_put_u8(b, version);
	f |= c->clean_start ? 0x02 : 0;
	if (c->will) {
		f |= 0x04 | (uint8_t)((c->will_qos & 3) << 3);
		f |= c->will_retain ? 0x20 : 0;
	}
	f |= c->has_password ? 0x40 : 0;
	f |= c->has_username ? 0x80 : 0;
	buf_put_u8(b, f);
	buf_put_u16(b, c->keepalive);
	if (version == MQTT_V5)
		mqtt_props_encode(b, &c->props);
	buf_put_str(b, c->client_id.p, c->client_id.len);
	if (c->will) {
		if (version == MQTT_V5)
			mqtt_props_encode(b, &c->will_props);
		buf_put_str(b, c->will_topic.p, c->will_topic.len);
		buf_put_str(b, c->will_payload.p, c->will_payload.len);
	}
	if (c->has_username)
		buf_put_str(b, c->username.p, c->username.len);
	if (c->has_password)
		buf_put_str(b, c->password.p, c->password.len);
}

static void
connack_put(struct buf *b, uint8_t version, const struct mqtt_connack *c)
{
	buf_put_u8(b, c->session_present ? 1 : 0);
	buf_put_u8(b, c->rc);
	if (version == MQTT_V5)
		mqtt_props_encode(b, &c->props);
}

static void
rc_props_put(struct buf *b, uint8_t type, uint8_t rc,
             const struct mqtt_props *pr)
{
	bool empty = props_is_empty(pr);

	if (rc == 0 && empty)
		return;
	buf_put_u8(b, rc);
	if (!empty || type == MQTT_AUTH)
		mqtt_props_encode(b, pr);
}

static void
ack_put(struct buf *b, uint8_t version, uint8_t type, const struct mqtt_ack *a)
{
	buf_put_u16(b, a->packet_id);
	if (version == MQTT_V5)
		rc_props_put(b, type, a->rc, &a->props);
}

static void
subscribe_put(struct buf *b, uint8_t version, const struct mqtt_subscribe *s)
{
	buf_put_u16(b, s->packet_id);
	if (version == MQTT_V5)
		mqtt_props_encode(b, &s->props);
	buf_put_bytes(b, s->entries.p, s->entries.len);
}

static void
suback_put(struct buf *b, uint8_t version, uint8_t type,
           const struct mqtt_suback *s)
{
	size_t i;

	buf_put_u16(b, s->packet_id);
	if (version == MQTT_V5) {
		mqtt_props_encode(b, &s->props);
		buf_put_bytes(b, s->codes.p, s->codes.len);
		return;
	}
	if (type == MQTT_UNSUBACK)
		return; /* a v3 UNSUBACK has no payload */
	/* [MQTT-3.9.3-2] 3.1.1: 0x00, 0x01, 0x02 or 0x80 only */
	for (i = 0; i < s->codes.len; i++)
		buf_put_u8(b, s->codes.p[i] >= 0x80 ? 0x80 : s->codes.p[i]);
}

static void
body_put(struct buf *b, uint8_t version, const struct mqtt_packet *pkt)
{
	switch (pkt->type) {
	case MQTT_CONNECT:
		connect_put(b, version, &pkt->u.connect);
		break;
	case MQTT_CONNACK:
		connack_put(b, version, &pkt->u.connack);
		break;
	case MQTT_PUBACK:
	case MQTT_PUBREC:
	case MQTT_PUBREL:
	case MQTT_PUBCOMP:
		ack_put(b, version, pkt->type, &pkt->u.ack);
		break;
	case MQTT_SUBSCRIBE:
	case MQTT_UNSUBSCRIBE:
		subscribe_put(b, version, &pkt->u.subscribe);
		break;
	case MQTT_SUBACK:
	case MQTT_UNSUBACK:
		suback_put(b, version, pkt->type, &pkt->u.suback);
		break;
	case MQTT_DISCONNECT:
	case MQTT_AUTH:
		if (version == MQTT_V5)
			rc_props_put(b, pkt->type, pkt->u.disconnect.rc,
			             &pkt->u.disconnect.props);
		break;
	default: /* PINGREQ, PINGRESP: no body */
		break;
	}
}

/* Remaining length of a PUBLISH, or MQTT_MAX_REMAINING + 1 when over. */
static size_t
publish_rl(uint8_t version, const struct mqtt_publish *pub)
{
	size_t n = 2 + pub->topic.len + (pub->qos > 0 ? 2 : 0);

	if (version == MQTT_V5) {
		size_t pl = mqtt_props_len(&pub->props) + pub->props_raw.len;
		if (pl > MQTT_MAX_REMAINING)
			return MQTT_MAX_REMAINING + 1;
		n += varint_size((uint32_t)pl) + pl;
	}
	if (n > MQTT_MAX_REMAINING || pub->payload.len > MQTT_MAX_REMAINING - n)
		return MQTT_MAX_REMAINING + 1;
	return n + pub->payload.len;
}

size_t
mqtt_publish_size(uint8_t version, const struct mqtt_publish *pub)
{
	size_t rl = publish_rl(version, pub);

	if (rl > MQTT_MAX_REMAINING)
		return MQTT_MAX_REMAINING + 6;
	return 1 + varint_size((uint32_t)rl) + rl;
}

int
mqtt_publish_header_encode(struct buf *b, uint8_t version,
                           const struct mqtt_publish *pub)
{
	size_t start = b->len;
	size_t rl = publish_rl(version, pub);
	uint8_t b0;

	if (!version_is_known(version))
		return ERR_BAD_VERSION;
	if (buf_failed(b))
		return buf_err(b);
	if (rl > MQTT_MAX_REMAINING)
		return packet_abort(b, start, ERR_TOO_LARGE);
	b0 = (uint8_t)(MQTT_PUBLISH << 4 | (pub->dup ? 8 : 0) |
	               (pub->qos & 3) << 1 | (pub->retain ? 1 : 0));
	buf_put_u8(b, b0);
	buf_put_varint(b, (uint32_t)rl);
	buf_put_str(b, pub->topic.p, pub->topic.len);
	if (pub->qos > 0)
		buf_put_u16(b, pub->packet_id);
	if (version == MQTT_V5)
		mqtt_props_encode_extra(b, &pub->props, pub->props_raw);
	if (buf_failed(b))
		return packet_abort(b, start, buf_err(b));
	return 0;
}

int
mqtt_encode(struct buf *b, uint8_t version, const struct mqtt_packet *pkt)
{
	size_t start = b->len, rl;
	uint8_t b0;
	int rc;

	if (!version_is_known(version))
		return ERR_BAD_VERSION;
	if (pkt->type == 0 || pkt->type > MQTT_AUTH ||
	    (pkt->type == MQTT_AUTH && version != MQTT_V5))
		return ERR_BAD_TYPE;
	if (buf_failed(b))
		return buf_err(b);
	if (pkt->type == MQTT_PUBLISH) {
		rc = mqtt_publish_header_encode(b, version, &pkt->u.publish);
		if (rc)
			return rc;
		buf_put_bytes(b, pkt->u.publish.payload.p,
		              pkt->u.publish.payload.len);
		if (buf_failed(b))
			return packet_abort(b, start, buf_err(b));
		return 0;
	}
	rl = body_size(version, pkt);
	if (rl > MQTT_MAX_REMAINING)
		return packet_abort(b, start, ERR_TOO_LARGE);
	b0 = (uint8_t)(pkt->type << 4);
	if (pkt->type == MQTT_PUBREL || pkt->type == MQTT_SUBSCRIBE ||
	    pkt->type == MQTT_UNSUBSCRIBE)
		b0 |= 2; /* [MQTT-2.1.3-1] v5, [MQTT-2.2.2-1] 3.1.1 */
	buf_put_u8(b, b0);
	buf_put_varint(b, (uint32_t)rl);
	body_put(b, version, pkt);
	if (buf_failed(b))
		return packet_abort(b, start, buf_err(b));
	/* body_size and body_put describe the same bytes */
	assert(b->len - start == 1 + varint_size((uint32_t)rl) + rl);
	return 0;
}

void
mqtt_sub_entry_put(struct buf *b, uint8_t version,
                   const struct mqtt_sub_entry *e)
{
	uint8_t o = e->qos & 3;

	if (version == MQTT_V5) {
		o |= e->no_local ? 0x04 : 0;
		o |= e->retain_as_published ? 0x08 : 0;
		o |= (uint8_t)((e->retain_handling & 3) << 4);
	}
	buf_put_str(b, e->filter.p, e->filter.len);
	buf_put_u8(b, o);
}
