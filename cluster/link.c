/*
 * Cluster links: the listener, outbound dials (the name looked up again at
 * every dial, asynchronously, so that a peer that comes back at a new
 * address is found and a slow resolver never stalls the loop; redials with
 * backoff), one bufferevent per TCP connection, frame input and
 * output, the Hello / Auth handshake, the one-link-per-pair rule and the
 * deferred close (links are freed from the reap event, never inside their
 * own callbacks).
 */
#include "cluster/cluster.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "cluster/cluster.pb-c.h"
#include "cluster/cluster_int.h"

#define LINK_DRAIN_MAX 64 /* recv calls when draining a closing socket */

static void link_read_cb(struct bufferevent *bev, void *arg);
static void link_write_cb(struct bufferevent *bev, void *arg);
static void link_event_cb(struct bufferevent *bev, short what, void *arg);

static void
link_nodelay(evutil_socket_t fd)
{
	int one = 1;

	/* frames are small and latency matters; failure is harmless */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static void
link_set_timeouts(struct link *l, uint32_t ms)
{
	struct timeval tv = { (time_t)(ms / 1000),
		              (suseconds_t)(ms % 1000) * 1000 };

	bufferevent_set_timeouts(l->bev, ms ? &tv : NULL, ms ? &tv : NULL);
}

/* A link on fd (-1: to be connected). Takes ownership of fd, even on
 * failure. */
static struct link *
link_new(struct cluster *c, evutil_socket_t fd, bool outbound)
{
	struct link *l = calloc(1, sizeof(*l));

	if (l == NULL)
		goto out_close;
	l->bev = bufferevent_socket_new(c->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (l->bev == NULL)
		goto out_free;
	if (RAND_bytes(l->nonce, sizeof(l->nonce)) != 1) {
		bufferevent_free(l->bev); /* closes fd */
		free(l);
		return NULL;
	}
	l->c = c;
	l->outbound = outbound;
	l->st = outbound ? LINK_CONNECTING : LINK_HELLO;
	bufferevent_setcb(l->bev, link_read_cb, link_write_cb, link_event_cb,
	                  l);
	bufferevent_setwatermark(l->bev, EV_READ, 0,
	                         4 + (size_t)CLUSTER_FRAME_MAX);
	/* the write callback runs once the output drains below one part */
	bufferevent_setwatermark(l->bev, EV_WRITE, CLUSTER_RSNAP_PART, 0);
	link_set_timeouts(l, c->dead_ms); /* connect and handshake */
	bufferevent_enable(l->bev, EV_READ | EV_WRITE);
	l->next = c->links;
	if (c->links != NULL)
		c->links->prev = l;
	c->links = l;
	return l;
out_free:
	free(l);
out_close:
	if (fd >= 0)
		evutil_closesocket(fd);
	return NULL;
}

static void
link_free(struct link *l)
{
	bufferevent_free(l->bev);
	frame_free(l->hello);
	retained_snapshot_free(l);
	free(l);
}

/* Frees a closed link after one non-blocking attempt to write what it had
 * queued (the Auth that proves this side's secret, say, so that the peer
 * can tell why the link failed). */
static void
link_reap(struct link *l)
{
	evutil_socket_t fd = bufferevent_getfd(l->bev);
	struct evbuffer *out = bufferevent_get_output(l->bev);

	if (fd >= 0 && evbuffer_get_length(out) > 0) {
		evbuffer_unfreeze(out, 1); /* bufferevent_socket froze it */
		(void)evbuffer_write(out, fd);
	}
	link_free(l);
}

static void
link_reap_cb(evutil_socket_t fd, short what, void *arg)
{
	struct cluster *c = arg;
	struct link *l;

	(void)fd;
	(void)what;
	while ((l = c->reap) != NULL) {
		c->reap = l->next;
		link_reap(l);
	}
}

/* Leaves l's name lookup, if any, to finish without it. */
static void
link_resolve_detach(struct link *l)
{
	struct link_resolve *r = l->resolve;

	if (r == NULL)
		return;
	l->resolve = NULL;
	r->l = NULL;
	if (r->req != NULL)
		evdns_getaddrinfo_cancel(r->req); /* the callback frees r */
}

void
link_free_all(struct cluster *c)
{
	struct link *l;

	while ((l = c->links) != NULL) {
		c->links = l->next;
		link_resolve_detach(l);
		link_free(l);
	}
	while ((l = c->reap) != NULL) {
		c->reap = l->next;
		link_free(l);
	}
	if (c->lis != NULL)
		evconnlistener_free(c->lis);
	c->lis = NULL;
	if (c->reap_ev != NULL)
		event_free(c->reap_ev);
	c->reap_ev = NULL;
	if (c->dns != NULL)
		evdns_base_free(c->dns, 0); /* no loop runs after this */
	c->dns = NULL;
}

/* The node name a log line can give for l, or NULL. */
static const char *
link_node(const struct link *l)
{
	if (l->m != NULL)
		return l->m->name;
	if (l->hello != NULL)
		return l->hello->hello->name;
	if (l->target != NULL)
		return l->target->name;
	return NULL;
}

void
link_close(struct link *l, int level, const char *reason)
{
	struct cluster *c = l->c;
	const char *node = link_node(l);

	if (l->closing)
		return;
	l->closing = true;
	if (reason != NULL && level >= CLUSTER_LOG_WARN)
		cluster_log_limited(c, level,
		                    "cluster link dropped peer=%s%s%s "
		                    "reason=\"%s\"",
		                    l->peer, node ? " node=" : "",
		                    node ? node : "", reason);
	else if (reason != NULL)
		cluster_log(c, level,
		            "cluster link dropped peer=%s%s%s reason=\"%s\"",
		            l->peer, node ? " node=" : "", node ? node : "",
		            reason);
	link_resolve_detach(l);
	bufferevent_disable(l->bev, EV_READ | EV_WRITE);
	bufferevent_setcb(l->bev, NULL, NULL, NULL, NULL);
	if (l->pending) {
		l->pending = false;
		c->n_pending--;
	}
	if (l->prev != NULL)
		l->prev->next = l->next;
	else
		c->links = l->next;
	if (l->next != NULL)
		l->next->prev = l->prev;
	l->prev = NULL;
	l->next = c->reap;
	c->reap = l;
	event_active(c->reap_ev, EV_TIMEOUT, 0);
	if (l->m != NULL && l->m->link == l) {
		l->m->link = NULL;
		swim_link_lost(c, l->m);
		takeover_link_lost(c, l->m);
	}
	if (l->target != NULL && l->target->dialing == l) {
		l->target->dialing = NULL;
		link_dial_member_failed(l->target);
	}
	if (l->seed != NULL && l->seed->dialing == l) {
		struct seed *s = l->seed;
		uint32_t delay = s->backoff_ms;

		s->dialing = NULL;
		s->backoff_ms = delay * 2 < CLUSTER_BACKOFF_MAX_MS
		                        ? delay * 2
		                        : CLUSTER_BACKOFF_MAX_MS;
		link_dial_seed_later(s, delay);
	}
}

size_t
link_queued(struct link *l)
{
	return evbuffer_get_length(bufferevent_get_output(l->bev));
}

int
link_send_raw(struct link *l, const uint8_t *p, size_t n)
{
	struct evbuffer *out;

	if (l->closing)
		return ERR_WRONG_STATE;
	out = bufferevent_get_output(l->bev);
	if (evbuffer_get_length(out) + n > CLUSTER_OUT_MAX) {
		link_close(l, CLUSTER_LOG_WARN,
		           "peer is not reading (output backlog)");
		return ERR_LIMIT;
	}
	if (bufferevent_write(l->bev, p, n) != 0) {
		link_close(l, CLUSTER_LOG_ERROR, "out of memory");
		return ERR_NOMEM;
	}
	return 0;
}

int
link_send(struct link *l, struct Mqd__Envelope *env)
{
	struct cluster *c = l->c;
	int rc;

	if (l->closing)
		return ERR_WRONG_STATE;
	buf_reset(&c->out);
	rc = frame_encode(&c->out, env);
	if (rc) {
		link_close(l, CLUSTER_LOG_ERROR,
		           rc == ERR_TOO_LARGE ? "frame too large to send"
		                               : "out of memory");
		return rc;
	}
	return link_send_raw(l, c->out.data, c->out.len);
}

static int
link_send_hello(struct link *l)
{
	struct cluster *c = l->c;
	Mqd__Envelope env = MQD__ENVELOPE__INIT;
	Mqd__Hello h = MQD__HELLO__INIT;
	size_t i, n = c->n_members;
	Mqd__Member **pv;
	Mqd__Member *mv;
	int rc = ERR_NOMEM;

	mv = calloc(n, sizeof(*mv));
	pv = calloc(n, sizeof(*pv));
	if (mv == NULL || pv == NULL)
		goto out_free;
	for (i = 0; i < n; i++) {
		swim_member_pb(c->members[i], &mv[i]);
		pv[i] = &mv[i];
	}
	h.version = CLUSTER_PROTO_VERSION;
	h.name = c->name;
	h.node_id = c->node_id;
	h.addr = c->self->addr;
	h.nonce.data = l->nonce;
	h.nonce.len = sizeof(l->nonce);
	h.incarnation = c->self->inc;
	h.auth = c->secret != NULL;
	h.boot = c->boot;
	h.admin_addr = c->admin_addr != NULL ? c->admin_addr : "";
	h.n_members = n;
	h.members = pv;
	env.body_case = MQD__ENVELOPE__BODY_HELLO;
	env.hello = &h;
	rc = link_send(l, &env);
out_free:
	free(pv);
	free(mv);
	return rc;
}

static void
link_send_auth(struct link *l)
{
	struct cluster *c = l->c;
	Mqd__Envelope env = MQD__ENVELOPE__INIT;
	Mqd__Auth a = MQD__AUTH__INIT;
	uint8_t mac[CLUSTER_MAC_LEN];

	if (member_auth_mac(c->secret, c->secret_len, l->peer_nonce, c->name,
	                    mac)) {
		link_close(l, CLUSTER_LOG_ERROR, "hmac failed");
		return;
	}
	a.mac.data = mac;
	a.mac.len = sizeof(mac);
	env.body_case = MQD__ENVELOPE__BODY_AUTH;
	env.auth = &a;
	link_send(l, &env);
}

/* True when link a, rather than b, is the one to keep between this node
 * and m: the one to m's newer process (the other is a leftover of a node
 * that restarted, which only this end still holds); else the one dialed by
 * the node with the smaller name (the smaller dialer nonce if one node
 * dialed both), which both ends decide alike. */
static bool
link_beats(const struct link *a, const struct link *b, const struct member *m)
{
	const char *an = a->outbound ? a->c->name : m->name;
	const char *bn = b->outbound ? b->c->name : m->name;
	const uint8_t *ak = a->outbound ? a->nonce : a->peer_nonce;
	const uint8_t *bk = b->outbound ? b->nonce : b->peer_nonce;
	int d = strcmp(an, bn);

	if (a->peer_boot != b->peer_boot)
		return a->peer_boot > b->peer_boot;
	if (d != 0)
		return d < 0;
	return memcmp(ak, bk, CLUSTER_NONCE_LEN) < 0;
}

/* What a dial or a seed learns when its link turns out to be m's. */
static void
link_settle_dials(struct link *l, struct member *m)
{
	struct member *t = l->target;
	struct seed *s = l->seed;

	if (t != NULL && t->dialing == l) {
		t->dialing = NULL;
		if (t != m) /* its address now leads to another node */
			link_dial_member_failed(t);
	}
	l->target = NULL;
	if (s != NULL) {
		s->m = m;
		if (s->dialing == l)
			s->dialing = NULL;
		s->backoff_ms = CLUSTER_BACKOFF_MIN_MS;
		link_dial_seed_later(s, CLUSTER_BACKOFF_MAX_MS);
	}
	l->seed = NULL;
}

/* The handshake is over: attach l to its member, keep one link per pair,
 * apply the Hello's gossip and send the route snapshot. */
static void
link_up(struct link *l)
{
	struct cluster *c = l->c;
	struct Mqd__Envelope *env = l->hello;
	const Mqd__Hello *h = env->hello;
	const char *why = NULL;
	struct member *m;
	struct link *old;

	m = swim_hello(c, h, &why);
	if (m == NULL) {
		link_close(l, CLUSTER_LOG_WARN, why);
		return;
	}
	cluster_member_set_admin(m, h->admin_addr);
	l->st = LINK_UP;
	link_set_timeouts(l, 0);
	if (l->pending) {
		l->pending = false;
		c->n_pending--;
	}
	link_settle_dials(l, m);
	old = m->link;
	if (old != NULL && link_beats(old, l, m)) {
		link_close(l, CLUSTER_LOG_DEBUG, "duplicate link");
		return;
	}
	m->link = l;
	l->m = m;
	if (old != NULL)
		link_close(old, CLUSTER_LOG_DEBUG, "duplicate link");
	if (m->dial_ev != NULL)
		event_del(m->dial_ev);
	m->backoff_ms = CLUSTER_BACKOFF_MIN_MS;
	m->heard_ms = cluster_now_ms();
	m->routes_synced = false;
	m->snap_open = false;
	m->retained_snap = 0;
	cluster_log(c, CLUSTER_LOG_INFO,
	            "cluster link up peer=%s node=%s dir=%s", l->peer, m->name,
	            l->outbound ? "out" : "in");
	l->hello = NULL;
	swim_apply(c, h->members, h->n_members);
	frame_free(env);
	if (!l->closing)
		cluster_send_routes(c, l);
	if (!l->closing)
		retained_send_snapshot(c, l);
	if (!l->closing)
		fwd_link_up(c, m);
}

/* Checks the peer's Hello. @return false when it kept env */
static bool
link_on_hello(struct link *l, struct Mqd__Envelope *env)
{
	struct cluster *c = l->c;
	const Mqd__Hello *h = env->hello;
	char why[96];

	if (h->version != CLUSTER_PROTO_VERSION) {
		snprintf(why, sizeof(why),
		         "incompatible version %u (this node "
		         "speaks %u)",
		         (unsigned)h->version, (unsigned)CLUSTER_PROTO_VERSION);
		link_close(l, CLUSTER_LOG_WARN, why);
		return true;
	}
	if (!member_name_is_valid(h->name) ||
	    strlen(h->addr) > CLUSTER_ADDR_MAX ||
	    h->nonce.len != CLUSTER_NONCE_LEN) {
		link_close(l, CLUSTER_LOG_WARN, "bad hello");
		return true;
	}
	if (strcmp(h->name, c->name) == 0) {
		if (h->node_id != c->node_id) {
			link_close(l, CLUSTER_LOG_WARN,
			           "duplicate node name (the peer has this "
			           "node's name)");
			return true;
		}
		if (l->seed != NULL)
			l->seed->self = true;
		link_close(l, CLUSTER_LOG_DEBUG, "connected to itself");
		return true;
	}
	if (c->secret != NULL && !h->auth) {
		link_close(l, CLUSTER_LOG_WARN,
		           "missing secret proof (the peer has no secret)");
		return true;
	}
	if (c->secret == NULL && h->auth) {
		link_close(l, CLUSTER_LOG_WARN,
		           "the peer requires a secret, this node has none");
		return true;
	}
	memcpy(l->peer_nonce, h->nonce.data, CLUSTER_NONCE_LEN);
	l->peer_boot = h->boot;
	l->hello = env;
	if (c->secret == NULL) {
		link_up(l);
		return false;
	}
	l->st = LINK_AUTH;
	link_send_auth(l);
	return false;
}

static void
link_on_auth(struct link *l, const Mqd__Auth *a)
{
	struct cluster *c = l->c;
	uint8_t mac[CLUSTER_MAC_LEN];

	if (a->mac.len != CLUSTER_MAC_LEN ||
	    member_auth_mac(c->secret, c->secret_len, l->nonce,
	                    l->hello->hello->name, mac) != 0 ||
	    CRYPTO_memcmp(mac, a->mac.data, CLUSTER_MAC_LEN) != 0) {
		link_close(l, CLUSTER_LOG_WARN, "bad secret");
		return;
	}
	link_up(l);
}

/* Dispatches one frame by link state. @return false when it kept env */
static bool
link_on_frame(struct link *l, struct Mqd__Envelope *env)
{
	Mqd__Envelope__BodyCase want = l->st == LINK_HELLO
	                                       ? MQD__ENVELOPE__BODY_HELLO
	                                       : MQD__ENVELOPE__BODY_AUTH;
	char why[80];

	if (l->st == LINK_UP) {
		l->m->heard_ms = cluster_now_ms();
		cluster_on_frame(l, env);
		return true;
	}
	if (l->st == LINK_CONNECTING || env->body_case != want) {
		snprintf(why, sizeof(why),
		         "%s frame before the handshake ended",
		         frame_body_name(env));
		link_close(l, CLUSTER_LOG_WARN, why);
		return true;
	}
	if (l->st == LINK_HELLO)
		return link_on_hello(l, env);
	link_on_auth(l, env->auth);
	return true;
}

static void
link_read_cb(struct bufferevent *bev, void *arg)
{
	struct evbuffer *in = bufferevent_get_input(bev);
	struct link *l = arg;
	struct Mqd__Envelope *env;
	const char *why = "";
	uint8_t hdr[4];
	size_t used, n;
	uint32_t len;
	uint8_t *p;

	while (!l->closing && evbuffer_copyout(in, hdr, sizeof(hdr)) == 4) {
		if (frame_peek(hdr, sizeof(hdr), &len) != 0 ||
		    (l->st != LINK_UP && len > CLUSTER_HELLO_MAX)) {
			link_close(l, CLUSTER_LOG_WARN, "oversize frame");
			return;
		}
		n = 4 + (size_t)len;
		if (evbuffer_get_length(in) < n)
			return;
		p = evbuffer_pullup(in, (ev_ssize_t)n);
		if (p == NULL) {
			link_close(l, CLUSTER_LOG_ERROR, "out of memory");
			return;
		}
		if (frame_decode(p, n, &used, &env, &why) != 0) {
			link_close(l, CLUSTER_LOG_WARN, why);
			return;
		}
		evbuffer_drain(in, used);
		if (link_on_frame(l, env))
			frame_free(env);
	}
}

/* The output drained: more of the retained snapshot and the outbox. */
static void
link_write_cb(struct bufferevent *bev, void *arg)
{
	struct link *l = arg;

	(void)bev;
	if (l->st != LINK_UP)
		return;
	if (l->rsnap != NULL)
		retained_snapshot_pump(l);
	if (!l->closing && l->m->fwd != NULL && l->m->fwd->unsent != NULL)
		fwd_pump(l->c, l->m->fwd);
}

static void
link_connected(struct link *l)
{
	l->st = LINK_HELLO;
	link_nodelay(bufferevent_getfd(l->bev));
	if (link_send_hello(l) != 0)
		link_close(l, CLUSTER_LOG_ERROR, "out of memory");
}

static void
link_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct link *l = arg;
	int level = CLUSTER_LOG_INFO;
	char why[128];

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		link_connected(l);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT)
		snprintf(why, sizeof(why), "%s timeout",
		         l->resolve != NULL         ? "name lookup"
		         : l->st == LINK_CONNECTING ? "connect"
		                                    : "handshake");
	else if (what & BEV_EVENT_EOF)
		snprintf(why, sizeof(why), "closed by the peer");
	else
		snprintf(why, sizeof(why), "%s",
		         evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	if (l->st == LINK_CONNECTING)
		level = CLUSTER_LOG_DEBUG; /* redials of a down node */
	else if (l->st != LINK_UP && (what & BEV_EVENT_TIMEOUT))
		level = CLUSTER_LOG_WARN;
	link_close(l, level, why);
}

static void
link_accept_cb(struct evconnlistener *lis, evutil_socket_t fd,
               struct sockaddr *sa, int salen, void *arg)
{
	struct cluster *c = arg;
	char host[64], serv[8];
	struct link *l;

	(void)lis;
	if (c->n_pending >= CLUSTER_PENDING_MAX) {
		evutil_closesocket(fd);
		cluster_log_limited(c, CLUSTER_LOG_WARN,
		                    "cluster link refused reason=\"too many "
		                    "links in handshake\"");
		return;
	}
	l = link_new(c, fd, false);
	if (l == NULL) {
		cluster_log_limited(c, CLUSTER_LOG_ERROR,
		                    "cluster link refused reason=\"out of "
		                    "memory\"");
		return;
	}
	if (getnameinfo(sa, (socklen_t)salen, host, sizeof(host), serv,
	                sizeof(serv), NI_NUMERICHOST | NI_NUMERICSERV) == 0)
		snprintf(l->peer, sizeof(l->peer),
		         strchr(host, ':') ? "[%s]:%s" : "%s:%s", host, serv);
	else
		snprintf(l->peer, sizeof(l->peer), "?");
	l->pending = true;
	c->n_pending++;
	link_nodelay(fd);
	if (link_send_hello(l) != 0)
		link_close(l, CLUSTER_LOG_ERROR, "out of memory");
}

static void
link_accept_error_cb(struct evconnlistener *lis, void *arg)
{
	struct cluster *c = arg;

	(void)lis;
	cluster_log_limited(
	        c, CLUSTER_LOG_ERROR, "cluster accept failed reason=\"%s\"",
	        evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
}

/* The resolver of the dials: the system's name servers and /etc/hosts,
 * read once at start. Without the 0x20 case trick, which some resolvers
 * (container engines' among them) answer badly. */
static int
link_dns_start(struct cluster *c)
{
	c->dns = evdns_base_new(c->base,
	                        EVDNS_BASE_INITIALIZE_NAMESERVERS |
	                                EVDNS_BASE_DISABLE_WHEN_INACTIVE);
	if (c->dns == NULL) {
		/* no usable resolv.conf: names resolve through /etc/hosts */
		c->dns = evdns_base_new(c->base,
		                        EVDNS_BASE_DISABLE_WHEN_INACTIVE);
		if (c->dns == NULL)
			return ERR_NOMEM;
		(void)evdns_base_load_hosts(c->dns, NULL);
	}
	(void)evdns_base_set_option(c->dns, "randomize-case:", "0");
	return 0;
}

int
link_start(struct cluster *c, const char *bind, uint16_t port)
{
	struct addrinfo hints, *res = NULL;
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);
	char ps[8];
	int rc;

	c->reap_ev = event_new(c->base, -1, 0, link_reap_cb, c);
	if (c->reap_ev == NULL)
		return ERR_NOMEM;
	rc = link_dns_start(c);
	if (rc != 0)
		return rc;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(ps, sizeof(ps), "%u", (unsigned)port);
	rc = getaddrinfo(bind && bind[0] ? bind : NULL, ps, &hints, &res);
	if (rc != 0) {
		cluster_log(
		        c, CLUSTER_LOG_ERROR,
		        "cluster cannot listen bind=%s port=%u reason=\"%s\"",
		        bind ? bind : "", (unsigned)port, gai_strerror(rc));
		return ERR_IO;
	}
	c->lis = evconnlistener_new_bind(
	        c->base, link_accept_cb, c,
	        LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
	                LEV_OPT_CLOSE_ON_EXEC,
	        -1, res->ai_addr, (int)res->ai_addrlen);
	freeaddrinfo(res);
	if (c->lis == NULL) {
		cluster_log(
		        c, CLUSTER_LOG_ERROR,
		        "cluster cannot listen bind=%s port=%u reason=\"%s\"",
		        bind ? bind : "", (unsigned)port, strerror(errno));
		return ERR_IO;
	}
	evconnlistener_set_error_cb(c->lis, link_accept_error_cb);
	if (getsockname(evconnlistener_get_fd(c->lis), (struct sockaddr *)&ss,
	                &sslen) != 0)
		return ERR_IO;
	c->port = ntohs(ss.ss_family == AF_INET6
	                        ? ((struct sockaddr_in6 *)&ss)->sin6_port
	                        : ((struct sockaddr_in *)&ss)->sin_port);
	return 0;
}

/* The answer to a dial's lookup: connects to one of the addresses, the
 * next one at each dial of the same member or seed. */
static void
link_resolved_cb(int result, struct evutil_addrinfo *res, void *arg)
{
	struct link_resolve *r = arg;
	struct link *l = r->l;
	struct evutil_addrinfo *ai;
	uint32_t n = 0, pick;
	char why[128];

	r->req = NULL;
	if (l == NULL) /* the link closed first: cancelled */
		goto out;
	l->resolve = NULL;
	if (result != 0) {
		snprintf(why, sizeof(why), "name lookup: %s",
		         evutil_gai_strerror(result));
		link_close(l, CLUSTER_LOG_DEBUG, why);
		goto out;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next)
		n++;
	for (ai = res, pick = r->pick % n; pick > 0; pick--)
		ai = ai->ai_next;
	if (bufferevent_socket_connect(l->bev, ai->ai_addr,
	                               (int)ai->ai_addrlen) != 0)
		link_close(l, CLUSTER_LOG_DEBUG, "connect failed");
out:
	if (res != NULL)
		evutil_freeaddrinfo(res);
	free(r);
}

int
link_dial(struct cluster *c, const char *addr, struct member *m, struct seed *s)
{
	char host[CLUSTER_ADDR_MAX + 1], port[8];
	struct evutil_addrinfo hints;
	struct evdns_getaddrinfo_request *req;
	struct link_resolve *r;
	struct link *l;

	if (member_addr_split(addr, CLUSTER_PORT_DEFAULT, host, sizeof(host),
	                      port, sizeof(port)) != 0)
		return ERR_MALFORMED;
	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return ERR_NOMEM;
	l = link_new(c, -1, true);
	if (l == NULL) {
		free(r);
		return ERR_NOMEM;
	}
	snprintf(l->peer, sizeof(l->peer), "%s", addr);
	l->target = m;
	l->seed = s;
	if (m != NULL)
		m->dialing = l;
	if (s != NULL)
		s->dialing = l;
	r->l = l;
	r->pick = m ? m->dials++ : s->dials++;
	l->resolve = r;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	hints.ai_flags = EVUTIL_AI_NUMERICSERV;
	/* a numeric address or an /etc/hosts name is answered at once, from
	 * inside this call; the link may be closed by then (not freed) */
	req = evdns_getaddrinfo(c->dns, host, port, &hints, link_resolved_cb,
	                        r);
	if (l->resolve == r)
		r->req = req;
	return 0;
}

static void
link_dial_member_cb(evutil_socket_t fd, short what, void *arg)
{
	struct member *m = arg;

	(void)fd;
	(void)what;
	if (m->self || m->link != NULL || m->dialing != NULL ||
	    m->state > CLUSTER_SUSPECT || m->addr[0] == '\0')
		return;
	if (link_dial(m->c, m->addr, m, NULL) != 0)
		link_dial_member_failed(m);
}

void
link_dial_member_later(struct member *m, uint32_t ms)
{
	if (m->dial_ev == NULL)
		m->dial_ev = evtimer_new(m->c->base, link_dial_member_cb, m);
	if (m->dial_ev == NULL) {
		cluster_log(m->c, CLUSTER_LOG_ERROR,
		            "cluster dial not scheduled node=%s reason=\"out "
		            "of memory\"",
		            m->name);
		return;
	}
	cluster_timer_add(m->dial_ev, ms);
}

void
link_dial_member_failed(struct member *m)
{
	uint32_t delay = m->backoff_ms;

	m->backoff_ms = delay * 2 < CLUSTER_BACKOFF_MAX_MS
	                        ? delay * 2
	                        : CLUSTER_BACKOFF_MAX_MS;
	link_dial_member_later(m, delay);
}

/* A seed is dialed until it turns out to be this node. While the member
 * it turned out to be is ALIVE or SUSPECT the member's own redials cover
 * it; once that member is DEAD or LEFT the seed is dialed again every
 * CLUSTER_BACKOFF_MAX_MS, so a restarted seed that knows no one is found. */
static void
link_dial_seed_cb(evutil_socket_t fd, short what, void *arg)
{
	struct seed *s = arg;
	struct member *m = s->m;
	uint32_t delay;

	(void)fd;
	(void)what;
	if (s->self || s->dialing != NULL)
		return;
	if (m != NULL && (m->link != NULL || m->state <= CLUSTER_SUSPECT)) {
		link_dial_seed_later(s, CLUSTER_BACKOFF_MAX_MS);
		return;
	}
	if (link_dial(s->c, s->addr, NULL, s) == 0)
		return;
	delay = s->backoff_ms;
	s->backoff_ms = delay * 2 < CLUSTER_BACKOFF_MAX_MS
	                        ? delay * 2
	                        : CLUSTER_BACKOFF_MAX_MS;
	link_dial_seed_later(s, delay);
}

void
link_dial_seed_later(struct seed *s, uint32_t ms)
{
	if (s->ev == NULL)
		s->ev = evtimer_new(s->c->base, link_dial_seed_cb, s);
	if (s->ev == NULL) {
		cluster_log(s->c, CLUSTER_LOG_ERROR,
		            "cluster dial not scheduled addr=%s reason=\"out "
		            "of memory\"",
		            s->addr);
		return;
	}
	cluster_timer_add(s->ev, ms);
}

void
link_flush_and_shutdown(struct link *l)
{
	evutil_socket_t fd = bufferevent_getfd(l->bev);
	struct evbuffer *out = bufferevent_get_output(l->bev);
	char sink[4096];
	int i;

	if (fd < 0)
		return;
	evbuffer_unfreeze(out, 1); /* bufferevent_socket froze it */
	while (evbuffer_get_length(out) > 0 && evbuffer_write(out, fd) > 0)
		;
	shutdown(fd, SHUT_WR);
	/* unread input would make close() send a reset, which can destroy
	 * the Leave before the peer reads it */
	for (i = 0; i < LINK_DRAIN_MAX; i++) {
		if (recv(fd, sink, sizeof(sink), 0) <= 0)
			break;
	}
}
