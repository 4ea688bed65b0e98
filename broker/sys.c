/*
 * $SYS topics: every [sys] interval seconds the node publishes each metric
 * of METRICS_TABLE as $SYS/broker/<path> (decimal text), plus the version,
 * node name and each cluster peer's link, retained (a new subscriber gets
 * the current values at once, as with Mosquitto) and to this node's
 * subscribers only: the values are per node, so they are neither stored
 * nor forwarded nor replicated. '#' at the root does not match them
 * [MQTT-4.7.2-1]; subscribe to $SYS/#.
 */
#include "broker/metrics.h"

#include <stdio.h>
#include <string.h>

#include "broker/node.h"

#define SYS_PREFIX "$SYS/broker/"

/* Publishes one $SYS topic: retained here (when retained messages are
 * available), delivered to local subscribers. */
static void
sys_put(struct node *n, const char *path, const char *value)
{
	char topic[512];
	struct msg *m;
	int w;

	w = snprintf(topic, sizeof(topic), SYS_PREFIX "%s", path);
	if (w < 0 || (size_t)w >= sizeof(topic))
		return;
	/* without retained messages ([mqtt] retain_available = 0, said in
	 * the CONNACK) the values are only published */
	m = router_msg_new(
	        n, (struct mqtt_bytes){ (const uint8_t *)topic, (size_t)w },
	        (struct mqtt_bytes){ (const uint8_t *)value, strlen(value) },
	        NULL, 0, n->cfg->retain_available != 0);
	if (!m)
		return; /* out of memory: the next interval tries again */
	if (m->retain && retain_set(n->retained, m) != 0) {
		msg_unref(m);
		return;
	}
	router_publish(n, m);
	msg_unref(m);
}

static void
sys_put_u64(struct node *n, const char *path, uint64_t v)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
	sys_put(n, path, buf);
}

void
sys_publish(struct node *n)
{
	struct metrics_snap s;
	char path[400];
	size_t i;

	metrics_collect(n, &s); /* on NOMEM: values without the peer list */
	sys_put(n, "version", "mqd " MQD_VERSION);
	sys_put(n, "node", n->cfg->node_name);
	for (i = 0; i < METRIC_N; i++)
		sys_put_u64(n, metrics_defs[i].sys, s.v[i]);
	sys_put_u64(n, "storage/commit_us_sum", s.g.st.commit_us_sum);
	for (i = 0; i < s.n_peers; i++) {
		snprintf(path, sizeof(path), "cluster/peers/%s/link",
		         s.peers[i].name);
		sys_put(n, path, s.peers[i].link_up ? "up" : "down");
	}
	metrics_snap_fini(&s);
}

static void
sys_on_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	sys_publish(arg);
}

int
sys_start(struct node *n)
{
	struct timeval tv = { (time_t)n->cfg->sys_interval, 0 };

	if (n->cfg->sys_interval == 0)
		return 0;
	event_assign(&n->sys_ev, n->base, -1, EV_PERSIST, sys_on_timer, n);
	if (event_add(&n->sys_ev, &tv) != 0)
		return ERR_NOMEM;
	n->sys_on = true;
	sys_publish(n);
	log_info("$SYS topics published interval_s=%u",
	         (unsigned)n->cfg->sys_interval);
	return 0;
}

void
sys_stop(struct node *n)
{
	if (!n->sys_on)
		return;
	event_del(&n->sys_ev);
	n->sys_on = false;
}
