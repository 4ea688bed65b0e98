/*
 * The retained-message index: a trie over topic levels, so that a wildcard
 * subscribe walks only the matching branches. Holds a reference on each
 * stored struct msg. Loop thread only.
 */
#ifndef BROKER_RETAIN_H
#define BROKER_RETAIN_H

#include <stddef.h>

#include "broker/msg.h"

struct retain_store;

/** @return a new empty store, or NULL on out of memory */
struct retain_store *retain_new(void);
/** Frees the store and drops its references; NULL is a no-op. */
void retain_free(struct retain_store *rs);

/**
 * Stores @p m as the retained message of its topic, replacing any earlier
 * one; a message with an empty payload clears the topic instead.
 * @param m borrowed: the store takes its own reference
 * @return 0 or ERR_NOMEM (the store is unchanged then)
 */
int retain_set(struct retain_store *rs, struct msg *m);

/** The retained message of topic @p t, or NULL. Borrowed reference. */
struct msg *retain_get(struct retain_store *rs, struct mqtt_bytes t);

typedef void (*retain_match_fn)(struct msg *m, void *arg);

/**
 * Calls @p fn for each retained message whose topic matches filter @p f
 * ($-topic rule included). @p m is borrowed; take a reference to keep it.
 * @p fn must not change the store.
 */
void retain_match(struct retain_store *rs, struct mqtt_bytes f,
                  retain_match_fn fn, void *arg);

/** Number of retained messages. */
size_t retain_count(const struct retain_store *rs);

/** Number of trie nodes, the root included (1 when empty): tests, metrics. */
size_t retain_node_count(const struct retain_store *rs);

#endif
