/*
 * libFuzzer target for the cluster frame codec (what a peer, or anybody
 * who reaches the cluster port, can send): decodes the input as a stream of
 * frames. Whatever does not decode must fail with an error, never crash or
 * leak; whatever decodes must encode again, and that encoding, once it
 * decodes, must encode to the same bytes.
 */
#include "cluster/cluster.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster.pb-c.h"
#include "cluster/cluster_int.h"
#include "test/fuzz/fuzz.h"

/* Encodes @p env again. What protobuf-c kept as unknown fields (a newer
 * peer's, or garbage) is written back as it came, which need not decode
 * (e.g. a field number 0): so the property is that the encoding is
 * canonical once it decodes: decode it, encode again, same bytes. */
static void
roundtrip(struct Mqd__Envelope *env)
{
	struct Mqd__Envelope *again = NULL;
	struct buf b1, b2;
	const char *why = NULL;
	size_t used = 0;

	buf_init(&b1);
	buf_init(&b2);
	if (frame_encode(&b1, env) == 0 &&
	    frame_decode(b1.data, b1.len, &used, &again, &why) == 0) {
		check(used == b1.len);
		check(frame_encode(&b2, again) == 0);
		check(b2.len == b1.len &&
		      memcmp(b1.data, b2.data, b1.len) == 0);
	}
	frame_free(again);
	buf_fini(&b1);
	buf_fini(&b2);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct Mqd__Envelope *env;
	size_t off = 0, used;
	const char *why;
	int rc;

	while (off < size) {
		env = NULL;
		why = NULL;
		used = 0;
		rc = frame_decode(data + off, size - off, &used, &env, &why);
		if (rc) {
			check(env == NULL);
			check(rc == ERR_AGAIN || why != NULL);
			break;
		}
		check(env != NULL && used >= 4 && used <= size - off);
		roundtrip(env);
		frame_free(env);
		off += used;
	}
	return 0;
}
