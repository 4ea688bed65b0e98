/*
 * Configuration loading. One table of keys (section, name, type, field,
 * bounds, default) drives the embedded defaults, the INI file (libinih), the
 * MQD_<SECTION>_<KEY> environment, the flags, --help and config_key_format:
 * a new key is one row in config_keys[] plus its field in struct config.
 */
#include "broker/config.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <ini.h>

#include "proto/proto.h"

extern char **environ;

enum config_type {
	CONFIG_T_STR,  /* char *, strdup'd; min..max bound the length */
	CONFIG_T_U16,  /* uint16_t */
	CONFIG_T_U32,  /* uint32_t */
	CONFIG_T_SIZE, /* uint64_t bytes; takes a K, M or G suffix (x 1024) */
	CONFIG_T_ENUM, /* int-sized enum; the value is the index in names[] */
};

struct config_key {
	const char *section;
	const char *key;
	enum config_type type;
	size_t offset; /* of the field in struct config */
	uint64_t min;  /* numbers: bounds; strings: length bounds in bytes */
	uint64_t max;
	const char *def;          /* default in file syntax; NULL: host name */
	const char *const *names; /* CONFIG_T_ENUM: the values, NULL-ended */
};

/*
 * offsetof(struct config, f), made a compile error when the C type of field
 * f does not fit type t (enums share uint32_t's row: GCC makes them
 * unsigned int).
 */
#define CONFIG_OFFSET(t, f) \
	(offsetof(struct config, f) +                                          \
	 0 * sizeof(char[_Generic(((struct config *)0)->f,                     \
				  char *: (t) == CONFIG_T_STR,                 \
				  uint16_t: (t) == CONFIG_T_U16,               \
				  uint32_t: (t) == CONFIG_T_U32 ||             \
					  (t) == CONFIG_T_ENUM,                \
				  uint64_t: (t) == CONFIG_T_SIZE,              \
				  int: (t) == CONFIG_T_ENUM)                   \
				 ? 1                                           \
				 : -1]))

#define CONFIG_KEY(s, k, t, f, lo, hi, d)                                 \
	{                                                                 \
		(s), (k), (t), CONFIG_OFFSET(t, f), (lo), (hi), (d), NULL \
	}
#define CONFIG_ENUM(s, k, f, d, n)                                           \
	{                                                                    \
		(s), (k), CONFIG_T_ENUM, CONFIG_OFFSET(CONFIG_T_ENUM, f), 0, \
		        0, (d), (n)                                          \
	}

#define KIB 1024ULL
#define MIB (1024ULL * KIB)
#define GIB (1024ULL * MIB)

static_assert(sizeof(enum config_durability) == sizeof(int),
              "enum keys are stored as int");

static const char *const config_level_names[] = { "error", "warn", "info",
	                                          "debug", NULL };
static const char *const config_bool_names[] = { "false", "true", NULL };
static const char *const config_durability_names[] = { "sync", "relaxed",
	                                               "none", NULL };

/* The order here is the order of --help and deploy/mqd.conf. */
static const struct config_key config_keys[] = {
	CONFIG_KEY("node", "name", CONFIG_T_STR, node_name, 1, 255, NULL),
	CONFIG_KEY("node", "data_dir", CONFIG_T_STR, data_dir, 1, 4095,
	           "./data"),
	CONFIG_ENUM("node", "log_level", log_level, "info", config_level_names),
	CONFIG_KEY("mqtt", "bind", CONFIG_T_STR, mqtt_bind, 0, 255, ""),
	CONFIG_KEY("mqtt", "port", CONFIG_T_U16, mqtt_port, 1, 65535, "1883"),
	CONFIG_KEY("mqtt", "max_packet_size", CONFIG_T_U32, max_packet_size, 16,
	           268435460, "1048576"),
	CONFIG_KEY("mqtt", "max_connections", CONFIG_T_U32, max_connections, 1,
	           1000000, "10000"),
	CONFIG_KEY("mqtt", "max_inflight", CONFIG_T_U16, max_inflight, 1, 65535,
	           "32"),
	CONFIG_KEY("mqtt", "max_queued", CONFIG_T_U32, max_queued, 1, 10000000,
	           "1000"),
	CONFIG_KEY("mqtt", "connect_timeout_ms", CONFIG_T_U32,
	           connect_timeout_ms, 100, 3600000, "10000"),
	CONFIG_KEY("mqtt", "receive_maximum", CONFIG_T_U16, receive_maximum, 1,
	           65535, "32"),
	CONFIG_KEY("mqtt", "topic_alias_maximum", CONFIG_T_U16,
	           topic_alias_maximum, 0, 65535, "10"),
	CONFIG_KEY("mqtt", "max_keepalive", CONFIG_T_U16, max_keepalive, 0,
	           65535, "0"),
	CONFIG_KEY("mqtt", "max_qos", CONFIG_T_U16, max_qos, 0, 2, "2"),
	CONFIG_KEY("mqtt", "retain_available", CONFIG_T_U16, retain_available,
	           0, 1, "1"),
	CONFIG_ENUM("storage", "durability", durability, "sync",
	            config_durability_names),
	CONFIG_KEY("storage", "sync_interval_ms", CONFIG_T_U32,
	           sync_interval_ms, 1, 60000, "1000"),
	CONFIG_KEY("storage", "commit_delay_ms", CONFIG_T_U32, commit_delay_ms,
	           0, 1000, "10"),
	CONFIG_KEY("storage", "max_size", CONFIG_T_SIZE, storage_max_size, MIB,
	           16384 * GIB, "1G"),
	CONFIG_KEY("cluster", "bind", CONFIG_T_STR, cluster_bind, 0, 255,
	           "0.0.0.0"),
	CONFIG_KEY("cluster", "port", CONFIG_T_U16, cluster_port, 1, 65535,
	           "7883"),
	CONFIG_KEY("cluster", "advertise", CONFIG_T_STR, cluster_advertise, 0,
	           255, ""),
	CONFIG_KEY("cluster", "seeds", CONFIG_T_STR, cluster_seeds, 0, 65535,
	           ""),
	CONFIG_KEY("cluster", "secret", CONFIG_T_STR, cluster_secret, 0, 1024,
	           ""),
	CONFIG_KEY("cluster", "forward_timeout_ms", CONFIG_T_U32,
	           cluster_forward_timeout_ms, 0, 600000, "2000"),
	CONFIG_KEY("cluster", "outbox_max", CONFIG_T_U32, cluster_outbox_max, 1,
	           100000000, "100000"),
	CONFIG_KEY("admin", "bind", CONFIG_T_STR, admin_bind, 0, 255,
	           "127.0.0.1"),
	CONFIG_KEY("admin", "port", CONFIG_T_U16, admin_port, 1, 65535, "8081"),
	CONFIG_KEY("admin", "token", CONFIG_T_STR, admin_token, 0, 1024, ""),
	CONFIG_KEY("sys", "interval", CONFIG_T_U32, sys_interval, 0, 86400,
	           "10"),
	CONFIG_KEY("auth", "acl_file", CONFIG_T_STR, auth_acl_file, 0, 4095,
	           ""),
	CONFIG_KEY("auth", "password_file", CONFIG_T_STR, auth_password_file, 0,
	           4095, ""),
	CONFIG_ENUM("auth", "allow_anonymous", auth_allow_anonymous, "true",
	            config_bool_names),
};

#define CONFIG_NKEYS (sizeof(config_keys) / sizeof(config_keys[0]))

enum config_flag_kind {
	CONFIG_FLAG_KEY,     /* sets the key section/key */
	CONFIG_FLAG_CONFIG,  /* -c FILE */
	CONFIG_FLAG_TEST,    /* -t */
	CONFIG_FLAG_HEALTH,  /* --health */
	CONFIG_FLAG_HELP,    /* -h */
	CONFIG_FLAG_VERSION, /* -V */
};

struct config_flag {
	const char *name; /* long form, without the "--" */
	char letter;      /* short form, 0 for none */
	enum config_flag_kind kind;
	const char *section; /* CONFIG_FLAG_KEY: the key it sets */
	const char *key;
	const char *arg; /* what the value is called; NULL: takes none */
	const char *help;
};

static const struct config_flag config_flags[] = {
	{ "config", 'c', CONFIG_FLAG_CONFIG, NULL, NULL, "FILE",
	  "read settings from the INI file FILE" },
	{ "port", 'p', CONFIG_FLAG_KEY, "mqtt", "port", "N",
	  "MQTT port ([mqtt] port)" },
	{ "bind", 0, CONFIG_FLAG_KEY, "mqtt", "bind", "ADDR",
	  "MQTT listen address ([mqtt] bind)" },
	{ "data-dir", 0, CONFIG_FLAG_KEY, "node", "data_dir", "DIR",
	  "data directory ([node] data_dir)" },
	{ "node-name", 0, CONFIG_FLAG_KEY, "node", "name", "NAME",
	  "node name ([node] name)" },
	{ "log-level", 0, CONFIG_FLAG_KEY, "node", "log_level", "LEVEL",
	  "error, warn, info or debug ([node] log_level)" },
	{ "cluster-port", 0, CONFIG_FLAG_KEY, "cluster", "port", "N",
	  "cluster listener port ([cluster] port)" },
	{ "seeds", 0, CONFIG_FLAG_KEY, "cluster", "seeds", "LIST",
	  "host:port,... of nodes to join ([cluster] seeds)" },
	{ "test-config", 't', CONFIG_FLAG_TEST, NULL, NULL, NULL,
	  "check the configuration and exit" },
	{ "health", 0, CONFIG_FLAG_HEALTH, NULL, NULL, NULL,
	  "exit 0 if this node's MQTT port answers, else 1" },
	{ "help", 'h', CONFIG_FLAG_HELP, NULL, NULL, NULL,
	  "print this help and exit" },
	{ "version", 'V', CONFIG_FLAG_VERSION, NULL, NULL, NULL,
	  "print the version and exit" },
};

#define CONFIG_NFLAGS (sizeof(config_flags) / sizeof(config_flags[0]))

/* One config_load_from call. */
struct config_ld {
	struct config *cfg;
	char *err;
	size_t errlen;
	const char *path; /* -c FILE, borrowed from argv */
	bool help;
	bool version;
	bool test;
	bool health;
};

/* One pass of libinih over the file. */
struct config_file {
	struct config_ld *ld;
	FILE *f;
	const char *path;
	int line;               /* number of the line last read */
	int err_line;           /* line of the error in ld->err, 0: none yet */
	int rc;                 /* its ERR_* */
	int read_errno;         /* errno of a failed read, 0: none */
	int seen[CONFIG_NKEYS]; /* line each key was set on, 0: not yet */
};

static int config_fail(struct config_ld *ld, int rc, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static int
config_fail(struct config_ld *ld, int rc, const char *fmt, ...)
{
	va_list ap;

	if (ld->err && ld->errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(ld->err, ld->errlen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

static void *
config_field(struct config *cfg, const struct config_key *k)
{
	return (char *)cfg + k->offset;
}

static bool
config_section_is_known(const char *section)
{
	size_t i;

	for (i = 0; i < CONFIG_NKEYS; i++) {
		if (strcmp(config_keys[i].section, section) == 0)
			return true;
	}
	return false;
}

static const struct config_key *
config_key_find(const char *section, const char *key)
{
	size_t i;

	for (i = 0; i < CONFIG_NKEYS; i++) {
		if (strcmp(config_keys[i].section, section) == 0 &&
		    strcmp(config_keys[i].key, key) == 0)
			return &config_keys[i];
	}
	return NULL;
}

/*
 * Parses a decimal number, with a K, M or G suffix when @p suffix.
 * @return 0, ERR_MALFORMED (not a number) or ERR_TOO_LARGE (over 2^64-1)
 */
static int
config_parse_u64(const char *s, bool suffix, uint64_t *out)
{
	uint64_t v = 0, mul = 1;
	const char *p;

	if (*s < '0' || *s > '9')
		return ERR_MALFORMED;
	for (p = s; *p >= '0' && *p <= '9'; p++) {
		unsigned d = (unsigned)(*p - '0');

		if (v > (UINT64_MAX - d) / 10)
			return ERR_TOO_LARGE;
		v = v * 10 + d;
	}
	if (suffix && *p != '\0' && p[1] == '\0') {
		if (*p == 'K' || *p == 'k')
			mul = KIB;
		else if (*p == 'M' || *p == 'm')
			mul = MIB;
		else if (*p == 'G' || *p == 'g')
			mul = GIB;
		else
			return ERR_MALFORMED;
		p++;
	}
	if (*p != '\0')
		return ERR_MALFORMED;
	if (v > UINT64_MAX / mul)
		return ERR_TOO_LARGE;
	*out = v * mul;
	return 0;
}

/* Writes @p v in bytes, or with the largest K, M or G suffix that is exact. */
static void
config_size_format(char *buf, size_t len, uint64_t v)
{
	static const char suffix[] = "KMG";
	unsigned long long n = v;
	int i = -1;

	while (i < 2 && n != 0 && n % 1024 == 0) {
		n /= 1024;
		i++;
	}
	if (i < 0)
		snprintf(buf, len, "%llu", n);
	else
		snprintf(buf, len, "%llu%c", n, suffix[i]);
}

/* Writes "min..max" of a numeric key, sizes with suffixes. */
static void
config_range_format(char *buf, size_t len, const struct config_key *k)
{
	char lo[24], hi[24]; /* 2^64-1 has 20 digits */

	if (k->type == CONFIG_T_SIZE) {
		config_size_format(lo, sizeof(lo), k->min);
		config_size_format(hi, sizeof(hi), k->max);
	} else {
		snprintf(lo, sizeof(lo), "%llu", (unsigned long long)k->min);
		snprintf(hi, sizeof(hi), "%llu", (unsigned long long)k->max);
	}
	snprintf(buf, len, "%s..%s", lo, hi);
}

static int
config_set_number(struct config *cfg, const struct config_key *k,
                  const char *val, char *why, size_t whylen)
{
	void *field = config_field(cfg, k);
	bool size = k->type == CONFIG_T_SIZE;
	char range[64];
	uint64_t v;
	int rc;

	rc = config_parse_u64(val, size, &v);
	if (rc == ERR_MALFORMED) {
		snprintf(why, whylen, "value \"%s\" is not a %s", val,
		         size ? "size (bytes, or a number with K, M or G)"
		              : "number");
		return ERR_MALFORMED;
	}
	if (rc != 0 || v < k->min || v > k->max) {
		config_range_format(range, sizeof(range), k);
		snprintf(why, whylen, "value \"%s\" out of range %s", val,
		         range);
		return ERR_MALFORMED;
	}
	if (k->type == CONFIG_T_U16)
		*(uint16_t *)field = (uint16_t)v;
	else if (k->type == CONFIG_T_U32)
		*(uint32_t *)field = (uint32_t)v;
	else
		*(uint64_t *)field = v;
	return 0;
}

static int
config_set_enum(struct config *cfg, const struct config_key *k, const char *val,
                char *why, size_t whylen)
{
	size_t i, n;
	int w;

	for (i = 0; k->names[i]; i++) {
		if (strcmp(val, k->names[i]) == 0) {
			*(int *)config_field(cfg, k) = (int)i;
			return 0;
		}
	}
	w = snprintf(why, whylen, "value \"%s\" is not one of ", val);
	n = w < 0 ? 0 : (size_t)w;
	for (i = 0; k->names[i] && n < whylen; i++) {
		w = snprintf(why + n, whylen - n, "%s%s", i ? "|" : "",
		             k->names[i]);
		n += w < 0 ? 0 : (size_t)w;
	}
	return ERR_MALFORMED;
}

static int
config_set_str(struct config *cfg, const struct config_key *k, const char *val,
               char *why, size_t whylen)
{
	char **field = config_field(cfg, k);
	size_t len = strlen(val);
	char *s;

	if (len < k->min) {
		if (k->min == 1)
			snprintf(why, whylen, "value must not be empty");
		else
			snprintf(why, whylen,
			         "value too short (%zu bytes, at least %llu)",
			         len, (unsigned long long)k->min);
		return ERR_MALFORMED;
	}
	if (len > k->max) {
		snprintf(why, whylen,
		         "value too long (%zu bytes, at most %llu)", len,
		         (unsigned long long)k->max);
		return ERR_MALFORMED;
	}
	s = strdup(val);
	if (!s) {
		snprintf(why, whylen, "out of memory");
		return ERR_NOMEM;
	}
	free(*field);
	*field = s;
	return 0;
}

/*
 * Sets key @p k from its text form @p val (borrowed).
 * @return 0, ERR_MALFORMED or ERR_NOMEM, with the reason in @p why
 */
static int
config_set(struct config *cfg, const struct config_key *k, const char *val,
           char *why, size_t whylen)
{
	switch (k->type) {
	case CONFIG_T_STR:
		return config_set_str(cfg, k, val, why, whylen);
	case CONFIG_T_ENUM:
		return config_set_enum(cfg, k, val, why, whylen);
	case CONFIG_T_U16:
	case CONFIG_T_U32:
	case CONFIG_T_SIZE:
		break;
	}
	return config_set_number(cfg, k, val, why, whylen);
}

static int
config_defaults(struct config_ld *ld)
{
	char host[256], why[256];
	const struct config_key *k;
	const char *def;
	size_t i;
	int rc;

	if (gethostname(host, sizeof(host)) != 0)
		host[0] = '\0';
	host[sizeof(host) - 1] = '\0';
	for (i = 0; i < CONFIG_NKEYS; i++) {
		k = &config_keys[i];
		def = k->def ? k->def : host[0] ? host : "mqd";
		rc = config_set(ld->cfg, k, def, why, sizeof(why));
		if (rc != 0)
			return config_fail(ld, rc, "default [%s] %s: %s",
			                   k->section, k->key, why);
	}
	return 0;
}

static int config_file_fail(struct config_file *cf, int rc, const char *fmt,
                            ...) __attribute__((format(printf, 3, 4)));

/* Records the first error of the file, prefixed "path:line: ". */
static int
config_file_fail(struct config_file *cf, int rc, const char *fmt, ...)
{
	struct config_ld *ld = cf->ld;
	va_list ap;
	int n;

	if (cf->err_line)
		return 1;
	cf->err_line = cf->line;
	cf->rc = rc;
	if (ld->err && ld->errlen > 0) {
		n = snprintf(ld->err, ld->errlen, "%s:%d: ", cf->path,
		             cf->line);
		if (n >= 0 && (size_t)n < ld->errlen) {
			va_start(ap, fmt);
			vsnprintf(ld->err + n, ld->errlen - (size_t)n, fmt, ap);
			va_end(ap);
		}
	}
	return 1;
}

/* A section header must name a known section, even with no keys under it. */
static void
config_file_check_section(struct config_file *cf, const char *line)
{
	const char *end = strchr(line, ']');
	char name[64];
	size_t len;

	if (!end)
		return; /* libinih reports it as a syntax error */
	len = (size_t)(end - line - 1);
	if (len >= sizeof(name))
		len = sizeof(name) - 1;
	memcpy(name, line + 1, len);
	name[len] = '\0';
	if (!config_section_is_known(name))
		config_file_fail(cf, ERR_MALFORMED, "unknown section [%s]",
		                 name);
}

/*
 * libinih's reader: fgets that counts lines (libinih as packaged passes no
 * line number to the handler), strips leading blanks (so an indented key is
 * a key, not the continuation of the one before), drops a UTF-8 BOM, checks
 * section names and rejects lines that do not fit libinih's buffer.
 */
static char *
config_file_read(char *str, int num, void *stream)
{
	struct config_file *cf = stream;
	size_t len, skip;
	int c;

	if (!fgets(str, num, cf->f)) {
		if (ferror(cf->f) && !cf->read_errno)
			cf->read_errno = errno ? errno : EIO;
		return NULL;
	}
	cf->line++;
	len = strlen(str);
	if (len > 0 && str[len - 1] != '\n' && len + 1 == (size_t)num) {
		c = getc(cf->f);
		if (c != EOF && c != '\n') {
			while (c != EOF && c != '\n')
				c = getc(cf->f);
			config_file_fail(cf, ERR_MALFORMED,
			                 "line longer than %d bytes", num - 1);
			str[0] = '\0';
			return str;
		}
	}
	skip = 0;
	if (cf->line == 1 && strncmp(str, "\xef\xbb\xbf", 3) == 0)
		skip = 3;
	while (str[skip] == ' ' || str[skip] == '\t')
		skip++;
	memmove(str, str + skip, len - skip + 1);
	if (str[0] == '[')
		config_file_check_section(cf, str);
	return str;
}

#define CONFIG_DUP_FMT    "duplicate key [%s] %s (first on line %d)"
#define CONFIG_SYNTAX_FMT "syntax error (expected [section] or key = value)"

static int
config_file_handler(void *user, const char *section, const char *name,
                    const char *value)
{
	struct config_file *cf = user;
	const struct config_key *k;
	char why[256], buf[1024];
	size_t i, len = strlen(value);
	int rc;

	if (cf->err_line)
		return 1;
	if (section[0] == '\0')
		return config_file_fail(cf, ERR_MALFORMED,
		                        "key %s outside any section", name);
	if (!config_section_is_known(section))
		return config_file_fail(cf, ERR_MALFORMED,
		                        "unknown section [%s]", section);
	k = config_key_find(section, name);
	if (!k)
		return config_file_fail(cf, ERR_MALFORMED,
		                        "unknown key [%s] %s", section, name);
	i = (size_t)(k - config_keys);
	if (cf->seen[i])
		return config_file_fail(cf, ERR_MALFORMED, CONFIG_DUP_FMT,
		                        section, name, cf->seen[i]);
	cf->seen[i] = cf->line;
	/* "value" in double quotes stands for value, so "" can be written */
	if (len >= 2 && len < sizeof(buf) && value[0] == '"' &&
	    value[len - 1] == '"') {
		memcpy(buf, value + 1, len - 2);
		buf[len - 2] = '\0';
		value = buf;
	}
	rc = config_set(cf->ld->cfg, k, value, why, sizeof(why));
	if (rc != 0)
		config_file_fail(cf, rc, "[%s] %s: %s", section, name, why);
	return 1;
}

static int
config_file(struct config_ld *ld)
{
	struct config_file cf;
	int r;

	memset(&cf, 0, sizeof(cf));
	cf.ld = ld;
	cf.path = ld->path;
	cf.f = fopen(ld->path, "r");
	if (!cf.f)
		return config_fail(ld, ERR_IO, "%s: cannot read: %s", ld->path,
		                   strerror(errno));
	errno = 0;
	r = ini_parse_stream(config_file_read, &cf, config_file_handler, &cf);
	fclose(cf.f);
	if (cf.read_errno)
		return config_fail(ld, ERR_IO, "%s: cannot read: %s", ld->path,
		                   strerror(cf.read_errno));
	if (r == -2)
		return config_fail(ld, ERR_NOMEM, "%s: out of memory",
		                   ld->path);
	if (r > 0 && (!cf.err_line || r < cf.err_line)) {
		cf.err_line = 0;
		cf.line = r;
		config_file_fail(&cf, ERR_MALFORMED, CONFIG_SYNTAX_FMT);
	}
	return cf.err_line ? cf.rc : 0;
}

/* ASCII case-insensitive comparison of @p n bytes; @p b is lower-case. */
static bool
config_upper_eq(const char *a, const char *b, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		char c = b[i];

		if (c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		if (a[i] != c || b[i] == '\0')
			return false;
	}
	return true;
}

/* Finds the known section that MQD_<SECTION>_ in @p name (after MQD_) names. */
static const char *
config_env_section(const char *name, size_t len)
{
	size_t i, n;

	for (i = 0; i < CONFIG_NKEYS; i++) {
		n = strlen(config_keys[i].section);
		if (len > n && name[n] == '_' &&
		    config_upper_eq(name, config_keys[i].section, n))
			return config_keys[i].section;
	}
	return NULL;
}

/* Applies one "MQD_..." entry; ignores those of unknown sections. */
static int
config_env_one(struct config_ld *ld, const char *entry)
{
	const char *eq = strchr(entry, '='), *name = entry + 4, *sec, *kp;
	const struct config_key *k = NULL;
	size_t i, len, klen;
	char why[256], key[64];
	int rc;

	if (!eq)
		return 0;
	len = (size_t)(eq - name);
	sec = config_env_section(name, len);
	if (!sec)
		return 0;
	klen = len - strlen(sec) - 1;
	kp = eq - klen;
	for (i = 0; i < CONFIG_NKEYS && !k; i++) {
		if (strcmp(config_keys[i].section, sec) == 0 &&
		    strlen(config_keys[i].key) == klen &&
		    config_upper_eq(kp, config_keys[i].key, klen))
			k = &config_keys[i];
	}
	if (!k) {
		for (i = 0; i < klen && i + 1 < sizeof(key); i++) {
			char c = kp[i];

			key[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a')
			                                : c;
		}
		key[i] = '\0';
		return config_fail(ld, ERR_MALFORMED,
		                   "environment %.*s: unknown key [%s] %s",
		                   (int)(eq - entry), entry, sec, key);
	}
	rc = config_set(ld->cfg, k, eq + 1, why, sizeof(why));
	if (rc != 0)
		return config_fail(ld, rc, "environment %.*s: %s",
		                   (int)(eq - entry), entry, why);
	return 0;
}

static int
config_env(struct config_ld *ld, char **envp)
{
	int rc;

	for (; envp && *envp; envp++) {
		if (strncmp(*envp, "MQD_", 4) != 0)
			continue;
		rc = config_env_one(ld, *envp);
		if (rc != 0)
			return rc;
	}
	return 0;
}

static const struct config_flag *
config_flag_by_name(const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < CONFIG_NFLAGS; i++) {
		if (strlen(config_flags[i].name) == len &&
		    strncmp(config_flags[i].name, name, len) == 0)
			return &config_flags[i];
	}
	return NULL;
}

static const struct config_flag *
config_flag_by_letter(char c)
{
	size_t i;

	for (i = 0; i < CONFIG_NFLAGS; i++) {
		if (config_flags[i].letter && config_flags[i].letter == c)
			return &config_flags[i];
	}
	return NULL;
}

/*
 * Acts on one flag, as typed in @p opt: the first pass (!apply) records -c,
 * -t, -h and -V, the second sets the keys, after the file and environment.
 */
static int
config_flag_do(struct config_ld *ld, const struct config_flag *f,
               const char *opt, const char *val, bool apply)
{
	const struct config_key *k;
	char why[256];
	int rc;

	if (f->kind == CONFIG_FLAG_KEY) {
		if (!apply)
			return 0;
		k = config_key_find(f->section, f->key);
		assert(k);
		rc = config_set(ld->cfg, k, val, why, sizeof(why));
		if (rc != 0)
			return config_fail(ld, rc, "%s: %s", opt, why);
		return 0;
	}
	if (apply)
		return 0;
	if (f->kind == CONFIG_FLAG_CONFIG)
		ld->path = val;
	else if (f->kind == CONFIG_FLAG_TEST)
		ld->test = true;
	else if (f->kind == CONFIG_FLAG_HEALTH)
		ld->health = true;
	else if (f->kind == CONFIG_FLAG_HELP)
		ld->help = true;
	else
		ld->version = true;
	return 0;
}

/* "--name", "--name=value" or "--name value"; @p i is moved past a value. */
static int
config_flag_long(struct config_ld *ld, int argc, char **argv, int *i,
                 bool apply)
{
	const char *name = argv[*i] + 2, *eq = strchr(name, '=');
	size_t len = eq ? (size_t)(eq - name) : strlen(name);
	const struct config_flag *f = config_flag_by_name(name, len);
	const char *val = NULL;
	char opt[32];

	if (!f)
		return config_fail(ld, ERR_MALFORMED, "unknown option --%.*s",
		                   (int)len, name);
	snprintf(opt, sizeof(opt), "--%s", f->name);
	if (!f->arg && eq)
		return config_fail(ld, ERR_MALFORMED,
		                   "option %s takes no value", opt);
	if (f->arg) {
		if (eq)
			val = eq + 1;
		else if (*i + 1 < argc)
			val = argv[++*i];
		else
			return config_fail(ld, ERR_MALFORMED,
			                   "option %s needs a value", opt);
	}
	return config_flag_do(ld, f, opt, val, apply);
}

/* "-tV", "-p N" or "-pN"; @p i is moved past a value. */
static int
config_flag_short(struct config_ld *ld, int argc, char **argv, int *i,
                  bool apply)
{
	const struct config_flag *f;
	const char *p, *val;
	char opt[3] = "-?";
	int rc;

	for (p = argv[*i] + 1; *p; p++) {
		opt[1] = *p;
		f = config_flag_by_letter(*p);
		if (!f)
			return config_fail(ld, ERR_MALFORMED,
			                   "unknown option %s", opt);
		val = NULL;
		if (f->arg) {
			if (p[1] != '\0')
				val = p + 1;
			else if (*i + 1 < argc)
				val = argv[++*i];
			else
				return config_fail(ld, ERR_MALFORMED,
				                   "option %s needs a value",
				                   opt);
		}
		rc = config_flag_do(ld, f, opt, val, apply);
		if (rc != 0 || val)
			return rc;
	}
	return 0;
}

static int
config_flags_walk(struct config_ld *ld, int argc, char **argv, bool apply)
{
	const char *a;
	int i, rc;

	for (i = 1; i < argc; i++) {
		a = argv[i];
		if (strcmp(a, "--") == 0) {
			if (i + 1 < argc)
				return config_fail(ld, ERR_MALFORMED,
				                   "unexpected argument %s",
				                   argv[i + 1]);
			return 0;
		}
		if (a[0] != '-' || a[1] == '\0')
			return config_fail(ld, ERR_MALFORMED,
			                   "unexpected argument %s", a);
		if (a[1] == '-')
			rc = config_flag_long(ld, argc, argv, &i, apply);
		else
			rc = config_flag_short(ld, argc, argv, &i, apply);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* Rules that span keys, checked once every source is applied. */
static int
config_check(struct config_ld *ld)
{
	const struct config *cfg = ld->cfg;

	if (!config_addr_is_loopback(cfg->admin_bind) && !cfg->admin_token[0])
		return config_fail(ld, ERR_MALFORMED,
		                   "[admin] token: required when [admin] bind "
		                   "\"%s\" is not a loopback address (set "
		                   "MQD_ADMIN_TOKEN, or bind 127.0.0.1)",
		                   cfg->admin_bind);
	return 0;
}

/* Everything after the first pass over the flags. */
static int
config_build(struct config_ld *ld, int argc, char **argv, char **envp)
{
	int rc;

	rc = config_defaults(ld);
	if (rc == 0 && ld->path)
		rc = config_file(ld);
	if (rc == 0)
		rc = config_env(ld, envp);
	if (rc == 0)
		rc = config_flags_walk(ld, argc, argv, true);
	if (rc == 0)
		rc = config_check(ld);
	if (rc == 0 && ld->path) {
		ld->cfg->config_path = strdup(ld->path);
		if (!ld->cfg->config_path)
			rc = config_fail(ld, ERR_NOMEM, "out of memory");
	}
	ld->cfg->test_only = ld->test;
	ld->cfg->health_only = ld->health && !ld->test;
	return rc;
}

int
config_load_from(struct config *cfg, int argc, char **argv, char **envp,
                 void *out, char *err, size_t errlen,
                 enum config_action *action)
{
	struct config_ld ld;
	FILE *o = out ? out : stdout;
	int rc;

	memset(cfg, 0, sizeof(*cfg));
	memset(&ld, 0, sizeof(ld));
	ld.cfg = cfg;
	ld.err = err;
	ld.errlen = errlen;
	if (err && errlen > 0)
		err[0] = '\0';
	*action = CONFIG_RUN;
	rc = config_flags_walk(&ld, argc, argv, false);
	if (rc != 0)
		return rc;
	if (ld.help || ld.version) {
		if (ld.help)
			config_usage(o);
		else
			fprintf(o, "mqd %s\n", MQD_VERSION);
		*action = CONFIG_EXIT;
		return 0;
	}
	rc = config_build(&ld, argc, argv, envp);
	if (rc != 0) {
		config_fini(cfg);
		return rc;
	}
	if (ld.test) {
		if (ld.path)
			fprintf(o, "configuration ok: %s\n", ld.path);
		else
			fprintf(o, "configuration ok\n");
		*action = CONFIG_EXIT;
	}
	return 0;
}

int
config_load(struct config *cfg, int argc, char **argv, char *err, size_t errlen,
            enum config_action *action)
{
	return config_load_from(cfg, argc, argv, environ, stdout, err, errlen,
	                        action);
}

void
config_fini(struct config *cfg)
{
	size_t i;

	for (i = 0; i < CONFIG_NKEYS; i++) {
		if (config_keys[i].type == CONFIG_T_STR)
			free(*(char **)config_field(cfg, &config_keys[i]));
	}
	free(cfg->config_path);
	memset(cfg, 0, sizeof(*cfg));
}

bool
config_key_name(size_t i, const char **section, const char **key)
{
	if (i >= CONFIG_NKEYS)
		return false;
	*section = config_keys[i].section;
	*key = config_keys[i].key;
	return true;
}

int
config_key_format(const struct config *cfg, size_t i, char *buf, size_t len)
{
	const struct config_key *k;
	const void *field;
	const char *s;
	int n, v;

	if (i >= CONFIG_NKEYS)
		return ERR_NOTFOUND;
	k = &config_keys[i];
	field = (const char *)cfg + k->offset;
	switch (k->type) {
	case CONFIG_T_STR:
		s = *(char *const *)field;
		n = snprintf(buf, len, "%s", s ? s : "");
		break;
	case CONFIG_T_U16:
		n = snprintf(buf, len, "%u",
		             (unsigned)*(const uint16_t *)field);
		break;
	case CONFIG_T_U32:
		n = snprintf(buf, len, "%lu",
		             (unsigned long)*(const uint32_t *)field);
		break;
	case CONFIG_T_SIZE:
		n = snprintf(buf, len, "%llu",
		             (unsigned long long)*(const uint64_t *)field);
		break;
	case CONFIG_T_ENUM:
	default:
		v = *(const int *)field;
		s = "?";
		for (n = 0; k->names[n]; n++) {
			if (n == v)
				s = k->names[n];
		}
		n = snprintf(buf, len, "%s", s);
		break;
	}
	return n >= 0 && (size_t)n < len ? 0 : ERR_TOO_LARGE;
}

/* "1883 (1..65535)", "sync (sync|relaxed|none)", "\"./data\"" ... */
static void
config_usage_key(FILE *o, const struct config_key *k)
{
	char range[64];
	size_t i;

	fprintf(o, "  [%s] %s = ", k->section, k->key);
	switch (k->type) {
	case CONFIG_T_STR:
		if (k->def)
			fprintf(o, "\"%s\"", k->def);
		else
			fprintf(o, "(host name)");
		break;
	case CONFIG_T_ENUM:
		fprintf(o, "%s (", k->def);
		for (i = 0; k->names[i]; i++)
			fprintf(o, "%s%s", i ? "|" : "", k->names[i]);
		fprintf(o, ")");
		break;
	case CONFIG_T_SIZE:
	case CONFIG_T_U16:
	case CONFIG_T_U32:
		config_range_format(range, sizeof(range), k);
		fprintf(o, "%s (%s%s)", k->def, range,
		        k->type == CONFIG_T_SIZE ? " bytes, or with K, M, G"
		                                 : "");
		break;
	}
	fprintf(o, "\n");
}

void
config_usage(void *out)
{
	FILE *o = out;
	const struct config_flag *f;
	char left[40];
	size_t i;

	fprintf(o, "usage: mqd [options]\n\n"
	           "Runs one mqd node, an MQTT broker. Settings come from "
	           "built-in defaults,\n"
	           "then the file given with -c, then environment variables "
	           "MQD_<SECTION>_<KEY>\n"
	           "(for example MQD_MQTT_PORT=1884), then the options below; "
	           "the later wins.\n\n"
	           "options:\n");
	for (i = 0; i < CONFIG_NFLAGS; i++) {
		f = &config_flags[i];
		snprintf(left, sizeof(left), "%c%c%c --%s%s%s",
		         f->letter ? '-' : ' ', f->letter ? f->letter : ' ',
		         f->letter ? ',' : ' ', f->name, f->arg ? " " : "",
		         f->arg ? f->arg : "");
		fprintf(o, "  %-24s %s\n", left, f->help);
	}
	fprintf(o, "\nkeys ([section] key = default (allowed values)):\n");
	for (i = 0; i < CONFIG_NKEYS; i++)
		config_usage_key(o, &config_keys[i]);
}

bool
config_addr_is_loopback(const char *addr)
{
	unsigned char a[16];

	if (!addr || !addr[0])
		return false; /* all addresses */
	if (strcmp(addr, "localhost") == 0)
		return true;
	if (inet_pton(AF_INET, addr, a) == 1)
		return a[0] == 127;
	if (inet_pton(AF_INET6, addr, a) == 1)
		return memcmp(a, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\1", 16) == 0;
	return false;
}
