/*
 * The retained-message index of retain.h: a trie over topic levels with at
 * most one struct msg reference per node. A subscribe walks only the branches
 * its filter can match. Owns its nodes and one reference per stored message.
 */
#include "broker/retain.h"

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "broker/trie_int.h"

/* Children sit in trie_int.h's tables, as in topic.c. */

struct rnode {
	struct trie_node tn; /* parent, children by level, level */
	struct msg *msg;     /* retained message of this topic, a reference */
	uint8_t level[];     /* the level, tn.len bytes, not NUL-terminated */
};

static_assert(offsetof(struct rnode, tn) == 0, "an rnode is a trie_node");

struct retain_store {
	struct rnode *root; /* level of no topic, never pruned */
	size_t count;       /* retained messages */
	struct trie trie;   /* hash key and node count */
};

static const uint8_t empty[1];

static struct rnode *
node_of(struct trie_node *n)
{
	return (struct rnode *)n;
}

/* ---- children ---- */

static bool
is_dollar(const struct rnode *c)
{
	return c->tn.len > 0 && c->level[0] == '$';
}

/*
 * The child of n after @p after in table order (the first when NULL),
 * skipping levels that start with '$' when @p no_dollar.
 */
static struct rnode *
kid_next(struct rnode *n, const struct rnode *after, bool no_dollar)
{
	struct trie_node **s = trie_kid_slots(&n->tn);
	uint32_t i = after ? trie_kid_slot_of(&n->tn, &after->tn) + 1 : 0;

	for (; i < n->tn.kid_cap; i++)
		if (s[i] && !(no_dollar && is_dollar(node_of(s[i]))))
			return node_of(s[i]);
	return NULL;
}

/* The child of n for level p[0..len), or NULL. */
static struct rnode *
kid_get(struct retain_store *rs, struct rnode *n, const uint8_t *p, size_t len)
{
	return node_of(trie_kid_get(&rs->trie, &n->tn, p, len));
}

/* ---- nodes ---- */

static struct rnode *
node_new(struct retain_store *rs, struct rnode *parent, const uint8_t *p,
         size_t len, uint32_t h)
{
	struct trie_node *up = parent ? &parent->tn : NULL;

	return node_of(
	        trie_node_new(&rs->trie, up, sizeof(struct rnode), p, len, h));
}

/* Drops the reference of a node about to be freed. */
static void
node_fini(struct trie_node *tn)
{
	msg_unref(node_of(tn)->msg);
}

static void
node_free(struct retain_store *rs, struct rnode *n)
{
	node_fini(&n->tn);
	trie_node_free(&rs->trie, &n->tn);
}

/* Frees n and its ancestors for as long as they hold nothing. */
static void
prune(struct retain_store *rs, struct rnode *n)
{
	struct rnode *p;

	while (n != rs->root && !n->msg && !n->tn.n_kids) {
		p = node_of(n->tn.parent);
		trie_kid_del(&p->tn, &n->tn);
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
		end = trie_level_end(t, pos);
		n = kid_get(rs, n, t.p + pos, end - pos);
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
		end = trie_level_end(t, pos);
		h = trie_hash(&rs->trie, t.p + pos, end - pos);
		c = node_of(trie_kid_find(&rs->trie, &n->tn, t.p + pos,
		                          end - pos, h));
		if (!c) {
			c = node_new(rs, n, t.p + pos, end - pos, h);
			if (c && trie_kid_add(&n->tn, &c->tn)) {
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
	trie_init(&rs->trie, offsetof(struct rnode, level), rs);
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
	if (!rs)
		return;
	trie_free_all(&rs->trie, &rs->root->tn, NULL, node_fini);
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
			p = node_of(n->tn.parent);
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
		end = trie_level_end(f, pos);
		if (pos > f.len) {
			if (n->msg)
				fn(n->msg, arg);
		} else if (trie_level_is(f.p + pos, end - pos, '#')) {
			walk_subtree(n, no_dollar, fn, arg);
		} else if (trie_level_is(f.p + pos, end - pos, '+')) {
			c = kid_next(n, NULL, no_dollar);
		} else {
			c = kid_get(rs, n, f.p + pos, end - pos);
		}
		while (!c) {
			if (n == root)
				return;
			p = node_of(n->tn.parent);
			pos = trie_level_prev(f, pos);
			end = trie_level_end(f, pos);
			if (trie_level_is(f.p + pos, end - pos, '+'))
				c = kid_next(p, n, p == root);
			n = p;
		}
		n = c;
		pos = trie_level_end(f, pos) + 1;
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
	return rs->trie.nodes;
}
