/*
 * cluster's private header: limits, the frame codec (frame.c), the remote
 * route table (rtab.c), the SWIM rules as pure functions (member.c), the
 * hybrid logical clock and retained replication (retained.c), the
 * structs shared by cluster.c, link.c and swim.c, and the unit-test hooks.
 * Generated protobuf types appear only as incomplete struct pointers here;
 * cluster's .c files include "cluster/cluster.pb-c.h" for their definitions.
 */
#ifndef CLUSTER_CLUSTER_INT_H
#define CLUSTER_CLUSTER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster/cluster.h"
#include "proto/proto.h"

struct bufferevent;
struct event;
struct evconnlistener;
struct evdns_base;
struct evdns_getaddrinfo_request;
struct Mqd__Envelope;
struct Mqd__Hello;
struct Mqd__Member;
struct Mqd__PubAck;
struct Mqd__RetainedSync;
struct Mqd__Takeover;
struct Mqd__TakeoverReply;

#define CLUSTER_PORT_DEFAULT 7883 /* seed given without a port */
#define CLUSTER_NAME_MAX     255  /* node name bytes (config allows 255) */
#define CLUSTER_ADDR_MAX     300  /* "host:port" bytes */
#define CLUSTER_NONCE_LEN    16   /* Hello nonce */
#define CLUSTER_MAC_LEN      32   /* HMAC-SHA256 */
#define CLUSTER_MEMBERS_MAX  1024 /* members known; more are ignored */
#define CLUSTER_SEEDS_MAX    64
#define CLUSTER_ROUTES_MAX   (1u << 20) /* filters held per peer */
#define CLUSTER_GROUPS_MAX   64         /* shared groups one publish names */
/* Bytes of messages one peer's outbox holds at most (besides
 * outbox_max entries): a dead node with large messages waiting for it
 * must not exhaust this node's memory. */
#define CLUSTER_OUTBOX_BYTES_MAX ((size_t)256 << 20)
#define CLUSTER_GOSSIP_MAX       8          /* updates piggy-backed per frame */
#define CLUSTER_BACKOFF_MIN_MS   200        /* first redial delay */
#define CLUSTER_BACKOFF_MAX_MS   5000       /* redial delay cap */
#define CLUSTER_PENDING_MAX      64         /* inbound links in handshake */
#define CLUSTER_RELAYS_MAX       32         /* PingReq relays in flight */
#define CLUSTER_SNAP_PART        (1u << 20) /* filter bytes per snapshot part */
#define CLUSTER_RSNAP_PART       (1u << 20) /* retained bytes per snapshot part */
#define CLUSTER_TAKEOVER_MS      3000       /* a takeover waits this long */
/* A received stamp further ahead of this node's wall clock is refused: a
 * peer with a broken clock (or a forged stamp) cannot push every node's
 * clock, and so every later retained change, far into the future. */
#define CLUSTER_HLC_AHEAD_MAX_MS (3600u * 1000)
/* Largest frame before the handshake ends (a Hello lists every member):
 * an unauthenticated peer cannot make this node buffer CLUSTER_FRAME_MAX. */
#define CLUSTER_HELLO_MAX (1u << 20)
/* Output a link may queue before the peer counts as not reading. */
#define CLUSTER_OUT_MAX (4 * (size_t)CLUSTER_FRAME_MAX)

/* hooks->log levels */
enum cluster_log_level {
	CLUSTER_LOG_DEBUG = 0,
	CLUSTER_LOG_INFO = 1,
	CLUSTER_LOG_WARN = 2,
	CLUSTER_LOG_ERROR = 3,
};

/* ---- frame.c: 4-byte big-endian length, then one packed Envelope ---- */

/**
 * Appends one frame holding @p env to @p b, setting env->version to
 * CLUSTER_PROTO_VERSION.
 * @return 0; ERR_TOO_LARGE when the packed envelope is over
 *         CLUSTER_FRAME_MAX (@p b unchanged); ERR_NOMEM (@p b failed)
 */
int frame_encode(struct buf *b, struct Mqd__Envelope *env);

/**
 * Reads the length prefix at @p p.
 * @return 0 with *len set; ERR_AGAIN (fewer than 4 bytes); ERR_TOO_LARGE
 *         (length over CLUSTER_FRAME_MAX)
 */
int frame_peek(const uint8_t *p, size_t n, uint32_t *len);

/**
 * Decodes the frame at the start of @p p (@p n bytes available).
 * @param used set to the frame's size, prefix included, on success
 * @param out set to a new envelope on success (free with frame_free); it
 *        copies what it needs, so @p p may be released at once
 * @param why set to a reason for the log on failure
 * @return 0; ERR_AGAIN (incomplete); ERR_TOO_LARGE (oversize length);
 *         ERR_MALFORMED (undecodable, or no body); ERR_BAD_VERSION
 */
int frame_decode(const uint8_t *p, size_t n, size_t *used,
                 struct Mqd__Envelope **out, const char **why);

/** Frees a decoded envelope; frame_free(NULL) is a no-op. */
void frame_free(struct Mqd__Envelope *env);

/** Lowercase name of the envelope's body ("hello", "ping"...). */
const char *frame_body_name(const struct Mqd__Envelope *env);

/* ---- rtab.c: remote routes, filter -> set of node slots ---- */

struct rtab_entry {
	struct rtab_entry *next; /* hash chain */
	uint32_t hash;           /* of the filter */
	uint32_t n_nodes;        /* nodes used */
	uint32_t cap_nodes;      /* nodes allocated */
	uint32_t *nodes;         /* node slots holding the filter, unordered */
	size_t len;              /* filter bytes */
	uint8_t filter[];        /* the filter (not NUL-terminated) */
};

struct rtab {
	struct rtab_entry **buckets; /* n_buckets chains */
	size_t n_buckets; /* a power of two, 0 before the first add */
	size_t n_entries; /* distinct filters */
	uint32_t *count;  /* by slot: filters the node holds */
	uint32_t *stamp;  /* by slot: last match it was reported in */
	uint32_t n_slots; /* entries in count and stamp */
	uint32_t gen;     /* match generation */
};

void rtab_init(struct rtab *t);
/** Frees everything; rtab_fini(NULL) is a no-op. */
void rtab_fini(struct rtab *t);
/**
 * Records that node @p slot has a route on @p f (borrowed, copied).
 * @return 0, ERR_EXISTS (already recorded) or ERR_NOMEM (table unchanged)
 */
int rtab_add(struct rtab *t, struct mqtt_bytes f, uint32_t slot);
/** @return 0 or ERR_NOTFOUND */
int rtab_del(struct rtab *t, struct mqtt_bytes f, uint32_t slot);
/** Removes every route of node @p slot. */
void rtab_drop_node(struct rtab *t, uint32_t slot);
/** Number of filters node @p slot holds. */
size_t rtab_node_routes(const struct rtab *t, uint32_t slot);
/**
 * Calls @p fn once for each node with at least one filter matching
 * @p topic, however many of its filters match. A linear scan of every
 * filter with mqtt_topic_matches(): enough for this slice, a trie later.
 * @return the number of nodes reported
 */
size_t rtab_match(struct rtab *t, struct mqtt_bytes topic,
                  void (*fn)(void *arg, uint32_t slot), void *arg);

/**
 * Calls @p fn for each entry of @p t, a table of shared subscription keys
 * ("$share/{name}/{filter}"), whose filter matches @p topic.
 */
void rtab_match_shared(struct rtab *t, struct mqtt_bytes topic,
                       void (*fn)(void *arg, const struct rtab_entry *e),
                       void *arg);
/** The entry for filter (or key) @p f, or NULL. */
const struct rtab_entry *rtab_get(const struct rtab *t, struct mqtt_bytes f);

/* ---- member.c: SWIM rules and small helpers, no state ---- */

/**
 * True when the update (@p st, @p inc) replaces what is known (@p cur,
 * @p cur_inc): a higher incarnation wins; at equal incarnations
 * ALIVE < SUSPECT < DEAD < LEFT.
 */
bool member_update_wins(enum cluster_member_state cur, uint64_t cur_inc,
                        enum cluster_member_state st, uint64_t inc);

/**
 * This node's incarnation after hearing (@p st, @p inc) about itself: above
 * @p inc when the update would override it (a suspicion, a death, or a
 * stale higher incarnation), else @p own unchanged.
 */
uint64_t member_refute(uint64_t own, enum cluster_member_state st,
                       uint64_t inc);

/**
 * When a member suspected at @p suspected_ms, last heard from (directly or
 * through a relayed Ack) at @p heard_ms, is declared DEAD. The suspicion
 * lasts dead_ms minus the time already spent probing since the last
 * contact, minus half a ping of slack for timers and delivery: DEAD comes
 * at most dead_ms after the member was last heard, so a node that dies is
 * DEAD within dead_ms. But it lasts at least one ping_ms, the member's
 * chance to refute.
 */
uint64_t member_dead_at(uint64_t suspected_ms, uint64_t heard_ms,
                        uint32_t ping_ms, uint32_t dead_ms);

/** 1..CLUSTER_NAME_MAX bytes, no control characters, no '"'. */
bool member_name_is_valid(const char *name);

/**
 * Splits "host:port", "[v6addr]:port" or "host" (port @p defport) into
 * NUL-terminated parts.
 * @return 0, or ERR_MALFORMED (empty host, bad port, too long)
 */
int member_addr_split(const char *addr, uint16_t defport, char *host,
                      size_t hostlen, char *port, size_t portlen);

/** "alive", "suspect", "dead", "left". */
const char *member_state_name(enum cluster_member_state st);

/**
 * HMAC-SHA256(@p secret, @p nonce || @p name) into @p out
 * (CLUSTER_MAC_LEN bytes): the proof in Auth.
 * @return 0 or ERR_TLS
 */
int member_auth_mac(const char *secret, size_t secret_len, const uint8_t *nonce,
                    const char *name, uint8_t *out);

/* ---- shared state ---- */

enum link_state {
	LINK_CONNECTING, /* outbound connect in progress */
	LINK_HELLO,      /* waiting for the peer's Hello */
	LINK_AUTH,       /* waiting for the peer's Auth */
	LINK_UP,         /* handshake done */
};

/* One TCP connection to a peer. Freed only by the reap event (deferred
 * close), so callbacks may close it and keep using the pointer. */
struct link {
	struct cluster *c;
	struct bufferevent *bev;
	struct link *prev;     /* c->links */
	struct link *next;     /* c->links, or c->reap once closing */
	struct member *m;      /* the peer, once UP */
	struct member *target; /* the member dialed, or NULL */
	struct seed *seed;     /* the seed dialed, or NULL */
	enum link_state st;
	bool outbound;                    /* this node dialed it */
	bool pending;                     /* inbound, counted in c->n_pending */
	bool closing;                     /* closed, waiting for the reap */
	uint8_t nonce[CLUSTER_NONCE_LEN]; /* ours, sent in Hello */
	uint8_t peer_nonce[CLUSTER_NONCE_LEN]; /* from the peer's Hello */
	uint64_t peer_boot; /* from the peer's Hello: its process start */
	struct buf *rsnap;  /* retained snapshot left to send, or NULL */
	size_t rsnap_off;   /* bytes of rsnap sent */
	size_t rsnap_sent;  /* entries of rsnap sent */
	struct Mqd__Envelope *hello; /* the peer's Hello until the end of the
	                              * handshake (its gossip is applied only
	                              * once the peer is authenticated) */
	char peer[CLUSTER_ADDR_MAX + 8]; /* address for logs */
	struct link_resolve *resolve;    /* name lookup in progress, or NULL */
};

/* One asynchronous name lookup of a dial. It outlives its link when the
 * link closes first: the lookup is cancelled, and its callback (always
 * called, with EVUTIL_EAI_CANCEL then) frees it. */
struct link_resolve {
	struct link *l;                        /* NULL once the link is gone */
	struct evdns_getaddrinfo_request *req; /* NULL once answered */
	uint32_t pick; /* which of the addresses to dial */
};

struct seed {
	struct cluster *c;
	char *addr;           /* host:port from cfg->seeds */
	struct member *m;     /* the member it turned out to be, or NULL */
	struct link *dialing; /* connect or handshake in progress */
	struct event *ev;     /* dial timer */
	uint32_t backoff_ms;  /* next redial delay */
	uint32_t dials;       /* dial attempts: rotates over its addresses */
	bool self;            /* it is this node: never dialed again */
	struct seed *next;    /* c->join_seeds (cluster_join), else NULL */
};

struct member {
	struct cluster *c;
	uint32_t slot; /* index in c->members, node slot in c->routes */
	char *name;
	char *addr; /* host:port to dial, "" if unknown */
	uint64_t node_id;
	uint64_t inc; /* incarnation */
	enum cluster_member_state state;
	bool self;
	struct link *link;     /* the established link, or NULL */
	struct link *dialing;  /* outbound link not yet UP, or NULL */
	struct event *dial_ev; /* redial timer */
	struct event *dead_ev; /* SUSPECT -> DEAD timer */
	uint32_t backoff_ms;   /* next redial delay */
	uint64_t heard_ms;     /* last frame or relayed Ack from it */
	uint64_t suspected_ms; /* when it became SUSPECT */
	uint64_t dead_at_ms;   /* SUSPECT: when it is declared DEAD */
	uint32_t dials;        /* dial attempts: rotates over its addresses */
	uint64_t route_seq;    /* its last route seq applied */
	bool routes_synced;    /* a full snapshot arrived on this link */
	bool snap_open;        /* a split snapshot is arriving */
	bool probe_soon;       /* its link dropped: probe it next */
	size_t retained_snap;  /* retained snapshot entries arrived so far */
	uint32_t gossip_left;  /* piggy-backs left for its current state */
	uint32_t pub_gen;      /* cluster_publish: last publish it was in */
	struct fwd_peer *fwd;  /* its outbox and mark (fwd.c), or NULL */
	char *admin_addr;      /* from its Hello, or NULL */
	bool left_by_us;       /* marked LEFT by cluster_leave */
};

/* What this node keeps per peer node id for acknowledged forwarding
 * (fwd.c): the outbox of forwards it has not acked, the highest msg_id
 * taken from it, and the acks for it gathered this turn. Kept by node id,
 * so an outbox restored at start waits for a member that has not been
 * heard of yet. */
struct fwd_peer {
	struct fwd_peer *next;
	uint64_t node_id;
	struct member *m;       /* the member with node_id, once known */
	struct fwd_entry *head; /* outbox, msg_id order */
	struct fwd_entry **tail;
	struct fwd_entry *unsent; /* first entry not sent on the current link */
	size_t n;                 /* outbox entries */
	size_t bytes;             /* and their size */
	uint64_t mark;            /* highest msg_id taken from it */
	uint64_t *acks;           /* msg_ids to ack, this turn */
	size_t n_acks;
	size_t cap_acks;
};

/* A PingReq this node relays: Ping sent to target as seq_out, the Ack goes
 * back to from as seq_in. */
struct relay {
	uint64_t seq_out;
	uint64_t seq_in;
	struct member *from;
	struct member *target;
	uint64_t expires_ms;
};

struct probe {
	struct member *target; /* NULL: no probe running */
	uint64_t seq;          /* Ping seq */
	bool acked;            /* an Ack (direct or relayed) arrived */
};

struct cluster {
	struct event_base *base;
	struct cluster_hooks hooks;
	char *name; /* this node's name */
	uint64_t node_id;
	uint64_t boot; /* first incarnation: this process's start */
	char *secret;  /* NULL: none */
	size_t secret_len;
	uint32_t ping_ms;
	uint32_t dead_ms;
	uint16_t port; /* bound port */
	struct evconnlistener *lis;
	struct member **members; /* by slot; self is slot 0; never removed */
	size_t n_members;
	size_t cap_members;
	struct member *self;
	struct member **targets; /* cluster_publish scratch, cap_members */
	uint64_t *fwd_ids;       /* cluster_publish: node ids, cap_members */
	size_t n_targets;
	struct seed *seeds;
	size_t n_seeds;
	struct link *links;     /* open links */
	struct link *reap;      /* closed links waiting to be freed */
	struct evdns_base *dns; /* dials look names up here, never blocking */
	size_t n_pending;       /* inbound links in handshake */
	struct event *reap_ev;  /* frees c->reap */
	struct event *tick_ev;  /* every ping_ms: next probe */
	struct event *probe_ev; /* ping_ms / 2 into a probe: PingReq */
	struct rtab routes;     /* remote routes by member slot */
	struct rtab durable;    /* the routes persistent sessions hold: kept
	                         * when their node dies or leaves */
	struct rtab shared;     /* shared subscription groups, by key
	                         * "$share/{name}/{filter}" */
	struct rtab shared_durable; /* the groups persistent sessions are
	                             * members of: kept when their node dies
	                             * or leaves */
	uint32_t pub_gen;           /* cluster_publish count (member.pub_gen) */
	struct fwd_peer *fwd;       /* fwd.c, by node id */
	struct event *ack_ev;       /* fwd.c: sends the acks of this turn */
	struct cluster_stats fwd_stats; /* fwd.c counters (outbox: 0) */
	size_t outbox_max;              /* entries per peer */
	struct takeover *takeovers;     /* takeover.c: this node's, pending */
	uint64_t takeover_seq;          /* request ids */
	uint64_t route_seq;             /* own route changes so far */
	size_t own_routes; /* own filters (route_add - route_del) */
	uint64_t seq;      /* Ping seqs */
	uint64_t hlc;      /* last stamp issued or received (retained.c) */
	struct probe probe;
	size_t probe_next;  /* round-robin position */
	size_t gossip_next; /* piggy-back round-robin position */
	struct relay relays[CLUSTER_RELAYS_MAX];
	size_t n_relays;
	struct buf out;          /* frame scratch */
	uint64_t log_window_ms;  /* rate limit: window start */
	uint32_t log_lines;      /* rate limit: lines in the window */
	uint32_t log_dropped;    /* rate limit: lines suppressed */
	char *admin_addr;        /* this node's admin API, or NULL */
	struct seed *join_seeds; /* seeds added by cluster_join (list) */
	size_t n_join_seeds;
	bool left; /* cluster_leave, not joined since */
};

/* cluster.c */
uint64_t cluster_now_ms(void);
/** Arms timer @p ev to fire in @p ms. */
void cluster_timer_add(struct event *ev, uint64_t ms);
/** Formats and passes one line to hooks->log. */
void cluster_log(struct cluster *c, int level, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
/** cluster_log for lines a peer can trigger: at most 20 a second. */
void cluster_log_limited(struct cluster *c, int level, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
struct member *cluster_member_find(struct cluster *c, const char *name);
/** A new member (state ALIVE, incarnation 0); NULL when full or NOMEM. */
struct member *cluster_member_add(struct cluster *c, const char *name,
                                  uint64_t node_id, const char *addr);
/** Frees c->out's storage when a big frame grew it past what is kept. */
void cluster_out_trim(struct cluster *c);
/** Sends this node's route snapshot on @p l, which just came up. */
void cluster_send_routes(struct cluster *c, struct link *l);
/** Handles a frame received on an UP link. */
void cluster_on_frame(struct link *l, const struct Mqd__Envelope *env);
/** Records the admin API address a member's Hello gave (@p addr "" or
 * NULL: keeps what is known). */
void cluster_member_set_admin(struct member *m, const char *addr);
/** Frees what cluster_join and the admin addresses allocated (in
 * cluster_free, before the members). */
void cluster_admin_free(struct cluster *c);

/* link.c */
/** Creates the reap event and listens on @p bind : @p port (0 picks one,
 * stored in c->port). @return 0, ERR_IO (logged) or ERR_NOMEM */
int link_start(struct cluster *c, const char *bind, uint16_t port);
/** Starts a connection to @p addr for member @p m or seed @p s.
 * @return 0, or ERR_IO / ERR_MALFORMED / ERR_NOMEM (nothing started) */
int link_dial(struct cluster *c, const char *addr, struct member *m,
              struct seed *s);
/** Encodes @p env into c->out and queues it. @return 0 or ERR_* (the link
 * may be closed) */
int link_send(struct link *l, struct Mqd__Envelope *env);
/** Bytes queued on @p l's output, not yet written. */
size_t link_queued(struct link *l);
/** Queues an encoded frame. @return 0 or ERR_* (the link is closed) */
int link_send_raw(struct link *l, const uint8_t *p, size_t n);
/** Closes @p l (deferred free); logs "cluster link dropped" at @p level
 * with @p reason unless @p reason is NULL. */
void link_close(struct link *l, int level, const char *reason);
/** Schedules a dial of @p m in @p ms (the timer checks again that no
 * link exists and that @p m is ALIVE or SUSPECT). */
void link_dial_member_later(struct member *m, uint32_t ms);
/** Schedules a redial of @p m after its backoff, then doubles it. */
void link_dial_member_failed(struct member *m);
/** Schedules a dial of seed @p s in @p ms. */
void link_dial_seed_later(struct seed *s, uint32_t ms);
/** Best effort: writes what @p l has queued without blocking, then shuts
 * down its sending side (cluster_stop after queueing Leave). */
void link_flush_and_shutdown(struct link *l);
/** Frees every link now, without callbacks (stop, kill). */
void link_free_all(struct cluster *c);

/* swim.c */
/** Creates the probe timers and starts probing. @return 0 or ERR_NOMEM */
int swim_start(struct cluster *c);
/** A member whose link is now gone: probe it next and redial it. */
void swim_link_lost(struct cluster *c, struct member *m);
/** The peer's Hello once authenticated: the member it names (found,
 * created or re-identified), with its self-claim applied; NULL when the
 * member table is full or the name belongs to a live node with another id
 * (then *why says so). */
struct member *swim_hello(struct cluster *c, const struct Mqd__Hello *h,
                          const char **why);
/** Applies gossip. */
void swim_apply(struct cluster *c, struct Mqd__Member *const *v, size_t n);
void swim_on_ping(struct link *l, uint64_t seq);
void swim_on_ack(struct link *l, uint64_t seq, const char *target);
void swim_on_ping_req(struct link *l, uint64_t seq, const char *target);
void swim_on_leave(struct link *l, uint64_t inc);
/**
 * Sets a member's state and incarnation: logs, calls member_changed,
 * schedules the death timer, drops routes and the link of DEAD / LEFT
 * members, queues the update for piggy-backing, and when @p local (this
 * node decided it) sends it at once to every linked peer.
 */
void swim_set_state(struct cluster *c, struct member *m,
                    enum cluster_member_state st, uint64_t inc, bool local);
/** Fills up to @p max piggy-backed updates. @return how many */
size_t swim_piggyback(struct cluster *c, struct Mqd__Member *mv,
                      struct Mqd__Member **pv, size_t max);
/** Fills @p out from @p m (views of its strings). */
void swim_member_pb(const struct member *m, struct Mqd__Member *out);

/* retained.c */
/**
 * The HLC send rule as a pure function: the stamp after @p last at wall
 * time @p wall_ms, (wall_ms << 16) if that is above @p last, else
 * @p last + 1.
 */
uint64_t retained_hlc_next(uint64_t last, uint64_t wall_ms);
/** Unix time in ms, the HLC's physical part. */
uint64_t retained_wall_ms(void);
/** The HLC receive rule: c->hlc becomes at least @p stamp. */
void retained_hlc_observe(struct cluster *c, uint64_t stamp);
/** Starts sending this node's retained snapshot on @p l, which just came
 * up: copies the whole set, then sends parts as l's output drains. */
void retained_send_snapshot(struct cluster *c, struct link *l);
/** Sends parts of l's snapshot while its output holds less than one part
 * (link.c calls it when the output drains). */
void retained_snapshot_pump(struct link *l);
/** Frees what is left of l's snapshot (link_free). */
void retained_snapshot_free(struct link *l);
/** Handles a RetainedSync frame from l's member. */
void retained_on_sync(struct link *l, const struct Mqd__RetainedSync *s);

/* fwd.c */
/** The fwd_peer for @p node_id; with @p create a new one if none.
 * @return NULL when absent (or on no memory) */
struct fwd_peer *fwd_peer_get(struct cluster *c, uint64_t node_id, bool create);
/** Appends @p msg to m's outbox and sends what the link takes.
 * @return 0, ERR_LIMIT (outbox full: counted and logged) or ERR_NOMEM */
int fwd_queue(struct cluster *c, struct member *m,
              const struct cluster_msg *msg, void *cookie);
/** Sends the unsent part of p's outbox while the link takes it. */
void fwd_pump(struct cluster *c, struct fwd_peer *p);
/** m's link came up: its outbox is sent again from the first entry. */
void fwd_link_up(struct cluster *c, struct member *m);
/** A PubAck from l's member. */
void fwd_on_ack(struct link *l, const struct Mqd__PubAck *a);
/** A Publish with ack from l's member: true when it is a duplicate
 * (its msg_id at or below the mark), else the mark moves to it. */
bool fwd_on_publish(struct link *l, uint64_t origin, uint64_t msg_id);
/** Frees every outbox (stop). */
void fwd_free_all(struct cluster *c);

/* takeover.c */
void takeover_on_request(struct link *l, const struct Mqd__Takeover *tk);
void takeover_on_reply(struct link *l, const struct Mqd__TakeoverReply *r);
/** m's link is gone: it will not answer. */
void takeover_link_lost(struct cluster *c, struct member *m);
/** Frees the pending takeovers (stop), without callbacks. */
void takeover_free_all(struct cluster *c);

/* ---- test hooks ---- */

/** Frees @p c like a crash: sockets closed, no Leave, no callbacks. */
void cluster_test_kill(struct cluster *c);
/** The port the cluster listens on (cfg->port 0 picks one). */
uint16_t cluster_test_port(const struct cluster *c);

#endif
