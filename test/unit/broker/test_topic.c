/*
 * Unit tests of broker/topic.c, the subscription trie: the matching rules of
 * MQTT section 4.7, add/replace/remove and pruning, many subscribers on one
 * filter, a randomized cross-check against a reference matcher, allocation
 * failures, and the memory cost of a subscription.
 */
#include <check.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/topic.h"
#include "test/unit/broker/ref_match.h"
#include "test/unit/fault.h"

/* Without the --wrap flags the wrappers are never called and the
 * fault tests pass vacuously (fault_active() says so). */

static bool
fault_active(void)
{
	struct topic_tree *t;

	fault_arm(1);
	t = topic_tree_new();
	fault_off();
	topic_tree_free(t);
	if (t)
		fprintf(stderr, "fault injection off (no --wrap=malloc)\n");
	return !t;
}

/* ---- helpers ---- */

static struct mqtt_bytes
bs(const char *s)
{
	return (struct mqtt_bytes){ (const uint8_t *)s, strlen(s) };
}

/* Records each callback as (sub, sub_id). */
struct hit {
	void *sub;
	uint32_t id;
	uint8_t qos;
};

struct hits {
	struct hit *v;
	size_t n;
	size_t cap;
};

static void
on_hit(void *sub, const struct topic_sub_opts *o, void *arg)
{
	struct hits *h = arg;

	if (h->n == h->cap) {
		h->cap = h->cap ? 2 * h->cap : 64;
		h->v = realloc(h->v, h->cap * sizeof(*h->v));
		if (!h->v)
			ck_abort_msg("out of memory");
	}
	h->v[h->n++] = (struct hit){ sub, o->sub_id, o->qos };
}

static int
hit_cmp(const void *a, const void *b)
{
	const struct hit *x = a, *y = b;

	if (x->sub != y->sub)
		return (uintptr_t)x->sub < (uintptr_t)y->sub ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

static void
hits_sort(struct hits *h)
{
	if (h->n > 0)
		qsort(h->v, h->n, sizeof(*h->v), hit_cmp);
}

static size_t
count_matches(struct topic_tree *t, const char *topic)
{
	struct hits h = { 0 };

	topic_tree_match(t, bs(topic), on_hit, &h);
	free(h.v);
	return h.n;
}

static struct topic_sub_opts
sub_opts(uint32_t id, uint8_t qos)
{
	return (struct topic_sub_opts){ .qos = qos, .sub_id = id };
}

static void
add_ok(struct topic_tree *t, const char *f, void *sub, uint32_t id)
{
	struct topic_sub_opts o = sub_opts(id, 1);

	/* no ck_assert in hot loops: each passing one writes a mark point */
	if (topic_tree_add(t, bs(f), sub, &o, NULL) != 0)
		ck_abort_msg("add '%s' failed", f);
}

/* ---- MQTT section 4.7 ---- */

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
	{ "sport/tennis/#", "sport/tennis", true },
	{ "sport/tennis/#", "sport/tennisX", false },
	{ "sport/tennis/#", "sport", false },
	{ "#", "sport/tennis/player1", true },
	{ "#", "/", true },
	{ "#", "sport", true },
	/* 4.7.1.3 '+' examples; [MQTT-4.7.1-3] 3.1.1 */
	{ "sport/tennis/+", "sport/tennis/player1", true },
	{ "sport/tennis/+", "sport/tennis/player2", true },
	{ "sport/tennis/+", "sport/tennis/player1/ranking", false },
	{ "sport/+", "sport", false },
	{ "sport/+", "sport/", true },
	{ "+/+", "/finance", true },
	{ "/+", "/finance", true },
	{ "+", "/finance", false },
	{ "+/tennis/#", "sport/tennis/player1/ranking", true },
	{ "+/tennis/#", "sport/tennis", true },
	{ "sport/+/player1", "sport/tennis/player1", true },
	{ "sport/+/player1", "sport/tennis/player2", false },
	{ "+", "sport", true },
	{ "+/+", "sport", false },
	{ "+/#", "sport", true },
	/* empty levels are levels */
	{ "a//b", "a//b", true },
	{ "a//b", "a/b", false },
	{ "a/+/b", "a//b", true },
	{ "a/b", "a/b/", false },
	{ "a/b/", "a/b/", true },
	{ "a/b/+", "a/b/", true },
	{ "/", "/", true },
	{ "+/+", "/", true },
	{ "+", "/", false },
	{ "/#", "/", true },
	{ "/#", "/a/b", true },
	{ "/#", "a", false },
	{ "+/#", "/", true },
	{ "//", "//", true },
	{ "+/+/+", "//", true },
	/* [MQTT-4.7.2-1] wildcards at the first level skip $-topics */
	{ "#", "$SYS/monitor/Clients", false },
	{ "+/monitor/Clients", "$SYS/monitor/Clients", false },
	{ "$SYS/#", "$SYS/monitor/Clients", true },
	{ "$SYS/monitor/+", "$SYS/monitor/Clients", true },
	{ "$SYS/#", "$SYS", true },
	{ "+", "$SYS", false },
	{ "#", "$", false },
	{ "+/+", "$a/b", false },
	{ "+/#", "$a/b", false },
	{ "$a/+", "$a/b", true },
	{ "a/#", "a/$x", true }, /* only the first level counts */
	{ "a/+", "a/$x", true },
	{ "+/$x", "a/$x", true },
	{ "#", "a$", true },
	/* [MQTT-4.7.3-4] byte for byte: case, spaces, no normalization */
	{ "ACCOUNTS", "Accounts", false },
	{ "Accounts payable", "Accounts payable", true },
	{ "Accounts payable", "Accounts  payable", false },
	{ "a/b", "a/b ", false },
	{ "caf\xc3\xa9", "cafe\xcc\x81", false },
	{ "caf\xc3\xa9/+", "caf\xc3\xa9/x", true },
	{ "sport/tennis/player1", "sport/tennis/player1", true },
	{ "sport/tennis/player1", "sport/tennis/player", false },
	{ "sport/tennis", "sport/tennis/player1", false },
};

#define NSPEC (sizeof(spec) / sizeof(spec[0]))

/* Each row alone in a tree; the reference must agree with the table. */
START_TEST(test_spec_rows)
{
	static int sub;
	size_t i;

	for (i = 0; i < NSPEC; i++) {
		struct topic_tree *t = topic_tree_new();

		ck_assert_ptr_nonnull(t);
		add_ok(t, spec[i].filter, &sub, 1);
		ck_assert_msg(count_matches(t, spec[i].topic) == spec[i].match,
		              "filter '%s' topic '%s'", spec[i].filter,
		              spec[i].topic);
		ck_assert_msg(ref_match(spec[i].filter, spec[i].topic) ==
		                      spec[i].match,
		              "reference: filter '%s' topic '%s'",
		              spec[i].filter, spec[i].topic);
		topic_tree_free(t);
	}
}
END_TEST

/* All the table's filters in one tree: each topic gets exactly its own. */
START_TEST(test_spec_together)
{
	static int subs[NSPEC];
	struct topic_tree *t = topic_tree_new();
	size_t i, j, k;

	ck_assert_ptr_nonnull(t);
	for (i = 0; i < NSPEC; i++)
		add_ok(t, spec[i].filter, &subs[i], (uint32_t)i);
	for (i = 0; i < NSPEC; i++) {
		struct hits h = { 0 };

		topic_tree_match(t, bs(spec[i].topic), on_hit, &h);
		hits_sort(&h);
		for (j = 0, k = 0; j < NSPEC; j++) {
			if (!ref_match(spec[j].filter, spec[i].topic))
				continue;
			ck_assert_uint_lt(k, h.n);
			ck_assert_ptr_eq(h.v[k].sub, &subs[j]);
			ck_assert_uint_eq(h.v[k].id, j);
			k++;
		}
		ck_assert_uint_eq(k, h.n);
		free(h.v);
	}
	topic_tree_free(t); /* with everything in it: ASan checks the free */
}
END_TEST

/* One subscriber, several matching filters: one call per filter. */
START_TEST(test_overlap)
{
	static int s1, s2;
	struct topic_tree *t = topic_tree_new();
	struct hits h = { 0 };

	ck_assert_ptr_nonnull(t);
	add_ok(t, "a/b", &s1, 1);
	add_ok(t, "a/+", &s1, 2);
	add_ok(t, "a/#", &s1, 3);
	add_ok(t, "+/b", &s1, 4);
	add_ok(t, "#", &s1, 5);
	add_ok(t, "a/b/#", &s1, 6);
	add_ok(t, "a/b", &s2, 7);
	topic_tree_match(t, bs("a/b"), on_hit, &h);
	hits_sort(&h);
	ck_assert_uint_eq(h.n, 7);
	ck_assert_uint_eq(topic_tree_count(t), 7);
	free(h.v);
	topic_tree_free(t);
}
END_TEST

/* ---- add, replace, remove, prune ---- */

START_TEST(test_add_replace_remove)
{
	static int s1, s2;
	struct topic_tree *t = topic_tree_new();
	struct topic_sub_opts o = sub_opts(9, 2);
	struct hits h = { 0 };
	bool replaced = true;

	ck_assert_ptr_nonnull(t);
	ck_assert_uint_eq(topic_tree_count(t), 0);
	ck_assert_uint_eq(topic_tree_node_count(t), 1);
	o.no_local = true;
	o.retain_handling = 2;
	ck_assert_int_eq(topic_tree_add(t, bs("a/+/c"), &s1, &o, &replaced), 0);
	ck_assert(!replaced);
	ck_assert_uint_eq(topic_tree_node_count(t), 4);
	/* the same (filter, sub) again replaces the options */
	o.qos = 0;
	o.sub_id = 10;
	o.no_local = false;
	ck_assert_int_eq(topic_tree_add(t, bs("a/+/c"), &s1, &o, &replaced), 0);
	ck_assert(replaced);
	ck_assert_uint_eq(topic_tree_count(t), 1);
	topic_tree_match(t, bs("a/b/c"), on_hit, &h);
	ck_assert_uint_eq(h.n, 1);
	ck_assert_uint_eq(h.v[0].id, 10);
	ck_assert_uint_eq(h.v[0].qos, 0);
	free(h.v);
	ck_assert_int_eq(topic_tree_add(t, bs("a/+/c"), &s2, &o, &replaced), 0);
	ck_assert(!replaced);
	ck_assert_uint_eq(topic_tree_count(t), 2);
	ck_assert_uint_eq(count_matches(t, "a/x/c"), 2);

	ck_assert_int_eq(topic_tree_remove(t, bs("a/+/c"), &s1), 0);
	ck_assert_int_eq(topic_tree_remove(t, bs("a/+/c"), &s1), ERR_NOTFOUND);
	ck_assert_int_eq(topic_tree_remove(t, bs("a/+"), &s2), ERR_NOTFOUND);
	ck_assert_int_eq(topic_tree_remove(t, bs("a/b/c"), &s2), ERR_NOTFOUND);
	ck_assert_int_eq(topic_tree_remove(t, bs("a/+/c/d"), &s2),
	                 ERR_NOTFOUND);
	ck_assert_uint_eq(count_matches(t, "a/x/c"), 1);
	ck_assert_uint_eq(topic_tree_node_count(t), 4);
	ck_assert_int_eq(topic_tree_remove(t, bs("a/+/c"), &s2), 0);
	ck_assert_uint_eq(topic_tree_count(t), 0);
	ck_assert_uint_eq(topic_tree_node_count(t), 1);
	ck_assert_uint_eq(count_matches(t, "a/x/c"), 0);
	topic_tree_free(t);
}
END_TEST

/* Removing the last subscriber prunes only the nodes nobody else needs. */
START_TEST(test_prune)
{
	static int s;
	static const char *const f[] = { "a/b/c", "a/b", "a/+/#",
		                         "a/#",   "#",   "+",
		                         "/",     "a//", "a/b/c/d/e/f/g",
		                         "x" };
	struct topic_tree *t = topic_tree_new();
	size_t i, n = sizeof(f) / sizeof(f[0]);

	ck_assert_ptr_nonnull(t);
	for (i = 0; i < n; i++)
		add_ok(t, f[i], &s, (uint32_t)i);
	ck_assert_uint_eq(topic_tree_count(t), n);
	/* a/b/c/d/e/f/g, then a/b/c: the deep chain goes, a/b stays */
	ck_assert_int_eq(topic_tree_remove(t, bs("a/b/c/d/e/f/g"), &s), 0);
	ck_assert_uint_eq(count_matches(t, "a/b/c"), 4); /* a/b/c a/+/# a/# # */
	ck_assert_int_eq(topic_tree_remove(t, bs("a/b/c"), &s), 0);
	ck_assert_uint_eq(count_matches(t, "a/b"), 4); /* a/b a/+/# a/# # */
	for (i = 0; i < n; i++)
		topic_tree_remove(t, bs(f[i]), &s);
	ck_assert_uint_eq(topic_tree_count(t), 0);
	ck_assert_uint_eq(topic_tree_node_count(t), 1);
	topic_tree_free(t);
}
END_TEST

/* Many children under one node: the tables grow, then shrink again. */
START_TEST(test_wide)
{
	static int s;
	struct topic_tree *t = topic_tree_new();
	char f[32];
	uint32_t i, n = 20000;

	ck_assert_ptr_nonnull(t);
	for (i = 0; i < n; i++) {
		snprintf(f, sizeof(f), "dev/%u/state", (unsigned)i);
		add_ok(t, f, &s, i);
	}
	ck_assert_uint_eq(topic_tree_count(t), n);
	ck_assert_uint_eq(topic_tree_node_count(t), 2 + 2 * n);
	for (i = 0; i < n; i += 97) {
		struct hits h = { 0 };

		snprintf(f, sizeof(f), "dev/%u/state", (unsigned)i);
		topic_tree_match(t, bs(f), on_hit, &h);
		ck_assert_uint_eq(h.n, 1);
		ck_assert_uint_eq(h.v[0].id, i);
		free(h.v);
	}
	ck_assert_uint_eq(count_matches(t, "dev/20000/state"), 0);
	/* remove in an order unrelated to insertion */
	for (i = 0; i < n; i++) {
		uint32_t k = (uint32_t)(((uint64_t)i * 7919) % n);

		snprintf(f, sizeof(f), "dev/%u/state", (unsigned)k);
		if (topic_tree_remove(t, bs(f), &s) != 0)
			ck_abort_msg("remove '%s' failed", f);
		if (i % 1000 == 0) {
			uint32_t r = (uint32_t)(((uint64_t)(i + 1) * 7919) % n);

			snprintf(f, sizeof(f), "dev/%u/state", (unsigned)r);
			ck_assert_uint_eq(count_matches(t, f), 1);
		}
	}
	ck_assert_uint_eq(topic_tree_node_count(t), 1);
	topic_tree_free(t);
}
END_TEST

/* 100,000 subscribers on one filter: adding and removing stay O(1). */
START_TEST(test_fanout)
{
	enum { N = 100000 };
	static char subs[N];
	static uint8_t seen[N];
	struct topic_tree *t = topic_tree_new();
	struct topic_sub_opts o;
	struct hits h = { 0 };
	bool replaced;
	size_t i;

	ck_assert_ptr_nonnull(t);
	for (i = 0; i < N; i++)
		add_ok(t, "fan/out", &subs[i], (uint32_t)i);
	ck_assert_uint_eq(topic_tree_count(t), N);
	for (i = 0; i < N; i += 3) {
		o = sub_opts((uint32_t)i, 2);
		if (topic_tree_add(t, bs("fan/out"), &subs[i], &o, &replaced) ||
		    !replaced)
			ck_abort_msg("replace %zu", i);
	}
	ck_assert_uint_eq(topic_tree_count(t), N);
	topic_tree_match(t, bs("fan/out"), on_hit, &h);
	ck_assert_uint_eq(h.n, N);
	for (i = 0; i < h.n; i++) {
		size_t k = (size_t)((char *)h.v[i].sub - subs);

		if (h.v[i].id != k || h.v[i].qos != (k % 3 == 0 ? 2 : 1) ||
		    seen[k]++)
			ck_abort_msg("bad hit for sub %zu", k);
	}
	free(h.v);
	/* remove the odd ones in a scattered order */
	for (i = 0; i < N / 2; i++) {
		size_t k = 2 * ((i * 7919) % (N / 2)) + 1;

		if (topic_tree_remove(t, bs("fan/out"), &subs[k]) != 0)
			ck_abort_msg("remove %zu", k);
	}
	ck_assert_uint_eq(topic_tree_count(t), N / 2);
	ck_assert_uint_eq(count_matches(t, "fan/out"), N / 2);
	ck_assert_int_eq(topic_tree_remove(t, bs("fan/out"), &subs[1]),
	                 ERR_NOTFOUND);
	for (i = 0; i < N; i += 2)
		if (topic_tree_remove(t, bs("fan/out"), &subs[i]) != 0)
			ck_abort_msg("remove %zu", i);
	ck_assert_uint_eq(topic_tree_count(t), 0);
	ck_assert_uint_eq(topic_tree_node_count(t), 1);
	topic_tree_free(t);
}
END_TEST

/* Deep filters and topics: nothing recurses per level. */
START_TEST(test_deep)
{
	static int s;
	size_t n = 30000, i;
	char *f = malloc(2 * n), *tp = malloc(2 * n);
	struct topic_tree *t = topic_tree_new();

	ck_assert_ptr_nonnull(f);
	ck_assert_ptr_nonnull(tp);
	ck_assert_ptr_nonnull(t);
	for (i = 0; i < n; i++) {
		f[2 * i] = i % 2 ? '+' : 'a';
		tp[2 * i] = 'a';
		f[2 * i + 1] = tp[2 * i + 1] = '/';
	}
	f[2 * n - 1] = tp[2 * n - 1] = '\0';
	add_ok(t, f, &s, 1);
	add_ok(t, tp, &s, 2);
	ck_assert_uint_eq(count_matches(t, tp), 2);
	f[2 * n - 2] = '#';
	add_ok(t, f, &s, 3);
	ck_assert_uint_eq(count_matches(t, tp), 3);
	topic_tree_free(t); /* frees a 30000-deep tree */
	free(f);
	free(tp);
}
END_TEST

START_TEST(test_limits)
{
	static int s;
	struct topic_tree *t = topic_tree_new();
	char *f = malloc(65537);
	struct topic_sub_opts o = sub_opts(1, 0);

	ck_assert_ptr_nonnull(t);
	ck_assert_ptr_nonnull(f);
	/* [MQTT-4.7.3-3] one level of 65535 bytes is fine, 65536 is not */
	memset(f, 'x', 65536);
	f[65535] = '\0';
	add_ok(t, f, &s, 1);
	ck_assert_uint_eq(count_matches(t, f), 1);
	f[65535] = 'x';
	f[65536] = '\0';
	ck_assert_int_eq(topic_tree_add(t, bs(f), &s, &o, NULL), ERR_TOO_LARGE);
	ck_assert_uint_eq(count_matches(t, f), 0);
	ck_assert_uint_eq(topic_tree_count(t), 1);
	free(f);
	topic_tree_free(t);
	topic_tree_free(NULL);
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

/* Random topic: 1..4 levels of a small alphabet, some $-topics. */
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

/* Random valid filter: 1..4 levels, '+' anywhere, '#' last. */
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

enum { MAXF = 3000, NSUB = 8, FLEN = 40 };

struct model {
	char f[MAXF][FLEN]; /* distinct filters seen */
	size_t nf;
	bool live[MAXF][NSUB]; /* (filter, sub) subscribed */
	size_t count;
	char subs[NSUB];
};

static uint32_t
intern(struct model *m, const char *f)
{
	size_t i;

	for (i = 0; i < m->nf; i++)
		if (strcmp(m->f[i], f) == 0)
			return (uint32_t)i;
	if (m->nf >= MAXF)
		ck_abort_msg("too many filters");
	strcpy(m->f[m->nf], f);
	return (uint32_t)m->nf++;
}

static void
check_topic(struct topic_tree *t, struct model *m, const char *topic)
{
	struct hits h = { 0 }, want = { 0 };
	struct topic_sub_opts o = { 0 };
	size_t i, k;
	int s;

	topic_tree_match(t, bs(topic), on_hit, &h);
	hits_sort(&h);
	for (i = 0; i < m->nf; i++) {
		if (!ref_match(m->f[i], topic))
			continue;
		o.sub_id = (uint32_t)i;
		for (s = 0; s < NSUB; s++)
			if (m->live[i][s])
				on_hit(&m->subs[s], &o, &want);
	}
	hits_sort(&want);
	/* no ck_assert in hot loops: each passing one writes a mark point */
	for (k = 0; k < h.n && k < want.n; k++)
		if (h.v[k].sub != want.v[k].sub || h.v[k].id != want.v[k].id)
			ck_abort_msg("topic '%s': got '%s' want '%s'", topic,
			             m->f[h.v[k].id], m->f[want.v[k].id]);
	if (h.n != want.n)
		ck_abort_msg("topic '%s': %zu matches, want %zu", topic, h.n,
		             want.n);
	free(h.v);
	free(want.v);
}

static void
random_step(struct topic_tree *t, struct model *m)
{
	char f[FLEN];
	uint32_t i, s = rnd(NSUB);
	struct topic_sub_opts o;
	bool replaced;

	rand_filter(f, sizeof(f));
	i = intern(m, f);
	o = sub_opts(i, (uint8_t)rnd(3));
	if (rnd(3) == 0) {
		if (topic_tree_remove(t, bs(f), &m->subs[s]) !=
		    (m->live[i][s] ? 0 : ERR_NOTFOUND))
			ck_abort_msg("remove '%s' sub %u", f, (unsigned)s);
		m->count -= m->live[i][s];
		m->live[i][s] = false;
		return;
	}
	if (topic_tree_add(t, bs(f), &m->subs[s], &o, &replaced) != 0 ||
	    replaced != m->live[i][s])
		ck_abort_msg("add '%s' sub %u", f, (unsigned)s);
	m->count += !m->live[i][s];
	m->live[i][s] = true;
}

START_TEST(test_random)
{
	struct model *m = calloc(1, sizeof(*m));
	struct topic_tree *t = topic_tree_new();
	char topic[FLEN];
	size_t i, step;
	int s;

	ck_assert_ptr_nonnull(m);
	ck_assert_ptr_nonnull(t);
	rng_state = 0x9e3779b97f4a7c15u ^ (uint64_t)_i;
	for (step = 0; step < 6000; step++) {
		random_step(t, m);
		if (topic_tree_count(t) != m->count)
			ck_abort_msg("count %zu, want %zu", topic_tree_count(t),
			             m->count);
		if (step % 250 != 249)
			continue;
		for (i = 0; i < 60; i++) {
			rand_topic(topic, sizeof(topic));
			check_topic(t, m, topic);
		}
	}
	/* every filter seen, against a few fixed topics */
	check_topic(t, m, "a");
	check_topic(t, m, "/");
	check_topic(t, m, "$SYS");
	check_topic(t, m, "$SYS/a");
	/* empty it: every node must go */
	for (i = 0; i < m->nf; i++)
		for (s = 0; s < NSUB; s++)
			if (m->live[i][s])
				ck_assert_int_eq(topic_tree_remove(t,
				                                   bs(m->f[i]),
				                                   &m->subs[s]),
				                 0);
	ck_assert_uint_eq(topic_tree_count(t), 0);
	ck_assert_uint_eq(topic_tree_node_count(t), 1);
	topic_tree_free(t);
	free(m);
}
END_TEST

/* ---- allocation failure ---- */

/* A fingerprint of what the tree matches for a few topics. */
static uint64_t
snapshot(struct topic_tree *t)
{
	static const char *const topics[] = { "a/b", "a/e", "a/new/deep/x/y",
		                              "x", "a" };
	uint64_t sum =
	        topic_tree_count(t) * 1000003u + topic_tree_node_count(t);
	size_t i, j;

	for (i = 0; i < sizeof(topics) / sizeof(topics[0]); i++) {
		struct hits h = { 0 };

		topic_tree_match(t, bs(topics[i]), on_hit, &h);
		hits_sort(&h);
		for (j = 0; j < h.n; j++)
			sum = sum * 31 + h.v[j].id * 7 + h.v[j].qos +
			      (uintptr_t)h.v[j].sub;
		free(h.v);
	}
	return sum;
}

/* Fails the 1st, 2nd... allocation of an add until it succeeds. */
static void
add_under_faults(struct topic_tree *t, const char *f, void *sub, uint32_t id)
{
	struct topic_sub_opts o = sub_opts(id, 2);
	uint64_t before = snapshot(t);
	long k;
	int rc;

	for (k = 1;; k++) {
		fault_arm(k);
		rc = topic_tree_add(t, bs(f), sub, &o, NULL);
		fault_off();
		if (rc == 0)
			break;
		ck_assert_int_eq(rc, ERR_NOMEM);
		ck_assert_uint_eq(snapshot(t), before);
	}
	ck_assert_msg(k > 1 || strcmp(f, "a/b") == 0,
	              "adding '%s' allocated nothing", f);
}

START_TEST(test_fault_add)
{
	static int s1, s2;
	struct topic_tree *t;

	if (!fault_active())
		return;
	fault_arm(2);
	t = topic_tree_new(); /* the root fails */
	fault_off();
	ck_assert_ptr_null(t);
	t = topic_tree_new();
	ck_assert_ptr_nonnull(t);
	add_ok(t, "a/b", &s1, 1);
	add_ok(t, "a/c", &s1, 2);
	add_ok(t, "a/d", &s1, 3);
	add_ok(t, "a/x", &s1, 4);
	add_ok(t, "x", &s1, 5);
	add_under_faults(t, "a/new/deep/+/#", &s1, 6); /* new nodes */
	add_under_faults(t, "a/e", &s1, 7); /* a's table grows 4 -> 8 */
	add_under_faults(t, "x", &s2, 8);   /* x's subscribers grow 1 -> 2 */
	add_under_faults(t, "a/b", &s1,
	                 9); /* a replacement allocates nothing */
	ck_assert_uint_eq(topic_tree_count(t), 8);
	ck_assert_uint_eq(count_matches(t, "a/e"), 1);
	ck_assert_uint_eq(count_matches(t, "x"), 2);
	ck_assert_uint_eq(count_matches(t, "a/new/deep/x/y"), 1);
	topic_tree_free(t);
}
END_TEST

/* Removal never fails, even when shrinking a table cannot allocate. */
START_TEST(test_fault_remove)
{
	static int subs[64];
	struct topic_tree *t;
	char f[16];
	int i;

	if (!fault_active())
		return;
	t = topic_tree_new();
	ck_assert_ptr_nonnull(t);
	for (i = 0; i < 64; i++) {
		snprintf(f, sizeof(f), "k/%d", i);
		add_ok(t, f, &subs[0], (uint32_t)i);
		add_ok(t, "s", &subs[i], (uint32_t)i);
	}
	for (i = 0; i < 64; i++) {
		int rc1, rc2;

		snprintf(f, sizeof(f), "k/%d", i);
		fault_arm(1); /* not around ck_assert: Check allocates too */
		rc1 = topic_tree_remove(t, bs(f), &subs[0]);
		fault_arm(1);
		rc2 = topic_tree_remove(t, bs("s"), &subs[i]);
		fault_off();
		ck_assert_int_eq(rc1, 0);
		ck_assert_int_eq(rc2, 0);
		if (i + 1 < 64) {
			snprintf(f, sizeof(f), "k/%d", i + 1);
			ck_assert_uint_eq(count_matches(t, f), 1);
		}
		ck_assert_uint_eq(count_matches(t, "s"), (size_t)(63 - i));
	}
	ck_assert_uint_eq(topic_tree_node_count(t), 1);
	topic_tree_free(t);
}
END_TEST

/* ---- memory ---- */

static const char *const shapes[] = {
	"dev/<i>",                   /* one level under a prefix */
	"site/<i/100>/dev/<i>/temp", /* deeper, with shared prefixes */
	"a/b/c/<i/100>/+/<i>/#",     /* wildcards */
};

static void
shape_filter(char *f, size_t cap, size_t shape, unsigned i)
{
	switch (shape) {
	case 0:
		snprintf(f, cap, "dev/%u", i);
		break;
	case 1:
		snprintf(f, cap, "site/%u/dev/%u/temp", i / 100, i);
		break;
	default:
		snprintf(f, cap, "a/b/c/%u/+/%u/#", i / 100, i);
		break;
	}
}

/* Heap bytes per subscription for n distinct filters of one shape. */
static double
bytes_per_sub(size_t shape, size_t n)
{
	static int s;
	struct mallinfo2 a, b;
	struct topic_tree *t;
	char f[64];
	size_t i;

	a = mallinfo2();
	t = topic_tree_new();
	ck_assert_ptr_nonnull(t);
	for (i = 0; i < n; i++) {
		shape_filter(f, sizeof(f), shape, (unsigned)i);
		add_ok(t, f, &s, 1);
	}
	b = mallinfo2();
	ck_assert_uint_eq(topic_tree_count(t), n);
	topic_tree_free(t);
	return ((double)b.uordblks - (double)a.uordblks) / (double)n;
}

START_TEST(test_memory)
{
	size_t i, n = 100000;

	for (i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
		double per = bytes_per_sub(i, n);

		fprintf(stderr,
		        "topic tree: %.1f heap bytes per subscription "
		        "(%zu filters like '%s')\n",
		        per, n, shapes[i]);
		/* under ASan mallinfo2 does not see the heap: per is ~0 */
		if (per > 1.0)
			ck_assert_double_lt(per, 400.0);
	}
}
END_TEST

static Suite *
topic_suite(void)
{
	Suite *s = suite_create("broker_topic");
	TCase *tc = tcase_create("match");

	tcase_add_test(tc, test_spec_rows);
	tcase_add_test(tc, test_spec_together);
	tcase_add_test(tc, test_overlap);
	suite_add_tcase(s, tc);
	tc = tcase_create("update");
	tcase_add_test(tc, test_add_replace_remove);
	tcase_add_test(tc, test_prune);
	tcase_add_test(tc, test_wide);
	tcase_add_test(tc, test_fanout);
	tcase_add_test(tc, test_deep);
	tcase_add_test(tc, test_limits);
	suite_add_tcase(s, tc);
	tc = tcase_create("random");
	tcase_add_loop_test(tc, test_random, 0, 4);
	suite_add_tcase(s, tc);
	tc = tcase_create("fault");
	tcase_add_test(tc, test_fault_add);
	tcase_add_test(tc, test_fault_remove);
	suite_add_tcase(s, tc);
	tc = tcase_create("memory");
	tcase_add_test(tc, test_memory);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(topic_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
