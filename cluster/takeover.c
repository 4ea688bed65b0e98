/*
 * Cluster-wide client ids: a client connecting here makes this node ask
 * every linked peer (Takeover); each one closes its connection for that id
 * and hands its session over (TakeoverReply), and broker goes on once every
 * peer answered, its link dropped, or CLUSTER_TAKEOVER_MS passed. Two nodes
 * taking the same id over at once: the later stamp (then the higher node
 * id) wins, the other one refuses and its client is disconnected.
 */
#include "cluster/cluster.h"

#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "cluster/cluster.pb-c.h"
#include "cluster/cluster_int.h"

/* A takeover this node started. */
struct takeover {
	struct takeover *next;
	struct cluster *c;
	uint64_t req;
	struct event *ev; /* deadline, or activated once all answered */
	uint32_t *slots;  /* members that have not answered */
	size_t n_wait;
	bool refused;
	bool has_session;
	struct buf session;
};

static struct takeover **
takeover_find(struct cluster *c, uint64_t req)
{
	struct takeover **pp;

	for (pp = &c->takeovers; *pp != NULL; pp = &(*pp)->next) {
		if ((*pp)->req == req)
			break;
	}
	return pp;
}

static void
takeover_free(struct takeover *t)
{
	if (t->ev != NULL)
		event_free(t->ev);
	buf_fini(&t->session);
	free(t->slots);
	free(t);
}

/* The deadline, or every answer is in: broker hears the result. */
static void
takeover_cb(evutil_socket_t fd, short what, void *arg)
{
	struct takeover *t = arg, **pp;
	struct cluster *c = t->c;
	struct mqtt_bytes s = { NULL, 0 };

	(void)fd;
	(void)what;
	pp = takeover_find(c, t->req);
	if (*pp == t)
		*pp = t->next;
	if (t->n_wait > 0)
		cluster_log(c, CLUSTER_LOG_WARN,
		            "cluster takeover unanswered peers=%zu", t->n_wait);
	if (t->has_session)
		s = (struct mqtt_bytes){ t->session.data, t->session.len };
	if (c->hooks.takeover_done != NULL)
		c->hooks.takeover_done(c->hooks.arg, t->req, t->refused, s);
	takeover_free(t);
}

/* @p slot answered (or its link is gone). */
static void
takeover_answered(struct takeover *t, uint32_t slot)
{
	size_t i;

	for (i = 0; i < t->n_wait; i++) {
		if (t->slots[i] == slot) {
			t->slots[i] = t->slots[--t->n_wait];
			break;
		}
	}
	if (t->n_wait == 0)
		event_active(t->ev, EV_TIMEOUT, 0);
}

uint64_t
cluster_takeover(struct cluster *c, struct mqtt_bytes id, bool clean,
                 uint64_t stamp)
{
	Mqd__Envelope env = MQD__ENVELOPE__INIT;
	Mqd__Takeover tk = MQD__TAKEOVER__INIT;
	struct takeover *t;
	struct member *m;
	size_t i;

	if (c == NULL)
		return 0;
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return 0;
	t->c = c;
	t->req = ++c->takeover_seq;
	buf_init(&t->session);
	t->slots = calloc(c->n_members ? c->n_members : 1, sizeof(*t->slots));
	t->ev = evtimer_new(c->base, takeover_cb, t);
	if (t->slots == NULL || t->ev == NULL) {
		takeover_free(t);
		return 0;
	}
	tk.req = t->req;
	tk.client_id.data = (uint8_t *)id.p;
	tk.client_id.len = id.len;
	tk.clean = clean;
	tk.stamp = stamp;
	env.body_case = MQD__ENVELOPE__BODY_TAKEOVER;
	env.takeover = &tk;
	for (i = 0; i < c->n_members; i++) {
		m = c->members[i];
		if (m->self || m->link == NULL || m->link->st != LINK_UP ||
		    m->state > CLUSTER_SUSPECT)
			continue;
		if (link_send(m->link, &env) == 0)
			t->slots[t->n_wait++] = m->slot;
	}
	cluster_out_trim(c);
	if (t->n_wait == 0) {
		takeover_free(t);
		return 0; /* nobody to ask: the id is this node's */
	}
	t->next = c->takeovers;
	c->takeovers = t;
	cluster_timer_add(t->ev, CLUSTER_TAKEOVER_MS);
	return t->req;
}

void
cluster_takeover_cancel(struct cluster *c, uint64_t req)
{
	struct takeover **pp, *t;

	if (c == NULL || req == 0)
		return;
	pp = takeover_find(c, req);
	if ((t = *pp) == NULL)
		return;
	*pp = t->next;
	takeover_free(t);
}

void
takeover_on_request(struct link *l, const Mqd__Takeover *tk)
{
	Mqd__Envelope env = MQD__ENVELOPE__INIT;
	Mqd__TakeoverReply r = MQD__TAKEOVER_REPLY__INIT;
	struct cluster *c = l->c;
	struct mqtt_bytes id = { tk->client_id.data, tk->client_id.len };
	struct buf s;

	buf_init(&s);
	r.req = tk->req;
	if (id.len == 0 || c->hooks.takeover == NULL)
		r.refused = false; /* nothing here to close or hand over */
	else
		r.refused = !c->hooks.takeover(c->hooks.arg, id, tk->clean,
		                               tk->stamp, l->m->node_id, &s,
		                               CLUSTER_FRAME_MAX - 4096);
	if (buf_failed(&s)) {
		cluster_log(c, CLUSTER_LOG_ERROR,
		            "cluster takeover: session not handed over "
		            "reason=\"out of memory\"");
		buf_reset(&s);
	}
	r.session.data = s.data;
	r.session.len = s.len;
	env.body_case = MQD__ENVELOPE__BODY_TAKEOVER_REPLY;
	env.takeover_reply = &r;
	link_send(l, &env);
	buf_fini(&s);
	cluster_out_trim(c);
}

void
takeover_on_reply(struct link *l, const Mqd__TakeoverReply *r)
{
	struct takeover *t = *takeover_find(l->c, r->req);

	if (t == NULL)
		return; /* answered after the deadline, or cancelled */
	t->refused |= r->refused;
	if (r->session.len > 0) {
		if (t->has_session)
			cluster_log(l->c, CLUSTER_LOG_WARN,
			            "cluster takeover: a second session from "
			            "node=%s ignored",
			            l->m->name);
		else {
			buf_put_bytes(&t->session, r->session.data,
			              r->session.len);
			t->has_session = !buf_failed(&t->session);
		}
	}
	takeover_answered(t, l->m->slot);
}

void
takeover_link_lost(struct cluster *c, struct member *m)
{
	struct takeover *t;

	for (t = c->takeovers; t != NULL; t = t->next)
		takeover_answered(t, m->slot);
}

void
takeover_free_all(struct cluster *c)
{
	struct takeover *t;

	while ((t = c->takeovers) != NULL) {
		c->takeovers = t->next;
		takeover_free(t);
	}
}
