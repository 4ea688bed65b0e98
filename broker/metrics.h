/*
 * Metrics: one table (METRICS_TABLE) of every counter and gauge a node
 * exports, read from struct node into a snapshot, then written as
 * Prometheus text (GET /metrics), as JSON (GET /api/v1/metrics) and as
 * $SYS/broker/... topics (sys.c). Adding a metric is one table line.
 */
#ifndef BROKER_METRICS_H
#define BROKER_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster/cluster.h"
#include "storage/storage.h"

struct node;
struct evbuffer;

enum metric_type {
	METRIC_COUNTER,
	METRIC_GAUGE,
};

/*
 * X(id, family, label key, label value, type, $SYS path, help, value):
 * rows of one family (same Prometheus name) are adjacent. The value is an
 * expression over n (struct node *) and g (struct metrics_gauges, what
 * metrics_collect computes by walking the node once). The JSON name is
 * the $SYS path with '/' turned into '.'.
 */
#define METRICS_TABLE(X)                                                       \
	X(UPTIME, "uptime_seconds", NULL, NULL, METRIC_GAUGE, "uptime",        \
	  "Seconds since the node started", g->uptime_s)                       \
	X(CONNS, "connections", NULL, NULL, METRIC_GAUGE,                      \
	  "connections/current", "Open client connections", n->n_conns)        \
	X(CONN_ACC, "connections_accepted", NULL, NULL, METRIC_COUNTER,        \
	  "connections/accepted", "Connections accepted",                      \
	  n->stats.conn_accepted)                                              \
	X(CONN_CLOSED, "connections_closed", NULL, NULL, METRIC_COUNTER,       \
	  "connections/closed", "Connections closed", n->stats.conn_closed)    \
	X(REF_MAX, "connections_refused", "reason", "max_connections",         \
	  METRIC_COUNTER, "connections/refused/max_connections",               \
	  "Connections refused, by reason", n->stats.conn_refused)             \
	X(REF_CRED, "connections_refused", "reason", "bad_credentials",        \
	  METRIC_COUNTER, "connections/refused/bad_credentials", NULL,         \
	  n->stats.conn_refused_by[NODE_REFUSE_BAD_CREDENTIALS])               \
	X(REF_AUTH, "connections_refused", "reason", "not_authorized",         \
	  METRIC_COUNTER, "connections/refused/not_authorized", NULL,          \
	  n->stats.conn_refused_by[NODE_REFUSE_NOT_AUTHORIZED])                \
	X(REF_ID, "connections_refused", "reason", "client_id",                \
	  METRIC_COUNTER, "connections/refused/client_id", NULL,               \
	  n->stats.conn_refused_by[NODE_REFUSE_CLIENT_ID])                     \
	X(REF_PROTO, "connections_refused", "reason", "protocol",              \
	  METRIC_COUNTER, "connections/refused/protocol", NULL,                \
	  n->stats.conn_refused_by[NODE_REFUSE_PROTOCOL])                      \
	X(REF_UNAV, "connections_refused", "reason", "unavailable",            \
	  METRIC_COUNTER, "connections/refused/unavailable", NULL,             \
	  n->stats.conn_refused_by[NODE_REFUSE_UNAVAILABLE])                   \
	X(REF_OTHER, "connections_refused", "reason", "other", METRIC_COUNTER, \
	  "connections/refused/other", NULL,                                   \
	  n->stats.conn_refused_by[NODE_REFUSE_OTHER])                         \
	X(MIN0, "messages_received", "qos", "0", METRIC_COUNTER,               \
	  "messages/received/qos0", "PUBLISH packets received, by QoS",        \
	  n->stats.msgs_in_qos[0])                                             \
	X(MIN1, "messages_received", "qos", "1", METRIC_COUNTER,               \
	  "messages/received/qos1", NULL, n->stats.msgs_in_qos[1])             \
	X(MIN2, "messages_received", "qos", "2", METRIC_COUNTER,               \
	  "messages/received/qos2", NULL, n->stats.msgs_in_qos[2])             \
	X(MDENY, "messages_denied", NULL, NULL, METRIC_COUNTER,                \
	  "messages/denied",                                                   \
	  "PUBLISH packets [auth] acl_file does not permit (dropped)",         \
	  n->stats.msgs_denied)                                                \
	X(MOUT0, "messages_sent", "qos", "0", METRIC_COUNTER,                  \
	  "messages/sent/qos0", "PUBLISH packets sent, by QoS",                \
	  n->stats.msgs_out_qos[0])                                            \
	X(MOUT1, "messages_sent", "qos", "1", METRIC_COUNTER,                  \
	  "messages/sent/qos1", NULL, n->stats.msgs_out_qos[1])                \
	X(MOUT2, "messages_sent", "qos", "2", METRIC_COUNTER,                  \
	  "messages/sent/qos2", NULL, n->stats.msgs_out_qos[2])                \
	X(PIN0, "payload_bytes_received", "qos", "0", METRIC_COUNTER,          \
	  "payload/received/qos0", "Payload bytes received, by QoS",           \
	  n->stats.payload_in_qos[0])                                          \
	X(PIN1, "payload_bytes_received", "qos", "1", METRIC_COUNTER,          \
	  "payload/received/qos1", NULL, n->stats.payload_in_qos[1])           \
	X(PIN2, "payload_bytes_received", "qos", "2", METRIC_COUNTER,          \
	  "payload/received/qos2", NULL, n->stats.payload_in_qos[2])           \
	X(POUT0, "payload_bytes_sent", "qos", "0", METRIC_COUNTER,             \
	  "payload/sent/qos0", "Payload bytes sent, by QoS",                   \
	  n->stats.payload_out_qos[0])                                         \
	X(POUT1, "payload_bytes_sent", "qos", "1", METRIC_COUNTER,             \
	  "payload/sent/qos1", NULL, n->stats.payload_out_qos[1])              \
	X(POUT2, "payload_bytes_sent", "qos", "2", METRIC_COUNTER,             \
	  "payload/sent/qos2", NULL, n->stats.payload_out_qos[2])              \
	X(BIN, "bytes_received", NULL, NULL, METRIC_COUNTER, "bytes/received", \
	  "Bytes read from client sockets", n->stats.bytes_in)                 \
	X(BOUT, "bytes_sent", NULL, NULL, METRIC_COUNTER, "bytes/sent",        \
	  "Bytes written to client sockets", n->stats.bytes_out)               \
	X(DROP_QF, "messages_dropped", "reason", "queue_full", METRIC_COUNTER, \
	  "messages/dropped/queue_full", "Messages dropped, by reason",        \
	  n->stats.msgs_dropped_queue_full)                                    \
	X(DROP_SLOW, "messages_dropped", "reason", "slow_client",              \
	  METRIC_COUNTER, "messages/dropped/slow_client", NULL,                \
	  n->stats.msgs_dropped_slow)                                          \
	X(DROP_OFF, "messages_dropped", "reason", "offline_qos0",              \
	  METRIC_COUNTER, "messages/dropped/offline_qos0", NULL,               \
	  n->stats.msgs_dropped_offline)                                       \
	X(DROP_BIG, "messages_dropped", "reason", "too_large", METRIC_COUNTER, \
	  "messages/dropped/too_large", NULL, n->stats.msgs_dropped_too_large) \
	X(RETAINED, "retained_messages", NULL, NULL, METRIC_GAUGE,             \
	  "retained/count", "Retained messages held", g->retained)             \
	X(SESS_ON, "sessions", "state", "online", METRIC_GAUGE,                \
	  "sessions/online", "Sessions, online or offline", g->sess_online)    \
	X(SESS_OFF, "sessions", "state", "offline", METRIC_GAUGE,              \
	  "sessions/offline", NULL, g->sess_offline)                           \
	X(SUBS, "subscriptions", NULL, NULL, METRIC_GAUGE,                     \
	  "subscriptions/count", "Subscriptions held by sessions", g->subs)    \
	X(QUEUED, "messages_queued", NULL, NULL, METRIC_GAUGE,                 \
	  "messages/queued", "QoS 1/2 messages waiting in session queues",     \
	  g->queued)                                                           \
	X(INFLIGHT, "messages_inflight", NULL, NULL, METRIC_GAUGE,             \
	  "messages/inflight", "QoS 1/2 messages sent and not yet acked",      \
	  g->inflight)                                                         \
	X(KICKED, "clients_kicked", NULL, NULL, METRIC_COUNTER,                \
	  "clients/kicked", "Clients closed by an admin",                      \
	  n->stats.clients_kicked)                                             \
	X(SDROP, "sessions_dropped", NULL, NULL, METRIC_COUNTER,               \
	  "sessions/dropped", "Sessions removed by an admin",                  \
	  n->stats.sessions_dropped)                                           \
	X(ST_SIZE, "storage_size_bytes", NULL, NULL, METRIC_GAUGE,             \
	  "storage/size_bytes", "Size of the LMDB map", g->st.map_size)        \
	X(ST_BATCH, "storage_batches", NULL, NULL, METRIC_COUNTER,             \
	  "storage/batches", "Write batches committed", g->st.batches)         \
	X(ST_ERR, "storage_batch_errors", NULL, NULL, METRIC_COUNTER,          \
	  "storage/batch_errors", "Write batches that failed",                 \
	  g->st.batch_errors)                                                  \
	X(ST_COMMITS, "storage_commits", NULL, NULL, METRIC_COUNTER,           \
	  "storage/commits", "Group commits (latency samples)", g->st.commits) \
	X(ST_CANCEL, "storage_cancelled", NULL, NULL, METRIC_COUNTER,          \
	  "storage/cancelled",                                                 \
	  "Queue and in-flight writes skipped: deleted within their commit",   \
	  g->st.cancelled)                                                     \
	X(CL_FWD, "cluster_forwarded", NULL, NULL, METRIC_COUNTER,             \
	  "cluster/forwarded", "Message copies forwarded to peers",            \
	  n->stats.cluster_forwarded)                                          \
	X(CL_RECV, "cluster_received", NULL, NULL, METRIC_COUNTER,             \
	  "cluster/received", "Messages peers forwarded to this node",         \
	  n->stats.cluster_received)                                           \
	X(CL_ACKED, "cluster_forwards_acked", NULL, NULL, METRIC_COUNTER,      \
	  "cluster/forwards_acked", "QoS 1/2 forwards acknowledged by peers",  \
	  g->cl.acked)                                                         \
	X(CL_DUPS, "cluster_duplicates", NULL, NULL, METRIC_COUNTER,           \
	  "cluster/duplicates",                                                \
	  "Forwards received again (acked, not delivered)",                    \
	  n->stats.cluster_duplicates)                                         \
	X(CL_TIMEOUTS, "cluster_ack_timeouts", NULL, NULL, METRIC_COUNTER,     \
	  "cluster/ack_timeouts",                                              \
	  "Publisher acks sent before the peers acked (forward_timeout_ms)",   \
	  n->stats.cluster_ack_timeouts)                                       \
	X(CL_OUTBOX, "cluster_outbox", NULL, NULL, METRIC_GAUGE,               \
	  "cluster/outbox", "Forwards waiting for a peer's ack, all peers",    \
	  g->cl.outbox)                                                        \
	X(CL_OB_DROP, "cluster_outbox_dropped", "reason", "full",              \
	  METRIC_COUNTER, "cluster/outbox_dropped/full",                       \
	  "Forwards not kept for a peer", g->cl.dropped)                       \
	X(CL_OB_EXP, "cluster_outbox_dropped", "reason", "expired",            \
	  METRIC_COUNTER, "cluster/outbox_dropped/expired", NULL,              \
	  g->cl.expired)                                                       \
	X(CL_ALIVE, "cluster_members", "state", "alive", METRIC_GAUGE,         \
	  "cluster/members/alive", "Cluster members (this node included)",     \
	  g->members[0])                                                       \
	X(CL_SUSPECT, "cluster_members", "state", "suspect", METRIC_GAUGE,     \
	  "cluster/members/suspect", NULL, g->members[1])                      \
	X(CL_DEAD, "cluster_members", "state", "dead", METRIC_GAUGE,           \
	  "cluster/members/dead", NULL, g->members[2])                         \
	X(CL_LEFT, "cluster_members", "state", "left", METRIC_GAUGE,           \
	  "cluster/members/left", NULL, g->members[3])                         \
	X(CL_LINKS, "cluster_links_up", NULL, NULL, METRIC_GAUGE,              \
	  "cluster/links_up", "Peers with an established link", g->links_up)

enum metric_id {
#define METRICS_ID(id, fam, lk, lv, type, sys, help, val) METRIC_##id,
	METRICS_TABLE(METRICS_ID)
#undef METRICS_ID
	        METRIC_N,
};

/** One row of METRICS_TABLE. */
struct metric_def {
	const char *family; /* Prometheus name without "mqd_" / "_total" */
	const char *lkey;   /* label key, or NULL */
	const char *lval;   /* label value, or NULL */
	enum metric_type type;
	const char *sys;  /* path under $SYS/broker/ */
	const char *help; /* on the first row of a family */
};

/** The rows, METRIC_N of them, in table order. */
extern const struct metric_def metrics_defs[METRIC_N];

/** One cluster peer's link, as the snapshot saw it. */
struct metrics_peer {
	char *name;      /* owned */
	int state;       /* enum cluster_member_state */
	bool link_up;    /* an established link */
	uint64_t routes; /* filters it announced */
	uint64_t outbox; /* forwards waiting for its ack */
};

/** What metrics_collect computes by walking the node. */
struct metrics_gauges {
	uint64_t uptime_s;
	uint64_t retained;
	uint64_t sess_online;
	uint64_t sess_offline;
	uint64_t subs;
	uint64_t queued;
	uint64_t inflight;
	uint64_t members[4]; /* by enum cluster_member_state */
	uint64_t links_up;
	struct store_stats st;   /* zero without storage */
	struct cluster_stats cl; /* acknowledged forwarding */
};

/** All values at one instant. */
struct metrics_snap {
	uint64_t v[METRIC_N];       /* by enum metric_id */
	struct metrics_gauges g;    /* g.st holds the commit histogram */
	struct metrics_peer *peers; /* owned, n_peers of them */
	size_t n_peers;
};

/**
 * Reads every metric of @p n into @p s (zeroed first). Loop thread only.
 * @return 0, or ERR_NOMEM (the peer list is then empty; values are set)
 */
int metrics_collect(struct node *n, struct metrics_snap *s);
/** Frees the peer list; safe on a zeroed snapshot. */
void metrics_snap_fini(struct metrics_snap *s);

/**
 * Appends the Prometheus text exposition (version 0.0.4) of @p s to
 * @p out: every family once with # HELP and # TYPE, counters with the
 * _total suffix, names prefixed "mqd_", the commit latency histogram as
 * mqd_storage_commit_seconds, and mqd_cluster_peer_up{peer="..."}.
 * @return 0 or ERR_NOMEM
 */
int metrics_prom(struct evbuffer *out, const struct metrics_snap *s);

/**
 * Writes a Prometheus label value with \, " and newline escaped into
 * @p buf (NUL-terminated, truncated to fit).
 */
void metrics_label_escape(const char *v, char *buf, size_t len);

/** The JSON name of row @p i ($SYS path, '/' -> '.') into @p buf. */
void metrics_json_name(size_t i, char *buf, size_t len);

/** The enum node_refuse of a refusing CONNACK code (3.1.1 or 5). */
int metrics_refuse_reason(uint8_t rc);

/* ---- sys.c ---- */

/** Publishes $SYS/broker/... now and every [sys] interval seconds;
 * interval 0: never. @return 0 or ERR_NOMEM */
int sys_start(struct node *n);
void sys_stop(struct node *n);
/** Publishes every $SYS topic once (retained, to local subscribers). */
void sys_publish(struct node *n);

#endif
