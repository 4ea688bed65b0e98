/*
 * The MQTT 3.1 / 3.1.1 / 5.0 codec: packet structures, decode from a byte
 * range into views, encode into a struct buf, and the validation rules of the
 * specifications (UTF-8, topic names and filters, flags, properties).
 * Decoding never allocates: strings are views into the input bytes.
 */
#ifndef PROTO_MQTT_H
#define PROTO_MQTT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/buf.h"

/* Protocol levels. */
enum mqtt_version {
	MQTT_V31 = 3,  /* MQTT 3.1, protocol name "MQIsdp" */
	MQTT_V311 = 4, /* MQTT 3.1.1 */
	MQTT_V5 = 5,   /* MQTT 5.0 */
};

enum mqtt_type {
	MQTT_CONNECT = 1,
	MQTT_CONNACK = 2,
	MQTT_PUBLISH = 3,
	MQTT_PUBACK = 4,
	MQTT_PUBREC = 5,
	MQTT_PUBREL = 6,
	MQTT_PUBCOMP = 7,
	MQTT_SUBSCRIBE = 8,
	MQTT_SUBACK = 9,
	MQTT_UNSUBSCRIBE = 10,
	MQTT_UNSUBACK = 11,
	MQTT_PINGREQ = 12,
	MQTT_PINGRESP = 13,
	MQTT_DISCONNECT = 14,
	MQTT_AUTH = 15,
};

/* MQTT 5 reason codes; the 3.1.1 CONNACK return codes are MQTT_CONNACK_V3_*. */
enum mqtt_rc {
	MQTT_RC_SUCCESS = 0x00,
	MQTT_RC_GRANTED_QOS1 = 0x01,
	MQTT_RC_GRANTED_QOS2 = 0x02,
	MQTT_RC_DISCONNECT_WITH_WILL = 0x04,
	MQTT_RC_NO_MATCHING_SUBSCRIBERS = 0x10,
	MQTT_RC_NO_SUBSCRIPTION_EXISTED = 0x11,
	MQTT_RC_CONTINUE_AUTH = 0x18,
	MQTT_RC_REAUTHENTICATE = 0x19,
	MQTT_RC_UNSPECIFIED = 0x80,
	MQTT_RC_MALFORMED = 0x81,
	MQTT_RC_PROTOCOL_ERROR = 0x82,
	MQTT_RC_IMPL_SPECIFIC = 0x83,
	MQTT_RC_UNSUPPORTED_VERSION = 0x84,
	MQTT_RC_CLIENT_ID_INVALID = 0x85,
	MQTT_RC_BAD_USER_OR_PASSWORD = 0x86,
	MQTT_RC_NOT_AUTHORIZED = 0x87,
	MQTT_RC_SERVER_UNAVAILABLE = 0x88,
	MQTT_RC_SERVER_BUSY = 0x89,
	MQTT_RC_BANNED = 0x8A,
	MQTT_RC_SERVER_SHUTTING_DOWN = 0x8B,
	MQTT_RC_BAD_AUTH_METHOD = 0x8C,
	MQTT_RC_KEEPALIVE_TIMEOUT = 0x8D,
	MQTT_RC_SESSION_TAKEN_OVER = 0x8E,
	MQTT_RC_TOPIC_FILTER_INVALID = 0x8F,
	MQTT_RC_TOPIC_NAME_INVALID = 0x90,
	MQTT_RC_PACKET_ID_IN_USE = 0x91,
	MQTT_RC_PACKET_ID_NOT_FOUND = 0x92,
	MQTT_RC_RECEIVE_MAX_EXCEEDED = 0x93,
	MQTT_RC_TOPIC_ALIAS_INVALID = 0x94,
	MQTT_RC_PACKET_TOO_LARGE = 0x95,
	MQTT_RC_MESSAGE_RATE_TOO_HIGH = 0x96,
	MQTT_RC_QUOTA_EXCEEDED = 0x97,
	MQTT_RC_ADMIN_ACTION = 0x98,
	MQTT_RC_PAYLOAD_FORMAT_INVALID = 0x99,
	MQTT_RC_RETAIN_NOT_SUPPORTED = 0x9A,
	MQTT_RC_QOS_NOT_SUPPORTED = 0x9B,
	MQTT_RC_USE_ANOTHER_SERVER = 0x9C,
	MQTT_RC_SERVER_MOVED = 0x9D,
	MQTT_RC_SHARED_SUB_NOT_SUPPORTED = 0x9E,
	MQTT_RC_CONNECTION_RATE_EXCEEDED = 0x9F,
	MQTT_RC_MAX_CONNECT_TIME = 0xA0,
	MQTT_RC_SUB_IDS_NOT_SUPPORTED = 0xA1,
	MQTT_RC_WILDCARD_SUBS_NOT_SUPPORTED = 0xA2,
};

/* MQTT 3.1 / 3.1.1 CONNACK return codes. */
enum mqtt_connack_v3 {
	MQTT_CONNACK_V3_ACCEPTED = 0x00,
	MQTT_CONNACK_V3_BAD_VERSION = 0x01,
	MQTT_CONNACK_V3_ID_REJECTED = 0x02,
	MQTT_CONNACK_V3_UNAVAILABLE = 0x03,
	MQTT_CONNACK_V3_BAD_CREDENTIALS = 0x04,
	MQTT_CONNACK_V3_NOT_AUTHORIZED = 0x05,
};

/* MQTT 5 property identifiers. */
enum mqtt_prop_id {
	MQTT_PROP_PAYLOAD_FORMAT = 0x01,
	MQTT_PROP_MESSAGE_EXPIRY = 0x02,
	MQTT_PROP_CONTENT_TYPE = 0x03,
	MQTT_PROP_RESPONSE_TOPIC = 0x08,
	MQTT_PROP_CORRELATION_DATA = 0x09,
	MQTT_PROP_SUB_ID = 0x0B,
	MQTT_PROP_SESSION_EXPIRY = 0x11,
	MQTT_PROP_ASSIGNED_CLIENT_ID = 0x12,
	MQTT_PROP_SERVER_KEEPALIVE = 0x13,
	MQTT_PROP_AUTH_METHOD = 0x15,
	MQTT_PROP_AUTH_DATA = 0x16,
	MQTT_PROP_REQUEST_PROBLEM_INFO = 0x17,
	MQTT_PROP_WILL_DELAY = 0x18,
	MQTT_PROP_REQUEST_RESPONSE_INFO = 0x19,
	MQTT_PROP_RESPONSE_INFO = 0x1A,
	MQTT_PROP_SERVER_REFERENCE = 0x1C,
	MQTT_PROP_REASON_STRING = 0x1F,
	MQTT_PROP_RECEIVE_MAX = 0x21,
	MQTT_PROP_TOPIC_ALIAS_MAX = 0x22,
	MQTT_PROP_TOPIC_ALIAS = 0x23,
	MQTT_PROP_MAX_QOS = 0x24,
	MQTT_PROP_RETAIN_AVAILABLE = 0x25,
	MQTT_PROP_USER = 0x26,
	MQTT_PROP_MAX_PACKET_SIZE = 0x27,
	MQTT_PROP_WILDCARD_SUB_AVAILABLE = 0x28,
	MQTT_PROP_SUB_ID_AVAILABLE = 0x29,
	MQTT_PROP_SHARED_SUB_AVAILABLE = 0x2A,
};

#define MQTT_MAX_REMAINING     268435455u /* largest remaining length */
#define MQTT_MAX_SUB_IDS       8  /* subscription ids kept per PUBLISH */
#define MQTT_V31_MAX_CLIENT_ID 23 /* MQTT 3.1 client id limit */

/** A view of bytes owned by someone else (the input buffer, a msg...). */
struct mqtt_bytes {
	const uint8_t *p;
	size_t len;
};

/**
 * MQTT 5 properties of one packet. `present` has bit (1ull << id) set for each
 * property that was decoded (or is to be encoded). Views point into the
 * packet. User properties stay as their raw wire bytes so they pass through
 * unchanged and in order: `user` is a run of properties in wire form, each
 * User Property written 0x26 <string> <string> (identifier byte, then key and
 * value as two-byte-length strings). A decoded `user` runs from the first
 * User Property to the end of the last one, so other properties the sender
 * put between them may sit inside it: walk it with mqtt_user_next, which
 * skips them, and build one with mqtt_user_put. The encoder writes only the
 * User Properties of `user`, at the place of id 0x26 in `present` order.
 * Subscription identifiers past MQTT_MAX_SUB_IDS are validated, then dropped.
 */
struct mqtt_props {
	uint64_t present;
	uint8_t payload_format;
	uint8_t request_problem_info;
	uint8_t request_response_info;
	uint8_t max_qos;
	uint8_t retain_available;
	uint8_t wildcard_sub_available;
	uint8_t sub_id_available;
	uint8_t shared_sub_available;
	uint16_t server_keepalive;
	uint16_t receive_max;
	uint16_t topic_alias_max;
	uint16_t topic_alias;
	uint32_t message_expiry;
	uint32_t session_expiry;
	uint32_t will_delay;
	uint32_t max_packet_size;
	size_t n_sub_ids;
	uint32_t sub_ids[MQTT_MAX_SUB_IDS];
	struct mqtt_bytes content_type;
	struct mqtt_bytes response_topic;
	struct mqtt_bytes correlation_data;
	struct mqtt_bytes assigned_client_id;
	struct mqtt_bytes auth_method;
	struct mqtt_bytes auth_data;
	struct mqtt_bytes response_info;
	struct mqtt_bytes server_reference;
	struct mqtt_bytes reason_string;
	struct mqtt_bytes user; /* raw user property pairs, see above */
	size_t n_user;          /* number of user property pairs */
};

static inline bool
mqtt_props_has(const struct mqtt_props *pr, enum mqtt_prop_id id)
{
	return (pr->present >> id) & 1u;
}

/** Property context of the Will Properties in CONNECT, for mqtt_props_decode
 * (the other contexts are the packet types, enum mqtt_type). */
#define MQTT_PROPS_WILL 16

struct mqtt_connect {
	uint8_t version;    /* MQTT_V31, MQTT_V311 or MQTT_V5 */
	bool clean_start;   /* clean session (v3) / clean start (v5) */
	uint16_t keepalive; /* seconds, 0 = off */
	struct mqtt_props props;
	struct mqtt_bytes client_id;
	bool will;
	uint8_t will_qos;
	bool will_retain;
	struct mqtt_props will_props;
	struct mqtt_bytes will_topic;
	struct mqtt_bytes will_payload;
	bool has_username;
	bool has_password;
	struct mqtt_bytes username;
	struct mqtt_bytes password;
};

struct mqtt_connack {
	bool session_present;
	uint8_t rc; /* v5 reason code or v3 return code */
	struct mqtt_props props;
};

struct mqtt_publish {
	uint8_t qos;
	bool dup;
	bool retain;
	uint16_t packet_id; /* 0 for QoS 0 */
	struct mqtt_bytes topic;
	struct mqtt_props props;
	struct mqtt_bytes payload;
	/* encoder only: properties already encoded (no length prefix), sent
	 * after those of props; the decoder leaves it empty */
	struct mqtt_bytes props_raw;
};

/** PUBACK, PUBREC, PUBREL, PUBCOMP. */
struct mqtt_ack {
	uint16_t packet_id;
	uint8_t rc; /* v5 only; 0 on v3 */
	struct mqtt_props props;
};

/** One SUBSCRIBE entry. */
struct mqtt_sub_entry {
	struct mqtt_bytes filter;
	uint8_t qos;
	bool no_local;            /* v5 */
	bool retain_as_published; /* v5 */
	uint8_t retain_handling;  /* v5: 0, 1 or 2 */
};

/**
 * SUBSCRIBE and UNSUBSCRIBE: the decoder validates every entry and counts
 * them; mqtt_sub_next / mqtt_unsub_next walk `entries`.
 */
struct mqtt_subscribe {
	uint16_t packet_id;
	struct mqtt_props props;
	struct mqtt_bytes entries; /* the payload, already validated */
	size_t count;
};

/** SUBACK and UNSUBACK: one reason/return code byte per entry. */
struct mqtt_suback {
	uint16_t packet_id;
	struct mqtt_props props;
	struct mqtt_bytes codes;
};

/** DISCONNECT (v5 carries a reason and properties) and AUTH. */
struct mqtt_disconnect {
	uint8_t rc;
	struct mqtt_props props;
};

struct mqtt_packet {
	uint8_t type;  /* enum mqtt_type */
	uint8_t flags; /* low nibble of the first byte */
	union {
		struct mqtt_connect connect;
		struct mqtt_connack connack;
		struct mqtt_publish publish;
		struct mqtt_ack ack;
		struct mqtt_subscribe subscribe;   /* also UNSUBSCRIBE */
		struct mqtt_suback suback;         /* also UNSUBACK */
		struct mqtt_disconnect disconnect; /* also AUTH */
	} u;
};

/**
 * Reads a fixed header from the start of @p p.
 * @param max_size largest whole packet accepted (0 = the protocol maximum)
 * @param[out] type_flags first byte
 * @param[out] total whole packet size (fixed header + remaining length)
 * @return 0 when the header is complete; ERR_AGAIN when more bytes are
 *   needed to know the length; ERR_BAD_LENGTH for a varint over 4 bytes;
 *   ERR_TOO_LARGE when total > max_size (known before the body arrives)
 */
int mqtt_frame(const uint8_t *p, size_t len, size_t max_size,
               uint8_t *type_flags, size_t *total);

/**
 * Decodes one whole packet (as framed by mqtt_frame) from @p p.
 * @param version protocol level of the connection; ignored for CONNECT,
 *   whose own level is decoded into out->u.connect.version
 * @param[out] out views into @p p, valid while @p p is
 * @param[out] used bytes of the whole packet (set on success and, once the
 *   whole packet is in @p p, when it breaks a rule too)
 * @return 0; ERR_AGAIN when @p len does not hold the whole packet; or the
 *   ERR_* of the first rule broken (ERR_BAD_FLAGS, ERR_BAD_QOS,
 *   ERR_BAD_PACKET_ID, ERR_BAD_UTF8, ERR_BAD_TOPIC, ERR_BAD_FILTER,
 *   ERR_BAD_LENGTH, ERR_BAD_PROTOCOL, ERR_BAD_VERSION, ERR_BAD_TYPE,
 *   ERR_BAD_PROPERTY, ERR_BAD_WILL, ERR_BAD_CREDENTIALS, ERR_EMPTY,
 *   ERR_BAD_REASON, ERR_MALFORMED). For ERR_BAD_VERSION on CONNECT,
 *   out->u.connect.version holds the level that was asked for, so the caller
 *   can answer it; a non-CONNECT packet with @p version not 3, 4 or 5 also
 *   gives ERR_BAD_VERSION. Both directions decode (CONNACK, SUBACK... too).
 *   Policies: a QoS 0 PUBLISH with DUP set is ERR_BAD_FLAGS; an ack, SUBACK
 *   or UNSUBACK reason code not in the standard's table for that packet is
 *   ERR_BAD_REASON; a SUBACK or v5 UNSUBACK without codes is ERR_EMPTY.
 *   Not checked here (the broker knows the direction or session): client
 *   id length, Subscription Identifier in a client PUBLISH, topic alias
 *   ranges, $share forms, Payload Format Indicator against the payload.
 */
int mqtt_decode(const uint8_t *p, size_t len, uint8_t version,
                struct mqtt_packet *out, size_t *used);

/**
 * Walks validated SUBSCRIBE entries: rd_init(&r, sub.entries.p,
 * sub.entries.len), then call until it returns ERR_NOTFOUND.
 * @return 0, ERR_NOTFOUND at the end, ERR_MALFORMED on bytes that were not
 *   validated by mqtt_decode
 */
int mqtt_sub_next(struct rd *r, uint8_t version, struct mqtt_sub_entry *out);
/** Walks validated UNSUBSCRIBE filters. @return 0, or ERR_NOTFOUND at end */
int mqtt_unsub_next(struct rd *r, struct mqtt_bytes *filter);
/**
 * Appends one SUBSCRIBE entry (filter, then the options byte of @p version)
 * to @p b, to build struct mqtt_subscribe.entries. An UNSUBSCRIBE entry is
 * just buf_put_str(b, filter.p, filter.len).
 */
void mqtt_sub_entry_put(struct buf *b, uint8_t version,
                        const struct mqtt_sub_entry *e);

/**
 * Encodes @p pkt for a connection of protocol level @p version into @p b
 * (appended). Fields a version does not have (properties, reason codes on
 * v3) are left out; a v3 SUBACK turns codes >= 0x80 into 0x80; v5 acks,
 * DISCONNECT and AUTH take their short forms when the reason is 0 and there
 * are no properties. A CONNECT is written with level @p version ("MQIsdp"
 * for 3); pkt->u.connect.version is not read. pkt->flags is not read: the
 * first byte comes from the type (and PUBLISH dup/qos/retain). Values are
 * written as given, not validated. @p pkt is borrowed.
 * @return 0, or ERR_NOMEM / ERR_TOO_LARGE (b->failed is set; nothing of the
 *   packet stays in @p b), ERR_BAD_VERSION for a @p version not 3, 4 or 5,
 *   ERR_BAD_TYPE for a type that does not exist in @p version (b untouched)
 */
int mqtt_encode(struct buf *b, uint8_t version, const struct mqtt_packet *pkt);

/**
 * Encodes a PUBLISH's fixed and variable header only; the remaining length
 * counts @p pub->payload.len bytes that the caller sends after it (by
 * reference, so fan-out never copies a payload). @p pub->payload.p is not
 * read. @return as mqtt_encode
 */
int mqtt_publish_header_encode(struct buf *b, uint8_t version,
                               const struct mqtt_publish *pub);

/** Size of the whole encoded packet, for maximum-packet-size checks; over
 * MQTT_MAX_REMAINING + 5 when the packet cannot be encoded at all. */
size_t mqtt_publish_size(uint8_t version, const struct mqtt_publish *pub);

/** Encodes MQTT 5 properties (length prefix included), in `present` order.
 * Failures are recorded in @p b (buf_failed). */
void mqtt_props_encode(struct buf *b, const struct mqtt_props *pr);
/** As mqtt_props_encode, with @p extra (properties already encoded, no
 * length prefix) appended and counted in the length prefix. */
void mqtt_props_encode_extra(struct buf *b, const struct mqtt_props *pr,
                             struct mqtt_bytes extra);

/** Bytes of the encoded properties without the length prefix. */
size_t mqtt_props_len(const struct mqtt_props *pr);

/**
 * Decodes MQTT 5 properties (length prefix included) at @p r and checks them
 * against the rules of context @p ctx (a packet type or MQTT_PROPS_WILL):
 * identifier allowed there, at most once (User Property always, and
 * Subscription Identifier in PUBLISH, may repeat), value in range,
 * Authentication Data only with an Authentication Method.
 * @param[out] out views into the bytes of @p r
 * @return 0, ERR_BAD_PROPERTY, ERR_BAD_UTF8 (a string property),
 *   ERR_MALFORMED (runs past the end) or ERR_BAD_LENGTH (varint too long)
 */
int mqtt_props_decode(struct rd *r, uint8_t ctx, struct mqtt_props *out);

/**
 * Walks the User Properties in @p r, laid out as struct mqtt_props.user
 * (rd_init(&r, pr.user.p, pr.user.len)), skipping other properties.
 * @return 0 with views of the next pair, ERR_NOTFOUND at the end, or
 *   ERR_MALFORMED on bytes that are not properties
 */
int mqtt_user_next(struct rd *r, struct mqtt_bytes *key,
                   struct mqtt_bytes *val);

/** Appends one User Property (0x26, key, value) to @p b, to build
 * struct mqtt_props.user (then set n_user and the present bit). */
void mqtt_user_put(struct buf *b, struct mqtt_bytes key, struct mqtt_bytes val);

/* ---- validation ---- */

/** UTF-8 rules of MQTT 1.5.3: well-formed, no surrogates, no overlong
 * forms, no U+0000. */
bool mqtt_utf8_is_valid(const uint8_t *p, size_t n);
/** Topic name: non-empty, valid UTF-8, no '+' or '#', at most 65535. */
bool mqtt_topic_name_is_valid(struct mqtt_bytes t);
/** Topic filter: non-empty, valid UTF-8, '+' alone in its level, '#' alone
 * in the last level. Empty levels allowed. Does not look at $share. */
bool mqtt_topic_filter_is_valid(struct mqtt_bytes f);
/**
 * Client id acceptable for @p version: valid UTF-8; on MQTT 3.1 1..23
 * bytes; an empty id only with clean start (v3) — v5 allows it always,
 * the server assigns one.
 * @return 0, ERR_BAD_UTF8 or ERR_BAD_CLIENT_ID
 */
int mqtt_client_id_check(uint8_t version, bool clean_start,
                         struct mqtt_bytes id);
/** True when @p f matches topic @p t (MQTT 4.7 rules, $-topic rule). */
bool mqtt_topic_matches(struct mqtt_bytes f, struct mqtt_bytes t);

/**
 * The reason code for a decode error: ERR_BAD_TOPIC -> 0x90, ERR_TOO_LARGE
 * -> 0x95, protocol-rule errors (ERR_PROTOCOL, ERR_WRONG_STATE,
 * ERR_BAD_PACKET_ID, ERR_BAD_PROPERTY, ERR_EMPTY) -> 0x82,
 * ERR_BAD_PROTOCOL and ERR_BAD_VERSION -> 0x84 (CONNACK), ERR_BAD_CLIENT_ID
 * -> 0x85 (CONNACK), ERR_LIMIT -> 0x97, the rest of the ERR_BAD_* and
 * ERR_MALFORMED -> 0x81, ERR_NOMEM and anything else -> 0x80, 0 -> 0x00.
 * The one mapping from ERR_* to reason codes.
 */
uint8_t mqtt_rc_from_err(int err);

/** Name of a packet type ("CONNECT"...), "?" for others. */
const char *mqtt_type_name(uint8_t type);

#endif
