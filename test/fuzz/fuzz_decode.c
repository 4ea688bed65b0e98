/*
 * libFuzzer target for the MQTT codec: decodes the input as MQTT 3.1, 3.1.1
 * and 5.0; whatever decodes must encode again, decode to an equal packet and
 * re-encode to the same bytes (the round-trip property). Also feeds the
 * input to the property decoder and the topic functions.
 */
#include "proto/proto.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/mqtt_int.h"
#include "test/fuzz/fuzz.h"

static void
entries_check(uint8_t version, const struct mqtt_packet *p)
{
	const struct mqtt_subscribe *s = &p->u.subscribe;
	struct mqtt_sub_entry e;
	struct mqtt_bytes f;
	struct rd r;
	size_t n = 0;

	rd_init(&r, s->entries.p, s->entries.len);
	if (p->type == MQTT_SUBSCRIBE) {
		while (mqtt_sub_next(&r, version, &e) == 0) {
			/* wildcard rules are the broker's check (one
			 * entry fails), UTF-8 is the decoder's */
			check(mqtt_utf8_is_valid(e.filter.p, e.filter.len));
			check(e.qos < 3 && e.retain_handling < 3);
			n++;
		}
	} else {
		while (mqtt_unsub_next(&r, &f) == 0)
			n++;
	}
	check(r.left == 0 && n == s->count && n > 0);
}

static void
roundtrip_check(uint8_t version, const struct mqtt_packet *a)
{
	uint8_t ev = a->type == MQTT_CONNECT ? a->u.connect.version : version;
	struct mqtt_packet c;
	struct buf b1, b2;
	size_t used;

	buf_init(&b1);
	buf_init(&b2);
	check(mqtt_encode(&b1, ev, a) == 0);
	check(mqtt_decode(b1.data, b1.len, version, &c, &used) == 0);
	check(used == b1.len);
	check(mqtt_packet_equals(ev, a, &c));
	/* encoding is a function of the fields: same bytes again */
	check(mqtt_encode(&b2, ev, &c) == 0);
	check(b2.len == b1.len && memcmp(b1.data, b2.data, b1.len) == 0);
	if (a->type == MQTT_PUBLISH)
		check(mqtt_publish_size(ev, &a->u.publish) == b1.len);
	buf_fini(&b1);
	buf_fini(&b2);
}

static void
decode_check(const uint8_t *data, size_t size, uint8_t version)
{
	struct mqtt_packet a;
	uint8_t tf;
	size_t used = 0, total;
	int rc;

	rc = mqtt_decode(data, size, version, &a, &used);
	check(rc <= 0 && err_str(rc) != NULL);
	(void)mqtt_rc_from_err(rc);
	if (rc == ERR_AGAIN) {
		rc = mqtt_frame(data, size, 0, &tf, &total);
		check(rc == ERR_AGAIN || (rc == 0 && total > size));
		return;
	}
	if (rc)
		return;
	check(used >= 2 && used <= size);
	check(mqtt_frame(data, size, 0, &tf, &total) == 0 && total == used);
	check(mqtt_type_name(a.type)[0] != '?');
	if (a.type == MQTT_SUBSCRIBE || a.type == MQTT_UNSUBSCRIBE)
		entries_check(version, &a);
	roundtrip_check(version, &a);
}

static void
props_check(const uint8_t *data, size_t size)
{
	struct mqtt_props pr, again;
	struct buf b;
	struct rd r;

	if (size < 1)
		return;
	rd_init(&r, data + 1, size - 1);
	if (mqtt_props_decode(&r, data[0] % 17, &pr))
		return;
	buf_init(&b);
	mqtt_props_encode(&b, &pr);
	check(!buf_failed(&b));
	check(b.len ==
	      varint_size((uint32_t)mqtt_props_len(&pr)) + mqtt_props_len(&pr));
	rd_init(&r, b.data, b.len);
	check(mqtt_props_decode(&r, data[0] % 17, &again) == 0);
	check(r.left == 0 && mqtt_props_equals(&pr, &again));
	buf_fini(&b);
}

static void
topic_check(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size);
	struct mqtt_bytes f, t;

	if (nl == NULL)
		return;
	f = (struct mqtt_bytes){ data, (size_t)(nl - data) };
	t = (struct mqtt_bytes){ nl + 1, size - f.len - 1 };
	if (!mqtt_topic_filter_is_valid(f) || !mqtt_topic_name_is_valid(t))
		return;
	/* a name is a filter that matches itself, unless it starts with a
	 * wildcard (it cannot); '#' matches every non-'$' name */
	check(mqtt_topic_matches(t, t));
	check(mqtt_topic_matches((struct mqtt_bytes){ (const uint8_t *)"#", 1 },
	                         t) == (t.p[0] != '$'));
	(void)mqtt_topic_matches(f, t);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	decode_check(data, size, MQTT_V31);
	decode_check(data, size, MQTT_V311);
	decode_check(data, size, MQTT_V5);
	props_check(data, size);
	topic_check(data, size);
	return 0;
}
