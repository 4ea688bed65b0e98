/*
 * The admin HTTP API (libevent evhttp on the node's loop, JSON with
 * jansson): status, cluster, clients, sessions, subscriptions, routes,
 * retained messages, metrics, and Prometheus text at /metrics. Requests
 * about a client or session this node does not hold, and listings, are
 * answered cluster-wide by asking the peers' admin APIs (admin_peer.c).
 * The request helpers below are pure, for the unit tests.
 */
#ifndef BROKER_ADMIN_H
#define BROKER_ADMIN_H

#include <stdbool.h>
#include <stddef.h>

struct node;

/** Largest request body accepted, bytes. */
#define ADMIN_BODY_MAX (64 * 1024)
/** Items per page: the default and the most a request may ask. */
#define ADMIN_PAGE_DEFAULT 100
#define ADMIN_PAGE_MAX     1000
/** Largest decoded id (client id, topic) in a path. */
#define ADMIN_ID_MAX 65535

/**
 * Listens on [admin] bind:port. Loop thread, after the cluster started
 * (the peers learn this API's address in the cluster Hello).
 * @return 0, or ERR_IO (cannot listen) / ERR_NOMEM, logged
 */
int admin_start(struct node *n);
/** Closes the listener and drops requests in progress; NULL-safe. */
void admin_stop(struct node *n);
/** "host:port" peers use to reach this API (valid after admin_start is
 * prepared by admin_addr_for), written into @p buf. */
void admin_addr_for(const struct node *n, char *buf, size_t len);

/**
 * Decodes %XX escapes of @p len bytes at @p in into @p out (NUL-terminated,
 * @p cap bytes). '+' stays '+' (a path, not a form).
 * @return 0; ERR_MALFORMED (bad escape or a NUL byte); ERR_TOO_LARGE
 */
int admin_url_decode(const char *in, size_t len, char *out, size_t cap);

/**
 * Splits a request path "/api/v1/<collection>[/<id>]": @p coll gets the
 * collection, @p id the rest of the path decoded (slashes kept, so a
 * topic may be given plainly or with %2F), or "" when absent.
 * @return 0; ERR_NOTFOUND (not under /api/v1/); ERR_MALFORMED (bad
 *   escape); ERR_TOO_LARGE (collection over @p coll_cap or id over
 *   @p id_cap)
 */
int admin_path_parse(const char *path, char *coll, size_t coll_cap, char *id,
                     size_t id_cap);

/**
 * Reads the paging parameters (NULL = absent): limit 1..ADMIN_PAGE_MAX,
 * default ADMIN_PAGE_DEFAULT; offset >= 0, default 0.
 * @return 0 or ERR_MALFORMED (not a number, or out of range)
 */
int admin_page_parse(const char *limit, const char *offset, size_t *lim,
                     size_t *off);

/** True when the Authorization header value @p hdr is "Bearer <token>"
 * (constant time in the token's length). An empty @p token accepts all. */
bool admin_token_ok(const char *hdr, const char *token);

#endif
