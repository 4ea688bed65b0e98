/*
 * mqbench's private header: the options of a run (opt.c), the run itself
 * with its event loop and pacing (bench.c), one simulated MQTT client
 * (cli.c), and the counters, latency histogram and per-publisher sequence
 * checks behind the report lines and the summary (stats.c). Loop thread
 * only, everywhere: mqbench is one thread on one libevent event_base.
 */
#ifndef TOOLS_MQBENCH_BENCH_INT_H
#define TOOLS_MQBENCH_BENCH_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include <event2/event.h>
#include <event2/event_struct.h>

#include "proto/proto.h"

/* Linux 4.2: bind() picks no port, connect() does (<linux/in.h>). */
#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

/*
 * Payload headers (--payload-hdrs), big-endian, at the start of the
 * payload in this fixed order whatever the order of the flag's list:
 * cnt64 is a 4-byte publisher id (the publisher's client sequence number)
 * then its 8-byte message counter from 0; ts is the 8-byte send time,
 * CLOCK_REALTIME in nanoseconds.
 */
#define BENCH_HDR_CNT_LEN 12
#define BENCH_HDR_TS_LEN  8

#define BENCH_ADDR_NAME 64  /* "[v6 address]:port" and NUL */
#define BENCH_WHY_LEN   512 /* "client -> broker: what: why" */

enum bench_cmd {
	BENCH_CONN,
	BENCH_SUB,
	BENCH_PUB,
};

/* A resolved broker address or a local source address. */
struct bench_addr {
	struct sockaddr_storage ss; /* address and port */
	socklen_t len;              /* bytes of ss in use */
	char name[BENCH_ADDR_NAME]; /* printable, for messages */
};

/* The flags of one run; see opt.c for the defaults and bounds. */
struct bench_opts {
	enum bench_cmd cmd;         /* the subcommand */
	struct bench_addr *hosts;   /* -h, resolved, n_hosts of them */
	size_t n_hosts;             /* at least 1 */
	struct bench_addr *ifaddrs; /* --ifaddr, port 0 */
	size_t n_ifaddrs;           /* 0: sockets are not bound */
	uint16_t port;              /* -p */
	uint32_t clients;           /* -c */
	uint32_t start;             /* -n: sequence number of the first */
	uint64_t conn_gap_us;       /* between connects, from -i or -R */
	uint32_t pub_interval_ms;   /* -I, 0 = as fast as the window allows */
	const char *topic;          /* -t template, borrowed from argv */
	size_t size;                /* -s payload bytes */
	uint8_t qos;                /* -q */
	bool retain;                /* -r */
	uint8_t version;            /* -V: MQTT_V31, MQTT_V311 or MQTT_V5 */
	uint16_t keepalive;         /* -k seconds */
	bool clean;                 /* -C */
	bool has_expiry;            /* -x given */
	uint32_t expiry;            /* -x seconds */
	uint16_t inflight;          /* -F, 0 = the broker's Receive Maximum */
	uint64_t limit;             /* -L, 0 = none */
	const char *username;       /* -u, borrowed, or NULL */
	const char *password;       /* -P, borrowed, or NULL */
	const char *prefix;         /* --prefix, borrowed */
	bool hdr_cnt;               /* --payload-hdrs cnt64 */
	bool hdr_ts;                /* --payload-hdrs ts */
	uint64_t duration_ms;       /* --duration, 0 = none */
	bool json;                  /* --json */
};

/**
 * Parses argv (argv[1] is the subcommand) into @p o, resolving the hosts.
 * @param[out] help set when --help was asked for: the help text is on
 *   stdout already and @p o is not filled
 * @param err receives one line saying what is wrong (no final newline)
 * @return 0, ERR_MALFORMED for a bad flag or value, ERR_NOTFOUND for a
 *   host that does not resolve, ERR_NOMEM
 */
int opt_parse(struct bench_opts *o, int argc, char **argv, bool *help,
              char *err, size_t errlen);
/** Frees what opt_parse allocated; @p o may be zeroed or parsed. */
void opt_fini(struct bench_opts *o);
/**
 * Writes the -t template with %i (client sequence number), %c (client id)
 * and %% replaced into @p b. @return 0 or ERR_NOMEM / ERR_TOO_LARGE
 */
int opt_topic_expand(struct buf *b, const char *tmpl, const char *client_id,
                     uint32_t seq);
/** Bytes of the payload headers the options ask for. */
size_t opt_hdr_len(const struct bench_opts *o);

/* ---- counters, histogram, sequence checks (stats.c) ---- */

enum stats_counter {
	STATS_CONNECT_SUCC,
	STATS_CONNECT_FAIL,
	STATS_SUB,
	STATS_SUB_FAIL,
	STATS_PUB,
	STATS_PUB_SUCC,
	STATS_PUB_FAIL, /* QoS 1/2 refused by a v5 reason code >= 0x80 */
	STATS_RECV,
	STATS_CONN_LOST,
	STATS_N,
};

/* Log-linear buckets: exact below 2^HIST_SUB_BITS, then 2^(HIST_SUB_BITS-1)
 * buckets per power of two (relative error under 1/32). */
#define HIST_SUB_BITS 6
#define HIST_BUCKETS  ((64 - HIST_SUB_BITS + 2) << (HIST_SUB_BITS - 1))

struct hist {
	uint64_t n;                    /* samples */
	uint64_t sum;                  /* for the mean */
	uint64_t min;                  /* smallest sample */
	uint64_t max;                  /* largest sample */
	uint64_t bucket[HIST_BUCKETS]; /* samples per bucket */
};

/* Sequence state of one stream: the messages of one publisher as one
 * subscribing client receives them. */
struct seq_entry {
	uint64_t key;  /* subscriber sequence number << 32 | publisher id */
	bool used;     /* slot holds a stream */
	uint64_t next; /* one past the highest counter seen */
	uint64_t seen; /* bit k: counter next-1-k was received */
};

struct bench_stats {
	uint64_t total[STATS_N];   /* by enum stats_counter */
	uint64_t shown[STATS_N];   /* totals at the last report line */
	uint64_t lost;             /* counters skipped and not (yet) received */
	uint64_t dup;              /* received twice, or too late to tell */
	uint64_t ooo;              /* received after a later one */
	uint64_t bad_hdr;          /* payload shorter than its headers */
	struct hist lat;           /* end-to-end latency, microseconds */
	struct seq_entry *streams; /* open addressing by key */
	size_t streams_cap;        /* power of two, or 0 */
	size_t n_streams;          /* streams stored */
};

/* What the summary says besides the counters. */
struct stats_run {
	const char *cmd;   /* "conn", "sub", "pub" */
	const char *end;   /* why the run ended */
	uint32_t clients;  /* -c */
	uint32_t always;   /* bit per counter printed even when 0 */
	double elapsed_s;  /* start to stop, for the rates */
	double wall_s;     /* start to now, for the CPU share */
	double cpu_user_s; /* getrusage of this process */
	double cpu_sys_s;  /* the same, system time */
	double cpu_run_s;  /* user + sys spent from start to now */
	bool seq;          /* cnt64 checked: print lost/dup/out_of_order */
	bool lat;          /* ts checked: print latency */
};

void stats_init(struct bench_stats *st);
void stats_fini(struct bench_stats *st);
/**
 * Feeds one received counter into the gap, duplicate and order checks of
 * its stream @p key (struct seq_entry).
 * @return 0 or ERR_NOMEM (a new stream not stored)
 */
int stats_seq_check(struct bench_stats *st, uint64_t key, uint64_t cnt);
/** Writes one "<elapsed>s <counter> total=N rate=R/sec" line per counter
 * that changed since the last call, @p interval_s seconds ago. */
void stats_report(struct bench_stats *st, FILE *f, double elapsed_s,
                  double interval_s);
/** The end-of-run summary for people. */
void stats_summary_text(const struct bench_stats *st,
                        const struct stats_run *run, FILE *f);
/** The end-of-run summary as one JSON object on one line. */
void stats_summary_json(const struct bench_stats *st,
                        const struct stats_run *run, FILE *f);

void hist_add(struct hist *h, uint64_t v);
/** The value at quantile @p q (0..1): the upper edge of its bucket, so
 * never below the true value. 0 for an empty histogram. */
uint64_t hist_quantile(const struct hist *h, double q);

/* ---- one client (cli.c) ---- */

enum cli_state {
	CLI_IDLE,       /* not started */
	CLI_CONNECTING, /* TCP connect under way */
	CLI_CONNACK,    /* CONNECT sent */
	CLI_SUBACK,     /* SUBSCRIBE sent */
	CLI_ACTIVE,     /* connected (and subscribed) */
	CLI_CLOSING,    /* DISCONNECT queued; closes at EOF */
	CLI_CLOSED,
};

struct bench;

struct cli {
	struct bench *b;      /* the run it belongs to */
	uint32_t seq;         /* client sequence number, -n + index */
	int fd;               /* -1 unless CONNECTING..CLOSING */
	enum cli_state state; /* how far it got */
	bool want_write;      /* ev waits for writability */
	bool ping_out;        /* PINGREQ sent, no PINGRESP yet */
	bool shut;            /* shutdown(SHUT_WR) done */
	uint8_t src_tries;    /* source addresses tried after EADDRNOTAVAIL */
	struct event ev;      /* the socket */
	struct event pub_ev;  /* the -I timer of a publisher */
	struct buf in;        /* a partial packet; empty most of the time */
	struct buf out;       /* encoded, not yet written */
	size_t out_off;       /* bytes of out already written */
	uint8_t *topic;       /* -t expanded for this client */
	uint16_t topic_len;   /* bytes of topic */
	uint16_t keepalive;   /* seconds: -k, or the broker's (v5) */
	uint16_t window;      /* QoS 1/2 publishes allowed unacked */
	uint16_t inflight;    /* unacked now */
	uint16_t pid_next;    /* where the free packet id search starts */
	uint8_t *pid_state;   /* window entries: what packet id i+1 awaits */
	uint8_t *qos2_in;     /* bitmap by packet id: PUBREL awaited */
	uint64_t pub_cnt;     /* next cnt64 value */
	uint64_t state_ms;    /* when the current state began */
	uint64_t tx_ms;       /* last write */
	uint64_t rx_ms;       /* last read */
	uint64_t ping_ms;     /* when the PINGREQ went out */
	const char *why;      /* what failed, for the close */
	int why_errno;        /* its errno, or 0 */
	int why_rc;           /* its CONNACK/SUBACK code, or -1 */
};

/** Opens the socket and starts the connect; failures are counted and
 * leave the client CLOSED. */
void cli_start(struct cli *c);
/** Queues DISCONNECT (or closes a client not yet connected); the client
 * closes once the broker has closed its side or the run ends. */
void cli_stop(struct cli *c);
/** Closes a client at once, without counting anything. */
void cli_abort(struct cli *c);
/** Keepalive and timeouts, once a second. @p now_ms is monotonic. */
void cli_tick(struct cli *c, uint64_t now_ms);
/** Frees what the client holds; it must be CLOSED or IDLE. */
void cli_fini(struct cli *c);

/* ---- the run (bench.c) ---- */

enum bench_phase {
	BENCH_RUN,   /* connecting, publishing */
	BENCH_DRAIN, /* -L published: waiting for the last acks */
	BENCH_STOP,  /* disconnecting */
};

enum bench_end {
	BENCH_END_NONE,
	BENCH_END_LIMIT,    /* -L reached */
	BENCH_END_DURATION, /* --duration over */
	BENCH_END_SIGNAL,   /* SIGINT or SIGTERM */
	BENCH_END_NO_CONN,  /* no client could connect */
	BENCH_END_ALL_LOST, /* every connection was lost */
};

struct bench {
	const struct bench_opts *o;   /* borrowed, outlives the run */
	struct event_base *base;      /* the one loop */
	struct cli *clis;             /* o->clients of them */
	uint32_t n_started;           /* clients started so far */
	uint32_t n_open;              /* sockets open */
	uint64_t inflight;            /* unacked publishes of all clients */
	enum bench_phase phase;       /* where the run is */
	enum bench_end end;           /* why it ends, once known */
	struct bench_stats st;        /* what the summary reports */
	uint8_t *rbuf;                /* shared read buffer */
	size_t rbuf_len;              /* its size */
	struct buf tmp;               /* scratch for encoders */
	uint8_t *payload;             /* payload template */
	size_t payload_len;           /* -s, at least hdr_len */
	size_t hdr_len;               /* payload header bytes */
	const struct timeval *pub_tv; /* common timeout for -I */
	struct bench_addr *src;       /* source addresses, or NULL */
	size_t n_src;                 /* entries in src */
	size_t src_next;              /* round-robin position in src */
	bool src_auto;                /* src was built after EADDRNOTAVAIL */
	bool stop_pending;            /* stop_ev is active */
	char fail_why[BENCH_WHY_LEN]; /* the first connect failure */
	char lost_why[BENCH_WHY_LEN]; /* the first lost connection */
	uint64_t t0_us;               /* monotonic start of the run */
	uint64_t t0_ms;               /* the same in milliseconds */
	double cpu0_s;                /* user + sys CPU seconds at t0 */
	uint64_t tick_ms;             /* last report line */
	uint64_t drain_ms;            /* DRAIN began */
	uint64_t stop_ms;             /* STOP began */
	uint64_t rx_ns;               /* CLOCK_REALTIME of the last read */
	FILE *lines;                  /* per-second lines: stdout or stderr */
	struct event launch_ev;       /* paces connects */
	struct event tick_ev;         /* 1 s: report, keepalive, deadlines */
	struct event stop_ev;         /* runs a stop requested in a callback */
	struct event dur_ev;          /* --duration */
	struct event grace_ev;        /* STOP lasted long enough */
	struct event sigint_ev;       /* stop, or at once when stopping */
	struct event sigterm_ev;      /* the same */
};

/** Monotonic milliseconds. */
uint64_t bench_now_ms(void);
/** CLOCK_REALTIME nanoseconds. */
uint64_t bench_wall_ns(void);
/** Asks the run to end; the stop itself runs from the loop, never inside
 * the caller's callback. The first reason given is kept. */
void bench_request_stop(struct bench *b, enum bench_end why);
/** Publishing goes on: no stop asked for, -L not reached. */
bool bench_publishing(const struct bench *b);
/** One more publish may start (-L not reached, not stopping); moves the
 * run to DRAIN when this publish is the last. */
bool bench_pub_take(struct bench *b);
/** Counts a publish encoded after bench_pub_take. */
void bench_pub_done(struct bench *b);
/** Called after a QoS 1/2 publish completes or is dropped. */
void bench_acked(struct bench *b);
/**
 * Called when a client is closed (its socket, if any, is gone already).
 * @param counted STATS_CONNECT_FAIL, STATS_CONN_LOST or STATS_N (none)
 * @param why what happened, for the messages; borrowed, may be NULL
 */
void bench_closed(struct bench *b, enum stats_counter counted, const char *why);
/**
 * The source address for the next socket: --ifaddr round-robin, or after
 * EADDRNOTAVAIL the local addresses found for @p dst's family.
 * @return NULL when sockets are not bound
 */
const struct bench_addr *bench_src_next(struct bench *b,
                                        const struct bench_addr *dst);
/** Turns on source spreading after connect() failed with EADDRNOTAVAIL.
 * @return true when there are addresses to spread over */
bool bench_src_auto(struct bench *b, const struct bench_addr *dst);

#endif
