/*
 * mqctl: the admin CLI of mqd. Sends one request to a node's admin HTTP
 * API (libevent's HTTP client, jansson for JSON) and prints the answer as
 * aligned tables for people, or as the JSON itself with --json. Exit
 * status 0 on success, 1 with one line on stderr on any failure, 2 on a
 * usage error.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#define MQCTL_TIMEOUT_S 10
#define MQCTL_ARGS_MAX  8

struct ctl {
	const char *node;  /* host:port */
	const char *token; /* or NULL */
	bool json;
	bool help;
	const char *args[MQCTL_ARGS_MAX]; /* positional, after the command */
	int n_args;
	/* command options */
	const char *prefix;
	const char *username;
	const char *client;
	const char *topic;
	const char *limit;
	const char *offset;
};

/* One command: "name" or "name sub". */
struct cmd {
	const char *name;
	const char *sub; /* NULL: none */
	int min_args;    /* positional arguments after name [sub] */
	int max_args;
	int (*run)(struct ctl *c);
	const char *usage;
	const char *help;
};

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int
fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "mqctl: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	return 1;
}

/* ---- HTTP ---- */

struct http_res {
	int status; /* 0: no answer */
	struct evbuffer *body;
	struct event_base *base;
};

static void
http_done(struct evhttp_request *req, void *arg)
{
	struct http_res *r = arg;

	if (req) {
		r->status = evhttp_request_get_response_code(req);
		evbuffer_add_buffer(r->body,
		                    evhttp_request_get_input_buffer(req));
	}
	event_base_loopexit(r->base, NULL);
}

static int
split_node(const char *node, char *host, size_t cap, int *port)
{
	const char *colon = strrchr(node, ':');
	size_t n;

	if (!colon || colon == node)
		return -1;
	n = (size_t)(colon - node);
	if (node[0] == '[' && n >= 2 && node[n - 1] == ']') {
		node++;
		n -= 2;
	}
	*port = atoi(colon + 1);
	if (n >= cap || *port <= 0 || *port > 65535)
		return -1;
	memcpy(host, node, n);
	host[n] = '\0';
	return 0;
}

/*
 * Sends one request; on a JSON answer sets *out (new reference) and
 * returns the HTTP status; on no answer prints why and returns -1.
 */
static int
http_call(struct ctl *c, enum evhttp_cmd_type method, const char *path,
          const char *body, json_t **out)
{
	struct http_res r = { 0, NULL, NULL };
	struct evhttp_connection *evcon = NULL;
	struct evhttp_request *req;
	char host[256], auth[1100];
	struct evkeyvalq *h;
	int port, rc = -1;

	*out = NULL;
	if (split_node(c->node, host, sizeof(host), &port))
		return fail("bad --node \"%s\" (expected host:port)", c->node),
		       -1;
	r.base = event_base_new();
	r.body = evbuffer_new();
	if (r.base)
		evcon = evhttp_connection_base_new(r.base, NULL, host,
		                                   (unsigned short)port);
	req = evcon ? evhttp_request_new(http_done, &r) : NULL;
	if (!req || !r.body) {
		fail("out of memory");
		goto out;
	}
	evhttp_connection_set_timeout(evcon, MQCTL_TIMEOUT_S);
	h = evhttp_request_get_output_headers(req);
	evhttp_add_header(h, "Host", c->node);
	if (c->token && c->token[0]) {
		snprintf(auth, sizeof(auth), "Bearer %s", c->token);
		evhttp_add_header(h, "Authorization", auth);
	}
	if (body) {
		evhttp_add_header(h, "Content-Type", "application/json");
		evbuffer_add(evhttp_request_get_output_buffer(req), body,
		             strlen(body));
	}
	if (evhttp_make_request(evcon, req, method, path) != 0) {
		fail("cannot send the request to %s", c->node);
		goto out;
	}
	event_base_dispatch(r.base);
	if (r.status == 0) {
		fail("cannot reach mqd at %s (not running, or wrong --node)",
		     c->node);
		goto out;
	}
	rc = r.status;
	if (evbuffer_get_length(r.body) > 0)
		*out = json_loadb((const char *)evbuffer_pullup(r.body, -1),
		                  evbuffer_get_length(r.body), 0, NULL);
out:
	if (evcon)
		evhttp_connection_free(evcon);
	if (r.body)
		evbuffer_free(r.body);
	if (r.base)
		event_base_free(r.base);
	return rc;
}

/* http_call, then turns any failure into one line on stderr.
 * @return 0 with *out set, or 1 */
static int
api(struct ctl *c, enum evhttp_cmd_type method, const char *path,
    const char *body, json_t **out)
{
	int status = http_call(c, method, path, body, out);
	const char *why;

	if (status < 0)
		return 1;
	if (status >= 200 && status < 300 && *out)
		return 0;
	why = json_string_value(json_object_get(*out, "error"));
	if (status == 401)
		why = "unauthorized: wrong or missing token (--token, "
		      "MQCTL_TOKEN)";
	fail("%s (HTTP %d)", why ? why : "bad answer from mqd", status);
	json_decref(*out);
	*out = NULL;
	return 1;
}

/* Appends "&key=value" (URI-encoded) to @p path when @p v is set. */
static void
add_query(char *path, size_t cap, const char *key, const char *v)
{
	char *e;
	size_t n = strlen(path);

	if (!v)
		return;
	e = evhttp_uriencode(v, -1, 0);
	if (!e)
		return;
	snprintf(path + n, cap - n, "%s%s=%s", strchr(path, '?') ? "&" : "?",
	         key, e);
	free(e);
}

/* "/api/v1/<coll>/<id URI-encoded>" into @p path. @return 0 or 1 */
static int
item_path(char *path, size_t cap, const char *coll, const char *id)
{
	char *e = evhttp_uriencode(id, -1, 0);

	if (!e)
		return fail("out of memory");
	snprintf(path, cap, "/api/v1/%s/%s", coll, e);
	free(e);
	return 0;
}

/* ---- output ---- */

static void
print_json(json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);

	if (s)
		printf("%s\n", s);
	free(s);
}

/* A value as table text into @p buf. */
static const char *
cell(json_t *v, char *buf, size_t cap)
{
	if (!v || json_is_null(v))
		return "-";
	if (json_is_string(v))
		return json_string_value(v);
	if (json_is_true(v))
		return "yes";
	if (json_is_false(v))
		return "no";
	if (json_is_integer(v)) {
		snprintf(buf, cap, "%lld", (long long)json_integer_value(v));
		return buf;
	}
	if (json_is_real(v)) {
		snprintf(buf, cap, "%g", json_real_value(v));
		return buf;
	}
	return "?";
}

struct col {
	const char *head;
	const char *key;
};

/* Prints @p rows (objects) as a table, columns padded to their widest. */
static void
print_table(json_t *rows, const struct col *cols, size_t n_cols)
{
	size_t w[16], i, k, len;
	char buf[64];
	json_t *row;

	for (k = 0; k < n_cols && k < 16; k++)
		w[k] = strlen(cols[k].head);
	json_array_foreach(rows, i, row) for (k = 0; k < n_cols && k < 16; k++)
	{
		len = strlen(cell(json_object_get(row, cols[k].key), buf,
		                  sizeof(buf)));
		if (len > w[k])
			w[k] = len;
	}
	for (k = 0; k < n_cols && k < 16; k++)
		printf("%-*s%s", k + 1 < n_cols ? (int)w[k] : 0, cols[k].head,
		       k + 1 < n_cols ? "  " : "\n");
	json_array_foreach(rows, i, row) for (k = 0; k < n_cols && k < 16; k++)
	        printf("%-*s%s", k + 1 < n_cols ? (int)w[k] : 0,
	               cell(json_object_get(row, cols[k].key), buf,
	                    sizeof(buf)),
	               k + 1 < n_cols ? "  " : "\n");
}

/* "key: value" lines for the scalar fields of @p o, in @p keys order. */
static void
print_fields(json_t *o, const char *const *keys)
{
	char buf[64];

	for (; *keys; keys++)
		if (json_object_get(o, *keys))
			printf("%-16s %s\n", *keys,
			       cell(json_object_get(o, *keys), buf,
			            sizeof(buf)));
}

static void
print_unreachable(json_t *res)
{
	json_t *u = json_object_get(res, "unreachable"), *v;
	size_t i;

	json_array_foreach(u, i, v)
	        fprintf(stderr, "mqctl: warning: node %s did not answer\n",
	                json_string_value(v));
}

/* A listing: the table, then "N of TOTAL" when it was cut. */
static int
list(struct ctl *c, const char *path, const struct col *cols, size_t n)
{
	char p[2048];
	json_t *res;
	size_t shown, total;

	snprintf(p, sizeof(p), "%s", path);
	add_query(p, sizeof(p), "limit", c->limit);
	add_query(p, sizeof(p), "offset", c->offset);
	add_query(p, sizeof(p), "prefix", c->prefix);
	add_query(p, sizeof(p), "username", c->username);
	add_query(p, sizeof(p), "client", c->client);
	add_query(p, sizeof(p), "topic", c->topic);
	if (api(c, EVHTTP_REQ_GET, p, NULL, &res))
		return 1;
	if (c->json) {
		print_json(res);
	} else {
		print_table(json_object_get(res, "items"), cols, n);
		shown = json_array_size(json_object_get(res, "items"));
		total = (size_t)json_integer_value(
		        json_object_get(res, "total"));
		if (shown < total)
			printf("(%zu of %zu shown; use --limit and --offset)\n",
			       shown, total);
	}
	print_unreachable(res);
	json_decref(res);
	return 0;
}

/* GET one item by id and print it (fields, then its subscriptions). */
static int
show(struct ctl *c, const char *coll, const char *const *keys)
{
	static const struct col subs[] = { { "FILTER", "filter" },
		                           { "QOS", "qos" },
		                           { "NO_LOCAL", "no_local" } };
	char path[2048];
	json_t *res;

	if (item_path(path, sizeof(path), coll, c->args[0]) ||
	    api(c, EVHTTP_REQ_GET, path, NULL, &res))
		return 1;
	if (c->json) {
		print_json(res);
	} else {
		print_fields(res, keys);
		printf("\n");
		print_table(json_object_get(res, "subscription_list"), subs, 3);
	}
	json_decref(res);
	return 0;
}

/* DELETE one item by id; prints @p done with the answering node. */
static int
del(struct ctl *c, const char *coll, const char *done)
{
	char path[2048];
	const char *node;
	json_t *res;

	if (item_path(path, sizeof(path), coll, c->args[0]) ||
	    api(c, EVHTTP_REQ_DELETE, path, NULL, &res))
		return 1;
	if (c->json) {
		print_json(res);
	} else {
		node = json_string_value(json_object_get(res, "node"));
		printf("%s %s%s%s\n", done, c->args[0], node ? " on node " : "",
		       node ? node : "");
	}
	json_decref(res);
	return 0;
}

/* ---- commands ---- */

static int
cmd_status(struct ctl *c)
{
	static const char *const keys[] = { "node",         "node_id",
		                            "version",      "uptime_s",
		                            "cluster_left", NULL };
	json_t *res, *counts, *v;
	const char *k;
	char buf[64];

	if (api(c, EVHTTP_REQ_GET, "/api/v1/status", NULL, &res))
		return 1;
	if (c->json) {
		print_json(res);
		json_decref(res);
		return 0;
	}
	print_fields(res, keys);
	counts = json_object_get(res, "counts");
	json_object_foreach(counts, k, v)
	        printf("%-16s %s\n", k, cell(v, buf, sizeof(buf)));
	json_decref(res);
	return 0;
}

static int
cmd_listeners(struct ctl *c)
{
	static const struct col cols[] = { { "NAME", "name" },
		                           { "ADDRESS", "address" } };
	json_t *res;

	if (api(c, EVHTTP_REQ_GET, "/api/v1/listeners", NULL, &res))
		return 1;
	if (c->json)
		print_json(res);
	else
		print_table(json_object_get(res, "listeners"), cols, 2);
	json_decref(res);
	return 0;
}

static int
cmd_cluster_status(struct ctl *c)
{
	static const struct col cols[] = {
		{ "NODE", "name" },           { "STATE", "state" },
		{ "LINK", "link" },           { "ADDRESS", "address" },
		{ "ADMIN", "admin_address" }, { "INCARNATION", "incarnation" },
		{ "ROUTES", "routes" },
	};
	json_t *res, *views, *view, *m;
	const char *name;
	size_t i, alive;

	if (api(c, EVHTTP_REQ_GET, "/api/v1/cluster", NULL, &res))
		return 1;
	if (c->json) {
		print_json(res);
		json_decref(res);
		return 0;
	}
	printf("as seen from %s%s\n",
	       json_string_value(json_object_get(res, "node")),
	       json_is_true(json_object_get(res, "left"))
	               ? " (left the cluster)"
	               : "");
	print_table(json_object_get(res, "members"), cols, 7);
	views = json_object_get(res, "views");
	if (json_object_size(views) > 0)
		printf("\nviews:\n");
	json_object_foreach(views, name, view)
	{
		alive = 0;
		json_array_foreach(json_object_get(view, "members"), i, m)
		        alive +=
		        strcmp(json_string_value(json_object_get(m, "state")),
		               "alive") == 0;
		printf("  %s sees %zu members, %zu alive\n", name,
		       json_array_size(json_object_get(view, "members")),
		       alive);
	}
	print_unreachable(res);
	json_decref(res);
	return 0;
}

static int
cmd_cluster_join(struct ctl *c)
{
	json_t *body = json_pack("{s:s}", "seed", c->args[0]), *res;
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	int rc;

	json_decref(body);
	if (!text)
		return fail("out of memory");
	rc = api(c, EVHTTP_REQ_POST, "/api/v1/cluster/join", text, &res);
	free(text);
	if (rc)
		return 1;
	if (c->json)
		print_json(res);
	else
		printf("joining the cluster through %s\n", c->args[0]);
	json_decref(res);
	return 0;
}

static int
cmd_cluster_leave(struct ctl *c)
{
	json_t *res;

	if (api(c, EVHTTP_REQ_POST, "/api/v1/cluster/leave", "{}", &res))
		return 1;
	if (c->json)
		print_json(res);
	else
		printf("left the cluster\n");
	json_decref(res);
	return 0;
}

static const char *const client_keys[] = {
	"client_id", "node",         "username",   "address",  "protocol",
	"keepalive", "connected_at", "persistent", "expiry_s", "inflight",
	"queued",    "dropped",      NULL,
};

static const char *const session_keys[] = {
	"client_id",  "node",     "online",       "protocol",
	"persistent", "expiry_s", "expires_in_s", "inflight",
	"queued",     "dropped",  NULL,
};

static int
cmd_clients_list(struct ctl *c)
{
	static const struct col cols[] = {
		{ "CLIENT_ID", "client_id" }, { "NODE", "node" },
		{ "USERNAME", "username" },   { "ADDRESS", "address" },
		{ "PROTO", "protocol" },      { "KEEPALIVE", "keepalive" },
		{ "SUBS", "subscriptions" },  { "INFLIGHT", "inflight" },
		{ "QUEUED", "queued" },
	};

	return list(c, "/api/v1/clients", cols, 9);
}

static int
cmd_clients_show(struct ctl *c)
{
	return show(c, "clients", client_keys);
}

static int
cmd_clients_kick(struct ctl *c)
{
	return del(c, "clients", "kicked");
}

static int
cmd_sessions_list(struct ctl *c)
{
	static const struct col cols[] = {
		{ "CLIENT_ID", "client_id" },
		{ "NODE", "node" },
		{ "ONLINE", "online" },
		{ "EXPIRY_S", "expiry_s" },
		{ "EXPIRES_IN_S", "expires_in_s" },
		{ "SUBS", "subscriptions" },
		{ "INFLIGHT", "inflight" },
		{ "QUEUED", "queued" },
	};

	return list(c, "/api/v1/sessions", cols, 8);
}

static int
cmd_sessions_show(struct ctl *c)
{
	return show(c, "sessions", session_keys);
}

static int
cmd_sessions_drop(struct ctl *c)
{
	return del(c, "sessions", "dropped session");
}

static int
cmd_subs_list(struct ctl *c)
{
	static const struct col cols[] = {
		{ "CLIENT_ID", "client_id" },
		{ "NODE", "node" },
		{ "FILTER", "filter" },
		{ "QOS", "qos" },
	};

	return list(c, "/api/v1/subscriptions", cols, 4);
}

static int
cmd_routes(struct ctl *c)
{
	static const struct col cols[] = { { "FILTER", "filter" },
		                           { "NODE", "node" } };

	return list(c, "/api/v1/routes", cols, 2);
}

static int
cmd_retained_list(struct ctl *c)
{
	static const struct col cols[] = { { "TOPIC", "topic" },
		                           { "QOS", "qos" },
		                           { "SIZE", "size" } };
	char path[2048] = "/api/v1/retained";

	add_query(path, sizeof(path), "pattern", c->n_args ? c->args[0] : NULL);
	return list(c, path, cols, 3);
}

static int
cmd_retained_get(struct ctl *c)
{
	static const char *const keys[] = { "topic", "qos", "size",
		                            "expires_in_s", NULL };
	const char *p;
	char path[2048];
	json_t *res;

	if (item_path(path, sizeof(path), "retained", c->args[0]) ||
	    api(c, EVHTTP_REQ_GET, path, NULL, &res))
		return 1;
	if (c->json) {
		print_json(res);
	} else {
		print_fields(res, keys);
		p = json_string_value(json_object_get(res, "payload"));
		if (p)
			printf("%-16s %s\n", "payload", p);
		else
			printf("%-16s %s\n", "payload_base64",
			       json_string_value(
			               json_object_get(res, "payload_base64")));
	}
	json_decref(res);
	return 0;
}

static int
cmd_retained_delete(struct ctl *c)
{
	return del(c, "retained", "deleted the retained message of");
}

static int
cmd_metrics(struct ctl *c)
{
	const char *want = c->n_args ? c->args[0] : NULL, *k;
	json_t *res, *m, *v, *out;
	char buf[64];
	size_t n = 0;

	if (api(c, EVHTTP_REQ_GET, "/api/v1/metrics", NULL, &res))
		return 1;
	m = json_object_get(res, "metrics");
	out = json_object();
	json_object_foreach(m, k, v)
	{
		if (want && strncmp(k, want, strlen(want)) != 0)
			continue;
		json_object_set(out, k, v);
		n++;
	}
	if (want && n == 0) {
		json_decref(out);
		json_decref(res);
		return fail("no metric named %s (mqctl metrics lists them)",
		            want);
	}
	if (c->json) {
		print_json(want ? out : res);
	} else {
		json_object_foreach(out, k, v)
		        printf("%-40s %s\n", k, cell(v, buf, sizeof(buf)));
	}
	json_decref(out);
	json_decref(res);
	return 0;
}

static const struct cmd cmds[] = {
	{ "status", NULL, 0, 0, cmd_status, "status",
	  "node name, version, uptime, listeners and counts" },
	{ "listeners", NULL, 0, 0, cmd_listeners, "listeners",
	  "the node's listeners (MQTT, cluster, admin)" },
	{ "cluster", "status", 0, 0, cmd_cluster_status, "cluster status",
	  "every member with state, link, address, incarnation and routes, "
	  "and how each node sees the cluster" },
	{ "cluster", "join", 1, 1, cmd_cluster_join, "cluster join SEED",
	  "make the node join the cluster of SEED (host:cluster_port)" },
	{ "cluster", "leave", 0, 0, cmd_cluster_leave, "cluster leave",
	  "make the node leave its cluster (it keeps running alone)" },
	{ "clients", "list", 0, 0, cmd_clients_list,
	  "clients list [--prefix P] [--username U] [--limit N] [--offset N]",
	  "connected clients of the whole cluster" },
	{ "clients", "show", 1, 1, cmd_clients_show, "clients show ID",
	  "one client, wherever in the cluster it is connected" },
	{ "clients", "kick", 1, 1, cmd_clients_kick, "clients kick ID",
	  "disconnect a client (MQTT 5: reason 0x98); its session stays" },
	{ "sessions", "list", 0, 0, cmd_sessions_list,
	  "sessions list [--prefix P] [--limit N] [--offset N]",
	  "sessions, online and offline, of the whole cluster" },
	{ "sessions", "show", 1, 1, cmd_sessions_show, "sessions show ID",
	  "one session with its subscriptions" },
	{ "sessions", "drop", 1, 1, cmd_sessions_drop, "sessions drop ID",
	  "end a session and delete its stored state (its client is "
	  "disconnected)" },
	{ "subs", "list", 0, 0, cmd_subs_list,
	  "subs list [--client ID] [--topic F] [--limit N] [--offset N]",
	  "subscriptions; --topic matches a filter equal to F or matching "
	  "topic F" },
	{ "routes", NULL, 0, 0, cmd_routes, "routes [--limit N] [--offset N]",
	  "topic filters this node and its peers route on" },
	{ "retained", "list", 0, 1, cmd_retained_list,
	  "retained list [PATTERN] [--limit N] [--offset N]",
	  "retained messages whose topic matches PATTERN (default #)" },
	{ "retained", "get", 1, 1, cmd_retained_get, "retained get TOPIC",
	  "one retained message with its payload" },
	{ "retained", "delete", 1, 1, cmd_retained_delete,
	  "retained delete TOPIC",
	  "clear a retained message (on every node of the cluster)" },
	{ "metrics", NULL, 0, 1, cmd_metrics, "metrics [NAME]",
	  "counters and gauges; NAME keeps those starting with it" },
	{ NULL, NULL, 0, 0, NULL, NULL, NULL },
};

static void
usage(FILE *o)
{
	const struct cmd *k;

	fprintf(o, "usage: mqctl [--node HOST:PORT] [--token T] [--json] "
	           "COMMAND [ARGS]\n\n"
	           "Administers an mqd node through its admin HTTP API.\n"
	           "  --node HOST:PORT  the node (MQCTL_NODE, default "
	           "127.0.0.1:8081)\n"
	           "  --token T         bearer token ([admin] token; "
	           "MQCTL_TOKEN)\n"
	           "  --json            print the API's JSON, for scripts\n"
	           "\ncommands:\n");
	for (k = cmds; k->name; k++)
		fprintf(o, "  %-66s\n      %s\n", k->usage, k->help);
	fprintf(o, "\nmqctl COMMAND --help describes one command. Exit "
	           "status: 0 on success, 1 on failure (one line on "
	           "stderr), 2 on a usage error.\n");
}

/* Command options and positional arguments after the command. */
static int
parse_opts(struct ctl *c, int argc, char **argv, int i)
{
	static const char *const with_val[] = { "--node",   "--token",
		                                "--prefix", "--username",
		                                "--client", "--topic",
		                                "--limit",  "--offset" };
	const char **dst[] = { &c->node,   &c->token, &c->prefix, &c->username,
		               &c->client, &c->topic, &c->limit,  &c->offset };
	size_t k;

	for (; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0) {
			c->json = true;
			continue;
		}
		if (strcmp(argv[i], "--help") == 0 ||
		    strcmp(argv[i], "-h") == 0) {
			c->help = true;
			continue;
		}
		for (k = 0; k < sizeof(with_val) / sizeof(with_val[0]); k++)
			if (strcmp(argv[i], with_val[k]) == 0)
				break;
		if (k < sizeof(with_val) / sizeof(with_val[0])) {
			if (i + 1 >= argc)
				return fail("%s needs a value", argv[i]), -1;
			*dst[k] = argv[++i];
			continue;
		}
		if (argv[i][0] == '-' && argv[i][1] != '\0')
			return fail("unknown option %s", argv[i]), -1;
		if (c->n_args == MQCTL_ARGS_MAX)
			return fail("too many arguments"), -1;
		c->args[c->n_args++] = argv[i];
	}
	return 0;
}

/* Finds the command named by the first positional arguments and drops
 * them from c->args. */
static const struct cmd *
find_cmd(struct ctl *c, bool *known_name)
{
	const struct cmd *k;
	int skip;

	*known_name = false;
	for (k = cmds; k->name; k++) {
		if (c->n_args < 1 || strcmp(k->name, c->args[0]) != 0)
			continue;
		*known_name = true;
		if (k->sub && (c->n_args < 2 || strcmp(k->sub, c->args[1])))
			continue;
		skip = k->sub ? 2 : 1;
		memmove(c->args, c->args + skip,
		        (size_t)(c->n_args - skip) * sizeof(c->args[0]));
		c->n_args -= skip;
		return k;
	}
	return NULL;
}

int
main(int argc, char **argv)
{
	struct ctl c;
	const struct cmd *k;
	bool known;

	memset(&c, 0, sizeof(c));
	c.node = getenv("MQCTL_NODE");
	c.token = getenv("MQCTL_TOKEN");
	if (!c.node || !c.node[0])
		c.node = "127.0.0.1:8081";
	if (parse_opts(&c, argc, argv, 1))
		return 2;
	if (c.n_args == 0) {
		usage(c.help ? stdout : stderr);
		return c.help ? 0 : 2;
	}
	k = find_cmd(&c, &known);
	if (!k && known && c.help) {
		for (k = cmds; k->name; k++)
			if (strcmp(k->name, c.args[0]) == 0)
				printf("usage: mqctl %s\n    %s\n", k->usage,
				       k->help);
		return 0;
	}
	if (!k) {
		fail("unknown command \"%s%s%s\" (mqctl --help lists them)",
		     c.args[0], c.n_args > 1 ? " " : "",
		     c.n_args > 1 ? c.args[1] : "");
		return 2;
	}
	if (c.help) {
		printf("usage: mqctl [--node HOST:PORT] [--token T] [--json] "
		       "%s\n    %s\n",
		       k->usage, k->help);
		return 0;
	}
	if (c.n_args < k->min_args || c.n_args > k->max_args) {
		fail("usage: mqctl %s", k->usage);
		return 2;
	}
	return k->run(&c);
}
