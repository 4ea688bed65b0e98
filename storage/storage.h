/*
 * storage's public header: mqd's persistent state in LMDB (retained messages,
 * sessions, subscriptions, per-session queues and in-flight messages, shared
 * payloads, node metadata) behind batches committed by one writer thread.
 * No LMDB type crosses this header; errors are negative ERR_* (proto/err.h).
 */
#ifndef STORAGE_STORAGE_H
#define STORAGE_STORAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/proto.h"

/** Schema version this code writes; a newer one on disk is refused. */
#define STORE_SCHEMA_VERSION 3
/** Longest client id storage accepts (bytes). */
#define STORE_CLIENT_ID_MAX 255

/** What a completed batch promises (DESIGN.md, Durability contract). */
enum store_durability {
	STORE_DURABILITY_SYNC = 0, /* committed and fsync'd */
	STORE_DURABILITY_RELAXED,  /* committed; fsync every sync_interval_ms */
	STORE_DURABILITY_NONE,     /* memory only: nothing is written */
};

struct store_config {
	const char *data_dir;  /* created if missing (one level); borrowed */
	const char *node_name; /* stored in meta; NULL keeps the stored one */
	enum store_durability durability;
	uint32_t sync_interval_ms; /* relaxed: fsync period, 0 means 1000 */
	uint32_t commit_delay_ms;  /* the longest a batch waits for others
	                            * to share its commit, when commits
	                            * release acks for several; 0: never
	                            * (store_batch_set_waiters) */
	size_t map_size;           /* initial map size, 0 means 1 MiB */
	size_t max_size;           /* the map never grows past this; 0 means
	                            * map_size (no growth). An existing map
	                            * larger than this is kept, not grown */
};

/** The tables. */
enum store_db {
	STORE_DB_META = 0,
	STORE_DB_RETAINED,
	STORE_DB_SESSIONS,
	STORE_DB_SUBS,
	STORE_DB_QUEUE,
	STORE_DB_PAYLOADS,
	STORE_DB_INFLIGHT,
	STORE_DB_COUNT,
};

/*
 * Records. Byte fields are views (struct mqtt_bytes): when passed to a
 * store_batch_* call they are borrowed and copied before it returns; when
 * handed to a load callback they point into a scratch copy that is valid only
 * until the callback returns (copy what you keep). Times are wall-clock
 * milliseconds since the epoch (they must survive a restart); 0 means never.
 */

/** A retained message, keyed by topic. */
struct store_retained {
	struct mqtt_bytes topic;
	struct mqtt_bytes payload;
	struct mqtt_bytes props; /* v5 properties to forward */
	uint8_t qos;
	uint64_t expires_at; /* message expiry, wall ms, 0 = never */
	uint64_t stamp; /* hybrid logical clock for cluster LWW, 0 = none */
};

/** A persistent session, keyed by client id. */
struct store_session {
	struct mqtt_bytes client_id;
	uint8_t version;          /* protocol level: 3, 4 or 5 */
	uint32_t expiry_interval; /* session expiry interval, seconds */
	uint64_t expires_at;      /* wall ms it expires if not resumed; 0 while
	                           * connected or never */
	uint16_t next_packet_id;  /* next outgoing packet id to use */
	bool has_will;            /* the will fields below are meaningful */
	uint8_t will_qos;
	bool will_retain;
	uint32_t will_delay;  /* will delay interval, seconds */
	uint64_t will_at;     /* wall ms the delayed will is due (offline
	                       * session), 0 = not pending */
	uint32_t will_expiry; /* will Message Expiry Interval, seconds;
	                       * 0 = none */
	struct mqtt_bytes will_topic;
	struct mqtt_bytes will_payload;
	struct mqtt_bytes will_props;
};

/** A subscription, keyed by (client id, filter). */
struct store_sub {
	struct mqtt_bytes client_id;
	struct mqtt_bytes filter; /* as subscribed, $share/ prefix included */
	uint8_t options;          /* SUBSCRIBE options byte: QoS, NL, RAP, RH */
	uint32_t sub_id;          /* subscription identifier, 0 = none */
};

/**
 * A message body, keyed by its node-unique id, stored once however many
 * queue and in-flight entries reference it. Storage counts the references:
 * it is deleted when the last entry referencing it goes.
 */
struct store_payload {
	uint64_t msg_id;
	struct mqtt_bytes topic;
	struct mqtt_bytes payload;
	struct mqtt_bytes props;
	uint8_t qos;         /* as published */
	bool retain;         /* as published */
	uint64_t expires_at; /* message expiry, wall ms, 0 = never */
	uint32_t refs; /* on load: entries referencing it; ignored on put */
};

/** The most subscription identifiers one queued delivery carries. */
#define STORE_SUB_IDS_MAX 16

/** A queued delivery, keyed by (client id, seq); loads in seq order. */
struct store_queue_entry {
	struct mqtt_bytes client_id;
	uint64_t seq;    /* per-session order, caller assigned */
	uint64_t msg_id; /* the payload record it references */
	uint8_t qos;     /* granted QoS of this delivery */
	bool retain;     /* retain flag of this delivery */
	uint8_t n_sub_ids;
	uint32_t sub_ids[STORE_SUB_IDS_MAX]; /* first n_sub_ids are used */
	struct mqtt_bytes groups; /* opaque to storage: a cluster outbox
	                           * entry's shared groups; empty otherwise */
};

enum store_inflight_dir {
	STORE_INFLIGHT_OUT = 0, /* we sent a QoS 1/2 PUBLISH */
	STORE_INFLIGHT_IN = 1,  /* we received a QoS 2 PUBLISH */
};

enum store_inflight_state {
	STORE_INFLIGHT_SENT = 0,   /* OUT: awaiting PUBACK / PUBREC */
	STORE_INFLIGHT_PUBREC = 1, /* OUT: PUBREC received, PUBREL sent */
	STORE_INFLIGHT_PUBREL = 2, /* IN: PUBREC sent, awaiting PUBREL */
};

/** An in-flight packet id, keyed by (client id, direction, packet id). */
struct store_inflight {
	struct mqtt_bytes client_id;
	uint8_t dir; /* enum store_inflight_dir */
	uint16_t packet_id;
	uint8_t state; /* enum store_inflight_state */
	uint8_t qos;
	bool retain;
	uint64_t msg_id; /* payload referenced (OUT), 0 = none */
	uint64_t seq;    /* OUT: send order within the session (the queue
	                  * seq it had), so a restart re-sends in order */
};

struct store;
struct store_batch;

/**
 * Opens (creating if needed) the store in cfg->data_dir, checks the schema
 * version and starts the writer thread. Under STORE_DURABILITY_NONE nothing
 * on disk is touched.
 * @param cfg borrowed for the call only
 * @param out receives the store on success
 * @param why on failure, a static reason naming the file inside the data dir
 *   at fault (the caller logs it with cfg->data_dir); may be NULL
 * @return 0, or ERR_IO (data dir not creatable, not a directory or unreadable;
 * data file damaged or not LMDB), ERR_WRONG_STATE (schema version newer than
 *   STORE_SCHEMA_VERSION), ERR_LIMIT (map_size too small to create the
 *   tables), ERR_NOMEM
 */
int store_open(const struct store_config *cfg, struct store **out,
               const char **why);

/**
 * Commits every batch already submitted, stops and joins the writer, runs
 * the completions not yet polled (on the calling thread) and closes the
 * environment. store_close(NULL) is a no-op. Loop thread only.
 */
void store_close(struct store *s);

/** Node id, random, created with the store (0 under durability none). */
uint64_t store_node_id(const struct store *s);

/**
 * Node name as stored (the configured one once opened with one).
 * @return a view valid until store_close
 */
struct mqtt_bytes store_node_name(const struct store *s);

/**
 * Schema version found on disk at open (STORE_SCHEMA_VERSION after a create
 * or migration).
 */
uint32_t store_schema_version(const struct store *s);

/* --- Write path --------------------------------------------------------- */

/**
 * New empty batch. Ops are applied in the order added, atomically: either
 * the whole batch commits or none of it does. (A put that a later batch
 * of the same commit group deletes is not written at all: see
 * store_submit.)
 * @return NULL on out of memory
 */
struct store_batch *store_batch_new(void);

/** Frees a batch that was never submitted; store_batch_free(NULL) no-op. */
void store_batch_free(struct store_batch *b);

/**
 * Tells the writer that @p n acknowledgements to clients wait for this
 * batch's commit: while commits release acks for several (the last one
 * at least 2), the writer lets batches gather for up to commit_delay_ms
 * before committing them together (store_config).
 */
void store_batch_set_waiters(struct store_batch *b, uint32_t n);

/** Number of ops in the batch. */
size_t store_batch_count(const struct store_batch *b);

/*
 * The op adders copy the record into the batch. Errors are sticky: after the
 * first failure the batch refuses further ops and store_submit returns that
 * error. Each returns 0, ERR_NOMEM, ERR_TOO_LARGE (a field over its wire
 * limit, or over STORE_SUB_IDS_MAX subscription ids), ERR_NOTFOUND (msg_id
 * 0 where a payload is required) or ERR_BAD_CLIENT_ID (empty, over
 * STORE_CLIENT_ID_MAX or holding NUL). The batch is applied in a transaction
 * of the writer thread; a batch is built by one thread at a time.
 */
int store_batch_retained_put(struct store_batch *b,
                             const struct store_retained *r);
int store_batch_retained_del(struct store_batch *b, struct mqtt_bytes topic);
int store_batch_session_put(struct store_batch *b,
                            const struct store_session *ss);
/** Deletes the session and all its subscriptions, queue and in-flight
 * entries (dropping their payload references). */
int store_batch_session_del(struct store_batch *b, struct mqtt_bytes client_id);
int store_batch_sub_put(struct store_batch *b, const struct store_sub *sub);
int store_batch_sub_del(struct store_batch *b, struct mqtt_bytes client_id,
                        struct mqtt_bytes filter);
/**
 * Adds a payload record unless one with that msg_id exists. It must gain a
 * reference (queue or in-flight put) in the same batch, or it is dropped at
 * the end of the batch.
 */
int store_batch_payload_put(struct store_batch *b,
                            const struct store_payload *p);
/** Puts a queue entry; its msg_id must name a payload stored earlier or in
 * this batch (else the batch fails with ERR_NOTFOUND). Replacing an entry
 * moves the reference. */
int store_batch_queue_put(struct store_batch *b,
                          const struct store_queue_entry *q);
/** Deletes a queue entry (absent: no error) and drops its reference. */
int store_batch_queue_del(struct store_batch *b, struct mqtt_bytes client_id,
                          uint64_t seq);
/** Like queue_put; msg_id 0 references no payload. */
int store_batch_inflight_put(struct store_batch *b,
                             const struct store_inflight *f);
int store_batch_inflight_del(struct store_batch *b, struct mqtt_bytes client_id,
                             uint8_t dir, uint16_t packet_id);

/**
 * Records that the highest forwarded message id this node has taken from
 * cluster node @p origin is @p msg_id (its duplicate check survives a
 * restart). Replaces the one recorded before.
 */
int store_batch_mark_put(struct store_batch *b, uint64_t origin,
                         uint64_t msg_id);

/**
 * Completion of a submitted batch, run by store_poll_completions (or
 * store_close) on the thread that calls it.
 * @param arg as given to store_submit
 * @param err 0 once the batch is durable per the configured durability;
 *   ERR_LIMIT (the map is at max_size: nothing of the batch was written),
 *   ERR_NOTFOUND (a referenced payload is missing), ERR_MALFORMED (a stored
 *   record is damaged), ERR_NOMEM or ERR_IO
 */
typedef void (*store_done_fn)(void *arg, int err);

/**
 * Hands a batch to the writer thread, which commits it together with the
 * other pending batches (its commit group) in one transaction. Never
 * blocks on disk. Under durability none the completion is queued at once
 * with err 0.
 *
 * A queue or in-flight entry that did not exist before the commit group,
 * is put and then deleted within it (by this batch or a later one of the
 * group) is not written, nor deleted: the final state is the same, without
 * the writes (store_stats.cancelled counts the ops skipped). Payload
 * refcounts stay exact, and a payload put whose entries are all skipped
 * is not written either. If the batch holding the delete fails, the
 * cancelled put is not written either: the caller's intent, the delete,
 * wins. Completions and their order are unchanged (writing less can only
 * spare a batch ERR_LIMIT).
 * @param b takes ownership (even on failure)
 * @param done may be NULL
 * @return 0 (done will run exactly once), or the batch's sticky error or
 *   ERR_WRONG_STATE (store closing), in which case done never runs
 */
int store_submit(struct store *s, struct store_batch *b, store_done_fn done,
                 void *arg);

/**
 * A file descriptor that becomes readable when completions are waiting: the
 * loop watches it (EV_READ | EV_PERSIST) and calls store_poll_completions.
 * Owned by the store; valid until store_close.
 */
int store_notify_fd(const struct store *s);

/**
 * Runs the completions waiting, in submission order, on the calling thread
 * (loop thread only), and drains the notify fd.
 * @return the number of completions run
 */
size_t store_poll_completions(struct store *s);

/* --- Reads (start-up load, admin queries) --------------------------------- */

/*
 * Each load runs one read transaction, which never blocks the writer, and
 * calls fn once per record with a decoded copy (see Records above). A non-zero
 * return from fn stops the walk and is returned. client_id with len 0 walks
 * every client's entries; otherwise only that client's, in key order (queue:
 * by seq). Loads return 0, fn's value, ERR_MALFORMED (a record could not be
 * decoded), ERR_NOMEM or ERR_IO. Do not wait on a batch completion inside fn.
 * Under durability none they find nothing.
 */
typedef int (*store_retained_fn)(void *arg, const struct store_retained *r);
typedef int (*store_session_fn)(void *arg, const struct store_session *ss);
typedef int (*store_sub_fn)(void *arg, const struct store_sub *sub);
typedef int (*store_payload_fn)(void *arg, const struct store_payload *p);
typedef int (*store_queue_fn)(void *arg, const struct store_queue_entry *q);
typedef int (*store_inflight_fn)(void *arg, const struct store_inflight *f);
/** A mark (store_batch_mark_put). */
struct store_mark {
	uint64_t origin;
	uint64_t msg_id;
};
typedef int (*store_mark_fn)(void *arg, const struct store_mark *m);

int store_load_retained(struct store *s, store_retained_fn fn, void *arg);
int store_load_sessions(struct store *s, store_session_fn fn, void *arg);
int store_load_subs(struct store *s, struct mqtt_bytes client_id,
                    store_sub_fn fn, void *arg);
int store_load_payloads(struct store *s, store_payload_fn fn, void *arg);
int store_load_queue(struct store *s, struct mqtt_bytes client_id,
                     store_queue_fn fn, void *arg);
int store_load_inflight(struct store *s, struct mqtt_bytes client_id,
                        store_inflight_fn fn, void *arg);
int store_load_marks(struct store *s, store_mark_fn fn, void *arg);

/**
 * Number of records in one table.
 * @return 0 or ERR_IO
 */
int store_count(struct store *s, enum store_db db, size_t *n);

/** Buckets of the commit latency histogram, the last one unbounded. */
#define STORE_COMMIT_BUCKETS 14

struct store_stats {
	uint64_t batches;      /* batches completed */
	uint64_t txns;         /* write transactions committed */
	uint64_t batch_errors; /* batches completed with an error */
	uint64_t limit_errors; /* of which ERR_LIMIT (map at max_size) */
	uint64_t grows;        /* times the map grew */
	uint64_t syncs;        /* explicit fsyncs (relaxed durability) */
	uint64_t cancelled;    /* queue/in-flight puts and deletes not
	                        * written: deleted again in their commit
	                        * group (see store_submit) */
	size_t map_size;       /* current map size, bytes */
	/* commit latency: one sample per group the writer commits, from
	 * its first transaction's begin to its last commit (fsync
	 * included under durability sync) */
	uint64_t commits;                           /* samples */
	uint64_t commit_us_sum;                     /* their sum, us */
	uint64_t commit_hist[STORE_COMMIT_BUCKETS]; /* samples by bucket:
	                                             * store_commit_bound_us */
};

/** Copies the writer's counters; any thread. */
void store_stats_get(struct store *s, struct store_stats *st);

/**
 * Upper bound, in microseconds, of commit latency bucket @p i: a sample
 * of d us falls in the first bucket whose bound is >= d. The last bucket
 * (i >= STORE_COMMIT_BUCKETS - 1) is unbounded: UINT64_MAX.
 */
uint64_t store_commit_bound_us(size_t i);

#endif
