/*
 * MQTT TCP listeners: one per address of [mqtt] bind (all IPv4 and IPv6
 * addresses when empty). Accepted sockets go to conn_accept.
 */
#include "broker/node.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>

#include <event2/listener.h>

struct listener {
	struct listener *next;
	struct evconnlistener *lev;
	struct node *node;
	struct event *pause; /* re-enables accepting after EMFILE */
	char name[64];
};

/* How long accepting pauses when the process is out of descriptors: the
 * pending connection stays in the backlog, so accepting again at once
 * would spin. */
#define LISTENER_PAUSE_MS 100

static void
listener_on_resume(evutil_socket_t fd, short what, void *arg)
{
	struct listener *l = arg;

	(void)fd;
	(void)what;
	evconnlistener_enable(l->lev);
}

static void
listener_on_accept(struct evconnlistener *lev, evutil_socket_t fd,
                   struct sockaddr *sa, int salen, void *arg)
{
	struct listener *l = arg;

	(void)lev;
	conn_accept(l->node, fd, sa, (socklen_t)salen);
}

static void
listener_on_error(struct evconnlistener *lev, void *arg)
{
	struct listener *l = arg;
	int err = EVUTIL_SOCKET_ERROR();

	(void)lev;
	if (log_limit_ok(&l->node->log_lim, 5))
		log_warn("accept failed listener=%s err=\"%s\"", l->name,
		         evutil_socket_error_to_string(err));
	if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
		struct timeval tv = { 0, LISTENER_PAUSE_MS * 1000 };
		evconnlistener_disable(l->lev);
		event_add(l->pause, &tv);
	}
}

static int
listener_open(struct node *n, const struct addrinfo *ai)
{
	unsigned flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC |
	                 LEV_OPT_REUSEABLE;
	char host[INET6_ADDRSTRLEN + 8] = "?", serv[16] = "?";
	struct listener *l;

	getnameinfo(ai->ai_addr, ai->ai_addrlen, host, sizeof(host), serv,
	            sizeof(serv), NI_NUMERICHOST | NI_NUMERICSERV);
	if (ai->ai_family == AF_INET6)
		flags |= LEV_OPT_BIND_IPV6ONLY;
	l = calloc(1, sizeof(*l));
	if (!l)
		return ERR_NOMEM;
	l->node = n;
	snprintf(l->name, sizeof(l->name),
	         ai->ai_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, serv);
	l->lev =
	        evconnlistener_new_bind(n->base, listener_on_accept, l, flags,
	                                1024, ai->ai_addr, (int)ai->ai_addrlen);
	if (!l->lev) {
		log_error("cannot listen address=%s err=\"%s\"", l->name,
		          strerror(errno));
		free(l);
		return ERR_IO;
	}
	l->pause = evtimer_new(n->base, listener_on_resume, l);
	if (!l->pause) {
		evconnlistener_free(l->lev);
		free(l);
		return ERR_NOMEM;
	}
	evconnlistener_set_error_cb(l->lev, listener_on_error);
	l->next = n->listeners;
	n->listeners = l;
	log_info("listening proto=mqtt address=%s", l->name);
	return 0;
}

int
listener_open_all(struct node *n)
{
	struct addrinfo hints, *res, *ai;
	const char *bind = n->cfg->mqtt_bind;
	char port[8];
	int rc, opened = 0;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	snprintf(port, sizeof(port), "%u", n->cfg->mqtt_port);
	rc = getaddrinfo(bind && *bind ? bind : NULL, port, &hints, &res);
	if (rc) {
		log_error("cannot resolve bind address=%s err=\"%s\"",
		          bind ? bind : "", gai_strerror(rc));
		return ERR_IO;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
			continue;
		rc = listener_open(n, ai);
		if (rc == 0)
			opened++;
		else if (bind && *bind)
			break; /* an explicit address must work */
		else if (ai->ai_family == AF_INET6 && errno == EAFNOSUPPORT)
			rc = 0; /* no IPv6 on this host: IPv4 alone is fine */
		else
			break;
	}
	freeaddrinfo(res);
	if (rc)
		return rc;
	return opened ? 0 : ERR_IO;
}

void
listener_close_all(struct node *n)
{
	struct listener *l;

	while ((l = n->listeners)) {
		n->listeners = l->next;
		evconnlistener_free(l->lev);
		event_free(l->pause);
		free(l);
	}
}

void
listener_foreach(struct node *n, void (*fn)(void *arg, const char *name),
                 void *arg)
{
	struct listener *l;

	for (l = n->listeners; l; l = l->next)
		fn(arg, l->name);
}
