/*
 * mqd --health: connects to the configured MQTT listener, sends a CONNECT
 * and expects a CONNACK, all within HEALTH_TIMEOUT_MS. Used by the
 * container HEALTHCHECK, so it prints nothing when the node is healthy.
 */
#include "broker/health.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "proto/proto.h"

static int64_t
health_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for @p events on @p fd until @p deadline (monotonic ms). */
static int
health_wait(int fd, short events, int64_t deadline)
{
	struct pollfd pfd = { .fd = fd, .events = events };
	int64_t left;
	int n;

	for (;;) {
		left = deadline - health_now_ms();
		if (left <= 0)
			return ERR_AGAIN;
		n = poll(&pfd, 1, (int)left);
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return ERR_IO;
	}
}

/* A non-blocking connect to one address, finished within @p deadline. */
static int
health_connect(const struct addrinfo *ai, int64_t deadline, int *out)
{
	socklen_t len = sizeof(int);
	int fd, so_err = 0, rc;

	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
	            ai->ai_protocol);
	if (fd < 0)
		return ERR_IO;
	if (fcntl(fd, F_SETFL, O_NONBLOCK) != 0)
		goto out_close;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
		if (errno != EINPROGRESS)
			goto out_close;
		rc = health_wait(fd, POLLOUT, deadline);
		if (rc != 0) {
			close(fd);
			return rc;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_err, &len) != 0)
			goto out_close;
		if (so_err != 0) {
			errno = so_err;
			goto out_close;
		}
	}
	*out = fd;
	return 0;
out_close:
	rc = errno;
	close(fd);
	errno = rc;
	return ERR_IO;
}

/* Writes all of @p p, or fails. */
static int
health_send(int fd, const uint8_t *p, size_t n, int64_t deadline)
{
	ssize_t w;
	int rc;

	while (n > 0) {
		w = send(fd, p, n, MSG_NOSIGNAL);
		if (w > 0) {
			p += w;
			n -= (size_t)w;
			continue;
		}
		if (w < 0 && errno != EAGAIN && errno != EINTR)
			return ERR_IO;
		rc = health_wait(fd, POLLOUT, deadline);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* Reads exactly @p n bytes. */
static int
health_recv(int fd, uint8_t *p, size_t n, int64_t deadline)
{
	ssize_t r;
	int rc;

	while (n > 0) {
		r = recv(fd, p, n, 0);
		if (r > 0) {
			p += r;
			n -= (size_t)r;
			continue;
		}
		if (r == 0) {
			errno = ECONNRESET;
			return ERR_IO;
		}
		if (errno != EAGAIN && errno != EINTR)
			return ERR_IO;
		rc = health_wait(fd, POLLIN, deadline);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* CONNECT, CONNACK and DISCONNECT over a connected socket. */
static int
health_exchange(int fd, const char *where, int64_t deadline)
{
	static const uint8_t disconnect[2] = { 0xe0, 0x00 };
	uint8_t pkt[64], ack[4];
	char id[24];
	size_t idlen, n = 0;
	int rc;

	/* the id names the probe in the node's log; pid: probes never
	 * take each other's session over */
	snprintf(id, sizeof(id), "mqd-health-%ld", (long)getpid());
	idlen = strlen(id);
	pkt[n++] = 0x10;                      /* CONNECT */
	pkt[n++] = (uint8_t)(10 + 2 + idlen); /* remaining length */
	/* protocol name, level 4 (3.1.1), clean session, keepalive 10 s */
	memcpy(pkt + n, "\x00\x04MQTT\x04\x02\x00\x0a", 10);
	n += 10;
	pkt[n++] = 0;
	pkt[n++] = (uint8_t)idlen;
	memcpy(pkt + n, id, idlen);
	n += idlen;
	rc = health_send(fd, pkt, n, deadline);
	if (rc == 0)
		rc = health_recv(fd, ack, sizeof(ack), deadline);
	if (rc == ERR_AGAIN) {
		fprintf(stderr, "mqd: health: %s: no CONNACK within %d ms\n",
		        where, HEALTH_TIMEOUT_MS);
		return rc;
	}
	if (rc != 0) {
		fprintf(stderr, "mqd: health: %s: %s\n", where,
		        strerror(errno));
		return rc;
	}
	if (ack[0] != 0x20 || ack[1] != 0x02) {
		fprintf(stderr,
		        "mqd: health: %s: answer is not a CONNACK "
		        "(0x%02x 0x%02x)\n",
		        where, ack[0], ack[1]);
		return ERR_PROTOCOL;
	}
	/* 0x04, 0x05: serving, but this probe has no credentials */
	if (ack[3] != 0x00 && ack[3] != 0x04 && ack[3] != 0x05) {
		fprintf(stderr, "mqd: health: %s: CONNACK refused rc=%u\n",
		        where, (unsigned)ack[3]);
		return ERR_PROTOCOL;
	}
	if (ack[3] == 0x00)
		(void)health_send(fd, disconnect, sizeof(disconnect), deadline);
	return 0;
}

int
health_probe(const struct config *cfg)
{
	const char *bind = cfg->mqtt_bind ? cfg->mqtt_bind : "";
	const char *host = bind;
	int64_t deadline = health_now_ms() + HEALTH_TIMEOUT_MS;
	struct addrinfo hints, *res = NULL, *ai;
	char port[8], where[300];
	int fd = -1, rc, gai, saved;

	if (host[0] == '\0' || strcmp(host, "0.0.0.0") == 0)
		host = "127.0.0.1";
	else if (strcmp(host, "::") == 0)
		host = "::1";
	snprintf(port, sizeof(port), "%u", (unsigned)cfg->mqtt_port);
	snprintf(where, sizeof(where), strchr(host, ':') ? "[%s]:%s" : "%s:%s",
	         host, port);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	gai = getaddrinfo(host, port, &hints, &res);
	if (gai != 0) {
		fprintf(stderr, "mqd: health: %s: %s\n", where,
		        gai_strerror(gai));
		return ERR_IO;
	}
	rc = ERR_IO;
	for (ai = res; ai != NULL && fd < 0; ai = ai->ai_next)
		rc = health_connect(ai, deadline, &fd);
	saved = errno;
	freeaddrinfo(res);
	if (fd < 0) {
		if (rc == ERR_AGAIN)
			fprintf(stderr,
			        "mqd: health: %s: connect: no answer within "
			        "%d ms\n",
			        where, HEALTH_TIMEOUT_MS);
		else
			fprintf(stderr, "mqd: health: %s: connect: %s\n", where,
			        strerror(saved));
		return rc;
	}
	rc = health_exchange(fd, where, deadline);
	close(fd);
	return rc;
}
