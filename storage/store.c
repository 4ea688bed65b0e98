/*
 * The store: the LMDB environment and its named tables, the one writer
 * thread that owns every write transaction (group commit with the puts a
 * group deletes again skipped, map growth on MDB_MAP_FULL, fsync per
 * durability), the completion queue handed back to the loop through an
 * eventfd, and the read-transaction loaders.
 */
#include "storage/storage.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <lmdb.h>

#include "storage/storage_int.h"

#define STORE_FULL      2 /* internal: MDB_MAP_FULL, grow and retry */
#define DEFAULT_MAP     ((size_t)1 << 20)
#define DEFAULT_SYNC_MS 1000
#define REFS_KEEP       4096 /* ref_delta entries kept between batches */
/* writer_gather: a group is taken at once when GATHER_FULL batches are
 * pending; the window applies after a group that released GATHER_SIBLINGS
 * acks or more; GATHER_GAP_US of quiet ends a group as large as the last */
#define GATHER_FULL     1024
#define GATHER_SIBLINGS 2
#define GATHER_GAP_US   300

static const char *const db_names[STORE_DB_COUNT] = {
	"meta", "retained", "sessions", "subs", "queue", "payloads", "inflight",
};

/* A payload reference change of the batch being applied, or its put. */
struct ref_delta {
	uint64_t id;        /* payload msg id */
	int64_t delta;      /* references gained (> 0) or dropped (< 0) */
	const uint8_t *val; /* the record an OP_PAYLOAD_PUT of this batch
	                     * gives (refcount 0), or NULL */
	size_t vlen;
};

struct store {
	MDB_env *env;                /* NULL under durability none */
	MDB_dbi dbi[STORE_DB_COUNT]; /* by enum store_db */
	enum store_durability durability;
	uint32_t sync_ms;   /* relaxed: fsync period */
	size_t max_size;    /* map growth limit */
	int efd;            /* eventfd: completions are waiting */
	uint64_t node_id;   /* from meta */
	uint32_t schema;    /* version on disk after open (and migration) */
	struct buf name;    /* node name from meta */
	struct buf scratch; /* writer thread only: record copies */
	/* writer thread only: the payload reference changes of the batch
	 * being applied, written once per payload at its end (refs_apply);
	 * empty between batches */
	struct ref_delta *refs;
	size_t n_refs;       /* entries used */
	size_t cap_refs;     /* entries allocated */
	uint32_t *ref_slot;  /* refs by payload id: index + 1, 0 = empty */
	size_t ref_mask;     /* slots - 1; 2 x cap_refs slots */
	uint64_t ref_seen;   /* a payload id found to exist in this batch */
	uint64_t ref_writes; /* payload record writes (test hook) */
	/* writer thread only: the cursors of the batch being applied, by
	 * table, opened on first use and closed at its end */
	MDB_cursor *cur[STORE_DB_COUNT];
	struct group_plan plan; /* writer thread only: of the group */
	bool planned;           /* the group's ops carry their OP_F_* flags */
	uint64_t cancelled;     /* ops the group's plan skips */
	pthread_t writer;
	bool started;             /* writer thread running */
	pthread_rwlock_t resize;  /* read txns read-lock; resize write-locks */
	pthread_mutex_t mu;       /* guards the fields below */
	pthread_cond_t cv;        /* wakes the writer */
	struct store_batch *pend; /* submitted, not yet taken */
	struct store_batch **pend_tail;
	struct store_batch *done; /* completed, not yet polled */
	struct store_batch **done_tail;
	bool stop;             /* store_close called */
	bool hold;             /* test hook: writer takes nothing */
	uint64_t delay_us;     /* commit_delay_ms: the longest a pending
	                        * batch waits for others to join it */
	uint64_t first_us;     /* when the first pending batch came */
	uint64_t last_us;      /* when the last one came */
	size_t n_pend;         /* batches pending */
	uint64_t pend_acks;    /* acks waiting for them (waiters) */
	uint64_t last_acks;    /* acks that waited for the last group */
	bool gathering;        /* test hook: the writer waits in the window */
	struct store_stats st; /* counters */
};

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* MDB_* / errno -> ERR_*, keeping MDB_MAP_FULL apart as STORE_FULL. */
static int
mdb_to_err(int rc)
{
	switch (rc) {
	case 0:
		return 0;
	case MDB_MAP_FULL:
		return STORE_FULL;
	case ENOMEM:
		return ERR_NOMEM;
	case MDB_TXN_FULL:
		return ERR_LIMIT;
	default:
		return ERR_IO;
	}
}

static uint32_t
be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static void
notify(struct store *s)
{
	uint64_t one = 1;

	/* Fails only when the counter would overflow: still readable. */
	if (write(s->efd, &one, sizeof(one)) < 0)
		return;
}

/* --- open and close ------------------------------------------------------ */

static void
store_free(struct store *s)
{
	struct store_batch *b;

	if (s->env != NULL)
		mdb_env_close(s->env);
	while ((b = s->pend) != NULL) {
		s->pend = b->next;
		store_batch_free(b);
	}
	if (s->efd >= 0)
		close(s->efd);
	buf_fini(&s->name);
	buf_fini(&s->scratch);
	free(s->refs);
	free(s->ref_slot);
	group_plan_fini(&s->plan);
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
	pthread_rwlock_destroy(&s->resize);
	free(s);
}

static int
store_alloc(const struct store_config *cfg, struct store **out)
{
	pthread_condattr_t ca;
	struct store *s;

	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return ERR_NOMEM;
	s->durability = cfg->durability;
	s->delay_us = (uint64_t)cfg->commit_delay_ms * 1000;
	s->sync_ms =
	        cfg->sync_interval_ms ? cfg->sync_interval_ms : DEFAULT_SYNC_MS;
	s->pend_tail = &s->pend;
	s->done_tail = &s->done;
	buf_init(&s->name);
	buf_init(&s->scratch);
	pthread_mutex_init(&s->mu, NULL);
	pthread_rwlock_init(&s->resize, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cv, &ca);
	pthread_condattr_destroy(&ca);
	s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (s->efd < 0) {
		store_free(s);
		return ERR_IO;
	}
	*out = s;
	return 0;
}

static const char *
open_why(int rc)
{
	switch (rc) {
	case MDB_INVALID:
		return "data.mdb is not an LMDB file or is damaged";
	case MDB_VERSION_MISMATCH:
		return "data.mdb was written by an incompatible LMDB version";
	case MDB_CORRUPTED:
	case MDB_PAGE_NOTFOUND:
		return "data.mdb is damaged";
	case EACCES:
	case EPERM:
	case EROFS:
		return "data dir or its files: permission denied";
	case ENOSPC:
		return "data dir: no space left on device";
	case ENOMEM:
		return "cannot map data.mdb: out of memory or address space";
	default:
		return "cannot open data.mdb or lock.mdb in the data dir";
	}
}

static int
env_open(struct store *s, const struct store_config *cfg, const char **why)
{
	size_t map = cfg->map_size ? cfg->map_size : DEFAULT_MAP;
	unsigned int flags = MDB_NOTLS;
	MDB_envinfo info;
	struct stat sb;
	int rc;

	if (cfg->data_dir == NULL || cfg->data_dir[0] == '\0') {
		*why = "no data dir configured";
		return ERR_IO;
	}
	if (mkdir(cfg->data_dir, 0700) != 0 && errno != EEXIST) {
		*why = "data dir is missing and cannot be created";
		return ERR_IO;
	}
	if (stat(cfg->data_dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
		*why = "data dir is not a directory";
		return ERR_IO;
	}
	rc = mdb_env_create(&s->env);
	if (rc != 0) {
		s->env = NULL;
		*why = "cannot create the LMDB environment";
		return ERR_NOMEM;
	}
	mdb_env_set_maxdbs(s->env, STORE_DB_COUNT);
	mdb_env_set_mapsize(s->env, map);
	if (s->durability == STORE_DURABILITY_RELAXED)
		flags |= MDB_NOSYNC;
	rc = mdb_env_open(s->env, cfg->data_dir, flags, 0600);
	if (rc != 0) {
		*why = open_why(rc);
		return rc == ENOMEM ? ERR_NOMEM : ERR_IO;
	}
	mdb_env_info(s->env, &info);
	s->st.map_size = info.me_mapsize;
	s->max_size = cfg->max_size ? cfg->max_size : map;
	if (s->max_size < info.me_mapsize)
		s->max_size = info.me_mapsize; /* never shrink existing data */
	return 0;
}

static int
meta_get(struct store *s, MDB_txn *txn, const char *key, MDB_val *v)
{
	MDB_val k = { strlen(key), (void *)key };

	return mdb_get(txn, s->dbi[STORE_DB_META], &k, v);
}

static int
meta_put(struct store *s, MDB_txn *txn, const char *key, const void *p,
         size_t n)
{
	MDB_val k = { strlen(key), (void *)key };
	MDB_val v = { n, (void *)p };

	return mdb_put(txn, s->dbi[STORE_DB_META], &k, &v, 0);
}

static uint64_t
new_node_id(void)
{
	uint64_t id = 0;

	if (getrandom(&id, sizeof(id), 0) != (ssize_t)sizeof(id))
		id = now_ms() ^ ((uint64_t)getpid() << 32);
	return id ? id : 1;
}

/* Writes STORE_SCHEMA_VERSION to meta (create or migration). */
static int
schema_put(struct store *s, MDB_txn *txn, const char **why)
{
	uint8_t ver[4] = { 0, 0, 0, STORE_SCHEMA_VERSION };
	int rc;

	s->schema = STORE_SCHEMA_VERSION;
	rc = meta_put(s, txn, "schema_version", ver, sizeof(ver));
	*why = "data.mdb: cannot write the schema version";
	return rc == MDB_MAP_FULL ? ERR_LIMIT : mdb_to_err(rc);
}

/*
 * Schema version: absent on create (write it), newer refused, older
 * migrated here one step at a time, inside the open transaction so that a
 * failed migration leaves the data dir as it was. The steps:
 *   1 -> 2: session records gained will_at and will_expiry, in-flight
 *           records seq (record version 2). Version 1 records stay
 *           readable as they are (the new fields read as 0) and are
 *           rewritten as version 2 when next put, so only the stored
 *           schema version changes.
 *   2 -> 3: queue records gained groups (record version 3), read as
 *           empty from older records: again only the version changes.
 */
static int
meta_schema(struct store *s, MDB_txn *txn, const char **why)
{
	MDB_val v;
	int rc;

	rc = meta_get(s, txn, "schema_version", &v);
	if (rc == MDB_NOTFOUND)
		return schema_put(s, txn, why);
	if (rc == 0 && v.mv_size == 4)
		s->schema = be32(v.mv_data);
	if (rc != 0 || v.mv_size != 4 || s->schema < 1) {
		*why = "data.mdb: schema version unreadable (damaged)";
		return ERR_IO;
	}
	if (s->schema > STORE_SCHEMA_VERSION) {
		*why = "data.mdb: schema version is newer than this mqd "
		       "supports (upgrade mqd)";
		return ERR_WRONG_STATE;
	}
	if (s->schema < STORE_SCHEMA_VERSION)
		return schema_put(s, txn, why); /* nothing to rewrite */
	return 0;
}

static int
meta_node(struct store *s, MDB_txn *txn, const char *name, const char **why)
{
	uint8_t idb[8];
	struct buf ib;
	MDB_val v;
	int rc;

	*why = "data.mdb: node metadata unreadable (damaged)";
	rc = meta_get(s, txn, "node_id", &v);
	if (rc == MDB_NOTFOUND) {
		s->node_id = new_node_id();
		buf_init_fixed(&ib, idb, sizeof(idb));
		key_put_u64(&ib, s->node_id);
		rc = meta_put(s, txn, "node_id", idb, sizeof(idb));
	} else if (rc == 0 && v.mv_size == 8) {
		s->node_id = key_get_u64(v.mv_data);
	} else if (rc == 0) {
		return ERR_IO;
	}
	if (rc == 0 && name != NULL)
		rc = meta_put(s, txn, "node_name", name, strlen(name));
	if (rc == 0)
		rc = meta_get(s, txn, "node_name", &v);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return rc == MDB_MAP_FULL ? ERR_LIMIT : mdb_to_err(rc);
	buf_put_bytes(&s->name, v.mv_data, v.mv_size);
	return buf_failed(&s->name) ? ERR_NOMEM : 0;
}

static int
meta_load(struct store *s, const struct store_config *cfg, const char **why)
{
	MDB_txn *txn;
	int i, rc;

	rc = mdb_txn_begin(s->env, NULL, 0, &txn);
	if (rc != 0) {
		*why = open_why(rc);
		return rc == ENOMEM ? ERR_NOMEM : ERR_IO;
	}
	for (i = 0; i < STORE_DB_COUNT; i++) {
		rc = mdb_dbi_open(txn, db_names[i], MDB_CREATE, &s->dbi[i]);
		if (rc != 0) {
			*why = rc == MDB_MAP_FULL
			               ? "data.mdb: map_size too small to "
			                 "create "
			                 "the tables"
			               : "data.mdb: cannot open its tables "
			                 "(damaged?)";
			rc = rc == MDB_MAP_FULL ? ERR_LIMIT : ERR_IO;
			goto out_abort;
		}
	}
	rc = meta_schema(s, txn, why);
	if (rc == 0)
		rc = meta_node(s, txn, cfg->node_name, why);
	if (rc != 0)
		goto out_abort;
	rc = mdb_txn_commit(txn);
	if (rc != 0) {
		*why = "data.mdb: cannot commit the metadata";
		return rc == MDB_MAP_FULL ? ERR_LIMIT : mdb_to_err(rc);
	}
	*why = NULL;
	return 0;
out_abort:
	mdb_txn_abort(txn);
	return rc;
}

static void *writer_main(void *arg);
static uint64_t now_us(void);

int
store_open(const struct store_config *cfg, struct store **out, const char **why)
{
	const char *w = "out of memory";
	struct store *s;
	int rc;

	*out = NULL;
	rc = store_alloc(cfg, &s);
	if (rc != 0) {
		if (rc == ERR_IO)
			w = "cannot create the notification eventfd";
		goto out;
	}
	if (cfg->durability == STORE_DURABILITY_NONE) {
		if (cfg->node_name != NULL)
			buf_put_bytes(&s->name, cfg->node_name,
			              strlen(cfg->node_name));
		rc = buf_failed(&s->name) ? ERR_NOMEM : 0;
		if (rc != 0)
			goto out_free;
		*out = s;
		return 0;
	}
	rc = env_open(s, cfg, &w);
	if (rc == 0)
		rc = meta_load(s, cfg, &w);
	if (rc != 0)
		goto out_free;
	if (pthread_create(&s->writer, NULL, writer_main, s) != 0) {
		w = "cannot start the storage writer thread";
		rc = ERR_NOMEM;
		goto out_free;
	}
	s->started = true;
	*out = s;
	return 0;
out_free:
	store_free(s);
out:
	if (why != NULL)
		*why = w;
	return rc;
}

void
store_close(struct store *s)
{
	if (s == NULL)
		return;
	if (s->started) {
		pthread_mutex_lock(&s->mu);
		s->stop = true;
		pthread_cond_signal(&s->cv);
		pthread_mutex_unlock(&s->mu);
		pthread_join(s->writer, NULL);
	}
	s->stop = true;
	store_poll_completions(s);
	store_free(s);
}

uint64_t
store_node_id(const struct store *s)
{
	return s->node_id;
}

struct mqtt_bytes
store_node_name(const struct store *s)
{
	return (struct mqtt_bytes){ s->name.data, s->name.len };
}

uint32_t
store_schema_version(const struct store *s)
{
	return s->env != NULL ? s->schema : STORE_SCHEMA_VERSION;
}

/* --- applying ops (writer thread) ---------------------------------------- */

/*
 * Payload references. A queue or in-flight put or delete does not rewrite
 * the payload record (which would copy the payload once per entry, 10,000
 * times for a message fanned out to 10,000 sessions): it records +1 / -1 in
 * s->refs, and refs_apply writes each payload's net change once at the end
 * of the batch. An OP_PAYLOAD_PUT is recorded there too and written only
 * then, with its refcount, if the batch left it references: a payload put
 * for entries that the commit group deletes again is never written.
 * Payloads are written and deleted only there, so a payload found during a
 * batch exists until its end.
 */

static void
put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static MDB_val
payload_key(uint8_t *kb, uint64_t id)
{
	put_be32(kb, (uint32_t)(id >> 32));
	put_be32(kb + 4, (uint32_t)id);
	return (MDB_val){ 8, kb };
}

/* The batch transaction's cursor on db, opened on first use. An op then
 * costs one descent (a get before a put or a delete reuses its position),
 * and none when its key is on the page the cursor is on. */
static int
cursor(struct store *s, MDB_txn *txn, uint8_t db, MDB_cursor **c)
{
	int rc;

	if (s->cur[db] == NULL) {
		rc = mdb_cursor_open(txn, s->dbi[db], &s->cur[db]);
		if (rc != 0) {
			s->cur[db] = NULL;
			return mdb_to_err(rc);
		}
	}
	*c = s->cur[db];
	return 0;
}

/* Before the batch transaction ends. */
static void
cursors_close(struct store *s)
{
	int i;

	for (i = 0; i < STORE_DB_COUNT; i++) {
		if (s->cur[i] != NULL)
			mdb_cursor_close(s->cur[i]);
		s->cur[i] = NULL;
	}
}

/* The slot of payload id in s->ref_slot: its entry's, or the empty one
 * where it would go. The table is never full (twice the entries). */
static size_t
ref_slot_of(const struct store *s, uint64_t id)
{
	size_t i = (size_t)((id * 0x9e3779b97f4a7c15ULL) >> 32) & s->ref_mask;
	uint32_t x;

	while ((x = s->ref_slot[i]) != 0 && s->refs[x - 1].id != id)
		i = (i + 1) & s->ref_mask;
	return i;
}

/* Was payload id put by an OP_PAYLOAD_PUT of this batch? Only needed when
 * the group could not be planned (no OP_F_HERE flags). */
static bool
refs_put_here(const struct store *s, uint64_t id)
{
	uint32_t x;

	if (s->n_refs == 0)
		return false;
	x = s->ref_slot[ref_slot_of(s, id)];
	return x != 0 && s->refs[x - 1].val != NULL;
}

/* 0 if the payload an OP_REF_PUT references exists (stored earlier or put
 * earlier in this batch), else ERR_NOTFOUND. Copies nothing. */
static int
payload_check(struct store *s, MDB_txn *txn, const struct batch_rec *op)
{
	uint8_t kb[8];
	MDB_val k = payload_key(kb, op->ref), v;
	int rc;

	if ((op->flags & OP_F_HERE) || op->ref == s->ref_seen)
		return 0;
	if (!s->planned && refs_put_here(s, op->ref))
		return 0;
	rc = mdb_get(txn, s->dbi[STORE_DB_PAYLOADS], &k, &v);
	if (rc == MDB_NOTFOUND)
		return ERR_NOTFOUND;
	if (rc == 0)
		s->ref_seen = op->ref;
	return mdb_to_err(rc);
}

/* Doubles s->refs and its slot table, re-indexing the entries. */
static int
refs_grow(struct store *s)
{
	size_t cap = s->cap_refs ? s->cap_refs * 2 : 64, i;
	struct ref_delta *p;
	uint32_t *slot;

	if (cap > UINT32_MAX / 2 || cap > SIZE_MAX / 2 / sizeof(*p))
		return ERR_NOMEM;
	slot = calloc(2 * cap, sizeof(*slot));
	if (slot == NULL)
		return ERR_NOMEM;
	p = realloc(s->refs, cap * sizeof(*p));
	if (p == NULL) {
		free(slot);
		return ERR_NOMEM;
	}
	free(s->ref_slot);
	s->refs = p;
	s->cap_refs = cap;
	s->ref_slot = slot;
	s->ref_mask = 2 * cap - 1;
	for (i = 0; i < s->n_refs; i++)
		s->ref_slot[ref_slot_of(s, s->refs[i].id)] = (uint32_t)i + 1;
	return 0;
}

/* Records a reference change of payload id, or (val != NULL) its put, in
 * the one entry of that payload (the batch's changes to it are summed
 * there, and refs_apply needs no sort): of two puts, the first one's
 * record is kept. A fan-out changes one payload many times in a row: the
 * last entry is looked at first. */
static int
ref_add(struct store *s, uint64_t id, int64_t delta, const uint8_t *val,
        size_t vlen)
{
	struct ref_delta *p;
	size_t i;
	int rc;

	p = s->n_refs > 0 ? &s->refs[s->n_refs - 1] : NULL;
	if (p == NULL || p->id != id) {
		if (s->n_refs == s->cap_refs && (rc = refs_grow(s)) != 0)
			return rc;
		i = ref_slot_of(s, id);
		if (s->ref_slot[i] != 0) {
			p = &s->refs[s->ref_slot[i] - 1];
		} else {
			p = &s->refs[s->n_refs++];
			s->ref_slot[i] = (uint32_t)s->n_refs;
			p->id = id;
			p->delta = 0;
			p->val = NULL;
			p->vlen = 0;
		}
	}
	p->delta += delta;
	if (p->val == NULL) {
		p->val = val;
		p->vlen = vlen;
	}
	return 0;
}

/* Empties s->refs for the next batch, giving back a large array. Each
 * entry's slot is found by its index (another entry's slot emptied first
 * would cut a probe chain short, a search by id could stop there). */
static void
refs_reset(struct store *s)
{
	size_t i, j;

	if (s->cap_refs > REFS_KEEP) {
		free(s->refs);
		free(s->ref_slot);
		s->refs = NULL;
		s->ref_slot = NULL;
		s->cap_refs = 0;
		s->ref_mask = 0;
	} else {
		for (i = 0; i < s->n_refs; i++) {
			j = (size_t)((s->refs[i].id * 0x9e3779b97f4a7c15ULL) >>
			             32) &
			    s->ref_mask;
			while (s->ref_slot[j] != i + 1)
				j = (j + 1) & s->ref_mask;
			s->ref_slot[j] = 0;
		}
	}
	s->n_refs = 0;
	s->ref_seen = 0;
}

/* Adds delta to the refcount of the stored payload record v that c is on,
 * deleting it at zero: one copy of the record whatever the size of delta.
 * k is its key, not a view into the database (the put may move nodes). */
static int
payload_refs_add(struct store *s, MDB_cursor *c, MDB_val *k, MDB_val v,
                 int64_t delta)
{
	int64_t refs;

	if (v.mv_size < REC_REF_OFF + 4)
		return ERR_MALFORMED;
	refs = (int64_t)be32((const uint8_t *)v.mv_data + REC_REF_OFF) + delta;
	if (refs <= 0)
		return mdb_to_err(mdb_cursor_del(c, 0));
	if (refs > UINT32_MAX)
		return ERR_LIMIT;
	buf_reset(&s->scratch);
	buf_put_bytes(&s->scratch, v.mv_data, v.mv_size);
	if (buf_failed(&s->scratch))
		return ERR_NOMEM;
	put_be32(s->scratch.data + REC_REF_OFF, (uint32_t)refs);
	v.mv_data = s->scratch.data;
	s->ref_writes++;
	return mdb_to_err(mdb_cursor_put(c, k, &v, MDB_CURRENT));
}

/* Adds delta to a stored payload's refcount (absent: delta must be < 0,
 * the entries referencing it are damaged or gone, nothing to do). */
static int
payload_adjust(struct store *s, MDB_txn *txn, uint64_t id, int64_t delta)
{
	uint8_t kb[8];
	MDB_val k = payload_key(kb, id), found = k, v;
	MDB_cursor *c;
	int rc;

	rc = cursor(s, txn, STORE_DB_PAYLOADS, &c);
	if (rc != 0)
		return rc;
	/* found, not k, takes the stored key's address: a put that moves
	 * the record must not read its key from the page it changes */
	rc = mdb_cursor_get(c, &found, &v, MDB_SET_KEY);
	if (rc == MDB_NOTFOUND)
		return delta > 0 ? ERR_NOTFOUND : 0;
	if (rc != 0)
		return mdb_to_err(rc);
	return payload_refs_add(s, c, &k, v, delta);
}

/* A payload this batch put, gaining delta > 0 references: written with
 * that refcount in one descent, or its stored refcount raised. */
static int
payload_store(struct store *s, MDB_txn *txn, const struct ref_delta *r,
              int64_t delta)
{
	uint8_t kb[8];
	MDB_val k = payload_key(kb, r->id), v = { r->vlen, NULL };
	MDB_cursor *c;
	int rc;

	if (r->vlen < REC_REF_OFF + 4)
		return ERR_MALFORMED;
	if (delta > UINT32_MAX)
		return ERR_LIMIT;
	rc = cursor(s, txn, STORE_DB_PAYLOADS, &c);
	if (rc != 0)
		return rc;
	rc = mdb_cursor_put(c, &k, &v, MDB_NOOVERWRITE | MDB_RESERVE);
	if (rc == MDB_KEYEXIST) /* v is the stored record, c is on it */
		return payload_refs_add(s, c, &k, v, delta);
	if (rc != 0)
		return mdb_to_err(rc);
	memcpy(v.mv_data, r->val, r->vlen);
	put_be32((uint8_t *)v.mv_data + REC_REF_OFF, (uint32_t)delta);
	s->ref_writes++;
	return 0;
}

/* Applies the batch's reference changes and payload puts, once per
 * payload, in the order the batch first touched them. A payload put that
 * ends the batch without references is not written (it was not stored
 * before, or it keeps its stored refcount). */
static int
refs_apply(struct store *s, MDB_txn *txn)
{
	struct ref_delta *r;
	size_t i;
	int rc = 0;

	for (i = 0; i < s->n_refs && rc == 0; i++) {
		r = &s->refs[i];
		if (r->delta > 0 && r->val != NULL)
			rc = payload_store(s, txn, r, r->delta);
		else if (r->delta != 0)
			rc = payload_adjust(s, txn, r->id, r->delta);
	}
	return rc;
}

/* The msg id a stored queue / in-flight record v references (0: none). */
static int
rec_ref(const MDB_val *v, uint64_t *id)
{
	if (v->mv_size < REC_REF_OFF + 8)
		return ERR_MALFORMED;
	*id = key_get_u64((const uint8_t *)v->mv_data + REC_REF_OFF);
	return 0;
}

/* A queue or in-flight put: MDB_NOOVERWRITE, so that a new key costs one
 * descent; an entry it replaces is overwritten in place (the cursor is on
 * it) and its reference moves. */
static int
ref_put(struct store *s, MDB_txn *txn, const struct batch_rec *op)
{
	MDB_val k = { op->klen, (void *)op->key };
	MDB_val v = { op->vlen, (void *)op->val };
	uint64_t old = 0;
	MDB_cursor *c;
	int rc;

	if (op->ref != 0) {
		rc = payload_check(s, txn, op);
		if (rc == 0)
			rc = ref_add(s, op->ref, 1, NULL, 0);
		if (rc != 0)
			return rc;
	}
	rc = cursor(s, txn, op->db, &c);
	if (rc != 0)
		return rc;
	rc = mdb_cursor_put(c, &k, &v, MDB_NOOVERWRITE);
	if (rc != MDB_KEYEXIST)
		return mdb_to_err(rc);
	rc = rec_ref(&v, &old); /* v: the stored record */
	v = (MDB_val){ op->vlen, (void *)op->val };
	if (rc == 0)
		rc = mdb_to_err(mdb_cursor_put(c, &k, &v, MDB_CURRENT));
	if (rc == 0 && old != 0)
		rc = ref_add(s, old, -1, NULL, 0);
	return rc;
}

/* A queue or in-flight delete: one descent finds the entry's reference
 * and deletes it. */
static int
ref_del(struct store *s, MDB_txn *txn, const struct batch_rec *op)
{
	MDB_val k = { op->klen, (void *)op->key }, v;
	uint64_t old;
	MDB_cursor *c;
	int rc;

	rc = cursor(s, txn, op->db, &c);
	if (rc != 0)
		return rc;
	rc = mdb_cursor_get(c, &k, &v, MDB_SET_KEY);
	if (rc == MDB_NOTFOUND)
		return 0;
	rc = rc != 0 ? mdb_to_err(rc) : rec_ref(&v, &old);
	if (rc == 0)
		rc = mdb_to_err(mdb_cursor_del(c, 0));
	if (rc == 0 && old != 0)
		rc = ref_add(s, old, -1, NULL, 0);
	return rc;
}

/* Deletes every key starting with prefix; refs: drop payload references. */
static int
prefix_del(struct store *s, MDB_txn *txn, enum store_db db,
           const MDB_val *prefix, bool refs)
{
	MDB_cursor *c;
	MDB_val k = *prefix, v;
	uint64_t id;
	int mrc, rc = 0, op = MDB_SET_RANGE;

	mrc = mdb_cursor_open(txn, s->dbi[db], &c);
	if (mrc != 0)
		return mdb_to_err(mrc);
	while ((mrc = mdb_cursor_get(c, &k, &v, op)) == 0) {
		op = MDB_NEXT; /* after a delete: the entry that followed */
		if (k.mv_size < prefix->mv_size ||
		    memcmp(k.mv_data, prefix->mv_data, prefix->mv_size) != 0)
			break;
		id = 0;
		if (refs && v.mv_size >= REC_REF_OFF + 8)
			id = key_get_u64((const uint8_t *)v.mv_data +
			                 REC_REF_OFF);
		mrc = mdb_cursor_del(c, 0);
		if (mrc != 0)
			break;
		if (id != 0 && (rc = ref_add(s, id, -1, NULL, 0)) != 0)
			break;
	}
	mdb_cursor_close(c);
	if (rc == 0 && mrc != 0 && mrc != MDB_NOTFOUND)
		rc = mdb_to_err(mrc);
	return rc;
}

static int
session_del(struct store *s, MDB_txn *txn, const struct batch_rec *op)
{
	uint8_t pre[STORE_CLIENT_ID_MAX + 1];
	MDB_val k = { op->klen, (void *)op->key };
	MDB_val p = { op->klen + 1, pre };
	int rc;

	if (op->klen > STORE_CLIENT_ID_MAX)
		return ERR_MALFORMED;
	rc = mdb_del(txn, s->dbi[STORE_DB_SESSIONS], &k, NULL);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return mdb_to_err(rc);
	memcpy(pre, op->key, op->klen);
	pre[op->klen] = 0;
	rc = prefix_del(s, txn, STORE_DB_SUBS, &p, false);
	if (rc == 0)
		rc = prefix_del(s, txn, STORE_DB_QUEUE, &p, true);
	if (rc == 0)
		rc = prefix_del(s, txn, STORE_DB_INFLIGHT, &p, true);
	return rc;
}

static int
op_apply(struct store *s, MDB_txn *txn, const struct batch_rec *op)
{
	MDB_dbi dbi = s->dbi[op->db];
	MDB_val k = { op->klen, (void *)op->key };
	MDB_val v = { op->vlen, (void *)op->val };
	int rc;

	if (op->flags & OP_F_SKIP)
		return 0; /* cancelled within the group (group_plan) */
	switch (op->op) {
	case OP_PUT:
		return mdb_to_err(mdb_put(txn, dbi, &k, &v, 0));
	case OP_DEL:
		rc = mdb_del(txn, dbi, &k, NULL);
		return rc == MDB_NOTFOUND ? 0 : mdb_to_err(rc);
	case OP_SESSION_DEL:
		return session_del(s, txn, op);
	case OP_PAYLOAD_PUT: /* written at the end of the batch, if at all */
		return ref_add(s, op->ref, 0, op->val, op->vlen);
	case OP_REF_PUT:
		return ref_put(s, txn, op);
	case OP_REF_DEL:
		return ref_del(s, txn, op);
	default:
		return ERR_MALFORMED;
	}
}

/* One batch in a nested transaction: all of it or nothing. Its payload
 * puts and reference changes are applied at its end. */
static int
batch_apply(struct store *s, MDB_txn *parent, const struct store_batch *b)
{
	struct batch_rec op;
	MDB_txn *txn;
	struct rd r;
	int nrc, rc = 0;

	nrc = mdb_txn_begin(s->env, parent, 0, &txn);
	if (nrc != 0)
		return mdb_to_err(nrc);
	rd_init(&r, b->ops.data, b->ops.len);
	while ((nrc = batch_next(&r, &op)) == 0) {
		rc = op_apply(s, txn, &op);
		if (rc != 0)
			break;
	}
	if (rc == 0 && nrc < 0)
		rc = nrc;
	if (rc == 0)
		rc = refs_apply(s, txn);
	refs_reset(s);
	cursors_close(s);
	if (rc != 0) {
		mdb_txn_abort(txn);
		return rc;
	}
	return mdb_to_err(mdb_txn_commit(txn));
}

/* Doubles the map, up to max_size. 0 or ERR_LIMIT. */
static int
map_grow(struct store *s)
{
	size_t cur, next;
	int rc;

	pthread_mutex_lock(&s->mu);
	cur = s->st.map_size;
	pthread_mutex_unlock(&s->mu);
	if (cur >= s->max_size)
		return ERR_LIMIT;
	next = cur > s->max_size / 2 ? s->max_size : cur * 2;
	pthread_rwlock_wrlock(&s->resize);
	rc = mdb_env_set_mapsize(s->env, next);
	pthread_rwlock_unlock(&s->resize);
	if (rc != 0)
		return ERR_LIMIT;
	pthread_mutex_lock(&s->mu);
	s->st.map_size = next;
	s->st.grows++;
	pthread_mutex_unlock(&s->mu);
	return 0;
}

static void
set_result(struct store_batch *from, const struct store_batch *to, int err)
{
	for (; from != to; from = from->next)
		from->result = err;
}

struct plan_ctx {
	struct store *s;
	MDB_txn *txn;
};

static int
plan_exists(void *arg, uint8_t db, const uint8_t *key, size_t klen,
            bool *exists)
{
	struct plan_ctx *ctx = arg;
	MDB_val k = { klen, (void *)key }, v;
	int rc = mdb_get(ctx->txn, ctx->s->dbi[db], &k, &v);

	*exists = rc == 0;
	return rc == MDB_NOTFOUND ? 0 : mdb_to_err(rc);
}

/* Flags the group's ops (group_plan) in txn, before any is applied. Out of
 * memory only costs the savings: the group is then applied as it is. */
static void
writer_plan(struct store *s, MDB_txn *txn, struct store_batch *group)
{
	struct plan_ctx ctx = { s, txn };
	int64_t n = group_plan(&s->plan, group, plan_exists, &ctx);

	s->planned = n >= 0;
	s->cancelled = n >= 0 ? (uint64_t)n : 0;
}

/*
 * Commits a group of batches in as few transactions as possible: normally
 * one. A batch that hits MDB_MAP_FULL ends the transaction (the ones before
 * it commit), the map grows and the rest go on in a new transaction; at
 * max_size that batch fails with ERR_LIMIT and the next ones still run.
 * @return the number of transactions committed
 */
static uint64_t
writer_run(struct store *s, struct store_batch *start)
{
	struct store_batch *b, *full;
	bool planned = false;
	uint64_t txns = 0;
	MDB_txn *txn;
	int rc;

	while (start != NULL) {
		rc = mdb_txn_begin(s->env, NULL, 0, &txn);
		if (rc != 0) {
			set_result(start, NULL, mdb_to_err(rc));
			break;
		}
		if (!planned) /* once: a redo keeps the flags */
			writer_plan(s, txn, start);
		planned = true;
		full = NULL;
		for (b = start; b != NULL; b = b->next) {
			b->result = batch_apply(s, txn, b);
			if (b->result == STORE_FULL) {
				full = b;
				break;
			}
		}
		rc = mdb_txn_commit(txn);
		if (rc == MDB_MAP_FULL) {
			/* nothing of start..full landed: grow and redo */
			if (map_grow(s) == 0)
				continue;
			set_result(start, full, ERR_LIMIT);
		} else if (rc != 0) {
			set_result(start, full, mdb_to_err(rc));
		} else if (full != start) {
			txns++;
		}
		if (full == NULL)
			break;
		if (map_grow(s) != 0) {
			full->result = ERR_LIMIT;
			full = full->next;
		}
		start = full;
	}
	group_plan_trim(&s->plan);
	return txns;
}

static void
writer_sync(struct store *s)
{
	mdb_env_sync(s->env, 1);
	pthread_mutex_lock(&s->mu);
	s->st.syncs++;
	pthread_mutex_unlock(&s->mu);
}

/* Hands a committed group to the loop; called with mu held. */
static void
writer_done(struct store *s, struct store_batch *group, uint64_t txns)
{
	struct store_batch *b;

	s->st.txns += txns;
	s->st.cancelled += s->cancelled;
	s->cancelled = 0;
	for (b = group; b != NULL; b = b->next) {
		s->st.batches++;
		if (b->result != 0)
			s->st.batch_errors++;
		if (b->result == ERR_LIMIT)
			s->st.limit_errors++;
		if (b->next == NULL) {
			*s->done_tail = group;
			s->done_tail = &b->next;
		}
	}
}

static void
writer_wait(struct store *s, bool dirty, uint64_t due)
{
	struct timespec ts;

	if (!dirty) {
		pthread_cond_wait(&s->cv, &s->mu);
		return;
	}
	ts.tv_sec = (time_t)(due / 1000);
	ts.tv_nsec = (long)(due % 1000) * 1000000;
	pthread_cond_timedwait(&s->cv, &s->mu, &ts);
}

static void commit_sample(struct store_stats *st, uint64_t us);

/*
 * Group commit with a gathering window. A commit costs about the same
 * whatever it holds (on the machine of README Performance, the commit and
 * its disk flushes cost more CPU than the messages they make durable),
 * so under a steady moderate load it pays to let batches gather, as
 * PostgreSQL's commit_delay does: the writer takes the pending batches
 * once the first has waited delay_us, or at once when GATHER_FULL are
 * pending. Like commit_siblings there, the window applies only when the
 * last group released at least GATHER_SIBLINGS acks: a lone client that
 * waits for each ack before its next publish never waits for others who
 * are not there. And clients that each wait for their ack come back
 * together once the last commit released them: when the batches pending
 * carry as many acks as the last group did and none came for
 * GATHER_GAP_US, nobody else is on the way and the group is taken. A
 * commit that took longer than the window finds the next group ready, so
 * a saturated writer never waits. Called with mu held: waits and returns
 * true while the pending batches should wait (the caller looks again),
 * false to take them now.
 */
static bool
writer_gather(struct store *s)
{
	struct timespec ts;
	uint64_t now, due;

	if (s->pend == NULL || s->delay_us == 0 || s->stop || s->hold ||
	    s->n_pend >= GATHER_FULL || s->last_acks < GATHER_SIBLINGS)
		return false;
	now = now_us();
	due = s->first_us + s->delay_us;
	if (s->pend_acks >= s->last_acks && s->last_us + GATHER_GAP_US < due)
		due = s->last_us + GATHER_GAP_US;
	if (now >= due)
		return false;
	ts.tv_sec = (time_t)(due / 1000000);
	ts.tv_nsec = (long)(due % 1000000) * 1000;
	s->gathering = true;
	pthread_cond_timedwait(&s->cv, &s->mu, &ts);
	s->gathering = false;
	return true;
}

static void *
writer_main(void *arg)
{
	struct store *s = arg;
	bool relaxed = s->durability == STORE_DURABILITY_RELAXED;
	uint64_t due = 0, txns, t0;
	struct store_batch *group;
	bool dirty = false;

	pthread_mutex_lock(&s->mu);
	for (;;) {
		group = NULL;
		if (writer_gather(s))
			continue;
		if (s->stop || !s->hold) {
			group = s->pend;
			s->pend = NULL;
			s->pend_tail = &s->pend;
			s->n_pend = 0;
			if (group != NULL) {
				s->last_acks = s->pend_acks;
				s->pend_acks = 0;
			}
		}
		if (group == NULL && s->stop)
			break;
		if (group == NULL && (!dirty || now_ms() < due)) {
			writer_wait(s, dirty, due);
			continue;
		}
		pthread_mutex_unlock(&s->mu);
		t0 = now_us();
		txns = group != NULL ? writer_run(s, group) : 0;
		t0 = now_us() - t0;
		if (relaxed && txns > 0 && !dirty) {
			dirty = true;
			due = now_ms() + s->sync_ms;
		}
		if (dirty && now_ms() >= due) {
			writer_sync(s);
			dirty = false;
		}
		pthread_mutex_lock(&s->mu);
		if (group != NULL) {
			commit_sample(&s->st, t0);
			writer_done(s, group, txns);
			notify(s);
		}
	}
	pthread_mutex_unlock(&s->mu);
	if (dirty)
		writer_sync(s);
	return NULL;
}

void
store_test_hold(struct store *s, bool hold)
{
	pthread_mutex_lock(&s->mu);
	s->hold = hold;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

bool
store_test_gathering(struct store *s)
{
	bool g;

	pthread_mutex_lock(&s->mu);
	g = s->gathering;
	pthread_mutex_unlock(&s->mu);
	return g;
}

uint64_t
store_test_ref_writes(const struct store *s)
{
	return s->ref_writes;
}

/* --- submit and complete (loop thread) ----------------------------------- */

int
store_submit(struct store *s, struct store_batch *b, store_done_fn done,
             void *arg)
{
	int rc = b->err;

	if (rc != 0) {
		store_batch_free(b);
		return rc;
	}
	b->done = done;
	b->arg = arg;
	b->result = 0;
	b->next = NULL;
	pthread_mutex_lock(&s->mu);
	if (s->stop) {
		pthread_mutex_unlock(&s->mu);
		store_batch_free(b);
		return ERR_WRONG_STATE;
	}
	if (s->env == NULL) {
		/* durability none: memory only, complete at once */
		s->st.batches++;
		*s->done_tail = b;
		s->done_tail = &b->next;
		notify(s);
	} else {
		s->last_us = now_us();
		if (s->pend == NULL) {
			s->first_us = s->last_us;
			s->n_pend = 0;
		}
		s->n_pend++;
		s->pend_acks += b->waiters;
		/* the writer waits for a first batch, or for a group as large
		 * as the last one, or for enough of them (writer_gather): the
		 * others join without waking it */
		if (s->n_pend == 1 || s->n_pend == GATHER_FULL ||
		    s->delay_us == 0 ||
		    (s->pend_acks >= s->last_acks &&
		     s->pend_acks - b->waiters < s->last_acks))
			pthread_cond_signal(&s->cv);
		*s->pend_tail = b;
		s->pend_tail = &b->next;
	}
	pthread_mutex_unlock(&s->mu);
	return 0;
}

int
store_notify_fd(const struct store *s)
{
	return s->efd;
}

size_t
store_poll_completions(struct store *s)
{
	struct store_batch *b, *next;
	uint64_t cnt;
	size_t n = 0;

	/* drain first: a completion queued after this re-arms the fd */
	if (read(s->efd, &cnt, sizeof(cnt)) < 0)
		cnt = 0;
	pthread_mutex_lock(&s->mu);
	b = s->done;
	s->done = NULL;
	s->done_tail = &s->done;
	pthread_mutex_unlock(&s->mu);
	for (; b != NULL; b = next) {
		next = b->next;
		if (b->done != NULL)
			b->done(b->arg, b->result);
		store_batch_free(b);
		n++;
	}
	return n;
}

void
store_stats_get(struct store *s, struct store_stats *st)
{
	pthread_mutex_lock(&s->mu);
	*st = s->st;
	pthread_mutex_unlock(&s->mu);
}

/* --- reads --------------------------------------------------------------- */

typedef int (*visit_fn)(void *ctx, const uint8_t *p, size_t n);

struct visit {
	union {
		store_retained_fn retained;
		store_session_fn session;
		store_sub_fn sub;
		store_payload_fn payload;
		store_queue_fn queue;
		store_inflight_fn inflight;
		store_mark_fn mark;
	} fn;      /* the caller's callback */
	void *arg; /* for it */
};

static int
read_begin(struct store *s, MDB_txn **txn)
{
	int rc;

	pthread_rwlock_rdlock(&s->resize);
	rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, txn);
	if (rc != 0) {
		pthread_rwlock_unlock(&s->resize);
		return rc == ENOMEM ? ERR_NOMEM : ERR_IO;
	}
	return 0;
}

static void
read_end(struct store *s, MDB_txn *txn)
{
	mdb_txn_abort(txn);
	pthread_rwlock_unlock(&s->resize);
}

/* Calls visit on a copy of each value whose key starts with prefix. */
static int
walk_cursor(MDB_cursor *c, const MDB_val *prefix, visit_fn visit, void *ctx)
{
	MDB_val k = *prefix, v;
	int mrc, rc = 0, op = prefix->mv_size ? MDB_SET_RANGE : MDB_FIRST;
	struct buf copy;

	buf_init(&copy);
	while ((mrc = mdb_cursor_get(c, &k, &v, op)) == 0) {
		op = MDB_NEXT;
		if (k.mv_size < prefix->mv_size ||
		    memcmp(k.mv_data, prefix->mv_data, prefix->mv_size) != 0)
			break;
		buf_reset(&copy);
		buf_put_bytes(&copy, v.mv_data, v.mv_size);
		if (buf_failed(&copy)) {
			rc = ERR_NOMEM;
			break;
		}
		rc = visit(ctx, copy.data, copy.len);
		if (rc != 0)
			break;
	}
	buf_fini(&copy);
	if (rc == 0 && mrc != 0 && mrc != MDB_NOTFOUND)
		rc = ERR_IO;
	return rc;
}

static int
walk(struct store *s, enum store_db db, struct mqtt_bytes cid, visit_fn visit,
     void *ctx)
{
	uint8_t pre[STORE_CLIENT_ID_MAX + 1];
	MDB_val prefix = { 0, pre };
	MDB_cursor *c;
	MDB_txn *txn;
	int rc;

	if (s->env == NULL)
		return 0;
	if (cid.len > 0) {
		rc = key_client_check(cid);
		if (rc != 0)
			return rc;
		memcpy(pre, cid.p, cid.len);
		pre[cid.len] = 0;
		prefix.mv_size = cid.len + 1;
	}
	rc = read_begin(s, &txn);
	if (rc != 0)
		return rc;
	rc = mdb_cursor_open(txn, s->dbi[db], &c);
	if (rc == 0) {
		rc = walk_cursor(c, &prefix, visit, ctx);
		mdb_cursor_close(c);
	} else {
		rc = ERR_IO;
	}
	read_end(s, txn);
	return rc;
}

static int
visit_retained(void *ctx, const uint8_t *p, size_t n)
{
	struct visit *v = ctx;
	struct store_retained r;
	int rc = rec_retained_dec(p, n, &r);

	return rc != 0 ? rc : v->fn.retained(v->arg, &r);
}

static int
visit_session(void *ctx, const uint8_t *p, size_t n)
{
	struct visit *v = ctx;
	struct store_session ss;
	int rc = rec_session_dec(p, n, &ss);

	return rc != 0 ? rc : v->fn.session(v->arg, &ss);
}

static int
visit_sub(void *ctx, const uint8_t *p, size_t n)
{
	struct visit *v = ctx;
	struct store_sub sub;
	int rc = rec_sub_dec(p, n, &sub);

	return rc != 0 ? rc : v->fn.sub(v->arg, &sub);
}

static int
visit_payload(void *ctx, const uint8_t *p, size_t n)
{
	struct visit *v = ctx;
	struct store_payload pl;
	int rc = rec_payload_dec(p, n, &pl);

	return rc != 0 ? rc : v->fn.payload(v->arg, &pl);
}

static int
visit_queue(void *ctx, const uint8_t *p, size_t n)
{
	struct visit *v = ctx;
	struct store_queue_entry q;
	int rc = rec_queue_dec(p, n, &q);

	return rc != 0 ? rc : v->fn.queue(v->arg, &q);
}

static int
visit_inflight(void *ctx, const uint8_t *p, size_t n)
{
	struct visit *v = ctx;
	struct store_inflight f;
	int rc = rec_inflight_dec(p, n, &f);

	return rc != 0 ? rc : v->fn.inflight(v->arg, &f);
}

static const struct mqtt_bytes all_clients = { NULL, 0 };

int
store_load_retained(struct store *s, store_retained_fn fn, void *arg)
{
	struct visit v = { .fn.retained = fn, .arg = arg };

	return walk(s, STORE_DB_RETAINED, all_clients, visit_retained, &v);
}

int
store_load_sessions(struct store *s, store_session_fn fn, void *arg)
{
	struct visit v = { .fn.session = fn, .arg = arg };

	return walk(s, STORE_DB_SESSIONS, all_clients, visit_session, &v);
}

int
store_load_subs(struct store *s, struct mqtt_bytes client_id, store_sub_fn fn,
                void *arg)
{
	struct visit v = { .fn.sub = fn, .arg = arg };

	return walk(s, STORE_DB_SUBS, client_id, visit_sub, &v);
}

int
store_load_payloads(struct store *s, store_payload_fn fn, void *arg)
{
	struct visit v = { .fn.payload = fn, .arg = arg };

	return walk(s, STORE_DB_PAYLOADS, all_clients, visit_payload, &v);
}

int
store_load_queue(struct store *s, struct mqtt_bytes client_id,
                 store_queue_fn fn, void *arg)
{
	struct visit v = { .fn.queue = fn, .arg = arg };

	return walk(s, STORE_DB_QUEUE, client_id, visit_queue, &v);
}

int
store_load_inflight(struct store *s, struct mqtt_bytes client_id,
                    store_inflight_fn fn, void *arg)
{
	struct visit v = { .fn.inflight = fn, .arg = arg };

	return walk(s, STORE_DB_INFLIGHT, client_id, visit_inflight, &v);
}

int
store_count(struct store *s, enum store_db db, size_t *n)
{
	MDB_txn *txn;
	MDB_stat st;
	int rc;

	*n = 0;
	if (s->env == NULL)
		return 0;
	if ((unsigned)db >= STORE_DB_COUNT)
		return ERR_NOTFOUND;
	rc = read_begin(s, &txn);
	if (rc != 0)
		return rc;
	rc = mdb_stat(txn, s->dbi[db], &st);
	if (rc == 0)
		*n = st.ms_entries;
	read_end(s, txn);
	return rc != 0 ? ERR_IO : 0;
}

static int
visit_mark(void *ctx, const uint8_t *p, size_t n)
{
	struct visit *v = ctx;
	struct store_mark m;

	if (n != 16)
		return ERR_MALFORMED;
	m.origin = key_get_u64(p);
	m.msg_id = key_get_u64(p + 8);
	return v->fn.mark(v->arg, &m);
}

int
store_load_marks(struct store *s, store_mark_fn fn, void *arg)
{
	struct visit v = { .fn.mark = fn, .arg = arg };

	/* the keys are "mark", NUL, origin: walk's client id prefix form */
	return walk(s, STORE_DB_META,
	            (struct mqtt_bytes){ (const uint8_t *)"mark", 4 },
	            visit_mark, &v);
}

/* --- commit latency ------------------------------------------------------ */

static const uint64_t commit_bounds_us[STORE_COMMIT_BUCKETS - 1] = {
	100,   250,   500,    1000,   2500,   5000,    10000,
	25000, 50000, 100000, 250000, 500000, 1000000,
};

uint64_t
store_commit_bound_us(size_t i)
{
	if (i >= STORE_COMMIT_BUCKETS - 1)
		return UINT64_MAX;
	return commit_bounds_us[i];
}

static uint64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* Records one commit of @p us microseconds; called with mu held. */
static void
commit_sample(struct store_stats *st, uint64_t us)
{
	size_t i = 0;

	while (us > store_commit_bound_us(i))
		i++;
	st->commit_hist[i]++;
	st->commits++;
	st->commit_us_sum += us;
}
