/*
 * storage's private header: the binary record and key encodings shared by
 * store.c, batch.c and record.c, the writer's plan of a commit group, and
 * the test hooks. Records start with a version byte; keys are plain bytes
 * compared by memcmp (LMDB's default order).
 */
#ifndef STORAGE_STORAGE_INT_H
#define STORAGE_STORAGE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/proto.h"
#include "storage/storage.h"

/* Version of the records written. Decoders read every version from 1 to
 * REC_VERSION; new fields are appended, so older records read as a prefix
 * with the new fields 0.
 *   2: session records end with will_at and will_expiry, in-flight records
 *      with seq; the other records are as in version 1.
 *   3: queue records end with groups (u32 length, bytes). */
#define REC_VERSION 3

/* Longest key written: LMDB's default limit is 511 bytes. Longer keys keep
 * their first KEY_KEEP bytes and end with a 64-bit hash of the whole key. */
#define KEY_MAX  480
#define KEY_KEEP (KEY_MAX - 8)

/* Queue and in-flight records hold the referenced msg id at this offset
 * (after the version byte); payload records hold their refcount there. */
#define REC_REF_OFF 1

/** 0, or ERR_BAD_CLIENT_ID when empty, too long or holding NUL. */
int key_client_check(struct mqtt_bytes cid);
/** Appends a key, shortened as described at KEY_MAX. */
void key_put_fit(struct buf *b, const uint8_t *p, size_t n);
/** client id, NUL: the prefix of a client's subs, queue and in-flight. */
void key_put_client(struct buf *b, struct mqtt_bytes cid);

/* Big-endian fields, inline (unlike buf_put_u32 and buf_put_str): the
 * batch adders write several for every op, the writer reads one for every
 * op and every reference. */
static inline void
rec_put_u32(struct buf *b, uint32_t v)
{
	uint8_t *p;

	if (buf_reserve(b, 4) != 0)
		return;
	p = b->data + b->len;
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
	b->len += 4;
}

static inline void
key_put_u64(struct buf *b, uint64_t v)
{
	rec_put_u32(b, (uint32_t)(v >> 32));
	rec_put_u32(b, (uint32_t)v);
}

static inline void
rec_put_u64(struct buf *b, uint64_t v)
{
	key_put_u64(b, v);
}

/* Two-byte length, then the bytes; n > 65535 fails the buf. */
static inline void
rec_put_str(struct buf *b, const void *p, size_t n)
{
	if (n > UINT16_MAX) {
		b->failed = true;
		return;
	}
	buf_put_u16(b, (uint16_t)n);
	buf_put_bytes(b, p, n);
}

static inline uint64_t
key_get_u64(const uint8_t *p)
{
	return (uint64_t)p[0] << 56 | (uint64_t)p[1] << 48 |
	       (uint64_t)p[2] << 40 | (uint64_t)p[3] << 32 |
	       (uint64_t)p[4] << 24 | (uint64_t)p[5] << 16 |
	       (uint64_t)p[6] << 8 | p[7];
}

int rec_u64(struct rd *r, uint64_t *v);

/* Encoders append one record to b (check buf_failed). Decoders return views
 * into p in *out, and 0 or ERR_MALFORMED. */
void rec_retained_enc(struct buf *b, const struct store_retained *r);
int rec_retained_dec(const uint8_t *p, size_t n, struct store_retained *out);
void rec_session_enc(struct buf *b, const struct store_session *ss);
int rec_session_dec(const uint8_t *p, size_t n, struct store_session *out);
void rec_sub_enc(struct buf *b, const struct store_sub *sub);
int rec_sub_dec(const uint8_t *p, size_t n, struct store_sub *out);
void rec_payload_enc(struct buf *b, const struct store_payload *pl,
                     uint32_t refs);
int rec_payload_dec(const uint8_t *p, size_t n, struct store_payload *out);
void rec_queue_enc(struct buf *b, const struct store_queue_entry *q);
int rec_queue_dec(const uint8_t *p, size_t n, struct store_queue_entry *out);
void rec_inflight_enc(struct buf *b, const struct store_inflight *f);
int rec_inflight_dec(const uint8_t *p, size_t n, struct store_inflight *out);

/* Ops of a batch, encoded back to back in store_batch.ops as
 * u8 op, u8 db, u64 ref, u16 key length, key, u32 value length, value.
 * The op byte holds an enum batch_op and, once the writer has planned its
 * commit group, the OP_F_* flags. */
enum batch_op {
	OP_PUT = 1,     /* plain put into db */
	OP_DEL,         /* plain delete from db, absent is fine */
	OP_SESSION_DEL, /* session and its subs, queue and in-flight */
	OP_PAYLOAD_PUT, /* payload record unless present; ref = msg id */
	OP_REF_PUT,     /* queue/in-flight put; ref = msg id referenced */
	OP_REF_DEL,     /* queue/in-flight delete, dropping its reference */
};

/* OP_F_HERE: an OP_REF_PUT whose payload an OP_PAYLOAD_PUT earlier in the
 * same batch puts. */
#define OP_MASK   0x3f /* the enum batch_op part of the op byte */
#define OP_F_SKIP 0x80 /* cancelled within its commit group: not applied */
#define OP_F_HERE 0x40 /* its payload is put earlier in its batch */

struct store_batch {
	struct buf ops;           /* encoded ops */
	size_t n;                 /* ops in ops */
	int err;                  /* sticky: first op-adding failure */
	int result;               /* set by the writer: the completion's err */
	uint32_t waiters;         /* store_batch_set_waiters */
	store_done_fn done;       /* completion, may be NULL */
	void *arg;                /* for done */
	struct store_batch *next; /* pending or completed list */
};

/* One decoded op, views into store_batch.ops. */
struct batch_rec {
	uint8_t op;    /* enum batch_op */
	uint8_t flags; /* OP_F_* */
	uint8_t db;
	uint64_t ref;
	const uint8_t *key;
	size_t klen;
	const uint8_t *val;
	size_t vlen;
};

/** Next op from r: 0, 1 at the end, or ERR_MALFORMED. */
int batch_next(struct rd *r, struct batch_rec *op);

/*
 * Puts deleted again within a commit group (batch.c). Before the writer
 * applies a group, group_plan walks its ops and flags OP_F_SKIP on the
 * runs it may drop: on one queue or in-flight key, OP_REF_PUTs (at most
 * PLAN_CHAIN_OPS - 1, all referencing the same payload) then the
 * OP_REF_DEL that ends them, with no OP_SESSION_DEL in between, where the
 * key is known to be absent when the run starts: the run begins at the
 * key's first op in the group and the key is not stored, or right after
 * another run that is skipped. A run is kept whole if its payload is
 * referenced, anywhere in the group, by an OP_REF_PUT whose batch does not
 * put that payload before it: that reference relies on the payload being
 * stored, which the skipped references would have ensured. group_plan also
 * sets OP_F_HERE on each OP_REF_PUT whose batch puts its payload before
 * it. Skipped ops change no refcount; a payload the remaining ops leave
 * without references is not written (refs_apply in store.c).
 */
#define PLAN_CHAIN_OPS 4

struct plan_ent;   /* a key or payload id the group touches (batch.c) */
struct plan_chain; /* a run of puts and its delete (batch.c) */

/* The writer's planning state, kept between groups to reuse its memory. */
struct group_plan {
	uint32_t *slots;           /* hash table: ents index + 1, 0 = empty */
	size_t n_slots;            /* allocated; a power of 2 */
	size_t mask;               /* slots used by this group - 1 */
	struct plan_ent *ents;     /* the keys and payload ids */
	size_t n_ents;             /* used */
	size_t cap_ents;           /* allocated */
	struct plan_chain *chains; /* the runs, in the order they start */
	size_t n_chains;           /* used */
	size_t cap_chains;         /* allocated */
	uint32_t epoch;            /* OP_SESSION_DELs seen so far */
	uint64_t last_id;          /* the payload entry last looked up (a */
	size_t last_pay;           /* fan-out references one many times) */
};

/** Does key exist in db (before the group)? 0 or an ERR_*. */
typedef int (*plan_exists_fn)(void *ctx, uint8_t db, const uint8_t *key,
                              size_t klen, bool *exists);

/**
 * Plans the group starting at group (linked by next): sets the OP_F_*
 * flags on its ops. Writer thread only, before any op of the group is
 * applied, so that exists sees the database as it was before the group.
 * @return the number of ops flagged OP_F_SKIP, or ERR_NOMEM (then no op
 *   is flagged)
 */
int64_t group_plan(struct group_plan *pl, struct store_batch *group,
                   plan_exists_fn exists, void *ctx);

/** Gives back the plan's memory if it grew large (between groups). */
void group_plan_trim(struct group_plan *pl);
void group_plan_fini(struct group_plan *pl);

/**
 * Test hook: while held, the writer takes no new batches, so batches
 * submitted meanwhile pile up and share one transaction on release.
 */
void store_test_hold(struct store *s, bool hold);

/** Test hook: is the writer holding pending batches back for others to
 * join them (writer_gather in store.c)? */
bool store_test_gathering(struct store *s);

/**
 * Test hook: how many times the writer has written a payload record, each
 * write setting its refcount (at most once per payload per batch; deletes
 * are not counted). Read it after the completions of the batches it
 * counts have run.
 */
uint64_t store_test_ref_writes(const struct store *s);

#endif
