/*
 * A session moving between nodes: a client id is unique in the cluster, so
 * when its client connects to this node while its session lives on another
 * one, that node closes the old connection and hands the session over
 * (subscriptions, queued and in-flight messages, packet ids, incoming QoS 2
 * ids), encoded here in a small format of this file's own, which cluster/
 * carries as bytes:
 *
 *   u8 format (1), u32 expiry, u8 protocol level, u16 next packet id,
 *   u32 subscriptions: u16 length, filter, u8 options, u32 identifier
 *   u32 incoming QoS 2 ids: u16 each
 *   u32 deliveries, oldest first (in-flight, then queued):
 *     u8 state, u16 packet id, u8 qos, u8 retain, u8 n, u32 id x n,
 *     u8 has message; with it: u8 qos, u8 retain, u32 expiry left (s,
 *     0 = none), u16 topic length, topic, u32 payload length, payload,
 *     u32 properties length, properties
 *
 * All integers big-endian. The importing node stores the session before
 * the CONNACK (session present = 1).
 */
#include "broker/node.h"

#include <stdlib.h>
#include <string.h>

#define HANDOFF_FORMAT 1

static void
handoff_put_out(struct buf *b, const struct sess_out *o, uint64_t now)
{
	const struct msg *m = o->msg;
	struct mqtt_bytes t, p, pr;
	uint8_t i;

	buf_put_u8(b, o->state);
	buf_put_u16(b, o->packet_id);
	buf_put_u8(b, o->qos);
	buf_put_u8(b, o->retain);
	buf_put_u8(b, o->n_sub_ids);
	for (i = 0; i < o->n_sub_ids; i++)
		buf_put_u32(b, o->sub_ids[i]);
	buf_put_u8(b, m != NULL);
	if (!m)
		return;
	t = msg_topic(m);
	p = msg_payload(m);
	pr = msg_props(m);
	buf_put_u8(b, m->qos);
	buf_put_u8(b, m->retain);
	buf_put_u32(b, m->expiry_ms ? msg_expiry_left_s(m, now) : 0);
	buf_put_u16(b, (uint16_t)t.len);
	buf_put_bytes(b, t.p, t.len);
	buf_put_u32(b, (uint32_t)p.len);
	buf_put_bytes(b, p.p, p.len);
	buf_put_u32(b, (uint32_t)pr.len);
	buf_put_bytes(b, pr.p, pr.len);
}

/* An expired message still queued is not handed over. */
static bool
handoff_out_wanted(const struct sess_out *o, uint64_t now)
{
	return !(o->state == SESS_OUT_QUEUED && o->msg && o->msg->expiry_ms &&
	         !msg_expiry_left_s(o->msg, now));
}

int
handoff_export(const struct sess *s, struct buf *b, bool queue)
{
	uint64_t now = node_now_ms();
	const struct sess_sub *sub;
	const struct sess_out *o;
	uint32_t n, i;

	buf_put_u8(b, HANDOFF_FORMAT);
	buf_put_u32(b, s->expiry);
	buf_put_u8(b, s->version);
	buf_put_u16(b, s->next_pid);
	for (n = 0, sub = s->subs; sub; sub = sub->next)
		n++;
	buf_put_u32(b, n);
	for (sub = s->subs; sub; sub = sub->next) {
		buf_put_u16(b, sub->len);
		buf_put_bytes(b, (const uint8_t *)sub->filter, sub->len);
		buf_put_u8(b, topic_opts_byte(&sub->opts));
		buf_put_u32(b, sub->opts.sub_id);
	}
	buf_put_u32(b, s->n_qos2_in);
	for (i = 0; i < s->n_qos2_in; i++)
		buf_put_u16(b, s->qos2_in[i]);
	n = 0;
	for (o = s->inflight; o; o = o->next)
		n++;
	for (o = queue ? s->queue : NULL; o; o = o->next)
		n += handoff_out_wanted(o, now);
	buf_put_u32(b, n);
	for (o = s->inflight; o; o = o->next)
		handoff_put_out(b, o, now);
	for (o = queue ? s->queue : NULL; o; o = o->next)
		if (handoff_out_wanted(o, now))
			handoff_put_out(b, o, now);
	return buf_failed(b) ? ERR_NOMEM : 0;
}

/* Reads one delivery into a new sess_out of @p s and stores it. */
static int
handoff_read_out(struct sess *s, struct rd *r)
{
	struct node *n = s->node;
	struct mqtt_bytes t, p, pr;
	uint8_t st, qos, retain, k, has, mqos, mretain;
	uint32_t i, expiry, plen, prlen;
	uint16_t pid, tlen;
	struct sess_out *o;
	struct msg *m = NULL;

	if (rd_u8(r, &st) || rd_u16(r, &pid) || rd_u8(r, &qos) ||
	    rd_u8(r, &retain) || rd_u8(r, &k) || st > SESS_OUT_PUBREL ||
	    qos < 1 || qos > 2)
		return ERR_MALFORMED;
	o = sess_out_new(n);
	if (!o)
		return ERR_NOMEM;
	o->state = st;
	o->packet_id = st == SESS_OUT_QUEUED ? 0 : pid;
	o->qos = qos;
	o->retain = retain != 0;
	o->seq = n->next_seq++;
	if (k) {
		o->sub_ids = malloc(k * sizeof(*o->sub_ids));
		if (!o->sub_ids) {
			sess_out_free(n, o);
			return ERR_NOMEM;
		}
		o->n_sub_ids = k;
		for (i = 0; i < k; i++) {
			if (rd_u32(r, &o->sub_ids[i])) {
				sess_out_free(n, o);
				return ERR_MALFORMED;
			}
		}
	}
	if (rd_u8(r, &has)) {
		sess_out_free(n, o);
		return ERR_MALFORMED;
	}
	if (has) {
		if (rd_u8(r, &mqos) || rd_u8(r, &mretain) ||
		    rd_u32(r, &expiry) || rd_u16(r, &tlen) ||
		    rd_bytes(r, tlen, &t.p) || rd_u32(r, &plen) ||
		    rd_bytes(r, plen, &p.p) || rd_u32(r, &prlen) ||
		    rd_bytes(r, prlen, &pr.p) || mqos > 2) {
			sess_out_free(n, o);
			return ERR_MALFORMED;
		}
		t.len = tlen;
		p.len = plen;
		pr.len = prlen;
		m = msg_new(t, p, pr, mqos, mretain != 0);
		if (!m) {
			sess_out_free(n, o);
			return ERR_NOMEM;
		}
		m->id = ++n->next_msg_id;
		if (expiry)
			m->expiry_ms = node_now_ms() + expiry * 1000ull;
		o->msg = m;
	} else if (st != SESS_OUT_PUBREL) {
		sess_out_free(n, o); /* a delivery needs its message */
		return ERR_MALFORMED;
	}
	if (st == SESS_OUT_QUEUED) {
		*s->queue_tail = o;
		s->queue_tail = &o->next;
		s->n_queued++;
		persist_queue_put(s, o);
		return 0;
	}
	*s->inflight_tail = o;
	s->inflight_tail = &o->next;
	s->n_inflight++;
	if (st == SESS_OUT_SENT)
		persist_queue_put(s, o); /* its payload, for a resend */
	persist_inflight_out(s, o);
	return 0;
}

static int
handoff_read_subs(struct sess *s, struct rd *r)
{
	struct topic_sub_opts opts;
	struct mqtt_bytes f;
	uint32_t n, i, sub_id;
	uint16_t len;
	uint8_t ob;
	bool existed;
	int rc;

	if (rd_u32(r, &n))
		return ERR_MALFORMED;
	for (i = 0; i < n; i++) {
		if (rd_u16(r, &len) || rd_bytes(r, len, &f.p) ||
		    rd_u8(r, &ob) || rd_u32(r, &sub_id))
			return ERR_MALFORMED;
		f.len = len;
		if (!mqtt_topic_filter_is_valid(f))
			return ERR_MALFORMED;
		opts = topic_opts_from_byte(ob, sub_id);
		rc = sess_subscribe(s, f, &opts, &existed);
		if (rc)
			return rc;
	}
	return 0;
}

struct sess *
handoff_import(struct node *n, const char *id, size_t len,
               struct mqtt_bytes blob, int *err)
{
	uint32_t expiry, i, count;
	uint8_t format, version;
	uint16_t next_pid, pid;
	struct sess *s;
	struct rd r;
	int rc;

	*err = ERR_MALFORMED;
	rd_init(&r, blob.p, blob.len);
	if (rd_u8(&r, &format) || format != HANDOFF_FORMAT ||
	    rd_u32(&r, &expiry) || rd_u8(&r, &version) ||
	    rd_u16(&r, &next_pid) || expiry == 0)
		return NULL;
	s = sess_create(n, id, len, expiry, version);
	if (!s) {
		*err = ERR_NOMEM;
		return NULL;
	}
	s->next_pid = next_pid;
	persist_session(s);
	rc = handoff_read_subs(s, &r);
	if (!rc && rd_u32(&r, &count))
		rc = ERR_MALFORMED;
	for (i = 0; !rc && i < count; i++) {
		if (rd_u16(&r, &pid)) {
			rc = ERR_MALFORMED;
			break;
		}
		if (!sess_qos2_in_add(s, pid, &rc) && rc)
			break;
		persist_qos2_in(s, pid, true);
	}
	if (!rc && rd_u32(&r, &count))
		rc = ERR_MALFORMED;
	for (i = 0; !rc && i < count; i++)
		rc = handoff_read_out(s, &r);
	if (rc) {
		persist_session_del(s);
		sess_destroy(s);
		*err = rc;
		return NULL;
	}
	*err = 0;
	return s;
}
