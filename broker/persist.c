/*
 * The broker side of storage: opens the store at start-up and loads
 * retained messages, persistent sessions with their subscriptions, queued
 * and in-flight deliveries and delayed wills; writes their changes, one
 * batch per turn of the loop; runs completions on the loop (acks that wait
 * for a commit are sent from there).
 */
#include "broker/node.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
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

/* The client id an outbox entry is stored under: 0xff (never in UTF-8,
 * so never a client's id), "outbox:" and the peer's node id in hex. Its
 * entries are queue entries (seq = msg_id) sharing the payload records. */
#define PERSIST_OBOX_PREFIX \
	"\xff"              \
	"outbox:"
#define PERSIST_OBOX_LEN (sizeof(PERSIST_OBOX_PREFIX) - 1 + 16)

static struct mqtt_bytes
persist_obox_id(char *buf, uint64_t peer)
{
	snprintf(buf, PERSIST_OBOX_LEN + 1, PERSIST_OBOX_PREFIX "%016llx",
	         (unsigned long long)peer);
	return (struct mqtt_bytes){ (const uint8_t *)buf, PERSIST_OBOX_LEN };
}

/* @return true with *peer set when @p cid is an outbox's client id */
static bool
persist_obox_peer(struct mqtt_bytes cid, uint64_t *peer)
{
	size_t pre = sizeof(PERSIST_OBOX_PREFIX) - 1, i;
	uint64_t v = 0;

	if (cid.len != PERSIST_OBOX_LEN ||
	    memcmp(cid.p, PERSIST_OBOX_PREFIX, pre) != 0)
		return false;
	for (i = pre; i < cid.len; i++) {
		uint8_t ch = cid.p[i];
		int d = ch >= '0' && ch <= '9'   ? ch - '0'
		        : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
		                                 : -1;
		if (d < 0)
			return false;
		v = v << 4 | (uint64_t)d;
	}
	*peer = v;
	return true;
}

/* The acks a submitted batch releases. */
struct persist_acks {
	struct node *n;
	size_t count;
	struct conn_ack *a[];
};

static void
persist_log_failure(struct node *n, const char *what, int err)
{
	n->persist_errors++;
	/* a client filling the store must not flood the log */
	if (log_limit_ok(&n->log_lim, 10))
		log_error("storage %s failed err=\"%s\" failures_total=%llu",
		          what, err_str(err),
		          (unsigned long long)n->persist_errors);
}

static void
persist_done(void *arg, int err)
{
	struct persist_acks *pa = arg;
	size_t i;

	if (err)
		persist_log_failure(pa->n, "commit", err);
	for (i = 0; i < pa->count; i++)
		conn_ack_ready(pa->a[i], err);
	free(pa);
}

/* The marks that moved this turn go into its batch. */
static void
persist_marks_add(struct node *n, struct store_batch *b)
{
	size_t i;

	for (i = 0; i < n->n_marks; i++) {
		if (!n->marks[i].dirty)
			continue;
		n->marks[i].dirty = false;
		store_batch_mark_put(b, n->marks[i].origin, n->marks[i].msg_id);
	}
}

/* Submits the batch of this turn with the acks waiting for it. */
static void
persist_flush(struct node *n)
{
	struct store_batch *b = n->wbatch;
	struct persist_acks *pa;
	size_t i, count = n->n_wacks;
	int rc;

	if (!b)
		return;
	persist_marks_add(n, b);
	n->wbatch = NULL;
	n->n_wacks = 0;
	pa = malloc(sizeof(*pa) + count * sizeof(pa->a[0]));
	if (!pa) {
		store_batch_free(b);
		persist_log_failure(n, "submit", ERR_NOMEM);
		for (i = 0; i < count; i++)
			conn_ack_ready(n->wacks[i], ERR_NOMEM);
		return;
	}
	pa->n = n;
	pa->count = count;
	if (count)
		memcpy(pa->a, n->wacks, count * sizeof(pa->a[0]));
	store_batch_set_waiters(b, (uint32_t)count);
	rc = store_submit(n->store, b, persist_done, pa);
	if (rc) {
		persist_log_failure(n, "submit", rc);
		persist_done(pa, rc);
	}
}

static void
persist_on_flush(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	persist_flush(arg);
}

/* The batch of this turn, created on first use; NULL on no memory (the
 * change is then lost to a restart, and logged). */
static struct store_batch *
persist_batch(struct node *n)
{
	if (n->wbatch)
		return n->wbatch;
	n->wbatch = store_batch_new();
	if (!n->wbatch) {
		persist_log_failure(n, "batch", ERR_NOMEM);
		return NULL;
	}
	n->wgen++;
	event_active(&n->wflush_ev, 0, 0);
	return n->wbatch;
}

/* Counts an op added (errors are sticky in the batch: the submit reports
 * them). */
static void
persist_added(struct node *n, int rc)
{
	(void)rc;
	n->persist_writes++;
}

void
persist_barrier(struct node *n, struct conn_ack *ack)
{
	struct conn_ack **v;

	/* batches complete in the order they were submitted, so the batch
	 * of this turn (empty or not) completes once every change made so
	 * far is durable */
	if (!persist_on(n) || !persist_batch(n)) {
		conn_ack_ready(ack, persist_on(n) ? ERR_NOMEM : 0);
		return;
	}
	if (n->n_wacks == n->cap_wacks) {
		size_t cap = n->cap_wacks ? n->cap_wacks * 2 : 64;
		v = realloc(n->wacks, cap * sizeof(*v));
		if (!v) {
			conn_ack_ready(ack, ERR_NOMEM);
			return;
		}
		n->wacks = v;
		n->cap_wacks = cap;
	}
	n->wacks[n->n_wacks++] = ack;
}

bool
persist_on(const struct node *n)
{
	return n->store && n->cfg->durability != CONFIG_DURABILITY_NONE;
}

bool
persist_sess_on(const struct sess *s)
{
	return s->expiry != 0 && persist_on(s->node) && !s->node->loading;
}

void
persist_retained(struct node *n, const struct msg *m)
{
	struct store_batch *b;
	struct store_retained r;

	if (!persist_on(n) || n->loading || !(b = persist_batch(n)))
		return;
	if (m->payload_len == 0) {
		persist_added(n, store_batch_retained_del(b, msg_topic(m)));
		return;
	}
	memset(&r, 0, sizeof(r));
	r.topic = msg_topic(m);
	r.payload = msg_payload(m);
	r.props = msg_props(m);
	r.qos = m->qos;
	r.expires_at = persist_to_wall(m->expiry_ms);
	r.stamp = m->stamp;
	persist_added(n, store_batch_retained_put(b, &r));
}

void
persist_session(struct sess *s)
{
	struct node *n = s->node;
	struct store_session ss;
	struct store_batch *b;

	if (!persist_on(n) || n->loading)
		return;
	if (s->expiry == 0) {
		/* no longer kept past its connection */
		persist_session_del(s);
		return;
	}
	if (!(b = persist_batch(n)))
		return;
	memset(&ss, 0, sizeof(ss));
	ss.client_id = persist_id(s);
	ss.version = s->version;
	ss.expiry_interval = s->expiry;
	ss.expires_at = s->conn ? 0 : persist_to_wall(s->expire_at);
	ss.next_packet_id = s->next_pid;
	if (s->will && !s->conn) {
		ss.has_will = true;
		ss.will_qos = s->will->qos;
		ss.will_retain = s->will->retain;
		ss.will_topic = msg_topic(s->will);
		ss.will_payload = msg_payload(s->will);
		ss.will_props = msg_props(s->will);
		ss.will_at = persist_to_wall(s->will_at);
		ss.will_expiry = s->will_expiry;
	}
	persist_added(n, store_batch_session_put(b, &ss));
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
	if (!(b = persist_batch(n)))
		return;
	/* subscriptions, queue and in-flight records too */
	persist_added(n, store_batch_session_del(b, persist_id(s)));
}

void
persist_sub(struct sess *s, struct mqtt_bytes filter,
            const struct topic_sub_opts *opts)
{
	struct node *n = s->node;
	struct store_batch *b;
	struct store_sub sub;

	if (!persist_sess_on(s) || !(b = persist_batch(n)))
		return;
	if (!opts) {
		persist_added(n, store_batch_sub_del(b, persist_id(s), filter));
		return;
	}
	memset(&sub, 0, sizeof(sub));
	sub.client_id = persist_id(s);
	sub.filter = filter;
	sub.options = topic_opts_byte(opts);
	sub.sub_id = opts->sub_id;
	persist_added(n, store_batch_sub_put(b, &sub));
}

/* Puts @p m's payload record into @p b unless this batch has it: a
 * fan-out stores one copy. */
static void
persist_payload_once(struct node *n, struct store_batch *b, struct msg *m)
{
	struct store_payload p;

	if (m->batch_gen == n->wgen)
		return;
	m->batch_gen = n->wgen;
	memset(&p, 0, sizeof(p));
	p.msg_id = m->id;
	p.topic = msg_topic(m);
	p.payload = msg_payload(m);
	p.props = msg_props(m);
	p.qos = m->qos;
	p.retain = m->retain;
	p.expires_at = persist_to_wall(m->expiry_ms);
	persist_added(n, store_batch_payload_put(b, &p));
}

void
persist_queue_put(struct sess *s, const struct sess_out *o)
{
	struct node *n = s->node;
	struct store_queue_entry q;
	struct store_batch *b;
	struct msg *m = o->msg;

	if (!persist_sess_on(s) || !(b = persist_batch(n)))
		return;
	persist_payload_once(n, b, m);
	memset(&q, 0, sizeof(q));
	q.client_id = persist_id(s);
	q.seq = o->seq;
	q.msg_id = m->id;
	q.qos = o->qos;
	q.retain = o->retain;
	q.n_sub_ids = o->n_sub_ids < STORE_SUB_IDS_MAX ? o->n_sub_ids
	                                               : STORE_SUB_IDS_MAX;
	if (q.n_sub_ids)
		memcpy(q.sub_ids, o->sub_ids,
		       q.n_sub_ids * sizeof(q.sub_ids[0]));
	persist_added(n, store_batch_queue_put(b, &q));
}

void
persist_inflight_out(struct sess *s, const struct sess_out *o)
{
	struct node *n = s->node;
	struct store_inflight f;
	struct store_batch *b;

	if (!persist_sess_on(s) || !(b = persist_batch(n)))
		return;
	memset(&f, 0, sizeof(f));
	f.client_id = persist_id(s);
	f.dir = STORE_INFLIGHT_OUT;
	f.packet_id = o->packet_id;
	f.state = o->state == SESS_OUT_PUBREL ? STORE_INFLIGHT_PUBREC
	                                      : STORE_INFLIGHT_SENT;
	f.qos = o->qos;
	f.retain = o->retain;
	f.seq = o->seq;
	persist_added(n, store_batch_inflight_put(b, &f));
	if (o->state == SESS_OUT_PUBREL)
		/* delivered: the payload is not needed any more */
		persist_added(n,
		              store_batch_queue_del(b, persist_id(s), o->seq));
}

void
persist_out_del(struct sess *s, const struct sess_out *o)
{
	struct node *n = s->node;
	struct store_batch *b;

	if (!persist_sess_on(s) || !(b = persist_batch(n)))
		return;
	if (o->packet_id)
		persist_added(n, store_batch_inflight_del(b, persist_id(s),
		                                          STORE_INFLIGHT_OUT,
		                                          o->packet_id));
	if (o->state != SESS_OUT_PUBREL)
		persist_added(n,
		              store_batch_queue_del(b, persist_id(s), o->seq));
}

void
persist_qos2_in(struct sess *s, uint16_t pid, bool on)
{
	struct node *n = s->node;
	struct store_inflight f;
	struct store_batch *b;

	if (!persist_sess_on(s) || !(b = persist_batch(n)))
		return;
	if (!on) {
		persist_added(n,
		              store_batch_inflight_del(b, persist_id(s),
		                                       STORE_INFLIGHT_IN, pid));
		return;
	}
	memset(&f, 0, sizeof(f));
	f.client_id = persist_id(s);
	f.dir = STORE_INFLIGHT_IN;
	f.packet_id = pid;
	f.state = STORE_INFLIGHT_PUBREL;
	f.qos = 2;
	persist_added(n, store_batch_inflight_put(b, &f));
}

static void
persist_on_notify(evutil_socket_t fd, short what, void *arg)
{
	struct node *n = arg;

	(void)fd;
	(void)what;
	store_poll_completions(n->store);
}

/* Payloads by msg id while loading (open addressing). */
struct persist_msgs {
	struct msg **slots;
	size_t cap; /* power of two */
	size_t n;
};

static size_t
persist_msgs_slot(const struct persist_msgs *t, uint64_t id)
{
	size_t i = (size_t)(id * 0x9e3779b97f4a7c15ull) & (t->cap - 1);

	while (t->slots[i] && t->slots[i]->id != id)
		i = (i + 1) & (t->cap - 1);
	return i;
}

static int
persist_msgs_add(struct persist_msgs *t, struct msg *m)
{
	if ((t->n + 1) * 2 > t->cap) {
		struct persist_msgs nt = { NULL, t->cap ? t->cap * 2 : 1024,
			                   t->n };
		size_t i;
		nt.slots = calloc(nt.cap, sizeof(*nt.slots));
		if (!nt.slots)
			return ERR_NOMEM;
		for (i = 0; i < t->cap; i++)
			if (t->slots[i])
				nt.slots[persist_msgs_slot(
				        &nt, t->slots[i]->id)] = t->slots[i];
		free(t->slots);
		*t = nt;
	}
	t->slots[persist_msgs_slot(t, m->id)] = m;
	t->n++;
	return 0;
}

static struct msg *
persist_msgs_get(const struct persist_msgs *t, uint64_t id)
{
	return t->cap ? t->slots[persist_msgs_slot(t, id)] : NULL;
}

static void
persist_msgs_free(struct persist_msgs *t)
{
	size_t i;

	for (i = 0; i < t->cap; i++)
		msg_unref(t->slots[i]);
	free(t->slots);
}

struct persist_load {
	struct node *n;
	struct store_batch *gone; /* expired or dangling records to delete */
	struct persist_msgs msgs; /* payloads by id */
	uint64_t max_id;          /* highest msg id stored */
	size_t retained;
	size_t sessions;
	size_t subs;
	size_t queued;
	size_t inflight;
	size_t outbox;
	size_t expired;
};

static int
persist_load_payload(void *arg, const struct store_payload *p)
{
	struct persist_load *l = arg;
	struct msg *m;

	m = msg_new(p->topic, p->payload, p->props, p->qos, p->retain);
	if (!m)
		return ERR_NOMEM;
	m->id = p->msg_id;
	m->expiry_ms = persist_to_mono(p->expires_at);
	if (p->expires_at && p->expires_at <= persist_wall_ms())
		m->expiry_ms = 1; /* expired while the node was down */
	if (p->msg_id > l->max_id)
		l->max_id = p->msg_id;
	if (persist_msgs_add(&l->msgs, m)) {
		msg_unref(m);
		return ERR_NOMEM;
	}
	return 0;
}

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
	m->stamp = r->stamp;
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

	o = topic_opts_from_byte(sub->options, sub->sub_id);
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

	s = sess_create(l->n, (const char *)ss->client_id.p, ss->client_id.len,
	                ss->expiry_interval, ss->version);
	if (!s)
		return ERR_NOMEM;
	s->next_pid = ss->next_packet_id;
	s->persisted = true;
	if (ss->expires_at && ss->expires_at <= persist_wall_ms())
		l->expired++;
	if (ss->expires_at)
		/* one that expired while the node was down ends at the first
		 * tick, which publishes its will */
		s->expire_at = persist_to_mono(ss->expires_at);
	else if (ss->expiry_interval != UINT32_MAX)
		/* it was connected when the node stopped: its clock starts
		 * now */
		s->expire_at = node_now_ms() + ss->expiry_interval * 1000ull;
	if (ss->has_will) {
		s->will =
		        msg_new(ss->will_topic, ss->will_payload,
		                ss->will_props, ss->will_qos, ss->will_retain);
		if (!s->will)
			return ERR_NOMEM;
		s->will->id = ++l->n->next_msg_id;
		s->will_at = persist_to_mono(ss->will_at);
		s->will_expiry = ss->will_expiry;
	}
	ctx.s = s;
	l->sessions++;
	return store_load_subs(l->n->store, ss->client_id, persist_load_sub,
	                       &ctx);
}

static struct sess *
persist_load_sess(struct persist_load *l, struct mqtt_bytes cid)
{
	return sess_find(l->n, (const char *)cid.p, cid.len);
}

/* In-flight records: incoming QoS 2 ids, and outgoing deliveries put in
 * send order (their payloads come with the queue entries). */
static int
persist_load_inflight(void *arg, const struct store_inflight *f)
{
	struct persist_load *l = arg;
	struct sess *s = persist_load_sess(l, f->client_id);
	struct sess_out *o, **pp;
	int err;

	if (!s)
		return 0; /* its session is gone: deleted with it */
	if (f->dir == STORE_INFLIGHT_IN) {
		sess_qos2_in_add(s, f->packet_id, &err);
		return err;
	}
	o = sess_out_new(l->n);
	if (!o)
		return ERR_NOMEM;
	o->packet_id = f->packet_id;
	o->qos = f->qos;
	o->retain = f->retain;
	o->seq = f->seq;
	o->state = f->state == STORE_INFLIGHT_PUBREC ? SESS_OUT_PUBREL
	                                             : SESS_OUT_SENT;
	if (f->seq >= l->n->next_seq)
		l->n->next_seq = f->seq + 1;
	for (pp = &s->inflight; *pp && (*pp)->seq <= o->seq; pp = &(*pp)->next)
		;
	o->next = *pp;
	*pp = o;
	if (!o->next)
		s->inflight_tail = &o->next;
	s->n_inflight++;
	l->inflight++;
	return 0;
}

/* An outbox entry: kept for mesh_start (which hands it to cluster). */
static int
persist_load_obox(struct persist_load *l, uint64_t peer, struct msg *m,
                  const struct store_queue_entry *q)
{
	struct node *n = l->n;
	struct persist_obox *v;
	uint8_t *g = NULL;

	if (!m || m->expiry_ms == 1) {
		store_batch_queue_del(l->gone, q->client_id, q->seq);
		if (m)
			l->expired++;
		return 0;
	}
	if (n->n_obox_load == n->cap_obox_load) {
		size_t cap = n->cap_obox_load ? n->cap_obox_load * 2 : 64;
		v = realloc(n->obox_load, cap * sizeof(*v));
		if (!v)
			return ERR_NOMEM;
		n->obox_load = v;
		n->cap_obox_load = cap;
	}
	if (q->groups.len) {
		g = malloc(q->groups.len);
		if (!g)
			return ERR_NOMEM;
		memcpy(g, q->groups.p, q->groups.len);
	}
	n->obox_load[n->n_obox_load++] =
	        (struct persist_obox){ peer, msg_ref(m), g, q->groups.len };
	l->outbox++;
	return 0;
}

static int
persist_load_queue(void *arg, const struct store_queue_entry *q)
{
	struct persist_load *l = arg;
	struct sess *s = persist_load_sess(l, q->client_id);
	struct msg *m = persist_msgs_get(&l->msgs, q->msg_id);
	struct sess_out *o;
	uint64_t peer;

	if (!s && persist_obox_peer(q->client_id, &peer))
		return persist_load_obox(l, peer, m, q);
	if (!s)
		return 0;
	if (q->seq >= l->n->next_seq)
		l->n->next_seq = q->seq + 1;
	for (o = s->inflight; o && o->seq != q->seq; o = o->next)
		;
	if (!m) {
		log_warn("stored message missing client=%s msg_id=%llu",
		         s->client_id, (unsigned long long)q->msg_id);
		store_batch_queue_del(l->gone, q->client_id, q->seq);
		return 0;
	}
	if (o) { /* sent before the stop: its payload */
		if (o->state == SESS_OUT_SENT && !o->msg)
			o->msg = msg_ref(m);
	} else if (m->expiry_ms == 1) {
		store_batch_queue_del(l->gone, q->client_id, q->seq);
		l->expired++;
		return 0;
	} else {
		o = sess_out_new(l->n);
		if (!o)
			return ERR_NOMEM;
		o->msg = msg_ref(m);
		o->qos = q->qos;
		o->retain = q->retain;
		o->seq = q->seq;
		o->state = SESS_OUT_QUEUED;
		*s->queue_tail = o;
		s->queue_tail = &o->next;
		s->n_queued++;
		l->queued++;
	}
	if (q->n_sub_ids && !o->sub_ids) {
		o->sub_ids = malloc(q->n_sub_ids * sizeof(*o->sub_ids));
		if (!o->sub_ids)
			return ERR_NOMEM;
		memcpy(o->sub_ids, q->sub_ids,
		       q->n_sub_ids * sizeof(*o->sub_ids));
		o->n_sub_ids = q->n_sub_ids;
	}
	return 0;
}

/* A sent delivery whose queue entry (and so payload) is missing cannot be
 * re-sent: dropped. */
static void
persist_load_check(struct sess *s, void *arg)
{
	struct persist_load *l = arg;
	struct sess_out *o, **pp;

	s->inflight_tail = &s->inflight;
	for (pp = &s->inflight; (o = *pp);) {
		if (o->state == SESS_OUT_SENT && !o->msg) {
			store_batch_inflight_del(l->gone, persist_id(s),
			                         STORE_INFLIGHT_OUT,
			                         o->packet_id);
			*pp = o->next;
			s->n_inflight--;
			l->inflight--;
			sess_out_free(s->node, o);
			continue;
		}
		pp = &o->next;
		s->inflight_tail = pp;
		/* the last id given (the stored counter may be older) */
		s->next_pid = o->packet_id;
	}
}

static int
persist_load_all(struct persist_load *l)
{
	struct node *n = l->n;
	struct mqtt_bytes all = { NULL, 0 };
	uint64_t floor;
	int rc;

	rc = store_load_payloads(n->store, persist_load_payload, l);
	/* message ids stay unique across restarts: at least the highest
	 * stored, and counted from the wall clock (2^20 per ms) so ids of
	 * messages never stored are not reused either */
	floor = persist_wall_ms() << 20;
	n->next_msg_id = l->max_id > floor ? l->max_id : floor;
	if (rc == 0)
		rc = store_load_retained(n->store, persist_load_retained, l);
	if (rc == 0)
		rc = store_load_sessions(n->store, persist_load_session, l);
	if (rc == 0)
		rc = store_load_inflight(n->store, all, persist_load_inflight,
		                         l);
	if (rc == 0)
		rc = store_load_queue(n->store, all, persist_load_queue, l);
	if (rc == 0)
		sess_foreach(n, persist_load_check, l);
	return rc;
}

int
persist_open(struct node *n)
{
	const struct config *cfg = n->cfg;
	struct store_config sc;
	struct persist_load l;
	const char *why = "";
	uint64_t t0 = node_now_ms();
	size_t messages;
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
	sc.commit_delay_ms = cfg->commit_delay_ms;
	sc.max_size = cfg->storage_max_size;
	sc.map_size = sc.max_size < (64u << 20) ? sc.max_size : (64u << 20);
	rc = store_open(&sc, &n->store, &why);
	if (rc) {
		log_error(
		        "cannot open storage data_dir=%s err=\"%s\" why=\"%s\"",
		        cfg->data_dir, err_str(rc), why);
		return rc;
	}
	n->node_id = store_node_id(n->store);
	while (!n->node_id) /* durability none keeps no id */
		if (getrandom(&n->node_id, sizeof(n->node_id), 0) !=
		    (ssize_t)sizeof(n->node_id))
			n->node_id = persist_wall_ms();
	event_assign(&n->store_ev, n->base, store_notify_fd(n->store),
	             EV_READ | EV_PERSIST, persist_on_notify, n);
	event_assign(&n->wflush_ev, n->base, -1, 0, persist_on_flush, n);
	if (event_add(&n->store_ev, NULL))
		return ERR_IO;
	memset(&l, 0, sizeof(l));
	l.n = n;
	l.gone = store_batch_new();
	if (!l.gone)
		return ERR_NOMEM;
	n->loading = true;
	rc = persist_load_all(&l);
	n->loading = false;
	messages = l.msgs.n;
	persist_msgs_free(&l.msgs); /* the sessions hold what they use */
	if (rc) {
		store_batch_free(l.gone);
		log_error("cannot load storage data_dir=%s err=\"%s\"",
		          cfg->data_dir, err_str(rc));
		return rc;
	}
	if (store_batch_count(l.gone) &&
	    (rc = store_submit(n->store, l.gone, NULL, NULL)) != 0)
		persist_log_failure(n, "submit", rc);
	else if (!store_batch_count(l.gone))
		store_batch_free(l.gone);
	/* sessions and delayed wills that ran out while the node was down
	 * end now, before any client can resume them */
	sess_tick(n, node_now_ms());
	log_info("storage loaded data_dir=%s durability=%s schema=%u "
	         "retained=%zu sessions=%zu subscriptions=%zu queued=%zu "
	         "inflight=%zu outbox=%zu messages=%zu expired=%zu ms=%llu",
	         cfg->data_dir,
	         persist_on(n) ? (cfg->durability == CONFIG_DURABILITY_SYNC
	                                  ? "sync"
	                                  : "relaxed")
	                       : "none",
	         store_schema_version(n->store), l.retained, l.sessions, l.subs,
	         l.queued, l.inflight, l.outbox, messages, l.expired,
	         (unsigned long long)(node_now_ms() - t0));
	return 0;
}

void
persist_close(struct node *n)
{
	if (!n->store)
		return;
	persist_flush(n);
	event_del(&n->wflush_ev);
	event_del(&n->store_ev);
	store_close(n->store); /* commits what is pending, runs completions */
	n->store = NULL;
	free(n->wacks);
	n->wacks = NULL;
	n->cap_wacks = 0;
	free(n->marks);
	n->marks = NULL;
	n->n_marks = n->cap_marks = 0;
	while (n->n_obox_load) { /* mesh_start did not take them */
		n->n_obox_load--;
		msg_unref(n->obox_load[n->n_obox_load].m);
		free(n->obox_load[n->n_obox_load].groups);
	}
	free(n->obox_load);
	n->obox_load = NULL;
	n->cap_obox_load = 0;
}

/* ---- cluster outbox and marks ---- */

void
persist_outbox_put(struct node *n, uint64_t peer, struct msg *m,
                   struct mqtt_bytes groups)
{
	char id[PERSIST_OBOX_LEN + 1];
	struct store_queue_entry q;
	struct store_batch *b;

	if (!persist_on(n) || n->loading || !(b = persist_batch(n)))
		return;
	persist_payload_once(n, b, m);
	memset(&q, 0, sizeof(q));
	q.client_id = persist_obox_id(id, peer);
	q.seq = m->id;
	q.msg_id = m->id;
	q.qos = m->qos;
	q.retain = m->retain;
	q.groups = groups;
	persist_added(n, store_batch_queue_put(b, &q));
}

void
persist_outbox_del(struct node *n, uint64_t peer, uint64_t msg_id)
{
	char id[PERSIST_OBOX_LEN + 1];
	struct store_batch *b;

	if (!persist_on(n) || n->loading || !(b = persist_batch(n)))
		return;
	persist_added(
	        n, store_batch_queue_del(b, persist_obox_id(id, peer), msg_id));
}

/* The mark of @p origin, added if new; NULL on no memory. */
static struct persist_mark *
persist_mark_slot(struct node *n, uint64_t origin)
{
	struct persist_mark *v;
	size_t i;

	for (i = 0; i < n->n_marks; i++) {
		if (n->marks[i].origin == origin)
			return &n->marks[i];
	}
	if (n->n_marks == n->cap_marks) {
		size_t cap = n->cap_marks ? n->cap_marks * 2 : 8;
		v = realloc(n->marks, cap * sizeof(*v));
		if (!v)
			return NULL;
		n->marks = v;
		n->cap_marks = cap;
	}
	v = &n->marks[n->n_marks++];
	*v = (struct persist_mark){ origin, 0, false };
	return v;
}

void
persist_mark(struct node *n, uint64_t origin, uint64_t msg_id)
{
	struct persist_mark *mk;

	if (!persist_on(n) || !persist_batch(n))
		return;
	mk = persist_mark_slot(n, origin);
	if (!mk) {
		persist_log_failure(n, "mark", ERR_NOMEM);
		return;
	}
	if (msg_id > mk->msg_id) {
		/* written when this turn's batch is submitted */
		mk->msg_id = msg_id;
		mk->dirty = true;
	}
}

struct persist_marks_ctx {
	void (*fn)(void *arg, uint64_t origin, uint64_t msg_id);
	void *arg;
	struct node *n;
};

static int
persist_load_mark(void *arg, const struct store_mark *m)
{
	struct persist_marks_ctx *x = arg;

	struct persist_mark *mk = persist_mark_slot(x->n, m->origin);

	if (!mk)
		return ERR_NOMEM;
	mk->msg_id = m->msg_id;
	x->fn(x->arg, m->origin, m->msg_id);
	return 0;
}

int
persist_load_marks(struct node *n,
                   void (*fn)(void *arg, uint64_t origin, uint64_t msg_id),
                   void *arg)
{
	struct persist_marks_ctx x = { fn, arg, n };

	if (!persist_on(n))
		return 0;
	return store_load_marks(n->store, persist_load_mark, &x);
}
