/*
 * Client authentication: the user table loaded from [auth] password_file,
 * plain user name / password checks (CONNECT), and the server side of
 * SCRAM-SHA-256 (RFC 5802, RFC 7677) for MQTT 5 enhanced authentication.
 * Passwords are kept only as SCRAM keys (salted, PBKDF2), never in clear.
 */
#include "broker/auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "broker/lines.h"

#define AUTH_ITERATIONS 4096
#define AUTH_SALT_LEN   16
#define AUTH_NONCE_LEN  18 /* random bytes; base64 makes 24 characters */
#define AUTH_LINE_MAX   1024

struct auth_user {
	char *name;
	uint8_t salt[AUTH_SALT_LEN];
	uint8_t stored_key[SHA256_DIGEST_LENGTH];
	uint8_t server_key[SHA256_DIGEST_LENGTH];
};

struct auth_scram {
	const struct auth_user *user;
	char *client_first_bare;
	char *server_first;
	char *nonce; /* client nonce + server nonce */
};

static int
auth_hmac(const uint8_t *key, size_t klen, const void *data, size_t dlen,
          uint8_t out[SHA256_DIGEST_LENGTH])
{
	unsigned int len = 0;

	if (!HMAC(EVP_sha256(), key, (int)klen, data, dlen, out, &len))
		return ERR_NOMEM;
	return 0;
}

/* Derives a user's StoredKey and ServerKey from the password. */
static int
auth_derive(struct auth_user *u, const char *password)
{
	uint8_t salted[SHA256_DIGEST_LENGTH], client_key[SHA256_DIGEST_LENGTH];
	int rc = ERR_NOMEM;

	if (RAND_bytes(u->salt, sizeof(u->salt)) != 1)
		return ERR_NOMEM;
	if (PKCS5_PBKDF2_HMAC(password, (int)strlen(password), u->salt,
	                      sizeof(u->salt), AUTH_ITERATIONS, EVP_sha256(),
	                      sizeof(salted), salted) != 1)
		goto out;
	if (auth_hmac(salted, sizeof(salted), "Client Key", 10, client_key) ||
	    auth_hmac(salted, sizeof(salted), "Server Key", 10, u->server_key))
		goto out;
	SHA256(client_key, sizeof(client_key), u->stored_key);
	rc = 0;
out:
	OPENSSL_cleanse(salted, sizeof(salted));
	OPENSSL_cleanse(client_key, sizeof(client_key));
	return rc;
}

static int
auth_add_user(struct auth *a, const char *name, const char *password)
{
	struct auth_user *u;
	size_t i;

	for (i = 0; i < a->n; i++)
		if (strcmp(a->users[i].name, name) == 0)
			return ERR_EXISTS;
	u = realloc(a->users, (a->n + 1) * sizeof(*u));
	if (!u)
		return ERR_NOMEM;
	a->users = u;
	u = &a->users[a->n];
	memset(u, 0, sizeof(*u));
	u->name = strdup(name);
	if (!u->name || auth_derive(u, password)) {
		free(u->name);
		return ERR_NOMEM;
	}
	a->n++;
	return 0;
}

struct auth_file {
	struct auth *a;
	const char *path;
	char *err;
	size_t errlen;
};

/* One "user:password" line of the password file. */
static int
auth_line(void *arg, char *line, unsigned lineno)
{
	struct auth_file *x = arg;
	char *colon;
	int rc;

	if (line[0] == '\0' || line[0] == '#')
		return 0;
	colon = strchr(line, ':');
	if (!colon || colon == line || colon[1] == '\0') {
		snprintf(x->err, x->errlen, "%s:%u: expected user:password",
		         x->path, lineno);
		return ERR_MALFORMED;
	}
	*colon = '\0';
	rc = auth_add_user(x->a, line, colon + 1);
	OPENSSL_cleanse(colon + 1, strlen(colon + 1));
	if (rc == ERR_EXISTS)
		snprintf(x->err, x->errlen, "%s:%u: user \"%s\" given twice",
		         x->path, lineno, line);
	else if (rc)
		snprintf(x->err, x->errlen, "%s:%u: out of memory", x->path,
		         lineno);
	return rc;
}

int
auth_load(struct auth *a, const char *path, bool allow_anonymous, char *err,
          size_t errlen)
{
	struct auth_file x = { a, path, err, errlen };
	int rc;

	memset(a, 0, sizeof(*a));
	a->allow_anonymous = allow_anonymous;
	if (!path || !*path)
		return 0;
	a->enabled = true;
	rc = lines_each(path, AUTH_LINE_MAX, auth_line, &x, err, errlen);
	if (rc)
		auth_fini(a);
	return rc;
}

void
auth_fini(struct auth *a)
{
	size_t i;

	for (i = 0; i < a->n; i++)
		free(a->users[i].name);
	free(a->users);
	memset(a, 0, sizeof(*a));
}

static const struct auth_user *
auth_find(const struct auth *a, const uint8_t *name, size_t len)
{
	size_t i;

	for (i = 0; i < a->n; i++)
		if (strlen(a->users[i].name) == len &&
		    memcmp(a->users[i].name, name, len) == 0)
			return &a->users[i];
	return NULL;
}

int
auth_check_password(const struct auth *a, struct mqtt_bytes user,
                    struct mqtt_bytes password)
{
	const struct auth_user *u = auth_find(a, user.p, user.len);
	uint8_t salted[SHA256_DIGEST_LENGTH], key[SHA256_DIGEST_LENGTH];
	uint8_t stored[SHA256_DIGEST_LENGTH];
	int rc = ERR_NOTFOUND;

	if (!u || password.len > INT32_MAX)
		return ERR_NOTFOUND;
	if (PKCS5_PBKDF2_HMAC((const char *)password.p, (int)password.len,
	                      u->salt, sizeof(u->salt), AUTH_ITERATIONS,
	                      EVP_sha256(), sizeof(salted), salted) != 1 ||
	    auth_hmac(salted, sizeof(salted), "Client Key", 10, key)) {
		rc = ERR_NOMEM;
		goto out;
	}
	SHA256(key, sizeof(key), stored);
	if (CRYPTO_memcmp(stored, u->stored_key, sizeof(stored)) == 0)
		rc = 0;
out:
	OPENSSL_cleanse(salted, sizeof(salted));
	OPENSSL_cleanse(key, sizeof(key));
	return rc;
}

/* Base64 of @p n bytes as a new string, or NULL. */
static char *
auth_b64(const uint8_t *p, size_t n)
{
	char *s = malloc(4 * ((n + 2) / 3) + 1);

	if (s)
		EVP_EncodeBlock((unsigned char *)s, p, (int)n);
	return s;
}

/* Decodes base64 @p s (len bytes) into @p out. @return bytes or -1 */
static int
auth_unb64(const char *s, size_t len, uint8_t *out, size_t cap)
{
	int n;

	if (len == 0 || len % 4 || len / 4 * 3 > cap)
		return -1;
	n = EVP_DecodeBlock(out, (const unsigned char *)s, (int)len);
	if (n < 0)
		return -1;
	if (s[len - 1] == '=')
		n--;
	if (s[len - 2] == '=')
		n--;
	return n;
}

/* A copy of [p, p+n) as a string, or NULL. */
static char *
auth_strndup(const void *p, size_t n)
{
	char *s = malloc(n + 1);

	if (s) {
		if (n) /* p may be NULL: absent authentication data */
			memcpy(s, p, n);
		s[n] = '\0';
	}
	return s;
}

/* Finds attribute "k=" in a comma-separated SCRAM message.
 * @return its value (up to the next comma) and its length, or NULL */
static const char *
auth_attr(const char *msg, char k, size_t *len)
{
	const char *p = msg;

	while (p && *p) {
		if (p[0] == k && p[1] == '=') {
			*len = strcspn(p + 2, ",");
			return p + 2;
		}
		p = strchr(p, ',');
		if (p)
			p++;
	}
	return NULL;
}

void
auth_scram_free(struct auth_scram *st)
{
	if (!st)
		return;
	free(st->client_first_bare);
	free(st->server_first);
	free(st->nonce);
	free(st);
}

int
auth_scram_start(const struct auth *a, struct mqtt_bytes client_first,
                 struct auth_scram **out, char **server_first)
{
	uint8_t rnd[AUTH_NONCE_LEN];
	struct auth_scram *st;
	const char *user, *cnonce;
	char *msg, *snonce = NULL, *salt = NULL;
	size_t ulen = 0, clen = 0, n;
	int rc = ERR_PROTOCOL;

	*out = NULL;
	*server_first = NULL;
	msg = auth_strndup(client_first.p, client_first.len);
	if (!msg)
		return ERR_NOMEM;
	/* gs2 header: no channel binding ("n,,"); no authzid */
	if (strlen(msg) != client_first.len || strncmp(msg, "n,,", 3) != 0)
		goto out_msg;
	user = auth_attr(msg + 3, 'n', &ulen);
	cnonce = auth_attr(msg + 3, 'r', &clen);
	if (!user || !cnonce || ulen == 0 || clen == 0 ||
	    memchr(user, '=', ulen)) /* escaped names are not supported */
		goto out_msg;
	st = calloc(1, sizeof(*st));
	if (!st) {
		rc = ERR_NOMEM;
		goto out_msg;
	}
	st->user = auth_find(a, (const uint8_t *)user, ulen);
	if (!st->user) {
		rc = ERR_NOTFOUND;
		goto out_st;
	}
	rc = ERR_NOMEM;
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		goto out_st;
	snonce = auth_b64(rnd, sizeof(rnd));
	salt = auth_b64(st->user->salt, sizeof(st->user->salt));
	st->client_first_bare = strdup(msg + 3);
	n = clen + (snonce ? strlen(snonce) : 0) + 1;
	st->nonce = malloc(n);
	if (!snonce || !salt || !st->client_first_bare || !st->nonce)
		goto out_st;
	snprintf(st->nonce, n, "%.*s%s", (int)clen, cnonce, snonce);
	n = strlen(st->nonce) + strlen(salt) + 32;
	st->server_first = malloc(n);
	if (!st->server_first)
		goto out_st;
	snprintf(st->server_first, n, "r=%s,s=%s,i=%d", st->nonce, salt,
	         AUTH_ITERATIONS);
	*server_first = st->server_first;
	*out = st;
	st = NULL;
	rc = 0;
out_st:
	auth_scram_free(st);
	free(snonce);
	free(salt);
out_msg:
	free(msg);
	return rc;
}

int
auth_scram_finish(struct auth_scram *st, struct mqtt_bytes client_final,
                  char **server_final, const char **user)
{
	uint8_t proof[64], sig[SHA256_DIGEST_LENGTH], key[SHA256_DIGEST_LENGTH];
	uint8_t stored[SHA256_DIGEST_LENGTH], ssig[SHA256_DIGEST_LENGTH];
	const char *nonce, *cb, *p;
	char *msg, *am = NULL, *sig64 = NULL;
	size_t nlen = 0, cblen = 0, plen = 0, amlen, i;
	int n, rc = ERR_PROTOCOL;

	*server_final = NULL;
	msg = auth_strndup(client_final.p, client_final.len);
	if (!msg)
		return ERR_NOMEM;
	cb = auth_attr(msg, 'c', &cblen);
	nonce = auth_attr(msg, 'r', &nlen);
	p = strstr(msg, ",p=");
	if (strlen(msg) != client_final.len || !cb || !nonce || !p ||
	    cblen != 4 || memcmp(cb, "biws", 4) != 0 ||
	    nlen != strlen(st->nonce) || memcmp(nonce, st->nonce, nlen) != 0)
		goto out;
	plen = strlen(p + 3);
	n = auth_unb64(p + 3, plen, proof, sizeof(proof));
	if (n != SHA256_DIGEST_LENGTH)
		goto out;
	/* AuthMessage = client-first-bare "," server-first ","
	 * client-final-without-proof */
	amlen = strlen(st->client_first_bare) + strlen(st->server_first) +
	        (size_t)(p - msg) + 3;
	am = malloc(amlen);
	rc = ERR_NOMEM;
	if (!am)
		goto out;
	snprintf(am, amlen, "%s,%s,%.*s", st->client_first_bare,
	         st->server_first, (int)(p - msg), msg);
	if (auth_hmac(st->user->stored_key, sizeof(stored), am, strlen(am),
	              sig))
		goto out;
	for (i = 0; i < sizeof(key); i++)
		key[i] = proof[i] ^ sig[i];
	SHA256(key, sizeof(key), stored);
	if (CRYPTO_memcmp(stored, st->user->stored_key, sizeof(stored))) {
		rc = ERR_NOTFOUND; /* wrong password */
		goto out;
	}
	if (auth_hmac(st->user->server_key, sizeof(ssig), am, strlen(am), ssig))
		goto out;
	sig64 = auth_b64(ssig, sizeof(ssig));
	if (!sig64)
		goto out;
	*server_final = malloc(strlen(sig64) + 3);
	if (!*server_final)
		goto out;
	snprintf(*server_final, strlen(sig64) + 3, "v=%s", sig64);
	*user = st->user->name;
	rc = 0;
out:
	OPENSSL_cleanse(key, sizeof(key));
	free(sig64);
	free(am);
	free(msg);
	return rc;
}
