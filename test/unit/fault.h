/*
 * Allocation-failure injection for unit tests, in the manner of SQLite's
 * fault tests. A test executable linked with -Wl,--wrap=malloc,--wrap=calloc
 * (test/unit/meson.build does that for the tests that include this file)
 * sends every allocation through these wrappers; after fault_arm(n) the n-th
 * allocation fails. Include it in exactly one file of a test executable.
 */
#ifndef TEST_UNIT_FAULT_H
#define TEST_UNIT_FAULT_H

#include <stdbool.h>
#include <stddef.h>

void *__real_malloc(size_t n) __attribute__((weak));
void *__real_calloc(size_t n, size_t size) __attribute__((weak));
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);

static long fault_left = -1; /* allocations before the failing one */

static bool
fault_hit(void)
{
	if (fault_left < 0 || fault_left-- > 0)
		return false;
	return true;
}

void *
__wrap_malloc(size_t n)
{
	return fault_hit() ? NULL : __real_malloc(n);
}

void *
__wrap_calloc(size_t n, size_t size)
{
	return fault_hit() ? NULL : __real_calloc(n, size);
}

/* The n-th allocation from now fails (n >= 1). */
static inline void
fault_arm(long n)
{
	fault_left = n - 1;
}

static inline void
fault_off(void)
{
	fault_left = -1;
}

#endif
