/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The line-mode framing, as a pure function of the bytes: no I/O, no
 * allocation. A message is everything up to an LF; a CR right before the LF is
 * not part of it. The parser keeps only the length of the unterminated message,
 * never its bytes, so a connection costs the same whatever its clients send.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Four bytes, so that it fits in a connection's 64 (partial is at most max-message + 1,
 * and max-message at most 16 MiB). */
typedef struct LineParser {
        uint32_t partial : 31; /* bytes of the unterminated message seen so far */
        uint32_t cr : 1;       /* the last of those bytes was a CR */
} LineParser;

typedef struct LineMessage {
        const char *data; /* the message's bytes inside the current chunk (CR/LF excluded) */
        size_t len;       /* ... and their number */
        size_t total;     /* the whole message's length, CR/LF excluded; > len if it began earlier */
} LineMessage;

typedef void (*line_message_fn)(const LineMessage *m, void *userdata);

/*
 * Consumes one chunk. Returns the number of messages completed in it, calling
 * fn (if not NULL) for each, in order. If a message grows beyond max_message
 * bytes, *ret_too_long is set and parsing stops there: the returned messages
 * before it are still to be acknowledged, the rest of the chunk is not.
 */
size_t line_parser_feed(LineParser *p, const char *buf, size_t len, size_t max_message, line_message_fn fn,
                        void *userdata, bool *ret_too_long);

/* At end of input: true if an unterminated message is pending (it still counts as a
 * message). *ret_total, if given, receives its length. Resets the parser. */
bool line_parser_finish(LineParser *p, size_t *ret_total);
