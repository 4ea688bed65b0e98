/*
 * The retained-message index of retain.h: a trie over topic levels with at
 * most one struct msg reference per node. A subscribe walks only the branches
 * its filter can match. Owns its nodes and one reference per stored message.
 */
#include "broker/retain.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/*
 * Children sit in the same kind of table as in topic.c, for the same
 * reasons: open addressing with linear probing and backward-shift deletion,
 * full up to 4 slots and at most 3/4 full beyond, one slot inline in the
 * node, levels hashed with SipHash-1-3 under a per-store key. (The table
 * and hash are a copy of topic.c's; they could move to a private header.)
 */

struct rnode {
	struct rnode *parent; /* NULL for the root */
	struct msg *msg;      /* retained message of this topic, a reference */
	/* children by level */
	union {
		struct rnode *one;  /* kid_cap == 1 */
		struct rnode **tab; /* kid_cap > 1 */
	} kids;
	uint32_t n_kids;  /* children */
	uint32_t kid_cap; /* slots in kids, a power of two */
	uint32_t lhash;   /* hash of level, keys the parent's table */
	uint16_t len;     /* bytes of level */
	uint8_t level[];  /* the level, not NUL-terminated */
};

struct retain_store {
	struct rnode *root; /* level of no topic, never pruned */
	size_t count;       /* retained messages */
	size_t nodes;       /* nodes, root included */
	uint64_t key[2];    /* SipHash key of the level hashes */
};

static const uint8_t empty[1];

/* ---- hashing (as in topic.c) ---- */

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
level_hash(const struct retain_store *rs, const uint8_t *p, size_t len)
{
	return (uint32_t)siphash13(rs->key, p, len);
}

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

static size_t
level_end(struct mqtt_bytes s, size_t pos)
{
	const uint8_t *q = NULL;

	if (pos < s.len)
		q = memchr(s.p + pos, '/', s.len - pos);
	return q ? (size_t)(q - s.p) : s.len;
}

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

/* ---- children ---- */

static struct rnode **
kid_slots(struct rnode *n)
{
	return n->kid_cap == 1 ? &n->kids.one : n->kids.tab;
}

static struct rnode *
kid_find(struct rnode *n, const uint8_t *p, size_t len, uint32_t h)
{
	struct rnode **s = kid_slots(n), *c;
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

/* Slot of child c in n's table. */
static uint32_t
kid_slot_of(struct rnode *n, const struct rnode *c)
{
	struct rnode **s = kid_slots(n);
	uint32_t mask = n->kid_cap - 1, i;

	for (i = c->lhash & mask; s[i] != c; i = (i + 1) & mask)
		assert(s[i]);
	return i;
}

static bool
is_dollar(const struct rnode *c)
{
	return c->len > 0 && c->level[0] == '$';
}

/*
 * The child of n after @p after in table order (the first when NULL),
 * skipping levels that start with '$' when @p no_dollar.
 */
static struct rnode *
kid_next(struct rnode *n, const struct rnode *after, bool no_dollar)
{
	struct rnode **s = kid_slots(n);
	uint32_t i = after ? kid_slot_of(n, after) + 1 : 0;

	for (; i < n->kid_cap; i++)
		if (s[i] && !(no_dollar && is_dollar(s[i])))
			return s[i];
	return NULL;
}

static void
kid_place(struct rnode **s, uint32_t mask, struct rnode *c)
{
	uint32_t j = c->lhash & mask;

	while (s[j])
		j = (j + 1) & mask;
	s[j] = c;
}

static int
kid_resize(struct rnode *n, uint32_t cap)
{
	struct rnode **old = kid_slots(n), **s, *one = NULL;
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
kid_add(struct rnode *n, struct rnode *c)
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
kid_del(struct rnode *n, struct rnode *c)
{
	struct rnode **s = kid_slots(n);
	uint32_t mask = n->kid_cap - 1, i = kid_slot_of(n, c), j, home;

	s[i] = NULL;
	for (j = (i + 1) & mask; s[j]; j = (j + 1) & mask) {
		home = s[j]->lhash & mask;
		if (((j - home) & mask) >= ((j - i) & mask)) {
			s[i] = s[j];
			s[j] = NULL;
			i = j;
		}
	}
	n->n_kids--;
	if (n->n_kids <= 1 && n->kid_cap > 1)
		(void)kid_resize(n, 1);
	else if (n->kid_cap > 4 && n->n_kids < n->kid_cap / 4)
		(void)kid_resize(n, n->kid_cap / 2);
}

/* ---- nodes ---- */

static struct rnode *
node_new(struct retain_store *rs, struct rnode *parent, const uint8_t *p,
         size_t len, uint32_t h)
{
	struct rnode *n = malloc(sizeof(*n) + len);

	if (!n)
		return NULL;
	memset(n, 0, sizeof(*n));
	n->parent = parent;
	n->kid_cap = 1;
	n->lhash = h;
	n->len = (uint16_t)len;
	if (len > 0)
		memcpy(n->level, p, len);
	rs->nodes++;
	return n;
}

static void
node_free(struct retain_store *rs, struct rnode *n)
{
	msg_unref(n->msg);
	if (n->kid_cap > 1)
		free(n->kids.tab);
	free(n);
	rs->nodes--;
}

/* Frees n and its ancestors for as long as they hold nothing. */
static void
prune(struct retain_store *rs, struct rnode *n)
{
	struct rnode *p;

	while (n != rs->root && !n->msg && !n->n_kids) {
		p = n->parent;
		kid_del(p, n);
		node_free(rs, n);
		n = p;
	}
}

/* Node of topic t, or NULL. */
static struct rnode *
node_find(struct retain_store *rs, struct mqtt_bytes t)
{
	struct rnode *n = rs->root;
	size_t pos, end;

	if (!t.p)
		t.p = empty;
	for (pos = 0; n && pos <= t.len; pos = end + 1) {
		end = level_end(t, pos);
		n = kid_find(n, t.p + pos, end - pos,
		             level_hash(rs, t.p + pos, end - pos));
	}
	return n;
}

/* Node of topic t, made if needed; NULL on NOMEM (nothing made then). */
static struct rnode *
node_make(struct retain_store *rs, struct mqtt_bytes t)
{
	struct rnode *n = rs->root, *c;
	size_t pos, end;
	uint32_t h;

	if (!t.p)
		t.p = empty;
	for (pos = 0; pos <= t.len; pos = end + 1) {
		end = level_end(t, pos);
		h = level_hash(rs, t.p + pos, end - pos);
		c = kid_find(n, t.p + pos, end - pos, h);
		if (!c) {
			c = node_new(rs, n, t.p + pos, end - pos, h);
			if (c && kid_add(n, c)) {
				node_free(rs, c);
				c = NULL;
			}
		}
		if (!c) {
			prune(rs, n);
			return NULL;
		}
		n = c;
	}
	return n;
}

/* ---- the store ---- */

struct retain_store *
retain_new(void)
{
	struct retain_store *rs = malloc(sizeof(*rs));

	if (!rs)
		return NULL;
	memset(rs, 0, sizeof(*rs));
	hash_seed(rs->key, rs);
	rs->root = node_new(rs, NULL, NULL, 0, 0);
	if (!rs->root) {
		free(rs);
		return NULL;
	}
	return rs;
}

void
retain_free(struct retain_store *rs)
{
	struct rnode *n, *c, *p;
	struct rnode **s;

	if (!rs)
		return;
	/*
	 * Depth-first without a stack: the trie may be deep. Once the store
	 * is being freed no lookup needs a node's lhash, so it serves as the
	 * cursor of the scan of the node's own table.
	 */
	n = rs->root;
	n->lhash = n->kid_cap;
	while (n) {
		s = kid_slots(n);
		c = NULL;
		while (!c && n->lhash > 0)
			c = s[--n->lhash];
		if (c) {
			c->lhash = c->kid_cap;
			n = c;
			continue;
		}
		p = n->parent;
		node_free(rs, n);
		n = p;
	}
	free(rs);
}

int
retain_set(struct retain_store *rs, struct msg *m)
{
	struct rnode *n;

	if (m->payload_len == 0) {
		n = node_find(rs, msg_topic(m));
		if (n && n->msg) {
			msg_unref(n->msg);
			n->msg = NULL;
			rs->count--;
			prune(rs, n);
		}
		return 0;
	}
	n = node_make(rs, msg_topic(m));
	if (!n)
		return ERR_NOMEM;
	msg_ref(m); /* before the unref: m may be the message replaced */
	if (n->msg)
		msg_unref(n->msg);
	else
		rs->count++;
	n->msg = m;
	return 0;
}

struct msg *
retain_get(struct retain_store *rs, struct mqtt_bytes t)
{
	struct rnode *n = node_find(rs, t);

	return n ? n->msg : NULL;
}

/*
 * Calls fn for every message in the subtree of top, top included, in
 * pre-order without a stack; levels starting with '$' are skipped right
 * under top when @p no_dollar.
 */
static void
walk_subtree(struct rnode *top, bool no_dollar, retain_match_fn fn, void *arg)
{
	struct rnode *n = top, *c, *p;

	for (;;) {
		if (n->msg)
			fn(n->msg, arg);
		c = kid_next(n, NULL, n == top && no_dollar);
		while (!c) {
			if (n == top)
				return;
			p = n->parent;
			c = kid_next(p, n, p == top && no_dollar);
			n = p;
		}
		n = c;
	}
}

/*
 * Depth-first over the topics the filter can match, without recursion: at
 * a node (filter levels from pos on still to match) a literal level goes
 * down one child, '+' goes through the children one after the other, '#'
 * takes the whole subtree, and past the last level the node matches.
 * Backing up recomputes pos from the filter.
 */
void
retain_match(struct retain_store *rs, struct mqtt_bytes f, retain_match_fn fn,
             void *arg)
{
	struct rnode *root = rs->root, *n = root, *c, *p;
	size_t pos = 0, end;

	if (!f.p)
		f.p = empty;
	for (;;) {
		/* [MQTT-4.7.2-1] first-level wildcards skip $-topics */
		bool no_dollar = n == root;

		c = NULL;
		end = level_end(f, pos);
		if (pos > f.len) {
			if (n->msg)
				fn(n->msg, arg);
		} else if (level_is(f.p + pos, end - pos, '#')) {
			walk_subtree(n, no_dollar, fn, arg);
		} else if (level_is(f.p + pos, end - pos, '+')) {
			c = kid_next(n, NULL, no_dollar);
		} else {
			c = kid_find(n, f.p + pos, end - pos,
			             level_hash(rs, f.p + pos, end - pos));
		}
		while (!c) {
			if (n == root)
				return;
			p = n->parent;
			pos = level_prev(f, pos);
			end = level_end(f, pos);
			if (level_is(f.p + pos, end - pos, '+'))
				c = kid_next(p, n, p == root);
			n = p;
		}
		n = c;
		pos = level_end(f, pos) + 1;
	}
}

size_t
retain_count(const struct retain_store *rs)
{
	return rs->count;
}

size_t
retain_node_count(const struct retain_store *rs)
{
	return rs->nodes;
}
