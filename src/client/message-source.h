/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Where ackc's messages come from: a list (the arguments), or the lines of a
 * file descriptor (standard input), returned as they are read so that a stream
 * can be followed. A line is returned without its LF (a CR before it stays);
 * a last line without one is a message too. Memory is bounded: a line longer
 * than MESSAGE_LINE_MAX is an error, not a reason to grow.
 */

#include <stdbool.h>
#include <stdint.h>

#include "args.h"

#define MESSAGE_LINE_MAX (1024 * 1024) /* longest line read */

typedef struct MessageSource {
        const Message *list; /* the messages; NULL: lines from fd */
        size_t n_list, next;
        int fd;
        char *buf; /* bytes read from fd, not yet returned as messages */
        size_t start, end;
        bool eof;
        uint64_t lineno; /* lines returned so far */
} MessageSource;

/* Messages from list, or (n == 0) lines from fd, which stays the caller's. */
int message_source_init(MessageSource *s, const Message *list, size_t n, int fd);
void message_source_done(MessageSource *s);

/*
 * The next message: returns 1 with *ret (valid until the next call), 0 when there are
 * no more, -EAGAIN when no complete line is buffered yet (message_source_fill() reads
 * more), -E2BIG for a line longer than MESSAGE_LINE_MAX (line lineno + 1).
 */
int message_source_next(MessageSource *s, Message *ret);

/* One read() from fd. Blocks unless poll() said it is readable; returns 0 or -errno. */
int message_source_fill(MessageSource *s);

/* The next message, reading as much as it takes: 1, 0 or a negative errno as above. */
int message_source_next_blocking(MessageSource *s, Message *ret);

/* Every message has been returned. */
bool message_source_exhausted(const MessageSource *s);

/* The fd to poll for more input, or -1 when there is nothing more to read. */
int message_source_fd(const MessageSource *s);
