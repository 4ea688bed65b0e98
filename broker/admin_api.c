/*
 * The admin API's endpoints: each reads node state (sessions, retained
 * store, cluster members and routes, metrics) and builds its JSON answer;
 * listings return every matching item and admin.c pages them. The table
 * admin_routes[] at the end maps collection and method to handler.
 */
#include "broker/admin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "broker/admin_int.h"
#include "broker/metrics.h"
#include "broker/node.h"
#include "cluster/cluster.h"

json_t *
admin_error(const char *why)
{
	return json_pack("{s:s}", "error", why);
}

json_t *
admin_str(const char *s)
{
	json_t *j = json_string(s ? s : "");

	return j ? j : json_string("?");
}

static json_t *
admin_strn(const void *p, size_t len)
{
	json_t *j = json_stringn(p, len);

	return j ? j : json_string("?");
}

const char *
admin_arg(struct admin_req *r, const char *key)
{
	return evhttp_find_header(&r->query, key);
}

static struct node *
admin_node(struct admin_req *r)
{
	return r->a->n;
}

/* Sets key to a new value; an allocation failure leaves it out. */
static void
admin_set(json_t *o, const char *key, json_t *v)
{
	json_object_set_new(o, key, v);
}

static json_t *
admin_u64(uint64_t v)
{
	return json_integer((json_int_t)v);
}

/* Unix seconds of monotonic ms @p at. */
static uint64_t
admin_wall_s(uint64_t at)
{
	uint64_t now = node_now_ms(), ago = at && at <= now ? now - at : 0;

	return (uint64_t)time(NULL) - ago / 1000;
}

/* ---- status, listeners ---- */

static void
admin_listener_one(void *arg, const char *name)
{
	json_array_append_new(arg, json_pack("{s:s,s:o}", "name", "mqtt",
	                                     "address", admin_str(name)));
}

static json_t *
admin_listeners_json(struct admin_req *r)
{
	struct node *n = admin_node(r);
	const struct config *cfg = n->cfg;
	json_t *v = json_array();
	char buf[320];

	if (!v)
		return NULL;
	listener_foreach(n, admin_listener_one, v);
	snprintf(buf, sizeof(buf), "%s:%u",
	         cfg->cluster_bind[0] ? cfg->cluster_bind : "*",
	         (unsigned)cfg->cluster_port);
	json_array_append_new(v, json_pack("{s:s,s:o}", "name", "cluster",
	                                   "address", admin_str(buf)));
	snprintf(buf, sizeof(buf), "%s:%u",
	         cfg->admin_bind[0] ? cfg->admin_bind : "*",
	         (unsigned)cfg->admin_port);
	json_array_append_new(v, json_pack("{s:s,s:o}", "name", "admin",
	                                   "address", admin_str(buf)));
	return v;
}

static int
admin_get_listeners(struct admin_req *r, json_t **out)
{
	json_t *o = json_object();

	if (o) {
		admin_set(o, "node", admin_str(admin_node(r)->cfg->node_name));
		admin_set(o, "listeners", admin_listeners_json(r));
	}
	*out = o;
	return 200;
}

static void
admin_count_route(void *arg, struct mqtt_bytes f, uint32_t refs)
{
	(void)f;
	(void)refs;
	(*(size_t *)arg)++;
}

static void
admin_count_member(void *arg, const struct cluster_member *m)
{
	(void)m;
	(*(size_t *)arg)++;
}

static int
admin_get_status(struct admin_req *r, json_t **out)
{
	struct node *n = admin_node(r);
	struct metrics_snap s;
	size_t routes = 0, members = 0;
	char id[32];
	json_t *o, *c;

	metrics_collect(n, &s);
	metrics_snap_fini(&s);
	mesh_routes_each(n, admin_count_route, &routes);
	cluster_members(mesh_cluster(n), admin_count_member, &members);
	snprintf(id, sizeof(id), "%016llx", (unsigned long long)n->node_id);
	c = json_object();
	o = json_object();
	if (!o || !c) {
		json_decref(c);
		json_decref(o);
		*out = NULL;
		return 500;
	}
	admin_set(c, "connections", admin_u64(n->n_conns));
	admin_set(c, "sessions", admin_u64(n->sessions.n));
	admin_set(c, "sessions_online", admin_u64(s.g.sess_online));
	admin_set(c, "subscriptions", admin_u64(s.g.subs));
	admin_set(c, "retained", admin_u64(s.g.retained));
	admin_set(c, "routes", admin_u64(routes));
	admin_set(c, "cluster_members", admin_u64(members));
	admin_set(o, "node", admin_str(n->cfg->node_name));
	admin_set(o, "node_id", admin_str(id));
	admin_set(o, "version", admin_str(MQD_VERSION));
	admin_set(o, "uptime_s", admin_u64(s.g.uptime_s));
	admin_set(o, "cluster_left",
	          json_boolean(cluster_has_left(mesh_cluster(n))));
	admin_set(o, "listeners", admin_listeners_json(r));
	admin_set(o, "counts", c);
	*out = o;
	return 200;
}

/* ---- cluster ---- */

static void
admin_member_one(void *arg, const struct cluster_member *m)
{
	static const char *const states[] = { "alive", "suspect", "dead",
		                              "left" };
	char id[32];

	snprintf(id, sizeof(id), "%016llx", (unsigned long long)m->node_id);
	json_array_append_new(
	        arg,
	        json_pack(
	                "{s:o,s:o,s:o,s:s,s:I,s:s,s:s,s:I,s:I,s:b}", "name",
	                admin_str(m->name), "address", admin_str(m->addr),
	                "admin_address", admin_str(m->admin_addr), "node_id",
	                id, "incarnation", (json_int_t)m->incarnation, "state",
	                (unsigned)m->state < 4 ? states[m->state] : "?", "link",
	                m->self      ? "self"
	                : m->link_up ? "up"
	                             : "down",
	                "routes", (json_int_t)m->routes, "outbox",
	                (json_int_t)m->outbox, "self", m->self));
}

static int
admin_get_cluster(struct admin_req *r, json_t **out)
{
	struct node *n = admin_node(r);
	json_t *o = json_object(), *v = json_array();

	if (!o || !v) {
		json_decref(o);
		json_decref(v);
		*out = NULL;
		return 500;
	}
	cluster_members(mesh_cluster(n), admin_member_one, v);
	admin_set(o, "node", admin_str(n->cfg->node_name));
	admin_set(o, "left", json_boolean(cluster_has_left(mesh_cluster(n))));
	admin_set(o, "members", v);
	*out = o;
	return 200;
}

/* The request body as a JSON object, or NULL with *out an error. */
static json_t *
admin_body(struct admin_req *r, json_t **out)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
	size_t len = evbuffer_get_length(in);
	json_error_t je;
	char why[256];
	json_t *j;

	if (len == 0) {
		*out = admin_error("a JSON object body is required");
		return NULL;
	}
	j = json_loadb((const char *)evbuffer_pullup(in, -1), len, 0, &je);
	if (!j) {
		snprintf(why, sizeof(why), "malformed JSON body: %s", je.text);
		*out = admin_error(why);
		return NULL;
	}
	if (!json_is_object(j)) {
		json_decref(j);
		*out = admin_error("the body must be a JSON object");
		return NULL;
	}
	return j;
}

static int
admin_post_cluster(struct admin_req *r, json_t **out)
{
	struct cluster *c = mesh_cluster(admin_node(r));
	const char *seed;
	json_t *b;
	int rc;

	if (strcmp(r->id, "leave") == 0) {
		rc = cluster_leave(c);
		*out = rc ? admin_error(err_str(rc))
		          : json_pack("{s:b}", "left", 1);
		if (!rc)
			log_info("admin: cluster leave");
		return rc ? 409 : 200;
	}
	if (strcmp(r->id, "join") != 0) {
		*out = admin_error("no such endpoint");
		return 404;
	}
	b = admin_body(r, out);
	if (!b)
		return 400;
	seed = json_string_value(json_object_get(b, "seed"));
	if (!seed || !seed[0]) {
		json_decref(b);
		*out = admin_error("\"seed\" (host:port) is required");
		return 400;
	}
	rc = cluster_join(c, seed);
	if (rc == ERR_MALFORMED)
		*out = admin_error("bad seed address (expected host:port)");
	else if (rc)
		*out = admin_error(err_str(rc));
	else
		*out = json_pack("{s:s}", "joining", seed);
	if (!rc)
		log_info("admin: cluster join seed=%s", seed);
	json_decref(b);
	return rc == ERR_MALFORMED ? 400 : rc ? 409 : 202;
}

/* ---- clients and sessions ---- */

static size_t
admin_sess_subs(const struct sess *s)
{
	const struct sess_sub *sub;
	size_t k = 0;

	for (sub = s->subs; sub; sub = sub->next)
		k++;
	return k;
}

static json_t *
admin_sub_json(const struct sess *s, const struct sess_sub *sub)
{
	return json_pack("{s:o,s:o,s:i,s:b,s:b,s:i,s:I}", "client_id",
	                 admin_str(s->client_id), "filter",
	                 admin_strn(sub->filter, sub->len), "qos",
	                 sub->opts.qos, "no_local", sub->opts.no_local,
	                 "retain_as_published", sub->opts.retain_as_published,
	                 "retain_handling", sub->opts.retain_handling,
	                 "subscription_id", (json_int_t)sub->opts.sub_id);
}

/* The fields clients and sessions share. */
static json_t *
admin_sess_json(struct node *n, const struct sess *s)
{
	json_t *o = json_object();
	uint64_t now = node_now_ms();

	if (!o)
		return NULL;
	admin_set(o, "client_id", admin_str(s->client_id));
	admin_set(o, "node", admin_str(n->cfg->node_name));
	admin_set(o, "online", json_boolean(s->conn != NULL));
	admin_set(o, "protocol", json_integer(s->version));
	admin_set(o, "persistent", json_boolean(s->expiry != 0));
	admin_set(o, "expiry_s",
	          s->expiry == UINT32_MAX ? json_null() : admin_u64(s->expiry));
	admin_set(o, "expires_in_s",
	          s->conn || !s->expire_at ? json_null()
	          : s->expire_at > now ? admin_u64((s->expire_at - now) / 1000)
	                               : admin_u64(0));
	admin_set(o, "subscriptions", admin_u64(admin_sess_subs(s)));
	admin_set(o, "inflight", admin_u64(s->n_inflight));
	admin_set(o, "queued", admin_u64(s->n_queued));
	admin_set(o, "dropped", admin_u64(s->dropped));
	return o;
}

static json_t *
admin_client_json(struct node *n, const struct sess *s)
{
	json_t *o = admin_sess_json(n, s);
	struct conn_info ci;

	if (!o || !s->conn)
		return o;
	conn_get_info(s->conn, &ci);
	admin_set(o, "username",
	          ci.username ? admin_str(ci.username) : json_null());
	admin_set(o, "address", admin_str(ci.addr));
	admin_set(o, "keepalive", json_integer(ci.keepalive));
	admin_set(o, "connected_at", admin_u64(admin_wall_s(ci.connected_ms)));
	admin_set(o, "pending_bytes", admin_u64(ci.pending));
	return o;
}

/* One walk over the sessions for a listing. */
struct admin_list {
	struct admin_req *r;
	json_t *items;
	bool clients;         /* online sessions only, client fields */
	const char *prefix;   /* client id prefix, or NULL */
	const char *username; /* exact user name, or NULL */
	const char *client;   /* subscriptions: exact client id */
	const char *topic;    /* subscriptions: filter equal to or matching */
};

/* @return false when out of memory */
static bool
admin_list_init(struct admin_list *l, struct admin_req *r)
{
	memset(l, 0, sizeof(*l));
	l->r = r;
	l->items = json_array();
	return l->items != NULL;
}

static bool
admin_list_wants(struct admin_list *l, struct sess *s)
{
	struct conn_info ci;

	if (l->clients && !s->conn)
		return false;
	if (l->prefix && strncmp(s->client_id, l->prefix, strlen(l->prefix)))
		return false;
	if (l->username) {
		if (!s->conn)
			return false;
		conn_get_info(s->conn, &ci);
		if (!ci.username || strcmp(ci.username, l->username))
			return false;
	}
	return true;
}

static void
admin_list_one(struct sess *s, void *arg)
{
	struct admin_list *l = arg;
	struct node *n = admin_node(l->r);

	if (!admin_list_wants(l, s))
		return;
	json_array_append_new(l->items, l->clients ? admin_client_json(n, s)
	                                           : admin_sess_json(n, s));
}

static int
admin_list(struct admin_req *r, bool clients, json_t **out)
{
	struct admin_list l;

	if (admin_list_init(&l, r)) {
		l.clients = clients;
		l.prefix = admin_arg(r, "prefix");
		l.username = admin_arg(r, "username");
		sess_foreach(admin_node(r), admin_list_one, &l);
	}
	*out = l.items;
	return 200;
}

static int
admin_get_clients(struct admin_req *r, json_t **out)
{
	return admin_list(r, true, out);
}

static int
admin_get_sessions(struct admin_req *r, json_t **out)
{
	return admin_list(r, false, out);
}

static struct sess *
admin_sess_find(struct admin_req *r)
{
	return sess_find(admin_node(r), r->id, strlen(r->id));
}

static int
admin_get_one(struct admin_req *r, bool client, json_t **out)
{
	struct node *n = admin_node(r);
	struct sess *s = admin_sess_find(r);
	const struct sess_sub *sub;
	json_t *o, *v;

	if (!s || (client && !s->conn)) {
		*out = admin_error(client ? "no such client"
		                          : "no such session");
		return 404;
	}
	o = client ? admin_client_json(n, s) : admin_sess_json(n, s);
	v = json_array();
	if (o && v) {
		for (sub = s->subs; sub; sub = sub->next)
			json_array_append_new(v, admin_sub_json(s, sub));
		admin_set(o, "subscription_list", v);
		v = NULL;
	}
	json_decref(v);
	*out = o;
	return 200;
}

static int
admin_get_client(struct admin_req *r, json_t **out)
{
	return admin_get_one(r, true, out);
}

static int
admin_get_session(struct admin_req *r, json_t **out)
{
	return admin_get_one(r, false, out);
}

static int
admin_del_client(struct admin_req *r, json_t **out)
{
	struct sess *s = admin_sess_find(r);

	if (!s || !s->conn) {
		*out = admin_error("no such client");
		return 404;
	}
	conn_kick(s->conn, "kicked by admin");
	*out = json_pack("{s:o,s:o,s:b}", "client_id", admin_str(r->id), "node",
	                 admin_str(admin_node(r)->cfg->node_name), "kicked", 1);
	return 200;
}

static int
admin_del_session(struct admin_req *r, json_t **out)
{
	struct sess *s = admin_sess_find(r);

	if (!s) {
		*out = admin_error("no such session");
		return 404;
	}
	sess_drop(s, "dropped by admin");
	*out = json_pack("{s:o,s:o,s:b}", "client_id", admin_str(r->id), "node",
	                 admin_str(admin_node(r)->cfg->node_name), "dropped",
	                 1);
	return 200;
}

/* ---- subscriptions, routes ---- */

static bool
admin_sub_matches(const struct sess_sub *sub, const char *topic)
{
	struct mqtt_bytes f = { (const uint8_t *)sub->filter, sub->len };
	struct mqtt_bytes t = { (const uint8_t *)topic, strlen(topic) };
	struct mqtt_bytes inner;
	bool shared;

	if (t.len == f.len && memcmp(t.p, f.p, f.len) == 0)
		return true;
	if (share_parse(f, &shared, &inner) == 0 && shared)
		f = inner;
	return mqtt_topic_name_is_valid(t) && mqtt_topic_matches(f, t);
}

static void
admin_subs_one(struct sess *s, void *arg)
{
	struct admin_list *l = arg;
	const struct sess_sub *sub;
	json_t *o;

	if (l->client && strcmp(l->client, s->client_id) != 0)
		return;
	for (sub = s->subs; sub; sub = sub->next) {
		if (l->topic && !admin_sub_matches(sub, l->topic))
			continue;
		o = admin_sub_json(s, sub);
		if (o)
			json_object_set_new(
			        o, "node",
			        admin_str(admin_node(l->r)->cfg->node_name));
		json_array_append_new(l->items, o);
	}
}

static int
admin_get_subs(struct admin_req *r, json_t **out)
{
	struct admin_list l;

	if (admin_list_init(&l, r)) {
		l.client = admin_arg(r, "client");
		l.topic = admin_arg(r, "topic");
		sess_foreach(admin_node(r), admin_subs_one, &l);
	}
	*out = l.items;
	return 200;
}

static void
admin_route_local(void *arg, struct mqtt_bytes f, uint32_t refs)
{
	struct admin_list *l = arg;

	json_array_append_new(
	        l->items,
	        json_pack("{s:o,s:o,s:I}", "filter", admin_strn(f.p, f.len),
	                  "node", admin_str(admin_node(l->r)->cfg->node_name),
	                  "subscriptions", (json_int_t)refs));
}

static void
admin_route_remote(void *arg, struct mqtt_bytes f, const char *node)
{
	struct admin_list *l = arg;

	json_array_append_new(l->items, json_pack("{s:o,s:o}", "filter",
	                                          admin_strn(f.p, f.len),
	                                          "node", admin_str(node)));
}

static int
admin_get_routes(struct admin_req *r, json_t **out)
{
	struct admin_list l;

	if (admin_list_init(&l, r)) {
		mesh_routes_each(admin_node(r), admin_route_local, &l);
		cluster_routes_each(mesh_cluster(admin_node(r)),
		                    admin_route_remote, &l);
	}
	*out = l.items;
	return 200;
}

/* ---- retained ---- */

static json_t *
admin_retained_json(const struct msg *m, bool with_payload)
{
	struct mqtt_bytes t = msg_topic(m), p = msg_payload(m);
	json_t *o = json_object();
	unsigned char *b64;

	if (!o)
		return NULL;
	admin_set(o, "topic", admin_strn(t.p, t.len));
	admin_set(o, "qos", json_integer(m->qos));
	admin_set(o, "size", admin_u64(p.len));
	admin_set(o, "expires_in_s",
	          m->expiry_ms ? admin_u64(msg_expiry_left_s(m, node_now_ms()))
	                       : json_null());
	if (!with_payload)
		return o;
	if (mqtt_utf8_is_valid(p.p, p.len) && !memchr(p.p, 0, p.len)) {
		admin_set(o, "payload", admin_strn(p.p, p.len));
		return o;
	}
	b64 = malloc(4 * ((p.len + 2) / 3) + 1);
	if (b64) {
		EVP_EncodeBlock(b64, p.p, (int)p.len);
		admin_set(o, "payload_base64", admin_str((char *)b64));
	}
	free(b64);
	return o;
}

static void
admin_retained_one(struct msg *m, void *arg)
{
	struct admin_list *l = arg;

	if (m->expiry_ms && !msg_expiry_left_s(m, node_now_ms()))
		return;
	json_array_append_new(l->items, admin_retained_json(m, false));
}

static int
admin_get_retained_list(struct admin_req *r, json_t **out)
{
	const char *pat = admin_arg(r, "pattern");
	struct mqtt_bytes f;
	struct admin_list l;

	f.p = (const uint8_t *)(pat ? pat : "#");
	f.len = strlen((const char *)f.p);
	if (!mqtt_topic_filter_is_valid(f)) {
		*out = admin_error("pattern is not a valid topic filter");
		return 400;
	}
	if (admin_list_init(&l, r))
		retain_match(admin_node(r)->retained, f, admin_retained_one,
		             &l);
	*out = l.items;
	return 200;
}

/* The live retained message of the topic in the path, or NULL with *out
 * the error and *status 400 or 404. */
static struct msg *
admin_retained_find(struct admin_req *r, json_t **out, int *status)
{
	struct mqtt_bytes t = { (const uint8_t *)r->id, strlen(r->id) };
	struct msg *m;

	*status = 400;
	if (!mqtt_topic_name_is_valid(t)) {
		*out = admin_error("not a valid topic name");
		return NULL;
	}
	m = retain_get(admin_node(r)->retained, t);
	if (!m || !m->payload_len ||
	    (m->expiry_ms && !msg_expiry_left_s(m, node_now_ms()))) {
		*status = 404;
		*out = admin_error("no retained message on that topic");
		return NULL;
	}
	return m;
}

static int
admin_get_retained(struct admin_req *r, json_t **out)
{
	int status;
	struct msg *m = admin_retained_find(r, out, &status);

	if (!m)
		return status;
	*out = admin_retained_json(m, true);
	return 200;
}

/* Clears a retained message as an empty retained PUBLISH would, without
 * delivering anything: stored, and replicated to the cluster. */
static int
admin_del_retained(struct admin_req *r, json_t **out)
{
	struct node *n = admin_node(r);
	struct msg *clr, *m;
	int status;

	m = admin_retained_find(r, out, &status);
	if (!m)
		return status;
	clr = router_msg_new(n, msg_topic(m), (struct mqtt_bytes){ NULL, 0 },
	                     NULL, 0, true);
	if (!clr) {
		*out = admin_error("out of memory");
		return 500;
	}
	clr->stamp = mesh_stamp(n);
	if (retain_set(n->retained, clr) != 0) {
		msg_unref(clr);
		*out = admin_error("out of memory");
		return 500;
	}
	persist_retained(n, clr);
	mesh_retained(n, clr);
	msg_unref(clr);
	log_info("admin: retained message deleted topic_len=%zu",
	         strlen(r->id));
	*out = json_pack("{s:o,s:b}", "topic", admin_str(r->id), "deleted", 1);
	return 200;
}

/* ---- metrics ---- */

static json_t *
admin_hist_json(const struct store_stats *st)
{
	json_t *o = json_object(), *b = json_object();
	uint64_t bound, cum = 0;
	char key[32];
	size_t i;

	if (!o || !b) {
		json_decref(o);
		json_decref(b);
		return NULL;
	}
	for (i = 0; i < STORE_COMMIT_BUCKETS; i++) {
		bound = store_commit_bound_us(i);
		cum += st->commit_hist[i];
		if (bound == UINT64_MAX)
			snprintf(key, sizeof(key), "+Inf");
		else
			snprintf(key, sizeof(key), "%llu",
			         (unsigned long long)bound);
		admin_set(b, key, admin_u64(cum));
	}
	admin_set(o, "count", admin_u64(st->commits));
	admin_set(o, "sum_us", admin_u64(st->commit_us_sum));
	admin_set(o, "buckets_le_us", b);
	return o;
}

static int
admin_get_metrics(struct admin_req *r, json_t **out)
{
	struct node *n = admin_node(r);
	json_t *o = json_object(), *m = json_object(), *p = json_object();
	struct metrics_snap s;
	char name[128];
	size_t i;

	metrics_collect(n, &s);
	if (!o || !m || !p) {
		metrics_snap_fini(&s);
		json_decref(o);
		json_decref(m);
		json_decref(p);
		*out = NULL;
		return 500;
	}
	for (i = 0; i < METRIC_N; i++) {
		metrics_json_name(i, name, sizeof(name));
		admin_set(m, name, admin_u64(s.v[i]));
	}
	for (i = 0; i < s.n_peers; i++)
		admin_set(p, s.peers[i].name,
		          json_pack("{s:s,s:I,s:I}", "link",
		                    s.peers[i].link_up ? "up" : "down",
		                    "routes", (json_int_t)s.peers[i].routes,
		                    "outbox", (json_int_t)s.peers[i].outbox));
	admin_set(o, "node", admin_str(n->cfg->node_name));
	admin_set(o, "metrics", m);
	admin_set(o, "storage_commit_latency", admin_hist_json(&s.g.st));
	admin_set(o, "cluster_peers", p);
	metrics_snap_fini(&s);
	*out = o;
	return 200;
}

const struct admin_route admin_routes[] = {
	{ "status", 0, EVHTTP_REQ_GET, admin_get_status, ADMIN_SCOPE_LOCAL },
	{ "listeners", 0, EVHTTP_REQ_GET, admin_get_listeners,
	  ADMIN_SCOPE_LOCAL },
	{ "cluster", 0, EVHTTP_REQ_GET, admin_get_cluster, ADMIN_SCOPE_VIEWS },
	{ "cluster", 1, EVHTTP_REQ_POST, admin_post_cluster,
	  ADMIN_SCOPE_LOCAL },
	{ "clients", 0, EVHTTP_REQ_GET, admin_get_clients, ADMIN_SCOPE_MERGE },
	{ "clients", 1, EVHTTP_REQ_GET, admin_get_client, ADMIN_SCOPE_FIRST },
	{ "clients", 1, EVHTTP_REQ_DELETE, admin_del_client,
	  ADMIN_SCOPE_FIRST },
	{ "sessions", 0, EVHTTP_REQ_GET, admin_get_sessions,
	  ADMIN_SCOPE_MERGE },
	{ "sessions", 1, EVHTTP_REQ_GET, admin_get_session, ADMIN_SCOPE_FIRST },
	{ "sessions", 1, EVHTTP_REQ_DELETE, admin_del_session,
	  ADMIN_SCOPE_FIRST },
	{ "subscriptions", 0, EVHTTP_REQ_GET, admin_get_subs,
	  ADMIN_SCOPE_MERGE },
	{ "routes", 0, EVHTTP_REQ_GET, admin_get_routes, ADMIN_SCOPE_PAGE },
	{ "retained", 0, EVHTTP_REQ_GET, admin_get_retained_list,
	  ADMIN_SCOPE_PAGE },
	{ "retained", 1, EVHTTP_REQ_GET, admin_get_retained,
	  ADMIN_SCOPE_LOCAL },
	{ "retained", 1, EVHTTP_REQ_DELETE, admin_del_retained,
	  ADMIN_SCOPE_LOCAL },
	{ "metrics", 0, EVHTTP_REQ_GET, admin_get_metrics, ADMIN_SCOPE_LOCAL },
	{ NULL, 0, 0, NULL, 0 },
};
