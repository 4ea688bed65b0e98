/*
 * cluster's public header: the links between mqd nodes. Membership
 * (SWIM-style ping / ping-req / suspect / dead with incarnation numbers,
 * gossip piggy-backed on link traffic), route exchange (each node streams
 * its own topic filters as a snapshot then deltas; a remote route table maps
 * filter -> nodes) and message forwarding (a publish goes at most once to
 * each node whose routes match) and retained-message replication (every
 * change goes to every peer, each side sends its whole retained set when a
 * link comes up; last writer wins on a hybrid logical clock, which broker
 * applies). Frames are a 4-byte big-endian length and
 * one protobuf Envelope (proto/cluster.proto); no protobuf type crosses this
 * header. cluster never includes broker headers: broker hands it struct
 * cluster_hooks at start. Loop thread only, on broker's event_base.
 */
#ifndef CLUSTER_CLUSTER_H
#define CLUSTER_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/proto.h"

struct event_base;
struct cluster;

/** Protocol version spoken on the link; a peer with another is dropped. */
#define CLUSTER_PROTO_VERSION 1
/** Largest frame accepted (bytes after the length prefix). */
#define CLUSTER_FRAME_MAX (16u * 1024 * 1024)
/** Largest retained message replicated (topic + payload + properties). */
#define CLUSTER_RETAINED_MAX (CLUSTER_FRAME_MAX - 4096)

enum cluster_member_state {
	CLUSTER_ALIVE = 0,
	CLUSTER_SUSPECT,
	CLUSTER_DEAD,
	CLUSTER_LEFT,
};

/** A message forwarded between nodes. Byte fields are views valid for the
 * duration of the call they are passed to. */
struct cluster_msg {
	uint64_t origin_node; /* node id of the node the client published on */
	uint64_t msg_id;      /* unique on the origin node */
	struct mqtt_bytes topic;
	struct mqtt_bytes payload;
	struct mqtt_bytes props; /* forwarded MQTT 5 properties, encoded as
	                          * broker stores them (length prefix incl.) */
	uint8_t qos;
	bool retain;
	uint32_t expiry_s; /* remaining Message Expiry Interval, 0 = none */
	struct mqtt_bytes origin_client; /* publishing client id (no-local) */
	/* publish: shared subscription groups assigned to peers (each group
	 * "$share/{name}/{filter}" to one node, which gives the message to
	 * one of its members); deliver: the groups of this node that get it
	 * (its other groups do not: another node serves them) */
	const struct cluster_share *shares;
	size_t n_shares;
	bool ack; /* deliver: the origin waits for cluster_forward_ack */
	bool dup; /* deliver: taken before (ack it once what was queued for
	           * it is durable; do not deliver it again) */
};

/** A shared subscription group and the node that serves it. */
struct cluster_share {
	uint64_t node_id;      /* publish: the peer; deliver: 0 (this node) */
	struct mqtt_bytes key; /* "$share/{name}/{filter}" */
};

/** What one cluster_publish did. */
struct cluster_fwd {
	size_t sent;    /* peers it was sent to now (any QoS) */
	size_t waiting; /* QoS >= 1: outbox entries holding the cookie (on
	                 * an established link: an ack should come soon) */
	size_t n_peers; /* QoS >= 1: outbox entries made, one per peer */
	const uint64_t *peers; /* their node ids (valid until the next call) */
};

/** Counters of acknowledged forwarding. */
struct cluster_stats {
	uint64_t sent;    /* forwards sent (resends included) */
	uint64_t acked;   /* forwards acked by their peer */
	uint64_t dropped; /* not queued: the peer's outbox was full */
	uint64_t expired; /* left an outbox unsent: message expired */
	uint64_t dups;    /* duplicates received (acked, not delivered) */
	uint64_t outbox;  /* entries in every outbox now */
};

/** A retained message, or the clearing of one, as replicated between
 * nodes. Byte fields are views valid for the duration of the call they are
 * passed to. */
struct cluster_retained {
	struct mqtt_bytes topic;
	struct mqtt_bytes payload; /* empty: the topic's retained message is
	                            * cleared (a tombstone, replicated too) */
	struct mqtt_bytes props;   /* MQTT 5 properties, encoded as broker
	                            * stores them (length prefix incl.) */
	uint8_t qos;
	uint32_t expiry_s;    /* remaining Message Expiry Interval, 0 = none */
	uint64_t stamp;       /* cluster_hlc_now() of the change */
	uint64_t origin_node; /* node id of the node that made the change */
};

/** What cluster calls back into broker. The hooks run on the loop thread
 * from cluster's callbacks; they may call cluster_publish, cluster_route_*,
 * cluster_hlc_now, cluster_retained_set and cluster_members, but not
 * cluster_stop. */
struct cluster_hooks {
	void *arg;
	/** A message from a peer for this node's local subscribers; it is
	 * never forwarded to another node. */
	void (*deliver)(void *arg, const struct cluster_msg *m);
	/** Calls @p fn once per topic filter with local subscribers (the route
	 * snapshot sent to a (re)connected peer). */
	void (*each_route)(void *arg,
	                   void (*fn)(void *ctx, struct mqtt_bytes filter,
	                              bool durable),
	                   void *ctx);
	/** A retained change from a peer (a change it made or relayed in its
	 * snapshot): broker keeps it when @p r->stamp is above the stamp it
	 * holds for the topic, ties broken by the higher origin_node, and
	 * keeps tombstones too (each_retained reports them). The same change
	 * may arrive more than once. Returns 0, or ERR_* (logged, rate
	 * limited; the entry comes again with the peer's next snapshot). May
	 * be NULL. */
	int (*retained_apply)(void *arg, const struct cluster_retained *r);
	/** Calls @p fn once per retained topic this node holds, tombstones
	 * included: the retained snapshot sent to every peer whose link comes
	 * up. May be NULL (nothing is sent). */
	void (*each_retained)(void *arg,
	                      void (*fn)(void *ctx,
	                                 const struct cluster_retained *r),
	                      void *ctx);
	/** A QoS >= 1 forward left the outbox of peer @p node_id: the peer
	 * acknowledged it (@p acked), or it expired unsent. @p cookie as
	 * given to cluster_publish (NULL for restored entries). May be
	 * NULL. */
	void (*forward_done)(void *arg, uint64_t node_id, uint64_t msg_id,
	                     void *cookie, bool acked);
	/** The outboxes are freed (cluster_stop): @p cookie, held by an
	 * entry, is let go. May be NULL. */
	void (*forward_forget)(void *arg, void *cookie);
	/** Node @p from_node takes client id @p id over (its client
	 * connected there at cluster clock @p stamp): close the connection
	 * this node has for it and, unless @p clean, append its session (in
	 * broker's own encoding, at most @p max bytes) to @p session and
	 * forget it. @return false to refuse: this node is taking @p id over
	 * itself, later. May be NULL. */
	bool (*takeover)(void *arg, struct mqtt_bytes id, bool clean,
	                 uint64_t stamp, uint64_t from_node,
	                 struct buf *session, size_t max);
	/** Every peer asked by cluster_takeover(@p req) answered (or its
	 * link dropped, or CLUSTER_TAKEOVER_MS passed): @p refused when one
	 * refused; @p session the session handed over (len 0: none),
	 * valid during the call. */
	void (*takeover_done)(void *arg, uint64_t req, bool refused,
	                      struct mqtt_bytes session);
	/** A member changed state (for logs and metrics); may be NULL. */
	void (*member_changed)(void *arg, const char *name,
	                       enum cluster_member_state st);
	/** Log line: level 0 debug, 1 info, 2 warn, 3 error. */
	void (*log)(void *arg, int level, const char *line);
};

struct cluster_config {
	const char *node_name;  /* unique in the cluster */
	uint64_t node_id;       /* stored node id (storage) */
	const char *bind;       /* address to listen on */
	uint16_t port;          /* cluster port; 0 = any free one (tests) */
	const char *advertise;  /* host:port peers use ("host" alone: the
	                         * bound port); "" = bind:port, or the host
	                         * name and port when bind is a wildcard */
	const char *seeds;      /* "host:port,host:port", "" = run alone */
	const char *secret;     /* shared secret; "" = none */
	uint32_t ping_ms;       /* probe period, 0 = 1000 */
	uint32_t dead_ms;       /* unanswered this long: dead, 0 = 5000;
	                         * raised to 4 * ping_ms if below */
	const char *admin_addr; /* host:port of this node's admin API, told
	                         * to peers in Hello; NULL or "" = none */
	size_t outbox_max;      /* forwards kept per peer, 0 = 100000 */
};

/** One member as seen from this node (cluster_members). */
struct cluster_member {
	const char *name;
	const char *addr; /* host:port */
	uint64_t node_id;
	uint64_t incarnation;
	enum cluster_member_state state;
	bool link_up;  /* a link to it is established */
	size_t routes; /* filters it announced */
	size_t outbox; /* forwards waiting for its ack */
	bool self;
	const char *admin_addr; /* its admin API host:port, "" if unknown */
};

/**
 * Listens on cfg->bind:port, connects to the seeds and starts probing.
 * @param cfg copied
 * @param hooks copied
 * @return 0, or ERR_IO (cannot listen) / ERR_MALFORMED (bad node name,
 *         advertise or seed) / ERR_NOMEM; the cause is logged through hooks
 */
int cluster_start(struct event_base *base, const struct cluster_config *cfg,
                  const struct cluster_hooks *hooks, struct cluster **out);

/** Announces that this node leaves (Leave on every established link,
 * written without blocking: best effort, peers that miss it learn it by
 * gossip or see the node die), closes the links and frees @p c.
 * cluster_stop(NULL) is a no-op. */
void cluster_stop(struct cluster *c);

/** This node gained its first local subscriber on @p filter (add), or a
 * persistent session began or stopped holding it (add again, with the new
 * @p durable), or it lost its last (del): streamed to every peer as a
 * delta. Call it once hooks->each_route reflects the change. NULL @p c:
 * no-op. */
void cluster_route_add(struct cluster *c, struct mqtt_bytes filter,
                       bool durable);
void cluster_route_durable(struct cluster *c, struct mqtt_bytes filter,
                           bool durable);
void cluster_route_del(struct cluster *c, struct mqtt_bytes filter);

/**
 * Forwards @p m once to every peer whose routes match its topic, however
 * many of its filters match. QoS 0 goes to peers that are ALIVE or
 * SUSPECT with an established link. QoS >= 1 goes into the outbox of every
 * matching peer, linked or not (a dead node's durable routes still match),
 * and is sent as the link takes it; the entry stays until the peer acks
 * it (hooks->forward_done). Entries made on an established link hold
 * @p cookie. @p out (may be NULL) says what was done.
 * @return the number of peers it was sent to now (0 for NULL @p c)
 */
size_t cluster_publish(struct cluster *c, const struct cluster_msg *m,
                       void *cookie, struct cluster_fwd *out);

/**
 * The linked peers (ALIVE or SUSPECT) with members of shared subscription
 * group @p key ("$share/{name}/{filter}"): up to @p max node ids into
 * @p out, in member slot order (the same on every call). With @p down and
 * no linked peer, the peers that are down or unlinked but have persistent
 * sessions among the group's members instead (a message for them waits
 * in the outbox).
 * @return how many
 */
size_t cluster_share_nodes(struct cluster *c, struct mqtt_bytes key,
                           uint64_t *out, size_t max, bool down);
/** Calls @p fn once for each shared subscription group of the peers whose
 * filter matches @p topic. */
void cluster_share_match(struct cluster *c, struct mqtt_bytes topic,
                         void (*fn)(void *arg, struct mqtt_bytes key),
                         void *arg);

/** Acknowledges a delivered forward (hooks->deliver with ack) to its
 * origin node: call it once what was queued for it is durable. */
void cluster_forward_ack(struct cluster *c, uint64_t origin, uint64_t msg_id);

/** At start, before any publish: an outbox entry kept on disk for peer
 * @p node_id, in msg_id order. @return 0, ERR_LIMIT or ERR_NOMEM */
int cluster_outbox_restore(struct cluster *c, uint64_t node_id,
                           const struct cluster_msg *m);
/** At start: the highest msg_id taken from @p origin, kept on disk. */
void cluster_mark_restore(struct cluster *c, uint64_t origin, uint64_t msg_id);
/**
 * A client connected here with client id @p id at cluster clock @p stamp:
 * asks every linked peer to close its connection for it and hand its
 * session over (hooks->takeover there); hooks->takeover_done reports.
 * @return the request id, or 0 when no peer was asked (the id is this
 *         node's: go on at once)
 */
uint64_t cluster_takeover(struct cluster *c, struct mqtt_bytes id, bool clean,
                          uint64_t stamp);
/** Forgets request @p req (its connection closed): no takeover_done. */
void cluster_takeover_cancel(struct cluster *c, uint64_t req);

/** True when this node knows another member (alive or not): a publish
 * may have somewhere to go. False for NULL @p c. */
bool cluster_has_peers(const struct cluster *c);

/** The largest outbox of a peer with an established link: how far the
 * slowest linked peer is behind (0 for NULL @p c). */
size_t cluster_backlog(struct cluster *c);

/** Counters of acknowledged forwarding (zeros for NULL @p c). */
void cluster_stats_get(struct cluster *c, struct cluster_stats *st);

/**
 * A hybrid logical clock stamp for a retained change made on this node:
 * bits 63..16 are Unix time in milliseconds (CLOCK_REALTIME), bits 15..0 a
 * logical counter that counts changes within one millisecond (and carries
 * into the time bits when it overflows). Stamps compare as integers. Each
 * call returns more than the one before, and more than any stamp received
 * from a peer (a received stamp advances the clock, the HLC receive rule),
 * so a change made here after one was received wins over it everywhere.
 * @return the stamp; with NULL @p c the wall clock alone (counter 0)
 */
uint64_t cluster_hlc_now(struct cluster *c);

/**
 * Sends a retained change made on this node (@p r borrowed; stamp from
 * cluster_hlc_now) to every peer with an established link, whatever its
 * routes. A change over CLUSTER_RETAINED_MAX bytes (topic, payload and
 * properties) is not replicated (logged, rate limited). Peers that are
 * not linked now get it in the snapshot when their link comes up. NULL
 * @p c: no-op.
 */
void cluster_retained_set(struct cluster *c, const struct cluster_retained *r);

/**
 * Calls @p fn for every member (this node included), in name order. @p m
 * and its strings are valid during the call only.
 */
void cluster_members(struct cluster *c,
                     void (*fn)(void *arg, const struct cluster_member *m),
                     void *arg);

/**
 * Joins the cluster that the node at @p seed (host:port) belongs to: the
 * seed is dialed (and redialed, like a configured seed) until its link
 * comes up, then the other members are learned by gossip. After
 * cluster_leave it also takes back the members that leave set aside, with
 * a higher incarnation so that the peers accept this node again.
 * @return 0 (dialing started), ERR_MALFORMED (bad address), ERR_LIMIT
 *         (too many seeds), ERR_NOMEM; ERR_WRONG_STATE for NULL @p c
 */
int cluster_join(struct cluster *c, const char *seed);

/**
 * Leaves the cluster without stopping: Leave on every established link,
 * then every other member is marked LEFT here (no probes, no dials, no
 * forwards) and seed dials stop, until cluster_join. A second call is a
 * no-op. @return 0, or ERR_WRONG_STATE for NULL @p c
 */
int cluster_leave(struct cluster *c);

/** True between cluster_leave and the next cluster_join. */
bool cluster_has_left(const struct cluster *c);

/**
 * Calls @p fn for every remote route: each filter once per member that
 * announced it (@p node its name). Strings are valid during the call only.
 */
void cluster_routes_each(struct cluster *c,
                         void (*fn)(void *arg, struct mqtt_bytes filter,
                                    const char *node),
                         void *arg);

#endif
