/*
 * The cluster frame codec: a 4-byte big-endian length, then one protobuf
 * Envelope (proto/cluster.proto) packed and unpacked by protobuf-c. Checks
 * the length against CLUSTER_FRAME_MAX before anything is allocated, and
 * the version and body of every decoded envelope.
 */
#include "cluster/cluster.h"

#include <stddef.h>
#include <stdint.h>

#include "cluster/cluster.pb-c.h"
#include "cluster/cluster_int.h"

int
frame_encode(struct buf *b, struct Mqd__Envelope *env)
{
	size_t n;
	int rc;

	env->version = CLUSTER_PROTO_VERSION;
	n = mqd__envelope__get_packed_size(env);
	if (n > CLUSTER_FRAME_MAX)
		return ERR_TOO_LARGE;
	rc = buf_reserve(b, 4 + n);
	if (rc)
		return rc;
	buf_put_u32(b, (uint32_t)n);
	b->len += mqd__envelope__pack(env, b->data + b->len);
	return 0;
}

int
frame_peek(const uint8_t *p, size_t n, uint32_t *len)
{
	struct rd r;

	rd_init(&r, p, n);
	if (rd_u32(&r, len))
		return ERR_AGAIN;
	if (*len > CLUSTER_FRAME_MAX)
		return ERR_TOO_LARGE;
	return 0;
}

int
frame_decode(const uint8_t *p, size_t n, size_t *used,
             struct Mqd__Envelope **out, const char **why)
{
	struct Mqd__Envelope *env;
	const uint8_t *body;
	struct rd r;
	uint32_t len;
	int rc;

	*out = NULL;
	rc = frame_peek(p, n, &len);
	if (rc == ERR_TOO_LARGE)
		*why = "oversize frame";
	if (rc)
		return rc;
	rd_init(&r, p + 4, n - 4);
	if (rd_bytes(&r, len, &body))
		return ERR_AGAIN;
	env = mqd__envelope__unpack(NULL, len, body);
	if (env == NULL) {
		*why = "undecodable frame";
		return ERR_MALFORMED;
	}
	if (env->version != CLUSTER_PROTO_VERSION) {
		frame_free(env);
		*why = "incompatible version";
		return ERR_BAD_VERSION;
	}
	if (env->body_case == MQD__ENVELOPE__BODY__NOT_SET) {
		frame_free(env);
		*why = "frame without a body";
		return ERR_MALFORMED;
	}
	*used = 4 + (size_t)len;
	*out = env;
	return 0;
}

void
frame_free(struct Mqd__Envelope *env)
{
	if (env != NULL)
		mqd__envelope__free_unpacked(env, NULL);
}

const char *
frame_body_name(const struct Mqd__Envelope *env)
{
	switch (env->body_case) {
	case MQD__ENVELOPE__BODY_HELLO:
		return "hello";
	case MQD__ENVELOPE__BODY_AUTH:
		return "auth";
	case MQD__ENVELOPE__BODY_PING:
		return "ping";
	case MQD__ENVELOPE__BODY_ACK:
		return "ack";
	case MQD__ENVELOPE__BODY_PING_REQ:
		return "ping-req";
	case MQD__ENVELOPE__BODY_GOSSIP:
		return "gossip";
	case MQD__ENVELOPE__BODY_ROUTE_SNAPSHOT:
		return "route-snapshot";
	case MQD__ENVELOPE__BODY_ROUTE_DELTA:
		return "route-delta";
	case MQD__ENVELOPE__BODY_PUBLISH:
		return "publish";
	case MQD__ENVELOPE__BODY_LEAVE:
		return "leave";
	case MQD__ENVELOPE__BODY_RETAINED_SYNC:
		return "retained-sync";
	default:
		return "unknown";
	}
}
