/*
 * The broker side of storage: opens the store at start-up and loads
 * retained messages and persistent sessions with their subscriptions;
 * writes their changes as batches; runs completions on the loop (acks
 * that wait for a commit are sent from there). Queued QoS 1/2 messages and
 * in-flight state are not persisted yet (TODO(#4)).
 */
#include "broker/node.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "storage/storage.h"

/* Wall-clock ms (stored times must survive a restart). */
static uint64_t
persist_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Monotonic expiry (0 = never) to wall ms, and back. */
static uint64_t
persist_to_wall(uint64_t mono)
{
	uint64_t now = node_now_ms();

	if (!mono)
		return 0;
	return persist_wall_ms() + (mono > now ? mono - now : 0);
}

static uint64_t
persist_to_mono(uint64_t wall)
{
	uint64_t now = persist_wall_ms();

	if (!wall)
		return 0;
	return node_now_ms() + (wall > now ? wall - now : 0);
}

static struct mqtt_bytes
persist_id(const struct sess *s)
{
	return (struct mqtt_bytes){ (const uint8_t *)s->client_id, s->id_len };
}

static void
persist_done(void *arg, int err)
{
	struct conn_ack *a = arg;

	if (err)
		log_error("storage commit failed err=\"%s\"", err_str(err));
	if (a)
		conn_ack_ready(a, err);
}

/* Submits @p b (taken). @p ack, when not NULL, is released once the batch
 * is durable. */
static void
persist_submit(struct node *n, struct store_batch *b, struct conn_ack *ack)
{
	int rc;

	n->persist_writes++;
	rc = store_submit(n->store, b, persist_done, ack);

	if (rc) {
		log_error("storage submit failed err=\"%s\"", err_str(rc));
		if (ack)
			conn_ack_ready(ack, rc);
	}
}

void
persist_barrier(struct node *n, struct conn_ack *ack)
{
	struct store_batch *b = store_batch_new();

	/* batches complete in the order they were submitted, so an empty
	 * one completes once everything before it is durable */
	if (!b) {
		conn_ack_ready(ack, ERR_NOMEM);
		return;
	}
	persist_submit(n, b, ack);
}

bool
persist_on(const struct node *n)
{
	return n->store && n->cfg->durability != CONFIG_DURABILITY_NONE;
}

void
persist_retained(struct node *n, const struct msg *m, struct conn_ack *ack)
{
	struct store_batch *b;
	struct store_retained r;
	int rc;

	if (!persist_on(n)) {
		if (ack)
			conn_ack_ready(ack, 0);
		return;
	}
	b = store_batch_new();
	if (!b) {
		if (ack)
			conn_ack_ready(ack, ERR_NOMEM);
		return;
	}
	if (m->payload_len == 0) {
		rc = store_batch_retained_del(b, msg_topic(m));
	} else {
		memset(&r, 0, sizeof(r));
		r.topic = msg_topic(m);
		r.payload = msg_payload(m);
		r.props = msg_props(m);
		r.qos = m->qos;
		r.expires_at = persist_to_wall(m->expiry_ms);
		rc = store_batch_retained_put(b, &r);
	}
	(void)rc; /* sticky: store_submit reports it */
	persist_submit(n, b, ack);
}

void
persist_session(struct sess *s)
{
	struct node *n = s->node;
	struct store_session ss;
	struct store_batch *b;

	if (!persist_on(n) || n->loading || s->expiry == 0)
		return;
	b = store_batch_new();
	if (!b)
		return;
	memset(&ss, 0, sizeof(ss));
	ss.client_id = persist_id(s);
	ss.version = s->version;
	ss.expiry_interval = s->expiry;
	ss.expires_at = s->conn ? 0 : persist_to_wall(s->expire_at);
	ss.next_packet_id = s->next_pid;
	store_batch_session_put(b, &ss);
	persist_submit(n, b, NULL);
	s->persisted = true;
}

void
persist_session_del(struct sess *s)
{
	struct node *n = s->node;
	struct store_batch *b;

	if (!persist_on(n) || n->loading || !s->persisted)
		return;
	s->persisted = false;
	b = store_batch_new();
	if (!b)
		return;
	store_batch_session_del(b, persist_id(s)); /* subscriptions too */
	persist_submit(n, b, NULL);
}

/* The SUBSCRIBE options byte of @p o (MQTT 5 layout). */
static uint8_t
persist_opts_byte(const struct topic_sub_opts *o)
{
	return (uint8_t)(o->qos | (o->no_local ? 0x04 : 0) |
	                 (o->retain_as_published ? 0x08 : 0) |
	                 (o->retain_handling << 4));
}

void
persist_sub(struct sess *s, struct mqtt_bytes filter,
            const struct topic_sub_opts *opts)
{
	struct node *n = s->node;
	struct store_batch *b;
	struct store_sub sub;

	if (!persist_on(n) || n->loading || s->expiry == 0)
		return;
	b = store_batch_new();
	if (!b)
		return;
	if (opts) {
		memset(&sub, 0, sizeof(sub));
		sub.client_id = persist_id(s);
		sub.filter = filter;
		sub.options = persist_opts_byte(opts);
		sub.sub_id = opts->sub_id;
		store_batch_sub_put(b, &sub);
	} else {
		store_batch_sub_del(b, persist_id(s), filter);
	}
	persist_submit(n, b, NULL);
}

static void
persist_on_notify(evutil_socket_t fd, short what, void *arg)
{
	struct node *n = arg;

	(void)fd;
	(void)what;
	store_poll_completions(n->store);
}

struct persist_load {
	struct node *n;
	struct store_batch *gone; /* expired records to delete */
	size_t retained;
	size_t sessions;
	size_t subs;
	size_t expired;
};

static int
persist_load_retained(void *arg, const struct store_retained *r)
{
	struct persist_load *l = arg;
	struct msg *m;

	if (r->expires_at && r->expires_at <= persist_wall_ms()) {
		store_batch_retained_del(l->gone, r->topic);
		l->expired++;
		return 0;
	}
	m = msg_new(r->topic, r->payload, r->props, r->qos, true);
	if (!m)
		return ERR_NOMEM;
	m->id = ++l->n->next_msg_id;
	m->expiry_ms = persist_to_mono(r->expires_at);
	if (retain_set(l->n->retained, m)) {
		msg_unref(m);
		return ERR_NOMEM;
	}
	msg_unref(m);
	l->retained++;
	return 0;
}

struct persist_sub_ctx {
	struct persist_load *l;
	struct sess *s;
};

static int
persist_load_sub(void *arg, const struct store_sub *sub)
{
	struct persist_sub_ctx *ctx = arg;
	struct topic_sub_opts o;
	bool existed;

	memset(&o, 0, sizeof(o));
	o.qos = sub->options & 3;
	o.no_local = sub->options & 0x04;
	o.retain_as_published = sub->options & 0x08;
	o.retain_handling = (sub->options >> 4) & 3;
	o.sub_id = sub->sub_id;
	if (sess_subscribe(ctx->s, sub->filter, &o, &existed))
		return ERR_NOMEM;
	ctx->l->subs++;
	return 0;
}

static int
persist_load_session(void *arg, const struct store_session *ss)
{
	struct persist_load *l = arg;
	struct persist_sub_ctx ctx = { l, NULL };
	struct sess *s;

	if (ss->expires_at && ss->expires_at <= persist_wall_ms()) {
		store_batch_session_del(l->gone, ss->client_id);
		l->expired++;
		return 0;
	}
	s = sess_create(l->n, (const char *)ss->client_id.p, ss->client_id.len,
	                ss->expiry_interval, ss->version);
	if (!s)
		return ERR_NOMEM;
	s->next_pid = ss->next_packet_id;
	s->persisted = true;
	if (ss->expires_at)
		s->expire_at = persist_to_mono(ss->expires_at);
	else if (ss->expiry_interval != UINT32_MAX)
		/* it was connected when the node stopped: its clock starts
		 * now */
		s->expire_at = node_now_ms() + ss->expiry_interval * 1000ull;
	ctx.s = s;
	l->sessions++;
	return store_load_subs(l->n->store, ss->client_id, persist_load_sub,
	                       &ctx);
}

int
persist_open(struct node *n)
{
	const struct config *cfg = n->cfg;
	struct store_config sc;
	struct persist_load l;
	const char *why = "";
	uint64_t t0 = node_now_ms();
	int rc;

	memset(&sc, 0, sizeof(sc));
	sc.data_dir = cfg->data_dir;
	sc.node_name = cfg->node_name;
	sc.durability = cfg->durability == CONFIG_DURABILITY_SYNC
	                        ? STORE_DURABILITY_SYNC
	                : cfg->durability == CONFIG_DURABILITY_RELAXED
	                        ? STORE_DURABILITY_RELAXED
	                        : STORE_DURABILITY_NONE;
	sc.sync_interval_ms = cfg->sync_interval_ms;
	sc.max_size = cfg->storage_max_size;
	sc.map_size = sc.max_size < (64u << 20) ? sc.max_size : (64u << 20);
	rc = store_open(&sc, &n->store, &why);
	if (rc) {
		log_error(
		        "cannot open storage data_dir=%s err=\"%s\" why=\"%s\"",
		        cfg->data_dir, err_str(rc), why);
		return rc;
	}
	event_assign(&n->store_ev, n->base, store_notify_fd(n->store),
	             EV_READ | EV_PERSIST, persist_on_notify, n);
	if (event_add(&n->store_ev, NULL))
		return ERR_IO;
	memset(&l, 0, sizeof(l));
	l.n = n;
	l.gone = store_batch_new();
	if (!l.gone)
		return ERR_NOMEM;
	n->loading = true;
	rc = store_load_retained(n->store, persist_load_retained, &l);
	if (rc == 0)
		rc = store_load_sessions(n->store, persist_load_session, &l);
	n->loading = false;
	if (rc) {
		store_batch_free(l.gone);
		log_error("cannot load storage data_dir=%s err=\"%s\"",
		          cfg->data_dir, err_str(rc));
		return rc;
	}
	if (store_batch_count(l.gone))
		persist_submit(n, l.gone, NULL);
	else
		store_batch_free(l.gone);
	log_info("storage loaded data_dir=%s durability=%s retained=%zu "
	         "sessions=%zu subscriptions=%zu expired=%zu ms=%llu",
	         cfg->data_dir,
	         persist_on(n) ? (cfg->durability == CONFIG_DURABILITY_SYNC
	                                  ? "sync"
	                                  : "relaxed")
	                       : "none",
	         l.retained, l.sessions, l.subs, l.expired,
	         (unsigned long long)(node_now_ms() - t0));
	return 0;
}

void
persist_close(struct node *n)
{
	if (!n->store)
		return;
	event_del(&n->store_ev);
	store_close(n->store); /* commits what is pending, runs completions */
	n->store = NULL;
}
