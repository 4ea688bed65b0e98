/*
 * The broker side of the cluster: starts cluster/ with this node's hooks,
 * counts the local subscriptions per topic filter (a filter's first one
 * and its last one are route changes the peers hear about), forwards the
 * messages published here to the nodes whose routes match, and hands the
 * peers' messages to the local subscribers.
 */
#include "broker/node.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "broker/admin.h"
#include "cluster/cluster.h"

/* One topic filter with local subscribers. */
struct mesh_route {
	struct mesh_route *next;
	uint32_t hash;
	uint32_t refs; /* local subscriptions on it */
	uint16_t len;
	char filter[];
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

void
mesh_route_ref(struct node *n, struct mqtt_bytes filter, int delta)
{
	struct mesh *m = n->mesh;
	struct mesh_route **pp, *r;
	struct mqtt_bytes f;
	bool shared;
	uint32_t h;

	if (!m)
		return;
	/* a shared subscription routes on its topic filter */
	if (share_parse(filter, &shared, &f))
		return;
	if (!shared)
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
		r->len = (uint16_t)f.len;
		memcpy(r->filter, f.p, f.len);
		*pp = r;
		m->n++;
		if (m->c)
			cluster_route_add(m->c, f);
		return;
	}
	if (!r || --r->refs)
		return;
	*pp = r->next;
	m->n--;
	if (m->c)
		cluster_route_del(m->c, f);
	free(r);
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

void
mesh_forward(struct node *n, const struct msg *m)
{
	struct cluster_msg cm;

	if (!n->mesh)
		return;
	memset(&cm, 0, sizeof(cm));
	cm.origin_node = n->node_id;
	cm.msg_id = m->id;
	cm.topic = msg_topic(m);
	cm.payload = msg_payload(m);
	cm.props = msg_props(m);
	cm.qos = m->qos;
	cm.retain = m->retain;
	cm.expiry_s = mesh_expiry_s(m);
	n->stats.cluster_forwarded += cluster_publish(n->mesh->c, &cm);
}

/* cluster_hooks.deliver: a peer's message for the local subscribers. */
static void
mesh_on_deliver(void *arg, const struct cluster_msg *cm)
{
	struct node *n = arg;
	struct msg *m;

	m = msg_new(cm->topic, cm->payload, cm->props, cm->qos, cm->retain);
	if (!m) {
		log_error("cluster message dropped: out of memory");
		return;
	}
	m->id = ++n->next_msg_id;
	if (cm->expiry_s)
		m->expiry_ms = node_now_ms() + cm->expiry_s * 1000ull;
	n->stats.cluster_received++;
	router_publish(n, m); /* local subscribers only: never sent on */
	msg_unref(m);
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
mesh_each_route(void *arg, void (*fn)(void *ctx, struct mqtt_bytes filter),
                void *ctx)
{
	struct node *n = arg;
	struct mesh_route *r;
	size_t i;

	for (i = 0; i < n->mesh->cap; i++)
		for (r = n->mesh->slots[i]; r; r = r->next)
			fn(ctx, (struct mqtt_bytes){ (const uint8_t *)r->filter,
			                             r->len });
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

	for (sub = s->subs; sub; sub = sub->next)
		mesh_route_ref(arg,
		               (struct mqtt_bytes){
		                       (const uint8_t *)sub->filter, sub->len },
		               +1);
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
	memset(&cc, 0, sizeof(cc));
	cc.node_name = cfg->node_name;
	cc.node_id = n->node_id;
	cc.bind = cfg->cluster_bind;
	cc.port = cfg->cluster_port;
	cc.advertise = cfg->cluster_advertise;
	cc.seeds = cfg->cluster_seeds;
	cc.secret = cfg->cluster_secret;
	admin_addr_for(n, admin, sizeof(admin));
	cc.admin_addr = admin;
	memset(&h, 0, sizeof(h));
	h.arg = n;
	h.deliver = mesh_on_deliver;
	h.each_route = mesh_each_route;
	h.retained_apply = mesh_on_retained;
	h.each_retained = mesh_each_retained;
	h.log = mesh_on_log;
	n->mesh = m;
	/* the subscriptions loaded from storage are routes already */
	sess_foreach(n, mesh_count_session, n);
	rc = cluster_start(n->base, &cc, &h, &m->c);
	if (rc) {
		mesh_stop(n); /* cluster_start logged the cause */
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
