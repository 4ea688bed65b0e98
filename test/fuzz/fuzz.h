/*
 * What every fuzz target shares: libFuzzer's entry point and check(), which
 * stops at a broken property so libFuzzer (or the replay test) reports the
 * input.
 */
#ifndef TEST_FUZZ_FUZZ_H
#define TEST_FUZZ_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static inline void
check(bool ok)
{
	if (!ok)
		abort();
}

#endif
