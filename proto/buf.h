/*
 * struct buf: a growable (or fixed) output buffer with a sticky failure flag,
 * and struct rd: a bounds-checked read cursor. rd_* are the only code in proto
 * that does offset arithmetic on peer bytes.
 */
#ifndef PROTO_BUF_H
#define PROTO_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct buf {
	uint8_t *data; /* bytes written so far */
	size_t len;    /* bytes used */
	size_t cap;    /* bytes allocated */
	bool failed;   /* sticky: a write failed (no memory, fixed cap hit) */
	bool fixed;    /* data is caller storage and never grows */
};

/** Empty growable buffer; nothing is allocated until the first write. */
void buf_init(struct buf *b);
/** Buffer over caller storage of @p cap bytes; writes past it fail. */
void buf_init_fixed(struct buf *b, uint8_t *storage, size_t cap);
/** Frees a growable buffer's memory; buf_fini(NULL) is a no-op. */
void buf_fini(struct buf *b);
/** buf_reserve's slow path: grows the buffer (or fails it). */
int buf_grow(struct buf *b, size_t n);

/** Makes room for @p n more bytes. @return 0 or ERR_NOMEM/ERR_TOO_LARGE.
 * Inline: every put of every packet encoded passes here. */
static inline int
buf_reserve(struct buf *b, size_t n)
{
	if (!b->failed && n <= b->cap - b->len)
		return 0;
	return buf_grow(b, n);
}

void buf_reset(struct buf *b);

static inline void
buf_put_u8(struct buf *b, uint8_t v)
{
	if (buf_reserve(b, 1))
		return;
	b->data[b->len++] = v;
}

static inline void
buf_put_u16(struct buf *b, uint16_t v)
{
	if (buf_reserve(b, 2))
		return;
	b->data[b->len++] = (uint8_t)(v >> 8);
	b->data[b->len++] = (uint8_t)v;
}

static inline void
buf_put_bytes(struct buf *b, const void *p, size_t n)
{
	if (n == 0 || buf_reserve(b, n))
		return;
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

void buf_put_u32(struct buf *b, uint32_t v);
/** Variable byte integer (1..4 bytes); values over 268435455 fail the buf. */
void buf_put_varint(struct buf *b, uint32_t v);
/** Two-byte length prefix then the bytes; n > 65535 fails the buf. */
void buf_put_str(struct buf *b, const void *p, size_t n);
static inline bool
buf_failed(const struct buf *b)
{
	return b->failed;
}

struct rd {
	const uint8_t *p; /* next unread byte */
	size_t left;      /* bytes left */
};

static inline void
rd_init(struct rd *r, const uint8_t *p, size_t n)
{
	r->p = p;
	r->left = n;
}

/* Each getter returns 0, or ERR_MALFORMED when too few bytes are left
 * (ERR_BAD_LENGTH for a varint longer than 4 bytes). */
int rd_u8(struct rd *r, uint8_t *v);
int rd_u16(struct rd *r, uint16_t *v);
int rd_u32(struct rd *r, uint32_t *v);
int rd_varint(struct rd *r, uint32_t *v);
/** A view of the next @p n bytes. */
int rd_bytes(struct rd *r, size_t n, const uint8_t **p);
/** Two-byte length then that many bytes, as a view. */
int rd_str(struct rd *r, const uint8_t **p, size_t *n);

/** Bytes a varint encoding of @p v takes (1..4), or 0 when too large. */
size_t varint_size(uint32_t v);

#endif
