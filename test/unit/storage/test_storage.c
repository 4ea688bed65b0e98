/*
 * Unit tests of storage/: open, create and reopen on a temp dir, the schema
 * check and the migration from schema 1, record round trips and version 1
 * records, queue order, deletion, payload sharing and refcounts (settled
 * once per payload per batch), group commit, completion order through the
 * notify fd, puts deleted again within their commit group (not written),
 * map growth up to max_size, a damaged data file and durability none.
 */
#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
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
	int errs[256];  /* errors by tag (tags below 256) */
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
	if (t->tag >= 0 && t->tag < 256)
		t->d->errs[t->tag] = err;
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

/* The data dir's LMDB environment, opened behind storage's back (only
 * while no store is open on it). */
static MDB_env *
raw_env(void)
{
	MDB_env *env;

	ck_assert_int_eq(mdb_env_create(&env), 0);
	mdb_env_set_maxdbs(env, 16);
	ck_assert_int_eq(mdb_env_open(env, dir, 0, 0600), 0);
	return env;
}

/* Writes meta/schema_version behind storage's back. */
static void
poke_schema(uint32_t v)
{
	uint8_t be[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16),
		          (uint8_t)(v >> 8), (uint8_t)v };
	MDB_val k = { 14, (void *)"schema_version" }, val = { 4, be };
	MDB_env *env = raw_env();
	MDB_txn *txn;
	MDB_dbi dbi;

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

/* Marks: one per origin, the last put wins, kept across a reopen, and
 * not mistaken for the other META records. */
struct marks_seen {
	int n;
	uint64_t origin[4];
	uint64_t msg_id[4];
};

static int
see_mark(void *arg, const struct store_mark *m)
{
	struct marks_seen *ms = arg;

	ck_assert_int_lt(ms->n, 4);
	ms->origin[ms->n] = m->origin;
	ms->msg_id[ms->n++] = m->msg_id;
	return 0;
}

START_TEST(test_marks_roundtrip)
{
	struct store_config c = config(STORE_DURABILITY_SYNC);
	struct marks_seen ms = { 0 };
	struct store_batch *b;
	struct store *s;

	s = open_ok(&c);
	b = store_batch_new();
	ck_assert_int_eq(store_batch_mark_put(b, 0x0102030405060708ULL, 5), 0);
	ck_assert_int_eq(store_batch_mark_put(b, 7, 1ULL << 60), 0);
	ck_assert_int_eq(commit(s, b), 0);
	b = store_batch_new();
	ck_assert_int_eq(store_batch_mark_put(b, 0x0102030405060708ULL, 9), 0);
	ck_assert_int_eq(commit(s, b), 0);
	store_close(s);

	s = open_ok(&c);
	ck_assert_int_eq(store_load_marks(s, see_mark, &ms), 0);
	ck_assert_int_eq(ms.n, 2);
	/* key order: by origin, big-endian */
	ck_assert_uint_eq(ms.origin[0], 7);
	ck_assert_uint_eq(ms.msg_id[0], 1ULL << 60);
	ck_assert_uint_eq(ms.origin[1], 0x0102030405060708ULL);
	ck_assert_uint_eq(ms.msg_id[1], 9);
	ck_assert_uint_eq(store_node_id(s) != 0, 1); /* META intact */
	store_close(s);
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
		snprintf(
		        sn->buf[sn->n], sizeof(sn->buf[0]),
		        "%.*s|%u|%u|%llu|%u|%d|%u|%d|%u|%.*s|%.*s|%.*s|%llu|%u",
		        (int)ss->client_id.len, (const char *)ss->client_id.p,
		        ss->version, ss->expiry_interval,
		        (unsigned long long)ss->expires_at, ss->next_packet_id,
		        ss->has_will, ss->will_qos, ss->will_retain,
		        ss->will_delay, (int)ss->will_topic.len,
		        (const char *)ss->will_topic.p,
		        (int)ss->will_payload.len,
		        (const char *)ss->will_payload.p,
		        (int)ss->will_props.len, (const char *)ss->will_props.p,
		        (unsigned long long)ss->will_at, ss->will_expiry);
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
		         "%.*s|%u|%u|%u|%u|%d|%llu|%llu", (int)f->client_id.len,
		         (const char *)f->client_id.p, f->dir, f->packet_id,
		         f->state, f->qos, f->retain,
		         (unsigned long long)f->msg_id,
		         (unsigned long long)f->seq);
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

/* One payload and @p n queue entries ("client-0".. ) referencing it. */
static void
put_fan_out(struct store_batch *b, uint64_t id, const char *body, int n)
{
	char cid[32];
	int i;

	put_payload(b, id, body);
	for (i = 0; i < n; i++) {
		snprintf(cid, sizeof(cid), "client-%d", i);
		put_queue(b, cid, 1, id);
	}
}

static void
put_inflight(struct store_batch *b, const char *cid, uint16_t pid,
             uint8_t state)
{
	struct store_inflight f = { 0 };

	f.client_id = bs(cid);
	f.dir = STORE_INFLIGHT_OUT;
	f.packet_id = pid;
	f.state = state;
	f.qos = 1;
	ck_assert_int_eq(store_batch_inflight_put(b, &f), 0);
}

static void
del_inflight(struct store_batch *b, const char *cid, uint16_t pid)
{
	ck_assert_int_eq(
	        store_batch_inflight_del(b, bs(cid), STORE_INFLIGHT_OUT, pid),
	        0);
}

static void
del_queue(struct store_batch *b, const char *cid, uint64_t seq)
{
	ck_assert_int_eq(store_batch_queue_del(b, bs(cid), seq), 0);
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
	ss.will_at = 0x0123456789abcdefULL;
	ss.will_expiry = 0xfedcba98;
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
	f.seq = 0x8000000000000001ULL;
	ck_assert_int_eq(store_batch_inflight_put(b, &f), 0);
	f.dir = STORE_INFLIGHT_IN;
	f.packet_id = 1;
	f.state = STORE_INFLIGHT_PUBREL;
	f.msg_id = 0;
	f.seq = 0;
	ck_assert_int_eq(store_batch_inflight_put(b, &f), 0);
	ck_assert_int_eq(commit(s, b), 0);
	store_close(s);

	s = open_ok(&c);
	ck_assert_int_eq(store_load_sessions(s, see_session, sn), 0);
	ck_assert_int_eq(sn->n, 1);
	ck_assert_str_eq(sn->buf[0], "c1|5|3600|1700000000000|65535|1|2|1|30|"
	                             "will/t|bye|\x01\x01|"
	                             "81985529216486895|4275878552");
	sn->n = 0;
	ck_assert_int_eq(store_load_subs(s, bs("c1"), see_sub, sn), 0);
	ck_assert_int_eq(sn->n, 2);
	ck_assert_str_eq(sn->buf[0], "c1|#|1|0");
	ck_assert_str_eq(sn->buf[1], "c1|$share/g/a/+|46|99");
	sn->n = 0;
	ck_assert_int_eq(store_load_inflight(s, bs("c1"), see_inflight, sn), 0);
	ck_assert_int_eq(sn->n, 2);
	ck_assert_str_eq(sn->buf[0], "c1|0|513|1|2|0|5|9223372036854775809");
	ck_assert_str_eq(sn->buf[1], "c1|1|1|2|2|0|0|0");
	ck_assert_uint_eq(count(s, STORE_DB_PAYLOADS), 1);
	store_close(s);
	free(sn);
}
END_TEST

/* --- older record versions and schema 1 ----------------------------------- */

static void
put64(struct buf *b, uint64_t v)
{
	buf_put_u32(b, (uint32_t)(v >> 32));
	buf_put_u32(b, (uint32_t)v);
}

/* A session record as schema 1 wrote it (record version 1), by hand. */
static void
session_v1(struct buf *b)
{
	buf_put_u8(b, 1);           /* record version */
	buf_put_u8(b, 5);           /* protocol version */
	buf_put_u32(b, 3600);       /* expiry interval */
	put64(b, 1700000000000ULL); /* expires at */
	buf_put_u16(b, 42);         /* next packet id */
	buf_put_u8(b, 3);           /* flags: has will, will retain */
	buf_put_u8(b, 1);           /* will qos */
	buf_put_u32(b, 30);         /* will delay */
	buf_put_str(b, "c1", 2);
	buf_put_str(b, "will/t", 6);
	buf_put_u32(b, 3); /* will payload */
	buf_put_bytes(b, "bye", 3);
	buf_put_u32(b, 2); /* will props */
	buf_put_bytes(b, "\x01\x01", 2);
}

/* An in-flight record as schema 1 wrote it (record version 1), by hand. */
static void
inflight_v1(struct buf *b)
{
	buf_put_u8(b, 1); /* record version */
	put64(b, 77);     /* msg id */
	buf_put_u8(b, STORE_INFLIGHT_OUT);
	buf_put_u16(b, 513); /* packet id */
	buf_put_u8(b, STORE_INFLIGHT_PUBREC);
	buf_put_u8(b, 2); /* qos */
	buf_put_u8(b, 1); /* retain */
	buf_put_str(b, "c1", 2);
}

START_TEST(test_record_v1_changed)
{
	struct store_session ss;
	struct store_inflight f;
	struct buf b;

	buf_init(&b);
	session_v1(&b);
	ck_assert(!buf_failed(&b));
	ck_assert_int_eq(rec_session_dec(b.data, b.len, &ss), 0);
	ck_assert(bytes_eq(ss.client_id, "c1"));
	ck_assert_uint_eq(ss.version, 5);
	ck_assert_uint_eq(ss.expiry_interval, 3600);
	ck_assert_uint_eq(ss.expires_at, 1700000000000ULL);
	ck_assert_uint_eq(ss.next_packet_id, 42);
	ck_assert(ss.has_will);
	ck_assert(ss.will_retain);
	ck_assert_uint_eq(ss.will_qos, 1);
	ck_assert_uint_eq(ss.will_delay, 30);
	ck_assert(bytes_eq(ss.will_topic, "will/t"));
	ck_assert(bytes_eq(ss.will_payload, "bye"));
	ck_assert(bytes_eq(ss.will_props, "\x01\x01"));
	ck_assert_uint_eq(ss.will_at, 0);
	ck_assert_uint_eq(ss.will_expiry, 0);
	/* version 1 has no will_at / will_expiry: trailing bytes are damage */
	put64(&b, 1234);
	buf_put_u32(&b, 56);
	ck_assert_int_eq(rec_session_dec(b.data, b.len, &ss), ERR_MALFORMED);
	/* the same bytes as version 2 carry them */
	b.data[0] = 2;
	ck_assert_int_eq(rec_session_dec(b.data, b.len, &ss), 0);
	ck_assert_uint_eq(ss.will_at, 1234);
	ck_assert_uint_eq(ss.will_expiry, 56);
	ck_assert_int_eq(rec_session_dec(b.data, b.len - 1, &ss),
	                 ERR_MALFORMED);
	b.data[0] = REC_VERSION + 1; /* unknown versions */
	ck_assert_int_eq(rec_session_dec(b.data, b.len, &ss), ERR_MALFORMED);
	b.data[0] = 0;
	ck_assert_int_eq(rec_session_dec(b.data, b.len, &ss), ERR_MALFORMED);

	buf_reset(&b);
	inflight_v1(&b);
	ck_assert(!buf_failed(&b));
	ck_assert_int_eq(rec_inflight_dec(b.data, b.len, &f), 0);
	ck_assert(bytes_eq(f.client_id, "c1"));
	ck_assert_uint_eq(f.msg_id, 77);
	ck_assert_uint_eq(f.dir, STORE_INFLIGHT_OUT);
	ck_assert_uint_eq(f.packet_id, 513);
	ck_assert_uint_eq(f.state, STORE_INFLIGHT_PUBREC);
	ck_assert_uint_eq(f.qos, 2);
	ck_assert(f.retain);
	ck_assert_uint_eq(f.seq, 0);
	put64(&b, 9);
	ck_assert_int_eq(rec_inflight_dec(b.data, b.len, &f), ERR_MALFORMED);
	b.data[0] = 2;
	ck_assert_int_eq(rec_inflight_dec(b.data, b.len, &f), 0);
	ck_assert_uint_eq(f.seq, 9);
	ck_assert_uint_eq(f.msg_id, 77);
	b.data[0] = REC_VERSION + 1;
	ck_assert_int_eq(rec_inflight_dec(b.data, b.len, &f), ERR_MALFORMED);
	buf_fini(&b);
}
END_TEST

/* The records version 2 left alone read the same at version 1. */
START_TEST(test_record_v1_unchanged)
{
	struct store_retained r = { 0 }, r2;
	struct store_sub sub = { 0 }, sub2;
	struct store_payload pl = { 0 }, pl2;
	struct store_queue_entry q = { 0 }, q2;
	struct buf b;

	buf_init(&b);
	r.topic = bs("t");
	r.payload = bs("p");
	r.qos = 1;
	r.stamp = 5;
	rec_retained_enc(&b, &r);
	b.data[0] = 1;
	ck_assert_int_eq(rec_retained_dec(b.data, b.len, &r2), 0);
	ck_assert(bytes_eq(r2.topic, "t") && bytes_eq(r2.payload, "p"));
	ck_assert_uint_eq(r2.stamp, 5);

	buf_reset(&b);
	sub.client_id = bs("c");
	sub.filter = bs("a/+");
	sub.sub_id = 8;
	rec_sub_enc(&b, &sub);
	b.data[0] = 1;
	ck_assert_int_eq(rec_sub_dec(b.data, b.len, &sub2), 0);
	ck_assert(bytes_eq(sub2.filter, "a/+"));
	ck_assert_uint_eq(sub2.sub_id, 8);

	buf_reset(&b);
	pl.msg_id = 3;
	pl.topic = bs("t");
	pl.payload = bs("body");
	rec_payload_enc(&b, &pl, 17);
	b.data[0] = 1;
	ck_assert_int_eq(rec_payload_dec(b.data, b.len, &pl2), 0);
	ck_assert_uint_eq(pl2.msg_id, 3);
	ck_assert_uint_eq(pl2.refs, 17);
	ck_assert(bytes_eq(pl2.payload, "body"));

	buf_reset(&b);
	q.client_id = bs("c");
	q.seq = 11;
	q.msg_id = 3;
	q.n_sub_ids = 1;
	q.sub_ids[0] = 4;
	rec_queue_enc(&b, &q);
	b.data[0] = 1;
	b.len -= 4; /* version 3 appended the groups' length (0 here) */
	ck_assert_int_eq(rec_queue_dec(b.data, b.len, &q2), 0);
	ck_assert_uint_eq(q2.groups.len, 0);
	ck_assert_uint_eq(q2.seq, 11);
	ck_assert_uint_eq(q2.msg_id, 3);
	ck_assert_uint_eq(q2.sub_ids[0], 4);
	ck_assert(!buf_failed(&b));
	buf_fini(&b);
}
END_TEST

/* Rewrites the data dir as schema 1 left it: meta says 1 and every record
 * is version 1. Version 2 appended will_at and will_expiry (12 bytes) to
 * sessions and seq (8 bytes) to in-flight records, version 3 the groups'
 * length (4 bytes, no groups here) to queue records; the other records
 * differ only in the version byte. */
static void
downgrade_to_schema_1(void)
{
	static const struct {
		const char *name;
		size_t cut;
	} t[] = {
		{ "retained", 0 }, { "sessions", 12 }, { "subs", 0 },
		{ "queue", 4 },    { "payloads", 0 },  { "inflight", 8 },
	};
	uint8_t kb[512], vb[4096];
	MDB_env *env = raw_env();
	MDB_val k, v, nk, nv;
	MDB_cursor *c;
	MDB_txn *txn;
	MDB_dbi dbi;
	size_t i;

	ck_assert_int_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		ck_assert_int_eq(mdb_dbi_open(txn, t[i].name, 0, &dbi), 0);
		ck_assert_int_eq(mdb_cursor_open(txn, dbi, &c), 0);
		while (mdb_cursor_get(c, &k, &v, MDB_NEXT) == 0) {
			ck_assert_uint_le(k.mv_size, sizeof(kb));
			ck_assert_uint_le(v.mv_size, sizeof(vb));
			ck_assert_uint_gt(v.mv_size, t[i].cut);
			memcpy(kb, k.mv_data, k.mv_size);
			memcpy(vb, v.mv_data, v.mv_size);
			ck_assert_uint_eq(vb[0], REC_VERSION);
			vb[0] = 1;
			nk = (MDB_val){ k.mv_size, kb };
			nv = (MDB_val){ v.mv_size - t[i].cut, vb };
			ck_assert_int_eq(
			        mdb_cursor_put(c, &nk, &nv, MDB_CURRENT), 0);
		}
		mdb_cursor_close(c);
	}
	ck_assert_int_eq(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
	poke_schema(1);
}

/* meta/schema_version as stored. */
static uint32_t
disk_schema(void)
{
	MDB_val k = { 14, (void *)"schema_version" }, v;
	MDB_env *env = raw_env();
	const uint8_t *p;
	MDB_txn *txn;
	MDB_dbi dbi;
	uint32_t ver;

	ck_assert_int_eq(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
	ck_assert_int_eq(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
	ck_assert_int_eq(mdb_get(txn, dbi, &k, &v), 0);
	ck_assert_uint_eq(v.mv_size, 4);
	p = v.mv_data;
	ver = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	      (uint32_t)p[2] << 8 | p[3];
	mdb_txn_abort(txn);
	mdb_env_close(env);
	return ver;
}

static int see_queue(void *arg, const struct store_queue_entry *q);
static int see_payload(void *arg, const struct store_payload *p);

/* Fills a store with one record of each type, written at version 2. */
static void
fill_for_downgrade(struct store *s)
{
	struct store_retained r = { 0 };
	struct store_session ss = { 0 };
	struct store_sub sub = { 0 };
	struct store_inflight f = { 0 };
	struct store_batch *b = store_batch_new();

	r.topic = bs("r");
	r.payload = bs("kept");
	store_batch_retained_put(b, &r);
	ss.client_id = bs("c1");
	ss.version = 5;
	ss.has_will = true;
	ss.will_qos = 1;
	ss.will_delay = 30;
	ss.will_topic = bs("w");
	ss.will_payload = bs("bye");
	ss.will_at = 99;
	ss.will_expiry = 60;
	store_batch_session_put(b, &ss);
	sub.client_id = bs("c1");
	sub.filter = bs("a/#");
	sub.options = 1;
	store_batch_sub_put(b, &sub);
	put_payload(b, 7, "seven");
	put_queue(b, "c1", 1, 7);
	f.client_id = bs("c1");
	f.packet_id = 3;
	f.qos = 1;
	f.msg_id = 7;
	f.seq = 5;
	store_batch_inflight_put(b, &f);
	ck_assert_int_eq(commit(s, b), 0);
}

START_TEST(test_schema_1_migrated)
{
	struct store_config c = config(STORE_DURABILITY_SYNC);
	struct seen *sn = calloc(1, sizeof(*sn));
	struct store_session ss = { 0 };
	struct store_batch *b;
	struct store *s;

	s = open_ok(&c);
	fill_for_downgrade(s);
	store_close(s);
	downgrade_to_schema_1();
	ck_assert_uint_eq(disk_schema(), 1);

	s = open_ok(&c);
	ck_assert_uint_eq(store_schema_version(s), STORE_SCHEMA_VERSION);
	/* everything schema 1 wrote reads, the new fields as 0 */
	ck_assert_int_eq(store_load_sessions(s, see_session, sn), 0);
	ck_assert_int_eq(sn->n, 1);
	ck_assert_str_eq(sn->buf[0], "c1|5|0|0|0|1|1|0|30|w|bye||0|0");
	sn->n = 0;
	ck_assert_int_eq(store_load_inflight(s, bs("c1"), see_inflight, sn), 0);
	ck_assert_int_eq(sn->n, 1);
	ck_assert_str_eq(sn->buf[0], "c1|0|3|0|1|0|7|0");
	sn->n = 0;
	ck_assert_int_eq(store_load_subs(s, bs("c1"), see_sub, sn), 0);
	ck_assert_int_eq(sn->n, 1);
	ck_assert_str_eq(sn->buf[0], "c1|a/#|1|0");
	sn->n = 0;
	ck_assert_int_eq(store_load_retained(s, see_retained, sn), 0);
	ck_assert_int_eq(sn->n, 1);
	ck_assert_str_eq(sn->buf[0], "r|kept||0|0|0");
	sn->n = 0;
	ck_assert_int_eq(store_load_queue(s, bs("c1"), see_queue, sn), 0);
	ck_assert_int_eq(sn->n, 1);
	sn->n = 0;
	ck_assert_int_eq(store_load_payloads(s, see_payload, sn), 0);
	ck_assert_int_eq(sn->n, 1);
	ck_assert_str_eq(sn->buf[0], "7|t/x|seven|2|1|77");
	ck_assert_uint_eq(sn->u[0], 2);

	/* version 1 entries still drop their references; puts write v2 */
	b = store_batch_new();
	store_batch_inflight_del(b, bs("c1"), STORE_INFLIGHT_OUT, 3);
	ss.client_id = bs("c1");
	ss.version = 4;
	ss.will_at = 123;
	ss.will_expiry = 45;
	store_batch_session_put(b, &ss);
	ck_assert_int_eq(commit(s, b), 0);
	sn->n = 0;
	ck_assert_int_eq(store_load_payloads(s, see_payload, sn), 0);
	ck_assert_int_eq(sn->n, 1);
	ck_assert_uint_eq(sn->u[0], 1);
	sn->n = 0;
	ck_assert_int_eq(store_load_sessions(s, see_session, sn), 0);
	ck_assert_str_eq(sn->buf[0], "c1|4|0|0|0|0|0|0|0||||123|45");
	b = store_batch_new();
	store_batch_queue_del(b, bs("c1"), 1);
	ck_assert_int_eq(commit(s, b), 0);
	ck_assert_uint_eq(count(s, STORE_DB_PAYLOADS), 0);
	store_close(s);

	/* the migration was stored */
	ck_assert_uint_eq(disk_schema(), STORE_SCHEMA_VERSION);
	s = open_ok(&c);
	ck_assert_uint_eq(store_schema_version(s), STORE_SCHEMA_VERSION);
	ck_assert_uint_eq(count(s, STORE_DB_SESSIONS), 1);
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
see_groups(void *arg, const struct store_queue_entry *q)
{
	struct seen *sn = arg;

	ck_assert_uint_lt(q->groups.len, sizeof(sn->buf[0]));
	sn->u[sn->n] = q->seq * 1000 + q->groups.len;
	if (q->groups.len)
		memcpy(sn->buf[sn->n], q->groups.p, q->groups.len);
	sn->n++;
	return 0;
}

/* A cluster outbox entry keeps the shared groups it was for (opaque bytes,
 * NUL included) across a restart; other entries have none. */
START_TEST(test_queue_groups_roundtrip)
{
	static const char g[] = "\0\x0d$share/g/grp/#";
	struct store_config c = config(STORE_DURABILITY_SYNC);
	struct seen *sn = calloc(1, sizeof(*sn));
	struct store_queue_entry q = { 0 };
	struct store_batch *b;
	struct store *s;

	s = open_ok(&c);
	b = store_batch_new();
	put_payload(b, 1, "m");
	q.client_id = bs("\xffoutbox:1");
	q.seq = 1;
	q.msg_id = 1;
	q.qos = 1;
	q.groups = (struct mqtt_bytes){ (const uint8_t *)g, sizeof(g) - 1 };
	ck_assert_int_eq(store_batch_queue_put(b, &q), 0);
	q.seq = 2;
	q.groups = (struct mqtt_bytes){ NULL, 0 };
	ck_assert_int_eq(store_batch_queue_put(b, &q), 0);
	ck_assert_int_eq(commit(s, b), 0);
	store_close(s);

	s = open_ok(&c);
	ck_assert_int_eq(store_load_queue(s, bs(""), see_groups, sn), 0);
	ck_assert_int_eq(sn->n, 2);
	ck_assert_uint_eq(sn->u[0], 1000 + sizeof(g) - 1);
	ck_assert_int_eq(memcmp(sn->buf[0], g, sizeof(g) - 1), 0);
	ck_assert_uint_eq(sn->u[1], 2000);
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
	put_fan_out(b, 1000, "the one payload", 10000);
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

/* A message fanned out to 10,000 sessions in one batch: the payload record
 * is written once per batch, not once per queue entry. */
START_TEST(test_payload_refs_batched)
{
	struct store_config c = config(STORE_DURABILITY_SYNC);
	struct seen *sn = calloc(1, sizeof(*sn));
	struct store_batch *b;
	struct store *s;
	char cid[32];
	uint64_t w;
	int i;

	c.map_size = 64u << 20;
	s = open_ok(&c);
	w = store_test_ref_writes(s);
	b = store_batch_new();
	put_fan_out(b, 1000, "fanned out", 10000);
	ck_assert_int_eq(commit(s, b), 0);
	ck_assert_uint_eq(count(s, STORE_DB_QUEUE), 10000);
	ck_assert_int_eq(store_load_payloads(s, see_payload, sn), 0);
	ck_assert_int_eq(sn->n, 1);
	ck_assert_str_eq(sn->buf[0], "1000|t/x|fanned out|2|1|77");
	ck_assert_uint_eq(sn->u[0], 10000);
	ck_assert_uint_eq(store_test_ref_writes(s) - w, 1);

	b = store_batch_new();
	for (i = 1; i < 10000; i++) {
		snprintf(cid, sizeof(cid), "client-%d", i);
		ck_assert_int_eq(store_batch_queue_del(b, bs(cid), 1), 0);
	}
	ck_assert_int_eq(commit(s, b), 0);
	sn->n = 0;
	ck_assert_int_eq(store_load_payloads(s, see_payload, sn), 0);
	ck_assert_int_eq(sn->n, 1);
	ck_assert_uint_eq(sn->u[0], 1);
	ck_assert_uint_eq(store_test_ref_writes(s) - w, 2);

	b = store_batch_new();
	ck_assert_int_eq(store_batch_queue_del(b, bs("client-0"), 1), 0);
	ck_assert_int_eq(commit(s, b), 0);
	ck_assert_uint_eq(count(s, STORE_DB_PAYLOADS), 0);
	ck_assert_uint_eq(count(s, STORE_DB_QUEUE), 0);
	ck_assert_uint_eq(store_test_ref_writes(s) - w, 2); /* deleted */
	store_close(s);
	free(sn);
}
END_TEST

/* Loads the payloads and checks "id:refs" for each, in key order. */
static void
check_refs(struct store *s, struct seen *sn, const char *want)
{
	char got[256] = "", one[48];
	int i;

	sn->n = 0;
	ck_assert_int_eq(store_load_payloads(s, see_payload, sn), 0);
	for (i = 0; i < sn->n && i < 8; i++) {
		snprintf(one, sizeof(one), "%s%.*s:%llu", i ? " " : "",
		         (int)strcspn(sn->buf[i], "|"), sn->buf[i],
		         (unsigned long long)sn->u[i]);
		strncat(got, one, sizeof(got) - strlen(got) - 1);
	}
	ck_assert_str_eq(got, want);
}

/* Reference changes to several payloads, interleaved in one batch, are
 * summed per payload. */
START_TEST(test_payload_refs_interleaved)
{
	struct store_config c = config(STORE_DURABILITY_SYNC);
	struct seen *sn = calloc(1, sizeof(*sn));
	struct store_batch *b;
	struct store *s;
	uint64_t w;
	int i;

	s = open_ok(&c);
	b = store_batch_new();
	put_payload(b, 1, "one");
	put_payload(b, 2, "two");
	put_payload(b, 3, "three");
	for (i = 0; i < 300; i++)
		put_queue(b, "c", (uint64_t)i, 1 + (uint64_t)i % 3);
	ck_assert_int_eq(commit(s, b), 0);
	check_refs(s, sn, "1:100 2:100 3:100");

	/* msg 1's entries move to msg 2; a third of msg 3's go */
	w = store_test_ref_writes(s);
	b = store_batch_new();
	for (i = 0; i < 300; i++) {
		if (i % 3 == 0)
			put_queue(b, "c", (uint64_t)i, 2);
		else if (i % 3 == 2 && i < 150)
			store_batch_queue_del(b, bs("c"), (uint64_t)i);
	}
	ck_assert_int_eq(commit(s, b), 0);
	check_refs(s, sn, "2:200 3:50");
	ck_assert_uint_eq(store_test_ref_writes(s) - w, 2);

	/* dropping a payload's last references and taking a new one in the
	 * same batch keeps it: the count is settled at the end of the batch */
	b = store_batch_new();
	for (i = 150; i < 300; i++)
		if (i % 3 == 2)
			store_batch_queue_del(b, bs("c"), (uint64_t)i);
	put_queue(b, "d", 1, 3);
	ck_assert_int_eq(commit(s, b), 0);
	check_refs(s, sn, "2:200 3:1");

	/* a missing payload fails the batch at its put: nothing of it lands */
	b = store_batch_new();
	store_batch_queue_del(b, bs("d"), 1);
	put_queue(b, "d", 2, 3);
	put_queue(b, "d", 3, 42);
	ck_assert_int_eq(commit(s, b), ERR_NOTFOUND);
	check_refs(s, sn, "2:200 3:1");
	ck_assert_uint_eq(count(s, STORE_DB_QUEUE), 201);
	store_close(s);
	free(sn);
}
END_TEST

struct big_check {
	int n;            /* payloads seen */
	int bad;          /* of which with a damaged body */
	uint32_t refs[4]; /* the first ones' refcounts */
};

static int
see_big(void *arg, const struct store_payload *p)
{
	struct big_check *bc = arg;
	size_t i;

	if (bc->n < 4)
		bc->refs[bc->n] = p->refs;
	bc->n++;
	for (i = 0; i < p->payload.len; i++)
		if (p->payload.p[i] != 'x')
			break;
	bc->bad += p->payload.len != 8191 || i != p->payload.len;
	return 0;
}

/* Refcount changes of payloads too large for a page (LMDB overflow
 * pages), two on one leaf page in one batch: records and keys intact. */
START_TEST(test_payload_refs_large)
{
	struct store_config c = config(STORE_DURABILITY_SYNC);
	static char body[8192];
	struct big_check bc = { 0 };
	struct store_batch *b;
	struct store *s;
	int i;

	c.map_size = 4u << 20;
	memset(body, 'x', sizeof(body) - 1);
	s = open_ok(&c);
	b = store_batch_new();
	put_payload(b, 1, body);
	put_payload(b, 2, body);
	for (i = 0; i < 3; i++) {
		put_queue(b, "a", (uint64_t)i, 1);
		put_queue(b, "b", (uint64_t)i, 2);
	}
	ck_assert_int_eq(commit(s, b), 0);
	b = store_batch_new();
	del_queue(b, "a", 0);
	del_queue(b, "b", 0);
	ck_assert_int_eq(commit(s, b), 0);
	b = store_batch_new();
	put_payload(b, 3, "small");
	put_queue(b, "c", 0, 3);
	del_queue(b, "a", 1);
	del_queue(b, "b", 1);
	ck_assert_int_eq(commit(s, b), 0);
	ck_assert_int_eq(store_load_payloads(s, see_big, &bc), 0);
	ck_assert_int_eq(bc.n, 3);
	ck_assert_int_eq(bc.bad, 1); /* the small one */
	ck_assert_uint_eq(bc.refs[0], 1);
	ck_assert_uint_eq(bc.refs[1], 1);
	ck_assert_uint_eq(bc.refs[2], 1);
	b = store_batch_new();
	del_queue(b, "a", 2);
	del_queue(b, "b", 2);
	del_queue(b, "c", 0);
	ck_assert_int_eq(commit(s, b), 0);
	ck_assert_uint_eq(count(s, STORE_DB_PAYLOADS), 0);
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

/* A batch whose commit releases one ack. */
static struct store_batch *
acked_batch(const char *topic, uint32_t acks)
{
	struct store_batch *b = store_batch_new();
	struct store_retained r = { 0 };

	r.topic = bs(topic);
	r.payload = bs("x");
	store_batch_retained_put(b, &r);
	store_batch_set_waiters(b, acks);
	return b;
}

/* With commits releasing acks for several clients, a batch waits (here up
 * to a minute) for others to share its commit; once the batches pending
 * carry as many acks as the last commit released, they go at once. */
START_TEST(test_gather_siblings)
{
	struct store_config c = config(STORE_DURABILITY_SYNC);
	struct store_stats st0, st;
	struct tag tags[2];
	struct done d = { 0 };
	struct store *s;
	uint64_t end;

	c.commit_delay_ms = 60000;
	s = open_ok(&c);
	/* the first commit never waits: no group has released acks yet */
	ck_assert_int_eq(commit(s, acked_batch("t/0", 2)), 0);
	store_stats_get(s, &st0);
	tags[0] = (struct tag){ &d, 0 };
	tags[1] = (struct tag){ &d, 1 };
	ck_assert_int_eq(
	        store_submit(s, acked_batch("t/1", 1), on_done_tag, &tags[0]),
	        0);
	/* t/1 alone carries 1 ack of the 2 the last commit released: it
	 * waits for t/2, however long that takes (up to the minute) */
	end = ms_now() + 30000;
	while (!store_test_gathering(s)) {
		ck_assert_msg(ms_now() < end, "t/1 was never held back");
		sched_yield();
	}
	ck_assert_int_eq(store_poll_completions(s), 0);
	ck_assert_int_eq(d.n, 0);
	ck_assert_int_eq(
	        store_submit(s, acked_batch("t/2", 1), on_done_tag, &tags[1]),
	        0);
	wait_done(s, &d, 2);
	ck_assert_int_eq(d.order[0], 0);
	ck_assert_int_eq(d.order[1], 1);
	ck_assert_int_eq(d.errs[0], 0);
	ck_assert_int_eq(d.errs[1], 0);
	store_stats_get(s, &st);
	ck_assert_uint_eq(st.txns - st0.txns, 1); /* one commit for both */
	store_close(s);
}
END_TEST

/* A lone client waiting for each ack before its next publish never waits
 * for others: with a minute's window, 20 commits in a row take no time. */
START_TEST(test_gather_lone_client)
{
	struct store_config c = config(STORE_DURABILITY_SYNC);
	struct store_stats st;
	struct store *s;
	char topic[16];
	int i;

	c.commit_delay_ms = 60000;
	s = open_ok(&c);
	for (i = 0; i < 20; i++) {
		snprintf(topic, sizeof(topic), "t/%d", i);
		ck_assert_int_eq(commit(s, acked_batch(topic, 1)), 0);
	}
	store_stats_get(s, &st);
	ck_assert_uint_eq(st.txns, 20);
	ck_assert_uint_eq(count(s, STORE_DB_RETAINED), 20);
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

/* --- puts deleted again within their commit group ------------------------ */

/* wait_done without Check's asserts, which allocate (to report progress
 * to the runner): for a fault armed for the writer. */
static bool
wait_quietly(struct store *s, struct done *d, int want)
{
	struct pollfd pfd = { store_notify_fd(s), POLLIN, 0 };
	uint64_t end = ms_now() + 30000;

	while (d->n < want && ms_now() < end)
		if (poll(&pfd, 1, 100) > 0)
			store_poll_completions(s);
	return d->n >= want;
}

/* Submits b[0..n) while the writer is held, so that they make one commit
 * group, waits for them and checks they completed in order, in at most
 * max_txns transactions; their errors go to errs. Returns the ops the
 * group skipped (stats.cancelled). */
static uint64_t
commit_group_txns(struct store *s, struct store_batch **b, int n, int *errs,
                  uint64_t max_txns)
{
	struct store_stats st0, st;
	struct tag tags[16];
	struct done d = { 0 };
	int i;

	ck_assert_int_le(n, 16);
	store_stats_get(s, &st0);
	store_test_hold(s, true);
	for (i = 0; i < n; i++) {
		tags[i].d = &d;
		tags[i].tag = i;
		ck_assert_int_eq(store_submit(s, b[i], on_done_tag, &tags[i]),
		                 0);
	}
	store_test_hold(s, false);
	wait_done(s, &d, n);
	for (i = 0; i < n; i++) {
		ck_assert_int_eq(d.order[i], i);
		errs[i] = d.errs[i];
	}
	store_stats_get(s, &st);
	ck_assert_uint_eq(st.batches - st0.batches, (uint64_t)n);
	ck_assert_uint_ge(st.txns - st0.txns, 1);
	ck_assert_uint_le(st.txns - st0.txns, max_txns);
	return st.cancelled - st0.cancelled;
}

/* commit_group_txns for a group committed in one transaction. */
static uint64_t
commit_group(struct store *s, struct store_batch **b, int n, int *errs)
{
	return commit_group_txns(s, b, n, errs, 1);
}

/* The pattern of a QoS 1 delivery acknowledged at once: the payload, the
 * queue entry and the in-flight entry, then the two deletes, land in one
 * group. Nothing is written, not even the payload. */
START_TEST(test_cancel_in_group)
{
	struct store_config c = config(STORE_DURABILITY_SYNC);
	struct store_batch *b[2];
	struct store *s;
	int errs[2];
	uint64_t w;

	s = open_ok(&c);
	w = store_test_ref_writes(s);
	b[0] = store_batch_new();
	put_payload(b[0], 1, "m");
	put_queue(b[0], "c1", 1, 1);
	put_inflight(b[0], "c1", 1, STORE_INFLIGHT_SENT);
	b[1] = store_batch_new();
	del_inflight(b[1], "c1", 1);
	del_queue(b[1], "c1", 1);
	ck_assert_uint_eq(commit_group(s, b, 2, errs), 4);
	ck_assert_int_eq(errs[0], 0);
	ck_assert_int_eq(errs[1], 0);
	ck_assert_uint_eq(count(s, STORE_DB_QUEUE), 0);
	ck_assert_uint_eq(count(s, STORE_DB_INFLIGHT), 0);
	ck_assert_uint_eq(count(s, STORE_DB_PAYLOADS), 0);
	ck_assert_uint_eq(store_test_ref_writes(s) - w, 0);

	/* within one batch too */
	b[0] = store_batch_new();
	put_payload(b[0], 2, "m");
	put_queue(b[0], "c1", 2, 2);
	del_queue(b[0], "c1", 2);
	ck_assert_uint_eq(commit_group(s, b, 1, errs), 2);
	ck_assert_int_eq(errs[0], 0);
	ck_assert_uint_eq(count(s, STORE_DB_QUEUE), 0);
	ck_assert_uint_eq(count(s, STORE_DB_PAYLOADS), 0);
	store_close(s);
}
END_TEST

/* A put that replaces an entry stored before the group is applied (its
 * reference moves), and so is the delete; refcounts stay exact. */
START_TEST(test_cancel_not_when_stored)
{
	struct store_config c = config(STORE_DURABILITY_SYNC);
	struct seen *sn = calloc(1, sizeof(*sn));
	struct store_batch *b[2];
	struct store *s;
	int errs[2];

	s = open_ok(&c);
	b[0] = store_batch_new();
	put_payload(b[0], 1, "one");
	put_queue(b[0], "c1", 1, 1);
	put_queue(b[0], "c2", 1, 1);
	ck_assert_int_eq(commit(s, b[0]), 0);
	check_refs(s, sn, "1:2");

	b[0] = store_batch_new();
	put_payload(b[0], 2, "two");
	put_queue(b[0], "c1", 1, 2); /* replaces: 1 loses, 2 gains */
	put_inflight(b[0], "c1", 5, STORE_INFLIGHT_SENT);
	b[1] = store_batch_new();
	del_inflight(b[1], "c1", 5);
	del_queue(b[1], "c1", 1);
	ck_assert_uint_eq(commit_group(s, b, 2, errs), 2); /* in-flight */
	ck_assert_int_eq(errs[0], 0);
	ck_assert_int_eq(errs[1], 0);
	check_refs(s, sn, "1:1");
	ck_assert_uint_eq(count(s, STORE_DB_QUEUE), 1);
	ck_assert_uint_eq(count(s, STORE_DB_INFLIGHT), 0);

	b[0] = store_batch_new();
	del_queue(b[0], "c2", 1);
	ck_assert_int_eq(commit(s, b[0]), 0);
	ck_assert_uint_eq(count(s, STORE_DB_PAYLOADS), 0);
	store_close(s);
	free(sn);
}
END_TEST

/* The delete in a later group: both are applied. */
START_TEST(test_cancel_not_across_groups)
{
	struct store_config c = config(STORE_DURABILITY_SYNC);
	struct seen *sn = calloc(1, sizeof(*sn));
	struct store_stats st0, st;
	struct store_batch *b;
	struct store *s;

	s = open_ok(&c);
	store_stats_get(s, &st0);
	b = store_batch_new();
	put_payload(b, 1, "m");
	put_queue(b, "c1", 1, 1);
	put_inflight(b, "c1", 1, STORE_INFLIGHT_SENT);
	ck_assert_int_eq(commit(s, b), 0);
	check_refs(s, sn, "1:1");
	ck_assert_uint_eq(count(s, STORE_DB_QUEUE), 1);
	ck_assert_uint_eq(count(s, STORE_DB_INFLIGHT), 1);
	b = store_batch_new();
	del_inflight(b, "c1", 1);
	del_queue(b, "c1", 1);
	ck_assert_int_eq(commit(s, b), 0);
	ck_assert_uint_eq(count(s, STORE_DB_QUEUE), 0);
	ck_assert_uint_eq(count(s, STORE_DB_INFLIGHT), 0);
	ck_assert_uint_eq(count(s, STORE_DB_PAYLOADS), 0);
	store_stats_get(s, &st);
	ck_assert_uint_eq(st.cancelled, st0.cancelled);
	store_close(s);
	free(sn);
}
END_TEST

/* A put, a session delete of its client, a put again: the second put is
 * what stays. No run of puts and delete spans a session delete; one that
 * starts after it may still be skipped. */
START_TEST(test_cancel_session_del)
{
	struct store_config c = config(STORE_DURABILITY_SYNC);
	struct seen *sn = calloc(1, sizeof(*sn));
	struct store_batch *b[4];
	struct store *s;
	int errs[4], i;

	s = open_ok(&c);
	b[0] = store_batch_new();
	put_payload(b[0], 1, "one");
	put_queue(b[0], "c1", 1, 1);
	put_inflight(b[0], "c1", 1, STORE_INFLIGHT_SENT);
	put_inflight(b[0], "c1", 3, STORE_INFLIGHT_SENT);
	b[1] = store_batch_new();
	ck_assert_int_eq(store_batch_session_del(b[1], bs("c1")), 0);
	b[2] = store_batch_new();
	put_payload(b[2], 2, "two");
	put_queue(b[2], "c1", 1, 2);
	put_inflight(b[2], "c1", 1, STORE_INFLIGHT_PUBREC);
	put_inflight(b[2], "c1", 2, STORE_INFLIGHT_SENT);
	b[3] = store_batch_new();
	del_inflight(b[3], "c1", 2);
	del_inflight(b[3], "c1", 3); /* deleted by the session delete too */
	ck_assert_uint_eq(commit_group(s, b, 4, errs), 2);
	for (i = 0; i < 4; i++)
		ck_assert_int_eq(errs[i], 0);
	check_refs(s, sn, "2:1");
	sn->n = 0;
	ck_assert_int_eq(store_load_queue(s, bs("c1"), see_queue, sn), 0);
	ck_assert_int_eq(sn->n, 1);
	ck_assert_uint_eq(sn->u[0], 1);
	sn->n = 0;
	ck_assert_int_eq(store_load_inflight(s, bs("c1"), see_inflight, sn), 0);
	ck_assert_int_eq(sn->n, 1);
	ck_assert_str_eq(sn->buf[0], "c1|0|1|1|1|0|0|0");
	store_close(s);
	free(sn);
}
END_TEST

/* One payload fanned out to 1,000 queues, 999 of them acknowledged in the
 * same group: one entry and one reference are written. */
START_TEST(test_cancel_fan_out)
{
	struct store_config c = config(STORE_DURABILITY_SYNC);
	struct seen *sn = calloc(1, sizeof(*sn));
	struct store_batch *b[2];
	struct store *s;
	char cid[32];
	int errs[2], i;
	uint64_t w;

	c.map_size = 16u << 20;
	s = open_ok(&c);
	w = store_test_ref_writes(s);
	b[0] = store_batch_new();
	put_fan_out(b[0], 7, "fanned out", 1000);
	b[1] = store_batch_new();
	for (i = 1; i < 1000; i++) {
		snprintf(cid, sizeof(cid), "client-%d", i);
		del_queue(b[1], cid, 1);
	}
	ck_assert_uint_eq(commit_group(s, b, 2, errs), 1998);
	ck_assert_int_eq(errs[0], 0);
	ck_assert_int_eq(errs[1], 0);
	ck_assert_uint_eq(count(s, STORE_DB_QUEUE), 1);
	ck_assert_int_eq(store_load_queue(s, bs("client-0"), see_queue, sn), 0);
	ck_assert_int_eq(sn->n, 1);
	check_refs(s, sn, "7:1");
	ck_assert_uint_eq(store_test_ref_writes(s) - w, 1);
	store_close(s);
	free(sn);
}
END_TEST

/* The batch holding the delete fails: the delete wins, the put it
 * cancelled is not written either. */
START_TEST(test_cancel_delete_batch_fails)
{
	struct store_config c = config(STORE_DURABILITY_SYNC);
	struct store_batch *b[2];
	struct store *s;
	int errs[2];

	s = open_ok(&c);
	b[0] = store_batch_new();
	put_payload(b[0], 1, "m");
	put_queue(b[0], "c1", 1, 1);
	b[1] = store_batch_new();
	del_queue(b[1], "c1", 1);
	put_queue(b[1], "c1", 2, 12345); /* no such payload */
	ck_assert_uint_eq(commit_group(s, b, 2, errs), 2);
	ck_assert_int_eq(errs[0], 0);
	ck_assert_int_eq(errs[1], ERR_NOTFOUND);
	ck_assert_uint_eq(count(s, STORE_DB_QUEUE), 0);
	ck_assert_uint_eq(count(s, STORE_DB_PAYLOADS), 0);
	store_close(s);
}
END_TEST

/* A later batch of the group references the payload without putting it:
 * it relies on the payload being stored, so the entries referencing it
 * are all written. */
START_TEST(test_cancel_not_loose_payload)
{
	struct store_config c = config(STORE_DURABILITY_SYNC);
	struct seen *sn = calloc(1, sizeof(*sn));
	struct store_batch *b[3];
	struct store *s;
	int errs[3], i;

	s = open_ok(&c);
	b[0] = store_batch_new();
	put_payload(b[0], 2, "two");
	put_queue(b[0], "c1", 1, 2);
	b[1] = store_batch_new();
	put_queue(b[1], "c2", 1, 2);
	b[2] = store_batch_new();
	del_queue(b[2], "c1", 1);
	ck_assert_uint_eq(commit_group(s, b, 3, errs), 0);
	for (i = 0; i < 3; i++)
		ck_assert_int_eq(errs[i], 0);
	ck_assert_uint_eq(count(s, STORE_DB_QUEUE), 1);
	check_refs(s, sn, "2:1");
	store_close(s);
	free(sn);
}
END_TEST

/* Runs: put, put again in another state, delete (QoS 2), then the same key
 * again; a run of more puts than a plan follows is applied. */
START_TEST(test_cancel_runs)
{
	struct store_config c = config(STORE_DURABILITY_SYNC);
	struct store_batch *b[5];
	struct store *s;
	int errs[5], i;

	s = open_ok(&c);
	for (i = 0; i < 5; i++)
		b[i] = store_batch_new();
	put_inflight(b[0], "c1", 7, STORE_INFLIGHT_SENT);
	put_inflight(b[1], "c1", 7, STORE_INFLIGHT_PUBREC);
	del_inflight(b[2], "c1", 7);
	put_inflight(b[3], "c1", 7, STORE_INFLIGHT_SENT);
	del_inflight(b[4], "c1", 7);
	for (i = 0; i < 4; i++)
		put_inflight(b[i], "c1", 8, STORE_INFLIGHT_SENT);
	del_inflight(b[4], "c1", 8);
	ck_assert_uint_eq(commit_group(s, b, 5, errs), 5);
	for (i = 0; i < 5; i++)
		ck_assert_int_eq(errs[i], 0);
	ck_assert_uint_eq(count(s, STORE_DB_INFLIGHT), 0);
	store_close(s);
}
END_TEST

/* A run after one that is applied (its key was stored) is applied too:
 * whether the first delete lands depends on its batch. */
START_TEST(test_cancel_after_applied_run)
{
	struct store_config c = config(STORE_DURABILITY_SYNC);
	struct store_batch *b[4];
	struct store *s;
	int errs[4], i;

	s = open_ok(&c);
	b[0] = store_batch_new();
	put_inflight(b[0], "c1", 9, STORE_INFLIGHT_SENT);
	ck_assert_int_eq(commit(s, b[0]), 0);
	for (i = 0; i < 4; i++)
		b[i] = store_batch_new();
	put_inflight(b[0], "c1", 9, STORE_INFLIGHT_PUBREC);
	del_inflight(b[1], "c1", 9);
	put_queue(b[1], "c1", 1, 999); /* no such payload: b[1] fails */
	put_inflight(b[2], "c1", 9, STORE_INFLIGHT_SENT);
	del_inflight(b[3], "c1", 9);
	ck_assert_uint_eq(commit_group(s, b, 4, errs), 0);
	ck_assert_int_eq(errs[0], 0);
	ck_assert_int_eq(errs[1], ERR_NOTFOUND);
	ck_assert_int_eq(errs[2], 0);
	ck_assert_int_eq(errs[3], 0);
	ck_assert_uint_eq(count(s, STORE_DB_INFLIGHT), 0);
	store_close(s);
}
END_TEST

static int
see_refs_not_1(void *arg, const struct store_payload *p)
{
	int *n = arg;

	*n += p->refs != 1;
	return 0;
}

/* A group that outgrows the map is split and redone: what it skips stays
 * skipped, the rest lands once. */
START_TEST(test_cancel_map_growth)
{
	struct store_config c = config(STORE_DURABILITY_SYNC);
	static char body[8192];
	struct store_batch *b[16];
	struct store_stats st;
	struct store *s;
	int errs[16], i, bad = 0;

	c.map_size = 64 << 10;
	c.max_size = 8 << 20;
	memset(body, 'x', sizeof(body) - 1);
	s = open_ok(&c);
	for (i = 0; i < 16; i++) {
		b[i] = store_batch_new();
		put_payload(b[i], 100 + (uint64_t)i, body);
		put_queue(b[i], "c", (uint64_t)i, 100 + (uint64_t)i);
		put_inflight(b[i], "c", (uint16_t)(i + 1), STORE_INFLIGHT_SENT);
		if (i > 0)
			del_inflight(b[i], "c", (uint16_t)i);
	}
	ck_assert_uint_eq(commit_group_txns(s, b, 16, errs, 16), 30);
	for (i = 0; i < 16; i++)
		ck_assert_int_eq(errs[i], 0);
	store_stats_get(s, &st);
	ck_assert_uint_ge(st.grows, 1);
	ck_assert_uint_eq(count(s, STORE_DB_QUEUE), 16);
	ck_assert_uint_eq(count(s, STORE_DB_INFLIGHT), 1);
	ck_assert_uint_eq(count(s, STORE_DB_PAYLOADS), 16);
	ck_assert_int_eq(store_load_payloads(s, see_refs_not_1, &bad), 0);
	ck_assert_int_eq(bad, 0);
	store_close(s);
}
END_TEST

/* When the writer cannot plan a group (no memory), it applies it as it
 * is: nothing skipped, payloads found where they were put. */
START_TEST(test_cancel_plan_no_memory)
{
	struct store_config c = config(STORE_DURABILITY_SYNC);
	struct seen *sn = calloc(1, sizeof(*sn));
	struct store_batch *b[2];
	struct tag tags[2];
	struct done d = { 0 };
	struct store_stats st;
	struct store *s;
	bool done;
	int i;

	s = open_ok(&c); /* its writer has not planned a group yet */
	b[0] = store_batch_new();
	put_payload(b[0], 1, "one");
	put_queue(b[0], "c1", 1, 1);
	put_payload(b[0], 2, "two");
	put_payload(b[0], 3, "three");
	put_queue(b[0], "c1", 2, 3);
	put_queue(b[0], "c1", 3, 2);
	b[1] = store_batch_new();
	del_queue(b[1], "c1", 1);
	store_test_hold(s, true);
	for (i = 0; i < 2; i++) {
		tags[i].d = &d;
		tags[i].tag = i;
		ck_assert_int_eq(store_submit(s, b[i], on_done_tag, &tags[i]),
		                 0);
	}
	fault_arm(1); /* the plan's table */
	store_test_hold(s, false);
	done = wait_quietly(s, &d, 2);
	fault_off();
	ck_assert(done);
	ck_assert_int_eq(d.errs[0], 0);
	ck_assert_int_eq(d.errs[1], 0);
	store_stats_get(s, &st);
	ck_assert_uint_eq(st.cancelled, 0);
	ck_assert_uint_eq(count(s, STORE_DB_QUEUE), 2);
	check_refs(s, sn, "2:1 3:1");
	store_close(s);
	free(sn);
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
	tcase_add_test(tc, test_schema_1_migrated);
	tcase_add_test(tc, test_record_v1_changed);
	tcase_add_test(tc, test_record_v1_unchanged);
	tcase_add_test(tc, test_retained_roundtrip);
	tcase_add_test(tc, test_marks_roundtrip);
	tcase_add_test(tc, test_retained_long_topics);
	tcase_add_test(tc, test_session_sub_inflight_roundtrip);
	tcase_add_test(tc, test_queue_order);
	tcase_add_test(tc, test_load_stops_on_callback);
	tcase_add_test(tc, test_delete);
	tcase_add_test(tc, test_payload_shared);
	tcase_add_test(tc, test_payload_refs_checked);
	tcase_add_test(tc, test_payload_refs_batched);
	tcase_add_test(tc, test_payload_refs_interleaved);
	tcase_add_test(tc, test_payload_refs_large);
	tcase_add_test(tc, test_bad_input_sticky);
	tcase_add_test(tc, test_group_commit_and_order);
	tcase_add_test(tc, test_group_commit_unheld);
	tcase_add_test(tc, test_close_completes_pending);
	tcase_add_test(tc, test_map_growth_and_limit);
	tcase_add_test(tc, test_batch_larger_than_max);
	tcase_add_test(tc, test_cancel_in_group);
	tcase_add_test(tc, test_cancel_not_when_stored);
	tcase_add_test(tc, test_cancel_not_across_groups);
	tcase_add_test(tc, test_cancel_session_del);
	tcase_add_test(tc, test_cancel_fan_out);
	tcase_add_test(tc, test_cancel_delete_batch_fails);
	tcase_add_test(tc, test_cancel_not_loose_payload);
	tcase_add_test(tc, test_cancel_runs);
	tcase_add_test(tc, test_cancel_after_applied_run);
	tcase_add_test(tc, test_cancel_map_growth);
	tcase_add_test(tc, test_cancel_plan_no_memory);
	tcase_add_test(tc, test_corrupt_data_file);
	tcase_add_test(tc, test_data_dir_not_a_dir);
	tcase_add_test(tc, test_queue_groups_roundtrip);
	tcase_add_test(tc, test_gather_siblings);
	tcase_add_test(tc, test_gather_lone_client);
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
