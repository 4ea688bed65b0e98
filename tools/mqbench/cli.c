/*
 * One simulated MQTT client of mqbench: a non-blocking socket on the shared
 * event_base, the CONNECT / SUBSCRIBE handshake, the QoS 1/2 flows in both
 * directions with the -F in-flight window, keepalive pings, and the payload
 * headers that publishers write and subscribers check. Output is batched:
 * a callback encodes everything it has to send into the client's buffer
 * and writes it with one send(); input is read into the run's shared
 * buffer, and only a partial packet is kept per client.
 */
#include "tools/mqbench/bench_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#define CLI_CONNECT_TIMEOUT_MS 10000        /* TCP connect plus CONNACK */
#define CLI_READS              4            /* reads per readable event */
#define CLI_BATCH              (64u * 1024) /* a -I 0 publisher's turn */
#define CLI_OUT_MAX            (1u << 20)   /* pending output: skip ticks */
#define CLI_KEEP_BUF           (64u * 1024) /* larger idle buffers go */
#define CLI_SRC_TRIES          8            /* source addresses per client */
#define CLI_ID_LEN             300          /* --prefix, "_", number */
#define CLI_SUB_PID            1            /* the one SUBSCRIBE's packet id */

/* What the packet id of an outgoing QoS 1/2 publish waits for. */
enum cli_pid {
	CLI_PID_FREE,
	CLI_PID_PUBACK,
	CLI_PID_PUBREC,
	CLI_PID_PUBCOMP,
};

static void cli_on_event(evutil_socket_t fd, short what, void *arg);

static void
cli_id(const struct cli *c, char *id, size_t cap)
{
	snprintf(id, cap, "%s_%" PRIu32, c->b->o->prefix, c->seq);
}

static const struct bench_addr *
cli_dst(const struct cli *c)
{
	const struct bench_opts *o = c->b->o;

	return &o->hosts[(c->seq - o->start) % o->n_hosts];
}

/* Records what failed; cli_close reports the first reason. */
static int
cli_fail(struct cli *c, const char *why, int err, int rc)
{
	if (!c->why) {
		c->why = why;
		c->why_errno = err;
	}
	return rc;
}

static void
cli_set_write(struct cli *c, bool on)
{
	if (c->want_write == on)
		return;
	c->want_write = on;
	event_del(&c->ev);
	event_assign(&c->ev, c->b->base, c->fd,
	             EV_PERSIST | EV_READ | (on ? EV_WRITE : 0), cli_on_event,
	             c);
	event_add(&c->ev, NULL);
}

/* A -I 0 publisher that may publish more right now. */
static bool
cli_can_publish(const struct cli *c)
{
	const struct bench_opts *o = c->b->o;

	return c->state == CLI_ACTIVE && o->cmd == BENCH_PUB &&
	       o->pub_interval_ms == 0 &&
	       (o->qos == 0 || c->inflight < c->window) &&
	       bench_publishing(c->b);
}

/* Drops the socket and all per-connection state; counts nothing. */
static void
cli_release(struct cli *c)
{
	struct bench *b = c->b;

	if (event_initialized(&c->ev))
		event_del(&c->ev);
	if (event_initialized(&c->pub_ev))
		event_del(&c->pub_ev);
	if (c->fd >= 0) {
		close(c->fd);
		b->n_open--;
	}
	c->fd = -1;
	c->state = CLI_CLOSED;
	buf_fini(&c->in);
	buf_fini(&c->out);
	c->out_off = 0;
	free(c->pid_state);
	c->pid_state = NULL;
	free(c->qos2_in);
	c->qos2_in = NULL;
	if (c->inflight) {
		b->inflight -= c->inflight;
		c->inflight = 0;
		bench_acked(b);
	}
}

/* Closes after a failure (@p rc) and counts it as connect_fail or
 * conn_lost, depending on how far the client got. */
static void
cli_close(struct cli *c, int rc)
{
	enum stats_counter k = STATS_N;
	char id[CLI_ID_LEN], why[BENCH_WHY_LEN];
	const char *what = c->why ? c->why : err_str(rc);

	if (c->state == CLI_CONNECTING || c->state == CLI_CONNACK)
		k = STATS_CONNECT_FAIL;
	else if (c->state == CLI_SUBACK || c->state == CLI_ACTIVE)
		k = STATS_CONN_LOST;
	cli_id(c, id, sizeof(id));
	if (c->why_rc >= 0)
		snprintf(why, sizeof(why), "%s -> %s: %s (code 0x%02x)", id,
		         cli_dst(c)->name, what, (unsigned)c->why_rc);
	else if (c->why_errno)
		snprintf(why, sizeof(why), "%s -> %s: %s: %s", id,
		         cli_dst(c)->name, what, strerror(c->why_errno));
	else
		snprintf(why, sizeof(why), "%s -> %s: %s", id, cli_dst(c)->name,
		         what);
	cli_release(c);
	bench_closed(c->b, k, why);
}

/* ---- output ---- */

/* Writes the pending output; what the socket does not take waits for
 * writability. The write interest stays on while a -I 0 publisher can
 * publish more. */
static int
cli_flush(struct cli *c)
{
	ssize_t n;
	bool sent = false;

	while (c->out_off < c->out.len) {
		n = send(c->fd, c->out.data + c->out_off,
		         c->out.len - c->out_off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n < 0)
			return cli_fail(c, "send", errno, ERR_IO);
		c->out_off += (size_t)n;
		sent = true;
	}
	if (sent)
		c->tx_ms = bench_now_ms();
	if (c->out_off < c->out.len) {
		cli_set_write(c, true);
		return 0;
	}
	c->out_off = 0;
	buf_reset(&c->out);
	if (c->out.cap > CLI_KEEP_BUF)
		buf_fini(&c->out);
	if (c->state == CLI_CLOSING && !c->shut) {
		shutdown(c->fd, SHUT_WR);
		c->shut = true;
	}
	cli_set_write(c, cli_can_publish(c));
	return 0;
}

static int
cli_encode(struct cli *c, const struct mqtt_packet *pkt)
{
	int rc = mqtt_encode(&c->out, c->b->o->version, pkt);

	return rc ? cli_fail(c, "encode", 0, rc) : 0;
}

static int
cli_send_simple(struct cli *c, uint8_t type)
{
	struct mqtt_packet pkt = { .type = type };

	return cli_encode(c, &pkt);
}

static int
cli_send_ack(struct cli *c, uint8_t type, uint16_t packet_id)
{
	struct mqtt_packet pkt = { .type = type };

	pkt.u.ack.packet_id = packet_id;
	return cli_encode(c, &pkt);
}

static void
cli_put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void
cli_put_be64(uint8_t *p, uint64_t v)
{
	cli_put_be32(p, (uint32_t)(v >> 32));
	cli_put_be32(p + 4, (uint32_t)v);
}

/* A free packet id; the caller has checked inflight < window. */
static uint16_t
cli_pid_take(struct cli *c, uint8_t wait)
{
	uint16_t i = c->pid_next;

	while (c->pid_state[i] != CLI_PID_FREE)
		i = (uint16_t)((i + 1u) % c->window);
	c->pid_state[i] = wait;
	c->pid_next = (uint16_t)((i + 1u) % c->window);
	return (uint16_t)(i + 1u);
}

/* Encodes one PUBLISH: header, then the payload template with the
 * payload headers written over its start. */
static int
cli_publish(struct cli *c)
{
	struct bench *b = c->b;
	const struct bench_opts *o = b->o;
	struct mqtt_publish pub = { .qos = o->qos, .retain = o->retain };
	size_t at;
	uint8_t *p;
	int rc;

	pub.topic = (struct mqtt_bytes){ c->topic, c->topic_len };
	pub.payload.len = b->payload_len;
	if (pub.qos)
		pub.packet_id = cli_pid_take(c, pub.qos == 1 ? CLI_PID_PUBACK
		                                             : CLI_PID_PUBREC);
	rc = mqtt_publish_header_encode(&c->out, o->version, &pub);
	if (rc)
		return cli_fail(c, "encode", 0, rc);
	at = c->out.len;
	buf_put_bytes(&c->out, b->payload, b->payload_len);
	if (buf_failed(&c->out))
		return cli_fail(c, "out of memory", 0, ERR_NOMEM);
	p = c->out.data + at;
	if (o->hdr_cnt) {
		cli_put_be32(p, c->seq);
		cli_put_be64(p + 4, c->pub_cnt);
		p += BENCH_HDR_CNT_LEN;
	}
	if (o->hdr_ts)
		cli_put_be64(p, bench_wall_ns());
	c->pub_cnt++;
	if (pub.qos) {
		c->inflight++;
		b->inflight++;
	}
	bench_pub_done(b);
	return 0;
}

/* A -I 0 publisher: publishes while the window, the -L budget and this
 * turn's batch allow. */
static int
cli_fill(struct cli *c)
{
	int rc;

	while (c->out.len - c->out_off < CLI_BATCH && cli_can_publish(c) &&
	       bench_pub_take(c->b)) {
		rc = cli_publish(c);
		if (rc)
			return rc;
	}
	return 0;
}

static void
cli_on_pub_timer(evutil_socket_t fd, short what, void *arg)
{
	struct cli *c = arg;
	const struct bench_opts *o = c->b->o;
	int rc;

	(void)fd;
	(void)what;
	if (c->state != CLI_ACTIVE || (o->qos && c->inflight >= c->window) ||
	    c->out.len - c->out_off > CLI_OUT_MAX || !bench_pub_take(c->b))
		return;
	rc = cli_publish(c);
	if (rc == 0)
		rc = cli_flush(c);
	if (rc)
		cli_close(c, rc);
}

/* ---- input ---- */

static int
cli_start_publishing(struct cli *c)
{
	struct bench *b = c->b;

	c->state = CLI_ACTIVE;
	if (b->o->qos) {
		c->pid_state = calloc(c->window, 1);
		if (!c->pid_state)
			return cli_fail(c, "out of memory", 0, ERR_NOMEM);
	}
	if (b->o->pub_interval_ms == 0)
		return 0; /* cli_fill runs when this input is done */
	event_assign(&c->pub_ev, b->base, -1, EV_PERSIST, cli_on_pub_timer, c);
	if (event_add(&c->pub_ev, b->pub_tv))
		return cli_fail(c, "event_add", 0, ERR_NOMEM);
	return bench_pub_take(b) ? cli_publish(c) : 0;
}

static int
cli_subscribe(struct cli *c)
{
	struct bench *b = c->b;
	struct mqtt_packet pkt = { .type = MQTT_SUBSCRIBE };
	struct mqtt_sub_entry e = { .qos = b->o->qos };

	e.filter = (struct mqtt_bytes){ c->topic, c->topic_len };
	buf_reset(&b->tmp);
	mqtt_sub_entry_put(&b->tmp, b->o->version, &e);
	if (buf_failed(&b->tmp))
		return cli_fail(c, "out of memory", 0, ERR_NOMEM);
	pkt.u.subscribe.packet_id = CLI_SUB_PID;
	pkt.u.subscribe.entries =
	        (struct mqtt_bytes){ b->tmp.data, b->tmp.len };
	pkt.u.subscribe.count = 1;
	c->state = CLI_SUBACK;
	return cli_encode(c, &pkt);
}

static int
cli_on_connack(struct cli *c, const struct mqtt_connack *ck)
{
	const struct bench_opts *o = c->b->o;
	uint16_t window = o->inflight ? o->inflight : UINT16_MAX;

	if (c->state != CLI_CONNACK)
		return cli_fail(c, "CONNACK out of place", 0, ERR_PROTOCOL);
	if (ck->rc) {
		c->why_rc = ck->rc;
		return cli_fail(c, "CONNACK refused", 0, ERR_PROTOCOL);
	}
	c->b->st.total[STATS_CONNECT_SUCC]++;
	c->state_ms = bench_now_ms();
	if (mqtt_props_has(&ck->props, MQTT_PROP_RECEIVE_MAX) &&
	    ck->props.receive_max < window)
		window = ck->props.receive_max;
	if (mqtt_props_has(&ck->props, MQTT_PROP_SERVER_KEEPALIVE))
		c->keepalive = ck->props.server_keepalive;
	c->window = window ? window : 1;
	if (o->cmd == BENCH_SUB)
		return cli_subscribe(c);
	if (o->cmd == BENCH_PUB)
		return cli_start_publishing(c);
	c->state = CLI_ACTIVE;
	return 0;
}

static int
cli_on_suback(struct cli *c, const struct mqtt_suback *sa)
{
	struct bench *b = c->b;

	if (c->state != CLI_SUBACK || sa->packet_id != CLI_SUB_PID)
		return cli_fail(c, "SUBACK out of place", 0, ERR_PROTOCOL);
	c->state = CLI_ACTIVE;
	if (sa->codes.len >= 1 && sa->codes.p[0] < 0x80)
		b->st.total[STATS_SUB]++;
	else
		b->st.total[STATS_SUB_FAIL]++;
	return 0;
}

static uint64_t
cli_get_be64(struct rd *r)
{
	uint32_t hi = 0, lo = 0;

	rd_u32(r, &hi);
	rd_u32(r, &lo);
	return (uint64_t)hi << 32 | lo;
}

/* The payload headers of a message @p c received, when asked to check
 * them. */
static void
cli_check_payload(struct cli *c, struct mqtt_bytes pl)
{
	struct bench *b = c->b;
	const struct bench_opts *o = b->o;
	uint64_t cnt, ts;
	uint32_t id = 0;
	struct rd r;

	if (!o->hdr_cnt && !o->hdr_ts)
		return;
	if (pl.len < b->hdr_len) {
		b->st.bad_hdr++;
		return;
	}
	rd_init(&r, pl.p, pl.len);
	if (o->hdr_cnt) {
		rd_u32(&r, &id);
		cnt = cli_get_be64(&r);
		/* out of memory for a new stream: it goes unchecked */
		(void)stats_seq_check(&b->st, (uint64_t)c->seq << 32 | id, cnt);
	}
	if (o->hdr_ts) {
		ts = cli_get_be64(&r);
		hist_add(&b->st.lat,
		         b->rx_ns > ts ? (b->rx_ns - ts) / 1000 : 0);
	}
}

static bool
cli_qos2_test_set(struct cli *c, uint16_t id, bool set)
{
	bool was = c->qos2_in[id >> 3] & (1u << (id & 7));

	if (set)
		c->qos2_in[id >> 3] |= (uint8_t)(1u << (id & 7));
	else
		c->qos2_in[id >> 3] &= (uint8_t) ~(1u << (id & 7));
	return was;
}

static int
cli_on_publish(struct cli *c, const struct mqtt_publish *p)
{
	struct bench *b = c->b;

	if (c->state != CLI_ACTIVE && c->state != CLI_SUBACK)
		return cli_fail(c, "PUBLISH out of place", 0, ERR_PROTOCOL);
	if (p->qos == 2) {
		if (!c->qos2_in)
			c->qos2_in = calloc(65536 / 8, 1);
		if (!c->qos2_in)
			return cli_fail(c, "out of memory", 0, ERR_NOMEM);
		/* a resent PUBLISH whose PUBREL is still due: not new */
		if (cli_qos2_test_set(c, p->packet_id, true))
			return cli_send_ack(c, MQTT_PUBREC, p->packet_id);
	}
	b->st.total[STATS_RECV]++;
	cli_check_payload(c, p->payload);
	if (b->o->cmd == BENCH_SUB && b->o->limit &&
	    b->st.total[STATS_RECV] >= b->o->limit)
		bench_request_stop(b, BENCH_END_LIMIT);
	if (p->qos == 1)
		return cli_send_ack(c, MQTT_PUBACK, p->packet_id);
	if (p->qos == 2)
		return cli_send_ack(c, MQTT_PUBREC, p->packet_id);
	return 0;
}

/* PUBACK, PUBREC and PUBCOMP of our own publishes. */
static int
cli_on_ack(struct cli *c, uint8_t type, const struct mqtt_ack *a)
{
	struct bench *b = c->b;
	size_t i = (size_t)a->packet_id - 1;
	uint8_t want = type == MQTT_PUBACK   ? CLI_PID_PUBACK
	               : type == MQTT_PUBREC ? CLI_PID_PUBREC
	                                     : CLI_PID_PUBCOMP;

	if (!c->pid_state || a->packet_id == 0 || i >= c->window ||
	    c->pid_state[i] != want)
		return cli_fail(c, "ack for no publish in flight", 0,
		                ERR_PROTOCOL);
	if (type == MQTT_PUBREC && a->rc < 0x80) {
		c->pid_state[i] = CLI_PID_PUBCOMP;
		return cli_send_ack(c, MQTT_PUBREL, a->packet_id);
	}
	c->pid_state[i] = CLI_PID_FREE;
	c->inflight--;
	b->inflight--;
	b->st.total[a->rc >= 0x80 ? STATS_PUB_FAIL : STATS_PUB_SUCC]++;
	bench_acked(b);
	return 0;
}

static int
cli_handle(struct cli *c, const struct mqtt_packet *pkt)
{
	switch (pkt->type) {
	case MQTT_CONNACK:
		return cli_on_connack(c, &pkt->u.connack);
	case MQTT_SUBACK:
		return cli_on_suback(c, &pkt->u.suback);
	case MQTT_PUBLISH:
		return cli_on_publish(c, &pkt->u.publish);
	case MQTT_PUBACK:
	case MQTT_PUBREC:
	case MQTT_PUBCOMP:
		return cli_on_ack(c, pkt->type, &pkt->u.ack);
	case MQTT_PUBREL:
		if (c->qos2_in)
			cli_qos2_test_set(c, pkt->u.ack.packet_id, false);
		return cli_send_ack(c, MQTT_PUBCOMP, pkt->u.ack.packet_id);
	case MQTT_PINGRESP:
		c->ping_out = false;
		return 0;
	case MQTT_DISCONNECT:
		c->why_rc = pkt->u.disconnect.rc;
		return cli_fail(c, "DISCONNECT from the broker", 0, ERR_IO);
	default:
		return cli_fail(c, "unexpected packet", 0, ERR_PROTOCOL);
	}
}

/* Handles the whole packets at the start of @p p; @p used gets their
 * bytes. */
static int
cli_parse(struct cli *c, const uint8_t *p, size_t len, size_t *used)
{
	struct mqtt_packet pkt;
	size_t off = 0, total, n;
	uint8_t tf;
	int rc;

	while (off < len) {
		rc = mqtt_frame(p + off, len - off, 0, &tf, &total);
		if (rc == ERR_AGAIN || (rc == 0 && total > len - off))
			break;
		if (rc == 0)
			rc = mqtt_decode(p + off, total, c->b->o->version, &pkt,
			                 &n);
		if (rc)
			return cli_fail(c, err_str(rc), 0, rc);
		rc = cli_handle(c, &pkt);
		if (rc)
			return rc;
		off += total;
	}
	*used = off;
	return 0;
}

/* New bytes @p p: handles the packets they complete and keeps a partial
 * one in c->in. */
static int
cli_input(struct cli *c, const uint8_t *p, size_t len)
{
	size_t used = 0;
	bool kept = c->in.len > 0;
	int rc;

	if (c->state == CLI_CLOSING)
		return 0; /* only waiting for the broker to close */
	if (kept) {
		buf_put_bytes(&c->in, p, len);
		if (buf_failed(&c->in))
			return cli_fail(c, "out of memory", 0, ERR_NOMEM);
		p = c->in.data;
		len = c->in.len;
	}
	rc = cli_parse(c, p, len, &used);
	if (rc)
		return rc;
	if (kept) {
		memmove(c->in.data, c->in.data + used, len - used);
		c->in.len = len - used;
	} else if (used < len) {
		buf_put_bytes(&c->in, p + used, len - used);
		if (buf_failed(&c->in))
			return cli_fail(c, "out of memory", 0, ERR_NOMEM);
	}
	if (c->in.len == 0 && c->in.cap > CLI_KEEP_BUF)
		buf_fini(&c->in);
	return 0;
}

static int
cli_read(struct cli *c)
{
	struct bench *b = c->b;
	ssize_t n;
	int i, rc;

	for (i = 0; i < CLI_READS; i++) {
		n = recv(c->fd, b->rbuf, b->rbuf_len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n < 0)
			return cli_fail(c, "recv", errno, ERR_IO);
		if (n == 0)
			return cli_fail(c, "closed by the broker", 0, ERR_IO);
		c->rx_ms = bench_now_ms();
		if (b->o->hdr_ts)
			b->rx_ns = bench_wall_ns();
		rc = cli_input(c, b->rbuf, (size_t)n);
		if (rc || (size_t)n < b->rbuf_len)
			return rc;
	}
	return 0;
}

/* ---- connection ---- */

static int
cli_send_connect(struct cli *c)
{
	const struct bench_opts *o = c->b->o;
	struct mqtt_packet pkt = { .type = MQTT_CONNECT };
	struct mqtt_connect *ck = &pkt.u.connect;
	char id[CLI_ID_LEN];

	cli_id(c, id, sizeof(id));
	ck->clean_start = o->clean;
	ck->keepalive = o->keepalive;
	ck->client_id = (struct mqtt_bytes){ (const uint8_t *)id, strlen(id) };
	if (o->username) {
		ck->has_username = true;
		ck->username =
		        (struct mqtt_bytes){ (const uint8_t *)o->username,
			                     strlen(o->username) };
	}
	if (o->password) {
		ck->has_password = true;
		ck->password =
		        (struct mqtt_bytes){ (const uint8_t *)o->password,
			                     strlen(o->password) };
	}
	if (o->has_expiry) {
		ck->props.present |= 1ull << MQTT_PROP_SESSION_EXPIRY;
		ck->props.session_expiry = o->expiry;
	}
	return cli_encode(c, &pkt);
}

/* The TCP connect finished (or failed). */
static int
cli_connected(struct cli *c)
{
	socklen_t len = sizeof(int);
	int err = 0, rc;

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err == EINPROGRESS || err == EALREADY)
		return 0;
	if (err)
		return cli_fail(c, "connect", err, ERR_IO);
	c->state = CLI_CONNACK;
	c->rx_ms = c->tx_ms = bench_now_ms();
	rc = cli_send_connect(c);
	return rc ? rc : cli_flush(c);
}

static void
cli_on_event(evutil_socket_t fd, short what, void *arg)
{
	struct cli *c = arg;
	int rc = 0;

	(void)fd;
	if (c->state == CLI_CONNECTING) {
		rc = cli_connected(c);
	} else {
		if (what & EV_READ)
			rc = cli_read(c);
		if (rc == 0)
			rc = cli_fill(c);
		if (rc == 0)
			rc = cli_flush(c);
	}
	if (rc)
		cli_close(c, rc);
}

/* Opens the socket and starts connect(); on EADDRNOTAVAIL (out of local
 * ports) the caller may try again from another source address.
 * @return 0, ERR_AGAIN to try again, or another ERR_* (c->why says) */
static int
cli_connect(struct cli *c, const struct bench_addr *dst)
{
	const struct bench_addr *src = bench_src_next(c->b, dst);
	int one = 1;

	c->fd = socket(dst->ss.ss_family, SOCK_STREAM, 0);
	if (c->fd < 0)
		return cli_fail(c, "socket", errno, ERR_IO);
	c->b->n_open++;
	if (evutil_make_socket_nonblocking(c->fd) ||
	    evutil_make_socket_closeonexec(c->fd))
		return cli_fail(c, "fcntl", errno, ERR_IO);
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (src) {
		setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
		           sizeof(one));
		if (bind(c->fd, (const struct sockaddr *)&src->ss, src->len))
			return cli_fail(c, "bind to --ifaddr", errno, ERR_IO);
	}
	if (connect(c->fd, (const struct sockaddr *)&dst->ss, dst->len) &&
	    errno != EINPROGRESS) {
		if (errno == EADDRNOTAVAIL && c->src_tries < CLI_SRC_TRIES &&
		    bench_src_auto(c->b, dst))
			return ERR_AGAIN;
		return cli_fail(c, "connect", errno, ERR_IO);
	}
	c->want_write = true;
	event_assign(&c->ev, c->b->base, c->fd, EV_PERSIST | EV_READ | EV_WRITE,
	             cli_on_event, c);
	if (event_add(&c->ev, NULL))
		return cli_fail(c, "event_add", 0, ERR_NOMEM);
	return 0;
}

static int
cli_make_topic(struct cli *c)
{
	struct bench *b = c->b;
	char id[CLI_ID_LEN];

	cli_id(c, id, sizeof(id));
	buf_reset(&b->tmp);
	if (opt_topic_expand(&b->tmp, b->o->topic, id, c->seq) ||
	    b->tmp.len > UINT16_MAX)
		return cli_fail(c, "topic", 0, ERR_NOMEM);
	c->topic = malloc(b->tmp.len ? b->tmp.len : 1);
	if (!c->topic)
		return cli_fail(c, "out of memory", 0, ERR_NOMEM);
	memcpy(c->topic, b->tmp.data, b->tmp.len);
	c->topic_len = (uint16_t)b->tmp.len;
	return 0;
}

void
cli_start(struct cli *c)
{
	const struct bench_addr *dst = cli_dst(c);
	int rc = 0;

	c->state = CLI_CONNECTING;
	c->state_ms = bench_now_ms();
	c->keepalive = c->b->o->keepalive;
	c->why_rc = -1;
	if (c->b->o->topic && !c->topic)
		rc = cli_make_topic(c);
	while (rc == 0 && (rc = cli_connect(c, dst)) == ERR_AGAIN) {
		/* out of local ports: again from the next source address */
		c->src_tries++;
		close(c->fd);
		c->fd = -1;
		c->b->n_open--;
		rc = 0;
	}
	if (rc)
		cli_close(c, rc);
}

void
cli_stop(struct cli *c)
{
	int rc;

	if (c->state == CLI_CONNECTING) {
		cli_release(c);
		bench_closed(c->b, STATS_N, NULL);
		return;
	}
	if (c->state != CLI_CONNACK && c->state != CLI_SUBACK &&
	    c->state != CLI_ACTIVE)
		return;
	if (event_initialized(&c->pub_ev))
		event_del(&c->pub_ev);
	c->state = CLI_CLOSING;
	rc = cli_send_simple(c, MQTT_DISCONNECT);
	if (rc == 0)
		rc = cli_flush(c);
	if (rc)
		cli_close(c, rc);
}

void
cli_abort(struct cli *c)
{
	if (c->state == CLI_IDLE || c->state == CLI_CLOSED)
		return;
	cli_release(c);
	bench_closed(c->b, STATS_N, NULL);
}

void
cli_tick(struct cli *c, uint64_t now_ms)
{
	uint64_t ka = c->keepalive * 1000ull;
	int rc;

	if ((c->state == CLI_CONNECTING || c->state == CLI_CONNACK) &&
	    now_ms - c->state_ms >= CLI_CONNECT_TIMEOUT_MS) {
		cli_fail(c,
		         c->state == CLI_CONNECTING ? "connect"
		                                    : "no CONNACK in time",
		         ETIMEDOUT, 0);
		cli_close(c, ERR_IO);
		return;
	}
	if ((c->state != CLI_ACTIVE && c->state != CLI_SUBACK) || ka == 0)
		return;
	if (c->ping_out) {
		if (now_ms - c->ping_ms < ka)
			return;
		cli_fail(c, "no PINGRESP within the keepalive", 0, 0);
		cli_close(c, ERR_IO);
		return;
	}
	/* ticks come once a second: ping a second early */
	if (now_ms - c->tx_ms + 1000 < ka && now_ms - c->rx_ms < ka)
		return;
	c->ping_out = true;
	c->ping_ms = now_ms;
	rc = cli_send_simple(c, MQTT_PINGREQ);
	if (rc == 0)
		rc = cli_flush(c);
	if (rc)
		cli_close(c, rc);
}

void
cli_fini(struct cli *c)
{
	free(c->topic);
	c->topic = NULL;
	buf_fini(&c->in);
	buf_fini(&c->out);
}
