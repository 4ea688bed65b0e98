/*
 * Routing of published messages: matches a topic against the subscription
 * trie, merges the matches of each session (one delivery per session, at
 * the highest matching QoS) and hands the message to the sessions.
 */
#include "broker/node.h"

#include <stdlib.h>

static void
router_on_match(void *sub, const struct topic_sub_opts *opts, void *arg)
{
	struct node *n = arg;
	struct sess *s = sub;
	struct route_hit *h;

	if (s->route_gen == n->route_gen) {
		/* Overlapping subscriptions: deliver once, at the highest
		 * QoS of the matches [MQTT-3.3.5-1]. */
		h = &n->hits[s->route_idx];
		if (opts->qos > h->opts.qos)
			h->opts.qos = opts->qos;
		return;
	}
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
	n->hits[n->n_hits].sess = s;
	n->hits[n->n_hits].opts = *opts;
	n->n_hits++;
}

void
router_publish(struct node *n, struct msg *m)
{
	size_t i;

	n->route_gen++;
	n->n_hits = 0;
	topic_tree_match(n->subs, msg_topic(m), router_on_match, n);
	for (i = 0; i < n->n_hits; i++) {
		struct route_hit *h = &n->hits[i];
		uint8_t qos = h->opts.qos < m->qos ? h->opts.qos : m->qos;
		/* [MQTT-3.3.1-9] RETAIN is 0 on a live delivery */
		sess_deliver(h->sess, m, qos, false);
	}
	n->n_hits = 0;
}

struct retained_ctx {
	struct sess *sess;
	uint8_t qos;
};

static void
router_on_retained(struct msg *m, void *arg)
{
	struct retained_ctx *ctx = arg;
	uint8_t qos = ctx->qos < m->qos ? ctx->qos : m->qos;

	/* [MQTT-3.3.1-8] RETAIN is 1 on messages sent for a new
	 * subscription */
	sess_deliver(ctx->sess, m, qos, true);
}

void
router_send_retained(struct node *n, struct sess *s, struct mqtt_bytes filter,
                     uint8_t qos)
{
	struct retained_ctx ctx = { s, qos };

	retain_match(n->retained, filter, router_on_retained, &ctx);
}
