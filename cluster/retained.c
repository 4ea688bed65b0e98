/*
 * Retained-message replication: the hybrid logical clock that stamps
 * retained changes, a local change sent to every linked peer, this node's
 * whole retained set sent in paced parts on every link that comes up, and the
 * RetainedSync frames received (checked, clock advanced, handed to broker,
 * which keeps the last writer).
 */
#include "cluster/cluster.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cluster/cluster.pb-c.h"
#include "cluster/cluster_int.h"

#define HLC_WALL_BITS 48
#define HLC_WALL_MASK ((UINT64_C(1) << HLC_WALL_BITS) - 1)

/* ---- hybrid logical clock ---- */

uint64_t
retained_wall_ms(void)
{
	struct timespec ts;
	uint64_t ms;

	clock_gettime(CLOCK_REALTIME, &ts);
	ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	return ms & HLC_WALL_MASK;
}

uint64_t
retained_hlc_next(uint64_t last, uint64_t wall_ms)
{
	uint64_t pt = (wall_ms & HLC_WALL_MASK) << (64 - HLC_WALL_BITS);

	return pt > last ? pt : last + 1;
}

uint64_t
cluster_hlc_now(struct cluster *c)
{
	uint64_t wall = retained_wall_ms();

	if (c == NULL)
		return wall << (64 - HLC_WALL_BITS);
	c->hlc = retained_hlc_next(c->hlc, wall);
	return c->hlc;
}

void
retained_hlc_observe(struct cluster *c, uint64_t stamp)
{
	if (stamp > c->hlc)
		c->hlc = stamp;
}

/* ---- one change ---- */

static size_t
retained_size(const struct cluster_retained *r)
{
	return r->topic.len + r->payload.len + r->props.len;
}

/* Fills @p e with views of @p r's bytes. */
static void
retained_pb(const struct cluster_retained *r, Mqd__Retained *e)
{
	mqd__retained__init(e);
	e->topic.data = (uint8_t *)r->topic.p;
	e->topic.len = r->topic.len;
	e->payload.data = (uint8_t *)r->payload.p;
	e->payload.len = r->payload.len;
	e->props.data = (uint8_t *)r->props.p;
	e->props.len = r->props.len;
	e->qos = r->qos;
	e->expiry_s = r->expiry_s;
	e->stamp = r->stamp;
	e->origin_node = r->origin_node;
}

void
cluster_retained_set(struct cluster *c, const struct cluster_retained *r)
{
	Mqd__Envelope env = MQD__ENVELOPE__INIT;
	Mqd__RetainedSync s = MQD__RETAINED_SYNC__INIT;
	Mqd__Retained e, *ep = &e;
	struct link *l;
	size_t i;
	int rc;

	if (c == NULL)
		return;
	retained_hlc_observe(c, r->stamp);
	if (retained_size(r) > CLUSTER_RETAINED_MAX) {
		cluster_log_limited(c, CLUSTER_LOG_WARN,
		                    "cluster retained not replicated "
		                    "topic_len=%zu payload_len=%zu "
		                    "reason=\"too large\"",
		                    r->topic.len, r->payload.len);
		return;
	}
	retained_pb(r, &e);
	s.n_entries = 1;
	s.entries = &ep;
	env.body_case = MQD__ENVELOPE__BODY_RETAINED_SYNC;
	env.retained_sync = &s;
	buf_reset(&c->out);
	rc = frame_encode(&c->out, &env);
	if (rc != 0) {
		/* peers that miss it get it with the next snapshot */
		cluster_log_limited(c, CLUSTER_LOG_ERROR,
		                    "cluster retained not replicated "
		                    "topic_len=%zu err=\"%s\"",
		                    r->topic.len, err_str(rc));
		goto out_trim;
	}
	for (i = 0; i < c->n_members; i++) {
		l = c->members[i]->link;
		if (l != NULL)
			link_send_raw(l, c->out.data, c->out.len);
	}
out_trim:
	cluster_out_trim(c);
}

/* ---- snapshot: the whole set, paced in parts ---- */

/* The whole set is copied (the views broker passes die with each call),
 * then sent a part of CLUSTER_RSNAP_PART bytes at a time, the next part
 * only once the link's output has drained below one part: Acks and
 * gossip queued meanwhile wait behind one part, never behind the whole
 * set, and the output stays far below CLUSTER_OUT_MAX. */
struct rsnap {
	struct buf *b;  /* entries, serialized (rsnap_put) */
	size_t skipped; /* over CLUSTER_RETAINED_MAX, not sent */
};

static void
rsnap_put_bin(struct buf *b, struct mqtt_bytes v)
{
	buf_put_u32(b, (uint32_t)v.len);
	buf_put_bytes(b, v.p, v.len);
}

static void
rsnap_put_u64(struct buf *b, uint64_t v)
{
	buf_put_u32(b, (uint32_t)(v >> 32));
	buf_put_u32(b, (uint32_t)v);
}

static void
rsnap_put(struct buf *b, const struct cluster_retained *r)
{
	rsnap_put_bin(b, r->topic);
	rsnap_put_bin(b, r->payload);
	rsnap_put_bin(b, r->props);
	buf_put_u8(b, r->qos);
	buf_put_u32(b, r->expiry_s);
	rsnap_put_u64(b, r->stamp);
	rsnap_put_u64(b, r->origin_node);
}

static int
rsnap_get_bin(struct rd *r, ProtobufCBinaryData *v)
{
	const uint8_t *p;
	uint32_t len;

	if (rd_u32(r, &len) != 0 || rd_bytes(r, len, &p) != 0)
		return ERR_MALFORMED;
	v->data = (uint8_t *)p;
	v->len = len;
	return 0;
}

static int
rsnap_get_u64(struct rd *r, uint64_t *v)
{
	uint32_t hi, lo;

	if (rd_u32(r, &hi) != 0 || rd_u32(r, &lo) != 0)
		return ERR_MALFORMED;
	*v = (uint64_t)hi << 32 | lo;
	return 0;
}

/* Reads back one entry of rsnap_put as views into the buffer. */
static int
rsnap_get(struct rd *r, Mqd__Retained *e)
{
	uint8_t qos;

	mqd__retained__init(e);
	if (rsnap_get_bin(r, &e->topic) != 0 ||
	    rsnap_get_bin(r, &e->payload) != 0 ||
	    rsnap_get_bin(r, &e->props) != 0 || rd_u8(r, &qos) != 0 ||
	    rd_u32(r, &e->expiry_s) != 0 || rsnap_get_u64(r, &e->stamp) != 0 ||
	    rsnap_get_u64(r, &e->origin_node) != 0)
		return ERR_MALFORMED;
	e->qos = qos;
	return 0;
}

/* each_retained callback */
static void
rsnap_add(void *ctx, const struct cluster_retained *r)
{
	struct rsnap *s = ctx;

	if (retained_size(r) > CLUSTER_RETAINED_MAX)
		s->skipped++;
	else
		rsnap_put(s->b, r);
}

/* How many entries from @p r fit in one part (at least one), and their
 * bytes. */
static size_t
rsnap_part_count(struct rd r, size_t *bytes)
{
	Mqd__Retained e;
	size_t n = 0, left;

	*bytes = 0;
	while (r.left > 0) {
		left = r.left;
		if (rsnap_get(&r, &e) != 0)
			break;
		if (n > 0 && *bytes + (left - r.left) > CLUSTER_RSNAP_PART)
			break;
		*bytes += left - r.left;
		n++;
	}
	return n;
}

/* Sends the next part of l's snapshot. @return 0 or ERR_* (link closed) */
static int
rsnap_send_part(struct link *l)
{
	Mqd__Envelope env = MQD__ENVELOPE__INIT;
	Mqd__RetainedSync rs = MQD__RETAINED_SYNC__INIT;
	struct buf *b = l->rsnap;
	Mqd__Retained *ev, **pv;
	size_t i, n, bytes;
	struct rd r;
	int rc = ERR_NOMEM;

	rd_init(&r, b->data + l->rsnap_off, b->len - l->rsnap_off);
	n = rsnap_part_count(r, &bytes);
	ev = calloc(n ? n : 1, sizeof(*ev));
	pv = calloc(n ? n : 1, sizeof(*pv));
	if (ev == NULL || pv == NULL) {
		link_close(l, CLUSTER_LOG_ERROR, "out of memory");
		goto out_free;
	}
	for (i = 0; i < n; i++) {
		pv[i] = &ev[i];
		rsnap_get(&r, &ev[i]); /* read once already */
	}
	rs.n_entries = n;
	rs.entries = pv;
	rs.snapshot = true;
	rs.more = l->rsnap_off + bytes < b->len;
	env.body_case = MQD__ENVELOPE__BODY_RETAINED_SYNC;
	env.retained_sync = &rs;
	rc = link_send(l, &env);
	l->rsnap_off += bytes;
	l->rsnap_sent += n;
out_free:
	free(pv);
	free(ev);
	return rc;
}

void
retained_snapshot_free(struct link *l)
{
	if (l->rsnap == NULL)
		return;
	buf_fini(l->rsnap);
	free(l->rsnap);
	l->rsnap = NULL;
}

void
retained_snapshot_pump(struct link *l)
{
	while (l->rsnap != NULL && !l->closing &&
	       link_queued(l) < CLUSTER_RSNAP_PART) {
		if (rsnap_send_part(l) != 0)
			return; /* freed with the link */
		if (l->rsnap_off < l->rsnap->len)
			continue;
		cluster_log(l->c, CLUSTER_LOG_DEBUG,
		            "cluster retained snapshot sent node=%s "
		            "entries=%zu",
		            l->m->name, l->rsnap_sent);
		retained_snapshot_free(l);
	}
	cluster_out_trim(l->c);
}

void
retained_send_snapshot(struct cluster *c, struct link *l)
{
	struct rsnap s = { NULL, 0 };

	if (c->hooks.each_retained == NULL)
		return;
	retained_snapshot_free(l); /* not expected: one per link up */
	s.b = malloc(sizeof(*s.b));
	if (s.b == NULL) {
		link_close(l, CLUSTER_LOG_ERROR, "out of memory");
		return;
	}
	buf_init(s.b);
	c->hooks.each_retained(c->hooks.arg, rsnap_add, &s);
	if (s.skipped > 0)
		cluster_log_limited(c, CLUSTER_LOG_WARN,
		                    "cluster retained not replicated node=%s "
		                    "count=%zu reason=\"too large\"",
		                    l->m->name, s.skipped);
	l->rsnap = s.b;
	l->rsnap_off = 0;
	l->rsnap_sent = 0;
	if (buf_failed(s.b)) {
		link_close(l, CLUSTER_LOG_ERROR, "out of memory");
		return; /* freed with the link */
	}
	retained_snapshot_pump(l);
}

/* ---- received ---- */

/* Views of @p e in @p r. @return false when @p e is malformed */
static bool
retained_from_pb(const Mqd__Retained *e, struct cluster_retained *r)
{
	r->topic = (struct mqtt_bytes){ e->topic.data, e->topic.len };
	if (e->qos > 2 || !mqtt_topic_name_is_valid(r->topic))
		return false;
	r->payload = (struct mqtt_bytes){ e->payload.data, e->payload.len };
	r->props = (struct mqtt_bytes){ e->props.data, e->props.len };
	r->qos = (uint8_t)e->qos;
	r->expiry_s = e->expiry_s;
	r->stamp = e->stamp;
	r->origin_node = e->origin_node;
	return true;
}

/* Advances the clock and hands one entry to broker. @return false when the
 * stamp is too far ahead and the entry was refused */
static bool
retained_apply(struct cluster *c, struct member *m,
               const struct cluster_retained *r, uint64_t ahead)
{
	int rc;

	if (r->stamp > ahead)
		return false;
	retained_hlc_observe(c, r->stamp);
	if (c->hooks.retained_apply == NULL)
		return true;
	rc = c->hooks.retained_apply(c->hooks.arg, r);
	if (rc != 0)
		cluster_log_limited(c, CLUSTER_LOG_WARN,
		                    "cluster retained not applied node=%s "
		                    "topic_len=%zu err=\"%s\"",
		                    m->name, r->topic.len, err_str(rc));
	return true;
}

void
retained_on_sync(struct link *l, const Mqd__RetainedSync *s)
{
	struct cluster *c = l->c;
	struct member *m = l->m;
	struct cluster_retained r;
	uint64_t ahead;
	size_t i, refused = 0;

	ahead = (retained_wall_ms() + CLUSTER_HLC_AHEAD_MAX_MS)
	        << (64 - HLC_WALL_BITS);
	for (i = 0; i < s->n_entries; i++) {
		if (!retained_from_pb(s->entries[i], &r)) {
			link_close(l, CLUSTER_LOG_WARN, "bad retained");
			return;
		}
		if (!retained_apply(c, m, &r, ahead))
			refused++;
	}
	if (refused > 0)
		cluster_log_limited(
		        c, CLUSTER_LOG_WARN,
		        "cluster retained refused node=%s count=%zu "
		        "reason=\"stamp ahead of the clock\"",
		        m->name, refused);
	if (!s->snapshot)
		return;
	m->retained_snap += s->n_entries;
	if (s->more)
		return;
	cluster_log(c, CLUSTER_LOG_DEBUG,
	            "cluster retained snapshot node=%s entries=%zu", m->name,
	            m->retained_snap);
	m->retained_snap = 0;
}
