/*
 * The subscription trie of topic.h: one node per filter level, '+' and '#'
 * children apart from the literal children, and at each node the set of
 * subscribers whose filter ends there. Owns its nodes and tables, never the
 * subscribers.
 */
#include "broker/topic.h"

#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "broker/trie_int.h"

/*
 * Literal children sit in trie_int.h's tables. Subscribers live in the same
 * kind of table, for the same reason (a node can have 10^4 of them), keyed
 * by address: open addressing with linear probing and backward-shift
 * deletion, sized by trie_tab_cap, one slot inline in the node.
 */

struct sub_ent {
	void *sub;                  /* subscriber, NULL = free slot */
	struct topic_sub_opts opts; /* its options on this filter */
};

struct tnode {
	struct trie_node tn; /* parent, literal children by level, level */
	struct tnode *plus;  /* '+' child */
	struct tnode *hash;  /* '#' child */
	/* subscribers of the filter ending here */
	union {
		struct sub_ent one;  /* sub_cap == 1 */
		struct sub_ent *tab; /* sub_cap > 1 */
	} subs;
	uint32_t n_subs;  /* subscribers */
	uint32_t sub_cap; /* slots in subs, a power of two */
	uint8_t level[];  /* the level, tn.len bytes, not NUL-terminated */
};

static_assert(offsetof(struct tnode, tn) == 0, "a tnode is a trie_node");

struct topic_tree {
	struct tnode *root; /* level of no filter, never pruned */
	size_t count;       /* (filter, subscriber) pairs */
	struct trie trie;   /* hash key and node count */
};

static const uint8_t empty[1];

static struct tnode *
node_of(struct trie_node *n)
{
	return (struct tnode *)n;
}

static uint32_t
ptr_hash(const void *p)
{
	return (uint32_t)(((uint64_t)(uintptr_t)p * 0x9e3779b97f4a7c15u) >> 32);
}

/* ---- subscribers of one node ---- */

static struct sub_ent *
sub_slots(struct tnode *n)
{
	return n->sub_cap == 1 ? &n->subs.one : n->subs.tab;
}

static struct sub_ent *
sub_find(struct tnode *n, const void *sub)
{
	struct sub_ent *s = sub_slots(n);
	uint32_t mask = n->sub_cap - 1, i, j = ptr_hash(sub) & mask;

	for (i = 0; i < n->sub_cap; i++, j = (j + 1) & mask) {
		if (!s[j].sub)
			return NULL;
		if (s[j].sub == sub)
			return &s[j];
	}
	return NULL;
}

static void
sub_place(struct sub_ent *s, uint32_t mask, const struct sub_ent *e)
{
	uint32_t j = ptr_hash(e->sub) & mask;

	while (s[j].sub)
		j = (j + 1) & mask;
	s[j] = *e;
}

static int
sub_resize(struct tnode *n, uint32_t cap)
{
	struct sub_ent *old = sub_slots(n), *s, one = { 0 };
	uint32_t i;

	s = &one;
	if (cap > 1) {
		s = calloc(cap, sizeof(*s));
		if (!s)
			return ERR_NOMEM;
	}
	for (i = 0; i < n->sub_cap; i++)
		if (old[i].sub)
			sub_place(s, cap - 1, &old[i]);
	if (n->sub_cap > 1)
		free(old);
	if (cap > 1)
		n->subs.tab = s;
	else
		n->subs.one = one;
	n->sub_cap = cap;
	return 0;
}

/* Adds sub or replaces its options; *added says which. */
static int
sub_put(struct tnode *n, void *sub, const struct topic_sub_opts *opts,
        bool *added)
{
	struct sub_ent e = { sub, *opts }, *old = sub_find(n, sub);
	uint32_t cap;

	*added = !old;
	if (old) {
		old->opts = *opts;
		return 0;
	}
	cap = trie_tab_cap(n->n_subs + 1);
	if (!cap)
		return ERR_NOMEM;
	if (cap > n->sub_cap && sub_resize(n, cap))
		return ERR_NOMEM;
	sub_place(sub_slots(n), n->sub_cap - 1, &e);
	n->n_subs++;
	return 0;
}

static int
sub_del(struct tnode *n, const void *sub)
{
	struct sub_ent *s = sub_slots(n), *e = sub_find(n, sub);
	uint32_t mask = n->sub_cap - 1, i, j, home;

	if (!e)
		return ERR_NOTFOUND;
	i = (uint32_t)(e - s);
	s[i].sub = NULL;
	for (j = (i + 1) & mask; s[j].sub; j = (j + 1) & mask) {
		home = ptr_hash(s[j].sub) & mask;
		if (((j - home) & mask) >= ((j - i) & mask)) {
			s[i] = s[j];
			s[j].sub = NULL;
			i = j;
		}
	}
	n->n_subs--;
	if (n->n_subs <= 1 && n->sub_cap > 1)
		(void)sub_resize(n, 1);
	else if (n->sub_cap > 4 && n->n_subs < n->sub_cap / 4)
		(void)sub_resize(n, n->sub_cap / 2);
	return 0;
}

static void
sub_emit(struct tnode *n, topic_match_fn fn, void *arg)
{
	struct sub_ent *s = sub_slots(n);
	uint32_t i;

	if (!n->n_subs)
		return;
	for (i = 0; i < n->sub_cap; i++)
		if (s[i].sub)
			fn(s[i].sub, &s[i].opts, arg);
}

/* ---- nodes ---- */

static struct tnode *
node_new(struct topic_tree *t, struct tnode *parent, const uint8_t *p,
         size_t len, uint32_t h)
{
	struct trie_node *up = parent ? &parent->tn : NULL;
	struct tnode *n =
	        node_of(trie_node_new(&t->trie, up, sizeof(*n), p, len, h));

	if (n)
		n->sub_cap = 1;
	return n;
}

/* Frees the subscriber table of a node about to be freed. */
static void
node_fini(struct trie_node *tn)
{
	struct tnode *n = node_of(tn);

	if (n->sub_cap > 1)
		free(n->subs.tab);
}

static void
node_free(struct topic_tree *t, struct tnode *n)
{
	node_fini(&n->tn);
	trie_node_free(&t->trie, &n->tn);
}

static bool
node_is_empty(const struct tnode *n)
{
	return !n->n_subs && !n->tn.n_kids && !n->plus && !n->hash;
}

/* The literal child of n for level p[0..len), or NULL. */
static struct tnode *
kid_get(struct topic_tree *t, struct tnode *n, const uint8_t *p, size_t len)
{
	return node_of(trie_kid_get(&t->trie, &n->tn, p, len));
}

/* The child of n for filter level p[0..len), or NULL. */
static struct tnode *
child_get(struct topic_tree *t, struct tnode *n, const uint8_t *p, size_t len)
{
	if (trie_level_is(p, len, '+'))
		return n->plus;
	if (trie_level_is(p, len, '#'))
		return n->hash;
	return kid_get(t, n, p, len);
}

/* The child of n for filter level p[0..len), made if needed; NULL: NOMEM. */
static struct tnode *
child_make(struct topic_tree *t, struct tnode *n, const uint8_t *p, size_t len)
{
	struct tnode **wild = NULL, *c;
	uint32_t h = 0;

	if (trie_level_is(p, len, '+'))
		wild = &n->plus;
	else if (trie_level_is(p, len, '#'))
		wild = &n->hash;
	if (wild) {
		if (!*wild)
			*wild = node_new(t, n, p, len, 0);
		return *wild;
	}
	h = trie_hash(&t->trie, p, len);
	c = node_of(trie_kid_find(&t->trie, &n->tn, p, len, h));
	if (c)
		return c;
	c = node_new(t, n, p, len, h);
	if (c && trie_kid_add(&n->tn, &c->tn)) {
		node_free(t, c);
		return NULL;
	}
	return c;
}

/* Frees n and its ancestors for as long as they hold nothing. */
static void
prune(struct topic_tree *t, struct tnode *n)
{
	struct tnode *p;

	while (n != t->root && node_is_empty(n)) {
		p = node_of(n->tn.parent);
		if (p->plus == n)
			p->plus = NULL;
		else if (p->hash == n)
			p->hash = NULL;
		else
			trie_kid_del(&p->tn, &n->tn);
		node_free(t, n);
		n = p;
	}
}

/* ---- the tree ---- */

struct topic_tree *
topic_tree_new(void)
{
	struct topic_tree *t = malloc(sizeof(*t));

	if (!t)
		return NULL;
	memset(t, 0, sizeof(*t));
	trie_init(&t->trie, offsetof(struct tnode, level), t);
	t->root = node_new(t, NULL, NULL, 0, 0);
	if (!t->root) {
		free(t);
		return NULL;
	}
	return t;
}

/* Detaches the '+' or else the '#' child of n, for freeing the tree. */
static struct trie_node *
wild_pop(struct trie_node *tn)
{
	struct tnode *n = node_of(tn), *c = NULL;

	if (n->plus) {
		c = n->plus;
		n->plus = NULL;
	} else if (n->hash) {
		c = n->hash;
		n->hash = NULL;
	}
	return c ? &c->tn : NULL;
}

void
topic_tree_free(struct topic_tree *t)
{
	if (!t)
		return;
	trie_free_all(&t->trie, &t->root->tn, wild_pop, node_fini);
	free(t);
}

int
topic_tree_add(struct topic_tree *t, struct mqtt_bytes filter, void *sub,
               const struct topic_sub_opts *opts, bool *replaced)
{
	struct tnode *n = t->root, *c;
	size_t pos, end;
	bool added;

	assert(sub && opts);
	if (filter.len > UINT16_MAX)
		return ERR_TOO_LARGE;
	if (!filter.p)
		filter.p = empty;
	for (pos = 0; pos <= filter.len; pos = end + 1) {
		end = trie_level_end(filter, pos);
		c = child_make(t, n, filter.p + pos, end - pos);
		if (!c)
			goto out_prune;
		n = c;
	}
	if (sub_put(n, sub, opts, &added))
		goto out_prune;
	if (added)
		t->count++;
	if (replaced)
		*replaced = !added;
	return 0;

out_prune:
	/* the nodes this call made are empty; existing ones are not */
	prune(t, n);
	return ERR_NOMEM;
}

int
topic_tree_remove(struct topic_tree *t, struct mqtt_bytes filter, void *sub)
{
	struct tnode *n = t->root;
	size_t pos, end;

	if (!filter.p)
		filter.p = empty;
	for (pos = 0; n && pos <= filter.len; pos = end + 1) {
		end = trie_level_end(filter, pos);
		n = child_get(t, n, filter.p + pos, end - pos);
	}
	if (!n || sub_del(n, sub))
		return ERR_NOTFOUND;
	t->count--;
	prune(t, n);
	return 0;
}

/*
 * Depth-first over the filters that can match, without recursion: at a node
 * (topic levels from pos on still to match) the '#' child matches; past the
 * last level the node itself matches; otherwise go down the '+' child, then
 * the literal child. Backing up recomputes pos from the topic.
 */
void
topic_tree_match(struct topic_tree *t, struct mqtt_bytes topic,
                 topic_match_fn fn, void *arg)
{
	struct tnode *root = t->root, *n = root, *c, *p;
	/* [MQTT-4.7.2-1] no first-level wildcard for topics starting with $ */
	bool dollar = topic.len > 0 && topic.p[0] == '$';
	size_t pos = 0, end;

	if (!topic.p)
		topic.p = empty;
	for (;;) {
		bool wild = n != root || !dollar;

		if (n->hash && wild)
			sub_emit(n->hash, fn, arg);
		c = NULL;
		if (pos > topic.len)
			sub_emit(n, fn, arg);
		else if (n->plus && wild)
			c = n->plus;
		else
			c = kid_get(t, n, topic.p + pos,
			            trie_level_end(topic, pos) - pos);
		while (!c) {
			if (n == root)
				return;
			p = node_of(n->tn.parent);
			pos = trie_level_prev(topic, pos);
			if (n == p->plus) {
				end = trie_level_end(topic, pos);
				c = kid_get(t, p, topic.p + pos, end - pos);
			}
			n = p;
		}
		n = c;
		pos = trie_level_end(topic, pos) + 1;
	}
}

size_t
topic_tree_count(const struct topic_tree *t)
{
	return t->count;
}

size_t
topic_tree_node_count(const struct topic_tree *t)
{
	return t->trie.nodes;
}
