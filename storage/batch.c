/*
 * Write batches: the op adders copy and encode each record into one buffer
 * owned by the batch, so the caller's views may die as soon as an adder
 * returns. The writer thread decodes them with batch_next, and plans each
 * commit group with group_plan (puts that the group deletes again).
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

void
store_batch_set_waiters(struct store_batch *b, uint32_t n)
{
	b->waiters = n;
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
	uint8_t *p;

	if (klen <= KEY_MAX && buf_reserve(o, 16 + klen) == 0) {
		/* the common case, in one go */
		p = o->data + o->len;
		p[0] = op;
		p[1] = db;
		o->len += 2;
		key_put_u64(o, ref);
		p[10] = (uint8_t)(klen >> 8);
		p[11] = (uint8_t)klen;
		if (klen > 0) /* key may be NULL then */
			memcpy(p + 12, key, klen);
		o->len += 2 + klen;
		rec_put_u32(o, 0);
		return o->len - 4;
	}
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
	rec_put_u32(o, 0);
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
	rc = rc ? rc : check_blob(q->groups);
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

static uint16_t
get_be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t
get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

/* Decodes in place rather than through the rd getters: the writer decodes
 * every op once to plan its group and once to apply it, and the getters'
 * calls were most of that cost. The bytes are the adders' own encoding;
 * each length is still checked against what is left. */
int
batch_next(struct rd *r, struct batch_rec *op)
{
	const uint8_t *p = r->p;
	size_t klen, vlen, left = r->left;

	if (left == 0)
		return 1;
	if (left < 16) /* op, db, ref, key length, value length */
		return ERR_MALFORMED;
	klen = get_be16(p + 10);
	if (left - 16 < klen)
		return ERR_MALFORMED;
	vlen = get_be32(p + 12 + klen);
	if (left - 16 - klen < vlen)
		return ERR_MALFORMED;
	op->op = p[0] & OP_MASK;
	op->flags = (uint8_t)(p[0] & ~OP_MASK);
	op->db = p[1];
	op->ref = key_get_u64(p + 2);
	op->key = p + 12;
	op->klen = klen;
	op->val = p + 16 + klen;
	op->vlen = vlen;
	r->p = p + 16 + klen + vlen;
	r->left = left - 16 - klen - vlen;
	return op->db < STORE_DB_COUNT ? 0 : ERR_MALFORMED;
}

/* --- planning a commit group (writer thread) ------------------------------ */

/* A key the group touches: a queue or in-flight key, or a payload id. */
struct plan_ent {
	const uint8_t *key; /* view into a batch; NULL for a payload */
	uint64_t id;        /* payload msg id */
	uint32_t hash;
	uint16_t klen;
	uint8_t db;
	uint8_t state;      /* enum plan_state */
	uint32_t chain;     /* open or last ended run, chains index + 1 */
	uint32_t put_batch; /* payload: last batch putting it, index + 1 */
	bool loose;         /* payload: referenced where not put first */
};

/* A run of puts on one key, then its delete: skipped or not. */
struct plan_chain {
	uint8_t *ops[PLAN_CHAIN_OPS]; /* op bytes: the puts, then the del */
	uint32_t key;                 /* its ents index */
	uint32_t pay;                 /* its payload's ents index + 1, or 0 */
	uint32_t prev;                /* the run it follows on the key,
	                               * chains index + 1; 0: it starts at
	                               * the key's first op in the group */
	uint32_t epoch;               /* OP_SESSION_DELs seen at its start */
	uint8_t n;                    /* ops used */
	bool ended;                   /* its del was seen */
	bool skip;                    /* decided: skipped */
};

enum plan_state {
	PS_NEW = 0, /* no op on the key yet */
	PS_OPEN,    /* a run of puts is open: chains[chain - 1] */
	PS_ENDED,   /* the last op ended the run chains[chain - 1] */
	PS_DEAD,    /* no further run of this key can be skipped */
};

#define PLAN_KEEP 4096 /* entries kept allocated between groups */

static uint32_t
hash_fin(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return (uint32_t)h;
}

static uint64_t
hash_mix(uint64_t h, uint64_t w)
{
	h = (h ^ w) * 0xc4ceb9fe1a85ec53ULL;
	return h ^ h >> 29;
}

/* 8 bytes at a time, the last 8 overlapping the ones before if need be. */
static uint32_t
hash_key(uint8_t db, const uint8_t *p, size_t n)
{
	uint64_t h = 0x9e3779b97f4a7c15ULL * (db + 1U) ^ n, w = 0;
	size_t i;

	if (n < 8) {
		for (i = 0; i < n; i++)
			w |= (uint64_t)p[i] << (8 * i);
		return hash_fin(hash_mix(h, w));
	}
	for (; n > 8; p += 8, n -= 8) {
		memcpy(&w, p, 8);
		h = hash_mix(h, w);
	}
	memcpy(&w, p + n - 8, 8);
	return hash_fin(hash_mix(h, w));
}

/* Sizes the table for a group of n ops (at most 2 entries per op) and
 * empties it. */
static int
plan_reset(struct group_plan *pl, size_t n)
{
	size_t want = 16;
	uint32_t *p;

	while (want < 4 * n) {
		if (want > SIZE_MAX / 8 / sizeof(*p))
			return ERR_NOMEM;
		want *= 2;
	}
	if (want > pl->n_slots) {
		p = malloc(want * sizeof(*p));
		if (p == NULL)
			return ERR_NOMEM;
		free(pl->slots);
		pl->slots = p;
		pl->n_slots = want;
	}
	memset(pl->slots, 0, want * sizeof(*p));
	pl->mask = want - 1;
	pl->n_ents = 0;
	pl->n_chains = 0;
	pl->epoch = 0;
	pl->last_id = 0;
	return 0;
}

/* Doubles an array of *cap elements of size sz: the new array, or NULL
 * (arr is left as it was). */
static void *
grow(void *arr, size_t *cap, size_t sz)
{
	size_t n = *cap ? *cap * 2 : 256;
	void *p;

	if (n > SIZE_MAX / sz)
		return NULL;
	p = realloc(arr, n * sz);
	if (p != NULL)
		*cap = n;
	return p;
}

/* The entry of a key (key != NULL) or of payload id, created if new.
 * Returns its index, or -1 on out of memory. */
static int64_t
plan_ent(struct group_plan *pl, uint8_t db, const uint8_t *key, size_t klen,
         uint64_t id)
{
	uint32_t h = key ? hash_key(db, key, klen) : hash_fin(id);
	size_t i = h & pl->mask;
	struct plan_ent *e;
	uint32_t x;
	void *p;

	while ((x = pl->slots[i]) != 0) {
		e = &pl->ents[x - 1];
		if (e->hash == h && e->db == db &&
		    (key ? e->klen == klen && memcmp(e->key, key, klen) == 0
		         : e->id == id))
			return x - 1;
		i = (i + 1) & pl->mask;
	}
	if (pl->n_ents >= pl->mask) /* cannot happen: sized by ops */
		return -1;
	if (pl->n_ents == pl->cap_ents) {
		p = grow(pl->ents, &pl->cap_ents, sizeof(*e));
		if (p == NULL)
			return -1;
		pl->ents = p;
	}
	e = &pl->ents[pl->n_ents];
	memset(e, 0, sizeof(*e));
	e->key = key;
	e->id = id;
	e->hash = h;
	e->klen = (uint16_t)klen;
	e->db = db;
	pl->slots[i] = (uint32_t)++pl->n_ents;
	return (int64_t)pl->n_ents - 1;
}

/* The entry of payload id: index, or -1 on out of memory. */
static int64_t
plan_pay(struct group_plan *pl, uint64_t id)
{
	int64_t x;

	if (id == pl->last_id)
		return (int64_t)pl->last_pay;
	x = plan_ent(pl, STORE_DB_PAYLOADS, NULL, 0, id);
	if (x >= 0) {
		pl->last_id = id;
		pl->last_pay = (size_t)x;
	}
	return x;
}

/* An OP_REF_PUT's payload: OP_F_HERE when its batch put it before, else
 * the payload is loose. Returns the entry index + 1, 0 for none, or -1. */
static int64_t
plan_ref(struct group_plan *pl, const struct batch_rec *op, uint8_t *at,
         uint32_t bi)
{
	struct plan_ent *e;
	int64_t x;

	if (op->ref == 0)
		return 0;
	x = plan_pay(pl, op->ref);
	if (x < 0)
		return -1;
	e = &pl->ents[x];
	if (e->put_batch == bi)
		*at |= OP_F_HERE;
	else
		e->loose = true;
	return x + 1;
}

/* An OP_REF_PUT of key entry x: opens a run, or extends the open one. */
static int
plan_put(struct group_plan *pl, size_t x, uint8_t *at, uint32_t pay)
{
	struct plan_ent *e = &pl->ents[x];
	struct plan_chain *c;
	void *p;

	if (e->state == PS_OPEN) {
		c = &pl->chains[e->chain - 1];
		if (c->epoch != pl->epoch || c->pay != pay ||
		    c->n >= PLAN_CHAIN_OPS - 1)
			e->state = PS_DEAD;
		else
			c->ops[c->n++] = at;
		return 0;
	}
	if (e->state == PS_DEAD)
		return 0;
	if (pl->n_chains == pl->cap_chains) {
		p = grow(pl->chains, &pl->cap_chains, sizeof(*c));
		if (p == NULL)
			return ERR_NOMEM;
		pl->chains = p;
	}
	c = &pl->chains[pl->n_chains++];
	memset(c, 0, sizeof(*c));
	c->ops[0] = at;
	c->n = 1;
	c->key = (uint32_t)x;
	c->pay = pay;
	c->prev = e->state == PS_ENDED ? e->chain : 0;
	c->epoch = pl->epoch;
	e->chain = (uint32_t)pl->n_chains;
	e->state = PS_OPEN;
	return 0;
}

/* An OP_REF_DEL of key entry x ends the open run, if any. */
static void
plan_del(struct group_plan *pl, size_t x, uint8_t *at)
{
	struct plan_ent *e = &pl->ents[x];
	struct plan_chain *c;

	if (e->state == PS_OPEN) {
		c = &pl->chains[e->chain - 1];
		if (c->epoch == pl->epoch) {
			c->ops[c->n++] = at;
			c->ended = true;
			e->state = PS_ENDED;
			return;
		}
	}
	e->state = PS_DEAD;
}

/* One op of batch number bi, whose op byte is at. */
static int
plan_op(struct group_plan *pl, const struct batch_rec *op, uint8_t *at,
        uint32_t bi)
{
	int64_t x, pay = 0;

	switch (op->op) {
	case OP_SESSION_DEL:
		pl->epoch++; /* no run spans it */
		return 0;
	case OP_PAYLOAD_PUT:
		x = plan_pay(pl, op->ref);
		if (x < 0)
			return ERR_NOMEM;
		pl->ents[x].put_batch = bi;
		return 0;
	case OP_REF_PUT:
	case OP_REF_DEL:
	case OP_PUT:
	case OP_DEL:
		break;
	default:
		return 0;
	}
	if (op->db != STORE_DB_QUEUE && op->db != STORE_DB_INFLIGHT)
		return 0;
	if (op->op == OP_REF_PUT && (pay = plan_ref(pl, op, at, bi)) < 0)
		return ERR_NOMEM;
	x = plan_ent(pl, op->db, op->key, op->klen, 0);
	if (x < 0)
		return ERR_NOMEM;
	if (op->op == OP_REF_PUT)
		return plan_put(pl, (size_t)x, at, (uint32_t)pay);
	if (op->op == OP_REF_DEL)
		plan_del(pl, (size_t)x, at);
	else /* plain ops, which the adders do not make */
		pl->ents[x].state = PS_DEAD;
	return 0;
}

static int
plan_batch(struct group_plan *pl, struct store_batch *b, uint32_t bi)
{
	struct batch_rec op;
	struct rd r;
	size_t left;
	int rc;

	rd_init(&r, b->ops.data, b->ops.len);
	for (;;) {
		left = r.left;
		rc = batch_next(&r, &op);
		if (rc != 0) /* at the end; or damaged: applying it fails */
			return 0;
		rc = plan_op(pl, &op, b->ops.data + (b->ops.len - left), bi);
		if (rc != 0)
			return rc;
	}
}

/* Decides each ended run in order (a run after another on the same key is
 * skipped only if that one is) and flags the skipped ones. */
static int64_t
plan_decide(struct group_plan *pl, plan_exists_fn exists, void *ctx)
{
	struct plan_chain *c;
	struct plan_ent *e;
	int64_t n = 0;
	size_t i, j;
	bool there;

	for (i = 0; i < pl->n_chains; i++) {
		c = &pl->chains[i];
		if (!c->ended || (c->pay && pl->ents[c->pay - 1].loose))
			continue;
		if (c->prev && !pl->chains[c->prev - 1].skip)
			continue;
		e = &pl->ents[c->key];
		if (!c->prev &&
		    (exists(ctx, e->db, e->key, e->klen, &there) != 0 || there))
			continue;
		c->skip = true;
		for (j = 0; j < c->n; j++)
			*c->ops[j] |= OP_F_SKIP;
		n += c->n;
	}
	return n;
}

int64_t
group_plan(struct group_plan *pl, struct store_batch *group,
           plan_exists_fn exists, void *ctx)
{
	struct store_batch *b;
	uint32_t bi = 0;
	size_t n = 0;
	int rc;

	for (b = group; b != NULL; b = b->next)
		n += b->n;
	rc = plan_reset(pl, n);
	for (b = group; b != NULL && rc == 0; b = b->next)
		rc = plan_batch(pl, b, ++bi);
	if (rc != 0)
		return rc; /* nothing flagged OP_F_SKIP yet */
	return plan_decide(pl, exists, ctx);
}

void
group_plan_trim(struct group_plan *pl)
{
	if (pl->cap_ents > PLAN_KEEP || pl->n_slots > 4 * PLAN_KEEP) {
		group_plan_fini(pl);
		memset(pl, 0, sizeof(*pl));
	}
	if (pl->cap_chains > PLAN_KEEP) {
		free(pl->chains);
		pl->chains = NULL;
		pl->cap_chains = 0;
	}
}

void
group_plan_fini(struct group_plan *pl)
{
	free(pl->slots);
	free(pl->ents);
	free(pl->chains);
}

/* "mark", NUL, origin: a META key no other META key starts with. */
#define MARK_PREFIX "mark"

int
store_batch_mark_put(struct store_batch *b, uint64_t origin, uint64_t msg_id)
{
	uint8_t key[sizeof(MARK_PREFIX) + 8];
	size_t off;
	int i;

	if (b->err != 0)
		return b->err;
	memcpy(key, MARK_PREFIX, sizeof(MARK_PREFIX)); /* NUL included */
	for (i = 0; i < 8; i++)
		key[sizeof(MARK_PREFIX) + i] =
		        (uint8_t)(origin >> (56 - 8 * i));
	off = op_begin(b, OP_PUT, STORE_DB_META, 0, key, sizeof(key));
	key_put_u64(&b->ops, origin);
	key_put_u64(&b->ops, msg_id);
	return op_end(b, off);
}
