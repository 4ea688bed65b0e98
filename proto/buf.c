/*
 * struct buf, the growable or fixed output buffer with a sticky failure flag,
 * and struct rd, the bounds-checked read cursor. The rd_* getters are the only
 * code in proto that does offset arithmetic on peer bytes.
 */
#include "proto/proto.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define BUF_MIN_CAP 64

void
buf_init(struct buf *b)
{
	memset(b, 0, sizeof(*b));
}

void
buf_init_fixed(struct buf *b, uint8_t *storage, size_t cap)
{
	b->data = storage;
	b->len = 0;
	b->cap = cap;
	b->failed = false;
	b->fixed = true;
}

void
buf_fini(struct buf *b)
{
	if (b == NULL)
		return;
	if (!b->fixed)
		free(b->data);
	memset(b, 0, sizeof(*b));
}

static int
buf_fail(struct buf *b)
{
	b->failed = true;
	return b->fixed ? ERR_TOO_LARGE : ERR_NOMEM;
}

int
buf_grow(struct buf *b, size_t n)
{
	size_t need, cap;
	uint8_t *p;

	if (b->failed)
		return b->fixed ? ERR_TOO_LARGE : ERR_NOMEM;
	if (n <= b->cap - b->len)
		return 0;
	if (b->fixed || n > SIZE_MAX - b->len)
		return buf_fail(b);
	need = b->len + n;
	cap = b->cap ? b->cap : BUF_MIN_CAP;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	p = realloc(b->data, cap);
	if (p == NULL)
		return buf_fail(b);
	b->data = p;
	b->cap = cap;
	return 0;
}

void
buf_reset(struct buf *b)
{
	b->len = 0;
	b->failed = false;
}

void
buf_put_u32(struct buf *b, uint32_t v)
{
	if (buf_reserve(b, 4))
		return;
	b->data[b->len++] = (uint8_t)(v >> 24);
	b->data[b->len++] = (uint8_t)(v >> 16);
	b->data[b->len++] = (uint8_t)(v >> 8);
	b->data[b->len++] = (uint8_t)v;
}

void
buf_put_varint(struct buf *b, uint32_t v)
{
	uint8_t c;

	if (v > MQTT_MAX_REMAINING) {
		buf_fail(b);
		return;
	}
	if (buf_reserve(b, varint_size(v)))
		return;
	do {
		c = v & 0x7f;
		v >>= 7;
		if (v > 0)
			c |= 0x80;
		b->data[b->len++] = c;
	} while (v > 0);
}

void
buf_put_str(struct buf *b, const void *p, size_t n)
{
	if (n > UINT16_MAX) {
		buf_fail(b);
		return;
	}
	buf_put_u16(b, (uint16_t)n);
	buf_put_bytes(b, p, n);
}

int
rd_u8(struct rd *r, uint8_t *v)
{
	if (r->left < 1)
		return ERR_MALFORMED;
	*v = r->p[0];
	r->p += 1;
	r->left -= 1;
	return 0;
}

int
rd_u16(struct rd *r, uint16_t *v)
{
	if (r->left < 2)
		return ERR_MALFORMED;
	*v = (uint16_t)(r->p[0] << 8 | r->p[1]);
	r->p += 2;
	r->left -= 2;
	return 0;
}

int
rd_u32(struct rd *r, uint32_t *v)
{
	if (r->left < 4)
		return ERR_MALFORMED;
	*v = (uint32_t)r->p[0] << 24 | (uint32_t)r->p[1] << 16 |
	     (uint32_t)r->p[2] << 8 | (uint32_t)r->p[3];
	r->p += 4;
	r->left -= 4;
	return 0;
}

int
rd_varint(struct rd *r, uint32_t *v)
{
	uint32_t val = 0;
	size_t i;

	for (i = 0; i < 4; i++) {
		if (i >= r->left)
			return ERR_MALFORMED;
		val |= (uint32_t)(r->p[i] & 0x7f) << (7 * i);
		if (!(r->p[i] & 0x80)) {
			r->p += i + 1;
			r->left -= i + 1;
			*v = val;
			return 0;
		}
	}
	/* [MQTT-1.5.5-1] the fourth byte may not have a continuation bit */
	return ERR_BAD_LENGTH;
}

int
rd_bytes(struct rd *r, size_t n, const uint8_t **p)
{
	if (n > r->left)
		return ERR_MALFORMED;
	*p = r->p;
	r->p += n;
	r->left -= n;
	return 0;
}

int
rd_str(struct rd *r, const uint8_t **p, size_t *n)
{
	struct rd save = *r;
	uint16_t len;
	int rc;

	rc = rd_u16(r, &len);
	if (rc)
		return rc;
	rc = rd_bytes(r, len, p);
	if (rc) {
		*r = save;
		return rc;
	}
	*n = len;
	return 0;
}

size_t
varint_size(uint32_t v)
{
	if (v < 128u)
		return 1;
	if (v < 16384u)
		return 2;
	if (v < 2097152u)
		return 3;
	if (v <= MQTT_MAX_REMAINING)
		return 4;
	return 0;
}
