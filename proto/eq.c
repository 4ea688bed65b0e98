/*
 * Field-by-field comparison of decoded packets, for the codec's tests and
 * the fuzz round-trip property (proto/mqtt_int.h).
 */
#include "proto/proto.h"

#include <stdbool.h>
#include <stdint.h>

#include "proto/mqtt_int.h"

static bool
connect_equals(const struct mqtt_connect *a, const struct mqtt_connect *b)
{
	return a->version == b->version && a->clean_start == b->clean_start &&
	       a->keepalive == b->keepalive &&
	       mqtt_props_equals(&a->props, &b->props) &&
	       mqtt_bytes_equals(a->client_id, b->client_id) &&
	       a->will == b->will && a->will_qos == b->will_qos &&
	       a->will_retain == b->will_retain &&
	       mqtt_props_equals(&a->will_props, &b->will_props) &&
	       mqtt_bytes_equals(a->will_topic, b->will_topic) &&
	       mqtt_bytes_equals(a->will_payload, b->will_payload) &&
	       a->has_username == b->has_username &&
	       a->has_password == b->has_password &&
	       mqtt_bytes_equals(a->username, b->username) &&
	       mqtt_bytes_equals(a->password, b->password);
}

static bool
publish_equals(const struct mqtt_publish *a, const struct mqtt_publish *b)
{
	return a->qos == b->qos && a->dup == b->dup && a->retain == b->retain &&
	       a->packet_id == b->packet_id &&
	       mqtt_bytes_equals(a->topic, b->topic) &&
	       mqtt_props_equals(&a->props, &b->props) &&
	       mqtt_bytes_equals(a->payload, b->payload);
}

static bool
entries_equal(uint8_t version, uint8_t type, const struct mqtt_subscribe *a,
              const struct mqtt_subscribe *b)
{
	struct mqtt_sub_entry ea, eb;
	struct rd ra, rb;
	int rca, rcb;

	rd_init(&ra, a->entries.p, a->entries.len);
	rd_init(&rb, b->entries.p, b->entries.len);
	for (;;) {
		if (type == MQTT_SUBSCRIBE) {
			rca = mqtt_sub_next(&ra, version, &ea);
			rcb = mqtt_sub_next(&rb, version, &eb);
		} else {
			rca = mqtt_unsub_next(&ra, &ea.filter);
			rcb = mqtt_unsub_next(&rb, &eb.filter);
			ea.qos = eb.qos = 0;
			ea.no_local = eb.no_local = false;
			ea.retain_as_published = eb.retain_as_published = false;
			ea.retain_handling = eb.retain_handling = 0;
		}
		if (rca || rcb)
			return rca == rcb;
		if (!mqtt_bytes_equals(ea.filter, eb.filter) ||
		    ea.qos != eb.qos || ea.no_local != eb.no_local ||
		    ea.retain_as_published != eb.retain_as_published ||
		    ea.retain_handling != eb.retain_handling)
			return false;
	}
}

bool
mqtt_packet_equals(uint8_t version, const struct mqtt_packet *a,
                   const struct mqtt_packet *b)
{
	const struct mqtt_subscribe *sa = &a->u.subscribe,
	                            *sb = &b->u.subscribe;
	const struct mqtt_suback *ka = &a->u.suback, *kb = &b->u.suback;

	if (a->type != b->type || a->flags != b->flags)
		return false;
	switch (a->type) {
	case MQTT_CONNECT:
		return connect_equals(&a->u.connect, &b->u.connect);
	case MQTT_CONNACK:
		return a->u.connack.session_present ==
		               b->u.connack.session_present &&
		       a->u.connack.rc == b->u.connack.rc &&
		       mqtt_props_equals(&a->u.connack.props,
		                         &b->u.connack.props);
	case MQTT_PUBLISH:
		return publish_equals(&a->u.publish, &b->u.publish);
	case MQTT_PUBACK:
	case MQTT_PUBREC:
	case MQTT_PUBREL:
	case MQTT_PUBCOMP:
		return a->u.ack.packet_id == b->u.ack.packet_id &&
		       a->u.ack.rc == b->u.ack.rc &&
		       mqtt_props_equals(&a->u.ack.props, &b->u.ack.props);
	case MQTT_SUBSCRIBE:
	case MQTT_UNSUBSCRIBE:
		return sa->packet_id == sb->packet_id &&
		       sa->count == sb->count &&
		       mqtt_props_equals(&sa->props, &sb->props) &&
		       entries_equal(version, a->type, sa, sb);
	case MQTT_SUBACK:
	case MQTT_UNSUBACK:
		return ka->packet_id == kb->packet_id &&
		       mqtt_props_equals(&ka->props, &kb->props) &&
		       mqtt_bytes_equals(ka->codes, kb->codes);
	case MQTT_DISCONNECT:
	case MQTT_AUTH:
		return a->u.disconnect.rc == b->u.disconnect.rc &&
		       mqtt_props_equals(&a->u.disconnect.props,
		                         &b->u.disconnect.props);
	default:
		return true;
	}
}
