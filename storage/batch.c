/*
 * Write batches: the op adders copy and encode each record into one buffer
 * owned by the batch, so the caller's views may die as soon as an adder
 * returns. The writer thread decodes them with batch_next.
 */
#include "storage/storage_int.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct store_batch *
store_batch_new(void)
{
	struct store_batch *b = calloc(1, sizeof(*b));

	if (b != NULL)
		buf_init(&b->ops);
	return b;
}

void
store_batch_free(struct store_batch *b)
{
	if (b == NULL)
		return;
	buf_fini(&b->ops);
	free(b);
}

size_t
store_batch_count(const struct store_batch *b)
{
	return b->n;
}

static int
check_str(struct mqtt_bytes v)
{
	return v.len > UINT16_MAX ? ERR_TOO_LARGE : 0;
}

static int
check_blob(struct mqtt_bytes v)
{
	return v.len > UINT32_MAX - 64 ? ERR_TOO_LARGE : 0;
}

/* Writes an op header and key; returns where the value length goes. */
static size_t
op_begin(struct store_batch *b, uint8_t op, uint8_t db, uint64_t ref,
         const uint8_t *key, size_t klen)
{
	struct buf *o = &b->ops;
	size_t at, off;

	buf_put_u8(o, op);
	buf_put_u8(o, db);
	key_put_u64(o, ref);
	at = o->len;
	buf_put_u16(o, 0);
	key_put_fit(o, key, klen);
	if (!buf_failed(o)) {
		o->data[at] = (uint8_t)((o->len - at - 2) >> 8);
		o->data[at + 1] = (uint8_t)(o->len - at - 2);
	}
	off = o->len;
	buf_put_u32(o, 0);
	return off;
}

/* Patches the value length in; 0 or the (now sticky) error. */
static int
op_end(struct store_batch *b, size_t off)
{
	struct buf *o = &b->ops;
	size_t vlen;

	if (buf_failed(o))
		return b->err = ERR_NOMEM;
	vlen = o->len - off - 4;
	if (vlen > UINT32_MAX)
		return b->err = ERR_TOO_LARGE;
	o->data[off] = (uint8_t)(vlen >> 24);
	o->data[off + 1] = (uint8_t)(vlen >> 16);
	o->data[off + 2] = (uint8_t)(vlen >> 8);
	o->data[off + 3] = (uint8_t)vlen;
	b->n++;
	return 0;
}

/* Fails the batch with rc when rc is an error; returns rc. */
static int
fail(struct store_batch *b, int rc)
{
	if (rc != 0 && b->err == 0)
		b->err = rc;
	return rc;
}

int
store_batch_retained_put(struct store_batch *b, const struct store_retained *r)
{
	size_t off;
	int rc;

	if (b->err != 0)
		return b->err;
	rc = check_str(r->topic);
	rc = rc ? rc : check_blob(r->payload);
	rc = rc ? rc : check_blob(r->props);
	if (fail(b, rc) != 0)
		return rc;
	off = op_begin(b, OP_PUT, STORE_DB_RETAINED, 0, r->topic.p,
	               r->topic.len);
	rec_retained_enc(&b->ops, r);
	return op_end(b, off);
}

int
store_batch_retained_del(struct store_batch *b, struct mqtt_bytes topic)
{
	size_t off;

	if (b->err != 0)
		return b->err;
	if (fail(b, check_str(topic)) != 0)
		return b->err;
	off = op_begin(b, OP_DEL, STORE_DB_RETAINED, 0, topic.p, topic.len);
	return op_end(b, off);
}

int
store_batch_session_put(struct store_batch *b, const struct store_session *ss)
{
	size_t off;
	int rc;

	if (b->err != 0)
		return b->err;
	rc = key_client_check(ss->client_id);
	rc = rc ? rc : check_str(ss->will_topic);
	rc = rc ? rc : check_blob(ss->will_payload);
	rc = rc ? rc : check_blob(ss->will_props);
	if (fail(b, rc) != 0)
		return rc;
	off = op_begin(b, OP_PUT, STORE_DB_SESSIONS, 0, ss->client_id.p,
	               ss->client_id.len);
	rec_session_enc(&b->ops, ss);
	return op_end(b, off);
}

int
store_batch_session_del(struct store_batch *b, struct mqtt_bytes client_id)
{
	size_t off;

	if (b->err != 0)
		return b->err;
	if (fail(b, key_client_check(client_id)) != 0)
		return b->err;
	off = op_begin(b, OP_SESSION_DEL, STORE_DB_SESSIONS, 0, client_id.p,
	               client_id.len);
	return op_end(b, off);
}

/* client id, NUL, filter: built whole, then fitted by op_begin. */
static size_t
sub_begin(struct store_batch *b, uint8_t op, struct mqtt_bytes cid,
          struct mqtt_bytes filter)
{
	struct buf k;
	size_t off;

	buf_init(&k);
	key_put_client(&k, cid);
	buf_put_bytes(&k, filter.p, filter.len);
	if (buf_failed(&k))
		b->ops.failed = true;
	off = op_begin(b, op, STORE_DB_SUBS, 0, k.data, k.len);
	buf_fini(&k);
	return off;
}

int
store_batch_sub_put(struct store_batch *b, const struct store_sub *sub)
{
	size_t off;
	int rc;

	if (b->err != 0)
		return b->err;
	rc = key_client_check(sub->client_id);
	rc = rc ? rc : check_str(sub->filter);
	if (fail(b, rc) != 0)
		return rc;
	off = sub_begin(b, OP_PUT, sub->client_id, sub->filter);
	rec_sub_enc(&b->ops, sub);
	return op_end(b, off);
}

int
store_batch_sub_del(struct store_batch *b, struct mqtt_bytes client_id,
                    struct mqtt_bytes filter)
{
	size_t off;
	int rc;

	if (b->err != 0)
		return b->err;
	rc = key_client_check(client_id);
	rc = rc ? rc : check_str(filter);
	if (fail(b, rc) != 0)
		return rc;
	off = sub_begin(b, OP_DEL, client_id, filter);
	return op_end(b, off);
}

int
store_batch_payload_put(struct store_batch *b, const struct store_payload *p)
{
	uint8_t key[8];
	struct buf k;
	size_t off;
	int rc;

	if (b->err != 0)
		return b->err;
	rc = check_str(p->topic);
	rc = rc ? rc : check_blob(p->payload);
	rc = rc ? rc : check_blob(p->props);
	rc = rc ? rc : (p->msg_id == 0 ? ERR_NOTFOUND : 0);
	if (fail(b, rc) != 0)
		return rc;
	buf_init_fixed(&k, key, sizeof(key));
	key_put_u64(&k, p->msg_id);
	off = op_begin(b, OP_PAYLOAD_PUT, STORE_DB_PAYLOADS, p->msg_id, key,
	               sizeof(key));
	rec_payload_enc(&b->ops, p, 0);
	return op_end(b, off);
}

/* client id, NUL, then the fixed-size tail (seq, or dir and packet id). */
static size_t
client_key(uint8_t *key, struct mqtt_bytes cid, const uint8_t *tail, size_t n)
{
	memcpy(key, cid.p, cid.len);
	key[cid.len] = 0;
	memcpy(key + cid.len + 1, tail, n);
	return cid.len + 1 + n;
}

static size_t
queue_key(uint8_t *key, struct mqtt_bytes cid, uint64_t seq)
{
	uint8_t tail[8];
	struct buf t;

	buf_init_fixed(&t, tail, sizeof(tail));
	key_put_u64(&t, seq);
	return client_key(key, cid, tail, sizeof(tail));
}

static size_t
inflight_key(uint8_t *key, struct mqtt_bytes cid, uint8_t dir, uint16_t pid)
{
	uint8_t tail[3] = { dir, (uint8_t)(pid >> 8), (uint8_t)pid };

	return client_key(key, cid, tail, sizeof(tail));
}

int
store_batch_queue_put(struct store_batch *b, const struct store_queue_entry *q)
{
	uint8_t key[STORE_CLIENT_ID_MAX + 16];
	size_t off, klen;
	int rc;

	if (b->err != 0)
		return b->err;
	rc = key_client_check(q->client_id);
	if (rc == 0 && q->n_sub_ids > STORE_SUB_IDS_MAX)
		rc = ERR_TOO_LARGE;
	if (rc == 0 && q->msg_id == 0)
		rc = ERR_NOTFOUND;
	if (fail(b, rc) != 0)
		return rc;
	klen = queue_key(key, q->client_id, q->seq);
	off = op_begin(b, OP_REF_PUT, STORE_DB_QUEUE, q->msg_id, key, klen);
	rec_queue_enc(&b->ops, q);
	return op_end(b, off);
}

int
store_batch_queue_del(struct store_batch *b, struct mqtt_bytes client_id,
                      uint64_t seq)
{
	uint8_t key[STORE_CLIENT_ID_MAX + 16];
	size_t off, klen;

	if (b->err != 0)
		return b->err;
	if (fail(b, key_client_check(client_id)) != 0)
		return b->err;
	klen = queue_key(key, client_id, seq);
	off = op_begin(b, OP_REF_DEL, STORE_DB_QUEUE, 0, key, klen);
	return op_end(b, off);
}

int
store_batch_inflight_put(struct store_batch *b, const struct store_inflight *f)
{
	uint8_t key[STORE_CLIENT_ID_MAX + 16];
	size_t off, klen;

	if (b->err != 0)
		return b->err;
	if (fail(b, key_client_check(f->client_id)) != 0)
		return b->err;
	klen = inflight_key(key, f->client_id, f->dir, f->packet_id);
	off = op_begin(b, OP_REF_PUT, STORE_DB_INFLIGHT, f->msg_id, key, klen);
	rec_inflight_enc(&b->ops, f);
	return op_end(b, off);
}

int
store_batch_inflight_del(struct store_batch *b, struct mqtt_bytes client_id,
                         uint8_t dir, uint16_t packet_id)
{
	uint8_t key[STORE_CLIENT_ID_MAX + 16];
	size_t off, klen;

	if (b->err != 0)
		return b->err;
	if (fail(b, key_client_check(client_id)) != 0)
		return b->err;
	klen = inflight_key(key, client_id, dir, packet_id);
	off = op_begin(b, OP_REF_DEL, STORE_DB_INFLIGHT, 0, key, klen);
	return op_end(b, off);
}

int
batch_next(struct rd *r, struct batch_rec *op)
{
	uint16_t klen = 0;
	uint32_t vlen = 0;
	int rc;

	if (r->left == 0)
		return 1;
	rc = rd_u8(r, &op->op);
	rc = rc ? rc : rd_u8(r, &op->db);
	rc = rc ? rc : rec_u64(r, &op->ref);
	rc = rc ? rc : rd_u16(r, &klen);
	rc = rc ? rc : rd_bytes(r, klen, &op->key);
	rc = rc ? rc : rd_u32(r, &vlen);
	rc = rc ? rc : rd_bytes(r, vlen, &op->val);
	op->klen = klen;
	op->vlen = vlen;
	if (rc == 0 && op->db >= STORE_DB_COUNT)
		rc = ERR_MALFORMED;
	return rc ? ERR_MALFORMED : 0;
}
