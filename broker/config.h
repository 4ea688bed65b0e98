/*
 * Configuration: embedded defaults, then the INI file (-c), then MQD_*
 * environment variables, then command-line flags. Parsed once at start-up
 * into an immutable struct config.
 */
#ifndef BROKER_CONFIG_H
#define BROKER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum config_durability {
	CONFIG_DURABILITY_SYNC,
	CONFIG_DURABILITY_RELAXED,
	CONFIG_DURABILITY_NONE,
};

struct config {
	/* [node] */
	char *node_name; /* default: host name */
	char *data_dir;  /* default: ./data */
	int log_level;   /* LOG_ERROR..LOG_DEBUG, default LOG_INFO */
	/* [mqtt] */
	char *mqtt_bind;    /* default: "" = all addresses, IPv4 and IPv6 */
	uint16_t mqtt_port; /* default 1883 */
	uint32_t max_packet_size;    /* default 1 MiB (bytes, whole packet) */
	uint32_t max_connections;    /* default 10000 */
	uint16_t max_inflight;       /* default 32 (outgoing QoS 1/2 window) */
	uint32_t max_queued;         /* default 1000 messages per session */
	uint32_t connect_timeout_ms; /* default 10000 */
	uint16_t receive_maximum; /* default 32: v5 incoming QoS 1/2 window */
	uint16_t topic_alias_maximum; /* default 10: v5 aliases a client may set
	                               */
	uint16_t max_keepalive;    /* default 0 = none: v5 Server Keep Alive */
	uint16_t max_qos;          /* default 2: the highest QoS served */
	uint16_t retain_available; /* default 1: retained messages served */
	/* [storage] */
	enum config_durability durability; /* default sync */
	uint32_t sync_interval_ms;         /* default 1000 */
	uint32_t commit_delay_ms;          /* default 10; 0 = commit at once */
	uint64_t storage_max_size;         /* default 1 GiB */
	/* [cluster] */
	char *cluster_bind;                  /* default "0.0.0.0" */
	uint16_t cluster_port;               /* default 7883 */
	char *cluster_advertise;             /* default "" */
	char *cluster_seeds;                 /* default "" */
	char *cluster_secret;                /* default "" */
	uint32_t cluster_forward_timeout_ms; /* default 2000: how long a
	                                      * publisher's ack waits for the
	                                      * peers (durability sync) */
	uint32_t cluster_outbox_max;         /* default 100000 per peer */
	/* [admin] */
	char *admin_bind;    /* default 127.0.0.1 */
	uint16_t admin_port; /* default 8081 */
	char *admin_token;   /* default "" */
	/* [sys] */
	uint32_t sys_interval; /* seconds, default 10, 0 = off */
	/* [auth] */
	char *auth_password_file; /* default "": no authentication */
	char *auth_acl_file;      /* default "": every topic for everyone */
	int auth_allow_anonymous; /* default 1 (true) */

	char *config_path; /* file given with -c, or NULL */
	bool test_only;    /* -t: check the configuration and exit */
	bool health_only;  /* --health: probe the running node and exit */
};

enum config_action {
	CONFIG_RUN,  /* start the node */
	CONFIG_EXIT, /* -h, -V or -t printed what it had to: exit 0 */
};

/**
 * Fills @p cfg from defaults, the file named by -c, the environment and
 * @p argv (in that order, later wins). Reads environ; -h, -V and -t print
 * to stdout.
 * @param argv borrowed; argv[0] is the program name and is skipped
 * @param[out] err on failure, one line naming the file, line and key (or
 *   the flag / variable) and what is wrong, e.g.
 *   "mqd.conf:12: [mqtt] port: value "70000" out of range 1..65535",
 *   "environment MQD_MQTT_PORT: value "x" is not a number",
 *   "unknown option --frob"
 * @param[out] action what main should do on success
 * @return 0, ERR_MALFORMED (bad value, unknown key or flag), ERR_IO
 *   (file unreadable) or ERR_NOMEM. On failure cfg holds nothing to free;
 *   on success the caller releases it with config_fini, whatever the
 *   action. Start-up only: not thread-safe (reads environ).
 */
int config_load(struct config *cfg, int argc, char **argv, char *err,
                size_t errlen, enum config_action *action);

/**
 * config_load with the environment and the output stream passed in, for
 * tests and tools; config_load is config_load_from(..., environ, stdout,
 * ...).
 * @param envp NULL-terminated "NAME=value" strings, borrowed; NULL for an
 *   empty environment. Only MQD_<SECTION>_<KEY> names of known sections
 *   are read; an unknown key in a known section is an error.
 * @param out the FILE * that -h, -V and -t print to
 */
int config_load_from(struct config *cfg, int argc, char **argv, char **envp,
                     void *out, char *err, size_t errlen,
                     enum config_action *action);

/** Frees what config_load allocated; safe on a zeroed struct. */
void config_fini(struct config *cfg);

/** Prints the --help text (flags, then every key) to @p out, a FILE *. */
void config_usage(void *out);

/**
 * Names the @p i th configuration key (0-based, the order of --help and
 * deploy/mqd.conf). The strings are static.
 * @return false when @p i is past the last key
 */
bool config_key_name(size_t i, const char **section, const char **key);

/**
 * Writes the value of the @p i th key in @p cfg as the file would spell it
 * (numbers and sizes in decimal, enums by name, strings verbatim) into
 * @p buf, NUL-terminated.
 * @return 0, ERR_NOTFOUND (no such key) or ERR_TOO_LARGE (@p buf too small;
 *   it holds a truncated value)
 */
int config_key_format(const struct config *cfg, size_t i, char *buf,
                      size_t len);

/**
 * True when @p addr is a loopback address: 127.0.0.0/8, ::1 or
 * "localhost". "" (all addresses) and host names are not.
 */
bool config_addr_is_loopback(const char *addr);

#endif
