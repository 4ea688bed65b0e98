/*
 * Unit tests for proto/buf.c and proto/err.c: struct buf growth and sticky
 * failure, struct rd bounds, the variable byte integer at its boundaries.
 */
#include "proto/proto.h"

#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

START_TEST(test_buf_grows)
{
	struct buf b;
	size_t i;

	buf_init(&b);
	ck_assert_ptr_null(b.data);
	for (i = 0; i < 10000; i++)
		buf_put_u8(&b, (uint8_t)i);
	ck_assert(!buf_failed(&b));
	ck_assert_uint_eq(b.len, 10000);
	for (i = 0; i < 10000; i++)
		ck_assert_uint_eq(b.data[i], (uint8_t)i);
	buf_reset(&b);
	ck_assert_uint_eq(b.len, 0);
	ck_assert_uint_ge(b.cap, 10000);
	buf_fini(&b);
	ck_assert_ptr_null(b.data);
	buf_fini(NULL);
}
END_TEST

START_TEST(test_buf_big_endian)
{
	struct buf b;
	static const uint8_t want[] = { 0xab, 0x12, 0x34, 0xde, 0xad, 0xbe,
		                        0xef, 0x00, 0x02, 'h',  'i' };

	buf_init(&b);
	buf_put_u8(&b, 0xab);
	buf_put_u16(&b, 0x1234);
	buf_put_u32(&b, 0xdeadbeef);
	buf_put_str(&b, "hi", 2);
	ck_assert(!buf_failed(&b));
	ck_assert_uint_eq(b.len, sizeof(want));
	ck_assert_mem_eq(b.data, want, sizeof(want));
	buf_fini(&b);
}
END_TEST

START_TEST(test_buf_fixed_sticky)
{
	uint8_t mem[4];
	struct buf b;

	buf_init_fixed(&b, mem, sizeof(mem));
	buf_put_u16(&b, 1);
	buf_put_u16(&b, 2);
	ck_assert(!buf_failed(&b));
	ck_assert_int_eq(buf_reserve(&b, 0), 0);
	buf_put_u8(&b, 3);
	ck_assert(buf_failed(&b));
	ck_assert_uint_eq(b.len, 4);
	/* sticky: later writes that would fit are refused too */
	b.len = 0;
	buf_put_u8(&b, 9);
	ck_assert_uint_eq(b.len, 0);
	ck_assert_int_eq(buf_reserve(&b, 1), ERR_TOO_LARGE);
	buf_reset(&b);
	ck_assert(!buf_failed(&b));
	buf_put_u8(&b, 9);
	ck_assert_uint_eq(b.len, 1);
	buf_fini(&b); /* caller storage is not freed */
}
END_TEST

START_TEST(test_buf_str_too_long)
{
	struct buf b;
	uint8_t *big = calloc(1, 65536);

	ck_assert_ptr_nonnull(big);
	buf_init(&b);
	buf_put_str(&b, big, 65535);
	ck_assert(!buf_failed(&b));
	ck_assert_uint_eq(b.len, 65537);
	buf_put_str(&b, big, 65536);
	ck_assert(buf_failed(&b));
	ck_assert_int_eq(buf_reserve(&b, 1), ERR_NOMEM);
	buf_fini(&b);
	free(big);
}
END_TEST

START_TEST(test_buf_reserve_overflow)
{
	struct buf b;

	buf_init(&b);
	buf_put_u8(&b, 1);
	ck_assert_int_eq(buf_reserve(&b, SIZE_MAX), ERR_NOMEM);
	ck_assert(buf_failed(&b));
	buf_fini(&b);
}
END_TEST

static const struct {
	uint32_t v;
	size_t n;
	uint8_t bytes[4];
} varints[] = {
	{ 0, 1, { 0x00 } },
	{ 127, 1, { 0x7f } },
	{ 128, 2, { 0x80, 0x01 } },
	{ 16383, 2, { 0xff, 0x7f } },
	{ 16384, 3, { 0x80, 0x80, 0x01 } },
	{ 2097151, 3, { 0xff, 0xff, 0x7f } },
	{ 2097152, 4, { 0x80, 0x80, 0x80, 0x01 } },
	{ 268435455, 4, { 0xff, 0xff, 0xff, 0x7f } },
};

/* MQTT 5 section 1.5.5 / 3.1.1 section 2.2.3 table of boundaries. */
START_TEST(test_varint_boundaries)
{
	struct buf b;
	struct rd r;
	uint32_t v;

	buf_init(&b);
	buf_put_varint(&b, varints[_i].v);
	ck_assert(!buf_failed(&b));
	/* [MQTT-1.5.5-1] v5: the fewest bytes */
	ck_assert_uint_eq(b.len, varints[_i].n);
	ck_assert_mem_eq(b.data, varints[_i].bytes, varints[_i].n);
	ck_assert_uint_eq(varint_size(varints[_i].v), varints[_i].n);
	rd_init(&r, varints[_i].bytes, varints[_i].n);
	ck_assert_int_eq(rd_varint(&r, &v), 0);
	ck_assert_uint_eq(v, varints[_i].v);
	ck_assert_uint_eq(r.left, 0);
	/* one byte short: not enough input */
	rd_init(&r, varints[_i].bytes, varints[_i].n - 1);
	ck_assert_int_eq(rd_varint(&r, &v), ERR_MALFORMED);
	buf_fini(&b);
}
END_TEST

START_TEST(test_varint_too_big)
{
	static const uint8_t five[] = { 0xff, 0xff, 0xff, 0xff, 0x7f };
	static const uint8_t cont4[] = { 0x80, 0x80, 0x80, 0x80 };
	struct buf b;
	struct rd r;
	uint32_t v;

	ck_assert_uint_eq(varint_size(268435456u), 0);
	buf_init(&b);
	buf_put_varint(&b, 268435456u);
	ck_assert(buf_failed(&b));
	ck_assert_uint_eq(b.len, 0);
	buf_fini(&b);
	/* [MQTT-1.5.5-1] v5: a fifth byte is never allowed */
	rd_init(&r, five, sizeof(five));
	ck_assert_int_eq(rd_varint(&r, &v), ERR_BAD_LENGTH);
	ck_assert_uint_eq(r.left, sizeof(five));
	/* known as soon as the fourth byte is seen */
	rd_init(&r, cont4, sizeof(cont4));
	ck_assert_int_eq(rd_varint(&r, &v), ERR_BAD_LENGTH);
}
END_TEST

START_TEST(test_rd_bounds)
{
	static const uint8_t in[] = { 0x01, 0x02, 0x03, 0x04, 0x05, 0x00,
		                      0x02, 'a',  'b',  0x00, 0x05, 'x' };
	const uint8_t *p;
	struct rd r;
	uint32_t u32;
	uint16_t u16;
	uint8_t u8;
	size_t n;

	rd_init(&r, in, sizeof(in));
	ck_assert_int_eq(rd_u8(&r, &u8), 0);
	ck_assert_uint_eq(u8, 1);
	ck_assert_int_eq(rd_u32(&r, &u32), 0);
	ck_assert_uint_eq(u32, 0x02030405);
	ck_assert_int_eq(rd_str(&r, &p, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_mem_eq(p, "ab", 2);
	/* the string's length runs past the end; the cursor stays */
	ck_assert_int_eq(rd_str(&r, &p, &n), ERR_MALFORMED);
	ck_assert_uint_eq(r.left, 3);
	ck_assert_int_eq(rd_u32(&r, &u32), ERR_MALFORMED);
	ck_assert_int_eq(rd_u16(&r, &u16), 0);
	ck_assert_uint_eq(u16, 5);
	ck_assert_int_eq(rd_bytes(&r, 2, &p), ERR_MALFORMED);
	ck_assert_int_eq(rd_bytes(&r, 1, &p), 0);
	ck_assert_uint_eq(p[0], 'x');
	ck_assert_int_eq(rd_u8(&r, &u8), ERR_MALFORMED);
	ck_assert_int_eq(rd_u16(&r, &u16), ERR_MALFORMED);
	ck_assert_int_eq(rd_bytes(&r, 0, &p), 0);
}
END_TEST

START_TEST(test_err_str)
{
	int e;

	ck_assert_str_eq(err_str(0), "success");
	ck_assert_str_eq(err_str(ERR_NOMEM), "out of memory");
	for (e = ERR_BAD_PROPERTY_ID; e <= 0; e++) {
		ck_assert_ptr_nonnull(err_str(e));
		ck_assert_str_ne(err_str(e), "unknown error");
	}
	ck_assert_str_eq(err_str(ERR_BAD_PROPERTY_ID - 1), "unknown error");
	ck_assert_str_eq(err_str(1), "unknown error");
	ck_assert_str_eq(err_str(-1000000), "unknown error");
}
END_TEST

static Suite *
buf_suite(void)
{
	Suite *s = suite_create("proto_buf");
	TCase *tc = tcase_create("buf");

	tcase_add_test(tc, test_buf_grows);
	tcase_add_test(tc, test_buf_big_endian);
	tcase_add_test(tc, test_buf_fixed_sticky);
	tcase_add_test(tc, test_buf_str_too_long);
	tcase_add_test(tc, test_buf_reserve_overflow);
	tcase_add_loop_test(tc, test_varint_boundaries, 0,
	                    sizeof(varints) / sizeof(varints[0]));
	tcase_add_test(tc, test_varint_too_big);
	tcase_add_test(tc, test_rd_bounds);
	tcase_add_test(tc, test_err_str);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(buf_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
