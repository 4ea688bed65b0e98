/*
 * mqbench's command line: the subcommands conn, sub and pub with
 * emqtt-bench's flags, defaults and --help, checked and turned into a
 * struct bench_opts (hosts resolved, --ifaddr parsed) before anything
 * connects. Also the -t template expansion shared by all clients.
 */
#include "tools/mqbench/bench_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>

#define OPT_CONN (1u << BENCH_CONN)
#define OPT_SUB  (1u << BENCH_SUB)
#define OPT_PUB  (1u << BENCH_PUB)
#define OPT_ALL  (OPT_CONN | OPT_SUB | OPT_PUB)

/* The largest -s: a PUBLISH must fit MQTT's remaining length with room
 * for a long topic. */
#define OPT_SIZE_MAX (MQTT_MAX_REMAINING - 131072u)

enum opt_id {
	OPT_HOST,
	OPT_PORT,
	OPT_VERSION,
	OPT_COUNT,
	OPT_START,
	OPT_INTERVAL,
	OPT_CONNRATE,
	OPT_USER,
	OPT_PASS,
	OPT_KEEPALIVE,
	OPT_CLEAN,
	OPT_EXPIRY,
	OPT_PREFIX,
	OPT_IFADDR,
	OPT_TOPIC,
	OPT_QOS,
	OPT_SIZE,
	OPT_RETAIN,
	OPT_PUB_INTERVAL,
	OPT_INFLIGHT,
	OPT_LIMIT,
	OPT_HDRS,
	OPT_DURATION,
	OPT_JSON,
	OPT_HELP,
};

enum opt_kind {
	OPT_K_UINT, /* decimal within [min, max] */
	OPT_K_STR,  /* any text */
	OPT_K_BOOL, /* alone = true, or followed by true / false */
	OPT_K_FLAG, /* takes no value */
};

struct opt_def {
	enum opt_id id;
	char short_name; /* 0: long form only */
	const char *long_name;
	enum opt_kind kind;
	unsigned cmds; /* OPT_CONN | OPT_SUB | OPT_PUB */
	uint64_t min;
	uint64_t max;
	const char *arg;  /* value name in --help */
	const char *help; /* ends with the default, if any */
};

/* In --help order. A flag whose meaning differs by subcommand has one
 * entry per meaning; the first entry for the subcommand wins. */
static const struct opt_def opt_defs[] = {
	{ OPT_HOST, 'h', "host", OPT_K_STR, OPT_ALL, 0, 0, "HOST[,HOST...]",
	  "broker host; a list spreads clients round-robin (localhost)" },
	{ OPT_PORT, 'p', "port", OPT_K_UINT, OPT_ALL, 1, 65535, "PORT",
	  "broker port (1883)" },
	{ OPT_VERSION, 'V', "version", OPT_K_UINT, OPT_ALL, 3, 5, "3|4|5",
	  "MQTT 3.1, 3.1.1 or 5.0 (5)" },
	{ OPT_COUNT, 'c', "count", OPT_K_UINT, OPT_ALL, 1, 10000000, "N",
	  "number of clients (200)" },
	{ OPT_START, 'n', "startnumber", OPT_K_UINT, OPT_ALL, 0, UINT32_MAX,
	  "N", "sequence number of the first client (0)" },
	{ OPT_INTERVAL, 'i', "interval", OPT_K_UINT, OPT_ALL, 0, 86400000, "MS",
	  "milliseconds between two connects (10)" },
	{ OPT_CONNRATE, 'R', "connrate", OPT_K_UINT, OPT_ALL, 0, 10000000, "N",
	  "connects per second, instead of -i (0 = use -i)" },
	{ OPT_USER, 'u', "username", OPT_K_STR, OPT_ALL, 0, 0, "USER",
	  "user name" },
	{ OPT_PASS, 'P', "password", OPT_K_STR, OPT_ALL, 0, 0, "PASS",
	  "password" },
	{ OPT_KEEPALIVE, 'k', "keepalive", OPT_K_UINT, OPT_ALL, 0, 65535,
	  "SECONDS", "keepalive, 0 = off (300)" },
	{ OPT_CLEAN, 'C', "clean", OPT_K_BOOL, OPT_ALL, 0, 0, "[true|false]",
	  "clean start / clean session (true)" },
	{ OPT_EXPIRY, 'x', "session-expiry", OPT_K_UINT, OPT_ALL, 0, UINT32_MAX,
	  "SECONDS", "session expiry interval, MQTT 5 only (0)" },
	{ OPT_PREFIX, 0, "prefix", OPT_K_STR, OPT_ALL, 0, 0, "PREFIX",
	  "client id prefix: the id is PREFIX_N (mqbench)" },
	{ OPT_IFADDR, 0, "ifaddr", OPT_K_STR, OPT_ALL, 0, 0, "ADDR[,ADDR...]",
	  "bind client sockets round-robin to these local addresses" },
	{ OPT_TOPIC, 't', "topic", OPT_K_STR, OPT_SUB, 0, 0, "FILTER",
	  "filter each client subscribes to; %i = client number, "
	  "%c = client id (required)" },
	{ OPT_TOPIC, 't', "topic", OPT_K_STR, OPT_PUB, 0, 0, "TOPIC",
	  "topic to publish to; %i = client number, %c = client id "
	  "(required)" },
	{ OPT_QOS, 'q', "qos", OPT_K_UINT, OPT_SUB, 0, 2, "0|1|2",
	  "subscription QoS (0)" },
	{ OPT_QOS, 'q', "qos", OPT_K_UINT, OPT_PUB, 0, 2, "0|1|2",
	  "publish QoS (0)" },
	{ OPT_SIZE, 's', "size", OPT_K_UINT, OPT_PUB, 0, OPT_SIZE_MAX, "BYTES",
	  "payload size, at least the payload headers (256)" },
	{ OPT_RETAIN, 'r', "retain", OPT_K_BOOL, OPT_PUB, 0, 0, "[true|false]",
	  "publish retained (false)" },
	{ OPT_PUB_INTERVAL, 'I', "interval_of_msg", OPT_K_UINT, OPT_PUB, 0,
	  86400000, "MS",
	  "milliseconds between publishes of a client, 0 = as fast as the "
	  "in-flight window allows (1000)" },
	{ OPT_INFLIGHT, 'F', "inflight", OPT_K_UINT, OPT_PUB, 0, 65535, "N",
	  "unacked QoS 1/2 publishes per client, 0 = as many as the broker "
	  "allows (1)" },
	{ OPT_LIMIT, 'L', "limit", OPT_K_UINT, OPT_SUB, 0, UINT64_MAX / 2, "N",
	  "exit after receiving N messages in total, 0 = no limit (0)" },
	{ OPT_LIMIT, 'L', "limit", OPT_K_UINT, OPT_PUB, 0, UINT64_MAX / 2, "N",
	  "stop after publishing N messages in total, 0 = no limit (0)" },
	{ OPT_HDRS, 0, "payload-hdrs", OPT_K_STR, OPT_SUB, 0, 0, "cnt64,ts",
	  "check these payload headers: cnt64 counts lost, duplicate and "
	  "out-of-order messages, ts measures latency" },
	{ OPT_HDRS, 0, "payload-hdrs", OPT_K_STR, OPT_PUB, 0, 0, "cnt64,ts",
	  "start payloads with a publisher id and counter (cnt64) and/or the "
	  "send time (ts)" },
	{ OPT_DURATION, 0, "duration", OPT_K_STR, OPT_ALL, 0, 0, "SECONDS",
	  "stop after this long and print the summary" },
	{ OPT_JSON, 0, "json", OPT_K_FLAG, OPT_ALL, 0, 0, NULL,
	  "summary as one JSON object on stdout; per-second lines on stderr" },
	{ OPT_HELP, 0, "help", OPT_K_FLAG, OPT_ALL, 0, 0, NULL, "this help" },
};

#define OPT_N_DEFS (sizeof(opt_defs) / sizeof(opt_defs[0]))

static const char *const opt_cmd_names[] = { "conn", "sub", "pub" };

/* State of one parse: what needs work after all flags are read. */
struct opt_ctx {
	struct bench_opts *o;
	const char *cmd;    /* subcommand name */
	const char *hosts;  /* -h as given */
	const char *ifaddr; /* --ifaddr as given, or NULL */
	const char *hdrs;   /* --payload-hdrs as given, or NULL */
	const char *dur;    /* --duration as given, or NULL */
	uint64_t interval;  /* -i */
	uint64_t rate;      /* -R */
	bool help;          /* --help seen */
	char *err;
	size_t errlen;
};

static int opt_fail(struct opt_ctx *x, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

static int
opt_fail(struct opt_ctx *x, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(x->err, x->errlen, fmt, ap);
	va_end(ap);
	return ERR_MALFORMED;
}

static void
opt_defaults(struct bench_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->port = 1883;
	o->clients = 200;
	o->pub_interval_ms = 1000;
	o->size = 256;
	o->version = MQTT_V5;
	o->keepalive = 300;
	o->clean = true;
	o->inflight = 1;
	o->prefix = "mqbench";
}

/* Prints @p text indented by 8 columns, wrapped at word ends before
 * column 80. */
static void
opt_help_text(const char *text)
{
	const size_t width = 71;
	const char *p = text, *cut, *sp;

	while (strlen(p) > width) {
		cut = NULL;
		for (sp = strchr(p, ' '); sp && (size_t)(sp - p) <= width;
		     sp = strchr(sp + 1, ' '))
			cut = sp;
		if (!cut)
			break;
		printf("        %.*s\n", (int)(cut - p), p);
		p = cut + 1;
	}
	printf("        %s\n", p);
}

static void
opt_help(const char *cmd, unsigned mask)
{
	size_t i;

	printf("usage: mqbench %s [options]\n\noptions:\n", cmd);
	for (i = 0; i < OPT_N_DEFS; i++) {
		const struct opt_def *d = &opt_defs[i];

		if (!(d->cmds & mask))
			continue;
		if (d->short_name)
			printf("  -%c, ", d->short_name);
		else
			printf("      ");
		printf("--%s%s%s\n", d->long_name, d->arg ? " " : "",
		       d->arg ? d->arg : "");
		opt_help_text(d->help);
	}
}

/* The entry for flag @p name (a short name when @p len is 0). */
static const struct opt_def *
opt_find(const char *name, size_t len, unsigned mask, bool *other_cmd)
{
	size_t i;

	*other_cmd = false;
	for (i = 0; i < OPT_N_DEFS; i++) {
		const struct opt_def *d = &opt_defs[i];
		bool hit = len ? strlen(d->long_name) == len &&
		                           !memcmp(d->long_name, name, len)
		               : d->short_name && d->short_name == name[0];

		if (!hit)
			continue;
		if (d->cmds & mask)
			return d;
		*other_cmd = true;
	}
	return NULL;
}

static int
opt_uint(struct opt_ctx *x, const struct opt_def *d, const char *v,
         uint64_t *out)
{
	unsigned long long n;
	char *end;

	errno = 0;
	n = strtoull(v, &end, 10);
	if (!*v || *end || errno || v[0] == '-' || n < d->min || n > d->max)
		return opt_fail(x,
		                "%s: --%s wants a number from %" PRIu64
		                " to %" PRIu64 ", not '%s'",
		                x->cmd, d->long_name, d->min, d->max, v);
	*out = n;
	return 0;
}

static int
opt_bool(struct opt_ctx *x, const struct opt_def *d, const char *v, bool *out)
{
	if (!v || !strcmp(v, "true")) {
		*out = true;
		return 0;
	}
	if (!strcmp(v, "false")) {
		*out = false;
		return 0;
	}
	return opt_fail(x, "%s: --%s wants true or false, not '%s'", x->cmd,
	                d->long_name, v);
}

/* Stores one flag's value (NULL for a bool or flag given alone). */
static int
opt_apply(struct opt_ctx *x, const struct opt_def *d, const char *v)
{
	struct bench_opts *o = x->o;
	uint64_t n = 0;
	int rc;

	if (d->kind == OPT_K_UINT && (rc = opt_uint(x, d, v, &n)))
		return rc;
	switch (d->id) {
	case OPT_HOST:
		x->hosts = v;
		break;
	case OPT_PORT:
		o->port = (uint16_t)n;
		break;
	case OPT_VERSION:
		o->version = (uint8_t)n;
		break;
	case OPT_COUNT:
		o->clients = (uint32_t)n;
		break;
	case OPT_START:
		o->start = (uint32_t)n;
		break;
	case OPT_INTERVAL:
		x->interval = n;
		break;
	case OPT_CONNRATE:
		x->rate = n;
		break;
	case OPT_USER:
		o->username = v;
		break;
	case OPT_PASS:
		o->password = v;
		break;
	case OPT_KEEPALIVE:
		o->keepalive = (uint16_t)n;
		break;
	case OPT_CLEAN:
		return opt_bool(x, d, v, &o->clean);
	case OPT_EXPIRY:
		o->has_expiry = true;
		o->expiry = (uint32_t)n;
		break;
	case OPT_PREFIX:
		o->prefix = v;
		break;
	case OPT_IFADDR:
		x->ifaddr = v;
		break;
	case OPT_TOPIC:
		o->topic = v;
		break;
	case OPT_QOS:
		o->qos = (uint8_t)n;
		break;
	case OPT_SIZE:
		o->size = (size_t)n;
		break;
	case OPT_RETAIN:
		return opt_bool(x, d, v, &o->retain);
	case OPT_PUB_INTERVAL:
		o->pub_interval_ms = (uint32_t)n;
		break;
	case OPT_INFLIGHT:
		o->inflight = (uint16_t)n;
		break;
	case OPT_LIMIT:
		o->limit = n;
		break;
	case OPT_HDRS:
		x->hdrs = v;
		break;
	case OPT_DURATION:
		x->dur = v;
		break;
	case OPT_JSON:
		o->json = true;
		break;
	case OPT_HELP:
		x->help = true;
		break;
	}
	return 0;
}

/*
 * One flag at argv[*i]: "--name", "--name=value", "--name value", "-X",
 * "-Xvalue", "-X value". A bool takes the next argument unless that is a
 * flag. @p i is moved past a value taken from the next argument.
 */
static int
opt_one(struct opt_ctx *x, unsigned mask, int argc, char **argv, int *i)
{
	const char *a = argv[*i], *name = a + 1, *v = NULL, *eq;
	const struct opt_def *d;
	size_t len = 0;
	bool other = false;

	if (a[1] == '-') {
		name = a + 2;
		eq = strchr(name, '=');
		len = eq ? (size_t)(eq - name) : strlen(name);
		v = eq ? eq + 1 : NULL;
	} else if (a[1] && a[2]) {
		v = a + 2;
	}
	d = len || a[1] != '-' ? opt_find(name, len, mask, &other) : NULL;
	if (!d && other)
		return opt_fail(x, "%s: option %s is not used by %s", x->cmd, a,
		                x->cmd);
	if (!d)
		return opt_fail(x,
		                "%s: unknown option %s; see mqbench %s --help",
		                x->cmd, a, x->cmd);
	if (d->kind == OPT_K_FLAG && v)
		return opt_fail(x, "%s: --%s takes no value", x->cmd,
		                d->long_name);
	if (!v && d->kind == OPT_K_BOOL && *i + 1 < argc &&
	    argv[*i + 1][0] != '-')
		v = argv[++*i];
	else if (!v && (d->kind == OPT_K_UINT || d->kind == OPT_K_STR)) {
		if (*i + 1 >= argc)
			return opt_fail(x, "%s: %s needs a value", x->cmd, a);
		v = argv[++*i];
	}
	return opt_apply(x, d, v);
}

static void
opt_addr_name(struct bench_addr *a)
{
	char host[INET6_ADDRSTRLEN] = "?";
	const struct sockaddr_in *s4 = (const struct sockaddr_in *)&a->ss;
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&a->ss;

	if (a->ss.ss_family == AF_INET) {
		inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
		snprintf(a->name, sizeof(a->name), "%s:%u", host,
		         ntohs(s4->sin_port));
	} else {
		inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
		snprintf(a->name, sizeof(a->name), "[%s]:%u", host,
		         ntohs(s6->sin6_port));
	}
}

/* Splits a comma-separated list in place-free fashion: the next item of
 * @p *p into @p item (NUL-terminated), moving @p *p past it.
 * @return false at the end of the list */
static bool
opt_next_item(const char **p, char *item, size_t cap)
{
	const char *s = *p, *e;
	size_t n;

	while (*s == ',' || *s == ' ')
		s++;
	if (!*s)
		return false;
	e = strchr(s, ',');
	n = e ? (size_t)(e - s) : strlen(s);
	while (n && s[n - 1] == ' ')
		n--;
	if (n >= cap)
		n = cap - 1;
	memcpy(item, s, n);
	item[n] = '\0';
	*p = e ? e : s + strlen(s);
	return true;
}

static size_t
opt_count_items(const char *s)
{
	char item[256];
	size_t n = 0;

	while (opt_next_item(&s, item, sizeof(item)))
		n++;
	return n;
}

/* Resolves one host; an IPv4 address is preferred over IPv6. */
static int
opt_resolve(struct opt_ctx *x, const char *host, struct bench_addr *a)
{
	struct addrinfo hints = { 0 }, *res, *ai, *pick;
	char port[8];
	int rc;

	hints.ai_socktype = SOCK_STREAM;
	snprintf(port, sizeof(port), "%u", x->o->port);
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc) {
		snprintf(x->err, x->errlen, "cannot resolve host '%s': %s",
		         host, gai_strerror(rc));
		return ERR_NOTFOUND;
	}
	pick = res;
	for (ai = res; ai; ai = ai->ai_next) {
		if (ai->ai_family == AF_INET) {
			pick = ai;
			break;
		}
	}
	memcpy(&a->ss, pick->ai_addr, pick->ai_addrlen);
	a->len = pick->ai_addrlen;
	opt_addr_name(a);
	freeaddrinfo(res);
	return 0;
}

static int
opt_hosts(struct opt_ctx *x)
{
	struct bench_opts *o = x->o;
	const char *p = x->hosts;
	char item[256];
	int rc;

	o->n_hosts = opt_count_items(p);
	if (o->n_hosts == 0)
		return opt_fail(x, "%s: -h names no host", x->cmd);
	o->hosts = calloc(o->n_hosts, sizeof(*o->hosts));
	if (!o->hosts)
		return ERR_NOMEM;
	for (o->n_hosts = 0; opt_next_item(&p, item, sizeof(item));
	     o->n_hosts++) {
		rc = opt_resolve(x, item, &o->hosts[o->n_hosts]);
		if (rc)
			return rc;
	}
	return 0;
}

static int
opt_ifaddrs(struct opt_ctx *x)
{
	struct bench_opts *o = x->o;
	const char *p = x->ifaddr;
	struct bench_addr *a;
	char item[256];

	o->n_ifaddrs = opt_count_items(p);
	if (o->n_ifaddrs == 0)
		return opt_fail(x, "%s: --ifaddr names no address", x->cmd);
	o->ifaddrs = calloc(o->n_ifaddrs, sizeof(*o->ifaddrs));
	if (!o->ifaddrs)
		return ERR_NOMEM;
	for (a = o->ifaddrs; opt_next_item(&p, item, sizeof(item)); a++) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&a->ss;
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&a->ss;

		if (inet_pton(AF_INET, item, &s4->sin_addr) == 1) {
			s4->sin_family = AF_INET;
			a->len = sizeof(*s4);
		} else if (inet_pton(AF_INET6, item, &s6->sin6_addr) == 1) {
			s6->sin6_family = AF_INET6;
			a->len = sizeof(*s6);
		} else {
			return opt_fail(x,
			                "%s: --ifaddr: '%s' is not an IP "
			                "address",
			                x->cmd, item);
		}
		opt_addr_name(a);
	}
	return 0;
}

static int
opt_payload_hdrs(struct opt_ctx *x)
{
	const char *p = x->hdrs;
	char item[32];

	while (opt_next_item(&p, item, sizeof(item))) {
		if (!strcmp(item, "cnt64"))
			x->o->hdr_cnt = true;
		else if (!strcmp(item, "ts"))
			x->o->hdr_ts = true;
		else
			return opt_fail(x,
			                "%s: --payload-hdrs: unknown header "
			                "'%s' (cnt64, ts)",
			                x->cmd, item);
	}
	return 0;
}

static int
opt_duration(struct opt_ctx *x)
{
	char *end;
	double d;

	errno = 0;
	d = strtod(x->dur, &end);
	if (!*x->dur || *end || errno || !(d > 0) || d > 1e9)
		return opt_fail(x,
		                "%s: --duration wants seconds above 0, "
		                "not '%s'",
		                x->cmd, x->dur);
	x->o->duration_ms = (uint64_t)(d * 1000.0 + 0.5);
	if (x->o->duration_ms == 0)
		x->o->duration_ms = 1;
	return 0;
}

/* The first client's topic and id, as a check of -t and --prefix. */
static int
opt_check_ids(struct opt_ctx *x)
{
	const struct bench_opts *o = x->o;
	struct mqtt_bytes t, id;
	char cid[300];
	struct buf b;
	int rc;

	if (strlen(o->prefix) > 256)
		return opt_fail(x, "%s: --prefix is longer than 256 bytes",
		                x->cmd);
	snprintf(cid, sizeof(cid), "%s_%" PRIu32, o->prefix, o->start);
	id = (struct mqtt_bytes){ (const uint8_t *)cid, strlen(cid) };
	if (mqtt_client_id_check(o->version, o->clean, id))
		return opt_fail(x,
		                "%s: client id '%s' is not valid for MQTT "
		                "level %u (3.1 allows 23 bytes)",
		                x->cmd, cid, o->version);
	if (o->cmd == BENCH_CONN)
		return 0;
	if (!o->topic)
		return opt_fail(x, "%s: a topic (-t) is required", x->cmd);
	buf_init(&b);
	rc = opt_topic_expand(&b, o->topic, cid, o->start);
	t = (struct mqtt_bytes){ b.data, b.len };
	if (rc == 0 && (b.len > 65535 ||
	                (o->cmd == BENCH_PUB ? !mqtt_topic_name_is_valid(t)
	                                     : !mqtt_topic_filter_is_valid(t))))
		rc = opt_fail(x, "%s: '%s' is not a valid topic %s", x->cmd,
		              o->topic,
		              o->cmd == BENCH_PUB ? "name" : "filter");
	buf_fini(&b);
	return rc;
}

/* Checks the flags against each other and fills the derived fields. */
static int
opt_finish(struct opt_ctx *x)
{
	struct bench_opts *o = x->o;
	int rc;

	if ((uint64_t)o->start + o->clients - 1 > UINT32_MAX)
		return opt_fail(x, "%s: -n plus -c passes 2^32", x->cmd);
	if (o->version != MQTT_V5 && o->has_expiry)
		return opt_fail(x,
		                "%s: session expiry (-x) needs MQTT 5 (-V 5)",
		                x->cmd);
	if (o->version != MQTT_V5 && o->password && !o->username)
		return opt_fail(x,
		                "%s: a password (-P) needs a user name (-u) "
		                "before MQTT 5",
		                x->cmd);
	o->conn_gap_us = x->rate ? 1000000 / x->rate : x->interval * 1000;
	if (x->hdrs && (rc = opt_payload_hdrs(x)))
		return rc;
	if (x->dur && (rc = opt_duration(x)))
		return rc;
	if ((rc = opt_check_ids(x)))
		return rc;
	if (x->ifaddr && (rc = opt_ifaddrs(x)))
		return rc;
	return opt_hosts(x);
}

int
opt_parse(struct bench_opts *o, int argc, char **argv, bool *help, char *err,
          size_t errlen)
{
	struct opt_ctx x = { .o = o,
		             .hosts = "localhost",
		             .interval = 10,
		             .err = err,
		             .errlen = errlen };
	unsigned mask;
	int i, rc;

	opt_defaults(o);
	*help = false;
	if (argc < 2)
		return opt_fail(&x, "no subcommand (conn, sub, pub); see "
		                    "mqbench --help");
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		printf("usage: mqbench conn|sub|pub [options]\n"
		       "  conn  connect clients and hold the connections\n"
		       "  sub   connect clients that subscribe and count what "
		       "they receive\n"
		       "  pub   connect clients that publish\n"
		       "mqbench CMD --help lists the options of CMD\n");
		*help = true;
		return 0;
	}
	for (i = 0; i < 3 && strcmp(argv[1], opt_cmd_names[i]); i++)
		;
	if (i == 3)
		return opt_fail(&x, "unknown subcommand '%s' (conn, sub, pub)",
		                argv[1]);
	o->cmd = (enum bench_cmd)i;
	x.cmd = opt_cmd_names[i];
	mask = 1u << i;
	for (i = 2; i < argc; i++) {
		if (argv[i][0] != '-' || !argv[i][1])
			return opt_fail(&x, "%s: unexpected argument '%s'",
			                x.cmd, argv[i]);
		rc = opt_one(&x, mask, argc, argv, &i);
		if (rc)
			return rc;
	}
	if (x.help) {
		opt_help(x.cmd, mask);
		*help = true;
		return 0;
	}
	return opt_finish(&x);
}

void
opt_fini(struct bench_opts *o)
{
	free(o->hosts);
	free(o->ifaddrs);
	o->hosts = NULL;
	o->ifaddrs = NULL;
	o->n_hosts = 0;
	o->n_ifaddrs = 0;
}

int
opt_topic_expand(struct buf *b, const char *tmpl, const char *client_id,
                 uint32_t seq)
{
	char num[16];
	const char *p;

	for (p = tmpl; *p; p++) {
		if (p[0] != '%' ||
		    (p[1] != 'i' && p[1] != 'c' && p[1] != '%')) {
			buf_put_u8(b, (uint8_t)*p);
			continue;
		}
		p++;
		if (*p == 'i') {
			snprintf(num, sizeof(num), "%" PRIu32, seq);
			buf_put_bytes(b, num, strlen(num));
		} else if (*p == 'c') {
			buf_put_bytes(b, client_id, strlen(client_id));
		} else {
			buf_put_u8(b, '%');
		}
	}
	return buf_failed(b) ? ERR_NOMEM : 0;
}

size_t
opt_hdr_len(const struct bench_opts *o)
{
	return (o->hdr_cnt ? BENCH_HDR_CNT_LEN : 0) +
	       (o->hdr_ts ? BENCH_HDR_TS_LEN : 0);
}
