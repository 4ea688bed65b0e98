/*
 * Cluster-wide admin answers: the node asked sends the same request to
 * every alive peer's admin API (evhttp client, ADMIN_PEER_TIMEOUT_S, the
 * same token, ADMIN_LOCAL_HDR so the peer answers from its own state) and
 * answers once all have answered or failed: the first hit for a client or
 * session held elsewhere, the merged items of a listing, or every node's
 * view of the cluster. Peers that did not answer are named in
 * "unreachable".
 */
#include "broker/admin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>

#include "broker/admin_int.h"
#include "broker/node.h"
#include "cluster/cluster.h"

/* One request to one peer. */
struct admin_call {
	struct admin_call *next;
	struct admin_fan *f; /* NULL once the fan-out is dropped */
	struct evhttp_connection *evcon;
	char node[256];
};

struct admin_fan {
	struct admin_fan *next; /* a->fans */
	struct admin *a;
	struct evhttp_request *req;       /* origin, NULL once it is gone */
	struct evhttp_connection *origin; /* its connection */
	enum admin_scope scope;
	int status;      /* answer so far */
	json_t *body;    /* answer so far (FIRST, VIEWS) */
	json_t *items;   /* MERGE: items of every node */
	json_t *views;   /* VIEWS: node name -> its answer */
	json_t *unreach; /* names of peers that failed */
	size_t lim;
	size_t off;
	struct admin_call *calls; /* pending */
	size_t pending;
};

static void
admin_fan_free(struct admin_fan *f)
{
	struct admin_fan **pp;

	for (pp = &f->a->fans; *pp; pp = &(*pp)->next)
		if (*pp == f) {
			*pp = f->next;
			break;
		}
	if (f->req && f->origin)
		evhttp_connection_set_closecb(f->origin, NULL, NULL);
	json_decref(f->body);
	json_decref(f->items);
	json_decref(f->views);
	json_decref(f->unreach);
	free(f);
}

static void
admin_fan_finish(struct admin_fan *f)
{
	json_t *res = f->body;
	int status = f->status;

	f->body = NULL;
	if (f->scope == ADMIN_SCOPE_MERGE) {
		json_decref(res);
		res = admin_page(f->items, f->off, f->lim);
		f->items = NULL;
		status = 200;
	} else if (f->scope == ADMIN_SCOPE_VIEWS && res) {
		json_object_set(res, "views", f->views);
	}
	if (res && json_array_size(f->unreach) > 0)
		json_object_set(res, "unreachable", f->unreach);
	if (f->req) {
		evhttp_connection_set_closecb(f->origin, NULL, NULL);
		if (res)
			admin_reply(f->req, status, res);
		else
			admin_reply(f->req, 500, admin_error("out of memory"));
		res = NULL;
		f->req = NULL;
	}
	json_decref(res);
	admin_fan_free(f);
}

/* The origin client went away: answer no one, but let the calls end. */
static void
admin_fan_origin_closed(struct evhttp_connection *evcon, void *arg)
{
	struct admin_fan *f = arg;

	(void)evcon;
	f->req = NULL;
}

/* A peer's answer (@p body may be NULL: it failed or was not JSON). */
static void
admin_fan_take(struct admin_fan *f, const char *node, int status, json_t *body)
{
	json_t *items, *v;
	size_t i;

	if (!body || status == 0 || status >= 500 || status == 401) {
		json_array_append_new(f->unreach, admin_str(node));
		return;
	}
	switch (f->scope) {
	case ADMIN_SCOPE_FIRST:
		if (status >= 200 && status < 300 && f->status == 404) {
			json_decref(f->body);
			f->body = json_incref(body);
			f->status = status;
		}
		break;
	case ADMIN_SCOPE_MERGE:
		items = json_object_get(body, "items");
		json_array_foreach(items, i, v) json_array_append(f->items, v);
		break;
	case ADMIN_SCOPE_VIEWS:
		json_object_set(f->views, node, body);
		break;
	default:
		break;
	}
}

static void
admin_call_done(struct evhttp_request *resp, void *arg)
{
	struct admin_call *call = arg, **pp;
	struct admin_fan *f = call->f;
	struct evbuffer *in;
	json_t *body = NULL;
	int status = 0;

	if (!f)
		return; /* dropped: admin_fan_stop_all frees the call */
	if (resp) {
		status = evhttp_request_get_response_code(resp);
		in = evhttp_request_get_input_buffer(resp);
		if (status > 0 && evbuffer_get_length(in) > 0)
			body = json_loadb((const char *)evbuffer_pullup(in, -1),
			                  evbuffer_get_length(in), 0, NULL);
	}
	admin_fan_take(f, call->node, status, body);
	json_decref(body);
	for (pp = &f->calls; *pp; pp = &(*pp)->next)
		if (*pp == call) {
			*pp = call->next;
			break;
		}
	/* libevent still uses the connection after this callback: it is
	 * freed from the reap event */
	call->f = NULL;
	call->next = f->a->done;
	f->a->done = call;
	event_active(f->a->reap_ev, EV_TIMEOUT, 0);
	if (--f->pending == 0)
		admin_fan_finish(f);
}

/* Splits "host:port" / "[v6]:port". @return 0 or -1 */
static int
admin_split(const char *addr, char *host, size_t cap, uint16_t *port)
{
	const char *c = strrchr(addr, ':');
	const char *h = addr;
	size_t n;
	long p;

	if (!c)
		return -1;
	n = (size_t)(c - addr);
	if (n >= 2 && addr[0] == '[' && addr[n - 1] == ']') {
		h++;
		n -= 2;
	}
	p = strtol(c + 1, NULL, 10);
	if (n == 0 || n >= cap || p <= 0 || p > 65535)
		return -1;
	memcpy(host, h, n);
	host[n] = '\0';
	*port = (uint16_t)p;
	return 0;
}

/* Sends f's request to member @p m. @return 0, or -1 (not sent) */
static int
admin_call_start(struct admin_fan *f, const struct cluster_member *m)
{
	struct admin *a = f->a;
	struct admin_call *call;
	struct evhttp_request *rq;
	struct evkeyvalq *h;
	char host[300], auth[1100];
	uint16_t port;

	if (admin_split(m->admin_addr, host, sizeof(host), &port))
		return -1;
	call = calloc(1, sizeof(*call));
	if (!call)
		return -1;
	snprintf(call->node, sizeof(call->node), "%s", m->name);
	call->f = f;
	if (!a->dns) {
		/* a peer's admin address may be a host name: resolved
		 * asynchronously (a blocking lookup of a stopped container's
		 * name took 20 s in a test), from the name servers or, without
		 * a resolv.conf, /etc/hosts */
		a->dns = evdns_base_new(
		        a->n->base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
		                            EVDNS_BASE_DISABLE_WHEN_INACTIVE);
		if (!a->dns) {
			a->dns = evdns_base_new(
			        a->n->base, EVDNS_BASE_DISABLE_WHEN_INACTIVE);
			if (a->dns)
				(void)evdns_base_load_hosts(a->dns, NULL);
		}
		if (a->dns)
			(void)evdns_base_set_option(a->dns,
			                            "randomize-case:", "0");
	}
	call->evcon =
	        evhttp_connection_base_new(a->n->base, a->dns, host, port);
	rq = call->evcon ? evhttp_request_new(admin_call_done, call) : NULL;
	if (!rq) {
		if (call->evcon)
			evhttp_connection_free(call->evcon);
		free(call);
		return -1;
	}
	evhttp_connection_set_timeout(call->evcon, ADMIN_PEER_TIMEOUT_S);
	h = evhttp_request_get_output_headers(rq);
	evhttp_add_header(h, "Host", m->admin_addr);
	evhttp_add_header(h, ADMIN_LOCAL_HDR, "1");
	if (a->n->cfg->admin_token[0]) {
		snprintf(auth, sizeof(auth), "Bearer %s",
		         a->n->cfg->admin_token);
		evhttp_add_header(h, "Authorization", auth);
	}
	call->next = f->calls;
	f->calls = call;
	f->pending++;
	if (evhttp_make_request(call->evcon, rq,
	                        evhttp_request_get_command(f->req),
	                        evhttp_request_get_uri(f->req)) != 0) {
		/* libevent freed rq; the failure is counted as unreachable */
		f->calls = call->next;
		f->pending--;
		evhttp_connection_free(call->evcon);
		free(call);
		return -1;
	}
	return 0;
}

static void
admin_fan_member(void *arg, const struct cluster_member *m)
{
	struct admin_fan *f = arg;

	if (m->self || m->state > CLUSTER_SUSPECT)
		return;
	if (!m->admin_addr[0] || admin_call_start(f, m) != 0)
		json_array_append_new(f->unreach, admin_str(m->name));
}

void
admin_fan_start(struct admin_req *r, enum admin_scope scope, int status,
                json_t *local)
{
	struct admin_fan *f = calloc(1, sizeof(*f));

	if (!f || !(f->unreach = json_array()) ||
	    (scope == ADMIN_SCOPE_MERGE && !(f->items = json_array())) ||
	    (scope == ADMIN_SCOPE_VIEWS && !(f->views = json_object()))) {
		json_decref(local);
		if (f) {
			json_decref(f->unreach);
			json_decref(f->items);
			free(f);
		}
		admin_reply(r->req, 500, admin_error("out of memory"));
		return;
	}
	f->a = r->a;
	f->req = r->req;
	f->origin = evhttp_request_get_connection(r->req);
	f->scope = scope;
	f->status = status;
	f->lim = r->lim;
	f->off = r->off;
	f->next = r->a->fans;
	r->a->fans = f;
	if (scope == ADMIN_SCOPE_MERGE) {
		json_array_extend(f->items, local);
		json_decref(local);
	} else {
		f->body = local;
	}
	if (scope == ADMIN_SCOPE_VIEWS) /* a copy: local is the answer */
		json_object_set_new(f->views, r->a->n->cfg->node_name,
		                    json_deep_copy(local));
	/* FIRST: only a miss here goes to the peers */
	if (scope != ADMIN_SCOPE_FIRST || status == 404)
		cluster_members(mesh_cluster(r->a->n), admin_fan_member, f);
	if (f->pending == 0) {
		admin_fan_finish(f);
		return;
	}
	if (f->origin)
		evhttp_connection_set_closecb(f->origin,
		                              admin_fan_origin_closed, f);
}

void
admin_fan_reap(struct admin *a)
{
	struct admin_call *call;

	while ((call = a->done) != NULL) {
		a->done = call->next;
		evhttp_connection_free(call->evcon);
		free(call);
	}
}

void
admin_fan_stop_all(struct admin *a)
{
	struct admin_call *call;
	struct admin_fan *f;

	while ((f = a->fans) != NULL) {
		while ((call = f->calls) != NULL) {
			f->calls = call->next;
			call->f = NULL;
			evhttp_connection_free(call->evcon);
			free(call);
		}
		f->req = NULL; /* evhttp_free drops the origin request */
		if (f->origin)
			evhttp_connection_set_closecb(f->origin, NULL, NULL);
		admin_fan_free(f);
	}
	admin_fan_reap(a);
}
