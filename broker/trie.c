/*
 * The trie core of trie_int.h, shared by topic.c and retain.c: SipHash-1-3
 * of levels under a per-trie key, the per-node tables of children, and node
 * allocation and teardown. Owns the tables; the nodes belong to the user.
 */
#include "broker/trie_int.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

void
trie_init(struct trie *t, size_t level_off, const void *salt)
{
	memset(t, 0, sizeof(*t));
	hash_seed(t->key, salt);
	t->level_off = level_off;
}

uint32_t
trie_hash(const struct trie *t, const uint8_t *p, size_t len)
{
	return (uint32_t)siphash13(t->key, p, len);
}

uint32_t
trie_tab_cap(uint32_t n)
{
	uint32_t cap = 1;

	while (cap < n || (cap > 4 && n > cap / 4 * 3)) {
		if (cap > UINT32_MAX / 4)
			return 0;
		cap *= 2;
	}
	return cap;
}

/* ---- children ---- */

static const uint8_t *
node_level(const struct trie *t, const struct trie_node *n)
{
	return (const uint8_t *)n + t->level_off;
}

struct trie_node *
trie_kid_find(const struct trie *t, struct trie_node *n, const uint8_t *p,
              size_t len, uint32_t h)
{
	struct trie_node **s = trie_kid_slots(n), *c;
	uint32_t mask = n->kid_cap - 1, i, j = h & mask;

	for (i = 0; i < n->kid_cap; i++, j = (j + 1) & mask) {
		c = s[j];
		if (!c)
			return NULL;
		if (c->lhash == h && c->len == len &&
		    memcmp(node_level(t, c), p, len) == 0)
			return c;
	}
	return NULL;
}

struct trie_node *
trie_kid_get(const struct trie *t, struct trie_node *n, const uint8_t *p,
             size_t len)
{
	return trie_kid_find(t, n, p, len, trie_hash(t, p, len));
}

uint32_t
trie_kid_slot_of(struct trie_node *n, const struct trie_node *c)
{
	struct trie_node **s = trie_kid_slots(n);
	uint32_t mask = n->kid_cap - 1, i;

	for (i = c->lhash & mask; s[i] != c; i = (i + 1) & mask)
		assert(s[i]);
	return i;
}

static void
kid_place(struct trie_node **s, uint32_t mask, struct trie_node *c)
{
	uint32_t j = c->lhash & mask;

	while (s[j])
		j = (j + 1) & mask;
	s[j] = c;
}

/* Rebuilds the table with cap slots; only a table of > 1 slot allocates. */
static int
kid_resize(struct trie_node *n, uint32_t cap)
{
	struct trie_node **old = trie_kid_slots(n), **s, *one = NULL;
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

int
trie_kid_add(struct trie_node *n, struct trie_node *c)
{
	uint32_t cap = trie_tab_cap(n->n_kids + 1);

	if (!cap)
		return ERR_NOMEM;
	if (cap > n->kid_cap && kid_resize(n, cap))
		return ERR_NOMEM;
	kid_place(trie_kid_slots(n), n->kid_cap - 1, c);
	n->n_kids++;
	return 0;
}

void
trie_kid_del(struct trie_node *n, struct trie_node *c)
{
	struct trie_node **s = trie_kid_slots(n);
	uint32_t mask = n->kid_cap - 1, i = trie_kid_slot_of(n, c), j, home;

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

/* ---- nodes ---- */

struct trie_node *
trie_node_new(struct trie *t, struct trie_node *parent, size_t size,
              const uint8_t *p, size_t len, uint32_t h)
{
	struct trie_node *n = malloc(size + len);

	assert(size >= sizeof(*n) && t->level_off <= size);
	if (!n)
		return NULL;
	memset(n, 0, size);
	n->parent = parent;
	n->kid_cap = 1;
	n->lhash = h;
	n->len = (uint16_t)len;
	if (len > 0)
		memcpy((uint8_t *)n + t->level_off, p, len);
	t->nodes++;
	return n;
}

void
trie_node_free(struct trie *t, struct trie_node *n)
{
	if (n->kid_cap > 1)
		free(n->kids.tab);
	free(n);
	t->nodes--;
}

/*
 * Detaches the next child of n from its table, or returns NULL. Once the
 * trie is being freed no lookup needs a node's lhash, so it serves as the
 * cursor of the scan of the node's own table.
 */
static struct trie_node *
kid_pop(struct trie_node *n)
{
	struct trie_node **s = trie_kid_slots(n), *c = NULL;

	while (!c && n->lhash > 0)
		c = s[--n->lhash];
	return c;
}

void
trie_free_all(struct trie *t, struct trie_node *root, trie_pop_fn pop,
              trie_node_fn fini)
{
	struct trie_node *n = root, *c, *p;

	assert(!root->parent);
	n->lhash = n->kid_cap;
	while (n) {
		c = pop ? pop(n) : NULL;
		if (!c)
			c = kid_pop(n);
		if (c) {
			c->lhash = c->kid_cap;
			n = c;
			continue;
		}
		p = n->parent;
		if (fini)
			fini(n);
		trie_node_free(t, n);
		n = p;
	}
}
