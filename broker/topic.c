/*
 * The subscription trie of topic.h: one node per filter level, '+' and '#'
 * children apart from the literal children, and at each node the set of
 * subscribers whose filter ends there. Owns its nodes and tables, never the
 * subscribers.
 */
#include "broker/topic.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/*
 * Literal children and subscribers live in open-addressing tables (linear
 * probing, backward-shift deletion, no tombstones), not sorted arrays: a
 * level like "devices/<id>" can have 10^5 children and a node 10^4
 * subscribers, and a sorted array would make every insertion an O(n)
 * memmove. Tables of up to 4 slots may fill up (a lookup probes at most 4),
 * larger ones stay at most 3/4 full and halve below 1/4. A one-slot table
 * is stored inline in the node, so the common node (one child, or one
 * subscriber) needs no second allocation. Levels are hashed with SipHash-1-3
 * keyed per tree, so that peers cannot pick levels that collide.
 */

struct sub_ent {
	void *sub;                  /* subscriber, NULL = free slot */
	struct topic_sub_opts opts; /* its options on this filter */
};

struct tnode {
	struct tnode *parent; /* NULL for the root */
	struct tnode *plus;   /* '+' child */
	struct tnode *hash;   /* '#' child */
	/* literal children by level */
	union {
		struct tnode *one;  /* kid_cap == 1 */
		struct tnode **tab; /* kid_cap > 1 */
	} kids;
	/* subscribers of the filter ending here */
	union {
		struct sub_ent one;  /* sub_cap == 1 */
		struct sub_ent *tab; /* sub_cap > 1 */
	} subs;
	uint32_t n_kids;  /* literal children */
	uint32_t kid_cap; /* slots in kids, a power of two */
	uint32_t n_subs;  /* subscribers */
	uint32_t sub_cap; /* slots in subs, a power of two */
	uint32_t lhash;   /* hash of level, keys the parent's table */
	uint16_t len;     /* bytes of level */
	uint8_t level[];  /* the level, not NUL-terminated */
};

struct topic_tree {
	struct tnode *root; /* level of no filter, never pruned */
	size_t count;       /* (filter, subscriber) pairs */
	size_t nodes;       /* nodes, root included */
	uint64_t key[2];    /* SipHash key of the level hashes */
};

static const uint8_t empty[1];

/* ---- hashing ---- */

static uint64_t
rotl(uint64_t x, int b)
{
	return (x << b) | (x >> (64 - b));
}

static void
sip_round(uint64_t v[4])
{
	v[0] += v[1];
	v[1] = rotl(v[1], 13) ^ v[0];
	v[0] = rotl(v[0], 32);
	v[2] += v[3];
	v[3] = rotl(v[3], 16) ^ v[2];
	v[0] += v[3];
	v[3] = rotl(v[3], 21) ^ v[0];
	v[2] += v[1];
	v[1] = rotl(v[1], 17) ^ v[2];
	v[2] = rotl(v[2], 32);
}

/* SipHash-1-3 of p[0..len) under key k. */
static uint64_t
siphash13(const uint64_t k[2], const uint8_t *p, size_t len)
{
	uint64_t v[4] = { k[0] ^ 0x736f6d6570736575u,
		          k[1] ^ 0x646f72616e646f6du,
		          k[0] ^ 0x6c7967656e657261u,
		          k[1] ^ 0x7465646279746573u };
	uint64_t m, last = (uint64_t)len << 56;
	size_t i, j;

	for (i = 0; i + 8 <= len; i += 8) {
		m = 0;
		for (j = 0; j < 8; j++)
			m |= (uint64_t)p[i + j] << (8 * j);
		v[3] ^= m;
		sip_round(v);
		v[0] ^= m;
	}
	for (j = 0; i + j < len; j++)
		last |= (uint64_t)p[i + j] << (8 * j);
	v[3] ^= last;
	sip_round(v);
	v[0] ^= last;
	v[2] ^= 0xff;
	sip_round(v);
	sip_round(v);
	sip_round(v);
	return v[0] ^ v[1] ^ v[2] ^ v[3];
}

static uint64_t
splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15u);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

/* A key peers cannot guess: the clock and ASLR'd heap and stack addresses. */
static void
hash_seed(uint64_t key[2], const void *salt)
{
	struct timespec ts = { 0 };
	uint64_t x;

	(void)clock_gettime(CLOCK_REALTIME, &ts);
	x = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	x ^= (uint64_t)(uintptr_t)salt;
	x = splitmix64(&x) ^ (uint64_t)(uintptr_t)&ts;
	key[0] = splitmix64(&x);
	key[1] = splitmix64(&x);
}

static uint32_t
ptr_hash(const void *p)
{
	return (uint32_t)(((uint64_t)(uintptr_t)p * 0x9e3779b97f4a7c15u) >> 32);
}

/* Smallest table for n entries: full up to 4 slots, 3/4 beyond; 0 if none. */
static uint32_t
tab_cap_for(uint32_t n)
{
	uint32_t cap = 1;

	while (cap < n || (cap > 4 && n > cap / 4 * 3)) {
		if (cap > UINT32_MAX / 4)
			return 0;
		cap *= 2;
	}
	return cap;
}

/* ---- topic levels ---- */

/* End of the level starting at pos: the index of its '/' or s.len. */
static size_t
level_end(struct mqtt_bytes s, size_t pos)
{
	const uint8_t *q = NULL;

	if (pos < s.len)
		q = memchr(s.p + pos, '/', s.len - pos);
	return q ? (size_t)(q - s.p) : s.len;
}

/* Start of the level before the one at pos (pos > 0; s.len + 1 = past). */
static size_t
level_prev(struct mqtt_bytes s, size_t pos)
{
	size_t i = pos - 1;

	while (i > 0 && s.p[i - 1] != '/')
		i--;
	return i;
}

static bool
level_is(const uint8_t *p, size_t len, uint8_t c)
{
	return len == 1 && p[0] == c;
}

/* ---- literal children ---- */

static struct tnode **
kid_slots(struct tnode *n)
{
	return n->kid_cap == 1 ? &n->kids.one : n->kids.tab;
}

static struct tnode *
kid_find(struct tnode *n, const uint8_t *p, size_t len, uint32_t h)
{
	struct tnode **s = kid_slots(n), *c;
	uint32_t mask = n->kid_cap - 1, i, j = h & mask;

	for (i = 0; i < n->kid_cap; i++, j = (j + 1) & mask) {
		c = s[j];
		if (!c)
			return NULL;
		if (c->lhash == h && c->len == len &&
		    memcmp(c->level, p, len) == 0)
			return c;
	}
	return NULL;
}

static void
kid_place(struct tnode **s, uint32_t mask, struct tnode *c)
{
	uint32_t j = c->lhash & mask;

	while (s[j])
		j = (j + 1) & mask;
	s[j] = c;
}

/* Rebuilds the table with cap slots; only a table of > 1 slot allocates. */
static int
kid_resize(struct tnode *n, uint32_t cap)
{
	struct tnode **old = kid_slots(n), **s, *one = NULL;
	uint32_t i;

	s = &one;
	if (cap > 1) {
		s = calloc(cap, sizeof(*s));
		if (!s)
			return ERR_NOMEM;
	}
	for (i = 0; i < n->kid_cap; i++)
		if (old[i])
			kid_place(s, cap - 1, old[i]);
	if (n->kid_cap > 1)
		free(old);
	if (cap > 1)
		n->kids.tab = s;
	else
		n->kids.one = one;
	n->kid_cap = cap;
	return 0;
}

static int
kid_add(struct tnode *n, struct tnode *c)
{
	uint32_t cap = tab_cap_for(n->n_kids + 1);

	if (!cap)
		return ERR_NOMEM;
	if (cap > n->kid_cap && kid_resize(n, cap))
		return ERR_NOMEM;
	kid_place(kid_slots(n), n->kid_cap - 1, c);
	n->n_kids++;
	return 0;
}

static void
kid_del(struct tnode *n, struct tnode *c)
{
	struct tnode **s = kid_slots(n);
	uint32_t mask = n->kid_cap - 1, i, j, home;

	for (i = c->lhash & mask; s[i] != c; i = (i + 1) & mask)
		assert(s[i]);
	s[i] = NULL;
	/* pull back the entries of the run whose probe passed slot i */
	for (j = (i + 1) & mask; s[j]; j = (j + 1) & mask) {
		home = s[j]->lhash & mask;
		if (((j - home) & mask) >= ((j - i) & mask)) {
			s[i] = s[j];
			s[j] = NULL;
			i = j;
		}
	}
	n->n_kids--;
	/* shrinking to one slot never allocates; a failed shrink is harmless */
	if (n->n_kids <= 1 && n->kid_cap > 1)
		(void)kid_resize(n, 1);
	else if (n->kid_cap > 4 && n->n_kids < n->kid_cap / 4)
		(void)kid_resize(n, n->kid_cap / 2);
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
	cap = tab_cap_for(n->n_subs + 1);
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
	struct tnode *n = malloc(sizeof(*n) + len);

	if (!n)
		return NULL;
	memset(n, 0, sizeof(*n));
	n->parent = parent;
	n->kid_cap = 1;
	n->sub_cap = 1;
	n->lhash = h;
	n->len = (uint16_t)len;
	if (len > 0)
		memcpy(n->level, p, len);
	t->nodes++;
	return n;
}

static void
node_free(struct topic_tree *t, struct tnode *n)
{
	if (n->kid_cap > 1)
		free(n->kids.tab);
	if (n->sub_cap > 1)
		free(n->subs.tab);
	free(n);
	t->nodes--;
}

static bool
node_is_empty(const struct tnode *n)
{
	return !n->n_subs && !n->n_kids && !n->plus && !n->hash;
}

/* The literal child of n for level p[0..len), or NULL. */
static struct tnode *
kid_get(struct topic_tree *t, struct tnode *n, const uint8_t *p, size_t len)
{
	return kid_find(n, p, len, (uint32_t)siphash13(t->key, p, len));
}

/* The child of n for filter level p[0..len), or NULL. */
static struct tnode *
child_get(struct topic_tree *t, struct tnode *n, const uint8_t *p, size_t len)
{
	if (level_is(p, len, '+'))
		return n->plus;
	if (level_is(p, len, '#'))
		return n->hash;
	return kid_get(t, n, p, len);
}

/* The child of n for filter level p[0..len), made if needed; NULL: NOMEM. */
static struct tnode *
child_make(struct topic_tree *t, struct tnode *n, const uint8_t *p, size_t len)
{
	struct tnode **wild = NULL, *c;
	uint32_t h = 0;

	if (level_is(p, len, '+'))
		wild = &n->plus;
	else if (level_is(p, len, '#'))
		wild = &n->hash;
	if (wild) {
		if (!*wild)
			*wild = node_new(t, n, p, len, 0);
		return *wild;
	}
	h = (uint32_t)siphash13(t->key, p, len);
	c = kid_find(n, p, len, h);
	if (c)
		return c;
	c = node_new(t, n, p, len, h);
	if (c && kid_add(n, c)) {
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
		p = n->parent;
		if (p->plus == n)
			p->plus = NULL;
		else if (p->hash == n)
			p->hash = NULL;
		else
			kid_del(p, n);
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
	hash_seed(t->key, t);
	t->root = node_new(t, NULL, NULL, 0, 0);
	if (!t->root) {
		free(t);
		return NULL;
	}
	return t;
}

/*
 * Detaches some child of n, or returns NULL: for freeing the tree without a
 * stack. Once the tree is being freed no lookup needs a node's lhash, so it
 * serves as the cursor of the scan of the node's own child table.
 */
static struct tnode *
child_pop(struct tnode *n)
{
	struct tnode **s = kid_slots(n), *c = NULL;

	if (n->plus) {
		c = n->plus;
		n->plus = NULL;
	} else if (n->hash) {
		c = n->hash;
		n->hash = NULL;
	}
	while (!c && n->lhash > 0)
		c = s[--n->lhash];
	if (c)
		c->lhash = c->kid_cap;
	return c;
}

void
topic_tree_free(struct topic_tree *t)
{
	struct tnode *n, *c, *p;

	if (!t)
		return;
	/* depth-first without a stack: the tree may be deep */
	n = t->root;
	n->lhash = n->kid_cap;
	while (n) {
		c = child_pop(n);
		if (c) {
			n = c;
			continue;
		}
		p = n->parent;
		node_free(t, n);
		n = p;
	}
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
		end = level_end(filter, pos);
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
		end = level_end(filter, pos);
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
			            level_end(topic, pos) - pos);
		while (!c) {
			if (n == root)
				return;
			p = n->parent;
			pos = level_prev(topic, pos);
			if (n == p->plus) {
				end = level_end(topic, pos);
				c = kid_get(t, p, topic.p + pos, end - pos);
			}
			n = p;
		}
		n = c;
		pos = level_end(topic, pos) + 1;
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
	return t->nodes;
}
