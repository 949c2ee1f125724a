/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The load generator's schedule: which requests an engine may start, and when.
 * Pure arithmetic on nanoseconds of CLOCK_MONOTONIC, no clock read of its own.
 *
 * Closed loop (rate 0): every request within the engine's budget may start at
 * once. Open loop (--rate R over T threads): request j of the whole run is due
 * at t0 + j/R seconds, and thread k takes j = k, k+T, k+2T, ...; its request i
 * is global request k + i*T. Nothing at or after `end` is due.
 *
 * schedule_time() and schedule_due() are exact inverses in integers: request i
 * is due at schedule_time(i) (rounded up to the next nanosecond), not a
 * nanosecond earlier.
 */

#include <stdint.h>

typedef struct Schedule {
        uint64_t t0;   /* ns: global request 0 is due */
        uint64_t end;  /* ns: requests due at or after it are not due; 0: no end */
        uint64_t rate; /* requests per second over all threads; 0: closed loop */
        unsigned id;   /* this engine's thread, 0 to n_threads - 1 */
        unsigned n_threads;
} Schedule;

/* When this engine's request i is due (rate > 0). */
uint64_t schedule_time(const Schedule *s, uint64_t i);

/* How many of this engine's requests are due at `now` (rate > 0). */
uint64_t schedule_due(const Schedule *s, uint64_t now);

/* How many more requests this engine may start at `now`, having started `issued` of its
 * `budget` (UINT64_MAX: no limit but the end). Inline: the engine asks at every event. */
static inline uint64_t schedule_available(const Schedule *s, uint64_t now, uint64_t budget,
                                          uint64_t issued) {
        uint64_t limit = budget;

        if (s->rate > 0) {
                uint64_t due = schedule_due(s, now);

                if (due < limit)
                        limit = due;
        }
        return limit > issued ? limit - issued : 0;
}
