/*
 * Shared subscriptions ($share/{name}/{filter}, MQTT 5 section 4.8.2, also
 * offered to 3.1.1 clients): one group per share name and filter, entered
 * in the subscription trie once with the group as its subscriber. Each
 * matching message goes to one member, round robin, skipping members
 * that are offline or whose in-flight window is full while another can
 * take it.
 */
#include "broker/node.h"

#include <stdlib.h>
#include <string.h>

struct share_member {
	struct sess *sess;
	struct topic_sub_opts opts;
};

struct share_group {
	struct share_group *next;     /* node->groups */
	struct share_member *members; /* joined order */
	uint32_t n;
	uint32_t cap;
	uint32_t rr;  /* next member to try */
	uint16_t off; /* start of the filter in key */
	uint16_t len; /* bytes of key */
	char key[];   /* "$share/{name}/{filter}" */
};

int
share_parse(struct mqtt_bytes f, bool *shared, struct mqtt_bytes *filter)
{
	static const char pre[] = "$share/";
	size_t plen = sizeof(pre) - 1, i;

	*shared = f.len >= plen && memcmp(f.p, pre, plen) == 0;
	if (!*shared)
		return 0;
	/* [MQTT-4.8.2-1] [MQTT-4.8.2-2] v5: a non-empty name without
	 * wildcards, then '/', then a valid topic filter */
	for (i = plen; i < f.len && f.p[i] != '/'; i++)
		if (f.p[i] == '+' || f.p[i] == '#')
			return ERR_BAD_FILTER;
	if (i == plen || i + 1 >= f.len)
		return ERR_BAD_FILTER;
	filter->p = f.p + i + 1;
	filter->len = f.len - i - 1;
	return mqtt_topic_filter_is_valid(*filter) ? 0 : ERR_BAD_FILTER;
}

static struct share_group *
share_find(struct node *n, struct mqtt_bytes full)
{
	struct share_group *g;

	for (g = n->groups; g; g = g->next)
		if (g->len == full.len && memcmp(g->key, full.p, full.len) == 0)
			return g;
	return NULL;
}

static struct mqtt_bytes
share_filter(const struct share_group *g)
{
	return (struct mqtt_bytes){ (const uint8_t *)g->key + g->off,
		                    (size_t)g->len - g->off };
}

int
share_add(struct node *n, struct mqtt_bytes full, struct mqtt_bytes filter,
          struct sess *s, const struct topic_sub_opts *opts)
{
	struct share_group *g = share_find(n, full);
	struct topic_sub_opts gopts = { .shared = true };
	struct share_member *m;
	uint32_t i;

	if (!g) {
		g = calloc(1, sizeof(*g) + full.len);
		if (!g)
			return ERR_NOMEM;
		memcpy(g->key, full.p, full.len);
		g->len = (uint16_t)full.len;
		g->off = (uint16_t)(filter.p - full.p);
		if (topic_tree_add(n->subs, filter, g, &gopts, NULL)) {
			free(g);
			return ERR_NOMEM;
		}
		g->next = n->groups;
		n->groups = g;
	}
	for (i = 0; i < g->n; i++) {
		if (g->members[i].sess == s) {
			g->members[i].opts = *opts;
			return 0;
		}
	}
	if (g->n == g->cap) {
		uint32_t cap = g->cap ? g->cap * 2 : 4;
		m = realloc(g->members, cap * sizeof(*m));
		if (!m)
			goto out_nomem;
		g->members = m;
		g->cap = cap;
	}
	g->members[g->n].sess = s;
	g->members[g->n].opts = *opts;
	g->n++;
	return 0;
out_nomem:
	if (g->n == 0)
		share_remove(n, full, s);
	return ERR_NOMEM;
}

int
share_remove(struct node *n, struct mqtt_bytes full, struct sess *s)
{
	struct share_group **pp, *g;
	uint32_t i;

	for (pp = &n->groups; (g = *pp); pp = &g->next)
		if (g->len == full.len && memcmp(g->key, full.p, full.len) == 0)
			break;
	if (!g)
		return ERR_NOTFOUND;
	for (i = 0; i < g->n && g->members[i].sess != s; i++)
		;
	if (i < g->n) {
		memmove(&g->members[i], &g->members[i + 1],
		        (g->n - i - 1) * sizeof(*g->members));
		g->n--;
	}
	if (g->n)
		return 0;
	topic_tree_remove(n->subs, share_filter(g), g);
	*pp = g->next;
	free(g->members);
	free(g);
	return 0;
}

/* Can @p s take a message of @p qos now without queueing it? */
static bool
share_ready(const struct sess *s, uint8_t qos)
{
	if (!s->conn)
		return false;
	if (qos == 0)
		return !conn_congested(s->conn);
	return !s->queue && s->n_inflight < conn_window(s->conn);
}

const struct topic_sub_opts *
share_pick(struct share_group *g, uint8_t qos, struct sess **out)
{
	uint32_t i, k, pick = UINT32_MAX, fallback = UINT32_MAX;

	for (i = 0; i < g->n && pick == UINT32_MAX; i++) {
		k = (g->rr + i) % g->n;
		if (share_ready(g->members[k].sess, qos))
			pick = k;
		else if (fallback == UINT32_MAX && g->members[k].sess->conn)
			fallback = k; /* connected but busy: it queues */
	}
	if (pick == UINT32_MAX)
		pick = fallback != UINT32_MAX ? fallback : g->rr % g->n;
	g->rr = pick + 1;
	*out = g->members[pick].sess;
	return &g->members[pick].opts;
}

void
share_free_all(struct node *n)
{
	struct share_group *g;

	while ((g = n->groups)) {
		n->groups = g->next;
		free(g->members);
		free(g);
	}
}

struct mqtt_bytes
share_key(const struct share_group *g)
{
	return (struct mqtt_bytes){ (const uint8_t *)g->key, g->len };
}

bool
share_exists(struct node *n, struct mqtt_bytes key)
{
	return share_find(n, key) != NULL;
}
