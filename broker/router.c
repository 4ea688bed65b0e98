/*
 * Routing of published messages: matches a topic against the subscription
 * trie, merges the matches of each session (one delivery per session, at
 * the highest matching QoS, with every matching subscription identifier)
 * and hands the message to the sessions.
 */
#include "broker/node.h"

#include <stdlib.h>
#include <string.h>

/* Properties a PUBLISH carries on to its subscribers [MQTT-3.3.2-4]
 * [MQTT-3.3.2-15] [MQTT-3.3.2-17] [MQTT-3.3.2-18] v5; Message Expiry is
 * kept apart (it counts down), Topic Alias and Subscription Identifier
 * are per connection. */
#define ROUTER_FORWARD_PROPS                  \
	((1ull << MQTT_PROP_PAYLOAD_FORMAT) | \
	 (1ull << MQTT_PROP_CONTENT_TYPE) |   \
	 (1ull << MQTT_PROP_RESPONSE_TOPIC) | \
	 (1ull << MQTT_PROP_CORRELATION_DATA) | (1ull << MQTT_PROP_USER))

struct msg *
router_msg_new(struct node *n, struct mqtt_bytes topic,
               struct mqtt_bytes payload, const struct mqtt_props *pr,
               uint8_t qos, bool retain)
{
	struct mqtt_props fw;
	struct mqtt_bytes props = { 0 };
	uint8_t storage[256];
	struct buf b;
	struct msg *m;

	buf_init_fixed(&b, storage, sizeof(storage));
	if (pr && (pr->present & ROUTER_FORWARD_PROPS)) {
		fw = *pr;
		fw.present &= ROUTER_FORWARD_PROPS;
		mqtt_props_encode(&b, &fw);
		if (buf_failed(&b)) {
			buf_init(&b);
			mqtt_props_encode(&b, &fw);
			if (buf_failed(&b)) {
				buf_fini(&b);
				return NULL;
			}
		}
		props = (struct mqtt_bytes){ b.data, b.len };
	}
	m = msg_new(topic, payload, props, qos, retain);
	buf_fini(&b);
	if (!m)
		return NULL;
	m->id = ++n->next_msg_id;
	if (pr && mqtt_props_has(pr, MQTT_PROP_MESSAGE_EXPIRY))
		m->expiry_ms = node_now_ms() + pr->message_expiry * 1000ull;
	return m;
}

/* Does this node give @p m to one member of its group @p g? */
static bool
router_share_here(struct node *n, struct share_group *g, const struct msg *m)
{
	struct mqtt_bytes key = share_key(g);
	size_t i;

	switch (n->share_mode) {
	case NODE_SHARE_CLUSTER:
		return mesh_share_here(n, key, m);
	case NODE_SHARE_ONLY:
		for (i = 0; i < n->n_share_keys; i++)
			if (n->share_keys[i].len == key.len &&
			    !memcmp(n->share_keys[i].p, key.p, key.len))
				return true;
		return false;
	default:
		return true;
	}
}

static void
router_on_match(void *sub, const struct topic_sub_opts *opts, void *arg)
{
	struct node *n = arg;
	struct msg *m = n->routing;
	struct sess *s = sub;
	struct route_hit *h;

	if (opts->shared) {
		/* one member of the group gets it [MQTT-4.8.2], in the
		 * cluster: one node's */
		if (!router_share_here(n, sub, m))
			return;
		opts = share_pick(sub, m->qos, &s);
	}
	/* [MQTT-3.8.3-3] v5 No Local: not back to the publisher */
	if (opts->no_local && m->origin == s)
		return;
	if (s->route_gen == n->route_gen) {
		/* Overlapping subscriptions: deliver once, at the highest
		 * QoS of the matches [MQTT-3.3.5-1], with all their
		 * subscription identifiers [MQTT-3.3.4-3] v5. */
		h = &n->hits[s->route_idx];
	} else {
		if (n->n_hits == n->hits_cap) {
			size_t cap = n->hits_cap ? n->hits_cap * 2 : 64;
			h = realloc(n->hits, cap * sizeof(*h));
			if (!h) {
				s->dropped++;
				return;
			}
			n->hits = h;
			n->hits_cap = cap;
		}
		s->route_gen = n->route_gen;
		s->route_idx = n->n_hits;
		h = &n->hits[n->n_hits++];
		memset(h, 0, sizeof(*h));
		h->sess = s;
	}
	if (opts->qos > h->qos)
		h->qos = opts->qos;
	h->rap |= opts->retain_as_published;
	if (opts->sub_id && h->n_sub_ids < MQTT_MAX_SUB_IDS)
		h->sub_ids[h->n_sub_ids++] = opts->sub_id;
}

void
router_publish_will(struct node *n, struct msg *will, uint32_t expiry_s)
{
	/* The Will's Message Expiry Interval counts from its publication
	 * (§3.1.3.2.4 v5), not from the CONNECT. */
	will->expiry_ms = expiry_s ? node_now_ms() + expiry_s * 1000ull : 0;
	if (will->retain) {
		will->stamp = mesh_stamp(n);
		if (retain_set(n->retained, will) == 0) {
			persist_retained(n, will);
			mesh_retained(n, will);
		}
	}
	n->share_mode = NODE_SHARE_CLUSTER;
	router_publish(n, will);
	n->share_mode = NODE_SHARE_LOCAL;
	mesh_forward(n, will, NULL); /* wills fire cluster-wide */
}

size_t
router_publish(struct node *n, struct msg *m)
{
	size_t i, hits;

	n->route_gen++;
	n->n_hits = 0;
	n->routing = m;
	topic_tree_match(n->subs, msg_topic(m), router_on_match, n);
	n->routing = NULL;
	hits = n->n_hits;
	for (i = 0; i < hits; i++) {
		struct route_hit *h = &n->hits[i];
		uint8_t qos = h->qos < m->qos ? h->qos : m->qos;
		/* [MQTT-3.3.1-9] 3.1.1: RETAIN is 0 on a live delivery;
		 * v5 Retain As Published keeps it [MQTT-3.3.1-12] */
		sess_deliver(h->sess, m, qos, h->rap && m->retain, h->sub_ids,
		             h->n_sub_ids);
	}
	n->n_hits = 0;
	return hits;
}

struct retained_ctx {
	struct sess *sess;
	uint8_t qos;
	uint32_t sub_id;
};

static void
router_on_retained(struct msg *m, void *arg)
{
	struct retained_ctx *ctx = arg;
	uint8_t qos = ctx->qos < m->qos ? ctx->qos : m->qos;

	/* [MQTT-3.3.1-8] RETAIN is 1 on messages sent for a new
	 * subscription */
	sess_deliver(ctx->sess, m, qos, true, &ctx->sub_id,
	             ctx->sub_id ? 1 : 0);
}

void
router_send_retained(struct node *n, struct sess *s, struct mqtt_bytes filter,
                     uint8_t qos, uint32_t sub_id)
{
	struct retained_ctx ctx = { s, qos, sub_id };

	retain_match(n->retained, filter, router_on_retained, &ctx);
}
