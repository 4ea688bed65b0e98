/*
 * Unit tests of broker/retain.c, the retained-message index: set, replace,
 * clear and pruning, message reference counts, the matching rules of MQTT
 * section 4.7 seen from the filter side, a randomized cross-check against a
 * reference matcher, and allocation failures.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/retain.h"
#include "test/unit/broker/ref_match.h"
#include "test/unit/fault.h"

/* Without the --wrap flags the wrappers are never called and the
 * fault tests pass vacuously (fault_active() says so). */

static bool
fault_active(void)
{
	struct retain_store *rs;

	fault_arm(1);
	rs = retain_new();
	fault_off();
	retain_free(rs);
	if (rs)
		fprintf(stderr, "fault injection off (no --wrap=malloc)\n");
	return !rs;
}

/* ---- helpers ---- */

static struct mqtt_bytes
bs(const char *s)
{
	return (struct mqtt_bytes){ (const uint8_t *)s, strlen(s) };
}

/* A message on topic with payload p ("" = a clear); the caller owns it. */
static struct msg *
mk(const char *topic, const char *p)
{
	struct msg *m = msg_new(bs(topic), bs(p), bs(""), 0, true);

	if (!m)
		ck_abort_msg("msg_new failed");
	return m;
}

/* Stores a message on topic and drops the caller's reference. */
static void
put(struct retain_store *rs, const char *topic, const char *p)
{
	struct msg *m = mk(topic, p);

	/* no ck_assert in hot loops: each passing one writes a mark point */
	if (retain_set(rs, m) != 0)
		ck_abort_msg("retain_set '%s' failed", topic);
	msg_unref(m);
}

struct found {
	struct msg **v;
	size_t n;
	size_t cap;
};

static void
on_msg(struct msg *m, void *arg)
{
	struct found *f = arg;

	if (f->n == f->cap) {
		f->cap = f->cap ? 2 * f->cap : 64;
		f->v = realloc(f->v, f->cap * sizeof(*f->v));
		if (!f->v)
			ck_abort_msg("out of memory");
	}
	f->v[f->n++] = m;
}

static int
ptr_cmp(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t) * (void *const *)a;
	uintptr_t y = (uintptr_t) * (void *const *)b;

	return x < y ? -1 : x > y;
}

static void
found_sort(struct found *f)
{
	if (f->n > 0)
		qsort(f->v, f->n, sizeof(*f->v), ptr_cmp);
}

static size_t
count_matches(struct retain_store *rs, const char *filter)
{
	struct found f = { 0 };

	retain_match(rs, bs(filter), on_msg, &f);
	free(f.v);
	return f.n;
}

/* ---- set, replace, clear ---- */

START_TEST(test_set_get)
{
	struct retain_store *rs = retain_new();
	struct msg *a = mk("a/b", "1"), *b = mk("a", "2"), *m;

	ck_assert_ptr_nonnull(rs);
	ck_assert_uint_eq(retain_count(rs), 0);
	ck_assert_uint_eq(retain_node_count(rs), 1);
	ck_assert_int_eq(retain_set(rs, a), 0);
	ck_assert_uint_eq(a->refs, 2); /* ours and the store's */
	ck_assert_ptr_eq(retain_get(rs, bs("a/b")), a);
	ck_assert_ptr_null(retain_get(rs, bs("a"))); /* a node, no message */
	ck_assert_ptr_null(retain_get(rs, bs("a/b/c")));
	ck_assert_ptr_null(retain_get(rs, bs("a/c")));
	ck_assert_ptr_null(retain_get(rs, bs("A/b")));
	ck_assert_int_eq(retain_set(rs, b), 0);
	ck_assert_ptr_eq(retain_get(rs, bs("a")), b);
	ck_assert_uint_eq(retain_count(rs), 2);
	ck_assert_uint_eq(retain_node_count(rs), 3);
	/* the store's own reference keeps a message alive */
	msg_unref(a);
	m = retain_get(rs, bs("a/b"));
	ck_assert_ptr_eq(m, a);
	ck_assert_uint_eq(m->refs, 1);
	ck_assert_mem_eq(msg_payload(m).p, "1", 1);
	msg_unref(b);
	retain_free(rs); /* drops both: ASan reports a leak otherwise */
	retain_free(NULL);
}
END_TEST

START_TEST(test_replace_refs)
{
	struct retain_store *rs = retain_new();
	struct msg *m1 = mk("t", "1"), *m2 = mk("t", "2"), *clr = mk("t", "");

	ck_assert_ptr_nonnull(rs);
	ck_assert_int_eq(retain_set(rs, m1), 0);
	ck_assert_uint_eq(m1->refs, 2);
	/* the same message twice: still one reference held */
	ck_assert_int_eq(retain_set(rs, m1), 0);
	ck_assert_uint_eq(m1->refs, 2);
	ck_assert_uint_eq(retain_count(rs), 1);
	/* replace: the old one is released, the new one held */
	ck_assert_int_eq(retain_set(rs, m2), 0);
	ck_assert_uint_eq(m1->refs, 1);
	ck_assert_uint_eq(m2->refs, 2);
	ck_assert_ptr_eq(retain_get(rs, bs("t")), m2);
	ck_assert_uint_eq(retain_count(rs), 1);
	/* an empty payload clears, and is not stored itself */
	ck_assert_int_eq(retain_set(rs, clr), 0);
	ck_assert_uint_eq(m2->refs, 1);
	ck_assert_uint_eq(clr->refs, 1);
	ck_assert_ptr_null(retain_get(rs, bs("t")));
	ck_assert_uint_eq(retain_count(rs), 0);
	ck_assert_uint_eq(retain_node_count(rs), 1);
	/* clearing what is not there is a no-op */
	ck_assert_int_eq(retain_set(rs, clr), 0);
	ck_assert_uint_eq(retain_count(rs), 0);
	/* retain_free drops the store's references */
	ck_assert_int_eq(retain_set(rs, m1), 0);
	ck_assert_int_eq(retain_set(rs, m2), 0); /* same topic: replaces m1 */
	ck_assert_uint_eq(m1->refs, 1);
	ck_assert_uint_eq(m2->refs, 2);
	retain_free(rs);
	ck_assert_uint_eq(m1->refs, 1);
	ck_assert_uint_eq(m2->refs, 1);
	msg_unref(m1);
	msg_unref(m2);
	msg_unref(clr);
}
END_TEST

/* Clearing prunes only the nodes nobody else needs. */
START_TEST(test_clear_prune)
{
	struct retain_store *rs = retain_new();

	ck_assert_ptr_nonnull(rs);
	put(rs, "a/b/c/d", "1");
	put(rs, "a/b", "2");
	put(rs, "a/x", "3");
	put(rs, "/", "4");
	ck_assert_uint_eq(retain_node_count(rs), 8);
	put(rs, "a", ""); /* a node without a message: nothing happens */
	put(rs, "a/b/c", "");
	ck_assert_uint_eq(retain_count(rs), 4);
	ck_assert_uint_eq(retain_node_count(rs), 8);
	put(rs, "a/b/c/d", ""); /* c and d go, b stays */
	ck_assert_uint_eq(retain_node_count(rs), 6);
	ck_assert_uint_eq(count_matches(rs, "a/#"), 2);
	put(rs, "a/b", "");
	put(rs, "a/x", "");
	put(rs, "/", "");
	ck_assert_uint_eq(retain_count(rs), 0);
	ck_assert_uint_eq(retain_node_count(rs), 1);
	ck_assert_uint_eq(count_matches(rs, "#"), 0);
	retain_free(rs);
}
END_TEST

/* ---- matching ---- */

struct row {
	const char *filter;
	const char *topic;
	bool match;
};

static const struct row spec[] = {
	/* 4.7.1.2 '#' examples; [MQTT-4.7.1-2] 3.1.1 */
	{ "sport/tennis/player1/#", "sport/tennis/player1", true },
	{ "sport/tennis/player1/#", "sport/tennis/player1/ranking", true },
	{ "sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon",
	  true },
	{ "sport/#", "sport", true }, /* '#' includes the parent level */
	{ "sport/tennis/#", "sport/tennisX", false },
	{ "#", "sport/tennis/player1", true },
	{ "#", "/", true },
	/* 4.7.1.3 '+' examples; [MQTT-4.7.1-3] 3.1.1 */
	{ "sport/tennis/+", "sport/tennis/player1", true },
	{ "sport/tennis/+", "sport/tennis/player1/ranking", false },
	{ "sport/+", "sport", false },
	{ "sport/+", "sport/", true },
	{ "+/+", "/finance", true },
	{ "/+", "/finance", true },
	{ "+", "/finance", false },
	{ "+/tennis/#", "sport/tennis/player1/ranking", true },
	{ "+/tennis/#", "sport/tennis", true },
	{ "+/#", "sport", true },
	/* empty levels are levels */
	{ "a//b", "a//b", true },
	{ "a//b", "a/b", false },
	{ "a/+/b", "a//b", true },
	{ "a/b/+", "a/b/", true },
	{ "+/+", "/", true },
	{ "+", "/", false },
	{ "/#", "/", true },
	{ "+/+/+", "//", true },
	/* [MQTT-4.7.2-1] wildcards at the first level skip $-topics */
	{ "#", "$SYS/monitor/Clients", false },
	{ "+/monitor/Clients", "$SYS/monitor/Clients", false },
	{ "$SYS/#", "$SYS/monitor/Clients", true },
	{ "$SYS/monitor/+", "$SYS/monitor/Clients", true },
	{ "$SYS/#", "$SYS", true },
	{ "+", "$SYS", false },
	{ "#", "$", false },
	{ "+/#", "$a/b", false },
	{ "a/#", "a/$x", true },
	{ "a/+", "a/$x", true },
	/* [MQTT-4.7.3-4] byte for byte */
	{ "ACCOUNTS", "Accounts", false },
	{ "Accounts payable", "Accounts payable", true },
	{ "caf\xc3\xa9", "cafe\xcc\x81", false },
	{ "sport/tennis", "sport/tennis/player1", false },
};

#define NSPEC (sizeof(spec) / sizeof(spec[0]))

START_TEST(test_spec_rows)
{
	size_t i;

	for (i = 0; i < NSPEC; i++) {
		struct retain_store *rs = retain_new();

		ck_assert_ptr_nonnull(rs);
		put(rs, spec[i].topic, "x");
		ck_assert_msg(count_matches(rs, spec[i].filter) ==
		                      spec[i].match,
		              "filter '%s' topic '%s'", spec[i].filter,
		              spec[i].topic);
		ck_assert_msg(ref_match(spec[i].filter, spec[i].topic) ==
		                      spec[i].match,
		              "reference: filter '%s' topic '%s'",
		              spec[i].filter, spec[i].topic);
		retain_free(rs);
	}
}
END_TEST

/* Every topic of the table stored at once, every filter asked. */
START_TEST(test_spec_together)
{
	struct retain_store *rs = retain_new();
	size_t i, j;

	ck_assert_ptr_nonnull(rs);
	for (i = 0; i < NSPEC; i++)
		put(rs, spec[i].topic, "x");
	for (i = 0; i < NSPEC; i++) {
		struct found f = { 0 };
		size_t want = 0;

		retain_match(rs, bs(spec[i].filter), on_msg, &f);
		for (j = 0; j < f.n; j++) {
			char t[64] = { 0 };

			memcpy(t, f.v[j]->data, f.v[j]->topic_len);
			ck_assert_msg(ref_match(spec[i].filter, t),
			              "filter '%s' gave '%s'", spec[i].filter,
			              t);
		}
		/* distinct stored topics the reference accepts */
		for (j = 0; j < NSPEC; j++) {
			size_t k;

			for (k = 0; k < j; k++)
				if (strcmp(spec[k].topic, spec[j].topic) == 0)
					break;
			want += k == j &&
			        ref_match(spec[i].filter, spec[j].topic);
		}
		ck_assert_uint_eq(f.n, want);
		free(f.v);
	}
	retain_free(rs);
}
END_TEST

/* '+' walks all children of one level; '#' a whole subtree. */
START_TEST(test_wide)
{
	struct retain_store *rs = retain_new();
	char t[32];
	unsigned i, n = 5000;

	ck_assert_ptr_nonnull(rs);
	for (i = 0; i < n; i++) {
		snprintf(t, sizeof(t), "d/%u/s", i);
		put(rs, t, "v");
		if (i % 10 == 0) {
			snprintf(t, sizeof(t), "d/%u", i);
			put(rs, t, "v");
		}
	}
	put(rs, "d", "v");
	put(rs, "e/1/s", "v");
	ck_assert_uint_eq(retain_count(rs), n + n / 10 + 2);
	ck_assert_uint_eq(count_matches(rs, "d/+/s"), n);
	ck_assert_uint_eq(count_matches(rs, "d/+"), n / 10);
	ck_assert_uint_eq(count_matches(rs, "d/#"), n + n / 10 + 1);
	ck_assert_uint_eq(count_matches(rs, "+/+/s"), n + 1);
	ck_assert_uint_eq(count_matches(rs, "#"), n + n / 10 + 2);
	ck_assert_uint_eq(count_matches(rs, "d/17/s"), 1);
	ck_assert_uint_eq(count_matches(rs, "d/17/+"), 1);
	ck_assert_uint_eq(count_matches(rs, "d/+/x"), 0);
	for (i = 0; i < n; i++) {
		snprintf(t, sizeof(t), "d/%u/s", (i * 7919) % n);
		put(rs, t, "");
	}
	ck_assert_uint_eq(count_matches(rs, "d/+/s"), 0);
	ck_assert_uint_eq(count_matches(rs, "d/+"), n / 10);
	ck_assert_uint_eq(retain_node_count(rs), 1 + 1 + n / 10 + 3);
	retain_free(rs);
}
END_TEST

/* Deep topics: neither matching nor freeing recurses per level. */
START_TEST(test_deep)
{
	size_t n = 30000, i;
	char *t = malloc(2 * n), *f = malloc(2 * n);
	struct retain_store *rs = retain_new();

	ck_assert_ptr_nonnull(t);
	ck_assert_ptr_nonnull(f);
	ck_assert_ptr_nonnull(rs);
	for (i = 0; i < n; i++) {
		t[2 * i] = 'a';
		f[2 * i] = i % 2 ? '+' : 'a';
		t[2 * i + 1] = f[2 * i + 1] = '/';
	}
	t[2 * n - 1] = f[2 * n - 1] = '\0';
	put(rs, t, "deep");
	ck_assert_ptr_nonnull(retain_get(rs, bs(t)));
	ck_assert_uint_eq(count_matches(rs, f), 1);
	ck_assert_uint_eq(count_matches(rs, "#"), 1);
	ck_assert_uint_eq(count_matches(rs, "a/+/#"), 1);
	t[2 * n - 3] = '\0'; /* a prefix: one level less */
	put(rs, t, "half");
	ck_assert_uint_eq(count_matches(rs, "#"), 2);
	retain_free(rs);
	free(t);
	free(f);
}
END_TEST

/* ---- randomized cross-check ---- */

static uint64_t rng_state;

static uint32_t
rnd(uint32_t n)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)((rng_state >> 11) % n);
}

static void
rand_topic(char *buf, size_t cap)
{
	static const char *const lv[] = { "a", "b", "c", "", "$x" };
	static const char *const first[] = { "$SYS", "$x", "$" };
	int n = 1 + (int)rnd(4), i;

	buf[0] = '\0';
	for (i = 0; i < n; i++) {
		const char *l = lv[rnd(5)];

		if (i == 0 && rnd(6) == 0)
			l = first[rnd(3)];
		if (i > 0)
			strncat(buf, "/", cap - strlen(buf) - 1);
		strncat(buf, l, cap - strlen(buf) - 1);
	}
}

static void
rand_filter(char *buf, size_t cap)
{
	static const char *const lv[] = {
		"a", "b", "c", "", "+", "$x", "$SYS"
	};
	int n = 1 + (int)rnd(4), i;

	buf[0] = '\0';
	for (i = 0; i < n; i++) {
		const char *l = lv[rnd(i == 0 ? 7 : 6)];

		if (i == n - 1 && rnd(4) == 0)
			l = "#";
		if (i > 0)
			strncat(buf, "/", cap - strlen(buf) - 1);
		strncat(buf, l, cap - strlen(buf) - 1);
	}
}

enum { MAXT = 2000, TLEN = 40 };

struct model {
	char t[MAXT][TLEN];  /* distinct topics seen */
	struct msg *m[MAXT]; /* what the store should hold, borrowed */
	size_t nt;
	size_t count;
};

static size_t
intern(struct model *md, const char *t)
{
	size_t i;

	for (i = 0; i < md->nt; i++)
		if (strcmp(md->t[i], t) == 0)
			return i;
	if (md->nt >= MAXT)
		ck_abort_msg("too many topics");
	strcpy(md->t[md->nt], t);
	return md->nt++;
}

static void
check_filter(struct retain_store *rs, struct model *md, const char *filter)
{
	struct found got = { 0 }, want = { 0 };
	size_t i;

	retain_match(rs, bs(filter), on_msg, &got);
	for (i = 0; i < md->nt; i++)
		if (md->m[i] && ref_match(filter, md->t[i]))
			on_msg(md->m[i], &want);
	found_sort(&got);
	found_sort(&want);
	/* no ck_assert in hot loops: each passing one writes a mark point */
	if (got.n != want.n)
		ck_abort_msg("filter '%s': %zu matches, want %zu", filter,
		             got.n, want.n);
	for (i = 0; i < got.n; i++)
		if (got.v[i] != want.v[i])
			ck_abort_msg("filter '%s': wrong message", filter);
	free(got.v);
	free(want.v);
}

static void
random_step(struct retain_store *rs, struct model *md)
{
	char t[TLEN];
	size_t i;
	bool clear = rnd(3) == 0;
	struct msg *m;

	rand_topic(t, sizeof(t));
	i = intern(md, t);
	m = mk(t, clear ? "" : "v");
	if (retain_set(rs, m) != 0)
		ck_abort_msg("retain_set '%s' failed", t);
	md->count += !clear && !md->m[i];
	md->count -= clear && md->m[i];
	md->m[i] = clear ? NULL : m;
	msg_unref(m);
}

START_TEST(test_random)
{
	struct model *md = calloc(1, sizeof(*md));
	struct retain_store *rs = retain_new();
	char f[TLEN];
	size_t i, step;

	ck_assert_ptr_nonnull(md);
	ck_assert_ptr_nonnull(rs);
	rng_state = 0x9e3779b97f4a7c15u ^ (uint64_t)_i;
	for (step = 0; step < 5000; step++) {
		random_step(rs, md);
		if (retain_count(rs) != md->count)
			ck_abort_msg("count %zu, want %zu", retain_count(rs),
			             md->count);
		if (step % 250 != 249)
			continue;
		for (i = 0; i < md->nt; i++)
			if (retain_get(rs, bs(md->t[i])) != md->m[i])
				ck_abort_msg("get '%s'", md->t[i]);
		for (i = 0; i < 100; i++) {
			rand_filter(f, sizeof(f));
			check_filter(rs, md, f);
		}
	}
	check_filter(rs, md, "#");
	check_filter(rs, md, "+");
	check_filter(rs, md, "$SYS/#");
	/* empty it: every node must go */
	for (i = 0; i < md->nt; i++)
		if (md->m[i])
			put(rs, md->t[i], "");
	ck_assert_uint_eq(retain_count(rs), 0);
	ck_assert_uint_eq(retain_node_count(rs), 1);
	retain_free(rs);
	free(md);
}
END_TEST

/* ---- allocation failure ---- */

static uint64_t
snapshot(struct retain_store *rs)
{
	struct found f = { 0 };
	uint64_t sum = retain_count(rs) * 1000003u + retain_node_count(rs);
	size_t i;

	retain_match(rs, bs("#"), on_msg, &f);
	found_sort(&f);
	for (i = 0; i < f.n; i++)
		sum = sum * 31 + (uintptr_t)f.v[i] + f.v[i]->refs;
	free(f.v);
	return sum;
}

/* Fails the 1st, 2nd... allocation of a set until it succeeds. */
static void
set_under_faults(struct retain_store *rs, struct msg *m, bool allocates)
{
	uint64_t before = snapshot(rs);
	uint32_t refs = m->refs;
	long k;
	int rc;

	for (k = 1;; k++) {
		fault_arm(k);
		rc = retain_set(rs, m);
		fault_off();
		if (rc == 0)
			break;
		ck_assert_int_eq(rc, ERR_NOMEM);
		ck_assert_uint_eq(snapshot(rs), before);
		ck_assert_uint_eq(m->refs, refs);
	}
	ck_assert(allocates == (k > 1));
}

START_TEST(test_fault)
{
	struct retain_store *rs;
	struct msg *m[4];
	int i;

	if (!fault_active())
		return;
	fault_arm(2);
	rs = retain_new(); /* the root fails */
	fault_off();
	ck_assert_ptr_null(rs);
	rs = retain_new();
	ck_assert_ptr_nonnull(rs);
	put(rs, "a/b", "1");
	put(rs, "a/c", "1");
	put(rs, "a/d", "1");
	put(rs, "a/e", "1");
	m[0] = mk("a/new/deep/x", "2"); /* new nodes */
	m[1] = mk("a/f", "3");          /* a's table grows 4 -> 8 */
	m[2] = mk("a/b", "4");          /* a replacement allocates nothing */
	m[3] = mk("a/c", "");           /* nor does a clear */
	set_under_faults(rs, m[0], true);
	set_under_faults(rs, m[1], true);
	set_under_faults(rs, m[2], false);
	set_under_faults(rs, m[3], false);
	ck_assert_uint_eq(retain_count(rs), 5);
	ck_assert_uint_eq(count_matches(rs, "a/+"), 4);
	for (i = 0; i < 4; i++)
		msg_unref(m[i]);
	retain_free(rs);
}
END_TEST

static Suite *
retain_suite(void)
{
	Suite *s = suite_create("broker_retain");
	TCase *tc = tcase_create("store");

	tcase_add_test(tc, test_set_get);
	tcase_add_test(tc, test_replace_refs);
	tcase_add_test(tc, test_clear_prune);
	suite_add_tcase(s, tc);
	tc = tcase_create("match");
	tcase_add_test(tc, test_spec_rows);
	tcase_add_test(tc, test_spec_together);
	tcase_add_test(tc, test_wide);
	tcase_add_test(tc, test_deep);
	suite_add_tcase(s, tc);
	tc = tcase_create("random");
	tcase_add_loop_test(tc, test_random, 0, 4);
	suite_add_tcase(s, tc);
	tc = tcase_create("fault");
	tcase_add_test(tc, test_fault);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(retain_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
