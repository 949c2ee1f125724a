/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Strict parsers for option values: no sign, no surrounding space, no silent
 * defaults. They return -EINVAL for bad syntax and -ERANGE outside [min, max].
 */

#include <stddef.h>
#include <stdint.h>

int parse_uint64(const char *s, uint64_t min, uint64_t max, uint64_t *ret);

/* Bytes with an optional binary suffix: 512, 4K, 1M, 1KiB, 2MiB. */
int parse_size(const char *s, uint64_t min, uint64_t max, uint64_t *ret);

/* A duration in milliseconds: a decimal number with an optional unit, seconds when
 * none is given: 30, 2.5, 500ms, 10s, 5min, 1h. */
int parse_duration_ms(const char *s, uint64_t min_ms, uint64_t max_ms, uint64_t *ret_ms);

/* Formats milliseconds the way parse_duration_ms() reads them back ("30s", "1.5s", "250ms"). */
const char *format_duration_ms(char *buf, size_t size, uint64_t ms);
