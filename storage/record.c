/*
 * The on-disk encodings of storage's records and keys: a leading version
 * byte, fixed-width big-endian integers, two-byte-length strings for topics,
 * filters and client ids, four-byte-length blobs for payloads and
 * properties. Written at REC_VERSION; every older version is still read.
 * Written with struct buf, read with struct rd.
 */
#include "storage/storage_int.h"

#include <stdint.h>
#include <string.h>

int
key_client_check(struct mqtt_bytes cid)
{
	if (cid.len == 0 || cid.len > STORE_CLIENT_ID_MAX)
		return ERR_BAD_CLIENT_ID;
	if (memchr(cid.p, 0, cid.len) != NULL)
		return ERR_BAD_CLIENT_ID;
	return 0;
}

static uint64_t
fnv1a64(const uint8_t *p, size_t n)
{
	uint64_t h = 14695981039346656037ULL;
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= p[i];
		h *= 1099511628211ULL;
	}
	return h;
}

void
key_put_fit(struct buf *b, const uint8_t *p, size_t n)
{
	if (n <= KEY_MAX) {
		buf_put_bytes(b, p, n);
		return;
	}
	buf_put_bytes(b, p, KEY_KEEP);
	key_put_u64(b, fnv1a64(p, n));
}

void
key_put_client(struct buf *b, struct mqtt_bytes cid)
{
	buf_put_bytes(b, cid.p, cid.len);
	buf_put_u8(b, 0);
}

int
rec_u64(struct rd *r, uint64_t *v)
{
	uint32_t hi, lo;
	int rc;

	rc = rd_u32(r, &hi);
	if (rc == 0)
		rc = rd_u32(r, &lo);
	if (rc == 0)
		*v = (uint64_t)hi << 32 | lo;
	return rc;
}

static void
put_blob(struct buf *b, struct mqtt_bytes v)
{
	if (v.len > UINT32_MAX) {
		b->failed = true;
		return;
	}
	rec_put_u32(b, (uint32_t)v.len);
	buf_put_bytes(b, v.p, v.len);
}

static int
get_blob(struct rd *r, struct mqtt_bytes *v)
{
	uint32_t n;
	int rc;

	rc = rd_u32(r, &n);
	if (rc == 0)
		rc = rd_bytes(r, n, &v->p);
	v->len = n;
	return rc;
}

static int
get_str(struct rd *r, struct mqtt_bytes *v)
{
	return rd_str(r, &v->p, &v->len);
}

static int
get_bool(struct rd *r, bool *v)
{
	uint8_t u;
	int rc = rd_u8(r, &u);

	*v = u != 0;
	return rc;
}

/* Opens a record: the version byte, stored in *ver, must be one this code
 * reads (1 to REC_VERSION). */
static int
rec_open(struct rd *r, const uint8_t *p, size_t n, uint8_t *ver)
{
	rd_init(r, p, n);
	if (rd_u8(r, ver) != 0 || *ver < 1 || *ver > REC_VERSION)
		return ERR_MALFORMED;
	return 0;
}

/* A record must be consumed exactly. */
static int
rec_close(const struct rd *r, int rc)
{
	if (rc != 0 || r->left != 0)
		return ERR_MALFORMED;
	return 0;
}

void
rec_retained_enc(struct buf *b, const struct store_retained *r)
{
	buf_put_u8(b, REC_VERSION);
	buf_put_u8(b, r->qos);
	rec_put_u64(b, r->expires_at);
	rec_put_u64(b, r->stamp);
	rec_put_str(b, r->topic.p, r->topic.len);
	put_blob(b, r->payload);
	put_blob(b, r->props);
}

int
rec_retained_dec(const uint8_t *p, size_t n, struct store_retained *out)
{
	struct rd r;
	uint8_t ver;
	int rc;

	memset(out, 0, sizeof(*out));
	if (rec_open(&r, p, n, &ver) != 0)
		return ERR_MALFORMED;
	rc = rd_u8(&r, &out->qos);
	rc = rc ? rc : rec_u64(&r, &out->expires_at);
	rc = rc ? rc : rec_u64(&r, &out->stamp);
	rc = rc ? rc : get_str(&r, &out->topic);
	rc = rc ? rc : get_blob(&r, &out->payload);
	rc = rc ? rc : get_blob(&r, &out->props);
	return rec_close(&r, rc);
}

void
rec_session_enc(struct buf *b, const struct store_session *ss)
{
	buf_put_u8(b, REC_VERSION);
	buf_put_u8(b, ss->version);
	rec_put_u32(b, ss->expiry_interval);
	rec_put_u64(b, ss->expires_at);
	buf_put_u16(b, ss->next_packet_id);
	buf_put_u8(b, (uint8_t)((ss->has_will ? 1 : 0) |
	                        (ss->will_retain ? 2 : 0)));
	buf_put_u8(b, ss->will_qos);
	rec_put_u32(b, ss->will_delay);
	rec_put_str(b, ss->client_id.p, ss->client_id.len);
	rec_put_str(b, ss->will_topic.p, ss->will_topic.len);
	put_blob(b, ss->will_payload);
	put_blob(b, ss->will_props);
	rec_put_u64(b, ss->will_at); /* version 2 */
	rec_put_u32(b, ss->will_expiry);
}

int
rec_session_dec(const uint8_t *p, size_t n, struct store_session *out)
{
	struct rd r;
	uint8_t ver, flags = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	if (rec_open(&r, p, n, &ver) != 0)
		return ERR_MALFORMED;
	rc = rd_u8(&r, &out->version);
	rc = rc ? rc : rd_u32(&r, &out->expiry_interval);
	rc = rc ? rc : rec_u64(&r, &out->expires_at);
	rc = rc ? rc : rd_u16(&r, &out->next_packet_id);
	rc = rc ? rc : rd_u8(&r, &flags);
	rc = rc ? rc : rd_u8(&r, &out->will_qos);
	rc = rc ? rc : rd_u32(&r, &out->will_delay);
	rc = rc ? rc : get_str(&r, &out->client_id);
	rc = rc ? rc : get_str(&r, &out->will_topic);
	rc = rc ? rc : get_blob(&r, &out->will_payload);
	rc = rc ? rc : get_blob(&r, &out->will_props);
	if (ver >= 2) {
		rc = rc ? rc : rec_u64(&r, &out->will_at);
		rc = rc ? rc : rd_u32(&r, &out->will_expiry);
	}
	out->has_will = flags & 1;
	out->will_retain = (flags & 2) != 0;
	return rec_close(&r, rc);
}

void
rec_sub_enc(struct buf *b, const struct store_sub *sub)
{
	buf_put_u8(b, REC_VERSION);
	buf_put_u8(b, sub->options);
	rec_put_u32(b, sub->sub_id);
	rec_put_str(b, sub->client_id.p, sub->client_id.len);
	rec_put_str(b, sub->filter.p, sub->filter.len);
}

int
rec_sub_dec(const uint8_t *p, size_t n, struct store_sub *out)
{
	struct rd r;
	uint8_t ver;
	int rc;

	memset(out, 0, sizeof(*out));
	if (rec_open(&r, p, n, &ver) != 0)
		return ERR_MALFORMED;
	rc = rd_u8(&r, &out->options);
	rc = rc ? rc : rd_u32(&r, &out->sub_id);
	rc = rc ? rc : get_str(&r, &out->client_id);
	rc = rc ? rc : get_str(&r, &out->filter);
	return rec_close(&r, rc);
}

void
rec_payload_enc(struct buf *b, const struct store_payload *pl, uint32_t refs)
{
	buf_put_u8(b, REC_VERSION);
	rec_put_u32(b, refs); /* at REC_REF_OFF */
	rec_put_u64(b, pl->msg_id);
	buf_put_u8(b, pl->qos);
	buf_put_u8(b, pl->retain ? 1 : 0);
	rec_put_u64(b, pl->expires_at);
	rec_put_str(b, pl->topic.p, pl->topic.len);
	put_blob(b, pl->payload);
	put_blob(b, pl->props);
}

int
rec_payload_dec(const uint8_t *p, size_t n, struct store_payload *out)
{
	struct rd r;
	uint8_t ver;
	int rc;

	memset(out, 0, sizeof(*out));
	if (rec_open(&r, p, n, &ver) != 0)
		return ERR_MALFORMED;
	rc = rd_u32(&r, &out->refs);
	rc = rc ? rc : rec_u64(&r, &out->msg_id);
	rc = rc ? rc : rd_u8(&r, &out->qos);
	rc = rc ? rc : get_bool(&r, &out->retain);
	rc = rc ? rc : rec_u64(&r, &out->expires_at);
	rc = rc ? rc : get_str(&r, &out->topic);
	rc = rc ? rc : get_blob(&r, &out->payload);
	rc = rc ? rc : get_blob(&r, &out->props);
	return rec_close(&r, rc);
}

void
rec_queue_enc(struct buf *b, const struct store_queue_entry *q)
{
	uint8_t i;

	buf_put_u8(b, REC_VERSION);
	rec_put_u64(b, q->msg_id); /* at REC_REF_OFF */
	rec_put_u64(b, q->seq);
	buf_put_u8(b, q->qos);
	buf_put_u8(b, q->retain ? 1 : 0);
	if (q->n_sub_ids > STORE_SUB_IDS_MAX)
		b->failed = true;
	buf_put_u8(b, q->n_sub_ids);
	for (i = 0; i < q->n_sub_ids && i < STORE_SUB_IDS_MAX; i++)
		rec_put_u32(b, q->sub_ids[i]);
	rec_put_str(b, q->client_id.p, q->client_id.len);
	if (q->groups.len > UINT32_MAX)
		b->failed = true;
	rec_put_u32(b, (uint32_t)q->groups.len); /* version 3 */
	buf_put_bytes(b, q->groups.p, q->groups.len);
}

int
rec_queue_dec(const uint8_t *p, size_t n, struct store_queue_entry *out)
{
	struct rd r;
	uint8_t i, ver;
	int rc;

	memset(out, 0, sizeof(*out));
	if (rec_open(&r, p, n, &ver) != 0)
		return ERR_MALFORMED;
	rc = rec_u64(&r, &out->msg_id);
	rc = rc ? rc : rec_u64(&r, &out->seq);
	rc = rc ? rc : rd_u8(&r, &out->qos);
	rc = rc ? rc : get_bool(&r, &out->retain);
	rc = rc ? rc : rd_u8(&r, &out->n_sub_ids);
	if (rc == 0 && out->n_sub_ids > STORE_SUB_IDS_MAX)
		return ERR_MALFORMED;
	for (i = 0; rc == 0 && i < out->n_sub_ids; i++)
		rc = rd_u32(&r, &out->sub_ids[i]);
	rc = rc ? rc : get_str(&r, &out->client_id);
	if (ver >= 3) {
		uint32_t glen = 0;
		rc = rc ? rc : rd_u32(&r, &glen);
		rc = rc ? rc : rd_bytes(&r, glen, &out->groups.p);
		out->groups.len = glen;
	}
	return rec_close(&r, rc);
}

void
rec_inflight_enc(struct buf *b, const struct store_inflight *f)
{
	buf_put_u8(b, REC_VERSION);
	rec_put_u64(b, f->msg_id); /* at REC_REF_OFF */
	buf_put_u8(b, f->dir);
	buf_put_u16(b, f->packet_id);
	buf_put_u8(b, f->state);
	buf_put_u8(b, f->qos);
	buf_put_u8(b, f->retain ? 1 : 0);
	rec_put_str(b, f->client_id.p, f->client_id.len);
	rec_put_u64(b, f->seq); /* version 2 */
}

int
rec_inflight_dec(const uint8_t *p, size_t n, struct store_inflight *out)
{
	struct rd r;
	uint8_t ver;
	int rc;

	memset(out, 0, sizeof(*out));
	if (rec_open(&r, p, n, &ver) != 0)
		return ERR_MALFORMED;
	rc = rec_u64(&r, &out->msg_id);
	rc = rc ? rc : rd_u8(&r, &out->dir);
	rc = rc ? rc : rd_u16(&r, &out->packet_id);
	rc = rc ? rc : rd_u8(&r, &out->state);
	rc = rc ? rc : rd_u8(&r, &out->qos);
	rc = rc ? rc : get_bool(&r, &out->retain);
	rc = rc ? rc : get_str(&r, &out->client_id);
	if (ver >= 2)
		rc = rc ? rc : rec_u64(&r, &out->seq);
	return rec_close(&r, rc);
}
