/*
 * The cluster's entry points (start, stop with Leave, route announcements,
 * publish forwarding, the member listing), the route snapshot and deltas,
 * the dispatch of an established link's frames, logging through the hooks
 * and the test hooks.
 */
#include "cluster/cluster.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/crypto.h>

#include "cluster/cluster.pb-c.h"
#include "cluster/cluster_int.h"

#define CLUSTER_PING_MS_DEFAULT    1000
#define CLUSTER_DEAD_MS_DEFAULT    5000
#define CLUSTER_OUTBOX_MAX_DEFAULT 100000
#define CLUSTER_LOG_PER_SEC        20         /* cluster_log_limited lines */
#define CLUSTER_OUT_KEEP           (1u << 20) /* scratch kept between frames */

uint64_t
cluster_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void
cluster_timer_add(struct event *ev, uint64_t ms)
{
	struct timeval tv = { (time_t)(ms / 1000),
		              (suseconds_t)(ms % 1000) * 1000 };

	evtimer_add(ev, &tv);
}

static void
cluster_vlog(struct cluster *c, int level, const char *fmt, va_list ap)
{
	char line[512];

	if (c->hooks.log == NULL)
		return;
	vsnprintf(line, sizeof(line), fmt, ap);
	c->hooks.log(c->hooks.arg, level, line);
}

void
cluster_log(struct cluster *c, int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cluster_vlog(c, level, fmt, ap);
	va_end(ap);
}

void
cluster_log_limited(struct cluster *c, int level, const char *fmt, ...)
{
	uint64_t now = cluster_now_ms();
	va_list ap;

	if (now - c->log_window_ms >= 1000) {
		if (c->log_dropped > 0)
			cluster_log(c, CLUSTER_LOG_WARN,
			            "cluster log lines suppressed count=%u",
			            (unsigned)c->log_dropped);
		c->log_window_ms = now;
		c->log_lines = 0;
		c->log_dropped = 0;
	}
	if (c->log_lines >= CLUSTER_LOG_PER_SEC) {
		c->log_dropped++;
		return;
	}
	c->log_lines++;
	va_start(ap, fmt);
	cluster_vlog(c, level, fmt, ap);
	va_end(ap);
}

/* A linear scan: member counts are small (CLUSTER_MEMBERS_MAX). */
struct member *
cluster_member_find(struct cluster *c, const char *name)
{
	size_t i;

	for (i = 0; i < c->n_members; i++) {
		if (strcmp(c->members[i]->name, name) == 0)
			return c->members[i];
	}
	return NULL;
}

static int
cluster_members_grow(struct cluster *c)
{
	size_t cap = c->cap_members ? c->cap_members * 2 : 8;
	struct member **v;
	uint64_t *ids;

	v = realloc(c->members, cap * sizeof(*v));
	if (v == NULL)
		return ERR_NOMEM;
	c->members = v;
	v = realloc(c->targets, cap * sizeof(*v));
	if (v == NULL)
		return ERR_NOMEM; /* members is larger than needed: harmless */
	c->targets = v;
	ids = realloc(c->fwd_ids, cap * sizeof(*ids));
	if (ids == NULL)
		return ERR_NOMEM;
	c->fwd_ids = ids;
	c->cap_members = cap;
	return 0;
}

struct member *
cluster_member_add(struct cluster *c, const char *name, uint64_t node_id,
                   const char *addr)
{
	struct member *m;

	if (c->n_members >= CLUSTER_MEMBERS_MAX) {
		cluster_log_limited(c, CLUSTER_LOG_WARN,
		                    "cluster member ignored node=%s "
		                    "reason=\"member table full\"",
		                    name);
		return NULL;
	}
	if (c->n_members == c->cap_members && cluster_members_grow(c) != 0)
		return NULL;
	m = calloc(1, sizeof(*m));
	if (m == NULL)
		return NULL;
	m->name = strdup(name);
	m->addr = strdup(addr);
	if (m->name == NULL || m->addr == NULL) {
		free(m->name);
		free(m->addr);
		free(m);
		return NULL;
	}
	m->c = c;
	m->slot = (uint32_t)c->n_members;
	m->node_id = node_id;
	m->state = CLUSTER_ALIVE;
	m->backoff_ms = CLUSTER_BACKOFF_MIN_MS;
	m->heard_ms = cluster_now_ms();
	c->members[c->n_members++] = m;
	return m;
}

void
cluster_out_trim(struct cluster *c)
{
	if (c->out.cap > CLUSTER_OUT_KEEP) {
		buf_fini(&c->out);
		buf_init(&c->out);
	}
}

/* ---- routes ---- */

static void
cluster_snap_collect(void *ctx, struct mqtt_bytes filter, bool durable)
{
	struct buf *all = ctx;

	buf_put_u8(all, durable);
	buf_put_u32(all, (uint32_t)filter.len);
	buf_put_bytes(all, filter.p, filter.len);
}

/* Sends the next part of a snapshot (filters read from r, each a durable
 * byte, a u32 length and bytes, up to CLUSTER_SNAP_PART bytes). */
static int
cluster_send_snap_part(struct cluster *c, struct link *l, struct rd *r)
{
	Mqd__Envelope env = MQD__ENVELOPE__INIT;
	Mqd__RouteSnapshot s = MQD__ROUTE_SNAPSHOT__INIT;
	struct rd scan = *r;
	size_t i, n = 0, bytes = 0;
	ProtobufCBinaryData *v;
	protobuf_c_boolean *dv;
	const uint8_t *p;
	uint32_t len;
	uint8_t d;
	int rc;

	while (bytes < CLUSTER_SNAP_PART && rd_u8(&scan, &d) == 0 &&
	       rd_u32(&scan, &len) == 0 && rd_bytes(&scan, len, &p) == 0) {
		bytes += 5 + (size_t)len;
		n++;
	}
	v = calloc(n ? n : 1, sizeof(*v));
	dv = calloc(n ? n : 1, sizeof(*dv));
	if (v == NULL || dv == NULL) {
		free(v);
		free(dv);
		link_close(l, CLUSTER_LOG_ERROR, "out of memory");
		return ERR_NOMEM;
	}
	for (i = 0; i < n; i++) {
		rd_u8(r, &d);
		rd_u32(r, &len);
		rd_bytes(r, len, &p);
		v[i].data = (uint8_t *)p;
		v[i].len = len;
		dv[i] = d != 0;
	}
	s.seq = c->route_seq;
	s.n_filters = n;
	s.filters = v;
	s.n_durable = n;
	s.durable = dv;
	s.more = r->left > 0;
	env.body_case = MQD__ENVELOPE__BODY_ROUTE_SNAPSHOT;
	env.route_snapshot = &s;
	rc = link_send(l, &env);
	free(v);
	free(dv);
	return rc;
}

void
cluster_send_routes(struct cluster *c, struct link *l)
{
	struct buf all;
	struct rd r;

	buf_init(&all);
	if (c->hooks.each_route != NULL)
		c->hooks.each_route(c->hooks.arg, cluster_snap_collect, &all);
	if (buf_failed(&all)) {
		link_close(l, CLUSTER_LOG_ERROR, "out of memory");
		goto out_free;
	}
	rd_init(&r, all.data, all.len);
	while (cluster_send_snap_part(c, l, &r) == 0 && r.left > 0)
		;
out_free:
	buf_fini(&all);
	cluster_out_trim(c);
}

/* Adds or deletes one route of l's member. @return 0, or ERR_* with the
 * link closed */
static int
cluster_route_apply(struct link *l, bool add, ProtobufCBinaryData f,
                    bool durable)
{
	struct cluster *c = l->c;
	struct mqtt_bytes b = { f.data, f.len };
	struct member *m = l->m;

	if (!mqtt_topic_filter_is_valid(b)) {
		link_close(l, CLUSTER_LOG_WARN, "bad route filter");
		return ERR_BAD_FILTER;
	}
	if (b.len > 7 && memcmp(b.p, "$share/", 7) == 0) {
		/* a shared subscription group: by key; durable when a
		 * persistent session is a member */
		if (!add) {
			rtab_del(&c->shared, b, m->slot);
			rtab_del(&c->shared_durable, b, m->slot);
			return 0;
		}
		if (rtab_node_routes(&c->shared, m->slot) >=
		    CLUSTER_ROUTES_MAX) {
			link_close(l, CLUSTER_LOG_WARN, "too many routes");
			return ERR_LIMIT;
		}
		if (rtab_add(&c->shared, b, m->slot) == ERR_NOMEM ||
		    (durable &&
		     rtab_add(&c->shared_durable, b, m->slot) == ERR_NOMEM)) {
			link_close(l, CLUSTER_LOG_ERROR, "out of memory");
			return ERR_NOMEM;
		}
		if (!durable)
			rtab_del(&c->shared_durable, b, m->slot);
		return 0;
	}
	if (!add) {
		rtab_del(&c->routes, b, m->slot); /* absent: nothing to do */
		rtab_del(&c->durable, b, m->slot);
		return 0;
	}
	if (rtab_node_routes(&c->routes, m->slot) >= CLUSTER_ROUTES_MAX) {
		link_close(l, CLUSTER_LOG_WARN, "too many routes");
		return ERR_LIMIT;
	}
	if (rtab_add(&c->routes, b, m->slot) == ERR_NOMEM ||
	    (durable && rtab_add(&c->durable, b, m->slot) == ERR_NOMEM)) {
		link_close(l, CLUSTER_LOG_ERROR, "out of memory");
		return ERR_NOMEM;
	}
	if (!durable)
		rtab_del(&c->durable, b, m->slot);
	return 0;
}

/* The first part replaces what the member held; routes_synced once the
 * last part is in. */
static void
cluster_on_snapshot(struct link *l, const Mqd__RouteSnapshot *s)
{
	struct cluster *c = l->c;
	struct member *m = l->m;
	size_t i;

	if (!m->snap_open) {
		rtab_drop_node(&c->routes, m->slot);
		rtab_drop_node(&c->durable, m->slot);
		rtab_drop_node(&c->shared, m->slot);
		rtab_drop_node(&c->shared_durable, m->slot);
		m->snap_open = true;
		m->routes_synced = false;
	}
	for (i = 0; i < s->n_filters; i++) {
		bool durable = i < s->n_durable && s->durable[i];
		if (cluster_route_apply(l, true, s->filters[i], durable) != 0)
			return;
	}
	if (s->more)
		return;
	m->snap_open = false;
	m->routes_synced = true;
	m->route_seq = s->seq;
	cluster_log(c, CLUSTER_LOG_DEBUG,
	            "cluster routes node=%s filters=%zu seq=%" PRIu64, m->name,
	            rtab_node_routes(&c->routes, m->slot), s->seq);
}

/* Deltas follow the snapshot on the same link, so on TCP a gap means a
 * bug: the link is dropped, and the redial brings a fresh snapshot. */
static void
cluster_on_delta(struct link *l, const Mqd__RouteDelta *d)
{
	struct member *m = l->m;

	if (!m->routes_synced || d->seq != m->route_seq + 1) {
		link_close(l, CLUSTER_LOG_WARN, "route delta out of sequence");
		return;
	}
	if (cluster_route_apply(l, d->add, d->filter, d->durable) == 0)
		m->route_seq = d->seq;
}

/* @p update: an add for a filter held already (its durable flag). */
static void
cluster_route_send(struct cluster *c, struct mqtt_bytes filter, bool add,
                   bool durable, bool update)
{
	Mqd__Envelope env = MQD__ENVELOPE__INIT;
	Mqd__RouteDelta d = MQD__ROUTE_DELTA__INIT;
	struct link *l;
	size_t i;

	c->route_seq++;
	if (add && !update)
		c->own_routes++;
	else if (c->own_routes > 0)
		c->own_routes--;
	d.seq = c->route_seq;
	d.add = add;
	d.durable = durable;
	d.filter.data = (uint8_t *)filter.p;
	d.filter.len = filter.len;
	env.body_case = MQD__ENVELOPE__BODY_ROUTE_DELTA;
	env.route_delta = &d;
	buf_reset(&c->out);
	if (frame_encode(&c->out, &env) != 0) {
		/* the peers see a gap, drop the link and get a snapshot */
		cluster_log(c, CLUSTER_LOG_ERROR,
		            "cluster route delta not sent seq=%" PRIu64
		            " reason=\"out of memory\"",
		            d.seq);
		return;
	}
	for (i = 0; i < c->n_members; i++) {
		l = c->members[i]->link;
		if (l != NULL)
			link_send_raw(l, c->out.data, c->out.len);
	}
}

void
cluster_route_add(struct cluster *c, struct mqtt_bytes filter, bool durable)
{
	if (c != NULL)
		cluster_route_send(c, filter, true, durable, false);
}

void
cluster_route_durable(struct cluster *c, struct mqtt_bytes filter, bool durable)
{
	if (c != NULL)
		cluster_route_send(c, filter, true, durable, true);
}

void
cluster_route_del(struct cluster *c, struct mqtt_bytes filter)
{
	if (c != NULL)
		cluster_route_send(c, filter, false, false, false);
}

/* ---- publish ---- */

struct pub_ctx {
	struct cluster *c;
	bool qos0; /* only linked members that are ALIVE or SUSPECT */
};

static void
cluster_pub_collect(void *arg, uint32_t slot)
{
	struct pub_ctx *x = arg;
	struct cluster *c = x->c;
	struct member *m = c->members[slot];

	if (m->pub_gen == c->pub_gen)
		return; /* matched in the other table */
	if (x->qos0 && (m->state > CLUSTER_SUSPECT || m->link == NULL))
		return;
	m->pub_gen = c->pub_gen;
	c->targets[c->n_targets++] = m;
}

/* The shared groups of @p m assigned to node @p id, into @p out (at most
 * CLUSTER_GROUPS_MAX). @return how many */
static size_t
cluster_groups_for(const struct cluster_msg *m, uint64_t id,
                   ProtobufCBinaryData *out)
{
	size_t i, n = 0;

	for (i = 0; i < m->n_shares && n < CLUSTER_GROUPS_MAX; i++) {
		if (m->shares[i].node_id != id)
			continue;
		out[n].data = (uint8_t *)m->shares[i].key.p;
		out[n++].len = m->shares[i].key.len;
	}
	return n;
}

/* Sends a QoS 0 message to the members in c->targets, each with the
 * shared groups assigned to it. */
static size_t
cluster_publish_qos0(struct cluster *c, const struct cluster_msg *m)
{
	Mqd__Envelope env = MQD__ENVELOPE__INIT;
	Mqd__Publish p = MQD__PUBLISH__INIT;
	ProtobufCBinaryData groups[CLUSTER_GROUPS_MAX];
	size_t i, sent = 0;
	struct link *l;
	int rc = 0;

	p.origin_node = m->origin_node;
	p.msg_id = m->msg_id;
	p.topic.data = (uint8_t *)m->topic.p;
	p.topic.len = m->topic.len;
	p.payload.data = (uint8_t *)m->payload.p;
	p.payload.len = m->payload.len;
	p.props.data = (uint8_t *)m->props.p;
	p.props.len = m->props.len;
	p.qos = m->qos;
	p.retain = m->retain;
	p.expiry_s = m->expiry_s;
	p.origin_client.data = (uint8_t *)m->origin_client.p;
	p.origin_client.len = m->origin_client.len;
	env.body_case = MQD__ENVELOPE__BODY_PUBLISH;
	env.publish = &p;
	p.groups = groups;
	for (i = 0; i < c->n_targets; i++) {
		/* one encoding for all, unless groups differ per node */
		if (i == 0 || m->n_shares > 0) {
			p.n_groups = cluster_groups_for(
			        m, c->targets[i]->node_id, groups);
			buf_reset(&c->out);
			rc = frame_encode(&c->out, &env);
		}
		if (rc != 0)
			break;
		l = c->targets[i]->link;
		if (l != NULL && link_send_raw(l, c->out.data, c->out.len) == 0)
			sent++;
	}
	if (rc != 0)
		cluster_log_limited(c, CLUSTER_LOG_WARN,
		                    "cluster publish not forwarded "
		                    "topic_len=%zu payload_len=%zu err=\"%s\"",
		                    m->topic.len, m->payload.len, err_str(rc));
	cluster_out_trim(c);
	return sent;
}

/* Adds the peers that serve a shared group of @p m to c->targets. */
static void
cluster_pub_shares(struct cluster *c, const struct cluster_msg *m)
{
	struct member *t;
	size_t i, j;

	for (i = 0; i < m->n_shares; i++) {
		for (j = 0; j < c->n_members; j++) {
			t = c->members[j];
			if (t->self || t->node_id != m->shares[i].node_id)
				continue;
			if (t->pub_gen != c->pub_gen) {
				t->pub_gen = c->pub_gen;
				c->targets[c->n_targets++] = t;
			}
			break;
		}
	}
}

size_t
cluster_publish(struct cluster *c, const struct cluster_msg *m, void *cookie,
                struct cluster_fwd *out)
{
	struct cluster_fwd f = { 0, 0, 0, NULL };
	struct pub_ctx x;
	struct member *t;
	bool linked;
	size_t i;

	if (out != NULL)
		*out = f;
	if (c == NULL)
		return 0;
	x.c = c;
	x.qos0 = m->qos == 0;
	if (++c->pub_gen == 0) {
		for (i = 0; i < c->n_members; i++)
			c->members[i]->pub_gen = 0;
		c->pub_gen = 1;
	}
	c->n_targets = 0;
	rtab_match(&c->routes, m->topic, cluster_pub_collect, &x);
	if (!x.qos0)
		/* a dead node's persistent sessions still wait for it */
		rtab_match(&c->durable, m->topic, cluster_pub_collect, &x);
	cluster_pub_shares(c, m);
	if (c->n_targets == 0)
		return 0;
	if (x.qos0)
		return cluster_publish_qos0(c, m);
	for (i = 0; i < c->n_targets; i++) {
		t = c->targets[i];
		linked = t->state <= CLUSTER_SUSPECT && t->link != NULL &&
		         t->link->st == LINK_UP;
		if (fwd_queue(c, t, m, linked ? cookie : NULL) != 0)
			continue; /* full: counted and logged */
		c->fwd_ids[f.n_peers++] = t->node_id;
		if (linked) {
			f.sent++;
			f.waiting++;
		}
	}
	f.peers = c->fwd_ids;
	if (out != NULL)
		*out = f;
	return f.sent;
}

static void
cluster_on_publish(struct link *l, const Mqd__Publish *p)
{
	struct cluster_share shares[CLUSTER_GROUPS_MAX];
	struct cluster *c = l->c;
	struct cluster_msg m;
	size_t i;

	m.topic = (struct mqtt_bytes){ p->topic.data, p->topic.len };
	if (p->qos > 2 || !mqtt_topic_name_is_valid(m.topic) ||
	    (p->ack && (p->qos == 0 || p->origin_node != l->m->node_id))) {
		link_close(l, CLUSTER_LOG_WARN, "bad publish");
		return;
	}
	m.origin_node = p->origin_node;
	m.msg_id = p->msg_id;
	m.payload = (struct mqtt_bytes){ p->payload.data, p->payload.len };
	m.props = (struct mqtt_bytes){ p->props.data, p->props.len };
	m.qos = (uint8_t)p->qos;
	m.retain = p->retain;
	m.expiry_s = p->expiry_s;
	m.origin_client = (struct mqtt_bytes){ p->origin_client.data,
		                               p->origin_client.len };
	m.ack = p->ack;
	if (p->n_groups > CLUSTER_GROUPS_MAX) {
		link_close(l, CLUSTER_LOG_WARN, "bad publish");
		return;
	}
	for (i = 0; i < p->n_groups; i++) {
		shares[i].node_id = 0;
		shares[i].key = (struct mqtt_bytes){ p->groups[i].data,
			                             p->groups[i].len };
	}
	m.shares = shares;
	m.n_shares = p->n_groups;
	m.dup = p->ack && fwd_on_publish(l, p->origin_node, p->msg_id);
	if (c->hooks.deliver != NULL)
		c->hooks.deliver(c->hooks.arg, &m);
	else if (m.ack)
		cluster_forward_ack(c, m.origin_node, m.msg_id);
}

void
cluster_on_frame(struct link *l, const Mqd__Envelope *env)
{
	struct cluster *c = l->c;
	char why[80];

	switch (env->body_case) {
	case MQD__ENVELOPE__BODY_PING:
		swim_apply(c, env->ping->members, env->ping->n_members);
		if (!l->closing)
			swim_on_ping(l, env->ping->seq);
		break;
	case MQD__ENVELOPE__BODY_ACK:
		swim_apply(c, env->ack->members, env->ack->n_members);
		swim_on_ack(l, env->ack->seq, env->ack->target);
		break;
	case MQD__ENVELOPE__BODY_PING_REQ:
		swim_apply(c, env->ping_req->members, env->ping_req->n_members);
		swim_on_ping_req(l, env->ping_req->seq, env->ping_req->target);
		break;
	case MQD__ENVELOPE__BODY_GOSSIP:
		swim_apply(c, env->gossip->members, env->gossip->n_members);
		break;
	case MQD__ENVELOPE__BODY_ROUTE_SNAPSHOT:
		cluster_on_snapshot(l, env->route_snapshot);
		break;
	case MQD__ENVELOPE__BODY_ROUTE_DELTA:
		cluster_on_delta(l, env->route_delta);
		break;
	case MQD__ENVELOPE__BODY_PUBLISH:
		cluster_on_publish(l, env->publish);
		break;
	case MQD__ENVELOPE__BODY_TAKEOVER:
		takeover_on_request(l, env->takeover);
		break;
	case MQD__ENVELOPE__BODY_TAKEOVER_REPLY:
		takeover_on_reply(l, env->takeover_reply);
		break;
	case MQD__ENVELOPE__BODY_PUB_ACK:
		fwd_on_ack(l, env->pub_ack);
		break;
	case MQD__ENVELOPE__BODY_LEAVE:
		swim_on_leave(l, env->leave->incarnation);
		break;
	case MQD__ENVELOPE__BODY_RETAINED_SYNC:
		retained_on_sync(l, env->retained_sync);
		break;
	default:
		snprintf(why, sizeof(why), "unexpected %s frame",
		         frame_body_name(env));
		link_close(l, CLUSTER_LOG_WARN, why);
		break;
	}
}

/* ---- start / stop ---- */

static void
cluster_free(struct cluster *c)
{
	struct member *m;
	size_t i;

	link_free_all(c);
	fwd_free_all(c);
	takeover_free_all(c);
	if (c->tick_ev != NULL)
		event_free(c->tick_ev);
	if (c->probe_ev != NULL)
		event_free(c->probe_ev);
	cluster_admin_free(c);
	for (i = 0; i < c->n_members; i++) {
		m = c->members[i];
		if (m->dial_ev != NULL)
			event_free(m->dial_ev);
		if (m->dead_ev != NULL)
			event_free(m->dead_ev);
		free(m->name);
		free(m->addr);
		free(m);
	}
	free(c->members);
	free(c->targets);
	free(c->fwd_ids);
	for (i = 0; i < c->n_seeds; i++) {
		if (c->seeds[i].ev != NULL)
			event_free(c->seeds[i].ev);
		free(c->seeds[i].addr);
	}
	free(c->seeds);
	rtab_fini(&c->routes);
	rtab_fini(&c->durable);
	rtab_fini(&c->shared);
	rtab_fini(&c->shared_durable);
	buf_fini(&c->out);
	if (c->secret != NULL)
		OPENSSL_cleanse(c->secret, c->secret_len);
	free(c->secret);
	free(c->name);
	free(c);
}

/* host:port, with brackets around an IPv6 address. */
static int
cluster_addr_join(char *out, size_t n, const char *host, const char *port)
{
	int w = snprintf(out, n, strchr(host, ':') ? "[%s]:%s" : "%s:%s", host,
	                 port);

	return w < 0 || (size_t)w >= n ? ERR_MALFORMED : 0;
}

/* The address peers dial: cfg->advertise (a host alone gets the bound
 * port), else bind:port, with the host name for a wildcard bind. */
static int
cluster_self_addr(struct cluster *c, const struct cluster_config *cfg,
                  char *addr, size_t n)
{
	char host[CLUSTER_ADDR_MAX + 1], port[8];
	const char *bind = cfg->bind ? cfg->bind : "";

	if (cfg->advertise != NULL && cfg->advertise[0] != '\0') {
		if (member_addr_split(cfg->advertise, c->port, host,
		                      sizeof(host), port, sizeof(port)) != 0)
			return ERR_MALFORMED;
		return cluster_addr_join(addr, n, host, port);
	}
	snprintf(port, sizeof(port), "%u", (unsigned)c->port);
	if (bind[0] != '\0' && strcmp(bind, "0.0.0.0") != 0 &&
	    strcmp(bind, "::") != 0)
		return cluster_addr_join(addr, n, bind, port);
	if (gethostname(host, sizeof(host)) != 0)
		return ERR_IO;
	host[sizeof(host) - 1] = '\0';
	return cluster_addr_join(addr, n, host, port);
}

static int
cluster_self_init(struct cluster *c, const struct cluster_config *cfg)
{
	char addr[CLUSTER_ADDR_MAX + 1];
	struct timespec ts;
	struct member *m;

	if (cluster_self_addr(c, cfg, addr, sizeof(addr)) != 0) {
		cluster_log(c, CLUSTER_LOG_ERROR,
		            "cluster bad address advertise=\"%s\" bind=\"%s\"",
		            cfg->advertise ? cfg->advertise : "",
		            cfg->bind ? cfg->bind : "");
		return ERR_MALFORMED;
	}
	m = cluster_member_add(c, c->name, c->node_id, addr);
	if (m == NULL)
		return ERR_NOMEM;
	/* the start time, so that a restarted node's claims win at once */
	clock_gettime(CLOCK_REALTIME, &ts);
	m->inc = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	m->self = true;
	m->gossip_left = 0;
	c->boot = m->inc;
	c->self = m;
	return 0;
}

static int
cluster_seed_add(struct cluster *c, const char *p, size_t len)
{
	char addr[CLUSTER_ADDR_MAX + 1], host[CLUSTER_ADDR_MAX + 1], port[8];
	struct seed *s;

	if (len > CLUSTER_ADDR_MAX)
		goto out_bad;
	memcpy(addr, p, len);
	addr[len] = '\0';
	if (member_addr_split(addr, CLUSTER_PORT_DEFAULT, host, sizeof(host),
	                      port, sizeof(port)) != 0)
		goto out_bad;
	s = &c->seeds[c->n_seeds];
	s->addr = malloc(len + 1);
	if (s->addr == NULL)
		return ERR_NOMEM;
	memcpy(s->addr, p, len);
	s->addr[len] = '\0';
	s->c = c;
	s->backoff_ms = CLUSTER_BACKOFF_MIN_MS;
	c->n_seeds++;
	link_dial_seed_later(s, 0);
	return 0;
out_bad:
	cluster_log(c, CLUSTER_LOG_ERROR, "cluster bad seed seed=\"%.*s\"",
	            (int)(len > 64 ? 64 : len), p);
	return ERR_MALFORMED;
}

/* "host:port,host:port": spaces around entries and empty entries are
 * skipped. */
static int
cluster_seeds_init(struct cluster *c, const char *seeds)
{
	const char *p = seeds ? seeds : "", *e;
	size_t n = 1, len;
	int rc;

	for (e = p; *e != '\0'; e++)
		n += *e == ',';
	c->seeds = calloc(n, sizeof(*c->seeds));
	if (c->seeds == NULL)
		return ERR_NOMEM;
	while (*p != '\0') {
		while (*p == ' ' || *p == ',')
			p++;
		for (e = p; *e != '\0' && *e != ','; e++)
			;
		for (len = (size_t)(e - p); len > 0 && p[len - 1] == ' ';)
			len--;
		if (len > 0 && c->n_seeds == CLUSTER_SEEDS_MAX) {
			cluster_log(c, CLUSTER_LOG_WARN,
			            "cluster seeds ignored reason=\"more than "
			            "%d\"",
			            CLUSTER_SEEDS_MAX);
			break;
		}
		if (len > 0) {
			rc = cluster_seed_add(c, p, len);
			if (rc != 0)
				return rc;
		}
		p = e;
	}
	return 0;
}

static int
cluster_config_init(struct cluster *c, const struct cluster_config *cfg)
{
	if (cfg->node_name == NULL || !member_name_is_valid(cfg->node_name)) {
		cluster_log(c, CLUSTER_LOG_ERROR, "cluster bad node name");
		return ERR_MALFORMED;
	}
	c->name = strdup(cfg->node_name);
	if (c->name == NULL)
		return ERR_NOMEM;
	c->node_id = cfg->node_id;
	if (cfg->admin_addr != NULL && cfg->admin_addr[0] != '\0') {
		c->admin_addr = strdup(cfg->admin_addr);
		if (c->admin_addr == NULL)
			return ERR_NOMEM;
	}
	if (cfg->secret != NULL && cfg->secret[0] != '\0') {
		c->secret_len = strlen(cfg->secret);
		c->secret = strdup(cfg->secret);
		if (c->secret == NULL)
			return ERR_NOMEM;
	}
	c->outbox_max =
	        cfg->outbox_max ? cfg->outbox_max : CLUSTER_OUTBOX_MAX_DEFAULT;
	c->ping_ms = cfg->ping_ms ? cfg->ping_ms : CLUSTER_PING_MS_DEFAULT;
	c->dead_ms = cfg->dead_ms ? cfg->dead_ms : CLUSTER_DEAD_MS_DEFAULT;
	if (c->ping_ms > 60000)
		c->ping_ms = 60000;
	if (c->dead_ms < 4 * c->ping_ms) {
		cluster_log(c, CLUSTER_LOG_WARN,
		            "cluster dead_ms raised dead_ms=%u ping_ms=%u "
		            "new_dead_ms=%u",
		            (unsigned)c->dead_ms, (unsigned)c->ping_ms,
		            (unsigned)(4 * c->ping_ms));
		c->dead_ms = 4 * c->ping_ms;
	}
	return 0;
}

int
cluster_start(struct event_base *base, const struct cluster_config *cfg,
              const struct cluster_hooks *hooks, struct cluster **out)
{
	struct cluster *c;
	int rc;

	*out = NULL;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return ERR_NOMEM;
	c->base = base;
	c->hooks = *hooks;
	rtab_init(&c->routes);
	rtab_init(&c->durable);
	rtab_init(&c->shared);
	rtab_init(&c->shared_durable);
	buf_init(&c->out);
	rc = cluster_config_init(c, cfg);
	if (rc == 0)
		rc = link_start(c, cfg->bind, cfg->port);
	if (rc == 0)
		rc = cluster_self_init(c, cfg);
	if (rc == 0)
		rc = cluster_seeds_init(c, cfg->seeds);
	if (rc == 0)
		rc = swim_start(c);
	if (rc != 0) {
		cluster_free(c);
		return rc;
	}
	cluster_log(c, CLUSTER_LOG_INFO,
	            "cluster started node=%s addr=%s seeds=%zu secret=%s",
	            c->name, c->self->addr, c->n_seeds,
	            c->secret ? "yes" : "no");
	*out = c;
	return 0;
}

void
cluster_stop(struct cluster *c)
{
	Mqd__Envelope env = MQD__ENVELOPE__INIT;
	Mqd__Leave lv = MQD__LEAVE__INIT;
	struct link *l;
	size_t i;

	if (c == NULL)
		return;
	lv.incarnation = c->self->inc;
	env.body_case = MQD__ENVELOPE__BODY_LEAVE;
	env.leave = &lv;
	for (i = 0; i < c->n_members; i++) {
		l = c->members[i]->link;
		if (l != NULL && link_send(l, &env) == 0)
			link_flush_and_shutdown(l);
	}
	cluster_log(c, CLUSTER_LOG_INFO, "cluster stopped node=%s", c->name);
	cluster_free(c);
}

static int
cluster_member_cmp(const void *a, const void *b)
{
	const struct member *x = *(const struct member *const *)a;
	const struct member *y = *(const struct member *const *)b;

	return strcmp(x->name, y->name);
}

void
cluster_members(struct cluster *c,
                void (*fn)(void *arg, const struct cluster_member *m),
                void *arg)
{
	struct cluster_member cm;
	struct member **v, *m;
	size_t i;

	if (c == NULL)
		return;
	v = malloc(c->n_members * sizeof(*v));
	if (v != NULL) { /* else unsorted */
		memcpy(v, c->members, c->n_members * sizeof(*v));
		qsort(v, c->n_members, sizeof(*v), cluster_member_cmp);
	}
	for (i = 0; i < c->n_members; i++) {
		m = v != NULL ? v[i] : c->members[i];
		cm.name = m->name;
		cm.addr = m->addr;
		cm.node_id = m->node_id;
		cm.incarnation = m->inc;
		cm.state = m->state;
		cm.link_up = m->link != NULL;
		cm.routes =
		        m->self ? c->own_routes
		                : rtab_node_routes(&c->routes, m->slot) +
		                          rtab_node_routes(&c->shared, m->slot);
		cm.self = m->self;
		cm.outbox = m->fwd != NULL ? m->fwd->n : 0;
		cm.admin_addr = m->self ? c->admin_addr : m->admin_addr;
		if (cm.admin_addr == NULL)
			cm.admin_addr = "";
		fn(arg, &cm);
	}
	free(v);
}

void
cluster_test_kill(struct cluster *c)
{
	if (c != NULL)
		cluster_free(c);
}

uint16_t
cluster_test_port(const struct cluster *c)
{
	return c->port;
}

/* ---- admin: join, leave, admin addresses, route listing ---- */

void
cluster_member_set_admin(struct member *m, const char *addr)
{
	char *p;

	if (addr == NULL || addr[0] == '\0' || strlen(addr) > CLUSTER_ADDR_MAX)
		return;
	if (m->admin_addr != NULL && strcmp(m->admin_addr, addr) == 0)
		return;
	p = strdup(addr);
	if (p == NULL)
		return; /* keep the old one */
	free(m->admin_addr);
	m->admin_addr = p;
}

void
cluster_admin_free(struct cluster *c)
{
	struct seed *s;
	size_t i;

	for (i = 0; i < c->n_members; i++) {
		free(c->members[i]->admin_addr);
		c->members[i]->admin_addr = NULL;
	}
	while ((s = c->join_seeds) != NULL) {
		c->join_seeds = s->next;
		if (s->ev != NULL)
			event_free(s->ev);
		free(s->addr);
		free(s);
	}
	free(c->admin_addr);
	c->admin_addr = NULL;
}

/* After cluster_leave: the members it set aside come back (and are
 * dialed), this node claims a higher incarnation than its Leave, and the
 * configured seeds are dialed again. */
static void
cluster_unleave(struct cluster *c)
{
	struct member *m;
	size_t i;

	c->left = false;
	c->self->inc++;
	for (i = 0; i < c->n_members; i++) {
		m = c->members[i];
		if (!m->left_by_us)
			continue;
		m->left_by_us = false;
		if (m->state == CLUSTER_LEFT)
			swim_set_state(c, m, CLUSTER_ALIVE, m->inc, false);
	}
	for (i = 0; i < c->n_seeds; i++)
		if (!c->seeds[i].self)
			link_dial_seed_later(&c->seeds[i], 0);
}

int
cluster_join(struct cluster *c, const char *seed)
{
	char host[CLUSTER_ADDR_MAX + 1], port[8];
	struct seed *s;

	if (c == NULL)
		return ERR_WRONG_STATE;
	if (member_addr_split(seed, CLUSTER_PORT_DEFAULT, host, sizeof(host),
	                      port, sizeof(port)) != 0)
		return ERR_MALFORMED;
	for (s = c->join_seeds; s != NULL; s = s->next)
		if (strcmp(s->addr, seed) == 0)
			break;
	if (s == NULL && c->n_join_seeds >= CLUSTER_SEEDS_MAX)
		return ERR_LIMIT;
	if (s == NULL) {
		s = calloc(1, sizeof(*s));
		if (s == NULL || (s->addr = strdup(seed)) == NULL) {
			free(s);
			return ERR_NOMEM;
		}
		s->c = c;
		s->next = c->join_seeds;
		c->join_seeds = s;
		c->n_join_seeds++;
	}
	if (c->left)
		cluster_unleave(c);
	s->backoff_ms = CLUSTER_BACKOFF_MIN_MS;
	if (s->dialing == NULL)
		link_dial_seed_later(s, 0);
	cluster_log(c, CLUSTER_LOG_INFO, "cluster join node=%s seed=%s",
	            c->name, seed);
	return 0;
}

static void
cluster_seed_quiet(struct seed *s)
{
	if (s->dialing != NULL)
		link_close(s->dialing, CLUSTER_LOG_DEBUG, "cluster left");
	if (s->ev != NULL)
		event_del(s->ev); /* after the close, which rearms it */
}

int
cluster_leave(struct cluster *c)
{
	Mqd__Envelope env = MQD__ENVELOPE__INIT;
	Mqd__Leave lv = MQD__LEAVE__INIT;
	struct member *m;
	struct seed *s;
	size_t i;

	if (c == NULL)
		return ERR_WRONG_STATE;
	if (c->left)
		return 0;
	lv.incarnation = c->self->inc;
	env.body_case = MQD__ENVELOPE__BODY_LEAVE;
	env.leave = &lv;
	for (i = 0; i < c->n_members; i++) {
		m = c->members[i];
		if (m->link != NULL && link_send(m->link, &env) == 0)
			link_flush_and_shutdown(m->link);
	}
	for (i = 0; i < c->n_members; i++) {
		m = c->members[i];
		if (m->self)
			continue;
		if (m->dialing != NULL)
			link_close(m->dialing, CLUSTER_LOG_DEBUG,
			           "cluster left");
		if (m->state <= CLUSTER_SUSPECT) {
			m->left_by_us = true;
			swim_set_state(c, m, CLUSTER_LEFT, m->inc, false);
		}
	}
	for (i = 0; i < c->n_seeds; i++)
		cluster_seed_quiet(&c->seeds[i]);
	for (s = c->join_seeds; s != NULL; s = s->next)
		cluster_seed_quiet(s);
	c->left = true;
	cluster_log(c, CLUSTER_LOG_INFO, "cluster left node=%s inc=%" PRIu64,
	            c->name, c->self->inc);
	return 0;
}

bool
cluster_has_left(const struct cluster *c)
{
	return c != NULL && c->left;
}

void
cluster_routes_each(struct cluster *c,
                    void (*fn)(void *arg, struct mqtt_bytes filter,
                               const char *node),
                    void *arg)
{
	struct rtab_entry *e;
	size_t i;
	uint32_t k;

	const struct rtab *tables[2];
	size_t t;

	if (c == NULL)
		return;
	tables[0] = &c->routes; /* plain filters */
	tables[1] = &c->shared; /* shared subscription groups */
	for (t = 0; t < 2; t++) {
		for (i = 0; i < tables[t]->n_buckets; i++) {
			for (e = tables[t]->buckets[i]; e != NULL;
			     e = e->next) {
				for (k = 0; k < e->n_nodes; k++) {
					if (e->nodes[k] >= c->n_members)
						continue;
					fn(arg,
					   (struct mqtt_bytes){ e->filter,
					                        e->len },
					   c->members[e->nodes[k]]->name);
				}
			}
		}
	}
}

bool
cluster_has_peers(const struct cluster *c)
{
	return c != NULL && c->n_members > 1;
}
