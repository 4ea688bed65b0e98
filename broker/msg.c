/*
 * struct msg: one allocation holds the header and copies of the topic,
 * payload and properties of a published message. Refcounted and immutable
 * once built; the last msg_unref frees it.
 */
#include "broker/msg.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint8_t *
put_bytes(uint8_t *d, struct mqtt_bytes b)
{
	/* memcpy with a NULL source is undefined even for 0 bytes */
	if (b.len > 0)
		memcpy(d, b.p, b.len);
	return d + b.len;
}

struct msg *
msg_new(struct mqtt_bytes topic, struct mqtt_bytes payload,
        struct mqtt_bytes props, uint8_t qos, bool retain)
{
	struct msg *m;
	size_t room = SIZE_MAX - sizeof(*m);
	uint8_t *d;

	if (topic.len > UINT16_MAX || payload.len > UINT32_MAX ||
	    props.len > UINT32_MAX)
		return NULL;
	/* the three lengths must also fit one allocation (32-bit size_t) */
	if (topic.len > room || payload.len > room - topic.len ||
	    props.len > room - topic.len - payload.len)
		return NULL;
	m = malloc(sizeof(*m) + topic.len + payload.len + props.len);
	if (!m)
		return NULL;
	memset(m, 0, sizeof(*m));
	m->refs = 1;
	m->qos = qos;
	m->retain = retain;
	m->topic_len = (uint16_t)topic.len;
	m->payload_len = (uint32_t)payload.len;
	m->props_len = (uint32_t)props.len;
	d = put_bytes(m->data, topic);
	d = put_bytes(d, payload);
	put_bytes(d, props);
	return m;
}

void
msg_unref(struct msg *m)
{
	if (!m)
		return;
	assert(m->refs > 0);
	if (--m->refs == 0)
		free(m);
}
