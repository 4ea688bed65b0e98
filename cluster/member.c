/*
 * The SWIM rules as pure functions (which update wins, when to refute, when
 * a suspect is declared dead), node name and address checks, and the Auth
 * proof. No state and no I/O, so the unit tests call them directly.
 */
#include "cluster/cluster.h"

#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "cluster/cluster_int.h"

static_assert(CLUSTER_ALIVE < CLUSTER_SUSPECT &&
                      CLUSTER_SUSPECT < CLUSTER_DEAD &&
                      CLUSTER_DEAD < CLUSTER_LEFT,
              "member_update_wins relies on the state order");

bool
member_update_wins(enum cluster_member_state cur, uint64_t cur_inc,
                   enum cluster_member_state st, uint64_t inc)
{
	if (inc != cur_inc)
		return inc > cur_inc;
	return st > cur;
}

uint64_t
member_refute(uint64_t own, enum cluster_member_state st, uint64_t inc)
{
	if (inc > own || (inc == own && st != CLUSTER_ALIVE))
		return inc + 1;
	return own;
}

uint64_t
member_dead_at(uint64_t suspected_ms, uint64_t heard_ms, uint32_t ping_ms,
               uint32_t dead_ms)
{
	uint64_t floor = suspected_ms + ping_ms;
	uint64_t at = heard_ms + dead_ms - ping_ms / 2;

	return at > floor ? at : floor;
}

bool
member_name_is_valid(const char *name)
{
	size_t i, n = strlen(name);

	if (n == 0 || n > CLUSTER_NAME_MAX)
		return false;
	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)name[i];

		if (ch < 0x20 || ch == 0x7f || ch == '"')
			return false;
	}
	return true;
}

static int
member_port_parse(const char *s, char *port, size_t portlen)
{
	unsigned long v;
	char *end;

	if (*s < '0' || *s > '9' || strlen(s) > 5)
		return ERR_MALFORMED;
	v = strtoul(s, &end, 10);
	if (*end != '\0' || v == 0 || v > 65535)
		return ERR_MALFORMED;
	if ((size_t)snprintf(port, portlen, "%lu", v) >= portlen)
		return ERR_MALFORMED;
	return 0;
}

static int
member_host_copy(const char *p, size_t n, char *host, size_t hostlen)
{
	if (n == 0 || n >= hostlen)
		return ERR_MALFORMED;
	memcpy(host, p, n);
	host[n] = '\0';
	return 0;
}

int
member_addr_split(const char *addr, uint16_t defport, char *host,
                  size_t hostlen, char *port, size_t portlen)
{
	const char *colon, *end;

	if (strlen(addr) > CLUSTER_ADDR_MAX)
		return ERR_MALFORMED;
	if (addr[0] == '[') {
		end = strchr(addr, ']');
		if (end == NULL ||
		    member_host_copy(addr + 1, (size_t)(end - addr - 1), host,
		                     hostlen))
			return ERR_MALFORMED;
		if (end[1] == '\0')
			goto out_default;
		if (end[1] != ':')
			return ERR_MALFORMED;
		return member_port_parse(end + 2, port, portlen);
	}
	colon = strrchr(addr, ':');
	if (colon == NULL || strchr(addr, ':') != colon) {
		/* no port, or a bare IPv6 address */
		if (member_host_copy(addr, strlen(addr), host, hostlen))
			return ERR_MALFORMED;
		goto out_default;
	}
	if (member_host_copy(addr, (size_t)(colon - addr), host, hostlen))
		return ERR_MALFORMED;
	return member_port_parse(colon + 1, port, portlen);
out_default:
	if (defport == 0 ||
	    (size_t)snprintf(port, portlen, "%u", (unsigned)defport) >= portlen)
		return ERR_MALFORMED;
	return 0;
}

const char *
member_state_name(enum cluster_member_state st)
{
	switch (st) {
	case CLUSTER_ALIVE:
		return "alive";
	case CLUSTER_SUSPECT:
		return "suspect";
	case CLUSTER_DEAD:
		return "dead";
	case CLUSTER_LEFT:
		return "left";
	}
	return "?";
}

int
member_auth_mac(const char *secret, size_t secret_len, const uint8_t *nonce,
                const char *name, uint8_t *out)
{
	uint8_t data[CLUSTER_NONCE_LEN + CLUSTER_NAME_MAX];
	size_t n = strlen(name);
	unsigned int len = CLUSTER_MAC_LEN;

	if (n > CLUSTER_NAME_MAX || secret_len > INT32_MAX)
		return ERR_TLS;
	memcpy(data, nonce, CLUSTER_NONCE_LEN);
	memcpy(data + CLUSTER_NONCE_LEN, name, n);
	if (HMAC(EVP_sha256(), secret, (int)secret_len, data,
	         CLUSTER_NONCE_LEN + n, out, &len) == NULL ||
	    len != CLUSTER_MAC_LEN) {
		ERR_clear_error();
		return ERR_TLS;
	}
	return 0;
}
