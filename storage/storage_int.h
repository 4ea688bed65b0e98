/*
 * storage's private header: the binary record and key encodings shared by
 * store.c and record.c, and the test hooks. Records start with a version
 * byte; keys are plain bytes compared by memcmp (LMDB's default order).
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
 *      with seq; the other records are as in version 1. */
#define REC_VERSION 2

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
void key_put_u64(struct buf *b, uint64_t v);
uint64_t key_get_u64(const uint8_t *p);

void rec_put_u64(struct buf *b, uint64_t v);
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
 * u8 op, u8 db, u64 ref, u16 key length, key, u32 value length, value. */
enum batch_op {
	OP_PUT = 1,     /* plain put into db */
	OP_DEL,         /* plain delete from db, absent is fine */
	OP_SESSION_DEL, /* session and its subs, queue and in-flight */
	OP_PAYLOAD_PUT, /* payload record unless present; ref = msg id */
	OP_REF_PUT,     /* queue/in-flight put; ref = msg id referenced */
	OP_REF_DEL,     /* queue/in-flight delete, dropping its reference */
};

struct store_batch {
	struct buf ops;           /* encoded ops */
	size_t n;                 /* ops in ops */
	int err;                  /* sticky: first op-adding failure */
	int result;               /* set by the writer: the completion's err */
	store_done_fn done;       /* completion, may be NULL */
	void *arg;                /* for done */
	struct store_batch *next; /* pending or completed list */
};

/* One decoded op, views into store_batch.ops. */
struct batch_rec {
	uint8_t op;
	uint8_t db;
	uint64_t ref;
	const uint8_t *key;
	size_t klen;
	const uint8_t *val;
	size_t vlen;
};

/** Next op from r: 0, 1 at the end, or ERR_MALFORMED. */
int batch_next(struct rd *r, struct batch_rec *op);

/**
 * Test hook: while held, the writer takes no new batches, so batches
 * submitted meanwhile pile up and share one transaction on release.
 */
void store_test_hold(struct store *s, bool hold);

/**
 * Test hook: how many times the writer has rewritten a payload record to
 * change its refcount (at most once per payload per batch). Read it after
 * the completions of the batches it counts have run.
 */
uint64_t store_test_ref_writes(const struct store *s);

#endif
