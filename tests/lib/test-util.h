/* SPDX-License-Identifier: MIT */
#pragma once

/* Helpers more than one check suite needs. */

#include <check.h>
#include <stdint.h>
#include <string.h>

/* A fast, repeatable pseudo-random sequence (Marsaglia's xorshift64), seeded by *state. */
static inline uint64_t xorshift(uint64_t *state) {
        uint64_t x = *state;

        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        return *state = x;
}

#define assert_contains(haystack, needle) \
        ck_assert_msg(strstr((haystack), (needle)), "'%s' does not contain '%s'", (haystack), (needle))
