/*
 * The subscription trie: topic filters split into levels, with '+' and '#'
 * children, each leaf holding its subscribers. Matching a topic costs in
 * proportion to its depth (and the matches), not to the number of
 * subscriptions. Loop thread only.
 */
#ifndef BROKER_TOPIC_H
#define BROKER_TOPIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/proto.h"

/** Options of one subscription. */
struct topic_sub_opts {
	uint8_t qos;              /* maximum QoS granted */
	bool no_local;            /* v5: not to the publishing client */
	bool retain_as_published; /* v5 */
	uint8_t retain_handling;  /* v5: 0, 1, 2 */
	uint32_t sub_id;          /* v5 subscription identifier, 0 = none */
	bool shared; /* the subscriber is a shared subscription group */
};

/** @p o as the options byte of an MQTT 5 SUBSCRIBE (QoS, No Local,
 * Retain As Published, Retain Handling): the form storage and session
 * handoff keep. */
static inline uint8_t
topic_opts_byte(const struct topic_sub_opts *o)
{
	return (uint8_t)(o->qos | (o->no_local ? 0x04 : 0) |
	                 (o->retain_as_published ? 0x08 : 0) |
	                 (o->retain_handling << 4));
}

/** The options of byte @p b (topic_opts_byte) with identifier @p sub_id. */
static inline struct topic_sub_opts
topic_opts_from_byte(uint8_t b, uint32_t sub_id)
{
	struct topic_sub_opts o = { 0 };

	o.qos = b & 3;
	o.no_local = b & 0x04;
	o.retain_as_published = b & 0x08;
	o.retain_handling = (b >> 4) & 3;
	o.sub_id = sub_id;
	return o;
}

struct topic_tree;

/** @return a new empty tree, or NULL on out of memory */
struct topic_tree *topic_tree_new(void);
/** Frees the tree (not the subscribers); NULL is a no-op. */
void topic_tree_free(struct topic_tree *t);

/**
 * Adds (or replaces the options of) @p sub's subscription to @p filter.
 * @param filter a valid topic filter (the caller validated it); copied
 * @param sub subscriber identity, borrowed (never dereferenced), not NULL
 * @param[out] replaced true when @p sub already had this filter (may be NULL)
 * @return 0, ERR_NOMEM (the tree is unchanged then) or ERR_TOO_LARGE for a
 *   filter over 65535 bytes
 */
int topic_tree_add(struct topic_tree *t, struct mqtt_bytes filter, void *sub,
                   const struct topic_sub_opts *opts, bool *replaced);

/** Removes @p sub's subscription to @p filter. @return 0 or ERR_NOTFOUND */
int topic_tree_remove(struct topic_tree *t, struct mqtt_bytes filter,
                      void *sub);

typedef void (*topic_match_fn)(void *sub, const struct topic_sub_opts *opts,
                               void *arg);

/**
 * Calls @p fn once per (subscriber, matching filter) for topic name @p topic;
 * a subscriber with several matching filters is called several times (the
 * caller merges). Filters starting with a wildcard do not match topics
 * starting with '$'. @p fn must not change the tree.
 */
void topic_tree_match(struct topic_tree *t, struct mqtt_bytes topic,
                      topic_match_fn fn, void *arg);

/** Number of (filter, subscriber) pairs. */
size_t topic_tree_count(const struct topic_tree *t);

/** Number of trie nodes, the root included (1 when empty): tests, metrics. */
size_t topic_tree_node_count(const struct topic_tree *t);

#endif
