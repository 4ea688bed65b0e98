/*
 * The node: event base, shared indexes, the loop's housekeeping events
 * (deferred close, output flush, timeouts) and orderly shutdown.
 */
#include "broker/node.h"

#include "broker/admin.h"
#include "broker/metrics.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define NODE_RX_SIZE (64u * 1024)
#define NODE_TICK_MS 250

uint64_t
node_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void
node_on_reap(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	conn_reap(arg);
}

static void
node_on_flush(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	conn_flush_dirty(arg);
}

static void
node_on_tick(evutil_socket_t fd, short what, void *arg)
{
	uint64_t now = node_now_ms();

	(void)fd;
	(void)what;
	conn_tick(arg, now);
	sess_tick(arg, now);
}

static void
node_on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct node *n = arg;

	(void)what;
	if (n->stopping)
		return;
	n->stopping = true;
	log_info("shutting down signal=%d connections=%u", (int)sig,
	         n->n_conns);
	listener_close_all(n);
	conn_close_all(n, "server shutting down");
	conn_reap(n);
	event_base_loopbreak(n->base);
}

/* Creates the data directory (and its parents) when missing. */
static int
node_make_data_dir(const char *path)
{
	char *p = strdup(path), *s;
	int rc = 0;

	if (!p)
		return ERR_NOMEM;
	for (s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0750) < 0 && errno != EEXIST)
			rc = ERR_IO;
		*s = '/';
	}
	if (mkdir(p, 0750) < 0 && errno != EEXIST)
		rc = ERR_IO;
	if (rc)
		log_error("cannot create data directory path=%s err=\"%s\"",
		          path, strerror(errno));
	free(p);
	return rc;
}

void *
node_pool_get(struct node_pool *p)
{
	void *b = p->head;

	if (!b)
		return malloc(p->size);
	memcpy(&p->head, b, sizeof(void *));
	p->n--;
	return b;
}

void
node_pool_put(struct node_pool *p, void *b)
{
	if (!b)
		return;
	if (p->n >= p->max) {
		free(b);
		return;
	}
	memcpy(b, &p->head, sizeof(void *));
	p->head = b;
	p->n++;
}

void
node_pool_drain(struct node_pool *p)
{
	void *b;

	while ((b = p->head)) {
		memcpy(&p->head, b, sizeof(void *));
		free(b);
	}
	p->n = 0;
}

int
node_init(struct node *n, const struct config *cfg)
{
	struct timeval tick = { 0, NODE_TICK_MS * 1000 };
	int rc = ERR_NOMEM;
	char err[512];

	memset(n, 0, sizeof(*n));
	n->cfg = cfg;
	n->started_ms = node_now_ms();
	n->out_items.size = conn_item_size(CONN_ITEM_SMALL);
	n->out_items.max = 4096;
	n->sess_outs.size = sizeof(struct sess_out);
	n->sess_outs.max = 4096;
	signal(SIGPIPE, SIG_IGN);
	if (node_make_data_dir(cfg->data_dir))
		return ERR_IO;
	rc = auth_load(&n->auth, cfg->auth_password_file,
	               cfg->auth_allow_anonymous, err, sizeof(err));
	if (rc) {
		log_error("cannot load users err=\"%s\"", err);
		return rc;
	}
	if (n->auth.enabled)
		log_info("authentication on users=%zu allow_anonymous=%d",
		         n->auth.n, cfg->auth_allow_anonymous);
	rc = acl_load(&n->acl, cfg->auth_acl_file, err, sizeof(err));
	if (rc) {
		log_error("cannot load topic permissions err=\"%s\"", err);
		return rc;
	}
	if (n->acl.enabled)
		log_info("topic permissions on rules=%zu", n->acl.n);
	rc = ERR_NOMEM;
	n->base = event_base_new();
	n->subs = topic_tree_new();
	n->retained = retain_new();
	n->rx_cap = NODE_RX_SIZE;
	n->rx = malloc(n->rx_cap);
	if (!n->base || !n->subs || !n->retained || !n->rx)
		goto out_fail;
	event_assign(&n->reap_ev, n->base, -1, 0, node_on_reap, n);
	event_assign(&n->flush_ev, n->base, -1, 0, node_on_flush, n);
	event_assign(&n->tick_ev, n->base, -1, EV_PERSIST, node_on_tick, n);
	evsignal_assign(&n->sigint_ev, n->base, SIGINT, node_on_signal, n);
	evsignal_assign(&n->sigterm_ev, n->base, SIGTERM, node_on_signal, n);
	if (event_add(&n->tick_ev, &tick) || event_add(&n->sigint_ev, NULL) ||
	    event_add(&n->sigterm_ev, NULL))
		goto out_fail;
	rc = persist_open(n);
	if (rc)
		goto out_fail;
	rc = mesh_start(n);
	if (rc)
		goto out_fail;
	/* the admin API first: once the MQTT port accepts, it answers too
	 * (a test that waited for the MQTT port lost a race to it) */
	rc = admin_start(n);
	if (rc)
		goto out_fail;
	rc = listener_open_all(n);
	if (rc)
		goto out_fail;
	rc = sys_start(n);
	if (rc)
		goto out_fail;
	return 0;
out_fail:
	node_fini(n);
	return rc;
}

int
node_run(struct node *n)
{
	log_info("mqd started version=%s node=%s port=%u data_dir=%s",
	         MQD_VERSION, n->cfg->node_name, n->cfg->mqtt_port,
	         n->cfg->data_dir);
	if (event_base_dispatch(n->base) < 0)
		return ERR_IO;
	return 0;
}

void
node_fini(struct node *n)
{
	sys_stop(n);
	admin_stop(n);
	mesh_stop(n); /* the peers hear this node leaves */
	if (n->base) {
		listener_close_all(n);
		conn_close_all(n, "server shutting down");
		conn_reap(n);
		event_del(&n->reap_ev);
		event_del(&n->flush_ev);
		event_del(&n->tick_ev);
		event_del(&n->sigint_ev);
		event_del(&n->sigterm_ev);
	}
	persist_close(n);
	sess_destroy_all(n);
	share_free_all(n);
	auth_fini(&n->auth);
	acl_fini(&n->acl);
	retain_free(n->retained);
	topic_tree_free(n->subs);
	free(n->hits);
	free(n->rx);
	node_pool_drain(&n->out_items);
	node_pool_drain(&n->sess_outs);
	if (n->base)
		event_base_free(n->base);
	memset(n, 0, sizeof(*n));
}
