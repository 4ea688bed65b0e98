/*
 * Client connections: the socket event, reading and framing packets, the
 * MQTT 3.1/3.1.1 protocol state machine, and the output queue. An idle
 * connection holds no buffers: a read buffer exists only while a partial
 * packet is pending, the output queue only while output is pending, and
 * message payloads are written by reference with writev.
 */
#include "broker/auth.h"
#include "broker/metrics.h"
#include "broker/node.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

/* Output queued beyond this makes a connection "not reading": QoS 0
 * messages to it are dropped (QoS 1/2 are bounded by the window). */
#define CONN_OUT_LIMIT (4u * 1024 * 1024)
#define CONN_IOV_MAX   64
#define CONN_ADDR_LEN  56 /* "[" IPv6 "]:" port, NUL */

/* One encoded packet waiting to be written: header bytes, then the
 * payload of a msg by reference. */
struct out_item {
	struct out_item *next;
	struct msg *m; /* payload source or NULL; reference held */
	size_t off;    /* bytes of this item already written */
	size_t hdr_len;
	bool held;   /* waits for a commit: nothing after it is written */
	bool pooled; /* from node->out_items (room for CONN_ITEM_SMALL) */
	uint8_t hdr[];
};

enum conn_state {
	CONN_NEW,     /* waiting for CONNECT */
	CONN_AUTH,    /* MQTT 5 enhanced authentication under way */
	CONN_PARKED,  /* CONNECT accepted, waiting for the cluster to hand
	               * over its client id (reading paused) */
	CONN_ACTIVE,  /* CONNACK sent */
	CONN_CLOSING, /* I/O stopped, waiting for the reaper */
};

/* A topic alias a client set (MQTT 5). */
struct conn_alias {
	uint8_t *topic; /* NULL while unset */
	uint16_t len;
};

/* A topic alias we set towards the client (MQTT 5). */
struct conn_out_alias {
	uint8_t *topic; /* NULL: free slot */
	uint16_t len;
	uint16_t id;
};

/* At most this many aliases are set towards one client, whatever larger
 * maximum it allows: the table stays small. */
#define CONN_OUT_ALIAS_MAX 256

/* What an MQTT 5 client told us in CONNECT; absent on 3.1/3.1.1 ones. */
struct conn_v5 {
	uint32_t max_packet;        /* client's Maximum Packet Size, 0 = none */
	uint32_t will_delay;        /* seconds */
	uint32_t will_expiry;       /* will Message Expiry Interval, seconds */
	uint16_t recv_max;          /* client's Receive Maximum */
	bool no_problem_info;       /* Request Problem Information = 0 */
	uint16_t n_alias;           /* slots in alias (topic_alias_maximum) */
	struct conn_alias *alias;   /* allocated on first use */
	uint16_t out_max;           /* aliases we may set (client's maximum) */
	uint16_t out_used;          /* aliases we have set: ids 1..out_used */
	uint32_t out_cap;           /* slots in out (power of two) */
	struct conn_out_alias *out; /* topic -> alias, open addressing */
	struct auth_scram *scram;   /* SCRAM exchange under way */
	uint8_t *connect_raw;       /* its CONNECT, decoded again at the end */
	size_t connect_len;
};

struct conn {
	struct event ev; /* the socket: read, and write when blocked */
	struct node *node;
	struct conn *next; /* node->conns */
	struct conn *prev;
	struct conn *dirty_next; /* node->dirty */
	struct conn *reap_next;  /* node->reap */
	struct sess *sess;       /* attached session, or NULL */
	struct msg *will;        /* will message (qos, retain inside) */
	struct conn_v5 *v5;      /* MQTT 5 state, NULL on 3.1/3.1.1 */
	struct conn_ack *acks;   /* acks waiting for commits, in order */
	struct conn_ack **acks_tail;
	uint8_t *rbuf; /* partial packet, or NULL */
	size_t rlen;
	struct out_item *out; /* output queue */
	struct out_item **out_tail;
	size_t out_bytes;
	uint64_t deadline; /* ms: CONNECT timeout or keepalive */
	const char *close_why;
	int fd;
	uint16_t keepalive;
	uint8_t version;
	uint8_t state;
	bool dirty;
	bool want_write;
	bool read_on;               /* EV_READ is in the interest set */
	struct conn_parked *parked; /* CONN_PARKED: the CONNECT, else NULL */
	bool will_on_close;
	uint8_t peer_ip[16]; /* peer address (4 bytes used for IPv4) */
	uint16_t peer_port;
	uint8_t peer_family;   /* AF_INET, AF_INET6, or 0 when unknown */
	char *username;        /* CONNECT's user name (admin API), or NULL */
	uint64_t connected_ms; /* node_now_ms() when CONNACK went out */
};

/* What a parked CONNECT needs to go on (conn_park). */
struct conn_parked {
	uint64_t req; /* the cluster's takeover request */
	uint32_t expiry;
	uint16_t keepalive;
	uint16_t server_keepalive;
	bool clean;
	bool assigned;   /* the client id was assigned by the server */
	char *auth_data; /* SCRAM server-final, or NULL */
	size_t id_len;
	char id[];
};

/* An ack queued behind a commit (see conn_ack_defer). */
struct conn_ack {
	struct conn_ack *next;
	struct conn *c;                 /* NULL once the connection is gone */
	struct out_item *held;          /* a held SUBACK/UNSUBACK, or NULL */
	void (*fn)(void *arg, int err); /* conn_ack_call: its callback */
	void *arg;
	uint16_t pid;
	uint8_t type;
	uint8_t rc;
	uint8_t waits; /* conn_ack_ready calls still to come */
	bool ready;
	bool failed; /* its commit failed */
};

static void conn_on_event(evutil_socket_t fd, short what, void *arg);
static void conn_set_reason(struct conn *c, struct mqtt_packet *p,
                            const char *why);
static void conn_send_held(struct conn *c, const struct mqtt_packet *pkt);
static void conn_write(struct conn *c);
static void conn_connect_finish(struct conn *c, const char *id, size_t id_len,
                                bool clean, uint32_t expiry, uint16_t keepalive,
                                uint16_t server_keepalive, bool assigned,
                                const char *auth_data);
static bool conn_park(struct conn *c, const char *id, size_t id_len, bool clean,
                      uint32_t expiry, uint16_t keepalive,
                      uint16_t server_keepalive, bool assigned,
                      const char *auth_data);
static size_t conn_parse(struct conn *c, const uint8_t *p, size_t len);

uint32_t
conn_window(const struct conn *c)
{
	uint32_t w = c->node->cfg->max_inflight;

	/* [MQTT-3.3.4-9] v5: never more unacknowledged than the client's
	 * Receive Maximum */
	if (c->v5 && c->v5->recv_max < w)
		w = c->v5->recv_max;
	return w;
}

static uint32_t
conn_topic_hash(struct mqtt_bytes t)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	size_t i;

	for (i = 0; i < t.len; i++)
		h = (h ^ t.p[i]) * 16777619u;
	return h;
}

uint16_t
conn_alias_out(struct conn *c, struct mqtt_bytes topic, bool *known)
{
	struct conn_v5 *v = c->v5;
	struct conn_out_alias *a;
	uint32_t i;

	*known = false;
	if (!v || !v->out_max)
		return 0;
	if (!v->out) {
		v->out_cap = 2u * v->out_max; /* load at most one half */
		v->out_cap = v->out_cap < 8 ? 8 : v->out_cap;
		while (v->out_cap & (v->out_cap - 1))
			v->out_cap++;
		v->out = calloc(v->out_cap, sizeof(*v->out));
		if (!v->out) {
			v->out_max = 0; /* no memory: send topics in full */
			return 0;
		}
	}
	for (i = conn_topic_hash(topic) & (v->out_cap - 1);;
	     i = (i + 1) & (v->out_cap - 1)) {
		a = &v->out[i];
		if (!a->topic)
			break;
		if (a->len == topic.len &&
		    memcmp(a->topic, topic.p, topic.len) == 0) {
			*known = true;
			return a->id;
		}
	}
	if (v->out_used == v->out_max)
		return 0; /* all set: this topic goes in full */
	a->topic = malloc(topic.len ? topic.len : 1);
	if (!a->topic)
		return 0;
	memcpy(a->topic, topic.p, topic.len);
	a->len = (uint16_t)topic.len;
	a->id = ++v->out_used;
	return a->id;
}

void
conn_alias_out_undo(struct conn *c, uint16_t id)
{
	struct conn_v5 *v = c->v5;
	uint32_t i;

	/* The newest entry ends its probe chain: removing it breaks none. */
	if (!v || !v->out || id != v->out_used)
		return;
	for (i = 0; i < v->out_cap; i++) {
		if (v->out[i].topic && v->out[i].id == id) {
			free(v->out[i].topic);
			v->out[i].topic = NULL;
			v->out_used--;
			return;
		}
	}
}

uint32_t
conn_max_packet(const struct conn *c)
{
	return c->v5 ? c->v5->max_packet : 0;
}

static void
conn_v5_free(struct conn_v5 *v)
{
	uint16_t i;

	if (!v)
		return;
	for (i = 0; v->alias && i < v->n_alias; i++)
		free(v->alias[i].topic);
	free(v->alias);
	for (i = 0; v->out && i < v->out_cap; i++)
		free(v->out[i].topic);
	free(v->out);
	auth_scram_free(v->scram);
	free(v->connect_raw);
	free(v);
}

uint8_t
conn_version(const struct conn *c)
{
	return c->version;
}

size_t
conn_pending(const struct conn *c)
{
	return c->out_bytes;
}

bool
conn_congested(const struct conn *c)
{
	return c->out_bytes > CONN_OUT_LIMIT;
}

static const char *
conn_client_id(const struct conn *c)
{
	return c->sess ? c->sess->client_id : "-";
}

/* Keeps the peer address in binary (19 bytes, not a 48-byte string):
 * every connection holds it, and it is only formatted for log lines. */
static void
conn_set_peer(struct conn *c, const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;
		memcpy(c->peer_ip, &in->sin_addr, 4);
		c->peer_port = ntohs(in->sin_port);
		c->peer_family = AF_INET;
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;
		memcpy(c->peer_ip, &in6->sin6_addr, 16);
		c->peer_port = ntohs(in6->sin6_port);
		c->peer_family = AF_INET6;
	}
}

/* The level of a client's connected / disconnected lines: info, but debug
 * for the container's health probe (mqd --health connects from loopback
 * as "mqd-health-<pid>" every few seconds: detail, not news). */
static int
conn_log_level(const struct conn *c, const char *client_id)
{
	static const char pre[] = "mqd-health-";
	static const uint8_t lo6[16] = { [15] = 1 };
	bool loop = (c->peer_family == AF_INET && c->peer_ip[0] == 127) ||
	            (c->peer_family == AF_INET6 &&
	             memcmp(c->peer_ip, lo6, sizeof(lo6)) == 0);

	return loop && strncmp(client_id, pre, sizeof(pre) - 1) == 0 ? LOG_DEBUG
	                                                             : LOG_INFO;
}

/* The peer address as "ip:port" / "[ip]:port" in @p buf, for logs. */
static const char *
conn_addr(const struct conn *c, char buf[CONN_ADDR_LEN])
{
	char ip[INET6_ADDRSTRLEN] = "?";

	if (!c->peer_family)
		return "?";
	inet_ntop(c->peer_family, c->peer_ip, ip, sizeof(ip));
	snprintf(buf, CONN_ADDR_LEN,
	         c->peer_family == AF_INET6 ? "[%s]:%u" : "%s:%u", ip,
	         c->peer_port);
	return buf;
}

void
conn_accept(struct node *n, int fd, const struct sockaddr *sa, socklen_t salen)
{
	char ab[CONN_ADDR_LEN];
	struct conn *c;
	int one = 1;

	(void)salen;
	if (n->stopping || n->n_conns >= n->cfg->max_connections) {
		n->stats.conn_refused++;
		if (log_limit_ok(&n->log_lim, 10))
			log_warn("connection refused reason=max_connections "
			         "limit=%u",
			         n->cfg->max_connections);
		close(fd);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return;
	}
	c->node = n;
	c->fd = fd;
	c->out_tail = &c->out;
	c->acks_tail = &c->acks;
	c->state = CONN_NEW;
	c->read_on = true;
	c->deadline = node_now_ms() + n->cfg->connect_timeout_ms;
	conn_set_peer(c, sa);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	event_assign(&c->ev, n->base, fd, EV_READ | EV_PERSIST, conn_on_event,
	             c);
	if (event_add(&c->ev, NULL) < 0) {
		close(fd);
		free(c);
		return;
	}
	c->next = n->conns;
	if (n->conns)
		n->conns->prev = c;
	n->conns = c;
	n->n_conns++;
	n->stats.conn_accepted++;
	log_debug("connection accepted addr=%s", conn_addr(c, ab));
}

void
conn_close(struct conn *c, const char *why, bool send_will)
{
	struct node *n = c->node;

	if (c->state == CONN_CLOSING)
		return;
	c->state = CONN_CLOSING;
	c->close_why = why;
	c->will_on_close = send_will;
	event_del(&c->ev);
	if (c->prev)
		c->prev->next = c->next;
	else
		n->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->reap_next = n->reap;
	n->reap = c;
	event_active(&n->reap_ev, 0, 0);
}

void
conn_abort(struct conn *c, uint8_t rc, const char *why)
{
	struct mqtt_packet pkt;

	if (c->state == CONN_ACTIVE && c->version == MQTT_V5) {
		/* [MQTT-4.13.1-1] v5: DISCONNECT with the reason first */
		memset(&pkt, 0, sizeof(pkt));
		pkt.type = MQTT_DISCONNECT;
		pkt.u.disconnect.rc = rc;
		conn_set_reason(c, &pkt, why);
		conn_send_packet(c, &pkt);
	}
	conn_close(c, why, true);
}

size_t
conn_item_size(size_t hdr_len)
{
	return sizeof(struct out_item) + hdr_len;
}

/* Frees one output item (its message reference too). */
static void
conn_item_free(struct node *n, struct out_item *it)
{
	msg_unref(it->m);
	if (it->pooled)
		node_pool_put(&n->out_items, it);
	else
		free(it);
}

static void
conn_free_output(struct conn *c)
{
	struct out_item *it, *next;
	struct conn_ack *a;

	for (a = c->acks; a; a = a->next)
		a->held = NULL; /* its item goes now */
	for (it = c->out; it; it = next) {
		next = it->next;
		conn_item_free(c->node, it);
	}
	c->out = NULL;
	c->out_tail = &c->out;
	c->out_bytes = 0;
}

/* Frees one closed connection: last output, socket, will, session. */
static void
conn_destroy(struct conn *c)
{
	char ab[CONN_ADDR_LEN];
	struct node *n = c->node;
	struct sess *s = c->sess;

	if (c->dirty) {
		struct conn **pp = &n->dirty;
		while (*pp != c)
			pp = &(*pp)->dirty_next;
		*pp = c->dirty_next;
		c->dirty = false;
	}
	if (c->out)
		conn_write(c); /* best effort: e.g. a CONNACK with an error */
	close(c->fd);
	if (s && s->conn == c) {
		log_msg(conn_log_level(c, s->client_id),
		        "client disconnected client=%s addr=%s reason=\"%s\"",
		        s->client_id, conn_addr(c, ab),
		        c->close_why ? c->close_why : "");
	} else {
		log_debug("connection closed addr=%s reason=\"%s\"",
		          conn_addr(c, ab), c->close_why ? c->close_why : "");
	}
	if (s && s->conn == c) {
		sess_detach(s, c->will_on_close ? c->will : NULL,
		            c->v5 ? c->v5->will_delay : 0,
		            c->v5 ? c->v5->will_expiry : 0);
	} else if (c->will && c->will_on_close) {
		/* taken over: the old connection's will goes at once */
		router_publish_will(n, c->will, c->v5 ? c->v5->will_expiry : 0);
	}
	if (c->parked) {
		mesh_takeover_cancel(n, c, c->parked->req);
		free(c->parked->auth_data);
		free(c->parked);
		c->parked = NULL;
	}
	msg_unref(c->will);
	conn_v5_free(c->v5);
	while (c->acks) {
		struct conn_ack *a = c->acks;
		c->acks = a->next;
		a->c = NULL; /* its commit completion frees it */
		if (a->ready)
			free(a);
	}
	conn_free_output(c);
	free(c->rbuf);
	free(c->username);
	n->n_conns--;
	n->stats.conn_closed++;
	free(c);
}

void
conn_reap(struct node *n)
{
	struct conn *c;

	while ((c = n->reap)) {
		n->reap = c->reap_next;
		conn_destroy(c);
	}
}

void
conn_close_all(struct node *n, const char *why)
{
	struct mqtt_packet pkt;
	struct conn *c;

	memset(&pkt, 0, sizeof(pkt));
	pkt.type = MQTT_DISCONNECT;
	pkt.u.disconnect.rc = MQTT_RC_SERVER_SHUTTING_DOWN;
	while ((c = n->conns)) {
		if (c->state == CONN_ACTIVE && c->version == MQTT_V5)
			conn_send_packet(c, &pkt);
		conn_close(c, why, false);
	}
}

/* Sets the socket event's interest: write while output is blocked, read
 * unless so much output is pending that the client is not reading (then
 * its own packets wait in the kernel: backpressure, bounded memory). */
static void
conn_set_write(struct conn *c, bool on)
{
	bool read_on =
	        c->out_bytes <= CONN_OUT_LIMIT && c->state != CONN_PARKED;
	short what = EV_PERSIST | (on ? EV_WRITE : 0) | (read_on ? EV_READ : 0);

	if ((c->want_write == on && c->read_on == read_on) ||
	    c->state == CONN_CLOSING)
		return;
	c->want_write = on;
	c->read_on = read_on;
	event_del(&c->ev);
	event_assign(&c->ev, c->node->base, c->fd, what, conn_on_event, c);
	event_add(&c->ev, NULL);
}

/* Writes as much queued output as the socket takes. */
static void
conn_write(struct conn *c)
{
	struct iovec iov[CONN_IOV_MAX];
	struct out_item *it;
	ssize_t w;
	size_t k, left;
	int niov;

	while (c->out && !c->out->held) {
		niov = 0;
		for (it = c->out; it && !it->held && niov < CONN_IOV_MAX - 1;
		     it = it->next) {
			struct mqtt_bytes pl = it->m ? msg_payload(it->m)
			                             : (struct mqtt_bytes){ 0 };
			if (it->off < it->hdr_len) {
				iov[niov].iov_base = it->hdr + it->off;
				iov[niov++].iov_len = it->hdr_len - it->off;
				if (pl.len) {
					iov[niov].iov_base = (void *)pl.p;
					iov[niov++].iov_len = pl.len;
				}
			} else {
				k = it->off - it->hdr_len;
				iov[niov].iov_base = (void *)(pl.p + k);
				iov[niov++].iov_len = pl.len - k;
			}
		}
		w = writev(c->fd, iov, niov);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				conn_set_write(c, true);
				return;
			}
			conn_free_output(c);
			conn_close(c, "write error", true);
			return;
		}
		c->node->stats.bytes_out += (uint64_t)w;
		c->out_bytes -= (size_t)w;
		while ((it = c->out) && w > 0) {
			size_t total =
			        it->hdr_len + (it->m ? it->m->payload_len : 0);
			left = total - it->off;
			if ((size_t)w < left) {
				it->off += (size_t)w;
				w = 0;
				break;
			}
			w -= (ssize_t)left;
			c->out = it->next;
			conn_item_free(c->node, it);
		}
		if (!c->out)
			c->out_tail = &c->out;
	}
	conn_set_write(c, false);
}

/* Schedules a write of @p c's output from the flush event. */
static void
conn_mark_dirty(struct conn *c)
{
	struct node *n = c->node;

	if (!c->dirty && !c->want_write && c->state != CONN_CLOSING) {
		c->dirty = true;
		c->dirty_next = n->dirty;
		n->dirty = c;
		event_active(&n->flush_ev, 0, 0);
	}
}

/* Appends one item to the output queue. @return it, or NULL (closed) */
static struct out_item *
conn_queue(struct conn *c, const uint8_t *hdr, size_t hdr_len, struct msg *m)
{
	struct out_item *it;

	if (hdr_len <= CONN_ITEM_SMALL) {
		it = node_pool_get(&c->node->out_items);
		if (it)
			it->pooled = true;
	} else {
		it = malloc(conn_item_size(hdr_len));
		if (it)
			it->pooled = false;
	}
	if (!it) {
		conn_close(c, "out of memory", true);
		return NULL;
	}
	it->next = NULL;
	it->m = m ? msg_ref(m) : NULL;
	it->off = 0;
	it->hdr_len = hdr_len;
	it->held = false;
	memcpy(it->hdr, hdr, hdr_len);
	*c->out_tail = it;
	c->out_tail = &it->next;
	c->out_bytes += hdr_len + (m ? m->payload_len : 0);
	return it;
}

int
conn_send(struct conn *c, const uint8_t *hdr, size_t hdr_len, struct msg *m)
{
	if (c->state == CONN_CLOSING)
		return 0;
	if (!conn_queue(c, hdr, hdr_len, m))
		return ERR_NOMEM;
	conn_mark_dirty(c);
	return 0;
}

int
conn_send_durable(struct conn *c, const uint8_t *hdr, size_t hdr_len,
                  struct msg *m)
{
	struct conn_ack *a;
	struct out_item *it;

	if (c->state == CONN_CLOSING)
		return 0;
	a = conn_ack_defer(c, MQTT_PUBLISH, 0, 0);
	if (!a)
		return ERR_NOMEM;
	it = conn_queue(c, hdr, hdr_len, m);
	if (it) {
		it->held = true;
		a->held = it;
	}
	persist_barrier(c->node, a); /* its completion frees a */
	return it ? 0 : ERR_NOMEM;
}

void
conn_flush_dirty(struct node *n)
{
	struct conn *c;

	while ((c = n->dirty)) {
		n->dirty = c->dirty_next;
		c->dirty = false;
		if (c->state != CONN_CLOSING)
			conn_write(c);
	}
}

/* The properties of a packet the server sends, or NULL. */
static struct mqtt_props *
conn_pkt_props(struct mqtt_packet *p)
{
	switch (p->type) {
	case MQTT_CONNACK:
		return &p->u.connack.props;
	case MQTT_PUBACK:
	case MQTT_PUBREC:
	case MQTT_PUBREL:
	case MQTT_PUBCOMP:
		return &p->u.ack.props;
	case MQTT_SUBACK:
	case MQTT_UNSUBACK:
		return &p->u.suback.props;
	case MQTT_DISCONNECT:
		return &p->u.disconnect.props;
	default:
		return NULL;
	}
}

/* Adds a Reason String to an MQTT 5 packet: always allowed on CONNACK and
 * DISCONNECT, on the others only while the client has not set Request
 * Problem Information to 0 [MQTT-3.1.2-29] v5. @p why must outlive the
 * send (a static string). */
static void
conn_set_reason(struct conn *c, struct mqtt_packet *p, const char *why)
{
	struct mqtt_props *pr = conn_pkt_props(p);

	if (c->version != MQTT_V5 || !why || !pr)
		return;
	if (p->type != MQTT_CONNACK && p->type != MQTT_DISCONNECT && c->v5 &&
	    c->v5->no_problem_info)
		return;
	pr->reason_string =
	        (struct mqtt_bytes){ (const uint8_t *)why, strlen(why) };
	pr->present |= 1ull << MQTT_PROP_REASON_STRING;
}

/* Encodes @p pkt; when it would exceed the client's Maximum Packet Size
 * only because of its Reason String, that is left out [MQTT-3.1.2-25]. */
static int
conn_encode(struct conn *c, struct buf *b, const struct mqtt_packet *pkt)
{
	struct mqtt_packet bare;
	struct mqtt_props *pr;
	size_t start = b->len;
	int rc;

	rc = mqtt_encode(b, c->version, pkt);
	if (rc || !c->v5 || !c->v5->max_packet ||
	    b->len - start <= c->v5->max_packet)
		return rc;
	bare = *pkt;
	pr = conn_pkt_props(&bare);
	if (!pr || !mqtt_props_has(pr, MQTT_PROP_REASON_STRING))
		return 0;
	pr->present &= ~(1ull << MQTT_PROP_REASON_STRING);
	b->len = start;
	return mqtt_encode(b, c->version, &bare);
}

int
conn_send_packet(struct conn *c, const struct mqtt_packet *pkt)
{
	uint8_t storage[256];
	struct buf b;
	int rc;

	buf_init_fixed(&b, storage, sizeof(storage));
	rc = conn_encode(c, &b, pkt);
	if (rc == 0)
		return conn_send(c, b.data, b.len, NULL);
	/* Too large for the stack buffer (a long SUBACK): use the heap. */
	buf_init(&b);
	rc = conn_encode(c, &b, pkt);
	if (rc == 0)
		rc = conn_send(c, b.data, b.len, NULL);
	else
		conn_close(c, "encode failed", true);
	buf_fini(&b);
	return rc;
}

/* Queues @p pkt on hold until the commits submitted so far are done
 * (persist_barrier), so that a SUBACK means the subscription is on disk.
 * Output queued after it waits too, which keeps retained messages behind
 * their SUBACK. */
static void
conn_send_held(struct conn *c, const struct mqtt_packet *pkt)
{
	struct conn_ack *a;
	struct out_item *it;
	struct buf b;

	buf_init(&b);
	if (conn_encode(c, &b, pkt)) {
		buf_fini(&b);
		conn_abort(c, MQTT_RC_UNSPECIFIED, "out of memory");
		return;
	}
	a = conn_ack_defer(c, pkt->type, 0, 0);
	it = a ? conn_queue(c, b.data, b.len, NULL) : NULL;
	buf_fini(&b);
	if (!it) {
		/* closed (no memory): the barrier's completion frees a */
		if (a)
			persist_barrier(c->node, a);
		return;
	}
	it->held = true;
	a->held = it;
	persist_barrier(c->node, a);
}

/* A CONNACK that refuses the connection, then close. */
static void
conn_refuse(struct conn *c, uint8_t rc, const char *why)
{
	char ab[CONN_ADDR_LEN];
	struct mqtt_packet pkt;

	memset(&pkt, 0, sizeof(pkt));
	pkt.type = MQTT_CONNACK;
	pkt.u.connack.rc = rc;
	conn_set_reason(c, &pkt, why);
	conn_send_packet(c, &pkt);
	c->node->stats.conn_refused_by[metrics_refuse_reason(rc)]++;
	if (log_limit_ok(&c->node->log_lim, 20))
		log_info("connection refused addr=%s rc=%u reason=\"%s\"",
		         conn_addr(c, ab), rc, why);
	conn_close(c, why, false);
}

void
conn_take_over(struct conn *old, const char *why)
{
	struct sess *s = old->sess;

	old->sess = NULL;
	if (s)
		s->conn = NULL;
	/* [MQTT-3.1.4-3] The old connection ends without DISCONNECT from
	 * its client: its will goes; v5 tells it 0x8E. */
	conn_abort(old, MQTT_RC_SESSION_TAKEN_OVER, why);
}

/* Makes a client id for a client that sent an empty one. */
static int
conn_generate_id(struct node *n, char *out, size_t len)
{
	do {
		snprintf(out, len, "mqd-%s-%llx", n->cfg->node_name,
		         (unsigned long long)++n->next_client_seq);
	} while (sess_find(n, out, strlen(out)));
	return 0;
}

/* Attaches the connection to its session: takeover of an older
 * connection, clean start handling. @return session present flag or
 * a negative ERR_* */
static int
conn_attach_session(struct conn *c, const char *id, size_t len, bool clean,
                    uint32_t expiry)
{
	char ab[CONN_ADDR_LEN];
	char ab2[CONN_ADDR_LEN];
	struct node *n = c->node;
	struct sess *s = sess_find(n, id, len);
	bool present = false;

	if (s && s->conn) {
		struct conn *old = s->conn;
		log_info("session taken over client=%s old_addr=%s new_addr=%s",
		         s->client_id, conn_addr(old, ab2), conn_addr(c, ab));
		conn_take_over(old, "session taken over");
	}
	if (s && (clean || s->expiry == 0)) {
		sess_end(s);
		s = NULL;
	}
	if (s) {
		present = true;
		s->version = c->version;
		s->expire_at = 0;
		/* [MQTT-3.1.3-9] v5: resumed in time, the delayed will is
		 * not published */
		msg_unref(s->will);
		s->will = NULL;
	} else {
		s = sess_create(n, id, len, expiry, c->version);
		if (!s)
			return ERR_NOMEM;
	}
	s->expiry = expiry;
	mesh_sess_durable(s);
	s->conn = c;
	c->sess = s;
	persist_session(s);
	return present;
}

/* MQTT 5 CONNECT properties: what the client accepts from us. */
static int
conn_v5_setup(struct conn *c, const struct mqtt_connect *ck)
{
	const struct mqtt_props *pr = &ck->props;
	struct conn_v5 *v;

	v = calloc(1, sizeof(*v));
	if (!v)
		return ERR_NOMEM;
	v->recv_max = mqtt_props_has(pr, MQTT_PROP_RECEIVE_MAX)
	                      ? pr->receive_max
	                      : 65535;
	if (mqtt_props_has(pr, MQTT_PROP_MAX_PACKET_SIZE))
		v->max_packet = pr->max_packet_size;
	if (ck->will && mqtt_props_has(&ck->will_props, MQTT_PROP_WILL_DELAY))
		v->will_delay = ck->will_props.will_delay;
	v->n_alias = c->node->cfg->topic_alias_maximum;
	v->no_problem_info =
	        mqtt_props_has(pr, MQTT_PROP_REQUEST_PROBLEM_INFO) &&
	        pr->request_problem_info == 0;
	if (mqtt_props_has(pr, MQTT_PROP_TOPIC_ALIAS_MAX))
		v->out_max = pr->topic_alias_max < CONN_OUT_ALIAS_MAX
		                     ? pr->topic_alias_max
		                     : CONN_OUT_ALIAS_MAX;
	c->v5 = v;
	return 0;
}

/* The CONNACK of an accepted connection, with the MQTT 5 properties that
 * say what this server allows [MQTT-3.2.2-16..22] v5. */
static int
conn_send_connack(struct conn *c, bool present, bool assigned,
                  uint16_t server_keepalive, const char *auth_data, bool held)
{
	const struct config *cfg = c->node->cfg;
	struct mqtt_packet pkt;
	struct mqtt_props *pr = &pkt.u.connack.props;

	memset(&pkt, 0, sizeof(pkt));
	pkt.type = MQTT_CONNACK;
	pkt.u.connack.session_present = present;
	pkt.u.connack.rc = MQTT_RC_SUCCESS;
	if (c->version != MQTT_V5)
		goto out_send;
	pr->receive_max = cfg->receive_maximum;
	pr->max_packet_size = cfg->max_packet_size;
	pr->topic_alias_max = cfg->topic_alias_maximum;
	pr->present = (1ull << MQTT_PROP_RECEIVE_MAX) |
	              (1ull << MQTT_PROP_MAX_PACKET_SIZE);
	if (cfg->topic_alias_maximum)
		pr->present |= 1ull << MQTT_PROP_TOPIC_ALIAS_MAX;
	if (assigned) {
		/* [MQTT-3.2.2-16] v5 */
		pr->assigned_client_id = (struct mqtt_bytes){
			(const uint8_t *)c->sess->client_id, c->sess->id_len
		};
		pr->present |= 1ull << MQTT_PROP_ASSIGNED_CLIENT_ID;
	}
	if (auth_data) {
		/* the SCRAM server-final-message, with its method */
		pr->auth_method =
		        (struct mqtt_bytes){ (const uint8_t *)AUTH_SCRAM_METHOD,
			                     strlen(AUTH_SCRAM_METHOD) };
		pr->auth_data = (struct mqtt_bytes){ (const uint8_t *)auth_data,
			                             strlen(auth_data) };
		pr->present |= (1ull << MQTT_PROP_AUTH_METHOD) |
		               (1ull << MQTT_PROP_AUTH_DATA);
	}
	if (cfg->max_qos < 2) {
		/* [MQTT-3.2.2-9] v5 */
		pr->max_qos = (uint8_t)cfg->max_qos;
		pr->present |= 1ull << MQTT_PROP_MAX_QOS;
	}
	if (!cfg->retain_available) {
		pr->retain_available = 0;
		pr->present |= 1ull << MQTT_PROP_RETAIN_AVAILABLE;
	}
	if (server_keepalive) {
		/* [MQTT-3.2.2-21] v5 */
		pr->server_keepalive = server_keepalive;
		pr->present |= 1ull << MQTT_PROP_SERVER_KEEPALIVE;
	}
out_send:
	if (held) {
		conn_send_held(c, &pkt);
		return c->state == CONN_CLOSING ? ERR_NOMEM : 0;
	}
	return conn_send_packet(c, &pkt);
}

/* Accepts an authenticated CONNECT: session, will, CONNACK. */
static void
conn_accept_connect(struct conn *c, const struct mqtt_connect *ck,
                    const char *auth_data)
{
	struct node *n = c->node;
	bool v5 = ck->version == MQTT_V5;
	const char *id = (const char *)ck->client_id.p;
	size_t id_len = ck->client_id.len;
	uint16_t keepalive = ck->keepalive, server_keepalive = 0;
	uint32_t expiry;
	char gen[128];
	int rc;

	rc = mqtt_client_id_check(ck->version, ck->clean_start, ck->client_id);
	if (rc) {
		conn_refuse(c,
		            v5 ? MQTT_RC_CLIENT_ID_INVALID
		               : MQTT_CONNACK_V3_ID_REJECTED,
		            err_str(rc));
		return;
	}
	if (id_len == 0) {
		conn_generate_id(n, gen, sizeof(gen));
		id = gen;
		id_len = strlen(gen);
	}
	if (v5) {
		expiry = ck->props.session_expiry; /* absent: 0 */
		if (n->cfg->max_keepalive &&
		    (keepalive == 0 || keepalive > n->cfg->max_keepalive)) {
			keepalive = n->cfg->max_keepalive;
			server_keepalive = keepalive;
		}
	} else {
		expiry = ck->clean_start ? 0 : UINT32_MAX;
	}
	if (ck->will && ck->will_qos > n->cfg->max_qos) {
		/* [MQTT-3.2.2-12] v5 */
		conn_refuse(c,
		            v5 ? MQTT_RC_QOS_NOT_SUPPORTED
		               : MQTT_CONNACK_V3_UNAVAILABLE,
		            "will QoS not supported");
		return;
	}
	if (ck->will && ck->will_retain && !n->cfg->retain_available) {
		/* [MQTT-3.2.2-13] v5 */
		conn_refuse(c,
		            v5 ? MQTT_RC_RETAIN_NOT_SUPPORTED
		               : MQTT_CONNACK_V3_UNAVAILABLE,
		            "will retain not supported");
		return;
	}
	if (ck->has_username && !c->username) /* admin API, permissions */
		c->username =
		        strndup((const char *)ck->username.p, ck->username.len);
	if (ck->will &&
	    !acl_may_publish(&n->acl, c->username, ck->will_topic)) {
		/* [MQTT-3.3.5-2]'s will: a message this client may not
		 * publish is refused with the CONNECT */
		conn_refuse(c,
		            v5 ? MQTT_RC_NOT_AUTHORIZED
		               : MQTT_CONNACK_V3_NOT_AUTHORIZED,
		            "will topic not permitted");
		return;
	}
	if (ck->will) {
		c->will = router_msg_new(n, ck->will_topic, ck->will_payload,
		                         v5 ? &ck->will_props : NULL,
		                         ck->will_qos, ck->will_retain);
		if (!c->will)
			goto out_nomem;
		c->will->expiry_ms = 0; /* counted from its publication */
		if (v5 &&
		    mqtt_props_has(&ck->will_props, MQTT_PROP_MESSAGE_EXPIRY))
			c->v5->will_expiry = ck->will_props.message_expiry;
	}
	if (conn_park(c, id, id_len, ck->clean_start, expiry, keepalive,
	              server_keepalive, ck->client_id.len == 0, auth_data))
		return; /* goes on in conn_takeover_done */
	if (c->state == CONN_CLOSING)
		return;
	conn_connect_finish(c, id, id_len, ck->clean_start, expiry, keepalive,
	                    server_keepalive, ck->client_id.len == 0,
	                    auth_data);
	return;
out_nomem:
	conn_refuse(c,
	            v5 ? MQTT_RC_SERVER_UNAVAILABLE
	               : MQTT_CONNACK_V3_UNAVAILABLE,
	            "out of memory");
}

/* The end of an accepted CONNECT: the session, the CONNACK. */
static void
conn_connect_finish(struct conn *c, const char *id, size_t id_len, bool clean,
                    uint32_t expiry, uint16_t keepalive,
                    uint16_t server_keepalive, bool assigned,
                    const char *auth_data)
{
	char ab[CONN_ADDR_LEN];
	struct node *n = c->node;
	uint64_t writes = n->persist_writes;
	int present;

	present = conn_attach_session(c, id, id_len, clean, expiry);
	if (present < 0) {
		conn_refuse(c,
		            c->v5 ? MQTT_RC_SERVER_UNAVAILABLE
		                  : MQTT_CONNACK_V3_UNAVAILABLE,
		            "out of memory");
		return;
	}
	c->keepalive = keepalive;
	c->deadline = keepalive ? node_now_ms() + keepalive * 1500ull : 0;
	c->state = CONN_ACTIVE;
	c->connected_ms = node_now_ms();
	/* a CONNACK that reports a session state just written (a stored
	 * session discarded or created, or one handed over by another node)
	 * waits until it is on disk */
	if (conn_send_connack(c, present, assigned, server_keepalive, auth_data,
	                      writes != n->persist_writes))
		return;
	log_msg(conn_log_level(c, c->sess->client_id),
	        "client connected client=%s addr=%s proto=%u clean=%d "
	        "keepalive=%u session_present=%d",
	        c->sess->client_id, conn_addr(c, ab), c->version, clean,
	        keepalive, present);
	if (present)
		sess_resume(c->sess);
}

/* Asks the cluster for the client id when other nodes are linked: the
 * CONNECT waits (reading paused) until they closed their connections for
 * it and handed its session over. @return true when parked (or closed on
 * no memory) */
static bool
conn_park(struct conn *c, const char *id, size_t id_len, bool clean,
          uint32_t expiry, uint16_t keepalive, uint16_t server_keepalive,
          bool assigned, const char *auth_data)
{
	struct conn_parked *pk;
	uint64_t req;

	if (assigned)
		return false; /* a fresh id of this node's: nobody has it */
	pk = calloc(1, sizeof(*pk) + id_len + 1);
	if (!pk || (auth_data && !(pk->auth_data = strdup(auth_data)))) {
		if (pk)
			free(pk);
		conn_refuse(c,
		            c->v5 ? MQTT_RC_SERVER_UNAVAILABLE
		                  : MQTT_CONNACK_V3_UNAVAILABLE,
		            "out of memory");
		return true;
	}
	req = mesh_takeover(c->node, c, id, id_len, clean);
	if (!req) {
		free(pk->auth_data);
		free(pk);
		return false;
	}
	pk->req = req;
	pk->expiry = expiry;
	pk->keepalive = keepalive;
	pk->server_keepalive = server_keepalive;
	pk->clean = clean;
	pk->assigned = assigned;
	pk->id_len = id_len;
	memcpy(pk->id, id, id_len);
	c->parked = pk;
	c->state = CONN_PARKED;
	conn_set_write(c, c->want_write); /* reading paused */
	return true;
}

void
conn_takeover_done(struct conn *c, bool refused, struct mqtt_bytes session)
{
	struct conn_parked *pk = c->parked;
	struct node *n = c->node;
	char ab[CONN_ADDR_LEN];
	struct sess *s;
	int err;

	c->parked = NULL;
	c->state = CONN_NEW;
	if (refused) {
		/* another node takes this id over, later: it wins */
		log_info("client refused client=%s addr=%s reason=\"its id "
		         "is taken over on another node\"",
		         pk->id, conn_addr(c, ab));
		conn_refuse(c,
		            c->v5 ? MQTT_RC_SERVER_BUSY
		                  : MQTT_CONNACK_V3_UNAVAILABLE,
		            "client id taken over on another node");
		goto out;
	}
	if (session.len && !pk->clean) {
		s = sess_find(n, pk->id, pk->id_len);
		if (s)
			log_warn("session handed over ignored client=%s "
			         "reason=\"a local one exists\"",
			         s->client_id);
		else if (!handoff_import(n, pk->id, pk->id_len, session, &err))
			log_error(
			        "session handed over lost client=%s err=\"%s\"",
			        pk->id, err_str(err));
		else
			log_info("session handed over client=%s", pk->id);
	}
	conn_connect_finish(c, pk->id, pk->id_len, pk->clean, pk->expiry,
	                    pk->keepalive, pk->server_keepalive, pk->assigned,
	                    pk->auth_data);
	if (c->state == CONN_CLOSING)
		goto out;
	conn_set_write(c, c->want_write); /* reading again */
	if (c->rlen) {
		/* what the client sent after CONNECT */
		uint8_t *p = c->rbuf;
		size_t len = c->rlen, done = conn_parse(c, p, len);
		if (c->state != CONN_CLOSING && c->rbuf == p) {
			memmove(p, p + done, len - done);
			c->rlen = len - done;
			if (!c->rlen) {
				free(c->rbuf);
				c->rbuf = NULL;
			}
		}
	}
out:
	free(pk->auth_data);
	free(pk);
}

void
conn_takeover_lost(struct conn *c)
{
	struct conn_parked *pk = c->parked;

	c->parked = NULL;
	c->state = CONN_NEW;
	conn_refuse(c,
	            c->v5 ? MQTT_RC_SERVER_BUSY : MQTT_CONNACK_V3_UNAVAILABLE,
	            "client id taken over on another node");
	free(pk->auth_data);
	free(pk);
}

const char *
conn_parked_id(const struct conn *c, size_t *len)
{
	if (!c->parked)
		return NULL;
	*len = c->parked->id_len;
	return c->parked->id;
}

/* User name / password of a CONNECT without enhanced authentication.
 * @return -1 when the client may go on, else the CONNACK code */
static int
conn_check_credentials(struct conn *c, const struct mqtt_connect *ck)
{
	const struct auth *a = &c->node->auth;
	bool v5 = ck->version == MQTT_V5;

	if (!a->enabled)
		return -1;
	if (!ck->has_username)
		return a->allow_anonymous ? -1
		       : v5               ? MQTT_RC_NOT_AUTHORIZED
		                          : MQTT_CONNACK_V3_NOT_AUTHORIZED;
	if (ck->has_password &&
	    auth_check_password(a, ck->username, ck->password) == 0)
		return -1;
	return v5 ? MQTT_RC_BAD_USER_OR_PASSWORD
	          : MQTT_CONNACK_V3_BAD_CREDENTIALS;
}

/* Starts SCRAM-SHA-256: AUTH 0x18 with the server-first-message. */
static void
conn_scram_start(struct conn *c, const struct mqtt_connect *ck,
                 const uint8_t *raw, size_t len)
{
	struct conn_v5 *v = c->v5;
	struct mqtt_packet pkt;
	char *server_first;
	int rc;

	rc = auth_scram_start(&c->node->auth, ck->props.auth_data, &v->scram,
	                      &server_first);
	if (rc == ERR_NOMEM) {
		conn_refuse(c, MQTT_RC_SERVER_UNAVAILABLE, "out of memory");
		return;
	}
	if (rc) {
		conn_refuse(c, MQTT_RC_BAD_USER_OR_PASSWORD,
		            "authentication failed");
		return;
	}
	v->connect_raw = malloc(len);
	if (!v->connect_raw) {
		conn_refuse(c, MQTT_RC_SERVER_UNAVAILABLE, "out of memory");
		return;
	}
	memcpy(v->connect_raw, raw, len);
	v->connect_len = len;
	c->state = CONN_AUTH;
	memset(&pkt, 0, sizeof(pkt));
	pkt.type = MQTT_AUTH;
	pkt.u.disconnect.rc = MQTT_RC_CONTINUE_AUTH;
	pkt.u.disconnect.props.auth_method = ck->props.auth_method;
	pkt.u.disconnect.props.auth_data =
	        (struct mqtt_bytes){ (const uint8_t *)server_first,
		                     strlen(server_first) };
	pkt.u.disconnect.props.present =
	        (1ull << MQTT_PROP_AUTH_METHOD) | (1ull << MQTT_PROP_AUTH_DATA);
	conn_send_packet(c, &pkt);
}

/* AUTH from the client during the SCRAM exchange. */
static void
conn_on_auth(struct conn *c, const struct mqtt_disconnect *au)
{
	char ab[CONN_ADDR_LEN];
	struct conn_v5 *v = c->v5;
	static const char method[] = AUTH_SCRAM_METHOD;
	struct mqtt_packet pkt;
	char *server_final = NULL;
	const char *user = NULL;
	size_t used;
	int rc;

	if (au->rc != MQTT_RC_CONTINUE_AUTH ||
	    au->props.auth_method.len != sizeof(method) - 1 ||
	    memcmp(au->props.auth_method.p, method, sizeof(method) - 1)) {
		/* [MQTT-4.12.0-4] v5: same method, continue; else error */
		conn_refuse(c, MQTT_RC_PROTOCOL_ERROR, "bad AUTH packet");
		return;
	}
	rc = auth_scram_finish(v->scram, au->props.auth_data, &server_final,
	                       &user);
	if (rc) {
		conn_refuse(c,
		            rc == ERR_NOMEM ? MQTT_RC_SERVER_UNAVAILABLE
		                            : MQTT_RC_BAD_USER_OR_PASSWORD,
		            "authentication failed");
		return;
	}
	memset(&pkt, 0, sizeof(pkt));
	rc = mqtt_decode(v->connect_raw, v->connect_len, MQTT_V5, &pkt, &used);
	if (rc == 0) {
		log_debug("authenticated method=%s user=%s addr=%s", method,
		          user, conn_addr(c, ab));
		c->state = CONN_NEW;
		conn_accept_connect(c, &pkt.u.connect, server_final);
	} else {
		/* cannot happen (it decoded before); never leave the client
		 * waiting for a CONNACK */
		conn_refuse(c, MQTT_RC_UNSPECIFIED, err_str(rc));
	}
	free(server_final);
	auth_scram_free(v->scram);
	v->scram = NULL;
	free(v->connect_raw);
	v->connect_raw = NULL;
}

static void
conn_on_connect(struct conn *c, const struct mqtt_connect *ck,
                const uint8_t *raw, size_t len)
{
	bool v5 = ck->version == MQTT_V5;
	int rc;

	c->version = ck->version;
	if (v5 && conn_v5_setup(c, ck)) {
		conn_refuse(c, MQTT_RC_SERVER_UNAVAILABLE, "out of memory");
		return;
	}
	if (v5 && mqtt_props_has(&ck->props, MQTT_PROP_AUTH_METHOD)) {
		static const char m[] = AUTH_SCRAM_METHOD;
		if (c->node->auth.enabled &&
		    ck->props.auth_method.len == sizeof(m) - 1 &&
		    memcmp(ck->props.auth_method.p, m, sizeof(m) - 1) == 0) {
			conn_scram_start(c, ck, raw, len);
			return;
		}
		/* [MQTT-4.12.0-1] v5 */
		conn_refuse(c, MQTT_RC_BAD_AUTH_METHOD,
		            "unsupported authentication method");
		return;
	}
	rc = conn_check_credentials(c, ck);
	if (rc >= 0) {
		conn_refuse(c, (uint8_t)rc, "not authorized");
		return;
	}
	conn_accept_connect(c, ck, NULL);
}

/* Text for the Reason String of an ack that is not a plain success. */
static const char *
conn_rc_text(uint8_t rc)
{
	switch (rc) {
	case MQTT_RC_NO_MATCHING_SUBSCRIBERS:
		return "no matching subscribers";
	case MQTT_RC_NO_SUBSCRIPTION_EXISTED:
		return "no subscription existed";
	case MQTT_RC_PACKET_ID_NOT_FOUND:
		return "packet identifier not found";
	default:
		return NULL;
	}
}

/* Sends an ack; MQTT 5 ones carry reason @p rc. */
static int
conn_send_ack_rc(struct conn *c, uint8_t type, uint16_t pid, uint8_t rc)
{
	struct mqtt_packet pkt;

	memset(&pkt, 0, sizeof(pkt));
	pkt.type = type;
	pkt.flags = type == MQTT_PUBREL ? 2 : 0;
	pkt.u.ack.packet_id = pid;
	pkt.u.ack.rc = rc;
	if (c->acks) {
		/* keep the order of acks behind one waiting for a commit */
		struct conn_ack *a = conn_ack_defer(c, type, pid, rc);
		if (a)
			a->ready = true;
		return a ? 0 : ERR_NOMEM;
	}
	conn_set_reason(c, &pkt, conn_rc_text(rc));
	return conn_send_packet(c, &pkt);
}

struct conn_ack *
conn_ack_defer(struct conn *c, uint8_t type, uint16_t pid, uint8_t rc)
{
	struct conn_ack *a = calloc(1, sizeof(*a));

	if (!a) {
		conn_abort(c, MQTT_RC_UNSPECIFIED, "out of memory");
		return NULL;
	}
	a->c = c;
	a->type = type;
	a->pid = pid;
	a->rc = rc;
	a->waits = 1;
	*c->acks_tail = a;
	c->acks_tail = &a->next;
	return a;
}

struct conn_ack *
conn_ack_call(void (*fn)(void *arg, int err), void *arg)
{
	struct conn_ack *a = calloc(1, sizeof(*a));

	if (!a)
		return NULL;
	a->fn = fn;
	a->arg = arg;
	a->waits = 1;
	return a;
}

void
conn_ack_hold(struct conn_ack *a)
{
	a->waits++;
}

void
conn_ack_ready(struct conn_ack *a, int err)
{
	struct conn *c = a->c;
	struct mqtt_packet pkt;

	a->failed |= err != 0;
	if (err && a->rc < 0x80)
		a->rc = err == ERR_LIMIT ? MQTT_RC_QUOTA_EXCEEDED
		                         : MQTT_RC_UNSPECIFIED;
	if (--a->waits)
		return; /* more to come */
	if (a->fn) {
		a->fn(a->arg, a->failed ? ERR_IO : 0);
		free(a);
		return;
	}
	if (!c) {
		free(a);
		return;
	}
	a->ready = true;
	/* not durable (a->failed): v5 says so by a->rc (0x97 when storage is
	 * full, else 0x80); a 3.1.1 client is closed below, so it will send
	 * the message again */
	while ((a = c->acks) && a->ready) {
		c->acks = a->next;
		if (!c->acks)
			c->acks_tail = &c->acks;
		if (c->state == CONN_CLOSING || a->type == MQTT_CONNACK ||
		    a->type == MQTT_SUBACK || a->type == MQTT_UNSUBACK ||
		    a->type == MQTT_PUBLISH) {
			/* a held packet: on disk now, so it and what was
			 * queued after it may go (its item is gone when the
			 * connection is closing) */
			if (a->held && c->state != CONN_CLOSING) {
				a->held->held = false;
				if (a->rc >= 0x80)
					conn_abort(c, MQTT_RC_UNSPECIFIED,
					           "storage failed");
				conn_mark_dirty(c);
			}
			free(a);
			continue;
		}
		if (a->failed && a->type == MQTT_PUBREC && c->sess)
			/* the message was not stored: the id is free again, a
			 * PUBLISH with it is a new message [MQTT-4.3.3-9] v5
			 * (3.1.1: the resend after the close is taken, not
			 * answered as a duplicate of what was lost) */
			sess_qos2_in_remove(c->sess, a->pid);
		if (a->failed &&
		    (c->version != MQTT_V5 || a->type == MQTT_PUBCOMP)) {
			/* 3.1.1 has no way to refuse; PUBCOMP no code for it */
			free(a);
			conn_close(c, "storage failed", true);
			continue;
		}
		memset(&pkt, 0, sizeof(pkt));
		pkt.type = a->type;
		pkt.u.ack.packet_id = a->pid;
		pkt.u.ack.rc = a->rc;
		conn_set_reason(c, &pkt, conn_rc_text(a->rc));
		conn_send_packet(c, &pkt);
		free(a);
	}
}

/* Resolves an MQTT 5 Topic Alias [MQTT-3.3.2-12] v5: a topic with an
 * alias sets it, an empty topic uses it. @return 0, or a reason code after
 * which the connection is aborted */
static uint8_t
conn_topic_alias(struct conn *c, struct mqtt_publish *p)
{
	struct conn_v5 *v = c->v5;
	struct conn_alias *a;
	uint16_t id = p->props.topic_alias;

	if (!mqtt_props_has(&p->props, MQTT_PROP_TOPIC_ALIAS))
		return 0;
	if (id == 0 || id > v->n_alias)
		return MQTT_RC_TOPIC_ALIAS_INVALID; /* [MQTT-3.3.2-9] v5 */
	if (!v->alias) {
		v->alias = calloc(v->n_alias, sizeof(*v->alias));
		if (!v->alias)
			return MQTT_RC_UNSPECIFIED;
	}
	a = &v->alias[id - 1];
	if (p->topic.len == 0) {
		if (!a->topic)
			return MQTT_RC_PROTOCOL_ERROR; /* unknown alias */
		p->topic = (struct mqtt_bytes){ a->topic, a->len };
		return 0;
	}
	free(a->topic);
	a->topic = malloc(p->topic.len);
	if (!a->topic)
		return MQTT_RC_UNSPECIFIED;
	memcpy(a->topic, p->topic.p, p->topic.len);
	a->len = (uint16_t)p->topic.len;
	return 0;
}

static void
conn_on_publish(struct conn *c, const struct mqtt_publish *in)
{
	struct node *n = c->node;
	struct mqtt_publish p = *in;
	uint64_t writes = n->persist_writes;
	struct mesh_wait *wait = NULL;
	struct msg *m;
	bool denied;
	size_t hits;
	uint8_t rc;
	int err = 0;

	n->stats.msgs_in++;
	n->stats.msgs_in_qos[p.qos]++;
	n->stats.payload_in_qos[p.qos] += p.payload.len;
	if (p.qos > n->cfg->max_qos) {
		/* [MQTT-3.2.2-11] v5: above the Maximum QoS of the CONNACK
		 * (3.1.1: closed) */
		conn_abort(c, MQTT_RC_QOS_NOT_SUPPORTED, "QoS not supported");
		return;
	}
	if (p.retain && !n->cfg->retain_available) {
		/* [MQTT-3.2.2-14] v5: the CONNACK said Retain Available 0 */
		conn_abort(c, MQTT_RC_RETAIN_NOT_SUPPORTED,
		           "retain not supported");
		return;
	}
	if (c->v5) {
		rc = conn_topic_alias(c, &p);
		if (rc) {
			conn_abort(c, rc, "bad topic alias");
			return;
		}
		if (mqtt_props_has(&p.props, MQTT_PROP_SUB_ID)) {
			/* [MQTT-3.3.4-6] v5: not from a client */
			conn_abort(c, MQTT_RC_PROTOCOL_ERROR,
			           "subscription identifier in PUBLISH");
			return;
		}
	}
	denied = !acl_may_publish(&n->acl, c->username, p.topic);
	if (denied) {
		n->stats.msgs_denied++;
		log_debug("publish not permitted client=%s topic=%.*s",
		          c->sess->client_id, (int)p.topic.len,
		          (const char *)p.topic.p);
	}
	if (denied && c->v5) {
		/* [MQTT-3.3.5-2] v5: PUBACK / PUBREC 0x87, nothing kept */
		if (p.qos)
			conn_send_ack_rc(c,
			                 p.qos == 1 ? MQTT_PUBACK : MQTT_PUBREC,
			                 p.packet_id, MQTT_RC_NOT_AUTHORIZED);
		return;
	}
	if (p.qos == 2 && c->v5 &&
	    c->sess->n_qos2_in >= n->cfg->receive_maximum) {
		bool known = false;
		uint32_t i;
		for (i = 0; i < c->sess->n_qos2_in; i++)
			known |= c->sess->qos2_in[i] == p.packet_id;
		if (!known) {
			/* [MQTT-3.3.4-7] v5 */
			conn_abort(c, MQTT_RC_RECEIVE_MAX_EXCEEDED,
			           "receive maximum exceeded");
			return;
		}
	}
	if (p.qos == 2 && !sess_qos2_in_add(c->sess, p.packet_id, &err)) {
		if (err) {
			conn_abort(c, MQTT_RC_UNSPECIFIED, "out of memory");
			return;
		}
		/* A QoS 2 PUBLISH re-sent before PUBREL: no new delivery. */
		conn_send_ack_rc(c, MQTT_PUBREC, p.packet_id, 0);
		return;
	}
	if (denied) {
		/* [MQTT-3.3.5-2] 3.1.1 has no code for it: acknowledged as
		 * usual (its QoS 2 id kept as for any message) and dropped */
		hits = 0;
		goto ack;
	}
	m = router_msg_new(n, p.topic, p.payload, c->v5 ? &p.props : NULL,
	                   p.qos, p.retain);
	if (!m) {
		if (p.qos == 2)
			sess_qos2_in_remove(c->sess, p.packet_id);
		conn_abort(c, MQTT_RC_UNSPECIFIED, "out of memory");
		return;
	}
	m->origin = c->sess;
	if (p.retain) {
		m->stamp = mesh_stamp(n);
		if (retain_set(n->retained, m)) {
			msg_unref(m);
			conn_abort(c, MQTT_RC_UNSPECIFIED, "out of memory");
			return;
		}
		persist_retained(n, m);
		mesh_retained(n, m);
	}
	n->share_mode = NODE_SHARE_CLUSTER;
	hits = router_publish(n, m);
	n->share_mode = NODE_SHARE_LOCAL;
	hits += mesh_forward(n, m, p.qos ? &wait : NULL);
	msg_unref(m);
ack:
	if (!p.qos)
		return;
	/* v5: 0x10 tells the publisher nobody matched (on any node) */
	rc = hits ? MQTT_RC_SUCCESS : MQTT_RC_NO_MATCHING_SUBSCRIBERS;
	if (writes != n->persist_writes || wait) {
		/* it was stored (retained, queued for persistent sessions,
		 * its QoS 2 id, or in an outbox): the ack waits until that
		 * is on disk, and for the peers that queue it (wait) */
		struct conn_ack *a = conn_ack_defer(
		        c, p.qos == 1 ? MQTT_PUBACK : MQTT_PUBREC, p.packet_id,
		        rc);
		if (wait)
			mesh_wait_attach(n, wait, a);
		if (a)
			persist_barrier(n, a);
		return;
	}
	conn_send_ack_rc(c, p.qos == 1 ? MQTT_PUBACK : MQTT_PUBREC, p.packet_id,
	                 rc);
}

/* Subscribes one SUBSCRIBE entry. @return the SUBACK code */
static uint8_t
conn_subscribe_one(struct conn *c, const struct mqtt_sub_entry *e,
                   uint32_t sub_id, bool *existed)
{
	bool v5 = c->version == MQTT_V5, shared;
	struct topic_sub_opts opts;
	struct mqtt_bytes f;

	if (!mqtt_topic_filter_is_valid(e->filter) ||
	    share_parse(e->filter, &shared, &f))
		return v5 ? MQTT_RC_TOPIC_FILTER_INVALID : 0x80;
	if (shared && v5 && e->no_local)
		return MQTT_RC_PROTOCOL_ERROR; /* [MQTT-3.8.3-4] v5 */
	/* a shared subscription's filter is what it subscribes to */
	if (!acl_may_subscribe(&c->node->acl, c->username,
	                       shared ? f : e->filter))
		return v5 ? MQTT_RC_NOT_AUTHORIZED : 0x80;
	memset(&opts, 0, sizeof(opts));
	/* [MQTT-3.2.2-10] v5: a SUBSCRIBE above the server's Maximum QoS is
	 * granted at that maximum */
	opts.qos = e->qos < c->node->cfg->max_qos
	                   ? e->qos
	                   : (uint8_t)c->node->cfg->max_qos;
	if (v5) {
		opts.no_local = e->no_local;
		opts.retain_as_published = e->retain_as_published;
		opts.retain_handling = e->retain_handling;
		opts.sub_id = sub_id;
	}
	if (sess_subscribe(c->sess, e->filter, &opts, existed))
		return v5 ? MQTT_RC_UNSPECIFIED : 0x80;
	return opts.qos;
}

static void
conn_on_subscribe(struct conn *c, const struct mqtt_subscribe *sub)
{
	struct mqtt_packet pkt;
	struct mqtt_sub_entry e;
	struct rd r;
	uint8_t *codes;
	uint32_t sub_id = 0;
	bool existed;
	size_t i = 0;

	if (mqtt_props_has(&sub->props, MQTT_PROP_SUB_ID))
		sub_id = sub->props.sub_ids[0];
	/* two bytes per entry: its code and whether it existed */
	codes = malloc(sub->count ? 2 * sub->count : 1);
	if (!codes) {
		conn_abort(c, MQTT_RC_UNSPECIFIED, "out of memory");
		return;
	}
	rd_init(&r, sub->entries.p, sub->entries.len);
	while (i < sub->count && mqtt_sub_next(&r, c->version, &e) == 0) {
		existed = false;
		codes[i] = conn_subscribe_one(c, &e, sub_id, &existed);
		if (codes[i] == MQTT_RC_PROTOCOL_ERROR) {
			free(codes);
			conn_abort(c, MQTT_RC_PROTOCOL_ERROR,
			           "no local on a shared subscription");
			return;
		}
		codes[sub->count + i] = existed;
		log_debug("subscribe client=%s filter=%.*s qos=%u rc=%u",
		          c->sess->client_id, (int)e.filter.len,
		          (const char *)e.filter.p, e.qos, codes[i]);
		i++;
	}
	memset(&pkt, 0, sizeof(pkt));
	pkt.type = MQTT_SUBACK;
	pkt.u.suback.packet_id = sub->packet_id;
	pkt.u.suback.codes = (struct mqtt_bytes){ codes, i };
	if (memchr(codes, MQTT_RC_TOPIC_FILTER_INVALID, i))
		conn_set_reason(c, &pkt, "invalid topic filter");
	if (persist_on(c->node) && c->sess->expiry)
		conn_send_held(c, &pkt);
	else
		conn_send_packet(c, &pkt);
	if (c->state != CONN_CLOSING) {
		/* Retained messages follow the SUBACK [MQTT-3.8.4-3];
		 * v5 Retain Handling 1: only for a new subscription, 2:
		 * never [MQTT-3.3.1-9] [MQTT-3.3.1-10] v5 */
		rd_init(&r, sub->entries.p, sub->entries.len);
		for (i = 0;
		     i < sub->count && mqtt_sub_next(&r, c->version, &e) == 0;
		     i++) {
			bool shared;
			struct mqtt_bytes f;
			if (codes[i] >= 0x80 || c->state == CONN_CLOSING)
				continue;
			/* none for a shared subscription (§3.8.4, §4.8.2 v5) */
			if (share_parse(e.filter, &shared, &f) || shared)
				continue;
			if (c->version == MQTT_V5 &&
			    (e.retain_handling == 2 ||
			     (e.retain_handling == 1 && codes[sub->count + i])))
				continue;
			router_send_retained(c->node, c->sess, e.filter,
			                     codes[i], sub_id);
		}
	}
	free(codes);
}

static void
conn_on_unsubscribe(struct conn *c, const struct mqtt_subscribe *uns)
{
	struct mqtt_packet pkt;
	struct mqtt_bytes f;
	struct rd r;
	uint8_t *codes;
	size_t i = 0;

	codes = malloc(uns->count ? uns->count : 1);
	if (!codes) {
		conn_abort(c, MQTT_RC_UNSPECIFIED, "out of memory");
		return;
	}
	rd_init(&r, uns->entries.p, uns->entries.len);
	while (i < uns->count && mqtt_unsub_next(&r, &f) == 0)
		codes[i++] = sess_unsubscribe(c->sess, f)
		                     ? MQTT_RC_NO_SUBSCRIPTION_EXISTED
		                     : MQTT_RC_SUCCESS;
	memset(&pkt, 0, sizeof(pkt));
	pkt.type = MQTT_UNSUBACK;
	pkt.u.suback.packet_id = uns->packet_id;
	if (c->version == MQTT_V5)
		pkt.u.suback.codes = (struct mqtt_bytes){ codes, i };
	if (memchr(codes, MQTT_RC_NO_SUBSCRIPTION_EXISTED, i))
		conn_set_reason(c, &pkt, "no subscription existed");
	if (persist_on(c->node) && c->sess->expiry)
		conn_send_held(c, &pkt);
	else
		conn_send_packet(c, &pkt);
	free(codes);
}

/* DISCONNECT from the client. */
static void
conn_on_disconnect(struct conn *c, const struct mqtt_disconnect *d)
{
	struct sess *s = c->sess;

	if (c->version == MQTT_V5 &&
	    mqtt_props_has(&d->props, MQTT_PROP_SESSION_EXPIRY)) {
		if (s->expiry == 0 && d->props.session_expiry != 0) {
			/* [MQTT-3.14.2-2] v5 */
			conn_abort(c, MQTT_RC_PROTOCOL_ERROR,
			           "session expiry set from 0 in DISCONNECT");
			return;
		}
		s->expiry = d->props.session_expiry;
		mesh_sess_durable(s);
	}
	/* A normal end discards the will [MQTT-3.1.2-10]; v5 0x04 asks
	 * for it to be published. */
	conn_close(c, "client disconnected",
	           c->version == MQTT_V5 &&
	                   d->rc == MQTT_RC_DISCONNECT_WITH_WILL);
}

/* PUBREL: answered even for an unknown id, so a client that lost our
 * PUBCOMP can finish [MQTT-4.3.3-11]; v5 says 0x92. */
static void
conn_on_pubrel(struct conn *c, uint16_t pid)
{
	struct node *n = c->node;
	uint64_t writes = n->persist_writes;
	uint8_t rc = sess_qos2_in_remove(c->sess, pid)
	                     ? MQTT_RC_SUCCESS
	                     : MQTT_RC_PACKET_ID_NOT_FOUND;
	struct conn_ack *a;

	if (writes == n->persist_writes) {
		conn_send_ack_rc(c, MQTT_PUBCOMP, pid, rc);
		return;
	}
	/* the id is forgotten on disk before PUBCOMP lets the client use
	 * it again: else a restart would take its next message for a
	 * duplicate */
	a = conn_ack_defer(c, MQTT_PUBCOMP, pid, rc);
	if (a)
		persist_barrier(n, a);
}

/* PUBACK, PUBREC, PUBREL or PUBCOMP from the client. */
static void
conn_on_ack(struct conn *c, uint8_t type, uint16_t pid, uint8_t rc)
{
	switch (type) {
	case MQTT_PUBACK:
		sess_on_puback(c->sess, pid);
		break;
	case MQTT_PUBREC:
		sess_on_pubrec(c->sess, pid, rc);
		break;
	case MQTT_PUBREL:
		conn_on_pubrel(c, pid);
		break;
	default:
		sess_on_pubcomp(c->sess, pid);
		break;
	}
}

/* Handles one decoded packet on an established connection. */
static void
conn_on_packet(struct conn *c, const struct mqtt_packet *pkt)
{
	switch (pkt->type) {
	case MQTT_PUBLISH:
		conn_on_publish(c, &pkt->u.publish);
		break;
	case MQTT_PUBACK:
	case MQTT_PUBREC:
	case MQTT_PUBREL:
	case MQTT_PUBCOMP:
		conn_on_ack(c, pkt->type, pkt->u.ack.packet_id, pkt->u.ack.rc);
		break;
	case MQTT_SUBSCRIBE:
		conn_on_subscribe(c, &pkt->u.subscribe);
		break;
	case MQTT_UNSUBSCRIBE:
		conn_on_unsubscribe(c, &pkt->u.subscribe);
		break;
	case MQTT_PINGREQ: {
		struct mqtt_packet resp = { .type = MQTT_PINGRESP };
		conn_send_packet(c, &resp);
		break;
	}
	case MQTT_DISCONNECT:
		conn_on_disconnect(c, &pkt->u.disconnect);
		break;
	case MQTT_CONNECT:
		/* [MQTT-3.1.0-2] */
		conn_abort(c, MQTT_RC_PROTOCOL_ERROR, "second CONNECT");
		break;
	default:
		conn_abort(c, MQTT_RC_PROTOCOL_ERROR, "unexpected packet type");
		break;
	}
}

/* Handles a decode failure: CONNECT errors that have a return code get a
 * CONNACK; everything else closes the connection. */
static void
conn_on_bad_packet(struct conn *c, uint8_t type, int err,
                   const struct mqtt_packet *pkt)
{
	char ab[CONN_ADDR_LEN];
	if (log_limit_ok(&c->node->log_lim, 20))
		log_info("bad packet client=%s addr=%s type=%s err=\"%s\"",
		         conn_client_id(c), conn_addr(c, ab),
		         mqtt_type_name(type), err_str(err));
	if (c->state == CONN_NEW && type == MQTT_CONNECT &&
	    err == ERR_BAD_VERSION) {
		/* [MQTT-3.1.2-2] an unsupported level gets 0x01, then close */
		c->version = MQTT_V311;
		if (pkt->u.connect.version == MQTT_V5)
			c->version = MQTT_V5;
		conn_refuse(c,
		            c->version == MQTT_V5 ? MQTT_RC_UNSUPPORTED_VERSION
		                                  : MQTT_CONNACK_V3_BAD_VERSION,
		            "unsupported protocol level");
		return;
	}
	if (c->state == CONN_ACTIVE)
		conn_abort(c, mqtt_rc_from_err(err), err_str(err));
	else
		conn_close(c, err_str(err), false);
}

/* Parses and handles every whole packet in [p, p+len).
 * @return bytes consumed */
/* True for the first byte of a well-formed PUBACK, PUBREC, PUBREL (flags
 * 2) or PUBCOMP (flags 0). */
static bool
conn_is_ack(uint8_t tf)
{
	return tf == MQTT_PUBACK << 4 || tf == MQTT_PUBREC << 4 ||
	       tf == (MQTT_PUBREL << 4 | 2) || tf == MQTT_PUBCOMP << 4;
}

static size_t
conn_parse(struct conn *c, const uint8_t *p, size_t len)
{
	struct node *n = c->node;
	struct mqtt_packet pkt;
	size_t done = 0, total, used;
	uint8_t tf;
	int rc;

	memset(&pkt, 0, sizeof(pkt));
	while (done < len && c->state != CONN_CLOSING &&
	       c->state != CONN_PARKED) {
		rc = mqtt_frame(p + done, len - done, n->cfg->max_packet_size,
		                &tf, &total);
		if (rc == ERR_AGAIN)
			break;
		if (rc) {
			conn_on_bad_packet(c, tf >> 4, rc, &pkt);
			break;
		}
		if (total > len - done)
			break;
		if (c->state == CONN_NEW && (tf >> 4) != MQTT_CONNECT) {
			/* [MQTT-3.1.0-1] close without a reply */
			conn_close(c, "first packet is not CONNECT", false);
			break;
		}
		if (total == 4 && c->state == CONN_ACTIVE && conn_is_ack(tf) &&
		    (p[done + 2] | p[done + 3])) {
			/* the most frequent packet, in its 4-byte form (v5:
			 * reason Success, no properties): no full decode */
			const uint8_t *q = p + done;
			done += total;
			if (c->keepalive)
				c->deadline =
				        node_now_ms() + c->keepalive * 1500ull;
			conn_on_ack(c, tf >> 4, (uint16_t)(q[2] << 8 | q[3]),
			            0);
			continue;
		}
		rc = mqtt_decode(p + done, total, c->version, &pkt, &used);
		if (rc) {
			conn_on_bad_packet(c, tf >> 4, rc, &pkt);
			break;
		}
		done += total;
		if (c->keepalive)
			c->deadline = node_now_ms() + c->keepalive * 1500ull;
		if (c->state == CONN_NEW)
			conn_on_connect(c, &pkt.u.connect, p + done - total,
			                total);
		else if (c->state == CONN_AUTH && pkt.type == MQTT_AUTH)
			conn_on_auth(c, &pkt.u.disconnect);
		else if (c->state == CONN_AUTH)
			conn_close(c, "packet other than AUTH during AUTH",
			           false);
		else
			conn_on_packet(c, &pkt);
	}
	return done;
}

static void
conn_read(struct conn *c)
{
	struct node *n = c->node;
	const uint8_t *p;
	size_t len, done;
	ssize_t r;
	uint8_t *nb;

	r = read(c->fd, n->rx, n->rx_cap);
	if (r == 0) {
		conn_close(c, c->rlen ? "closed mid-packet" : "peer closed",
		           c->state == CONN_ACTIVE);
		return;
	}
	if (r < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return;
		conn_close(c, "read error", c->state == CONN_ACTIVE);
		return;
	}
	n->stats.bytes_in += (uint64_t)r;
	if (c->rlen) {
		/* A partial packet is pending: append and parse from it. */
		nb = realloc(c->rbuf, c->rlen + (size_t)r);
		if (!nb) {
			conn_close(c, "out of memory", true);
			return;
		}
		memcpy(nb + c->rlen, n->rx, (size_t)r);
		c->rbuf = nb;
		c->rlen += (size_t)r;
		p = c->rbuf;
		len = c->rlen;
	} else {
		p = n->rx;
		len = (size_t)r;
	}
	done = conn_parse(c, p, len);
	if (c->state == CONN_CLOSING)
		return;
	if (done == len) {
		free(c->rbuf);
		c->rbuf = NULL;
		c->rlen = 0;
	} else if (p == c->rbuf) {
		memmove(c->rbuf, c->rbuf + done, len - done);
		c->rlen = len - done;
	} else {
		c->rbuf = malloc(len - done);
		if (!c->rbuf) {
			conn_close(c, "out of memory", true);
			return;
		}
		memcpy(c->rbuf, p + done, len - done);
		c->rlen = len - done;
	}
}

static void
conn_on_event(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	(void)fd;
	if ((what & EV_WRITE) && c->state != CONN_CLOSING)
		conn_write(c);
	if ((what & EV_READ) && c->state != CONN_CLOSING &&
	    c->state != CONN_PARKED)
		conn_read(c);
}

void
conn_tick(struct node *n, uint64_t now)
{
	struct conn *c, *next;

	for (c = n->conns; c; c = next) {
		next = c->next;
		if (!c->deadline || now < c->deadline)
			continue;
		if (c->state == CONN_NEW)
			conn_close(c, "no CONNECT in time", false);
		else
			/* [MQTT-3.1.2-24] 1.5 x keepalive without a packet */
			conn_abort(c, MQTT_RC_KEEPALIVE_TIMEOUT,
			           "keepalive timeout");
	}
}

/* ---- admin API ---- */

void
conn_get_info(const struct conn *c, struct conn_info *out)
{
	memset(out, 0, sizeof(*out));
	conn_addr(c, out->addr);
	if (!c->peer_family)
		snprintf(out->addr, sizeof(out->addr), "?");
	out->username = c->username;
	out->connected_ms = c->connected_ms;
	out->keepalive = c->keepalive;
	out->version = c->version;
	out->pending = c->out_bytes;
}

void
conn_kick(struct conn *c, const char *why)
{
	c->node->stats.clients_kicked++;
	log_info("client kicked client=%s reason=\"%s\"", conn_client_id(c),
	         why);
	/* v5: DISCONNECT 0x98 (Administrative action) first; 3.1.1: close */
	conn_abort(c, MQTT_RC_ADMIN_ACTION, why);
}

void
conn_drop_session(struct conn *c, const char *why)
{
	struct sess *s = c->sess;

	if (s && s->conn == c) {
		s->conn = NULL;
		c->sess = NULL;
	}
	conn_kick(c, why);
}
