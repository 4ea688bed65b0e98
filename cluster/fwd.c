/*
 * Acknowledged forwarding of QoS >= 1 messages: the per-peer outbox and
 * the receiver's duplicate check.
 *
 * Sender: every QoS >= 1 message for a peer becomes an entry in that
 * peer's outbox (a FIFO in msg_id order, broker keeps a copy on disk). An
 * entry is sent when the peer's link is up, again from the first unacked
 * one on every new link, paced by what the link has queued, and leaves the
 * outbox when the peer's PubAck names it (or when its message expires).
 *
 * Receiver: a Publish with ack set is delivered unless its msg_id is at or
 * below the highest taken from its origin (the mark), and acked once broker
 * says it is queued (cluster_forward_ack). An origin's entries arrive in
 * msg_id order on one link, and every new link starts again from the first
 * unacked one, so one mark per origin tells duplicates apart.
 */
#include "cluster/cluster.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "cluster/cluster.pb-c.h"
#include "cluster/cluster_int.h"

/* Sending stops while a link has this much queued. */
#define FWD_WINDOW (1u << 20)

/* One outbox entry: a forward not yet acked. */
struct fwd_entry {
	struct fwd_entry *next;
	uint64_t msg_id;
	uint64_t expires_ms; /* cluster_now_ms() deadline, 0 = none */
	void *cookie;        /* broker's, handed back by forward_done */
	uint8_t qos;
	bool retain;
	uint32_t topic_len;
	uint32_t payload_len;
	uint32_t props_len;
	uint32_t client_len;
	uint32_t groups_len; /* shared groups: u16 length + key each */
	uint16_t n_groups;
	uint8_t data[]; /* topic, payload, props, origin client, groups */
};

struct fwd_peer *
fwd_peer_get(struct cluster *c, uint64_t node_id, bool create)
{
	struct fwd_peer *p;

	for (p = c->fwd; p != NULL; p = p->next) {
		if (p->node_id == node_id)
			return p;
	}
	if (!create)
		return NULL;
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return NULL;
	p->node_id = node_id;
	p->tail = &p->head;
	p->next = c->fwd;
	c->fwd = p;
	return p;
}

/* The member with p's node id, when there is one. */
static struct member *
fwd_member(struct cluster *c, struct fwd_peer *p)
{
	size_t i;

	if (p->m != NULL)
		return p->m;
	for (i = 0; i < c->n_members; i++) {
		if (!c->members[i]->self &&
		    c->members[i]->node_id == p->node_id) {
			p->m = c->members[i];
			p->m->fwd = p;
			break;
		}
	}
	return p->m;
}

static size_t
fwd_entry_size(const struct fwd_entry *e)
{
	return sizeof(*e) + e->topic_len + e->payload_len + e->props_len +
	       e->client_len + e->groups_len;
}

static void
fwd_entry_free(struct fwd_entry *e)
{
	free(e);
}

/* Takes @p e (the entry before it is @p pp) out of p's outbox. */
static void
fwd_unlink(struct fwd_peer *p, struct fwd_entry **pp, struct fwd_entry *e)
{
	*pp = e->next;
	if (p->tail == &e->next)
		p->tail = pp;
	if (p->unsent == e)
		p->unsent = e->next;
	p->n--;
	p->bytes -= fwd_entry_size(e);
}

static void
fwd_done(struct cluster *c, struct fwd_peer *p, struct fwd_entry *e, bool acked)
{
	if (c->hooks.forward_done != NULL)
		c->hooks.forward_done(c->hooks.arg, p->node_id, e->msg_id,
		                      e->cookie, acked);
	fwd_entry_free(e);
}

/* Encodes and queues @p e on @p l. @return 0, ERR_AGAIN (expired: drop
 * it) or ERR_* (the link is closed) */
static int
fwd_send_one(struct cluster *c, struct link *l, const struct fwd_entry *e)
{
	Mqd__Envelope env = MQD__ENVELOPE__INIT;
	Mqd__Publish pb = MQD__PUBLISH__INIT;
	ProtobufCBinaryData groups[CLUSTER_GROUPS_MAX];
	const uint8_t *d = e->data;
	uint16_t i;
	int rc;

	if (e->expires_ms != 0) {
		uint64_t now = cluster_now_ms();
		if (now >= e->expires_ms)
			return ERR_AGAIN;
		/* rounded up: 0 would mean no expiry */
		pb.expiry_s = (uint32_t)((e->expires_ms - now + 999) / 1000);
	}
	pb.origin_node = c->node_id;
	pb.msg_id = e->msg_id;
	pb.topic.data = (uint8_t *)d;
	pb.topic.len = e->topic_len;
	d += e->topic_len;
	pb.payload.data = (uint8_t *)d;
	pb.payload.len = e->payload_len;
	d += e->payload_len;
	pb.props.data = (uint8_t *)d;
	pb.props.len = e->props_len;
	d += e->props_len;
	pb.origin_client.data = (uint8_t *)d;
	pb.origin_client.len = e->client_len;
	d += e->client_len;
	for (i = 0; i < e->n_groups; i++) {
		groups[i].len = (size_t)d[0] << 8 | d[1];
		groups[i].data = (uint8_t *)d + 2;
		d += 2 + groups[i].len;
	}
	pb.groups = groups;
	pb.n_groups = e->n_groups;
	pb.qos = e->qos;
	pb.retain = e->retain;
	pb.ack = true;
	env.body_case = MQD__ENVELOPE__BODY_PUBLISH;
	env.publish = &pb;
	rc = link_send(l, &env);
	if (rc == 0)
		c->fwd_stats.sent++;
	return rc;
}

void
fwd_pump(struct cluster *c, struct fwd_peer *p)
{
	struct member *m = fwd_member(c, p);
	struct fwd_entry *e, **pp;
	struct link *l;
	int rc;

	if (m == NULL || (l = m->link) == NULL || l->st != LINK_UP)
		return;
	while ((e = p->unsent) != NULL && !l->closing &&
	       link_queued(l) < FWD_WINDOW) {
		rc = fwd_send_one(c, l, e);
		if (rc == ERR_AGAIN) {
			for (pp = &p->head; *pp != e; pp = &(*pp)->next)
				;
			fwd_unlink(p, pp, e);
			c->fwd_stats.expired++;
			fwd_done(c, p, e, false);
			continue;
		}
		if (rc != 0)
			return;
		p->unsent = e->next;
	}
	cluster_out_trim(c);
}

void
fwd_link_up(struct cluster *c, struct member *m)
{
	struct fwd_peer *p = fwd_peer_get(c, m->node_id, false);

	if (p == NULL)
		return;
	p->m = m;
	m->fwd = p;
	p->unsent = p->head; /* what the old link carried may be lost */
	if (p->n > 0)
		cluster_log(c, CLUSTER_LOG_INFO,
		            "cluster outbox replay node=%s entries=%zu",
		            m->name, p->n);
	fwd_pump(c, p);
}

/* Appends a copy of @p msg to p's outbox. @return 0, ERR_LIMIT (full) or
 * ERR_NOMEM */
static int
fwd_append(struct cluster *c, struct fwd_peer *p, const struct cluster_msg *msg,
           void *cookie)
{
	size_t i, glen = 0, ng = 0;
	struct fwd_entry *e;
	uint8_t *d;

	if (p->n >= c->outbox_max ||
	    p->bytes + msg->payload.len > CLUSTER_OUTBOX_BYTES_MAX)
		return ERR_LIMIT;
	for (i = 0; i < msg->n_shares; i++) {
		if (msg->shares[i].node_id == p->node_id &&
		    ng < CLUSTER_GROUPS_MAX) {
			glen += 2 + msg->shares[i].key.len;
			ng++;
		}
	}
	e = malloc(sizeof(*e) + msg->topic.len + msg->payload.len +
	           msg->props.len + msg->origin_client.len + glen);
	if (e == NULL)
		return ERR_NOMEM;
	e->groups_len = (uint32_t)glen;
	e->n_groups = (uint16_t)ng;
	e->next = NULL;
	e->msg_id = msg->msg_id;
	e->expires_ms =
	        msg->expiry_s ? cluster_now_ms() + msg->expiry_s * 1000ull : 0;
	e->cookie = cookie;
	e->qos = msg->qos;
	e->retain = msg->retain;
	e->topic_len = (uint32_t)msg->topic.len;
	e->payload_len = (uint32_t)msg->payload.len;
	e->props_len = (uint32_t)msg->props.len;
	e->client_len = (uint32_t)msg->origin_client.len;
	d = e->data;
	if (msg->topic.len)
		memcpy(d, msg->topic.p, msg->topic.len);
	d += msg->topic.len;
	if (msg->payload.len)
		memcpy(d, msg->payload.p, msg->payload.len);
	d += msg->payload.len;
	if (msg->props.len)
		memcpy(d, msg->props.p, msg->props.len);
	d += msg->props.len;
	if (msg->origin_client.len)
		memcpy(d, msg->origin_client.p, msg->origin_client.len);
	d += msg->origin_client.len;
	for (i = 0, ng = 0; i < msg->n_shares && ng < e->n_groups; i++) {
		const struct cluster_share *sh = &msg->shares[i];
		if (sh->node_id != p->node_id)
			continue;
		d[0] = (uint8_t)(sh->key.len >> 8);
		d[1] = (uint8_t)sh->key.len;
		memcpy(d + 2, sh->key.p, sh->key.len);
		d += 2 + sh->key.len;
		ng++;
	}
	*p->tail = e;
	p->tail = &e->next;
	if (p->unsent == NULL)
		p->unsent = e;
	p->n++;
	p->bytes += fwd_entry_size(e);
	return 0;
}

int
fwd_queue(struct cluster *c, struct member *m, const struct cluster_msg *msg,
          void *cookie)
{
	struct fwd_peer *p = m->fwd;
	int rc;

	if (p == NULL) {
		p = fwd_peer_get(c, m->node_id, true);
		if (p == NULL)
			return ERR_NOMEM;
		p->m = m;
		m->fwd = p;
	}
	rc = fwd_append(c, p, msg, cookie);
	if (rc != 0) {
		c->fwd_stats.dropped++;
		cluster_log_limited(c, CLUSTER_LOG_WARN,
		                    "cluster outbox full node=%s entries=%zu "
		                    "dropped_total=%" PRIu64,
		                    m->name, p->n, c->fwd_stats.dropped);
		return rc;
	}
	fwd_pump(c, p);
	return 0;
}

int
cluster_outbox_restore(struct cluster *c, uint64_t node_id,
                       const struct cluster_msg *msg)
{
	struct fwd_peer *p;

	if (c == NULL)
		return ERR_NOMEM;
	p = fwd_peer_get(c, node_id, true);
	if (p == NULL)
		return ERR_NOMEM;
	if (p->n >= c->outbox_max)
		return ERR_LIMIT;
	return fwd_append(c, p, msg, NULL);
}

void
cluster_mark_restore(struct cluster *c, uint64_t origin, uint64_t msg_id)
{
	struct fwd_peer *p = c ? fwd_peer_get(c, origin, true) : NULL;

	if (p != NULL && msg_id > p->mark)
		p->mark = msg_id;
}

void
fwd_on_ack(struct link *l, const Mqd__PubAck *a)
{
	struct cluster *c = l->c;
	struct fwd_peer *p = l->m->fwd;
	struct fwd_entry **pp, *e;
	size_t i;

	if (p == NULL)
		return; /* nothing was sent to it */
	for (i = 0; i < a->n_msg_ids; i++) {
		/* acks come in the order sent: the head, but for entries
		 * that expired or a resend */
		for (pp = &p->head; (e = *pp) != NULL; pp = &e->next) {
			if (e->msg_id == a->msg_ids[i])
				break;
		}
		if (e == NULL)
			continue; /* acked before, on an older link */
		fwd_unlink(p, pp, e);
		c->fwd_stats.acked++;
		fwd_done(c, p, e, true);
	}
	fwd_pump(c, p);
}

bool
fwd_on_publish(struct link *l, uint64_t origin, uint64_t msg_id)
{
	struct fwd_peer *p = l->m->fwd;

	if (p == NULL) {
		p = fwd_peer_get(l->c, origin, true);
		if (p == NULL)
			return false; /* no memory: taken, acked later */
		p->m = l->m;
		l->m->fwd = p;
	}
	if (msg_id <= p->mark) {
		l->c->fwd_stats.dups++;
		return true;
	}
	p->mark = msg_id;
	return false;
}

/* Sends the acks gathered this turn, one frame per peer. */
static void
fwd_ack_cb(evutil_socket_t fd, short what, void *arg)
{
	Mqd__Envelope env = MQD__ENVELOPE__INIT;
	Mqd__PubAck pa = MQD__PUB_ACK__INIT;
	struct cluster *c = arg;
	struct fwd_peer *p;
	struct member *m;

	(void)fd;
	(void)what;
	for (p = c->fwd; p != NULL; p = p->next) {
		if (p->n_acks == 0)
			continue;
		m = fwd_member(c, p);
		if (m != NULL && m->link != NULL && m->link->st == LINK_UP) {
			pa.n_msg_ids = p->n_acks;
			pa.msg_ids = p->acks;
			env.body_case = MQD__ENVELOPE__BODY_PUB_ACK;
			env.pub_ack = &pa;
			link_send(m->link, &env);
		}
		/* not linked: the origin sends it again on the next link,
		 * and the duplicate is acked then */
		p->n_acks = 0;
	}
	cluster_out_trim(c);
}

void
cluster_forward_ack(struct cluster *c, uint64_t origin, uint64_t msg_id)
{
	struct fwd_peer *p;
	uint64_t *v;

	if (c == NULL || (p = fwd_peer_get(c, origin, false)) == NULL)
		return;
	if (p->n_acks == p->cap_acks) {
		size_t cap = p->cap_acks ? p->cap_acks * 2 : 64;
		v = realloc(p->acks, cap * sizeof(*v));
		if (v == NULL)
			return; /* the origin's resend gets the ack */
		p->acks = v;
		p->cap_acks = cap;
	}
	p->acks[p->n_acks++] = msg_id;
	if (c->ack_ev == NULL) {
		c->ack_ev = event_new(c->base, -1, 0, fwd_ack_cb, c);
		if (c->ack_ev == NULL) {
			p->n_acks--;
			return;
		}
	}
	event_active(c->ack_ev, 0, 0);
}

void
fwd_free_all(struct cluster *c)
{
	struct fwd_peer *p;
	struct fwd_entry *e;

	if (c->ack_ev != NULL)
		event_free(c->ack_ev);
	c->ack_ev = NULL;
	while ((p = c->fwd) != NULL) {
		c->fwd = p->next;
		while ((e = p->head) != NULL) {
			p->head = e->next;
			if (e->cookie != NULL &&
			    c->hooks.forward_forget != NULL)
				c->hooks.forward_forget(c->hooks.arg,
				                        e->cookie);
			fwd_entry_free(e);
		}
		free(p->acks);
		free(p);
	}
}

void
cluster_stats_get(struct cluster *c, struct cluster_stats *st)
{
	struct fwd_peer *p;

	memset(st, 0, sizeof(*st));
	if (c == NULL)
		return;
	*st = c->fwd_stats;
	for (p = c->fwd; p != NULL; p = p->next)
		st->outbox += p->n;
}

static bool
rtab_entry_has(const struct rtab_entry *e, uint32_t slot)
{
	uint32_t k;

	for (k = 0; e != NULL && k < e->n_nodes; k++)
		if (e->nodes[k] == slot)
			return true;
	return false;
}

size_t
cluster_share_nodes(struct cluster *c, struct mqtt_bytes key, uint64_t *out,
                    size_t max, bool down)
{
	const struct rtab_entry *e, *d;
	struct member *m;
	size_t n = 0, i;

	if (c == NULL)
		return 0;
	e = rtab_get(&c->shared, key);
	/* by slot, so every call lists them in the same order */
	for (i = 0; e != NULL && i < c->n_members && n < max; i++) {
		m = c->members[i];
		if (m->self || m->state > CLUSTER_SUSPECT || m->link == NULL ||
		    m->link->st != LINK_UP)
			continue;
		if (rtab_entry_has(e, m->slot))
			out[n++] = m->node_id;
	}
	if (n > 0 || !down || (d = rtab_get(&c->shared_durable, key)) == NULL)
		return n;
	/* no linked node has a member, but nodes that are down or cut off
	 * have persistent ones: the message waits in the outbox for one of
	 * them, as it would for a persistent session's own subscription */
	for (i = 0; i < c->n_members && n < max; i++) {
		m = c->members[i];
		if (!m->self && rtab_entry_has(d, m->slot))
			out[n++] = m->node_id;
	}
	return n;
}

struct share_match_ctx {
	void (*fn)(void *arg, struct mqtt_bytes key);
	void *arg;
};

static void
share_match_one(void *arg, const struct rtab_entry *e)
{
	struct share_match_ctx *x = arg;

	x->fn(x->arg, (struct mqtt_bytes){ e->filter, e->len });
}

struct share_durable_ctx {
	struct share_match_ctx x;
	struct cluster *c;
};

/* A durable group that no node holds now (its members' nodes are down). */
static void
share_match_durable(void *arg, const struct rtab_entry *e)
{
	struct share_durable_ctx *d = arg;
	struct mqtt_bytes key = { e->filter, e->len };

	if (rtab_get(&d->c->shared, key) == NULL)
		d->x.fn(d->x.arg, key);
}

void
cluster_share_match(struct cluster *c, struct mqtt_bytes topic,
                    void (*fn)(void *arg, struct mqtt_bytes key), void *arg)
{
	struct share_durable_ctx d = { { fn, arg }, c };

	if (c == NULL)
		return;
	if (c->shared.n_entries > 0)
		rtab_match_shared(&c->shared, topic, share_match_one, &d.x);
	if (c->shared_durable.n_entries > 0)
		rtab_match_shared(&c->shared_durable, topic,
		                  share_match_durable, &d);
}

size_t
cluster_backlog(struct cluster *c)
{
	struct fwd_peer *p;
	size_t max = 0;

	if (c == NULL)
		return 0;
	for (p = c->fwd; p != NULL; p = p->next) {
		if (p->n > max && p->m != NULL && p->m->link != NULL &&
		    p->m->link->st == LINK_UP)
			max = p->n;
	}
	return max;
}
