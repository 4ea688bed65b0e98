/*
 * err_str: the text of each ERR_* code of the one mqd error space.
 */
#include "proto/proto.h"

#include <stddef.h>

static const char *const err_texts[] = {
	[0] = "success",
	[-ERR_NOMEM] = "out of memory",
	[-ERR_AGAIN] = "need more input",
	[-ERR_MALFORMED] = "malformed packet",
	[-ERR_PROTOCOL] = "protocol error",
	[-ERR_TOO_LARGE] = "too large",
	[-ERR_NOTFOUND] = "not found",
	[-ERR_EXISTS] = "already exists",
	[-ERR_IO] = "i/o error",
	[-ERR_TLS] = "tls error",
	[-ERR_WRONG_STATE] = "invalid state",
	[-ERR_LIMIT] = "limit reached",
	[-ERR_BAD_FLAGS] = "reserved flag bits set",
	[-ERR_BAD_QOS] = "invalid qos",
	[-ERR_BAD_PACKET_ID] = "packet identifier 0",
	[-ERR_BAD_UTF8] = "invalid utf-8 string",
	[-ERR_BAD_TOPIC] = "invalid topic name",
	[-ERR_BAD_FILTER] = "invalid topic filter",
	[-ERR_BAD_CLIENT_ID] = "client identifier not acceptable",
	[-ERR_BAD_LENGTH] = "length mismatch",
	[-ERR_BAD_PROTOCOL] = "unknown protocol name",
	[-ERR_BAD_VERSION] = "unsupported protocol version",
	[-ERR_BAD_TYPE] = "invalid packet type",
	[-ERR_BAD_PROPERTY] = "invalid property",
	[-ERR_BAD_WILL] = "inconsistent will flags",
	[-ERR_BAD_CREDENTIALS] = "password without user name",
	[-ERR_EMPTY] = "no entries",
	[-ERR_BAD_REASON] = "reason code not allowed",
	[-ERR_BAD_PROPERTY_ID] = "property not valid in this packet",
};

const char *
err_str(int err)
{
	size_t i;

	if (err > 0)
		return "unknown error";
	i = (size_t) - (long)err;
	if (i >= sizeof(err_texts) / sizeof(err_texts[0]) ||
	    err_texts[i] == NULL)
		return "unknown error";
	return err_texts[i];
}
