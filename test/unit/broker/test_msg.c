/*
 * Unit tests of broker/msg.c: one allocation holding copies of topic,
 * payload and properties, the length limits, and reference counting (leaks
 * and double frees show up under ASan).
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/msg.h"
#include "test/unit/fault.h"

/* Without the --wrap flags the wrappers are never called and the
 * fault tests pass vacuously (fault_active() says so). */

static struct mqtt_bytes
bs(const char *s)
{
	return (struct mqtt_bytes){ (const uint8_t *)s, strlen(s) };
}

static bool
fault_active(void)
{
	struct msg *m;

	fault_arm(1);
	m = msg_new(bs("t"), bs("p"), bs(""), 0, false);
	fault_off();
	msg_unref(m);
	if (m)
		fprintf(stderr, "fault injection off (no --wrap=malloc)\n");
	return !m;
}

START_TEST(test_new_copies)
{
	char topic[] = "a/b", payload[] = "hello";
	const uint8_t props[] = { 0x01, 0x01, 0x02, 0x00, 0x00, 0x00, 0x3c };
	struct msg *m =
	        msg_new(bs(topic), bs(payload),
	                (struct mqtt_bytes){ props, sizeof(props) }, 1, true);

	ck_assert_ptr_nonnull(m);
	/* the input may die right after: the message has its own copy */
	memset(topic, 'x', sizeof(topic) - 1);
	memset(payload, 'x', sizeof(payload) - 1);
	ck_assert_uint_eq(m->refs, 1);
	ck_assert_uint_eq(m->qos, 1);
	ck_assert(m->retain);
	ck_assert_uint_eq(msg_topic(m).len, 3);
	ck_assert_mem_eq(msg_topic(m).p, "a/b", 3);
	ck_assert_uint_eq(msg_payload(m).len, 5);
	ck_assert_mem_eq(msg_payload(m).p, "hello", 5);
	ck_assert_uint_eq(msg_props(m).len, sizeof(props));
	ck_assert_mem_eq(msg_props(m).p, props, sizeof(props));
	/* left for the caller to set */
	ck_assert_uint_eq(m->id, 0);
	ck_assert_uint_eq(m->expiry_ms, 0);
	ck_assert_ptr_null(m->origin);
	msg_unref(m);
}
END_TEST

START_TEST(test_new_empty)
{
	struct mqtt_bytes none = { NULL, 0 };
	struct msg *m = msg_new(bs("t"), none, none, 0, false);

	ck_assert_ptr_nonnull(m);
	ck_assert_uint_eq(m->payload_len, 0);
	ck_assert_uint_eq(m->props_len, 0);
	ck_assert(!m->retain);
	msg_unref(m);
	m = msg_new(none, none, none, 2, false);
	ck_assert_ptr_nonnull(m);
	ck_assert_uint_eq(m->topic_len, 0);
	ck_assert_uint_eq(m->qos, 2);
	msg_unref(m);
}
END_TEST

START_TEST(test_new_large)
{
	size_t n = 1u << 20, i;
	uint8_t *p = malloc(n);
	struct msg *m;

	ck_assert_ptr_nonnull(p);
	for (i = 0; i < n; i++)
		p[i] = (uint8_t)(i * 31);
	m = msg_new(bs("big"), (struct mqtt_bytes){ p, n }, bs("pr"), 0, false);
	ck_assert_ptr_nonnull(m);
	ck_assert_uint_eq(m->payload_len, n);
	ck_assert_mem_eq(msg_payload(m).p, p, n);
	ck_assert_mem_eq(msg_props(m).p, "pr", 2);
	free(p);
	msg_unref(m);
}
END_TEST

START_TEST(test_new_limits)
{
	uint8_t *topic = malloc(65536), tiny[1] = { 0 };
	struct msg *m;

	ck_assert_ptr_nonnull(topic);
	memset(topic, 'a', 65536);
	/* [MQTT-4.7.3-3] a topic fits in 65535 bytes */
	m = msg_new((struct mqtt_bytes){ topic, 65535 }, bs("p"), bs(""), 0,
	            false);
	ck_assert_ptr_nonnull(m);
	ck_assert_uint_eq(m->topic_len, 65535);
	ck_assert_uint_eq(m->data[65534], 'a');
	ck_assert_uint_eq(m->data[65535], 'p');
	msg_unref(m);
	m = msg_new((struct mqtt_bytes){ topic, 65536 }, bs("p"), bs(""), 0,
	            false);
	ck_assert_ptr_null(m);
	free(topic);
	/* lengths over uint32 are refused before anything is read */
	if (SIZE_MAX > UINT32_MAX) {
		struct mqtt_bytes huge = { tiny, (size_t)UINT32_MAX + 1 };

		ck_assert_ptr_null(msg_new(bs("t"), huge, bs(""), 0, false));
		ck_assert_ptr_null(msg_new(bs("t"), bs(""), huge, 0, false));
	}
}
END_TEST

START_TEST(test_refs)
{
	struct msg *m = msg_new(bs("t"), bs("p"), bs(""), 0, false);

	ck_assert_ptr_nonnull(m);
	ck_assert_ptr_eq(msg_ref(m), m);
	ck_assert_uint_eq(m->refs, 2);
	msg_ref(m);
	ck_assert_uint_eq(m->refs, 3);
	msg_unref(m);
	msg_unref(m);
	ck_assert_uint_eq(m->refs, 1);
	msg_unref(m); /* freed: ASan reports a leak or a double free */
	msg_unref(NULL);
}
END_TEST

START_TEST(test_fault_new)
{
	struct msg *m;

	if (!fault_active())
		return;
	fault_arm(1);
	m = msg_new(bs("t"), bs("p"), bs(""), 0, false);
	fault_off();
	ck_assert_ptr_null(m);
	fault_arm(2);
	m = msg_new(bs("t"), bs("p"), bs(""), 0, false);
	fault_off();
	ck_assert_ptr_nonnull(m);
	msg_unref(m);
}
END_TEST

static Suite *
msg_suite(void)
{
	Suite *s = suite_create("broker_msg");
	TCase *tc = tcase_create("msg");

	tcase_add_test(tc, test_new_copies);
	tcase_add_test(tc, test_new_empty);
	tcase_add_test(tc, test_new_large);
	tcase_add_test(tc, test_new_limits);
	tcase_add_test(tc, test_refs);
	suite_add_tcase(s, tc);
	tc = tcase_create("fault");
	tcase_add_test(tc, test_fault_new);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(msg_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
