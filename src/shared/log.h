/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Logging to stderr, one write per line so lines from worker threads never
 * interleave. When stderr is connected to the journal (JOURNAL_STREAM matches),
 * lines carry a "<N>" syslog priority prefix and no timestamp; otherwise they
 * carry an ISO 8601 UTC timestamp.
 *
 * After log_open() (ackd calls it; ackc does not, and waits for its stderr like
 * any command-line tool), logging never waits for stderr: the workers log from
 * the ack path, and a reader that stops reading (`ackd -v | less`, Ctrl-S, a
 * stuck log shipper, a journald under pressure) must not stop the service or
 * its shutdown. A line stderr cannot take at once is dropped and counted, and
 * the first line that gets through again is preceded by "N log lines dropped".
 * Dropping rather than a logger thread: a thread's bounded buffer would still
 * need a policy for when it is full, would delay every line, and complicates
 * shutdown; dropping costs nothing and keeps the lines that do appear in order.
 *
 * fd 2 itself is never made non-blocking: its file description is shared with
 * whoever started ackd (a shell's terminal would turn non-blocking too), and
 * sanitizer reports must still reach it. So log_open() picks, once:
 *   a socket (the journal's stream)   send(MSG_DONTWAIT) on fd 2
 *   a pipe, FIFO or terminal          write to a private non-blocking description
 *                                     opened through /proc/self/fd/2 (without
 *                                     /proc: fd 2 as is, after a warning)
 *   a regular file, /dev/null, ...    write to fd 2 as is (a reopened file would
 *                                     have its own offset and no O_APPEND)
 * A line is at most LOG_LINE_MAX bytes, so a pipe takes all of it or nothing.
 *
 * An error is logged once, by the code that decides what to do about it; the
 * log_*_errno() helpers return the negative error so they can end a function:
 *
 *         r = bind_socket(...);
 *         if (r < 0)
 *                 return log_error_errno(r, "Failed to bind %s: %s", name, STRERROR(r));
 *
 * (STRERROR rather than glibc's %m: ISO C, and so -Wpedantic, does not know %m.)
 */

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "macro.h"

/* Longest line we emit; longer ones are cut and end in "...". */
#define LOG_LINE_MAX 2048

/* Sets the ident and picks how lines reach stderr (above). Call once, before threads. */
void log_open(const char *ident);

/* The descriptor lines are written to (2, or a private one), for a child that closes
 * the others it inherited. */
int log_get_fd(void);
void log_set_max_level(int level);
int log_get_max_level(void);
bool log_level_enabled(int level);

int log_level_from_string(const char *s);

/* strerror() of a negative or positive errno; thread-safe in glibc >= 2.32. */
#define STRERROR(e) strerror(abs(e))

/* Returns -abs(error) (0 when error is 0). */
int log_internal(int level, int error, const char *format, ...) _printf_(3, 4);

#define log_full_errno(level, error, ...) \
        (log_level_enabled(level) ? log_internal((level), (error), __VA_ARGS__) : -abs(error))

#define log_debug(...)   log_full_errno(LOG_DEBUG, 0, __VA_ARGS__)
#define log_info(...)    log_full_errno(LOG_INFO, 0, __VA_ARGS__)
#define log_notice(...)  log_full_errno(LOG_NOTICE, 0, __VA_ARGS__)
#define log_warning(...) log_full_errno(LOG_WARNING, 0, __VA_ARGS__)
#define log_error(...)   log_full_errno(LOG_ERR, 0, __VA_ARGS__)

#define log_debug_errno(e, ...)   log_full_errno(LOG_DEBUG, e, __VA_ARGS__)
#define log_warning_errno(e, ...) log_full_errno(LOG_WARNING, e, __VA_ARGS__)
#define log_error_errno(e, ...)   log_full_errno(LOG_ERR, e, __VA_ARGS__)

/*
 * At most one message per interval, shared by all threads (lock-free), so an
 * error that repeats for every connection is logged once per interval however
 * many workers see it.
 */
typedef struct RateLimit {
        uint64_t interval_usec;
        _Atomic uint64_t next_usec;
        _Atomic unsigned suppressed;
} RateLimit;

#define RATELIMIT_INIT(interval) \
        { .interval_usec = (interval) }

/* True when a message may be logged now. *ret_suppressed receives the number of
 * messages dropped since the last one that was let through. */
bool ratelimit_below(RateLimit *rl, uint64_t now_usec, unsigned *ret_suppressed);
