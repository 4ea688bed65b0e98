/*
 * One error space for all of mqd: 0 is success, failures are negative ERR_*.
 * The finer ERR_BAD_* codes say which rule a decoded packet broke, so that the
 * broker can pick the reason code (mqtt_rc_from_err) and log the cause.
 */
#ifndef PROTO_ERR_H
#define PROTO_ERR_H

enum err {
	ERR_OK = 0,
	ERR_NOMEM = -1,        /* allocation failed */
	ERR_AGAIN = -2,        /* need more input */
	ERR_MALFORMED = -3,    /* malformed packet, no finer code fits */
	ERR_PROTOCOL = -4,     /* well-formed but breaks a protocol rule */
	ERR_TOO_LARGE = -5,    /* over a configured or wire size limit */
	ERR_NOTFOUND = -6,     /* no such item */
	ERR_EXISTS = -7,       /* item already there */
	ERR_IO = -8,           /* I/O or storage failure */
	ERR_TLS = -9,          /* TLS failure */
	ERR_WRONG_STATE = -10, /* call not valid in this state (not
	                        * ERR_STATE: OpenSSL has that name) */
	ERR_LIMIT = -11,       /* a configured bound was reached */
	ERR_BAD_FLAGS = -12,   /* reserved fixed-header or connect-flag bits */
	ERR_BAD_QOS = -13,     /* QoS 3 */
	ERR_BAD_PACKET_ID = -14, /* packet identifier 0 */
	ERR_BAD_UTF8 = -15,      /* ill-formed UTF-8 or U+0000 */
	ERR_BAD_TOPIC = -16,     /* invalid topic name */
	ERR_BAD_FILTER = -17,    /* invalid topic filter */
	ERR_BAD_CLIENT_ID = -18, /* client identifier not acceptable */
	ERR_BAD_LENGTH = -19,    /* length fields disagree, varint > 4 bytes */
	ERR_BAD_PROTOCOL = -20,  /* protocol name not MQTT / MQIsdp */
	ERR_BAD_VERSION = -21,   /* unsupported protocol level */
	ERR_BAD_TYPE = -22,      /* packet type 0 or not allowed here */
	ERR_BAD_PROPERTY = -23,  /* MQTT 5 property invalid or duplicated */
	ERR_BAD_WILL = -24,      /* will flags inconsistent */
	ERR_BAD_CREDENTIALS = -25, /* password without user name (3.1.1) */
	ERR_EMPTY = -26,           /* SUBSCRIBE/UNSUBSCRIBE with no entries */
	ERR_BAD_REASON = -27,      /* reason code not allowed in this packet */
	ERR_BAD_PROPERTY_ID = -28, /* property unknown or not for this packet */
};

/**
 * Human-readable text for an ERR_* value.
 * @return a static string, never NULL ("unknown error" for unknown codes)
 */
const char *err_str(int err);

#endif
