/*
 * broker's private trie over topic levels, shared by the subscription trie
 * (topic.c) and the retained-message index (retain.c): the node header with
 * its table of literal children keyed by level, the keyed level hash, node
 * allocation and teardown. Not for other modules.
 */
#ifndef BROKER_TRIE_INT_H
#define BROKER_TRIE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "proto/proto.h"

/*
 * The children of a node live in an open-addressing table (linear probing,
 * backward-shift deletion, no tombstones), not a sorted array: a level like
 * "devices/<id>" can have 10^5 children, and a sorted array would make every
 * insertion an O(n) memmove. Tables of up to 4 slots may fill up (a lookup
 * probes at most 4), larger ones stay at most 3/4 full and halve below 1/4.
 * A one-slot table is stored inline in the node, so the common node (one
 * child) needs no second allocation. Levels are hashed with SipHash-1-3
 * keyed per trie, so that peers cannot pick levels that collide.
 */

/**
 * The head of a trie node: the first member of the user's node struct,
 * which ends with the level bytes (a flexible array member at
 * struct trie's level_off).
 */
struct trie_node {
	struct trie_node *parent; /* NULL for the root */
	/* children by level */
	union {
		struct trie_node *one;  /* kid_cap == 1 */
		struct trie_node **tab; /* kid_cap > 1 */
	} kids;
	uint32_t n_kids;  /* children in kids */
	uint32_t kid_cap; /* slots in kids, a power of two */
	uint32_t lhash;   /* hash of level, keys the parent's table */
	uint16_t len;     /* bytes of level */
};

/** What the nodes of one trie share; embedded in the user's trie struct. */
struct trie {
	uint64_t key[2];  /* SipHash key of the level hashes */
	size_t level_off; /* offset of the level bytes in a node */
	size_t nodes;     /* nodes, root included */
};

/** Detaches some child of a node kept outside its table, or returns NULL. */
typedef struct trie_node *(*trie_pop_fn)(struct trie_node *n);
/** Releases what a node holds besides its table, before the node is freed. */
typedef void (*trie_node_fn)(struct trie_node *n);

/**
 * Sets up @p t with no nodes and a hash key peers cannot guess.
 * @param level_off offset of the level bytes in the user's node struct
 * @param salt an address mixed into the key (borrowed, never dereferenced)
 */
void trie_init(struct trie *t, size_t level_off, const void *salt);

/** @return the hash of level p[0..len) under @p t's key */
uint32_t trie_hash(const struct trie *t, const uint8_t *p, size_t len);

/**
 * Slots of the smallest table for @p n entries: full up to 4 slots, at most
 * 3/4 full beyond. For any table laid out like a node's children.
 * @return a power of two, or 0 when too many
 */
uint32_t trie_tab_cap(uint32_t n);

/**
 * A new node of @p size bytes plus level p[0..len) (copied), with zeroed
 * fields, a one-slot table and no children; it is not yet in @p parent's
 * table (see trie_kid_add).
 * @param size sizeof the user's node struct
 * @param h the level's trie_hash (any value for a child kept outside the
 *   table)
 * @return the node, or NULL on out of memory
 */
struct trie_node *trie_node_new(struct trie *t, struct trie_node *parent,
                                size_t size, const uint8_t *p, size_t len,
                                uint32_t h);

/** Frees @p n and its table (not the children, nor what the user holds). */
void trie_node_free(struct trie *t, struct trie_node *n);

/**
 * Frees @p root (whose parent is NULL) and every node under it, depth-first
 * without a stack, as a trie may be deep. Each node's children are detached
 * through @p pop (may be NULL), then from its table; @p fini (may be NULL)
 * runs on each node just before it is freed.
 */
void trie_free_all(struct trie *t, struct trie_node *root, trie_pop_fn pop,
                   trie_node_fn fini);

/** The slots of @p n's table of children, kid_cap of them. */
static inline struct trie_node **
trie_kid_slots(struct trie_node *n)
{
	return n->kid_cap == 1 ? &n->kids.one : n->kids.tab;
}

/** @return the child of @p n for level p[0..len) of hash @p h, or NULL */
struct trie_node *trie_kid_find(const struct trie *t, struct trie_node *n,
                                const uint8_t *p, size_t len, uint32_t h);

/** @return the child of @p n for level p[0..len), or NULL */
struct trie_node *trie_kid_get(const struct trie *t, struct trie_node *n,
                               const uint8_t *p, size_t len);

/** @return the slot of child @p c in @p n's table */
uint32_t trie_kid_slot_of(struct trie_node *n, const struct trie_node *c);

/**
 * Puts @p c, made by trie_node_new with @p n as parent, in @p n's table.
 * @return 0 or ERR_NOMEM (the table is unchanged then)
 */
int trie_kid_add(struct trie_node *n, struct trie_node *c);

/** Takes child @p c out of @p n's table; never allocates, never fails. */
void trie_kid_del(struct trie_node *n, struct trie_node *c);

/** End of the level of @p s starting at @p pos: the index of its '/' or len. */
static inline size_t
trie_level_end(struct mqtt_bytes s, size_t pos)
{
	const uint8_t *q = NULL;

	if (pos < s.len)
		q = memchr(s.p + pos, '/', s.len - pos);
	return q ? (size_t)(q - s.p) : s.len;
}

/** Start of the level before the one at @p pos (pos > 0; len + 1 = past). */
static inline size_t
trie_level_prev(struct mqtt_bytes s, size_t pos)
{
	size_t i = pos - 1;

	while (i > 0 && s.p[i - 1] != '/')
		i--;
	return i;
}

/** True when level p[0..len) is the one character @p c. */
static inline bool
trie_level_is(const uint8_t *p, size_t len, uint8_t c)
{
	return len == 1 && p[0] == c;
}

#endif
