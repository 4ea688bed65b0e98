/*
 * struct node: all state of one broker node, and the broker-internal API
 * between its parts: connections (conn.c), sessions and their queues
 * (sess.c), routing of published messages (router.c), listeners
 * (listener.c). Loop thread only, everywhere.
 */
#ifndef BROKER_NODE_H
#define BROKER_NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <event2/event.h>
#include <event2/event_struct.h>

#include "broker/acl.h"
#include "broker/auth.h"
#include "broker/config.h"
#include "broker/log.h"
#include "broker/msg.h"
#include "broker/retain.h"
#include "broker/topic.h"
#include "proto/proto.h"

struct conn;
struct sess;
struct listener;
struct share_group;
struct store;
struct conn_ack;
struct mesh;
struct admin;

/* Why a CONNECT was refused (node_stats.conn_refused_by). */
enum node_refuse {
	NODE_REFUSE_BAD_CREDENTIALS, /* wrong user name or password */
	NODE_REFUSE_NOT_AUTHORIZED,  /* anonymous, or bad auth method */
	NODE_REFUSE_CLIENT_ID,       /* client id rejected */
	NODE_REFUSE_PROTOCOL,        /* unsupported protocol level */
	NODE_REFUSE_UNAVAILABLE,     /* out of memory, shutting down */
	NODE_REFUSE_OTHER,           /* any other CONNACK code */
	NODE_REFUSE_N,
};

/* Counters, exported as metrics (metrics.c). */
struct node_stats {
	uint64_t conn_accepted;
	uint64_t conn_refused; /* over max_connections */
	uint64_t conn_closed;
	uint64_t msgs_in;                 /* PUBLISH received */
	uint64_t msgs_denied;             /* of which not permitted (acl) */
	uint64_t msgs_out;                /* PUBLISH sent */
	uint64_t msgs_dropped_queue_full; /* session queue at max_queued */
	uint64_t msgs_dropped_slow;       /* QoS 0 to a client not reading */
	uint64_t msgs_dropped_offline;    /* QoS 0 to an offline session */
	uint64_t msgs_dropped_too_large;  /* over a v5 client's packet size */
	uint64_t bytes_in;
	uint64_t bytes_out;
	uint64_t cluster_forwarded;    /* message copies sent to peers */
	uint64_t cluster_received;     /* messages peers forwarded here */
	uint64_t cluster_duplicates;   /* forwards received again (acked) */
	uint64_t cluster_ack_timeouts; /* publisher acks that stopped waiting
	                                * for peers (forward_timeout_ms) */
	/* by QoS (index 0..2): PUBLISH packets and their payload bytes */
	uint64_t msgs_in_qos[3];
	uint64_t msgs_out_qos[3];
	uint64_t payload_in_qos[3];
	uint64_t payload_out_qos[3];
	/* CONNECTs refused, by enum node_refuse (max_connections is
	 * conn_refused above) */
	uint64_t conn_refused_by[NODE_REFUSE_N];
	uint64_t clients_kicked;   /* closed by an admin (kick, drop) */
	uint64_t sessions_dropped; /* removed by an admin */
};

/* One matched subscriber during routing (see router.c). */
struct route_hit {
	struct sess *sess;
	uint8_t qos;       /* highest QoS of its matching subscriptions */
	bool rap;          /* one of them has Retain As Published */
	uint8_t n_sub_ids; /* subscription identifiers of the matches */
	uint32_t sub_ids[MQTT_MAX_SUB_IDS];
};

/* A bounded free list of equal-size blocks: the per-message allocations
 * (queued deliveries, small output items) are reused instead of going
 * through malloc and free each time. */
struct node_pool {
	void *head;   /* free blocks, linked through their first word */
	uint32_t n;   /* blocks in the list */
	uint32_t max; /* beyond this, blocks go back to free() */
	size_t size;  /* block size */
};

struct sess_table {
	struct sess **slots; /* open addressing by client id hash */
	size_t cap;          /* power of two, or 0 */
	size_t n;            /* sessions stored */
	size_t tomb;         /* deleted slots */
};

struct node {
	struct event_base *base;
	const struct config *cfg;
	struct topic_tree *subs;
	struct retain_store *retained;
	struct sess_table sessions;
	struct listener *listeners; /* list */
	struct conn *conns;         /* all live connections (list) */
	struct conn *reap;          /* closed, waiting to be freed */
	struct conn *dirty;         /* with output to flush */
	uint32_t n_conns;
	uint64_t next_msg_id;
	uint64_t next_client_seq; /* for generated client ids */
	uint64_t route_gen;       /* stamps sessions while routing */
	struct route_hit *hits;   /* routing scratch */
	size_t n_hits;
	struct msg *routing; /* message being matched */
	uint8_t share_mode;  /* enum node_share_mode, while routing */
	const struct mqtt_bytes *share_keys; /* NODE_SHARE_ONLY: the groups */
	size_t n_share_keys;
	struct share_group *groups; /* shared subscription groups */
	struct auth auth;           /* users of [auth] password_file */
	struct acl acl;             /* rules of [auth] acl_file */
	struct store *store;        /* LMDB storage, or NULL */
	uint64_t node_id;           /* stored (or, without storage, random) */
	struct mesh *mesh;          /* cluster glue (mesh.c), or NULL */
	struct event store_ev;      /* its completions are ready */
	bool loading;               /* start-up load: do not write back */
	uint64_t persist_writes;    /* storage ops added so far */
	struct store_batch *wbatch; /* ops of this loop turn, or NULL */
	struct conn_ack **wacks;    /* released when wbatch is durable */
	size_t n_wacks;
	size_t cap_wacks;
	uint32_t wgen;              /* generation of wbatch (msg->batch_gen) */
	struct event wflush_ev;     /* submits wbatch after the current turn */
	uint64_t next_seq;          /* queue order of QoS 1/2 deliveries */
	uint64_t persist_errors;    /* batches that failed to commit */
	struct persist_mark *marks; /* per origin node: highest forward
	                             * taken (persist_mark) */
	size_t n_marks;
	size_t cap_marks;
	struct persist_obox *obox_load; /* outbox entries loaded at start,
	                                 * until mesh_start hands them over */
	size_t n_obox_load;
	size_t cap_obox_load;
	size_t hits_cap;
	uint8_t *rx; /* shared read buffer */
	size_t rx_cap;
	struct event reap_ev;  /* frees closed connections */
	struct event flush_ev; /* writes dirty connections' output */
	struct event tick_ev;  /* keepalive and CONNECT timeouts */
	struct event sigint_ev;
	struct event sigterm_ev;
	struct node_pool out_items; /* small output items (conn.c) */
	struct node_pool sess_outs; /* struct sess_out */
	struct node_stats stats;
	bool stopping;
	struct log_limit log_lim; /* for peer-triggered lines */
	uint64_t started_ms;      /* node_now_ms() at node_init */
	struct admin *admin;      /* admin HTTP API (admin.c), or NULL */
	struct event sys_ev;      /* $SYS publication timer (sys.c) */
	bool sys_on;              /* sys_ev is assigned */
};

/* Which shared subscription groups router_publish serves. */
enum node_share_mode {
	NODE_SHARE_LOCAL = 0, /* every local group (no cluster involved) */
	NODE_SHARE_CLUSTER,   /* a local publish the cluster shares: each group
	                       * goes to one node (mesh_share_here) */
	NODE_SHARE_ONLY,      /* a peer's forward: only n->share_keys */
};

/* ---- node.c ---- */

/**
 * Sets up a node on a new event base: listeners bound, signals handled.
 * @return 0, or ERR_IO / ERR_NOMEM after logging the cause
 */
int node_init(struct node *n, const struct config *cfg);
/** Runs the loop until SIGINT/SIGTERM. @return 0 on a clean stop */
int node_run(struct node *n);
/** Closes everything and frees what node_init made. */
void node_fini(struct node *n);
/** Monotonic clock in milliseconds. */
uint64_t node_now_ms(void);
/** A block of the pool's size (uninitialised), or NULL on no memory. */
void *node_pool_get(struct node_pool *p);
/** Returns a block of the pool's size to it (or to free() when full);
 * NULL is a no-op. */
void node_pool_put(struct node_pool *p, void *b);
/** Frees every block of the pool. */
void node_pool_drain(struct node_pool *p);
/** Size of a pooled output item's header room (conn.c). */
#define CONN_ITEM_SMALL 64

/* ---- listener.c ---- */

/** Binds the MQTT TCP listeners of cfg. @return 0 or ERR_IO (logged) */
int listener_open_all(struct node *n);
void listener_close_all(struct node *n);

/* ---- conn.c ---- */

/** Takes ownership of an accepted, non-blocking socket. */
void conn_accept(struct node *n, int fd, const struct sockaddr *sa,
                 socklen_t salen);
/**
 * Closes a connection: stops its I/O at once and frees it later from the
 * reap event (never inside the caller's stack). Publishes the will when
 * @p send_will. Safe to call twice.
 */
void conn_close(struct conn *c, const char *why, bool send_will);
/**
 * Queues one encoded packet for sending. @p hdr is copied; @p m, when not
 * NULL, is sent after it by reference (its payload).
 * @return 0, or ERR_NOMEM (the connection is being closed then)
 */
int conn_send(struct conn *c, const uint8_t *hdr, size_t hdr_len,
              struct msg *m);
/** Encodes and queues a control packet. @return as conn_send */
int conn_send_packet(struct conn *c, const struct mqtt_packet *pkt);
/** Bytes queued for sending and not yet written. */
size_t conn_pending(const struct conn *c);
/** True when so much output is pending that the client is not reading:
 * QoS 0 messages to it are dropped. */
bool conn_congested(const struct conn *c);
/** Outgoing QoS 1/2 window: max_inflight, or less when an MQTT 5 client
 * asked for less (Receive Maximum). */
uint32_t conn_window(const struct conn *c);
/**
 * The topic alias to use towards an MQTT 5 client that allows them: an
 * alias already set for @p topic (*known true: send an empty topic), or a
 * new one (*known false: send the topic with it once).
 * @return the alias, or 0 to send the topic in full without one
 */
uint16_t conn_alias_out(struct conn *c, struct mqtt_bytes topic, bool *known);
/** Takes back the alias conn_alias_out just set, when that PUBLISH was not
 * sent after all. */
void conn_alias_out_undo(struct conn *c, uint16_t id);
/** Largest packet the client accepts (MQTT 5), 0 = no limit. */
uint32_t conn_max_packet(const struct conn *c);
/**
 * Sends DISCONNECT with reason @p rc first when the client speaks MQTT 5
 * and is connected, then closes as conn_close (will published).
 */
void conn_abort(struct conn *c, uint8_t rc, const char *why);
/** Protocol level of the connection. */
uint8_t conn_version(const struct conn *c);
/** Closes every connection (shutdown). */
void conn_close_all(struct node *n, const char *why);
/** Bytes of an output item with room for @p hdr_len header bytes. */
size_t conn_item_size(size_t hdr_len);
/** Keepalive / CONNECT timeout check for every connection. */
void conn_tick(struct node *n, uint64_t now);
/** Writes queued output of connections marked dirty. */
void conn_flush_dirty(struct node *n);
/** Frees connections closed since the last call. */
void conn_reap(struct node *n);

/* ---- sess.c ---- */

/** One subscription a session holds (kept for unsubscribe-all). */
struct sess_sub {
	struct sess_sub *next;
	struct topic_sub_opts opts;
	uint16_t len;
	char filter[]; /* not NUL-terminated */
};

/** One message waiting to be sent, or in flight. */
struct sess_out {
	struct sess_out *next;
	struct msg *msg;    /* reference held; NULL once PUBREC arrived */
	uint16_t packet_id; /* 0 until sent */
	uint8_t qos;        /* delivery QoS (after downgrade) */
	uint8_t state;      /* enum sess_out_state */
	bool retain;        /* RETAIN flag to send */
	uint8_t n_sub_ids;  /* v5 subscription identifiers to send */
	uint32_t *sub_ids;  /* owned, NULL when none */
	uint64_t seq;       /* node-wide delivery order (storage key) */
};

enum sess_out_state {
	SESS_OUT_QUEUED, /* not yet sent */
	SESS_OUT_SENT,   /* PUBLISH sent, waiting for PUBACK/PUBREC */
	SESS_OUT_PUBREL, /* PUBREC received, PUBREL sent, waiting PUBCOMP */
};

struct sess {
	struct node *node;
	struct conn *conn; /* NULL while offline */
	char *client_id;   /* NUL-terminated, points at id[] */
	size_t id_len;
	uint32_t hash;
	uint32_t expiry;      /* seconds kept offline: 0 = ends with its
	                       * connection, UINT32_MAX = never expires */
	uint64_t expire_at;   /* ms when an offline session ends, 0 = never */
	struct msg *will;     /* v5 delayed will, waiting for will_at */
	uint64_t will_at;     /* ms */
	uint32_t will_expiry; /* its Message Expiry Interval, seconds */
	bool persisted;       /* its record is in storage */
	bool routes_durable;  /* its routes count as durable (mesh.c) */
	uint8_t version;      /* protocol level of the last connection */
	uint64_t route_gen;   /* == node->route_gen while matched */
	size_t route_idx;     /* its slot in node->hits while matched */
	struct sess_sub *subs;
	struct sess_out *inflight; /* sent, oldest first */
	struct sess_out **inflight_tail;
	uint32_t n_inflight;
	struct sess_out *queue; /* waiting, oldest first */
	struct sess_out **queue_tail;
	uint32_t n_queued;
	uint16_t next_pid;
	uint16_t *qos2_in; /* incoming QoS 2 ids awaiting PUBREL */
	uint32_t n_qos2_in;
	uint32_t cap_qos2_in;
	uint64_t dropped; /* messages dropped for this session */
	char id[];        /* the client id, in the same allocation */
};

/** A zeroed struct sess_out, or NULL on no memory. */
struct sess_out *sess_out_new(struct node *n);
/** Frees @p o with its message reference and subscription ids. */
void sess_out_free(struct node *n, struct sess_out *o);
/** The session of @p id, or NULL. */
struct sess *sess_find(struct node *n, const char *id, size_t len);
/** New empty session stored in the table. @return NULL on no memory */
struct sess *sess_create(struct node *n, const char *id, size_t len,
                         uint32_t expiry, uint8_t version);
/** Removes the session from the table and frees it with its
 * subscriptions and queues. */
void sess_destroy(struct sess *s);
/** Ends a session: publishes its delayed will, if any, then destroys it. */
void sess_end(struct sess *s);
/** Its connection closed: ends the session, or keeps it offline until its
 * expiry, holding @p will (taken) until @p will_delay seconds pass. */
void sess_detach(struct sess *s, struct msg *will, uint32_t will_delay,
                 uint32_t will_expiry);
/** Expires offline sessions and publishes delayed wills that are due. */
void sess_tick(struct node *n, uint64_t now);
/** Frees every session (shutdown). */
void sess_destroy_all(struct node *n);
/** Calls @p fn for every session; @p fn must not end any. */
void sess_foreach(struct node *n, void (*fn)(struct sess *s, void *arg),
                  void *arg);

/** Adds or replaces a subscription; @p existed says which.
 * @return 0 or ERR_NOMEM */
int sess_subscribe(struct sess *s, struct mqtt_bytes filter,
                   const struct topic_sub_opts *opts, bool *existed);
/** @return 0 or ERR_NOTFOUND */
int sess_unsubscribe(struct sess *s, struct mqtt_bytes filter);

/**
 * Delivers @p m at @p qos: sends it when the session is online and its
 * window allows, queues it otherwise (QoS 0 is dropped for an offline
 * session or a client that does not read).
 * @param m borrowed: the session takes its own reference when it keeps it
 */
void sess_deliver(struct sess *s, struct msg *m, uint8_t qos, bool retain,
                  const uint32_t *sub_ids, size_t n_sub_ids);
/** After (re)connect: re-sends in-flight messages (DUP set) and PUBRELs
 * in their original order, then sends from the queue. */
void sess_resume(struct sess *s);
/** Sends queued messages while the window allows. */
void sess_pump(struct sess *s);
/** PUBACK / PUBREC / PUBCOMP from the client. */
void sess_on_puback(struct sess *s, uint16_t pid);
void sess_on_pubrec(struct sess *s, uint16_t pid, uint8_t rc);
void sess_on_pubcomp(struct sess *s, uint16_t pid);
/** Incoming QoS 2 ids. @return true when added, false if present */
bool sess_qos2_in_add(struct sess *s, uint16_t pid, int *err);
/** @return true when the id was present (and is removed now) */
bool sess_qos2_in_remove(struct sess *s, uint16_t pid);

/**
 * Builds a struct msg from a PUBLISH or a will: copies topic and payload,
 * keeps the properties to forward (payload format, content type,
 * response topic, correlation data, user properties) and turns Message
 * Expiry into an absolute time. @return NULL on no memory
 */
struct msg *router_msg_new(struct node *n, struct mqtt_bytes topic,
                           struct mqtt_bytes payload,
                           const struct mqtt_props *pr, uint8_t qos,
                           bool retain);

/**
 * Acks that wait for a commit (ordered per connection: an ack that could
 * go at once waits behind earlier deferred ones, as [MQTT-4.6.0-2] /
 * [MQTT-4.6.0-3] require). conn_ack_defer queues one not yet ready;
 * conn_ack_ready marks it ready (after the commit, or with the error)
 * and sends what can go. @return NULL on no memory (the connection is
 * closed then)
 */
struct conn_ack *conn_ack_defer(struct conn *c, uint8_t type, uint16_t pid,
                                uint8_t rc);
void conn_ack_ready(struct conn_ack *a, int err);
/** The cluster answered the takeover of a parked CONNECT (conn_park):
 * @p refused (another node takes the id over, later: CONNACK 0x89), or go
 * on with @p session (handed over by another node; len 0: none). */
void conn_takeover_done(struct conn *c, bool refused,
                        struct mqtt_bytes session);
/** Ends @p old, whose session a new connection takes (here or on
 * another node): detached from it, DISCONNECT 0x8E (v5), its will goes. */
void conn_take_over(struct conn *old, const char *why);
/** A parked CONNECT lost to another node's later takeover of its id. */
void conn_takeover_lost(struct conn *c);
/** The client id of a parked CONNECT, or NULL when @p c is not parked. */
const char *conn_parked_id(const struct conn *c, size_t *len);
/** @p a waits for one more conn_ack_ready before it goes. */
void conn_ack_hold(struct conn_ack *a);
/** An ack that belongs to no connection: its conn_ack_ready calls
 * @p fn(@p arg, err) and frees it. @return NULL on no memory */
struct conn_ack *conn_ack_call(void (*fn)(void *arg, int err), void *arg);
/**
 * Queues a PUBLISH (as conn_send) that is not written, nor anything queued
 * after it, until every storage change made so far is durable: a QoS 2
 * delivery must be on disk before the client can acknowledge it, or a
 * restart would deliver it again under a new packet id.
 * @return 0, or ERR_NOMEM (the connection is being closed then)
 */
int conn_send_durable(struct conn *c, const uint8_t *hdr, size_t hdr_len,
                      struct msg *m);

/* ---- persist.c ---- */

/** Opens storage and loads retained messages and persistent sessions.
 * @return 0, or an ERR_* after logging the cause */
int persist_open(struct node *n);
/** Commits what is pending and closes storage. */
void persist_close(struct node *n);
/*
 * Changes made during one turn of the loop go into one storage batch
 * (n->wbatch), submitted once the turn's callbacks have run; the writer
 * thread commits it together with other pending batches. An ack that
 * promises durability is attached with persist_barrier and released
 * from the completion.
 */

/** Releases @p ack once every change made so far is durable. */
void persist_barrier(struct node *n, struct conn_ack *ack);
/** True when changes are written to disk (durability sync or relaxed). */
bool persist_on(const struct node *n);
/** True when @p s is a session whose state is written to disk. */
bool persist_sess_on(const struct sess *s);
/** Writes a retained message (an empty payload deletes the topic's). */
void persist_retained(struct node *n, const struct msg *m);
/** Writes a persistent session's record, with its delayed will; a
 * session whose expiry became 0 is deleted instead. */
void persist_session(struct sess *s);
/** Deletes a session's record and its subscriptions, queue and in-flight
 * state. */
void persist_session_del(struct sess *s);
/** Writes (@p opts) or deletes (NULL) one subscription of a persistent
 * session. */
void persist_sub(struct sess *s, struct mqtt_bytes filter,
                 const struct topic_sub_opts *opts);
/** Writes a queued delivery of a persistent session (its payload once
 * per batch however many sessions queue it). */
void persist_queue_put(struct sess *s, const struct sess_out *o);
/** Writes the packet id and state of a delivery sent (or PUBREC'd); a
 * PUBREC'd one no longer needs its queue entry, which is deleted. */
void persist_inflight_out(struct sess *s, const struct sess_out *o);
/** Deletes a delivery that is finished or dropped: its queue entry and,
 * once sent, its in-flight record. */
void persist_out_del(struct sess *s, const struct sess_out *o);
/** Writes (@p on) or deletes an incoming QoS 2 packet id awaiting
 * PUBREL. */
void persist_qos2_in(struct sess *s, uint16_t pid, bool on);

/* The highest forward taken from one origin node (persist_mark). */
struct persist_mark {
	uint64_t origin;
	uint64_t msg_id;
	bool dirty; /* not yet in a batch */
};

/* An outbox entry loaded at start (mesh_start restores it). */
struct persist_obox {
	uint64_t peer;
	struct msg *m;   /* reference held */
	uint8_t *groups; /* the shared groups it is for (mesh_groups_put),
	                  * owned; NULL: none */
	size_t groups_len;
};

/** Writes an outbox entry: @p m waits for the ack of peer node @p peer
 * (its payload once per batch, shared with the sessions queueing it), for
 * the shared groups encoded in @p groups (each a u16 length and the key;
 * empty: none), which the peer gets with it after a restart too. */
void persist_outbox_put(struct node *n, uint64_t peer, struct msg *m,
                        struct mqtt_bytes groups);
/** Deletes an outbox entry (acked, or expired). */
void persist_outbox_del(struct node *n, uint64_t peer, uint64_t msg_id);
/** The highest forward taken from node @p origin is now @p msg_id:
 * written with the batch of this turn, so with what it queued. */
void persist_mark(struct node *n, uint64_t origin, uint64_t msg_id);
/** Calls @p fn for each mark stored. @return 0 or ERR_* */
int persist_load_marks(struct node *n,
                       void (*fn)(void *arg, uint64_t origin, uint64_t msg_id),
                       void *arg);

/* ---- mesh.c ---- */

/** Starts the cluster link (after storage: it needs the node id and the
 * loaded subscriptions). @return 0, or an ERR_* after logging the cause */
int mesh_start(struct node *n);
/** Tells the peers this node leaves and closes the links. */
void mesh_stop(struct node *n);
/** A subscription of @p s to @p filter was added (+1) or removed (-1); a
 * filter's first and last ones are announced to the peers, and so is
 * whether a persistent session holds it (a durable route). */
void mesh_sub_ref(struct sess *s, struct mqtt_bytes filter, int delta);
/** @p s's Session Expiry changed: its routes become durable or not. */
void mesh_sess_durable(struct sess *s);
struct mesh_wait;
/**
 * Sends a message published on this node to the peers whose routes match
 * it (once per peer); QoS >= 1 goes through the per-peer outboxes, written
 * to storage. @p wait (may be NULL) is set, under durability sync, when
 * linked peers will ack it: attach the publisher's ack with
 * mesh_wait_attach. @return the number of peers it went to
 */
size_t mesh_forward(struct node *n, struct msg *m, struct mesh_wait **wait);
/** A local publish (@p m) matched local group @p key: true when this node
 * serves it, else it is assigned to a peer with members (the next
 * mesh_forward sends it there). Each group goes to one node per message,
 * turn by turn over the nodes with members. */
bool mesh_share_here(struct node *n, struct mqtt_bytes key,
                     const struct msg *m);
/** Holds @p a until every peer of @p w acked, or [cluster]
 * forward_timeout_ms passed (the outbox carries the message then). */
void mesh_wait_attach(struct node *n, struct mesh_wait *w, struct conn_ack *a);
/** Asks the other nodes to hand over client id @p id for CONNECT @p c
 * (conn_takeover_done follows). @return the request, 0 when no other node
 * is linked (go on at once) */
uint64_t mesh_takeover(struct node *n, struct conn *c, const char *id,
                       size_t len, bool clean);
/** @p c closed while parked: forget its request. */
void mesh_takeover_cancel(struct node *n, struct conn *c, uint64_t req);
/** A stamp (cluster clock) for a retained change made on this node. */
uint64_t mesh_stamp(struct node *n);
/** Replicates a retained change made on this node (@p m stamped, an empty
 * payload clears the topic) to every peer. */
void mesh_retained(struct node *n, const struct msg *m);

/* ---- handoff.c ---- */

/** Appends @p s (subscriptions, in-flight and, with @p queue, queued
 * messages, packet ids) to @p b in the handoff format. @return 0 or
 * ERR_NOMEM */
int handoff_export(const struct sess *s, struct buf *b, bool queue);
/** A new persistent session @p id from a handoff blob, stored.
 * @return it, or NULL with *err (ERR_MALFORMED, ERR_NOMEM) */
struct sess *handoff_import(struct node *n, const char *id, size_t len,
                            struct mqtt_bytes blob, int *err);

/* ---- share.c ---- */

/**
 * Splits a "$share/{name}/{filter}" filter. @p shared says whether @p f is
 * one; then @p filter is its topic filter (a view into @p f).
 * @return 0, or ERR_BAD_FILTER for a malformed shared filter
 */
int share_parse(struct mqtt_bytes f, bool *shared, struct mqtt_bytes *filter);
/** Adds (or updates) @p s as a member of the group of @p full.
 * @return 0 or ERR_NOMEM */
int share_add(struct node *n, struct mqtt_bytes full, struct mqtt_bytes filter,
              struct sess *s, const struct topic_sub_opts *opts);
/** Removes @p s from the group of @p full, freeing an empty group.
 * @return 0 or ERR_NOTFOUND */
int share_remove(struct node *n, struct mqtt_bytes full, struct sess *s);
/** Picks the member that gets the next message of @p qos.
 * @return the member's subscription options; *out its session */
const struct topic_sub_opts *share_pick(struct share_group *g, uint8_t qos,
                                        struct sess **out);
void share_free_all(struct node *n);
/** The key "$share/{name}/{filter}" of group @p g. */
struct mqtt_bytes share_key(const struct share_group *g);
/** True when this node has members of group @p key. */
bool share_exists(struct node *n, struct mqtt_bytes key);

/* ---- router.c ---- */

/**
 * Routes a published message to every matching subscriber: one delivery per
 * session at the highest matching QoS, capped by the message's QoS; RETAIN
 * cleared. @p m borrowed. @return the number of sessions it went to
 */
size_t router_publish(struct node *n, struct msg *m);
/** Publishes a will (retained too when its RETAIN is set), its expiry
 * counted from now. */
void router_publish_will(struct node *n, struct msg *will, uint32_t expiry_s);
/** Sends the retained messages matching @p filter to @p s (RETAIN=1). */
void router_send_retained(struct node *n, struct sess *s,
                          struct mqtt_bytes filter, uint8_t qos,
                          uint32_t sub_id);

/* ---- admin API support (conn.c, sess.c, listener.c, mesh.c) ---- */

/** What the admin API shows of a connection (conn_get_info). */
struct conn_info {
	char addr[56];         /* peer "ip:port" / "[ip]:port" */
	const char *username;  /* borrowed from the connection, or NULL */
	uint64_t connected_ms; /* node_now_ms() at CONNACK, 0 before */
	uint16_t keepalive;    /* seconds, as granted */
	uint8_t version;       /* protocol level */
	size_t pending;        /* output bytes not yet written */
};

/** Fills @p out; its strings are valid until the connection closes. */
void conn_get_info(const struct conn *c, struct conn_info *out);
/**
 * Closes a client on an admin's request: MQTT 5 clients get DISCONNECT
 * 0x98 (Administrative action) first, 3.1/3.1.1 clients are just closed;
 * the will is published, as for any close without DISCONNECT. The session
 * stays (it expires as usual).
 */
void conn_kick(struct conn *c, const char *why);
/** conn_kick after detaching the connection from its session, which the
 * caller is about to end. */
void conn_drop_session(struct conn *c, const char *why);
/** Ends a session on an admin's request, like an expiry: its connection
 * is kicked, its stored state deleted, a delayed will published. */
void sess_drop(struct sess *s, const char *why);
/** Calls @p fn with the "addr:port" name of every MQTT listener. */
void listener_foreach(struct node *n, void (*fn)(void *arg, const char *name),
                      void *arg);
/** The cluster handle (cluster/cluster.h), or NULL without one. */
struct cluster *mesh_cluster(struct node *n);
/** Calls @p fn for every topic filter with local subscribers, with their
 * count. */
void mesh_routes_each(struct node *n,
                      void (*fn)(void *arg, struct mqtt_bytes filter,
                                 uint32_t refs),
                      void *arg);

#endif
