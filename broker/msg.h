/*
 * struct msg: one published application message, immutable and refcounted.
 * Fan-out hands each subscriber a reference; the payload is never copied per
 * subscriber.
 */
#ifndef BROKER_MSG_H
#define BROKER_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/proto.h"

struct msg {
	uint32_t refs;        /* references held */
	uint8_t qos;          /* QoS it was published with */
	bool retain;          /* RETAIN flag as published */
	uint16_t topic_len;   /* bytes of topic at data[0] */
	uint32_t payload_len; /* bytes of payload after the topic */
	uint32_t props_len;   /* v5 properties to forward, after the payload */
	uint32_t batch_gen;   /* storage batch its payload was last put in */
	uint64_t expiry_ms;   /* monotonic ms when it expires, 0 = never */
	uint64_t id;          /* node-unique message id */
	uint64_t stamp;       /* retained: cluster clock of the change, 0 =
	                       * none (last writer wins across nodes) */
	const void *origin;   /* publishing session, for no-local; not a ref */
	uint8_t data[];       /* topic, payload, properties */
};

/**
 * New message with one reference; topic, payload and props are copied.
 * id, expiry_ms and origin start at zero for the caller to set.
 * @return NULL on out of memory, or when the topic is over 65535 bytes or
 *   the payload or props over UINT32_MAX
 */
struct msg *msg_new(struct mqtt_bytes topic, struct mqtt_bytes payload,
                    struct mqtt_bytes props, uint8_t qos, bool retain);

static inline struct msg *
msg_ref(struct msg *m)
{
	m->refs++;
	return m;
}

/** Drops a reference, freeing at zero; msg_unref(NULL) is a no-op. */
void msg_unref(struct msg *m);

static inline struct mqtt_bytes
msg_topic(const struct msg *m)
{
	return (struct mqtt_bytes){ m->data, m->topic_len };
}

static inline struct mqtt_bytes
msg_payload(const struct msg *m)
{
	return (struct mqtt_bytes){ m->data + m->topic_len, m->payload_len };
}

static inline struct mqtt_bytes
msg_props(const struct msg *m)
{
	return (struct mqtt_bytes){ m->data + m->topic_len + m->payload_len,
		                    m->props_len };
}

/** Seconds of Message Expiry left at monotonic @p now, rounded up; 0 when
 * it has expired. Only meaningful when m->expiry_ms is set. */
static inline uint32_t
msg_expiry_left_s(const struct msg *m, uint64_t now)
{
	return m->expiry_ms > now
	               ? (uint32_t)((m->expiry_ms - now + 999) / 1000)
	               : 0;
}

#endif
