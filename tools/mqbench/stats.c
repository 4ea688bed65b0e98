/*
 * mqbench's numbers: the event counters behind the per-second lines, the
 * end-to-end latency histogram (log-linear buckets, never every sample),
 * the per-publisher sequence checks that count lost, duplicate and
 * out-of-order messages, and the final summary as text or JSON.
 */
#include "tools/mqbench/bench_int.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* Counter names, as in emqtt-bench's report lines. */
static const char *const stats_names[STATS_N] = {
	"connect_succ", "connect_fail", "sub",  "sub_fail",  "pub",
	"pub_succ",     "pub_fail",     "recv", "conn_lost",
};

/* Bits of the per-publisher window of recent counters (struct seq_entry
 * seen): a message further behind the newest counts as a duplicate. */
#define SEQ_WINDOW 64

void
stats_init(struct bench_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->lat.min = UINT64_MAX;
}

void
stats_fini(struct bench_stats *st)
{
	free(st->streams);
	st->streams = NULL;
	st->streams_cap = 0;
	st->n_streams = 0;
}

/* ---- histogram ---- */

static size_t
hist_index(uint64_t v)
{
	const size_t half = (size_t)1 << (HIST_SUB_BITS - 1);
	unsigned e, s;

	if (v < 2 * half)
		return (size_t)v;
	e = 63u - (unsigned)__builtin_clzll(v); /* >= HIST_SUB_BITS */
	s = e - (HIST_SUB_BITS - 1);
	return 2 * half + (e - HIST_SUB_BITS) * half + (size_t)(v >> s) - half;
}

/* The largest value that falls in bucket @p i. */
static uint64_t
hist_upper(size_t i)
{
	const size_t half = (size_t)1 << (HIST_SUB_BITS - 1);
	uint64_t sub;
	size_t s;

	if (i < 2 * half)
		return i;
	s = (i - 2 * half) / half + 1;
	sub = (i - 2 * half) % half + half;
	return (sub << s) + (((uint64_t)1 << s) - 1);
}

void
hist_add(struct hist *h, uint64_t v)
{
	h->bucket[hist_index(v)]++;
	h->n++;
	h->sum += v;
	if (v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
}

uint64_t
hist_quantile(const struct hist *h, double q)
{
	uint64_t rank, seen = 0;
	size_t i;

	if (h->n == 0)
		return 0;
	rank = (uint64_t)(q * (double)h->n + 0.999999);
	if (rank < 1)
		rank = 1;
	for (i = 0; i < HIST_BUCKETS; i++) {
		seen += h->bucket[i];
		if (seen >= rank)
			break;
	}
	if (i == HIST_BUCKETS || hist_upper(i) > h->max)
		return h->max;
	return hist_upper(i);
}

/* ---- per-stream sequence checks ---- */

static size_t
seq_slot(uint64_t key, size_t cap)
{
	key ^= key >> 29;
	key *= 0xbf58476d1ce4e5b9ull;
	key ^= key >> 32;
	return (size_t)(key & (cap - 1));
}

static int
seq_grow(struct bench_stats *st)
{
	size_t cap = st->streams_cap ? st->streams_cap * 2 : 64, i, j;
	struct seq_entry *t;

	t = calloc(cap, sizeof(*t));
	if (!t)
		return ERR_NOMEM;
	for (i = 0; i < st->streams_cap; i++) {
		if (!st->streams[i].used)
			continue;
		j = seq_slot(st->streams[i].key, cap);
		while (t[j].used)
			j = (j + 1) & (cap - 1);
		t[j] = st->streams[i];
	}
	free(st->streams);
	st->streams = t;
	st->streams_cap = cap;
	return 0;
}

/* The entry of stream @p key, a new one if it was not seen before. */
static struct seq_entry *
seq_get(struct bench_stats *st, uint64_t key)
{
	struct seq_entry *e;
	size_t j;

	if ((st->n_streams + 1) * 4 > st->streams_cap * 3 && seq_grow(st))
		return NULL;
	j = seq_slot(key, st->streams_cap);
	for (e = &st->streams[j]; e->used; e = &st->streams[j]) {
		if (e->key == key)
			return e;
		j = (j + 1) & (st->streams_cap - 1);
	}
	e->used = true;
	e->key = key;
	st->n_streams++;
	return e;
}

int
stats_seq_check(struct bench_stats *st, uint64_t key, uint64_t cnt)
{
	struct seq_entry *e = seq_get(st, key);
	uint64_t k;

	if (!e)
		return ERR_NOMEM;
	if (cnt == UINT64_MAX) {
		st->bad_hdr++;
		return 0;
	}
	if (cnt >= e->next) {
		/* the counters skipped are lost until they turn up */
		k = cnt - e->next;
		st->lost += k;
		e->seen = k + 1 >= SEQ_WINDOW ? 1 : (e->seen << (k + 1)) | 1;
		e->next = cnt + 1;
		return 0;
	}
	k = e->next - 1 - cnt;
	if (k >= SEQ_WINDOW || ((e->seen >> k) & 1)) {
		st->dup++;
		return 0;
	}
	e->seen |= (uint64_t)1 << k;
	st->ooo++;
	st->lost--; /* counted lost when it was skipped */
	return 0;
}

/* ---- output ---- */

static double
stats_rate(uint64_t n, double seconds)
{
	return (double)n / (seconds < 0.001 ? 0.001 : seconds);
}

void
stats_report(struct bench_stats *st, FILE *f, double elapsed_s,
             double interval_s)
{
	size_t i;

	for (i = 0; i < STATS_N; i++) {
		if (st->total[i] == st->shown[i])
			continue;
		fprintf(f, "%.0fs %s total=%" PRIu64 " rate=%.2f/sec\n",
		        elapsed_s, stats_names[i], st->total[i],
		        stats_rate(st->total[i] - st->shown[i], interval_s));
		st->shown[i] = st->total[i];
	}
	fflush(f);
}

static double
stats_cpu_share(const struct stats_run *run)
{
	double wall = run->wall_s < 0.001 ? 0.001 : run->wall_s;

	return run->cpu_run_s / wall;
}

void
stats_summary_text(const struct bench_stats *st, const struct stats_run *run,
                   FILE *f)
{
	const struct hist *h = &st->lat;
	size_t i;

	fprintf(f, "-- mqbench %s summary: %u clients, %.2fs, ended by %s --\n",
	        run->cmd, run->clients, run->elapsed_s, run->end);
	for (i = 0; i < STATS_N; i++)
		if (st->total[i] || (run->always & (1u << i)))
			fprintf(f, "%s total=%" PRIu64 " rate=%.2f/sec\n",
			        stats_names[i], st->total[i],
			        stats_rate(st->total[i], run->elapsed_s));
	if (run->seq)
		fprintf(f,
		        "sequence lost=%" PRIu64 " dup=%" PRIu64
		        " out_of_order=%" PRIu64 " streams=%zu"
		        " bad_hdr=%" PRIu64 "\n",
		        st->lost, st->dup, st->ooo, st->n_streams, st->bad_hdr);
	if (run->lat && h->n)
		fprintf(f,
		        "latency_us count=%" PRIu64 " min=%" PRIu64
		        " p50=%" PRIu64 " p90=%" PRIu64 " p99=%" PRIu64
		        " p99.9=%" PRIu64 " max=%" PRIu64 " mean=%.1f\n",
		        h->n, h->min, hist_quantile(h, 0.5),
		        hist_quantile(h, 0.9), hist_quantile(h, 0.99),
		        hist_quantile(h, 0.999), h->max,
		        (double)h->sum / (double)h->n);
	else if (run->lat)
		fprintf(f, "latency_us count=0\n");
	fprintf(f, "cpu user=%.3fs sys=%.3fs share=%.1f%% of one core\n",
	        run->cpu_user_s, run->cpu_sys_s, 100.0 * stats_cpu_share(run));
	fflush(f);
}

static void
stats_json_latency(const struct hist *h, FILE *f)
{
	if (h->n == 0) {
		fprintf(f, "{\"count\":0}");
		return;
	}
	fprintf(f,
	        "{\"count\":%" PRIu64 ",\"min\":%" PRIu64 ",\"p50\":%" PRIu64
	        ",\"p90\":%" PRIu64 ",\"p99\":%" PRIu64 ",\"p99.9\":%" PRIu64
	        ",\"max\":%" PRIu64 ",\"mean\":%.1f}",
	        h->n, h->min, hist_quantile(h, 0.5), hist_quantile(h, 0.9),
	        hist_quantile(h, 0.99), hist_quantile(h, 0.999), h->max,
	        (double)h->sum / (double)h->n);
}

void
stats_summary_json(const struct bench_stats *st, const struct stats_run *run,
                   FILE *f)
{
	size_t i;

	fprintf(f, "{\"command\":\"%s\",\"end\":\"%s\",\"clients\":%u,",
	        run->cmd, run->end, run->clients);
	fprintf(f, "\"elapsed_s\":%.3f", run->elapsed_s);
	for (i = 0; i < STATS_N; i++)
		fprintf(f, ",\"%s\":%" PRIu64, stats_names[i], st->total[i]);
	if (run->seq)
		fprintf(f,
		        ",\"lost\":%" PRIu64 ",\"dup\":%" PRIu64
		        ",\"out_of_order\":%" PRIu64 ",\"streams\":%zu"
		        ",\"bad_hdr\":%" PRIu64,
		        st->lost, st->dup, st->ooo, st->n_streams, st->bad_hdr);
	else
		fprintf(f, ",\"lost\":null,\"dup\":null,\"out_of_order\":null");
	fprintf(f, ",\"latency_us\":");
	if (run->lat)
		stats_json_latency(&st->lat, f);
	else
		fprintf(f, "null");
	fprintf(f,
	        ",\"cpu\":{\"user_s\":%.3f,\"sys_s\":%.3f,\"share\":%.4f}}\n",
	        run->cpu_user_s, run->cpu_sys_s, stats_cpu_share(run));
	fflush(f);
}
