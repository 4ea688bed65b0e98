/*
 * The admin HTTP server: evhttp on the node's loop, bearer-token check,
 * path and query parsing, dispatch through admin_routes[] (admin_api.c),
 * paging of listings and the JSON replies. GET /metrics answers in
 * Prometheus text. Bad requests get a JSON error and an HTTP status.
 */
#include "broker/admin.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <openssl/crypto.h>

#include "broker/admin_int.h"
#include "broker/metrics.h"
#include "broker/node.h"

/* ---- pure helpers ---- */

static int
admin_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
admin_url_decode(const char *in, size_t len, char *out, size_t cap)
{
	size_t i, o = 0;
	int hi, lo;
	char c;

	for (i = 0; i < len; i++) {
		c = in[i];
		if (c == '%') {
			if (i + 2 >= len)
				return ERR_MALFORMED;
			hi = admin_hex(in[i + 1]);
			lo = hi < 0 ? -1 : admin_hex(in[i + 2]);
			if (lo < 0)
				return ERR_MALFORMED;
			c = (char)(hi * 16 + lo);
			i += 2;
		}
		if (c == '\0')
			return ERR_MALFORMED;
		if (o + 1 >= cap)
			return ERR_TOO_LARGE;
		out[o++] = c;
	}
	if (cap == 0)
		return ERR_TOO_LARGE;
	out[o] = '\0';
	return 0;
}

int
admin_path_parse(const char *path, char *coll, size_t coll_cap, char *id,
                 size_t id_cap)
{
	static const char prefix[] = "/api/v1/";
	const char *p, *slash;
	size_t n;

	if (strncmp(path, prefix, sizeof(prefix) - 1) != 0)
		return ERR_NOTFOUND;
	p = path + sizeof(prefix) - 1;
	slash = strchr(p, '/');
	n = slash ? (size_t)(slash - p) : strlen(p);
	if (n == 0)
		return ERR_NOTFOUND;
	if (n >= coll_cap)
		return ERR_TOO_LARGE;
	memcpy(coll, p, n);
	coll[n] = '\0';
	if (!slash) {
		if (id_cap == 0)
			return ERR_TOO_LARGE;
		id[0] = '\0';
		return 0;
	}
	return admin_url_decode(slash + 1, strlen(slash + 1), id, id_cap);
}

/* A decimal number without sign or suffix. @return 0 or ERR_MALFORMED */
static int
admin_num(const char *s, size_t max, size_t *out)
{
	size_t v = 0;

	if (!s[0])
		return ERR_MALFORMED;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return ERR_MALFORMED;
		v = v * 10 + (size_t)(*s - '0');
		if (v > max)
			return ERR_MALFORMED;
	}
	*out = v;
	return 0;
}

int
admin_page_parse(const char *limit, const char *offset, size_t *lim,
                 size_t *off)
{
	*lim = ADMIN_PAGE_DEFAULT;
	*off = 0;
	if (limit && (admin_num(limit, ADMIN_PAGE_MAX, lim) || *lim == 0))
		return ERR_MALFORMED;
	if (offset && admin_num(offset, (size_t)1 << 40, off))
		return ERR_MALFORMED;
	return 0;
}

bool
admin_token_ok(const char *hdr, const char *token)
{
	static const char bearer[] = "Bearer ";
	size_t n = strlen(token);

	if (n == 0)
		return true;
	if (!hdr || strncmp(hdr, bearer, sizeof(bearer) - 1) != 0)
		return false;
	hdr += sizeof(bearer) - 1;
	if (strlen(hdr) != n)
		return false;
	return CRYPTO_memcmp(hdr, token, n) == 0;
}

/* ---- replies ---- */

void
admin_reply(struct evhttp_request *req, int status, json_t *body)
{
	struct evbuffer *out = evbuffer_new();
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);

	json_decref(body);
	if (!out || !text) {
		free(text);
		if (out)
			evbuffer_free(out);
		evhttp_send_error(req, 500, "out of memory");
		return;
	}
	evbuffer_add(out, text, strlen(text));
	evbuffer_add(out, "\n", 1);
	free(text);
	evhttp_add_header(h, "Content-Type", "application/json");
	evhttp_send_reply(req, status,
	                  status == 200   ? "OK"
	                  : status == 202 ? "Accepted"
	                  : status < 500  ? "Client Error"
	                                  : "Server Error",
	                  out);
	evbuffer_free(out);
}

/* Items sort by client id, then topic, then filter, then node. */
static int
admin_item_cmp(const void *pa, const void *pb)
{
	static const char *const keys[] = { "client_id", "topic", "filter",
		                            "node" };
	json_t *a = *(json_t *const *)pa, *b = *(json_t *const *)pb;
	const char *x, *y;
	size_t i;
	int d;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		x = json_string_value(json_object_get(a, keys[i]));
		y = json_string_value(json_object_get(b, keys[i]));
		d = strcmp(x ? x : "", y ? y : "");
		if (d)
			return d;
	}
	return 0;
}

json_t *
admin_page(json_t *items, size_t off, size_t lim)
{
	size_t n = json_array_size(items), i;
	json_t **v, *page, *res;

	v = malloc((n ? n : 1) * sizeof(*v));
	page = json_array();
	res = json_object();
	if (!v || !page || !res) {
		free(v);
		json_decref(page);
		json_decref(res);
		json_decref(items);
		return NULL;
	}
	for (i = 0; i < n; i++)
		v[i] = json_array_get(items, i);
	qsort(v, n, sizeof(*v), admin_item_cmp);
	for (i = off; i < n && i < off + lim; i++)
		json_array_append(page, v[i]);
	free(v);
	json_object_set_new(res, "items", page);
	json_object_set_new(res, "total", json_integer((json_int_t)n));
	json_object_set_new(res, "offset", json_integer((json_int_t)off));
	json_object_set_new(res, "limit", json_integer((json_int_t)lim));
	json_decref(items);
	return res;
}

/* ---- dispatch ---- */

static void
admin_prometheus(struct admin *a, struct evhttp_request *req)
{
	struct evbuffer *out = evbuffer_new();
	struct metrics_snap s;

	if (!out || metrics_collect(a->n, &s) != 0 || metrics_prom(out, &s)) {
		if (out)
			metrics_snap_fini(&s);
		if (out)
			evbuffer_free(out);
		evhttp_send_error(req, 500, "out of memory");
		return;
	}
	metrics_snap_fini(&s);
	evhttp_add_header(evhttp_request_get_output_headers(req),
	                  "Content-Type", "text/plain; version=0.0.4");
	evhttp_send_reply(req, 200, "OK", out);
	evbuffer_free(out);
}

static const char *
admin_method_name(enum evhttp_cmd_type m)
{
	switch (m) {
	case EVHTTP_REQ_GET:
		return "GET";
	case EVHTTP_REQ_POST:
		return "POST";
	case EVHTTP_REQ_DELETE:
		return "DELETE";
	default:
		return "other";
	}
}

/* The route for r, or NULL with *status 404 or 405. */
static const struct admin_route *
admin_route_find(const struct admin_req *r, int *status)
{
	const struct admin_route *rt;
	bool has_id = r->id[0] != '\0';

	*status = 404;
	for (rt = admin_routes; rt->coll; rt++) {
		if (strcmp(rt->coll, r->coll) != 0)
			continue;
		if ((rt->id == 1 && !has_id) || (rt->id == 0 && has_id))
			continue;
		if (rt->method == r->method)
			return rt;
		*status = 405;
	}
	return NULL;
}

/* Parses the URI into r. @return 0, or the HTTP status of the error */
static int
admin_req_parse(struct admin_req *r, const char *uri, const char **why)
{
	struct evhttp_uri *u = evhttp_uri_parse(uri);
	const char *path, *q;
	int rc, status = 0;

	if (!u) {
		*why = "malformed request URI";
		return 400;
	}
	path = evhttp_uri_get_path(u);
	q = evhttp_uri_get_query(u);
	rc = admin_path_parse(path ? path : "", r->coll, sizeof(r->coll), r->id,
	                      ADMIN_ID_MAX + 1);
	if (rc == ERR_NOTFOUND) {
		*why = "no such endpoint";
		status = 404;
	} else if (rc) {
		*why = "malformed path (bad %-escape or too long)";
		status = 400;
	} else if (q && evhttp_parse_query_str(q, &r->query) != 0) {
		*why = "malformed query string";
		status = 400;
	} else if (admin_page_parse(admin_arg(r, "limit"),
	                            admin_arg(r, "offset"), &r->lim, &r->off)) {
		*why = "limit must be 1..1000 and offset a number";
		status = 400;
	}
	evhttp_uri_free(u);
	return status;
}

static void
admin_dispatch(struct admin_req *r)
{
	const struct admin_route *rt;
	json_t *body = NULL;
	int status;

	rt = admin_route_find(r, &status);
	if (!rt) {
		admin_reply(r->req, status,
		            admin_error(status == 405 ? "method not allowed"
		                                      : "no such endpoint"));
		return;
	}
	status = rt->fn(r, &body);
	if (!body) {
		admin_reply(r->req, 500, admin_error("out of memory"));
		return;
	}
	if (r->local || rt->scope == ADMIN_SCOPE_LOCAL ||
	    (rt->scope == ADMIN_SCOPE_PAGE && status != 200)) {
		if (r->local && json_is_array(body))
			body = admin_page(body, 0, (size_t)-1 / 2);
		admin_reply(r->req, status, body);
		return;
	}
	if (rt->scope == ADMIN_SCOPE_PAGE) {
		admin_reply(r->req, 200, admin_page(body, r->off, r->lim));
		return;
	}
	admin_fan_start(r, rt->scope, status, body);
}

static void
admin_on_request(struct evhttp_request *req, void *arg)
{
	struct admin *a = arg;
	struct evkeyvalq *hin = evhttp_request_get_input_headers(req);
	const char *uri = evhttp_request_get_uri(req), *why = NULL;
	struct admin_req r;
	int status;

	if (!admin_token_ok(evhttp_find_header(hin, "Authorization"),
	                    a->n->cfg->admin_token)) {
		evhttp_add_header(evhttp_request_get_output_headers(req),
		                  "WWW-Authenticate", "Bearer");
		admin_reply(req, 401, admin_error("unauthorized"));
		return;
	}
	if (strcmp(uri, "/metrics") == 0 || strncmp(uri, "/metrics?", 9) == 0) {
		if (evhttp_request_get_command(req) != EVHTTP_REQ_GET)
			admin_reply(req, 405,
			            admin_error("method not allowed"));
		else
			admin_prometheus(a, req);
		return;
	}
	memset(&r, 0, sizeof(r));
	TAILQ_INIT(&r.query);
	r.a = a;
	r.req = req;
	r.method = evhttp_request_get_command(req);
	r.local = evhttp_find_header(hin, ADMIN_LOCAL_HDR) != NULL;
	r.id = malloc(ADMIN_ID_MAX + 1);
	if (!r.id) {
		admin_reply(req, 500, admin_error("out of memory"));
		return;
	}
	status = admin_req_parse(&r, uri, &why);
	log_debug("admin request method=%s uri_len=%zu",
	          admin_method_name(r.method), strlen(uri));
	if (status)
		admin_reply(req, status, admin_error(why));
	else
		admin_dispatch(&r);
	evhttp_clear_headers(&r.query);
	free(r.id);
}

/* ---- start / stop ---- */

void
admin_addr_for(const struct node *n, char *buf, size_t len)
{
	const struct config *cfg = n->cfg;
	const char *host = cfg->admin_bind;
	char name[256];

	if (!host[0] || strcmp(host, "0.0.0.0") == 0 ||
	    strcmp(host, "::") == 0) {
		if (gethostname(name, sizeof(name)) != 0)
			snprintf(name, sizeof(name), "localhost");
		name[sizeof(name) - 1] = '\0';
		host = name;
	}
	snprintf(buf, len, strchr(host, ':') ? "[%s]:%u" : "%s:%u", host,
	         (unsigned)cfg->admin_port);
}

static void
admin_on_reap(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	admin_fan_reap(arg);
}

int
admin_start(struct node *n)
{
	const struct config *cfg = n->cfg;
	struct admin *a;

	a = calloc(1, sizeof(*a));
	if (!a)
		return ERR_NOMEM;
	a->n = n;
	a->http = evhttp_new(n->base);
	a->reap_ev = event_new(n->base, -1, 0, admin_on_reap, a);
	if (!a->http || !a->reap_ev) {
		if (a->http)
			evhttp_free(a->http);
		if (a->reap_ev)
			event_free(a->reap_ev);
		free(a);
		return ERR_NOMEM;
	}
	evhttp_set_max_body_size(a->http, ADMIN_BODY_MAX);
	evhttp_set_max_headers_size(a->http, 16 * 1024);
	evhttp_set_timeout(a->http, 30);
	evhttp_set_allowed_methods(a->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST |
	                                            EVHTTP_REQ_DELETE);
	evhttp_set_gencb(a->http, admin_on_request, a);
	if (evhttp_bind_socket(a->http,
	                       cfg->admin_bind[0] ? cfg->admin_bind : "0.0.0.0",
	                       cfg->admin_port) != 0) {
		log_error("cannot listen for the admin API bind=%s port=%u "
		          "err=\"%s\"",
		          cfg->admin_bind, cfg->admin_port, strerror(errno));
		evhttp_free(a->http);
		event_free(a->reap_ev);
		free(a);
		return ERR_IO;
	}
	admin_addr_for(n, a->addr, sizeof(a->addr));
	n->admin = a;
	log_info("admin API listening bind=%s port=%u token=%s",
	         cfg->admin_bind, cfg->admin_port,
	         cfg->admin_token[0] ? "yes" : "no");
	return 0;
}

void
admin_stop(struct node *n)
{
	struct admin *a = n ? n->admin : NULL;

	if (!a)
		return;
	admin_fan_stop_all(a);
	evhttp_free(a->http);
	event_free(a->reap_ev);
	if (a->dns)
		evdns_base_free(a->dns, 0); /* its connections are gone */
	free(a);
	n->admin = NULL;
}
