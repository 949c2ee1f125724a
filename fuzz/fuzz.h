/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Helpers shared by the libFuzzer targets. A target checks properties of the
 * code under test with fuzz_assert(): a violated property abort()s, which
 * libFuzzer reports as a crash and saves the input that caused it.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define fuzz_assert(expr)                                                                              \
        do {                                                                                           \
                if (!(expr)) {                                                                         \
                        fprintf(stderr, "%s:%d: %s: check failed: %s\n", __FILE__, __LINE__, __func__, \
                                #expr);                                                                \
                        abort();                                                                       \
                }                                                                                      \
        } while (0)

/* The entry point libFuzzer calls with each input. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The input as a NUL-terminated string on the heap (an embedded NUL ends it early). */
static inline char *fuzz_strndup(const uint8_t *data, size_t size) {
        char *s = malloc(size + 1);

        fuzz_assert(s);
        if (size > 0)
                memcpy(s, data, size);
        s[size] = '\0';
        return s;
}
