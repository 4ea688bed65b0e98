/*
 * Unit tests of storage/: open, create and reopen on a temp dir, the schema
 * check, record round trips, queue order, deletion, payload sharing and
 * refcounts, group commit, completion order through the notify fd, map
 * growth up to max_size, a damaged data file and durability none.
 */
#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <lmdb.h>

#include "storage/storage.h"
#include "storage/storage_int.h"
#include "test/unit/fault.h"

static char dir[64];   /* the test's data dir */
static char path[128]; /* scratch path */

static struct mqtt_bytes
bs(const char *s)
{
	return (struct mqtt_bytes){ (const uint8_t *)s, strlen(s) };
}

static bool
bytes_eq(struct mqtt_bytes a, const char *s)
{
	return a.len == strlen(s) && memcmp(a.p, s, a.len) == 0;
}

static const char *
file_in(const char *name)
{
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return path;
}

static void
setup(void)
{
	strcpy(dir, "/tmp/mqd-store-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void
teardown(void)
{
	unlink(file_in("data.mdb"));
	unlink(file_in("lock.mdb"));
	rmdir(dir);
}

static struct store_config
config(enum store_durability d)
{
	struct store_config c = { 0 };

	c.data_dir = dir;
	c.node_name = "n1";
	c.durability = d;
	return c;
}

static struct store *
open_ok(const struct store_config *c)
{
	const char *why = NULL;
	struct store *s = NULL;
	int rc = store_open(c, &s, &why);

	ck_assert_msg(rc == 0, "store_open: %s (%s)", err_str(rc),
	              why ? why : "-");
	ck_assert_ptr_nonnull(s);
	return s;
}

/* Completion recorder. */
struct done {
	int n;          /* completions seen */
	int err;        /* last error */
	int order[256]; /* tags in completion order (first 256) */
};

struct tag {
	struct done *d;
	int tag;
};

static void
on_done(void *arg, int err)
{
	struct done *d = arg;

	d->err = err;
	d->n++;
}

static void
on_done_tag(void *arg, int err)
{
	struct tag *t = arg;

	if (t->d->n < 256)
		t->d->order[t->d->n] = t->tag;
	t->d->err = err;
	t->d->n++;
}

static uint64_t
ms_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Waits on the notify fd, like the loop would, until d->n reaches want. */
static void
wait_done(struct store *s, struct done *d, int want)
{
	struct pollfd pfd = { store_notify_fd(s), POLLIN, 0 };
	uint64_t end = ms_now() + 30000;

	while (d->n < want) {
		ck_assert_msg(ms_now() < end, "timed out: %d of %d", d->n,
		              want);
		if (poll(&pfd, 1, 100) > 0)
			store_poll_completions(s);
	}
}

/* Submits b and waits for its completion; returns its err. */
static int
commit(struct store *s, struct store_batch *b)
{
	struct done d = { 0 };
	int rc = store_submit(s, b, on_done, &d);

	if (rc != 0)
		return rc;
	wait_done(s, &d, 1);
	return d.err;
}

static size_t
count(struct store *s, enum store_db db)
{
	size_t n = 99999999;

	ck_assert_int_eq(store_count(s, db, &n), 0);
	return n;
}

START_TEST(test_open_create_reopen)
{
	struct store_config c = config(STORE_DURABILITY_SYNC);
	char sub[96];
	struct store *s;
	uint64_t id;

	/* a missing data dir is created */
	snprintf(sub, sizeof(sub), "%s/data", dir);
	c.data_dir = sub;
	s = open_ok(&c);
	id = store_node_id(s);
	ck_assert_uint_ne(id, 0);
	ck_assert(bytes_eq(store_node_name(s), "n1"));
	ck_assert_uint_eq(store_schema_version(s), STORE_SCHEMA_VERSION);
	store_close(s);

	c.node_name = NULL; /* keeps the stored name */
	s = open_ok(&c);
	ck_assert_uint_eq(store_node_id(s), id);
	ck_assert(bytes_eq(store_node_name(s), "n1"));
	store_close(s);

	c.node_name = "renamed";
	s = open_ok(&c);
	ck_assert_uint_eq(store_node_id(s), id);
	ck_assert(bytes_eq(store_node_name(s), "renamed"));
	store_close(s);

	snprintf(path, sizeof(path), "%s/data.mdb", sub);
	unlink(path);
	snprintf(path, sizeof(path), "%s/lock.mdb", sub);
	unlink(path);
	rmdir(sub);
}
END_TEST

/* Writes meta/schema_version behind storage's back. */
static void
poke_schema(uint32_t v)
{
	uint8_t be[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16),
		          (uint8_t)(v >> 8), (uint8_t)v };
	MDB_val k = { 14, (void *)"schema_version" }, val = { 4, be };
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;

	ck_assert_int_eq(mdb_env_create(&env), 0);
	mdb_env_set_maxdbs(env, 16);
	ck_assert_int_eq(mdb_env_open(env, dir, 0, 0600), 0);
	ck_assert_int_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
	ck_assert_int_eq(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
	ck_assert_int_eq(mdb_put(txn, dbi, &k, &val, 0), 0);
	ck_assert_int_eq(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

START_TEST(test_schema_newer_refused)
{
	struct store_config c = config(STORE_DURABILITY_SYNC);
	const char *why = NULL;
	struct store *s = NULL;

	store_close(open_ok(&c));
	poke_schema(STORE_SCHEMA_VERSION + 1);
	ck_assert_int_eq(store_open(&c, &s, &why), ERR_WRONG_STATE);
	ck_assert_ptr_null(s);
	ck_assert_ptr_nonnull(why);
	ck_assert_ptr_nonnull(strstr(why, "newer"));

	poke_schema(STORE_SCHEMA_VERSION); /* the current one opens */
	s = open_ok(&c);
	ck_assert_uint_eq(store_schema_version(s), STORE_SCHEMA_VERSION);
	store_close(s);
}
END_TEST

/* --- round trips --------------------------------------------------------- */

struct seen {
	int n;
	char buf[8][1200]; /* a string per record, for comparison */
	uint64_t u[16384];
};

static int
see_retained(void *arg, const struct store_retained *r)
{
	struct seen *sn = arg;

	if (sn->n < 8)
		snprintf(sn->buf[sn->n], sizeof(sn->buf[0]),
		         "%.*s|%.*s|%.*s|%u|%llu|%llu", (int)r->topic.len,
		         (const char *)r->topic.p, (int)r->payload.len,
		         (const char *)r->payload.p, (int)r->props.len,
		         (const char *)r->props.p, r->qos,
		         (unsigned long long)r->expires_at,
		         (unsigned long long)r->stamp);
	sn->n++;
	return 0;
}

START_TEST(test_retained_roundtrip)
{
	struct store_config c = config(STORE_DURABILITY_SYNC);
	struct store_retained r = { 0 };
	struct seen *sn = calloc(1, sizeof(*sn));
	struct store_batch *b;
	struct store *s;
	int i;

	s = open_ok(&c);
	b = store_batch_new();
	r.topic = bs("a/b");
	r.payload = bs("hello");
	r.props = bs("\x02\x00\x00\x00\x3c");
	r.qos = 1;
	r.expires_at = 1700000000123ULL;
	r.stamp = 42;
	ck_assert_int_eq(store_batch_retained_put(b, &r), 0);
	r.topic = bs("a/c");
	r.payload = bs("");
	r.props = bs("");
	r.qos = 0;
	r.expires_at = 0;
	r.stamp = 0;
	ck_assert_int_eq(store_batch_retained_put(b, &r), 0);
	ck_assert_uint_eq(store_batch_count(b), 2);
	ck_assert_int_eq(commit(s, b), 0);
	store_close(s);

	for (i = 0; i < 2; i++) { /* after reopen, and again */
		s = open_ok(&c);
		sn->n = 0;
		ck_assert_int_eq(store_load_retained(s, see_retained, sn), 0);
		ck_assert_int_eq(sn->n, 2);
		ck_assert_str_eq(sn->buf[0],
		                 "a/b|hello|\x02|1|1700000000123|42");
		ck_assert_str_eq(sn->buf[1], "a/c|||0|0|0");
		store_close(s);
	}
	free(sn);
}
END_TEST

START_TEST(test_retained_long_topics)
{
	struct store_config c = config(STORE_DURABILITY_SYNC);
	struct store_retained r = { 0 };
	struct seen *sn = calloc(1, sizeof(*sn));
	char t1[1001], t2[1001];
	struct store_batch *b;
	struct store *s;

	/* over LMDB's key limit, equal for the first 999 bytes */
	memset(t1, 'x', 1000);
	memcpy(t2, t1, 1000);
	t1[999] = '1';
	t2[999] = '2';
	t1[1000] = t2[1000] = '\0';
	s = open_ok(&c);
	b = store_batch_new();
	r.topic = bs(t1);
	r.payload = bs("one");
	store_batch_retained_put(b, &r);
	r.topic = bs(t2);
	r.payload = bs("two");
	store_batch_retained_put(b, &r);
	ck_assert_int_eq(commit(s, b), 0);
	ck_assert_uint_eq(count(s, STORE_DB_RETAINED), 2);
	b = store_batch_new();
	store_batch_retained_del(b, bs(t1));
	ck_assert_int_eq(commit(s, b), 0);
	ck_assert_int_eq(store_load_retained(s, see_retained, sn), 0);
	ck_assert_int_eq(sn->n, 1);
	ck_assert_ptr_nonnull(strstr(sn->buf[0], "2|two|"));
	store_close(s);
	free(sn);
}
END_TEST

static int
see_session(void *arg, const struct store_session *ss)
{
	struct seen *sn = arg;

	if (sn->n < 8)
		snprintf(sn->buf[sn->n], sizeof(sn->buf[0]),
		         "%.*s|%u|%u|%llu|%u|%d|%u|%d|%u|%.*s|%.*s|%.*s",
		         (int)ss->client_id.len, (const char *)ss->client_id.p,
		         ss->version, ss->expiry_interval,
		         (unsigned long long)ss->expires_at, ss->next_packet_id,
		         ss->has_will, ss->will_qos, ss->will_retain,
		         ss->will_delay, (int)ss->will_topic.len,
		         (const char *)ss->will_topic.p,
		         (int)ss->will_payload.len,
		         (const char *)ss->will_payload.p,
		         (int)ss->will_props.len,
		         (const char *)ss->will_props.p);
	sn->n++;
	return 0;
}

static int
see_sub(void *arg, const struct store_sub *sub)
{
	struct seen *sn = arg;

	if (sn->n < 8)
		snprintf(sn->buf[sn->n], sizeof(sn->buf[0]), "%.*s|%.*s|%u|%u",
		         (int)sub->client_id.len,
		         (const char *)sub->client_id.p, (int)sub->filter.len,
		         (const char *)sub->filter.p, sub->options,
		         sub->sub_id);
	sn->n++;
	return 0;
}

static int
see_inflight(void *arg, const struct store_inflight *f)
{
	struct seen *sn = arg;

	if (sn->n < 8)
		snprintf(sn->buf[sn->n], sizeof(sn->buf[0]),
		         "%.*s|%u|%u|%u|%u|%d|%llu", (int)f->client_id.len,
		         (const char *)f->client_id.p, f->dir, f->packet_id,
		         f->state, f->qos, f->retain,
		         (unsigned long long)f->msg_id);
	sn->n++;
	return 0;
}

static void
put_payload(struct store_batch *b, uint64_t id, const char *body)
{
	struct store_payload p = { 0 };

	p.msg_id = id;
	p.topic = bs("t/x");
	p.payload = bs(body);
	p.props = bs("");
	p.qos = 2;
	p.retain = true;
	p.expires_at = 77;
	ck_assert_int_eq(store_batch_payload_put(b, &p), 0);
}

static void
put_queue(struct store_batch *b, const char *cid, uint64_t seq, uint64_t msg_id)
{
	struct store_queue_entry q = { 0 };

	q.client_id = bs(cid);
	q.seq = seq;
	q.msg_id = msg_id;
	q.qos = 1;
	q.n_sub_ids = 2;
	q.sub_ids[0] = 7;
	q.sub_ids[1] = 268435455;
	ck_assert_int_eq(store_batch_queue_put(b, &q), 0);
}

START_TEST(test_session_sub_inflight_roundtrip)
{
	struct store_config c = config(STORE_DURABILITY_SYNC);
	struct seen *sn = calloc(1, sizeof(*sn));
	struct store_session ss = { 0 };
	struct store_sub sub = { 0 };
	struct store_inflight f = { 0 };
	struct store_batch *b;
	struct store *s;

	s = open_ok(&c);
	b = store_batch_new();
	ss.client_id = bs("c1");
	ss.version = 5;
	ss.expiry_interval = 3600;
	ss.expires_at = 1700000000000ULL;
	ss.next_packet_id = 65535;
	ss.has_will = true;
	ss.will_qos = 2;
	ss.will_retain = true;
	ss.will_delay = 30;
	ss.will_topic = bs("will/t");
	ss.will_payload = bs("bye");
	ss.will_props = bs("\x01\x01");
	ck_assert_int_eq(store_batch_session_put(b, &ss), 0);
	sub.client_id = bs("c1");
	sub.filter = bs("$share/g/a/+");
	sub.options = 0x2e;
	sub.sub_id = 99;
	ck_assert_int_eq(store_batch_sub_put(b, &sub), 0);
	sub.filter = bs("#");
	sub.options = 1;
	sub.sub_id = 0;
	ck_assert_int_eq(store_batch_sub_put(b, &sub), 0);
	put_payload(b, 5, "body");
	f.client_id = bs("c1");
	f.dir = STORE_INFLIGHT_OUT;
	f.packet_id = 513;
	f.state = STORE_INFLIGHT_PUBREC;
	f.qos = 2;
	f.msg_id = 5;
	ck_assert_int_eq(store_batch_inflight_put(b, &f), 0);
	f.dir = STORE_INFLIGHT_IN;
	f.packet_id = 1;
	f.state = STORE_INFLIGHT_PUBREL;
	f.msg_id = 0;
	ck_assert_int_eq(store_batch_inflight_put(b, &f), 0);
	ck_assert_int_eq(commit(s, b), 0);
	store_close(s);

	s = open_ok(&c);
	ck_assert_int_eq(store_load_sessions(s, see_session, sn), 0);
	ck_assert_int_eq(sn->n, 1);
	ck_assert_str_eq(sn->buf[0], "c1|5|3600|1700000000000|65535|1|2|1|30|"
	                             "will/t|bye|\x01\x01");
	sn->n = 0;
	ck_assert_int_eq(store_load_subs(s, bs("c1"), see_sub, sn), 0);
	ck_assert_int_eq(sn->n, 2);
	ck_assert_str_eq(sn->buf[0], "c1|#|1|0");
	ck_assert_str_eq(sn->buf[1], "c1|$share/g/a/+|46|99");
	sn->n = 0;
	ck_assert_int_eq(store_load_inflight(s, bs("c1"), see_inflight, sn), 0);
	ck_assert_int_eq(sn->n, 2);
	ck_assert_str_eq(sn->buf[0], "c1|0|513|1|2|0|5");
	ck_assert_str_eq(sn->buf[1], "c1|1|1|2|2|0|0");
	ck_assert_uint_eq(count(s, STORE_DB_PAYLOADS), 1);
	store_close(s);
	free(sn);
}
END_TEST

static int
see_queue(void *arg, const struct store_queue_entry *q)
{
	struct seen *sn = arg;

	ck_assert_uint_eq(q->n_sub_ids, 2);
	ck_assert_uint_eq(q->sub_ids[1], 268435455);
	if (sn->n < 16384)
		sn->u[sn->n] = q->seq;
	if (sn->n < 8)
		snprintf(sn->buf[sn->n], sizeof(sn->buf[0]), "%.*s",
		         (int)q->client_id.len, (const char *)q->client_id.p);
	sn->n++;
	return 0;
}

START_TEST(test_queue_order)
{
	struct store_config c = config(STORE_DURABILITY_SYNC);
	struct seen *sn = calloc(1, sizeof(*sn));
	struct store_batch *b;
	struct store *s;
	uint64_t seq;
	int i;

	s = open_ok(&c);
	b = store_batch_new();
	put_payload(b, 1, "m");
	/* seqs in a scrambled order, crossing byte boundaries */
	for (i = 0; i < 300; i++) {
		seq = (uint64_t)((i * 7919) % 300) * 257;
		put_queue(b, "a", seq, 1);
	}
	put_queue(b, "ab", 5, 1); /* "a" is a prefix of "ab" */
	put_queue(b, "a", UINT64_MAX, 1);
	ck_assert_int_eq(commit(s, b), 0);

	ck_assert_int_eq(store_load_queue(s, bs("a"), see_queue, sn), 0);
	ck_assert_int_eq(sn->n, 301);
	for (i = 0; i < 300; i++)
		ck_assert_uint_eq(sn->u[i], (uint64_t)i * 257);
	ck_assert_uint_eq(sn->u[300], UINT64_MAX);
	ck_assert_str_eq(sn->buf[0], "a");
	sn->n = 0;
	ck_assert_int_eq(store_load_queue(s, bs("ab"), see_queue, sn), 0);
	ck_assert_int_eq(sn->n, 1);
	ck_assert_uint_eq(sn->u[0], 5);
	sn->n = 0;
	ck_assert_int_eq(store_load_queue(s, bs(""), see_queue, sn), 0);
	ck_assert_int_eq(sn->n, 302);
	store_close(s);
	free(sn);
}
END_TEST

static int
stop_at_two(void *arg, const struct store_queue_entry *q)
{
	int *n = arg;

	(void)q;
	return ++*n == 2 ? 1234 : 0;
}

START_TEST(test_load_stops_on_callback)
{
	struct store_config c = config(STORE_DURABILITY_SYNC);
	struct store_batch *b;
	struct store *s;
	int n = 0;

	s = open_ok(&c);
	b = store_batch_new();
	put_payload(b, 1, "m");
	put_queue(b, "a", 1, 1);
	put_queue(b, "a", 2, 1);
	put_queue(b, "a", 3, 1);
	ck_assert_int_eq(commit(s, b), 0);
	ck_assert_int_eq(store_load_queue(s, bs("a"), stop_at_two, &n), 1234);
	ck_assert_int_eq(n, 2);
	store_close(s);
}
END_TEST

START_TEST(test_delete)
{
	struct store_config c = config(STORE_DURABILITY_SYNC);
	struct store_retained r = { 0 };
	struct store_session ss = { 0 };
	struct store_sub sub = { 0 };
	struct store_inflight f = { 0 };
	struct store_batch *b;
	struct store *s;

	s = open_ok(&c);
	b = store_batch_new();
	r.topic = bs("r");
	store_batch_retained_put(b, &r);
	ss.client_id = bs("c1");
	store_batch_session_put(b, &ss);
	ss.client_id = bs("c2");
	store_batch_session_put(b, &ss);
	sub.client_id = bs("c1");
	sub.filter = bs("x/#");
	store_batch_sub_put(b, &sub);
	sub.filter = bs("y");
	store_batch_sub_put(b, &sub);
	sub.client_id = bs("c2");
	store_batch_sub_put(b, &sub);
	put_payload(b, 10, "p10");
	put_payload(b, 11, "p11");
	put_queue(b, "c1", 1, 10);
	put_queue(b, "c1", 2, 11);
	put_queue(b, "c2", 1, 11);
	f.client_id = bs("c1");
	f.packet_id = 9;
	f.msg_id = 10;
	store_batch_inflight_put(b, &f);
	ck_assert_int_eq(commit(s, b), 0);
	ck_assert_uint_eq(count(s, STORE_DB_SUBS), 3);
	ck_assert_uint_eq(count(s, STORE_DB_PAYLOADS), 2);

	/* single deletes; deleting what is absent is no error */
	b = store_batch_new();
	store_batch_retained_del(b, bs("r"));
	store_batch_retained_del(b, bs("absent"));
	store_batch_sub_del(b, bs("c1"), bs("y"));
	store_batch_queue_del(b, bs("c1"), 2);
	store_batch_queue_del(b, bs("c1"), 999);
	store_batch_inflight_del(b, bs("c9"), 0, 1);
	ck_assert_int_eq(commit(s, b), 0);
	ck_assert_uint_eq(count(s, STORE_DB_RETAINED), 0);
	ck_assert_uint_eq(count(s, STORE_DB_SUBS), 2);
	ck_assert_uint_eq(count(s, STORE_DB_QUEUE), 2);
	ck_assert_uint_eq(count(s, STORE_DB_PAYLOADS), 2); /* 11: c2 */

	/* a session delete takes its subs, queue and in-flight along */
	b = store_batch_new();
	store_batch_session_del(b, bs("c1"));
	ck_assert_int_eq(commit(s, b), 0);
	ck_assert_uint_eq(count(s, STORE_DB_SESSIONS), 1);
	ck_assert_uint_eq(count(s, STORE_DB_SUBS), 1);
	ck_assert_uint_eq(count(s, STORE_DB_QUEUE), 1);
	ck_assert_uint_eq(count(s, STORE_DB_INFLIGHT), 0);
	ck_assert_uint_eq(count(s, STORE_DB_PAYLOADS), 1); /* 10 dropped */

	b = store_batch_new();
	store_batch_session_del(b, bs("c2"));
	ck_assert_int_eq(commit(s, b), 0);
	ck_assert_uint_eq(count(s, STORE_DB_SESSIONS), 0);
	ck_assert_uint_eq(count(s, STORE_DB_SUBS), 0);
	ck_assert_uint_eq(count(s, STORE_DB_QUEUE), 0);
	ck_assert_uint_eq(count(s, STORE_DB_PAYLOADS), 0);
	store_close(s);
}
END_TEST

static int
see_payload(void *arg, const struct store_payload *p)
{
	struct seen *sn = arg;

	if (sn->n < 8) {
		snprintf(sn->buf[sn->n], sizeof(sn->buf[0]),
		         "%llu|%.*s|%.*s|%u|%d|%llu",
		         (unsigned long long)p->msg_id, (int)p->topic.len,
		         (const char *)p->topic.p, (int)p->payload.len,
		         (const char *)p->payload.p, p->qos, p->retain,
		         (unsigned long long)p->expires_at);
		sn->u[sn->n] = p->refs;
	}
	sn->n++;
	return 0;
}

START_TEST(test_payload_shared)
{
	struct store_config c = config(STORE_DURABILITY_SYNC);
	struct seen *sn = calloc(1, sizeof(*sn));
	char cid[32];
	struct store_batch *b;
	struct store *s;
	int i;

	c.map_size = 64u << 20;
	s = open_ok(&c);
	b = store_batch_new();
	put_payload(b, 1000, "the one payload");
	for (i = 0; i < 10000; i++) {
		snprintf(cid, sizeof(cid), "client-%d", i);
		put_queue(b, cid, 1, 1000);
	}
	ck_assert_int_eq(commit(s, b), 0);
	ck_assert_uint_eq(count(s, STORE_DB_QUEUE), 10000);
	ck_assert_uint_eq(count(s, STORE_DB_PAYLOADS), 1);
	ck_assert_int_eq(store_load_payloads(s, see_payload, sn), 0);
	ck_assert_int_eq(sn->n, 1);
	ck_assert_str_eq(sn->buf[0], "1000|t/x|the one payload|2|1|77");
	ck_assert_uint_eq(sn->u[0], 10000);

	/* putting it again adds no copy */
	b = store_batch_new();
	put_payload(b, 1000, "the one payload");
	put_queue(b, "late", 1, 1000);
	ck_assert_int_eq(commit(s, b), 0);
	ck_assert_uint_eq(count(s, STORE_DB_PAYLOADS), 1);

	b = store_batch_new();
	for (i = 1; i < 10000; i++) {
		snprintf(cid, sizeof(cid), "client-%d", i);
		store_batch_queue_del(b, bs(cid), 1);
	}
	store_batch_session_del(b, bs("late"));
	ck_assert_int_eq(commit(s, b), 0);
	sn->n = 0;
	ck_assert_int_eq(store_load_payloads(s, see_payload, sn), 0);
	ck_assert_int_eq(sn->n, 1);
	ck_assert_uint_eq(sn->u[0], 1);

	b = store_batch_new();
	store_batch_queue_del(b, bs("client-0"), 1);
	ck_assert_int_eq(commit(s, b), 0);
	ck_assert_uint_eq(count(s, STORE_DB_PAYLOADS), 0);
	ck_assert_uint_eq(count(s, STORE_DB_QUEUE), 0);
	store_close(s);
	free(sn);
}
END_TEST

START_TEST(test_payload_refs_checked)
{
	struct store_config c = config(STORE_DURABILITY_SYNC);
	struct store_retained r = { 0 };
	struct store_batch *b;
	struct store *s;

	s = open_ok(&c);
	/* a payload nothing references does not stay */
	b = store_batch_new();
	put_payload(b, 1, "orphan");
	ck_assert_int_eq(commit(s, b), 0);
	ck_assert_uint_eq(count(s, STORE_DB_PAYLOADS), 0);

	/* a queue entry for a missing payload fails its whole batch */
	b = store_batch_new();
	r.topic = bs("t");
	store_batch_retained_put(b, &r);
	put_queue(b, "c", 1, 12345);
	ck_assert_int_eq(commit(s, b), ERR_NOTFOUND);
	ck_assert_uint_eq(count(s, STORE_DB_RETAINED), 0);
	ck_assert_uint_eq(count(s, STORE_DB_QUEUE), 0);

	/* replacing an entry moves the reference */
	b = store_batch_new();
	put_payload(b, 1, "one");
	put_payload(b, 2, "two");
	put_queue(b, "c", 1, 1);
	put_queue(b, "c", 2, 2);
	ck_assert_int_eq(commit(s, b), 0);
	b = store_batch_new();
	put_queue(b, "c", 1, 2);
	ck_assert_int_eq(commit(s, b), 0);
	ck_assert_uint_eq(count(s, STORE_DB_PAYLOADS), 1);
	store_close(s);
}
END_TEST

START_TEST(test_bad_input_sticky)
{
	struct store_config c = config(STORE_DURABILITY_SYNC);
	struct store_session ss = { 0 };
	struct store_batch *b;
	struct store *s;
	char big[300];

	s = open_ok(&c);
	b = store_batch_new();
	ss.client_id = bs("");
	ck_assert_int_eq(store_batch_session_put(b, &ss), ERR_BAD_CLIENT_ID);
	ss.client_id = bs("fine");
	ck_assert_int_eq(store_batch_session_put(b, &ss), ERR_BAD_CLIENT_ID);
	ck_assert_int_eq(store_submit(s, b, on_done, NULL), ERR_BAD_CLIENT_ID);

	b = store_batch_new();
	memset(big, 'c', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	ck_assert_int_eq(store_batch_queue_del(b, bs(big), 1),
	                 ERR_BAD_CLIENT_ID);
	store_batch_free(b);
	b = store_batch_new();
	ck_assert_int_eq(
	        store_batch_session_del(
	                b, (struct mqtt_bytes){ (const uint8_t *)"a\0b", 3 }),
	        ERR_BAD_CLIENT_ID);
	store_batch_free(b);
	store_batch_free(NULL);
	ck_assert_uint_eq(count(s, STORE_DB_SESSIONS), 0);
	store_close(s);
	store_close(NULL);
}
END_TEST

/* --- write path ---------------------------------------------------------- */

START_TEST(test_group_commit_and_order)
{
	struct store_config c = config(STORE_DURABILITY_SYNC);
	struct store_retained r = { 0 };
	struct pollfd pfd;
	struct tag tags[200];
	struct done d = { 0 };
	struct store_stats st;
	struct store_batch *b;
	struct store *s;
	char topic[32];
	int i;

	s = open_ok(&c);
	pfd.fd = store_notify_fd(s);
	pfd.events = POLLIN;
	ck_assert_int_eq(poll(&pfd, 1, 0), 0); /* nothing yet */
	/* the writer is busy (held): the batches pile up */
	store_test_hold(s, true);
	for (i = 0; i < 200; i++) {
		b = store_batch_new();
		snprintf(topic, sizeof(topic), "t/%d", i);
		r.topic = bs(topic);
		store_batch_retained_put(b, &r);
		tags[i].d = &d;
		tags[i].tag = i;
		ck_assert_int_eq(store_submit(s, b, on_done_tag, &tags[i]), 0);
	}
	store_test_hold(s, false);
	wait_done(s, &d, 200);
	for (i = 0; i < 200; i++)
		ck_assert_int_eq(d.order[i], i);
	ck_assert_int_eq(d.err, 0);
	store_stats_get(s, &st);
	ck_assert_uint_eq(st.batches, 200);
	ck_assert_uint_ge(st.txns, 1);
	ck_assert_uint_le(st.txns, 2);
	ck_assert_uint_eq(st.batch_errors, 0);
	ck_assert_uint_eq(count(s, STORE_DB_RETAINED), 200);
	ck_assert_uint_eq(store_poll_completions(s), 0);
	store_close(s);
}
END_TEST

START_TEST(test_group_commit_unheld)
{
	struct store_config c = config(STORE_DURABILITY_SYNC);
	struct store_retained r = { 0 };
	struct done d = { 0 };
	struct store_stats st;
	struct store_batch *b;
	struct store *s;
	int i;

	/* no hook: while one fsync runs, the next batches queue up */
	s = open_ok(&c);
	r.topic = bs("t");
	r.payload = bs("x");
	for (i = 0; i < 500; i++) {
		b = store_batch_new();
		store_batch_retained_put(b, &r);
		ck_assert_int_eq(store_submit(s, b, on_done, &d), 0);
	}
	wait_done(s, &d, 500);
	store_stats_get(s, &st);
	ck_assert_uint_eq(st.batches, 500);
	ck_assert_uint_lt(st.txns, st.batches);
	store_close(s);
}
END_TEST

START_TEST(test_close_completes_pending)
{
	struct store_config c = config(STORE_DURABILITY_SYNC);
	struct store_retained r = { 0 };
	struct done d = { 0 };
	struct store_batch *b;
	struct store *s;
	int i;

	s = open_ok(&c);
	r.topic = bs("t");
	for (i = 0; i < 20; i++) {
		b = store_batch_new();
		store_batch_retained_put(b, &r);
		ck_assert_int_eq(store_submit(s, b, on_done, &d), 0);
	}
	store_close(s); /* commits and completes all of them */
	ck_assert_int_eq(d.n, 20);
	ck_assert_int_eq(d.err, 0);
	s = open_ok(&c);
	ck_assert_uint_eq(count(s, STORE_DB_RETAINED), 1);
	store_close(s);
}
END_TEST

START_TEST(test_map_growth_and_limit)
{
	struct store_config c = config(STORE_DURABILITY_SYNC);
	struct seen *sn = calloc(1, sizeof(*sn));
	struct store_retained r = { 0 };
	static char payload[8192];
	struct store_stats st;
	struct store_batch *b;
	struct store *s;
	char topic[32];
	int i, rc = 0, ok = 0;

	c.map_size = 64 << 10;
	c.max_size = 1 << 20;
	memset(payload, 'p', sizeof(payload) - 1);
	s = open_ok(&c);
	for (i = 0; i < 1000 && rc == 0; i++) {
		b = store_batch_new();
		snprintf(topic, sizeof(topic), "big/%04d", i);
		r.topic = bs(topic);
		r.payload = bs(payload);
		store_batch_retained_put(b, &r);
		rc = commit(s, b);
		if (rc == 0)
			ok++;
	}
	ck_assert_int_eq(rc, ERR_LIMIT);
	ck_assert_int_gt(ok, 50); /* > 64 KiB worth: it grew */
	store_stats_get(s, &st);
	ck_assert_uint_ge(st.grows, 4);
	ck_assert_uint_eq(st.map_size, (size_t)1 << 20);
	ck_assert_uint_ge(st.limit_errors, 1);
	ck_assert_uint_eq(count(s, STORE_DB_RETAINED), (size_t)ok);

	/* the node keeps serving: small writes after deletes still work */
	b = store_batch_new();
	store_batch_retained_del(b, bs("big/0000"));
	store_batch_retained_del(b, bs("big/0001"));
	ck_assert_int_eq(commit(s, b), 0);
	store_close(s);

	/* nothing acknowledged was lost */
	s = open_ok(&c);
	ck_assert_int_eq(store_load_retained(s, see_retained, sn), 0);
	ck_assert_int_eq(sn->n, ok - 2);
	ck_assert_ptr_nonnull(strstr(sn->buf[0], "big/0002|ppp"));
	store_close(s);
	free(sn);
}
END_TEST

START_TEST(test_batch_larger_than_max)
{
	struct store_config c = config(STORE_DURABILITY_SYNC);
	struct store_retained r = { 0 };
	struct tag tags[3];
	struct done d = { 0 };
	struct store_batch *b;
	struct store *s;
	char *huge;
	int i;

	c.map_size = 64 << 10;
	c.max_size = 256 << 10;
	huge = calloc(1, 512 << 10);
	memset(huge, 'h', (512 << 10) - 1);
	s = open_ok(&c);
	/* in one group: small, too big, small. Only the middle one fails. */
	store_test_hold(s, true);
	for (i = 0; i < 3; i++) {
		b = store_batch_new();
		r.topic = bs(i == 0 ? "a" : i == 1 ? "huge" : "c");
		r.payload = bs(i == 1 ? huge : "small");
		store_batch_retained_put(b, &r);
		tags[i].d = &d;
		tags[i].tag = i;
		store_submit(s, b, on_done_tag, &tags[i]);
	}
	store_test_hold(s, false);
	wait_done(s, &d, 3);
	ck_assert_int_eq(d.order[1], 1);
	ck_assert_uint_eq(count(s, STORE_DB_RETAINED), 2);
	store_close(s);
	free(huge);
}
END_TEST

/* --- damaged data, durability modes -------------------------------------- */

START_TEST(test_corrupt_data_file)
{
	struct store_config c = config(STORE_DURABILITY_SYNC);
	const char *why = NULL;
	struct store *s = NULL;
	struct store_retained r = { 0 };
	struct store_batch *b;
	uint8_t junk[4096];
	struct stat sb;
	size_t i;
	FILE *f;

	s = open_ok(&c);
	b = store_batch_new();
	r.topic = bs("t");
	store_batch_retained_put(b, &r);
	ck_assert_int_eq(commit(s, b), 0);
	store_close(s);
	s = NULL;

	ck_assert_int_eq(stat(file_in("data.mdb"), &sb), 0);
	for (i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)(i * 131 + 7);
	f = fopen(file_in("data.mdb"), "r+b");
	ck_assert_ptr_nonnull(f);
	for (i = 0; i < (size_t)sb.st_size; i += sizeof(junk))
		fwrite(junk, 1, sizeof(junk), f);
	fclose(f);
	ck_assert_int_eq(store_open(&c, &s, &why), ERR_IO);
	ck_assert_ptr_null(s);
	ck_assert_ptr_nonnull(why);
	ck_assert_ptr_nonnull(strstr(why, "data.mdb"));

	/* a short file too */
	ck_assert_int_eq(truncate(file_in("data.mdb"), 100), 0);
	why = NULL;
	ck_assert_int_eq(store_open(&c, &s, &why), ERR_IO);
	ck_assert_ptr_nonnull(why);
	ck_assert_ptr_nonnull(strstr(why, "data.mdb"));
}
END_TEST

START_TEST(test_data_dir_not_a_dir)
{
	struct store_config c = config(STORE_DURABILITY_SYNC);
	const char *why = NULL;
	struct store *s = NULL;
	FILE *f;

	f = fopen(file_in("plain"), "w");
	ck_assert_ptr_nonnull(f);
	fclose(f);
	c.data_dir = file_in("plain");
	ck_assert_int_eq(store_open(&c, &s, &why), ERR_IO);
	ck_assert_ptr_nonnull(why);
	ck_assert_ptr_nonnull(strstr(why, "data dir"));
	unlink(file_in("plain"));

	c.data_dir = "/nonexistent-mqd/a/b";
	why = NULL;
	ck_assert_int_eq(store_open(&c, &s, &why), ERR_IO);
	ck_assert_ptr_nonnull(why);
	ck_assert_ptr_nonnull(strstr(why, "data dir"));
}
END_TEST

static size_t
dir_entries(void)
{
	struct dirent *e;
	size_t n = 0;
	DIR *d = opendir(dir);

	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

START_TEST(test_durability_none)
{
	struct store_config c = config(STORE_DURABILITY_NONE);
	struct store_retained r = { 0 };
	struct seen *sn = calloc(1, sizeof(*sn));
	struct tag tags[10];
	struct done d = { 0 };
	struct store_batch *b;
	struct store *s;
	int i;

	s = open_ok(&c);
	ck_assert(bytes_eq(store_node_name(s), "n1"));
	for (i = 0; i < 10; i++) {
		b = store_batch_new();
		r.topic = bs("t");
		store_batch_retained_put(b, &r);
		tags[i].d = &d;
		tags[i].tag = i;
		ck_assert_int_eq(store_submit(s, b, on_done_tag, &tags[i]), 0);
	}
	wait_done(s, &d, 10);
	for (i = 0; i < 10; i++)
		ck_assert_int_eq(d.order[i], i);
	ck_assert_int_eq(d.err, 0);
	ck_assert_int_eq(store_load_retained(s, see_retained, sn), 0);
	ck_assert_int_eq(sn->n, 0);
	ck_assert_uint_eq(count(s, STORE_DB_RETAINED), 0);
	store_close(s);
	ck_assert_uint_eq(dir_entries(), 0); /* nothing written */
	free(sn);
}
END_TEST

START_TEST(test_durability_relaxed)
{
	struct store_config c = config(STORE_DURABILITY_RELAXED);
	struct store_retained r = { 0 };
	struct store_stats st;
	struct store_batch *b;
	struct store *s;
	uint64_t end;

	c.sync_interval_ms = 20;
	s = open_ok(&c);
	b = store_batch_new();
	r.topic = bs("t");
	store_batch_retained_put(b, &r);
	ck_assert_int_eq(commit(s, b), 0);
	end = ms_now() + 10000;
	do {
		store_stats_get(s, &st);
		ck_assert(ms_now() < end);
		nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
	} while (st.syncs == 0);
	store_close(s);
	c.durability = STORE_DURABILITY_SYNC;
	s = open_ok(&c);
	ck_assert_uint_eq(count(s, STORE_DB_RETAINED), 1);
	store_close(s);
}
END_TEST

/* Fails the n-th allocation of store_open and of the batch adders, n = 1,
 * 2, ... until they succeed: each failure is a clean ERR_NOMEM. (LMDB's own
 * allocations are in the shared library and are not failed.) */
START_TEST(test_alloc_failures)
{
	struct store_config c = config(STORE_DURABILITY_SYNC);
	struct store_retained r = { 0 };
	const char *why;
	struct store_batch *b;
	struct store *s;
	int n, rc, failed = 0;

	for (n = 1; n < 100; n++) {
		s = NULL;
		why = NULL;
		fault_arm(n);
		rc = store_open(&c, &s, &why);
		fault_off();
		if (rc == 0)
			break;
		failed++;
		ck_assert_int_eq(rc, ERR_NOMEM);
		ck_assert_ptr_null(s);
		ck_assert_ptr_nonnull(why);
	}
	ck_assert_ptr_nonnull(s);
	for (n = 1; n < 100; n++) {
		fault_arm(n);
		b = store_batch_new();
		fault_off();
		if (b != NULL)
			break;
		failed++;
	}
	r.topic = bs("t");
	ck_assert_int_eq(store_batch_retained_put(b, &r), 0);
	ck_assert_int_eq(commit(s, b), 0);
	ck_assert_uint_eq(count(s, STORE_DB_RETAINED), 1);
	store_close(s);
	if (failed == 0)
		fprintf(stderr, "fault injection off (no --wrap=malloc)\n");
}
END_TEST

static Suite *
storage_suite(void)
{
	Suite *s = suite_create("storage");
	TCase *tc = tcase_create("store");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_open_create_reopen);
	tcase_add_test(tc, test_schema_newer_refused);
	tcase_add_test(tc, test_retained_roundtrip);
	tcase_add_test(tc, test_retained_long_topics);
	tcase_add_test(tc, test_session_sub_inflight_roundtrip);
	tcase_add_test(tc, test_queue_order);
	tcase_add_test(tc, test_load_stops_on_callback);
	tcase_add_test(tc, test_delete);
	tcase_add_test(tc, test_payload_shared);
	tcase_add_test(tc, test_payload_refs_checked);
	tcase_add_test(tc, test_bad_input_sticky);
	tcase_add_test(tc, test_group_commit_and_order);
	tcase_add_test(tc, test_group_commit_unheld);
	tcase_add_test(tc, test_close_completes_pending);
	tcase_add_test(tc, test_map_growth_and_limit);
	tcase_add_test(tc, test_batch_larger_than_max);
	tcase_add_test(tc, test_corrupt_data_file);
	tcase_add_test(tc, test_data_dir_not_a_dir);
	tcase_add_test(tc, test_durability_none);
	tcase_add_test(tc, test_durability_relaxed);
	tcase_add_test(tc, test_alloc_failures);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(storage_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
