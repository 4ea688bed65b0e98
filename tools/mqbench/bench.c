/*
 * mqbench, the MQTT load generator with emqtt-bench's command shape: main()
 * and the run around the clients. Start-up (file descriptor limit, event
 * base, clients, payload template), connect pacing (-i / -R), the
 * once-a-second report and keepalive sweep, the stop sequence (-L,
 * --duration, signals), source-address spreading, the summary and the exit
 * status.
 */
#include "tools/mqbench/bench_int.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <time.h>

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>

#define BENCH_RBUF_SIZE    (64u * 1024) /* the shared read buffer */
#define BENCH_LAUNCH_BATCH 1000         /* connects started per loop turn */
#define BENCH_DRAIN_MS     10000        /* wait for the last acks after -L */
#define BENCH_GRACE_MS     3000         /* wait for closes after DISCONNECT */
#define BENCH_FD_SPARE     32           /* descriptors needed besides clients */

static const char *const bench_cmd_names[] = { "conn", "sub", "pub" };
static const char *const bench_end_names[] = {
	"none", "limit", "duration", "signal", "no_connection", "all_lost",
};

static uint64_t
bench_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t
bench_now_ms(void)
{
	return bench_now_us() / 1000u;
}

uint64_t
bench_wall_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static struct timeval
bench_tv_ms(uint64_t ms)
{
	struct timeval tv;

	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000 * 1000);
	return tv;
}

/* ---- the run's state changes, called from the clients ---- */

/* Ends the run when nothing is left to wait for. */
static void
bench_check_end(struct bench *b)
{
	if (b->phase == BENCH_STOP) {
		if (b->n_open == 0)
			event_base_loopbreak(b->base);
		return;
	}
	if (b->n_started < b->o->clients || b->n_open > 0)
		return;
	bench_request_stop(b, b->st.total[STATS_CONNECT_SUCC]
	                              ? BENCH_END_ALL_LOST
	                              : BENCH_END_NO_CONN);
}

void
bench_request_stop(struct bench *b, enum bench_end why)
{
	if (b->end == BENCH_END_NONE)
		b->end = why;
	if (b->phase == BENCH_STOP || b->stop_pending)
		return;
	b->stop_pending = true;
	event_active(&b->stop_ev, 0, 0);
}

bool
bench_publishing(const struct bench *b)
{
	return b->phase == BENCH_RUN && b->end == BENCH_END_NONE;
}

bool
bench_pub_take(struct bench *b)
{
	if (!bench_publishing(b))
		return false;
	if (b->o->limit && b->st.total[STATS_PUB] + 1 >= b->o->limit) {
		b->phase = BENCH_DRAIN;
		b->drain_ms = bench_now_ms();
	}
	return true;
}

void
bench_pub_done(struct bench *b)
{
	b->st.total[STATS_PUB]++;
	bench_acked(b);
}

void
bench_acked(struct bench *b)
{
	if (b->phase == BENCH_DRAIN && b->inflight == 0)
		bench_request_stop(b, BENCH_END_LIMIT);
}

void
bench_closed(struct bench *b, enum stats_counter counted, const char *why)
{
	char *keep = counted == STATS_CONNECT_FAIL ? b->fail_why : b->lost_why;

	if (counted != STATS_N) {
		b->st.total[counted]++;
		if (why && !keep[0])
			snprintf(keep, BENCH_WHY_LEN, "%s", why);
	}
	bench_check_end(b);
}

/* ---- source addresses ---- */

const struct bench_addr *
bench_src_next(struct bench *b, const struct bench_addr *dst)
{
	const struct bench_addr *a;
	size_t i;

	for (i = 0; i < b->n_src; i++) {
		a = &b->src[b->src_next++ % b->n_src];
		if (a->ss.ss_family == dst->ss.ss_family)
			return a;
	}
	return NULL;
}

static bool
bench_is_loopback4(const struct bench_addr *a)
{
	const struct sockaddr_in *s4 = (const struct sockaddr_in *)&a->ss;

	return a->ss.ss_family == AF_INET &&
	       (ntohl(s4->sin_addr.s_addr) >> 24) == 127;
}

/* 127.0.0.1 to 127.0.0.254, for a broker on IPv4 loopback. */
static size_t
bench_src_loopback(struct bench_addr *out, size_t cap)
{
	struct sockaddr_in *s4;
	size_t n;

	for (n = 0; n < cap && n < 254; n++) {
		s4 = (struct sockaddr_in *)&out[n].ss;
		s4->sin_family = AF_INET;
		s4->sin_addr.s_addr = htonl(0x7f000001u + (uint32_t)n);
		out[n].len = sizeof(*s4);
	}
	return n;
}

/* The machine's addresses of family @p af, loopback left out. */
static size_t
bench_src_local(int af, struct bench_addr *out, size_t cap)
{
	struct ifaddrs *ifs, *i;
	struct bench_addr a;
	size_t n = 0;

	if (getifaddrs(&ifs))
		return 0;
	for (i = ifs; i && n < cap; i = i->ifa_next) {
		if (!i->ifa_addr || i->ifa_addr->sa_family != af)
			continue;
		memset(&a, 0, sizeof(a));
		a.len = af == AF_INET ? sizeof(struct sockaddr_in)
		                      : sizeof(struct sockaddr_in6);
		memcpy(&a.ss, i->ifa_addr, a.len);
		if (bench_is_loopback4(&a) ||
		    (af == AF_INET6 &&
		     !memcmp(&((struct sockaddr_in6 *)&a.ss)->sin6_addr,
		             &in6addr_loopback, sizeof(struct in6_addr))))
			continue;
		out[n++] = a;
	}
	freeifaddrs(ifs);
	return n;
}

bool
bench_src_auto(struct bench *b, const struct bench_addr *dst)
{
	const size_t cap = 256;
	size_t n;

	if (b->n_src)
		return true;
	if (b->src_auto)
		return false; /* looked once, found nothing to spread over */
	b->src_auto = true;
	b->src = calloc(cap, sizeof(*b->src));
	if (!b->src)
		return false;
	if (bench_is_loopback4(dst))
		n = bench_src_loopback(b->src, cap);
	else
		n = bench_src_local(dst->ss.ss_family, b->src, cap);
	if (n < 2)
		return false;
	b->n_src = n;
	fprintf(stderr,
	        "mqbench: out of local ports (EADDRNOTAVAIL): binding client "
	        "sockets to %zu local addresses from now on\n",
	        n);
	return true;
}

/* ---- loop callbacks ---- */

static void
bench_on_launch(evutil_socket_t fd, short what, void *arg)
{
	struct bench *b = arg;
	const struct bench_opts *o = b->o;
	uint64_t now = bench_now_us(), due, wait;
	struct timeval tv;
	uint32_t n;

	(void)fd;
	(void)what;
	if (b->phase == BENCH_STOP || b->end != BENCH_END_NONE)
		return;
	due = o->conn_gap_us ? (now - b->t0_us) / o->conn_gap_us + 1
	                     : o->clients;
	for (n = 0; b->n_started < o->clients && b->n_started < due &&
	            n < BENCH_LAUNCH_BATCH;
	     n++)
		cli_start(&b->clis[b->n_started++]);
	if (b->n_started == o->clients) {
		bench_check_end(b);
		return;
	}
	/* client k is due at t0 + k * gap */
	wait = b->n_started < due
	               ? 0
	               : b->t0_us + b->n_started * o->conn_gap_us - now;
	tv.tv_sec = (time_t)(wait / 1000000);
	tv.tv_usec = (suseconds_t)(wait % 1000000);
	event_add(&b->launch_ev, &tv);
}

static void
bench_on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct bench *b = arg;
	uint64_t now = bench_now_ms();
	uint32_t i;

	(void)fd;
	(void)what;
	stats_report(&b->st, b->lines, (double)((now - b->t0_ms + 500) / 1000),
	             (double)(now - b->tick_ms) / 1000.0);
	b->tick_ms = now;
	if (b->phase == BENCH_DRAIN && now - b->drain_ms >= BENCH_DRAIN_MS)
		bench_request_stop(b, BENCH_END_LIMIT);
	if (b->phase == BENCH_STOP)
		return;
	for (i = 0; i < b->n_started; i++)
		cli_tick(&b->clis[i], now);
}

static void
bench_on_stop(evutil_socket_t fd, short what, void *arg)
{
	struct bench *b = arg;
	struct timeval grace = bench_tv_ms(BENCH_GRACE_MS);
	uint32_t i;

	(void)fd;
	(void)what;
	b->stop_pending = false;
	b->phase = BENCH_STOP;
	b->stop_ms = bench_now_ms();
	event_del(&b->launch_ev);
	event_del(&b->dur_ev);
	for (i = 0; i < b->n_started; i++)
		cli_stop(&b->clis[i]);
	if (b->n_open == 0)
		event_base_loopbreak(b->base);
	else
		event_add(&b->grace_ev, &grace);
}

static void
bench_on_duration(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	bench_request_stop(arg, BENCH_END_DURATION);
}

static void
bench_on_grace(evutil_socket_t fd, short what, void *arg)
{
	struct bench *b = arg;

	(void)fd;
	(void)what;
	event_base_loopbreak(b->base);
}

/* The first signal stops the run cleanly, a second one at once. */
static void
bench_on_signal(evutil_socket_t fd, short what, void *arg)
{
	struct bench *b = arg;

	(void)fd;
	(void)what;
	if (b->phase == BENCH_STOP || b->stop_pending)
		event_base_loopbreak(b->base);
	else
		bench_request_stop(b, BENCH_END_SIGNAL);
}

/* ---- start and end ---- */

/* Raises RLIMIT_NOFILE to its hard limit; warns when -c needs more. */
static void
bench_raise_nofile(const struct bench_opts *o)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl))
			getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur < (rlim_t)o->clients + BENCH_FD_SPARE)
		fprintf(stderr,
		        "mqbench: warning: %u clients need more file "
		        "descriptors than the limit of %llu\n",
		        o->clients, (unsigned long long)rl.rlim_cur);
}

static void
bench_assign_events(struct bench *b)
{
	struct event_base *base = b->base;

	event_assign(&b->launch_ev, base, -1, 0, bench_on_launch, b);
	event_assign(&b->tick_ev, base, -1, EV_PERSIST, bench_on_tick, b);
	event_assign(&b->stop_ev, base, -1, 0, bench_on_stop, b);
	event_assign(&b->dur_ev, base, -1, 0, bench_on_duration, b);
	event_assign(&b->grace_ev, base, -1, 0, bench_on_grace, b);
	evsignal_assign(&b->sigint_ev, base, SIGINT, bench_on_signal, b);
	evsignal_assign(&b->sigterm_ev, base, SIGTERM, bench_on_signal, b);
}

static int
bench_init(struct bench *b, const struct bench_opts *o)
{
	struct timeval tv = bench_tv_ms(o->pub_interval_ms);
	size_t i;

	memset(b, 0, sizeof(*b));
	b->o = o;
	stats_init(&b->st);
	buf_init(&b->tmp);
	b->lines = o->json ? stderr : stdout;
	b->hdr_len = opt_hdr_len(o);
	b->payload_len = o->size > b->hdr_len ? o->size : b->hdr_len;
	b->rbuf_len = BENCH_RBUF_SIZE;
	b->base = event_base_new();
	b->clis = calloc(o->clients, sizeof(*b->clis));
	b->rbuf = malloc(b->rbuf_len);
	b->payload = malloc(b->payload_len ? b->payload_len : 1);
	if (!b->base || !b->clis || !b->rbuf || !b->payload)
		return ERR_NOMEM;
	bench_assign_events(b);
	for (i = 0; i < b->payload_len; i++)
		b->payload[i] = (uint8_t)('a' + i % 26);
	for (i = 0; i < o->clients; i++) {
		b->clis[i].b = b;
		b->clis[i].seq = o->start + (uint32_t)i;
		b->clis[i].fd = -1;
	}
	b->src = o->ifaddrs;
	b->n_src = o->n_ifaddrs;
	if (o->cmd == BENCH_PUB && o->pub_interval_ms) {
		b->pub_tv = event_base_init_common_timeout(b->base, &tv);
		if (!b->pub_tv)
			return ERR_NOMEM;
	}
	return 0;
}

static double
bench_tv_s(struct timeval tv)
{
	return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static int
bench_run(struct bench *b)
{
	struct rusage ru;
	struct timeval now = { 0, 0 }, sec = { 1, 0 };
	struct timeval dur = bench_tv_ms(b->o->duration_ms);

	memset(&ru, 0, sizeof(ru));
	getrusage(RUSAGE_SELF, &ru);
	b->cpu0_s = bench_tv_s(ru.ru_utime) + bench_tv_s(ru.ru_stime);
	b->t0_us = bench_now_us();
	b->t0_ms = b->tick_ms = b->t0_us / 1000u;
	if (event_add(&b->tick_ev, &sec) || event_add(&b->launch_ev, &now) ||
	    event_add(&b->sigint_ev, NULL) || event_add(&b->sigterm_ev, NULL))
		return ERR_NOMEM;
	if (b->o->duration_ms && event_add(&b->dur_ev, &dur))
		return ERR_NOMEM;
	if (event_base_dispatch(b->base) < 0)
		return ERR_IO;
	return 0;
}

/* The last report line and the summary. */
static void
bench_summary(struct bench *b)
{
	const struct bench_opts *o = b->o;
	uint64_t now = bench_now_ms();
	uint64_t end = b->stop_ms ? b->stop_ms : now;
	struct stats_run run = { 0 };
	struct rusage ru;

	stats_report(&b->st, b->lines, (double)(end - b->t0_ms) / 1000.0,
	             (double)(now - b->tick_ms) / 1000.0);
	memset(&ru, 0, sizeof(ru));
	getrusage(RUSAGE_SELF, &ru);
	run.cmd = bench_cmd_names[o->cmd];
	run.end = bench_end_names[b->end];
	run.clients = o->clients;
	run.always = 1u << STATS_CONNECT_SUCC | 1u << STATS_CONNECT_FAIL |
	             1u << STATS_CONN_LOST;
	if (o->cmd == BENCH_SUB)
		run.always |= 1u << STATS_SUB | 1u << STATS_RECV;
	if (o->cmd == BENCH_PUB)
		run.always |=
		        1u << STATS_PUB | (o->qos ? 1u << STATS_PUB_SUCC : 0);
	run.elapsed_s = (double)(end - b->t0_ms) / 1000.0;
	run.wall_s = (double)(now - b->t0_ms) / 1000.0;
	run.cpu_user_s = bench_tv_s(ru.ru_utime);
	run.cpu_sys_s = bench_tv_s(ru.ru_stime);
	run.cpu_run_s = run.cpu_user_s + run.cpu_sys_s - b->cpu0_s;
	run.seq = o->cmd == BENCH_SUB && o->hdr_cnt;
	run.lat = o->cmd == BENCH_SUB && o->hdr_ts;
	if (o->json)
		stats_summary_json(&b->st, &run, stdout);
	else
		stats_summary_text(&b->st, &run, stdout);
}

/* The exit status, with one line on stderr for a failed run. */
static int
bench_verdict(const struct bench *b)
{
	const uint64_t *t = b->st.total;

	if (t[STATS_CONNECT_SUCC] == 0) {
		if (b->fail_why[0])
			fprintf(stderr,
			        "mqbench: no client could connect (first "
			        "failure: %s)\n",
			        b->fail_why);
		else
			fprintf(stderr, "mqbench: no client connected before "
			                "the run ended\n");
		return 1;
	}
	if (b->end == BENCH_END_ALL_LOST) {
		fprintf(stderr,
		        "mqbench: all connections were lost (first: %s)\n",
		        b->lost_why);
		return 1;
	}
	if (t[STATS_CONNECT_FAIL])
		fprintf(stderr, "mqbench: note: first connect failure: %s\n",
		        b->fail_why);
	if (t[STATS_CONN_LOST])
		fprintf(stderr, "mqbench: note: first lost connection: %s\n",
		        b->lost_why);
	return 0;
}

static void
bench_fini(struct bench *b)
{
	struct event *evs[] = { &b->launch_ev, &b->tick_ev,  &b->stop_ev,
		                &b->dur_ev,    &b->grace_ev, &b->sigint_ev,
		                &b->sigterm_ev };
	size_t i;

	b->phase = BENCH_STOP; /* closes from here on end nothing */
	for (i = 0; b->clis && i < b->o->clients; i++) {
		cli_abort(&b->clis[i]);
		cli_fini(&b->clis[i]);
	}
	for (i = 0; i < sizeof(evs) / sizeof(evs[0]); i++)
		if (event_initialized(evs[i]))
			event_del(evs[i]);
	if (b->src_auto)
		free(b->src);
	free(b->clis);
	free(b->rbuf);
	free(b->payload);
	buf_fini(&b->tmp);
	stats_fini(&b->st);
	if (b->base)
		event_base_free(b->base);
	memset(b, 0, sizeof(*b));
}

int
main(int argc, char **argv)
{
	struct bench_opts o;
	struct bench b;
	char err[BENCH_WHY_LEN];
	bool help;
	int rc, status = 1;

	rc = opt_parse(&o, argc, argv, &help, err, sizeof(err));
	if (rc || help) {
		if (rc)
			fprintf(stderr, "mqbench: %s\n", err);
		opt_fini(&o);
		return rc ? 1 : 0;
	}
	signal(SIGPIPE, SIG_IGN);
	bench_raise_nofile(&o);
	rc = bench_init(&b, &o);
	if (rc == 0)
		rc = bench_run(&b);
	if (rc) {
		fprintf(stderr, "mqbench: cannot run: %s\n", err_str(rc));
	} else {
		bench_summary(&b);
		status = bench_verdict(&b);
	}
	bench_fini(&b);
	opt_fini(&o);
	return status;
}
