/*
 * The broker side of the cluster: starts cluster/ with this node's hooks,
 * counts the local subscriptions per topic filter (a filter's first one
 * and its last one are route changes the peers hear about, and so is
 * whether a persistent session holds it), forwards the messages published
 * here to the nodes whose routes match, and hands the peers' messages to
 * the local subscribers.
 *
 * QoS >= 1 forwards are acknowledged: each waits in the peer's outbox
 * (cluster/fwd.c in memory, written here to storage) until the peer says
 * it queued it. Under durability sync the publisher's PUBACK / PUBREC
 * also waits for those acks (struct mesh_wait), at most
 * forward_timeout_ms, after which the outbox on disk carries the message.
 * A peer's forward is acked once what it queued here is durable, and the
 * highest one taken from each origin is stored with it (persist_mark), so
 * that a resend after a restart is known as a duplicate.
 */
#include "broker/node.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "broker/admin.h"

#include "cluster/cluster.h"

/* Shared groups one message is assigned to peers for, at most (as
 * cluster's CLUSTER_GROUPS_MAX). */
#define MESH_SHARES_MAX 64
/* Peers with members of one group considered, at most. */
#define MESH_SHARE_NODES 64

/* A linked peer with this many forwards unacknowledged slows the
 * publishers down (their acks wait for the peers'). */
#define MESH_FLOW_HIGH 2000

/* One topic filter with local subscribers. */
struct mesh_route {
	struct mesh_route *next;
	uint32_t hash;
	uint32_t refs;    /* local subscriptions on it */
	uint32_t durable; /* of those, persistent sessions' */
	uint16_t len;
	char filter[];
};

/* A publisher's ack waiting for peers' acks (mesh_wait_attach). */
struct mesh_wait {
	struct mesh_wait *prev; /* mesh.waits, in deadline order */
	struct mesh_wait *next;
	struct conn_ack *a; /* NULL once released */
	uint64_t deadline_ms;
	uint32_t left; /* acks still to come */
	uint32_t refs; /* outbox entries holding it */
	bool listed;   /* in mesh.waits: freed once neither */
};

/* A CONNECT waiting for the other nodes to hand its client id over. */
struct mesh_park {
	struct mesh_park *next;
	struct conn *c;
	uint64_t req;
	uint64_t stamp; /* cluster clock when it asked */
};

/* A peer's forward to ack once what it queued here is durable. */
struct mesh_fack {
	struct node *n;
	uint64_t origin;
	uint64_t msg_id;
};

/* A retained message cleared (empty payload) and when: a peer's older
 * copy must not bring it back. Kept in memory only. */
struct mesh_tomb {
	struct mesh_tomb *next;
	uint64_t stamp;
	uint64_t origin;
	uint16_t len;
	char topic[];
};

struct mesh {
	struct cluster *c;
	struct mesh_route **slots; /* chained, power-of-two count */
	size_t cap;
	size_t n;
	struct mesh_tomb *tombs; /* list: clears are rare */
	size_t n_tombs;
	struct mesh_wait *waits; /* waiting publisher acks, oldest first */
	struct mesh_wait *waits_tail;
	struct event *wait_ev;    /* the oldest one's deadline */
	struct mesh_wait *spare;  /* one kept for the next publish: most
	                           * publishes end up not needing theirs */
	struct mesh_park *parked; /* CONNECTs waiting for a takeover */
	/* shared groups of the message being published, assigned to peers
	 * (keys borrowed for the publish) */
	struct cluster_share assign[MESH_SHARES_MAX];
	size_t n_assign;
	struct buf gbuf; /* mesh_groups_put */
};

/* At most this many tombstones are kept; the oldest go first. */
#define MESH_TOMBS_MAX 10000

static uint32_t
mesh_hash(struct mqtt_bytes f)
{
	uint32_t h = 2166136261u;
	size_t i;

	for (i = 0; i < f.len; i++)
		h = (h ^ f.p[i]) * 16777619u;
	return h;
}

static struct mesh_route **
mesh_slot(struct mesh *m, struct mqtt_bytes f, uint32_t h)
{
	struct mesh_route **pp = &m->slots[h & (m->cap - 1)];

	for (; *pp; pp = &(*pp)->next)
		if ((*pp)->hash == h && (*pp)->len == f.len &&
		    memcmp((*pp)->filter, f.p, f.len) == 0)
			break;
	return pp;
}

static int
mesh_grow(struct mesh *m)
{
	size_t cap = m->cap ? m->cap * 2 : 256, i;
	struct mesh_route **slots = calloc(cap, sizeof(*slots)), *r, *next;

	if (!slots)
		return ERR_NOMEM;
	for (i = 0; i < m->cap; i++) {
		for (r = m->slots[i]; r; r = next) {
			next = r->next;
			r->next = slots[r->hash & (cap - 1)];
			slots[r->hash & (cap - 1)] = r;
		}
	}
	free(m->slots);
	m->slots = slots;
	m->cap = cap;
	return 0;
}

static void
mesh_route_ref(struct node *n, struct mqtt_bytes filter, int delta,
               bool durable)
{
	struct mesh *m = n->mesh;
	struct mesh_route **pp, *r;
	struct mqtt_bytes f;
	bool shared;
	uint32_t h;

	if (!m)
		return;
	/* a shared subscription routes on its key, "$share/{name}/{filter}":
	 * the peers give each message to one node of the group */
	if (share_parse(filter, &shared, &f))
		return;
	f = filter;
	if (m->n + 1 > m->cap && mesh_grow(m)) {
		log_error("cluster route table out of memory");
		return;
	}
	h = mesh_hash(f);
	pp = mesh_slot(m, f, h);
	r = *pp;
	if (delta > 0) {
		if (r) {
			r->refs++;
			if (durable && r->durable++ == 0 && m->c)
				cluster_route_durable(m->c, f, true);
			return;
		}
		r = malloc(sizeof(*r) + f.len);
		if (!r) {
			log_error("cluster route table out of memory");
			return;
		}
		r->next = NULL;
		r->hash = h;
		r->refs = 1;
		r->durable = durable;
		r->len = (uint16_t)f.len;
		memcpy(r->filter, f.p, f.len);
		*pp = r;
		m->n++;
		if (m->c)
			cluster_route_add(m->c, f, durable);
		return;
	}
	if (!r)
		return;
	if (durable && r->durable)
		r->durable--;
	if (--r->refs) {
		if (durable && !r->durable && m->c)
			cluster_route_durable(m->c, f, false);
		return;
	}
	*pp = r->next;
	m->n--;
	if (m->c)
		cluster_route_del(m->c, f);
	free(r);
}

void
mesh_sub_ref(struct sess *s, struct mqtt_bytes filter, int delta)
{
	mesh_route_ref(s->node, filter, delta, s->routes_durable);
}

void
mesh_sess_durable(struct sess *s)
{
	bool durable = s->expiry != 0;
	struct sess_sub *sub;

	if (durable == s->routes_durable)
		return;
	for (sub = s->subs; sub; sub = sub->next) {
		struct mqtt_bytes f = { (const uint8_t *)sub->filter,
			                sub->len };
		/* the new one first: the filter keeps a reference */
		mesh_route_ref(s->node, f, +1, durable);
		mesh_route_ref(s->node, f, -1, !durable);
	}
	s->routes_durable = durable;
}

/* The Message Expiry a peer gets: the seconds left, at least 1 (0 would
 * mean none), or 0 for a message without expiry. */
static uint32_t
mesh_expiry_s(const struct msg *m)
{
	uint32_t left;

	if (!m->expiry_ms)
		return 0;
	left = msg_expiry_left_s(m, node_now_ms());
	return left ? left : 1;
}

/* @p m, published on this node, as cluster forwards it. */
static void
mesh_msg(const struct node *n, const struct msg *m, struct cluster_msg *cm)
{
	memset(cm, 0, sizeof(*cm));
	cm->origin_node = n->node_id;
	cm->msg_id = m->id;
	cm->topic = msg_topic(m);
	cm->payload = msg_payload(m);
	cm->props = msg_props(m);
	cm->qos = m->qos;
	cm->retain = m->retain;
	cm->expiry_s = mesh_expiry_s(m);
}

/* An outbox entry lets @p w go. */
static void
mesh_wait_unref(struct mesh_wait *w)
{
	if (!--w->refs && !w->listed)
		free(w);
}

static void
mesh_wait_unlist(struct mesh *ms, struct mesh_wait *w)
{
	if (!w->listed)
		return;
	w->listed = false;
	if (w->prev)
		w->prev->next = w->next;
	else
		ms->waits = w->next;
	if (w->next)
		w->next->prev = w->prev;
	else
		ms->waits_tail = w->prev;
	if (!w->refs)
		free(w);
}

/* Lets the publisher's ack go (the peers acked, or the time is up). */
static void
mesh_wait_release(struct mesh *ms, struct mesh_wait *w)
{
	struct conn_ack *a = w->a;

	w->a = NULL;
	if (a)
		conn_ack_ready(a, 0);
	mesh_wait_unlist(ms, w);
}

static void
mesh_wait_arm(struct mesh *ms)
{
	uint64_t now = node_now_ms(), ms_left;
	struct timeval tv;

	if (!ms->waits)
		return;
	ms_left =
	        ms->waits->deadline_ms > now ? ms->waits->deadline_ms - now : 0;
	tv.tv_sec = (time_t)(ms_left / 1000);
	tv.tv_usec = (suseconds_t)(ms_left % 1000) * 1000;
	event_add(ms->wait_ev, &tv);
}

static void
mesh_on_wait_timer(evutil_socket_t fd, short what, void *arg)
{
	struct node *n = arg;
	struct mesh *ms = n->mesh;
	uint64_t now = node_now_ms();

	(void)fd;
	(void)what;
	while (ms->waits && ms->waits->deadline_ms <= now) {
		n->stats.cluster_ack_timeouts++;
		mesh_wait_release(ms, ms->waits);
	}
	mesh_wait_arm(ms);
}

void
mesh_wait_attach(struct node *n, struct mesh_wait *w, struct conn_ack *a)
{
	struct mesh *ms = n->mesh;

	if (!a)
		return; /* nothing to hold: the entries let it go */
	conn_ack_hold(a);
	w->a = a;
	w->deadline_ms = node_now_ms() + n->cfg->cluster_forward_timeout_ms;
	w->listed = true;
	w->next = NULL;
	w->prev = ms->waits_tail;
	if (ms->waits_tail)
		ms->waits_tail->next = w;
	else
		ms->waits = w;
	ms->waits_tail = w;
	if (ms->waits == w)
		mesh_wait_arm(ms);
}

/* cluster_hooks.forward_done: a peer acked a forward (or it expired). */
static void
mesh_on_forward_done(void *arg, uint64_t node_id, uint64_t msg_id, void *cookie,
                     bool acked)
{
	struct node *n = arg;
	struct mesh_wait *w = cookie;

	(void)acked;
	persist_outbox_del(n, node_id, msg_id);
	if (!w)
		return;
	w->refs--; /* this entry's */
	if (w->left && !--w->left && w->a)
		mesh_wait_release(n->mesh, w); /* may free it */
	else if (!w->refs && !w->listed)
		free(w);
}

/* cluster_hooks.forward_forget: the outboxes are freed (stop). */
static void
mesh_on_forward_forget(void *arg, void *cookie)
{
	(void)arg;
	mesh_wait_unref(cookie);
}

/* Assigns group @p key of message @p m to peer @p node. */
static void
mesh_assign(struct mesh *ms, uint64_t node, struct mqtt_bytes key)
{
	if (ms->n_assign == MESH_SHARES_MAX) {
		log_warn("shared group not served key_len=%zu reason=\"more "
		         "than %d groups match one message\"",
		         key.len, MESH_SHARES_MAX);
		return;
	}
	ms->assign[ms->n_assign].node_id = node;
	ms->assign[ms->n_assign++].key = key;
}

bool
mesh_share_here(struct node *n, struct mqtt_bytes key, const struct msg *m)
{
	uint64_t ids[MESH_SHARE_NODES];
	struct mesh *ms = n->mesh;
	size_t k, turn;

	if (!ms || !ms->c)
		return true;
	/* members here take turns with linked peers only: the ones of a
	 * node that is down wait for it in the outbox, these are here */
	k = cluster_share_nodes(ms->c, key, ids, MESH_SHARE_NODES, false);
	if (!k)
		return true;
	/* this node and the k peers take turns, by message id */
	turn = (size_t)(m->id % (k + 1));
	if (turn == 0)
		return true;
	mesh_assign(ms, ids[turn - 1], key);
	return false;
}

struct mesh_share_ctx {
	struct node *n;
	const struct msg *m;
};

/* A peer's group matching the message: one with no member here goes to
 * one of the peers that have members (the local ones were decided while
 * routing). */
static void
mesh_on_share_match(void *arg, struct mqtt_bytes key)
{
	struct mesh_share_ctx *x = arg;
	uint64_t ids[MESH_SHARE_NODES];
	size_t k;

	if (share_exists(x->n, key))
		return;
	k = cluster_share_nodes(x->n->mesh->c, key, ids, MESH_SHARE_NODES,
	                        true);
	if (k)
		mesh_assign(x->n->mesh, ids[x->m->id % k], key);
}

/* The groups of this publish assigned to @p peer, encoded for its outbox
 * entry on disk: each a u16 length and the key. A view into ms->gbuf;
 * empty when there are none (or no memory: then a restart forgets them). */
static struct mqtt_bytes
mesh_groups_put(struct mesh *ms, uint64_t peer)
{
	size_t i;

	buf_reset(&ms->gbuf);
	for (i = 0; i < ms->n_assign; i++) {
		if (ms->assign[i].node_id != peer ||
		    ms->assign[i].key.len > UINT16_MAX)
			continue;
		buf_put_u16(&ms->gbuf, (uint16_t)ms->assign[i].key.len);
		buf_put_bytes(&ms->gbuf, ms->assign[i].key.p,
		              ms->assign[i].key.len);
	}
	if (buf_failed(&ms->gbuf))
		return (struct mqtt_bytes){ NULL, 0 };
	return (struct mqtt_bytes){ ms->gbuf.data, ms->gbuf.len };
}

/* Decodes what mesh_groups_put wrote into @p out (at most
 * MESH_SHARES_MAX, views into @p g), for node @p peer. @return how many */
static size_t
mesh_groups_get(const uint8_t *g, size_t len, uint64_t peer,
                struct cluster_share *out)
{
	struct rd r;
	const uint8_t *p;
	uint16_t k;
	size_t n = 0;

	rd_init(&r, g, len);
	while (n < MESH_SHARES_MAX && rd_u16(&r, &k) == 0 &&
	       rd_bytes(&r, k, &p) == 0) {
		out[n].node_id = peer;
		out[n++].key = (struct mqtt_bytes){ p, k };
	}
	return n;
}

size_t
mesh_forward(struct node *n, struct msg *m, struct mesh_wait **wait)
{
	struct cluster_fwd f;
	struct cluster_msg cm;
	struct mesh_wait *w = NULL;
	size_t i, sent;

	if (!n->mesh || !cluster_has_peers(n->mesh->c))
		return 0; /* a node alone: nothing to forward */
	/* the publisher's ack waits for the peers under durability sync,
	 * and whenever a linked peer falls behind (flow control: publishers
	 * slow down to what the links carry instead of filling the outbox
	 * until it drops) */
	if (wait && m->qos && n->cfg->cluster_forward_timeout_ms &&
	    ((persist_on(n) && n->cfg->durability == CONFIG_DURABILITY_SYNC) ||
	     cluster_backlog(n->mesh->c) >= MESH_FLOW_HIGH)) {
		w = n->mesh->spare ? n->mesh->spare : malloc(sizeof(*w));
		n->mesh->spare = NULL;
		if (w)
			memset(w, 0, sizeof(*w));
		else
			log_error("cluster publish: out of memory, the ack "
			          "does not wait for the peers");
	}
	mesh_msg(n, m, &cm);
	if (n->mesh->c) {
		struct mesh_share_ctx x = { n, m };
		cluster_share_match(n->mesh->c, cm.topic, mesh_on_share_match,
		                    &x);
	}
	cm.shares = n->mesh->assign;
	cm.n_shares = n->mesh->n_assign;
	sent = cluster_publish(n->mesh->c, &cm, w, &f);
	n->stats.cluster_forwarded += sent;
	for (i = 0; i < f.n_peers; i++)
		persist_outbox_put(n, f.peers[i], m,
		                   mesh_groups_put(n->mesh, f.peers[i]));
	n->mesh->n_assign = 0;
	if (w) {
		if (f.waiting) {
			w->left = (uint32_t)f.waiting;
			w->refs = (uint32_t)f.waiting;
			*wait = w;
		} else if (!n->mesh->spare) {
			n->mesh->spare = w; /* no peer holds it */
		} else {
			free(w);
		}
	}
	return f.n_peers > sent ? f.n_peers : sent;
}

static void
mesh_fack_done(void *arg, int err)
{
	struct mesh_fack *fa = arg;
	struct node *n = fa->n;

	/* not durable (err): no ack, the origin sends it again on its
	 * next link */
	if (!err && n->mesh)
		cluster_forward_ack(n->mesh->c, fa->origin, fa->msg_id);
	free(fa);
}

/* Acks a peer's forward once every change made so far is durable. */
static void
mesh_ack_after_commit(struct node *n, uint64_t origin, uint64_t msg_id)
{
	struct mesh_fack *fa = malloc(sizeof(*fa));
	struct conn_ack *a = fa ? conn_ack_call(mesh_fack_done, fa) : NULL;

	if (!a) {
		free(fa);
		log_error("cluster forward not acked: out of memory");
		return;
	}
	fa->n = n;
	fa->origin = origin;
	fa->msg_id = msg_id;
	persist_barrier(n, a);
}

/* cluster_hooks.deliver: a peer's message for the local subscribers. */
static void
mesh_on_deliver(void *arg, const struct cluster_msg *cm)
{
	struct mqtt_bytes keys[MESH_SHARES_MAX];
	struct node *n = arg;
	uint64_t writes = n->persist_writes;
	struct msg *m;
	size_t i;

	if (cm->dup) {
		/* taken before: ack once what it queued is durable */
		n->stats.cluster_duplicates++;
		mesh_ack_after_commit(n, cm->origin_node, cm->msg_id);
		return;
	}
	m = msg_new(cm->topic, cm->payload, cm->props, cm->qos, cm->retain);
	if (!m) {
		log_error("cluster message dropped: out of memory");
		return;
	}
	m->id = ++n->next_msg_id;
	if (cm->expiry_s)
		m->expiry_ms = node_now_ms() + cm->expiry_s * 1000ull;
	n->stats.cluster_received++;
	for (i = 0; i < cm->n_shares; i++)
		keys[i] = cm->shares[i].key;
	/* local subscribers only, never sent on; of the shared groups, those
	 * the origin gave this node */
	n->share_mode = NODE_SHARE_ONLY;
	n->share_keys = keys;
	n->n_share_keys = cm->n_shares;
	router_publish(n, m);
	n->share_mode = NODE_SHARE_LOCAL;
	n->share_keys = NULL;
	n->n_share_keys = 0;
	msg_unref(m);
	if (!cm->ack)
		return;
	if (writes == n->persist_writes) {
		/* nothing stored: queued in memory only, acked now */
		cluster_forward_ack(n->mesh->c, cm->origin_node, cm->msg_id);
		return;
	}
	persist_mark(n, cm->origin_node, cm->msg_id);
	mesh_ack_after_commit(n, cm->origin_node, cm->msg_id);
}

static struct mesh_tomb **
mesh_tomb_find(struct mesh *m, struct mqtt_bytes t)
{
	struct mesh_tomb **pp;

	for (pp = &m->tombs; *pp; pp = &(*pp)->next)
		if ((*pp)->len == t.len &&
		    memcmp((*pp)->topic, t.p, t.len) == 0)
			break;
	return pp;
}

/* Records (or forgets, @p stamp 0) the clearing of topic @p t. */
static void
mesh_tomb_set(struct mesh *m, struct mqtt_bytes t, uint64_t stamp,
              uint64_t origin)
{
	struct mesh_tomb **pp = mesh_tomb_find(m, t), *tb = *pp;

	if (tb && !stamp) {
		*pp = tb->next;
		free(tb);
		m->n_tombs--;
		return;
	}
	if (!stamp)
		return;
	if (!tb) {
		if (m->n_tombs >= MESH_TOMBS_MAX) {
			/* drop the oldest (the list's tail) */
			struct mesh_tomb **last = &m->tombs;
			while ((*last)->next)
				last = &(*last)->next;
			free(*last);
			*last = NULL;
			m->n_tombs--;
		}
		tb = malloc(sizeof(*tb) + t.len);
		if (!tb)
			return;
		tb->len = (uint16_t)t.len;
		memcpy(tb->topic, t.p, t.len);
		tb->next = m->tombs;
		m->tombs = tb;
		m->n_tombs++;
	}
	tb->stamp = stamp;
	tb->origin = origin;
}

uint64_t
mesh_stamp(struct node *n)
{
	return cluster_hlc_now(n->mesh ? n->mesh->c : NULL);
}

void
mesh_retained(struct node *n, const struct msg *m)
{
	struct cluster_retained r;

	if (!n->mesh)
		return;
	memset(&r, 0, sizeof(r));
	r.topic = msg_topic(m);
	r.payload = msg_payload(m);
	r.props = msg_props(m);
	r.qos = m->qos;
	r.stamp = m->stamp;
	r.origin_node = n->node_id;
	r.expiry_s = mesh_expiry_s(m);
	mesh_tomb_set(n->mesh, r.topic, m->payload_len ? 0 : m->stamp,
	              n->node_id);
	cluster_retained_set(n->mesh->c, &r);
}

/* True when a change stamped (@p stamp, @p origin) is newer than one
 * stamped (@p cur, @p cur_origin): last writer wins, ties by node id. */
static bool
mesh_newer(uint64_t stamp, uint64_t origin, uint64_t cur, uint64_t cur_origin)
{
	return stamp > cur || (stamp == cur && origin > cur_origin);
}

/* cluster_hooks.retained_apply: a peer's retained change. */
static int
mesh_on_retained(void *arg, const struct cluster_retained *r)
{
	struct node *n = arg;
	struct mesh_tomb *tb = *mesh_tomb_find(n->mesh, r->topic);
	struct msg *cur = retain_get(n->retained, r->topic), *m;

	if (cur && !mesh_newer(r->stamp, r->origin_node, cur->stamp, 0))
		return 0;
	if (tb && !mesh_newer(r->stamp, r->origin_node, tb->stamp, tb->origin))
		return 0;
	m = msg_new(r->topic, r->payload, r->props, r->qos, true);
	if (!m)
		return ERR_NOMEM;
	m->id = ++n->next_msg_id;
	m->stamp = r->stamp;
	if (r->expiry_s)
		m->expiry_ms = node_now_ms() + r->expiry_s * 1000ull;
	if (retain_set(n->retained, m)) {
		msg_unref(m);
		return ERR_NOMEM;
	}
	persist_retained(n, m);
	mesh_tomb_set(n->mesh, r->topic, r->payload.len ? 0 : r->stamp,
	              r->origin_node);
	msg_unref(m);
	return 0;
}

struct mesh_each_ctx {
	struct node *n;
	void (*fn)(void *ctx, const struct cluster_retained *r);
	void *ctx;
};

static void
mesh_each_retained_one(struct msg *m, void *arg)
{
	struct mesh_each_ctx *e = arg;
	struct cluster_retained r;

	memset(&r, 0, sizeof(r));
	r.topic = msg_topic(m);
	r.payload = msg_payload(m);
	r.props = msg_props(m);
	r.qos = m->qos;
	r.stamp = m->stamp;
	r.origin_node = e->n->node_id;
	if (m->expiry_ms && !msg_expiry_left_s(m, node_now_ms()))
		return; /* expired: not handed over */
	r.expiry_s = mesh_expiry_s(m);
	e->fn(e->ctx, &r);
}

/* cluster_hooks.each_retained: this node's retained set and tombstones,
 * for a peer whose link just came up. */
static void
mesh_each_retained(void *arg,
                   void (*fn)(void *ctx, const struct cluster_retained *r),
                   void *ctx)
{
	struct node *n = arg;
	struct mesh_each_ctx e = { n, fn, ctx };
	struct cluster_retained r;
	struct mesh_tomb *tb;

	retain_match(n->retained,
	             (struct mqtt_bytes){ (const uint8_t *)"#", 1 },
	             mesh_each_retained_one, &e);
	for (tb = n->mesh->tombs; tb; tb = tb->next) {
		memset(&r, 0, sizeof(r));
		r.topic = (struct mqtt_bytes){ (const uint8_t *)tb->topic,
			                       tb->len };
		r.stamp = tb->stamp;
		r.origin_node = tb->origin;
		fn(ctx, &r);
	}
}

/* cluster_hooks.each_route: the snapshot for a (re)connected peer. */
static void
mesh_each_route(void *arg,
                void (*fn)(void *ctx, struct mqtt_bytes filter, bool durable),
                void *ctx)
{
	struct node *n = arg;
	struct mesh_route *r;
	size_t i;

	for (i = 0; i < n->mesh->cap; i++)
		for (r = n->mesh->slots[i]; r; r = r->next)
			fn(ctx,
			   (struct mqtt_bytes){ (const uint8_t *)r->filter,
			                        r->len },
			   r->durable > 0);
}

static void
mesh_on_log(void *arg, int level, const char *line)
{
	(void)arg;
	switch (level) {
	case 0:
		log_debug("%s", line);
		break;
	case 1:
		log_info("%s", line);
		break;
	case 2:
		log_warn("%s", line);
		break;
	default:
		log_error("%s", line);
		break;
	}
}

static void
mesh_count_session(struct sess *s, void *arg)
{
	struct sess_sub *sub;

	(void)arg;
	for (sub = s->subs; sub; sub = sub->next)
		mesh_sub_ref(s,
		             (struct mqtt_bytes){ (const uint8_t *)sub->filter,
		                                  sub->len },
		             +1);
}

/* ---- cluster-wide client ids ---- */

uint64_t
mesh_takeover(struct node *n, struct conn *c, const char *id, size_t len,
              bool clean)
{
	struct mesh *ms = n->mesh;
	struct mesh_park *pk;
	uint64_t stamp;

	if (!ms || !ms->c)
		return 0;
	pk = malloc(sizeof(*pk));
	if (!pk)
		return 0; /* no memory: this node's view alone */
	stamp = cluster_hlc_now(ms->c);
	pk->req = cluster_takeover(
	        ms->c, (struct mqtt_bytes){ (const uint8_t *)id, len }, clean,
	        stamp);
	if (!pk->req) {
		free(pk);
		return 0;
	}
	pk->c = c;
	pk->stamp = stamp;
	pk->next = ms->parked;
	ms->parked = pk;
	return pk->req;
}

/* Takes the park record of @p c (or of request @p req) out of the list. */
static struct mesh_park *
mesh_park_take(struct mesh *ms, const struct conn *c, uint64_t req)
{
	struct mesh_park **pp, *pk;

	for (pp = &ms->parked; (pk = *pp); pp = &pk->next) {
		if (pk->c == c || (!c && pk->req == req)) {
			*pp = pk->next;
			return pk;
		}
	}
	return NULL;
}

void
mesh_takeover_cancel(struct node *n, struct conn *c, uint64_t req)
{
	struct mesh_park *pk;

	if (!n->mesh)
		return;
	pk = mesh_park_take(n->mesh, c, 0);
	free(pk);
	cluster_takeover_cancel(n->mesh->c, req);
}

/* cluster_hooks.takeover_done */
static void
mesh_on_takeover_done(void *arg, uint64_t req, bool refused,
                      struct mqtt_bytes session)
{
	struct node *n = arg;
	struct mesh_park *pk = mesh_park_take(n->mesh, NULL, req);
	struct conn *c;

	if (!pk)
		return;
	c = pk->c;
	free(pk);
	conn_takeover_done(c, refused, session);
}

/* cluster_hooks.takeover: node @p from_node takes client id @p idb over. */
static bool
mesh_on_takeover(void *arg, struct mqtt_bytes idb, bool clean, uint64_t stamp,
                 uint64_t from_node, struct buf *out, size_t max)
{
	struct node *n = arg;
	struct mesh *ms = n->mesh;
	const char *id = (const char *)idb.p;
	struct mesh_park *pk;
	struct sess *s;
	size_t len;
	int rc;

	for (pk = ms->parked; pk; pk = pk->next) {
		const char *pid = conn_parked_id(pk->c, &len);
		if (pid && len == idb.len && !memcmp(pid, id, len))
			break;
	}
	if (pk) {
		/* both nodes take it over at once: the later CONNECT wins */
		if (pk->stamp > stamp ||
		    (pk->stamp == stamp && n->node_id > from_node))
			return false;
		mesh_park_take(ms, pk->c, 0);
		cluster_takeover_cancel(ms->c, pk->req);
		conn_takeover_lost(pk->c);
		free(pk);
	}
	s = sess_find(n, id, idb.len);
	if (!s)
		return true;
	if (s->conn)
		/* [MQTT-3.1.4-3] the old connection ends: v5 tells it 0x8E,
		 * its will goes */
		conn_take_over(s->conn, "session taken over on another node");
	if (clean || !s->expiry) {
		sess_end(s);
		return true;
	}
	rc = handoff_export(s, out, true);
	if (rc || out->len > max) {
		buf_reset(out);
		log_warn("session handed over without its queue client=%s "
		         "queued=%u reason=\"%s\"",
		         s->client_id, s->n_queued,
		         rc ? err_str(rc) : "too large");
		rc = handoff_export(s, out, false);
	}
	if (rc || out->len > max) {
		/* the new connection starts without it: say so, not that
		 * it was handed over */
		buf_reset(out);
		log_error("session not handed over client=%s to_node=%016llx "
		          "reason=\"%s\"",
		          s->client_id, (unsigned long long)from_node,
		          rc ? err_str(rc) : "too large");
	} else {
		log_info("session handed over client=%s to_node=%016llx",
		         s->client_id, (unsigned long long)from_node);
	}
	/* it lives on there: no will, no expiry here */
	persist_session_del(s);
	sess_destroy(s);
	return true;
}

static void
mesh_restore_mark(void *arg, uint64_t origin, uint64_t msg_id)
{
	cluster_mark_restore(arg, origin, msg_id);
}

/* Hands the outbox entries and marks loaded from storage to cluster. */
static int
mesh_restore(struct node *n)
{
	struct cluster_share shares[MESH_SHARES_MAX];
	struct cluster *c = n->mesh->c;
	struct cluster_msg cm;
	size_t i, dropped = 0;

	for (i = 0; i < n->n_obox_load; i++) {
		struct persist_obox *o = &n->obox_load[i];
		struct msg *m = o->m;
		mesh_msg(n, m, &cm);
		/* the groups it was for, so that the peer still gives it to
		 * one of their members */
		cm.shares = shares;
		cm.n_shares = mesh_groups_get(o->groups, o->groups_len, o->peer,
		                              shares);
		if (cluster_outbox_restore(c, n->obox_load[i].peer, &cm) != 0) {
			/* over outbox_max (lowered since): dropped */
			persist_outbox_del(n, n->obox_load[i].peer, m->id);
			dropped++;
		}
		msg_unref(m);
		free(o->groups);
	}
	if (dropped)
		log_warn("cluster outbox entries dropped at start count=%zu "
		         "reason=\"outbox_max\"",
		         dropped);
	n->n_obox_load = 0;
	free(n->obox_load);
	n->obox_load = NULL;
	n->cap_obox_load = 0;
	return persist_load_marks(n, mesh_restore_mark, c);
}

int
mesh_start(struct node *n)
{
	const struct config *cfg = n->cfg;
	struct cluster_config cc;
	struct cluster_hooks h;
	struct mesh *m;
	char admin[320];
	int rc;

	m = calloc(1, sizeof(*m));
	if (!m || mesh_grow(m)) {
		free(m);
		return ERR_NOMEM;
	}
	buf_init(&m->gbuf);
	memset(&cc, 0, sizeof(cc));
	cc.node_name = cfg->node_name;
	cc.node_id = n->node_id;
	cc.bind = cfg->cluster_bind;
	cc.port = cfg->cluster_port;
	cc.advertise = cfg->cluster_advertise;
	cc.seeds = cfg->cluster_seeds;
	cc.secret = cfg->cluster_secret;
	cc.outbox_max = cfg->cluster_outbox_max;
	admin_addr_for(n, admin, sizeof(admin));
	cc.admin_addr = admin;
	memset(&h, 0, sizeof(h));
	h.arg = n;
	h.deliver = mesh_on_deliver;
	h.each_route = mesh_each_route;
	h.retained_apply = mesh_on_retained;
	h.each_retained = mesh_each_retained;
	h.forward_done = mesh_on_forward_done;
	h.forward_forget = mesh_on_forward_forget;
	h.takeover = mesh_on_takeover;
	h.takeover_done = mesh_on_takeover_done;
	h.log = mesh_on_log;
	n->mesh = m;
	/* the subscriptions loaded from storage are routes already */
	sess_foreach(n, mesh_count_session, n);
	m->wait_ev = event_new(n->base, -1, 0, mesh_on_wait_timer, n);
	if (!m->wait_ev) {
		mesh_stop(n);
		return ERR_NOMEM;
	}
	rc = cluster_start(n->base, &cc, &h, &m->c);
	if (rc) {
		mesh_stop(n); /* cluster_start logged the cause */
		return rc;
	}
	rc = mesh_restore(n);
	if (rc) {
		log_error("cannot restore the cluster outbox err=\"%s\"",
		          err_str(rc));
		mesh_stop(n);
		return rc;
	}
	log_info("cluster link listening node=%s bind=%s port=%u seeds=\"%s\"",
	         cfg->node_name, cfg->cluster_bind, cfg->cluster_port,
	         cfg->cluster_seeds);
	if (!cfg->cluster_secret[0] && strcmp(cfg->cluster_bind, "127.0.0.1") &&
	    strcmp(cfg->cluster_bind, "::1"))
		log_warn("cluster link open without a secret: any host that "
		         "reaches %s:%u can join and receive messages; set "
		         "[cluster] secret (MQD_CLUSTER_SECRET)",
		         cfg->cluster_bind, cfg->cluster_port);
	return 0;
}

void
mesh_stop(struct node *n)
{
	struct mesh *m = n->mesh;
	struct mesh_route *r, *next;
	size_t i;

	if (!m)
		return;
	cluster_stop(m->c); /* tells the peers this node leaves; NULL: no-op */
	while (m->waits)    /* the publishers' acks go (their commit permits) */
		mesh_wait_release(m, m->waits);
	while (m->parked) { /* their connections close with the node */
		struct mesh_park *pk = m->parked;
		m->parked = pk->next;
		free(pk);
	}
	if (m->wait_ev)
		event_free(m->wait_ev);
	free(m->spare);
	for (i = 0; i < m->cap; i++) {
		for (r = m->slots[i]; r; r = next) {
			next = r->next;
			free(r);
		}
	}
	while (m->tombs) {
		struct mesh_tomb *tb = m->tombs;
		m->tombs = tb->next;
		free(tb);
	}
	free(m->slots);
	buf_fini(&m->gbuf);
	free(m);
	n->mesh = NULL;
}

struct cluster *
mesh_cluster(struct node *n)
{
	return n->mesh ? n->mesh->c : NULL;
}

void
mesh_routes_each(struct node *n,
                 void (*fn)(void *arg, struct mqtt_bytes filter, uint32_t refs),
                 void *arg)
{
	struct mesh_route *r;
	size_t i;

	if (!n->mesh)
		return;
	for (i = 0; i < n->mesh->cap; i++)
		for (r = n->mesh->slots[i]; r; r = r->next)
			fn(arg,
			   (struct mqtt_bytes){ (const uint8_t *)r->filter,
			                        r->len },
			   r->refs);
}
