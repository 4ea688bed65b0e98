/*
 * Sessions: the table of sessions by client id, each session's
 * subscriptions, its queue of messages waiting to be sent, its in-flight
 * window of outgoing QoS 1/2 messages and its incoming QoS 2 packet ids.
 * Kept in memory; shaped so that storage can persist each part as it is.
 */
#include "broker/node.h"

#include <stdlib.h>
#include <string.h>

static uint32_t
sess_hash(const char *id, size_t len)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= (uint8_t)id[i];
		h *= 16777619u;
	}
	return h;
}

#define SESS_TOMB ((struct sess *)1)

static void sess_tree_remove(struct sess *s, struct mqtt_bytes filter);

static struct sess **
sess_slot(struct sess_table *t, const char *id, size_t len, uint32_t h)
{
	size_t mask = t->cap - 1, i = h & mask;
	struct sess **tomb = NULL;

	for (;;) {
		struct sess *s = t->slots[i];
		if (!s)
			return tomb ? tomb : &t->slots[i];
		if (s == SESS_TOMB) {
			if (!tomb)
				tomb = &t->slots[i];
		} else if (s->hash == h && s->id_len == len &&
		           memcmp(s->client_id, id, len) == 0) {
			return &t->slots[i];
		}
		i = (i + 1) & mask;
	}
}

static int
sess_table_grow(struct sess_table *t)
{
	struct sess **old = t->slots;
	size_t oldcap = t->cap, i;
	size_t cap = oldcap ? oldcap * 2 : 64;

	if (t->n * 2 < oldcap)
		cap = oldcap; /* only tombstones to clear */
	t->slots = calloc(cap, sizeof(*t->slots));
	if (!t->slots) {
		t->slots = old;
		return ERR_NOMEM;
	}
	t->cap = cap;
	t->tomb = 0;
	for (i = 0; i < oldcap; i++) {
		struct sess *s = old[i];
		if (s && s != SESS_TOMB)
			*sess_slot(t, s->client_id, s->id_len, s->hash) = s;
	}
	free(old);
	return 0;
}

struct sess *
sess_find(struct node *n, const char *id, size_t len)
{
	struct sess_table *t = &n->sessions;
	struct sess *s;

	if (!t->cap)
		return NULL;
	s = *sess_slot(t, id, len, sess_hash(id, len));
	return s == SESS_TOMB ? NULL : s;
}

struct sess *
sess_create(struct node *n, const char *id, size_t len, uint32_t expiry,
            uint8_t version)
{
	struct sess_table *t = &n->sessions;
	struct sess **slot;
	struct sess *s;

	if ((t->n + t->tomb + 1) * 4 > t->cap * 3 && sess_table_grow(t))
		return NULL;
	/* one allocation: an idle connection's session costs one chunk */
	s = calloc(1, sizeof(*s) + len + 1);
	if (!s)
		return NULL;
	s->client_id = s->id;
	memcpy(s->client_id, id, len);
	s->client_id[len] = '\0';
	s->id_len = len;
	s->hash = sess_hash(id, len);
	s->node = n;
	s->expiry = expiry;
	s->routes_durable = expiry != 0;
	s->version = version;
	s->inflight_tail = &s->inflight;
	s->queue_tail = &s->queue;
	slot = sess_slot(t, id, len, s->hash);
	if (*slot == SESS_TOMB)
		t->tomb--;
	*slot = s;
	t->n++;
	return s;
}

struct sess_out *
sess_out_new(struct node *n)
{
	struct sess_out *o = node_pool_get(&n->sess_outs);

	if (o)
		memset(o, 0, sizeof(*o));
	return o;
}

void
sess_out_free(struct node *n, struct sess_out *o)
{
	msg_unref(o->msg);
	free(o->sub_ids);
	node_pool_put(&n->sess_outs, o);
}

static void
sess_out_free_list(struct node *n, struct sess_out *o)
{
	struct sess_out *next;

	for (; o; o = next) {
		next = o->next;
		sess_out_free(n, o);
	}
}

static void
sess_free(struct sess *s)
{
	struct sess_sub *sub, *next;

	for (sub = s->subs; sub; sub = next) {
		struct mqtt_bytes f = { (const uint8_t *)sub->filter,
			                sub->len };
		next = sub->next;
		sess_tree_remove(s, f);
		mesh_sub_ref(s, f, -1);
		free(sub);
	}
	sess_out_free_list(s->node, s->inflight);
	sess_out_free_list(s->node, s->queue);
	msg_unref(s->will);
	free(s->qos2_in);
	free(s);
}

void
sess_destroy(struct sess *s)
{
	struct sess_table *t = &s->node->sessions;
	struct sess **slot = sess_slot(t, s->client_id, s->id_len, s->hash);

	if (*slot == s) {
		*slot = SESS_TOMB;
		t->n--;
		t->tomb++;
	}
	sess_free(s);
}

void
sess_foreach(struct node *n, void (*fn)(struct sess *s, void *arg), void *arg)
{
	struct sess_table *t = &n->sessions;
	size_t i;

	for (i = 0; i < t->cap; i++)
		if (t->slots[i] && t->slots[i] != SESS_TOMB)
			fn(t->slots[i], arg);
}

void
sess_destroy_all(struct node *n)
{
	struct sess_table *t = &n->sessions;
	size_t i;

	for (i = 0; i < t->cap; i++) {
		struct sess *s = t->slots[i];
		if (s && s != SESS_TOMB)
			sess_free(s);
	}
	free(t->slots);
	memset(t, 0, sizeof(*t));
}

/* Enters a subscription of @p s in the trie, or in its shared group. */
static int
sess_tree_add(struct sess *s, struct mqtt_bytes filter,
              const struct topic_sub_opts *opts)
{
	struct mqtt_bytes f;
	bool shared;

	if (share_parse(filter, &shared, &f))
		return ERR_BAD_FILTER;
	if (shared)
		return share_add(s->node, filter, f, s, opts);
	return topic_tree_add(s->node->subs, filter, s, opts, NULL);
}

static void
sess_tree_remove(struct sess *s, struct mqtt_bytes filter)
{
	struct mqtt_bytes f;
	bool shared;

	if (share_parse(filter, &shared, &f) == 0 && shared)
		share_remove(s->node, filter, s);
	else
		topic_tree_remove(s->node->subs, filter, s);
}

static struct sess_sub *
sess_sub_find(struct sess *s, struct mqtt_bytes f)
{
	struct sess_sub *sub;

	for (sub = s->subs; sub; sub = sub->next)
		if (sub->len == f.len && memcmp(sub->filter, f.p, f.len) == 0)
			return sub;
	return NULL;
}

int
sess_subscribe(struct sess *s, struct mqtt_bytes filter,
               const struct topic_sub_opts *opts, bool *existed)
{
	struct sess_sub *sub = sess_sub_find(s, filter);
	int rc;

	*existed = sub != NULL;
	if (!sub) {
		sub = malloc(sizeof(*sub) + filter.len);
		if (!sub)
			return ERR_NOMEM;
		sub->len = (uint16_t)filter.len;
		memcpy(sub->filter, filter.p, filter.len);
		rc = sess_tree_add(s, filter, opts);
		if (rc) {
			free(sub);
			return rc;
		}
		sub->next = s->subs;
		s->subs = sub;
		mesh_sub_ref(s, filter, +1);
	} else {
		/* [MQTT-3.8.4-3] an identical filter replaces the old one */
		rc = sess_tree_add(s, filter, opts);
		if (rc)
			return rc;
	}
	sub->opts = *opts;
	persist_sub(s, filter, opts);
	return 0;
}

int
sess_unsubscribe(struct sess *s, struct mqtt_bytes filter)
{
	struct sess_sub **pp, *sub;

	for (pp = &s->subs; (sub = *pp); pp = &sub->next) {
		if (sub->len == filter.len &&
		    memcmp(sub->filter, filter.p, filter.len) == 0) {
			*pp = sub->next;
			sess_tree_remove(s, filter);
			mesh_sub_ref(s, filter, -1);
			free(sub);
			persist_sub(s, filter, NULL);
			return 0;
		}
	}
	return ERR_NOTFOUND;
}

/* Fills the MQTT 5 properties of an outgoing PUBLISH: those the message
 * carries (already encoded: sent as they are), the remaining Message
 * Expiry [MQTT-3.3.2-6] v5, and the subscription identifiers. */
static void
sess_publish_props(struct mqtt_publish *pub, const struct msg *m,
                   const uint32_t *sub_ids, size_t n_sub_ids)
{
	struct mqtt_props *pr = &pub->props;
	struct mqtt_bytes fw = msg_props(m);
	size_t i, skip = 0;

	/* stored with their length prefix (a variable byte integer) */
	while (skip < fw.len && (fw.p[skip] & 0x80))
		skip++;
	if (skip < fw.len)
		pub->props_raw = (struct mqtt_bytes){ fw.p + skip + 1,
			                              fw.len - skip - 1 };
	if (m->expiry_ms) {
		pr->message_expiry = msg_expiry_left_s(m, node_now_ms());
		pr->present |= 1ull << MQTT_PROP_MESSAGE_EXPIRY;
	}
	for (i = 0; i < n_sub_ids && i < MQTT_MAX_SUB_IDS; i++)
		pr->sub_ids[i] = sub_ids[i];
	pr->n_sub_ids = i;
	if (i)
		pr->present |= 1ull << MQTT_PROP_SUB_ID;
}

/* True when @p m expired before it could be sent [MQTT-3.3.2-5] v5. */
static bool
sess_msg_expired(const struct msg *m, uint64_t now)
{
	return m->expiry_ms && m->expiry_ms <= now;
}

/* Encodes and queues one PUBLISH on the session's connection.
 * @return false when the client's Maximum Packet Size forbids it: the
 * message is dropped for this client [MQTT-3.1.2-25] v5 */
static bool
sess_send_publish(struct sess *s, struct msg *m, uint8_t qos, bool retain,
                  uint16_t pid, bool dup, const uint32_t *sub_ids,
                  size_t n_sub_ids)
{
	struct mqtt_publish pub;
	uint8_t storage[512];
	uint32_t max;
	struct buf b;

	memset(&pub, 0, sizeof(pub));
	pub.qos = qos;
	pub.dup = dup;
	pub.retain = retain;
	pub.packet_id = pid;
	pub.topic = msg_topic(m);
	pub.payload = msg_payload(m);
	if (conn_version(s->conn) == MQTT_V5) {
		bool known;
		sess_publish_props(&pub, m, sub_ids, n_sub_ids);
		/* the server's own aliases: a repeated topic costs 2 bytes */
		pub.props.topic_alias =
		        conn_alias_out(s->conn, pub.topic, &known);
		if (pub.props.topic_alias) {
			pub.props.present |= 1ull << MQTT_PROP_TOPIC_ALIAS;
			if (known)
				pub.topic.len = 0;
		}
	}
	buf_init_fixed(&b, storage, sizeof(storage));
	if (mqtt_publish_header_encode(&b, conn_version(s->conn), &pub)) {
		buf_init(&b); /* a long topic: encode on the heap */
		if (mqtt_publish_header_encode(&b, conn_version(s->conn),
		                               &pub)) {
			buf_fini(&b);
			conn_close(s->conn, "out of memory", true);
			return true;
		}
	}
	max = conn_max_packet(s->conn);
	if (max && b.len + pub.payload.len > max) {
		if (pub.props.topic_alias && pub.topic.len)
			conn_alias_out_undo(s->conn, pub.props.topic_alias);
		buf_fini(&b);
		s->node->stats.msgs_dropped_too_large++;
		s->dropped++;
		return false;
	}
	/* a first QoS 2 send to a persistent session waits until its packet
	 * id is on disk: a restart must re-send it under the same id */
	if ((qos == 2 && !dup && persist_sess_on(s)
	             ? conn_send_durable(s->conn, b.data, b.len, m)
	             : conn_send(s->conn, b.data, b.len, m)) == 0) {
		s->node->stats.msgs_out++;
		s->node->stats.msgs_out_qos[qos]++;
		s->node->stats.payload_out_qos[qos] += m->payload_len;
	}
	buf_fini(&b);
	return true;
}

static bool
sess_pid_in_use(const struct sess *s, uint16_t pid)
{
	const struct sess_out *o;

	for (o = s->inflight; o; o = o->next)
		if (o->packet_id == pid)
			return true;
	/* sent before a reconnect and held back by the new window */
	for (o = s->queue; o && o->packet_id; o = o->next)
		if (o->packet_id == pid)
			return true;
	return false;
}

static uint16_t
sess_next_pid(struct sess *s)
{
	const struct sess_out *oldest = s->inflight;

	if (!oldest && s->queue && s->queue->packet_id)
		oldest = s->queue; /* held back at a resume */
	s->next_pid = s->next_pid == UINT16_MAX ? 1 : s->next_pid + 1;
	/* Ids are given in send order and the in-flight list keeps that
	 * order, so the ids in use lie between the oldest one and the last
	 * one given: the next is in use only when they span every id. */
	if (!oldest || oldest->packet_id != s->next_pid)
		return s->next_pid;
	do {
		s->next_pid++;
		if (s->next_pid == 0)
			s->next_pid = 1;
	} while (sess_pid_in_use(s, s->next_pid));
	return s->next_pid;
}

static void sess_inflight_remove(struct sess *s, struct sess_out *o,
                                 struct sess_out *prev);

/* Moves @p o into the in-flight window and sends it. */
static void
sess_send_out(struct sess *s, struct sess_out *o)
{
	bool again = o->packet_id != 0; /* held back at a resume */

	o->next = NULL;
	if (!again)
		o->packet_id = sess_next_pid(s);
	o->state = SESS_OUT_SENT;
	*s->inflight_tail = o;
	s->inflight_tail = &o->next;
	s->n_inflight++;
	if (!sess_send_publish(s, o->msg, o->qos, o->retain, o->packet_id,
	                       again, o->sub_ids, o->n_sub_ids)) {
		/* too large for the client: as if acknowledged */
		struct sess_out *prev = NULL, *p;
		for (p = s->inflight; p != o; p = p->next)
			prev = p;
		persist_out_del(s, o);
		sess_inflight_remove(s, o, prev);
		return;
	}
	if (!again)
		persist_inflight_out(s, o);
}

void
sess_pump(struct sess *s)
{
	struct sess_out *o;
	uint64_t now = node_now_ms();

	while (s->conn && s->queue && s->n_inflight < conn_window(s->conn)) {
		o = s->queue;
		s->queue = o->next;
		if (!s->queue)
			s->queue_tail = &s->queue;
		s->n_queued--;
		/* a message sent once is finished even when it expires
		 * [MQTT-4.3.3-7] v5 */
		if (!o->packet_id && sess_msg_expired(o->msg, now)) {
			persist_out_del(s, o);
			sess_out_free(s->node, o);
			continue;
		}
		sess_send_out(s, o);
	}
}

/* The queue is full: the oldest queued message makes room for the new
 * one (the newest data is the most useful to a returning client). */
static void
sess_drop_oldest(struct sess *s)
{
	struct node *n = s->node;
	struct sess_out *o = s->queue;

	s->queue = o->next;
	if (!s->queue)
		s->queue_tail = &s->queue;
	s->n_queued--;
	persist_out_del(s, o);
	sess_out_free(s->node, o);
	n->stats.msgs_dropped_queue_full++;
	s->dropped++;
	if (log_limit_ok(&n->log_lim, 10))
		log_warn("message dropped client=%s reason=queue_full "
		         "max_queued=%u dropped_total=%llu",
		         s->client_id, n->cfg->max_queued,
		         (unsigned long long)s->dropped);
}

void
sess_deliver(struct sess *s, struct msg *m, uint8_t qos, bool retain,
             const uint32_t *sub_ids, size_t n_sub_ids)
{
	struct node *n = s->node;
	struct sess_out *o;

	if (sess_msg_expired(m, node_now_ms()))
		return;
	if (qos == 0) {
		if (!s->conn) {
			n->stats.msgs_dropped_offline++;
			return;
		}
		if (conn_congested(s->conn)) {
			n->stats.msgs_dropped_slow++;
			s->dropped++;
			return;
		}
		sess_send_publish(s, m, 0, retain, 0, false, sub_ids,
		                  n_sub_ids);
		return;
	}
	o = sess_out_new(n);
	if (!o) {
		s->dropped++;
		return;
	}
	if (n_sub_ids) {
		o->sub_ids = malloc(n_sub_ids * sizeof(*o->sub_ids));
		if (!o->sub_ids) {
			sess_out_free(n, o);
			s->dropped++;
			return;
		}
		memcpy(o->sub_ids, sub_ids, n_sub_ids * sizeof(*o->sub_ids));
		o->n_sub_ids = (uint8_t)n_sub_ids;
	}
	o->msg = msg_ref(m);
	o->qos = qos;
	o->retain = retain;
	o->state = SESS_OUT_QUEUED;
	o->seq = n->next_seq++;
	if (s->conn && !s->queue && s->n_inflight < conn_window(s->conn)) {
		persist_queue_put(s, o);
		sess_send_out(s, o);
		return;
	}
	if (s->n_queued >= n->cfg->max_queued)
		sess_drop_oldest(s);
	persist_queue_put(s, o);
	*s->queue_tail = o;
	s->queue_tail = &o->next;
	s->n_queued++;
}

void
sess_resume(struct sess *s)
{
	struct sess_out *o, *next, *prev = NULL, *held = NULL;
	struct sess_out **held_tail = &held;
	uint32_t sent = 0, n_held = 0, window = conn_window(s->conn);
	struct mqtt_packet pkt;

	/* [MQTT-4.4.0-1] re-send unacknowledged PUBLISH and PUBREL with
	 * their original ids, in their original order [MQTT-4.6.0-1]. */
	for (o = s->inflight; o && s->conn; o = next) {
		next = o->next;
		if (o->state == SESS_OUT_SENT && sent >= window) {
			/* [MQTT-4.9.0-1] v5: past the new connection's
			 * Receive Maximum: it waits at the head of the queue
			 * with its id, and goes again when the window opens */
			if (prev)
				prev->next = next;
			else
				s->inflight = next;
			s->n_inflight--;
			o->next = NULL;
			*held_tail = o;
			held_tail = &o->next;
			n_held++;
			continue;
		}
		if (o->state == SESS_OUT_SENT) {
			sent++;
			sess_send_publish(s, o->msg, o->qos, o->retain,
			                  o->packet_id, true, o->sub_ids,
			                  o->n_sub_ids);
		} else {
			memset(&pkt, 0, sizeof(pkt));
			pkt.type = MQTT_PUBREL;
			pkt.flags = 2;
			pkt.u.ack.packet_id = o->packet_id;
			conn_send_packet(s->conn, &pkt);
		}
		prev = o;
	}
	s->inflight_tail = prev ? &prev->next : &s->inflight;
	if (held) {
		*held_tail = s->queue;
		if (!s->queue)
			s->queue_tail = held_tail;
		s->queue = held;
		s->n_queued += n_held;
	}
	sess_pump(s);
}

/* Finds the in-flight entry of @p pid; @p prev gets its predecessor. */
static struct sess_out *
sess_inflight_find(struct sess *s, uint16_t pid, struct sess_out **prev)
{
	struct sess_out *o, *p = NULL;

	for (o = s->inflight; o; p = o, o = o->next) {
		if (o->packet_id == pid) {
			*prev = p;
			return o;
		}
	}
	return NULL;
}

static void
sess_inflight_remove(struct sess *s, struct sess_out *o, struct sess_out *prev)
{
	if (prev)
		prev->next = o->next;
	else
		s->inflight = o->next;
	if (s->inflight_tail == &o->next)
		s->inflight_tail = prev ? &prev->next : &s->inflight;
	s->n_inflight--;
	sess_out_free(s->node, o);
}

void
sess_on_puback(struct sess *s, uint16_t pid)
{
	struct sess_out *prev, *o = sess_inflight_find(s, pid, &prev);

	if (!o || o->qos != 1) {
		log_debug("puback for unknown packet id client=%s id=%u",
		          s->client_id, pid);
		return;
	}
	persist_out_del(s, o);
	sess_inflight_remove(s, o, prev);
	sess_pump(s);
}

void
sess_on_pubrec(struct sess *s, uint16_t pid, uint8_t rc)
{
	struct sess_out *prev, *o = sess_inflight_find(s, pid, &prev);
	struct mqtt_packet pkt;

	if (!o || o->qos != 2) {
		log_debug("pubrec for unknown packet id client=%s id=%u",
		          s->client_id, pid);
		return;
	}
	if (rc >= 0x80) {
		/* [MQTT-4.4.0-2] [MQTT-4.3.3-4] v5: refused: treated as
		 * acknowledged, no PUBREL, and the window slot is free */
		persist_out_del(s, o);
		sess_inflight_remove(s, o, prev);
		sess_pump(s);
		return;
	}
	o->state = SESS_OUT_PUBREL;
	msg_unref(o->msg); /* the message itself is delivered now */
	o->msg = NULL;
	persist_inflight_out(s, o);
	memset(&pkt, 0, sizeof(pkt));
	pkt.type = MQTT_PUBREL;
	pkt.flags = 2;
	pkt.u.ack.packet_id = pid;
	conn_send_packet(s->conn, &pkt);
}

void
sess_on_pubcomp(struct sess *s, uint16_t pid)
{
	struct sess_out *prev, *o = sess_inflight_find(s, pid, &prev);

	if (!o || o->state != SESS_OUT_PUBREL) {
		log_debug("pubcomp for unknown packet id client=%s id=%u",
		          s->client_id, pid);
		return;
	}
	persist_out_del(s, o);
	sess_inflight_remove(s, o, prev);
	sess_pump(s);
}

bool
sess_qos2_in_add(struct sess *s, uint16_t pid, int *err)
{
	uint32_t i;
	uint16_t *nv;

	*err = 0;
	for (i = 0; i < s->n_qos2_in; i++)
		if (s->qos2_in[i] == pid)
			return false;
	if (s->n_qos2_in == s->cap_qos2_in) {
		uint32_t cap = s->cap_qos2_in ? s->cap_qos2_in * 2 : 4;
		nv = realloc(s->qos2_in, cap * sizeof(*nv));
		if (!nv) {
			*err = ERR_NOMEM;
			return false;
		}
		s->qos2_in = nv;
		s->cap_qos2_in = cap;
	}
	s->qos2_in[s->n_qos2_in++] = pid;
	persist_qos2_in(s, pid, true);
	return true;
}

bool
sess_qos2_in_remove(struct sess *s, uint16_t pid)
{
	uint32_t i;

	for (i = 0; i < s->n_qos2_in; i++) {
		if (s->qos2_in[i] == pid) {
			persist_qos2_in(s, pid, false);
			s->qos2_in[i] = s->qos2_in[--s->n_qos2_in];
			if (!s->n_qos2_in) {
				free(s->qos2_in);
				s->qos2_in = NULL;
				s->cap_qos2_in = 0;
			}
			return true;
		}
	}
	return false;
}

void
sess_end(struct sess *s)
{
	struct node *n = s->node;
	struct msg *will = s->will;

	persist_session_del(s);
	s->will = NULL;
	if (will) {
		/* [MQTT-3.1.2-8] v5: the session ends before the will delay */
		router_publish_will(n, will, s->will_expiry);
		msg_unref(will);
	}
	sess_destroy(s);
}

void
sess_detach(struct sess *s, struct msg *will, uint32_t will_delay,
            uint32_t will_expiry)
{
	struct node *n = s->node;
	uint64_t now = node_now_ms();

	s->conn = NULL;
	if (will && will_delay && s->expiry) {
		/* v5 Will Delay Interval: held until it runs out, the session
		 * ends, or a connection resumes the session [MQTT-3.1.3-9] */
		msg_unref(s->will);
		s->will = msg_ref(will);
		s->will_at = now + will_delay * 1000ull;
		s->will_expiry = will_expiry;
	} else if (will) {
		router_publish_will(n, will, will_expiry);
	}
	if (s->expiry == 0) {
		sess_end(s);
		return;
	}
	s->expire_at = s->expiry == UINT32_MAX ? 0 : now + s->expiry * 1000ull;
	persist_session(s);
}

void
sess_tick(struct node *n, uint64_t now)
{
	struct sess_table *t = &n->sessions;
	size_t i;

	/* Deleting leaves a tombstone and moves no other slot, so the walk
	 * may end sessions as it goes. */
	for (i = 0; i < t->cap; i++) {
		struct sess *s = t->slots[i];
		if (!s || s == SESS_TOMB || s->conn)
			continue;
		if (s->will && now >= s->will_at) {
			struct msg *will = s->will;
			s->will = NULL;
			router_publish_will(n, will, s->will_expiry);
			msg_unref(will);
			persist_session(s); /* without it */
		}
		if (s->expire_at && now >= s->expire_at) {
			log_info("session expired client=%s", s->client_id);
			sess_end(s);
		}
	}
}

void
sess_drop(struct sess *s, const char *why)
{
	struct node *n = s->node;

	if (s->conn)
		conn_drop_session(s->conn, why);
	n->stats.sessions_dropped++;
	log_info("session dropped client=%s reason=\"%s\"", s->client_id, why);
	sess_end(s); /* as an expiry: stored state deleted, delayed will out */
}
