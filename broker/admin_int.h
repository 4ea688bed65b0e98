/*
 * The admin API's private header: the server state, one request being
 * answered, the endpoint table entries (admin_api.c) and the cluster
 * fan-out (admin_peer.c). Loop thread only.
 */
#ifndef BROKER_ADMIN_INT_H
#define BROKER_ADMIN_INT_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#include "broker/admin.h"

struct node;
struct admin_fan;
struct admin_call;
struct event;
struct evdns_base;

/* Header a node sets when it asks a peer: answer from local state only,
 * listings unpaged. */
#define ADMIN_LOCAL_HDR "X-Mqd-Local"
/* Seconds a peer has to answer a fan-out request. */
#define ADMIN_PEER_TIMEOUT_S 3

struct admin {
	struct node *n;
	struct evhttp *http;
	struct evdns_base *dns;  /* resolves peers' names without blocking
	                          * the loop (made at the first call) */
	char addr[320];          /* host:port the peers reach this API at */
	struct admin_fan *fans;  /* fan-outs in progress (list) */
	struct admin_call *done; /* answered peer calls, freed by reap_ev */
	struct event *reap_ev;   /* frees their connections after the
	                          * callback (libevent still holds them) */
};

/* How an endpoint's answer spans the cluster. */
enum admin_scope {
	ADMIN_SCOPE_LOCAL, /* this node's state only */
	ADMIN_SCOPE_FIRST, /* a 404 here: ask the peers, first hit wins */
	ADMIN_SCOPE_MERGE, /* a listing: items of every node, then paged */
	ADMIN_SCOPE_PAGE,  /* a listing of this node only, paged */
	ADMIN_SCOPE_VIEWS, /* this node's answer plus every peer's */
};

/* One request being answered. */
struct admin_req {
	struct admin *a;
	struct evhttp_request *req;
	enum evhttp_cmd_type method;
	char coll[32];          /* collection after /api/v1/ */
	char *id;               /* the rest of the path, decoded ("" none) */
	struct evkeyvalq query; /* decoded query parameters */
	bool local;             /* a peer asked: local state, unpaged */
	size_t lim;             /* paging */
	size_t off;
};

/*
 * An endpoint: fills *out (a new reference) and returns the HTTP status.
 * For listings *out is the JSON array of every matching item.
 */
typedef int (*admin_handler_fn)(struct admin_req *r, json_t **out);

struct admin_route {
	const char *coll;
	int id; /* 1: required, 0: none, -1: any */
	enum evhttp_cmd_type method;
	admin_handler_fn fn;
	enum admin_scope scope;
};

/* admin_api.c */
/** The endpoint table, ended by a NULL coll. */
extern const struct admin_route admin_routes[];
/** {"error": why}. */
json_t *admin_error(const char *why);
/** A JSON string of @p s (invalid UTF-8 becomes "?"). */
json_t *admin_str(const char *s);
/** The query parameter @p key, or NULL. */
const char *admin_arg(struct admin_req *r, const char *key);

/* admin.c */
/** Sends @p body (taken) with @p status, and frees nothing else. */
void admin_reply(struct evhttp_request *req, int status, json_t *body);
/**
 * The listing answer: sorts @p items (taken), keeps [off, off + lim) and
 * wraps them {"items", "total", "offset", "limit"}.
 */
json_t *admin_page(json_t *items, size_t off, size_t lim);

/* admin_peer.c */
/**
 * Answers @p r (status @p status, body @p local taken) once the alive
 * peers' admin APIs have answered the same request (or timed out), by
 * @p scope. With no peer to ask it answers at once.
 */
void admin_fan_start(struct admin_req *r, enum admin_scope scope, int status,
                     json_t *local);
/** Drops every fan-out in progress without answering (stop). */
void admin_fan_stop_all(struct admin *a);
/** Frees the connections of answered peer calls (a->reap_ev). */
void admin_fan_reap(struct admin *a);

#endif
