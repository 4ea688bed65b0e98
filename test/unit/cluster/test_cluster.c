/*
 * Several clusters in one process on one event_base (127.0.0.1, ephemeral
 * ports): join through a seed, routes and forwarding, secrets, duplicate
 * names and links, bad frames, a kill (DEAD within dead_ms), restart and
 * Leave, retained replication (changes, tombstones, snapshots on join, a
 * snapshot bigger than a frame) and the hybrid logical clock. The loop runs
 * until a condition or a deadline, never a fixed sleep.
 */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "cluster/cluster.h"
#include "cluster/cluster.pb-c.h"
#include "cluster/cluster_int.h"

#define PING_MS  100
#define DEAD_MS  600
#define WAIT_MS  10000 /* convergence deadline */
#define MAX_SEEN 8
#define LOG_KEEP 65536

/* A retained message as the test's stand-in for broker keeps it. */
struct ret {
	char *topic;
	uint8_t *payload; /* payload_len bytes, then props_len bytes */
	size_t payload_len;
	size_t props_len;
	uint8_t qos;
	uint32_t expiry_s;
	uint64_t stamp;
	uint64_t origin;
};

struct seen {
	char name[32];
	enum cluster_member_state st;
	uint64_t at_ms; /* when it changed to st */
};

/* One cluster instance and what its hooks saw. */
struct node {
	const char *name;
	uint64_t id;
	struct cluster *c;
	uint16_t port;         /* to listen on, 0 = any */
	const char *routes[4]; /* what each_route reports */
	bool durable[4];       /* and whether each is durable */
	size_t n_routes;
	bool no_ack; /* deliver does not ack forwards */
	int delivered;
	int dups;        /* forwards delivered as duplicates */
	int done;        /* forward_done calls (acked) */
	int done_cookie; /* of which with the cookie &done */
	char topic[64];
	char payload[64];
	size_t payload_len;
	uint8_t qos;
	uint64_t origin;
	struct seen seen[MAX_SEEN];
	size_t n_seen;
	char *log; /* every log line, '\n'-separated */
	size_t log_len;
	struct ret *ret; /* retained store, tombstones included */
	size_t n_ret;
	size_t cap_ret;
	size_t *idx;    /* hash index of ret: position + 1, 0 = free */
	size_t cap_idx; /* a power of two */
	size_t applied; /* retained_apply calls */
	size_t kept;    /* of which won (last writer) */
};

static struct event_base *base;

static struct mqtt_bytes
B(const char *s) {
	return (struct mqtt_bytes){ (const uint8_t *)s, strlen(s) };
}

static void
hook_deliver(void *arg, const struct cluster_msg *m)
{
	struct node *n = arg;

	if (m->ack && !n->no_ack)
		cluster_forward_ack(n->c, m->origin_node, m->msg_id);
	if (m->dup) {
		n->dups++;
		return;
	}
	n->delivered++;
	ck_assert_uint_lt(m->topic.len, sizeof(n->topic));
	ck_assert_uint_lt(m->payload.len, sizeof(n->payload));
	memcpy(n->topic, m->topic.p, m->topic.len);
	n->topic[m->topic.len] = '\0';
	memcpy(n->payload, m->payload.p, m->payload.len);
	n->payload_len = m->payload.len;
	n->qos = m->qos;
	n->origin = m->origin_node;
}

static size_t
ret_hash(struct mqtt_bytes t)
{
	uint32_t h = 2166136261u;
	size_t i;

	for (i = 0; i < t.len; i++)
		h = (h ^ t.p[i]) * 16777619u;
	return h;
}

/* The index slot of topic: where it is, or the free slot to put it. */
static size_t
ret_slot(const struct node *n, struct mqtt_bytes topic)
{
	size_t mask = n->cap_idx - 1, h = ret_hash(topic) & mask;
	const struct ret *e;

	while (n->idx[h] != 0) {
		e = &n->ret[n->idx[h] - 1];
		if (strlen(e->topic) == topic.len &&
		    memcmp(e->topic, topic.p, topic.len) == 0)
			break;
		h = (h + 1) & mask;
	}
	return h;
}

static struct ret *
ret_find(struct node *n, struct mqtt_bytes topic)
{
	size_t h;

	if (n->cap_idx == 0)
		return NULL;
	h = ret_slot(n, topic);
	return n->idx[h] ? &n->ret[n->idx[h] - 1] : NULL;
}

/* Indexes ret[n_ret - 1], growing the index to stay half empty. */
static void
ret_index_last(struct node *n)
{
	size_t i;

	if (2 * n->n_ret > n->cap_idx) {
		free(n->idx);
		n->cap_idx = n->cap_idx ? 2 * n->cap_idx : 64;
		n->idx = calloc(n->cap_idx, sizeof(*n->idx));
		ck_assert_ptr_nonnull(n->idx);
		for (i = 0; i + 1 < n->n_ret; i++)
			n->idx[ret_slot(n, B(n->ret[i].topic))] = i + 1;
	}
	n->idx[ret_slot(n, B(n->ret[n->n_ret - 1].topic))] = n->n_ret;
}

/* Stores r in n's store when it is newer (broker's rule). @return true when
 * it was kept */
static bool
ret_store(struct node *n, const struct cluster_retained *r)
{
	struct ret *e = ret_find(n, r->topic);

	if (e != NULL && (r->stamp < e->stamp || (r->stamp == e->stamp &&
	                                          r->origin_node <= e->origin)))
		return false;
	if (e == NULL) {
		if (n->n_ret == n->cap_ret) {
			n->cap_ret = n->cap_ret ? 2 * n->cap_ret : 16;
			n->ret = realloc(n->ret, n->cap_ret * sizeof(*n->ret));
			ck_assert_ptr_nonnull(n->ret);
		}
		e = &n->ret[n->n_ret++];
		e->topic = strndup((const char *)r->topic.p, r->topic.len);
		ck_assert_ptr_nonnull(e->topic);
		e->payload = NULL;
		ret_index_last(n);
	} else {
		free(e->payload);
	}
	e->payload = malloc(r->payload.len + r->props.len + 1);
	ck_assert_ptr_nonnull(e->payload);
	if (r->payload.len > 0)
		memcpy(e->payload, r->payload.p, r->payload.len);
	if (r->props.len > 0)
		memcpy(e->payload + r->payload.len, r->props.p, r->props.len);
	e->payload_len = r->payload.len;
	e->props_len = r->props.len;
	e->qos = r->qos;
	e->expiry_s = r->expiry_s;
	e->stamp = r->stamp;
	e->origin = r->origin_node;
	return true;
}

static void
ret_free(struct node *n)
{
	size_t i;

	for (i = 0; i < n->n_ret; i++) {
		free(n->ret[i].topic);
		free(n->ret[i].payload);
	}
	free(n->ret);
	free(n->idx);
	n->ret = NULL;
	n->idx = NULL;
	n->n_ret = n->cap_ret = n->cap_idx = 0;
}

static int
hook_retained_apply(void *arg, const struct cluster_retained *r)
{
	struct node *n = arg;

	n->applied++;
	if (ret_store(n, r))
		n->kept++;
	return 0;
}

static void
hook_each_retained(void *arg,
                   void (*fn)(void *ctx, const struct cluster_retained *r),
                   void *ctx)
{
	struct node *n = arg;
	struct cluster_retained r;
	size_t i;

	for (i = 0; i < n->n_ret; i++) {
		r.topic = B(n->ret[i].topic);
		r.payload = (struct mqtt_bytes){ n->ret[i].payload,
			                         n->ret[i].payload_len };
		r.props = (struct mqtt_bytes){ n->ret[i].payload +
			                               n->ret[i].payload_len,
			                       n->ret[i].props_len };
		r.qos = n->ret[i].qos;
		r.expiry_s = n->ret[i].expiry_s;
		r.stamp = n->ret[i].stamp;
		r.origin_node = n->ret[i].origin;
		fn(ctx, &r);
	}
}

static void
hook_each_route(void *arg,
                void (*fn)(void *ctx, struct mqtt_bytes filter, bool durable),
                void *ctx)
{
	struct node *n = arg;
	size_t i;

	for (i = 0; i < n->n_routes; i++)
		fn(ctx, B(n->routes[i]), n->durable[i]);
}

static void
hook_forward_done(void *arg, uint64_t node_id, uint64_t msg_id, void *cookie,
                  bool acked)
{
	struct node *n = arg;

	(void)node_id;
	(void)msg_id;
	if (!acked)
		return;
	n->done++;
	if (cookie == &n->done)
		n->done_cookie++;
}

static void
hook_member_changed(void *arg, const char *name, enum cluster_member_state st)
{
	struct node *n = arg;
	size_t i;

	for (i = 0; i < n->n_seen; i++) {
		if (strcmp(n->seen[i].name, name) == 0)
			break;
	}
	if (i == n->n_seen) {
		ck_assert_uint_lt(n->n_seen, MAX_SEEN);
		snprintf(n->seen[i].name, sizeof(n->seen[i].name), "%s", name);
		n->n_seen++;
	}
	n->seen[i].st = st;
	n->seen[i].at_ms = cluster_now_ms();
}

static void
hook_log(void *arg, int level, const char *line)
{
	struct node *n = arg;
	size_t len = strlen(line);

	if (getenv("CLUSTER_TEST_VERBOSE"))
		fprintf(stderr, "[%s] %d %s\n", n->name, level, line);
	if (n->log_len + len + 2 > LOG_KEEP)
		return;
	memcpy(n->log + n->log_len, line, len);
	n->log_len += len;
	n->log[n->log_len++] = '\n';
	n->log[n->log_len] = '\0';
}

static int
node_start_full(struct node *n, const char *name, uint64_t id,
                const char *seeds, const char *secret)
{
	struct cluster_hooks h = { 0 };
	struct cluster_config cfg = { 0 };

	if (n->log == NULL) {
		n->log = calloc(1, LOG_KEEP);
		ck_assert_ptr_nonnull(n->log);
	}
	n->name = name;
	n->id = id;
	h.arg = n;
	h.deliver = hook_deliver;
	h.each_route = hook_each_route;
	h.member_changed = hook_member_changed;
	h.retained_apply = hook_retained_apply;
	h.each_retained = hook_each_retained;
	h.forward_done = hook_forward_done;
	h.log = hook_log;
	cfg.node_name = name;
	cfg.node_id = id;
	cfg.bind = "127.0.0.1";
	cfg.port = n->port;
	cfg.advertise = "";
	cfg.seeds = seeds;
	cfg.secret = secret;
	cfg.ping_ms = PING_MS;
	cfg.dead_ms = DEAD_MS;
	return cluster_start(base, &cfg, &h, &n->c);
}

static void
node_start(struct node *n, const char *name, uint64_t id, const char *seeds,
           const char *secret)
{
	ck_assert_int_eq(node_start_full(n, name, id, seeds, secret), 0);
	ck_assert_ptr_nonnull(n->c);
}

static void
node_fini(struct node *n)
{
	cluster_stop(n->c);
	n->c = NULL;
	free(n->log);
	n->log = NULL;
	n->log_len = 0;
	ret_free(n);
}

/* "127.0.0.1:<port of n>" */
static const char *
seed_of(const struct node *n, char *buf, size_t len)
{
	snprintf(buf, len, "127.0.0.1:%u", (unsigned)cluster_test_port(n->c));
	return buf;
}

struct lookup {
	const char *name;
	bool found;
	struct cluster_member m; /* strings not kept */
};

static void
lookup_cb(void *arg, const struct cluster_member *m)
{
	struct lookup *q = arg;

	if (strcmp(m->name, q->name) == 0) {
		q->found = true;
		q->m = *m;
		q->m.name = NULL;
		q->m.addr = NULL;
	}
}

/* What n's cluster says about member name; found false if unknown. */
static struct lookup
lookup(const struct node *n, const char *name)
{
	struct lookup q = { name, false, { 0 } };

	cluster_members(n->c, lookup_cb, &q);
	return q;
}

static bool
sees_alive(const struct node *n, const char *name)
{
	struct lookup q = lookup(n, name);

	return q.found && q.m.state == CLUSTER_ALIVE && q.m.link_up;
}

static bool
sees_state(const struct node *n, const char *name, enum cluster_member_state st)
{
	struct lookup q = lookup(n, name);

	return q.found && q.m.state == st;
}

static size_t
routes_of(const struct node *n, const char *name)
{
	struct lookup q = lookup(n, name);

	return q.found ? q.m.routes : 0;
}

static const struct seen *
seen(const struct node *n, const char *name)
{
	size_t i;

	for (i = 0; i < n->n_seen; i++) {
		if (strcmp(n->seen[i].name, name) == 0)
			return &n->seen[i];
	}
	return NULL;
}

static void
wake(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

/* Runs the loop until cond(arg) or ms pass. @return cond(arg) */
static bool
run_until(bool (*cond)(void *), void *arg, uint64_t ms)
{
	uint64_t end = cluster_now_ms() + ms;
	struct event *ev = evtimer_new(base, wake, NULL);
	bool ok;

	ck_assert_ptr_nonnull(ev);
	cluster_timer_add(ev, ms);
	while (!(ok = cond(arg)) && cluster_now_ms() < end)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(ev);
	return ok;
}

/* ---- conditions ---- */

struct group {
	struct node **v;
	size_t n;
};

static bool
all_alive(void *arg)
{
	struct group *g = arg;
	size_t i, j;

	for (i = 0; i < g->n; i++) {
		for (j = 0; j < g->n; j++) {
			if (i != j && !sees_alive(g->v[i], g->v[j]->name))
				return false;
		}
	}
	return true;
}

struct want_routes {
	struct node **v; /* observers */
	size_t n;
	const char *of; /* member whose routes are counted */
	size_t count;
};

static bool
routes_are(void *arg)
{
	struct want_routes *w = arg;
	size_t i;

	for (i = 0; i < w->n; i++) {
		if (routes_of(w->v[i], w->of) != w->count)
			return false;
	}
	return true;
}

struct want_count {
	struct node *n;
	int count;
};

static bool
delivered_is(void *arg)
{
	struct want_count *w = arg;

	return w->n->delivered >= w->count;
}

struct want_state {
	struct node **v;
	size_t n;
	const char *of;
	enum cluster_member_state st;
};

static bool
state_is(void *arg)
{
	struct want_state *w = arg;
	size_t i;

	for (i = 0; i < w->n; i++) {
		if (!sees_state(w->v[i], w->of, w->st))
			return false;
	}
	return true;
}

struct want_log {
	struct node *n;
	const char *text;
};

static bool
log_has(void *arg)
{
	struct want_log *w = arg;

	return w->n->log != NULL && strstr(w->n->log, w->text) != NULL;
}

static void
setup(void)
{
	base = event_base_new();
	ck_assert_ptr_nonnull(base);
}

static void
teardown(void)
{
	event_base_free(base);
	base = NULL;
}

/* Starts a, then b and c seeded with a only, and waits for the mesh. */
static void
start_three(struct node *a, struct node *b, struct node *c, const char *secret)
{
	struct node *v[3] = { a, b, c };
	struct group g = { v, 3 };
	char seed[32];

	node_start(a, "a", 1, "", secret);
	seed_of(a, seed, sizeof(seed));
	node_start(b, "b", 2, seed, secret);
	node_start(c, "c", 3, seed, secret);
	ck_assert_msg(run_until(all_alive, &g, WAIT_MS), "no full mesh");
}

static struct cluster_msg
msg(const char *topic, const char *payload, uint8_t qos)
{
	static uint64_t id = 100;
	struct cluster_msg m = { 0 };

	m.origin_node = 1;
	m.msg_id = ++id; /* increasing, as on a node */
	m.topic = B(topic);
	m.payload = B(payload);
	m.qos = qos;
	m.origin_client = B("cl");
	return m;
}

START_TEST(test_join_routes_publish)
{
	struct node a = { 0 }, b = { 0 }, c = { 0 };
	struct node *ab[2] = { &a, &b };
	struct want_routes wr = { ab, 2, "c", 1 };
	struct want_count wc = { &c, 1 };
	struct cluster_msg m;
	struct lookup q;

	start_three(&a, &b, &c, NULL);
	/* b learned c through a's gossip and got its own link to c */
	q = lookup(&b, "c");
	ck_assert(q.found && q.m.link_up && q.m.node_id == 3);
	q = lookup(&a, "a");
	ck_assert(q.found && q.m.self && !q.m.link_up);

	c.routes[c.n_routes++] = "a/+";
	cluster_route_add(c.c, B("a/+"), false);
	ck_assert(run_until(routes_are, &wr, WAIT_MS));
	ck_assert_uint_eq(routes_of(&c, "c"), 1); /* its own count */

	m = msg("a/b", "hello", 1);
	ck_assert_uint_eq(cluster_publish(a.c, &m, NULL, NULL), 1);
	ck_assert(run_until(delivered_is, &wc, WAIT_MS));
	ck_assert_str_eq(c.topic, "a/b");
	ck_assert_uint_eq(c.payload_len, 5);
	ck_assert(memcmp(c.payload, "hello", 5) == 0);
	ck_assert_uint_eq(c.qos, 1);
	ck_assert_uint_eq(c.origin, 1);

	/* a second matching filter on c: still one copy per publish */
	c.routes[c.n_routes++] = "a/#";
	cluster_route_add(c.c, B("a/#"), false);
	wr.count = 2;
	ck_assert(run_until(routes_are, &wr, WAIT_MS));
	m = msg("a/b", "again", 0);
	ck_assert_uint_eq(cluster_publish(a.c, &m, NULL, NULL), 1);
	/* a marker after it: when it is in, everything before it is */
	m = msg("a/marker", "m", 0);
	ck_assert_uint_eq(cluster_publish(a.c, &m, NULL, NULL), 1);
	wc.count = 3;
	ck_assert(run_until(delivered_is, &wc, WAIT_MS));
	ck_assert_int_eq(c.delivered, 3);
	ck_assert_str_eq(c.topic, "a/marker");
	ck_assert_int_eq(b.delivered, 0);
	ck_assert_int_eq(a.delivered, 0);

	/* no route, no send */
	m = msg("x/y", "none", 0);
	ck_assert_uint_eq(cluster_publish(a.c, &m, NULL, NULL), 0);
	ck_assert_uint_eq(cluster_publish(b.c, &m, NULL, NULL), 0);

	/* deltas remove them again */
	c.n_routes = 0;
	cluster_route_del(c.c, B("a/+"));
	cluster_route_del(c.c, B("a/#"));
	wr.count = 0;
	ck_assert(run_until(routes_are, &wr, WAIT_MS));
	m = msg("a/b", "gone", 0);
	ck_assert_uint_eq(cluster_publish(a.c, &m, NULL, NULL), 0);

	node_fini(&c);
	node_fini(&b);
	node_fini(&a);
}
END_TEST

/* Routes set before a node joins arrive in the snapshot. */
START_TEST(test_snapshot_on_join)
{
	struct node a = { 0 }, b = { 0 };
	struct node *v[2] = { &a, &b };
	struct group g = { v, 2 };
	struct node *obs[1] = { &a };
	struct want_routes wr = { obs, 1, "b", 2 };
	struct want_count wc = { &b, 1 };
	struct cluster_msg m;
	char seed[32];

	node_start(&a, "a", 1, "", NULL);
	b.routes[b.n_routes++] = "s/1";
	b.routes[b.n_routes++] = "s/2/#";
	node_start(&b, "b", 2, seed_of(&a, seed, sizeof(seed)), NULL);
	ck_assert(run_until(all_alive, &g, WAIT_MS));
	ck_assert(run_until(routes_are, &wr, WAIT_MS));
	m = msg("s/2/x", "p", 2);
	ck_assert_uint_eq(cluster_publish(a.c, &m, NULL, NULL), 1);
	ck_assert(run_until(delivered_is, &wc, WAIT_MS));
	ck_assert_uint_eq(b.qos, 2);
	node_fini(&b);
	node_fini(&a);
}
END_TEST

/* ---- acknowledged forwarding ---- */

static size_t
outbox_of(const struct node *n, const char *name)
{
	struct lookup q = lookup(n, name);

	return q.found ? q.m.outbox : 0;
}

struct want_outbox {
	struct node *n;
	const char *of;
	size_t count;
};

static bool
outbox_is(void *arg)
{
	struct want_outbox *w = arg;

	return outbox_of(w->n, w->of) == w->count;
}

struct want_done {
	struct node *n;
	int count;
};

static bool
done_is(void *arg)
{
	struct want_done *w = arg;

	return w->n->done >= w->count;
}

/* A QoS 1 forward waits in the outbox until the peer acks it; the ack
 * hands the cookie back. */
START_TEST(test_forward_acked)
{
	struct node a = { 0 }, b = { 0 };
	struct node *v[2] = { &a, &b };
	struct group g = { v, 2 };
	struct node *obs[1] = { &a };
	struct want_routes wr = { obs, 1, "b", 1 };
	struct want_done wd = { &a, 1 };
	struct want_count wc = { &b, 1 };
	struct want_outbox wo = { &a, "b", 0 };
	struct cluster_stats st;
	struct cluster_fwd f;
	struct cluster_msg m;
	char seed[32];

	node_start(&a, "a", 1, "", NULL);
	b.routes[b.n_routes++] = "f/#";
	node_start(&b, "b", 2, seed_of(&a, seed, sizeof(seed)), NULL);
	ck_assert(run_until(all_alive, &g, WAIT_MS));
	ck_assert(run_until(routes_are, &wr, WAIT_MS));

	/* b holds the ack back: the entry stays */
	b.no_ack = true;
	m = msg("f/1", "one", 1);
	ck_assert_uint_eq(cluster_publish(a.c, &m, &a.done, &f), 1);
	ck_assert_uint_eq(f.n_peers, 1);
	ck_assert_uint_eq(f.peers[0], 2);
	ck_assert_uint_eq(f.waiting, 1);
	ck_assert(run_until(delivered_is, &wc, WAIT_MS));
	ck_assert_uint_eq(outbox_of(&a, "b"), 1);
	ck_assert_int_eq(a.done, 0);

	/* QoS 0 never waits */
	m = msg("f/0", "zero", 0);
	ck_assert_uint_eq(cluster_publish(a.c, &m, &a.done, &f), 1);
	ck_assert_uint_eq(f.n_peers, 0);
	ck_assert_uint_eq(f.waiting, 0);

	/* acked: out of the outbox, cookie handed back */
	b.no_ack = false;
	m = msg("f/2", "two", 2);
	ck_assert_uint_eq(cluster_publish(a.c, &m, &a.done, &f), 1);
	wd.count = 1;
	ck_assert(run_until(done_is, &wd, WAIT_MS));
	ck_assert_int_eq(a.done_cookie, 1);
	ck_assert_uint_eq(outbox_of(&a, "b"), 1); /* f/1 was never acked */
	cluster_forward_ack(b.c, 1, 0);           /* unknown id: ignored */
	ck_assert(!run_until(outbox_is, &wo, 3 * PING_MS));
	cluster_stats_get(a.c, &st);
	ck_assert_uint_eq(st.sent, 2);
	ck_assert_uint_eq(st.acked, 1);
	ck_assert_uint_eq(st.outbox, 1);
	node_fini(&b);
	node_fini(&a);
}
END_TEST

/* A dead node's durable routes stay and what matches them waits in the
 * outbox (bounded); its volatile ones go. Restarted, it gets the outbox,
 * and a resend it took before is known by its mark: acked, not delivered
 * again. */
START_TEST(test_outbox_dead_peer)
{
	struct node a = { 0 }, b = { 0 };
	struct node *v[2] = { &a, &b };
	struct group g = { v, 2 };
	struct node *obs[1] = { &a };
	struct want_routes wr = { obs, 1, "b", 2 };
	struct want_state ws = { obs, 1, "b", CLUSTER_DEAD };
	struct want_outbox wo = { &a, "b", 0 };
	struct want_count wc = { &b, 2 };
	struct want_log wl = { &a, "cluster routes dropped node=b routes=2 "
		                   "kept_durable=1" };
	struct cluster_config cfg = { 0 };
	struct cluster_hooks h = { 0 };
	struct cluster_stats st;
	struct cluster_fwd f;
	struct cluster_msg m;
	uint64_t first;
	char seed[32];

	/* a keeps at most 3 entries per peer */
	a.name = "a";
	a.log = calloc(1, LOG_KEEP);
	ck_assert_ptr_nonnull(a.log);
	h.arg = &a;
	h.deliver = hook_deliver;
	h.each_route = hook_each_route;
	h.forward_done = hook_forward_done;
	h.log = hook_log;
	cfg.node_name = "a";
	cfg.node_id = 1;
	cfg.bind = "127.0.0.1";
	cfg.advertise = "";
	cfg.seeds = "";
	cfg.ping_ms = PING_MS;
	cfg.dead_ms = DEAD_MS;
	cfg.outbox_max = 3;
	ck_assert_int_eq(cluster_start(base, &cfg, &h, &a.c), 0);

	b.routes[b.n_routes] = "v/1";
	b.durable[b.n_routes++] = false;
	b.routes[b.n_routes] = "d/#";
	b.durable[b.n_routes++] = true;
	node_start(&b, "b", 2, seed_of(&a, seed, sizeof(seed)), NULL);
	ck_assert(run_until(all_alive, &g, WAIT_MS));
	ck_assert(run_until(routes_are, &wr, WAIT_MS));

	/* b takes one forward, but its ack never leaves: then it dies */
	b.no_ack = true;
	m = msg("d/0", "taken", 1);
	first = m.msg_id;
	ck_assert_uint_eq(cluster_publish(a.c, &m, NULL, NULL), 1);
	wc.count = 1;
	ck_assert(run_until(delivered_is, &wc, WAIT_MS));
	cluster_test_kill(b.c);
	b.c = NULL;
	ck_assert(run_until(state_is, &ws, WAIT_MS));
	ck_assert(run_until(log_has, &wl, WAIT_MS));

	m = msg("v/1", "volatile", 1);
	ck_assert_uint_eq(cluster_publish(a.c, &m, &a.done, &f), 0);
	ck_assert_uint_eq(f.n_peers, 0);
	m = msg("v/1", "volatile", 0);
	ck_assert_uint_eq(cluster_publish(a.c, &m, NULL, NULL), 0);
	m = msg("d/1", "kept 1", 1);
	ck_assert_uint_eq(cluster_publish(a.c, &m, &a.done, &f), 0);
	ck_assert_uint_eq(f.n_peers, 1);
	ck_assert_uint_eq(f.waiting, 0); /* nobody to wait for */
	m = msg("d/2", "kept 2", 2);
	ck_assert_uint_eq(cluster_publish(a.c, &m, NULL, &f), 0);
	ck_assert_uint_eq(f.n_peers, 1);
	m = msg("d/3", "over", 1); /* the 4th: over outbox_max */
	ck_assert_uint_eq(cluster_publish(a.c, &m, NULL, &f), 0);
	ck_assert_uint_eq(f.n_peers, 0);
	cluster_stats_get(a.c, &st);
	ck_assert_uint_eq(st.dropped, 1);
	ck_assert_uint_eq(st.outbox, 3);
	ck_assert_uint_eq(outbox_of(&a, "b"), 3);

	/* b is back, with the mark it stored for d/0 */
	b.delivered = 0;
	b.no_ack = false;
	free(b.log);
	b.log = NULL;
	node_start(&b, "b", 2, seed_of(&a, seed, sizeof(seed)), NULL);
	cluster_mark_restore(b.c, 1, first);
	wc.count = 2;
	ck_assert(run_until(delivered_is, &wc, WAIT_MS));
	ck_assert(run_until(outbox_is, &wo, WAIT_MS));
	ck_assert_int_eq(b.delivered, 2); /* d/1 and d/2, not d/0 again */
	ck_assert_int_eq(b.dups, 1);
	ck_assert_str_eq(b.topic, "d/2");
	ck_assert_int_eq(a.done, 3);
	ck_assert_int_eq(a.done_cookie, 0);
	node_fini(&b);
	node_fini(&a);
}
END_TEST

/* Does a know both of b's groups? */
static bool
groups_known(void *arg)
{
	struct node *a = arg;
	uint64_t ids[1];

	return cluster_share_nodes(a->c, B("$share/g/s/#"), ids, 1, false) &&
	       cluster_share_nodes(a->c, B("$share/h/s/#"), ids, 1, false);
}

static void
count_key(void *arg, struct mqtt_bytes key)
{
	int *n = arg;

	ck_assert(key.len == 12 && memcmp(key.p, "$share/g/s/#", 12) == 0);
	(*n)++;
}

/* A shared group that persistent sessions are members of outlives their
 * node: with no linked node holding it, it names the dead node (its
 * messages wait in the outbox); a group of clean sessions goes with it. */
START_TEST(test_shared_group_durable)
{
	struct node a = { 0 }, b = { 0 };
	struct node *v[2] = { &a, &b };
	struct group g = { v, 2 };
	struct node *obs[1] = { &a };
	struct want_state ws = { obs, 1, "b", CLUSTER_DEAD };
	struct want_log wl = { &a, "cluster routes dropped node=b routes=2 "
		                   "kept_durable=1" };
	struct mqtt_bytes kg = B("$share/g/s/#"), kh = B("$share/h/s/#");
	struct cluster_share share = { 2, B("$share/g/s/#") };
	struct cluster_fwd f;
	struct cluster_msg m;
	uint64_t ids[4];
	char seed[32];
	int n = 0;

	node_start(&a, "a", 1, "", NULL);
	b.routes[b.n_routes] = "$share/g/s/#";
	b.durable[b.n_routes++] = true;
	b.routes[b.n_routes] = "$share/h/s/#";
	b.durable[b.n_routes++] = false;
	node_start(&b, "b", 2, seed_of(&a, seed, sizeof(seed)), NULL);
	ck_assert(run_until(all_alive, &g, WAIT_MS));
	ck_assert(run_until(groups_known, &a, WAIT_MS));
	ck_assert_uint_eq(cluster_share_nodes(a.c, kg, ids, 4, false), 1);
	ck_assert_uint_eq(ids[0], 2);

	cluster_test_kill(b.c);
	b.c = NULL;
	ck_assert(run_until(state_is, &ws, WAIT_MS));
	ck_assert(run_until(log_has, &wl, WAIT_MS));
	/* linked nodes only: none */
	ck_assert_uint_eq(cluster_share_nodes(a.c, kg, ids, 4, false), 0);
	/* else the dead node, for the durable group only */
	ck_assert_uint_eq(cluster_share_nodes(a.c, kg, ids, 4, true), 1);
	ck_assert_uint_eq(ids[0], 2);
	ck_assert_uint_eq(cluster_share_nodes(a.c, kh, ids, 4, true), 0);
	cluster_share_match(a.c, B("s/x"), count_key, &n);
	ck_assert_int_eq(n, 1);
	/* a QoS 1 message assigned to it waits in the outbox */
	m = msg("s/x", "for the group", 1);
	m.shares = &share;
	m.n_shares = 1;
	ck_assert_uint_eq(cluster_publish(a.c, &m, NULL, &f), 0);
	ck_assert_uint_eq(f.n_peers, 1);
	ck_assert_uint_eq(outbox_of(&a, "b"), 1);
	node_fini(&b); /* killed already: its log buffer */
	node_fini(&a);
}
END_TEST

/* An outbox restored at start goes to its node once that node is linked,
 * and a forward whose message expired before it could go is dropped. */
START_TEST(test_outbox_restore)
{
	struct node a = { 0 }, b = { 0 };
	struct node *v[2] = { &a, &b };
	struct group g = { v, 2 };
	struct want_outbox wo = { &a, "b", 0 };
	struct want_count wc = { &b, 1 };
	struct cluster_stats st;
	struct cluster_msg m;
	char seed[32];

	node_start(&a, "a", 1, "", NULL);
	m = msg("r/1", "restored", 1);
	ck_assert_int_eq(cluster_outbox_restore(a.c, 2, &m), 0);
	ck_assert_int_eq(cluster_outbox_restore(NULL, 2, &m), ERR_NOMEM);
	cluster_stats_get(a.c, &st);
	ck_assert_uint_eq(st.outbox, 1);
	node_start(&b, "b", 2, seed_of(&a, seed, sizeof(seed)), NULL);
	ck_assert(run_until(all_alive, &g, WAIT_MS));
	ck_assert(run_until(delivered_is, &wc, WAIT_MS));
	ck_assert_str_eq(b.topic, "r/1");
	ck_assert(run_until(outbox_is, &wo, WAIT_MS));
	ck_assert_int_eq(a.done, 1);
	node_fini(&b);
	node_fini(&a);
}
END_TEST

START_TEST(test_secret)
{
	struct node a = { 0 }, e = { 0 }, d = { 0 }, f = { 0 };
	struct node *v[2] = { &a, &e };
	struct group g = { v, 2 };
	struct want_log wa = { &a, "reason=\"bad secret\"" };
	struct want_log wd = { &d, "reason=\"bad secret\"" };
	struct want_log wf = { &a, "reason=\"missing secret proof" };
	struct want_log wf2 = { &f, "reason=\"the peer requires a secret" };
	char seed[32];

	node_start(&a, "a", 1, "", "s3cret");
	seed_of(&a, seed, sizeof(seed));
	node_start(&e, "e", 5, seed, "s3cret");
	node_start(&d, "d", 4, seed, "wrong");
	node_start(&f, "f", 6, seed, NULL);
	ck_assert(run_until(all_alive, &g, WAIT_MS));
	ck_assert(run_until(log_has, &wa, WAIT_MS));
	ck_assert(run_until(log_has, &wd, WAIT_MS));
	ck_assert(run_until(log_has, &wf, WAIT_MS));
	ck_assert(run_until(log_has, &wf2, WAIT_MS));
	/* one line, naming the peer's address */
	ck_assert_ptr_nonnull(
	        strstr(a.log, "cluster link dropped peer=127.0.0.1:"));
	/* d and f never became members of a, nor of e through gossip */
	ck_assert(!lookup(&a, "d").found);
	ck_assert(!lookup(&a, "f").found);
	ck_assert(!lookup(&e, "d").found);
	ck_assert(!seen(&a, "d"));
	ck_assert(!lookup(&d, "a").found);
	node_fini(&f);
	node_fini(&d);
	node_fini(&e);
	node_fini(&a);
}
END_TEST

START_TEST(test_duplicate_name)
{
	struct node a = { 0 }, b = { 0 }, x = { 0 };
	struct node *v[2] = { &a, &b };
	struct group g = { v, 2 };
	struct want_log w = { &a, "duplicate node name" };
	struct want_log ws = { &x, "reason=\"duplicate node name" };
	char seed[32];
	struct lookup q;

	node_start(&a, "a", 1, "", NULL);
	seed_of(&a, seed, sizeof(seed));
	node_start(&b, "b", 2, seed, NULL);
	ck_assert(run_until(all_alive, &g, WAIT_MS));
	/* another node calling itself b */
	node_start(&x, "b", 22, seed, NULL);
	ck_assert(run_until(log_has, &w, WAIT_MS));
	q = lookup(&a, "b");
	ck_assert(q.found && q.m.node_id == 2 && q.m.state == CLUSTER_ALIVE);
	/* a seed that is a's own address, under a's name with another id */
	node_fini(&x);
	node_start(&x, "a", 11, seed, NULL);
	ck_assert_msg(run_until(log_has, &ws, WAIT_MS), "x log: %s", x.log);
	q = lookup(&b, "a");
	ck_assert(q.found && q.m.node_id == 1);
	node_fini(&x);
	node_fini(&b);
	node_fini(&a);
}
END_TEST

/* A free port on 127.0.0.1 (the kernel's pick, released at once). */
static uint16_t
free_port(void)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	ck_assert_int_ge(fd, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	close(fd);
	return ntohs(sin.sin_port);
}

/* A node whose seeds include itself (the same seed list everywhere, as in
 * docker-compose) ignores that seed quietly. */
START_TEST(test_self_seed)
{
	struct node a = { 0 }, b = { 0 };
	struct node *v[2] = { &a, &b };
	struct group g = { v, 2 };
	struct want_log w = { &b, "reason=\"connected to itself\"" };
	char seeds[80], sa[32];

	node_start(&a, "a", 1, "", NULL);
	b.port = free_port();
	snprintf(seeds, sizeof(seeds), " 127.0.0.1:%u , ,%s", (unsigned)b.port,
	         seed_of(&a, sa, sizeof(sa)));
	node_start(&b, "b", 2, seeds, NULL);
	ck_assert(run_until(all_alive, &g, WAIT_MS));
	ck_assert(run_until(log_has, &w, WAIT_MS));
	ck_assert_ptr_null(strstr(b.log, "duplicate node name"));
	node_fini(&b);
	node_fini(&a);
}
END_TEST

/* Two nodes seeded with each other dial at once: both ends keep the same
 * one of the two links (dialed by the smaller name) and close the other. */
START_TEST(test_simultaneous_dial)
{
	struct node a = { 0 }, b = { 0 };
	struct node *v[2] = { &a, &b };
	struct group g = { v, 2 };
	struct want_log wa = { &a, "reason=\"duplicate link\"" };
	struct want_log wb = { &b, "reason=\"duplicate link\"" };
	struct node *oa[1] = { &a }, *ob[1] = { &b };
	struct want_routes ra = { oa, 1, "b", 1 };
	struct want_routes rb = { ob, 1, "a", 1 };
	struct want_count da = { &a, 1 }, db = { &b, 1 };
	struct cluster_msg m;
	char sa[32], sb[32];

	a.port = free_port();
	b.port = free_port();
	snprintf(sa, sizeof(sa), "127.0.0.1:%u", (unsigned)a.port);
	snprintf(sb, sizeof(sb), "127.0.0.1:%u", (unsigned)b.port);
	a.routes[a.n_routes++] = "to/a";
	b.routes[b.n_routes++] = "to/b";
	node_start(&a, "a", 1, sb, NULL);
	node_start(&b, "b", 2, sa, NULL);
	ck_assert(run_until(all_alive, &g, WAIT_MS));
	ck_assert(run_until(log_has, &wa, WAIT_MS));
	ck_assert(run_until(log_has, &wb, WAIT_MS));
	/* the link kept carries the snapshots and publishes both ways */
	ck_assert(run_until(routes_are, &ra, WAIT_MS));
	ck_assert(run_until(routes_are, &rb, WAIT_MS));
	m = msg("to/b", "1", 0);
	ck_assert_uint_eq(cluster_publish(a.c, &m, NULL, NULL), 1);
	m = msg("to/a", "2", 0);
	ck_assert_uint_eq(cluster_publish(b.c, &m, NULL, NULL), 1);
	ck_assert(run_until(delivered_is, &da, WAIT_MS));
	ck_assert(run_until(delivered_is, &db, WAIT_MS));
	ck_assert(all_alive(&g));
	node_fini(&b);
	node_fini(&a);
}
END_TEST

/* A raw TCP connection to n that sends bytes, then waits for n's log. */
static int
raw_connect(const struct node *n)
{
	struct sockaddr_in sin;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	ck_assert_int_ge(fd, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(cluster_test_port(n->c));
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	return fd;
}

static void
raw_expect(struct node *n, const void *p, size_t len, const char *reason)
{
	struct want_log w = { n, reason };
	int fd = raw_connect(n);

	ck_assert_int_eq(write(fd, p, len), (ssize_t)len);
	ck_assert_msg(run_until(log_has, &w, WAIT_MS), "no log: %s", reason);
	close(fd);
}

/* A link left over from a node's previous process (no FIN ever came) and
 * a link from its new process: the new one is kept. */
START_TEST(test_restart_replaces_stale_link)
{
	Mqd__Envelope env = MQD__ENVELOPE__INIT;
	Mqd__Hello h = MQD__HELLO__INIT;
	uint8_t nonce[CLUSTER_NONCE_LEN] = { 7 };
	struct node a = { 0 }, c = { 0 };
	struct node *v[2] = { &a, &c };
	struct group g = { v, 2 };
	struct node *oa[1] = { &a };
	struct want_state wa = { oa, 1, "c", CLUSTER_ALIVE };
	struct want_routes wr = { oa, 1, "c", 1 };
	struct want_count wc = { &c, 1 };
	struct want_log wd = { &a, "node=c reason=\"duplicate link\"" };
	struct cluster_msg m;
	char seed[32], sink[4096];
	struct buf b;
	ssize_t n;
	int fd;

	node_start(&a, "a", 1, "", NULL);
	/* the old c: said Hello long ago, then went silent */
	h.version = CLUSTER_PROTO_VERSION;
	h.name = "c";
	h.node_id = 3;
	h.addr = "";
	h.nonce.data = nonce;
	h.nonce.len = sizeof(nonce);
	h.incarnation = 1;
	h.boot = 1;
	env.body_case = MQD__ENVELOPE__BODY_HELLO;
	env.hello = &h;
	buf_init(&b);
	ck_assert_int_eq(frame_encode(&b, &env), 0);
	fd = raw_connect(&a);
	ck_assert_int_eq(write(fd, b.data, b.len), (ssize_t)b.len);
	buf_fini(&b);
	ck_assert(run_until(state_is, &wa, WAIT_MS));
	ck_assert(sees_alive(&a, "c"));
	/* the new c */
	c.routes[c.n_routes++] = "r/#";
	node_start(&c, "c", 3, seed_of(&a, seed, sizeof(seed)), NULL);
	ck_assert(run_until(all_alive, &g, WAIT_MS));
	ck_assert(run_until(log_has, &wd, WAIT_MS));
	ck_assert(run_until(routes_are, &wr, WAIT_MS));
	m = msg("r/1", "x", 0);
	ck_assert_uint_eq(cluster_publish(a.c, &m, NULL, NULL), 1);
	ck_assert(run_until(delivered_is, &wc, WAIT_MS));
	/* the old link was closed: what a sent, then end of stream */
	while ((n = recv(fd, sink, sizeof(sink), MSG_DONTWAIT)) > 0)
		;
	ck_assert_int_eq(n, 0);
	close(fd);
	node_fini(&c);
	node_fini(&a);
}
END_TEST

START_TEST(test_bad_frames)
{
	const uint8_t oversize[] = { 0x01, 0x00, 0x00, 0x01 };
	/* within CLUSTER_FRAME_MAX, but over the pre-handshake limit */
	const uint8_t big_hello[] = { 0x00, 0x10, 0x00, 0x01 };
	const uint8_t junk[] = { 0, 0, 0, 4, 0xff, 0xff, 0xff, 0xff };
	const uint8_t v9[] = { 0, 0, 0, 4, 0x08, 0x09, 0x5a, 0x00 };
	Mqd__Envelope env = MQD__ENVELOPE__INIT;
	Mqd__Ping p = MQD__PING__INIT;
	Mqd__Hello h = MQD__HELLO__INIT;
	Mqd__RouteDelta d = MQD__ROUTE_DELTA__INIT;
	Mqd__Publish pub = MQD__PUBLISH__INIT;
	uint8_t nonce[CLUSTER_NONCE_LEN] = { 0 };
	struct node a = { 0 };
	struct buf b;

	node_start(&a, "a", 1, "", NULL);
	raw_expect(&a, oversize, sizeof(oversize), "reason=\"oversize frame\"");
	a.log_len = 0;
	raw_expect(&a, big_hello, sizeof(big_hello),
	           "reason=\"oversize frame\"");
	raw_expect(&a, junk, sizeof(junk), "reason=\"undecodable frame\"");
	raw_expect(&a, v9, sizeof(v9), "reason=\"incompatible version\"");
	/* a Ping before any Hello */
	buf_init(&b);
	p.seq = 1;
	env.body_case = MQD__ENVELOPE__BODY_PING;
	env.ping = &p;
	ck_assert_int_eq(frame_encode(&b, &env), 0);
	raw_expect(&a, b.data, b.len,
	           "reason=\"ping frame before the handshake ended\"");
	/* a Hello of another protocol version inside a v1 envelope */
	buf_reset(&b);
	h.version = 2;
	h.name = "z";
	h.addr = "";
	h.nonce.data = nonce;
	h.nonce.len = sizeof(nonce);
	env.body_case = MQD__ENVELOPE__BODY_HELLO;
	env.hello = &h;
	ck_assert_int_eq(frame_encode(&b, &env), 0);
	raw_expect(&a, b.data, b.len, "reason=\"incompatible version 2");
	/* a good Hello, then a second Hello */
	buf_reset(&b);
	h.version = CLUSTER_PROTO_VERSION;
	ck_assert_int_eq(frame_encode(&b, &env), 0);
	ck_assert_int_eq(frame_encode(&b, &env), 0);
	raw_expect(&a, b.data, b.len, "reason=\"unexpected hello frame\"");
	/* a route delta with no snapshot before it (a seq gap) */
	buf_reset(&b);
	ck_assert_int_eq(frame_encode(&b, &env), 0);
	d.seq = 5;
	d.add = true;
	d.filter.data = (uint8_t *)"q/#";
	d.filter.len = 3;
	env.body_case = MQD__ENVELOPE__BODY_ROUTE_DELTA;
	env.route_delta = &d;
	ck_assert_int_eq(frame_encode(&b, &env), 0);
	raw_expect(&a, b.data, b.len, "reason=\"route delta out of sequence\"");
	/* a publish with QoS 3 */
	buf_reset(&b);
	env.body_case = MQD__ENVELOPE__BODY_HELLO;
	env.hello = &h; /* the body pointers share a union */
	ck_assert_int_eq(frame_encode(&b, &env), 0);
	pub.topic.data = (uint8_t *)"t";
	pub.topic.len = 1;
	pub.qos = 3;
	env.body_case = MQD__ENVELOPE__BODY_PUBLISH;
	env.publish = &pub;
	ck_assert_int_eq(frame_encode(&b, &env), 0);
	raw_expect(&a, b.data, b.len, "reason=\"bad publish\"");
	ck_assert_int_eq(a.delivered, 0);
	/* a retained message on a wildcard topic */
	buf_reset(&b);
	env.body_case = MQD__ENVELOPE__BODY_HELLO;
	env.hello = &h;
	ck_assert_int_eq(frame_encode(&b, &env), 0);
	{
		Mqd__RetainedSync rs = MQD__RETAINED_SYNC__INIT;
		Mqd__Retained re = MQD__RETAINED__INIT, *rp = &re;

		re.topic.data = (uint8_t *)"r/+";
		re.topic.len = 3;
		rs.n_entries = 1;
		rs.entries = &rp;
		env.body_case = MQD__ENVELOPE__BODY_RETAINED_SYNC;
		env.retained_sync = &rs;
		ck_assert_int_eq(frame_encode(&b, &env), 0);
	}
	raw_expect(&a, b.data, b.len, "reason=\"bad retained\"");
	ck_assert_uint_eq(a.applied, 0);
	/* a bad nonce */
	buf_reset(&b);
	env.body_case = MQD__ENVELOPE__BODY_HELLO;
	env.hello = &h;
	h.nonce.len = 3;
	ck_assert_int_eq(frame_encode(&b, &env), 0);
	raw_expect(&a, b.data, b.len, "reason=\"bad hello\"");
	buf_fini(&b);
	/* the node lives on and z, which did say Hello, is a member */
	ck_assert(lookup(&a, "z").found);
	node_fini(&a);
}
END_TEST

START_TEST(test_kill_dead_restart_leave)
{
	struct node a = { 0 }, b = { 0 }, c = { 0 };
	struct node *ab[2] = { &a, &b };
	struct want_state ws = { ab, 2, "c", CLUSTER_DEAD };
	struct node *ac[2] = { &a, &c };
	struct want_state wl = { ac, 2, "b", CLUSTER_LEFT };
	struct node *v[3] = { &a, &b, &c };
	struct group g = { v, 3 };
	struct want_routes wr = { ab, 2, "c", 1 };
	const struct seen *sa, *sb;
	struct cluster_msg m;
	uint64_t t0;
	char seed[32];

	start_three(&a, &b, &c, "k");
	c.routes[c.n_routes++] = "k/#";
	cluster_route_add(c.c, B("k/#"), false);
	ck_assert(run_until(routes_are, &wr, WAIT_MS));

	/* c dies without a word */
	t0 = cluster_now_ms();
	cluster_test_kill(c.c);
	c.c = NULL;
	ck_assert(run_until(state_is, &ws, WAIT_MS));
	sa = seen(&a, "c");
	sb = seen(&b, "c");
	ck_assert(sa && sa->st == CLUSTER_DEAD && sb && sb->st == CLUSTER_DEAD);
	if (getenv("CLUSTER_TEST_VERBOSE"))
		fprintf(stderr, "dead after: a %llu ms, b %llu ms\n",
		        (unsigned long long)(sa->at_ms - t0),
		        (unsigned long long)(sb->at_ms - t0));
	ck_assert_msg(sa->at_ms - t0 <= DEAD_MS, "a: dead after %llu ms",
	              (unsigned long long)(sa->at_ms - t0));
	ck_assert_msg(sb->at_ms - t0 <= DEAD_MS, "b: dead after %llu ms",
	              (unsigned long long)(sb->at_ms - t0));
	/* a dead node loses its routes */
	ck_assert_uint_eq(routes_of(&a, "c"), 0);
	m = msg("k/1", "x", 0);
	ck_assert_uint_eq(cluster_publish(a.c, &m, NULL, NULL), 0);

	/* c comes back under the same name and id */
	c.n_routes = 0;
	c.routes[c.n_routes++] = "k/#";
	node_start(&c, "c", 3, seed_of(&a, seed, sizeof(seed)), "k");
	ck_assert(run_until(all_alive, &g, WAIT_MS));
	ck_assert(run_until(routes_are, &wr, WAIT_MS));
	ck_assert_uint_eq(cluster_publish(a.c, &m, NULL, NULL), 1);

	/* b leaves */
	cluster_stop(b.c);
	b.c = NULL;
	ck_assert(run_until(state_is, &wl, WAIT_MS));
	ck_assert_int_eq(seen(&a, "b")->st, CLUSTER_LEFT);
	ck_assert(!lookup(&a, "b").m.link_up);
	free(b.log);
	node_fini(&c);
	node_fini(&a);
}
END_TEST

/* A node that is only slow (not dead) refutes the suspicion. */
START_TEST(test_refute_suspicion)
{
	struct node a = { 0 }, b = { 0 };
	struct node *v[2] = { &a, &b };
	struct group g = { v, 2 };
	struct want_log w = { &b, "cluster refute node=b heard=suspect" };
	char seed[32];
	struct lookup q;
	uint64_t inc;

	node_start(&a, "a", 1, "", NULL);
	node_start(&b, "b", 2, seed_of(&a, seed, sizeof(seed)), NULL);
	ck_assert(run_until(all_alive, &g, WAIT_MS));
	inc = lookup(&a, "b").m.incarnation;
	/* a, on its own, decides that b is suspect (as after a lost Ack) */
	{
		struct member *mb = cluster_member_find(a.c, "b");

		ck_assert_ptr_nonnull(mb);
		swim_set_state(a.c, mb, CLUSTER_SUSPECT, mb->inc, true);
	}
	ck_assert(run_until(log_has, &w, WAIT_MS));
	ck_assert(run_until(all_alive, &g, WAIT_MS));
	q = lookup(&a, "b");
	ck_assert_uint_gt(q.m.incarnation, inc);
	ck_assert_ptr_null(strstr(a.log, "state=dead"));
	node_fini(&b);
	node_fini(&a);
}
END_TEST

START_TEST(test_start_errors)
{
	struct node a = { 0 }, b = { 0 };

	ck_assert_int_eq(node_start_full(&a, "", 1, "", NULL), ERR_MALFORMED);
	ck_assert_ptr_null(a.c);
	ck_assert_int_eq(node_start_full(&a, "a", 1, "host:99999", NULL),
	                 ERR_MALFORMED);
	ck_assert_ptr_nonnull(strstr(a.log, "cluster bad seed"));
	node_start(&a, "a", 1, "", NULL);
	/* b on a's port: cannot listen */
	{
		struct cluster_hooks h = { 0 };
		struct cluster_config cfg = { 0 };
		struct cluster *c = NULL;

		b.log = calloc(1, LOG_KEEP);
		b.name = "b";
		h.arg = &b;
		h.log = hook_log;
		cfg.node_name = "b";
		cfg.bind = "127.0.0.1";
		cfg.port = cluster_test_port(a.c);
		ck_assert_int_eq(cluster_start(base, &cfg, &h, &c), ERR_IO);
		ck_assert_ptr_null(c);
		ck_assert_ptr_nonnull(strstr(b.log, "cluster cannot listen"));
		free(b.log);
	}
	cluster_stop(NULL);
	cluster_route_add(NULL, B("x"), true);
	cluster_route_durable(NULL, B("x"), false);
	ck_assert_uint_eq(cluster_publish(NULL, NULL, NULL, NULL), 0);
	cluster_forward_ack(NULL, 1, 1);
	cluster_mark_restore(NULL, 1, 1);
	cluster_retained_set(NULL, NULL);
	node_fini(&a);
}
END_TEST

/* ---- retained ---- */

/* A retained change made on n, as broker makes one: stored, then
 * replicated. @return its stamp */
static uint64_t
retain_local(struct node *n, const char *topic, const char *payload)
{
	struct cluster_retained r = { 0 };

	r.topic = B(topic);
	r.payload = B(payload);
	r.qos = 1;
	r.stamp = cluster_hlc_now(n->c);
	r.origin_node = n->id;
	ck_assert(ret_store(n, &r));
	cluster_retained_set(n->c, &r);
	return r.stamp;
}

/* A retained message n holds before it starts (from its last run). */
static void
retain_offline(struct node *n, const char *topic, const char *payload,
               uint64_t id, uint64_t stamp)
{
	struct cluster_retained r = { 0 };

	r.topic = B(topic);
	r.payload = B(payload);
	r.stamp = stamp;
	r.origin_node = id;
	ck_assert(ret_store(n, &r));
}

struct want_ret {
	struct node **v;
	size_t n;
	const char *topic;
	uint64_t stamp;
};

static bool
ret_is(void *arg)
{
	struct want_ret *w = arg;
	const struct ret *e;
	size_t i;

	for (i = 0; i < w->n; i++) {
		e = ret_find(w->v[i], B(w->topic));
		if (e == NULL || e->stamp != w->stamp)
			return false;
	}
	return true;
}

struct want_size {
	struct node *n;
	size_t count;
};

static bool
ret_count_is(void *arg)
{
	struct want_size *w = arg;

	return w->n->n_ret >= w->count;
}

static bool
ret_payload_is(struct node *n, const char *topic, const char *payload)
{
	const struct ret *e = ret_find(n, B(topic));

	return e != NULL && e->payload_len == strlen(payload) &&
	       memcmp(e->payload, payload, e->payload_len) == 0;
}

START_TEST(test_hlc)
{
	struct node a = { 0 };
	uint64_t wall, prev, s, far;
	size_t i, bad = 0;

	/* the rules: wall time, else one more than the last */
	ck_assert(retained_hlc_next(0, 5) == UINT64_C(5) << 16);
	ck_assert(retained_hlc_next(UINT64_C(5) << 16, 5) ==
	          (UINT64_C(5) << 16) + 1);
	ck_assert(retained_hlc_next((UINT64_C(5) << 16) | 0xffff, 5) ==
	          UINT64_C(6) << 16); /* the counter carries */
	ck_assert(retained_hlc_next(UINT64_C(10) << 16, 3) ==
	          (UINT64_C(10) << 16) + 1); /* the wall clock went back */
	ck_assert(retained_hlc_next((UINT64_C(10) << 16) | 7, 11) ==
	          UINT64_C(11) << 16);
	/* NULL: the wall clock alone */
	wall = retained_wall_ms();
	s = cluster_hlc_now(NULL);
	ck_assert_uint_eq(s & 0xffff, 0);
	ck_assert_uint_ge(s >> 16, wall);
	ck_assert_uint_le(s >> 16, wall + 1000);

	node_start(&a, "a", 1, "", NULL);
	prev = cluster_hlc_now(a.c);
	ck_assert_uint_ge(prev >> 16, wall);
	/* more than 65536 in a millisecond: strictly increasing anyway */
	for (i = 0; i < 200000; i++) {
		s = cluster_hlc_now(a.c);
		bad += s <= prev;
		prev = s;
	}
	ck_assert_uint_eq(bad, 0);
	/* a received stamp ahead of the clock advances it */
	far = ((retained_wall_ms() + 10000) << 16) | 42;
	retained_hlc_observe(a.c, far);
	ck_assert(cluster_hlc_now(a.c) == far + 1);
	retained_hlc_observe(a.c, 1); /* an old one does not */
	ck_assert(cluster_hlc_now(a.c) == far + 2);
	node_fini(&a);
}
END_TEST

START_TEST(test_retained_replicate)
{
	struct node a = { 0 }, b = { 0 }, c = { 0 };
	struct node *bc[2] = { &b, &c }, *ac[2] = { &a, &c };
	struct node *abc[3] = { &a, &b, &c };
	struct want_ret w = { bc, 2, "r/1", 0 };
	struct want_log wl = { &a, "reason=\"stamp ahead of the clock\"" };
	struct cluster_retained r = { 0 };
	const struct ret *e;
	uint64_t ts, far;
	size_t applied;

	start_three(&a, &b, &c, NULL);
	r.topic = B("r/1");
	r.payload = B("v1");
	r.props = (struct mqtt_bytes){ (const uint8_t *)"\x02\x01\x01", 3 };
	r.qos = 1;
	r.expiry_s = 60;
	r.stamp = cluster_hlc_now(a.c);
	r.origin_node = 1;
	ck_assert(ret_store(&a, &r));
	cluster_retained_set(a.c, &r);
	w.stamp = r.stamp;
	ck_assert(run_until(ret_is, &w, WAIT_MS));
	e = ret_find(&b, B("r/1"));
	ck_assert(ret_payload_is(&b, "r/1", "v1"));
	ck_assert_uint_eq(e->props_len, 3);
	ck_assert(memcmp(e->payload + 2, "\x02\x01\x01", 3) == 0);
	ck_assert_uint_eq(e->qos, 1);
	ck_assert_uint_eq(e->expiry_s, 60);
	ck_assert_uint_eq(e->origin, 1);
	ck_assert(ret_payload_is(&c, "r/1", "v1"));

	/* b clears it: a tombstone, stamped after the change b received */
	ts = retain_local(&b, "r/1", "");
	ck_assert(ts > r.stamp);
	w.v = ac;
	w.stamp = ts;
	ck_assert(run_until(ret_is, &w, WAIT_MS));
	ck_assert(ret_payload_is(&a, "r/1", ""));
	ck_assert_uint_eq(ret_find(&c, B("r/1"))->origin, 2);

	/* an older change still arrives, and loses (broker's rule) */
	applied = a.applied;
	cluster_retained_set(c.c, &r);
	w.v = abc;
	w.topic = "r/marker";
	w.stamp = retain_local(&c, "r/marker", "m");
	ck_assert(run_until(ret_is, &w, WAIT_MS));
	ck_assert_uint_eq(a.applied, applied + 2);
	ck_assert(ret_payload_is(&a, "r/1", ""));

	/* b's clock runs 10 s ahead: its stamp advances a's clock */
	far = (retained_wall_ms() + 10000) << 16;
	r.topic = B("r/far");
	r.stamp = far;
	r.origin_node = 2;
	cluster_retained_set(b.c, &r);
	w.v = ac;
	w.topic = "r/far";
	w.stamp = far;
	ck_assert(run_until(ret_is, &w, WAIT_MS));
	ck_assert(cluster_hlc_now(a.c) > far);
	ck_assert(cluster_hlc_now(c.c) > far);

	/* two hours ahead: refused, the clock stays */
	far = (retained_wall_ms() + 2 * 3600 * 1000) << 16;
	r.topic = B("r/bad");
	r.stamp = far;
	cluster_retained_set(b.c, &r);
	ck_assert(run_until(log_has, &wl, WAIT_MS));
	ck_assert_ptr_null(ret_find(&a, B("r/bad")));
	ck_assert(cluster_hlc_now(a.c) < far);

	node_fini(&c);
	node_fini(&b);
	node_fini(&a);
}
END_TEST

/* Each side sends its whole set when a link comes up: a node that joins
 * (or comes back) catches up and hands over what it had. */
START_TEST(test_retained_join)
{
	struct node a = { 0 }, b = { 0 }, c = { 0 };
	struct node *ab[2] = { &a, &b };
	struct node *abc[3] = { &a, &b, &c };
	struct group g = { ab, 2 };
	struct want_ret w = { &ab[1], 1, "a/1", 0 };
	struct want_log wc = { &c,
		               "cluster retained snapshot node=a entries=" };
	struct want_log wa = { &a,
		               "cluster retained snapshot node=c entries=" };
	uint64_t s1, s2, sb, ts;
	char seed[32];

	node_start(&a, "a", 1, "", NULL);
	s1 = retain_local(&a, "a/1", "one"); /* no peer yet */
	s2 = retain_local(&a, "a/2", "two");
	retain_offline(&b, "b/1", "bee", 2, sb = cluster_hlc_now(NULL));
	node_start(&b, "b", 2, seed_of(&a, seed, sizeof(seed)), NULL);
	ck_assert(run_until(all_alive, &g, WAIT_MS));
	w.stamp = s1;
	ck_assert(run_until(ret_is, &w, WAIT_MS));
	w.topic = "a/2";
	w.stamp = s2;
	ck_assert(run_until(ret_is, &w, WAIT_MS));
	w.v = ab; /* a got b's set */
	w.topic = "b/1";
	w.stamp = sb;
	ck_assert(run_until(ret_is, &w, WAIT_MS));

	/* b clears a/2 */
	ts = retain_local(&b, "a/2", "");
	w.v = ab;
	w.n = 2;
	w.topic = "a/2";
	w.stamp = ts;
	ck_assert(run_until(ret_is, &w, WAIT_MS));

	/* c held c/1 and a stale a/1 from before: it joins */
	retain_offline(&c, "c/1", "sea", 3, cluster_hlc_now(a.c));
	retain_offline(&c, "a/1", "stale", 3, 1);
	node_start(&c, "c", 3, seed, NULL);
	w.v = abc;
	w.n = 3;
	w.topic = "c/1";
	w.stamp = ret_find(&c, B("c/1"))->stamp;
	ck_assert(run_until(ret_is, &w, WAIT_MS));
	w.topic = "a/1";
	w.stamp = s1;
	ck_assert(run_until(ret_is, &w, WAIT_MS));
	w.topic = "a/2";
	w.stamp = ts;
	ck_assert(run_until(ret_is, &w, WAIT_MS));
	w.topic = "b/1";
	w.stamp = sb;
	ck_assert(run_until(ret_is, &w, WAIT_MS));
	ck_assert(ret_payload_is(&c, "a/1", "one"));
	ck_assert(ret_payload_is(&a, "a/1", "one"));
	ck_assert(ret_payload_is(&c, "a/2", "")); /* the tombstone */
	ck_assert(ret_payload_is(&c, "b/1", "bee"));
	ck_assert_uint_eq(c.n_ret, 4);
	ck_assert_uint_eq(a.n_ret, 4);
	ck_assert(run_until(log_has, &wc, WAIT_MS));
	ck_assert(run_until(log_has, &wa, WAIT_MS));
	node_fini(&c);
	node_fini(&b);
	node_fini(&a);
}
END_TEST

#define BIG_N   5000
#define BIG_LEN 4096 /* 20 MB in all: more than one frame can hold */

/* A snapshot larger than CLUSTER_FRAME_MAX arrives complete, in parts. */
START_TEST(test_retained_large)
{
	struct node a = { 0 }, b = { 0 };
	struct want_size ws = { &b, BIG_N };
	struct want_log wb = { &b, "cluster retained snapshot node=a "
		                   "entries=5000\n" };
	struct cluster_retained r = { 0 };
	static uint8_t pay[BIG_LEN];
	char topic[32], seed[32];
	const struct ret *e;
	size_t i, bad = 0;

	ck_assert_uint_gt((size_t)BIG_N * BIG_LEN, CLUSTER_FRAME_MAX);
	node_start(&a, "a", 1, "", NULL);
	for (i = 0; i < BIG_N; i++) {
		snprintf(topic, sizeof(topic), "big/%zu", i);
		memset(pay, (int)(i & 0xff), sizeof(pay));
		memcpy(pay, topic, strlen(topic));
		r.topic = B(topic);
		r.payload = (struct mqtt_bytes){ pay, sizeof(pay) };
		r.stamp = cluster_hlc_now(a.c);
		r.origin_node = 1;
		ck_assert(ret_store(&a, &r));
	}
	node_start(&b, "b", 2, seed_of(&a, seed, sizeof(seed)), NULL);
	ck_assert(run_until(ret_count_is, &ws, 4 * WAIT_MS));
	ck_assert(run_until(log_has, &wb, WAIT_MS));
	ck_assert_uint_eq(b.n_ret, BIG_N);
	for (i = 0; i < BIG_N; i++) {
		snprintf(topic, sizeof(topic), "big/%zu", i);
		memset(pay, (int)(i & 0xff), sizeof(pay));
		memcpy(pay, topic, strlen(topic));
		e = ret_find(&b, B(topic));
		bad += e == NULL || e->payload_len != BIG_LEN ||
		       memcmp(e->payload, pay, BIG_LEN) != 0 ||
		       e->stamp != ret_find(&a, B(topic))->stamp;
	}
	ck_assert_uint_eq(bad, 0);
	node_fini(&b);
	node_fini(&a);
}
END_TEST

static Suite *
cluster_suite(void)
{
	Suite *s = suite_create("cluster");
	TCase *tc = tcase_create("multi");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_join_routes_publish);
	tcase_add_test(tc, test_snapshot_on_join);
	tcase_add_test(tc, test_forward_acked);
	tcase_add_test(tc, test_outbox_dead_peer);
	tcase_add_test(tc, test_shared_group_durable);
	tcase_add_test(tc, test_outbox_restore);
	tcase_add_test(tc, test_secret);
	tcase_add_test(tc, test_duplicate_name);
	tcase_add_test(tc, test_self_seed);
	tcase_add_test(tc, test_simultaneous_dial);
	tcase_add_test(tc, test_restart_replaces_stale_link);
	tcase_add_test(tc, test_bad_frames);
	tcase_add_test(tc, test_kill_dead_restart_leave);
	tcase_add_test(tc, test_refute_suspicion);
	tcase_add_test(tc, test_start_errors);
	tcase_add_test(tc, test_hlc);
	tcase_add_test(tc, test_retained_replicate);
	tcase_add_test(tc, test_retained_join);
	tcase_add_test(tc, test_retained_large);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(cluster_suite());
	int failed;

	/* as broker does: a peer that closes mid-write is an error, not a
	 * signal */
	signal(SIGPIPE, SIG_IGN);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
