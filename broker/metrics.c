/*
 * Metrics: reads METRICS_TABLE from struct node into a snapshot (one walk
 * over the sessions for the gauges), and writes a snapshot as Prometheus
 * text. The JSON form is written by admin.c, the $SYS form by sys.c.
 */
#include "broker/metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "broker/node.h"
#include "cluster/cluster.h"

const struct metric_def metrics_defs[METRIC_N] = {
#define METRICS_DEF(id, fam, lk, lv, type, sys, help, val) \
	[METRIC_##id] = { fam, lk, lv, type, sys, help },
	METRICS_TABLE(METRICS_DEF)
#undef METRICS_DEF
};

int
metrics_refuse_reason(uint8_t rc)
{
	switch (rc) {
	case MQTT_CONNACK_V3_BAD_CREDENTIALS:
	case MQTT_RC_BAD_USER_OR_PASSWORD:
		return NODE_REFUSE_BAD_CREDENTIALS;
	case MQTT_CONNACK_V3_NOT_AUTHORIZED:
	case MQTT_RC_NOT_AUTHORIZED:
	case MQTT_RC_BAD_AUTH_METHOD:
		return NODE_REFUSE_NOT_AUTHORIZED;
	case MQTT_CONNACK_V3_ID_REJECTED:
	case MQTT_RC_CLIENT_ID_INVALID:
		return NODE_REFUSE_CLIENT_ID;
	case MQTT_CONNACK_V3_BAD_VERSION:
	case MQTT_RC_UNSUPPORTED_VERSION:
		return NODE_REFUSE_PROTOCOL;
	case MQTT_CONNACK_V3_UNAVAILABLE:
	case MQTT_RC_SERVER_UNAVAILABLE:
	case MQTT_RC_SERVER_BUSY:
		return NODE_REFUSE_UNAVAILABLE;
	default:
		return NODE_REFUSE_OTHER;
	}
}

static void
metrics_walk_sess(struct sess *s, void *arg)
{
	struct metrics_gauges *g = arg;
	struct sess_sub *sub;

	if (s->conn)
		g->sess_online++;
	else
		g->sess_offline++;
	for (sub = s->subs; sub; sub = sub->next)
		g->subs++;
	g->queued += s->n_queued;
	g->inflight += s->n_inflight;
}

struct metrics_peers_ctx {
	struct metrics_snap *s;
	size_t cap;
	int rc;
};

static void
metrics_walk_member(void *arg, const struct cluster_member *m)
{
	struct metrics_peers_ctx *x = arg;
	struct metrics_snap *s = x->s;
	struct metrics_peer *p;
	size_t cap;

	if ((int)m->state >= 0 && (int)m->state < 4)
		s->g.members[m->state]++;
	if (m->self)
		return;
	if (m->link_up)
		s->g.links_up++;
	if (x->rc)
		return;
	if (s->n_peers == x->cap) {
		cap = x->cap ? x->cap * 2 : 8;
		p = realloc(s->peers, cap * sizeof(*p));
		if (!p) {
			x->rc = ERR_NOMEM;
			return;
		}
		s->peers = p;
		x->cap = cap;
	}
	p = &s->peers[s->n_peers];
	p->name = strdup(m->name);
	if (!p->name) {
		x->rc = ERR_NOMEM;
		return;
	}
	p->state = (int)m->state;
	p->link_up = m->link_up;
	p->routes = m->routes;
	p->outbox = m->outbox;
	s->n_peers++;
}

static void
metrics_count_msg(struct msg *m, void *arg)
{
	(void)m;
	(*(uint64_t *)arg)++;
}

int
metrics_collect(struct node *n, struct metrics_snap *s)
{
	struct metrics_peers_ctx x = { s, 0, 0 };
	struct metrics_gauges *g = &s->g;

	memset(s, 0, sizeof(*s));
	g->uptime_s = (node_now_ms() - n->started_ms) / 1000;
	/* the $SYS topics this node retains itself are not counted */
	retain_match(n->retained,
	             (struct mqtt_bytes){ (const uint8_t *)"$SYS/#", 6 },
	             metrics_count_msg, &g->retained);
	g->retained = retain_count(n->retained) - g->retained;
	sess_foreach(n, metrics_walk_sess, g);
	if (n->store)
		store_stats_get(n->store, &g->st);
	cluster_members(mesh_cluster(n), metrics_walk_member, &x);
	cluster_stats_get(mesh_cluster(n), &g->cl);
#define METRICS_VAL(id, fam, lk, lv, type, sys, help, val) \
	s->v[METRIC_##id] = (uint64_t)(val);
	METRICS_TABLE(METRICS_VAL)
#undef METRICS_VAL
	if (x.rc) {
		metrics_snap_fini(s);
		return x.rc;
	}
	return 0;
}

void
metrics_snap_fini(struct metrics_snap *s)
{
	size_t i;

	for (i = 0; i < s->n_peers; i++)
		free(s->peers[i].name);
	free(s->peers);
	s->peers = NULL;
	s->n_peers = 0;
}

void
metrics_label_escape(const char *v, char *buf, size_t len)
{
	size_t o = 0;

	if (len == 0)
		return;
	for (; *v && o + 1 < len; v++) {
		const char *esc = *v == '\\'   ? "\\\\"
		                  : *v == '"'  ? "\\\""
		                  : *v == '\n' ? "\\n"
		                               : NULL;
		if (!esc) {
			buf[o++] = *v;
			continue;
		}
		if (o + 2 >= len)
			break;
		buf[o++] = esc[0];
		buf[o++] = esc[1];
	}
	buf[o] = '\0';
}

void
metrics_json_name(size_t i, char *buf, size_t len)
{
	char *p;

	snprintf(buf, len, "%s", i < METRIC_N ? metrics_defs[i].sys : "");
	for (p = buf; *p; p++)
		if (*p == '/')
			*p = '.';
}

/* # HELP / # TYPE of the family of row @p d, once per family. */
static int
metrics_prom_head(struct evbuffer *out, const char *name, const char *help,
                  const char *type)
{
	if (evbuffer_add_printf(out, "# HELP mqd_%s %s\n# TYPE mqd_%s %s\n",
	                        name, help ? help : name, name, type) < 0)
		return ERR_NOMEM;
	return 0;
}

static int
metrics_prom_rows(struct evbuffer *out, const struct metrics_snap *s)
{
	const struct metric_def *d, *prev = NULL;
	char name[96];
	size_t i;
	int w;

	for (i = 0; i < METRIC_N; i++) {
		d = &metrics_defs[i];
		snprintf(name, sizeof(name), "%s%s", d->family,
		         d->type == METRIC_COUNTER ? "_total" : "");
		if ((!prev || strcmp(prev->family, d->family) != 0) &&
		    metrics_prom_head(out, name, d->help,
		                      d->type == METRIC_COUNTER ? "counter"
		                                                : "gauge"))
			return ERR_NOMEM;
		prev = d;
		if (d->lkey)
			w = evbuffer_add_printf(out, "mqd_%s{%s=\"%s\"} %llu\n",
			                        name, d->lkey, d->lval,
			                        (unsigned long long)s->v[i]);
		else
			w = evbuffer_add_printf(out, "mqd_%s %llu\n", name,
			                        (unsigned long long)s->v[i]);
		if (w < 0)
			return ERR_NOMEM;
	}
	return 0;
}

/* The commit latency histogram: cumulative buckets in seconds. */
static int
metrics_prom_hist(struct evbuffer *out, const struct store_stats *st)
{
	uint64_t cum = 0, b;
	size_t i;
	int w = 0;

	if (metrics_prom_head(out, "storage_commit_seconds",
	                      "Storage group commit latency", "histogram"))
		return ERR_NOMEM;
	for (i = 0; i < STORE_COMMIT_BUCKETS && w >= 0; i++) {
		cum += st->commit_hist[i];
		b = store_commit_bound_us(i);
		if (b == UINT64_MAX)
			w = evbuffer_add_printf(out,
			                        "mqd_storage_commit_seconds_"
			                        "bucket{le=\"+Inf\"} "
			                        "%llu\n",
			                        (unsigned long long)cum);
		else
			w = evbuffer_add_printf(
			        out,
			        "mqd_storage_commit_seconds_bucket{le=\"%g\"} "
			        "%llu\n",
			        (double)b / 1e6, (unsigned long long)cum);
	}
	if (w >= 0)
		w = evbuffer_add_printf(
		        out,
		        "mqd_storage_commit_seconds_sum %.6f\n"
		        "mqd_storage_commit_seconds_count %llu\n",
		        (double)st->commit_us_sum / 1e6,
		        (unsigned long long)st->commits);
	return w < 0 ? ERR_NOMEM : 0;
}

static int
metrics_prom_peers(struct evbuffer *out, const struct metrics_snap *s)
{
	char esc[512];
	size_t i;

	if (metrics_prom_head(out, "cluster_peer_up",
	                      "1 when the link to the peer is established",
	                      "gauge"))
		return ERR_NOMEM;
	for (i = 0; i < s->n_peers; i++) {
		metrics_label_escape(s->peers[i].name, esc, sizeof(esc));
		if (evbuffer_add_printf(out,
		                        "mqd_cluster_peer_up{peer=\"%s\"} %d\n",
		                        esc, s->peers[i].link_up ? 1 : 0) < 0)
			return ERR_NOMEM;
	}
	if (metrics_prom_head(out, "cluster_peer_outbox",
	                      "Forwards waiting for the peer's ack", "gauge"))
		return ERR_NOMEM;
	for (i = 0; i < s->n_peers; i++) {
		metrics_label_escape(s->peers[i].name, esc, sizeof(esc));
		if (evbuffer_add_printf(
		            out,
		            "mqd_cluster_peer_outbox{peer=\"%s\"} "
		            "%llu\n",
		            esc, (unsigned long long)s->peers[i].outbox) < 0)
			return ERR_NOMEM;
	}
	return 0;
}

int
metrics_prom(struct evbuffer *out, const struct metrics_snap *s)
{
	int rc = metrics_prom_rows(out, s);

	if (!rc)
		rc = metrics_prom_hist(out, &s->g.st);
	if (!rc)
		rc = metrics_prom_peers(out, s);
	return rc;
}
