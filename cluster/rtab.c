/*
 * The remote route table: topic filter -> the set of nodes (member slots)
 * that announced it, plus per-node filter counts. Matching scans every
 * filter with mqtt_topic_matches() and reports each node once, using a
 * per-node generation stamp; a trie replaces the scan in a later slice.
 */
#include "cluster/cluster.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster_int.h"

#define RTAB_MIN_BUCKETS 16

static uint32_t
rtab_hash(struct mqtt_bytes f)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	size_t i;

	for (i = 0; i < f.len; i++) {
		h ^= f.p[i];
		h *= 16777619u;
	}
	return h;
}

void
rtab_init(struct rtab *t)
{
	memset(t, 0, sizeof(*t));
}

static void
rtab_entry_free(struct rtab_entry *e)
{
	free(e->nodes);
	free(e);
}

void
rtab_fini(struct rtab *t)
{
	struct rtab_entry *e, *next;
	size_t i;

	if (t == NULL)
		return;
	for (i = 0; i < t->n_buckets; i++) {
		for (e = t->buckets[i]; e != NULL; e = next) {
			next = e->next;
			rtab_entry_free(e);
		}
	}
	free(t->buckets);
	free(t->count);
	free(t->stamp);
	memset(t, 0, sizeof(*t));
}

/* The chain link pointing at the entry for f, or at the chain's end. */
static struct rtab_entry **
rtab_find(struct rtab *t, struct mqtt_bytes f, uint32_t h)
{
	struct rtab_entry **pp;

	if (t->n_buckets == 0)
		return NULL;
	pp = &t->buckets[h & (t->n_buckets - 1)];
	for (; *pp != NULL; pp = &(*pp)->next) {
		if ((*pp)->hash == h && (*pp)->len == f.len &&
		    memcmp((*pp)->filter, f.p, f.len) == 0)
			break;
	}
	return pp;
}

static int
rtab_grow_buckets(struct rtab *t)
{
	struct rtab_entry **nb, *e, *next;
	size_t n, i;

	if (t->n_entries < t->n_buckets)
		return 0;
	n = t->n_buckets ? t->n_buckets * 2 : RTAB_MIN_BUCKETS;
	nb = calloc(n, sizeof(*nb));
	if (nb == NULL)
		return t->n_buckets ? 0
		                    : ERR_NOMEM; /* a full table still works */
	for (i = 0; i < t->n_buckets; i++) {
		for (e = t->buckets[i]; e != NULL; e = next) {
			next = e->next;
			e->next = nb[e->hash & (n - 1)];
			nb[e->hash & (n - 1)] = e;
		}
	}
	free(t->buckets);
	t->buckets = nb;
	t->n_buckets = n;
	return 0;
}

static int
rtab_grow_slots(struct rtab *t, uint32_t slot)
{
	uint32_t n = t->n_slots ? t->n_slots : 8;
	uint32_t *count, *stamp;

	if (slot < t->n_slots)
		return 0;
	while (n <= slot)
		n *= 2;
	count = realloc(t->count, n * sizeof(*count));
	if (count == NULL)
		return ERR_NOMEM;
	t->count = count;
	stamp = realloc(t->stamp, n * sizeof(*stamp));
	if (stamp == NULL)
		return ERR_NOMEM; /* count is bigger than n_slots: harmless */
	t->stamp = stamp;
	memset(count + t->n_slots, 0, (n - t->n_slots) * sizeof(*count));
	memset(stamp + t->n_slots, 0, (n - t->n_slots) * sizeof(*stamp));
	t->n_slots = n;
	return 0;
}

static int
rtab_entry_push(struct rtab_entry *e, uint32_t slot)
{
	uint32_t *nodes;
	uint32_t cap;

	if (e->n_nodes == e->cap_nodes) {
		cap = e->cap_nodes ? e->cap_nodes * 2 : 2;
		nodes = realloc(e->nodes, cap * sizeof(*nodes));
		if (nodes == NULL)
			return ERR_NOMEM;
		e->nodes = nodes;
		e->cap_nodes = cap;
	}
	e->nodes[e->n_nodes++] = slot;
	return 0;
}

static struct rtab_entry *
rtab_entry_new(struct mqtt_bytes f, uint32_t h)
{
	struct rtab_entry *e = malloc(sizeof(*e) + f.len);

	if (e == NULL)
		return NULL;
	memset(e, 0, sizeof(*e));
	e->hash = h;
	e->len = f.len;
	if (f.len)
		memcpy(e->filter, f.p, f.len);
	return e;
}

int
rtab_add(struct rtab *t, struct mqtt_bytes f, uint32_t slot)
{
	uint32_t h = rtab_hash(f);
	struct rtab_entry **pp, *e;
	uint32_t i;

	if (rtab_grow_slots(t, slot) || rtab_grow_buckets(t))
		return ERR_NOMEM;
	pp = rtab_find(t, f, h);
	e = *pp;
	if (e != NULL) {
		for (i = 0; i < e->n_nodes; i++) {
			if (e->nodes[i] == slot)
				return ERR_EXISTS;
		}
		if (rtab_entry_push(e, slot))
			return ERR_NOMEM;
	} else {
		e = rtab_entry_new(f, h);
		if (e == NULL)
			return ERR_NOMEM;
		if (rtab_entry_push(e, slot)) {
			rtab_entry_free(e);
			return ERR_NOMEM;
		}
		*pp = e;
		t->n_entries++;
	}
	t->count[slot]++;
	return 0;
}

/* Removes slot from *pp's entry, and the entry when it becomes empty.
 * @return 0 (slot not there), 1 (removed) or 2 (removed with the entry,
 * *pp now being the next one) */
static int
rtab_unlink_slot(struct rtab *t, struct rtab_entry **pp, uint32_t slot)
{
	struct rtab_entry *e = *pp;
	uint32_t i;

	for (i = 0; i < e->n_nodes; i++) {
		if (e->nodes[i] == slot)
			break;
	}
	if (i == e->n_nodes)
		return 0;
	e->nodes[i] = e->nodes[--e->n_nodes];
	t->count[slot]--;
	if (e->n_nodes > 0)
		return 1;
	*pp = e->next;
	rtab_entry_free(e);
	t->n_entries--;
	return 2;
}

int
rtab_del(struct rtab *t, struct mqtt_bytes f, uint32_t slot)
{
	struct rtab_entry **pp = rtab_find(t, f, rtab_hash(f));

	if (pp == NULL || *pp == NULL || slot >= t->n_slots ||
	    rtab_unlink_slot(t, pp, slot) == 0)
		return ERR_NOTFOUND;
	return 0;
}

void
rtab_drop_node(struct rtab *t, uint32_t slot)
{
	struct rtab_entry **pp;
	size_t i;

	if (slot >= t->n_slots || t->count[slot] == 0)
		return;
	for (i = 0; i < t->n_buckets && t->count[slot] > 0; i++) {
		pp = &t->buckets[i];
		while (*pp != NULL) {
			if (rtab_unlink_slot(t, pp, slot) != 2)
				pp = &(*pp)->next;
		}
	}
}

size_t
rtab_node_routes(const struct rtab *t, uint32_t slot)
{
	return slot < t->n_slots ? t->count[slot] : 0;
}

/* True when every node of e was already reported in this match. */
static bool
rtab_entry_done(const struct rtab *t, const struct rtab_entry *e)
{
	uint32_t i;

	for (i = 0; i < e->n_nodes; i++) {
		if (t->stamp[e->nodes[i]] != t->gen)
			return false;
	}
	return true;
}

size_t
rtab_match(struct rtab *t, struct mqtt_bytes topic,
           void (*fn)(void *arg, uint32_t slot), void *arg)
{
	struct rtab_entry *e;
	size_t i, n = 0;
	uint32_t j;

	if (t->n_entries == 0)
		return 0;
	if (++t->gen == 0) {
		memset(t->stamp, 0, t->n_slots * sizeof(*t->stamp));
		t->gen = 1;
	}
	for (i = 0; i < t->n_buckets; i++) {
		for (e = t->buckets[i]; e != NULL; e = e->next) {
			struct mqtt_bytes f = { e->filter, e->len };

			if (rtab_entry_done(t, e) ||
			    !mqtt_topic_matches(f, topic))
				continue;
			for (j = 0; j < e->n_nodes; j++) {
				if (t->stamp[e->nodes[j]] == t->gen)
					continue;
				t->stamp[e->nodes[j]] = t->gen;
				fn(arg, e->nodes[j]);
				n++;
			}
		}
	}
	return n;
}

/* The filter of a shared subscription key "$share/{name}/{filter}". */
static bool
rtab_share_filter(const uint8_t *key, size_t len, struct mqtt_bytes *f)
{
	static const char pre[] = "$share/";
	size_t i = sizeof(pre) - 1;

	if (len <= i || memcmp(key, pre, i) != 0)
		return false;
	while (i < len && key[i] != '/')
		i++;
	if (i + 1 >= len)
		return false;
	f->p = key + i + 1;
	f->len = len - i - 1;
	return true;
}

void
rtab_match_shared(struct rtab *t, struct mqtt_bytes topic,
                  void (*fn)(void *arg, const struct rtab_entry *e), void *arg)
{
	struct rtab_entry *e;
	struct mqtt_bytes f;
	size_t i;

	for (i = 0; i < t->n_buckets; i++) {
		for (e = t->buckets[i]; e != NULL; e = e->next) {
			if (rtab_share_filter(e->filter, e->len, &f) &&
			    mqtt_topic_matches(f, topic))
				fn(arg, e);
		}
	}
}

const struct rtab_entry *
rtab_get(const struct rtab *t, struct mqtt_bytes f)
{
	struct rtab_entry **pp = rtab_find((struct rtab *)t, f, rtab_hash(f));

	return pp != NULL ? *pp : NULL;
}
