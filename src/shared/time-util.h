/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdint.h>
#include <time.h>

#define NSEC_PER_SEC  UINT64_C(1000000000)
#define USEC_PER_SEC  UINT64_C(1000000)
#define USEC_PER_MSEC UINT64_C(1000)
#define MSEC_PER_SEC  UINT64_C(1000)

static inline uint64_t timespec_to_usec(const struct timespec *ts) {
        return (uint64_t)ts->tv_sec * USEC_PER_SEC + (uint64_t)ts->tv_nsec / 1000;
}

static inline uint64_t now_usec(clockid_t clock) {
        struct timespec ts;

        (void)clock_gettime(clock, &ts);
        return timespec_to_usec(&ts);
}

static inline uint64_t now_nsec(clockid_t clock) {
        struct timespec ts;

        (void)clock_gettime(clock, &ts);
        return (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

/* Monotonic milliseconds from the coarse clock: a vDSO read without a syscall,
 * a few milliseconds of resolution, which is plenty for idle and linger timers. */
static inline uint64_t now_msec_coarse(void) {
        struct timespec ts;

        (void)clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
        return (uint64_t)ts.tv_sec * MSEC_PER_SEC + (uint64_t)ts.tv_nsec / 1000000;
}
