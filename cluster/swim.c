/*
 * Membership, SWIM-style: a probe per ping_ms (Ping, then PingReq through up
 * to two members, then SUSPECT), suspicion timeouts, refutation by
 * incarnation, gossip (sent at once when this node decides a change, and
 * piggy-backed on Ping / Ack / PingReq), Leave.
 */
#include "cluster/cluster.h"

#include <assert.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "cluster/cluster.pb-c.h"
#include "cluster/cluster_int.h"

static_assert((int)MQD__MEMBER_STATE__MEMBER_ALIVE == (int)CLUSTER_ALIVE &&
                      (int)MQD__MEMBER_STATE__MEMBER_SUSPECT ==
                              (int)CLUSTER_SUSPECT &&
                      (int)MQD__MEMBER_STATE__MEMBER_DEAD ==
                              (int)CLUSTER_DEAD &&
                      (int)MQD__MEMBER_STATE__MEMBER_LEFT == (int)CLUSTER_LEFT,
              "wire and API member states agree");

/* How many frames piggy-back an update: 3 + log2(members). */
static uint32_t
swim_retransmit(const struct cluster *c)
{
	size_t n = c->n_members;
	uint32_t r = 3;

	while (n >>= 1)
		r++;
	return r;
}

void
swim_member_pb(const struct member *m, Mqd__Member *out)
{
	mqd__member__init(out);
	out->name = m->name;
	out->node_id = m->node_id;
	out->addr = m->addr;
	out->incarnation = m->inc;
	out->state = (Mqd__MemberState)m->state;
}

size_t
swim_piggyback(struct cluster *c, Mqd__Member *mv, Mqd__Member **pv, size_t max)
{
	size_t i, k, n = 0;
	struct member *m;

	for (k = 0; k < c->n_members && n < max; k++) {
		i = (c->gossip_next + k) % c->n_members;
		m = c->members[i];
		if (m->gossip_left == 0)
			continue;
		m->gossip_left--;
		swim_member_pb(m, &mv[n]);
		pv[n] = &mv[n];
		n++;
	}
	if (c->n_members > 0)
		c->gossip_next = (c->gossip_next + k) % c->n_members;
	return n;
}

/* Sends m's state in a Gossip frame to one peer (to), or to every linked
 * peer (to == NULL). */
static void
swim_gossip_now(struct cluster *c, const struct member *m, struct link *to)
{
	Mqd__Envelope env = MQD__ENVELOPE__INIT;
	Mqd__Gossip g = MQD__GOSSIP__INIT;
	Mqd__Member mp;
	Mqd__Member *pv[1] = { &mp };
	struct link *l;
	size_t i;

	swim_member_pb(m, &mp);
	g.n_members = 1;
	g.members = pv;
	env.body_case = MQD__ENVELOPE__BODY_GOSSIP;
	env.gossip = &g;
	buf_reset(&c->out);
	if (frame_encode(&c->out, &env) != 0)
		return; /* piggy-backing still carries it */
	if (to != NULL) {
		link_send_raw(to, c->out.data, c->out.len);
		return;
	}
	for (i = 0; i < c->n_members; i++) {
		l = c->members[i]->link;
		if (l != NULL)
			link_send_raw(l, c->out.data, c->out.len);
	}
}

static void
swim_send_ping(struct cluster *c, struct link *l, uint64_t seq)
{
	Mqd__Envelope env = MQD__ENVELOPE__INIT;
	Mqd__Ping p = MQD__PING__INIT;
	Mqd__Member mv[CLUSTER_GOSSIP_MAX];
	Mqd__Member *pv[CLUSTER_GOSSIP_MAX];

	p.seq = seq;
	p.n_members = swim_piggyback(c, mv, pv, CLUSTER_GOSSIP_MAX);
	p.members = pv;
	env.body_case = MQD__ENVELOPE__BODY_PING;
	env.ping = &p;
	link_send(l, &env);
}

static void
swim_send_ack(struct cluster *c, struct link *l, uint64_t seq,
              const char *target)
{
	Mqd__Envelope env = MQD__ENVELOPE__INIT;
	Mqd__Ack a = MQD__ACK__INIT;
	Mqd__Member mv[CLUSTER_GOSSIP_MAX];
	Mqd__Member *pv[CLUSTER_GOSSIP_MAX];

	a.seq = seq;
	a.target = (char *)target;
	a.n_members = swim_piggyback(c, mv, pv, CLUSTER_GOSSIP_MAX);
	a.members = pv;
	env.body_case = MQD__ENVELOPE__BODY_ACK;
	env.ack = &a;
	link_send(l, &env);
}

static void
swim_send_ping_req(struct cluster *c, struct link *l, uint64_t seq,
                   const char *target)
{
	Mqd__Envelope env = MQD__ENVELOPE__INIT;
	Mqd__PingReq r = MQD__PING_REQ__INIT;
	Mqd__Member mv[CLUSTER_GOSSIP_MAX];
	Mqd__Member *pv[CLUSTER_GOSSIP_MAX];

	r.seq = seq;
	r.target = (char *)target;
	r.n_members = swim_piggyback(c, mv, pv, CLUSTER_GOSSIP_MAX);
	r.members = pv;
	env.body_case = MQD__ENVELOPE__BODY_PING_REQ;
	env.ping_req = &r;
	link_send(l, &env);
}

static void
swim_dead_cb(evutil_socket_t fd, short what, void *arg)
{
	struct member *m = arg;

	(void)fd;
	(void)what;
	if (m->state == CLUSTER_SUSPECT)
		swim_set_state(m->c, m, CLUSTER_DEAD, m->inc, true);
}

/* Starts the suspicion of m now. The tick also checks dead_at_ms, so a
 * timer that could not be created only costs precision. */
static void
swim_suspect_start(struct cluster *c, struct member *m, uint64_t now)
{
	m->suspected_ms = now;
	m->dead_at_ms =
	        member_dead_at(now, m->heard_ms, c->ping_ms, c->dead_ms);
	if (m->dead_ev == NULL)
		m->dead_ev = evtimer_new(c->base, swim_dead_cb, m);
	if (m->dead_ev != NULL)
		cluster_timer_add(m->dead_ev, m->dead_at_ms - now);
}

static void
swim_changed(struct cluster *c, struct member *m, enum cluster_member_state old)
{
	cluster_log(c, CLUSTER_LOG_INFO,
	            "cluster member node=%s state=%s inc=%" PRIu64 " was=%s",
	            m->name, member_state_name(m->state), m->inc,
	            member_state_name(old));
	if (c->hooks.member_changed != NULL)
		c->hooks.member_changed(c->hooks.arg, m->name, m->state);
}

void
swim_set_state(struct cluster *c, struct member *m,
               enum cluster_member_state st, uint64_t inc, bool local)
{
	enum cluster_member_state old = m->state;
	uint64_t old_inc = m->inc;
	uint64_t now = cluster_now_ms();

	m->state = st;
	m->inc = inc;
	m->gossip_left = swim_retransmit(c);
	if (local)
		swim_gossip_now(c, m, NULL);
	else if (st == CLUSTER_SUSPECT && m->link != NULL)
		swim_gossip_now(c, m, m->link); /* so that it can refute */
	if (st == CLUSTER_SUSPECT && (old != st || inc != old_inc))
		swim_suspect_start(c, m, now);
	if (old == st)
		return;
	if (st != CLUSTER_SUSPECT && m->dead_ev != NULL)
		event_del(m->dead_ev);
	if (st >= CLUSTER_DEAD) {
		/* its persistent sessions' routes stay: what matches them
		 * waits in the outbox until it is back */
		cluster_log(
		        c, CLUSTER_LOG_INFO,
		        "cluster routes dropped node=%s routes=%zu "
		        "kept_durable=%zu",
		        m->name,
		        rtab_node_routes(&c->routes, m->slot) +
		                rtab_node_routes(&c->shared, m->slot),
		        rtab_node_routes(&c->durable, m->slot) +
		                rtab_node_routes(&c->shared_durable, m->slot));
		rtab_drop_node(&c->routes, m->slot);
		rtab_drop_node(&c->shared, m->slot);
		m->routes_synced = false;
		m->snap_open = false;
		if (c->probe.target == m)
			c->probe.target = NULL;
		if (m->link != NULL)
			link_close(m->link, CLUSTER_LOG_INFO,
			           st == CLUSTER_DEAD ? "member dead"
			                              : "member left");
	} else if (old >= CLUSTER_DEAD) {
		m->heard_ms = now;
		if (m->link == NULL && m->dialing == NULL)
			link_dial_member_later(m, 0);
	}
	swim_changed(c, m, old);
}

static void
swim_set_addr(struct member *m, const char *addr)
{
	char *p;

	if (addr[0] == '\0' || strcmp(addr, m->addr) == 0 ||
	    strlen(addr) > CLUSTER_ADDR_MAX)
		return;
	p = strdup(addr);
	if (p == NULL)
		return; /* keep the old one */
	free(m->addr);
	m->addr = p;
}

static struct member *
swim_member_new(struct cluster *c, const Mqd__Member *u, bool local)
{
	enum cluster_member_state st = (enum cluster_member_state)u->state;
	struct member *m;

	m = cluster_member_add(c, u->name, u->node_id, u->addr);
	if (m == NULL)
		return NULL;
	m->state = st;
	m->inc = u->incarnation;
	m->gossip_left = swim_retransmit(c);
	if (local)
		swim_gossip_now(c, m, NULL);
	if (st == CLUSTER_SUSPECT)
		swim_suspect_start(c, m, cluster_now_ms());
	/* when both learn of each other, the smaller name dials first */
	link_dial_member_later(
	        m, strcmp(c->name, m->name) < 0 ? 0 : CLUSTER_BACKOFF_MIN_MS);
	cluster_log(c, CLUSTER_LOG_INFO,
	            "cluster member node=%s state=%s inc=%" PRIu64
	            " addr=%s was=unknown",
	            m->name, member_state_name(st), m->inc, m->addr);
	if (c->hooks.member_changed != NULL)
		c->hooks.member_changed(c->hooks.arg, m->name, st);
	return m;
}

/* Gossip about this node: refute a suspicion or death (or a stale higher
 * incarnation) by announcing a higher incarnation. */
static void
swim_self_update(struct cluster *c, const Mqd__Member *u)
{
	struct member *s = c->self;
	enum cluster_member_state st = (enum cluster_member_state)u->state;
	uint64_t inc;

	if (u->node_id != c->node_id)
		return; /* another node with this name: refused at its link */
	inc = member_refute(s->inc, st, u->incarnation);
	if (inc == s->inc)
		return;
	cluster_log(c, CLUSTER_LOG_INFO,
	            "cluster refute node=%s heard=%s inc=%" PRIu64
	            " new_inc=%" PRIu64,
	            c->name, member_state_name(st), u->incarnation, inc);
	s->inc = inc;
	s->gossip_left = swim_retransmit(c);
	swim_gossip_now(c, s, NULL);
}

static void
swim_apply_one(struct cluster *c, const Mqd__Member *u)
{
	int raw = (int)u->state;
	enum cluster_member_state st;
	struct member *m;

	if (raw < (int)CLUSTER_ALIVE || raw > (int)CLUSTER_LEFT ||
	    !member_name_is_valid(u->name) ||
	    strlen(u->addr) > CLUSTER_ADDR_MAX)
		return;
	st = (enum cluster_member_state)raw;
	if (strcmp(u->name, c->name) == 0) {
		swim_self_update(c, u);
		return;
	}
	m = cluster_member_find(c, u->name);
	if (m == NULL) {
		if (st <= CLUSTER_SUSPECT)
			swim_member_new(c, u, false);
		return;
	}
	if (m->node_id != u->node_id) {
		/* a new node may take the name of a dead or departed one */
		if (m->state <= CLUSTER_SUSPECT || st > CLUSTER_SUSPECT)
			return;
		m->node_id = u->node_id;
	} else if (!member_update_wins(m->state, m->inc, st, u->incarnation)) {
		return;
	}
	swim_set_addr(m, u->addr);
	swim_set_state(c, m, st, u->incarnation, false);
}

void
swim_apply(struct cluster *c, struct Mqd__Member *const *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		swim_apply_one(c, v[i]);
}

struct member *
swim_hello(struct cluster *c, const Mqd__Hello *h, const char **why)
{
	struct member *m = cluster_member_find(c, h->name);
	Mqd__Member u = MQD__MEMBER__INIT;

	u.name = h->name;
	u.node_id = h->node_id;
	u.addr = h->addr;
	u.incarnation = h->incarnation;
	u.state = MQD__MEMBER_STATE__MEMBER_ALIVE;
	if (m == NULL) {
		m = swim_member_new(c, &u, true);
		if (m == NULL)
			*why = "member table full";
		return m;
	}
	if (m->node_id != h->node_id) {
		if (m->state <= CLUSTER_SUSPECT) {
			*why = "duplicate node name (a live node has it with "
			       "another node id)";
			return NULL;
		}
		m->node_id = h->node_id;
		swim_set_addr(m, h->addr);
		swim_set_state(c, m, CLUSTER_ALIVE, h->incarnation, true);
		return m;
	}
	swim_set_addr(m, h->addr);
	if (member_update_wins(m->state, m->inc, CLUSTER_ALIVE, h->incarnation))
		swim_set_state(c, m, CLUSTER_ALIVE, h->incarnation, true);
	return m;
}

void
swim_link_lost(struct cluster *c, struct member *m)
{
	(void)c;
	if (m->state > CLUSTER_SUSPECT)
		return;
	m->probe_soon = true;
	link_dial_member_failed(m);
}

static bool
swim_probeable(const struct member *m)
{
	return !m->self && m->state <= CLUSTER_SUSPECT;
}

/* The next member to probe: one whose link just dropped, else the next in
 * round-robin order. */
static struct member *
swim_next_target(struct cluster *c)
{
	struct member *m;
	size_t i, k;

	for (i = 0; i < c->n_members; i++) {
		m = c->members[i];
		if (!m->probe_soon)
			continue;
		m->probe_soon = false;
		if (swim_probeable(m))
			return m;
	}
	for (k = 0; k < c->n_members; k++) {
		i = (c->probe_next + k) % c->n_members;
		if (swim_probeable(c->members[i])) {
			c->probe_next = i + 1;
			return c->members[i];
		}
	}
	return NULL;
}

/* No Ack yet: ask up to two other ALIVE linked members to probe. */
static void
swim_probe_indirect(struct cluster *c)
{
	struct probe *p = &c->probe;
	size_t i, k, n = c->n_members, sent = 0;
	struct member *m;

	if (p->target == NULL || p->acked)
		return;
	for (k = 0; k < n && sent < 2; k++) {
		i = (size_t)((p->seq + k) % n);
		m = c->members[i];
		if (m == p->target || m->self || m->state != CLUSTER_ALIVE ||
		    m->link == NULL)
			continue;
		swim_send_ping_req(c, m->link, p->seq, p->target->name);
		sent++;
	}
}

static void
swim_probe_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	swim_probe_indirect(arg);
}

/* Relays past their time, and suspects whose timer could not be set. */
static void
swim_expire(struct cluster *c, uint64_t now)
{
	struct member *m;
	size_t i;

	for (i = 0; i < c->n_relays;) {
		if (c->relays[i].expires_ms <= now)
			c->relays[i] = c->relays[--c->n_relays];
		else
			i++;
	}
	for (i = 0; i < c->n_members; i++) {
		m = c->members[i];
		if (m->state == CLUSTER_SUSPECT && m->dead_at_ms <= now)
			swim_set_state(c, m, CLUSTER_DEAD, m->inc, true);
	}
}

static void
swim_tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct cluster *c = arg;
	struct probe *p = &c->probe;
	struct member *t = p->target;

	(void)fd;
	(void)what;
	p->target = NULL;
	if (t != NULL && !p->acked && t->state == CLUSTER_ALIVE)
		swim_set_state(c, t, CLUSTER_SUSPECT, t->inc, true);
	swim_expire(c, cluster_now_ms());
	t = swim_next_target(c);
	if (t == NULL)
		return;
	p->target = t;
	p->seq = ++c->seq;
	p->acked = false;
	if (t->link == NULL) {
		swim_probe_indirect(c);
		return;
	}
	swim_send_ping(c, t->link, p->seq);
	cluster_timer_add(c->probe_ev, c->ping_ms / 2);
}

int
swim_start(struct cluster *c)
{
	c->tick_ev = event_new(c->base, -1, EV_PERSIST, swim_tick_cb, c);
	c->probe_ev = evtimer_new(c->base, swim_probe_cb, c);
	if (c->tick_ev == NULL || c->probe_ev == NULL)
		return ERR_NOMEM;
	cluster_timer_add(c->tick_ev, c->ping_ms);
	return 0;
}

void
swim_on_ping(struct link *l, uint64_t seq)
{
	swim_send_ack(l->c, l, seq, "");
}

void
swim_on_ack(struct link *l, uint64_t seq, const char *target)
{
	struct cluster *c = l->c;
	struct probe *p = &c->probe;
	struct relay *r;
	size_t i;

	if (p->target != NULL && seq == p->seq &&
	    (target[0] == '\0' ? l->m == p->target
	                       : strcmp(target, p->target->name) == 0)) {
		p->acked = true;
		p->target->heard_ms = cluster_now_ms();
		return;
	}
	for (i = 0; i < c->n_relays; i++) {
		r = &c->relays[i];
		if (r->seq_out != seq || r->target != l->m)
			continue;
		if (r->from->link != NULL)
			swim_send_ack(c, r->from->link, r->seq_in,
			              r->target->name);
		c->relays[i] = c->relays[--c->n_relays];
		return;
	}
}

void
swim_on_ping_req(struct link *l, uint64_t seq, const char *target)
{
	struct cluster *c = l->c;
	struct member *t = cluster_member_find(c, target);
	struct relay *r;
	size_t i, oldest = 0;

	if (t == NULL || t->self || t == l->m || t->link == NULL ||
	    t->state > CLUSTER_SUSPECT)
		return;
	if (c->n_relays == CLUSTER_RELAYS_MAX) {
		for (i = 1; i < c->n_relays; i++) {
			if (c->relays[i].expires_ms <
			    c->relays[oldest].expires_ms)
				oldest = i;
		}
		r = &c->relays[oldest];
	} else {
		r = &c->relays[c->n_relays++];
	}
	r->seq_out = ++c->seq;
	r->seq_in = seq;
	r->from = l->m;
	r->target = t;
	r->expires_ms = cluster_now_ms() + c->ping_ms;
	swim_send_ping(c, t->link, r->seq_out);
}

void
swim_on_leave(struct link *l, uint64_t inc)
{
	struct member *m = l->m;

	if (m->state == CLUSTER_LEFT)
		return;
	swim_set_state(l->c, m, CLUSTER_LEFT, inc > m->inc ? inc : m->inc,
	               true);
}
