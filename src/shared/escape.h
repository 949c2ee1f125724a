/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>

/*
 * Renders client bytes for a log line: printable ASCII stays, backslash and
 * double quote are escaped, everything else becomes \n, \r, \t or \xNN. Only
 * the first `max_input` bytes are rendered; when more exist "..." follows. The
 * result is always NUL-terminated and never contains a control byte, so a client
 * can neither forge a log line nor send terminal escapes to an operator.
 */

/* Output needed for max_input bytes, worst case, including "..." and NUL. */
#define ESCAPE_BUFFER_SIZE(max_input) ((max_input)*4 + 4)

size_t escape_bytes(char *out, size_t out_size, const void *data, size_t len, size_t max_input);

/* Room for a key, value or argument quoted in an error message: 64 bytes at worst,
 * more when they are printable; what does not fit is cut with "...". */
#define ESCAPE_QUOTE_SIZE 260

/* The NUL-terminated s escaped as above, all of it that fits out; returns out. For
 * user input quoted in an error message, where an invisible byte (a BOM, a NUL, a
 * control character) must show. */
const char *escape_string(char *out, size_t out_size, const char *s);
